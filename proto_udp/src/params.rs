//! `modparam("proto_udp", ...)`: OpenSIPS's `udp_port`, its core `udp_workers` as a module
//! parameter, the transport tracing names of OpenSIPS's proto_tcp/proto_ws
//! (`trace_destination`, `trace_on`, `trace_filter_route`), and our `udp_max_msg_size` and
//! `udp_spread`.
use abi_stable::std_types::RStr;
use sipcore_abi::{ParamEntry, ParamKind, ParamSpec};

const fn p(
    name: &'static str,
    kind: ParamKind,
    default: &'static str,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec {
        name: RStr::from_str(name),
        kind,
        multi: false,
        default: RStr::from_str(default),
        doc: RStr::from_str(doc),
    }
}
const I: ParamKind = ParamKind::INT;
const S: ParamKind = ParamKind::STR;

/// The largest UDP payload over IPv4 (65535 minus the 20-byte IP and 8-byte UDP headers):
/// the default `udp_max_msg_size`, so that by default only the protocol limits a datagram.
pub const MAX_UDP_PAYLOAD: usize = 65507;

/// The default port of a `socket=udp:` line or a destination without one (RFC 3261 §19.1.2).
pub const SIP_PORT: u16 = 5060;

/// Every parameter proto_udp accepts.
pub static PARAMS: [ParamSpec; 7] = [
    p(
        "udp_port",
        I,
        "5060",
        "port of a udp socket or destination given without one",
    ),
    p(
        "udp_workers",
        I,
        "0",
        "receiving threads per udp socket without use_workers (and no global workers); 0 = one per CPU",
    ),
    p(
        "udp_max_msg_size",
        I,
        "65507",
        "largest datagram accepted, in bytes; larger ones are dropped and counted",
    ),
    p(
        "trace_destination",
        S,
        "",
        "trace destination (a proto_hep hep_id name); empty = no tracing",
    ),
    p(
        "trace_on",
        I,
        "0",
        "initial state of tracing (MI udp_trace on|off changes it)",
    ),
    p(
        "trace_filter_route",
        S,
        "",
        "route run per traced datagram; `drop` there leaves it untraced",
    ),
    p(
        "udp_spread",
        S,
        "source",
        "how a socket's datagrams reach its threads: source (by source address and port, a socket per thread) or call (each to a free thread from one shared socket, those of a call in order)",
    ),
];

/// How the datagrams of a socket line reach its receiving threads (`udp_spread`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Spread {
    /// A `SO_REUSEPORT` socket per thread: the kernel chooses by a hash of the source address
    /// and port, so one peer always lands on the same thread (its datagrams are handled in
    /// the order they came, and no thread is woken for another's peer), but a peer that sends
    /// everything from one address and port (a trunk, an SBC) gets one thread.
    #[default]
    Source,
    /// One socket that every thread receives from: each datagram goes to a thread that is
    /// free (the kernel wakes one waiting thread per datagram, never all), as OpenSIPS's UDP
    /// workers and Kamailio's children share theirs, so every peer is served by every thread;
    /// the datagrams of one call (Call-ID) are handled one at a time, in the order they came
    /// ([`crate::sequence`]), which theirs are not.
    Call,
}

impl Spread {
    /// The name `udp_spread` takes.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Source => "source",
            Spread::Call => "call",
        }
    }
}

/// Most receiving threads one socket may have.
pub const MAX_WORKERS: usize = 256;

/// A `modparam` value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// An integer outside what the parameter takes.
    #[error("{name} must be {range}, not {value}")]
    OutOfRange {
        /// The parameter.
        name: String,
        /// What it takes.
        range: &'static str,
        /// What was given.
        value: i64,
    },
    /// A name the module does not declare (the host checks first; kept for safety).
    #[error("unknown parameter {0}")]
    Unknown(String),
    /// A word outside those the parameter takes.
    #[error("{name} must be {allowed}, not \"{value}\"")]
    NotOneOf {
        /// The parameter.
        name: String,
        /// What it takes.
        allowed: &'static str,
        /// What was given.
        value: String,
    },
}

/// The tracing parameters (OpenSIPS's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceParams {
    /// `trace_destination`.
    pub destination: Option<String>,
    /// `trace_on`.
    pub on: bool,
    /// `trace_filter_route`.
    pub filter_route: Option<String>,
}

/// proto_udp's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// `udp_port`.
    pub port: u16,
    /// `udp_workers`; 0 = one per CPU.
    pub workers: usize,
    /// `udp_max_msg_size`.
    pub max_msg_size: usize,
    /// `udp_spread`.
    pub spread: Spread,
    /// Tracing.
    pub trace: TraceParams,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            port: SIP_PORT,
            workers: 0,
            max_msg_size: MAX_UDP_PAYLOAD,
            spread: Spread::default(),
            trace: TraceParams::default(),
        }
    }
}

fn in_range(name: &str, v: i64, lo: i64, hi: i64, range: &'static str) -> Result<i64, ParamError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(ParamError::OutOfRange {
            name: name.to_string(),
            range,
            value: v,
        })
    }
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Build the configuration from the `modparam` values, in file order (a later value wins).
pub fn config_from(params: &[ParamEntry<'_>]) -> Result<UdpConfig, ParamError> {
    let mut c = UdpConfig::default();
    for e in params {
        let name = e.name.as_str();
        let (i, s) = (e.int, e.str.as_str());
        match name {
            "udp_port" => c.port = in_range(name, i, 1, 65535, "1-65535")? as u16,
            "udp_workers" => {
                c.workers = in_range(name, i, 0, MAX_WORKERS as i64, "0-256")? as usize
            }
            "udp_max_msg_size" => {
                c.max_msg_size = in_range(name, i, 1024, 65535, "1024-65535")? as usize
            }
            "trace_destination" => c.trace.destination = text(s),
            "trace_on" => c.trace.on = i != 0,
            "trace_filter_route" => c.trace.filter_route = text(s),
            "udp_spread" => {
                c.spread = match s {
                    "source" => Spread::Source,
                    "call" => Spread::Call,
                    _ => {
                        return Err(ParamError::NotOneOf {
                            name: name.to_string(),
                            allowed: "source or call",
                            value: s.to_string(),
                        })
                    }
                }
            }
            other => return Err(ParamError::Unknown(other.to_string())),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(name: &'static str, v: i64) -> ParamEntry<'static> {
        ParamEntry {
            name: RStr::from_str(name),
            kind: ParamKind::INT,
            int: v,
            str: RStr::from_str(""),
        }
    }

    fn text(name: &'static str, v: &'static str) -> ParamEntry<'static> {
        ParamEntry {
            name: RStr::from_str(name),
            kind: ParamKind::STR,
            int: 0,
            str: RStr::from_str(v),
        }
    }

    #[test]
    fn defaults() {
        let c = config_from(&[]).unwrap();
        assert_eq!(c, UdpConfig::default());
        assert_eq!((c.port, c.workers, c.max_msg_size), (5060, 0, 65507));
        assert_eq!(c.trace, TraceParams::default());
        // Every declared parameter is accepted and documents its default.
        for s in &PARAMS {
            let e = if s.kind == ParamKind::INT {
                int(s.name.as_str(), s.default.as_str().parse().unwrap())
            } else {
                text(s.name.as_str(), s.default.as_str())
            };
            assert_eq!(config_from(&[e]).unwrap(), UdpConfig::default(), "{s:?}");
        }
    }

    #[test]
    fn values_are_taken_and_the_last_one_wins() {
        let c = config_from(&[
            int("udp_port", 5080),
            int("udp_workers", 3),
            int("udp_max_msg_size", 4096),
            text("trace_destination", "hep_dest"),
            int("trace_on", 1),
            text("trace_filter_route", "udp_filter"),
            text("udp_spread", "call"),
            int("udp_port", 5070),
        ])
        .unwrap();
        assert_eq!((c.port, c.workers, c.max_msg_size), (5070, 3, 4096));
        assert_eq!(c.spread, Spread::Call);
        let last = config_from(&[text("udp_spread", "call"), text("udp_spread", "source")]);
        assert_eq!(last.unwrap().spread, Spread::Source);
        assert_eq!(
            c.trace,
            TraceParams {
                destination: Some("hep_dest".into()),
                on: true,
                filter_route: Some("udp_filter".into()),
            }
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_range() {
        for (name, v) in [
            ("udp_port", 0),
            ("udp_port", 65536),
            ("udp_workers", -1),
            ("udp_workers", 257),
            ("udp_max_msg_size", 1023),
            ("udp_max_msg_size", 65536),
        ] {
            let e = config_from(&[int(name, v)]).unwrap_err();
            assert!(
                matches!(&e, ParamError::OutOfRange { name: n, value, .. } if n == name && *value == v)
            );
            assert!(
                e.to_string().starts_with(&format!("{name} must be ")),
                "{e}"
            );
        }
        assert_eq!(
            config_from(&[int("udp_mtu", 1300)]),
            Err(ParamError::Unknown("udp_mtu".into()))
        );
    }

    #[test]
    fn a_spread_outside_the_two_is_refused_with_them() {
        for bad in ["", "Call", "datagram", "flow", "source "] {
            let e = config_from(&[text("udp_spread", bad)]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("udp_spread must be source or call, not \"{bad}\"")
            );
        }
        assert_eq!(Spread::default().name(), "source");
        assert_eq!(Spread::Call.name(), "call");
    }
}
