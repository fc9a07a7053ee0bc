//! Non-blocking HEP sender: one background thread per destination, fed through a bounded queue.
//!
//! [`Sender::send_with`] only appends the packet to the calling thread's batch in a bounded
//! [`queue`] (no allocation in steady state, no contended atomic, no wake-up of the sender
//! thread per packet): it never blocks, never does I/O, and returns `false` (counting a drop)
//! when the queue is full. All I/O, DNS resolution included, happens on the sender thread,
//! which sweeps every producer's batch at once, about every [`BATCH_WINDOW`] under load:
//!
//! * UDP ([`udp`]): one datagram per packet, many per `sendmmsg` call, from an ephemeral
//!   socket connected to the collector. Send errors (an ICMP "port unreachable" surfacing as
//!   `ECONNREFUSED` included) cost that packet only.
//! * TCP ([`tcp`]): connects with a timeout, writes with a write timeout, and on any failure
//!   drops the connection and reconnects with exponential backoff. While the collector is
//!   unreachable the queue fills up and further packets are dropped at `send`.
//! * TLS: not implemented yet ([`SenderError::TlsUnsupported`]).
//!
//! Failures are reported once per state change through the reporter given to
//! [`Sender::with_reporter`] ([`health`]): one [`HealthChange::Failing`] when a destination
//! starts losing packets, one [`HealthChange::Recovered`] when it delivers again.
//!
//! Dropping the [`Sender`] stops the thread and joins it (the wait is bounded by the connect
//! and write timeouts), so a plugin can be unloaded safely afterwards.

pub mod gso;
pub mod health;
pub mod queue;
mod reconnect;
mod stats;
pub mod tcp;
pub mod udp;

pub use health::{Health, HealthChange};
pub use stats::SenderStats;

use crate::hep_id::{HepDest, Host, Transport};
use queue::{Batch, Push, Queue};
use stats::Counters;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Smallest timeout used; the OS rejects zero timeouts.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// After a sweep that found fewer than [`FULL_SWEEP`] packets, the sender thread sleeps this
/// long before the next one, so that under load it wakes about once per window instead of once
/// per packet: a producer's `send` then never has a sleeping sender to wake (no futex call, no
/// context switch on the SIP worker's side). Packets reach the collector up to this much
/// later; an idle sender parks and is woken by the first packet.
pub const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// A sweep with at least this many packets is followed by the next at once (backlog).
pub const FULL_SWEEP: usize = 512;

/// Longest park of an idle sender thread between checks of the stop flag.
const IDLE_PARK: Duration = Duration::from_millis(250);

/// Tuning of a [`Sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Packets the queue holds before `send` starts dropping (at least 1).
    pub queue_len: usize,
    /// TCP connect timeout, per resolved address.
    pub tcp_connect_timeout: Duration,
    /// TCP write timeout: a write making no progress for this long drops the connection.
    /// Also the time allowed to flush the queue when the sender is dropped.
    pub tcp_write_timeout: Duration,
    /// First delay after a failed connect (or failed UDP resolution).
    pub backoff_min: Duration,
    /// Largest delay; the delay doubles after each consecutive failure up to this. A TCP
    /// connection lost before it was up this long counts as a failure too (a collector that
    /// accepts and then stalls), so the delay resets only after a connection that lasted.
    pub backoff_max: Duration,
    /// How long a failing destination must send without error or drop to be reported
    /// recovered.
    pub recover_after: Duration,
    /// HEPv3 over UDP: send runs of packets with UDP segmentation offload ([`gso`]).
    pub udp_gso: bool,
}

impl Default for SenderConfig {
    /// 4096 packets, 1 s connect timeout, 500 ms write timeout, backoff 100 ms → 5 s,
    /// recovered after 2 s without failure, UDP segmentation offload on.
    fn default() -> Self {
        SenderConfig {
            queue_len: 4096,
            tcp_connect_timeout: Duration::from_secs(1),
            tcp_write_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            recover_after: Duration::from_secs(2),
            udp_gso: true,
        }
    }
}

impl SenderConfig {
    /// The configuration with zero values raised to their minimum and `backoff_max >=
    /// backoff_min`.
    fn sanitized(mut self) -> SenderConfig {
        self.queue_len = self.queue_len.max(1);
        self.tcp_connect_timeout = self.tcp_connect_timeout.max(MIN_TIMEOUT);
        self.tcp_write_timeout = self.tcp_write_timeout.max(MIN_TIMEOUT);
        self.backoff_min = self.backoff_min.max(MIN_TIMEOUT);
        self.backoff_max = self.backoff_max.max(self.backoff_min);
        self
    }
}

/// Why a [`Sender`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// `transport=tls` is parsed but not implemented yet.
    #[error("HEP over TLS is not supported yet")]
    TlsUnsupported,
    /// The OS refused to start the sender thread.
    #[error("cannot start the HEP sender thread: {0}")]
    Spawn(#[source] io::Error),
}

/// State shared by the [`Sender`] handle and its thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Counters behind [`Sender::stats`].
    pub(crate) counters: Counters,
    /// Set when the handle is dropped.
    stop: AtomicBool,
}

impl Shared {
    /// The handle was dropped.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Sleeps for `d` unless stopped (the handle unparks the thread); false if stopped.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::park_timeout(deadline - now);
        }
    }
}

/// Receives a destination's state changes (on its sender thread).
pub type Reporter = Box<dyn Fn(&HealthChange) + Send>;

/// Everything a sender thread needs.
pub(crate) struct Worker {
    /// Collector host.
    pub(crate) host: Host,
    /// Collector port.
    pub(crate) port: u16,
    /// Sanitized configuration.
    pub(crate) cfg: SenderConfig,
    /// Counters and the stop flag.
    pub(crate) shared: Arc<Shared>,
    /// The queue the producers fill.
    pub(crate) queue: Arc<Queue>,
    /// Emptied batches kept for reuse.
    pub(crate) spares: Vec<Batch>,
    /// State changes are found here...
    health: Health,
    /// ...and reported here.
    report: Reporter,
    /// The latest I/O failure, named in the next `Failing` report.
    last_error: Option<String>,
    /// UDP segmentation offload may be used: `udp_gso` and HEPv3 (HEPv2 cannot be padded).
    pub(crate) gso: bool,
}

impl Worker {
    /// Resolves the collector (DNS for names, on this thread only).
    pub(crate) fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match &self.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            Host::Name(name) => {
                let addrs: Vec<SocketAddr> =
                    (name.as_str(), self.port).to_socket_addrs()?.collect();
                if addrs.is_empty() {
                    Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no address for host",
                    ))
                } else {
                    Ok(addrs)
                }
            }
        }
    }

    /// Records an I/O failure (the counters are updated by the caller).
    pub(crate) fn failed(&mut self, what: impl std::fmt::Display) {
        self.last_error = Some(what.to_string());
    }

    /// Reports a state change if the counters show one. Called on every turn of the sender
    /// loop: a few atomic loads.
    pub(crate) fn check_health(&mut self) {
        let st = self.shared.counters.snapshot();
        let last_error = &mut self.last_error;
        let change = self.health.observe(Instant::now(), st, || {
            last_error
                .take()
                .unwrap_or_else(|| "queue full: the collector does not keep up".into())
        });
        if !self.health.failing() {
            self.last_error = None;
        }
        if let Some(c) = change {
            (self.report)(&c);
        }
    }

    /// Takes every staged packet into `out`; returns how many.
    pub(crate) fn sweep(&mut self, out: &mut Vec<Batch>) -> usize {
        self.queue.sweep(&mut self.spares, out)
    }

    /// Done with `batch`: its credits go back to the queue, its buffers to the spares.
    pub(crate) fn release(&mut self, batch: Batch) {
        self.queue.release(batch, &mut self.spares);
    }

    /// Waits for the first packet (or the stop flag) while idle.
    pub(crate) fn park(&self) {
        let shared = &self.shared;
        self.queue.park(IDLE_PARK, || shared.stopping());
    }

    /// Counts everything still queued as dropped (the thread is exiting).
    pub(crate) fn drop_queued(&mut self) {
        let mut batches = Vec::new();
        let n = self.sweep(&mut batches);
        self.shared.counters.dropped(n as u64);
        for b in batches {
            self.release(b);
        }
    }
}

/// Handle to one destination's sender thread. `Send + Sync`: share it between workers.
#[derive(Debug)]
pub struct Sender {
    dest: HepDest,
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Sender {
    /// Starts the sender thread for `dest` (named `hep-<name>`). Zero sizes and durations in
    /// `cfg` are raised to their minimum. TLS destinations are refused for now. State changes
    /// are not reported (see [`Sender::with_reporter`]).
    pub fn new(dest: HepDest, cfg: SenderConfig) -> Result<Sender, SenderError> {
        Sender::with_reporter(dest, cfg, Box::new(|_| {}))
    }

    /// [`Sender::new`], reporting each state change of the destination to `report`, from the
    /// sender thread.
    pub fn with_reporter(
        dest: HepDest,
        cfg: SenderConfig,
        report: Reporter,
    ) -> Result<Sender, SenderError> {
        if dest.transport == Transport::Tls {
            return Err(SenderError::TlsUnsupported);
        }
        let cfg = cfg.sanitized();
        let queue = Arc::new(Queue::new(cfg.queue_len));
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            host: dest.host.clone(),
            port: dest.port,
            cfg,
            shared: Arc::clone(&shared),
            queue: Arc::clone(&queue),
            spares: Vec::new(),
            health: Health::new(cfg.recover_after),
            report,
            last_error: None,
            gso: cfg.udp_gso && dest.version == crate::codec::Version::V3,
        };
        let transport = dest.transport;
        let thread = thread::Builder::new()
            .name(format!("hep-{}", dest.name))
            .spawn(move || {
                worker.queue.attach();
                match transport {
                    Transport::Udp => udp::run(worker),
                    Transport::Tcp | Transport::Tls => tcp::run(worker),
                }
            })
            .map_err(SenderError::Spawn)?;
        Ok(Sender {
            dest,
            queue,
            shared,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Queues one encoded packet (copying it). Never blocks: returns false, counting a drop,
    /// when the queue is full (e.g. during a TCP outage).
    pub fn send(&self, packet: impl AsRef<[u8]>) -> bool {
        let packet = packet.as_ref();
        self.send_with(|out| {
            out.extend_from_slice(packet);
            true
        })
    }

    /// Queues one packet that `encode` appends to the given buffer (returning true; false if it
    /// cannot encode, leaving the buffer as it found it or not: the bytes are discarded).
    /// Never blocks. Returns false when the queue is full (counted as dropped) or when
    /// `encode` failed (not counted: nothing was offered).
    pub fn send_with(&self, encode: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        match self.queue.push(encode) {
            Push::Queued => true,
            Push::Full => {
                self.shared.counters.dropped(1);
                false
            }
            Push::Rejected => false,
        }
    }

    /// Current counters.
    pub fn stats(&self) -> SenderStats {
        self.shared.counters.snapshot()
    }

    /// The destination this sender serves.
    pub fn dest(&self) -> &HepDest {
        &self.dest
    }

    /// Tells the thread to stop (without waiting): it sends what is queued (UDP), or flushes
    /// for up to `tcp_write_timeout` (TCP), then exits. Packets offered after this are still
    /// taken while it runs. See [`Sender::wait_stopped`].
    pub fn begin_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.thread().unpark();
        }
    }

    /// Waits until the thread has exited, or until `deadline`; true when it has. For a
    /// sender that lives in a `static` (never dropped): the plugin's shutdown.
    pub fn wait_stopped(&self, deadline: std::time::Instant) -> bool {
        let mut guard = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match guard.as_ref() {
                None => return true,
                Some(t) if t.is_finished() => {
                    if let Some(t) = guard.take() {
                        let _ = t.join();
                    }
                    return true;
                }
                Some(_) if std::time::Instant::now() >= deadline => return false,
                Some(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
    }
}

impl Drop for Sender {
    /// Stops the thread and waits for it: queued UDP packets are still sent, a connected TCP
    /// sender gets up to `tcp_write_timeout` to flush; the rest is dropped.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let slot = self.thread.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(thread) = slot.take() {
            thread.thread().unpark();
            // A panic on the sender thread is not ours to propagate from a destructor.
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_health;
