//! Plain data passed across the ABI. Integer newtypes with associated constants stand in for
//! enums so that a later minor version can add values without breaking older plugins.
use abi_stable::{
    std_types::{RStr, RString},
    StableAbi,
};

/// A SIP transport protocol, numbered as OpenSIPS's `enum sip_protos`.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proto(pub u8);

impl Proto {
    /// No protocol.
    pub const NONE: Proto = Proto(0);
    /// UDP (RFC 3261 §18).
    pub const UDP: Proto = Proto(1);
    /// TCP (RFC 3261 §18).
    pub const TCP: Proto = Proto(2);
    /// TLS (RFC 3261 §26).
    pub const TLS: Proto = Proto(3);
    /// SCTP (RFC 4168).
    pub const SCTP: Proto = Proto(4);
    /// WebSocket (RFC 7118).
    pub const WS: Proto = Proto(5);
    /// Secure WebSocket (RFC 7118).
    pub const WSS: Proto = Proto(6);

    const NAMES: [(Proto, &'static str); 6] = [
        (Proto::UDP, "udp"),
        (Proto::TCP, "tcp"),
        (Proto::TLS, "tls"),
        (Proto::SCTP, "sctp"),
        (Proto::WS, "ws"),
        (Proto::WSS, "wss"),
    ];

    /// Lower-case name as in `socket=` lines and `$proto`.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("none", |(_, n)| n)
    }

    /// Parse a protocol name, case-insensitively.
    pub fn from_name(s: &str) -> Option<Proto> {
        Self::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(p, _)| *p)
    }

    /// Upper-case token used in a Via header's sent-protocol (RFC 3261 §20.42, RFC 7118 §5).
    pub fn via_token(self) -> &'static str {
        match self {
            Proto::UDP => "UDP",
            Proto::TCP => "TCP",
            Proto::TLS => "TLS",
            Proto::SCTP => "SCTP",
            Proto::WS => "WS",
            Proto::WSS => "WSS",
            _ => "UNKNOWN",
        }
    }
}

/// One protocol served by a transport module.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ProtoSpec {
    /// Its number.
    pub proto: Proto,
    /// Its name, as written in `socket=` lines.
    pub name: RStr<'static>,
}

/// An IPv4 or IPv6 address and port, C layout.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockAddr {
    /// 4, 6, or 0 for "none".
    pub family: u8,
    /// Port, host order.
    pub port: u16,
    /// Address bytes: the first 4 for IPv4, all 16 for IPv6.
    pub ip: [u8; 16],
}

/// The type of a module parameter.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamKind(pub u8);

impl ParamKind {
    /// An integer (`modparam("m", "p", 5)`).
    pub const INT: ParamKind = ParamKind(1);
    /// A string (`modparam("m", "p", "text")`).
    pub const STR: ParamKind = ParamKind(2);
}

/// A parameter a module declares (OpenSIPS `param_export_t`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ParamSpec {
    /// Its name.
    pub name: RStr<'static>,
    /// Its type.
    pub kind: ParamKind,
    /// May it be given several times (e.g. `hep_id`)?
    pub multi: bool,
    /// Default value as text, for documentation and `modparam` error messages.
    pub default: RStr<'static>,
    /// One-line description.
    pub doc: RStr<'static>,
}

/// One `modparam` value handed to a module at `init`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ParamEntry<'a> {
    /// Parameter name.
    pub name: RStr<'a>,
    /// [`ParamKind::INT`] or [`ParamKind::STR`].
    pub kind: ParamKind,
    /// The value when `kind` is INT.
    pub int: i64,
    /// The value when `kind` is STR.
    pub str: RStr<'a>,
}

/// A listening socket from a `socket=` line (after the host resolved names and defaults).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ListenerSpec<'a> {
    /// Index of this socket in the host's socket list; echoed in [`ReceiveInfo::listener`].
    pub id: u32,
    /// Protocol.
    pub proto: Proto,
    /// Address and port to bind.
    pub addr: SockAddr,
    /// Advertised `host[:port]` (`as ...`), empty when none.
    pub advertised: RStr<'a>,
    /// `use_workers N`, 0 = the module's default.
    pub workers: u32,
    /// `tag NAME`, empty when none.
    pub tag: RStr<'a>,
    /// `reuse_port` was given.
    pub reuse_port: bool,
}

/// Where a message came from (OpenSIPS `struct receive_info`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ReceiveInfo {
    /// Protocol.
    pub proto: Proto,
    /// The peer.
    pub src: SockAddr,
    /// Our local address.
    pub dst: SockAddr,
    /// Connection id (0 for connectionless transports).
    pub conn_id: u64,
    /// The listener's [`ListenerSpec::id`], or [`NO_LISTENER`] for an outbound connection.
    pub listener: u32,
}

/// "No listener" value of [`ReceiveInfo::listener`] and [`SendTarget::listener`].
pub const NO_LISTENER: u32 = u32::MAX;

/// Where to send a message (OpenSIPS `struct dest_info`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct SendTarget {
    /// Protocol.
    pub proto: Proto,
    /// Connection to use; 0 = find or open one to `dst`.
    pub conn_id: u64,
    /// Destination address (used when `conn_id` is 0 or no longer open).
    pub dst: SockAddr,
    /// Listener to send from, or [`NO_LISTENER`].
    pub listener: u32,
}

/// Why a send failed.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError(pub u8);

impl SendError {
    /// No such connection, and no address to open one to.
    pub const NO_CONNECTION: SendError = SendError(1);
    /// The connection's write queue is full; the connection is being closed.
    pub const QUEUE_FULL: SendError = SendError(2);
    /// The connection is closing or closed.
    pub const CLOSED: SendError = SendError(3);
    /// The transport cannot send this (e.g. unknown protocol or address family).
    pub const UNSUPPORTED: SendError = SendError(4);
    /// The transport is not started or failed internally.
    pub const INTERNAL: SendError = SendError(5);
    /// The message is larger than the transport allows.
    pub const TOO_LARGE: SendError = SendError(6);

    /// Human-readable text.
    pub fn as_str(self) -> &'static str {
        match self {
            SendError::NO_CONNECTION => "no connection",
            SendError::QUEUE_FULL => "write queue full",
            SendError::CLOSED => "connection closed",
            SendError::UNSUPPORTED => "unsupported destination",
            SendError::INTERNAL => "transport not running",
            SendError::TOO_LARGE => "message too large",
            _ => "unknown send error",
        }
    }
}

/// Severity of a log record.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogLevel(pub u8);

impl LogLevel {
    /// Critical: the process cannot go on as configured.
    pub const CRIT: LogLevel = LogLevel(1);
    /// Error.
    pub const ERR: LogLevel = LogLevel(2);
    /// Warning.
    pub const WARN: LogLevel = LogLevel(3);
    /// Notice / informational.
    pub const INFO: LogLevel = LogLevel(4);
    /// Debug.
    pub const DBG: LogLevel = LogLevel(5);
    /// Very verbose.
    pub const TRACE: LogLevel = LogLevel(6);
}

/// One structured key/value of a log record.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct LogKv<'a> {
    /// Key.
    pub key: RStr<'a>,
    /// Value as text.
    pub value: RStr<'a>,
}

/// One `name = value` configuration setting (e.g. a `modparam("tls_mgm", ...)` line).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct Setting<'a> {
    /// The parameter name.
    pub name: RStr<'a>,
    /// The value as written.
    pub value: RStr<'a>,
}

/// Convenience for plugins building an error result.
pub fn rerr<T>(msg: impl Into<String>) -> abi_stable::std_types::RResult<T, RString> {
    abi_stable::std_types::RErr(RString::from(msg.into()))
}
