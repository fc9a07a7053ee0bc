//! `modparam("proto_ws", ...)` and `modparam("proto_wss", ...)`: OpenSIPS's names and
//! defaults, plus ours (README, "proto_ws parameters"); proto_wss takes the same ones with the
//! `wss_` prefix (`wss_port`, default 443), plus `wss_tls_handshake_timeout`. Time values keep
//! OpenSIPS's units: `*_timeout` in milliseconds, lifetimes and keep-alive intervals in seconds.
use crate::driver::WsConfig;
use crate::flavor::Flavor;
use abi_stable::std_types::RStr;
use sipcore_abi::{ParamEntry, ParamKind, ParamSpec};
use std::sync::OnceLock;
use std::time::Duration;

mod stream;
use stream::{stream_param, stream_specs};

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

/// Every parameter proto_ws accepts.
pub(crate) static PARAMS: [ParamSpec; 23] = [
    p(
        "ws_port",
        I,
        "80",
        "port of a ws socket or destination given without one",
    ),
    p(
        "ws_max_msg_chunks",
        I,
        "4",
        "max WebSocket frames per message (and reads per handshake); 0 = no limit",
    ),
    p(
        "ws_send_timeout",
        I,
        "100",
        "ms a connection may stay unwritable with data queued before it is closed",
    ),
    p(
        "ws_resource",
        S,
        "/",
        "Request-URI path of outbound handshakes",
    ),
    p(
        "require_origin",
        I,
        "1",
        "refuse inbound handshakes without an Origin header",
    ),
    p(
        "ws_handshake_timeout",
        I,
        "100",
        "ms to wait for the server's 101 on outbound connections",
    ),
    p(
        "ws_max_msg_size",
        I,
        "65535",
        "largest message accepted, in bytes (close 1009 above)",
    ),
    p(
        "ws_inbound_handshake_timeout",
        I,
        "5000",
        "ms a client has to complete its opening handshake",
    ),
    p(
        "ws_max_msg_time",
        I,
        "10000",
        "ms a started message has to arrive completely",
    ),
    p(
        "ws_connection_lifetime",
        I,
        "120",
        "seconds an idle connection is kept (as tcp_connection_lifetime)",
    ),
    p(
        "ws_keepalive_interval",
        I,
        "30",
        "seconds of idleness before a ping is sent; 0 = no pings",
    ),
    p(
        "ws_keepalive_timeout",
        I,
        "10",
        "seconds to wait for the pong before closing",
    ),
    p(
        "ws_allowed_origins",
        S,
        "",
        "comma-separated Origin allow-list; empty = any origin",
    ),
    p(
        "ws_max_connections",
        I,
        "2048",
        "maximum simultaneous connections; more get 503 with Retry-After",
    ),
    p(
        "ws_max_write_queue",
        I,
        "262144",
        "bytes queued per connection before it is closed",
    ),
    p(
        "ws_max_worker_queue",
        I,
        "67108864",
        "bytes queued over one I/O worker's connections: from 3/4 new handshakes get 503, beyond the largest queue is shed with Close 1013",
    ),
    p(
        "ws_connect_timeout",
        I,
        "100",
        "ms for an outbound TCP connect",
    ),
    p(
        "ws_client_origin",
        S,
        "",
        "Origin sent on outbound handshakes; empty = none",
    ),
    p(
        "ws_workers",
        I,
        "0",
        "I/O worker threads; 0 = the sockets' use_workers, else one per core",
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
        "initial state of tracing (MI ws_trace on|off changes it)",
    ),
    p(
        "trace_filter_route",
        S,
        "",
        "route run once per connection; `drop` there stops tracing it",
    ),
    p(
        "ws_max_connections_per_ip",
        I,
        "128",
        "simultaneous inbound connections from one IP address (IPv6: one /64); 0 = no limit",
    ),
];

/// The parameters of `f`: proto_ws's list, or proto_wss's (the `ws_` names with `wss_`,
/// `wss_port` 443, and the TLS handshake deadline).
pub(crate) fn specs(f: &Flavor) -> &'static [ParamSpec] {
    if f.stream {
        return stream_specs(f);
    }
    if !f.tls {
        return &PARAMS;
    }
    static WSS: OnceLock<Vec<ParamSpec>> = OnceLock::new();
    WSS.get_or_init(|| {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let mut v: Vec<ParamSpec> = PARAMS
            .iter()
            .map(|p| {
                let name = p.name.as_str();
                let mut q = *p;
                q.name = RStr::from_str(leak(f.named(name)));
                if name == "ws_port" {
                    q.default = RStr::from_str(leak(f.default_port.to_string()));
                }
                q
            })
            .collect();
        v.push(p(
            "wss_tls_handshake_timeout",
            I,
            "5000",
            "ms a client has to complete its TLS handshake",
        ));
        v.push(p(
            "cert_check_on_conn_reusage",
            I,
            "0",
            "accepted (OpenSIPS): an outbound connection is reused only for the host name it was verified for, whatever the value",
        ));
        v
    })
}

/// The tracing parameters (OpenSIPS's names).
#[derive(Debug, Clone, Default)]
pub(crate) struct TraceParams {
    /// `trace_destination`.
    pub destination: Option<String>,
    /// `trace_on`.
    pub on: bool,
    /// `trace_filter_route`.
    pub filter_route: Option<String>,
}

fn ms(v: i64, name: &str) -> Result<Duration, String> {
    u64::try_from(v)
        .map(Duration::from_millis)
        .map_err(|_| format!("{name} must not be negative"))
}

fn non_negative(v: i64, name: &str) -> Result<u64, String> {
    u64::try_from(v).map_err(|_| format!("{name} must not be negative"))
}

/// `ws_keepalive_interval` when not set: seconds of idleness before a ping.
pub(crate) const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// Build the driver configuration and the default port from the modparams.
pub(crate) fn config_from(
    f: &Flavor,
    params: &[ParamEntry<'_>],
) -> Result<(WsConfig, u16, TraceParams), String> {
    let mut c = WsConfig::default();
    let mut t = TraceParams::default();
    c.workers = 0; // decided at start: ws_workers, else the sockets' use_workers, else cores
                   // Pings on by default (as Kamailio's keepalive_mechanism): a dead peer is found, and the
                   // NATs and proxies on the way (often 60 s of idleness) keep the connection.
    c.keepalive_interval = Some(DEFAULT_KEEPALIVE_INTERVAL);
    let mut port = f.default_port;
    if f.stream {
        // RFC 3261 §18.3 framing; the clients send the keep-alives (RFC 5626 §4.4.1), we
        // answer them; OpenSIPS proto_tcp's 32 reads per message.
        c.sip_stream = true;
        c.keepalive_interval = None;
        c.max_msg_chunks = 32;
        c.handshake_timeout = c.tls_handshake_timeout;
    }
    for e in params {
        let name = e.name.as_str();
        let (i, s) = (e.int, e.str.as_str());
        let canonical = f.canonical(name);
        if f.stream && !stream_param(name, f) {
            return Err(format!("unknown parameter {name}"));
        }
        match &*canonical {
            "ws_port" => {
                port = u16::try_from(i)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(format!("{name} must be 1-65535"))?
            }
            "ws_max_msg_chunks" => {
                c.max_msg_chunks = u32::try_from(i).map_err(|_| format!("{name} out of range"))?
            }
            "ws_send_timeout" => c.send_timeout = ms(i, name)?,
            "ws_resource" => {
                if !s.starts_with('/') {
                    return Err(format!("{name} must start with '/': {s:?}"));
                }
                c.resource = s.to_string()
            }
            "require_origin" => c.require_origin = i != 0,
            // proto_tls's tls_handshake_timeout: the TLS handshake both ways.
            "ws_handshake_timeout" if f.stream => {
                c.tls_handshake_timeout = ms(i, name)?;
                c.handshake_timeout = c.tls_handshake_timeout;
            }
            "ws_handshake_timeout" => c.handshake_timeout = ms(i, name)?,
            "ws_max_msg_size" => {
                c.max_msg_size = usize::try_from(i)
                    .ok()
                    .filter(|n| *n >= 1024)
                    .ok_or(format!("{name} must be at least 1024"))?
            }
            "ws_inbound_handshake_timeout" => c.inbound_handshake_timeout = ms(i, name)?,
            "ws_max_msg_time" => c.max_msg_time = ms(i, name)?,
            "ws_connection_lifetime" => c.lifetime = Duration::from_secs(non_negative(i, name)?),
            "ws_keepalive_interval" => {
                let n = non_negative(i, name)?;
                c.keepalive_interval = (n > 0).then(|| Duration::from_secs(n));
            }
            "ws_keepalive_timeout" => {
                c.keepalive_timeout = Duration::from_secs(non_negative(i, name)?)
            }
            "ws_allowed_origins" => {
                c.allowed_origins = s
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(String::from)
                    .collect()
            }
            "ws_max_connections" => c.max_connections = non_negative(i, name)? as usize,
            "ws_max_connections_per_ip" => {
                c.max_connections_per_ip = non_negative(i, name)? as usize
            }
            "ws_max_write_queue" => c.max_write_queue = non_negative(i, name)? as usize,
            "ws_max_worker_queue" => {
                let n = non_negative(i, name)? as usize;
                if n < 65536 {
                    return Err(format!("{name} must be at least 65536 (bytes)"));
                }
                c.max_worker_queue = n;
            }
            "ws_connect_timeout" => c.connect_timeout = ms(i, name)?,
            "ws_client_origin" => c.client_origin = (!s.is_empty()).then(|| s.to_string()),
            "ws_workers" => c.workers = non_negative(i, name)? as usize,
            "ws_tls_handshake_timeout" if f.tls => c.tls_handshake_timeout = ms(i, name)?,
            "ws_crlf_pingpong" if f.stream => c.crlf_pingpong = i != 0,
            "ws_crlf_drop"
            | "ws_async"
            | "ws_async_max_postponed_chunks"
            | "ws_async_local_connect_timeout"
            | "ws_async_local_write_timeout"
                if f.stream => {}
            // Always on: see `Directory::insert_outbound`.
            "cert_check_on_conn_reusage" if f.tls => {}
            "trace_destination" => t.destination = (!s.is_empty()).then(|| s.to_string()),
            "trace_on" => t.on = i != 0,
            "trace_filter_route" => t.filter_route = (!s.is_empty()).then(|| s.to_string()),
            other => return Err(format!("unknown parameter {other}")),
        }
    }
    Ok((c, port, t))
}

#[cfg(test)]
mod defaults {
    use super::*;

    /// Pings are on unless `ws_keepalive_interval` says 0 (issue 13: as Kamailio's
    /// keepalive_mechanism); the pong timeout stays 10 s.
    #[test]
    fn pings_are_on_by_default() {
        for f in [&crate::flavor::WS, &crate::flavor::WSS] {
            let (c, _, _) = config_from(f, &[]).unwrap();
            assert_eq!(c.keepalive_interval, Some(Duration::from_secs(30)));
            assert_eq!(c.keepalive_timeout, Duration::from_secs(10));
        }
    }
}
