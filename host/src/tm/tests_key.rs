//! Transaction keys (RFC 3261 §17.1.3, §17.2.3) and CANCEL matching (§9.2), with RFC 4475
//! torture messages.

use bytes::Bytes;

use super::tests_util::{ack, inv_resp, invite, msg, request, response};
use super::{ClientKey, KeyError, ServerKey};
use crate::sip::Message;

fn torture(data: &'static [u8]) -> Message {
    Message::parse(Bytes::from_static(data)).unwrap()
}

fn text(m: &Message) -> String {
    String::from_utf8(m.as_bytes().to_vec()).unwrap()
}

#[test]
fn server_key_rfc3261_branch_sent_by_method() {
    let inv = ServerKey::of(&invite()).unwrap();
    assert!(inv.is_rfc3261());
    assert_eq!(inv.method(), "INVITE");
    // A retransmission and the ACK of a non-2xx response (same branch) find the INVITE's
    // transaction (§17.2.3: ACK matches the INVITE).
    assert_eq!(ServerKey::of(&invite()).unwrap(), inv);
    assert_eq!(ServerKey::of(&ack("a6c85cf")).unwrap(), inv);
    // The CANCEL is its own transaction, but names the INVITE's (§9.2).
    let cancel = request("CANCEL", "z9hG4bK776asdhds");
    assert_ne!(ServerKey::of(&cancel).unwrap(), inv);
    assert_eq!(ServerKey::of(&cancel).unwrap().method(), "CANCEL");
    assert_eq!(ServerKey::of_cancelled(&cancel).unwrap(), inv);
    // Another branch, another sent-by: another transaction. Host case does not matter.
    let other_branch = request("INVITE", "z9hG4bK776asdhdt");
    assert_ne!(ServerKey::of(&other_branch).unwrap(), inv);
    let moved = msg(&text(&invite()).replace("pc33.atlanta", "pc34.atlanta"));
    assert_ne!(ServerKey::of(&moved).unwrap(), inv);
    let with_port = msg(&text(&invite()).replace(".com;branch", ".com:5060;branch"));
    assert_ne!(ServerKey::of(&with_port).unwrap(), inv);
    let upper = msg(&text(&invite()).replace("pc33.atlanta", "PC33.Atlanta"));
    assert_eq!(ServerKey::of(&upper).unwrap(), inv);
    // With the cookie, the other fields do not matter (a CANCEL with another Call-ID matches:
    // the branch is unique, §17.2.3).
    let odd = msg(&text(&cancel).replace("Call-ID: a84b", "Call-ID: zzzz"));
    assert_eq!(ServerKey::of_cancelled(&odd).unwrap(), inv);
    // A non-INVITE has its own method in the key.
    let bye = request("BYE", "z9hG4bK776asdhds");
    assert_eq!(ServerKey::of(&bye).unwrap().method(), "BYE");
    assert_ne!(ServerKey::of(&bye).unwrap(), inv);
    // A method the key does not know by name is kept as written, and compares and hashes as
    // the known ones do; methods are case-sensitive (§7.1).
    let foo = ServerKey::of(&request("FOO", "z9hG4bK776asdhds")).unwrap();
    assert_eq!(foo.method(), "FOO");
    assert_eq!(
        foo,
        ServerKey::of(&request("FOO", "z9hG4bK776asdhds")).unwrap()
    );
    assert_ne!(
        foo,
        ServerKey::of(&request("Foo", "z9hG4bK776asdhds")).unwrap()
    );
    assert_ne!(foo, inv);
    let h = std::hash::RandomState::new();
    let same = ServerKey::of(&request("FOO", "z9hG4bK776asdhds")).unwrap();
    assert_eq!(
        std::hash::BuildHasher::hash_one(&h, &foo),
        std::hash::BuildHasher::hash_one(&h, &same)
    );
}

#[test]
fn server_key_rfc2543_fallback_with_inv2543() {
    // RFC 4475 §3.4.3: an RFC 2543 INVITE (no branch at all).
    let inv = torture(include_bytes!("../../../sip/src/testdata/inv2543.dat"));
    let key = ServerKey::of(&inv).unwrap();
    assert!(!key.is_rfc3261());
    let raw = text(&inv);
    // The ACK of a non-2xx carries the response's To tag: still the INVITE's key.
    let ack = msg(&raw
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 56 INVITE", "CSeq: 56 ACK")
        .replace(
            "user=phone\r\nCall-ID",
            "user=phone;tag=8321234356\r\nCall-ID",
        ));
    assert_eq!(ack.to_tag_param(), Ok(Some(Some("8321234356"))));
    assert_eq!(ServerKey::of(&ack).unwrap(), key);
    // The CANCEL (§9.2: Request-URI, Call-ID, To, From, CSeq number, top Via) names it.
    let cancel = msg(&raw
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 56 INVITE", "CSeq: 56 CANCEL"));
    assert_eq!(ServerKey::of_cancelled(&cancel).unwrap(), key);
    assert_ne!(ServerKey::of(&cancel).unwrap(), key);
    // Each of those fields tells transactions apart.
    for (from, to) in [
        ("INVITE sip:UserB@", "INVITE sip:UserC@"),
        ("Call-ID: inv2543.1717", "Call-ID: inv2543.1718"),
        ("CSeq: 56 INVITE", "CSeq: 57 INVITE"),
        ("Via: SIP/2.0/UDP iftgw", "Via: SIP/2.0/UDP iftgx"),
        ("Via: SIP/2.0/UDP", "Via: SIP/2.0/TCP"),
        ("user=phone>\r\n", "user=phone>;tag=x\r\n"),
    ] {
        let changed = msg(&raw.replacen(from, to, 1));
        assert_ne!(ServerKey::of(&changed).unwrap(), key, "{to}");
    }
    // A non-INVITE keeps the To tag in its key.
    let bye = |tag: &str| {
        msg(&raw
            .replacen("INVITE sip", "BYE sip", 1)
            .replace("CSeq: 56 INVITE", "CSeq: 57 BYE")
            .replace(
                "user=phone\r\nCall-ID",
                &format!("user=phone;tag={tag}\r\nCall-ID"),
            ))
    };
    assert_ne!(
        ServerKey::of(&bye("1")).unwrap(),
        ServerKey::of(&bye("2")).unwrap()
    );
}

#[test]
fn wsinv_branch_without_cookie_falls_back() {
    // RFC 4475 §3.1.1.1: LWS everywhere; its branch "390skdjuw" has no magic cookie.
    let m = torture(include_bytes!("../../../sip/src/testdata/wsinv.dat"));
    assert_eq!(m.top_branch(), Ok(Some("390skdjuw")));
    let key = ServerKey::of(&m).unwrap();
    assert!(!key.is_rfc3261());
    assert_eq!(key.method(), "INVITE");
}

#[test]
fn every_torture_request_has_a_key_or_a_typed_error() {
    for data in [
        &include_bytes!("../../../sip/src/testdata/lwsdisp.dat")[..],
        include_bytes!("../../../sip/src/testdata/transports.dat"),
        include_bytes!("../../../sip/src/testdata/intmeth.dat"),
        include_bytes!("../../../sip/src/testdata/esc02.dat"),
        include_bytes!("../../../sip/src/testdata/mpart01.dat"),
        include_bytes!("../../../sip/src/testdata/unreason.dat"),
        include_bytes!("../../../sip/src/testdata/noreason.dat"),
    ] {
        let m = Message::parse(Bytes::copy_from_slice(data)).unwrap();
        if m.is_request() {
            let k = ServerKey::of(&m).unwrap();
            assert_eq!(k.is_rfc3261(), m.top_via().unwrap().is_rfc3261_branch());
            // RE%47IST%45R is not REGISTER, and the key keeps the method as written.
            assert_eq!(k.method(), m.method_str().unwrap());
        } else {
            assert_eq!(ServerKey::of(&m), Err(KeyError::NotARequest));
            let k = ClientKey::of(&m).unwrap();
            assert_eq!(k.method(), m.cseq().unwrap().method);
        }
    }
}

#[test]
fn client_key_branch_and_cseq_method() {
    let sent = ClientKey::of(&invite()).unwrap();
    assert_eq!(sent.branch(), "z9hG4bK776asdhds");
    assert_eq!(sent.method(), "INVITE");
    for code in [100, 180, 200, 486] {
        assert_eq!(ClientKey::of(&inv_resp(code)).unwrap(), sent);
    }
    // The CANCEL shares the branch; its response matches the CANCEL's transaction only.
    let cancel = ClientKey::of(&request("CANCEL", "z9hG4bK776asdhds")).unwrap();
    assert_ne!(cancel, sent);
    assert_eq!(
        ClientKey::of(&response(200, "CANCEL", "z9hG4bK776asdhds")).unwrap(),
        cancel
    );
    assert_ne!(
        ClientKey::of(&response(200, "INVITE", "z9hG4bK776asdhdX")).unwrap(),
        sent
    );
    // No branch: no client key.
    let inv = torture(include_bytes!("../../../sip/src/testdata/inv2543.dat"));
    assert_eq!(ClientKey::of(&inv), Err(KeyError::NoBranch));
}

#[test]
fn client_key_new_is_the_key_read_back_from_the_request_and_its_responses() {
    // The relay keys a branch's client transaction from the branch and method it built the
    // request with; a response must find it (§17.1.3) as if the request had been parsed.
    for method in ["MESSAGE", "INVITE", "BYE", "X-OWN"] {
        let req = request(method, "z9hG4bKsent1");
        let made = ClientKey::new("z9hG4bKsent1", method);
        assert_eq!(ClientKey::of(&req).unwrap(), made, "{method}");
        let resp = response(200, method, "z9hG4bKsent1");
        assert_eq!(ClientKey::of(&resp).unwrap(), made, "{method}");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut g = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&made, &mut h);
        std::hash::Hash::hash(&ClientKey::of(&resp).unwrap(), &mut g);
        assert_eq!(std::hash::Hasher::finish(&h), std::hash::Hasher::finish(&g));
    }
    assert_ne!(
        ClientKey::new("z9hG4bKsent1", "MESSAGE"),
        ClientKey::new("z9hG4bKsent2", "MESSAGE")
    );
    assert_eq!(
        ClientKey::new("z9hG4bKsent1", "ACK"),
        ClientKey::new("z9hG4bKsent1", "INVITE")
    );
}
