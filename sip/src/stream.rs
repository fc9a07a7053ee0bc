//! Framing of SIP messages on a byte stream (RFC 3261 §18.3, TCP and TLS), and the CRLF
//! keep-alive of RFC 5626 §4.4.1. Pure code over the bytes received so far on one connection:
//! the driver appends what it reads to a buffer, asks [`next_frame`] what is at its front,
//! consumes that many bytes and asks again.
//!
//! * Over a stream, Content-Length (compact form `l`) is mandatory (RFC 3261 §18.3, §20.14):
//!   a message without it, with a value that is not a number, or with two different values
//!   is an error, and the connection cannot be resynchronised (the caller closes it).
//! * CRLFs before a start line are skipped (RFC 3261 §7.5); a double CRLF is a keep-alive
//!   "ping" to be answered with a single CRLF "pong" (RFC 5626 §4.4.1).
//! * The header section and the whole message are bounded ([`StreamLimits`]); a message
//!   announcing more than the limit is refused as soon as its header section is complete,
//!   before its body is read.

use memchr::memmem;
use thiserror::Error;

/// The keep-alive "ping" of RFC 5626 §4.4.1 (double CRLF).
pub const PING: &[u8] = b"\r\n\r\n";

/// The keep-alive "pong" of RFC 5626 §4.4.1 (single CRLF), the answer to [`PING`].
pub const PONG: &[u8] = b"\r\n";

/// Bounds on one message received over a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Longest header section (start line to the empty line included), in bytes.
    pub max_headers: usize,
    /// Longest message (header section and body), in bytes.
    pub max_message: usize,
}

impl Default for StreamLimits {
    /// 16 KiB of header section, 64 KiB in all (OpenSIPS's TCP buffer is 64 KiB).
    fn default() -> Self {
        StreamLimits {
            max_headers: 16 * 1024,
            max_message: 65535,
        }
    }
}

/// What the front of a stream buffer holds (RFC 3261 §18.3, RFC 5626 §4.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// One complete message: the first `len` bytes (start line to the end of the body).
    Message {
        /// Bytes of the message, from the start of the buffer.
        len: usize,
    },
    /// A keep-alive ping (CRLF CRLF, the first 4 bytes): consume it and answer [`PONG`].
    Ping,
    /// `len` bytes of CR/LF before a start line (or a peer's pong): consume them, nothing
    /// to answer.
    Skip {
        /// Bytes to drop from the front.
        len: usize,
    },
    /// Not complete yet: read more. The first `scanned` bytes hold no end of header section;
    /// pass it back as `scanned` with the next call so a message trickled in byte by byte
    /// costs linear time.
    NeedMore {
        /// Bytes known not to contain the end of the header section.
        scanned: usize,
    },
}

/// Why the bytes at the front of a stream are not a message we accept (RFC 3261 §18.3). The
/// stream cannot be resynchronised after any of these: the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The first byte of a start line is not a letter (a method or `SIP/2.0`): TLS on a TCP
    /// port, a binary probe, or garbage.
    #[error("not SIP: start line begins with byte 0x{0:02x}")]
    NotSip(u8),
    /// No end of header section within the limit.
    #[error("header section longer than {limit} bytes")]
    HeadersTooLong {
        /// [`StreamLimits::max_headers`].
        limit: usize,
    },
    /// No Content-Length header field (mandatory over a stream, RFC 3261 §18.3).
    #[error("no Content-Length (mandatory over a stream)")]
    MissingContentLength,
    /// A Content-Length that is not a decimal number.
    #[error("invalid Content-Length {0:?}")]
    InvalidContentLength(String),
    /// Two Content-Length header fields with different values.
    #[error("conflicting Content-Length values {0} and {1}")]
    ConflictingContentLength(u64, u64),
    /// Header section and announced body together exceed the limit.
    #[error("message of {len} bytes exceeds {limit}")]
    TooLarge {
        /// Header section plus Content-Length.
        len: u64,
        /// [`StreamLimits::max_message`].
        limit: usize,
    },
}

/// What the front of `buf` holds; `scanned` is the value of the last
/// [`Frame::NeedMore`] for the same message (0 otherwise). Pure, linear in what is new.
pub fn next_frame(buf: &[u8], scanned: usize, limits: &StreamLimits) -> Result<Frame, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(Frame::NeedMore { scanned: 0 });
    };
    if first == b'\r' || first == b'\n' {
        return Ok(crlf_frame(buf));
    }
    if !first.is_ascii_alphabetic() {
        return Err(FrameError::NotSip(first));
    }
    let window = limits.max_headers.min(buf.len());
    // The end marker may straddle the bytes already scanned: look again from 3 back.
    let from = scanned.saturating_sub(3).min(window);
    let head_end = match memmem::find(&buf[from..window], b"\r\n\r\n") {
        Some(i) => from + i + 4,
        None if buf.len() >= limits.max_headers => {
            return Err(FrameError::HeadersTooLong {
                limit: limits.max_headers,
            })
        }
        None => return Ok(Frame::NeedMore { scanned: window }),
    };
    let body = content_length(&buf[..head_end])?;
    let len = head_end as u64 + body;
    if len > limits.max_message as u64 {
        return Err(FrameError::TooLarge {
            len,
            limit: limits.max_message,
        });
    }
    let len = len as usize;
    if buf.len() < len {
        // The header section is complete; only the body is missing. (The next call finds
        // the same end of header section again: it is the first, starting at head_end - 4.)
        return Ok(Frame::NeedMore {
            scanned: head_end - 1,
        });
    }
    Ok(Frame::Message { len })
}

/// The front of a buffer starting with CR or LF: a ping, bytes to skip, or too few bytes to
/// tell (a prefix of the ping).
fn crlf_frame(buf: &[u8]) -> Frame {
    if buf.starts_with(PING) {
        return Frame::Ping;
    }
    if PING.starts_with(buf) {
        return Frame::NeedMore { scanned: 0 };
    }
    // A CRLF (a pong, or the CRLF some stacks send between messages) or a stray LF/CR.
    let len = if buf.starts_with(PONG) { 2 } else { 1 };
    Frame::Skip { len }
}

/// The Content-Length of a header section (start line to the empty line), RFC 3261 §20.14:
/// `Content-Length` or `l`, any case, whitespace around the colon, folded lines joined.
fn content_length(head: &[u8]) -> Result<u64, FrameError> {
    let mut found: Option<u64> = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        let mut value = trim(&line[colon + 1..]).to_vec();
        // RFC 3261 §7.3.1 line folding: continuation lines start with SP or HT.
        while let Some(next) =
            lines.next_if(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t'))
        {
            let next = next.strip_suffix(b"\r").unwrap_or(next);
            if !value.is_empty() && !trim(next).is_empty() {
                value.push(b' ');
            }
            value.extend_from_slice(trim(next));
        }
        let n = parse_len(&value)?;
        match found {
            Some(prev) if prev != n => return Err(FrameError::ConflictingContentLength(prev, n)),
            _ => found = Some(n),
        }
    }
    found.ok_or(FrameError::MissingContentLength)
}

/// A Content-Length value: 1 to 10 decimal digits (a larger value exceeds any limit).
fn parse_len(v: &[u8]) -> Result<u64, FrameError> {
    let ok = !v.is_empty() && v.len() <= 10 && v.iter().all(u8::is_ascii_digit);
    if !ok {
        return Err(FrameError::InvalidContentLength(
            String::from_utf8_lossy(&v[..v.len().min(32)]).into_owned(),
        ));
    }
    Ok(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t');
    let Some(start) = start else {
        return &[];
    };
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .unwrap_or(start);
    &s[start..=end]
}

/// Bytes of leading CR/LF in `buf` (RFC 3261 §7.5: ignored before a start line).
pub fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Everything [`next_frame`] finds in `buf` read in one piece, in order, with the error that
/// stopped it if any, and the bytes left over (an incomplete message). For tests and fuzzing.
pub fn split_all(buf: &[u8], limits: &StreamLimits) -> (Vec<Frame>, Option<FrameError>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        match next_frame(&buf[at..], 0, limits) {
            Ok(Frame::NeedMore { .. }) => return (frames, None, buf.len() - at),
            Ok(f) => {
                at += match f {
                    Frame::Message { len } | Frame::Skip { len } => len,
                    Frame::Ping => PING.len(),
                    Frame::NeedMore { .. } => 0,
                };
                frames.push(f);
            }
            Err(e) => return (frames, Some(e), buf.len() - at),
        }
    }
}
