//! The host's side of OpenSIPS `tls_mgm`: the checked `modparam("tls_mgm", ...)` values handed
//! to TLS transports ([`HostApi::tls_params`](sipcore_abi::HostApi), ABI 1.3), and the MI
//! commands `tls_list` (the domains) and `tls_reload` (every TLS transport reads its
//! certificate files again; established connections are not touched).
//!
//! The values are checked and their files loaded once at startup (`app/tls.rs`), so a
//! transport's own load from the same values can only fail if a file changed in between.
use crate::mi::{MiError, Params, Registry};
use abi_stable::std_types::{RResult, RSlice, RStr};
use serde_json::{json, Value};
use sipcore_abi::{catch_panic, Setting, TransportRef};
use sipcore_tls::filter::{AddrFilter, NameFilter};
use sipcore_tls::{DomainConfig, TlsConfig, TlsManager};
use std::sync::{Arc, OnceLock};

struct State {
    config: TlsConfig,
    /// The values as [`Setting`]s pointing into leaked strings (they live for the process).
    settings: Vec<Setting<'static>>,
}

static STATE: OnceLock<State> = OnceLock::new();

/// Publish the checked configuration and its values in file order (before any plugin's
/// `init`). A second call is ignored.
pub fn set(config: TlsConfig, params: &[(&str, &str)]) {
    let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
    let settings = params
        .iter()
        .map(|(n, v)| Setting {
            name: RStr::from_str(leak(n)),
            value: RStr::from_str(leak(v)),
        })
        .collect();
    let _ = STATE.set(State { config, settings });
}

/// `HostApi::tls_params` (ABI 1.3): the tls_mgm values in file order (empty without any).
pub extern "C" fn tls_params() -> RSlice<'static, Setting<'static>> {
    catch_panic(|| {
        STATE
            .get()
            .map_or(RSlice::EMPTY, |s| RSlice::from_slice(&s.settings))
    })
    .unwrap_or(RSlice::EMPTY)
}

/// Registers `tls_list` and `tls_reload`; `tls_reload` calls the `tls_reload` of each of
/// `transports` that has one.
pub fn register_mi(
    registry: &Registry,
    transports: Vec<(String, TransportRef)>,
) -> Result<(), MiError> {
    registry.register(
        "tls_list",
        "Lists the TLS domains (tls_mgm): side, name, matched addresses and SNI names, \
         certificate, method and verification.",
        Arc::new(|p: &Params<'_>| {
            p.at_most(0)?;
            let Some(s) = STATE.get() else {
                return Ok(json!({ "Domains": [] }));
            };
            let domains: Vec<Value> = s
                .config
                .server
                .iter()
                .chain(&s.config.client)
                .map(domain_json)
                .collect();
            Ok(json!({ "Domains": domains }))
        }),
    )?;
    let transports = Arc::new(transports);
    registry.register(
        "tls_reload",
        "Reads every certificate, key and CA file of the TLS domains again and swaps them in \
         for new handshakes; established connections keep theirs. On any error nothing changes.",
        Arc::new(move |p: &Params<'_>| {
            p.at_most(0)?;
            reload(&transports)
        }),
    )
}

/// Check the files first (a failure changes nothing anywhere), then have each TLS transport
/// reload its contexts.
fn reload(transports: &[(String, TransportRef)]) -> Result<Value, MiError> {
    let Some(s) = STATE.get() else {
        return Err(MiError::custom(
            400,
            "no TLS domains are configured (tls_mgm)",
        ));
    };
    TlsManager::new(s.config.clone())
        .map_err(|e| MiError::custom(500, format!("tls_reload: {e}")))?;
    let mut done = serde_json::Map::new();
    for (module, t) in transports {
        let Some(f) = t.tls_reload().and_then(|f| f.into_option()) else {
            continue;
        };
        match f() {
            RResult::ROk(summary) => {
                done.insert(module.clone(), Value::String(summary.into()));
            }
            RResult::RErr(e) => {
                return Err(MiError::custom(500, format!("tls_reload: {module}: {e}")));
            }
        }
    }
    Ok(json!({ "Reloaded": done }))
}

fn domain_json(d: &DomainConfig) -> Value {
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let addrs: Vec<String> = d
        .match_addresses
        .iter()
        .map(|a| match a {
            AddrFilter::Any => "*".to_string(),
            AddrFilter::Exact(a) => a.to_string(),
        })
        .collect();
    let names: Vec<String> = d
        .match_names
        .iter()
        .map(|n| match n {
            NameFilter::Any => "*".to_string(),
            NameFilter::NoName => "none".to_string(),
            NameFilter::Exact(s) | NameFilter::Pattern(s) => s.clone(),
        })
        .collect();
    json!({
        "name": d.name,
        "type": format!("{:?}", d.side).to_lowercase(),
        "match_ip_address": addrs,
        "match_sip_domain": names,
        "certificate": path(&d.certificate),
        "private_key": path(&d.private_key),
        "ca_list": path(&d.ca_list),
        "ca_dir": path(&d.ca_dir),
        "tls_method": d.method.to_string(),
        "verify_cert": d.verify_cert,
        "require_cert": d.require_cert,
    })
}
