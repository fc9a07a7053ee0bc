//! End to end with real third-party SIP stacks: JsSIP and SIP.js (npm) run in Node with the
//! `ws` package as their WebSocket, against sipcore on the bundled default configuration
//! (`conf/sipcore.cfg`: digest authentication of every REGISTER and client request, users in
//! SQLite added with `sipcore user add`, registrar bound to WebSocket connections + stateless
//! proxy with record-route); both stacks answer the 401/407 challenges with the password. Two users REGISTER, exchange MESSAGE and OPTIONS, call each other (INVITE /
//! 180 / 200 / ACK, INFO, re-INVITE, BYE from either side), CANCEL a ringing call, and reach
//! an unregistered user (404/480 at once). `tests/js/scenario.js` checks every step both by
//! the stacks' events and by the SIP messages on each WebSocket; it is the same script that
//! passes against Kamailio (`tests/js/run-against-kamailio.sh`).
//!
//! Needs Node.js and `npm` (`.ci/run` installs them); the npm packages are installed from
//! `tests/js/package-lock.json` on first use.
mod common;

use common::browser::{assert_browser_steps, chromium};
use common::digest::{add_users, PASSWORD};
use common::{
    default_config, ensure_node_modules, free_port, js_dir, make_cert_in, repo, temp_dir, Server,
};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Run `js/<script>` under Node with `args` against `srv`; returns its stdout, or panics with
/// both sides' logs if it failed (`what` names the run).
fn run_node(srv: &Server, what: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new("node")
        .arg(js_dir().join(script))
        .args(args)
        .output()
        .expect("node not found: install Node.js (.ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- steps:\n{stdout}\n--- node stderr:\n{stderr}\n--- sipcore:\n{}",
        out.status,
        srv.log()
    );
    stdout
}

/// Run scenario.js with `stack` for `scenario` against a fresh server; panics with both
/// sides' logs on failure.
fn run(stack: &str, scenario: &str) {
    run_on(&default_config().0, stack, scenario);
}

/// [`run`] against a server on `cfg`; the server's log at the end.
fn run_on(cfg: &str, stack: &str, scenario: &str) -> String {
    ensure_node_modules();
    let srv = Server::start(cfg);
    add_users(&srv, &["alice", "bob"]);
    let url = srv.ws_url();
    let stdout = run_node(
        &srv,
        &format!("scenario {scenario} with {stack}"),
        "scenario.js",
        &[
            "--stack",
            stack,
            "--url",
            &url,
            "--password",
            PASSWORD,
            "--domain",
            "example.com",
            "--scenario",
            scenario,
            "--timeout",
            "60",
        ],
    );
    // Every step reported ok, and the run was not empty.
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(steps.len() >= 3, "too few steps:\n{stdout}");
    assert!(
        steps.iter().all(|l| l.contains("\"ok\":true")),
        "a step failed:\n{stdout}"
    );
    srv.log()
}

/// Registered JsSIP and SIP.js clients that stay idle (JsSIP sends nothing, SIP.js at most CRLF
/// keep-alives) three times longer than `ws_connection_lifetime` keep their connections and
/// still reach each other: the registrar keeps a registered flow (RFC 5626 §4.4). Meanwhile
/// the server pings them every second (`ws_keepalive_interval` 1, pong timeout 1 s): their
/// WebSocket (Node's `ws`, as a browser's) answers, so the pings close nobody.
#[test]
fn registered_stacks_stay_connected_past_the_idle_lifetime() {
    let cfg = default_config().0.replacen(
        "loadmodule \"proto_ws.so\"",
        "loadmodule \"proto_ws.so\"\nmodparam(\"proto_ws\", \"ws_connection_lifetime\", 1)\n\
         modparam(\"proto_ws\", \"ws_keepalive_interval\", 1)\n\
         modparam(\"proto_ws\", \"ws_keepalive_timeout\", 1)",
        1,
    );
    assert!(
        cfg.contains("ws_connection_lifetime\", 1)"),
        "default config changed"
    );
    let log = run_on(&cfg, "mixed", "idle");
    // Nobody was closed for a missing Pong (a stack that reconnected would hide it).
    assert!(!log.contains("keepalive timeout"), "{log}");
}

/// Forking through the default config (RFC 3261 §16.6, §16.7 steps 5 and 10): bob is
/// registered from a JsSIP and a SIP.js user agent; alice's INVITE rings both (distinct Via
/// branches, one Call-ID), bob's 200 goes to alice and the other device gets a CANCEL from the
/// proxy, answers 487 and is ACKed hop by hop; alice never sees a final error; then BYE.
#[test]
fn forked_call_rings_jssip_and_sipjs_devices_and_the_first_answer_wins() {
    run("jssip", "fork");
}

/// The same with the SIP.js device answering and the JsSIP one cancelled.
#[test]
fn forked_call_answered_by_sipjs_cancels_the_jssip_device() {
    run("jssip,sipjs", "fork");
}

#[test]
fn jssip_to_jssip_all_scenarios() {
    run("jssip", "all");
}

#[test]
fn sipjs_to_sipjs_all_scenarios() {
    run("sipjs", "all");
}

#[test]
fn jssip_calls_sipjs_all_scenarios() {
    run("mixed", "all");
}

#[test]
fn sipjs_calls_jssip_all_scenarios() {
    run("sipjs,jssip", "all");
}

/// Run `cmd` under `sh -c`; panics unless it succeeded; returns its stdout.
fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A test CA and a certificate for localhost, 127.0.0.1 and ::1 made by the bundled
/// `conf/tls/make-cert.sh` in a fresh temporary directory (ca.pem, cert.pem, key.pem).
fn make_certs() -> PathBuf {
    let dir = temp_dir("wss-certs");
    make_cert_in(&dir, &[]);
    dir
}

/// Base64 of the SHA-256 of `cert`'s DER SubjectPublicKeyInfo: what chromium's
/// `--ignore-certificate-errors-spki-list` takes.
fn spki_sha256_base64(cert: &Path) -> String {
    let h = sh(&format!(
        "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -binary | base64",
        cert.display()
    ));
    let h = h.trim().to_string();
    assert_eq!(h.len(), 44, "not a base64 SHA-256: {h:?}");
    h
}

/// The bundled `conf/sipcore-wss.cfg` with `{PORT}` for its ws socket (see
/// [`common::render`]), a free port for its wss socket (returned), the MI on a free port, the
/// modules from the build, and the certificate and key of `certs` (see [`make_certs`]).
fn wss_config(certs: &Path) -> (String, u16) {
    let path = repo().join("conf/sipcore-wss.cfg");
    let cfg = std::fs::read_to_string(&path).unwrap();
    let wss = free_port();
    let mi = free_port();
    let edits = [
        (
            "socket = ws:127.0.0.1:8080".to_string(),
            "socket = ws:127.0.0.1:{PORT}".to_string(),
        ),
        (
            "socket = wss:127.0.0.1:8443".to_string(),
            format!("socket = wss:127.0.0.1:{wss}"),
        ),
        (
            "mi_http_port = 8889".to_string(),
            format!("mi_http_port = {mi}"),
        ),
        (
            "\"[default]tls/cert.pem\"".to_string(),
            format!("\"[default]{}\"", certs.join("cert.pem").display()),
        ),
        (
            "\"[default]tls/key.pem\"".to_string(),
            format!("\"[default]{}\"", certs.join("key.pem").display()),
        ),
    ];
    let mut cfg = cfg;
    for (from, to) in edits {
        assert!(
            cfg.contains(&from),
            "{} changed: no {from:?}",
            path.display()
        );
        cfg = cfg.replacen(&from, &to, 1);
    }
    let cfg = cfg.replace("mpath", "# mpath") + "\nmpath = \"{MPATH}\"\n";
    (cfg, wss)
}

/// Wait until something accepts TCP connections on 127.0.0.1:`port` (sipcore listens on all
/// its sockets before it runs; [`Server::start`] waited for the ws one only).
fn wait_listening(srv: &Server, port: u16) {
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on the wss port {port}:\n{}",
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real browser: Debian's chromium, headless, driven by playwright-core, runs SIP.js (the ES
/// modules npm ships) in two pages that register, exchange MESSAGEs both ways and OPTIONS, set
/// up a call with real WebRTC offer/answer (fake audio device; the peer connection between the
/// pages must reach `connected`), send INFO from either side, hang up from the callee, then from
/// the caller in a second call, cancel a ringing call, get 404 for an unregistered user, and
/// unregister ([`common::browser::BROWSER_STEPS`]), answering the digest challenges.
/// Needs `chromium` (`.ci/run` installs it; `CHROMIUM=/path` overrides).
#[test]
fn real_browser_sipjs_pages_register_message_and_call() {
    ensure_node_modules();
    let chromium = chromium();
    let srv = Server::start(&default_config().0);
    add_users(&srv, &["alice", "bob"]);
    let url = srv.ws_url();
    let stdout = run_node(
        &srv,
        "browser run",
        "browser-run.js",
        &[
            "--url",
            &url,
            "--password",
            PASSWORD,
            "--domain",
            "example.com",
            "--chromium",
            &chromium,
        ],
    );
    assert_browser_steps(&stdout);
}

/// The same two SIP.js pages in chromium over secure WebSocket: sipcore on the bundled
/// `conf/sipcore-wss.cfg` (its wss socket, with a certificate for localhost made by
/// `conf/tls/make-cert.sh`), the pages opening `wss://localhost:PORT/`. Chromium trusts exactly
/// that certificate's key (`--ignore-certificate-errors-spki-list`, the base64 SHA-256 of its
/// SubjectPublicKeyInfo) and verifies everything else as usual; the pages themselves are served
/// over http (a wss:// connection from an http page is allowed). Same steps as over ws,
/// including the WebRTC peer connection.
#[test]
fn real_browser_sipjs_pages_over_wss() {
    ensure_node_modules();
    let chromium = chromium();
    let certs = make_certs();
    let spki = spki_sha256_base64(&certs.join("cert.pem"));
    let (cfg, wss) = wss_config(&certs);
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob"]);
    wait_listening(&srv, wss);
    let url = format!("wss://localhost:{wss}/");
    let stdout = run_node(
        &srv,
        "browser run over wss",
        "browser-run.js",
        &[
            "--url",
            &url,
            "--password",
            PASSWORD,
            "--spki",
            &spki,
            "--domain",
            "example.com",
            "--chromium",
            &chromium,
        ],
    );
    assert_browser_steps(&stdout);
    assert!(
        stdout.contains(&format!("\"url\":\"{url}\"")),
        "browser-run.js did not report the wss URL:\n{stdout}"
    );
    // Verification stays on: with another key in the list (the test CA's, which the server
    // does not present: cert.pem holds the leaf alone) the certificate is not trusted, the
    // first page cannot register, and sipcore logs chromium's alert.
    let other = spki_sha256_base64(&certs.join("ca.pem"));
    assert_ne!(other, spki);
    let out = Command::new("node")
        .arg(js_dir().join("browser-run.js"))
        .args(["--url", &url, "--spki", &other, "--chromium", &chromium])
        .output()
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success()
            && stdout
                .lines()
                .any(|l| l.contains("\"step\":\"alice.register\"") && l.contains("\"ok\":false")),
        "a certificate chromium does not trust was accepted ({}):\n{stdout}",
        out.status
    );
    srv.wait_log("tls handshake failed", Duration::from_secs(10));
}
