//! SIP over secure WebSocket (`proto_wss.so`, RFC 7118 §5 over TLS) end to end: the real
//! `sipcore` on a configuration derived from the bundled `conf/sipcore-wss.cfg` (a ws and a
//! wss socket, tls_mgm's default server domain), with a test CA and certificates made by
//! `conf/tls/make-cert.sh` in a temp dir for each test. Clients trust the test CA (Node through
//! `NODE_EXTRA_CA_CERTS`, the Rust client through OpenSSL's `set_ca_file`, `openssl s_client`
//! through `-CAfile`); verification is never turned off.
//!
//! * JsSIP and SIP.js (`tests/js/scenario.js --scenario all`) over wss, and mixed with one
//!   user on wss and the other on ws.
//! * MI: `wss_list` (TLS version and cipher of each connection), `wss_close`, `tls_list`.
//! * `tls_reload`: established connections keep working, new handshakes get the new
//!   certificate; a broken key file is an MI error naming it and changes nothing.
//! * Startup without a server certificate fails with a message saying what is missing.
//! * HEP tracing of wss connections (`Protocol` `WSS`) and of their SIP messages.
//! * Outbound wss (`$du = "sip:localhost:PORT;transport=wss"; t_relay()`) to a Node TLS
//!   WebSocket server (`tests/js/tls-ws-server.js`): a trusted certificate works, an untrusted
//!   CA or a certificate for another name is refused, answered 503 and logged.
//!
//! Needs Node.js, `npm` (packages from `tests/js/package-lock.json`, installed on first use)
//! and the `openssl` CLI.
mod common;
#[path = "common/hep.rs"]
mod hep;

use common::digest::{add_users, authorize, is_challenge, PASSWORD};
use common::{
    ensure_node_modules, free_port, header, js_dir, make_cert_in, options_request, repo,
    run_to_exit, temp_dir, Server,
};
use hep::{find_sip, mi_run, summary, wait_port, Collector, Hep3, IP_PROTO_WS, PT_NET, PT_SIP};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVersion};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message, WebSocket};

/// Deadline of one expected event (a reply, a log line, a capture).
const T: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------
// Certificates.

/// What `conf/tls/make-cert.sh DIR NAMES...` wrote.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A test CA and a server certificate for `names` (the first is the CN; none = the script's
/// default localhost, 127.0.0.1, ::1) in a fresh temp dir.
fn make_cert(tag: &str, names: &[&str]) -> Pki {
    let dir = temp_dir(tag);
    make_cert_in(&dir, names);
    Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

/// The subject of the certificate served on 127.0.0.1:`port` to a client sending SNI
/// `localhost`, as `openssl x509 -noout -subject` prints it without spaces
/// (`subject=CN=localhost`). The handshake must verify against `ca` for host name localhost.
fn served_subject(port: u16, ca: &Path) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-verify_return_error")
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("-----BEGIN CERTIFICATE-----"),
        "openssl s_client to port {port} (CA {}) failed ({}):\n{stdout}\n{}",
        ca.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-subject"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl x509");
    x509.stdin
        .take()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let out = x509.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

// ------------------------------------------------------------------------------------------
// Configuration: conf/sipcore-wss.cfg with free ports, the test certificates, the build's
// modules.

/// A config and the ports it uses (the ws one is `{PORT}`, left to `Server::start`).
struct Cfg {
    text: String,
    wss_port: u16,
    mi_port: u16,
}

impl Cfg {
    /// The bundled `conf/sipcore-wss.cfg` serving `pki`'s certificate.
    fn bundled(pki: &Pki) -> Cfg {
        let path = repo().join("conf/sipcore-wss.cfg");
        let cfg = std::fs::read_to_string(&path).unwrap();
        for needle in [
            "socket = ws:127.0.0.1:8080",
            "socket = wss:127.0.0.1:8443",
            "mi_http_port = 8889",
            "modparam(\"tls_mgm\", \"certificate\", \"[default]tls/cert.pem\")",
            "modparam(\"tls_mgm\", \"private_key\", \"[default]tls/key.pem\")",
            "loadmodule \"proto_wss.so\"",
            "    if (!lookup(\"location\")) {",
        ] {
            assert!(
                cfg.contains(needle),
                "conf/sipcore-wss.cfg changed: {needle}"
            );
        }
        let (wss_port, mi_port) = (free_port(), free_port());
        let text = cfg
            .replace("socket = ws:127.0.0.1:8080", "socket = ws:127.0.0.1:{PORT}")
            .replace(
                "socket = wss:127.0.0.1:8443",
                &format!("socket = wss:127.0.0.1:{wss_port}"),
            )
            .replace("mi_http_port = 8889", &format!("mi_http_port = {mi_port}"))
            .replace(
                "[default]tls/cert.pem",
                &format!("[default]{}", pki.cert.display()),
            )
            .replace(
                "[default]tls/key.pem",
                &format!("[default]{}", pki.key.display()),
            )
            .replace("mpath", "# mpath")
            + "\nmpath = \"{MPATH}\"\n";
        Cfg {
            text,
            wss_port,
            mi_port,
        }
    }

    /// Add `lines` right after `loadmodule "proto_wss.so"`.
    fn after_wss_module(mut self, lines: &str) -> Cfg {
        self.text = self.text.replacen(
            "loadmodule \"proto_wss.so\"\n",
            &format!("loadmodule \"proto_wss.so\"\n{lines}\n"),
            1,
        );
        self
    }

    /// Add script lines to the main route just before the registrar lookup.
    fn before_lookup(mut self, lines: &str) -> Cfg {
        self.text = self.text.replacen(
            "    if (!lookup(\"location\")) {",
            &format!("{lines}\n    if (!lookup(\"location\")) {{"),
            1,
        );
        self
    }

    /// Drop every line containing `needle`.
    fn without_lines(mut self, needle: &str) -> Cfg {
        self.text = self
            .text
            .lines()
            .filter(|l| !l.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        self
    }

    /// Start sipcore with alice and bob ([`PASSWORD`]) in its user database, and wait until
    /// the ws, wss and MI ports accept connections.
    fn start(self) -> Wss {
        let srv = Server::start(&self.text);
        add_users(&srv, &["alice", "bob"]);
        wait_port(self.wss_port);
        wait_port(self.mi_port);
        Wss {
            wss_addr: SocketAddr::from(([127, 0, 0, 1], self.wss_port)),
            srv,
        }
    }
}

/// A running sipcore with a wss socket.
struct Wss {
    srv: Server,
    wss_addr: SocketAddr,
}

impl Wss {
    fn wss_url(&self) -> String {
        format!("wss://localhost:{}/", self.wss_addr.port())
    }

    /// The log once it mentions `needle` (logging is asynchronous), or after `T` as it is:
    /// for failure messages.
    fn log_after(&self, needle: &str) -> String {
        let deadline = Instant::now() + T;
        loop {
            let l = self.srv.log();
            if l.contains(needle) || Instant::now() > deadline {
                return l;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `sipcore mi -f CFG ARGS...`: Ok(result) or Err(error object).
    fn mi(&self, args: &[&str]) -> Result<Value, Value> {
        let mut full = vec!["-f".to_string(), self.srv.cfg_path.display().to_string()];
        full.extend(args.iter().map(|a| a.to_string()));
        let r = mi_run(&full);
        if r.success {
            return Ok(serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
                panic!(
                    "`sipcore mi {args:?}` stdout is not JSON ({e}): {:?}",
                    r.stdout
                )
            }));
        }
        let both = format!("{}\n{}", r.stderr, r.stdout);
        match (both.find('{'), both.rfind('}')) {
            (Some(a), Some(b)) if a < b => Err(serde_json::from_str(&both[a..=b])
                .unwrap_or_else(|e| panic!("`sipcore mi {args:?}`: {e}: {both}"))),
            _ => panic!("`sipcore mi {args:?}` failed without a JSON error: {both}"),
        }
    }

    fn mi_ok(&self, args: &[&str]) -> Value {
        self.mi(args).unwrap_or_else(|e| {
            panic!(
                "`sipcore mi {args:?}` failed: {e}\n--- sipcore:\n{}",
                self.srv.log()
            )
        })
    }

    /// The `wss_list` entry of the connection from `peer`.
    fn wss_entry(&self, peer: SocketAddr) -> Value {
        let list = self.mi_ok(&["wss_list"]);
        list["Connections"]
            .as_array()
            .unwrap_or_else(|| panic!("wss_list: {list}"))
            .iter()
            .find(|c| c["peer"].as_str().and_then(|p| p.parse().ok()) == Some(peer))
            .unwrap_or_else(|| panic!("{peer} not in wss_list: {list}"))
            .clone()
    }
}

// ------------------------------------------------------------------------------------------
// A blocking WebSocket SIP client (tungstenite) over TCP or over OpenSSL.

struct SipClient<S: Read + Write> {
    ws: WebSocket<S>,
    local: SocketAddr,
}

/// The TCP stream under a client, for timeouts.
trait Tcp {
    fn tcp(&self) -> &TcpStream;
}
impl Tcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}
impl Tcp for SslStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// WebSocket handshake (subprotocol `sip`) on an established stream.
fn ws_handshake<S: Read + Write + Tcp>(url: &str, stream: S) -> SipClient<S> {
    let local = stream.tcp().local_addr().unwrap();
    stream.tcp().set_read_timeout(Some(T)).unwrap();
    stream.tcp().set_write_timeout(Some(T)).unwrap();
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (ws, resp) = match tungstenite::client::client(req, stream) {
        Ok(x) => x,
        Err(e) => panic!("WebSocket handshake with {url}: {e}"),
    };
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "sip");
    // Short reads from now on: `recv` loops until its own deadline.
    ws.get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    SipClient { ws, local }
}

/// A ws:// client of 127.0.0.1:`port`.
fn ws_connect(port: u16) -> SipClient<TcpStream> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("TCP connect");
    tcp.set_nodelay(true).unwrap();
    ws_handshake(&format!("ws://127.0.0.1:{port}/"), tcp)
}

/// A wss:// client of `addr` verifying the server as `localhost` against `ca`, at most TLS
/// `max` when given.
fn wss_connect(
    addr: SocketAddr,
    ca: &Path,
    max: Option<SslVersion>,
) -> SipClient<SslStream<TcpStream>> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(ca).unwrap();
    b.set_max_proto_version(max).unwrap();
    let tcp = TcpStream::connect(addr).expect("TCP connect");
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    tcp.set_write_timeout(Some(T)).unwrap();
    let tls = match b.build().connect("localhost", tcp) {
        Ok(s) => s,
        Err(e) => panic!("TLS handshake with {addr}: {e}"),
    };
    ws_handshake(&format!("wss://localhost:{}/", addr.port()), tls)
}

impl<S: Read + Write + Tcp> SipClient<S> {
    fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).expect("send");
    }

    /// The next SIP message, pings and pongs skipped; panics after `within`.
    fn recv(&mut self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => return t.to_string(),
                Ok(Message::Binary(b)) => return String::from_utf8(b.to_vec()).unwrap(),
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(c)) => panic!("closed by the server: {c:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
            assert!(Instant::now() < deadline, "no message within {within:?}");
        }
    }

    /// OPTIONS to the server itself and its 200; returns (request, reply).
    fn options(&mut self, call_id: &str, cseq: u32) -> (String, String) {
        let req = options_request(
            call_id,
            &format!("z9hG4bKwss{cseq}x{}", call_id.len()),
            cseq,
        );
        self.send(&req);
        let reply = self.recv(T);
        assert!(reply.starts_with("SIP/2.0 200 "), "{call_id}: {reply}");
        assert_eq!(header(&reply, "Call-ID"), Some(call_id));
        (req, reply)
    }

    /// Send a Close and read until the server's Close (or EOF).
    fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + T;
        loop {
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
            assert!(Instant::now() < deadline, "the server never closed");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Node: JsSIP / SIP.js scenarios and the TLS WebSocket server.

/// scenario.js `--scenario all` with alice on `alice_url` and bob on `bob_url`, trusting `ca`.
fn scenario_all(srv: &Wss, ca: &Path, stack: &str, alice_url: &str, bob_url: &str) -> String {
    ensure_node_modules();
    let out = Command::new("node")
        .arg(js_dir().join("scenario.js"))
        .args(["--stack", stack, "--url", alice_url, "--bob-url", bob_url])
        .args(["--password", PASSWORD])
        .args([
            "--domain",
            "example.com",
            "--scenario",
            "all",
            "--timeout",
            "60",
        ])
        .env("NODE_EXTRA_CA_CERTS", ca)
        .output()
        .expect("node not found: install Node.js (.ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scenario all with {stack} ({alice_url} / {bob_url}) failed ({}):\n--- steps:\n{stdout}\n\
         --- node stderr:\n{stderr}\n--- sipcore:\n{}",
        out.status,
        srv.srv.log()
    );
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(steps.len() >= 10, "too few steps:\n{stdout}");
    assert!(
        steps.iter().all(|l| l.contains("\"ok\":true")),
        "a step failed:\n{stdout}"
    );
    // The users were where they were asked to be.
    let start: Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.contains("\"step\":\"start\""))
            .unwrap_or_else(|| panic!("no start step:\n{stdout}")),
    )
    .unwrap();
    assert_eq!(
        (start["url"].as_str(), start["bobUrl"].as_str()),
        (Some(alice_url), Some(bob_url))
    );
    for name in [
        "alice.register",
        "bob.register",
        "message.alice_to_bob",
        "call1.answer_and_ack",
        "call1.info_from_alice",
        "call1.bye_from_bob",
        "cancel.cancel_from_alice",
        "unregistered.call_carol",
        "bob.unregister",
    ] {
        assert!(
            steps
                .iter()
                .any(|l| l.contains(&format!("\"step\":\"{name}\""))),
            "no {name} step:\n{stdout}"
        );
    }
    stdout
}

/// The `transport=` of each Record-Route value the callee saw on the first INVITE.
fn callee_record_route(stdout: &str) -> Vec<String> {
    let step: Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.contains("\"step\":\"call1.invite_and_ring\""))
            .unwrap_or_else(|| panic!("no call1.invite_and_ring step:\n{stdout}")),
    )
    .unwrap();
    let rr: Vec<&str> = step["record_route"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    rr.join(",")
        .split("transport=")
        .skip(1)
        .map(|t| t.split([';', '>']).next().unwrap_or("").to_string())
        .collect()
}

/// `tests/js/tls-ws-server.js`: a Node TLS WebSocket UAS; its stdout lines are collected.
/// Killed on drop.
struct NodeUas {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    port: u16,
}

impl NodeUas {
    fn start(pki: &Pki) -> NodeUas {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(js_dir().join("tls-ws-server.js"))
            .arg("--cert")
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node not found: install Node.js (.ci/run does)");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                let v = serde_json::from_str(&l).unwrap_or_else(|_| json!({ "raw": l }));
                sink.lock().unwrap().push(v);
            }
        });
        let mut uas = NodeUas {
            child,
            lines,
            port: 0,
        };
        let ready = uas.wait("ready", |v| v["ready"] == json!(true));
        uas.port = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        uas
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// The first line satisfying `pred`, waited for; panics after `T`.
    fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + T;
        loop {
            if let Some(v) = self.lines().into_iter().find(|v| pred(v)) {
                return v;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "tls-ws-server.js exited ({st}) before {what}: {:?}",
                    self.lines()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tls-ws-server.js never printed {what}: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeUas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// 1. JsSIP and SIP.js over wss.

/// Both users on wss://localhost (`tls_method TLSv1_2-`, the CA trusted by Node).
fn both_on_wss(stack: &str) {
    let pki = make_cert("wss-pki", &[]);
    let srv = Cfg::bundled(&pki).start();
    let url = srv.wss_url();
    let out = scenario_all(&srv, &pki.ca, stack, &url, &url);
    assert_eq!(
        callee_record_route(&out),
        ["wss"],
        "one Record-Route, ours over wss"
    );
}

/// Alice on wss://localhost, bob on ws://127.0.0.1, one registrar and routing for both.
fn alice_on_wss_bob_on_ws(stack: &str) {
    let pki = make_cert("wss-pki", &[]);
    let srv = Cfg::bundled(&pki).start();
    let (alice, bob) = (srv.wss_url(), srv.srv.ws_url());
    let out = scenario_all(&srv, &pki.ca, stack, &alice, &bob);
    // Double record-routing (RFC 5658 §3): bob's route set starts with our ws socket, alice's
    // (the reverse) with our wss one; the in-dialog steps above went through both.
    assert_eq!(callee_record_route(&out), ["ws", "wss"]);
}

#[test]
fn jssip_to_jssip_over_wss_all_scenarios() {
    both_on_wss("jssip");
}

#[test]
fn sipjs_to_sipjs_over_wss_all_scenarios() {
    both_on_wss("sipjs");
}

#[test]
fn jssip_on_wss_calls_sipjs_on_ws_all_scenarios() {
    alice_on_wss_bob_on_ws("mixed");
}

#[test]
fn sipjs_on_wss_calls_jssip_on_ws_all_scenarios() {
    alice_on_wss_bob_on_ws("sipjs,jssip");
}

// ------------------------------------------------------------------------------------------
// 2. MI: wss_list, wss_close, tls_list.

#[test]
fn mi_wss_list_shows_tls_version_and_cipher_and_tls_list_the_server_domain() {
    let pki = make_cert("wss-pki", &[]);
    let srv = Cfg::bundled(&pki).start();
    // One client at the highest version (TLS 1.3 with OpenSSL 3), one held to TLS 1.2.
    let mut c13 = wss_connect(srv.wss_addr, &pki.ca, None);
    let mut c12 = wss_connect(srv.wss_addr, &pki.ca, Some(SslVersion::TLS1_2));
    c13.options("mi-13@wss", 1);
    c12.options("mi-12@wss", 1);
    let negotiated = |c: &SipClient<SslStream<TcpStream>>| {
        let s = c.ws.get_ref().ssl();
        (
            s.version_str().to_string(),
            s.current_cipher()
                .unwrap()
                .standard_name()
                .unwrap()
                .to_string(),
        )
    };
    for (c, want) in [(&c13, "TLSv1.3"), (&c12, "TLSv1.2")] {
        let e = srv.wss_entry(c.local);
        let (version, cipher) = negotiated(c);
        assert_eq!(version, want, "client side of {}", c.local);
        assert_eq!(e["tls_version"], json!(want), "{e}");
        let listed = e["tls_cipher"].as_str().unwrap_or_else(|| panic!("{e}"));
        assert!(!listed.is_empty(), "{e}");
        // The server names the cipher the client negotiated (IANA or OpenSSL name).
        let openssl_name = c.ws.get_ref().ssl().current_cipher().unwrap().name();
        assert!(
            listed == cipher || listed == openssl_name,
            "wss_list cipher {listed:?}, client negotiated {cipher} ({openssl_name}): {e}"
        );
        assert_eq!(e["local"], json!(srv.wss_addr.to_string()), "{e}");
        assert_eq!(e["outbound"], json!(false), "{e}");
    }
    // The wss connections are proto_wss's, not proto_ws's.
    let ws_list = srv.mi_ok(&["ws_list"]);
    assert!(
        !ws_list.to_string().contains(&c13.local.to_string()),
        "wss client in ws_list: {ws_list}"
    );

    // tls_list: the default server domain with the configured files.
    let domains = srv.mi_ok(&["tls_list"]);
    let server = domains["Domains"]
        .as_array()
        .unwrap_or_else(|| panic!("tls_list: {domains}"))
        .iter()
        .find(|d| d["type"] == "server" && d["name"] == "default")
        .unwrap_or_else(|| panic!("no default server domain: {domains}"))
        .clone();
    assert_eq!(
        server["certificate"],
        json!(pki.cert.display().to_string()),
        "{server}"
    );
    assert_eq!(
        server["private_key"],
        json!(pki.key.display().to_string()),
        "{server}"
    );
    assert_eq!(server["tls_method"], json!("TLSv1_2-TLSv1_3"), "{server}");

    // wss_close: the client gets a Close, and the entry is gone.
    let id = srv.wss_entry(c12.local)["id"].to_string();
    assert_eq!(srv.mi_ok(&["wss_close", &id]), json!("OK"));
    let deadline = Instant::now() + T;
    let close = loop {
        match c12.ws.read() {
            Ok(Message::Close(c)) => break c,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("no Close frame after wss_close: {e}"),
        }
        assert!(Instant::now() < deadline, "no Close frame after wss_close");
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));
    let deadline = Instant::now() + T;
    loop {
        let list = srv.mi_ok(&["wss_list"]).to_string();
        if !list.contains(&c12.local.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "closed connection still listed: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The other client is untouched.
    c13.options("mi-13b@wss", 2);
}

// ------------------------------------------------------------------------------------------
// 3. tls_reload.

#[test]
fn tls_reload_swaps_the_certificate_for_new_handshakes_only_and_a_bad_key_changes_nothing() {
    let first = make_cert("wss-pki", &[]);
    let second = make_cert(
        "wss-pki2",
        &["reloaded.localhost", "localhost", "127.0.0.1"],
    );
    let srv = Cfg::bundled(&first).start();
    let port = srv.wss_addr.port();
    assert_eq!(served_subject(port, &first.ca), "subject=CN=localhost");

    let mut old = wss_connect(srv.wss_addr, &first.ca, None);
    old.options("before@reload", 1);

    // New files in place, then reload.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    let r = srv.mi_ok(&["tls_reload"]);
    assert!(r["Reloaded"].get("proto_wss").is_some(), "tls_reload: {r}");
    // The connection made before keeps working on its session.
    old.options("after@reload", 2);
    // New handshakes get the new certificate (verified against its CA).
    assert_eq!(
        served_subject(port, &second.ca),
        "subject=CN=reloaded.localhost"
    );
    let mut new = wss_connect(srv.wss_addr, &second.ca, None);
    new.options("new@reload", 1);

    // A broken key: an MI error naming the file; nothing changes.
    std::fs::write(&first.key, "this is not a PEM key\n").unwrap();
    let e = srv
        .mi(&["tls_reload"])
        .expect_err("tls_reload with a broken key file must fail");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&first.key.display().to_string()),
        "the error does not name {}: {e}",
        first.key.display()
    );
    assert_eq!(
        served_subject(port, &second.ca),
        "subject=CN=reloaded.localhost"
    );
    old.options("after@badreload", 3);
    new.options("new@badreload", 2);
    assert!(srv.wss_entry(old.local)["tls_version"].is_string());
}

// ------------------------------------------------------------------------------------------
// 4. Startup without a server certificate.

#[test]
fn a_wss_socket_without_a_tls_certificate_does_not_start() {
    let pki = make_cert("wss-pki", &[]);
    for (what, cfg) in [
        (
            "no certificate/private_key",
            Cfg::bundled(&pki)
                .without_lines("\"tls_mgm\", \"certificate\"")
                .without_lines("\"tls_mgm\", \"private_key\""),
        ),
        (
            "no tls_mgm at all",
            Cfg::bundled(&pki).without_lines("tls_mgm"),
        ),
    ] {
        assert!(
            !cfg.text.contains(&pki.cert.display().to_string()),
            "{what}"
        );
        let (status, stderr, path) = run_to_exit(&cfg.text, "sipcore-wss.cfg");
        assert!(!status.success(), "{what}: started anyway:\n{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("needs a TLS server domain"))
            .unwrap_or_else(|| panic!("{what}: no clear message:\n{stderr}"));
        for needle in ["wss", "\"tls_mgm\", \"certificate\"", "private_key"] {
            assert!(line.contains(needle), "{what}: {needle:?} not in {line:?}");
        }
        // At the socket line (file:line:col), and `sipcore -c` refuses the file too.
        let at = format!("{}:", path.display());
        assert!(line.contains(&at), "{what}: no file:line:col in {line:?}");
        let check = std::process::Command::new(common::sipcore_bin())
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("run sipcore -c");
        let check_err = String::from_utf8_lossy(&check.stderr);
        assert!(
            !check.status.success() && check_err.contains("needs a TLS server domain"),
            "{what}: sipcore -c accepted it:\n{check_err}"
        );
        assert!(
            !stderr.contains(&format!("listening on wss:127.0.0.1:{}", cfg.wss_port)),
            "{what}:\n{stderr}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// 5. HEP tracing of wss connections.

/// The JSON object of an event payload (homer5_on 0).
fn event_json(h: &Hep3) -> serde_json::Map<String, Value> {
    match serde_json::from_slice::<Value>(&h.payload) {
        Ok(Value::Object(m)) => m,
        other => panic!(
            "event payload is not a JSON object ({other:?}): {}",
            h.text()
        ),
    }
}

/// Poll the collector until `pred` holds; panics after `T`.
fn wait_hep(col: &Collector, what: &str, pred: impl Fn(&[Hep3]) -> bool) -> Vec<Hep3> {
    let deadline = Instant::now() + T;
    loop {
        let p = col.hep3();
        if pred(&p) {
            return p;
        }
        if Instant::now() > deadline {
            let s: Vec<String> = p.iter().map(summary).collect();
            panic!("collector never saw {what}; it has:\n{}", s.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hep_traces_wss_connection_events_as_wss_and_their_sip_messages() {
    let col = Collector::udp();
    let pki = make_cert("wss-pki", &[]);
    let srv = Cfg::bundled(&pki)
        .after_wss_module(&format!(
            "loadmodule \"proto_hep.so\"\n\
             modparam(\"proto_hep\", \"hep_id\", \"[hep_dest]127.0.0.1:{};transport=udp;version=3\")\n\
             modparam(\"proto_hep\", \"homer5_on\", 0)\n\
             modparam(\"proto_wss\", \"trace_destination\", \"hep_dest\")\n\
             modparam(\"proto_wss\", \"trace_on\", 1)",
            col.addr.port()
        ))
        .start();
    assert_eq!(srv.mi_ok(&["wss_trace"]), json!({ "WSS tracing": "on" }));

    let mut c = wss_connect(srv.wss_addr, &pki.ca, None);
    let (req, reply) = c.options("hep-1@wss", 1);
    let me = c.local;
    let events_of = |p: &[Hep3]| -> Vec<(Hep3, serde_json::Map<String, Value>)> {
        p.iter()
            .filter(|h| h.proto_type == PT_NET && h.src == me)
            .map(|h| (h.clone(), event_json(h)))
            .collect()
    };
    let pkts = wait_hep(&col, "the OPTIONS, its 200 and the ACCEPTED events", |p| {
        let ev = events_of(p);
        find_sip(p, &req).is_some()
            && find_sip(p, &reply).is_some()
            && ev.iter().any(|(_, m)| m.get("Ws-Request").is_some())
            && ev.iter().any(|(_, m)| m.get("Ws-Reply").is_some())
    });
    let conn_id = srv.wss_entry(me)["id"].to_string();
    assert_eq!(srv.wss_entry(me)["traced"], json!(true));
    for (h, m) in events_of(&pkts) {
        assert_eq!((h.src, h.dst), (me, srv.wss_addr), "{}", summary(&h));
        assert_eq!(h.ip_proto, IP_PROTO_WS, "{}", summary(&h));
        assert_eq!(h.corr(), conn_id, "{}", summary(&h));
        assert_eq!(m.get("Protocol"), Some(&json!("WSS")), "{}", h.text());
        assert_eq!(m.get("Event"), Some(&json!("ACCEPTED")), "{}", h.text());
        if let Some(r) = m.get("Ws-Request").and_then(Value::as_str) {
            assert!(r.starts_with("GET / HTTP/1.1\r\n"), "{r}");
        }
        if let Some(r) = m.get("Ws-Reply").and_then(Value::as_str) {
            assert!(r.starts_with("HTTP/1.1 101 "), "{r}");
            assert_eq!(m.get("Status"), Some(&json!("SUCCESS")), "{}", h.text());
        }
    }
    for (text, src, dst) in [(&req, me, srv.wss_addr), (&reply, srv.wss_addr, me)] {
        let h = find_sip(&pkts, text).unwrap();
        assert_eq!(
            (h.src, h.dst, h.ip_proto),
            (src, dst, IP_PROTO_WS),
            "{}",
            summary(h)
        );
        assert_eq!(h.corr(), "hep-1@wss");
        let net = h
            .chunk(0, hep::ct::EXTRA_CORRELATION)
            .unwrap_or_else(|| panic!("no 0x0065 chunk: {}", summary(h)));
        let v: Value = serde_json::from_slice(&net.data).expect("0x0065 holds JSON");
        assert_eq!(v, json!({ "net": conn_id }));
    }

    // The close is traced too, still as WSS.
    c.close();
    let pkts = wait_hep(&col, "the CLOSED event", |p| {
        events_of(p)
            .iter()
            .any(|(_, m)| m.get("Event") == Some(&json!("CLOSED")))
    });
    for (h, m) in events_of(&pkts) {
        assert_eq!(m.get("Protocol"), Some(&json!("WSS")), "{}", h.text());
    }
    // Nothing of proto_ws (not traced here) and no event claims to be WS.
    for h in pkts.iter().filter(|h| h.proto_type == PT_NET) {
        assert_ne!(h.dst, srv.srv.addr, "ws connection traced: {}", summary(h));
        assert_eq!(
            event_json(h).get("Protocol"),
            Some(&json!("WSS")),
            "{}",
            h.text()
        );
    }
    assert!(pkts
        .iter()
        .all(|h| h.proto_type == PT_NET || h.proto_type == PT_SIP));
}

// ------------------------------------------------------------------------------------------
// 6. Outbound wss to a Node TLS WebSocket server.

/// A sipcore relaying requests for `out@` to `sip:localhost:UAS;transport=wss`, whose client
/// domain trusts `ca_list` (a PEM file of CAs; the `[default]` prefix also gives it to the
/// default server domain, where it is unused: `verify_cert` is 0 there). The outbound
/// connect and TLS/WebSocket
/// handshake deadlines are raised from 100 ms to 5 s: the Node server may be slow to answer
/// on busy cores, and a timeout is not what these tests look at.
fn relay_to(uas: &NodeUas, server: &Pki, ca_list: &Path) -> Wss {
    Cfg::bundled(server)
        .after_wss_module(
            "modparam(\"proto_wss\", \"wss_connect_timeout\", 5000)\n\
             modparam(\"proto_wss\", \"wss_handshake_timeout\", 5000)",
        )
        .after_wss_module(&format!(
            "modparam(\"tls_mgm\", \"ca_list\", \"[default]{}\")",
            ca_list.display()
        ))
        .before_lookup(&format!(
            "    if ($rU == \"out\") {{ $du = \"sip:localhost:{};transport=wss\"; t_relay(); exit; }}",
            uas.port
        ))
        .start()
}

/// A MESSAGE to sip:out@... from a ws client; returns the reply it gets.
fn message_out(srv: &Wss, call_id: &str) -> String {
    let mut c = ws_connect(srv.srv.port);
    let body = "hello over wss";
    let req = format!(
        "MESSAGE sip:out@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/WS cl1ent.invalid;branch=z9hG4bK{}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:out@127.0.0.1>\r\n\
         From: <sip:alice@example.com>;tag=al1ce\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        call_id.len(),
        body.len()
    );
    c.send(&req);
    let mut reply = c.recv(T);
    // Alice answers the default config's challenge.
    if is_challenge(&reply) {
        c.send(&authorize(&req, &reply));
        reply = c.recv(T);
    }
    assert_eq!(header(&reply, "Call-ID"), Some(call_id), "{reply}");
    reply
}

/// One PEM file holding the CAs of `cas`: the client domain's `ca_list` of a relay test.
fn ca_file(cas: &[&Pki]) -> PathBuf {
    let dir = temp_dir("wss-ca");
    let path = dir.join("ca-list.pem");
    let all: String = cas
        .iter()
        .map(|p| std::fs::read_to_string(&p.ca).unwrap())
        .collect();
    std::fs::write(&path, all).unwrap();
    path
}

/// Relaying to a UAS whose certificate (made by `uas_names`, trusted iff `trusted`) is
/// refused: 503 to the client, one log line naming the UAS and the verification failure
/// (with `reason`), nothing reaches the UAS.
fn refused(uas_names: &[&str], trusted: bool, reason: &str) {
    let server = make_cert("wss-pki", &[]);
    let uas_pki = make_cert("wss-uas", uas_names);
    let uas = NodeUas::start(&uas_pki);
    let trust = if trusted { &uas_pki } else { &server };
    let srv = relay_to(&uas, &server, &ca_file(&[trust]));
    let reply = message_out(&srv, "refused@wss");
    assert!(
        reply.starts_with("SIP/2.0 503 "),
        "{reply}\n{}",
        srv.srv.log()
    );
    let peer = format!("peer=127.0.0.1:{}", uas.port);
    let log = srv.srv.wait_log(&peer, T);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tls handshake failed") && l.contains(&peer))
        .collect();
    assert_eq!(lines.len(), 1, "one line about the refused server:\n{log}");
    assert!(
        lines[0].contains("certificate verify failed") && lines[0].contains(reason),
        "{reason:?} not in {:?}",
        lines[0]
    );
    // The UAS saw the handshake fail on its side (sipcore's alert), and never a request.
    uas.lines().iter().for_each(|v| {
        assert_ne!(
            v["event"],
            json!("sip"),
            "a request reached the refused server: {v}"
        )
    });
    let mut uas = uas;
    uas.wait("the TLS error", |v| v["event"] == json!("tls_error"));
}

/// A MESSAGE to sip:out@ is relayed over a new outbound wss connection to the Node server
/// (certificate by a CA in the client domain's `ca_list`, names localhost, 127.0.0.1, ::1),
/// whose 200 comes back to the ws client; the connection is listed with its TLS version.
#[test]
fn outbound_wss_to_a_trusted_server_relays_the_message_and_its_200() {
    let server = make_cert("wss-pki", &[]);
    let uas_pki = make_cert("wss-uas", &[]);
    let mut uas = NodeUas::start(&uas_pki);
    let srv = relay_to(&uas, &server, &ca_file(&[&uas_pki]));
    let reply = message_out(&srv, "out-ok@wss");
    assert!(
        reply.starts_with("SIP/2.0 200 "),
        "{reply}\n{}",
        srv.log_after("callid=out-ok@wss")
    );
    assert!(
        header(&reply, "To").is_some_and(|t| t.contains("tag=tlsws1")),
        "not the UAS's 200: {reply}"
    );
    let got = uas.wait("the MESSAGE", |v| v["event"] == json!("sip"));
    let text = got["data"].as_str().unwrap();
    assert!(
        text.starts_with("MESSAGE sip:out@127.0.0.1 SIP/2.0\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\nhello over wss"), "{text}");
    assert!(
        header(text, "Via").is_some_and(|v| v.starts_with("SIP/2.0/WSS ")),
        "top Via of a request sent over wss: {text}"
    );
    let conn = uas.wait("the connection", |v| v["event"] == json!("connection"));
    assert_eq!(conn["protocol"], json!("sip"), "{conn}");
    assert!(
        conn["tls"] == json!("TLSv1.3") || conn["tls"] == json!("TLSv1.2"),
        "{conn}"
    );
    let list = srv.mi_ok(&["wss_list"]);
    let out = list["Connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outbound"] == json!(true))
        .unwrap_or_else(|| panic!("no outbound connection in {list}"));
    assert_eq!(
        out["peer"],
        json!(format!("127.0.0.1:{}", uas.port)),
        "{out}"
    );
    assert_eq!(out["tls_version"], conn["tls"], "{out}");
}

/// RFC 5922 §7.2 / RFC 6125: the certificate is checked against the host name of the
/// destination URI (`localhost`), which is also sent as SNI (RFC 6066 §3) and in the `Host`
/// header of the WebSocket handshake (RFC 6455 §4.1): a certificate naming only
/// `DNS:localhost` is accepted. (The certificate of the test above also names 127.0.0.1,
/// so it passes whether the name or the resolved address is checked; this one does not.)
#[test]
fn outbound_wss_checks_the_uri_host_name_and_sends_it_as_sni() {
    let server = make_cert("wss-pki", &[]);
    let uas_pki = make_cert("wss-uas", &["localhost"]);
    let mut uas = NodeUas::start(&uas_pki);
    let srv = relay_to(&uas, &server, &ca_file(&[&uas_pki]));
    let reply = message_out(&srv, "out-name@wss");
    assert!(
        reply.starts_with("SIP/2.0 200 "),
        "a certificate for DNS:localhost refused for sip:localhost:{};transport=wss:\n{reply}\n{}",
        uas.port,
        srv.log_after("callid=out-name@wss")
    );
    let conn = uas.wait("the connection", |v| v["event"] == json!("connection"));
    assert_eq!(conn["sni"], json!("localhost"), "{conn}");
    assert_eq!(
        conn["host"],
        json!(format!("localhost:{}", uas.port)),
        "{conn}"
    );
}

/// A server certificate from a CA the client domain does not trust is refused.
#[test]
fn outbound_wss_refuses_a_certificate_from_an_untrusted_ca() {
    refused(&[], false, "unable to get local issuer certificate");
}

/// A certificate from a trusted CA but for another host name is refused.
#[test]
fn outbound_wss_refuses_a_trusted_certificate_for_another_host_name() {
    refused(&["other.example"], true, "mismatch");
}
