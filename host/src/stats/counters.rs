//! The host's counters: OpenSIPS core (`core_stats.c`), sl (`sl.c`) and registrar
//! (`reg_mod.c`) statistics, bumped where the event happens. No lock and no allocation: safe
//! on every I/O thread for every message.
//!
//! Each counter is a sum of shards. The first [`OWNED`] threads that bump a counter get a
//! shard of their own, written by that thread alone with a plain load and store, on cache
//! lines no other thread writes; later threads share one more shard through `fetch_add`.
//! Two workers bumping `rcv_requests` on one shared line each made the line bounce between
//! the cores on every request (1% of an OPTIONS' CPU in a profile).
use super::Sample;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Threads with a shard of their own.
const OWNED: usize = 16;

/// One thread's part of every counter, on cache lines of its own.
#[repr(align(128))]
struct Shard([AtomicU64; Idx::Count as usize]);

impl Shard {
    const fn new() -> Self {
        Shard([const { AtomicU64::new(0) }; Idx::Count as usize])
    }
}

/// Shards `0..OWNED` belong to one thread each; shard `OWNED` is shared by the rest.
static SHARDS: [Shard; OWNED + 1] = [const { Shard::new() }; OWNED + 1];

/// The next shard to hand out.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard (`usize::MAX` until its first bump).
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard: its own while fewer than [`OWNED`] threads have one, else the shared
/// one.
fn slot() -> usize {
    SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed).min(OWNED);
        s.set(n);
        n
    })
}

/// One counter: an index into every shard.
pub struct Counter(usize);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        bump(&SHARDS, self.0, n);
    }

    /// The value now: the sum of every shard.
    pub fn get(&self) -> u64 {
        sum(&SHARDS, self.0)
    }
}

/// Adds `n` to counter `idx` in this thread's shard of `shards`.
fn bump(shards: &[Shard; OWNED + 1], idx: usize, n: u64) {
    let s = slot();
    let Some(cell) = shards.get(s).and_then(|shard| shard.0.get(idx)) else {
        return;
    };
    if s < OWNED {
        // Only this thread writes this shard: no read-modify-write needed.
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    } else {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counter `idx` summed over `shards`.
fn sum(shards: &[Shard; OWNED + 1], idx: usize) -> u64 {
    shards
        .iter()
        .filter_map(|s| s.0.get(idx))
        .fold(0u64, |a, c| a.wrapping_add(c.load(Ordering::Relaxed)))
}

macro_rules! counters {
    ($( $id:ident, $group:literal, $name:literal, $help:literal; )*) => {
        /// Each counter's index in a shard.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Idx { $( $id, )* Count }
        $(
            #[doc = concat!("`", $group, ":", $name, "`: ", $help, ".")]
            pub static $id: Counter = Counter(Idx::$id as usize);
        )*
        /// (group, name, counter, help) of every host counter, in OpenSIPS's order.
        static ALL: &[(&str, &str, &Counter, &str)] = &[ $( ($group, $name, &$id, $help), )* ];
    };
}

counters! {
    CORE_RCV_REQUESTS, "core", "rcv_requests", "SIP requests received and parsed";
    CORE_RCV_REPLIES, "core", "rcv_replies", "SIP replies received and parsed";
    CORE_FWD_REQUESTS, "core", "fwd_requests", "requests relayed statelessly (handed to the transport)";
    CORE_FWD_REPLIES, "core", "fwd_replies", "replies relayed back towards the client";
    CORE_DROP_REQUESTS, "core", "drop_requests", "requests whose relay failed (no transport took them)";
    CORE_DROP_REPLIES, "core", "drop_replies", "replies dropped: not for us, forged, dropped by the script, or not deliverable";
    CORE_ERR_REQUESTS, "core", "err_requests", "requests received without a usable top Via";
    CORE_ERR_REPLIES, "core", "err_replies", "replies that could not be relayed (no Via left to send them to)";
    CORE_BAD_URIS, "core", "bad_URIs_rcvd", "requests whose Request-URI does not parse (found by sanity_check)";
    CORE_BAD_MSG_HDR, "core", "bad_msg_hdr", "messages that do not parse (answered 400 when possible, else dropped)";
    SL_1XX, "sl", "1xx_replies", "1xx replies sent statelessly";
    SL_2XX, "sl", "2xx_replies", "2xx replies sent statelessly";
    SL_3XX, "sl", "3xx_replies", "3xx replies sent statelessly";
    SL_4XX, "sl", "4xx_replies", "4xx replies sent statelessly";
    SL_5XX, "sl", "5xx_replies", "5xx replies sent statelessly";
    SL_6XX, "sl", "6xx_replies", "6xx replies sent statelessly";
    SL_SENT, "sl", "sent_replies", "replies sent statelessly (sl_send_reply, registrar, auth challenges, core errors)";
    SL_SENT_ERR, "sl", "sent_err_replies", "error replies the core sent on its own (malformed request, relay failure), as sl_reply_error";
    SL_RCV_ACKS, "sl", "received_ACKs", "ACKs to our own negative replies, absorbed";
    REG_ACCEPTED, "registrar", "accepted_regs", "REGISTER requests save() accepted";
    REG_REJECTED, "registrar", "rejected_regs", "REGISTER requests save() refused";
}

/// A stateless reply with `code` was sent (sl statistics).
pub fn reply_sent(code: u16) {
    let class = match code / 100 {
        1 => &SL_1XX,
        2 => &SL_2XX,
        3 => &SL_3XX,
        4 => &SL_4XX,
        5 => &SL_5XX,
        _ => &SL_6XX,
    };
    class.inc();
    SL_SENT.inc();
}

/// The host's counters now.
pub(super) fn samples() -> Vec<Sample> {
    ALL.iter()
        .map(|(g, n, c, h)| Sample::new(g, n, c.get(), false, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_by_class() {
        let (b4, bs) = (SL_4XX.get(), SL_SENT.get());
        reply_sent(404);
        assert!(SL_4XX.get() > b4 && SL_SENT.get() > bs);
        assert!(samples()
            .iter()
            .any(|s| s.group == "sl" && s.name == "6xx_replies"));
    }

    /// Every bump counts, from threads with a shard of their own and from more threads than
    /// there are such shards (the shared one), all at the same time.
    #[test]
    fn shards_sum_every_bump() {
        static TEST: [Shard; OWNED + 1] = [const { Shard::new() }; OWNED + 1];
        let threads = OWNED * 2 + 3;
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        bump(&TEST, 2, 1);
                    }
                    bump(&TEST, 2, 5);
                    bump(&TEST, 3, 1);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sum(&TEST, 2), threads as u64 * 1005);
        assert_eq!(sum(&TEST, 3), threads as u64);
        assert_eq!(sum(&TEST, 0), 0);
        // More threads than owned shards: the shared one was used.
        assert!(NEXT.load(Ordering::Relaxed) > OWNED);
        assert!(TEST[OWNED].0[2].load(Ordering::Relaxed) > 0);
        assert_eq!(std::mem::align_of::<Shard>(), 128);
    }
}
