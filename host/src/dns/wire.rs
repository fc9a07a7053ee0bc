//! DNS messages (RFC 1035 §4) for one question, encoded and decoded by `hickory-proto`; the
//! answer turned into [`Records`] with its TTL, negative answers with their RFC 2308 §5 TTL.
//! Pure code over bytes.
use super::error::DnsError;
use super::records::{normalize, Kind, Naptr, Records, Srv};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::time::Duration;

/// How long a negative answer without an SOA is kept.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Negative answers are kept at most this long (RFC 2308 §5 allows more; names come back).
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(300);

fn rtype(kind: Kind) -> RecordType {
    match kind {
        Kind::Naptr => RecordType::NAPTR,
        Kind::Srv => RecordType::SRV,
        Kind::A => RecordType::A,
        Kind::Aaaa => RecordType::AAAA,
    }
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    Name::from_ascii(format!("{}.", normalize(name)))
        .map_err(|e| DnsError::BadUri(name.to_string(), format!("not a domain name: {e}")))
}

/// A recursive query (RD set, RFC 1035 §4.1.1) for `name`/`kind` with message id `id`.
pub fn encode_query(id: u16, name: &str, kind: Kind) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(fqdn(name)?, rtype(kind)));
    m.to_vec()
        .map_err(|e| DnsError::Server(name.to_string(), format!("cannot encode query: {e}")))
}

/// What a datagram said about our question.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The records (empty: a negative answer) and how long to keep them.
    Records(Records, Duration),
    /// The answer did not fit (TC, RFC 1035 §4.2.1): ask again over TCP.
    Truncated,
    /// Not an answer to our question (another id or question, or not DNS): keep waiting.
    Unrelated,
}

/// Decode `buf` as the answer to query `id` for `name`/`kind` (RFC 1035 §7.3: the id and the
/// question must match). Records of the asked type in the answer section are taken, so a
/// CNAME chain a recursive server followed is honoured.
pub fn decode_answer(buf: &[u8], id: u16, name: &str, kind: Kind) -> Result<Answer, DnsError> {
    let Ok(m) = Message::from_vec(buf) else {
        return Ok(Answer::Unrelated);
    };
    let want = rtype(kind);
    let asked = normalize(name);
    let same_question = m.queries().len() == 1
        && m.queries()[0].query_type() == want
        && normalize(&m.queries()[0].name().to_ascii()) == asked;
    if m.id() != id || m.message_type() != MessageType::Response || !same_question {
        return Ok(Answer::Unrelated);
    }
    if m.truncated() {
        return Ok(Answer::Truncated);
    }
    match m.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        rc => return Err(DnsError::Server(asked, rc.to_string())),
    }
    let mut out = Records::empty(kind);
    let mut ttl = u32::MAX;
    for r in m.answers().iter().filter(|r| r.record_type() == want) {
        match (&mut out, r.data()) {
            (Records::Addrs(v), RData::A(a)) => v.push(a.0.into()),
            (Records::Addrs(v), RData::AAAA(a)) => v.push(a.0.into()),
            (Records::Srv(v), RData::SRV(s)) => v.push(Srv {
                priority: s.priority(),
                weight: s.weight(),
                port: s.port(),
                target: normalize(&s.target().to_ascii()),
            }),
            (Records::Naptr(v), RData::NAPTR(n)) => v.push(Naptr {
                order: n.order(),
                preference: n.preference(),
                flags: String::from_utf8_lossy(n.flags()).into_owned(),
                services: String::from_utf8_lossy(n.services()).into_owned(),
                replacement: normalize(&n.replacement().to_ascii()),
            }),
            _ => continue,
        }
        ttl = ttl.min(r.ttl());
    }
    if !out.is_empty() {
        return Ok(Answer::Records(out, Duration::from_secs(u64::from(ttl))));
    }
    // RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM).
    let neg = m
        .name_servers()
        .iter()
        .find_map(|r| match r.data() {
            RData::SOA(soa) => Some(Duration::from_secs(u64::from(r.ttl().min(soa.minimum())))),
            _ => None,
        })
        .unwrap_or(DEFAULT_NEGATIVE_TTL)
        .min(MAX_NEGATIVE_TTL);
    Ok(Answer::Records(out, neg))
}
