//! A stateful proxy's response context (RFC 3261 §16.7, §16.8, §16.10): one server
//! transaction, the client branches the request was forwarded on, which responses go
//! upstream, which branches get a CANCEL, and OpenSIPS tm's `fr_timeout` / `fr_inv_timeout`
//! per branch. Pure: the driver creates the client transactions, builds the CANCELs
//! ([`build_cancel`](super::build_cancel)) and sends the responses.

use std::time::{Duration, Instant};

use thiserror::Error;

use super::select::{best_response, Choice};
use super::txn::class;
use crate::sip::Message;

/// Most branches of one context (OpenSIPS `MAX_BRANCHES`).
pub const MAX_BRANCHES: usize = 12;

/// A branch, numbered from 0 in the order [`ProxyContext::add_branch`] added them.
pub type BranchId = usize;

/// The proxy-level timers of one branch (OpenSIPS tm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProxyTimer {
    /// `fr_timeout`: no final response since the request was sent (no provisional one either,
    /// for an INVITE).
    Fr(BranchId),
    /// `fr_inv_timeout`: an INVITE branch answered provisionally but not finally (the role of
    /// RFC 3261 §16.8 timer C, restarted on every provisional response as OpenSIPS's
    /// `restart_fr_on_each_reply` does by default).
    FrInv(BranchId),
}

/// The context's settings (OpenSIPS tm modparams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `fr_timeout` (OpenSIPS default 30 s).
    pub fr_timeout: Duration,
    /// `fr_inv_timeout` (OpenSIPS default 120 s).
    pub fr_inv_timeout: Duration,
    /// The final code a branch ended by `fr_inv_timeout` counts as: 408 as OpenSIPS, or 480
    /// Temporarily Unavailable (§21.4.18: the callee was reached but did not answer).
    pub fr_inv_code: u16,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            fr_timeout: Duration::from_secs(30),
            fr_inv_timeout: Duration::from_secs(120),
            fr_inv_code: 408,
        }
    }
}

/// Why a branch cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContextError {
    /// [`ProxyContext::close`] was called.
    #[error("no more branches: the context is closed")]
    Closed,
    /// A final response was sent upstream or a 6xx received (§16.7 step 5: no new branches).
    #[error("no more branches: a final response was sent or a 6xx received")]
    Finished,
    /// [`MAX_BRANCHES`] reached.
    #[error("too many branches (at most {MAX_BRANCHES})")]
    TooManyBranches,
}

/// What happens to a context.
#[derive(Debug, Clone)]
pub enum ProxyEvent {
    /// A branch's client transaction passed up a response (§16.7).
    Response(BranchId, Box<Message>),
    /// A timer the context armed fired.
    Timer(ProxyTimer),
    /// A branch's client transaction timed out (timer B or F): as if it got a 408 (§16.7
    /// step 2 note, §16.8).
    BranchTimeout(BranchId),
    /// A branch's transport failed: as if it got a 503 (§16.9).
    BranchTransportError(BranchId),
    /// A branch ended without a response, counted as this code: the flow it was sent over
    /// closed (430 Flow Failed for a flow token, RFC 5626 §5.3; 480 for a registered
    /// contact's connection, as the relay answers when it is gone at send time).
    BranchGone(BranchId, u16),
    /// The server transaction's request was cancelled (a CANCEL matched it, §16.10).
    Cancel,
}

/// What the driver must do, in order.
#[derive(Debug, Clone)]
pub enum ProxyAction {
    /// Send `response` of `branch` upstream through the server transaction: a provisional
    /// response other than 100, every 2xx of an INVITE (§16.7 steps 5, 9; RFC 6026), or the
    /// chosen final response, with the WWW-/Proxy-Authenticate values of the `challenges`
    /// branches added (§16.7 step 7, see [`challenge_headers`](super::challenge_headers)).
    Forward {
        /// The branch.
        branch: BranchId,
        /// Its response.
        response: Box<Message>,
        /// Other 401/407 branches whose challenges to add (empty but for a chosen 401/407).
        challenges: Vec<BranchId>,
    },
    /// Send a response generated here upstream: 408 when no branch answered in time, 500 in
    /// place of a chosen 503 (§16.7 step 6), `fr_inv_code`.
    Reply(u16),
    /// Send a CANCEL on this branch (§9.1: only once it has a provisional response; §16.7
    /// step 10, §16.10).
    Cancel(BranchId),
    /// Arm this timer for this instant.
    Arm(ProxyTimer, Instant),
    /// Disarm it.
    Disarm(ProxyTimer),
    /// Every branch ended without a 2xx and a failure route is armed
    /// ([`ProxyContext::arm_failure`]): the driver runs it with this final code (OpenSIPS
    /// tm's `failure_route`, `$T_reply_code`), where new branches may be added, and then
    /// calls [`ProxyContext::resume`], which sends the held response unless a branch was
    /// added or a reply was sent there ([`ProxyContext::replied`]).
    Failure(u16),
}

/// The response chosen while a failure route runs (see [`ProxyAction::Failure`]).
#[derive(Debug, Clone)]
struct Held {
    code: u16,
    choice: Choice,
    challenges: Vec<BranchId>,
    /// Branches when it was chosen: more after the route means it added some.
    branches: usize,
}

#[derive(Debug, Clone)]
struct Branch {
    provisional: bool,
    /// The final code: received, or counted for a timeout or transport error.
    code: Option<u16>,
    /// The final response received, until one went upstream (see [`ProxyContext::compact`]).
    response: Option<Box<Message>>,
    /// A CANCEL is due as soon as a provisional response allows it (OpenSIPS
    /// `T_UAC_TO_CANCEL_FLAG`).
    cancel_wanted: bool,
    cancel_sent: bool,
}

/// One server transaction and its client branches (RFC 3261 §16.7).
#[derive(Debug, Clone)]
pub struct ProxyContext {
    invite: bool,
    config: ProxyConfig,
    branches: Vec<Branch>,
    closed: bool,
    no_new_branches: bool,
    cancelled: bool,
    final_sent: Option<u16>,
    armed: Vec<(ProxyTimer, Instant)>,
    /// A failure route is armed (one run per arming, as OpenSIPS's `t_on_failure`).
    failure_armed: bool,
    /// The choice a failure route runs for.
    held: Option<Held>,
}

impl ProxyContext {
    /// A context for an INVITE (`invite`) or another request.
    pub fn new(invite: bool, config: ProxyConfig) -> Self {
        ProxyContext {
            invite,
            config,
            branches: Vec::new(),
            closed: false,
            no_new_branches: false,
            cancelled: false,
            final_sent: None,
            armed: Vec::new(),
            failure_armed: false,
            held: None,
        }
    }

    /// Whether [`ProxyContext::close`] was called (and no failure route runs).
    pub fn is_closed(&self) -> bool {
        self.closed && self.held.is_none()
    }

    /// Replaces the settings, for branches added from now on (a transaction made before the
    /// script chose its timeouts, OpenSIPS's `t_newtran()`).
    pub fn set_config(&mut self, config: ProxyConfig) {
        self.config = config;
    }

    /// Arms (or disarms) the failure route: the next time every branch has ended without a
    /// 2xx, [`ProxyAction::Failure`] comes instead of the final response.
    pub fn arm_failure(&mut self, on: bool) {
        self.failure_armed = on;
    }

    /// Whether a failure route runs now (between [`ProxyAction::Failure`] and
    /// [`ProxyContext::resume`]).
    pub fn in_failure(&self) -> bool {
        self.held.is_some()
    }

    /// The failure route is over: the held response goes upstream, unless the route added
    /// branches (then the choice waits for them, among all branches, §16.7 step 6) or sent a
    /// reply itself.
    pub fn resume(&mut self) -> Vec<ProxyAction> {
        let mut acts = Vec::new();
        let Some(held) = self.held.take() else {
            return acts;
        };
        self.closed = true;
        if self.final_sent.is_some() {
            return acts;
        }
        if self.branches.len() > held.branches && !self.cancelled {
            self.maybe_choose(&mut acts);
            return acts;
        }
        self.final_sent = Some(held.code);
        acts.push(self.action_for(held.choice, held.challenges));
        acts
    }

    /// A final response was sent upstream by the driver itself (`t_reply()` in a failure
    /// route): nothing else is chosen.
    pub fn replied(&mut self, code: u16) {
        if self.final_sent.is_none() {
            self.final_sent = Some(code);
        }
    }

    /// Records a branch forwarded now, arming its `fr_timeout`. (The request itself is the
    /// driver's: its client transaction holds it.)
    pub fn add_branch(
        &mut self,
        now: Instant,
    ) -> Result<(BranchId, Vec<ProxyAction>), ContextError> {
        if self.closed && self.held.is_none() {
            return Err(ContextError::Closed);
        }
        if self.no_new_branches || self.final_sent.is_some() || self.cancelled {
            return Err(ContextError::Finished);
        }
        if self.branches.len() >= MAX_BRANCHES {
            return Err(ContextError::TooManyBranches);
        }
        let b = self.branches.len();
        self.branches.push(Branch {
            provisional: false,
            code: None,
            response: None,
            cancel_wanted: false,
            cancel_sent: false,
        });
        let mut acts = Vec::new();
        self.arm(ProxyTimer::Fr(b), now + self.config.fr_timeout, &mut acts);
        Ok((b, acts))
    }

    /// No more branches will be added: the final response can be chosen once every branch
    /// has one (at once, if they all have).
    pub fn close(&mut self) -> Vec<ProxyAction> {
        self.closed = true;
        let mut acts = Vec::new();
        self.maybe_choose(&mut acts);
        acts
    }

    /// The final response received on `branch`.
    pub fn response(&self, branch: BranchId) -> Option<&Message> {
        self.branches
            .get(branch)
            .and_then(|b| b.response.as_deref())
    }

    /// How many branches there are.
    pub fn branch_count(&self) -> usize {
        self.branches.len()
    }

    /// The code of the first final response sent upstream.
    pub fn final_sent(&self) -> Option<u16> {
        self.final_sent
    }

    /// The timers armed now.
    pub fn armed(&self) -> &[(ProxyTimer, Instant)] {
        &self.armed
    }

    /// A final response went upstream: the branches' responses are let go (nothing chooses
    /// among them any more), so that a context lingering with its transactions is small.
    /// A driver calls this after carrying out the actions of an event (a chosen 401/407's
    /// [`ProxyAction::Forward`] reads the other branches' challenges from them first).
    pub fn compact(&mut self) {
        if self.final_sent.is_some() && self.held.is_none() {
            for b in &mut self.branches {
                b.response = None;
            }
        }
    }

    /// Whether a final response went upstream and no branch is pending: the context can go
    /// (after its server transaction).
    pub fn is_done(&self) -> bool {
        self.final_sent.is_some() && self.branches.iter().all(|b| b.code.is_some())
    }

    /// Feeds one event.
    pub fn on_event(&mut self, ev: ProxyEvent, now: Instant) -> Vec<ProxyAction> {
        let mut acts = Vec::new();
        match ev {
            ProxyEvent::Response(b, resp) => self.on_response(b, resp, now, &mut acts),
            ProxyEvent::Timer(t) => {
                let Some(pos) = self.armed.iter().position(|&(a, at)| a == t && at <= now) else {
                    return acts;
                };
                self.armed.swap_remove(pos);
                match t {
                    ProxyTimer::Fr(b) => self.end_branch(b, 408, None, &mut acts),
                    ProxyTimer::FrInv(b) => {
                        self.cancel_branch(b, &mut acts);
                        self.end_branch(b, self.config.fr_inv_code, None, &mut acts);
                    }
                }
            }
            ProxyEvent::BranchTimeout(b) => self.end_branch(b, 408, None, &mut acts),
            ProxyEvent::BranchTransportError(b) => self.end_branch(b, 503, None, &mut acts),
            ProxyEvent::BranchGone(b, code) => self.end_branch(b, code, None, &mut acts),
            ProxyEvent::Cancel => {
                if self.invite && self.final_sent.is_none() && !self.cancelled {
                    self.cancelled = true;
                    self.cancel_pending(None, &mut acts);
                }
            }
        }
        acts
    }

    fn on_response(
        &mut self,
        b: BranchId,
        resp: Box<Message>,
        now: Instant,
        acts: &mut Vec<ProxyAction>,
    ) {
        let Some(code) = resp.status() else {
            return;
        };
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        let pending = branch.code.is_none();
        match class(code) {
            1 if pending => {
                branch.provisional = true;
                if self.invite {
                    self.disarm(ProxyTimer::Fr(b), acts);
                    let at = now + self.config.fr_inv_timeout;
                    self.arm(ProxyTimer::FrInv(b), at, acts);
                }
                if self.branches[b].cancel_wanted {
                    self.cancel_branch(b, acts);
                }
                if code > 100 && self.final_sent.is_none() {
                    acts.push(ProxyAction::Forward {
                        branch: b,
                        response: resp,
                        challenges: Vec::new(),
                    });
                }
            }
            // Every 2xx of an INVITE goes upstream, even late ones (§16.7 step 5, RFC 6026).
            2 if pending || self.invite => {
                let first = self.final_sent.is_none();
                if first {
                    self.final_sent = Some(code);
                }
                if pending {
                    // Not kept: a 2xx goes upstream at once, and nothing chooses among the
                    // branches after it.
                    self.end_branch(b, code, None, acts);
                }
                acts.push(ProxyAction::Forward {
                    branch: b,
                    response: resp,
                    challenges: Vec::new(),
                });
                if first && self.invite {
                    // §16.7 step 10.
                    self.cancel_pending(Some(b), acts);
                }
            }
            6 if pending && self.invite => {
                // §16.7 step 5: not forwarded at once; the other branches are cancelled and
                // no new ones made; the 6xx then wins the choice (step 6).
                self.no_new_branches = true;
                self.cancel_pending(Some(b), acts);
                self.end_branch(b, code, Some(resp), acts);
            }
            3..=6 if pending => self.end_branch(b, code, Some(resp), acts),
            _ => {}
        }
    }

    /// Gives `b` its final code (if pending), disarms its timers, and chooses if that was the
    /// last pending branch.
    fn end_branch(
        &mut self,
        b: BranchId,
        code: u16,
        resp: Option<Box<Message>>,
        acts: &mut Vec<ProxyAction>,
    ) {
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        if branch.code.is_some() {
            return;
        }
        branch.code = Some(code);
        branch.response = resp;
        self.disarm(ProxyTimer::Fr(b), acts);
        self.disarm(ProxyTimer::FrInv(b), acts);
        self.maybe_choose(acts);
    }

    /// §16.7 step 6: once closed and every branch is final, and nothing final went up yet.
    fn maybe_choose(&mut self, acts: &mut Vec<ProxyAction>) {
        if !self.closed || self.final_sent.is_some() || self.held.is_some() {
            return;
        }
        let codes: Vec<Option<u16>> = self.branches.iter().map(|b| b.code).collect();
        let responded: Vec<bool> = self.branches.iter().map(|b| b.response.is_some()).collect();
        let Some(sel) = best_response(&codes, &responded, self.cancelled) else {
            return;
        };
        if self.failure_armed && sel.code >= 300 {
            self.failure_armed = false;
            self.held = Some(Held {
                code: sel.code,
                choice: sel.choice,
                challenges: sel.challenges,
                branches: self.branches.len(),
            });
            acts.push(ProxyAction::Failure(sel.code));
            return;
        }
        self.final_sent = Some(sel.code);
        acts.push(self.action_for(sel.choice, sel.challenges));
    }

    /// The action that sends a chosen response.
    fn action_for(&self, choice: Choice, challenges: Vec<BranchId>) -> ProxyAction {
        match choice {
            Choice::Forward(b) => match self.branches.get(b).and_then(|x| x.response.clone()) {
                Some(response) => ProxyAction::Forward {
                    branch: b,
                    response,
                    challenges,
                },
                // A chosen branch always has its response (best_response checks).
                None => ProxyAction::Reply(500),
            },
            Choice::Generate(code) => ProxyAction::Reply(code),
        }
    }

    /// CANCELs every pending branch but `except` (§16.7 step 10, §16.10): at once where a
    /// provisional response came, else as soon as one does.
    fn cancel_pending(&mut self, except: Option<BranchId>, acts: &mut Vec<ProxyAction>) {
        for b in 0..self.branches.len() {
            if Some(b) != except && self.branches[b].code.is_none() {
                self.cancel_branch(b, acts);
            }
        }
    }

    fn cancel_branch(&mut self, b: BranchId, acts: &mut Vec<ProxyAction>) {
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        if !self.invite || branch.cancel_sent {
            return;
        }
        if branch.provisional {
            branch.cancel_sent = true;
            acts.push(ProxyAction::Cancel(b));
        } else {
            branch.cancel_wanted = true;
        }
    }

    fn arm(&mut self, t: ProxyTimer, at: Instant, acts: &mut Vec<ProxyAction>) {
        self.armed.retain(|&(a, _)| a != t);
        self.armed.push((t, at));
        acts.push(ProxyAction::Arm(t, at));
    }

    fn disarm(&mut self, t: ProxyTimer, acts: &mut Vec<ProxyAction>) {
        let before = self.armed.len();
        self.armed.retain(|&(a, _)| a != t);
        if self.armed.len() != before {
            acts.push(ProxyAction::Disarm(t));
        }
    }
}
