//! HEPv3 tests: golden vectors written byte by byte from the HEP3 spec, round trips, and every
//! decode error.

use super::super::ids::{chunk as ct, ip_proto, proto_type};
use super::super::{
    decode, encode, encoded_len, v3_frame_len, Chunk, DecodeError, EncodeError, HepRecord, Version,
};
use bytes::BytesMut;
use std::net::SocketAddr;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rec_v4() -> HepRecord<'static> {
    HepRecord {
        version: Version::V3,
        src: sa("192.168.1.10:5060"),
        dst: sa("10.0.0.1:5080"),
        ip_proto: ip_proto::UDP,
        proto_type: proto_type::SIP,
        ts_sec: 1_600_000_000,
        ts_usec: 123_456,
        capture_id: 2001,
        auth_key: Some(b"pw"),
        correlation_id: Some(b"abc@h"),
        node_name: None,
        payload: b"hello",
        payload_compressed: false,
        extra: &[],
    }
}

/// `rec_v4()` encoded by hand from the spec.
#[rustfmt::skip]
const GOLDEN_V4: &[u8] = &[
    b'H', b'E', b'P', b'3', 0x00, 0x7b,             // magic, total length 123
    0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x02,       // family AF_INET
    0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x11,       // ip proto 17
    0x00, 0x00, 0x00, 0x03, 0x00, 0x0a, 192, 168, 1, 10,
    0x00, 0x00, 0x00, 0x04, 0x00, 0x0a, 10, 0, 0, 1,
    0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x13, 0xc4, // src port 5060
    0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x13, 0xd8, // dst port 5080
    0x00, 0x00, 0x00, 0x09, 0x00, 0x0a, 0x5f, 0x5e, 0x10, 0x00, // 1600000000
    0x00, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x01, 0xe2, 0x40, // 123456
    0x00, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x01,       // proto type SIP
    0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x00, 0x07, 0xd1, // capture id 2001
    0x00, 0x00, 0x00, 0x0e, 0x00, 0x08, b'p', b'w', // auth key
    0x00, 0x00, 0x00, 0x11, 0x00, 0x0b, b'a', b'b', b'c', b'@', b'h', // correlation id
    0x00, 0x00, 0x00, 0x0f, 0x00, 0x0b, b'h', b'e', b'l', b'l', b'o', // payload
];

const VENDOR_CHUNK: [Chunk<'static>; 1] = [Chunk {
    vendor: 3,
    type_id: 0x0101,
    data: &[0xaa],
}];

fn rec_v6() -> HepRecord<'static> {
    HepRecord {
        version: Version::V3,
        src: sa("[2001:db8::1]:5060"),
        dst: sa("[::1]:9"),
        ip_proto: ip_proto::WS,
        proto_type: proto_type::NET,
        ts_sec: 1,
        ts_usec: 2,
        capture_id: 0xdead_beef,
        auth_key: None,
        correlation_id: Some(b"42"),
        node_name: Some(b"n1"),
        payload: b"{}",
        payload_compressed: false,
        extra: &VENDOR_CHUNK,
    }
}

/// `rec_v6()` encoded by hand from the spec.
#[rustfmt::skip]
const GOLDEN_V6: &[u8] = &[
    b'H', b'E', b'P', b'3', 0x00, 0x94,             // total length 148
    0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 0x0a,       // family AF_INET6
    0x00, 0x00, 0x00, 0x02, 0x00, 0x07, 0x32,       // ip proto 50 (WS, OpenSIPS)
    0x00, 0x00, 0x00, 0x05, 0x00, 0x16,
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0x00, 0x00, 0x00, 0x06, 0x00, 0x16,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0x00, 0x00, 0x00, 0x07, 0x00, 0x08, 0x13, 0xc4,
    0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x09,
    0x00, 0x00, 0x00, 0x09, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x0b, 0x00, 0x07, 0x59,       // proto type net
    0x00, 0x00, 0x00, 0x0c, 0x00, 0x0a, 0xde, 0xad, 0xbe, 0xef,
    0x00, 0x00, 0x00, 0x11, 0x00, 0x08, b'4', b'2', // correlation id
    0x00, 0x00, 0x00, 0x13, 0x00, 0x08, b'n', b'1', // node name
    0x00, 0x03, 0x01, 0x01, 0x00, 0x07, 0xaa,       // vendor 3 chunk
    0x00, 0x00, 0x00, 0x0f, 0x00, 0x08, b'{', b'}', // payload
];

fn enc(r: &HepRecord<'_>) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(r, &mut out).unwrap();
    assert_eq!(out.len(), encoded_len(r));
    out.to_vec()
}

/// A chunk built independently of the encoder.
fn ch(vendor: u16, type_id: u16, data: &[u8]) -> Vec<u8> {
    let mut v = vendor.to_be_bytes().to_vec();
    v.extend_from_slice(&type_id.to_be_bytes());
    v.extend_from_slice(&(6 + data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A packet built independently of the encoder.
fn pkt(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"HEP3".to_vec();
    v.extend_from_slice(&(6 + body.len() as u16).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

/// The minimal chunks the decoder requires, IPv4, OpenSIPS's order with payload last.
fn minimal() -> Vec<Vec<u8>> {
    vec![
        ch(0, ct::IP_FAMILY, &[2]),
        ch(0, ct::IPV4_SRC, &[1, 2, 3, 4]),
        ch(0, ct::IPV4_DST, &[5, 6, 7, 8]),
        ch(0, ct::PAYLOAD, b"x"),
    ]
}

#[test]
fn golden_v4() {
    assert_eq!(enc(&rec_v4()), GOLDEN_V4);
    assert_eq!(GOLDEN_V4.len(), 123);
}

#[test]
fn golden_v6_with_node_name_and_vendor_chunk() {
    assert_eq!(enc(&rec_v6()), GOLDEN_V6);
    assert_eq!(GOLDEN_V6.len(), 148);
}

#[test]
fn encode_appends_to_existing_buffer() {
    let mut out = BytesMut::from(&b"xy"[..]);
    encode(&rec_v4(), &mut out).unwrap();
    assert_eq!(&out[..2], b"xy");
    assert_eq!(&out[2..], GOLDEN_V4);
}

#[test]
fn decode_golden_v4() {
    let d = decode(GOLDEN_V4).unwrap();
    assert_eq!(d.record(), rec_v4());
    assert!(d.extra.is_empty());
}

#[test]
fn decode_golden_v6_keeps_vendor_chunk() {
    let d = decode(GOLDEN_V6).unwrap();
    assert_eq!(d.extra, VENDOR_CHUNK.to_vec());
    assert_eq!(d.record(), rec_v6());
    assert_eq!(enc(&d.record()), GOLDEN_V6);
}

#[test]
fn mixed_families_are_sent_as_ipv6() {
    let mut r = rec_v4();
    r.dst = sa("[2001:db8::2]:5080");
    let bytes = enc(&r);
    let d = decode(&bytes).unwrap();
    assert_eq!(d.src, sa("[::ffff:192.168.1.10]:5060"));
    assert_eq!(d.dst, r.dst);
}

#[test]
fn compressed_payload_round_trip() {
    let mut r = rec_v4();
    r.payload_compressed = true;
    let bytes = enc(&r);
    // The payload chunk is the last one: type 0x0010.
    assert_eq!(&bytes[bytes.len() - 11..bytes.len() - 7], &[0, 0, 0, 0x10]);
    let d = decode(&bytes).unwrap();
    assert!(d.payload_compressed);
    assert_eq!(d.payload, b"hello");
}

#[test]
fn both_payload_chunks_keep_the_compressed_one_as_extra() {
    let mut c = minimal();
    c.push(ch(0, ct::COMPRESSED_PAYLOAD, b"zz"));
    let p = pkt(&c);
    let d = decode(&p).unwrap();
    assert_eq!((d.payload, d.payload_compressed), (&b"x"[..], false));
    assert_eq!(
        d.extra,
        vec![Chunk {
            vendor: 0,
            type_id: ct::COMPRESSED_PAYLOAD,
            data: b"zz"
        }]
    );
}

#[test]
fn minimal_packet_defaults_and_any_order() {
    let mut c = minimal();
    c.reverse();
    let p = pkt(&c);
    let d = decode(&p).unwrap();
    assert_eq!(d.src, sa("1.2.3.4:0"));
    assert_eq!(d.dst, sa("5.6.7.8:0"));
    assert_eq!(
        (d.ip_proto, d.proto_type, d.ts_sec, d.ts_usec),
        (0, 0, 0, 0)
    );
    assert_eq!(
        (d.capture_id, d.auth_key, d.correlation_id),
        (0, None, None)
    );
    assert_eq!(d.payload, b"x");
}

#[test]
fn unknown_and_vendor_chunks_kept_in_order_and_not_interpreted() {
    let mut c = minimal();
    c.insert(1, ch(0, ct::VLAN_ID, &[0, 7]));
    c.insert(2, ch(5, ct::PAYLOAD, b"vendor5")); // must not override the payload
    c.insert(3, ch(0, 0x0777, b""));
    let p = pkt(&c);
    let d = decode(&p).unwrap();
    assert_eq!(d.payload, b"x");
    let got: Vec<(u16, u16, &[u8])> = d
        .extra
        .iter()
        .map(|c| (c.vendor, c.type_id, c.data))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, ct::VLAN_ID, &[0u8, 7][..]),
            (5, ct::PAYLOAD, &b"vendor5"[..]),
            (0, 0x0777, &b""[..]),
        ]
    );
}

#[test]
fn duplicate_chunk_last_wins() {
    let mut c = minimal();
    c.push(ch(0, ct::SRC_PORT, &[0, 1]));
    c.push(ch(0, ct::SRC_PORT, &[0, 2]));
    let p = pkt(&c);
    assert_eq!(decode(&p).unwrap().src.port(), 2);
}

#[test]
fn max_length_boundary() {
    let base = encoded_len(&HepRecord {
        payload: b"",
        ..rec_v4()
    });
    let big = vec![b'a'; 65535 - base];
    let mut r = rec_v4();
    r.payload = &big;
    let bytes = enc(&r);
    assert_eq!(bytes.len(), 65535);
    assert_eq!(&bytes[4..6], &[0xff, 0xff]);
    assert_eq!(decode(&bytes).unwrap().payload.len(), big.len());

    let bigger = vec![b'a'; 65536 - base];
    r.payload = &bigger;
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&r, &mut out),
        Err(EncodeError::TooLong { len: 65536 })
    );
    assert!(out.is_empty());
}

#[test]
fn frame_len_cases() {
    assert_eq!(v3_frame_len(b""), Ok(None));
    assert_eq!(v3_frame_len(b"H"), Ok(None));
    assert_eq!(v3_frame_len(b"HEP3\x00"), Ok(None));
    assert_eq!(v3_frame_len(&GOLDEN_V4[..6]), Ok(Some(123)));
    assert_eq!(v3_frame_len(GOLDEN_V6), Ok(Some(148)));
    assert_eq!(v3_frame_len(b"X"), Err(DecodeError::BadMagic));
    assert_eq!(v3_frame_len(b"HEX"), Err(DecodeError::BadMagic));
    assert_eq!(v3_frame_len(b"GET / HTTP/1.1"), Err(DecodeError::BadMagic));
    assert_eq!(
        v3_frame_len(b"HEP3\x00\x05"),
        Err(DecodeError::BadTotalLength(5))
    );
    // Two packets back to back split cleanly.
    let stream = [GOLDEN_V4, GOLDEN_V6].concat();
    let n = v3_frame_len(&stream).unwrap().unwrap();
    assert_eq!(decode(&stream[..n]).unwrap().payload, b"hello");
    let m = v3_frame_len(&stream[n..]).unwrap().unwrap();
    assert_eq!(n + m, stream.len());
    assert_eq!(decode(&stream[n..]).unwrap().payload, b"{}");
}

#[test]
fn error_truncated_and_magic() {
    assert_eq!(
        decode(b""),
        Err(DecodeError::Truncated { needed: 1, got: 0 })
    );
    assert_eq!(
        decode(b"HEP3\x00"),
        Err(DecodeError::Truncated { needed: 6, got: 5 })
    );
    assert_eq!(decode(b"HEP4\x00\x06"), Err(DecodeError::BadMagic));
    assert_eq!(decode(b"\x05abc"), Err(DecodeError::UnknownVersion(5)));
    assert_eq!(decode(b"HEP3\x00\x00"), Err(DecodeError::BadTotalLength(0)));
}

#[test]
fn error_length_mismatch() {
    let mut longer = GOLDEN_V4.to_vec();
    longer.push(0);
    assert_eq!(
        decode(&longer),
        Err(DecodeError::LengthMismatch {
            declared: 123,
            actual: 124
        })
    );
    assert_eq!(
        decode(&GOLDEN_V4[..100]),
        Err(DecodeError::LengthMismatch {
            declared: 123,
            actual: 100
        })
    );
}

#[test]
fn error_chunk_header_truncated() {
    let mut c = minimal();
    c.push(vec![0, 0, 0]);
    let p = pkt(&c);
    let offset = p.len() - 3;
    assert_eq!(
        decode(&p),
        Err(DecodeError::ChunkHeaderTruncated { offset })
    );
}

#[test]
fn error_bad_chunk_length() {
    // Length below the chunk header.
    let mut c = minimal();
    c.push(vec![0, 0, 0, 0x0f, 0, 5]);
    let p = pkt(&c);
    let offset = p.len() - 6;
    assert_eq!(
        decode(&p),
        Err(DecodeError::BadChunkLength { offset, length: 5 })
    );
    // Length past the end of the packet.
    let mut c = minimal();
    c.push(vec![0, 0, 0, 0x0f, 0, 9, b'a', b'b']);
    let p = pkt(&c);
    let offset = p.len() - 8;
    assert_eq!(
        decode(&p),
        Err(DecodeError::BadChunkLength { offset, length: 9 })
    );
}

#[test]
fn error_bad_chunk_size() {
    let cases: [(u16, &[u8], usize); 6] = [
        (ct::IP_FAMILY, &[0, 2], 1),
        (ct::IPV4_SRC, &[1, 2, 3], 4),
        (ct::IPV6_DST, &[0; 4], 16),
        (ct::SRC_PORT, &[1], 2),
        (ct::CAPTURE_ID, &[0, 1], 4),
        (ct::KEEP_ALIVE, &[0, 0, 1], 2),
    ];
    for (type_id, data, expected) in cases {
        let mut c = minimal();
        c.push(ch(0, type_id, data));
        assert_eq!(
            decode(&pkt(&c)),
            Err(DecodeError::BadChunkSize {
                type_id,
                expected,
                actual: data.len()
            }),
            "chunk 0x{type_id:04x}"
        );
    }
    // A vendor chunk with the same type id is not checked.
    let mut c = minimal();
    c.push(ch(3, ct::IP_FAMILY, &[0, 2]));
    assert!(decode(&pkt(&c)).is_ok());
}

#[test]
fn error_missing_chunks_and_family() {
    let drop_type = |t: u16| -> Vec<u8> {
        let c: Vec<Vec<u8>> = minimal()
            .into_iter()
            .filter(|c| c[2..4] != t.to_be_bytes())
            .collect();
        pkt(&c)
    };
    for t in [ct::IP_FAMILY, ct::IPV4_SRC, ct::IPV4_DST, ct::PAYLOAD] {
        assert_eq!(decode(&drop_type(t)), Err(DecodeError::MissingChunk(t)));
    }
    // IPv6 family with only IPv4 addresses, then with only a source.
    let mut c = minimal();
    c[0] = ch(0, ct::IP_FAMILY, &[10]);
    assert_eq!(
        decode(&pkt(&c)),
        Err(DecodeError::MissingChunk(ct::IPV6_SRC))
    );
    c.push(ch(0, ct::IPV6_SRC, &[0; 16]));
    assert_eq!(
        decode(&pkt(&c)),
        Err(DecodeError::MissingChunk(ct::IPV6_DST))
    );
    let mut c = minimal();
    c[0] = ch(0, ct::IP_FAMILY, &[7]);
    assert_eq!(decode(&pkt(&c)), Err(DecodeError::UnsupportedFamily(7)));
}
