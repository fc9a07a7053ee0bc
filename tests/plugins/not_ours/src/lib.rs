//! A valid shared library that is not a sipcore module (no ABI stamp).

/// Some unrelated export.
#[no_mangle]
pub extern "C" fn not_a_sipcore_module() -> i32 {
    42
}
