//! A PKI made at test time (as `tls/tests/common` does: nothing committed that could expire):
//! a CA, ECDSA P-256 leaf certificates for `localhost` and `127.0.0.1`, the sipcore-tls
//! managers of the server and client sides, and blocking OpenSSL TLS clients and servers
//! speaking to the driver.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use sipcore_tls::{TlsConfig, TlsManager};

use super::TlsHandle;

/// A certificate and its key.
pub(crate) struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn issue(cn: &str, issuer: Option<&Issued>, names: &[&str]) -> Issued {
    let key = ec_key();
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
    b.set_pubkey(&key).unwrap();
    match issuer {
        None => {
            b.set_issuer_name(&name).unwrap();
            let ca = BasicConstraints::new().critical().ca().build().unwrap();
            b.append_extension(ca).unwrap();
            let usage = KeyUsage::new().critical().key_cert_sign().build().unwrap();
            b.append_extension(usage).unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
        }
        Some(ca) => {
            b.set_issuer_name(ca.cert.subject_name()).unwrap();
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
        }
    }
    Issued {
        cert: b.build(),
        key,
    }
}

/// A CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM files in
/// a temporary directory.
pub(crate) struct Pki {
    /// Holds the files; removed on drop.
    _dir: tempfile::TempDir,
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl Pki {
    /// A new CA named `cn` and its server certificate.
    pub fn new(cn: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = issue(cn, None, &[]);
        let leaf = issue("localhost", Some(&ca), &["localhost", "127.0.0.1"]);
        let ca_pem = dir.path().join("ca.pem");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        std::fs::write(&ca_pem, ca.cert.to_pem().unwrap()).unwrap();
        std::fs::write(&cert_pem, leaf.cert.to_pem().unwrap()).unwrap();
        std::fs::write(&key_pem, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        Pki {
            _dir: dir,
            ca_pem,
            cert_pem,
            key_pem,
        }
    }

    /// tls_mgm parameters of a server with this certificate (default domain).
    pub fn server(&self) -> TlsHandle {
        manager(&[
            ("certificate", self.cert_pem.to_str().unwrap()),
            ("private_key", self.key_pem.to_str().unwrap()),
        ])
    }

    /// A server with only one domain, `sip`, for the SNI name `name` (no default domain: any
    /// other name is refused with `unrecognized_name`, RFC 6066 §3).
    pub fn server_only_for(&self, name: &str) -> TlsHandle {
        let (cert, key) = (
            self.cert_pem.to_str().unwrap(),
            self.key_pem.to_str().unwrap(),
        );
        manager(&[
            ("server_domain", "sip"),
            ("match_sip_domain", &format!("[sip]{name}")),
            ("certificate", &format!("[sip]{cert}")),
            ("private_key", &format!("[sip]{key}")),
        ])
    }

    /// tls_mgm parameters of a client trusting this CA (default client domain).
    pub fn client(&self) -> TlsHandle {
        manager(&[("ca_list", self.ca_pem.to_str().unwrap())])
    }
}

fn manager(params: &[(&str, &str)]) -> TlsHandle {
    let cfg = TlsConfig::from_params(params.iter().copied()).unwrap();
    TlsHandle(Arc::new(TlsManager::new(cfg).unwrap()))
}

/// A blocking TLS client connection to `addr` trusting `pki`'s CA and checking the name
/// `localhost`, offering only `version` (any from TLS 1.2 when `None`); 10 s read timeout.
pub(crate) fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
    version: Option<SslVersion>,
) -> Result<SslStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(&pki.ca_pem).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.set_min_proto_version(version.or(Some(SslVersion::TLS1_2)))
        .unwrap();
    b.set_max_proto_version(version).unwrap();
    if matches!(version, Some(v) if v == SslVersion::TLS1_1 || v == SslVersion::TLS1) {
        // Lets this OpenSSL offer TLS 1.0/1.1 at all, so that it is the driver that refuses.
        b.set_cipher_list("DEFAULT@SECLEVEL=0").unwrap();
        b.set_security_level(0);
    }
    b.build()
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())
}
