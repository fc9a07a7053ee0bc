//! The registrar (RFC 3261 §10.3) on arbitrary REGISTER requests: never panics, and a
//! refused request leaves the table as it was.
#![no_main]
use sipcore::usrloc::{Flow, Registrar, RegistrarConfig};
use std::time::Instant;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(msg) = sipcore::sip::Message::parse(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let r = Registrar::new(RegistrarConfig::default());
    let flow = Flow {
        conn_id: 1,
        proto: "ws",
        peer: "192.0.2.1:40000".parse().unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
    };
    let now = Instant::now();
    if r.save(&msg, flow, now).is_err() {
        assert!(r.is_empty());
    }
    let _ = r.dump(now);
    r.remove_flow(1);
    assert!(r.is_empty());
});
