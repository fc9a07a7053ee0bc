//! `sipcore`: a SIP server core in the style of OpenSIPS whose transports are plugins loaded at
//! startup through the stable ABI of `sipcore-abi`.
//!
//! * [`config`] and [`script`]: the OpenSIPS-style configuration file and its routing script.
//! * [`modules`]: the plugin loader (ABI version check).
//! * [`sockets`]: `socket=` lines turned into listeners.
//! * [`sip`]: the SIP message layer (RFC 3261), pure code over bytes.
//! * [`core`]: what happens to a delivered message.
//! * [`auth`]: digest authentication, pure (RFC 3261 §22, RFC 7616).
//! * [`db`]: the user database (auth_db's `subscriber`: SQLite), its lookup pool and `sipcore user`.
//! * [`dns`]: RFC 3263 server location off the I/O workers.
//! * [`mi`]: the management interface (JSON-RPC over HTTP) and its client.
//! * [`tm`]: the transaction layer (RFC 3261 §17, RFC 6026), pure state machines.
//! * [`pike`]: flood detection per source address (OpenSIPS pike), pure.
//! * [`log`]: the one slog drain that formats every record, the plugins' too.
//! * [`stats`]: statistics with OpenSIPS's names, MI `get_statistics` and Prometheus `/metrics`.
//! * [`app`]: startup and shutdown.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod builtin_modules;
pub mod config;
pub mod core;
pub mod db;
pub mod dns;
pub mod log;
pub mod mi;
pub mod modules;
pub mod pike;
pub mod script;
/// The SIP message layer, the `sipcore-sip` crate (shared with the stream transports).
pub use sipcore_sip as sip;
pub mod sockets;
pub mod stats;
pub mod tls_mgm;
pub mod tm;
pub mod usrloc;
