//! `proto_tcp.so`: SIP over TCP (RFC 3261 §18), `socket=tcp:`, OpenSIPS proto_tcp's parameters
//! (`tcp_port` 5060, `tcp_send_timeout`, `tcp_max_msg_chunks`, `tcp_crlf_pingpong`, ...) and
//! the core's `tcp_connection_lifetime`, `tcp_max_connections`, `tcp_connect_timeout` as
//! modparams. The code is `sipcore_ws`'s driver with the SIP stream framing of `sipcore_sip`
//! (RFC 3261 §18.3) in place of WebSocket: one driver for ws, wss, tcp and tls.
#![warn(missing_docs)]

fn root_module() -> sipcore_abi::ModuleRef {
    sipcore_ws::plugin::root_module(&sipcore_ws::flavor::TCP)
}

sipcore_abi::export_module!(root_module);
