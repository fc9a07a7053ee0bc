//! Issue 14: SIP over TLS (`proto_tls.so`, `socket=tls:`, RFC 3261 §18 and §26.2) with the
//! real `openssl s_client` as the client, on the tls_mgm domains proto_wss uses: an OPTIONS is
//! answered over the TLS connection, a CRLF CRLF ping gets its CRLF pong (RFC 5626 §4.4.1),
//! and a MESSAGE is relayed to a UAS over TCP (`proto_tcp.so` beside it), its 200 coming back
//! over TLS; MI `tls_conn_list` shows the TLS version and cipher.
mod common;
use common::tcp::*;
use common::udp::mi_call;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `openssl s_client -quiet` (stdout carries only what the server sent); killed on
/// drop.
struct SClient {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
}

impl SClient {
    fn connect(port: u16, ca: &std::path::Path) -> SClient {
        let mut child = Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-verify_return_error",
                "-verify_ip",
                "127.0.0.1",
            ])
            .arg("-connect")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(temp_dir("s_client").join("stderr.log")).unwrap())
            .spawn()
            .expect("the openssl command-line tool");
        let out = Arc::new(Mutex::new(Vec::new()));
        let (o, mut r) = (out.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let stdin = child.stdin.take().unwrap();
        SClient { child, stdin, out }
    }

    fn send(&mut self, data: &[u8]) {
        self.stdin.write_all(data).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Wait (10 s) until what the server sent, from `from` on, satisfies `f`; returns it all.
    fn wait(&self, what: &str, from: usize, f: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.out.lock().unwrap().clone();
            if f(got.get(from..).unwrap_or_default()) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "no {what}: got {:?}",
                String::from_utf8_lossy(&got)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the server's log if the test fails.
struct Dump(std::path::PathBuf);
impl Drop for Dump {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", std::fs::read_to_string(&self.0).unwrap_or_default());
        }
    }
}

fn config(pki: &std::path::Path, mi: u16, uas: u16) -> String {
    let p = pki.display();
    format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\nmi_http_port = {mi}\n\
         socket = tls:127.0.0.1:{{PORT}}\nsocket = tcp:127.0.0.1:{tcp}\n\
         loadmodule \"tls_mgm.so\"\n\
         modparam(\"tls_mgm\", \"certificate\", \"[default]{p}/cert.pem\")\n\
         modparam(\"tls_mgm\", \"private_key\", \"[default]{p}/key.pem\")\n\
         loadmodule \"proto_tls.so\"\nloadmodule \"proto_tcp.so\"\nloadmodule \"tm.so\"\n\
         route {{\n\
             if (is_method(\"OPTIONS\")) {{ sl_send_reply(200, \"OK\"); exit; }}\n\
             $du = \"sip:127.0.0.1:{uas};transport=tcp\";\n\
             t_relay();\n\
         }}\n",
        tcp = free_port()
    )
}

#[test]
fn sip_over_tls_with_openssl_s_client() {
    let pki = temp_dir("tls-sip-pki");
    make_cert_in(&pki, &[]);
    let uas_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uas_port = uas_l.local_addr().unwrap().port();
    let mi = free_port();
    let srv = Server::start(&config(&pki, mi, uas_port));
    let _dump = Dump(srv.log_path.clone());
    let mut c = SClient::connect(srv.port, &pki.join("ca.pem"));

    let opts =
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS client.invalid;branch=z9hG4bKtls1\r\n\
                Max-Forwards: 70\r\nTo: <sip:127.0.0.1>\r\nFrom: <sip:a@example.com>;tag=t1\r\n\
                Call-ID: tls-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    c.send(opts.as_bytes());
    let got = c.wait("the 200 to OPTIONS", 0, |b| sip_message_len(b).is_some());
    let n = sip_message_len(&got).unwrap();
    let r = String::from_utf8_lossy(&got[..n]).into_owned();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert!(
        header(&r, "Via")
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS client.invalid;branch=z9hG4bKtls1")),
        "{r}"
    );

    // RFC 5626 §4.4.1 over TLS.
    c.send(b"\r\n\r\n");
    let got = c.wait("the pong", n, |b| b == b"\r\n");
    let n = got.len();

    // A MESSAGE relayed to the UAS over TCP; its 200 comes back over TLS.
    let msg = "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TLS client.invalid;branch=z9hG4bKtls2\r\n\
               Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=t2\r\n\
               Call-ID: tls-2\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    c.send(msg.as_bytes());
    uas_l.set_nonblocking(false).unwrap();
    let (sock, _) = uas_l.accept().unwrap();
    let mut uas = TcpPeer::accepted(sock);
    let relayed = uas.recv_sip();
    let vias = headers(&relayed, "Via");
    assert!(
        vias.first()
            .is_some_and(|v| v.starts_with("SIP/2.0/TCP 127.0.0.1:")),
        "{relayed}"
    );
    assert!(
        vias.get(1)
            .is_some_and(|v| v.starts_with("SIP/2.0/TLS client.invalid;branch=z9hG4bKtls2")),
        "{relayed}"
    );
    uas.send(reply_to(&relayed, "200 OK", "bob").as_bytes());
    let got = c.wait("the relayed 200", n, |b| sip_message_len(b).is_some());
    let back = String::from_utf8_lossy(&got[n..]).into_owned();
    assert!(back.starts_with("SIP/2.0 200 OK\r\n"), "{back}");
    assert_eq!(header(&back, "Call-ID"), Some("tls-2"));

    // MI tls_conn_list (tls_mgm owns tls_list): the connection with its TLS version and cipher.
    let list = mi_call(mi, "tls_conn_list", json!([])).to_string();
    assert!(list.contains("TLSv1."), "{list}");
}

/// A running `openssl s_server -quiet` for one client (stdout: what the client sent; stdin:
/// what to send it); killed on drop.
struct SServer {
    child: Child,
    stdin: ChildStdin,
    out: Arc<Mutex<Vec<u8>>>,
}

impl SServer {
    fn start(port: u16, pki: &std::path::Path) -> SServer {
        let mut child = Command::new("openssl")
            .args(["s_server", "-quiet", "-naccept", "1"])
            .arg("-accept")
            .arg(port.to_string())
            .arg("-cert")
            .arg(pki.join("cert.pem"))
            .arg("-key")
            .arg(pki.join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the openssl command-line tool");
        let out = Arc::new(Mutex::new(Vec::new()));
        let (o, mut r) = (out.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let stdin = child.stdin.take().unwrap();
        wait_tcp_listening(port);
        SServer { child, stdin, out }
    }

    /// The first SIP message the client sent (10 s).
    fn recv_sip(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.out.lock().unwrap().clone();
            if let Some(n) = sip_message_len(&got) {
                return String::from_utf8_lossy(&got[..n]).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "s_server got no SIP message: {:?}",
                String::from_utf8_lossy(&got)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Outbound TLS: a request from a TCP client relayed to `sip:localhost:PORT;transport=tls`
/// (an `openssl s_server` whose certificate the client domain's `ca_list` trusts, checked
/// against the name `localhost`), and the answer back over TCP.
#[test]
fn a_request_is_relayed_over_an_outbound_tls_connection() {
    let pki = temp_dir("tls-out-pki");
    make_cert_in(&pki, &[]);
    let s_port = free_port();
    let p = pki.display();
    let tcp = free_port();
    let cfg = format!(
        "log_level = 3\nmpath = \"{{MPATH}}\"\n\
         socket = tls:127.0.0.1:{{PORT}}\nsocket = tcp:127.0.0.1:{tcp}\n\
         loadmodule \"tls_mgm.so\"\n\
         modparam(\"tls_mgm\", \"certificate\", \"[default]{p}/cert.pem\")\n\
         modparam(\"tls_mgm\", \"private_key\", \"[default]{p}/key.pem\")\n\
         modparam(\"tls_mgm\", \"ca_list\", \"[default]{p}/ca.pem\")\n\
         loadmodule \"proto_tls.so\"\nloadmodule \"proto_tcp.so\"\nloadmodule \"tm.so\"\n\
         modparam(\"proto_tls\", \"tls_connect_timeout\", 5000)\n\
         route {{\n\
             $du = \"sip:localhost:{s_port};transport=tls\";\n\
             t_relay();\n\
         }}\n"
    );
    let srv = Server::start(&cfg);
    let _dump = Dump(srv.log_path.clone());
    wait_tcp(&srv, tcp);
    let mut s_server = SServer::start(s_port, &pki);
    let mut c = TcpPeer::connect(tcp);
    let me = c.local();
    let msg = format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtlsout\r\n\
         Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=o1\r\n\
         Call-ID: tls-out\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    c.send(msg.as_bytes());
    let relayed = s_server.recv_sip();
    let vias = headers(&relayed, "Via");
    assert!(
        vias.first()
            .is_some_and(|v| v.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{};", srv.port))),
        "{relayed}"
    );
    s_server
        .stdin
        .write_all(reply_to(&relayed, "200 OK", "tlsbob").as_bytes())
        .unwrap();
    s_server.stdin.flush().unwrap();
    let r = c.recv_sip();
    assert!(r.starts_with("SIP/2.0 200 OK\r\n"), "{r}");
    assert_eq!(header(&r, "Call-ID"), Some("tls-out"));
}
