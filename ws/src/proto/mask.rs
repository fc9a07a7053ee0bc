//! Payload masking (RFC 6455 §5.3).
//!
//! Octet `i` of the payload is XORed with octet `i mod 4` of the masking key. The
//! same operation masks and unmasks. The hot loop works on 8 bytes at a time with
//! native-endian `u64` loads built from the key repeated twice, which the compiler
//! turns into plain (often vectorised) word XORs; no `unsafe` is needed.

/// XOR `data` with `mask` as if `data` started `offset` bytes into the masked
/// payload (RFC 6455 §5.3: `transformed[i] = original[i] ^ mask[(offset + i) % 4]`).
///
/// `offset` lets a payload be unmasked piecewise as it arrives.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    // Rotate the key so that key[0] applies to data[0].
    let mut key = mask;
    key.rotate_left(offset % 4);
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);

    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(bytes) ^ word;
        chunk.copy_from_slice(&x.to_ne_bytes());
    }
    // Each chunk is a multiple of 4 bytes long, so the tail starts at key[0] again.
    for (b, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= *k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-at-a-time reference of RFC 6455 §5.3.
    fn reference(data: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_example_hello() {
        // RFC 6455 §5.7: masked "Hello" with key 37 fa 21 3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }

    #[test]
    fn matches_reference_for_all_lengths_and_offsets() {
        let mask = [0x01, 0x82, 0x43, 0xc4];
        for len in 0..70 {
            for offset in 0..9 {
                let orig: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = orig.clone();
                let mut slow = orig.clone();
                apply_mask(&mut fast, mask, offset);
                reference(&mut slow, mask, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let mask = [9, 8, 7, 6];
        let orig: Vec<u8> = (0..100u8).collect();
        let mut whole = orig.clone();
        apply_mask(&mut whole, mask, 0);
        let mut pieces = orig.clone();
        let mut at = 0;
        for step in [1usize, 3, 8, 13, 2, 40, 33] {
            let end = (at + step).min(pieces.len());
            apply_mask(&mut pieces[at..end], mask, at);
            at = end;
        }
        assert_eq!(at, 100);
        assert_eq!(whole, pieces);
    }
}
