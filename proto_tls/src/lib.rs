//! `proto_tls.so`: SIP over TLS (RFC 3261 §18, §26.2), `socket=tls:`, OpenSIPS proto_tls's
//! parameters (`tls_port` 5061, `tls_send_timeout`, `tls_max_msg_chunks`,
//! `tls_crlf_pingpong`, `tls_handshake_timeout`, ...) and tls_mgm's certificates. The code is
//! `sipcore_ws`'s driver with the SIP stream framing (RFC 3261 §18.3) over the TLS stream
//! proto_wss uses.
#![warn(missing_docs)]

fn root_module() -> sipcore_abi::ModuleRef {
    sipcore_ws::plugin::root_module(&sipcore_ws::flavor::TLS)
}

sipcore_abi::export_module!(root_module);
