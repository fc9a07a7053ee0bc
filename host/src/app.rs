//! Startup and shutdown, in OpenSIPS's order: read the config, load modules, check `modparam`s,
//! compile the script, initialise modules, create sockets, start transports, wait for a signal.
//! Every error that comes from the configuration names file:line:col.
mod modparams;
mod tls;

use crate::builtin_modules::{self, Builtin};
use crate::config::{self, Config, ConfigError, GlobalValue, Item};
use crate::core::{self, Core};
use crate::modules::{self, LoadedModule};
use crate::script::{self, FunctionTable};
use crate::{log, sockets};
use abi_stable::std_types::{RResult, RSlice, RStr};
use modparams::check_modparams;
use sipcore_abi::{HostApiRef, ParamEntry, Proto, TransportRef};
use std::path::{Path, PathBuf};

/// What `main` asks for.
pub struct Options {
    /// The configuration file.
    pub config: PathBuf,
    /// Check only (`-c`): no module is initialised and no socket is bound.
    pub check_only: bool,
}

/// Global parameters (OpenSIPS core names).
struct Globals {
    log_level: i64,
    log_stderror: bool,
    /// `log_json = yes`: JSON lines on stderr.
    log_json: bool,
    /// `log_facility` (syslog; OpenSIPS's default LOG_DAEMON).
    log_facility: log::syslog::Facility,
    /// `log_name`: the syslog tag.
    log_name: String,
    workers: u32,
    mi: MiEndpoint,
    mi_enabled: bool,
    dns: crate::dns::Config,
    /// `db_default_url`: the database of modules that name none (auth_db).
    db_default_url: Option<crate::db::DbUrl>,
    /// `shutdown_timeout`: how long SIGTERM/SIGINT let connections flush and close and trace
    /// queues drain before the process exits.
    shutdown_timeout: std::time::Duration,
}

/// `shutdown_timeout` when not set.
const DEFAULT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the management interface listens (`mi_http_ip`, `mi_http_port`, `mi_http_root`, as
/// OpenSIPS's httpd/mi_http; loopback by default).
#[derive(Debug, Clone)]
pub struct MiEndpoint {
    /// Address and port.
    pub addr: std::net::SocketAddr,
    /// Path of the JSON-RPC endpoint, e.g. `/mi`.
    pub root: String,
}

impl Default for MiEndpoint {
    fn default() -> Self {
        MiEndpoint {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 8888)),
            root: "/mi".into(),
        }
    }
}

impl MiEndpoint {
    /// `http://host:port/root`.
    pub fn from_url(url: &str) -> Result<MiEndpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, "mi"));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(MiEndpoint {
            addr,
            root: format!("/{path}"),
        })
    }

    /// The endpoint a configuration file declares (the default one if it declares none).
    pub fn from_config(path: &Path) -> Result<MiEndpoint, String> {
        let cfg = config::load_file(path).map_err(|e| e.to_string())?;
        let g = read_globals(&cfg).map_err(|e| e.to_string())?;
        if !g.mi_enabled {
            return Err(format!(
                "{}: the management interface is not enabled (set mi_http_port), or use --url",
                path.display()
            ));
        }
        Ok(g.mi)
    }
}

/// auth_db's settings in the configuration file `path` (its modparams, and `db_default_url`
/// when it names no `db_url`), for `sipcore user`: no module is loaded, so a configuration
/// whose plugins are elsewhere still serves.
pub fn auth_db_config(path: &Path) -> Result<crate::db::AuthDbConfig, String> {
    let cfg = config::load_file(path).map_err(|e| e.to_string())?;
    let globals = read_globals(&cfg).map_err(|e| e.to_string())?;
    let mut settings = builtin_modules::Settings::default();
    let dir = modparams::config_dir(&cfg);
    for item in &cfg.items {
        let Item::ModParam {
            module,
            param,
            value,
            value_span,
            ..
        } = item
        else {
            continue;
        };
        if module != "auth_db" {
            continue;
        }
        let applied = match value {
            config::ModParamValue::Int(i) => settings.set(module, param, *i),
            config::ModParamValue::Str(s) => settings.set_str(module, param, s, &dir),
        };
        applied.map_err(|e| cfg.error_at(*value_span, e).to_string())?;
    }
    let mut a = settings.auth_db;
    if a.db_url.is_none() {
        a.db_url = globals.db_default_url;
    }
    Ok(a)
}

/// Run the server until SIGINT/SIGTERM (or check the config and return).
pub fn run(opts: Options) -> Result<(), String> {
    let cfg = config::load_file(&opts.config).map_err(|e| e.to_string())?;
    let globals = read_globals(&cfg).map_err(|e| e.to_string())?;
    // A check (`-c`) reports to the terminal that runs it, whatever the service logs to.
    let target = if opts.check_only || globals.log_stderror {
        if globals.log_json {
            log::Target::Json
        } else {
            log::Target::Stderr
        }
    } else {
        log::Target::Syslog {
            facility: globals.log_facility,
            tag: globals.log_name.clone(),
        }
    };
    log::init(&log::Settings {
        level: globals.log_level,
        target,
    })
    .map_err(|e| e.to_string())?;

    let (loaded, builtins) = load_modules(&cfg, &opts.config)?;
    let (params, mut settings, tls_params) =
        check_modparams(&cfg, &loaded, &builtins).map_err(|e| e.to_string())?;
    if settings.auth_db.db_url.is_none() {
        settings.auth_db.db_url = globals.db_default_url.clone();
    }
    let checked_tls = tls::check(&cfg, &tls_params).map_err(|e| e.to_string())?;
    let server_domains = checked_tls.as_ref().map_or(0, |t| t.config.server.len());
    if let Some(t) = checked_tls {
        let pairs: Vec<(&str, &str)> = tls_params.iter().map(|p| (p.name, &*p.value)).collect();
        crate::tls_mgm::set(t.config.clone(), &pairs);
        for w in &t.warnings {
            crate::log!(Warning, "tls_mgm", "{}", w);
        }
        crate::log!(
            Info,
            "tls_mgm",
            "TLS domains loaded: {} server, {} client",
            t.config.server.len(),
            t.config.client.len()
        );
    }
    let table = FunctionTable::with_core();
    let script = script::compile(&cfg, &table).map_err(|e| e.to_string())?;
    let socket_lines = sockets::parse_all(&cfg, &loaded).map_err(|e| e.to_string())?;
    if let Some(l) = socket_lines
        .iter()
        .find(|l| l.proto == Proto::WSS && server_domains == 0)
    {
        // Found here, not when the transport starts: `sipcore -c` must refuse it too.
        return Err(cfg
            .error_at(
                l.span,
                "a wss socket needs a TLS server domain: modparam(\"tls_mgm\", \"certificate\", ...) and \"private_key\"",
            )
            .to_string());
    }
    core::cluster::check(&settings.cluster)?;
    if opts.check_only {
        return Ok(());
    }

    let mut signals = install_signals()?;
    core::set_script(script);
    core::configure_location(settings.registrar, settings.usrloc);
    // The user store of www_authorize()/proxy_authorize() (auth_db's db_url): opened now, so
    // a bad file, schema or server stops the startup with its reason.
    let store = crate::db::open_pool(&settings.auth_db)
        .map_err(|e| format!("auth_db: {e}"))?
        .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn crate::auth::store::CredentialStore>);
    core::authz::configure(settings.auth, store);
    core::authz_jwt::configure(settings.auth_jwt.clone());
    core::configure_pike(settings.pike);
    core::configure_tm(settings.tm);
    core::configure_rr(settings.rr);
    let host: HostApiRef = core::hostapi::host_api();
    for (m, values) in loaded.iter().zip(&params) {
        let entries: Vec<ParamEntry<'_>> = values
            .iter()
            .map(|v| ParamEntry {
                name: RStr::from_str(v.name),
                kind: v.kind,
                int: v.int,
                str: RStr::from_str(v.text),
            })
            .collect();
        if let RResult::RErr(e) = (m.module.init())(host, RSlice::from_slice(&entries)) {
            return Err(format!(
                "module {} ({}): init failed: {e}",
                m.name,
                m.path.display()
            ));
        }
        crate::log!(
            Info,
            "core",
            "module {} {} loaded from {}",
            m.name,
            m.module.version(),
            m.path.display()
        );
    }

    core::add_stats_source();
    for m in &loaded {
        if let Some(f) = m.module.stats().and_then(|s| s.into_option()) {
            crate::stats::add_source(crate::stats::plugin_source(f));
        }
    }
    core::hostapi::set_trace_sinks(
        loaded
            .iter()
            .filter_map(|m| m.module.trace_sink().and_then(|t| t.into_option()))
            .collect(),
    );
    let socket_infos =
        sockets::create(&cfg, &socket_lines, globals.workers).map_err(|e| e.to_string())?;
    let transports: Vec<(Proto, TransportRef)> = loaded
        .iter()
        .filter_map(|m| m.transport())
        .flat_map(|t| {
            t.protos()
                .iter()
                .map(move |p| (p.proto, t))
                .collect::<Vec<_>>()
        })
        .collect();
    crate::dns::init(globals.dns.clone());
    core::install(Core::new(transports, socket_infos.clone()).ok_or("internal error: no script")?);
    core::start_cluster(&settings.cluster)?;

    let _mi_server = if globals.mi_enabled {
        let registry = crate::mi::Registry::with_builtins(
            env!("CARGO_PKG_VERSION"),
            std::time::Instant::now(),
        );
        core::register_mi(&registry)?;
        crate::stats::mi::register(&registry).map_err(|e| format!("management interface: {e}"))?;
        core::hostapi::register_plugin_mi(&registry)?;
        let tls_transports = loaded
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.transport()?)))
            .collect();
        crate::tls_mgm::register_mi(&registry, tls_transports)
            .map_err(|e| format!("management interface: {e}"))?;
        let server = crate::mi::http::serve_with_metrics(
            std::sync::Arc::new(registry),
            globals.mi.addr,
            &globals.mi.root,
            std::sync::Arc::new(|| crate::stats::prometheus::render(&crate::stats::collect())),
        )
        .map_err(|e| {
            format!(
                "management interface: cannot listen on {}: {e}",
                globals.mi.addr
            )
        })?;
        crate::log!(
            Info,
            "core",
            "management interface on http://{}{}",
            server.local_addr(),
            globals.mi.root
        );
        if !globals.mi.addr.ip().is_loopback() {
            // MI has no authentication: anyone who reaches it can close connections, dump
            // registrations and switch tracing.
            crate::log!(
                Warning,
                "core",
                "management interface on http://{}{} is reachable from the network and has no authentication: set mi_http_ip = 127.0.0.1 unless a firewall restricts the port",
                server.local_addr(),
                globals.mi.root
            );
        }
        Some(server)
    } else {
        None
    };

    let mut started: Vec<(&LoadedModule, TransportRef)> = Vec::new();
    for m in &loaded {
        if let Some(t) = m.transport() {
            if let RResult::RErr(e) = (t.start())() {
                stop_all(&started);
                return Err(format!("module {}: start failed: {e}", m.name));
            }
            started.push((m, t));
        }
    }
    for s in &socket_infos {
        crate::log!(Info, "core", "listening on {}", s.describe());
    }
    wait_for_signal(&mut signals);
    let timeout = globals.shutdown_timeout;
    crate::log!(
        Info,
        "core",
        "shutting down (shutdown_timeout {} s)",
        timeout.as_secs()
    );
    let deadline = std::time::Instant::now() + timeout;
    stop_within(&started, deadline);
    // Then what the transports' closing connections traced, and anything else queued.
    for m in &loaded {
        if let Some(flush) = m.module.flush().and_then(|f| f.into_option()) {
            flush(ms_until(deadline));
        }
    }
    for m in &loaded {
        (m.module.destroy())();
    }
    Ok(())
}

/// Milliseconds from now until `deadline` (0 once it passed).
fn ms_until(deadline: std::time::Instant) -> u64 {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    u64::try_from(left.as_millis()).unwrap_or(u64::MAX)
}

fn stop_all(started: &[(&LoadedModule, TransportRef)]) {
    for (_, t) in started.iter().rev() {
        (t.stop())();
    }
}

/// Graceful stop: every transport gets until `deadline` to flush its connections and close
/// them (ABI 1.4 `stop_within`; a 1.3 plugin is stopped the old way), all at once, so that a
/// slow client of one does not eat the time of the others.
fn stop_within(started: &[(&LoadedModule, TransportRef)], deadline: std::time::Instant) {
    std::thread::scope(|s| {
        for (_, t) in started.iter().rev() {
            let t = *t;
            s.spawn(move || match t.stop_within() {
                Some(f) => f(ms_until(deadline)),
                None => (t.stop())(),
            });
        }
    });
}

/// Handlers for SIGINT/SIGTERM (graceful stop) and SIGHUP (ignored), installed before the
/// modules start so that no signal meant for a daemon kills the process silently.
fn install_signals() -> Result<signal_hook::iterator::Signals, String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))
}

/// Waits for SIGINT or SIGTERM. SIGHUP (a closed terminal, or a service manager's "reload")
/// is logged and ignored: logs go to stderr or syslog, so there is no log file to reopen, and the
/// configuration is read only at startup.
fn wait_for_signal(signals: &mut signal_hook::iterator::Signals) {
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            crate::log!(
                Info,
                "core",
                "received SIGHUP: ignored (no log file to reopen; restart to reload the configuration)"
            );
            continue;
        }
        crate::log!(Info, "core", "received signal {sig}");
        return;
    }
}

fn read_globals(cfg: &Config) -> Result<Globals, ConfigError> {
    let mut g = Globals {
        log_level: 3,
        log_stderror: true,
        log_json: false,
        log_facility: log::syslog::Facility::DAEMON,
        log_name: "sipcore".into(),
        workers: 0,
        mi: MiEndpoint::default(),
        mi_enabled: false,
        dns: crate::dns::Config::default(),
        db_default_url: None,
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
    };
    let mut log_json_at = None;
    for item in &cfg.items {
        let Item::Global {
            name,
            value,
            span,
            value_span,
        } = item
        else {
            continue;
        };
        let int = |what: &str| match value {
            GlobalValue::Int(i) => Ok(*i),
            _ => Err(cfg.error_at(*value_span, format!("'{name}' takes {what}"))),
        };
        match name.as_str() {
            "log_level" | "debug" => g.log_level = int("an integer (-3..4)")?,
            "log_stderror" | "stderror_enabled" => g.log_stderror = int("yes/no")? != 0,
            "log_json" => {
                g.log_json = int("yes/no")? != 0;
                log_json_at = Some(*value_span);
            }
            "log_facility" => {
                let (GlobalValue::Str(f) | GlobalValue::Word(f)) = value else {
                    return Err(
                        cfg.error_at(*value_span, "log_facility takes a name, e.g. LOG_LOCAL0")
                    );
                };
                g.log_facility =
                    log::syslog::Facility::parse(f).map_err(|e| cfg.error_at(*value_span, e))?;
            }
            "log_name" => {
                let (GlobalValue::Str(n) | GlobalValue::Word(n)) = value else {
                    return Err(cfg.error_at(*value_span, "log_name takes a name"));
                };
                if !log::syslog::valid_tag(n) {
                    return Err(cfg.error_at(
                        *value_span,
                        format!("log_name: '{n}' is not a syslog tag (1-32 printable ASCII characters, no space, ':', '[' or ']')"),
                    ));
                }
                g.log_name = n.clone();
            }
            "workers" | "children" | "tcp_workers" => {
                g.workers = u32::try_from(int("a positive integer")?)
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| cfg.error_at(*value_span, format!("'{name}' must be 1-1024")))?
            }
            "mi_http_port" => {
                let port = int("a port number")?;
                g.mi_enabled = port != 0;
                g.mi.addr.set_port(
                    u16::try_from(port)
                        .map_err(|_| cfg.error_at(*value_span, "mi_http_port must be 0-65535"))?,
                );
            }
            "mi_http_ip" => {
                let text = match value {
                    GlobalValue::Str(s) | GlobalValue::Word(s) => s.as_str(),
                    GlobalValue::Int(_) => "",
                };
                let ip: std::net::IpAddr = text
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| {
                        cfg.error_at(
                            *value_span,
                            format!("mi_http_ip: '{text}' is not an IP address"),
                        )
                    })?;
                g.mi.addr.set_ip(ip);
            }
            "mi_http_root" => {
                let (GlobalValue::Str(root) | GlobalValue::Word(root)) = value else {
                    return Err(cfg.error_at(*value_span, "mi_http_root takes a path"));
                };
                g.mi.root = format!("/{}", root.trim_start_matches('/'));
            }
            n if crate::dns::Config::is_param(n) => g
                .dns
                .set(n, value)
                .map_err(|e| cfg.error_at(*value_span, e))?,
            "db_default_url" => {
                let (GlobalValue::Str(url) | GlobalValue::Word(url)) = value else {
                    return Err(cfg.error_at(*value_span, "db_default_url takes a URL"));
                };
                g.db_default_url = Some(
                    crate::db::DbUrl::parse(url, &modparams::config_dir(cfg))
                        .map_err(|e| cfg.error_at(*value_span, e.to_string()))?,
                );
            }
            "shutdown_timeout" => {
                let s = int("a number of seconds (0-3600)")?;
                if !(0..=3600).contains(&s) {
                    return Err(
                        cfg.error_at(*value_span, "shutdown_timeout must be 0-3600 (seconds)")
                    );
                }
                g.shutdown_timeout = std::time::Duration::from_secs(s as u64);
            }
            "mpath" => {
                if matches!(value, GlobalValue::Int(_)) {
                    return Err(cfg.error_at(*value_span, "mpath takes a directory name"));
                }
            }
            // OpenSIPS's core TCP parameters: passed to proto_tcp / proto_tls as their
            // modparams of the same name (app/modparams.rs), else no effect.
            n if modparams::CORE_TCP_GLOBALS.contains(&n) => {
                int("an integer")?;
            }
            // Accepted for compatibility with OpenSIPS configs; no effect here.
            "auto_aliases" | "server_header" | "user_agent_header" | "dns" | "rev_dns" => {}
            _ => return Err(cfg.error_at(*span, format!("unknown global parameter '{name}'"))),
        }
    }
    if let (Some(at), true, false) = (log_json_at, g.log_json, g.log_stderror) {
        return Err(cfg.error_at(
            at,
            "log_json = yes writes JSON lines to stderr, but log_stderror = no sends records to syslog",
        ));
    }
    Ok(g)
}

/// The compiled-in module path of a packaged build (`SIPCORE_DEFAULT_MPATH` when it was built,
/// e.g. `/usr/lib/sipcore/modules` for the Debian package); `None` for a plain cargo build.
pub const PACKAGED_MPATH: Option<&str> = option_env!("SIPCORE_DEFAULT_MPATH");

/// Default module path: the packaged one, else the directory of the running executable (where
/// cargo puts the plugins).
fn default_mpath() -> Vec<PathBuf> {
    if let Some(dir) = PACKAGED_MPATH.filter(|d| !d.is_empty()) {
        return vec![PathBuf::from(dir)];
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .into_iter()
        .collect()
}

/// What to do about a plugin not found in the default `mpath`: say where plugins come from.
fn default_mpath_hint() -> &'static str {
    if PACKAGED_MPATH.is_some() {
        " (the default mpath of this packaged build; reinstall the package, or set mpath)"
    } else {
        " (mpath defaults to the sipcore binary's directory: run target/release/sipcore after \
         `cargo build --release --workspace`, which builds the plugins beside it, or set mpath \
         to where the .so files are; `cargo install` copies only the binary)"
    }
}

/// The plugins loaded, and the built-in modules named by `loadmodule` (no file needed).
type Modules = (Vec<LoadedModule>, Vec<&'static Builtin>);

fn load_modules(cfg: &Config, cfg_path: &Path) -> Result<Modules, String> {
    let base = cfg_path.parent().unwrap_or(Path::new("."));
    let mut mpath = default_mpath();
    let mut mpath_set = false;
    let mut loaded: Vec<LoadedModule> = Vec::new();
    let mut builtins: Vec<&'static Builtin> = Vec::new();
    for item in &cfg.items {
        match item {
            Item::Global { name, value, .. } if name == "mpath" => {
                // A relative mpath is relative to the config file, so configs are relocatable.
                let dirs = match value {
                    GlobalValue::Str(s) | GlobalValue::Word(s) => s.as_str(),
                    GlobalValue::Int(_) => "",
                };
                mpath_set = true;
                mpath = dirs
                    .split(';')
                    .filter(|s| !s.is_empty())
                    .map(|d| base.join(d))
                    .collect();
            }
            Item::LoadModule { path, span } => {
                let at = |msg: String| cfg.error_at(*span, msg).to_string();
                if let Some(b) = builtin_modules::find(path) {
                    if builtins.iter().any(|o| o.name == b.name) {
                        return Err(at(format!("module {} loaded twice", b.name)));
                    }
                    crate::log!(
                        Debug,
                        "core",
                        "module {} is built in: loadmodule \"{}\" needs no file",
                        b.name,
                        path
                    );
                    builtins.push(b);
                    continue;
                }
                let file = modules::resolve(path, &mpath).map_err(|e| {
                    let hint = if mpath_set { "" } else { default_mpath_hint() };
                    at(format!("{e}{hint}"))
                })?;
                let m = modules::load(&file).map_err(|e| at(e.to_string()))?;
                if loaded.iter().any(|o| o.name == m.name) {
                    return Err(at(format!("module {} loaded twice", m.name)));
                }
                loaded.push(m);
            }
            _ => {}
        }
    }
    Ok((loaded, builtins))
}
