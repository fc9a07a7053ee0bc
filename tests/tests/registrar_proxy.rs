//! Issue 5, end to end over raw WebSocket clients (tokio-tungstenite) on the bundled default
//! config: contacts are bound to their connection and vanish when it closes (404 at once,
//! `ul_dump` shows it), a dialog's flow token routes in-dialog requests and answers 430 once
//! a side's connection is gone, an altered token gets 403, and a request that loops back to
//! the proxy gets 482.
mod common;
use common::digest::{add_users, ask_authorized, send_authorized};
use common::ws::{connect_sip as connect, next_text as recv, Ws};
use common::ws::{send_text as send, status};
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A user: its WebSocket and `.invalid` contact, as browsers do (RFC 7118 §5).
struct Ua {
    ws: Ws,
    user: &'static str,
    contact: String,
}

impl Ua {
    async fn register(url: &str, user: &'static str) -> Ua {
        let mut ws = connect(url).await;
        let contact = format!("sip:{user}x@{user}.invalid;transport=ws");
        let r = ask_authorized(
            &mut ws,
            format!(
                "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {user}.invalid;branch=z9hG4bKr{user}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t{user}\r\nTo: <sip:{user}@example.com>\r\n\
                 Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>;expires=600\r\nContent-Length: 0\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status(&r), 200, "{r}");
        assert!(
            r.contains(&format!("Contact: <{contact}>;expires=600")),
            "{r}"
        );
        Ua { ws, user, contact }
    }

    fn request(
        &self,
        method: &str,
        ruri: &str,
        to: &str,
        call: &str,
        cseq: u32,
        extra: &str,
    ) -> String {
        format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/WS {u}.invalid;branch=z9hG4bK{call}{cseq}{method}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{u}@example.com>;tag=f{u}\r\nTo: {to}\r\nCall-ID: {call}\r\n\
             CSeq: {cseq} {method}\r\nContact: <{c}>\r\n{extra}Content-Length: 0\r\n\r\n",
            u = self.user,
            c = self.contact
        )
    }
}

/// The reply a UA sends to `req`: Vias, From, Call-ID, CSeq and Record-Route copied, To tagged.
fn answer(req: &str, code: u16, contact: &str) -> String {
    let mut out = format!("SIP/2.0 {code} OK\r\n");
    for v in headers(req, "Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in headers(req, "Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{h}: {}\r\n", header(req, h).unwrap()));
    }
    out.push_str(&format!(
        "To: {};tag=callee\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n",
        header(req, "To").unwrap()
    ));
    out
}

async fn ul_dump(cfg: &std::path::Path) -> serde_json::Value {
    let cfg = cfg.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(sipcore_bin())
            .args(["mi", "-f"])
            .arg(&cfg)
            .arg("ul_dump")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn contacts_of(dump: &serde_json::Value, aor: &str) -> usize {
    dump["Domains"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["AORs"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["AOR"] == aor)
        .map(|a| a["Contacts"].as_array().map_or(0, Vec::len))
        .sum()
}

#[tokio::test]
async fn a_closed_connection_takes_its_contacts_with_it() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let bob = Ua::register(&url, "bob").await;
    let d = ul_dump(&srv.cfg_path).await;
    assert_eq!(contacts_of(&d, "bob@example.com"), 1, "{d}");
    let c = &d["Domains"][0]["AORs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["AOR"] == "bob@example.com")
        .unwrap()["Contacts"][0];
    assert_eq!(c["Contact"], "sip:bobx@bob.invalid;transport=ws", "{d}");
    assert!(
        c["Received"].as_str().unwrap().starts_with("ws:127.0.0.1:"),
        "{d}"
    );

    // MESSAGE to bob reaches bob's connection, not the .invalid host.
    let mut bob = bob;
    let m = alice.request(
        "MESSAGE",
        "sip:bob@example.com",
        "<sip:bob@example.com>",
        "m1",
        1,
        "",
    );
    send_authorized(&mut alice.ws, m).await;
    let got = recv(&mut bob.ws).await;
    assert!(
        got.starts_with("MESSAGE sip:bobx@bob.invalid;transport=ws SIP/2.0\r\n"),
        "{got}"
    );
    send(&mut bob.ws, answer(&got, 200, &bob.contact)).await;
    assert_eq!(status(&recv(&mut alice.ws).await), 200);

    // Bob's browser tab closes: his contact goes at once, and callers get 404 at once.
    drop(bob);
    let deadline = Instant::now() + Duration::from_secs(5);
    while contacts_of(&ul_dump(&srv.cfg_path).await, "bob@example.com") != 0 {
        assert!(
            Instant::now() < deadline,
            "bob's contact outlived his connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = alice.request(
        "MESSAGE",
        "sip:bob@example.com",
        "<sip:bob@example.com>",
        "m2",
        1,
        "",
    );
    let t0 = Instant::now();
    let r = ask_authorized(&mut alice.ws, m).await;
    assert_eq!(status(&r), 404, "{r}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(
        contacts_of(&ul_dump(&srv.cfg_path).await, "alice@example.com"),
        1
    );
}

#[tokio::test]
async fn flow_tokens_route_the_dialog_and_report_a_lost_flow() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "bob"]);
    let url = srv.ws_url();
    let mut alice = Ua::register(&url, "alice").await;
    let mut bob = Ua::register(&url, "bob").await;

    let inv = alice.request(
        "INVITE",
        "sip:bob@example.com",
        "<sip:bob@example.com>",
        "d1",
        1,
        "",
    );
    // Sent twice: the 407 challenge, then with credentials as CSeq 2.
    send_authorized(&mut alice.ws, inv).await;
    let got = recv(&mut bob.ws).await;
    assert!(got.starts_with("INVITE sip:bobx@bob.invalid"), "{got}");
    let rr = header(&got, "Record-Route")
        .expect("record_route() added one")
        .to_string();
    assert!(
        rr.contains(&format!("@127.0.0.1:{};transport=ws;lr>", srv.port)),
        "{rr}"
    );
    send(&mut bob.ws, answer(&got, 200, &bob.contact)).await;
    let ok = recv(&mut alice.ws).await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "Record-Route"), Some(rr.as_str()));
    // Only the UA's own Via is left on the reply it receives.
    assert_eq!(headers(&ok, "Via").len(), 1, "{ok}");

    // In-dialog, both directions, routed by the token alone (the R-URIs are .invalid).
    let route = format!("Route: {rr}\r\n");
    let to_bob = "<sip:bob@example.com>;tag=callee";
    let m = alice.request("ACK", &bob.contact, to_bob, "d1", 2, &route);
    send(&mut alice.ws, m).await;
    assert!(recv(&mut bob.ws)
        .await
        .starts_with("ACK sip:bobx@bob.invalid"));
    let m = alice.request("INFO", &bob.contact, to_bob, "d1", 3, &route);
    send(&mut alice.ws, m).await;
    let info = recv(&mut bob.ws).await;
    assert!(info.starts_with("INFO sip:bobx@bob.invalid"), "{info}");
    assert!(
        header(&info, "Route").is_none(),
        "our Route is removed: {info}"
    );
    send(&mut bob.ws, answer(&info, 200, &bob.contact)).await;
    assert_eq!(status(&recv(&mut alice.ws).await), 200);
    let to_alice = "<sip:alice@example.com>;tag=falice";
    let m = bob.request("INFO", &alice.contact, to_alice, "d1", 1, &route);
    send(&mut bob.ws, m).await;
    let back = recv(&mut alice.ws).await;
    assert!(back.starts_with("INFO sip:alicex@alice.invalid"), "{back}");

    // An altered token is refused (RFC 5626 §5.3: 403), and reaches nobody.
    let forged = rr.replacen("<sip:", "<sip:1", 1);
    let m = alice.request(
        "INFO",
        &bob.contact,
        to_bob,
        "d1",
        4,
        &format!("Route: {forged}\r\n"),
    );
    send(&mut alice.ws, m).await;
    let r = recv(&mut alice.ws).await;
    assert_eq!(status(&r), 403, "{r}");
    // A marker sent after it with the genuine token is the next thing bob gets: had the forged
    // request been relayed, it would have come first (same connections, in order).
    let m = alice.request("INFO", &bob.contact, to_bob, "d1", 5, &route);
    send(&mut alice.ws, m).await;
    let next = recv(&mut bob.ws).await;
    assert!(
        next.starts_with("INFO ") && header(&next, "CSeq") == Some("5 INFO"),
        "a forged token reached bob: {next}"
    );
    send(&mut bob.ws, answer(&next, 200, &bob.contact)).await;
    assert_eq!(status(&recv(&mut alice.ws).await), 200);

    // Bob's connection drops mid-dialog: alice's BYE gets 430 Flow Failed at once. The server
    // has seen the close when bob's contact is gone (it goes with the connection).
    drop(bob);
    let deadline = Instant::now() + Duration::from_secs(5);
    while contacts_of(&ul_dump(&srv.cfg_path).await, "bob@example.com") != 0 {
        assert!(
            Instant::now() < deadline,
            "bob's contact outlived his connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = alice.request(
        "BYE",
        "sip:bobx@bob.invalid;transport=ws",
        to_bob,
        "d1",
        6,
        &route,
    );
    send(&mut alice.ws, m).await;
    let r = recv(&mut alice.ws).await;
    assert_eq!(status(&r), 430, "{r}");
    srv.wait_log(": 430 Flow Failed", Duration::from_secs(5));
}

#[tokio::test]
async fn a_request_that_loops_back_gets_482() {
    let cfg = r#"
log_level = 3
mpath = "{MPATH}"
socket = ws:127.0.0.1:{PORT}
loadmodule "proto_ws.so"
modparam("proto_ws", "require_origin", 0)
route {
    # Misrouting: every MESSAGE is sent to this very server.
    $du = "sip:127.0.0.1:{PORT};transport=ws";
    t_relay();
    exit;
}
"#;
    let srv = Server::start(cfg);
    let mut ws = connect(&srv.ws_url()).await;
    let m = String::from(
        "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKloop1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n\
         Call-ID: loop-1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    );
    send(&mut ws, m.clone()).await;
    let r = recv(&mut ws).await;
    assert_eq!(status(&r), 482, "{r}\n{}", srv.log());
    // It was caught on the first return, not by Max-Forwards running out.
    srv.wait_log("callid=loop-1", Duration::from_secs(5));
    // A second looping request is a marker: once its line is logged, every line about the first
    // one is too (one log queue, in order).
    send(
        &mut ws,
        m.replace("loop-1", "loop-2")
            .replace("z9hG4bKloop1", "z9hG4bKloop2"),
    )
    .await;
    let r = recv(&mut ws).await;
    assert_eq!(status(&r), 482, "{r}\n{}", srv.log());
    let log = srv.wait_log("callid=loop-2", Duration::from_secs(5));
    let first = log
        .lines()
        .filter(|l| l.contains("loop detected") && l.contains("callid=loop-1"))
        .count();
    assert_eq!(first, 1, "{log}");
}

/// RFC 4475 §3.1.2 invalid requests, over WebSocket to the default config: answered 400
/// (505 for the version) whether the parser cannot frame them (ltgtruri) or
/// `sanity_check()` rejects them (mismatch01, escruri, badvers); the connection stays up.
#[tokio::test]
async fn rfc4475_invalid_requests_get_400_on_the_wire() {
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    let mut ws = connect(&srv.ws_url()).await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/src/testdata");
    for (name, code) in [
        ("ltgtruri", 400),
        ("mismatch01", 400),
        ("escruri", 400),
        ("badvers", 505),
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.dat"))).unwrap();
        send(&mut ws, text).await;
        let r = recv(&mut ws).await;
        assert_eq!(status(&r), code, "{name}: {r}");
    }
    // The same connection still gets normal service.
    send(&mut ws, options_request("after-4475", "z9hG4bKafter", 1)).await;
    assert_eq!(status(&recv(&mut ws).await), 200);
}
