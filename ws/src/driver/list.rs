//! What MI `ws_list` shows of a worker's connections (`Runtime::connections` asks every
//! worker: the shared directory keeps no addresses, see `directory`).

use std::time::Instant;

use super::api::ConnSummary;
use super::conn::Phase;
use super::worker::State;

impl State {
    /// Every admitted connection of this worker, for MI `ws_list` (refused ones, only being
    /// answered 503, are not listed).
    pub fn summaries(&self, now: Instant) -> Vec<ConnSummary> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.refused)
            .map(|(_, c)| ConnSummary {
                id: c.meta.id,
                peer: c.meta.peer,
                local: c.meta.local,
                age: now.saturating_duration_since(c.since.instant()),
                outbound: c.meta.outbound,
                traced: c.traced,
                state: c.phase.name(),
                // What TLS negotiated, once its handshake completed.
                tls: c.sock.tls_summary().filter(|_| {
                    !matches!(
                        c.phase,
                        Phase::Connecting | Phase::TlsConnect | Phase::TlsAccept
                    )
                }),
            })
            .collect()
    }
}
