//! The running transport: the bound sockets of every `socket=udp:` line, their receiving
//! threads, and sending (RFC 3261 §18.1.1, §18.2.2: from the socket the host names, else the
//! first one of the destination's address family).
use crate::params::Spread;
use crate::readiness::Readiness;
use crate::sequence::Sequencer;
use crate::socket::{self, BindError};
use crate::stats;
use crate::worker::{self, Shared};
use sipcore_abi::{LogLevel, SendError, SendTarget, NO_LISTENER};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A `socket=udp:` line's address, as the host handed it (`Transport::add_listener`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerPlan {
    /// The host's socket id.
    pub id: u32,
    /// Address to bind.
    pub addr: SocketAddr,
    /// `use_workers N` (or the global `workers`); 0 = the module's default.
    pub workers: usize,
    /// `reuse_port`: share the address with other processes deliberately.
    pub reuse_port: bool,
    /// `as host[:port]`, empty when none.
    pub advertised: String,
    /// `tag NAME`, empty when none.
    pub tag: String,
}

/// A counter of one receiving thread, on a cache line of its own (the threads bump theirs on
/// every datagram).
#[repr(align(64))]
#[derive(Default)]
pub struct Received(pub AtomicU64);

/// A bound listener.
pub struct Listener {
    /// How it was asked for; `workers` is the number of threads it got.
    pub plan: ListenerPlan,
    /// Each thread's socket: the same one for all (`Spread::Call`), or one each.
    socks: Vec<Arc<UdpSocket>>,
    /// Datagrams each thread received (MI `udp_list`).
    pub received: Box<[Received]>,
    /// The calls its threads are handling, and each thread's wait for the socket
    /// (`Spread::Call`).
    seq: Option<(Sequencer, Vec<Readiness>)>,
    /// Round-robin over `socks` for sending.
    next: AtomicUsize,
}

impl Listener {
    fn sock(&self) -> Option<&UdpSocket> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.socks.get(i % self.socks.len().max(1)).map(|s| &**s)
    }

    /// How its datagrams reach its threads.
    pub fn spread(&self) -> Spread {
        match self.seq {
            Some(_) => Spread::Call,
            None => Spread::Source,
        }
    }

    /// Every distinct socket (one shared, or one per thread).
    fn distinct(&self) -> &[Arc<UdpSocket>] {
        let n = if self.seq.is_some() {
            1
        } else {
            self.socks.len()
        };
        &self.socks[..n.min(self.socks.len())]
    }
}

/// The index of the listener a datagram to `dst` leaves from (RFC 3261 §18.2.2: a reply from
/// the socket its request came in on): `listener` if it is one of `plans` and of `dst`'s
/// address family, else the first of `dst`'s family.
pub fn pick<'a>(
    plans: impl Iterator<Item = &'a ListenerPlan> + Clone,
    listener: u32,
    dst: SocketAddr,
) -> Option<usize> {
    let fits = |p: &ListenerPlan| p.addr.is_ipv4() == dst.is_ipv4();
    let named = (listener != NO_LISTENER)
        .then(|| plans.clone().position(|p| p.id == listener && fits(p)))
        .flatten();
    named.or_else(|| plans.clone().position(fits))
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A thread could not be started.
    #[error("cannot start a UDP worker thread: {0}")]
    Spawn(std::io::Error),
}

/// What the threads of a listener sharing `socks` (one socket, `Spread::Call`) need: the
/// socket non-blocking (they take turns with non-blocking receives and wait apart), the
/// sequencer, and each thread's wait, made here so that a kernel without `EPOLLEXCLUSIVE`
/// stops the startup.
fn ordered(
    plan: &ListenerPlan,
    socks: &[Arc<UdpSocket>],
) -> Result<(Sequencer, Vec<Readiness>), BindError> {
    let io = |what: &'static str| {
        move |source| BindError::Io {
            addr: plan.addr,
            what,
            source,
        }
    };
    if let Some(s) = socks.first() {
        s.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    }
    let waits = socks
        .iter()
        .map(|s| Readiness::new(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("epoll (EPOLLEXCLUSIVE, Linux 4.5)"))?;
    Ok((Sequencer::new(), waits))
}

/// The running transport.
pub struct Runtime {
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopped: AtomicBool,
}

impl Runtime {
    /// Bind every listener (`default_workers` threads for those with `workers` 0): one socket
    /// for all its threads, or one each, as `spread` says. No thread runs until
    /// [`Runtime::spawn_workers`]. The plugin publishes the runtime between the two, so that
    /// a worker's first delivery can be answered (as `proto_ws` does).
    pub fn bind(
        shared: Shared,
        plans: Vec<ListenerPlan>,
        default_workers: usize,
        spread: Spread,
    ) -> Result<Runtime, StartError> {
        let mut listeners = Vec::with_capacity(plans.len());
        for mut plan in plans {
            if plan.workers == 0 {
                plan.workers = default_workers.max(1);
            }
            let (socks, seq) = match spread {
                Spread::Call => {
                    let one = Arc::new(socket::bind_shared(plan.addr, plan.reuse_port)?);
                    let socks = vec![one; plan.workers];
                    let seq = ordered(&plan, &socks)?;
                    (socks, Some(seq))
                }
                Spread::Source => {
                    let socks = socket::bind_workers(plan.addr, plan.workers, plan.reuse_port)?;
                    (socks.into_iter().map(Arc::new).collect(), None)
                }
            };
            listeners.push(Listener {
                received: (0..socks.len()).map(|_| Received::default()).collect(),
                seq,
                plan,
                socks,
                next: AtomicUsize::new(0),
            });
        }
        Ok(Runtime {
            shared: Arc::new(shared),
            listeners,
            threads: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        })
    }

    /// Starts the receiving threads of every listener. On error every thread started is
    /// stopped.
    pub fn spawn_workers(&'static self) -> Result<(), StartError> {
        let mut threads = Vec::new();
        for l in &self.listeners {
            for (i, s) in l.socks.iter().enumerate() {
                let (shared, sock, id, addr) =
                    (self.shared.clone(), s.clone(), l.plan.id, l.plan.addr);
                let received = &l.received[i].0;
                let order = l.seq.as_ref().and_then(|(seq, w)| Some((seq, w.get(i)?)));
                let spawned = std::thread::Builder::new()
                    .name(format!("udp{id}-{i}"))
                    .spawn(move || {
                        let lane = worker::Lane {
                            sock: &sock,
                            listener: id,
                            local: addr,
                            received,
                            order,
                        };
                        worker::run(&shared, &lane)
                    });
                match spawned {
                    Ok(h) => threads.push(h),
                    Err(e) => {
                        *self.threads.lock().unwrap_or_else(|p| p.into_inner()) = threads;
                        self.stop_within(Duration::from_secs(1));
                        return Err(StartError::Spawn(e));
                    }
                }
            }
        }
        *self.threads.lock().unwrap_or_else(|p| p.into_inner()) = threads;
        Ok(())
    }

    /// The bound listeners (MI `udp_list`).
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    fn route(&self, listener: u32, dst: SocketAddr) -> Option<&Listener> {
        let i = pick(self.listeners.iter().map(|l| &l.plan), listener, dst)?;
        self.listeners.get(i)
    }

    /// Send `data` as one datagram to `target.dst` (no connection: `conn_id` is ignored and 0
    /// is returned). Never waits: a full send buffer drops the datagram
    /// ([`SendError::QUEUE_FULL`], counted).
    pub fn send(&self, target: &SendTarget, data: &[u8]) -> Result<u64, SendError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(SendError::CLOSED);
        }
        let dst = match target.dst.to_std() {
            Some(d) if d.port() != 0 => d,
            _ => {
                stats::SEND_ERRORS.inc();
                return Err(SendError::NO_CONNECTION);
            }
        };
        let Some((l, sock)) = self
            .route(target.listener, dst)
            .and_then(|l| Some((l, l.sock()?)))
        else {
            stats::SEND_ERRORS.inc();
            return Err(SendError::UNSUPPORTED);
        };
        // Whether tracing was on when the datagram left, read before it leaves: read after, a
        // reply sent while tracing was off could be traced once the peer, having got it,
        // switched tracing on (MI udp_trace).
        let tracing = crate::trace::TRACE_ON.load(Ordering::Relaxed);
        match socket::send_to(sock, data, dst) {
            Ok(n) => {
                stats::SENT.inc();
                stats::SENT_BYTES.add(n as u64);
                if let (true, Some(t)) = (tracing, &self.shared.tracer) {
                    t.datagram(false, dst, l.plan.addr, l.plan.id, data);
                }
                Ok(0)
            }
            Err(e) => {
                let err = socket::send_error(&e);
                if err == SendError::QUEUE_FULL {
                    stats::SEND_QUEUE_FULL.inc();
                } else {
                    stats::SEND_ERRORS.inc();
                    // The text names the error, not the destination: the host writes the
                    // same warning at most 10 times a second.
                    self.shared.log(
                        LogLevel::WARN,
                        &format!("sending a datagram failed: {e}"),
                        &[("dst", &dst.to_string()), ("len", &data.len().to_string())],
                    );
                }
                Err(err)
            }
        }
    }

    /// Stop: the threads leave their receive at once (read shutdown) and are waited for up
    /// to `within` (one may be running the script for a datagram it received); later sends
    /// fail with [`SendError::CLOSED`]. Calling it again does nothing more.
    pub fn stop_within(&self, within: Duration) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.stopping.store(true, Ordering::Release);
        for s in self.listeners.iter().flat_map(|l| l.distinct()) {
            socket::wake(s);
        }
        let mut threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = Instant::now() + within;
        while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let busy = threads.iter().filter(|t| !t.is_finished()).count();
        for t in threads.drain(..).filter(|t| t.is_finished()) {
            let _ = t.join();
        }
        if busy > 0 {
            self.shared.log(
                LogLevel::WARN,
                &format!(
                    "{busy} UDP worker(s) still busy after {} ms; not waited for",
                    within.as_millis()
                ),
                &[],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: u32, addr: &str) -> ListenerPlan {
        ListenerPlan {
            id,
            addr: addr.parse().unwrap(),
            workers: 1,
            reuse_port: false,
            advertised: String::new(),
            tag: String::new(),
        }
    }

    #[test]
    fn sends_leave_from_the_named_socket_else_the_first_of_the_family() {
        let plans = [
            plan(2, "192.0.2.1:5060"),
            plan(3, "[2001:db8::1]:5060"),
            plan(5, "192.0.2.2:5062"),
            plan(6, "[2001:db8::2]:5062"),
        ];
        let at = |l, d: &str| pick(plans.iter(), l, d.parse().unwrap());
        let (v4, v6) = ("198.51.100.7:5060", "[2001:db8::99]:5060");
        assert_eq!(at(5, v4), Some(2));
        assert_eq!(at(6, v6), Some(3));
        // No listener named, an unknown one, or one of the other family: the first that fits.
        assert_eq!(at(NO_LISTENER, v4), Some(0));
        assert_eq!(at(NO_LISTENER, v6), Some(1));
        assert_eq!(at(9, v4), Some(0));
        assert_eq!(at(5, v6), Some(1));
        // Nothing of the family.
        assert_eq!(
            pick(plans[..1].iter(), NO_LISTENER, v6.parse().unwrap()),
            None
        );
    }
}
