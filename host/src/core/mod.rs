//! The SIP core: what happens to a message a transport delivers.
//!
//! `HostApi::deliver` runs on the transport's I/O thread: parse (lazily), run the main route with
//! an [`env::MsgEnv`], send what the script asks for through the transport's `send`, which only
//! queues. Requests that are not SIP are logged with the peer and dropped; nothing a message does
//! can unwind into the plugin.
//!
//! Imports between the files flow one way: `addr` and `secret` are leaves; `send` (the
//! [`Core`]) uses `addr`; `stateful` (the transaction layer's driver) uses those two;
//! `proxy`, `location`, `pending` and `relay` use those; `env` (the
//! script's view) uses them all; this file wires `env`, `relay` and `pending` to the transports.
mod addr;
pub mod authz;
pub mod authz_jwt;
pub mod cluster;
mod cluster_data;
mod cluster_live;
mod env;
mod fork;
pub mod hostapi;
mod locate;
mod location;
pub mod nat;
mod pending;
mod pike;
mod proxy;
mod redis_conn;
mod redis_url;
mod relay;
mod secret;
mod send;
mod stateful;

pub use addr::SocketInfo;
pub use cluster::ClusterConfig;
pub use proxy::RrConfig;
pub(crate) use send::peer;
pub use send::{script, set_script, Core};
pub use stateful::TmConfig;

use crate::sip::Message;
use abi_stable::std_types::RSlice;
use bytes::Bytes;
use sipcore_abi::{catch_panic, Proto, ReceiveInfo};
use std::sync::OnceLock;

static CORE: OnceLock<Core> = OnceLock::new();

/// Make the core available to `deliver` (before any transport starts), and start the
/// location service's expiry timer.
pub fn install(core: Core) {
    if CORE.set(core).is_err() {
        crate::log!(Error, "core", "core installed twice; keeping the first");
        return;
    }
    stateful::install_hooks(stateful::Hooks {
        failure: env::run_failure,
        reply: env::run_reply_route,
    });
    location::start_timer();
}

/// The core's own MI commands: `ul_dump` and `ul_show_contact` (the location tables, as
/// OpenSIPS's usrloc), `pike_list` and `pike_rm` (OpenSIPS's pike).
pub fn register_mi(registry: &crate::mi::Registry) -> Result<(), String> {
    location::register_mi(registry)
        .and_then(|()| pike::register_mi(registry))
        .map_err(|e| format!("management interface: {e}"))
}

/// The core's statistics that are read rather than counted (usrloc and registrar levels), as a
/// [`crate::stats::Source`].
pub fn add_stats_source() {
    crate::stats::add_source(Box::new(location::stats));
    crate::stats::add_source(Box::new(stateful::stats));
}

/// Apply the `pike` modparams (before the first message).
pub fn configure_pike(cfg: crate::pike::PikeConfig) {
    pike::configure(cfg);
}

/// Apply the `tm` modparams (before the first message).
pub fn configure_tm(cfg: TmConfig) {
    stateful::configure(cfg);
}

/// Apply the `rr` modparams (before the first message).
pub fn configure_rr(cfg: RrConfig) {
    proxy::configure(cfg);
}

/// Apply the `registrar` and `usrloc` modparams (before the first message).
pub fn configure_location(reg: crate::usrloc::RegistrarConfig, ul: crate::usrloc::UsrlocConfig) {
    location::configure(reg, ul);
}

/// Start the usrloc cluster mode (Redis), when configured, once the core is installed.
pub fn start_cluster(cfg: &ClusterConfig) -> Result<(), String> {
    match CORE.get() {
        Some(core) => cluster::start(core, cfg),
        None => Err("usrloc cluster: the core is not installed".into()),
    }
}

/// Fuzzing entry (fuzz/fuzz_targets/cluster_value.rs): decode a usrloc cluster value as read
/// from Redis (untrusted) and apply it to a fresh table with `max_contacts` 4; returns how
/// many bindings the table learnt.
#[doc(hidden)]
pub fn fuzz_cluster_value(data: &[u8]) -> usize {
    let now = std::time::Instant::now();
    // The subscriber's first look at a value: whose it is.
    let _ = cluster_data::node_of(data);
    let Ok(r) = cluster_data::decode(data, now, 1_000_000, 3600) else {
        return 0;
    };
    let cfg = crate::usrloc::RegistrarConfig {
        max_contacts: 4,
        ..Default::default()
    };
    let t = crate::usrloc::Registrar::new(cfg);
    let n = r.bindings.len();
    let dropped = t.set_remote(&r.aor, &r.node, r.bindings, now);
    assert!(t.contact_count() <= 4 && t.contact_count() == n - dropped);
    assert!(t.local_aors().is_empty());
    let cleared = t.set_remote(&r.aor, &r.node, Vec::new(), now);
    assert!(cleared == 0 && t.is_empty() && t.contact_count() == 0);
    n - dropped
}

/// A transport reports a connection gone (`HostApi::conn_closed`).
pub(crate) fn connection_closed(proto: Proto, conn_id: u64) {
    location::connection_closed(proto, conn_id);
    if let Some(core) = CORE.get() {
        pending::connection_closed(core, proto, conn_id);
        stateful::connection_closed(core, proto, conn_id);
    }
    crate::log!(
        Trace,
        "core",
        "connection {} ({}) closed",
        conn_id,
        proto.name()
    );
}

/// `HostApi::deliver`.
pub extern "C" fn host_deliver(info: &ReceiveInfo, msg: RSlice<'_, u8>) {
    if let Err(p) = catch_panic(|| handle(info, msg.as_slice())) {
        crate::log!(Critical, "core", "panic while handling a message: {}", p; "peer" => peer(info));
    }
}

fn handle(info: &ReceiveInfo, bytes: &[u8]) {
    let Some(core) = CORE.get() else {
        return;
    };
    if crate::sip::is_keepalive(bytes) {
        return;
    }
    pending::connection_up(info);
    // Read in place: a `Message` is about a kilobyte, and moving it out of the `Result` would
    // copy it for every message.
    let parsed = Message::parse(Bytes::copy_from_slice(bytes));
    let msg = match &parsed {
        Ok(m) => m,
        Err(e) => {
            let e = *e;
            crate::stats::counters::CORE_BAD_MSG_HDR.inc();
            // RFC 4475 §3.1.2: a malformed request is answered 400 (505 for the version)
            // when its transaction headers can be found; anything else is dropped.
            let answer = crate::sip::reply_to_malformed(
                bytes,
                e.reply_code(),
                send::bad_reason(e.reply_code()),
            );
            match &answer {
                Some(_) => {
                    crate::log!(Warning, "core", "malformed SIP request answered {}: {}", e.reply_code(), e;
                    "peer" => peer(info), "proto" => info.proto.name(), "len" => bytes.len())
                }
                None => crate::log!(Warning, "core", "message is not SIP, dropped: {}", e;
                    "peer" => peer(info), "proto" => info.proto.name(), "len" => bytes.len()),
            }
            if let Some(a) = answer {
                if core.send_back(info, &a).is_ok() {
                    crate::stats::counters::reply_sent(e.reply_code());
                    crate::stats::counters::SL_SENT_ERR.inc();
                }
            }
            return;
        }
    };
    if !msg.is_request() {
        crate::stats::counters::CORE_RCV_REPLIES.inc();
        // Routed by our signed branch (forged ones stop here); the script sees it; then it
        // goes over the hop the branch names.
        let relayed = relay::reply_hop(core, info, msg)
            .and_then(|hop| Some((hop, env::run_reply(core, info, msg)?)));
        match relayed {
            Some((hop, msg)) => {
                // A response of a client transaction goes to it; one that none knows (a 2xx
                // retransmitted after its transaction ended, RFC 6026) is relayed statelessly.
                if !stateful::on_response(core, info, &msg) {
                    relay::relay_reply(core, info, &msg, hop)
                }
            }
            None => crate::stats::counters::CORE_DROP_REPLIES.inc(),
        }
        return;
    }
    crate::stats::counters::CORE_RCV_REQUESTS.inc();
    // Through the message's cache: sanity_check(), has_totag() and the relay read the top
    // Via's branch again from there, so counting costs no second parse. (A bad Request-URI
    // is counted where it is parsed: `sanity_check()`.)
    if msg.top_branch().is_err() {
        crate::stats::counters::CORE_ERR_REQUESTS.inc();
    }
    if is_ack_to_our_reply(msg) {
        // OpenSIPS sl's `sl_filter_ACK`: the ACK of a negative reply this server sent itself
        // (a 401/407 challenge, a 404...) ends here; relayed, it would reach a callee that
        // never saw the INVITE's answer.
        crate::log!(Debug, "core", "ACK to a local reply absorbed"; "peer" => peer(info));
        crate::stats::counters::SL_RCV_ACKS.inc();
        return;
    }
    if stateful::absorb(core, info, msg) {
        // A retransmission or the ACK of a non-2xx response of a transaction held here
        // (RFC 3261 §17.2.3): the transaction answers it, the script does not see it.
        return;
    }
    env::run_request(core, info, msg);
}

/// An ACK whose To tag is the one [`crate::sip::stateless_to_tag`] gives our own stateless
/// replies to its INVITE (same Call-ID, From tag, top branch and CSeq number, RFC 3261
/// §17.1.1.3). A tag of another shape than ours (20 lower-case hex digits), such as the
/// callee's on the ACK of every answered call, is told apart without hashing the request.
fn is_ack_to_our_reply(msg: &Message) -> bool {
    msg.method_str() == Some("ACK")
        && msg
            .to_tag_param()
            .ok()
            .flatten()
            .flatten()
            .is_some_and(|t| {
                t.len() == 20
                    && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    && t == crate::sip::stateless_to_tag(msg)
            })
}

#[cfg(test)]
mod ack_tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    /// The ACK of our own stateless 407 carries the tag we gave it; a callee's does not.
    #[test]
    fn acks_to_our_own_replies_are_recognised() {
        let invite = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKi1\r\n\
            Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa\r\nTo: <sip:bob@example.com>\r\n\
            Call-ID: ack1\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n";
        let ours = crate::sip::stateless_to_tag(&msg(invite));
        let ack = |tag: &str| {
            msg(&format!(
                "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKi1\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=fa\r\nTo: <sip:bob@example.com>;tag={tag}\r\n\
                 Call-ID: ack1\r\nCSeq: 5 ACK\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        assert!(is_ack_to_our_reply(&ack(&ours)));
        assert!(!is_ack_to_our_reply(&ack("callee-tag")));
        // Of our shape but another request's, or ours in upper case: not ours.
        assert!(!is_ack_to_our_reply(&ack("0123456789abcdef0123")));
        assert!(!is_ack_to_our_reply(&ack(&ours.as_str().to_uppercase())));
        assert!(!is_ack_to_our_reply(&msg(invite)));
    }
}
