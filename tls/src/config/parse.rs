//! Applying tls_mgm parameters one by one, in config order (OpenSIPS
//! `modules/tls_mgm/tls_params.c`: `tlsp_add_srv_domain()`, `split_param_val()`,
//! `set_domain_attr()`).

use std::path::PathBuf;

use super::{ConfigError, ConfigWarning, DomainConfig, Side, TlsConfig, DEFAULT_DOMAIN};
use crate::filter::{self, AddrFilter, NameFilter};
use crate::method::TlsMethod;

/// The per-domain parameters, as OpenSIPS names them.
pub(super) const PER_DOMAIN: [&str; 14] = [
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

pub(super) struct Builder {
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
    pub(super) fn apply(&mut self, param: &str, value: &str) -> Result<(), ConfigError> {
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

    pub(super) fn finish(mut self) -> TlsConfig {
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
        for d in self.client.iter().filter(|d| !d.verify_cert) {
            self.config.warnings.push(ConfigWarning {
                param: "verify_cert".into(),
                value: format!("[{}]0", d.name),
                message: format!(
                    "client domain [{}] does not verify servers' certificates: for a lab only",
                    d.name
                ),
            });
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
