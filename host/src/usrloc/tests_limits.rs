//! Limits and the sharded table: `max_contacts`, `max_request_contacts`, `max_registrations`,
//! overlarge expiries, many contacts in one request, concurrent use.
use super::tests::{flow, reg, register, uris, ALICE};
use super::*;
use crate::sip::Message;
use std::sync::Arc;

/// `n` contacts `<sip:cI@h>`, 100 per Contact header line.
fn many(n: usize) -> Vec<String> {
    let all: Vec<String> = (0..n).map(|i| format!("<sip:c{i}@h>")).collect();
    all.chunks(100).map(|c| c.join(", ")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn max_contacts_defaults_to_ten_per_aor() {
    let r = reg();
    let now = Instant::now();
    for i in 0..10 {
        let c = format!("<sip:c{i}@h>");
        r.save(&register(ALICE, &[&c], Some(600), "c", i + 1), flow(1), now)
            .unwrap();
    }
    let e = r
        .save(
            &register(ALICE, &["<sip:x@h>"], Some(600), "c", 20),
            flow(1),
            now,
        )
        .unwrap_err();
    assert_eq!(e, RegError::TooManyContacts(10));
    assert_eq!(e.status(), (503, "Service Unavailable"));
    assert_eq!(
        e.extra_headers(),
        vec![(
            "P-Registrar-Error",
            "too many registered contacts for this AoR (max_contacts 10)".to_string()
        )]
    );
    assert_eq!(r.lookup("alice@example.com", now).len(), 10);
    // Refreshing one of the ten is still fine, and another AoR is unaffected.
    r.save(
        &register(ALICE, &["<sip:c3@h>"], Some(900), "c", 21),
        flow(1),
        now,
    )
    .unwrap();
    r.save(
        &register("sip:bob@example.com", &["<sip:b@h>"], Some(600), "b", 1),
        flow(2),
        now,
    )
    .unwrap();
    assert_eq!(r.contact_count(), 11);
}

#[test]
fn too_many_contacts_in_one_request_is_refused_before_any_work() {
    let r = reg();
    let now = Instant::now();
    let all = many(33);
    let e = r
        .save(
            &register(ALICE, &refs(&all), Some(600), "c", 1),
            flow(1),
            now,
        )
        .unwrap_err();
    assert_eq!(e, RegError::TooManyInRequest(32));
    assert_eq!(e.status(), (403, "Forbidden"));
    assert!(r.is_empty());
    // The limit counts values, however they are spread over Contact headers.
    let (a, b) = (many(16), many(17));
    let e = r.save(
        &register(ALICE, &[&a[0], &b[0]], Some(600), "c", 2),
        flow(1),
        now,
    );
    assert_eq!(e, Err(RegError::TooManyInRequest(32)));
}

#[test]
fn fifteen_hundred_contacts_when_the_limits_allow_it() {
    let cfg = RegistrarConfig {
        max_contacts: 2000,
        max_request_contacts: 2000,
        ..RegistrarConfig::default()
    };
    let r = Registrar::new(cfg);
    let now = Instant::now();
    let rep = r
        .save(
            &register(ALICE, &refs(&many(1500)), Some(600), "c", 1),
            flow(1),
            now,
        )
        .unwrap();
    assert_eq!(rep.contacts.len(), 1500);
    // The same 1,500 again (a refresh) replace themselves; 10 removed by expires=0.
    let gone: Vec<String> = (0..10).map(|i| format!("<sip:c{i}@h>;expires=0")).collect();
    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
    r.save(
        &register(ALICE, &refs(&many(1500)), Some(600), "c", 2),
        flow(1),
        now,
    )
    .unwrap();
    let rep = r
        .save(&register(ALICE, &gone, None, "c", 3), flow(1), now)
        .unwrap();
    assert_eq!(rep.contacts.len(), 1490);
    assert_eq!(r.contact_count(), 1490);
    assert_eq!(r.remove_flow(1), 1490);
    assert_eq!((r.len(), r.contact_count()), (0, 0));
}

#[test]
fn max_registrations_is_shared_by_every_table() {
    let count = Arc::new(Counter::default());
    let ul = UsrlocConfig {
        hash_size: 2,
        max_registrations: 3,
    };
    let a = Registrar::with_limits(RegistrarConfig::default(), ul, count.clone());
    let b = Registrar::with_limits(RegistrarConfig::default(), ul, count.clone());
    let now = Instant::now();
    let to = |u: &str| format!("sip:{u}@example.com");
    a.save(
        &register(&to("u1"), &["<sip:1@h>", "<sip:2@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    b.save(
        &register(&to("u2"), &["<sip:3@h>"], Some(600), "c", 1),
        flow(2),
        now,
    )
    .unwrap();
    let e = b
        .save(
            &register(&to("u3"), &["<sip:4@h>"], Some(600), "c", 1),
            flow(3),
            now,
        )
        .unwrap_err();
    assert_eq!(e, RegError::Full(3));
    assert_eq!(e.status(), (503, "Service Unavailable"));
    assert!(e
        .extra_headers()
        .contains(&("Retry-After", "60".to_string())));
    assert!(b.lookup("u3@example.com", now).is_empty());
    // A refresh that adds nothing still works when full.
    a.save(
        &register(&to("u1"), &["<sip:1@h>"], Some(900), "c", 2),
        flow(1),
        now,
    )
    .unwrap();
    // Room comes back when bindings go: by removal, by connection close, by expiry.
    a.save(
        &register(&to("u1"), &["<sip:2@h>;expires=0"], None, "c", 3),
        flow(1),
        now,
    )
    .unwrap();
    assert_eq!(count.get(), 2);
    b.save(
        &register(&to("u3"), &["<sip:4@h>"], Some(60), "c", 1),
        flow(3),
        now,
    )
    .unwrap();
    assert_eq!(count.get(), 3);
    assert_eq!(b.remove_flow(2), 1);
    assert_eq!(b.expire(now + Duration::from_secs(61)), 1);
    assert_eq!(count.get(), 1);
    assert_eq!((a.len(), b.len()), (1, 0));
}

/// RFC 3261 §10.3 / RFC 4475 §3.1.2.4: 2^32 in the Contact's `expires` and in the Expires
/// header get the same answer: treated as absent, so the default, shortened to the maximum.
#[test]
fn overlarge_expires_same_answer_in_contact_and_header() {
    let now = Instant::now();
    let cfg = RegistrarConfig {
        default_expires: 1800,
        max_expires: 3000,
        ..RegistrarConfig::default()
    };
    let in_param = Registrar::new(cfg)
        .save(
            &register(ALICE, &["<sip:a@h>;expires=4294967296"], None, "c", 1),
            flow(1),
            now,
        )
        .unwrap();
    let in_header = Registrar::new(cfg)
        .save(
            &register(ALICE, &["<sip:a@h>"], Some(0), "c", 1).to_string_with_expires("4294967296"),
            flow(1),
            now,
        )
        .unwrap();
    assert_eq!(in_param, in_header);
    assert_eq!(in_param.contacts, vec!["<sip:a@h>;expires=1800"]);
    // 2^32-1 is a number: shortened to max_expires in both places.
    let r = Registrar::new(cfg);
    let rep = r
        .save(
            &register(ALICE, &["<sip:a@h>"], Some(0), "c", 1).to_string_with_expires("4294967295"),
            flow(1),
            now,
        )
        .unwrap();
    assert_eq!(rep.contacts, vec!["<sip:a@h>;expires=3000"]);
    // A non-number is still 400.
    let e = Registrar::new(cfg).save(
        &register(ALICE, &["<sip:a@h>"], Some(0), "c", 1).to_string_with_expires("soon"),
        flow(1),
        now,
    );
    assert_eq!(e, Err(RegError::Malformed("Expires")));
}

/// The test REGISTER with its `Expires: 0` header value replaced by `v`.
trait WithExpires {
    fn to_string_with_expires(&self, v: &str) -> Message;
}

impl WithExpires for Message {
    fn to_string_with_expires(&self, v: &str) -> Message {
        let text = String::from_utf8_lossy(self.as_bytes())
            .replace("Expires: 0\r\n", &format!("Expires: {v}\r\n"));
        Message::parse(bytes::Bytes::from(text)).unwrap()
    }
}

#[test]
fn aors_spread_over_slots_and_threads_share_the_table() {
    let r = Arc::new(Registrar::with_limits(
        RegistrarConfig::default(),
        UsrlocConfig {
            hash_size: 4,
            max_registrations: 0,
        },
        Arc::default(),
    ));
    assert_eq!(r.slot_count(), 16);
    let now = Instant::now();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let to = format!("sip:t{t}u{i}@example.com");
                    r.save(
                        &register(&to, &["<sip:x@h>"], Some(600), "c", 1),
                        flow(t + 1),
                        now,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!((r.len(), r.contact_count()), (1000, 1000));
    let mut out = Vec::new();
    let mut first = true;
    let mut used = 0;
    for i in 0..r.slot_count() {
        let n = r.dump_slot(i, now, true, &mut out, &mut first);
        used += usize::from(n > 0);
    }
    assert!(used > 8, "1000 AoRs in {used} of 16 slots");
    let listed: serde_json::Value =
        serde_json::from_slice(&[b"[".as_slice(), &out, b"]"].concat()).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1000));
    assert_eq!(
        listed[0]["Contacts"][0],
        serde_json::json!({"Contact": "sip:x@h", "Expires": 600})
    );
    assert_eq!(r.remove_flow(2), 250);
    assert_eq!(uris(&r, "t0u7@example.com", now), vec!["sip:x@h"]);
    assert!(r.lookup("t1u7@example.com", now).is_empty());
    assert_eq!(
        r.show("t3u0@example.com", now).unwrap()["AOR"],
        "t3u0@example.com"
    );
    assert_eq!(r.show("t1u0@example.com", now), None);
}
