//! `proto_hep`: HEP (v3, v2) encoding and non-blocking shipping of traces to Homer-compatible
//! collectors, for sipcore.
//!
//! * [`codec`]: the HEP codec, pure code over bytes (HEP3 spec; HEPv1/v2).
//! * [`hep_id`]: the OpenSIPS `hep_id` grammar.
//! * [`sender`]: one background thread and a bounded queue per destination; never blocks.
//! * [`render`]: a transport-neutral trace record to one HEP packet.
//! * this file: the ABI glue: `modparam`s, the trace-sink table the host routes traces
//!   through, and the `hep_stats` MI command. Every exported function catches panics.
#![warn(missing_docs)]

pub mod codec;
pub mod hep_id;
pub mod render;
pub mod sender;

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, RNone, ROk, RResult, RSlice, RSome, RStr, RString},
};
use render::RenderCfg;
use sender::{Sender, SenderConfig};
use sipcore_abi::{
    catch_panic, HostApiRef, LogLevel, MiCommand, MiError, Module, ModuleRef, ParamEntry,
    ParamKind, ParamSpec, StatSink, TraceRecord, TraceSink, TraceSinkRef,
};
use std::sync::OnceLock;
use std::time::Duration;

const MODULE: &str = "proto_hep";

/// Everything built at `init`.
struct State {
    dests: Vec<Sender>,
    render: RenderCfg,
}

static STATE: OnceLock<State> = OnceLock::new();
static HOST: OnceLock<HostApiRef> = OnceLock::new();

const fn p(
    name: &'static str,
    kind: ParamKind,
    multi: bool,
    default: &'static str,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec {
        name: RStr::from_str(name),
        kind,
        multi,
        default: RStr::from_str(default),
        doc: RStr::from_str(doc),
    }
}
const I: ParamKind = ParamKind::INT;
const S: ParamKind = ParamKind::STR;

/// OpenSIPS's names; the last ones are accepted for compatibility and have no effect (our
/// sender is always asynchronous, with per-destination queues and backoff).
static PARAMS: [ParamSpec; 17] = [
    p(
        "hep_id",
        S,
        true,
        "",
        "[name]host[:port][;transport=udp|tcp][;version=2|3], repeatable",
    ),
    p(
        "hep_capture_id",
        I,
        false,
        "1",
        "capture agent id (chunk 0x000C)",
    ),
    p(
        "homer5_on",
        I,
        false,
        "1",
        "1: event payloads as delimiter-joined values; 0: JSON",
    ),
    p(
        "homer5_delim",
        S,
        false,
        ":",
        "delimiter of homer5 event payloads",
    ),
    p(
        "hep_auth_key",
        S,
        false,
        "",
        "HEPv3 authentication key (chunk 0x000E); empty = none",
    ),
    p(
        "hep_queue_len",
        I,
        false,
        "4096",
        "packets queued per destination before new ones are dropped",
    ),
    p(
        "hep_send_timeout",
        I,
        false,
        "100",
        "ms a TCP write may make no progress before reconnecting",
    ),
    p(
        "hep_connect_timeout",
        I,
        false,
        "1000",
        "ms for a TCP connect to the collector",
    ),
    p(
        "hep_port",
        I,
        false,
        "9060",
        "accepted for compatibility (no HEP listener is needed)",
    ),
    p(
        "hep_async",
        I,
        false,
        "1",
        "accepted for compatibility (sending is always asynchronous)",
    ),
    p(
        "hep_max_msg_chunks",
        I,
        false,
        "32",
        "accepted for compatibility",
    ),
    p(
        "hep_async_max_postponed_chunks",
        I,
        false,
        "32",
        "accepted for compatibility (see hep_queue_len)",
    ),
    p(
        "hep_async_local_write_timeout",
        I,
        false,
        "10",
        "accepted for compatibility",
    ),
    p(
        "compressed_payload",
        I,
        false,
        "0",
        "accepted for compatibility; only 0 is supported",
    ),
    p(
        "hep_max_retries",
        I,
        false,
        "5",
        "accepted for compatibility (per-destination backoff instead)",
    ),
    p(
        "hep_retry_cooldown",
        I,
        false,
        "3600",
        "accepted for compatibility",
    ),
    p(
        "hep_udp_gso",
        I,
        false,
        "1",
        "HEPv3 over UDP: send runs of similar packets in one call with UDP segmentation \
         offload (Linux), each padded to the run's size by a chunk collectors skip; 0 = one \
         datagram per packet",
    ),
];

fn log(level: LogLevel, msg: &str) {
    if let Some(h) = HOST.get() {
        (h.log())(
            level,
            RStr::from_str(MODULE),
            RStr::from_str(msg),
            RSlice::from_slice(&[]),
        );
    }
}

fn configure(params: &[ParamEntry<'_>]) -> Result<State, String> {
    let mut render = RenderCfg {
        homer5: true,
        delim: ":".into(),
        capture_id: 1,
        auth_key: String::new(),
    };
    let mut scfg = SenderConfig {
        tcp_write_timeout: Duration::from_millis(100),
        ..SenderConfig::default()
    };
    let mut ids = Vec::new();
    let ms = |v: i64, n: &str| {
        u64::try_from(v)
            .map(Duration::from_millis)
            .map_err(|_| format!("{n} must not be negative"))
    };
    for e in params {
        let (name, i, s) = (e.name.as_str(), e.int, e.str.as_str());
        match name {
            "hep_id" => ids.push(s.to_string()),
            "hep_capture_id" => {
                render.capture_id =
                    u32::try_from(i).map_err(|_| "hep_capture_id must be 0-4294967295")?
            }
            "homer5_on" => render.homer5 = i != 0,
            "homer5_delim" => render.delim = s.to_string(),
            "hep_auth_key" => render.auth_key = s.to_string(),
            "hep_queue_len" => {
                scfg.queue_len = usize::try_from(i)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("hep_queue_len must be positive")?
            }
            "hep_send_timeout" => scfg.tcp_write_timeout = ms(i, name)?,
            "hep_connect_timeout" => scfg.tcp_connect_timeout = ms(i, name)?,
            "hep_udp_gso" => scfg.udp_gso = i != 0,
            "compressed_payload" if i != 0 => {
                return Err("compressed_payload=1 is not supported".into())
            }
            _ => {}
        }
    }
    let parsed = hep_id::parse_many(ids.iter().map(String::as_str)).map_err(|e| e.to_string())?;
    let mut dests = Vec::with_capacity(parsed.len());
    for (dest, warning) in parsed {
        if let Some(w) = warning {
            log(LogLevel::WARN, &format!("hep_id [{}]: {w}", dest.name));
        }
        let text = dest.to_string();
        let version = dest.version;
        let who = text.clone();
        // Once per state change (issue 10): a dead or stalled collector is not silent.
        let report = Box::new(move |c: &sender::HealthChange| {
            let level = match c {
                sender::HealthChange::Failing { .. } => LogLevel::WARN,
                sender::HealthChange::Recovered { .. } => LogLevel::INFO,
            };
            log(level, &format!("HEP destination {who}: {c}"));
        });
        dests.push(
            Sender::with_reporter(dest, scfg, report).map_err(|e| format!("hep_id {text}: {e}"))?,
        );
        log(LogLevel::INFO, &format!("HEP destination {text}"));
        if version != codec::Version::V3 {
            log(
                LogLevel::INFO,
                &format!(
                    "HEP destination {text}: SIP captures only; connection events need version=3 \
                     (HEPv{} has no correlation id, so Homer would drop them)",
                    version.number()
                ),
            );
        }
    }
    Ok(State { dests, render })
}

extern "C" fn init(host: HostApiRef, params: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString> {
    let r = catch_panic(|| {
        let _ = HOST.set(host);
        let state = configure(params.as_slice())?;
        STATE
            .set(state)
            .map_err(|_| "proto_hep initialised twice".to_string())?;
        if let Some(register) = host.register_mi() {
            let cmd = MiCommand {
                name: RStr::from_str("hep_stats"),
                aliases: RSlice::from_slice(&[]),
                help: RStr::from_str("packets sent and dropped, per HEP destination"),
                params: RSlice::from_slice(&[]),
                handler: mi_hep_stats,
            };
            if let RErr(e) = register(&cmd) {
                return Err(format!("cannot register hep_stats: {e}"));
            }
        }
        Ok(())
    });
    match r {
        Ok(Ok(())) => ROk(()),
        Ok(Err(e)) => RErr(e.into()),
        Err(p) => RErr(format!("panicked in init: {p}").into()),
    }
}

extern "C" fn destroy() {
    // The senders live in a static, which is never dropped: `flush` (ABI 1.4), which the host
    // calls at shutdown before this, is what sends what they hold.
}

/// `Module::flush` (ABI 1.4): every destination's sender sends what it holds (UDP: all of it;
/// TCP: for up to `tcp_write_timeout`) and stops, all of them at once, within `ms`.
extern "C" fn flush(ms: u64) {
    let _ = catch_panic(|| {
        let Some(state) = STATE.get() else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_millis(ms);
        for s in &state.dests {
            s.begin_stop();
        }
        for s in &state.dests {
            if !s.wait_stopped(deadline) {
                log(
                    LogLevel::WARN,
                    &format!(
                        "HEP destination {}: still sending at shutdown_timeout; the rest is lost",
                        s.dest().name
                    ),
                );
            }
        }
    });
}

extern "C" fn dest_id(name: RStr<'_>) -> i32 {
    catch_panic(|| {
        STATE
            .get()
            .and_then(|s| s.dests.iter().position(|d| d.dest().name == name.as_str()))
            .map_or(-1, |i| i as i32)
    })
    .unwrap_or(-1)
}

extern "C" fn send(dest: i32, rec: &TraceRecord<'_>) -> bool {
    catch_panic(|| {
        let Some(state) = STATE.get() else {
            return false;
        };
        let Some(sender) = usize::try_from(dest).ok().and_then(|i| state.dests.get(i)) else {
            return false;
        };
        let version = sender.dest().version;
        if !render::carries(rec, version) {
            // Not for this destination by design (events over HEPv1/v2): nothing was lost.
            return true;
        }
        // Rendered straight into this thread's batch of the destination's queue.
        sender.send_with(|out| render::encode(rec, version, &state.render, out).is_ok())
    })
    .unwrap_or(false)
}

extern "C" fn mi_hep_stats(_params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError> {
    let r = catch_panic(|| {
        let dests: Vec<serde_json::Value> = STATE.get().map_or_else(Vec::new, |s| {
            s.dests
                .iter()
                .map(|d| {
                    let st = d.stats();
                    serde_json::json!({
                        "name": d.dest().name,
                        "destination": d.dest().to_string(),
                        "sent": st.sent,
                        "dropped": st.dropped,
                        "errors": st.errors,
                        "connects": st.connects,
                        "connected": st.connected,
                    })
                })
                .collect()
        });
        let sent: u64 = dests.iter().filter_map(|d| d["sent"].as_u64()).sum();
        let dropped: u64 = dests.iter().filter_map(|d| d["dropped"].as_u64()).sum();
        serde_json::json!({"sent": sent, "dropped": dropped, "destinations": dests}).to_string()
    });
    match r {
        Ok(s) => ROk(s.into()),
        Err(p) => RErr(MiError {
            code: -32603,
            message: format!("hep_stats panicked: {p}").into(),
        }),
    }
}

/// ABI 1.5 `Module::stats`, group `hep`: `sent` and `dropped` over every destination, then
/// per destination `<name>-sent`, `<name>-dropped`, `<name>-errors` (counters) and
/// `<name>-connected` (gauge, 0/1), named by the `hep_id` name as usrloc names its per-table
/// statistics (`location-users`).
extern "C" fn report_stats(out: &StatSink) {
    let _ = catch_panic(|| {
        let Some(state) = STATE.get() else {
            return;
        };
        let all: Vec<_> = state
            .dests
            .iter()
            .map(|d| (d.dest().name.clone(), d.stats()))
            .collect();
        let sent = all.iter().map(|(_, s)| s.sent).sum();
        let dropped = all.iter().map(|(_, s)| s.dropped).sum();
        out.report(
            "hep",
            "sent",
            sent,
            false,
            "HEP packets sent, all destinations",
        );
        out.report(
            "hep",
            "dropped",
            dropped,
            false,
            "HEP packets dropped, all destinations",
        );
        for (name, st) in &all {
            let per = [
                (
                    "sent",
                    st.sent,
                    false,
                    "HEP packets sent to this destination",
                ),
                (
                    "dropped",
                    st.dropped,
                    false,
                    "HEP packets dropped for this destination",
                ),
                (
                    "errors",
                    st.errors,
                    false,
                    "I/O failures of this HEP destination",
                ),
                (
                    "connected",
                    u64::from(st.connected),
                    true,
                    "1 while this HEP destination is connected",
                ),
            ];
            for (what, v, gauge, help) in per {
                out.report("hep", &format!("{name}-{what}"), v, gauge, help);
            }
        }
    });
}

fn sink() -> TraceSinkRef {
    TraceSink { dest_id, send }.leak_into_prefix()
}

fn root_module() -> ModuleRef {
    Module {
        name: RStr::from_str(MODULE),
        version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        params: RSlice::from_slice(&PARAMS),
        init,
        destroy,
        transport: RNone,
        trace_sink: RSome(sink()),
        flush: RSome(flush as extern "C" fn(u64)),
        stats: RSome(report_stats),
    }
    .leak_into_prefix()
}

sipcore_abi::export_module!(root_module);
