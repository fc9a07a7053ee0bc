//! One client connection, plain (`ws://`) or TLS (`wss://`), and how to open it: TCP connect
//! (optionally from a chosen source address), then the TLS handshake if asked for.

use crate::tls::TlsStream;
use openssl::ssl::SslContext;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// The server's address and whether to speak TLS, from `--addr host:port` or
/// `--addr wss://host:port[/]` (or `ws://...`), and the global `--tls`.
#[derive(Clone)]
pub struct Target {
    /// `host:port`, without a scheme.
    pub addr: String,
    /// The host part (Host header, SNI).
    pub host: String,
    /// Client TLS context when the target is `wss`.
    pub tls: Option<SslContext>,
}

impl Target {
    /// Parse `addr`; `tls` forces TLS even without `wss://`.
    pub fn new(addr: &str, tls: bool) -> io::Result<Self> {
        let (tls, rest) = if let Some(r) = addr.strip_prefix("wss://") {
            (true, r)
        } else if let Some(r) = addr.strip_prefix("ws://") {
            (tls, r)
        } else {
            (tls, addr)
        };
        let addr = rest.trim_end_matches('/').to_string();
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
            None => addr.clone(),
        };
        let tls = if tls {
            Some(crate::tls::client_context()?)
        } else {
            None
        };
        Ok(Target { addr, host, tls })
    }

    /// `ws` or `wss`, for RESULT lines.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "wss"
        } else {
            "ws"
        }
    }

    /// TCP connect from `src` (the kernel's choice if `None`), nodelay; then TLS if configured.
    /// Returns the stream and the ns the TCP connect took.
    pub async fn open(&self, src: Option<IpAddr>) -> io::Result<(Stream, u64)> {
        let t = std::time::Instant::now();
        let tcp = match src {
            None => TcpStream::connect(&self.addr).await?,
            Some(ip) => {
                let dst: SocketAddr = self
                    .addr
                    .parse()
                    .map_err(|_| io::Error::other("--src-ips needs --addr as ip:port"))?;
                let sock = TcpSocket::new_v4()?;
                bind_no_port(&sock);
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(dst).await?
            }
        };
        tcp.set_nodelay(true)?;
        let connected = t.elapsed().as_nanos() as u64;
        let s = match &self.tls {
            None => Stream::Plain(tcp),
            Some(ctx) => Stream::Tls(TlsStream::connect(ctx, &self.host, tcp).await?),
        };
        Ok((s, connected))
    }
}

/// IP_BIND_ADDRESS_NO_PORT: defer the source port choice to connect(), so each source IP has
/// the whole ephemeral range per destination.
fn bind_no_port(sock: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int we own for the given length, on a socket we own.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A connection to the server, plain or TLS.
pub enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    Tls(TlsStream),
}

impl Stream {
    /// The TCP socket (for a non-blocking EOF probe).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.tcp(),
        }
    }

    /// `TLSv1.3/TLS_AES_256_GCM_SHA384`, or `-` for plain TCP.
    pub fn describe(&self) -> String {
        match self {
            Stream::Plain(_) => "-".into(),
            Stream::Tls(s) => s.describe(),
        }
    }

    /// Close politely without waiting: close_notify for TLS, then the socket is dropped (FIN).
    pub fn close(mut self) {
        if let Stream::Tls(s) = &mut self {
            s.close_notify();
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
