//! The resolver's configuration: the `dns_*` global parameters, and the system's
//! `/etc/resolv.conf` (nameservers) and `/etc/hosts` (RFC 952 host table) when `dns_server`
//! is not set. Parsing is pure; only [`Config::system_servers`] and [`hosts_file`] read files.
use crate::config::GlobalValue;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The resolver's settings (global parameters, OpenSIPS names where OpenSIPS has them).
#[derive(Debug, Clone)]
pub struct Config {
    /// `dns_server`: the servers to query; empty = the nameservers of `/etc/resolv.conf`.
    pub servers: Vec<SocketAddr>,
    /// `dns_servers_no`: how many of the servers to use (0 = all).
    pub servers_no: usize,
    /// `dns_timeout` (ms): the deadline of one destination lookup, queue wait included.
    pub timeout: Duration,
    /// `dns_retr_time` (s): wait before retransmitting a query.
    pub retr_time: Duration,
    /// `dns_retr_no`: retransmissions of a query before giving up (within `dns_timeout`).
    pub retr_no: u32,
    /// `dns_try_naptr`: query NAPTR first (RFC 3263 §4.1).
    pub try_naptr: bool,
    /// `dns_max_pending`: requests waiting for a lookup; more are answered 503 at once.
    pub max_pending: usize,
    /// `dns_cache_size`: answers kept in the cache.
    pub cache_size: usize,
    /// `dns_threads`: lookups run at the same time.
    pub threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: Vec::new(),
            servers_no: 0,
            timeout: Duration::from_millis(2000),
            retr_time: Duration::from_secs(1),
            retr_no: 2,
            try_naptr: true,
            max_pending: 256,
            cache_size: 4096,
            threads: 4,
        }
    }
}

impl Config {
    /// The servers to query: `dns_server`, else `/etc/resolv.conf`'s, else 127.0.0.1:53 (the
    /// resolver default), at most `dns_servers_no` of them.
    pub fn effective_servers(&self) -> Vec<SocketAddr> {
        let mut s = if self.servers.is_empty() {
            Self::system_servers()
        } else {
            self.servers.clone()
        };
        if s.is_empty() {
            s.push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        if self.servers_no > 0 {
            s.truncate(self.servers_no);
        }
        s
    }

    /// The global parameters this configuration reads.
    pub const PARAMS: &'static [&'static str] = &[
        "dns_server",
        "dns_servers_no",
        "dns_timeout",
        "dns_retr_time",
        "dns_retr_no",
        "dns_try_naptr",
        "dns_max_pending",
        "dns_cache_size",
        "dns_threads",
        "dns_use_search_list",
        "disable_dns_blacklist",
    ];

    /// Whether `name` is one of [`Config::PARAMS`].
    pub fn is_param(name: &str) -> bool {
        Self::PARAMS.contains(&name)
    }

    /// Set the global parameter `name` (one of [`Config::PARAMS`]) from the config file.
    pub fn set(&mut self, name: &str, value: &GlobalValue) -> Result<(), String> {
        let int = |lo: i64, hi: i64| match value {
            GlobalValue::Int(i) if (lo..=hi).contains(i) => Ok(*i),
            _ => Err(format!("'{name}' takes an integer {lo}-{hi}")),
        };
        let size = |i: i64| usize::try_from(i).unwrap_or(0);
        match name {
            "dns_server" => {
                let (GlobalValue::Str(s) | GlobalValue::Word(s)) = value else {
                    return Err("dns_server takes \"ip[:port][, ip[:port]...]\"".into());
                };
                self.servers = parse_servers(s).map_err(|e| format!("dns_server: {e}"))?;
            }
            "dns_timeout" => self.timeout = Duration::from_millis(int(1, 60_000)?.unsigned_abs()),
            "dns_retr_time" => self.retr_time = Duration::from_secs(int(1, 60)?.unsigned_abs()),
            "dns_retr_no" => self.retr_no = u32::try_from(int(0, 10)?).unwrap_or(0),
            "dns_try_naptr" => self.try_naptr = int(0, 1)? != 0,
            "dns_servers_no" => self.servers_no = size(int(0, 16)?),
            "dns_max_pending" => self.max_pending = size(int(1, 100_000)?),
            "dns_cache_size" => self.cache_size = size(int(1, 10_000_000)?),
            "dns_threads" => self.threads = size(int(1, 64)?),
            // OpenSIPS's; accepted for its configs: names are absolute, no blacklist is kept.
            "dns_use_search_list" | "disable_dns_blacklist" => {
                int(0, 1)?;
            }
            _ => return Err(format!("unknown DNS parameter '{name}'")),
        }
        Ok(())
    }

    fn system_servers() -> Vec<SocketAddr> {
        std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| parse_resolv_conf(&t))
            .unwrap_or_default()
    }
}

/// `dns_server = "ip[:port][, ip[:port]...]"` (port 53 by default; IPv6 as `[::1]:53`).
pub fn parse_servers(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<SocketAddr>()
                .or_else(|_| {
                    s.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                })
                .map_err(|_| format!("'{s}' is not an IP address with an optional port"))
        })
        .collect()
}

/// The `nameserver` lines of a resolv.conf (resolv.conf(5)), on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            let ip = w.next()?.split('%').next()?.parse::<IpAddr>().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// A hosts(5) table: lower-case name → addresses, in file order.
pub fn parse_hosts(text: &str) -> HashMap<String, Vec<IpAddr>> {
    let mut out: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let Some(Ok(ip)) = w.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in w {
            let v = out.entry(super::records::normalize(name)).or_default();
            if !v.contains(&ip) {
                v.push(ip);
            }
        }
    }
    out
}

/// `/etc/hosts`, consulted before DNS as the system resolver does ("files dns").
pub fn hosts_file() -> HashMap<String, Vec<IpAddr>> {
    std::fs::read_to_string("/etc/hosts")
        .map(|t| parse_hosts(&t))
        .unwrap_or_default()
}
