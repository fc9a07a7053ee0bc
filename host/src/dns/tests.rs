use super::cache::Cache;
use super::records::{Kind, Naptr, Records, Srv};
use super::select::{locate, order_naptr, order_srv, Ctx, Request, Target};
use super::DnsError;
use sipcore_abi::Proto;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn ctx(protos: &[(Proto, u16)]) -> Ctx {
    Ctx {
        usable: protos.to_vec(),
        other_ports: vec![],
        try_naptr: true,
    }
}

fn naptr(order: u16, pref: u16, services: &str, repl: &str) -> Naptr {
    Naptr {
        order,
        preference: pref,
        flags: "S".into(),
        services: services.into(),
        replacement: repl.into(),
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
    Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

/// A zone in memory; records every query made.
#[derive(Default)]
struct Zone {
    records: HashMap<(String, Kind), Records>,
    asked: Vec<(String, Kind)>,
}

impl Zone {
    fn add(mut self, name: &str, kind: Kind, r: Records) -> Zone {
        self.records.insert((name.into(), kind), r);
        self
    }

    fn locate(&mut self, uri: &str, ctx: &Ctx) -> Result<Vec<Target>, DnsError> {
        let req = Request::from_uri(uri)?;
        let mut fetch = |name: &str, kind: Kind| {
            self.asked.push((name.to_string(), kind));
            Ok(self
                .records
                .get(&(name.to_string(), kind))
                .cloned()
                .unwrap_or_else(|| Records::empty(kind)))
        };
        locate(&req, ctx, &mut fetch, &mut |_| 0)
    }
}

fn t(proto: Proto, addr: &str) -> Target {
    Target {
        proto,
        addr: addr.parse().unwrap(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn uri_to_request() {
    let r = Request::from_uri("sips:Bob@Example.COM.;transport=ws").unwrap();
    assert_eq!(r.host, "example.com");
    assert_eq!(r.transport, Some(Proto::WSS));
    assert!(r.secure);
    let r = Request::from_uri("sip:a@h.test;maddr=10.0.0.1").unwrap();
    assert_eq!(r.ip(), Some(ip("10.0.0.1")));
    let r = Request::from_uri("sip:[::1]:5070").unwrap();
    assert_eq!((r.ip(), r.port), (Some(ip("::1")), Some(5070)));
    assert!(matches!(
        Request::from_uri("sip:h;transport=carrier-pigeon"),
        Err(DnsError::UnknownTransport(..))
    ));
    assert!(matches!(
        Request::from_uri("tel:+123"),
        Err(DnsError::BadUri(..))
    ));
}

#[test]
fn ip_literal_needs_no_lookup() {
    let mut z = Zone::default();
    let c = ctx(&[(Proto::WS, 80)]);
    assert_eq!(
        z.locate("sip:10.1.2.3;transport=ws", &c).unwrap(),
        vec![t(Proto::WS, "10.1.2.3:80")]
    );
    assert_eq!(
        z.locate("sip:10.1.2.3:5080", &c).unwrap(),
        vec![t(Proto::UDP, "10.1.2.3:5080")]
    );
    assert!(z.asked.is_empty());
}

#[test]
fn explicit_port_skips_naptr_and_srv() {
    let mut z = Zone::default().add("h.test", Kind::A, Records::Addrs(vec![ip("10.0.0.7")]));
    let c = ctx(&[(Proto::UDP, 5060), (Proto::WS, 80)]);
    assert_eq!(
        z.locate("sip:h.test:5099;transport=ws", &c).unwrap(),
        vec![t(Proto::WS, "10.0.0.7:5099")]
    );
    assert_eq!(z.asked, vec![("h.test".into(), Kind::A)]);
}

#[test]
fn transport_given_uses_its_srv_rfc7118_section_7() {
    let mut z = Zone::default()
        .add(
            "_sip._ws.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(10, 0, 8443, "ws1.svc.test")]),
        )
        .add("ws1.svc.test", Kind::Aaaa, Records::Addrs(vec![ip("::2")]));
    let c = ctx(&[(Proto::WS, 80)]);
    assert_eq!(
        z.locate("sip:svc.test;transport=ws", &c).unwrap(),
        vec![t(Proto::WS, "[::2]:8443")]
    );
    // No A record: AAAA was asked next.
    assert_eq!(
        z.asked[1..],
        [
            ("ws1.svc.test".into(), Kind::A),
            ("ws1.svc.test".into(), Kind::Aaaa)
        ]
    );
    // sips + ws = wss: _sips._ws.
    let mut z = Zone::default();
    let _ = z.locate("sips:svc.test;transport=ws", &c);
    assert_eq!(z.asked[0], ("_sips._ws.svc.test".into(), Kind::Srv));
}

#[test]
fn transport_given_without_srv_falls_back_to_host_on_default_port() {
    let mut z = Zone::default().add("h.test", Kind::A, Records::Addrs(vec![ip("10.0.0.8")]));
    let c = ctx(&[(Proto::WS, 8080)]);
    assert_eq!(
        z.locate("sip:h.test;transport=ws", &c).unwrap(),
        vec![t(Proto::WS, "10.0.0.8:8080")]
    );
}

#[test]
fn naptr_picks_a_supported_service_by_order_then_preference() {
    let mut z = Zone::default()
        .add(
            "svc.test",
            Kind::Naptr,
            Records::Naptr(vec![
                naptr(10, 50, "SIP+D2U", "_sip._udp.svc.test"),
                naptr(20, 10, "SIP+D2W", "_sip._ws.svc.test"),
                naptr(10, 60, "SIPS+D2W", "_sips._ws.svc.test"),
            ]),
        )
        .add(
            "_sip._ws.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(0, 0, 9001, "a.svc.test")]),
        )
        .add("a.svc.test", Kind::A, Records::Addrs(vec![ip("127.0.0.9")]));
    // Only ws is served here: the UDP and WSS records are skipped.
    let c = ctx(&[(Proto::WS, 80)]);
    assert_eq!(
        z.locate("sip:user@svc.test", &c).unwrap(),
        vec![t(Proto::WS, "127.0.0.9:9001")]
    );
    let order = order_naptr(
        &[
            naptr(20, 10, "SIP+D2W", "w"),
            naptr(10, 60, "SIPS+D2W", "s"),
            naptr(10, 50, "SIP+D2U", "u"),
            naptr(5, 1, "E2U+sip", "x"),
        ],
        &[Proto::UDP, Proto::WS, Proto::WSS],
    );
    assert_eq!(
        order,
        vec![
            (Proto::UDP, "u".into()),
            (Proto::WSS, "s".into()),
            (Proto::WS, "w".into())
        ]
    );
}

#[test]
fn sips_uri_only_takes_tls_transports() {
    let mut z = Zone::default()
        .add(
            "svc.test",
            Kind::Naptr,
            Records::Naptr(vec![
                naptr(1, 1, "SIP+D2W", "_sip._ws.svc.test"),
                naptr(2, 1, "SIPS+D2W", "_sips._ws.svc.test"),
            ]),
        )
        .add(
            "_sip._ws.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(0, 0, 80, "plain.svc.test")]),
        )
        .add(
            "_sips._ws.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(0, 0, 443, "tls.svc.test")]),
        )
        .add(
            "plain.svc.test",
            Kind::A,
            Records::Addrs(vec![ip("10.0.0.1")]),
        )
        .add(
            "tls.svc.test",
            Kind::A,
            Records::Addrs(vec![ip("10.0.0.2")]),
        );
    let c = ctx(&[(Proto::WS, 80), (Proto::WSS, 443)]);
    assert_eq!(
        z.locate("sips:svc.test", &c).unwrap(),
        vec![t(Proto::WSS, "10.0.0.2:443")]
    );
    assert_eq!(
        z.locate("sip:svc.test", &c).unwrap(),
        vec![t(Proto::WS, "10.0.0.1:80")]
    );
}

#[test]
fn without_naptr_srv_per_transport_then_a_record() {
    let mut z = Zone::default()
        .add(
            "_sip._tcp.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(0, 0, 5070, "t.svc.test")]),
        )
        .add("t.svc.test", Kind::A, Records::Addrs(vec![ip("10.0.0.3")]))
        .add("plain.test", Kind::A, Records::Addrs(vec![ip("10.0.0.4")]));
    let c = ctx(&[(Proto::UDP, 5060), (Proto::TCP, 5060)]);
    assert_eq!(
        z.locate("sip:svc.test", &c).unwrap(),
        vec![t(Proto::TCP, "10.0.0.3:5070")]
    );
    assert_eq!(
        z.locate("sip:plain.test", &c).unwrap(),
        vec![t(Proto::UDP, "10.0.0.4:5060")]
    );
    // dns_try_naptr = no: no NAPTR query.
    let mut z = Zone::default();
    let mut c = ctx(&[(Proto::WS, 80)]);
    c.try_naptr = false;
    assert!(matches!(
        z.locate("sip:none.test", &c),
        Err(DnsError::NotFound(h)) if h == "none.test"
    ));
    assert!(
        z.asked.iter().all(|(_, k)| *k != Kind::Naptr),
        "{:?}",
        z.asked
    );
}

#[test]
fn srv_target_dot_means_no_service() {
    let mut z = Zone::default()
        .add(
            "_sip._ws.svc.test",
            Kind::Srv,
            Records::Srv(vec![srv(0, 0, 0, "")]),
        )
        .add("svc.test", Kind::A, Records::Addrs(vec![ip("10.0.0.5")]));
    let c = ctx(&[(Proto::WS, 80)]);
    assert!(matches!(
        z.locate("sip:svc.test;transport=ws", &c),
        Err(DnsError::NotFound(_))
    ));
}

#[test]
fn srv_order_priority_then_weighted_draw_rfc2782() {
    let recs = [
        srv(20, 0, 1, "low"),
        srv(10, 10, 2, "a"),
        srv(10, 30, 3, "b"),
        srv(10, 0, 4, "zero"),
    ];
    let names = |v: Vec<Srv>| v.into_iter().map(|s| s.target).collect::<Vec<_>>();
    // Draw 0 picks the zero-weight record first (running sum 0 >= 0).
    assert_eq!(
        names(order_srv(&recs, &mut |_| 0)),
        ["zero", "a", "b", "low"]
    );
    // Draw n (the total) picks the last of the running sum each time.
    assert_eq!(
        names(order_srv(&recs, &mut |n| n)),
        ["b", "a", "zero", "low"]
    );
    // Draw 11 of 40 falls in b's share (running sums 0, 10, 40).
    let mut first = true;
    let got = names(order_srv(&recs, &mut |n| {
        if std::mem::take(&mut first) {
            assert_eq!(n, 40);
            11
        } else {
            0
        }
    }));
    assert_eq!(got, ["b", "zero", "a", "low"]);
}

/// RFC 3263 §4.3: every SRV target's addresses, in RFC 2782 order, up to the bound, for
/// failing over; a target without addresses is skipped, and an error after the first target
/// with addresses ends the list instead of failing the lookup.
#[test]
fn srv_lists_every_target_in_order_for_failover() {
    let records: Vec<Srv> = (0..8)
        .map(|i| srv(10 + i, 0, 5000 + i, &format!("h{i}.fo.test")))
        .collect();
    let mut z = Zone::default().add("_sip._ws.fo.test", Kind::Srv, Records::Srv(records));
    for i in [0u16, 2, 3, 4, 5, 6, 7] {
        z = z.add(
            &format!("h{i}.fo.test"),
            Kind::A,
            Records::Addrs(vec![ip(&format!("192.0.2.{i}"))]),
        );
    }
    let c = ctx(&[(Proto::WS, 80)]);
    let got = z.locate("sip:fo.test;transport=ws", &c).unwrap();
    // h1 has no address; h0 and then MAX_SRV_TARGETS more.
    let want: Vec<Target> = [0u16, 2, 3, 4, 5]
        .iter()
        .map(|i| t(Proto::WS, &format!("192.0.2.{i}:{}", 5000 + i)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(want.len(), 1 + super::select::MAX_SRV_TARGETS);

    // A failing lookup after the first target: the list ends there.
    let req = Request::from_uri("sip:fo.test;transport=ws").unwrap();
    let mut fetch = |name: &str, kind: Kind| match (name, kind) {
        ("_sip._ws.fo.test", Kind::Srv) => Ok(Records::Srv(vec![
            srv(1, 0, 1, "a.fo.test"),
            srv(2, 0, 2, "b.fo.test"),
        ])),
        ("a.fo.test", Kind::A) => Ok(Records::Addrs(vec![ip("192.0.2.1")])),
        _ => Err(DnsError::Miss),
    };
    assert_eq!(
        locate(&req, &c, &mut fetch, &mut |_| 0),
        Ok(vec![t(Proto::WS, "192.0.2.1:1")])
    );
}

#[test]
fn fetch_errors_stop_the_procedure() {
    let req = Request::from_uri("sip:x.test;transport=ws").unwrap();
    let c = ctx(&[(Proto::WS, 80)]);
    let r = locate(&req, &c, &mut |_, _| Err(DnsError::Miss), &mut |_| 0);
    assert_eq!(r, Err(DnsError::Miss));
}

#[test]
fn cache_ttls_negative_answers_and_bound() {
    let now = Instant::now();
    let mut c = Cache::new(2);
    let a = Records::Addrs(vec![ip("10.0.0.1")]);
    c.put("A.test.", Kind::A, a.clone(), Duration::from_secs(10), now);
    assert_eq!(c.get("a.test", Kind::A, now), Some(a.clone()));
    assert_eq!(c.get("a.test", Kind::Aaaa, now), None);
    assert_eq!(
        c.get("a.test", Kind::A, now + Duration::from_secs(10)),
        None
    );
    // Negative answer cached like any other.
    c.put(
        "n.test",
        Kind::Srv,
        Records::empty(Kind::Srv),
        Duration::from_secs(5),
        now,
    );
    assert_eq!(c.get("n.test", Kind::Srv, now), Some(Records::Srv(vec![])));
    // Full: the entry that expires soonest goes.
    c.put("b.test", Kind::A, a.clone(), Duration::from_secs(60), now);
    assert_eq!(c.len(), 2);
    assert_eq!(c.get("n.test", Kind::Srv, now), None);
    assert!(c.get("a.test", Kind::A, now).is_some());
    // Zero TTL: not kept.
    c.put("z.test", Kind::A, a, Duration::ZERO, now);
    assert_eq!(c.get("z.test", Kind::A, now), None);
}
