//! The JSON of one AoR in `ul_dump` / `ul_show_contact` (OpenSIPS usrloc's MI field names),
//! written straight into a buffer, so that a dump costs one AoR's worth of temporary values.
use super::Binding;
use serde_json::json;
use std::time::Instant;

/// Append `{"AOR": aor, "Contacts": [...]}` to `out`; `brief` keeps only each contact's URI
/// and expiry (OpenSIPS's `ul_dump brief`).
pub(super) fn write_aor(
    out: &mut Vec<u8>,
    aor: &str,
    list: &[&Binding],
    now: Instant,
    brief: bool,
) {
    let contacts: Vec<serde_json::Value> = list
        .iter()
        .map(|b| {
            if brief {
                return json!({ "Contact": b.uri, "Expires": b.remaining(now) });
            }
            json!({
                "Contact": b.uri,
                "Params": b.params,
                "Expires": b.remaining(now),
                "Q": b.q_given.then(|| format!("{}.{:03}", b.q / 1000, b.q % 1000)),
                "Callid": b.call_id,
                "Cseq": b.cseq,
                "User-agent": b.user_agent,
                "Path": b.path,
                "Conn": b.flow.conn_id,
                "Received": format!("{}:{}", b.flow.proto, b.flow.peer),
                "Socket": format!("{}:{}", b.flow.proto, b.flow.local),
                "Instance": b.instance,
                "Reg-id": b.reg_id,
                "Last-modified-ago": now.saturating_duration_since(b.updated).as_secs(),
                "Node": b.node.as_deref(),
            })
        })
        .collect();
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &json!({ "AOR": aor, "Contacts": contacts }));
}
