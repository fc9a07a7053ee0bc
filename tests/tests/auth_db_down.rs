//! Issue 12 part 2, end to end: the bundled default config with its users in PostgreSQL
//! (Debian's server, started by the test) and the database going down and coming back.
//! While it is down a REGISTER whose user must be looked up fails fast with 503 (no I/O
//! worker waits; the store is marked down once and fails at once after that), the log says
//! so once, users whose credentials are cached keep working, OPTIONS keep being answered;
//! when the database answers again the log says so once and the same user registers.
mod common;
use common::digest::{add_users, ask_authorized};
use common::pg::Pg;
use common::sipws::register;
use common::ws::{connect_sip, status, Ws};
use common::*;
use std::time::{Duration, Instant};

/// A REGISTER of `user` (call `call`, CSeq `cseq`) through `ws`, answering the challenge;
/// the final status.
async fn register_status(ws: &mut Ws, user: &str, cseq: u32) -> u16 {
    let c = vec![format!("<sip:{user}@{user}.invalid;transport=ws>")];
    let r = ask_authorized(ws, register(user, &format!("reg-{user}"), cseq, &c, 600)).await;
    status(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_down_gives_503_and_service_comes_back_with_it() {
    let pg = Pg::start();
    let (cfg, _mi) = default_config();
    let line = "modparam(\"auth_db\", \"db_url\", \"sqlite://sipcore.db\")";
    assert!(cfg.contains(line), "default config changed");
    let cfg = cfg.replacen(
        line,
        &format!(
            "modparam(\"auth_db\", \"db_url\", \"postgres://sipcore:unused@127.0.0.1:{}/postgres\")",
            pg.port
        ),
        1,
    );
    let srv = Server::start(&cfg);
    add_users(&srv, &["alice", "carol"]);
    let url = srv.ws_url();

    // Up: alice registers (her credentials are now cached).
    let mut alice = connect_sip(&url).await;
    assert_eq!(register_status(&mut alice, "alice", 1).await, 200);

    // Down: carol, never looked up, gets 503 (the default config's answer to -5), and
    // again at once while it stays down; one line says the database is down.
    pg.stop();
    let mut carol = connect_sip(&url).await;
    let mut cseq = 1;
    assert_eq!(register_status(&mut carol, "carol", cseq).await, 503);
    srv.wait_log("is down", Duration::from_secs(10));
    for _ in 0..5 {
        cseq += 2;
        assert_eq!(register_status(&mut carol, "carol", cseq).await, 503);
    }
    // Alice's cached credentials still work; OPTIONS to the server are still answered.
    assert_eq!(register_status(&mut alice, "alice", 3).await, 200);
    common::ws::send_text(&mut carol, options_request("down-1", "z9hG4bKdown1", 1)).await;
    assert_eq!(status(&common::ws::next_text(&mut carol).await), 200);

    // Back: carol registers once the store has seen the database again (it retries every
    // second); one line says so. Polled with a deadline, not timed.
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        cseq += 2;
        match register_status(&mut carol, "carol", cseq).await {
            200 => break,
            503 => {}
            s => panic!("carol got {s} while the database came back:\n{}", srv.log()),
        }
        assert!(
            Instant::now() < deadline,
            "never served again:\n{}",
            srv.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    srv.wait_log("postgres answers again", Duration::from_secs(10));
    let log = srv.log();
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    // One line per state change, none per request.
    assert_eq!(lines("is down ("), 1, "{log}");
    assert_eq!(lines("postgres answers again"), 1, "{log}");
    assert_eq!(lines("not available"), 0, "{log}");
    assert_eq!(lines("credential store unavailable"), 0, "{log}");
}
