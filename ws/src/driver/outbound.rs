//! Outbound connections: non-blocking TCP connect, the TLS client handshake when the runtime
//! has `client_tls` (`wss`, see `tls.rs`), the client opening handshake (RFC 6455 §4.1;
//! RFC 7118 §4.1 `sip` subprotocol), frames held until it completes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use mio::{Interest, Token};
use sipcore_abi::{LogLevel, NO_LISTENER};

use super::api::{ConnMeta, TraceEvent};
use super::conn::{ClientHs, Conn, Phase};
use super::read::Progress;
use super::runtime::ConnectReq;
use super::stream::Stream;
use super::timer::{Kind, Stamp};
use super::worker::{State, CONN_BASE};
use super::wqueue::{frame_payloads, random_bytes};
use crate::proto::error::HandshakeError;
use crate::proto::handshake::{client_request, client_verify};
use crate::proto::{Role, WsConn};

fn unspecified(like: SocketAddr) -> SocketAddr {
    let ip: std::net::IpAddr = if like.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    SocketAddr::new(ip, 0)
}

impl State {
    /// Start a TCP connect for `req` (bounded by `connect_timeout`).
    pub fn start_connect(&mut self, req: Box<ConnectReq>, now: Instant) {
        let max = self.shared.cfg.max_connections;
        if self.shared.count.fetch_add(1, Ordering::Relaxed) >= max {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            self.fail_connect(&req, "too many connections");
            return;
        }
        let sock = match mio::net::TcpStream::connect(req.addr) {
            Ok(s) => s,
            Err(e) => {
                self.shared.count.fetch_sub(1, Ordering::Relaxed);
                self.fail_connect(&req, &format!("connect failed: {e}"));
                return;
            }
        };
        let sock = match &self.shared.cfg.client_tls {
            None => Stream::Plain(sock),
            Some(t) => match super::tls::client_stream(t, req.addr, &req.host, sock) {
                Ok(s) => s,
                Err(e) => {
                    self.shared.count.fetch_sub(1, Ordering::Relaxed);
                    self.fail_connect(&req, &e.to_string());
                    return;
                }
            },
        };
        let ConnectReq {
            id,
            addr,
            host,
            resource,
            subprotocol,
        } = *req;
        let meta = ConnMeta {
            id,
            listener: NO_LISTENER,
            local: unspecified(addr),
            peer: addr,
            outbound: true,
        };
        let mut conn = Conn::new(meta, sock, Phase::Connecting, now);
        conn.extra().client = Some(ClientHs {
            host,
            resource,
            subprotocol,
            expected_accept: String::new(),
        });
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        if let Err(e) = self.registry.register(
            conn.sock.tcp_mut(),
            Token(CONN_BASE + slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.shared.count.fetch_sub(1, Ordering::Relaxed);
            let meta_req = format!("cannot poll connection: {e}");
            self.shared.dir().remove(id, addr);
            self.shared
                .log(LogLevel::ERR, &meta_req, &[("peer", &addr.to_string())]);
            self.closed_out.push((meta, meta_req));
            return;
        }
        entry.insert(conn);
        self.ids.insert(id, slot);
        crate::stats::CONNECTIONS.inc();
        crate::stats::CONNECTIONS_TOTAL.inc();
        let at = now + self.shared.cfg.connect_timeout;
        self.arm(slot, Kind::Handshake, at);
    }

    /// An outbound connection could not even start.
    pub fn fail_connect(&mut self, req: &ConnectReq, reason: &str) {
        let peer = req.addr.to_string();
        self.shared.log(
            LogLevel::WARN,
            "websocket connect failed",
            &[("peer", &peer), ("reason", reason)],
        );
        self.shared.dir().remove(req.id, req.addr);
        let meta = ConnMeta {
            id: req.id,
            listener: NO_LISTENER,
            local: unspecified(req.addr),
            peer: req.addr,
            outbound: true,
        };
        self.closed_out.push((meta, reason.to_string()));
    }

    /// The socket of a `Connecting` connection became writable: connected or failed.
    pub fn on_connected(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        let err = match c.sock.tcp().take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match c.sock.tcp().peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = err {
            let (peer, reason) = (c.peer_str(), format!("connect failed: {e}"));
            self.shared.log(
                LogLevel::WARN,
                "websocket connect failed",
                &[("peer", &peer), ("reason", &reason)],
            );
            self.kill(slot, &reason);
            return;
        }
        let _ = c.sock.tcp().set_nodelay(true);
        if let Ok(local) = c.sock.tcp().local_addr() {
            c.meta.local = local;
        }
        c.traced = self.shared.sink.opened(&c.meta);
        if c.traced {
            self.shared.sink.trace(&c.meta, TraceEvent::Opened);
        }
        if !c.sock.is_tls() {
            self.ws_request(slot, now);
            return;
        }
        c.phase = Phase::TlsConnect;
        let (id, traced) = (c.meta.id, c.traced);
        {
            let mut dir = self.shared.dir();
            dir.set_traced(id, traced);
            dir.set_state(id, Phase::TlsConnect);
        }
        let at = now + self.shared.cfg.handshake_timeout;
        self.rearm(slot, Kind::Handshake, at);
        // The ClientHello leaves now; the rest of the handshake follows readiness events.
        if self.tls_step(slot, now) {
            self.again.push(slot);
        }
    }

    /// Send the opening handshake request (RFC 6455 §4.1) on a connected (and, for TLS,
    /// secured) connection and wait for the 101 (`handshake_timeout`).
    pub fn ws_request(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        if self.shared.cfg.sip_stream {
            self.stream_connected(slot, now);
            return;
        }
        let Some(hs) = c.client_hs() else {
            self.kill(slot, "internal: no handshake parameters");
            return;
        };
        let mut key = [0u8; 16];
        random_bytes(&mut key);
        let origin = self.shared.cfg.client_origin.as_deref();
        let req = client_request(
            &hs.host,
            &hs.resource,
            origin,
            key,
            hs.subprotocol.as_deref(),
        );
        hs.expected_accept = req.expected_accept;
        if c.traced {
            self.shared
                .sink
                .trace(&c.meta, TraceEvent::HandshakeRequest(&req.bytes));
            // Messages queued while connecting, before it was known that this connection is
            // traced (the first message is what opened it).
            let untraced = c.held_untraced() as usize;
            for chunk in c.held().into_iter().flat_map(|h| h.front_chunks(untraced)) {
                for payload in frame_payloads(chunk) {
                    let ev = TraceEvent::Message {
                        inbound: false,
                        payload: &payload,
                        at: now,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
            }
        }
        if let Some(x) = c.extra.as_mut() {
            x.held_untraced = 0;
        }
        c.queue_raw(req.bytes, now);
        c.phase = Phase::ClientHandshake;
        let (id, traced) = (c.meta.id, c.traced);
        {
            let mut dir = self.shared.dir();
            dir.set_traced(id, traced);
            dir.set_state(id, Phase::ClientHandshake);
        }
        let at = now + self.shared.cfg.handshake_timeout;
        self.rearm(slot, Kind::Handshake, at);
        self.mark_dirty(slot);
    }

    /// Check the server's reply (RFC 6455 §4.1); on success the connection opens and the held
    /// frames are queued.
    pub fn client_hs(&mut self, slot: usize, now: Instant) -> Progress {
        let Some(c) = self.conns.get_mut(slot) else {
            return Progress::NeedMore;
        };
        let Some(hs) = c.extra.as_ref().and_then(|x| x.client.as_ref()) else {
            c.phase = Phase::Open;
            return Progress::Continue;
        };
        match client_verify(&c.rbuf, &hs.expected_accept, hs.subprotocol.as_deref()) {
            Ok(None) => Progress::NeedMore,
            Ok(Some(n)) => {
                if c.traced {
                    let reply = c.rbuf.get(..n).unwrap_or_default();
                    self.shared
                        .sink
                        .trace(&c.meta, TraceEvent::HandshakeReply(reply));
                }
                c.rbuf.advance(n.min(c.rbuf.len()));
                crate::stats::HANDSHAKES_ACCEPTED.inc();
                c.clear_client_hs();
                c.phase = Phase::Open;
                c.ws = Some(WsConn::with_limits(
                    Role::Client,
                    Arc::clone(&self.shared.limits),
                ));
                if c.wq.is_empty() {
                    c.last_write = Stamp::from(now);
                }
                if let Some(mut held) = c.take_held() {
                    c.wq.append(&mut held);
                }
                let (id, peer) = (c.meta.id, c.peer_str());
                self.shared.dir().set_state(id, Phase::Open);
                let i = id.to_string();
                self.shared.log(
                    LogLevel::DBG,
                    "websocket connected",
                    &[("peer", &peer), ("id", &i)],
                );
                self.mark_dirty(slot);
                self.opened_deadlines(slot);
                Progress::Continue
            }
            Err(e) => {
                let status = match e {
                    HandshakeError::BadStatus(s) => s,
                    _ => 0,
                };
                let (peer, st, reason) = (c.peer_str(), status.to_string(), e.to_string());
                self.shared.log(
                    LogLevel::WARN,
                    "websocket handshake failed",
                    &[("peer", &peer), ("status", &st), ("reason", &reason)],
                );
                if c.traced {
                    self.shared
                        .sink
                        .trace(&c.meta, TraceEvent::HandshakeReply(&c.rbuf));
                    let ev = TraceEvent::HandshakeFailed {
                        status,
                        reason: &reason,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
                self.kill(slot, "handshake failed");
                Progress::NeedMore
            }
        }
    }
}
