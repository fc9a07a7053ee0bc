//! Issue 15, part 4: the usrloc cluster on a Redis watched by Redis Sentinel
//! (`cachedb_url = "redis+sentinel://:PASSWORD@SENTINEL,SENTINEL/MASTER/DB"`). The test starts
//! Debian's `redis-server` three times: a primary and a replica, both with a password, and a
//! sentinel (`redis-server FILE --sentinel`) watching them; the URL names a dead sentinel
//! first. A node registers through the primary the sentinel names; the primary is killed, the
//! sentinel promotes the replica, and the node follows: REGISTER works again, every binding of
//! the node is written to the new primary, and the password never reaches the log.
mod common;
use common::redis::{register, wait_until};
use common::udp::*;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "s3cret-redis";

/// A `redis-server` (or sentinel) on a free loopback port; killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)"),
    )
}

/// `redis-cli` on `port` (with the password when `auth`): its output, trimmed ("" when it
/// could not connect).
fn cli(port: u16, auth: bool, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if auth {
        c.args(["-a", PASSWORD, "--no-auth-warning"]);
    }
    let out = c
        .args(args)
        .output()
        .expect("redis-cli (Debian package redis-tools)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start_data(port: u16, replica_of: Option<u16>) -> Proc {
    let dir = temp_dir("redis-data");
    let port_s = port.to_string();
    let mut args = vec![
        "--port",
        &port_s,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--requirepass",
        PASSWORD,
        "--masterauth",
        PASSWORD,
        "--dir",
    ];
    let dir_s = dir.to_string_lossy().into_owned();
    args.push(&dir_s);
    let primary = replica_of.map(|p| p.to_string());
    if let Some(p) = &primary {
        args.extend(["--replicaof", "127.0.0.1", p]);
    }
    let proc = spawn(&args);
    wait_until("redis-server answers", 10, &[], || {
        cli(port, true, &["PING"]) == "PONG"
    });
    proc
}

fn start_sentinel(port: u16, primary: u16) -> Proc {
    let dir = temp_dir("redis-sentinel");
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor mymaster 127.0.0.1 {primary} 1\n\
             sentinel auth-pass mymaster {PASSWORD}\n\
             sentinel down-after-milliseconds mymaster 1000\n\
             sentinel failover-timeout mymaster 5000\n",
            dir.display()
        ),
    )
    .unwrap();
    let proc = spawn(&[conf.to_str().unwrap(), "--sentinel"]);
    wait_until("the sentinel answers", 10, &[], || {
        cli(port, false, &["PING"]) == "PONG"
    });
    proc
}

fn key(user: &str) -> String {
    format!("sipcore:ul:aor:location:{user}@example.com")
}

#[test]
fn the_node_follows_a_sentinel_failover_to_the_promoted_replica() {
    let (pa, pb, ps, dead) = (free_port(), free_port(), free_port(), free_port());
    let mut primary = Some(start_data(pa, None));
    let _replica = start_data(pb, Some(pa));
    let _sentinel = start_sentinel(ps, pa);
    // The sentinel learns the replica from the primary's INFO (every 10 s).
    wait_until("the sentinel knows the replica", 30, &[], || {
        cli(ps, false, &["SENTINEL", "replicas", "mymaster"]).contains(&pb.to_string())
    });

    let udp = free_udp_port();
    let cfg = format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\n\
         socket = ws:127.0.0.1:{{PORT}}\nsocket = udp:127.0.0.1:{udp}\n\
         loadmodule \"proto_ws.so\"\nloadmodule \"proto_udp.so\"\n\
         loadmodule \"registrar.so\"\nloadmodule \"usrloc.so\"\n\
         modparam(\"usrloc\", \"working_mode_preset\", \"full-sharing-cachedb-cluster\")\n\
         modparam(\"usrloc\", \"cachedb_url\", \"redis+sentinel://:{PASSWORD}@127.0.0.1:{dead},127.0.0.1:{ps}/mymaster/0\")\n\
         route {{\n    if (is_method(\"REGISTER\")) {{ save(\"location\"); exit; }}\n    \
         sl_send_reply(404, \"Not Found\");\n}}\n"
    );
    let node = Server::start(&cfg);
    wait_udp(&node, udp);
    let at: std::net::SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let ok = |peer: &Peer, user: &str, cseq: u32| {
        register(peer, at, user, 300, cseq)
            .0
            .starts_with("SIP/2.0 200")
    };
    node.wait_log(
        &format!("Redis at redis+sentinel://:***@127.0.0.1:{dead}"),
        Duration::from_secs(15),
    );

    let bob = Peer::new();
    assert!(ok(&bob, "bob", 1), "{}", node.log());
    wait_until(
        "bob's binding on the primary and the replica",
        10,
        &[&node],
        || {
            cli(pa, true, &["HLEN", &key("bob")]) == "1"
                && cli(pb, true, &["HLEN", &key("bob")]) == "1"
        },
    );

    // The primary dies; the sentinel promotes the replica; the node follows.
    drop(primary.take());
    wait_until("the sentinel promotes the replica", 30, &[&node], || {
        cli(
            ps,
            false,
            &["SENTINEL", "get-master-addr-by-name", "mymaster"],
        )
        .contains(&pb.to_string())
    });
    let alice = Peer::new();
    let mut cseq = 0;
    wait_until(
        "REGISTER answered 200 through the new primary",
        20,
        &[&node],
        || {
            cseq += 1;
            ok(&alice, "alice", cseq)
        },
    );
    wait_until("alice's binding on the new primary", 10, &[&node], || {
        cli(pb, true, &["HLEN", &key("alice")]) == "1"
    });
    assert_eq!(cli(pb, true, &["HLEN", &key("bob")]), "1");
    let l = node.log();
    assert_eq!(l.matches("is unreachable").count(), 1, "{l}");
    assert_eq!(l.matches("is reachable").count(), 2, "{l}");
    assert!(!l.contains(PASSWORD), "{l}");
}

#[test]
fn a_sentinel_url_that_names_no_master_stops_the_start() {
    let cfg = "mpath = \"{MPATH}\"\nsocket = ws:127.0.0.1:{PORT}\nsocket = udp:127.0.0.1:5999\n\
               loadmodule \"proto_ws.so\"\nloadmodule \"proto_udp.so\"\n\
               loadmodule \"usrloc.so\"\n\
               modparam(\"usrloc\", \"working_mode_preset\", \"full-sharing-cachedb-cluster\")\n\
               modparam(\"usrloc\", \"cachedb_url\", \"redis+sentinel://127.0.0.1:26379\")\n\
               route { exit; }\n";
    let (status, out, _) = run_to_exit(cfg, "sentinel.cfg");
    assert!(!status.success(), "{out}");
    assert!(out.contains("names no master"), "{out}");
    assert!(out.contains("sentinel.cfg:8:35:"), "{out}");
}
