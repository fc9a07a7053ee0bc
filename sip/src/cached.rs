//! Fields that several steps of one message's handling read — From and To with their tags,
//! the top and the second Via, the top Via's branch and the Request-URI — parsed (and so
//! validated) once per message and then read from a cache: `sanity_check()`, `has_totag()`,
//! the stateless To tag, the reply builder, the relay and the transaction layer's keys each
//! used to parse the same headers again (RFC 3261 §8.1.1.3, §8.1.1.7, §8.2.2, §17.1.3,
//! §17.2.3, §20.20, §20.39, §20.42).

use std::cell::OnceCell;

use super::error::ParseError;
use super::headers::HeaderName;
use super::message::{Message, Span};
use super::name_addr::NameAddr;
use super::params::Params;
use super::uri::{Scheme, Uri};
use super::via::Via;

/// A parameter as cached: `None` when absent, `Some(None)` when present without a value.
type CachedParam = Result<Option<Option<Span>>, ParseError>;

/// A parsed value as cached: an error when it did not parse; `Ok(None)` when it parsed but
/// lies outside the buffer (then it is parsed at every read); `Ok(Some(None))` when the
/// message has no such value; else where the value lies in the message and where its parts
/// lie inside the value (one checked read of the message, then plain slicing).
type Cached<P> = Result<Option<Option<(Span, P)>>, ParseError>;

/// [`Via`]'s parts inside the Via value.
#[derive(Debug, Clone, Copy)]
struct ViaParts {
    protocol: Rel,
    version: Rel,
    transport: Rel,
    host: Rel,
    port: Option<u16>,
    params: Rel,
    branch: Option<Rel>,
}

/// [`Uri`]'s parts inside the URI.
#[derive(Debug, Clone, Copy)]
struct UriParts {
    scheme: Rel,
    kind: Scheme,
    user: Option<Rel>,
    password: Option<Rel>,
    host: Rel,
    port: Option<u16>,
    params: Rel,
    headers: Option<Rel>,
}

/// [`NameAddr`]'s parts inside the header value.
#[derive(Debug, Clone, Copy)]
struct NameAddrParts {
    display: Option<Rel>,
    quoted: bool,
    angle: bool,
    uri: Rel,
    params: Rel,
}

/// Where a part of a parsed value lies inside the value.
#[derive(Debug, Clone, Copy, Default)]
struct Rel {
    start: u32,
    end: u32,
}

impl Rel {
    /// The position of `part` inside `whole`; `None` when it is not a slice of it (an empty
    /// part needs no position).
    fn of(whole: &str, part: &str) -> Option<Rel> {
        if part.is_empty() {
            return Some(Rel::default());
        }
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        if end > whole.len() {
            return None;
        }
        Some(Rel {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// [`Rel::of`] for an optional part.
    fn of_opt(whole: &str, part: Option<&str>) -> Option<Option<Rel>> {
        match part {
            None => Some(None),
            Some(p) => Rel::of(whole, p).map(Some),
        }
    }

    /// The part, from its value.
    fn of_whole(self, whole: &str) -> &str {
        whole
            .get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// The per-message cache (cloned with the message).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cache {
    from_tag: OnceCell<CachedParam>,
    to_tag: OnceCell<CachedParam>,
    top_branch: OnceCell<CachedParam>,
    top_via: OnceCell<Cached<ViaParts>>,
    next_via: OnceCell<Cached<ViaParts>>,
    request_uri: OnceCell<Cached<UriParts>>,
    from: OnceCell<Cached<NameAddrParts>>,
    to: OnceCell<Cached<NameAddrParts>>,
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

    /// One value read through `cell`: `raw` finds its text (`None`: the message has none),
    /// `parse` parses it, `parts` says where the parts of what was parsed lie in the text and
    /// `rebuild` makes the value again from there. The first read parses and returns what it
    /// parsed; the next ones rebuild it. `None` when the message has no such value.
    fn read_cached<'m, T, P: Copy>(
        &'m self,
        cell: &OnceCell<Cached<P>>,
        raw: impl Fn() -> Option<&'m str>,
        parse: impl Fn(&'m str) -> Result<T, ParseError>,
        parts: impl FnOnce(&'m str, &T) -> Option<P>,
        rebuild: impl FnOnce(&'m str, P) -> T,
    ) -> Option<Result<T, ParseError>> {
        let Some(c) = cell.get() else {
            let Some(whole) = raw() else {
                let _ = cell.set(Ok(Some(None)));
                return None;
            };
            let parsed = parse(whole);
            let _ = cell.set(match &parsed {
                Err(e) => Err(*e),
                Ok(v) => Ok(self.exact_span(whole).zip(parts(whole, v)).map(Some)),
            });
            return Some(parsed);
        };
        match *c {
            Err(e) => Some(Err(e)),
            Ok(Some(None)) => None,
            Ok(None) => raw().map(parse),
            Ok(Some(Some((whole, p)))) => Some(Ok(rebuild(self.text(whole), p))),
        }
    }

    /// From or To parsed (and so validated, URI included) once per message (RFC 3261 §20.20,
    /// §20.39). `sanity_check()`, the tags, the realm of a challenge,
    /// `check_to()`/`check_from()` and the registrar all read them.
    pub(crate) fn cached_addr(&self, which: Addr) -> Result<NameAddr<'_>, ParseError> {
        let (cell, name, hdr) = match which {
            Addr::From => (&self.cache.from, "From", HeaderName::From),
            Addr::To => (&self.cache.to, "To", HeaderName::To),
        };
        self.read_cached(
            cell,
            || self.first(hdr),
            NameAddr::parse,
            |w, na| {
                Some(NameAddrParts {
                    display: Rel::of_opt(w, na.display_name())?,
                    quoted: na.is_quoted(),
                    angle: na.is_name_addr(),
                    uri: Rel::of(w, na.uri_str())?,
                    params: Rel::of(w, na.params().as_str())?,
                })
            },
            |w, p| NameAddr {
                display: p.display.map(|r| r.of_whole(w)),
                quoted: p.quoted,
                angle: p.angle,
                uri: p.uri.of_whole(w),
                params: Params::from_validated(p.params.of_whole(w)),
            },
        )
        .unwrap_or(Err(ParseError::MissingHeader(name)))
    }

    /// The top Via parsed (and so validated) once per message (RFC 3261 §20.42). A proxy
    /// reads it for the transaction keys (§17.1.3, §17.2.3), `received`/`rport` (§18.2.1),
    /// the reply's hop and the response's next hop: up to a dozen times a message before this
    /// cache.
    pub(crate) fn cached_top_via(&self) -> Result<Via<'_>, ParseError> {
        self.cached_via(&self.cache.top_via, 0)
            .unwrap_or(Err(ParseError::MissingHeader("Via")))
    }

    /// The top Via value as written: where the cache found it once the top Via was read,
    /// else found again (RFC 3261 §7.3.1: the first comma-separated value of the first Via).
    pub(crate) fn top_via_text(&self) -> Option<&str> {
        if let Some(Ok(Some(Some((whole, _))))) = self.cache.top_via.get() {
            return Some(self.text(*whole));
        }
        self.vias().next()
    }

    /// `false` when the message surely has no Via value after the top one: once the top Via
    /// was read, one Via line whose value ends where the top Via ends has none, and that is
    /// known without splitting the line again. `true` when there may be more.
    pub(crate) fn may_have_more_vias(&self) -> bool {
        if !self.repeats(HeaderName::Via) {
            if let (Some(Ok(Some(Some((whole, _))))), Some(first)) = (
                self.cache.top_via.get(),
                self.headers.get(self.scan_from(HeaderName::Via)),
            ) {
                if whole.end == first.value.end && whole.start >= first.value.start {
                    return false;
                }
            }
        }
        true
    }

    /// The second Via value, parsed once per message (`None` when there is none): where a
    /// response goes next once this element's Via is off (RFC 3261 §16.7 step 3, §18.2.2).
    /// The relay reads its branch and then forwards to it.
    pub(crate) fn cached_next_via(&self) -> Option<Result<Via<'_>, ParseError>> {
        self.cached_via(&self.cache.next_via, 1)
    }

    /// Via value `index` through `cell`: `None` when there is no such value.
    fn cached_via<'m>(
        &'m self,
        cell: &OnceCell<Cached<ViaParts>>,
        index: usize,
    ) -> Option<Result<Via<'m>, ParseError>> {
        self.read_cached(
            cell,
            || self.vias().nth(index),
            Via::parse,
            |w, v| {
                Some(ViaParts {
                    protocol: Rel::of(w, v.protocol())?,
                    version: Rel::of(w, v.version())?,
                    transport: Rel::of(w, v.transport())?,
                    host: Rel::of(w, v.host())?,
                    port: v.port(),
                    params: Rel::of(w, v.params().as_str())?,
                    branch: Rel::of_opt(w, v.branch())?,
                })
            },
            |w, p| Via {
                protocol: p.protocol.of_whole(w),
                version: p.version.of_whole(w),
                transport: p.transport.of_whole(w),
                host: p.host.of_whole(w),
                port: p.port,
                params: Params::from_validated(p.params.of_whole(w)),
                branch: p.branch.map(|r| r.of_whole(w)),
            },
        )
    }

    /// The Request-URI parsed (and so validated) once per message (RFC 3261 §8.2.2, §16.3
    /// step 1 via `sanity_check()`; then `$rU`, `lookup()` and the relay read it again).
    pub(crate) fn cached_request_uri(&self) -> Result<Uri<'_>, ParseError> {
        self.read_cached(
            &self.cache.request_uri,
            || self.ruri(),
            Uri::parse,
            |w, u| {
                Some(UriParts {
                    scheme: Rel::of(w, u.scheme_str())?,
                    kind: u.scheme(),
                    user: Rel::of_opt(w, u.user())?,
                    password: Rel::of_opt(w, u.password())?,
                    host: Rel::of(w, u.host())?,
                    port: u.port(),
                    params: Rel::of(w, u.params().as_str())?,
                    headers: Rel::of_opt(w, u.headers())?,
                })
                // The URI is the whole text it was parsed from (`rebuild` relies on it).
                .filter(|_| std::ptr::eq(u.as_str(), w))
            },
            |w, p| Uri {
                raw: w,
                scheme: p.scheme.of_whole(w),
                kind: p.kind,
                user: p.user.map(|r| r.of_whole(w)),
                password: p.password.map(|r| r.of_whole(w)),
                host: p.host.of_whole(w),
                port: p.port,
                params: Params::from_validated(p.params.of_whole(w)),
                headers: p.headers.map(|r| r.of_whole(w)),
            },
        )
        .unwrap_or(Err(ParseError::NotARequest))
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

    #[test]
    fn a_missing_header_is_missing_on_every_read() {
        let m = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        ))
        .unwrap();
        for _ in 0..2 {
            assert_eq!(m.from().err(), Some(ParseError::MissingHeader("From")));
            assert_eq!(m.to().err(), Some(ParseError::MissingHeader("To")));
            assert_eq!(m.top_via(), Err(ParseError::MissingHeader("Via")));
            assert_eq!(m.next_via(), None);
        }
    }

    #[test]
    fn cached_top_via_is_what_the_parser_gives() {
        let cases = [
            "SIP/2.0/UDP h",
            "SIP/2.0/WS x.invalid;rport;branch=z9hG4bK1",
            "SIP / 2.0 / TCP  host.example.com : 5061 ; branch = z9hG4bKx ; received=10.0.0.1",
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2;rport=5060",
            "SIP/2.0/UDP h;ttl=300",
            "SIP/2.0/UDP h;;branch=x",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP h:99999",
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK3, SIP/2.0/UDP b.example.com",
            "SIP/2.0/UDP a;branch=z9hG4bK4,SIP/2.0/TCP [::1]:5070;received=::1;branch=z9hG4bK5",
            "SIP/2.0/UDP a;branch=z9hG4bK6, SIP/2.0/UDP",
            "SIP/2.0/UDP a;branch=z9hG4bK7,",
            "",
        ];
        for c in cases {
            let m = msg("sip:a@b", "sip:b@b", c);
            let direct = match m.vias().next() {
                Some(v) => Via::parse(v),
                None => Err(ParseError::MissingHeader("Via")),
            };
            let next = m.vias().nth(1).map(Via::parse);
            for _ in 0..2 {
                for got in [m.top_via(), m.clone().top_via()] {
                    assert_eq!(got, direct, "{c}");
                }
                for got in [m.next_via(), m.clone().next_via()] {
                    assert_eq!(got, next, "{c}");
                }
            }
        }
    }

    #[test]
    fn cached_request_uri_is_what_the_parser_gives() {
        let cases = [
            "sip:a@b",
            "sip:127.0.0.1:8080",
            "sips:alice:secret@Example.COM:5061;transport=ws;lr?Subject=hi&X=",
            "sip:user@[2001:db8::10]:5070;maddr=[2001:db8::1]",
            "sip:user;par=u%40example.net@example.com",
            "tel:+1-201-555-0123;phone-context=example.com",
            "soap.beep://192.0.2.103:3002",
            "sip:@b",
            "sip:[2001:db8::10",
            "sip:a@b:99999",
        ];
        let mut compared = 0;
        for c in cases {
            let m = Message::parse(Bytes::from(format!(
                "OPTIONS {c} SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=1\r\n\
                 To: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"
            )));
            let Ok(m) = m else { continue };
            compared += 1;
            let direct = Uri::parse(m.ruri().unwrap());
            for _ in 0..2 {
                for got in [m.request_uri(), m.clone().request_uri()] {
                    assert_eq!(got, direct, "{c}");
                }
            }
        }
        // The message parser itself accepts every one but the unterminated IPv6 reference.
        assert!(compared >= 9, "{compared}");
        let resp = Message::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@b>;tag=1\r\n\
              To: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(resp.request_uri(), Err(ParseError::NotARequest));
    }
}
