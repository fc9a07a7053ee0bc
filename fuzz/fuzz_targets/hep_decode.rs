//! The HEP v2/v3 decoder (HEP spec, research/hep.md) on arbitrary bytes. Invariants: no
//! panic; a decoded packet that re-encodes decodes to the same record; a decoded HEP3 packet
//! is exactly one stream frame (`v3_frame_len`).
#![no_main]
use proto_hep::codec::{decode, encode, v3_frame_len, Version};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let frame = v3_frame_len(data);
    if let Ok(Some(n)) = frame {
        assert!(n >= 6, "frame shorter than the HEP3 header: {n}");
    }
    let Ok(d) = decode(data) else {
        return;
    };
    if d.version == Version::V3 {
        assert_eq!(
            frame,
            Ok(Some(data.len())),
            "decoded HEP3 packet is not one frame"
        );
    }
    let rec = d.record();
    let mut out = Vec::new();
    if encode(&rec, &mut out).is_ok() {
        let again = decode(&out).expect("re-encoded packet decodes");
        assert_eq!(again.record(), rec, "re-encoded packet decodes differently");
    }
});
