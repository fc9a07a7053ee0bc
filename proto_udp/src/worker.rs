//! One receiving thread: blocks in `recvfrom` on its socket (its own, or the one its
//! listener's threads share), classifies each datagram
//! ([`crate::classify`]) and hands SIP to the host (`HostApi::deliver`, which runs the script
//! on this thread), until the runtime stops.
use crate::classify::{classify, Datagram};
use crate::readiness::Readiness;
use crate::sequence::{Begin, Sequencer};
use crate::stats;
use crate::trace::Tracer;
use abi_stable::std_types::{RSlice, RStr};
use sipcore_abi::{catch_panic, HostApiRef, LogKv, LogLevel, Proto, ReceiveInfo, SockAddr};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What every thread shares.
pub struct Shared {
    /// The host's callbacks.
    pub host: HostApiRef,
    /// Tracing, when configured.
    pub tracer: Option<Tracer>,
    /// `udp_max_msg_size`.
    pub max_msg_size: usize,
    /// Set by stop: the threads return.
    pub stopping: AtomicBool,
}

impl Shared {
    /// Log one record through the host.
    pub fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        log_via(self.host, level, msg, kv);
    }
}

/// Log through the host's drain (plugins never write logs themselves).
pub fn log_via(host: HostApiRef, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
    let kvs: Vec<LogKv<'_>> = kv
        .iter()
        .map(|(k, v)| LogKv {
            key: RStr::from_str(k),
            value: RStr::from_str(v),
        })
        .collect();
    (host.log())(
        level,
        RStr::from_str("proto_udp"),
        RStr::from_str(msg),
        RSlice::from_slice(&kvs),
    );
}

/// A receive buffer larger than any UDP payload (65,527 bytes over IPv6 without jumbograms),
/// so that a datagram is never truncated and its real size is seen.
const BUF_LEN: usize = 65_536;

/// Whether the first drop of each reason was logged: one line per reason for the life of the
/// process (then only the counters move), so a flood of STUN or junk costs no log line.
static NOTED: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];

fn note_first_drop(shared: &Shared, d: Datagram, peer: SocketAddr, len: usize) {
    let (i, what, stat) = match d {
        Datagram::TooLarge => (0, "datagrams over udp_max_msg_size", "dropped_too_large"),
        Datagram::NotSip => (1, "datagrams that are not SIP", "dropped_not_sip"),
        Datagram::PortZero => (2, "datagrams from source port 0", "dropped_port_zero"),
        _ => return,
    };
    if NOTED[i].swap(true, Ordering::Relaxed) {
        return;
    }
    let msg =
        format!("dropping {what}; this first one is logged, the others only counted (udp:{stat})");
    shared.log(
        LogLevel::INFO,
        &msg,
        &[("peer", &peer.to_string()), ("len", &len.to_string())],
    );
}

/// Where a thread receives: its socket, bound to `local` for listener `listener`; the counter
/// of the datagrams it got; and, with `udp_spread "call"`, the sequencer its listener's
/// threads share and this thread's wait for the socket.
pub struct Lane<'a> {
    /// The socket.
    pub sock: &'a UdpSocket,
    /// The host's socket id.
    pub listener: u32,
    /// The address it is bound to.
    pub local: SocketAddr,
    /// Datagrams this thread received.
    pub received: &'a AtomicU64,
    /// The calls being handled and this thread's wait (`udp_spread "call"`), None for
    /// `source`.
    pub order: Option<(&'a Sequencer, &'a Readiness)>,
}

/// The thread's loop on its lane.
pub fn run(shared: &Shared, lane: &Lane<'_>) {
    match lane.order {
        None => by_source(shared, lane),
        Some((seq, ready)) => by_call(shared, lane, seq, ready),
    }
}

/// `udp_spread "source"`: this thread's own socket, a blocking receive.
fn by_source(shared: &Shared, lane: &Lane<'_>) {
    let mut buf = vec![0u8; BUF_LEN];
    let mut failing = false;
    loop {
        let got = crate::socket::recv(lane.sock, &mut buf);
        // Stopping wakes the receive with a read shutdown, which some kernels report as an
        // error: whatever it returned, stop first.
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        match got {
            Ok(None) => {}
            Ok(Some((n, peer))) => {
                failing = false;
                lane.received.fetch_add(1, Ordering::Relaxed);
                let data = buf.get(..n).unwrap_or_default();
                if accept(shared, data, peer) {
                    guarded(shared, data, peer, lane.listener, lane.local);
                }
            }
            Err(e) => receive_failed(shared, lane.local, &e, &mut failing),
        }
    }
}

/// `udp_spread "call"`: the socket every thread of the listener shares (non-blocking), a
/// wait of this thread's own for it to be readable ([`Readiness`]), and the receive and the
/// note of the datagram's call made under one lock ([`Sequencer::turn`]), so that no thread
/// notes a datagram of a call before one the socket gave out earlier.
fn by_call(shared: &Shared, lane: &Lane<'_>, seq: &Sequencer, ready: &Readiness) {
    let (listener, local) = (lane.listener, lane.local);
    let mut buf = vec![0u8; BUF_LEN];
    let mut failing = false;
    loop {
        // Readable first (at once when datagrams wait): a receive tried on an empty socket
        // would cost a system call for each datagram an idle thread is woken for.
        match ready.wait(crate::socket::READ_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => {
                if shared.stopping.load(Ordering::Acquire) {
                    break;
                }
                continue;
            }
            Err(e) => {
                receive_failed(shared, local, &e, &mut failing);
                continue;
            }
        }
        let got = {
            let _turn = seq.turn();
            let got = crate::socket::recv(lane.sock, &mut buf);
            if shared.stopping.load(Ordering::Acquire) {
                break;
            }
            got.map(|got| {
                let (n, peer) = got?;
                lane.received.fetch_add(1, Ordering::Relaxed);
                let data = buf.get(..n).unwrap_or_default();
                accept(shared, data, peer).then(|| {
                    let key = seq.key(data, peer);
                    (n, peer, key, seq.begin(key, data, peer))
                })
            })
        };
        match got {
            Ok(Some((n, peer, key, Begin::Handle))) => {
                failing = false;
                guarded(
                    shared,
                    buf.get(..n).unwrap_or_default(),
                    peer,
                    listener,
                    local,
                );
                // What came for the same call meanwhile, in order.
                while let Some(h) = seq.next(key) {
                    guarded(shared, &h.data, h.peer, listener, local);
                }
            }
            Ok(Some((.., Begin::Held))) => stats::HELD.inc(),
            Ok(Some((.., Begin::Dropped))) => stats::DROPPED_HELD.inc(),
            // Nothing to handle, or another thread woken for the same datagram took it.
            Ok(None) => {}
            Err(e) => receive_failed(shared, local, &e, &mut failing),
        }
    }
}

/// A receive that failed: nothing for the transient errors; else counted, logged once until
/// a receive succeeds again, and a pause (never spin on a persistent error).
fn receive_failed(shared: &Shared, local: SocketAddr, e: &io::Error, failing: &mut bool) {
    if transient(e) {
        return;
    }
    stats::RECEIVE_ERRORS.inc();
    if !*failing {
        *failing = true;
        shared.log(
            LogLevel::ERR,
            &format!("receive failed on udp:{local}: {e}"),
            &[],
        );
    }
    std::thread::sleep(Duration::from_millis(10));
}

/// The read timeout, an interrupted call, or an ICMP error report: nothing to do.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionRefused
    )
}

/// Counts a datagram of `data.len()` bytes from `peer` and tells whether it is SIP (the rest
/// is dropped here, counted by reason).
fn accept(shared: &Shared, data: &[u8], peer: SocketAddr) -> bool {
    stats::RECEIVED.inc();
    stats::RECEIVED_BYTES.add(data.len() as u64);
    let verdict = classify(data, peer.port(), shared.max_msg_size);
    if verdict != Datagram::Sip {
        stats::dropped(verdict);
        note_first_drop(shared, verdict, peer, data.len());
        return false;
    }
    true
}

/// [`datagram`], a panic in it logged (the thread goes on).
fn guarded(shared: &Shared, data: &[u8], peer: SocketAddr, listener: u32, local: SocketAddr) {
    if let Err(p) = catch_panic(|| datagram(shared, data, peer, listener, local)) {
        shared.log(
            LogLevel::CRIT,
            &format!("panic while handling a datagram: {p}"),
            &[("peer", &peer.to_string())],
        );
    }
}

/// A SIP datagram from `peer`, to the host.
fn datagram(shared: &Shared, data: &[u8], peer: SocketAddr, listener: u32, local: SocketAddr) {
    stats::DELIVERED.inc();
    if let Some(t) = &shared.tracer {
        t.datagram(true, peer, local, listener, data);
    }
    let info = ReceiveInfo {
        proto: Proto::UDP,
        src: SockAddr::from(peer),
        dst: SockAddr::from(local),
        conn_id: 0,
        listener,
    };
    (shared.host.deliver())(&info, RSlice::from_slice(data));
}
