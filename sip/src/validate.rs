//! Eager checks of what a proxy relies on, so that a broken request can be
//! answered with 400 (or 505) before it is routed (RFC 3261 §16.3, §8.2).

use super::error::ParseError;
use super::headers::HeaderName;
use super::message::Message;
use super::uri::Scheme;
use super::via::{Via, BRANCH_MAGIC_COOKIE};

impl Message {
    fn count(&self, id: HeaderName) -> usize {
        match (self.has(id), self.repeats(id)) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => self.headers.iter().filter(|h| h.id == id).count(),
        }
    }

    /// Errors unless exactly one `id` header is present.
    fn exactly_one(&self, id: HeaderName) -> Result<(), ParseError> {
        match self.count(id) {
            0 => Err(ParseError::MissingHeader(id.as_str())),
            1 => Ok(()),
            _ => Err(ParseError::DuplicateHeader(id.as_str())),
        }
    }

    /// Checks, in this order, everything a proxy uses to route and to answer:
    ///
    /// 1. SIP-Version is `SIP/2.0` ([`ParseError::UnsupportedVersion`], answer 505);
    /// 2. the Request-URI parses, and a SIP/SIPS one has no `?headers` (§19.1.1);
    /// 3. at least one Via, every Via value parses, and the top branch is not the
    ///    bare magic cookie;
    /// 4. exactly one From, To, Call-ID and CSeq, each well formed; the CSeq
    ///    method equals the request method (§8.1.1.5);
    /// 5. Max-Forwards, if present, is 0..=255;
    /// 6. Date, if present, is an RFC 1123 GMT date (RFC 4475 §3.1.2.12);
    /// 7. every Contact, Route and Record-Route value parses.
    ///
    /// The start line and Content-Length were already checked by
    /// [`Message::parse`]. Unknown URI schemes are accepted (the application
    /// answers 416), as are Expires and unknown headers (not relied on).
    ///
    /// RFC 4475 messages rejected here: badinv01 (Via `;;`), scalar02 and
    /// scalarlg (CSeq > 2^32-1), quotbal (To), escruri (R-URI headers),
    /// regbadct (Contact), badaspec (To), baddn (From), badvers (505),
    /// mismatch01 and mismatch02 (CSeq method), badbranch (branch), insuf
    /// (no From), multi01 (two From), baddate (Date not in GMT). Rejected earlier by `parse`: clerr, ncl,
    /// mcl01, ltgtruri, lwsruri, lwsstart, trws, bigcode.
    pub fn validate_for_proxy(&self) -> Result<(), ParseError> {
        if !self.version().eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::UnsupportedVersion);
        }
        if self.is_request() {
            let uri = self.request_uri()?;
            if matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) && uri.headers().is_some() {
                return Err(ParseError::BadUri("headers not allowed in Request-URI"));
            }
        }
        // The top Via, From and To are parsed through the message's cache: whatever reads
        // them next (has_totag, the stateless To tag, the reply) does not parse them again.
        if self.top_branch()? == Some(BRANCH_MAGIC_COOKIE) {
            return Err(ParseError::EmptyBranch);
        }
        if self.may_have_more_vias() {
            for v in self.vias().skip(1) {
                Via::parse(v)?;
            }
        }
        self.exactly_one(HeaderName::From)?;
        self.from_tag_param()?;
        self.exactly_one(HeaderName::To)?;
        self.to_tag_param()?;
        self.exactly_one(HeaderName::CallId)?;
        let call_id = self.call_id().unwrap_or("");
        if call_id.is_empty() || !call_id.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
            return Err(ParseError::BadCallId);
        }
        self.exactly_one(HeaderName::CSeq)?;
        let cseq = self.cseq()?;
        if self.method_str().is_some_and(|m| m != cseq.method) {
            return Err(ParseError::CSeqMethodMismatch);
        }
        self.max_forwards()?;
        self.date()?;
        for c in self.contacts() {
            c?;
        }
        self.set_contacts_checked();
        for r in self.routes().chain(self.record_routes()) {
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const GOOD: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/WS a.invalid;branch=z9hG4bKa, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKb\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:alice@example.com>;tag=1\r\n\
        To: <sip:bob@example.com>\r\n\
        Call-ID: abc@host\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:alice@a.invalid;transport=ws>\r\n\
        Route: <sip:proxy.example.com;lr>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn accepts_a_good_request() {
        assert_eq!(msg(GOOD).validate_for_proxy(), Ok(()));
    }

    #[test]
    fn each_check_fires() {
        let cases = [
            (
                "SIP/2.0\r\nVia",
                "SIP/3.0\r\nVia",
                ParseError::UnsupportedVersion,
            ),
            (
                "sip:bob@example.com",
                "sip:bob@example.com?X=1",
                ParseError::BadUri("headers not allowed in Request-URI"),
            ),
            (
                "sip:bob@example.com SIP",
                "sip:bob@ SIP",
                ParseError::BadUri("missing host"),
            ),
            (
                "branch=z9hG4bKa,",
                "branch=z9hG4bK,",
                ParseError::EmptyBranch,
            ),
            (
                "branch=z9hG4bKb\r\n",
                "branch=z9hG4bKb,\r\n",
                ParseError::BadVia("missing protocol name"),
            ),
            (
                "From: <sip:alice@example.com>;tag=1\r\n",
                "",
                ParseError::MissingHeader("From"),
            ),
            (
                "To: <sip:bob@example.com>\r\n",
                "To: <sip:bob@example.com>\r\nt: <sip:x@y>\r\n",
                ParseError::DuplicateHeader("To"),
            ),
            (
                "To: <sip:bob@example.com>",
                "To: \"bob <sip:bob@example.com>",
                ParseError::BadQuotedString,
            ),
            (
                "Call-ID: abc@host",
                "Call-ID: abc @host",
                ParseError::BadCallId,
            ),
            (
                "Call-ID: abc@host\r\n",
                "",
                ParseError::MissingHeader("Call-ID"),
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: 1 ACK",
                ParseError::CSeqMethodMismatch,
            ),
            (
                "CSeq: 1 INVITE",
                "CSeq: 99999999999 INVITE",
                ParseError::BadCSeq("number out of range"),
            ),
            (
                "Max-Forwards: 70",
                "Max-Forwards: 256",
                ParseError::BadMaxForwards,
            ),
            (
                "Max-Forwards: 70",
                "Date: Fri, 01 Jan 2010 16:00:00 EST",
                ParseError::BadDate,
            ),
            (
                "Contact: <sip:alice@a.invalid;transport=ws>",
                "Contact: sip:a@b?x=y",
                ParseError::BadNameAddr("addr-spec with ? or , needs <>"),
            ),
            (
                "Route: <sip:proxy.example.com;lr>",
                "Route: <sip:proxy.example.com;lr",
                ParseError::BadNameAddr("missing >"),
            ),
        ];
        for (from, to, err) in cases {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from:?}");
            assert_eq!(msg(&text).validate_for_proxy(), Err(err), "{to:?}");
        }
        let novia = GOOD.replace(
            "Via: SIP/2.0/WS a.invalid;branch=z9hG4bKa, SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKb\r\n",
            "",
        );
        assert_eq!(
            msg(&novia).validate_for_proxy(),
            Err(ParseError::MissingHeader("Via"))
        );
    }

    #[test]
    fn responses_skip_request_checks() {
        let r = msg(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKa\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 5 BYE\r\n\r\n",
        );
        assert_eq!(r.validate_for_proxy(), Ok(()));
    }
}
