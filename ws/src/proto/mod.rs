//! The WebSocket protocol core of `proto_ws`: pure code over bytes, no I/O, no clock
//! (time is passed in). RFC 6455 with the RFC 7118 (SIP over WebSocket) handshake rules.
//!
//! * [`frame`]: frame header codec and Close payloads (RFC 6455 §5.2, §5.5.1, §7.4).
//! * [`mask`]: payload masking (§5.3).
//! * [`utf8`]: incremental UTF-8 validation for text messages (§5.6, §8.1).
//! * [`handshake`]: opening handshake, server and client (§4; RFC 7118 §4.1).
//! * [`conn`]: per-connection receive state machine (§5, §6.2, §7).
//! * [`error`]: error types with their Close codes / HTTP statuses.
//!
//! No extension is ever negotiated, so the RSV bits must always be zero.

pub mod conn;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use conn::{Event, Limits, Role, WsConn};
pub use error::{HandshakeError, WsError};
