//! `sipcore user add|password|rm|list` (opensips-cli's `user` subcommands), the real binary
//! against a configuration with OpenSIPS's auth_db lines: the SQLite file lands beside the
//! configuration (relative db_url), only HA1s are stored (checked against values computed with
//! Python's hashlib), and the exit codes and messages are an operator's.
mod common;
use common::pg::Pg;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Run `sipcore ARGS -f CFG` from `/` (so nothing resolves against the working directory),
/// with `stdin` as its input (none: an empty, non-terminal stdin).
fn sipcore(cfg: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(sipcore_bin())
        .args(args)
        .arg("-f")
        .arg(cfg)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipcore");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sipcore {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().expect("exited, not killed"),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok(cfg: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let r = sipcore(cfg, args, stdin);
    assert_eq!(r.code, 0, "sipcore {args:?}: {}{}", r.out, r.err);
    r.out
}

fn fails(cfg: &Path, args: &[&str], stdin: Option<&str>, code: i32, needle: &str) {
    let r = sipcore(cfg, args, stdin);
    assert_eq!(r.code, code, "sipcore {args:?}: {}{}", r.out, r.err);
    assert!(r.err.contains(needle), "stderr lacks {needle:?}: {}", r.err);
}

fn write_cfg(body: &str) -> PathBuf {
    let dir = temp_dir("user");
    let cfg = dir.join("sipcore.cfg");
    std::fs::write(&cfg, body).unwrap();
    cfg
}

/// The OpenSIPS lines of an auth_db setup.
const AUTH_DB: &str = "loadmodule \"db_sqlite.so\"\nloadmodule \"auth_db.so\"\nmodparam(\"auth_db\", \"db_url\", \"sqlite://users.db\")\nroute { exit; }\n";

/// A row's (password, ha1, ha1_sha256, ha1_sha512t256).
fn row(db: &Path, user: &str) -> Option<(String, String, String, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT password, ha1, ha1_sha256, ha1_sha512t256 FROM subscriber WHERE username = ?1 AND domain = 'example.com'",
        [user],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

/// `user:example.com:password` through Python's `hashlib.md5`, `hashlib.sha256` and
/// `hashlib.new('sha512_256')`.
fn hashlib(user: &str, pw: &str) -> (String, String, String) {
    let (a, b, c) = match (user, pw) {
        ("alice", "alice-pw") => (
            "cb56ccc0ab9945b9b5b9c1762096d635",
            "cd1a955a17732c43f62b81f0c13f594f9890b3103465cd04fac0054843a873ee",
            "e3fe2c9cbaa56c3767df79071870e8e151b86ff98af05ec0af941b7cbb03aa8d",
        ),
        ("alice", "new-pw") => (
            "145ca9a5526e21c014ab9045e8730ffc",
            "07c9bfbc288e4e3ad5ce053d22f0e0d55cfd1cdc4b68ebd0e4b07c7ffc5cacfb",
            "c69f0a8f8b15fe62d6305bba6768947b3dd26cd47d383fe29afdff0d697c4454",
        ),
        ("bob", "bob pw") => (
            "5a185995b780edad19707a77d10ba6f0",
            "babb356aed09bcd5bca6c575661e8bf44ce63b4f46f3274477ba2cd5054f6ee6",
            "173bae920f2038ff7969304dc1b0432a8ef04b2c9ff74b36ef94b38624e0fd07",
        ),
        _ => unreachable!(),
    };
    (a.into(), b.into(), c.into())
}

#[test]
fn add_list_password_rm() {
    let cfg = write_cfg(AUTH_DB);
    let db = cfg.parent().unwrap().join("users.db");
    // The server's own check accepts the OpenSIPS lines.
    let r = sipcore(&cfg, &["-c"], None);
    assert_eq!(r.code, 0, "sipcore -c: {}", r.err);
    // A fresh install lists nobody (and the database is made beside the configuration).
    assert_eq!(ok(&cfg, &["user", "list"], None), "");
    assert!(db.is_file(), "{} made", db.display());

    let out = ok(
        &cfg,
        &["user", "add", "alice@example.com", "--password", "alice-pw"],
        None,
    );
    assert!(out.contains("alice@example.com"), "{out}");
    let (md5, sha256, sha512t256) = hashlib("alice", "alice-pw");
    assert_eq!(
        row(&db, "alice"),
        Some((String::new(), md5, sha256, sha512t256)),
        "only the HA1s are stored, realm = domain"
    );
    fails(
        &cfg,
        &["user", "add", "alice@example.com", "--password", "x"],
        None,
        1,
        "user alice@example.com already exists",
    );
    // The password from stdin (not a terminal): its first line.
    ok(&cfg, &["user", "add", "bob@example.com"], Some("bob pw\n"));
    let (md5, ..) = hashlib("bob", "bob pw");
    assert_eq!(row(&db, "bob").unwrap().1, md5);
    assert_eq!(
        ok(&cfg, &["user", "list"], None),
        "alice@example.com\nbob@example.com\n"
    );

    ok(
        &cfg,
        &["user", "password", "alice@example.com"],
        Some("new-pw\n"),
    );
    let (md5, sha256, sha512t256) = hashlib("alice", "new-pw");
    assert_eq!(
        row(&db, "alice"),
        Some((String::new(), md5, sha256, sha512t256))
    );
    ok(
        &cfg,
        &[
            "user",
            "password",
            "alice@example.com",
            "--password",
            "new-pw",
            "--store-password",
        ],
        None,
    );
    assert_eq!(row(&db, "alice").unwrap().0, "new-pw", "--store-password");
    fails(
        &cfg,
        &["user", "password", "carol@example.com", "--password", "x"],
        None,
        1,
        "no user carol@example.com",
    );

    let out = ok(&cfg, &["user", "rm", "bob@example.com"], None);
    assert!(out.contains("removed bob@example.com"), "{out}");
    assert_eq!(row(&db, "bob"), None);
    fails(
        &cfg,
        &["user", "rm", "bob@example.com"],
        None,
        1,
        "no user bob@example.com",
    );
    assert_eq!(ok(&cfg, &["user", "list"], None), "alice@example.com\n");
}

#[test]
fn usage_errors() {
    let cfg = write_cfg(AUTH_DB);
    fails(
        &cfg,
        &["user", "add", "alice", "--password", "x"],
        None,
        2,
        "not user@domain",
    );
    // No password anywhere: stdin is empty.
    fails(
        &cfg,
        &["user", "add", "alice@example.com"],
        Some(""),
        2,
        "empty password",
    );
    assert_eq!(ok(&cfg, &["user", "list"], None), "", "nothing was added");

    let none = write_cfg("route { exit; }\n");
    fails(&none, &["user", "list"], None, 2, "db_url");

    let bad = write_cfg(
        "loadmodule \"auth_db.so\"\nmodparam(\"auth_db\", \"db_url\", \"mysql://opensips:secret@localhost/opensips\")\nroute { exit; }\n",
    );
    let r = sipcore(&bad, &["user", "list"], None);
    assert_eq!(r.code, 2, "{}", r.err);
    // The message names the place and hides the password (the quoted source line is the
    // operator's own).
    assert!(
        r.err.contains(":2:31:")
            && r.err.contains(
                "\"mysql://opensips:***@localhost/opensips\": unsupported database \"mysql\""
            ),
        "{}",
        r.err
    );
    let r = sipcore(&bad, &["-c"], None);
    assert_eq!(r.code, 1, "sipcore -c refuses it: {}", r.err);
    assert!(r.err.contains(":2:31:"), "{}", r.err);

    let missing = write_cfg(
        "loadmodule \"auth_db.so\"\nmodparam(\"auth_db\", \"db_url\", \"sqlite://users.db\")\nroute { exit; }\n",
    );
    fails(
        &missing,
        &["user", "rm", "alice@example.com"],
        None,
        1,
        "users.db",
    );
}

/// calculate_ha1 with the password column (OpenSIPS's way to keep clear passwords), other
/// column names, and db_default_url instead of auth_db's db_url.
#[test]
fn opensips_auth_db_settings() {
    let cfg = write_cfg(
        "db_default_url = \"sqlite://data/sip.db\"\nloadmodule \"auth_db.so\"\nmodparam(\"auth_db\", \"calculate_ha1\", 1)\nmodparam(\"auth_db\", \"password_column\", \"password\")\nmodparam(\"auth_db\", \"use_domain\", 1)\nmodparam(\"auth_db\", \"skip_version_check\", 1)\nroute { exit; }\n",
    );
    std::fs::create_dir(cfg.parent().unwrap().join("data")).unwrap();
    let r = sipcore(&cfg, &["-c"], None);
    assert_eq!(r.code, 0, "sipcore -c: {}", r.err);
    ok(
        &cfg,
        &["user", "add", "alice@example.com", "--password", "alice-pw"],
        None,
    );
    let db = cfg.parent().unwrap().join("data/sip.db");
    let (pw, md5, ..) = row(&db, "alice").unwrap();
    assert_eq!(pw, "alice-pw", "calculate_ha1 needs the clear password");
    assert_eq!(md5, hashlib("alice", "alice-pw").0);
}

/// The same commands against PostgreSQL (`postgres://` db_url, several nodes' shared table).
#[test]
fn postgres_database() {
    let pg = Pg::start();
    let cfg = write_cfg(&format!(
        "loadmodule \"db_postgres.so\"\nloadmodule \"auth_db.so\"\nmodparam(\"auth_db\", \"db_url\", \"postgres://sipcore:unused@127.0.0.1:{}/postgres\")\nroute {{ exit; }}\n",
        pg.port
    ));
    let r = sipcore(&cfg, &["-c"], None);
    assert_eq!(r.code, 0, "sipcore -c: {}", r.err);
    assert_eq!(ok(&cfg, &["user", "list"], None), "");
    ok(
        &cfg,
        &["user", "add", "alice@example.com", "--password", "alice-pw"],
        None,
    );
    ok(&cfg, &["user", "add", "bob@example.com"], Some("bob pw\n"));
    fails(
        &cfg,
        &["user", "add", "bob@example.com", "--password", "x"],
        None,
        1,
        "already exists",
    );
    assert_eq!(
        ok(&cfg, &["user", "list"], None),
        "alice@example.com\nbob@example.com\n"
    );
    ok(
        &cfg,
        &["user", "password", "alice@example.com"],
        Some("new-pw\n"),
    );
    ok(&cfg, &["user", "rm", "bob@example.com"], None);
    fails(
        &cfg,
        &["user", "rm", "bob@example.com"],
        None,
        1,
        "no user bob@example.com",
    );
    assert_eq!(ok(&cfg, &["user", "list"], None), "alice@example.com\n");
    // What the server reads: the HA1s hashlib gives.
    let (md5, sha256, sha512t256) = hashlib("alice", "new-pw");
    let out = pg
        .command("psql")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string(), "-U", "sipcore", "-d", "postgres", "-At", "-c"])
        .arg("SELECT password, ha1, ha1_sha256, ha1_sha512t256 FROM subscriber WHERE username = 'alice'")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("|{md5}|{sha256}|{sha512t256}"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
