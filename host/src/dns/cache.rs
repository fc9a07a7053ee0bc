//! A bounded cache of DNS answers with their TTLs (RFC 1035 §3.2.1), negative answers
//! included (RFC 2308 §5). Time is passed in; no clock is read here.
use super::records::{normalize, Kind, Records};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Answers are kept at most this long, whatever their TTL says.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

struct Entry {
    records: Records,
    expires: Instant,
}

/// Answers by (name, type), at most `capacity` of them.
pub struct Cache {
    map: HashMap<(String, Kind), Entry>,
    capacity: usize,
}

impl Cache {
    /// An empty cache holding at most `capacity` answers (at least 1).
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The cached answer for `name`/`kind` at `now`, if still fresh (an empty set is a cached
    /// negative answer).
    pub fn get(&self, name: &str, kind: Kind, now: Instant) -> Option<Records> {
        let e = self.map.get(&(normalize(name), kind))?;
        (e.expires > now).then(|| e.records.clone())
    }

    /// Keep `records` for `name`/`kind` for `ttl` (capped at [`MAX_TTL`]; a zero TTL is not
    /// kept, RFC 1035 §3.2.1). When full, expired answers go first, then the one that expires
    /// soonest.
    pub fn put(&mut self, name: &str, kind: Kind, records: Records, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        let key = (normalize(name), kind);
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.map.retain(|_, e| e.expires > now);
            if self.map.len() >= self.capacity {
                let soonest = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(
            key,
            Entry {
                records,
                expires: now + ttl.min(MAX_TTL),
            },
        );
    }

    /// Number of answers held (fresh or not yet evicted).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
