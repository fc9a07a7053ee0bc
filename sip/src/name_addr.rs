//! name-addr / addr-spec values with header parameters, as used by From, To,
//! Contact, Route and Record-Route (RFC 3261 §20.10, §25.1).

use std::borrow::Cow;

use super::error::ParseError;
use super::params::Params;
use super::scan::{has_ws, is_token, is_ws, quoted_end, skip_ws, trim};
use super::uri::{scheme_len, Scheme, Uri};

/// One address value: optional display name, URI and header parameters.
///
/// In the addr-spec form (no `<>`), everything after the first `;` is a
/// header parameter (RFC 3261 §20.10), and the URI may hold neither `?` nor
/// `,` (RFC 4475 §3.1.2.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub(crate) display: Option<&'a str>,
    pub(crate) quoted: bool,
    pub(crate) angle: bool,
    pub(crate) uri: &'a str,
    pub(crate) params: Params<'a>,
}

/// Checks the URI text of an address: a scheme, no white space, and for
/// sip/sips/tel a full [`Uri::parse`].
fn check_uri(uri: &str) -> Result<(), ParseError> {
    // The URI parser rejects white space, an empty URI and a missing scheme too, so the two
    // more specific errors below are looked for only once it has failed (one pass over a
    // valid URI instead of three; the same error for every input).
    let Err(e) = Uri::parse(uri) else {
        return Ok(());
    };
    if uri.is_empty() || has_ws(uri) {
        return Err(ParseError::BadNameAddr("white space or nothing in URI"));
    }
    if scheme_len(uri).is_none() {
        return Err(ParseError::BadNameAddr("URI has no scheme"));
    }
    Err(e)
}

impl<'a> NameAddr<'a> {
    /// Parses `( name-addr / addr-spec ) *( SEMI generic-param )`.
    ///
    /// A token display name may touch the `<` (RFC 4475 §3.1.1.6). Errors:
    /// unterminated quoted display name (§3.1.2.6), white space inside the URI
    /// (§3.1.2.14), unquoted non-token display name (§3.1.2.15), `?` in an
    /// addr-spec (§3.1.2.13), malformed parameters (§3.1.2.1).
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_with(s, true)
    }

    /// [`NameAddr::parse`] of a value that already passed it (the message's cache says so):
    /// the URI is not checked again.
    pub(crate) fn parse_trusted(s: &'a str) -> Result<Self, ParseError> {
        Self::parse_with(s, false)
    }

    fn parse_with(s: &'a str, check: bool) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let mut i = skip_ws(b, 0);
        let mut display = None;
        let mut quoted = false;
        if b.get(i) == Some(&b'"') {
            let end = quoted_end(b, i)?;
            display = s.get(i + 1..end - 1);
            quoted = true;
            i = skip_ws(b, end);
            if b.get(i) != Some(&b'<') {
                return Err(ParseError::BadNameAddr("quoted display name without <URI>"));
            }
        } else if b.get(i) != Some(&b'<') {
            let mut j = i;
            while j < b.len() && (is_token(b[j]) || is_ws(b[j])) {
                j += 1;
            }
            if b.get(j) == Some(&b'<') {
                display = Some(trim(s.get(i..j).unwrap_or(""))).filter(|d| !d.is_empty());
                i = j;
            }
        }
        let (uri, angle, rest) = if b.get(i) == Some(&b'<') {
            let close = s
                .get(i..)
                .and_then(|t| t.find('>'))
                .ok_or(ParseError::BadNameAddr("missing >"))?;
            let uri = s.get(i + 1..i + close).unwrap_or("");
            (uri, true, s.get(i + close + 1..).unwrap_or(""))
        } else {
            let tail = s.get(i..).unwrap_or("");
            let end = tail.find(';').unwrap_or(tail.len());
            let uri = trim(tail.get(..end).unwrap_or(""));
            if uri.contains(['?', ',']) {
                return Err(ParseError::BadNameAddr("addr-spec with ? or , needs <>"));
            }
            (uri, false, tail.get(end..).unwrap_or(""))
        };
        if check {
            check_uri(uri)?;
        }
        Ok(NameAddr {
            display,
            quoted,
            angle,
            uri,
            params: Params::parse_header(rest)?,
        })
    }

    /// The display name as written: for a quoted one, the text between the
    /// quotes with its escapes; for a token one, the tokens and the white
    /// space between them.
    pub fn display_name(&self) -> Option<&'a str> {
        self.display
    }

    /// The display name with quoted-pair escapes removed; borrows when there
    /// are none.
    pub fn display_name_unescaped(&self) -> Option<Cow<'a, str>> {
        let d = self.display?;
        if !self.quoted || !d.contains('\\') {
            return Some(Cow::Borrowed(d));
        }
        let mut out = String::with_capacity(d.len());
        let mut chars = d.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        Some(Cow::Owned(out))
    }

    /// Whether the display name was a quoted string.
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// Whether the URI was enclosed in `<>` (name-addr form).
    pub fn is_name_addr(&self) -> bool {
        self.angle
    }

    /// The URI text as written.
    pub fn uri_str(&self) -> &'a str {
        self.uri
    }

    /// The URI, parsed.
    pub fn uri(&self) -> Result<Uri<'a>, ParseError> {
        Uri::parse(self.uri)
    }

    /// The URI scheme kind.
    pub fn scheme(&self) -> Scheme {
        self.uri().map(|u| u.scheme()).unwrap_or(Scheme::Other)
    }

    /// The header parameters (after the URI).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// Looks up one header parameter (see [`Params::get`]).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }

    /// The `tag` parameter value (RFC 3261 §19.3), if present with a value.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

/// One Contact value (RFC 3261 §20.10): `*` or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER removing all bindings, RFC 3261 §10.2.2).
    Wildcard,
    /// An address with its contact-params (`q`, `expires`, ...).
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one comma-separated Contact value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        if trim(s) == "*" {
            Ok(Contact::Wildcard)
        } else {
            NameAddr::parse(s).map(Contact::Addr)
        }
    }

    /// [`Contact::parse`] of a value that already passed it (see [`NameAddr::parse_trusted`]).
    pub(crate) fn parse_trusted(s: &'a str) -> Result<Self, ParseError> {
        if trim(s) == "*" {
            Ok(Contact::Wildcard)
        } else {
            NameAddr::parse_trusted(s).map(Contact::Addr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_with_escapes() {
        let na = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(na.display_name(), Some(r#"J Rosenberg \\\""#));
        assert_eq!(
            na.display_name_unescaped().as_deref(),
            Some(r#"J Rosenberg \""#)
        );
        assert!(na.is_quoted() && na.is_name_addr());
        assert_eq!(na.uri_str(), "sip:jdrosen@example.com");
        assert_eq!(na.tag(), Some("98asjd8"));
        assert_eq!(na.uri().unwrap().user(), Some("jdrosen"));
    }

    #[test]
    fn token_display_names() {
        let na = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(na.display_name(), Some("caller"));
        assert!(!na.is_quoted());
        let na =
            NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(na.display_name(), Some("token1~` token2'+_ token3*%!.-"));
        let na = NameAddr::parse("<sip:a@b>").unwrap();
        assert_eq!(na.display_name(), None);
        let na = NameAddr::parse(r#""" <sip:a@b>"#).unwrap();
        assert_eq!(na.display_name(), Some(""));
    }

    #[test]
    fn addr_spec_params_are_header_params() {
        let na = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(!na.is_name_addr());
        assert_eq!(na.uri_str(), "sip:+19725552222@gw1.example.net");
        assert_eq!(na.param("unknownparam"), Some(None));
        assert!(na.uri().unwrap().params().is_empty());
        let na = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert!(na.params().is_empty());
        assert_eq!(na.uri().unwrap().param("unknownparam"), Some(None));
        let na =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(na.tag(), Some("1918181833n"));
    }

    #[test]
    fn unknown_schemes_and_ipv6() {
        assert_eq!(
            NameAddr::parse("isbn:2983792873").unwrap().scheme(),
            Scheme::Other
        );
        assert_eq!(
            NameAddr::parse("<http://www.example.com>;tag=3234233")
                .unwrap()
                .tag(),
            Some("3234233")
        );
        let na = NameAddr::parse("<sip:[2001:db8::10]:5060;transport=ws>;expires=60").unwrap();
        assert_eq!(na.uri().unwrap().host(), "[2001:db8::10]");
        assert_eq!(na.param("expires"), Some(Some("60")));
    }

    #[test]
    fn rejects_rfc4475_bad_addresses() {
        let cases = [
            (
                r#""Mr. J. User <sip:j.user@example.com>"#,
                ParseError::BadQuotedString,
            ),
            (
                r#""Watson, Thomas" < sip:t.watson@example.org >"#,
                ParseError::BadNameAddr("white space or nothing in URI"),
            ),
            (
                "Watson, Thomas <sip:t.watson@example.org>",
                ParseError::BadNameAddr("addr-spec with ? or , needs <>"),
            ),
            (
                "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                ParseError::BadNameAddr("addr-spec with ? or , needs <>"),
            ),
            (r#""Joe" <sip:joe@example.org>;;;;"#, ParseError::BadParams),
            ("<sip:a@b", ParseError::BadNameAddr("missing >")),
            (
                r#""x" sip:a@b"#,
                ParseError::BadNameAddr("quoted display name without <URI>"),
            ),
            ("", ParseError::BadNameAddr("white space or nothing in URI")),
            ("<nocolon>", ParseError::BadNameAddr("URI has no scheme")),
            ("<sip:a@b> junk", ParseError::BadParams),
        ];
        for (s, e) in cases {
            assert_eq!(NameAddr::parse(s), Err(e), "{s:?}");
        }
        assert!(matches!(
            NameAddr::parse("<sip:a@[::1>"),
            Err(ParseError::BadUri(_))
        ));
    }

    #[test]
    fn contact_values() {
        assert_eq!(Contact::parse(" * "), Ok(Contact::Wildcard));
        assert!(matches!(
            Contact::parse("<sip:a@b>;q=0.5"),
            Ok(Contact::Addr(_))
        ));
        assert!(Contact::parse("**").is_err());
    }
}
