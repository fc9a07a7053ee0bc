//! Stateless branch IDs for forwarded requests (RFC 3261 §16.11).

use sha1::{Digest, Sha1};

use super::message::Message;
use super::scan::trim;
use super::via::BRANCH_MAGIC_COOKIE;

/// Hex digits of the hash part of a [`stateless_branch`].
pub const BRANCH_HASH_LEN: usize = 32;

/// Length of a [`stateless_branch`]: the magic cookie and the hash.
pub const BRANCH_LEN: usize = BRANCH_MAGIC_COOKIE.len() + BRANCH_HASH_LEN;

/// The branch a stateless proxy puts in the Via it adds to `req` (RFC 3261
/// §16.11): `z9hG4bK` followed by 32 lower-case hex digits of SHA-1 over
///
/// - the received top Via branch, if it starts with the magic cookie;
/// - otherwise (an RFC 2543 request) the top Via value as received, the To
///   tag, the From tag, the Call-ID, the CSeq number (not the method) and the
///   Request-URI, each length-prefixed.
///
/// The method never enters the hash, so retransmissions, a CANCEL and the ACK
/// for a non-2xx response all get the INVITE's branch: an RFC 3261 client
/// reuses the INVITE's branch for them (§9.1, §17.1.1.3). For an RFC 2543
/// INVITE, the ACK for a non-2xx response carries the To tag of that
/// response, so it matches only when the INVITE already had a To tag (as the
/// RFC 3261 list of fields implies); a CANCEL always matches.
pub fn stateless_branch(req: &Message) -> String {
    branch_bytes(req).iter().map(|&b| char::from(b)).collect()
}

/// [`stateless_branch`] as bytes, without allocating.
pub(crate) fn branch_bytes(req: &Message) -> [u8; BRANCH_LEN] {
    let mut h = Sha1::new();
    h.update(b"sipcore-branch");
    let mut part = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    let top = req.vias().next().unwrap_or("");
    let via = req.top_via().ok();
    match via.as_ref().and_then(|v| v.branch()) {
        Some(b) if b.starts_with(BRANCH_MAGIC_COOKIE) => part(b),
        _ => {
            part(top);
            part(req.to().ok().and_then(|t| t.tag()).unwrap_or(""));
            part(req.from().ok().and_then(|f| f.tag()).unwrap_or(""));
            part(req.call_id().unwrap_or(""));
            let cseq = trim(req.header("CSeq").unwrap_or(""));
            part(cseq.split([' ', '\t']).next().unwrap_or(""));
            part(req.ruri().unwrap_or(""));
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; BRANCH_LEN];
    let (cookie, hex) = out.split_at_mut(BRANCH_MAGIC_COOKIE.len());
    cookie.copy_from_slice(BRANCH_MAGIC_COOKIE.as_bytes());
    for (pair, b) in hex.chunks_exact_mut(2).zip(h.finalize()) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
    out
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

    /// Independently computed: SHA-1 of "sipcore-branch", the length of
    /// "z9hG4bK776asdhds" as 8 big-endian bytes, then the branch itself.
    const INVITE_BRANCH: &str = "z9hG4bK1e8758f65af02dc19795c272642a249d";

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
}
