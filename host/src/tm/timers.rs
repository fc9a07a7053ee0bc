//! Timer names and values (RFC 3261 §17 and Table 4 of Appendix A, RFC 6026 §8.11), the
//! per-transaction record of armed timers (the deadlines a driver polls are in `wheel`).

use std::time::{Duration, Instant};

use thiserror::Error;

/// The transaction timers of RFC 3261 §17 (Table 4) and RFC 6026 §8.11 (L, M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE request retransmit interval, unreliable transports only (§17.1.1.2).
    A,
    /// INVITE client transaction timeout (§17.1.1.2).
    B,
    /// Wait time for response retransmissions in Completed (§17.1.1.2).
    D,
    /// Non-INVITE request retransmit interval, unreliable only (§17.1.2.2).
    E,
    /// Non-INVITE client transaction timeout (§17.1.2.2).
    F,
    /// INVITE response retransmit interval (§17.2.1).
    G,
    /// Wait time for ACK receipt (§17.2.1).
    H,
    /// Wait time for ACK retransmissions in Confirmed (§17.2.1).
    I,
    /// Wait time for non-INVITE request retransmissions (§17.2.2).
    J,
    /// Wait time for response retransmissions, non-INVITE client (§17.1.2.2).
    K,
    /// Wait time in the INVITE server Accepted state (RFC 6026 §7.1).
    L,
    /// Wait time in the INVITE client Accepted state (RFC 6026 §7.2).
    M,
}

impl Timer {
    /// Every timer, in the order of [`Timer::index`].
    pub const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    /// Position in [`Timer::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What a [`TimerValues`] refuses (RFC 3261 §17.1.1.1: T1 is an estimate of the round-trip
/// time; T2 caps the doubling of non-INVITE retransmit intervals, so it is at least T1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimerError {
    /// T1 is below a millisecond (the values are kept to the millisecond).
    #[error("T1 must be at least 1 ms")]
    ZeroT1,
    /// T2 is below T1.
    #[error("T2 ({t2:?}) must not be below T1 ({t1:?})")]
    T2BelowT1 {
        /// The T1 given.
        t1: Duration,
        /// The T2 given.
        t2: Duration,
    },
    /// T1 is so large that 64*T1 does not fit.
    #[error("T1 ({0:?}) is too large")]
    T1TooLarge(Duration),
}

/// T1, T2 and T4 (RFC 3261 §17.1.1.1, §17.1.2.2, Table 4) and the timers derived from them,
/// to the millisecond (the timer wheel's tick; every transaction keeps a copy, 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    t1: u32,
    t2: u32,
    t4: u32,
    /// `wt_timer`: the longest a finished transaction stays (caps D, I, J, K, L, M);
    /// `u32::MAX`: no cap (a sentinel, not an `Option`: that would make every transaction
    /// 16 bytes longer, with the alignment of the machines around it).
    wait: u32,
}

/// `d` in whole milliseconds, at most `u32::MAX` (49 days).
fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn dur(ms: u32) -> Duration {
    Duration::from_millis(ms.into())
}

impl Default for TimerValues {
    /// The RFC 3261 values: T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> Self {
        TimerValues {
            t1: 500,
            t2: 4_000,
            t4: 5_000,
            wait: u32::MAX,
        }
    }
}

impl TimerValues {
    /// Settable T1, T2, T4; T1 >= 1 ms, T2 >= T1 and 64*T1 must fit (§17.1.1.1: T1 may be
    /// changed, e.g. on a network known to have larger round-trip times). Kept to the
    /// millisecond.
    pub fn new(t1: Duration, t2: Duration, t4: Duration) -> Result<Self, TimerError> {
        if t1 < Duration::from_millis(1) {
            return Err(TimerError::ZeroT1);
        }
        if t2 < t1 {
            return Err(TimerError::T2BelowT1 { t1, t2 });
        }
        // 64*T1 plus a retransmit interval must still be addable to an Instant in practice:
        // a day is far beyond any sensible T1.
        if t1 > Duration::from_secs(86_400 / 64) || t2 > Duration::from_secs(86_400) {
            return Err(TimerError::T1TooLarge(t1));
        }
        Ok(TimerValues {
            t1: ms(t1),
            t2: ms(t2),
            t4: ms(t4),
            wait: u32::MAX,
        })
    }

    /// The same values with the time a finished transaction stays to absorb retransmissions
    /// capped at `wait` (OpenSIPS tm's `wt_timer`): timers D, I, J, K (RFC 3261 §17.1.1.2,
    /// §17.1.2.2, §17.2.1, §17.2.2) and L, M (RFC 6026 §7.1, §7.2) last at most `wait`. A
    /// retransmission later than that is taken as a new request (the RFC's values avoid it;
    /// OpenSIPS and Kamailio use 5 s).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = ms(wait).min(u32::MAX - 1);
        self
    }

    fn capped(&self, d: Duration) -> Duration {
        if self.wait == u32::MAX {
            d
        } else {
            d.min(dur(self.wait))
        }
    }

    /// Timers L and M: 64*T1 (RFC 6026 §7.1, §7.2), at most `wt_timer`.
    pub fn accepted(&self) -> Duration {
        self.capped(self.t1x64())
    }

    /// T1: the round-trip time estimate, first retransmit interval (A, E, G).
    pub fn t1(&self) -> Duration {
        dur(self.t1)
    }

    /// T2: the largest retransmit interval for non-INVITE requests and INVITE responses.
    pub fn t2(&self) -> Duration {
        dur(self.t2)
    }

    /// T4: how long a message may stay in the network.
    pub fn t4(&self) -> Duration {
        dur(self.t4)
    }

    /// 64*T1: timers B, F, H, J (unreliable), L, M.
    pub fn t1x64(&self) -> Duration {
        dur(self.t1) * 64
    }

    /// Timer D: at least 32 s over an unreliable transport, 0 over a reliable one (§17.1.1.2).
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(Duration::from_secs(32).max(self.t1x64()))
        }
    }

    /// Timers I and K: T4 over an unreliable transport, 0 over a reliable one (§17.1.2.2,
    /// §17.2.1).
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(dur(self.t4))
        }
    }

    /// Timer J: 64*T1 over an unreliable transport, 0 over a reliable one (§17.2.2).
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.capped(self.t1x64())
        }
    }
}

/// The timers one transaction has armed and not yet seen fire or disarmed, with their
/// deadlines; a fire the machine did not ask for (stale, early, or disarmed) is ignored.
///
/// Each kind of transaction has at most four timers of its own (RFC 3261 Figures 5-8, RFC 6026
/// Figures 5 and 7): an INVITE client A, B, D, M; a non-INVITE client E, F, K; an INVITE
/// server G, H, I, L; a non-INVITE server J. Each timer has a slot of four ([`Armed::slot`]),
/// and no two timers of one kind share one, so a machine keeps four deadlines, not twelve
/// (72 bytes, not 192: a transaction held for the RFC's timers is that much smaller).
#[derive(Debug, Clone, Default)]
pub(crate) struct Armed {
    at: [Option<Instant>; 4],
    which: [Option<Timer>; 4],
}

impl Armed {
    /// The slot of `timer`: distinct for the timers of each kind of transaction.
    pub(super) fn slot(timer: Timer) -> usize {
        match timer {
            Timer::A | Timer::E | Timer::G | Timer::J => 0,
            Timer::B | Timer::F | Timer::H => 1,
            Timer::D | Timer::I | Timer::K => 2,
            Timer::L | Timer::M => 3,
        }
    }

    /// Records `timer` as armed for `at`.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        let s = Self::slot(timer);
        debug_assert!(
            self.which[s].is_none_or(|w| w == timer),
            "{timer:?} shares a slot with {:?}, armed in the same transaction",
            self.which[s]
        );
        self.which[s] = Some(timer);
        self.at[s] = Some(at);
    }

    /// Forgets `timer`; whether it was armed.
    pub(crate) fn clear(&mut self, timer: Timer) -> bool {
        let s = Self::slot(timer);
        if self.which[s] != Some(timer) {
            return false;
        }
        self.which[s] = None;
        self.at[s] = None;
        true
    }

    /// Whether `timer` is armed and its deadline is not after `now`.
    pub(crate) fn due(&self, timer: Timer, now: Instant) -> bool {
        let s = Self::slot(timer);
        self.which[s] == Some(timer) && self.at[s].is_some_and(|at| at <= now)
    }

    /// The armed timers, in the order of [`Timer::ALL`] (each kind's timers are in that order
    /// of slots).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Timer, Instant)> + '_ {
        self.which
            .iter()
            .zip(self.at.iter())
            .filter_map(|(t, at)| Some(((*t)?, (*at)?)))
    }

    /// Forgets every timer.
    pub(crate) fn reset(&mut self) {
        *self = Armed::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_values() {
        let v = TimerValues::default();
        assert_eq!(v.t1(), Duration::from_millis(500));
        assert_eq!(v.t2(), Duration::from_secs(4));
        assert_eq!(v.t4(), Duration::from_secs(5));
        assert_eq!(v.t1x64(), Duration::from_secs(32));
        assert!(v.d(false) >= Duration::from_secs(32));
        assert_eq!(v.d(true), Duration::ZERO);
        assert_eq!(v.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(v.t4_or_zero(true), Duration::ZERO);
        assert_eq!(v.j(false), Duration::from_secs(32));
        assert_eq!(v.j(true), Duration::ZERO);
        let slow = TimerValues::new(
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(slow.t1x64(), Duration::from_secs(64));
        assert_eq!(slow.d(false), Duration::from_secs(64));
        // wt_timer caps the waits after completion only.
        let w = TimerValues::default().with_wait(Duration::from_secs(5));
        assert_eq!(w.j(false), Duration::from_secs(5));
        assert_eq!(w.d(false), Duration::from_secs(5));
        assert_eq!(w.accepted(), Duration::from_secs(5));
        assert_eq!(w.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(w.j(true), Duration::ZERO);
        assert_eq!(w.t1x64(), Duration::from_secs(32));
        let short = TimerValues::default().with_wait(Duration::from_secs(2));
        assert_eq!(short.t4_or_zero(false), Duration::from_secs(2));
    }

    /// The timers each kind of transaction may arm, in any state, as the machines declare
    /// them (`Transaction::timers_of`, which the `tm` fuzz target holds every machine to).
    fn timers_of_each_kind() -> Vec<(&'static str, Vec<Timer>)> {
        use crate::tm::tests_util::{invite, request};
        use crate::tm::{ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite};
        use crate::tm::{State, Transaction};
        let (v, t0) = (TimerValues::default(), Instant::now());
        let message = || request("MESSAGE", "z9hG4bK-slots");
        let kinds = [
            (
                "INVITE client",
                Transaction::ClientInvite(ClientInvite::new(invite(), false, v, t0).unwrap().0),
            ),
            (
                "non-INVITE client",
                Transaction::ClientNonInvite(
                    ClientNonInvite::new(message(), false, v, t0).unwrap().0,
                ),
            ),
            (
                "INVITE server",
                Transaction::ServerInvite(ServerInvite::new(invite(), false, v).unwrap().0),
            ),
            (
                "non-INVITE server",
                Transaction::ServerNonInvite(ServerNonInvite::new(message(), false, v).unwrap()),
            ),
        ];
        use State::*;
        let states = [
            Calling, Trying, Proceeding, Completed, Confirmed, Accepted, Terminated,
        ];
        kinds
            .iter()
            .map(|(name, txn)| {
                let mut timers: Vec<Timer> = states
                    .iter()
                    .flat_map(|&s| txn.timers_of(s).to_vec())
                    .collect();
                timers.sort_by_key(|t| t.index());
                timers.dedup();
                (*name, timers)
            })
            .collect()
    }

    #[test]
    fn the_timers_of_one_kind_of_transaction_have_distinct_slots() {
        for (name, timers) in timers_of_each_kind() {
            assert!(!timers.is_empty(), "{name}: no timers");
            let mut slots: Vec<usize> = timers.iter().map(|&t| Armed::slot(t)).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), timers.len(), "{name}: {timers:?} share a slot");
        }
    }

    #[test]
    fn each_kind_of_transaction_keeps_its_timers_apart() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        for (name, kind) in timers_of_each_kind() {
            // Every timer of the kind armed at once keeps its own deadline; they come back in
            // the order of Timer::ALL.
            let mut a = Armed::default();
            for (i, &t) in kind.iter().enumerate() {
                a.set(t, at(100 * (i as u64 + 1)));
            }
            let got: Vec<_> = a.iter().collect();
            let want: Vec<_> = kind
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, at(100 * (i as u64 + 1))))
                .collect();
            assert_eq!(got, want, "{name}");
            // A timer of another kind in the same slot is not armed: clearing it or asking
            // whether it is due leaves this kind's timer armed.
            let other = Timer::ALL
                .into_iter()
                .find(|&t| !kind.contains(&t) && Armed::slot(t) == Armed::slot(kind[0]))
                .expect("another kind's timer in slot 0");
            assert!(!a.due(other, at(10_000)), "{name}");
            assert!(!a.clear(other), "{name}");
            assert!(a.due(kind[0], at(100)), "{name}");
            assert!(!a.due(kind[0], at(99)), "{name}");
            assert!(a.clear(kind[0]), "{name}");
            assert!(!a.clear(kind[0]), "{name}");
            a.reset();
            assert_eq!(a.iter().count(), 0, "{name}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let s = Duration::from_secs;
        assert_eq!(
            TimerValues::new(Duration::ZERO, s(4), s(5)),
            Err(TimerError::ZeroT1)
        );
        // Kept to the millisecond: a T1 below one would be zero.
        assert_eq!(
            TimerValues::new(Duration::from_micros(999), s(4), s(5)),
            Err(TimerError::ZeroT1)
        );
        let v = TimerValues::new(Duration::from_millis(1), s(4), s(5)).unwrap();
        assert_eq!(v.t1x64(), Duration::from_millis(64));
        // wt_timer beyond u32 milliseconds caps nothing it should not.
        let w = TimerValues::default().with_wait(s(u64::from(u32::MAX)));
        assert_eq!(w.j(false), s(32));
        assert!(matches!(
            TimerValues::new(s(2), s(1), s(5)),
            Err(TimerError::T2BelowT1 { .. })
        ));
        assert!(TimerValues::new(s(100_000), s(100_000), s(5)).is_err());
    }
}
