//! Which nodes of the usrloc cluster are alive, from their heartbeats in Redis (pure: the
//! subscriber in `cluster` reads them and acts on the answer).
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A node whose heartbeat has not changed for this long is taken as dead: the bindings
/// learnt from it are dropped rather than left until they expire (a forked request would
/// wait for its branch to that node until `fr_timeout`, delaying e.g. another device's 486).
pub(super) const DEAD_AFTER: Duration = Duration::from_secs(15);

/// Which nodes are alive, from how their heartbeats change (pure). A heartbeat's value is
/// only compared with the same node's previous one, so the nodes' clocks need not agree.
#[derive(Default)]
pub(super) struct Liveness {
    /// Each node's last heartbeat value and when it was seen to change.
    seen: HashMap<String, (u64, Instant)>,
    /// Nodes taken as dead.
    dead: HashSet<String>,
    /// When the heartbeats were last read.
    last: Option<Instant>,
}

impl Liveness {
    /// Whether the heartbeats are due to be read again (every `every`).
    pub(super) fn due(&self, now: Instant, every: Duration) -> bool {
        self.last
            .is_none_or(|t| now.saturating_duration_since(t) >= every)
    }

    /// The heartbeats read at `now` (`me` is skipped): the nodes that just died and the
    /// ones that came back.
    pub(super) fn update(
        &mut self,
        beats: &HashMap<String, u64>,
        me: &str,
        now: Instant,
    ) -> (Vec<String>, Vec<String>) {
        self.last = Some(now);
        let (mut died, mut back) = (Vec::new(), Vec::new());
        for (node, &t) in beats {
            if node == me {
                continue;
            }
            match self.seen.get_mut(node) {
                Some((v, at)) if *v == t => {
                    if now.saturating_duration_since(*at) >= DEAD_AFTER
                        && self.dead.insert(node.clone())
                    {
                        died.push(node.clone());
                    }
                }
                Some((v, at)) => {
                    (*v, *at) = (t, now);
                    if self.dead.remove(node) {
                        back.push(node.clone());
                    }
                }
                None => {
                    self.seen.insert(node.clone(), (t, now));
                }
            }
        }
        (died, back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_whose_heartbeat_stops_changing_dies_once_and_comes_back() {
        let t0 = Instant::now();
        let mut l = Liveness::default();
        let beats = |a: u64, b: u64| {
            HashMap::from([
                ("me".to_string(), 1),
                ("a".to_string(), a),
                ("b".to_string(), b),
            ])
        };
        assert!(l.due(t0, Duration::from_secs(5)));
        assert_eq!(l.update(&beats(100, 100), "me", t0), (vec![], vec![]));
        assert!(!l.due(t0 + Duration::from_secs(1), Duration::from_secs(5)));
        // a keeps beating (its clock far behind ours: only changes count); b stops.
        let t = |s| t0 + Duration::from_secs(s);
        assert_eq!(l.update(&beats(105, 100), "me", t(5)), (vec![], vec![]));
        assert_eq!(l.update(&beats(110, 100), "me", t(14)), (vec![], vec![]));
        // 15 s without a change for b: dead, once; a is not.
        let (died, back) = l.update(&beats(115, 100), "me", t(15));
        assert_eq!((died, back), (vec!["b".to_string()], vec![]));
        assert_eq!(l.update(&beats(125, 100), "me", t(21)), (vec![], vec![]));
        // b writes again: back.
        assert_eq!(
            l.update(&beats(130, 130), "me", t(26)),
            (vec![], vec!["b".to_string()])
        );
        // Never "me".
        let mut l = Liveness::default();
        l.update(&beats(1, 1), "me", t0);
        let (died, _) = l.update(&beats(1, 1), "me", t(60));
        let mut died = died;
        died.sort();
        assert_eq!(died, vec!["a".to_string(), "b".to_string()]);
    }
}
