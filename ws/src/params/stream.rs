//! proto_tcp's and proto_tls's parameters: proto_ws's that mean the same over a SIP stream,
//! under OpenSIPS's `tcp_`/`tls_` names, and OpenSIPS proto_tcp's own (RFC 3261 §18.3
//! framing has no handshake, pings or origins).
use super::{p, I, PARAMS};
use crate::flavor::Flavor;
use abi_stable::std_types::RStr;
use sipcore_abi::ParamSpec;
use std::sync::OnceLock;

/// The `ws_` parameters that mean the same over a SIP stream, under the stream flavor's
/// prefix (`tcp_port`, `tcp_send_timeout`, `tcp_max_msg_chunks`; the core's
/// `tcp_connection_lifetime`, `tcp_max_connections`, `tcp_connect_timeout` as modparams).
const STREAM_SHARED: [&str; 14] = [
    "ws_port",
    "ws_max_msg_chunks",
    "ws_send_timeout",
    "ws_max_msg_size",
    "ws_max_msg_time",
    "ws_connection_lifetime",
    "ws_max_connections",
    "ws_max_write_queue",
    "ws_max_worker_queue",
    "ws_connect_timeout",
    "ws_workers",
    "trace_destination",
    "trace_on",
    "trace_filter_route",
];

/// The parameters of proto_tcp / proto_tls (OpenSIPS proto_tcp's and proto_tls's names, and
/// ours as proto_ws has them).
pub(super) fn stream_specs(f: &Flavor) -> &'static [ParamSpec] {
    static TCP: OnceLock<Vec<ParamSpec>> = OnceLock::new();
    static TLS: OnceLock<Vec<ParamSpec>> = OnceLock::new();
    let cell = if f.tls { &TLS } else { &TCP };
    cell.get_or_init(|| {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let mut v: Vec<ParamSpec> = PARAMS
            .iter()
            .filter(|p| STREAM_SHARED.contains(&p.name.as_str()) || p.name.as_str() == "ws_max_connections_per_ip")
            .map(|p| {
                let name = p.name.as_str();
                let mut q = *p;
                q.name = RStr::from_str(leak(f.named(name)));
                match name {
                    "ws_port" => q.default = RStr::from_str(leak(f.default_port.to_string())),
                    // OpenSIPS proto_tcp's default.
                    "ws_max_msg_chunks" => {
                        q.default = RStr::from_str("32");
                        q.doc = RStr::from_str("max reads of one message; 0 = no limit");
                    }
                    "ws_max_msg_size" => {
                        q.doc = RStr::from_str("largest message (header section and body) accepted, in bytes; the connection is closed above")
                    }
                    "ws_max_connections" => {
                        q.doc = RStr::from_str("maximum simultaneous connections; more are closed at accept")
                    }
                    "ws_max_worker_queue" => {
                        q.doc = RStr::from_str("bytes queued over one I/O worker's connections: from 3/4 new connections are closed, beyond the largest queue is shed")
                    }
                    _ => {}
                }
                q
            })
            .collect();
        let named = |n: &str| leak(f.named(n));
        v.push(p(
            named("ws_crlf_pingpong"),
            I,
            "1",
            "answer a CRLF CRLF keep-alive with CRLF (RFC 5626 §4.4.1)",
        ));
        for n in [
            "ws_crlf_drop",
            "ws_async",
            "ws_async_max_postponed_chunks",
            "ws_async_local_connect_timeout",
            "ws_async_local_write_timeout",
        ] {
            v.push(p(
                named(n),
                I,
                "0",
                "accepted (OpenSIPS), no effect: see README",
            ));
        }
        if f.tls {
            v.push(p(
                named("ws_handshake_timeout"),
                I,
                "5000",
                "ms for the TLS handshake, inbound and outbound",
            ));
            v.push(p(
                "cert_check_on_conn_reusage",
                I,
                "0",
                "accepted (OpenSIPS): an outbound connection is reused only for the host name it was verified for, whatever the value",
            ));
        }
        v
    })
}

/// Whether `name` (as written in the modparam) is one of the stream flavor `f`'s parameters
/// (the host checks this before `init`; the `ws_` names are not proto_tcp's).
pub(super) fn stream_param(name: &str, f: &Flavor) -> bool {
    stream_specs(f).iter().any(|p| p.name.as_str() == name)
}

#[cfg(test)]
mod stream_flavors {
    use super::super::*;
    use crate::flavor::{TCP, TLS};

    fn int<'a>(name: &'a str, v: i64) -> ParamEntry<'a> {
        ParamEntry {
            name: RStr::from_str(name),
            kind: I,
            int: v,
            str: RStr::from_str(""),
        }
    }

    /// proto_tcp's names are OpenSIPS's (`tcp_port`, the core's `tcp_connection_lifetime`...);
    /// WebSocket-only parameters are not among them.
    #[test]
    fn tcp_and_tls_take_their_own_names_only() {
        let names = |f| -> Vec<&str> { specs(f).iter().map(|p| p.name.as_str()).collect() };
        let tcp = names(&TCP);
        for n in [
            "tcp_port",
            "tcp_send_timeout",
            "tcp_max_msg_chunks",
            "tcp_connection_lifetime",
            "tcp_max_connections",
            "tcp_connect_timeout",
            "tcp_crlf_pingpong",
            "tcp_async",
        ] {
            assert!(tcp.contains(&n), "{n} missing: {tcp:?}");
        }
        for n in ["tcp_resource", "require_origin", "tcp_keepalive_interval"] {
            assert!(!tcp.contains(&n), "{n} is WebSocket's");
        }
        let tls = names(&TLS);
        assert!(tls.contains(&"tls_port") && tls.contains(&"tls_handshake_timeout"));
        assert!(config_from(&TCP, &[int("tcp_resource", 1)]).is_err());
        assert!(config_from(&TCP, &[int("ws_port", 5070)]).is_err());
    }

    #[test]
    fn stream_defaults_and_values() {
        let (c, port, _) = config_from(&TCP, &[]).unwrap();
        assert!(c.sip_stream && c.crlf_pingpong);
        assert_eq!(
            (port, c.max_msg_chunks, c.keepalive_interval),
            (5060, 32, None)
        );
        let (c, port, _) = config_from(
            &TCP,
            &[
                int("tcp_port", 5070),
                int("tcp_connection_lifetime", 600),
                int("tcp_crlf_pingpong", 0),
                int("tcp_async", 1),
            ],
        )
        .unwrap();
        assert_eq!(
            (port, c.lifetime.as_secs(), c.crlf_pingpong),
            (5070, 600, false)
        );
        let (c, port, _) = config_from(&TLS, &[int("tls_handshake_timeout", 2500)]).unwrap();
        assert_eq!(port, 5061);
        assert_eq!(c.tls_handshake_timeout, Duration::from_millis(2500));
        assert_eq!(c.handshake_timeout, Duration::from_millis(2500));
        let (ws, _, _) = config_from(&crate::flavor::WS, &[]).unwrap();
        assert!(!ws.sip_stream);
    }
}
