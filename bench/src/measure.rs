//! The measurement window shared by the `rr` and `relay` modes: warm-up, then a window of
//! `duration` during which the connection tasks record latencies, with the server's and our
//! own CPU seconds read around it; then the tasks' histograms merged.

use crate::hist::Hist;
use crate::procfs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Flags and counters every connection task shares.
#[derive(Default)]
pub struct Shared {
    /// Inside the measured window: record latencies.
    pub measuring: AtomicBool,
    /// The window is over: stop sending.
    pub stop: AtomicBool,
    /// Protocol errors seen.
    pub errors: AtomicU64,
    /// Answers other than 200.
    pub non200: AtomicU64,
}

/// When and whom to measure (command-line arguments of `rr` and `relay`).
#[derive(clap::Args, Clone)]
pub struct Window {
    /// Measured seconds.
    #[arg(short = 'd', long = "duration", default_value_t = 10.0)]
    pub duration_s: f64,
    /// Warm-up seconds before measuring.
    #[arg(long = "warmup", default_value_t = 1.0)]
    pub warmup_s: f64,
    /// Server PID (CPU seconds from /proc/PID/stat); repeat for several servers (nodes of a
    /// cluster), whose CPU seconds are summed.
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Also count the server PID's descendant processes (multi-process servers).
    #[arg(long)]
    pub tree: bool,
}

/// What the window measured.
pub struct Measured {
    /// Length of the window in seconds.
    pub elapsed: f64,
    /// Server CPU seconds in the window.
    pub server_cpu: f64,
    /// Of which in the kernel (system time).
    pub server_sys: f64,
    /// Our own CPU seconds in the window.
    pub client_cpu: f64,
    /// Server processes counted.
    pub server_pids: usize,
}

/// Wait out the warm-up, run the window (setting `sh.measuring`, then `sh.stop`).
pub async fn window(w: &Window, sh: &Shared) -> Measured {
    tokio::time::sleep(Duration::from_secs_f64(w.warmup_s)).await;
    let pids: Vec<u32> = w
        .pid
        .iter()
        .flat_map(|p| procfs::pids(*p, w.tree))
        .collect();
    let cpu0 = procfs::cpu_secs(&pids);
    let self0 = procfs::self_cpu_secs();
    let t0 = Instant::now();
    sh.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(w.duration_s)).await;
    sh.stop.store(true, Ordering::Relaxed);
    let cpu1 = procfs::cpu_secs(&pids);
    Measured {
        elapsed: t0.elapsed().as_secs_f64(),
        server_cpu: cpu1.0 - cpu0.0,
        server_sys: cpu1.1 - cpu0.1,
        client_cpu: procfs::self_cpu_secs() - self0,
        server_pids: pids.len(),
    }
}

/// The tasks' histograms merged, how many tasks failed, and the first failure.
pub struct Collected {
    /// All latencies.
    pub hist: Hist,
    /// Tasks that failed, hung or panicked.
    pub failed: usize,
    /// The first failure.
    pub first_err: Option<String>,
}

/// Wait up to `timeout` for each task and merge their histograms.
pub async fn collect<E: std::fmt::Display>(
    tasks: Vec<JoinHandle<Result<Hist, E>>>,
    timeout: Duration,
) -> Collected {
    let mut c = Collected {
        hist: Hist::new(),
        failed: 0,
        first_err: None,
    };
    for t in tasks {
        match tokio::time::timeout(timeout, t).await {
            Ok(Ok(Ok(h))) => c.hist.merge(&h),
            Ok(Ok(Err(e))) => {
                c.failed += 1;
                c.first_err.get_or_insert(e.to_string());
            }
            _ => {
                c.failed += 1;
                c.first_err
                    .get_or_insert("connection task hung or panicked".into());
            }
        }
    }
    c
}

/// The part of a `RESULT` line both modes share, after the count and rate: latency quantiles,
/// CPU seconds, `per_cpu_key` (count per server CPU-second of `n` items), error counters.
pub fn result_tail(n: u64, c: &Collected, m: &Measured, sh: &Shared, per_cpu_key: &str) -> String {
    let us = |q: f64| c.hist.quantile(q) as f64 / 1000.0;
    let per_cpu = if m.server_cpu > 0.0 {
        n as f64 / m.server_cpu
    } else {
        0.0
    };
    format!(
        "p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} server_cpu_s={:.2} \
         server_sys_s={:.2} {per_cpu_key}={per_cpu:.0} client_cpu_s={:.2} non200={} errors={} failed_conns={} \
         server_pids={}",
        us(0.5),
        us(0.99),
        us(0.999),
        c.hist.max() as f64 / 1000.0,
        m.server_cpu,
        m.server_sys,
        m.client_cpu,
        sh.non200.load(Ordering::Relaxed),
        sh.errors.load(Ordering::Relaxed),
        c.failed,
        m.server_pids
    )
}
