//! Signed stateless branches: the Via branch a proxy adds names the hop the
//! request came from, under a MAC, so that a response is routed back by the
//! branch alone (RFC 3261 §16.7 step 9 keeps the Via for the stateless case;
//! §16.11 requires the branch to be the same for retransmissions and CANCEL).
//!
//! Layout after the magic cookie, all lower-case hex:
//!
//! ```text
//! z9hG4bK <txn:24> <proto:2> <kind:1> <hop value> <mac:16> <loop:8>
//! ```
//!
//! - `txn`: the transaction digits of [`branch_bytes`](super::branch) (a hash
//!   of the received branch, or of the RFC 2543 fields);
//! - `proto` and the hop: `c` and 16 digits of a connection id, `4` and an
//!   IPv4 address and port (8 + 4 digits), or `6` and an IPv6 address and
//!   port (32 + 4 digits);
//! - `mac`: the first 8 bytes of SHA-1 over the key, a label and everything
//!   before it plus the loop digits;
//! - `loop`: the [`LoopKey`] digits (RFC 3261 §16.3 step 4), last so that
//!   loop detection finds them.
//!
//! The branch depends only on the request's own fields, the hop and the key:
//! a retransmission, the CANCEL and the ACK for a non-2xx response that come
//! the same way get the same branch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sha1::{Digest, Sha1};
use thiserror::Error;

use super::branch::{txn_digits, write_hex, LoopKey, LOOP_HEX, TXN_HEX};
use super::message::Message;
use super::via::{Via, BRANCH_MAGIC_COOKIE};

/// Hex digits of the MAC in a signed branch.
const MAC_HEX: usize = 16;

/// Longest signed branch (an IPv6 hop).
pub const SIGNED_BRANCH_MAX: usize =
    BRANCH_MAGIC_COOKIE.len() + TXN_HEX + 3 + 36 + MAC_HEX + LOOP_HEX;

/// Where a request came from: the place its responses go back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// A connection of a connection-oriented transport (WS, TCP, TLS...):
    /// responses go over it and nowhere else.
    Conn {
        /// The transport's protocol number.
        proto: u8,
        /// The transport's connection id.
        conn_id: u64,
    },
    /// A source address of a connectionless transport (UDP).
    Addr {
        /// The transport's protocol number.
        proto: u8,
        /// The source address.
        addr: SocketAddr,
    },
}

impl Hop {
    /// The protocol number of the hop.
    pub fn proto(&self) -> u8 {
        match self {
            Hop::Conn { proto, .. } | Hop::Addr { proto, .. } => *proto,
        }
    }
}

/// Why a branch is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BranchError {
    /// The branch does not have the layout of a signed branch.
    #[error("branch is not in our format")]
    Format,
    /// The layout is right but the MAC is not (altered or made up).
    #[error("branch MAC does not verify")]
    Mac,
}

/// A verified signed branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedBranch {
    /// The transaction digits.
    pub txn: [u8; TXN_HEX],
    /// The hop the request came from.
    pub hop: Hop,
    /// The loop digits.
    pub loop_key: LoopKey,
}

/// A signed branch as text (at most [`SIGNED_BRANCH_MAX`] bytes).
#[derive(Clone, Copy)]
pub struct BranchText {
    buf: [u8; SIGNED_BRANCH_MAX],
    len: usize,
}

impl BranchText {
    /// The branch.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Debug for BranchText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn push_hex(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    let end = *at + bytes.len() * 2;
    if let Some(dst) = out.get_mut(*at..end) {
        write_hex(dst, bytes);
    }
    *at = end;
}

fn mac(key: &[u8; 32], signed: &[u8], loop_digits: &[u8]) -> [u8; MAC_HEX] {
    let mut h = Sha1::new();
    h.update(key);
    h.update(b"sipcore-via");
    h.update((signed.len() as u64).to_be_bytes());
    h.update(signed);
    h.update(loop_digits);
    let mut out = [0u8; MAC_HEX];
    write_hex(&mut out, &h.finalize());
    out
}

/// The signed branch for `req` forwarded with loop digits `loop_key`, from
/// `hop`, under `key` (see the module documentation).
pub fn signed_branch(req: &Message, loop_key: &LoopKey, hop: &Hop, key: &[u8; 32]) -> BranchText {
    let mut b = BranchText {
        buf: [0u8; SIGNED_BRANCH_MAX],
        len: 0,
    };
    let c = BRANCH_MAGIC_COOKIE.len();
    b.buf[..c].copy_from_slice(BRANCH_MAGIC_COOKIE.as_bytes());
    b.buf[c..c + TXN_HEX].copy_from_slice(&txn_digits(req));
    let mut at = c + TXN_HEX;
    push_hex(&mut b.buf, &mut at, &[hop.proto()]);
    let mut value = [0u8; 18];
    let (kind, n) = match hop {
        Hop::Conn { conn_id, .. } => {
            value[..8].copy_from_slice(&conn_id.to_be_bytes());
            (b'c', 8)
        }
        Hop::Addr { addr, .. } => {
            let n = match addr.ip().to_canonical() {
                IpAddr::V4(v4) => {
                    value[..4].copy_from_slice(&v4.octets());
                    4
                }
                IpAddr::V6(v6) => {
                    value[..16].copy_from_slice(&v6.octets());
                    16
                }
            };
            value[n..n + 2].copy_from_slice(&addr.port().to_be_bytes());
            (if n == 4 { b'4' } else { b'6' }, n + 2)
        }
    };
    b.buf[at] = kind;
    at += 1;
    push_hex(&mut b.buf, &mut at, &value[..n]);
    let m = mac(key, &b.buf[c..at], &loop_key.digits());
    b.buf[at..at + MAC_HEX].copy_from_slice(&m);
    at += MAC_HEX;
    b.buf[at..at + LOOP_HEX].copy_from_slice(&loop_key.digits());
    b.len = at + LOOP_HEX;
    b
}

fn hex_value(s: &[u8]) -> Option<u128> {
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    s.iter().try_fold(0u128, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(d))
    })
}

/// Checks that `branch` is a signed branch made under `key` and returns what
/// it holds. Errors: [`BranchError::Format`] for anything that is not laid
/// out as ours (another element's branch), [`BranchError::Mac`] when the MAC
/// is wrong.
pub fn verify_branch(branch: &str, key: &[u8; 32]) -> Result<SignedBranch, BranchError> {
    let b = branch
        .as_bytes()
        .strip_prefix(BRANCH_MAGIC_COOKIE.as_bytes())
        .ok_or(BranchError::Format)?;
    let value_len = match b.get(TXN_HEX + 2) {
        Some(b'c') => 16,
        Some(b'4') => 12,
        Some(b'6') => 36,
        _ => return Err(BranchError::Format),
    };
    let signed_len = TXN_HEX + 3 + value_len;
    if b.len() != signed_len + MAC_HEX + LOOP_HEX {
        return Err(BranchError::Format);
    }
    let (signed, rest) = b.split_at(signed_len);
    let (m, lp) = rest.split_at(MAC_HEX);
    let proto = hex_value(&signed[TXN_HEX..TXN_HEX + 2]).ok_or(BranchError::Format)?;
    let value = &signed[TXN_HEX + 3..];
    let all_hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !all_hex(signed.get(..TXN_HEX).unwrap_or_default()) || !all_hex(lp) || !all_hex(value) {
        return Err(BranchError::Format);
    }
    if mac(key, signed, lp) != m {
        return Err(BranchError::Mac);
    }
    let proto = u8::try_from(proto).map_err(|_| BranchError::Format)?;
    let hop = match value_len {
        16 => Hop::Conn {
            proto,
            conn_id: u64::try_from(hex_value(value).ok_or(BranchError::Format)?)
                .map_err(|_| BranchError::Format)?,
        },
        12 => {
            let v = hex_value(value).ok_or(BranchError::Format)?;
            let ip = Ipv4Addr::from(u32::try_from(v >> 16).map_err(|_| BranchError::Format)?);
            Hop::Addr {
                proto,
                addr: SocketAddr::new(IpAddr::V4(ip), (v & 0xffff) as u16),
            }
        }
        _ => {
            let ip = Ipv6Addr::from(hex_value(&value[..32]).ok_or(BranchError::Format)?);
            let port = hex_value(&value[32..]).ok_or(BranchError::Format)?;
            Hop::Addr {
                proto,
                addr: SocketAddr::new(IpAddr::V6(ip), port as u16),
            }
        }
    };
    let mut txn = [0u8; TXN_HEX];
    txn.copy_from_slice(&signed[..TXN_HEX]);
    let mut loop_digits = [0u8; LOOP_HEX];
    loop_digits.copy_from_slice(lp);
    Ok(SignedBranch {
        txn,
        hop,
        loop_key: LoopKey::from_digits(loop_digits),
    })
}

/// Whether `req`, about to be forwarded with loop digits `key`, has looped
/// (RFC 3261 §16.3 step 4): one of its Vias was put there by this proxy
/// (`is_ours`, with a branch that verifies under `mac_key`, see
/// [`verify_branch`]) and carries those digits at the end of its branch. A
/// request that came back with a different Request-URI, Call-ID, From tag or
/// CSeq number is spiralling, not looping. Malformed Vias are skipped; a Via
/// whose text lacks the digits is not parsed at all.
pub fn is_looped(
    req: &Message,
    key: &LoopKey,
    mac_key: &[u8; 32],
    is_ours: impl Fn(&Via<'_>) -> bool,
) -> bool {
    let digits = key.digits();
    let lp = &digits[..];
    req.vias()
        .filter(|v| v.as_bytes().windows(LOOP_HEX).any(|w| w == lp))
        .any(|v| {
            Via::parse(v).is_ok_and(|via| {
                is_ours(&via)
                    && via
                        .branch()
                        .and_then(|b| verify_branch(b, mac_key).ok())
                        .is_some_and(|sb| sb.loop_key == *key)
            })
        })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

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
            super::super::stateless_branch(&req)
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
}
