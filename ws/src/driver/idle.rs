//! The idle deadline of an open connection: its idle lifetime (RFC 6455 §7 close 1001 after
//! no data for `ws_connection_lifetime`, kept longer for a registered flow, RFC 5626 §4.4) or
//! its next keep-alive ping, whichever is first; and how it replaces the handshake deadline
//! when a connection opens, with one timer heap entry per open connection (issue 16).

use super::timer::{Kind, Stamp};
use super::worker::State;

impl State {
    /// Arm the idle deadline: the idle lifetime (not before the instant the connection is
    /// kept until), or the next keep-alive ping if earlier.
    pub fn arm_idle(&mut self, slot: usize) {
        if let Some(at) = self.idle_deadline(slot) {
            self.arm(slot, Kind::Idle, at);
        }
    }

    /// The idle deadline [`Self::arm_idle`] arms, if any.
    fn idle_deadline(&self, slot: usize) -> Option<Stamp> {
        let cfg = &self.shared.cfg;
        let c = self.conns.get(slot)?;
        let life = c.idle_close_at(cfg.lifetime);
        let ping = match (cfg.keepalive_interval, c.ping_out) {
            (Some(iv), false) if !iv.is_zero() => Some(c.last_rx + iv),
            _ => None,
        };
        match (life, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The connection just opened (handshake done, or a SIP stream connected): its idle
    /// deadline replaces the handshake one. The handshake deadline's heap entry, when it is
    /// due no later than the idle deadline, is left armed to carry it: fired on an open
    /// connection it arms the idle deadline (see `on_timer`). An open connection then has
    /// one heap entry, not two (issue 16: every idle connection pays for its entries).
    pub fn opened_deadlines(&mut self, slot: usize) {
        let idle = self.idle_deadline(slot);
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        match (c.armed.get(Kind::Handshake), idle) {
            (Some(hs), Some(idle)) if hs <= idle => {}
            _ => {
                c.armed.clear(Kind::Handshake);
                self.arm_idle(slot);
            }
        }
    }
}
