//! What OpenSIPS auth_db's modparams say about the `subscriber` table (`user_column`,
//! `domain_column`, `password_column`, `hash_column_sha256`, `hash_column_sha512t256`,
//! `calculate_ha1`, `use_domain`, with OpenSIPS's defaults), and the pool's own limits.
use super::error::DbError;
use super::url::DbUrl;
use std::time::Duration;

/// The lookup pool's limits (sipcore's auth_db parameters `db_workers`, `db_max_pending`,
/// `db_timeout`; OpenSIPS has none of these, its workers query the database themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Threads, each with its own connection.
    pub workers: usize,
    /// Lookups waiting for a thread; more are refused at once.
    pub max_pending: usize,
    /// Deadline of one lookup, queue wait included.
    pub timeout: Duration,
    /// While the database is down, how often it is tried again.
    pub retry: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            workers: 2,
            max_pending: 256,
            timeout: Duration::from_millis(2000),
            retry: Duration::from_millis(1000),
        }
    }
}

/// auth_db's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthDbConfig {
    /// `db_url` (else the global `db_default_url`); `None`: no database configured.
    pub db_url: Option<DbUrl>,
    /// The table (`www_authorize(realm, table)`'s; `subscriber`).
    pub table: String,
    /// `user_column` (`username`).
    pub user_column: String,
    /// `domain_column` (`domain`).
    pub domain_column: String,
    /// `password_column` (`ha1`): the MD5 HA1, or the clear password with `calculate_ha1`.
    pub password_column: String,
    /// `hash_column_sha256` (`ha1_sha256`).
    pub hash_column_sha256: String,
    /// `hash_column_sha512t256` (`ha1_sha512t256`).
    pub hash_column_sha512t256: String,
    /// `calculate_ha1` (0): `password_column` holds the clear password.
    pub calculate_ha1: bool,
    /// `use_domain` (1): look users up by user name and domain, not by user name only.
    pub use_domain: bool,
    /// The pool's limits.
    pub pool: PoolConfig,
}

impl Default for AuthDbConfig {
    fn default() -> Self {
        AuthDbConfig {
            db_url: None,
            table: "subscriber".into(),
            user_column: "username".into(),
            domain_column: "domain".into(),
            password_column: "ha1".into(),
            hash_column_sha256: "ha1_sha256".into(),
            hash_column_sha512t256: "ha1_sha512t256".into(),
            calculate_ha1: false,
            use_domain: true,
            pool: PoolConfig::default(),
        }
    }
}

/// Whether `name` can be put in SQL as it is (and so cannot inject anything).
pub fn check_identifier(name: &str) -> Result<(), DbError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 63 {
        Ok(())
    } else {
        Err(DbError::BadColumn(name.to_string()))
    }
}

/// The columns of the table, as the store reads and writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Table name.
    pub table: String,
    /// User name.
    pub user: String,
    /// Domain.
    pub domain: String,
    /// Clear password (`password`, or `password_column` with `calculate_ha1`).
    pub clear: String,
    /// MD5 HA1 (`password_column`, or `ha1` with `calculate_ha1`).
    pub md5: String,
    /// SHA-256 HA1.
    pub sha256: String,
    /// SHA-512/256 HA1.
    pub sha512t256: String,
    /// Lookups read the clear password (`calculate_ha1`), not the HA1s.
    pub calculate_ha1: bool,
    /// Lookups match the domain too.
    pub use_domain: bool,
}

impl Columns {
    /// The table's columns for a schema created from nothing, each once (two settings may
    /// name the same column), in declaration order.
    pub fn distinct(&self) -> Vec<&str> {
        let mut cols: Vec<&str> = Vec::new();
        for n in [
            &self.user,
            &self.domain,
            &self.clear,
            &self.md5,
            &self.sha256,
            &self.sha512t256,
        ] {
            if !cols.contains(&n.as_str()) {
                cols.push(n);
            }
        }
        cols
    }
}

impl AuthDbConfig {
    /// The columns, every name checked.
    pub fn columns(&self) -> Result<Columns, DbError> {
        let (clear, md5) = if self.calculate_ha1 {
            (self.password_column.clone(), "ha1".to_string())
        } else {
            ("password".to_string(), self.password_column.clone())
        };
        let c = Columns {
            table: self.table.clone(),
            user: self.user_column.clone(),
            domain: self.domain_column.clone(),
            clear,
            md5,
            sha256: self.hash_column_sha256.clone(),
            sha512t256: self.hash_column_sha512t256.clone(),
            calculate_ha1: self.calculate_ha1,
            use_domain: self.use_domain,
        };
        for n in [
            &c.table,
            &c.user,
            &c.domain,
            &c.clear,
            &c.md5,
            &c.sha256,
            &c.sha512t256,
        ] {
            check_identifier(n)?;
        }
        Ok(c)
    }
}

impl Columns {
    /// The columns defaults give (OpenSIPS's `subscriber`).
    pub fn opensips() -> Columns {
        AuthDbConfig::default()
            .columns()
            .expect("the default names are identifiers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["ha1", "ha1_sha256", "_x", "Username2"] {
            check_identifier(ok).unwrap();
        }
        for bad in ["", "1a", "a b", "a;drop table x", "\"x\"", "ü"] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calculate_ha1_swaps_the_password_column() {
        let c = Columns::opensips();
        assert_eq!((c.clear.as_str(), c.md5.as_str()), ("password", "ha1"));
        let cfg = AuthDbConfig {
            calculate_ha1: true,
            password_column: "password".into(),
            ..AuthDbConfig::default()
        };
        let c = cfg.columns().unwrap();
        assert_eq!((c.clear.as_str(), c.md5.as_str()), ("password", "ha1"));
        let cfg = AuthDbConfig {
            password_column: "pw hash".into(),
            ..AuthDbConfig::default()
        };
        assert!(cfg.columns().is_err());
    }
}
