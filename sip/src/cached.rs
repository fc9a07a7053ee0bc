//! Fields that several steps of one message's handling read — the From and To tags and the
//! top Via's branch — parsed (and so validated) once per message and then read from a cache:
//! `sanity_check()`, `has_totag()`, the stateless To tag and the reply builder each used to
//! parse the same headers again (RFC 3261 §8.1.1.3, §8.1.1.7, §20.20, §20.39).

use std::cell::OnceCell;

use super::error::ParseError;
use super::message::{Message, Span};

/// A parameter as cached: `None` when absent, `Some(None)` when present without a value.
type CachedParam = Result<Option<Option<Span>>, ParseError>;

/// The per-message cache (cloned with the message).
#[derive(Debug, Clone, Default)]
pub(crate) struct Cache {
    from_tag: OnceCell<CachedParam>,
    to_tag: OnceCell<CachedParam>,
    top_branch: OnceCell<CachedParam>,
}

impl Message {
    fn span_of(&self, s: &str) -> Span {
        // Parsed values are sub-slices of the buffer; an empty one needs no position.
        self.range_of(s)
            .map_or(Span::default(), |r| Span::new(r.start, r.end))
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
}
