//! Password guessing protection: failed authentications are counted per user and client
//! address, and past [`MAX_FAILURES`] within [`WINDOW`] that pair is refused without a check
//! until the window ends. Keyed by the pair, not the user alone: an attacker elsewhere cannot
//! lock a user out; guessing from one address is slowed to a few attempts a minute (and pike
//! bounds the rate of any source). Memory is bounded ([`MAX_TRACKED`]). Pure: time is passed in.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures within [`WINDOW`] after which the pair is refused.
pub const MAX_FAILURES: u32 = 5;
/// The counting window, from the first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most pairs tracked; beyond, expired ones are dropped, then the table is cleared.
pub const MAX_TRACKED: usize = 100_000;

/// The failure counts.
#[derive(Debug, Default)]
pub struct Guard {
    pairs: HashMap<(String, IpAddr), (u32, Instant)>,
}

impl Guard {
    /// Whether `user` from `ip` may try now.
    pub fn allowed(&self, user: &str, ip: IpAddr, now: Instant) -> bool {
        match self.pairs.get(&(user.to_string(), ip)) {
            Some((n, since)) => *n < MAX_FAILURES || now.duration_since(*since) >= WINDOW,
            None => true,
        }
    }

    /// Count a failure; true when it is the one that reaches the limit (log it once).
    pub fn failed(&mut self, user: &str, ip: IpAddr, now: Instant) -> bool {
        if self.pairs.len() >= MAX_TRACKED {
            self.pairs
                .retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if self.pairs.len() >= MAX_TRACKED {
                self.pairs.clear();
            }
        }
        let e = self.pairs.entry((user.to_string(), ip)).or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
        e.0 == MAX_FAILURES
    }

    /// A success clears the pair.
    pub fn succeeded(&mut self, user: &str, ip: IpAddr) {
        self.pairs.remove(&(user.to_string(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_refused_after_the_limit_until_the_window_ends() {
        let mut g = Guard::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 1..MAX_FAILURES {
            assert!(!g.failed("alice", a, t0), "failure {i}");
            assert!(g.allowed("alice", a, t0));
        }
        assert!(g.failed("alice", a, t0), "the limit is reported once");
        assert!(!g.allowed("alice", a, t0 + Duration::from_secs(59)));
        assert!(
            g.allowed("alice", b, t0),
            "another address is not locked out"
        );
        assert!(g.allowed("bob", a, t0), "another user is not locked out");
        assert!(g.allowed("alice", a, t0 + WINDOW), "the window ends");
        assert!(!g.failed("alice", a, t0 + WINDOW), "counting starts again");
        g.succeeded("alice", b);
        g.failed("bob", b, t0);
        g.succeeded("bob", b);
        assert!(!g.pairs.contains_key(&("bob".to_string(), b)));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut g = Guard::default();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..MAX_TRACKED + 10 {
            g.failed(&format!("u{i}"), ip, t0);
        }
        assert!(g.pairs.len() <= MAX_TRACKED);
    }
}
