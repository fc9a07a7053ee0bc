//! Issue 10 item 10, end to end: the MI never freezes the server. `ul_dump` of 100,000 AoRs
//! is streamed slot by slot (complete, through `sipcore mi`, with little memory) while a
//! witness's OPTIONS and REGISTER refreshes keep a p99 under 50 ms; sixteen silent TCP
//! connections to the MI port do not keep an MI call from being answered. Also measures the
//! memory per binding the README states, and checks `max_registrations` at 100,000.
mod common;
use common::sipws::*;
use common::*;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bundled default config (its registrar defaults: `max_registrations` 100,000) without
/// authentication (these tests are about the MI and the registrar's table, and the memory
/// per binding must not include cached credentials), with its MI port; the server is
/// started and the MI port waited for.
fn start() -> (Server, u16) {
    let (cfg, mi_port) = default_config_without_auth();
    let srv = Server::start(&cfg);
    wait_port(mi_port);
    (srv, mi_port)
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "MI port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tests of this file run one at a time (the latency bound measures the server, not
/// the other test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const AORS: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ul_dump_of_100000_aors_streams_and_stalls_nobody() {
    let _one = SERIAL.lock().await;
    let (srv, _) = start();
    let url = srv.ws_url();
    let pid = srv.child.id();
    // The witness's own AoR is the first binding.
    let mut witness_ws = register_one(&url, "witness").await;
    let rss0 = rss_kib(pid);
    let per = (AORS - 1) / 4;
    let mut tasks = Vec::new();
    for k in 0..4 {
        let url = url.clone();
        let end = if k == 3 { AORS - 1 } else { (k + 1) * per };
        tasks.push(tokio::spawn(async move {
            register_bulk(&url, "u", k * per..end, 200).await
        }));
    }
    let mut conns = Vec::new();
    for t in tasks {
        conns.push(t.await.unwrap());
    }
    let rss1 = rss_kib(pid);
    let per_binding = (rss1.saturating_sub(rss0) * 1024) / AORS as u64;
    eprintln!("RSS {rss0} KiB -> {rss1} KiB for {AORS} bindings: {per_binding} bytes per binding");
    assert!(per_binding < 4096, "{per_binding} bytes per binding");

    // The table is full (max_registrations 100000): one more AoR gets 503 with the reason.
    let mut late = common::ws::connect_sip(&url).await;
    let c = vec!["<sip:late@h.invalid;transport=ws>".to_string()];
    let r = ask(&mut late, register("late", "late", 1, &c, 600)).await;
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(
        header(&r, "P-Registrar-Error"),
        Some("registrar full (max_registrations 100000)")
    );

    // The dump, while a witness keeps sending OPTIONS and refreshing its registration, and
    // the server's memory is sampled.
    // The first witness unregisters (answered once removed), making room for the measuring
    // one, which registers and refreshes through the full table.
    let gone = vec!["<sip:witness@witness.invalid;transport=ws>;expires=0".to_string()];
    let r = ask(
        &mut witness_ws,
        register("witness", "reg-witness", 2, &gone, 600),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let witness = Witness::start_registered(&url, "witness2").await;
    let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
    let sampling = Arc::new(AtomicBool::new(true));
    let (pk, on) = (peak.clone(), sampling.clone());
    let sampler = std::thread::spawn(move || {
        while on.load(Ordering::SeqCst) {
            if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kib) = s
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    pk.fetch_max(kib, Ordering::SeqCst);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let before_dump = rss_kib(pid);
    // Dump again until the witness has 20 round trips measured during dumps (at most 10).
    let mut dump = mi(&srv.cfg_path, &["ul_dump"]).await.expect("ul_dump");
    for _ in 1..10 {
        if witness.samples() >= 20 {
            break;
        }
        dump = mi(&srv.cfg_path, &["ul_dump"]).await.expect("ul_dump");
    }
    let rtts = witness.finish().await;
    sampling.store(false, Ordering::SeqCst);
    sampler.join().unwrap();

    let aors = dump["Domains"][0]["AORs"].as_array().expect("AORs");
    // Everything registered is there (the first witness's AoR went; witness2 took its place).
    assert_eq!(aors.len(), AORS, "AoRs in the dump");
    assert_eq!(dump["Domains"][0]["name"], "location");
    let growth = peak.load(Ordering::SeqCst).saturating_sub(before_dump);
    eprintln!(
        "dump: {} witness requests, p99 {:?}, max {:?}; server RSS +{growth} KiB at peak",
        rtts.len(),
        p99(&rtts),
        rtts.last()
    );
    assert!(rtts.len() >= 20, "{} witness samples", rtts.len());
    assert!(
        p99(&rtts) < Duration::from_millis(50),
        "witness p99 {:?} during ul_dump",
        p99(&rtts)
    );
    assert!(
        growth < 64 * 1024,
        "ul_dump grew the server by {growth} KiB"
    );
    drop(conns);
}

/// Sixteen TCP connections to the MI port that send nothing: an MI call is still answered
/// at once, and each silent one is closed after the 2 s request deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_mi_connections_do_not_block_the_mi() {
    let _one = SERIAL.lock().await;
    let (srv, mi_port) = start();
    let silent: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(("127.0.0.1", mi_port)).unwrap())
        .collect();
    let _alice = register_one(&srv.ws_url(), "alice").await;
    let t0 = Instant::now();
    let v = mi(&srv.cfg_path, &["version"])
        .await
        .expect("version answered");
    assert!(
        v["Server"]
            .as_str()
            .is_some_and(|s| s.starts_with("sipcore")),
        "{v}"
    );
    let shown = mi(
        &srv.cfg_path,
        &["ul_show_contact", "location", "alice@example.com"],
    )
    .await
    .expect("ul_show_contact");
    assert_eq!(
        shown["Contacts"][0]["Contact"], "sip:alice@alice.invalid;transport=ws",
        "{shown}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let e = mi(
        &srv.cfg_path,
        &["ul_show_contact", "location", "nobody@example.com"],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e["code"].as_i64(), e["message"].as_str()),
        (Some(404), Some("AOR not found")),
        "{e}"
    );
    let e = mi(
        &srv.cfg_path,
        &["ul_show_contact", "nosuch", "alice@example.com"],
    )
    .await
    .unwrap_err();
    assert_eq!(e["code"].as_i64(), Some(404), "{e}");
    // Each silent connection is answered 408 and closed by the server.
    let closed = tokio::task::spawn_blocking(move || {
        silent
            .into_iter()
            .map(|mut s| {
                use std::io::Read;
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                String::from_utf8_lossy(&out).to_string()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for c in closed {
        assert!(c.starts_with("HTTP/1.1 408 "), "{c}");
    }
}
