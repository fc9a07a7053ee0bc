//! Bearer JSON Web Tokens (RFC 7515 §7.1 compact JWS, RFC 7519 claims), on arbitrary text,
//! checked with a fixed HMAC secret and the fixture RSA and P-256 public keys. Invariants: no
//! panic; a decoding error is exactly a failed `decode`; a token passes only with the one
//! algorithm its key verifies (never `alg: none`), never at or after `exp` + skew, never
//! before `nbf` - skew.
#![no_main]
use sipcore::auth::jwt::{bearer_token, decode, verify, Key};
use std::sync::LazyLock;

/// The secret the seed corpus's HS256 tokens are signed with.
const SECRET: &str = "fuzzing secret of at least thirty-two bytes";
const NOW: u64 = 1_700_000_000;
const SKEW: u64 = 30;

static KEYS: LazyLock<[Key; 3]> = LazyLock::new(|| {
    let k = |t: &str| Key::parse(t).expect("fixture key");
    [
        k(SECRET),
        k(include_str!("../../host/src/auth/testdata/rsa.pem")),
        k(include_str!("../../host/src/auth/testdata/ec.pem")),
    ]
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let token = bearer_token(text);
    let decoded = decode(token);
    for key in KEYS.iter() {
        match verify(token, key, NOW, SKEW) {
            Ok(d) => {
                assert_eq!(d.alg(), Some(key.algorithm().name()));
                let time = |n: &str| d.claims().get(n).and_then(|v| v.as_f64());
                assert!(time("exp").is_none_or(|e| (NOW as f64) < e + SKEW as f64));
                assert!(time("nbf").is_none_or(|n| (NOW + SKEW) as f64 >= n));
            }
            Err(e) => assert_eq!(e.is_decoding(), decoded.is_err(), "{e}"),
        }
    }
});
