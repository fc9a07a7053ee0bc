//! Flood detection per source address, as OpenSIPS's `pike` module: pure code, the time is
//! passed in (milliseconds on any monotonic clock), no I/O.
//!
//! Each tracked address (an IPv4 address, an IPv6 address or, with `ipv6_prefix`, its /64
//! or other prefix) counts its requests per sampling unit of `sampling_time_unit` seconds,
//! units aligned on the clock (`now / unit`). With `hits` the count of the current unit and
//! `prev` that of the unit before (0 when the address was silent then), an address is *hot*
//! when `max(prev, hits) > reqs_density_per_unit`, OpenSIPS's rule (its
//! `(prev + curr) / 2` clause never adds to it) with "more than" in place of its "at least":
//! `reqs_density_per_unit` requests per unit always pass.
//!
//! * The request that makes an address hot blocks it ([`Verdict::NewlyBlocked`], OpenSIPS's
//!   -2); later requests while it is blocked get [`Verdict::Blocked`] (-1). Blocked
//!   requests count too, so an address that keeps sending keeps its block.
//! * A blocked address is released when a unit starts and the address is no longer hot:
//!   after one whole unit with at most `reqs_density_per_unit` requests (between one and two
//!   units of calm). This is when OpenSIPS releases it (its `swap_routine`).
//! * An address is forgotten `remove_latency` seconds after its last request (OpenSIPS's
//!   meaning of the parameter; it forces `remove_latency > sampling_time_unit` so that a
//!   blocked address is always released before it is forgotten, and so does [`PikeConfig`]).
//!
//! Memory is bounded: at most `max_tracked` addresses, split evenly over [`SHARDS`] shards
//! (each its own lock, chosen by a keyed hash, so I/O threads rarely meet). A new address
//! arriving at a full shard evicts the coldest of [`EVICT_SAMPLE`] addresses sampled at
//! at random there (neighbouring slots from a random one): not blocked before blocked, then the fewest requests in the last two
//! units, then the longest silent. An evicted address starts again from zero if it comes
//! back; a blocked one evicted (only when every sampled address is blocked) is released and
//! reported so. Flooding from many addresses can therefore make the limiter forget quiet
//! addresses, never let one that is sending more than the density escape while quieter ones
//! are tracked beside it.
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

#[cfg(test)]
mod tests;

/// Number of shards (each with its own lock).
pub const SHARDS: usize = 32;
/// Addresses sampled when a full shard must evict one.
pub const EVICT_SAMPLE: usize = 8;

/// The `pike` modparams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PikeConfig {
    /// `sampling_time_unit`: seconds per sampling unit (default 2).
    pub sampling_time_unit: u32,
    /// `reqs_density_per_unit`: requests per unit that always pass (default 30).
    pub reqs_density_per_unit: u32,
    /// `remove_latency`: seconds after its last request before an address is forgotten
    /// (default 120; raised to `sampling_time_unit + 1` when not above it, as OpenSIPS does).
    pub remove_latency: u32,
    /// `pike_log_level`: OpenSIPS level of the block / release lines (default 1, L_WARN).
    pub log_level: i64,
    /// `ipv6_prefix` (sipcore): IPv6 addresses are counted per prefix of this length
    /// (default 128: per address, as OpenSIPS; 64 counts a whole /64 as one source).
    pub ipv6_prefix: u8,
    /// `max_tracked` (sipcore): addresses tracked at most (default 100,000).
    pub max_tracked: u32,
}

impl Default for PikeConfig {
    fn default() -> Self {
        PikeConfig {
            sampling_time_unit: 2,
            reqs_density_per_unit: 30,
            remove_latency: 120,
            log_level: 1,
            ipv6_prefix: 128,
            max_tracked: 100_000,
        }
    }
}

/// A tracked source: an address, or an IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    addr: IpAddr,
    /// The prefix length for IPv6 (128 for a single address); 32 for IPv4.
    prefix: u8,
}

impl Source {
    /// The source `ip` counts as under `ipv6_prefix` (an IPv4-mapped IPv6 address is its IPv4
    /// address).
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> Source {
        match ip {
            IpAddr::V4(a) => Source {
                addr: IpAddr::V4(a),
                prefix: 32,
            },
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return Source::of(IpAddr::V4(v4), ipv6_prefix);
                }
                let p = ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(p));
                Source {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
                    prefix: p,
                }
            }
        }
    }

    /// The address (the prefix's first address for an IPv6 prefix).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

/// `127.0.0.1`, `2001:db8::1`, or `2001:db8::/64` for a prefix.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V6(a) if self.prefix < 128 => write!(f, "{a}/{}", self.prefix),
            a => write!(f, "{a}"),
        }
    }
}

/// What [`Pike::check`] says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Under the density: go on (`pike_check_req` returns 1).
    Pass,
    /// This request made the source hot: it is blocked from now on (-2; log it once).
    NewlyBlocked,
    /// The source was already blocked (-1).
    Blocked,
}

impl Verdict {
    /// OpenSIPS's return value of `pike_check_req()`.
    pub fn code(self) -> i64 {
        match self {
            Verdict::Pass => 1,
            Verdict::NewlyBlocked => -2,
            Verdict::Blocked => -1,
        }
    }
}

/// Why a blocked source stopped being blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// A unit began with the source no longer hot.
    Calm,
    /// Evicted for a new source while the table was full.
    Evicted,
    /// Removed by hand (`pike_rm`).
    Removed,
}

/// A blocked source as listed by [`Pike::blocked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedSource {
    /// The source.
    pub source: Source,
    /// Requests in the current unit.
    pub hits: u32,
    /// Requests in the unit before.
    pub prev_hits: u32,
    /// When it was blocked (the clock of the calls).
    pub since_ms: u64,
}

/// What one check found, besides its verdict: sources released on the way (the caller
/// logs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The verdict for the request.
    pub verdict: Verdict,
    /// Sources whose block ended during this call (this source, when its block ended before
    /// this request counted; an evicted blocked source).
    pub released: Vec<(Source, Release)>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    source: Source,
    /// The unit `hits` counts.
    unit: u64,
    prev: u32,
    hits: u32,
    last_ms: u64,
    /// Blocked since (ms), when blocked.
    blocked: Option<u64>,
}

impl Slot {
    /// Bring the counters to `unit` (no-op when already there).
    fn roll(&mut self, unit: u64) {
        if unit == self.unit {
            return;
        }
        self.prev = if unit == self.unit + 1 { self.hits } else { 0 };
        self.hits = 0;
        self.unit = unit;
    }

    fn hot(&self, density: u32) -> bool {
        self.prev.max(self.hits) > density
    }

    /// Sort key of eviction: smaller is colder.
    fn heat(&self) -> (bool, u32, u64) {
        (
            self.blocked.is_some(),
            self.prev.saturating_add(self.hits),
            self.last_ms,
        )
    }
}

#[derive(Debug, Default)]
struct Shard {
    index: HashMap<Source, u32>,
    slots: Vec<Slot>,
    rng: u64,
}

impl Shard {
    /// xorshift64*: which slots to sample for eviction (not security relevant: the shard
    /// an address lands in is already keyed by a random hash).
    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn remove_at(&mut self, i: usize) -> Slot {
        let slot = self.slots.swap_remove(i);
        self.index.remove(&slot.source);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.source, i as u32);
        }
        slot
    }
}

/// The limiter: every source's counters, sharded.
#[derive(Debug)]
pub struct Pike {
    cfg: PikeConfig,
    unit_ms: u64,
    latency_ms: u64,
    per_shard: usize,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Pike {
    /// A limiter with `cfg` (a zero unit counts as 1 s; `remove_latency` is raised above the
    /// unit; `max_tracked` 0 counts as 1).
    pub fn new(cfg: PikeConfig) -> Pike {
        let mut cfg = cfg;
        cfg.sampling_time_unit = cfg.sampling_time_unit.max(1);
        if cfg.remove_latency <= cfg.sampling_time_unit {
            cfg.remove_latency = cfg.sampling_time_unit + 1;
        }
        cfg.max_tracked = cfg.max_tracked.max(1);
        let per_shard = (cfg.max_tracked as usize).div_ceil(SHARDS);
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|i| {
                // Any odd non-zero seed will do; mix in the shard's number.
                let seed = hasher.hash_one(i) | 1;
                Mutex::new(Shard {
                    rng: seed,
                    ..Shard::default()
                })
            })
            .collect();
        Pike {
            cfg,
            unit_ms: u64::from(cfg.sampling_time_unit) * 1000,
            latency_ms: u64::from(cfg.remove_latency) * 1000,
            per_shard,
            hasher,
            shards,
        }
    }

    /// The effective configuration (after the adjustments of [`Pike::new`]).
    pub fn config(&self) -> &PikeConfig {
        &self.cfg
    }

    /// Addresses tracked at most (`max_tracked` rounded up to a multiple of [`SHARDS`]).
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, s: &Source) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(s) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one request from `ip` at `now_ms` and say whether it may go on.
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Checked {
        let source = Source::of(ip, self.cfg.ipv6_prefix);
        let unit = now_ms / self.unit_ms;
        let density = self.cfg.reqs_density_per_unit;
        let mut released = Vec::new();
        let mut sh = self.shard(&source);
        let i = match sh.index.get(&source) {
            Some(&i) => i as usize,
            None => {
                if sh.slots.len() >= self.per_shard {
                    // EVICT_SAMPLE neighbouring slots from a random one (distinct slots:
                    // one blocked source among them is never the victim).
                    let n = sh.slots.len();
                    let start = (sh.next_rand() % n as u64) as usize;
                    let mut victim = start;
                    let mut coldest = None;
                    for k in 0..EVICT_SAMPLE.min(n) {
                        let j = (start + k) % n;
                        let mut s = sh.slots[j];
                        s.roll(unit);
                        if coldest.is_none_or(|c| s.heat() < c) {
                            coldest = Some(s.heat());
                            victim = j;
                        }
                    }
                    let gone = sh.remove_at(victim);
                    if gone.blocked.is_some() {
                        released.push((gone.source, Release::Evicted));
                    }
                }
                let i = sh.slots.len();
                sh.slots.push(Slot {
                    source,
                    unit,
                    prev: 0,
                    hits: 0,
                    last_ms: now_ms,
                    blocked: None,
                });
                sh.index.insert(source, i as u32);
                i
            }
        };
        let slot = &mut sh.slots[i];
        slot.roll(unit);
        if slot.blocked.is_some() && !slot.hot(density) {
            slot.blocked = None;
            released.push((source, Release::Calm));
        }
        slot.hits = slot.hits.saturating_add(1);
        slot.last_ms = slot.last_ms.max(now_ms);
        let verdict = match slot.blocked {
            Some(_) => Verdict::Blocked,
            None if slot.hot(density) => {
                slot.blocked = Some(now_ms);
                Verdict::NewlyBlocked
            }
            None => Verdict::Pass,
        };
        Checked { verdict, released }
    }

    /// The timer's work at `now_ms`: release the blocked sources that calmed down, forget
    /// those silent for `remove_latency`. Returns the released sources.
    pub fn sweep(&self, now_ms: u64) -> Vec<Source> {
        let unit = now_ms / self.unit_ms;
        let density = self.cfg.reqs_density_per_unit;
        let mut released = Vec::new();
        for m in self.shards.iter() {
            let mut sh = m.lock().unwrap_or_else(|e| e.into_inner());
            let mut i = 0;
            while i < sh.slots.len() {
                let slot = &mut sh.slots[i];
                slot.roll(unit);
                if slot.blocked.is_some() && !slot.hot(density) {
                    slot.blocked = None;
                    released.push(slot.source);
                }
                if slot.blocked.is_none() && now_ms.saturating_sub(slot.last_ms) >= self.latency_ms
                {
                    sh.remove_at(i);
                } else {
                    i += 1;
                }
            }
        }
        released
    }

    /// The sources blocked at `now_ms` (those a sweep now would release are left out),
    /// sorted by address.
    pub fn blocked(&self, now_ms: u64) -> Vec<BlockedSource> {
        let unit = now_ms / self.unit_ms;
        let density = self.cfg.reqs_density_per_unit;
        let mut out = Vec::new();
        for m in self.shards.iter() {
            let sh = m.lock().unwrap_or_else(|e| e.into_inner());
            for s in &sh.slots {
                let mut s = *s;
                s.roll(unit);
                if let (Some(since), true) = (s.blocked, s.hot(density)) {
                    out.push(BlockedSource {
                        source: s.source,
                        hits: s.hits,
                        prev_hits: s.prev,
                        since_ms: since,
                    });
                }
            }
        }
        out.sort_by_key(|b| (b.source.addr, b.source.prefix));
        out
    }

    /// Unblock `ip` by hand (`pike_rm`), clearing its counters. `Err(false)` when it is not
    /// tracked, `Err(true)` when tracked but not blocked.
    pub fn unblock(&self, ip: IpAddr, now_ms: u64) -> Result<Source, bool> {
        let source = Source::of(ip, self.cfg.ipv6_prefix);
        let unit = now_ms / self.unit_ms;
        let density = self.cfg.reqs_density_per_unit;
        let mut sh = self.shard(&source);
        let Some(&i) = sh.index.get(&source) else {
            return Err(false);
        };
        let slot = &mut sh.slots[i as usize];
        slot.roll(unit);
        if slot.blocked.is_none() || !slot.hot(density) {
            return Err(true);
        }
        slot.blocked = None;
        slot.prev = 0;
        slot.hits = 0;
        Ok(source)
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).slots.len())
            .sum()
    }
}
