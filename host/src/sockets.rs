//! `socket=` / `listen=` lines: parsed by the `socket-config` crate, mapped to the module that
//! serves the protocol, resolved to addresses (`*` and interface names expand to every address of
//! the machine or interface, host names are resolved once at startup) and handed to the
//! transport as listeners.
use crate::config::{Config, ConfigError, Item, Span};
use crate::core::SocketInfo;
use crate::modules::LoadedModule;
use abi_stable::std_types::{RResult, RStr};
use sipcore_abi::{ListenerSpec, Proto, SockAddr, TransportRef};
use socket_config::{Host, SocketDef, SocketSpec};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// One parsed socket line, with the transport that will own it.
pub struct SocketLine {
    /// The parsed definition.
    pub def: SocketDef,
    /// Where the value starts in the config.
    pub span: Span,
    /// The protocol.
    pub proto: Proto,
    /// Its transport.
    pub transport: TransportRef,
}

/// The span of the character at 1-based `column` of a value starting at `span`.
fn column_span(text: &str, span: Span, column: usize) -> Span {
    let off = text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(i, _)| i);
    let start = span.start as usize + off;
    Span::new(start, start + 1)
}

/// Parse every socket line and find its transport.
pub fn parse_all(cfg: &Config, loaded: &[LoadedModule]) -> Result<Vec<SocketLine>, ConfigError> {
    let mut out = Vec::new();
    for item in &cfg.items {
        let Item::Socket { text, span } = item else {
            continue;
        };
        let spec = socket_config::parse(text).map_err(|e| {
            cfg.error_at(
                column_span(text, *span, e.column),
                format!("bad socket: {}", e.kind),
            )
        })?;
        let defs = match spec {
            SocketSpec::Single(d) => vec![d],
            SocketSpec::Bond { members, .. } => members,
        };
        for def in defs {
            let name = def.proto.name();
            let found = loaded.iter().find_map(|m| {
                let t = m.transport()?;
                let p = t.protos().iter().find(|p| p.name.as_str() == name)?.proto;
                Some((p, t))
            });
            let Some((proto, transport)) = found else {
                return Err(cfg.error_at(
                    *span,
                    format!("no loaded module serves protocol '{name}' (loadmodule \"proto_{name}.so\"?)"),
                ));
            };
            out.push(SocketLine {
                def,
                span: *span,
                proto,
                transport,
            });
        }
    }
    Ok(out)
}

/// Addresses a socket host stands for.
fn resolve_host(host: &Host, port: u16) -> Result<Vec<IpAddr>, String> {
    let all_ifaces =
        || if_addrs::get_if_addrs().map_err(|e| format!("cannot list interfaces: {e}"));
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80, // skip scoped link-local
        IpAddr::V4(_) => true,
    };
    let ips: Vec<IpAddr> = match host {
        Host::V4(ip) => vec![IpAddr::V4(*ip)],
        Host::V6(ip) => vec![IpAddr::V6(*ip)],
        Host::Any => all_ifaces()?
            .iter()
            .map(|i| i.ip())
            .filter(usable)
            .collect(),
        Host::Name(name) => {
            let by_iface: Vec<IpAddr> = all_ifaces()?
                .iter()
                .filter(|i| &i.name == name)
                .map(|i| i.ip())
                .filter(usable)
                .collect();
            if by_iface.is_empty() {
                (name.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve '{name}': {e}"))?
                    .map(|a| a.ip())
                    .collect()
            } else {
                by_iface
            }
        }
    };
    let mut uniq: Vec<IpAddr> = Vec::new();
    for ip in ips {
        if !uniq.contains(&ip) {
            uniq.push(ip);
        }
    }
    if uniq.is_empty() {
        return Err("no address to listen on".into());
    }
    Ok(uniq)
}

/// Create the listeners: one per (address, port) of every line.
pub fn create(
    cfg: &Config,
    lines: &[SocketLine],
    global_workers: u32,
) -> Result<Vec<SocketInfo>, ConfigError> {
    let mut out: Vec<SocketInfo> = Vec::new();
    for line in lines {
        let default_port = (line.transport.default_port())(line.proto);
        for (port, adv_port) in line.def.expand_ports(default_port) {
            let ips = resolve_host(&line.def.host, port).map_err(|e| cfg.error_at(line.span, e))?;
            for ip in ips {
                let addr = SocketAddr::new(ip, port);
                if out.iter().any(|s| s.addr == addr && s.proto == line.proto) {
                    continue; // duplicate ip:port of the same protocol, as OpenSIPS drops them
                }
                let advertised = line.def.advertised.as_ref().map(|a| match adv_port {
                    Some(p) => format!("{}:{p}", a.host),
                    None => a.host.to_string(),
                });
                let info = SocketInfo {
                    id: out.len() as u32,
                    proto: line.proto,
                    addr,
                    advertised,
                    tag: line.def.tag.clone(),
                };
                let spec = ListenerSpec {
                    id: info.id,
                    proto: line.proto,
                    addr: SockAddr::from(addr),
                    advertised: RStr::from_str(info.advertised.as_deref().unwrap_or("")),
                    workers: line.def.workers.unwrap_or(global_workers),
                    tag: RStr::from_str(info.tag.as_deref().unwrap_or("")),
                    reuse_port: line.def.reuse_port,
                };
                if let RResult::RErr(e) = (line.transport.add_listener())(&spec) {
                    return Err(cfg.error_at(
                        line.span,
                        format!("cannot listen on {}: {e}", info.describe()),
                    ));
                }
                out.push(info);
            }
        }
    }
    Ok(out)
}
