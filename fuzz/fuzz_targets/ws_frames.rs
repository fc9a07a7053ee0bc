//! The WebSocket receive state machine (RFC 6455 §5-§7) on arbitrary bytes, as a server and
//! as a client, fed in two pieces split where the input says.
#![no_main]
use bytes::BytesMut;
use sipcore_ws::proto::{Limits, Role, WsConn};
use std::time::Instant;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    for role in [Role::Server, Role::Client] {
        let mut conn = WsConn::new(role, Limits::default());
        let mut buf = BytesMut::new();
        let now = Instant::now();
        for piece in [&rest[..at], &rest[at..]] {
            buf.extend_from_slice(piece);
            while let Ok(Some(_)) = conn.decode(&mut buf, now) {}
        }
    }
});
