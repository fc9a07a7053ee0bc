//! The script's authentication functions (OpenSIPS auth + auth_db): `www_challenge()`,
//! `proxy_challenge()`, `www_authorize()`, `proxy_authorize()`, `consume_credentials()` and
//! `$au $ar $ad $adu`, over the pure [`crate::auth`] code and a [`CredentialStore`].
//!
//! No I/O worker waits for the store. A request whose user is not in the credential cache
//! ends its script run at `*_authorize()` (as `exit`, nothing sent); the lookup goes to the
//! store, and its answer runs the script again from the top on the store's thread with the
//! answer at hand, so statements before `*_authorize()` run twice for such a request (logs,
//! `$var`s). Answers are cached for [`CACHE_TTL`] (a changed password takes effect after at
//! most that long); a store that fails or cannot queue makes `*_authorize()` return -5 at
//! once, and the script answers as it sees fit (500/503).
use super::send::{peer, Core};
use crate::auth::cache::CredCache;
use crate::auth::digest::Algorithm;
use crate::auth::nonce::Nonces;
use crate::auth::store::{CredentialStore, Lookup};
use crate::auth::verify::{self, AuthResult, Authorized};
use crate::sip::Message;
use bytes::Bytes;
use sipcore_abi::ReceiveInfo;
use std::cell::RefCell;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a store answer (found or not) is reused.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached users; beyond, the cache is cleared (a flood of unknown names cannot grow it).
const CACHE_MAX: usize = 100_000;
/// Nonce slots: nonces in use at once before the oldest answer as stale.
const NONCE_SLOTS: usize = 1 << 16;

/// `modparam("auth", ...)` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthConfig {
    /// `nonce_expire`: seconds a nonce is valid (OpenSIPS default 30).
    pub nonce_expire: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { nonce_expire: 30 }
    }
}

struct Auth {
    nonces: Nonces,
    config: OnceLock<AuthConfig>,
    store: OnceLock<Arc<dyn CredentialStore>>,
    cache: Mutex<CredCache>,
    guard: Mutex<crate::auth::guard::Guard>,
}

static AUTH: LazyLock<Auth> = LazyLock::new(|| {
    // A key of its own, derived from the process secret.
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(super::secret::key());
    h.update(b"digest nonces");
    Auth {
        nonces: Nonces::new(h.finalize().into(), NONCE_SLOTS),
        config: OnceLock::new(),
        store: OnceLock::new(),
        cache: Mutex::new(CredCache::new(CACHE_TTL, CACHE_MAX)),
        guard: Mutex::new(Default::default()),
    }
});

/// Set the `auth` parameters and the credential store (at startup; later calls are ignored).
pub fn configure(config: AuthConfig, store: Option<Arc<dyn CredentialStore>>) {
    let _ = AUTH.config.set(config);
    if let Some(s) = store {
        let _ = AUTH.store.set(s);
    }
}

/// A store's answer for one (user, realm).
type Answer = ((String, String), Arc<Lookup>);

thread_local! {
    /// The store's answer for the request being run again (see the module doc).
    static PREFETCHED: RefCell<Option<Answer>> = const { RefCell::new(None) };
}

/// What the auth functions remember during one script run.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// The last `*_authorize()` found a stale nonce: the challenge says `stale=true`.
    pub stale: bool,
    /// Who `*_authorize()` or `jwt_script_authorize()` authenticated.
    pub authorized: Option<Identity>,
}

/// An authenticated identity: what `check_from()` / `check_to()` compare and `$au $ar $ad
/// $adu` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The user name as authenticated (`$au`): `alice`, or `alice@example.com`.
    pub user: String,
    /// `$ar`: the digest realm; for a token, the domain of a `user@domain` claim.
    pub realm: Option<String>,
    /// The domain the From / To host must be (`$ad`); `None`: the user part alone is compared.
    pub domain: Option<String>,
    /// `$adu`: the digest-uri (none for a token).
    pub uri: Option<String>,
    /// The header that carried the credentials, removed by `consume_credentials()`.
    pub header: Option<&'static str>,
}

impl Identity {
    fn digest(a: Authorized, header: &'static str) -> Identity {
        Identity {
            domain: Some(domain_of(&a.user, &a.realm)),
            user: a.user,
            realm: Some(a.realm),
            uri: Some(a.uri),
            header: Some(header),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The client binding of nonces: its IP address.
fn binding(info: &ReceiveInfo) -> Vec<u8> {
    match info.src.to_std().map(|a| a.ip()) {
        Some(std::net::IpAddr::V4(v4)) => v4.octets().to_vec(),
        Some(std::net::IpAddr::V6(v6)) => v6.octets().to_vec(),
        None => Vec::new(),
    }
}

/// The realm when the script gives none: the To host for `www` (a REGISTER's domain), the
/// From host for `proxy` (OpenSIPS `get_realm`).
fn default_realm(msg: &Message, proxy: bool) -> Option<String> {
    let na = if proxy { msg.from() } else { msg.to() }.ok()?;
    let uri = na.uri().ok()?;
    Some(uri.host().to_string())
}

fn header_name(proxy: bool) -> &'static str {
    if proxy {
        "Proxy-Authorization"
    } else {
        "Authorization"
    }
}

/// `www_challenge()` / `proxy_challenge()`: answer 401 / 407 with one challenge per
/// algorithm, most preferred first (RFC 7616 §3.7: SHA-512-256, SHA-256, MD5; JsSIP and
/// SIP.js keep only the last `WWW-Authenticate` header, so MD5 last is also what they need),
/// `qop="auth"` unless the second argument is empty, `stale=true` after a stale nonce. 0
/// (the script ends) when sent, -1 when not.
pub(crate) fn challenge(
    core: &Core,
    info: &ReceiveInfo,
    msg: &Message,
    st: &AuthState,
    proxy: bool,
    args: (Option<&str>, Option<&str>, Option<&str>),
) -> (i64, bool) {
    let realm = match args.0.filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None => match default_realm(msg, proxy) {
            Some(r) => r,
            None => return (-1, false),
        },
    };
    let qop = args
        .1
        .is_none_or(|q| q.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")));
    let algorithms: Vec<Algorithm> = match args.2.filter(|a| !a.trim().is_empty()) {
        None => Algorithm::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .filter_map(|a| Algorithm::from_name(a.trim()))
            .collect(),
    };
    if algorithms.is_empty() {
        crate::log!(Error, "auth", "challenge: no supported algorithm in {:?}", args.2.unwrap_or(""); "peer" => peer(info));
        return (-1, false);
    }
    let expire = AUTH.config.get().copied().unwrap_or_default().nonce_expire;
    let nonce = AUTH.nonces.issue(now_secs(), expire, &binding(info));
    let values = verify::challenges(&realm, &nonce, &algorithms, qop, st.stale);
    let name = if proxy {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let headers: Vec<(&str, &str)> = values.iter().map(|v| (name, v.as_str())).collect();
    let (code, reason) = if proxy {
        (407, "Proxy Authentication Required")
    } else {
        (401, "Unauthorized")
    };
    match core.reply(info, msg, code, reason, &headers) {
        Ok(sent) => (0, sent),
        Err(e) => {
            crate::log!(Warning, "auth", "challenge not sent: {}", e; "peer" => peer(info));
            (-1, false)
        }
    }
}

/// The cached or prefetched answer for `key`.
fn known(user: &str, realm: &str) -> Option<Arc<Lookup>> {
    if let Some(l) = PREFETCHED.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|((u, r), _)| u == user && r == realm)
            .map(|(_, l)| Arc::clone(l))
    }) {
        return Some(l);
    }
    AUTH.cache.lock().ok()?.get(user, realm, Instant::now())
}

fn remember(key: &(String, String), l: &Arc<Lookup>) {
    if let Ok(mut c) = AUTH.cache.lock() {
        c.insert(&key.0, &key.1, Arc::clone(l), Instant::now());
    }
}

/// `www_authorize()` / `proxy_authorize()`: OpenSIPS's return codes ([`AuthResult`]); 0
/// when the script run ends here to wait for the store (it runs again with the answer).
/// `request` is the message as received, for that second run.
pub(crate) fn authorize(
    info: &ReceiveInfo,
    msg: &Message,
    st: &mut AuthState,
    proxy: bool,
    realm: Option<&str>,
) -> i64 {
    st.authorized = None;
    st.stale = false;
    if matches!(msg.method_str(), Some("ACK" | "CANCEL")) {
        // They cannot be challenged (RFC 3261 §22.1); OpenSIPS lets them through too.
        return AuthResult::Authorized as i64;
    }
    let Some(realm) = realm
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| default_realm(msg, proxy))
    else {
        return AuthResult::Error as i64;
    };
    let hname = header_name(proxy);
    let values: Vec<&str> = msg.headers(hname).collect();
    // Whose credentials: the first Digest ones for this realm, parsed once for the lookup and
    // the check. None usable (malformed ones included): challenge again.
    let Ok(found) = verify::find(values.iter().copied(), &realm) else {
        return AuthResult::NoCredentials as i64;
    };
    let user = found.credentials.username.to_string();
    let ip = info.src.to_std().map(|a| a.ip());
    let guarded =
        |f: &mut dyn FnMut(&mut crate::auth::guard::Guard, std::net::IpAddr) -> bool| match (
            ip,
            AUTH.guard.lock(),
        ) {
            (Some(ip), Ok(mut g)) => f(&mut g, ip),
            _ => false,
        };
    if guarded(&mut |g, ip| !g.allowed(&user, ip, Instant::now())) {
        // Too many failures for this user from this address: refused without a check (or a
        // database lookup) until the window ends (`auth::guard`).
        return AuthResult::InvalidPassword as i64;
    }
    let bind = binding(info);
    let lookup = match known(&user, &realm) {
        Some(l) => l,
        None => return defer(info, msg, (user, realm), &values, &bind),
    };
    let ctx = verify::Ctx {
        realm: &realm,
        method: msg.method_str().unwrap_or(""),
        now: now_secs(),
        binding: &bind,
    };
    let (r, who) = match &*lookup {
        Lookup::Failed(e) => {
            // The store logs its state changes (down, answering again) once; one line per
            // request while it is down would flood the log.
            crate::log!(Debug, "auth", "credentials of {}@{} not available: {}", user, realm, e; "peer" => peer(info));
            return AuthResult::Error as i64;
        }
        Lookup::NotFound => verify::check(found, &ctx, &AUTH.nonces, |_, _, _| None),
        Lookup::Found(h) => verify::check(found, &ctx, &AUTH.nonces, |u, r, alg| {
            (u == user).then(|| h.for_algorithm(alg, u, r)).flatten()
        }),
    };
    match r {
        AuthResult::Authorized => {
            guarded(&mut |g, ip| {
                g.succeeded(&user, ip);
                false
            });
            st.authorized = who.map(|w| Identity::digest(w, hname));
        }
        AuthResult::StaleNonce => st.stale = true,
        AuthResult::InvalidPassword | AuthResult::UserUnknown => {
            // One line per failure, in a fixed form fail2ban can match (README).
            let (ip, port) = info
                .src
                .to_std()
                .map_or((String::new(), 0), |a| (a.ip().to_string(), a.port()));
            let why = if r == AuthResult::UserUnknown {
                "unknown user"
            } else {
                "wrong password"
            };
            crate::log!(
                Warning,
                "auth",
                "authentication failed: user={} realm={} ip={} port={} reason={}",
                user,
                realm,
                ip,
                port,
                why
            );
            if guarded(&mut |g, a| g.failed(&user, a, Instant::now())) {
                crate::log!(
                    Warning,
                    "auth",
                    "authentication blocked: user={} realm={} ip={} for {} s after {} failures",
                    user,
                    realm,
                    ip,
                    crate::auth::guard::WINDOW.as_secs(),
                    crate::auth::guard::MAX_FAILURES
                );
            }
        }
        _ => {}
    }
    r as i64
}

/// Hand the lookup to the store; its answer runs the request again. A nonce that is not
/// ours needs no lookup: -3 at once (a new challenge).
fn defer(
    info: &ReceiveInfo,
    msg: &Message,
    key: (String, String),
    values: &[&str],
    bind: &[u8],
) -> i64 {
    let ours = values.iter().any(|v| {
        crate::auth::credentials::parse(v).is_ok_and(|c| AUTH.nonces.intact(&c.nonce, bind))
    });
    if !ours {
        return AuthResult::StaleNonce as i64;
    }
    let Some(store) = AUTH.store.get() else {
        crate::log!(Error, "auth", "*_authorize(): no credential store (modparam(\"auth_db\", \"db_url\", ...))"; "peer" => peer(info));
        return AuthResult::Error as i64;
    };
    let info = *info;
    let request = Bytes::copy_from_slice(msg.as_bytes());
    let k = key.clone();
    let done = Box::new(move |l: Lookup| {
        let l = Arc::new(l);
        remember(&k, &l);
        PREFETCHED.with(|p| *p.borrow_mut() = Some((k, l)));
        super::handle(&info, &request);
        PREFETCHED.with(|p| *p.borrow_mut() = None);
    });
    match store.lookup(&key.0, &key.1, done) {
        Ok(()) => 0,
        Err(e) => {
            // Down or queue full: the store logged that state once (see above).
            crate::log!(Debug, "auth", "{}", e; "peer" => peer(&info));
            AuthResult::Error as i64
        }
    }
}

/// `check_from()` / `check_to()` (OpenSIPS `db_check_from` / `db_check_to` without the uri
/// table): 1 when this run authorized someone and the From (To) URI is that user in the
/// realm it authorized for (user exact, host case-insensitive), -1 otherwise; a client can
/// then neither speak nor register as another.
/// A token naming `alice` (no domain) matches alice at any host: a multi-domain server
/// puts `user@domain` in the claim, or checks `$fd` / `$td` itself.
pub(crate) fn check_identity(msg: &Message, st: &AuthState, to: bool) -> i64 {
    let Some(a) = &st.authorized else {
        return -1;
    };
    let na = if to { msg.to() } else { msg.from() };
    let Some(uri) = na.ok().and_then(|n| n.uri().ok()) else {
        return -1;
    };
    let user = a.user.split_once('@').map_or(a.user.as_str(), |(u, _)| u);
    let host_ok = a
        .domain
        .as_deref()
        .is_none_or(|d| uri.host().eq_ignore_ascii_case(d));
    if uri.user() == Some(user) && host_ok {
        1
    } else {
        -1
    }
}

/// `$au $ar $ad $adu`: from the authorized credentials, else the first Digest credentials
/// of the request (Proxy-Authorization, then Authorization).
pub(crate) fn credential_field(msg: &Message, st: &AuthState, field: Field) -> Option<String> {
    if let Some(a) = &st.authorized {
        return match field {
            Field::User => Some(a.user.clone()),
            Field::Realm => a.realm.clone(),
            Field::Domain => a.domain.clone(),
            Field::Uri => a.uri.clone(),
        };
    }
    let c = ["Proxy-Authorization", "Authorization"]
        .iter()
        .flat_map(|h| msg.headers(h))
        .find_map(|v| crate::auth::credentials::parse(v).ok())?;
    Some(match field {
        Field::User => c.username.into_owned(),
        Field::Realm => c.realm.into_owned(),
        Field::Domain => domain_of(&c.username, &c.realm),
        Field::Uri => c.uri.into_owned(),
    })
}

fn domain_of(user: &str, realm: &str) -> String {
    user.split_once('@').map_or(realm, |(_, d)| d).to_string()
}

/// Which credential field a pseudo-variable reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// `$au`.
    User,
    /// `$ar`.
    Realm,
    /// `$ad`.
    Domain,
    /// `$adu`.
    Uri,
}
