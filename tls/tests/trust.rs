//! Trust and key-exchange settings that need files of their own: `ca_dir` (hashed directory,
//! made with `openssl rehash`), `dh_params`, `ec_curve`.

mod common;

use std::process::Command;

use common::*;
use openssl::dh::Dh;
use sipcore_tls::{PeerCert, TlsSession};

#[test]
fn ca_dir_verifies_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("dir CA");
    let hashed = p.join("cas");
    std::fs::create_dir(&hashed).unwrap();
    let ca_file = write_ca(&hashed, "ca", &ca);
    let status = Command::new("openssl")
        .arg("rehash")
        .arg(&hashed)
        .status()
        .unwrap();
    assert!(status.success());
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let (ccert, ckey) = write(p, "c", &leaf(&ca, &["c.example"], Kind::Ec, true));
    let srv = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
        ("verify_cert", "[default]1".into()),
        ("require_cert", "[default]1".into()),
        ("ca_dir", format!("[default]{}", s(&hashed))),
    ]);
    let cli = contexts(&[
        ("ca_list", format!("[default]{}", s(&ca_file))),
        ("certificate", format!("[default]{}", s(&ccert))),
        ("private_key", format!("[default]{}", s(&ckey))),
    ]);
    let (a, b, local) = pair();
    let server = TlsSession::server(&srv, local, a).unwrap();
    let client = TlsSession::client(&cli, local, Some("a.example"), b).unwrap();
    let (srv_sess, cli_sess) = handshake(server, client);
    assert_eq!(srv_sess.unwrap().info().peer, PeerCert::Verified);
    cli_sess.unwrap();

    // An empty hashed directory trusts nothing: the client certificate is refused.
    let empty = p.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let srv = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
        ("verify_cert", "[default]1".into()),
        ("ca_dir", format!("[default]{}", s(&empty))),
    ]);
    let (a, b, local) = pair();
    let server = TlsSession::server(&srv, local, a).unwrap();
    let client = TlsSession::client(&cli, local, Some("a.example"), b).unwrap();
    let (srv_sess, _) = handshake(server, client);
    let err = srv_sess
        .err()
        .expect("untrusted client certificate accepted")
        .to_string();
    assert!(err.contains("peer certificate not accepted"), "{err}");
}

#[test]
fn dh_params_and_ec_curve_choose_the_key_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("kx CA");
    let ca_file = write_ca(p, "ca", &ca);
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Rsa, false));
    let dh_file = p.join("dh.pem");
    std::fs::write(
        &dh_file,
        Dh::get_2048_256().unwrap().params_to_pem().unwrap(),
    )
    .unwrap();
    let srv = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
        ("dh_params", format!("[default]{}", s(&dh_file))),
        ("ec_curve", "[default]P-384".into()),
    ]);
    let client_with = |ciphers: &str, curve: &str| {
        contexts(&[
            ("ca_list", format!("[default]{}", s(&ca_file))),
            ("tls_method", "[default]TLSv1_2".into()),
            ("ciphers_list", format!("[default]{ciphers}")),
            ("ec_curve", format!("[default]{curve}")),
        ])
    };
    let run = |cli| {
        let (a, b, local) = pair();
        let server = TlsSession::server(&srv, local, a).unwrap();
        let client = TlsSession::client(&cli, local, Some("a.example"), b).unwrap();
        handshake(server, client)
    };
    let (srv_sess, _) = run(client_with("DHE-RSA-AES128-GCM-SHA256", "P-384"));
    assert_eq!(
        srv_sess.unwrap().info().cipher,
        Some("DHE-RSA-AES128-GCM-SHA256")
    );
    let (srv_sess, _) = run(client_with("ECDHE-RSA-AES128-GCM-SHA256", "P-384"));
    assert_eq!(
        srv_sess.unwrap().info().cipher,
        Some("ECDHE-RSA-AES128-GCM-SHA256")
    );
    // The server offers only P-384 for ECDHE: a client limited to P-256 finds nothing shared.
    let (srv_sess, _) = run(client_with("ECDHE-RSA-AES128-GCM-SHA256", "P-256"));
    assert!(srv_sess.is_err());
}

#[test]
fn crl_dir_refuses_a_revoked_client_certificate() {
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::x509::extension::AuthorityKeyIdentifier;
    use openssl::x509::{X509CrlBuilder, X509RevokedBuilder, X509};

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("CRL CA");
    let ca_file = write_ca(p, "ca", &ca);
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let revoked = leaf(&ca, &["revoked.example"], Kind::Ec, true);
    let good = leaf(&ca, &["good.example"], Kind::Ec, true);

    let now = Asn1Time::days_from_now(0).unwrap();
    let mut entry = X509RevokedBuilder::new().unwrap();
    entry
        .set_serial_number(revoked.cert.serial_number())
        .unwrap();
    entry.set_revocation_date(&now).unwrap();
    let mut crl = X509CrlBuilder::new().unwrap();
    crl.set_issuer_name(ca.cert.subject_name()).unwrap();
    crl.set_last_update(&Asn1Time::from_unix(0).unwrap())
        .unwrap();
    crl.set_next_update(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    crl.add_revoked(entry.build()).unwrap();
    let x509 = X509::builder().unwrap();
    let ctx = x509.x509v3_context(Some(&ca.cert), None);
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&ctx)
        .unwrap();
    crl.append_extension(aki).unwrap();
    // cRLNumber (RFC 5280 §5.2.3) = INTEGER 1.
    let crl_number = openssl::asn1::Asn1Object::from_str("2.5.29.20").unwrap();
    let one = openssl::asn1::Asn1OctetString::new_from_bytes(&[0x02, 0x01, 0x01]).unwrap();
    let ext = openssl::x509::X509Extension::new_from_der(&crl_number, false, &one).unwrap();
    crl.append_extension(ext).unwrap();
    crl.sign(&ca.key, MessageDigest::sha256()).unwrap();
    let crls = p.join("crls");
    std::fs::create_dir(&crls).unwrap();
    std::fs::write(
        crls.join("ca.crl.pem"),
        crl.build().unwrap().to_pem().unwrap(),
    )
    .unwrap();
    let status = Command::new("openssl")
        .arg("rehash")
        .arg(&crls)
        .status()
        .unwrap();
    assert!(status.success());

    let srv = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
        ("verify_cert", "[default]1".into()),
        ("require_cert", "[default]1".into()),
        ("ca_list", format!("[default]{}", s(&ca_file))),
        ("crl_dir", format!("[default]{}", s(&crls))),
    ]);
    for (name, issued, accepted) in [("good", &good, true), ("revoked", &revoked, false)] {
        let (ccert, ckey) = write(p, name, issued);
        let cli = contexts(&[
            ("ca_list", format!("[default]{}", s(&ca_file))),
            ("certificate", format!("[default]{}", s(&ccert))),
            ("private_key", format!("[default]{}", s(&ckey))),
        ]);
        let (a, b, local) = pair();
        let server = TlsSession::server(&srv, local, a).unwrap();
        let client = TlsSession::client(&cli, local, Some("a.example"), b).unwrap();
        let (srv_sess, _) = handshake(server, client);
        match srv_sess {
            Ok(sess) => {
                assert!(accepted, "revoked certificate accepted");
                assert_eq!(sess.info().peer, PeerCert::Verified);
            }
            Err(e) => {
                assert!(!accepted, "{name}: {e}");
                assert!(e.to_string().contains("certificate revoked"), "{e}");
            }
        }
    }
}

#[test]
fn verify_cert_without_require_cert_asks_but_accepts_a_client_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = ca("optional CA");
    let ca_file = write_ca(p, "ca", &ca);
    let (cert, key) = write(p, "a", &leaf(&ca, &["a.example"], Kind::Ec, false));
    let (ccert, ckey) = write(p, "c", &leaf(&ca, &["c.example"], Kind::Ec, true));
    let srv = contexts(&[
        ("certificate", format!("[default]{}", s(&cert))),
        ("private_key", format!("[default]{}", s(&key))),
        ("verify_cert", "[default]1".into()),
        ("require_cert", "[default]0".into()),
        ("ca_list", format!("[default]{}", s(&ca_file))),
    ]);
    let trust = ("ca_list", format!("[default]{}", s(&ca_file)));
    let anonymous = contexts(std::slice::from_ref(&trust));
    let with_cert = contexts(&[
        trust.clone(),
        ("certificate", format!("[default]{}", s(&ccert))),
        ("private_key", format!("[default]{}", s(&ckey))),
    ]);
    for (cli, expected) in [(anonymous, PeerCert::None), (with_cert, PeerCert::Verified)] {
        let (a, b, local) = pair();
        let server = TlsSession::server(&srv, local, a).unwrap();
        let client = TlsSession::client(&cli, local, Some("a.example"), b).unwrap();
        let (srv_sess, cli_sess) = handshake(server, client);
        cli_sess.unwrap();
        assert_eq!(srv_sess.unwrap().info().peer, expected);
    }
}
