//! `proto_ws.so`: SIP over WebSocket (RFC 7118) over TCP, `socket=ws:`. The code is
//! `sipcore_ws`'s, shared with `proto_wss`; this crate only names the flavor and exports it.
#![warn(missing_docs)]

fn root_module() -> sipcore_abi::ModuleRef {
    sipcore_ws::plugin::root_module(&sipcore_ws::flavor::WS)
}

sipcore_abi::export_module!(root_module);
