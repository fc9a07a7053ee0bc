//! The SQLite backend (`rusqlite`, SQLite built in): one connection to one file, the
//! `subscriber` table created when missing (OpenSIPS's schema, version 8, so OpenSIPS itself
//! can use the file), reads and writes by the configured column names.
use super::config::Columns;
use super::error::DbError;
use crate::auth::store::Ha1s;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// One SQLite connection.
pub struct SqliteDb {
    conn: Connection,
    path: String,
    cols: Columns,
}

/// `None` for NULL or an empty string.
fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl SqliteDb {
    /// Open `path`. With `create`, the file and the table are created when missing; without,
    /// a missing file is an error (a server's lookups never create an empty database).
    /// `busy` is how long a statement waits for another connection's lock.
    pub fn open(
        path: &Path,
        cols: &Columns,
        create: bool,
        busy: Duration,
    ) -> Result<Self, DbError> {
        let name = path.display().to_string();
        let err = |source| DbError::Sqlite {
            path: name.clone(),
            source,
        };
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
            create_private(path).map_err(|e| DbError::Invalid(format!("sqlite {name}: {e}")))?;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(busy).map_err(err)?;
        let db = SqliteDb {
            conn,
            path: name,
            cols: cols.clone(),
        };
        if create {
            db.create_schema()?;
        }
        Ok(db)
    }

    fn err(&self, source: rusqlite::Error) -> DbError {
        DbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// `CREATE TABLE IF NOT EXISTS`, OpenSIPS's `subscriber` with the configured names, and
    /// its row in OpenSIPS's `version` table when the table is new.
    fn create_schema(&self) -> Result<(), DbError> {
        let c = &self.cols;
        let exists: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&c.table],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))?
            > 0;
        if exists {
            return Ok(());
        }
        let defs: Vec<String> = c
            .distinct()
            .iter()
            .map(|n| format!("{n} CHAR(64) DEFAULT '' NOT NULL"))
            .collect();
        let t = &c.table;
        let sql = format!(
            "BEGIN;
             CREATE TABLE {t} (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {defs},
                 CONSTRAINT {t}_account_idx UNIQUE ({u}, {d}));
             CREATE INDEX {t}_username_idx ON {t} ({u});
             CREATE TABLE IF NOT EXISTS version (table_name CHAR(32) NOT NULL,
                 table_version INTEGER DEFAULT 0 NOT NULL,
                 CONSTRAINT t_name_idx UNIQUE (table_name));
             INSERT OR IGNORE INTO version (table_name, table_version) VALUES ('{t}', 8);
             COMMIT;",
            defs = defs.join(", "),
            u = c.user,
            d = c.domain,
        );
        self.conn.execute_batch(&sql).map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.err(e)
        })
    }

    /// The credentials of `user` in `domain` (the domain is ignored without `use_domain`).
    pub fn lookup(&self, user: &str, domain: &str) -> Result<Option<Ha1s>, DbError> {
        let c = &self.cols;
        let filter = if c.use_domain {
            format!("{} = ?1 AND {} = ?2", c.user, c.domain)
        } else {
            format!("{} = ?1 AND ?2 = ?2", c.user)
        };
        let sql = if c.calculate_ha1 {
            format!("SELECT {} FROM {} WHERE {filter} LIMIT 1", c.clear, c.table)
        } else {
            format!(
                "SELECT {}, {}, {} FROM {} WHERE {filter} LIMIT 1",
                c.md5, c.sha256, c.sha512t256, c.table
            )
        };
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let calc = c.calculate_ha1;
        stmt.query_row(params![user, domain], |r| {
            Ok(if calc {
                Ha1s {
                    password: non_empty(r.get(0)?),
                    ..Ha1s::default()
                }
            } else {
                Ha1s {
                    md5: non_empty(r.get(0)?),
                    sha256: non_empty(r.get(1)?),
                    sha512t256: non_empty(r.get(2)?),
                    password: None,
                }
            })
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Whether `user@domain` has a row.
    pub fn exists(&self, user: &str, domain: &str) -> Result<bool, DbError> {
        let c = &self.cols;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} = ?1 AND {} = ?2",
            c.table, c.user, c.domain
        );
        let n: i64 = self
            .conn
            .query_row(&sql, params![user, domain], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Insert a row; [`DbError::UserExists`] when `user@domain` has one.
    pub fn insert(&self, user: &str, domain: &str, v: &Ha1s) -> Result<(), DbError> {
        let c = &self.cols;
        let (names, values) = value_columns(&self.cols, v);
        let marks: Vec<String> = (3..3 + names.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}, {}, {}) VALUES (?1, ?2, {})",
            c.table,
            c.user,
            c.domain,
            names.join(", "),
            marks.join(", ")
        );
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&user, &domain];
        args.extend(values.iter().map(|s| s as &dyn rusqlite::ToSql));
        match self.conn.execute(&sql, args.as_slice()) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(DbError::UserExists {
                    user: user.into(),
                    domain: domain.into(),
                })
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Replace the credentials of `user@domain`; [`DbError::NoSuchUser`] when it has no row.
    pub fn update(&self, user: &str, domain: &str, v: &Ha1s) -> Result<(), DbError> {
        let c = &self.cols;
        let (names, values) = value_columns(&self.cols, v);
        let sets: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} = ?{}", i + 3))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = ?1 AND {} = ?2",
            c.table,
            sets.join(", "),
            c.user,
            c.domain
        );
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&user, &domain];
        args.extend(values.iter().map(|s| s as &dyn rusqlite::ToSql));
        let n = self
            .conn
            .execute(&sql, args.as_slice())
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(DbError::NoSuchUser {
                user: user.into(),
                domain: domain.into(),
            });
        }
        Ok(())
    }

    /// Delete `user@domain`; [`DbError::NoSuchUser`] when it has no row.
    pub fn delete(&self, user: &str, domain: &str) -> Result<(), DbError> {
        let c = &self.cols;
        let sql = format!(
            "DELETE FROM {} WHERE {} = ?1 AND {} = ?2",
            c.table, c.user, c.domain
        );
        let n = self
            .conn
            .execute(&sql, params![user, domain])
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(DbError::NoSuchUser {
                user: user.into(),
                domain: domain.into(),
            });
        }
        Ok(())
    }

    /// Every `(user, domain)`, sorted by domain then user.
    pub fn list(&self) -> Result<Vec<(String, String)>, DbError> {
        let c = &self.cols;
        let sql = format!(
            "SELECT {u}, {d} FROM {t} ORDER BY {d}, {u}",
            u = c.user,
            d = c.domain,
            t = c.table
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// The credential columns and their values ('' for none), each column once.
pub(super) fn value_columns(c: &Columns, v: &Ha1s) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for (n, val) in [
        (&c.clear, &v.password),
        (&c.md5, &v.md5),
        (&c.sha256, &v.sha256),
        (&c.sha512t256, &v.sha512t256),
    ] {
        if !names.contains(n) {
            names.push(n.clone());
            values.push(val.clone().unwrap_or_default());
        }
    }
    (names, values)
}

/// Make `path` an empty file only its owner can read, unless it exists: the HA1s it will hold
/// are as good as the passwords for their realm. (SQLite gives its journal the same mode.)
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
