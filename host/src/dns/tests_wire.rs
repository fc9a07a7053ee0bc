use super::records::{Kind, Naptr, Records, Srv};
use super::sysconf::{parse_hosts, parse_resolv_conf, parse_servers};
use super::wire::{decode_answer, encode_query, Answer, DEFAULT_NEGATIVE_TTL};
use super::DnsError;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
    Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

fn response(
    id: u16,
    name: &str,
    kind_rt: hickory_proto::rr::RecordType,
) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_proto::rr::Name;
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Response);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind_rt));
    m
}

#[test]
fn wire_answers_decode_to_records() {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::{NAPTR, SOA, SRV};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    let q = Message::from_vec(&encode_query(7, "svc.test", Kind::Srv).unwrap()).unwrap();
    assert_eq!(q.id(), 7);
    assert!(q.recursion_desired());
    assert_eq!(q.queries()[0].query_type(), RecordType::SRV);

    let n = |s: &str| Name::from_ascii(s).unwrap();
    let mut m = response(7, "_sip._ws.svc.test.", RecordType::SRV);
    m.add_answer(Record::from_rdata(
        n("_sip._ws.svc.test."),
        120,
        RData::SRV(SRV::new(1, 2, 8080, n("WS.svc.test."))),
    ));
    m.add_answer(Record::from_rdata(
        n("_sip._ws.svc.test."),
        60,
        RData::SRV(SRV::new(5, 0, 8081, n("b.svc.test."))),
    ));
    let buf = m.to_vec().unwrap();
    assert_eq!(
        decode_answer(&buf, 7, "_sip._ws.svc.test", Kind::Srv).unwrap(),
        Answer::Records(
            Records::Srv(vec![
                srv(1, 2, 8080, "ws.svc.test"),
                srv(5, 0, 8081, "b.svc.test")
            ]),
            Duration::from_secs(60)
        )
    );
    // Another id or question: not ours.
    assert_eq!(
        decode_answer(&buf, 8, "_sip._ws.svc.test", Kind::Srv).unwrap(),
        Answer::Unrelated
    );
    assert_eq!(
        decode_answer(&buf, 7, "other.test", Kind::Srv).unwrap(),
        Answer::Unrelated
    );
    assert_eq!(
        decode_answer(b"garbage", 7, "x", Kind::A).unwrap(),
        Answer::Unrelated
    );

    let mut m = response(9, "svc.test.", RecordType::NAPTR);
    m.add_answer(Record::from_rdata(
        n("svc.test."),
        300,
        RData::NAPTR(NAPTR::new(
            10,
            20,
            b"s".to_vec().into_boxed_slice(),
            b"SIP+D2W".to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            n("_sip._ws.svc.test."),
        )),
    ));
    assert_eq!(
        decode_answer(&m.to_vec().unwrap(), 9, "svc.test", Kind::Naptr).unwrap(),
        Answer::Records(
            Records::Naptr(vec![Naptr {
                order: 10,
                preference: 20,
                flags: "s".into(),
                services: "SIP+D2W".into(),
                replacement: "_sip._ws.svc.test".into()
            }]),
            Duration::from_secs(300)
        )
    );

    // NXDOMAIN with an SOA: negative, min(SOA TTL, MINIMUM) (RFC 2308 §5).
    let mut m = response(3, "gone.test.", RecordType::A);
    m.set_response_code(ResponseCode::NXDomain);
    m.add_name_server(Record::from_rdata(
        n("test."),
        50,
        RData::SOA(SOA::new(n("ns.test."), n("h.test."), 1, 2, 3, 4, 20)),
    ));
    assert_eq!(
        decode_answer(&m.to_vec().unwrap(), 3, "gone.test", Kind::A).unwrap(),
        Answer::Records(Records::Addrs(vec![]), Duration::from_secs(20))
    );
    // NODATA without an SOA: the default negative TTL.
    let m = response(4, "x.test.", RecordType::AAAA);
    assert_eq!(
        decode_answer(&m.to_vec().unwrap(), 4, "x.test", Kind::Aaaa).unwrap(),
        Answer::Records(Records::Addrs(vec![]), DEFAULT_NEGATIVE_TTL)
    );
    // SERVFAIL: an error, not a negative answer.
    let mut m = response(5, "x.test.", RecordType::A);
    m.set_response_code(ResponseCode::ServFail);
    assert!(matches!(
        decode_answer(&m.to_vec().unwrap(), 5, "x.test", Kind::A),
        Err(DnsError::Server(..))
    ));
    // Truncated: ask over TCP.
    let mut m = response(6, "x.test.", RecordType::A);
    m.set_truncated(true);
    assert_eq!(
        decode_answer(&m.to_vec().unwrap(), 6, "x.test", Kind::A).unwrap(),
        Answer::Truncated
    );
}

#[test]
fn system_files_and_server_list() {
    assert_eq!(
        parse_resolv_conf("# c\nnameserver 10.0.0.1\nsearch x\nnameserver fe80::1%eth0\n"),
        vec![
            SocketAddr::from(([10, 0, 0, 1], 53)),
            "[fe80::1]:53".parse().unwrap()
        ]
    );
    let h = parse_hosts("127.0.0.1 localhost Loc.Test # x\n::1 localhost\nbad line\n");
    assert_eq!(h["localhost"], vec![ip("127.0.0.1"), ip("::1")]);
    assert_eq!(h["loc.test"], vec![ip("127.0.0.1")]);
    assert_eq!(
        parse_servers("127.0.0.1:5353, [::1]:53 10.0.0.2").unwrap(),
        vec![
            "127.0.0.1:5353".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap()
        ]
    );
    assert!(parse_servers("dns.example").is_err());
}

#[test]
fn global_parameters() {
    use super::sysconf::Config;
    use crate::config::GlobalValue;
    let mut c = Config::default();
    assert!(Config::is_param("dns_timeout") && !Config::is_param("dns"));
    c.set("dns_server", &GlobalValue::Str("127.0.0.1:5353".into()))
        .unwrap();
    assert_eq!(
        c.effective_servers(),
        vec!["127.0.0.1:5353".parse().unwrap()]
    );
    c.set("dns_timeout", &GlobalValue::Int(750)).unwrap();
    assert_eq!(c.timeout, Duration::from_millis(750));
    c.set("dns_try_naptr", &GlobalValue::Int(0)).unwrap();
    assert!(!c.try_naptr);
    c.set("dns_use_search_list", &GlobalValue::Int(1)).unwrap();
    assert!(c.set("dns_timeout", &GlobalValue::Int(0)).is_err());
    assert!(c.set("dns_threads", &GlobalValue::Str("x".into())).is_err());
    assert!(c.set("dns_server", &GlobalValue::Int(1)).is_err());
    // dns_servers_no keeps the first servers.
    c.set("dns_server", &GlobalValue::Str("10.0.0.1, 10.0.0.2".into()))
        .unwrap();
    c.set("dns_servers_no", &GlobalValue::Int(1)).unwrap();
    assert_eq!(c.effective_servers(), vec!["10.0.0.1:53".parse().unwrap()]);
}
