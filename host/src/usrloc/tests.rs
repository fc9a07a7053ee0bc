//! Registrar behaviour on real REGISTER messages (RFC 3261 §10.3, RFC 5626, RFC 7118).
use super::*;
use crate::sip::Message;
use bytes::Bytes;

pub(super) fn flow(conn: u64) -> Flow {
    Flow {
        conn_id: conn,
        proto: "ws",
        peer: format!("192.0.2.1:{}", 40000 + conn).parse().unwrap(),
        local: "127.0.0.1:8080".parse().unwrap(),
    }
}

pub(super) fn register(
    to: &str,
    contacts: &[&str],
    expires: Option<u32>,
    call_id: &str,
    cseq: u32,
) -> Message {
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK{cseq}\r\n\
         From: <{to}>;tag=f1\r\nTo: <{to}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n\
         User-Agent: test-ua\r\n"
    );
    for c in contacts {
        s.push_str(&format!("Contact: {c}\r\n"));
    }
    if let Some(e) = expires {
        s.push_str(&format!("Expires: {e}\r\n"));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(s)).unwrap()
}

pub(super) const ALICE: &str = "sip:alice@example.com";

pub(super) fn reg() -> Registrar {
    Registrar::new(RegistrarConfig::default())
}

/// The contacts `lookup` returns, in order; `best` must agree with the first.
pub(super) fn uris(r: &Registrar, aor: &str, now: Instant) -> Vec<String> {
    let all = r.lookup(aor, now);
    assert_eq!(r.best(aor, now).as_ref(), all.first());
    all.iter().map(|b| b.uri.clone()).collect()
}

#[test]
fn single_contact_bound_to_its_connection() {
    let r = reg();
    let now = Instant::now();
    let m = register(
        ALICE,
        &["<sip:a1@h.invalid;transport=ws>"],
        Some(600),
        "c1",
        1,
    );
    let rep = r.save(&m, flow(7), now).unwrap();
    assert_eq!(
        rep.contacts,
        vec!["<sip:a1@h.invalid;transport=ws>;expires=600"]
    );
    let b = r.lookup("alice@example.com", now);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].flow.conn_id, 7);
    assert_eq!(b[0].user_agent.as_deref(), Some("test-ua"));
    assert_eq!((r.len(), r.contact_count()), (1, 1));
}

#[test]
fn several_contacts_expires_header_and_param() {
    let r = reg();
    let now = Instant::now();
    let m = register(
        ALICE,
        &["<sip:a1@h1>;expires=120, <sip:a2@h2>", "<sip:a3@h3>;q=0.5"],
        Some(300),
        "c1",
        1,
    );
    let rep = r.save(&m, flow(1), now).unwrap();
    assert_eq!(rep.contacts.len(), 3);
    let by_uri = |u: &str| {
        r.lookup("alice@example.com", now)
            .into_iter()
            .find(|b| b.uri == u)
            .unwrap()
            .remaining(now)
    };
    assert_eq!(by_uri("sip:a1@h1"), 120);
    assert_eq!(by_uri("sip:a2@h2"), 300);
    // q ordering: the two q=1 (absent) first, most recent first (same instant here), q=0.5 last.
    assert_eq!(
        uris(&r, "alice@example.com", now).last().unwrap(),
        "sip:a3@h3"
    );
}

#[test]
fn default_and_max_expires() {
    let r = Registrar::new(RegistrarConfig {
        default_expires: 900,
        max_expires: 1000,
        ..RegistrarConfig::default()
    });
    let now = Instant::now();
    r.save(&register(ALICE, &["<sip:a@h>"], None, "c", 1), flow(1), now)
        .unwrap();
    assert_eq!(r.lookup("alice@example.com", now)[0].remaining(now), 900);
    r.save(
        &register(ALICE, &["<sip:a@h>;expires=99999"], None, "c", 2),
        flow(1),
        now,
    )
    .unwrap();
    assert_eq!(r.lookup("alice@example.com", now)[0].remaining(now), 1000);
}

#[test]
fn zero_removes_and_wildcard_removes_all() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a1@h>", "<sip:a2@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    let rep = r
        .save(
            &register(ALICE, &["<sip:a1@h>;expires=0"], None, "c", 2),
            flow(1),
            now,
        )
        .unwrap();
    assert_eq!(rep.contacts, vec!["<sip:a2@h>;expires=600"]);
    let rep = r
        .save(&register(ALICE, &["*"], Some(0), "c", 3), flow(1), now)
        .unwrap();
    assert!(rep.contacts.is_empty());
    assert!(r.is_empty());
    assert_eq!(r.remove_flow(1), 0, "index cleaned");
}

#[test]
fn wildcard_rules() {
    let r = reg();
    let now = Instant::now();
    let e = r.save(
        &register(ALICE, &["*", "<sip:a@h>"], Some(0), "c", 1),
        flow(1),
        now,
    );
    assert_eq!(e, Err(RegError::BadWildcard));
    let e = r.save(&register(ALICE, &["*"], None, "c", 1), flow(1), now);
    assert_eq!(e, Err(RegError::BadWildcard));
    let e = r.save(&register(ALICE, &["*"], Some(60), "c", 1), flow(1), now);
    assert_eq!(e.unwrap_err().status(), (400, "Bad Request"));
}

#[test]
fn interval_too_brief() {
    let r = reg();
    let now = Instant::now();
    let e = r
        .save(
            &register(ALICE, &["<sip:a@h>;expires=30"], None, "c", 1),
            flow(1),
            now,
        )
        .unwrap_err();
    assert_eq!(e.status(), (423, "Interval Too Brief"));
    assert_eq!(e.extra_headers(), vec![("Min-Expires", "60".to_string())]);
    assert!(r.is_empty());
}

#[test]
fn out_of_order_cseq_changes_nothing_and_new_call_id_replaces() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(600), "c1", 5),
        flow(1),
        now,
    )
    .unwrap();
    let later = now + Duration::from_secs(10);
    let e = r.save(
        &register(ALICE, &["<sip:a@h>"], Some(100), "c1", 5),
        flow(1),
        later,
    );
    assert_eq!(e, Err(RegError::OutOfOrder { got: 5, stored: 5 }));
    assert_eq!(e.unwrap_err().status().0, 500);
    assert_eq!(
        r.lookup("alice@example.com", later)[0].remaining(later),
        590
    );
    // A different Call-ID (the UA restarted) replaces the binding whatever its CSeq.
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(100), "c2", 1),
        flow(2),
        later,
    )
    .unwrap();
    let b = r.lookup("alice@example.com", later);
    assert_eq!(
        (b.len(), b[0].remaining(later), b[0].flow.conn_id),
        (1, 100, 2)
    );
    assert_eq!(r.remove_flow(1), 0, "the old connection no longer holds it");
    assert_eq!(r.remove_flow(2), 1);
}

#[test]
fn instance_and_reg_id_replace_the_old_flow() {
    let r = reg();
    let now = Instant::now();
    let jssip = |user: &str| {
        format!("<sip:{user}@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=600")
    };
    let rep = r
        .save(
            &register(ALICE, &[&jssip("u1")], None, "c1", 1),
            flow(1),
            now,
        )
        .unwrap();
    assert_eq!(
        rep.contacts,
        vec!["<sip:u1@df7jal23ls0d.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=600"]
    );
    // The browser reconnected: new connection, new contact user, same instance and reg-id.
    r.save(
        &register(ALICE, &[&jssip("u2")], None, "c2", 1),
        flow(2),
        now,
    )
    .unwrap();
    let b = r.lookup("alice@example.com", now);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].uri, "sip:u2@df7jal23ls0d.invalid;transport=ws");
    assert_eq!(
        b[0].instance.as_deref(),
        Some("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>")
    );
    assert_eq!(b[0].reg_id, Some(1));
    assert_eq!(b[0].flow.conn_id, 2);
}

#[test]
fn sipjs_style_register() {
    let r = reg();
    let now = Instant::now();
    let c = "<sip:k2mv8l7u@xyz.invalid;transport=ws>;expires=600";
    let rep = r
        .save(
            &register("sip:bob@example.com", &[c], None, "s1", 1),
            flow(3),
            now,
        )
        .unwrap();
    assert_eq!(rep.contacts, vec![c.to_string()]);
}

#[test]
fn remove_flow_drops_only_that_connection() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a1@h>"], Some(600), "c1", 1),
        flow(1),
        now,
    )
    .unwrap();
    r.save(
        &register(ALICE, &["<sip:a2@h>"], Some(600), "c2", 1),
        flow(2),
        now,
    )
    .unwrap();
    r.save(
        &register("sip:bob@example.com", &["<sip:b@h>"], Some(600), "c3", 1),
        flow(1),
        now,
    )
    .unwrap();
    assert_eq!(r.remove_flow(1), 2);
    assert_eq!(uris(&r, "alice@example.com", now), vec!["sip:a2@h"]);
    assert!(r.lookup("bob@example.com", now).is_empty());
    assert_eq!(r.len(), 1);
    assert_eq!(r.remove_flow(1), 0);
}

#[test]
fn expiry_hides_then_sweeps() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(
            ALICE,
            &["<sip:a1@h>;expires=60", "<sip:a2@h>;expires=120"],
            None,
            "c",
            1,
        ),
        flow(4),
        now,
    )
    .unwrap();
    let t = now + Duration::from_secs(61);
    assert_eq!(uris(&r, "alice@example.com", t), vec!["sip:a2@h"]);
    assert_eq!(r.contact_count(), 2, "not swept yet");
    assert_eq!(r.expire(t), 1);
    assert_eq!(r.contact_count(), 1);
    assert_eq!(r.expire(now + Duration::from_secs(121)), 1);
    assert!(r.is_empty());
    assert_eq!(r.remove_flow(4), 0, "index cleaned by the sweep");
}

#[test]
fn query_changes_nothing() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    let rep = r
        .save(&register(ALICE, &[], None, "c", 2), flow(9), now)
        .unwrap();
    assert_eq!(rep.contacts, vec!["<sip:a@h>;expires=600"]);
    assert_eq!(r.lookup("alice@example.com", now)[0].flow.conn_id, 1);
}

#[test]
fn bad_requests() {
    let r = reg();
    let now = Instant::now();
    let e = r.save(
        &register("tel:+15551234", &["<sip:a@h>"], None, "c", 1),
        flow(1),
        now,
    );
    assert_eq!(e.unwrap_err().status(), (416, "Unsupported URI Scheme"));
    let e = r.save(
        &register(ALICE, &["<sip:a@h>;q=1.5"], None, "c", 1),
        flow(1),
        now,
    );
    assert_eq!(e, Err(RegError::BadQ("1.5".into())));
    let e = r.save(
        &register(ALICE, &["<sip:a@h>;expires=soon"], None, "c", 1),
        flow(1),
        now,
    );
    assert_eq!(e, Err(RegError::Malformed("Contact expires")));
    assert!(r.is_empty());
}

#[test]
fn max_contacts() {
    let r = Registrar::new(RegistrarConfig {
        max_contacts: 1,
        ..RegistrarConfig::default()
    });
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a1@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    let e = r.save(
        &register(ALICE, &["<sip:a2@h>"], Some(600), "c", 2),
        flow(1),
        now,
    );
    assert_eq!(e.unwrap_err().status(), (503, "Service Unavailable"));
    assert_eq!(uris(&r, "alice@example.com", now), vec!["sip:a1@h"]);
}

#[test]
fn aor_canonical_form() {
    let u = Uri::parse("sip:%61lice@EXAMPLE.com:5060;transport=ws").unwrap();
    assert_eq!(aor_of(&u).unwrap(), "alice@example.com");
    let u = Uri::parse("sips:example.com").unwrap();
    assert_eq!(aor_of(&u).unwrap(), "example.com");
}

#[test]
fn dump_lists_bindings() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>;q=0.7"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    let d = r.dump(now);
    let c = &d[0]["Contacts"][0];
    assert_eq!(d[0]["AOR"], "alice@example.com");
    assert_eq!(c["Contact"], "sip:a@h");
    assert_eq!(c["Expires"], 600);
    assert_eq!(c["Q"], "0.700");
    assert_eq!(c["Conn"], 1);
    assert_eq!(c["Received"], "ws:192.0.2.1:40001");
    assert_eq!(c["Callid"], "c");
}

/// Found by the `register_seq` fuzz target: a contact registered first without instance and
/// then with the instance and reg-id of another binding is one contact of that instance: the
/// instance's binding takes it and the plain one goes (RFC 5626 §6), never two bindings for
/// one instance.
#[test]
fn instance_binding_wins_over_a_plain_one_of_the_same_uri() {
    let r = reg();
    let now = Instant::now();
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1";
    r.save(
        &register(
            ALICE,
            &[
                "<sip:x@a.invalid;transport=ws>",
                &format!("<sip:y@b.invalid;transport=ws>;{inst}"),
            ],
            Some(600),
            "c1",
            1,
        ),
        flow(1),
        now,
    )
    .unwrap();
    assert_eq!(r.lookup("alice@example.com", now).len(), 2);
    r.save(
        &register(
            ALICE,
            &[&format!("<sip:x@a.invalid;transport=ws>;{inst}")],
            Some(600),
            "c2",
            1,
        ),
        flow(1),
        now,
    )
    .unwrap();
    let b = r.lookup("alice@example.com", now);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].uri, "sip:x@a.invalid;transport=ws");
    assert_eq!(b[0].reg_id, Some(1));
}

/// Found by the `register_seq` fuzz target: an expired binding not yet swept matches nothing.
/// Here its Call-ID and CSeq would otherwise refuse the new REGISTER as out of order (500).
#[test]
fn an_expired_binding_not_yet_swept_matches_nothing() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(60), "c1", 5),
        flow(1),
        now,
    )
    .unwrap();
    let later = now + std::time::Duration::from_secs(61);
    let rep = r
        .save(
            &register(ALICE, &["<sip:a@h>"], Some(60), "c1", 1),
            flow(1),
            later,
        )
        .expect("the expired binding's CSeq no longer counts");
    assert_eq!(rep.contacts.len(), 1);
    assert_eq!(r.lookup("alice@example.com", later).len(), 1);
}

#[test]
fn own_contacts_and_expired_count_follow_every_change() {
    // Two tables sharing one counter: each keeps its own figures (usrloc's
    // `<table>-contacts` and `<table>-expires`).
    let shared = std::sync::Arc::new(Counter::default());
    let ul = UsrlocConfig::default();
    let a = Registrar::with_limits(RegistrarConfig::default(), ul, shared.clone());
    let b = Registrar::with_limits(RegistrarConfig::default(), ul, shared);
    let now = Instant::now();
    let two = ["<sip:a1@h>;expires=60", "<sip:a2@h>;expires=120"];
    a.save(&register(ALICE, &two, None, "c", 1), flow(1), now)
        .unwrap();
    b.save(
        &register(ALICE, &["<sip:b@h>"], Some(600), "d", 1),
        flow(2),
        now,
    )
    .unwrap();
    assert_eq!(
        (a.own_contacts(), b.own_contacts(), a.contact_count()),
        (2, 1, 3)
    );
    // A REGISTER that removes one binding.
    a.save(
        &register(ALICE, &["<sip:a1@h>;expires=0"], None, "c", 2),
        flow(1),
        now,
    )
    .unwrap();
    assert_eq!(a.own_contacts(), 1);
    assert_eq!(a.expire(now + Duration::from_secs(121)), 1);
    assert_eq!((a.own_contacts(), a.expired_total()), (0, 1));
    assert_eq!(b.remove_flow(2), 1);
    assert_eq!((b.own_contacts(), b.expired_total()), (0, 0));
}
