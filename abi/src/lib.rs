//! The stable interface between the `sipcore` host and its plugins (`proto_ws.so`, `proto_hep.so`).
//!
//! Everything here is `#[repr(C)]` and derives [`StableAbi`], so `abi_stable` checks at load time that
//! host and plugin agree on every layout. Nothing async, no allocator and no logger crosses this
//! boundary: buffers are borrowed for the duration of a call ([`RSlice`], [`RStr`]) and the callee
//! copies what it keeps.
//!
//! # Version rule (how this interface may change)
//! * The crate version is the ABI version ([`ABI_MAJOR`].[`ABI_MINOR`]). A plugin is accepted when
//!   its major equals the host's; the minor may differ in either direction (abi_stable's layout
//!   check accepts a newer plugin; for an older one, whose stamp says so, the host's loader
//!   checks that the plugin's tables are a prefix of its own).
//! * 1.2 appended [`Transport::keep_until`].
//! * 1.3 appended [`HostApi::tls_params`], [`Transport::tls_reload`] and
//!   [`Transport::send_named`] (TLS transports).
//! * 1.4 appended [`Transport::stop_within`] and [`Module::flush`] (graceful shutdown within
//!   the host's `shutdown_timeout`).
//! * 1.5 appended [`Module::stats`] (a plugin's statistics, for MI `get_statistics` and
//!   `/metrics`).
//! * Function tables ([`Module`], [`Transport`], [`HostApi`]) are abi_stable *prefix types*. A minor
//!   version may only **append** fields after the last one; it never removes, reorders, renames or
//!   retypes a field, and never changes a struct that is passed by value or by reference.
//!   Appended fields are read through accessors that return `Option`, so a host built later sees
//!   `None` for a table an older plugin lacks, and an older plugin simply never calls what it does
//!   not know. New kinds of tables (trace sink, MI commands, routes) are added the same way: as an
//!   appended `ROption<NewTable_Ref>` field of [`Module`] or an appended callback of [`HostApi`].
//! * Anything else (a changed field, a changed argument) is a major bump: `abi_stable` and the
//!   loader's [`AbiStamp`] check then refuse old plugins with a message naming both versions.
//! * Every function a plugin exports catches panics ([`catch_panic`]); nothing unwinds across.
#![warn(missing_docs)]

pub use abi_stable;
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
    sabi_types::VersionStrings,
    std_types::{ROption, RResult, RSlice, RStr, RString},
    StableAbi,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

mod ext;
mod types;
pub use ext::*;
pub use types::*;

/// Major version of this ABI; must be equal in host and plugin.
pub const ABI_MAJOR: u32 = 1;
/// Minor version of this ABI; informative (tables grow by appending).
pub const ABI_MINOR: u32 = 5;
/// Magic bytes at the start of [`AbiStamp`], marking a sipcore plugin.
pub const ABI_MAGIC: [u8; 8] = *b"SIPCORE\0";
/// Name of the exported symbol holding a plugin's [`AbiStamp`].
pub const ABI_STAMP_SYMBOL: &[u8] = b"sipcore_module_abi\0";

/// Plain C stamp every plugin exports as `sipcore_module_abi` (see [`export_module!`]).
///
/// The loader reads it with `dlsym` *before* handing the library to abi_stable, so a library that
/// is not ours, or one built for another major ABI, is refused with a precise message and none of
/// its code runs.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiStamp {
    /// Always [`ABI_MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] of the abi crate the plugin was built with.
    pub major: u32,
    /// [`ABI_MINOR`] of the abi crate the plugin was built with.
    pub minor: u32,
}

impl AbiStamp {
    /// The stamp of this build of the abi crate.
    pub const CURRENT: AbiStamp = AbiStamp {
        magic: ABI_MAGIC,
        major: ABI_MAJOR,
        minor: ABI_MINOR,
    };
}

/// The root module every plugin exports (its "exports" structure, as in OpenSIPS).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModuleRef)))]
#[sabi(missing_field(option))]
pub struct Module {
    /// Module name used by `modparam("name", ...)`, e.g. `proto_ws`.
    pub name: RStr<'static>,
    /// The plugin's own crate version, for logs.
    pub version: RStr<'static>,
    /// Parameters the module accepts; the host checks `modparam` lines against them.
    pub params: RSlice<'static, ParamSpec>,
    /// Called once, before any other function, with the host's callbacks and the `modparam`
    /// values in file order. An `Err` stops startup with its text.
    pub init:
        extern "C" fn(host: HostApiRef, params: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString>,
    /// Called once at shutdown; the module stops its threads.
    pub destroy: extern "C" fn(),
    /// The transport table, for `proto_*` modules that carry SIP.
    #[sabi(last_prefix_field)]
    pub transport: ROption<TransportRef>,
    /// (1.1) The trace-sink table, for modules that ship traces (proto_hep).
    pub trace_sink: ROption<TraceSinkRef>,
    /// (1.4) Send what the module still has queued (proto_hep: trace packets) within `ms`
    /// milliseconds and stop its threads; what is left after that is dropped (and counted).
    /// The host calls it at shutdown after stopping every transport (whose closing connections
    /// are traced) and before `destroy`. Modules with nothing queued leave it out (`None`).
    pub flush: ROption<extern "C" fn(ms: u64)>,
    /// (1.5) Report the module's statistics through the [`StatSink`], one [`StatRecord`] each,
    /// before returning. The host calls
    /// it when asked for statistics (MI `get_statistics`, `GET /metrics`), never on the message
    /// path. `None`: the module has no statistics.
    pub stats: ROption<extern "C" fn(sink: &StatSink)>,
}

impl RootModule for ModuleRef {
    declare_root_module_statics! {ModuleRef}
    const BASE_NAME: &'static str = "sipcore_module";
    const NAME: &'static str = "sipcore_module";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// A transport plugin's function table (OpenSIPS `api_proto` + `proto_info`).
///
/// All functions may be called from any thread once `start` returned; `send` never blocks.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = TransportRef)))]
#[sabi(missing_field(option))]
pub struct Transport {
    /// Protocols this transport serves, e.g. `ws`.
    pub protos: RSlice<'static, ProtoSpec>,
    /// Port used for a `socket=` line of this protocol without a port (after `init`, so a
    /// parameter such as `ws_port` is taken into account).
    pub default_port: extern "C" fn(proto: Proto) -> u16,
    /// Declare a listening socket (from a `socket=` line). Called after `init`, before `start`.
    pub add_listener: extern "C" fn(spec: &ListenerSpec<'_>) -> RResult<(), RString>,
    /// Bind the listeners and start the I/O threads.
    pub start: extern "C" fn() -> RResult<(), RString>,
    /// Queue one SIP message for sending. Returns the id of the connection it was queued on.
    pub send: extern "C" fn(target: &SendTarget, data: RSlice<'_, u8>) -> RResult<u64, SendError>,
    /// Stop the I/O threads and close every connection.
    #[sabi(last_prefix_field)]
    pub stop: extern "C" fn(),
    /// (1.2) Keep connection `conn_id` open for at least `secs` seconds from now even if it is
    /// idle: an earlier keep is extended, never shortened; `0` gives it back the normal idle
    /// lifetime. `false` when there is no such (open) connection.
    ///
    /// The registrar calls it after a REGISTER over a connection with the longest expiry the
    /// connection's bindings keep (RFC 5626 §4.4: a registered flow stays open while its client
    /// only sends CRLF keep-alives; OpenSIPS registrar's `tcp_persistent_flag`). Keep-alive
    /// pings and every other limit still apply. Read it through the `Option` accessor: a 1.1
    /// plugin lacks it.
    pub keep_until: extern "C" fn(conn_id: u64, secs: u32) -> bool,
    /// (1.3) A TLS transport reads its certificate files again (MI `tls_reload`, OpenSIPS
    /// tls_mgm): established connections keep the contexts they started with, new handshakes
    /// use the new ones. `Ok` carries a short summary for the MI answer; on `Err` the old
    /// contexts stay in use. Transports without TLS leave it out (`None`).
    pub tls_reload: ROption<extern "C" fn() -> RResult<RString, RString>>,
    /// (1.3) As [`Transport::send`], to a destination named `host` (the URI host `dst` was
    /// resolved from, RFC 3263): a connection it opens carries the name (TLS SNI and the
    /// server certificate checked against it, RFC 5922 §7.2; the WebSocket `Host`), and only a
    /// connection opened for the same name is reused. An IP literal names the address itself.
    pub send_named: extern "C" fn(
        target: &SendTarget,
        host: RStr<'_>,
        data: RSlice<'_, u8>,
    ) -> RResult<u64, SendError>,
    /// (1.4) As [`Transport::stop`], giving the open connections up to `ms` milliseconds to
    /// send what is queued for them and finish their closing handshakes (WebSocket Close 1001,
    /// RFC 6455 §7.4.1 "going away"); connections still open then are cut. Returns when the
    /// transport's threads are done, within about `ms`.
    pub stop_within: extern "C" fn(ms: u64),
}

/// Callbacks the host gives every plugin at `init`. Callable from any plugin thread.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = HostApiRef)))]
#[sabi(missing_field(option))]
pub struct HostApi {
    /// Hand one complete received message (a SIP request or reply) to the core. The call runs
    /// the routing script on the calling thread and returns when it is done.
    pub deliver: extern "C" fn(info: &ReceiveInfo, msg: RSlice<'_, u8>),
    /// Log one record through the host's drain.
    #[sabi(last_prefix_field)]
    pub log:
        extern "C" fn(level: LogLevel, module: RStr<'_>, msg: RStr<'_>, kv: RSlice<'_, LogKv<'_>>),
    /// (1.1) Resolve a trace destination by name (e.g. `hep_dest` of proto_hep's `hep_id`) to
    /// a handle for [`HostApi::trace`], or -1. Valid from `start` on.
    pub trace_dest: extern "C" fn(name: RStr<'_>) -> i64,
    /// (1.1) Send a record to a destination handle. Never blocks; `false` if dropped.
    pub trace: extern "C" fn(dest: i64, rec: &TraceRecord<'_>) -> bool,
    /// (1.1) The id of a named request route (`route[name]`), or -1. Valid from `init` on.
    pub route_id: extern "C" fn(name: RStr<'_>) -> i32,
    /// (1.1) Run a route with a small context on the calling thread.
    pub run_route: extern "C" fn(route: i32, ctx: &RouteCtx) -> RouteOutcome,
    /// (1.1) Register an MI command (during `init`).
    pub register_mi: extern "C" fn(cmd: &MiCommand<'_>) -> RResult<(), RString>,
    /// (1.1) A connection is gone: the core forgets what it bound to it (registrar contacts,
    /// relay state).
    pub conn_closed: extern "C" fn(proto: Proto, conn_id: u64),
    /// (1.3) The `modparam("tls_mgm", NAME, VALUE)` lines in file order, already checked and
    /// loaded by the host at startup (a TLS transport builds its contexts from them with
    /// `sipcore_tls`). Valid from `init` on; the strings live as long as the process.
    pub tls_params: extern "C" fn() -> RSlice<'static, Setting<'static>>,
}

/// Run `f`, turning a panic into `Err(message)` so that it never unwinds across the ABI.
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        if let Some(s) = p.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = p.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        }
    })
}

impl SockAddr {
    /// The "no address" value.
    pub const NONE: SockAddr = SockAddr {
        family: 0,
        port: 0,
        ip: [0; 16],
    };

    /// Convert to a std address; `None` for [`SockAddr::NONE`].
    pub fn to_std(&self) -> Option<SocketAddr> {
        match self.family {
            4 => {
                let [a, b, c, d, ..] = self.ip;
                Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                    self.port,
                ))
            }
            6 => Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(self.ip)),
                self.port,
            )),
            _ => None,
        }
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> Self {
        let mut ip = [0u8; 16];
        let family = match a.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                4
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                6
            }
        };
        SockAddr {
            family,
            port: a.port(),
            ip,
        }
    }
}

/// Export a plugin's root module and its [`AbiStamp`].
///
/// `$ctor` is a function returning the [`ModuleRef`] (usually `Module { .. }.leak_into_prefix()`).
/// The plugin crate must depend on `abi_stable` directly (the attribute macro names it).
#[macro_export]
macro_rules! export_module {
    ($ctor:path) => {
        /// ABI stamp read by the sipcore loader before anything else.
        #[no_mangle]
        pub static sipcore_module_abi: $crate::AbiStamp = $crate::AbiStamp::CURRENT;

        /// abi_stable's root module export (in a module so that the items it generates
        /// are covered by the `allow`).
        #[allow(missing_docs)]
        #[doc(hidden)]
        pub mod __sipcore_root_module {
            use super::*;
            #[::abi_stable::export_root_module]
            pub fn sipcore_root_module() -> $crate::ModuleRef {
                $ctor()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trips() {
        for s in ["127.0.0.1:8080", "[2001:db8::5]:5060", "0.0.0.0:0"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(SockAddr::from(a).to_std(), Some(a));
        }
        assert_eq!(SockAddr::NONE.to_std(), None);
    }

    #[test]
    fn catch_panic_returns_message() {
        assert_eq!(catch_panic(|| 5), Ok(5));
        let r: Result<(), String> = catch_panic(|| panic!("boom {}", 1));
        assert_eq!(r, Err("boom 1".to_string()));
    }

    #[test]
    fn proto_names() {
        assert_eq!(Proto::WS.name(), "ws");
        assert_eq!(Proto::from_name("WSS"), Some(Proto::WSS));
        assert_eq!(Proto::from_name("nope"), None);
    }
}
