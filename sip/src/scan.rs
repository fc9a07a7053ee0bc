//! Lexical helpers shared by the parsers: RFC 3261 §25.1 character classes,
//! linear white space, quoted strings, numbers and comma-separated lists.

use super::error::ParseError;

/// `token` characters (RFC 3261 §25.1).
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// [`is_token`] as a table: it runs for every byte of every header name and parameter.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// White space inside a header value: SP and HTAB, plus CR and LF (the message
/// parser turns folds into SP, but values may also come from other sources).
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Index of the first byte at or after `i` that is not white space.
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Index of the first byte at or after `i` that is not a token character.
pub(crate) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_token(b[i]) {
        i += 1;
    }
    i
}

/// `s` without leading and trailing white space.
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|&c| !is_ws(c)).map_or(start, |i| i + 1);
    // Both ends sit next to ASCII white space or at the ends: char boundaries.
    s.get(start..end).unwrap_or_default()
}

/// The dotted-quad text of `ip` (the text of `Ipv4Addr`'s `Display`) written into `buf`
/// without the formatting machinery, which cost 2% of an OPTIONS when the script compares `$si`;
/// returns its length. Shared by the `received` parameter and the host's `$si`.
pub fn ipv4_text(ip: std::net::Ipv4Addr, buf: &mut [u8; 15]) -> usize {
    let mut n = 0;
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    n
}

/// Appends `n` in decimal (no formatting machinery: this is on the path of every message we
/// write).
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

/// Whether `s` contains white space.
pub(crate) fn has_ws(s: &str) -> bool {
    s.bytes().any(is_ws)
}

/// Given `b[start] == b'"'`, the index just past the closing quote of the
/// quoted-string (RFC 3261 §25.1: quoted-pair is `\` followed by any octet but
/// CR and LF).
pub(crate) fn quoted_end(b: &[u8], start: usize) -> Result<usize, ParseError> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                Some(&c) if c != b'\r' && c != b'\n' => i += 2,
                _ => return Err(ParseError::BadQuotedString),
            },
            _ => i += 1,
        }
    }
    Err(ParseError::BadQuotedString)
}

/// Why [`parse_u64`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumError {
    /// Empty, or a byte other than an ASCII digit.
    NotDigits,
    /// The value does not fit in a `u64`.
    Overflow,
}

/// Parses `1*DIGIT` (leading zeros allowed, RFC 4475 §3.1.1.1) without
/// overflowing.
pub(crate) fn parse_u64(s: &str) -> Result<u64, NumError> {
    if s.is_empty() {
        return Err(NumError::NotDigits);
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return Err(NumError::NotDigits);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(NumError::Overflow)?;
    }
    Ok(v)
}

/// Splits a header value at the commas that separate list elements (RFC 3261
/// §7.3.1), ignoring commas inside quoted strings and `<...>`. Every element is
/// yielded trimmed, empty ones included, so that callers can reject them.
#[derive(Debug, Clone)]
pub(crate) struct CommaSplit<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> CommaSplit<'a> {
    /// Starts splitting `s`.
    pub(crate) fn new(s: &'a str) -> Self {
        CommaSplit {
            s,
            pos: 0,
            done: false,
        }
    }

    /// The unsplit text after the elements yielded so far (just past the last
    /// separating comma); `None` once the last element has been yielded.
    pub(crate) fn rest(&self) -> Option<&'a str> {
        (!self.done).then(|| self.s.get(self.pos..).unwrap_or(""))
    }
}

impl<'a> Iterator for CommaSplit<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let (mut i, mut quoted, mut angle) = (start, false, false);
        // Jump between the bytes that matter in the current state (memchr): inside quotes a
        // quote or an escape; inside `<>` the closing `>` or a quote; else a comma, a quote or
        // a `<`. Every other byte changes nothing.
        loop {
            let rest = b.get(i..).unwrap_or_default();
            let found = if quoted {
                memchr::memchr2(b'"', b'\\', rest)
            } else if angle {
                memchr::memchr2(b'>', b'"', rest)
            } else {
                memchr::memchr3(b',', b'"', b'<', rest)
            };
            let Some(j) = found else {
                break;
            };
            i += j;
            match b.get(i) {
                Some(b'\\') => i += 1,
                Some(b'"') => quoted = !quoted,
                Some(b'<') => angle = true,
                Some(b'>') => angle = false,
                Some(b',') => {
                    self.pos = i + 1;
                    return Some(trim(self.s.get(start..i).unwrap_or("")));
                }
                _ => {}
            }
            i += 1;
        }
        self.done = true;
        Some(trim(self.s.get(start..).unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time splitter that the memchr version replaced.
    fn comma_split_reference(s: &str) -> Vec<&str> {
        let b = s.as_bytes();
        let (mut out, mut start) = (Vec::new(), 0);
        let (mut i, mut quoted, mut angle) = (0, false, false);
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    out.push(trim(&s[start..i]));
                    start = i + 1;
                    (quoted, angle) = (false, false);
                }
                _ => {}
            }
            i += 1;
        }
        out.push(trim(s.get(start..).unwrap_or("")));
        out
    }

    /// Every string of up to six bytes over the characters that matter splits as before.
    #[test]
    fn comma_split_matches_reference_exhaustively() {
        const ALPHABET: &[u8] = b",\"<>\\a ";
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            assert_eq!(
                CommaSplit::new(&s).collect::<Vec<_>>(),
                comma_split_reference(&s),
                "{s:?}"
            );
            if s.len() < 6 {
                for &c in ALPHABET {
                    stack.push(format!("{s}{}", char::from(c)));
                }
            }
        }
    }

    #[test]
    fn token_class() {
        for b in b"aZ09-.!%*_+`'~" {
            assert!(is_token(*b), "{}", *b as char);
        }
        for b in b" \t\"(),/:;<=>?@[\\]{}" {
            assert!(!is_token(*b), "{}", *b as char);
        }
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(quoted_end(br#""abc" x"#, 0), Ok(5));
        assert_eq!(quoted_end(br#""a\"b""#, 0), Ok(6));
        assert_eq!(quoted_end(br#""a\\" x"#, 0), Ok(5));
        assert_eq!(quoted_end(br#""open"#, 0), Err(ParseError::BadQuotedString));
        assert_eq!(quoted_end(b"\"a\\", 0), Err(ParseError::BadQuotedString));
        assert_eq!(
            quoted_end(b"\"a\\\r\"", 0),
            Err(ParseError::BadQuotedString)
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0068"), Ok(68));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), Err(NumError::Overflow));
        assert_eq!(parse_u64(""), Err(NumError::NotDigits));
        assert_eq!(parse_u64("-999"), Err(NumError::NotDigits));
        assert_eq!(parse_u64("1 2"), Err(NumError::NotDigits));
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let v: Vec<&str> =
            CommaSplit::new(r#" "Doe, J\"," <sip:a@b;x=1,2>;q=1 , <sip:c@d> ,sip:e@f"#).collect();
        assert_eq!(
            v,
            [r#""Doe, J\"," <sip:a@b;x=1,2>;q=1"#, "<sip:c@d>", "sip:e@f"]
        );
        let v: Vec<&str> = CommaSplit::new("a,,b,").collect();
        assert_eq!(v, ["a", "", "b", ""]);
        let v: Vec<&str> = CommaSplit::new("").collect();
        assert_eq!(v, [""]);
        let mut it = CommaSplit::new("<sip:a>, <sip:b>,c");
        assert_eq!(it.next(), Some("<sip:a>"));
        assert_eq!(it.rest(), Some(" <sip:b>,c"));
        assert_eq!(it.next(), Some("<sip:b>"));
        assert_eq!(it.next(), Some("c"));
        assert_eq!(it.rest(), None);
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 65535, 4_294_967_295, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn trimming() {
        assert_eq!(trim(" \t a b \r\n"), "a b");
        assert!(has_ws("a b"));
        assert!(!has_ws("ab"));
        assert_eq!(skip_ws(b"  x", 0), 2);
        assert_eq!(token_end(b"abc;d", 0), 3);
    }
}
