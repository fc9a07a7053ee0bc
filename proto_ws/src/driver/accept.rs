//! Accepting inbound connections: the global connection limit, and pausing a listener after
//! resource errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) instead of spinning.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use sipcore_abi::LogLevel;

use super::api::{ConnMeta, TraceEvent};
use super::conn::{Conn, Phase};
use super::runtime::{new_id, DirEntry};
use super::timer::{Entry, Kind};
use super::worker::{State, CONN_BASE};

/// Accepts per listener per turn before other work runs.
const ACCEPT_BATCH: usize = 256;
/// How long a listener is paused after a resource error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Least interval between two "too many connections" warnings.
const LIMIT_WARN_EVERY: Duration = Duration::from_secs(1);

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: out of a resource, retrying at once would spin.
fn is_resource_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
}

impl State {
    /// Accept what listener `li` has pending (at most a batch; the rest next turn).
    pub fn accept(&mut self, li: usize, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = self.listeners.get_mut(li) else {
                return;
            };
            if l.paused {
                return;
            }
            match l.sock.accept() {
                Ok((sock, peer)) => {
                    let id = l.id;
                    self.admit(id, sock, peer, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_error(&e) => {
                    let _ = self.registry.deregister(&mut l.sock);
                    l.paused = true;
                    self.timers.push(Entry {
                        at: now + ACCEPT_PAUSE,
                        id: 0,
                        slot: li,
                        kind: Kind::Listener,
                    });
                    let err = e.to_string();
                    self.shared.log(
                        LogLevel::WARN,
                        "accept failed, listener paused for 100 ms",
                        &[("error", &err)],
                    );
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and the like concern one connection only.
                    let err = e.to_string();
                    self.shared
                        .log(LogLevel::DBG, "accept failed", &[("error", &err)]);
                }
            }
        }
        self.again_accept.push(li);
    }

    /// Re-enable a paused listener.
    pub fn resume_listener(&mut self, li: usize) {
        let Some(l) = self.listeners.get_mut(li) else {
            return;
        };
        if !l.paused {
            return;
        }
        if self
            .registry
            .register(&mut l.sock, Token(li), Interest::READABLE)
            .is_ok()
        {
            l.paused = false;
            self.again_accept.push(li);
        }
    }

    fn admit(&mut self, listener: u32, sock: mio::net::TcpStream, peer: SocketAddr, now: Instant) {
        let max = self.shared.cfg.max_connections;
        if self.shared.count.fetch_add(1, Ordering::Relaxed) >= max {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            drop(sock);
            self.limit_drops += 1;
            if self
                .limit_warned
                .is_none_or(|t| now >= t + LIMIT_WARN_EVERY)
            {
                let (n, m) = (self.limit_drops.to_string(), max.to_string());
                self.shared.log(
                    LogLevel::WARN,
                    "too many websocket connections, refusing",
                    &[
                        ("refused", &n),
                        ("max_connections", &m),
                        ("peer", &peer.to_string()),
                    ],
                );
                self.limit_warned = Some(now);
                self.limit_drops = 0;
            }
            return;
        }
        let _ = sock.set_nodelay(true);
        let local = sock.local_addr().unwrap_or(peer);
        let id = new_id(self.idx, false);
        let meta = ConnMeta {
            id,
            listener,
            local,
            peer,
            outbound: false,
        };
        let mut conn = Conn::new(meta, sock, Phase::ServerHandshake, now);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if let Err(e) = self.registry.register(
            &mut conn.sock,
            Token(CONN_BASE + slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            self.shared.log(
                LogLevel::ERR,
                "cannot poll connection",
                &[("error", &e.to_string())],
            );
            return;
        }
        conn.traced = self.shared.sink.opened(&meta);
        let traced = conn.traced;
        entry.insert(conn);
        self.ids.insert(id, slot);
        self.shared.dir().conns.insert(
            id,
            DirEntry {
                meta,
                traced,
                since: now,
                state: Phase::ServerHandshake.name(),
            },
        );
        if traced {
            self.shared.sink.trace(&meta, TraceEvent::Opened);
        }
        let (p, i) = (peer.to_string(), id.to_string());
        self.shared.log(
            LogLevel::DBG,
            "websocket connection accepted",
            &[("peer", &p), ("id", &i)],
        );
        let at = now + self.shared.cfg.inbound_handshake_timeout;
        self.arm(slot, Kind::Handshake, at);
    }
}
