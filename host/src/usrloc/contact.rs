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
    /// Contact-params other than `expires` and `q`... kept as received, each `;name[=value]`.
    pub params: String,
    /// Final expiry in seconds (0 removes), clamped to the maximum.
    pub expires: u32,
    /// q in thousandths.
    pub q: Option<u16>,
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

/// Parse every Contact value of `req`.
pub(super) fn parse_contacts(
    req: &Message,
    hdr_expires: Option<u32>,
    cfg: &RegistrarConfig,
) -> Result<Parsed, RegError> {
    let mut list = Vec::new();
    let mut wildcard = false;
    for c in req.contacts() {
        match c.map_err(|_| RegError::Malformed("Contact"))? {
            Contact::Wildcard => wildcard = true,
            Contact::Addr(na) => {
                let uri = na.uri().map_err(|_| RegError::Malformed("Contact URI"))?;
                let asked = match na.param("expires") {
                    Some(Some(v)) => v
                        .trim()
                        .parse::<u64>()
                        .map(|n| n.min(u64::from(u32::MAX)) as u32)
                        .map_err(|_| RegError::Malformed("Contact expires"))?,
                    Some(None) => return Err(RegError::Malformed("Contact expires")),
                    None => hdr_expires.unwrap_or(cfg.default_expires),
                };
                if asked != 0 && cfg.min_expires > 0 && asked < cfg.min_expires {
                    return Err(RegError::IntervalTooBrief {
                        got: asked,
                        min: cfg.min_expires,
                    });
                }
                let q = match na.param("q") {
                    Some(Some(v)) => Some(parse_q(v)?),
                    Some(None) => return Err(RegError::BadQ(String::new())),
                    None => None,
                };
                let mut params = String::new();
                for (n, v) in na.params().iter() {
                    if n.eq_ignore_ascii_case("expires") || n.eq_ignore_ascii_case("q") {
                        continue;
                    }
                    params.push(';');
                    params.push_str(n);
                    if let Some(v) = v {
                        params.push('=');
                        params.push_str(v);
                    }
                }
                list.push(Requested {
                    uri: uri.as_str().to_string(),
                    params,
                    expires: asked.min(cfg.max_expires),
                    q,
                    instance: na
                        .param("+sip.instance")
                        .flatten()
                        .map(|s| s.trim_matches('"').to_string()),
                    reg_id: na
                        .param("reg-id")
                        .flatten()
                        .and_then(|s| s.trim().parse().ok()),
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

/// URI equality for bindings (§19.1.4, simplified): scheme and host case-insensitive, user
/// and the rest exact; falls back to exact text when either does not parse.
pub(super) fn uri_equal(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.scheme() == y.scheme()
                && x.user() == y.user()
                && x.host().eq_ignore_ascii_case(y.host())
                && x.port() == y.port()
                && x.params()
                    .as_str()
                    .eq_ignore_ascii_case(y.params().as_str())
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_q, uri_equal};

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
    fn uri_comparison() {
        assert!(uri_equal(
            "sip:a@Example.COM;transport=ws",
            "SIP:a@example.com;transport=WS"
        ));
        assert!(!uri_equal("sip:A@example.com", "sip:a@example.com"));
        assert!(!uri_equal("sip:a@example.com:5060", "sip:a@example.com"));
    }
}
