//! Pseudo-variables, resolved at compile time: every `$name(arg)` becomes a [`Pv`] with its
//! argument already parsed, so running the script never looks at names.
use crate::config::ErrorKind;
use std::collections::HashMap;
use std::fmt;

/// A script variable (`$var(name)`), numbered at compile time. Its value lives in the
/// engine's per-run state, never in the [`super::Env`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u16);

/// A resolved pseudo-variable. `Var` and `RetCode` are served by the engine itself; every
/// other one is asked of [`super::Env::pv_get`] / [`super::Env::pv_set`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pv {
    /// `$si`: source IP of the message.
    SrcIp,
    /// `$sp`: source port.
    SrcPort,
    /// `$rm`: request method.
    Method,
    /// `$ru`: request URI (writable).
    RUri,
    /// `$rU`: user part of the request URI (writable).
    RUser,
    /// `$rd`: domain part of the request URI (writable).
    RDomain,
    /// `$rp`: port of the request URI (writable).
    RPort,
    /// `$ci`: Call-ID.
    CallId,
    /// `$proto`: transport protocol the message came over (`udp`, `ws`, ...).
    Proto,
    /// `$socket_in` / `$socket_in(field)`: the local socket the message came in on.
    SocketIn(SocketField),
    /// `$hdr(Name)`: the first header of that name.
    Hdr(HeaderName),
    /// `$du`: destination URI (outbound proxy; writable).
    DstUri,
    /// `$fu`: From URI.
    FromUri,
    /// `$tu`: To URI.
    ToUri,
    /// `$fU`: From URI user.
    FromUser,
    /// `$tU`: To URI user.
    ToUser,
    /// `$fd`: From URI domain.
    FromDomain,
    /// `$td`: To URI domain.
    ToDomain,
    /// `$ft`: From tag.
    FromTag,
    /// `$tt`: To tag.
    ToTag,
    /// `$ct`: Contact header value.
    Contact,
    /// `$cs`: CSeq number.
    CSeq,
    /// `$ua`: User-Agent header value.
    UserAgent,
    /// `$rs`: reply status code.
    ReplyStatus,
    /// `$rr`: reply reason phrase.
    ReplyReason,
    /// `$Ri`: IP the message was received on.
    RecvIp,
    /// `$Rp`: port the message was received on.
    RecvPort,
    /// `$rb`: message body.
    Body,
    /// `$ml`: message length.
    MsgLen,
    /// `$var(name)`: script variable (engine-held, writable).
    Var(VarId),
    /// `$rc` / `$retcode`: return code of the last function or route call (engine-held).
    RetCode,
    /// `$au`: the username of the Digest credentials (OpenSIPS auth).
    AuthUser,
    /// `$ar`: the realm of the Digest credentials.
    AuthRealm,
    /// `$ad`: the domain of the credentials' username (`user@domain`), else the realm.
    AuthDomain,
    /// `$adu`: the digest-uri of the credentials.
    AuthUri,
    /// `$T_reply_code` (OpenSIPS tm): in a failure route, the final code chosen among the
    /// branches; in a reply route, the reply's code.
    TReplyCode,
    /// `$T_fr_timeout` (OpenSIPS tm): `fr_timeout` for the transaction `t_relay()` makes next,
    /// in seconds (writable; `NULL` restores the modparam).
    TFrTimeout,
    /// `$T_fr_inv_timeout` (OpenSIPS tm): `fr_inv_timeout` likewise (writable).
    TFrInvTimeout,
}

/// Fields of `$socket_in(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketField {
    /// No argument: the whole socket, `proto:ip:port`.
    Full,
    /// `ip`
    Ip,
    /// `port`
    Port,
    /// `proto`
    Proto,
    /// `advertised_ip`
    AdvertisedIp,
    /// `advertised_port`
    AdvertisedPort,
    /// `tag`
    Tag,
    /// `anycast`
    Anycast,
    /// `af`
    Af,
}

const SOCKET_FIELDS: &[(SocketField, &str)] = &[
    (SocketField::Ip, "ip"),
    (SocketField::Port, "port"),
    (SocketField::Proto, "proto"),
    (SocketField::AdvertisedIp, "advertised_ip"),
    (SocketField::AdvertisedPort, "advertised_port"),
    (SocketField::Tag, "tag"),
    (SocketField::Anycast, "anycast"),
    (SocketField::Af, "af"),
];

impl SocketField {
    fn parse(s: &str) -> Option<SocketField> {
        SOCKET_FIELDS.iter().find(|f| f.1 == s).map(|f| f.0)
    }

    /// The argument naming this field (empty for [`SocketField::Full`]).
    pub fn name(self) -> &'static str {
        SOCKET_FIELDS
            .iter()
            .find(|f| f.0 == self)
            .map_or("", |f| f.1)
    }
}

/// Headers with a well-known name, and their compact forms (RFC 3261 §7.3.3, RFC 3515,
/// RFC 3892, RFC 4028, RFC 6665).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownHeader {
    /// Via (v)
    Via,
    /// From (f)
    From,
    /// To (t)
    To,
    /// Call-ID (i)
    CallId,
    /// CSeq
    CSeq,
    /// Contact (m)
    Contact,
    /// Max-Forwards
    MaxForwards,
    /// Content-Length (l)
    ContentLength,
    /// Content-Type (c)
    ContentType,
    /// Content-Encoding (e)
    ContentEncoding,
    /// Route
    Route,
    /// Record-Route
    RecordRoute,
    /// User-Agent
    UserAgent,
    /// Server
    Server,
    /// Allow
    Allow,
    /// Supported (k)
    Supported,
    /// Require
    Require,
    /// Expires
    Expires,
    /// Authorization
    Authorization,
    /// Proxy-Authorization
    ProxyAuthorization,
    /// WWW-Authenticate
    WwwAuthenticate,
    /// Proxy-Authenticate
    ProxyAuthenticate,
    /// Subject (s)
    Subject,
    /// Event (o)
    Event,
    /// Allow-Events (u)
    AllowEvents,
    /// Refer-To (r)
    ReferTo,
    /// Referred-By (b)
    ReferredBy,
    /// Session-Expires (x)
    SessionExpires,
}

const KNOWN: &[(KnownHeader, &str, Option<char>)] = &[
    (KnownHeader::Via, "Via", Some('v')),
    (KnownHeader::From, "From", Some('f')),
    (KnownHeader::To, "To", Some('t')),
    (KnownHeader::CallId, "Call-ID", Some('i')),
    (KnownHeader::CSeq, "CSeq", None),
    (KnownHeader::Contact, "Contact", Some('m')),
    (KnownHeader::MaxForwards, "Max-Forwards", None),
    (KnownHeader::ContentLength, "Content-Length", Some('l')),
    (KnownHeader::ContentType, "Content-Type", Some('c')),
    (KnownHeader::ContentEncoding, "Content-Encoding", Some('e')),
    (KnownHeader::Route, "Route", None),
    (KnownHeader::RecordRoute, "Record-Route", None),
    (KnownHeader::UserAgent, "User-Agent", None),
    (KnownHeader::Server, "Server", None),
    (KnownHeader::Allow, "Allow", None),
    (KnownHeader::Supported, "Supported", Some('k')),
    (KnownHeader::Require, "Require", None),
    (KnownHeader::Expires, "Expires", None),
    (KnownHeader::Authorization, "Authorization", None),
    (KnownHeader::ProxyAuthorization, "Proxy-Authorization", None),
    (KnownHeader::WwwAuthenticate, "WWW-Authenticate", None),
    (KnownHeader::ProxyAuthenticate, "Proxy-Authenticate", None),
    (KnownHeader::Subject, "Subject", Some('s')),
    (KnownHeader::Event, "Event", Some('o')),
    (KnownHeader::AllowEvents, "Allow-Events", Some('u')),
    (KnownHeader::ReferTo, "Refer-To", Some('r')),
    (KnownHeader::ReferredBy, "Referred-By", Some('b')),
    (KnownHeader::SessionExpires, "Session-Expires", Some('x')),
];

impl KnownHeader {
    fn entry(self) -> (&'static str, Option<char>) {
        KNOWN
            .iter()
            .find(|k| k.0 == self)
            .map_or(("", None), |k| (k.1, k.2))
    }

    /// The canonical name, e.g. `Call-ID`.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// The compact form, e.g. `i` for Call-ID.
    pub fn compact(self) -> Option<char> {
        self.entry().1
    }
}

/// A header name from `$hdr(Name)`, validated as an RFC 3261 §25.1 token and, when it is a
/// well-known header (full or compact form, any case), resolved to a [`KnownHeader`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderName {
    name: Box<str>,
    known: Option<KnownHeader>,
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

impl HeaderName {
    /// Validate and resolve a header name.
    pub fn parse(s: &str) -> Result<HeaderName, &'static str> {
        if s.is_empty() {
            return Err("missing header name");
        }
        if !s.bytes().all(is_token_char) {
            return Err("header name is not a valid token");
        }
        let known = KNOWN.iter().find(|(_, full, compact)| {
            full.eq_ignore_ascii_case(s)
                || compact.is_some_and(|c| {
                    s.len() == 1 && s.eq_ignore_ascii_case(c.encode_utf8(&mut [0; 4]))
                })
        });
        Ok(match known {
            Some(&(k, full, _)) => HeaderName {
                name: full.into(),
                known: Some(k),
            },
            None => HeaderName {
                name: s.into(),
                known: None,
            },
        })
    }

    /// The canonical name of a known header, else the name as written.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The well-known header this is, if any.
    pub fn known(&self) -> Option<KnownHeader> {
        self.known
    }

    /// Does a header name as found in a message (any case, compact form allowed) name
    /// this header?
    pub fn matches(&self, raw: &str) -> bool {
        if raw.eq_ignore_ascii_case(&self.name) {
            return true;
        }
        match (self.known.and_then(KnownHeader::compact), raw.as_bytes()) {
            (Some(c), [b]) => b.eq_ignore_ascii_case(&(c as u8)),
            _ => false,
        }
    }
}

impl Pv {
    /// Can a script assign to it?
    pub fn is_writable(&self) -> bool {
        matches!(
            self,
            Pv::RUri
                | Pv::RUser
                | Pv::RDomain
                | Pv::RPort
                | Pv::DstUri
                | Pv::Var(_)
                | Pv::TFrTimeout
                | Pv::TFrInvTimeout
        )
    }
}

impl fmt::Display for Pv {
    /// The pseudo-variable as a script would write it (`$var` shows its number).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(&(_, name)) = SIMPLE.iter().find(|(pv, _)| pv == self) {
            return write!(f, "${name}");
        }
        match self {
            Pv::SocketIn(SocketField::Full) => f.write_str("$socket_in"),
            Pv::SocketIn(field) => write!(f, "$socket_in({})", field.name()),
            Pv::Hdr(h) => write!(f, "$hdr({})", h.as_str()),
            Pv::Var(id) => write!(f, "$var(#{})", id.0),
            _ => f.write_str("$?"),
        }
    }
}

/// Pseudo-variables that take no argument, by name.
const SIMPLE: &[(Pv, &str)] = &[
    (Pv::SrcIp, "si"),
    (Pv::SrcPort, "sp"),
    (Pv::Method, "rm"),
    (Pv::RUri, "ru"),
    (Pv::RUser, "rU"),
    (Pv::RDomain, "rd"),
    (Pv::RPort, "rp"),
    (Pv::CallId, "ci"),
    (Pv::Proto, "proto"),
    (Pv::DstUri, "du"),
    (Pv::FromUri, "fu"),
    (Pv::ToUri, "tu"),
    (Pv::FromUser, "fU"),
    (Pv::ToUser, "tU"),
    (Pv::FromDomain, "fd"),
    (Pv::ToDomain, "td"),
    (Pv::FromTag, "ft"),
    (Pv::ToTag, "tt"),
    (Pv::Contact, "ct"),
    (Pv::CSeq, "cs"),
    (Pv::UserAgent, "ua"),
    (Pv::ReplyStatus, "rs"),
    (Pv::ReplyReason, "rr"),
    (Pv::RecvIp, "Ri"),
    (Pv::RecvPort, "Rp"),
    (Pv::Body, "rb"),
    (Pv::MsgLen, "ml"),
    (Pv::RetCode, "rc"),
    (Pv::RetCode, "retcode"),
    (Pv::AuthUser, "au"),
    (Pv::AuthRealm, "ar"),
    (Pv::AuthDomain, "ad"),
    (Pv::AuthUri, "adu"),
    (Pv::TReplyCode, "T_reply_code"),
    (Pv::TFrTimeout, "T_fr_timeout"),
    (Pv::TFrInvTimeout, "T_fr_inv_timeout"),
];

/// Names of `$var(...)` variables, numbered in order of first use.
#[derive(Debug, Default)]
pub(crate) struct VarNames {
    pub names: Vec<Box<str>>,
    map: HashMap<Box<str>, VarId>,
}

impl VarNames {
    fn id(&mut self, name: &str) -> Result<VarId, ErrorKind> {
        if let Some(&id) = self.map.get(name) {
            return Ok(id);
        }
        let id = VarId(
            u16::try_from(self.names.len()).map_err(|_| ErrorKind::Limit("script variables"))?,
        );
        self.names.push(name.into());
        self.map.insert(name.into(), id);
        Ok(id)
    }
}

/// Where a resolution error should point: the whole pseudo-variable or its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrAt {
    /// The `$name...` as a whole.
    Whole,
    /// The argument text.
    Arg,
}

/// Resolve `$name` / `$name(arg)`.
pub(crate) fn resolve(
    name: &str,
    arg: Option<&str>,
    vars: &mut VarNames,
) -> Result<Pv, (ErrorKind, ErrAt)> {
    let bad = |reason: &str, at| {
        (
            ErrorKind::BadPvArg {
                pv: name.to_owned(),
                reason: reason.to_owned(),
            },
            at,
        )
    };
    if let Some((pv, _)) = SIMPLE.iter().find(|(_, n)| *n == name) {
        return match arg {
            None => Ok(pv.clone()),
            Some(_) => Err(bad("takes no argument", ErrAt::Arg)),
        };
    }
    match name {
        "socket_in" => match arg {
            None => Ok(Pv::SocketIn(SocketField::Full)),
            Some(a) => SocketField::parse(a.trim())
                .map(Pv::SocketIn)
                .ok_or_else(|| {
                    bad(
                    "expected ip, port, proto, advertised_ip, advertised_port, tag, anycast or af",
                    ErrAt::Arg,
                )
                }),
        },
        "hdr" => match arg {
            None => Err(bad(
                "missing header name, e.g. $hdr(Max-Forwards)",
                ErrAt::Whole,
            )),
            Some(a) => HeaderName::parse(a.trim())
                .map(Pv::Hdr)
                .map_err(|r| bad(r, ErrAt::Arg)),
        },
        "var" => match arg.map(str::trim) {
            None => Err(bad("missing variable name, e.g. $var(x)", ErrAt::Whole)),
            Some(a)
                if a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
            {
                Err(bad(
                    "variable names are letters, digits and '_'",
                    ErrAt::Arg,
                ))
            }
            Some(a) => vars.id(a).map(Pv::Var).map_err(|k| (k, ErrAt::Whole)),
        },
        _ => Err((ErrorKind::UnknownPv(name.to_owned()), ErrAt::Whole)),
    }
}
