//! `hs` mode: connection setup rate. C tasks each loop over: TCP connect, TLS full handshake
//! (for `wss`; the client keeps no session, so the server never resumes one), WebSocket
//! upgrade, close (close_notify and FIN). Reports completed setups per second and per server
//! CPU-second over the measurement window, with setup latency quantiles.

use crate::conn::{Stream, Target};
use crate::hist::Hist;
use crate::measure::{self, Shared, Window};
use crate::ws;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Parameters of a handshake-rate run.
pub struct HsArgs {
    /// Server address, and TLS or not.
    pub target: Target,
    /// Setups in progress at once.
    pub conns: usize,
    /// Spread connections over this many source addresses 127.0.0.2.. (0 = kernel's choice):
    /// the client closes first, so its side keeps TIME_WAIT sockets.
    pub src_ips: u8,
    /// The measurement window.
    pub window_args: Window,
}

struct Info {
    first_err: Mutex<Option<String>>,
    tls: OnceLock<String>,
}

async fn setup(target: &Target, src: Option<IpAddr>) -> std::io::Result<Stream> {
    let (mut s, _) = target.open(src).await?;
    let rest = ws::handshake(&mut s, &target.addr, "/").await?;
    if !rest.is_empty() {
        return Err(std::io::Error::other("unexpected data after the 101"));
    }
    Ok(s)
}

async fn task(
    target: Arc<Target>,
    src: Option<IpAddr>,
    sh: Arc<Shared>,
    info: Arc<Info>,
) -> Result<Hist, String> {
    let mut hist = Hist::new();
    let mut consecutive = 0u32;
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match setup(&target, src).await {
            Ok(s) => {
                consecutive = 0;
                if sh.measuring.load(Ordering::Relaxed) && !sh.stop.load(Ordering::Relaxed) {
                    hist.record(t.elapsed().as_nanos() as u64);
                }
                info.tls.get_or_init(|| s.describe());
                s.close();
            }
            Err(e) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                info.first_err
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
                consecutive += 1;
                if consecutive > 100 {
                    return Err(format!("100 failures in a row: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    Ok(hist)
}

/// Run the scenario; prints one `RESULT` line.
pub async fn run(a: HsArgs) -> Result<(), String> {
    let sh = Arc::new(Shared::default());
    let info = Arc::new(Info {
        first_err: Mutex::new(None),
        tls: OnceLock::new(),
    });
    let target = Arc::new(a.target.clone());
    let tasks = (0..a.conns)
        .map(|i| {
            let src = (a.src_ips > 0)
                .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % a.src_ips as usize) as u8)));
            tokio::spawn(task(target.clone(), src, sh.clone(), info.clone()))
        })
        .collect();
    let m = measure::window(&a.window_args, &sh).await;
    let c = measure::collect(tasks, Duration::from_secs(10)).await;
    let n = c.hist.count();
    println!(
        "RESULT mode=hs scheme={} tls={} conns={} secs={:.2} setups={} hs_per_s={:.0} {}",
        a.target.scheme(),
        info.tls.get().map(String::as_str).unwrap_or("-"),
        a.conns,
        m.elapsed,
        n,
        n as f64 / m.elapsed,
        measure::result_tail(n, &c, &m, &sh, "hs_per_cpu_s")
    );
    if let Some(e) = info
        .first_err
        .lock()
        .unwrap()
        .as_ref()
        .or(c.first_err.as_ref())
    {
        eprintln!("first connection error: {e}");
    }
    Ok(())
}
