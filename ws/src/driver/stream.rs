//! The byte stream under a connection: a plain TCP socket (`ws`), or a TLS session over one
//! (`wss`, RFC 8446; RFC 6455 §3 "wss" URIs). The read path, the write queue, shutdown and
//! close see only [`Stream`]; the plain case forwards every call to the socket, so `ws` keeps
//! its vectored writes (`writev`) and costs one branch per call.
//!
//! A TLS stream gathers the write queue's chunks, up to one full TLS record (16 KiB, RFC 8446
//! §5.1), into a per-thread buffer and writes them with one `SSL_write`: one record and one
//! `send` for a burst of replies instead of one each. With `SSL_MODE_RELEASE_BUFFERS` (set by
//! `sipcore-tls`) an idle session holds no record buffers, and the gathering buffer belongs
//! to the I/O thread, not the connection.

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

    /// Plain: one `writev`. TLS: the slices gathered up to one record ([`gather`]) through
    /// the session. After `WouldBlock` the write queue calls again from the same head, so the
    /// bytes offered start with the same ones and are at least as many, as `SSL_write`
    /// requires (`SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER` lets them come from another buffer).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write_vectored(bufs),
            Stream::Tls(t) => gather(bufs, |b| Write::write(&mut t.session, b)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp_mut().flush()
    }
}

/// Most plaintext bytes gathered for one write: a full TLS record (RFC 8446 §5.1).
const GATHER_MAX: usize = 16 * 1024;

thread_local! {
    /// The I/O thread's gathering buffer (no connection holds one).
    static GATHER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Call `write` once with the leading bytes of `bufs`, at most [`GATHER_MAX`]: the first
/// non-empty slice as it is when it alone fills a record or is all there is, else the
/// slices copied together.
fn gather(
    bufs: &[IoSlice<'_>],
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
    let Some(first) = nonempty.next() else {
        return Ok(0);
    };
    if first.len() >= GATHER_MAX || nonempty.next().is_none() {
        return write(first);
    }
    GATHER.with(|g| {
        let mut g = g.borrow_mut();
        g.clear();
        for b in bufs {
            let take = (GATHER_MAX - g.len()).min(b.len());
            g.extend_from_slice(&b[..take]);
            if g.len() == GATHER_MAX {
                break;
            }
        }
        write(&g)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(bufs: &[&[u8]]) -> Vec<u8> {
        let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut out = Vec::new();
        let n = gather(&slices, |b| {
            out.extend_from_slice(b);
            Ok(b.len())
        })
        .unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn gathers_up_to_one_record() {
        assert_eq!(written(&[]), b"");
        assert_eq!(written(&[b"", b"abc"]), b"abc");
        assert_eq!(written(&[b"ab", b"", b"cd", b"e"]), b"abcde");
        let big = vec![7u8; GATHER_MAX + 10];
        assert_eq!(
            written(&[&big, b"x"]).len(),
            big.len(),
            "a full record goes alone"
        );
        let half = vec![1u8; GATHER_MAX / 2 + 1];
        let out = written(&[&half, &half, b"tail"]);
        assert_eq!(out.len(), GATHER_MAX);
        assert!(out[..half.len()] == half[..]);
    }
}
