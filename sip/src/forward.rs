//! Building the request a proxy forwards (RFC 3261 §16.6), as one rewrite of
//! the received bytes.

use std::net::{Ipv6Addr, SocketAddr};

use super::branch::{branch_bytes, LoopKey};
use super::edit::{is_header_name, is_single_line, EditError, Rewriter};
use super::headers::HeaderName;
use super::message::Message;
use super::name_addr::NameAddr;
use super::received;
use super::scan::{is_token, push_decimal, CommaSplit};
use super::uri::Uri;
use super::via::BRANCH_MAGIC_COOKIE;
use super::{ParseError, MAX_HEADERS, MAX_LINE_LEN};

/// What to change when forwarding a request. Build with
/// [`ForwardRequest::new`] and set the optional fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardRequest<'a> {
    /// Transport of the new top Via (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`,
    /// `WSS`); written upper-case.
    pub transport: &'a str,
    /// Host of the new top Via sent-by: a name, an IPv4 address, or an IPv6
    /// address (brackets are added if missing).
    pub host: &'a str,
    /// Port of the new top Via sent-by.
    pub port: u16,
    /// A new Request-URI (RFC 3261 §16.6 step 2), if any.
    pub request_uri: Option<&'a str>,
    /// A Record-Route value to insert above the existing ones, in name-addr
    /// form, e.g. `<sip:proxy.example.com;lr>` (§16.6 step 4), or two of them
    /// separated by a comma (double record-routing, RFC 5658 §3).
    pub record_route: Option<&'a str>,
    /// A Path value to insert above the existing ones (RFC 3327 §4.2), in name-addr form.
    pub path: Option<&'a str>,
    /// Remove this many leading Route values (§16.4: they named this proxy; two
    /// after double record-routing, RFC 5658 §3).
    pub pop_routes: u8,
    /// Where the request came from: adds `received`/`rport` to the incoming
    /// top Via (RFC 3261 §18.2.1, RFC 3581 §4; see [`via_received`](super::via_received)).
    pub source: Option<SocketAddr>,
    /// With `source`: add `rport` even if the client did not ask for it (OpenSIPS
    /// `force_rport()`), so replies find a connection-oriented client's connection.
    pub force_rport: bool,
    /// Header fields to remove, every occurrence; names match
    /// case-insensitively and compact forms either way.
    pub remove_headers: &'a [&'a str],
    /// Header fields to append after the existing ones, in order.
    pub add_headers: &'a [(&'a str, &'a str)],
    /// The Max-Forwards value added when the request has none (RFC 3261 §16.6
    /// step 3: 70; OpenSIPS `mf_process_maxfwd_header(N)` sets it).
    pub default_max_forwards: u8,
    /// The loop digits of the new branch, if the caller already computed them
    /// (for loop detection); otherwise computed here.
    pub loop_key: Option<LoopKey>,
    /// The branch of the new Via, if the caller made it (a signed branch,
    /// see [`signed_branch`](super::signed_branch)); otherwise the unsigned
    /// [`stateless_branch`](super::stateless_branch) digits.
    pub branch: Option<&'a str>,
}

impl<'a> ForwardRequest<'a> {
    /// A forward that only adds the Via `SIP/2.0/{transport} {host}:{port}`
    /// and handles Max-Forwards.
    pub fn new(transport: &'a str, host: &'a str, port: u16) -> Self {
        ForwardRequest {
            transport,
            host,
            port,
            request_uri: None,
            record_route: None,
            path: None,
            pop_routes: 0,
            source: None,
            force_rport: false,
            remove_headers: &[],
            add_headers: &[],
            default_max_forwards: 70,
            loop_key: None,
            branch: None,
        }
    }

    /// Checks the caller-supplied text so that nothing malformed, and no
    /// CR/LF, reaches the wire.
    fn check(&self) -> Result<(), EditError> {
        if self.transport.is_empty() || !self.transport.bytes().all(is_token) {
            return Err(EditError::InvalidInput("Via transport"));
        }
        let host_ok = !self.host.is_empty()
            && (self.host.parse::<Ipv6Addr>().is_ok()
                || self.host.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
                }));
        if !host_ok {
            return Err(EditError::InvalidInput("Via host"));
        }
        if self
            .branch
            .is_some_and(|b| !b.starts_with(BRANCH_MAGIC_COOKIE) || !b.bytes().all(is_token))
        {
            return Err(EditError::InvalidInput("Via branch"));
        }
        if self.request_uri.is_some_and(|u| Uri::parse(u).is_err()) {
            return Err(EditError::InvalidInput("Request-URI"));
        }
        if let Some(rr) = self.record_route {
            // One value, or two for double record-routing (RFC 5658 §3), each a name-addr.
            let mut values = CommaSplit::new(rr);
            let valid = values.all(|v| NameAddr::parse(v).is_ok_and(|na| na.is_name_addr()));
            if !valid || !is_single_line(rr) {
                return Err(EditError::InvalidInput("Record-Route"));
            }
        }
        if let Some(p) = self.path {
            let valid = NameAddr::parse(p).is_ok_and(|na| na.is_name_addr());
            if !valid || !is_single_line(p) {
                return Err(EditError::InvalidInput("Path"));
            }
        }
        if !self.remove_headers.iter().all(|n| is_header_name(n)) {
            return Err(EditError::InvalidInput("header name"));
        }
        for (name, value) in self.add_headers {
            if !is_header_name(name) {
                return Err(EditError::InvalidInput("header name"));
            }
            if !is_single_line(value) {
                return Err(EditError::InvalidInput("header value"));
            }
        }
        Ok(())
    }
}

/// Writes `Via: SIP/2.0/{TRANSPORT} {host}:{port};branch={branch}` CRLF.
fn write_via(out: &mut Vec<u8>, fwd: &ForwardRequest<'_>, branch: &[u8]) {
    out.extend_from_slice(b"Via: SIP/2.0/");
    out.extend(fwd.transport.bytes().map(|b| b.to_ascii_uppercase()));
    out.push(b' ');
    let bare_v6 = fwd.host.parse::<Ipv6Addr>().is_ok();
    if bare_v6 {
        out.push(b'[');
    }
    out.extend_from_slice(fwd.host.as_bytes());
    if bare_v6 {
        out.push(b']');
    }
    out.push(b':');
    push_decimal(out, fwd.port.into());
    out.extend_from_slice(b";branch=");
    out.extend_from_slice(branch);
    out.extend_from_slice(b"\r\n");
}

/// Builds the request to forward from `req` (RFC 3261 §16.6) in one pass
/// over its bytes:
///
/// - the Request-URI replaced if [`ForwardRequest::request_uri`] is set;
/// - a new top Via with the [`stateless_branch`](super::stateless_branch)
///   (§16.6 step 8, §16.11), on its own line above the first Via line;
/// - `received`/`rport` added to the incoming top Via if
///   [`ForwardRequest::source`] is set;
/// - Max-Forwards decremented, or [`ForwardRequest::default_max_forwards`]
///   appended (§16.6 step 3);
/// - the Record-Route line inserted above the first Record-Route line, or
///   after the last Via line if there is none;
/// - the first Route value removed (the line if it holds only that value);
/// - [`ForwardRequest::remove_headers`] removed (a removal wins over the
///   other edits of the same line), [`ForwardRequest::add_headers`] appended;
/// - `Content-Length` appended if the request had none (needed on streams,
///   §18.3); leading CR/LF and octets after the body are dropped.
///
/// Errors: [`EditError::NotARequest`]; [`EditError::TooManyHops`] if
/// Max-Forwards is 0 (answer 483); [`EditError::Parse`] if Max-Forwards or,
/// when `source` is set, the top Via is malformed, or if `pop_routes` is set
/// and there is no Route; [`EditError::InvalidInput`] for bad caller text;
/// [`EditError::TooLarge`] when the result would not parse again (too many
/// header fields or too long a line: a proxy answers 513).
pub fn forward_request(req: &Message, fwd: &ForwardRequest<'_>) -> Result<Vec<u8>, EditError> {
    if !req.is_request() {
        return Err(EditError::NotARequest);
    }
    fwd.check()?;
    let max_forwards = req.max_forwards()?;
    if max_forwards == Some(0) {
        return Err(EditError::TooManyHops);
    }
    let mut w = Rewriter::new(req);
    if let (Some(new), Some(old)) = (fwd.request_uri, req.ruri()) {
        let range = req
            .range_of(old)
            .ok_or(EditError::InvalidInput("Request-URI"))?;
        w.replace(range, |o| o.extend_from_slice(new.as_bytes()));
    }
    let vias = req.first_and_last(HeaderName::Via);
    let first_header = req.headers.first().map(|h| req.line_range(h).start);
    let via_at = vias
        .map(|(first, _)| req.line_range(first).start)
        .or(first_header)
        .unwrap_or_else(|| req.header_end());
    let key = fwd
        .loop_key
        .unwrap_or_else(|| LoopKey::of(req, fwd.request_uri));
    let unsigned;
    let branch: &[u8] = match fwd.branch {
        Some(b) => b.as_bytes(),
        None => {
            unsigned = branch_bytes(req, &key);
            &unsigned
        }
    };
    w.insert(via_at, |o| write_via(o, fwd, branch));
    if let Some(source) = fwd.source {
        received::apply(req, &mut w, source, fwd.force_rport)?;
    }
    if let Some(rr) = fwd.record_route {
        let at = match (req.first_and_last(HeaderName::RecordRoute), vias) {
            (Some((first, _)), _) => req.line_range(first).start,
            (None, Some((_, last))) => req.line_range(last).end,
            (None, None) => via_at,
        };
        w.insert(at, |o| {
            o.extend_from_slice(b"Record-Route: ");
            o.extend_from_slice(rr.as_bytes());
            o.extend_from_slice(b"\r\n");
        });
    }
    if let Some(p) = fwd.path {
        let at = match (req.first_and_last(HeaderName::Path), vias) {
            (Some((first, _)), _) => req.line_range(first).start,
            (None, Some((_, last))) => req.line_range(last).end,
            (None, None) => via_at,
        };
        w.insert(at, |o| {
            o.extend_from_slice(b"Path: ");
            o.extend_from_slice(p.as_bytes());
            o.extend_from_slice(b"\r\n");
        });
    }
    if fwd.pop_routes > 0 {
        // The first Route *values*: empty lines and empty elements hold none and are skipped.
        let mut left = usize::from(fwd.pop_routes);
        for h in req.headers.iter().filter(|h| h.id == HeaderName::Route) {
            if left == 0 {
                break;
            }
            if let Some((range, k)) = req.leading_values_range(h, left) {
                w.remove(range);
                left -= k;
            }
        }
        if left == usize::from(fwd.pop_routes) {
            return Err(ParseError::MissingHeader("Route").into());
        }
    }
    for h in req.headers.iter() {
        if fwd.remove_headers.iter().any(|n| req.is_named(h, n)) {
            w.remove(req.line_range(h));
        }
    }
    let end = req.header_end();
    match (
        max_forwards,
        req.headers.iter().find(|h| h.id == HeaderName::MaxForwards),
    ) {
        (Some(n), Some(h)) => w.replace(h.value.range(), |o| {
            push_decimal(o, (n - 1).into());
        }),
        _ => w.insert(end, |o| {
            o.extend_from_slice(b"Max-Forwards: ");
            push_decimal(o, fwd.default_max_forwards.into());
            o.extend_from_slice(b"\r\n");
        }),
    }
    for (name, value) in fwd.add_headers {
        w.insert(end, |o| {
            o.extend_from_slice(name.as_bytes());
            o.extend_from_slice(b": ");
            o.extend_from_slice(value.as_bytes());
            o.extend_from_slice(b"\r\n");
        });
    }
    if req.content_length().is_none() {
        let len = req.body().len();
        w.insert(end, |o| {
            o.extend_from_slice(b"Content-Length: ");
            push_decimal(o, len as u64);
            o.extend_from_slice(b"\r\n");
        });
    }
    let out = w.finish(req.extent_range());
    within_parser_limits(&out)?;
    Ok(out)
}

/// Checks that `out` stays within what [`Message::parse`] accepts, measured
/// as the parser measures: at most [`MAX_HEADERS`] header fields, no start
/// line or header field (with its continuation lines) longer than
/// [`MAX_LINE_LEN`], at most `u32::MAX` bytes. A request at the limit gains
/// our Via (and maybe a Record-Route, Max-Forwards or Content-Length): it
/// must be refused rather than sent unparsable.
fn within_parser_limits(out: &[u8]) -> Result<(), EditError> {
    if u32::try_from(out.len()).is_err() {
        return Err(EditError::TooLarge("size"));
    }
    let mut pos = 0;
    let mut fields = 0usize;
    let mut field_start = None;
    let mut first = true;
    while let Some(nl) = memchr::memchr(b'\n', out.get(pos..).unwrap_or_default()) {
        let nl = pos + nl;
        let end = if nl > pos && out[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if end == pos {
            break;
        }
        if first {
            first = false;
            if end - pos > MAX_LINE_LEN {
                return Err(EditError::TooLarge("start line"));
            }
        } else if matches!(out[pos], b' ' | b'\t') {
            if field_start.is_some_and(|s| end - s > MAX_LINE_LEN) {
                return Err(EditError::TooLarge("header line"));
            }
        } else {
            fields += 1;
            if fields > MAX_HEADERS {
                return Err(EditError::TooLarge("header count"));
            }
            if end - pos > MAX_LINE_LEN {
                return Err(EditError::TooLarge("header line"));
            }
            field_start = Some(pos);
        }
        pos = nl + 1;
    }
    Ok(())
}
