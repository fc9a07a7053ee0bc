//! Helpers shared by the transaction tests: messages and a compact rendering of actions.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Action, Actions};
use crate::sip::Message;

pub(super) fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

/// The response `m` as the TU hands it to a server transaction.
pub(super) fn out(m: Message) -> super::Outgoing {
    super::Outgoing::of(&m).expect("a response")
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A request as a proxy sends it (its own Via on top) or a UAC sends it.
pub(super) fn request(method: &str, branch: &str) -> Message {
    msg(&format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
         CSeq: 314159 {cseq}\r\n\
         Content-Length: 0\r\n\r\n",
        cseq = if method == "ACK" { "ACK" } else { method },
    ))
}

pub(super) fn invite() -> Message {
    request("INVITE", "z9hG4bK776asdhds")
}

/// The ACK of a non-2xx response to [`invite`] (same branch, To tag of the response).
pub(super) fn ack(to_tag: &str) -> Message {
    msg(&format!(
        "ACK sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>;tag={to_tag}\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
         CSeq: 314159 ACK\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// A response to a request made by [`request`].
pub(super) fn response(code: u16, method: &str, branch: &str) -> Message {
    let tag = if code > 100 { ";tag=a6c85cf" } else { "" };
    msg(&format!(
        "SIP/2.0 {code} Reason\r\n\
         Via: SIP/2.0/UDP pc33.atlanta.example.com;branch={branch}\r\n\
         To: Bob <sip:bob@biloxi.example.com>{tag}\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
         CSeq: 314159 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

pub(super) fn inv_resp(code: u16) -> Message {
    response(code, "INVITE", "z9hG4bK776asdhds")
}

/// Actions as short strings: `send ACK`, `send 100` (first word of the start line after
/// `SIP/2.0` for a response), `up 180`, `arm A 500` (ms after `t0`), `disarm B`, `timeout`,
/// `transport`, `end`.
pub(super) fn show(acts: &Actions, t0: Instant) -> Vec<String> {
    acts.iter()
        .map(|a| match a {
            Action::Send(b) => {
                let line = std::str::from_utf8(b).unwrap().lines().next().unwrap();
                let mut w = line.split(' ');
                let first = w.next().unwrap();
                if first == "SIP/2.0" {
                    format!("send {}", w.next().unwrap())
                } else {
                    format!("send {first}")
                }
            }
            Action::PassUp(m) => match m.status() {
                Some(c) => format!("up {c}"),
                None => format!("up {}", m.method_str().unwrap()),
            },
            Action::Arm(t, at) => format!("arm {t:?} {}", (*at - t0).as_millis()),
            Action::Disarm(t) => format!("disarm {t:?}"),
            Action::Timeout => "timeout".into(),
            Action::TransportError => "transport".into(),
            Action::Terminated => "end".into(),
        })
        .collect()
}
