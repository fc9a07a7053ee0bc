//! The MI commands, registered with the host at `init` (OpenSIPS names): proto_ws's
//! `ws_trace [on|off]` (alias `ws:trace`), `ws_list`, `ws_close ID`; proto_wss's
//! `wss_trace` (alias `wss:trace`), `wss_list` (with each connection's TLS version and
//! cipher), `wss_close`.
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

extern "C" fn ws_trace(params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    guarded(|| {
        let Some(mode) = params.first() else {
            let state = if TRACE_ON.load(Ordering::Relaxed) {
                "on"
            } else {
                "off"
            };
            let key = format!("{} tracing", crate::flavor::get().hep_protocol);
            return Ok(json!({ key: state }));
        };
        let m = mode.as_str().to_ascii_lowercase();
        let on = match m.as_str() {
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
    })
}

extern "C" fn ws_list(_params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    guarded(|| {
        let Some(rt) = crate::runtime() else {
            return Ok(json!({ "Connections": [] }));
        };
        let items: Vec<Value> = rt.connections().iter().map(summary_json).collect();
        Ok(json!({ "Connections": items }))
    })
}

/// One `ws_list` item; a TLS connection also shows its TLS version and cipher.
fn summary_json(c: &crate::driver::ConnSummary) -> Value {
    let mut v = json!({
        "id": c.id,
        "peer": c.peer.to_string(),
        "local": c.local.to_string(),
        "age": c.age.as_secs(),
        "outbound": c.outbound,
        "traced": c.traced,
        "state": c.state,
    });
    if let (Some(t), Some(o)) = (c.tls, v.as_object_mut()) {
        o.insert("tls_version".into(), t.version.into());
        o.insert("tls_cipher".into(), t.cipher.into());
    }
    v
}

extern "C" fn ws_close(params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    guarded(|| {
        let id: u64 = params
            .first()
            .ok_or_else(|| err(-32602, "missing parameter: id"))?
            .as_str()
            .trim()
            .parse()
            .map_err(|_| err(-32602, "id must be a connection id (see ws_list)"))?;
        let rt = crate::runtime().ok_or_else(|| {
            err(
                500,
                format!("{} is not running", crate::flavor::get().module),
            )
        })?;
        if rt.close(id, 1000, "closed by MI") {
            Ok(json!("OK"))
        } else {
            Err(err(404, format!("no connection {id}")))
        }
    })
}

/// Register the commands (a host older than ABI 1.1 has no MI: nothing to do).
pub(crate) fn register(host: HostApiRef) -> Result<(), String> {
    let Some(register) = host.register_mi() else {
        return Ok(());
    };
    let f = crate::flavor::get();
    let leak = |s: String| -> RStr<'static> { RStr::from_str(Box::leak(s.into_boxed_str())) };
    let aliases: &'static [RStr<'static>] =
        Box::leak(Box::new([leak(format!("{}:trace", f.name))]));
    static TRACE_PARAMS: [RStr<'static>; 1] = [RStr::from_str("trace_mode")];
    static CLOSE_PARAMS: [RStr<'static>; 1] = [RStr::from_str("id")];
    // tls_mgm owns `tls_list` (its domains): proto_tls lists and closes connections under
    // `tls_conn_list` / `tls_conn_close` (proto_tcp keeps `tcp_list`, as proto_ws `ws_list`).
    let (list, close) = if f.stream && f.tls {
        ("tls_conn_list".to_string(), "tls_conn_close".to_string())
    } else {
        (f.named("ws_list"), f.named("ws_close"))
    };
    let cmds = [
        MiCommand {
            name: leak(f.named("ws_trace")),
            aliases: RSlice::from_slice(aliases),
            help: leak(format!(
                "query or set {} tracing: {} [on|off]",
                f.hep_protocol,
                f.named("ws_trace")
            )),
            params: RSlice::from_slice(&TRACE_PARAMS),
            handler: ws_trace,
        },
        MiCommand {
            name: leak(list),
            aliases: RSlice::from_slice(&[]),
            help: leak(format!("open {} connections", f.hep_protocol)),
            params: RSlice::from_slice(&[]),
            handler: ws_list,
        },
        MiCommand {
            name: leak(close.clone()),
            aliases: RSlice::from_slice(&[]),
            help: leak(format!(
                "close a {} connection: {} ID",
                f.hep_protocol, close
            )),
            params: RSlice::from_slice(&CLOSE_PARAMS),
            handler: ws_close,
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
    use super::summary_json;
    use crate::driver::{ConnSummary, TlsSummary};
    use std::time::Duration;

    #[test]
    fn ws_list_shows_tls_version_and_cipher_only_for_tls_connections() {
        let mut c = ConnSummary {
            id: 7,
            peer: "192.0.2.1:50000".parse().unwrap(),
            local: "192.0.2.2:443".parse().unwrap(),
            age: Duration::from_secs(3),
            outbound: false,
            traced: false,
            state: "open",
            tls: None,
        };
        let plain = summary_json(&c);
        assert!(plain.get("tls_version").is_none() && plain.get("tls_cipher").is_none());
        assert_eq!(plain["state"], "open");
        c.tls = Some(TlsSummary {
            version: "TLSv1.3",
            cipher: "TLS_AES_128_GCM_SHA256",
        });
        let tls = summary_json(&c);
        assert_eq!(tls["tls_version"], "TLSv1.3");
        assert_eq!(tls["tls_cipher"], "TLS_AES_128_GCM_SHA256");
        assert_eq!(tls["id"], 7);
    }
}
