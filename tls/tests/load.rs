//! Loading errors name the domain, the parameter, the file and the OS's or OpenSSL's reason;
//! reload swaps certificates for new handshakes while established sessions keep working.

mod common;

use common::*;
use sipcore_tls::{LoadError, PeerCert, TlsConfig, TlsContexts, TlsManager, TlsSession};

fn build(params: &[(&str, String)]) -> Result<(), LoadError> {
    let cfg = TlsConfig::from_params(params.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
    TlsContexts::build(&cfg).map(|_| ())
}

fn cert_and_key(cert: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("certificate", format!("[default]{cert}")),
        ("private_key", format!("[default]{key}")),
    ]
}

#[test]
fn missing_unreadable_bad_pem_and_mismatched_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("CA");
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let (_, other_key) = write(p, "b", &leaf(&ca, &["b.example"], Kind::Ec, false));
    let (_, rsa_key) = write(p, "r", &leaf(&ca, &["r.example"], Kind::Rsa, false));

    let missing = p.join("nope.pem");
    let e = build(&cert_and_key(&s(&missing), &s(&key))).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::File {
                param: "certificate",
                ..
            }
        ),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("nope.pem") && text.contains("No such file"),
        "{text}"
    );
    assert!(
        text.contains("[default]") && text.contains("certificate"),
        "{text}"
    );

    let e = build(&cert_and_key(&s(&cert), &s(p))).unwrap_err();
    assert!(
        e.to_string().contains("private_key") && e.to_string().contains("directory"),
        "{e}"
    );

    let garbage = p.join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = build(&cert_and_key(&s(&garbage), &s(&key))).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            LoadError::Pem {
                param: "certificate",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("garbage.pem") && text.contains("error:"),
        "OpenSSL reason: {text}"
    );

    let empty = p.join("empty.pem");
    std::fs::write(&empty, "no pem here\n").unwrap();
    let e = build(&cert_and_key(&s(&empty), &s(&key))).unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    let e = build(&cert_and_key(&s(&cert), &s(&empty))).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Pem {
                param: "private_key",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("empty.pem") && e.to_string().contains("error:"),
        "{e}"
    );

    for wrong in [&other_key, &rsa_key] {
        let e = build(&cert_and_key(&s(&cert), &s(wrong))).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, LoadError::KeyMismatch { .. }), "{text}");
        assert!(
            text.contains("a.pem") && text.contains(wrong.file_name().unwrap().to_str().unwrap())
        );
        assert!(
            text.contains("mismatch") || text.contains("no certificate"),
            "{text}"
        );
    }
}

#[test]
fn settings_openssl_refuses_and_missing_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("CA");
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let mut bad_ciphers = cert_and_key(&s(&cert), &s(&key));
    bad_ciphers.push(("ciphers_list", "[default]NO-SUCH-CIPHER".into()));
    let e = build(&bad_ciphers).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("ciphers_list") && text.contains("NO-SUCH-CIPHER") && text.contains("error:"),
        "{text}"
    );

    let mut bad_curve = cert_and_key(&s(&cert), &s(&key));
    bad_curve.push(("ec_curve", "[default]no-such-curve".into()));
    assert!(build(&bad_curve)
        .unwrap_err()
        .to_string()
        .contains("ec_curve"));

    let mut verify_without_ca = cert_and_key(&s(&cert), &s(&key));
    verify_without_ca.push(("server_domain", "default".into()));
    verify_without_ca.push(("verify_cert", "[default]1".into()));
    let e = build(&verify_without_ca).unwrap_err();
    assert!(e.to_string().contains("needs ca_list or ca_dir"), "{e}");

    let e = build(&[("server_domain", "default".into())]).unwrap_err();
    assert!(e.to_string().contains("needs a certificate"), "{e}");
    let e = build(&[("certificate", format!("[default]{}", s(&cert)))]).unwrap_err();
    assert!(e.to_string().contains("private_key is not"), "{e}");

    let mut bad_dh = cert_and_key(&s(&cert), &s(&key));
    bad_dh.push(("dh_params", format!("[default]{}", s(&cert))));
    let e = build(&bad_dh).unwrap_err();
    assert!(
        matches!(
            e,
            LoadError::Pem {
                param: "dh_params",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("a.pem") && e.to_string().contains("error:"),
        "{e}"
    );

    let mut bad_dir = cert_and_key(&s(&cert), &s(&key));
    bad_dir.push(("ca_dir", format!("[default]{}", s(&p.join("no-dir")))));
    let e = build(&bad_dir).unwrap_err();
    assert!(
        e.to_string().contains("ca_dir") && e.to_string().contains("no-dir"),
        "{e}"
    );
}

#[test]
fn reload_swaps_the_certificate_for_new_handshakes_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (ca1, ca2) = (ca("CA one"), ca("CA two"));
    let ca1_file = write_ca(p, "ca1", &ca1);
    let ca2_file = write_ca(p, "ca2", &ca2);
    let (cert, key) = write(p, "server", &leaf(&ca1, &["a.example"], Kind::Ec, false));
    let params = cert_and_key(&s(&cert), &s(&key));
    let cfg = TlsConfig::from_params(params.iter().map(|(n, v)| (*n, v.as_str()))).unwrap();
    let manager = TlsManager::new(cfg).unwrap();
    assert_eq!(manager.generation(), 1);
    let client_for = |ca: &std::path::Path| contexts(&[("ca_list", format!("[default]{}", s(ca)))]);

    let (srv, cli, local) = pair();
    let server = TlsSession::server(&manager.current(), local, srv).unwrap();
    let client = TlsSession::client(&client_for(&ca1_file), local, Some("a.example"), cli).unwrap();
    let (old_srv, old_cli) = handshake(server, client);
    let (mut old_srv, mut old_cli) = (old_srv.unwrap(), old_cli.unwrap());

    // New files (issued by CA two) replace the old ones; a failed reload keeps the current set.
    std::fs::write(&key, "broken").unwrap();
    let e = manager.reload().unwrap_err();
    assert!(e.to_string().contains("server.key"), "{e}");
    assert_eq!(manager.generation(), 1);
    write(p, "server", &leaf(&ca2, &["a.example"], Kind::Ec, false));
    assert_eq!(manager.reload().unwrap(), 2);

    for (ca, trusted) in [(&ca2_file, true), (&ca1_file, false)] {
        let (srv, cli, local) = pair();
        let server = TlsSession::server(&manager.current(), local, srv).unwrap();
        let client = TlsSession::client(&client_for(ca), local, Some("a.example"), cli).unwrap();
        let (_, cli) = handshake(server, client);
        match cli {
            Ok(c) => {
                assert!(trusted, "the old certificate is still served");
                assert_eq!(c.info().peer, PeerCert::Verified);
            }
            Err(e) => assert!(!trusted, "the new certificate is not served: {e}"),
        }
    }
    // The session established before the reload still works.
    exchange(&mut old_srv, &mut old_cli);
}
