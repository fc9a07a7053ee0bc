//! One receiving thread: blocks in `recvfrom` on its own socket, classifies each datagram
//! ([`crate::classify`]) and hands SIP to the host (`HostApi::deliver`, which runs the script
//! on this thread), until the runtime stops.
use crate::classify::{classify, Datagram};
use crate::stats;
use crate::trace::Tracer;
use abi_stable::std_types::{RSlice, RStr};
use sipcore_abi::{catch_panic, HostApiRef, LogKv, LogLevel, Proto, ReceiveInfo, SockAddr};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// The thread's loop on `sock`, bound to `local` for listener `listener`.
pub fn run(shared: &Shared, sock: &UdpSocket, listener: u32, local: SocketAddr) {
    let mut buf = vec![0u8; BUF_LEN];
    let mut failing = false;
    loop {
        let got = sock.recv_from(&mut buf);
        // Stopping wakes the receive with a read shutdown, which some kernels report as an
        // error: whatever it returned, stop first.
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        match got {
            Ok((n, peer)) => {
                failing = false;
                let data = buf.get(..n).unwrap_or_default();
                if let Err(p) = catch_panic(|| datagram(shared, data, peer, listener, local)) {
                    shared.log(
                        LogLevel::CRIT,
                        &format!("panic while handling a datagram: {p}"),
                        &[("peer", &peer.to_string())],
                    );
                }
            }
            Err(e) if transient(&e) => {}
            Err(e) => {
                stats::RECEIVE_ERRORS.inc();
                if !failing {
                    failing = true;
                    shared.log(
                        LogLevel::ERR,
                        &format!("receive failed on udp:{local}: {e}"),
                        &[],
                    );
                }
                // Never spin on a persistent error.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
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

/// One datagram of `data.len()` bytes from `peer`.
fn datagram(shared: &Shared, data: &[u8], peer: SocketAddr, listener: u32, local: SocketAddr) {
    stats::RECEIVED.inc();
    stats::RECEIVED_BYTES.add(data.len() as u64);
    let verdict = classify(data, peer.port(), shared.max_msg_size);
    if verdict != Datagram::Sip {
        stats::dropped(verdict);
        note_first_drop(shared, verdict, peer, data.len());
        return;
    }
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
