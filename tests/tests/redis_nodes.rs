//! Issue 15's multi-node test: three sipcore nodes on 127.0.0.2, 127.0.0.3 and 127.0.0.4
//! (loopback aliases: Linux routes 127.0.0.0/8 to `lo` without setup) sharing their
//! registrations through one `redis-server` on a free port, driven by tests/js/failover.js.
//! Each node has a tcp socket beside its udp one, so the nodes reach each other over TCP (the
//! default `node_uri`); `redis_cluster.rs` covers both links.
//!
//! 1. alice (JsSIP) registers on node 1, bob on node 2 with the server URLs [node 2, node 3];
//!    MESSAGE and a call (INVITE/180/200/ACK/BYE) pass both ways.
//! 2. Node 2 is killed. bob's stack reconnects to node 3 by itself and registers there once
//!    (the test sends no REGISTER for him): as soon as node 1 has learnt that binding from
//!    Redis, MESSAGE and calls pass both ways again, while node 2's binding of bob is still
//!    there (requests fork to it and to node 3; node 3's 200 wins; the other nodes drop it
//!    15 s after node 2's last heartbeat). The script checks bob
//!    sent exactly one REGISTER since the kill. JsSIP fails over on its own (`sockets` with
//!    weights, `connection_recovery_min/max_interval` 1-2 s). SIP.js 0.21.2 takes a single
//!    `server` and never reconnects by itself: failover.js does what a SIP.js application has
//!    to do, through SIP.js's `transportConstructor` option (the stock WebSocket transport
//!    whose `server` is the current URL of a list, moved on when the connection is lost), the
//!    UserAgent delegate's `onDisconnect` calling `userAgent.reconnect()` and `onConnect`
//!    registering again, as SIP.js's own SessionManager does.
//! 3. Node 2 comes back (a fresh process on 127.0.0.3 that learns everything from Redis).
//!    While a UDP peer sends a MESSAGE through node 1 to bob every 50 ms, redis-server is
//!    killed and started again, empty, on the same port: every node stays alive, not one
//!    message fails (lookups are in memory, also while Redis is down), and the nodes write
//!    their bindings (bob's on node 3, alice's on node 1) back to Redis.
//! 4. Redis stopped: a REGISTER to each node is answered 503 within 500 ms, while alice's and
//!    bob's WebSockets stay connected and MESSAGE still passes both ways (lookup from memory).
mod common;
use common::redis::*;
use common::udp::*;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const IPS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// tests/js/failover.js running: its stdout lines as they come, commands to its stdin.
struct Script {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<String>,
    lines: Vec<String>,
    stderr: std::path::PathBuf,
}

impl Script {
    fn start(bob_stack: &str, alice_url: &str, bob_urls: &[String]) -> Script {
        let dir = temp_dir("failover");
        let stderr = dir.join("node.stderr");
        let mut child = Command::new("node")
            .arg(js_dir().join("failover.js"))
            .args(["--alice-stack", "jssip", "--bob-stack", bob_stack])
            .args(["--alice-url", alice_url, "--bob-urls", &bob_urls.join(",")])
            .args(["--domain", "example.com", "--timeout", "240"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("node not found: install Node.js (.ci/run does)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Script {
            child,
            stdin,
            rx,
            lines: Vec::new(),
            stderr,
        }
    }

    fn output(&self) -> String {
        format!(
            "{}\n--- node stderr:\n{}",
            self.lines.join("\n"),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }

    /// Wait for the line `pred` accepts; panics on a failed step, the script's end or the
    /// deadline, with its output and `logs()`.
    fn expect(
        &mut self,
        what: &str,
        secs: u64,
        logs: &dyn Fn() -> String,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.rx.recv_timeout(left) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "failover.js: no {what} within {secs} s:\n{}\n--- servers:\n{}",
                        self.output(),
                        logs()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let st = self.child.wait();
                    panic!(
                        "failover.js ended ({st:?}) before {what}:\n{}\n--- servers:\n{}",
                        self.output(),
                        logs()
                    )
                }
            };
            self.lines.push(line.clone());
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["ok"] == false {
                panic!(
                    "failover.js failed before {what}:\n{}\n--- servers:\n{}",
                    self.output(),
                    logs()
                );
            }
            if pred(&v) {
                return v;
            }
        }
    }

    /// Wait until the script asks for `cmd` (all steps before it passed).
    fn wait_for(&mut self, cmd: &str, secs: u64, logs: &dyn Fn() -> String) {
        self.expect(&format!("a wait for {cmd}"), secs, logs, |v| {
            v["step"] == "wait" && v["for"] == cmd
        });
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}").expect("write to failover.js");
        self.stdin.flush().unwrap();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MESSAGE from `peer` through the node at `node` to bob; its final status (0: none
/// within 3 s). Responses to earlier requests are skipped by Call-ID.
fn message_to_bob(peer: &Peer, node: SocketAddr, id: &str) -> u16 {
    let body = format!("stream {id}");
    let req = format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {a};rport;branch=z9hG4bK{id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carol@example.com>;tag=c{id}\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len(),
        a = peer.addr
    );
    peer.send(node, req.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some((r, _)) = peer.recv_within(left) else {
            break;
        };
        let status = r
            .strip_prefix("SIP/2.0 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok());
        if header(&r, "Call-ID") == Some(id) && status.is_some_and(|s| s >= 200) {
            return status.unwrap_or(0);
        }
    }
    0
}

/// REGISTERs to `node` are answered 503 within 500 ms (after the node noticed Redis down).
fn fast_503(peer: &Peer, node: SocketAddr, srv: &Server, cseq: &mut u32) {
    wait_until("REGISTER answered 503 with Redis down", 10, &[srv], || {
        *cseq += 1;
        let (r, took) = register(peer, node, "carol", 60, *cseq);
        r.starts_with("SIP/2.0 503") && took < Duration::from_millis(500)
    });
    for _ in 0..3 {
        *cseq += 1;
        let (r, took) = register(peer, node, "carol", 60, *cseq);
        assert!(r.starts_with("SIP/2.0 503"), "{node}: {r}");
        assert!(took < Duration::from_millis(500), "{node}: {took:?}");
    }
}

fn run(bob_stack: &str) {
    ensure_node_modules();
    let mut redis = Redis::start(free_port());
    let (mut n1, u1) = start_node(IPS[0], redis.port, true);
    let (mut n2, u2) = start_node(IPS[1], redis.port, true);
    let (mut n3, u3) = start_node(IPS[2], redis.port, true);
    let bob_urls = [n2.ws_url(), n3.ws_url()];
    let mut js = Script::start(bob_stack, &n1.ws_url(), &bob_urls);
    let logs_of = |nodes: &[&Server]| {
        nodes
            .iter()
            .map(|n| format!("--- node {}:\n{}", n.addr, n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // 1. alice on node 1 and bob on node 2 reach each other both ways.
    js.wait_for("killed", 120, &|| logs_of(&[&n1, &n2, &n3]));
    assert!(
        show(&n1, "bob@example.com")
            .to_string()
            .contains(&u2.to_string()),
        "node 1 reached bob through node 2"
    );
    // 2. Node 2 dies; bob's stack moves to node 3 and registers there by itself.
    let _ = n2.child.kill();
    let _ = n2.child.wait();
    js.send("killed");
    let failover = js.expect("bob.failover", 60, &|| logs_of(&[&n1, &n3]), |v| {
        v["step"] == "bob.failover"
    });
    assert_eq!(failover["opened"][0], bob_urls[1].as_str(), "{failover}");
    wait_until(
        "node 1 learns bob's binding of node 3",
        10,
        &[&n1, &n3],
        || {
            show(&n1, "bob@example.com")
                .to_string()
                .contains(&u3.to_string())
        },
    );
    // Node 2's binding of bob is still there (it expires in 600 s, and node 1 drops what it
    // learnt from node 2 only after 15 s without its heartbeat): bob is reached through his
    // one new registration, not because the old one went away.
    assert!(
        show(&n1, "bob@example.com")
            .to_string()
            .contains(&u2.to_string())
            || n1.log().contains("wrote no heartbeat"),
        "{}",
        show(&n1, "bob@example.com")
    );
    js.send("go");
    js.wait_for("outage", 120, &|| logs_of(&[&n1, &n3]));

    // 3. Node 2 is back (an empty new process); Redis restarted under a stream of MESSAGEs.
    let (mut n2, u2) = start_node(IPS[1], redis.port, true);
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<(Instant, u16)>>> = Arc::default();
    let streamer = {
        let (stop, results) = (stop.clone(), results.clone());
        std::thread::spawn(move || {
            let peer = Peer::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let t = Instant::now();
                let st = message_to_bob(&peer, u1, &format!("stream-{n}-{}", peer.addr.port()));
                results.lock().unwrap().push((t, st));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let delivered_since = |t: Instant| {
        results
            .lock()
            .unwrap()
            .iter()
            .any(|&(s, st)| s >= t && st == 200)
    };
    let t0 = Instant::now();
    wait_until("the stream reaches bob", 20, &[&n1, &n3], || {
        delivered_since(t0)
    });
    let port = redis.port;
    redis.stop();
    let down = Instant::now();
    for n in [&n1, &n2, &n3] {
        n.wait_log("is unreachable", Duration::from_secs(10));
    }
    wait_until(
        "the stream goes on with Redis down",
        20,
        &[&n1, &n3],
        || delivered_since(down),
    );
    let up = Instant::now();
    redis = Redis::start(port);
    for n in [&n1, &n2, &n3] {
        wait_until("the node sees Redis back", 15, &[n], || {
            n.log().matches("is reachable").count() >= 2
        });
    }
    wait_until(
        "node 3 writes bob's binding back to Redis",
        15,
        &[&n3],
        || redis.nodes_of("bob@example.com") == [u3.to_string()],
    );
    let back = Instant::now();
    wait_until(
        "the stream reaches bob with Redis back",
        20,
        &[&n1, &n3],
        || delivered_since(back),
    );
    stop.store(true, Ordering::Relaxed);
    streamer.join().unwrap();
    // Lookups come from memory: not one message of the stream was lost to the restart.
    let results = results.lock().unwrap();
    let mut by_status = std::collections::BTreeMap::new();
    for &(_, st) in results.iter() {
        *by_status.entry(st).or_insert(0) += 1;
    }
    eprintln!("stream through node 1 to bob, final statuses (0: none in 3 s): {by_status:?}");
    assert!(
        results.iter().all(|&(_, st)| st == 200),
        "{by_status:?}\n{}",
        logs_of(&[&n1, &n3])
    );
    assert!(results.iter().any(|&(t, _)| t > down && t < up));
    drop(results);
    for (i, n) in [&mut n1, &mut n2, &mut n3].into_iter().enumerate() {
        assert!(n.alive(), "node {} died:\n{}", i + 1, n.log());
    }
    wait_until(
        "node 1 writes alice's binding back to Redis",
        10,
        &[&n1],
        || redis.nodes_of("alice@example.com") == [u1.to_string()],
    );
    // The new node 2 learnt both from Redis.
    wait_until("node 2 learns bob and alice", 10, &[&n2], || {
        show(&n2, "bob@example.com")
            .to_string()
            .contains(&u3.to_string())
            && show(&n2, "alice@example.com")
                .to_string()
                .contains(&u1.to_string())
    });

    // 4. Redis stopped: fast 503 to REGISTER on every node, WebSocket traffic goes on.
    redis.stop();
    let peer = Peer::new();
    let mut cseq = 0;
    for (n, u) in [(&n1, u1), (&n2, u2), (&n3, u3)] {
        fast_503(&peer, u, n, &mut cseq);
    }
    js.send("outage");
    js.expect("the result", 60, &|| logs_of(&[&n1, &n2, &n3]), |v| {
        v["result"] == "pass"
    });
    let st = js.child.wait().unwrap();
    assert!(st.success(), "failover.js: {st}\n{}", js.output());
    // Shown with --nocapture (and on a failure below): what the stacks did.
    eprintln!("{}", js.output());
    for (i, n) in [&mut n1, &mut n2, &mut n3].into_iter().enumerate() {
        assert!(n.alive(), "node {} died:\n{}", i + 1, n.log());
    }
    // Still 503; each node said once per outage that Redis was gone (the restart, the stop).
    for (n, u) in [(&n1, u1), (&n2, u2), (&n3, u3)] {
        cseq += 1;
        let (r, took) = register(&peer, u, "carol", 60, cseq);
        assert!(r.starts_with("SIP/2.0 503"), "{u}: {r}");
        assert!(took < Duration::from_millis(500), "{u}: {took:?}");
        let l = n.log();
        assert_eq!(l.matches("is unreachable").count(), 2, "{l}");
    }
}

#[test]
fn sipjs_bob_fails_over_to_node3_and_redis_outages_keep_websockets_going() {
    run("sipjs");
}

#[test]
fn jssip_bob_fails_over_to_node3_and_redis_outages_keep_websockets_going() {
    run("jssip");
}
