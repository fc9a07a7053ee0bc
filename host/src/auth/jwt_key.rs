//! The key a JSON Web Token is checked with, as `jwt_script_authorize()` receives it: an HMAC
//! secret, or the PEM text of an RSA or EC P-256 public key. The key alone decides the one
//! algorithm it verifies (RFC 8725 §3.1: never the token's `alg` header): a secret only HS256
//! (RFC 7518 §3.2), an RSA key only RS256 (§3.3), a P-256 key only ES256 (§3.4). So a token
//! signed HS256 with a public key's PEM text as the secret never passes where that public key
//! is configured, and `alg: none` never passes at all.
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;

/// The JWS algorithms a [`Key`] can verify (RFC 7518 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC with SHA-256 (RFC 7518 §3.2).
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4).
    Es256,
}

impl Algorithm {
    /// Its `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// Shortest HMAC secret: the hash's output size (RFC 7518 §3.2: "a key of the same size as
/// the hash output ... or larger MUST be used").
pub const MIN_SECRET_LEN: usize = 32;
/// Smallest RSA modulus, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: u32 = 2048;

/// A verification key.
#[derive(Clone)]
pub enum Key {
    /// An HS256 secret: the bytes of the text as given.
    Hmac(Vec<u8>),
    /// An RS256 public key.
    Rsa(PKey<Public>),
    /// An ES256 public key (P-256).
    Ec(PKey<Public>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a secret in a log line.
        write!(f, "Key({})", self.algorithm().name())
    }
}

/// Why a key text is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty text.
    #[error("the key is empty")]
    Empty,
    /// A secret shorter than [`MIN_SECRET_LEN`].
    #[error(
        "an HS256 secret needs at least {MIN_SECRET_LEN} bytes (RFC 7518 §3.2), this one has {0}"
    )]
    ShortSecret(usize),
    /// PEM text OpenSSL could not read.
    #[error("unreadable PEM public key: {0}")]
    Pem(String),
    /// A private key where the public one belongs.
    #[error("a private key: give the public key (openssl pkey -pubout)")]
    Private,
    /// A certificate: its public key is wanted.
    #[error("a certificate: give its public key (openssl x509 -pubkey -noout)")]
    Certificate,
    /// An RSA key below [`MIN_RSA_BITS`].
    #[error("an RSA key needs at least {MIN_RSA_BITS} bits (RFC 7518 §3.3), this one has {0}")]
    WeakRsa(u32),
    /// An EC key on another curve than P-256.
    #[error("an EC key must be on P-256 for ES256 (RFC 7518 §3.4), this one is on {0}")]
    Curve(String),
    /// Neither RSA nor EC.
    #[error("only RSA (RS256) and EC P-256 (ES256) public keys are supported")]
    KeyType,
}

impl Key {
    /// Read a key: PEM text (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`) is a public
    /// key, any other text an HMAC secret. A PEM whose lines were joined (spaces instead of
    /// newlines, as a one-line script string may hold it) is read too.
    pub fn parse(text: &str) -> Result<Key, KeyError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(KeyError::Empty);
        }
        if !t.starts_with("-----BEGIN ") {
            let n = text.len();
            return if n < MIN_SECRET_LEN {
                Err(KeyError::ShortSecret(n))
            } else {
                Ok(Key::Hmac(text.as_bytes().to_vec()))
            };
        }
        let (label, pem) = normalize_pem(t).ok_or_else(|| KeyError::Pem("no END line".into()))?;
        if label.contains("PRIVATE KEY") {
            return Err(KeyError::Private);
        }
        if label.contains("CERTIFICATE") {
            return Err(KeyError::Certificate);
        }
        let pkey = if label == "RSA PUBLIC KEY" {
            Rsa::public_key_from_pem_pkcs1(pem.as_bytes()).and_then(PKey::from_rsa)
        } else {
            PKey::public_key_from_pem(pem.as_bytes())
        }
        .map_err(|e| KeyError::Pem(first_reason(&e)))?;
        match pkey.id() {
            Id::RSA => {
                let bits = pkey.bits();
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::WeakRsa(bits));
                }
                Ok(Key::Rsa(pkey))
            }
            Id::EC => {
                let ec = pkey.ec_key().map_err(|e| KeyError::Pem(first_reason(&e)))?;
                let nid = ec.group().curve_name();
                if nid != Some(Nid::X9_62_PRIME256V1) {
                    let name = nid
                        .and_then(|n| n.short_name().ok())
                        .unwrap_or("an unnamed curve");
                    return Err(KeyError::Curve(name.to_string()));
                }
                Ok(Key::Ec(pkey))
            }
            _ => Err(KeyError::KeyType),
        }
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Key::Hmac(_) => Algorithm::Hs256,
            Key::Rsa(_) => Algorithm::Rs256,
            Key::Ec(_) => Algorithm::Es256,
        }
    }
}

fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason())
        .unwrap_or("not a public key")
        .to_string()
}

/// The label and a well-formed PEM (RFC 7468 §2: 64-character lines) of PEM text whose
/// line breaks may have been lost.
fn normalize_pem(t: &str) -> Option<(String, String)> {
    let rest = t.strip_prefix("-----BEGIN ")?;
    let (label, rest) = rest.split_once("-----")?;
    let end = format!("-----END {label}-----");
    let body = &rest[..rest.find(&end)?];
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).ok()?);
        pem.push('\n');
    }
    pem.push_str(&end);
    pem.push('\n');
    Some((label.to_string(), pem))
}
