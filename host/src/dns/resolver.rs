//! The resolver's driver: a few threads off the I/O workers that run queued lookups with a
//! deadline (UDP with retransmission, TCP when truncated, RFC 1035 §4.2), a shared cache, and
//! `/etc/hosts`. An I/O worker only reads the cache ([`Resolver::resolve_now`]) or queues a
//! job ([`Resolver::submit`]); it never waits for the network.
use super::cache::Cache;
use super::error::DnsError;
use super::net::{tcp_query, UdpExchange};
use super::records::{normalize, Kind, Records};
use super::rng::draw;
use super::select::{locate, Ctx, Request, Target};
use super::sysconf::{hosts_file, Config};
use super::wire::Answer;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What to do with a lookup's outcome; runs on a resolver thread.
pub type Done = Box<dyn FnOnce(Result<Vec<Target>, DnsError>) + Send>;

struct Job {
    req: Request,
    ctx: Arc<Ctx>,
    deadline: Instant,
    done: Done,
}

/// The process's resolver.
pub struct Resolver {
    cfg: Config,
    servers: Vec<SocketAddr>,
    hosts: HashMap<String, Vec<IpAddr>>,
    cache: Mutex<Cache>,
    queue: SyncSender<Job>,
    /// The servers stopped answering (logged once per change).
    unanswered: AtomicBool,
    /// The queue was full (logged once per change).
    full: AtomicBool,
}

static RESOLVER: OnceLock<Resolver> = OnceLock::new();

/// Start the resolver with `cfg` (once, at startup); later calls keep the first.
pub fn init(cfg: Config) -> &'static Resolver {
    RESOLVER.get_or_init(|| Resolver::start(cfg))
}

/// The process's resolver (started with the defaults if [`init`] was not called).
pub fn get() -> &'static Resolver {
    init(Config::default())
}

impl Resolver {
    fn start(cfg: Config) -> Resolver {
        let (tx, rx) = sync_channel::<Job>(cfg.max_pending.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("dns-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                crate::log!(Error, "dns", "cannot start resolver thread: {}", e);
            }
        }
        let servers = cfg.effective_servers();
        let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
        crate::log!(
            Info,
            "dns",
            "resolver: servers {}, timeout {} ms, {} pending at most",
            list.join(", "),
            cfg.timeout.as_millis(),
            cfg.max_pending
        );
        Resolver {
            servers,
            hosts: hosts_file(),
            cache: Mutex::new(Cache::new(cfg.cache_size)),
            queue: tx,
            unanswered: AtomicBool::new(false),
            full: AtomicBool::new(false),
            cfg,
        }
    }

    /// `dns_try_naptr`.
    pub fn try_naptr(&self) -> bool {
        self.cfg.try_naptr
    }

    /// Locate `req` from `/etc/hosts` and the cache only: [`DnsError::Miss`] when a record is
    /// not cached (then [`Resolver::submit`]). IP literals need no record.
    pub fn resolve_now(&self, req: &Request, ctx: &Ctx) -> Result<Vec<Target>, DnsError> {
        let now = Instant::now();
        // The cache is locked per record read, so an IP literal takes no lock at all.
        locate(
            req,
            ctx,
            &mut |name, kind| {
                self.hosts_lookup(name, kind)
                    .or_else(|| self.cache_get(name, kind, now))
                    .ok_or(DnsError::Miss)
            },
            &mut draw,
        )
    }

    /// Queue a lookup of `req`; `done` runs on a resolver thread with the outcome, within
    /// `dns_timeout` of now. [`DnsError::Busy`] when `dns_max_pending` lookups are queued.
    pub fn submit(&self, req: Request, ctx: Arc<Ctx>, done: Done) -> Result<(), DnsError> {
        let job = Job {
            req,
            ctx,
            deadline: Instant::now() + self.cfg.timeout,
            done,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                if self.full.swap(false, Ordering::Relaxed) {
                    crate::log!(Info, "dns", "lookup queue accepts again");
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                if !self.full.swap(true, Ordering::Relaxed) {
                    crate::log!(
                        Warning,
                        "dns",
                        "lookup queue full ({} pending): new lookups answered 503 until it drains",
                        self.cfg.max_pending
                    );
                }
                Err(DnsError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(DnsError::Busy),
        }
    }

    fn hosts_lookup(&self, name: &str, kind: Kind) -> Option<Records> {
        let ips = self.hosts.get(&normalize(name))?;
        let want_v4 = kind == Kind::A;
        if !matches!(kind, Kind::A | Kind::Aaaa) {
            return None;
        }
        let v: Vec<IpAddr> = ips
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv4() == want_v4)
            .collect();
        Some(Records::Addrs(v))
    }

    /// One record set, from the hosts table, the cache, or the servers (cached on answer).
    fn lookup(&self, name: &str, kind: Kind, deadline: Instant) -> Result<Records, DnsError> {
        if let Some(r) = self.hosts_lookup(name, kind) {
            return Ok(r);
        }
        let now = Instant::now();
        if let Some(r) = self.cache_get(name, kind, now) {
            return Ok(r);
        }
        match self.query(name, kind, deadline) {
            Ok((records, ttl)) => {
                if self.unanswered.swap(false, Ordering::Relaxed) {
                    crate::log!(Info, "dns", "DNS servers answer again");
                }
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).put(
                    name,
                    kind,
                    records.clone(),
                    ttl,
                    Instant::now(),
                );
                Ok(records)
            }
            Err(DnsError::Timeout(n)) => {
                if !self.unanswered.swap(true, Ordering::Relaxed) {
                    let list: Vec<String> = self.servers.iter().map(ToString::to_string).collect();
                    crate::log!(
                        Warning,
                        "dns",
                        "DNS servers {} do not answer (lookup of {} timed out)",
                        list.join(", "),
                        n
                    );
                }
                Err(DnsError::Timeout(n))
            }
            Err(e) => Err(e),
        }
    }

    fn cache_get(&self, name: &str, kind: Kind, now: Instant) -> Option<Records> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name, kind, now)
    }

    /// Ask the servers in turn from one socket, retransmitting every `dns_retr_time`,
    /// `dns_retr_no` times, never past `deadline`; an answer to any of the transmissions counts.
    fn query(
        &self,
        name: &str,
        kind: Kind,
        deadline: Instant,
    ) -> Result<(Records, Duration), DnsError> {
        let ex = UdpExchange::new(name, kind, &self.servers)?;
        let step = self.cfg.retr_time.max(Duration::from_millis(50));
        for attempt in 0..=self.cfg.retr_no as usize {
            let server = self.servers[attempt % self.servers.len()];
            if Instant::now() >= deadline {
                break;
            }
            ex.send(server)?;
            let last = attempt == self.cfg.retr_no as usize;
            let until = if last {
                deadline
            } else {
                deadline.min(Instant::now() + step)
            };
            match ex.wait(until)? {
                Some(Answer::Records(r, ttl)) => return Ok((r, ttl)),
                Some(Answer::Truncated) => return tcp_query(server, name, kind, deadline),
                Some(Answer::Unrelated) | None => {}
            }
        }
        Err(DnsError::Timeout(name.to_string()))
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let Some(r) = RESOLVER.get() else {
            continue;
        };
        let Job {
            req,
            ctx,
            deadline,
            done,
        } = job;
        let result = if Instant::now() >= deadline {
            Err(DnsError::Timeout(req.host.clone()))
        } else {
            locate(
                &req,
                &ctx,
                &mut |name, kind| r.lookup(name, kind, deadline),
                &mut draw,
            )
        };
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(result))) {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::log!(
                Critical,
                "dns",
                "panic while completing the lookup of {}: {}",
                req.host,
                what
            );
        }
    }
}
