//! Queuing frames on a connection: data frames (with the trace of the messages we send) and
//! control frames, all counted against `max_write_queue`; overflow closes the connection.

use std::time::Instant;

use sipcore_abi::{LogLevel, SendError};

use super::api::TraceEvent;
use super::conn::Phase;
use super::worker::State;
use super::wqueue::chunk_payloads;
use crate::proto::frame::OpCode;

/// Who traces a data frame being queued (HEP tracing of the messages we send).
#[derive(Clone, Copy)]
enum Trace<'a> {
    /// The sender traced it (or knew the connection is not traced).
    Done,
    /// Trace this payload if the connection is traced.
    Here(&'a [u8]),
    /// Sent from another thread before the trace decision was known: trace from the frame.
    Frame,
}

impl State {
    /// A frame posted by another thread; `traced`: the sender handled its trace.
    pub(crate) fn frame_cmd(&mut self, id: u64, frame: Vec<u8>, traced: bool, now: Instant) {
        if let Some(&slot) = self.ids.get(&id) {
            let trace = if traced { Trace::Done } else { Trace::Frame };
            let _ = self.queue_frame(slot, frame, trace, now);
        }
    }

    /// A frame sent on this worker's own thread (inside `Sink::deliver`): queued at once and
    /// traced here; `Err(frame)` when the connection is not this worker's.
    pub(crate) fn local_frame(
        &mut self,
        id: u64,
        frame: Vec<u8>,
        data: &[u8],
    ) -> Result<Result<(), SendError>, Vec<u8>> {
        let Some(&slot) = self.ids.get(&id) else {
            return Err(frame);
        };
        #[cfg(test)]
        super::worker::FAST_SENDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self.queue_frame(slot, frame, Trace::Here(data), Instant::now()))
    }

    /// Queue a data frame on `slot`; on overflow, close the connection. `trace` says who
    /// traces the message (see [`Trace`]).
    fn queue_frame(
        &mut self,
        slot: usize,
        frame: Vec<u8>,
        trace: Trace<'_>,
        now: Instant,
    ) -> Result<(), SendError> {
        let max = self.shared.cfg.max_write_queue;
        let Some(c) = self.conns.get_mut(slot) else {
            return Err(SendError::NO_CONNECTION);
        };
        match c.queue(frame, max, now) {
            Ok(()) => {
                let undecided = c.phase == Phase::Connecting;
                match trace {
                    Trace::Done => {}
                    // Not connected yet, so not known to be traced: traced once it is.
                    Trace::Here(_) | Trace::Frame if undecided => {
                        let x = c.extra();
                        x.held_untraced = x.held_untraced.saturating_add(1);
                    }
                    _ if !c.traced => {}
                    Trace::Here(payload) => {
                        let ev = TraceEvent::Message {
                            inbound: false,
                            payload,
                            at: now,
                        };
                        self.shared.sink.trace(&c.meta, ev);
                    }
                    Trace::Frame => {
                        let q = if c.phase == Phase::Open {
                            Some(&c.wq)
                        } else {
                            c.held()
                        };
                        let stream = self.shared.cfg.sip_stream;
                        if let Some(chunk) = q.and_then(|q| q.last_chunk()) {
                            for p in chunk_payloads(chunk, stream) {
                                let ev = TraceEvent::Message {
                                    inbound: false,
                                    payload: &p,
                                    at: now,
                                };
                                self.shared.sink.trace(&c.meta, ev);
                            }
                        }
                    }
                }
                self.mark_dirty(slot);
                self.account(slot, now);
                Ok(())
            }
            Err(SendError::QUEUE_FULL) => {
                self.overflow(slot);
                Err(SendError::QUEUE_FULL)
            }
            Err(e) => Err(e),
        }
    }

    /// Queue a control frame (or keep-alive answer) on `slot` and schedule the write; on
    /// overflow, close the connection (one log line). False when it was closed.
    pub fn control(&mut self, slot: usize, op: OpCode, payload: &[u8], now: Instant) -> bool {
        let max = self.shared.cfg.max_write_queue;
        let Some(c) = self.conns.get_mut(slot) else {
            return false;
        };
        if c.queue_control(op, payload, max, now) {
            self.mark_dirty(slot);
            true
        } else {
            self.overflow(slot);
            false
        }
    }

    /// The write queue bound was hit: one warning with the peer, and the connection is gone.
    fn overflow(&mut self, slot: usize) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if let Some(x) = c.extra.as_mut() {
            x.end_reason = None;
        }
        crate::stats::WRITE_QUEUE_DROPS.inc();
        let peer = c.peer_str();
        let queued = (c.wq.bytes() + c.held_bytes()).to_string();
        let memory = c.queued_cost().to_string();
        let max = self.shared.cfg.max_write_queue.to_string();
        self.shared.log(
            LogLevel::WARN,
            "websocket write queue overflow, closing",
            &[
                ("peer", &peer),
                ("queued", &queued),
                ("memory", &memory),
                ("max", &max),
            ],
        );
        self.kill(slot, "write queue overflow");
    }
}
