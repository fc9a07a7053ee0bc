//! A destination's health, from its counters: failures are reported once per state change
//! (issue 10, item 14), not per packet and not never. Pure code: the sender thread passes the
//! counters and the time in; what to log comes out.
//!
//! * healthy → failing: as soon as an observation finds new errors or drops;
//! * failing → healthy: after packets have gone out with no error and no drop for
//!   `recover_after` (a stalled TCP collector accepts the first writes into kernel buffers
//!   before the stall shows, so one good write does not prove recovery).

use super::SenderStats;
use std::fmt;
use std::time::{Duration, Instant};

/// A change of a destination's state, to be logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// Packets are being lost: the first failure after a healthy period.
    Failing {
        /// The failure that started it (an I/O error, or a full queue).
        reason: String,
        /// Packets dropped and errors counted since the last observation.
        dropped: u64,
        /// See `dropped`.
        errors: u64,
    },
    /// Packets go out again, with no failure for the recovery period.
    Recovered {
        /// How long the destination was failing.
        after: Duration,
        /// Packets dropped during the outage.
        dropped: u64,
        /// Errors counted during the outage.
        errors: u64,
    },
}

impl fmt::Display for HealthChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthChange::Failing {
                reason,
                dropped,
                errors,
            } => write!(
                f,
                "failing ({reason}): packets are dropped until it recovers \
                 ({dropped} dropped, {errors} errors so far; hep_stats has the counts)"
            ),
            HealthChange::Recovered {
                after,
                dropped,
                errors,
            } => write!(
                f,
                "recovered after {:.1} s ({dropped} packets dropped, {errors} errors meanwhile)",
                after.as_secs_f64()
            ),
        }
    }
}

/// The ongoing outage.
#[derive(Debug, Clone, Copy)]
struct Outage {
    since: Instant,
    /// Counters just before it started.
    base: SenderStats,
    /// Start of the current run of observations with progress and no failure.
    clean_since: Option<Instant>,
}

/// Health of one destination (see the module doc).
#[derive(Debug, Clone)]
pub struct Health {
    recover_after: Duration,
    last: SenderStats,
    outage: Option<Outage>,
}

impl Health {
    /// A healthy destination with all counters at zero.
    pub fn new(recover_after: Duration) -> Health {
        Health {
            recover_after,
            last: SenderStats::default(),
            outage: None,
        }
    }

    /// Whether the destination is failing.
    pub fn failing(&self) -> bool {
        self.outage.is_some()
    }

    /// Takes the counters at `now`; returns the state change to report, if any. `reason` is
    /// asked for only when a failure starts.
    pub fn observe(
        &mut self,
        now: Instant,
        st: SenderStats,
        reason: impl FnOnce() -> String,
    ) -> Option<HealthChange> {
        let last = std::mem::replace(&mut self.last, st);
        let bad = st.errors > last.errors || st.dropped > last.dropped;
        let progress = st.sent > last.sent;
        let Some(outage) = &mut self.outage else {
            if !bad {
                return None;
            }
            self.outage = Some(Outage {
                since: now,
                base: last,
                clean_since: None,
            });
            return Some(HealthChange::Failing {
                reason: reason(),
                dropped: st.dropped.saturating_sub(last.dropped),
                errors: st.errors.saturating_sub(last.errors),
            });
        };
        if bad {
            outage.clean_since = None;
            return None;
        }
        if progress && outage.clean_since.is_none() {
            outage.clean_since = Some(now);
        }
        let clean_for = outage
            .clean_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if outage.clean_since.is_none() || clean_for < self.recover_after {
            return None;
        }
        let o = *outage;
        self.outage = None;
        Some(HealthChange::Recovered {
            after: now.saturating_duration_since(o.since),
            dropped: st.dropped.saturating_sub(o.base.dropped),
            errors: st.errors.saturating_sub(o.base.errors),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sent: u64, dropped: u64, errors: u64) -> SenderStats {
        SenderStats {
            sent,
            dropped,
            errors,
            ..SenderStats::default()
        }
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_report_per_state_change() {
        let t0 = Instant::now();
        let mut h = Health::new(100 * MS);
        let why = || "connect: refused".to_string();
        assert_eq!(h.observe(t0, st(5, 0, 0), why), None);
        assert_eq!(
            h.observe(t0 + MS, st(5, 2, 1), why),
            Some(HealthChange::Failing {
                reason: "connect: refused".into(),
                dropped: 2,
                errors: 1
            })
        );
        // More failures: nothing new to say.
        for i in 2..50 {
            assert_eq!(
                h.observe(t0 + i * MS, st(5, 2 * i as u64, i as u64), why),
                None
            );
        }
        assert!(h.failing());
        // Progress, but not for long enough; then a failure resets the clean period.
        assert_eq!(h.observe(t0 + 60 * MS, st(9, 98, 49), why), None);
        assert_eq!(h.observe(t0 + 150 * MS, st(9, 98, 50), why), None);
        assert_eq!(h.observe(t0 + 200 * MS, st(12, 98, 50), why), None);
        assert_eq!(h.observe(t0 + 250 * MS, st(12, 98, 50), why), None);
        assert_eq!(
            h.observe(t0 + 300 * MS, st(20, 98, 50), why),
            Some(HealthChange::Recovered {
                after: 299 * MS,
                dropped: 98,
                errors: 50
            })
        );
        assert!(!h.failing());
        assert_eq!(h.observe(t0 + 400 * MS, st(30, 98, 50), why), None);
        // A new outage is reported again, with its own counts.
        assert!(matches!(
            h.observe(t0 + 500 * MS, st(30, 99, 50), why),
            Some(HealthChange::Failing {
                dropped: 1,
                errors: 0,
                ..
            })
        ));
    }

    #[test]
    fn no_recovery_without_traffic() {
        let t0 = Instant::now();
        let mut h = Health::new(10 * MS);
        assert!(h.observe(t0, st(0, 0, 1), String::new).is_some());
        assert_eq!(h.observe(t0 + 1000 * MS, st(0, 0, 1), String::new), None);
        assert!(h.failing());
    }

    #[test]
    fn messages_name_the_counts() {
        let f = HealthChange::Failing {
            reason: "write: timed out".into(),
            dropped: 3,
            errors: 1,
        };
        assert!(f.to_string().starts_with("failing (write: timed out)"));
        let r = HealthChange::Recovered {
            after: Duration::from_millis(2500),
            dropped: 7,
            errors: 4,
        };
        assert_eq!(
            r.to_string(),
            "recovered after 2.5 s (7 packets dropped, 4 errors meanwhile)"
        );
    }
}
