//! `jwt_script_authorize(token, key[, out_decoded[, out_user]])` (OpenSIPS auth_jwt) over the
//! pure check of [`crate::auth::jwt`]: bearer tokens (RFC 8898 §3) from apps whose web backend
//! signs their users in.
//!
//! The token argument may be the whole header value (`$hdr(Authorization)`, `Bearer <JWT>`,
//! RFC 6750 §2.1) or the bare token. On success the user the `username_claim` names becomes
//! the authenticated identity, as after `www_authorize()`: `check_from()` / `check_to()`
//! compare with it, `$au` shows it, and `consume_credentials()` removes the header that
//! carried the token.
use super::authz::{AuthState, Identity};
use super::send::peer;
use crate::auth::jwt::{self, Decoded, JwtError, Key, KeyError};
use crate::sip::Message;
use sipcore_abi::ReceiveInfo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// `modparam("auth_jwt", ...)` values sipcore uses (OpenSIPS's own are accepted and have no
/// effect: they serve `jwt_db_authorize()`, which sipcore has not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `username_claim` (sipcore): the claim naming the SIP user, `sub` by default.
    pub username_claim: String,
    /// `clock_skew` (sipcore): seconds of leeway on `exp` and `nbf`, 30 by default.
    pub clock_skew: u32,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            username_claim: "sub".into(),
            clock_skew: jwt::DEFAULT_SKEW as u32,
        }
    }
}

static CONFIG: OnceLock<JwtConfig> = OnceLock::new();
static DEFAULT: LazyLock<JwtConfig> = LazyLock::new(JwtConfig::default);

fn config() -> &'static JwtConfig {
    CONFIG.get().unwrap_or(&DEFAULT)
}

/// Set the `auth_jwt` parameters (at startup; later calls are ignored).
pub fn configure(c: JwtConfig) {
    let _ = CONFIG.set(c);
}

/// Parsed keys per thread, by their text: a script passes the same few keys every time.
const KEYS_MAX: usize = 64;

thread_local! {
    static KEYS: RefCell<HashMap<String, Result<Arc<Key>, KeyError>>> = RefCell::new(HashMap::new());
}

/// The key of `text`; an unusable one is logged when first seen (per thread).
fn key(text: &str, info: &ReceiveInfo) -> Option<Arc<Key>> {
    KEYS.with(|k| {
        let mut keys = k.borrow_mut();
        if let Some(r) = keys.get(text) {
            return r.as_ref().ok().cloned();
        }
        let parsed = Key::parse(text).map(Arc::new);
        if let Err(e) = &parsed {
            crate::log!(Error, "auth_jwt", "jwt_script_authorize: unusable key: {}", e; "peer" => peer(info));
        }
        if keys.len() >= KEYS_MAX {
            keys.clear();
        }
        keys.insert(text.to_string(), parsed.clone());
        parsed.ok()
    })
}

/// What `jwt_script_authorize()` returns and stores.
#[derive(Debug, Default)]
pub(crate) struct JwtOutcome {
    /// 1 valid; -1 decoded but not valid (bad key, signature, time, user claim); -2 not
    /// decodable (OpenSIPS's codes).
    pub code: i64,
    /// `out_decoded`: `header_json.claims_json` when it decoded (also when invalid, as
    /// OpenSIPS).
    pub decoded: Option<String>,
    /// `out_user`: the user the claim names, when valid.
    pub user: Option<String>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `jwt_script_authorize(token, key, ...)`.
pub(crate) fn script_authorize(
    info: &ReceiveInfo,
    msg: &Message,
    st: &mut AuthState,
    token: &str,
    key_text: &str,
) -> JwtOutcome {
    st.authorized = None;
    st.stale = false;
    let cfg = config();
    let token = jwt::bearer_token(token);
    let d = match jwt::decode(token) {
        Ok(d) => d,
        Err(e) => {
            if !token.is_empty() {
                failed(info, None, &e);
            }
            return JwtOutcome {
                code: -2,
                ..Default::default()
            };
        }
    };
    let decoded = Some(d.text());
    let Some(key) = key(key_text, info) else {
        return JwtOutcome {
            code: -1,
            decoded,
            user: None,
        };
    };
    let claim = cfg.username_claim.as_str();
    let checked = d
        .verify(&key, now_secs(), u64::from(cfg.clock_skew))
        .and_then(|()| d.user(claim));
    match checked {
        Ok(user) => {
            st.authorized = Some(identity(user, carrier(msg, token)));
            JwtOutcome {
                code: 1,
                decoded,
                user: Some(user.to_string()),
            }
        }
        Err(e) => {
            failed(info, Some((&d, claim)), &e);
            JwtOutcome {
                code: -1,
                decoded,
                user: None,
            }
        }
    }
}

/// The identity a valid token's user claim gives: `alice@example.com` is alice in that
/// domain, `alice` alice in any (see [`super::authz::check_identity`]).
fn identity(user: &str, header: Option<&'static str>) -> Identity {
    let domain = user.split_once('@').map(|(_, d)| d.to_string());
    Identity {
        user: user.to_string(),
        realm: domain.clone(),
        domain,
        uri: None,
        header,
    }
}

/// The header whose bearer token is `token`, for `consume_credentials()`.
fn carrier(msg: &Message, token: &str) -> Option<&'static str> {
    ["Authorization", "Proxy-Authorization"]
        .into_iter()
        .find(|h| msg.headers(h).any(|v| jwt::bearer_token(v) == token))
}

/// One log line per refused token, in the form digest failures have (fail2ban). The user is
/// named only when the signature verified (an expired token): otherwise it is the sender's.
fn failed(info: &ReceiveInfo, token: Option<(&Decoded, &str)>, e: &JwtError) {
    let authentic = matches!(
        e,
        JwtError::Expired { .. } | JwtError::NotYetValid { .. } | JwtError::BadTime(_)
    );
    let user = token
        .filter(|_| authentic)
        .and_then(|(d, claim)| d.user(claim).ok())
        .unwrap_or("");
    let (ip, port) = info
        .src
        .to_std()
        .map_or((String::new(), 0), |a| (a.ip().to_string(), a.port()));
    crate::log!(
        Warning,
        "auth_jwt",
        "authentication failed: user={} realm= ip={} port={} reason=token {}",
        user,
        ip,
        port,
        e
    );
}
