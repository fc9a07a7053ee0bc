//! The SIP core: what happens to a message a transport delivers.
//!
//! `HostApi::deliver` runs on the transport's I/O thread: parse (lazily), run the main route with
//! an [`env::MsgEnv`], send what the script asks for through the transport's `send`, which only
//! queues. Requests that are not SIP are logged with the peer and dropped; nothing a message does
//! can unwind into the plugin.
mod env;
pub mod hostapi;
mod location;
mod proxy;
mod relay;

use crate::script::Script;
use crate::sip::Message;
use abi_stable::std_types::{RResult, RSlice};
use bytes::Bytes;
use sipcore_abi::{catch_panic, Proto, ReceiveInfo, SendTarget, TransportRef};
use std::net::SocketAddr;
use std::sync::OnceLock;

/// One listening socket, as created from the config.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Index in the socket list (`ListenerSpec::id`).
    pub id: u32,
    /// Protocol.
    pub proto: Proto,
    /// Bound address.
    pub addr: SocketAddr,
    /// `as host[:port]`, when given.
    pub advertised: Option<String>,
    /// `tag NAME`, when given.
    pub tag: Option<String>,
}

impl SocketInfo {
    /// Host and port others should address this socket by: its advertised `as host[:port]`
    /// (the bound port when it gives none), or the bound address.
    pub(crate) fn public_host_port(&self) -> (String, u16) {
        if let Some(adv) = &self.advertised {
            return match adv.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || adv.starts_with('[') => match p.parse() {
                    Ok(p) => (h.to_string(), p),
                    Err(_) => (adv.clone(), self.addr.port()),
                },
                _ => (adv.clone(), self.addr.port()),
            };
        }
        (self.addr.ip().to_string(), self.addr.port())
    }

    /// `ws:127.0.0.1:8080 as 1.2.3.4:80`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}:{}", self.proto.name(), self.addr);
        if let Some(a) = &self.advertised {
            s.push_str(" as ");
            s.push_str(a);
        }
        s
    }
}

/// Everything the message path needs, built once at startup.
pub struct Core {
    script: &'static Script,
    transports: Vec<(Proto, TransportRef)>,
    sockets: Vec<SocketInfo>,
}

static CORE: OnceLock<Core> = OnceLock::new();
static SCRIPT: OnceLock<Script> = OnceLock::new();

/// Publish the compiled script (before modules are initialised: they may resolve routes).
pub fn set_script(script: Script) -> &'static Script {
    SCRIPT.get_or_init(|| script)
}

/// The compiled script, once published.
pub fn script() -> Option<&'static Script> {
    SCRIPT.get()
}

impl Core {
    /// Assemble the core (after [`set_script`]).
    pub fn new(transports: Vec<(Proto, TransportRef)>, sockets: Vec<SocketInfo>) -> Option<Core> {
        Some(Core {
            script: script()?,
            transports,
            sockets,
        })
    }

    fn transport(&self, proto: Proto) -> Option<TransportRef> {
        self.transports
            .iter()
            .find(|(p, _)| *p == proto)
            .map(|(_, t)| *t)
    }

    /// Hand `data` to the transport of `target.proto`.
    fn send(&self, target: &SendTarget, data: &[u8]) -> Result<u64, String> {
        let t = self
            .transport(target.proto)
            .ok_or_else(|| format!("no loaded module serves {}", target.proto.name()))?;
        match (t.send())(target, RSlice::from_slice(data)) {
            RResult::ROk(id) => Ok(id),
            RResult::RErr(e) => Err(e.as_str().to_string()),
        }
    }

    /// Send `data` back over the connection `info` describes (replies, RFC 3261 §18.2.2: over
    /// the same connection the request arrived on).
    fn send_back(&self, info: &ReceiveInfo, data: &[u8]) -> Result<u64, String> {
        self.send(
            &SendTarget {
                proto: info.proto,
                conn_id: info.conn_id,
                dst: info.src,
                listener: info.listener,
            },
            data,
        )
    }

    /// Answer the request `msg` statelessly with `code reason` and `headers` (RFC 3261
    /// §8.2.6, §16.7: a To tag from [`stateless_to_tag`] above 100). An ACK is never answered
    /// (§17): `Ok(false)`. `Ok(true)` when sent.
    fn reply(
        &self,
        info: &ReceiveInfo,
        msg: &Message,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
    ) -> Result<bool, String> {
        if msg.method_str() == Some("ACK") {
            return Ok(false);
        }
        let tag = if code > 100 {
            crate::sip::stateless_to_tag(msg)
        } else {
            String::new()
        };
        let r = crate::sip::build_reply(msg, code, reason, &tag, headers, None);
        self.send_back(info, &r).map(|_| true)
    }
}

/// Make the core available to `deliver` (before any transport starts), and start the
/// location service's expiry timer.
pub fn install(core: Core) {
    if CORE.set(core).is_err() {
        crate::log!(Error, "core", "core installed twice; keeping the first");
        return;
    }
    location::start_timer();
}

/// The core's own MI commands: `ul_dump` and `ul_show_contact` (the location tables, as
/// OpenSIPS's usrloc).
pub fn register_mi(registry: &crate::mi::Registry) -> Result<(), String> {
    location::register_mi(registry).map_err(|e| format!("management interface: {e}"))
}

/// Apply the `registrar` and `usrloc` modparams (before the first message).
pub fn configure_location(reg: crate::usrloc::RegistrarConfig, ul: crate::usrloc::UsrlocConfig) {
    location::configure(reg, ul);
}

pub(crate) fn peer(info: &ReceiveInfo) -> String {
    info.src
        .to_std()
        .map_or_else(|| "unknown".into(), |a| a.to_string())
}

/// A transport reports a connection gone (`HostApi::conn_closed`).
pub(crate) fn connection_closed(proto: Proto, conn_id: u64) {
    location::connection_closed(proto, conn_id);
    crate::log!(
        Trace,
        "core",
        "connection {} ({}) closed",
        conn_id,
        proto.name()
    );
}

/// `HostApi::deliver`.
pub extern "C" fn host_deliver(info: &ReceiveInfo, msg: RSlice<'_, u8>) {
    if let Err(p) = catch_panic(|| handle(info, msg.as_slice())) {
        crate::log!(Critical, "core", "panic while handling a message: {}", p; "peer" => peer(info));
    }
}

fn handle(info: &ReceiveInfo, bytes: &[u8]) {
    let Some(core) = CORE.get() else {
        return;
    };
    if crate::sip::is_keepalive(bytes) {
        return;
    }
    let msg = match Message::parse(Bytes::copy_from_slice(bytes)) {
        Ok(m) => m,
        Err(e) => {
            // RFC 4475 §3.1.2: a malformed request is answered 400 (505 for the version)
            // when its transaction headers can be found; anything else is dropped.
            let answer =
                crate::sip::reply_to_malformed(bytes, e.reply_code(), bad_reason(e.reply_code()));
            match &answer {
                Some(_) => {
                    crate::log!(Warning, "core", "malformed SIP request answered {}: {}", e.reply_code(), e;
                    "peer" => peer(info), "proto" => info.proto.name(), "len" => bytes.len())
                }
                None => crate::log!(Warning, "core", "message is not SIP, dropped: {}", e;
                    "peer" => peer(info), "proto" => info.proto.name(), "len" => bytes.len()),
            }
            if let Some(a) = answer {
                let _ = core.send_back(info, &a);
            }
            return;
        }
    };
    if !msg.is_request() {
        relay::relay_reply(core, info, &msg);
        return;
    }
    env::run_request(core, info, &msg);
}

/// The reason phrase for the status a malformed request gets (RFC 4475 §3.1.2).
fn bad_reason(code: u16) -> &'static str {
    match code {
        505 => "Version Not Supported",
        _ => "Bad Request",
    }
}
