//! Stateless branch IDs for forwarded requests (RFC 3261 §16.11).

use sha1::{Digest, Sha1};

use super::headers::HeaderName;
use super::message::Message;
use super::scan::trim;
use super::via::BRANCH_MAGIC_COOKIE;

/// Hex digits of the hash part of a [`stateless_branch`]: [`TXN_HEX`] digits
/// naming the transaction, then [`LOOP_HEX`] digits for loop detection.
pub const BRANCH_HASH_LEN: usize = TXN_HEX + LOOP_HEX;

/// Hex digits of a branch that identify the transaction (§16.11).
pub(crate) const TXN_HEX: usize = 24;

/// Hex digits of a branch that detect loops (§16.3 step 4, §16.6 step 8).
pub(crate) const LOOP_HEX: usize = 8;

/// Length of a [`stateless_branch`]: the magic cookie and the hash.
pub const BRANCH_LEN: usize = BRANCH_MAGIC_COOKIE.len() + BRANCH_HASH_LEN;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The branch a stateless proxy puts in the Via it adds to `req` when it
/// forwards it unchanged (RFC 3261 §16.11); see [`branch_bytes`].
pub fn stateless_branch(req: &Message) -> String {
    branch_bytes(req, &LoopKey::of(req, None))
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

/// The branch for `req` forwarded with the loop digits `key` (see
/// [`LoopKey::of`]): `z9hG4bK`, then 24 lower-case hex digits of SHA-1 over
///
/// - the received top Via branch, if it starts with the magic cookie;
/// - otherwise (an RFC 2543 request) the top Via value as received, the To
///   tag, the From tag, the Call-ID, the CSeq number (not the method) and the
///   Request-URI, each length-prefixed;
///
/// then the 8 hex digits of `key`.
///
/// The method and the To tag never enter the hash, so retransmissions, a
/// CANCEL and the ACK for a non-2xx response all get the INVITE's branch: an
/// RFC 3261 client reuses the INVITE's branch for them (§9.1, §17.1.1.3).
/// For an RFC 2543 INVITE, the ACK for a non-2xx response carries the To tag
/// of that response, so it matches only when the INVITE already had a To
/// tag (as the RFC 3261 list of fields implies); a CANCEL always matches.
pub(crate) fn branch_bytes(req: &Message, key: &LoopKey) -> [u8; BRANCH_LEN] {
    let mut out = [0u8; BRANCH_LEN];
    let (cookie, hex) = out.split_at_mut(BRANCH_MAGIC_COOKIE.len());
    cookie.copy_from_slice(BRANCH_MAGIC_COOKIE.as_bytes());
    let (txn, lp) = hex.split_at_mut(TXN_HEX);
    txn.copy_from_slice(&txn_digits(req));
    lp.copy_from_slice(&key.0);
    out
}

/// The transaction digits of a forwarded request's branch (see
/// [`branch_bytes`]): 24 lower-case hex digits of SHA-1 over the received
/// RFC 3261 branch, or over the RFC 2543 fields.
pub(crate) fn txn_digits(req: &Message) -> [u8; TXN_HEX] {
    let mut h = Sha1::new();
    h.update(b"sipcore-branch");
    let mut part = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    let top = req.vias().next().unwrap_or("");
    match req.top_branch().ok().flatten() {
        Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => part(b),
        _ => {
            part(top);
            part(req.to_tag_param().ok().flatten().flatten().unwrap_or(""));
            part(req.from_tag_param().ok().flatten().flatten().unwrap_or(""));
            part(req.call_id().unwrap_or(""));
            part(cseq_number(req));
            part(req.ruri().unwrap_or(""));
        }
    }
    let mut out = [0u8; TXN_HEX];
    write_hex(&mut out, &h.finalize());
    out
}

/// The transaction digits a request with the RFC 3261 branch `branch` gets
/// (as for the request it came in): for checking that a response's next Via belongs to
/// the transaction our branch names. `None` for a branch without the magic
/// cookie (RFC 2543: the digits depend on fields a response changes).
pub fn txn_digits_of_branch(branch: &str) -> Option<[u8; TXN_HEX]> {
    if !branch.starts_with(BRANCH_MAGIC_COOKIE) {
        return None;
    }
    let mut h = Sha1::new();
    h.update(b"sipcore-branch");
    h.update((branch.len() as u64).to_be_bytes());
    h.update(branch.as_bytes());
    let mut out = [0u8; TXN_HEX];
    write_hex(&mut out, &h.finalize());
    Some(out)
}

fn cseq_number(req: &Message) -> &str {
    trim(req.first(HeaderName::CSeq).unwrap_or(""))
        .split([' ', '\t'])
        .next()
        .unwrap_or("")
}

/// Writes `digest` as lower-case hex into `out` (two digits per byte, as many bytes as fit).
pub fn write_hex(out: &mut [u8], digest: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
}

/// The loop-detection digits of a forwarded request's branch: 8 hex digits of
/// SHA-1 over the fields a loop leaves unchanged and a spiral changes (RFC
/// 3261 §16.6 step 8): the new Request-URI, the Call-ID, the From tag and the
/// CSeq number. Computed once per forward, for [`is_looped`] and the branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopKey([u8; LOOP_HEX]);

impl LoopKey {
    /// The key of `req` forwarded with Request-URI `ruri` (`None`: its own).
    pub fn of(req: &Message, ruri: Option<&str>) -> LoopKey {
        let mut h = Sha1::new();
        h.update(b"sipcore-loop");
        let mut part = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        part(ruri.or(req.ruri()).unwrap_or(""));
        part(req.call_id().unwrap_or(""));
        part(req.from().ok().and_then(|f| f.tag()).unwrap_or(""));
        part(cseq_number(req));
        let mut out = [0u8; LOOP_HEX];
        write_hex(&mut out, &h.finalize());
        LoopKey(out)
    }

    /// The 8 hex digits.
    pub fn digits(&self) -> [u8; LOOP_HEX] {
        self.0
    }

    /// A key from digits read back out of a branch.
    pub(crate) fn from_digits(d: [u8; LOOP_HEX]) -> LoopKey {
        LoopKey(d)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        To: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n\
        Call-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nMax-Forwards: 70\r\n\r\n";

    /// Independently computed (Python's hashlib): the first 24 hex digits of
    /// SHA-1 of "sipcore-branch", the length of "z9hG4bK776asdhds" as 8
    /// big-endian bytes, then the branch itself; then the first 8 of SHA-1 of
    /// "sipcore-loop" and the length-prefixed R-URI, Call-ID, From tag, CSeq
    /// number.
    const INVITE_BRANCH: &str = "z9hG4bK1e8758f65af02dc19795c272d8027724";

    #[test]
    fn rfc3261_branch_is_a_hash_of_the_received_branch() {
        let b = stateless_branch(&msg(INVITE));
        assert_eq!(b.len(), BRANCH_LEN);
        assert_eq!(b, INVITE_BRANCH);
        // Retransmission, CANCEL and ACK (non-2xx) share the branch.
        let cancel = INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("314159 INVITE", "314159 CANCEL");
        let ack = INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("314159 INVITE", "314159 ACK")
            .replace(
                "To: <sip:bob@example.com>",
                "To: <sip:bob@example.com>;tag=99",
            );
        for other in [INVITE.to_owned(), cancel, ack] {
            assert_eq!(stateless_branch(&msg(&other)), INVITE_BRANCH);
        }
        let next = INVITE.replace("z9hG4bK776asdhds", "z9hG4bK776asdhdt");
        assert_ne!(stateless_branch(&msg(&next)), INVITE_BRANCH);
    }

    #[test]
    fn rfc2543_branch_hashes_the_dialog_fields() {
        let old = INVITE.replace(";branch=z9hG4bK776asdhds", ";branch=776asdhds");
        let b = stateless_branch(&msg(&old));
        assert!(b.starts_with("z9hG4bK") && b.len() == BRANCH_LEN);
        assert_ne!(b, INVITE_BRANCH);
        let cancel = old
            .replace("INVITE sip", "CANCEL sip")
            .replace("314159 INVITE", "314159 CANCEL");
        assert_eq!(stateless_branch(&msg(&cancel)), b);
        let no_branch = INVITE.replace(";branch=z9hG4bK776asdhds", "");
        let nb = stateless_branch(&msg(&no_branch));
        assert_ne!(nb, b);
        for (from, to) in [
            ("tag=1928301774", "tag=1928301775"),
            ("Call-ID: a84b4c76e66710", "Call-ID: a84b4c76e66711"),
            ("314159 INVITE", "314160 INVITE"),
            ("INVITE sip:bob@", "INVITE sip:carol@"),
            (
                "<sip:bob@example.com>\r\n",
                "<sip:bob@example.com>;tag=x\r\n",
            ),
            ("pc33.example.com", "pc34.example.com"),
        ] {
            assert_ne!(
                stateless_branch(&msg(&no_branch.replacen(from, to, 1))),
                nb,
                "{to}"
            );
        }
    }

    #[test]
    fn txn_digits_of_a_branch_match_the_request() {
        let req = msg(INVITE);
        assert_eq!(
            txn_digits_of_branch("z9hG4bK776asdhds"),
            Some(txn_digits(&req))
        );
        assert_ne!(
            txn_digits_of_branch("z9hG4bK776asdhdt"),
            Some(txn_digits(&req))
        );
        assert_eq!(txn_digits_of_branch("776asdhds"), None);
    }
}
