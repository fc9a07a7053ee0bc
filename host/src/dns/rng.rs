//! Cheap per-thread randomness for SRV weights (RFC 2782) and query ids (RFC 5452 §9.2).
use std::cell::Cell;

/// 64 random bits: xorshift64* per thread, seeded from the OS.
pub(super) fn random_u64() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            x = u64::from_ne_bytes(b) | 1;
        }
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A uniform draw in `0..=n` for RFC 2782 weighted selection.
pub(super) fn draw(n: u32) -> u32 {
    (random_u64() % (u64::from(n) + 1)) as u32
}
