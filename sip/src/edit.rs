//! The rewrite engine behind [`forward_request`](super::forward_request) and
//! [`forward_response`](super::forward_response): edits are collected as
//! byte ranges of the received buffer plus inserted text, then applied in one
//! pass into a new buffer sized exactly, in the manner of OpenSIPS lumps.

use std::ops::Range;

use memchr::memchr;
use smallvec::SmallVec;
use thiserror::Error;

use super::error::ParseError;
use super::headers::HeaderName;
use super::message::{HeaderRef, Message};
use super::scan::{is_token, trim, CommaSplit};

/// Why a message could not be rewritten for forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EditError {
    /// A header field the rewrite needs does not parse (or is absent).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Max-Forwards is 0: the request must not be forwarded; answer 483 Too
    /// Many Hops (RFC 3261 §16.3 step 3).
    #[error("Max-Forwards is 0")]
    TooManyHops,
    /// A request-only rewrite was asked of a response.
    #[error("not a request")]
    NotARequest,
    /// A response-only rewrite was asked of a request.
    #[error("not a response")]
    NotAResponse,
    /// The response has a single Via: it is addressed to this element and is
    /// not forwarded (RFC 3261 §16.7 step 3).
    #[error("no Via left after removing the top one")]
    LastVia,
    /// Text supplied by the caller (new Via host or transport, Request-URI,
    /// Record-Route, header name or value) is malformed or holds CR/LF; the
    /// field is named.
    #[error("invalid {0} for the rewrite")]
    InvalidInput(&'static str),
    /// The rewritten message would exceed what the parser accepts (more than
    /// [`MAX_HEADERS`](super::MAX_HEADERS) header fields, a line longer than
    /// [`MAX_LINE_LEN`](super::MAX_LINE_LEN), or a size over `u32::MAX`): it
    /// is not built; answer 513 Message Too Large (RFC 3261 §21.5.14).
    #[error("the rewritten message would exceed the parser's limits ({0})")]
    TooLarge(&'static str),
}

/// One edit: replace `start..end` of the source with `ins` of the scratch
/// buffer (an empty range inserts, an empty `ins` removes).
#[derive(Debug, Clone)]
struct Edit {
    start: usize,
    end: usize,
    ins: Range<usize>,
}

/// Collects edits over one message buffer and applies them in one pass.
#[derive(Debug)]
pub(crate) struct Rewriter<'m> {
    src: &'m [u8],
    edits: SmallVec<[Edit; 12]>,
    scratch: Vec<u8>,
}

impl<'m> Rewriter<'m> {
    /// Starts a rewrite of `msg`'s buffer.
    pub(crate) fn new(msg: &'m Message) -> Self {
        Rewriter {
            src: &msg.buf,
            edits: SmallVec::new(),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Replaces `range` of the source with the bytes `fill` writes.
    pub(crate) fn replace(&mut self, range: Range<usize>, fill: impl FnOnce(&mut Vec<u8>)) {
        let from = self.scratch.len();
        fill(&mut self.scratch);
        self.edits.push(Edit {
            start: range.start,
            end: range.end.max(range.start),
            ins: from..self.scratch.len(),
        });
    }

    /// Inserts the bytes `fill` writes at `at`.
    pub(crate) fn insert(&mut self, at: usize, fill: impl FnOnce(&mut Vec<u8>)) {
        self.replace(at..at, fill);
    }

    /// Removes `range` of the source.
    pub(crate) fn remove(&mut self, range: Range<usize>) {
        self.replace(range, |_| {});
    }

    /// Applies the edits to `extent` of the source and returns the new
    /// message. Edits are applied in source order (insertions at one position
    /// in the order they were made, before a removal starting there); an edit
    /// overlapping an earlier removal is dropped, so a removal wins.
    pub(crate) fn finish(self, extent: Range<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(extent, &mut out);
        out
    }

    /// [`Rewriter::finish`], appending to `out`.
    pub(crate) fn finish_into(mut self, extent: Range<usize>, out: &mut Vec<u8>) {
        self.edits.sort_by_key(|e| (e.start, e.end));
        let removed: usize = self.edits.iter().map(|e| e.end - e.start).sum();
        let cap = (extent.end - extent.start + self.scratch.len()).saturating_sub(removed);
        out.reserve(cap);
        let mut cursor = extent.start;
        for e in &self.edits {
            if e.start < cursor || e.end > extent.end {
                continue;
            }
            out.extend_from_slice(self.src.get(cursor..e.start).unwrap_or(&[]));
            out.extend_from_slice(self.scratch.get(e.ins.clone()).unwrap_or(&[]));
            cursor = e.end;
        }
        out.extend_from_slice(self.src.get(cursor..extent.end).unwrap_or(&[]));
    }
}

/// Whether `s` can be written into a header without starting a new line.
pub(crate) fn is_single_line(s: &str) -> bool {
    !s.bytes().any(|b| b == b'\r' || b == b'\n')
}

/// Whether `s` is a header field name (a token).
pub(crate) fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

impl Message {
    /// Offset of `s` in the buffer, if `s` is a slice of it (accessors return
    /// such slices).
    pub(crate) fn offset_of(&self, s: &str) -> Option<usize> {
        let base = self.buf.as_ptr() as usize;
        let at = (s.as_ptr() as usize).checked_sub(base)?;
        (at + s.len() <= self.buf.len()).then_some(at)
    }

    /// The byte range of `s` in the buffer (see [`Message::offset_of`]).
    pub(crate) fn range_of(&self, s: &str) -> Option<Range<usize>> {
        self.offset_of(s).map(|at| at..at + s.len())
    }

    /// The whole line(s) of one header field, from its name to just past its
    /// final line break (folds were turned into SP by the parser).
    pub(crate) fn line_range(&self, h: &HeaderRef) -> Range<usize> {
        let start = h.name.start as usize;
        let from = h.value.end as usize;
        let end = memchr(b'\n', self.buf.get(from..).unwrap_or(&[]))
            .map_or(self.buf.len(), |i| from + i + 1);
        start..end
    }

    /// Where the empty line ending the header section starts: new header
    /// fields are appended here.
    pub(crate) fn header_end(&self) -> usize {
        let body = self.body.start as usize;
        if body >= 2 && self.buf.get(body - 2..body) == Some(b"\r\n") {
            body - 2
        } else {
            body.saturating_sub(1)
        }
    }

    /// The first and last header field with canonical id `id`.
    pub(crate) fn first_and_last(&self, id: HeaderName) -> Option<(&HeaderRef, &HeaderRef)> {
        let first = self.headers.get(self.scan_from(id))?;
        let last = self.headers.iter().rev().find(|h| h.id == id)?;
        Some((first, last))
    }

    /// Whether header `h` is called `name` (case-insensitive, compact forms
    /// matched either way, as in [`Message::header`]).
    pub(crate) fn is_named(&self, h: &HeaderRef, name: &str) -> bool {
        match HeaderName::from_wire(name) {
            HeaderName::Other => {
                h.id == HeaderName::Other && self.text(h.name).eq_ignore_ascii_case(trim(name))
            }
            id => h.id == id,
        }
    }

    /// The range to remove to drop the first `n` non-empty comma-separated
    /// values of header `h` (empty elements among them go with them), and how
    /// many it holds (fewer than `n` when the line has fewer): the whole line if
    /// no other value follows, else up to the next value. `None` when the line
    /// holds no value at all.
    pub(crate) fn leading_values_range(
        &self,
        h: &HeaderRef,
        n: usize,
    ) -> Option<(Range<usize>, usize)> {
        let value = self.text(h.value);
        let mut split = CommaSplit::new(value);
        let mut k = 0;
        while k < n {
            match split.next() {
                Some("") => {}
                Some(_) => k += 1,
                None => break,
            }
        }
        if k == 0 {
            return None;
        }
        // Emptiness and white space as `CommaSplit` (and so `header_list`) sees them.
        let rest_nonempty = split
            .rest()
            .filter(|r| CommaSplit::new(r).any(|e| !e.is_empty()));
        let range = match rest_nonempty
            .and_then(|r| self.offset_of(r.trim_start_matches([' ', '\t', '\r', '\n'])))
        {
            Some(next) => h.value.start as usize..next,
            None => self.line_range(h),
        };
        Some((range, k))
    }

    /// The range to remove to drop the first comma-separated value of header
    /// `h`: the whole line if it holds one value, else the value, its comma
    /// and the white space after it.
    pub(crate) fn first_value_range(&self, h: &HeaderRef) -> Range<usize> {
        let value = self.text(h.value);
        let mut split = CommaSplit::new(value);
        split.next();
        match split.rest().and_then(|r| self.offset_of(r.trim_start())) {
            Some(next) => h.value.start as usize..next,
            None => self.line_range(h),
        }
    }

    /// The range of the message proper (leading CR/LF and trailing octets
    /// left out).
    pub(crate) fn extent_range(&self) -> Range<usize> {
        self.extent.range()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &'static str) -> Message {
        Message::parse(Bytes::from_static(s.as_bytes())).unwrap()
    }

    const M: &str = "\r\nOPTIONS sip:a@b SIP/2.0\r\nRoute: <sip:p1;lr>,  <sip:p2;lr>\r\n\
        X-A: 1\r\n folded\r\nRoute: <sip:p3;lr>\r\nl: 2\r\n\r\nhi+trailing";

    #[test]
    fn ranges_and_positions() {
        let m = msg(M);
        let ext = m.extent_range();
        let unfolded = M[2..M.len() - 9].replace("1\r\n folded", "1   folded");
        assert_eq!(&m.buf[ext], unfolded.as_bytes());
        let lines: Vec<&[u8]> = m.headers.iter().map(|h| &m.buf[m.line_range(h)]).collect();
        assert_eq!(
            lines,
            [
                &b"Route: <sip:p1;lr>,  <sip:p2;lr>\r\n"[..],
                b"X-A: 1   folded\r\n",
                b"Route: <sip:p3;lr>\r\n",
                b"l: 2\r\n"
            ]
        );
        assert_eq!(&m.buf[m.header_end()..m.header_end() + 4], b"\r\nhi");
        let (first, last) = m.first_and_last(HeaderName::Route).unwrap();
        assert_eq!(&m.buf[m.first_value_range(first)], b"<sip:p1;lr>,  ");
        assert_eq!(&m.buf[m.first_value_range(last)], b"Route: <sip:p3;lr>\r\n");
        assert!(m.is_named(&m.headers[3], "Content-Length"));
        assert!(m.is_named(&m.headers[1], "x-a"));
        assert!(!m.is_named(&m.headers[1], "X-B"));
        assert_eq!(m.offset_of("elsewhere"), None);
        let v = m.header("X-A").unwrap();
        assert_eq!(&m.buf[m.range_of(v).unwrap()], v.as_bytes());
    }

    #[test]
    fn rewriter_applies_in_order_and_removal_wins() {
        let m = msg(M);
        let mut w = Rewriter::new(&m);
        let (first, last) = m.first_and_last(HeaderName::Route).unwrap();
        let (first_line, last_line) = (m.line_range(first), m.line_range(last));
        w.remove(last_line.clone());
        w.insert(last_line.start + 2, |o| o.extend_from_slice(b"dropped"));
        w.insert(first_line.start, |o| o.extend_from_slice(b"A: 1\r\n"));
        w.insert(first_line.start, |o| o.extend_from_slice(b"B: 2\r\n"));
        w.replace(first_line, |o| o.extend_from_slice(b"Route: <sip:x>\r\n"));
        w.insert(m.header_end(), |o| o.extend_from_slice(b"Z: 9\r\n"));
        assert_eq!(
            w.finish(m.extent_range()),
            b"OPTIONS sip:a@b SIP/2.0\r\nA: 1\r\nB: 2\r\nRoute: <sip:x>\r\nX-A: 1   folded\r\n\
              l: 2\r\nZ: 9\r\n\r\nhi"
        );
    }

    #[test]
    fn input_checks() {
        assert!(is_single_line("a b"));
        assert!(!is_single_line("a\r\nb"));
        assert!(is_header_name("X-Foo"));
        assert!(!is_header_name("X Foo") && !is_header_name(""));
    }
}
