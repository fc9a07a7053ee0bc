//! `idle` mode: open N WebSocket connections as fast as possible, hold them, and measure the
//! server's memory growth per connection.

use crate::conn::{Stream, Target};
use crate::hist::Hist;
use crate::procfs;
use crate::ws;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Parameters of an idle-connections run.
pub struct IdleArgs {
    /// Server address, and TLS or not.
    pub target: Target,
    /// Connections to open.
    pub n: usize,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// How long to hold the connections after the last one is open (memory is read at the end).
    pub hold: Duration,
    /// Server PID for memory accounting.
    pub pid: Option<u32>,
    /// Include the server's descendant processes.
    pub tree: bool,
    /// Spread connections over this many source addresses 127.0.0.2.. (0 = kernel's choice).
    pub src_ips: u8,
}

/// Open one connection from source address `src` (port chosen by the kernel at connect time),
/// TLS if the target is `wss`, and complete the WebSocket handshake; returns the stream and the
/// ns spent in TCP connect and in total.
async fn open(target: Arc<Target>, src: Option<IpAddr>) -> std::io::Result<(Stream, u64, u64)> {
    let t = Instant::now();
    let (mut s, connected) = target.open(src).await?;
    let rest = ws::handshake(&mut s, &target.addr, "/").await?;
    if !rest.is_empty() {
        return Err(std::io::Error::other("unexpected data after the 101"));
    }
    Ok((s, connected, t.elapsed().as_nanos() as u64))
}

/// Run the scenario; prints one `RESULT` line.
pub async fn run(a: IdleArgs) -> Result<(), String> {
    let limit = procfs::raise_nofile();
    if (limit as usize) < a.n + 64 {
        eprintln!("warning: open-file limit {limit} is below N={} + 64", a.n);
    }
    let pids = a.pid.map(|p| procfs::pids(p, a.tree)).unwrap_or_default();
    let (rss0, pss0) = procfs::mem_bytes(&pids);
    let cpu0 = procfs::cpu_secs(&pids).0;
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let target = Arc::new(a.target.clone());
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let target = target.clone();
        let src = (a.src_ips > 0)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % a.src_ips as usize) as u8)));
        tasks.push(tokio::spawn(async move {
            let r = open(target, src).await;
            drop(permit);
            r
        }));
    }
    let mut held = Vec::with_capacity(a.n);
    let (mut h_conn, mut h_all) = (Hist::new(), Hist::new());
    let mut failed = 0usize;
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok((s, c, all))) => {
                held.push(s);
                h_conn.record(c);
                h_all.record(all);
            }
            Ok(Err(e)) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    let open_secs = t0.elapsed().as_secs_f64();
    let cpu_open = procfs::cpu_secs(&pids).0 - cpu0;
    tokio::time::sleep(a.hold).await;
    let (rss1, pss1) = procfs::mem_bytes(&pids);
    let ok = held.len();
    let per = |a: u64, b: u64| {
        if ok > 0 {
            (b as f64 - a as f64) / ok as f64
        } else {
            0.0
        }
    };
    // Still open? A read of 0 bytes (EOF) means the server closed it during the hold.
    let mut closed_by_server = 0usize;
    let mut probe = [0u8; 64];
    for s in &held {
        if let Ok(0) = s.tcp().try_read(&mut probe) {
            closed_by_server += 1;
        }
    }
    println!(
        "RESULT mode=idle scheme={} tls={} n={} opened={} failed={} open_secs={:.3} handshakes_per_s={:.0} \
         server_cpu_open_s={:.2} rss_before_kib={} rss_after_kib={} rss_per_conn_b={:.0} \
         pss_before_kib={} pss_after_kib={} pss_per_conn_b={:.0} closed_by_server={} \
         server_pids={} nofile={} connect_p50_us={:.0} connect_max_us={:.0} \
         open_p50_us={:.0} open_p99_us={:.0} open_max_us={:.0}",
        a.target.scheme(),
        held.first().map(Stream::describe).unwrap_or_default(),
        a.n,
        ok,
        failed,
        open_secs,
        ok as f64 / open_secs,
        cpu_open,
        rss0 / 1024,
        rss1 / 1024,
        per(rss0, rss1),
        pss0 / 1024,
        pss1 / 1024,
        per(pss0, pss1),
        closed_by_server,
        pids.len(),
        limit,
        h_conn.quantile(0.5) as f64 / 1e3,
        h_conn.max() as f64 / 1e3,
        h_all.quantile(0.5) as f64 / 1e3,
        h_all.quantile(0.99) as f64 / 1e3,
        h_all.max() as f64 / 1e3
    );
    if let Some(e) = first_err {
        eprintln!("first connection error: {e}");
    }
    let t1 = Instant::now();
    drop(held);
    eprintln!("closed {ok} connections in {:?}", t1.elapsed());
    Ok(())
}
