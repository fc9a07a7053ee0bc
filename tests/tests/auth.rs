//! Issue 12, end to end: digest authentication with users in SQLite, made by `sipcore user
//! add`. JsSIP and SIP.js answer the 401/407 challenges and run every scenario; the attacks
//! that worked before authentication fail: REGISTER as alice without or with a wrong password,
//! a replayed `nc`, a stale nonce (answered `stale=true`, after which the client succeeds),
//! another user removing alice's bindings, a MESSAGE with alice's From sent by bob.
//!
//! Raw clients compute their digests with the `md-5` crate (the server's own digest code is
//! checked against RFC vectors and Python's hashlib in its unit tests).
mod common;
use common::digest::{credentials, param};
use common::sipws::*;
use common::ws::{connect_from, connect_sip, next_text, send_text, Ws};
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PW: &str = "s3cret";

/// A registrar and proxy that authenticates as an OpenSIPS configuration does.
fn config(mi: u16, nonce_expire: u32) -> String {
    format!(
        r#"
log_level = 3
mpath = "{{MPATH}}"
socket = ws:127.0.0.1:{{PORT}}
mi_http_port = {mi}
loadmodule "proto_ws.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("proto_ws", "require_origin", 0)
modparam("auth", "nonce_expire", {nonce_expire})
modparam("auth_db", "db_url", "sqlite://users.db")
route {{
    if (!sanity_check()) exit;
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (lookup("location")) t_relay(); exit; }}
        sl_send_reply(404, "Not here");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!www_authorize("", "subscriber")) {{
            if ($rc == -5) {{ sl_send_reply(500, "Server Internal Error"); exit; }}
            www_challenge("", "auth");
            exit;
        }}
        if (!check_to()) {{ sl_send_reply(403, "Forbidden"); exit; }}
        consume_credentials();
        save("location");
        exit;
    }}
    if (!is_method("ACK|CANCEL")) {{
        if (!proxy_authorize("", "subscriber")) {{
            if ($rc == -5) {{ sl_send_reply(500, "Server Internal Error"); exit; }}
            proxy_challenge("", "auth");
            exit;
        }}
        if (!check_from()) {{ sl_send_reply(403, "Forbidden identity"); exit; }}
        consume_credentials();
    }}
    if (is_method("OPTIONS") && $rU == NULL) {{ sl_send_reply(200, "OK"); exit; }}
    if (is_method("INVITE")) record_route();
    if (!lookup("location")) {{
        if (is_method("CANCEL|ACK")) exit;
        sl_send_reply(404, "Not Found");
        exit;
    }}
    t_relay();
    exit;
}}
"#
    )
}

/// Run `sipcore user ARGS -f cfg`; its stdout, or a panic with its output.
fn user_cmd(cfg: &Path, args: &[&str]) -> String {
    let out = Command::new(sipcore_bin())
        .arg("user")
        .args(args)
        .arg("-f")
        .arg(cfg)
        .output()
        .expect("run sipcore user");
    assert!(
        out.status.success(),
        "sipcore user {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server with alice and bob (password [`PW`]) in its SQLite store.
fn start(nonce_expire: u32) -> (Server, u16) {
    let mi = free_port();
    let srv = Server::start(&config(mi, nonce_expire));
    for u in ["alice@example.com", "bob@example.com"] {
        user_cmd(&srv.cfg_path, &["add", u, "--password", PW]);
    }
    (srv, mi)
}

/// A REGISTER of `user`'s contact with `extra` header lines (credentials), To `to`.
fn register_as(
    to: &str,
    from: &str,
    call_id: &str,
    cseq: u32,
    contact: &str,
    extra: &str,
) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS {from}.invalid;branch=z9hG4bK{call_id}x{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@example.com>;tag=t{from}\r\nTo: <sip:{to}@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: {contact}\r\nExpires: 600\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// A REGISTER of `user` carrying `credentials` (an `Authorization` value): the reply.
async fn register_with(
    ws: &mut Ws,
    user: &str,
    call_id: &str,
    cseq: u32,
    contact: &str,
    credentials: &str,
) -> String {
    let auth = format!("Authorization: {credentials}\r\n");
    ask(ws, register_as(user, user, call_id, cseq, contact, &auth)).await
}

/// Send `msg`, return the reply.
async fn ask(ws: &mut Ws, msg: String) -> String {
    send_text(ws, msg).await;
    next_text(ws).await
}

fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    common::headers(msg, name)
}

/// The MD5 challenge among a reply's `name` headers.
fn md5_challenge<'a>(msg: &'a str, name: &str) -> &'a str {
    header(msg, name)
        .into_iter()
        .find(|c| c.contains("algorithm=MD5"))
        .unwrap_or_else(|| panic!("no MD5 challenge in {msg}"))
}

/// alice's registered contacts, through MI.
async fn contacts_of(srv: &Server, user: &str) -> Vec<String> {
    let aor = format!("{user}@example.com");
    match mi(&srv.cfg_path, &["ul_show_contact", "location", &aor]).await {
        Ok(v) => v["Contacts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["Contact"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn register_needs_the_right_password_and_a_fresh_nc() {
    let (srv, _mi) = start(30);
    let mut ws = connect_sip(&srv.ws_url()).await;
    let contact = "<sip:a1@alice.invalid;transport=ws>";

    // No credentials: 401 with one challenge per algorithm, most preferred first (RFC 7616
    // §3.7), MD5 last (JsSIP and SIP.js keep the last one); nothing bound.
    let r = ask(&mut ws, register_as("alice", "alice", "c1", 1, contact, "")).await;
    assert_eq!(status(&r), 401, "{r}");
    let all = header(&r, "WWW-Authenticate");
    assert_eq!(all.len(), 3, "{r}");
    assert!(
        all[0].contains("algorithm=SHA-512-256") && all[1].contains("algorithm=SHA-256"),
        "{r}"
    );
    let ch = [all[2]];
    assert!(
        ch[0].contains("algorithm=MD5") && ch[0].contains("qop=\"auth\""),
        "{r}"
    );
    assert_eq!(param(ch[0], "realm").as_deref(), Some("example.com"));
    assert!(contacts_of(&srv, "alice").await.is_empty());

    // A wrong password: 401 again, one log line naming the user and the peer, nothing bound.
    let bad = credentials(ch[0], "alice", "guess", "REGISTER", "sip:example.com", 1);
    let r = register_with(&mut ws, "alice", "c1", 2, contact, &bad).await;
    assert_eq!(status(&r), 401, "{r}");
    srv.wait_log(
        "authentication failed: user=alice realm=example.com ip=127.0.0.1",
        Duration::from_secs(5),
    );
    assert!(contacts_of(&srv, "alice").await.is_empty());

    // The right one: 200 and the binding.
    let ch = md5_challenge(&r, "WWW-Authenticate").to_string();
    let good = credentials(&ch, "alice", PW, "REGISTER", "sip:example.com", 1);
    let auth = format!("Authorization: {good}\r\n");
    let r = ask(
        &mut ws,
        register_as("alice", "alice", "c1", 3, contact, &auth),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(contacts_of(&srv, "alice").await.len(), 1);

    // The same credentials again (a replayed nc): 401 with stale=true, nothing changed.
    let r = ask(
        &mut ws,
        register_as("alice", "alice", "c1", 4, contact, &auth),
    )
    .await;
    assert_eq!(status(&r), 401, "{r}");
    assert!(
        md5_challenge(&r, "WWW-Authenticate").contains("stale=true"),
        "{r}"
    );
    // The next nc on the same nonce is fine.
    let next = credentials(&ch, "alice", PW, "REGISTER", "sip:example.com", 2);
    let r = register_with(&mut ws, "alice", "c1", 5, contact, &next).await;
    assert_eq!(status(&r), 200, "{r}");

    // A user that does not exist: 401 and a log line.
    let nobody = credentials(&ch, "mallory", PW, "REGISTER", "sip:example.com", 3);
    let r = register_with(&mut ws, "mallory", "c9", 1, contact, &nobody).await;
    assert_eq!(status(&r), 401, "{r}");
    srv.wait_log("user=mallory realm=example.com", Duration::from_secs(5));
}

#[tokio::test]
async fn an_expired_nonce_is_stale_and_the_client_recovers() {
    let (srv, _mi) = start(1);
    let mut ws = connect_sip(&srv.ws_url()).await;
    let contact = "<sip:a1@alice.invalid;transport=ws>";
    let r = ask(&mut ws, register_as("alice", "alice", "s1", 1, contact, "")).await;
    let ch = md5_challenge(&r, "WWW-Authenticate").to_string();
    // The nonce lives 1 s: wait until it is over (a clock condition, not a guess).
    let issued = Instant::now();
    while issued.elapsed() < Duration::from_millis(2100) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let late = credentials(&ch, "alice", PW, "REGISTER", "sip:example.com", 1);
    let r = register_with(&mut ws, "alice", "s1", 2, contact, &late).await;
    assert_eq!(status(&r), 401, "{r}");
    let fresh = md5_challenge(&r, "WWW-Authenticate").to_string();
    assert!(fresh.contains("stale=true"), "{r}");
    let now = credentials(&fresh, "alice", PW, "REGISTER", "sip:example.com", 1);
    let r = register_with(&mut ws, "alice", "s1", 3, contact, &now).await;
    assert_eq!(status(&r), 200, "{r}");
}

#[tokio::test]
async fn nobody_registers_or_speaks_as_someone_else() {
    let (srv, _mi) = start(30);
    let mut alice = connect_sip(&srv.ws_url()).await;
    let mut bob = connect_sip(&srv.ws_url()).await;
    let a_contact = "<sip:a1@alice.invalid;transport=ws>";
    let r = ask(
        &mut alice,
        register_as("alice", "alice", "r1", 1, a_contact, ""),
    )
    .await;
    let ch = md5_challenge(&r, "WWW-Authenticate").to_string();
    let c = credentials(&ch, "alice", PW, "REGISTER", "sip:example.com", 1);
    let r = register_with(&mut alice, "alice", "r1", 2, a_contact, &c).await;
    assert_eq!(status(&r), 200, "{r}");

    // bob, with his own good password, tries to remove alice's bindings: 403.
    let r = ask(
        &mut bob,
        register_as("alice", "bob", "r2", 1, "*", "").replace("Expires: 600", "Expires: 0"),
    )
    .await;
    assert_eq!(status(&r), 401, "{r}");
    let ch = md5_challenge(&r, "WWW-Authenticate").to_string();
    let c = credentials(&ch, "bob", PW, "REGISTER", "sip:example.com", 1);
    let wipe = register_as(
        "alice",
        "bob",
        "r2",
        2,
        "*",
        &format!("Authorization: {c}\r\n"),
    )
    .replace("Expires: 600", "Expires: 0");
    let r = ask(&mut bob, wipe).await;
    assert_eq!(status(&r), 403, "{r}");
    assert_eq!(
        contacts_of(&srv, "alice").await.len(),
        1,
        "alice's binding survived"
    );

    // bob sends a MESSAGE to alice with alice's From, authenticated as bob: 403, and alice
    // receives nothing.
    let msg = |cseq: u32, extra: &str| {
        format!(
            "MESSAGE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WS bob.invalid;branch=z9hG4bKm{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=forged\r\nTo: <sip:alice@example.com>\r\n\
             Call-ID: forged1\r\nCSeq: {cseq} MESSAGE\r\n{extra}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        )
    };
    let r = ask(&mut bob, msg(1, "")).await;
    assert_eq!(status(&r), 407, "{r}");
    let ch = md5_challenge(&r, "Proxy-Authenticate").to_string();
    let c = credentials(&ch, "bob", PW, "MESSAGE", "sip:alice@example.com", 1);
    let r = ask(&mut bob, msg(2, &format!("Proxy-Authorization: {c}\r\n"))).await;
    assert_eq!(status(&r), 403, "{r}");
    // alice gets nothing: an OPTIONS she sends to the server is the next thing she reads.
    let ping = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKp1\r\n\
                Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=p\r\nTo: <sip:example.com>\r\n\
                Call-ID: p1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let r = ask(&mut alice, ping.to_string()).await;
    assert!(
        r.starts_with("SIP/2.0 407"),
        "alice received something else first: {r}"
    );
}

#[test]
fn jssip_and_sipjs_register_and_call_with_passwords() {
    let (srv, _mi) = start(30);
    ensure_node_modules();
    let js = js_dir();
    let out = Command::new("node")
        .arg(js.join("scenario.js"))
        .args(["--stack", "mixed", "--url", &srv.ws_url(), "--password", PW])
        .args([
            "--domain",
            "example.com",
            "--scenario",
            "all",
            "--timeout",
            "60",
        ])
        .output()
        .expect("node not found: install Node.js (.ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scenario failed:\n{stdout}\n{}\n--- sipcore:\n{}",
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    let steps: Vec<&str> = stdout.lines().filter(|l| l.contains("\"step\"")).collect();
    assert!(
        steps.len() >= 10 && steps.iter().all(|l| l.contains("\"ok\":true")),
        "{stdout}"
    );
    // Without the password the same clients get nowhere.
    let out = Command::new("node")
        .arg(js.join("scenario.js"))
        .args(["--stack", "jssip", "--url", &srv.ws_url(), "--suffix", "x"])
        .args([
            "--domain",
            "example.com",
            "--scenario",
            "all",
            "--timeout",
            "20",
        ])
        .output()
        .expect("node");
    assert!(!out.status.success(), "registered without a password");
}

/// Password guessing: after 5 failures for bob from one address, even the right password is
/// refused from there (logged once), while bob from another address and alice from the same
/// one still register.
#[tokio::test]
async fn guessing_a_password_is_cut_short_for_that_user_and_address_only() {
    let (srv, _mi) = start(30);
    let mut ws = connect_sip(&srv.ws_url()).await;
    // Answer a fresh challenge for `user` with `pw` on `ws`: the final status.
    async fn attempt(ws: &mut Ws, user: &str, pw: &str, cid: &str) -> u16 {
        let contact = format!("<sip:x@{user}.invalid;transport=ws>");
        let r = ask(ws, register_as(user, user, cid, 1, &contact, "")).await;
        let ch = md5_challenge(&r, "WWW-Authenticate").to_string();
        let c = credentials(&ch, user, pw, "REGISTER", "sip:example.com", 1);
        let r = ask(
            ws,
            register_as(
                user,
                user,
                cid,
                2,
                &contact,
                &format!("Authorization: {c}\r\n"),
            ),
        )
        .await;
        status(&r)
    }
    for i in 0..5 {
        assert_eq!(
            attempt(&mut ws, "bob", "guess", &format!("g{i}")).await,
            401
        );
    }
    assert_eq!(
        attempt(&mut ws, "bob", PW, "g5").await,
        401,
        "blocked for now"
    );
    srv.wait_log(
        "authentication blocked: user=bob realm=example.com ip=127.0.0.1",
        Duration::from_secs(5),
    );
    assert_eq!(
        srv.log().matches("authentication blocked").count(),
        1,
        "logged once"
    );
    assert_eq!(
        attempt(&mut ws, "alice", PW, "a1").await,
        200,
        "another user"
    );
    let mut elsewhere = connect_from(srv.addr, "127.0.0.2").await;
    assert_eq!(
        attempt(&mut elsewhere, "bob", PW, "b1").await,
        200,
        "bob from another address"
    );
}
