//! Tests of the frame header codec (RFC 6455 §5.2, §5.7) and Close payloads.

use super::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

#[test]
fn encode_lengths_unmasked() {
    let cases: &[(u64, &[u8])] = &[
        (0, &[0x82, 0x00]),
        (125, &[0x82, 0x7d]),
        (126, &[0x82, 0x7e, 0x00, 0x7e]),
        (65535, &[0x82, 0x7e, 0xff, 0xff]),
        (65536, &[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        (1 << 32, &[0x82, 0x7f, 0, 0, 0, 0x01, 0, 0, 0, 0]),
    ];
    for &(len, want) in cases {
        assert_eq!(
            &*encode_header(true, OpCode::Binary, len, None),
            want,
            "len {len}"
        );
    }
}

#[test]
fn encode_lengths_masked() {
    let cases: &[(u64, &[u8])] = &[
        (0, &[0x81, 0x80, 0x37, 0xfa, 0x21, 0x3d]),
        (125, &[0x81, 0xfd, 0x37, 0xfa, 0x21, 0x3d]),
        (126, &[0x81, 0xfe, 0x00, 0x7e, 0x37, 0xfa, 0x21, 0x3d]),
        (65535, &[0x81, 0xfe, 0xff, 0xff, 0x37, 0xfa, 0x21, 0x3d]),
        (
            65536,
            &[
                0x81, 0xff, 0, 0, 0, 0, 0, 0x01, 0, 0, 0x37, 0xfa, 0x21, 0x3d,
            ],
        ),
        (
            1 << 32,
            &[
                0x81, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0, 0x37, 0xfa, 0x21, 0x3d,
            ],
        ),
    ];
    for &(len, want) in cases {
        assert_eq!(
            &*encode_header(true, OpCode::Text, len, Some(KEY)),
            want,
            "len {len}"
        );
    }
}

#[test]
fn encode_fin_and_opcodes() {
    assert_eq!(&*encode_header(false, OpCode::Text, 3, None), &[0x01, 0x03]);
    assert_eq!(
        &*encode_header(true, OpCode::Continuation, 2, None),
        &[0x80, 0x02]
    );
    assert_eq!(&*encode_header(true, OpCode::Close, 2, None), &[0x88, 0x02]);
    assert_eq!(&*encode_header(true, OpCode::Ping, 5, None), &[0x89, 0x05]);
    assert_eq!(
        &encode_header(true, OpCode::Pong, 5, Some(KEY))[..2],
        &[0x8a, 0x85]
    );
}

#[test]
fn rfc_5_7_examples_written() {
    let mut out = Vec::new();
    write_frame(&mut out, true, OpCode::Text, b"Hello", None);
    assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    out.clear();
    write_frame(&mut out, true, OpCode::Text, b"Hello", Some(KEY));
    assert_eq!(
        out,
        [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    out.clear();
    write_frame(&mut out, true, OpCode::Pong, b"Hello", Some(KEY));
    assert_eq!(
        out,
        [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    );
    out.clear();
    write_frame(&mut out, true, OpCode::Binary, &[0u8; 256], None);
    assert_eq!(&out[..4], &[0x82, 0x7e, 0x01, 0x00]);
    assert_eq!(out.len(), 4 + 256);
    out.clear();
    write_frame(&mut out, true, OpCode::Binary, &[0u8; 65536], None);
    assert_eq!(&out[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
    assert_eq!(out.len(), 10 + 65536);
}

#[test]
fn parse_roundtrip() {
    for len in [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 32, (1 << 63) - 1] {
        for mask in [None, Some(KEY)] {
            let h = encode_header(true, OpCode::Binary, len, mask);
            let got = FrameHeader::parse(&h).unwrap().unwrap();
            assert_eq!(
                got,
                FrameHeader {
                    fin: true,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                    header_len: h.len(),
                }
            );
            // Every strict prefix is incomplete.
            for cut in 0..h.len() {
                assert_eq!(
                    FrameHeader::parse(&h[..cut]),
                    Ok(None),
                    "len {len} cut {cut}"
                );
            }
        }
    }
}

#[test]
fn parse_errors() {
    // RSV1, RSV2, RSV3, detected from the first byte alone.
    for b0 in [0xc1u8, 0xa1, 0x91] {
        assert_eq!(FrameHeader::parse(&[b0]), Err(WsError::ReservedBits));
    }
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        assert_eq!(
            FrameHeader::parse(&[0x80 | op]),
            Err(WsError::ReservedOpcode(op))
        );
    }
    // Control frames: FIN=0, payload > 125 (7-bit 126/127 announce more).
    assert_eq!(
        FrameHeader::parse(&[0x09]),
        Err(WsError::FragmentedControlFrame)
    );
    assert_eq!(
        FrameHeader::parse(&[0x08, 0x00]),
        Err(WsError::FragmentedControlFrame)
    );
    assert_eq!(
        FrameHeader::parse(&[0x89, 0x7e]),
        Err(WsError::ControlFrameTooLong)
    );
    assert_eq!(
        FrameHeader::parse(&[0x88, 0xff]),
        Err(WsError::ControlFrameTooLong)
    );
    assert_eq!(
        FrameHeader::parse(&[0x8a, 0x7d]).map(|h| h.map(|h| h.payload_len)),
        Ok(Some(125))
    );
    // Non-minimal lengths.
    assert_eq!(
        FrameHeader::parse(&[0x82, 0x7e, 0x00, 0x7d]),
        Err(WsError::NonMinimalLength)
    );
    assert_eq!(
        FrameHeader::parse(&[0x82, 0x7e, 0x00, 0x00]),
        Err(WsError::NonMinimalLength)
    );
    assert_eq!(
        FrameHeader::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
        Err(WsError::NonMinimalLength)
    );
    assert_eq!(
        FrameHeader::parse(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5]),
        Err(WsError::NonMinimalLength)
    );
    // 64-bit length with the top bit set.
    assert_eq!(
        FrameHeader::parse(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        Err(WsError::LengthOverflow)
    );
}

#[test]
fn close_codes() {
    for c in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
        4000, 4999,
    ] {
        assert!(is_valid_close_code(c), "{c}");
    }
    for c in [
        0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        assert!(!is_valid_close_code(c), "{c}");
    }
}

#[test]
fn close_payload_truncates_at_char_boundary() {
    assert_eq!(close_payload(1000, ""), [0x03, 0xe8]);
    assert_eq!(close_payload(1002, "bad"), [0x03, 0xea, b'b', b'a', b'd']);
    let ascii = "x".repeat(200);
    let p = close_payload(1009, &ascii);
    assert_eq!(p.len(), 125);
    assert_eq!(&p[..2], &[0x03, 0xf1]);
    // 61 two-byte chars = 122 bytes, then a 3-byte char that would end at 125 > 123.
    let s = format!("{}€", "é".repeat(61));
    let p = close_payload(1000, &s);
    assert_eq!(p.len(), 2 + 122);
    assert!(core::str::from_utf8(&p[2..]).is_ok());
    // Exactly 123 bytes fits.
    let s = "a".repeat(123);
    assert_eq!(close_payload(1000, &s).len(), 125);
}

#[test]
fn opcode_values() {
    for v in 0u8..16 {
        match OpCode::from_u8(v) {
            Some(op) => assert_eq!(op as u8, v),
            None => assert!(matches!(v, 3..=7 | 0xb..=0xf)),
        }
    }
    assert!(OpCode::Close.is_control() && OpCode::Ping.is_control() && OpCode::Pong.is_control());
    assert!(
        !OpCode::Text.is_control()
            && !OpCode::Binary.is_control()
            && !OpCode::Continuation.is_control()
    );
}
