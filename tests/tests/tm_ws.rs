//! Issue 14, the transaction layer over WebSocket on the bundled default config (its
//! `t_relay()` is stateful; authentication left out, the subject is the relay): 100 Trying
//! for an INVITE, CANCEL answered here and sent downstream (§16.10) with the 487 relayed
//! and its ACK absorbed, `modparam("tm", "fr_timeout", ...)` ending an unanswered INVITE
//! with 408, a ringing callee whose connection closes answered 480 at once, a
//! retransmission absorbed by its transaction, `max_transactions_per_source`, a CANCEL
//! before any provisional response (§9.1), and a user with two devices: the caller's CANCEL
//! cancels both branches, an ACK reaches one, a MESSAGE gets one 200, both 200s of an INVITE
//! reach the caller, a closed second tab does not hold up the answer.
mod common;
use common::ws::{connect_sip, next_any_text, next_text, send_text, status, Ws};
use common::*;
use std::time::{Duration, Instant};

struct Ua {
    ws: Ws,
    user: &'static str,
}

impl Ua {
    async fn register(url: &str, user: &'static str) -> Ua {
        let mut ws = connect_sip(url).await;
        send_text(
            &mut ws,
            format!(
                "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bKr{user}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
                 Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}x@{user}.invalid;transport=ws>;expires=600\r\n\
                 Content-Length: 0\r\n\r\n"
            ),
        )
        .await;
        let r = next_text(&mut ws).await;
        assert_eq!(status(&r), 200, "{r}");
        Ua { ws, user }
    }

    /// Sends [`Ua::request`].
    async fn send(&mut self, method: &str, to: &str, call: &str, cseq: u32, to_tag: &str) {
        let m = self.request(method, to, call, cseq, to_tag);
        send_text(&mut self.ws, m).await;
    }

    /// A request to `to`@example.com with branch `z9hG4bK{call}{cseq}` (CANCEL and ACK of a
    /// non-2xx reuse the INVITE's, §9.1, §17.1.1.3).
    fn request(&self, method: &str, to: &str, call: &str, cseq: u32, to_tag: &str) -> String {
        let cseq_method = method;
        format!(
            "{method} sip:{to}@example.com SIP/2.0\r\nVia: SIP/2.0/WS {u}.invalid;branch=z9hG4bK{call}{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@example.com>;tag=f{u}\r\nTo: <sip:{to}@example.com>{to_tag}\r\n\
             Call-ID: {call}\r\nCSeq: {cseq} {cseq_method}\r\nContact: <sip:{u}x@{u}.invalid;transport=ws>\r\n\
             Content-Length: 0\r\n\r\n",
            u = self.user
        )
    }
}

/// The reply a UA sends to `req`, To tagged `callee`.
fn answer(req: &str, code: u16) -> String {
    let mut out = format!("SIP/2.0 {code} Whatever\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in headers(req, "Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{h}: {}\r\n", header(req, h).unwrap()));
    }
    out.push_str(&format!(
        "To: {};tag=callee\r\nContent-Length: 0\r\n\r\n",
        header(req, "To").unwrap()
    ));
    out
}

/// The default config without authentication, with `modparam` lines for tm.
fn config(tm: &[(&str, u32)]) -> (String, u16) {
    let (cfg, mi) = default_config_without_auth();
    let anchor = "loadmodule \"registrar.so\"\n";
    assert!(cfg.contains(anchor), "default config changed");
    let mut lines = String::from("loadmodule \"tm.so\"\n");
    for (name, v) in tm {
        lines.push_str(&format!("modparam(\"tm\", \"{name}\", {v})\n"));
    }
    (cfg.replace(anchor, &format!("{anchor}{lines}")), mi)
}

#[tokio::test]
async fn invite_gets_100_trying_and_cancel_is_sent_downstream() {
    let (_srv, mut alice, mut bob) = alice_and_bob(&[]).await;

    let invite = alice.request("INVITE", "bob", "c1", 1, "");
    send_text(&mut alice.ws, invite.clone()).await;
    // §17.2.1: the proxy's 100 Trying, before anything from Bob.
    let trying = next_any_text(&mut alice.ws).await;
    assert!(trying.starts_with("SIP/2.0 100 Trying\r\n"), "{trying}");
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.starts_with("INVITE sip:bobx@bob.invalid"), "{got}");
    send_text(&mut bob.ws, answer(&got, 180)).await;
    let ringing = next_any_text(&mut alice.ws).await;
    assert_eq!(status(&ringing), 180, "{ringing}");
    assert_eq!(headers(&ringing, "Via").len(), 1, "{ringing}");

    // Alice cancels: the proxy answers the CANCEL itself and cancels Bob's branch.
    alice.send("CANCEL", "bob", "c1", 1, "").await;
    let ok = next_any_text(&mut alice.ws).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "CSeq"), Some("1 CANCEL"), "{ok}");
    let cancel = next_any_text(&mut bob.ws).await;
    assert!(
        cancel.starts_with("CANCEL sip:bobx@bob.invalid"),
        "{cancel}"
    );
    // The CANCEL has the INVITE's branch (§9.1).
    assert_eq!(headers(&cancel, "Via")[0], headers(&got, "Via")[0]);
    send_text(&mut bob.ws, answer(&cancel, 200)).await;
    send_text(&mut bob.ws, answer(&got, 487)).await;
    // Bob gets the hop-by-hop ACK of his 487 from the proxy (§17.1.1.3).
    let ack = next_any_text(&mut bob.ws).await;
    assert!(ack.starts_with("ACK sip:bobx@bob.invalid"), "{ack}");
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"), "{ack}");
    let terminated = next_any_text(&mut alice.ws).await;
    assert_eq!(status(&terminated), 487, "{terminated}");
    // Alice's ACK of the 487 ends at the proxy: Bob already has his.
    alice.send("ACK", "bob", "c1", 1, ";tag=callee").await;
    marker_is_next(&mut alice, &mut bob, "m1", "Alice's ACK was relayed").await;
}

#[tokio::test]
async fn fr_timeout_ends_an_unanswered_invite_with_408() {
    let (_srv, mut alice, mut bob) =
        alice_and_bob(&[("fr_timeout", 1), ("fr_inv_timeout", 60)]).await;
    let t0 = Instant::now();
    alice.send("INVITE", "bob", "c2", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.starts_with("INVITE "), "{got}");
    // Bob never answers; fr_timeout (1 s) ends the branch: 408 for Alice.
    let r = next_text(&mut alice.ws).await;
    assert_eq!(status(&r), 408, "{r}");
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "408 before fr_timeout"
    );
    // No CANCEL for Bob: his branch had no provisional response (§9.1). A marker sent after
    // the 408 is the next thing he sees (a CANCEL would have been queued before the 408).
    marker_is_next(&mut alice, &mut bob, "m2", "Bob got a CANCEL").await;
}

#[tokio::test]
async fn a_ringing_callee_whose_connection_closes_gets_the_caller_480_at_once() {
    let (_srv, mut alice, mut bob) = alice_and_bob(&[]).await;
    alice.send("INVITE", "bob", "c3", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    send_text(&mut bob.ws, answer(&got, 180)).await;
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);
    // Bob's tab closes while ringing: without the transaction layer noticing, Alice would
    // wait for fr_inv_timeout (120 s).
    let t0 = Instant::now();
    drop(bob);
    let r = next_text(&mut alice.ws).await;
    assert_eq!(status(&r), 480, "{r}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_retransmission_is_absorbed_by_its_transaction() {
    let (_srv, mut alice, mut bob) = alice_and_bob(&[]).await;
    let m = alice.request("MESSAGE", "bob", "r1", 1, "");
    send_text(&mut alice.ws, m.clone()).await;
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.starts_with("MESSAGE "), "{got}");
    // The same request again (same branch): its transaction is pending, Bob does not get it
    // twice.
    send_text(&mut alice.ws, m).await;
    let next = marker_is_next(&mut alice, &mut bob, "r2", "the retransmission was relayed").await;
    send_text(&mut bob.ws, answer(&got, 200)).await;
    send_text(&mut bob.ws, answer(&next, 200)).await;
    let a = next_text(&mut alice.ws).await;
    let b = next_text(&mut alice.ws).await;
    assert_eq!((status(&a), status(&b)), (200, 200), "{a}\n{b}");
}

#[tokio::test]
async fn one_source_holds_at_most_its_share_of_transactions() {
    let (cfg, mi) = config(&[("max_transactions_per_source", 5)]);
    let srv = Server::start(&cfg);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let mut carol = Ua::register(&url, "carol").await;
    // Five MESSAGEs Bob does not answer are held; the sixth is refused at once.
    for i in 0..5 {
        let m = alice.request("MESSAGE", "bob", &format!("q{i}"), 1, "");
        send_text(&mut alice.ws, m).await;
        assert!(next_any_text(&mut bob.ws).await.starts_with("MESSAGE "));
    }
    alice.send("MESSAGE", "bob", "q5", 1, "").await;
    let r = next_text(&mut alice.ws).await;
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(header(&r, "Retry-After"), Some("5"), "{r}");
    // Carol is not affected.
    carol.send("MESSAGE", "bob", "k1", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.contains("Call-ID: k1\r\n"), "{got}");
    send_text(&mut bob.ws, answer(&got, 200)).await;
    assert_eq!(status(&next_text(&mut carol.ws).await), 200);
    // The statistic counts what is held: Alice's five (Carol's transaction ends just after
    // its 200 went out, on sipcore's thread: waited for, within a deadline).
    let held = || {
        common::metrics::values(&common::metrics::scrape(mi))
            .get("sipcore_tm_inuse_transactions")
            .copied()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while held() != Some(5.0) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(held(), Some(5.0));
}

/// A transaction that ends leaves none of its timers armed: each MESSAGE's timer F and
/// `fr_timeout` go with its 200 (they used to stay armed until they fired, 32 s later, when
/// the cell's last work disarmed them: at 30,000 relays a second a million timers piled up).
/// With `fr_timeout` at 120 s, a timer left behind would still be there at the deadline.
#[tokio::test]
async fn an_answered_transaction_leaves_no_timer_armed() {
    let (cfg, mi) = config(&[("fr_timeout", 120)]);
    let srv = Server::start(&cfg);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let stat = |name: &str| {
        common::metrics::values(&common::metrics::scrape(mi))
            .get(name)
            .copied()
    };
    for i in 0..20 {
        alice.send("MESSAGE", "bob", &format!("m{i}"), 1, "").await;
        let got = next_any_text(&mut bob.ws).await;
        assert!(got.starts_with("MESSAGE "), "{got}");
        // Held, with its timers, until Bob answers (armed just after the MESSAGE went out,
        // on sipcore's thread: waited for, within a deadline).
        if i == 0 {
            assert_eq!(stat("sipcore_tm_inuse_transactions"), Some(1.0));
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stat("sipcore_tm_armed_timers").is_some_and(|n| n >= 1.0) {
                assert!(
                    Instant::now() < deadline,
                    "no timer armed for a held MESSAGE"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        send_text(&mut bob.ws, answer(&got, 200)).await;
        assert_eq!(status(&next_text(&mut alice.ws).await), 200);
    }
    // The transaction ends on sipcore's thread just after its 200 went out: waited for.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = || {
        stat("sipcore_tm_inuse_transactions") == Some(0.0)
            && stat("sipcore_tm_armed_timers") == Some(0.0)
    };
    while !gone() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stat("sipcore_tm_inuse_transactions"), Some(0.0));
    assert_eq!(
        stat("sipcore_tm_armed_timers"),
        Some(0.0),
        "timers left armed by answered transactions"
    );
}

/// A CANCEL is matched only from the hop its INVITE came from: Mallory, who copies Alice's Via
/// (the whole key of her transaction), cancels nothing. Her CANCEL is relayed statelessly
/// with a branch of her own hop, which matches no transaction at Bob, and Alice's call goes on.
#[tokio::test]
async fn a_cancel_from_another_connection_cancels_nothing() {
    let (srv, mut alice, mut bob) = alice_and_bob(&[]).await;
    let url = srv.ws_url();
    let mut mallory = connect_sip(&url).await;
    alice.send("INVITE", "bob", "c9", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.starts_with("INVITE "), "{got}");
    send_text(&mut bob.ws, answer(&got, 180)).await;
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);

    send_text(&mut mallory, alice.request("CANCEL", "bob", "c9", 1, "")).await;
    let relayed = next_any_text(&mut bob.ws).await;
    assert!(relayed.starts_with("CANCEL "), "{relayed}");
    assert_ne!(
        headers(&relayed, "Via")[0],
        headers(&got, "Via")[0],
        "Mallory's CANCEL carries the branch of Alice's INVITE"
    );
    // Bob answers the INVITE: Alice gets the 200, not a 487.
    send_text(&mut bob.ws, answer(&got, 200)).await;
    let r = next_text(&mut alice.ws).await;
    assert_eq!(
        (status(&r), header(&r, "CSeq")),
        (200, Some("1 INVITE")),
        "{r}"
    );
}

/// OpenSIPS's CANCEL idiom, `if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }`:
/// a CANCEL of a call in progress goes through (200 here, CANCEL downstream); one that
/// cancels nothing ends in the script.
#[tokio::test]
async fn t_check_trans_finds_the_invite_a_cancel_cancels() {
    let (cfg, _mi) = config(&[]);
    let anchor = "route {\n";
    assert!(cfg.contains(anchor), "default config changed");
    let cfg = cfg.replacen(
        anchor,
        "route {\n    if (is_method(\"CANCEL\")) {\n        if (t_check_trans()) t_relay();\n        exit;\n    }\n",
        1,
    );
    let srv = Server::start(&cfg);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    // A CANCEL of nothing ends in the script: Bob's next message is the INVITE after it.
    alice.send("CANCEL", "bob", "none", 1, "").await;
    alice.send("INVITE", "bob", "c10", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    assert!(got.starts_with("INVITE "), "{got}");
    send_text(&mut bob.ws, answer(&got, 180)).await;
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);
    alice.send("CANCEL", "bob", "c10", 1, "").await;
    let ok = next_text(&mut alice.ws).await;
    assert_eq!(
        (status(&ok), header(&ok, "CSeq")),
        (200, Some("1 CANCEL")),
        "{ok}"
    );
    let cancel = next_any_text(&mut bob.ws).await;
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    assert_eq!(headers(&cancel, "Via")[0], headers(&got, "Via")[0]);
}

/// A second device of `user`: its own connection and contact (`sip:{user}y@...`).
async fn register_second(url: &str, user: &'static str) -> Ua {
    let mut ws = connect_sip(url).await;
    send_text(
        &mut ws,
        format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}2.invalid;branch=z9hG4bKr2{user}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t2{user}\r\nTo: <sip:{user}@example.com>\r\n\
             Call-ID: reg2-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}y@{user}2.invalid;transport=ws>;expires=600\r\n\
             Content-Length: 0\r\n\r\n"
        ),
    )
    .await;
    let r = next_text(&mut ws).await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact").len(), 2, "{r}");
    Ua { ws, user }
}

/// Alice sends Bob a MESSAGE with Call-ID `call`, which must be the next thing Bob sees: what
/// a test expects not to reach him would have been queued before it. Bob's copy (unanswered).
async fn marker_is_next(alice: &mut Ua, bob: &mut Ua, call: &str, what: &str) -> String {
    alice.send("MESSAGE", "bob", call, 1, "").await;
    let next = next_any_text(&mut bob.ws).await;
    assert!(
        next.starts_with("MESSAGE ") && next.contains(&format!("Call-ID: {call}\r\n")),
        "{what}: {next}"
    );
    next
}

/// The default config with tm modparams `tm`, and Alice and Bob registered (Bob's contact
/// `sip:bobx@bob.invalid`); the server runs while the first value lives.
async fn alice_and_bob(tm: &[(&str, u32)]) -> (Server, Ua, Ua) {
    let (cfg, _mi) = config(tm);
    let srv = Server::start(&cfg);
    let url = srv.ws_url();
    let alice = Ua::register(&url, "alice").await;
    let bob = Ua::register(&url, "bob").await;
    (srv, alice, bob)
}

/// [`alice_and_bob`] with Bob on a second device too (`sip:boby@bob2.invalid`).
async fn alice_and_two_bobs(tm: &[(&str, u32)]) -> (Server, Ua, Ua, Ua) {
    let (srv, alice, bob1) = alice_and_bob(tm).await;
    let bob2 = register_second(&srv.ws_url(), "bob").await;
    (srv, alice, bob1, bob2)
}

/// Both of Bob's devices get the INVITE Alice just sent and ring; Alice gets both 180s.
async fn ring_both(alice: &mut Ua, bob1: &mut Ua, bob2: &mut Ua) -> (String, String) {
    let inv1 = next_any_text(&mut bob1.ws).await;
    let inv2 = next_any_text(&mut bob2.ws).await;
    assert!(inv1.starts_with("INVITE sip:bobx@bob.invalid"), "{inv1}");
    assert!(inv2.starts_with("INVITE sip:boby@bob2.invalid"), "{inv2}");
    send_text(&mut bob1.ws, answer(&inv1, 180)).await;
    send_text(&mut bob2.ws, answer(&inv2, 180)).await;
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);
    (inv1, inv2)
}

/// RFC 3261 §16.10: the caller's CANCEL of an INVITE forked to both devices of a user (the
/// default config's `lookup()` loads both contacts) is answered 200 here and cancels every
/// pending branch; the caller gets one 487.
#[tokio::test]
async fn a_cancel_of_a_forked_invite_cancels_every_branch() {
    let (_srv, mut alice, mut bob1, mut bob2) = alice_and_two_bobs(&[]).await;
    alice.send("INVITE", "bob", "fk1", 1, "").await;
    let (inv1, inv2) = ring_both(&mut alice, &mut bob1, &mut bob2).await;

    alice.send("CANCEL", "bob", "fk1", 1, "").await;
    let ok = next_text(&mut alice.ws).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "CSeq"), Some("1 CANCEL"), "{ok}");
    for (dev, inv) in [(&mut bob1, &inv1), (&mut bob2, &inv2)] {
        let cancel = next_any_text(&mut dev.ws).await;
        assert!(cancel.starts_with("CANCEL "), "{cancel}");
        // The CANCEL of that branch: its INVITE's top Via (§9.1).
        assert_eq!(
            headers(&cancel, "Via")[0],
            headers(inv, "Via")[0],
            "{cancel}"
        );
        send_text(&mut dev.ws, answer(&cancel, 200)).await;
        send_text(&mut dev.ws, answer(inv, 487)).await;
    }
    let r = next_text(&mut alice.ws).await;
    assert_eq!(status(&r), 487, "{r}");
}

/// An ACK that reaches the default config's `lookup()` (in a dialog without Record-Route)
/// for a user with two devices is relayed statelessly to one contact, as OpenSIPS's `t_relay()`
/// relays an ACK; it used to start a transaction per branch, which an ACK never has, and
/// reached nobody.
#[tokio::test]
async fn an_ack_to_a_user_with_two_devices_is_relayed_once() {
    let (_srv, mut alice, mut bob1, mut bob2) = alice_and_two_bobs(&[]).await;
    alice.send("ACK", "bob", "ak1", 1, ";tag=callee").await;
    // A marker after it: forked to both devices, so each sees the ACK first if it got it.
    alice.send("MESSAGE", "bob", "ak-marker", 1, "").await;
    let mut acks = 0;
    for dev in [&mut bob1, &mut bob2] {
        let mut m = next_any_text(&mut dev.ws).await;
        if m.starts_with("ACK ") {
            assert!(m.contains("Call-ID: ak1\r\n"), "{m}");
            acks += 1;
            m = next_any_text(&mut dev.ws).await;
        }
        assert!(m.starts_with("MESSAGE "), "{m}");
        assert!(m.contains("Call-ID: ak-marker\r\n"), "{m}");
    }
    assert_eq!(acks, 1, "the ACK went to {acks} devices");
}

/// RFC 3261 §9.1: a CANCEL that arrives before the callee's first provisional response is
/// answered 200 at once, but the CANCEL downstream waits for that response (a CANCEL must
/// not overtake the INVITE's 1xx); then the callee's 487 reaches the caller.
#[tokio::test]
async fn a_cancel_before_any_provisional_response_waits_for_it() {
    let (_srv, mut alice, mut bob) = alice_and_bob(&[]).await;
    alice.send("INVITE", "bob", "early1", 1, "").await;
    let inv = next_any_text(&mut bob.ws).await;
    assert!(inv.starts_with("INVITE "), "{inv}");
    alice.send("CANCEL", "bob", "early1", 1, "").await;
    let ok = next_text(&mut alice.ws).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "CSeq"), Some("1 CANCEL"), "{ok}");
    // Nothing for Bob yet: a marker sent after the CANCEL's 200 is the next thing he sees
    // (a CANCEL sent at once would have been queued before it).
    marker_is_next(
        &mut alice,
        &mut bob,
        "early-marker",
        "the CANCEL did not wait",
    )
    .await;
    // Bob rings only now: the CANCEL follows his 180.
    send_text(&mut bob.ws, answer(&inv, 180)).await;
    let cancel = next_any_text(&mut bob.ws).await;
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    assert_eq!(
        headers(&cancel, "Via")[0],
        headers(&inv, "Via")[0],
        "{cancel}"
    );
    send_text(&mut bob.ws, answer(&cancel, 200)).await;
    send_text(&mut bob.ws, answer(&inv, 487)).await;
    // Alice may see the 180 first; then the 487.
    let mut r = next_text(&mut alice.ws).await;
    if status(&r) == 180 {
        r = next_text(&mut alice.ws).await;
    }
    assert_eq!(status(&r), 487, "{r}");
}

/// A MESSAGE to a user with two devices goes to both (RFC 3261 §16.6); the caller gets one
/// final response (§16.7 step 5: a 2xx forwarded once; the second 200 is the proxy's to
/// absorb), and no CANCEL is sent for a non-INVITE branch (§9.1).
#[tokio::test]
async fn a_message_forked_to_two_devices_gets_one_200() {
    let (_srv, mut alice, mut bob1, mut bob2) = alice_and_two_bobs(&[]).await;
    alice.send("MESSAGE", "bob", "fm1", 1, "").await;
    let m1 = next_any_text(&mut bob1.ws).await;
    let m2 = next_any_text(&mut bob2.ws).await;
    assert!(m1.starts_with("MESSAGE sip:bobx@"), "{m1}");
    assert!(m2.starts_with("MESSAGE sip:boby@"), "{m2}");
    send_text(&mut bob1.ws, answer(&m1, 200)).await;
    let ok = next_text(&mut alice.ws).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "Call-ID"), Some("fm1"), "{ok}");
    // The other device answers too, then sends Alice a marker on the same connection: the
    // marker is the next thing Alice sees.
    send_text(&mut bob2.ws, answer(&m2, 200)).await;
    bob2.send("MESSAGE", "alice", "fm-marker", 1, "").await;
    let next = next_any_text(&mut alice.ws).await;
    assert!(
        next.starts_with("MESSAGE ") && next.contains("Call-ID: fm-marker\r\n"),
        "a second final response reached the caller: {next}"
    );
    // No CANCEL went to either device: a marker from Alice is the next thing each sees.
    alice.send("MESSAGE", "bob", "fm-marker2", 1, "").await;
    for dev in [&mut bob1, &mut bob2] {
        let n = next_any_text(&mut dev.ws).await;
        assert!(n.contains("Call-ID: fm-marker2\r\n"), "{n}");
    }
}

/// RFC 3261 §16.7 step 5 (and RFC 6026): every 2xx of a forked INVITE goes to the caller. When
/// both devices answer (the second before the CANCEL the first 200 caused reached it), the
/// caller gets both 200s (and can ACK and BYE the second dialog).
#[tokio::test]
async fn both_200s_of_a_forked_invite_reach_the_caller() {
    let (_srv, mut alice, mut bob1, mut bob2) = alice_and_two_bobs(&[]).await;
    alice.send("INVITE", "bob", "f200", 1, "").await;
    let (inv1, inv2) = ring_both(&mut alice, &mut bob1, &mut bob2).await;
    send_text(&mut bob1.ws, answer(&inv1, 200)).await;
    let first = next_text(&mut alice.ws).await;
    assert_eq!(status(&first), 200, "{first}");
    assert!(
        header(&first, "To").unwrap().ends_with(";tag=callee"),
        "{first}"
    );
    // Bob's second device answers although the proxy cancels it.
    let cancel = next_any_text(&mut bob2.ws).await;
    assert!(cancel.starts_with("CANCEL "), "{cancel}");
    let second = answer(&inv2, 200).replace(";tag=callee", ";tag=callee2");
    send_text(&mut bob2.ws, second).await;
    let r = next_text(&mut alice.ws).await;
    assert_eq!(status(&r), 200, "{r}");
    assert!(header(&r, "To").unwrap().ends_with(";tag=callee2"), "{r}");
}

/// A user with two devices whose second tab closed: the INVITE still reaches the first
/// device, and when it declines, the caller hears at once (a registered flow whose connection
/// is gone is no branch to wait for, RFC 5626 §5.3): not after `fr_inv_timeout` (120 s here,
/// past `next_text`'s 15 s).
#[tokio::test]
async fn a_closed_second_device_does_not_hold_up_the_answer() {
    let (_srv, mut alice, mut bob1, bob2) = alice_and_two_bobs(&[("fr_inv_timeout", 120)]).await;
    drop(bob2);
    alice.send("INVITE", "bob", "closed2", 1, "").await;
    let inv = next_any_text(&mut bob1.ws).await;
    assert!(inv.starts_with("INVITE sip:bobx@"), "{inv}");
    send_text(&mut bob1.ws, answer(&inv, 486)).await;
    let r = next_text(&mut alice.ws).await;
    assert!(matches!(status(&r), 486 | 480), "{r}");
}

/// OpenSIPS's CANCEL idiom at the top of the route, where the Request-URI is still the one the
/// client wrote: a CANCEL from another hop than its INVITE's (Mallory copies Alice's Via and
/// names an address of her choosing) is not that transaction's for `t_check_trans()` either,
/// so `t_relay()` never relays it statelessly there: the server connects nowhere, and
/// Alice's call goes on.
#[tokio::test]
async fn t_check_trans_does_not_match_a_cancel_from_another_hop() {
    let (cfg, _mi) = config(&[]);
    let cfg = cfg.replacen(
        "route {\n",
        "route {\n    if (is_method(\"CANCEL\")) {\n        if (t_check_trans()) t_relay();\n        exit;\n    }\n",
        1,
    );
    let srv = Server::start(&cfg);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;
    let mut mallory = connect_sip(&url).await;
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    alice.send("INVITE", "bob", "c11", 1, "").await;
    let got = next_any_text(&mut bob.ws).await;
    send_text(&mut bob.ws, answer(&got, 180)).await;
    assert_eq!(status(&next_text(&mut alice.ws).await), 180);

    let forged = alice.request("CANCEL", "bob", "c11", 1, "").replacen(
        "CANCEL sip:bob@example.com ",
        &format!("CANCEL sip:bob@127.0.0.1:{trap_port};transport=ws "),
        1,
    );
    send_text(&mut mallory, forged).await;
    // A marker on Mallory's connection, handled after her CANCEL: once it is answered, a
    // relay of the CANCEL would have opened its connection (a loopback connect completes in
    // the call that starts it).
    send_text(
        &mut mallory,
        format!(
            "OPTIONS sip:127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/WS m.invalid;branch=z9hG4bKmopt\r\n\
             Max-Forwards: 70\r\nFrom: <sip:m@example.com>;tag=m\r\nTo: <sip:127.0.0.1>\r\n\
             Call-ID: mopt\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            p = srv.port
        ),
    )
    .await;
    let ok = next_text(&mut mallory).await;
    assert_eq!(header(&ok, "Call-ID"), Some("mopt"), "{ok}");
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the server connected where Mallory's CANCEL said: {other:?}"),
    }
    // Bob answers: Alice gets the 200, not a 487.
    send_text(&mut bob.ws, answer(&got, 200)).await;
    let r = next_text(&mut alice.ws).await;
    assert_eq!(
        (status(&r), header(&r, "CSeq")),
        (200, Some("1 INVITE")),
        "{r}"
    );
}
