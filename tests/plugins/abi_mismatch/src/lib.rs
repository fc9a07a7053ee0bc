//! A plugin built for another ABI major version: the loader must refuse it before running any of
//! its code. It is otherwise a well-formed module.
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    std_types::{RNone, ROk, RResult, RSlice, RStr, RString},
};
use sipcore_abi::{AbiStamp, HostApiRef, Module, ModuleRef, ParamEntry, ABI_MAGIC, ABI_MAJOR};

/// The stamp of a plugin built against ABI `ABI_MAJOR + 1`.
#[no_mangle]
pub static sipcore_module_abi: AbiStamp = AbiStamp {
    magic: ABI_MAGIC,
    major: ABI_MAJOR + 1,
    minor: 0,
};

extern "C" fn init(_: HostApiRef, _: RSlice<'_, ParamEntry<'_>>) -> RResult<(), RString> {
    ROk(())
}
extern "C" fn destroy() {}

#[abi_stable::export_root_module]
pub fn sipcore_root_module() -> ModuleRef {
    Module {
        name: RStr::from_str("abi_mismatch"),
        version: RStr::from_str("0.0.0"),
        params: RSlice::from_slice(&[]),
        init,
        destroy,
        transport: RNone,
        trace_sink: RNone,
        flush: RNone,
        stats: RNone,
    }
    .leak_into_prefix()
}
