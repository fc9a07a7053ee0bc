use super::*;
use std::net::Ipv4Addr;

fn cfg(unit: u32, density: u32, latency: u32) -> PikeConfig {
    PikeConfig {
        sampling_time_unit: unit,
        reqs_density_per_unit: density,
        remove_latency: latency,
        ..PikeConfig::default()
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn verdict(p: &Pike, ip: IpAddr, now_ms: u64) -> Verdict {
    p.check(ip, now_ms).verdict
}

#[test]
fn defaults_are_opensips_ones() {
    let c = PikeConfig::default();
    assert_eq!(
        (
            c.sampling_time_unit,
            c.reqs_density_per_unit,
            c.remove_latency,
            c.log_level
        ),
        (2, 30, 120, 1)
    );
}

/// Exactly the density passes in every unit, forever; so does any rate under it.
#[test]
fn under_the_density_never_blocked() {
    let p = Pike::new(cfg(1, 20, 120));
    for unit in 0..50u64 {
        for k in 0..20u64 {
            // Spread over the unit, the last one at its final millisecond.
            let t = unit * 1000 + k * 50 + if k == 19 { 49 } else { 0 };
            assert_eq!(verdict(&p, v4(1), t), Verdict::Pass, "unit {unit} req {k}");
        }
    }
    assert!(p.blocked(50_000).is_empty());
}

/// The request after the density, in the same unit, blocks (-2 once, then -1), and
/// another address is unaffected.
#[test]
fn over_the_density_blocked_within_the_unit() {
    let p = Pike::new(cfg(2, 30, 120));
    let t0 = 10_000; // the start of unit 5
    for k in 0..30 {
        assert_eq!(verdict(&p, v4(1), t0 + k), Verdict::Pass);
    }
    assert_eq!(verdict(&p, v4(1), t0 + 30), Verdict::NewlyBlocked);
    assert_eq!(Verdict::NewlyBlocked.code(), -2);
    for k in 31..100 {
        assert_eq!(verdict(&p, v4(1), t0 + k), Verdict::Blocked);
    }
    assert_eq!(Verdict::Blocked.code(), -1);
    assert_eq!(verdict(&p, v4(2), t0 + 100), Verdict::Pass);
    let b = p.blocked(t0 + 100);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].source.to_string(), "192.0.2.1");
    assert_eq!(
        (b[0].hits, b[0].prev_hits, b[0].since_ms),
        (100, 0, t0 + 30)
    );
}

/// Counts do not carry across units: 30 at the end of one unit and 30 at the start of the
/// next pass (OpenSIPS's fixed units, not a sliding window).
#[test]
fn units_are_aligned_on_the_clock() {
    let p = Pike::new(cfg(2, 30, 120));
    for k in 0..30 {
        assert_eq!(verdict(&p, v4(1), 1_990 + k / 10), Verdict::Pass);
    }
    for k in 0..30 {
        assert_eq!(verdict(&p, v4(1), 2_000 + k), Verdict::Pass);
    }
    assert_eq!(verdict(&p, v4(1), 2_100), Verdict::NewlyBlocked);
}

/// Blocked while it keeps exceeding (blocked requests count); released when a unit starts
/// after a whole calm unit, by the sweep (logged once) or by its own next request.
#[test]
fn stays_blocked_while_exceeding_released_after_a_calm_unit() {
    let p = Pike::new(cfg(1, 10, 5));
    // Units 0..10: 50 requests each.
    let mut first = None;
    for unit in 0..10u64 {
        for k in 0..50u64 {
            let v = verdict(&p, v4(1), unit * 1000 + k * 20);
            if v == Verdict::NewlyBlocked {
                assert!(first.is_none());
                first = Some((unit, k));
            }
            if unit > 0 {
                assert_eq!(v, Verdict::Blocked);
            }
        }
        assert!(p.sweep(unit * 1000 + 999).is_empty());
    }
    assert_eq!(first, Some((0, 10)));
    // Unit 10: calm (10 requests, the density). Still blocked: the unit before was hot.
    for k in 0..10u64 {
        assert_eq!(verdict(&p, v4(1), 10_000 + k), Verdict::Blocked);
    }
    assert!(p.sweep(10_999).is_empty());
    assert_eq!(p.blocked(10_999).len(), 1);
    // Unit 11 starts: released by the sweep, once.
    assert_eq!(p.blocked(11_000).len(), 0);
    assert_eq!(p.sweep(11_000), vec![Source::of(v4(1), 128)]);
    assert!(p.sweep(11_001).is_empty());
    assert_eq!(verdict(&p, v4(1), 11_002), Verdict::Pass);

    // Without a sweep, the next request reports the release and passes.
    let p = Pike::new(cfg(1, 10, 5));
    for k in 0..11 {
        p.check(v4(7), k);
    }
    let c = p.check(v4(7), 2_500);
    assert_eq!(c.verdict, Verdict::Pass);
    assert_eq!(c.released, vec![(Source::of(v4(7), 128), Release::Calm)]);
}

/// An address is forgotten remove_latency after its last request, never while blocked; a
/// latency not above the unit is raised to unit + 1 (OpenSIPS).
#[test]
fn forgotten_after_remove_latency() {
    let p = Pike::new(cfg(2, 30, 120));
    p.check(v4(1), 0);
    p.check(v4(1), 5_000);
    p.sweep(124_999);
    assert_eq!(p.tracked(), 1);
    p.sweep(125_000);
    assert_eq!(p.tracked(), 0);

    let p = Pike::new(cfg(2, 1, 1));
    assert_eq!(p.config().remove_latency, 3);
    // Blocked at 3.9 s, silent from then: released first (unit 3 starts at 6 s), then
    // forgotten.
    p.check(v4(1), 3_800);
    assert_eq!(p.check(v4(1), 3_900).verdict, Verdict::NewlyBlocked);
    assert!(p.sweep(5_999).is_empty());
    assert_eq!(p.tracked(), 1);
    assert_eq!(p.sweep(6_000).len(), 1);
    assert_eq!(p.tracked(), 1);
    p.sweep(6_900);
    assert_eq!(p.tracked(), 0);
}

/// The cap holds whatever the number of sources; flooding from new addresses never evicts
/// a blocked one while unblocked ones are there to sample.
#[test]
fn the_cap_holds_and_hot_sources_stay() {
    let p = Pike::new(PikeConfig {
        max_tracked: 320,
        ..cfg(1, 5, 120)
    });
    assert_eq!(p.capacity(), 320);
    for k in 0..6 {
        p.check(v4(1), k);
    }
    assert_eq!(p.blocked(10).len(), 1);
    for n in 0..100_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        assert_eq!(p.check(ip, 100).verdict, Verdict::Pass);
        assert!(p.tracked() <= 320);
    }
    assert_eq!(p.tracked(), 320);
    assert_eq!(p.check(v4(1), 200).verdict, Verdict::Blocked);
}

/// A full shard of blocked sources: the new one still gets tracked (one is evicted and
/// reported released); memory stays bounded.
#[test]
fn a_full_table_of_blocked_sources_evicts_one() {
    let p = Pike::new(PikeConfig {
        max_tracked: 1,
        ..cfg(1, 0, 120)
    });
    assert_eq!(p.capacity(), SHARDS);
    let mut evicted = 0;
    for n in 0..1_000u32 {
        let c = p.check(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)), 5);
        assert_eq!(c.verdict, Verdict::NewlyBlocked);
        evicted += c
            .released
            .iter()
            .filter(|r| r.1 == Release::Evicted)
            .count();
    }
    assert_eq!(p.tracked(), SHARDS);
    assert_eq!(evicted, 1_000 - SHARDS);
}

/// IPv6 per address by default, per prefix with ipv6_prefix; IPv4-mapped is IPv4.
#[test]
fn ipv6_prefixes() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    let s = Source::of(a, 64);
    assert_eq!(s, Source::of(b, 64));
    assert_eq!(s.to_string(), "2001:db8:1:2::/64");
    assert_ne!(Source::of(a, 128), Source::of(b, 128));
    assert_eq!(Source::of(a, 128).to_string(), "2001:db8:1:2:aaaa::1");
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(Source::of(mapped, 64), Source::of(v4(1), 64));

    let p = Pike::new(PikeConfig {
        ipv6_prefix: 64,
        ..cfg(1, 3, 120)
    });
    for (k, last) in [1u16, 2, 3].into_iter().enumerate() {
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        assert_eq!(verdict(&p, ip, k as u64), Verdict::Pass);
    }
    let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
    assert_eq!(verdict(&p, ip, 5), Verdict::NewlyBlocked);
    let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
    assert_eq!(verdict(&p, other, 6), Verdict::Pass);
}

/// pike_rm: unblocks a blocked source; says why not otherwise.
#[test]
fn unblock_by_hand() {
    let p = Pike::new(cfg(1, 1, 120));
    assert_eq!(p.unblock(v4(1), 0), Err(false));
    p.check(v4(1), 0);
    assert_eq!(p.unblock(v4(1), 0), Err(true));
    p.check(v4(1), 1);
    assert_eq!(
        p.unblock(v4(1), 2).map(|s| s.to_string()).as_deref(),
        Ok("192.0.2.1")
    );
    assert!(p.blocked(3).is_empty());
    assert_eq!(verdict(&p, v4(1), 4), Verdict::Pass);
}

/// Several threads at once: every request is counted exactly once.
#[test]
fn concurrent_counting() {
    let p = std::sync::Arc::new(Pike::new(cfg(1000, 4_000, 2000)));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                let mut blocked = 0;
                for k in 0..1_000u64 {
                    if verdict(&p, v4(1), k) != Verdict::Pass {
                        blocked += 1;
                    }
                    p.check(v4((k % 200) as u8 + 2), k);
                }
                blocked
            })
        })
        .collect();
    let blocked: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(blocked, 0, "4,000 requests is the density: all pass");
    assert_eq!(verdict(&p, v4(1), 2_000), Verdict::NewlyBlocked);
    assert_eq!(p.blocked(2_000)[0].hits, 4_001);
}

/// What the README says of the memory per source: a slot and an index entry.
#[test]
fn a_source_is_small() {
    let slot = std::mem::size_of::<Slot>();
    let entry = std::mem::size_of::<(Source, u32)>() + 1;
    assert!(
        slot <= 64 && entry <= 32,
        "slot {slot}, index entry {entry}"
    );
}
