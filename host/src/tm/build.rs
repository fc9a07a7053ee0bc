//! Requests the transaction layer builds itself: the ACK for a non-2xx final response
//! (RFC 3261 §17.1.1.3) and the CANCEL of a pending request (§9.1), both from the request as
//! it was sent, copying its header text.

use std::io::Write;

use thiserror::Error;

use crate::sip::{HeaderName, Message, ParseError};

/// Why an ACK or CANCEL cannot be built from a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// The message given as the request is a response.
    #[error("not a request")]
    NotARequest,
    /// The message given as the response is a request.
    #[error("not a response")]
    NotAResponse,
    /// A header field the new request copies is missing or malformed.
    #[error("cannot copy from the request: {0}")]
    Parse(#[from] ParseError),
}

/// Appends `Name: value CRLF`, any CR or LF in `value` turned into SP (parsed values have
/// none; this keeps it so for any input).
fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend(
        value
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// The fields both builders copy, checked: Request-URI, top Via, From, Call-ID, CSeq number.
struct Common<'m> {
    ruri: &'m str,
    via: &'m str,
    from: &'m str,
    call_id: &'m str,
    seq: u32,
}

fn common(req: &Message) -> Result<Common<'_>, BuildError> {
    let ruri = req.ruri().ok_or(BuildError::NotARequest)?;
    req.top_via()?;
    let via = req.vias().next().ok_or(ParseError::MissingHeader("Via"))?;
    req.from()?;
    let from = req
        .header("From")
        .ok_or(ParseError::MissingHeader("From"))?;
    let call_id = req.call_id().ok_or(ParseError::MissingHeader("Call-ID"))?;
    let seq = req.cseq()?.seq;
    Ok(Common {
        ruri,
        via,
        from,
        call_id,
        seq,
    })
}

/// Checks that an ACK (given a response with a To) and a CANCEL can be built from `req`.
pub(crate) fn check_copyable(req: &Message) -> Result<(), BuildError> {
    common(req)?;
    req.to()?;
    Ok(())
}

/// Writes the request line, Via, Max-Forwards, the request's Routes, From, To, Call-ID and
/// CSeq of a `method` request with an empty body.
fn write(req: &Message, c: &Common<'_>, method: &str, to: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + c.ruri.len() + c.via.len() + to.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(c.ruri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    header(&mut out, "Via", c.via);
    let mf = req.max_forwards().ok().flatten().unwrap_or(70);
    let _ = write!(out, "Max-Forwards: {mf}\r\n");
    for route in req.headers("Route") {
        header(&mut out, "Route", route);
    }
    header(&mut out, "From", c.from);
    header(&mut out, "To", to);
    header(&mut out, "Call-ID", c.call_id);
    let _ = write!(out, "CSeq: {} {method}\r\n", c.seq);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    out
}

/// The ACK a client transaction sends for the non-2xx final response `resp` to the INVITE
/// `req` it sent (RFC 3261 §17.1.1.3): the Request-URI, Call-ID, From, CSeq number and
/// Route header fields of the request, only its top Via (so the same branch), the To of the
/// response (with its tag), CSeq method ACK, Max-Forwards as in the request (70 if absent),
/// no body.
pub fn build_ack(req: &Message, resp: &Message) -> Result<Vec<u8>, BuildError> {
    if resp.is_request() {
        return Err(BuildError::NotAResponse);
    }
    let c = common(req)?;
    resp.to()?;
    let to = resp
        .first(HeaderName::To)
        .ok_or(ParseError::MissingHeader("To"))?;
    Ok(write(req, &c, "ACK", to))
}

/// The CANCEL of the request `req` as it was sent (RFC 3261 §9.1): the same Request-URI,
/// Call-ID, To, From, CSeq number and Route header fields, only its top Via (so the same
/// branch, which is how the next hop matches it, §9.2), CSeq method CANCEL, no body.
pub fn build_cancel(req: &Message) -> Result<Vec<u8>, BuildError> {
    let c = common(req)?;
    req.to()?;
    let to = req
        .first(HeaderName::To)
        .ok_or(ParseError::MissingHeader("To"))?;
    Ok(write(req, &c, "CANCEL", to))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnashds7, SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        Max-Forwards: 69\r\n\
        Route: <sip:p2.example.com;lr>\r\n\
        To: Bob <sip:bob@biloxi.example.com>\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\n";

    const BUSY: &str = "SIP/2.0 486 Busy Here\r\n\
        Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnashds7\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
        From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\n\
        CSeq: 314159 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn ack_for_non_2xx_follows_17_1_1_3() {
        let ack = build_ack(&msg(INVITE), &msg(BUSY)).unwrap();
        let expect = "ACK sip:bob@biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnashds7\r\n\
            Max-Forwards: 69\r\n\
            Route: <sip:p2.example.com;lr>\r\n\
            From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
            To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
            Call-ID: a84b4c76e66710\r\n\
            CSeq: 314159 ACK\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(ack.clone()).unwrap(), expect);
        let parsed = msg(std::str::from_utf8(&ack).unwrap());
        assert_eq!(parsed.top_branch(), Ok(Some("z9hG4bKnashds7")));
        assert_eq!(parsed.to_tag_param(), Ok(Some(Some("a6c85cf"))));
    }

    #[test]
    fn cancel_follows_9_1() {
        let cancel = build_cancel(&msg(INVITE)).unwrap();
        let expect = "CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnashds7\r\n\
            Max-Forwards: 69\r\n\
            Route: <sip:p2.example.com;lr>\r\n\
            From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
            To: Bob <sip:bob@biloxi.example.com>\r\n\
            Call-ID: a84b4c76e66710\r\n\
            CSeq: 314159 CANCEL\r\n\
            Content-Length: 0\r\n\r\n";
        assert_eq!(String::from_utf8(cancel).unwrap(), expect);
    }

    #[test]
    fn refuses_what_it_cannot_copy() {
        assert_eq!(
            build_cancel(&msg(BUSY)).unwrap_err(),
            BuildError::NotARequest
        );
        assert_eq!(
            build_ack(&msg(INVITE), &msg(INVITE)).unwrap_err(),
            BuildError::NotAResponse
        );
        let no_cseq = INVITE.replace("CSeq: 314159 INVITE\r\n", "");
        assert!(matches!(
            build_cancel(&msg(&no_cseq)),
            Err(BuildError::Parse(_))
        ));
    }
}
