//! Refused values: the kind and the exact column of every error.

use super::{err, single};
use crate::*;

// ---- malformed lines: kind and exact column ----

#[test]
fn err_empty_and_proto() {
    use SocketErrorKind as K;
    assert_eq!(err(""), (K::Empty, 1));
    assert_eq!(err("   "), (K::Empty, 4));
    assert_eq!(err("foo:1.2.3.4"), (K::UnknownProto("foo".into()), 1));
    assert_eq!(err("  http:1.2.3.4"), (K::UnknownProto("http".into()), 3));
    assert_eq!(
        err("localhost:5060"),
        (K::UnknownProto("localhost".into()), 1)
    );
    assert_eq!(err("10.0.0.1:5060"), (K::MissingProto, 1));
    assert_eq!(err(":5060"), (K::MissingProto, 1));
    assert_eq!(err("udp 1.2.3.4"), (K::MissingColon, 4));
    assert_eq!(err("udp"), (K::MissingColon, 4));
    assert_eq!(err(" tls;1.2.3.4"), (K::MissingColon, 5));
}

#[test]
fn err_hosts() {
    use SocketErrorKind as K;
    assert_eq!(err("udp:"), (K::EmptyHost, 5));
    assert_eq!(err("udp::5060"), (K::EmptyHost, 5));
    assert_eq!(err("udp: 1.2.3.4"), (K::EmptyHost, 5));
    assert_eq!(err("udp:\"\":5060"), (K::EmptyHost, 5));
    assert_eq!(err("udp:1.2.3.256:5060"), (K::BadIpv4, 5));
    assert_eq!(err("udp:1.2.3"), (K::BadIpv4, 5));
    assert_eq!(err("udp:01.2.3.4"), (K::BadIpv4, 5));
    assert_eq!(err("udp:-bad-:5060"), (K::BadHost, 5));
    assert_eq!(err("udp:ho$t"), (K::BadHost, 5));
    assert_eq!(err("udp:*x"), (K::BadHost, 5));
    assert_eq!(err("udp:\"bad host\""), (K::BadHost, 5));
    assert_eq!(err("udp:1.2.3.4 as *:5060"), (K::BadHost, 16));
    assert_eq!(err("udp:[2001:db8::g]:5060"), (K::BadIpv6, 5));
    assert_eq!(err("udp:[1.2.3.4]"), (K::BadIpv6, 5));
    assert_eq!(err("udp:2001:db8::g1"), (K::BadIpv6, 5));
    assert_eq!(err("udp:2001:db8:::1"), (K::Ipv6NeedsBrackets, 5)); // [2001:db8::]:1
    assert_eq!(err("udp:2001:db8::1:5060"), (K::Ipv6NeedsBrackets, 5));
    assert_eq!(err("udp:2001:db8::1:5060-5062"), (K::Ipv6NeedsBrackets, 5));
    assert_eq!(err("udp:fe80::1:2"), (K::Ipv6NeedsBrackets, 5));
    assert_eq!(err("udp:1.2.3.4 as ::1:5060"), (K::Ipv6NeedsBrackets, 16));
    assert_eq!(err("udp:[::1:5060"), (K::UnterminatedBracket, 5));
    assert_eq!(err("udp:\"host:5060"), (K::UnterminatedQuote, 5));
}

#[test]
fn err_ports() {
    use SocketErrorKind as K;
    assert_eq!(err("udp:1.2.3.4:0"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:65536"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:http"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:05060"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:5060:5061"), (K::BadPort, 13));
    assert_eq!(err("udp:1.2.3.4:5060-70000"), (K::BadPort, 18));
    assert_eq!(err("udp:1.2.3.4:5060-"), (K::BadPort, 18));
    assert_eq!(err("udp:1.2.3.4:5060,x"), (K::BadPort, 18));
    assert_eq!(err("udp:1.2.3.4:5060,"), (K::BadPort, 18));
    assert_eq!(err("udp:[::1]:99999"), (K::BadPort, 11));
    assert_eq!(err("udp:1.2.3.4:5062-5060"), (K::PortRange, 13));
    assert_eq!(err("udp:1.2.3.4:1,5062-5060"), (K::PortRange, 15));
    assert_eq!(
        err("udp:1.2.3.4:5060,5061,5060"),
        (K::DuplicatePort(5060), 23)
    );
    assert_eq!(
        err("udp:1.2.3.4:5060-5062,5061"),
        (K::DuplicatePort(5061), 23)
    );
}

#[test]
fn err_params() {
    use SocketErrorKind as K;
    assert_eq!(err("udp:1.2.3.4 foo"), (K::UnknownParam("foo".into()), 13));
    assert_eq!(
        err("udp:1.2.3.4:5060 anycast bar"),
        (K::UnknownParam("bar".into()), 26)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_workers"),
        (K::MissingValue("use_workers"), 13)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_children  "),
        (K::MissingValue("use_workers"), 13)
    );
    assert_eq!(err("udp:1.2.3.4 as"), (K::MissingValue("as"), 13));
    assert_eq!(err("udp:1.2.3.4 tag anycast"), (K::MissingValue("tag"), 13));
    assert_eq!(err("udp:1.2.3.4 tos"), (K::MissingValue("tos"), 13));
    assert_eq!(
        err("udp:1.2.3.4 frag use_auto_scaling_profile"),
        (K::MissingValue("use_auto_scaling_profile"), 18)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_workers 0"),
        (K::BadValue("use_workers"), 25)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_workers four"),
        (K::BadValue("use_workers"), 25)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_workers 4294967296"),
        (K::BadValue("use_workers"), 25)
    );
    assert_eq!(err("udp:1.2.3.4 tos 256"), (K::BadValue("tos"), 17));
    assert_eq!(err("udp:1.2.3.4 tos 0x100"), (K::BadValue("tos"), 17));
    assert_eq!(err("udp:1.2.3.4 tos 0x+1"), (K::BadValue("tos"), 17));
    assert_eq!(err("udp:1.2.3.4 tag a/b"), (K::BadValue("tag"), 17));
    assert_eq!(err("udp:1.2.3.4 tag \"\""), (K::BadValue("tag"), 17));
    assert_eq!(err("udp:1.2.3.4 tag \"abc"), (K::UnterminatedQuote, 17));
    assert_eq!(
        err("udp:1.2.3.4 anycast frag anycast"),
        (K::DuplicateParam("anycast"), 26)
    );
    assert_eq!(
        err("udp:1.2.3.4 use_children 2 use_workers 3"),
        (K::DuplicateParam("use_workers"), 28)
    );
    assert_eq!(
        err("udp:1.2.3.4 allow_proxy proxy-protocol"),
        (K::DuplicateParam("allow_proxy_protocol"), 25)
    );
    assert_eq!(
        err("udp:1.2.3.4 as 5.6.7.8 as 5.6.7.9"),
        (K::DuplicateParam("as"), 24)
    );
}

#[test]
fn err_advertised_mismatch() {
    use SocketErrorKind as K;
    let mismatch = |socket, advertised| K::AdvertisedMismatch { socket, advertised };
    assert_eq!(
        err("udp:10.0.0.1:5060-5062 as 198.51.100.1:5060-5061"),
        (mismatch(3, 2), 40)
    );
    assert_eq!(
        err("udp:10.0.0.1:5060-5062 as 198.51.100.1:5060"),
        (mismatch(3, 1), 40)
    );
    assert_eq!(
        err("udp:10.0.0.1 as 1.1.1.1:5060,5061"),
        (mismatch(1, 2), 25)
    );
}

#[test]
fn err_trailing_input() {
    use SocketErrorKind as K;
    assert_eq!(err("udp:[::1]x"), (K::TrailingInput, 10));
    assert_eq!(err("udp:\"host\"x:5060"), (K::TrailingInput, 11));
    assert_eq!(err("udp:1.2.3.4 tag \"t\"x"), (K::TrailingInput, 20));
    assert_eq!(err("bond:b {\"udp:1.2.3.4\"} junk"), (K::TrailingInput, 24));
}

#[test]
fn err_bonds() {
    use SocketErrorKind as K;
    assert_eq!(err("bond: {\"udp:1.2.3.4\"}"), (K::BadBondName, 6));
    assert_eq!(err("bond:a.b {\"udp:1.2.3.4\"}"), (K::BadBondName, 6));
    assert_eq!(err("bond:b \"udp:1.2.3.4\""), (K::Expected("'{'"), 8));
    assert_eq!(err("bond:b {}"), (K::EmptyBond, 8));
    assert_eq!(
        err("bond:b {udp:1.2.3.4}"),
        (K::Expected("a quoted member"), 9)
    );
    assert_eq!(
        err("bond:b {\"udp:1.2.3.4\","),
        (K::Expected("a quoted member"), 23)
    );
    assert_eq!(
        err("bond:b {\"udp:1.2.3.4\" \"tcp:1.2.3.4\"}"),
        (K::Expected("',' or '}'"), 23)
    );
    assert_eq!(err("bond:b {\"udp:1.2.3.4}"), (K::UnterminatedQuote, 9));
    assert_eq!(
        err("bond:b {\"udp:1.2.3.4\", \"bond:c\"}"),
        (K::NestedBond, 25)
    );
    assert_eq!(err("bond:b {\"udp:1.2.3.4\", \"\"}"), (K::Empty, 25));
    // errors inside a member point into the whole value
    assert_eq!(
        err("bond:b {\"udp:1.2.3.4\", \"tcp:1.2.3.4:0\"}"),
        (K::BadPort, 37)
    );
    assert_eq!(
        err("bond:b {\"foo:1.2.3.4\"}"),
        (K::UnknownProto("foo".into()), 10)
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    use SocketErrorKind as K;
    assert_eq!(
        err("udp:1.2.3.4 tag \"ééé\" bogus"),
        (K::UnknownParam("bogus".into()), 23)
    );
    assert_eq!(
        single("udp:1.2.3.4 tag \"ééé\"").tag.as_deref(),
        Some("ééé")
    );
    assert_eq!(err("udp:hôst"), (K::BadHost, 5));
}
