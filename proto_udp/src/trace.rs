//! HEP tracing of SIP over UDP with the transport tracing names of OpenSIPS's proto_tcp and
//! proto_ws (`trace_destination`, `trace_on`, `trace_filter_route`; OpenSIPS traces UDP
//! through its tracer module instead). Every datagram carrying SIP, received or sent, is
//! shipped as a HEP SIP capture (type 1) with IP protocol 17, the real addresses and the
//! Call-ID as correlation id. UDP has no connection, so there are no connection events and
//! the filter route runs once per datagram (`$si`/`$sp` the peer, `$socket_in` our socket),
//! and only while tracing is on.
use abi_stable::std_types::{RSlice, RStr};
use sipcore_abi::{HostApiRef, Proto, RouteCtx, RouteOutcome, SockAddr, TraceRecord, TRACE_SIP};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// IP protocol number of UDP (IANA), the HEP chunk 0x0002 of our captures.
pub const IP_PROTO_UDP: u8 = 17;

/// The global switch (`trace_on`, MI `udp_trace`).
pub static TRACE_ON: AtomicBool = AtomicBool::new(false);

/// A tracing parameter that names nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// `trace_filter_route` without `trace_destination`.
    #[error("trace_filter_route is set but trace_destination is not")]
    RouteWithoutDestination,
    /// The host predates ABI 1.1.
    #[error("this sipcore does not support tracing (host ABI older than 1.1)")]
    Unsupported,
    /// No proto_hep destination of that name.
    #[error("trace_destination '{0}': no such destination (is proto_hep loaded with a hep_id named [{0}]?)")]
    NoDestination(String),
    /// No such route in the script.
    #[error("trace_filter_route '{0}': no route[{0}] in the script")]
    NoRoute(String),
}

/// Resolved tracing configuration.
pub struct Tracer {
    host: HostApiRef,
    /// Destination handle from `HostApi::trace_dest`.
    dest: i64,
    /// Filter route id, if configured.
    route: Option<i32>,
}

impl Tracer {
    /// Resolve the destination and the route (at `start`, when every module is initialised);
    /// `Ok(None)` when tracing is not configured.
    pub fn new(
        host: HostApiRef,
        dest: Option<&str>,
        route: Option<&str>,
    ) -> Result<Option<Tracer>, TraceError> {
        let Some(dest) = dest else {
            return match route {
                Some(_) => Err(TraceError::RouteWithoutDestination),
                None => Ok(None),
            };
        };
        let (Some(trace_dest), Some(route_id)) = (host.trace_dest(), host.route_id()) else {
            return Err(TraceError::Unsupported);
        };
        let d = trace_dest(RStr::from_str(dest));
        if d < 0 {
            return Err(TraceError::NoDestination(dest.to_string()));
        }
        let route = match route {
            Some(name) => match route_id(RStr::from_str(name)) {
                r if r < 0 => return Err(TraceError::NoRoute(name.to_string())),
                r => Some(r),
            },
            None => None,
        };
        Ok(Some(Tracer {
            host,
            dest: d,
            route,
        }))
    }

    /// Trace one datagram exchanged with `peer` on our socket `local` (listener id, or
    /// `NO_LISTENER`), if tracing is on and the filter route does not drop it.
    pub fn datagram(
        &self,
        inbound: bool,
        peer: SocketAddr,
        local: SocketAddr,
        listener: u32,
        payload: &[u8],
    ) {
        if !TRACE_ON.load(Ordering::Relaxed) {
            return;
        }
        let (peer, local) = (SockAddr::from(peer), SockAddr::from(local));
        if let (Some(r), Some(run)) = (self.route, self.host.run_route()) {
            let ctx = RouteCtx {
                proto: Proto::UDP,
                peer,
                local,
                listener,
                conn_id: 0,
            };
            if run(r, &ctx) == RouteOutcome::DROP {
                return;
            }
        }
        let Some(send) = self.host.trace() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (src, dst) = if inbound {
            (peer, local)
        } else {
            (local, peer)
        };
        let rec = TraceRecord {
            proto_type: TRACE_SIP,
            ip_proto: IP_PROTO_UDP,
            src,
            dst,
            ts_sec: now.as_secs(),
            ts_usec: now.subsec_micros(),
            correlation: RStr::from_str(call_id(payload).unwrap_or("")),
            conn_id: 0,
            payload: RSlice::from_slice(payload),
            parts: RSlice::from_slice(&[]),
        };
        send(self.dest, &rec);
    }
}

/// The Call-ID of a SIP message (RFC 3261 §20.8; compact form `i`, §7.3.3), found by walking
/// the header lines up to the empty line that ends them, without a full parse.
pub fn call_id(msg: &[u8]) -> Option<&str> {
    let mut rest = msg;
    // Skip leading CRLFs and the start line.
    while let Some((b'\r' | b'\n', tail)) = rest.split_first() {
        rest = tail;
    }
    rest = &rest[memchr::memchr(b'\n', rest)? + 1..];
    loop {
        let end = memchr::memchr(b'\n', rest);
        let line = &rest[..end.unwrap_or(rest.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        if let Some(v) = header_value(line) {
            return std::str::from_utf8(v).ok();
        }
        rest = &rest[end? + 1..];
    }
}

/// The trimmed value of `line` if it is a Call-ID header field line.
fn header_value(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let name = line[..colon].trim_ascii();
    let is_call_id = name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i");
    is_call_id.then(|| line[colon + 1..].trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::call_id;

    #[test]
    fn finds_call_id_in_full_and_compact_form() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\nCall-ID:  abc@h \r\n\r\nbody";
        assert_eq!(call_id(m), Some("abc@h"));
        assert_eq!(call_id(b"SIP/2.0 200 OK\r\ni: c2\r\n\r\n"), Some("c2"));
        assert_eq!(
            call_id(b"SIP/2.0 200 OK\r\nCALL-ID : up\r\n\r\n"),
            Some("up")
        );
        assert_eq!(
            call_id(b"MESSAGE sip:a SIP/2.0\nVia: x\ni:lf\n\n"),
            Some("lf")
        );
        assert_eq!(
            call_id(b"\r\nSIP/2.0 200 OK\r\nCall-ID: last"),
            Some("last")
        );
    }

    #[test]
    fn look_alikes_bodies_and_garbage_give_nothing() {
        let m = b"SIP/2.0 200 OK\r\nCall-Info: <x>\r\nInclude: 1\r\nCall-ID: y\r\n\r\n";
        assert_eq!(call_id(m), Some("y"));
        let body_only = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body\r\n";
        assert_eq!(call_id(body_only), None);
        assert_eq!(call_id(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n"), None);
        assert_eq!(call_id(b"garbage"), None);
        assert_eq!(call_id(b""), None);
        assert_eq!(call_id(b"A b SIP/2.0\r\nCall-ID: \xff\r\n\r\n"), None);
    }
}
