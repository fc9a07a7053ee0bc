//! SIP over WebSocket (RFC 6455, RFC 7118) for sipcore, as a server for browsers and softphones
//! and as a client for outbound connections, over TCP (`proto_ws`) or TLS (`proto_wss`); and
//! with the SIP stream framing of `sipcore_sip` (RFC 3261 §18.3) in place of WebSocket, SIP
//! over TCP (`proto_tcp`) and TLS (`proto_tls`) on the same driver.
//!
//! * [`proto`]: the WebSocket protocol itself, pure code over bytes (frames, handshake, UTF-8,
//!   per-connection receive state). No I/O.
//! * [`driver`]: the I/O workers (mio), timers and write queues that run it, with TLS as a
//!   stream under the same connections (`sipcore_tls`).
//! * [`plugin`]: the ABI glue; [`flavor`]: what differs between the four plugins (names, TLS,
//!   framing). The plugins themselves are thin `cdylib` crates: `proto_ws`, `proto_wss`,
//!   `proto_tcp`, `proto_tls`.
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
pub mod wallclock;

pub(crate) use plugin::runtime;
