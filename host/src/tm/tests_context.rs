//! The proxy response context (RFC 3261 §16.7, §16.8, §16.10) with OpenSIPS tm's
//! `fr_timeout` (30 s) and `fr_inv_timeout` (120 s).

use std::time::{Duration, Instant};

use super::tests_util::{inv_resp, ms, response};
use super::{ContextError, ProxyAction, ProxyConfig, ProxyContext, ProxyEvent, ProxyTimer};

fn show(acts: &[ProxyAction], t0: Instant) -> Vec<String> {
    acts.iter()
        .map(|a| match a {
            ProxyAction::Forward {
                branch,
                response,
                challenges,
            } => {
                let c = response.status().unwrap();
                if challenges.is_empty() {
                    format!("forward {branch}:{c}")
                } else {
                    format!("forward {branch}:{c} +{challenges:?}")
                }
            }
            ProxyAction::Reply(c) => format!("reply {c}"),
            ProxyAction::Cancel(b) => format!("cancel {b}"),
            ProxyAction::Arm(t, at) => format!("arm {t:?} {}", (*at - t0).as_secs()),
            ProxyAction::Disarm(t) => format!("disarm {t:?}"),
            ProxyAction::Failure(c) => format!("failure {c}"),
        })
        .collect()
}

fn ctx(branches: usize, t0: Instant) -> ProxyContext {
    let mut c = ProxyContext::new(true, ProxyConfig::default());
    for i in 0..branches {
        let (b, acts) = c.add_branch(t0).unwrap();
        assert_eq!(b, i);
        assert_eq!(show(&acts, t0), [format!("arm Fr({i}) 30")]);
    }
    assert!(c.close().is_empty());
    c
}

fn resp(c: &mut ProxyContext, b: usize, code: u16, at: Instant, t0: Instant) -> Vec<String> {
    show(
        &c.on_event(ProxyEvent::Response(b, Box::new(inv_resp(code))), at),
        t0,
    )
}

#[test]
fn one_branch_provisional_then_final() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    // 100 is not forwarded (§16.7 step 5); fr_inv_timeout replaces fr_timeout.
    assert_eq!(
        resp(&mut c, 0, 100, t0, t0),
        ["disarm Fr(0)", "arm FrInv(0) 120"]
    );
    let at = t0 + Duration::from_secs(5);
    assert_eq!(
        resp(&mut c, 0, 180, at, t0),
        ["arm FrInv(0) 125", "forward 0:180"]
    );
    assert_eq!(
        resp(&mut c, 0, 486, at, t0),
        ["disarm FrInv(0)", "forward 0:486"]
    );
    assert_eq!(c.final_sent(), Some(486));
    assert!(c.is_done());
    assert!(c.armed().is_empty());
    // Late non-2xx responses go nowhere.
    assert!(resp(&mut c, 0, 500, at, t0).is_empty());
}

#[test]
fn fr_timeout_generates_408() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    let fr = ProxyEvent::Timer(ProxyTimer::Fr(0));
    assert!(c.on_event(fr.clone(), t0 + ms(29_999)).is_empty());
    let acts = c.on_event(fr, t0 + ms(30_000));
    assert_eq!(show(&acts, t0), ["reply 408"]);
    assert!(c.is_done());
    // A 2xx that comes after all the same goes upstream (RFC 6026).
    assert_eq!(resp(&mut c, 0, 200, t0 + ms(31_000), t0), ["forward 0:200"]);
}

#[test]
fn fr_inv_timeout_cancels_the_ringing_branch() {
    let t0 = Instant::now();
    for code in [408, 480] {
        let config = ProxyConfig {
            fr_inv_code: code,
            ..ProxyConfig::default()
        };
        let mut c = ProxyContext::new(true, config);
        c.add_branch(t0).unwrap();
        c.close();
        resp(&mut c, 0, 180, t0, t0);
        let ev = ProxyEvent::Timer(ProxyTimer::FrInv(0));
        let acts = c.on_event(ev, t0 + Duration::from_secs(120));
        assert_eq!(
            show(&acts, t0),
            ["cancel 0".to_string(), format!("reply {code}")]
        );
        // The branch's 487 arrives later: nothing more goes upstream.
        assert!(resp(&mut c, 0, 487, t0 + Duration::from_secs(121), t0).is_empty());
    }
}

#[test]
fn forked_2xx_cancels_the_other_branches() {
    let t0 = Instant::now();
    let mut c = ctx(3, t0);
    resp(&mut c, 1, 180, t0, t0);
    // Branch 0 answers; branch 1 rang (CANCEL now), branch 2 said nothing (CANCEL once it
    // does: §9.1 forbids a CANCEL before a provisional response).
    assert_eq!(
        resp(&mut c, 0, 200, t0, t0),
        ["disarm Fr(0)", "forward 0:200", "cancel 1"]
    );
    assert_eq!(
        resp(&mut c, 2, 100, t0, t0),
        ["disarm Fr(2)", "arm FrInv(2) 120", "cancel 2"]
    );
    // Their 487s, and branch 2's 180, stay here; a 2xx of another fork goes up.
    assert_eq!(resp(&mut c, 1, 487, t0, t0), ["disarm FrInv(1)"]);
    assert!(resp(&mut c, 2, 180, t0, t0)
        .iter()
        .all(|a| a.starts_with("arm")));
    assert_eq!(
        resp(&mut c, 2, 200, t0, t0),
        ["disarm FrInv(2)", "forward 2:200"]
    );
    assert!(c.is_done());
    assert_eq!(c.final_sent(), Some(200));
}

#[test]
fn six_hundred_cancels_and_wins_after_the_others_end() {
    let t0 = Instant::now();
    let mut c = ProxyContext::new(true, ProxyConfig::default());
    c.add_branch(t0).unwrap();
    c.add_branch(t0).unwrap();
    resp(&mut c, 1, 183, t0, t0);
    // §16.7 step 5: not forwarded at once, others cancelled, no new branches.
    assert_eq!(resp(&mut c, 0, 603, t0, t0), ["cancel 1", "disarm Fr(0)"]);
    assert_eq!(c.add_branch(t0).unwrap_err(), ContextError::Finished);
    assert!(c.close().is_empty());
    assert_eq!(
        resp(&mut c, 1, 487, t0, t0),
        ["disarm FrInv(1)", "forward 0:603"]
    );
}

#[test]
fn client_cancel_cancels_pending_and_487_is_sent() {
    let t0 = Instant::now();
    let mut c = ctx(2, t0);
    resp(&mut c, 0, 180, t0, t0);
    resp(&mut c, 1, 486, t0, t0);
    let acts = c.on_event(ProxyEvent::Cancel, t0 + ms(10));
    assert_eq!(show(&acts, t0), ["cancel 0"]);
    // Cancelled: the 487 is preferred even over a 486 (OpenSIPS branch_prio).
    assert_eq!(
        resp(&mut c, 0, 487, t0, t0),
        ["disarm FrInv(0)", "forward 0:487"]
    );
    // A second CANCEL does nothing.
    assert!(c.on_event(ProxyEvent::Cancel, t0).is_empty());
}

#[test]
fn timeouts_transport_errors_and_503() {
    let t0 = Instant::now();
    let mut c = ctx(2, t0);
    // Timer B of a branch counts as 408, a transport error as 503 (§16.9).
    let acts = c.on_event(ProxyEvent::BranchTimeout(0), t0);
    assert_eq!(show(&acts, t0), ["disarm Fr(0)"]);
    let acts = c.on_event(ProxyEvent::BranchTransportError(1), t0);
    assert_eq!(show(&acts, t0), ["disarm Fr(1)", "reply 408"]);

    let mut c = ctx(1, t0);
    assert_eq!(resp(&mut c, 0, 503, t0, t0), ["disarm Fr(0)", "reply 500"]);
    let mut c = ctx(1, t0);
    let acts = c.on_event(ProxyEvent::BranchTransportError(0), t0);
    assert_eq!(show(&acts, t0), ["disarm Fr(0)", "reply 503"]);
}

#[test]
fn a_branch_whose_flow_closed_ends_with_its_code() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    let acts = c.on_event(ProxyEvent::BranchGone(0, 480), t0);
    assert_eq!(show(&acts, t0), ["disarm Fr(0)", "reply 480"]);
    // A late final response of that branch changes nothing (a late 2xx would still go
    // upstream: RFC 6026).
    assert!(resp(&mut c, 0, 486, t0, t0).is_empty());
}

#[test]
fn challenges_of_other_branches_are_named() {
    let t0 = Instant::now();
    let mut c = ctx(3, t0);
    resp(&mut c, 0, 407, t0, t0);
    resp(&mut c, 1, 404, t0, t0);
    assert_eq!(
        resp(&mut c, 2, 401, t0, t0),
        ["disarm Fr(2)", "forward 2:401 +[0]"]
    );
    assert_eq!(c.response(0).unwrap().status(), Some(407));
    // Once the driver carried the final response out, the copies go.
    c.compact();
    assert!((0..3).all(|b| c.response(b).is_none()));
}

#[test]
fn compact_keeps_the_responses_while_a_choice_is_open() {
    let t0 = Instant::now();
    let mut c = ctx(2, t0);
    resp(&mut c, 0, 486, t0, t0);
    // Branch 1 pends: nothing went upstream, so the 486 stays to be chosen.
    c.compact();
    assert_eq!(c.response(0).unwrap().status(), Some(486));
    assert_eq!(
        resp(&mut c, 1, 503, t0, t0),
        ["disarm Fr(1)", "forward 0:486"]
    );
    // A 2xx is never kept: it goes upstream at once.
    let mut d = ctx(1, t0);
    resp(&mut d, 0, 200, t0, t0);
    assert!(d.response(0).is_none());
}

#[test]
fn no_choice_before_close() {
    let t0 = Instant::now();
    let mut c = ProxyContext::new(true, ProxyConfig::default());
    c.add_branch(t0).unwrap();
    assert_eq!(resp(&mut c, 0, 404, t0, t0), ["disarm Fr(0)"]);
    assert_eq!(show(&c.close(), t0), ["forward 0:404"]);
    assert_eq!(c.add_branch(t0).unwrap_err(), ContextError::Closed);
}

#[test]
fn non_invite_has_no_fr_inv_and_no_cancel() {
    let t0 = Instant::now();
    let mut c = ProxyContext::new(false, ProxyConfig::default());
    c.add_branch(t0).unwrap();
    c.add_branch(t0).unwrap();
    c.close();
    let r = |code| ProxyEvent::Response(0, Box::new(response(code, "MESSAGE", "z9hG4bKm")));
    assert!(c.on_event(r(100), t0).is_empty());
    let acts = c.on_event(r(202), t0);
    assert_eq!(show(&acts, t0), ["disarm Fr(0)", "forward 0:202"]);
    let acts = c.on_event(ProxyEvent::Timer(ProxyTimer::Fr(1)), t0 + ms(30_000));
    assert_eq!(show(&acts, t0), Vec::<String>::new());
    assert!(c.is_done());
}

#[test]
fn at_most_max_branches() {
    let t0 = Instant::now();
    let mut c = ProxyContext::new(true, ProxyConfig::default());
    for _ in 0..super::MAX_BRANCHES {
        c.add_branch(t0).unwrap();
    }
    assert_eq!(c.add_branch(t0).unwrap_err(), ContextError::TooManyBranches);
}

#[test]
fn single_2xx_is_forwarded_once() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    assert_eq!(
        resp(&mut c, 0, 200, t0, t0),
        ["disarm Fr(0)", "forward 0:200"]
    );
    assert!(c.is_done());
}

/// OpenSIPS tm's failure_route: the chosen non-2xx is held while the route runs; without a
/// new branch it then goes upstream as it would have.
#[test]
fn failure_route_without_new_branch_sends_the_held_response() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    c.arm_failure(true);
    assert_eq!(
        resp(&mut c, 0, 486, t0, t0),
        ["disarm Fr(0)", "failure 486"]
    );
    assert!(c.in_failure());
    assert_eq!(c.final_sent(), None);
    assert_eq!(show(&c.resume(), t0), ["forward 0:486"]);
    assert_eq!(c.final_sent(), Some(486));
    assert!(c.is_done());
}

/// A branch added by the failure route is chosen among all branches when it ends; its 2xx
/// goes up at once. The failure route is one-shot: armed again, it would run again.
#[test]
fn failure_route_adds_a_branch_that_answers() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    c.arm_failure(true);
    assert_eq!(
        resp(&mut c, 0, 486, t0, t0),
        ["disarm Fr(0)", "failure 486"]
    );
    let (b, acts) = c.add_branch(t0).unwrap();
    assert_eq!((b, show(&acts, t0)), (1, vec!["arm Fr(1) 30".to_string()]));
    assert!(c.resume().is_empty());
    assert!(!c.in_failure());
    // Closed again: the script cannot add more outside a failure route.
    assert_eq!(c.add_branch(t0).unwrap_err(), ContextError::Closed);
    assert_eq!(
        resp(&mut c, 1, 200, t0, t0),
        ["disarm Fr(1)", "forward 1:200"]
    );
    assert!(c.is_done());
}

/// Not armed again, a second failure sends the best of all branches (§16.7 step 6).
#[test]
fn failure_route_runs_once_per_arming() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    c.arm_failure(true);
    assert_eq!(
        resp(&mut c, 0, 486, t0, t0),
        ["disarm Fr(0)", "failure 486"]
    );
    c.add_branch(t0).unwrap();
    assert!(c.resume().is_empty());
    let acts = resp(&mut c, 1, 404, t0, t0);
    assert_eq!(acts.len(), 2, "{acts:?}");
    assert!(acts[1].starts_with("forward "), "{acts:?}");
    assert!(c.is_done());
}

/// t_reply() in the failure route: the route's reply is the final one; nothing else is sent.
#[test]
fn failure_route_reply_replaces_the_held_response() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    c.arm_failure(true);
    assert_eq!(
        resp(&mut c, 0, 408, t0, t0),
        ["disarm Fr(0)", "failure 408"]
    );
    c.replied(480);
    assert!(c.resume().is_empty());
    assert_eq!(c.final_sent(), Some(480));
}

/// A 6xx stops new branches (§16.7 step 5), also from a failure route.
#[test]
fn failure_route_after_6xx_cannot_add_branches() {
    let t0 = Instant::now();
    let mut c = ctx(1, t0);
    c.arm_failure(true);
    let acts = resp(&mut c, 0, 603, t0, t0);
    assert_eq!(acts.last().map(String::as_str), Some("failure 603"));
    assert_eq!(c.add_branch(t0).unwrap_err(), ContextError::Finished);
    assert_eq!(show(&c.resume(), t0), ["forward 0:603"]);
}
