//! The decision of `www_authorize()` / `proxy_authorize()` (RFC 3261 §22.4; OpenSIPS auth's
//! `pre_auth` + `post_auth`, with its return codes), and the challenge of
//! `www_challenge()` / `proxy_challenge()` (RFC 3261 §22.1, RFC 7616 §3.3 and §3.7: one
//! challenge per algorithm, most preferred first). Pure: the credentials header values, the
//! time, the client binding and a credentials lookup are passed in.
use super::credentials::{self, Credentials};
use super::digest::{self, Algorithm, QopAuth};
use super::nonce::{NonceCheck, Nonces};

/// OpenSIPS auth's `auth_result_t`, the script's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    /// -5: malformed credentials or an internal error (no reply sent).
    Error = -5,
    /// -4: no credentials for this realm.
    NoCredentials = -4,
    /// -3: the nonce is stale, replayed or not ours: challenge again with `stale=true`.
    StaleNonce = -3,
    /// -2: wrong password (digest mismatch).
    InvalidPassword = -2,
    /// -1: no such user.
    UserUnknown = -1,
    /// 1: authorized.
    Authorized = 1,
}

/// Who was authorized (`$au`, `$ar`, `$adu`; the credentials used, for `consume_credentials()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// `username` (`$au`).
    pub user: String,
    /// `realm` (`$ar`).
    pub realm: String,
    /// The digest-uri (`$adu`).
    pub uri: String,
    /// The algorithm that was used.
    pub algorithm: Algorithm,
    /// Index among the header values given to [`authorize`] (the one to remove).
    pub index: usize,
}

/// What [`authorize`] needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The realm the script authorizes against.
    pub realm: &'a str,
    /// The request method.
    pub method: &'a str,
    /// Now, in unix seconds.
    pub now: u64,
    /// What nonces are bound to (the client's IP address).
    pub binding: &'a [u8],
}

/// The credentials [`check`] looks at: the first Digest credentials for the realm in a
/// supported algorithm (RFC 7616 §3.7: a client answers one of the challenges).
#[derive(Debug)]
pub struct Found<'v> {
    /// Index among the header values (the one `consume_credentials()` removes).
    pub index: usize,
    /// The parsed credentials.
    pub credentials: Credentials<'v>,
    /// Their algorithm.
    pub algorithm: Algorithm,
}

/// [`find`] found no credentials to check for the realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotFound {
    /// A value for this realm or another did not parse.
    pub malformed: bool,
}

/// Find the credentials to check among `values` (the `Authorization` or
/// `Proxy-Authorization` header values, in order) for `realm`. Each value is parsed once: the
/// caller learns whose credentials they are (to look the user up) and hands them to [`check`].
pub fn find<'v>(
    values: impl IntoIterator<Item = &'v str>,
    realm: &str,
) -> Result<Found<'v>, NotFound> {
    let mut malformed = false;
    for (index, v) in values.into_iter().enumerate() {
        match credentials::parse(v) {
            Ok(c) if c.realm == realm => {
                let alg = c
                    .algorithm
                    .as_deref()
                    .map_or(Some(Algorithm::Md5), Algorithm::from_name);
                if let Some(algorithm) = alg {
                    return Ok(Found {
                        index,
                        credentials: c,
                        algorithm,
                    });
                }
            }
            Ok(_) | Err(credentials::CredentialsError::NotDigest) => {}
            Err(_) => malformed = true,
        }
    }
    Err(NotFound { malformed })
}

/// Check the Digest credentials among `values` (the `Authorization` or `Proxy-Authorization`
/// header values, in order) for `ctx.realm`. `ha1` looks up the stored HA1 of a user for an
/// algorithm (`None`: no such user). The first credentials for the realm in a supported
/// algorithm are the ones checked (RFC 7616 §3.7: a client answers one of the challenges).
pub fn authorize<'v>(
    values: impl IntoIterator<Item = &'v str>,
    ctx: &Ctx<'_>,
    nonces: &Nonces,
    ha1: impl FnMut(&str, &str, Algorithm) -> Option<String>,
) -> (AuthResult, Option<Authorized>) {
    match find(values, ctx.realm) {
        Ok(f) => check(f, ctx, nonces, ha1),
        Err(NotFound { malformed: true }) => (AuthResult::Error, None),
        Err(NotFound { malformed: false }) => (AuthResult::NoCredentials, None),
    }
}

/// Check credentials [`find`] found: the nonce is ours and for this client, the response is
/// the one the stored HA1 gives, then the nonce is fresh and its `nc` new (RFC 3261 §22.4,
/// RFC 7616 §3.4). The nonce's MAC is computed once.
pub fn check(
    found: Found<'_>,
    ctx: &Ctx<'_>,
    nonces: &Nonces,
    mut ha1: impl FnMut(&str, &str, Algorithm) -> Option<String>,
) -> (AuthResult, Option<Authorized>) {
    let Found {
        index,
        credentials: c,
        algorithm: alg,
    } = found;
    if c.userhash || c.response.len() != alg.hex_len() {
        return (AuthResult::Error, None);
    }
    if !nonces.intact(&c.nonce, ctx.binding) {
        // Not ours: from before a restart, or forged. A new challenge costs the client a
        // round trip and nothing else.
        return (AuthResult::StaleNonce, None);
    }
    let Some(stored) = ha1(&c.username, &c.realm, alg) else {
        return (AuthResult::UserUnknown, None);
    };
    let qop = match (&c.nc, &c.cnonce) {
        (Some((nc, _)), Some(cnonce)) => Some(QopAuth { nc, cnonce }),
        _ => None,
    };
    let expected = digest::response(alg, &stored, &c.nonce, qop, ctx.method, &c.uri);
    if !digest::response_matches(&c.response, &expected) {
        return (AuthResult::InvalidPassword, None);
    }
    let nc = c.nc.as_ref().map(|n| n.1);
    match nonces.check_intact(&c.nonce, ctx.now, nc) {
        NonceCheck::Valid => (
            AuthResult::Authorized,
            Some(Authorized {
                user: c.username.into_owned(),
                realm: c.realm.into_owned(),
                uri: c.uri.into_owned(),
                algorithm: alg,
                index,
            }),
        ),
        NonceCheck::Stale | NonceCheck::Replayed | NonceCheck::Invalid => {
            (AuthResult::StaleNonce, None)
        }
    }
}

/// The challenge header values (`WWW-Authenticate` or `Proxy-Authenticate`): one per
/// algorithm in `algorithms` (preferred first), sharing one nonce, with `qop="auth"` when
/// `qop` is set and `stale=true` after a stale nonce.
pub fn challenges(
    realm: &str,
    nonce: &str,
    algorithms: &[Algorithm],
    qop: bool,
    stale: bool,
) -> Vec<String> {
    let realm = escape(realm);
    algorithms
        .iter()
        .map(|a| {
            let mut v = String::with_capacity(80 + realm.len() + nonce.len());
            v.push_str("Digest realm=\"");
            v.push_str(&realm);
            v.push_str("\", nonce=\"");
            v.push_str(nonce);
            v.push_str("\", algorithm=");
            v.push_str(a.name());
            if qop {
                v.push_str(", qop=\"auth\"");
            }
            if stale {
                v.push_str(", stale=true");
            }
            v
        })
        .collect()
}

/// A quoted-string's content (RFC 3261 §25.1: `"` and `\` escaped).
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '"']) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[192, 0, 2, 9];

    fn ctx(now: u64) -> Ctx<'static> {
        Ctx {
            realm: "example.com",
            method: "REGISTER",
            now,
            binding: IP,
        }
    }

    fn store(user: &str, _realm: &str, alg: Algorithm) -> Option<String> {
        (user == "alice").then(|| digest::ha1(alg, "alice", "example.com", "s3cret"))
    }

    /// What a client computes from a challenge (the `nonce`) and its password.
    fn answer(alg: Algorithm, user: &str, pw: &str, nonce: &str, nc: &str) -> String {
        let ha1 = digest::ha1(alg, user, "example.com", pw);
        let r = digest::response(
            alg,
            &ha1,
            nonce,
            Some(QopAuth {
                nc,
                cnonce: "c0ffee",
            }),
            "REGISTER",
            "sip:example.com",
        );
        format!(
            "Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", \
             uri=\"sip:example.com\", response=\"{r}\", algorithm={}, qop=auth, nc={nc}, \
             cnonce=\"c0ffee\"",
            alg.name()
        )
    }

    #[test]
    fn every_algorithm_authorizes_once_per_nc() {
        let n = Nonces::new([5; 32], 64);
        for alg in Algorithm::ALL {
            let nonce = n.issue(100, 30, IP);
            let v = answer(alg, "alice", "s3cret", &nonce, "00000001");
            let (r, who) = authorize([v.as_str()], &ctx(101), &n, store);
            assert_eq!(r, AuthResult::Authorized, "{}", alg.name());
            let who = who.unwrap();
            assert_eq!((who.user.as_str(), who.algorithm), ("alice", alg));
            let (r, _) = authorize([v.as_str()], &ctx(101), &n, store);
            assert_eq!(r, AuthResult::StaleNonce, "replayed nc");
            let v2 = answer(alg, "alice", "s3cret", &nonce, "00000002");
            assert_eq!(
                authorize([v2.as_str()], &ctx(102), &n, store).0,
                AuthResult::Authorized
            );
        }
    }

    #[test]
    fn failures_have_opensips_codes() {
        let n = Nonces::new([6; 32], 64);
        let nonce = n.issue(100, 30, IP);
        let wrong = answer(Algorithm::Md5, "alice", "guess", &nonce, "00000001");
        assert_eq!(
            authorize([wrong.as_str()], &ctx(101), &n, store).0,
            AuthResult::InvalidPassword
        );
        let nobody = answer(Algorithm::Md5, "mallory", "x", &nonce, "00000001");
        assert_eq!(
            authorize([nobody.as_str()], &ctx(101), &n, store).0,
            AuthResult::UserUnknown
        );
        assert_eq!(
            authorize([], &ctx(101), &n, store).0,
            AuthResult::NoCredentials
        );
        let other_realm = answer(Algorithm::Md5, "alice", "s3cret", &nonce, "00000001")
            .replace("realm=\"example.com\"", "realm=\"other.org\"");
        assert_eq!(
            authorize([other_realm.as_str()], &ctx(101), &n, store).0,
            AuthResult::NoCredentials
        );
        assert_eq!(
            authorize(["Digest username="], &ctx(101), &n, store).0,
            AuthResult::Error
        );
        let good = answer(Algorithm::Md5, "alice", "s3cret", &nonce, "00000001");
        assert_eq!(
            authorize([good.as_str()], &ctx(131), &n, store).0,
            AuthResult::StaleNonce,
            "expired"
        );
        let elsewhere = Ctx {
            binding: &[10, 0, 0, 1],
            ..ctx(101)
        };
        assert_eq!(
            authorize([good.as_str()], &elsewhere, &n, store).0,
            AuthResult::StaleNonce,
            "other client"
        );
        assert_eq!(
            authorize([good.as_str()], &ctx(101), &n, store).0,
            AuthResult::Authorized
        );
    }

    #[test]
    fn the_credentials_for_our_realm_are_picked() {
        let n = Nonces::new([7; 32], 64);
        let nonce = n.issue(100, 30, IP);
        let good = answer(Algorithm::Sha256, "alice", "s3cret", &nonce, "00000001");
        let values = [
            "Bearer abc",
            "Digest username=\"x\", realm=\"other\", nonce=\"n\", uri=\"u\", response=\"r\"",
            good.as_str(),
        ];
        let (r, who) = authorize(values, &ctx(101), &n, store);
        assert_eq!(r, AuthResult::Authorized);
        assert_eq!(who.unwrap().index, 2);
    }

    #[test]
    fn challenges_offer_each_algorithm() {
        let c = challenges("ex\"ample", "N", &Algorithm::ALL, true, true);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], "Digest realm=\"ex\\\"ample\", nonce=\"N\", algorithm=SHA-512-256, qop=\"auth\", stale=true");
        assert!(c[2].contains("algorithm=MD5"));
        assert!(!challenges("r", "N", &[Algorithm::Md5], false, false)[0].contains("qop"));
    }
}
