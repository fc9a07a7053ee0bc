//! A real browser: Debian's chromium, headless, driven by `tests/js/browser-run.js`
//! (playwright-core) with two SIP.js pages (`tests/js/browser/page.html`).
use super::{js_dir, temp_dir};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// Panics unless `CHROMIUM` (default `/usr/bin/chromium`) exists; returns its path.
pub fn chromium() -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (.ci/run does) or set CHROMIUM"
    );
    chromium
}

/// Every step browser-run.js runs, in order: REGISTER, MESSAGE both ways, OPTIONS to a page and
/// to the server, a call (INVITE/180/200/ACK, WebRTC media, INFO from either side, BYE from the
/// callee), a second call with BYE from the caller, CANCEL of a ringing call, INVITE and
/// MESSAGE to an unregistered user, un-REGISTER.
pub const BROWSER_STEPS: &[&str] = &[
    "alice.register",
    "bob.register",
    "message.alice_to_bob",
    "message.bob_to_alice",
    "options.alice_to_bob",
    "options.alice_to_server",
    "call.invite_answer",
    "call.media",
    "call.info_from_alice",
    "call.info_from_bob",
    "call.bye_from_bob",
    "call2.invite_answer",
    "call2.bye_from_alice",
    "cancel.cancel_from_alice",
    "unregistered.call_carol",
    "unregistered.message_carol",
    "alice.unregister",
    "bob.unregister",
];

/// The stdout line of browser-run.js's `step`; panics unless it is there and passed.
pub fn browser_step<'a>(stdout: &'a str, step: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(&format!("\"step\":\"{step}\"")) && l.contains("\"ok\":true"))
        .unwrap_or_else(|| panic!("step {step} missing or failed:\n{stdout}"))
}

/// Panics unless every one of [`BROWSER_STEPS`] passed in `stdout`.
pub fn assert_browser_steps(stdout: &str) {
    for step in BROWSER_STEPS {
        browser_step(stdout, step);
    }
}

/// Runs browser-run.js with the two pages at `url` (no password) and returns its stdout;
/// panics with its output and `logs()` (the servers' logs) unless every step passed. Once both
/// pages are registered, it waits for `registered()` to return before going on (`--hold`).
pub fn browser_run(url: &str, registered: &dyn Fn(), logs: &dyn Fn() -> String) -> String {
    let hold = temp_dir("browser-hold").join("go");
    let mut child = Command::new("node")
        .arg(js_dir().join("browser-run.js"))
        .args(["--url", url, "--domain", "example.com", "--hold"])
        .arg(&hold)
        .arg("--chromium")
        .arg(chromium())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node not found: install Node.js (.ci/run does)");
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    // A panic of `registered()` is raised once the run has ended (chromium closed).
    let mut failed = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.expect("browser-run.js's stdout");
        if line.contains("\"step\":\"bob.register\"") && line.contains("\"ok\":true") {
            failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(registered)).err();
            std::fs::write(&hold, "go").unwrap();
        }
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    if let Some(panic) = failed {
        std::panic::resume_unwind(panic);
    }
    assert!(
        status.success(),
        "browser run at {url} failed ({status}):\n--- steps:\n{stdout}\n--- node stderr:\n{stderr}\n--- servers:\n{}",
        logs()
    );
    assert_browser_steps(&stdout);
    browser_step(&stdout, "registered.hold");
    stdout
}
