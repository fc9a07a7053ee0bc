//! `t_relay()` of a request with several targets (RFC 3261 §16.6: parallel forking; §16.7:
//! the best response wins): the contacts `lookup()` found, `append_branch()`, and the new
//! branches a failure route relays to. Each branch is the request rewritten for its own
//! target, with its own signed Via branch (its index under the MAC), on a client transaction
//! of the one cell ([`super::stateful`]).
use super::locate;
use super::proxy::Outbound;
use super::relay::{answer_full, build_out};
use super::send::{peer, Core};
use super::stateful::{self, BranchDst, BranchTarget, Relayed, TmOpts};
use crate::sip::Message;
use sipcore_abi::ReceiveInfo;

/// The script's transaction state for one request (OpenSIPS tm's per-message settings).
#[derive(Debug, Default)]
pub(crate) struct TmEnv {
    /// `t_on_failure`, `t_on_reply`, `t_on_branch`, `$T_fr_timeout`, `$T_fr_inv_timeout`.
    pub opts: TmOpts,
    /// Branches beyond the Request-URI's: more contacts of `lookup()`, `append_branch()`.
    pub branches: Vec<BranchTarget>,
    /// In a failure route: the cell and the final code chosen (`$T_reply_code`).
    pub failure: Option<(u64, u16)>,
    /// The q value of the Request-URI's target (the first contact of `lookup()`).
    pub ru_q: Option<u16>,
    /// The Route set of the Request-URI's target (its binding's Path).
    pub ru_route: Option<String>,
    /// Groups of targets `serialize_branches()` left for `next_branches()`, best q first.
    pub serial: Vec<Vec<BranchTarget>>,
}

/// `serialize_branches()` (OpenSIPS core): `targets` (the Request-URI's first) grouped by q,
/// highest first (RFC 3261 §16.6: equal q in parallel, groups in sequence); the first group
/// stays, the others are returned for `next_branches()` in a failure route. A target without
/// q counts as 1.0.
pub(crate) fn serialize(
    mut targets: Vec<BranchTarget>,
) -> (Vec<BranchTarget>, Vec<Vec<BranchTarget>>) {
    let q = |t: &BranchTarget| t.q.unwrap_or(1000);
    // Stable: among equal q, the order they were added in.
    targets.sort_by_key(|t| std::cmp::Reverse(q(t)));
    let mut groups: Vec<Vec<BranchTarget>> = Vec::new();
    for t in targets {
        match groups.last_mut() {
            Some(g) if g.first().map(q) == Some(q(&t)) => g.push(t),
            _ => groups.push(vec![t]),
        }
    }
    let mut groups = groups.into_iter();
    let first = groups.next().unwrap_or_default();
    (first, groups.collect())
}

/// How a target is reached.
fn place(core: &Core, t: &BranchTarget) -> Result<BranchDst, (u16, &'static str, String)> {
    if let Some(c) = t.dst {
        return Ok(BranchDst::Conn(c));
    }
    let uri = t.du.as_deref().unwrap_or(&t.ru);
    match locate::locate_now(core, uri) {
        Ok(l) => Ok(BranchDst::Addr {
            proto: l.proto,
            addr: l.addr,
            host: l.host,
        }),
        Err(crate::dns::DnsError::Miss) => Err((
            503,
            "Service Unavailable",
            format!(
                "{uri}: not in the DNS cache (a forked branch is not resolved; use an address)"
            ),
        )),
        Err(e) => {
            let (code, reason) = locate::failure_answer(&e);
            Err((code, reason, e.to_string()))
        }
    }
}

/// `t_relay()` of `msg` to every target, in order: branch 0 makes the transaction (or, in a
/// failure route, `cell` is the transaction the branches join). 1 when at least one branch
/// went out; else -1 and, outside a failure route, the answer of the last failure (480 for
/// a registered client's closed connection, 503 for an unreachable address). Returns also
/// whether a reply was sent here.
pub(crate) fn relay_branches(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    targets: &[BranchTarget],
    (opts, serial): (&TmOpts, &[Vec<BranchTarget>]),
    cell: Option<u64>,
) -> (i64, bool) {
    let joining = cell.is_some();
    let mut cell = cell;
    let mut last_fail: (u16, &'static str) = (503, "Service Unavailable");
    let mut sent_any = false;
    for t in targets {
        let dst = match place(core, t) {
            Ok(d) => d,
            Err((code, reason, why)) => {
                crate::log!(Info, "tm", "t_relay(): branch to {} not sent: {}", t.ru, why; "peer" => peer(info));
                last_fail = (code, reason);
                continue;
            }
        };
        let index = match cell {
            None => 0,
            Some(id) => match stateful::branch_count(id) {
                Some(n) => n,
                None => break,
            },
        };
        let Ok(index8) = u8::try_from(index) else {
            break;
        };
        let outbound = match &dst {
            BranchDst::Conn(c) => Outbound::Conn(c.proto, c.conn_id),
            BranchDst::Addr { proto, addr, .. } => Outbound::Addr(*proto, *addr),
        };
        let (out, branch) =
            match build_out(core, info, msg, Some(&t.ru), outbound, &t.st, index8, false) {
                Ok(o) => o,
                Err(_) => continue,
            };
        let out = stateful::BranchReq {
            bytes: bytes::Bytes::from(out),
            branch: branch.as_str(),
            method: msg.method_str().unwrap_or_default(),
        };
        let gone = match &dst {
            BranchDst::Conn(c) => (c.gone.0, c.gone.1),
            BranchDst::Addr { .. } => (503, "Service Unavailable"),
        };
        match cell {
            None => {
                match stateful::relay(core, info, msg, (dst, out), (opts, &t.st, serial), false) {
                    Ok(Relayed::Sent { cell: id, .. }) => {
                        cell = Some(id);
                        sent_any = true;
                    }
                    Ok(Relayed::Exists) => {
                        stateful::absorb(core, info, msg);
                        return (0, false);
                    }
                    Err(e) if e == stateful::TABLE_FULL || e == stateful::SOURCE_FULL => {
                        return (-1, answer_full(core, info, msg, &e));
                    }
                    Err(e) => {
                        crate::log!(Info, "tm", "t_relay(): branch to {} failed: {}", t.ru, e; "peer" => peer(info));
                        last_fail = gone;
                    }
                }
            }
            Some(id) => match stateful::add_branch(core, id, index, dst, out) {
                Ok(_) => sent_any = true,
                Err(e) => {
                    crate::log!(Info, "tm", "t_relay(): branch {} to {} failed: {}", index, t.ru, e; "peer" => peer(info));
                    last_fail = gone;
                }
            },
        }
    }
    if sent_any {
        crate::stats::counters::CORE_FWD_REQUESTS.inc();
    }
    match cell {
        // Branches of a new transaction: the final response is chosen once they all end.
        Some(id) if !joining => {
            stateful::close(core, id);
            (1, false)
        }
        // In a failure route: the route's end resumes the cell.
        Some(_) => (if sent_any { 1 } else { -1 }, false),
        None => {
            let sent = core
                .reply(info, msg, last_fail.0, last_fail.1, &[])
                .unwrap_or(false);
            if sent {
                crate::stats::counters::SL_SENT_ERR.inc();
            }
            (-1, sent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ru: &str, q: Option<u16>) -> BranchTarget {
        BranchTarget {
            ru: ru.into(),
            du: None,
            dst: None,
            q,
            route: None,
            st: Default::default(),
        }
    }

    /// RFC 3261 §16.6: equal q in parallel, groups by decreasing q; no q counts as 1.0; among
    /// equal q the order they were added in.
    #[test]
    fn serialize_groups_by_decreasing_q() {
        let (first, rest) = serialize(vec![
            t("sip:a", Some(500)),
            t("sip:b", None),
            t("sip:c", Some(1000)),
            t("sip:d", Some(500)),
            t("sip:e", Some(100)),
        ]);
        let names = |g: &[BranchTarget]| g.iter().map(|t| t.ru.clone()).collect::<Vec<_>>();
        assert_eq!(names(&first), ["sip:b", "sip:c"]);
        assert_eq!(rest.len(), 2);
        assert_eq!(names(&rest[0]), ["sip:a", "sip:d"]);
        assert_eq!(names(&rest[1]), ["sip:e"]);
        let (first, rest) = serialize(vec![t("sip:x", Some(300))]);
        assert_eq!((names(&first), rest.len()), (vec!["sip:x".to_string()], 0));
    }
}
