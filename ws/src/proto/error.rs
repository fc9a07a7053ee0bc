//! Error types of the WebSocket protocol core.
//!
//! [`WsError`] is a failure of the data phase (RFC 6455 §5–§7): every variant maps
//! to the status code the endpoint puts in its Close frame before failing the
//! connection (RFC 6455 §7.1.7, §7.4.1). [`HandshakeError`] is a failure of the
//! opening handshake (RFC 6455 §4); the server side turns it into an HTTP reply.

/// A protocol violation found while decoding frames (RFC 6455 §5, §6, §7).
///
/// After any of these the connection must be failed (RFC 6455 §7.1.7): send a
/// Close frame carrying [`WsError::close_code`], then close the TCP connection.
/// The type is `Copy` and heap-free so it can be stored and returned cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// RSV1, RSV2 or RSV3 is set but no extension was negotiated (§5.2). Close 1002.
    #[error("reserved bits set in frame header (no extension negotiated)")]
    ReservedBits,
    /// Opcode 0x3-0x7 or 0xB-0xF (§5.2). Close 1002.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A control frame declared a payload longer than 125 bytes (§5.5). Close 1002.
    #[error("control frame payload longer than 125 bytes")]
    ControlFrameTooLong,
    /// A control frame had FIN=0; control frames must not be fragmented (§5.5). Close 1002.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame arrived while no fragmented message was started (§5.4). Close 1002.
    #[error("continuation frame without a started message")]
    UnexpectedContinuation,
    /// A new Text or Binary frame arrived inside a fragmented message (§5.4). Close 1002.
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A server received a frame without a mask (§5.1). Close 1002.
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A client received a masked frame (§5.1). Close 1002.
    #[error("server frame is masked")]
    MaskedFrame,
    /// The payload length was not encoded with the minimal number of bytes (§5.2). Close 1002.
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A 64-bit payload length had its most significant bit set (§5.2). Close 1002.
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A Close frame had a 1-byte payload; a body must start with a 2-byte code (§5.5.1). Close 1002.
    #[error("close frame payload of 1 byte")]
    CloseTooShort,
    /// A Close frame carried a status code that must not appear on the wire or is
    /// unassigned (§7.4.1, §7.4.2; see [`crate::proto::frame::is_valid_close_code`]). Close 1002.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A text message is not valid UTF-8 (§5.6, §8.1). Detected as soon as the
    /// offending byte arrives, or at the end of the final fragment for a truncated
    /// sequence. Close 1007.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The reason text of a Close frame is not valid UTF-8 (§5.5.1). Close 1007.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// The message would be larger than `Limits::max_msg_size` (§7.4.1: "too big
    /// to process"). Detected from the frame header before any payload is buffered.
    /// Close 1009.
    #[error("message of at least {size} bytes exceeds the limit of {max}")]
    MessageTooBig {
        /// Total size the message would reach (saturating), in bytes.
        size: u64,
        /// The configured limit, in bytes.
        max: usize,
    },
    /// A message used more data frames than `Limits::max_msg_frames` (policy). Close 1008.
    #[error("message uses more than {max} frames")]
    TooManyFrames {
        /// The configured limit.
        max: u32,
    },
    /// The message being received was not complete by its deadline
    /// (`WsConn::message_deadline`; reported by `WsConn::check_deadline`). Close 1008.
    #[error("message not complete within its time limit")]
    MessageTimeout,
}

impl WsError {
    /// The status code for the Close frame sent when failing the connection (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::ReservedBits
            | WsError::ReservedOpcode(_)
            | WsError::ControlFrameTooLong
            | WsError::FragmentedControlFrame
            | WsError::UnexpectedContinuation
            | WsError::ExpectedContinuation
            | WsError::UnmaskedFrame
            | WsError::MaskedFrame
            | WsError::NonMinimalLength
            | WsError::LengthOverflow
            | WsError::CloseTooShort
            | WsError::InvalidCloseCode(_) => 1002,
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => 1007,
            WsError::TooManyFrames { .. } | WsError::MessageTimeout => 1008,
            WsError::MessageTooBig { .. } => 1009,
        }
    }
}

/// Why an opening handshake failed (RFC 6455 §4.1 client side, §4.2 server side;
/// RFC 7118 §4.1 for the `sip` subprotocol).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The request or response head is longer than the configured maximum.
    #[error("handshake head longer than {max} bytes")]
    TooLarge {
        /// The configured maximum, in bytes.
        max: usize,
    },
    /// More header fields than the parser accepts.
    #[error("too many header fields")]
    TooManyHeaders,
    /// The HTTP head is malformed (httparse reported an error).
    #[error("malformed HTTP head: {0}")]
    Http(httparse::Error),
    /// The request method is not `GET` (§4.2.1 item 1). Carries the method.
    #[error("method {0:?} is not GET")]
    MethodNotAllowed(String),
    /// The HTTP version is lower than 1.1 (§4.2.1 item 1, §4.1).
    #[error("HTTP version lower than 1.1")]
    HttpVersion,
    /// A request body was announced (Content-Length other than 0 or Transfer-Encoding);
    /// the bytes after the head must be WebSocket frames.
    #[error("handshake request announces a body")]
    UnexpectedBody,
    /// The Request-URI is neither an absolute path nor an absolute http(s)/ws(s)
    /// URI (§4.2.1 item 1, §3).
    #[error("unusable Request-URI")]
    BadResource,
    /// `Host` is missing, empty or repeated (§4.2.1 item 2).
    #[error("missing, empty or repeated Host header")]
    MissingHost,
    /// `Upgrade` is missing or does not contain `websocket` (§4.2.1 item 3, §4.1 item 2).
    #[error("Upgrade header missing or without websocket")]
    BadUpgrade,
    /// `Connection` is missing or does not contain the `Upgrade` token (§4.2.1 item 4, §4.1 item 3).
    #[error("Connection header missing or without the upgrade token")]
    BadConnection,
    /// `Sec-WebSocket-Key` is missing, repeated, or not the base64 encoding of
    /// exactly 16 bytes (§4.2.1 item 5, §11.3.1).
    #[error("Sec-WebSocket-Key missing, repeated or not base64 of 16 bytes")]
    BadKey,
    /// `Sec-WebSocket-Version` is missing, repeated or not 13 (§4.2.1 item 6, §4.4).
    #[error("Sec-WebSocket-Version missing or not 13")]
    UnsupportedVersion,
    /// The client did not offer the `sip` subprotocol (RFC 7118 §4.1).
    #[error("subprotocol sip not offered")]
    MissingSubprotocol,
    /// `Origin` is required by configuration but absent (§4.2.1 item 7, §10.2).
    #[error("Origin header missing")]
    MissingOrigin,
    /// `Origin` is not in the allowed list (§4.2.2, §10.2). Carries the origin.
    #[error("origin {0:?} not allowed")]
    OriginNotAllowed(String),
    /// A header value the handshake depends on is not valid UTF-8 text.
    #[error("header {0} is not valid text")]
    BadHeaderValue(&'static str),
    /// Client side: the server answered with a status other than 101 (§4.1). Carries it.
    #[error("server answered with status {0} instead of 101")]
    BadStatus(u16),
    /// Client side: `Sec-WebSocket-Accept` is missing, repeated or not exactly the
    /// expected value (§4.1 item 4).
    #[error("Sec-WebSocket-Accept missing or wrong")]
    BadAccept,
    /// Client side: the server selected an extension we did not offer (§4.1 item 5).
    #[error("server selected an extension that was not offered")]
    UnexpectedExtension,
    /// Client side: the server selected no subprotocol, a different one, several,
    /// or one while none was offered (§4.1 item 6, RFC 7118 §4.1).
    #[error("server did not select the offered subprotocol")]
    SubprotocolMismatch,
}

impl From<httparse::Error> for HandshakeError {
    fn from(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
            other => HandshakeError::Http(other),
        }
    }
}
