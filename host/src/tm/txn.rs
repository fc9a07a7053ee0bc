//! What every transaction machine shares: its [`Event`]s, [`Action`]s and [`State`]s
//! (RFC 3261 §17, RFC 6026 §7), and [`Transaction`], any of the four machines.

use std::time::Instant;

use bytes::Bytes;
use smallvec::SmallVec;

use super::client::{ClientInvite, ClientNonInvite};
use super::server::{ServerInvite, ServerNonInvite};
use super::timers::{Armed, Timer, TimerValues};
use crate::sip::Message;

/// What happens to a transaction (RFC 3261 §17.1, §17.2).
#[derive(Debug, Clone)]
pub enum Event {
    /// A message the transaction layer matched to this transaction: a response (client
    /// transactions, §17.1.3) or a retransmitted request or an ACK (server transactions,
    /// §17.2.3). Boxed: a `Message` is about 1 KB, and a response passed up to the TU is
    /// passed in this box (`Action::PassUp`), so the common case allocates once either way,
    /// while an event unboxed would be 1 KB to copy through every queue of events.
    Received(Box<Message>),
    /// The TU sends a response (server transactions only; ignored by client ones).
    Respond(Outgoing),
    /// A timer this transaction armed fired (a stale or early fire is ignored).
    Timer(Timer),
    /// The transport reported a fatal error sending this transaction's message (§17.1.4,
    /// §17.2.4).
    TransportError,
}

impl Event {
    /// [`Event::Received`] of `m`.
    pub fn received(m: Message) -> Event {
        Event::Received(Box::new(m))
    }
}

/// A response the TU hands its server transaction (RFC 3261 §17.2.1, §17.2.2): its status,
/// the bytes to send and resend, and for a 3xx-6xx its To tag (an INVITE server transaction
/// matches the ACK of its 3xx-6xx by it, §17.2.3). The TU builds the bytes; the machine does
/// not parse them again.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The status code.
    pub status: u16,
    /// The response as it goes on the wire.
    pub bytes: Bytes,
    /// The To tag of a 3xx-6xx response, if it has one ([`Outgoing::final_to_tag`]); `None`
    /// for a 1xx or 2xx.
    pub to_tag: Option<Box<str>>,
}

impl Outgoing {
    /// The parts of the response `msg`; `None` for a request.
    pub fn of(msg: &Message) -> Option<Outgoing> {
        let status = msg.status()?;
        Some(Outgoing {
            status,
            bytes: bytes_of(msg),
            to_tag: Self::final_to_tag(status, msg),
        })
    }

    /// The To tag of `msg` (a response with `status`) when it is a 3xx-6xx; `None` otherwise
    /// (no ACK is matched by the tag of a 1xx or 2xx).
    pub fn final_to_tag(status: u16, msg: &Message) -> Option<Box<str>> {
        if status < 300 {
            return None;
        }
        msg.to_tag_param().ok().flatten().flatten().map(Into::into)
    }
}

/// What the driver must do after an [`Event`], in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send (or retransmit) these bytes to the transaction's peer: the next hop of a client
    /// transaction, the response destination (§18.2.2) of a server transaction.
    Send(Bytes),
    /// Pass this message to the TU: a response of a client transaction (§17.1.1.2,
    /// §17.1.2.2), the ACK of a 2xx in the Accepted state of a server transaction (RFC 6026
    /// §7.1).
    PassUp(Box<Message>),
    /// Arm (or re-arm) this timer to fire at this instant.
    Arm(Timer, Instant),
    /// Disarm this timer.
    Disarm(Timer),
    /// Tell the TU the transaction timed out (Timer B or F: §17.1.1.2, §17.1.2.2; Timer H:
    /// §17.2.1).
    Timeout,
    /// Tell the TU the transport failed (§17.1.4, §17.2.4).
    TransportError,
    /// The transaction is over: forget it and every timer it armed.
    Terminated,
}

/// The actions of one event (rarely more than four).
pub type Actions = SmallVec<[Action; 4]>;

/// Transaction states (RFC 3261 Figures 5-8, RFC 6026 Figures 3 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// INVITE client: request sent, no response yet.
    Calling,
    /// Non-INVITE client and server: request sent or received, no response yet.
    Trying,
    /// A provisional response received (client) or sent (server).
    Proceeding,
    /// A final response received (client) or sent (server); absorbing retransmissions.
    Completed,
    /// INVITE server: the ACK for its non-2xx response arrived.
    Confirmed,
    /// INVITE: a 2xx was received or sent (RFC 6026 §7.1, §7.2).
    Accepted,
    /// Over; nothing changes it.
    Terminated,
}

/// What the four machines keep alike: state, transport kind, timer values, armed timers and
/// the count of timer-driven retransmissions.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) state: State,
    pub(crate) reliable: bool,
    pub(crate) values: TimerValues,
    pub(crate) armed: Armed,
    pub(crate) retransmits: u32,
}

impl Core {
    pub(crate) fn new(state: State, reliable: bool, values: TimerValues) -> Self {
        Core {
            state,
            reliable,
            values,
            armed: Armed::default(),
            retransmits: 0,
        }
    }

    pub(crate) fn arm(&mut self, timer: Timer, at: Instant, acts: &mut Actions) {
        self.armed.set(timer, at);
        acts.push(Action::Arm(timer, at));
    }

    pub(crate) fn disarm(&mut self, timer: Timer, acts: &mut Actions) {
        if self.armed.clear(timer) {
            acts.push(Action::Disarm(timer));
        }
    }

    /// Whether `timer` fired as armed (armed and due); if so it is no longer armed.
    pub(crate) fn fired(&mut self, timer: Timer, now: Instant) -> bool {
        self.armed.due(timer, now) && self.armed.clear(timer)
    }

    pub(crate) fn terminate(&mut self, acts: &mut Actions) {
        self.armed.reset();
        self.state = State::Terminated;
        acts.push(Action::Terminated);
    }

    /// A client transaction starts (§17.1.1.2, §17.1.2.2): the request goes out, retransmission
    /// timer `retx` (A or E) is armed at T1 over an unreliable transport, and the deadline
    /// `deadline` (B or F) at 64*T1.
    pub(crate) fn start_client(
        &mut self,
        retx: Timer,
        deadline: Timer,
        bytes: Bytes,
        now: Instant,
    ) -> Actions {
        let mut acts = Actions::new();
        acts.push(Action::Send(bytes));
        if !self.reliable {
            self.arm(retx, now + self.values.t1(), &mut acts);
        }
        self.arm(deadline, now + self.values.t1x64(), &mut acts);
        acts
    }

    /// The transaction's deadline passed (timer B, F or H): the TU is told, and it ends.
    pub(crate) fn time_out(&mut self, acts: &mut Actions) {
        acts.push(Action::Timeout);
        self.terminate(acts);
    }

    /// Retransmission timer `timer` (A, E or G) fired: unless the deadline timer `deadline`
    /// is due too (then the transaction times out: a retransmission due after the deadline
    /// counts as the timeout), `bytes` go again and `timer` is re-armed `interval` from now.
    pub(crate) fn retransmit(
        &mut self,
        timer: Timer,
        deadline: Timer,
        bytes: &Bytes,
        interval: std::time::Duration,
        now: Instant,
        acts: &mut Actions,
    ) {
        if self.fired(deadline, now) {
            self.time_out(acts);
            return;
        }
        acts.push(Action::Send(bytes.clone()));
        self.retransmits += 1;
        self.arm(timer, now + interval, acts);
    }

    /// Enters `state` and arms `timer` for `wait`, or terminates at once when `wait` is zero
    /// (reliable transports: "fire in zero seconds", §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
    pub(crate) fn linger(
        &mut self,
        state: State,
        timer: Timer,
        wait: std::time::Duration,
        now: Instant,
        acts: &mut Actions,
    ) {
        if wait.is_zero() {
            self.terminate(acts);
        } else {
            self.state = state;
            self.arm(timer, now + wait, acts);
        }
    }
}

/// The bytes of a parsed message, sharing its buffer.
pub(crate) fn bytes_of(m: &Message) -> Bytes {
    m.wire_bytes()
}

/// The class of a status code: 1 for 1xx ... 6 for 6xx; 0 outside 100..=699.
pub(crate) fn class(code: u16) -> u16 {
    if (100..700).contains(&code) {
        code / 100
    } else {
        0
    }
}

/// Any of the four transaction machines, for tables and drivers that hold them together.
#[derive(Debug, Clone)]
pub enum Transaction {
    /// §17.1.1.
    ClientInvite(ClientInvite),
    /// §17.1.2.
    ClientNonInvite(ClientNonInvite),
    /// §17.2.1.
    ServerInvite(ServerInvite),
    /// §17.2.2.
    ServerNonInvite(ServerNonInvite),
}

impl Transaction {
    /// Feeds one event (see each machine's `on_event`).
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Actions {
        match self {
            Transaction::ClientInvite(t) => t.on_event(ev, now),
            Transaction::ClientNonInvite(t) => t.on_event(ev, now),
            Transaction::ServerInvite(t) => t.on_event(ev, now),
            Transaction::ServerNonInvite(t) => t.on_event(ev, now),
        }
    }

    fn core(&self) -> &Core {
        match self {
            Transaction::ClientInvite(t) => &t.core,
            Transaction::ClientNonInvite(t) => &t.core,
            Transaction::ServerInvite(t) => &t.core,
            Transaction::ServerNonInvite(t) => &t.core,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core().state
    }

    /// The timers armed now, with their deadlines.
    pub fn armed(&self) -> Vec<(Timer, Instant)> {
        self.core().armed.iter().collect()
    }

    /// Retransmissions sent on timer A, E or G so far.
    pub fn retransmits(&self) -> u32 {
        self.core().retransmits
    }

    /// The timers this kind of transaction may have armed in `state` (RFC 3261 Figures 5-8,
    /// RFC 6026 Figures 3 and 5).
    pub fn timers_of(&self, state: State) -> &'static [Timer] {
        use State::*;
        use Timer::*;
        match (self, state) {
            (Transaction::ClientInvite(_), Calling) => &[A, B],
            (Transaction::ClientInvite(_), Completed) => &[D],
            (Transaction::ClientInvite(_), Accepted) => &[M],
            (Transaction::ClientNonInvite(_), Trying | Proceeding) => &[E, F],
            (Transaction::ClientNonInvite(_), Completed) => &[K],
            (Transaction::ServerInvite(_), Completed) => &[G, H],
            (Transaction::ServerInvite(_), Confirmed) => &[I],
            (Transaction::ServerInvite(_), Accepted) => &[L],
            (Transaction::ServerNonInvite(_), Completed) => &[J],
            _ => &[],
        }
    }
}
