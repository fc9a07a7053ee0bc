//! The credential cache of the digest check (RFC 3261 §22.4: the server needs the user's HA1
//! for every authorized request): the store's answers by realm and user, each for a time to
//! live, at most a fixed number (beyond it the cache is emptied, so that a flood of unknown
//! names cannot grow it). Looked up with the request's strings as they are (no key is built)
//! and answered with a shared copy (no HA1 is copied). No clock: time is passed in.
use super::store::Lookup;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-process-seeded foldhash, as the other tables keyed by peers' bytes.
type Hasher = foldhash::quality::RandomState;

/// One realm's answers by user, each with when it was stored.
type Users = HashMap<String, (Arc<Lookup>, Instant), Hasher>;

/// The store's answers by realm, then user.
#[derive(Debug)]
pub struct CredCache {
    by_realm: HashMap<String, Users, Hasher>,
    len: usize,
    ttl: Duration,
    max: usize,
}

impl CredCache {
    /// An empty cache keeping answers for `ttl`, at most `max` of them.
    pub fn new(ttl: Duration, max: usize) -> Self {
        CredCache {
            by_realm: HashMap::default(),
            len: 0,
            ttl,
            max,
        }
    }

    /// The answer for `user` in `realm` if one younger than the time to live is held at `now`.
    pub fn get(&self, user: &str, realm: &str, now: Instant) -> Option<Arc<Lookup>> {
        let (l, at) = self.by_realm.get(realm)?.get(user)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| Arc::clone(l))
    }

    /// Hold `l` for `user` in `realm` from `now`; a failed lookup is not held.
    pub fn insert(&mut self, user: &str, realm: &str, l: Arc<Lookup>, now: Instant) {
        if matches!(*l, Lookup::Failed(_)) {
            return;
        }
        if self.len >= self.max {
            self.by_realm.clear();
            self.len = 0;
        }
        let users = match self.by_realm.get_mut(realm) {
            Some(u) => u,
            None => self.by_realm.entry(realm.to_string()).or_default(),
        };
        if users.insert(user.to_string(), (l, now)).is_none() {
            self.len += 1;
        }
    }

    /// Number of answers held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::store::Ha1s;

    fn found(md5: &str) -> Arc<Lookup> {
        Arc::new(Lookup::Found(Ha1s {
            md5: Some(md5.to_string()),
            ..Ha1s::default()
        }))
    }

    #[test]
    fn answers_by_realm_and_user_until_the_ttl() {
        let t0 = Instant::now();
        let mut c = CredCache::new(Duration::from_secs(60), 10);
        c.insert("alice", "a.example", found("1"), t0);
        c.insert("alice", "b.example", Arc::new(Lookup::NotFound), t0);
        c.insert(
            "bob",
            "a.example",
            Arc::new(Lookup::Failed("down".into())),
            t0,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get("alice", "a.example", t0).as_deref(),
            Some(&*found("1"))
        );
        assert_eq!(
            c.get("alice", "b.example", t0).as_deref(),
            Some(&Lookup::NotFound)
        );
        assert!(
            c.get("bob", "a.example", t0).is_none(),
            "failures are not held"
        );
        assert!(c.get("alice", "c.example", t0).is_none());
        let late = t0 + Duration::from_secs(59);
        assert!(c.get("alice", "a.example", late).is_some());
        assert!(c
            .get("alice", "a.example", t0 + Duration::from_secs(60))
            .is_none());
        // A newer answer replaces the older one without counting twice.
        c.insert("alice", "a.example", found("2"), late);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get("alice", "a.example", late).as_deref(),
            Some(&*found("2"))
        );
    }

    #[test]
    fn a_full_cache_starts_again() {
        let t0 = Instant::now();
        let mut c = CredCache::new(Duration::from_secs(60), 3);
        for u in ["a", "b", "c"] {
            c.insert(u, "r", found(u), t0);
        }
        assert_eq!(c.len(), 3);
        c.insert("d", "r", found("d"), t0);
        assert_eq!(c.len(), 1);
        assert!(c.get("a", "r", t0).is_none());
        assert!(c.get("d", "r", t0).is_some());
    }
}
