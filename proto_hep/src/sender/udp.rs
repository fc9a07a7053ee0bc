//! UDP sender loop: one datagram per queued packet, taken from the queue in batches of up
//! to [`MAX_BATCH`]; after a partial batch the thread waits
//! [`BATCH_WINDOW`](super::BATCH_WINDOW) so that under load it is woken by its timer, not
//! by every packet.
//!
//! The socket is bound to an ephemeral port of the collector's family and is not connected, so
//! the kernel does not report ICMP errors; when it does (`ECONNREFUSED`), the packet is
//! counted as dropped and the socket kept. Other send errors drop the packet and close the
//! socket, so the next packet re-resolves the collector. A failed resolution or bind drops
//! packets until a backoff delay (doubling from `backoff_min` to `backoff_max`) has passed.

use super::Worker;
use bytes::Bytes;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Most packets taken from the queue at a time.
pub const MAX_BATCH: usize = 512;

/// An open socket and the resolved collector address.
struct Open {
    socket: UdpSocket,
    to: SocketAddr,
}

/// Opens a socket for the first resolved address of the collector.
fn open(w: &Worker) -> io::Result<Open> {
    let addrs = w.resolve()?;
    let to = addrs
        .first()
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
    let local: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    // A full socket buffer must not stall the thread forever.
    socket.set_write_timeout(Some(w.cfg.tcp_write_timeout))?;
    Ok(Open { socket, to })
}

/// Runs until the handle is dropped and the queue is drained.
pub(crate) fn run(w: Worker) {
    let counters = &w.shared.counters;
    let mut open_socket: Option<Open> = None;
    let mut retry_at: Option<Instant> = None;
    let mut backoff = w.cfg.backoff_min;
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = w.rx.recv() {
        batch.push(first);
        batch.extend(w.rx.try_iter().take(MAX_BATCH - 1));
        let full = batch.len() >= MAX_BATCH;
        for packet in batch.drain(..) {
            send_one(&w, &packet, &mut open_socket, &mut retry_at, &mut backoff);
        }
        if !full && !w.shared.stopping() {
            w.shared.sleep(super::BATCH_WINDOW);
        }
    }
    counters.down();
}

/// Sends one packet, opening the socket (after the backoff delay) when needed.
fn send_one(
    w: &Worker,
    packet: &Bytes,
    open_socket: &mut Option<Open>,
    retry_at: &mut Option<Instant>,
    backoff: &mut Duration,
) {
    let counters = &w.shared.counters;
    if open_socket.is_none() {
        if retry_at.is_some_and(|t| Instant::now() < t) {
            counters.dropped(1);
            return;
        }
        match open(w) {
            Ok(o) => {
                *open_socket = Some(o);
                *retry_at = None;
                *backoff = w.cfg.backoff_min;
                counters.up(false);
            }
            Err(_) => {
                counters.error();
                counters.dropped(1);
                *retry_at = Some(Instant::now() + *backoff);
                *backoff = (*backoff * 2).min(w.cfg.backoff_max);
                return;
            }
        }
    }
    let Some(o) = open_socket.as_ref() else {
        return;
    };
    match o.socket.send_to(packet, o.to) {
        Ok(n) if n == packet.len() => counters.sent(1),
        Ok(_) => {
            counters.error();
            counters.dropped(1);
        }
        Err(e) => {
            counters.error();
            counters.dropped(1);
            if e.kind() != io::ErrorKind::ConnectionRefused {
                *open_socket = None;
                counters.down();
            }
        }
    }
}
