//! Digest computation (RFC 3261 §22.4, which takes RFC 2617's; RFC 7616 §3.4 for SHA-256 and
//! SHA-512-256; RFC 8760 for their use in SIP): HA1, HA2 and the request digest, for `qop=auth`
//! and for the RFC 2069 form without `qop`. Pure code; comparisons are constant-time.
use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

/// A digest algorithm (RFC 7616 §6.1; the `-sess` variants are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5, what JsSIP and SIP.js send (RFC 2617).
    Md5,
    /// SHA-256 (RFC 7616, RFC 8760).
    Sha256,
    /// SHA-512/256 (RFC 7616, RFC 8760).
    Sha512_256,
}

impl Algorithm {
    /// Every algorithm, most preferred first (the order of parallel challenges, RFC 7616 §3.7).
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha512_256, Algorithm::Sha256, Algorithm::Md5];

    /// The `algorithm=` token.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    /// Parse an `algorithm=` value (case-insensitive). Absent means MD5 (RFC 2617 §3.2.1).
    pub fn from_name(s: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// Length of a digest in lower-case hex.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 | Algorithm::Sha512_256 => 64,
        }
    }

    /// `H(p0 ":" p1 ":" ...)` in lower-case hex.
    pub fn h(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
            Algorithm::Sha512_256 => run::<Sha512_256>(parts),
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// HA1 = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2), what the `subscriber` table's
/// `ha1`, `ha1_sha256` and `ha1_sha512t256` columns hold.
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.h(&[user.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The `qop=auth` values of a response: nonce count (8 hex digits as sent) and client nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QopAuth<'a> {
    /// `nc`, as sent.
    pub nc: &'a str,
    /// `cnonce`.
    pub cnonce: &'a str,
}

/// The request digest (RFC 2617 §3.2.2.1): with `qop=auth`
/// `H(HA1:nonce:nc:cnonce:auth:HA2)`, without `H(HA1:nonce:HA2)`; HA2 = `H(method:uri)`.
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<QopAuth<'_>>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.h(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some(q) => alg.h(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            q.nc.as_bytes(),
            q.cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => alg.h(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether the hex digest a client sent equals `expected` (lower-case hex), ignoring the
/// client's hex case, in constant time.
pub fn response_matches(sent: &str, expected: &str) -> bool {
    let sent: Vec<u8> = sent.bytes().map(|b| b.to_ascii_lowercase()).collect();
    ct_eq(&sent, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5, the example response.
    #[test]
    fn rfc2617_example() {
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(QopAuth {
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
            "GET",
            "/dir/index.html",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1: the same request with MD5 and with SHA-256.
    #[test]
    fn rfc7616_examples() {
        for (alg, want) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ha1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let r = response(
                alg,
                &ha1,
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                Some(QopAuth {
                    nc: "00000001",
                    cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                }),
                "GET",
                "/dir/index.html",
            );
            assert_eq!(r, want, "{}", alg.name());
            assert_eq!(r.len(), alg.hex_len());
        }
    }

    /// SHA-512/256 against Python's hashlib (OpenSSL), an independent implementation:
    /// `hashlib.new('sha512_256', ...)` over RFC 7616 §3.9.2's inputs (the RFC's own printed
    /// values for this example are known errata).
    #[test]
    fn sha512_256_against_hashlib() {
        let user = "J\u{e4}s\u{f8}n Doe";
        assert_eq!(
            Algorithm::Sha512_256.h(&[user.as_bytes(), b"api@example.org"]),
            "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
        );
        let ha1 = ha1(
            Algorithm::Sha512_256,
            user,
            "api@example.org",
            "Secret, or not?",
        );
        let r = response(
            Algorithm::Sha512_256,
            &ha1,
            "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
            Some(QopAuth {
                nc: "00000001",
                cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
            }),
            "GET",
            "/doe.json",
        );
        assert_eq!(
            r,
            "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
        );
    }

    /// RFC 2069 form (no qop): H(HA1:nonce:HA2).
    #[test]
    fn without_qop() {
        let ha1 = ha1(Algorithm::Md5, "alice", "example.com", "pw");
        let ha2 = Algorithm::Md5.h(&[b"REGISTER", b"sip:example.com"]);
        let want = Algorithm::Md5.h(&[ha1.as_bytes(), b"n", ha2.as_bytes()]);
        assert_eq!(
            response(
                Algorithm::Md5,
                &ha1,
                "n",
                None,
                "REGISTER",
                "sip:example.com"
            ),
            want
        );
    }

    #[test]
    fn names_and_comparison() {
        assert_eq!(Algorithm::from_name("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(
            Algorithm::from_name("SHA-512-256"),
            Some(Algorithm::Sha512_256)
        );
        assert_eq!(Algorithm::from_name("MD5-sess"), None);
        assert!(response_matches("ABCdef", "abcdef"));
        assert!(!response_matches("abcde", "abcdef"));
        assert!(!response_matches("abcdee", "abcdef"));
        assert!(ct_eq(b"", b""));
    }
}
