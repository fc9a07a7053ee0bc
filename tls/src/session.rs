//! A non-blocking TLS session over any `Read + Write` stream (a mio `TcpStream` in the I/O
//! workers): the handshake is driven one step per call and never blocks; when the stream
//! returns `WouldBlock` the step reports what it waits for (OpenSSL's `SSL_ERROR_WANT_READ` /
//! `SSL_ERROR_WANT_WRITE`), and the worker calls again when the socket is ready.
//!
//! Server sessions pick their domain by local socket, then again by SNI (RFC 6066 §3) during
//! the handshake; client sessions pick theirs by destination and host name, send SNI, and check
//! the server's certificate against the host name (RFC 6125) unless the domain has
//! `verify_cert 0`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ssl::{self, ErrorCode, NameType, Ssl, SslStream};
use openssl::x509::X509VerifyResult;
use thiserror::Error;

use crate::context::{accept_index, AcceptState, TlsContexts};
use crate::filter::addr_rank;

/// Progress of a handshake or shutdown step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Finished.
    Done,
    /// Call again when the stream is readable.
    WantRead,
    /// Call again when the stream is writable.
    WantWrite,
}

/// Outcome of a plaintext read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// That many bytes were read or written; a read of 0 means the peer closed the session
    /// (close_notify, RFC 8446 §6.1).
    Ready(usize),
    /// Call again (with the same data, for a write) when the stream is readable.
    WantRead,
    /// Call again (with the same data, for a write) when the stream is writable.
    WantWrite,
}

/// The result of verifying the peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCert {
    /// The peer sent no certificate (usual for a client of a server domain).
    None,
    /// The peer's chain was verified against the domain's trusted CAs (and, for a client
    /// session, the host name).
    Verified,
    /// The peer's certificate did not verify; only possible with `verify_cert 0`. The text is
    /// OpenSSL's reason.
    NotVerified(String),
}

/// What a session negotiated, for logs and MI (`ws_list`, `tls_list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The protocol version, as OpenSSL names it (`TLSv1.3`, `TLSv1.2`).
    pub version: &'static str,
    /// The cipher suite, OpenSSL's name (`TLS_AES_256_GCM_SHA384`, `ECDHE-ECDSA-AES128-GCM-SHA256`).
    pub cipher: Option<&'static str>,
    /// The SNI name: received (server) or sent (client).
    pub sni: Option<String>,
    /// The TLS domain in use.
    pub domain: String,
    /// The peer certificate's verification.
    pub peer: PeerCert,
    /// Whether the session was resumed (RFC 8446 §2.2).
    pub resumed: bool,
}

/// Why a session could not be set up or went wrong.
#[derive(Debug, Error)]
pub enum SessionError {
    /// No server domain matches the local socket.
    #[error("no TLS server domain matches local socket {0}")]
    NoServerDomain(SocketAddr),
    /// No client domain matches the destination.
    #[error("no TLS client domain matches {dest} (host {host:?})")]
    NoClientDomain {
        /// Destination.
        dest: SocketAddr,
        /// Host name.
        host: Option<String>,
    },
    /// OpenSSL could not create the session.
    #[error("cannot create the TLS session: {0}")]
    Setup(ErrorStack),
    /// The handshake failed; the text says why (certificate verification, protocol version,
    /// missing client certificate, peer alert...).
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// A TLS error after the handshake.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The peer closed the connection without close_notify (RFC 8446 §6.1): usual for a
    /// browser tab that goes away; the data read so far is complete up to the last record.
    #[error("peer closed the connection without close_notify")]
    Truncated,
}

/// A TLS session over `S`.
pub struct TlsSession<S> {
    stream: SslStream<S>,
    set: Arc<TlsContexts>,
    /// Server side, until the handshake is done: what the SNI callback works with.
    accept: Option<Arc<AcceptState>>,
    /// A server session (else a client one).
    server: bool,
    /// The domain in use: the client domain, or the server domain once the handshake is done.
    domain: usize,
}

impl<S: Read + Write> TlsSession<S> {
    /// An incoming session on `local` with the contexts `set` (the caller's current set; a
    /// later reload does not affect this session).
    pub fn server(
        set: &Arc<TlsContexts>,
        local: SocketAddr,
        stream: S,
    ) -> Result<Self, SessionError> {
        let first = set.server_index(local, None).or_else(|| {
            // No domain takes a handshake without SNI here: start on any domain of this
            // address, the SNI callback decides.
            set.server
                .iter()
                .position(|d| addr_rank(&d.config.match_addresses, local).is_some())
        });
        let i = first.ok_or(SessionError::NoServerDomain(local))?;
        let mut ssl = Ssl::new(&set.server[i].ctx).map_err(SessionError::Setup)?;
        ssl.set_accept_state();
        let state = Arc::new(AcceptState {
            set: set.clone(),
            local,
            domain: AtomicUsize::new(i),
            refused: OnceLock::new(),
        });
        ssl.set_ex_data(accept_index(), Some(state.clone()));
        let stream = SslStream::new(ssl, stream).map_err(SessionError::Setup)?;
        Ok(TlsSession {
            stream,
            set: set.clone(),
            accept: Some(state),
            server: true,
            domain: i,
        })
    }

    /// An outgoing session to `dest`. `host` is the destination's host name: it selects the
    /// client domain, is sent as SNI, and is what the server certificate must name; without it
    /// the certificate must name `dest`'s IP address.
    pub fn client(
        set: &Arc<TlsContexts>,
        dest: SocketAddr,
        host: Option<&str>,
        stream: S,
    ) -> Result<Self, SessionError> {
        let i = set
            .client_index(dest, host)
            .ok_or_else(|| SessionError::NoClientDomain {
                dest,
                host: host.map(str::to_owned),
            })?;
        let dom = &set.client[i];
        let name = host
            .map(str::to_owned)
            .unwrap_or_else(|| dest.ip().to_string());
        let mut ssl = dom
            .connector
            .configure()
            .map_err(SessionError::Setup)?
            .use_server_name_indication(host.is_some())
            .verify_hostname(dom.config.verify_cert)
            .into_ssl(&name)
            .map_err(SessionError::Setup)?;
        ssl.set_connect_state();
        let stream = SslStream::new(ssl, stream).map_err(SessionError::Setup)?;
        Ok(TlsSession {
            stream,
            set: set.clone(),
            accept: None,
            server: false,
            domain: i,
        })
    }

    /// One handshake step (RFC 8446 §4, RFC 5246 §7.3). Never blocks.
    pub fn handshake(&mut self) -> Result<Progress, SessionError> {
        match self.stream.do_handshake() {
            Ok(()) => {
                self.drop_accept_state();
                Ok(Progress::Done)
            }
            Err(e) => want(&e).ok_or_else(|| SessionError::Handshake(self.describe(&e))),
        }
    }

    /// After the handshake the SNI callback is done with: keep the domain it chose and free
    /// its state (an idle connection holds only what it needs).
    fn drop_accept_state(&mut self) {
        let Some(state) = self.accept.take() else {
            return;
        };
        self.domain = state.domain.load(Ordering::Relaxed);
        let ptr = self.stream.ssl().as_ptr();
        // SAFETY: `self.stream` owns the `SSL` and `&mut self` is the only way to it, so no
        // other reference to it exists while this one is used.
        unsafe { openssl::ssl::SslRef::from_ptr_mut(ptr) }.set_ex_data(accept_index(), None);
    }

    /// Reads plaintext into `buf` (which must not be empty).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Io, SessionError> {
        match self.stream.ssl_read(buf) {
            Ok(n) => Ok(Io::Ready(n)),
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => Ok(Io::Ready(0)),
            Err(e) if is_truncation(&e) => Err(SessionError::Truncated),
            Err(e) => io_want(&e).ok_or_else(|| SessionError::Tls(self.describe(&e))),
        }
    }

    /// Writes plaintext from `buf`; may write part of it. After `WantRead`/`WantWrite`, call
    /// again with the same bytes.
    pub fn write(&mut self, buf: &[u8]) -> Result<Io, SessionError> {
        match self.stream.ssl_write(buf) {
            Ok(n) => Ok(Io::Ready(n)),
            Err(e) => io_want(&e).ok_or_else(|| SessionError::Tls(self.describe(&e))),
        }
    }

    /// Sends close_notify (RFC 8446 §6.1); does not wait for the peer's.
    pub fn shutdown(&mut self) -> Result<Progress, SessionError> {
        match self.stream.shutdown() {
            Ok(_) => Ok(Progress::Done),
            Err(e) => want(&e).ok_or_else(|| SessionError::Tls(self.describe(&e))),
        }
    }

    /// The negotiated parameters (meaningful once the handshake is done).
    pub fn info(&self) -> SessionInfo {
        let ssl = self.stream.ssl();
        let domain = match (&self.accept, self.server) {
            (Some(state), _) => {
                &self.set.server[state.domain.load(Ordering::Relaxed)]
                    .config
                    .name
            }
            (None, true) => &self.set.server[self.domain].config.name,
            (None, false) => &self.set.client[self.domain].config.name,
        };
        let peer = match ssl.peer_certificate() {
            None => PeerCert::None,
            Some(_) if ssl.verify_result() == X509VerifyResult::OK => PeerCert::Verified,
            Some(_) => PeerCert::NotVerified(ssl.verify_result().error_string().to_string()),
        };
        SessionInfo {
            version: ssl.version_str(),
            cipher: ssl.current_cipher().map(|c| c.name()),
            sni: ssl.servername(NameType::HOST_NAME).map(str::to_owned),
            domain: domain.clone(),
            peer,
            resumed: ssl.session_reused(),
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.stream.get_ref()
    }

    /// The underlying stream, mutably (e.g. to re-register it with a poller).
    pub fn get_mut(&mut self) -> &mut S {
        self.stream.get_mut()
    }

    /// A readable reason: the certificate verification result when that is what failed, then
    /// OpenSSL's error stack or the I/O error.
    fn describe(&self, e: &ssl::Error) -> String {
        let cause = match (e.ssl_error(), e.io_error()) {
            (Some(stack), _) => stack.to_string(),
            (None, Some(io)) => io.to_string(),
            (None, None) if e.code() == ErrorCode::SYSCALL => "connection closed by peer".into(),
            (None, None) => e.to_string(),
        };
        if let Some(why) = self.accept.as_ref().and_then(|a| a.refused.get()) {
            return format!("{why} ({cause})");
        }
        let verify = self.stream.ssl().verify_result();
        if verify != X509VerifyResult::OK {
            format!(
                "peer certificate not accepted: {} ({cause})",
                verify.error_string()
            )
        } else {
            cause
        }
    }
}

/// OpenSSL 3's `SSL_R_UNEXPECTED_EOF_WHILE_READING` (not exported by openssl-sys).
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;
/// OpenSSL's `ERR_LIB_SSL`.
const ERR_LIB_SSL: i32 = 20;

/// A TCP end of stream where a TLS record or close_notify was due: OpenSSL 3 reports it as an
/// SSL error with this reason; OpenSSL 1.1 as `SSL_ERROR_SYSCALL` without an errno.
fn is_truncation(e: &ssl::Error) -> bool {
    match (e.code(), e.ssl_error(), e.io_error()) {
        (ErrorCode::SSL, Some(stack), _) => stack.errors().iter().any(|x| {
            x.library_code() == ERR_LIB_SSL && x.reason_code() == SSL_R_UNEXPECTED_EOF_WHILE_READING
        }),
        (ErrorCode::SYSCALL, None, None) => true,
        _ => false,
    }
}

fn want(e: &ssl::Error) -> Option<Progress> {
    match e.code() {
        ErrorCode::WANT_READ => Some(Progress::WantRead),
        ErrorCode::WANT_WRITE => Some(Progress::WantWrite),
        _ => None,
    }
}

fn io_want(e: &ssl::Error) -> Option<Io> {
    match e.code() {
        ErrorCode::WANT_READ => Some(Io::WantRead),
        ErrorCode::WANT_WRITE => Some(Io::WantWrite),
        _ => None,
    }
}

/// `Read` over the session: `WantRead`/`WantWrite` become `WouldBlock`, so the session can
/// stand where a plain socket stood in a non-blocking driver.
impl<S: Read + Write> Read for TlsSession<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match TlsSession::read(self, buf) {
            Ok(Io::Ready(n)) => Ok(n),
            Ok(_) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// `Write` over the session, as [`Read`].
impl<S: Read + Write> Write for TlsSession<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match TlsSession::write(self, buf) {
            Ok(Io::Ready(n)) => Ok(n),
            Ok(_) => Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.get_mut().flush()
    }
}
