//! Several sipcore nodes sharing their registrations through one Redis (usrloc
//! `working_mode_preset = "full-sharing-cachedb-cluster"`): a `redis-server` the test starts,
//! the node config, and the MI and UDP helpers of `redis_cluster.rs` and `redis_nodes.rs`.
use super::udp::*;
use super::*;
use std::io::Write;
use std::net::SocketAddr;

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
}

impl Redis {
    /// Start `redis-server` on 127.0.0.1:`port` (a free one, or the port of a Redis just
    /// stopped) and wait until it answers PING.
    pub fn start(port: u16) -> Redis {
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
        let mut r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.ping().is_none() {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("redis-server on port {port} exited ({st})");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// `+PONG` when it answers.
    pub fn ping(&self) -> Option<String> {
        let r = self.command(&["PING"])?;
        r.starts_with("+PONG").then_some(r)
    }

    /// One command over a fresh connection: the raw RESP answer (None if Redis does not
    /// answer within a second).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).ok()?;
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The node ids (fields) of the Redis hash of `aor` in table `location`.
    pub fn nodes_of(&self, aor: &str) -> Vec<String> {
        let key = format!("sipcore:ul:aor:location:{aor}");
        let Some(r) = self.command(&["HKEYS", &key]) else {
            return Vec::new();
        };
        // *N\r\n$len\r\nfield\r\n...
        r.split("\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .chunks(2)
            .filter(|c| c.len() == 2 && c[0].starts_with('$'))
            .map(|c| c[1].to_string())
            .collect()
    }

    /// Kill it (SIGKILL: no goodbye to the clients).
    pub fn stop(mut self) {
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

/// A node on `ip` (127.0.0.1, or a loopback alias such as 127.0.0.2): WebSocket on `ip` for
/// browsers (`{PORT}`), UDP on `ip`:`udp` for the other nodes (and plain SIP clients), MI on
/// a free port of 127.0.0.1, registrar in cluster mode on Redis at 127.0.0.1:`redis`,
/// record-routing. With `tcp`, also TCP on `ip`:`udp`, which the other nodes then use (the
/// default `node_uri` is the first tcp socket, else the first udp one).
pub fn node_config(ip: &str, udp: u16, redis: u16, tcp: bool) -> String {
    let mi = free_port();
    let tcp = if tcp {
        format!("socket = tcp:{ip}:{udp}\nloadmodule \"proto_tcp.so\"\n")
    } else {
        String::new()
    };
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = ws:{ip}:{{PORT}}\nsocket = udp:{ip}:{udp}\n{tcp}\
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

/// The MI port of a node started with [`node_config`].
pub fn mi_port_of(srv: &Server) -> u16 {
    let cfg = std::fs::read_to_string(&srv.cfg_path).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("mi_http_port = "))
        .and_then(|p| p.trim().parse().ok())
        .expect("mi_http_port in the config")
}

/// A node of [`node_config`] on `ip`, once it listens on UDP and has reached Redis; with
/// its UDP address (and TCP on the same port with `tcp`: then the link to the other nodes).
pub fn start_node(ip: &str, redis: u16, tcp: bool) -> (Server, SocketAddr) {
    let udp = loop {
        let p = free_udp_port_on(ip);
        if !tcp || std::net::TcpListener::bind((ip, p)).is_ok() {
            break p;
        }
    };
    let s = Server::start_at(ip, &node_config(ip, udp, redis, tcp));
    s.wait_log(
        &format!("listening on udp:{ip}:{udp}"),
        Duration::from_secs(10),
    );
    s.wait_log("Redis at", Duration::from_secs(10));
    (s, SocketAddr::new(ip.parse().unwrap(), udp))
}

/// A free UDP port on `ip` (bound then released).
pub fn free_udp_port_on(ip: &str) -> u16 {
    super::fresh_bound_port(|| std::net::UdpSocket::bind((ip, 0))?.local_addr())
}

/// Wait until `f` holds, or panic with `what` and the logs.
pub fn wait_until(what: &str, secs: u64, logs: &[&Server], mut f: impl FnMut() -> bool) {
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
pub fn show(srv: &Server, aor: &str) -> serde_json::Value {
    mi_answer(
        mi_port_of(srv),
        "ul_show_contact",
        serde_json::json!(["location", aor]),
    )
}

/// A REGISTER of `user` from `peer` to the node at `node` with `expires`; the answer and how
/// long it took.
pub fn register(
    peer: &Peer,
    node: SocketAddr,
    user: &str,
    expires: u32,
    cseq: u32,
) -> (String, Duration) {
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
    peer.send(node, req.as_bytes());
    let (resp, _) = peer
        .recv_within(Duration::from_secs(5))
        .expect("an answer to the REGISTER");
    (resp, t.elapsed())
}

/// A MESSAGE from `from` through the node at `node` to `user` reaches `to` (answered 200 by
/// it).
pub fn message_reaches(from: &Peer, node: SocketAddr, user: &str, to: &Peer, id: &str) -> bool {
    let req = udp_request(
        "MESSAGE",
        &format!("sip:{user}@example.com"),
        &from.addr.to_string(),
        true,
        id,
        "",
    );
    from.send(node, req.as_bytes());
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
