//! The per-process secret behind flow tokens (RFC 5626 §5.2) and signed Via branches: drawn
//! once from the OS at first use, never written anywhere. A restart invalidates every token and
//! branch made before it.
use sha1::{Digest, Sha1};
use std::sync::OnceLock;

/// The 32-byte key.
pub(crate) fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        if getrandom::fill(&mut k).is_err() {
            // No OS randomness (cannot happen on Linux): derive from time and pid, and say so.
            crate::log!(
                Warning,
                "core",
                "no OS randomness: flow-token key derived from the clock"
            );
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            let d = Sha1::digest(seed.as_bytes());
            k[..20].copy_from_slice(&d);
        }
        k
    })
}
