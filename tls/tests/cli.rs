//! Our sessions against an independent peer: the `openssl s_client` / `s_server` command-line
//! tools (OpenSSL's own, not this crate's configuration).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use sipcore_tls::{Io, Progress, SessionError, TlsContexts, TlsSession};

struct Setup {
    _dir: tempfile::TempDir,
    ca: String,
    cert: String,
    key: String,
    server: Arc<TlsContexts>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::ca("CLI test CA");
    let ca_file = write_ca(dir.path(), "ca", &ca);
    let (cert, key) = write(dir.path(), "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let server = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
    ]);
    Setup {
        ca: s(&ca_file),
        cert: s(&cert),
        key: s(&key),
        server,
        _dir: dir,
    }
}

fn s_client(port: u16, ca: &str, extra: &[&str], stdin: Stdio) -> Child {
    Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "a.example",
        ])
        .args(["-CAfile", ca, "-verify_return_error"])
        .args(extra)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command-line tool")
}

/// Accepts one connection on `l` and runs our server handshake to its end.
fn accept_and_handshake(
    l: &TcpListener,
    set: &Arc<TlsContexts>,
) -> (Session, Result<(), SessionError>) {
    let start = Instant::now();
    let stream = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(_) => {
                assert!(start.elapsed() < DEADLINE, "s_client did not connect");
                pause();
            }
        }
    };
    stream.set_nonblocking(true).unwrap();
    let local = stream.local_addr().unwrap();
    let mut sess = TlsSession::server(set, local, stream).unwrap();
    loop {
        assert!(
            start.elapsed() < DEADLINE,
            "handshake did not end before the deadline"
        );
        match sess.handshake() {
            Ok(Progress::Done) => return (sess, Ok(())),
            Ok(_) => pause(),
            Err(e) => return (sess, Err(e)),
        }
    }
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn s_client_tls13_and_tls12_connect_and_tls11_tls10_are_refused() {
    let st = setup();
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let (l, port) = listener();
        let child = s_client(port, &st.ca, &[flag, "-brief"], Stdio::null());
        let (sess, res) = accept_and_handshake(&l, &st.server);
        res.unwrap();
        assert_eq!(sess.info().version, version);
        let out = wait_output(child);
        assert!(
            out.contains(&format!("Protocol version: {version}")),
            "{out}"
        );
        assert!(out.contains("Verification: OK"), "{out}");
    }
    // SECLEVEL=0 lets this OpenSSL offer TLS 1.0/1.1 at all, so it is our server that refuses.
    for flag in ["-tls1_1", "-tls1"] {
        let (l, port) = listener();
        let child = s_client(
            port,
            &st.ca,
            &[flag, "-cipher", "DEFAULT@SECLEVEL=0"],
            Stdio::null(),
        );
        let (_, res) = accept_and_handshake(&l, &st.server);
        let err = res
            .expect_err("an old protocol version was accepted")
            .to_string();
        assert!(err.contains("unsupported protocol"), "{flag}: {err}");
        let out = wait_output(child);
        assert!(out.contains("alert protocol version"), "{flag}: {out}");
    }
}

#[test]
fn s_client_renegotiation_is_refused() {
    let st = setup();
    let (l, port) = listener();
    let mut child = s_client(port, &st.ca, &["-tls1_2"], Stdio::piped());
    let (mut sess, res) = accept_and_handshake(&l, &st.server);
    res.unwrap();
    // s_client's "R" command starts a TLS 1.2 renegotiation (RFC 5746).
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"R\n").unwrap();
    stdin.flush().unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let server_end = loop {
        assert!(
            start.elapsed() < DEADLINE,
            "the renegotiation attempt did not end"
        );
        match sess.read(&mut buf) {
            Ok(Io::Ready(0)) => break "closed".to_string(),
            Ok(Io::Ready(n)) => panic!("unexpected data: {:?}", &buf[..n]),
            Ok(_) => pause(),
            Err(e) => break e.to_string(),
        }
    };
    let out = wait_output(child);
    drop(stdin);
    assert!(out.contains("RENEGOTIATING"), "{out}");
    assert!(
        out.to_lowercase().contains("no renegotiation"),
        "s_client: {out}\nserver: {server_end}"
    );
}

#[test]
fn tls12_session_ticket_resumes() {
    let st = setup();
    let sess_file = st._dir.path().join("session.pem");
    let sess_file = s(&sess_file);
    let mut reused = Vec::new();
    for flag in ["-sess_out", "-sess_in"] {
        let (l, port) = listener();
        let child = s_client(port, &st.ca, &["-tls1_2", flag, &sess_file], Stdio::null());
        let (sess, res) = accept_and_handshake(&l, &st.server);
        res.unwrap();
        reused.push(sess.info().resumed);
        drop(sess);
        let out = wait_output(child);
        assert_eq!(out.contains("Reused, TLSv1.2"), flag == "-sess_in", "{out}");
        assert!(
            out.contains("TLS session ticket:"),
            "no ticket issued: {out}"
        );
    }
    assert_eq!(reused, [false, true]);
}

fn s_server(cert: &str, key: &str, extra: &[&str]) -> (Child, u16) {
    let mut child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            "127.0.0.1:0",
            "-naccept",
            "1",
            "-www",
        ])
        .args(["-cert", cert, "-key", key])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command-line tool");
    match child.stdout.take().and_then(listening_port) {
        Some(port) => (child, port),
        None => {
            let _ = child.kill();
            let status = child.wait();
            panic!("s_server did not start listening: {status:?}");
        }
    }
}

/// Reads s_server's "ACCEPT <addr>:<port>" line (None if it exits first), then drains the rest
/// of its output in the background so it never blocks on a full pipe.
fn listening_port(stdout: std::process::ChildStdout) -> Option<u16> {
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
            let port = addr.rsplit(':').next()?.parse().ok()?;
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return Some(port);
        }
    }
}

#[test]
fn our_client_against_s_server_tls13_and_tls12() {
    let st = setup();
    let client = contexts(&[("ca_list", format!("[default]{}", st.ca))]);
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let (child, port) = s_server(&st.cert, &st.key, &[flag]);
        let dest: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let tcp = std::net::TcpStream::connect(dest).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut sess = TlsSession::client(&client, dest, Some("a.example"), tcp).unwrap();
        let start = Instant::now();
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "handshake did not end before the deadline"
            );
            match sess.handshake().unwrap() {
                Progress::Done => break,
                _ => pause(),
            }
        }
        assert_eq!(sess.info().version, version);
        send(&mut sess, b"GET / HTTP/1.0\r\n\r\n");
        let mut page = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            assert!(start.elapsed() < DEADLINE, "no answer before the deadline");
            match sess.read(&mut buf) {
                Ok(Io::Ready(0)) => break,
                Ok(Io::Ready(n)) => page.extend_from_slice(&buf[..n]),
                Ok(_) => pause(),
                Err(_) => break, // s_server -www closes without close_notify
            }
        }
        let page = String::from_utf8_lossy(&page);
        assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
        assert!(page.contains(version), "{page}");
        drop(sess);
        wait_output(child);
    }
}
