//! What the usrloc cluster keeps in Redis, as pure code: the key of an AoR, the JSON of one
//! node's bindings of an AoR, and its checked decoding. Everything read from Redis is
//! untrusted: a bad value is refused with a reason (logged by the caller), never a panic, and
//! every string is bounded. RFC 3327 §5.3: a binding of another node is reached through its
//! Path, which leads to the node holding the client's flow.
use crate::usrloc::{uri_key, Binding, Flow};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Prefix of every key and of the channel.
pub(crate) const PREFIX: &str = "sipcore:ul:";
/// The channel changes are published on.
pub(crate) const CHANNEL: &str = "sipcore:ul:changes";
/// The hash of the nodes' heartbeats (field: node, value: Unix time).
pub(crate) const NODES: &str = "sipcore:ul:nodes";
/// Longest AoR, contact URI, parameter string, Path, Call-ID or User-Agent accepted from Redis.
const MAX_TEXT: usize = 2048;
/// Most bindings in one node's value.
const MAX_BINDINGS: usize = 256;
/// Longest value accepted from Redis.
const MAX_VALUE: usize = MAX_BINDINGS * 4 * MAX_TEXT;

/// Why a value from Redis was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DataError {
    /// Not JSON, or not the expected shape.
    #[error("malformed value: {0}")]
    Malformed(&'static str),
    /// A field longer than allowed, or too many bindings.
    #[error("value too large: {0}")]
    TooLarge(&'static str),
}

/// Seconds since the Unix epoch now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The Redis key of `aor` in table `table`.
pub(crate) fn key(table: &str, aor: &str) -> String {
    format!("{PREFIX}aor:{table}:{aor}")
}

/// A table name learnt from Redis must look like one a script names.
pub(crate) fn table_name_ok(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One binding as [`encode`] writes it (serialized straight from the binding's fields).
#[derive(serde::Serialize)]
struct Out<'a> {
    uri: &'a str,
    params: &'a str,
    q: Option<u16>,
    exp: u64,
    path: String,
    instance: &'a Option<String>,
    reg_id: Option<u32>,
    callid: &'a str,
    cseq: u32,
    ua: &'a Option<String>,
}

/// One node's value of one AoR as [`encode`] writes it.
#[derive(serde::Serialize)]
struct OutValue<'a> {
    table: &'a str,
    aor: &'a str,
    node: &'a str,
    bindings: Vec<Out<'a>>,
}

/// The JSON of `node`'s `bindings` of one AoR, `path_of` giving each one's Path (towards this
/// node), with expiries as Unix times (`now`/`unix` the same instant in both clocks); and the
/// latest of those expiries (0 when none).
pub(crate) fn encode(
    table: &str,
    aor: &str,
    node: &str,
    bindings: &[Binding],
    path_of: impl Fn(&Binding) -> Option<String>,
    now: Instant,
    unix: u64,
) -> (String, u64) {
    let list: Vec<Out> = bindings
        .iter()
        .filter_map(|b| {
            Some(Out {
                uri: &b.uri,
                params: &b.params,
                q: b.q_given.then_some(b.q),
                exp: unix + b.remaining(now),
                path: path_of(b)?,
                instance: &b.instance,
                reg_id: b.reg_id,
                callid: &b.call_id,
                cseq: b.cseq,
                ua: &b.user_agent,
            })
        })
        .collect();
    let max = list.iter().map(|b| b.exp).max().unwrap_or(0);
    let v = OutValue {
        table,
        aor,
        node,
        bindings: list,
    };
    // Serializing strings and numbers cannot fail.
    (serde_json::to_string(&v).unwrap_or_default(), max)
}

/// The `node` of an [`encode`]d value, without decoding the rest: every node receives its
/// own changes back from the channel and skips them at this cost.
pub(crate) fn node_of(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        node: std::borrow::Cow<'a, str>,
    }
    if raw.len() > MAX_VALUE {
        return None;
    }
    serde_json::from_slice::<Head>(raw)
        .ok()
        .map(|h| h.node.into_owned())
}

/// One node's bindings of one AoR, decoded.
#[derive(Debug)]
pub(crate) struct Remote {
    /// The table.
    pub table: String,
    /// The AoR.
    pub aor: String,
    /// The node.
    pub node: String,
    /// Its live bindings, at most `max_expires` long.
    pub bindings: Vec<Binding>,
    /// Entries skipped (expired or bad), with the reason of the first bad one.
    pub skipped: Option<String>,
}

fn text<'a>(v: &'a Value, what: &'static str) -> Result<&'a str, DataError> {
    let s = v.as_str().ok_or(DataError::Malformed(what))?;
    if s.len() > MAX_TEXT {
        return Err(DataError::TooLarge(what));
    }
    Ok(s)
}

fn opt_text(v: &Value, what: &'static str) -> Result<Option<String>, DataError> {
    if v.is_null() {
        return Ok(None);
    }
    text(v, what).map(|s| Some(s.to_string()))
}

/// Decode a value made by [`encode`] (from Redis: untrusted). Expired bindings are dropped;
/// expiries beyond `max_expires` from now are shortened to it.
pub(crate) fn decode(
    raw: &[u8],
    now: Instant,
    unix: u64,
    max_expires: u32,
) -> Result<Remote, DataError> {
    if raw.len() > MAX_VALUE {
        return Err(DataError::TooLarge("value"));
    }
    let v: Value = serde_json::from_slice(raw).map_err(|_| DataError::Malformed("JSON"))?;
    let table = text(&v["table"], "table")?.to_string();
    if !table_name_ok(&table) {
        return Err(DataError::Malformed("table"));
    }
    let aor = text(&v["aor"], "aor")?.to_string();
    let node = text(&v["node"], "node")?.to_string();
    if aor.is_empty() || node.is_empty() || node.len() > 256 {
        return Err(DataError::Malformed("aor or node"));
    }
    let list = v["bindings"]
        .as_array()
        .ok_or(DataError::Malformed("bindings"))?;
    if list.len() > MAX_BINDINGS {
        return Err(DataError::TooLarge("bindings"));
    }
    let node_arc: Arc<str> = Arc::from(node.as_str());
    let mut bindings = Vec::with_capacity(list.len());
    let mut skipped = None;
    for b in list {
        match binding(b, &node_arc, now, unix, max_expires) {
            Ok(Some(x)) => bindings.push(x),
            Ok(None) => {}
            Err(e) => {
                skipped.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(Remote {
        table,
        aor,
        node,
        bindings,
        skipped,
    })
}

/// One binding of a decoded value; `None` when it has expired.
fn binding(
    b: &Value,
    node: &Arc<str>,
    now: Instant,
    unix: u64,
    max_expires: u32,
) -> Result<Option<Binding>, DataError> {
    let uri = text(&b["uri"], "uri")?;
    if crate::sip::Uri::parse(uri).is_err() {
        return Err(DataError::Malformed("uri"));
    }
    let path = text(&b["path"], "path")?;
    // The Path must start with a SIP URI in angle brackets (what lookup() sends to).
    let first = path.split(',').next().unwrap_or("").trim();
    let inner = first
        .strip_prefix('<')
        .and_then(|r| r.split('>').next())
        .ok_or(DataError::Malformed("path"))?;
    if crate::sip::Uri::parse(inner).is_err() {
        return Err(DataError::Malformed("path"));
    }
    let exp = b["exp"].as_u64().ok_or(DataError::Malformed("exp"))?;
    if exp <= unix {
        return Ok(None);
    }
    let secs = (exp - unix).min(u64::from(max_expires.max(1)));
    let q = match &b["q"] {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .filter(|q| *q <= 1000)
                .ok_or(DataError::Malformed("q"))? as u16,
        ),
    };
    let reg_id = match &b["reg_id"] {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .and_then(|r| u32::try_from(r).ok())
                .ok_or(DataError::Malformed("reg_id"))?,
        ),
    };
    let cseq = b["cseq"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0);
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    Ok(Some(Binding {
        uri: uri.to_string(),
        key: uri_key(uri),
        params: text(&b["params"], "params").unwrap_or("").to_string(),
        expires_at: now + Duration::from_secs(secs),
        q: q.unwrap_or(1000),
        q_given: q.is_some(),
        call_id: opt_text(&b["callid"], "callid")?.unwrap_or_default(),
        cseq,
        flow: Flow {
            conn_id: 0,
            proto: "udp",
            peer: unspecified,
            local: unspecified,
        },
        instance: opt_text(&b["instance"], "instance")?,
        reg_id,
        user_agent: opt_text(&b["ua"], "ua")?,
        path: Some(path.to_string()),
        updated: now,
        node: Some(node.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(now: Instant) -> Binding {
        Binding {
            uri: "sip:abc@x.invalid;transport=ws".into(),
            key: uri_key("sip:abc@x.invalid;transport=ws"),
            params: ";+sip.instance=\"<urn:uuid:1>\";reg-id=1".into(),
            expires_at: now + Duration::from_secs(60),
            q: 500,
            q_given: true,
            call_id: "c1".into(),
            cseq: 3,
            flow: Flow {
                conn_id: 7,
                proto: "ws",
                peer: "127.0.0.1:1".parse().unwrap(),
                local: "127.0.0.1:2".parse().unwrap(),
            },
            instance: Some("<urn:uuid:1>".into()),
            reg_id: Some(1),
            user_agent: Some("JsSIP".into()),
            path: None,
            updated: now,
            node: None,
        }
    }

    /// A node's bindings survive the trip through Redis, marked with the node and reached
    /// through the Path towards it (RFC 3327 §5.3).
    #[test]
    fn round_trip() {
        let now = Instant::now();
        let (v, max) = encode(
            "location",
            "alice@example.com",
            "10.0.0.1:5060",
            &[sample(now)],
            |_| Some("<sip:tok@10.0.0.1:5060;transport=udp;lr;ob>".into()),
            now,
            1000,
        );
        assert_eq!(max, 1060);
        assert_eq!(node_of(v.as_bytes()).as_deref(), Some("10.0.0.1:5060"));
        assert_eq!(node_of(b"{\"node\":\"a\\\"b\"}").as_deref(), Some("a\"b"));
        assert_eq!(node_of(b"{\"nod\":1}"), None);
        assert_eq!(node_of(b"not json"), None);
        let r = decode(v.as_bytes(), now, 1000, 3600).unwrap();
        assert_eq!(
            (r.table.as_str(), r.aor.as_str()),
            ("location", "alice@example.com")
        );
        let b = &r.bindings[0];
        assert_eq!(b.uri, "sip:abc@x.invalid;transport=ws");
        assert_eq!((b.q, b.q_given, b.reg_id), (500, true, Some(1)));
        assert_eq!(b.node.as_deref(), Some("10.0.0.1:5060"));
        assert_eq!(b.remaining(now), 60);
        assert!(b.path.as_deref().unwrap().contains("tok@10.0.0.1"));
        assert!(r.skipped.is_none());
        // Expired by the reader's clock: dropped; longer than max_expires: shortened.
        assert!(decode(v.as_bytes(), now, 2000, 3600)
            .unwrap()
            .bindings
            .is_empty());
        let r = decode(v.as_bytes(), now, 1000, 10).unwrap();
        assert_eq!(r.bindings[0].remaining(now), 10);
        assert_eq!(key("location", "a@b"), "sipcore:ul:aor:location:a@b");
    }

    /// Garbage from Redis is refused with a reason, a bad binding is skipped, never a panic.
    #[test]
    fn untrusted_values() {
        let now = Instant::now();
        for raw in [
            &b"not json"[..],
            b"{}",
            b"{\"table\":\"a b\",\"aor\":\"x\",\"node\":\"n\",\"bindings\":[]}",
            b"{\"table\":\"t\",\"aor\":\"x\",\"node\":\"n\",\"bindings\":{}}",
            b"{\"table\":\"t\",\"aor\":\"\",\"node\":\"n\",\"bindings\":[]}",
        ] {
            assert!(decode(raw, now, 0, 3600).is_err(), "{raw:?}");
        }
        let bad = json!({"table":"t","aor":"a@b","node":"n","bindings":[
            {"uri":"sip:a@b","path":"no brackets","exp":99},
            {"uri":"nope","path":"<sip:x;lr>","exp":99},
            {"uri":"sip:a@b","path":"<sip:x;lr>","exp":99,"q":5000},
            {"uri":"sip:a@b","path":"<sip:x;lr>","exp":"soon"},
            {"uri":"sip:a@b","path":"<sip:x;lr>","exp":99,"reg_id":-1},
            {"uri":"sip:ok@b","path":"<sip:x;lr>","exp":99}
        ]});
        let r = decode(bad.to_string().as_bytes(), now, 10, 3600).unwrap();
        assert_eq!(r.bindings.len(), 1);
        assert_eq!(r.bindings[0].uri, "sip:ok@b");
        assert!(r.skipped.is_some());
        let long = json!({"table":"t","aor":"x".repeat(5000),"node":"n","bindings":[]});
        assert!(decode(long.to_string().as_bytes(), now, 0, 3600).is_err());
    }
}
