//! sipcore's SIP message layer (the host's `sipcore::sip`, shared with the stream transports): a lazy, zero-copy RFC 3261 parser and the
//! stateless-reply builder.
//!
//! In the SER/OpenSIPS manner, [`Message::parse`] does the framing eagerly
//! (start line, header lines as byte ranges, Content-Length) and leaves every
//! header body to accessors that parse on demand and borrow from the received
//! [`bytes::Bytes`]: [`Message::from`], [`Message::top_via`],
//! [`Message::cseq`], [`Message::contacts`]... A proxy calls
//! [`Message::validate_for_proxy`] once to reject what it cannot route, and
//! answers with [`build_reply`] and [`stateless_to_tag`].
//!
//! For forwarding (RFC 3261 §16.6, §16.7), [`forward_request`] rewrites a
//! received request in one pass (new top Via with a [`signed_branch`] naming
//! the hop the request came from under a MAC, or an unsigned
//! [`stateless_branch`], `received`/`rport` on the old one per §18.2.1 and
//! RFC 3581, Max-Forwards, Request-URI, Record-Route, Route, added and
//! removed headers) and refuses to build what its own parser would reject;
//! [`verify_branch`] reads the hop back from a response's top Via, and
//! [`forward_response`] removes that Via and tells where the next one says
//! to send it ([`ResponseDest`]). [`build_reply_from`] answers with the
//! `received`/`rport` of the request's source in the top Via.
//!
//! [`stream`] finds where each message ends on a TCP or TLS stream (RFC 3261 §18.3) and
//! spots the CRLF keep-alives (RFC 5626 §4.4.1); [`peek`] reads a datagram's Call-ID before
//! it is parsed (a UDP transport keeps each call's datagrams in order with it).
//!
//! Pure code over bytes: no I/O, no clock, no panics on input. RFC 4475
//! torture messages are the test corpus (`testdata/`).
//!
//! ```
//! use sipcore_sip::{build_reply, stateless_to_tag, Message};
//! let req = Message::parse(bytes::Bytes::from_static(
//!     b"OPTIONS sip:a@example.com SIP/2.0\r\nv: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n\
//!       f: <sip:b@example.com>;tag=1\r\nt: <sip:a@example.com>\r\ni: c1\r\n\
//!       CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n",
//! )).unwrap();
//! assert_eq!(req.header("Call-ID"), Some("c1"));
//! assert_eq!(req.top_via().unwrap().transport(), "WS");
//! req.validate_for_proxy().unwrap();
//! let reply = build_reply(&req, 200, "OK", &stateless_to_tag(&req), &[], None);
//! assert!(reply.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n"));
//! ```

mod branch;
mod cached;
mod edit;
mod error;
mod forward;
mod fuzz;
mod headers;
mod hop;
mod lenient;
mod message;
mod name_addr;
mod params;
mod parser;
pub mod peek;
mod received;
mod reply;
mod response;
mod scan;
pub mod stream;
mod uri;
mod validate;
mod via;

#[cfg(test)]
mod tests_forward;
#[cfg(test)]
mod tests_hop;
#[cfg(test)]
mod tests_message;
#[cfg(test)]
mod tests_rfc4475;
#[cfg(test)]
mod tests_stream;

pub use branch::{
    stateless_branch, txn_digits_of_branch, write_hex, LoopKey, BRANCH_HASH_LEN, BRANCH_LEN,
};
pub use edit::EditError;
pub use error::ParseError;
pub use forward::{forward_request, ForwardRequest};
#[doc(hidden)]
pub use fuzz::fuzz_parse;
pub use headers::{CSeq, HeaderName, Method, SipDate};
pub use hop::{
    is_looped, signed_branch, signed_branch_n, verify_branch, BranchError, BranchText, Hop,
    SignedBranch, SIGNED_BRANCH_MAX,
};
pub use lenient::reply_to_malformed;
pub use message::{HeaderValues, ListValues, Message};
pub use name_addr::{Contact, NameAddr};
pub use params::{ParamIter, Params};
pub use received::{
    first_via_received, via_received, with_via_received, ResponseDest, ViaReceived,
};
pub use reply::{build_reply, build_reply_from, stateless_to_tag, StatelessTag};
pub use response::{forward_response, ForwardedResponse};
pub use scan::ipv4_text;
pub use uri::{unescape, Scheme, Uri};
pub use via::{Via, BRANCH_MAGIC_COOKIE};

/// Most header fields a message may have (each header line counts once).
pub const MAX_HEADERS: usize = 128;

/// Longest start line, and longest header field including its continuation
/// lines, in bytes.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// Whether `buf` is an RFC 5626 §3.5.1 keep-alive: a non-empty run of CR and
/// LF only (the CRLF CRLF "ping" or the CRLF "pong"), to be answered or
/// absorbed before [`Message::parse`].
pub fn is_keepalive(buf: &[u8]) -> bool {
    !buf.is_empty() && buf.iter().all(|&b| b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::is_keepalive;

    #[test]
    fn keepalives() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(is_keepalive(b"\n"));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"\r\n \r\n"));
        assert!(!is_keepalive(b"OPTIONS"));
    }
}
