//! One AoR's bindings updated by one REGISTER (RFC 3261 §10.3 steps 6-8, RFC 5626 §6), in
//! time linear in the contacts of the AoR and of the request: each binding is found through
//! a hash of its key instead of comparing every requested contact with every stored one.
use super::contact::{Parsed, Requested};
use super::{after, Binding, Flow, RegError, RegistrarConfig};
use smallvec::SmallVec;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::time::Instant;

/// What the AoR update needs from the REGISTER.
pub(super) struct Request<'a> {
    /// Its Call-ID.
    pub call_id: &'a str,
    /// Its CSeq number.
    pub cseq: u32,
    /// The flow it came over.
    pub flow: Flow,
    /// Its User-Agent.
    pub user_agent: Option<&'a str>,
    /// Its Path values (RFC 3327), comma-separated.
    pub path: Option<&'a str>,
    /// When it arrived.
    pub now: Instant,
}

/// The keys are already hashes (with a per-request random key): use them as they are.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Entry indexes by key hash; candidates are checked against the real key.
type Index = HashMap<u64, SmallVec<[usize; 2]>, BuildHasherDefault<Identity>>;

fn add(ix: &mut Index, h: u64, i: usize) {
    ix.entry(h).or_default().push(i);
}

fn remove(ix: &mut Index, h: u64, i: usize) {
    if let Some(v) = ix.get_mut(&h) {
        v.retain(|x| *x != i);
        if v.is_empty() {
            ix.remove(&h);
        }
    }
}

/// Hashes of a binding's keys.
#[derive(Clone, Copy)]
struct Keys {
    uri: u64,
    /// `(+sip.instance, reg-id)` when it has both.
    ids: Option<u64>,
}

/// The list being built, with its indexes. Entries are never moved: a removed one becomes
/// `None`, so indexes stay valid and the order of the others is kept.
struct Work {
    hasher: RandomState,
    list: Vec<Option<(Binding, Keys)>>,
    /// Every binding by URI key.
    by_uri: Index,
    /// Bindings without both `+sip.instance` and `reg-id`, by URI key.
    by_uri_plain: Index,
    /// Bindings with both, by (instance, reg-id).
    by_ids: Index,
}

impl Work {
    fn keys(&self, key: &str, instance: Option<&String>, reg_id: Option<u32>) -> Keys {
        Keys {
            uri: self.hasher.hash_one(key),
            ids: instance
                .zip(reg_id)
                .map(|(i, r)| self.hasher.hash_one((i, r))),
        }
    }

    fn insert_keys(&mut self, i: usize, k: Keys) {
        add(&mut self.by_uri, k.uri, i);
        match k.ids {
            Some(h) => add(&mut self.by_ids, h, i),
            None => add(&mut self.by_uri_plain, k.uri, i),
        }
    }

    fn remove_keys(&mut self, i: usize, k: Keys) {
        remove(&mut self.by_uri, k.uri, i);
        match k.ids {
            Some(h) => remove(&mut self.by_ids, h, i),
            None => remove(&mut self.by_uri_plain, k.uri, i),
        }
    }

    fn push(&mut self, b: Binding, k: Keys) {
        let i = self.list.len();
        self.insert_keys(i, k);
        self.list.push(Some((b, k)));
    }

    /// The smallest index among `ix[h]` whose binding passes `same`.
    fn first(&self, ix: &Index, h: u64, same: impl Fn(&Binding) -> bool) -> Option<usize> {
        ix.get(&h)?
            .iter()
            .copied()
            .filter(|&i| matches!(self.list.get(i), Some(Some((b, _))) if same(b)))
            .min()
    }

    /// The binding `c` designates, and another one it makes redundant. RFC 5626 §6: the
    /// binding with the same instance and reg-id is the same flow slot, whatever its URI; a
    /// binding of the same URI registered without them (RFC 3261 §19.1.4 equality) is the same
    /// contact and goes, so that one instance never holds two bindings. Without instance and
    /// reg-id: URI equality alone.
    fn find(&self, c: &Requested, k: Keys) -> (Option<usize>, Option<usize>) {
        let same_uri = |b: &Binding| b.key == c.key;
        match (k.ids, &c.instance, c.reg_id) {
            (Some(h), Some(inst), Some(reg)) => {
                let by_ids = self.first(&self.by_ids, h, |b| {
                    b.instance.as_ref() == Some(inst) && b.reg_id == Some(reg)
                });
                let plain = self.first(&self.by_uri_plain, k.uri, same_uri);
                match by_ids {
                    Some(a) => (Some(a), plain),
                    None => (plain, None),
                }
            }
            _ => (self.first(&self.by_uri, k.uri, same_uri), None),
        }
    }

    fn set(&mut self, i: usize, entry: Option<(Binding, Keys)>) {
        if let Some((_, k)) = self.list.get_mut(i).and_then(Option::take) {
            self.remove_keys(i, k);
        }
        if let Some((_, k)) = &entry {
            self.insert_keys(i, *k);
        }
        if let Some(slot) = self.list.get_mut(i) {
            *slot = entry;
        }
    }
}

/// The AoR's bindings after `parsed` is applied to `existing`: `Ok(None)` when the request
/// only queries them. Nothing is applied when any contact is refused.
pub(super) fn apply(
    existing: &[Binding],
    parsed: Parsed,
    req: &Request<'_>,
    cfg: &RegistrarConfig,
) -> Result<Option<Vec<Binding>>, RegError> {
    let list = match parsed {
        Parsed::Query => return Ok(None),
        Parsed::Wildcard => {
            for b in existing.iter().filter(|b| b.call_id == req.call_id) {
                check_order(b, req)?;
            }
            return Ok(Some(Vec::new()));
        }
        Parsed::Contacts(list) => list,
    };
    let mut w = Work {
        hasher: RandomState::new(),
        list: Vec::with_capacity(existing.len() + list.len()),
        by_uri: Index::default(),
        by_uri_plain: Index::default(),
        by_ids: Index::default(),
    };
    // An expired binding not yet swept is gone already: nothing may match it (an
    // unregistration that did would leave the live binding in place).
    for b in existing.iter().filter(|b| b.expires_at > req.now) {
        let k = w.keys(&b.key, b.instance.as_ref(), b.reg_id);
        w.push(b.clone(), k);
    }
    for c in list {
        let k = w.keys(&c.key, c.instance.as_ref(), c.reg_id);
        let (pos, twin) = w.find(&c, k);
        for i in pos.into_iter().chain(twin) {
            if let Some(Some((b, _))) = w.list.get(i) {
                if b.call_id == req.call_id {
                    check_order(b, req)?;
                }
            }
        }
        if let Some(i) = twin {
            w.set(i, None);
        }
        match (pos, c.expires) {
            (Some(i), 0) => w.set(i, None),
            (None, 0) => {}
            (Some(i), secs) => {
                let b = c.into_binding(secs, req);
                w.set(i, Some((b, k)));
            }
            (None, secs) => {
                let b = c.into_binding(secs, req);
                w.push(b, k);
            }
        }
    }
    let next: Vec<Binding> = w
        .list
        .into_iter()
        .flatten()
        .map(|(b, _)| b)
        .filter(|b| b.expires_at > req.now)
        .collect();
    if cfg.max_contacts > 0 && next.len() > cfg.max_contacts {
        return Err(RegError::TooManyContacts(cfg.max_contacts));
    }
    Ok(Some(next))
}

/// §10.3 step 7: same Call-ID needs a higher CSeq.
pub(super) fn check_order(b: &Binding, req: &Request<'_>) -> Result<(), RegError> {
    if req.cseq <= b.cseq {
        return Err(RegError::OutOfOrder {
            got: req.cseq,
            stored: b.cseq,
        });
    }
    Ok(())
}

impl Requested {
    pub(super) fn into_binding(self, secs: u32, req: &Request<'_>) -> Binding {
        Binding {
            uri: self.uri,
            key: self.key,
            params: self.params,
            expires_at: after(req.now, secs),
            q: self.q.unwrap_or(1000),
            q_given: self.q.is_some(),
            call_id: req.call_id.to_string(),
            cseq: req.cseq,
            flow: req.flow,
            instance: self.instance,
            reg_id: self.reg_id,
            user_agent: req.user_agent.map(str::to_string),
            path: req.path.map(str::to_string),
            updated: req.now,
            node: None,
        }
    }
}
