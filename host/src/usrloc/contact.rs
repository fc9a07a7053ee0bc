//! The Contact headers of a REGISTER, checked and normalised (RFC 3261 §10.3 steps 6-7,
//! §20.10, §19.1.4).
use super::{RegError, RegistrarConfig};
use crate::sip::{Contact, Message, Uri};

/// What the REGISTER asks for.
#[derive(Debug)]
pub(super) enum Parsed {
    /// No Contact: list the current bindings.
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    Wildcard,
    /// Add, refresh or remove these.
    Contacts(Vec<Requested>),
}

/// One requested binding.
#[derive(Debug)]
pub(super) struct Requested {
    pub uri: String,
    /// The URI's comparison key (see [`key_of`]).
    pub key: String,
    /// Contact-params other than `expires` and `q`... kept as received, each `;name[=value]`.
    pub params: String,
    /// Final expiry in seconds (0 removes), clamped to the maximum.
    pub expires: u32,
    /// q in thousandths.
    pub q: Option<u16>,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

/// A delta-seconds value (RFC 3261 §20.19 Expires, §20.10 `expires`) as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delta {
    /// 0 to 2^32-1.
    Secs(u32),
    /// Digits only, but above 2^32-1.
    Overlarge,
}

/// `1*DIGIT`, or `None` when it is not one.
pub(super) fn parse_delta(v: &str) -> Option<Delta> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        match v.parse::<u64>().ok().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Delta::Secs(n),
            None => Delta::Overlarge,
        },
    )
}

/// One rule for the Expires header and the `expires` contact-param: a value above 2^32-1 is
/// treated as if it were absent (RFC 4475 §3.1.2.4: "the element could treat them as if they
/// contained the default values"), so the request still registers, with the expiry that
/// applies without it, shortened to `max_expires` as any other (RFC 3261 §10.3 step 7).
/// `None` for an absent or overlarge value.
fn given(d: Delta) -> Option<u32> {
    match d {
        Delta::Secs(n) => Some(n),
        Delta::Overlarge => None,
    }
}

/// The Expires header of `req`: `None` when absent or overlarge, 400 when not a number.
pub(super) fn header_expires(req: &Message) -> Result<Option<u32>, RegError> {
    match req.header("Expires") {
        None => Ok(None),
        Some(v) => parse_delta(v)
            .map(given)
            .ok_or(RegError::Malformed("Expires")),
    }
}

/// Parse every Contact value of `req`. A request with more than `max_request_contacts`
/// values is refused as soon as the one over the limit is seen, before any work on them.
pub(super) fn parse_contacts(
    req: &Message,
    hdr_expires: Option<u32>,
    cfg: &RegistrarConfig,
) -> Result<Parsed, RegError> {
    let mut list = Vec::new();
    let mut wildcard = false;
    for (n, c) in req.contacts().enumerate() {
        if cfg.max_request_contacts > 0 && n >= cfg.max_request_contacts {
            return Err(RegError::TooManyInRequest(cfg.max_request_contacts));
        }
        match c.map_err(|_| RegError::Malformed("Contact"))? {
            Contact::Wildcard => wildcard = true,
            Contact::Addr(na) => {
                let uri = na.uri().map_err(|_| RegError::Malformed("Contact URI"))?;
                // One pass over the contact-params: expires, q, +sip.instance and reg-id
                // taken out (the first of each, as `param()` would give), the others kept as
                // received.
                let (mut expires, mut q, mut instance, mut reg_id) = (None, None, None, None);
                let mut params = String::new();
                for (n, v) in na.params().iter() {
                    if n.eq_ignore_ascii_case("expires") {
                        expires.get_or_insert(v);
                        continue;
                    }
                    if n.eq_ignore_ascii_case("q") {
                        q.get_or_insert(v);
                        continue;
                    }
                    if n.eq_ignore_ascii_case("+sip.instance") {
                        instance.get_or_insert(v);
                    } else if n.eq_ignore_ascii_case("reg-id") {
                        reg_id.get_or_insert(v);
                    }
                    params.push(';');
                    params.push_str(n);
                    if let Some(v) = v {
                        params.push('=');
                        params.push_str(v);
                    }
                }
                let param = match expires {
                    Some(Some(v)) => {
                        given(parse_delta(v).ok_or(RegError::Malformed("Contact expires"))?)
                    }
                    Some(None) => return Err(RegError::Malformed("Contact expires")),
                    None => None,
                };
                let asked = param.or(hdr_expires).unwrap_or(cfg.default_expires);
                if asked != 0 && cfg.min_expires > 0 && asked < cfg.min_expires {
                    return Err(RegError::IntervalTooBrief {
                        got: asked,
                        min: cfg.min_expires,
                    });
                }
                let q = match q {
                    Some(Some(v)) => Some(parse_q(v)?),
                    Some(None) => return Err(RegError::BadQ(String::new())),
                    None => None,
                };
                list.push(Requested {
                    uri: uri.as_str().to_string(),
                    key: key_of(&uri),
                    params,
                    expires: asked.min(cfg.max_expires),
                    q,
                    instance: instance.flatten().map(|s| s.trim_matches('"').to_string()),
                    reg_id: reg_id.flatten().and_then(|s| s.trim().parse().ok()),
                });
            }
        }
    }
    if wildcard {
        if !list.is_empty() || hdr_expires != Some(0) {
            return Err(RegError::BadWildcard);
        }
        return Ok(Parsed::Wildcard);
    }
    Ok(if list.is_empty() {
        Parsed::Query
    } else {
        Parsed::Contacts(list)
    })
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_q(v: &str) -> Result<u16, RegError> {
    let bad = || RegError::BadQ(v.to_string());
    let (int, frac) = v.trim().split_once('.').unwrap_or((v.trim(), ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Ok(thousandths),
        "1" if thousandths == 0 => Ok(1000),
        _ => Err(bad()),
    }
}

/// The key under which equal URIs meet (§19.1.4, simplified): scheme, host and parameters
/// case-insensitive, user and port exact; the exact text when the URI does not parse.
pub fn uri_key(u: &str) -> String {
    match Uri::parse(u) {
        Ok(x) => key_of(&x),
        Err(_) => format!("raw\0{u}"),
    }
}

/// The comparison key of a parsed URI: `scheme 0 [user] 0 host 0 port 0 params`, with
/// scheme, host and params lower-cased and `@` marking a user part (even an empty one).
pub(super) fn key_of(x: &Uri<'_>) -> String {
    let params = x.params();
    let mut k = String::with_capacity(16 + x.as_str().len());
    k.push_str(x.scheme_str());
    k.push('\0');
    if let Some(u) = x.user() {
        k.push('@');
        k.push_str(u);
    }
    k.push('\0');
    k.push_str(x.host());
    k.push('\0');
    if let Some(p) = x.port() {
        k.push_str(&p.to_string());
    }
    k.push('\0');
    k.push_str(params.as_str());
    // The user part stays as is: only scheme, host and params ignore case.
    let user_end = k
        .find('\0')
        .and_then(|a| k[a + 1..].find('\0').map(|b| a + 1 + b));
    match user_end {
        Some(end) => {
            let (head, tail) = k.split_at_mut(end);
            let scheme_end = head.find('\0').unwrap_or(head.len());
            head[..scheme_end].make_ascii_lowercase();
            tail.make_ascii_lowercase();
        }
        None => k.make_ascii_lowercase(),
    }
    k
}

/// URI equality for bindings: equal keys (see [`uri_key`]).
#[cfg(test)]
pub(super) fn uri_equal(a: &str, b: &str) -> bool {
    uri_key(a) == uri_key(b)
}

#[cfg(test)]
mod tests {
    use super::{parse_delta, parse_q, uri_equal, Delta};

    #[test]
    fn q_values() {
        assert_eq!(parse_q("1"), Ok(1000));
        assert_eq!(parse_q("1.000"), Ok(1000));
        assert_eq!(parse_q("0.5"), Ok(500));
        assert_eq!(parse_q("0.125"), Ok(125));
        assert_eq!(parse_q("0"), Ok(0));
        for bad in ["1.5", "2", "0.1234", "-0.5", "x", "0.a"] {
            assert!(parse_q(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_delta(" 600 "), Some(Delta::Secs(600)));
        assert_eq!(parse_delta("4294967295"), Some(Delta::Secs(u32::MAX)));
        assert_eq!(parse_delta("4294967296"), Some(Delta::Overlarge));
        assert_eq!(
            parse_delta("99999999999999999999999999"),
            Some(Delta::Overlarge)
        );
        for bad in ["", "-1", "1.5", "soon", "+3"] {
            assert_eq!(parse_delta(bad), None, "{bad}");
        }
    }

    #[test]
    fn uri_comparison() {
        assert!(uri_equal(
            "sip:a@Example.COM;transport=ws",
            "SIP:a@example.com;transport=WS"
        ));
        assert!(!uri_equal("sip:A@example.com", "sip:a@example.com"));
        assert!(!uri_equal("sip:a@example.com:5060", "sip:a@example.com"));
    }
}
