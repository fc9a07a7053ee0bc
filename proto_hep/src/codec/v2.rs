//! HEPv1 and HEPv2, the C-struct formats of hep-c `core_hep.h` (also Kamailio, OpenSIPS,
//! captagent, sngrep):
//!
//! ```text
//! hep_hdr     u8 version (1|2), u8 hdr_len, u8 family, u8 ip_proto, u16 sport BE, u16 dport BE
//! addresses   src, dst: 4+4 bytes (family 2, hdr_len 16) or 16+16 bytes (family 10, hdr_len 40)
//! hep_timehdr (v2 only) u32 tv_sec, u32 tv_usec, u16 capture id, 2 padding bytes = 12 bytes
//! payload     the rest of the datagram (no length field: UDP only)
//! ```
//!
//! `hdr_len` counts `hep_hdr` and the addresses only, not the time header.
//!
//! **Byte order of the time header: little-endian, 12 bytes.** Senders `memcpy` the C struct,
//! so the fields are in host order and the struct carries 2 bytes of tail padding. Every sender
//! and the receivers that matter (Kamailio `sipcapture`, sngrep, the Wireshark `hep.lua`
//! dissector) run on little-endian hosts and read it that way, with the payload at offset 28
//! (IPv4) / 52 (IPv6). We fix little-endian regardless of our host so the output does not
//! depend on the machine. (heplify-server reads these fields big-endian and 10 bytes long; it
//! gets wrong timestamps from every existing v2 sender, so it is not followed.)
//!
//! Unlike OpenSIPS's builder, no trailing zero bytes are appended after the payload.
//! Receivers treat every v1/v2 packet as SIP (proto type 1).

use super::ids::{family, proto_type};
use super::{AddrPair, DecodeError, Decoded, HepRecord, Version};
use bytes::BufMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Length of `hep_hdr`.
pub const FIXED_HEADER_LEN: usize = 8;
/// `hdr_len` for IPv4: `hep_hdr` + 2 IPv4 addresses.
pub const HEADER_LEN_V4: u8 = 16;
/// `hdr_len` for IPv6: `hep_hdr` + 2 IPv6 addresses.
pub const HEADER_LEN_V6: u8 = 40;
/// Length of the v2 time header including its 2 padding bytes.
pub const TIME_HEADER_LEN: usize = 12;

/// Header length (addresses included) for a family value.
fn header_len(fam: u8) -> Result<u8, DecodeError> {
    match fam {
        family::INET => Ok(HEADER_LEN_V4),
        family::INET6 => Ok(HEADER_LEN_V6),
        other => Err(DecodeError::UnsupportedFamily(other)),
    }
}

/// Time header length for a version.
fn time_len(version: Version) -> usize {
    if version == Version::V2 {
        TIME_HEADER_LEN
    } else {
        0
    }
}

/// Exact v1/v2 length of `rec`.
pub(super) fn encoded_len(rec: &HepRecord<'_>) -> usize {
    let hdr = match AddrPair::of(&rec.src, &rec.dst) {
        AddrPair::V4(..) => HEADER_LEN_V4,
        AddrPair::V6(..) => HEADER_LEN_V6,
    };
    usize::from(hdr) + time_len(rec.version) + rec.payload.len()
}

/// Appends `rec` as v1 or v2 (per `rec.version`); the caller checked length and capture id.
pub(super) fn encode_into(rec: &HepRecord<'_>, out: &mut impl BufMut) {
    let pair = AddrPair::of(&rec.src, &rec.dst);
    let (fam, hdr) = match pair {
        AddrPair::V4(..) => (family::INET, HEADER_LEN_V4),
        AddrPair::V6(..) => (family::INET6, HEADER_LEN_V6),
    };
    out.put_u8(rec.version.number());
    out.put_u8(hdr);
    out.put_u8(fam);
    out.put_u8(rec.ip_proto);
    out.put_u16(rec.src.port());
    out.put_u16(rec.dst.port());
    match pair {
        AddrPair::V4(s, d) => {
            out.put_slice(&s);
            out.put_slice(&d);
        }
        AddrPair::V6(s, d) => {
            out.put_slice(&s);
            out.put_slice(&d);
        }
    }
    if rec.version == Version::V2 {
        out.put_u32_le(rec.ts_sec);
        out.put_u32_le(rec.ts_usec);
        out.put_u16_le(u16::try_from(rec.capture_id).unwrap_or(u16::MAX));
        out.put_u16(0); // struct tail padding
    }
    out.put_slice(rec.payload);
}

/// Reads 4 bytes at `at` (bounds proven by the caller's length check).
fn quad(buf: &[u8], at: usize) -> [u8; 4] {
    let mut q = [0u8; 4];
    if let Some(s) = buf.get(at..at + 4) {
        q.copy_from_slice(s);
    }
    q
}

/// Decodes one HEPv1/v2 datagram (the whole of `buf`; the first byte is 1 or 2).
pub(super) fn decode(buf: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let (ver, hdr_len, fam, ip_proto, sport, dport) = match buf.get(..FIXED_HEADER_LEN) {
        Some(&[v, l, f, p, s0, s1, d0, d1]) => (
            v,
            l,
            f,
            p,
            u16::from_be_bytes([s0, s1]),
            u16::from_be_bytes([d0, d1]),
        ),
        _ => {
            return Err(DecodeError::Truncated {
                needed: FIXED_HEADER_LEN,
                got: buf.len(),
            })
        }
    };
    let version = match ver {
        1 => Version::V1,
        2 => Version::V2,
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    let expected = header_len(fam)?;
    if hdr_len != expected {
        return Err(DecodeError::BadHeaderLength {
            expected,
            actual: hdr_len,
        });
    }
    let hdr = usize::from(hdr_len);
    let needed = hdr + time_len(version);
    let (head, payload) = match (buf.get(..needed), buf.get(needed..)) {
        (Some(h), Some(p)) => (h, p),
        _ => {
            return Err(DecodeError::Truncated {
                needed,
                got: buf.len(),
            })
        }
    };
    let (src, dst): (IpAddr, IpAddr) = match head.get(FIXED_HEADER_LEN..hdr) {
        Some(&[a, b, c, d, e, f, g, h]) => (
            Ipv4Addr::new(a, b, c, d).into(),
            Ipv4Addr::new(e, f, g, h).into(),
        ),
        Some(a) if a.len() == 32 => {
            let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
            s.copy_from_slice(&a[..16]);
            d.copy_from_slice(&a[16..]);
            (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into())
        }
        _ => return Err(DecodeError::UnsupportedFamily(fam)),
    };
    let (ts_sec, ts_usec, capture_id) = if version == Version::V2 {
        let cap = head.get(hdr + 8..hdr + 10).map_or(0, |c| match c {
            &[lo, hi] => u16::from_le_bytes([lo, hi]),
            _ => 0,
        });
        (
            u32::from_le_bytes(quad(head, hdr)),
            u32::from_le_bytes(quad(head, hdr + 4)),
            u32::from(cap),
        )
    } else {
        (0, 0, 0)
    };
    Ok(Decoded {
        version,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        ip_proto,
        proto_type: proto_type::SIP,
        ts_sec,
        ts_usec,
        capture_id,
        auth_key: None,
        correlation_id: None,
        node_name: None,
        payload,
        payload_compressed: false,
        extra: Vec::new(),
    })
}

#[cfg(test)]
#[path = "v2_tests.rs"]
mod tests;
