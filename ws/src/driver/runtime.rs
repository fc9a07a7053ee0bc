//! [`Runtime`]: the public handle. Owns the listeners before `start`, the worker threads after,
//! and routes sends and commands to the owning worker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::admission::AcceptFail;
use super::api::{ConnSummary, DriverError, Sink, WsConfig};
pub(crate) use super::directory::DirEntry;
use super::directory::Directory;
use super::listen::{self, ListenerSet};
pub(crate) use super::shared::{new_id, worker_of, Cmd, ConnectReq, Shared, OUTBOUND_BIT};
use super::shared::{Inbox, NEXT_UID};
use super::stream::TlsHandle;
use super::worker;
use super::wqueue;
use crate::proto::handshake::ServerConfig;
use crate::proto::Limits;

mod route;

/// Longest duration any setting may have (about 10 years).
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(Default)]
struct Control {
    listeners: Vec<ListenerSet>,
    addrs: Vec<(u32, SocketAddr)>,
    tls: std::collections::HashMap<u32, TlsHandle>,
    threads: Vec<JoinHandle<()>>,
    started: bool,
    stopped: bool,
}

/// The WebSocket transport: listeners, worker threads, connections. `Send + Sync`.
pub struct Runtime {
    shared: Arc<Shared>,
    control: Mutex<Control>,
    running: AtomicBool,
}

impl Runtime {
    /// The runtime's id, which its worker threads know it by (tests reach a worker's state).
    #[cfg(test)]
    pub(crate) fn uid(&self) -> u64 {
        self.shared.uid
    }

    /// A runtime with this configuration, reporting to `sink`. Nothing runs until [`Self::start`].
    pub fn new(mut cfg: WsConfig, sink: Arc<dyn Sink>) -> Runtime {
        // Deadlines are `Instant + Duration`: keep every duration far from overflowing.
        let cap = |d: &mut Duration| *d = (*d).min(MAX_DURATION);
        cap(&mut cfg.send_timeout);
        cap(&mut cfg.handshake_timeout);
        cap(&mut cfg.inbound_handshake_timeout);
        cap(&mut cfg.max_msg_time);
        cap(&mut cfg.lifetime);
        cap(&mut cfg.keepalive_timeout);
        cap(&mut cfg.connect_timeout);
        cap(&mut cfg.refuse_deadline);
        cap(&mut cfg.tls_handshake_timeout);
        if let Some(d) = cfg.keepalive_interval.as_mut() {
            cap(d);
        }
        let server = ServerConfig {
            require_sip: cfg.require_sip,
            require_origin: cfg.require_origin,
            allowed_origins: cfg.allowed_origins.clone(),
            ..ServerConfig::default()
        };
        let limits = Limits {
            max_msg_size: cfg.max_msg_size,
            max_msg_frames: cfg.max_msg_chunks,
            max_msg_time: Some(cfg.max_msg_time).filter(|d| !d.is_zero()),
        };
        Runtime {
            shared: Arc::new(Shared {
                uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
                cfg,
                server,
                limits: Arc::new(limits),
                sink,
                inboxes: OnceLock::new(),
                dir: Mutex::new(Directory::default()),
                count: AtomicUsize::new(0),
                refusing: AtomicUsize::new(0),
                accept_fail: Mutex::new(AcceptFail::default()),
                next_worker: AtomicUsize::new(0),
                next_accept: AtomicUsize::new(0),
                shared_listeners: OnceLock::new(),
                listener_tls: OnceLock::new(),
            }),
            control: Mutex::new(Control::default()),
            running: AtomicBool::new(false),
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bind and listen on `addr` now, one socket shared by the workers, so errors such as
    /// "address in use" surface before `start`. Port 0 picks a free port (see
    /// [`Self::local_addrs`]). Same as [`Self::add_listener_reuse_port`] with `false`.
    pub fn add_listener(&self, id: u32, addr: SocketAddr) -> Result<(), DriverError> {
        self.add_listener_reuse_port(id, addr, false)
    }

    /// Bind and listen on `addr` now. Without `reuse_port`, one socket without `SO_REUSEPORT`
    /// shared by the workers: a second process on the address fails with
    /// [`DriverError::AddrInUse`]. With it (the socket line's `reuse_port`), one `SO_REUSEPORT`
    /// socket per worker: the kernel spreads accepts, and other processes that set it too
    /// share the address.
    pub fn add_listener_reuse_port(
        &self,
        id: u32,
        addr: SocketAddr,
        reuse_port: bool,
    ) -> Result<(), DriverError> {
        self.add_listener_with(id, addr, reuse_port, None)
    }

    /// As [`Self::add_listener_reuse_port`]; with `tls`, a TLS listener (`wss`): every
    /// accepted connection completes a TLS handshake (deadline `tls_handshake_timeout`) with
    /// that configuration's server domains before its WebSocket handshake. A client refused
    /// by the connection limits is closed at once (a 503 cannot precede TLS).
    pub fn add_listener_with(
        &self,
        id: u32,
        addr: SocketAddr,
        reuse_port: bool,
        tls: Option<TlsHandle>,
    ) -> Result<(), DriverError> {
        let mut c = self.control();
        if c.started || c.stopped {
            return Err(DriverError::AlreadyStarted);
        }
        let set = listen::bind(id, addr, self.shared.cfg.workers.max(1), reuse_port)?;
        if let Some(t) = tls {
            c.tls.insert(id, t);
        }
        c.addrs.push((id, set.addr));
        c.listeners.push(set);
        Ok(())
    }

    /// Spawn the worker threads (`ws-worker-N`).
    pub fn start(&self) -> Result<(), DriverError> {
        let mut c = self.control();
        if c.stopped {
            return Err(DriverError::Stopped);
        }
        if c.started {
            return Err(DriverError::AlreadyStarted);
        }
        let n = self.shared.cfg.workers;
        if n == 0 || n > 255 {
            return Err(DriverError::Config("workers must be 1-255"));
        }
        // Hand each worker its listener sockets.
        let mut per_worker: Vec<Vec<(u32, std::net::TcpListener)>> =
            (0..n).map(|_| Vec::new()).collect();
        let shared: Vec<u32> = c
            .listeners
            .iter()
            .filter(|l| !l.reuse_port)
            .map(|l| l.id)
            .collect();
        let _ = self.shared.shared_listeners.set(shared);
        let _ = self.shared.listener_tls.set(std::mem::take(&mut c.tls));
        for set in c.listeners.drain(..) {
            for (i, s) in set.sockets.into_iter().enumerate() {
                if let Some(v) = per_worker.get_mut(i % n) {
                    v.push((set.id, s));
                }
            }
        }
        let mut polls = Vec::with_capacity(n);
        let mut inboxes = Vec::with_capacity(n);
        for _ in 0..n {
            let poll = mio::Poll::new().map_err(DriverError::Spawn)?;
            let waker =
                mio::Waker::new(poll.registry(), worker::WAKER).map_err(DriverError::Spawn)?;
            inboxes.push(Inbox {
                queue: Mutex::new(Vec::new()),
                waker,
                awake: std::sync::atomic::AtomicBool::new(false),
            });
            polls.push(poll);
        }
        if self.shared.inboxes.set(inboxes).is_err() {
            return Err(DriverError::AlreadyStarted);
        }
        c.started = true;
        // Running before the first worker runs: a worker accepts at once, and a message it
        // delivers may be answered (or its connection kept) before this thread gets the CPU
        // back; with the flag still false, that send failed ("transport not running") and
        // the client never got its answer. What is sent before a worker runs waits in its
        // inbox.
        self.running.store(true, Ordering::Release);
        for (i, (poll, listeners)) in polls.into_iter().zip(per_worker).enumerate() {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("ws-worker-{i}"))
                .spawn(move || worker::run(shared, i, poll, listeners));
            match spawned {
                Ok(h) => c.threads.push(h),
                Err(e) => {
                    self.running.store(false, Ordering::Release);
                    return Err(DriverError::Spawn(e));
                }
            }
        }
        Ok(())
    }

    /// Start the closing handshake on `conn` (RFC 6455 §7.1.2) with `code` and `reason`
    /// (MI `ws_close`). False when there is no such connection.
    pub fn close(&self, conn: u64, code: u16, reason: &str) -> bool {
        if !self.shared.dir().conns.contains_key(&conn) {
            return false;
        }
        let cmd = Cmd::Close {
            id: conn,
            code,
            reason: reason.to_string(),
        };
        self.shared.post(worker_of(conn), cmd).is_ok()
    }

    /// Keep connection `conn` open for at least `secs` seconds from now even if idle (no data
    /// message for longer than the idle lifetime); an earlier keep is extended, never
    /// shortened; `0` gives it back the normal idle lifetime. Keep-alive pings and every other limit still apply. The
    /// registrar calls it for a registered flow (RFC 5626 §4.4; OpenSIPS registrar's
    /// `tcp_persistent_flag`). False when there is no such open connection. Never blocks: on
    /// the connection's own worker it is applied at once, from other threads handed over.
    pub fn keep_until(&self, conn: u64, secs: u32) -> bool {
        if !self.running.load(Ordering::Acquire) {
            return false;
        }
        let until = (secs > 0)
            .then(|| Instant::now() + Duration::from_secs(u64::from(secs)).min(MAX_DURATION));
        let w = worker_of(conn);
        if let Some(kept) = worker::with_local(self.shared.uid, w, |st| st.keep(conn, until)) {
            return kept;
        }
        match self.shared.dir().conns.get(&conn) {
            Some(e) if e.state() != "closing" => {}
            _ => return false,
        }
        self.shared.post(w, Cmd::Keep { id: conn, until }).is_ok()
    }

    /// Every connection (MI `ws_list`), as the workers that own them describe them (the
    /// directory keeps no addresses: see `Directory`). A worker that does not answer within
    /// [`LIST_WAIT`] is left out; none once the runtime is stopped.
    pub fn connections(&self) -> Vec<ConnSummary> {
        // Not started, or stopped: no worker to ask (and none holds a connection for long).
        if !self.running.load(Ordering::Acquire) {
            return Vec::new();
        }
        let n = self.shared.inboxes.get().map_or(0, Vec::len);
        let mut v = Vec::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut asked = 0;
        for w in 0..n {
            // This thread's own worker (a call from inside a `Sink` callback) answers at once.
            match worker::with_local(self.shared.uid, w, |st| st.summaries(Instant::now())) {
                Some(mine) => v.extend(mine),
                None => {
                    if self.shared.post(w, Cmd::List(tx.clone())).is_ok() {
                        asked += 1;
                    }
                }
            }
        }
        let deadline = Instant::now() + LIST_WAIT;
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(part) => v.extend(part),
                Err(_) => break,
            }
        }
        v.sort_by_key(|s| s.id);
        v
    }

    /// The bound address of every listener (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<(u32, SocketAddr)> {
        self.control().addrs.clone()
    }

    /// Close every connection (Close 1001, flushed for at most 200 ms), stop and join the
    /// workers (not joined when called on a worker thread). Idempotent.
    pub fn stop(&self) {
        self.stop_within(worker::STOP_GRACE);
    }

    /// [`Runtime::stop`] giving the connections up to `grace` to send what is queued for them
    /// and finish their closing handshakes (the host's `shutdown_timeout`); the workers exit
    /// as soon as their last connection is gone.
    pub fn stop_within(&self, grace: Duration) {
        let threads = {
            let mut c = self.control();
            if c.stopped {
                return;
            }
            c.stopped = true;
            c.listeners.clear();
            std::mem::take(&mut c.threads)
        };
        let n = self.shared.inboxes.get().map_or(0, Vec::len);
        for w in 0..n {
            let _ = self.shared.post(w, Cmd::Stop(grace));
        }
        // A worker cannot join itself (stop called from inside a Sink callback): the
        // workers then exit on their own.
        if !worker::is_worker_of(self.shared.uid) {
            for t in threads {
                let _ = t.join();
            }
        }
        self.running.store(false, Ordering::Release);
    }
}

/// How long [`Runtime::connections`] waits for the workers' answers.
pub(crate) const LIST_WAIT: Duration = Duration::from_secs(2);

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}
