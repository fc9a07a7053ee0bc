//! [`UserStore`]: one connection to the database a [`DbUrl`] names, with the blocking
//! operations of `sipcore user add|password|rm|list` and the lookup the pool runs. HA1s are
//! computed here, with the domain as the realm (what OpenSIPS and opensips-cli store).
use super::config::Columns;
use super::error::DbError;
use super::postgres::{PgDb, PgTarget};
use super::sqlite::SqliteDb;
use super::url::DbUrl;
use crate::auth::digest::{ha1, Algorithm};
use crate::auth::store::Ha1s;
use std::time::Duration;

/// A connection to the user database.
pub struct UserStore {
    db: Db,
    cols: Columns,
}

enum Db {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

/// The same call on whichever backend.
macro_rules! on {
    ($self:expr, $db:ident => $e:expr) => {
        match &$self.db {
            Db::Sqlite($db) => $e,
            Db::Postgres($db) => $e,
        }
    };
}

impl UserStore {
    /// Open the database, creating it (SQLite: the file) and its table when missing.
    /// `busy`: how long one statement may wait for a lock.
    pub fn open(url: &DbUrl, cols: &Columns, busy: Duration) -> Result<Self, DbError> {
        Self::connect(url, cols, true, busy)
    }

    /// Open an existing database (no file or table is created).
    pub fn open_existing(url: &DbUrl, cols: &Columns, busy: Duration) -> Result<Self, DbError> {
        Self::connect(url, cols, false, busy)
    }

    fn connect(url: &DbUrl, cols: &Columns, create: bool, busy: Duration) -> Result<Self, DbError> {
        match url {
            DbUrl::Sqlite { path } => Ok(UserStore {
                db: Db::Sqlite(SqliteDb::open(path, cols, create, busy)?),
                cols: cols.clone(),
            }),
            DbUrl::Postgres {
                user,
                password,
                host,
                port,
                dbname,
            } => {
                let t = PgTarget {
                    user: user.as_deref(),
                    password: password.as_deref(),
                    host,
                    port: *port,
                    dbname,
                    name: url.to_string(),
                };
                Ok(UserStore {
                    db: Db::Postgres(PgDb::open(&t, cols, create, busy)?),
                    cols: cols.clone(),
                })
            }
        }
    }

    /// The credentials of `user` in `domain`.
    pub fn lookup(&self, user: &str, domain: &str) -> Result<Option<Ha1s>, DbError> {
        on!(self, db => db.lookup(user, domain))
    }

    /// What is stored for `password`: the three HA1s (realm = `domain`), and the password
    /// itself when `store_password` or when lookups need it (`calculate_ha1`).
    pub fn credentials(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        store_password: bool,
    ) -> Ha1s {
        let h = |alg| Some(ha1(alg, user, domain, password));
        Ha1s {
            md5: h(Algorithm::Md5),
            sha256: h(Algorithm::Sha256),
            sha512t256: h(Algorithm::Sha512_256),
            password: (store_password || self.cols.calculate_ha1).then(|| password.to_string()),
        }
    }

    /// Add `user@domain`; [`DbError::UserExists`] when it exists.
    pub fn add(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        store_password: bool,
    ) -> Result<(), DbError> {
        check_names(user, domain)?;
        check_password(password)?;
        let v = self.credentials(user, domain, password, store_password);
        on!(self, db => db.insert(user, domain, &v))
    }

    /// Set the password of `user@domain` (a stored clear password is removed unless
    /// `store_password`); [`DbError::NoSuchUser`] when it does not exist.
    pub fn set_password(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        store_password: bool,
    ) -> Result<(), DbError> {
        check_password(password)?;
        let v = self.credentials(user, domain, password, store_password);
        on!(self, db => db.update(user, domain, &v))
    }

    /// Remove `user@domain`; [`DbError::NoSuchUser`] when it does not exist.
    pub fn remove(&self, user: &str, domain: &str) -> Result<(), DbError> {
        on!(self, db => db.delete(user, domain))
    }

    /// Whether `user@domain` exists.
    pub fn exists(&self, user: &str, domain: &str) -> Result<bool, DbError> {
        on!(self, db => db.exists(user, domain))
    }

    /// Every user as `(user, domain)`, sorted by domain then user.
    pub fn list(&self) -> Result<Vec<(String, String)>, DbError> {
        on!(self, db => db.list())
    }
}

fn check_names(user: &str, domain: &str) -> Result<(), DbError> {
    let bad = |s: &str| {
        s.is_empty()
            || s.len() > 64
            || s.chars()
                .any(|c| c.is_control() || c == '@' || c.is_whitespace())
    };
    if bad(user) {
        return Err(DbError::Invalid(format!(
            "bad user name {user:?} (1-64 characters, no '@', spaces or control characters)"
        )));
    }
    if bad(domain) {
        return Err(DbError::Invalid(format!(
            "bad domain {domain:?} (1-64 characters, no '@', spaces or control characters)"
        )));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), DbError> {
    if password.is_empty() {
        return Err(DbError::Invalid("empty password".into()));
    }
    Ok(())
}

/// `user@domain` split at its last `@`.
pub fn split_aor(aor: &str) -> Result<(&str, &str), DbError> {
    let aor = aor.strip_prefix("sip:").unwrap_or(aor);
    match aor.rsplit_once('@') {
        Some((u, d)) if !u.is_empty() && !d.is_empty() => Ok((u, d)),
        _ => Err(DbError::Invalid(format!("{aor:?} is not user@domain"))),
    }
}
