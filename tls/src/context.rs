//! One OpenSSL context per TLS domain, built from a [`TlsConfig`]: an `SSL_CTX` per server
//! domain, an `SslConnector` per client domain, following OpenSIPS `tls_openssl`'s
//! `init_tls_dom()` (`modules/tls_openssl/openssl_config.c`) with Mozilla "intermediate" v5
//! defaults: TLS 1.2 and 1.3 (RFC 8446, RFC 5246), AEAD ciphers with forward secrecy,
//! `SSL_MODE_RELEASE_BUFFERS` (an idle connection holds no record buffers), session tickets on
//! (RFC 8446 §4.6.1, RFC 5077), and renegotiation refused (`SSL_OP_NO_RENEGOTIATION`;
//! RFC 5746's secure renegotiation is still a way to make a server do handshakes on demand).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use openssl::ex_data::Index;
use openssl::ssl::{
    NameType, SniError, Ssl, SslAlert, SslConnector, SslContext, SslContextBuilder, SslFiletype,
    SslMethod, SslMode, SslOptions, SslRef, SslVerifyMode,
};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509Name;

use crate::config::{DomainConfig, Side, TlsConfig};
use crate::load::{LoadError, Loader};
use crate::method::TlsVersion;
use crate::select::select;

/// Mozilla "intermediate" v5 TLS 1.2 ciphers (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305).
pub const MOZILLA_INTERMEDIATE_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:\
ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-GCM-SHA384";

/// Mozilla "intermediate" v5 TLS 1.3 cipher suites (RFC 8446 §B.4).
pub const MOZILLA_TLS13_SUITES: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// Mozilla "intermediate" v5 key-exchange groups, used unless `ec_curve` is set.
pub const MOZILLA_GROUPS: &str = "X25519:P-256:P-384";

/// RFC 7919 ffdhe2048, the DHE group used unless `dh_params` is set (as Mozilla recommends).
const FFDHE_2048: &str = "-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
";

/// The session-id context of every server context, so a session resumed on a domain that
/// verifies client certificates is accepted (OpenSSL refuses resumption without one).
const SESSION_ID_CONTEXT: &[u8] = b"sipcore-tls";

/// A built server domain.
pub(crate) struct ServerDomain {
    pub(crate) config: DomainConfig,
    pub(crate) ctx: SslContext,
    pub(crate) verify: SslVerifyMode,
}

/// A built client domain.
pub(crate) struct ClientDomain {
    pub(crate) config: DomainConfig,
    pub(crate) connector: SslConnector,
}

/// Every domain's OpenSSL context, built from one configuration. Immutable: a reload builds a
/// new set (see [`crate::TlsManager`]); a session keeps the contexts it started with.
pub struct TlsContexts {
    pub(crate) server: Vec<ServerDomain>,
    pub(crate) client: Vec<ClientDomain>,
}

impl TlsContexts {
    /// Reads every file the configuration names and builds the contexts. Any failure stops
    /// the whole build: a server must not start with a domain silently missing.
    pub fn build(config: &TlsConfig) -> Result<Arc<TlsContexts>, LoadError> {
        let server = config
            .server
            .iter()
            .map(server_domain)
            .collect::<Result<Vec<_>, _>>()?;
        let client = config
            .client
            .iter()
            .map(client_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(TlsContexts { server, client }))
    }

    /// The server domains, in selection order (for MI `tls_list`).
    pub fn server_domains(&self) -> impl Iterator<Item = &DomainConfig> {
        self.server.iter().map(|d| &d.config)
    }

    /// The client domains, in selection order (for MI `tls_list`).
    pub fn client_domains(&self) -> impl Iterator<Item = &DomainConfig> {
        self.client.iter().map(|d| &d.config)
    }

    /// The server domain for a connection on `local` that sent SNI `sni` (see
    /// [`crate::select`]).
    pub fn select_server(&self, local: SocketAddr, sni: Option<&str>) -> Option<&DomainConfig> {
        self.server_index(local, sni)
            .map(|i| &self.server[i].config)
    }

    /// The client domain for a connection to `dest`, host name `host`.
    pub fn select_client(&self, dest: SocketAddr, host: Option<&str>) -> Option<&DomainConfig> {
        self.client_index(dest, host)
            .map(|i| &self.client[i].config)
    }

    pub(crate) fn server_index(&self, local: SocketAddr, sni: Option<&str>) -> Option<usize> {
        select(self.server.iter().map(|d| &d.config), local, sni)
    }

    pub(crate) fn client_index(&self, dest: SocketAddr, host: Option<&str>) -> Option<usize> {
        select(self.client.iter().map(|d| &d.config), dest, host)
    }
}

fn server_domain(d: &DomainConfig) -> Result<ServerDomain, LoadError> {
    let l = Loader { domain: &d.name };
    let mut b = SslContextBuilder::new(SslMethod::tls_server())
        .map_err(|e| l.setting("tls_method", &d.method.to_string(), e))?;
    common(&mut b, d, &l)?;
    if d.certificate.is_none() {
        return Err(l.missing("a server domain needs a certificate (and private_key)"));
    }
    b.set_session_id_context(SESSION_ID_CONTEXT)
        .map_err(|e| l.setting("certificate", "session id context", e))?;
    let dh = match &d.dh_params {
        Some(p) => l.dh(p)?,
        None => openssl::dh::Dh::params_from_pem(FFDHE_2048.as_bytes())
            .map_err(|e| l.setting("dh_params", "ffdhe2048", e))?,
    };
    b.set_tmp_dh(&dh)
        .map_err(|e| l.setting("dh_params", "", e))?;
    let verify = if !d.verify_cert {
        SslVerifyMode::NONE
    } else if d.require_cert {
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
    } else {
        SslVerifyMode::PEER
    };
    if d.verify_cert {
        if d.ca_list.is_none() && d.ca_dir.is_none() {
            return Err(l.missing("verify_cert 1 on a server domain needs ca_list or ca_dir"));
        }
        if let Some(ca) = &d.ca_list {
            // The CertificateRequest lists the acceptable CAs (RFC 8446 §4.3.2,
            // RFC 5246 §7.4.4).
            let mut names = Stack::<X509Name>::new().map_err(|e| l.setting("ca_list", "", e))?;
            for c in l.certs("ca_list", ca)? {
                let name = c
                    .subject_name()
                    .to_owned()
                    .map_err(|e| l.setting("ca_list", "", e))?;
                names.push(name).map_err(|e| l.setting("ca_list", "", e))?;
            }
            b.set_client_ca_list(names);
        }
    }
    b.set_verify(verify);
    b.set_servername_callback(sni_callback);
    Ok(ServerDomain {
        config: d.clone(),
        ctx: b.build(),
        verify,
    })
}

fn client_domain(d: &DomainConfig) -> Result<ClientDomain, LoadError> {
    let l = Loader { domain: &d.name };
    // The connector's defaults: verify the peer against the system roots; `common` replaces the
    // store when the domain has its own CAs.
    let mut b = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| l.setting("tls_method", &d.method.to_string(), e))?;
    common(&mut b, d, &l)?;
    b.set_verify(if d.verify_cert {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    });
    Ok(ClientDomain {
        config: d.clone(),
        connector: b.build(),
    })
}

/// What server and client contexts share: protocol range, ciphers, groups, options, trust
/// store, revocation, certificate and key.
fn common(b: &mut SslContextBuilder, d: &DomainConfig, l: &Loader<'_>) -> Result<(), LoadError> {
    let method = d.method.to_string();
    b.set_options(
        SslOptions::ALL
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_SSLV2
            | SslOptions::NO_SSLV3
            | SslOptions::SINGLE_DH_USE
            | SslOptions::SINGLE_ECDH_USE
            | SslOptions::NO_RENEGOTIATION,
    );
    b.set_mode(
        SslMode::RELEASE_BUFFERS
            | SslMode::ENABLE_PARTIAL_WRITE
            | SslMode::ACCEPT_MOVING_WRITE_BUFFER,
    );
    // One `recv` per burst instead of two per record (header, then body). Records read ahead
    // wait inside the session: its reader must read until `WantRead` (the ws driver reads
    // until the socket would block, or comes back on its next turn when its budget is spent).
    b.set_read_ahead(true);
    b.set_min_proto_version(Some(d.method.min.to_openssl()))
        .and_then(|_| b.set_max_proto_version(Some(d.method.max.to_openssl())))
        .map_err(|e| l.setting("tls_method", &method, e))?;
    let ciphers = d
        .ciphers_list
        .as_deref()
        .unwrap_or(MOZILLA_INTERMEDIATE_CIPHERS);
    b.set_cipher_list(ciphers)
        .map_err(|e| l.setting("ciphers_list", ciphers, e))?;
    b.set_ciphersuites(MOZILLA_TLS13_SUITES)
        .map_err(|e| l.setting("ciphers_list", MOZILLA_TLS13_SUITES, e))?;
    let groups = d.ec_curve.as_deref().unwrap_or(MOZILLA_GROUPS);
    b.set_groups_list(groups)
        .map_err(|e| l.setting("ec_curve", groups, e))?;

    if d.ca_list.is_some() || d.ca_dir.is_some() || d.crl_dir.is_some() {
        let mut store = X509StoreBuilder::new().map_err(|e| l.setting("ca_list", "", e))?;
        if d.ca_list.is_none() && d.ca_dir.is_none() && d.side == Side::Client {
            store
                .set_default_paths()
                .map_err(|e| l.setting("ca_list", "system roots", e))?;
        }
        if let Some(ca) = &d.ca_list {
            for c in l.certs("ca_list", ca)? {
                store
                    .add_cert(c)
                    .map_err(|e| l.setting("ca_list", &ca.to_string_lossy(), e))?;
            }
        }
        for (param, dir) in [("ca_dir", &d.ca_dir), ("crl_dir", &d.crl_dir)] {
            if let Some(dir) = dir {
                l.dir(param, dir)?;
                let text = dir.to_string_lossy();
                let lookup = store
                    .add_lookup(X509Lookup::hash_dir())
                    .map_err(|e| l.setting(param, &text, e))?;
                lookup
                    .add_dir(&text, SslFiletype::PEM)
                    .map_err(|e| l.setting(param, &text, e))?;
            }
        }
        if d.crl_dir.is_some() {
            let mut flags = X509VerifyFlags::CRL_CHECK;
            if d.crl_check_all {
                flags |= X509VerifyFlags::CRL_CHECK_ALL;
            }
            store
                .set_flags(flags)
                .map_err(|e| l.setting("crl_check_all", "", e))?;
        }
        b.set_cert_store(store.build());
    }

    if let Some(cert_path) = &d.certificate {
        let certs = l.certs("certificate", cert_path)?;
        let key_path = d
            .private_key
            .as_ref()
            .ok_or_else(|| l.missing("certificate is set but private_key is not"))?;
        let key = l.key(key_path)?;
        let mismatch = |reason| LoadError::KeyMismatch {
            domain: d.name.clone(),
            cert: cert_path.clone(),
            key: key_path.clone(),
            reason,
        };
        let mut certs = certs.into_iter();
        let leaf = certs.next().expect("Loader::certs returns at least one");
        b.set_certificate(&leaf)
            .map_err(|e| l.setting("certificate", "", e))?;
        for c in certs {
            b.add_extra_chain_cert(c)
                .map_err(|e| l.setting("certificate", "chain", e))?;
        }
        b.set_private_key(&key).map_err(mismatch)?;
        b.check_private_key().map_err(mismatch)?;
    }
    Ok(())
}

/// What an accepted connection's SNI callback needs, kept in the `SSL`'s ex data: the context
/// set the connection started with (a reload does not change it), the local socket, and the
/// domain chosen so far.
pub(crate) struct AcceptState {
    pub(crate) set: Arc<TlsContexts>,
    pub(crate) local: SocketAddr,
    pub(crate) domain: AtomicUsize,
    /// Why the SNI callback refused the handshake, for the session's error text.
    pub(crate) refused: OnceLock<String>,
}

/// The ex-data slot of [`AcceptState`] (one per process); emptied once the handshake is done,
/// so an established connection does not keep it.
pub(crate) fn accept_index() -> Index<Ssl, Option<Arc<AcceptState>>> {
    static INDEX: OnceLock<Index<Ssl, Option<Arc<AcceptState>>>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("OpenSSL ex-data index"))
}

/// The SNI callback of every server context (RFC 6066 §3; OpenSIPS `tls_sni_cb()`): OpenSSL
/// calls it while processing the ClientHello, with or without a server_name extension. It
/// re-selects the domain with the name received and switches the `SSL` to that domain's
/// context (certificate, key, trust store), verify mode and TLS 1.2 cipher list. No matching domain: fatal
/// `unrecognized_name` alert. A domain whose `tls_method` excludes the version already
/// negotiated: fatal `protocol_version` alert.
fn sni_callback(ssl: &mut SslRef, alert: &mut SslAlert) -> Result<(), SniError> {
    let Some(state) = ssl.ex_data(accept_index()).cloned().flatten() else {
        return Ok(());
    };
    let name = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
    let Some(i) = state.set.server_index(state.local, name.as_deref()) else {
        let _ = state.refused.set(format!(
            "SNI {name:?} on {} matches no TLS server domain",
            state.local
        ));
        *alert = SslAlert::UNRECOGNIZED_NAME;
        return Err(SniError::ALERT_FATAL);
    };
    let dom = &state.set.server[i];
    if let Some(v) = ssl.version2().and_then(TlsVersion::from_openssl) {
        if !dom.config.method.allows(v) {
            let _ = state.refused.set(format!(
                "{v} is outside tls_method {} of TLS domain [{}]",
                dom.config.method, dom.config.name
            ));
            *alert = SslAlert::PROTOCOL_VERSION;
            return Err(SniError::ALERT_FATAL);
        }
    }
    if state.domain.swap(i, Ordering::Relaxed) != i {
        // SSL_set_SSL_CTX takes the certificate, key and trust store of the new context, not
        // its verify mode or cipher list: set those on the SSL (the cipher is chosen after
        // this callback).
        ssl.set_ssl_context(&dom.ctx)
            .map_err(|_| SniError::ALERT_FATAL)?;
        ssl.set_verify(dom.verify);
        let ciphers = dom
            .config
            .ciphers_list
            .as_deref()
            .unwrap_or(MOZILLA_INTERMEDIATE_CIPHERS);
        ssl.set_cipher_list(ciphers)
            .map_err(|_| SniError::ALERT_FATAL)?;
    }
    Ok(())
}
