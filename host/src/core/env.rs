//! The script's view of one received request: pseudo-variables read from the parsed
//! [`Message`] and the [`ReceiveInfo`], and the core functions (`sl_send_reply`, ...).
use super::addr::{split_host_port, SocketInfo};
use super::fork::TmEnv;
use super::proxy::{self, ProxyState};
use super::send::{peer, Core};
use super::stateful::BranchTarget;
use crate::script::{Env, FuncId, LogLevel, Outcome, Pv, RouteRef, SocketField, Value};
use crate::sip::Message;
use sipcore_abi::{Proto, ReceiveInfo};
use std::borrow::Cow;
use std::cell::RefCell;
use std::net::SocketAddr;

thread_local! {
    static STATE: RefCell<crate::script::RunState> = RefCell::new(crate::script::RunState::new());
}

/// One message's environment.
pub(crate) struct MsgEnv<'a> {
    core: &'a Core,
    info: &'a ReceiveInfo,
    /// The message, or its rewrite by `force_rport()` / `fix_nated_contact()`, which the
    /// functions after them, the relay and the replies use.
    msg: Msg<'a>,
    /// `$du`, once the script sets it.
    du: Option<String>,
    /// `$ru`, once the script rewrites it.
    ru: Option<String>,
    /// A stateless reply was sent.
    replied: bool,
    /// What the proxy functions asked for.
    proxy: ProxyState,
    /// What the auth functions found.
    auth: super::authz::AuthState,
    /// What the last call stored for its output arguments, by position.
    outputs: Vec<(usize, String)>,
    /// `$si` as text, written once per message into this buffer (no allocation): configs
    /// compare it on every request (the default one, for pike's loopback exemption).
    si: IpText,
    /// The message as received, when `fix_nated_contact()` rewrote its Contact: `save()`
    /// stores the Contact the client sent (as OpenSIPS, whose save() reads the message
    /// without its lumps), so the 200 lists the client's own Contact. With `rport` when
    /// `force_rport()` was called.
    received: Option<Box<Message>>,
    /// The transaction functions' state (`t_on_*`, branches, the failure route's cell).
    tm: TmEnv,
}

/// The message a run works on: the one received, or its rewrite. A rewrite is rare and a
/// [`Message`] is large (about a kilobyte), so it is boxed: the environment built for every
/// message stays small to build and to move.
enum Msg<'a> {
    Received(&'a Message),
    Rewritten(Box<Message>),
}

impl std::ops::Deref for Msg<'_> {
    type Target = Message;
    fn deref(&self) -> &Message {
        match self {
            Msg::Received(m) => m,
            Msg::Rewritten(m) => m,
        }
    }
}

/// An IP address's text, formatted once, in place (an IPv6 address takes at most 45 bytes).
struct IpText {
    buf: [u8; 46],
    len: u8,
}

impl Default for IpText {
    fn default() -> Self {
        IpText {
            buf: [0; 46],
            len: 0,
        }
    }
}

impl IpText {
    /// The text of `ip`, formatted on the first call.
    fn get(&mut self, ip: std::net::IpAddr) -> &str {
        if self.len == 0 {
            match ip {
                std::net::IpAddr::V4(v4) => {
                    let mut b = [0u8; 15];
                    let n = sipcore_sip::ipv4_text(v4, &mut b);
                    self.buf[..n].copy_from_slice(&b[..n]);
                    self.len = n as u8;
                }
                std::net::IpAddr::V6(_) => {
                    use std::io::Write;
                    let mut w = std::io::Cursor::new(&mut self.buf[..]);
                    if write!(w, "{ip}").is_ok() {
                        self.len = w.position() as u8;
                    }
                }
            }
        }
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Run the main route for a request.
pub(crate) fn run_request(core: &Core, info: &ReceiveInfo, msg: &Message) {
    let Some(route) = core.script.main_route() else {
        return;
    };
    if run(core, info, msg, route).0 == Outcome::Drop {
        crate::log!(Debug, "core", "request dropped by the script"; "peer" => peer(info));
    }
}

/// Run `onreply_route` (the unnamed one) for a reply about to be relayed: `None` when the
/// script dropped it, else the reply to relay (rewritten if the script called
/// `fix_nated_contact()`).
pub(crate) fn run_reply<'m>(
    core: &Core,
    info: &ReceiveInfo,
    msg: &'m Message,
) -> Option<Cow<'m, Message>> {
    let Some(route) = core.script.onreply_route(None) else {
        return Some(Cow::Borrowed(msg));
    };
    match run(core, info, msg, route) {
        (Outcome::Drop, _) => {
            crate::log!(Debug, "core", "reply {} dropped by onreply_route", msg.status().unwrap_or(0); "peer" => peer(info));
            None
        }
        (_, Some(m)) => Some(Cow::Owned(*m)),
        (_, None) => Some(Cow::Borrowed(msg)),
    }
}

/// Run `route` over `msg`, with this thread's reusable script state; also the message as the
/// script left it, if `force_rport()` or `fix_nated_contact()` rewrote it.
fn run(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    route: RouteRef,
) -> (Outcome, Option<Box<Message>>) {
    let mut env = MsgEnv::new(core, info, msg);
    let out = run_env(core, route, &mut env);
    let msg = match env.msg {
        Msg::Rewritten(m) => Some(m),
        Msg::Received(_) => None,
    };
    (out, msg)
}

fn run_env(core: &Core, route: RouteRef, env: &mut MsgEnv<'_>) -> Outcome {
    STATE.with(|s| match s.try_borrow_mut() {
        Ok(mut st) => core.script.run_with(&mut st, route, env),
        // Re-entered from inside a run on this thread (a branch route from t_relay()):
        // fresh state.
        Err(_) => core.script.run(route, env),
    })
}

/// The failure route of a transaction (OpenSIPS tm's `failure_route`, armed by
/// `t_on_failure()`): run over the request as received, with `$T_reply_code`; `t_relay()`
/// there adds branches to the transaction and `t_reply()` answers through it. Then the
/// transaction resumes (the held response goes upstream unless the route did either).
pub(crate) fn run_failure(core: &Core, id: u64, run: super::stateful::FailureRun) {
    let mut env = MsgEnv::new(core, &run.upstream, &run.request);
    let saved_st = run.relay.as_ref().map(|s| s.st.clone()).unwrap_or_default();
    if let Some(saved) = run.relay {
        env.proxy = saved.st;
        env.tm.serial = saved.serial;
    }
    env.tm.failure = Some((id, run.code));
    if run_env(core, run.route, &mut env) == Outcome::Drop {
        crate::log!(Debug, "tm", "failure_route dropped {}", run.code; "peer" => peer(&run.upstream));
    }
    // t_on_failure() again in the failure route: armed for the next round, with the groups
    // next_branches() has not taken yet.
    if let Some(route) = env.tm.opts.failure {
        let saved = super::stateful::Saved {
            st: saved_st,
            serial: std::mem::take(&mut env.tm.serial),
        };
        super::stateful::rearm(id, route, saved);
    }
    super::stateful::resume(core, id);
}

/// An `onreply_route[name]` armed by `t_on_reply()` for a response of a transaction's branch:
/// `None` when the script dropped it (a provisional response is then not relayed), else the
/// response as `fix_nated_contact()` rewrote it, if it did.
pub(crate) fn run_reply_route(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    route: RouteRef,
) -> Option<Option<Message>> {
    match run(core, info, msg, route) {
        (Outcome::Drop, _) => None,
        (_, m) => Some(m.map(|m| *m)),
    }
}

impl<'a> MsgEnv<'a> {
    fn new(core: &'a Core, info: &'a ReceiveInfo, msg: &'a Message) -> Self {
        MsgEnv {
            core,
            info,
            msg: Msg::Received(msg),
            du: None,
            ru: None,
            replied: false,
            proxy: ProxyState::default(),
            auth: Default::default(),
            outputs: Vec::new(),
            si: IpText::default(),
            received: None,
            tm: TmEnv::default(),
        }
    }
}

/// A timeout as script seconds.
fn secs(t: Option<std::time::Duration>) -> Value<'static> {
    t.map_or(Value::Null, |d| Value::Int(d.as_secs() as i64))
}

fn opt(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, Value::str)
}

/// `$socket_in(field)` for a message or connection that arrived on `local` over `proto`.
pub(crate) fn socket_field<'s>(
    sockets: &'s [SocketInfo],
    proto: Proto,
    local: Option<SocketAddr>,
    listener: u32,
    f: SocketField,
) -> Value<'s> {
    let sock = sockets.iter().find(|s| s.id == listener);
    match f {
        SocketField::Full => local.map_or(Value::Null, |a| {
            Value::Str(Cow::Owned(format!("{}:{a}", proto.name())))
        }),
        SocketField::Ip => {
            local.map_or(Value::Null, |a| Value::Str(Cow::Owned(a.ip().to_string())))
        }
        SocketField::Port => local.map_or(Value::Null, |a| Value::Int(i64::from(a.port()))),
        SocketField::Proto => Value::str(proto.name()),
        SocketField::AdvertisedIp | SocketField::AdvertisedPort => {
            let Some(adv) = sock.and_then(|s| s.advertised.as_deref()) else {
                return Value::Null;
            };
            let (host, port) = split_host_port(adv);
            if f == SocketField::AdvertisedIp {
                Value::str(host)
            } else {
                port.map_or(Value::Null, |p| Value::Int(i64::from(p)))
            }
        }
        SocketField::Tag => opt(sock.and_then(|s| s.tag.as_deref())),
        SocketField::Anycast => Value::Int(0),
        SocketField::Af => local.map_or(Value::Null, |a| {
            Value::str(if a.is_ipv4() { "INET" } else { "INET6" })
        }),
    }
}

/// `$si` / `$sp`.
pub(crate) fn addr_ip(a: Option<SocketAddr>) -> Value<'static> {
    a.map_or(Value::Null, |a| Value::Str(Cow::Owned(a.ip().to_string())))
}

/// The port of an address as a script integer.
pub(crate) fn addr_port(a: Option<SocketAddr>) -> Value<'static> {
    a.map_or(Value::Null, |a| Value::Int(i64::from(a.port())))
}

/// `v == myself`: one of our socket addresses or advertised names.
pub(crate) fn is_myself(sockets: &[SocketInfo], v: &Value<'_>) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let host = crate::sip::Uri::parse(s)
        .map(|u| u.host().to_string())
        .unwrap_or_else(|_| s.to_string());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    sockets.iter().any(|sock| {
        sock.addr.ip().to_string() == host
            || sock
                .advertised
                .as_deref()
                .is_some_and(|a| split_host_port(a).0.eq_ignore_ascii_case(host))
    })
}

impl MsgEnv<'_> {
    fn socket_field(&self, f: SocketField) -> Value<'_> {
        socket_field(
            &self.core.sockets,
            self.info.proto,
            self.info.dst.to_std(),
            self.info.listener,
            f,
        )
    }

    /// `sl_send_reply(code, reason)`, or `t_reply(code, reason)` when `stateful`.
    fn send_reply(&mut self, args: &[Value<'_>], stateful: bool) -> i64 {
        let name = if stateful { "t_reply" } else { "sl_send_reply" };
        let Some(code) = args
            .first()
            .and_then(Value::as_int)
            .and_then(|c| u16::try_from(c).ok())
        else {
            self.log(
                LogLevel::Err,
                &format!("{name}: the code is not an integer"),
            );
            return -1;
        };
        if !(100..=699).contains(&code) {
            self.log(LogLevel::Err, &format!("{name}: invalid code {code}"));
            return -1;
        }
        let reason = args.get(1).and_then(Value::as_str).unwrap_or("");
        if stateful {
            return match super::stateful::reply(self.core, self.info, &self.msg, code, reason) {
                Ok(()) => {
                    self.replied = true;
                    1
                }
                Err(e) => {
                    crate::log!(Warning, "tm", "t_reply {} failed: {}", code, e; "peer" => peer(self.info));
                    -1
                }
            };
        }
        match self.core.reply(self.info, &self.msg, code, reason, &[]) {
            Ok(sent) => {
                self.replied |= sent;
                1
            }
            Err(e) => {
                crate::log!(Warning, "core", "sl_send_reply {} failed: {}", code, e; "peer" => peer(self.info));
                -1
            }
        }
    }
}

impl MsgEnv<'_> {
    /// `sanity_check()` / `sipmsg_validate()`: the whole message checked against the RFC 3261
    /// grammar and the rules of RFC 4475 §3.1.2 (every header a proxy reads, CSeq method,
    /// one From/To/Call-ID/CSeq, version). 1 when valid; -1 otherwise, after answering 400 (505
    /// for the version) with `reply` (Kamailio's sanity_check does; OpenSIPS's
    /// sipmsg_validate does not). Arguments (check masks) are accepted and ignored: every
    /// check runs.
    fn sanity(&mut self, reply: bool) -> i64 {
        let Err(e) = self.msg.validate_for_proxy() else {
            return 1;
        };
        // Only on this (rare) path: was it the Request-URI?
        if self.msg.is_request() && self.msg.request_uri().is_err() {
            crate::stats::counters::CORE_BAD_URIS.inc();
        }
        crate::log!(Info, "core", "malformed {} {}: {}", self.msg.method_str().unwrap_or("message"),
            if reply { "answered" } else { "found" }, e; "peer" => peer(self.info));
        if reply && self.msg.is_request() {
            let code = e.reply_code();
            let sent = self.core.reply(
                self.info,
                &self.msg,
                code,
                super::send::bad_reason(code),
                &[],
            );
            self.replied |= sent.unwrap_or(false);
        }
        -1
    }

    /// `t_relay()` of a forked request (the Request-URI's target and every appended branch),
    /// or in a failure route (new branches of its transaction), each through `branch_route`
    /// when `t_on_branch()` armed one (its `drop` skips the branch).
    fn relay_branches(&mut self) -> i64 {
        let main = self.main_target();
        let mut targets: Vec<BranchTarget> = std::iter::once(main)
            .chain(self.tm.branches.drain(..))
            .map(|mut t| {
                t.st = ProxyState {
                    dst: t.dst,
                    ..self.proxy.clone()
                };
                if let Some(r) = &t.route {
                    t.st.add_headers.push(("Route".to_string(), r.clone()));
                }
                t
            })
            .collect();
        if let Some(route) = self.tm.opts.on_branch {
            targets.retain_mut(|t| {
                let mut child = MsgEnv::new(self.core, self.info, &self.msg);
                child.ru = Some(std::mem::take(&mut t.ru));
                child.du = t.du.take();
                child.proxy = std::mem::take(&mut t.st);
                let keep = run_env(self.core, route, &mut child) != Outcome::Drop;
                t.ru = child.ru.unwrap_or_default();
                t.du = child.du;
                t.dst = child.proxy.dst;
                t.st = child.proxy;
                keep
            });
        }
        let (r, replied) = super::fork::relay_branches(
            self.core,
            self.info,
            &self.msg,
            &targets,
            (&self.tm.opts, &self.tm.serial),
            self.tm.failure.map(|(id, _)| id),
        );
        self.replied |= replied;
        r
    }

    /// The Request-URI's target as the main route has it now.
    fn main_target(&self) -> BranchTarget {
        BranchTarget {
            ru: self
                .ru
                .clone()
                .or_else(|| self.msg.ruri().map(str::to_string))
                .unwrap_or_default(),
            du: self.du.clone(),
            dst: self.proxy.dst,
            q: self.tm.ru_q,
            route: self.tm.ru_route.clone(),
            st: ProxyState::default(),
        }
    }

    /// Makes `t` the Request-URI's target.
    fn set_main(&mut self, t: BranchTarget) {
        self.ru = Some(t.ru);
        self.du = t.du;
        self.proxy.dst = t.dst;
        self.tm.ru_q = t.q;
        self.tm.ru_route = t.route;
    }

    /// `serialize_branches(clear)` (OpenSIPS core): the Request-URI and the branches are
    /// grouped by q (highest first); the first group stays for `t_relay()`, the others wait
    /// for `next_branches()` in a failure route (serial forking, RFC 3261 §16.6). 1 when there
    /// was something to order, -1 otherwise.
    fn serialize_branches(&mut self) -> i64 {
        if self.tm.branches.is_empty() {
            return -1;
        }
        let all: Vec<BranchTarget> = std::iter::once(self.main_target())
            .chain(self.tm.branches.drain(..))
            .collect();
        let (first, rest) = super::fork::serialize(all);
        let mut first = first.into_iter();
        if let Some(m) = first.next() {
            self.set_main(m);
        }
        self.tm.branches.extend(first);
        self.tm.serial = rest;
        1
    }

    /// `next_branches()` (OpenSIPS core): in a failure route, the next group of
    /// `serialize_branches()` becomes the Request-URI and branches; -1 when none is left.
    fn next_branches(&mut self) -> i64 {
        if self.tm.serial.is_empty() {
            return -1;
        }
        let mut group = self.tm.serial.remove(0).into_iter();
        let Some(m) = group.next() else {
            return -1;
        };
        self.set_main(m);
        self.tm.branches = group.collect();
        1
    }

    /// `mf_process_maxfwd_header(limit)`: -1 when Max-Forwards is 0 (the script answers 483)
    /// or malformed; otherwise 1, and a request without the header gets `limit` when
    /// forwarded. The decrement itself happens when the request is forwarded.
    fn mf_process(&mut self, args: &[Value<'_>]) -> i64 {
        let limit = args.first().and_then(Value::as_int).unwrap_or(70);
        let Ok(limit) = u8::try_from(limit) else {
            self.log(
                LogLevel::Err,
                &format!("mf_process_maxfwd_header: limit {limit} is not 0-255"),
            );
            return -1;
        };
        match self.msg.max_forwards() {
            Ok(Some(0)) => -1,
            Ok(Some(_)) => 1,
            Ok(None) => {
                self.proxy.default_max_forwards = limit;
                1
            }
            Err(e) => {
                crate::log!(Info, "core", "mf_process_maxfwd_header: {}", e; "peer" => peer(self.info));
                -1
            }
        }
    }
}

impl MsgEnv<'_> {
    /// `force_rport()`, `fix_nated_contact([uri_params])`, `nat_uac_test(flags)` (see
    /// [`super::nat`]): a rewrite replaces the message the later functions, the relay and the
    /// replies use. -1 (logged) when there is nothing to rewrite or no source address.
    fn nat(&mut self, f: FuncId, args: &[Value<'_>]) -> i64 {
        let Some(src) = self.info.src.to_std() else {
            return -1;
        };
        let rewritten = match f {
            FuncId::NAT_UAC_TEST => {
                let flags = args.first().and_then(Value::as_int).unwrap_or(0);
                let flags = u32::try_from(flags).unwrap_or(0);
                return if super::nat::nat_uac_test(&self.msg, src, flags) {
                    1
                } else {
                    -1
                };
            }
            FuncId::FORCE_RPORT => {
                if let Some(Ok(Some(r))) = self.received.as_deref().map(super::nat::force_rport) {
                    self.received = Some(Box::new(r));
                }
                super::nat::force_rport(&self.msg)
            }
            _ => {
                let params = args.first().and_then(Value::as_str).unwrap_or("");
                let fixed = super::nat::fix_nated_contact(&self.msg, src, params);
                if fixed.is_ok() && self.received.is_none() {
                    self.received = Some(Box::new((*self.msg).clone()));
                }
                fixed.map(Some)
            }
        };
        match rewritten {
            Ok(Some(m)) => {
                self.msg = Msg::Rewritten(Box::new(m));
                1
            }
            Ok(None) => 1,
            Err(e) => {
                let name = if f == FuncId::FORCE_RPORT {
                    "force_rport"
                } else {
                    "fix_nated_contact"
                };
                crate::log!(Info, "core", "{}(): {}", name, e; "peer" => peer(self.info));
                -1
            }
        }
    }
}

impl Env for MsgEnv<'_> {
    fn pv_get(&mut self, pv: &Pv) -> Value<'_> {
        let m: &Message = &self.msg;
        match pv {
            Pv::SrcIp => match self.info.src.to_std() {
                Some(a) => Value::str(self.si.get(a.ip())),
                None => Value::Null,
            },
            Pv::SrcPort => addr_port(self.info.src.to_std()),
            Pv::RecvIp => self.socket_field(SocketField::Ip),
            Pv::RecvPort => self.socket_field(SocketField::Port),
            Pv::Proto => Value::str(self.info.proto.name()),
            Pv::SocketIn(f) => self.socket_field(*f),
            Pv::Method => opt(m.method_str()),
            Pv::RUri => match &self.ru {
                Some(r) => Value::str(r),
                None => opt(m.ruri()),
            },
            Pv::RUser | Pv::RDomain | Pv::RPort => {
                // A rewritten Request-URI is parsed here; the message's own comes from its
                // cache (sanity_check() parsed it already).
                let uri = match self.ru.as_deref() {
                    Some(s) => crate::sip::Uri::parse(s).ok(),
                    None => m.request_uri().ok(),
                };
                match (pv, uri) {
                    (Pv::RUser, Some(u)) => opt(u.user()),
                    (Pv::RDomain, Some(u)) => Value::str(u.host()),
                    (Pv::RPort, Some(u)) => {
                        u.port().map_or(Value::Null, |p| Value::Int(i64::from(p)))
                    }
                    _ => Value::Null,
                }
            }
            Pv::DstUri => opt(self.du.as_deref()),
            Pv::CallId => opt(m.call_id()),
            Pv::Hdr(h) => opt(m.header(h.as_str())),
            Pv::FromUri => m.from().map_or(Value::Null, |f| Value::str(f.uri_str())),
            Pv::ToUri => m.to().map_or(Value::Null, |f| Value::str(f.uri_str())),
            Pv::FromUser => opt(m
                .from()
                .ok()
                .and_then(|f| f.uri().ok())
                .and_then(|u| u.user())),
            Pv::ToUser => opt(m
                .to()
                .ok()
                .and_then(|f| f.uri().ok())
                .and_then(|u| u.user())),
            Pv::FromDomain => m
                .from()
                .ok()
                .and_then(|f| f.uri().ok())
                .map_or(Value::Null, |u| Value::str(u.host())),
            Pv::ToDomain => m
                .to()
                .ok()
                .and_then(|f| f.uri().ok())
                .map_or(Value::Null, |u| Value::str(u.host())),
            Pv::FromTag => opt(m.from().ok().and_then(|f| f.tag())),
            Pv::ToTag => opt(m.to().ok().and_then(|f| f.tag())),
            Pv::Contact => opt(m.header("Contact")),
            Pv::CSeq => m
                .cseq()
                .map_or(Value::Null, |c| Value::Str(Cow::Owned(c.seq.to_string()))),
            Pv::UserAgent => opt(m.header("User-Agent")),
            Pv::ReplyStatus => m.status().map_or(Value::Null, |s| Value::Int(i64::from(s))),
            Pv::ReplyReason => opt(m.reason()),
            Pv::Body => Value::Str(String::from_utf8_lossy(m.body())),
            Pv::MsgLen => Value::Int(m.as_bytes().len() as i64),
            Pv::AuthUser | Pv::AuthRealm | Pv::AuthDomain | Pv::AuthUri => {
                use super::authz::Field;
                let field = match pv {
                    Pv::AuthUser => Field::User,
                    Pv::AuthRealm => Field::Realm,
                    Pv::AuthDomain => Field::Domain,
                    _ => Field::Uri,
                };
                super::authz::credential_field(m, &self.auth, field)
                    .map_or(Value::Null, |v| Value::Str(Cow::Owned(v)))
            }
            Pv::TReplyCode => match self.tm.failure {
                Some((_, code)) => Value::Int(i64::from(code)),
                None => m.status().map_or(Value::Null, |s| Value::Int(i64::from(s))),
            },
            Pv::TFrTimeout => secs(self.tm.opts.fr_timeout),
            Pv::TFrInvTimeout => secs(self.tm.opts.fr_inv_timeout),
            Pv::Var(_) | Pv::RetCode => Value::Null,
        }
    }

    fn pv_set(&mut self, pv: &Pv, v: Value<'_>) -> Result<(), String> {
        let text = match &v {
            Value::Null => None,
            other => {
                let mut s = String::new();
                other.write_to(&mut s);
                Some(s)
            }
        };
        match pv {
            Pv::DstUri => {
                // An explicit destination replaces the connection a lookup chose.
                self.proxy.dst = None;
                self.du = text;
            }
            Pv::RUri => self.ru = text,
            Pv::TFrTimeout | Pv::TFrInvTimeout => {
                let t = match text.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(t) => match t.parse::<u32>() {
                        Ok(n) if n > 0 => Some(std::time::Duration::from_secs(n.into())),
                        _ => return Err(format!("{pv}: {t:?} is not a number of seconds")),
                    },
                };
                if *pv == Pv::TFrTimeout {
                    self.tm.opts.fr_timeout = t;
                } else {
                    self.tm.opts.fr_inv_timeout = t;
                }
            }
            other => return Err(format!("{other:?} cannot be assigned here")),
        }
        Ok(())
    }

    fn call(&mut self, f: FuncId, args: &[Value<'_>]) -> i64 {
        self.outputs.clear();
        match f {
            FuncId::SL_SEND_REPLY | FuncId::T_REPLY => self.send_reply(args, f == FuncId::T_REPLY),
            // A CANCEL goes to the INVITE's transaction, which cancels each of its branches
            // (RFC 3261 §16.10), and an ACK is relayed statelessly to the Request-URI, as
            // OpenSIPS's tm does: neither forks over the branches `lookup()` appended.
            FuncId::T_RELAY
                if (!self.tm.branches.is_empty()
                    || !self.tm.serial.is_empty()
                    || self.tm.failure.is_some()
                    || self.tm.opts.on_branch.is_some())
                    && !matches!(self.msg.method_str(), Some("ACK" | "CANCEL")) =>
            {
                self.relay_branches()
            }
            FuncId::T_ON_FAILURE | FuncId::T_ON_REPLY | FuncId::T_ON_BRANCH => {
                let route = args
                    .first()
                    .and_then(Value::as_int)
                    .and_then(|i| u16::try_from(i).ok())
                    .and_then(|i| self.core.script.route_from_index(i));
                let slot = match f {
                    FuncId::T_ON_FAILURE => &mut self.tm.opts.failure,
                    FuncId::T_ON_REPLY => &mut self.tm.opts.on_reply,
                    _ => &mut self.tm.opts.on_branch,
                };
                *slot = route;
                if route.is_some() {
                    1
                } else {
                    -1
                }
            }
            FuncId::T_CHECK_STATUS => {
                let code = match self.tm.failure {
                    Some((_, c)) => Some(c),
                    None => self.msg.status(),
                };
                let re = args.first().and_then(Value::as_str).unwrap_or("");
                match code {
                    Some(c) if status_matches(re, c) => 1,
                    _ => -1,
                }
            }
            FuncId::SERIALIZE_BRANCHES => self.serialize_branches(),
            FuncId::ADD_PATH | FuncId::ADD_PATH_RECEIVED => {
                if self.msg.method_str() != Some("REGISTER") {
                    self.log(LogLevel::Err, "add_path: not a REGISTER");
                    return -1;
                }
                self.proxy.path = Some(f == FuncId::ADD_PATH_RECEIVED);
                1
            }
            FuncId::NEXT_BRANCHES => self.next_branches(),
            FuncId::T_NEWTRAN => match super::stateful::newtran(self.core, self.info, &self.msg) {
                Ok(()) => 1,
                Err(e) => {
                    crate::log!(Warning, "tm", "t_newtran failed: {}", e; "peer" => peer(self.info));
                    -1
                }
            },
            FuncId::APPEND_BRANCH => {
                if self.tm.branches.len() + 1 >= crate::tm::MAX_BRANCHES {
                    self.log(LogLevel::Err, "append_branch: too many branches");
                    return -1;
                }
                let uri = args
                    .first()
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty());
                let target = match uri {
                    Some(u) => BranchTarget {
                        ru: u.to_string(),
                        du: None,
                        dst: None,
                        q: None,
                        route: None,
                        st: ProxyState::default(),
                    },
                    None => self.main_target(),
                };
                self.tm.branches.push(target);
                1
            }
            FuncId::FORWARD | FuncId::T_RELAY => {
                let explicit = args
                    .first()
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty());
                // The binding's Path as the Route set (RFC 3327 §5.3).
                let with_route;
                let st = match &self.tm.ru_route {
                    Some(r) if explicit.is_none() => {
                        let mut st = self.proxy.clone();
                        st.add_headers.push(("Route".to_string(), r.clone()));
                        with_route = st;
                        &with_route
                    }
                    _ => &self.proxy,
                };
                let (r, replied) = super::relay::forward(
                    self.core,
                    self.info,
                    &self.msg,
                    super::relay::Dest {
                        explicit,
                        du: self.du.as_deref(),
                        ru: self.ru.as_deref(),
                    },
                    st,
                    f == FuncId::T_RELAY,
                    &self.tm.opts,
                );
                self.replied |= replied;
                r
            }
            FuncId::SAVE => {
                let table = args.first().and_then(Value::as_str).unwrap_or("location");
                let flags = args.get(1).and_then(Value::as_str).unwrap_or("");
                let m = self.received.as_deref().unwrap_or(&self.msg);
                let (r, replied) = super::location::save(self.core, self.info, m, table, flags);
                self.replied |= replied;
                r
            }
            FuncId::LOOKUP => {
                let table = args.first().and_then(Value::as_str).unwrap_or("location");
                let ruri = self.ru.as_deref().or(self.msg.ruri());
                let found =
                    super::location::lookup(table, ruri, self.info, crate::tm::MAX_BRANCHES);
                let mut found = found.into_iter();
                let Some(first) = found.next() else {
                    return -1;
                };
                self.ru = Some(first.ruri);
                self.du = first.du;
                self.proxy.dst = first.dst;
                self.tm.ru_q = first.q;
                self.tm.ru_route = first.path;
                // The other contacts are parallel branches of t_relay() (OpenSIPS's lookup()
                // without its 'b' flag); forward() relays to the first only.
                self.tm.branches.clear();
                self.tm.branches.extend(found.map(|f| BranchTarget {
                    ru: f.ruri,
                    du: f.du,
                    dst: f.dst,
                    q: f.q,
                    route: f.path,
                    st: ProxyState::default(),
                }));
                1
            }
            FuncId::RECORD_ROUTE => {
                self.proxy.record_route = true;
                1
            }
            FuncId::LOOSE_ROUTE => {
                let lr = proxy::loose_route(self.core, self.info, &self.msg, &mut self.proxy);
                if lr.du.is_some() {
                    self.du = lr.du;
                }
                lr.ret
            }
            FuncId::HAS_TOTAG => proxy::has_totag(&self.msg),
            FuncId::IS_PRESENT_HF => proxy::is_present_hf(
                &self.msg,
                args.first().and_then(Value::as_str).unwrap_or(""),
            ),
            FuncId::REMOVE_HF => {
                let name = args.first().and_then(Value::as_str).unwrap_or("");
                let n = self.msg.headers(name).count();
                if n == 0 {
                    return -1;
                }
                self.proxy.remove_headers.push(name.to_string());
                n as i64
            }
            FuncId::APPEND_HF => {
                let text = args.first().and_then(Value::as_str).unwrap_or("");
                match proxy::parse_header_lines(text) {
                    Ok(h) => {
                        self.proxy.add_headers.extend(h);
                        1
                    }
                    Err(e) => {
                        self.log(LogLevel::Err, &format!("append_hf: {e}"));
                        -1
                    }
                }
            }
            FuncId::MF_PROCESS_MAXFWD => self.mf_process(args),
            FuncId::WWW_CHALLENGE | FuncId::PROXY_CHALLENGE => {
                let arg = |i: usize| args.get(i).and_then(Value::as_str);
                let (r, sent) = super::authz::challenge(
                    self.core,
                    self.info,
                    &self.msg,
                    &self.auth,
                    f == FuncId::PROXY_CHALLENGE,
                    (arg(0), arg(1), arg(2)),
                );
                self.replied |= sent;
                r
            }
            FuncId::WWW_AUTHORIZE | FuncId::PROXY_AUTHORIZE => super::authz::authorize(
                self.info,
                &self.msg,
                &mut self.auth,
                f == FuncId::PROXY_AUTHORIZE,
                args.first().and_then(Value::as_str),
            ),
            FuncId::CHECK_FROM | FuncId::CHECK_TO => {
                super::authz::check_identity(&self.msg, &self.auth, f == FuncId::CHECK_TO)
            }
            FuncId::CONSUME_CREDENTIALS => {
                match self.auth.authorized.as_ref().and_then(|a| a.header) {
                    Some(header) => {
                        self.proxy.remove_headers.push(header.to_string());
                        1
                    }
                    None => -1,
                }
            }
            FuncId::SANITY_CHECK | FuncId::SIPMSG_VALIDATE => {
                self.sanity(f == FuncId::SANITY_CHECK)
            }
            FuncId::T_CHECK_TRANS => {
                if super::stateful::check_trans(self.info, &self.msg) {
                    1
                } else {
                    -1
                }
            }
            FuncId::FORCE_RPORT | FuncId::FIX_NATED_CONTACT | FuncId::NAT_UAC_TEST => {
                self.nat(f, args)
            }
            FuncId::PIKE_CHECK_REQ => {
                super::pike::check_req(self.info.src.to_std().map(|a| a.ip()))
            }
            FuncId::JWT_SCRIPT_AUTHORIZE => {
                let arg = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
                let out = super::authz_jwt::script_authorize(
                    self.info,
                    &self.msg,
                    &mut self.auth,
                    arg(0),
                    arg(1),
                );
                self.outputs.extend(out.decoded.map(|d| (2, d)));
                self.outputs.extend(out.user.map(|u| (3, u)));
                out.code
            }
            other => {
                self.log(
                    LogLevel::Err,
                    &format!("function #{} is not implemented by the core", other.0),
                );
                -1
            }
        }
    }

    fn take_output(&mut self, index: usize) -> Option<String> {
        let at = self.outputs.iter().position(|(i, _)| *i == index)?;
        Some(self.outputs.swap_remove(at).1)
    }

    fn log(&mut self, level: LogLevel, text: &str) {
        let lvl = script_level(level);
        if crate::log::enabled_at(lvl) {
            crate::log::record_at(lvl, "script", text, &[]);
        }
    }

    fn log_enabled(&self, level: LogLevel) -> bool {
        crate::log::enabled_at(script_level(level))
    }

    fn is_myself(&mut self, v: &Value<'_>) -> bool {
        is_myself(&self.core.sockets, v)
    }
}

/// `t_check_status(re)`: whether `code` matches `re` anywhere, as OpenSIPS's `regexec` on the
/// code's text (checked at compile time; compiled once per thread and pattern).
fn status_matches(re: &str, code: u16) -> bool {
    thread_local! {
        static CACHE: RefCell<Vec<(String, regex::Regex)>> = const { RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let at = match c.iter().position(|(p, _)| p == re) {
            Some(i) => i,
            None => match crate::script::build_regex(re) {
                Ok(r) => {
                    if c.len() >= 64 {
                        c.remove(0);
                    }
                    c.push((re.to_string(), r));
                    c.len() - 1
                }
                Err(_) => return false,
            },
        };
        c[at].1.is_match(&code.to_string())
    })
}

/// Script log levels (`L_*`) to the log's severities (the same OpenSIPS numbers).
pub(crate) fn script_level(level: LogLevel) -> crate::log::Severity {
    crate::log::Severity::from_opensips(level.opensips_value())
}

#[cfg(test)]
mod ip_text {
    use super::IpText;

    /// `$si` as written in place: the same text as `IpAddr`'s Display, the longest included.
    #[test]
    fn formats_like_display_once() {
        for ip in [
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.0.2.7",
        ] {
            let a: std::net::IpAddr = ip.parse().unwrap();
            let mut t = IpText::default();
            assert_eq!(t.get(a), a.to_string());
            // Formatted once: a later call returns the same text.
            assert_eq!(t.get("10.0.0.1".parse().unwrap()), a.to_string());
        }
        // Every octet value in every position, against Display.
        for o in 0..=255u8 {
            for a in [[o, 0, 9, 10], [99, o, 100, 1], [0, 255, o, 7], [1, 2, 3, o]] {
                let ip = std::net::IpAddr::from(a);
                assert_eq!(IpText::default().get(ip), ip.to_string());
            }
        }
    }
}
