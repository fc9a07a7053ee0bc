//! Issue 10 item 6: host names in a Request-URI or `$du` are located by RFC 3263 (NAPTR → SRV
//! → A, RFC 7118 §7 for `ws`) through the DNS server named by `dns_server`, off the I/O
//! workers: a lookup that waits on a slow server delays nobody else, a name that does not
//! resolve is answered 478, a server that never answers 503 at `dns_timeout`, and the number of
//! requests waiting for lookups is bounded (`dns_max_pending`), and a target whose connection
//! is refused gives way to the next one (RFC 3263 §4.3). The DNS server is Debian's
//! dnsmasq on a free loopback port, never the machine's resolver.
mod common;
use common::ws::{connect_sip, next_text, Ws};
use common::*;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{
    handshake::server::{Request, Response},
    Message,
};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// A dnsmasq serving only the records given, on a free loopback port; killed on drop.
struct Dnsmasq {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Dnsmasq {
        assert!(
            std::path::Path::new(DNSMASQ).is_file(),
            "{DNSMASQ} missing: apt-get install dnsmasq (.ci/run installs it)"
        );
        // dnsmasq listens on UDP and TCP: a port free for both.
        let port = loop {
            let p = free_port();
            if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                break p;
            }
        };
        let log = temp_dir("dnsmasq").join("dnsmasq.log");
        let child = Command::new(DNSMASQ)
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file",
                "--user=root",
                "--log-queries",
                // Names under .test are answered from these records only (NXDOMAIN otherwise).
                "--local=/test/",
                // Answers may be cached (dnsmasq gives its own records TTL 0 by default).
                "--local-ttl=300",
            ])
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn dnsmasq");
        let mut d = Dnsmasq { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!(
                    "dnsmasq exited ({st}): {}",
                    std::fs::read_to_string(&d.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "dnsmasq did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        d.port = port;
        d
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CFG: &str = r#"
log_level = 4
mpath = "{MPATH}"
# One I/O worker for every client: a worker waiting for DNS would stall them all.
socket = ws:127.0.0.1:{PORT} use_workers 1
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
dns_server = "127.0.0.1:{DNS}"
{EXTRA}
route {
    if ($hdr(X-Relay) == "ruri") {
        $ru = "sip:user@naptr.test";
        forward();
        exit;
    }
    if ($hdr(X-Relay) == "du") {
        $du = $hdr(X-Dst);
        t_relay();
        exit;
    }
    sl_send_reply(200, "Here");
}
"#;

fn config(dns_port: u16, extra: &str) -> String {
    CFG.replace("{DNS}", &dns_port.to_string())
        .replace("{EXTRA}", extra)
}

/// A WebSocket UAS answering 200 to every request; what it received.
async fn start_uas() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)]
                let cb = |_: &Request, mut resp: Response| {
                    resp.headers_mut()
                        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let req = t.to_string();
                    seen.lock().unwrap().push(req.clone());
                    let mut reply = String::from("SIP/2.0 200 OK\r\n");
                    for v in headers(&req, "Via") {
                        reply.push_str(&format!("Via: {v}\r\n"));
                    }
                    for h in ["From", "Call-ID", "CSeq"] {
                        reply.push_str(&format!("{h}: {}\r\n", header(&req, h).unwrap()));
                    }
                    reply.push_str(&format!(
                        "To: {};tag=uas\r\nContent-Length: 0\r\n\r\n",
                        header(&req, "To").unwrap()
                    ));
                    if ws.send(Message::text(reply)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn request(call_id: &str, relay: &str, dst: &str) -> String {
    options_request(call_id, &format!("z9hG4bK{call_id}"), 1).replace(
        "Content-Length: 0\r\n",
        &format!("X-Relay: {relay}\r\nX-Dst: {dst}\r\nContent-Length: 0\r\n"),
    )
}

async fn ask(ws: &mut Ws, call_id: &str, relay: &str, dst: &str) -> String {
    ws.send(Message::text(request(call_id, relay, dst)))
        .await
        .unwrap();
    let reply = next_text(ws).await;
    assert_eq!(header(&reply, "Call-ID"), Some(call_id), "{reply}");
    reply
}

/// A plain OPTIONS from a fresh client, answered by the script itself within 5 s (connection
/// and handshake included).
async fn witness(srv: &Server, n: u32) {
    let id = format!("witness-{n}");
    let exchange = async {
        let mut b = connect_sip(&srv.ws_url()).await;
        b.send(Message::text(options_request(
            &id,
            &format!("z9hG4bKw{n}"),
            1,
        )))
        .await
        .unwrap();
        next_text(&mut b).await
    };
    let reply = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("another client is served while lookups are pending");
    assert!(reply.starts_with("SIP/2.0 200 Here\r\n"), "{reply}");
    assert_eq!(header(&reply, "Call-ID"), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naptr_srv_and_a_records_lead_to_a_websocket_uas() {
    let (uas_port, seen) = start_uas().await;
    // naptr.test: a UDP service first (we have no UDP socket: skipped), then ws, whose SRV
    // name is not the default one (_sip._ws.naptr.test does not exist), so only following the
    // NAPTR finds the UAS. svc.test: SRV _sip._ws (RFC 7118 §7) for a transport=ws URI.
    let dns = Dnsmasq::start(&[
        "--naptr-record=naptr.test,5,10,S,SIP+D2U,,_sip._udp.naptr.test".into(),
        "--naptr-record=naptr.test,10,10,S,SIP+D2W,,_sip._ws.alt.test".into(),
        format!("--srv-host=_sip._ws.alt.test,uas-a.alt.test,{uas_port},0,0"),
        "--host-record=uas-a.alt.test,127.0.0.1".into(),
        "--srv-host=_sip._udp.naptr.test,udp.naptr.test,5060,0,0".into(),
        "--host-record=udp.naptr.test,127.0.0.2".into(),
        format!("--srv-host=_sip._ws.svc.test,uas-b.svc.test,{uas_port},0,0"),
        "--host-record=uas-b.svc.test,127.0.0.1".into(),
    ]);
    let srv = Server::start(&config(dns.port, ""));
    let mut a = connect_sip(&srv.ws_url()).await;

    let reply = ask(&mut a, "naptr-1", "ruri", "").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    let got = seen.lock().unwrap().last().cloned().unwrap();
    assert!(
        got.starts_with("OPTIONS sip:user@naptr.test SIP/2.0\r\n"),
        "{got}"
    );

    let reply = ask(&mut a, "srv-1", "du", "sip:svc.test;transport=ws").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(seen.lock().unwrap().len(), 2);

    // Again: answered from the cache (dnsmasq logs every query it gets: no new SRV query).
    let queries = || {
        std::fs::read_to_string(&dns.log)
            .unwrap_or_default()
            .matches("query[SRV] _sip._ws.svc.test")
            .count()
    };
    assert_eq!(
        queries(),
        1,
        "{}",
        std::fs::read_to_string(&dns.log).unwrap_or_default()
    );
    let reply = ask(&mut a, "srv-2", "du", "sip:svc.test;transport=ws").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(queries(), 1);

    // A name that does not exist: 478, from the lookup and then from the negative cache.
    for i in 0..2 {
        let reply = ask(
            &mut a,
            &format!("nx-{i}"),
            "du",
            "sip:nowhere.test;transport=ws",
        )
        .await;
        assert!(
            reply.starts_with("SIP/2.0 478 Unresolvable destination\r\n"),
            "{reply}"
        );
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    witness(&srv, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_lookup_delays_no_other_client() {
    let (uas_port, seen) = start_uas().await;
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sip._ws.svc.test,uas.svc.test,{uas_port},0,0"),
        "--host-record=uas.svc.test,127.0.0.1".into(),
    ]);
    // sipcore asks this gate, which holds each query until the test lets it through.
    let gate = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let gate_port = gate.local_addr().unwrap().port();
    let srv = Server::start(&config(
        gate_port,
        "dns_timeout = 30000\ndns_retr_time = 30",
    ));
    let mut a = connect_sip(&srv.ws_url()).await;
    a.send(Message::text(request(
        "held-1",
        "du",
        "sip:svc.test;transport=ws",
    )))
    .await
    .unwrap();

    let upstream = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    upstream.connect(("127.0.0.1", dns.port)).await.unwrap();
    let mut buf = [0u8; 4096];
    // Each query the resolver sends is released only after a witness got its answer.
    for round in 0..2 {
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), gate.recv_from(&mut buf))
            .await
            .expect("sipcore queried the configured DNS server")
            .unwrap();
        witness(&srv, round).await;
        assert!(
            a.next().now_or_never().is_none(),
            "nothing for the held request while its lookup is pending"
        );
        upstream.send(&buf[..n]).await.unwrap();
        let m = tokio::time::timeout(Duration::from_secs(10), upstream.recv(&mut buf))
            .await
            .expect("dnsmasq answers")
            .unwrap();
        gate.send_to(&buf[..m], from).await.unwrap();
    }
    // SRV, then A: the request reaches the UAS and its answer comes back.
    let reply = next_text(&mut a).await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(header(&reply, "Call-ID"), Some("held-1"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// A loopback port with nothing listening (connections to it are refused).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_srv_target_fails_over_to_the_next() {
    // RFC 3263 §4.3: fo.test's first SRV target refuses connections, the second is the UAS;
    // all.test has only refusing targets.
    let (uas_port, seen) = start_uas().await;
    let (dead_a, dead_b) = (dead_port(), dead_port());
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_sip._ws.fo.test,dead.fo.test,{dead_a},0,0"),
        format!("--srv-host=_sip._ws.fo.test,uas.fo.test,{uas_port},10,0"),
        "--host-record=dead.fo.test,127.0.0.1".into(),
        "--host-record=uas.fo.test,127.0.0.1".into(),
        format!("--srv-host=_sip._ws.all.test,d1.all.test,{dead_a},0,0"),
        format!("--srv-host=_sip._ws.all.test,d2.all.test,{dead_b},10,0"),
        "--host-record=d1.all.test,127.0.0.1".into(),
        "--host-record=d2.all.test,127.0.0.1".into(),
    ]);
    let srv = Server::start(&config(dns.port, ""));
    let mut a = connect_sip(&srv.ws_url()).await;

    let reply = ask(&mut a, "fo-1", "du", "sip:fo.test;transport=ws").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    srv.wait_log(
        &format!("trying the next target 127.0.0.1:{uas_port}"),
        Duration::from_secs(5),
    );

    // Every target refuses: one 503, after both were tried.
    let reply = ask(&mut a, "fo-2", "du", "sip:all.test;transport=ws").await;
    assert!(
        reply.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{reply}"
    );
    srv.wait_log(
        &format!("trying the next target 127.0.0.1:{dead_b}"),
        Duration::from_secs(5),
    );
    // Only one answer for it: the next message on this connection is the witness's own.
    let reply = ask(&mut a, "fo-3", "du", "sip:fo.test;transport=ws").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    witness(&srv, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dns_server_gets_503_at_the_deadline() {
    // A DNS server that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let srv = Server::start(&config(silent_port, "dns_timeout = 300"));
    let mut a = connect_sip(&srv.ws_url()).await;
    let reply = ask(&mut a, "silent-1", "du", "sip:svc.test;transport=ws").await;
    assert!(
        reply.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{reply}"
    );
    srv.wait_log("do not answer", Duration::from_secs(5));
    witness(&srv, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_for_lookups_are_bounded() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let srv = Server::start(&config(
        silent_port,
        "dns_timeout = 30000\ndns_retr_time = 30\ndns_threads = 1\ndns_max_pending = 2",
    ));
    let mut a = connect_sip(&srv.ws_url()).await;
    // The one resolver thread takes the first lookup (its query reaches the server)...
    a.send(Message::text(request(
        "b-0",
        "du",
        "sip:h0.test;transport=ws",
    )))
    .await
    .unwrap();
    let mut buf = [0u8; 512];
    silent
        .recv_from(&mut buf)
        .expect("the first lookup started");
    // ... two more wait in the queue, and the fourth is refused at once.
    for i in 1..=3 {
        a.send(Message::text(request(
            &format!("b-{i}"),
            "du",
            &format!("sip:h{i}.test;transport=ws"),
        )))
        .await
        .unwrap();
    }
    let reply = next_text(&mut a).await;
    assert_eq!(header(&reply, "Call-ID"), Some("b-3"), "{reply}");
    assert!(
        reply.starts_with("SIP/2.0 503 Service Unavailable\r\n"),
        "{reply}"
    );
    srv.wait_log("lookup queue full", Duration::from_secs(5));
    // Others lose nothing: a request that needs no lookup is answered.
    witness(&srv, 0).await;
}

#[test]
fn bad_dns_parameters_are_refused_with_their_position() {
    for (line, what) in [
        ("dns_server = \"dns.example\"", "not an IP address"),
        ("dns_timeout = 0", "'dns_timeout' takes an integer 1-60000"),
        ("dns_max_pending = 0", "'dns_max_pending' takes an integer"),
    ] {
        let cfg = CFG.replace("dns_server = \"127.0.0.1:{DNS}\"", line);
        let (status, err, path) = run_to_exit(&cfg.replace("{EXTRA}", ""), "bad-dns.cfg");
        assert!(!status.success(), "{line}: {err}");
        assert!(err.contains(what), "{line}: {err}");
        assert!(
            err.contains(&format!("{}:8:", path.display())),
            "{line}: the error names its line: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let (uas_port, seen) = start_uas().await;
    // 40 SRV records do not fit in a 512-byte UDP answer (RFC 1035 §4.2.1): dnsmasq sets TC.
    let mut records: Vec<String> = (0..40)
        .map(|i| {
            format!("--srv-host=_sip._ws.big.test,t{i}.a-long-target-name-to-fill-the-answer.test,{uas_port},0,10")
        })
        .collect();
    records.push("--address=/a-long-target-name-to-fill-the-answer.test/127.0.0.1".into());
    let dns = Dnsmasq::start(&records);
    let srv = Server::start(&config(dns.port, ""));
    let mut a = connect_sip(&srv.ws_url()).await;
    let reply = ask(&mut a, "big-1", "du", "sip:big.test;transport=ws").await;
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Asked twice: over UDP (truncated), then over TCP.
    let log = std::fs::read_to_string(&dns.log).unwrap_or_default();
    assert_eq!(
        log.matches("query[SRV] _sip._ws.big.test").count(),
        2,
        "{log}"
    );
}
