//! Repeated-record suppression, pure (time is passed in): the same text from the same module
//! more than `limit` times within one window is written `limit` times; the rest are counted,
//! and the count is reported when the window ends (a line "... repeated K more times").
use super::severity::Severity;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What to do with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Write the record (false: it is counted instead).
    pub log: bool,
    /// This is the window's first suppressed record (its end now needs reporting).
    pub first_suppressed: bool,
    /// The previous window of this text ended with this many records suppressed and was not
    /// reported yet: write its summary line before the record.
    pub repeated: Option<u64>,
}

impl Check {
    /// Write it, nothing to report.
    pub const LOG: Check = Check {
        log: true,
        first_suppressed: false,
        repeated: None,
    };
}

/// A window that ended with records suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated {
    /// The severity of the window's first record.
    pub severity: Severity,
    /// The module of the records.
    pub module: String,
    /// Their text.
    pub text: String,
    /// How many were not written.
    pub count: u64,
}

impl Repeated {
    /// The summary line's text.
    pub fn line(&self) -> String {
        summary(&self.text, self.count)
    }
}

/// The text of the summary line for `count` suppressed copies of `text`.
pub fn summary(text: &str, count: u64) -> String {
    format!("{text} ... repeated {count} more times (not logged)")
}

struct Window {
    severity: Severity,
    start: Instant,
    seen: u64,
    suppressed: u64,
}

/// Counts records per (module, text) in fixed windows that start at a text's first record.
pub struct RateLimiter {
    limit: u64,
    window: Duration,
    max_keys: usize,
    windows: HashMap<(String, String), Window>,
}

impl RateLimiter {
    /// At most `limit` copies per `window`; at most `max_keys` texts tracked at once (texts
    /// beyond that are written unlimited rather than held in memory).
    pub fn new(limit: u64, window: Duration, max_keys: usize) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            max_keys,
            windows: HashMap::new(),
        }
    }

    /// A record of `severity` from `module` with `text` at `now`.
    pub fn check(&mut self, now: Instant, severity: Severity, module: &str, text: &str) -> Check {
        let key = (module.to_owned(), text.to_owned());
        if let Some(w) = self.windows.get_mut(&key) {
            if now.saturating_duration_since(w.start) < self.window {
                w.seen += 1;
                if w.seen > self.limit {
                    w.suppressed += 1;
                    return Check {
                        log: false,
                        first_suppressed: w.suppressed == 1,
                        repeated: None,
                    };
                }
                return Check::LOG;
            }
            // Ended, not yet reported: report it here and start a new window.
            let repeated = (w.suppressed > 0).then_some(w.suppressed);
            *w = Window {
                severity,
                start: now,
                seen: 1,
                suppressed: 0,
            };
            return Check {
                repeated,
                ..Check::LOG
            };
        }
        if self.windows.len() >= self.max_keys {
            let window = self.window;
            // Forget ended windows with nothing to report; those with counts wait for expire.
            self.windows
                .retain(|_, w| w.suppressed > 0 || now.saturating_duration_since(w.start) < window);
        }
        if self.windows.len() < self.max_keys {
            self.windows.insert(
                key,
                Window {
                    severity,
                    start: now,
                    seen: 1,
                    suppressed: 0,
                },
            );
        }
        Check::LOG
    }

    /// The windows ended by `now` that suppressed records (removed; sorted by module and
    /// text). Ended windows without suppressions are forgotten too.
    pub fn expire(&mut self, now: Instant) -> Vec<Repeated> {
        let window = self.window;
        self.take(|w| now.saturating_duration_since(w.start) >= window)
    }

    /// Every window with suppressed records, ended or not (at exit).
    pub fn drain(&mut self) -> Vec<Repeated> {
        self.take(|_| true)
    }

    /// When the earliest window holding suppressed records ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter(|w| w.suppressed > 0)
            .map(|w| w.start + self.window)
            .min()
    }

    /// How many texts are tracked.
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    fn take(&mut self, ended: impl Fn(&Window) -> bool) -> Vec<Repeated> {
        let mut out = Vec::new();
        self.windows.retain(|(module, text), w| {
            if !ended(w) {
                return true;
            }
            if w.suppressed > 0 {
                out.push(Repeated {
                    severity: w.severity,
                    module: module.clone(),
                    text: text.clone(),
                    count: w.suppressed,
                });
            }
            false
        });
        out.sort_by(|a, b| (&a.module, &a.text).cmp(&(&b.module, &b.text)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Severity = Severity::Warn;
    const SEC: Duration = Duration::from_secs(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_n_copies_are_written_the_rest_counted_then_reported() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(3, SEC, 100);
        let checks: Vec<Check> = (0..10)
            .map(|i| l.check(t0 + ms(i * 10), W, "core", "boom"))
            .collect();
        let logged: Vec<bool> = checks.iter().map(|c| c.log).collect();
        assert_eq!(
            logged,
            [true, true, true, false, false, false, false, false, false, false]
        );
        let first: Vec<bool> = checks.iter().map(|c| c.first_suppressed).collect();
        assert_eq!(
            first,
            [false, false, false, true, false, false, false, false, false, false]
        );
        assert_eq!(l.next_deadline(), Some(t0 + SEC));
        assert!(l.expire(t0 + ms(999)).is_empty());
        let rep = l.expire(t0 + SEC);
        assert_eq!(
            rep,
            [Repeated {
                severity: W,
                module: "core".into(),
                text: "boom".into(),
                count: 7
            }]
        );
        assert_eq!(rep[0].line(), "boom ... repeated 7 more times (not logged)");
        assert_eq!(l.tracked(), 0);
        assert_eq!(l.next_deadline(), None);
        // A new window starts with the next copy.
        assert!(l.check(t0 + ms(1500), W, "core", "boom").log);
    }

    #[test]
    fn module_and_text_are_the_key() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, SEC, 100);
        assert!(l.check(t0, W, "core", "a").log);
        assert!(l.check(t0, W, "pike", "a").log);
        assert!(l.check(t0, W, "core", "b").log);
        assert!(!l.check(t0, W, "core", "a").log);
        assert!(!l.check(t0, W, "pike", "a").log);
        let rep = l.expire(t0 + SEC);
        let got: Vec<(&str, u64)> = rep.iter().map(|r| (r.module.as_str(), r.count)).collect();
        assert_eq!(got, [("core", 1), ("pike", 1)]);
    }

    #[test]
    fn a_window_ended_but_not_expired_is_reported_by_the_next_copy() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, SEC, 100);
        l.check(t0, W, "m", "x");
        l.check(t0 + ms(1), W, "m", "x");
        l.check(t0 + ms(2), W, "m", "x");
        let c = l.check(t0 + ms(1200), W, "m", "x");
        assert_eq!(
            c,
            Check {
                repeated: Some(2),
                ..Check::LOG
            }
        );
        // Reported once: nothing left for the timer.
        assert!(l.expire(t0 + ms(5000)).is_empty());
    }

    #[test]
    fn windows_without_suppression_report_nothing() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(5, SEC, 100);
        for i in 0..5 {
            assert!(l.check(t0 + ms(i), W, "m", "x").log);
        }
        assert_eq!(l.next_deadline(), None);
        assert!(l.expire(t0 + SEC).is_empty());
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn memory_is_bounded_and_untracked_texts_are_written() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1, SEC, 2);
        l.check(t0, W, "m", "a");
        l.check(t0, W, "m", "a");
        l.check(t0, W, "m", "b");
        // Full: a third text is written every time, not tracked.
        for _ in 0..3 {
            assert!(l.check(t0, W, "m", "c").log);
        }
        assert_eq!(l.tracked(), 2);
        // Once "b" has ended (nothing to report) it makes room; "a" keeps its count.
        assert!(l.check(t0 + ms(1100), W, "m", "d").log);
        assert!(!l.check(t0 + ms(1100), W, "m", "d").log);
        let rep = l.drain();
        let got: Vec<(&str, u64)> = rep.iter().map(|r| (r.text.as_str(), r.count)).collect();
        assert_eq!(got, [("a", 1), ("d", 1)]);
    }
}
