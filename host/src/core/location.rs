//! The location service behind `save()` / `lookup()`: the in-memory [`Registrar`] tables,
//! the timer that expires bindings, connection-close cleanup and the `ul_dump` MI command.
//!
//! Each contact registered over a connection is bound to that connection (RFC 5626 flow,
//! RFC 7118 §5): `lookup()` sends to the connection, never to the Contact's `.invalid` host,
//! and the binding goes when the connection closes.
use super::addr::{conn_uri, connection_oriented, ConnDst};
use super::send::{peer, Core};
use crate::sip::Message;
use crate::usrloc::{Flow, Registrar, RegistrarConfig};
use sipcore_abi::{Proto, ReceiveInfo};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How often expired bindings are swept (lookups never return them in between).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Table name → registrar.
static TABLES: OnceLock<Mutex<HashMap<String, Registrar>>> = OnceLock::new();

fn tables() -> MutexGuard<'static, HashMap<String, Registrar>> {
    let m = TABLES.get_or_init(|| Mutex::new(HashMap::new()));
    // A panic while holding the lock leaves consistent data (every operation is atomic per
    // request): keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_table<R>(name: &str, f: impl FnOnce(&mut Registrar) -> R) -> R {
    let mut t = tables();
    // The table exists after its first save: no key allocated per request.
    if !t.contains_key(name) {
        t.insert(name.to_string(), Registrar::new(RegistrarConfig::default()));
    }
    match t.get_mut(name) {
        Some(r) => f(r),
        None => f(&mut Registrar::new(RegistrarConfig::default())),
    }
}

/// Remove bindings from every table with `f` (returning how many it removed), logging the
/// count per table with `why`.
fn remove_everywhere(why: std::fmt::Arguments<'_>, mut f: impl FnMut(&mut Registrar) -> usize) {
    let mut t = tables();
    for (name, r) in t.iter_mut() {
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

/// A connection closed: drop every binding made over it.
pub(crate) fn connection_closed(proto: Proto, conn_id: u64) {
    if TABLES.get().is_none() || !connection_oriented(proto) {
        return;
    }
    remove_everywhere(format_args!("connection {conn_id} closed"), |r| {
        r.remove_flow(conn_id)
    });
}

/// `save(table)`: RFC 3261 §10.3; answers the REGISTER itself (200 with the current contacts,
/// or the error's status). Returns the script value and whether a reply was sent.
pub(crate) fn save(core: &Core, info: &ReceiveInfo, msg: &Message, table: &str) -> (i64, bool) {
    if msg.method_str() != Some("REGISTER") {
        crate::log!(Error, "registrar", "save(): not a REGISTER"; "peer" => peer(info));
        return (-1, false);
    }
    let (Some(src), Some(local)) = (info.src.to_std(), info.dst.to_std()) else {
        return (-1, false);
    };
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
    let res = with_table(table, |r| r.save(msg, flow, Instant::now()));
    let sent = match &res {
        Ok(ok) => {
            let contacts: Vec<(&str, &str)> = ok
                .contacts
                .iter()
                .map(|c| ("Contact", c.as_str()))
                .collect();
            core.reply(info, msg, 200, "OK", &contacts)
        }
        Err(e) => {
            let (code, reason) = e.status();
            crate::log!(Info, "registrar", "REGISTER refused with {}: {}", code, e; "peer" => peer(info));
            let extra = e.extra_header();
            let headers: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            core.reply(info, msg, code, reason, &headers)
        }
    };
    match sent {
        Ok(_) => (if res.is_ok() { 1 } else { -1 }, true),
        Err(e) => {
            crate::log!(Warning, "registrar", "cannot answer the REGISTER: {}", e; "peer" => peer(info));
            (-1, false)
        }
    }
}

/// What `lookup()` found.
pub(crate) struct Found {
    /// The new Request-URI: the registered contact.
    pub ruri: String,
    /// `$du`: the connection as a URI, or none for a contact reached by its address.
    pub du: Option<String>,
    /// The connection to send over.
    pub dst: Option<ConnDst>,
}

/// `lookup(table)`: the best live binding of the Request-URI's AoR (highest q, then most
/// recent; a stateless proxy does not fork).
pub(crate) fn lookup(table: &str, ruri: Option<&str>, info: &ReceiveInfo) -> Option<Found> {
    let uri = crate::sip::Uri::parse(ruri?).ok()?;
    let aor = match crate::usrloc::aor_of(&uri) {
        Ok(a) => a,
        Err(e) => {
            crate::log!(Debug, "registrar", "lookup(): {}", e; "peer" => peer(info));
            return None;
        }
    };
    let now = Instant::now();
    with_table(table, |r| {
        let b = r.best(&aor, now)?;
        let proto = Proto::from_name(b.flow.proto).unwrap_or(Proto::UDP);
        let by_conn = connection_oriented(proto) && b.flow.conn_id != 0;
        Some(Found {
            ruri: b.uri.clone(),
            du: by_conn.then(|| conn_uri(proto, b.flow.peer)),
            dst: by_conn.then_some(ConnDst {
                proto,
                conn_id: b.flow.conn_id,
                gone: (480, "Temporarily Unavailable"),
            }),
        })
    })
}

/// `ul_dump`: every table's bindings as JSON.
pub(crate) fn dump() -> serde_json::Value {
    let now = Instant::now();
    let t = tables();
    let mut names: Vec<&String> = t.keys().collect();
    names.sort();
    let list: Vec<serde_json::Value> = names
        .into_iter()
        .filter_map(|n| {
            let r = t.get(n)?;
            Some(serde_json::json!({ "name": n, "AORs": r.dump(now) }))
        })
        .collect();
    serde_json::json!({ "Domains": list })
}
