//! The I/O side of `proto_ws`: mio worker threads that run the pure protocol core
//! ([`crate::proto`]) over real TCP sockets.
//!
//! * [`Runtime`]: the handle the ABI glue holds (listeners, workers, sending, closing).
//! * `worker`: one mio event loop per thread; owns a slab of connections, its timers and a
//!   command queue other threads push to (woken through a `mio::Waker`).
//! * `conn`: one connection: opening handshake (RFC 6455 §4), data phase (§5, §6), closing
//!   handshake (§7), keep-alives (RFC 5626 §4.4.1 double CRLF), limits.
//! * `wqueue`: per-connection queue of encoded frames written with vectored I/O; it accounts
//!   for the memory it holds, so `max_write_queue` bounds every frame we queue.
//! * `send`: queuing data frames (and tracing the messages we send) and control frames.
//! * `stream`: the byte stream under a connection, plain TCP or TLS (`wss`), seen as one type
//!   by the read path, the write queue, shutdown and close.
//! * `tls`: the TLS handshake of `wss` connections, run before the WebSocket one.
//! * `read`: reads into a per-worker scratch buffer, keeping only what arrived.
//! * `sipstream`: the SIP stream framing (`proto_tcp`, `proto_tls`, RFC 3261 §18.3) in place
//!   of WebSocket: open at once, messages delimited by Content-Length, CRLF keep-alives.
//! * `reclaim`: gives freed memory back to the OS after large write backlogs.
//! * `timer`: a per-worker heap of deadlines with lazy invalidation, in 8-byte stamps.
//! * `idle`: the idle deadline (lifetime, keep-alive ping) and how it takes over from the
//!   handshake deadline, one heap entry per open connection.
//! * `list`: what MI `ws_list` shows of a worker's connections.
//! * `listen`: listener sockets (one socket shared by the workers; with `reuse_port`, one
//!   `SO_REUSEPORT` copy per worker).
//! * `accept`, `admission`: accepting, the connection limits and their 503 answers.
//! * `shared`, `directory`: what the handle and the workers share (ids, commands, counters),
//!   and the directory of connections (two bytes each; only outbound ones can be found by
//!   address).
//!
//! Connection ids are non-zero `u64`s, never reused within the process: the flavor's protocol
//! number in bits 44-47 (ids of proto_ws, proto_wss, proto_tcp and proto_tls never collide),
//! a global sequence number in bits 9-43, bit 8 set for outbound connections, and the low 8
//! bits naming the owning worker, so a send is routed to that worker in O(1).

mod accept;
mod admission;
mod api;
mod conn;
mod directory;
mod idle;
mod lifecycle;
mod list;
mod listen;
mod outbound;
mod overload;
mod read;
mod reclaim;
mod runtime;
mod send;
mod shared;
mod sipstream;
mod stream;
mod timer;
mod tls;
mod worker;
mod wqueue;

pub use api::{ConnMeta, ConnSummary, DriverError, Sink, TraceEvent, WsConfig};
pub use runtime::Runtime;
pub use stream::{TlsHandle, TlsSummary};

#[cfg(test)]
mod tests;
