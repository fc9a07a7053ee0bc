//! Stateless replies (RFC 3261 §8.2.6, §16.7; OpenSIPS `sl` module), built
//! from the request's own header text without re-serialising it.

use std::net::SocketAddr;

use xxhash_rust::xxh3::{xxh3_128, Xxh3Default};

use super::headers::HeaderName;
use super::message::Message;
use super::scan::{push_decimal, trim};

/// Appends `s`, turning any CR or LF into SP so that no caller-supplied or
/// copied text can start a new header line.
fn put(out: &mut Vec<u8>, s: &str) {
    let at = out.len();
    out.extend_from_slice(s.as_bytes());
    // Values come from a parsed message, so CR/LF is rare: find it, don't map every byte.
    let tail = out.get_mut(at..).unwrap_or_default();
    let mut i = 0;
    while let Some(j) = memchr::memchr2(b'\r', b'\n', tail.get(i..).unwrap_or_default()) {
        if let Some(b) = tail.get_mut(i + j) {
            *b = b' ';
        }
        i += j + 1;
    }
}

/// Appends `Name: value CRLF`. Both are copied as they are when `clean` says they can hold
/// no CR or LF (our own names, and the values of a message without a stray CR: see
/// `Message::stray_cr`), else through [`put`].
fn header(out: &mut Vec<u8>, name: &str, value: &str, clean: bool) {
    put_value(out, name, clean);
    out.extend_from_slice(b": ");
    put_value(out, value, clean);
    out.extend_from_slice(b"\r\n");
}

/// Appends `s`, through [`put`] unless `clean`.
fn put_value(out: &mut Vec<u8>, s: &str, clean: bool) {
    if clean {
        out.extend_from_slice(s.as_bytes());
    } else {
        put(out, s);
    }
}

/// Builds a response to `req` (RFC 3261 §8.2.6.1-§8.2.6.2):
///
/// - status line `SIP/2.0 code reason` (CR/LF in `reason` become SP);
/// - every Via header of the request, in order, with its value as received
///   (so several comma-separated values stay on one line);
/// - the first From, To, Call-ID and CSeq, values as received; `;tag=to_tag`
///   is appended to To only if `to_tag` is not empty and the request's To
///   parses and has no tag (an unparsable To is copied unchanged);
/// - `extra_headers` in order, then `Content-Type` if a body is given, and
///   always `Content-Length`.
///
/// Compact header names are written in full. `code` is written as given.
/// The `received`/`rport` Via parameters (RFC 3261 §18.2.1, RFC 3581) are not
/// added here: see [`build_reply_from`].
pub fn build_reply(
    req: &Message,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra_headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    build_reply_from(req, None, code, reason, to_tag, extra_headers, body)
}

/// [`build_reply`] for a request received from `source`: the top Via of the
/// response gets `received` (RFC 3261 §18.2.1) and a filled `rport`
/// (RFC 3581 §4; added when the flag is set, as OpenSIPS `force_rport()`),
/// see [`first_via_received`](super::first_via_received). A top Via that
/// does not parse is copied unchanged.
pub fn build_reply_from(
    req: &Message,
    source: Option<(SocketAddr, bool)>,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra_headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let body_bytes = body.map_or(&[][..], |(_, b)| b);
    let mut out = Vec::with_capacity(256 + req.as_bytes().len().min(4096) + body_bytes.len());
    out.extend_from_slice(b"SIP/2.0 ");
    push_decimal(&mut out, u64::from(code));
    out.push(b' ');
    put(&mut out, reason);
    out.extend_from_slice(b"\r\n");
    // Values copied from the request hold no CR or LF unless it had a stray CR.
    let clean = !req.stray_cr;
    let mut first = source;
    for v in req.values(HeaderName::Via) {
        let Some((src, force)) = first.take() else {
            header(&mut out, "Via", v, clean);
            continue;
        };
        out.extend_from_slice(b"Via: ");
        let at = out.len();
        if super::received::write_first_via_received(&mut out, req, src, force).is_ok() {
            // The Via as received plus our own parameters (digits, dots, brackets).
            if !clean {
                for b in out.get_mut(at..).unwrap_or_default() {
                    if *b == b'\r' || *b == b'\n' {
                        *b = b' ';
                    }
                }
            }
            out.extend_from_slice(b"\r\n");
        } else {
            out.truncate(at - b"Via: ".len());
            header(&mut out, "Via", v, clean);
        }
    }
    if let Some(from) = req.first(HeaderName::From) {
        header(&mut out, "From", from, clean);
    }
    if let Some(to) = req.first(HeaderName::To) {
        let add_tag = !to_tag.is_empty() && matches!(req.to_tag_param(), Ok(None));
        out.extend_from_slice(b"To: ");
        put_value(&mut out, to, clean);
        if add_tag {
            out.extend_from_slice(b";tag=");
            put(&mut out, to_tag);
        }
        out.extend_from_slice(b"\r\n");
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = req.first(name) {
            header(&mut out, name.as_str(), v, clean);
        }
    }
    for (name, value) in extra_headers {
        header(&mut out, name, value, false);
    }
    if let Some((content_type, _)) = body {
        header(&mut out, "Content-Type", content_type, false);
    }
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(&mut out, body_bytes.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body_bytes);
    out
}

/// A To tag for stateless replies that is the same for every retransmission
/// of a request (and for the ACK of a non-2xx reply, which keeps Call-ID,
/// From tag, branch and CSeq number), in the manner of OpenSIPS `sl` (which
/// appends a CRC-16 of the top Via to a fixed prefix): 20 lower-case hex digits
/// of XXH3-128 over Call-ID, From tag, top Via branch and CSeq number, each
/// preceded by its length (falling back to the raw header text when a field
/// does not parse, e.g. an RFC 2543 Via without branch).
///
/// The tag only has to tell requests apart and be the same on every node and
/// across restarts: nothing secret goes in, and an attacker learns nothing from it
/// that the request did not hold, so a non-cryptographic 128-bit hash serves. SHA-1
/// served until 2026-12; a node of a cluster upgraded between a negative reply
/// and its ACK does not recognise that one ACK as its own (RFC 3261 §17.1.1.3:
/// the ACK is then routed as any other).
pub fn stateless_to_tag(req: &Message) -> StatelessTag {
    let from_tag = req
        .from_tag_param()
        .ok()
        .flatten()
        .flatten()
        .or_else(|| req.first(HeaderName::From))
        .unwrap_or("");
    let branch = req
        .top_branch()
        .ok()
        .flatten()
        .or_else(|| req.vias().next())
        .unwrap_or("");
    let cseq = trim(req.first(HeaderName::CSeq).unwrap_or(""));
    let cseq_num = cseq.split([' ', '\t']).next().unwrap_or("");
    let parts = [req.call_id().unwrap_or(""), from_tag, branch, cseq_num];
    let digest = to_tag_digest(&parts);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = [0u8; 20];
    for (pair, b) in tag.chunks_exact_mut(2).zip(digest.to_be_bytes()) {
        pair.copy_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
    }
    StatelessTag(tag)
}

/// A tag from [`stateless_to_tag`]: 20 hex digits, held without an allocation (it is made
/// for every stateless reply). Reads as a `&str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatelessTag([u8; 20]);

impl StatelessTag {
    /// The tag as text.
    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for StatelessTag {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for StatelessTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for StatelessTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for StatelessTag {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for StatelessTag {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<StatelessTag> for &str {
    fn eq(&self, other: &StatelessTag) -> bool {
        self.as_bytes() == other.0
    }
}

/// XXH3-128 of `sipcore-sl` and each part preceded by its length (4 bytes, little-endian),
/// hashed in one call over a stack copy when it fits, else streamed (the same digest).
fn to_tag_digest(parts: &[&str; 4]) -> u128 {
    const PREFIX: &[u8] = b"sipcore-sl";
    let total = PREFIX.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut stage = [0u8; 256];
    if let Some(out) = stage.get_mut(..total) {
        let mut n = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = out.get_mut(n..n + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            n += bytes.len();
        };
        put(PREFIX);
        for p in parts {
            put(&(p.len() as u32).to_le_bytes());
            put(p.as_bytes());
        }
        return xxh3_128(out);
    }
    let mut h = Xxh3Default::new();
    h.update(PREFIX);
    for p in parts {
        h.update(&(p.len() as u32).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.digest128()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    /// An OPTIONS as JsSIP sends it over WebSocket (RFC 7118 §5).
    const JSSIP_OPTIONS: &str = "OPTIONS sip:alice@example.com SIP/2.0\r\n\
        Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK3215764\r\n\
        Max-Forwards: 69\r\n\
        To: <sip:alice@example.com>\r\n\
        From: \"Bob\" <sip:bob@example.com>;tag=0lq1ba0kbr\r\n\
        Call-ID: ntu0gtsvsjhu7c4ujgd8\r\n\
        CSeq: 6201 OPTIONS\r\n\
        Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY\r\n\
        Supported: path,gruu,outbound\r\n\
        User-Agent: JsSIP 3.10.0\r\n\
        Content-Length: 0\r\n\r\n";

    /// Computed independently (Python's `xxhash`): XXH3-128 of b"sipcore-sl" followed by the
    /// four fields, each after its length in 4 little-endian bytes; the first 10 bytes of its
    /// canonical (big-endian) form in hex.
    const JSSIP_TAG: &str = "8eda31be1ee978ace5cc";

    #[test]
    fn jssip_options_over_ws_exact_bytes() {
        let req = msg(JSSIP_OPTIONS);
        let tag = stateless_to_tag(&req);
        assert_eq!(tag, JSSIP_TAG);
        let reply = build_reply(
            &req,
            200,
            "OK",
            &tag,
            &[
                ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"),
                ("Server", "sipcore"),
            ],
            None,
        );
        let expected = format!(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK3215764\r\n\
             From: \"Bob\" <sip:bob@example.com>;tag=0lq1ba0kbr\r\n\
             To: <sip:alice@example.com>;tag={JSSIP_TAG}\r\n\
             Call-ID: ntu0gtsvsjhu7c4ujgd8\r\n\
             CSeq: 6201 OPTIONS\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
             Server: sipcore\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert_eq!(String::from_utf8(reply.clone()).unwrap(), expected);
        let parsed = Message::parse(Bytes::from(reply)).unwrap();
        assert_eq!(parsed.status(), Some(200));
        assert_eq!(parsed.to().unwrap().tag(), Some(JSSIP_TAG));
        assert_eq!(parsed.validate_for_proxy(), Ok(()));
    }

    /// The tag is XXH3-128 over fixed fields, the same on every node and across restarts (a
    /// retransmission answered by another node of a cluster gets the same tag). Values from
    /// Python's `xxhash` package (`xxh3_128(...).digest()[:10].hex()`) over the same bytes;
    /// the 300-byte Call-ID takes the streamed path.
    #[test]
    fn tag_is_a_stable_digest() {
        let m = |call_id: &str| {
            msg(&format!(
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/WS h.invalid;branch=z9hG4bK1\r\n\
                 From: <sip:a@b>;tag=ft\r\nTo: <sip:b@b>\r\nCall-ID: {call_id}\r\n\
                 CSeq: 7 OPTIONS\r\n\r\n"
            ))
        };
        assert_eq!(stateless_to_tag(&m("c1@h")), "144693a6fafc1dea5470");
        assert_eq!(
            stateless_to_tag(&m(&"x".repeat(300))),
            "b2c9b0806ad8076957e4"
        );
    }

    #[test]
    fn same_request_same_tag_other_request_other_tag() {
        let a = stateless_to_tag(&msg(JSSIP_OPTIONS));
        let b = stateless_to_tag(&msg(JSSIP_OPTIONS));
        assert_eq!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        for (from, to) in [
            ("z9hG4bK3215764", "z9hG4bK3215765"),
            ("tag=0lq1ba0kbr", "tag=0lq1ba0kbs"),
            ("Call-ID: ntu0", "Call-ID: ntu1"),
            ("CSeq: 6201", "CSeq: 6202"),
        ] {
            assert_ne!(
                stateless_to_tag(&msg(&JSSIP_OPTIONS.replace(from, to))),
                a,
                "{to}"
            );
        }
        // The ACK for a non-2xx reply keeps all four fields: same tag.
        let ack = JSSIP_OPTIONS
            .replace("OPTIONS sip", "ACK sip")
            .replace("6201 OPTIONS", "6201 ACK");
        assert_eq!(stateless_to_tag(&msg(&ack)), a);
    }

    #[test]
    fn to_with_tag_is_kept() {
        let req = msg(&JSSIP_OPTIONS.replace(
            "To: <sip:alice@example.com>",
            "t: <sip:alice@example.com> ;tag=abc",
        ));
        let reply = build_reply(
            &req,
            481,
            "Call/Transaction Does Not Exist",
            "zzz",
            &[],
            None,
        );
        let text = String::from_utf8(reply).unwrap();
        assert!(text.starts_with("SIP/2.0 481 Call/Transaction Does Not Exist\r\n"));
        assert!(
            text.contains("\r\nTo: <sip:alice@example.com> ;tag=abc\r\n"),
            "{text}"
        );
        assert!(!text.contains("zzz"));
    }

    #[test]
    fn all_vias_in_order_compact_names_expanded() {
        let req = msg("INVITE sip:b@example.com SIP/2.0\r\n\
            v: SIP/2.0/WS a.invalid;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\n\
            Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK3\r\n\
            f: <sip:a@example.com>;tag=x\r\nt: sip:b@example.com\r\ni: cid\r\nCSeq: 1 INVITE\r\n\r\n");
        let reply = build_reply(&req, 100, "Trying", "", &[], None);
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "SIP/2.0 100 Trying\r\n\
             Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK2\r\n\
             Via: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK3\r\n\
             From: <sip:a@example.com>;tag=x\r\n\
             To: sip:b@example.com\r\n\
             Call-ID: cid\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn body_sanitising_and_broken_to() {
        let req = msg("MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n\
            From: <sip:a@example.com>;tag=x\r\nTo: \"open <sip:b@example.com>\r\nCall-ID: c\r\nCSeq: 2 MESSAGE\r\n\r\n");
        let reply = build_reply(
            &req,
            400,
            "Bad\r\nX-Evil: 1",
            "t1",
            &[("X-A", "1\r\n2")],
            Some(("text/plain", b"oops")),
        );
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "SIP/2.0 400 Bad  X-Evil: 1\r\n\
             Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n\
             From: <sip:a@example.com>;tag=x\r\n\
             To: \"open <sip:b@example.com>\r\n\
             Call-ID: c\r\n\
             CSeq: 2 MESSAGE\r\n\
             X-A: 1  2\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: 4\r\n\r\noops"
        );
    }

    #[test]
    fn tag_falls_back_to_raw_fields() {
        // RFC 2543 style: no branch, no From tag.
        let a = msg("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1\r\nFrom: sip:a@example.com\r\n\
            To: sip:b@example.com\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n");
        let b = msg("INVITE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h2\r\nFrom: sip:a@example.com\r\n\
            To: sip:b@example.com\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n");
        assert_ne!(stateless_to_tag(&a), stateless_to_tag(&b));
        assert_eq!(stateless_to_tag(&a).len(), 20);
    }

    #[test]
    fn own_replies_carry_received_and_rport() {
        let req = msg(JSSIP_OPTIONS);
        let src: SocketAddr = "192.0.2.9:53123".parse().unwrap();
        let forced = build_reply_from(&req, Some((src, true)), 200, "OK", "t", &[], None);
        let text = String::from_utf8(forced).unwrap();
        assert!(
            text.contains("\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK3215764;received=192.0.2.9;rport=53123\r\n"),
            "{text}"
        );
        // Without force, rport is filled only when the client asked for it.
        let asked = msg(&JSSIP_OPTIONS.replace("z9hG4bK3215764", "z9hG4bK3215764;rport"));
        let text = String::from_utf8(build_reply_from(
            &asked,
            Some((src, false)),
            200,
            "OK",
            "t",
            &[],
            None,
        ))
        .unwrap();
        assert!(
            text.contains(";rport=53123;received=192.0.2.9\r\n"),
            "{text}"
        );
        let parsed = Message::parse(Bytes::from(text.into_bytes())).unwrap();
        assert_eq!(parsed.top_via().unwrap().rport(), Some(Some(53123)));
        // Later Via values and lines are copied as received.
        let two = msg(&JSSIP_OPTIONS.replace(
            "Max-Forwards",
            "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nMax-Forwards",
        ));
        let text = String::from_utf8(build_reply_from(
            &two,
            Some((src, true)),
            200,
            "OK",
            "t",
            &[],
            None,
        ))
        .unwrap();
        assert!(
            text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"),
            "{text}"
        );
    }
}
