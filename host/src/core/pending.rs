//! Requests relayed over an outbound connection that is not known to be up yet: if the
//! transport reports the connection gone before anything arrived over it (the next hop refused
//! or timed out the connect, or failed the handshake), the client gets 503 Service Unavailable
//! at once (RFC 3261 §16.9: a proxy that cannot reach a destination answers for it) instead of
//! waiting for its own transaction timeout.
//!
//! Minimal state for a stateless proxy: connection → the request's bytes and where it came
//! from, at most [`MAX_ENTRIES`], each for at most [`WATCH_FOR`]; an entry goes as soon as
//! anything arrives over its connection (it is up and speaks SIP). Connection-close reports
//! that come before the watch is registered (the connect can fail on another thread before
//! `send` returns) are remembered for a short while in a small ring.
use super::send::{peer, Core};
use crate::sip::Message;
use bytes::Bytes;
use sipcore_abi::{Proto, ReceiveInfo};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most requests watched at once; past it a request is relayed unwatched (its client then
/// waits for its own timeout, as before).
pub(crate) const MAX_ENTRIES: usize = 4096;
/// How long a request is watched after it was relayed.
pub(crate) const WATCH_FOR: Duration = Duration::from_secs(10);
/// Closed connections remembered for a watch that comes late.
const RECENT: usize = 256;

struct Watched {
    info: ReceiveInfo,
    request: Bytes,
    until: Instant,
}

#[derive(Default)]
struct Table {
    by_conn: HashMap<(u8, u64), Vec<Watched>>,
    entries: usize,
    recent_closed: VecDeque<((u8, u64), Instant)>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
/// Entries in the table: the receive path skips the lock while it is 0.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn table() -> MutexGuard<'static, Option<Table>> {
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    fn expire(&mut self, now: Instant) {
        let before = self.entries;
        self.by_conn.retain(|_, v| {
            v.retain(|w| w.until > now);
            !v.is_empty()
        });
        self.entries = self.by_conn.values().map(Vec::len).sum();
        if self.entries != before {
            COUNT.store(self.entries, Ordering::Relaxed);
        }
        while self
            .recent_closed
            .front()
            .is_some_and(|(_, t)| now.duration_since(*t) > WATCH_FOR)
        {
            self.recent_closed.pop_front();
        }
    }
}

/// Watch the request `msg` (from `info`) just queued on the outbound connection `conn_id`.
pub(crate) fn watch(core: &Core, proto: Proto, conn_id: u64, info: &ReceiveInfo, msg: &Message) {
    if msg.method_str() == Some("ACK") {
        return;
    }
    let now = Instant::now();
    let key = (proto.0, conn_id);
    let already_closed = {
        let mut g = table();
        let t = g.get_or_insert_with(Table::default);
        t.expire(now);
        if t.recent_closed.iter().any(|(k, _)| *k == key) {
            true
        } else {
            if t.entries >= MAX_ENTRIES {
                return;
            }
            t.by_conn.entry(key).or_default().push(Watched {
                info: *info,
                request: Bytes::copy_from_slice(msg.as_bytes()),
                until: now + WATCH_FOR,
            });
            t.entries += 1;
            COUNT.store(t.entries, Ordering::Relaxed);
            false
        }
    };
    if already_closed {
        answer(core, info, msg, conn_id);
    }
}

/// Something arrived over `info`'s connection: it is up, stop watching it.
pub(crate) fn connection_up(info: &ReceiveInfo) {
    if COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut g = table();
    if let Some(t) = g.as_mut() {
        if t.by_conn.remove(&(info.proto.0, info.conn_id)).is_some() {
            t.entries = t.by_conn.values().map(Vec::len).sum();
            COUNT.store(t.entries, Ordering::Relaxed);
        }
    }
}

/// The transport reports `conn_id` gone: answer 503 to every request still watched on it.
pub(crate) fn connection_closed(core: &Core, proto: Proto, conn_id: u64) {
    let now = Instant::now();
    let key = (proto.0, conn_id);
    let gone = {
        let mut g = table();
        let t = g.get_or_insert_with(Table::default);
        t.expire(now);
        if t.recent_closed.len() >= RECENT {
            t.recent_closed.pop_front();
        }
        t.recent_closed.push_back((key, now));
        let gone = t.by_conn.remove(&key).unwrap_or_default();
        t.entries -= gone.len().min(t.entries);
        COUNT.store(t.entries, Ordering::Relaxed);
        gone
    };
    for w in gone {
        if let Ok(msg) = Message::parse(w.request) {
            answer(core, &w.info, &msg, conn_id);
        }
    }
}

fn answer(core: &Core, info: &ReceiveInfo, msg: &Message, conn_id: u64) {
    crate::log!(Info, "core", "next hop unreachable (connection {} failed before it carried anything): 503", conn_id;
        "peer" => peer(info), "callid" => msg.call_id().unwrap_or(""));
    if let Err(e) = core.reply(info, msg, 503, "Service Unavailable", &[]) {
        crate::log!(Info, "core", "503 for an unreachable next hop not sent: {}", e; "peer" => peer(info));
    }
}
