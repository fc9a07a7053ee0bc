//! `modparam` checking: every value against its module's declared parameters (a plugin's ABI
//! [`ParamSpec`] list, or a built-in module's), with errors naming file:line:col.
use crate::builtin_modules::{Builtin, Settings};
use crate::config::{Config, ConfigError, Item, ModParamValue, Span};
use crate::modules::LoadedModule;
use sipcore_abi::{ParamKind, ParamSpec};

/// A modparam value, checked against the module's declared type.
pub(super) struct ParamValue<'a> {
    pub name: &'a str,
    pub kind: ParamKind,
    pub int: i64,
    pub text: &'a str,
}

/// A `modparam("tls_mgm", ...)` in file order, with where it is (for errors). A relative file
/// or directory path is resolved against the configuration file's directory (so a config and
/// its certificates move together, whatever the working directory).
pub(super) struct TlsParam<'a> {
    pub name: &'a str,
    pub value: std::borrow::Cow<'a, str>,
    pub span: Span,
    pub value_span: Span,
}

/// What the modparams give: the plugins' values per module, the built-in modules' settings,
/// and tls_mgm's values in file order.
pub(super) type Checked<'c> = (Vec<Vec<ParamValue<'c>>>, Settings, Vec<TlsParam<'c>>);

/// Check every modparam against its module's declared parameters; group the plugins' values
/// per module, in file order, and apply the built-in modules' to their [`Settings`].
pub(super) fn check_modparams<'c>(
    cfg: &'c Config,
    loaded: &[LoadedModule],
    builtins: &[&'static Builtin],
) -> Result<Checked<'c>, ConfigError> {
    let mut out: Vec<Vec<ParamValue<'c>>> = loaded.iter().map(|_| Vec::new()).collect();
    let mut settings = Settings::default();
    let mut tls: Vec<TlsParam<'c>> = Vec::new();
    let mut builtin_seen: Vec<(&str, &str)> = Vec::new();
    for item in &cfg.items {
        let Item::ModParam {
            module,
            param,
            value,
            span,
            param_span,
            value_span,
        } = item
        else {
            continue;
        };
        let plugin = loaded.iter().position(|m| &m.name == module);
        let builtin = builtins.iter().find(|b| b.name == module);
        let declared: &[ParamSpec] = match (plugin, builtin) {
            (Some(idx), _) => loaded[idx].module.params().as_slice(),
            (None, Some(b)) => b.params,
            (None, None) => {
                return Err(cfg.error_at(
                    *span,
                    format!(
                    "modparam for module '{module}', which is not loaded (no loadmodule for it)"
                ),
                ))
            }
        };
        let spec = declared
            .iter()
            .find(|p| p.name.as_str() == param)
            .ok_or_else(|| {
                let known: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
                let known = if known.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has: {}", known.join(", "))
                };
                cfg.error_at(
                    *param_span,
                    format!("module '{module}' has no parameter '{param}' ({known})"),
                )
            })?;
        let (as_int, as_str) = match value {
            ModParamValue::Int(i) => (Some(*i), None),
            ModParamValue::Str(s) => (None, Some(s.as_str())),
        };
        let v = match (spec.kind, as_int, as_str) {
            (ParamKind::INT, Some(i), _) => ParamValue {
                name: param,
                kind: ParamKind::INT,
                int: i,
                text: "",
            },
            (ParamKind::STR, _, Some(s)) => ParamValue {
                name: param,
                kind: ParamKind::STR,
                int: 0,
                text: s,
            },
            (k, _, _) => {
                let want = if k == ParamKind::INT {
                    "an integer"
                } else {
                    "a string"
                };
                return Err(cfg.error_at(
                    *value_span,
                    format!("parameter '{param}' of module '{module}' takes {want}"),
                ));
            }
        };
        let twice = || {
            cfg.error_at(
                *param_span,
                format!("parameter '{param}' of module '{module}' set twice"),
            )
        };
        let Some(idx) = plugin else {
            if module == "tls_mgm" {
                // Repeatable `[domain]value` strings, checked together by the TLS layer.
                tls.push(TlsParam {
                    name: param,
                    value: tls_path(cfg, param, v.text),
                    span: *span,
                    value_span: *value_span,
                });
                continue;
            }
            if builtin_seen.contains(&(module.as_str(), param.as_str())) {
                return Err(twice());
            }
            builtin_seen.push((module, param));
            let applied = if v.kind == ParamKind::STR {
                settings.set_str(module, param, v.text, &config_dir(cfg))
            } else {
                settings.set(module, param, v.int)
            };
            applied.map_err(|e| cfg.error_at(*value_span, e))?;
            continue;
        };
        if !spec.multi && out[idx].iter().any(|p| p.name == param.as_str()) {
            return Err(twice());
        }
        out[idx].push(v);
    }
    core_tcp_globals(cfg, loaded, &mut out)?;
    Ok((out, settings, tls))
}

/// OpenSIPS's core TCP parameters, global lines in its configs, that the stream transports
/// take as modparams of the same name (`proto_tls`: `tls_` for `tcp_`).
pub(super) const CORE_TCP_GLOBALS: [&str; 3] = [
    "tcp_connection_lifetime",
    "tcp_max_connections",
    "tcp_connect_timeout",
];

/// A global `tcp_connection_lifetime = N` (and the others of [`CORE_TCP_GLOBALS`]) reaches
/// every loaded plugin that declares the parameter, unless a modparam of the plugin set it.
fn core_tcp_globals<'c>(
    cfg: &'c Config,
    loaded: &[LoadedModule],
    out: &mut [Vec<ParamValue<'c>>],
) -> Result<(), ConfigError> {
    for g in CORE_TCP_GLOBALS {
        let Some((value, span)) = cfg.global(g) else {
            continue;
        };
        let crate::config::GlobalValue::Int(n) = value else {
            return Err(cfg.error_at(span, format!("{g} takes an integer")));
        };
        let tls_name = g.replacen("tcp_", "tls_", 1);
        for (idx, m) in loaded.iter().enumerate() {
            let declared = m.module.params();
            let name = declared
                .as_slice()
                .iter()
                .map(|p| p.name.as_str())
                .find(|p| *p == g || (m.name == "proto_tls" && *p == tls_name));
            let Some(name) = name else {
                continue;
            };
            if out[idx].iter().any(|p| p.name == name) {
                continue;
            }
            out[idx].push(ParamValue {
                name,
                kind: ParamKind::INT,
                int: *n,
                text: "",
            });
        }
    }
    Ok(())
}

/// tls_mgm's parameters that name a file or directory.
const TLS_PATHS: [&str; 6] = [
    "certificate",
    "private_key",
    "ca_list",
    "ca_dir",
    "crl_dir",
    "dh_params",
];

/// `[domain]path` with a relative `path` resolved against the directory of the config file.
fn tls_path<'a>(cfg: &Config, param: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if !TLS_PATHS.contains(&param) {
        return value.into();
    }
    let (prefix, path) = match value.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((dom, rest)) => (&value[..dom.len() + 2], rest),
        None => ("", value),
    };
    let dir = std::path::Path::new(cfg.file()).parent();
    match dir {
        Some(d) if !path.is_empty() && std::path::Path::new(path).is_relative() => {
            format!("{prefix}{}", d.join(path).display()).into()
        }
        _ => value.into(),
    }
}

/// The configuration file's directory, absolute (relative paths in it resolve against it).
pub(super) fn config_dir(cfg: &Config) -> std::path::PathBuf {
    let dir = std::path::Path::new(cfg.file())
        .parent()
        .unwrap_or(std::path::Path::new(""));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}
