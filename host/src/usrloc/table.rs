//! [`Registrar`]: the location table, `2^hash_size` slots each behind its own lock (OpenSIPS
//! usrloc's hash table), with the index connection → AoRs sharded the same way. Lock order:
//! a slot, then an index shard; never two slots at once.
use super::aor::{apply, Request};
use super::contact::{header_expires, parse_contacts};
use super::contact::{Parsed, Requested};
use super::single;
use super::{aor_of, preference, Binding, Flow, RegError, RegistrarConfig, SaveReply};
use super::{dump, UsrlocConfig};
use crate::sip::Message;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The number of bindings of every table that shares it, against `max_registrations`.
#[derive(Debug, Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    /// Bindings counted now.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Count `n` more if that stays within `max` (0: no limit).
    fn reserve(&self, n: usize, max: usize) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |cur| {
                let next = cur.checked_add(n)?;
                (max == 0 || next <= max).then_some(next)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        // Never below zero, whatever the caller counted.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |cur| {
                Some(cur.saturating_sub(n))
            });
    }
}

/// The tables' hasher: foldhash with a per-process random seed, as the transaction table's
/// (the AoRs are the peers' bytes, so not a fixed function an attacker could aim collisions
/// at); several times cheaper than SipHash on these short keys, and an AoR is hashed twice per
/// REGISTER and per lookup (its slot, then its entry).
type Hasher = foldhash::quality::RandomState;
type Slot = HashMap<String, Vec<Binding>, Hasher>;
type ConnShard = HashMap<u64, HashSet<String, Hasher>, Hasher>;

/// One location table (`save("location")`), safe to share between threads.
#[derive(Debug)]
pub struct Registrar {
    cfg: RegistrarConfig,
    max_registrations: usize,
    hasher: Hasher,
    slots: Box<[Mutex<Slot>]>,
    conns: Box<[Mutex<ConnShard>]>,
    count: Arc<Counter>,
    aors: AtomicUsize,
    /// Bindings of this table only (usrloc's `<table>-contacts`).
    contacts: AtomicUsize,
    /// Bindings removed because they expired (usrloc's `<table>-expires`).
    expired: AtomicU64,
    /// Whether a one-contact REGISTER goes through [`single`] (always, but for the tests
    /// comparing it with the general path).
    single: bool,
}

// A panic while holding a slot leaves consistent data (every change is applied at once, at
// the end of an operation): keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registrar {
    /// An empty table with the default usrloc settings and its own counter.
    pub fn new(cfg: RegistrarConfig) -> Self {
        Registrar::with_limits(cfg, UsrlocConfig::default(), Arc::default())
    }

    /// An empty table of `2^hash_size` slots (clamped to 1..=16) counting its bindings in
    /// `count`, shared with the other tables for `max_registrations`.
    pub fn with_limits(cfg: RegistrarConfig, ul: UsrlocConfig, count: Arc<Counter>) -> Self {
        let n = 1usize << ul.hash_size.clamp(1, 16);
        Registrar {
            cfg,
            max_registrations: ul.max_registrations,
            hasher: Hasher::default(),
            slots: (0..n).map(|_| Mutex::default()).collect(),
            conns: (0..n).map(|_| Mutex::default()).collect(),
            count,
            aors: AtomicUsize::new(0),
            contacts: AtomicUsize::new(0),
            expired: AtomicU64::new(0),
            single: true,
        }
    }

    /// The same table with every REGISTER through the general path (`aor::apply`), to compare
    /// [`single`] with.
    #[cfg(test)]
    pub(super) fn general_only(mut self) -> Self {
        self.single = false;
        self
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The slot of `aor` (hashed with a per-table random key, so that nobody can aim many
    /// AoRs at one slot).
    fn slot(&self, aor: &str) -> MutexGuard<'_, Slot> {
        let i = self.hasher.hash_one(aor) as usize & (self.slots.len() - 1);
        lock(&self.slots[i])
    }

    fn conn_shard(&self, conn_id: u64) -> MutexGuard<'_, ConnShard> {
        lock(&self.conns[conn_id as usize & (self.conns.len() - 1)])
    }

    /// Number of AoRs with at least one binding.
    pub fn len(&self) -> usize {
        self.aors.load(Ordering::Relaxed)
    }

    /// No binding at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of bindings (of every table sharing the counter).
    pub fn contact_count(&self) -> usize {
        self.count.get()
    }

    /// Number of bindings of this table.
    pub fn own_contacts(&self) -> usize {
        self.contacts.load(Ordering::Relaxed)
    }

    /// Bindings removed by [`Registrar::expire`] since the table was created.
    pub fn expired_total(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Process a REGISTER (RFC 3261 §10.3 steps 5-8) received over `flow`. All contacts are
    /// checked before any is applied: a refused request changes nothing. Costs the contacts
    /// of the request and of its AoR, under the lock of the AoR's slot only.
    pub fn save(&self, req: &Message, flow: Flow, now: Instant) -> Result<SaveReply, RegError> {
        self.save_with_path(req, flow, None, now)
    }

    /// [`save`](Registrar::save), storing `path` (the REGISTER's Path values, RFC 3327 §5.3)
    /// with each binding it makes or refreshes.
    pub fn save_with_path(
        &self,
        req: &Message,
        flow: Flow,
        path: Option<&str>,
        now: Instant,
    ) -> Result<SaveReply, RegError> {
        let to = req.to().map_err(|_| RegError::Malformed("To"))?;
        let uri = to.uri().map_err(|_| RegError::Malformed("To URI"))?;
        let aor = aor_of(&uri)?;
        let call_id = req.call_id().ok_or(RegError::Malformed("Call-ID"))?;
        let cseq = req.cseq().map_err(|_| RegError::Malformed("CSeq"))?.seq;
        let hdr_expires = header_expires(req)?;
        let parsed = parse_contacts(req, hdr_expires, &self.cfg)?;
        let r = Request {
            call_id,
            cseq,
            flow,
            user_agent: req.header("User-Agent"),
            path,
            now,
        };
        let mut slot = self.slot(&aor);
        let list = slot.get_mut(&aor);
        let existing = list.as_deref().map_or(&[][..], Vec::as_slice);
        let parsed = match single::place(existing, parsed, now) {
            Ok((at, c)) if self.single => {
                let (out, new) = self.save_single(list, &aor, at, c, &r)?;
                if let Some(list) = new {
                    slot.insert(aor, list);
                }
                return Ok(out);
            }
            Ok((_, c)) => Parsed::Contacts(vec![c]),
            Err(parsed) => parsed,
        };
        let existing = slot.get(&aor).map(Vec::as_slice).unwrap_or(&[]);
        // Bindings learnt from the cluster (other nodes' clients) are not this REGISTER's to
        // change: it applies to the local ones; they count against max_contacts all the same.
        let (local, remote): (Vec<Binding>, Vec<Binding>) =
            existing.iter().cloned().partition(|b| b.node.is_none());
        let Some(mut next) = apply(&local, parsed, &r, &self.cfg)? else {
            return Ok(reply(existing, flow.conn_id, now));
        };
        let live_remote = remote.iter().filter(|b| b.expires_at > now).count();
        if self.cfg.max_contacts > 0 && next.len() + live_remote > self.cfg.max_contacts {
            return Err(RegError::TooManyContacts(self.cfg.max_contacts));
        }
        next.extend(remote);
        let before = existing.len();
        if next.len() > before
            && !self
                .count
                .reserve(next.len() - before, self.max_registrations)
        {
            return Err(RegError::Full(self.max_registrations));
        }
        self.count.release(before.saturating_sub(next.len()));
        if next.len() >= before {
            self.contacts
                .fetch_add(next.len() - before, Ordering::Relaxed);
        } else {
            self.contacts
                .fetch_sub(before - next.len(), Ordering::Relaxed);
        }
        let old = conn_ids(existing);
        let new = conn_ids(&next);
        for id in old.iter().filter(|id| new.binary_search(id).is_err()) {
            self.unindex(*id, &aor);
        }
        for id in new.iter().filter(|id| old.binary_search(id).is_err()) {
            self.index(*id, &aor);
        }
        let out = reply(&next, flow.conn_id, now);
        match (before, next.is_empty()) {
            (0, true) => {}
            (_, true) => {
                slot.remove(&aor);
                self.aors.fetch_sub(1, Ordering::Relaxed);
            }
            (0, false) => {
                slot.insert(aor, next);
                self.aors.fetch_add(1, Ordering::Relaxed);
            }
            (_, false) => {
                slot.insert(aor, next);
            }
        }
        Ok(out)
    }

    /// [`save_with_path`](Registrar::save_with_path) of one contact placed by
    /// [`single::place`] in `list`, the AoR's bindings (`None`: it has none): `at` is the
    /// binding it refreshes, or `None` to add one. Returns the answer, and the list to store
    /// for an AoR that had none (the caller holds the slot).
    fn save_single(
        &self,
        list: Option<&mut Vec<Binding>>,
        aor: &str,
        at: Option<usize>,
        c: Requested,
        r: &Request<'_>,
    ) -> Result<(SaveReply, Option<Vec<Binding>>), RegError> {
        let conn = r.flow.conn_id;
        let current = list.as_deref().map_or(&[][..], Vec::as_slice);
        single::check(current, at, r, self.cfg.max_contacts)?;
        let old_conn = at.and_then(|i| current.get(i)).map(|b| b.flow.conn_id);
        if old_conn.is_none() {
            if !self.count.reserve(1, self.max_registrations) {
                return Err(RegError::Full(self.max_registrations));
            }
            self.contacts.fetch_add(1, Ordering::Relaxed);
        }
        if !current.iter().any(|b| b.flow.conn_id == conn) {
            self.index(conn, aor);
        }
        match list {
            Some(list) => {
                single::put(list, at, c, r);
                if let Some(old) = old_conn.filter(|&o| o != conn) {
                    if !list.iter().any(|b| b.flow.conn_id == old) {
                        self.unindex(old, aor);
                    }
                }
                Ok((reply(list, conn, r.now), None))
            }
            None => {
                self.aors.fetch_add(1, Ordering::Relaxed);
                let mut list = Vec::with_capacity(1);
                single::put(&mut list, at, c, r);
                Ok((reply(&list, conn, r.now), Some(list)))
            }
        }
    }

    fn index(&self, conn_id: u64, aor: &str) {
        if conn_id != 0 {
            self.conn_shard(conn_id)
                .entry(conn_id)
                .or_default()
                .insert(aor.to_string());
        }
    }

    /// Forget that `aor` has bindings over `conn_id`.
    fn unindex(&self, conn_id: u64, aor: &str) {
        if conn_id == 0 {
            return;
        }
        let mut shard = self.conn_shard(conn_id);
        if let Some(set) = shard.get_mut(&conn_id) {
            set.remove(aor);
            if set.is_empty() {
                shard.remove(&conn_id);
            }
        }
    }

    /// Live bindings of `aor` (canonical form, see [`aor_of`]): highest q first, then the most
    /// recently refreshed. Expired bindings are never returned, swept or not.
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let slot = self.slot(aor);
        let mut v: Vec<&Binding> = live(&slot, aor, now).collect();
        v.sort_by(|a, b| preference(b, a));
        v.into_iter().cloned().collect()
    }

    /// `f` of the first of [`lookup`](Registrar::lookup), without building the list (a
    /// stateless proxy sends to one contact); `None` when `aor` has no live binding.
    pub fn with_best<R>(
        &self,
        aor: &str,
        now: Instant,
        f: impl FnOnce(&Binding) -> R,
    ) -> Option<R> {
        let slot = self.slot(aor);
        // min_by keeps the first of equals, as the stable sort of `lookup` does.
        let best = live(&slot, aor, now).min_by(|a, b| preference(b, a));
        best.map(f)
    }

    /// `f` of each of [`lookup`](Registrar::lookup), in its order (highest q first, then the
    /// most recently refreshed), without copying the bindings; `f` returns `None` to skip one.
    /// At most `max` results.
    pub fn map_live<R>(
        &self,
        aor: &str,
        now: Instant,
        max: usize,
        mut f: impl FnMut(&Binding) -> Option<R>,
    ) -> Vec<R> {
        let slot = self.slot(aor);
        let mut v: smallvec::SmallVec<[&Binding; 4]> = live(&slot, aor, now).collect();
        v.sort_by(|a, b| preference(b, a));
        v.into_iter().filter_map(&mut f).take(max).collect()
    }

    /// The first of [`lookup`](Registrar::lookup), copied.
    pub fn best(&self, aor: &str, now: Instant) -> Option<Binding> {
        self.with_best(aor, now, Binding::clone)
    }

    /// Drop every binding registered over connection `conn_id` (it closed). Costs the
    /// bindings of the AoRs that used it, one slot lock at a time, not the whole table.
    pub fn remove_flow(&self, conn_id: u64) -> usize {
        self.remove_flow_aors(conn_id).0
    }

    /// [`remove_flow`](Registrar::remove_flow), also returning the AoRs that lost bindings.
    pub fn remove_flow_aors(&self, conn_id: u64) -> (usize, Vec<String>) {
        if conn_id == 0 {
            return (0, Vec::new());
        }
        let Some(aors) = self.conn_shard(conn_id).remove(&conn_id) else {
            return (0, Vec::new());
        };
        let mut n = 0;
        let mut touched = Vec::with_capacity(aors.len());
        for aor in aors {
            let mut slot = self.slot(&aor);
            let Some(list) = slot.get_mut(&aor) else {
                continue;
            };
            let before = list.len();
            list.retain(|b| b.flow.conn_id != conn_id);
            n += before - list.len();
            if list.is_empty() {
                slot.remove(&aor);
                self.aors.fetch_sub(1, Ordering::Relaxed);
            }
            drop(slot);
            touched.push(aor);
        }
        self.count.release(n);
        self.contacts.fetch_sub(n, Ordering::Relaxed);
        (n, touched)
    }

    /// The live bindings of `aor` registered on this node (not learnt from the cluster).
    pub fn local_bindings(&self, aor: &str, now: Instant) -> Vec<Binding> {
        let slot = self.slot(aor);
        live(&slot, aor, now)
            .filter(|b| b.node.is_none())
            .cloned()
            .collect()
    }

    /// Every AoR with a binding registered on this node (one slot lock at a time).
    pub fn local_aors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.slots.iter() {
            let slot = lock(m);
            out.extend(
                slot.iter()
                    .filter(|(_, l)| l.iter().any(|b| b.node.is_none()))
                    .map(|(a, _)| a.clone()),
            );
        }
        out
    }

    /// Every AoR with a binding learnt from node `node` (one slot lock at a time).
    pub fn aors_of_node(&self, node: &str) -> Vec<String> {
        let mut out = Vec::new();
        for m in self.slots.iter() {
            let slot = lock(m);
            out.extend(
                slot.iter()
                    .filter(|(_, l)| l.iter().any(|b| b.node.as_deref() == Some(node)))
                    .map(|(a, _)| a.clone()),
            );
        }
        out
    }

    /// Replace the bindings of `aor` that node `node` holds with `list` (learnt from the
    /// cluster's Redis; each must carry `node`). The limits apply: beyond `max_contacts` for
    /// the AoR or `max_registrations` in all, the newest are kept as far as they fit and the
    /// others are dropped; returns how many were dropped.
    pub fn set_remote(&self, aor: &str, node: &str, mut list: Vec<Binding>, now: Instant) -> usize {
        list.retain(|b| b.expires_at > now);
        list.sort_by(|a, b| preference(b, a));
        let mut slot = self.slot(aor);
        let existing = slot.get(aor).map(Vec::len).unwrap_or(0);
        let mut kept: Vec<Binding> = slot
            .remove(aor)
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.node.as_deref() != Some(node))
            .collect();
        let removed = existing - kept.len();
        let room = if self.cfg.max_contacts == 0 {
            usize::MAX
        } else {
            self.cfg.max_contacts.saturating_sub(kept.len())
        };
        let mut dropped = list.len().saturating_sub(room);
        list.truncate(room);
        // Give back the node's old bindings, then count the new ones within the limit.
        self.count.release(removed);
        let mut n = list.len();
        while n > 0 && !self.count.reserve(n, self.max_registrations) {
            n -= 1;
        }
        dropped += list.len() - n;
        list.truncate(n);
        kept.extend(list);
        let after = kept.len();
        if after >= existing {
            self.contacts.fetch_add(after - existing, Ordering::Relaxed);
        } else {
            self.contacts.fetch_sub(existing - after, Ordering::Relaxed);
        }
        match (existing, after) {
            (0, 0) => {}
            (_, 0) => {
                self.aors.fetch_sub(1, Ordering::Relaxed);
            }
            (0, _) => {
                self.aors.fetch_add(1, Ordering::Relaxed);
                slot.insert(aor.to_string(), kept);
            }
            _ => {
                slot.insert(aor.to_string(), kept);
            }
        }
        dropped
    }

    /// Whether connection `conn_id` still holds a binding in this table (O(1), through the
    /// index connection → AoRs).
    pub fn holds_flow(&self, conn_id: u64) -> bool {
        conn_id != 0 && self.conn_shard(conn_id).contains_key(&conn_id)
    }

    /// Remove expired bindings; returns how many. Scans slot by slot, each under its own lock
    /// for the time of that slot only (run once a second).
    pub fn expire(&self, now: Instant) -> usize {
        let mut total = 0;
        for m in self.slots.iter() {
            let mut slot = lock(m);
            let mut gone: Vec<(u64, String)> = Vec::new();
            let mut emptied = 0;
            slot.retain(|aor, list| {
                list.retain(|b| {
                    let live = b.expires_at > now;
                    if !live {
                        gone.push((b.flow.conn_id, aor.clone()));
                    }
                    live
                });
                emptied += usize::from(list.is_empty());
                !list.is_empty()
            });
            for (id, aor) in &gone {
                let still = slot
                    .get(aor)
                    .is_some_and(|l| l.iter().any(|b| b.flow.conn_id == *id));
                if !still {
                    self.unindex(*id, aor);
                }
            }
            drop(slot);
            self.aors.fetch_sub(emptied, Ordering::Relaxed);
            self.count.release(gone.len());
            self.contacts.fetch_sub(gone.len(), Ordering::Relaxed);
            self.expired.fetch_add(gone.len() as u64, Ordering::Relaxed);
            total += gone.len();
        }
        total
    }

    /// Append slot `i`'s AoRs to `out` as JSON objects (`dump::write_aor`), each preceded
    /// by a comma unless `*first`; holds that slot's lock only. Returns how many AoRs.
    pub fn dump_slot(
        &self,
        i: usize,
        now: Instant,
        brief: bool,
        out: &mut Vec<u8>,
        first: &mut bool,
    ) -> usize {
        let Some(m) = self.slots.get(i) else {
            return 0;
        };
        let slot = lock(m);
        let mut n = 0;
        for (aor, list) in slot.iter() {
            let mut v: Vec<&Binding> = list.iter().filter(|b| b.expires_at > now).collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by(|a, b| preference(b, a));
            if !std::mem::take(first) {
                out.push(b',');
            }
            dump::write_aor(out, aor, &v, now, brief);
            n += 1;
        }
        n
    }

    /// The table's AoRs as a JSON list, OpenSIPS `ul_dump` style, sorted by AoR (for tests and
    /// small tables; the MI streams [`dump_slot`](Registrar::dump_slot) instead).
    pub fn dump(&self, now: Instant) -> serde_json::Value {
        let mut out = vec![b'['];
        let mut first = true;
        for i in 0..self.slots.len() {
            self.dump_slot(i, now, false, &mut out, &mut first);
        }
        out.push(b']');
        let mut v: Vec<serde_json::Value> = serde_json::from_slice(&out).unwrap_or_default();
        v.sort_by(|a, b| a["AOR"].as_str().cmp(&b["AOR"].as_str()));
        serde_json::Value::Array(v)
    }

    /// One AoR as [`dump`](Registrar::dump) lists it (MI `ul_show_contact`), or `None` when it
    /// has no live binding.
    pub fn show(&self, aor: &str, now: Instant) -> Option<serde_json::Value> {
        let slot = self.slot(aor);
        let mut v: Vec<&Binding> = live(&slot, aor, now).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| preference(b, a));
        let mut out = Vec::new();
        dump::write_aor(&mut out, aor, &v, now, false);
        serde_json::from_slice(&out).ok()
    }
}

fn live<'s>(slot: &'s Slot, aor: &str, now: Instant) -> impl Iterator<Item = &'s Binding> {
    slot.get(aor)
        .into_iter()
        .flatten()
        .filter(move |b| b.expires_at > now)
}

/// The distinct connections of `list`, sorted.
fn conn_ids(list: &[Binding]) -> Vec<u64> {
    let mut v: Vec<u64> = list.iter().map(|b| b.flow.conn_id).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The 200's Contact values: every live binding, best first (§10.3 step 8).
fn reply(list: &[Binding], conn_id: u64, now: Instant) -> SaveReply {
    let mut v: Vec<&Binding> = list.iter().filter(|b| b.expires_at > now).collect();
    v.sort_by(|a, b| preference(b, a));
    let flow_expires = v
        .iter()
        .filter(|b| conn_id != 0 && b.flow.conn_id == conn_id)
        .map(|b| b.remaining(now))
        .max();
    SaveReply {
        contacts: v.into_iter().map(|b| b.contact_value(now)).collect(),
        flow_expires,
    }
}
