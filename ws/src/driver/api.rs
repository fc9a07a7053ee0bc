//! Public types of the driver: configuration, connection descriptions, the callback trait and
//! errors.

use std::net::SocketAddr;
use std::time::Duration;

use sipcore_abi::{LogLevel, ReceiveInfo};

use super::stream::{TlsHandle, TlsSummary};

/// Everything configurable. [`Default`] gives OpenSIPS's defaults (see `params.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// Number of I/O worker threads (at most 255). Default: available parallelism.
    pub workers: usize,
    /// Most data frames in one message (`ws_max_msg_chunks`; close 1008 above), and most
    /// reads of an incomplete opening handshake (400 above). 0 = unlimited. Default 4.
    pub max_msg_chunks: u32,
    /// How long a connection with queued data may make no write progress before it is dropped.
    /// Default 100 ms.
    pub send_timeout: Duration,
    /// Request-URI path of outbound handshakes (inbound: any resource is accepted). Default `/`.
    pub resource: String,
    /// Refuse inbound handshakes without `Origin` (RFC 6455 §4.2.1 item 7). Default true.
    pub require_origin: bool,
    /// Allowed origins of inbound handshakes; empty = any.
    pub allowed_origins: Vec<String>,
    /// Require the `sip` subprotocol on inbound handshakes (RFC 7118 §4.1). Default true.
    pub require_sip: bool,
    /// Deadline for the server's 101 on outbound connections (with `client_tls`, also the
    /// deadline of the TLS handshake before it, from TCP connect). Default 100 ms.
    pub handshake_timeout: Duration,
    /// Deadline for a client to complete its opening handshake. Default 5 s.
    pub inbound_handshake_timeout: Duration,
    /// Largest message accepted, in bytes (close 1009 above). Default 65535.
    pub max_msg_size: usize,
    /// Deadline for completing one (fragmented) message, from its first byte; zero = none.
    /// Default 10 s.
    pub max_msg_time: Duration,
    /// Idle lifetime: no data message either way for this long -> Close 1001; zero = none.
    /// Default 120 s.
    pub lifetime: Duration,
    /// Send a Ping after this long without receiving anything; `None` (default) = never.
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for the Pong before dropping the connection. Default 10 s.
    pub keepalive_timeout: Duration,
    /// Most simultaneous connections (inbound and outbound), all workers together; an inbound
    /// one above it is answered 503 with `Retry-After`. Default 2048.
    pub max_connections: usize,
    /// Most bytes queued for writing per connection; a send beyond fails and closes it.
    /// Default 262144.
    pub max_write_queue: usize,
    /// Most bytes queued for writing over all the connections of one I/O worker (memory it
    /// may hold for slow readers). From 3/4 of it new handshakes on that worker get 503 with
    /// `Retry-After`; beyond it the connection with the largest queue is shed: its queued
    /// frames are dropped and it gets Close 1013 (Try Again Later). Default 64 MiB.
    pub max_worker_queue: usize,
    /// Deadline of an outbound TCP connect. Default 100 ms.
    pub connect_timeout: Duration,
    /// `Origin` sent on outbound handshakes; `None` (default) = no header.
    pub client_origin: Option<String>,
    /// Most simultaneous inbound connections from one IP address; 0 = no limit. Default 128.
    /// Above it, and above `max_connections`, the handshake is answered 503 with `Retry-After`.
    pub max_connections_per_ip: usize,
    /// Most refused connections being answered (503) at once, all workers; beyond, a refused
    /// connection is closed without an answer. Default 64.
    pub refuse_pool: usize,
    /// How long a refused connection may take to read its 503 and close. Default 1 s.
    pub refuse_deadline: Duration,
    /// Deadline for a client of a TLS listener to complete its TLS handshake (RFC 8446 §4),
    /// from accept; the WebSocket handshake then has `inbound_handshake_timeout`. Default 5 s.
    pub tls_handshake_timeout: Duration,
    /// TLS for every outbound connection (`wss`): SNI, server certificate and host name
    /// checked as the client domain chosen for the destination says. `None` (default): plain.
    pub client_tls: Option<TlsHandle>,
    /// SIP messages framed on the byte stream (RFC 3261 §18.3: `proto_tcp`, `proto_tls`)
    /// instead of WebSocket: no opening handshake, no frames; `max_msg_size` bounds a
    /// message, `max_msg_chunks` the reads of one, `max_msg_time` its arrival. Default off.
    pub sip_stream: bool,
    /// With `sip_stream`: answer a CRLF CRLF ping with a CRLF pong (RFC 5626 §4.4.1;
    /// OpenSIPS `tcp_crlf_pingpong`). Default on.
    pub crlf_pingpong: bool,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_msg_chunks: 4,
            send_timeout: Duration::from_millis(100),
            resource: "/".to_string(),
            require_origin: true,
            allowed_origins: Vec::new(),
            require_sip: true,
            handshake_timeout: Duration::from_millis(100),
            inbound_handshake_timeout: Duration::from_secs(5),
            max_msg_size: 65535,
            max_msg_time: Duration::from_secs(10),
            lifetime: Duration::from_secs(120),
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(10),
            max_connections: 2048,
            max_write_queue: 262_144,
            max_worker_queue: 64 << 20,
            connect_timeout: Duration::from_millis(100),
            client_origin: None,
            max_connections_per_ip: 128,
            refuse_pool: 64,
            refuse_deadline: Duration::from_secs(1),
            tls_handshake_timeout: Duration::from_secs(5),
            client_tls: None,
            sip_stream: false,
            crlf_pingpong: true,
        }
    }
}

/// Identity of one connection, handed to [`Sink`] callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnMeta {
    /// Connection id (non-zero, never reused).
    pub id: u64,
    /// The listener it was accepted on, or `sipcore_abi::NO_LISTENER` for outbound.
    pub listener: u32,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub peer: SocketAddr,
    /// True when we opened it.
    pub outbound: bool,
}

/// One line of [`crate::driver::Runtime::connections`] (MI `ws_list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSummary {
    /// Connection id.
    pub id: u64,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// Time since accept / connect.
    pub age: Duration,
    /// True when we opened it.
    pub outbound: bool,
    /// True when it is traced ([`Sink::opened`] returned true).
    pub traced: bool,
    /// `connecting`, `tls handshake`, `handshake`, `open`, `closing`.
    pub state: &'static str,
    /// What TLS negotiated, for a TLS connection whose TLS handshake completed.
    pub tls: Option<TlsSummary>,
}

/// Something that happened on a traced connection (HEP tracing). Everything is borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceEvent<'a> {
    /// TCP accepted / connected.
    Opened,
    /// The full HTTP handshake request (RFC 6455 §4.1), also when it is refused.
    HandshakeRequest(&'a [u8]),
    /// The full HTTP handshake reply (RFC 6455 §4.2.2), also when it refuses.
    HandshakeReply(&'a [u8]),
    /// The handshake failed with this HTTP status (0 when no reply was involved).
    HandshakeFailed {
        /// HTTP status.
        status: u16,
        /// Why.
        reason: &'a str,
    },
    /// A data message (SIP), either direction.
    Message {
        /// True when received.
        inbound: bool,
        /// The payload.
        payload: &'a [u8],
        /// When it was read (the worker's turn) or queued to be sent: the HEP timestamp,
        /// converted to wall-clock time by the tracer without a clock read per message.
        at: std::time::Instant,
    },
    /// A protocol error or limit violation failed the connection (RFC 6455 §7.1.7).
    ProtocolError {
        /// The Close code we sent.
        close_code: u16,
        /// Why.
        reason: &'a str,
    },
    /// The connection is gone.
    Closed {
        /// The Close code involved, if any.
        code: Option<u16>,
        /// Why.
        reason: &'a str,
    },
}

/// What the driver calls back into. All methods run on worker threads.
pub trait Sink: Send + Sync + 'static {
    /// A complete data message arrived (RFC 7118 §5: one SIP message per WebSocket message).
    fn deliver(&self, info: &ReceiveInfo, payload: &[u8], text: bool);
    /// A log record; `kv` carries structured fields such as `peer`.
    fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]);
    /// Called once per connection on accept/connect, on the worker thread; return true to trace it.
    fn opened(&self, _c: &ConnMeta) -> bool {
        false
    }
    /// Only for connections where [`Sink::opened`] returned true.
    fn trace(&self, _c: &ConnMeta, _ev: TraceEvent<'_>) {}
    /// Every connection, once, when it is gone (registrar drops its contacts).
    fn closed(&self, _c: &ConnMeta, _reason: &str) {}
}

/// Why the driver could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A listener socket could not be created, bound or put in listening state.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another socket already listens on the address (a second sipcore?). Sharing a port
    /// between processes needs `reuse_port` on the socket line of every one of them.
    #[error(
        "cannot listen on {addr}: address already in use (another process listens on it; \
         add `reuse_port` to the socket line of every process meant to share it)"
    )]
    AddrInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// A worker thread or its poller could not be created.
    #[error("cannot start worker: {0}")]
    Spawn(std::io::Error),
    /// `start` was called twice, or `add_listener` after `start`.
    #[error("the runtime is already started")]
    AlreadyStarted,
    /// `start` after `stop`.
    #[error("the runtime is stopped")]
    Stopped,
    /// The configuration cannot be used (e.g. 0 or more than 255 workers).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}
