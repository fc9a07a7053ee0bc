//! What the handle and the workers share: connection ids, commands, inboxes, the directory
//! and counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sipcore_abi::{LogLevel, SendError};

use super::admission::AcceptFail;
use super::api::{Sink, WsConfig};
use super::directory::Directory;
use super::stream::TlsHandle;
use crate::proto::handshake::ServerConfig;
use crate::proto::Limits;

/// Bit of a connection id marking an outbound connection (its frames are masked).
pub(crate) const OUTBOUND_BIT: u64 = 1 << 8;

/// Process-wide sequence of connection ids (never reused).
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);
/// Process-wide sequence of runtimes (tells the fast path which runtime a thread serves).
pub(crate) static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A fresh connection id for `worker`. Bits 44-47 hold the flavor's protocol number: every
/// plugin built from this crate has its own sequence, and the host keys some state by the
/// connection id alone (the registrar's bindings of a connection), so the ids of proto_ws,
/// proto_wss, proto_tcp and proto_tls never collide. They stay below 2^48 (exact in JSON
/// numbers read as doubles).
pub(crate) fn new_id(worker: usize, outbound: bool) -> u64 {
    let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed) & ((1 << 35) - 1);
    let tag = u64::from(crate::flavor::get().proto.0 & 0xF) << 44;
    tag | (seq << 9) | (u64::from(outbound) << 8) | (worker as u64 & 0xFF)
}

/// The worker owning connection `id`.
pub(crate) fn worker_of(id: u64) -> usize {
    (id & 0xFF) as usize
}

/// An instruction for a worker, from another thread.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Queue an encoded frame on a connection.
    Frame {
        id: u64,
        frame: Vec<u8>,
        /// The sender traced it, or knew the connection is not traced.
        traced: bool,
    },
    /// Start the closing handshake (RFC 6455 §7.1.2).
    Close { id: u64, code: u16, reason: String },
    /// Open an outbound connection.
    Connect(Box<ConnectReq>),
    /// Do not close a connection for idleness before `until` (`None`: the normal idle
    /// lifetime again); see `Runtime::keep_until`.
    Keep { id: u64, until: Option<Instant> },
    /// Take over a connection another worker accepted on a listener the workers share
    /// (round-robin spreading; see `accept.rs`).
    Adopt {
        listener: u32,
        sock: mio::net::TcpStream,
        peer: SocketAddr,
    },
    /// Describe every connection of the worker (MI `ws_list`).
    List(std::sync::mpsc::Sender<Vec<super::api::ConnSummary>>),
    /// Close everything (Close 1001) and exit once every connection is gone, or after the
    /// grace period at the latest.
    Stop(Duration),
}

/// What `connect` asked for.
#[derive(Debug)]
pub(crate) struct ConnectReq {
    pub id: u64,
    pub addr: SocketAddr,
    pub host: String,
    pub resource: String,
    pub subprotocol: Option<String>,
}

/// A worker's inbox.
pub(crate) struct Inbox {
    pub queue: Mutex<Vec<Cmd>>,
    pub waker: mio::Waker,
    /// The worker is between two polls and will look at the queue before it polls again,
    /// so a poster need not wake it (one eventfd write and one wake-up fewer per hand-off
    /// while the worker is busy). See `Worker::run_loop` for the other half.
    pub awake: AtomicBool,
}

/// State shared by the handle and the workers.
pub(crate) struct Shared {
    pub uid: u64,
    pub cfg: WsConfig,
    pub server: ServerConfig,
    /// Receive limits, one allocation shared by every connection's `WsConn`.
    pub limits: Arc<Limits>,
    pub sink: Arc<dyn Sink>,
    pub inboxes: OnceLock<Vec<Inbox>>,
    pub dir: Mutex<Directory>,
    /// Connections alive, all workers (for `max_connections`).
    pub count: AtomicUsize,
    /// Refused connections still being answered (503), all workers (bounded by
    /// `refuse_pool`).
    pub refusing: AtomicUsize,
    /// Whether accepting fails for lack of a resource, and since when (logged once per change).
    pub accept_fail: Mutex<AcceptFail>,
    pub next_worker: AtomicUsize,
    /// Round-robin counter spreading connections accepted on shared listeners.
    pub next_accept: AtomicUsize,
    /// Ids of the listeners whose one socket all workers share (no `reuse_port`).
    pub shared_listeners: OnceLock<Vec<u32>>,
    /// The TLS configuration of each TLS listener, by id.
    pub listener_tls: OnceLock<std::collections::HashMap<u32, TlsHandle>>,
}

impl Shared {
    /// The TLS configuration of listener `id`, if it is a TLS listener.
    pub fn listener_tls(&self, id: u32) -> Option<&TlsHandle> {
        self.listener_tls.get().and_then(|m| m.get(&id))
    }

    /// The directory, even if a thread panicked while holding it.
    pub fn dir(&self) -> MutexGuard<'_, Directory> {
        self.dir.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The accept failure state, even if a thread panicked while holding it.
    pub fn accept_fail(&self) -> MutexGuard<'_, AcceptFail> {
        self.accept_fail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Log through the sink.
    pub fn log(&self, level: LogLevel, msg: &str, kv: &[(&str, &str)]) {
        self.sink.log(level, msg, kv);
    }

    /// Push a command to worker `w` and wake it if its queue was empty and it may be asleep.
    ///
    /// No lost wake-up: the worker clears `awake` (SeqCst) before it checks the queue under
    /// the lock and polls; a poster checks `awake` (SeqCst) after its push under the lock. If
    /// the worker's check came first, its clear happens before the poster's load (through the
    /// lock), so the poster sees `false` and wakes it; otherwise the worker's check sees the
    /// command and it does not sleep.
    pub fn post(&self, w: usize, cmd: Cmd) -> Result<(), SendError> {
        let inbox = self
            .inboxes
            .get()
            .and_then(|v| v.get(w))
            .ok_or(SendError::INTERNAL)?;
        let was_empty = {
            let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push(cmd);
            q.len() == 1
        };
        if was_empty && !inbox.awake.load(Ordering::SeqCst) && inbox.waker.wake().is_err() {
            return Err(SendError::INTERNAL);
        }
        Ok(())
    }
}
