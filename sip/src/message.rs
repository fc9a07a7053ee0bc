//! The parsed message: start line and header index kept as byte ranges into
//! the received buffer; header bodies are parsed only when asked for.

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::ParseError;
use super::headers::{parse_bounded, CSeq, HeaderName, Method, SipDate};
use super::name_addr::{Contact, NameAddr};
use super::scan::{trim, CommaSplit};
use super::uri::Uri;
use super::via::Via;

/// A byte range into the message buffer (the buffer is at most `u32::MAX` long).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// A span over `start..end`; callers guarantee both fit in `u32`.
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The span as a `usize` range.
    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Length in bytes.
    pub(crate) fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }
}

/// One header field: name as written, trimmed value, canonical id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderRef {
    pub(crate) name: Span,
    pub(crate) value: Span,
    pub(crate) id: HeaderName,
}

/// The first line of the message (RFC 3261 §7.1, §7.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum StartLine {
    Request { method: Span, uri: Span },
    Response { code: u16, reason: Span },
}

/// A SIP message parsed from one datagram or WebSocket message.
///
/// [`Message::parse`] checks the framing and the start line and indexes the
/// header fields; everything else is parsed lazily by the accessors, which
/// borrow from the buffer. Folded header lines are unfolded once at parse
/// time (each CR/LF of a fold becomes SP, so offsets do not move).
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) buf: Bytes,
    pub(crate) start: StartLine,
    pub(crate) version: Span,
    pub(crate) headers: SmallVec<[HeaderRef; 24]>,
    pub(crate) body: Span,
    pub(crate) content_length: Option<u32>,
    pub(crate) extent: Span,
    /// End of the header section, which [`Message::parse`] checked is UTF-8 from the start
    /// line on (the spans of [`Message::text`] lie inside it).
    pub(crate) text_end: u32,
    /// Header fields parsed once per message (see `cached.rs`).
    pub(crate) cache: super::cached::Cache,
    /// The ids present in `headers`, one bit each ([`HeaderName::bit`]): a lookup of a
    /// header the message lacks (Route, Contact, Date... on most requests) costs no scan.
    pub(crate) present: u64,
    /// The ids present on more than one header line.
    pub(crate) repeated: u64,
    /// For each id present, the index in `headers` of its first line ([`crate::MAX_HEADERS`]
    /// fits a byte): [`Message::first`] without a scan.
    pub(crate) first_at: [u8; HeaderName::COUNT],
    /// Whether the start line or a header line holds a CR that does not end it (legal in
    /// no field, kept as received). Header values never hold an LF (lines end there;
    /// folds became spaces), so without a stray CR they can be copied into a new message
    /// as they are.
    pub(crate) stray_cr: bool,
}

/// How a header name given by the caller is matched.
#[derive(Debug, Clone, Copy)]
enum Key<'n> {
    Known(HeaderName),
    Other(&'n str),
}

impl<'n> Key<'n> {
    fn new(name: &'n str) -> Self {
        match HeaderName::from_wire(name) {
            HeaderName::Other => Key::Other(trim(name)),
            id => Key::Known(id),
        }
    }
}

/// Iterator over the values of every header field with one name, in order
/// (one item per header line, commas not split).
#[derive(Debug, Clone)]
pub struct HeaderValues<'m, 'n> {
    msg: &'m Message,
    key: Key<'n>,
    idx: usize,
}

impl<'m, 'n> Iterator for HeaderValues<'m, 'n> {
    type Item = &'m str;

    fn next(&mut self) -> Option<&'m str> {
        while let Some(h) = self.msg.headers.get(self.idx) {
            self.idx += 1;
            let hit = match self.key {
                Key::Known(id) => h.id == id,
                Key::Other(n) => {
                    h.id == HeaderName::Other && self.msg.text(h.name).eq_ignore_ascii_case(n)
                }
            };
            if hit {
                return Some(self.msg.text(h.value));
            }
        }
        None
    }
}

/// Iterator over the comma-separated elements of every header field with one
/// name, across header lines (RFC 3261 §7.3.1), respecting quoted strings and
/// `<...>`.
#[derive(Debug, Clone)]
pub struct ListValues<'m, 'n> {
    values: HeaderValues<'m, 'n>,
    cur: Option<CommaSplit<'m>>,
    skip_empty: bool,
}

impl<'m, 'n> Iterator for ListValues<'m, 'n> {
    type Item = &'m str;

    fn next(&mut self) -> Option<&'m str> {
        loop {
            if let Some(v) = self.cur.as_mut().and_then(Iterator::next) {
                if self.skip_empty && v.is_empty() {
                    continue;
                }
                return Some(v);
            }
            self.cur = Some(CommaSplit::new(self.values.next()?));
        }
    }
}

impl Message {
    /// Text of a span inside the validated header section.
    ///
    /// Runs on every header access of every message, so the UTF-8 check done once at parse
    /// time is not repeated: a span inside the checked section whose ends are char
    /// boundaries is UTF-8. Anything else is checked as usual.
    pub(crate) fn text(&self, span: Span) -> &str {
        let Some(b) = self.buf.get(span.range()) else {
            return "";
        };
        let boundary = |i: u32| {
            self.buf
                .get(i as usize)
                .is_none_or(|&c| !(0x80..0xc0).contains(&c))
        };
        if span.start >= self.extent.start
            && span.end <= self.text_end
            && boundary(span.start)
            && boundary(span.end)
        {
            // SAFETY: `buf[extent.start..text_end]` was checked to be UTF-8 by
            // `Message::parse` (unfolding afterwards only replaced ASCII CR/LF with SP), `buf`
            // is immutable `Bytes`, and `b` is a sub-slice of it starting and ending on char
            // boundaries (neither end byte is a UTF-8 continuation byte), hence UTF-8 itself.
            return unsafe { std::str::from_utf8_unchecked(b) };
        }
        std::str::from_utf8(b).unwrap_or("")
    }

    /// The value of the first header field `id` ([`HeaderName::Other`] matches nothing
    /// useful: use [`Message::header`]).
    pub fn first(&self, id: HeaderName) -> Option<&str> {
        self.headers
            .get(self.scan_from(id))
            .map(|h| self.text(h.value))
    }

    /// The bytes of the message as received (start line to the end of its body, RFC 3261
    /// §7), sharing the received buffer.
    pub fn wire_bytes(&self) -> Bytes {
        self.buf.slice(self.extent.range())
    }

    /// The values of every header field `id`, one per line.
    pub(crate) fn values(&self, id: HeaderName) -> HeaderValues<'_, 'static> {
        HeaderValues {
            msg: self,
            key: Key::Known(id),
            idx: self.scan_from(id),
        }
    }

    pub(crate) fn list(&self, id: HeaderName) -> ListValues<'_, 'static> {
        ListValues {
            values: self.values(id),
            cur: None,
            skip_empty: false,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method (case-sensitive), `None` for a response.
    pub fn method(&self) -> Option<Method> {
        self.method_str().map(Method::from_token)
    }

    /// The request method as written, `None` for a response.
    pub fn method_str(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { method, .. } => Some(self.text(method)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written, `None` for a response.
    pub fn ruri(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI, parsed ([`ParseError::NotARequest`] for a response): once per
    /// message, then from the message's cache.
    pub fn request_uri(&self) -> Result<Uri<'_>, ParseError> {
        self.cached_request_uri()
    }

    /// The SIP-Version of the start line as written (e.g. `SIP/2.0`).
    pub fn version(&self) -> &str {
        self.text(self.version)
    }

    /// The status code, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase (possibly empty), `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.text(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The value of the first header field called `name`: case-insensitive,
    /// compact forms accepted either way (`header("i")` finds `Call-ID:` and
    /// `header("Call-ID")` finds `i:`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).next()
    }

    /// The values of every header field called `name`, one per header line.
    pub fn headers<'m, 'n>(&'m self, name: &'n str) -> HeaderValues<'m, 'n> {
        let key = Key::new(name);
        let idx = match key {
            Key::Known(id) => self.scan_from(id),
            Key::Other(_) => self.scan_from(HeaderName::Other),
        };
        HeaderValues {
            msg: self,
            key,
            idx,
        }
    }

    /// Whether a header field with canonical id `id` is present ([`HeaderName::Other`]:
    /// whether any name this crate does not know is).
    pub(crate) fn has(&self, id: HeaderName) -> bool {
        self.present & id.bit() != 0
    }

    /// Whether more than one header line has canonical id `id`.
    pub(crate) fn repeats(&self, id: HeaderName) -> bool {
        self.repeated & id.bit() != 0
    }

    /// Where a scan for `id` starts: its first line, or past the last when `id` is absent.
    pub(crate) fn scan_from(&self, id: HeaderName) -> usize {
        if self.has(id) {
            self.first_at
                .get(id as usize)
                .map_or(0, |&i| usize::from(i))
        } else {
            self.headers.len()
        }
    }

    /// The non-empty comma-separated elements of every header field called
    /// `name` (for list headers such as Allow, Supported or Route).
    pub fn header_list<'m, 'n>(&'m self, name: &'n str) -> ListValues<'m, 'n> {
        ListValues {
            values: self.headers(name),
            cur: None,
            skip_empty: true,
        }
    }

    /// Every header field in order as `(name as written, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|h| (self.text(h.name), self.text(h.value)))
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The Call-ID value (first one).
    pub fn call_id(&self) -> Option<&str> {
        self.first(HeaderName::CallId)
    }

    /// The CSeq, parsed (RFC 3261 §20.16).
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        CSeq::parse(
            self.first(HeaderName::CSeq)
                .ok_or(ParseError::MissingHeader("CSeq"))?,
        )
    }

    /// The From value, parsed (RFC 3261 §20.20).
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.cached_addr(super::cached::Addr::From)
    }

    /// The To value, parsed (RFC 3261 §20.39).
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.cached_addr(super::cached::Addr::To)
    }

    /// Every Via value in order, top first: one item per comma-separated
    /// value, across Via header lines (RFC 3261 §20.42). Empty elements are
    /// yielded so that [`Via::parse`] rejects them.
    pub fn vias(&self) -> ListValues<'_, 'static> {
        self.list(HeaderName::Via)
    }

    /// The topmost Via value, parsed (RFC 3261 §20.42): once per message, then from the
    /// message's cache.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        self.cached_top_via()
    }

    /// The second Via value, parsed (RFC 3261 §20.42): the next hop of a response (§18.2.2);
    /// `None` when there is only one. Once per message, then from the message's cache.
    pub fn next_via(&self) -> Option<Result<Via<'_>, ParseError>> {
        self.cached_next_via()
    }

    /// Every Contact value, parsed one by one (RFC 3261 §20.10).
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, ParseError>> + '_ {
        let checked = self.contacts_checked();
        self.list(HeaderName::Contact).map(move |v| {
            if checked {
                Contact::parse_trusted(v)
            } else {
                Contact::parse(v)
            }
        })
    }

    /// Every Route value, parsed one by one (RFC 3261 §20.34).
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::Route).map(NameAddr::parse)
    }

    /// Every Record-Route value, parsed one by one (RFC 3261 §20.30).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> + '_ {
        self.list(HeaderName::RecordRoute).map(NameAddr::parse)
    }

    /// Max-Forwards, if present (RFC 3261 §20.22: 0..=255).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.first(HeaderName::MaxForwards)
            .map(|v| {
                parse_bounded(v, 255)
                    .map(|n| n as u8)
                    .ok_or(ParseError::BadMaxForwards)
            })
            .transpose()
    }

    /// Expires, if present (RFC 3261 §20.19: at most 2^32-1).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.first(HeaderName::Expires)
            .map(|v| {
                parse_bounded(v, u64::from(u32::MAX))
                    .map(|n| n as u32)
                    .ok_or(ParseError::BadExpires)
            })
            .transpose()
    }

    /// Date, if present (RFC 3261 §20.17).
    pub fn date(&self) -> Result<Option<SipDate>, ParseError> {
        self.first(HeaderName::Date).map(SipDate::parse).transpose()
    }

    /// The Content-Type value, if present.
    pub fn content_type(&self) -> Option<&str> {
        self.first(HeaderName::ContentType)
    }

    /// Content-Length as checked at parse time; `None` if the header is absent
    /// (the body is then the rest of the message).
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    /// The message body (exactly Content-Length octets when given).
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.body.range()).unwrap_or(&[])
    }

    /// The whole message from the start line to the end of the body: leading
    /// CR/LF and octets after the body are left out (RFC 3261 §18.3); folds
    /// are unfolded.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.extent.range()).unwrap_or(&[])
    }
}
