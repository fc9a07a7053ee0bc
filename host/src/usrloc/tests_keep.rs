//! What keeps a connection open (RFC 5626 §4.4, the registrar's `tcp_persistent`): the
//! `flow_expires` of a save, and `holds_flow`.
use super::tests::{flow, reg, register, ALICE};
use super::*;

const BOB: &str = "sip:bob@example.com";

#[test]
fn flow_expires_is_the_longest_binding_of_the_aor_over_that_connection() {
    let r = reg();
    let now = Instant::now();
    assert!(!r.holds_flow(7));
    let save = |to: &str, c: &str, exp: u32, cid: &str, cseq: u32, conn: u64| {
        r.save(&register(to, &[c], Some(exp), cid, cseq), flow(conn), now)
            .unwrap()
            .flow_expires
    };
    assert_eq!(save(ALICE, "<sip:a@h>", 300, "a", 1, 7), Some(300));
    // Another connection's longer binding of the same AoR does not count for 7.
    assert_eq!(save(ALICE, "<sip:c@h>", 3000, "c", 1, 8), Some(3000));
    assert_eq!(save(ALICE, "<sip:a2@h>", 600, "a", 2, 7), Some(600));
    assert_eq!(save(BOB, "<sip:b@h>", 900, "b", 1, 7), Some(900));
    // A connectionless flow has no connection to keep.
    assert_eq!(save(BOB, "<sip:u@h>", 900, "u", 1, 0), None);
    // Bob's binding over 7 removed: none of Bob's left there, but 7 still holds Alice's.
    assert_eq!(save(BOB, "<sip:b@h>", 0, "b", 2, 7), None);
    assert!(r.holds_flow(7));
    let star = r
        .save(&register(ALICE, &["*"], Some(0), "a", 3), flow(7), now)
        .unwrap();
    assert_eq!(star.flow_expires, None);
    assert!(!r.holds_flow(7), "Contact: * removed every binding");
    assert!(
        !r.holds_flow(8),
        "Contact: * removes the AoR's bindings of every connection"
    );
}
