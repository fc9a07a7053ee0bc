//! HEPv1/v2 tests: golden vectors written byte by byte from the C structs, round trips, errors.

use super::super::{decode, encode, encoded_len, DecodeError, EncodeError, HepRecord, Version};
use bytes::BytesMut;
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rec(version: Version) -> HepRecord<'static> {
    HepRecord {
        version,
        src: sa("192.168.1.10:5060"),
        dst: sa("10.0.0.1:5080"),
        ip_proto: 17,
        proto_type: 1,
        ts_sec: 1_600_000_000,
        ts_usec: 123_456,
        capture_id: 2001,
        auth_key: Some(b"ignored"),
        correlation_id: Some(b"ignored"),
        node_name: None,
        payload: b"hello",
        payload_compressed: false,
        extra: &[],
    }
}

/// `rec(V2)` by hand: Kamailio/sngrep layout, time header little-endian, 12 bytes.
#[rustfmt::skip]
const GOLDEN_V2: &[u8] = &[
    0x02, 0x10, 0x02, 0x11,             // version 2, hdr len 16, AF_INET, UDP
    0x13, 0xc4, 0x13, 0xd8,             // ports 5060, 5080 (big-endian)
    192, 168, 1, 10, 10, 0, 0, 1,       // src, dst
    0x00, 0x10, 0x5e, 0x5f,             // tv_sec 1600000000, little-endian
    0x40, 0xe2, 0x01, 0x00,             // tv_usec 123456, little-endian
    0xd1, 0x07, 0x00, 0x00,             // captid 2001 little-endian + 2 padding bytes
    b'h', b'e', b'l', b'l', b'o',       // payload at offset 28, nothing after it
];

/// v1 over IPv6 by hand.
#[rustfmt::skip]
const GOLDEN_V1_V6: &[u8] = &[
    0x01, 0x28, 0x0a, 0x06,             // version 1, hdr len 40, AF_INET6, TCP
    0x13, 0xc4, 0x00, 0x09,             // ports 5060, 9
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    b'h', b'i',                         // payload at offset 40
];

fn enc(r: &HepRecord<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(r, &mut out).unwrap();
    assert_eq!(out.len(), encoded_len(r));
    out.to_vec()
}

#[test]
fn golden_v2_ipv4() {
    assert_eq!(enc(&rec(Version::V2)), GOLDEN_V2);
}

#[test]
fn golden_v1_ipv6() {
    let r = HepRecord {
        src: sa("[2001:db8::1]:5060"),
        dst: sa("[::1]:9"),
        ip_proto: 6,
        payload: b"hi",
        ..rec(Version::V1)
    };
    assert_eq!(enc(&r), GOLDEN_V1_V6);
}

#[test]
fn decode_golden_v2() {
    let d = decode(GOLDEN_V2).unwrap();
    assert_eq!(d.version, Version::V2);
    assert_eq!(
        (d.src, d.dst),
        (sa("192.168.1.10:5060"), sa("10.0.0.1:5080"))
    );
    assert_eq!((d.ip_proto, d.proto_type), (17, 1));
    assert_eq!(
        (d.ts_sec, d.ts_usec, d.capture_id),
        (1_600_000_000, 123_456, 2001)
    );
    assert_eq!(d.payload, b"hello");
    assert_eq!((d.auth_key, d.correlation_id), (None, None));
}

#[test]
fn decode_golden_v1_ipv6() {
    let d = decode(GOLDEN_V1_V6).unwrap();
    assert_eq!(d.version, Version::V1);
    assert_eq!((d.src, d.dst), (sa("[2001:db8::1]:5060"), sa("[::1]:9")));
    assert_eq!((d.ip_proto, d.ts_sec, d.capture_id), (6, 0, 0));
    assert_eq!(d.payload, b"hi");
}

#[test]
fn round_trips() {
    for version in [Version::V1, Version::V2] {
        for (s, d) in [
            ("1.2.3.4:1", "5.6.7.8:2"),
            ("[fe80::1]:1", "[2001:db8::9]:65535"),
        ] {
            let r = HepRecord {
                src: sa(s),
                dst: sa(d),
                auth_key: None,
                correlation_id: None,
                ..rec(version)
            };
            let bytes = enc(&r);
            let back = decode(&bytes).unwrap();
            let mut expect = r;
            if version == Version::V1 {
                (expect.ts_sec, expect.ts_usec, expect.capture_id) = (0, 0, 0);
            }
            assert_eq!(back.record(), expect);
        }
    }
}

#[test]
fn empty_payload_has_no_trailing_bytes() {
    let r = HepRecord {
        payload: b"",
        ..rec(Version::V2)
    };
    assert_eq!(enc(&r).len(), 28);
    assert_eq!(decode(&enc(&r)).unwrap().payload, b"");
}

#[test]
fn capture_id_must_fit_16_bits() {
    let mut r = rec(Version::V2);
    r.capture_id = 65535;
    assert_eq!(&enc(&r)[24..26], &[0xff, 0xff]);
    r.capture_id = 65536;
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&r, &mut out),
        Err(EncodeError::CaptureIdTooLarge { capture_id: 65536 })
    );
    // v1 has no capture id field at all.
    r.version = Version::V1;
    assert!(encode(&r, &mut out).is_ok());
}

#[test]
fn too_long() {
    let big = vec![0u8; 65535 - 27];
    let r = HepRecord {
        payload: &big,
        ..rec(Version::V2)
    };
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&r, &mut out),
        Err(EncodeError::TooLong { len: 65536 })
    );
}

#[test]
fn error_truncated() {
    assert_eq!(
        decode(&GOLDEN_V2[..7]),
        Err(DecodeError::Truncated { needed: 8, got: 7 })
    );
    // v2 header present but the time header cut short.
    assert_eq!(
        decode(&GOLDEN_V2[..20]),
        Err(DecodeError::Truncated {
            needed: 28,
            got: 20
        })
    );
    // v1 with the addresses cut short.
    assert_eq!(
        decode(&GOLDEN_V1_V6[..30]),
        Err(DecodeError::Truncated {
            needed: 40,
            got: 30
        })
    );
}

#[test]
fn error_family_and_header_length() {
    let mut p = GOLDEN_V2.to_vec();
    p[2] = 7;
    assert_eq!(decode(&p), Err(DecodeError::UnsupportedFamily(7)));
    let mut p = GOLDEN_V2.to_vec();
    p[1] = 40;
    assert_eq!(
        decode(&p),
        Err(DecodeError::BadHeaderLength {
            expected: 16,
            actual: 40
        })
    );
    let mut p = GOLDEN_V1_V6.to_vec();
    p[1] = 16;
    assert_eq!(
        decode(&p),
        Err(DecodeError::BadHeaderLength {
            expected: 40,
            actual: 16
        })
    );
}

#[test]
fn error_unknown_version_direct() {
    let mut p = GOLDEN_V2.to_vec();
    p[0] = 3;
    assert_eq!(super::decode(&p), Err(DecodeError::UnknownVersion(3)));
}
