//! Hot reload of certificates (OpenSIPS MI `tls_reload`): the configuration stays, the files
//! are read again into a new [`TlsContexts`], and the new set replaces the old one atomically.
//! A session holds an `Arc` of the set it started with, so established connections keep their
//! contexts and only new handshakes use the new ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::TlsConfig;
use crate::context::TlsContexts;
use crate::load::LoadError;

/// The configuration and the current context set.
pub struct TlsManager {
    config: TlsConfig,
    current: ArcSwap<TlsContexts>,
    generation: AtomicU64,
}

impl TlsManager {
    /// Builds the first context set; fails as [`TlsContexts::build`] does.
    pub fn new(config: TlsConfig) -> Result<TlsManager, LoadError> {
        let set = TlsContexts::build(&config)?;
        Ok(TlsManager {
            config,
            current: ArcSwap::new(set),
            generation: AtomicU64::new(1),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// The current set, for a new session (lock-free).
    pub fn current(&self) -> Arc<TlsContexts> {
        self.current.load_full()
    }

    /// How many sets have been built (1 after [`TlsManager::new`]); for MI output.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Reads every file again and swaps in the new set. On error the current set stays in
    /// use and the error says which file failed. Returns the new generation.
    pub fn reload(&self) -> Result<u64, LoadError> {
        let set = TlsContexts::build(&self.config)?;
        self.current.store(set);
        Ok(self.generation.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::TlsSession;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    /// The manager is shared by every I/O worker; a session may move with its connection.
    #[test]
    fn shared_and_movable_across_threads() {
        send_sync::<TlsManager>();
        send_sync::<TlsContexts>();
        send::<TlsSession<std::net::TcpStream>>();
    }

    #[test]
    fn a_config_without_server_domains_builds_and_reloads() {
        let m = TlsManager::new(TlsConfig::from_params([]).unwrap()).unwrap();
        assert_eq!(m.current().server_domains().count(), 0);
        assert_eq!(m.current().client_domains().count(), 1);
        let before = m.current();
        assert_eq!(m.reload().unwrap(), 2);
        assert!(!Arc::ptr_eq(&before, &m.current()));
    }
}
