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
    /// The branch's index among the request's forks (see [`signed_branch_n`]).
    pub index: u8,
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
    signed_branch_n(req, loop_key, hop, 0, key)
}

/// [`signed_branch`] for branch `index` (0-15) of a request forked by a stateful proxy: each
/// branch needs its own Via branch (RFC 3261 §16.6 step 8, §17.1.3 matches responses by it).
/// The index rides in the high four bits of the protocol byte, under the MAC; branch 0 is
/// [`signed_branch`]'s, so a request relayed once gets the same branch as before. An index
/// above 15 is taken modulo 16 (a proxy context holds at most 12 branches).
pub fn signed_branch_n(
    req: &Message,
    loop_key: &LoopKey,
    hop: &Hop,
    index: u8,
    key: &[u8; 32],
) -> BranchText {
    let mut b = BranchText {
        buf: [0u8; SIGNED_BRANCH_MAX],
        len: 0,
    };
    let c = BRANCH_MAGIC_COOKIE.len();
    b.buf[..c].copy_from_slice(BRANCH_MAGIC_COOKIE.as_bytes());
    b.buf[c..c + TXN_HEX].copy_from_slice(&txn_digits(req));
    let mut at = c + TXN_HEX;
    push_hex(
        &mut b.buf,
        &mut at,
        &[(index & 0x0f) << 4 | (hop.proto() & 0x0f)],
    );
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
    let (index, proto) = (proto >> 4, proto & 0x0f);
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
        index,
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
