//! Modules built into the host: OpenSIPS configurations say `loadmodule "registrar.so"`,
//! `"usrloc.so"`, `"sl.so"`, `"tm.so"`... for functions this host implements itself
//! (`save`/`lookup`, `sl_send_reply`, `t_relay`, `record_route`/`loose_route`,
//! `mf_process_maxfwd_header`, `sanity_check`/`sipmsg_validate`, ...). Such a `loadmodule`
//! needs no file, and the module's `modparam`s are checked against the parameters declared
//! here, as a plugin's are against its ABI [`ParamSpec`] list.
use crate::db::{AuthDbConfig, DbUrl};
use crate::pike::PikeConfig;
use crate::usrloc::{RegistrarConfig, UsrlocConfig};
use abi_stable::std_types::RStr;
use sipcore_abi::{ParamKind, ParamSpec};
use std::path::Path;

/// A module the host implements.
#[derive(Debug)]
pub struct Builtin {
    /// Its OpenSIPS name.
    pub name: &'static str,
    /// Its parameters (none for most).
    pub params: &'static [ParamSpec],
}

const fn int(name: &'static str, default: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name: RStr::from_str(name),
        kind: ParamKind::INT,
        multi: false,
        default: RStr::from_str(default),
        doc: RStr::from_str(doc),
    }
}

const REGISTRAR: &[ParamSpec] = &[
    int(
        "default_expires",
        "3600",
        "expiry (s) when the REGISTER gives none",
    ),
    int(
        "min_expires",
        "60",
        "shorter non-zero expiries get 423 (0: no minimum)",
    ),
    int(
        "max_expires",
        "3600",
        "longer expiries are shortened to this",
    ),
    int(
        "max_contacts",
        "10",
        "bindings per AoR; beyond, 503 (0: no limit)",
    ),
    int(
        "max_request_contacts",
        "32",
        "Contact values in one REGISTER; beyond, 403 (0: no limit)",
    ),
    int(
        "tcp_persistent",
        "1",
        "1: a ws/tcp connection a REGISTER came over stays open while its bindings last (0: off)",
    ),
    int(
        "flow_timer",
        "120",
        "Flow-Timer seconds in the 200 to an Outbound REGISTER, RFC 5626 §6 (0: none; Kamailio outbound's name)",
    ),
];

const USRLOC: &[ParamSpec] = &[
    int(
        "hash_size",
        "9",
        "the table has 2^hash_size slots, each with its own lock (1-16)",
    ),
    int(
        "max_registrations",
        "100000",
        "bindings in all tables together; beyond, 503 (0: no limit)",
    ),
    int(
        "db_mode",
        "0",
        "0 only: the table is in memory, no database",
    ),
    single(
        "cachedb_url",
        "",
        "cluster mode: the Redis shared by the nodes, redis://host:port/db (with working_mode_preset)",
    ),
    single(
        "working_mode_preset",
        "",
        "full-sharing-cachedb-cluster: share the bindings of every node through cachedb_url",
    ),
    single(
        "node_uri",
        "",
        "cluster mode: how the other nodes reach this one, sip:ip:port;transport=udp|tcp (default: the first tcp, else udp, socket)",
    ),
];

const AUTH: &[ParamSpec] = &[int(
    "nonce_expire",
    "30",
    "seconds a challenge's nonce is valid; then stale=true and the client retries by itself",
)];

const fn text(name: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name: RStr::from_str(name),
        kind: ParamKind::STR,
        multi: true,
        default: RStr::from_str(""),
        doc: RStr::from_str(doc),
    }
}

/// OpenSIPS tls_mgm's parameters (`[domain]value`, repeatable): checked and loaded by
/// [`sipcore_tls`] at startup, for the TLS transports.
const TLS_MGM: &[ParamSpec] = &[
    text(
        "server_domain",
        "declare a server TLS domain: name[=ip:port]",
    ),
    text(
        "client_domain",
        "declare a client TLS domain: name[=ip:port]",
    ),
    text("certificate", "[domain]certificate file (PEM)"),
    text("private_key", "[domain]private key file (PEM)"),
    text("ca_list", "[domain]CA certificates file (PEM)"),
    text("ca_dir", "[domain]CA certificates directory"),
    text("crl_dir", "[domain]CRL directory"),
    text(
        "crl_check_all",
        "[domain]1: check the CRLs of the whole chain",
    ),
    text(
        "tls_method",
        "[domain]protocol range, e.g. TLSv1_2- (at least TLS 1.2)",
    ),
    text("ciphers_list", "[domain]OpenSSL cipher list (TLS 1.2)"),
    text("ec_curve", "[domain]ECDH curve"),
    text("dh_params", "[domain]DH parameters file (PEM)"),
    text("verify_cert", "[domain]1: verify the peer's certificate"),
    text(
        "require_cert",
        "[domain]1: a client certificate is required",
    ),
    text(
        "match_ip_address",
        "[domain]addresses the domain serves (ip:port, *)",
    ),
    text(
        "match_sip_domain",
        "[domain]SNI / SIP domains the domain serves (wildcards, *)",
    ),
    text("tls_library", "openssl only"),
    text("client_tls_domain_avp", "AVP naming the client domain"),
    text(
        "client_sip_domain_avp",
        "AVP naming the SIP domain for client domain matching",
    ),
];

/// OpenSIPS tm's parameters (RFC 3261 §17 timers and the proxy's final-response timers).
const TM: &[ParamSpec] = &[
    int(
        "fr_timeout",
        "30",
        "seconds a branch waits for a final response (for an INVITE: for any response) (1-3600)",
    ),
    int(
        "fr_inv_timeout",
        "120",
        "seconds an INVITE branch answered provisionally waits for the final response (1-3600)",
    ),
    int(
        "T1_timer",
        "500",
        "RFC 3261 T1 in milliseconds: first retransmission interval over UDP (10-60000)",
    ),
    int(
        "T2_timer",
        "4000",
        "RFC 3261 T2 in milliseconds: longest retransmission interval (10-600000; raised to T1_timer when below it)",
    ),
    int(
        "T4_timer",
        "5000",
        "RFC 3261 T4 in milliseconds: how long a message may stay in the network (timers I and K over UDP; sipcore's, 10-600000)",
    ),
    int(
        "max_transactions",
        "100000",
        "transactions held at once; beyond, t_relay() answers 503 (sipcore's; 1-100000000)",
    ),
    int(
        "max_transactions_per_source",
        "1000",
        "transactions one connection (UDP: one IP address) has waiting for a final response at once; beyond, its t_relay() gets 503 with Retry-After (sipcore's; 1-100000000)",
    ),
    int(
        "wt_timer",
        "0",
        "seconds a finished transaction stays at most to absorb retransmissions (timers D, I, J, K, L, M); 0: the RFC 3261 values, 32 s over UDP (OpenSIPS: 5; 0-3600)",
    ),
];

/// OpenSIPS rr's parameters (RFC 3261 §16.6 step 4, RFC 5658).
const RR: &[ParamSpec] = &[int(
    "enable_double_rr",
    "1",
    "1: two Record-Route values when a request leaves on another socket than it came in on (RFC 5658; 0: one, the inbound socket's)",
)];

/// OpenSIPS pike's parameters, and two of sipcore's (see [`crate::pike`]).
const PIKE: &[ParamSpec] = &[
    int(
        "sampling_time_unit",
        "2",
        "seconds per sampling unit (1-3600)",
    ),
    int(
        "reqs_density_per_unit",
        "30",
        "requests per unit and source that always pass; more block the source (0-1000000)",
    ),
    int(
        "remove_latency",
        "120",
        "seconds after its last request before a source is forgotten (raised to sampling_time_unit + 1 when not above it)",
    ),
    int(
        "pike_log_level",
        "1",
        "OpenSIPS log level of the block / release lines (-3 alert .. 4 debug; 1 L_WARN)",
    ),
    int(
        "ipv6_prefix",
        "128",
        "sipcore: IPv6 sources are counted per prefix of this length (1-128; 64: per /64)",
    ),
    int(
        "max_tracked",
        "100000",
        "sipcore: sources tracked at most; beyond, the coldest is forgotten (1-10000000)",
    ),
    ParamSpec {
        name: RStr::from_str("check_route"),
        kind: ParamKind::STR,
        multi: false,
        default: RStr::from_str(""),
        doc: RStr::from_str(
            "OpenSIPS's automatic mode: only \"\" (off) is accepted; call pike_check_req() from the route",
        ),
    },
];

const fn single(name: &'static str, default: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name: RStr::from_str(name),
        kind: ParamKind::STR,
        multi: false,
        default: RStr::from_str(default),
        doc: RStr::from_str(doc),
    }
}

/// OpenSIPS auth_db's parameters (names and defaults of `modules/auth_db/authdb_mod.c`), and
/// sipcore's lookup pool limits (`db_*`, which OpenSIPS has not).
const AUTH_DB: &[ParamSpec] = &[
    single(
        "db_url",
        "",
        "the user database: sqlite:///abs/path.db, sqlite://path/relative/to/the/config.db, postgres://user:pass@host:port/db (else db_default_url)",
    ),
    single("user_column", "username", "column of the user name"),
    single("domain_column", "domain", "column of the domain"),
    single(
        "password_column",
        "ha1",
        "column of the MD5 HA1, or of the clear password with calculate_ha1",
    ),
    single("hash_column_sha256", "ha1_sha256", "column of the SHA-256 HA1"),
    single(
        "hash_column_sha512t256",
        "ha1_sha512t256",
        "column of the SHA-512/256 HA1",
    ),
    single(
        "uri_user_column",
        "username",
        "uri table (does_uri_exist, not implemented): accepted, no effect",
    ),
    single(
        "uri_domain_column",
        "domain",
        "uri table (not implemented): accepted, no effect",
    ),
    single(
        "uri_uriuser_column",
        "uri_user",
        "uri table (not implemented): accepted, no effect",
    ),
    single(
        "load_credentials",
        "",
        "columns loaded into AVPs: only empty (not supported)",
    ),
    int(
        "calculate_ha1",
        "0",
        "1: password_column holds the clear password, HA1s are computed",
    ),
    int(
        "use_domain",
        "1",
        "1: users are looked up by user name and domain (0: by user name only)",
    ),
    int(
        "skip_version_check",
        "0",
        "accepted, no effect (the table's version is not checked)",
    ),
    int(
        "db_timeout",
        "2000",
        "ms: deadline of one lookup, queue wait included (sipcore)",
    ),
    int(
        "db_workers",
        "2",
        "threads querying the database, each with its connection (sipcore)",
    ),
    int(
        "db_max_pending",
        "256",
        "lookups waiting for a thread; more fail at once (sipcore)",
    ),
];

/// OpenSIPS auth_jwt's parameters (names and defaults of `modules/auth_jwt/authjwt_mod.c`;
/// those of its database mode are accepted with no effect, as `jwt_db_authorize()` is not
/// implemented), and sipcore's `username_claim` and `clock_skew`.
const AUTH_JWT: &[ParamSpec] = &[
    int(
        "db_mode",
        "0",
        "0 only: keys come from the script (jwt_script_authorize); jwt_db_authorize is not implemented",
    ),
    single("db_url", "", "jwt_db_authorize's database: accepted, no effect"),
    single("profiles_table", "jwt_profiles", "accepted, no effect (jwt_db_authorize)"),
    single("secrets_table", "jwt_secrets", "accepted, no effect (jwt_db_authorize)"),
    single("tag_column", "tag", "accepted, no effect (jwt_db_authorize)"),
    single("username_column", "sip_username", "accepted, no effect (jwt_db_authorize)"),
    single("secret_tag_column", "corresponding_tag", "accepted, no effect (jwt_db_authorize)"),
    single("secret_column", "secret", "accepted, no effect (jwt_db_authorize)"),
    single("start_ts_column", "start_ts", "accepted, no effect (jwt_db_authorize)"),
    single("end_ts_column", "end_ts", "accepted, no effect (jwt_db_authorize)"),
    single("tag_claim", "tag", "accepted, no effect (jwt_db_authorize)"),
    single(
        "load_credentials",
        "",
        "columns loaded into AVPs: only empty (not supported)",
    ),
    single(
        "username_claim",
        "sub",
        "the claim naming the SIP user: user or user@domain (sipcore)",
    ),
    int(
        "clock_skew",
        "30",
        "seconds of leeway on the exp and nbf claims, 0-300 (sipcore)",
    ),
];

/// Every module the host implements.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "registrar",
        params: REGISTRAR,
    },
    Builtin {
        name: "usrloc",
        params: USRLOC,
    },
    Builtin {
        name: "sl",
        params: &[],
    },
    Builtin {
        name: "tm",
        params: TM,
    },
    Builtin {
        name: "rr",
        params: RR,
    },
    Builtin {
        name: "path",
        params: &[],
    },
    Builtin {
        name: "maxfwd",
        params: &[],
    },
    Builtin {
        name: "sanity",
        params: &[],
    },
    Builtin {
        name: "sipmsgops",
        params: &[],
    },
    Builtin {
        name: "textops",
        params: &[],
    },
    Builtin {
        name: "signaling",
        params: &[],
    },
    Builtin {
        name: "tls_mgm",
        params: TLS_MGM,
    },
    Builtin {
        name: "tls_openssl",
        params: &[],
    },
    Builtin {
        name: "auth",
        params: AUTH,
    },
    Builtin {
        name: "pike",
        params: PIKE,
    },
    Builtin {
        name: "auth_db",
        params: AUTH_DB,
    },
    Builtin {
        name: "auth_jwt",
        params: AUTH_JWT,
    },
    Builtin {
        name: "nathelper",
        params: &[],
    },
    Builtin {
        name: "db_sqlite",
        params: &[],
    },
    Builtin {
        name: "db_postgres",
        params: &[],
    },
];

/// The built-in module a `loadmodule` names (`"usrloc.so"` or `"usrloc"`; a path with a
/// directory always names a file).
pub fn find(load_name: &str) -> Option<&'static Builtin> {
    if load_name.contains('/') {
        return None;
    }
    let name = load_name.strip_suffix(".so").unwrap_or(load_name);
    BUILTINS.iter().find(|b| b.name == name)
}

/// The settings the built-in modules' parameters give. `set(module, param, value)` is called
/// once per checked `modparam`; an error is a message for that value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    /// registrar's.
    pub registrar: RegistrarConfig,
    /// usrloc's.
    pub usrloc: UsrlocConfig,
    /// auth's.
    pub auth: crate::core::authz::AuthConfig,
    /// pike's.
    pub pike: PikeConfig,
    /// tm's.
    pub tm: crate::core::TmConfig,
    /// rr's.
    pub rr: crate::core::RrConfig,
    /// auth_db's (its `db_url` already parsed, a relative SQLite path resolved against the
    /// configuration file's directory; the global `db_default_url` when it has none).
    pub auth_db: AuthDbConfig,
    /// auth_jwt's.
    pub auth_jwt: crate::core::authz_jwt::JwtConfig,
    /// usrloc's cluster mode (`cachedb_url`, `working_mode_preset`, `node_uri`).
    pub cluster: crate::core::ClusterConfig,
}

impl Settings {
    /// Apply one integer modparam of a built-in module (its name and type already checked).
    pub fn set(&mut self, module: &str, param: &str, value: i64) -> Result<(), String> {
        let count = |max: i64| {
            if (0..=max).contains(&value) {
                Ok(value)
            } else {
                Err(format!("{module} {param} must be 0-{max}"))
            }
        };
        let secs = || count(i64::from(u32::MAX)).map(|v| v as u32);
        let r = &mut self.registrar;
        let pk = &mut self.pike;
        let range = |lo: i64, hi: i64| {
            if (lo..=hi).contains(&value) {
                Ok(value)
            } else {
                Err(format!("{module} {param} must be {lo}-{hi}"))
            }
        };
        match (module, param) {
            ("rr", "enable_double_rr") => self.rr.double_rr = count(1)? == 1,
            ("tm", "fr_timeout") => self.tm.fr_timeout = range(1, 3600)? as u32,
            ("tm", "fr_inv_timeout") => self.tm.fr_inv_timeout = range(1, 3600)? as u32,
            ("tm", "T1_timer") => self.tm.t1_ms = range(10, 60_000)? as u32,
            ("tm", "T2_timer") => self.tm.t2_ms = range(10, 600_000)? as u32,
            ("tm", "T4_timer") => self.tm.t4_ms = range(10, 600_000)? as u32,
            ("tm", "max_transactions_per_source") => {
                self.tm.max_per_source = range(1, 100_000_000)? as u32
            }
            ("tm", "max_transactions") => self.tm.max_transactions = range(1, 100_000_000)? as u32,
            ("tm", "wt_timer") => self.tm.wt_timer = range(0, 3600)? as u32,
            ("pike", "sampling_time_unit") => pk.sampling_time_unit = range(1, 3600)? as u32,
            ("pike", "reqs_density_per_unit") => {
                pk.reqs_density_per_unit = count(1_000_000)? as u32
            }
            ("pike", "remove_latency") => pk.remove_latency = secs()?,
            ("pike", "pike_log_level") => pk.log_level = range(-3, 4)?,
            ("pike", "ipv6_prefix") => pk.ipv6_prefix = range(1, 128)? as u8,
            ("pike", "max_tracked") => pk.max_tracked = range(1, 10_000_000)? as u32,
            ("registrar", "default_expires") => r.default_expires = secs()?,
            ("registrar", "min_expires") => r.min_expires = secs()?,
            ("registrar", "max_expires") => r.max_expires = secs()?,
            ("registrar", "max_contacts") => r.max_contacts = count(1_000_000)? as usize,
            ("registrar", "flow_timer") => r.flow_timer = range(0, 86_400)? as u32,
            ("registrar", "max_request_contacts") => {
                r.max_request_contacts = count(1_000_000)? as usize
            }
            ("registrar", "tcp_persistent") => r.tcp_persistent = count(1)? == 1,
            ("usrloc", "hash_size") => {
                if !(1..=16).contains(&value) {
                    return Err("usrloc hash_size must be 1-16 (2^hash_size slots)".into());
                }
                self.usrloc.hash_size = value as u32;
            }
            ("usrloc", "max_registrations") => {
                self.usrloc.max_registrations = count(100_000_000)? as usize
            }
            ("usrloc", "db_mode") if value != 0 => {
                return Err("usrloc db_mode: only 0 (in memory, no database) is supported".into())
            }
            ("usrloc", "db_mode") => {}
            ("auth", "nonce_expire") => {
                if !(1..=3600).contains(&value) {
                    return Err("auth nonce_expire must be 1-3600 (seconds)".into());
                }
                self.auth.nonce_expire = value as u32;
            }
            ("auth_jwt", "db_mode") if value != 0 => {
                return Err(
                    "auth_jwt db_mode: only 0 is supported (jwt_db_authorize is not implemented; \
                     pass the key to jwt_script_authorize)"
                        .into(),
                )
            }
            ("auth_jwt", "db_mode") => {}
            ("auth_jwt", "clock_skew") => {
                if !(0..=300).contains(&value) {
                    return Err("auth_jwt clock_skew must be 0-300 (seconds)".into());
                }
                self.auth_jwt.clock_skew = value as u32;
            }
            ("auth_db", "calculate_ha1") => self.auth_db.calculate_ha1 = count(1)? == 1,
            ("auth_db", "use_domain") => self.auth_db.use_domain = count(1)? == 1,
            ("auth_db", "skip_version_check") => {}
            ("auth_db", "db_timeout") => {
                if !(1..=600_000).contains(&value) {
                    return Err("auth_db db_timeout must be 1-600000 (ms)".into());
                }
                self.auth_db.pool.timeout = std::time::Duration::from_millis(value as u64);
            }
            ("auth_db", "db_workers") => {
                if !(1..=64).contains(&value) {
                    return Err("auth_db db_workers must be 1-64".into());
                }
                self.auth_db.pool.workers = value as usize;
            }
            ("auth_db", "db_max_pending") => {
                if !(1..=1_000_000).contains(&value) {
                    return Err("auth_db db_max_pending must be 1-1000000".into());
                }
                self.auth_db.pool.max_pending = value as usize;
            }
            _ => return Err(format!("module '{module}' has no parameter '{param}'")),
        }
        Ok(())
    }

    /// Apply one string modparam of a built-in module (tls_mgm's excepted); `config_dir` is
    /// the configuration file's directory, for relative paths.
    pub fn set_str(
        &mut self,
        module: &str,
        param: &str,
        value: &str,
        config_dir: &Path,
    ) -> Result<(), String> {
        let a = &mut self.auth_db;
        let column = |slot: &mut String| {
            crate::db::config::check_identifier(value)
                .map_err(|e| format!("auth_db {param}: {e}"))?;
            *slot = value.to_string();
            Ok::<(), String>(())
        };
        match (module, param) {
            ("usrloc", "cachedb_url") => {
                let mut c = crate::core::ClusterConfig {
                    cachedb_url: value.to_string(),
                    preset: crate::core::cluster::PRESET.to_string(),
                    node_uri: String::new(),
                };
                if value.is_empty() {
                    c.preset.clear();
                }
                crate::core::cluster::check(&c)?;
                self.cluster.cachedb_url = value.to_string();
            }
            ("usrloc", "working_mode_preset") => {
                if !value.is_empty() && value != crate::core::cluster::PRESET {
                    return Err(format!(
                        "usrloc working_mode_preset \"{value}\" is not supported (only \"{}\")",
                        crate::core::cluster::PRESET
                    ));
                }
                self.cluster.preset = value.to_string();
            }
            ("usrloc", "node_uri") => {
                let c = crate::core::ClusterConfig {
                    cachedb_url: "redis://127.0.0.1/".into(),
                    preset: crate::core::cluster::PRESET.to_string(),
                    node_uri: value.to_string(),
                };
                crate::core::cluster::check(&c)?;
                self.cluster.node_uri = value.to_string();
            }
            ("auth_db", "db_url") if value.is_empty() => a.db_url = None,
            ("auth_db", "db_url") => {
                a.db_url = Some(DbUrl::parse(value, config_dir).map_err(|e| e.to_string())?)
            }
            ("auth_db", "user_column") => column(&mut a.user_column)?,
            ("auth_db", "domain_column") => column(&mut a.domain_column)?,
            ("auth_db", "password_column") => column(&mut a.password_column)?,
            ("auth_db", "hash_column_sha256") => column(&mut a.hash_column_sha256)?,
            ("auth_db", "hash_column_sha512t256") => column(&mut a.hash_column_sha512t256)?,
            ("auth_db", "uri_user_column" | "uri_domain_column" | "uri_uriuser_column") => {}
            ("auth_db", "load_credentials") if !value.is_empty() => {
                return Err(
                    "auth_db load_credentials: loading columns into AVPs is not supported".into(),
                )
            }
            ("auth_db", "load_credentials") => {}
            (
                "auth_jwt",
                "db_url" | "profiles_table" | "secrets_table" | "tag_column" | "username_column"
                | "secret_tag_column" | "secret_column" | "start_ts_column" | "end_ts_column"
                | "tag_claim",
            ) => {}
            ("auth_jwt", "load_credentials") if !value.is_empty() => {
                return Err(
                    "auth_jwt load_credentials: loading columns into AVPs is not supported".into(),
                )
            }
            ("auth_jwt", "load_credentials") => {}
            ("auth_jwt", "username_claim") if value.is_empty() => {
                return Err("auth_jwt username_claim: the name of a claim, e.g. sub".into())
            }
            ("auth_jwt", "username_claim") => self.auth_jwt.username_claim = value.to_string(),
            // OpenSIPS's default: no automatic mode.
            ("pike", "check_route") if value.is_empty() => {}
            ("pike", "check_route") => return Err(
                "pike check_route (OpenSIPS's automatic mode, a route run for every packet) is \
                     not supported: call pike_check_req() from the request route instead"
                    .into(),
            ),
            _ => return Err(format!("module '{module}' has no parameter '{param}'")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tls_mgm parameter declared here is one the TLS layer takes, and the reverse.
    #[test]
    fn tls_mgm_params_match_the_tls_crate() {
        for p in TLS_MGM {
            assert!(
                sipcore_tls::TlsConfig::is_param(p.name.as_str()),
                "{}",
                p.name.as_str()
            );
        }
        for name in sipcore_tls::TlsConfig::params() {
            assert!(
                TLS_MGM.iter().any(|p| p.name.as_str() == name),
                "tls_mgm {name} is not declared"
            );
        }
        assert!(!sipcore_tls::TlsConfig::is_param("no_such"));
    }

    #[test]
    fn names_and_params() {
        assert_eq!(find("usrloc.so").map(|b| b.name), Some("usrloc"));
        assert_eq!(find("registrar").map(|b| b.name), Some("registrar"));
        assert!(find("proto_ws.so").is_none());
        assert!(find("/opt/mods/tm.so").is_none());
        let mut s = Settings::default();
        for b in BUILTINS {
            for p in b.params.iter().filter(|p| p.kind == ParamKind::INT) {
                let v: i64 = p.default.as_str().parse().unwrap();
                s.set(b.name, p.name.as_str(), v).unwrap();
            }
            for p in b.params.iter().filter(|p| p.kind == ParamKind::STR) {
                if b.name != "tls_mgm" {
                    s.set_str(b.name, p.name.as_str(), p.default.as_str(), Path::new("/"))
                        .unwrap();
                }
            }
        }
        assert_eq!(
            s,
            Settings::default(),
            "declared defaults are the real ones"
        );
        s.set("registrar", "max_contacts", 2000).unwrap();
        assert_eq!(s.registrar.max_contacts, 2000);
        assert!(s.set("usrloc", "hash_size", 0).is_err());
        assert!(s.set("usrloc", "db_mode", 1).is_err());
        assert!(s.set("registrar", "max_contacts", -1).is_err());
        assert!(s.registrar.tcp_persistent);
        s.set("registrar", "tcp_persistent", 0).unwrap();
        assert!(!s.registrar.tcp_persistent);
        assert!(s.set("registrar", "tcp_persistent", 2).is_err());
        assert_eq!(find("pike.so").map(|b| b.name), Some("pike"));
        s.set("pike", "sampling_time_unit", 1).unwrap();
        s.set("pike", "reqs_density_per_unit", 20).unwrap();
        s.set("pike", "ipv6_prefix", 64).unwrap();
        assert_eq!(
            (
                s.pike.sampling_time_unit,
                s.pike.reqs_density_per_unit,
                s.pike.ipv6_prefix
            ),
            (1, 20, 64)
        );
        assert!(s.set("pike", "sampling_time_unit", 0).is_err());
        assert!(s.set("pike", "ipv6_prefix", 129).is_err());
        assert!(s.set("pike", "pike_log_level", 5).is_err());
        s.set_str("pike", "check_route", "", Path::new("/"))
            .unwrap();
        let e = s
            .set_str("pike", "check_route", "pike", Path::new("/"))
            .unwrap_err();
        assert!(e.contains("pike_check_req()"), "{e}");
    }

    #[test]
    fn auth_db_params() {
        assert_eq!(find("auth_db.so").map(|b| b.name), Some("auth_db"));
        assert!(find("db_sqlite.so").is_some() && find("db_postgres.so").is_some());
        let mut s = Settings::default();
        let dir = Path::new("/etc/sipcore");
        s.set_str("auth_db", "db_url", "sqlite://users.db", dir)
            .unwrap();
        assert_eq!(
            s.auth_db.db_url,
            Some(DbUrl::Sqlite {
                path: "/etc/sipcore/users.db".into()
            })
        );
        assert!(s
            .set_str("auth_db", "db_url", "mysql://x@y/z", dir)
            .is_err());
        s.set_str("auth_db", "password_column", "password", dir)
            .unwrap();
        s.set("auth_db", "calculate_ha1", 1).unwrap();
        let c = s.auth_db.columns().unwrap();
        assert_eq!((c.clear.as_str(), c.md5.as_str()), ("password", "ha1"));
        assert!(s.set_str("auth_db", "user_column", "x; drop", dir).is_err());
        assert!(s
            .set_str("auth_db", "load_credentials", "$avp(x)=rpid", dir)
            .is_err());
        assert!(s.set("auth_db", "calculate_ha1", 2).is_err());
        assert!(s.set("auth_db", "db_timeout", 0).is_err());
        s.set("auth_db", "db_timeout", 150).unwrap();
        assert_eq!(
            s.auth_db.pool.timeout,
            std::time::Duration::from_millis(150)
        );
        assert!(s.set_str("auth_db", "no_such", "x", dir).is_err());
    }

    #[test]
    fn auth_jwt_params() {
        assert_eq!(find("auth_jwt.so").map(|b| b.name), Some("auth_jwt"));
        let mut s = Settings::default();
        let dir = Path::new("/etc/sipcore");
        s.set_str("auth_jwt", "username_claim", "sip_user", dir)
            .unwrap();
        s.set("auth_jwt", "clock_skew", 5).unwrap();
        assert_eq!(
            (s.auth_jwt.username_claim.as_str(), s.auth_jwt.clock_skew),
            ("sip_user", 5)
        );
        s.set_str("auth_jwt", "db_url", "mysql://u:p@h/db", dir)
            .unwrap();
        s.set_str("auth_jwt", "tag_claim", "kid", dir).unwrap();
        s.set("auth_jwt", "db_mode", 0).unwrap();
        let e = s.set("auth_jwt", "db_mode", 1).unwrap_err();
        assert!(e.contains("jwt_db_authorize"), "{e}");
        assert!(s.set("auth_jwt", "clock_skew", 301).is_err());
        assert!(s.set_str("auth_jwt", "username_claim", "", dir).is_err());
        assert!(s
            .set_str("auth_jwt", "load_credentials", "$avp(x)=y", dir)
            .is_err());
        assert!(s.set_str("auth_jwt", "no_such", "x", dir).is_err());
    }
}
