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
    HostApiRef, LogKv, RouteCtx, RouteOutcome, SockAddr, TraceRecord, TRACE_NET, TRACE_SIP,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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
            proto: crate::flavor::get().proto,
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
        let (peer, local) = (SockAddr::from(c.peer), SockAddr::from(c.local));
        // A SIP message: stamped with the time the driver read or queued it.
        if let TraceEvent::Message {
            inbound,
            payload,
            at,
        } = *ev
        {
            let (src, dst) = if inbound {
                (peer, local)
            } else {
                (local, peer)
            };
            let t = crate::wallclock::wall_time(at);
            let rec = TraceRecord {
                proto_type: TRACE_SIP,
                ip_proto: crate::flavor::get().ip_proto,
                src,
                dst,
                ts_sec: t.as_secs(),
                ts_usec: t.subsec_micros(),
                correlation: RStr::from_str(call_id(payload).unwrap_or("")),
                conn_id: c.id,
                payload: RSlice::from_slice(payload),
                parts: RSlice::from_slice(&[]),
            };
            send(self.dest, &rec);
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut rec = TraceRecord {
            proto_type: TRACE_NET,
            // 50 for WebSocket as OpenSIPS (IPPROTO_ESP, research 6.2), 6 for TCP and TLS.
            ip_proto: crate::flavor::get().ip_proto,
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
            value: RStr::from_str(crate::flavor::get().hep_protocol),
        });
        kvs.extend(parts.iter().map(|(k, v)| LogKv {
            key: RStr::from_str(k),
            value: RStr::from_str(v),
        }));
        rec.parts = RSlice::from_slice(&kvs);
        send(self.dest, &rec);
    }
}

/// The Call-ID of a SIP message (RFC 3261 section 20.8), found by a cheap walk over its header
/// lines (`Call-ID:` in any case, or the compact `i:`, RFC 3261 section 7.3.3), without a full
/// parse; the walk stops at the empty line that ends the header. One `memchr` per line: a
/// substring search for `\r\nCall-ID:` was slower, as CR, LF and `:` are what SIP is made of.
pub(crate) fn call_id(msg: &[u8]) -> Option<&str> {
    // Skip the start line.
    let mut pos = memchr::memchr(b'\n', msg)? + 1;
    loop {
        let line = msg.get(pos..)?;
        match line.first()? {
            b'\r' | b'\n' => return None,
            b'C' | b'c' | b'I' | b'i' => {
                let name_len = if line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"call-id") {
                    7
                } else {
                    1
                };
                if let Some(v) = header_value(line, name_len) {
                    return v;
                }
            }
            _ => {}
        }
        pos += memchr::memchr(b'\n', line)? + 1;
    }
}

/// If `line` is a header whose name is its first `name_len` bytes (then optional blanks and a
/// colon), the value up to the end of the line, trimmed (`Some(None)` if not UTF-8).
fn header_value(line: &[u8], name_len: usize) -> Option<Option<&str>> {
    let rest = line.get(name_len..)?;
    let blanks = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = rest.get(blanks..)?.strip_prefix(b":")?;
    let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
    Some(std::str::from_utf8(rest[..end].trim_ascii()).ok())
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
        // Look-alike names are skipped; blanks before the colon and bare LF are accepted.
        assert_eq!(
            call_id(b"SIP/2.0 200 OK\r\nCall-Info: <x>\r\nInclude: 1\r\nCALL-ID : up\r\n\r\n"),
            Some("up")
        );
        assert_eq!(
            call_id(b"MESSAGE sip:a SIP/2.0\nVia: x\ni:lf\n\n"),
            Some("lf")
        );
        assert_eq!(call_id(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"), None);
        assert_eq!(call_id(b"garbage"), None);
        // The usual spelling only in the body: the header's compact form wins.
        assert_eq!(
            call_id(b"SIP/2.0 200 OK\r\ni: hdr\r\n\r\nx\r\nCall-ID: body\r\n"),
            Some("hdr")
        );
    }
}
