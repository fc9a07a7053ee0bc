//! The HEP v2/v3 decoder (HEP spec, research/hep.md) on arbitrary bytes: never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = proto_hep::codec::decode(data);
});
