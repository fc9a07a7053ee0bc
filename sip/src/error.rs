//! Errors of the SIP message layer.

use thiserror::Error;

/// Why a SIP message, or one of its header fields, could not be parsed.
///
/// Framing and start-line errors come from [`Message::parse`](super::Message::parse);
/// the others come from the lazy accessors that parse one header field body on
/// demand, and from [`Message::validate_for_proxy`](super::Message::validate_for_proxy).
/// [`ParseError::reply_code`] gives the status code a server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The buffer is empty or holds only CR/LF (a keep-alive, RFC 5626 §3.5.1).
    #[error("empty message")]
    Empty,
    /// The buffer is longer than `u32::MAX` bytes.
    #[error("message too large")]
    TooLarge,
    /// No empty line ends the header section (RFC 3261 §7: CRLF after the headers).
    #[error("header section not terminated by an empty line")]
    Incomplete,
    /// The start line or header section is not valid UTF-8 (RFC 3261 §7.3.1, TEXT-UTF8).
    #[error("header section is not valid UTF-8")]
    InvalidUtf8,
    /// The Request-Line (RFC 3261 §7.1) or Status-Line (§7.2) is malformed.
    #[error("malformed start line: {0}")]
    BadStartLine(&'static str),
    /// The start line or one header field (with its continuation lines) exceeds
    /// [`MAX_LINE_LEN`](super::MAX_LINE_LEN).
    #[error("line too long")]
    LineTooLong,
    /// More than [`MAX_HEADERS`](super::MAX_HEADERS) header fields.
    #[error("too many header fields")]
    TooManyHeaders,
    /// A header line has no colon or its name is not a token (RFC 3261 §7.3.1).
    #[error("malformed header line")]
    BadHeaderLine,
    /// A continuation line (starting with SP/HT) directly follows the start line.
    #[error("continuation line without a header field")]
    UnexpectedContinuation,
    /// Content-Length is not `1*DIGIT` (RFC 3261 §20.14; RFC 4475 §3.1.2.3).
    #[error("malformed Content-Length")]
    BadContentLength,
    /// Content-Length announces more octets than the datagram or WebSocket message
    /// holds (RFC 3261 §18.3; RFC 4475 §3.1.2.2).
    #[error("Content-Length {declared} exceeds the {available} octets present")]
    ContentLengthTooLarge {
        /// The value announced by the header (saturated at `u64::MAX`).
        declared: u64,
        /// The number of octets after the header section.
        available: usize,
    },
    /// Content-Length appears more than once, so the framing is ambiguous
    /// (RFC 4475 §3.3.9).
    #[error("more than one Content-Length")]
    DuplicateContentLength,
    /// A header field the operation needs is absent (RFC 3261 §8.1.1).
    #[error("missing {0} header field")]
    MissingHeader(&'static str),
    /// A header field allowed once appears more than once (RFC 4475 §3.3.8).
    #[error("more than one {0} header field")]
    DuplicateHeader(&'static str),
    /// A URI is malformed (RFC 3261 §19.1, §25.1).
    #[error("malformed URI: {0}")]
    BadUri(&'static str),
    /// A name-addr or addr-spec is malformed (RFC 3261 §20.10, §25.1).
    #[error("malformed address: {0}")]
    BadNameAddr(&'static str),
    /// A Via value is malformed (RFC 3261 §20.42).
    #[error("malformed Via: {0}")]
    BadVia(&'static str),
    /// A `;name=value` parameter list is malformed (RFC 3261 §25.1 generic-param).
    #[error("malformed parameter list")]
    BadParams,
    /// A quoted string is unterminated or ends in a lone backslash (RFC 3261 §25.1).
    #[error("malformed quoted string")]
    BadQuotedString,
    /// CSeq is malformed or its number exceeds 2^32-1 (RFC 3261 §20.16).
    #[error("malformed CSeq: {0}")]
    BadCSeq(&'static str),
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5;
    /// RFC 4475 §3.1.2.17).
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// Max-Forwards is not `1*DIGIT` in 0..=255 (RFC 3261 §20.22).
    #[error("malformed Max-Forwards")]
    BadMaxForwards,
    /// Expires is not `1*DIGIT` within 2^32-1 (RFC 3261 §20.19).
    #[error("malformed Expires")]
    BadExpires,
    /// Call-ID is empty or contains white space or control characters (RFC 3261 §20.8).
    #[error("malformed Call-ID")]
    BadCallId,
    /// Date is not an RFC 1123 date in GMT (RFC 3261 §20.17; RFC 4475 §3.1.2.12).
    #[error("malformed Date")]
    BadDate,
    /// The SIP-Version is not SIP/2.0 (RFC 3261 §7.1; answer 505, §21.5.7).
    #[error("unsupported SIP version")]
    UnsupportedVersion,
    /// The top Via branch is the bare magic cookie `z9hG4bK` (RFC 4475 §3.2.1).
    #[error("Via branch is only the magic cookie")]
    EmptyBranch,
    /// A request-only accessor was called on a response.
    #[error("not a request")]
    NotARequest,
}

impl ParseError {
    /// The status code a server answers a request failing with this error:
    /// 505 for [`ParseError::UnsupportedVersion`] (RFC 3261 §21.5.7), else 400
    /// (§21.4.1).
    pub fn reply_code(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion => 505,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ParseError;

    #[test]
    fn reply_codes() {
        assert_eq!(ParseError::UnsupportedVersion.reply_code(), 505);
        assert_eq!(ParseError::BadCSeq("x").reply_code(), 400);
        assert_eq!(
            ParseError::ContentLengthTooLarge {
                declared: 9999,
                available: 150
            }
            .to_string(),
            "Content-Length 9999 exceeds the 150 octets present"
        );
    }
}
