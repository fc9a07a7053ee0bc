//! Management interface (MI): a registry of named commands answered over JSON-RPC 2.0, in the
//! manner of OpenSIPS's `mi_http` module (`POST /mi` with a JSON-RPC body), plus the client used
//! by `sipcore mi CMD ARGS`.
//!
//! * [`Registry`]: thread-safe command table (names, aliases such as `ws:trace` → `ws_trace`,
//!   help text); [`Registry::with_builtins`] adds `which`, `help`, `version` and `uptime`.
//!   A command with a large answer (`ul_dump`) registers a [`StreamHandler`]: its result is
//!   written to the client as it is produced, never held whole.
//! * [`Params`]: a command's arguments, positional (JSON array) or named (JSON object).
//! * [`MiError`]: typed failures, each mapped to a JSON-RPC 2.0 error code (§5.1).
//! * [`jsonrpc`]: the pure request → response step (batches, notifications), no I/O.
//! * [`http`]: the tiny blocking HTTP/1.1 server (std::net + threads).
//! * [`client`]: one JSON-RPC call over HTTP, for the command line.

mod builtins;
pub mod client;
mod conn;
mod error;
pub mod http;
pub mod jsonrpc;
mod params;
mod registry;
#[cfg(test)]
mod tests;

pub use builtins::{asctime_utc, uptime_value};
pub use error::MiError;
pub use params::{Key, Params};
pub use registry::{Handler, Outcome, Registry, StreamHandler, Writer};
