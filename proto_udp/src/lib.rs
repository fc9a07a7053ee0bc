//! `proto_udp.so`: SIP over UDP (RFC 3261 §18) for sipcore, `socket=udp:IP[:PORT]`.
//!
//! Each socket line gets one `SO_REUSEPORT` socket per receiving thread on the same address
//! ([`socket`], `udp_spread "source"`, the default), or one socket its threads share, each
//! waiting apart ([`readiness`]) and handling each call's datagrams in order ([`sequence`],
//! `udp_spread "call"`); each thread receives, drops what cannot be SIP ([`classify`]:
//! empty datagrams, CRLF keep-alives, oversized datagrams, STUN and other binary data, source
//! port 0; each counted in [`stats`]) and hands every other datagram to the host, which parses
//! it, answers 400 to malformed SIP, and runs the script on that thread ([`worker`]). Sending
//! never waits ([`runtime`]). Tracing to HEP ([`trace`]) and the MI commands `udp_list` and
//! `udp_trace` ([`mi`]) follow proto_ws; [`plugin`] is the ABI glue.
#![warn(missing_docs)]

pub mod classify;
mod mi;
pub mod params;
mod plugin;
pub mod readiness;
pub mod runtime;
pub mod sequence;
pub mod socket;
pub mod stats;
pub mod trace;
pub mod worker;

sipcore_abi::export_module!(plugin::root_module);
