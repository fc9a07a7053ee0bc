//! The PostgreSQL backend (the `postgres` crate, without TLS): one connection, the
//! `subscriber` table created when missing (OpenSIPS's schema and `version` row), the same
//! reads and writes as [`super::sqlite`]. Each statement has the store's deadline
//! (`statement_timeout`), and connecting too (`connect_timeout`).
use super::config::Columns;
use super::error::DbError;
use crate::auth::store::Ha1s;
use postgres::error::SqlState;
use postgres::{Client, NoTls};
use std::cell::RefCell;
use std::time::Duration;

/// One PostgreSQL connection.
pub struct PgDb {
    client: RefCell<Client>,
    name: String,
    cols: Columns,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// What [`PgDb::open`] needs from a `postgres://` URL.
pub struct PgTarget<'a> {
    /// User.
    pub user: Option<&'a str>,
    /// Password.
    pub password: Option<&'a str>,
    /// Host, or a Unix socket directory (starting with `/`).
    pub host: &'a str,
    /// Port.
    pub port: u16,
    /// Database.
    pub dbname: &'a str,
    /// The URL without its password, for messages.
    pub name: String,
}

impl PgDb {
    /// Connect; with `create`, make the table when missing. `timeout` bounds the connection
    /// and every statement.
    pub fn open(
        t: &PgTarget<'_>,
        cols: &Columns,
        create: bool,
        timeout: Duration,
    ) -> Result<Self, DbError> {
        let mut cfg = postgres::Config::new();
        cfg.host(t.host)
            .port(t.port)
            .dbname(t.dbname)
            .connect_timeout(timeout.max(Duration::from_secs(1)))
            .options(&format!(
                "-c statement_timeout={}",
                timeout.as_millis().max(1)
            ))
            .application_name("sipcore");
        if let Some(u) = t.user {
            cfg.user(u);
        }
        if let Some(p) = t.password {
            cfg.password(p);
        }
        let client = cfg.connect(NoTls).map_err(|source| DbError::Postgres {
            url: t.name.clone(),
            source,
        })?;
        let db = PgDb {
            client: RefCell::new(client),
            name: t.name.clone(),
            cols: cols.clone(),
        };
        if create {
            db.create_schema()?;
        }
        Ok(db)
    }

    fn err(&self, source: postgres::Error) -> DbError {
        DbError::Postgres {
            url: self.name.clone(),
            source,
        }
    }

    fn create_schema(&self) -> Result<(), DbError> {
        let c = &self.cols;
        let mut client = self.client.borrow_mut();
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
                &[&c.table],
            )
            .map_err(|e| self.err(e))?
            .get(0);
        if n > 0 {
            return Ok(());
        }
        let defs: Vec<String> = c
            .distinct()
            .iter()
            .map(|n| format!("{n} VARCHAR(128) DEFAULT '' NOT NULL"))
            .collect();
        let t = &c.table;
        let sql = format!(
            "BEGIN;
             CREATE TABLE {t} (id SERIAL PRIMARY KEY NOT NULL, {defs},
                 CONSTRAINT {t}_account_idx UNIQUE ({u}, {d}));
             CREATE INDEX {t}_username_idx ON {t} ({u});
             CREATE TABLE IF NOT EXISTS version (table_name VARCHAR(32) NOT NULL,
                 table_version INTEGER DEFAULT 0 NOT NULL,
                 CONSTRAINT version_t_name_idx UNIQUE (table_name));
             INSERT INTO version (table_name, table_version) VALUES ('{t}', 8) ON CONFLICT DO NOTHING;
             COMMIT;",
            defs = defs.join(", "),
            u = c.user,
            d = c.domain,
        );
        client.batch_execute(&sql).map_err(|e| self.err(e))
    }

    /// The credentials of `user` in `domain` (the domain is ignored without `use_domain`).
    pub fn lookup(&self, user: &str, domain: &str) -> Result<Option<Ha1s>, DbError> {
        let c = &self.cols;
        let filter = if c.use_domain {
            format!("{} = $1 AND {} = $2", c.user, c.domain)
        } else {
            format!("{} = $1 AND $2::text IS NOT NULL", c.user)
        };
        let what = if c.calculate_ha1 {
            c.clear.clone()
        } else {
            format!("{}, {}, {}", c.md5, c.sha256, c.sha512t256)
        };
        let sql = format!("SELECT {what} FROM {} WHERE {filter} LIMIT 1", c.table);
        let row = self
            .client
            .borrow_mut()
            .query_opt(&sql, &[&user, &domain])
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| {
            if c.calculate_ha1 {
                Ha1s {
                    password: non_empty(r.get(0)),
                    ..Ha1s::default()
                }
            } else {
                Ha1s {
                    md5: non_empty(r.get(0)),
                    sha256: non_empty(r.get(1)),
                    sha512t256: non_empty(r.get(2)),
                    password: None,
                }
            }
        }))
    }

    /// Whether `user@domain` has a row.
    pub fn exists(&self, user: &str, domain: &str) -> Result<bool, DbError> {
        let c = &self.cols;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} = $1 AND {} = $2",
            c.table, c.user, c.domain
        );
        let n: i64 = self
            .client
            .borrow_mut()
            .query_one(&sql, &[&user, &domain])
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(n > 0)
    }

    /// Insert a row; [`DbError::UserExists`] when `user@domain` has one.
    pub fn insert(&self, user: &str, domain: &str, v: &Ha1s) -> Result<(), DbError> {
        let c = &self.cols;
        let (names, values) = super::sqlite::value_columns(c, v);
        let marks: Vec<String> = (3..3 + names.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}, {}, {}) VALUES ($1, $2, {})",
            c.table,
            c.user,
            c.domain,
            names.join(", "),
            marks.join(", ")
        );
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&user, &domain];
        args.extend(
            values
                .iter()
                .map(|s| s as &(dyn postgres::types::ToSql + Sync)),
        );
        match self.client.borrow_mut().execute(&sql, &args) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(DbError::UserExists {
                user: user.into(),
                domain: domain.into(),
            }),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Replace the credentials of `user@domain`; [`DbError::NoSuchUser`] when it has no row.
    pub fn update(&self, user: &str, domain: &str, v: &Ha1s) -> Result<(), DbError> {
        let c = &self.cols;
        let (names, values) = super::sqlite::value_columns(c, v);
        let sets: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n} = ${}", i + 3))
            .collect();
        let sql = format!(
            "UPDATE {} SET {} WHERE {} = $1 AND {} = $2",
            c.table,
            sets.join(", "),
            c.user,
            c.domain
        );
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&user, &domain];
        args.extend(
            values
                .iter()
                .map(|s| s as &(dyn postgres::types::ToSql + Sync)),
        );
        let n = self
            .client
            .borrow_mut()
            .execute(&sql, &args)
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
            "DELETE FROM {} WHERE {} = $1 AND {} = $2",
            c.table, c.user, c.domain
        );
        let n = self
            .client
            .borrow_mut()
            .execute(&sql, &[&user, &domain])
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
        let rows = self
            .client
            .borrow_mut()
            .query(&sql, &[])
            .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
