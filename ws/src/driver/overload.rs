//! A worker's memory budget for slow readers (`max_worker_queue`): every connection's write
//! queue counts towards its worker's total. From 3/4 of the budget new handshakes on that
//! worker are refused with 503 and `Retry-After` (the worker cannot take more work); beyond
//! the budget the connection holding the most is shed: its queued frames are dropped and it
//! gets Close 1013 "Try Again Later" (RFC 6455 §7.4.1, IANA registry), so the others keep
//! being served and the process stays within its bound. One log line per shed connection,
//! one when refusals start and one when they end; both are counted (`ws:overload_refused`,
//! `ws:overload_shed`, and the Close in `ws:close_sent_1013`).
use std::time::Instant;

use sipcore_abi::LogLevel;

use super::conn::Phase;
use super::worker::State;

impl State {
    /// Bring connection `slot`'s share of the worker total up to date (after anything that
    /// changed its queues); sheds the largest queue when the total is over budget.
    pub fn account(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let cost = u32::try_from(c.queued_cost()).unwrap_or(u32::MAX);
        let old = std::mem::replace(&mut c.accounted, cost) as usize;
        self.queued = self.queued.saturating_sub(old) + cost as usize;
        if self.queued > self.shared.cfg.max_worker_queue {
            self.shed_largest(now);
        }
    }

    /// Connection `slot` is going away: its share leaves the total.
    pub fn unaccount(&mut self, accounted: u32) {
        self.queued = self.queued.saturating_sub(accounted as usize);
    }

    /// New handshakes on this worker are refused (503) while this holds.
    pub fn overloaded(&self) -> bool {
        let max = self.shared.cfg.max_worker_queue;
        self.queued >= max - max / 4
    }

    /// A handshake was refused for overload: counted, and logged when refusals start.
    pub fn note_overload_refusal(&mut self) {
        crate::stats::OVERLOAD_REFUSED.inc();
        crate::stats::handshake_refused(503);
        if self.overload_refused == 0 {
            let queued = self.queued.to_string();
            let max = self.shared.cfg.max_worker_queue.to_string();
            self.shared.log(
                LogLevel::WARN,
                "websocket worker overloaded: new connections get 503 until its write queues drain",
                &[("queued", &queued), ("max_worker_queue", &max)],
            );
        }
        self.overload_refused += 1;
    }

    /// A handshake is admitted: if refusals were going on, say how many there were.
    pub fn note_admitted(&mut self) {
        if self.overload_refused > 0 {
            let n = std::mem::take(&mut self.overload_refused).to_string();
            self.shared.log(
                LogLevel::INFO,
                "websocket worker accepts connections again",
                &[("refused", &n)],
            );
        }
    }

    /// Shed open connections, largest queue first, until the total is within the budget.
    fn shed_largest(&mut self, now: Instant) {
        while self.queued > self.shared.cfg.max_worker_queue {
            let Some((slot, _)) = self
                .conns
                .iter()
                .filter(|(_, c)| c.phase == Phase::Open && c.accounted > 0)
                .max_by_key(|(_, c)| c.accounted)
            else {
                return;
            };
            let Some(c) = self.conns.get_mut(slot) else {
                return;
            };
            let dropped = c.wq.truncate_to_front() + c.held_bytes();
            c.clear_held();
            let cost = u32::try_from(c.queued_cost()).unwrap_or(u32::MAX);
            let old = std::mem::replace(&mut c.accounted, cost) as usize;
            self.queued = self.queued.saturating_sub(old) + cost as usize;
            let peer = c.peer_str();
            let (d, max) = (
                dropped.to_string(),
                self.shared.cfg.max_worker_queue.to_string(),
            );
            self.shared.log(
                LogLevel::WARN,
                "websocket worker over max_worker_queue: shedding the largest queue with Close 1013",
                &[("peer", &peer), ("dropped", &d), ("max_worker_queue", &max)],
            );
            crate::stats::OVERLOAD_SHED.inc();
            // No longer open: not picked again.
            self.begin_close(slot, 1013, "overloaded", now);
        }
    }
}
