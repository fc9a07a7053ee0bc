//! `flow_expiry`: how long a connection's bindings keep it open (RFC 5626 §4.4, the registrar's
//! `tcp_persistent`).
use super::tests::{flow, reg, register, ALICE};
use super::*;

const BOB: &str = "sip:bob@example.com";

#[test]
fn flow_expiry_is_the_longest_binding_over_that_connection() {
    let r = reg();
    let now = Instant::now();
    assert_eq!(r.flow_expiry(7, now), None);
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(300), "a", 1),
        flow(7),
        now,
    )
    .unwrap();
    r.save(
        &register(BOB, &["<sip:b@h>"], Some(900), "b", 1),
        flow(7),
        now,
    )
    .unwrap();
    // Another connection's longer binding does not count.
    r.save(
        &register(ALICE, &["<sip:c@h>"], Some(3000), "c", 1),
        flow(8),
        now,
    )
    .unwrap();
    let secs = |c: u64, at: Instant| r.flow_expiry(c, at).map(|d| d.as_secs());
    assert_eq!(secs(7, now), Some(900));
    assert_eq!(secs(8, now), Some(3000));
    assert_eq!(secs(0, now), None, "connectionless");
    // Bob removed: Alice's binding over 7 is what is left.
    r.save(
        &register(BOB, &["<sip:b@h>"], Some(0), "b", 2),
        flow(7),
        now,
    )
    .unwrap();
    assert_eq!(secs(7, now), Some(300));
    // Expired bindings do not count, swept or not.
    let later = now + Duration::from_secs(301);
    assert_eq!(secs(7, later), None);
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(0), "a", 2),
        flow(7),
        now,
    )
    .unwrap();
    assert_eq!(secs(7, now), None);
    assert_eq!(secs(8, now), Some(3000));
}
