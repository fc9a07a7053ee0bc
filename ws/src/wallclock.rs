//! Wall-clock time of a monotonic [`Instant`] without a clock read per call: the HEP
//! timestamp (seconds and microseconds since the Unix epoch, HEP3 chunks 0x0009/0x000a) of a
//! traced message, from the `Instant` the driver already holds (its turn's time for a message
//! read, the send's for one queued).
//!
//! Each thread keeps one pair (monotonic, wall) read together, and converts an instant by the
//! distance to it. The pair is read again when the instant is [`REFRESH`] or more away from it,
//! so a step of the wall clock (`settimeofday`, an NTP step) shows within that time, and a
//! slewing clock (at most 500 ppm under NTP) is off by at most 500 ppm of it (25 µs).
//! Traced at 400,000 messages a second, this saves the `clock_gettime` and the conversion
//! that each message cost (about 30 ns a message, measured in BENCHMARKS.md).
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest distance between an instant and the pair it is converted by.
pub const REFRESH: Duration = Duration::from_millis(50);

/// Widest gap between the two wall-clock readings around the monotonic one of an [`Anchor`].
pub const PAIR_WINDOW: Duration = Duration::from_micros(20);

/// A monotonic instant and the wall-clock time (since the Unix epoch) read with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// The monotonic side.
    pub mono: Instant,
    /// The wall-clock side, since the Unix epoch.
    pub wall: Duration,
}

impl Anchor {
    /// Both clocks, now: the monotonic one read between two readings of the wall clock, taken
    /// again (up to three times) when those are more than [`PAIR_WINDOW`] apart (the thread was
    /// preempted between them), so that the pair does not carry that delay into every
    /// conversion.
    pub fn now() -> Anchor {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        };
        let mut tries = 0;
        loop {
            let w1 = wall();
            let mono = Instant::now();
            let w2 = wall();
            tries += 1;
            let gap = w2.saturating_sub(w1);
            if gap <= PAIR_WINDOW || tries == 3 {
                return Anchor {
                    mono,
                    wall: w1 + gap / 2,
                };
            }
        }
    }

    /// The wall-clock time of `at` by this anchor; `None` when `at` is [`REFRESH`] or more after
    /// it (time to read the clocks again). An `at` before it, however long before (the start
    /// of a long turn), is converted: the anchor is the more recent reading.
    pub fn convert(&self, at: Instant) -> Option<Duration> {
        match at.checked_duration_since(self.mono) {
            Some(ahead) => (ahead < REFRESH).then(|| self.wall + ahead),
            None => Some(self.wall.saturating_sub(self.mono.duration_since(at))),
        }
    }
}

thread_local! {
    static ANCHOR: Cell<Option<Anchor>> = const { Cell::new(None) };
}

/// The wall-clock time (since the Unix epoch) of `at`, by this thread's anchor
/// ([`Anchor::convert`]), read again when `at` is [`REFRESH`] or more after it.
pub fn wall_time(at: Instant) -> Duration {
    let fresh = |at| {
        let a = Anchor::now();
        (a, a.convert(at).unwrap_or(a.wall))
    };
    ANCHOR
        .try_with(|cell| {
            if let Some(t) = cell.get().and_then(|a| a.convert(at)) {
                return t;
            }
            let (a, t) = fresh(at);
            cell.set(Some(a));
            t
        })
        .unwrap_or_else(|_| fresh(at).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor() -> Anchor {
        Anchor {
            mono: Instant::now() + Duration::from_secs(10),
            wall: Duration::new(1_700_000_000, 500_000_000),
        }
    }

    #[test]
    fn converts_before_and_up_to_refresh_after() {
        let a = anchor();
        let ms = Duration::from_millis;
        assert_eq!(a.convert(a.mono), Some(a.wall));
        assert_eq!(a.convert(a.mono + ms(7)), Some(a.wall + ms(7)));
        assert_eq!(a.convert(a.mono - ms(7)), Some(a.wall - ms(7)));
        let edge = REFRESH - Duration::from_nanos(1);
        assert_eq!(a.convert(a.mono + edge), Some(a.wall + edge));
        assert_eq!(a.convert(a.mono - edge), Some(a.wall - edge));
        assert_eq!(a.convert(a.mono + REFRESH), None);
        // Long before the anchor: still converted by it.
        let s = Duration::from_secs(3);
        assert_eq!(a.convert(a.mono - s), Some(a.wall - s));
    }

    #[test]
    fn wall_time_tracks_the_system_clock() {
        // Far apart instants each re-anchor; every result lies between two readings of the
        // system clock taken around it (converted instants are those of "now").
        for _ in 0..3 {
            let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let t = wall_time(Instant::now());
            let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            // The anchor may be up to REFRESH old; slew within it is far below a millisecond.
            let slack = Duration::from_millis(1);
            assert!(
                t + slack >= before && t <= after + slack,
                "{t:?} {before:?} {after:?}"
            );
        }
        let old = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let t = wall_time(old);
        let want = now - Duration::from_secs(1);
        let diff = t.abs_diff(want);
        assert!(diff < Duration::from_millis(5), "{t:?} vs {want:?}");
    }
}
