//! The host's counters: OpenSIPS core (`core_stats.c`), sl (`sl.c`) and registrar
//! (`reg_mod.c`) statistics, each a relaxed atomic on its own cache line, bumped where the
//! event happens. No lock and no allocation: safe on every I/O thread for every message.
use super::Sample;
use std::sync::atomic::{AtomicU64, Ordering};

/// One counter, alone on its cache line (I/O threads bumping different counters do not
/// contend).
#[repr(align(64))]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Add one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! counters {
    ($( $id:ident, $group:literal, $name:literal, $help:literal; )*) => {
        $(
            #[doc = concat!("`", $group, ":", $name, "`: ", $help, ".")]
            pub static $id: Counter = Counter::new();
        )*
        /// (group, name, counter, help) of every host counter, in OpenSIPS's order.
        static ALL: &[(&str, &str, &Counter, &str)] = &[ $( ($group, $name, &$id, $help), )* ];
    };
}

counters! {
    CORE_RCV_REQUESTS, "core", "rcv_requests", "SIP requests received and parsed";
    CORE_RCV_REPLIES, "core", "rcv_replies", "SIP replies received and parsed";
    CORE_FWD_REQUESTS, "core", "fwd_requests", "requests relayed statelessly (handed to the transport)";
    CORE_FWD_REPLIES, "core", "fwd_replies", "replies relayed back towards the client";
    CORE_DROP_REQUESTS, "core", "drop_requests", "requests whose relay failed (no transport took them)";
    CORE_DROP_REPLIES, "core", "drop_replies", "replies dropped: not for us, forged, dropped by the script, or not deliverable";
    CORE_ERR_REQUESTS, "core", "err_requests", "requests received without a usable top Via";
    CORE_ERR_REPLIES, "core", "err_replies", "replies that could not be relayed (no Via left to send them to)";
    CORE_BAD_URIS, "core", "bad_URIs_rcvd", "requests whose Request-URI does not parse (found by sanity_check)";
    CORE_BAD_MSG_HDR, "core", "bad_msg_hdr", "messages that do not parse (answered 400 when possible, else dropped)";
    SL_1XX, "sl", "1xx_replies", "1xx replies sent statelessly";
    SL_2XX, "sl", "2xx_replies", "2xx replies sent statelessly";
    SL_3XX, "sl", "3xx_replies", "3xx replies sent statelessly";
    SL_4XX, "sl", "4xx_replies", "4xx replies sent statelessly";
    SL_5XX, "sl", "5xx_replies", "5xx replies sent statelessly";
    SL_6XX, "sl", "6xx_replies", "6xx replies sent statelessly";
    SL_SENT, "sl", "sent_replies", "replies sent statelessly (sl_send_reply, registrar, auth challenges, core errors)";
    SL_SENT_ERR, "sl", "sent_err_replies", "error replies the core sent on its own (malformed request, relay failure), as sl_reply_error";
    SL_RCV_ACKS, "sl", "received_ACKs", "ACKs to our own negative replies, absorbed";
    REG_ACCEPTED, "registrar", "accepted_regs", "REGISTER requests save() accepted";
    REG_REJECTED, "registrar", "rejected_regs", "REGISTER requests save() refused";
}

/// A stateless reply with `code` was sent (sl statistics).
pub fn reply_sent(code: u16) {
    let class = match code / 100 {
        1 => &SL_1XX,
        2 => &SL_2XX,
        3 => &SL_3XX,
        4 => &SL_4XX,
        5 => &SL_5XX,
        _ => &SL_6XX,
    };
    class.inc();
    SL_SENT.inc();
}

/// The host's counters now.
pub(super) fn samples() -> Vec<Sample> {
    ALL.iter()
        .map(|(g, n, c, h)| Sample::new(g, n, c.get(), false, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_count_by_class() {
        let (b4, bs) = (SL_4XX.get(), SL_SENT.get());
        reply_sent(404);
        assert!(SL_4XX.get() > b4 && SL_SENT.get() > bs);
        assert_eq!(std::mem::align_of::<Counter>(), 64);
        assert!(samples()
            .iter()
            .any(|s| s.group == "sl" && s.name == "6xx_replies"));
    }
}
