//! The transaction layer (RFC 3261 §17, RFC 6026) as pure state machines: no I/O, no clock,
//! time passed in, in the manner of the other protocol cores (`ws/src/proto`, `sip`, `auth`).
//!
//! * [`ClientKey`], [`ServerKey`]: the keys transactions are found by (§17.1.3 client, §17.2.3
//!   server, with the RFC 2543 fallback) and CANCEL matching (§9.2, [`ServerKey::of_cancelled`]).
//! * [`ClientInvite`], [`ClientNonInvite`] (§17.1.1, §17.1.2; RFC 6026 §7.2 Accepted state) and
//!   [`ServerInvite`], [`ServerNonInvite`] (§17.2.1 with 100 Trying, §17.2.2; RFC 6026 §7.1
//!   Accepted state): each takes an [`Event`] and the current instant and returns the
//!   [`Action`]s the driver must carry out (send bytes to the transaction's peer, pass a message
//!   to the TU, arm or disarm a timer, report a timeout or transport error, forget the
//!   transaction). [`Transaction`] is any of the four.
//! * [`build_ack`], [`build_cancel`]: the ACK for a non-2xx response (§17.1.1.3) and the CANCEL
//!   of a request (§9.1).
//! * [`best_response`]: the proxy's choice of the final response (§16.7 steps 6, 7).
//! * [`ProxyContext`]: one server transaction and its client branches (§16.7, §16.8, §16.10),
//!   with OpenSIPS tm's `fr_timeout` / `fr_inv_timeout` per branch.
//! * [`Table`]: transactions in N shards by key hash, each its own lock (no global lock on the
//!   message path); [`Wheel`]: the deadlines a driver polls, by [`TimerId`] ([`TimerQueue`]:
//!   the same keyed by transaction and timer).
//!
//! The driver (sockets, the timer thread, `t_relay()`) comes in the next step: it keeps the
//! transaction's peer address next to the machine in the [`Table`] and sends every
//! [`Action::Send`] there.

mod build;
mod client;
mod context;
mod key;
mod queue;
mod select;
mod server;
mod table;
mod timers;
mod txn;
mod wheel;

#[cfg(test)]
mod tests_client;
#[cfg(test)]
mod tests_context;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_key;
#[cfg(test)]
mod tests_server;
#[cfg(test)]
mod tests_util;

pub use build::{build_ack, build_cancel, BuildError};
pub use client::{ClientInvite, ClientNonInvite};
pub use context::{
    BranchId, ContextError, ProxyAction, ProxyConfig, ProxyContext, ProxyEvent, ProxyTimer,
    MAX_BRANCHES,
};
pub use key::{ClientKey, KeyError, ServerKey};
pub use queue::TimerQueue;
pub use select::{best_response, challenge_headers, Choice, Selection};
pub use server::{ServerInvite, ServerNonInvite};
pub use table::{Table, TableError};
pub use timers::{Timer, TimerError, TimerValues};
pub use txn::{Action, Actions, Event, Outgoing, State, Transaction};
pub use wheel::{TimerId, Wheel};
