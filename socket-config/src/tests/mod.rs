//! Whole-grammar tests: every example of the research notes and the OpenSIPS manual, every
//! parameter and spelling ([`valid`]), every error kind with its exact column ([`errors`]).

mod errors;
mod valid;

use crate::*;
use std::net::{Ipv4Addr, Ipv6Addr};

pub(super) fn single(v: &str) -> SocketDef {
    match parse(v) {
        Ok(SocketSpec::Single(d)) => d,
        other => panic!("{v:?} gave {other:?}"),
    }
}

pub(super) fn err(v: &str) -> (SocketErrorKind, usize) {
    match parse(v) {
        Err(e) => (e.kind, e.column),
        Ok(s) => panic!("{v:?} parsed as {s:?}"),
    }
}

pub(super) fn v4(s: &str) -> Host {
    Host::V4(s.parse::<Ipv4Addr>().unwrap())
}

pub(super) fn v6(s: &str) -> Host {
    Host::V6(s.parse::<Ipv6Addr>().unwrap())
}

pub(super) fn name(s: &str) -> Host {
    Host::Name(s.into())
}

/// The canonical form reads back as the same definition.
pub(super) fn round_trip(v: &str) {
    let spec = parse(v).unwrap();
    let text = spec.to_string();
    assert_eq!(parse(&text).unwrap(), spec, "{v:?} -> {text:?}");
}
