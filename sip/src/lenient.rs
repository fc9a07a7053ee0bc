//! Answering a request the parser rejected (RFC 3261 §8.2, §21.4.1; RFC 4475 §3.1.2): the
//! reply still needs the request's Via, From, To, Call-ID and CSeq, so they are picked out
//! line by line without the full grammar.

use super::headers::HeaderName;
use sha1::{Digest, Sha1};
use std::io::Write;

/// A stateless error reply (`code`, `reason`) to the malformed request `raw`, or `None`
/// when `raw` is a response, an ACK (never answered, §17), or lacks one of Via, From, To,
/// Call-ID, CSeq (compact forms count), or one of those is not UTF-8 (it could not be copied
/// faithfully). Other header fields and the body may hold anything: a request whose
/// User-Agent is not UTF-8 still gets its 400. Header values are copied as received; folded
/// continuation lines are joined with a space; CR/LF never reach the output except as line
/// ends. To gets a tag when it has none (§8.2.6.2).
pub fn reply_to_malformed(raw: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    let start_at = raw.iter().position(|b| !matches!(b, b'\r' | b'\n'))?;
    let text = &raw[start_at..];
    let head_len = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(text.len());
    let mut lines = unfold(&text[..head_len]);
    let (start, _) = lines.next()?;
    let method = start.split([' ', '\t']).next()?;
    if method.is_empty() || method.starts_with("SIP/") || method.eq_ignore_ascii_case("ACK") {
        return None;
    }
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for (line, utf8) in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        // Full and compact names (RFC 3261 §7.3.3), as the parser knows them.
        let slot = match HeaderName::from_wire(name) {
            HeaderName::Via => {
                vias.push(utf8.then(|| value.to_string())?);
                continue;
            }
            HeaderName::From => &mut from,
            HeaderName::To => &mut to,
            HeaderName::CallId => &mut call_id,
            HeaderName::CSeq => &mut cseq,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(utf8.then(|| value.to_string())?);
        }
    }
    let (from, mut to, call_id, cseq) = (from?, to?, call_id?, cseq?);
    if vias.is_empty() {
        return None;
    }
    if !to.to_ascii_lowercase().contains(";tag=") {
        let d = Sha1::digest(raw);
        let mut tag = [0u8; 16];
        super::write_hex(&mut tag, &d);
        to.push_str(";tag=");
        to.push_str(std::str::from_utf8(&tag).unwrap_or_default());
    }
    let mut out = Vec::with_capacity(256 + head_len);
    let _ = write!(out, "SIP/2.0 {code} {}\r\n", clean(reason));
    for v in &vias {
        let _ = write!(out, "Via: {}\r\n", clean(v));
    }
    for (n, v) in [
        ("From", &from),
        ("To", &to),
        ("Call-ID", &call_id),
        ("CSeq", &cseq),
    ] {
        let _ = write!(out, "{n}: {}\r\n", clean(v));
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

/// Header lines with continuation lines (starting with SP or HTAB) joined to the previous,
/// each with whether it was valid UTF-8 (if not, it is decoded lossily).
fn unfold(head: &[u8]) -> impl Iterator<Item = (String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for l in head.split(|&b| b == b'\n') {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let (l, utf8) = match std::str::from_utf8(l) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), true),
            Err(_) => (String::from_utf8_lossy(l), false),
        };
        match out.last_mut() {
            Some((prev, ok)) if l.starts_with([' ', '\t']) => {
                prev.push(' ');
                prev.push_str(l.trim());
                *ok &= utf8;
            }
            _ => out.push((l.into_owned(), utf8)),
        }
    }
    out.into_iter()
}

fn clean(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::reply_to_malformed;

    #[test]
    fn rfc4475_ltgtruri_gets_a_400() {
        // RFC 4475 §3.1.2.7: the Request-URI is enclosed in <>.
        let raw = include_bytes!("testdata/ltgtruri.dat");
        let r = String::from_utf8(reply_to_malformed(raw, 400, "Bad Request").unwrap()).unwrap();
        assert!(r.starts_with("SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/UDP 192.0.2.5\r\nFrom: sip:caller@example.net;tag=39291\r\nTo: sip:user@example.com;tag="), "{r}");
        assert!(
            r.contains("\r\nCall-ID: ltgtruri.1@192.0.2.5\r\nCSeq: 1 INVITE\r\n"),
            "{r}"
        );
        assert!(r.ends_with("\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn not_answered() {
        assert_eq!(
            reply_to_malformed(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 400, "x"),
            None
        );
        let ack = b"ACK <sip:a@b> SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: 1\r\nCSeq: 1 ACK\r\n\r\n";
        assert_eq!(reply_to_malformed(ack, 400, "x"), None);
        let no_cseq = b"INVITE <sip:a@b> SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: 1\r\n\r\n";
        assert_eq!(reply_to_malformed(no_cseq, 400, "x"), None);
        assert_eq!(reply_to_malformed(&[0xff, 0xfe], 400, "x"), None);
        let bad_call_id = b"OPTIONS <sip:a@b> SIP/2.0\r\nv: SIP/2.0/WS h;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: a\xffb\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(reply_to_malformed(bad_call_id, 400, "x"), None);
    }

    #[test]
    fn other_fields_not_utf8_still_answered() {
        // A Subject and a body that are not UTF-8 do not stop the 400 (RFC 3261 §8.2).
        let raw = b"\r\nMESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK9\r\nSubject: caf\xe9\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: u8\r\nCSeq: 7 MESSAGE\r\nContent-Length: 2\r\n\r\n\xff\xfe";
        let r = String::from_utf8(reply_to_malformed(raw, 400, "Bad Request").unwrap()).unwrap();
        assert!(
            r.starts_with("SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK9\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag="),
            "{r}"
        );
        assert!(
            r.ends_with("\r\nCall-ID: u8\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n"),
            "{r}"
        );
    }

    #[test]
    fn compact_and_folded_headers() {
        let raw = b"OPTIONS <sip:a@b> SIP/2.0\r\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nf: <sip:a@b>;\r\n tag=1\r\nt: <sip:c@d>;tag=9\r\ni: abc\r\nCSeq: 2 OPTIONS\r\n\r\n";
        let r = String::from_utf8(reply_to_malformed(raw, 400, "Bad Request").unwrap()).unwrap();
        assert_eq!(
            r,
            "SIP/2.0 400 Bad Request\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\nFrom: <sip:a@b>; tag=1\r\nTo: <sip:c@d>;tag=9\r\nCall-ID: abc\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
