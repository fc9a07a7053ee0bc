//! ABI 1.1 additions: tracing, script routes run by plugins, MI commands, connection events;
//! and the 1.5 statistics records.
//!
//! All of it was appended to the prefix tables of 1.0 (see the version rule in the crate docs):
//! a 1.0 plugin still loads, and a 1.1 plugin asks the [`crate::HostApi`] accessors, which
//! return `None` on a 1.0 host.
use crate::{LogKv, Proto, SockAddr};
use abi_stable::{
    std_types::{RResult, RSlice, RStr, RString},
    StableAbi,
};
use std::ffi::c_void;

/// HEP payload type of a SIP message (HEP3 spec, chunk 0x000B).
pub const TRACE_SIP: u8 = 0x01;
/// HEP payload type of a transport ("net") event, OpenSIPS's private 0x59 (research 6.2).
pub const TRACE_NET: u8 = 0x59;

/// One capture to trace, borrowed for the duration of the call; the sink copies what it keeps.
///
/// It is transport-neutral: the sink (proto_hep) turns it into HEPv3 or HEPv2.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct TraceRecord<'a> {
    /// Payload type: [`TRACE_SIP`] or [`TRACE_NET`].
    pub proto_type: u8,
    /// IP protocol number of the captured traffic (6 TCP, 17 UDP, 50 for WebSocket as
    /// OpenSIPS does).
    pub ip_proto: u8,
    /// Where the captured data came from.
    pub src: SockAddr,
    /// Where it went.
    pub dst: SockAddr,
    /// Capture time: seconds since the Unix epoch.
    pub ts_sec: u64,
    /// Capture time: microseconds.
    pub ts_usec: u32,
    /// Correlation id (HEP chunk 0x0011): the Call-ID of a SIP message, the connection id of a
    /// transport event.
    pub correlation: RStr<'a>,
    /// Connection id the record belongs to, 0 if none; a sink links SIP captures to their
    /// connection's events with it (research 6.5).
    pub conn_id: u64,
    /// Raw payload (the SIP message). Empty for events, which use `parts`.
    pub payload: RSlice<'a, u8>,
    /// Key/value payload parts of an event (`Protocol`, `Event`, `Status`, `Message`, ...), in
    /// order; the sink renders them (Homer 5 joined text or JSON).
    pub parts: RSlice<'a, LogKv<'a>>,
}

/// A trace sink: the table a module such as proto_hep exports for its named destinations.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = TraceSinkRef)))]
#[sabi(missing_field(option))]
pub struct TraceSink {
    /// The id of a destination by name (`hep_id`'s `[name]`), or -1 if it has none such.
    pub dest_id: extern "C" fn(name: RStr<'_>) -> i32,
    /// Queue a record for a destination. Never blocks; `false` when it was dropped (queue
    /// full, destination down), which the sink counts.
    #[sabi(last_prefix_field)]
    pub send: extern "C" fn(dest: i32, rec: &TraceRecord<'_>) -> bool,
}

/// The context a plugin runs a script route with (e.g. `trace_filter_route` for a new
/// connection): `$si`/`$sp` are `peer`, `$socket_in(...)` is `local` on `listener`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct RouteCtx {
    /// Transport protocol.
    pub proto: Proto,
    /// The remote end.
    pub peer: SockAddr,
    /// Our end.
    pub local: SockAddr,
    /// Index of the listening socket, or `NO_LISTENER`.
    pub listener: u32,
    /// Connection id, 0 if none.
    pub conn_id: u64,
}

/// How a route run by a plugin ended.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteOutcome(pub i32);

impl RouteOutcome {
    /// The route ended normally (`exit`, `return`, or its end).
    pub const DONE: RouteOutcome = RouteOutcome(1);
    /// The route ended with `drop`.
    pub const DROP: RouteOutcome = RouteOutcome(0);
    /// No such route, or it failed.
    pub const ERROR: RouteOutcome = RouteOutcome(-1);
}

/// An MI command's error: a JSON-RPC error code (or an OpenSIPS-style one such as 400/500)
/// and its message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MiError {
    /// Error code.
    pub code: i32,
    /// Message.
    pub message: RString,
}

/// An MI command handler: receives the positional string parameters (named ones are mapped to
/// positions by the names given at registration) and returns its result as JSON text.
pub type MiHandler = extern "C" fn(params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError>;

/// An MI command registered by a plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct MiCommand<'a> {
    /// Command name, e.g. `ws_trace`.
    pub name: RStr<'a>,
    /// Other names, e.g. `ws:trace`.
    pub aliases: RSlice<'a, RStr<'a>>,
    /// One line of help.
    pub help: RStr<'a>,
    /// Parameter names, in position order, for callers that pass named parameters.
    pub params: RSlice<'a, RStr<'a>>,
    /// The handler (a [`MiHandler`]).
    pub handler: extern "C" fn(params: RSlice<'_, RStr<'_>>) -> RResult<RString, MiError>,
}

/// Where a plugin's [`crate::Module::stats`] reports its statistics: it calls
/// `(sink.emit)(sink.ctx, &record)` once per statistic, on the calling thread, before it
/// returns; `record` is borrowed for the duration of the call (the host copies it).
#[repr(C)]
#[derive(StableAbi)]
pub struct StatSink {
    /// The host's context, passed back unchanged.
    pub ctx: *mut c_void,
    /// Receives one record.
    pub emit: extern "C" fn(ctx: *mut c_void, rec: &StatRecord<'_>),
}

/// One statistic of a plugin, as OpenSIPS modules export them (`stat_export_t`): a group (the
/// module's name in OpenSIPS; `ws`, `wss`, `hep` here), a name, the value now, and whether it
/// is a gauge (a level that goes up and down, OpenSIPS's `STAT_NO_RESET`) or a counter (only
/// grows; `reset_statistics` resets it, which the host does by remembering a baseline).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct StatRecord<'a> {
    /// Group, e.g. `ws`.
    pub group: RStr<'a>,
    /// Name within the group, e.g. `connections`.
    pub name: RStr<'a>,
    /// Value now.
    pub value: u64,
    /// True for a gauge, false for a counter.
    pub gauge: bool,
    /// One line saying what it counts (the Prometheus `# HELP` text).
    pub help: RStr<'a>,
}

impl StatSink {
    /// Report one statistic (see [`StatRecord`] for the fields).
    pub fn report(&self, group: &str, name: &str, value: u64, gauge: bool, help: &str) {
        let rec = StatRecord {
            group: RStr::from_str(group),
            name: RStr::from_str(name),
            value,
            gauge,
            help: RStr::from_str(help),
        };
        (self.emit)(self.ctx, &rec);
    }
}
