//! OpenSIPS `tls_mgm` lines at startup: parsed and loaded by [`sipcore_tls`] before anything
//! starts, so that a bad value, a missing or unreadable file, or a key that is not the
//! certificate's stops the server with the config position and OpenSSL's reason (the TLS
//! transports, issue 11, build their contexts from the same values).
use super::modparams::TlsParam;
use crate::config::{Config, ConfigError};
use sipcore_tls::{ConfigError as TlsConfigError, LoadError, TlsConfig, TlsManager};

/// The checked tls_mgm configuration and what to log about it.
pub(super) struct Checked {
    /// The parsed configuration.
    pub config: TlsConfig,
    /// One line per value accepted with a change, with its position.
    pub warnings: Vec<String>,
}

/// Parse and load the tls_mgm values (none: `Ok(None)`). A parse error points at the
/// modparam that caused it: the values are applied in file order, so the first one whose
/// addition fails is the culprit. A load error points at the modparam that named the file.
pub(super) fn check(cfg: &Config, params: &[TlsParam<'_>]) -> Result<Option<Checked>, ConfigError> {
    if params.is_empty() {
        return Ok(None);
    }
    let config = parse(cfg, params)?;
    TlsManager::new(config.clone()).map_err(|e| load_error(cfg, params, &e))?;
    let warnings = config
        .warnings
        .iter()
        .map(|w| {
            let span = params
                .iter()
                .find(|p| p.name == w.param && p.value == w.value)
                .map_or_else(Default::default, |p| p.value_span);
            let (line, col) = cfg.position(span);
            format!(
                "{}:{line}:{col}: tls_mgm {} = {:?}: {}",
                cfg.file(),
                w.param,
                w.value,
                w.message
            )
        })
        .collect();
    Ok(Some(Checked { config, warnings }))
}

/// [`TlsConfig::from_params`], with an error at the first value that makes it fail.
fn parse(cfg: &Config, params: &[TlsParam<'_>]) -> Result<TlsConfig, ConfigError> {
    let pairs = |n: usize| params.iter().take(n).map(|p| (p.name, &*p.value));
    match TlsConfig::from_params(pairs(params.len())) {
        Ok(c) => Ok(c),
        Err(e) => {
            let culprit = (1..=params.len())
                .find(|&n| TlsConfig::from_params(pairs(n)).is_err())
                .and_then(|n| params.get(n - 1));
            Err(at(cfg, culprit.or(params.first()), &e))
        }
    }
}

fn at(cfg: &Config, p: Option<&TlsParam<'_>>, e: &TlsConfigError) -> ConfigError {
    let span = p.map_or_else(Default::default, |p| p.value_span);
    cfg.error_at(span, e.to_string())
}

/// A load error at the modparam that named its file (else the first tls_mgm line).
fn load_error(cfg: &Config, params: &[TlsParam<'_>], e: &LoadError) -> ConfigError {
    let file = match e {
        LoadError::File { path, .. } | LoadError::Pem { path, .. } => Some(path.clone()),
        LoadError::KeyMismatch { key, .. } => Some(key.clone()),
        _ => None,
    };
    let p = file
        .and_then(|f| {
            let f = f.to_string_lossy().into_owned();
            params.iter().find(|p| p.value.ends_with(&f))
        })
        .or(params.first());
    let span = p.map_or_else(Default::default, |p| p.span);
    cfg.error_at(span, format!("tls_mgm: {e}"))
}
