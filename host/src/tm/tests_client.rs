//! Client transactions against RFC 3261 §17.1 (Figures 5, 6) and RFC 6026 §7.2, with the
//! RFC 3261 timer values (T1 = 500 ms, T2 = 4 s, T4 = 5 s).

use std::time::Instant;

use super::tests_util::{inv_resp, invite, ms, request, response, show};
use super::{Action, ClientInvite, ClientNonInvite, Event, State, Timer, TimerValues};

fn start_invite(reliable: bool) -> (ClientInvite, Instant, Vec<String>) {
    let t0 = Instant::now();
    let (t, acts) = ClientInvite::new(invite(), reliable, TimerValues::default(), t0).unwrap();
    let shown = show(&acts, t0);
    (t, t0, shown)
}

#[test]
fn invite_calling_retransmits_with_doubling_timer_a_until_b() {
    let (mut t, t0, acts) = start_invite(false);
    assert_eq!(acts, ["send INVITE", "arm A 500", "arm B 32000"]);
    assert_eq!(t.state(), State::Calling);
    // A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s: intervals 1, 2, 4, 8, 16, 32 s after.
    let mut at = 500;
    let mut interval = 500;
    for _ in 0..6 {
        let acts = t.on_event(Event::Timer(Timer::A), t0 + ms(at));
        interval *= 2;
        assert_eq!(
            show(&acts, t0),
            [
                "send INVITE".to_string(),
                format!("arm A {}", at + interval)
            ]
        );
        at += interval;
    }
    // B fires at 64*T1 = 32 s.
    let acts = t.on_event(Event::Timer(Timer::B), t0 + ms(32_000));
    assert_eq!(show(&acts, t0), ["timeout", "end"]);
    assert_eq!(t.state(), State::Terminated);
    // Terminated is final.
    assert!(t
        .on_event(Event::Timer(Timer::A), t0 + ms(63_500))
        .is_empty());
    assert!(t
        .on_event(Event::received(inv_resp(200)), t0 + ms(64_000))
        .is_empty());
}

#[test]
fn early_and_stale_timer_fires_are_ignored() {
    let (mut t, t0, _) = start_invite(false);
    assert!(t.on_event(Event::Timer(Timer::A), t0 + ms(499)).is_empty());
    assert!(t
        .on_event(Event::Timer(Timer::D), t0 + ms(40_000))
        .is_empty());
    assert_eq!(t.state(), State::Calling);
    // A late A after B's deadline is the timeout, not a retransmission.
    let acts = t.on_event(Event::Timer(Timer::A), t0 + ms(40_000));
    assert_eq!(show(&acts, t0), ["timeout", "end"]);
}

#[test]
fn invite_over_reliable_transport_has_no_timer_a_and_no_d() {
    let (mut t, t0, acts) = start_invite(true);
    assert_eq!(acts, ["send INVITE", "arm B 32000"]);
    let acts = t.on_event(Event::received(inv_resp(486)), t0 + ms(100));
    assert_eq!(show(&acts, t0), ["disarm B", "send ACK", "up 486", "end"]);
    assert_eq!(t.state(), State::Terminated);
}

#[test]
fn invite_provisional_then_non_2xx_acks_hop_by_hop() {
    let (mut t, t0, _) = start_invite(false);
    let acts = t.on_event(Event::received(inv_resp(100)), t0 + ms(200));
    assert_eq!(show(&acts, t0), ["disarm A", "disarm B", "up 100"]);
    assert_eq!(t.state(), State::Proceeding);
    let acts = t.on_event(Event::received(inv_resp(180)), t0 + ms(300));
    assert_eq!(show(&acts, t0), ["up 180"]);
    // Proceeding: no retransmissions, no timeout of its own (the proxy's fr_inv_timeout).
    assert!(t.on_event(Event::Timer(Timer::A), t0 + ms(700)).is_empty());
    assert!(t
        .on_event(Event::Timer(Timer::B), t0 + ms(40_000))
        .is_empty());
    assert!(t.request().is_some());
    let acts = t.on_event(Event::received(inv_resp(486)), t0 + ms(1_000));
    assert_eq!(show(&acts, t0), ["send ACK", "up 486", "arm D 33000"]);
    assert_eq!(t.state(), State::Completed);
    // The ACK is built; the request is let go (the ACK below is resent without it).
    assert!(t.request().is_none());
    // The ACK (§17.1.1.3): same branch, To tag of the response, CSeq ACK.
    let Action::Send(ack) = &acts[0] else {
        unreachable!()
    };
    let ack = std::str::from_utf8(ack).unwrap();
    assert!(ack.contains("branch=z9hG4bK776asdhds\r\n"), "{ack}");
    assert!(ack.contains(";tag=a6c85cf\r\n") && ack.contains("CSeq: 314159 ACK\r\n"));
    // A retransmitted final response gets the same ACK, and is not passed up again.
    let again = t.on_event(Event::received(inv_resp(486)), t0 + ms(1_500));
    assert_eq!(show(&again, t0), ["send ACK"]);
    assert!(matches!((&again[0], &acts[0]), (Action::Send(a), Action::Send(b)) if a == b));
    // Provisional and 2xx responses are absorbed in Completed.
    assert!(t
        .on_event(Event::received(inv_resp(180)), t0 + ms(1_600))
        .is_empty());
    // Timer D (32 s, at least) ends it.
    assert!(t
        .on_event(Event::Timer(Timer::D), t0 + ms(32_999))
        .is_empty());
    let acts = t.on_event(Event::Timer(Timer::D), t0 + ms(33_000));
    assert_eq!(show(&acts, t0), ["end"]);
}

#[test]
fn invite_2xx_enters_accepted_and_passes_retransmissions_up() {
    let (mut t, t0, _) = start_invite(false);
    let acts = t.on_event(Event::received(inv_resp(200)), t0 + ms(800));
    assert_eq!(
        show(&acts, t0),
        ["disarm A", "disarm B", "up 200", "arm M 32800"]
    );
    assert_eq!(t.state(), State::Accepted);
    assert!(t.request().is_none());
    // RFC 6026 §7.2: every 2xx (retransmissions, other forks) goes up; no ACK from here.
    let acts = t.on_event(Event::received(inv_resp(200)), t0 + ms(1_800));
    assert_eq!(show(&acts, t0), ["up 200"]);
    assert!(t
        .on_event(Event::received(inv_resp(486)), t0 + ms(1_900))
        .is_empty());
    let acts = t.on_event(Event::Timer(Timer::M), t0 + ms(32_800));
    assert_eq!(show(&acts, t0), ["end"]);
}

#[test]
fn invite_transport_error_in_calling_is_reported() {
    let (mut t, t0, _) = start_invite(false);
    let acts = t.on_event(Event::TransportError, t0 + ms(1));
    assert_eq!(show(&acts, t0), ["transport", "end"]);
}

#[test]
fn constructors_refuse_the_wrong_method() {
    let t0 = Instant::now();
    let v = TimerValues::default();
    assert!(ClientInvite::new(request("OPTIONS", "z9hG4bK1"), false, v, t0).is_err());
    assert!(ClientNonInvite::new(invite(), false, v, t0).is_err());
    assert!(ClientNonInvite::new(request("ACK", "z9hG4bK1"), false, v, t0).is_err());
    assert!(ClientNonInvite::new(inv_resp(200), false, v, t0).is_err());
}

fn start_options(reliable: bool) -> (ClientNonInvite, Instant, Vec<String>) {
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bKopt1");
    let (t, acts) = ClientNonInvite::new(req, reliable, TimerValues::default(), t0).unwrap();
    let shown = show(&acts, t0);
    (t, t0, shown)
}

#[test]
fn non_invite_timer_e_doubles_up_to_t2_then_f() {
    let (mut t, t0, acts) = start_options(false);
    assert_eq!(acts, ["send OPTIONS", "arm E 500", "arm F 32000"]);
    assert_eq!(t.state(), State::Trying);
    // Intervals 1, 2, 4, 4, 4... s (T2 = 4 s).
    let mut at = 500;
    for interval in [1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000] {
        let acts = t.on_event(Event::Timer(Timer::E), t0 + ms(at));
        let next = at + interval;
        assert_eq!(
            show(&acts, t0),
            ["send OPTIONS".to_string(), format!("arm E {next}")]
        );
        at = next;
    }
    let acts = t.on_event(Event::Timer(Timer::F), t0 + ms(32_000));
    assert_eq!(show(&acts, t0), ["timeout", "end"]);
}

#[test]
fn non_invite_proceeding_retransmits_at_t2() {
    let (mut t, t0, _) = start_options(false);
    let resp = |c| response(c, "OPTIONS", "z9hG4bKopt1");
    let acts = t.on_event(Event::received(resp(180)), t0 + ms(100));
    assert_eq!(show(&acts, t0), ["up 180"]);
    assert_eq!(t.state(), State::Proceeding);
    let acts = t.on_event(Event::Timer(Timer::E), t0 + ms(500));
    assert_eq!(show(&acts, t0), ["send OPTIONS", "arm E 4500"]);
    let acts = t.on_event(Event::received(resp(200)), t0 + ms(600));
    assert_eq!(
        show(&acts, t0),
        ["disarm E", "disarm F", "up 200", "arm K 5600"]
    );
    assert_eq!(t.state(), State::Completed);
    assert!(t.request().is_none());
    // Completed absorbs retransmitted responses; K = T4 ends it.
    assert!(t
        .on_event(Event::received(resp(200)), t0 + ms(700))
        .is_empty());
    assert!(t
        .on_event(Event::Timer(Timer::E), t0 + ms(4_500))
        .is_empty());
    let acts = t.on_event(Event::Timer(Timer::K), t0 + ms(5_600));
    assert_eq!(show(&acts, t0), ["end"]);
}

#[test]
fn non_invite_reliable_has_no_e_and_k_zero() {
    let (mut t, t0, acts) = start_options(true);
    assert_eq!(acts, ["send OPTIONS", "arm F 32000"]);
    let acts = t.on_event(
        Event::received(response(404, "OPTIONS", "z9hG4bKopt1")),
        t0 + ms(50),
    );
    assert_eq!(show(&acts, t0), ["disarm F", "up 404", "end"]);
}

#[test]
fn settable_t1_changes_every_derived_timer() {
    let t0 = Instant::now();
    let v = TimerValues::new(ms(1_000), ms(8_000), ms(10_000)).unwrap();
    let (mut t, acts) = ClientNonInvite::new(request("BYE", "z9hG4bKb"), false, v, t0).unwrap();
    assert_eq!(show(&acts, t0), ["send BYE", "arm E 1000", "arm F 64000"]);
    let acts = t.on_event(
        Event::received(response(200, "BYE", "z9hG4bKb")),
        t0 + ms(10),
    );
    assert_eq!(
        show(&acts, t0),
        ["disarm E", "disarm F", "up 200", "arm K 10010"]
    );
}
