//! Registrations shared by several nodes through Redis (OpenSIPS usrloc's
//! `working_mode_preset = "full-sharing-cachedb-cluster"` with `cachedb_url`): each node
//! writes the bindings it holds to a Redis hash per AoR (one field per node, see
//! `cluster_data`) and publishes the change; every node subscribes and keeps the other nodes'
//! bindings in its own tables, each with a Path to the node holding the client's flow (RFC
//! 3327 §5.3), so `lookup()` stays in memory and a request for a client of another node goes
//! there as a Route, where `loose_route()` finds the flow token.
//!
//! Redis is only ever called from the two threads started here (never from an I/O worker):
//! the writer, fed by a bounded queue, and the subscriber. Every call has a deadline. While
//! Redis is known down, `save()` answers 503 at once; the state changes are logged once each,
//! and on recovery the writer writes every local binding again and the subscriber reloads.
use super::cluster_data::{self as data, CHANNEL, NODES, PREFIX};
use super::cluster_live::{Liveness, DEAD_AFTER};
use super::proxy::encode_token;
use super::redis_conn::{connect, DEADLINE};
use super::redis_url::{redacted, Target};
use super::send::Core;
use crate::usrloc::Binding;
use sipcore_abi::Proto;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Pause between two attempts to reach Redis.
const RETRY: Duration = Duration::from_millis(500);
/// How often a node writes its heartbeat (`ul_cluster_list`).
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Changes waiting for the writer; beyond, a full rewrite is scheduled instead.
const QUEUE: usize = 65_536;
/// Most AoRs the writer puts in one pipeline.
const BATCH: usize = 256;
/// The preset naming this mode (OpenSIPS usrloc's).
pub const PRESET: &str = "full-sharing-cachedb-cluster";

/// usrloc's cluster modparams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `cachedb_url`: `redis://host:port/db` (empty: no cluster).
    pub cachedb_url: String,
    /// `working_mode_preset`: empty or [`PRESET`].
    pub preset: String,
    /// `node_uri`: how the other nodes reach this one (`sip:ip:port;transport=udp|tcp`);
    /// empty: the first tcp (else udp) socket.
    pub node_uri: String,
}

/// One job of the writer.
enum Job {
    /// Write the local bindings of (table, aor) as they are now.
    Sync(String, String),
    /// `ul_cluster_list`: the heartbeats.
    Nodes(SyncSender<Result<Vec<(String, u64)>, String>>),
}

struct Cluster {
    /// Where Redis is.
    target: Target,
    /// `cachedb_url` without its password, for logs.
    url: String,
    /// This node's id: `host:port` of `node_uri`.
    node: String,
    /// The Path host part and transport.
    node_proto: Proto,
    up: AtomicBool,
    resync: AtomicBool,
    queue_full_logged: AtomicBool,
    tx: SyncSender<Job>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Whether the cluster mode is configured.
pub(crate) fn enabled() -> bool {
    CLUSTER.get().is_some()
}

/// Whether Redis is reachable as far as the writer knows (true without a cluster).
pub(crate) fn up() -> bool {
    CLUSTER.get().is_none_or(|c| c.up.load(Ordering::Acquire))
}

/// Check the modparams: `(node id, proto)` of an explicit `node_uri`, or an error message.
pub fn check(cfg: &ClusterConfig) -> Result<(), String> {
    match (cfg.cachedb_url.is_empty(), cfg.preset.as_str()) {
        (true, "") => return Ok(()),
        (false, PRESET) => {}
        (true, PRESET) => {
            return Err(format!(
                "usrloc working_mode_preset {PRESET} needs a cachedb_url"
            ))
        }
        (false, "") => {
            return Err(format!(
                "usrloc cachedb_url needs working_mode_preset \"{PRESET}\""
            ))
        }
        (_, other) => {
            return Err(format!(
                "usrloc working_mode_preset \"{other}\" is not supported (only \"{PRESET}\")"
            ))
        }
    }
    match Target::parse(&cfg.cachedb_url).map_err(|e| format!("usrloc cachedb_url: {e}"))? {
        Target::Single(url) => {
            redis::Client::open(url.as_str()).map_err(|e| format!("usrloc cachedb_url: {e}"))?;
        }
        Target::Sentinel { userinfo, db, .. } => {
            redis::Client::open(Target::primary_url(&userinfo, db, "127.0.0.1", 6379))
                .map_err(|e| format!("usrloc cachedb_url: {e}"))?;
        }
    }
    if !cfg.node_uri.is_empty() {
        node_of_uri(&cfg.node_uri)?;
    }
    Ok(())
}

/// `(host:port, proto)` of a `node_uri`.
fn node_of_uri(uri: &str) -> Result<(String, Proto), String> {
    let u = crate::sip::Uri::parse(uri)
        .map_err(|_| format!("usrloc node_uri '{uri}' is not a SIP URI"))?;
    let port = u
        .port()
        .ok_or_else(|| format!("usrloc node_uri '{uri}' needs a port"))?;
    let proto = match u.param("transport") {
        None => Proto::UDP,
        Some(Some(t)) if t.eq_ignore_ascii_case("udp") => Proto::UDP,
        Some(Some(t)) if t.eq_ignore_ascii_case("tcp") => Proto::TCP,
        _ => {
            return Err(format!(
                "usrloc node_uri '{uri}': transport must be udp or tcp"
            ))
        }
    };
    Ok((format!("{}:{port}", u.host()), proto))
}

/// Start the cluster threads (once, with the sockets known). Without a `node_uri`, the node
/// is named after its first tcp (else udp) socket: over TCP nothing stays after a
/// transaction ends, and a browser's INVITE may be too large for a UDP datagram.
pub(crate) fn start(core: &Core, cfg: &ClusterConfig) -> Result<(), String> {
    if cfg.cachedb_url.is_empty() {
        return Ok(());
    }
    let (node, node_proto) = if cfg.node_uri.is_empty() {
        let s = core
            .sockets
            .iter()
            .find(|s| s.proto == Proto::TCP)
            .or_else(|| core.sockets.iter().find(|s| s.proto == Proto::UDP))
            .ok_or("usrloc cluster: needs a tcp or udp socket (or node_uri) for the other nodes")?;
        let (host, _) = s.public_host_port();
        let unspecified = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified());
        if unspecified {
            return Err(format!(
                "usrloc cluster: the other nodes cannot reach {}: set modparam(\"usrloc\", \"node_uri\", \"sip:IP:PORT;transport=udp\") or the socket's `as`",
                super::addr::public_addr(s)
            ));
        }
        (super::addr::public_addr(s), s.proto)
    } else {
        node_of_uri(&cfg.node_uri)?
    };
    let (tx, rx) = sync_channel(QUEUE);
    let c = Cluster {
        target: Target::parse(&cfg.cachedb_url).map_err(|e| format!("usrloc cachedb_url: {e}"))?,
        url: redacted(&cfg.cachedb_url),
        node,
        node_proto,
        up: AtomicBool::new(false),
        resync: AtomicBool::new(true),
        queue_full_logged: AtomicBool::new(false),
        tx,
    };
    if CLUSTER.set(c).is_err() {
        return Ok(());
    }
    let spawn = |name: &str, f: fn()| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map(|_| ())
            .map_err(|e| format!("usrloc cluster: cannot start a thread: {e}"))
    };
    WRITER_RX
        .set(std::sync::Mutex::new(Some(rx)))
        .map_err(|_| "usrloc cluster started twice")?;
    spawn("ul-redis-writer", writer)?;
    spawn("ul-redis-sub", subscriber)?;
    if let Some(c) = CLUSTER.get() {
        crate::log!(
            Info,
            "usrloc",
            "cluster mode: node {} sharing bindings through {}",
            c.node,
            c.url
        );
    }
    Ok(())
}

static WRITER_RX: OnceLock<std::sync::Mutex<Option<Receiver<Job>>>> = OnceLock::new();

/// The local bindings of (table, aor) changed: have the writer put them in Redis. Never
/// blocks; when the queue is full a full rewrite is scheduled instead.
pub(crate) fn changed(table: &str, aor: &str) {
    let Some(c) = CLUSTER.get() else { return };
    match c.tx.try_send(Job::Sync(table.to_string(), aor.to_string())) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            c.resync.store(true, Ordering::Release);
            if !c.queue_full_logged.swap(true, Ordering::AcqRel) {
                crate::log!(
                    Warning,
                    "usrloc",
                    "cluster: the Redis queue is full; every binding will be written again"
                );
            }
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// The Path (RFC 3327) by which the other nodes reach binding `b` of this node: its own Path
/// when it came through an edge, else this node's address with the flow token of the
/// client's connection (`proxy::path_value`'s form), `lr` and `ob`.
fn path_of(c: &Cluster, b: &Binding) -> Option<String> {
    if let Some(p) = &b.path {
        return Some(p.clone());
    }
    let proto = Proto::from_name(b.flow.proto)?;
    let token = encode_token((proto, b.flow.conn_id), Some((c.node_proto, 0)));
    Some(format!(
        "<sip:{token}@{};transport={};lr;ob>",
        c.node,
        c.node_proto.name()
    ))
}

fn set_state(c: &Cluster, up: bool, why: &str) {
    if c.up.swap(up, Ordering::AcqRel) != up {
        if up {
            crate::log!(
                Info,
                "usrloc",
                "cluster: Redis at {} is reachable: sharing bindings",
                c.url
            );
        } else {
            crate::log!(Error, "usrloc", "cluster: Redis at {} is unreachable ({}): REGISTERs are answered 503 until it is back", c.url, why);
        }
    }
}

/// Write the local bindings of each (table, aor) as they are now and publish them, in one
/// pipeline (one round trip for a whole batch of changes).
fn sync(
    c: &Cluster,
    con: &mut redis::Connection,
    aors: &[(String, String)],
) -> redis::RedisResult<()> {
    let now = Instant::now();
    let unix = data::unix_now();
    let mut p = redis::pipe();
    p.atomic();
    for (table, aor) in aors {
        let local = super::location::local_bindings(table, aor, now);
        let (text, max_exp) =
            data::encode(table, aor, &c.node, &local, |b| path_of(c, b), now, unix);
        let key = data::key(table, aor);
        if local.is_empty() {
            p.cmd("HDEL").arg(&key).arg(&c.node).ignore();
        } else {
            let ttl = max_exp.saturating_sub(unix) + 5;
            p.cmd("HSET").arg(&key).arg(&c.node).arg(&text).ignore();
            p.cmd("EXPIRE").arg(&key).arg(ttl).arg("NX").ignore();
            p.cmd("EXPIRE").arg(&key).arg(ttl).arg("GT").ignore();
        }
        p.cmd("PUBLISH").arg(CHANNEL).arg(&text).ignore();
    }
    p.query::<()>(con)
}

/// `ul_cluster_list`'s question: the heartbeats, sorted.
fn answer_nodes(
    con: &mut redis::Connection,
    reply: SyncSender<Result<Vec<(String, u64)>, String>>,
) -> redis::RedisResult<()> {
    let r = redis::cmd("HGETALL")
        .arg(NODES)
        .query::<HashMap<String, u64>>(con);
    let _ = reply.send(
        r.as_ref()
            .map(|m| {
                let mut v: Vec<(String, u64)> = m.iter().map(|(k, t)| (k.clone(), *t)).collect();
                v.sort();
                v
            })
            .map_err(|e| e.to_string()),
    );
    r.map(|_| ())
}

fn writer() {
    let Some(c) = CLUSTER.get() else { return };
    let Some(rx) = WRITER_RX.get().and_then(|m| m.lock().ok()?.take()) else {
        return;
    };
    let mut con: Option<redis::Connection> = None;
    let mut last_beat = Instant::now() - HEARTBEAT;
    let mut purged = false;
    loop {
        if con.is_none() {
            match connect(&c.target) {
                Ok(x) => con = Some(x),
                Err(e) => {
                    set_state(c, false, &e.to_string());
                    // Drain what came meanwhile: the rewrite on recovery covers it.
                    while let Ok(j) = rx.try_recv() {
                        if let Job::Nodes(reply) = j {
                            let _ = reply.send(Err("Redis unreachable".into()));
                        }
                    }
                    c.resync.store(true, Ordering::Release);
                    std::thread::sleep(RETRY);
                    continue;
                }
            }
        }
        let Some(cn) = con.as_mut() else { continue };
        let mut res: redis::RedisResult<()> = Ok(());
        if last_beat.elapsed() >= HEARTBEAT {
            res = redis::cmd("HSET")
                .arg(NODES)
                .arg(&c.node)
                .arg(data::unix_now())
                .query(cn);
            last_beat = Instant::now();
        }
        if res.is_ok() {
            set_state(c, true, "");
        }
        if res.is_ok() && !purged {
            match purge_earlier_run(c, cn) {
                Ok(n) => {
                    purged = true;
                    if n > 0 {
                        crate::log!(
                            Info,
                            "usrloc",
                            "cluster: {} AoR(s) left in Redis by an earlier run of node {} rewritten",
                            n,
                            c.node
                        );
                    }
                }
                Err(e) => res = Err(e),
            }
        }
        if res.is_ok() && c.resync.swap(false, Ordering::AcqRel) {
            c.queue_full_logged.store(false, Ordering::Release);
            for chunk in super::location::local_aors().chunks(BATCH) {
                res = sync(c, cn, chunk);
                if res.is_err() {
                    break;
                }
            }
        }
        if res.is_ok() {
            match rx.recv_timeout(RETRY) {
                Ok(Job::Sync(t, a)) => {
                    // What else is queued, each AoR once: one round trip for the batch.
                    let mut seen = HashSet::new();
                    let mut batch = Vec::new();
                    let mut nodes = None;
                    let mut next = Some(Job::Sync(t, a));
                    while let Some(job) = next.take() {
                        match job {
                            Job::Sync(t, a) => {
                                if seen.insert((t.clone(), a.clone())) {
                                    batch.push((t, a));
                                }
                            }
                            Job::Nodes(reply) => nodes = Some(reply),
                        }
                        if batch.len() < BATCH && nodes.is_none() {
                            next = rx.try_recv().ok();
                        }
                    }
                    res = sync(c, cn, &batch);
                    if let (Ok(()), Some(reply)) = (&res, nodes) {
                        res = answer_nodes(cn, reply);
                    }
                }
                Ok(Job::Nodes(reply)) => res = answer_nodes(cn, reply),
                // Idle: check that Redis still answers (a dead Redis is noticed within
                // about a second, not at the next REGISTER).
                Err(RecvTimeoutError::Timeout) => res = redis::cmd("PING").query(cn),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if let Err(e) = res {
            set_state(c, false, &e.to_string());
            c.resync.store(true, Ordering::Release);
            con = None;
        }
    }
}

/// Once per process, at the first connection: the values an earlier run of this node (same
/// address) left in Redis name flows that died with it; each is replaced by what the node
/// holds now (usually nothing) and the change published, so the other nodes stop sending
/// requests there at once instead of at the bindings' expiry. Returns how many there were.
fn purge_earlier_run(c: &Cluster, con: &mut redis::Connection) -> redis::RedisResult<usize> {
    let mut n = 0;
    for_each_aor_key(con, |con, k| {
        let v: Option<Vec<u8>> = redis::cmd("HGET").arg(&k).arg(&c.node).query(con)?;
        let Some(v) = v else { return Ok(()) };
        let max = super::location::max_expires();
        match data::decode(&v, Instant::now(), data::unix_now(), max) {
            Ok(r) => sync(c, con, &[(r.table, r.aor)])?,
            Err(_) => redis::cmd("HDEL").arg(&k).arg(&c.node).query::<()>(con)?,
        }
        n += 1;
        Ok(())
    })?;
    Ok(n)
}

/// `f` on every AoR key in Redis (SCAN, 200 at a time), with the connection.
fn for_each_aor_key(
    con: &mut redis::Connection,
    mut f: impl FnMut(&mut redis::Connection, String) -> redis::RedisResult<()>,
) -> redis::RedisResult<()> {
    let mut cursor: u64 = 0;
    let pattern = format!("{PREFIX}aor:*");
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(200)
            .query(con)?;
        for k in keys {
            f(con, k)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Apply one node's value (from the channel or a load); bad values are logged and skipped.
fn apply(c: &Cluster, raw: &[u8], from_field: Option<&str>) {
    if data::node_of(raw).is_some_and(|n| n == c.node) {
        return;
    }
    let now = Instant::now();
    let max_expires = super::location::max_expires();
    match data::decode(raw, now, data::unix_now(), max_expires) {
        Ok(r) if r.node == c.node => {}
        Ok(r) if from_field.is_some_and(|f| f != r.node) => {
            crate::log!(
                Warning,
                "usrloc",
                "cluster: value of node {} under field {:?} skipped",
                r.node,
                from_field
            );
        }
        Ok(r) => {
            if let Some(why) = &r.skipped {
                crate::log!(
                    Warning,
                    "usrloc",
                    "cluster: a binding of {} from node {} skipped: {}",
                    r.aor,
                    r.node,
                    why
                );
            }
            let dropped = super::location::set_remote(&r.table, &r.aor, &r.node, r.bindings, now);
            if dropped > 0 {
                crate::log!(Warning, "usrloc", "cluster: {} binding(s) of {} from node {} dropped by max_contacts/max_registrations", dropped, r.aor, r.node);
            }
        }
        Err(e) => crate::log!(
            Warning,
            "usrloc",
            "cluster: a value from Redis skipped: {}",
            e
        ),
    }
}

/// Load every binding of the other nodes (SCAN + HGETALL).
fn load(c: &Cluster, con: &mut redis::Connection) -> redis::RedisResult<usize> {
    let mut n = 0;
    for_each_aor_key(con, |con, k| {
        let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL").arg(&k).query(con)?;
        for (node, v) in fields {
            if node != c.node {
                apply(c, &v, Some(&node));
                n += 1;
            }
        }
        Ok(())
    })?;
    Ok(n)
}

/// Subscribe, load, then apply every change published, until the connection fails; then
/// again. Every [`HEARTBEAT`] it also reads the nodes' heartbeats ([`Liveness`]).
fn subscriber() {
    let Some(c) = CLUSTER.get() else { return };
    let mut live = Liveness::default();
    loop {
        if let Err(e) = subscribe_once(c, &mut live) {
            crate::log!(Debug, "usrloc", "cluster: subscriber: {}", e);
        }
        std::thread::sleep(RETRY);
    }
}

fn subscribe_once(c: &Cluster, live: &mut Liveness) -> redis::RedisResult<()> {
    let mut sub = connect(&c.target)?;
    let mut other = connect(&c.target)?;
    let mut ps = sub.as_pubsub();
    ps.subscribe(CHANNEL)?;
    let n = load(c, &mut other)?;
    crate::log!(
        Debug,
        "usrloc",
        "cluster: loaded {} value(s) of other nodes",
        n
    );
    ps.set_read_timeout(Some(Duration::from_secs(2)))?;
    loop {
        match ps.get_message() {
            Ok(m) => apply(c, m.get_payload_bytes(), None),
            Err(e) if e.is_timeout() => {
                // A quiet channel: check that Redis still answers.
                if !up() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        if live.due(Instant::now(), HEARTBEAT) {
            check_nodes(c, live, &mut other)?;
        }
    }
}

/// Read the heartbeats; drop what was learnt from a node that stopped writing them, reload
/// when one comes back.
fn check_nodes(
    c: &Cluster,
    live: &mut Liveness,
    con: &mut redis::Connection,
) -> redis::RedisResult<()> {
    let beats: HashMap<String, u64> = redis::cmd("HGETALL").arg(NODES).query(con)?;
    let now = Instant::now();
    let (died, back) = live.update(&beats, &c.node, now);
    for node in died {
        let n = super::location::drop_node(&node, now);
        crate::log!(
            Warning,
            "usrloc",
            "cluster: node {} wrote no heartbeat for {} s: the bindings of {} AoR(s) learnt from it are dropped",
            node,
            DEAD_AFTER.as_secs(),
            n
        );
    }
    if !back.is_empty() {
        crate::log!(
            Info,
            "usrloc",
            "cluster: node(s) {} write heartbeats again: reloading",
            back.join(", ")
        );
        load(c, con)?;
    }
    Ok(())
}

/// `ul_cluster_list`: the nodes that wrote a heartbeat to Redis, with its Unix time.
pub(crate) fn nodes() -> Result<Vec<(String, u64)>, String> {
    let c = CLUSTER
        .get()
        .ok_or("the usrloc cluster mode is not configured")?;
    let (tx, rx) = sync_channel(1);
    c.tx.try_send(Job::Nodes(tx))
        .map_err(|_| "the Redis queue is full".to_string())?;
    rx.recv_timeout(DEADLINE * 3)
        .map_err(|_| "Redis did not answer in time".to_string())?
}

/// This node's id.
pub(crate) fn node() -> Option<&'static str> {
    CLUSTER.get().map(|c| c.node.as_str())
}
