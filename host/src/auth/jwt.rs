//! JSON Web Tokens as SIP bearer credentials (RFC 8898 §3: `Authorization: Bearer <JWT>`),
//! checked the way OpenSIPS auth_jwt's `jwt_script_authorize()` does, stricter: pure code,
//! time and key passed in.
//!
//! A token is a JWS in compact serialization (RFC 7515 §7.1) with a JSON claims set (RFC 7519
//! §7.2). [`decode`] reads it without trusting anything; [`Decoded::verify`] then checks, in
//! this order: `alg` is not `none` and is the one the [`Key`] verifies (RFC 8725 §3.1, 2.1), no
//! `crit` header (RFC 7515 §4.1.11: we understand no extension), the signature, then `exp`
//! (RFC 7519 §4.1.4) and `nbf` (§4.1.5) against `now` with a clock skew. [`verify`] does both.
pub use super::jwt_key::{Algorithm, Key, KeyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

/// Longest token accepted (a header's worth; real ones are a few hundred bytes).
pub const MAX_TOKEN_LEN: usize = 8192;
/// Longest user name a claim may give.
pub const MAX_USER_LEN: usize = 256;
/// Default clock skew allowed on `exp` and `nbf`, in seconds (RFC 7519 §4.1.4 "small leeway").
pub const DEFAULT_SKEW: u64 = 30;

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JwtError {
    /// Not a JWS compact serialization with JSON object header and claims: nothing decoded.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg: none` (an unsecured JWS, RFC 7519 §6): never accepted.
    #[error("alg none (unsigned token) refused")]
    AlgNone,
    /// The token's `alg` is not the one the key verifies.
    #[error("alg {token} does not match the key, which verifies {}", key.name())]
    WrongAlgorithm {
        /// The token's `alg`.
        token: String,
        /// What the key verifies.
        key: Algorithm,
    },
    /// A `crit` header: extensions that must be understood, and none is.
    #[error("crit header (unsupported extensions)")]
    Critical,
    /// The signature does not verify with the key.
    #[error("bad signature")]
    BadSignature,
    /// `now` is at or after `exp` + skew.
    #[error("expired (exp {exp}, now {now})")]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// The time checked against.
        now: u64,
    },
    /// `now` + skew is before `nbf`.
    #[error("not yet valid (nbf {nbf}, now {now})")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// The time checked against.
        now: u64,
    },
    /// A registered claim of the wrong type (`exp`/`nbf` not a NumericDate).
    #[error("claim {0} is not a NumericDate")]
    BadTime(&'static str),
    /// The claim naming the SIP user is missing or not a usable user name.
    #[error("no usable user name in claim {0:?}")]
    NoUser(String),
}

impl JwtError {
    /// Did decoding fail (OpenSIPS's -2: nothing decoded), rather than validation (-1)?
    pub fn is_decoding(&self) -> bool {
        matches!(self, JwtError::Malformed(_))
    }
}

/// A token whose parts decoded; not yet verified.
#[derive(Debug, Clone)]
pub struct Decoded {
    header_json: String,
    claims_json: String,
    alg: Option<String>,
    crit: bool,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// The token of an `Authorization` value `Bearer <token>` (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1), or the value itself when it is a bare token.
pub fn bearer_token(value: &str) -> &str {
    let v = value.trim();
    match v.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("bearer ") => v[7..].trim_start(),
        _ => v,
    }
}

fn json_object(b64: &str, what: &'static str) -> Result<(String, Map<String, Value>), JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| JwtError::Malformed(what))?;
    let text = String::from_utf8(bytes).map_err(|_| JwtError::Malformed(what))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok((text, m)),
        _ => Err(JwtError::Malformed(what)),
    }
}

/// Decode a token (RFC 7515 §5.2 steps 1-7, RFC 7519 §7.2 steps 1-3 and 10) without
/// verifying it.
pub fn decode(token: &str) -> Result<Decoded, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not three base64url parts"));
    };
    let (header_json, header) = json_object(h, "header is not a base64url JSON object")?;
    let (claims_json, claims) = json_object(c, "claims are not a base64url JSON object")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => Some(a.clone()),
        Some(_) => return Err(JwtError::Malformed("alg is not a string")),
        None => None,
    };
    Ok(Decoded {
        header_json,
        claims_json,
        alg,
        crit: header.contains_key("crit"),
        claims,
        signing_input: token[..h.len() + 1 + c.len()].to_string(),
        signature,
    })
}

/// Check a token with `key` at `now` (seconds since the epoch), allowing `skew` seconds of
/// clock difference: the decoded token when it is authentic and current.
pub fn verify(token: &str, key: &Key, now: u64, skew: u64) -> Result<Decoded, JwtError> {
    let d = decode(token)?;
    d.verify(key, now, skew)?;
    Ok(d)
}

impl Decoded {
    /// OpenSIPS's decoded form (`out_decoded_token`): `header_json.claims_json`.
    pub fn text(&self) -> String {
        format!("{}.{}", self.header_json, self.claims_json)
    }

    /// The header's `alg` (RFC 7515 §4.1.1), if a string.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// The claims set.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Verify the algorithm, signature and validity times (see the module doc).
    pub fn verify(&self, key: &Key, now: u64, skew: u64) -> Result<(), JwtError> {
        let alg = self.alg.as_deref().unwrap_or("");
        if alg.is_empty() || alg.eq_ignore_ascii_case("none") {
            return Err(JwtError::AlgNone);
        }
        if alg != key.algorithm().name() {
            return Err(JwtError::WrongAlgorithm {
                token: alg.to_string(),
                key: key.algorithm(),
            });
        }
        if self.crit {
            return Err(JwtError::Critical);
        }
        if !signature_ok(key, self.signing_input.as_bytes(), &self.signature) {
            return Err(JwtError::BadSignature);
        }
        let now_f = now as f64;
        if let Some(exp) = self.time("exp")? {
            if now_f >= exp + skew as f64 {
                return Err(JwtError::Expired {
                    exp: exp as i64,
                    now,
                });
            }
        }
        if let Some(nbf) = self.time("nbf")? {
            if now_f + (skew as f64) < nbf {
                return Err(JwtError::NotYetValid {
                    nbf: nbf as i64,
                    now,
                });
            }
        }
        Ok(())
    }

    /// A NumericDate claim (RFC 7519 §2: seconds, maybe fractional).
    fn time(&self, name: &'static str) -> Result<Option<f64>, JwtError> {
        match self.claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::BadTime(name)),
            Some(_) => Err(JwtError::BadTime(name)),
        }
    }

    /// The SIP user the string claim `claim` names (`alice` or `alice@example.com`): 1 to
    /// [`MAX_USER_LEN`] bytes without whitespace or control characters.
    pub fn user(&self, claim: &str) -> Result<&str, JwtError> {
        match self.claims.get(claim) {
            Some(Value::String(u))
                if !u.is_empty()
                    && u.len() <= MAX_USER_LEN
                    && !u.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                Ok(u)
            }
            _ => Err(JwtError::NoUser(claim.to_string())),
        }
    }
}

fn signature_ok(key: &Key, input: &[u8], sig: &[u8]) -> bool {
    use openssl::hash::MessageDigest;
    match key {
        Key::Hmac(secret) => {
            use hmac::Mac;
            let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
                return false;
            };
            mac.update(input);
            // Constant-time comparison.
            mac.verify_slice(sig).is_ok()
        }
        Key::Rsa(pk) => openssl::sign::Verifier::new(MessageDigest::sha256(), pk)
            .and_then(|mut v| v.verify_oneshot(sig, input))
            .unwrap_or(false),
        Key::Ec(pk) => {
            // JWS carries R || S, 32 bytes each (RFC 7518 §3.4), not DER.
            if sig.len() != 64 {
                return false;
            }
            let check = || -> Result<bool, openssl::error::ErrorStack> {
                let r = openssl::bn::BigNum::from_slice(&sig[..32])?;
                let s = openssl::bn::BigNum::from_slice(&sig[32..])?;
                let es = openssl::ecdsa::EcdsaSig::from_private_components(r, s)?;
                let digest = openssl::sha::sha256(input);
                es.verify(&digest, &*pk.ec_key()?)
            };
            check().unwrap_or(false)
        }
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
