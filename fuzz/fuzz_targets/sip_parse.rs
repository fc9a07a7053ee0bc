//! The SIP parser and everything built on it (accessors, validation, reply, forward,
//! response relay; RFC 3261 §7, §16, RFC 4475): never panics, and what it rewrites parses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sipcore::sip::fuzz_parse(data);
    let _ = sipcore::sip::reply_to_malformed(data, 400, "Bad Request");
});
