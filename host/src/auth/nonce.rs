//! Digest nonces that carry their own expiry and client binding under a MAC (RFC 7616 §5.4:
//! "a nonce ... with a time-stamp and an ETag, protected by a private key"; OpenSIPS auth's
//! `nonce_expire`), and the nonce-count check that refuses a replayed `nc` (RFC 7616 §3.4:
//! the server "SHOULD" check nc to detect replays).
//!
//! A nonce is 24 bytes, base64url without padding (32 characters):
//! `expires (u32, unix seconds) | index (u32) | HMAC-SHA256(key, expires | index | binding)[..16]`.
//! The binding is what the caller ties the nonce to (the client's IP address), so a nonce
//! taken from one client is worth nothing from another. `index` names a slot in a fixed
//! table that remembers the highest `nc` used with that nonce; a slot is reused by the nonce
//! issued `slots` later, and the older nonce is then answered as stale (the client asks for a
//! new one by itself), so memory is bounded whatever the rate of challenges.
//!
//! Pure: time is passed in; the key comes from the caller.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};

const MAC_LEN: usize = 16;
const RAW_LEN: usize = 8 + MAC_LEN;

/// The verdict on a nonce presented with credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, in time, for this client, and the `nc` is new.
    Valid,
    /// Ours and intact, but expired (or its slot was reused): challenge again with
    /// `stale=true` (RFC 7616 §3.3), the client retries without asking its user.
    Stale,
    /// Ours, but this `nc` (or, without qop, the nonce itself) was already used: a replay.
    Replayed,
    /// Not a nonce of ours, altered, or issued to another client.
    Invalid,
}

/// Issues and checks nonces; shared by every worker (lock-free).
pub struct Nonces {
    /// HMAC-SHA-256 keyed once (its inner and outer key blocks hashed): each MAC is then a
    /// copy of this state and two compressions instead of four.
    keyed: Hmac<Sha256>,
    /// Per slot: `(generation << 32) | highest nc seen`.
    slots: Box<[AtomicU64]>,
    next: AtomicU64,
}

impl Nonces {
    /// A nonce table with `key` (random per process) and `slots` entries (at least 1): up to
    /// `slots` nonces are in use at once before the oldest ones turn stale.
    pub fn new(key: [u8; 32], slots: usize) -> Nonces {
        let slots = slots.max(1);
        Nonces {
            keyed: Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length"),
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
        }
    }

    fn mac(&self, head: &[u8; 8], binding: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.keyed.clone();
        m.update(head);
        m.update(binding);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A new nonce for the client `binding`, valid until `now + expire` (unix seconds).
    pub fn issue(&self, now: u64, expire: u32, binding: &[u8]) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let len = self.slots.len() as u64;
        let (slot, gen) = ((n % len) as usize, (n / len) as u32);
        self.slots[slot].store(u64::from(gen) << 32, Ordering::Relaxed);
        let expires = u32::try_from(now.saturating_add(u64::from(expire))).unwrap_or(u32::MAX);
        let mut raw = [0u8; RAW_LEN];
        raw[..4].copy_from_slice(&expires.to_be_bytes());
        raw[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        let head: [u8; 8] = raw[..8].try_into().unwrap_or_default();
        raw[8..].copy_from_slice(&self.mac(&head, binding));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `nonce` is one of ours, unaltered, for the client `binding` (expiry and `nc`
    /// not looked at): a cheap check before anything costlier.
    pub fn intact(&self, nonce: &str, binding: &[u8]) -> bool {
        let mut raw = [0u8; RAW_LEN];
        if nonce.len() != 32 || URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) != Ok(RAW_LEN) {
            return false;
        }
        let head: [u8; 8] = raw[..8].try_into().unwrap_or_default();
        super::digest::ct_eq(&raw[8..], &self.mac(&head, binding))
    }

    /// Check `nonce` from the client `binding` at `now`, with the credentials' `nc` (`None`
    /// without qop: the nonce is then good for one request). A valid check records the `nc`.
    pub fn check(&self, nonce: &str, now: u64, binding: &[u8], nc: Option<u32>) -> NonceCheck {
        if !self.intact(nonce, binding) {
            return NonceCheck::Invalid;
        }
        self.check_intact(nonce, now, nc)
    }

    /// [`Nonces::check`] for a nonce [`Nonces::intact`] accepted for this client: its MAC is
    /// not computed again.
    pub fn check_intact(&self, nonce: &str, now: u64, nc: Option<u32>) -> NonceCheck {
        let mut raw = [0u8; RAW_LEN];
        if nonce.len() != 32 || URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) != Ok(RAW_LEN) {
            return NonceCheck::Invalid;
        }
        let expires = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        if u64::from(expires) < now {
            return NonceCheck::Stale;
        }
        // The index is the low 32 bits of the issue counter: its slot and generation.
        let low = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let next = self.next.load(Ordering::Relaxed);
        let Some(n) = full_counter(next, low) else {
            return NonceCheck::Invalid;
        };
        let len = self.slots.len() as u64;
        let (slot, gen) = (&self.slots[(n % len) as usize], (n / len) as u32);
        let nc = nc.unwrap_or(1);
        if nc == 0 {
            return NonceCheck::Invalid;
        }
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            if (cur >> 32) as u32 != gen {
                return NonceCheck::Stale;
            }
            if nc <= cur as u32 {
                return NonceCheck::Replayed;
            }
            let new = (u64::from(gen) << 32) | u64::from(nc);
            match slot.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return NonceCheck::Valid,
                Err(actual) => cur = actual,
            }
        }
    }
}

/// The issue counter whose low 32 bits are `low`: the latest value not above `next - 1`
/// (a nonce's MAC proves we issued it, so it is at most 2^32 issues old).
fn full_counter(next: u64, low: u32) -> Option<u64> {
    let last = next.checked_sub(1)?;
    let base = last & !0xffff_ffff;
    let n = base | u64::from(low);
    if n <= last {
        Some(n)
    } else {
        base.checked_sub(1 << 32).map(|b| b | u64::from(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[192, 0, 2, 7];

    #[test]
    fn a_nonce_is_valid_once_per_nc_and_only_for_its_client() {
        let n = Nonces::new([7; 32], 16);
        let nonce = n.issue(1000, 30, IP);
        assert_eq!(nonce.len(), 32);
        assert_eq!(
            n.check(&nonce, 1010, &[192, 0, 2, 8], Some(1)),
            NonceCheck::Invalid
        );
        assert_eq!(n.check(&nonce, 1010, IP, Some(1)), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1010, IP, Some(1)), NonceCheck::Replayed);
        assert_eq!(n.check(&nonce, 1010, IP, Some(2)), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1011, IP, Some(2)), NonceCheck::Replayed);
        assert_eq!(n.check(&nonce, 1011, IP, Some(0)), NonceCheck::Invalid);
        assert_eq!(n.check(&nonce, 1030, IP, Some(5)), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 1031, IP, Some(6)), NonceCheck::Stale);
    }

    #[test]
    fn without_qop_a_nonce_serves_one_request() {
        let n = Nonces::new([1; 32], 4);
        let nonce = n.issue(5, 30, IP);
        assert_eq!(n.check(&nonce, 5, IP, None), NonceCheck::Valid);
        assert_eq!(n.check(&nonce, 5, IP, None), NonceCheck::Replayed);
    }

    #[test]
    fn altered_foreign_or_garbage_nonces_are_invalid() {
        let n = Nonces::new([2; 32], 4);
        let other = Nonces::new([3; 32], 4);
        let nonce = n.issue(5, 30, IP);
        assert_eq!(other.check(&nonce, 5, IP, Some(1)), NonceCheck::Invalid);
        let mut b = nonce.clone().into_bytes();
        b[3] = if b[3] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(b).unwrap();
        assert_eq!(n.check(&altered, 5, IP, Some(1)), NonceCheck::Invalid);
        for junk in ["", "abc", &"A".repeat(32), &"*".repeat(32), &nonce[..31]] {
            assert_eq!(n.check(junk, 5, IP, Some(1)), NonceCheck::Invalid, "{junk}");
        }
    }

    #[test]
    fn a_reused_slot_makes_the_old_nonce_stale() {
        let n = Nonces::new([4; 32], 2);
        let first = n.issue(5, 30, IP);
        let _ = n.issue(5, 30, IP);
        let third = n.issue(5, 30, IP); // takes the first one's slot
        assert_eq!(n.check(&first, 6, IP, Some(1)), NonceCheck::Stale);
        assert_eq!(n.check(&third, 6, IP, Some(1)), NonceCheck::Valid);
    }

    #[test]
    fn full_counter_recovers_the_issue_number() {
        assert_eq!(full_counter(0, 0), None);
        assert_eq!(full_counter(10, 3), Some(3));
        assert_eq!(full_counter(10, 9), Some(9));
        assert_eq!(full_counter((1 << 32) + 5, 0xffff_fff0), Some(0xffff_fff0));
        assert_eq!(full_counter((1 << 32) + 5, 2), Some((1 << 32) + 2));
        assert_eq!(full_counter(10, 11), None);
    }
}
