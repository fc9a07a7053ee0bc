//! `register` mode: authenticated registrations. C connections share U users
//! (`user<first+k>@domain`, password `pw<first+k>`; connection i has users i, i+C, i+2C, ...
//! below U, and registers them in turn, one registration in flight per connection, as a
//! reverse proxy or SBC in front of the registrar would), each registration being REGISTER
//! without credentials, the 401's MD5 challenge answered (`qop=auth`), 200. One count and one
//! latency sample (first REGISTER sent to 200 received) per registration. With `--reuse-nonce`
//! a re-registration carries credentials for the previous nonce at once (`nc` + 1), as real
//! clients do, and only an expired nonce is challenged again.

use crate::conn::Target;
use crate::hist::Hist;
use crate::measure::{self, Shared, Window};
use crate::ua::{self, Ua};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parameters of a registration run.
pub struct RegisterArgs {
    /// Server address.
    pub target: Target,
    /// SIP domain of the users (also the digest realm the servers use).
    pub domain: String,
    /// Connections.
    pub conns: usize,
    /// Users (at least `conns`).
    pub users: usize,
    /// Number of the first user.
    pub first: usize,
    /// Re-register with credentials for the last nonce instead of a fresh 401 each time.
    pub reuse_nonce: bool,
    /// Registration lifetime asked for, in seconds.
    pub expires: u32,
    /// Answer challenges with a wrong password (every registration should fail).
    pub wrong_password: bool,
    /// The measurement window.
    pub window_args: Window,
}

async fn conn_task(
    target: Arc<Target>,
    a: Arc<(String, usize, bool, u32, bool, usize, usize)>,
    id: usize,
    sh: Arc<Shared>,
    challenges: Arc<AtomicU64>,
) -> std::io::Result<Hist> {
    let (domain, first, reuse, expires) = (&a.0, a.1, a.2, a.3);
    let (conns, users) = (a.5, a.6);
    let (mut s, _) = target.open(None).await?;
    let mut buf = crate::ws::handshake(&mut s, &target.addr, "/").await?;
    let mut m = crate::ws::Masker::new();
    let mut uas: Vec<Ua> = (id..users.max(id + 1))
        .step_by(conns)
        .map(|k| {
            let mut u = Ua::new(first + k, domain, std::process::id(), expires);
            u.wrong_password = a.4;
            u
        })
        .collect();
    let mut hist = Hist::new();
    let mut next = 0;
    while !sh.stop.load(Ordering::Relaxed) {
        let n = uas.len();
        let u = &mut uas[next];
        next = (next + 1) % n;
        let t0 = Instant::now();
        let reg = ua::register(&mut s, &mut buf, &mut m, u, reuse);
        let r = match tokio::time::timeout(Duration::from_secs(5), reg).await {
            Ok(r) => r,
            Err(_) => Err("no final answer within 5 s".to_string()),
        };
        match r {
            Ok(c) => {
                if sh.measuring.load(Ordering::Relaxed) && !sh.stop.load(Ordering::Relaxed) {
                    hist.record(t0.elapsed().as_nanos() as u64);
                    challenges.fetch_add(u64::from(c), Ordering::Relaxed);
                }
            }
            Err(e) if e.contains("REGISTER answered") => {
                sh.non200.fetch_add(1, Ordering::Relaxed);
                if sh.non200.load(Ordering::Relaxed) == 1 {
                    eprintln!("first failure: {e}");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    Ok(hist)
}

/// Run the scenario; prints one `RESULT` line.
pub async fn run(a: RegisterArgs) -> Result<(), String> {
    let sh = Arc::new(Shared::default());
    let challenges = Arc::new(AtomicU64::new(0));
    let target = Arc::new(a.target.clone());
    let shared = Arc::new((
        a.domain.clone(),
        a.first,
        a.reuse_nonce,
        a.expires,
        a.wrong_password,
        a.conns,
        a.users.max(a.conns),
    ));
    let tasks = (0..a.conns)
        .map(|id| {
            tokio::spawn(conn_task(
                target.clone(),
                shared.clone(),
                id,
                sh.clone(),
                challenges.clone(),
            ))
        })
        .collect();
    let m = measure::window(&a.window_args, &sh).await;
    let c = measure::collect(tasks, Duration::from_secs(10)).await;
    let n = c.hist.count();
    println!(
        "RESULT mode=register reuse_nonce={} conns={} users={} secs={:.2} registrations={} regs={:.0} \
         challenges={} {}",
        u8::from(a.reuse_nonce),
        a.conns,
        a.users.max(a.conns),
        m.elapsed,
        n,
        n as f64 / m.elapsed,
        challenges.load(Ordering::Relaxed),
        measure::result_tail(n, &c, &m, &sh, "reg_per_cpu_s")
    );
    if let Some(e) = c.first_err {
        eprintln!("first connection error: {e}");
    }
    Ok(())
}
