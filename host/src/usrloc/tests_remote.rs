//! Bindings learnt from the cluster's Redis ([`Registrar::set_remote`]): the limits apply to
//! them, a REGISTER never changes them, and a node's update replaces only its own.
use super::tests::{flow, reg, register, ALICE};
use super::*;
use std::sync::Arc;

fn remote(uri: &str, node: &str, now: Instant, secs: u64) -> Binding {
    Binding {
        uri: uri.into(),
        key: uri_key(uri),
        params: String::new(),
        expires_at: now + Duration::from_secs(secs),
        q: 1000,
        q_given: false,
        call_id: "r".into(),
        cseq: 1,
        flow: Flow {
            conn_id: 0,
            proto: "udp",
            peer: "0.0.0.0:0".parse().unwrap(),
            local: "0.0.0.0:0".parse().unwrap(),
        },
        instance: None,
        reg_id: None,
        user_agent: None,
        path: Some(format!("<sip:t@{node};lr>")),
        updated: now,
        node: Some(Arc::from(node)),
    }
}

#[test]
fn a_node_update_replaces_only_its_own_bindings() {
    let r = reg();
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    let n1 = vec![
        remote("sip:x@n1", "n1", now, 60),
        remote("sip:y@n1", "n1", now, 60),
    ];
    assert_eq!(r.set_remote("alice@example.com", "n1", n1, now), 0);
    assert_eq!(
        r.set_remote(
            "alice@example.com",
            "n2",
            vec![remote("sip:z@n2", "n2", now, 60)],
            now
        ),
        0
    );
    assert_eq!(r.lookup("alice@example.com", now).len(), 4);
    assert_eq!(r.contact_count(), 4);
    assert_eq!(r.local_bindings("alice@example.com", now).len(), 1);
    assert_eq!(r.local_aors(), vec!["alice@example.com".to_string()]);
    // n1 now has one binding; n2's and the local one stay.
    r.set_remote(
        "alice@example.com",
        "n1",
        vec![remote("sip:x@n1", "n1", now, 60)],
        now,
    );
    assert_eq!(r.contact_count(), 3);
    // A REGISTER with `Contact: *` removes the local bindings only.
    let req = register(ALICE, &["*"], Some(0), "c", 2);
    r.save(&req, flow(1), now).unwrap();
    let left: Vec<String> = r
        .lookup("alice@example.com", now)
        .into_iter()
        .map(|b| b.uri)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|u| u != "sip:a@h"));
    assert!(r.local_aors().is_empty());
    // Both nodes gone: the AoR is gone.
    r.set_remote("alice@example.com", "n1", Vec::new(), now);
    r.set_remote("alice@example.com", "n2", Vec::new(), now);
    assert!(r.is_empty());
    assert_eq!(r.contact_count(), 0);
}

#[test]
fn limits_apply_to_learnt_bindings() {
    let cfg = RegistrarConfig {
        max_contacts: 3,
        ..Default::default()
    };
    let count = Arc::new(Counter::default());
    let ul = UsrlocConfig {
        hash_size: 4,
        max_registrations: 5,
    };
    let r = Registrar::with_limits(cfg, ul, count.clone());
    let now = Instant::now();
    r.save(
        &register(ALICE, &["<sip:a@h>"], Some(600), "c", 1),
        flow(1),
        now,
    )
    .unwrap();
    // max_contacts 3: one local, two of the four learnt fit.
    let four: Vec<Binding> = (0..4)
        .map(|i| remote(&format!("sip:{i}@n1"), "n1", now, 60))
        .collect();
    assert_eq!(r.set_remote("alice@example.com", "n1", four, now), 2);
    assert_eq!(r.lookup("alice@example.com", now).len(), 3);
    // A local REGISTER beyond max_contacts (remote ones count) is refused, nothing changes.
    let e = r
        .save(
            &register(ALICE, &["<sip:b@h>"], Some(600), "c", 2),
            flow(1),
            now,
        )
        .unwrap_err();
    assert_eq!(e, RegError::TooManyContacts(3));
    // max_registrations 5 (3 used): of three learnt for bob, two fit.
    let three: Vec<Binding> = (0..3)
        .map(|i| remote(&format!("sip:{i}@n1"), "n1", now, 60))
        .collect();
    assert_eq!(r.set_remote("bob@example.com", "n1", three, now), 1);
    assert_eq!(count.get(), 5);
    // Expired ones are not learnt; learnt ones expire like the others.
    assert_eq!(
        r.set_remote(
            "carol@example.com",
            "n1",
            vec![remote("sip:c@n1", "n1", now, 0)],
            now
        ),
        0
    );
    assert_eq!(r.lookup("carol@example.com", now).len(), 0);
    assert_eq!(r.expire(now + Duration::from_secs(61)), 4);
    assert_eq!(count.get(), 1);
}
