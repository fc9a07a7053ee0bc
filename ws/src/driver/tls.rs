//! TLS under the WebSocket connection (`wss`): creating the server session of an accepted
//! socket and the client session of an outbound one, and driving their handshake (RFC 8446
//! §4; TLS 1.2, RFC 5246 §7.3) one non-blocking step per readiness event, before the
//! WebSocket opening handshake (RFC 6455 §4) starts on the established session.
//!
//! Deadlines: an inbound handshake is bounded by `tls_handshake_timeout` and the WebSocket
//! handshake that follows by `inbound_handshake_timeout` from the end of the TLS one; an
//! outbound one by `handshake_timeout` for the TLS handshake, then again for the 101.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sipcore_abi::LogLevel;
use sipcore_tls::{Progress, SessionError, TlsSession};

use super::api::TraceEvent;
use super::conn::Phase;
use super::stream::{Stream, TlsHandle};
use super::timer::Kind;
use super::worker::State;

/// About what a completed TLS handshake frees (OpenSSL's handshake buffers and state): a
/// trim follows every 64 handshakes (`reclaim::TRIM_AT`).
const HANDSHAKE_FREED: usize = 16 * 1024;

/// The host name to send as SNI (RFC 6066 §3) and to check the server certificate against
/// (RFC 6125), from a `Host` value (`name`, `name:port`, `[v6]:port`, `ip:port`); `None` for
/// an IP address literal, which SNI may not carry: the certificate must then name the IP.
pub(crate) fn sni_host(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    (!name.is_empty() && name.parse::<IpAddr>().is_err()).then_some(name)
}

/// The client TLS session of an outbound connection to `dest` over `tcp`, its domain chosen
/// by destination and host name (`sipcore_tls` client domain selection).
pub(crate) fn client_stream(
    tls: &TlsHandle,
    dest: SocketAddr,
    host: &str,
    tcp: mio::net::TcpStream,
) -> Result<Stream, SessionError> {
    TlsSession::client(&tls.0.current(), dest, sni_host(host), tcp).map(Stream::tls)
}

/// The server TLS session of a socket accepted on `local`, its domain chosen by local socket
/// and then SNI (the manager's current contexts: a later `tls_reload` does not affect it).
pub(crate) fn server_stream(
    tls: &TlsHandle,
    local: SocketAddr,
    tcp: mio::net::TcpStream,
) -> Result<Stream, SessionError> {
    TlsSession::server(&tls.0.current(), local, tcp).map(Stream::tls)
}

impl State {
    /// One TLS handshake step of the connection in `slot` (phase `TlsAccept` or
    /// `TlsConnect`). True when the handshake completed and the connection moved on to the
    /// WebSocket handshake; a failed handshake closes the connection with one log line naming
    /// the peer and OpenSSL's reason.
    pub fn tls_step(&mut self, slot: usize, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(slot) else {
            return false;
        };
        if !matches!(c.phase, Phase::TlsAccept | Phase::TlsConnect) {
            return false;
        }
        if c.phase == Phase::TlsAccept && !c.peer_spoke {
            // A client that connects and leaves without a byte (a TCP health check) is closed
            // quietly, as a plain one that sends no handshake; a failure is logged only once
            // the client started the TLS handshake.
            match c.sock.tcp().peek(&mut [0u8; 1]) {
                Ok(0) => {
                    self.kill(slot, "peer closed before the tls handshake");
                    return false;
                }
                Ok(_) => c.peer_spoke = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                // Any other error: the handshake step below reports it.
                Err(_) => c.peer_spoke = true,
            }
        }
        match c.sock.handshake() {
            Ok(Progress::Done) => {
                self.tls_done(slot, now);
                true
            }
            Ok(Progress::WantRead | Progress::WantWrite) => false,
            Err(e) => {
                let why = match e {
                    SessionError::Handshake(s) => s,
                    other => other.to_string(),
                };
                let peer = c.peer_str();
                self.shared.log(
                    LogLevel::WARN,
                    "tls handshake failed",
                    &[("peer", &peer), ("reason", &why)],
                );
                crate::stats::TLS_HANDSHAKES_FAILED.inc();
                let reason = format!("tls handshake failed: {why}");
                if c.traced {
                    let ev = TraceEvent::HandshakeFailed {
                        status: 0,
                        reason: &reason,
                    };
                    self.shared.sink.trace(&c.meta, ev);
                }
                self.kill(slot, &reason);
                false
            }
        }
    }

    /// The TLS handshake completed: record what it negotiated (MI `ws_list`), then start the
    /// WebSocket handshake: send the request (outbound) or wait for it (inbound).
    fn tls_done(&mut self, slot: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(slot) else {
            return;
        };
        // OpenSSL freed the handshake's buffers and state (certificate chain, key exchange,
        // transcript, record buffers): count them towards giving memory back, so that a burst
        // of handshakes does not leave the heap at its peak (see `reclaim`).
        super::reclaim::released(HANDSHAKE_FREED);
        let summary = c.sock.tls_summary();
        let (id, peer, outbound) = (c.meta.id, c.peer_str(), c.meta.outbound);
        if let Some(s) = summary {
            self.shared.log(
                LogLevel::DBG,
                "tls handshake done",
                &[
                    ("peer", &peer),
                    ("version", s.version),
                    ("cipher", s.cipher),
                ],
            );
        }
        if outbound {
            self.ws_request(slot, now);
            return;
        }
        if self.shared.cfg.sip_stream {
            self.stream_open(slot, now);
            return;
        }
        c.phase = Phase::ServerHandshake;
        self.shared.dir().set_state(id, Phase::ServerHandshake);
        let at = now + self.shared.cfg.inbound_handshake_timeout;
        self.rearm(slot, Kind::Handshake, at);
    }
}

#[cfg(test)]
mod tests {
    use super::sni_host;

    #[test]
    fn sni_is_the_host_name_without_port_and_never_an_ip() {
        assert_eq!(sni_host("sip.example.com"), Some("sip.example.com"));
        assert_eq!(sni_host("sip.example.com:8443"), Some("sip.example.com"));
        assert_eq!(sni_host("127.0.0.1:8443"), None);
        assert_eq!(sni_host("10.0.0.1"), None);
        assert_eq!(sni_host("[::1]:8443"), None);
        assert_eq!(sni_host("::1"), None);
        assert_eq!(sni_host(""), None);
    }
}
