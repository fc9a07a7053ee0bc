//! TLS for sipcore's transports (proto_wss now, proto_tls later), independent of WebSocket and
//! of the plugin ABI.
//!
//! - [`config`]: OpenSIPS tls_mgm's parameters (`server_domain`, `[dom]certificate`, ...)
//!   parsed into TLS domains; pure.
//! - [`select`]: which domain serves a connection (local socket and SNI, or destination and
//!   host name); pure.
//! - [`context`]: an OpenSSL context per domain, Mozilla "intermediate" defaults.
//! - [`manager`]: the current context set and its hot reload.
//! - [`session`]: a non-blocking TLS session over any `Read + Write` stream.

#![warn(missing_docs)]

pub mod config;
pub mod context;
pub mod filter;
pub mod load;
pub mod manager;
pub mod method;
pub mod select;
pub mod session;

pub use config::{ConfigError, ConfigWarning, DomainConfig, Side, TlsConfig, DEFAULT_DOMAIN};
pub use context::TlsContexts;
pub use load::LoadError;
pub use manager::TlsManager;
pub use method::{MethodError, TlsMethod, TlsVersion};
pub use session::{Io, PeerCert, Progress, SessionError, SessionInfo, TlsSession};
