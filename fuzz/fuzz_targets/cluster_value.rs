//! The usrloc cluster's values as read from Redis (untrusted): decoding never panics, bad
//! bindings are skipped, the table's limits hold, and removing a node's bindings empties it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sipcore::core::fuzz_cluster_value(data);
});
