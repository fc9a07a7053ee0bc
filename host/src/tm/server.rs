//! Server transactions: INVITE (RFC 3261 §17.2.1, with 100 Trying and the Accepted state of
//! RFC 6026 §7.1) and non-INVITE (§17.2.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::build::BuildError;
use super::timers::{Timer, TimerValues};
use super::txn::{class, Action, Actions, Core, Event, Outgoing, State};
use crate::sip::{build_reply, Message, Method};

/// An INVITE server transaction (RFC 3261 §17.2.1, Figure 7 as updated by RFC 6026 §7.1,
/// Figure 7 there): Proceeding (answering retransmissions with the last provisional
/// response) → Completed on a 300-699 from the TU (timers G, H) → Confirmed on the ACK
/// (timer I) → Terminated; or Accepted on a 2xx (timer L: retransmissions of the INVITE are
/// absorbed, the TU's 2xx retransmissions are sent, ACKs are passed up) → Terminated.
///
/// Once a final response is sent the machine keeps only what absorbing retransmissions needs
/// (the request goes; in Accepted the last response too), so that a transaction lingering
/// for timer L or I costs little memory.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    pub(crate) core: Core,
    /// The INVITE, until a final response is sent.
    request: Option<Box<Message>>,
    /// Whether the INVITE's top Via has an RFC 3261 branch (§17.2.3: then an ACK matched by
    /// key belongs here whatever its To tag).
    rfc3261: bool,
    /// The last response sent: the one a retransmitted INVITE gets, timer G resends (empty
    /// in Accepted, where nothing is resent).
    last: Bytes,
    /// The To tag of the final response sent, which the ACK of an RFC 2543 client must carry
    /// (§17.2.3).
    final_to_tag: Option<Box<str>>,
    /// Timer G's next interval.
    interval: Duration,
}

impl ServerInvite {
    /// Starts the transaction for a received INVITE (the driver passes it to the TU) and
    /// sends 100 Trying at once (§17.2.1: a proxy cannot know that the TU answers within
    /// 200 ms). The 100 copies the request's Via as received; `received`/`rport` are the
    /// driver's (it sends to the source address, §18.2.2).
    pub fn new(
        request: Message,
        reliable: bool,
        values: TimerValues,
    ) -> Result<(Self, Actions), BuildError> {
        if request.method() != Some(Method::Invite) {
            return Err(BuildError::NotARequest);
        }
        let trying = Bytes::from(build_reply(&request, 100, "Trying", "", &[], None));
        let t = ServerInvite {
            core: Core::new(State::Proceeding, reliable, values),
            rfc3261: request.top_via().is_ok_and(|v| v.is_rfc3261_branch()),
            request: Some(Box::new(request)),
            last: trying.clone(),
            final_to_tag: None,
            interval: values.t1(),
        };
        let mut acts = Actions::new();
        acts.push(Action::Send(trying));
        Ok((t, acts))
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// The INVITE that created the transaction, until a final response is sent.
    pub fn request(&self) -> Option<&Message> {
        self.request.as_deref()
    }

    /// Whether the ACK `ack` matched by key belongs to this transaction: always for an
    /// RFC 3261 branch; for an RFC 2543 client its To tag must be the one of the final
    /// response sent (§17.2.3), since the INVITE's To tag is not part of the key.
    pub fn ack_matches(&self, ack: &Message) -> bool {
        if self.rfc3261 {
            return true;
        }
        let tag = ack.to_tag_param().ok().flatten().flatten();
        tag == self.final_to_tag.as_deref()
    }

    /// Feeds one event: a retransmitted INVITE or an ACK (§17.2.3), a response from the TU,
    /// a timer, or a transport error.
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Actions {
        let mut acts = Actions::new();
        match ev {
            Event::Received(req) => self.on_request(req, now, &mut acts),
            Event::Respond(resp) => self.on_respond(resp, now, &mut acts),
            Event::Timer(timer) => self.on_timer(timer, now, &mut acts),
            Event::TransportError => match self.core.state {
                State::Proceeding | State::Completed => {
                    acts.push(Action::TransportError);
                    self.core.terminate(&mut acts);
                }
                // RFC 6026 §7.1: the TU is told; the transaction stays to absorb.
                State::Accepted => acts.push(Action::TransportError),
                _ => {}
            },
        }
        acts
    }

    fn on_request(&mut self, req: Box<Message>, now: Instant, acts: &mut Actions) {
        let c = &mut self.core;
        match (c.state, req.method()) {
            (State::Proceeding | State::Completed, Some(Method::Invite)) => {
                acts.push(Action::Send(self.last.clone()));
            }
            (State::Completed, Some(Method::Ack)) if self.ack_matches(&req) => {
                let c = &mut self.core;
                c.disarm(Timer::G, acts);
                c.disarm(Timer::H, acts);
                let i = c.values.t4_or_zero(c.reliable);
                c.linger(State::Confirmed, Timer::I, i, now, acts);
            }
            (State::Accepted, Some(Method::Ack)) => acts.push(Action::PassUp(req)),
            // Accepted absorbs INVITE retransmissions (RFC 6026 §7.1), Confirmed absorbs ACKs.
            _ => {}
        }
    }

    fn on_respond(&mut self, resp: Outgoing, now: Instant, acts: &mut Actions) {
        let code = resp.status;
        let c = &mut self.core;
        match (c.state, class(code)) {
            (State::Proceeding, 1) => {
                self.last = resp.bytes;
                acts.push(Action::Send(self.last.clone()));
            }
            (State::Proceeding, 2) => {
                acts.push(Action::Send(resp.bytes));
                c.state = State::Accepted;
                // Nothing is resent in Accepted (RFC 6026 §7.1): keep only the state.
                self.request = None;
                self.last = Bytes::new();
                let l = c.values.accepted();
                c.arm(Timer::L, now + l, acts);
            }
            // RFC 6026 §7.1: 2xx retransmissions from the TU (a proxy: from the UAS) go out.
            (State::Accepted, 2) => acts.push(Action::Send(resp.bytes)),
            (State::Proceeding, 3..=6) => {
                self.last = resp.bytes;
                self.final_to_tag = resp.to_tag;
                acts.push(Action::Send(self.last.clone()));
                c.state = State::Completed;
                self.request = None;
                if !c.reliable {
                    self.interval = c.values.t1();
                    c.arm(Timer::G, now + self.interval, acts);
                }
                let h = c.values.t1x64();
                c.arm(Timer::H, now + h, acts);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, acts: &mut Actions) {
        let c = &mut self.core;
        match (c.state, timer) {
            (State::Completed, Timer::G) if c.fired(Timer::G, now) => {
                self.interval = self.interval.saturating_mul(2).min(c.values.t2());
                c.retransmit(Timer::G, Timer::H, &self.last, self.interval, now, acts);
            }
            // §17.2.1: the ACK never came; the TU is told.
            (State::Completed, Timer::H) if c.fired(Timer::H, now) => c.time_out(acts),
            (State::Confirmed, Timer::I) | (State::Accepted, Timer::L) if c.fired(timer, now) => {
                c.terminate(acts);
            }
            _ => {}
        }
    }
}

/// A non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8): Trying (retransmissions
/// absorbed) → Proceeding on a 1xx from the TU → Completed on 200-699 (timer J; every
/// retransmission of the request gets the last response again) → Terminated. The request is
/// let go once the final response is sent.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    pub(crate) core: Core,
    request: Option<Box<Message>>,
    last: Option<Bytes>,
}

impl ServerNonInvite {
    /// Starts the transaction for a received non-INVITE, non-ACK request (the driver passes it
    /// to the TU).
    pub fn new(request: Message, reliable: bool, values: TimerValues) -> Result<Self, BuildError> {
        match request.method() {
            None | Some(Method::Invite | Method::Ack) => Err(BuildError::NotARequest),
            Some(_) => Ok(ServerNonInvite {
                core: Core::new(State::Trying, reliable, values),
                request: Some(Box::new(request)),
                last: None,
            }),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// The request that created the transaction, until a final response is sent.
    pub fn request(&self) -> Option<&Message> {
        self.request.as_deref()
    }

    /// Feeds one event, as [`ServerInvite::on_event`].
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Actions {
        let mut acts = Actions::new();
        let c = &mut self.core;
        match ev {
            Event::Received(req) if req.is_request() => {
                if let (State::Proceeding | State::Completed, Some(last)) = (c.state, &self.last) {
                    acts.push(Action::Send(last.clone()));
                }
            }
            Event::Respond(resp) => {
                if !matches!(c.state, State::Trying | State::Proceeding) {
                    return acts;
                }
                match class(resp.status) {
                    1 => {
                        let b = resp.bytes;
                        self.last = Some(b.clone());
                        acts.push(Action::Send(b));
                        c.state = State::Proceeding;
                    }
                    2..=6 => {
                        let b = resp.bytes;
                        self.last = Some(b.clone());
                        self.request = None;
                        acts.push(Action::Send(b));
                        let j = c.values.j(c.reliable);
                        c.linger(State::Completed, Timer::J, j, now, &mut acts);
                    }
                    _ => {}
                }
            }
            Event::Timer(Timer::J) if c.state == State::Completed && c.fired(Timer::J, now) => {
                c.terminate(&mut acts);
            }
            Event::TransportError if matches!(c.state, State::Proceeding | State::Completed) => {
                acts.push(Action::TransportError);
                c.terminate(&mut acts);
            }
            _ => {}
        }
        acts
    }
}
