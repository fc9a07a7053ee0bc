//! Where credentials come from: the interface between `www_authorize()` / `proxy_authorize()`
//! and a user store (the `subscriber` table of `db/`, OpenSIPS auth_db's), which answers off
//! the I/O workers: a lookup is handed over and its answer comes back through a completion
//! on the store's own thread, within the store's deadline.
use super::digest::Algorithm;

/// What the store holds for one user (OpenSIPS `subscriber` columns `ha1`, `ha1_sha256`,
/// `ha1_sha512t256`, and `password` when it is kept in clear: `calculate_ha1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ha1s {
    /// `ha1`: H(user:realm:password) with MD5.
    pub md5: Option<String>,
    /// `ha1_sha256`.
    pub sha256: Option<String>,
    /// `ha1_sha512t256`.
    pub sha512t256: Option<String>,
    /// `password`, if stored (then any HA1 can be computed).
    pub password: Option<String>,
}

impl Ha1s {
    /// The HA1 for `alg` of `user` in `realm`: the stored one, else computed from a stored
    /// password; `None` when neither is there.
    pub fn for_algorithm(&self, alg: Algorithm, user: &str, realm: &str) -> Option<String> {
        let stored = match alg {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
            Algorithm::Sha512_256 => &self.sha512t256,
        };
        stored
            .as_ref()
            .filter(|h| h.len() == alg.hex_len())
            .map(|h| h.to_ascii_lowercase())
            .or_else(|| {
                self.password
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| super::digest::ha1(alg, user, realm, p))
            })
    }
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The user exists.
    Found(Ha1s),
    /// No such user in that domain.
    NotFound,
    /// The store failed or did not answer within its deadline (the reason, for the log).
    Failed(String),
}

/// The store cannot take another lookup now (its queue is full, or it is down and failing
/// fast): the request is answered 500/503 at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential store unavailable: {0}")]
pub struct Unavailable(pub String);

/// A completion, run once on the store's thread.
pub type Done = Box<dyn FnOnce(Lookup) + Send + 'static>;

/// A source of credentials that never blocks its caller.
pub trait CredentialStore: Send + Sync {
    /// Look up `user` in `domain`; `done` runs exactly once, on another thread, with the
    /// answer (or [`Lookup::Failed`] at the store's deadline). `Err` (and `done` dropped
    /// unrun) when the lookup cannot even be queued.
    fn lookup(&self, user: &str, domain: &str, done: Done) -> Result<(), Unavailable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ha1_first_then_the_password() {
        let md5 = super::super::digest::ha1(Algorithm::Md5, "alice", "example.com", "pw");
        let h = Ha1s {
            md5: Some(md5.to_uppercase()),
            ..Ha1s::default()
        };
        assert_eq!(
            h.for_algorithm(Algorithm::Md5, "alice", "example.com"),
            Some(md5.clone())
        );
        assert_eq!(
            h.for_algorithm(Algorithm::Sha256, "alice", "example.com"),
            None
        );
        let p = Ha1s {
            password: Some("pw".into()),
            ..Ha1s::default()
        };
        assert_eq!(
            p.for_algorithm(Algorithm::Md5, "alice", "example.com"),
            Some(md5)
        );
        let bad = Ha1s {
            md5: Some("short".into()),
            ..Ha1s::default()
        };
        assert_eq!(
            bad.for_algorithm(Algorithm::Md5, "alice", "example.com"),
            None
        );
    }
}
