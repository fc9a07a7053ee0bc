//! RFC 3261 §18.3 stream framing and RFC 5626 §4.4.1 keep-alives ([`super::stream`]).

use super::stream::{next_frame, split_all, Frame, FrameError, StreamLimits, PING};
use super::Message;

const LIMITS: StreamLimits = StreamLimits {
    max_headers: 16 * 1024,
    max_message: 65535,
};

fn invite(body: &str) -> String {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
         Max-Forwards: 70\r\nFrom: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const SDP: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\nc=IN IP4 192.0.2.101\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn one(buf: &[u8]) -> Result<Frame, FrameError> {
    next_frame(buf, 0, &LIMITS)
}

/// RFC 3261 §18.3: the body is exactly Content-Length bytes after the empty line; a body
/// that contains CRLF CRLF does not end the message early.
#[test]
fn content_length_delimits_the_body() {
    let m = invite(SDP);
    assert_eq!(one(m.as_bytes()), Ok(Frame::Message { len: m.len() }));
    let body = "a\r\n\r\nb";
    let m = invite(body);
    let mut wire = m.clone().into_bytes();
    wire.extend_from_slice(b"OPTIONS");
    assert_eq!(one(&wire), Ok(Frame::Message { len: m.len() }));
    // What the framer delimits is what the parser accepts, body included.
    let msg = Message::parse(bytes::Bytes::copy_from_slice(&wire[..m.len()])).unwrap();
    assert_eq!(msg.body(), body.as_bytes());
}

/// The compact form `l`, any case, whitespace around the colon (RFC 3261 §7.3.1, §20.14).
#[test]
fn compact_and_spaced_forms() {
    for h in [
        "l: 3",
        "L:3",
        "content-length :  3 ",
        "CONTENT-LENGTH:\t3",
        "l:\r\n 3",
    ] {
        let m = format!("MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\n{h}\r\n\r\nabc");
        assert_eq!(
            one(m.as_bytes()),
            Ok(Frame::Message { len: m.len() }),
            "{h:?}"
        );
    }
}

/// Content-Length is mandatory over a stream; invalid and conflicting values are errors.
#[test]
fn content_length_errors() {
    let no_cl = "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
    assert_eq!(one(no_cl.as_bytes()), Err(FrameError::MissingContentLength));
    for v in ["", "-1", "1a", "0x10", "1 2", "99999999999"] {
        let m = format!("OPTIONS sip:a@b SIP/2.0\r\nContent-Length: {v}\r\n\r\n");
        assert!(
            matches!(one(m.as_bytes()), Err(FrameError::InvalidContentLength(_))),
            "{v:?}"
        );
    }
    let two = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\nl: 4\r\n\r\nabcd";
    assert_eq!(
        one(two.as_bytes()),
        Err(FrameError::ConflictingContentLength(0, 4))
    );
    // The same value twice is one message.
    let same = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\nl: 4\r\n\r\nabcd";
    assert_eq!(one(same.as_bytes()), Ok(Frame::Message { len: same.len() }));
    // A header whose name merely contains "l" is not Content-Length.
    let other = "OPTIONS sip:a@b SIP/2.0\r\nX-l: 7\r\nl: 0\r\n\r\n";
    assert_eq!(
        one(other.as_bytes()),
        Ok(Frame::Message { len: other.len() })
    );
}

/// Every split of a message into two reads: incomplete until the last byte, then the
/// message; `scanned` carried over as the driver does.
#[test]
fn split_reads_at_every_byte() {
    let m = invite(SDP);
    let wire = m.as_bytes();
    for cut in 0..wire.len() {
        let first = next_frame(&wire[..cut], 0, &LIMITS).unwrap();
        let Frame::NeedMore { scanned } = first else {
            panic!("cut {cut}: {first:?}");
        };
        assert!(scanned <= cut);
        assert_eq!(
            next_frame(wire, scanned, &LIMITS),
            Ok(Frame::Message { len: wire.len() }),
            "cut {cut}"
        );
    }
    // And byte by byte, carrying `scanned` through every read.
    let mut scanned = 0;
    for end in 1..wire.len() {
        match next_frame(&wire[..end], scanned, &LIMITS).unwrap() {
            Frame::NeedMore { scanned: s } => scanned = s,
            f => panic!("at {end}: {f:?}"),
        }
    }
    assert_eq!(
        next_frame(wire, scanned, &LIMITS),
        Ok(Frame::Message { len: wire.len() })
    );
}

/// Pipelined messages, CRLFs between them, a ping among them.
#[test]
fn pipelined_messages_and_keepalives() {
    let a = invite(SDP);
    let b = "ACK sip:bob@b SIP/2.0\r\nl:0\r\n\r\n";
    let wire = format!("\r\n{a}\r\n\r\n{b}\r\n{a}OPT");
    let (frames, err, rest) = split_all(wire.as_bytes(), &LIMITS);
    assert_eq!(err, None);
    assert_eq!(rest, 3);
    assert_eq!(
        frames,
        vec![
            Frame::Skip { len: 2 },
            Frame::Message { len: a.len() },
            Frame::Ping,
            Frame::Message { len: b.len() },
            Frame::Skip { len: 2 },
            Frame::Message { len: a.len() },
        ]
    );
}

/// RFC 5626 §4.4.1: CRLF CRLF is a ping; its prefixes wait for more; a lone CRLF followed by
/// anything else (a pong) is skipped.
#[test]
fn keepalive_ping_and_pong() {
    assert_eq!(one(PING), Ok(Frame::Ping));
    assert_eq!(one(b"\r\n\r\n\r\n\r\n"), Ok(Frame::Ping));
    for p in [&b"\r"[..], b"\r\n", b"\r\n\r"] {
        assert_eq!(one(p), Ok(Frame::NeedMore { scanned: 0 }), "{p:?}");
    }
    assert_eq!(one(b"\r\nOPTIONS"), Ok(Frame::Skip { len: 2 }));
    assert_eq!(one(b"\n\nOPTIONS"), Ok(Frame::Skip { len: 1 }));
    let (frames, err, rest) = split_all(b"\r\n\r\n\r\n\r\n\r\n", &LIMITS);
    assert_eq!(
        (frames, err, rest),
        (vec![Frame::Ping, Frame::Ping], None, 2)
    );
}

/// Limits: a header section that never ends, a message announcing more than allowed (refused
/// before its body arrives), and what is not SIP at all.
#[test]
fn limits_and_garbage() {
    let limits = StreamLimits {
        max_headers: 100,
        max_message: 200,
    };
    let long = format!("OPTIONS sip:a@b SIP/2.0\r\nX: {}", "y".repeat(100));
    assert_eq!(
        next_frame(long.as_bytes(), 0, &limits),
        Err(FrameError::HeadersTooLong { limit: 100 })
    );
    // Under the limit and incomplete: wait.
    assert!(matches!(
        next_frame(&long.as_bytes()[..99], 0, &limits),
        Ok(Frame::NeedMore { .. })
    ));
    let big = "OPTIONS sip:a@b SIP/2.0\r\nl: 500\r\n\r\n";
    assert_eq!(
        next_frame(big.as_bytes(), 0, &limits),
        Err(FrameError::TooLarge {
            len: (big.len() + 500) as u64,
            limit: 200
        })
    );
    // Exactly at the limit is accepted.
    let body = 200 - "OPTIONS sip:a@b SIP/2.0\r\nl: 000\r\n\r\n".len();
    let fits = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nl: {body:03}\r\n\r\n{}",
        "z".repeat(body)
    );
    assert_eq!(fits.len(), 200);
    assert_eq!(
        next_frame(fits.as_bytes(), 0, &limits),
        Ok(Frame::Message { len: 200 })
    );
    // A TLS ClientHello on a TCP port, a binary probe.
    assert_eq!(one(&[0x16, 3, 1, 0, 0xa5]), Err(FrameError::NotSip(0x16)));
    assert_eq!(one(b"\x00\x01"), Err(FrameError::NotSip(0)));
    assert_eq!(one(b""), Ok(Frame::NeedMore { scanned: 0 }));
}

/// A response frames like a request (RFC 3261 §18.3 applies to both).
#[test]
fn responses() {
    let r = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 2\r\n\r\nokSIP/2.0";
    assert_eq!(one(r.as_bytes()), Ok(Frame::Message { len: r.len() - 7 }));
}
