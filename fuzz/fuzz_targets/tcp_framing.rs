//! Stream framing (RFC 3261 §18.3, RFC 5626 §4.4.1 keep-alives, `sipcore_sip::stream`): never
//! panics, stays within the buffer, and finds the same frames whether the bytes arrive in one
//! read or in the reads the first input byte chooses (split reads carry `scanned` over, as
//! the TCP driver does).
#![no_main]
use sipcore_sip::stream::{next_frame, split_all, Frame, StreamLimits, PING};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let limits = StreamLimits {
        max_headers: 512,
        max_message: 2048,
    };
    let (whole, whole_err, rest) = split_all(data, &limits);
    assert!(rest <= data.len());
    // The same bytes fed in pieces of `step` bytes (1..=64).
    let step = usize::from(step % 64) + 1;
    let (mut buf, mut frames, mut err) = (Vec::new(), Vec::new(), None);
    let mut scanned = 0;
    'feed: for piece in data.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match next_frame(&buf, scanned, &limits) {
                Ok(Frame::NeedMore { scanned: s }) => {
                    assert!(s <= buf.len());
                    scanned = s;
                    break;
                }
                Ok(f) => {
                    let n = match f {
                        Frame::Message { len } | Frame::Skip { len } => len,
                        Frame::Ping => PING.len(),
                        Frame::NeedMore { .. } => unreachable!(),
                    };
                    assert!(n > 0 && n <= buf.len());
                    if let Frame::Message { len } = f {
                        assert!(len <= limits.max_message);
                    }
                    buf.drain(..n);
                    scanned = 0;
                    frames.push(f);
                }
                Err(e) => {
                    err = Some(e);
                    break 'feed;
                }
            }
        }
    }
    // A ping's prefix at the end of one read may be followed by more CRLFs; a piecewise
    // reader can never see fewer frames than exist in the whole, nor different messages.
    let msgs = |v: &[Frame]| {
        v.iter()
            .filter(|f| matches!(f, Frame::Message { .. }))
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(msgs(&frames), msgs(&whole));
    assert_eq!(err, whole_err);
});
