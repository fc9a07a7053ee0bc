//! `storm` mode: a registration storm. N clients, each its own WebSocket connection from its own
//! loopback source address (127.1.0.1, 127.1.0.2, ...: one client per address, as real clients
//! behind their own NATs, so per-IP limits and flood detection see what they would see), each its
//! own user, all registered first (401, credentials, 200). Then, at one instant, all of them
//! re-register (a fresh 401 round, or `--reuse-nonce`), and each one's time from that instant to
//! its 200 is recorded against the client transaction timeout (Timer F, 64*T1 = 32 s, RFC 3261
//! §17.1.2.2: over a reliable transport nothing is retransmitted, so that is the whole window).
//! A witness connection sends OPTIONS to the server the whole time; its latency before the
//! storm and during it shows whether other traffic is held up.

use crate::conn::Target;
use crate::hist::Hist;
use crate::procfs;
use crate::ua::{self, Ua};
use crate::ws::Masker;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch, Semaphore};

/// Parameters of a storm run.
pub struct StormArgs {
    /// Server address (`ip:port`: the clients bind their source addresses).
    pub target: Target,
    /// SIP domain of the users.
    pub domain: String,
    /// Clients (connections, users, source addresses).
    pub clients: usize,
    /// Number of the first user.
    pub first: usize,
    /// The first source address; client i uses this + i.
    pub src_base: Ipv4Addr,
    /// Connection setups (with their first registration) in progress at once.
    pub concurrency: usize,
    /// Re-register with credentials for the held nonce instead of a fresh 401 round.
    pub reuse_nonce: bool,
    /// Registration lifetime asked for, in seconds.
    pub expires: u32,
    /// The window every client must be served in, in seconds (Timer F).
    pub window_s: f64,
    /// Seconds the witness measures before the storm.
    pub baseline_s: f64,
    /// Request-URI of the witness's OPTIONS (the server itself).
    pub witness_ruri: String,
    /// Pause between the witness's OPTIONS, in ms.
    pub witness_gap_ms: f64,
    /// Server PID, and whether to count its descendants.
    pub pid: Option<u32>,
    /// Count the server PID's descendants too.
    pub tree: bool,
}

/// Witness phases.
const IDLE: u8 = 0;
const BEFORE: u8 = 1;
const DURING: u8 = 2;
const OVER: u8 = 3;

/// OPTIONS one at a time on its own connection; latencies before and during the storm.
async fn witness(
    target: Arc<Target>,
    ruri: String,
    gap: Duration,
    phase: Arc<AtomicU8>,
) -> std::io::Result<(Hist, Hist)> {
    let (mut s, _) = target.open(None).await?;
    let mut buf = crate::ws::handshake(&mut s, &target.addr, "/").await?;
    let mut m = Masker::new();
    let (mut before, mut during) = (Hist::new(), Hist::new());
    let (mut out, mut scratch) = (Vec::new(), Vec::new());
    let mut cseq = 0;
    loop {
        let ph = phase.load(Ordering::Relaxed);
        if ph == OVER {
            return Ok((before, during));
        }
        cseq += 1;
        out.clear();
        crate::rr::write_request(&mut out, &mut scratch, &mut m, (&ruri, 999_999, cseq));
        let t = Instant::now();
        s.write_all(&out).await?;
        loop {
            let p = ua::next_text(&mut s, &mut buf, &mut m).await?;
            if crate::rr::parse_response(&p).is_some_and(|(c, n)| n == cseq && c >= 200) {
                break;
            }
        }
        let ns = t.elapsed().as_nanos() as u64;
        // A sample counts for the storm if the storm started while it was in flight.
        match (ph, phase.load(Ordering::Relaxed)) {
            (_, DURING) | (DURING, _) => during.record(ns),
            (BEFORE, BEFORE) => before.record(ns),
            _ => {}
        }
        tokio::time::sleep(gap).await;
    }
}

/// What one client reports: set up and registered (or why not), then its storm completion.
enum Report {
    Ready(Result<(), String>),
    Done(Result<u64, String>),
}

#[allow(clippy::too_many_arguments)]
async fn client(
    target: Arc<Target>,
    a: Arc<(String, bool, u32, f64)>,
    n: usize,
    src: Ipv4Addr,
    setup: Arc<Semaphore>,
    mut go: watch::Receiver<Option<Instant>>,
    mut done: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<Report>,
) {
    let (domain, reuse, expires, window_s) = (&a.0, a.1, a.2, a.3);
    let mut u = Ua::new(n, domain, std::process::id(), expires);
    let permit = setup.acquire().await;
    let conn = async {
        let (mut s, _) = target
            .open(Some(IpAddr::V4(src)))
            .await
            .map_err(|e| format!("connect from {src}: {e}"))?;
        let mut buf = crate::ws::handshake(&mut s, &target.addr, "/")
            .await
            .map_err(|e| format!("handshake from {src}: {e}"))?;
        let mut m = Masker::new();
        ua::register(&mut s, &mut buf, &mut m, &mut u, false).await?;
        Ok::<_, String>((s, buf, m))
    };
    let r = tokio::time::timeout(Duration::from_secs(60), conn).await;
    drop(permit);
    let (mut s, mut buf, mut m) = match r {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return drop(tx.send(Report::Ready(Err(e)))),
        Err(_) => return drop(tx.send(Report::Ready(Err("setup timed out".into())))),
    };
    let _ = tx.send(Report::Ready(Ok(())));
    let Ok(t0) = go
        .wait_for(|g| g.is_some())
        .await
        .map(|g| g.unwrap_or_else(Instant::now))
    else {
        return;
    };
    let window = Duration::from_secs_f64(window_s + 5.0);
    let r = tokio::time::timeout(
        window,
        ua::register(&mut s, &mut buf, &mut m, &mut u, reuse),
    )
    .await;
    let r = match r {
        Ok(Ok(_)) => Ok(t0.elapsed().as_nanos() as u64),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no 200 within the window + 5 s".into()),
    };
    let _ = tx.send(Report::Done(r));
    // Keep the connection (and its binding) until every client is done.
    let _ = done.wait_for(|d| *d).await;
    drop(s);
}

/// Quantile of `h` in ms.
fn ms(h: &Hist, q: f64) -> f64 {
    h.quantile(q) as f64 / 1e6
}

/// Run the scenario; prints one `RESULT` line.
pub async fn run(a: StormArgs) -> Result<(), String> {
    let target = Arc::new(a.target.clone());
    let phase = Arc::new(AtomicU8::new(IDLE));
    // The witness on a thread and runtime of its own: queued behind 10,000 client tasks on
    // the shared runtime, it would measure the load generator instead of the server.
    let w = {
        let (target, ruri, phase) = (target.clone(), a.witness_ruri.clone(), phase.clone());
        let gap = Duration::from_secs_f64(a.witness_gap_ms / 1000.0);
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(witness(target, ruri, gap, phase))
                .map_err(|e| e.to_string())
        })
    };
    let shared = Arc::new((a.domain.clone(), a.reuse_nonce, a.expires, a.window_s));
    let setup = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let (go_tx, go_rx) = watch::channel(None);
    let (done_tx, done_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t_setup = Instant::now();
    for i in 0..a.clients {
        let src = Ipv4Addr::from(u32::from(a.src_base) + i as u32);
        tokio::spawn(client(
            target.clone(),
            shared.clone(),
            a.first + i,
            src,
            setup.clone(),
            go_rx.clone(),
            done_rx.clone(),
            tx.clone(),
        ));
    }
    drop(tx);
    let (mut ready, mut setup_failed, mut first_err) = (0usize, 0usize, None);
    while ready + setup_failed < a.clients {
        match rx.recv().await {
            Some(Report::Ready(Ok(()))) => ready += 1,
            Some(Report::Ready(Err(e))) => {
                setup_failed += 1;
                first_err.get_or_insert(e);
            }
            Some(Report::Done(_)) => {}
            None => break,
        }
    }
    let setup_s = t_setup.elapsed().as_secs_f64();
    eprintln!("storm: {ready} clients registered in {setup_s:.1} s, {setup_failed} failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(BEFORE, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.baseline_s)).await;
    let pids = a.pid.map(|p| procfs::pids(p, a.tree)).unwrap_or_default();
    let cpu0 = procfs::cpu_secs(&pids).0;
    let self0 = procfs::self_cpu_secs();
    let t0 = Instant::now();
    phase.store(DURING, Ordering::Relaxed);
    let _ = go_tx.send(Some(t0));
    let mut h = Hist::new();
    let (mut late, mut failed) = (0usize, 0usize);
    let window_ns = (a.window_s * 1e9) as u64;
    let deadline = t0 + Duration::from_secs_f64(a.window_s + 10.0);
    let mut finished = 0;
    while finished < ready {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(Report::Done(Ok(ns)))) => {
                h.record(ns);
                late += usize::from(ns > window_ns);
                finished += 1;
            }
            Ok(Some(Report::Done(Err(e)))) => {
                failed += 1;
                finished += 1;
                first_err.get_or_insert(e);
            }
            Ok(Some(Report::Ready(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let storm_s = t0.elapsed().as_secs_f64();
    let cpu = procfs::cpu_secs(&pids).0 - cpu0;
    let client_cpu = procfs::self_cpu_secs() - self0;
    failed += ready - finished;
    phase.store(OVER, Ordering::Relaxed);
    let _ = done_tx.send(true);
    let (before, during) = match tokio::task::spawn_blocking(move || w.join()).await {
        Ok(Ok(Ok(x))) => x,
        Ok(Ok(Err(e))) => {
            eprintln!("witness failed: {e}");
            (Hist::new(), Hist::new())
        }
        _ => {
            eprintln!("witness panicked");
            (Hist::new(), Hist::new())
        }
    };
    let ok = h.count() as usize - late;
    println!(
        "RESULT mode=storm reuse_nonce={} clients={} registered={} setup_failed={} setup_s={:.1} \
         storm_s={:.2} ok_in_window={} late={} failed={} done_p50_ms={:.1} done_p99_ms={:.1} \
         done_max_ms={:.1} server_cpu_s={:.2} reg_per_cpu_s={:.0} client_cpu_s={:.2} witness_before_n={} \
         witness_before_p50_ms={:.2} witness_before_p99_ms={:.2} witness_before_max_ms={:.2} \
         witness_during_n={} witness_during_p50_ms={:.2} witness_during_p99_ms={:.2} \
         witness_during_max_ms={:.2} server_pids={}",
        u8::from(a.reuse_nonce),
        a.clients,
        ready,
        setup_failed,
        setup_s,
        storm_s,
        ok,
        late,
        failed,
        ms(&h, 0.5),
        ms(&h, 0.99),
        h.max() as f64 / 1e6,
        cpu,
        if cpu > 0.0 {
            h.count() as f64 / cpu
        } else {
            0.0
        },
        client_cpu,
        before.count(),
        ms(&before, 0.5),
        ms(&before, 0.99),
        before.max() as f64 / 1e6,
        during.count(),
        ms(&during, 0.5),
        ms(&during, 0.99),
        during.max() as f64 / 1e6,
        pids.len()
    );
    if let Some(e) = first_err {
        eprintln!("first client error: {e}");
    }
    Ok(())
}
