//! Unit tests of the signed branches of [`hop`](super::hop) and loop detection.

use bytes::Bytes;

use super::branch::{txn_digits, TXN_HEX};
use super::hop::{is_looped, signed_branch, verify_branch, BranchError, Hop};
use super::{LoopKey, Message, Via, BRANCH_MAGIC_COOKIE};

const KEY: [u8; 32] = [7u8; 32];
const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
    Via: SIP/2.0/WS a.invalid;branch=z9hG4bK776asdhds\r\n\
    To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nMax-Forwards: 70\r\n\r\n";

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn hops() -> [Hop; 3] {
    [
        Hop::Conn {
            proto: 6,
            conn_id: 0x8000_0000_0000_002a,
        },
        Hop::Addr {
            proto: 1,
            addr: "192.0.2.7:5062".parse().unwrap(),
        },
        Hop::Addr {
            proto: 1,
            addr: "[2001:db8::9]:5060".parse().unwrap(),
        },
    ]
}

#[test]
fn round_trip_for_every_kind_of_hop() {
    let req = msg(INVITE);
    let lk = LoopKey::of(&req, None);
    for hop in hops() {
        let b = signed_branch(&req, &lk, &hop, &KEY);
        let s = b.as_str();
        assert!(
            s.starts_with(BRANCH_MAGIC_COOKIE)
                && s.ends_with(std::str::from_utf8(&lk.digits()).unwrap())
        );
        assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()), "{s}");
        let v = verify_branch(s, &KEY).unwrap();
        assert_eq!((v.hop, v.loop_key, v.txn), (hop, lk, txn_digits(&req)));
    }
}

#[test]
fn retransmission_cancel_and_ack_share_the_branch_per_hop() {
    let lk = |m: &Message| LoopKey::of(m, Some("sip:bobx@b.invalid"));
    let inv = msg(INVITE);
    let [conn, other, _] = hops();
    let b = signed_branch(&inv, &lk(&inv), &conn, &KEY);
    let cancel = msg(&INVITE
        .replace("INVITE sip", "CANCEL sip")
        .replace("314159 INVITE", "314159 CANCEL"));
    let ack = msg(&INVITE
        .replace("INVITE sip", "ACK sip")
        .replace("314159 INVITE", "314159 ACK")
        .replace(
            "<sip:bob@example.com>\r\n",
            "<sip:bob@example.com>;tag=9\r\n",
        ));
    for m in [&inv, &cancel, &ack] {
        assert_eq!(signed_branch(m, &lk(m), &conn, &KEY).as_str(), b.as_str());
    }
    // Another hop, another key or another transaction: another branch.
    assert_ne!(
        signed_branch(&inv, &lk(&inv), &other, &KEY).as_str(),
        b.as_str()
    );
    assert_ne!(
        signed_branch(&inv, &lk(&inv), &conn, &[8u8; 32]).as_str(),
        b.as_str()
    );
    let next = msg(&INVITE.replace("z9hG4bK776asdhds", "z9hG4bK776asdhdt"));
    assert_ne!(
        signed_branch(&next, &lk(&next), &conn, &KEY).as_str(),
        b.as_str()
    );
}

#[test]
fn tampering_and_foreign_branches_are_refused() {
    let req = msg(INVITE);
    let lk = LoopKey::of(&req, None);
    for hop in hops() {
        let good = signed_branch(&req, &lk, &hop, &KEY).as_str().to_string();
        assert_eq!(verify_branch(&good, &[9u8; 32]), Err(BranchError::Mac));
        // Every single hex digit changed: the MAC no longer verifies.
        let c = BRANCH_MAGIC_COOKIE.len();
        for i in c..good.len() {
            let mut t = good.clone().into_bytes();
            if t[i] == b'c' && i == c + TXN_HEX + 2 {
                continue;
            }
            t[i] = if t[i] == b'0' { b'1' } else { b'0' };
            let t = String::from_utf8(t).unwrap();
            assert!(verify_branch(&t, &KEY).is_err(), "{t}");
        }
        assert_eq!(
            verify_branch(&good[..good.len() - 1], &KEY),
            Err(BranchError::Format)
        );
        assert_eq!(
            verify_branch(&format!("{good}0"), &KEY),
            Err(BranchError::Format)
        );
        assert_eq!(
            verify_branch(&good.to_uppercase(), &KEY),
            Err(BranchError::Format)
        );
    }
    for foreign in [
        "",
        "z9hG4bK",
        "z9hG4bK776asdhds",
        "776asdhds",
        "z9hG4bKxxxxxxxxxxxxxxxxxxxxxxxxxxcxxxxxxxxxxxxxxxx",
    ] {
        assert_eq!(
            verify_branch(foreign, &KEY),
            Err(BranchError::Format),
            "{foreign}"
        );
    }
}

#[test]
fn loops_are_detected_and_spirals_are_not() {
    const K: [u8; 32] = [3u8; 32];
    let hop = Hop::Conn {
        proto: 6,
        conn_id: 5,
    };
    let ours = |v: &Via<'_>| v.host() == "proxy.example.com";
    let req = msg(INVITE);
    assert!(!is_looped(&req, &LoopKey::of(&req, None), &K, ours));
    // The request comes back with our Via on top of what it had.
    let b = signed_branch(&req, &LoopKey::of(&req, None), &hop, &K);
    let ours_via = format!(
        "Via: SIP/2.0/WS proxy.example.com;branch={}\r\n",
        b.as_str()
    );
    let back = INVITE.replacen("Via:", &format!("{ours_via}Via:"), 1);
    let back = msg(&back);
    let key = LoopKey::of(&back, None);
    assert!(is_looped(&back, &key, &K, ours), "same R-URI: a loop");
    // Someone else's Via with the same branch is not ours, nor is a
    // branch made under another key.
    assert!(!is_looped(&back, &key, &K, |v| v.host() == "other.example.com"));
    assert!(!is_looped(&back, &key, &[4u8; 32], ours));
    // The unsigned branch of a Via with our loop digits is not ours.
    let unsigned = format!(
        "Via: SIP/2.0/WS proxy.example.com;branch={}\r\n",
        super::stateless_branch(&req)
    );
    let fake = msg(&INVITE.replacen("Via:", &format!("{unsigned}Via:"), 1));
    assert!(!is_looped(&fake, &LoopKey::of(&fake, None), &K, ours));
    // A new Request-URI (e.g. after a location lookup) is a spiral.
    let moved = LoopKey::of(&back, Some("sip:bob@192.0.2.4"));
    assert!(!is_looped(&back, &moved, &K, ours));
    let spiral = INVITE
        .replacen("INVITE sip:bob@example.com", "INVITE sip:bob@192.0.2.4", 1)
        .replacen("Via:", &format!("{ours_via}Via:"), 1);
    let spiral = msg(&spiral);
    assert!(!is_looped(&spiral, &LoopKey::of(&spiral, None), &K, ours));
    // Forwarded to the same place again (e.g. by $du): a loop.
    let fwd = LoopKey::of(&req, Some("sip:bob@192.0.2.4"));
    let via2 = format!(
        "Via: SIP/2.0/WS proxy.example.com;branch={}\r\n",
        signed_branch(&req, &fwd, &hop, &K).as_str()
    );
    let again = INVITE.replacen("Via:", &format!("{via2}Via:"), 1);
    let again = msg(&again);
    let key = LoopKey::of(&again, Some("sip:bob@192.0.2.4"));
    assert!(is_looped(&again, &key, &K, ours));
}

/// Each branch of a forked request has its own Via branch, which verifies with its index and
/// the same hop; branch 0 is the branch of a request relayed once.
#[test]
fn forked_branches_are_distinct_and_verify_with_their_index() {
    let req = msg(INVITE);
    let lk = LoopKey::of(&req, None);
    for hop in hops() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..16u8 {
            let b = super::hop::signed_branch_n(&req, &lk, &hop, i, &KEY);
            assert!(seen.insert(b.as_str().to_string()), "branch {i} repeats");
            let v = verify_branch(b.as_str(), &KEY).unwrap();
            assert_eq!((v.index, v.hop, v.txn), (i, hop, txn_digits(&req)));
        }
        assert_eq!(
            super::hop::signed_branch_n(&req, &lk, &hop, 0, &KEY).as_str(),
            signed_branch(&req, &lk, &hop, &KEY).as_str()
        );
    }
}
