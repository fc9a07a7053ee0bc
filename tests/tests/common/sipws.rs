//! SIP over a raw WebSocket for the registrar and MI limit tests: REGISTERs, a witness that
//! measures its OPTIONS round trips, MI calls through the `sipcore mi` command line.
use super::digest::ask_authorized;
use super::ws::{connect_sip, next_text, Ws};
use super::*;
use futures_util::SinkExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub use super::ws::status;

/// A REGISTER for `user@example.com` with these Contact header values (one line each).
pub fn register(user: &str, call_id: &str, cseq: u32, contacts: &[String], expires: u32) -> String {
    let mut s = format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bK{call_id}x{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nExpires: {expires}\r\n"
    );
    for c in contacts {
        s.push_str(&format!("Contact: {c}\r\n"));
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// `n` contacts `<sip:cI@PREFIX.invalid;transport=ws>`, 100 per Contact header line.
pub fn contacts(prefix: &str, n: usize) -> Vec<String> {
    let all: Vec<String> = (0..n)
        .map(|i| format!("<sip:c{i}@{prefix}.invalid;transport=ws>"))
        .collect();
    all.chunks(100).map(|c| c.join(", ")).collect()
}

/// Send `text` and return the answer.
pub async fn ask(ws: &mut Ws, text: String) -> String {
    ws.send(Message::text(text)).await.unwrap();
    next_text(ws).await
}

/// Register `user` with one contact over a new connection (answering a challenge with
/// [`super::digest::PASSWORD`] if the server sends one); asserts the 200.
pub async fn register_one(url: &str, user: &str) -> Ws {
    let mut ws = connect_sip(url).await;
    let c = vec![format!("<sip:{user}@{user}.invalid;transport=ws>")];
    let r = ask_authorized(&mut ws, register(user, &format!("reg-{user}"), 1, &c, 600)).await;
    assert_eq!(status(&r), 200, "{r}");
    ws
}

/// A client that sends OPTIONS over its own connection, one after the other, and records
/// each round trip until stopped.
pub struct Witness {
    stop: Arc<AtomicBool>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<Duration>>,
}

impl Witness {
    /// Connect and start measuring OPTIONS, sent back to back.
    pub async fn start(url: &str) -> Witness {
        Witness::run(url, None).await
    }

    /// Connect, register `user`, and start measuring OPTIONS alternated with refreshes of
    /// that registration (which go through the registrar's table), one every 2 ms or so.
    pub async fn start_registered(url: &str, user: &str) -> Witness {
        Witness::run(url, Some(user.to_string())).await
    }

    async fn run(url: &str, user: Option<String>) -> Witness {
        let mut ws = connect_sip(url).await;
        let contact = user
            .as_ref()
            .map(|u| vec![format!("<sip:{u}@{u}.invalid;transport=ws>")]);
        if let (Some(u), Some(c)) = (&user, &contact) {
            let r = ask_authorized(&mut ws, register(u, "witness", 1, c, 600)).await;
            assert_eq!(status(&r), 200, "{r}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let task = tokio::spawn(async move {
            let mut rtts = Vec::new();
            let mut n = 0u32;
            while !s.load(Ordering::SeqCst) {
                n += 1;
                let req = match (&user, &contact) {
                    (Some(u), Some(c)) if n.is_multiple_of(2) => register(u, "witness", n, c, 600),
                    _ => options_request(&format!("w{n}"), &format!("z9hG4bKw{n}"), n),
                };
                let t0 = Instant::now();
                let r = ask_authorized(&mut ws, req).await;
                assert_eq!(status(&r), 200, "{r}");
                rtts.push(t0.elapsed());
                c.fetch_add(1, Ordering::SeqCst);
                // A registered witness runs through a long dump: paced like a real client,
                // so that it measures rather than loads. The plain one runs back to back.
                if user.is_some() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            rtts
        });
        Witness { stop, count, task }
    }

    /// Round trips measured so far: a load keeps going until the witness has enough samples,
    /// so that no assertion depends on how fast this machine is.
    pub fn samples(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Stop; every round trip measured, sorted.
    pub async fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::SeqCst);
        let mut v = self.task.await.unwrap();
        v.sort();
        v
    }
}

/// The 99th percentile of sorted samples.
pub fn p99(sorted: &[Duration]) -> Duration {
    assert!(!sorted.is_empty());
    let i = (sorted.len() * 99).div_ceil(100) - 1;
    sorted[i]
}

/// Run `sipcore mi -f CFG ARGS...`: the parsed result, or the error object.
pub async fn mi(
    cfg: &std::path::Path,
    args: &[&str],
) -> Result<serde_json::Value, serde_json::Value> {
    let cfg = cfg.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(sipcore_bin())
            .args(["mi", "--timeout", "60", "-f"])
            .arg(&cfg)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))))
    } else {
        Err(serde_json::from_slice(&out.stderr).unwrap_or_else(
            |_| serde_json::json!({ "stderr": String::from_utf8_lossy(&out.stderr) }),
        ))
    }
}

/// Resident memory of process `pid` in KiB, from `/proc`.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Register `users` (AoRs `PREFIXi@example.com`, one contact each) over one connection,
/// `window` REGISTERs in flight at a time; every answer must be 200 (challenges are answered
/// a window at a time, as [`super::digest::authorize`] does).
pub async fn register_bulk(
    url: &str,
    prefix: &str,
    users: std::ops::Range<usize>,
    window: usize,
) -> Ws {
    let mut ws = connect_sip(url).await;
    let all: Vec<usize> = users.collect();
    for batch in all.chunks(window) {
        for i in batch {
            let u = format!("{prefix}{i}");
            let c = vec![format!("<sip:{u}@h.invalid;transport=ws>")];
            ws.feed(Message::text(register(&u, &u, 1, &c, 600)))
                .await
                .unwrap();
        }
        ws.flush().await.unwrap();
        let mut challenged = Vec::new();
        for _ in batch {
            let r = next_text(&mut ws).await;
            if super::digest::is_challenge(&r) {
                // The Call-ID is the user's name.
                let u = super::header(&r, "Call-ID").unwrap().to_string();
                let c = vec![format!("<sip:{u}@h.invalid;transport=ws>")];
                challenged.push(super::digest::authorize(&register(&u, &u, 1, &c, 600), &r));
            } else {
                assert_eq!(status(&r), 200, "{r}");
            }
        }
        for signed in &challenged {
            ws.feed(Message::text(signed.clone())).await.unwrap();
        }
        ws.flush().await.unwrap();
        for _ in &challenged {
            let r = next_text(&mut ws).await;
            assert_eq!(status(&r), 200, "{r}");
        }
    }
    ws
}
