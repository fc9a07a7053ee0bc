//! Fields that several steps of one message's handling read — the From and To tags and the
//! top Via's branch — parsed (and so validated) once per message and then read from a cache:
//! `sanity_check()`, `has_totag()`, the stateless To tag and the reply builder each used to
//! parse the same headers again (RFC 3261 §8.1.1.3, §8.1.1.7, §20.20, §20.39).

use std::cell::OnceCell;

use super::error::ParseError;
use super::headers::HeaderName;
use super::message::{Message, Span};
use super::name_addr::NameAddr;
use super::params::Params;

/// A parameter as cached: `None` when absent, `Some(None)` when present without a value.
type CachedParam = Result<Option<Option<Span>>, ParseError>;

/// A parsed From or To as positions in the message: `Ok(None)` when it parsed but lies outside
/// the buffer (then it is parsed at every use, as before the cache).
type CachedNameAddr = Result<Option<NameAddrSpans>, ParseError>;

/// [`NameAddr`]'s parts as positions in the message.
#[derive(Debug, Clone, Copy)]
struct NameAddrSpans {
    display: Option<Span>,
    quoted: bool,
    angle: bool,
    uri: Span,
    params: Span,
}

/// The per-message cache (cloned with the message).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cache {
    from_tag: OnceCell<CachedParam>,
    to_tag: OnceCell<CachedParam>,
    top_branch: OnceCell<CachedParam>,
    from: OnceCell<CachedNameAddr>,
    to: OnceCell<CachedNameAddr>,
    /// Every Contact value parsed, URI included, without error (`validate_for_proxy`).
    contacts_checked: OnceCell<()>,
}

/// Which of the two cached addresses.
#[derive(Clone, Copy)]
pub(crate) enum Addr {
    From,
    To,
}

impl Message {
    fn span_of(&self, s: &str) -> Span {
        // Parsed values are sub-slices of the buffer; an empty one needs no position.
        self.range_of(s)
            .map_or(Span::default(), |r| Span::new(r.start, r.end))
    }

    /// The exact position of `s` in the buffer, `None` when it is not a slice of it (an empty
    /// `s` needs no position).
    fn exact_span(&self, s: &str) -> Option<Span> {
        if s.is_empty() {
            return Some(Span::default());
        }
        self.range_of(s).map(|r| Span::new(r.start, r.end))
    }

    /// From or To parsed (and so validated, URI included) once per message; later calls
    /// rebuild the [`NameAddr`] from positions. `sanity_check()`, the tags, the realm of a
    /// challenge, `check_to()`/`check_from()` and the registrar all read them.
    pub(crate) fn cached_addr(&self, which: Addr) -> Result<NameAddr<'_>, ParseError> {
        let (cell, name, hdr) = match which {
            Addr::From => (&self.cache.from, "From", HeaderName::From),
            Addr::To => (&self.cache.to, "To", HeaderName::To),
        };
        let parse = || NameAddr::parse(self.first(hdr).ok_or(ParseError::MissingHeader(name))?);
        let c = cell.get_or_init(|| {
            let na = parse()?;
            let display = match na.display_name() {
                Some(d) => match self.exact_span(d) {
                    Some(sp) => Some(sp),
                    None => return Ok(None),
                },
                None => None,
            };
            let (Some(uri), Some(params)) = (
                self.exact_span(na.uri_str()),
                self.exact_span(na.params().as_str()),
            ) else {
                return Ok(None);
            };
            Ok(Some(NameAddrSpans {
                display,
                quoted: na.is_quoted(),
                angle: na.is_name_addr(),
                uri,
                params,
            }))
        });
        match *c {
            Err(e) => Err(e),
            Ok(None) => parse(),
            Ok(Some(sp)) => Ok(NameAddr::from_validated(
                sp.display.map(|d| self.text(d)),
                sp.quoted,
                sp.angle,
                self.text(sp.uri),
                Params::from_validated(self.text(sp.params)),
            )),
        }
    }

    /// Whether every Contact value passed [`Contact::parse`](super::Contact::parse) already:
    /// later reads skip the URI check.
    pub(crate) fn contacts_checked(&self) -> bool {
        self.cache.contacts_checked.get().is_some()
    }

    /// Record that every Contact value parsed without error.
    pub(crate) fn set_contacts_checked(&self) {
        let _ = self.cache.contacts_checked.set(());
    }

    fn cached(&self, c: &CachedParam) -> Result<Option<Option<&str>>, ParseError> {
        c.map(|p| p.map(|v| v.map(|s| self.text(s))))
    }

    /// The From `tag` parameter: `Ok(None)` when absent, `Ok(Some(None))` when it has no
    /// value; an error when From is missing or malformed. [`Message::from`] runs once.
    pub fn from_tag_param(&self) -> Result<Option<Option<&str>>, ParseError> {
        let c = self.cache.from_tag.get_or_init(|| {
            let from = self.from()?;
            Ok(from.params().get("tag").map(|v| v.map(|t| self.span_of(t))))
        });
        self.cached(c)
    }

    /// The To `tag` parameter, as [`Message::from_tag_param`] for To.
    pub fn to_tag_param(&self) -> Result<Option<Option<&str>>, ParseError> {
        let c = self.cache.to_tag.get_or_init(|| {
            let to = self.to()?;
            Ok(to.params().get("tag").map(|v| v.map(|t| self.span_of(t))))
        });
        self.cached(c)
    }

    /// The top Via's `branch` value (`None` when absent or valueless); an error when there is
    /// no Via or the top one is malformed. [`Message::top_via`] runs once.
    pub fn top_branch(&self) -> Result<Option<&str>, ParseError> {
        let c = self.cache.top_branch.get_or_init(|| {
            let via = self.top_via()?;
            Ok(Some(via.branch().map(|b| self.span_of(b))))
        });
        self.cached(c).map(Option::flatten)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(from: &str, to: &str, via: &str) -> Message {
        Message::parse(Bytes::from(format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to}\r\n\
             Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
        )))
        .unwrap()
    }

    #[test]
    fn tags_and_branch_as_the_parsers_give_them() {
        let m = msg(
            "\"A;tag=no\" <sip:a@b;tag=uri>;tag=1",
            "<sip:b@b>;tag",
            "SIP/2.0/WS x.invalid;rport;branch=z9hG4bK1",
        );
        assert_eq!(m.from_tag_param(), Ok(Some(Some("1"))));
        assert_eq!(m.to_tag_param(), Ok(Some(None)));
        assert_eq!(m.top_branch(), Ok(Some("z9hG4bK1")));
        // Again, from the cache, and on a clone.
        assert_eq!(m.clone().from_tag_param(), Ok(Some(Some("1"))));
        assert_eq!(m.from_tag_param(), Ok(Some(Some("1"))));

        let m = msg("sip:a@b;tag=x", "sip:b@b", "SIP/2.0/UDP h");
        assert_eq!(m.from_tag_param(), Ok(Some(Some("x"))));
        assert_eq!(m.to_tag_param(), Ok(None));
        assert_eq!(m.top_branch(), Ok(None));

        let m = msg("<sip:a@b", "<sip:b@b>", "SIP/2.0/UDP");
        assert_eq!(m.from_tag_param(), m.from().map(|_| None));
        assert!(m.from_tag_param().is_err());
        assert!(m.top_branch().is_err());
        assert_eq!(m.top_branch(), m.top_via().map(|_| None));
    }

    #[test]
    fn cached_addresses_are_what_the_parser_gives() {
        let cases = [
            "\"A;tag=no\" <sip:a@b;tag=uri>;tag=1",
            "\"\" <sip:a@b>",
            "Bob   Smith <sips:bob@example.com:5061;transport=tls> ; tag = 9 ;x",
            "sip:a@b;tag=x",
            "<tel:+1-201-555-0123>",
            "<sip:b@b>;tag",
            "<sip:%61lice@b>",
            "<sip:a@b",
            "sip:a@b?x=1",
            "<sip:a b@c>",
            "",
        ];
        for c in cases {
            let m = msg(c, c, "SIP/2.0/UDP h");
            let direct = NameAddr::parse(c);
            for _ in 0..2 {
                for got in [m.from(), m.to(), m.clone().to()] {
                    match (&got, &direct) {
                        (Ok(g), Ok(d)) => {
                            assert_eq!(g.display_name(), d.display_name(), "{c}");
                            assert_eq!(g.is_quoted(), d.is_quoted(), "{c}");
                            assert_eq!(g.is_name_addr(), d.is_name_addr(), "{c}");
                            assert_eq!(g.uri_str(), d.uri_str(), "{c}");
                            assert_eq!(g.params().as_str(), d.params().as_str(), "{c}");
                            assert_eq!(g.tag(), d.tag(), "{c}");
                        }
                        (Err(g), Err(d)) => assert_eq!(g, d, "{c}"),
                        _ => panic!("{c}: {got:?} against {direct:?}"),
                    }
                }
            }
        }
    }
}
