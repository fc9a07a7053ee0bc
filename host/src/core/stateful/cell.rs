//! One stateful relay (OpenSIPS tm's "cell"): the server transaction of a request, its
//! proxy context (RFC 3261 §16.7) and the client transactions of its branches, driven by
//! work items under the cell's table-shard lock. The machines are `crate::tm`'s; this file
//! only carries out their actions: bytes go through the [`Core`]'s transports, timers into
//! the timer queue, responses from one machine to the next.
use crate::core::addr::ConnDst;
use crate::core::send::{peer, Core};
use crate::sip::{forward_response, Message};
use crate::tm::{
    build_cancel, Action, Actions, BranchId, ClientInvite, ClientKey, ClientNonInvite, Event,
    Outgoing, ProxyAction, ProxyContext, ProxyEvent, ProxyTimer, ServerKey, Timer, TimerValues,
    Transaction,
};
use bytes::Bytes;
use sipcore_abi::{Proto, ReceiveInfo};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What the script asked of a transaction before `t_relay()` (OpenSIPS tm): the routes it
/// runs and its own timeouts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TmOpts {
    /// `t_on_failure(route)`: `failure_route[route]` runs when every branch ended without a
    /// 2xx, before the final response goes upstream.
    pub(crate) failure: Option<crate::script::RouteRef>,
    /// `t_on_reply(route)`: `onreply_route[route]` runs for each response of its branches.
    pub(crate) on_reply: Option<crate::script::RouteRef>,
    /// `t_on_branch(route)`: `branch_route[route]` runs for each branch before it goes out
    /// (run by the relay, not by the cell).
    pub(crate) on_branch: Option<crate::script::RouteRef>,
    /// `$T_fr_timeout`, replacing `fr_timeout` for this transaction.
    pub(crate) fr_timeout: Option<Duration>,
    /// `$T_fr_inv_timeout`, replacing `fr_inv_timeout` for this transaction.
    pub(crate) fr_inv_timeout: Option<Duration>,
}

/// One target of a forked request (a contact of `lookup()`, `append_branch()`, or the
/// Request-URI).
#[derive(Debug, Clone)]
pub(crate) struct BranchTarget {
    /// Its Request-URI.
    pub(crate) ru: String,
    /// `$du`: where it goes when not over `dst`.
    pub(crate) du: Option<String>,
    /// The connection it goes over (a registered client's flow).
    pub(crate) dst: Option<ConnDst>,
    /// Its q value in thousandths (RFC 3261 §20.10), for `serialize_branches()`; `None`: 1.0.
    pub(crate) q: Option<u16>,
    /// A Route set to add (the binding's Path, RFC 3327 §5.3), comma-separated.
    pub(crate) route: Option<String>,
    /// What the script asked of its relay (record-route, header edits; a branch route may
    /// change them for this branch only).
    pub(crate) st: crate::core::proxy::ProxyState,
}

/// What a cell keeps of the main route for its failure route: the relay state (OpenSIPS keeps
/// record-route and header edits in the transaction's copy of the request) and the groups of
/// targets `serialize_branches()` left for `next_branches()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Saved {
    pub(crate) st: crate::core::proxy::ProxyState,
    pub(crate) serial: Vec<Vec<BranchTarget>>,
}

/// A failure route to run for a cell once its lock is released (see
/// [`crate::tm::ProxyAction::Failure`]).
pub(crate) struct FailureRun {
    pub(crate) route: crate::script::RouteRef,
    /// `$T_reply_code`: the final code chosen among the branches.
    pub(crate) code: u16,
    /// The request as received (the route relays it again to new branches).
    pub(crate) request: Message,
    pub(crate) upstream: ReceiveInfo,
    /// What the main route left for the failure route (see [`Saved`]).
    pub(crate) relay: Option<Box<Saved>>,
}

/// Where a branch's requests go.
#[derive(Debug, Clone)]
pub(crate) enum BranchDst {
    /// Over an open connection only (a registered client's flow).
    Conn(ConnDst),
    /// To an address, over `proto` (the transport may open a connection for `host`).
    Addr {
        proto: Proto,
        addr: SocketAddr,
        host: String,
    },
}

impl BranchDst {
    pub(crate) fn proto(&self) -> Proto {
        match self {
            BranchDst::Conn(c) => c.proto,
            BranchDst::Addr { proto, .. } => *proto,
        }
    }

    fn send(&self, core: &Core, bytes: &[u8]) -> Result<u64, String> {
        match self {
            BranchDst::Conn(c) => core.send_conn(c, bytes),
            BranchDst::Addr { proto, addr, host } => core.send_to(*proto, *addr, Some(host), bytes),
        }
    }
}

/// A timer of a cell, as the timer queue keys it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Slot {
    /// The server transaction's (G, H, I, J, L).
    Server(Timer),
    /// A branch's client transaction's (A, B, D, E, F, K, M).
    Client(u8, Timer),
    /// The client transaction of a branch's CANCEL (E, F, K).
    Cancel(u8, Timer),
    /// The proxy context's (`fr_timeout`, `fr_inv_timeout`).
    Ctx(ProxyTimer),
    /// 64*T1 after a branch's CANCEL: an INVITE branch still without a final response is
    /// given up (RFC 3261 §9.1: "SHOULD consider the original transaction cancelled and
    /// SHOULD destroy the client transaction").
    GiveUp(u8),
}

/// A request built for a branch (RFC 3261 §16.6): its bytes, and the branch of the Via it
/// was built with and its method, which key its client transaction (§17.1.3) without parsing
/// the bytes again.
pub(crate) struct BranchReq<'a> {
    pub(crate) bytes: Bytes,
    pub(crate) branch: &'a str,
    pub(crate) method: &'a str,
}

impl BranchReq<'_> {
    /// The key of its client transaction (§17.1.3).
    pub(crate) fn key(&self) -> ClientKey {
        ClientKey::new(self.branch, self.method)
    }

    /// The client transaction that sends this request over a `reliable` transport or not.
    /// Only an INVITE is parsed: its ACK (§17.1.1.3) and CANCEL (§9.1) are built from it
    /// later.
    pub(crate) fn client(
        self,
        reliable: bool,
        values: TimerValues,
        now: Instant,
    ) -> Result<(Transaction, Actions), String> {
        if self.method == "ACK" {
            return Err("an ACK has no client transaction".into());
        }
        if self.method == "INVITE" {
            let m = Message::parse(self.bytes).map_err(|e| e.to_string())?;
            let (t, acts) =
                ClientInvite::new(m, reliable, values, now).map_err(|e| e.to_string())?;
            Ok((Transaction::ClientInvite(t), acts))
        } else {
            let (t, acts) = ClientNonInvite::sending(self.bytes, reliable, values, now);
            Ok((Transaction::ClientNonInvite(t), acts))
        }
    }
}

/// One branch: where it goes, its client transaction and that of its CANCEL.
pub(crate) struct Branch {
    pub(crate) dst: BranchDst,
    /// The client connection it went out on (protocol number, id), for [`BranchDst::Conn`].
    pub(crate) conn: Option<(u8, u64)>,
    pub(crate) key: ClientKey,
    pub(crate) txn: Option<Transaction>,
    /// Boxed: most branches are never cancelled.
    pub(crate) cancel: Option<Box<(ClientKey, Transaction)>>,
}

/// One relayed request's state.
pub(crate) struct Cell {
    pub(crate) server_key: ServerKey,
    pub(crate) server: Option<Transaction>,
    /// Where the request came from.
    pub(crate) upstream: ReceiveInfo,
    /// Where its responses go (RFC 3261 §18.2.2, RFC 3581 §4: over UDP to the Via's port
    /// unless the client asked for rport), worked out once: the server transaction lets the
    /// request go after its final response.
    pub(crate) reply_to: ReceiveInfo,
    /// Whom it is counted against (`max_transactions_per_source`).
    pub(crate) source: super::share::Source,
    /// Whether it still counts against `source`: until its final response goes upstream
    /// (what a source holds is what waits for an answer; a finished transaction that absorbs
    /// retransmissions for the RFC's timers does not count, else one UDP peer could relay no
    /// more than max/32 s requests per second).
    pub(crate) counted: bool,
    /// The table `source`'s share is counted in (the store's).
    pub(crate) shares: std::sync::Arc<crate::tm::Table<super::share::Source, u32>>,
    pub(crate) ctx: ProxyContext,
    pub(crate) branches: Vec<Branch>,
    /// The timers armed for it (a fired one may linger here): disarmed when it ends.
    pub(crate) armed: super::timer::Armed,
    /// The script's routes and timeouts for it.
    pub(crate) opts: TmOpts,
    /// What the main route left for its failure route, kept only when one is armed.
    pub(crate) relay: Option<Box<Saved>>,
}

/// Something to feed to one of a cell's machines.
pub(crate) enum Work {
    Server(Event),
    Client(BranchId, Event),
    Cancel(BranchId, Event),
    Ctx(ProxyEvent),
    /// Branch `b`'s transactions are dropped and the context told it ended: by a transport
    /// failure (its connection closed: `true`) or a timeout (see [`Slot::GiveUp`]).
    Drop(BranchId, bool),
    /// No more branches will be added (the script's `t_relay()` of a forked request is done).
    Close,
    /// The failure route is over ([`crate::tm::ProxyContext::resume`]).
    Resume,
}

/// What processing asks of the store after the cell's lock is released, and what the first
/// send of a branch did.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) arm: Vec<(Slot, Instant)>,
    pub(crate) disarm: Vec<Slot>,
    /// Client keys to index (a CANCEL's client transaction) and to forget.
    pub(crate) add_client: Vec<(ClientKey, BranchId)>,
    pub(crate) drop_client: Vec<ClientKey>,
    /// The result of the first send of a branch's client transaction.
    pub(crate) first_send: Option<Result<u64, String>>,
    /// A failure route to run once the lock is released.
    pub(crate) failure: Option<Box<FailureRun>>,
    /// The source's share to give back: the final response went upstream.
    pub(crate) release: Option<super::share::Source>,
}

/// `msg` with `headers` added at the end of its header section (before the empty line).
fn with_headers(mut msg: Vec<u8>, headers: &[(&str, &str)]) -> Vec<u8> {
    if headers.is_empty() {
        return msg;
    }
    let Some(end) = msg.windows(4).position(|w| w == b"\r\n\r\n") else {
        return msg;
    };
    let mut lines = Vec::new();
    for (name, value) in headers {
        lines.extend_from_slice(name.as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value.as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    let at = end + 2;
    msg.splice(at..at, lines);
    msg
}

/// The reason phrase of a response this proxy generates.
fn reason(code: u16) -> &'static str {
    match code {
        408 => "Request Timeout",
        430 => "Flow Failed",
        480 => "Temporarily Unavailable",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

impl Cell {
    /// Feeds `work` and everything it leads to, in order.
    pub(crate) fn run(&mut self, core: &Core, now: Instant, work: Work, fx: &mut Effects) {
        let mut queue = VecDeque::from([work]);
        while let Some(w) = queue.pop_front() {
            match w {
                Work::Server(ev) => {
                    // A final response of the script's own (`t_reply()`, also in a failure
                    // route) is the one the context must not choose another for.
                    if let Event::Respond(out) = &ev {
                        if out.status >= 200 {
                            self.ctx.replied(out.status);
                        }
                    }
                    self.server_event(core, ev, now, fx)
                }
                Work::Client(b, ev) => self.client_event(core, b, ev, now, fx, &mut queue),
                Work::Cancel(b, ev) => self.cancel_event(core, b, ev, now, fx),
                Work::Ctx(ev) => {
                    // fr_timeout ended a branch without a provisional response: its client
                    // transaction stops retransmitting (no CANCEL is possible yet, §9.1), as
                    // OpenSIPS's tm does.
                    let fr = match ev {
                        ProxyEvent::Timer(ProxyTimer::Fr(b)) => Some(b),
                        _ => None,
                    };
                    let acts = self.ctx.on_event(ev, now);
                    if let Some(branch) = fr.and_then(|b| self.branches.get_mut(b)) {
                        if branch.txn.take().is_some() {
                            fx.drop_client.push(branch.key.clone());
                        }
                    }
                    self.proxy_actions(core, acts, now, fx, &mut queue);
                }
                Work::Drop(b, transport) => {
                    let Some(branch) = self.branches.get_mut(b) else {
                        continue;
                    };
                    if branch.txn.take().is_some() {
                        fx.drop_client.push(branch.key.clone());
                    }
                    if let Some(c) = branch.cancel.take() {
                        fx.drop_client.push(c.0);
                    }
                    queue.push_back(Work::Ctx(match (&branch.dst, transport) {
                        (_, false) => ProxyEvent::BranchTimeout(b),
                        (BranchDst::Conn(c), true) if c.gone.0 >= 300 => {
                            // The same line as when the send itself fails (core/relay.rs):
                            // one per request answered this way, whichever noticed first.
                            crate::log!(Info, "tm", "t_relay() over connection {} failed (closed): {} {}", c.conn_id, c.gone.0, c.gone.1;
                                "peer" => peer(&self.upstream));
                            ProxyEvent::BranchGone(b, c.gone.0)
                        }
                        (_, true) => ProxyEvent::BranchTransportError(b),
                    }));
                }
                Work::Close => {
                    let acts = self.ctx.close();
                    self.proxy_actions(core, acts, now, fx, &mut queue);
                }
                Work::Resume => {
                    let acts = self.ctx.resume();
                    self.proxy_actions(core, acts, now, fx, &mut queue);
                }
            }
        }
    }

    /// Carries out what the proxy context asks.
    pub(crate) fn proxy_actions(
        &mut self,
        core: &Core,
        acts: Vec<ProxyAction>,
        now: Instant,
        fx: &mut Effects,
        queue: &mut VecDeque<Work>,
    ) {
        for a in acts {
            match a {
                ProxyAction::Forward {
                    response,
                    challenges,
                    ..
                } => {
                    // Our Via off (§16.7 step 9); the server transaction sends it and
                    // answers retransmissions of the request with it. A chosen 401/407
                    // carries the challenges of the other branches' 401/407 too (step 7).
                    let code = response.status().unwrap_or(0);
                    let others: Vec<&Message> = challenges
                        .iter()
                        .filter_map(|&b| self.ctx.response(b))
                        .collect();
                    let extra = crate::tm::challenge_headers(&others);
                    // Not parsed again: the status and the To (with its tag) are the
                    // received response's, which was parsed.
                    match forward_response(&response).map_err(|e| e.to_string()) {
                        Ok(f) => queue.push_back(Work::Server(Event::Respond(Outgoing {
                            status: code,
                            bytes: Bytes::from(with_headers(f.bytes, &extra)),
                            to_tag: Outgoing::final_to_tag(code, &response),
                        }))),
                        Err(e) => {
                            crate::stats::counters::CORE_ERR_REPLIES.inc();
                            crate::log!(Info, "tm", "reply {} not relayed: {}", code, e;
                                "peer" => peer(&self.upstream));
                        }
                    }
                }
                ProxyAction::Reply(408)
                    if matches!(self.server, Some(Transaction::ServerNonInvite(_))) =>
                {
                    // RFC 4320 §4.2: no 408 to a non-INVITE request (its client has timed
                    // out by now); the server transaction just ends.
                    crate::log!(Debug, "tm", "non-INVITE timed out downstream: no 408 sent (RFC 4320)";
                        "peer" => peer(&self.upstream));
                    self.server = None;
                }
                ProxyAction::Reply(code) => {
                    if let Some(req) = self.server_request() {
                        let tag = crate::sip::stateless_to_tag(req);
                        let r = crate::sip::build_reply(req, code, reason(code), &tag, &[], None);
                        match Message::parse(Bytes::from(r)).map(|m| Outgoing::of(&m)) {
                            Ok(Some(m)) => queue.push_back(Work::Server(Event::Respond(m))),
                            Ok(None) => {}
                            Err(e) => {
                                crate::log!(Error, "tm", "generated {} does not parse: {}", code, e)
                            }
                        }
                    }
                }
                ProxyAction::Cancel(b) => self.send_cancel(core, b, now, fx),
                ProxyAction::Failure(code) => {
                    let run = self.opts.failure.zip(self.server_request().cloned());
                    match run {
                        Some((route, request)) => {
                            fx.failure = Some(Box::new(FailureRun {
                                route,
                                code,
                                request,
                                upstream: self.upstream,
                                relay: self.relay.clone(),
                            }))
                        }
                        // No route or no server transaction left: as if it did nothing.
                        None => queue.push_back(Work::Resume),
                    }
                }
                ProxyAction::Arm(t, at) => fx.arm.push((Slot::Ctx(t), at)),
                ProxyAction::Disarm(t) => fx.disarm.push(Slot::Ctx(t)),
            }
        }
    }

    fn server_request(&self) -> Option<&Message> {
        match self.server.as_ref()? {
            Transaction::ServerInvite(t) => t.request(),
            Transaction::ServerNonInvite(t) => t.request(),
            _ => None,
        }
    }

    fn server_event(&mut self, core: &Core, ev: Event, now: Instant, fx: &mut Effects) {
        let Some(txn) = self.server.as_mut() else {
            return;
        };
        let acts = txn.on_event(ev, now);
        self.server_actions(core, acts, fx);
    }

    /// Carries out the server transaction's actions.
    pub(crate) fn server_actions(&mut self, core: &Core, acts: Actions, fx: &mut Effects) {
        // Answered: the source's share goes back before the final response goes out, so
        // that a client sending its next request on receiving it finds the share free (given
        // back after the cell's work, it could race the next request and get a 503 at the
        // limit).
        if self.counted && self.answered() {
            self.counted = false;
            super::share::give_back(&self.shares, self.source);
        }
        for a in acts {
            match a {
                Action::Send(bytes) => {
                    if let Err(e) = core.send_back(&self.reply_to, &bytes) {
                        crate::stats::counters::CORE_DROP_REPLIES.inc();
                        crate::log!(Info, "tm", "reply not sent upstream: {}", e; "peer" => peer(&self.upstream));
                    } else if !bytes.starts_with(b"SIP/2.0 100 ") {
                        crate::stats::counters::CORE_FWD_REPLIES.inc();
                    }
                }
                Action::Arm(t, at) => fx.arm.push((Slot::Server(t), at)),
                Action::Disarm(t) => fx.disarm.push(Slot::Server(t)),
                Action::Terminated => self.server = None,
                // An ACK passed up in the Accepted state (RFC 6026 §7.1) is relayed by the
                // script like any 2xx ACK (the receive path let it through); a timeout
                // (timer H: no ACK came) or a transport error ends nothing else.
                Action::PassUp(_) | Action::Timeout | Action::TransportError => {}
            }
        }
    }

    fn client_event(
        &mut self,
        core: &Core,
        b: BranchId,
        ev: Event,
        now: Instant,
        fx: &mut Effects,
        queue: &mut VecDeque<Work>,
    ) {
        let Some(txn) = self.branches.get_mut(b).and_then(|br| br.txn.as_mut()) else {
            return;
        };
        let acts = txn.on_event(ev, now);
        self.client_actions(core, b, acts, fx, queue);
    }

    /// Carries out the actions of branch `b`'s client transaction.
    pub(crate) fn client_actions(
        &mut self,
        core: &Core,
        b: BranchId,
        acts: Actions,
        fx: &mut Effects,
        queue: &mut VecDeque<Work>,
    ) {
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        let slot = b as u8;
        for a in acts {
            match a {
                Action::Send(bytes) => {
                    let r = branch.dst.send(core, &bytes);
                    if r.is_err() {
                        queue.push_back(Work::Client(b, Event::TransportError));
                    }
                    if fx.first_send.is_none() {
                        fx.first_send = Some(r);
                    }
                }
                Action::PassUp(resp) => queue.push_back(Work::Ctx(ProxyEvent::Response(b, resp))),
                Action::Arm(t, at) => fx.arm.push((Slot::Client(slot, t), at)),
                Action::Disarm(t) => fx.disarm.push(Slot::Client(slot, t)),
                Action::Timeout => queue.push_back(Work::Ctx(ProxyEvent::BranchTimeout(b))),
                Action::TransportError => {
                    queue.push_back(Work::Ctx(ProxyEvent::BranchTransportError(b)))
                }
                Action::Terminated => {
                    branch.txn = None;
                    fx.drop_client.push(branch.key.clone());
                }
            }
        }
    }

    fn cancel_event(
        &mut self,
        core: &Core,
        b: BranchId,
        ev: Event,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        let Some((key, txn)) = branch.cancel.as_deref_mut() else {
            return;
        };
        let acts = txn.on_event(ev, now);
        let slot = b as u8;
        let mut over = false;
        for a in acts {
            match a {
                Action::Send(bytes) => {
                    if let Err(e) = branch.dst.send(core, &bytes) {
                        crate::log!(Info, "tm", "CANCEL not sent: {}", e; "peer" => peer(&self.upstream));
                    }
                }
                Action::Arm(t, at) => fx.arm.push((Slot::Cancel(slot, t), at)),
                Action::Disarm(t) => fx.disarm.push(Slot::Cancel(slot, t)),
                Action::Terminated => {
                    fx.drop_client.push(key.clone());
                    over = true;
                }
                // The CANCEL's own response or timeout changes nothing: the INVITE branch
                // ends with its 487 or its own timers (§9.1).
                Action::PassUp(_) | Action::Timeout | Action::TransportError => {}
            }
        }
        if over {
            branch.cancel = None;
        }
    }

    /// §9.1: a CANCEL for branch `b`, its own client transaction over the same destination.
    fn send_cancel(&mut self, core: &Core, b: BranchId, now: Instant, fx: &mut Effects) {
        let Some(branch) = self.branches.get_mut(b) else {
            return;
        };
        let Some(Transaction::ClientInvite(invite)) = branch.txn.as_ref() else {
            return;
        };
        // The CANCEL's transaction runs on the INVITE's timer values (the store's).
        let values = invite.core.values;
        let made = invite
            .request()
            .ok_or_else(|| "no request left".to_string())
            .and_then(|r| build_cancel(r).map_err(|e| e.to_string()))
            .and_then(|c| Message::parse(Bytes::from(c)).map_err(|e| e.to_string()))
            .and_then(|m| {
                let key = ClientKey::of(&m).map_err(|e| e.to_string())?;
                let reliable = crate::core::addr::connection_oriented(branch.dst.proto());
                ClientNonInvite::new(m, reliable, values, now)
                    .map(|(t, acts)| (key, t, acts))
                    .map_err(|e| e.to_string())
            });
        match made {
            Ok((key, t, acts)) => {
                fx.add_client.push((key.clone(), b));
                branch.cancel = Some(Box::new((key, Transaction::ClientNonInvite(t))));
                let slot = b as u8;
                fx.arm.push((Slot::GiveUp(slot), now + values.t1x64()));
                for a in acts {
                    match a {
                        Action::Send(bytes) => {
                            if let Err(e) = branch.dst.send(core, &bytes) {
                                crate::log!(Info, "tm", "CANCEL not sent: {}", e; "peer" => peer(&self.upstream));
                            }
                        }
                        Action::Arm(t, at) => fx.arm.push((Slot::Cancel(slot, t), at)),
                        _ => {}
                    }
                }
            }
            Err(e) => crate::log!(Error, "tm", "CANCEL for branch {} not built: {}", b, e),
        }
    }

    /// Notes in `fx` the source's share to give back once the final response went upstream
    /// (under the cell's lock, after its work).
    pub(crate) fn note_release(&mut self, fx: &mut Effects) {
        if self.counted && self.answered() {
            self.counted = false;
            fx.release = Some(self.source);
        }
    }

    /// Whether the server transaction is past waiting for an answer (RFC 3261 §17.2: a final
    /// response sent, or the transaction gone).
    fn answered(&self) -> bool {
        use crate::tm::State;
        !self
            .server
            .as_ref()
            .is_some_and(|t| matches!(t.state(), State::Trying | State::Proceeding))
    }

    /// Once a final response went upstream, the context's copies of the branches' responses
    /// are no longer needed (see [`ProxyContext::compact`]): a cell lingering for the RFC's
    /// timers keeps only what absorbing retransmissions needs.
    pub(crate) fn compact(&mut self) {
        self.ctx.compact();
        if self.ctx.final_sent().is_some() {
            // No failure route runs after a final response.
            self.relay = None;
        }
    }

    /// Nothing of the cell is left running.
    pub(crate) fn is_over(&self) -> bool {
        self.server.is_none()
            && self
                .branches
                .iter()
                .all(|b| b.txn.is_none() && b.cancel.is_none())
    }
}
