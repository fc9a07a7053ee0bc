//! Client-side TLS for `wss://` runs: OpenSSL over a tokio `TcpStream` without an extra crate
//! (what tokio-openssl does, in a few lines). The load generator trusts any certificate (no
//! verification of the chain: it measures servers, it does not protect anything) and never
//! resumes a session, so every connection costs the server a full handshake.

use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslMode, SslSessionCacheMode, SslStream, SslVerifyMode,
};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The client context: TLS 1.2 or later, no verification, no client-side session cache (no
/// resumption: each handshake is a full one), OpenSSL's default cipher and group order.
pub fn client_context() -> io::Result<SslContext> {
    let mut b = SslContext::builder(SslMethod::tls_client()).map_err(io::Error::other)?;
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
        .map_err(io::Error::other)?;
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_mode(SslMode::ACCEPT_MOVING_WRITE_BUFFER | SslMode::ENABLE_PARTIAL_WRITE);
    Ok(b.build())
}

/// Synchronous view of the non-blocking socket for OpenSSL: `WouldBlock` when tokio's
/// readiness says so (which also clears that readiness).
struct Io(TcpStream);

impl Read for Io {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(b)
    }
}

impl Write for Io {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.try_write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A TLS client connection usable as a tokio stream.
pub struct TlsStream(SslStream<Io>);

/// Wait for what OpenSSL wants (`Ok(Pending)`), or turn its error into an io::Error.
fn want(s: &SslStream<Io>, e: openssl::ssl::Error, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let tcp = &s.get_ref().0;
    match e.code() {
        ErrorCode::WANT_READ => tcp.poll_read_ready(cx),
        ErrorCode::WANT_WRITE => tcp.poll_write_ready(cx),
        _ => Poll::Ready(Err(e
            .into_io_error()
            .unwrap_or_else(|e| io::Error::other(e.to_string())))),
    }
}

impl TlsStream {
    /// TCP connected: run the TLS client handshake (SNI `host` if it is a name).
    pub async fn connect(ctx: &SslContext, host: &str, tcp: TcpStream) -> io::Result<Self> {
        let mut ssl = Ssl::new(ctx).map_err(io::Error::other)?;
        if host.parse::<std::net::IpAddr>().is_err() {
            ssl.set_hostname(host).map_err(io::Error::other)?;
        }
        let mut s = SslStream::new(ssl, Io(tcp)).map_err(io::Error::other)?;
        std::future::poll_fn(|cx| loop {
            match s.connect() {
                Ok(()) => return Poll::Ready(Ok::<(), io::Error>(())),
                Err(e) => ready!(want(&s, e, cx))?,
            }
        })
        .await?;
        Ok(TlsStream(s))
    }

    /// The TCP socket under the TLS layer.
    pub fn tcp(&self) -> &TcpStream {
        &self.0.get_ref().0
    }

    /// Protocol version and cipher negotiated, e.g. `TLSv1.3/TLS_AES_256_GCM_SHA384`.
    pub fn describe(&self) -> String {
        let ssl = self.0.ssl();
        format!(
            "{}/{}",
            ssl.version_str(),
            ssl.current_cipher().map(|c| c.name()).unwrap_or("-")
        )
    }

    /// Send close_notify (best effort, without waiting for the peer's).
    pub fn close_notify(&mut self) {
        let _ = self.0.shutdown();
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let s = &mut self.get_mut().0;
        loop {
            match s.ssl_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => return Poll::Ready(Ok(())),
                Err(e) if e.code() == ErrorCode::SYSCALL && e.io_error().is_none() => {
                    return Poll::Ready(Ok(())); // EOF without close_notify
                }
                Err(e) => ready!(want(s, e, cx))?,
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let s = &mut self.get_mut().0;
        loop {
            match s.ssl_write(b) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) => ready!(want(s, e, cx))?,
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().close_notify();
        Poll::Ready(Ok(()))
    }
}
