//! The tls_mgm configuration model: OpenSIPS's `modparam("tls_mgm", NAME, VALUE)` lines, given
//! as (name, value) pairs in config order, turned into server and client TLS domains. Pure: no
//! file is opened here (see [`crate::context`]).
//!
//! Grammar (OpenSIPS tls_mgm README, "Exported Parameters"; `modules/tls_mgm/tls_params.c`):
//! `server_domain`/`client_domain` declare a domain (`name`, or the 2.x form `name=ip:port`,
//! which also sets its `match_ip_address`); every per-domain parameter is `[name]value`, and a
//! value without a `[name]` prefix (or with `[default]`) sets the default domains.

use std::path::PathBuf;

use crate::filter::{AddrFilter, NameFilter};
use crate::method::TlsMethod;

mod error;
mod parse;

pub use error::ConfigError;

/// The name of the default domains, as written in a `[default]` prefix.
pub const DEFAULT_DOMAIN: &str = "default";

/// Which end of the handshake a domain serves (tls_mgm: "server domain" for incoming
/// connections, "client domain" for outgoing ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Incoming connections: we present a certificate and may ask the client for one.
    Server,
    /// Outgoing connections: we verify the server and may present a certificate.
    Client,
}

/// One TLS domain and every parameter it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// The name (`default` for the default domains).
    pub name: String,
    /// Server or client domain.
    pub side: Side,
    /// `certificate`: PEM file, the leaf first then the chain. Required for server domains.
    pub certificate: Option<PathBuf>,
    /// `private_key`: PEM file of the certificate's key.
    pub private_key: Option<PathBuf>,
    /// `ca_list`: PEM file of trusted CAs.
    pub ca_list: Option<PathBuf>,
    /// `ca_dir`: directory of hashed CA certificates (`openssl rehash`).
    pub ca_dir: Option<PathBuf>,
    /// `crl_dir`: directory of hashed CRLs; when set, the leaf's revocation is checked.
    pub crl_dir: Option<PathBuf>,
    /// `crl_check_all`: check revocation of the whole chain (needs `crl_dir`).
    pub crl_check_all: bool,
    /// `tls_method`, parsed.
    pub method: TlsMethod,
    /// `ciphers_list`: an OpenSSL cipher string for TLS 1.2 (TLS 1.3 suites stay OpenSSL's).
    pub ciphers_list: Option<String>,
    /// `ec_curve`: the key-exchange group(s), an OpenSSL groups list such as `P-256:X25519`.
    pub ec_curve: Option<String>,
    /// `dh_params`: PEM file of finite-field DH parameters for DHE ciphers.
    pub dh_params: Option<PathBuf>,
    /// `verify_cert`: verify the peer's certificate.
    pub verify_cert: bool,
    /// `require_cert`: (server domains) refuse a client without a certificate.
    pub require_cert: bool,
    /// `match_ip_address`: local (server) or destination (client) sockets; `*` when unset.
    pub match_addresses: Vec<AddrFilter>,
    /// `match_sip_domain`: SNI names (server) or destination host names (client); `*` when unset.
    pub match_names: Vec<NameFilter>,
}

impl DomainConfig {
    /// A domain with the defaults: OpenSIPS's, except `verify_cert`/`require_cert` 0 for server
    /// domains (a browser must not be asked for a client certificate), and TLS 1.2 as the floor.
    pub fn new(name: &str, side: Side) -> DomainConfig {
        DomainConfig {
            name: name.to_string(),
            side,
            certificate: None,
            private_key: None,
            ca_list: None,
            ca_dir: None,
            crl_dir: None,
            crl_check_all: false,
            method: TlsMethod::default(),
            ciphers_list: None,
            ec_curve: None,
            dh_params: None,
            verify_cert: side == Side::Client,
            require_cert: false,
            match_addresses: Vec::new(),
            match_names: Vec::new(),
        }
    }

    /// Whether this is one of the default domains.
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_DOMAIN
    }
}

/// A warning for the log: the value was accepted but changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Parameter name.
    pub param: String,
    /// Value as written.
    pub value: String,
    /// What was done.
    pub message: String,
}

/// The tls_mgm parameters that do not take a `[domain]` prefix.
const GLOBAL_PARAMS: [&str; 5] = [
    "server_domain",
    "client_domain",
    "tls_library",
    "client_tls_domain_avp",
    "client_sip_domain_avp",
];

/// The whole tls_mgm configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Server domains in declaration order; the default one, if present, last.
    pub server: Vec<DomainConfig>,
    /// Client domains in declaration order; the default one, always present, last.
    pub client: Vec<DomainConfig>,
    /// `client_tls_domain_avp`, kept for the script layer.
    pub client_tls_domain_avp: Option<String>,
    /// `client_sip_domain_avp`, kept for the script layer.
    pub client_sip_domain_avp: Option<String>,
    /// Values accepted with a change (e.g. a `tls_method` raised to TLS 1.2).
    pub warnings: Vec<ConfigWarning>,
}

impl TlsConfig {
    /// Whether `name` is a tls_mgm parameter this crate takes (for a host routing modparams).
    pub fn is_param(name: &str) -> bool {
        parse::PER_DOMAIN.contains(&name) || GLOBAL_PARAMS.contains(&name)
    }

    /// Every tls_mgm parameter this crate takes: the per-domain ones, then the others.
    pub fn params() -> impl Iterator<Item = &'static str> {
        parse::PER_DOMAIN
            .iter()
            .chain(GLOBAL_PARAMS.iter())
            .copied()
    }

    /// Parses the parameters in config order. With none at all, the result has only the
    /// default client domain (outgoing TLS verified against the system roots).
    pub fn from_params<'a, I>(params: I) -> Result<TlsConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut b = parse::Builder::default();
        for (name, value) in params {
            b.apply(name, value)?;
        }
        Ok(b.finish())
    }
}
