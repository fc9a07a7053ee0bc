//! The MI HTTP server: JSON-RPC 2.0 over `POST <root>` (OpenSIPS `mi_http`, default root
//! `/mi`), on std::net with one accepting thread and one short-lived thread per connection,
//! at most [`MAX_CONNECTIONS`] at once, of which at most [`MAX_CONCURRENT`] run a command
//! (more are answered 503). A connection has [`READ_TIMEOUT`] to send its whole request and
//! takes a command slot only once it has: silent connections cannot starve the others.
//!
//! Answers: 200 with the JSON-RPC response; 204 when the body held only notifications; 404 for
//! another path; 405 (`Allow: GET, POST`) for another method; 411 without Content-Length; 413
//! for a body over 64 KiB; 408 when the request takes over 2 s to arrive; 503 when busy.
//! `GET <root>` answers the JSON array of command names; `GET /metrics`, when the server was
//! started with [`serve_with_metrics`], the Prometheus text the [`Metrics`] function renders
//! (it takes a command slot like a request). Every answer closes the connection.

use super::{conn, Registry};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Most commands run at once; a request beyond this is answered 503.
pub const MAX_CONCURRENT: usize = 16;
/// Most connections open at once (reading a request, running or answering it); a connection
/// beyond this is answered 503 at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = conn::MAX_BODY;
/// Time a client has to send its whole request.
pub const READ_TIMEOUT: Duration = conn::READ_TIMEOUT;

/// A running MI server. [`MiServer::stop`] (or dropping it) stops accepting and waits for the
/// requests in progress (at most a few seconds).
pub struct MiServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    conns: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
}

/// Renders the answer of `GET /metrics` (Prometheus text exposition format).
pub type Metrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Starts the MI server on `addr` (port 0 picks one) answering JSON-RPC at path `root`
/// (a missing leading `/` is added). Fails only when the socket cannot be bound or the
/// accepting thread cannot be started.
pub fn serve(registry: Arc<Registry>, addr: SocketAddr, root: &str) -> io::Result<MiServer> {
    start(registry, addr, root, None)
}

/// [`serve`], also answering `GET /metrics` with what `metrics` renders (OpenSIPS's
/// prometheus module serves it on the same httpd as mi_http).
pub fn serve_with_metrics(
    registry: Arc<Registry>,
    addr: SocketAddr,
    root: &str,
    metrics: Metrics,
) -> io::Result<MiServer> {
    start(registry, addr, root, Some(metrics))
}

fn start(
    registry: Arc<Registry>,
    addr: SocketAddr,
    root: &str,
    metrics: Option<Metrics>,
) -> io::Result<MiServer> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let root: Arc<str> = Arc::from(format!("/{}", root.trim_start_matches('/')));
    let stopping = Arc::new(AtomicBool::new(false));
    let active = Arc::new(AtomicUsize::new(0));
    let conns = Arc::new(AtomicUsize::new(0));
    let counters = Counters {
        active: active.clone(),
        conns: conns.clone(),
        metrics,
    };
    let st = stopping.clone();
    let accept = thread::Builder::new()
        .name("mi-http".into())
        .spawn(move || accept_loop(listener, registry, root, st, counters))?;
    Ok(MiServer {
        addr,
        stopping,
        active,
        conns,
        accept: Some(accept),
    })
}

impl MiServer {
    /// The address the server listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Commands running right now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    /// Stops accepting, joins the accepting thread, and waits (at most the read timeout plus
    /// one second) for the connections in progress. Idempotent.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let wake = SocketAddr::new(wake_ip(self.addr.ip()), self.addr.port());
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = accept.join();
        }
        let deadline = Instant::now() + READ_TIMEOUT + Duration::from_secs(1);
        while self.connections() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for MiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to connect to reach a listener bound to `ip` (loopback for a wildcard address).
fn wake_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// The server's counts (commands running, connections open) and its `/metrics` renderer.
struct Counters {
    active: Arc<AtomicUsize>,
    conns: Arc<AtomicUsize>,
    metrics: Option<Metrics>,
}

/// Decrements the count of connections open when the connection's thread ends, even by panic.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    registry: Arc<Registry>,
    root: Arc<str>,
    stopping: Arc<AtomicBool>,
    counters: Counters,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // EMFILE and the like: do not spin at full speed.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        // Only this thread increments, so check-then-add cannot overshoot the limit.
        if counters.conns.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            conn::reject_busy(stream);
            continue;
        }
        counters.conns.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(counters.conns.clone());
        let (registry, root, active) = (registry.clone(), root.clone(), counters.active.clone());
        let metrics = counters.metrics.clone();
        // On spawn failure the closure, stream and slot are dropped: connection closed, slot freed.
        let _ = thread::Builder::new().name("mi-req".into()).spawn(move || {
            let _slot = slot;
            let slots = conn::Slots {
                active: &active,
                max: MAX_CONCURRENT,
            };
            let site = conn::Site {
                registry: &registry,
                root: &root,
                metrics: metrics.as_ref(),
            };
            conn::serve(stream, &site, &slots);
        });
    }
}
