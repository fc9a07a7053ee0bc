//! SIP over UDP for the end-to-end tests: a raw UDP peer that waits with deadlines, SIPp
//! (Debian's `sip-tester`) as a third-party UAC/UAS, a UDP socket's readiness, and the MI
//! reads (`get_statistics udp:`, `udp_list`).
use super::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::net::UdpSocket;

/// A free UDP port on 127.0.0.1 (bound then released).
pub fn free_udp_port() -> u16 {
    super::fresh_bound_port(|| UdpSocket::bind("127.0.0.1:0")?.local_addr())
}

/// [`default_config`] (the bundled `conf/sipcore.cfg`) with `socket = udp:127.0.0.1:UDP` and
/// `loadmodule "proto_udp.so"` added, and `extra` lines after the loadmodule; with its MI port.
pub fn default_config_udp(udp: u16, extra: &str) -> (String, u16) {
    let (cfg, mi) = default_config();
    let ws = "socket = ws:127.0.0.1:{PORT}";
    let load = "loadmodule \"proto_ws.so\"";
    assert!(
        cfg.contains(ws) && cfg.contains(load),
        "default config changed"
    );
    let cfg = cfg
        .replace(ws, &format!("{ws}\nsocket = udp:127.0.0.1:{udp}"))
        .replace(
            load,
            &format!("{load}\nloadmodule \"proto_udp.so\"\n{extra}"),
        );
    (cfg, mi)
}

/// Wait until sipcore says it listens on `udp:127.0.0.1:PORT` (logged once every transport
/// started, so the UDP sockets are bound).
pub fn wait_udp(srv: &Server, port: u16) {
    srv.wait_log(
        &format!("listening on udp:127.0.0.1:{port}"),
        Duration::from_secs(10),
    );
}

/// A UDP socket on 127.0.0.1 playing a SIP peer.
pub struct Peer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    /// Bound to 127.0.0.1, at a port the OS chooses.
    pub fn new() -> Peer {
        Peer::on("127.0.0.1")
    }

    /// Bound to `ip` (e.g. `127.0.0.2`, another loopback source), at a port the OS chooses.
    pub fn on(ip: &str) -> Peer {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }

    /// Send one datagram.
    pub fn send(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).unwrap();
    }

    /// The next datagram within `within`, or `None` once it passed.
    pub fn recv_within(&self, within: Duration) -> Option<(String, SocketAddr)> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    return Some((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("recv on {}: {e}", self.addr),
            }
        }
    }

    /// The next SIP message within 5 s (panics if none came).
    pub fn recv_sip(&self) -> String {
        self.recv_within(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("nothing arrived on {} within 5 s", self.addr))
            .0
    }
}

/// An OPTIONS over UDP whose Via names `sent_by` (`;rport` when `rport`), with `extra`
/// header lines (each ending in CRLF) before Content-Length.
pub fn udp_request(
    method: &str,
    ruri: &str,
    sent_by: &str,
    rport: bool,
    call_id: &str,
    extra: &str,
) -> String {
    let rport = if rport { ";rport" } else { "" };
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {sent_by}{rport};branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a{call_id}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A 200 to `req` (Vias, From, To with a tag, Call-ID and CSeq copied), as a UAS sends it.
pub fn ok_for(req: &str) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for v in headers(req, "Via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        r.push_str(&format!("{h}: {}\r\n", header(req, h).unwrap()));
    }
    r.push_str(&format!("To: {};tag=uas\r\n", header(req, "To").unwrap()));
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

/// SIPp: `/usr/bin/sipp` (Debian `sip-tester`; `.ci/run` installs it).
pub fn sipp_bin() -> PathBuf {
    let p = PathBuf::from("/usr/bin/sipp");
    assert!(
        p.is_file(),
        "SIPp missing: apt-get install sip-tester (.ci/run installs it)"
    );
    p
}

/// A SIPp scenario file committed under `tests/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    repo().join("tests/sipp").join(name)
}

/// A SIPp run in its own directory (its logs go there).
pub struct Sipp {
    pub child: Child,
    pub dir: PathBuf,
    pub name: String,
}

impl Sipp {
    /// Start `sipp ARGS -nostdin` with its screen, errors and messages in a fresh directory
    /// (`-trace_msg` writes `messages.log` there).
    pub fn spawn(name: &str, args: &[&str]) -> Sipp {
        Sipp::spawn_wrapped(&[], name, args)
    }

    /// [`Sipp::spawn`] under a wrapper command, e.g. `["ip", "netns", "exec", NS]`.
    pub fn spawn_wrapped(wrapper: &[&str], name: &str, args: &[&str]) -> Sipp {
        let dir = temp_dir(&format!("sipp-{name}"));
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(sipp_bin());
                c
            }
            None => Command::new(sipp_bin()),
        };
        let child = cmd
            .args(args)
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .arg("-error_file")
            .arg(dir.join("errors.log"))
            .arg("-message_file")
            .arg(dir.join("messages.log"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("spawn sipp");
        Sipp {
            child,
            dir,
            name: name.to_string(),
        }
    }

    /// SIPp's built-in UAS (`-sn uas`) on 127.0.0.1:`port` for `calls` calls, once its port
    /// is bound.
    pub fn uas(port: u16, calls: usize) -> Sipp {
        let (port, calls) = (port.to_string(), calls.to_string());
        let uas = Sipp::spawn(
            "uas",
            &["-sn", "uas", "-i", "127.0.0.1", "-p", &port, "-m", &calls],
        );
        wait_udp_bound(port.parse().unwrap());
        uas
    }

    /// One of its files (`stdout.log`, `errors.log`, `messages.log`), or "".
    pub fn file(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.join(f)).unwrap_or_default()
    }

    /// Its exit status, waited for up to `within` (then it is killed and the test fails with
    /// its output).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sipp {} did not finish within {within:?}:\n{}\n{}",
                    self.name,
                    self.file("stdout.log"),
                    self.file("errors.log")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for it and assert it exited 0 (every call successful).
    pub fn assert_success(&mut self, within: Duration) {
        let st = self.wait(within);
        assert!(
            st.success(),
            "sipp {} exited {st}:\n{}\n{}\n{}",
            self.name,
            self.file("stdout.log"),
            self.file("stderr.log"),
            self.file("errors.log")
        );
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One MI command over JSON-RPC (`http://127.0.0.1:MI/mi`): the whole answer (result or
/// error).
pub fn mi_answer(mi_port: u16, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", mi_port)).expect("connect to the MI port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the MI answer");
    let (_, json) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {raw}"))
}

/// One MI command over JSON-RPC (`http://127.0.0.1:MI/mi`): its result (panics on an error).
pub fn mi_call(mi_port: u16, method: &str, params: Value) -> Value {
    let v = mi_answer(mi_port, method, params);
    match v.get("result") {
        Some(r) => r.clone(),
        None => panic!("MI {method} failed: {v}"),
    }
}

/// The `udp` statistics now, by name (`received`, `dropped_not_sip`, ...).
pub fn udp_stats(mi_port: u16) -> HashMap<String, u64> {
    let all = mi_call(mi_port, "get_statistics", json!({"statistics": ["udp:"]}));
    all.as_object()
        .unwrap_or_else(|| panic!("get_statistics answered {all}"))
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("udp:")?.to_string(), v.as_u64()?)))
        .collect()
}

/// Poll the `udp` statistics until `pred` holds (10 s), returning them.
pub fn wait_udp_stats(
    mi_port: u16,
    what: &str,
    pred: impl Fn(&HashMap<String, u64>) -> bool,
) -> HashMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = udp_stats(mi_port);
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "udp statistics never showed {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until something (a SIPp UAS) has bound UDP port `port` on IPv4, as `/proc/net/udp`
/// shows it (read only: binding the port to probe it could make SIPp's own bind fail), 10 s.
pub fn wait_udp_bound(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let suffix = format!(":{port:04X}");
    loop {
        let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
        let bound = table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|local| local.ends_with(&suffix));
        if bound {
            return;
        }
        assert!(Instant::now() < deadline, "nothing bound udp port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
