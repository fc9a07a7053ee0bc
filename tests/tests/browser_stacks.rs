//! End to end with real third-party SIP stacks: JsSIP and SIP.js (npm) run in Node with the
//! `ws` package as their WebSocket, against sipcore on the bundled default configuration
//! (`conf/sipcore.cfg`: registrar bound to WebSocket connections + stateless proxy with
//! record-route). Two users REGISTER, exchange MESSAGE and OPTIONS, call each other (INVITE /
//! 180 / 200 / ACK, INFO, re-INVITE, BYE from either side), CANCEL a ringing call, and reach
//! an unregistered user (404/480 at once). `tests/js/scenario.js` checks every step both by
//! the stacks' events and by the SIP messages on each WebSocket; it is the same script that
//! passes against Kamailio (`tests/js/run-against-kamailio.sh`).
//!
//! Needs Node.js and `npm` (`.ci/run` installs them); the npm packages are installed from
//! `tests/js/package-lock.json` on first use.
mod common;

use common::{default_config, Server};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `npm ci` once per test process when the packages are missing.
fn ensure_node_modules() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let dir = js_dir();
    let have = ["jssip", "sip.js", "ws", "playwright-core"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).is_dir());
    if !have {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm not found: install Node.js and npm (.ci/run does)");
        assert!(st.success(), "npm ci in {} failed: {st}", dir.display());
    }
    *done = true;
}

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

/// [`run`] against a server on `cfg`.
fn run_on(cfg: &str, stack: &str, scenario: &str) {
    ensure_node_modules();
    let srv = Server::start(cfg);
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
}

/// Registered JsSIP and SIP.js clients that stay idle (JsSIP sends nothing, SIP.js at most CRLF
/// keep-alives) three times longer than `ws_connection_lifetime` keep their connections and
/// still reach each other: the registrar keeps a registered flow (RFC 5626 §4.4).
#[test]
fn registered_stacks_stay_connected_past_the_idle_lifetime() {
    let cfg = default_config().0.replacen(
        "loadmodule \"proto_ws.so\"",
        "loadmodule \"proto_ws.so\"\nmodparam(\"proto_ws\", \"ws_connection_lifetime\", 1)",
        1,
    );
    assert!(
        cfg.contains("ws_connection_lifetime\", 1)"),
        "default config changed"
    );
    run_on(&cfg, "mixed", "idle");
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

/// A real browser: Debian's chromium, headless, driven by playwright-core, runs SIP.js (the ES
/// modules npm ships) in two pages that register, exchange a MESSAGE, set up a call with real
/// WebRTC offer/answer (fake audio device; the peer connection between the pages must reach
/// `connected`), hang up from the callee, get 404 for an unregistered user, and unregister.
/// Needs `chromium` (`.ci/run` installs it; `CHROMIUM=/path` overrides).
#[test]
fn real_browser_sipjs_pages_register_message_and_call() {
    ensure_node_modules();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (.ci/run does) or set CHROMIUM"
    );
    let srv = Server::start(&default_config().0);
    let url = srv.ws_url();
    let stdout = run_node(
        &srv,
        "browser run",
        "browser-run.js",
        &[
            "--url",
            &url,
            "--domain",
            "example.com",
            "--chromium",
            &chromium,
        ],
    );
    for step in [
        "alice.register",
        "bob.register",
        "message.alice_to_bob",
        "call.invite_answer",
        "call.media",
        "call.bye_from_bob",
        "unregistered.call_carol",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("\"step\":\"{step}\"")) && l.contains("\"ok\":true")),
            "step {step} missing or failed:\n{stdout}"
        );
    }
}
