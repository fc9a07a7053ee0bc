//! The script runs the transaction layer asks for (OpenSIPS tm's `failure_route` and
//! `onreply_route[...]` armed by `t_on_failure()` / `t_on_reply()`), installed by the core at
//! startup: the script's environment calls into this module, so calling it back directly
//! would be an import cycle.
use super::cell::FailureRun;
use crate::core::send::Core;
use crate::script::RouteRef;
use crate::sip::Message;
use sipcore_abi::ReceiveInfo;
use std::sync::OnceLock;

/// The callbacks.
pub(crate) struct Hooks {
    /// Runs a failure route for cell `id` (and then resumes the cell).
    pub(crate) failure: fn(&Core, u64, FailureRun),
    /// Runs an `onreply_route` for a response of a branch: `None` when the script dropped it,
    /// else the response rewritten by the script (`fix_nated_contact()`), if it was.
    pub(crate) reply: fn(&Core, &ReceiveInfo, &Message, RouteRef) -> Option<Option<Message>>,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Installs the callbacks (once, before the first message).
pub(crate) fn install(h: Hooks) {
    let _ = HOOKS.set(h);
}

/// Runs the failure route of `run` for cell `id`; false without hooks (the caller then
/// resumes the cell as if the route did nothing).
pub(super) fn failure(core: &Core, id: u64, run: FailureRun) -> bool {
    match HOOKS.get() {
        Some(h) => {
            (h.failure)(core, id, run);
            true
        }
        None => false,
    }
}

/// Runs `route` for a response: `None` when the script dropped it, else its rewrite if the
/// script made one; kept as is without hooks.
pub(super) fn reply(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    route: RouteRef,
) -> Option<Option<Message>> {
    match HOOKS.get() {
        Some(h) => (h.reply)(core, info, msg, route),
        None => Some(None),
    }
}
