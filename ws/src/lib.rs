//! SIP over WebSocket (RFC 6455, RFC 7118) for sipcore, as a server for browsers and softphones
//! and as a client for outbound connections, over TCP (`proto_ws`) or TLS (`proto_wss`).
//!
//! * [`proto`]: the WebSocket protocol itself, pure code over bytes (frames, handshake, UTF-8,
//!   per-connection receive state). No I/O.
//! * [`driver`]: the I/O workers (mio), timers and write queues that run it, with TLS as a
//!   stream under the same connections (`sipcore_tls`).
//! * [`plugin`]: the ABI glue; [`flavor`]: what differs between the two plugins (names, TLS).
//!   The plugins themselves are two thin `cdylib` crates, `proto_ws` and `proto_wss`.
#![warn(missing_docs)]

pub mod driver;
mod fdlimit;
pub mod flavor;
mod mi;
mod params;
pub mod plugin;
pub mod proto;
mod stats;
mod trace;

pub(crate) use plugin::runtime;
