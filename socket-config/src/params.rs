//! The optional parameters after `proto:host[:ports]`: keywords and their values.

use crate::cursor::Cursor;
use crate::error::{SocketError, SocketErrorKind as K};

/// A socket parameter keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    /// `as host[:ports]`.
    As,
    /// `use_workers N` / `use_children N`.
    UseWorkers,
    /// `tos N`.
    Tos,
    /// `tag NAME`.
    Tag,
    /// `use_auto_scaling_profile NAME`.
    AutoScalingProfile,
    /// `anycast`.
    Anycast,
    /// `frag`.
    Frag,
    /// `reuse_port`.
    ReusePort,
    /// `accept_subdomain`.
    AcceptSubdomain,
    /// `allow_proxy_protocol` and its variants.
    AllowProxy,
    /// `send_proxy_protocol` and its variants.
    SendProxy,
}

/// Keywords matched exactly (ASCII case-insensitively).
const STRICT: [(&str, Param); 10] = [
    ("as", Param::As),
    ("use_workers", Param::UseWorkers),
    ("use_children", Param::UseWorkers),
    ("tos", Param::Tos),
    ("tag", Param::Tag),
    ("use_auto_scaling_profile", Param::AutoScalingProfile),
    ("anycast", Param::Anycast),
    ("frag", Param::Frag),
    ("reuse_port", Param::ReusePort),
    ("accept_subdomain", Param::AcceptSubdomain),
];

/// PROXY-protocol keywords, where each `_` may also be written `-`.
const PROXY: [(&str, Param); 6] = [
    ("allow_proxy_protocol", Param::AllowProxy),
    ("allow_proxy", Param::AllowProxy),
    ("proxy_protocol", Param::AllowProxy),
    ("proxy", Param::AllowProxy),
    ("send_proxy_protocol", Param::SendProxy),
    ("send_proxy", Param::SendProxy),
];

/// `word` equals `canon` ignoring ASCII case, with `-` accepted for `_`.
fn eq_dashed(word: &str, canon: &str) -> bool {
    word.len() == canon.len()
        && word
            .bytes()
            .zip(canon.bytes())
            .all(|(w, k)| w.eq_ignore_ascii_case(&k) || (k == b'_' && w == b'-'))
}

impl Param {
    /// The parameter `word` names, if any.
    pub(crate) fn from_word(word: &str) -> Option<Param> {
        STRICT
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(word))
            .or_else(|| PROXY.iter().find(|(k, _)| eq_dashed(word, k)))
            .map(|&(_, p)| p)
    }

    /// The canonical name (used in errors and in the canonical form).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Param::As => "as",
            Param::UseWorkers => "use_workers",
            Param::Tos => "tos",
            Param::Tag => "tag",
            Param::AutoScalingProfile => "use_auto_scaling_profile",
            Param::Anycast => "anycast",
            Param::Frag => "frag",
            Param::ReusePort => "reuse_port",
            Param::AcceptSubdomain => "accept_subdomain",
            Param::AllowProxy => "allow_proxy_protocol",
            Param::SendProxy => "send_proxy_protocol",
        }
    }

    /// A distinct bit per parameter, for duplicate detection.
    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// True when `word` is a parameter keyword (then a value of that spelling must be quoted).
pub(crate) fn is_keyword(word: &str) -> bool {
    Param::from_word(word).is_some()
}

/// Position the cursor on the value of `param` (whose keyword started at `kw_off`), refusing an
/// absent value or one that is a keyword: returns the value token `(start, end, text)` without
/// consuming it.
pub(crate) fn value_token<'a>(
    c: &mut Cursor<'a>,
    param: Param,
    kw_off: usize,
) -> Result<(usize, usize, &'a str), SocketError> {
    c.skip_ws();
    let tok = c.peek_token();
    if c.at_end() || is_keyword(tok.2) {
        return Err(c.err(kw_off, K::MissingValue(param.name())));
    }
    Ok(tok)
}

/// A bare name value: `[A-Za-z0-9_.-]+`.
pub(crate) fn is_bare_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The name value of `param` at the cursor: a bare `[A-Za-z0-9_.-]+` word or a non-empty
/// `"quoted string"` without control characters.
pub(crate) fn name_value(
    c: &mut Cursor,
    param: Param,
    kw_off: usize,
) -> Result<String, SocketError> {
    let (start, end, text) = value_token(c, param, kw_off)?;
    if c.peek() != Some(b'"') {
        if !is_bare_name(text) {
            return Err(c.err(start, K::BadValue(param.name())));
        }
        c.set_pos(end);
        return Ok(text.to_owned());
    }
    let close = c.find_from(start + 1, |b| b == b'"');
    if c.byte_at(close) != Some(b'"') {
        return Err(c.err(start, K::UnterminatedQuote));
    }
    let inner = c.slice(start + 1, close);
    if inner.is_empty() || inner.chars().any(char::is_control) {
        return Err(c.err(start, K::BadValue(param.name())));
    }
    c.set_pos(close + 1);
    if !c.at_boundary() {
        return Err(c.err(c.pos(), K::TrailingInput));
    }
    Ok(inner.to_owned())
}

/// A decimal number without leading zero (or `0` itself).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// `use_workers N`: decimal, 1..=u32::MAX.
pub(crate) fn workers_value(c: &mut Cursor, kw_off: usize) -> Result<u32, SocketError> {
    let (start, end, text) = value_token(c, Param::UseWorkers, kw_off)?;
    match decimal(text).and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n >= 1 => {
            c.set_pos(end);
            Ok(n)
        }
        _ => Err(c.err(start, K::BadValue(Param::UseWorkers.name()))),
    }
}

/// The `IPTOS_*` names of `<netinet/ip.h>` (RFC 1349 §3), as the global `tos` parameter takes.
const IPTOS: [(&str, u8); 5] = [
    ("IPTOS_LOWDELAY", 0x10),
    ("IPTOS_THROUGHPUT", 0x08),
    ("IPTOS_RELIABILITY", 0x04),
    ("IPTOS_MINCOST", 0x02),
    ("IPTOS_LOWCOST", 0x02),
];

/// `tos N`: decimal or `0x` hex in 0..=255, or an `IPTOS_*` name (case-insensitive).
pub(crate) fn tos_value(c: &mut Cursor, kw_off: usize) -> Result<u8, SocketError> {
    let (start, end, text) = value_token(c, Param::Tos, kw_off)?;
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    let value = match hex {
        Some(h) if !h.is_empty() && h.len() <= 2 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u8::from_str_radix(h, 16).ok()
        }
        Some(_) => None,
        None => decimal(text)
            .and_then(|n| u8::try_from(n).ok())
            .or_else(|| {
                IPTOS
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(text))
                    .map(|&(_, v)| v)
            }),
    };
    match value {
        Some(v) => {
            c.set_pos(end);
            Ok(v)
        }
        None => Err(c.err(start, K::BadValue(Param::Tos.name()))),
    }
}
