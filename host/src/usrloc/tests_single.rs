//! The one-contact path (`single`) against the general one (`aor::apply`): the same random
//! REGISTERs applied to two tables, one of them forced through the general path, must give
//! the same answers, bindings, counters and connection index at every step.
use super::tests::{flow, register};
use super::*;
use std::sync::Arc;

/// xorshift64*: a fixed sequence, so that a failure is reproduced by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// A contact of a small set, so that requests meet stored bindings often: two URIs (one in
/// two spellings of the same key), with or without instance and reg-id, an expires param or
/// not (0 among them).
fn contact(rng: &mut Rng) -> String {
    let uri = rng.pick(&[
        "<sip:a@h1.invalid;transport=ws>",
        "<sip:a@H1.invalid;transport=WS>",
        "<sip:b@h2.invalid;transport=ws>",
    ]);
    let ids = rng.pick(&[
        "",
        ";+sip.instance=\"<urn:uuid:1>\";reg-id=1",
        ";+sip.instance=\"<urn:uuid:1>\";reg-id=2",
        ";+sip.instance=\"<urn:uuid:2>\";reg-id=1",
        ";+sip.instance=\"<urn:uuid:1>\"",
    ]);
    let q = rng.pick(&["", ";q=0.5"]);
    let exp = rng.pick(&["", "", ";expires=300", ";expires=0", ";expires=7200"]);
    format!("{uri}{ids}{q}{exp}")
}

fn same_state(a: &Registrar, b: &Registrar, aors: &[&str], now: Instant, step: usize) {
    assert_eq!(a.dump(now), b.dump(now), "step {step}");
    assert_eq!(a.len(), b.len(), "step {step}");
    assert_eq!(a.contact_count(), b.contact_count(), "step {step}");
    assert_eq!(a.own_contacts(), b.own_contacts(), "step {step}");
    for aor in aors {
        assert_eq!(a.lookup(aor, now), b.lookup(aor, now), "step {step}");
    }
    for conn in 0..4 {
        assert_eq!(a.holds_flow(conn), b.holds_flow(conn), "step {step}");
    }
}

#[test]
fn one_contact_path_matches_the_general_path() {
    let cfg = RegistrarConfig {
        max_contacts: 3,
        ..RegistrarConfig::default()
    };
    let ul = UsrlocConfig {
        hash_size: 2,
        max_registrations: 5,
    };
    let mut singles = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let fast = Registrar::with_limits(cfg, ul, Arc::default());
        let slow = Registrar::with_limits(cfg, ul, Arc::default()).general_only();
        let aors = ["alice@example.com", "bob@example.com"];
        let mut now = Instant::now();
        let mut cseq: u32 = 1;
        for step in 0..120 {
            let aor = rng.pick(&aors);
            let n = rng.pick(&[1, 1, 1, 1, 1, 2, 0]);
            let cs: Vec<String> = (0..n).map(|_| contact(&mut rng)).collect();
            let cs: Vec<&str> = cs.iter().map(String::as_str).collect();
            let expires = rng.pick(&[None, Some(600), Some(120)]);
            let call_id = rng.pick(&["c1", "c2"]);
            // Mostly ascending, sometimes the same or an older CSeq (refused for the same
            // Call-ID).
            cseq = rng.pick(&[cseq + 1, cseq + 1, cseq, cseq.saturating_sub(1)]);
            let m = register(&format!("sip:{aor}"), &cs, expires, call_id, cseq);
            let f = flow(rng.pick(&[1, 2, 3]));
            singles += usize::from(n == 1);
            let got = fast.save(&m, f, now);
            let want = slow.save(&m, f, now);
            assert_eq!(got, want, "seed {seed} step {step}: {cs:?}");
            if rng.next().is_multiple_of(16) {
                // Bindings learnt from another node: the one-contact path must leave them
                // alone and count them.
                let mut b = fast.lookup(aor, now).into_iter().next();
                if let Some(b) = b.as_mut() {
                    b.node = Some(Arc::from("n2"));
                    b.uri.push_str(";n2");
                    b.key.push_str(";n2");
                    let list = vec![b.clone()];
                    assert_eq!(
                        fast.set_remote(aor, "n2", list.clone(), now),
                        slow.set_remote(aor, "n2", list, now)
                    );
                }
            }
            // Time passes, now and then past some expiries, and the sweep runs only sometimes
            // (expired bindings wait in the table).
            now += Duration::from_secs(rng.pick(&[1, 1, 30, 150, 400]));
            if rng.next().is_multiple_of(4) {
                assert_eq!(fast.expire(now), slow.expire(now));
            }
            same_state(&fast, &slow, &aors, now, step);
        }
    }
    assert!(singles > 4000, "{singles}");
}
