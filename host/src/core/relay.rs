//! Stateless relay (`forward()`, `t_relay()`): RFC 3261 §16 as a stateless proxy.
use super::Core;
use crate::script::Value;
use crate::sip::Message;
use sipcore_abi::ReceiveInfo;

/// Relay `msg` to `$du`, or the (possibly rewritten) Request-URI.
pub(crate) fn forward(
    _core: &Core,
    info: &ReceiveInfo,
    _msg: &Message,
    _du: Option<&str>,
    _ru: Option<&str>,
    _args: &[Value<'_>],
) -> i64 {
    crate::log!(Error, "core", "forward(): stateless relay is not built yet"; "peer" => super::peer(info));
    -1
}
