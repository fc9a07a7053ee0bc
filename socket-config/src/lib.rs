//! The OpenSIPS 3.x/4.x `socket=` grammar (`listen=` in 3.x), as pure code: no I/O, no DNS.
//!
//! ```text
//! value   = ws* ( socket | bond ) ws*
//! socket  = proto ":" host [ ":" ports ] ( ws+ param )*
//! proto   = udp | tcp | tls | sctp | ws | wss | ipsec | bin | bins | hep_udp | hep_tcp
//!         | hep_tls | smpp | msrp | msrps                     (ASCII case-insensitive)
//! host    = IPv4 | "[" IPv6 "]" | bare-IPv6 | DQUOTE (IPv4 | IPv6 | name) DQUOTE | "*" | name
//! name    = RFC 1123 §2.1 host name ("_" also allowed); also interface names (eth0, lo)
//! ports   = "any" | port-elem ( "," port-elem )*
//! port-elem = port [ "-" port ]                  port = 1..65535, decimal, no leading zero
//! param   = "as" ws+ host [ ":" ports ]          (not "*"; ports count = the socket's)
//!         | ("use_workers" | "use_children") ws+ N     (N >= 1)
//!         | "tos" ws+ (N | 0xHH | IPTOS_name)      (0..255)
//!         | "tag" ws+ value | "use_auto_scaling_profile" ws+ value
//!         | "anycast" | "frag" | "reuse_port" | "accept_subdomain"
//!         | ["allow" sep] "proxy" [sep "protocol"] | "send" sep "proxy" [sep "protocol"]
//! sep     = "_" | "-"
//! value   = [A-Za-z0-9_.-]+ (not a keyword) | DQUOTE chars DQUOTE
//! bond    = "bond:" NAME ws* "{" ws* member ( ws* "," ws* member )* ws* "}"
//! member  = DQUOTE socket DQUOTE
//! ```
//!
//! Decisions where OpenSIPS is loose or ambiguous:
//! * A bare (unbracketed) IPv6 address is accepted only without a port and only when it cannot
//!   also be read as `address:port` (OpenSIPS' greedy lexer silently takes
//!   `udp:2001:db8::1:5060` as the address `2001:db8::1:5060`; here that is
//!   [`SocketErrorKind::Ipv6NeedsBrackets`]). So `udp:::1` and `udp:2001:db8::1` are accepted,
//!   `udp:fe80::1:2` is not. With a port, brackets are required.
//! * Ports are decimal only: a leading zero is refused (OpenSIPS would read `05060` as octal).
//! * A port list may contain ranges (expanded); a port listed twice is an error.
//! * `as` with ports must have as many ports as the socket (a single advertised port for a
//!   range is refused); `as` without a port advertises the real port of every socket.
//! * Keywords are reserved as bare `tag`/profile/`as` values: `tag anycast` is a missing value;
//!   write `tag "anycast"`.
//! * `proxy_protocol` / `proxy` alone mean `allow_proxy_protocol` (accept inbound PROXY headers).
//!
//! Every error carries the 1-based character column where the offending token starts, counted
//! from the start of the value passed to [`parse`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cursor;
mod display;
mod error;
mod host;
mod params;
mod parser;
mod types;

pub use error::{SocketError, SocketErrorKind};
pub use parser::parse;
pub use types::{Advertised, Host, Ports, PortsIter, Proto, ProxyProtocol, SocketDef, SocketSpec};

#[cfg(test)]
mod tests;
