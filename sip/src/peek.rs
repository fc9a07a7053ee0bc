//! What a transport reads from a message before the host parses it: the Call-ID (RFC 3261
//! §20.8), which keeps the datagrams of one call in the order they came while the datagrams
//! of different calls are handled at once (proto_udp's `udp_spread "call"`).
//!
//! A look, not a parse: the first header line named `Call-ID` or `i` (any case, whitespace
//! before the colon) in the header section, its value without surrounding whitespace. A
//! folded value is cut at its first line. Whatever the bytes, the answer is a piece of them or
//! nothing; a message this gets "wrong" is only kept in order with fewer or other messages.

/// The Call-ID value of the message at the start of `msg`, if its header section has one
/// before the empty line.
pub fn call_id(msg: &[u8]) -> Option<&[u8]> {
    // CRLFs before the start line are ignored (§7.5), as the parser does; the start line is
    // skipped: a header starts after a line feed.
    let msg = &msg[crate::stream::leading_crlf(msg)..];
    let mut at = memchr::memchr(b'\n', msg)? + 1;
    while at < msg.len() {
        let end = memchr::memchr(b'\n', &msg[at..]).map_or(msg.len(), |i| at + i);
        let line = &msg[at..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // the end of the header section
        }
        if let Some(value) = value_of(line) {
            return Some(value);
        }
        at = end + 1;
    }
    None
}

/// The value of `line` when it is a Call-ID header line (long or compact name).
fn value_of(line: &[u8]) -> Option<&[u8]> {
    // Cheap refusal first: both names start with `c`/`C` or `i`/`I`.
    match line.first()? {
        b'c' | b'C' | b'i' | b'I' => {}
        _ => return None,
    }
    let colon = memchr::memchr(b':', line)?;
    let name = trim(&line[..colon]);
    if !name.eq_ignore_ascii_case(b"call-id") && !name.eq_ignore_ascii_case(b"i") {
        return None;
    }
    let value = trim(&line[colon + 1..]);
    (!value.is_empty()).then_some(value)
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::call_id;

    fn id(msg: &str) -> Option<&str> {
        call_id(msg.as_bytes()).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn long_and_compact_names_any_case_with_whitespace() {
        let m = "INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 Call-ID: a84b4c76e66710@pc33.atlanta.com\r\nCSeq: 1 INVITE\r\n\r\n";
        assert_eq!(id(m), Some("a84b4c76e66710@pc33.atlanta.com"));
        assert_eq!(id("SIP/2.0 200 OK\r\ni:x1\r\n\r\n"), Some("x1"));
        assert_eq!(
            id("BYE s SIP/2.0\r\nCALL-ID \t:  x2 \t\r\n\r\n"),
            Some("x2")
        );
        assert_eq!(id("BYE s SIP/2.0\ncall-id: x3\n\n"), Some("x3"));
        // The first of two.
        assert_eq!(
            id("BYE s SIP/2.0\r\ni: one\r\nCall-ID: two\r\n\r\n"),
            Some("one")
        );
    }

    #[test]
    fn nothing_outside_the_header_section_or_in_other_headers() {
        // In the body, after the empty line.
        assert_eq!(id("MESSAGE s SIP/2.0\r\nl: 12\r\n\r\nCall-ID: body"), None);
        // In the start line, in another header's value, a prefix of another name.
        assert_eq!(id("Call-ID: x SIP/2.0\r\nTo: <sip:a>\r\n\r\n"), None);
        assert_eq!(id("BYE s SIP/2.0\r\nSubject: Call-ID: x\r\n\r\n"), None);
        assert_eq!(
            id("BYE s SIP/2.0\r\nCall-IDs: x\r\nIn-Reply-To: y\r\n\r\n"),
            None
        );
        // Empty value, no colon, nothing after the start line.
        assert_eq!(id("BYE s SIP/2.0\r\nCall-ID:  \r\n\r\n"), None);
        assert_eq!(id("BYE s SIP/2.0\r\nCall-ID x\r\n\r\n"), None);
        assert_eq!(id("BYE s SIP/2.0"), None);
        assert_eq!(id(""), None);
        // A folded value is cut at its first line; the continuation is not a header.
        assert_eq!(id("BYE s SIP/2.0\r\nCall-ID: a\r\n b\r\n\r\n"), Some("a"));
    }

    #[test]
    fn a_truncated_message_still_gives_a_complete_line() {
        assert_eq!(id("BYE s SIP/2.0\r\ni: abc"), Some("abc"));
        // CRLFs before the start line are skipped (RFC 3261 §7.5).
        assert_eq!(id("\r\n\r\nBYE s SIP/2.0\r\ni: abc\r\n\r\n"), Some("abc"));
    }
}
