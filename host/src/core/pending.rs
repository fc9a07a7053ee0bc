//! Requests relayed over an outbound connection that is not known to be up yet: if the
//! transport reports the connection gone before anything arrived over it (the next hop refused
//! or timed out the connect, or failed the handshake), the request goes to the next target of
//! its location result over the same transport (RFC 3263 §4.3), and when none is left the
//! client gets 503 Service Unavailable at once (RFC 3261 §16.9: a proxy that cannot reach a
//! destination answers for it) instead of waiting for its own transaction timeout.
//!
//! Minimal state for a stateless proxy: connection → the request's bytes and where it came
//! from, at most [`MAX_ENTRIES`] and [`MAX_BYTES`], each for at most [`WATCH_FOR`]; an entry goes as soon as
//! anything arrives over its connection (it is up and speaks SIP). Connection-close reports
//! that come before the watch is registered (the connect can fail on another thread before
//! `send` returns) are remembered for a short while in a small ring.
use super::send::{peer, Core};
use crate::sip::Message;
use bytes::Bytes;
use sipcore_abi::{Proto, ReceiveInfo};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most requests watched at once; past it a request is relayed unwatched (its client then
/// waits for its own timeout, as before).
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Most bytes of watched requests held at once (past it, as past [`MAX_ENTRIES`]).
pub(crate) const MAX_BYTES: usize = 4 << 20;
/// How long a request is watched after it was relayed.
pub(crate) const WATCH_FOR: Duration = Duration::from_secs(10);
/// Closed connections remembered for a watch that comes late.
const RECENT: usize = 256;

/// A connection as the table keys it: protocol number and connection id.
type Key = (u8, u64);

/// What [`Table::watch`] did.
#[derive(Debug, PartialEq, Eq)]
enum Watch {
    /// Watched.
    Added,
    /// Not watched: the table is full.
    Full,
    /// The connection was already reported closed: answer now.
    AlreadyClosed,
}

/// The watch table (pure: time is passed in). `T` is what a watch keeps, `size` its bytes.
struct Table<T> {
    by_conn: HashMap<Key, Vec<(T, usize, Instant)>>,
    entries: usize,
    bytes: usize,
    recent_closed: VecDeque<(Key, Instant)>,
    /// When expired entries are next swept (at most once a second: watching stays O(1)).
    next_sweep: Option<Instant>,
}

impl<T> Table<T> {
    fn new() -> Self {
        Table {
            by_conn: HashMap::new(),
            entries: 0,
            bytes: 0,
            recent_closed: VecDeque::new(),
            next_sweep: None,
        }
    }

    fn recount(&mut self) {
        self.entries = self.by_conn.values().map(Vec::len).sum();
        self.bytes = self.by_conn.values().flatten().map(|w| w.1).sum();
    }

    fn expire(&mut self, now: Instant) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now + Duration::from_secs(1));
        self.by_conn.retain(|_, v| {
            v.retain(|w| w.2 > now);
            !v.is_empty()
        });
        self.recount();
        while self
            .recent_closed
            .front()
            .is_some_and(|(_, t)| now.saturating_duration_since(*t) > WATCH_FOR)
        {
            self.recent_closed.pop_front();
        }
    }

    /// Watch `item` on `key`; when it is not added, it comes back with the reason.
    fn watch(&mut self, key: Key, item: T, size: usize, now: Instant) -> Result<(), (Watch, T)> {
        self.expire(now);
        if self.recent_closed.iter().any(|(k, _)| *k == key) {
            return Err((Watch::AlreadyClosed, item));
        }
        if self.entries >= MAX_ENTRIES || self.bytes + size > MAX_BYTES {
            return Err((Watch::Full, item));
        }
        self.by_conn
            .entry(key)
            .or_default()
            .push((item, size, now + WATCH_FOR));
        self.entries += 1;
        self.bytes += size;
        Ok(())
    }

    fn up(&mut self, key: Key) {
        if self.by_conn.remove(&key).is_some() {
            self.recount();
        }
    }

    fn closed(&mut self, key: Key, now: Instant) -> Vec<T> {
        self.expire(now);
        if self.recent_closed.len() >= RECENT {
            self.recent_closed.pop_front();
        }
        self.recent_closed.push_back((key, now));
        let gone = self.by_conn.remove(&key).unwrap_or_default();
        self.recount();
        gone.into_iter()
            .filter(|w| w.2 > now)
            .map(|w| w.0)
            .collect()
    }
}

/// A request relayed to one target of a location result, with the targets left to try
/// (RFC 3263 §4.3).
#[derive(Debug)]
pub(crate) struct Retry {
    /// The transport of every target.
    pub proto: Proto,
    /// The request as forwarded (our Via names `proto`, its branch the client's hop: the same
    /// bytes go to any target).
    pub out: Bytes,
    /// The targets not tried yet, in order.
    pub rest: Vec<SocketAddr>,
    /// The host they were located from (see `Located::host`).
    pub host: String,
}

/// A watched request: where it came from, its bytes, and what is left to try.
type Watched = (ReceiveInfo, Bytes, Option<Retry>);

static TABLE: LazyLock<Mutex<Table<Watched>>> = LazyLock::new(|| Mutex::new(Table::new()));
/// Entries in the table: the receive path skips the lock while it is 0.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Run `f` on the table and publish its size.
fn with_table<R>(f: impl FnOnce(&mut Table<Watched>) -> R) -> R {
    let mut g: MutexGuard<'_, Table<Watched>> = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let r = f(&mut g);
    COUNT.store(g.entries, Ordering::Relaxed);
    r
}

/// Watch the request `msg` (from `info`) just queued on the outbound connection `conn_id`;
/// `retry` holds the targets to try if that connection fails before carrying anything.
pub(crate) fn watch(
    core: &Core,
    proto: Proto,
    conn_id: u64,
    info: &ReceiveInfo,
    msg: &Message,
    retry: Option<Retry>,
) {
    if msg.method_str() == Some("ACK") {
        return;
    }
    watch_bytes(
        core,
        proto,
        conn_id,
        info,
        Bytes::copy_from_slice(msg.as_bytes()),
        retry,
    );
}

fn watch_bytes(
    core: &Core,
    proto: Proto,
    conn_id: u64,
    info: &ReceiveInfo,
    request: Bytes,
    retry: Option<Retry>,
) {
    let size = request.len() + retry.as_ref().map_or(0, |r| r.out.len());
    let item = (*info, request, retry);
    let mut back = None;
    let r = with_table(
        |t| match t.watch((proto.0, conn_id), item, size, Instant::now()) {
            Err((Watch::AlreadyClosed, item)) => {
                back = Some(item);
                Watch::AlreadyClosed
            }
            Err((w, _)) => w,
            Ok(()) => Watch::Added,
        },
    );
    if let (Watch::AlreadyClosed, Some((info, request, retry))) = (r, back) {
        failed(core, &info, request, retry, conn_id);
    }
}

/// Send the forwarded request of `retry` to its next target that takes it, watching the new
/// connection with the rest: true when one did (RFC 3263 §4.3).
pub(crate) fn next_target(core: &Core, info: &ReceiveInfo, msg: &Message, retry: Retry) -> bool {
    let request = Bytes::copy_from_slice(msg.as_bytes());
    try_next(core, info, &request, retry).is_ok()
}

/// [`next_target`] on owned bytes; gives the request back when no target is left.
fn try_next(core: &Core, info: &ReceiveInfo, request: &Bytes, mut retry: Retry) -> Result<(), ()> {
    while !retry.rest.is_empty() {
        let addr = retry.rest.remove(0);
        match core.send_to(retry.proto, addr, Some(&retry.host), &retry.out) {
            Ok(id) => {
                crate::log!(Info, "core", "next hop unreachable: trying the next target {} (RFC 3263 §4.3)", addr;
                    "peer" => peer(info));
                if id != 0 {
                    let proto = retry.proto;
                    watch_bytes(core, proto, id, info, request.clone(), Some(retry));
                }
                return Ok(());
            }
            Err(e) => {
                crate::log!(Info, "core", "next target {} refused at once: {}", addr, e; "peer" => peer(info));
            }
        }
    }
    Err(())
}

/// The connection `conn_id` a request was relayed on failed before carrying anything: the
/// next target, else 503.
fn failed(core: &Core, info: &ReceiveInfo, request: Bytes, retry: Option<Retry>, conn_id: u64) {
    if let Some(retry) = retry {
        if try_next(core, info, &request, retry).is_ok() {
            return;
        }
    }
    if let Ok(msg) = Message::parse(request) {
        answer(core, info, &msg, conn_id);
    }
}

/// Something arrived over `info`'s connection: it is up, stop watching it.
pub(crate) fn connection_up(info: &ReceiveInfo) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    with_table(|t| t.up((info.proto.0, info.conn_id)));
}

/// The transport reports `conn_id` gone: every request still watched on it goes to its next
/// target, or is answered 503.
pub(crate) fn connection_closed(core: &Core, proto: Proto, conn_id: u64) {
    let gone = with_table(|t| t.closed((proto.0, conn_id), Instant::now()));
    for (info, request, retry) in gone {
        failed(core, &info, request, retry, conn_id);
    }
}

fn answer(core: &Core, info: &ReceiveInfo, msg: &Message, conn_id: u64) {
    if super::stateful::unreachable(core, msg) {
        // t_relay(): its transaction answers (the branch ends as if answered 503, §16.9).
        crate::log!(Info, "core", "next hop unreachable (connection {} failed before it carried anything)", conn_id;
            "peer" => peer(info), "callid" => msg.call_id().unwrap_or(""));
        return;
    }
    crate::log!(Info, "core", "next hop unreachable (connection {} failed before it carried anything): 503", conn_id;
        "peer" => peer(info), "callid" => msg.call_id().unwrap_or(""));
    let sent = core.reply(info, msg, 503, "Service Unavailable", &[]);
    if matches!(sent, Ok(true)) {
        crate::stats::counters::SL_SENT_ERR.inc();
    }
    if let Err(e) = sent {
        crate::log!(Info, "core", "503 for an unreachable next hop not sent: {}", e; "peer" => peer(info));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_returns_its_watches_once() {
        let mut t: Table<u32> = Table::new();
        let now = Instant::now();
        assert_eq!(t.watch((5, 1), 10, 100, now), Ok(()));
        assert_eq!(t.watch((5, 1), 11, 100, now), Ok(()));
        assert_eq!(t.watch((5, 2), 20, 100, now), Ok(()));
        assert_eq!(t.closed((5, 1), now), vec![10, 11]);
        assert_eq!(t.closed((5, 1), now), Vec::<u32>::new());
        assert_eq!((t.entries, t.bytes), (1, 100));
        // Up: no answer later.
        t.up((5, 2));
        assert_eq!(t.closed((5, 2), now), Vec::<u32>::new());
        assert_eq!((t.entries, t.bytes), (0, 0));
    }

    #[test]
    fn a_close_reported_before_the_watch_answers_at_once() {
        let mut t: Table<u32> = Table::new();
        let now = Instant::now();
        assert!(t.closed((5, 7), now).is_empty());
        assert_eq!(t.watch((5, 7), 1, 10, now), Err((Watch::AlreadyClosed, 1)));
        // Remembered only for a while.
        let later = now + WATCH_FOR + Duration::from_secs(1);
        assert_eq!(t.watch((5, 7), 1, 10, later), Ok(()));
    }

    #[test]
    fn watches_expire_and_the_table_is_bounded() {
        let mut t: Table<u32> = Table::new();
        let now = Instant::now();
        assert_eq!(t.watch((5, 1), 1, 10, now), Ok(()));
        let later = now + WATCH_FOR + Duration::from_millis(1);
        assert_eq!(t.closed((5, 1), later), Vec::<u32>::new());
        assert_eq!(
            t.watch((5, 3), 1, MAX_BYTES + 1, now),
            Err((Watch::Full, 1))
        );
        for i in 0..MAX_ENTRIES as u64 {
            assert_eq!(t.watch((5, 100 + i), 0, 1, now), Ok(()));
        }
        assert_eq!(t.watch((5, 99), 0, 1, now), Err((Watch::Full, 0)));
        assert_eq!(t.entries, MAX_ENTRIES);
    }
}
