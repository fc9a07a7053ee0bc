//! The SQLite store: the schema from nothing and over an existing OpenSIPS table, the user
//! operations, the stored HA1s (against `digest::ha1` and values computed with Python's
//! hashlib), and auth_db's column settings.
use super::*;
use crate::auth::digest::{ha1, Algorithm};
use crate::auth::store::Ha1s;
use std::path::Path;
use std::time::Duration;

const BUSY: Duration = Duration::from_secs(10);

fn url(dir: &Path, file: &str) -> DbUrl {
    DbUrl::parse(&format!("sqlite://{file}"), dir).unwrap()
}

fn tables(path: &Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut s = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let v = s
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    v
}

#[test]
fn schema_created_from_nothing_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let u = url(dir.path(), "users.db");
    let cols = Columns::opensips();
    assert!(
        UserStore::open_existing(&u, &cols, BUSY).is_err(),
        "no file is created without asking"
    );
    assert!(!dir.path().join("users.db").exists());
    let s = UserStore::open(&u, &cols, BUSY).unwrap();
    assert!(s.list().unwrap().is_empty());
    s.add("alice", "example.com", "pw", false).unwrap();
    drop(s);
    let path = dir.path().join("users.db");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600,
        "HA1s are readable by the owner only"
    );
    let t = tables(&path);
    assert!(
        t.contains(&"subscriber".to_string()) && t.contains(&"version".to_string()),
        "{t:?}"
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .query_row(
            "SELECT table_version FROM version WHERE table_name = 'subscriber'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, 8, "OpenSIPS's subscriber table version");
    // Every OpenSIPS column is there.
    c.query_row(
        "SELECT id, username, domain, password, ha1, ha1_sha256, ha1_sha512t256 FROM subscriber",
        [],
        |_| Ok(()),
    )
    .unwrap();
    // Opening again keeps the data.
    let s = UserStore::open(&u, &cols, BUSY).unwrap();
    assert_eq!(
        s.list().unwrap(),
        vec![("alice".into(), "example.com".into())]
    );
    // A directory that does not exist is an error that names the file.
    let e = UserStore::open(&url(dir.path(), "no/such/dir/u.db"), &cols, BUSY)
        .err()
        .unwrap();
    assert!(e.to_string().contains("no/such/dir/u.db"), "{e}");
}

/// `alice:example.com:s3crét` hashed by Python's hashlib (an independent implementation):
/// `hashlib.md5(s)`, `hashlib.sha256(s)`, `hashlib.new('sha512_256', s)`.
const PY_MD5: &str = "8bc1503c552424ba3284f49b3a0c9f73";
const PY_SHA256: &str = "4f753685c62d1cb5c011ac6a59b5d9b778adfed0820be7c5ae7f893d0c747cbe";
const PY_SHA512T256: &str = "a44c53432044d2307b8723feaccf8b427a3c83222d5e0db5e6120a318efa38b2";

#[test]
fn add_lookup_password_rm_list() {
    let dir = tempfile::tempdir().unwrap();
    let s = UserStore::open(&url(dir.path(), "u.db"), &Columns::opensips(), BUSY).unwrap();
    s.add("alice", "example.com", "s3crét", false).unwrap();
    let got = s.lookup("alice", "example.com").unwrap().unwrap();
    assert_eq!(
        got,
        Ha1s {
            md5: Some(PY_MD5.into()),
            sha256: Some(PY_SHA256.into()),
            sha512t256: Some(PY_SHA512T256.into()),
            password: None,
        },
        "only the HA1s are stored by default"
    );
    for alg in Algorithm::ALL {
        assert_eq!(
            got.for_algorithm(alg, "alice", "example.com"),
            Some(ha1(alg, "alice", "example.com", "s3crét"))
        );
    }
    assert!(s.lookup("alice", "example.org").unwrap().is_none());
    assert!(s.lookup("bob", "example.com").unwrap().is_none());
    assert!(matches!(
        s.add("alice", "example.com", "other", false),
        Err(DbError::UserExists { .. })
    ));
    s.add("alice", "example.org", "pw", false).unwrap();
    s.add("bob", "example.com", "pw", true).unwrap();
    let clear = |user: &str| -> String {
        rusqlite::Connection::open(dir.path().join("u.db"))
            .unwrap()
            .query_row(
                "SELECT password FROM subscriber WHERE username = ?1 AND domain = 'example.com'",
                [user],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(clear("bob"), "pw", "--store-password keeps it");
    assert_eq!(clear("alice"), "", "only the HA1s by default");
    assert_eq!(
        s.lookup("bob", "example.com").unwrap().unwrap().password,
        None,
        "without calculate_ha1, lookups read the HA1s only (as OpenSIPS)"
    );
    s.set_password("alice", "example.com", "new", false)
        .unwrap();
    let got = s.lookup("alice", "example.com").unwrap().unwrap();
    assert_eq!(
        got.md5,
        Some(ha1(Algorithm::Md5, "alice", "example.com", "new"))
    );
    s.set_password("bob", "example.com", "new", false).unwrap();
    assert_eq!(
        clear("bob"),
        "",
        "a new password without --store-password removes the clear one"
    );
    assert!(matches!(
        s.set_password("carol", "example.com", "x", false),
        Err(DbError::NoSuchUser { .. })
    ));
    assert_eq!(
        s.list().unwrap(),
        vec![
            ("alice".into(), "example.com".into()),
            ("bob".into(), "example.com".into()),
            ("alice".into(), "example.org".into()),
        ]
    );
    s.remove("alice", "example.com").unwrap();
    assert!(matches!(
        s.remove("alice", "example.com"),
        Err(DbError::NoSuchUser { .. })
    ));
    assert!(s.lookup("alice", "example.com").unwrap().is_none());
    assert!(s.add("", "example.com", "pw", false).is_err());
    assert!(s.add("a b", "example.com", "pw", false).is_err());
    assert!(s.add("carol", "example.com", "", false).is_err());
}

#[test]
fn aor_split() {
    assert_eq!(
        store::split_aor("alice@example.com").unwrap(),
        ("alice", "example.com")
    );
    assert_eq!(
        store::split_aor("sip:a@b@example.com").unwrap(),
        ("a@b", "example.com")
    );
    for bad in ["alice", "@example.com", "alice@", ""] {
        assert!(store::split_aor(bad).is_err(), "{bad}");
    }
}

/// An OpenSIPS database as OpenSIPS's own `auth_db-create.sql` makes it, with a row as
/// opensips-cli writes it (HA1s, empty password): served as is, and not altered.
#[test]
fn existing_opensips_table_serves_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opensips.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE version (table_name CHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT t_name_idx UNIQUE (table_name));
         INSERT INTO version (table_name, table_version) values ('subscriber','8');
         CREATE TABLE subscriber (
            id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
            username CHAR(64) DEFAULT '' NOT NULL,
            domain CHAR(64) DEFAULT '' NOT NULL,
            password CHAR(25) DEFAULT '' NOT NULL,
            ha1 CHAR(64) DEFAULT '' NOT NULL,
            ha1_sha256 CHAR(64) DEFAULT '' NOT NULL,
            ha1_sha512t256 CHAR(64) DEFAULT '' NOT NULL,
            CONSTRAINT subscriber_account_idx  UNIQUE (username, domain));
         CREATE INDEX subscriber_username_idx  ON subscriber (username);",
    )
    .unwrap();
    c.execute(
        "INSERT INTO subscriber (username, domain, ha1) VALUES ('alice', 'example.com', ?1)",
        [PY_MD5],
    )
    .unwrap();
    drop(c);
    let s = UserStore::open(&url(dir.path(), "opensips.db"), &Columns::opensips(), BUSY).unwrap();
    let got = s.lookup("alice", "example.com").unwrap().unwrap();
    assert_eq!(got.md5.as_deref(), Some(PY_MD5));
    assert_eq!(
        (got.sha256, got.sha512t256, got.password),
        (None, None, None)
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// `calculate_ha1` with `password_column` "password": the clear password is read (and
/// always stored); `use_domain` 0: the user name alone finds the row; other column names
/// make a table with those names.
#[test]
fn auth_db_column_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AuthDbConfig {
        calculate_ha1: true,
        password_column: "password".into(),
        ..AuthDbConfig::default()
    };
    let s = UserStore::open(&url(dir.path(), "c.db"), &cfg.columns().unwrap(), BUSY).unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    let got = s.lookup("alice", "example.com").unwrap().unwrap();
    assert_eq!(
        got,
        Ha1s {
            password: Some("pw".into()),
            ..Ha1s::default()
        }
    );
    assert_eq!(
        got.for_algorithm(Algorithm::Sha256, "alice", "example.com"),
        Some(ha1(Algorithm::Sha256, "alice", "example.com", "pw"))
    );

    let cfg = AuthDbConfig {
        use_domain: false,
        ..AuthDbConfig::default()
    };
    let s = UserStore::open(&url(dir.path(), "d.db"), &cfg.columns().unwrap(), BUSY).unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    assert!(s.lookup("alice", "anything.example").unwrap().is_some());
    assert!(s.lookup("bob", "example.com").unwrap().is_none());

    let cfg = AuthDbConfig {
        user_column: "user_name".into(),
        domain_column: "realm".into(),
        password_column: "md5_ha1".into(),
        ..AuthDbConfig::default()
    };
    let s = UserStore::open(&url(dir.path(), "e.db"), &cfg.columns().unwrap(), BUSY).unwrap();
    s.add("alice", "example.com", "pw", false).unwrap();
    drop(s);
    let c = rusqlite::Connection::open(dir.path().join("e.db")).unwrap();
    let h: String = c
        .query_row(
            "SELECT md5_ha1 FROM subscriber WHERE user_name = 'alice' AND realm = 'example.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(h, ha1(Algorithm::Md5, "alice", "example.com", "pw"));
}

#[test]
fn open_pool_without_url_is_none() {
    assert!(open_pool(&AuthDbConfig::default()).unwrap().is_none());
}
