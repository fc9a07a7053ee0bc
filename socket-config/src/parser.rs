//! The top level: the `proto:` head, the parameter loop, and `bond:NAME { ... }` groups.

use crate::cursor::Cursor;
use crate::error::{SocketError, SocketErrorKind as K};
use crate::host::parse_host_ports;
use crate::params::{name_value, tos_value, value_token, workers_value, Param};
use crate::types::{Advertised, Ports, Proto, SocketDef, SocketSpec};

/// Parse one `socket=` (or 3.x `listen=`) value: the text after the `=`, comment already
/// stripped. Surrounding whitespace is ignored. No I/O: names are not resolved.
///
/// ```
/// use socket_config::{parse, Host, Ports, Proto, SocketSpec};
/// let SocketSpec::Single(def) = parse("udp:10.0.0.1:5060-5062 as 198.51.100.1:5060-5062")? else {
///     unreachable!()
/// };
/// assert_eq!(def.proto, Proto::Udp);
/// assert_eq!(def.ports, Some(Ports::Range(5060, 5062)));
/// assert_eq!(def.expand_ports(5060)[2], (5062, Some(5062)));
/// # Ok::<(), socket_config::SocketError>(())
/// ```
pub fn parse(value: &str) -> Result<SocketSpec, SocketError> {
    let mut c = Cursor::new(value);
    c.skip_ws();
    if c.at_end() {
        return Err(c.err(c.pos(), K::Empty));
    }
    match head(&mut c)? {
        Head::Bond => parse_bond(&mut c),
        Head::Proto(p) => parse_rest(&mut c, p).map(SocketSpec::Single),
    }
}

/// What comes before the first `:`.
enum Head {
    /// A protocol.
    Proto(Proto),
    /// `bond`.
    Bond,
}

/// Read `proto:` (or `bond:`) and leave the cursor after the colon.
fn head(c: &mut Cursor) -> Result<Head, SocketError> {
    let start = c.pos();
    let end = c.find_from(start, |b| !(b.is_ascii_alphanumeric() || b == b'_'));
    let name = c.slice(start, end);
    let head = if name.eq_ignore_ascii_case("bond") {
        Some(Head::Bond)
    } else {
        Proto::from_name(name).map(Head::Proto)
    };
    match (c.byte_at(end), head) {
        (Some(b':'), Some(h)) => {
            c.set_pos(end + 1);
            Ok(h)
        }
        (Some(b':'), None) if !name.is_empty() => {
            Err(c.err(start, K::UnknownProto(name.to_owned())))
        }
        (_, Some(_)) => Err(c.err(end, K::MissingColon)),
        _ => Err(c.err(start, K::MissingProto)),
    }
}

/// `host[:ports] [param ...]` after `proto:`, up to the window end.
fn parse_rest(c: &mut Cursor, proto: Proto) -> Result<SocketDef, SocketError> {
    let hp = parse_host_ports(c, true)?;
    let mut def = SocketDef::new(proto, hp.host);
    def.ports = hp.ports;
    let mut seen = 0u16;
    loop {
        c.skip_ws();
        if c.at_end() {
            return Ok(def);
        }
        let (off, end, word) = c.peek_token();
        let Some(param) = Param::from_word(word) else {
            return Err(c.err(off, K::UnknownParam(word.to_owned())));
        };
        if seen & param.bit() != 0 {
            return Err(c.err(off, K::DuplicateParam(param.name())));
        }
        seen |= param.bit();
        c.set_pos(end);
        match param {
            Param::As => def.advertised = Some(advertised(c, off, def.ports.as_ref())?),
            Param::UseWorkers => def.workers = Some(workers_value(c, off)?),
            Param::Tos => def.tos = Some(tos_value(c, off)?),
            Param::Tag => def.tag = Some(name_value(c, param, off)?),
            Param::AutoScalingProfile => {
                def.auto_scaling_profile = Some(name_value(c, param, off)?)
            }
            Param::Anycast => def.anycast = true,
            Param::Frag => def.frag = true,
            Param::ReusePort => def.reuse_port = true,
            Param::AcceptSubdomain => def.accept_subdomain = true,
            Param::AllowProxy => def.proxy_protocol.allow = true,
            Param::SendProxy => def.proxy_protocol.send = true,
        }
    }
}

/// The value of `as` (keyword at `kw_off`): a host other than `*`, with as many ports as the
/// socket if it has any.
fn advertised(
    c: &mut Cursor,
    kw_off: usize,
    own: Option<&Ports>,
) -> Result<Advertised, SocketError> {
    value_token(c, Param::As, kw_off)?;
    let hp = parse_host_ports(c, false)?;
    if let Some(adv) = &hp.ports {
        let socket = own.map_or(1, Ports::len);
        if adv.len() != socket {
            return Err(c.err(
                hp.ports_off,
                K::AdvertisedMismatch {
                    socket,
                    advertised: adv.len(),
                },
            ));
        }
    }
    Ok(Advertised {
        host: hp.host,
        ports: hp.ports,
    })
}

/// `NAME { "member", ... }` after `bond:`.
fn parse_bond(c: &mut Cursor) -> Result<SocketSpec, SocketError> {
    let start = c.pos();
    let end = c.find_from(start, |b| b.is_ascii_whitespace() || b == b'{');
    let name = c.slice(start, end);
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if name.is_empty() || !name.bytes().all(valid) {
        return Err(c.err(start, K::BadBondName));
    }
    c.set_pos(end);
    c.skip_ws();
    if c.peek() != Some(b'{') {
        return Err(c.err(c.pos(), K::Expected("'{'")));
    }
    let open = c.pos();
    c.set_pos(open + 1);
    let mut members = Vec::new();
    loop {
        c.skip_ws();
        match c.peek() {
            Some(b'}') if members.is_empty() => return Err(c.err(open, K::EmptyBond)),
            Some(b'"') => {}
            _ => return Err(c.err(c.pos(), K::Expected("a quoted member"))),
        }
        let quote = c.pos();
        let close = c.find_from(quote + 1, |b| b == b'"');
        if c.byte_at(close) != Some(b'"') {
            return Err(c.err(quote, K::UnterminatedQuote));
        }
        members.push(parse_member(&mut c.window(quote + 1, close))?);
        c.set_pos(close + 1);
        c.skip_ws();
        match c.peek() {
            Some(b',') => c.set_pos(c.pos() + 1),
            Some(b'}') => {
                c.set_pos(c.pos() + 1);
                break;
            }
            _ => return Err(c.err(c.pos(), K::Expected("',' or '}'"))),
        }
    }
    c.skip_ws();
    if !c.at_end() {
        return Err(c.err(c.pos(), K::TrailingInput));
    }
    Ok(SocketSpec::Bond {
        name: name.to_owned(),
        members,
    })
}

/// One bond member: a full single-socket definition inside the quotes.
fn parse_member(c: &mut Cursor) -> Result<SocketDef, SocketError> {
    c.skip_ws();
    if c.at_end() {
        return Err(c.err(c.pos(), K::Empty));
    }
    let start = c.pos();
    match head(c)? {
        Head::Bond => Err(c.err(start, K::NestedBond)),
        Head::Proto(p) => parse_rest(c, p),
    }
}
