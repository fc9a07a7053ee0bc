//! PostgreSQL: Debian's server binaries (package `postgresql`) started with `initdb` and
//! `pg_ctl` in a temporary directory on a free port (as the `postgres` user when run as root);
//! the store's operations, and the pool across the server stopping and starting again. Without
//! the binaries these tests fail, saying what to install: they never skip silently.
use super::*;
use crate::auth::digest::{ha1, Algorithm};
use crate::auth::store::{CredentialStore, Lookup};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(60);

/// `/usr/lib/postgresql/N/bin`, the newest.
fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("pg_ctl").is_file() && b.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect(
        "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: install Debian's postgresql package (.ci/run must)",
    )
}

struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl PgServer {
    fn start() -> PgServer {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        if as_postgres {
            // initdb refuses to run as root.
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = PgServer {
            dir,
            port,
            bin,
            as_postgres,
        };
        let data = s.data();
        s.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "sipcore",
                "--no-sync",
            ],
        );
        s.pg_ctl_start();
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `tool` from the server binaries, as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(self.dir.path());
        c
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let data = self.data();
        let log = self.dir.path().join("pg.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
    }

    fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    fn url(&self) -> DbUrl {
        DbUrl::parse(
            &format!("postgres://sipcore@127.0.0.1:{}/postgres", self.port),
            Path::new("/"),
        )
        .unwrap()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

#[test]
fn postgres_store() {
    let pg = PgServer::start();
    let cols = Columns::opensips();
    let s = UserStore::open(&pg.url(), &cols, PATIENCE).unwrap();
    assert!(s.list().unwrap().is_empty());
    s.add("alice", "example.com", "pw", false).unwrap();
    let got = s.lookup("alice", "example.com").unwrap().unwrap();
    for alg in crate::auth::digest::Algorithm::ALL {
        assert_eq!(
            got.for_algorithm(alg, "alice", "example.com"),
            Some(ha1(alg, "alice", "example.com", "pw"))
        );
    }
    assert_eq!(got.password, None);
    assert!(s.lookup("alice", "example.org").unwrap().is_none());
    assert!(matches!(
        s.add("alice", "example.com", "x", false),
        Err(DbError::UserExists { .. })
    ));
    s.add("bob", "example.com", "pw", true).unwrap();
    s.set_password("alice", "example.com", "new", false)
        .unwrap();
    assert_eq!(
        s.lookup("alice", "example.com").unwrap().unwrap().md5,
        Some(ha1(Algorithm::Md5, "alice", "example.com", "new"))
    );
    assert!(matches!(
        s.set_password("carol", "example.com", "x", false),
        Err(DbError::NoSuchUser { .. })
    ));
    assert_eq!(
        s.list().unwrap(),
        vec![
            ("alice".into(), "example.com".into()),
            ("bob".into(), "example.com".into())
        ]
    );
    s.remove("bob", "example.com").unwrap();
    assert!(matches!(
        s.remove("bob", "example.com"),
        Err(DbError::NoSuchUser { .. })
    ));
    drop(s);
    // Opened again: the table is kept; calculate_ha1 reads the clear password column.
    let cfg = AuthDbConfig {
        calculate_ha1: true,
        password_column: "password".into(),
        ..AuthDbConfig::default()
    };
    let s = UserStore::open(&pg.url(), &cfg.columns().unwrap(), PATIENCE).unwrap();
    s.add("carol", "example.com", "c-pw", false).unwrap();
    assert_eq!(
        s.lookup("carol", "example.com").unwrap().unwrap().password,
        Some("c-pw".into())
    );
    assert_eq!(s.list().unwrap().len(), 2);
}

#[test]
fn postgres_pool_survives_a_restart() {
    let pg = PgServer::start();
    let mut a = AuthDbConfig {
        db_url: Some(pg.url()),
        ..AuthDbConfig::default()
    };
    a.pool.timeout = Duration::from_secs(5);
    a.pool.retry = Duration::from_millis(50);
    let pool = open_pool(&a).unwrap().unwrap();
    UserStore::open_existing(&pg.url(), &a.columns().unwrap(), PATIENCE)
        .unwrap()
        .add("alice", "example.com", "pw", false)
        .unwrap();
    let ask = |pool: &Pool| {
        let (tx, rx) = channel();
        pool.lookup(
            "alice",
            "example.com",
            Box::new(move |l| {
                let _ = tx.send(l);
            }),
        )
        .map(|()| rx.recv_timeout(PATIENCE).expect("answered"))
    };
    assert!(matches!(ask(&pool), Ok(Lookup::Found(_))));
    pg.stop();
    assert!(matches!(ask(&pool), Ok(Lookup::Failed(_))));
    assert!(pool.is_down());
    assert!(ask(&pool).is_err(), "fails fast while down");
    pg.pg_ctl_start();
    let end = Instant::now() + PATIENCE;
    while !matches!(ask(&pool), Ok(Lookup::Found(_))) {
        assert!(Instant::now() < end, "the pool did not recover");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pool.is_down());
}
