//! Tests of the receive limits (size, frame count, time) and of input split
//! across reads (RFC 6455 §5.4, §7.4.1).

use super::tests::{cframe, limits, run, text, KEY};
use super::*;
use crate::proto::frame::OpCode;

#[test]
fn size_limit_1009_before_buffering() {
    // Declared 2^40 bytes: fails with just the header present.
    let h = crate::proto::frame::encode_header(true, OpCode::Binary, 1 << 40, Some(KEY));
    let mut buf = BytesMut::from(&h[..]);
    let mut s = WsConn::new(Role::Server, limits());
    let e = s.decode(&mut buf, Instant::now()).unwrap_err();
    assert_eq!(
        e,
        WsError::MessageTooBig {
            size: 1 << 40,
            max: 65535
        }
    );
    assert_eq!(buf.len(), h.len());
    // Over the limit summed over fragments.
    let small = Limits {
        max_msg_size: 10,
        ..limits()
    };
    let mut stream = cframe(false, OpCode::Text, b"123456");
    stream.extend(cframe(true, OpCode::Continuation, b"78901"));
    let (_, e) = run(&mut WsConn::new(Role::Server, small), &stream);
    assert_eq!(e, Some(WsError::MessageTooBig { size: 11, max: 10 }));
    // Exactly at the limit is fine; control frames do not count.
    let mut stream = cframe(false, OpCode::Text, b"123456");
    stream.extend(cframe(true, OpCode::Ping, b"0123456789"));
    stream.extend(cframe(true, OpCode::Continuation, b"7890"));
    let (ev, e) = run(&mut WsConn::new(Role::Server, small), &stream);
    assert_eq!((ev.len(), e), (2, None));
}

#[test]
fn frame_count_limit_1008() {
    let two = Limits {
        max_msg_frames: 2,
        ..limits()
    };
    let mut stream = cframe(false, OpCode::Text, b"a");
    stream.extend(cframe(true, OpCode::Ping, b""));
    stream.extend(cframe(true, OpCode::Continuation, b"b"));
    assert_eq!(
        run(&mut WsConn::new(Role::Server, two), &stream),
        (vec![Event::Ping(Bytes::new()), text(b"ab")], None)
    );
    let mut stream = cframe(false, OpCode::Text, b"a");
    stream.extend(cframe(false, OpCode::Continuation, b"b"));
    stream.extend(cframe(true, OpCode::Continuation, b"c"));
    let (_, e) = run(&mut WsConn::new(Role::Server, two), &stream);
    assert_eq!(e, Some(WsError::TooManyFrames { max: 2 }));
    assert_eq!(WsError::TooManyFrames { max: 2 }.close_code(), 1008);
    // 0 = unlimited.
    let unlimited = Limits {
        max_msg_frames: 0,
        ..limits()
    };
    let mut stream = cframe(false, OpCode::Binary, b"0");
    for _ in 0..50 {
        stream.extend(cframe(false, OpCode::Continuation, b"x"));
    }
    stream.extend(cframe(true, OpCode::Continuation, b"!"));
    let (ev, e) = run(&mut WsConn::new(Role::Server, unlimited), &stream);
    assert_eq!(e, None);
    assert!(matches!(&ev[..], [Event::Message { payload, .. }] if payload.len() == 52));
}

#[test]
fn deadlines() {
    let t0 = Instant::now();
    let mut s = WsConn::new(Role::Server, limits());
    assert_eq!(s.message_deadline(), None);
    let frame = cframe(true, OpCode::Text, b"INVITE");
    let mut buf = BytesMut::from(&frame[..1]);
    assert_eq!(s.decode(&mut buf, t0), Ok(None));
    let d = t0 + Duration::from_secs(4);
    assert_eq!(s.message_deadline(), Some(d));
    assert!(!s.in_message());
    // Later partial reads do not move the deadline.
    buf.extend_from_slice(&frame[1..8]);
    assert_eq!(s.decode(&mut buf, t0 + Duration::from_secs(3)), Ok(None));
    assert_eq!(s.message_deadline(), Some(d));
    assert_eq!(s.pending_frame_len(), Some(frame.len()));
    assert!(s.in_message());
    assert_eq!(s.check_deadline(t0 + Duration::from_secs(3)), Ok(()));
    assert_eq!(s.check_deadline(d), Err(WsError::MessageTimeout));
    assert_eq!(WsError::MessageTimeout.close_code(), 1008);
    buf.extend_from_slice(&frame[8..]);
    assert_eq!(
        s.decode(&mut buf, t0 + Duration::from_secs(3)),
        Ok(Some(text(b"INVITE")))
    );
    assert_eq!(s.message_deadline(), None);
    assert!(!s.in_message());
    // No time limit configured.
    let mut s = WsConn::new(
        Role::Server,
        Limits {
            max_msg_time: None,
            ..limits()
        },
    );
    let mut buf = BytesMut::from(&frame[..3]);
    assert_eq!(s.decode(&mut buf, t0), Ok(None));
    assert_eq!(s.message_deadline(), None);
}

#[test]
fn empty_messages_and_small_state() {
    let (ev, e) = run(
        &mut WsConn::new(Role::Server, limits()),
        &cframe(true, OpCode::Text, b""),
    );
    assert_eq!((ev, e), (vec![text(b"")], None));
    let size = core::mem::size_of::<WsConn>();
    assert!(size <= 160, "WsConn is {size} bytes");
}

#[test]
fn caller_removing_bytes_does_not_panic() {
    let frame = cframe(true, OpCode::Binary, &[1; 40]);
    let mut s = WsConn::new(Role::Server, limits());
    let mut buf = BytesMut::from(&frame[..20]);
    assert_eq!(s.decode(&mut buf, Instant::now()), Ok(None));
    buf.clear();
    assert_eq!(s.decode(&mut buf, Instant::now()), Ok(None));
}

/// Tiny deterministic PRNG (xorshift64*) for the stream-splitting test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn any_read_split_gives_the_same_result() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let texts: [&[u8]; 6] = [
        b"hello",
        "κόσμε€".as_bytes(),
        b"\xe2\x82",
        b"\xac",
        b"\xff",
        b"",
    ];
    for round in 0..300 {
        // A random mix of frames, mostly well-formed.
        let mut stream = Vec::new();
        let mut open = false;
        for _ in 0..rng.below(8) + 1 {
            let payload = texts[rng.below(texts.len() as u64) as usize];
            let (fin, op) = match rng.below(7) {
                0 => (true, OpCode::Ping),
                1 => (true, OpCode::Pong),
                2 if open => (false, OpCode::Continuation),
                2 | 3 if !open => (false, OpCode::Text),
                4 if !open => (true, OpCode::Binary),
                _ if open => (true, OpCode::Continuation),
                _ => (true, OpCode::Text),
            };
            if !op.is_control() {
                open = !fin;
            }
            stream.extend(cframe(fin, op, payload));
        }
        if rng.below(4) == 0 {
            let i = rng.below(stream.len() as u64) as usize;
            stream[i] ^= 1 << rng.below(8);
        }
        let whole = run(&mut WsConn::new(Role::Server, limits()), &stream);
        // Feed in random chunks.
        let mut s = WsConn::new(Role::Server, limits());
        let mut buf = BytesMut::new();
        let (mut events, mut err) = (Vec::new(), None);
        let mut at = 0;
        'feed: while at < stream.len() {
            let n = (rng.below(5) as usize + 1).min(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            loop {
                match s.decode(&mut buf, Instant::now()) {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break 'feed;
                    }
                }
            }
        }
        assert_eq!((events, err), whole, "round {round}: {stream:02x?}");
    }
}
