//! `proto_wss.so`: SIP over secure WebSocket (RFC 7118 §5 over TLS, RFC 6455 §11.1.2 `wss`),
//! `socket=wss:`, OpenSIPS proto_wss's parameters (`wss_port` 443, `wss_max_msg_chunks`,
//! `wss_resource`, `wss_handshake_timeout`, `wss_tls_handshake_timeout`, ...) and tls_mgm's
//! certificates. The code is `sipcore_ws`'s, shared with `proto_ws`: TLS is a stream under the
//! same driver.
#![warn(missing_docs)]

fn root_module() -> sipcore_abi::ModuleRef {
    sipcore_ws::plugin::root_module(&sipcore_ws::flavor::WSS)
}

sipcore_abi::export_module!(root_module);
