//! Users in a real database (OpenSIPS's auth_db `subscriber` table): SQLite embedded, in one
//! file, created on first start; or PostgreSQL, for several nodes sharing it.
//!
//! * [`url`]: `db_url` parsing ([`DbUrl`]).
//! * [`config`]: auth_db's modparams ([`AuthDbConfig`]), the column names and pool limits.
//! * [`sqlite`]: the SQLite backend (schema, queries); [`postgres`], the PostgreSQL one.
//! * [`store`]: [`UserStore`], one connection with the blocking operations of
//!   `sipcore user add|password|rm|list`.
//! * [`pool`]: [`Pool`], the non-blocking [`crate::auth::store::CredentialStore`] the I/O
//!   workers use: threads with a bounded queue, a deadline per lookup, fail-fast while down.
//! * [`cli`]: `sipcore user ...`.
pub mod cli;
pub mod config;
pub mod error;
pub mod pool;
pub mod postgres;
pub mod sqlite;
pub mod store;
pub mod url;

pub use config::{AuthDbConfig, Columns, PoolConfig};
pub use error::DbError;
pub use pool::Pool;
pub use store::UserStore;
pub use url::DbUrl;

/// Open the user database of `cfg` (creating the SQLite file and table when missing) and start
/// its lookup pool. `Ok(None)` when no `db_url` is configured.
pub fn open_pool(cfg: &AuthDbConfig) -> Result<Option<Pool>, DbError> {
    let Some(url) = cfg.db_url.clone() else {
        return Ok(None);
    };
    let cols = cfg.columns()?;
    let busy = cfg.pool.timeout;
    // Opened once here, so that a bad file or schema stops the startup with its reason.
    UserStore::open(&url, &cols, busy)?;
    let name = url.to_string();
    let connect: pool::Connect = Box::new(move || {
        UserStore::open_existing(&url, &cols, busy).map(|s| Box::new(s) as Box<dyn pool::Backend>)
    });
    Pool::start(name, cfg.pool, connect).map(Some)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pg;
#[cfg(test)]
mod tests_pool;
