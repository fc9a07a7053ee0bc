//! Shared harness for end-to-end tests: start the real `sipcore` binary with a temporary config.
//!
//! The binary and the plugins must be built first (`cargo build --workspace`); the README's test
//! command does that. `SIPCORE_TARGET_DIR` overrides where they are looked for.
#![allow(dead_code)]

pub mod browser;
pub mod digest;
pub mod edge;
pub mod metrics;
pub mod pg;
pub mod redis;
pub mod sipws;
pub mod tcp;
pub mod udp;
pub mod ws;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `target/debug` (or `$SIPCORE_TARGET_DIR`), where `sipcore` and `lib*.so` live.
pub fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SIPCORE_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let base = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| ws.join("target"));
    base.join("debug")
}

/// Path of the `sipcore` binary.
pub fn sipcore_bin() -> PathBuf {
    let p = target_dir().join("sipcore");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

/// Whether `port` was not handed out before in this process: the kernel may give a port
/// that was bound and released again to the next `bind(0)`, and two parts of one test (a
/// server's ws and MI ports) or two tests running in parallel then got the same one.
pub fn fresh_port(port: u16) -> bool {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port)
}

/// The first port `bind` gives (binding port 0, then releasing it) that was never handed out
/// before in this process.
pub fn fresh_bound_port(bind: impl Fn() -> std::io::Result<std::net::SocketAddr>) -> u16 {
    loop {
        let p = bind().unwrap_or_else(|e| panic!("bind port 0: {e}")).port();
        if fresh_port(p) {
            return p;
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released), never one handed out before in this
/// process.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A free TCP port on `ip` (bound then released): for a server on a loopback alias such as
/// 127.0.0.2 (Linux routes all of 127.0.0.0/8 to `lo` without setup).
pub fn free_port_on(ip: &str) -> u16 {
    fresh_bound_port(|| TcpListener::bind((ip, 0))?.local_addr())
}

/// A fresh temporary directory for one test, never shared: test processes in other PID
/// namespaces (other checkouts on the same machine) can have the same process id, so the name
/// also carries the time, and the directory is created exclusively (never an existing one
/// emptied: it may be another run's live server directory).
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    loop {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let d = std::env::temp_dir().join(format!(
            "sipcore-e2e-{}-{}-{}-{}",
            tag,
            std::process::id(),
            n,
            nanos
        ));
        match std::fs::create_dir(&d) {
            Ok(()) => return d,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", d.display()),
        }
    }
}

/// Replace `{MPATH}` with the target dir and `{PORT}` with `port`.
pub fn render(cfg: &str, port: u16) -> String {
    cfg.replace("{MPATH}", &target_dir().display().to_string())
        .replace("{PORT}", &port.to_string())
}

/// A running sipcore; killed on drop. Its stderr goes to `log_path`.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    pub cfg_path: PathBuf,
}

impl Server {
    /// Start sipcore on `cfg` (with `{PORT}`/`{MPATH}` substituted) and wait until the WebSocket
    /// port accepts connections.
    pub fn start(cfg: &str) -> Server {
        Server::start_wrapped(cfg, &[])
    }

    /// Like [`Server::start`] for a config whose WebSocket socket is on `ip` (e.g.
    /// `socket = ws:127.0.0.2:{PORT}`): the port is free on `ip`, the readiness wait connects
    /// there, and [`Server::ws_url`] names it.
    pub fn start_at(ip: &str, cfg: &str) -> Server {
        Server::start_inner(ip, cfg, &[], &[])
    }

    /// Like [`Server::start`], run under a wrapper command, e.g. `["prlimit", "--nofile=64"]`.
    pub fn start_wrapped(cfg: &str, wrapper: &[&str]) -> Server {
        Server::start_with(cfg, wrapper, &[])
    }

    /// Like [`Server::start`], with these environment variables set for sipcore.
    pub fn start_env(cfg: &str, env: &[(&str, &std::ffi::OsStr)]) -> Server {
        Server::start_with(cfg, &[], env)
    }

    fn start_with(cfg: &str, wrapper: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Server {
        Server::start_inner("127.0.0.1", cfg, wrapper, env)
    }

    fn start_inner(
        ip: &str,
        cfg: &str,
        wrapper: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Server {
        let port = free_port_on(ip);
        let dir = temp_dir("srv");
        let cfg_path = dir.join("sipcore.cfg");
        std::fs::write(&cfg_path, render(cfg, port)).unwrap();
        let log_path = dir.join("stderr.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((w, args)) => {
                let mut c = Command::new(w);
                c.args(args).arg(sipcore_bin());
                c
            }
            None => Command::new(sipcore_bin()),
        };
        let child = cmd
            .envs(env.iter().copied())
            .arg("-f")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sipcore");
        let addr = SocketAddr::new(ip.parse().expect("an IP address"), port);
        let mut s = Server {
            child,
            port,
            addr,
            log_path,
            cfg_path,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("sipcore exited early ({st}):\n{}", s.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sipcore did not listen:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// Everything sipcore wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Wait until the log contains `needle` (logging is asynchronous).
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let l = self.log();
            if l.contains(needle) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{l}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `ws://IP:PORT/` of the WebSocket socket the readiness wait connected to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run sipcore on `cfg` expecting it to exit by itself; returns (status, stderr).
pub fn run_to_exit(cfg: &str, file_name: &str) -> (ExitStatus, String, PathBuf) {
    let dir = temp_dir("cfg");
    let cfg_path = dir.join(file_name);
    std::fs::write(&cfg_path, render(cfg, free_port())).unwrap();
    let mut child = Command::new(sipcore_bin())
        .arg("-f")
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipcore");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sipcore did not exit on a bad config");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err, cfg_path)
}

/// A minimal JsSIP-style OPTIONS over WebSocket (RFC 7118 §A.1 style `.invalid` Via host).
pub fn options_request(call_id: &str, branch: &str, cseq: u32) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch={branch}\r\n\
         Via: SIP/2.0/WS proxy.invalid;branch=z9hG4bKouter\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:127.0.0.1>\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=fromtag{cseq}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The value of the first header `name` in a SIP message text (case-insensitive).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// All values of header `name`, in order.
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

/// The bundled default config (`conf/sipcore.cfg`) with `{PORT}` for its WebSocket socket
/// (see [`render`]), the modules from the build, and the MI on a free port, returned with it.
pub fn default_config() -> (String, u16) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conf/sipcore.cfg");
    let cfg = std::fs::read_to_string(&path).unwrap();
    assert!(
        cfg.contains("socket = ws:127.0.0.1:8080"),
        "default config changed"
    );
    assert!(
        cfg.contains("mi_http_port = 8888"),
        "default config changed"
    );
    let mi = free_port();
    let cfg = cfg
        .replace("socket = ws:127.0.0.1:8080", "socket = ws:127.0.0.1:{PORT}")
        .replace("mi_http_port = 8888", &format!("mi_http_port = {mi}"))
        .replace("mpath", "# mpath")
        + "\nmpath = \"{MPATH}\"\n";
    (cfg, mi)
}

/// [`default_config`] without its `route(authenticate);` (digest authentication of every
/// REGISTER and client request): for tests whose subject is a bound or a queue rather than
/// who may send (100,000 registrations, a flood), so that the users' database and the
/// credential cache neither slow them down nor count in their memory figures.
pub fn default_config_without_auth() -> (String, u16) {
    let (cfg, mi) = default_config();
    let call = "\n    route(authenticate);\n";
    assert!(cfg.contains(call), "default config changed");
    (cfg.replacen(call, "\n", 1), mi)
}

/// The repository's root (where `conf/` is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `tests/js`: the Node scenario drivers (JsSIP, SIP.js, the browser run, the TLS server).
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `npm ci` in [`js_dir`] once per test process when the packages are missing.
pub fn ensure_node_modules() {
    static DONE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let dir = js_dir();
    let have = ["jssip", "sip.js", "ws", "playwright-core", "hep-js"]
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

/// Run the bundled `conf/tls/make-cert.sh DIR NAMES...` (a test CA and a server certificate
/// for `names`, first = CN; none: localhost, 127.0.0.1, ::1): `DIR/ca.pem`, `cert.pem`,
/// `key.pem`. Panics with the script's output if it failed.
pub fn make_cert_in(dir: &std::path::Path, names: &[&str]) {
    let out = Command::new("bash")
        .arg(repo().join("conf/tls/make-cert.sh"))
        .arg(dir)
        .args(names)
        .output()
        .expect("run conf/tls/make-cert.sh");
    assert!(
        out.status.success(),
        "make-cert.sh failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.join(f).is_file(), "make-cert.sh made no {f}");
    }
}

/// Runs every step of `tests/js/scenario.js` `scenario` with `stack` (alice at `url`, bob at
/// `bob_url` when given) and returns its stdout; panics with the node output and `logs()` (the
/// servers' logs) when it failed or a step was not ok.
pub fn scenario_js(
    stack: &str,
    url: &str,
    bob_url: Option<&str>,
    scenario: &str,
    logs: &dyn Fn() -> String,
) -> String {
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join("scenario.js"))
        .args(["--stack", stack, "--url", url]);
    if let Some(b) = bob_url {
        cmd.args(["--bob-url", b]);
    }
    let out = cmd
        .args([
            "--domain",
            "example.com",
            "--scenario",
            scenario,
            "--timeout",
            "60",
        ])
        .output()
        .expect("node not found: install Node.js (.ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scenario {scenario} with {stack} failed:\n{stdout}\n--- node:\n{}\n--- servers:\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(steps.len() >= 3, "too few steps:\n{stdout}");
    assert!(steps.iter().all(|l| l.contains("\"ok\":true")), "{stdout}");
    stdout
}
