//! Issue 10 item 9, end to end: registrations are bounded and cheap. A REGISTER with 1,500
//! contacts is refused at once (`max_request_contacts`), or, with the limits raised, handled
//! while a witness's OPTIONS keep a p99 under 50 ms; `max_contacts` answers 503 for one AoR
//! while other users register; `max_registrations` answers 503 when the table is full. The
//! registrar's modules are loaded the OpenSIPS way (`loadmodule "registrar.so"`, built in).
mod common;
use common::digest::ask_authorized;
use common::sipws::*;
use common::*;
use std::time::Duration;

/// A registrar config in OpenSIPS style: the built-in modules loaded by name, with `params`
/// (modparam lines) added.
fn config(mi: u16, params: &str) -> String {
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
loadmodule "maxfwd.so"
loadmodule "sanity.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("proto_ws", "require_origin", 0)
modparam("proto_ws", "ws_max_msg_size", 262144)
modparam("usrloc", "db_mode", 0)
{params}
route {{
    if (!mf_process_maxfwd_header(10)) {{ sl_send_reply(483, "Too Many Hops"); exit; }}
    if (is_method("REGISTER")) {{ save("location"); exit; }}
    if (is_method("OPTIONS") && $rU == NULL) {{ sl_send_reply(200, "OK"); exit; }}
    if (!lookup("location")) {{ sl_send_reply(404, "Not Found"); exit; }}
    t_relay();
    exit;
}}
"#
    )
}

/// The tests of this file run one at a time: the latency bounds measure the server, not the
/// other tests' servers starting.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn start(params: &str) -> Server {
    let mi = free_port();
    let srv = Server::start(&config(mi, params));
    wait_port(mi);
    srv
}

/// Wait until `port` accepts TCP connections (the MI starts after the SIP socket is bound).
fn wait_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "MI port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The contact URIs `ul_show_contact` lists for `user@example.com`.
async fn shown(srv: &Server, user: &str) -> Vec<String> {
    let aor = format!("{user}@example.com");
    match mi(&srv.cfg_path, &["ul_show_contact", "location", &aor]).await {
        Ok(v) => v["Contacts"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|c| c["Contact"].as_str().unwrap().to_string())
            .collect(),
        Err(e) => {
            assert_eq!(e["code"], 404, "{e}");
            assert_eq!(e["message"], "AOR not found", "{e}");
            Vec::new()
        }
    }
}

/// The default config: one REGISTER with 1,500 contacts gets a 403 that says why, at once,
/// and changes nothing; a registered user and a witness lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_contacts_in_one_register_are_refused() {
    let _one = SERIAL.lock().await;
    let (cfg, _mi) = default_config();
    let srv = Server::start(&cfg);
    common::digest::add_users(&srv, &["alice", "bob", "mallory"]);
    let url = srv.ws_url();
    let alice = register_one(&url, "alice").await;
    let witness = Witness::start(&url).await;
    let mut m = common::ws::connect_sip(&url).await;
    // The same attack again and again, until the witness has 20 round trips to judge by.
    let mut cseq = 0;
    while cseq == 0 || witness.samples() < 20 {
        cseq += 1;
        assert!(
            cseq <= 2000,
            "the witness got {} answers",
            witness.samples()
        );
        // Authenticated: the limit holds for a user with the right password too.
        let r = ask_authorized(
            &mut m,
            register("mallory", "big-1", cseq, &contacts("m", 1500), 600),
        )
        .await;
        assert_eq!(status(&r), 403, "{r}");
        assert_eq!(
            header(&r, "P-Registrar-Error"),
            Some("too many contacts in one REGISTER (max_request_contacts 32)"),
            "{r}"
        );
        assert!(header(&r, "Contact").is_none(), "{r}");
    }
    let rtts = witness.finish().await;
    // Mallory's connection is still served, with what the limit allows.
    let r = ask_authorized(
        &mut m,
        register("mallory", "big-1", cseq + 2, &contacts("m", 3), 600),
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    assert_eq!(headers(&r, "Contact").len(), 3, "{r}");
    assert!(!rtts.is_empty());
    assert!(
        p99(&rtts) < Duration::from_millis(50),
        "witness p99 {:?}",
        p99(&rtts)
    );
    // Alice is still registered and reachable.
    let mut bob = register_one(&url, "bob").await;
    let msg = String::from(
        "MESSAGE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/WS bob.invalid;branch=z9hG4bKm1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    );
    let mut alice = alice;
    common::digest::send_authorized(&mut bob, msg).await;
    let got = common::ws::next_text(&mut alice).await;
    assert!(got.starts_with("MESSAGE sip:alice@alice.invalid"), "{got}");
}

/// With `max_contacts` and `max_request_contacts` raised to 2,000, ten REGISTERs of 1,500
/// contacts are handled (answered with all of them) while a witness's OPTIONS keep a p99
/// under 50 ms over the whole period, whichever I/O worker the witness shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_hundred_contacts_allowed_do_not_delay_others() {
    let _one = SERIAL.lock().await;
    let srv = start(
        "modparam(\"registrar\", \"max_contacts\", 2000)\n\
         modparam(\"registrar\", \"max_request_contacts\", 2000)",
    );
    let url = srv.ws_url();
    let witness = Witness::start(&url).await;
    let mut m = common::ws::connect_sip(&url).await;
    // At least five REGISTERs, and on until the witness has 20 round trips to judge by.
    let mut cseq = 0;
    while cseq < 5 || witness.samples() < 20 {
        cseq += 1;
        assert!(
            cseq <= 200,
            "the witness got {} answers in 200 REGISTERs",
            witness.samples()
        );
        let r = ask(
            &mut m,
            register("many", "many-1", cseq, &contacts("m", 1500), 600),
        )
        .await;
        assert_eq!(status(&r), 200, "{}", &r[..r.len().min(500)]);
        let n: usize = headers(&r, "Contact")
            .iter()
            .map(|h| h.split(", ").count())
            .sum();
        assert_eq!(n, 1500);
        assert!(headers(&r, "Contact").len() <= 64, "Contact lines stay few");
    }
    let rtts = witness.finish().await;
    eprintln!(
        "witness: {} samples, p50 {:?} p99 {:?} max {:?}",
        rtts.len(),
        rtts[rtts.len() / 2],
        p99(&rtts),
        rtts.last()
    );
    assert!(rtts.len() >= 20, "{} samples", rtts.len());
    assert!(
        p99(&rtts) < Duration::from_millis(50),
        "witness p99 {:?} over {} OPTIONS",
        p99(&rtts),
        rtts.len()
    );
    assert_eq!(shown(&srv, "many").await.len(), 1500);
}

/// `max_contacts` (OpenSIPS registrar): the fourth binding of an AoR gets 503 with the
/// reason; the AoR keeps its three, and other users register as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_contacts_per_aor_is_503_and_others_are_unaffected() {
    let _one = SERIAL.lock().await;
    let srv = start("modparam(\"registrar\", \"max_contacts\", 3)");
    let url = srv.ws_url();
    let mut a = common::ws::connect_sip(&url).await;
    let r = ask(&mut a, register("alice", "a", 1, &contacts("a", 3), 600)).await;
    assert_eq!(status(&r), 200, "{r}");
    let one_more = vec!["<sip:extra@a.invalid;transport=ws>".to_string()];
    let r = ask(&mut a, register("alice", "a", 2, &one_more, 600)).await;
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(
        header(&r, "P-Registrar-Error"),
        Some("too many registered contacts for this AoR (max_contacts 3)")
    );
    assert_eq!(shown(&srv, "alice").await.len(), 3);
    for u in ["bob", "carol"] {
        let _ws = register_one(&url, u).await;
        assert_eq!(shown(&srv, u).await.len(), 1);
    }
    // Removing one makes room again.
    let gone = vec!["<sip:c0@a.invalid;transport=ws>;expires=0".to_string()];
    assert_eq!(
        status(&ask(&mut a, register("alice", "a", 3, &gone, 600)).await),
        200
    );
    assert_eq!(
        status(&ask(&mut a, register("alice", "a", 4, &one_more, 600)).await),
        200
    );
}

/// `max_registrations` (usrloc): when the table holds that many bindings, a REGISTER that
/// would add one gets 503 with the reason and Retry-After; refreshes still work, and room
/// comes back when a binding goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_registrar_answers_503_and_keeps_serving() {
    let _one = SERIAL.lock().await;
    let srv = start("modparam(\"usrloc\", \"max_registrations\", 4)");
    let url = srv.ws_url();
    let mut users = Vec::new();
    for u in ["u1", "u2", "u3", "u4"] {
        users.push(register_one(&url, u).await);
    }
    let mut late = common::ws::connect_sip(&url).await;
    let c = vec!["<sip:u5@u5.invalid;transport=ws>".to_string()];
    let r = ask(&mut late, register("u5", "reg-u5", 1, &c, 600)).await;
    assert_eq!(status(&r), 503, "{r}");
    assert_eq!(
        header(&r, "P-Registrar-Error"),
        Some("registrar full (max_registrations 4)")
    );
    assert_eq!(header(&r, "Retry-After"), Some("60"));
    assert!(shown(&srv, "u5").await.is_empty());
    // A registered user refreshes as usual.
    let c1 = vec!["<sip:u1@u1.invalid;transport=ws>".to_string()];
    let r = ask(&mut users[0], register("u1", "reg-u1", 2, &c1, 600)).await;
    assert_eq!(status(&r), 200, "{r}");
    // u2's connection closes: its binding goes, and u5 gets in.
    drop(users.remove(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for cseq in 2.. {
        let r = ask(&mut late, register("u5", "reg-u5", cseq, &c, 600)).await;
        if status(&r) == 200 {
            break;
        }
        assert_eq!(status(&r), 503, "{r}");
        assert!(
            std::time::Instant::now() < deadline,
            "no room after a close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shown(&srv, "u5").await.len(), 1);
}

/// A modparam of a built-in module is checked like a plugin's: an unknown one stops the
/// server with file:line:col.
#[test]
fn unknown_builtin_parameter_is_a_config_error() {
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"registrar.so\"\nloadmodule \"tm.so\"\n\
               modparam(\"registrar\", \"max_contacts\", 5)\n\
               modparam(\"registrar\", \"no_such_param\", 1)\nroute { exit; }\n";
    let (st, err, path) = run_to_exit(cfg, "builtin.cfg");
    assert_eq!(st.code(), Some(1), "{err}");
    let at = format!("{}:5:", path.display());
    assert!(err.contains(&at), "{err}");
    assert!(
        err.contains("module 'registrar' has no parameter 'no_such_param' (it has: default_expires, min_expires, max_expires, max_contacts, max_request_contacts, tcp_persistent, flow_timer)"),
        "{err}"
    );
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"rr.so\"\nmodparam(\"rr\", \"append_fromtag\", 1)\nroute { exit; }\n";
    let (st, err, _) = run_to_exit(cfg, "builtin2.cfg");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("module 'rr' has no parameter 'append_fromtag' (it has: enable_double_rr)"),
        "{err}"
    );
    // rr's enable_double_rr is 0 or 1.
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"rr.so\"\nmodparam(\"rr\", \"enable_double_rr\", 2)\nroute { exit; }\n";
    let (st, err, path) = run_to_exit(cfg, "builtin5.cfg");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("rr enable_double_rr must be 0-1"), "{err}");
    // tm's are checked (OpenSIPS's names and units).
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"tm.so\"\nmodparam(\"tm\", \"fr_timeout\", 5)\nmodparam(\"tm\", \"fr_inv_timeout\", 0)\nroute { exit; }\n";
    let (st, err, path) = run_to_exit(cfg, "builtin4.cfg");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:4:", path.display())), "{err}");
    assert!(err.contains("tm fr_inv_timeout must be 1-3600"), "{err}");
    let cfg = "mpath = \"{MPATH}\"\nloadmodule \"usrloc.so\"\nmodparam(\"usrloc\", \"hash_size\", 40)\nroute { exit; }\n";
    let (st, err, _) = run_to_exit(cfg, "builtin3.cfg");
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains(":3:"), "{err}");
    assert!(err.contains("hash_size must be 1-16"), "{err}");
}
