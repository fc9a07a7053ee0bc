//! The REGISTER almost every client sends (RFC 3261 §10.3 steps 6-8): one contact, refreshing
//! or adding one binding of an AoR whose bindings are all local and live. Applied in place on
//! the stored list, with the outcome [`apply`](super::aor::apply) would give for it: the same
//! binding is chosen (RFC 5626 §6 instance and reg-id first, else URI equality), the same
//! refusals happen in the same order, and the order of the list is kept. Everything else goes
//! through `apply`.
use super::aor::{check_order, Request};
use super::contact::{Parsed, Requested};
use super::{after, Binding, RegError};
use std::time::Instant;

/// The one contact of `parsed` and where it goes in `list`: `Some(i)` replaces `list[i]`,
/// `None` appends. `Err(parsed)` when this path does not apply: not exactly one contact, an
/// unregistration, a binding learnt from the cluster or expired but not yet swept, or a
/// second binding the contact makes redundant (RFC 5626 §6) that would have to go.
pub(super) fn place(
    list: &[Binding],
    parsed: Parsed,
    now: Instant,
) -> Result<(Option<usize>, Requested), Parsed> {
    let at = match &parsed {
        Parsed::Contacts(cs) => match cs.as_slice() {
            [c] => position(list, c, now),
            _ => None,
        },
        _ => None,
    };
    match (at, parsed) {
        (Some(at), Parsed::Contacts(mut cs)) => match cs.pop() {
            Some(c) => Ok((at, c)),
            None => Err(Parsed::Contacts(cs)),
        },
        (_, parsed) => Err(parsed),
    }
}

fn position(list: &[Binding], c: &Requested, now: Instant) -> Option<Option<usize>> {
    if c.expires == 0 || list.iter().any(|b| b.node.is_some() || b.expires_at <= now) {
        return None;
    }
    let same_uri = |b: &Binding| b.key == c.key;
    match (&c.instance, c.reg_id) {
        (Some(inst), Some(reg)) => {
            let by_ids = list
                .iter()
                .position(|b| b.instance.as_ref() == Some(inst) && b.reg_id == Some(reg));
            // A binding of the same URI registered without both ids is the same contact.
            let plain = list
                .iter()
                .position(|b| same_uri(b) && !(b.instance.is_some() && b.reg_id.is_some()));
            match (by_ids, plain) {
                (Some(_), Some(_)) => None,
                (Some(i), None) => Some(Some(i)),
                (None, p) => Some(p),
            }
        }
        _ => Some(list.iter().position(same_uri)),
    }
}

/// The refusals `apply` would give, in its order: a CSeq not above the refreshed binding's
/// for the same Call-ID (§10.3 step 7), then more than `max_contacts` (0: no limit).
pub(super) fn check(
    list: &[Binding],
    at: Option<usize>,
    req: &Request<'_>,
    max_contacts: usize,
) -> Result<(), RegError> {
    let after_len = match at.and_then(|i| list.get(i)) {
        Some(b) => {
            if b.call_id == req.call_id {
                check_order(b, req)?;
            }
            list.len()
        }
        None => list.len() + 1,
    };
    if max_contacts > 0 && after_len > max_contacts {
        return Err(RegError::TooManyContacts(max_contacts));
    }
    Ok(())
}

/// `c` put at `at` (see [`place`]) once [`check`] passed.
pub(super) fn put(list: &mut Vec<Binding>, at: Option<usize>, c: Requested, req: &Request<'_>) {
    match at.and_then(|i| list.get_mut(i)) {
        Some(b) => refresh(b, c, req),
        None => {
            let secs = c.expires;
            list.push(c.into_binding(secs, req));
        }
    }
}

/// `b` refreshed by `c` (the binding `into_binding` would make), reusing the strings that
/// did not change. The caller has checked the CSeq order.
fn refresh(b: &mut Binding, c: Requested, req: &Request<'_>) {
    b.uri = c.uri;
    b.key = c.key;
    b.params = c.params;
    b.expires_at = after(req.now, c.expires);
    b.q = c.q.unwrap_or(1000);
    b.q_given = c.q.is_some();
    assign(&mut b.call_id, req.call_id);
    b.cseq = req.cseq;
    b.flow = req.flow;
    b.instance = c.instance;
    b.reg_id = c.reg_id;
    assign_opt(&mut b.user_agent, req.user_agent);
    assign_opt(&mut b.path, req.path);
    b.updated = req.now;
    b.node = None;
}

/// `*dst = src`, without allocating when they are equal.
fn assign(dst: &mut String, src: &str) {
    if dst != src {
        dst.clear();
        dst.push_str(src);
    }
}

fn assign_opt(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => assign(d, s),
        (_, s) => *dst = s.map(str::to_string),
    }
}
