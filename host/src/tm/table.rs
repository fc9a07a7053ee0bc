//! The transaction table: N shards chosen by key hash, each a `Mutex<HashMap>`, so that two
//! messages of different transactions rarely wait for each other and there is no global lock
//! on the message path (the design note's rule for new pure state).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The tables' hasher: foldhash with a per-process random seed (the keys are the peers'
/// branches and Call-IDs, so not a fixed function an attacker could aim collisions at);
/// several times cheaper than the standard SipHash on these short keys.
type Hasher = foldhash::quality::RandomState;
use std::sync::{Mutex, MutexGuard};

use thiserror::Error;

/// Why an insertion was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TableError {
    /// A transaction with this key exists (a retransmission raced its original).
    #[error("a transaction with this key exists")]
    Exists,
    /// The shard is at its share of the capacity.
    #[error("transaction table full")]
    Full,
}

/// Transactions (or any per-key state) by key, in shards.
#[derive(Debug)]
pub struct Table<K, V> {
    shards: Box<[Mutex<HashMap<K, V, Hasher>>]>,
    hasher: Hasher,
    per_shard: usize,
}

impl<K: Hash + Eq, V> Table<K, V> {
    /// A table of `shards` shards (at least 1) holding at most `capacity` entries, spread
    /// evenly (each shard holds at most `capacity / shards`, rounded up).
    pub fn new(shards: usize, capacity: usize) -> Self {
        let n = shards.max(1);
        Table {
            shards: (0..n)
                .map(|_| Mutex::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
            hasher: Hasher::default(),
            per_shard: capacity.div_ceil(n),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, V, Hasher>> {
        let i = (self.hasher.hash_one(key) % self.shards.len() as u64) as usize;
        // A panic while a shard was locked leaves plain data behind: keep using it.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `value` under `key` unless the key exists or the shard is full.
    pub fn insert(&self, key: K, value: V) -> Result<(), TableError> {
        let mut shard = self.shard(&key);
        let full = shard.len() >= self.per_shard;
        match shard.entry(key) {
            Entry::Occupied(_) => Err(TableError::Exists),
            Entry::Vacant(_) if full => Err(TableError::Full),
            Entry::Vacant(v) => {
                v.insert(value);
                Ok(())
            }
        }
    }

    /// Runs `f` on the value of `key` under its shard's lock; `None` if there is none. `f`
    /// should be short: feed one event to a machine and return its actions.
    pub fn with<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.shard(key).get_mut(key).map(f)
    }

    /// Removes the value of `key`.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.shard(key).remove(key)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Gives back the memory of shards that held many more entries than they hold now
    /// (after a burst): each shard's capacity beyond four times its entries.
    pub fn shrink(&self) {
        for s in self.shards.iter() {
            let mut m = s.lock().unwrap_or_else(|e| e.into_inner());
            if m.capacity() > 4 * m.len() + 16 {
                m.shrink_to_fit();
            }
        }
    }

    /// Entries in all shards (each locked in turn: a snapshot, not atomic).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether every shard is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn insert_lookup_remove() {
        let t: Table<String, u32> = Table::new(16, 1000);
        assert_eq!(t.insert("a".into(), 1), Ok(()));
        assert_eq!(t.insert("a".into(), 2), Err(TableError::Exists));
        assert_eq!(
            t.with(&"a".into(), |v| {
                *v += 10;
                *v
            }),
            Some(11)
        );
        assert!(t.contains(&"a".into()));
        assert_eq!(t.with(&"b".into(), |v| *v), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.remove(&"a".into()), Some(11));
        assert!(t.is_empty());
    }

    #[test]
    fn capacity_is_per_shard() {
        let t: Table<u32, ()> = Table::new(1, 3);
        for k in 0..3 {
            t.insert(k, ()).unwrap();
        }
        assert_eq!(t.insert(9, ()), Err(TableError::Full));
        // An existing key is reported as such even when full.
        assert_eq!(t.insert(0, ()), Err(TableError::Exists));
        t.remove(&0);
        assert_eq!(t.insert(9, ()), Ok(()));
    }

    #[test]
    fn shards_serve_threads() {
        let t: Arc<Table<u32, u32>> = Arc::new(Table::new(8, 100_000));
        let handles: Vec<_> = (0..4u32)
            .map(|n| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for k in 0..1000 {
                        t.insert(n * 1000 + k, k).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(t.len(), 4000);
        assert_eq!(t.with(&3999, |v| *v), Some(999));
    }
}
