//! Trace events of a traced connection, and several workers sharing a listener.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::driver::TraceEvent;

/// Traces every connection, recording events as short strings.
#[derive(Default)]
struct Tracer {
    events: Mutex<Vec<String>>,
    closed: Mutex<Vec<u64>>,
    reasons: Mutex<Vec<String>>,
}

impl Sink for Tracer {
    fn deliver(&self, _: &ReceiveInfo, _: &[u8], _: bool) {}
    fn log(&self, _: LogLevel, _: &str, _: &[(&str, &str)]) {}
    fn opened(&self, _c: &ConnMeta) -> bool {
        true
    }
    fn trace(&self, c: &ConnMeta, ev: TraceEvent<'_>) {
        let s = match ev {
            TraceEvent::Opened => "opened".to_string(),
            TraceEvent::HandshakeRequest(b) => {
                format!("request {}", String::from_utf8_lossy(&b[..14]))
            }
            TraceEvent::HandshakeReply(b) => format!("reply {}", String::from_utf8_lossy(&b[..12])),
            TraceEvent::HandshakeFailed { status, .. } => format!("failed {status}"),
            TraceEvent::Message {
                inbound, payload, ..
            } => {
                format!("msg {inbound} {}", String::from_utf8_lossy(payload))
            }
            TraceEvent::ProtocolError { close_code, .. } => format!("error {close_code}"),
            TraceEvent::Closed { code, reason } => {
                self.reasons.lock().unwrap().push(reason.to_string());
                format!("closed {code:?}")
            }
        };
        self.events.lock().unwrap().push(format!("{}:{s}", c.id));
    }
    fn closed(&self, c: &ConnMeta, _: &str) {
        self.closed.lock().unwrap().push(c.id);
    }
}

fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not reached in 5 s");
}

#[test]
fn traced_connection_reports_its_whole_life() {
    let sink = Arc::new(Tracer::default());
    let rt = Runtime::new(cfg(), sink.clone());
    rt.add_listener(1, "127.0.0.1:0".parse().unwrap()).unwrap();
    rt.start().unwrap();
    let addr = rt.local_addrs()[0].1;
    let mut s = ws(addr);
    s.write_all(&frame(0x81, b"REGISTER")).unwrap();
    wait_for(|| sink.events.lock().unwrap().len() >= 4);
    let id = rt.connections()[0].id;
    assert!(rt.connections()[0].traced);
    rt.send_frame(id, true, b"200 OK").unwrap();
    assert_eq!(read_frame(&mut s), Some((0x81, b"200 OK".to_vec())));
    s.write_all(&frame(0x81, &[0xC0])).unwrap();
    let (b0, _) = read_frame(&mut s).unwrap();
    assert_eq!(b0, 0x88);
    assert!(at_eof(&mut s));
    drop(s);
    wait_for(|| sink.closed.lock().unwrap().contains(&id));
    let want: Vec<String> = [
        "opened",
        "request GET /ws HTTP/1",
        "reply HTTP/1.1 101",
        "msg true REGISTER",
        "msg false 200 OK",
        "error 1007",
        "closed Some(1007)",
    ]
    .iter()
    .map(|e| format!("{id}:{e}"))
    .collect();
    assert_eq!(*sink.events.lock().unwrap(), want);
    rt.stop();
}

#[test]
fn two_workers_share_a_listener_and_route_by_id() {
    let srv = Server::start(
        WsConfig {
            workers: 2,
            ..cfg()
        },
        Echo::No,
    );
    let mut conns: Vec<_> = (0..24).map(|_| ws(srv.addr)).collect();
    let mut workers = std::collections::HashSet::new();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(&frame(0x81, format!("hello {i}").as_bytes()))
            .unwrap();
        let (info, p, _) = srv.next_msg();
        assert_eq!(p, format!("hello {i}").as_bytes());
        workers.insert(info.conn_id & 0xFF);
        srv.rt
            .send(&target(info.conn_id), format!("reply {i}").as_bytes())
            .unwrap();
        assert_eq!(
            read_frame(s),
            Some((0x81, format!("reply {i}").into_bytes()))
        );
    }
    assert_eq!(
        workers.len(),
        2,
        "SO_REUSEPORT should spread 24 connections over both workers"
    );
}

/// A normal Close from the client is reported as such, not as whatever ended the TCP
/// connection afterwards (a reset when the client dropped it with our Close unread).
#[test]
fn close_by_peer_is_reported_with_its_code() {
    let sink = Arc::new(Tracer::default());
    let rt = Runtime::new(cfg(), sink.clone());
    rt.add_listener(1, "127.0.0.1:0".parse().unwrap()).unwrap();
    rt.start().unwrap();
    let addr = rt.local_addrs()[0].1;
    for read_echo in [true, false] {
        let mut s = ws(addr);
        s.write_all(&frame(0x81, b"REGISTER")).unwrap();
        wait_for(|| rt.connections().iter().any(|c| c.state == "open"));
        let id = rt.connections()[0].id;
        s.write_all(&frame(0x88, &[0x03, 0xE8])).unwrap();
        if read_echo {
            assert_eq!(read_frame(&mut s), Some((0x88, vec![0x03, 0xE8])));
        } else {
            // Drop the socket with our echo unread: the server sees a reset.
            wait_for(|| rt.connections().iter().all(|c| c.state == "closing"));
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(s);
        wait_for(|| sink.closed.lock().unwrap().contains(&id));
        let ev = sink.events.lock().unwrap();
        assert_eq!(ev.last().unwrap(), &format!("{id}:closed Some(1000)"));
        assert_eq!(
            sink.reasons.lock().unwrap().last().unwrap(),
            "closed by peer",
            "read_echo={read_echo}"
        );
    }
    rt.stop();
}

/// Item 16 of issue 10: the first message on a new outbound connection, queued before the
/// connection is connected (and so before it is known to be traced), is traced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_message_on_a_new_outbound_connection_is_traced() {
    let sink = Arc::new(Tracer::default());
    let rt = Runtime::new(cfg(), sink.clone());
    rt.start().unwrap();
    let (addr, _hdrs) = super::outbound::tungstenite_server().await;
    let id = rt.send(&super::outbound::to(addr), b"OPTIONS 1").unwrap();
    assert_eq!(
        rt.send(&super::outbound::to(addr), b"OPTIONS 2").unwrap(),
        id
    );
    let msgs = |sink: &Tracer| -> Vec<String> {
        sink.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.contains(":msg false "))
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while msgs(&sink).len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        msgs(&sink),
        vec![
            format!("{id}:msg false OPTIONS 1"),
            format!("{id}:msg false OPTIONS 2")
        ]
    );
    // The connection's events come first, in order.
    let ev = sink.events.lock().unwrap().clone();
    assert!(ev[0].ends_with(":opened"), "{ev:?}");
    assert!(ev[1].contains(":request GET / HTTP/1.1"), "{ev:?}");
    rt.stop();
}
