//! Issue 15, parts 4 and 5: registrations shared by two sipcore nodes through one Redis
//! (usrloc `working_mode_preset = "full-sharing-cachedb-cluster"`, `cachedb_url`). Each node
//! writes its bindings to Redis with a Path to itself (its UDP address and the flow token of
//! the client's connection); the other node learns them and sends requests for that client
//! there, where `loose_route()` picks the client's WebSocket. JsSIP alice on node 1 and SIP.js
//! bob on node 2 pass every scenario of tests/js/scenario.js; a node killed loses its
//! bindings everywhere at their expiry; Redis down means a fast 503 with one log line, and
//! recovery when it is back. Each test starts its own `redis-server` and stops it.
mod common;
use common::redis::*;
use common::udp::*;
use common::*;
use std::time::Duration;

/// `tcp`: the nodes also have a tcp socket, and so reach each other over TCP (else UDP).
fn run_scenario(stacks: &str, tcp: bool) {
    ensure_node_modules();
    let redis = Redis::start(free_port());
    let (n1, _) = start_node("127.0.0.1", redis.port, tcp);
    let (n2, _) = start_node("127.0.0.1", redis.port, tcp);
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
    // Between the nodes the call went over the link chosen (double record-route, RFC 5658).
    let link = if tcp {
        "transport=tcp"
    } else {
        "transport=udp"
    };
    assert!(invite.contains(link), "{invite}");
    // Both nodes wrote heartbeats; each lists both.
    let list = mi_call(mi_port_of(&n1), "ul_cluster_list", serde_json::json!([]));
    assert_eq!(list["Nodes"].as_array().map(Vec::len), Some(2), "{list}");
}

/// The nodes linked over UDP (they have no tcp socket).
#[test]
fn jssip_on_node1_and_sipjs_on_node2_reach_each_other_through_redis() {
    run_scenario("jssip,sipjs", false);
}

/// The nodes linked over TCP (the default `node_uri` when a node has a tcp socket).
#[test]
fn sipjs_on_node1_and_jssip_on_node2_reach_each_other_through_redis() {
    run_scenario("sipjs,jssip", true);
}

/// A node killed: its bindings vanish from the other node at their expiry; the client
/// registering on the surviving node is reached again. Then Redis stopped: REGISTER gets a
/// fast 503 and one log line; Redis back: REGISTER works again and the state change is
/// logged once.
#[test]
fn a_dead_node_expires_and_redis_down_gives_fast_503() {
    let redis = Redis::start(free_port());
    let (n1, u1) = start_node("127.0.0.1", redis.port, false);
    let (mut n2, u2) = start_node("127.0.0.1", redis.port, false);
    let bob = Peer::new();
    let alice = Peer::new();
    // Idle longer than the subscriber's read timeout (2 s) first: it must keep receiving
    // after a quiet spell (this waits for no condition; nothing is asserted on timing).
    std::thread::sleep(Duration::from_millis(2500));
    let (r, _) = register(&bob, u2, "bob", 3, 1);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    // Node 1 learns bob's binding, marked with node 2, and reaches him through node 2.
    let node2 = u2.to_string();
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
    wait_until("bob's binding written back to Redis", 10, &[&n1], || {
        redis.nodes_of("bob@example.com") == [u1.to_string()]
    });
}

/// Redis and two nodes; bob registered (for 600 s) on node 2 and learnt by node 1; node 2
/// killed. Redis, node 1 and node 2's UDP address.
fn bob_learnt_from_a_killed_node_2() -> (Redis, Server, std::net::SocketAddr) {
    let redis = Redis::start(free_port());
    let (n1, _) = start_node("127.0.0.1", redis.port, false);
    let (mut n2, u2) = start_node("127.0.0.1", redis.port, false);
    let bob = Peer::new();
    let (r, _) = register(&bob, u2, "bob", 600, 1);
    assert!(r.starts_with("SIP/2.0 200"), "{r}");
    wait_until("node 1 learns bob", 10, &[&n1, &n2], || {
        show(&n1, "bob@example.com")
            .to_string()
            .contains(&u2.to_string())
    });
    let _ = n2.child.kill();
    let _ = n2.child.wait();
    (redis, n1, u2)
}

/// A node restarted at the same address: what its earlier run left in Redis names flows that
/// died with it; the new run withdraws it at once, on every node, instead of letting the
/// other nodes send requests there until the bindings expire.
#[test]
fn a_restarted_node_withdraws_what_its_earlier_run_left() {
    let (redis, n1, u2) = bob_learnt_from_a_killed_node_2();
    assert_eq!(redis.nodes_of("bob@example.com"), vec![u2.to_string()]);
    let n2 = Server::start_at(
        "127.0.0.1",
        &node_config("127.0.0.1", u2.port(), redis.port, false),
    );
    n2.wait_log("by an earlier run of node", Duration::from_secs(10));
    wait_until("node 1 drops bob's stale binding", 10, &[&n1, &n2], || {
        show(&n1, "bob@example.com")["error"]["code"] == 404
    });
    assert!(redis.nodes_of("bob@example.com").is_empty());
}

/// A node that dies and does not come back: its heartbeat stops, and within about
/// DEAD_AFTER (15 s) plus one heartbeat the other node drops the bindings it learnt from it,
/// long before they expire (600 s here); one log line says so.
#[test]
fn a_node_whose_heartbeat_stops_loses_its_bindings_on_the_others() {
    let (_redis, n1, u2) = bob_learnt_from_a_killed_node_2();
    wait_until(
        "node 1 drops what it learnt from node 2",
        40,
        &[&n1],
        || show(&n1, "bob@example.com")["error"]["code"] == 404,
    );
    let l = n1.wait_log("wrote no heartbeat", Duration::from_secs(5));
    assert_eq!(l.matches("wrote no heartbeat").count(), 1, "{l}");
    assert!(l.contains(&format!("node {u2} wrote no heartbeat")), "{l}");
}
