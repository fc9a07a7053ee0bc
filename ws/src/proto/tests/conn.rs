//! Tests of the receive state machine (RFC 6455 §5, §6.2, §7), with §5.7's examples.

use super::*;
use crate::proto::frame::{write_frame, OpCode};

pub(super) const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub(super) fn limits() -> Limits {
    Limits {
        max_msg_size: 65535,
        max_msg_frames: 4,
        max_msg_time: Some(Duration::from_secs(4)),
    }
}

/// A frame as a client sends it (masked).
pub(super) fn cframe(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_frame(&mut v, fin, op, payload, Some(KEY));
    v
}

/// A frame as a server sends it (unmasked).
pub(super) fn sframe(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_frame(&mut v, fin, op, payload, None);
    v
}

/// Decode everything in `bytes` (fed at once), collecting events until the first error.
pub(super) fn run(conn: &mut WsConn, bytes: &[u8]) -> (Vec<Event>, Option<WsError>) {
    let mut buf = BytesMut::from(bytes);
    let now = Instant::now();
    let mut events = Vec::new();
    loop {
        match conn.decode(&mut buf, now) {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

pub(super) fn server_err(bytes: &[u8]) -> WsError {
    let (_, e) = run(&mut WsConn::new(Role::Server, limits()), bytes);
    e.expect("an error")
}

pub(super) fn text(s: &[u8]) -> Event {
    Event::Message {
        text: true,
        payload: Bytes::copy_from_slice(s),
    }
}

#[test]
fn rfc_single_frame_unmasked_hello() {
    let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let mut c = WsConn::new(Role::Client, limits());
    assert_eq!(run(&mut c, &bytes), (vec![text(b"Hello")], None));
    // A server must refuse it: unmasked.
    assert_eq!(server_err(&bytes), WsError::UnmaskedFrame);
    assert_eq!(WsError::UnmaskedFrame.close_code(), 1002);
}

#[test]
fn rfc_single_frame_masked_hello() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut s = WsConn::new(Role::Server, limits());
    assert_eq!(run(&mut s, &bytes), (vec![text(b"Hello")], None));
    let mut c = WsConn::new(Role::Client, limits());
    assert_eq!(run(&mut c, &bytes).1, Some(WsError::MaskedFrame));
    assert_eq!(WsError::MaskedFrame.close_code(), 1002);
}

#[test]
fn rfc_fragmented_hello() {
    let mut c = WsConn::new(Role::Client, limits());
    let mut buf = BytesMut::from(&[0x01, 0x03, 0x48, 0x65, 0x6c][..]);
    let t0 = Instant::now();
    assert_eq!(c.decode(&mut buf, t0), Ok(None));
    assert!(buf.is_empty(), "a complete fragment is consumed");
    assert_eq!(c.message_deadline(), Some(t0 + Duration::from_secs(4)));
    buf.extend_from_slice(&[0x80, 0x02, 0x6c, 0x6f]);
    assert_eq!(
        c.decode(&mut buf, t0 + Duration::from_secs(1)),
        Ok(Some(text(b"Hello")))
    );
    assert_eq!(c.message_deadline(), None);
    assert!(buf.is_empty());
}

#[test]
fn rfc_ping_and_pong() {
    let mut c = WsConn::new(Role::Client, limits());
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    assert_eq!(
        run(&mut c, &ping),
        (vec![Event::Ping(Bytes::from_static(b"Hello"))], None)
    );
    let mut s = WsConn::new(Role::Server, limits());
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(
        run(&mut s, &pong),
        (vec![Event::Pong(Bytes::from_static(b"Hello"))], None)
    );
}

#[test]
fn rfc_256_and_65536_byte_binary() {
    let big = Limits {
        max_msg_size: 1 << 20,
        ..limits()
    };
    let p256: Vec<u8> = (0..256u32).map(|i| i as u8).collect();
    let mut bytes = vec![0x82, 0x7e, 0x01, 0x00];
    bytes.extend_from_slice(&p256);
    let mut c = WsConn::new(Role::Client, big);
    let want = Event::Message {
        text: false,
        payload: Bytes::from(p256),
    };
    assert_eq!(run(&mut c, &bytes), (vec![want], None));

    let p64k: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut bytes = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    bytes.extend_from_slice(&p64k);
    let want = Event::Message {
        text: false,
        payload: Bytes::from(p64k),
    };
    assert_eq!(
        run(&mut WsConn::new(Role::Client, big), &bytes),
        (vec![want], None)
    );
    // With the default 65535 limit the same frame is too big (1009).
    let e = run(&mut WsConn::new(Role::Client, limits()), &bytes)
        .1
        .unwrap();
    assert_eq!(
        e,
        WsError::MessageTooBig {
            size: 65536,
            max: 65535
        }
    );
    assert_eq!(e.close_code(), 1009);
}

#[test]
fn single_frame_payload_is_zero_copy() {
    let mut s = WsConn::new(Role::Server, limits());
    let mut buf = BytesMut::from(&cframe(true, OpCode::Binary, b"INVITE sip:x SIP/2.0")[..]);
    let base = buf.as_ptr() as usize;
    let Ok(Some(Event::Message { payload, .. })) = s.decode(&mut buf, Instant::now()) else {
        panic!("no message");
    };
    assert_eq!(payload.as_ptr() as usize, base + 6);
    assert_eq!(&payload[..], b"INVITE sip:x SIP/2.0");
}

#[test]
fn byte_at_a_time_and_pipelined() {
    let mut stream = cframe(true, OpCode::Text, "κόσμε".as_bytes());
    stream.extend(cframe(false, OpCode::Binary, b"ab"));
    stream.extend(cframe(true, OpCode::Ping, b"p"));
    stream.extend(cframe(true, OpCode::Continuation, b"cd"));
    let mut s = WsConn::new(Role::Server, limits());
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let now = Instant::now();
    for &b in &stream {
        buf.extend_from_slice(&[b]);
        while let Some(e) = s.decode(&mut buf, now).unwrap() {
            events.push(e);
        }
    }
    let want = vec![
        text("κόσμε".as_bytes()),
        Event::Ping(Bytes::from_static(b"p")),
        Event::Message {
            text: false,
            payload: Bytes::from_static(b"abcd"),
        },
    ];
    assert_eq!(events, want);
    assert!(buf.is_empty());
    // All at once gives the same.
    assert_eq!(
        run(&mut WsConn::new(Role::Server, limits()), &stream),
        (want, None)
    );
}

#[test]
fn protocol_errors_1002() {
    let mut close1 = cframe(true, OpCode::Close, b"x");
    close1.truncate(7);
    let cases: Vec<(Vec<u8>, WsError)> = vec![
        (vec![0xc1, 0x80, 0, 0, 0, 0], WsError::ReservedBits),
        (vec![0xa1], WsError::ReservedBits),
        (vec![0x91, 0x80], WsError::ReservedBits),
        (vec![0x83, 0x80, 0, 0, 0, 0], WsError::ReservedOpcode(3)),
        (vec![0x87], WsError::ReservedOpcode(7)),
        (vec![0x8b, 0x80], WsError::ReservedOpcode(0xb)),
        (vec![0x8f], WsError::ReservedOpcode(0xf)),
        (vec![0x89, 0xfe, 0x00, 0x7e], WsError::ControlFrameTooLong),
        (vec![0x88, 0xff], WsError::ControlFrameTooLong),
        (
            vec![0x09, 0x80, 0, 0, 0, 0],
            WsError::FragmentedControlFrame,
        ),
        (vec![0x0a], WsError::FragmentedControlFrame),
        (
            cframe(true, OpCode::Continuation, b"x"),
            WsError::UnexpectedContinuation,
        ),
        (vec![0x00], WsError::UnexpectedContinuation),
        (
            vec![0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4],
            WsError::NonMinimalLength,
        ),
        (
            vec![0x82, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
            WsError::NonMinimalLength,
        ),
        (
            vec![0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0],
            WsError::LengthOverflow,
        ),
        (close1, WsError::CloseTooShort),
    ];
    for (bytes, want) in cases {
        assert_eq!(server_err(&bytes), want, "{bytes:02x?}");
        assert_eq!(want.close_code(), 1002);
    }
    // A new Text/Binary inside a fragmented message, caught from its first byte.
    let mut b = cframe(false, OpCode::Text, b"a");
    b.push(0x81);
    assert_eq!(server_err(&b), WsError::ExpectedContinuation);
    let mut b = cframe(false, OpCode::Binary, b"a");
    b.extend(cframe(true, OpCode::Binary, b"b"));
    assert_eq!(server_err(&b), WsError::ExpectedContinuation);
    // Masking direction is caught from the second byte.
    assert_eq!(server_err(&[0x81, 0x05]), WsError::UnmaskedFrame);
    let (_, e) = run(&mut WsConn::new(Role::Client, limits()), &[0x89, 0x80]);
    assert_eq!(e, Some(WsError::MaskedFrame));
}

#[test]
fn close_codes_checked() {
    for code in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let f = cframe(true, OpCode::Close, &code.to_be_bytes());
        assert_eq!(server_err(&f), WsError::InvalidCloseCode(code));
        assert_eq!(WsError::InvalidCloseCode(code).close_code(), 1002);
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
    ] {
        let f = cframe(true, OpCode::Close, &code.to_be_bytes());
        let (ev, e) = run(&mut WsConn::new(Role::Server, limits()), &f);
        assert_eq!(e, None);
        assert_eq!(
            ev,
            vec![Event::Close {
                code: Some(code),
                reason: String::new()
            }]
        );
    }
}

#[test]
fn close_events() {
    let mut s = WsConn::new(Role::Server, limits());
    let mut stream = cframe(false, OpCode::Text, b"half");
    stream.extend(cframe(true, OpCode::Close, &[0x03, 0xe8, b'b', b'y', b'e']));
    stream.extend(cframe(true, OpCode::Text, b"ignored"));
    let (ev, e) = run(&mut s, &stream);
    assert_eq!(e, None);
    assert_eq!(
        ev,
        vec![Event::Close {
            code: Some(1000),
            reason: "bye".into()
        }]
    );
    assert!(s.is_closed());
    assert_eq!(s.message_deadline(), None);
    let mut more = BytesMut::from(&cframe(true, OpCode::Text, b"x")[..]);
    assert_eq!(s.decode(&mut more, Instant::now()), Ok(None));
    assert!(more.is_empty(), "input after Close is discarded");

    let (ev, _) = run(
        &mut WsConn::new(Role::Client, limits()),
        &sframe(true, OpCode::Close, b""),
    );
    assert_eq!(
        ev,
        vec![Event::Close {
            code: None,
            reason: String::new()
        }]
    );
    // Close reason that is not UTF-8: 1007.
    let e = server_err(&cframe(true, OpCode::Close, &[0x03, 0xe8, 0xff]));
    assert_eq!(e, WsError::InvalidCloseReason);
    assert_eq!(e.close_code(), 1007);
}

#[test]
fn utf8_invalid_single_frame() {
    let e = server_err(&cframe(true, OpCode::Text, b"abc\xc0\xafdef"));
    assert_eq!(e, WsError::InvalidUtf8);
    assert_eq!(e.close_code(), 1007);
    // The same bytes as binary are fine.
    let (ev, e) = run(
        &mut WsConn::new(Role::Server, limits()),
        &cframe(true, OpCode::Binary, b"\xc0\xaf"),
    );
    assert_eq!((ev.len(), e), (1, None));
}

#[test]
fn utf8_across_fragments() {
    let s = "aκόσμε€𝄞".as_bytes();
    // Valid: split at every position, including inside multi-byte chars.
    for cut in 0..=s.len() {
        let mut stream = cframe(false, OpCode::Text, &s[..cut]);
        stream.extend(cframe(true, OpCode::Continuation, &s[cut..]));
        assert_eq!(
            run(&mut WsConn::new(Role::Server, limits()), &stream),
            (vec![text(s)], None),
            "cut {cut}"
        );
    }
    // Invalid: E0 80 split over two fragments fails on the second fragment, before the final one.
    let mut stream = cframe(false, OpCode::Text, b"ok\xe0");
    stream.extend(cframe(false, OpCode::Continuation, b"\x80\x80"));
    assert_eq!(server_err(&stream), WsError::InvalidUtf8);
    // Truncated sequence at the end of the final fragment.
    let mut stream = cframe(false, OpCode::Text, b"ok\xe2\x82");
    stream.extend(cframe(true, OpCode::Continuation, b""));
    assert_eq!(server_err(&stream), WsError::InvalidUtf8);
    assert_eq!(
        server_err(&cframe(true, OpCode::Text, b"\xf0\x9d\x84")),
        WsError::InvalidUtf8
    );
    // A control frame between the halves of a split char does not disturb it.
    let mut stream = cframe(false, OpCode::Text, b"\xe2\x82");
    stream.extend(cframe(true, OpCode::Ping, b"\xff"));
    stream.extend(cframe(true, OpCode::Continuation, b"\xac"));
    let (ev, e) = run(&mut WsConn::new(Role::Server, limits()), &stream);
    assert_eq!(e, None);
    assert_eq!(
        ev,
        vec![
            Event::Ping(Bytes::from_static(b"\xff")),
            text("€".as_bytes())
        ]
    );
}

#[test]
fn utf8_fails_fast_within_a_partial_frame() {
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xed\xa0\x80edited and much more text that has not arrived");
    let frame = cframe(true, OpCode::Text, &payload);
    let mut s = WsConn::new(Role::Server, limits());
    let now = Instant::now();
    // Header plus the valid part: incomplete, no error.
    let valid_end = 6 + "κόσμε".len();
    let mut buf = BytesMut::from(&frame[..valid_end]);
    assert_eq!(s.decode(&mut buf, now), Ok(None));
    assert_eq!(buf.len(), valid_end, "partial frame stays in the buffer");
    // The two bytes ED A0 already form an impossible prefix (surrogate).
    buf.extend_from_slice(&frame[valid_end..valid_end + 2]);
    assert_eq!(s.decode(&mut buf, now), Err(WsError::InvalidUtf8));
    // The error is sticky.
    assert_eq!(s.decode(&mut buf, now), Err(WsError::InvalidUtf8));
}

#[test]
fn control_frames_between_fragments() {
    let mut stream = cframe(false, OpCode::Text, b"Hel");
    stream.extend(cframe(true, OpCode::Ping, b"1"));
    stream.extend(cframe(true, OpCode::Pong, b"2"));
    stream.extend(cframe(true, OpCode::Continuation, b"lo"));
    let (ev, e) = run(&mut WsConn::new(Role::Server, limits()), &stream);
    assert_eq!(e, None);
    assert_eq!(
        ev,
        vec![
            Event::Ping(Bytes::from_static(b"1")),
            Event::Pong(Bytes::from_static(b"2")),
            text(b"Hello")
        ]
    );
}
