//! Tokens and keys made by an independent implementation (Python's `cryptography`, see
//! `testdata/make_jwt_fixtures.py`), checked with `now` given explicitly.
use super::*;
use crate::auth::jwt_key::KeyError;

const SECRET: &str = include_str!("testdata/hs256.secret");
const RSA: &str = include_str!("testdata/rsa.pem");
const RSA_OTHER: &str = include_str!("testdata/rsa_other.pem");
const EC: &str = include_str!("testdata/ec.pem");
const EC384: &str = include_str!("testdata/ec384.pem");
/// 2023-11-14T22:13:20Z, the fixtures' `iat` and their past `exp` / `nbf`.
const PAST: u64 = 1_700_000_000;
/// 2100-01-01: the far `exp` / `nbf`.
const FAR: u64 = 4_102_444_800;

fn token(name: &str) -> String {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("testdata/tokens.json")).unwrap();
    all[name]
        .as_str()
        .unwrap_or_else(|| panic!("no token {name}"))
        .to_string()
}

fn key(text: &str) -> Key {
    Key::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn check(name: &str, k: &str, now: u64) -> Result<Decoded, JwtError> {
    verify(&token(name), &key(k), now, DEFAULT_SKEW)
}

#[test]
fn valid_tokens_of_each_algorithm() {
    for (name, k, alg) in [
        ("hs256_valid", SECRET, Algorithm::Hs256),
        ("rs256_valid", RSA, Algorithm::Rs256),
        ("es256_valid", EC, Algorithm::Es256),
    ] {
        assert_eq!(key(k).algorithm(), alg);
        let d = check(name, k, PAST).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.user("sub"), Ok("alice"), "{name}");
        let text = d.text();
        assert!(
            text.starts_with(&format!("{{\"alg\":\"{}\"", alg.name()))
                && text.contains("}.{\"sub\":\"alice\""),
            "{text}"
        );
    }
}

#[test]
fn exp_and_nbf_with_skew() {
    // exp PAST: fine until PAST + skew, refused from then on (RFC 7519 §4.1.4: "on or after").
    let exp = "hs256_exp_past";
    assert!(check(exp, SECRET, PAST - 1000).is_ok());
    assert!(check(exp, SECRET, PAST + DEFAULT_SKEW - 1).is_ok());
    assert_eq!(
        check(exp, SECRET, PAST + DEFAULT_SKEW).unwrap_err(),
        JwtError::Expired {
            exp: PAST as i64,
            now: PAST + DEFAULT_SKEW
        }
    );
    assert!(
        verify(&token(exp), &key(SECRET), PAST, 0).is_err(),
        "no skew"
    );
    // nbf FAR: refused now, fine from FAR - skew on.
    let nbf = "hs256_nbf_far";
    assert!(matches!(
        check(nbf, SECRET, PAST),
        Err(JwtError::NotYetValid { .. })
    ));
    assert!(check(nbf, SECRET, FAR - DEFAULT_SKEW - 1).is_err());
    assert!(check(nbf, SECRET, FAR - DEFAULT_SKEW).is_ok());
    // A window [PAST, PAST + 3600).
    let w = "hs256_window";
    assert!(check(w, SECRET, PAST - DEFAULT_SKEW - 1).is_err());
    assert!(check(w, SECRET, PAST + 1800).is_ok());
    assert!(check(w, SECRET, PAST + 3600 + DEFAULT_SKEW).is_err());
    assert_eq!(
        check("hs256_exp_string", SECRET, PAST).unwrap_err(),
        JwtError::BadTime("exp")
    );
}

#[test]
fn wrong_keys_are_refused() {
    assert_eq!(
        check("rs256_other_key", RSA, PAST).unwrap_err(),
        JwtError::BadSignature
    );
    assert_eq!(
        check("rs256_valid", RSA_OTHER, PAST).unwrap_err(),
        JwtError::BadSignature
    );
    assert_eq!(
        check("es256_other_key", EC, PAST).unwrap_err(),
        JwtError::BadSignature
    );
    assert_eq!(
        check("hs256_other_secret", SECRET, PAST).unwrap_err(),
        JwtError::BadSignature
    );
    // A DER signature is not JWS's R || S.
    assert_eq!(
        check("es256_der_signature", EC, PAST).unwrap_err(),
        JwtError::BadSignature
    );
    // An altered claims part.
    let t = token("hs256_valid");
    let mut parts: Vec<&str> = t.split('.').collect();
    let bob = URL_SAFE_NO_PAD.encode(br#"{"sub":"bob","exp":4102444800,"iat":1700000000}"#);
    parts[1] = &bob;
    assert_eq!(
        verify(&parts.join("."), &key(SECRET), PAST, 30).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn the_key_decides_the_algorithm() {
    // HS256 signed with the RSA public key's PEM text, checked where that key is configured.
    assert_eq!(
        check("rs_pem_as_hs256_secret", RSA, PAST).unwrap_err(),
        JwtError::WrongAlgorithm {
            token: "HS256".into(),
            key: Algorithm::Rs256
        }
    );
    // Tokens of one family never pass a key of another.
    assert!(matches!(
        check("rs256_valid", SECRET, PAST),
        Err(JwtError::WrongAlgorithm { .. })
    ));
    assert!(matches!(
        check("es256_valid", RSA, PAST),
        Err(JwtError::WrongAlgorithm { .. })
    ));
    assert!(matches!(
        check("hs256_valid", EC, PAST),
        Err(JwtError::WrongAlgorithm { .. })
    ));
    // alg none, with any key.
    for k in [SECRET, RSA, EC] {
        assert_eq!(check("alg_none", k, PAST).unwrap_err(), JwtError::AlgNone);
    }
    assert_eq!(
        check("hs256_crit", SECRET, PAST).unwrap_err(),
        JwtError::Critical
    );
}

#[test]
fn user_claims() {
    let d = check("hs256_sip_user", SECRET, PAST).unwrap();
    assert_eq!(d.user("sip_user"), Ok("alice@example.com"));
    assert_eq!(d.user("sub"), Ok("42"));
    let d = check("hs256_no_sub", SECRET, PAST).unwrap();
    assert_eq!(d.user("sub"), Err(JwtError::NoUser("sub".into())));
    let d = check("hs256_sub_number", SECRET, PAST).unwrap();
    assert!(d.user("sub").is_err(), "a number is not a user name");
    assert_eq!(
        check("hs256_bob", SECRET, PAST).unwrap().user("sub"),
        Ok("bob")
    );
}

#[test]
fn malformed_tokens_decode_to_nothing() {
    let t = token("hs256_valid");
    let parts: Vec<&str> = t.split('.').collect();
    for bad in [
        String::new(),
        "abc".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{t}.x.y"),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}!", parts[0], parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(b"[1]"),
            parts[1],
            parts[2]
        ),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(b"\xff"),
            parts[1],
            parts[2]
        ),
        "a".repeat(MAX_TOKEN_LEN + 1),
    ] {
        let e = verify(&bad, &key(SECRET), PAST, 30).unwrap_err();
        assert!(e.is_decoding(), "{bad}: {e}");
    }
    assert!(check("hs256_claims_array", SECRET, PAST)
        .unwrap_err()
        .is_decoding());
    // alg none decodes (OpenSIPS's -1, the decoded token given), then fails validation.
    let e = check("alg_none", SECRET, PAST).unwrap_err();
    assert!(!e.is_decoding());
    assert!(decode(&token("alg_none")).is_ok());
}

#[test]
fn bearer_values() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
    assert_eq!(bearer_token("  bearer   abc "), "abc");
    assert_eq!(bearer_token("BEARER x"), "x");
    assert_eq!(bearer_token("abc.def.ghi"), "abc.def.ghi");
    assert_eq!(bearer_token("Digest username=x"), "Digest username=x");
    assert_eq!(bearer_token("Bearé"), "Bearé");
}

#[test]
fn keys() {
    assert!(matches!(Key::parse(""), Err(KeyError::Empty)));
    assert_eq!(
        Key::parse("short secret").unwrap_err(),
        KeyError::ShortSecret(12)
    );
    assert!(matches!(
        Key::parse(EC384).unwrap_err(),
        KeyError::Curve(c) if c == "secp384r1"
    ));
    // A PEM on one line (newlines turned into spaces) is the same key.
    let one_line = RSA.replace('\n', " ");
    assert_eq!(key(&one_line).algorithm(), Algorithm::Rs256);
    assert!(check("rs256_valid", &one_line, PAST).is_ok());
    // A PKCS#1 "RSA PUBLIC KEY" too.
    let pkcs1 = openssl::rsa::Rsa::public_key_from_pem(RSA.as_bytes())
        .unwrap()
        .public_key_to_pem_pkcs1()
        .unwrap();
    let pkcs1 = String::from_utf8(pkcs1).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
    assert!(check("rs256_valid", &pkcs1, PAST).is_ok());
    // Broken or misplaced PEM is never taken as an HMAC secret.
    let cut = &RSA[..RSA.len() / 2];
    assert!(matches!(Key::parse(cut), Err(KeyError::Pem(_))));
    let garbled = RSA.replace("MII", "XXX");
    assert!(matches!(Key::parse(&garbled), Err(KeyError::Pem(_))));
    let private = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
    )
    .unwrap()
    .private_key_to_pem()
    .unwrap();
    assert_eq!(
        Key::parse(std::str::from_utf8(&private).unwrap()).unwrap_err(),
        KeyError::Private
    );
    let weak = openssl::rsa::Rsa::generate(1024)
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    assert_eq!(
        Key::parse(std::str::from_utf8(&weak).unwrap()).unwrap_err(),
        KeyError::WeakRsa(1024)
    );
    assert_eq!(
        format!("{:?}", key(SECRET)),
        "Key(HS256)",
        "no secret in Debug"
    );
}
