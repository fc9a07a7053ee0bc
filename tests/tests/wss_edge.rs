//! proto_wss edge cases against the real binary, with the real `openssl s_client` and raw TCP
//! sockets (the tests crate has no TLS library of its own):
//! * TLS 1.0 and 1.1 are refused by the server (the client offers them at security level 0,
//!   so the refusal is the server's), logged once naming the peer; TLS 1.2 and 1.3 are served
//!   with verification on, through to a WebSocket and a SIP OPTIONS;
//! * plain HTTP and a plain WebSocket upgrade sent to the TLS port are closed, one line each;
//! * a client that stalls inside the TLS handshake is closed at `wss_tls_handshake_timeout`;
//! * 1,000 stalled TLS handshakes do not delay a witness;
//! * an unknown SNI, or none, gets the default domain's certificate; a known one its domain's;
//! * a client-initiated renegotiation is refused, and a fresh connection is still served.
//!
//! Certificates are made per test by `conf/tls/make-cert.sh`. Waits are on conditions with
//! deadlines; a peer is identified by its exact address:port (`s_client -bind` to a free port
//! of a loopback address that only that connection uses).
mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Certificates and configuration

/// A test CA and a server certificate for `names` (first = CN) in a fresh directory.
fn make_certs(names: &[&str]) -> PathBuf {
    let dir = temp_dir("wss-pki");
    make_cert_in(&dir, names);
    dir
}

/// A wss socket on `{PORT}` with the default server domain from `pki`; `tls_extra` and
/// `wss_params` are more modparam lines. OPTIONS to the server are answered 200.
fn config(pki: &Path, tls_extra: &str, wss_params: &str) -> String {
    let p = pki.display();
    format!(
        "log_level = 3\n\
         mpath = \"{{MPATH}}\"\n\
         socket = wss:127.0.0.1:{{PORT}}\n\
         loadmodule \"tls_mgm.so\"\n\
         modparam(\"tls_mgm\", \"certificate\", \"[default]{p}/cert.pem\")\n\
         modparam(\"tls_mgm\", \"private_key\", \"[default]{p}/key.pem\")\n\
         modparam(\"tls_mgm\", \"tls_method\", \"[default]TLSv1_2-\")\n\
         {tls_extra}\n\
         loadmodule \"proto_wss.so\"\n\
         modparam(\"proto_wss\", \"require_origin\", 0)\n\
         {wss_params}\n"
    ) + r#"
route {
    if (is_method("OPTIONS") && $rU == NULL) { sl_send_reply(200, "OK"); exit; }
    sl_send_reply(404, "Not Found");
}
"#
}

fn wss_param(name: &str, v: u64) -> String {
    format!("modparam(\"proto_wss\", \"{name}\", {v})\n")
}

// ---------------------------------------------------------------------------------------------
// Server log

/// Does `line` name exactly `peer` (`peer=IP:PORT` not followed by another digit)?
fn names_peer(line: &str, peer: SocketAddr) -> bool {
    let needle = format!("peer={peer}");
    line.match_indices(&needle).any(|(i, _)| {
        !line[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Log lines at WARN or ERR naming `peer`.
fn warnings_about(log: &str, peer: SocketAddr) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERR") || l.contains(" ERROR "))
        .filter(|l| names_peer(l, peer))
        .map(str::to_string)
        .collect()
}

/// Wait until one WARN/ERR line names `peer` and contains every needle; returns that line.
fn wait_warning(srv: &Server, peer: SocketAddr, needles: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = srv.log();
        if let Some(l) = warnings_about(&log, peer)
            .into_iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no WARN line naming {peer} with {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A settling point: two more connections (one per I/O worker, at most) that stall in the TLS
/// handshake; once the server has logged both of their timeouts, anything due for connections
/// made before them (their own handshake timeouts included) has been logged too.
fn settle(srv: &Server, timeout: Duration) {
    let markers: Vec<(TcpStream, SocketAddr)> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(srv.addr).unwrap();
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
            let a = s.local_addr().unwrap();
            (s, a)
        })
        .collect();
    for (_, peer) in &markers {
        wait_warning(srv, *peer, &["tls handshake timeout"], timeout);
    }
}

/// Assert exactly one WARN/ERR line names `peer`; returns it.
fn one_warning(srv: &Server, peer: SocketAddr) -> String {
    let log = srv.log();
    let w = warnings_about(&log, peer);
    assert_eq!(w.len(), 1, "one line for {peer}: {w:#?}\n{log}");
    w.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Raw TCP

/// A free port on loopback address `ip` (bound then released), for `s_client -bind`.
fn local_addr_on(ip: &str) -> SocketAddr {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap()
}

/// Read until the server closes (EOF or reset) within `timeout`; panics if it stays open.
/// Returns how long it took and what was read.
fn wait_closed(s: &mut TcpStream, timeout: Duration) -> (Duration, Vec<u8>) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(t0.elapsed());
        assert!(
            !left.is_zero(),
            "still open after {timeout:?} (read {got:?})"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (t0.elapsed(), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (t0.elapsed(), got), // reset: closed too
        }
    }
}

/// The first 20 bytes of a TLS 1.2 ClientHello announcing 200 bytes: record header, handshake
/// header, client_version and the start of the random.
const PARTIAL_HELLO: [u8; 20] = [
    0x16, 0x03, 0x01, 0x00, 0xc8, // handshake record, 200 bytes
    0x01, 0x00, 0x00, 0xc4, // ClientHello, 196 bytes
    0x03, 0x03, // TLS 1.2
    0x5a, 0x17, 0x3c, 0x91, 0x08, 0xee, 0x42, 0x7d, 0x66, // random...
];

// ---------------------------------------------------------------------------------------------
// openssl s_client

/// A running `openssl s_client`; stdout and stderr collected by threads; killed on drop.
struct SClient {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    args: Vec<String>,
}

impl SClient {
    fn spawn(args: &[String]) -> SClient {
        let mut child = Command::new("openssl")
            .arg("s_client")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command-line tool");
        let collect = |mut r: Box<dyn Read + Send>| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let b = buf.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = r.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    b.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            buf
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        let stdin = child.stdin.take();
        SClient {
            child,
            stdin,
            out,
            err,
            args: args.to_vec(),
        }
    }

    fn stdout(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    fn all_text(&self) -> String {
        format!(
            "--- stdout:\n{}\n--- stderr:\n{}",
            String::from_utf8_lossy(&self.stdout()),
            self.stderr()
        )
    }

    fn write(&mut self, data: &[u8]) {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(data).unwrap();
        w.flush().unwrap();
    }

    /// Close stdin (s_client without -ign_eof then closes the connection and exits).
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Wait until `f(stdout, stderr)` holds; panics with the output after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, mut f: impl FnMut(&[u8], &str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if f(&self.stdout(), &self.stderr()) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader threads drain what it wrote before it exited.
                std::thread::sleep(Duration::from_millis(50));
                if f(&self.stdout(), &self.stderr()) {
                    return;
                }
                panic!(
                    "s_client {:?} exited ({st}) before {what}:\n{}",
                    self.args,
                    self.all_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "s_client {:?}: no {what} within {timeout:?}:\n{}",
                self.args,
                self.all_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the process to exit by itself, then for its output to be drained.
    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "s_client {:?} did not exit within {timeout:?}:\n{}",
                self.args,
                self.all_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The pipes close when it exits: wait for the readers to see EOF (bounded).
        let drained = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&self.out) > 1 || Arc::strong_count(&self.err) > 1 {
            if Instant::now() > drained {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        st
    }
}

impl Drop for SClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

/// `s_client -connect` to the server from `bind`, verifying the server with `ca` (also its IP
/// address, which make-cert.sh puts in the certificate), plus `extra`.
fn s_client_args(srv: &Server, bind: SocketAddr, ca: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec![
        s("-connect"),
        s(srv.addr),
        s("-bind"),
        s(bind),
        s("-CAfile"),
        s(ca.display()),
        s("-verify_return_error"),
        s("-verify_ip"),
        s("127.0.0.1"),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

// ---------------------------------------------------------------------------------------------
// WebSocket over s_client

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's example: the accept value of `WS_KEY`.
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn ws_upgrade(port: u16) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n"
    )
}

/// A masked client text frame (RFC 6455 §5.2, §5.3).
fn client_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81u8];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The first complete unmasked server frame in `buf`: (opcode, payload).
fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 2 {
        return None;
    }
    let (op, len7) = (buf[0] & 0x0f, (buf[1] & 0x7f) as usize);
    let (len, at) = match len7 {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n, 2),
    };
    (buf.len() >= at + len).then(|| (op, buf[at..at + len].to_vec()))
}

fn http_head(out: &[u8]) -> Option<(String, usize)> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    Some((String::from_utf8_lossy(&out[..end]).into_owned(), end))
}

/// Over an s_client (started with `-brief` or `-quiet`, so that stdout carries only the
/// server's data) whose TLS handshake is done: upgrade to a `sip` WebSocket (101), then send
/// an OPTIONS and expect its 200.
fn websocket_options(c: &mut SClient, port: u16, n: u32, timeout: Duration) {
    c.write(ws_upgrade(port).as_bytes());
    c.wait_for("the 101", timeout, |o, _| http_head(o).is_some());
    let out = c.stdout();
    let (head, end) = http_head(&out).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains(&format!("Sec-WebSocket-Accept: {WS_ACCEPT}\r\n")),
        "{head}"
    );
    let req = options_request(&format!("wss-edge-{n}@test"), &format!("z9hG4bKwe{n}"), n);
    c.write(&client_text_frame(req.as_bytes()));
    c.wait_for("the reply frame", timeout, |o, _| {
        o.len() > end && server_frame(&o[end..]).is_some()
    });
    let (op, payload) = server_frame(&c.stdout()[end..]).unwrap();
    let reply = String::from_utf8_lossy(&payload).into_owned();
    assert_eq!(op, 1, "{reply}");
    assert!(reply.starts_with("SIP/2.0 200 "), "{reply}");
    assert_eq!(
        header(&reply, "Call-ID"),
        Some(&*format!("wss-edge-{n}@test"))
    );
}

/// A full client: TLS (verified, `-brief`, any `extra` such as `-tls1_2`), WebSocket, OPTIONS
/// answered 200; returns the s_client's brief summary (stderr) and how long it all took.
fn sip_client(
    srv: &Server,
    bind: SocketAddr,
    ca: &Path,
    extra: &[&str],
    n: u32,
    timeout: Duration,
) -> (String, Duration) {
    let t0 = Instant::now();
    let mut args = vec!["-brief", "-nocommands"];
    args.extend_from_slice(extra);
    let mut c = SClient::spawn(&s_client_args(srv, bind, ca, &args));
    c.wait_for("the TLS handshake", timeout, |_, e| {
        e.contains("CONNECTION ESTABLISHED")
    });
    websocket_options(&mut c, srv.port, n, timeout);
    let took = t0.elapsed();
    let summary = c.stderr();
    assert!(summary.contains("Verification: OK"), "{summary}");
    // End of input: s_client closes the connection and exits cleanly.
    c.close_stdin();
    let st = c.wait_exit(Duration::from_secs(10));
    assert!(st.success(), "{st}:\n{}", c.all_text());
    (summary, took)
}

// ---------------------------------------------------------------------------------------------
// 1. Protocol versions

#[test]
fn tls_1_0_and_1_1_are_refused_by_the_server_and_1_2_and_1_3_are_served() {
    let pki = make_certs(&[]);
    let ca = pki.join("ca.pem");
    let srv = Server::start(&config(
        &pki,
        "",
        &wss_param("wss_tls_handshake_timeout", 2000),
    ));
    let mut refused = Vec::new();
    for (flag, ip) in [("-tls1", "127.0.0.11"), ("-tls1_1", "127.0.0.12")] {
        let bind = local_addr_on(ip);
        // Security level 0: OpenSSL 3's client would otherwise refuse these versions itself.
        let mut c = SClient::spawn(&s_client_args(
            &srv,
            bind,
            &ca,
            &[flag, "-cipher", "DEFAULT@SECLEVEL=0"],
        ));
        c.close_stdin();
        let st = c.wait_exit(Duration::from_secs(10));
        let text = c.all_text();
        assert!(!st.success(), "{flag} handshake succeeded:\n{text}");
        // The client sent its ClientHello and got the server's protocol_version alert (70).
        assert!(
            text.contains("alert protocol version"),
            "{flag}: not the server's refusal:\n{text}"
        );
        assert!(text.contains("Cipher is (NONE)"), "{text}");
        // Server side: one line naming this client, with OpenSSL's protocol reason.
        let line = wait_warning(
            &srv,
            bind,
            &["tls handshake failed", "unsupported protocol"],
            Duration::from_secs(10),
        );
        eprintln!("{flag}: {line}");
        refused.push(bind);
    }
    let mut served = Vec::new();
    for (n, (flag, ip, name)) in [
        ("-tls1_2", "127.0.0.13", "TLSv1.2"),
        ("-tls1_3", "127.0.0.14", "TLSv1.3"),
    ]
    .into_iter()
    .enumerate()
    {
        let bind = local_addr_on(ip);
        served.push(bind);
        let (summary, _) = sip_client(&srv, bind, &ca, &[flag], n as u32, Duration::from_secs(10));
        assert!(
            summary.contains(&format!("Protocol version: {name}")),
            "{summary}"
        );
    }
    settle(&srv, Duration::from_secs(15));
    for peer in refused {
        one_warning(&srv, peer);
    }
    for peer in served {
        assert_eq!(warnings_about(&srv.log(), peer), Vec::<String>::new());
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Not TLS at all

#[test]
fn plain_http_and_a_plain_websocket_upgrade_are_closed_with_one_line_each() {
    let pki = make_certs(&[]);
    let srv = Server::start(&config(
        &pki,
        "",
        &wss_param("wss_tls_handshake_timeout", 300),
    ));
    let mut peers = Vec::new();
    for req in [
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string(),
        ws_upgrade(srv.port),
    ] {
        let mut c = TcpStream::connect(srv.addr).unwrap();
        let peer = c.local_addr().unwrap();
        c.write_all(req.as_bytes()).unwrap();
        let (_, got) = wait_closed(&mut c, Duration::from_secs(10));
        assert!(
            !got.starts_with(b"HTTP/"),
            "answered in plain HTTP: {:?}",
            String::from_utf8_lossy(&got)
        );
        let line = wait_warning(
            &srv,
            peer,
            &["tls handshake failed"],
            Duration::from_secs(10),
        );
        assert!(line.contains("http request"), "OpenSSL's reason: {line}");
        peers.push(peer);
    }
    // Once every timer due for them has fired: still one line each (e.g. no later
    // "tls handshake timeout" for a connection already closed).
    settle(&srv, Duration::from_secs(10));
    for peer in peers {
        one_warning(&srv, peer);
    }
    // TLS is still served.
    sip_client(
        &srv,
        local_addr_on("127.0.0.21"),
        &pki.join("ca.pem"),
        &[],
        1,
        Duration::from_secs(10),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A handshake that stops half-way

#[test]
fn a_client_stalled_in_the_tls_handshake_is_closed_at_the_deadline() {
    let pki = make_certs(&[]);
    let srv = Server::start(&config(
        &pki,
        "",
        &wss_param("wss_tls_handshake_timeout", 300),
    ));
    let cases: [(&str, &[u8]); 3] = [
        ("20 bytes of a ClientHello", &PARTIAL_HELLO),
        ("a record header only", &PARTIAL_HELLO[..5]),
        ("nothing", &[]),
    ];
    // All at once: each is closed by its own deadline.
    let mut conns: Vec<(&str, TcpStream, SocketAddr, Instant)> = cases
        .iter()
        .map(|(what, bytes)| {
            let mut c = TcpStream::connect(srv.addr).unwrap();
            let t0 = Instant::now();
            c.write_all(bytes).unwrap();
            let peer = c.local_addr().unwrap();
            (*what, c, peer, t0)
        })
        .collect();
    for (what, c, peer, t0) in &mut conns {
        let (_, got) = wait_closed(c, Duration::from_secs(5).saturating_sub(t0.elapsed()));
        let took = t0.elapsed();
        eprintln!("{what}: closed after {took:?}");
        assert!(got.is_empty() || got[0] == 0x15, "{what}: sent {got:?}");
        assert!(
            took >= Duration::from_millis(250),
            "{what}: closed after {took:?}, before the 300 ms deadline"
        );
        if !what.starts_with("nothing") {
            wait_warning(
                &srv,
                *peer,
                &["tls handshake timeout"],
                Duration::from_secs(10),
            );
        }
    }
    settle(&srv, Duration::from_secs(10));
    for (what, _, peer, _) in &conns {
        let w = warnings_about(&srv.log(), *peer);
        assert!(w.len() <= 1, "{what}: {w:#?}");
    }
    assert!(srv.log().lines().all(|l| !l.contains("panic")));
}

// ---------------------------------------------------------------------------------------------
// 4. Many stalled handshakes and a witness

/// The remote addresses of the TCP connections process `pid` holds open (its socket fds,
/// looked up by inode in `/proc/net/tcp`).
fn held_peers(pid: u32) -> std::collections::HashSet<SocketAddr> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|p| {
            let p = p.to_string_lossy().into_owned();
            Some(p.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if !inodes.contains(*f.get(9)?) {
                return None;
            }
            let (ip, port) = f[2].split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?.to_ne_bytes();
            let port = u16::from_str_radix(port, 16).ok()?;
            Some(SocketAddr::from((ip, port)))
        })
        .collect()
}

/// User + system CPU time of process `pid` so far (assuming 100 clock ticks a second).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[test]
fn a_thousand_stalled_tls_handshakes_do_not_delay_a_witness() {
    const STALLED: usize = 1000;
    const IPS: usize = 8; // 125 per source address, under the per-IP limit of 128
    let pki = make_certs(&[]);
    // Long enough that none times out during the test, even on a loaded machine.
    let params = wss_param("wss_tls_handshake_timeout", 600_000)
        + &wss_param("wss_max_connections", 4096)
        + &wss_param("wss_max_connections_per_ip", 128);
    let mut srv = Server::start_wrapped(&config(&pki, "", &params), &["prlimit", "--nofile=8192"]);
    let pid = srv.child.id();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let addr = srv.addr;
    let t_open = Instant::now();
    let cpu0 = cpu_time(pid);
    let stalled: Vec<(TcpStream, SocketAddr)> = rt.block_on(async move {
        let mut v = Vec::with_capacity(STALLED);
        for i in 0..STALLED {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            let src = format!("127.0.0.{}:0", 1 + i % IPS);
            sock.bind(src.parse().unwrap()).unwrap();
            let tcp = sock.connect(addr).await.unwrap();
            let mut std = tcp.into_std().unwrap();
            std.set_nonblocking(false).unwrap();
            std.write_all(&PARTIAL_HELLO).unwrap();
            let peer = std.local_addr().unwrap();
            v.push((std, peer));
        }
        v
    });
    eprintln!("{STALLED} connected in {:?}", t_open.elapsed());
    // All accepted and held by the server (not just queued in the listen backlog).
    let missing = |held: &std::collections::HashSet<SocketAddr>| {
        stalled.iter().filter(|(_, p)| !held.contains(p)).count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = missing(&held_peers(pid));
        if m == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server holds {} of {STALLED} connections:\n{}",
            STALLED - m,
            srv.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{STALLED} stalled handshakes open and accepted in {:?} (server CPU {:?})",
        t_open.elapsed(),
        cpu_time(pid).saturating_sub(cpu0)
    );

    // The witness, from an address of its own: TLS, 101 and 200 within 2 s.
    let (summary, took) = sip_client(
        &srv,
        local_addr_on("127.0.0.9"),
        &pki.join("ca.pem"),
        &[],
        1,
        Duration::from_secs(10),
    );
    eprintln!("witness: TLS + 101 + 200 in {took:?}");
    assert!(summary.contains("Protocol version: TLSv1.3"), "{summary}");
    assert!(
        took < Duration::from_secs(2),
        "the witness took {took:?} with {STALLED} stalled handshakes"
    );

    // They were all still held while the witness was served.
    assert_eq!(missing(&held_peers(pid)), 0, "the server closed some");
    for (s, peer) in &stalled {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 16];
        match (&*s).read(&mut b) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("stalled connection {peer} was closed: {other:?}"),
        }
    }
    let log = srv.log();
    let closed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tls handshake") || l.contains("connection limit"))
        .collect();
    assert!(closed.is_empty(), "{closed:#?}");
    assert!(srv.alive());
    drop(stalled);
}

// ---------------------------------------------------------------------------------------------
// 5. SNI

/// The certificate the server presents for `servername` (`None`: no SNI), as
/// (`openssl x509 -noout -subject`, SHA-256 fingerprint), after a handshake verified with `ca`.
fn presented_cert(srv: &Server, servername: Option<&str>, ca: &Path) -> (String, String) {
    let mut extra = vec!["-showcerts"];
    match servername {
        Some(n) => extra.extend(["-servername", n]),
        None => extra.push("-noservername"),
    }
    let ip = "127.0.0.31";
    let mut c = SClient::spawn(&s_client_args(srv, local_addr_on(ip), ca, &extra));
    c.close_stdin();
    let st = c.wait_exit(Duration::from_secs(10));
    let text = c.all_text();
    assert!(st.success(), "{servername:?}: {st}\n{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    let out = String::from_utf8_lossy(&c.stdout()).into_owned();
    let begin = out.find("-----BEGIN CERTIFICATE-----").expect(&text);
    let end = out[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    x509_id(&out.as_bytes()[begin..end])
}

/// (`subject=...`, `sha256 Fingerprint=...`) of a PEM certificate.
fn x509_id(pem: &[u8]) -> (String, String) {
    let run = |opt: &[&str]| {
        let mut c = Command::new("openssl")
            .args(["x509", "-noout"])
            .args(opt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(pem).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    (run(&["-subject"]), run(&["-fingerprint", "-sha256"]))
}

#[test]
fn an_unknown_sni_or_none_gets_the_default_domain() {
    let a = make_certs(&["localhost", "127.0.0.1"]);
    let b = make_certs(&["other.example", "127.0.0.1"]);
    let bp = b.display();
    let other = format!(
        "modparam(\"tls_mgm\", \"server_domain\", \"other\")\n\
         modparam(\"tls_mgm\", \"match_sip_domain\", \"[other]other.example\")\n\
         modparam(\"tls_mgm\", \"certificate\", \"[other]{bp}/cert.pem\")\n\
         modparam(\"tls_mgm\", \"private_key\", \"[other]{bp}/key.pem\")\n\
         modparam(\"tls_mgm\", \"tls_method\", \"[other]TLSv1_2-\")\n"
    );
    let srv = Server::start(&config(&a, &other, ""));
    let cert_a = x509_id(&std::fs::read(a.join("cert.pem")).unwrap());
    let cert_b = x509_id(&std::fs::read(b.join("cert.pem")).unwrap());
    assert_eq!(cert_a.0, "subject=CN = localhost");
    assert_eq!(cert_b.0, "subject=CN = other.example");
    let (ca_a, ca_b) = (a.join("ca.pem"), b.join("ca.pem"));
    // Each verified against its own CA (the two are different CAs).
    assert_eq!(presented_cert(&srv, Some("other.example"), &ca_b), cert_b);
    assert_eq!(presented_cert(&srv, Some("nobody.example"), &ca_a), cert_a);
    assert_eq!(presented_cert(&srv, None, &ca_a), cert_a);
    // Names match whole: a longer or shorter one is not `other.example`.
    assert_eq!(presented_cert(&srv, Some("x.other.example"), &ca_a), cert_a);
    assert_eq!(presented_cert(&srv, Some("OTHER.EXAMPLE"), &ca_b), cert_b);
    assert!(
        srv.log().lines().all(|l| !l.contains(" WARN ")),
        "{}",
        srv.log()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Renegotiation

/// Ask for a TLS 1.2 renegotiation with s_client's `R` command at `stage`; it must fail.
fn renegotiation_refused(srv: &Server, ca: &Path, ip: &str, after_websocket: bool) {
    let bind = local_addr_on(ip);
    let mut c = SClient::spawn(&s_client_args(srv, bind, ca, &["-tls1_2", "-brief"]));
    c.wait_for("the TLS handshake", Duration::from_secs(10), |_, e| {
        e.contains("CONNECTION ESTABLISHED")
    });
    if after_websocket {
        websocket_options(&mut c, srv.port, 7, Duration::from_secs(10));
    }
    c.write(b"R\n");
    // stdin stays open: s_client exits only because the renegotiation failed.
    let st = c.wait_exit(Duration::from_secs(10));
    let text = c.all_text();
    eprintln!("renegotiation (after websocket: {after_websocket}): {st}\n{text}");
    assert!(text.contains("RENEGOTIATING"), "{text}");
    assert!(!st.success(), "s_client succeeded:\n{text}");
    assert!(
        text.contains("no renegotiation"),
        "not the server's no_renegotiation refusal:\n{text}"
    );
}

#[test]
fn a_client_initiated_renegotiation_is_refused_and_a_fresh_connection_works() {
    let pki = make_certs(&[]);
    let ca = pki.join("ca.pem");
    let mut srv = Server::start(&config(&pki, "", ""));
    // During the WebSocket handshake phase, and on an open WebSocket.
    renegotiation_refused(&srv, &ca, "127.0.0.41", false);
    renegotiation_refused(&srv, &ca, "127.0.0.42", true);
    assert!(srv.alive());
    let (summary, _) = sip_client(
        &srv,
        local_addr_on("127.0.0.43"),
        &ca,
        &["-tls1_2"],
        9,
        Duration::from_secs(10),
    );
    assert!(summary.contains("Protocol version: TLSv1.2"), "{summary}");
    sip_client(
        &srv,
        local_addr_on("127.0.0.44"),
        &ca,
        &[],
        10,
        Duration::from_secs(10),
    );
    eprintln!("server log:\n{}", srv.log());
}
