//! The MI commands, registered with the host at `init`: `udp_trace [on|off]` (alias
//! `udp:trace`, as proto_ws's `ws_trace`) and `udp_list`, the UDP sockets with the datagrams
//! each thread received (the host has no socket listing; OpenSIPS's core `list_sockets` shows
//! every protocol's).
use crate::params::Spread;
use crate::trace::TRACE_ON;
use abi_stable::std_types::{RErr, ROk, RResult, RSlice, RStr, RString};
use serde_json::{json, Value};
use sipcore_abi::{catch_panic, HostApiRef, MiCommand, MiError};
use std::sync::atomic::Ordering;

fn err(code: i32, message: impl Into<String>) -> MiError {
    MiError {
        code,
        message: RString::from(message.into()),
    }
}

fn guarded(f: impl FnOnce() -> Result<Value, MiError>) -> RResult<RString, MiError> {
    match catch_panic(f) {
        Ok(Ok(v)) => ROk(RString::from(v.to_string())),
        Ok(Err(e)) => RErr(e),
        Err(p) => RErr(err(-32603, format!("internal error: {p}"))),
    }
}

/// The answer of `udp_trace` with `mode` (`None`: the state).
pub fn trace_answer(mode: Option<&str>) -> Result<Value, MiError> {
    let Some(mode) = mode else {
        let state = if TRACE_ON.load(Ordering::Relaxed) {
            "on"
        } else {
            "off"
        };
        return Ok(json!({ "UDP tracing": state }));
    };
    let on = match mode.to_ascii_lowercase().as_str() {
        "on" | "1" => true,
        "off" | "0" => false,
        _ => {
            return Err(err(
                500,
                "Bad parameter value: trace_mode should be 'on' or 'off'",
            ))
        }
    };
    TRACE_ON.store(on, Ordering::Relaxed);
    Ok(json!("OK"))
}

extern "C" fn udp_trace(params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    guarded(|| trace_answer(params.first().map(RStr::as_str)))
}

/// One `udp_list` item: the socket line, how its datagrams reach its threads (`spread`) and
/// how many each thread received (`received`, in thread order).
pub fn socket_json(p: &crate::runtime::ListenerPlan, spread: Spread, received: &[u64]) -> Value {
    json!({
        "id": p.id,
        "address": format!("udp:{}", p.addr),
        "advertised": p.advertised,
        "tag": p.tag,
        "workers": p.workers,
        "reuse_port": p.reuse_port,
        "spread": spread.name(),
        "received": received,
    })
}

extern "C" fn udp_list(_params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    guarded(|| {
        let items: Vec<Value> = crate::plugin::runtime()
            .map(|rt| {
                rt.listeners()
                    .iter()
                    .map(|l| {
                        let received: Vec<u64> = l
                            .received
                            .iter()
                            .map(|r| r.0.load(Ordering::Relaxed))
                            .collect();
                        socket_json(&l.plan, l.spread(), &received)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!({ "Sockets": items }))
    })
}

/// Register the commands (a host older than ABI 1.1 has no MI: nothing to do).
pub fn register(host: HostApiRef) -> Result<(), String> {
    let Some(register) = host.register_mi() else {
        return Ok(());
    };
    static ALIASES: [RStr<'static>; 1] = [RStr::from_str("udp:trace")];
    static TRACE_PARAMS: [RStr<'static>; 1] = [RStr::from_str("trace_mode")];
    let cmds = [
        MiCommand {
            name: RStr::from_str("udp_trace"),
            aliases: RSlice::from_slice(&ALIASES),
            help: RStr::from_str("query or set UDP tracing: udp_trace [on|off]"),
            params: RSlice::from_slice(&TRACE_PARAMS),
            handler: udp_trace,
        },
        MiCommand {
            name: RStr::from_str("udp_list"),
            aliases: RSlice::from_slice(&[]),
            help: RStr::from_str("the UDP sockets: address, advertised, tag, workers"),
            params: RSlice::from_slice(&[]),
            handler: udp_list,
        },
    ];
    for c in &cmds {
        if let RErr(e) = register(c) {
            return Err(format!("cannot register MI command {}: {e}", c.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ListenerPlan;

    #[test]
    fn trace_switch_and_bad_mode() {
        assert_eq!(trace_answer(Some("ON")).unwrap(), json!("OK"));
        assert_eq!(trace_answer(None).unwrap(), json!({"UDP tracing": "on"}));
        assert_eq!(trace_answer(Some("0")).unwrap(), json!("OK"));
        assert_eq!(trace_answer(None).unwrap(), json!({"UDP tracing": "off"}));
        let e = trace_answer(Some("maybe")).unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(trace_answer(None).unwrap(), json!({"UDP tracing": "off"}));
    }

    #[test]
    fn sockets_are_listed_with_their_address_and_workers() {
        let p = ListenerPlan {
            id: 3,
            addr: "[::1]:5062".parse().unwrap(),
            workers: 2,
            reuse_port: false,
            advertised: "sip.example.com:5060".into(),
            tag: "pub".into(),
        };
        assert_eq!(
            socket_json(&p, Spread::Call, &[7, 5]),
            json!({"id": 3, "address": "udp:[::1]:5062", "advertised": "sip.example.com:5060",
                   "tag": "pub", "workers": 2, "reuse_port": false, "spread": "call",
                   "received": [7, 5]})
        );
        assert_eq!(socket_json(&p, Spread::Source, &[7, 0])["spread"], "source");
    }
}
