//! The tls_mgm configuration model: OpenSIPS's `modparam("tls_mgm", NAME, VALUE)` lines, given
//! as (name, value) pairs in config order, turned into server and client TLS domains. Pure: no
//! file is opened here (see [`crate::context`]).
//!
//! Grammar (OpenSIPS tls_mgm README, "Exported Parameters"; `modules/tls_mgm/tls_params.c`):
//! `server_domain`/`client_domain` declare a domain (`name`, or the 2.x form `name=ip:port`,
//! which also sets its `match_ip_address`); every per-domain parameter is `[name]value`, and a
//! value without a `[name]` prefix (or with `[default]`) sets the default domains.

use std::path::PathBuf;

use thiserror::Error;

use crate::filter::{self, AddrFilter, NameFilter};
use crate::method::{MethodError, TlsMethod};

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

/// A refused tls_mgm parameter; every variant names the parameter and the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Not a tls_mgm parameter.
    #[error("tls_mgm: unknown parameter {param:?}")]
    UnknownParam {
        /// Parameter name.
        param: String,
    },
    /// A tls_mgm parameter this server does not implement.
    #[error("tls_mgm: parameter {param:?} = {value:?} is not supported: {reason}")]
    Unsupported {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// `[` without `]`, or `[]`.
    #[error("tls_mgm: {param} = {value:?}: malformed [domain] prefix")]
    BadPrefix {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// Nothing after the prefix.
    #[error("tls_mgm: {param} = {value:?}: empty value")]
    EmptyValue {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// The prefix names no declared domain.
    #[error("tls_mgm: {param} = {value:?}: TLS domain [{domain}] is not defined (declare it first with server_domain or client_domain)")]
    UnknownDomain {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The unknown name.
        domain: String,
    },
    /// A domain declared twice on the same side.
    #[error("tls_mgm: {param} = {value:?}: TLS domain [{domain}] is already defined")]
    DuplicateDomain {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The name.
        domain: String,
    },
    /// A domain name with characters that cannot be written in a prefix.
    #[error("tls_mgm: {param} = {value:?}: invalid domain name")]
    BadDomainName {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// Not an unsigned integer.
    #[error("tls_mgm: {param} = {value:?}: not a number")]
    BadNumber {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
    },
    /// A `match_ip_address` item that is not `*` or `ip:port`.
    #[error("tls_mgm: {param} = {value:?}: {item:?} is not \"*\" or ip:port")]
    BadAddress {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The item.
        item: String,
    },
    /// A `match_sip_domain` item that is not `*`, `none` or a host name pattern.
    #[error(
        "tls_mgm: {param} = {value:?}: {item:?} is not \"*\", \"none\" or a host name pattern"
    )]
    BadName {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// The item.
        item: String,
    },
    /// A refused `tls_method`.
    #[error("tls_mgm: {param} = {value:?}: {source}")]
    Method {
        /// Parameter name.
        param: String,
        /// Value.
        value: String,
        /// Why.
        source: MethodError,
    },
}

impl TlsConfig {
    /// Whether `name` is a tls_mgm parameter this crate takes (for a host routing modparams).
    pub fn is_param(name: &str) -> bool {
        PER_DOMAIN.contains(&name)
            || matches!(
                name,
                "server_domain"
                    | "client_domain"
                    | "tls_library"
                    | "client_tls_domain_avp"
                    | "client_sip_domain_avp"
            )
    }

    /// Parses the parameters in config order. With none at all, the result has only the
    /// default client domain (outgoing TLS verified against the system roots).
    pub fn from_params<'a, I>(params: I) -> Result<TlsConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut b = Builder::default();
        for (name, value) in params {
            b.apply(name, value)?;
        }
        Ok(b.finish())
    }
}

/// The per-domain parameters, as OpenSIPS names them.
const PER_DOMAIN: [&str; 14] = [
    "certificate",
    "private_key",
    "ca_list",
    "ca_dir",
    "crl_dir",
    "crl_check_all",
    "tls_method",
    "ciphers_list",
    "ec_curve",
    "dh_params",
    "verify_cert",
    "require_cert",
    "match_ip_address",
    "match_sip_domain",
];

struct Builder {
    server: Vec<DomainConfig>,
    client: Vec<DomainConfig>,
    default_server_declared: bool,
    default_client_declared: bool,
    default_server_has_cert: bool,
    config: TlsConfig,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            server: vec![DomainConfig::new(DEFAULT_DOMAIN, Side::Server)],
            client: vec![DomainConfig::new(DEFAULT_DOMAIN, Side::Client)],
            default_server_declared: false,
            default_client_declared: false,
            default_server_has_cert: false,
            config: TlsConfig {
                server: Vec::new(),
                client: Vec::new(),
                client_tls_domain_avp: None,
                client_sip_domain_avp: None,
                warnings: Vec::new(),
            },
        }
    }
}

impl Builder {
    fn apply(&mut self, param: &str, value: &str) -> Result<(), ConfigError> {
        match param {
            "server_domain" => self.declare(param, value, Side::Server),
            "client_domain" => self.declare(param, value, Side::Client),
            "tls_library" => match value.trim().to_ascii_lowercase().as_str() {
                "auto" | "openssl" => Ok(()),
                _ => Err(unsupported(param, value, "this server uses OpenSSL only")),
            },
            "client_tls_domain_avp" => {
                self.config.client_tls_domain_avp = Some(value.trim().to_string());
                Ok(())
            }
            "client_sip_domain_avp" => {
                self.config.client_sip_domain_avp = Some(value.trim().to_string());
                Ok(())
            }
            p if PER_DOMAIN.contains(&p) => self.set(param, value),
            p if p == "db_url" || p == "db_table" || p.ends_with("_col") => Err(unsupported(
                param,
                value,
                "TLS domains from a database are not implemented",
            )),
            _ => Err(ConfigError::UnknownParam {
                param: param.to_string(),
            }),
        }
    }

    fn declare(&mut self, param: &str, value: &str, side: Side) -> Result<(), ConfigError> {
        let (name, addr) = match value.trim().split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (value.trim(), None),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| !b.is_ascii_whitespace() && !b"[]=,".contains(&b));
        if !valid {
            return Err(ConfigError::BadDomainName {
                param: param.into(),
                value: value.into(),
            });
        }
        let dup = || ConfigError::DuplicateDomain {
            param: param.into(),
            value: value.into(),
            domain: name.into(),
        };
        let (list, declared) = match side {
            Side::Server => (&mut self.server, &mut self.default_server_declared),
            Side::Client => (&mut self.client, &mut self.default_client_declared),
        };
        if name == DEFAULT_DOMAIN {
            if *declared {
                return Err(dup());
            }
            *declared = true;
        } else if list.iter().any(|d| d.name == name) {
            return Err(dup());
        } else {
            // Declared domains go before the default one, which stays last.
            list.insert(list.len() - 1, DomainConfig::new(name, side));
        }
        if let Some(addr) = addr {
            let filters = addr_filters(param, value, addr)?;
            let d = list
                .iter_mut()
                .find(|d| d.name == name)
                .expect("declared above");
            d.match_addresses.extend(filters);
        }
        Ok(())
    }

    /// `[name]value` or `value`: sets the parameter on every domain of that name, server and
    /// client (OpenSIPS sets only the server one when a name is on both sides).
    fn set(&mut self, param: &str, raw: &str) -> Result<(), ConfigError> {
        let trimmed = raw.trim_start();
        let (name, value) = match trimmed.strip_prefix('[') {
            Some(rest) => {
                let (name, value) = rest.split_once(']').ok_or_else(|| bad_prefix(param, raw))?;
                if name.trim().is_empty() {
                    return Err(bad_prefix(param, raw));
                }
                (name.trim(), value)
            }
            None => (DEFAULT_DOMAIN, trimmed),
        };
        if value.trim().is_empty() {
            return Err(ConfigError::EmptyValue {
                param: param.into(),
                value: raw.into(),
            });
        }
        let value = value.trim();
        if name == DEFAULT_DOMAIN && param == "certificate" {
            self.default_server_has_cert = true;
        }
        let mut found = false;
        let mut warning = None;
        for d in self.server.iter_mut().chain(self.client.iter_mut()) {
            if d.name == name {
                found = true;
                warning = set_one(d, param, raw, value)?;
            }
        }
        if !found {
            return Err(ConfigError::UnknownDomain {
                param: param.into(),
                value: raw.into(),
                domain: name.into(),
            });
        }
        if let Some(message) = warning {
            self.config.warnings.push(ConfigWarning {
                param: param.into(),
                value: raw.into(),
                message,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> TlsConfig {
        for d in self.server.iter_mut().chain(self.client.iter_mut()) {
            if d.match_addresses.is_empty() {
                d.match_addresses.push(AddrFilter::Any);
            }
            if d.match_names.is_empty() {
                d.match_names.push(NameFilter::Any);
            }
        }
        if !self.default_server_declared && !self.default_server_has_cert {
            self.server.pop();
        }
        self.config.server = self.server;
        self.config.client = self.client;
        self.config
    }
}

fn set_one(
    d: &mut DomainConfig,
    param: &str,
    raw: &str,
    value: &str,
) -> Result<Option<String>, ConfigError> {
    let path = || Some(PathBuf::from(value));
    match param {
        "certificate" => d.certificate = path(),
        "private_key" => d.private_key = path(),
        "ca_list" => d.ca_list = path(),
        "ca_dir" => d.ca_dir = path(),
        "crl_dir" => d.crl_dir = path(),
        "dh_params" => d.dh_params = path(),
        "ciphers_list" => d.ciphers_list = Some(value.to_string()),
        "ec_curve" => d.ec_curve = Some(value.to_string()),
        "crl_check_all" => d.crl_check_all = flag(param, raw, value)?,
        "verify_cert" => d.verify_cert = flag(param, raw, value)?,
        "require_cert" => d.require_cert = flag(param, raw, value)?,
        "tls_method" => {
            let (method, warning) =
                TlsMethod::parse(value).map_err(|source| ConfigError::Method {
                    param: param.into(),
                    value: raw.into(),
                    source,
                })?;
            d.method = method;
            return Ok(warning);
        }
        "match_ip_address" => d.match_addresses.extend(addr_filters(param, raw, value)?),
        "match_sip_domain" => {
            let f = filter::parse_name_filters(value).map_err(|e| ConfigError::BadName {
                param: param.into(),
                value: raw.into(),
                item: e.0,
            })?;
            d.match_names.extend(f);
        }
        _ => unreachable!("set_one is called for PER_DOMAIN names only"),
    }
    Ok(None)
}

fn addr_filters(param: &str, raw: &str, value: &str) -> Result<Vec<AddrFilter>, ConfigError> {
    filter::parse_addr_filters(value).map_err(|e| ConfigError::BadAddress {
        param: param.into(),
        value: raw.into(),
        item: e.0,
    })
}

/// OpenSIPS's `str2int` then "non-zero is on".
fn flag(param: &str, raw: &str, value: &str) -> Result<bool, ConfigError> {
    value
        .parse::<u32>()
        .map(|n| n != 0)
        .map_err(|_| ConfigError::BadNumber {
            param: param.into(),
            value: raw.into(),
        })
}

fn bad_prefix(param: &str, raw: &str) -> ConfigError {
    ConfigError::BadPrefix {
        param: param.into(),
        value: raw.into(),
    }
}

fn unsupported(param: &str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::Unsupported {
        param: param.into(),
        value: value.into(),
        reason,
    }
}
