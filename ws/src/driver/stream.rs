//! The byte stream under a connection: a plain TCP socket (`ws`), or a TLS session over one
//! (`wss`, RFC 8446; RFC 6455 §3 "wss" URIs). The read path, the write queue, shutdown and
//! close see only [`Stream`]; the plain case forwards every call to the socket, so `ws` keeps
//! its vectored writes (`writev`) and costs one branch per call.
//!
//! A TLS stream writes the write queue's chunks one by one through the session (one TLS record
//! per chunk at most, `SSL_write`), and with `SSL_MODE_RELEASE_BUFFERS` (set by
//! `sipcore-tls`) an idle session holds no record buffers.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use sipcore_tls::{Io, Progress, SessionError, SessionInfo, TlsManager, TlsSession};

/// A TLS session over a mio socket.
pub(crate) type Tls = TlsSession<mio::net::TcpStream>;

/// What a TLS connection negotiated, for MI `ws_list` (RFC 8446 §4.1.3 version, §B.4 suite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsSummary {
    /// Protocol version, OpenSSL's name (`TLSv1.3`, `TLSv1.2`).
    pub version: &'static str,
    /// Cipher suite, OpenSSL's name (`TLS_AES_256_GCM_SHA384`).
    pub cipher: &'static str,
}

impl From<&SessionInfo> for TlsSummary {
    fn from(i: &SessionInfo) -> Self {
        TlsSummary {
            version: i.version,
            cipher: i.cipher.unwrap_or("none"),
        }
    }
}

/// A shared TLS configuration for a listener or for outbound connections (compared by
/// identity, so that [`super::WsConfig`] stays comparable).
#[derive(Clone)]
pub struct TlsHandle(pub Arc<TlsManager>);

impl std::fmt::Debug for TlsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsHandle")
    }
}

impl PartialEq for TlsHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsHandle {}

/// A connection's stream.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(mio::net::TcpStream),
    /// TLS over TCP (boxed: a plain connection does not pay for the session's size).
    Tls(Box<TlsStream>),
}

/// A TLS session and what the driver remembers about its last I/O.
pub(crate) struct TlsStream {
    /// The session.
    pub session: Tls,
    /// The last read stopped because the session has to write first (e.g. a TLS 1.3
    /// post-handshake message while the socket's send buffer was full): read again when the
    /// socket becomes writable.
    pub read_wants_write: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stream::Plain(s) => f.debug_tuple("Plain").field(s).finish(),
            Stream::Tls(t) => f.debug_tuple("Tls").field(t.session.get_ref()).finish(),
        }
    }
}

impl Stream {
    /// Wrap `tcp` in a TLS session.
    pub fn tls(session: Tls) -> Stream {
        Stream::Tls(Box::new(TlsStream {
            session,
            read_wants_write: false,
        }))
    }

    /// The TCP socket (to register with the poller, read its addresses and errors).
    pub fn tcp(&self) -> &mio::net::TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.session.get_ref(),
        }
    }

    /// The TCP socket, mutably.
    pub fn tcp_mut(&mut self) -> &mut mio::net::TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.session.get_mut(),
        }
    }

    /// True for a TLS stream.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// One TLS handshake step (RFC 8446 §4); a plain stream has none (`Done`).
    pub fn handshake(&mut self) -> Result<Progress, SessionError> {
        match self {
            Stream::Plain(_) => Ok(Progress::Done),
            Stream::Tls(t) => t.session.handshake(),
        }
    }

    /// What the TLS session negotiated; `None` for a plain stream.
    pub fn tls_summary(&self) -> Option<TlsSummary> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(t) => Some(TlsSummary::from(&t.session.info())),
        }
    }

    /// The last read is waiting for the socket to be writable (see
    /// [`TlsStream::read_wants_write`]); clears the flag.
    pub fn take_read_wants_write(&mut self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => std::mem::take(&mut t.read_wants_write),
        }
    }

    /// Shut down our sending side: close_notify first for TLS (RFC 8446 §6.1, not waiting for
    /// the peer's), then the TCP write side.
    pub fn shutdown_write(&mut self) {
        if let Stream::Tls(t) = self {
            let _ = t.session.shutdown();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

impl Read for Stream {
    /// Plaintext bytes. For TLS: a peer that drops TCP without close_notify reads as end of
    /// stream (browsers do that, RFC 8446 §6.1 allows treating it so once data is complete);
    /// want-read / want-write read as `WouldBlock`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => match t.session.read(buf) {
                Ok(Io::Ready(n)) => Ok(n),
                Ok(Io::WantRead) => Err(io::ErrorKind::WouldBlock.into()),
                Ok(Io::WantWrite) => {
                    t.read_wants_write = true;
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(SessionError::Truncated) => Ok(0),
                Err(e) => Err(io::Error::other(e)),
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => Write::write(&mut t.session, buf),
        }
    }

    /// Plain: one `writev`. TLS: the first non-empty slice through the session; the write
    /// queue calls again for the rest (and, after `WouldBlock`, with the same bytes first, as
    /// `SSL_write` requires).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(t) => {
                let first = bufs.iter().find(|b| !b.is_empty());
                first.map_or(Ok(0), |b| Write::write(&mut t.session, b))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp_mut().flush()
    }
}
