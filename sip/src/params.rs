//! `;name[=value]` parameter lists: header parameters (RFC 3261 §25.1
//! generic-param, with LWS around `;` and `=`) and URI parameters (§19.1.1).

use super::error::ParseError;
use super::scan::{is_token, quoted_end, skip_ws, token_end, trim};

/// A validated `;`-separated parameter list borrowed from the message.
///
/// Parameters are looked up lazily by scanning the list; names compare
/// case-insensitively (RFC 3261 §7.3.1). Values are returned as written: a
/// quoted-string value keeps its quotes and escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Wraps an already validated list (text starting at the first `;`).
    pub(crate) fn from_validated(raw: &'a str) -> Self {
        Params { raw }
    }

    /// Parses header parameters: `s` is empty/white space, or
    /// `*( LWS ";" LWS token [ LWS "=" LWS ( token / host / quoted-string ) ] ) LWS`.
    pub(crate) fn parse_header(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_header_with(s, |_, _| {})
    }

    /// [`Params::parse_header`], handing every parameter to `each` as the check walks over
    /// it, in order, as [`Params::iter`] would give it (`(name, value)`, a quoted value with
    /// its quotes): a caller that checks or looks for parameters needs no second pass. The
    /// grammar of the whole list decides the result; `each` only looks.
    pub(crate) fn parse_header_with(
        s: &'a str,
        mut each: impl FnMut(&'a str, Option<&'a str>),
    ) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let mut i = skip_ws(b, 0);
        let start = i;
        while i < b.len() {
            if b[i] != b';' {
                return Err(ParseError::BadParams);
            }
            i = skip_ws(b, i + 1);
            let name = i;
            i = token_end(b, i);
            if i == name {
                return Err(ParseError::BadParams);
            }
            let name = s.get(name..i).unwrap_or_default();
            i = skip_ws(b, i);
            let mut value = None;
            if i < b.len() && b[i] == b'=' {
                i = skip_ws(b, i + 1);
                let v = i;
                if i < b.len() && b[i] == b'"' {
                    i = quoted_end(b, i)?;
                } else {
                    while i < b.len() && (is_token(b[i]) || matches!(b[i], b'[' | b']' | b':')) {
                        i += 1;
                    }
                    if i == v {
                        return Err(ParseError::BadParams);
                    }
                }
                // Both ends are ASCII (a quote, a token byte or the end): char boundaries.
                value = Some(s.get(v..i).unwrap_or_default());
                i = skip_ws(b, i);
            }
            each(name, value);
        }
        Ok(Params {
            raw: trim(s.get(start..).unwrap_or("")),
        })
    }

    /// The list as written, starting at the first `;` (empty if none).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether the list has no parameter.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Iterates `(name, value)` pairs in order; `value` is `None` for a
    /// parameter without `=` (e.g. `;lr`, `;rport`).
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }

    /// The first parameter called `name` (case-insensitive): `None` if absent,
    /// `Some(None)` if present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a parameter called `name` is present (with or without value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Iterator over the `(name, value)` pairs of a [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        // One pass per element: find its end (the next `;` outside quotes) and its first `=`.
        loop {
            let s = self.rest.strip_prefix(';').unwrap_or(self.rest);
            let b = s.as_bytes();
            if b.is_empty() {
                return None;
            }
            let (mut i, mut eq) = (0, None);
            loop {
                let Some(j) = memchr::memchr3(b';', b'"', b'=', b.get(i..).unwrap_or_default())
                else {
                    i = b.len();
                    break;
                };
                i += j;
                match b.get(i) {
                    Some(b';') => break,
                    Some(b'"') => i = quoted_end(b, i).unwrap_or(b.len()),
                    _ => {
                        eq.get_or_insert(i);
                        i += 1;
                    }
                }
            }
            self.rest = s.get(i..).unwrap_or("");
            // `;`, `"` and `=` are ASCII, so every index here is a char boundary.
            let item = match eq {
                Some(e) => (
                    trim(s.get(..e).unwrap_or("")),
                    Some(trim(s.get(e + 1..i).unwrap_or(""))),
                ),
                None => (trim(s.get(..i).unwrap_or("")), None),
            };
            if eq.is_none() && item.0.is_empty() {
                continue;
            }
            return Some(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The iterator the single-pass version replaced.
    fn params_reference(raw: &str) -> Vec<(&str, Option<&str>)> {
        let (mut out, mut rest) = (Vec::new(), raw);
        loop {
            let s = rest.strip_prefix(';').unwrap_or(rest);
            if trim(s).is_empty() {
                return out;
            }
            let b = s.as_bytes();
            let mut i = 0;
            while i < b.len() && b[i] != b';' {
                if b[i] == b'"' {
                    i = quoted_end(b, i).unwrap_or(b.len());
                } else {
                    i += 1;
                }
            }
            let elem = trim(&s[..i]);
            rest = &s[i..];
            if !elem.is_empty() {
                out.push(match elem.split_once('=') {
                    Some((n, v)) => (trim(n), Some(trim(v))),
                    None => (elem, None),
                });
            }
        }
    }

    /// Every parameter list that parses, of up to seven bytes over the characters that
    /// matter, iterates as before.
    #[test]
    fn params_match_reference_exhaustively() {
        const ALPHABET: &[u8] = b";=\"a \\:";
        let mut stack = vec![String::new()];
        let mut checked = 0;
        while let Some(s) = stack.pop() {
            let mut seen = Vec::new();
            let with = Params::parse_header_with(&s, |n, v| seen.push((n, v)));
            assert_eq!(with.is_ok(), Params::parse_header(&s).is_ok(), "{s:?}");
            if let Ok(p) = with {
                assert_eq!(
                    p.iter().collect::<Vec<_>>(),
                    params_reference(p.as_str()),
                    "{s:?}"
                );
                // What the check hands over is what the iterator gives.
                assert_eq!(seen, p.iter().collect::<Vec<_>>(), "{s:?}");
                checked += 1;
            }
            if s.len() < 7 {
                for &c in ALPHABET {
                    stack.push(format!("{s}{}", char::from(c)));
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn header_params_with_lws() {
        let p = Params::parse_header(" ;   tag    = 1918181833n").unwrap();
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        assert_eq!(p.as_str(), ";   tag    = 1918181833n");
        let p =
            Params::parse_header(" ; newparam =   newvalue ;   secondparam ; q = 0.33").unwrap();
        let all: Vec<_> = p.iter().collect();
        assert_eq!(
            all,
            [
                ("newparam", Some("newvalue")),
                ("secondparam", None),
                ("q", Some("0.33"))
            ]
        );
        assert!(p.contains("secondparam"));
        assert!(!p.contains("tag"));
    }

    #[test]
    fn quoted_and_host_values() {
        let p = Params::parse_header(r#";a="x;y\"z";received=[2001:db8::1];rport"#).unwrap();
        assert_eq!(p.get("a"), Some(Some(r#""x;y\"z""#)));
        assert_eq!(p.get("received"), Some(Some("[2001:db8::1]")));
        assert_eq!(p.get("rport"), Some(None));
    }

    #[test]
    fn empty_lists() {
        assert!(Params::parse_header("").unwrap().is_empty());
        assert!(Params::parse_header("   ").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            ";;", ";", "x", ";a=", ";a b", ";a=b c", ";=b", ";;;;", "tag=1",
        ] {
            assert_eq!(
                Params::parse_header(bad),
                Err(ParseError::BadParams),
                "{bad:?}"
            );
        }
        assert_eq!(
            Params::parse_header(";a=\"open"),
            Err(ParseError::BadQuotedString)
        );
    }
}
