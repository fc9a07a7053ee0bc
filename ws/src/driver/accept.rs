//! Accepting inbound connections: admission (`ws_max_connections`,
//! `ws_max_connections_per_ip`; a refused client is answered 503 with `Retry-After`), and
//! pausing a listener after resource errors (EMFILE, ENFILE, ENOBUFS, ENOMEM) instead of
//! spinning. Refusals and accept failures are logged once per state change.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::{Interest, Token};
use sipcore_abi::LogLevel;

use super::admission::{AcceptNote, Note, Refusal};
use super::api::{ConnMeta, TraceEvent};
use super::conn::{Conn, Phase};
use super::runtime::{new_id, Cmd, DirEntry};
use super::stream::Stream;
use super::timer::{Entry, Kind, Stamp};
use super::worker::{Listener, State, CONN_BASE};

/// Accepts per listener per turn before other work runs.
const ACCEPT_BATCH: usize = 256;
/// How long a listener is paused after a resource error.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

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
                    self.dispatch(id, sock, peer, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_turn_ok(now);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_resource_error(&e) => {
                    let _ = self.registry.deregister(&mut l.sock);
                    l.paused = true;
                    self.timers.push(Entry {
                        at: Stamp::from(now + ACCEPT_PAUSE),
                        id: 0,
                        slot: u32::try_from(li).unwrap_or(u32::MAX),
                        kind: Kind::Listener,
                    });
                    let addr = l.sock.local_addr().map(|a| a.to_string());
                    let note = self.shared.accept_fail().failed(now);
                    if note == Some(AcceptNote::Failing) {
                        let (err, addr) = (e.to_string(), addr.unwrap_or_default());
                        self.shared.log(
                            LogLevel::WARN,
                            "accept failing: listener paused and retried every 100 ms until it recovers",
                            &[("error", &err), ("listener", &addr)],
                        );
                    }
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
        self.accept_turn_ok(now);
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

    /// A turn of accepts ended (backlog drained or batch done) without a resource error: if
    /// accepting was failing, log that it recovered. Ending the failure only here, not at the
    /// first successful accept, keeps a backlog drained under EMFILE from flapping.
    fn accept_turn_ok(&self, now: Instant) {
        let note = {
            let mut f = self.shared.accept_fail();
            if !f.failing() {
                return;
            }
            f.succeeded(now)
        };
        if let Some(AcceptNote::Recovered { failures, for_ms }) = note {
            let (n, ms) = (failures.to_string(), for_ms.to_string());
            self.shared.log(
                LogLevel::INFO,
                "accept recovered",
                &[("failed_accepts", &n), ("failing_ms", &ms)],
            );
        }
    }

    /// Log a change of refusal state.
    fn refusal_note(&self, note: &Note) {
        let cfg = &self.shared.cfg;
        let max_of = |r: Refusal| match r {
            Refusal::Full => cfg.max_connections,
            Refusal::PerIp => cfg.max_connections_per_ip,
            Refusal::Overloaded => cfg.max_worker_queue,
        };
        // The parameter's name as the user wrote it (`wss_` under proto_wss).
        let kind = |r: Refusal| {
            crate::flavor::get().named(match r {
                Refusal::Full => "ws_max_connections",
                Refusal::PerIp => "ws_max_connections_per_ip",
                Refusal::Overloaded => "ws_max_worker_queue",
            })
        };
        match note {
            Note::Refusing(r, ip) => {
                let (m, ip) = (max_of(*r).to_string(), ip.to_string());
                // A TLS listener, or a SIP stream, closes refused connections without an
                // answer (see `refuse`).
                let msg = if crate::flavor::get().tls || self.shared.cfg.sip_stream {
                    "websocket connection limit reached, closing new connections"
                } else {
                    "websocket connection limit reached, refusing with 503"
                };
                self.shared.log(
                    LogLevel::WARN,
                    msg,
                    &[("limit", &kind(*r)), ("max", &m), ("ip", &ip)],
                );
            }
            Note::Admitting(r, ip, n) => {
                let (n, ip) = (n.to_string(), ip.to_string());
                self.shared.log(
                    LogLevel::INFO,
                    "websocket connections admitted again",
                    &[("limit", &kind(*r)), ("refused", &n), ("ip", &ip)],
                );
            }
        }
    }

    /// A connection accepted on `listener`: admit it here, or, on a listener all workers
    /// share, hand it to the next worker in round-robin order (whichever worker wins the
    /// accept race, connections spread evenly).
    fn dispatch(
        &mut self,
        listener: u32,
        sock: mio::net::TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) {
        let n = self.shared.inboxes.get().map_or(1, Vec::len);
        let shared = self
            .shared
            .shared_listeners
            .get()
            .is_some_and(|v| v.contains(&listener));
        if n > 1 && shared {
            let w = self.shared.next_accept.fetch_add(1, Ordering::Relaxed) % n;
            if w != self.idx {
                // Posting fails only before the workers exist; the connection is then dropped.
                let _ = self.shared.post(
                    w,
                    Cmd::Adopt {
                        listener,
                        sock,
                        peer,
                    },
                );
                return;
            }
        }
        self.admit(listener, sock, peer, now);
    }

    /// Admit (or refuse) a connection accepted on `listener`, on this worker.
    pub fn admit(
        &mut self,
        listener: u32,
        sock: mio::net::TcpStream,
        peer: SocketAddr,
        now: Instant,
    ) {
        let full =
            self.shared.count.fetch_add(1, Ordering::Relaxed) >= self.shared.cfg.max_connections;
        let local = match self.listeners.iter().find(|l| l.id == listener) {
            Some(Listener { local: Some(a), .. }) => *a,
            _ => sock.local_addr().unwrap_or(peer),
        };
        let id = new_id(self.idx, false);
        let meta = ConnMeta {
            id,
            listener,
            local,
            peer,
            outbound: false,
        };
        if self.overloaded() {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            self.note_overload_refusal();
            self.refuse(meta, sock, Refusal::Overloaded, now);
            return;
        }
        let max_per_ip = self.shared.cfg.max_connections_per_ip;
        let (refusal, notes) = self
            .shared
            .dir()
            .admission
            .admit(peer.ip(), full, max_per_ip);
        for n in &notes {
            self.refusal_note(n);
        }
        if let Some(r) = refusal {
            crate::stats::handshake_refused(503);
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            self.refuse(meta, sock, r, now);
            return;
        }
        self.note_admitted();
        // Linux: inherited from the listening socket (`listen::bind_one`), no call per
        // connection.
        #[cfg(not(target_os = "linux"))]
        let _ = sock.set_nodelay(true);
        let tls = self.shared.listener_tls(listener).cloned();
        let (stream, phase, deadline) = match tls {
            // A SIP stream is open at once (RFC 3261 §18.3: no handshake).
            None if self.shared.cfg.sip_stream => {
                (Stream::Plain(sock), Phase::Open, Duration::ZERO)
            }
            None => (
                Stream::Plain(sock),
                Phase::ServerHandshake,
                self.shared.cfg.inbound_handshake_timeout,
            ),
            Some(t) => match super::tls::server_stream(&t, local, sock) {
                Ok(s) => (s, Phase::TlsAccept, self.shared.cfg.tls_handshake_timeout),
                Err(e) => {
                    crate::stats::TLS_HANDSHAKES_FAILED.inc();
                    self.shared.count.fetch_sub(1, Ordering::Relaxed);
                    self.shared.dir().admission.release(peer.ip());
                    let (p, e) = (peer.to_string(), e.to_string());
                    self.shared.log(
                        LogLevel::WARN,
                        "tls handshake failed",
                        &[("peer", &p), ("reason", &e)],
                    );
                    return;
                }
            },
        };
        let mut conn = Conn::new(meta, stream, phase, now);
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if let Err(e) = self.registry.register(
            conn.sock.tcp_mut(),
            Token(CONN_BASE + slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            self.shared.dir().admission.release(peer.ip());
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
        crate::stats::CONNECTIONS.inc();
        crate::stats::CONNECTIONS_TOTAL.inc();
        self.ids.insert(id, slot);
        self.shared
            .dir()
            .insert_inbound(id, DirEntry { phase, traced });
        if traced {
            self.shared.sink.trace(&meta, TraceEvent::Opened);
        }
        let (p, i) = (peer.to_string(), id.to_string());
        self.shared.log(
            LogLevel::DBG,
            "websocket connection accepted",
            &[("peer", &p), ("id", &i)],
        );
        if phase == Phase::Open {
            self.stream_open(slot, now);
        } else {
            self.arm(slot, Kind::Handshake, now + deadline);
        }
    }

    /// Answer a refused connection 503 with `Retry-After` (RFC 6455 §4.2.2), then close it
    /// once written and drained (at most `refuse_deadline`). At most `refuse_pool` are
    /// answered at once, so refusing costs bounded descriptors and memory; beyond, the
    /// connection is closed at once.
    fn refuse(&mut self, meta: ConnMeta, sock: mio::net::TcpStream, r: Refusal, now: Instant) {
        let pool = self.shared.cfg.refuse_pool;
        // On a TLS listener the 503 could only follow a TLS handshake, the work the limits
        // are there to refuse: the connection is closed at once.
        // A SIP stream has no answer to refuse with (OpenSIPS closes too).
        if self.shared.listener_tls(meta.listener).is_some() || self.shared.cfg.sip_stream {
            drop(sock);
            return;
        }
        if self.shared.refusing.fetch_add(1, Ordering::Relaxed) >= pool {
            self.shared.refusing.fetch_sub(1, Ordering::Relaxed);
            drop(sock);
            return;
        }
        let mut conn = Conn::new(meta, Stream::Plain(sock), Phase::Flushing, now);
        conn.refused = true;
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if self
            .registry
            .register(
                conn.sock.tcp_mut(),
                Token(CONN_BASE + slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.shared.refusing.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        conn.queue_raw(r.response(), now);
        entry.insert(conn);
        let at = now + self.shared.cfg.refuse_deadline;
        self.arm(slot, Kind::CloseWait, at);
        self.mark_dirty(slot);
    }
}
