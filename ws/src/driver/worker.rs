//! One worker thread: a mio event loop owning a slab of connections, its timers, its share of
//! the listeners and an inbox other threads post commands to.
//!
//! The worker's state lives in a `RefCell` reachable from a thread-local, so that a send made
//! on this thread (the host replying inside [`Sink::deliver`](super::Sink::deliver)) appends
//! straight to the connection's write queue; no borrow is held while `deliver` runs. Dirty
//! connections are written once the current batch of events is processed, so several replies
//! leave in one `writev`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token};
use sipcore_abi::{LogLevel, SendError};
use slab::Slab;

use super::api::ConnMeta;
use super::conn::Conn;
use super::read::Step;
use super::reclaim;
use super::runtime::{Cmd, Shared};
use super::timer::{Entry, Kind, Stamp, Timers};

/// Token of the inbox waker.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Tokens below this are listeners (their index); connections are `CONN_BASE + slot`.
pub(crate) const CONN_BASE: usize = 1 << 16;
/// How long `stop` lets Close frames flush.
pub(crate) const STOP_GRACE: Duration = Duration::from_millis(200);

/// A listener socket of this worker.
pub(crate) struct Listener {
    pub id: u32,
    pub sock: mio::net::TcpListener,
    pub paused: bool,
    /// The local address of every connection accepted here, when the listener is bound to
    /// one address (not a wildcard): no `getsockname` per connection.
    pub local: Option<SocketAddr>,
}

/// Everything a worker owns.
pub(crate) struct State {
    pub shared: Arc<Shared>,
    pub idx: usize,
    pub registry: Registry,
    pub conns: Slab<Conn>,
    pub ids: HashMap<u64, usize>,
    pub timers: Timers,
    pub dirty: Vec<usize>,
    /// Connections whose read budget ran out; read again next turn.
    pub again: Vec<usize>,
    /// Listeners whose accept batch ran out.
    pub again_accept: Vec<usize>,
    pub listeners: Vec<Listener>,
    /// Connections gone since the last notification (reported outside the borrow).
    pub closed_out: Vec<(ConnMeta, String)>,
    pub stop_at: Option<Instant>,
    /// Bytes queued for writing over this worker's connections (the sum of their
    /// `Conn::accounted`), against `max_worker_queue`.
    pub queued: usize,
    /// Handshakes refused since this worker became overloaded (0: not refusing).
    pub overload_refused: u64,
}

/// The worker as the thread-local sees it.
pub(crate) struct Worker {
    uid: u64,
    idx: usize,
    shared: Arc<Shared>,
    pub st: RefCell<State>,
}

/// Sends that took the same-thread fast path (tests only).
#[cfg(test)]
pub(crate) static FAST_SENDS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

/// Same-thread send: if this thread is worker `w` of runtime `uid` and owns `id`, queue the
/// frame directly and return the send's result; otherwise give the frame back.
pub(crate) fn local_frame(
    uid: u64,
    w: usize,
    id: u64,
    frame: Vec<u8>,
    data: &[u8],
) -> Result<Result<(), SendError>, Vec<u8>> {
    CURRENT.with(|cur| {
        let Ok(cur) = cur.try_borrow() else {
            return Err(frame);
        };
        match cur.as_ref() {
            Some(wk) if wk.uid == uid && wk.idx == w => match wk.st.try_borrow_mut() {
                Ok(mut st) => st.local_frame(id, frame, data),
                Err(_) => Err(frame),
            },
            _ => Err(frame),
        }
    })
}

/// Run `f` on this worker's state if this thread is worker `w` of runtime `uid` and its state
/// is not borrowed (inside [`Sink::deliver`](super::Sink::deliver) it is not); `None` otherwise.
pub(crate) fn with_local<R>(uid: u64, w: usize, f: impl FnOnce(&mut State) -> R) -> Option<R> {
    CURRENT.with(|cur| {
        let cur = cur.try_borrow().ok()?;
        let wk = cur.as_ref().filter(|wk| wk.uid == uid && wk.idx == w)?;
        let mut st = wk.st.try_borrow_mut().ok()?;
        Some(f(&mut st))
    })
}

/// True when called on a worker thread of runtime `uid`.
pub(crate) fn is_worker_of(uid: u64) -> bool {
    CURRENT.with(|cur| {
        cur.try_borrow()
            .map(|c| c.as_ref().is_some_and(|w| w.uid == uid))
            .unwrap_or(false)
    })
}

/// The thread body of worker `idx`.
pub(crate) fn run(
    shared: Arc<Shared>,
    idx: usize,
    mut poll: Poll,
    listeners: Vec<(u32, std::net::TcpListener)>,
) {
    let registry = match poll.registry().try_clone() {
        Ok(r) => r,
        Err(e) => {
            shared.log(
                LogLevel::ERR,
                "ws worker cannot start",
                &[("error", &e.to_string())],
            );
            return;
        }
    };
    let mut st = State {
        shared: Arc::clone(&shared),
        idx,
        registry,
        conns: Slab::new(),
        ids: HashMap::new(),
        timers: Timers::default(),
        dirty: Vec::new(),
        again: Vec::new(),
        again_accept: Vec::new(),
        listeners: Vec::new(),
        closed_out: Vec::new(),
        stop_at: None,
        queued: 0,
        overload_refused: 0,
    };
    for (id, l) in listeners {
        let mut sock = mio::net::TcpListener::from_std(l);
        let token = Token(st.listeners.len());
        let local = sock.local_addr().ok().filter(|a| !a.ip().is_unspecified());
        match st.registry.register(&mut sock, token, Interest::READABLE) {
            Ok(()) => st.listeners.push(Listener {
                id,
                sock,
                paused: false,
                local,
            }),
            Err(e) => shared.log(
                LogLevel::ERR,
                "cannot poll listener",
                &[("error", &e.to_string())],
            ),
        }
    }
    let wk = Rc::new(Worker {
        uid: shared.uid,
        idx,
        shared: Arc::clone(&shared),
        st: RefCell::new(st),
    });
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&wk)));
    wk.run_loop(&mut poll);
    {
        let mut st = wk.st.borrow_mut();
        let slots: Vec<usize> = st.conns.iter().map(|(k, _)| k).collect();
        for s in slots {
            st.kill(s, "shutdown");
        }
    }
    wk.notify_closed();
    CURRENT.with(|c| *c.borrow_mut() = None);
}

impl Worker {
    fn run_loop(&self, poll: &mut Poll) {
        let mut events = Events::with_capacity(1024);
        let mut spare: Vec<Cmd> = Vec::new();
        let inbox = self.shared.inboxes.get().and_then(|v| v.get(self.idx));
        loop {
            // Posters skip the wake-up while `awake` is set (see `Shared::post`): clear it, then
            // take the queue (one lock per turn); with commands taken, run them and only
            // collect I/O events without waiting.
            let mut timeout = self.st.borrow().poll_timeout(Instant::now());
            if let Some(inbox) = inbox {
                inbox.awake.store(false, Ordering::SeqCst);
                std::mem::swap(
                    &mut *inbox.queue.lock().unwrap_or_else(|e| e.into_inner()),
                    &mut spare,
                );
                if !spare.is_empty() {
                    inbox.awake.store(true, Ordering::SeqCst);
                    self.run_commands(&mut spare, Instant::now());
                    timeout = Some(Duration::ZERO);
                }
            }
            let polled = poll.poll(&mut events, timeout);
            if let Some(inbox) = inbox {
                inbox.awake.store(true, Ordering::SeqCst);
            }
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.shared.log(
                    LogLevel::ERR,
                    "ws worker poll failed",
                    &[("error", &e.to_string())],
                );
                return;
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    Token(t) if t < CONN_BASE => self.st.borrow_mut().accept(t, now),
                    Token(t) => {
                        let slot = t - CONN_BASE;
                        if ev.is_writable() {
                            self.st.borrow_mut().on_writable(slot, now);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            let greedy = ev.is_read_closed() || ev.is_error();
                            self.on_readable(slot, now, greedy);
                        }
                    }
                }
            }
            self.after_batch(now);
            if self.st.borrow().finished(Instant::now()) {
                return;
            }
        }
    }

    /// Read, decode and deliver until the socket is drained or the budget is spent; `greedy`
    /// as in [`Turn::greedy`](super::read::Turn::greedy).
    fn on_readable(&self, slot: usize, now: Instant, greedy: bool) {
        let mut turn = super::read::Turn::new(greedy);
        {
            // A TLS write may have waited for the socket to be readable: write again too.
            let mut st = self.st.borrow_mut();
            if st
                .conns
                .get(slot)
                .is_some_and(|c| c.sock.is_tls() && !c.wq.is_empty())
            {
                st.mark_dirty(slot);
            }
        }
        loop {
            let step = self.st.borrow_mut().read_step(slot, now, &mut turn);
            match step {
                Step::Deliver(info, payload, text) => {
                    self.shared.sink.deliver(&info, &payload, text)
                }
                Step::Again => {
                    self.st.borrow_mut().again.push(slot);
                    return;
                }
                Step::Done => return,
            }
        }
    }

    fn run_commands(&self, cmds: &mut Vec<Cmd>, now: Instant) {
        let mut st = self.st.borrow_mut();
        for cmd in cmds.drain(..) {
            st.command(cmd, now);
        }
    }

    /// Deferred reads and accepts, due timers, writes of dirty connections, `closed` callbacks.
    fn after_batch(&self, now: Instant) {
        let again = std::mem::take(&mut self.st.borrow_mut().again);
        // Their socket may hold more than a turn's worth: read until it says so.
        for slot in again {
            self.on_readable(slot, now, true);
        }
        {
            let mut st = self.st.borrow_mut();
            for li in std::mem::take(&mut st.again_accept) {
                st.accept(li, now);
            }
            let now = Instant::now();
            while let Some(e) = st.timers.pop_due(now) {
                st.on_timer(e, now);
            }
            st.flush_dirty(now);
        }
        reclaim::give_back();
        self.notify_closed();
    }

    fn notify_closed(&self) {
        let gone = std::mem::take(&mut self.st.borrow_mut().closed_out);
        for (meta, reason) in gone {
            self.shared.sink.closed(&meta, &reason);
        }
    }
}

impl State {
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.again.is_empty() || !self.again_accept.is_empty() || !self.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.timers.next(), self.stop_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|t| t.saturating_duration_since(now))
    }

    fn finished(&self, now: Instant) -> bool {
        self.stop_at
            .is_some_and(|at| self.conns.is_empty() || now >= at)
    }

    /// Arm a deadline for the connection in `slot` (an `Instant` is rounded up to the next
    /// millisecond: see [`Stamp`]).
    pub fn arm(&mut self, slot: usize, kind: Kind, at: impl Into<Stamp>) {
        let at = at.into();
        if let Some(c) = self.conns.get_mut(slot) {
            if c.armed.arm(kind, at) {
                self.timers.push(Entry {
                    at,
                    id: c.meta.id,
                    slot: u32::try_from(slot).unwrap_or(u32::MAX),
                    kind,
                });
            }
        }
    }

    /// Replace a deadline (also with a later one).
    pub fn rearm(&mut self, slot: usize, kind: Kind, at: impl Into<Stamp>) {
        if let Some(c) = self.conns.get_mut(slot) {
            c.armed.clear(kind);
        }
        self.arm(slot, kind, at);
    }

    /// Schedule a write of the connection after the current batch.
    pub fn mark_dirty(&mut self, slot: usize) {
        if let Some(c) = self.conns.get_mut(slot) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    fn command(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Frame { id, frame, traced } => self.frame_cmd(id, frame, traced, now),
            Cmd::Keep { id, until } => {
                self.keep(id, until);
            }
            Cmd::Close { id, code, reason } => {
                if let Some(&slot) = self.ids.get(&id) {
                    self.begin_close(slot, code, &reason, now);
                }
            }
            Cmd::Connect(req) => {
                if self.stop_at.is_some() {
                    self.fail_connect(&req, "shutting down");
                } else {
                    self.start_connect(req, now);
                }
            }
            Cmd::Adopt {
                listener,
                sock,
                peer,
            } => {
                // Stopping: the connection is dropped.
                if self.stop_at.is_none() {
                    self.admit(listener, sock, peer, now);
                }
            }
            Cmd::List(tx) => {
                // The caller may have given up waiting: nothing to do then.
                let _ = tx.send(self.summaries(now));
            }
            Cmd::Stop(grace) => self.begin_stop(now, grace),
        }
    }

    fn begin_stop(&mut self, now: Instant, grace: Duration) {
        if self.stop_at.is_some() {
            return;
        }
        self.stop_at = Some(now + grace);
        for mut l in self.listeners.drain(..) {
            let _ = self.registry.deregister(&mut l.sock);
        }
        let slots: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for slot in slots {
            self.begin_close(slot, 1001, "shutting down", now);
        }
    }
}
