//! Real TLS handshakes between our server and client sessions over loopback TCP sockets set
//! non-blocking, both driven step by step in one thread.

mod common;

use std::path::Path;

use common::*;
use sipcore_tls::{PeerCert, SessionError, TlsSession};

/// A test PKI in a temp dir: CA, server certificates for a.example (ECDSA and RSA) and
/// b.example, a client certificate, and a second, untrusted CA with its own a.example.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let ca = ca("sipcore test CA");
        write_ca(p, "ca", &ca);
        write(
            p,
            "a-ec",
            &leaf(&ca, &["a.example", "127.0.0.1"], Kind::Ec, false),
        );
        write(p, "a-rsa", &leaf(&ca, &["a.example"], Kind::Rsa, false));
        write(p, "b", &leaf(&ca, &["b.example"], Kind::Ec, false));
        write(p, "client", &leaf(&ca, &["client.example"], Kind::Ec, true));
        let other = common::ca("untrusted CA");
        write_ca(p, "other-ca", &other);
        write(p, "other-a", &leaf(&other, &["a.example"], Kind::Ec, false));
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        s(&self.dir.path().join(name))
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A default server domain with `cert`, plus `extra` lines.
fn server_params(
    pki: &Pki,
    cert: &str,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (
            "certificate",
            format!("[default]{}", pki.path(&format!("{cert}.pem"))),
        ),
        (
            "private_key",
            format!("[default]{}", pki.path(&format!("{cert}.key"))),
        ),
    ];
    v.extend_from_slice(extra);
    v
}

fn connect(
    server_params: &[(&str, String)],
    client_params: &[(&str, String)],
    host: Option<&str>,
) -> (Result<Session, SessionError>, Result<Session, SessionError>) {
    let srv = contexts(server_params);
    let cli = contexts(client_params);
    let (s, c, local) = pair();
    let server = TlsSession::server(&srv, local, s).unwrap();
    let client = TlsSession::client(&cli, local, host, c).unwrap();
    handshake(server, client)
}

fn trust(pki: &Pki, ca: &str, method: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "ca_list",
            format!("[default]{}", pki.path(&format!("{ca}.pem"))),
        ),
        ("tls_method", format!("[default]{method}")),
    ]
}

#[test]
fn tls13_and_tls12_with_ecdsa_and_rsa_certificates() {
    let pki = Pki::new();
    for cert in ["a-ec", "a-rsa"] {
        for (method, version) in [("TLSv1_3", "TLSv1.3"), ("TLSv1_2", "TLSv1.2")] {
            let (srv, cli) = connect(
                &server_params(&pki, cert, &[]),
                &trust(&pki, "ca", method),
                Some("a.example"),
            );
            let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
            let (si, ci) = (srv.info(), cli.info());
            assert_eq!(si.version, version, "{cert} {method}");
            assert_eq!(ci.version, version);
            assert_eq!(si.cipher, ci.cipher);
            let cipher = ci.cipher.unwrap();
            if version == "TLSv1.2" {
                let kx = if cert == "a-ec" {
                    "ECDHE-ECDSA-"
                } else {
                    "ECDHE-RSA-"
                };
                assert!(cipher.starts_with(kx), "{cipher}");
            } else {
                assert!(cipher.starts_with("TLS_AES_") || cipher.starts_with("TLS_CHACHA20"));
            }
            assert_eq!(si.sni.as_deref(), Some("a.example"));
            assert_eq!(si.domain, "default");
            assert_eq!(ci.peer, PeerCert::Verified);
            assert_eq!(si.peer, PeerCert::None);
            exchange(&mut srv, &mut cli);
        }
    }
}

#[test]
fn client_without_host_name_checks_the_ip_address() {
    let pki = Pki::new();
    let (srv, cli) = connect(
        &server_params(&pki, "a-ec", &[]),
        &trust(&pki, "ca", "-"),
        None,
    );
    let (srv, cli) = (srv.unwrap(), cli.unwrap());
    assert_eq!(srv.info().sni, None);
    assert_eq!(cli.info().peer, PeerCert::Verified);
    // The RSA certificate names only a.example: refused by IP.
    let (_, cli) = connect(
        &server_params(&pki, "a-rsa", &[]),
        &trust(&pki, "ca", "-"),
        None,
    );
    let err = cli.err().unwrap().to_string();
    assert!(err.to_lowercase().contains("ip address mismatch"), "{err}");
}

#[test]
fn untrusted_ca_and_wrong_host_name_are_refused_with_a_clear_error() {
    let pki = Pki::new();
    let (srv, cli) = connect(
        &server_params(&pki, "other-a", &[]),
        &trust(&pki, "ca", "-"),
        Some("a.example"),
    );
    let err = cli.err().expect("untrusted CA accepted").to_string();
    assert!(err.contains("peer certificate not accepted"), "{err}");
    assert!(
        err.contains("unable to get local issuer certificate"),
        "{err}"
    );
    let err = srv.err().expect("server ended well").to_string();
    assert!(err.contains("unknown ca"), "{err}");

    let (_, cli) = connect(
        &server_params(&pki, "a-ec", &[]),
        &trust(&pki, "ca", "-"),
        Some("wrong.example"),
    );
    let err = cli.err().expect("wrong host name accepted").to_string();
    assert!(err.to_lowercase().contains("hostname mismatch"), "{err}");
}

#[test]
fn verify_cert_0_connects_to_an_untrusted_server_and_says_so() {
    let pki = Pki::new();
    let mut client = trust(&pki, "ca", "-");
    client.push(("verify_cert", "[default]0".into()));
    let (srv, cli) = connect(
        &server_params(&pki, "other-a", &[]),
        &client,
        Some("a.example"),
    );
    srv.unwrap();
    match cli.unwrap().info().peer {
        PeerCert::NotVerified(why) => assert!(why.contains("local issuer"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sni_selects_the_domain_and_unknown_sni_gets_the_default() {
    let pki = Pki::new();
    let server = server_params(
        &pki,
        "a-ec",
        &[
            ("server_domain", "bdom".into()),
            ("match_sip_domain", "[bdom]*.b.example, b.example".into()),
            ("certificate", format!("[bdom]{}", pki.path("b.pem"))),
            ("private_key", format!("[bdom]{}", pki.path("b.key"))),
        ],
    );
    // Verification with the host name proves which certificate was served.
    let (srv, cli) = connect(&server, &trust(&pki, "ca", "-"), Some("b.example"));
    let (srv, cli) = (srv.unwrap(), cli.unwrap());
    assert_eq!(srv.info().domain, "bdom");
    assert_eq!(cli.info().peer, PeerCert::Verified);
    let (srv, cli) = connect(&server, &trust(&pki, "ca", "-"), Some("a.example"));
    assert_eq!(srv.unwrap().info().domain, "default");
    assert_eq!(cli.unwrap().info().peer, PeerCert::Verified);
    let mut lax = trust(&pki, "ca", "-");
    lax.push(("verify_cert", "[default]0".into()));
    let (srv, _) = connect(&server, &lax, Some("unknown.example"));
    let srv = srv.unwrap();
    assert_eq!(srv.info().domain, "default");
    assert_eq!(srv.info().sni.as_deref(), Some("unknown.example"));
}

#[test]
fn sni_domain_with_its_own_method_refuses_an_older_version() {
    let pki = Pki::new();
    let server = server_params(
        &pki,
        "a-ec",
        &[
            ("server_domain", "strict".into()),
            ("match_sip_domain", "[strict]b.example".into()),
            ("certificate", format!("[strict]{}", pki.path("b.pem"))),
            ("private_key", format!("[strict]{}", pki.path("b.key"))),
            ("tls_method", "[strict]TLSv1_3".into()),
        ],
    );
    let (srv, cli) = connect(&server, &trust(&pki, "ca", "TLSv1_2"), Some("b.example"));
    let err = srv
        .err()
        .expect("TLS 1.2 accepted on a TLSv1_3 domain")
        .to_string();
    assert!(
        err.contains("TLSv1_2 is outside tls_method TLSv1_3 of TLS domain [strict]"),
        "{err}"
    );
    assert!(cli.is_err());
    let (srv, _) = connect(&server, &trust(&pki, "ca", "TLSv1_3"), Some("b.example"));
    assert_eq!(srv.unwrap().info().domain, "strict");
}

#[test]
fn sni_domain_with_its_own_ciphers_list_uses_it() {
    let pki = Pki::new();
    let server = server_params(
        &pki,
        "a-ec",
        &[
            ("server_domain", "aes256".into()),
            ("match_sip_domain", "[aes256]b.example".into()),
            ("certificate", format!("[aes256]{}", pki.path("b.pem"))),
            ("private_key", format!("[aes256]{}", pki.path("b.key"))),
            (
                "ciphers_list",
                "[aes256]ECDHE-ECDSA-AES256-GCM-SHA384".into(),
            ),
        ],
    );
    let client = trust(&pki, "ca", "TLSv1_2");
    // The client prefers AES-128 (Mozilla order): the default domain takes it...
    let (srv, _) = connect(&server, &client, Some("a.example"));
    assert_eq!(
        srv.unwrap().info().cipher,
        Some("ECDHE-ECDSA-AES128-GCM-SHA256")
    );
    // ...the SNI-selected domain allows only AES-256.
    let (srv, _) = connect(&server, &client, Some("b.example"));
    let info = srv.unwrap().info();
    assert_eq!(
        (info.domain.as_str(), info.cipher),
        ("aes256", Some("ECDHE-ECDSA-AES256-GCM-SHA384"))
    );
}

#[test]
fn require_cert_refuses_a_client_without_certificate_and_verifies_one_with() {
    let pki = Pki::new();
    let server = server_params(
        &pki,
        "a-ec",
        &[
            ("verify_cert", "[default]1".into()),
            ("require_cert", "[default]1".into()),
            ("ca_list", format!("[default]{}", pki.path("ca.pem"))),
        ],
    );
    for method in ["TLSv1_3", "TLSv1_2"] {
        let (srv, _) = connect(&server, &trust(&pki, "ca", method), Some("a.example"));
        let err = srv
            .err()
            .expect("client without certificate accepted")
            .to_string();
        assert!(
            err.contains("peer did not return a certificate"),
            "{method}: {err}"
        );
    }
    let mut with_cert = trust(&pki, "ca", "-");
    with_cert.push((
        "certificate",
        format!("[default]{}", pki.path("client.pem")),
    ));
    with_cert.push((
        "private_key",
        format!("[default]{}", pki.path("client.key")),
    ));
    let (srv, cli) = connect(&server, &with_cert, Some("a.example"));
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    assert_eq!(srv.info().peer, PeerCert::Verified);
    exchange(&mut srv, &mut cli);
}

#[test]
fn no_server_domain_for_the_local_socket_is_an_error() {
    let pki = Pki::new();
    let srv = contexts(&[
        ("server_domain", "only".into()),
        ("match_ip_address", "[only]192.0.2.1:5061".into()),
        ("certificate", format!("[only]{}", pki.path("a-ec.pem"))),
        ("private_key", format!("[only]{}", pki.path("a-ec.key"))),
    ]);
    let (s, _c, local) = pair();
    let err = TlsSession::server(&srv, local, s).err().unwrap();
    assert!(
        matches!(err, SessionError::NoServerDomain(a) if a == local),
        "{err}"
    );
    let _ = pki.dir();
}

#[test]
fn close_notify_reads_as_end_of_stream() {
    let pki = Pki::new();
    let (srv, cli) = connect(
        &server_params(&pki, "a-ec", &[]),
        &trust(&pki, "ca", "-"),
        Some("a.example"),
    );
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    exchange(&mut srv, &mut cli);
    assert_eq!(cli.shutdown().unwrap(), sipcore_tls::Progress::Done);
    assert!(recv(&mut srv, 1).is_empty());
}

#[test]
fn sni_matching_no_domain_is_refused_with_unrecognized_name() {
    let pki = Pki::new();
    let server = [
        ("server_domain", "only".to_string()),
        ("match_sip_domain", "[only]a.example".into()),
        ("certificate", format!("[only]{}", pki.path("a-ec.pem"))),
        ("private_key", format!("[only]{}", pki.path("a-ec.key"))),
    ];
    let (srv, cli) = connect(&server, &trust(&pki, "ca", "-"), Some("x.example"));
    let err = srv.err().expect("unknown SNI accepted").to_string();
    assert!(
        err.contains("SNI Some(\"x.example\")") && err.contains("matches no TLS server domain"),
        "{err}"
    );
    let err = cli.err().expect("client ended well").to_string();
    assert!(err.contains("unrecognized name"), "{err}");
    let (srv, _) = connect(&server, &trust(&pki, "ca", "-"), Some("a.example"));
    assert_eq!(srv.unwrap().info().domain, "only");
}

#[test]
fn a_peer_that_drops_tcp_without_close_notify_reads_as_truncated() {
    let pki = Pki::new();
    let (srv, cli) = connect(
        &server_params(&pki, "a-ec", &[]),
        &trust(&pki, "ca", "-"),
        Some("a.example"),
    );
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    exchange(&mut srv, &mut cli);
    drop(cli);
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let end = loop {
        assert!(
            start.elapsed() < DEADLINE,
            "no end of stream before the deadline"
        );
        match srv.read(&mut buf) {
            Ok(sipcore_tls::Io::Ready(n)) => panic!("read {n} bytes"),
            Ok(_) => std::thread::yield_now(),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, SessionError::Truncated), "{end}");
}
