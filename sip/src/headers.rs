//! Header names (with RFC 3261 §7.3.3 compact forms), methods, and the small
//! scalar header bodies: CSeq (§20.16), Max-Forwards (§20.22), Expires
//! (§20.19) and Date (§20.17).

use super::error::ParseError;
use super::scan::{is_token, parse_u64, skip_ws, token_end, trim, NumError};

/// Canonical id of a header field name; `Other` for names not listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the header of the same name
pub enum HeaderName {
    Accept,
    AcceptContact,
    Allow,
    AllowEvents,
    Authorization,
    CallId,
    Contact,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Date,
    Event,
    Expires,
    From,
    Identity,
    IdentityInfo,
    MaxForwards,
    Path,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    ReferTo,
    ReferredBy,
    RejectContact,
    RequestDisposition,
    Require,
    Route,
    Server,
    SessionExpires,
    Subject,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    WwwAuthenticate,
    /// A header this table does not know; compare names as written.
    Other,
}

/// (id, canonical name, compact form). Compact forms: RFC 3261 §7.3.3 and
/// the IANA SIP header registry (RFC 3515, 3841, 3892, 4028, 4474, 6665).
const TABLE: &[(HeaderName, &str, Option<u8>)] = &[
    (HeaderName::Accept, "Accept", None),
    (HeaderName::AcceptContact, "Accept-Contact", Some(b'a')),
    (HeaderName::Allow, "Allow", None),
    (HeaderName::AllowEvents, "Allow-Events", Some(b'u')),
    (HeaderName::Authorization, "Authorization", None),
    (HeaderName::CallId, "Call-ID", Some(b'i')),
    (HeaderName::Contact, "Contact", Some(b'm')),
    (HeaderName::ContentEncoding, "Content-Encoding", Some(b'e')),
    (HeaderName::ContentLength, "Content-Length", Some(b'l')),
    (HeaderName::ContentType, "Content-Type", Some(b'c')),
    (HeaderName::CSeq, "CSeq", None),
    (HeaderName::Date, "Date", None),
    (HeaderName::Event, "Event", Some(b'o')),
    (HeaderName::Expires, "Expires", None),
    (HeaderName::From, "From", Some(b'f')),
    (HeaderName::Identity, "Identity", Some(b'y')),
    (HeaderName::IdentityInfo, "Identity-Info", Some(b'n')),
    (HeaderName::MaxForwards, "Max-Forwards", None),
    (HeaderName::Path, "Path", None),
    (HeaderName::ProxyAuthenticate, "Proxy-Authenticate", None),
    (HeaderName::ProxyAuthorization, "Proxy-Authorization", None),
    (HeaderName::ProxyRequire, "Proxy-Require", None),
    (HeaderName::RecordRoute, "Record-Route", None),
    (HeaderName::ReferTo, "Refer-To", Some(b'r')),
    (HeaderName::ReferredBy, "Referred-By", Some(b'b')),
    (HeaderName::RejectContact, "Reject-Contact", Some(b'j')),
    (
        HeaderName::RequestDisposition,
        "Request-Disposition",
        Some(b'd'),
    ),
    (HeaderName::Require, "Require", None),
    (HeaderName::Route, "Route", None),
    (HeaderName::Server, "Server", None),
    (HeaderName::SessionExpires, "Session-Expires", Some(b'x')),
    (HeaderName::Subject, "Subject", Some(b's')),
    (HeaderName::Supported, "Supported", Some(b'k')),
    (HeaderName::To, "To", Some(b't')),
    (HeaderName::Unsupported, "Unsupported", None),
    (HeaderName::UserAgent, "User-Agent", None),
    (HeaderName::Via, "Via", Some(b'v')),
    (HeaderName::WwwAuthenticate, "WWW-Authenticate", None),
];

/// Every id fits one bit of a `u64` (a message's set of names present, see `Message`).
const _: () = assert!((HeaderName::Other as u32) < 64);

impl HeaderName {
    /// How many ids there are, [`HeaderName::Other`] included.
    pub(crate) const COUNT: usize = HeaderName::Other as usize + 1;

    /// This id's bit in a message's sets of names present and repeated.
    pub(crate) const fn bit(self) -> u64 {
        1u64 << (self as u32)
    }

    /// Resolves a name as written on the wire: case-insensitive, compact forms
    /// map to the full header (`i` is Call-ID, `v` is Via, ...).
    pub fn from_wire(name: &str) -> HeaderName {
        Self::from_wire_bytes(trim(name).as_bytes())
    }

    /// [`HeaderName::from_wire`] for a name already trimmed, as bytes.
    pub(crate) fn from_wire_bytes(name: &[u8]) -> HeaderName {
        // Names as nearly every stack writes them (RFC 3261's spelling), compared as they are.
        match name {
            b"Via" => return HeaderName::Via,
            b"From" => return HeaderName::From,
            b"To" => return HeaderName::To,
            b"Call-ID" => return HeaderName::CallId,
            b"CSeq" => return HeaderName::CSeq,
            b"Max-Forwards" => return HeaderName::MaxForwards,
            b"Contact" => return HeaderName::Contact,
            b"Content-Length" => return HeaderName::ContentLength,
            b"Content-Type" => return HeaderName::ContentType,
            b"Route" => return HeaderName::Route,
            b"Record-Route" => return HeaderName::RecordRoute,
            b"Allow" => return HeaderName::Allow,
            b"Supported" => return HeaderName::Supported,
            b"User-Agent" => return HeaderName::UserAgent,
            b"Expires" => return HeaderName::Expires,
            b"Authorization" => return HeaderName::Authorization,
            b"Proxy-Authorization" => return HeaderName::ProxyAuthorization,
            _ => {}
        }
        // Lower-case into a stack buffer and let the compiler build the length/byte dispatch
        // of one `match` (this runs for every header line of every message).
        let mut buf = [0u8; MAX_KNOWN_LEN];
        let Some(key) = buf.get_mut(..name.len()) else {
            return HeaderName::Other;
        };
        for (k, c) in key.iter_mut().zip(name) {
            *k = c.to_ascii_lowercase();
        }
        match &*key {
            b"accept" => HeaderName::Accept,
            b"accept-contact" | b"a" => HeaderName::AcceptContact,
            b"allow" => HeaderName::Allow,
            b"allow-events" | b"u" => HeaderName::AllowEvents,
            b"authorization" => HeaderName::Authorization,
            b"call-id" | b"i" => HeaderName::CallId,
            b"contact" | b"m" => HeaderName::Contact,
            b"content-encoding" | b"e" => HeaderName::ContentEncoding,
            b"content-length" | b"l" => HeaderName::ContentLength,
            b"content-type" | b"c" => HeaderName::ContentType,
            b"cseq" => HeaderName::CSeq,
            b"date" => HeaderName::Date,
            b"event" | b"o" => HeaderName::Event,
            b"expires" => HeaderName::Expires,
            b"from" | b"f" => HeaderName::From,
            b"identity" | b"y" => HeaderName::Identity,
            b"identity-info" | b"n" => HeaderName::IdentityInfo,
            b"max-forwards" => HeaderName::MaxForwards,
            b"path" => HeaderName::Path,
            b"proxy-authenticate" => HeaderName::ProxyAuthenticate,
            b"proxy-authorization" => HeaderName::ProxyAuthorization,
            b"proxy-require" => HeaderName::ProxyRequire,
            b"record-route" => HeaderName::RecordRoute,
            b"refer-to" | b"r" => HeaderName::ReferTo,
            b"referred-by" | b"b" => HeaderName::ReferredBy,
            b"reject-contact" | b"j" => HeaderName::RejectContact,
            b"request-disposition" | b"d" => HeaderName::RequestDisposition,
            b"require" => HeaderName::Require,
            b"route" => HeaderName::Route,
            b"server" => HeaderName::Server,
            b"session-expires" | b"x" => HeaderName::SessionExpires,
            b"subject" | b"s" => HeaderName::Subject,
            b"supported" | b"k" => HeaderName::Supported,
            b"to" | b"t" => HeaderName::To,
            b"unsupported" => HeaderName::Unsupported,
            b"user-agent" => HeaderName::UserAgent,
            b"via" | b"v" => HeaderName::Via,
            b"www-authenticate" => HeaderName::WwwAuthenticate,
            _ => HeaderName::Other,
        }
    }

    /// The canonical full name (e.g. `Call-ID`); empty for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        TABLE.get(self as usize).map_or("", |(_, full, _)| full)
    }

    /// The compact form, if the header has one.
    pub fn compact(self) -> Option<char> {
        TABLE
            .get(self as usize)
            .and_then(|(_, _, c)| c.map(char::from))
    }
}

/// The longest name in [`TABLE`] (`Proxy-Authorization`, `Request-Disposition`).
const MAX_KNOWN_LEN: usize = 19;

/// A request method (RFC 3261 §7.1 and extensions). Methods are
/// case-sensitive; `Other` covers every extension method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the method of the same name
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Subscribe,
    Notify,
    Publish,
    Info,
    Refer,
    Message,
    Update,
    /// An extension method; the text is in [`super::Message::method_str`].
    Other,
}

const METHODS: &[(Method, &str)] = &[
    (Method::Invite, "INVITE"),
    (Method::Ack, "ACK"),
    (Method::Bye, "BYE"),
    (Method::Cancel, "CANCEL"),
    (Method::Options, "OPTIONS"),
    (Method::Register, "REGISTER"),
    (Method::Prack, "PRACK"),
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Notify, "NOTIFY"),
    (Method::Publish, "PUBLISH"),
    (Method::Info, "INFO"),
    (Method::Refer, "REFER"),
    (Method::Message, "MESSAGE"),
    (Method::Update, "UPDATE"),
];

impl Method {
    /// Maps a method token, case-sensitively (RFC 3261 §7.1; `RE%47IST%45R` is
    /// not REGISTER, RFC 4475 §3.1.1.5).
    pub fn from_token(s: &str) -> Method {
        METHODS
            .iter()
            .find(|(_, name)| *name == s)
            .map_or(Method::Other, |(m, _)| *m)
    }

    /// The method name; empty for [`Method::Other`].
    pub fn as_str(self) -> &'static str {
        METHODS
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("", |(_, name)| name)
    }
}

/// A CSeq value: sequence number and method (RFC 3261 §20.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (at most 2^32-1).
    pub seq: u32,
    /// The method token as written.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method` (leading zeros allowed, RFC 4475 §3.1.1.1;
    /// numbers above 2^32-1 rejected, §3.1.2.4).
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        let start = skip_ws(b, 0);
        let digits = b
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let num = s.get(start..start + digits).unwrap_or("");
        let seq = match parse_u64(num) {
            Ok(v) => u32::try_from(v).map_err(|_| ParseError::BadCSeq("number out of range"))?,
            Err(NumError::Overflow) => return Err(ParseError::BadCSeq("number out of range")),
            Err(NumError::NotDigits) => return Err(ParseError::BadCSeq("missing number")),
        };
        let ms = skip_ws(b, start + digits);
        if ms == start + digits {
            return Err(ParseError::BadCSeq("missing white space before method"));
        }
        let me = token_end(b, ms);
        if me == ms || skip_ws(b, me) != b.len() {
            return Err(ParseError::BadCSeq("bad method"));
        }
        Ok(CSeq {
            seq,
            method: s.get(ms..me).unwrap_or(""),
        })
    }

    /// The method as a [`Method`].
    pub fn method_kind(&self) -> Method {
        Method::from_token(self.method)
    }
}

/// Parses a `1*DIGIT` header body bounded by `max`.
pub(crate) fn parse_bounded(s: &str, max: u64) -> Option<u64> {
    parse_u64(trim(s)).ok().filter(|v| *v <= max)
}

/// Whether `s` is a plausible method token.
pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// A Date header value (RFC 3261 §20.17: RFC 1123 date, GMT only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipDate {
    /// Four-digit year.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=60 (leap second).
    pub second: u8,
}

const WKDAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl SipDate {
    /// Parses `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":"
    /// 2DIGIT SP "GMT"`; any other zone is an error (RFC 4475 §3.1.2.12).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let num = |t: &str, len: usize, max: u64| {
            (t.len() == len)
                .then(|| parse_u64(t).ok())
                .flatten()
                .filter(|v| *v <= max)
                .ok_or(ParseError::BadDate)
        };
        let mut parts = [""; 6];
        let mut n = 0;
        for p in trim(s).split(' ') {
            *parts.get_mut(n).ok_or(ParseError::BadDate)? = p;
            n += 1;
        }
        let [wkday, day, month, year, time, zone] = parts;
        if n != 6 || !WKDAYS.contains(&wkday) || zone != "GMT" {
            return Err(ParseError::BadDate);
        }
        let month = MONTHS
            .iter()
            .position(|m| *m == month)
            .ok_or(ParseError::BadDate)?;
        let mut hms = time.split(':');
        let (h, m, sec) = (hms.next(), hms.next(), hms.next());
        if hms.next().is_some() {
            return Err(ParseError::BadDate);
        }
        let day = num(day, 2, 31)?;
        if day == 0 {
            return Err(ParseError::BadDate);
        }
        Ok(SipDate {
            year: num(year, 4, 9999)? as u16,
            month: month as u8 + 1,
            day: day as u8,
            hour: num(h.unwrap_or(""), 2, 23)? as u8,
            minute: num(m.unwrap_or(""), 2, 59)? as u8,
            second: num(sec.unwrap_or(""), 2, 60)? as u8,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `as_str` and `compact` index [`TABLE`] by variant: it must list the variants in
    /// declaration order; and the `match` in `from_wire` must agree with the table.
    #[test]
    fn table_in_variant_order_and_from_wire_agrees() {
        for (i, (id, full, compact)) in TABLE.iter().enumerate() {
            assert_eq!(*id as usize, i, "{full}");
            assert!(full.len() <= MAX_KNOWN_LEN, "{full}");
            assert_eq!(HeaderName::from_wire(full), *id);
            assert_eq!(HeaderName::from_wire(&full.to_ascii_uppercase()), *id);
            assert_eq!(HeaderName::from_wire(&format!(" {full}\t")), *id);
            assert_eq!(id.as_str(), *full);
            assert_eq!(id.compact(), compact.map(char::from));
            if let Some(c) = compact {
                assert_eq!(HeaderName::from_wire(&char::from(*c).to_string()), *id);
            }
        }
        assert_eq!(HeaderName::Other as usize, TABLE.len());
        assert_eq!(HeaderName::Other.as_str(), "");
        assert_eq!(
            HeaderName::from_wire("Proxy-Authorization-X"),
            HeaderName::Other
        );
        assert_eq!(HeaderName::from_wire("Vi"), HeaderName::Other);
    }

    #[test]
    fn compact_and_case_insensitive_names() {
        let cases = [
            ("i", HeaderName::CallId),
            ("I", HeaderName::CallId),
            ("f", HeaderName::From),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
            ("m", HeaderName::Contact),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("u", HeaderName::AllowEvents),
            ("r", HeaderName::ReferTo),
            ("b", HeaderName::ReferredBy),
            ("x", HeaderName::SessionExpires),
            ("y", HeaderName::Identity),
            ("MaX-fOrWaRdS", HeaderName::MaxForwards),
            ("call-id", HeaderName::CallId),
            ("CSEQ", HeaderName::CSeq),
            ("C%6Fntact", HeaderName::Other),
            ("q", HeaderName::Other),
            ("", HeaderName::Other),
        ];
        for (name, id) in cases {
            assert_eq!(HeaderName::from_wire(name), id, "{name:?}");
        }
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
        assert_eq!(HeaderName::CallId.compact(), Some('i'));
        assert_eq!(HeaderName::CSeq.compact(), None);
        assert_eq!(HeaderName::Other.as_str(), "");
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::from_token("INVITE"), Method::Invite);
        assert_eq!(Method::from_token("invite"), Method::Other);
        assert_eq!(Method::from_token("RE%47IST%45R"), Method::Other);
        assert_eq!(Method::Register.as_str(), "REGISTER");
        assert_eq!(Method::Other.as_str(), "");
    }

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse("0009   INVITE"),
            Ok(CSeq {
                seq: 9,
                method: "INVITE"
            })
        );
        assert_eq!(
            CSeq::parse(" 4294967295 OPTIONS ").map(|c| c.seq),
            Ok(u32::MAX)
        );
        assert_eq!(CSeq::parse("1 FOO").unwrap().method_kind(), Method::Other);
        let bad = [
            ("4294967296 INVITE", "number out of range"),
            ("36893488147419103232 REGISTER", "number out of range"),
            ("INVITE", "missing number"),
            ("1INVITE", "missing white space before method"),
            ("1 ", "bad method"),
            ("1 INVITE x", "bad method"),
        ];
        for (s, why) in bad {
            assert_eq!(CSeq::parse(s), Err(ParseError::BadCSeq(why)), "{s:?}");
        }
    }

    #[test]
    fn bounded_numbers() {
        assert_eq!(parse_bounded(" 0068 ", 255), Some(68));
        assert_eq!(parse_bounded("300", 255), None);
        assert_eq!(parse_bounded("-1", 255), None);
        assert!(is_token_str("NEWMETHOD") && !is_token_str("A B") && !is_token_str(""));
    }

    #[test]
    fn dates() {
        assert_eq!(
            SipDate::parse("Sat, 15 Oct 2005 04:44:56 GMT"),
            Ok(SipDate {
                year: 2005,
                month: 10,
                day: 15,
                hour: 4,
                minute: 44,
                second: 56
            })
        );
        for bad in [
            "Fri, 01 Jan 2010 16:00:00 EST",
            "Fri, 01 Jan 2010 16:00:00 UT",
            "Fri 01 Jan 2010 16:00:00 GMT",
            "Fri, 1 Jan 2010 16:00:00 GMT",
            "Fri, 01 Foo 2010 16:00:00 GMT",
            "Fri, 01 Jan 2010 24:00:00 GMT",
            "Fri, 00 Jan 2010 16:00:00 GMT",
            "Fri, 01 Jan 2010 16:00 GMT",
            "Fri, 01 Jan 2010 16:00:00:00 GMT",
            "",
        ] {
            assert_eq!(SipDate::parse(bad), Err(ParseError::BadDate), "{bad:?}");
        }
    }
}
