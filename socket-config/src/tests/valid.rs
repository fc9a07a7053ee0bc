//! Accepted values: examples, forms, parameters, canonical output.

use super::{err, name, round_trip, single, v4, v6};
use crate::*;

// ---- research section 9 examples ----

#[test]
fn ws_without_port_takes_module_default() {
    let d = single("ws:127.0.0.1");
    assert_eq!(
        (d.proto, &d.host, &d.ports),
        (Proto::Ws, &v4("127.0.0.1"), &None)
    );
    assert_eq!(d.expand_ports(80), vec![(80, None)]);
    assert_eq!(d.to_string(), "ws:127.0.0.1");
}

#[test]
fn ws_with_advertised() {
    let d = single("ws:10.0.0.5:8080 as 203.0.113.7:80");
    assert_eq!(d.ports, Some(Ports::One(8080)));
    let a = d.advertised.clone().unwrap();
    assert_eq!((a.host, a.ports), (v4("203.0.113.7"), Some(Ports::One(80))));
    assert_eq!(d.expand_ports(80), vec![(8080, Some(80))]);
    assert_eq!(d.to_string(), "ws:10.0.0.5:8080 as 203.0.113.7:80");
}

#[test]
fn wss_interface_workers_tag() {
    let d = single("wss:eth0:443 use_workers 4 tag public_wss");
    assert_eq!((d.proto, &d.host), (Proto::Wss, &name("eth0")));
    assert_eq!((d.workers, d.tag.as_deref()), (Some(4), Some("public_wss")));
    assert_eq!(d.to_string(), "wss:eth0:443 use_workers 4 tag public_wss");
}

#[test]
fn ws_bracketed_ipv6() {
    let d = single("ws:[2001:db8::5]:8080");
    assert_eq!(
        (&d.host, &d.ports),
        (&v6("2001:db8::5"), &Some(Ports::One(8080)))
    );
    assert_eq!(d.to_string(), "ws:[2001:db8::5]:8080");
}

#[test]
fn tcp_all_interfaces() {
    let d = single("tcp:*:5060");
    assert_eq!(
        (d.proto, &d.host, &d.ports),
        (Proto::Tcp, &Host::Any, &Some(Ports::One(5060)))
    );
    assert_eq!(d.to_string(), "tcp:*:5060");
}

#[test]
fn udp_range_with_advertised_range() {
    let d = single("udp:10.0.0.1:5060-5062 as 198.51.100.1:5060-5062");
    assert_eq!(d.ports, Some(Ports::Range(5060, 5062)));
    assert_eq!(
        d.expand_ports(5060),
        vec![(5060, Some(5060)), (5061, Some(5061)), (5062, Some(5062))]
    );
    assert_eq!(
        d.to_string(),
        "udp:10.0.0.1:5060-5062 as 198.51.100.1:5060-5062"
    );
}

#[test]
fn ws_allow_proxy_protocol() {
    let d = single("ws:0.0.0.0:8080 allow_proxy_protocol");
    assert_eq!(
        d.proxy_protocol,
        ProxyProtocol {
            allow: true,
            send: false
        }
    );
    assert_eq!(d.to_string(), "ws:0.0.0.0:8080 allow_proxy_protocol");
}

#[test]
fn hep_sockets() {
    let d = single("hep_udp:127.0.0.1:9060");
    assert_eq!((d.proto, d.ports), (Proto::HepUdp, Some(Ports::One(9060))));
    let d = single("hep_tcp:10.0.0.1:9061");
    assert_eq!((d.proto, d.ports), (Proto::HepTcp, Some(Ports::One(9061))));
}

#[test]
fn quoted_hostname_needs_proto() {
    assert_eq!(
        err("\"my-host.example.com\":5060"),
        (SocketErrorKind::MissingProto, 1)
    );
    let d = single("udp:\"my-host.example.com\":5060");
    assert_eq!(
        (&d.host, &d.ports),
        (&name("my-host.example.com"), &Some(Ports::One(5060)))
    );
    assert_eq!(d.to_string(), "udp:my-host.example.com:5060");
}

// ---- OpenSIPS manual examples ----

#[test]
fn manual_examples() {
    assert_eq!(single("udp:*").host, Host::Any);
    assert_eq!(single("udp:eth1").host, name("eth1"));
    assert_eq!(single("tcp:eth1:5062").ports, Some(Ports::One(5062)));
    assert_eq!(single("tls:localhost:5061").host, name("localhost"));
    assert_eq!(single("hep_udp:10.10.10.10:5064").proto, Proto::HepUdp);
    assert_eq!(single("ws:127.0.0.1:5060 use_workers 5").workers, Some(5));
    let d = single("sctp:127.0.0.1:5060 as 99.88.44.33:5060 use_workers 3");
    assert_eq!((d.proto, d.workers), (Proto::Sctp, Some(3)));
    assert!(single("udp:10.10.10.10:5060 anycast").anycast);
    let d = single("udp:10.10.10.10:5060 use_workers 4 use_auto_scaling_profile PROFILE_SIP");
    assert_eq!(d.auto_scaling_profile.as_deref(), Some("PROFILE_SIP"));
    assert_eq!(
        d.to_string(),
        "udp:10.10.10.10:5060 use_workers 4 use_auto_scaling_profile PROFILE_SIP"
    );
}

#[test]
fn bond_from_manual() {
    let v = r#"bond:extern {"udp:10.10.0.3:5060", "tcp:10.10.0.5:5060", "tls:[2001:db8:1234:5678::1]:5061"}"#;
    let SocketSpec::Bond { name, members } = parse(v).unwrap() else {
        panic!("not a bond")
    };
    assert_eq!(name, "extern");
    let protos: Vec<Proto> = members.iter().map(|m| m.proto).collect();
    assert_eq!(protos, [Proto::Udp, Proto::Tcp, Proto::Tls]);
    assert_eq!(members[2].host, v6("2001:db8:1234:5678::1"));
    assert_eq!(parse(v).unwrap().to_string(), v);
    let tight = single_bond("BOND:b{\"udp:1.2.3.4\"}");
    assert_eq!(tight, ("b".to_string(), 1));
}

fn single_bond(v: &str) -> (String, usize) {
    match parse(v) {
        Ok(SocketSpec::Bond { name, members }) => (name, members.len()),
        other => panic!("{other:?}"),
    }
}

// ---- protocols, hosts, ports ----

#[test]
fn every_proto_case_insensitive() {
    for p in Proto::ALL {
        assert_eq!(single(&format!("{}:1.2.3.4", p.name())).proto, p);
        assert_eq!(
            single(&format!("{}:1.2.3.4", p.name().to_uppercase())).proto,
            p
        );
        assert_eq!(Proto::from_name(p.name()), Some(p));
    }
    assert_eq!(single("Hep_Udp:1.2.3.4").proto, Proto::HepUdp);
    assert_eq!(Proto::from_name("http"), None);
}

#[test]
fn bare_ipv6_without_port() {
    assert_eq!(single("udp:::1").host, v6("::1"));
    assert_eq!(single("udp:::").host, v6("::"));
    let d = single("udp:2001:db8::1 use_workers 2");
    assert_eq!(
        (&d.host, &d.ports, d.workers),
        (&v6("2001:db8::1"), &None, Some(2))
    );
    assert_eq!(d.to_string(), "udp:[2001:db8::1] use_workers 2");
    assert_eq!(single("udp:fe80::").host, v6("fe80::"));
    assert_eq!(single("udp:::ffff:1.2.3.4").host, v6("::ffff:1.2.3.4"));
    assert_eq!(single("udp:\"2001:db8::1\":5060").host, v6("2001:db8::1"));
    assert_eq!(single("udp:\"10.0.0.1\"").host, v4("10.0.0.1"));
}

#[test]
fn port_forms() {
    assert_eq!(single("udp:1.2.3.4:any").ports, None);
    assert_eq!(single("udp:1.2.3.4:ANY").ports, None);
    assert_eq!(single("udp:1.2.3.4:65535").ports, Some(Ports::One(65535)));
    assert_eq!(single("udp:1.2.3.4:1").ports, Some(Ports::One(1)));
    let d = single("udp:1.2.3.4:5060,5070");
    assert_eq!(d.ports, Some(Ports::List(vec![5060, 5070])));
    assert_eq!(d.expand_ports(1), vec![(5060, None), (5070, None)]);
    let d = single("udp:1.2.3.4:5060,5070-5071 as 5.6.7.8:6000,6010,6020");
    assert_eq!(d.ports, Some(Ports::List(vec![5060, 5070, 5071])));
    assert_eq!(
        d.expand_ports(1),
        vec![(5060, Some(6000)), (5070, Some(6010)), (5071, Some(6020))]
    );
    assert_eq!(
        d.to_string(),
        "udp:1.2.3.4:5060,5070,5071 as 5.6.7.8:6000,6010,6020"
    );
    assert_eq!(
        single("udp:1.2.3.4:5060-5060").ports,
        Some(Ports::One(5060))
    );
    let r = Ports::Range(5060, 5062);
    assert_eq!(
        (r.len(), r.first(), r.expand()),
        (3, Some(5060), vec![5060, 5061, 5062])
    );
}

#[test]
fn expand_ports_with_advertised_variants() {
    let d = single("udp:1.2.3.4 as 5.6.7.8:5080");
    assert_eq!(d.expand_ports(5060), vec![(5060, Some(5080))]);
    let d = single("udp:1.2.3.4:5060-5061 as 5.6.7.8");
    assert_eq!(d.expand_ports(0), vec![(5060, None), (5061, None)]);
    assert_eq!(d.advertised.unwrap().ports, None);
}

#[test]
fn whitespace_and_keyword_case() {
    let d = single(" \t udp:1.2.3.4:5060\tAS  5.6.7.8:5060   USE_WORKERS\t2 \r\n");
    assert_eq!(
        (d.workers, d.advertised.unwrap().host),
        (Some(2), v4("5.6.7.8"))
    );
}

// ---- parameters ----

#[test]
fn every_parameter() {
    let d = single(
        "udp:1.2.3.4:5060 use_children 3 tos 0x10 tag \"my tag\" use_auto_scaling_profile P1 \
         anycast frag reuse_port accept_subdomain send-proxy proxy",
    );
    assert_eq!(d.workers, Some(3));
    assert_eq!(d.tos, Some(0x10));
    assert_eq!(d.tag.as_deref(), Some("my tag"));
    assert_eq!(d.auto_scaling_profile.as_deref(), Some("P1"));
    assert!(d.anycast && d.frag && d.reuse_port && d.accept_subdomain);
    assert_eq!(
        d.proxy_protocol,
        ProxyProtocol {
            allow: true,
            send: true
        }
    );
    assert_eq!(
        d.to_string(),
        "udp:1.2.3.4:5060 use_workers 3 tos 16 tag \"my tag\" use_auto_scaling_profile P1 \
         anycast frag reuse_port accept_subdomain allow_proxy_protocol send_proxy_protocol"
    );
    round_trip(&d.to_string());
}

#[test]
fn tos_forms() {
    assert_eq!(single("udp:1.2.3.4 tos 184").tos, Some(184));
    assert_eq!(single("udp:1.2.3.4 tos 0").tos, Some(0));
    assert_eq!(single("udp:1.2.3.4 tos 0xB8").tos, Some(0xb8));
    assert_eq!(single("udp:1.2.3.4 tos IPTOS_LOWDELAY").tos, Some(0x10));
    assert_eq!(single("udp:1.2.3.4 tos iptos_reliability").tos, Some(0x04));
}

#[test]
fn proxy_protocol_spellings() {
    let allow = ProxyProtocol {
        allow: true,
        send: false,
    };
    let send = ProxyProtocol {
        allow: false,
        send: true,
    };
    for (word, want) in [
        ("allow_proxy_protocol", allow),
        ("allow-proxy-protocol", allow),
        ("ALLOW_PROXY", allow),
        ("allow-proxy", allow),
        ("proxy_protocol", allow),
        ("proxy-protocol", allow),
        ("proxy", allow),
        ("send_proxy_protocol", send),
        ("Send-Proxy-Protocol", send),
        ("send_proxy", send),
        ("send-proxy", send),
    ] {
        assert_eq!(
            single(&format!("tcp:1.2.3.4 {word}")).proxy_protocol,
            want,
            "{word}"
        );
    }
    assert_eq!(
        err("tcp:1.2.3.4 use-workers 2"),
        (SocketErrorKind::UnknownParam("use-workers".into()), 13)
    );
}

#[test]
fn quoted_values_escape_keywords() {
    let d = single("udp:1.2.3.4 tag \"anycast\" as \"tag\"");
    assert_eq!(d.tag.as_deref(), Some("anycast"));
    assert_eq!(d.advertised.as_ref().unwrap().host, name("tag"));
    assert_eq!(d.to_string(), "udp:1.2.3.4 as \"tag\" tag \"anycast\"");
    round_trip("udp:1.2.3.4 tag \"anycast\" as \"tag\"");
}

#[test]
fn canonical_form_round_trips() {
    let d = SocketDef {
        ports: Some(Ports::One(8080)),
        advertised: Some(Advertised {
            host: v4("203.0.113.7"),
            ports: Some(Ports::One(80)),
        }),
        workers: Some(4),
        tag: Some("public".into()),
        ..SocketDef::new(Proto::Ws, v6("2001:db8::5"))
    };
    assert_eq!(
        d.to_string(),
        "ws:[2001:db8::5]:8080 as 203.0.113.7:80 use_workers 4 tag public"
    );
    for v in [
        "ws:[2001:db8::5]:8080 as [2001:db8::6]:80 use_workers 4 tag public",
        "udp:*:5060,5062 as example.com:6060,6062 tos 1 frag",
        "tls:\"anycast.example.com\":any reuse_port",
        "bond:b {\"udp:1.2.3.4:5060 tag x\", \"tcp:[::1]\"}",
    ] {
        round_trip(v);
    }
}

#[test]
fn error_display() {
    let e = parse("foo:1.2.3.4").unwrap_err();
    assert_eq!(e.to_string(), "column 1: cannot handle protocol 'foo'");
}
