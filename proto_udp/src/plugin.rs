//! The ABI glue: `modparam`s into a [`UdpConfig`], `socket=udp:` lines into
//! [`ListenerPlan`]s, and the exported functions of the `Module` and `Transport` tables,
//! each catching panics (nothing unwinds across the ABI).
use crate::params::{self, UdpConfig};
use crate::runtime::{ListenerPlan, Runtime};
use crate::trace::{Tracer, TRACE_ON};
use crate::worker::{log_via, Shared};
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, RNone, ROk, RResult, RSlice, RSome, RStr, RString},
};
use sipcore_abi::{
    catch_panic, HostApiRef, ListenerSpec, LogLevel, Module, ModuleRef, ParamEntry, Proto,
    ProtoSpec, SendError, SendTarget, StatSink, Transport, TransportRef,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Configuration gathered between `init` and `start`.
struct Pending {
    cfg: UdpConfig,
    listeners: Vec<ListenerPlan>,
}

static HOST: OnceLock<HostApiRef> = OnceLock::new();
static PENDING: Mutex<Option<Pending>> = Mutex::new(None);
static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// `udp_port`, readable without the lock once `init` ran.
static PORT: OnceLock<u16> = OnceLock::new();

/// How long `stop` (without the host's deadline) waits for the threads.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running transport (for the MI commands).
pub(crate) fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

fn log(level: LogLevel, msg: &str) {
    if let Some(h) = HOST.get() {
        log_via(*h, level, msg, &[]);
    }
}

/// Run an exported function's body, turning a panic into an error result.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> RResult<T, RString> {
    match catch_panic(f) {
        Ok(Ok(v)) => ROk(v),
        Ok(Err(e)) => RErr(RString::from(e)),
        Err(p) => {
            let msg = format!("panicked in {what}: {p}");
            log(LogLevel::CRIT, &msg);
            RErr(RString::from(msg))
        }
    }
}

fn pending() -> std::sync::MutexGuard<'static, Option<Pending>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

extern "C" fn init(host: HostApiRef, params: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString> {
    guarded("init", || {
        let _ = HOST.set(host);
        let cfg = params::config_from(params.as_slice()).map_err(|e| e.to_string())?;
        let _ = PORT.set(cfg.port);
        TRACE_ON.store(cfg.trace.on, Ordering::Relaxed);
        crate::mi::register(host)?;
        *pending() = Some(Pending {
            cfg,
            listeners: Vec::new(),
        });
        Ok(())
    })
}

extern "C" fn destroy() {
    stop();
}

extern "C" fn default_port(_proto: Proto) -> u16 {
    catch_panic(|| PORT.get().copied().unwrap_or(params::SIP_PORT)).unwrap_or(params::SIP_PORT)
}

extern "C" fn add_listener(spec: &ListenerSpec<'_>) -> RResult<(), RString> {
    guarded("add_listener", || {
        let addr = spec
            .addr
            .to_std()
            .ok_or_else(|| "listener without an address".to_string())?;
        if addr.port() == 0 {
            return Err("a udp socket needs a port".into());
        }
        let workers = spec.workers as usize;
        if workers > params::MAX_WORKERS {
            return Err(format!(
                "use_workers {workers}: at most {} for udp",
                params::MAX_WORKERS
            ));
        }
        let mut p = pending();
        let p = p.as_mut().ok_or("add_listener before init")?;
        p.listeners.push(ListenerPlan {
            id: spec.id,
            addr,
            workers,
            reuse_port: spec.reuse_port,
            advertised: spec.advertised.as_str().to_string(),
            tag: spec.tag.as_str().to_string(),
        });
        Ok(())
    })
}

extern "C" fn start() -> RResult<(), RString> {
    guarded("start", || {
        let host = *HOST.get().ok_or("start before init")?;
        let p = pending()
            .take()
            .ok_or("start called twice or before init")?;
        // Trace destinations and routes resolve now that every module is initialised.
        let t = &p.cfg.trace;
        let tracer = Tracer::new(host, t.destination.as_deref(), t.filter_route.as_deref())
            .map_err(|e| e.to_string())?;
        let default_workers = match p.cfg.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let shared = Shared {
            host,
            tracer,
            max_msg_size: p.cfg.max_msg_size,
            stopping: AtomicBool::new(false),
        };
        let rt = Runtime::bind(shared, p.listeners, default_workers, p.cfg.spread)
            .map_err(|e| e.to_string())?;
        // Reachable before its workers run: a worker delivers as soon as a datagram arrives,
        // and the host's answer goes out through `RUNTIME` (set after the threads started, an
        // answer in between was refused with "transport not running").
        RUNTIME
            .set(rt)
            .map_err(|_| "proto_udp started twice".to_string())?;
        let rt = RUNTIME.get().ok_or("proto_udp runtime missing")?;
        rt.spawn_workers().map_err(|e| e.to_string())
    })
}

fn send_guarded(what: &str, target: &SendTarget, data: &[u8]) -> RResult<u64, SendError> {
    match catch_panic(|| match RUNTIME.get() {
        Some(rt) => rt.send(target, data),
        None => Err(SendError::INTERNAL),
    }) {
        Ok(Ok(id)) => ROk(id),
        Ok(Err(e)) => RErr(e),
        Err(p) => {
            log(LogLevel::CRIT, &format!("panicked in {what}: {p}"));
            RErr(SendError::INTERNAL)
        }
    }
}

extern "C" fn send(target: &SendTarget, data: RSlice<'_, u8>) -> RResult<u64, SendError> {
    send_guarded("send", target, data.as_slice())
}

/// `Transport::send_named` (ABI 1.3): as `send`; UDP opens no connection, so the name
/// the destination was located from changes nothing.
extern "C" fn send_named(
    target: &SendTarget,
    _host: RStr<'_>,
    data: RSlice<'_, u8>,
) -> RResult<u64, SendError> {
    send_guarded("send_named", target, data.as_slice())
}

/// `Transport::keep_until` (ABI 1.2): there are no connections to keep (and nothing here
/// can panic, so there is nothing to catch).
extern "C" fn keep_until(_conn_id: u64, _secs: u32) -> bool {
    false
}

extern "C" fn stop() {
    stop_within(STOP_WAIT.as_millis() as u64);
}

/// `Transport::stop_within` (ABI 1.4): nothing is queued over UDP; the threads stop at once
/// and are waited for up to `ms`.
extern "C" fn stop_within(ms: u64) {
    let _ = catch_panic(|| {
        if let Some(rt) = RUNTIME.get() {
            rt.stop_within(Duration::from_millis(ms));
        }
    });
}

/// ABI 1.5 `Module::stats`: the `udp` group.
extern "C" fn report_stats(sink: &StatSink) {
    let _ = catch_panic(|| crate::stats::report(sink));
}

fn transport() -> TransportRef {
    static PROTOS: [ProtoSpec; 1] = [ProtoSpec {
        proto: Proto::UDP,
        name: RStr::from_str("udp"),
    }];
    Transport {
        protos: RSlice::from_slice(&PROTOS),
        default_port,
        add_listener,
        start,
        send,
        stop,
        keep_until,
        tls_reload: RNone,
        send_named,
        stop_within,
    }
    .leak_into_prefix()
}

/// The root module (what `export_module!` exports).
pub fn root_module() -> ModuleRef {
    Module {
        name: RStr::from_str("proto_udp"),
        version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        params: RSlice::from_slice(&params::PARAMS),
        init,
        destroy,
        transport: RSome(transport()),
        trace_sink: RNone,
        flush: RNone,
        stats: RSome(report_stats),
    }
    .leak_into_prefix()
}
