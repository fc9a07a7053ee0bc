//! The location service behind `save()` / `lookup()`: the [`Registrar`] tables (sharded, see
//! `usrloc`), the timer that expires bindings, connection-close cleanup and the usrloc MI
//! commands `ul_dump` and `ul_show_contact`.
//!
//! Each contact registered over a connection is bound to that connection (RFC 5626 flow,
//! RFC 7118 §5): `lookup()` sends to the connection, never to the Contact's `.invalid` host,
//! and the binding goes when the connection closes.
use super::addr::{conn_uri, connection_oriented, ConnDst};
use super::send::{peer, Core};
use crate::mi::{MiError, Params, Registry};
use crate::sip::Message;
use crate::usrloc::{Counter, Flow, Registrar, RegistrarConfig, UsrlocConfig};
use sipcore_abi::{Proto, ReceiveInfo};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// How often expired bindings are swept (lookups never return them in between).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Contact values per Contact header line of a 200 beyond the first lines: a 200 listing
/// many bindings stays within the header count a parser accepts (RFC 3261 §7.3.1 allows a
/// comma-separated list).
const CONTACTS_PER_LINE: usize = 32;

/// The registrar and usrloc modparams (set once at startup, defaults otherwise).
static SETTINGS: OnceLock<(RegistrarConfig, UsrlocConfig)> = OnceLock::new();
/// Table name → registrar. Tables are created by the script's `save`/`lookup` and never
/// removed, so they live for the whole process.
static TABLES: OnceLock<RwLock<HashMap<String, &'static Registrar>>> = OnceLock::new();
/// Bindings in all tables together (`max_registrations`).
static COUNT: OnceLock<Arc<Counter>> = OnceLock::new();

/// Apply the `registrar` and `usrloc` modparams (before any table exists; later calls are
/// ignored).
pub(crate) fn configure(reg: RegistrarConfig, ul: UsrlocConfig) {
    let _ = SETTINGS.set((reg, ul));
}

fn tables() -> &'static RwLock<HashMap<String, &'static Registrar>> {
    TABLES.get_or_init(|| RwLock::new(HashMap::new()))
}

/// The table `name`, created on first use. The map's lock is held only to find it.
fn table(name: &str) -> &'static Registrar {
    if let Some(t) = tables().read().unwrap_or_else(|e| e.into_inner()).get(name) {
        return t;
    }
    let mut w = tables().write().unwrap_or_else(|e| e.into_inner());
    w.entry(name.to_string()).or_insert_with(|| {
        let (reg, ul) = SETTINGS.get().copied().unwrap_or_default();
        let count = COUNT.get_or_init(Arc::default).clone();
        Box::leak(Box::new(Registrar::with_limits(reg, ul, count)))
    })
}

/// Every table, sorted by name (the map's lock is released before any table is used).
fn all_tables() -> Vec<(String, &'static Registrar)> {
    let mut v: Vec<(String, &'static Registrar)> = tables()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(n, t)| (n.clone(), *t))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Remove bindings from every table with `f` (returning how many it removed), logging the
/// count per table with `why`.
fn remove_everywhere(why: std::fmt::Arguments<'_>, f: impl Fn(&Registrar) -> usize) {
    for (name, r) in all_tables() {
        let n = f(r);
        if n > 0 {
            crate::log!(
                Debug,
                "registrar",
                "{} binding(s) removed from table {}: {}",
                n,
                name,
                why
            );
        }
    }
}

/// Start the expiry timer (once, at startup).
pub(crate) fn start_timer() {
    let spawned = std::thread::Builder::new()
        .name("registrar-timer".into())
        .spawn(|| loop {
            std::thread::sleep(SWEEP_EVERY);
            let now = Instant::now();
            remove_everywhere(format_args!("expired"), |r| r.expire(now));
        });
    if let Err(e) = spawned {
        crate::log!(Error, "registrar", "cannot start the expiry timer: {}", e);
    }
}

/// A connection closed: drop every binding made over it (and, in cluster mode, in Redis).
pub(crate) fn connection_closed(proto: Proto, conn_id: u64) {
    if TABLES.get().is_none() || !connection_oriented(proto) {
        return;
    }
    if !super::cluster::enabled() {
        remove_everywhere(format_args!("connection {conn_id} closed"), |r| {
            r.remove_flow(conn_id)
        });
        return;
    }
    for (name, r) in all_tables() {
        let (n, aors) = r.remove_flow_aors(conn_id);
        if n > 0 {
            crate::log!(
                Debug,
                "registrar",
                "{} binding(s) removed from table {}: connection {} closed",
                n,
                name,
                conn_id
            );
        }
        for aor in aors {
            super::cluster::changed(&name, &aor);
        }
    }
}

/// The live bindings of `aor` in `table` registered on this node (for the cluster writer).
pub(crate) fn local_bindings(
    table_name: &str,
    aor: &str,
    now: Instant,
) -> Vec<crate::usrloc::Binding> {
    let t = tables()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(table_name)
        .copied();
    t.map(|t| t.local_bindings(aor, now)).unwrap_or_default()
}

/// Every (table, AoR) with a binding registered on this node.
pub(crate) fn local_aors() -> Vec<(String, String)> {
    all_tables()
        .into_iter()
        .flat_map(|(n, t)| t.local_aors().into_iter().map(move |a| (n.clone(), a)))
        .collect()
}

/// Most tables the cluster may create from names read in Redis.
const MAX_CLUSTER_TABLES: usize = 16;

/// Replace node `node`'s bindings of `aor` in `table` (learnt from Redis); returns how many
/// the limits dropped.
pub(crate) fn set_remote(
    table_name: &str,
    aor: &str,
    node: &str,
    list: Vec<crate::usrloc::Binding>,
    now: Instant,
) -> usize {
    let known = tables()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(table_name);
    if !known && all_tables().len() >= MAX_CLUSTER_TABLES {
        return list.len();
    }
    table(table_name).set_remote(aor, node, list, now)
}

/// Forget every binding learnt from node `node` (it stopped its heartbeat); how many AoRs
/// had some.
pub(crate) fn drop_node(node: &str, now: Instant) -> usize {
    let mut n = 0;
    for (_, t) in all_tables() {
        for aor in t.aors_of_node(node) {
            t.set_remote(&aor, node, Vec::new(), now);
            n += 1;
        }
    }
    n
}

/// registrar's `max_expires`.
pub(crate) fn max_expires() -> u32 {
    SETTINGS.get().copied().unwrap_or_default().0.max_expires
}

/// The 200's Contact header values: one per line for the first [`CONTACTS_PER_LINE`], then
/// comma-joined lines of as many.
fn contact_lines(contacts: Vec<String>) -> Vec<String> {
    if contacts.len() <= CONTACTS_PER_LINE {
        return contacts;
    }
    contacts
        .chunks(CONTACTS_PER_LINE)
        .map(|c| c.join(", "))
        .collect()
}

/// `save(table)`: RFC 3261 §10.3; answers the REGISTER itself (200 with the current contacts,
/// or the error's status). Returns the script value and whether a reply was sent.
pub(crate) fn save(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    table_name: &str,
    flags: &str,
) -> (i64, bool) {
    if msg.method_str() != Some("REGISTER") {
        crate::log!(Error, "registrar", "save(): not a REGISTER"; "peer" => peer(info));
        return (-1, false);
    }
    let (Some(src), Some(local)) = (info.src.to_std(), info.dst.to_std()) else {
        return (-1, false);
    };
    // Cluster mode with Redis known down: the other nodes could not learn the binding.
    if !super::cluster::up() {
        crate::stats::counters::REG_REJECTED.inc();
        let sent = core.reply(
            info,
            msg,
            503,
            "Service Unavailable",
            &[
                ("Retry-After", "30"),
                ("P-Registrar-Error", "location store unreachable"),
            ],
        );
        return (-1, sent.unwrap_or(false));
    }
    let flow = Flow {
        conn_id: if connection_oriented(info.proto) {
            info.conn_id
        } else {
            0
        },
        proto: info.proto.name(),
        peer: src,
        local,
    };
    // RFC 3327 §5.3: the Path values are stored with the bindings; OpenSIPS's save() flags
    // choose how the 200 treats them: p0 (off: never returned), p1 (lazy, sipcore's default:
    // returned when the UA supports path), p2 (strict: 420 unless the UA supports path).
    let path_values: Vec<&str> = msg.header_list("Path").collect();
    let ua_path = msg
        .header_list("Supported")
        .any(|o| o.trim().eq_ignore_ascii_case("path"));
    let mode = if flags.contains("p0") {
        0
    } else if flags.contains("p2") {
        2
    } else {
        1
    };
    if !path_values.is_empty() && mode == 2 && !ua_path {
        crate::stats::counters::REG_REJECTED.inc();
        crate::log!(Info, "registrar", "REGISTER with Path from a UA without path support: 420"; "peer" => peer(info));
        let sent = core.reply(info, msg, 420, "Bad Extension", &[("Unsupported", "path")]);
        return (-1, sent.unwrap_or(false));
    }
    // The topmost Path value was written by the hop the REGISTER came from (each proxy adds
    // its own on top, RFC 3327 §4.2): it must name that hop's IP address, or a client could
    // register a Path to anywhere and have us send its callers' requests there (OpenSIPS and
    // Kamailio store any Path).
    if let Some(top) = path_values.first() {
        let hop = top_path_ip(top);
        let src_ip = info.src.to_std().map(|a| a.ip().to_canonical());
        if hop.is_none() || hop != src_ip {
            crate::stats::counters::REG_REJECTED.inc();
            crate::log!(Info, "registrar", "REGISTER refused with 403: its top Path ({}) does not name the hop it came from", top;
                "peer" => peer(info));
            let sent = core.reply(
                info,
                msg,
                403,
                "Forbidden (Path not from the previous hop)",
                &[],
            );
            return (-1, sent.unwrap_or(false));
        }
    }
    // RFC 5626 §6: an Outbound REGISTER (reg-id and +sip.instance, Supported: outbound) is
    // refused 439 when its first hop (the bottom Path) did not mark itself Outbound-capable
    // with `ob`; the 200 then says `Require: outbound` and how often to keep the flow alive.
    let outbound = msg
        .header_list("Supported")
        .any(|o| o.trim().eq_ignore_ascii_case("outbound"))
        && msg.header_list("Contact").any(|c| {
            let c = c.to_ascii_lowercase();
            c.contains(";reg-id=") && c.contains("+sip.instance=")
        });
    if outbound {
        let first_hop_ob = path_values.last().is_none_or(|p| {
            p.split('>')
                .next()
                .unwrap_or("")
                .split(';')
                .any(|x| x.trim().eq_ignore_ascii_case("ob"))
        });
        if !first_hop_ob {
            crate::stats::counters::REG_REJECTED.inc();
            crate::log!(Info, "registrar", "Outbound REGISTER whose first hop lacks outbound support: 439"; "peer" => peer(info));
            let sent = core.reply(info, msg, 439, "First Hop Lacks Outbound Support", &[]);
            return (-1, sent.unwrap_or(false));
        }
    }
    // Only an Outbound REGISTER's 200 names it: no string per REGISTER otherwise.
    let flow_timer = outbound
        .then(|| SETTINGS.get().map_or(120, |s| s.0.flow_timer))
        .filter(|&t| t != 0)
        .map(|t| t.to_string());
    let path = (!path_values.is_empty()).then(|| path_values.join(", "));
    let res = table(table_name).save_with_path(msg, flow, path.as_deref(), Instant::now());
    match &res {
        Ok(_) => crate::stats::counters::REG_ACCEPTED.inc(),
        Err(_) => crate::stats::counters::REG_REJECTED.inc(),
    }
    if res.is_ok() && super::cluster::enabled() {
        let aor = msg
            .to()
            .ok()
            .and_then(|t| t.uri().ok())
            .and_then(|u| crate::usrloc::aor_of(&u).ok());
        if let Some(aor) = aor {
            super::cluster::changed(table_name, &aor);
        }
    }
    let saved = res.is_ok();
    let sent = match res {
        Ok(ok) => {
            let lines = contact_lines(ok.contacts);
            let mut headers: Vec<(&str, &str)> =
                lines.iter().map(|c| ("Contact", c.as_str())).collect();
            if let (Some(p), true) = (path.as_deref(), mode != 0 && ua_path) {
                headers.push(("Path", p));
            }
            if outbound {
                headers.push(("Require", "outbound"));
            }
            if let Some(t) = flow_timer.as_deref() {
                headers.push(("Flow-Timer", t));
            }
            let sent = core.reply(info, msg, 200, "OK", &headers);
            keep_flow(core, info, ok.flow_expires);
            sent
        }
        Err(e) => {
            let (code, reason) = e.status();
            crate::log!(Info, "registrar", "REGISTER refused with {}: {}", code, e; "peer" => peer(info));
            let extra = e.extra_headers();
            let headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            core.reply(info, msg, code, reason, &headers)
        }
    };
    match sent {
        Ok(_) => (if saved { 1 } else { -1 }, true),
        Err(e) => {
            crate::log!(Warning, "registrar", "cannot answer the REGISTER: {}", e; "peer" => peer(info));
            (-1, false)
        }
    }
}

/// After a REGISTER was saved over a connection: keep the connection open, even if its client
/// only sends CRLF keep-alives, as long as the longest binding of that AoR registered over it
/// lasts (`flow_expires`; the transport extends its keep, never shortens it, so other AoRs on
/// the same connection keep theirs). When the connection holds no binding left in any table,
/// it gets back the normal idle lifetime. RFC 5626 §4.4: a registered flow must stay usable;
/// OpenSIPS registrar's `tcp_persistent_flag`. Costs the one AoR (already computed by `save`)
/// and one index lookup per table. Off with `modparam("registrar", "tcp_persistent", 0)`.
fn keep_flow(core: &Core, info: &ReceiveInfo, flow_expires: Option<u64>) {
    let on = SETTINGS.get().is_none_or(|s| s.0.tcp_persistent);
    if !on || !connection_oriented(info.proto) || info.conn_id == 0 {
        return;
    }
    let secs = match flow_expires {
        Some(s) => u32::try_from(s.max(1)).unwrap_or(u32::MAX),
        None if all_tables().iter().any(|(_, r)| r.holds_flow(info.conn_id)) => return,
        None => 0,
    };
    if core.keep_conn(info.proto, info.conn_id, secs).is_none() {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            crate::log!(
                Warning,
                "registrar",
                "the {} transport predates ABI 1.2 (no keep_until): registered connections \
                 are closed at the transport's idle lifetime",
                info.proto.name()
            )
        });
    }
}

/// What `lookup()` found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The new Request-URI: the registered contact.
    pub ruri: String,
    /// `$du`: the connection as a URI, or none for a contact reached by its address.
    pub du: Option<String>,
    /// The connection to send over.
    pub dst: Option<ConnDst>,
    /// The binding's q in thousandths, when its REGISTER gave one.
    pub q: Option<u16>,
    /// Its Path (RFC 3327 §5.3), comma-separated: the request goes there as a Route set.
    pub path: Option<String>,
}

/// `lookup(table)`: the live bindings of the Request-URI's AoR, best first (highest q, then
/// most recent), at most `max` (OpenSIPS's registrar loads every contact as a branch: the
/// first becomes the Request-URI, the others parallel branches of `t_relay()`). Over a
/// connection-oriented transport a request goes over the binding's connection; over UDP to
/// the address its REGISTER came from. Empty when the AoR has none.
pub(crate) fn lookup(
    table_name: &str,
    ruri: Option<&str>,
    info: &ReceiveInfo,
    max: usize,
) -> Vec<Found> {
    let Some(uri) = ruri.and_then(|r| crate::sip::Uri::parse(r).ok()) else {
        return Vec::new();
    };
    let aor = match crate::usrloc::aor_of(&uri) {
        Ok(a) => a,
        Err(e) => {
            crate::log!(Debug, "registrar", "lookup(): {}", e; "peer" => peer(info));
            return Vec::new();
        }
    };
    let found = |b: &crate::usrloc::Binding| {
        let proto = Proto::from_name(b.flow.proto).unwrap_or(Proto::UDP);
        let by_conn = connection_oriented(proto) && b.flow.conn_id != 0;
        // A binding registered over UDP is reached where its REGISTER came from (the source
        // address, as nathelper's `fix_nated_register` + `received` do for OpenSIPS): right
        // behind a NAT, and a Contact naming another host cannot turn the proxy into a
        // reflector towards it.
        let by_addr = !connection_oriented(proto) && b.flow.peer.port() != 0;
        // A binding with a Path (RFC 3327 §5.3) is reached through it: the first Path URI
        // (checked by save() to name the hop the REGISTER came from; never its `received`) is
        // the next hop, and the Path the Route set.
        if let Some(path) = &b.path {
            return Found {
                ruri: b.uri.clone(),
                du: Some(path_next_hop(path)),
                dst: None,
                q: b.q_given.then_some(b.q),
                path: Some(path.clone()),
            };
        }
        Found {
            ruri: b.uri.clone(),
            du: (by_conn || by_addr).then(|| conn_uri(proto, b.flow.peer)),
            dst: by_conn.then_some(ConnDst {
                proto,
                conn_id: b.flow.conn_id,
                gone: (480, "Temporarily Unavailable"),
            }),
            q: b.q_given.then_some(b.q),
            path: b.path.clone(),
        }
    };
    let t = table(table_name);
    if max == 1 {
        return t
            .with_best(&aor, Instant::now(), found)
            .into_iter()
            .collect();
    }
    t.map_live(&aor, Instant::now(), max, |b| Some(found(b)))
}

/// The IP address the host of a Path value names (an IP literal only), canonical.
fn top_path_ip(value: &str) -> Option<std::net::IpAddr> {
    let na = crate::sip::NameAddr::parse(value.trim()).ok()?;
    let uri = na.uri().ok()?;
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The next hop of a Path (RFC 3327): its first URI, which `save()` checked names the hop the
/// REGISTER came from. A `received` parameter in it is not followed here (OpenSIPS's
/// `path_use_received` does): it is the registering side's word, so a client registering
/// directly could name any host there and have us send its callers' requests to it. It stays
/// in the Route, for the edge that wrote it.
fn path_next_hop(path: &str) -> String {
    let first = path.split(',').next().unwrap_or(path).trim();
    first
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or(first)
        .to_string()
}

/// `ul_dump [brief]`: every table's bindings as JSON, written slot by slot: each slot's lock
/// is held while that slot is copied into a small buffer, never while writing to the client.
fn dump_to(out: &mut dyn Write, brief: bool) -> std::io::Result<()> {
    let now = Instant::now();
    out.write_all(b"{\"Domains\":[")?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    for (i, (name, r)) in all_tables().into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let head = serde_json::json!({ "name": name }).to_string();
        // `{"name":"location"` then `,"AORs":[...]}`.
        out.write_all(head.trim_end_matches('}').as_bytes())?;
        out.write_all(b",\"AORs\":[")?;
        let mut first = true;
        for s in 0..r.slot_count() {
            buf.clear();
            r.dump_slot(s, now, brief, &mut buf, &mut first);
            out.write_all(&buf)?;
        }
        out.write_all(b"]}")?;
    }
    out.write_all(b"]}")
}

/// The usrloc MI commands: `ul_dump` (streamed) and `ul_show_contact`, as OpenSIPS's usrloc.
pub(crate) fn register_mi(registry: &Registry) -> Result<(), MiError> {
    registry.register_stream(
        "ul_dump",
        "Lists the registered contacts of every location table; 'brief' lists only each \
         contact's URI and expiry. Streamed slot by slot.",
        Arc::new(|p: &Params<'_>| {
            p.at_most(1)?;
            let brief = match p.opt_str((0, "brief"))? {
                None => false,
                Some("brief") | Some("1") | Some("yes") => true,
                Some("0") | Some("no") => false,
                Some(other) => {
                    return Err(MiError::custom(400, format!("bad 'brief' value '{other}'")))
                }
            };
            Ok(Box::new(move |out: &mut dyn Write| dump_to(out, brief)))
        }),
    )?;
    registry.register(
        "ul_show_contact",
        "Shows the contacts of one AoR: params table_name (e.g. location) and aor \
         (user@domain or a sip: URI).",
        Arc::new(|p: &Params<'_>| {
            p.at_most(2)?;
            let name = p.get_str((0, "table_name"))?;
            let aor = p.get_str((1, "aor"))?;
            let Some(r) = all_tables()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|t| t.1)
            else {
                return Err(MiError::custom(404, "Table not found"));
            };
            let key = match crate::sip::Uri::parse(aor) {
                Ok(u) if aor.contains(':') => crate::usrloc::aor_of(&u)
                    .map_err(|e| MiError::custom(400, format!("bad AoR: {e}")))?,
                _ => aor.to_string(),
            };
            r.show(&key, Instant::now())
                .ok_or_else(|| MiError::custom(404, "AOR not found"))
        }),
    )?;
    registry.register(
        "ul_cluster_list",
        "Lists the nodes sharing registrations through Redis (usrloc cluster mode) with the \
         Unix time of their last heartbeat.",
        Arc::new(|p: &Params<'_>| {
            p.at_most(0)?;
            let nodes = super::cluster::nodes().map_err(|e| MiError::custom(503, e))?;
            let now = super::cluster_data::unix_now();
            let me = super::cluster::node();
            let list: Vec<serde_json::Value> = nodes
                .into_iter()
                .map(|(n, t)| {
                    serde_json::json!({
                        "node": n,
                        "last_refresh": t,
                        "ago": now.saturating_sub(t),
                        "self": me == Some(n.as_str()),
                    })
                })
                .collect();
            Ok(serde_json::json!({ "Nodes": list }))
        }),
    )
}

/// The usrloc and registrar statistics read now (a [`crate::stats::Source`]): usrloc's
/// `registered_users` (AoRs in every table) and, per table, `<table>-users`,
/// `<table>-contacts` (gauges) and `<table>-expires` (bindings expired, a counter); the
/// registrar's settings `max_expires`, `max_contacts`, `default_expire` (gauges, as OpenSIPS).
pub(crate) fn stats(out: &mut Vec<crate::stats::Sample>) {
    use crate::stats::Sample;
    let tables = all_tables();
    let users: usize = tables.iter().map(|(_, t)| t.len()).sum();
    out.push(Sample::new(
        "usrloc",
        "registered_users",
        users as u64,
        true,
        "AoRs registered, all tables",
    ));
    for (name, t) in &tables {
        let rows = [
            (
                "users",
                t.len() as u64,
                true,
                "AoRs registered in this table",
            ),
            (
                "contacts",
                t.own_contacts() as u64,
                true,
                "bindings (contacts) in this table",
            ),
            (
                "expires",
                t.expired_total(),
                false,
                "bindings of this table removed because they expired",
            ),
        ];
        for (what, v, gauge, help) in rows {
            out.push(Sample::new(
                "usrloc",
                &format!("{name}-{what}"),
                v,
                gauge,
                help,
            ));
        }
    }
    let (reg, _) = SETTINGS.get().copied().unwrap_or_default();
    let rows = [
        (
            "max_expires",
            u64::from(reg.max_expires),
            "registrar max_expires (s)",
        ),
        (
            "max_contacts",
            reg.max_contacts as u64,
            "registrar max_contacts",
        ),
        (
            "default_expire",
            u64::from(reg.default_expires),
            "registrar default_expires (s)",
        ),
    ];
    for (name, v, help) in rows {
        out.push(Sample::new("registrar", name, v, true, help));
    }
}

#[cfg(test)]
mod path_tests {
    use super::{path_next_hop, top_path_ip};

    /// RFC 3327: the next hop is the first Path URI, never the address its `received` names
    /// (the registering side's word: it could name anyone).
    #[test]
    fn next_hop_of_a_path() {
        assert_eq!(
            path_next_hop("<sip:tok@192.0.2.1:5060;transport=udp;lr;ob>, <sip:p2.example.com;lr>"),
            "sip:tok@192.0.2.1:5060;transport=udp;lr;ob"
        );
        assert_eq!(
            path_next_hop("<sip:tok@192.0.2.1;lr;received=\"sip:198.51.100.7:3456\">"),
            "sip:tok@192.0.2.1;lr;received=\"sip:198.51.100.7:3456\""
        );
    }

    /// Only an IP literal names a hop; IPv4-mapped IPv6 is the IPv4 address.
    #[test]
    fn top_path_ip_is_an_ip_literal() {
        assert_eq!(
            top_path_ip("<sip:t@192.0.2.1:5060;lr>"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            top_path_ip("<sip:t@[::ffff:192.0.2.1]:5060;lr>"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(top_path_ip("<sip:edge.example.com;lr>"), None);
        assert_eq!(top_path_ip("garbage"), None);
    }
}
