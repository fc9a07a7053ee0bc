//! Issue 14 (part 1): every datagram is an attacker's. RFC 4475 torture messages over UDP get
//! 400/505 or nothing; STUN, oversized, empty and CRLF datagrams are dropped and counted in
//! the `udp` statistics (one log line per reason, not one per datagram); and the server keeps
//! answering everyone else. The bundled default config, with a `socket=udp:` line.
mod common;
use common::udp::*;
use common::*;
use serde_json::json;
use std::time::Duration;

/// RFC 4475 §3.1.2/§3.3 messages (sip/src/testdata) and the answer each must get: the
/// host answers a malformed request whose transaction headers it can find (400, or 505 for
/// the version) and drops the rest (`None`); `bigcode` is a response, not for us.
const TORTURE: [(&str, Option<u16>); 14] = [
    ("badinv01", Some(400)),
    ("clerr", Some(400)),
    ("ncl", Some(400)),
    ("scalar02", Some(400)),
    ("quotbal", Some(400)),
    ("ltgtruri", Some(400)),
    ("lwsstart", Some(400)),
    ("escruri", Some(400)),
    ("baddate", Some(400)),
    ("badvers", Some(505)),
    ("mismatch01", Some(400)),
    ("insuf", Some(400)),
    ("mcl01", Some(400)),
    ("bigcode", None),
];

/// Torture messages that parse but fail `sanity_check()`, whose 400 goes to the sent-by port
/// of their Via (no `rport`: RFC 3261 §18.2.2), at our source IP: the port is pointed at the
/// test's socket.
const SENT_BY: [(&str, &str); 1] = [("quotbal", "192.0.2.59:5050")];

/// The torture message `name`, its Via's sent-by port (if in [`SENT_BY`]) made `port`.
fn torture(name: &str, port: u16) -> Vec<u8> {
    let p = repo().join("sip/src/testdata").join(format!("{name}.dat"));
    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let Some((_, sent_by)) = SENT_BY.iter().find(|(n, _)| *n == name) else {
        return data;
    };
    let text = String::from_utf8(data).unwrap();
    let host = sent_by.rsplit_once(':').unwrap().0;
    assert!(text.contains(sent_by), "{name} changed");
    text.replace(sent_by, &format!("{host}:{port}"))
        .into_bytes()
}

/// An OPTIONS to the server itself, which the default config answers 200.
fn options(call_id: &str, peer: &Peer) -> Vec<u8> {
    udp_request(
        "OPTIONS",
        "sip:127.0.0.1",
        &peer.addr.to_string(),
        true,
        call_id,
        "",
    )
    .into_bytes()
}

#[test]
fn junk_is_dropped_and_counted_torture_gets_400_and_the_server_keeps_serving() {
    let udp = free_udp_port();
    let (cfg, mi) = default_config_udp(udp, "modparam(\"proto_udp\", \"udp_max_msg_size\", 4096)");
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let us: std::net::SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();

    // The socket, as udp_list shows it (no use_workers, no global workers: one per CPU;
    // udp_spread source: a socket per thread), before anything was received.
    let list = mi_call(mi, "udp_list", json!([]));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(
        list,
        json!({"Sockets": [{"id": 1, "address": format!("udp:{us}"), "advertised": "",
                            "tag": "", "workers": cpus, "reuse_port": false,
                            "spread": "source", "received": vec![0; cpus]}]})
    );

    // Junk from one peer: a STUN Binding Request (RFC 5389 §6) 50 times, an empty datagram,
    // a CRLF keep-alive, and a datagram over udp_max_msg_size that looks like SIP.
    let junk = Peer::new();
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(b"0123456789ab");
    for _ in 0..50 {
        junk.send(us, &stun);
    }
    junk.send(us, b"");
    junk.send(us, b"\r\n\r\n");
    let mut big = options("big", &junk);
    big.resize(5000, b'x');
    junk.send(us, &big);
    // None of it is answered: the first datagram back is the 200 to a later OPTIONS (one
    // source, one receiving thread with the default udp_spread source: handled in order).
    junk.send(us, &options("after-junk", &junk));
    let r = junk.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("after-junk"));
    // (The counters are bumped on sipcore's thread after the datagram went out: each is
    // waited for, not read once.)
    let s = wait_udp_stats(mi, "the junk", |s| {
        s.get("dropped_not_sip") == Some(&50)
            && s.get("received").is_some_and(|n| *n >= 54)
            && s.get("delivered").is_some_and(|n| *n >= 1)
            && s.get("sent").is_some_and(|n| *n >= 1)
    });
    for (name, want) in [
        ("dropped_empty", 1),
        ("keepalives", 1),
        ("dropped_too_large", 1),
    ] {
        assert_eq!(s.get(name), Some(&want), "{name}: {s:?}");
    }
    assert!(
        s["received"] >= 54 && s["delivered"] >= 1 && s["sent"] >= 1,
        "{s:?}"
    );

    // RFC 4475: each torture message, then an OPTIONS from the same socket; whatever came
    // back before the OPTIONS' 200 is the torture message's answer.
    let a = Peer::new();
    let mut answers = Vec::new();
    for (i, (name, _)) in TORTURE.iter().enumerate() {
        a.send(us, &torture(name, a.addr.port()));
        let probe = format!("probe-{i}");
        a.send(us, &options(&probe, &a));
        let first = a.recv_sip();
        let got = if header(&first, "Call-ID") == Some(probe.as_str()) {
            None
        } else {
            let code = first.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
            let then = a.recv_sip();
            assert_eq!(
                header(&then, "Call-ID"),
                Some(probe.as_str()),
                "{name}: {then}"
            );
            code
        };
        answers.push((*name, got));
    }
    assert_eq!(answers, TORTURE, "answers to the torture messages");

    // Another client is served throughout.
    let b = Peer::new();
    b.send(us, &options("other-client", &b));
    assert_eq!(header(&b.recv_sip(), "Call-ID"), Some("other-client"));

    // One log line per drop reason, not one per datagram. The torture messages' warnings
    // were logged after every STUN datagram was handled (the counters said so), and the log
    // is written in order: once one is there, any line about the STUN would be too.
    let log = srv.wait_log("malformed SIP request answered", Duration::from_secs(5));
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines("dropping datagrams that are not SIP"), 1, "{log}");
    assert_eq!(
        lines("dropping datagrams over udp_max_msg_size"),
        1,
        "{log}"
    );
}

/// A UDP flood does not starve WebSocket clients (issue 14): two sockets send OPTIONS over
/// UDP as fast as they can (each costs the server a parse, the script and a reply) while a
/// WebSocket client makes OPTIONS round trips one after the other until the server has
/// handled 2,000 more flood datagrams meanwhile; each round trip is answered (within the deadline
/// `next_text` allows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_does_not_starve_websocket_clients() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let udp = free_udp_port();
    let (cfg, mi) = default_config_udp(udp, "");
    let srv = Server::start(&cfg);
    wait_udp(&srv, udp);
    let us: std::net::SocketAddr = format!("127.0.0.1:{udp}").parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let p = Peer::new();
                p.sock.set_nonblocking(true).unwrap();
                let mut n = 0u64;
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let m = options(&format!("flood-{t}-{n}"), &p);
                    let _ = p.sock.send_to(&m, us);
                    // Drain the replies so the flooder's own buffer never stops them.
                    while p.sock.recv_from(&mut buf).is_ok() {}
                    n += 1;
                }
                n
            })
        })
        .collect();
    let before = wait_udp_stats(mi, "the flood", |s| {
        s.get("received").is_some_and(|&r| r > 500)
    });
    // Round trips until the flood has had 2,000 more datagrams handled while they ran (at
    // least 200 of them, at most 50,000): each answered within next_text's deadline.
    let mut ws = common::ws::connect_sip(&srv.ws_url()).await;
    let mut done = 0u32;
    let after = loop {
        let i = done;
        common::ws::send_text(
            &mut ws,
            options_request(&format!("ws-{i}"), &format!("z9hG4bKws{i}"), 1),
        )
        .await;
        let r = common::ws::next_text(&mut ws).await;
        assert!(r.starts_with("SIP/2.0 200 "), "{r}");
        assert_eq!(header(&r, "Call-ID"), Some(format!("ws-{i}").as_str()));
        done += 1;
        if done.is_multiple_of(50) && done >= 200 {
            let now = udp_stats(mi);
            if now["received"] >= before["received"] + 2000 {
                break now;
            }
            assert!(done < 50_000, "the flood stalled: {before:?} -> {now:?}");
        }
    };
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    assert!(
        after["received"] >= before["received"] + 2000 && sent > 2000,
        "{before:?} -> {after:?}, {sent} sent"
    );
}
