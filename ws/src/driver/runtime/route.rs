//! Routing sends and opening outbound connections (`Runtime::send`, `send_frame`,
//! `connect`): the owning worker is found from the connection id, an outbound connection
//! by destination address.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use sipcore_abi::{SendError, SendTarget};

use super::{new_id, worker, worker_of, wqueue, Cmd, ConnectReq, Runtime, OUTBOUND_BIT};

impl Runtime {
    /// Send `data` as one message (RFC 7118 §5) to `t`: a text frame when `data` is valid UTF-8,
    /// else a binary frame (RFC 7118 §4.2, RFC 6455 §5.6: a text frame must hold UTF-8, and a
    /// strict peer fails the connection with 1007 otherwise). Returns the connection id used.
    /// Never blocks.
    ///
    /// * `t.conn_id` set: on that connection if it is open. If it is gone, an **inbound** one
    ///   (a client's) is never replaced: the send fails with `NO_CONNECTION` (RFC 7118 §5: a
    ///   client cannot accept connections; its source address is not a place to send to). A
    ///   gone outbound one is replaced as below when `t.dst` is given.
    /// * Else, with `t.dst`: on an open **outbound** connection we opened to `t.dst`, else on a
    ///   new outbound connection to `t.dst` (the frame waits for its handshake). An inbound
    ///   connection is never selected by its peer address.
    /// * `t.dst` = `SockAddr::NONE` never opens a connection.
    pub fn send(&self, t: &SendTarget, data: &[u8]) -> Result<u64, SendError> {
        self.send_named(t, None, data)
    }

    /// As [`Self::send`], for a destination named `host` (the host of the URI `t.dst` was
    /// resolved from, RFC 3263): a new connection sends it in `Host` and, over TLS, as SNI,
    /// and checks the server certificate against it (RFC 5922 §7.2, RFC 6125); only a
    /// connection opened for the same name is reused. An IP literal, or `None`, names the
    /// address itself.
    pub fn send_named(
        &self,
        t: &SendTarget,
        host: Option<&str>,
        data: &[u8],
    ) -> Result<u64, SendError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(SendError::INTERNAL);
        }
        if data.len() > self.shared.cfg.max_write_queue {
            return Err(SendError::TOO_LARGE);
        }
        // One validation per message (ASCII-accelerated in std), whatever the retries below.
        let text = std::str::from_utf8(data).is_ok();
        let dst = t.dst.to_std();
        if t.conn_id != 0 {
            match self.send_frame(t.conn_id, text, data) {
                Ok(()) => return Ok(t.conn_id),
                Err(e)
                    if dst.is_none()
                        || e == SendError::QUEUE_FULL
                        || t.conn_id & OUTBOUND_BIT == 0 =>
                {
                    return Err(e)
                }
                Err(_) => {}
            }
        }
        let dst = dst.ok_or(SendError::NO_CONNECTION)?;
        let name = host.map_or_else(String::new, reuse_name);
        let existing = self.shared.dir().outbound_to(&dst, &name);
        if let Some(id) = existing {
            match self.send_frame(id, text, data) {
                Ok(()) => return Ok(id),
                Err(SendError::QUEUE_FULL) => return Err(SendError::QUEUE_FULL),
                Err(_) => {}
            }
        }
        let host_header = if name.is_empty() {
            dst.to_string()
        } else {
            format!("{name}:{}", dst.port())
        };
        let id = self.connect(dst, &host_header, &self.shared.cfg.resource, Some("sip"))?;
        // Straight after the connect request, in the same inbox: the frame is held until the
        // handshake completes. Not through `send_frame`, whose directory check would fail if
        // the worker already saw the connect fail: the send succeeded, and the failure is
        // reported once, by `Sink::closed` for `id`.
        let frame = wqueue::encode_message(text, data, true, self.shared.cfg.sip_stream);
        let cmd = Cmd::Frame {
            id,
            frame,
            traced: false,
        };
        self.shared.post(worker_of(id), cmd)?;
        Ok(id)
    }

    /// Send one text or binary message on connection `conn`. On the connection's own worker
    /// thread (inside [`Sink::deliver`](super::Sink::deliver)) the frame goes straight to its write queue and is
    /// written after the current batch of events; from other threads it is handed over.
    pub fn send_frame(&self, conn: u64, text: bool, data: &[u8]) -> Result<(), SendError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(SendError::INTERNAL);
        }
        let client = conn & OUTBOUND_BIT != 0;
        let frame = wqueue::encode_message(text, data, client, self.shared.cfg.sip_stream);
        let w = worker_of(conn);
        let frame = match worker::local_frame(self.shared.uid, w, conn, frame, data) {
            Ok(r) => return r,
            Err(frame) => frame,
        };
        // The trace decision of an outbound connection is made once connected, and frames
        // queued before it are traced by the worker: until the connection is open the worker
        // traces this one too, after them (so messages are traced in the order sent).
        // A traced open connection's message is traced by its worker, from the frame (the
        // directory keeps no addresses to trace with).
        let handled = {
            let dir = self.shared.dir();
            let e = dir.conns.get(&conn).ok_or(SendError::NO_CONNECTION)?;
            if e.state() == "closing" {
                return Err(SendError::CLOSED);
            }
            e.state() == "open" && !e.traced
        };
        let cmd = Cmd::Frame {
            id: conn,
            frame,
            traced: handled,
        };
        self.shared.post(w, cmd)
    }

    /// Open an outbound WebSocket connection to `addr` (`host` for the `Host` header,
    /// `resource` as Request-URI, optional subprotocol). Returns its id at once; the TCP connect
    /// and handshake proceed on a worker (bounded by `connect_timeout` and `handshake_timeout`).
    /// With `WsConfig::client_tls`, a TLS handshake comes between them: `host` without its
    /// port is the SNI name and the name the server certificate must carry (an IP address
    /// literal: no SNI, the certificate must name the IP). A failure at any step is reported
    /// by [`Sink::closed`](super::Sink::closed).
    pub fn connect(
        &self,
        addr: SocketAddr,
        host: &str,
        resource: &str,
        subprotocol: Option<&str>,
    ) -> Result<u64, SendError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(SendError::INTERNAL);
        }
        let n = self.shared.inboxes.get().map_or(0, Vec::len);
        if n == 0 {
            return Err(SendError::INTERNAL);
        }
        let w = self.shared.next_worker.fetch_add(1, Ordering::Relaxed) % n;
        let id = new_id(w, true);
        self.shared
            .dir()
            .insert_outbound(id, addr, reuse_name(host).into());
        let req = ConnectReq {
            id,
            addr,
            host: host.to_string(),
            resource: resource.to_string(),
            subprotocol: subprotocol.map(str::to_string),
        };
        if let Err(e) = self.shared.post(w, Cmd::Connect(Box::new(req))) {
            self.shared.dir().remove(id, addr);
            return Err(e);
        }
        Ok(id)
    }
}

/// The reuse key of a connection opened with `Host: host`: its host name in lower case, or
/// empty for an address (an IP literal names no one: SNI cannot carry it, RFC 6066 §3).
fn reuse_name(host: &str) -> String {
    super::super::tls::sni_host(host).map_or_else(String::new, str::to_ascii_lowercase)
}
