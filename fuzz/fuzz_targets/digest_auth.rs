//! Digest credentials (`Authorization` / `Proxy-Authorization`, RFC 3261 §25.1, RFC 7616 §3.4)
//! and nonces, on arbitrary text. Invariants: no panic; parsed credentials have every required
//! parameter and, with qop, an `nc` of 8 hex digits whose value matches; a nonce that was not
//! issued by the table is never accepted, and such credentials never authorize.
#![no_main]
use sipcore::auth::credentials::parse;
use sipcore::auth::nonce::{NonceCheck, Nonces};
use sipcore::auth::verify::{authorize, AuthResult, Ctx};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let nonces = Nonces::new([9; 32], 8);
    let issued = nonces.issue(1_000, 30, b"client");
    if let Ok(c) = parse(text) {
        assert!(c.qop.is_none() || c.nc.is_some());
        if let Some((nc, n)) = &c.nc {
            assert_eq!(nc.len(), 8);
            assert_eq!(u32::from_str_radix(nc, 16).ok(), Some(*n));
        }
        let verdict = nonces.check(&c.nonce, 1_000, b"client", c.nc.as_ref().map(|n| n.1));
        if c.nonce != issued {
            assert_eq!(verdict, NonceCheck::Invalid, "a nonce we never issued: {:?}", c.nonce);
        }
    }
    // Arbitrary credentials never authorize: they cannot carry a nonce this table issued.
    let ctx = Ctx { realm: "example.com", method: "REGISTER", now: 1_000, binding: b"client" };
    let (r, who) = authorize([text], &ctx, &nonces, |_, _, alg| {
        Some(sipcore::auth::digest::ha1(alg, "alice", "example.com", "pw"))
    });
    assert!(r != AuthResult::Authorized && who.is_none(), "{text:?} authorized");
    assert_eq!(nonces.check(text, 1_000, b"client", Some(1)), if text == issued {
        NonceCheck::Valid
    } else {
        NonceCheck::Invalid
    });
});
