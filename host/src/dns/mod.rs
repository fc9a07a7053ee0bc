//! Server location for outgoing requests (RFC 3263 §4; RFC 7118 §7 for `ws`/`wss`) without
//! blocking an I/O worker.
//!
//! * [`select`]: the RFC 3263 procedure (NAPTR → SRV → A/AAAA), pure, over a record source.
//! * [`cache`]: answers with their TTLs, negative answers included (RFC 2308), bounded.
//! * [`wire`]: queries and answers on the wire, through `hickory-proto`.
//! * [`resolver`]: the driver, a few threads with a bounded queue and a deadline per lookup;
//!   `net`, the UDP/TCP exchanges they make.
//! * [`sysconf`]: the `dns_*` parameters, `/etc/resolv.conf` and `/etc/hosts`.
//!
//! An I/O worker calls [`Resolver::resolve_now`]: IP literals, `/etc/hosts` and cached answers
//! resolve at once; otherwise it hands the request to [`Resolver::submit`] and goes on.
pub mod cache;
pub mod error;
mod net;
pub mod records;
pub mod resolver;
mod rng;
pub mod select;
pub mod sysconf;
pub mod wire;

pub use error::DnsError;
pub use resolver::{get, init, Done, Resolver};
pub use select::{Ctx, Request, Target};
pub use sysconf::Config;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_wire;
