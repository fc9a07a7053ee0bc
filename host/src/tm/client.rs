//! Client transactions: INVITE (RFC 3261 §17.1.1, with the Accepted state of RFC 6026 §7.2)
//! and non-INVITE (§17.1.2).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::build::{build_ack, BuildError};
use super::timers::{Timer, TimerValues};
use super::txn::{bytes_of, class, Action, Actions, Core, Event, State};
use crate::sip::{Message, Method};

/// Checks that `req` is a request of the kind a machine takes and, for an INVITE, that an ACK
/// or CANCEL can later be built from it.
fn check(req: &Message, invite: bool) -> Result<(), BuildError> {
    let method = req.method().ok_or(BuildError::NotARequest)?;
    if (method == Method::Invite) != invite || method == Method::Ack {
        return Err(BuildError::NotARequest);
    }
    // Only an INVITE has an ACK (§17.1.1.3) or a CANCEL (§9.1) built from it later.
    if invite {
        super::build::check_copyable(req)?;
    }
    Ok(())
}

/// An INVITE client transaction (RFC 3261 §17.1.1.2, Figure 5 as updated by RFC 6026 §7.2,
/// Figure 5 there): Calling (timers A, B) → Proceeding on a 1xx → Completed (timer D,
/// absorbing retransmitted final responses with the same ACK) on 300-699, or Accepted
/// (timer M, passing every 2xx up) on a 2xx → Terminated. The request and its bytes are let go
/// once a final response arrives (the ACK of a non-2xx is built first).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    pub(crate) core: Core,
    /// The request, until a final response arrives.
    request: Option<Box<Message>>,
    /// The request's bytes, sent again on timer A (empty once a final response arrived).
    bytes: Bytes,
    /// Timer A's next interval.
    interval: Duration,
    /// The ACK sent for the non-2xx final response, sent again for each retransmission of it.
    ack: Option<Bytes>,
}

impl ClientInvite {
    /// Starts the transaction for the INVITE `request` (as it goes on the wire, with this
    /// element's Via on top): sends it, arms timer A at T1 (unreliable transports only) and
    /// timer B at 64*T1.
    pub fn new(
        request: Message,
        reliable: bool,
        values: TimerValues,
        now: Instant,
    ) -> Result<(Self, Actions), BuildError> {
        check(&request, true)?;
        let bytes = bytes_of(&request);
        let mut t = ClientInvite {
            core: Core::new(State::Calling, reliable, values),
            request: Some(Box::new(request)),
            bytes: bytes.clone(),
            interval: values.t1(),
            ack: None,
        };
        let acts = t.core.start_client(Timer::A, Timer::B, bytes, now);
        Ok((t, acts))
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// The request this transaction sends, until a final response arrives.
    pub fn request(&self) -> Option<&Message> {
        self.request.as_deref()
    }

    /// Feeds one event: a response matched to this transaction (§17.1.3), a timer, or a
    /// transport error; [`Event::Respond`] is ignored.
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Actions {
        let mut acts = Actions::new();
        match ev {
            Event::Received(resp) => self.on_response(resp, now, &mut acts),
            Event::Timer(timer) => self.on_timer(timer, now, &mut acts),
            Event::TransportError => {
                if self.core.state == State::Calling {
                    acts.push(Action::TransportError);
                    self.core.terminate(&mut acts);
                }
            }
            Event::Respond(_) => {}
        }
        acts
    }

    fn on_response(&mut self, resp: Box<Message>, now: Instant, acts: &mut Actions) {
        let Some(code) = resp.status() else {
            return;
        };
        let c = &mut self.core;
        match (c.state, class(code)) {
            (State::Calling | State::Proceeding, 1) => {
                // §17.1.1.2: no more retransmissions; timer B only bounds Calling.
                c.disarm(Timer::A, acts);
                c.disarm(Timer::B, acts);
                c.state = State::Proceeding;
                acts.push(Action::PassUp(resp));
            }
            (State::Calling | State::Proceeding, 2) => {
                // RFC 6026 §7.2: Accepted; the TU sends the ACK for a 2xx itself.
                c.disarm(Timer::A, acts);
                c.disarm(Timer::B, acts);
                acts.push(Action::PassUp(resp));
                let m = c.values.accepted();
                c.state = State::Accepted;
                // A final response: nothing is sent again but an ACK, so the request goes.
                self.request = None;
                self.bytes = Bytes::new();
                c.arm(Timer::M, now + m, acts);
            }
            (State::Calling | State::Proceeding, 3..=6) => {
                c.disarm(Timer::A, acts);
                c.disarm(Timer::B, acts);
                self.ack = self
                    .request
                    .as_deref()
                    .and_then(|req| build_ack(req, &resp).ok())
                    .map(Bytes::from);
                self.request = None;
                self.bytes = Bytes::new();
                if let Some(ack) = &self.ack {
                    acts.push(Action::Send(ack.clone()));
                }
                acts.push(Action::PassUp(resp));
                let d = c.values.d(c.reliable);
                c.linger(State::Completed, Timer::D, d, now, acts);
            }
            (State::Completed, 3..=6) => {
                // A retransmitted final response: ACK again, not passed up.
                if let Some(ack) = &self.ack {
                    acts.push(Action::Send(ack.clone()));
                }
            }
            (State::Accepted, 2) => acts.push(Action::PassUp(resp)),
            _ => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, acts: &mut Actions) {
        let c = &mut self.core;
        match (c.state, timer) {
            (State::Calling, Timer::A) if c.fired(Timer::A, now) => {
                self.interval = self.interval.saturating_mul(2);
                c.retransmit(Timer::A, Timer::B, &self.bytes, self.interval, now, acts);
            }
            (State::Calling, Timer::B) if c.fired(Timer::B, now) => c.time_out(acts),
            (State::Completed, Timer::D) | (State::Accepted, Timer::M) if c.fired(timer, now) => {
                c.terminate(acts);
            }
            _ => {}
        }
    }
}

/// A non-INVITE client transaction (RFC 3261 §17.1.2.2, Figure 6): Trying (timers E, F) →
/// Proceeding on a 1xx (E now at T2) → Completed on 200-699 (timer K, absorbing
/// retransmitted responses) → Terminated. The request and its bytes are let go once a final
/// response arrives.
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    pub(crate) core: Core,
    request: Option<Box<Message>>,
    bytes: Bytes,
    /// Timer E's next interval.
    interval: Duration,
}

impl ClientNonInvite {
    /// Starts the transaction for the non-INVITE, non-ACK `request`: sends it, arms timer E at
    /// T1 (unreliable transports only) and timer F at 64*T1.
    pub fn new(
        request: Message,
        reliable: bool,
        values: TimerValues,
        now: Instant,
    ) -> Result<(Self, Actions), BuildError> {
        check(&request, false)?;
        let (mut t, acts) = Self::sending(bytes_of(&request), reliable, values, now);
        t.request = Some(Box::new(request));
        Ok((t, acts))
    }

    /// As [`ClientNonInvite::new`] for a request the caller built itself and knows to be a
    /// non-INVITE, non-ACK request, given as its `bytes` (not parsed again: nothing is built
    /// from a non-INVITE request later, §9.1, §17.1.1.3); [`ClientNonInvite::request`] is
    /// then `None`.
    pub fn sending(
        bytes: Bytes,
        reliable: bool,
        values: TimerValues,
        now: Instant,
    ) -> (Self, Actions) {
        let mut t = ClientNonInvite {
            core: Core::new(State::Trying, reliable, values),
            request: None,
            bytes: bytes.clone(),
            interval: values.t1(),
        };
        let acts = t.core.start_client(Timer::E, Timer::F, bytes, now);
        (t, acts)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// The request this transaction sends, until a final response arrives.
    pub fn request(&self) -> Option<&Message> {
        self.request.as_deref()
    }

    /// Feeds one event, as [`ClientInvite::on_event`].
    pub fn on_event(&mut self, ev: Event, now: Instant) -> Actions {
        let mut acts = Actions::new();
        let c = &mut self.core;
        let pending = matches!(c.state, State::Trying | State::Proceeding);
        match ev {
            Event::Received(resp) => {
                let Some(code) = resp.status() else {
                    return acts;
                };
                match class(code) {
                    1 if pending => {
                        c.state = State::Proceeding;
                        acts.push(Action::PassUp(resp));
                    }
                    2..=6 if pending => {
                        c.disarm(Timer::E, &mut acts);
                        c.disarm(Timer::F, &mut acts);
                        acts.push(Action::PassUp(resp));
                        self.request = None;
                        self.bytes = Bytes::new();
                        let k = c.values.t4_or_zero(c.reliable);
                        c.linger(State::Completed, Timer::K, k, now, &mut acts);
                    }
                    _ => {}
                }
            }
            Event::Timer(Timer::E) if pending && c.fired(Timer::E, now) => {
                // §17.1.2.2: doubling up to T2 in Trying, T2 in Proceeding.
                self.interval = if c.state == State::Trying {
                    self.interval.saturating_mul(2).min(c.values.t2())
                } else {
                    c.values.t2()
                };
                c.retransmit(
                    Timer::E,
                    Timer::F,
                    &self.bytes,
                    self.interval,
                    now,
                    &mut acts,
                );
            }
            Event::Timer(Timer::F) if pending && c.fired(Timer::F, now) => c.time_out(&mut acts),
            Event::Timer(Timer::K) if c.state == State::Completed && c.fired(Timer::K, now) => {
                c.terminate(&mut acts);
            }
            Event::TransportError if pending => {
                acts.push(Action::TransportError);
                c.terminate(&mut acts);
            }
            _ => {}
        }
        acts
    }
}
