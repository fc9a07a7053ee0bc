//! SIP over TCP for the end-to-end tests: SIPp over TCP (`-t t1`), a listening port's
//! readiness, raw TCP SIP peers that wait with deadlines, and the MI reads (`tcp:`
//! statistics, `tcp_list`).
use super::udp::{mi_call, Sipp};
use super::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;

/// Wait until something listens on TCP port `port` (`/proc/net/tcp` or `tcp6`, state 0A), 10 s.
pub fn wait_tcp_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let suffix = format!(":{port:04X}");
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default()
            + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        let up = table.lines().skip(1).any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&suffix) && f[3] == "0A"
        });
        if up {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on tcp port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until sipcore says it listens on `tcp:127.0.0.1:PORT`.
pub fn wait_tcp(srv: &Server, port: u16) {
    srv.wait_log(
        &format!("listening on tcp:127.0.0.1:{port}"),
        Duration::from_secs(10),
    );
}

/// SIPp's built-in UAS over TCP (`-t t1`) on 127.0.0.1:`port` for `calls` calls, once it
/// listens; `extra` arguments after.
pub fn sipp_uas_tcp(port: u16, calls: usize, extra: &[&str]) -> Sipp {
    let (p, c) = (port.to_string(), calls.to_string());
    let mut args = vec![
        "-sn",
        "uas",
        "-t",
        "t1",
        "-i",
        "127.0.0.1",
        "-p",
        &p,
        "-m",
        &c,
    ];
    args.extend_from_slice(extra);
    let uas = Sipp::spawn("uas-tcp", &args);
    wait_tcp_listening(port);
    uas
}

/// A raw SIP-over-TCP client connection with read deadlines.
pub struct TcpPeer {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl TcpPeer {
    /// Connected to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> TcpPeer {
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect over tcp");
        sock.set_nodelay(true).unwrap();
        TcpPeer {
            sock,
            buf: Vec::new(),
        }
    }

    /// A connection accepted by a listener of the test (a UAS sipcore connects to).
    pub fn accepted(sock: TcpStream) -> TcpPeer {
        sock.set_nodelay(true).unwrap();
        TcpPeer {
            sock,
            buf: Vec::new(),
        }
    }

    /// Our address.
    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Write bytes as they are.
    pub fn send(&mut self, data: &[u8]) {
        self.sock.write_all(data).expect("write to sipcore");
    }

    /// Read until `want` (a predicate on what was received so far, returning how many bytes it
    /// consumes) says it has something, within `within`: `Ok(None)` at the deadline, `Err` if
    /// the connection is closed (or reset) first.
    fn read_until(
        &mut self,
        within: Duration,
        want: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Option<Vec<u8>>, ()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(n) = want(&self.buf) {
                let out = self.buf.drain(..n).collect();
                return Ok(Some(out));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 8192];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Err(()),
            }
        }
    }

    /// The next SIP message (framed by its Content-Length), within 10 s.
    pub fn recv_sip(&mut self) -> String {
        let m = self
            .read_until(Duration::from_secs(10), sip_message_len)
            .expect("sipcore closed the connection")
            .unwrap_or_else(|| {
                panic!(
                    "no SIP message within 10 s; received {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            });
        String::from_utf8(m).unwrap()
    }

    /// The next SIP message if one arrives within `within` (`None` also when the connection
    /// is closed).
    pub fn try_recv_sip(&mut self, within: Duration) -> Option<String> {
        let m = self.read_until(within, sip_message_len).ok()??;
        Some(String::from_utf8(m).unwrap())
    }

    /// Exactly `bytes` next, within 10 s (e.g. the CRLF pong).
    pub fn recv_exact(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        let got = self
            .read_until(Duration::from_secs(10), |b| (b.len() >= n).then_some(n))
            .expect("sipcore closed the connection")
            .expect("nothing within 10 s");
        assert_eq!(got, bytes);
    }

    /// Whether sipcore closes the connection within `within` (what arrives first, e.g. pongs,
    /// is discarded).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let r = self.read_until(within, |_| None).is_err();
        self.buf.clear();
        r
    }
}

/// Length of the first complete SIP message in `b` (leading CRLFs included), if any.
pub fn sip_message_len(b: &[u8]) -> Option<usize> {
    let lead = b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    let rest = &b[lead..];
    let head = rest.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&rest[..head]).ok()?;
    let cl: usize = text
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            (n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l"))
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (rest.len() >= head + cl).then_some(lead + head + cl)
}

/// The `tcp` statistics now, by name.
pub fn tcp_stats(mi_port: u16) -> HashMap<String, u64> {
    let all = mi_call(mi_port, "get_statistics", json!({"statistics": ["tcp:"]}));
    all.as_object()
        .unwrap_or_else(|| panic!("get_statistics answered {all}"))
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("tcp:")?.to_string(), v.as_u64()?)))
        .collect()
}

/// MI `tcp_list`: the connections.
pub fn tcp_list(mi_port: u16) -> Value {
    mi_call(mi_port, "tcp_list", json!({}))
}

/// A response to the request `req` (its Vias, From, To with `tag` added unless it has one,
/// Call-ID, CSeq), with no body.
pub fn reply_to(req: &str, status: &str, tag: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let to = header(req, "To").unwrap_or("");
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        header(req, "From").unwrap_or(""),
        header(req, "Call-ID").unwrap_or(""),
        header(req, "CSeq").unwrap_or("")
    ));
    out
}
