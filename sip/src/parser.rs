//! Framing and indexing: start line (RFC 3261 §7.1, §7.2), header lines with
//! folding (§7.3.1), body length (§18.3, §20.14).

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memchr2};
use smallvec::SmallVec;

use super::error::ParseError;
use super::headers::{is_token_str, HeaderName};
use super::message::{HeaderRef, Message, Span, StartLine};
use super::scan::{is_token, is_ws, parse_u64, NumError};
use super::uri::{is_uri_char, scheme_len};
use super::{MAX_HEADERS, MAX_LINE_LEN};

/// Finds the line starting at `pos`: returns (end of its content, start of the
/// next line). Lines end in CRLF or, leniently, a bare LF. A CR not followed by LF
/// stays in the line and sets `stray_cr`: one pass finds both.
#[inline]
fn next_line(b: &[u8], pos: usize, stray_cr: &mut bool) -> Result<(usize, usize), ParseError> {
    let mut i = pos;
    loop {
        let j =
            i + memchr2(b'\r', b'\n', b.get(i..).unwrap_or(&[])).ok_or(ParseError::Incomplete)?;
        match (b.get(j), b.get(j + 1)) {
            (Some(b'\n'), _) => return Ok((j, j + 1)),
            (Some(b'\r'), Some(b'\n')) => return Ok((j, j + 2)),
            _ => {
                *stray_cr = true;
                i = j + 1;
            }
        }
    }
}

/// `"SIP" "/" 1*DIGIT "." 1*DIGIT` ("SIP" case-insensitive, RFC 3261 §7.1).
fn is_version(v: &[u8]) -> bool {
    let Some((sip, num)) = v.split_at_checked(4) else {
        return false;
    };
    if !sip.eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let mut parts = num.split(|&c| c == b'.');
    let major = parts.next().unwrap_or(&[]);
    let minor = parts.next().unwrap_or(&[]);
    parts.next().is_none()
        && [major, minor]
            .iter()
            .all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
}

/// Parses the start line `b[s..e]` (already valid UTF-8); returns it and the
/// span of its SIP-Version.
fn start_line(b: &[u8], s: usize, e: usize) -> Result<(StartLine, Span), ParseError> {
    let line = b.get(s..e).unwrap_or(&[]);
    let text = std::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
    let sp1 = memchr(b' ', line).ok_or(ParseError::BadStartLine("no SP"))?;
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        if !is_version(&line[..sp1]) {
            return Err(ParseError::BadStartLine("bad SIP-Version"));
        }
        let rest = &line[sp1 + 1..];
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let code = text
            .get(sp1 + 1..sp1 + 1 + digits)
            .filter(|_| digits == 3)
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(ParseError::BadStartLine("status code not in 100..=699"))?;
        // A missing SP before an empty reason is tolerated (RFC 4475 §3.1.1.13).
        let reason = match rest.get(3) {
            None => e,
            Some(b' ') => s + sp1 + 5,
            Some(_) => return Err(ParseError::BadStartLine("no SP after status code")),
        };
        return Ok((
            StartLine::Response {
                code,
                reason: Span::new(reason, e),
            },
            Span::new(s, s + sp1),
        ));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version, single SPs only
    // (RFC 4475 §3.1.2.7-§3.1.2.10 reject <uri>, LWS in the URI, extra SPs).
    let method = text.get(..sp1).unwrap_or("");
    if !is_token_str(method) {
        return Err(ParseError::BadStartLine("bad method"));
    }
    let rest = &line[sp1 + 1..];
    let sp2 = sp1 + 1 + memchr(b' ', rest).ok_or(ParseError::BadStartLine("no SP after URI"))?;
    let uri = text.get(sp1 + 1..sp2).unwrap_or("");
    if uri.is_empty() || !uri.bytes().all(is_uri_char) || scheme_len(uri).is_none() {
        return Err(ParseError::BadStartLine("bad Request-URI"));
    }
    if !is_version(&line[sp2 + 1..]) {
        return Err(ParseError::BadStartLine("bad SIP-Version"));
    }
    Ok((
        StartLine::Request {
            method: Span::new(s, s + sp1),
            uri: Span::new(s + sp1 + 1, s + sp2),
        },
        Span::new(s + sp2 + 1, e),
    ))
}

/// Trims white space (SP, HT and unfolded CR/LF) off both ends of `b[s..e]`.
fn trim_span(b: &[u8], mut s: usize, mut e: usize) -> Span {
    while s < e && is_ws(b[s]) {
        s += 1;
    }
    while e > s && is_ws(b[e - 1]) {
        e -= 1;
    }
    Span::new(s, e)
}

/// A header being collected: name span, raw value start and end.
type Pending = (Span, usize, usize);

/// A header line's index fits the byte of `Message::first_at`.
const _: () = assert!(MAX_HEADERS <= 256);

#[inline]
fn push(headers: &mut SmallVec<[HeaderRef; 24]>, p: Pending) -> Result<(), ParseError> {
    if headers.len() >= MAX_HEADERS {
        return Err(ParseError::TooManyHeaders);
    }
    headers.push(HeaderRef {
        name: p.0,
        value: Span::new(p.1, p.2),
        id: HeaderName::Other,
    });
    Ok(())
}

impl Message {
    /// Parses one whole message (a UDP datagram or a WebSocket message).
    ///
    /// Eager work: skip leading CR/LF (RFC 3261 §7.5), parse the start line,
    /// split header lines (name, optional white space, colon, value; a line
    /// starting with SP/HT continues the previous one), check that the header
    /// section is UTF-8, and frame the body: a single `1*DIGIT` Content-Length
    /// no larger than what is present; extra octets after it are ignored
    /// (§18.3); without Content-Length the body is the rest.
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        if u32::try_from(buf.len()).is_err() {
            return Err(ParseError::TooLarge);
        }
        let b = &buf[..];
        let first = b
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .ok_or(ParseError::Empty)?;
        let mut stray_cr = false;
        let (sl_end, mut pos) = next_line(b, first, &mut stray_cr)?;
        if sl_end - first > MAX_LINE_LEN {
            return Err(ParseError::LineTooLong);
        }
        let mut headers: SmallVec<[HeaderRef; 24]> = SmallVec::new();
        let mut pending: Option<Pending> = None;
        let mut folded = false;
        let (hdr_end, body_start) = loop {
            let (end, next) = next_line(b, pos, &mut stray_cr)?;
            if end == pos {
                if let Some(p) = pending.take() {
                    push(&mut headers, p)?;
                }
                break (pos, next);
            }
            if b[pos] == b' ' || b[pos] == b'\t' {
                let p = pending.as_mut().ok_or(ParseError::UnexpectedContinuation)?;
                p.2 = end;
                folded = true;
                if end - p.0.start as usize > MAX_LINE_LEN {
                    return Err(ParseError::LineTooLong);
                }
            } else {
                if let Some(p) = pending.take() {
                    push(&mut headers, p)?;
                }
                if end - pos > MAX_LINE_LEN {
                    return Err(ParseError::LineTooLong);
                }
                let colon = pos + memchr(b':', &b[pos..end]).ok_or(ParseError::BadHeaderLine)?;
                let name = trim_span(b, pos, colon);
                if name.len() == 0 || !b[name.range()].iter().all(|&c| is_token(c)) {
                    return Err(ParseError::BadHeaderLine);
                }
                pending = Some((name, colon + 1, end));
            }
            pos = next;
        };
        if std::str::from_utf8(&b[first..hdr_end]).is_err() {
            return Err(ParseError::InvalidUtf8);
        }
        let buf = if folded {
            unfold(&buf, first, hdr_end)
        } else {
            buf
        };
        let b = &buf[..];
        let (mut present, mut repeated) = (0u64, 0u64);
        let mut first_at = [0u8; HeaderName::COUNT];
        for (i, h) in headers.iter_mut().enumerate() {
            h.value = trim_span(b, h.value.start as usize, h.value.end as usize);
            h.id = HeaderName::from_wire_bytes(&b[h.name.range()]);
            let bit = h.id.bit();
            if present & bit == 0 {
                if let Some(at) = first_at.get_mut(h.id as usize) {
                    // `push` keeps at most MAX_HEADERS (<= 256) lines.
                    *at = u8::try_from(i).unwrap_or(u8::MAX);
                }
            }
            repeated |= present & bit;
            present |= bit;
        }
        let (start, version) = start_line(b, first, sl_end)?;
        let available = b.len() - body_start;
        let mut content_length = None;
        for h in headers.iter().filter(|h| h.id == HeaderName::ContentLength) {
            if content_length.is_some() {
                return Err(ParseError::DuplicateContentLength);
            }
            let text = std::str::from_utf8(&b[h.value.range()]).unwrap_or("");
            let declared = match parse_u64(text) {
                Ok(v) => v,
                Err(NumError::Overflow) => u64::MAX,
                Err(NumError::NotDigits) => return Err(ParseError::BadContentLength),
            };
            match u32::try_from(declared) {
                Ok(v) if v as usize <= available => content_length = Some(v),
                _ => {
                    return Err(ParseError::ContentLengthTooLarge {
                        declared,
                        available,
                    })
                }
            }
        }
        let body_end = body_start + content_length.map_or(available, |v| v as usize);
        Ok(Message {
            start,
            version,
            headers,
            body: Span::new(body_start, body_end),
            content_length,
            extent: Span::new(first, body_end),
            text_end: Span::new(first, hdr_end).end,
            cache: Default::default(),
            present,
            repeated,
            first_at,
            stray_cr,
            buf,
        })
    }
}

/// Copies the buffer and replaces the CR/LF of every fold (a line break
/// followed by SP/HT) in `start..end` with SP, keeping all offsets (RFC 3261
/// §7.3.1: a fold is equivalent to one SP).
fn unfold(buf: &Bytes, start: usize, end: usize) -> Bytes {
    let mut m = BytesMut::from(&buf[..]);
    for i in start..end.saturating_sub(1) {
        if m[i] == b'\n' && (m[i + 1] == b' ' || m[i + 1] == b'\t') {
            m[i] = b' ';
            if i > start && m[i - 1] == b'\r' {
                m[i - 1] = b' ';
            }
        }
    }
    m.freeze()
}
