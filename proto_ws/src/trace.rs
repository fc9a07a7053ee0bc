//! HEP tracing of WebSocket connections, OpenSIPS-compatible (`trace_destination`, `trace_on`,
//! `trace_filter_route`; research 6.1-6.5), plus what OpenSIPS lacks: the SIP messages carried
//! over a traced connection, both directions, with their real addresses, linked to the
//! connection's events by the connection id.
//!
//! The driver asks [`Tracer::opened`] once per connection (the filter route runs there, with
//! `$si/$sp` the peer and `$socket_in` our socket); only connections it accepted produce
//! [`Tracer::event`] calls, and those check the global switch (MI `ws_trace`) each time, so
//! `ws_trace off` stops tracing at once and `on` resumes it.
use crate::driver::{ConnMeta, TraceEvent};
use abi_stable::std_types::{RSlice, RStr};
use sipcore_abi::{
    HostApiRef, LogKv, Proto, RouteCtx, RouteOutcome, SockAddr, TraceRecord, TRACE_NET, TRACE_SIP,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// IP protocol number OpenSIPS uses for WebSocket captures (IPPROTO_ESP, research 6.2).
const IP_PROTO_WS: u8 = 50;

/// The global switch (`trace_on`, MI `ws_trace`).
pub(crate) static TRACE_ON: AtomicBool = AtomicBool::new(false);

/// Resolved tracing configuration.
pub(crate) struct Tracer {
    host: HostApiRef,
    /// Destination handle from `HostApi::trace_dest`.
    dest: i64,
    /// Filter route id, if configured.
    route: Option<i32>,
}

impl Tracer {
    /// Resolve the destination and the route; `Ok(None)` when tracing is not configured.
    pub(crate) fn new(
        host: HostApiRef,
        dest: Option<&str>,
        route: Option<&str>,
    ) -> Result<Option<Tracer>, String> {
        let Some(dest) = dest else {
            if route.is_some() {
                return Err("trace_filter_route is set but trace_destination is not".into());
            }
            return Ok(None);
        };
        let (Some(trace_dest), Some(route_id)) = (host.trace_dest(), host.route_id()) else {
            return Err("this sipcore does not support tracing (host ABI older than 1.1)".into());
        };
        let d = trace_dest(RStr::from_str(dest));
        if d < 0 {
            return Err(format!(
                "trace_destination '{dest}': no such destination (is proto_hep loaded with a hep_id named [{dest}]?)"
            ));
        }
        let route = match route {
            Some(name) => {
                let r = route_id(RStr::from_str(name));
                if r < 0 {
                    return Err(format!(
                        "trace_filter_route '{name}': no route[{name}] in the script"
                    ));
                }
                Some(r)
            }
            None => None,
        };
        Ok(Some(Tracer {
            host,
            dest: d,
            route,
        }))
    }

    /// Whether a new connection is traced: the filter route decides (`drop` = no).
    pub(crate) fn opened(&self, c: &ConnMeta) -> bool {
        let (Some(r), Some(run)) = (self.route, self.host.run_route()) else {
            return true;
        };
        let ctx = RouteCtx {
            proto: Proto::WS,
            peer: SockAddr::from(c.peer),
            local: SockAddr::from(c.local),
            listener: c.listener,
            conn_id: c.id,
        };
        run(r, &ctx) != RouteOutcome::DROP
    }

    /// Ship one event of a traced connection (if tracing is on).
    pub(crate) fn event(&self, c: &ConnMeta, ev: &TraceEvent<'_>) {
        if !TRACE_ON.load(Ordering::Relaxed) {
            return;
        }
        let Some(send) = self.host.trace() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (peer, local) = (SockAddr::from(c.peer), SockAddr::from(c.local));
        let mut rec = TraceRecord {
            proto_type: TRACE_NET,
            ip_proto: IP_PROTO_WS,
            src: peer,
            dst: local,
            ts_sec: now.as_secs(),
            ts_usec: now.subsec_micros(),
            correlation: RStr::from_str(""),
            conn_id: c.id,
            payload: RSlice::from_slice(&[]),
            parts: RSlice::from_slice(&[]),
        };
        let kv = |k: &'static str, v: &str| -> (&'static str, String) { (k, v.to_string()) };
        let opened = if c.outbound { "CONNECTED" } else { "ACCEPTED" };
        if let TraceEvent::Message { inbound, payload } = ev {
            rec.proto_type = TRACE_SIP;
            if !inbound {
                rec.src = local;
                rec.dst = peer;
            }
            rec.payload = RSlice::from_slice(payload);
            let call_id = call_id(payload).unwrap_or("");
            rec.correlation = RStr::from_str(call_id);
            send(self.dest, &rec);
            return;
        }
        // Connection events: the connection id is the correlation id.
        let cid = c.id.to_string();
        rec.correlation = RStr::from_str(&cid);
        let parts: Vec<(&'static str, String)> = match ev {
            TraceEvent::Message { .. } => return,
            TraceEvent::Opened => vec![
                kv("Event", opened),
                kv("Status", "SUCCESS"),
                kv(
                    "Message",
                    if c.outbound {
                        "Successfully connected"
                    } else {
                        "Connection accepted"
                    },
                ),
            ],
            TraceEvent::HandshakeRequest(b) => vec![
                kv("Event", opened),
                kv("Ws-Request", &String::from_utf8_lossy(b)),
            ],
            TraceEvent::HandshakeReply(b) => vec![
                kv("Event", opened),
                kv("Status", "SUCCESS"),
                kv("Ws-Reply", &String::from_utf8_lossy(b)),
                kv("Message", "WebSocket handshake done"),
            ],
            TraceEvent::HandshakeFailed { status, reason } => vec![
                kv("Event", opened),
                kv("Status", "FAILURE"),
                kv("Message", &format!("handshake failed ({status}): {reason}")),
            ],
            TraceEvent::ProtocolError { close_code, reason } => vec![
                kv("Event", "PROTOCOL_ERROR"),
                kv("Status", "FAILURE"),
                kv("Message", &format!("close {close_code}: {reason}")),
            ],
            TraceEvent::Closed { code, reason } => vec![
                kv("Event", "CLOSED"),
                kv("Status", "SUCCESS"),
                kv(
                    "Message",
                    &match code {
                        Some(code) => format!("{reason} (close code {code})"),
                        None => reason.to_string(),
                    },
                ),
            ],
        };
        let mut kvs: Vec<LogKv<'_>> = Vec::with_capacity(parts.len() + 1);
        kvs.push(LogKv {
            key: RStr::from_str("Protocol"),
            value: RStr::from_str("WS"),
        });
        kvs.extend(parts.iter().map(|(k, v)| LogKv {
            key: RStr::from_str(k),
            value: RStr::from_str(v),
        }));
        rec.parts = RSlice::from_slice(&kvs);
        send(self.dest, &rec);
    }
}

/// The Call-ID of a SIP message, found by a cheap scan of its header lines (`Call-ID:` or
/// the compact `i:`), without a full parse. The usual spelling `\r\nCall-ID:` is found with
/// one SIMD substring search; any other case or form falls back to a line scan.
pub(crate) fn call_id(msg: &[u8]) -> Option<&str> {
    let head_end = memchr::memmem::find(msg, b"\r\n\r\n").unwrap_or(msg.len());
    let head = &msg[..head_end];
    if let Some(at) = memchr::memmem::find(head, b"\r\nCall-ID:") {
        let rest = &head[at + 10..];
        let end = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
        // A folded Call-ID (continuation line) is not worth a fast path.
        if !rest
            .get(end + 2..)
            .is_some_and(|r| r.starts_with(b" ") || r.starts_with(b"\t"))
        {
            return std::str::from_utf8(rest[..end].trim_ascii()).ok();
        }
    }
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            return std::str::from_utf8(line[colon + 1..].trim_ascii()).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::call_id;

    #[test]
    fn finds_call_id_in_full_and_compact_form() {
        assert_eq!(
            call_id(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\nCall-ID:  abc@h \r\n\r\nbody"),
            Some("abc@h")
        );
        assert_eq!(call_id(b"SIP/2.0 200 OK\r\ni: c2\r\n\r\n"), Some("c2"));
        assert_eq!(
            call_id(b"SIP/2.0 200 OK\r\ncall-id: low\r\n\r\n"),
            Some("low")
        );
        assert_eq!(call_id(b"SIP/2.0 200 OK\r\nCall-ID: last"), Some("last"));
        // Folded: the slow path joins nothing but still finds the first line's value.
        assert_eq!(
            call_id(b"SIP/2.0 200 OK\r\nCall-ID: a\r\n b\r\n\r\n"),
            Some("a")
        );
        assert_eq!(
            call_id(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body\r\n"),
            None
        );
    }
}
