//! Why a database operation failed: typed errors for the URL, the backends, and the user
//! administration (`sipcore user ...`).
use thiserror::Error;

/// A database failure.
#[derive(Debug, Error)]
pub enum DbError {
    /// The `db_url` cannot be used.
    #[error("db_url {url:?}: {reason}")]
    BadUrl {
        /// The URL as written (a password in it is not shown).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A column name (auth_db `user_column`, ...) that is not a plain SQL identifier.
    #[error("column name {0:?} is not a plain SQL identifier (letters, digits, _)")]
    BadColumn(String),
    /// SQLite reported an error.
    #[error("sqlite {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL reported an error (or could not be reached).
    #[error("{url}: {source}")]
    Postgres {
        /// The URL, without its password.
        url: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// `user add` of a user that exists.
    #[error("user {user}@{domain} already exists")]
    UserExists {
        /// The user name.
        user: String,
        /// The domain.
        domain: String,
    },
    /// `user password` / `user rm` of a user that does not exist.
    #[error("no user {user}@{domain}")]
    NoSuchUser {
        /// The user name.
        user: String,
        /// The domain.
        domain: String,
    },
    /// A value the store refuses (an empty user name or password, ...).
    #[error("{0}")]
    Invalid(String),
}
