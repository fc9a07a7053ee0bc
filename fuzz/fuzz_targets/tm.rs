//! The transaction layer (RFC 3261 §17, RFC 6026) on arbitrary sequences of events. The input
//! is a program: the first byte picks the machine (INVITE or non-INVITE, client or server, or
//! a proxy response context with 1-4 branches), the transport (reliable or not) and T1; each
//! following pair of bytes is one event: a response or request from a small set of
//! well-formed messages, a response from the TU, a named timer at the current instant, the
//! earliest armed timer at its deadline, time passing, a transport error. So the fuzzer
//! explores states and timer orders rather than the SIP parser. Time only moves forward.
//!
//! Invariants, checked after every event:
//! * no panic;
//! * Terminated is final: once there, every event yields no action;
//! * `Terminated` is the last action of the event that terminates, and only of that one;
//! * timers are armed only in states that use them (RFC 3261 Figures 5-8, RFC 6026), and a
//!   [`TimerQueue`] kept from the Arm/Disarm/Terminated actions alone (as a driver keeps it)
//!   agrees with the machine about the next deadline;
//! * retransmissions stay bounded (at most 64: each interval is at least T1 and the
//!   transaction times out at 64*T1);
//! * a proxy context sends upstream at most one final non-2xx response, never changes its
//!   first final code, arms timers only for pending branches, and is done once it sent a
//!   final response and every branch ended.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipcore::sip::Message;
use sipcore::tm::{
    Action, ClientInvite, ClientNonInvite, Event, Outgoing, ProxyAction, ProxyConfig, ProxyContext,
    ProxyEvent, ProxyTimer, ServerInvite, ServerNonInvite, State, Timer, TimerQueue, TimerValues,
    Transaction,
};
use std::time::{Duration, Instant};

const CODES: [u16; 16] = [
    100, 180, 183, 200, 202, 299, 302, 401, 404, 407, 408, 486, 487, 500, 503, 603,
];

fn msg(s: String) -> Message {
    Message::parse(Bytes::from(s)).expect("fuzz messages are well-formed")
}

fn request(method: &str, to_tag: &str) -> Message {
    let tag = if to_tag.is_empty() {
        String::new()
    } else {
        format!(";tag={to_tag}")
    };
    msg(format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKfuzz\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.com>{tag}\r\n\
         From: <sip:a@example.com>;tag=1\r\nCall-ID: fuzz\r\nCSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn response(code: u16, method: &str) -> Message {
    let tag = if code > 100 { ";tag=t1" } else { "" };
    msg(format!(
        "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bKfuzz\r\n\
         To: <sip:bob@example.com>{tag}\r\nFrom: <sip:a@example.com>;tag=1\r\n\
         Call-ID: fuzz\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, ops)) = data.split_first() else {
        return;
    };
    let t1 = [500u64, 1, 100, 2000][usize::from(head >> 4 & 3)];
    let values = TimerValues::new(
        Duration::from_millis(t1),
        Duration::from_millis(t1.max(4000)),
        Duration::from_millis(5000),
    )
    .unwrap();
    let reliable = head & 8 != 0;
    let t0 = Instant::now();
    if head & 7 >= 4 {
        proxy(head, ops, t0);
        return;
    }
    let invite = head & 1 == 0;
    let method = if invite { "INVITE" } else { "OPTIONS" };
    let mut queue: TimerQueue<u8, Timer> = TimerQueue::new();
    let (mut txn, first) = match head & 7 {
        0 | 1 if invite => {
            let (t, a) = ClientInvite::new(request(method, ""), reliable, values, t0).unwrap();
            (Transaction::ClientInvite(t), a)
        }
        0 => {
            let (t, a) = ClientNonInvite::new(request(method, ""), reliable, values, t0).unwrap();
            (Transaction::ClientNonInvite(t), a)
        }
        // As the relay starts one: from the bytes it built, not parsed again.
        1 => {
            let bytes = request(method, "").wire_bytes();
            let (t, a) = ClientNonInvite::sending(bytes, reliable, values, t0);
            (Transaction::ClientNonInvite(t), a)
        }
        _ if invite => {
            let (t, a) = ServerInvite::new(request(method, ""), reliable, values).unwrap();
            (Transaction::ServerInvite(t), a)
        }
        _ => {
            let t = ServerNonInvite::new(request(method, ""), reliable, values).unwrap();
            (Transaction::ServerNonInvite(t), Default::default())
        }
    };
    let mut now = t0;
    let mut terminated = false;
    apply(&first, &mut queue, now, &mut terminated);
    check(&txn, &mut queue, terminated);
    for op in ops.chunks_exact(2) {
        let (kind, arg) = (op[0], op[1]);
        let code = CODES[usize::from(arg) % CODES.len()];
        let evs = match kind % 9 {
            0 => vec![Event::received(response(code, method))],
            1 => vec![Event::received(response(
                code,
                if invite { "OPTIONS" } else { "INVITE" },
            ))],
            2 => vec![Event::received(request(method, ""))],
            3 => vec![Event::received(request(
                "ACK",
                if arg & 1 == 0 { "t1" } else { "zz" },
            ))],
            4 => Outgoing::of(&response(code, method))
                .map(Event::Respond)
                .into_iter()
                .collect(),
            5 => vec![Event::Timer(
                Timer::ALL[usize::from(arg) % Timer::ALL.len()],
            )],
            6 => {
                // Time jumps to the earliest armed deadline, and every timer due then fires
                // in order (what a driver does).
                let Some(at) = queue.next_deadline() else {
                    continue;
                };
                now = now.max(at);
                queue
                    .expire(now)
                    .into_iter()
                    .map(|(_, t)| Event::Timer(t))
                    .collect()
            }
            7 => {
                now += Duration::from_millis(u64::from(arg) * 37);
                continue;
            }
            _ => vec![Event::TransportError],
        };
        for ev in evs {
            let acts = txn.on_event(ev, now);
            if terminated {
                assert!(acts.is_empty(), "event after Terminated acted: {acts:?}");
            }
            apply(&acts, &mut queue, now, &mut terminated);
        }
        check(&txn, &mut queue, terminated);
    }
});

/// Keeps `queue` as a driver would, from the actions alone.
fn apply(acts: &[Action], queue: &mut TimerQueue<u8, Timer>, now: Instant, terminated: &mut bool) {
    for (i, a) in acts.iter().enumerate() {
        match a {
            Action::Arm(t, at) => {
                assert!(*at >= now, "timer {t:?} armed in the past");
                queue.arm(0, *t, *at);
            }
            Action::Disarm(t) => {
                queue.disarm(&0, *t);
            }
            Action::Terminated => {
                assert_eq!(i + 1, acts.len(), "Terminated is not the last action");
                assert!(!*terminated, "terminated twice");
                *terminated = true;
                queue.disarm_all(&0);
            }
            _ => {}
        }
    }
}

fn check(txn: &Transaction, queue: &mut TimerQueue<u8, Timer>, terminated: bool) {
    let state = txn.state();
    assert_eq!(terminated, state == State::Terminated);
    let allowed = txn.timers_of(state);
    let armed = txn.armed();
    for (t, _) in &armed {
        assert!(allowed.contains(t), "{t:?} armed in {state:?}");
    }
    let earliest = armed.iter().map(|&(_, at)| at).min();
    assert_eq!(queue.next_deadline(), earliest, "driver queue disagrees");
    assert_eq!(queue.len(), armed.len());
    assert!(
        txn.retransmits() <= 64,
        "{} retransmissions",
        txn.retransmits()
    );
}

fn proxy(head: u8, ops: &[u8], t0: Instant) {
    let invite = head & 1 == 0;
    let n = usize::from(head >> 6) + 1;
    let config = ProxyConfig {
        fr_timeout: Duration::from_secs(30),
        fr_inv_timeout: Duration::from_secs(120),
        fr_inv_code: if head & 2 == 0 { 408 } else { 480 },
    };
    let method = if invite { "INVITE" } else { "MESSAGE" };
    let mut ctx = ProxyContext::new(invite, config);
    // A failure route armed (OpenSIPS t_on_failure): the ops may add branches in it and
    // resume.
    ctx.arm_failure(head & 16 != 0);
    let mut queue: TimerQueue<u8, ProxyTimer> = TimerQueue::new();
    let mut now = t0;
    let mut ended = vec![false; n];
    let mut finals_up = 0usize;
    let mut first_final = None;
    let mut feed =
        |acts: Vec<ProxyAction>, ctx: &ProxyContext, queue: &mut TimerQueue<u8, ProxyTimer>| {
            for a in &acts {
                match a {
                    ProxyAction::Arm(t, at) => queue.arm(0, *t, *at),
                    ProxyAction::Disarm(t) => {
                        queue.disarm(&0, *t);
                    }
                    ProxyAction::Forward { response, .. } => {
                        let c = response.status().unwrap();
                        if c >= 300 {
                            finals_up += 1;
                        }
                        if c >= 200 && first_final.is_none() {
                            first_final = Some(c);
                        }
                    }
                    ProxyAction::Reply(c) => {
                        assert!(*c >= 300);
                        finals_up += 1;
                        first_final.get_or_insert(*c);
                    }
                    ProxyAction::Cancel(b) => assert!(invite && *b < ctx.branch_count()),
                    ProxyAction::Failure(c) => {
                        assert!(*c >= 300, "failure route for {c}");
                        assert!(ctx.in_failure() && ctx.final_sent().is_none());
                    }
                }
            }
            assert!(finals_up <= 1, "two final non-2xx responses upstream");
            assert_eq!(ctx.final_sent(), first_final);
            assert_eq!(queue.len(), ctx.armed().len());
        };
    for _ in 0..n {
        let (_, acts) = ctx.add_branch(now).unwrap();
        feed(acts, &ctx, &mut queue);
    }
    let acts = if head & 32 == 0 {
        ctx.close()
    } else {
        Vec::new()
    };
    feed(acts, &ctx, &mut queue);
    for op in ops.chunks_exact(2) {
        let (kind, arg) = (op[0], op[1]);
        let b = usize::from(arg >> 4) % ctx.branch_count();
        let code = CODES[usize::from(arg) % CODES.len()];
        let acts = match kind % 10 {
            0 | 1 => ctx.on_event(
                ProxyEvent::Response(b, Box::new(response(code, method))),
                now,
            ),
            2 => {
                let Some(at) = queue.next_deadline() else {
                    continue;
                };
                now = now.max(at);
                let mut acts = Vec::new();
                for (_, t) in queue.expire(now) {
                    acts.extend(ctx.on_event(ProxyEvent::Timer(t), now));
                }
                acts
            }
            3 => ctx.on_event(ProxyEvent::BranchTimeout(b), now),
            4 => ctx.on_event(ProxyEvent::BranchTransportError(b), now),
            5 => ctx.on_event(ProxyEvent::Cancel, now),
            6 => ctx.close(),
            8 if ctx.in_failure() => match ctx.add_branch(now) {
                Ok((nb, acts)) => {
                    assert_eq!(nb + 1, ctx.branch_count());
                    ended.push(false);
                    acts
                }
                Err(_) => continue,
            },
            9 => {
                let mut acts = Vec::new();
                if arg & 1 == 1 && ctx.in_failure() {
                    // t_reply() in the failure route: the driver sends it (counted as a
                    // reply upstream), the context must send nothing else.
                    let c = code.max(300);
                    ctx.replied(c);
                    acts.push(ProxyAction::Reply(c));
                }
                acts.extend(ctx.resume());
                acts
            }
            _ => {
                now += Duration::from_secs(u64::from(arg));
                continue;
            }
        };
        feed(acts, &ctx, &mut queue);
        for (i, e) in ended.iter_mut().enumerate() {
            // A branch with a final code has no timer left.
            let armed = ctx
                .armed()
                .iter()
                .any(|(t, _)| matches!(t, ProxyTimer::Fr(x) | ProxyTimer::FrInv(x) if *x == i));
            if *e {
                assert!(!armed, "timer armed for an ended branch");
            }
            *e |= !armed;
        }
    }
}
