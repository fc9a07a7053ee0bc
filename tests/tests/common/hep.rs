//! Test side of HEP tracing: a HEPv3 / HEPv2 decoder written from the spec (HEP3 rev. 37,
//! /work/shared/research/hep.md §1-5), deliberately independent of `proto_hep`'s codec, a TCP
//! stream splitter, UDP/TCP collectors, and small clients (WebSocket, `sipcore mi`, raw
//! JSON-RPC over HTTP) shared by `hep_trace.rs` and `mi.rs`.
//!
//! Use from a test file that also has `mod common;`:
//! `#[path = "common/hep.rs"] mod hep;`
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

/// `AF_INET` as carried in chunk 0x0001 / the v2 `hp_f` byte.
pub const AF_INET: u8 = 2;
/// `AF_INET6` (Linux value).
pub const AF_INET6: u8 = 10;
/// Proto type (chunk 0x000B) of a SIP capture.
pub const PT_SIP: u8 = 0x01;
/// OpenSIPS's private "net" proto type used for transport events.
pub const PT_NET: u8 = 0x59;
/// IP protocol number OpenSIPS uses for WebSocket captures (IPPROTO_ESP).
pub const IP_PROTO_WS: u8 = 50;

/// Generic (vendor 0) chunk type ids, HEP3 spec §3.
pub mod ct {
    pub const FAMILY: u16 = 0x0001;
    pub const IP_PROTO: u16 = 0x0002;
    pub const SRC_V4: u16 = 0x0003;
    pub const DST_V4: u16 = 0x0004;
    pub const SRC_V6: u16 = 0x0005;
    pub const DST_V6: u16 = 0x0006;
    pub const SRC_PORT: u16 = 0x0007;
    pub const DST_PORT: u16 = 0x0008;
    pub const TS_SEC: u16 = 0x0009;
    pub const TS_USEC: u16 = 0x000A;
    pub const PROTO_TYPE: u16 = 0x000B;
    pub const CAPTURE_ID: u16 = 0x000C;
    pub const PAYLOAD: u16 = 0x000F;
    pub const PAYLOAD_GZ: u16 = 0x0010;
    pub const CORRELATION: u16 = 0x0011;
    /// OpenSIPS extra-correlation JSON (`{"net":"<conn id>"}`).
    pub const EXTRA_CORRELATION: u16 = 0x0065;
}

/// Why a packet is not valid HEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HepError {
    /// Fewer bytes than the fixed header.
    TooShort(usize),
    /// The first four bytes are not "HEP3".
    BadMagic([u8; 4]),
    /// The header's total length differs from the bytes received.
    LengthMismatch { header: usize, actual: usize },
    /// Less than 6 bytes left for a chunk header at `offset`.
    ChunkHeaderTruncated { offset: usize },
    /// A chunk length below 6 or past the end of the packet.
    ChunkLength {
        offset: usize,
        len: usize,
        remaining: usize,
    },
    /// A fixed-size generic chunk with the wrong data length.
    FixedSize {
        type_id: u16,
        expected: usize,
        got: usize,
    },
    /// A generic chunk present twice.
    Duplicate(u16),
    /// A mandatory generic chunk is absent.
    Missing(u16),
    /// Family value and address chunks disagree.
    Family(String),
    /// Proto type 0 (receivers drop such packets).
    ZeroProtoType,
    /// Microseconds offset >= 1 000 000.
    Usec(u32),
    /// HEPv1/v2: bad version byte.
    V2Version(u8),
    /// HEPv1/v2: `hp_l` does not match the family.
    V2HeaderLen { family: u8, hdr_len: u8 },
}

/// One chunk as found on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub vendor: u16,
    pub type_id: u16,
    pub data: Vec<u8>,
}

/// A decoded HEPv3 packet: the mandatory fields plus every chunk in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hep3 {
    pub family: u8,
    pub ip_proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ts_sec: u32,
    pub ts_usec: u32,
    pub proto_type: u8,
    pub capture_id: u32,
    /// Chunk 0x0011, if present.
    pub correlation: Option<Vec<u8>>,
    /// Chunk 0x000F (or 0x0010, then `compressed`).
    pub payload: Vec<u8>,
    pub compressed: bool,
    pub chunks: Vec<Chunk>,
}

impl Hep3 {
    /// The first chunk with this vendor and type.
    pub fn chunk(&self, vendor: u16, type_id: u16) -> Option<&Chunk> {
        self.chunks
            .iter()
            .find(|c| c.vendor == vendor && c.type_id == type_id)
    }
    /// Payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    /// Correlation id as text ("" when absent).
    pub fn corr(&self) -> String {
        self.correlation
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default()
    }
}

/// Required data length of fixed-size generic chunks (spec §3), `None` for variable ones.
fn fixed_size(type_id: u16) -> Option<usize> {
    Some(match type_id {
        0x01 | 0x02 | 0x0B | 0x17 | 0x18 => 1,
        0x07 | 0x08 | 0x0D | 0x12 | 0x16 | 0x20 | 0x21 | 0x27 | 0x28 => 2,
        0x03 | 0x04 | 0x09 | 0x0A | 0x0C | 0x23 => 4,
        0x14 | 0x15 => 8,
        0x05 | 0x06 => 16,
        _ => return None,
    })
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn v4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}
fn v6(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Split the chunk area of a HEPv3 packet, checking each chunk header.
pub fn chunks(body: &[u8], base: usize) -> Result<Vec<Chunk>, HepError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < body.len() {
        let rest = &body[off..];
        if rest.len() < 6 {
            return Err(HepError::ChunkHeaderTruncated { offset: base + off });
        }
        let len = usize::from(be16(&rest[4..6]));
        if len < 6 || len > rest.len() {
            return Err(HepError::ChunkLength {
                offset: base + off,
                len,
                remaining: rest.len(),
            });
        }
        out.push(Chunk {
            vendor: be16(&rest[0..2]),
            type_id: be16(&rest[2..4]),
            data: rest[6..len].to_vec(),
        });
        off += len;
    }
    Ok(out)
}

/// Decode one HEPv3 packet (the whole datagram or one TCP frame), strictly.
pub fn decode_v3(pkt: &[u8]) -> Result<Hep3, HepError> {
    if pkt.len() < 6 {
        return Err(HepError::TooShort(pkt.len()));
    }
    if &pkt[0..4] != b"HEP3" {
        return Err(HepError::BadMagic([pkt[0], pkt[1], pkt[2], pkt[3]]));
    }
    let total = usize::from(be16(&pkt[4..6]));
    if total != pkt.len() {
        return Err(HepError::LengthMismatch {
            header: total,
            actual: pkt.len(),
        });
    }
    let list = chunks(&pkt[6..], 6)?;
    let mut seen = std::collections::HashSet::new();
    for c in list.iter().filter(|c| c.vendor == 0) {
        if !seen.insert(c.type_id) {
            return Err(HepError::Duplicate(c.type_id));
        }
        if let Some(n) = fixed_size(c.type_id) {
            if c.data.len() != n {
                return Err(HepError::FixedSize {
                    type_id: c.type_id,
                    expected: n,
                    got: c.data.len(),
                });
            }
        }
    }
    let get = |t: u16| {
        list.iter()
            .find(|c| c.vendor == 0 && c.type_id == t)
            .map(|c| c.data.as_slice())
    };
    let need = |t: u16| get(t).ok_or(HepError::Missing(t));
    let family = need(ct::FAMILY)?[0];
    let (s4, d4, s6, d6) = (
        get(ct::SRC_V4),
        get(ct::DST_V4),
        get(ct::SRC_V6),
        get(ct::DST_V6),
    );
    let (sip, dip) = match (family, s4, d4, s6, d6) {
        (AF_INET, Some(s), Some(d), None, None) => (v4(s), v4(d)),
        (AF_INET6, None, None, Some(s), Some(d)) => (v6(s), v6(d)),
        _ => {
            return Err(HepError::Family(format!(
                "family {family} with v4 src/dst {}/{} and v6 src/dst {}/{}",
                s4.is_some(),
                d4.is_some(),
                s6.is_some(),
                d6.is_some()
            )))
        }
    };
    let ts_usec = be32(need(ct::TS_USEC)?);
    if ts_usec >= 1_000_000 {
        return Err(HepError::Usec(ts_usec));
    }
    let proto_type = need(ct::PROTO_TYPE)?[0];
    if proto_type == 0 {
        return Err(HepError::ZeroProtoType);
    }
    let (payload, compressed) = match (get(ct::PAYLOAD), get(ct::PAYLOAD_GZ)) {
        (Some(p), None) => (p.to_vec(), false),
        (None, Some(p)) => (p.to_vec(), true),
        (None, None) => return Err(HepError::Missing(ct::PAYLOAD)),
        (Some(_), Some(_)) => return Err(HepError::Duplicate(ct::PAYLOAD_GZ)),
    };
    Ok(Hep3 {
        family,
        ip_proto: need(ct::IP_PROTO)?[0],
        src: SocketAddr::new(sip, be16(need(ct::SRC_PORT)?)),
        dst: SocketAddr::new(dip, be16(need(ct::DST_PORT)?)),
        ts_sec: be32(need(ct::TS_SEC)?),
        ts_usec,
        proto_type,
        capture_id: be32(need(ct::CAPTURE_ID)?),
        correlation: get(ct::CORRELATION).map(<[u8]>::to_vec),
        payload,
        compressed,
        chunks: list,
    })
}

/// A decoded HEPv1/v2 packet (C-struct layout; the v2 time header in little-endian host order,
/// 12 bytes with 2 padding bytes, as Kamailio/sngrep/hep.lua read it, research §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hep2 {
    pub version: u8,
    pub family: u8,
    pub ip_proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// v2 only (0 for v1).
    pub ts_sec: u32,
    pub ts_usec: u32,
    pub capture_id: u16,
    pub payload: Vec<u8>,
}

/// Decode one HEPv1/v2 datagram.
pub fn decode_v2(pkt: &[u8]) -> Result<Hep2, HepError> {
    if pkt.len() < 8 {
        return Err(HepError::TooShort(pkt.len()));
    }
    let (version, hdr_len, family, ip_proto) = (pkt[0], pkt[1], pkt[2], pkt[3]);
    if version != 1 && version != 2 {
        return Err(HepError::V2Version(version));
    }
    let alen = match (family, hdr_len) {
        (AF_INET, 16) => 4,
        (AF_INET6, 40) => 16,
        _ => return Err(HepError::V2HeaderLen { family, hdr_len }),
    };
    let time_len = if version == 2 { 12 } else { 0 };
    let head = usize::from(hdr_len) + time_len;
    if pkt.len() < head {
        return Err(HepError::TooShort(pkt.len()));
    }
    let ip = |b: &[u8]| if alen == 4 { v4(b) } else { v6(b) };
    let (src, dst) = (ip(&pkt[8..8 + alen]), ip(&pkt[8 + alen..8 + 2 * alen]));
    let t = &pkt[usize::from(hdr_len)..head];
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let (ts_sec, ts_usec, capture_id) = if version == 2 {
        (
            le32(&t[0..4]),
            le32(&t[4..8]),
            u16::from_le_bytes([t[8], t[9]]),
        )
    } else {
        (0, 0, 0)
    };
    Ok(Hep2 {
        version,
        family,
        ip_proto,
        src: SocketAddr::new(src, be16(&pkt[4..6])),
        dst: SocketAddr::new(dst, be16(&pkt[6..8])),
        ts_sec,
        ts_usec,
        capture_id,
        payload: pkt[head..].to_vec(),
    })
}

/// Frames HEPv3 packets out of a TCP byte stream (packets back to back, research §7): reads may
/// hold several packets or a part of one.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

impl Splitter {
    /// Feed bytes; returns every packet completed by them, in order.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, HepError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            let rest = &self.buf[off..];
            let magic_len = rest.len().min(4);
            if rest[..magic_len] != b"HEP3"[..magic_len] {
                let mut m = [0u8; 4];
                m[..magic_len].copy_from_slice(&rest[..magic_len]);
                return Err(HepError::BadMagic(m));
            }
            if rest.len() < 6 {
                break;
            }
            let len = usize::from(be16(&rest[4..6]));
            if len < 6 {
                return Err(HepError::LengthMismatch {
                    header: len,
                    actual: 6,
                });
            }
            if rest.len() < len {
                break;
            }
            out.push(rest[..len].to_vec());
            off += len;
        }
        self.buf.drain(..off);
        Ok(out)
    }

    /// Bytes of an incomplete packet held back.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

// ------------------------------------------------------------------------------------------
// Collectors: a fake HEP capture server on UDP or TCP that keeps every packet it receives.

/// What a collector received.
#[derive(Debug, Default)]
pub struct Captured {
    /// Datagrams (UDP) or framed packets (TCP), in arrival order.
    pub packets: Vec<Vec<u8>>,
    /// Framing errors and truncated streams (TCP).
    pub errors: Vec<String>,
    /// Accepted TCP connections.
    pub connections: usize,
}

/// A HEP collector on 127.0.0.1; its threads stop when it is dropped.
pub struct Collector {
    pub addr: SocketAddr,
    state: Arc<Mutex<Captured>>,
    stop: Arc<AtomicBool>,
}

impl Collector {
    fn new(addr: SocketAddr) -> Collector {
        Collector {
            addr,
            state: Arc::default(),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A UDP collector: one datagram = one packet.
    pub fn udp() -> Collector {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let c = Collector::new(sock.local_addr().unwrap());
        let (st, stop) = (Arc::clone(&c.state), Arc::clone(&c.stop));
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, _)) = sock.recv_from(&mut buf) {
                    st.lock().unwrap().packets.push(buf[..n].to_vec());
                }
            }
        });
        c
    }

    /// A TCP collector: every accepted stream is framed with [`Splitter`].
    pub fn tcp() -> Collector {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let c = Collector::new(l.local_addr().unwrap());
        let (st, stop) = (Arc::clone(&c.state), Arc::clone(&c.stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                st.lock().unwrap().connections += 1;
                let (st, stop) = (Arc::clone(&st), Arc::clone(&stop));
                std::thread::spawn(move || read_stream(s, st, stop));
            }
        });
        c
    }

    /// Raw packets so far.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().packets.clone()
    }
    /// Number of packets so far.
    pub fn count(&self) -> usize {
        self.state.lock().unwrap().packets.len()
    }
    /// Framing errors so far (TCP).
    pub fn errors(&self) -> Vec<String> {
        self.state.lock().unwrap().errors.clone()
    }
    /// Accepted connections (TCP).
    pub fn connections(&self) -> usize {
        self.state.lock().unwrap().connections
    }

    /// Every packet decoded as HEPv3; panics on the first invalid one or on a framing error.
    pub fn hep3(&self) -> Vec<Hep3> {
        let errors = self.errors();
        assert!(errors.is_empty(), "collector stream errors: {errors:?}");
        self.raw()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                decode_v3(p)
                    .unwrap_or_else(|e| panic!("packet #{i} is not valid HEP3: {e:?}\n{p:02x?}"))
            })
            .collect()
    }

    /// Every packet decoded as HEPv1/v2; panics on the first invalid one.
    pub fn hep2(&self) -> Vec<Hep2> {
        self.raw()
            .iter()
            .enumerate()
            .map(|(i, p)| {
                decode_v2(p)
                    .unwrap_or_else(|e| panic!("packet #{i} is not valid HEPv2: {e:?}\n{p:02x?}"))
            })
            .collect()
    }

    /// Wait (polling) until `pred` holds for the decoded packets; panics after `within`.
    pub async fn wait_hep3(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&[Hep3]) -> bool,
    ) -> Vec<Hep3> {
        let deadline = Instant::now() + within;
        loop {
            let p = self.hep3();
            if pred(&p) {
                return p;
            }
            if Instant::now() > deadline {
                let summary: Vec<String> = p.iter().map(summary).collect();
                panic!(
                    "collector never saw {what}; it has {} packets:\n{}",
                    p.len(),
                    summary.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_stream(mut s: std::net::TcpStream, st: Arc<Mutex<Captured>>, stop: Arc<AtomicBool>) {
    use std::io::Read;
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut split = Splitter::default();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => {
                if split.pending() > 0 {
                    st.lock()
                        .unwrap()
                        .errors
                        .push(format!("EOF inside a packet ({} bytes)", split.pending()));
                }
                return;
            }
            Ok(n) => match split.push(&buf[..n]) {
                Ok(pkts) => st.lock().unwrap().packets.extend(pkts),
                Err(e) => {
                    st.lock().unwrap().errors.push(format!("framing: {e:?}"));
                    return;
                }
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// One line describing a packet, for failure messages.
pub fn summary(h: &Hep3) -> String {
    let text = h.text();
    let head: String = text.chars().take(60).collect();
    format!(
        "type {:#04x} {} -> {} corr {:?}: {:?}",
        h.proto_type,
        h.src,
        h.dst,
        h.corr(),
        head
    )
}

/// Assert a HEP timestamp is within a minute of now.
pub fn assert_sane_time(sec: u32, usec: u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (i64::from(sec) - now).abs() < 60,
        "timestamp {sec} is not near now ({now})"
    );
    assert!(usec < 1_000_000, "usec {usec}");
}

/// The SIP capture whose payload is exactly `text`.
pub fn find_sip<'a>(pkts: &'a [Hep3], text: &str) -> Option<&'a Hep3> {
    pkts.iter()
        .find(|h| h.proto_type == PT_SIP && h.payload == text.as_bytes())
}

// ------------------------------------------------------------------------------------------
// Configuration.

/// A server with proto_ws and proto_hep and the MI on `{MIPORT}`; `{HEP}` takes the proto_hep
/// and tracing `modparam` lines. `{PORT}`/`{MPATH}` are left to `Server::start`.
pub const CFG_TEMPLATE: &str = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
mi_http_ip = 127.0.0.1
mi_http_port = {MIPORT}
mi_http_root = "mi"
loadmodule "proto_hep.so"
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
{HEP}

route {
    if (is_method("OPTIONS")) {
        sl_send_reply(200, "OK");
        exit;
    }
    sl_send_reply(403, "Forbidden here");
}

route[ws_filter] {
    if ($si == "127.0.0.1") exit;
    drop;
}
"#;

/// [`CFG_TEMPLATE`] with the MI port and the given modparam lines filled in.
pub fn config(mi_port: u16, hep: &str) -> String {
    CFG_TEMPLATE
        .replace("{MIPORT}", &mi_port.to_string())
        .replace("{HEP}", hep)
}

/// `modparam` lines for one destination `hep_dest` (`hep_id` value given) traced by proto_ws.
pub fn trace_params(hep_id: &str, homer5: bool, capture_id: u32, filter: bool) -> String {
    let mut s = format!(
        "modparam(\"proto_hep\", \"hep_id\", \"{hep_id}\")\n\
         modparam(\"proto_hep\", \"hep_capture_id\", {capture_id})\n\
         modparam(\"proto_hep\", \"homer5_on\", {})\n\
         modparam(\"proto_ws\", \"trace_destination\", \"hep_dest\")\n\
         modparam(\"proto_ws\", \"trace_on\", 1)\n",
        u8::from(homer5)
    );
    if filter {
        s.push_str("modparam(\"proto_ws\", \"trace_filter_route\", \"ws_filter\")\n");
    }
    s
}

/// Wait until something listens on 127.0.0.1:`port` (the MI may start after the WS socket).
pub fn wait_port(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------
// WebSocket SIP client bound to a chosen local address.

/// A client connection (plain TCP, no TLS).
pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Connect to `server` from `local_ip` (e.g. "127.0.0.2"), subprotocol `sip`; returns the
/// client and its local address (the server's view of the peer).
pub async fn connect_from(server: SocketAddr, local_ip: &str) -> (Ws, SocketAddr) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(local_ip.parse().unwrap(), 0))
        .unwrap();
    let tcp = tokio::time::timeout(Duration::from_secs(5), sock.connect(server))
        .await
        .expect("TCP connect within 5s")
        .expect("TCP connect");
    let local = tcp.local_addr().unwrap();
    let mut req = format!("ws://{server}/").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, resp) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(req, tcp),
    )
    .await
    .expect("handshake within 5s")
    .expect("handshake");
    assert_eq!(resp.status(), 101);
    (ws, local)
}

/// The next SIP text message, skipping pings; panics after `within`.
pub async fn next_sip(ws: &mut Ws, within: Duration) -> String {
    loop {
        let m = tokio::time::timeout(within, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no message within {within:?}"))
            .expect("stream open")
            .expect("no ws error");
        match m {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => return String::from_utf8(b.to_vec()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Send an OPTIONS (with an `X-Pad` header of `pad` bytes when `pad > 0`) and wait for its 200;
/// returns (request, reply) as sent/received.
pub async fn options(
    ws: &mut Ws,
    call_id: &str,
    cseq: u32,
    pad: usize,
    within: Duration,
) -> (String, String) {
    let mut req =
        crate::common::options_request(call_id, &format!("z9hG4bK{cseq}x{}", call_id.len()), cseq);
    if pad > 0 {
        req = req.replace(
            "Content-Length: 0",
            &format!("X-Pad: {}\r\nContent-Length: 0", "p".repeat(pad)),
        );
    }
    ws.send(Message::text(req.clone())).await.expect("send");
    let reply = next_sip(ws, within).await;
    assert!(reply.starts_with("SIP/2.0 200 "), "{call_id}: {reply}");
    assert_eq!(crate::common::header(&reply, "Call-ID"), Some(call_id));
    (req, reply)
}

// ------------------------------------------------------------------------------------------
// MI: the `sipcore mi` CLI and raw JSON-RPC over HTTP.

/// Exit status and output of one `sipcore mi ...` run.
#[derive(Debug)]
pub struct MiRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run `sipcore mi ARGS...` (blocking; killed after 20 s).
pub fn mi_run(args: &[String]) -> MiRun {
    let dir = crate::common::temp_dir("mi");
    let (out_p, err_p) = (dir.join("out"), dir.join("err"));
    let mut child = std::process::Command::new(crate::common::sipcore_bin())
        .arg("mi")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap())
        .spawn()
        .expect("spawn sipcore mi");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`sipcore mi {}` did not finish within 20s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let r = MiRun {
        success: status.success(),
        stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(dir);
    r
}

/// `sipcore mi -f CFG ARGS...`: `Ok(result)` when it exits 0 (stdout must be the JSON result),
/// `Err(error object)` otherwise (the JSON object it printed on stderr or stdout).
pub async fn mi(cfg: &std::path::Path, args: &[&str]) -> Result<Value, Value> {
    let mut full = vec!["-f".to_string(), cfg.display().to_string()];
    full.extend(args.iter().map(|a| a.to_string()));
    mi_args(full).await
}

/// Like [`mi`] with the arguments after `mi` given in full (e.g. `--url ...`).
pub async fn mi_args(args: Vec<String>) -> Result<Value, Value> {
    let shown = args.join(" ");
    let r = tokio::task::spawn_blocking(move || mi_run(&args))
        .await
        .unwrap();
    if r.success {
        let v = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`sipcore mi {shown}` stdout is not JSON ({e}): {:?}",
                r.stdout
            )
        });
        return Ok(v);
    }
    let both = format!("{}\n{}", r.stderr, r.stdout);
    let obj = match (both.find('{'), both.rfind('}')) {
        (Some(a), Some(b)) if a < b => serde_json::from_str::<Value>(&both[a..=b]).ok(),
        _ => None,
    };
    match obj {
        Some(v) if v.get("code").and_then(Value::as_i64).is_some() => Err(v),
        _ => panic!("`sipcore mi {shown}` failed without a JSON error object: {both:?}"),
    }
}

/// [`mi`] that must succeed.
pub async fn mi_ok(cfg: &std::path::Path, args: &[&str]) -> Value {
    match mi(cfg, args).await {
        Ok(v) => v,
        Err(e) => panic!("`sipcore mi {}` failed: {e}", args.join(" ")),
    }
}

/// [`mi`] that must fail; returns the error's `code`.
pub async fn mi_err_code(cfg: &std::path::Path, args: &[&str]) -> i64 {
    match mi(cfg, args).await {
        Ok(v) => panic!("`sipcore mi {}` should fail, got {v}", args.join(" ")),
        Err(e) => e["code"].as_i64().unwrap(),
    }
}

/// The `hep_stats` entry of destination `name`, polled until `pred` holds (5 s).
pub async fn hep_dest_stats(
    cfg: &std::path::Path,
    name: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let all = mi_ok(cfg, &["hep_stats"]).await;
        let d = all["destinations"]
            .as_array()
            .unwrap_or_else(|| panic!("hep_stats without destinations: {all}"))
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("hep_stats has no destination {name}: {all}"))
            .clone();
        if pred(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "hep_stats never satisfied the condition: {all}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POST `body` to `http://addr{path}` (HTTP/1.1, `Connection: close`); returns (status, body).
pub fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect MI");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, clen) = loop {
        let n = s.read(&mut buf).expect("read HTTP answer");
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            let clen = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            });
            assert!(
                !head.contains("transfer-encoding: chunked"),
                "chunked MI answers are not expected:\n{head}"
            );
            break (i + 4, clen);
        }
        assert!(
            n > 0,
            "connection closed inside the HTTP header: {:?}",
            String::from_utf8_lossy(&raw)
        );
    };
    loop {
        if clen.is_some_and(|c| raw.len() >= head_end + c) {
            break;
        }
        let n = s.read(&mut buf).expect("read HTTP body");
        if n == 0 {
            assert!(clen.is_none(), "body shorter than Content-Length");
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let end = clen.map_or(raw.len(), |c| head_end + c);
    (
        status,
        String::from_utf8_lossy(&raw[head_end..end]).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HEPv3 SIP capture 127.0.0.1:5060 -> 127.0.0.2:8080, written out chunk by chunk from the
    /// spec's table (vendor u16, type u16, length u16 incl. the 6-byte header, data).
    fn golden() -> Vec<u8> {
        let mut p: Vec<u8> = vec![b'H', b'E', b'P', b'3', 0x00, 0x9A]; // total 154
        p.extend_from_slice(&[0, 0, 0, 0x01, 0, 7, 2]); // family AF_INET
        p.extend_from_slice(&[0, 0, 0, 0x02, 0, 7, 50]); // ip proto 50
        p.extend_from_slice(&[0, 0, 0, 0x03, 0, 10, 127, 0, 0, 1]); // src v4
        p.extend_from_slice(&[0, 0, 0, 0x04, 0, 10, 127, 0, 0, 2]); // dst v4
        p.extend_from_slice(&[0, 0, 0, 0x07, 0, 8, 0x13, 0xC4]); // src port 5060
        p.extend_from_slice(&[0, 0, 0, 0x08, 0, 8, 0x1F, 0x90]); // dst port 8080
        p.extend_from_slice(&[0, 0, 0, 0x09, 0, 10, 0x65, 0x53, 0xF1, 0x00]); // 1700000000
        p.extend_from_slice(&[0, 0, 0, 0x0A, 0, 10, 0x00, 0x01, 0xE2, 0x40]); // 123456 us
        p.extend_from_slice(&[0, 0, 0, 0x0B, 0, 7, 0x01]); // proto type SIP
        p.extend_from_slice(&[0, 0, 0, 0x0C, 0, 10, 0x00, 0x00, 0x07, 0xD1]); // capture id 2001
        p.extend_from_slice(&[0, 0, 0, 0x11, 0, 11]); // correlation "c1@x"
        p.extend_from_slice(b"c1@x\0");
        p.extend_from_slice(&[0, 0, 0, 0x65, 0, 18]); // extra correlation JSON
        p.extend_from_slice(br#"{"net":"7"}"#);
        p.push(b' ');
        p.extend_from_slice(&[0, 3, 0x01, 0x00, 0, 8, 0xAB, 0xCD]); // vendor 3 chunk, kept
        p.extend_from_slice(&[0, 0, 0, 0x0F, 0, 24]); // payload, 18 bytes
        p.extend_from_slice(b"SIP/2.0 200 OK\r\n\r\n");
        p
    }

    #[test]
    fn golden_v3_decodes_every_field() {
        let p = golden();
        assert_eq!(p.len(), 154);
        let h = decode_v3(&p).unwrap();
        assert_eq!((h.family, h.ip_proto, h.proto_type), (AF_INET, 50, PT_SIP));
        assert_eq!(h.src, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(h.dst, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(
            (h.ts_sec, h.ts_usec, h.capture_id),
            (1_700_000_000, 123_456, 2001)
        );
        assert_eq!(h.correlation.as_deref(), Some(&b"c1@x\0"[..]));
        assert_eq!(h.payload, b"SIP/2.0 200 OK\r\n\r\n");
        assert!(!h.compressed);
        assert_eq!(h.chunks.len(), 14);
        assert_eq!(
            h.chunk(0, ct::EXTRA_CORRELATION).unwrap().data,
            br#"{"net":"7"} "#
        );
        assert_eq!(h.chunk(3, 0x0100).unwrap().data, [0xAB, 0xCD]);
    }

    #[test]
    fn v3_header_errors() {
        let p = golden();
        assert_eq!(decode_v3(&p[..5]), Err(HepError::TooShort(5)));
        let mut bad = p.clone();
        bad[0] = b'E';
        assert_eq!(decode_v3(&bad), Err(HepError::BadMagic(*b"EEP3")));
        assert_eq!(
            decode_v3(&p[..153]),
            Err(HepError::LengthMismatch {
                header: 154,
                actual: 153
            })
        );
        let mut long = p.clone();
        long.push(0);
        assert_eq!(
            decode_v3(&long),
            Err(HepError::LengthMismatch {
                header: 154,
                actual: 155
            })
        );
    }

    /// Rebuild the golden packet with chunk `idx` (0-based) replaced by `chunk` bytes.
    fn with_chunk(idx: usize, chunk: Option<&[u8]>) -> Vec<u8> {
        let p = golden();
        let list = chunks(&p[6..], 6).unwrap();
        let mut out = b"HEP3\0\0".to_vec();
        for (i, c) in list.iter().enumerate() {
            if i == idx {
                out.extend_from_slice(chunk.unwrap_or(&[]));
                continue;
            }
            out.extend_from_slice(&c.vendor.to_be_bytes());
            out.extend_from_slice(&c.type_id.to_be_bytes());
            out.extend_from_slice(&(c.data.len() as u16 + 6).to_be_bytes());
            out.extend_from_slice(&c.data);
        }
        let n = out.len() as u16;
        out[4..6].copy_from_slice(&n.to_be_bytes());
        out
    }

    #[test]
    fn rebuilding_golden_is_identity() {
        assert_eq!(with_chunk(99, None), golden());
    }

    #[test]
    fn v3_chunk_errors() {
        // Family chunk with 2 data bytes.
        let e = decode_v3(&with_chunk(0, Some(&[0, 0, 0, 1, 0, 8, 0, 2])));
        assert_eq!(
            e,
            Err(HepError::FixedSize {
                type_id: 1,
                expected: 1,
                got: 2
            })
        );
        // Source port with 1 byte.
        let e = decode_v3(&with_chunk(4, Some(&[0, 0, 0, 7, 0, 7, 1])));
        assert_eq!(
            e,
            Err(HepError::FixedSize {
                type_id: 7,
                expected: 2,
                got: 1
            })
        );
        // IPv4 source with 16 bytes.
        let mut c = vec![0, 0, 0, 3, 0, 22];
        c.extend_from_slice(&[0; 16]);
        let e = decode_v3(&with_chunk(2, Some(&c)));
        assert_eq!(
            e,
            Err(HepError::FixedSize {
                type_id: 3,
                expected: 4,
                got: 16
            })
        );
        // Chunk length below 6 and past the end.
        let e = decode_v3(&with_chunk(13, Some(&[0, 0, 0, 0x0F, 0, 5])));
        assert!(
            matches!(e, Err(HepError::ChunkLength { len: 5, .. })),
            "{e:?}"
        );
        let e = decode_v3(&with_chunk(13, Some(&[0, 0, 0, 0x0F, 0, 9, b'x'])));
        assert!(
            matches!(
                e,
                Err(HepError::ChunkLength {
                    len: 9,
                    remaining: 7,
                    ..
                })
            ),
            "{e:?}"
        );
        // Trailing bytes too short for a chunk header.
        let e = decode_v3(&with_chunk(13, Some(&[0, 0, 0])));
        assert!(
            matches!(e, Err(HepError::ChunkHeaderTruncated { .. })),
            "{e:?}"
        );
        // Missing mandatory chunks.
        assert_eq!(
            decode_v3(&with_chunk(13, None)),
            Err(HepError::Missing(ct::PAYLOAD))
        );
        assert_eq!(
            decode_v3(&with_chunk(9, None)),
            Err(HepError::Missing(ct::CAPTURE_ID))
        );
        // Duplicate generic chunk.
        let e = decode_v3(&with_chunk(10, Some(&[0, 0, 0, 0x0B, 0, 7, 1])));
        assert_eq!(e, Err(HepError::Duplicate(ct::PROTO_TYPE)));
        // Proto type 0, microseconds out of range.
        let e = decode_v3(&with_chunk(8, Some(&[0, 0, 0, 0x0B, 0, 7, 0])));
        assert_eq!(e, Err(HepError::ZeroProtoType));
        let e = decode_v3(&with_chunk(
            7,
            Some(&[0, 0, 0, 0x0A, 0, 10, 0, 0x0F, 0x42, 0x40]),
        ));
        assert_eq!(e, Err(HepError::Usec(1_000_000)));
    }

    #[test]
    fn v3_family_must_match_addresses() {
        // AF_INET6 announced with IPv4 address chunks.
        let e = decode_v3(&with_chunk(0, Some(&[0, 0, 0, 1, 0, 7, 10])));
        assert!(matches!(e, Err(HepError::Family(_))), "{e:?}");
        // AF_INET without a destination.
        assert!(matches!(
            decode_v3(&with_chunk(3, None)),
            Err(HepError::Family(_))
        ));
        // A consistent IPv6 packet decodes.
        let p = with_chunk(0, Some(&[0, 0, 0, 1, 0, 7, 10]));
        let list = chunks(&p[6..], 6).unwrap();
        let mut v6p = b"HEP3\0\0".to_vec();
        for c in &list {
            let (t, d): (u16, Vec<u8>) = match c.type_id {
                3 => (5, [[0u8; 15].as_slice(), &[1]].concat()),
                4 => (
                    6,
                    [[0x20, 0x01, 0x0d, 0xb8].as_slice(), &[0; 11], &[2]].concat(),
                ),
                t => (t, c.data.clone()),
            };
            v6p.extend_from_slice(&c.vendor.to_be_bytes());
            v6p.extend_from_slice(&t.to_be_bytes());
            v6p.extend_from_slice(&(d.len() as u16 + 6).to_be_bytes());
            v6p.extend_from_slice(&d);
        }
        let n = v6p.len() as u16;
        v6p[4..6].copy_from_slice(&n.to_be_bytes());
        let h = decode_v3(&v6p).unwrap();
        assert_eq!(h.src, "[::1]:5060".parse().unwrap());
        assert_eq!(h.dst, "[2001:db8::2]:8080".parse().unwrap());
    }

    #[test]
    fn golden_v2() {
        let mut p = vec![
            2, 16, 2, 50, 0x13, 0xC4, 0x1F, 0x90, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x00, 0xF1, 0x53, 0x65]); // 1700000000 LE
        p.extend_from_slice(&[0x40, 0xE2, 0x01, 0x00]); // 123456 LE
        p.extend_from_slice(&[0xD1, 0x07, 0, 0]); // capture id 2001 LE + padding
        p.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let h = decode_v2(&p).unwrap();
        assert_eq!((h.version, h.family, h.ip_proto), (2, AF_INET, 50));
        assert_eq!(h.src, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(h.dst, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(
            (h.ts_sec, h.ts_usec, h.capture_id),
            (1_700_000_000, 123_456, 2001)
        );
        assert_eq!(h.payload, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let mut bad = p.clone();
        bad[1] = 40;
        assert_eq!(
            decode_v2(&bad),
            Err(HepError::V2HeaderLen {
                family: 2,
                hdr_len: 40
            })
        );
        bad = p.clone();
        bad[0] = 3;
        assert_eq!(decode_v2(&bad), Err(HepError::V2Version(3)));
        assert_eq!(decode_v2(&p[..20]), Err(HepError::TooShort(20)));
    }

    #[test]
    fn splitter_handles_coalesced_and_split_reads() {
        let a = golden();
        let b = with_chunk(13, Some(b"\0\0\0\x0F\0\x07z"));
        let stream: Vec<u8> = [a.clone(), b.clone(), a.clone()].concat();
        // Everything in one read.
        let mut s = Splitter::default();
        assert_eq!(
            s.push(&stream).unwrap(),
            vec![a.clone(), b.clone(), a.clone()]
        );
        assert_eq!(s.pending(), 0);
        // Byte by byte.
        let mut s = Splitter::default();
        let mut got = Vec::new();
        for byte in &stream {
            got.extend(s.push(std::slice::from_ref(byte)).unwrap());
        }
        assert_eq!(got, vec![a.clone(), b.clone(), a.clone()]);
        // A split inside the length field, then the rest with the next packet.
        let mut s = Splitter::default();
        assert!(s.push(&stream[..5]).unwrap().is_empty());
        assert_eq!(s.pending(), 5);
        assert_eq!(s.push(&stream[5..a.len() + 3]).unwrap(), vec![a.clone()]);
        assert_eq!(s.pending(), 3);
        assert_eq!(s.push(&stream[a.len() + 3..]).unwrap(), vec![b, a]);
    }

    #[test]
    fn splitter_rejects_garbage() {
        let mut s = Splitter::default();
        assert_eq!(s.push(b"HEX"), Err(HepError::BadMagic(*b"HEX\0")));
        let mut s = Splitter::default();
        assert!(s.push(b"HEP3\0").unwrap().is_empty());
        assert!(matches!(
            s.push(b"\x05"),
            Err(HepError::LengthMismatch { header: 5, .. })
        ));
    }

    fn wait_count(c: &Collector, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.count() < n {
            assert!(
                Instant::now() < deadline,
                "collector has {} of {n}",
                c.count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn tcp_collector_frames_split_writes_and_flags_truncation() {
        use std::io::Write;
        let c = Collector::tcp();
        let (a, b) = (golden(), with_chunk(13, Some(b"\0\0\0\x0F\0\x07z")));
        let stream = [a.clone(), b.clone()].concat();
        let mut s = std::net::TcpStream::connect(c.addr).unwrap();
        s.write_all(&stream[..a.len() + 10]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(&stream[a.len() + 10..]).unwrap();
        s.write_all(&a[..9]).unwrap();
        wait_count(&c, 2);
        assert_eq!(c.raw(), vec![a.clone(), b]);
        assert_eq!(c.hep3().len(), 2);
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.errors().is_empty() {
            assert!(
                Instant::now() < deadline,
                "EOF inside a packet not reported"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            c.errors(),
            vec!["EOF inside a packet (9 bytes)".to_string()]
        );
        assert_eq!(c.connections(), 1);
    }

    #[test]
    fn udp_collector_keeps_datagrams() {
        let c = Collector::udp();
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(&golden(), c.addr).unwrap();
        s.send_to(b"junk", c.addr).unwrap();
        wait_count(&c, 2);
        assert_eq!(c.raw()[1], b"junk");
        assert_eq!(decode_v3(&c.raw()[0]).unwrap().capture_id, 2001);
    }

    #[test]
    fn http_post_reads_split_answer() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"{\"a\":1}") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"ngth: 8\r\n\r\n{\"b\":").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"22}").unwrap();
            String::from_utf8(req).unwrap()
        });
        assert_eq!(
            http_post(addr, "/mi", r#"{"a":1}"#),
            (200, r#"{"b":22}"#.to_string())
        );
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /mi HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nContent-Length: 7\r\n"), "{req}");
    }
}
