//! Server transactions against RFC 3261 §17.2 (Figures 7, 8) and RFC 6026 §7.1, with the
//! RFC 3261 timer values.

use std::time::Instant;

use super::tests_util::{ack, inv_resp, invite, ms, msg, out, request, response, show};
use super::{Action, Event, ServerInvite, ServerNonInvite, State, Timer, TimerValues};

fn start(reliable: bool) -> (ServerInvite, Instant, Vec<String>) {
    let t0 = Instant::now();
    let (t, acts) = ServerInvite::new(invite(), reliable, TimerValues::default()).unwrap();
    let shown = show(&acts, t0);
    (t, t0, shown)
}

#[test]
fn invite_sends_100_trying_and_answers_retransmissions_with_it() {
    let (mut t, t0, acts) = start(false);
    assert_eq!(acts, ["send 100"]);
    assert_eq!(t.state(), State::Proceeding);
    let acts = t.on_event(Event::received(invite()), t0 + ms(500));
    assert_eq!(show(&acts, t0), ["send 100"]);
    let Action::Send(trying) = &acts[0] else {
        unreachable!()
    };
    let trying = std::str::from_utf8(trying).unwrap();
    // §8.2.6.1: no To tag on a 100; the Via as received.
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"));
    assert!(trying.contains("To: Bob <sip:bob@biloxi.example.com>\r\n"));
    // A later provisional response replaces it for retransmissions.
    let acts = t.on_event(Event::Respond(out(inv_resp(180))), t0 + ms(600));
    assert_eq!(show(&acts, t0), ["send 180"]);
    let acts = t.on_event(Event::received(invite()), t0 + ms(1_000));
    assert_eq!(show(&acts, t0), ["send 180"]);
}

#[test]
fn invite_non_2xx_retransmits_on_g_until_ack_then_i() {
    let (mut t, t0, _) = start(false);
    assert!(t.request().is_some());
    let acts = t.on_event(Event::Respond(out(inv_resp(486))), t0);
    assert_eq!(show(&acts, t0), ["send 486", "arm G 500", "arm H 32000"]);
    assert_eq!(t.state(), State::Completed);
    // Lingering, it keeps what it resends and matches, not the request.
    assert!(t.request().is_none());
    // G: 0.5, 1, 2, 4, 4 s (doubling up to T2).
    let mut at = 500;
    for interval in [1000, 2000, 4000, 4000, 4000] {
        let acts = t.on_event(Event::Timer(Timer::G), t0 + ms(at));
        assert_eq!(
            show(&acts, t0),
            ["send 486".to_string(), format!("arm G {}", at + interval)]
        );
        at += interval;
    }
    // A retransmitted INVITE gets the final response again.
    let acts = t.on_event(Event::received(invite()), t0 + ms(12_000));
    assert_eq!(show(&acts, t0), ["send 486"]);
    // The ACK (same branch: matched to this transaction) confirms it.
    let acts = t.on_event(Event::received(ack("a6c85cf")), t0 + ms(12_100));
    assert_eq!(show(&acts, t0), ["disarm G", "disarm H", "arm I 17100"]);
    assert_eq!(t.state(), State::Confirmed);
    // Confirmed absorbs ACK retransmissions and INVITEs.
    assert!(t
        .on_event(Event::received(ack("a6c85cf")), t0 + ms(12_200))
        .is_empty());
    assert!(t
        .on_event(Event::received(invite()), t0 + ms(12_300))
        .is_empty());
    assert!(t
        .on_event(Event::Timer(Timer::G), t0 + ms(15_500))
        .is_empty());
    let acts = t.on_event(Event::Timer(Timer::I), t0 + ms(17_100));
    assert_eq!(show(&acts, t0), ["end"]);
    assert!(t
        .on_event(Event::received(invite()), t0 + ms(17_200))
        .is_empty());
}

#[test]
fn invite_h_fires_without_ack() {
    let (mut t, t0, _) = start(false);
    t.on_event(Event::Respond(out(inv_resp(404))), t0);
    let acts = t.on_event(Event::Timer(Timer::H), t0 + ms(32_000));
    assert_eq!(show(&acts, t0), ["timeout", "end"]);
    assert_eq!(t.state(), State::Terminated);
}

#[test]
fn invite_over_reliable_transport_no_g_and_i_zero() {
    let (mut t, t0, _) = start(true);
    let acts = t.on_event(Event::Respond(out(inv_resp(603))), t0);
    assert_eq!(show(&acts, t0), ["send 603", "arm H 32000"]);
    let acts = t.on_event(Event::received(ack("a6c85cf")), t0 + ms(50));
    assert_eq!(show(&acts, t0), ["disarm H", "end"]);
}

#[test]
fn invite_2xx_accepted_state_rfc6026() {
    let (mut t, t0, _) = start(false);
    let acts = t.on_event(Event::Respond(out(inv_resp(200))), t0 + ms(100));
    assert_eq!(show(&acts, t0), ["send 200", "arm L 32100"]);
    assert_eq!(t.state(), State::Accepted);
    assert!(t.request().is_none());
    // The UAS retransmits its 2xx through the proxy: it passes.
    let acts = t.on_event(Event::Respond(out(inv_resp(200))), t0 + ms(600));
    assert_eq!(show(&acts, t0), ["send 200"]);
    // INVITE retransmissions are absorbed, not answered.
    assert!(t
        .on_event(Event::received(invite()), t0 + ms(700))
        .is_empty());
    // RFC 6026 §7.1: an ACK matched to the transaction in Accepted goes to the TU (which
    // forwards it statelessly) and does not end it. (An ACK for a 2xx normally carries a new
    // branch, matches no transaction and is forwarded statelessly by the core.)
    let acts = t.on_event(Event::received(ack("a6c85cf")), t0 + ms(800));
    assert_eq!(show(&acts, t0), ["up ACK"]);
    assert_eq!(t.state(), State::Accepted);
    // A non-2xx after a 2xx is not sent.
    assert!(t
        .on_event(Event::Respond(out(inv_resp(486))), t0 + ms(900))
        .is_empty());
    // Transport errors are reported; the transaction stays.
    let acts = t.on_event(Event::TransportError, t0 + ms(1_000));
    assert_eq!(show(&acts, t0), ["transport"]);
    let acts = t.on_event(Event::Timer(Timer::L), t0 + ms(32_100));
    assert_eq!(show(&acts, t0), ["end"]);
}

#[test]
fn rfc2543_ack_must_carry_the_final_responses_to_tag() {
    let t0 = Instant::now();
    let old = |m: &str| {
        msg(&format!(
            "{m} sip:bob@biloxi.example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.example.com\r\n\
             To: <sip:bob@biloxi.example.com>{}\r\n\
             From: <sip:alice@atlanta.example.com>;tag=1\r\n\
             Call-ID: c2543\r\nCSeq: 5 {m}\r\nContent-Length: 0\r\n\r\n",
            if m == "ACK" { ";tag=other" } else { "" }
        ))
    };
    let (mut t, _) = ServerInvite::new(old("INVITE"), false, TimerValues::default()).unwrap();
    t.on_event(Event::Respond(out(inv_resp(486))), t0);
    // The request is gone; the match uses what was kept of it (no RFC 3261 branch).
    assert!(t.request().is_none());
    // The ACK's To tag is not the 486's: not ours, nothing happens.
    assert!(!t.ack_matches(&old("ACK")));
    assert!(t
        .on_event(Event::received(old("ACK")), t0 + ms(10))
        .is_empty());
    assert_eq!(t.state(), State::Completed);
    let right = msg(&old("ACK")
        .as_bytes()
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .replace("tag=other", "tag=a6c85cf"));
    assert!(t.ack_matches(&right));
    let acts = t.on_event(Event::received(right), t0 + ms(20));
    assert_eq!(show(&acts, t0), ["disarm G", "disarm H", "arm I 5020"]);
}

#[test]
fn invite_transport_error_before_final() {
    let (mut t, t0, _) = start(false);
    let acts = t.on_event(Event::TransportError, t0);
    assert_eq!(show(&acts, t0), ["transport", "end"]);
}

#[test]
fn non_invite_trying_absorbs_then_completed_resends_until_j() {
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bKreg");
    let mut t = ServerNonInvite::new(req.clone(), false, TimerValues::default()).unwrap();
    assert_eq!(t.state(), State::Trying);
    // Trying: a retransmission is absorbed (the TU has not answered).
    assert!(t
        .on_event(Event::received(req.clone()), t0 + ms(500))
        .is_empty());
    let resp = |c| response(c, "REGISTER", "z9hG4bKreg");
    let acts = t.on_event(Event::Respond(out(resp(100))), t0 + ms(600));
    assert_eq!(show(&acts, t0), ["send 100"]);
    assert_eq!(t.state(), State::Proceeding);
    let acts = t.on_event(Event::received(req.clone()), t0 + ms(1_500));
    assert_eq!(show(&acts, t0), ["send 100"]);
    assert!(t.request().is_some());
    let acts = t.on_event(Event::Respond(out(resp(200))), t0 + ms(2_000));
    assert_eq!(show(&acts, t0), ["send 200", "arm J 34000"]);
    assert_eq!(t.state(), State::Completed);
    assert!(t.request().is_none());
    let acts = t.on_event(Event::received(req.clone()), t0 + ms(3_500));
    assert_eq!(show(&acts, t0), ["send 200"]);
    // A second final response from the TU is not sent.
    assert!(t
        .on_event(Event::Respond(out(resp(500))), t0 + ms(3_600))
        .is_empty());
    let acts = t.on_event(Event::Timer(Timer::J), t0 + ms(34_000));
    assert_eq!(show(&acts, t0), ["end"]);
}

#[test]
fn non_invite_reliable_j_is_zero() {
    let t0 = Instant::now();
    let req = request("MESSAGE", "z9hG4bKmsg");
    let mut t = ServerNonInvite::new(req, true, TimerValues::default()).unwrap();
    let acts = t.on_event(
        Event::Respond(out(response(202, "MESSAGE", "z9hG4bKmsg"))),
        t0,
    );
    assert_eq!(show(&acts, t0), ["send 202", "end"]);
}

#[test]
fn server_constructors_refuse_the_wrong_method() {
    let v = TimerValues::default();
    assert!(ServerInvite::new(request("BYE", "z9hG4bK1"), false, v).is_err());
    assert!(ServerNonInvite::new(invite(), false, v).is_err());
    assert!(ServerNonInvite::new(ack("x"), false, v).is_err());
}
