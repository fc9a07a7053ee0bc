//! The NAT helpers (OpenSIPS's force_rport(), nathelper's fix_nated_contact() and
//! nat_uac_test()) on arbitrary messages: never panic; a rewrite parses again and did what it
//! says (RFC 3581 §4 rport on the top Via, once; the first Contact URI at the source address
//! with the given parameters), and nothing else of the message changed.
#![no_main]
use sipcore::core::nat::{fix_nated_contact, force_rport, nat_uac_test};
use sipcore::sip::{Contact, Message, Uri};
use std::net::SocketAddr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let src: SocketAddr = "203.0.113.7:40123".parse().unwrap();
    for flags in [1, 2, 4, 8, 16, 32, 64, 127] {
        let _ = nat_uac_test(&msg, src, flags);
    }
    if let Ok(Some(m)) = force_rport(&msg) {
        assert_eq!(m.top_via().map(|v| v.rport()), Ok(Some(None)));
        assert!(matches!(force_rport(&m), Ok(None)));
        assert_eq!(m.call_id(), msg.call_id());
        assert_eq!(m.body(), msg.body());
    }
    for params in ["", ";nat=yes"] {
        if let Ok(m) = fix_nated_contact(&msg, src, params) {
            let Some(Ok(Contact::Addr(na))) = m.contacts().next() else {
                panic!("no Contact after fix_nated_contact");
            };
            let u = Uri::parse(na.uri_str()).expect("the fixed Contact URI parses");
            assert_eq!((u.host(), u.port()), ("203.0.113.7", Some(40123)));
            if !params.is_empty() {
                assert!(u.params().iter().any(|p| p == ("nat", Some("yes"))));
            }
            assert_eq!(m.call_id(), msg.call_id());
            assert_eq!(m.body(), msg.body());
            assert_eq!(m.vias().next(), msg.vias().next());
        }
    }
});
