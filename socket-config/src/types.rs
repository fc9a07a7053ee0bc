//! The parsed forms of a `socket=` value: protocol, host, ports and per-socket parameters.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A transport protocol of the OpenSIPS `socket=` grammar (`<proto>` before the first `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// `udp`: SIP over UDP (RFC 3261 §18).
    Udp,
    /// `tcp`: SIP over TCP (RFC 3261 §18).
    Tcp,
    /// `tls`: SIP over TLS (RFC 3261 §26.2).
    Tls,
    /// `sctp`: SIP over SCTP (RFC 4168).
    Sctp,
    /// `ws`: SIP over WebSocket (RFC 7118).
    Ws,
    /// `wss`: SIP over secure WebSocket (RFC 7118).
    Wss,
    /// `ipsec`: SIP over IPsec (3GPP TS 33.203).
    Ipsec,
    /// `bin`: OpenSIPS binary inter-node protocol.
    Bin,
    /// `bins`: `bin` over TLS.
    Bins,
    /// `hep_udp`: HEP capture protocol over UDP.
    HepUdp,
    /// `hep_tcp`: HEP capture protocol over TCP.
    HepTcp,
    /// `hep_tls`: HEP capture protocol over TLS.
    HepTls,
    /// `smpp`: SMPP (SMS gateway).
    Smpp,
    /// `msrp`: MSRP (RFC 4975).
    Msrp,
    /// `msrps`: MSRP over TLS (RFC 4975 §6).
    Msrps,
}

impl Proto {
    /// Every protocol, in grammar order.
    pub const ALL: [Proto; 15] = [
        Proto::Udp,
        Proto::Tcp,
        Proto::Tls,
        Proto::Sctp,
        Proto::Ws,
        Proto::Wss,
        Proto::Ipsec,
        Proto::Bin,
        Proto::Bins,
        Proto::HepUdp,
        Proto::HepTcp,
        Proto::HepTls,
        Proto::Smpp,
        Proto::Msrp,
        Proto::Msrps,
    ];

    /// The canonical (lower-case) name, as written in `socket=` and in `proto_<name>.so`.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Sctp => "sctp",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
            Proto::Ipsec => "ipsec",
            Proto::Bin => "bin",
            Proto::Bins => "bins",
            Proto::HepUdp => "hep_udp",
            Proto::HepTcp => "hep_tcp",
            Proto::HepTls => "hep_tls",
            Proto::Smpp => "smpp",
            Proto::Msrp => "msrp",
            Proto::Msrps => "msrps",
        }
    }

    /// The protocol named `name`, compared case-insensitively (`UDP`, `Hep_Udp`, ...).
    pub fn from_name(name: &str) -> Option<Proto> {
        Proto::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The address part of a socket (or of its `as` advertised address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 literal.
    V4(Ipv4Addr),
    /// An IPv6 literal (written `[..]`, or bare when unambiguous, or inside quotes).
    V6(Ipv6Addr),
    /// A host name or an interface name (`eth0`, `lo`): syntactically the same, the caller
    /// decides (interface first, then DNS). Labels follow RFC 1123 §2.1, `_` also allowed as
    /// the OpenSIPS lexer does.
    Name(String),
    /// `*`: every address of every interface.
    Any,
}

/// Prints the address form: IPv4 as is, IPv6 bracketed, names unquoted, `*`.
impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
            Host::Name(n) => f.write_str(n),
            Host::Any => f.write_str("*"),
        }
    }
}

/// The port part: one socket per port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ports {
    /// `N`.
    One(u16),
    /// `N-M` with `N < M`, both included (`N-N` parses as [`Ports::One`]).
    Range(u16, u16),
    /// `N,M,...` (ranges inside a list are expanded into it); at least two distinct ports.
    List(Vec<u16>),
}

impl Ports {
    /// Number of ports (and so of sockets).
    pub fn len(&self) -> usize {
        match self {
            Ports::One(_) => 1,
            Ports::Range(a, b) if a <= b => usize::from(b - a) + 1,
            Ports::Range(..) => 0,
            Ports::List(v) => v.len(),
        }
    }

    /// Always false for parsed values; true only for a hand-built empty list.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first port.
    pub fn first(&self) -> Option<u16> {
        self.iter().next()
    }

    /// The ports in order, without allocating.
    pub fn iter(&self) -> PortsIter<'_> {
        match self {
            Ports::One(p) => PortsIter::Range(*p..=*p),
            Ports::Range(a, b) => PortsIter::Range(*a..=*b),
            Ports::List(v) => PortsIter::List(v.iter()),
        }
    }

    /// The ports in order, collected.
    pub fn expand(&self) -> Vec<u16> {
        self.iter().collect()
    }
}

/// Prints `5060`, `5060-5062` or `5060,5070`.
impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::One(p) => write!(f, "{p}"),
            Ports::Range(a, b) => write!(f, "{a}-{b}"),
            Ports::List(v) => {
                for (i, p) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Iterator over [`Ports`].
#[derive(Debug, Clone)]
pub enum PortsIter<'a> {
    /// Over a single port or a range.
    Range(std::ops::RangeInclusive<u16>),
    /// Over a list.
    List(std::slice::Iter<'a, u16>),
}

impl Iterator for PortsIter<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        match self {
            PortsIter::Range(r) => r.next(),
            PortsIter::List(it) => it.next().copied(),
        }
    }
}

/// The `as host[:ports]` parameter: what is put in Via/Record-Route/Contact instead of the
/// listening address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advertised {
    /// Advertised host (never [`Host::Any`]).
    pub host: Host,
    /// Advertised ports; `None` advertises the real port. When present it has as many ports as
    /// the socket (1 for a socket without port).
    pub ports: Option<Ports>,
}

/// The HAProxy PROXY-protocol flags of a socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ProxyProtocol {
    /// `allow_proxy_protocol` (also `allow_proxy`, `proxy_protocol`, `proxy`, with `-` or `_`):
    /// accept a PROXY header on inbound connections.
    pub allow: bool,
    /// `send_proxy_protocol` (also `send_proxy`, with `-` or `_`): send a PROXY header on
    /// outbound connections.
    pub send: bool,
}

/// One `proto:host[:ports] [params]` definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketDef {
    /// The protocol.
    pub proto: Proto,
    /// The address to listen on.
    pub host: Host,
    /// The ports; `None` (absent or `any`) means the module's default port.
    pub ports: Option<Ports>,
    /// `as host[:ports]`.
    pub advertised: Option<Advertised>,
    /// `use_workers N` (or the old `use_children N`), N >= 1.
    pub workers: Option<u32>,
    /// `tos N` (decimal, `0x` hex, or an `IPTOS_*` name).
    pub tos: Option<u8>,
    /// `tag NAME`.
    pub tag: Option<String>,
    /// `use_auto_scaling_profile NAME`.
    pub auto_scaling_profile: Option<String>,
    /// `reuse_port`.
    pub reuse_port: bool,
    /// `anycast`.
    pub anycast: bool,
    /// `frag` (allow fragmentation: no DF bit).
    pub frag: bool,
    /// `accept_subdomain`.
    pub accept_subdomain: bool,
    /// The PROXY-protocol flags.
    pub proxy_protocol: ProxyProtocol,
}

impl SocketDef {
    /// A definition with only a protocol and a host; every parameter unset.
    pub fn new(proto: Proto, host: Host) -> Self {
        SocketDef {
            proto,
            host,
            ports: None,
            advertised: None,
            workers: None,
            tos: None,
            tag: None,
            auto_scaling_profile: None,
            reuse_port: false,
            anycast: false,
            frag: false,
            accept_subdomain: false,
            proxy_protocol: ProxyProtocol::default(),
        }
    }

    /// One `(port, advertised port)` per socket to create, in order. A socket without port gets
    /// `default_port` (the module's). The advertised port is `None` when `as` has no port (the
    /// real port is advertised). Parsed values always pair 1:1; for a hand-built value whose
    /// advertised list is shorter, the extra sockets get `None`.
    pub fn expand_ports(&self, default_port: u16) -> Vec<(u16, Option<u16>)> {
        let mut adv = self
            .advertised
            .as_ref()
            .and_then(|a| a.ports.as_ref())
            .map(Ports::iter);
        let mut next_adv = move || adv.as_mut().and_then(Iterator::next);
        match &self.ports {
            None => vec![(default_port, next_adv())],
            Some(p) => p.iter().map(|port| (port, next_adv())).collect(),
        }
    }
}

/// What one `socket=` value defines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SocketSpec {
    /// A listening socket definition (one socket per port and resolved address).
    Single(SocketDef),
    /// `bond:NAME { "proto:host:port", ... }`: a named group of sockets (OpenSIPS 4.0).
    Bond {
        /// The bond's name.
        name: String,
        /// Its members, in order (at least one).
        members: Vec<SocketDef>,
    },
}
