//! Issue 15, parts 4 and 5: registrations shared by two sipcore nodes through one Redis
//! (usrloc `working_mode_preset = "full-sharing-cachedb-cluster"`, `cachedb_url`). Each node
//! writes its bindings to Redis with a Path to itself (its UDP address and the flow token of
//! the client's connection); the other node learns them and sends requests for that client
//! there, where `loose_route()` picks the client's WebSocket. JsSIP alice on node 1 and SIP.js
//! bob on node 2 pass every scenario of tests/js/scenario.js; a node killed loses its
//! bindings everywhere at their expiry; Redis down means a fast 503 with one log line, and
//! recovery when it is back. Each test starts its own `redis-server` and stops it.
mod common;
use common::udp::*;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let dir = temp_dir("redis");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.ping().is_none() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// `+PONG` when it answers.
    fn ping(&self) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(b"PING\r\n").ok()?;
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).ok()?;
        let r = String::from_utf8_lossy(&buf[..n]).into_owned();
        r.starts_with("+PONG").then_some(r)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node: WebSocket for browsers, UDP for the other node (and plain SIP clients), registrar
/// in cluster mode on Redis at `redis`, record-routing.
fn node_config(udp: u16, redis: u16) -> String {
    let mi = free_port();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = ws:127.0.0.1:{{PORT}}\nsocket = udp:127.0.0.1:{udp}\n\
         loadmodule \"proto_ws.so\"\nloadmodule \"proto_udp.so\"\n\
         modparam(\"proto_ws\", \"require_origin\", 0)\n\
         loadmodule \"tm.so\"\nloadmodule \"rr.so\"\n\
         loadmodule \"registrar.so\"\nloadmodule \"usrloc.so\"\n\
         modparam(\"registrar\", \"min_expires\", 1)\n\
         modparam(\"usrloc\", \"working_mode_preset\", \"full-sharing-cachedb-cluster\")\n\
         modparam(\"usrloc\", \"cachedb_url\", \"redis://127.0.0.1:{redis}/\")\n\
         route {{\n\
         \x20   if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, \"Too Many Hops\"); exit; }}\n\
         \x20   if (has_totag()) {{\n\
         \x20       if (loose_route()) {{ t_relay(); exit; }}\n\
         \x20       if (is_method(\"ACK\")) exit;\n\
         \x20       sl_send_reply(404, \"Not here\");\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"REGISTER\")) {{ save(\"location\"); exit; }}\n\
         \x20   if (is_method(\"CANCEL\")) {{ if (t_check_trans()) t_relay(); exit; }}\n\
         \x20   if (loose_route()) {{\n\
         \x20       xlog(\"L_INFO\", \"from another node: $rm\\n\");\n\
         \x20       if (is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20       t_relay();\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   if (is_method(\"OPTIONS\") && $rU == NULL) {{ sl_send_reply(200, \"OK\"); exit; }}\n\
         \x20   if (!lookup(\"location\")) {{ sl_send_reply(404, \"Not Found\"); exit; }}\n\
         \x20   if (is_method(\"INVITE|SUBSCRIBE|REFER\")) record_route();\n\
         \x20   t_relay();\n\
         }}\n"
    )
}

fn mi_port_of(srv: &Server) -> u16 {
    let cfg = std::fs::read_to_string(&srv.cfg_path).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("mi_http_port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("mi_http_port in the config")
}

fn start_node(redis: u16) -> (Server, u16) {
    let udp = free_udp_port();
    let s = Server::start(&node_config(udp, redis));
    wait_udp(&s, udp);
    s.wait_log("Redis at", Duration::from_secs(10));
    (s, udp)
}

/// Wait until `f` holds, or panic with `what` and the logs.
fn wait_until(what: &str, secs: u64, logs: &[&Server], mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            let l: Vec<String> = logs.iter().map(|s| s.log()).collect();
            panic!("{what}: not within {secs} s\n{}", l.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ul_show_contact location AOR`: the whole JSON-RPC answer (result or error).
fn show(srv: &Server, aor: &str) -> serde_json::Value {
    let params = serde_json::json!(["location", aor]);
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ul_show_contact", "params": params})
        .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", mi_port_of(srv))).expect("connect to the MI port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the MI answer");
    let (_, json) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

fn run_scenario(stacks: &str) {
    ensure_node_modules();
    let redis = Redis::start(free_port());
    let (n1, _) = start_node(redis.port);
    let (n2, _) = start_node(redis.port);
    let stdout = scenario_js(stacks, &n1.ws_url(), Some(&n2.ws_url()), "all", &|| {
        format!("--- node 1:\n{}\n--- node 2:\n{}", n1.log(), n2.log())
    });
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(steps.len() >= 10, "{stdout}");
    assert!(steps.iter().all(|l| l.contains("\"ok\":true")), "{stdout}");
    // Each node received requests for its client from the other, through the Path.
    for n in [&n1, &n2] {
        n.wait_log("from another node: MESSAGE", Duration::from_secs(5));
    }
    // The calls crossed both nodes: each record-routed them (ws and udp, RFC 5658 §3).
    let invite = steps
        .iter()
        .find(|l| l.contains("call1.invite_and_ring"))
        .expect("call1.invite_and_ring");
    for port in [n1.port, n2.port] {
        assert!(
            invite.contains(&format!("@127.0.0.1:{port};transport=ws;lr>")),
            "{invite}"
        );
    }
    // Both nodes wrote heartbeats; each lists both.
    let list = mi_call(mi_port_of(&n1), "ul_cluster_list", serde_json::json!([]));
    assert_eq!(list["Nodes"].as_array().map(Vec::len), Some(2), "{list}");
}

#[test]
fn jssip_on_node1_and_sipjs_on_node2_reach_each_other_through_redis() {
    run_scenario("jssip,sipjs");
}

#[test]
fn sipjs_on_node1_and_jssip_on_node2_reach_each_other_through_redis() {
    run_scenario("sipjs,jssip");
}

/// A REGISTER of `user` from `peer` to `node` with `expires`; the answer.
fn register(peer: &Peer, node_udp: u16, user: &str, expires: u32, cseq: u32) -> (String, Duration) {
    let to: std::net::SocketAddr = format!("127.0.0.1:{node_udp}").parse().unwrap();
    let req = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {a};rport;branch=z9hG4bKr{user}{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=r{user}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: reg-{user}-{a}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@{a}>;expires={expires}\r\n\
         Content-Length: 0\r\n\r\n",
        a = peer.addr
    );
    let t = Instant::now();
    peer.send(to, req.as_bytes());
    let (resp, _) = peer
        .recv_within(Duration::from_secs(5))
        .expect("an answer to the REGISTER");
    (resp, t.elapsed())
}

/// A MESSAGE from `from` through `node_udp` to `user` reaches `to` (answered 200 by it).
fn message_reaches(from: &Peer, node_udp: u16, user: &str, to: &Peer, id: &str) -> bool {
    let dst: std::net::SocketAddr = format!("127.0.0.1:{node_udp}").parse().unwrap();
    let req = udp_request(
        "MESSAGE",
        &format!("sip:{user}@example.com"),
        &from.addr.to_string(),
        true,
        id,
        "",
    );
    from.send(dst, req.as_bytes());
    let Some((got, src)) = to.recv_within(Duration::from_secs(3)) else {
        return false;
    };
    if !got.starts_with("MESSAGE ") || !got.contains(id) {
        return false;
    }
    to.send(src, ok_for(&got).as_bytes());
    from.recv_within(Duration::from_secs(3))
        .is_some_and(|(r, _)| r.starts_with("SIP/2.0 200"))
}

/// A node killed: its bindings vanish from the other node at their expiry; the client
/// registering on the surviving node is reached again. Then Redis stopped: REGISTER gets a
/// fast 503 and one log line; Redis back: REGISTER works again and the state change is
/// logged once.
#[test]
fn a_dead_node_expires_and_redis_down_gives_fast_503() {
    let redis = Redis::start(free_port());
    let (n1, u1) = start_node(redis.port);
    let (mut n2, u2) = start_node(redis.port);
    let bob = Peer::new();
    let alice = Peer::new();
    // Idle longer than the subscriber's read timeout (2 s) first: it must keep receiving
    // after a quiet spell (this waits for no condition; nothing is asserted on timing).
    std::thread::sleep(Duration::from_millis(2500));
    let (r, _) = register(&bob, u2, "bob", 3, 1);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    // Node 1 learns bob's binding, marked with node 2, and reaches him through node 2.
    let node2 = format!("127.0.0.1:{u2}");
    wait_until("node 1 learns bob", 10, &[&n1, &n2], || {
        show(&n1, "bob@example.com").to_string().contains(&node2)
    });
    assert!(
        message_reaches(&alice, u1, "bob", &bob, "m1"),
        "{}",
        n1.log()
    );
    // Node 2 dies: nobody refreshes bob; node 1 forgets him at his expiry.
    let _ = n2.child.kill();
    let _ = n2.child.wait();
    wait_until(
        "bob's binding of node 2 expires on node 1",
        15,
        &[&n1],
        || show(&n1, "bob@example.com")["error"]["code"] == 404,
    );
    // bob re-registers on node 1 and is reached again.
    let (r, _) = register(&bob, u1, "bob", 60, 2);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    assert!(
        message_reaches(&alice, u1, "bob", &bob, "m2"),
        "{}",
        n1.log()
    );

    // Redis stops: REGISTERs get 503 at once, and one log line says so.
    let port = redis.port;
    redis.stop();
    let mut cseq = 3;
    wait_until("REGISTER answered 503 with Redis down", 10, &[&n1], || {
        cseq += 1;
        let (r, took) = register(&alice, u1, "alice", 60, cseq);
        r.starts_with("SIP/2.0 503") && took < Duration::from_millis(500)
    });
    for _ in 0..3 {
        cseq += 1;
        let (r, took) = register(&alice, u1, "alice", 60, cseq);
        assert!(r.starts_with("SIP/2.0 503"), "{r}");
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    let down = |l: &str| l.matches("is unreachable").count();
    assert_eq!(down(&n1.log()), 1, "{}", n1.log());
    // Redis is back (empty: no persistence): REGISTER works again; node 1 wrote its
    // bindings back (bob's, registered before the outage).
    let redis = Redis::start(port);
    wait_until("REGISTER answered 200 with Redis back", 15, &[&n1], || {
        cseq += 1;
        register(&alice, u1, "alice", 60, cseq)
            .0
            .starts_with("SIP/2.0 200")
    });
    let l = n1.log();
    assert_eq!(down(&l), 1, "{l}");
    assert_eq!(l.matches("is reachable").count(), 2, "{l}");
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    wait_until("bob's binding written back to Redis", 10, &[&n1], || {
        let k = "sipcore:ul:aor:location:bob@example.com";
        let cmd = format!("*2\r\n$4\r\nHLEN\r\n${}\r\n{k}\r\n", k.len());
        s.write_all(cmd.as_bytes()).unwrap();
        let mut buf = [0u8; 32];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).starts_with(":1")
    });
}
