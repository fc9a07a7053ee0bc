//! Which plugin this code runs as: `proto_ws` (`socket=ws:`, RFC 7118 over TCP),
//! `proto_wss` (`socket=wss:`, RFC 7118 §5 over TLS), `proto_tcp` (`socket=tcp:`, SIP framed
//! on the stream, RFC 3261 §18.3) or `proto_tls` (`socket=tls:`, the same over TLS). One code
//! base: the flavor only names things (module, parameters with OpenSIPS's `ws_`/`wss_`/
//! `tcp_`/`tls_` prefixes, MI commands, the protocol reported to the core and in HEP) and
//! says whether every listener and outbound connection runs TLS, and whether messages are
//! WebSocket messages or framed by their Content-Length.
use sipcore_abi::Proto;
use std::sync::OnceLock;

/// The naming and the TLS switch of one plugin.
#[derive(Debug)]
pub struct Flavor {
    /// Module name (`modparam` and logs): `proto_ws`, `proto_wss`, `proto_tcp`, `proto_tls`.
    pub module: &'static str,
    /// The protocol served, reported to the core and to the trace filter route.
    pub proto: Proto,
    /// The protocol's name in `socket=` lines.
    pub name: &'static str,
    /// Prefix of the module's own parameters and MI commands: `ws_`, `wss_`, `tcp_`, `tls_`.
    pub prefix: &'static str,
    /// Port of a socket or destination given without one (before `*_port`).
    pub default_port: u16,
    /// TLS under every connection (OpenSSL, the host's tls_mgm domains).
    pub tls: bool,
    /// The `Protocol` value of HEP connection events.
    pub hep_protocol: &'static str,
    /// IP protocol number in HEP captures: 50 for WebSocket (as OpenSIPS), 6 for TCP and TLS.
    pub ip_proto: u8,
    /// SIP messages framed on the byte stream (RFC 3261 §18.3: `proto_tcp`, `proto_tls`)
    /// instead of WebSocket frames (RFC 7118).
    pub stream: bool,
}

/// `proto_ws`: WebSocket over TCP.
pub static WS: Flavor = Flavor {
    module: "proto_ws",
    proto: Proto::WS,
    name: "ws",
    prefix: "ws_",
    default_port: 80,
    tls: false,
    hep_protocol: "WS",
    ip_proto: 50,
    stream: false,
};

/// `proto_wss`: WebSocket over TLS (OpenSIPS `proto_wss`, default port 443).
pub static WSS: Flavor = Flavor {
    module: "proto_wss",
    proto: Proto::WSS,
    name: "wss",
    prefix: "wss_",
    default_port: 443,
    tls: true,
    hep_protocol: "WSS",
    ip_proto: 50,
    stream: false,
};

/// `proto_tcp`: SIP over TCP (RFC 3261 §18, OpenSIPS `proto_tcp`, default port 5060).
pub static TCP: Flavor = Flavor {
    module: "proto_tcp",
    proto: Proto::TCP,
    name: "tcp",
    prefix: "tcp_",
    default_port: 5060,
    tls: false,
    hep_protocol: "TCP",
    ip_proto: 6,
    stream: true,
};

/// `proto_tls`: SIP over TLS (RFC 3261 §26.2, OpenSIPS `proto_tls`, default port 5061).
pub static TLS: Flavor = Flavor {
    module: "proto_tls",
    proto: Proto::TLS,
    name: "tls",
    prefix: "tls_",
    default_port: 5061,
    tls: true,
    hep_protocol: "TLS",
    ip_proto: 6,
    stream: true,
};

static CURRENT: OnceLock<&'static Flavor> = OnceLock::new();

/// Fix the flavor of this shared library (done by its `root_module`, before the host calls
/// anything; a later different choice is ignored).
pub fn set(f: &'static Flavor) {
    let _ = CURRENT.set(f);
}

/// The flavor of this shared library ([`WS`] until [`set`]).
pub fn get() -> &'static Flavor {
    CURRENT.get().copied().unwrap_or(&WS)
}

impl Flavor {
    /// The `ws_` name of one of this flavor's own parameters or MI commands (`wss_port` ->
    /// `ws_port`); other names (`trace_on`, `require_origin`) as they are.
    pub fn canonical<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match name.strip_prefix(self.prefix) {
            Some(rest) if self.prefix != "ws_" => format!("ws_{rest}").into(),
            _ => name.into(),
        }
    }

    /// This flavor's name for a `ws_` parameter or MI command (`ws_port` -> `wss_port`).
    pub fn named(&self, ws_name: &str) -> String {
        match ws_name.strip_prefix("ws_") {
            Some(rest) => format!("{}{rest}", self.prefix),
            None => ws_name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(WSS.canonical("wss_port"), "ws_port");
        assert_eq!(WSS.canonical("trace_on"), "trace_on");
        assert_eq!(
            WSS.canonical("ws_port"),
            "ws_port",
            "a ws_ name is not wss's own"
        );
        assert_eq!(WS.canonical("ws_port"), "ws_port");
        assert_eq!(WSS.named("ws_max_msg_chunks"), "wss_max_msg_chunks");
        assert_eq!(WS.named("ws_list"), "ws_list");
        assert_eq!(WSS.named("require_origin"), "require_origin");
    }
}
