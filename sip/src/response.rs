//! Forwarding a response (RFC 3261 §16.7 steps 3 and 9): remove this
//! element's top Via and find where the next one says to send it.

use super::edit::{EditError, Rewriter};
use super::headers::HeaderName;
use super::message::Message;
use super::received::ResponseDest;
use super::via::Via;

/// A response ready to be forwarded upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedResponse<'m> {
    /// The response without its top Via value.
    pub bytes: Vec<u8>,
    /// The Via value removed (this element's own: check its branch or
    /// sent-by before forwarding).
    pub removed: Via<'m>,
    /// The Via value now on top.
    pub next: Via<'m>,
    /// Where `next` says to send the response (RFC 3261 §18.2.2, RFC 3581).
    pub dest: ResponseDest<'m>,
}

/// Removes the top Via value of `resp` (the whole line if it holds only
/// that value) in one pass over its bytes, and parses the next Via value to
/// find where to send the result.
///
/// Errors: [`EditError::NotAResponse`]; [`EditError::Parse`] if the top or
/// the next Via value is malformed or there is no Via;
/// [`EditError::LastVia`] if no Via is left, i.e. the response is for this
/// element (§16.7 step 3).
pub fn forward_response(resp: &Message) -> Result<ForwardedResponse<'_>, EditError> {
    if resp.is_request() {
        return Err(EditError::NotAResponse);
    }
    let removed = resp.top_via()?;
    let next = resp.next_via().ok_or(EditError::LastVia)??;
    let (first, _) = resp
        .first_and_last(HeaderName::Via)
        .ok_or(super::ParseError::MissingHeader("Via"))?;
    let mut w = Rewriter::new(resp);
    w.remove(resp.first_value_range(first));
    Ok(ForwardedResponse {
        bytes: w.finish(resp.extent_range()),
        removed,
        next,
        dest: ResponseDest::from_via(&next),
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const TAIL: &str = "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n\
        Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn removes_a_whole_via_line() {
        let text = format!(
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKp1\r\n\
             v: SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff\r\n{TAIL}"
        );
        let m = msg(&text);
        let f = forward_response(&m).unwrap();
        assert_eq!(
            String::from_utf8(f.bytes).unwrap(),
            format!(
                "SIP/2.0 180 Ringing\r\n\
                 v: SIP/2.0/UDP 10.1.1.1:4540;received=192.0.2.1;rport=9988;branch=z9hG4bKkjshdyff\r\n{TAIL}"
            )
        );
        assert_eq!(f.removed.branch(), Some("z9hG4bKp1"));
        assert_eq!(f.next.branch(), Some("z9hG4bKkjshdyff"));
        assert_eq!(
            (f.dest.transport, f.dest.host, f.dest.port),
            ("UDP", "192.0.2.1", Some(9988))
        );
    }

    #[test]
    fn removes_the_first_of_several_values() {
        let text = format!(
            "\r\nSIP/2.0 200 OK\r\nVia: SIP/2.0/TCP p.example.com;branch=z9hG4bKp1 ,  \
             SIP/2.0/WS df7jal23ls0d.invalid;rport=61234;received=198.51.100.9;branch=z9hG4bK2\r\n{TAIL}junk"
        );
        let m = msg(&text);
        let f = forward_response(&m).unwrap();
        assert_eq!(
            String::from_utf8(f.bytes).unwrap(),
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;rport=61234;received=198.51.100.9;\
                 branch=z9hG4bK2\r\n{TAIL}"
            )
        );
        assert_eq!(
            f.dest.socket_addr(),
            Some("198.51.100.9:61234".parse().unwrap())
        );
        assert_eq!(f.dest.transport, "WS");
    }

    #[test]
    fn errors() {
        let one =
            format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p.example.com;branch=z9hG4bKp1\r\n{TAIL}");
        assert_eq!(forward_response(&msg(&one)), Err(EditError::LastVia));
        let none = format!("SIP/2.0 200 OK\r\n{TAIL}");
        assert_eq!(
            forward_response(&msg(&none)),
            Err(EditError::Parse(super::super::ParseError::MissingHeader(
                "Via"
            )))
        );
        let bad = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKp1, junk\r\n{TAIL}");
        assert!(matches!(
            forward_response(&msg(&bad)),
            Err(EditError::Parse(_))
        ));
        let req = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        assert_eq!(forward_response(&msg(req)), Err(EditError::NotAResponse));
    }
}
