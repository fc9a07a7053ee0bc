//! Test helpers: a PKI made at test time (nothing committed that could expire), loopback TCP
//! pairs set non-blocking, and loops that drive sessions with deadlines instead of sleeps.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509};
use sipcore_tls::{Io, Progress, SessionError, TlsConfig, TlsContexts, TlsSession};

/// Generous: the machine's two cores may be busy; every wait ends on its condition first.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Ec,
    Rsa,
}

/// A certificate and its key.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn key(kind: Kind) -> PKey<Private> {
    match kind {
        Kind::Ec => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
        }
        Kind::Rsa => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
    }
}

fn builder(cn: &str, key: &PKey<Private>) -> openssl::x509::X509Builder {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now - 3600).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + 86400).unwrap())
        .unwrap();
    b.set_pubkey(key).unwrap();
    b
}

/// A self-signed CA (ECDSA P-256).
pub fn ca(cn: &str) -> Issued {
    let key = key(Kind::Ec);
    let mut b = builder(cn, &key);
    let subject = {
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        n.build()
    };
    b.set_issuer_name(&subject).unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    Issued {
        cert: b.build(),
        key,
    }
}

/// A leaf certificate for `names` (DNS names, or IP addresses) signed by `ca`.
pub fn leaf(ca: &Issued, names: &[&str], kind: Kind, client: bool) -> Issued {
    let key = key(kind);
    let mut b = builder(names[0], &key);
    b.set_issuer_name(ca.cert.subject_name()).unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    let mut usage = KeyUsage::new();
    usage.critical().digital_signature();
    if let Kind::Rsa = kind {
        usage.key_encipherment();
    }
    b.append_extension(usage.build().unwrap()).unwrap();
    let mut eku = ExtendedKeyUsage::new();
    if client {
        eku.client_auth();
    } else {
        eku.server_auth();
    }
    b.append_extension(eku.build().unwrap()).unwrap();
    let mut san = SubjectAlternativeName::new();
    for n in names {
        if n.parse::<std::net::IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san.build(&b.x509v3_context(Some(&ca.cert), None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    Issued {
        cert: b.build(),
        key,
    }
}

/// Writes `<name>.pem` (certificate) and `<name>.key` (PKCS#8 key) in `dir`.
pub fn write(dir: &Path, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, issued.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&key, issued.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, key)
}

/// Writes a CA certificate as `<name>.pem`.
pub fn write_ca(dir: &Path, name: &str, ca: &Issued) -> PathBuf {
    let p = dir.join(format!("{name}.pem"));
    std::fs::write(&p, ca.cert.to_pem().unwrap()).unwrap();
    p
}

/// A path as a modparam value.
pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Builds contexts from modparam pairs.
pub fn contexts(params: &[(&str, String)]) -> Arc<TlsContexts> {
    let cfg = TlsConfig::from_params(params.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
    TlsContexts::build(&cfg).unwrap()
}

/// A connected loopback pair, both ends non-blocking: (accepted, connecting, local address of
/// the accepted end).
pub fn pair() -> (TcpStream, TcpStream, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_nonblocking(true).unwrap();
    let local = server.local_addr().unwrap();
    (server, client, local)
}

pub type Session = TlsSession<TcpStream>;

/// Drives both handshakes to their ends. A side that fails is dropped (closing its socket) so
/// the other side ends too.
pub fn handshake(
    server: Session,
    client: Session,
) -> (Result<Session, SessionError>, Result<Session, SessionError>) {
    let mut sides = [Step::Running(server), Step::Running(client)];
    let start = Instant::now();
    while sides.iter().any(|s| matches!(s, Step::Running(_))) {
        assert!(
            start.elapsed() < DEADLINE,
            "handshake did not end before the deadline"
        );
        for side in sides.iter_mut() {
            if let Step::Running(sess) = side {
                match sess.handshake() {
                    Ok(Progress::Done) => *side = Step::Done(take(side)),
                    Ok(_) => {}
                    Err(e) => *side = Step::Failed(e),
                }
            }
        }
        std::thread::yield_now();
    }
    let [a, b] = sides;
    (a.result(), b.result())
}

enum Step {
    Running(Session),
    Done(Session),
    Failed(SessionError),
    Taken,
}

fn take(step: &mut Step) -> Session {
    match std::mem::replace(step, Step::Taken) {
        Step::Running(s) => s,
        _ => unreachable!(),
    }
}

impl Step {
    fn result(self) -> Result<Session, SessionError> {
        match self {
            Step::Done(s) => Ok(s),
            Step::Failed(e) => Err(e),
            _ => unreachable!(),
        }
    }
}

/// Writes all of `data`, retrying on want-read/want-write until the deadline.
pub fn send(sess: &mut Session, data: &[u8]) {
    let start = Instant::now();
    let mut off = 0;
    while off < data.len() {
        assert!(
            start.elapsed() < DEADLINE,
            "write did not finish before the deadline"
        );
        match sess.write(&data[off..]).unwrap() {
            Io::Ready(n) => off += n,
            _ => std::thread::yield_now(),
        }
    }
}

/// Reads exactly `n` bytes (or fewer if the peer closes), until the deadline.
pub fn recv(sess: &mut Session, n: usize) -> Vec<u8> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        assert!(
            start.elapsed() < DEADLINE,
            "read did not finish before the deadline"
        );
        match sess.read(&mut buf).unwrap() {
            Io::Ready(0) => break,
            Io::Ready(k) => out.extend_from_slice(&buf[..k]),
            _ => std::thread::yield_now(),
        }
    }
    out
}

/// Sends each way and checks the bytes arrive.
pub fn exchange(server: &mut Session, client: &mut Session) {
    send(client, b"REGISTER sip:a.example SIP/2.0\r\n");
    assert_eq!(recv(server, 32), b"REGISTER sip:a.example SIP/2.0\r\n");
    send(server, b"SIP/2.0 200 OK\r\n");
    assert_eq!(recv(client, 16), b"SIP/2.0 200 OK\r\n");
}

/// Waits for a child process to exit, killing it at the deadline; returns its output.
pub fn wait_output(mut child: Child) -> String {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > DEADLINE {
            child.kill().ok();
            panic!("child process did not exit before the deadline");
        }
        pause();
    }
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// A short pause inside a wait-for-condition loop, so a spinning test does not take the CPU
/// from the peer process it waits for.
pub fn pause() {
    std::thread::sleep(Duration::from_millis(1));
}
