//! The host's side of the plugin ABI ([`HostApi`]): delivery, logging, and the 1.1 callbacks
//! (trace destinations, script routes run by plugins, MI command registration, connection
//! events). Every callback catches panics: nothing unwinds into a plugin.
use super::env::{addr_ip, addr_port, is_myself, script_level, socket_field};
use super::SocketInfo;
use crate::script::{Env, FuncId, LogLevel, Outcome, Pv, Value};
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, ROk, RResult, RStr, RString},
};
use sipcore_abi::{
    catch_panic, HostApi, HostApiRef, MiCommand, MiError, Proto, RouteCtx, RouteOutcome,
    TraceRecord, TraceSinkRef,
};
use std::sync::{Mutex, OnceLock};

/// The table handed to every plugin's `init`.
pub fn host_api() -> HostApiRef {
    HostApi {
        deliver: super::host_deliver,
        log: crate::log::host_log,
        trace_dest,
        trace,
        route_id,
        run_route,
        register_mi,
        conn_closed,
        tls_params: crate::tls_mgm::tls_params,
    }
    .leak_into_prefix()
}

static SINKS: OnceLock<Vec<TraceSinkRef>> = OnceLock::new();

/// Publish the trace sinks of the loaded modules (after their `init`, before `start`).
pub fn set_trace_sinks(sinks: Vec<TraceSinkRef>) {
    let _ = SINKS.set(sinks);
}

extern "C" fn trace_dest(name: RStr<'_>) -> i64 {
    catch_panic(|| {
        let sinks = SINKS.get()?;
        sinks.iter().enumerate().find_map(|(i, s)| {
            let id = (s.dest_id())(name);
            (id >= 0).then(|| ((i as i64) << 32) | i64::from(id))
        })
    })
    .ok()
    .flatten()
    .unwrap_or(-1)
}

extern "C" fn trace(dest: i64, rec: &TraceRecord<'_>) -> bool {
    if dest < 0 {
        return false;
    }
    catch_panic(|| {
        let sink = SINKS.get()?.get((dest >> 32) as usize)?;
        Some((sink.send())(dest as i32, rec))
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

extern "C" fn route_id(name: RStr<'_>) -> i32 {
    catch_panic(|| {
        super::script()
            .and_then(|s| s.route_by_name(name.as_str()))
            .map_or(-1, |r| i32::from(r.index()))
    })
    .unwrap_or(-1)
}

extern "C" fn run_route(route: i32, ctx: &RouteCtx) -> RouteOutcome {
    let res = catch_panic(|| {
        let script = super::script()?;
        let r = u16::try_from(route)
            .ok()
            .and_then(|i| script.route_from_index(i))?;
        let empty: &[SocketInfo] = &[];
        let sockets = super::CORE.get().map_or(empty, |c| &c.sockets[..]);
        let mut env = CtxEnv { ctx, sockets };
        Some(match script.run(r, &mut env) {
            Outcome::Drop => RouteOutcome::DROP,
            _ => RouteOutcome::DONE,
        })
    });
    match res {
        Ok(Some(o)) => o,
        Ok(None) => RouteOutcome::ERROR,
        Err(p) => {
            crate::log!(Critical, "core", "panic in a route run for a plugin: {}", p);
            RouteOutcome::ERROR
        }
    }
}

/// The environment of a route run for a connection (no SIP message): `$si $sp $proto
/// $socket_in(...) $Ri $Rp` and `xlog`.
struct CtxEnv<'a> {
    ctx: &'a RouteCtx,
    sockets: &'a [SocketInfo],
}

impl Env for CtxEnv<'_> {
    fn pv_get(&mut self, pv: &Pv) -> Value<'_> {
        let local = self.ctx.local.to_std();
        match pv {
            Pv::SrcIp => addr_ip(self.ctx.peer.to_std()),
            Pv::SrcPort => addr_port(self.ctx.peer.to_std()),
            Pv::RecvIp => addr_ip(local),
            Pv::RecvPort => addr_port(local),
            Pv::Proto => Value::str(self.ctx.proto.name()),
            Pv::SocketIn(f) => {
                socket_field(self.sockets, self.ctx.proto, local, self.ctx.listener, *f)
            }
            _ => Value::Null,
        }
    }

    fn pv_set(&mut self, pv: &Pv, _v: Value<'_>) -> Result<(), String> {
        Err(format!("{pv:?} cannot be assigned in a connection route"))
    }

    fn call(&mut self, f: FuncId, _args: &[Value<'_>]) -> i64 {
        crate::log!(
            Error,
            "script",
            "function #{} needs a SIP message; not available in a connection route",
            f.0
        );
        -1
    }

    fn log(&mut self, level: LogLevel, text: &str) {
        crate::log::record_at(script_level(level), "script", text, &[]);
    }

    fn log_enabled(&self, level: LogLevel) -> bool {
        crate::log::enabled_at(script_level(level))
    }

    fn is_myself(&mut self, v: &Value<'_>) -> bool {
        is_myself(self.sockets, v)
    }
}

/// An MI command a plugin registered, owned by the host.
#[derive(Clone)]
pub struct PluginMi {
    /// Name.
    pub name: String,
    /// Aliases.
    pub aliases: Vec<String>,
    /// Help line.
    pub help: String,
    /// Parameter names in position order.
    pub params: Vec<String>,
    /// The plugin's handler.
    pub handler:
        extern "C" fn(abi_stable::std_types::RSlice<'_, RStr<'_>>) -> RResult<RString, MiError>,
}

static PLUGIN_MI: Mutex<Vec<PluginMi>> = Mutex::new(Vec::new());

/// The MI commands plugins registered so far.
pub fn plugin_mi_commands() -> Vec<PluginMi> {
    PLUGIN_MI.lock().map(|v| v.clone()).unwrap_or_default()
}

extern "C" fn register_mi(cmd: &MiCommand<'_>) -> RResult<(), RString> {
    let r = catch_panic(|| {
        let mut all = PLUGIN_MI.lock().map_err(|e| e.to_string())?;
        let name = cmd.name.as_str();
        let taken = |n: &str| {
            all.iter()
                .any(|c| c.name == n || c.aliases.iter().any(|a| a == n))
        };
        if taken(name) || cmd.aliases.iter().any(|a| taken(a.as_str())) {
            return Err(format!("MI command '{name}' is already registered"));
        }
        all.push(PluginMi {
            name: name.to_string(),
            aliases: cmd.aliases.iter().map(|a| a.as_str().to_string()).collect(),
            help: cmd.help.as_str().to_string(),
            params: cmd.params.iter().map(|a| a.as_str().to_string()).collect(),
            handler: cmd.handler,
        });
        Ok(())
    });
    match r {
        Ok(Ok(())) => ROk(()),
        Ok(Err(e)) | Err(e) => RErr(RString::from(e)),
    }
}

extern "C" fn conn_closed(proto: Proto, conn_id: u64) {
    let _ = catch_panic(|| super::connection_closed(proto, conn_id));
}

/// Add the plugins' MI commands to `registry`: named parameters are mapped to the positions
/// the plugin declared, every value is passed as text, and the plugin's JSON answer is parsed
/// back (a plugin error keeps its code, as OpenSIPS's 400/500 answers).
pub fn register_plugin_mi(registry: &crate::mi::Registry) -> Result<(), String> {
    use crate::mi::{Key, MiError as HostMiError, Params};
    use std::sync::Arc;
    for cmd in plugin_mi_commands() {
        let names = cmd.params.clone();
        let handler = cmd.handler;
        let name = cmd.name.clone();
        let f = move |p: &Params<'_>| -> Result<serde_json::Value, HostMiError> {
            let mut values: Vec<String> = Vec::new();
            let max = names.len().max(p.len());
            for i in 0..max {
                let key = match names.get(i) {
                    Some(n) => Key::Either(i, n.as_str()),
                    None => Key::Pos(i),
                };
                match p.get(key) {
                    Some(serde_json::Value::String(s)) => values.push(s.clone()),
                    Some(serde_json::Value::Null) | None => break,
                    Some(other) => values.push(other.to_string()),
                }
            }
            p.at_most(names.len().max(values.len()))?;
            let rstrs: Vec<RStr<'_>> = values.iter().map(|v| RStr::from_str(v)).collect();
            match handler(abi_stable::std_types::RSlice::from_slice(&rstrs)) {
                ROk(json) => serde_json::from_str(json.as_str()).map_err(|e| {
                    HostMiError::Internal(format!("{name}: plugin answered invalid JSON: {e}"))
                }),
                RErr(e) => Err(HostMiError::custom(i64::from(e.code), e.message.as_str())),
            }
        };
        registry
            .register(&cmd.name, &cmd.help, Arc::new(f))
            .map_err(|e| format!("MI command {}: {e}", cmd.name))?;
        for a in &cmd.aliases {
            registry
                .register_alias(a, &cmd.name)
                .map_err(|e| format!("MI alias {a}: {e}"))?;
        }
    }
    Ok(())
}
