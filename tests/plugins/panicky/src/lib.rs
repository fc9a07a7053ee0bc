//! A plugin whose exported functions panic on request (`modparam("panicky", "panic_on", "init")`
//! or `"start"`). It guards every export the way real plugins do, so the panic is caught inside
//! the plugin and reported to the host as an error instead of unwinding across the ABI.
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RErr, ROk, RResult, RSlice, RSome, RStr, RString},
};
use sipcore_abi::{
    catch_panic, HostApiRef, ListenerSpec, Module, ModuleRef, ParamEntry, ParamKind, ParamSpec,
    Proto, ProtoSpec, SendError, SendTarget, Transport, TransportRef,
};
use std::sync::Mutex;

static PANIC_ON: Mutex<String> = Mutex::new(String::new());

fn guarded(what: &str, f: impl FnOnce()) -> RResult<(), RString> {
    match catch_panic(f) {
        Ok(()) => ROk(()),
        Err(msg) => RErr(RString::from(format!("panicked in {what}: {msg}"))),
    }
}

fn maybe_panic(point: &str) {
    if *PANIC_ON.lock().unwrap() == point {
        panic!("deliberate test panic at {point}");
    }
}

extern "C" fn init(_: HostApiRef, params: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString> {
    guarded("init", || {
        for p in params.iter() {
            if p.name.as_str() == "panic_on" {
                *PANIC_ON.lock().unwrap() = p.str.to_string();
            }
        }
        maybe_panic("init");
    })
}
extern "C" fn destroy() {}
extern "C" fn default_port(_: Proto) -> u16 {
    5060
}
extern "C" fn add_listener(_: &ListenerSpec<'_>) -> RResult<(), RString> {
    ROk(())
}
extern "C" fn start() -> RResult<(), RString> {
    guarded("start", || maybe_panic("start"))
}
extern "C" fn send(_: &SendTarget, _: RSlice<'_, u8>) -> RResult<u64, SendError> {
    RErr(SendError::UNSUPPORTED)
}
extern "C" fn stop() {}

static PARAMS: [ParamSpec; 1] = [ParamSpec {
    name: RStr::from_str("panic_on"),
    kind: ParamKind::STR,
    multi: false,
    default: RStr::from_str(""),
    doc: RStr::from_str("init or start: where to panic"),
}];
static PROTOS: [ProtoSpec; 1] = [ProtoSpec {
    proto: Proto::TCP,
    name: RStr::from_str("tcp"),
}];

extern "C" fn send_named(
    t: &SendTarget,
    _: RStr<'_>,
    data: RSlice<'_, u8>,
) -> RResult<u64, SendError> {
    send(t, data)
}

extern "C" fn keep_until(_: u64, _: u32) -> bool {
    false
}

extern "C" fn stop_within(_: u64) {
    stop()
}

fn transport() -> TransportRef {
    Transport {
        protos: RSlice::from_slice(&PROTOS),
        default_port,
        add_listener,
        start,
        send,
        stop,
        keep_until,
        tls_reload: abi_stable::std_types::RNone,
        send_named,
        stop_within,
    }
    .leak_into_prefix()
}

fn root() -> ModuleRef {
    Module {
        name: RStr::from_str("panicky"),
        version: RStr::from_str("0.0.0"),
        params: RSlice::from_slice(&PARAMS),
        init,
        destroy,
        transport: RSome(transport()),
        trace_sink: abi_stable::std_types::RNone,
        flush: abi_stable::std_types::RNone,
        stats: abi_stable::std_types::RNone,
    }
    .leak_into_prefix()
}

sipcore_abi::export_module!(root);
