//! `hep_id` grammar tests: every accepted form, every error with its column.

use super::*;

fn ok(s: &str) -> HepDest {
    match parse_hep_id(s) {
        Ok((d, None)) => d,
        other => panic!("{s:?}: {other:?}"),
    }
}

fn err(s: &str) -> (usize, HepIdErrorKind) {
    match parse_hep_id(s) {
        Err(e) => (e.column, e.kind),
        Ok(d) => panic!("{s:?} parsed: {d:?}"),
    }
}

fn dest(name: &str, host: Host, port: u16, transport: Transport, version: Version) -> HepDest {
    HepDest {
        name: name.to_owned(),
        host,
        port,
        transport,
        version,
    }
}

fn ip(s: &str) -> Host {
    Host::Ip(s.parse().unwrap())
}

#[test]
fn defaults() {
    assert_eq!(
        ok("[hid]10.0.0.1"),
        dest("hid", ip("10.0.0.1"), 9060, Transport::Tcp, Version::V3)
    );
    // HEPv1/v2 default to UDP, silently.
    assert_eq!(ok("[h]10.0.0.1;version=2").transport, Transport::Udp);
    assert_eq!(ok("[h]10.0.0.1;version=1").transport, Transport::Udp);
}

#[test]
fn full_forms() {
    assert_eq!(
        ok("[hep_dst]127.0.0.1:5656;transport=udp;version=3"),
        dest(
            "hep_dst",
            ip("127.0.0.1"),
            5656,
            Transport::Udp,
            Version::V3
        )
    );
    assert_eq!(
        ok("[a.b-c_1]collector.example.com:9061;transport=tls"),
        dest(
            "a.b-c_1",
            Host::Name("collector.example.com".into()),
            9061,
            Transport::Tls,
            Version::V3
        )
    );
    assert_eq!(
        ok("[v6][2001:db8::1]:9062;version=2;transport=udp;"),
        dest("v6", ip("2001:db8::1"), 9062, Transport::Udp, Version::V2)
    );
    assert_eq!(ok("[v6][::1]").host, ip("::1"));
    assert_eq!(ok("[n]homer.").host, Host::Name("homer.".into()));
    assert_eq!(ok("[n]localhost").host, Host::Name("localhost".into()));
}

#[test]
fn spaces_everywhere_and_case_insensitive_values() {
    assert_eq!(
        ok(" \t[ hid ]  10.0.0.1 : 9061 ; transport = UDP ; version = 3 ; \t"),
        dest("hid", ip("10.0.0.1"), 9061, Transport::Udp, Version::V3)
    );
    assert_eq!(ok("[x]h;transport=Tcp").transport, Transport::Tcp);
    assert_eq!(ok("[x]h;transport=TLS").transport, Transport::Tls);
    assert_eq!(ok("[x] [::1] :1").port, 1);
}

#[test]
fn v1_v2_over_stream_warns_and_forces_udp() {
    let (d, w) = parse_hep_id("[h]1.2.3.4;transport=tcp;version=2").unwrap();
    assert_eq!(d.transport, Transport::Udp);
    assert_eq!(
        w,
        Some(Warning::ForcedUdp {
            version: Version::V2,
            requested: Transport::Tcp
        })
    );
    assert_eq!(
        w.unwrap().to_string(),
        "HEPv2 can only be sent over UDP: transport=tcp ignored, using udp"
    );
    let (d, w) = parse_hep_id("[h]1.2.3.4;version=1;transport=tls").unwrap();
    assert_eq!(d.transport, Transport::Udp);
    assert_eq!(
        w,
        Some(Warning::ForcedUdp {
            version: Version::V1,
            requested: Transport::Tls
        })
    );
    assert_eq!(
        parse_hep_id("[h]h;version=2;transport=udp").unwrap().1,
        None
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "[a]1.2.3.4",
        "[b][fe80::1]:7;transport=udp;version=1",
        "[c]host.example:9;transport=tls",
    ] {
        let d = ok(s);
        assert_eq!(ok(&d.to_string()), d);
    }
    assert_eq!(
        ok("[b] [fe80::1]:7;version=2").to_string(),
        "[b][fe80::1]:7;transport=udp;version=2"
    );
}

#[test]
fn name_errors() {
    assert_eq!(err(""), (1, HepIdErrorKind::MissingName));
    assert_eq!(err("  10.0.0.1"), (3, HepIdErrorKind::MissingName));
    assert_eq!(err("[abc 10.0.0.1"), (1, HepIdErrorKind::UnterminatedName));
    assert_eq!(err(" []1.2.3.4"), (3, HepIdErrorKind::EmptyName));
    assert_eq!(err("[  ]1.2.3.4"), (2, HepIdErrorKind::EmptyName));
    assert_eq!(
        err("[ a b]1.2.3.4"),
        (4, HepIdErrorKind::InvalidNameChar(' '))
    );
    assert_eq!(err("[aé]h"), (3, HepIdErrorKind::InvalidNameChar('é')));
}

#[test]
fn host_errors() {
    assert_eq!(err("[a]"), (4, HepIdErrorKind::MissingHost));
    assert_eq!(err("[a] ;transport=udp"), (5, HepIdErrorKind::MissingHost));
    assert_eq!(err("[a]:9060"), (4, HepIdErrorKind::MissingHost));
    assert_eq!(
        err("[a]1.2.3.256"),
        (4, HepIdErrorKind::InvalidIpv4("1.2.3.256".into()))
    );
    assert_eq!(err("[a]ho/st"), (6, HepIdErrorKind::InvalidHostChar('/')));
    assert_eq!(err("[a]aé"), (5, HepIdErrorKind::InvalidHostChar('é')));
    assert_eq!(
        err("[a]a..b"),
        (4, HepIdErrorKind::EmptyLabel("a..b".into()))
    );
    assert_eq!(err("[a].a"), (4, HepIdErrorKind::EmptyLabel(".a".into())));
    assert_eq!(err("[a]fe80::1"), (4, HepIdErrorKind::UnbracketedIpv6));
    assert_eq!(err("[a]::1:9060"), (4, HepIdErrorKind::UnbracketedIpv6));
    assert_eq!(err("[a][::1:9060"), (4, HepIdErrorKind::UnterminatedIpv6));
    assert_eq!(
        err("[a][1.2.3.4]"),
        (5, HepIdErrorKind::InvalidIpv6("1.2.3.4".into()))
    );
}

#[test]
fn port_errors() {
    assert_eq!(err("[a]h:"), (6, HepIdErrorKind::MissingPort));
    assert_eq!(err("[a]h: ;version=3"), (7, HepIdErrorKind::MissingPort));
    for (s, p) in [
        ("[a]h:0", "0"),
        ("[a]h:65536", "65536"),
        ("[a]h:+9", "+9"),
        ("[a]h:9x", "9x"),
    ] {
        assert_eq!(err(s), (6, HepIdErrorKind::InvalidPort(p.into())), "{s}");
    }
    assert_eq!(
        err("[a][::1]:x"),
        (10, HepIdErrorKind::InvalidPort("x".into()))
    );
}

#[test]
fn param_errors() {
    assert_eq!(err("[a]h x"), (6, HepIdErrorKind::UnexpectedChar('x')));
    assert_eq!(err("[a]h:1 2"), (8, HepIdErrorKind::UnexpectedChar('2')));
    assert_eq!(
        err("[a]h;transport=udp tcp"),
        (20, HepIdErrorKind::UnexpectedChar('t'))
    );
    assert_eq!(err("[a]h;;"), (6, HepIdErrorKind::EmptyParam));
    assert_eq!(err("[a]h; =udp"), (7, HepIdErrorKind::EmptyParam));
    assert_eq!(
        err("[a]h;transport"),
        (15, HepIdErrorKind::MissingValue("transport".into()))
    );
    assert_eq!(
        err("[a]h;transport udp"),
        (16, HepIdErrorKind::MissingValue("transport".into()))
    );
    assert_eq!(
        err("[a]h;version= ;"),
        (15, HepIdErrorKind::MissingValue("version".into()))
    );
    assert_eq!(
        err("[a]h;Transport=udp"),
        (6, HepIdErrorKind::UnknownParam("Transport".into()))
    );
    assert_eq!(
        err("[a]h;uri=x"),
        (6, HepIdErrorKind::UnknownParam("uri".into()))
    );
    assert_eq!(
        err("[a]h;version=3;version=3"),
        (16, HepIdErrorKind::DuplicateParam("version".into()))
    );
    assert_eq!(
        err("[a]h;transport=udp; transport=tcp"),
        (21, HepIdErrorKind::DuplicateParam("transport".into()))
    );
    assert_eq!(
        err("[a]h;transport=sctp"),
        (16, HepIdErrorKind::InvalidTransport("sctp".into()))
    );
    assert_eq!(
        err("[a]h;version=4"),
        (14, HepIdErrorKind::InvalidVersion("4".into()))
    );
    assert_eq!(
        err("[a]h;version=03"),
        (14, HepIdErrorKind::InvalidVersion("03".into()))
    );
}

#[test]
fn error_display() {
    let e = parse_hep_id("[a]h:0").unwrap_err();
    assert_eq!(
        e.to_string(),
        "column 6: invalid port \"0\" (expected 1..65535)"
    );
}

#[test]
fn many_ok_and_duplicates() {
    let v = parse_many(["[a]1.1.1.1;transport=udp", "[b]h;version=2;transport=tcp"]).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].0.name, "a");
    assert!(v[1].1.is_some());

    let e = parse_many(["[a]1.1.1.1", "[b]h", "  [ a ]2.2.2.2"]).unwrap_err();
    assert_eq!(
        e,
        ManyError {
            index: 2,
            error: HepIdError {
                column: 5,
                kind: HepIdErrorKind::DuplicateName {
                    name: "a".into(),
                    first: 0
                }
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "hep_id #3: column 5: destination name 'a' already defined by hep_id #1"
    );
    // Names are case-sensitive.
    assert!(parse_many(["[a]h", "[A]h"]).is_ok());
    // A syntax error reports its index.
    let e = parse_many(["[a]h", "[b]"]).unwrap_err();
    assert_eq!((e.index, e.error.kind), (1, HepIdErrorKind::MissingHost));
}
