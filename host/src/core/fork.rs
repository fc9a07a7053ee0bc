//! `t_relay()` of a request with several targets (RFC 3261 §16.6: parallel forking; §16.7:
//! the best response wins): the contacts `lookup()` found, `append_branch()`, and the new
//! branches a failure route relays to. Each branch is the request rewritten for its own
//! target, with its own signed Via branch (its index under the MAC), on a client transaction
//! of the one cell ([`super::stateful`]).
use super::addr::ConnDst;
use super::locate;
use super::proxy::ProxyState;
use super::relay::build_out;
use super::send::{peer, Core};
use super::stateful::{self, BranchDst, Relayed, TmOpts};
use crate::sip::Message;
use sipcore_abi::ReceiveInfo;

/// One target of a forked request.
#[derive(Debug, Clone)]
pub(crate) struct BranchTarget {
    /// Its Request-URI.
    pub ru: String,
    /// `$du`: where it goes when not over `dst`.
    pub du: Option<String>,
    /// The connection it goes over (a registered client's flow).
    pub dst: Option<ConnDst>,
    /// What the script asked of its relay (record-route, header edits; a branch route may
    /// change them for this branch only).
    pub st: ProxyState,
}

/// The script's transaction state for one request (OpenSIPS tm's per-message settings).
#[derive(Debug, Default)]
pub(crate) struct TmEnv {
    /// `t_on_failure`, `t_on_reply`, `t_on_branch`, `$T_fr_timeout`, `$T_fr_inv_timeout`.
    pub opts: TmOpts,
    /// Branches beyond the Request-URI's: more contacts of `lookup()`, `append_branch()`.
    pub branches: Vec<BranchTarget>,
    /// In a failure route: the cell and the final code chosen (`$T_reply_code`).
    pub failure: Option<(u64, u16)>,
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
    opts: &TmOpts,
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
        let conn = match &dst {
            BranchDst::Conn(c) => c.conn_id,
            BranchDst::Addr { .. } => 0,
        };
        let out = match build_out(
            core,
            info,
            msg,
            Some(&t.ru),
            (dst.proto(), conn),
            &t.st,
            index8,
            false,
        ) {
            Ok(o) => bytes::Bytes::from(o),
            Err(_) => continue,
        };
        let gone = match &dst {
            BranchDst::Conn(c) => (c.gone.0, c.gone.1),
            BranchDst::Addr { .. } => (503, "Service Unavailable"),
        };
        match cell {
            None => match stateful::relay(core, info, msg, (dst, out), (opts, &t.st), false) {
                Ok(Relayed::Sent { cell: id, .. }) => {
                    cell = Some(id);
                    sent_any = true;
                }
                Ok(Relayed::Exists) => {
                    stateful::absorb(core, info, msg);
                    return (0, false);
                }
                Err(e) if e == stateful::TABLE_FULL || e == stateful::SOURCE_FULL => {
                    crate::log!(Warning, "tm", "t_relay(): {}: 503", e; "peer" => peer(info));
                    let sent = core
                        .reply(
                            info,
                            msg,
                            503,
                            "Service Unavailable",
                            &[("Retry-After", "5")],
                        )
                        .unwrap_or(false);
                    return (-1, sent);
                }
                Err(e) => {
                    crate::log!(Info, "tm", "t_relay(): branch to {} failed: {}", t.ru, e; "peer" => peer(info));
                    last_fail = gone;
                }
            },
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
