//! HEP (Homer Encapsulation Protocol) codec: HEPv3 and the legacy HEPv1/HEPv2, IPv4 and IPv6.
//!
//! Pure code over byte slices and append-only [`Buffer`]s, no I/O (in the style of smoltcp's `Repr`):
//! [`encode`] turns a [`HepRecord`] into wire bytes with a single reservation of
//! [`encoded_len`] bytes, [`decode`] parses one complete packet and borrows every octet string
//! from the input, and [`v3_frame_len`] finds packet boundaries in a HEP3 TCP/TLS byte stream.
//!
//! Wire formats: HEP3 spec rev. 37 (sipcapture/HEP) for v3; the `hep_hdr`/`hep_timehdr` C
//! structs shared by hep-c, Kamailio, OpenSIPS and sngrep for v1/v2 (see [`v2`]).

pub mod ids;
pub mod v2;
pub mod v3;

use bytes::{BufMut, BytesMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// HEP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HEPv1: fixed header and addresses, no timestamp; UDP only.
    V1,
    /// HEPv2: HEPv1 plus a timestamp and a 16-bit capture id; UDP only.
    V2,
    /// HEPv3: "HEP3" + length + type/length/value chunks; UDP, TCP or TLS.
    V3,
}

impl Version {
    /// The version number as written in configuration (`version=1|2|3`).
    pub const fn number(self) -> u8 {
        match self {
            Version::V1 => 1,
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a configuration number, `None` if it is not 1, 2 or 3.
    pub const fn from_number(n: u8) -> Option<Version> {
        match n {
            1 => Some(Version::V1),
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// One HEP3 chunk kept verbatim: a vendor chunk, or a generic chunk this codec does not map to
/// a [`HepRecord`] field (HEP3 spec §"Chunk format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Vendor id (0 = generic, see [`ids::vendor`]).
    pub vendor: u16,
    /// Chunk type id.
    pub type_id: u16,
    /// Chunk data, without the 6-byte chunk header.
    pub data: &'a [u8],
}

/// What the encoder takes: one captured packet or event plus its metadata.
///
/// HEPv1/v2 carry only `src`, `dst`, `ip_proto`, the timestamp (v2), the low 16 bits of
/// `capture_id` (v2, checked) and `payload`; the other fields are ignored for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HepRecord<'a> {
    /// Wire format to produce.
    pub version: Version,
    /// Source of the captured packet. If `src` and `dst` have different families, both are
    /// sent as IPv6 (IPv4 as `::ffff:a.b.c.d`), since HEP has a single family per packet.
    pub src: SocketAddr,
    /// Destination of the captured packet.
    pub dst: SocketAddr,
    /// IP protocol of the captured packet (see [`ids::ip_proto`]; OpenSIPS uses 50 for WS).
    pub ip_proto: u8,
    /// Payload protocol type (see [`ids::proto_type`]: 1 SIP, 0x59 net event, 100 log, ...).
    pub proto_type: u8,
    /// Capture time, seconds since the Unix epoch.
    pub ts_sec: u32,
    /// Capture time, microseconds part.
    pub ts_usec: u32,
    /// Capture agent id.
    pub capture_id: u32,
    /// Authentication key (chunk 0x000e), v3 only.
    pub auth_key: Option<&'a [u8]>,
    /// Correlation id (chunk 0x0011), e.g. the SIP Call-ID or a connection id; v3 only.
    pub correlation_id: Option<&'a [u8]>,
    /// Capture node name (chunk 0x0013); v3 only.
    pub node_name: Option<&'a [u8]>,
    /// Captured payload (SIP text, JSON event, log line, ...).
    pub payload: &'a [u8],
    /// `payload` is compressed: send it as chunk 0x0010 instead of 0x000f (v3 only).
    pub payload_compressed: bool,
    /// Further chunks, emitted verbatim before the payload (v3 only). Vendor chunks should use
    /// type ids >= 0x0100: heplify-server and hep-js ignore the vendor id.
    pub extra: &'a [Chunk<'a>],
}

/// A decoded packet. Octet strings borrow from the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Version the packet was encoded with.
    pub version: Version,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// IP protocol (0 if the v3 chunk is absent).
    pub ip_proto: u8,
    /// Payload protocol type (0 if the v3 chunk is absent; always SIP for v1/v2).
    pub proto_type: u8,
    /// Timestamp seconds (0 if absent; always 0 for v1).
    pub ts_sec: u32,
    /// Timestamp microseconds (0 if absent; always 0 for v1).
    pub ts_usec: u32,
    /// Capture agent id (0 if absent; 16 bits in v2, 0 in v1).
    pub capture_id: u32,
    /// Authentication key chunk.
    pub auth_key: Option<&'a [u8]>,
    /// Correlation id chunk.
    pub correlation_id: Option<&'a [u8]>,
    /// Node name chunk.
    pub node_name: Option<&'a [u8]>,
    /// Payload (chunk 0x000f, or 0x0010 when only the compressed form is present).
    pub payload: &'a [u8],
    /// The payload came from chunk 0x0010 (compressed); it is not decompressed here.
    pub payload_compressed: bool,
    /// Every other chunk, in packet order: vendor chunks, unknown generic chunks, and the
    /// generic chunks without a field here (keep-alive, VLAN, MACs, ...). When a packet carries
    /// both 0x000f and 0x0010, the 0x0010 chunk is kept here, last.
    pub extra: Vec<Chunk<'a>>,
}

impl<'a> Decoded<'a> {
    /// The decoded packet as a record, e.g. to re-encode or forward it.
    pub fn record(&self) -> HepRecord<'_> {
        HepRecord {
            version: self.version,
            src: self.src,
            dst: self.dst,
            ip_proto: self.ip_proto,
            proto_type: self.proto_type,
            ts_sec: self.ts_sec,
            ts_usec: self.ts_usec,
            capture_id: self.capture_id,
            auth_key: self.auth_key,
            correlation_id: self.correlation_id,
            node_name: self.node_name,
            payload: self.payload,
            payload_compressed: self.payload_compressed,
            extra: &self.extra,
        }
    }
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The packet would be longer than 65535 bytes: the HEP3 total length is a u16, and no
    /// version fits a UDP datagram beyond that.
    #[error("HEP packet would be {len} bytes, the maximum is 65535")]
    TooLong {
        /// Length the packet would have.
        len: usize,
    },
    /// HEPv2 carries a 16-bit capture id and the record's does not fit.
    #[error("capture id {capture_id} does not fit the 16-bit HEPv2 field")]
    CaptureIdTooLarge {
        /// The offending capture id.
        capture_id: u32,
    },
}

/// Why a buffer is not a valid HEP packet. Offsets are from the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer is shorter than the fixed header (or than the header length it declares).
    #[error("truncated HEP packet: need {needed} bytes, have {got}")]
    Truncated {
        /// Bytes the header requires.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The first byte is neither 1, 2 (HEPv1/v2) nor the start of "HEP3".
    #[error("unknown HEP version byte 0x{0:02x}")]
    UnknownVersion(u8),
    /// The buffer starts like HEP3 but the 4-byte magic is not "HEP3".
    #[error("bad HEP3 magic")]
    BadMagic,
    /// The HEP3 total length is below the 6-byte header.
    #[error("HEP3 total length {0} is below the 6-byte header")]
    BadTotalLength(u16),
    /// The HEP3 total length differs from the buffer length.
    #[error("HEP3 total length is {declared} but the packet has {actual} bytes")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Buffer length.
        actual: usize,
    },
    /// Fewer than 6 bytes remain for a chunk header.
    #[error("truncated HEP3 chunk header at offset {offset}")]
    ChunkHeaderTruncated {
        /// Offset of the partial chunk header.
        offset: usize,
    },
    /// A chunk length is below 6 or runs past the end of the packet.
    #[error("bad HEP3 chunk length {length} at offset {offset}")]
    BadChunkLength {
        /// Offset of the chunk.
        offset: usize,
        /// Length field of the chunk.
        length: u16,
    },
    /// A fixed-size generic chunk has the wrong data size.
    #[error("HEP3 chunk 0x{type_id:04x} has {actual} data bytes, expected {expected}")]
    BadChunkSize {
        /// Chunk type id.
        type_id: u16,
        /// Size the specification prescribes.
        expected: usize,
        /// Size found.
        actual: usize,
    },
    /// A chunk this decoder requires is absent: family, both addresses of that family, payload.
    #[error("HEP3 chunk 0x{0:04x} is missing")]
    MissingChunk(u16),
    /// The address family is neither 2 (IPv4) nor 10 (IPv6).
    #[error("unsupported address family {0}")]
    UnsupportedFamily(u8),
    /// The HEPv1/v2 header length does not match the address family.
    #[error("HEPv1/v2 header length {actual}, expected {expected} for this family")]
    BadHeaderLength {
        /// Length implied by the family (16 IPv4, 40 IPv6).
        expected: u8,
        /// Length found.
        actual: u8,
    },
}

/// Largest packet any HEP version may have.
pub const MAX_PACKET_LEN: usize = 65535;

/// Exact number of bytes [`encode`] produces for `rec` (may exceed [`MAX_PACKET_LEN`], in which
/// case `encode` fails).
pub fn encoded_len(rec: &HepRecord<'_>) -> usize {
    match rec.version {
        Version::V3 => v3::encoded_len(rec),
        Version::V1 | Version::V2 => v2::encoded_len(rec),
    }
}

/// The length `rec` encodes to, or why it cannot be encoded.
fn checked_len(rec: &HepRecord<'_>) -> Result<usize, EncodeError> {
    let len = encoded_len(rec);
    if len > MAX_PACKET_LEN {
        return Err(EncodeError::TooLong { len });
    }
    if rec.version == Version::V2 && rec.capture_id > u32::from(u16::MAX) {
        return Err(EncodeError::CaptureIdTooLarge {
            capture_id: rec.capture_id,
        });
    }
    Ok(len)
}

/// A buffer packets are appended to: a `Vec<u8>` (the sender's batches, packets back to back)
/// or a `BytesMut`.
pub trait Buffer: BufMut {
    /// Make room for `additional` more bytes at once.
    fn reserve_for(&mut self, additional: usize);
}

impl Buffer for Vec<u8> {
    fn reserve_for(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

impl Buffer for BytesMut {
    fn reserve_for(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

/// Appends the encoding of `rec` to `out`, reserving [`encoded_len`] bytes once.
/// On error `out` is left unchanged.
pub fn encode(rec: &HepRecord<'_>, out: &mut impl Buffer) -> Result<(), EncodeError> {
    let len = checked_len(rec)?;
    out.reserve_for(len);
    match rec.version {
        Version::V3 => v3::encode_into(rec, len, out),
        Version::V1 | Version::V2 => v2::encode_into(rec, out),
    }
    Ok(())
}

/// Decodes one complete packet of any version: HEP3 when it starts with "HEP3", HEPv1/v2 when
/// the first byte is 1 or 2.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    match buf.first() {
        None => Err(DecodeError::Truncated { needed: 1, got: 0 }),
        Some(b'H') => v3::decode(buf),
        Some(1) | Some(2) => v2::decode(buf),
        Some(&b) => Err(DecodeError::UnknownVersion(b)),
    }
}

/// Frames a HEP3 TCP/TLS stream (packets back to back, HEP3 spec §"Transport").
///
/// `Ok(None)`: fewer than 6 bytes, but what is there matches "HEP3" so far: read more.
/// `Ok(Some(n))`: the packet at the start of `buf` is `n` bytes long (`n` may exceed
/// `buf.len()`). `Err`: not a HEP3 stream ([`DecodeError::BadMagic`]) or a length below the
/// header ([`DecodeError::BadTotalLength`]); the connection should be closed.
pub fn v3_frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    v3::frame_len(buf)
}

/// The addresses of a record in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrPair {
    /// Both IPv4.
    V4([u8; 4], [u8; 4]),
    /// Both IPv6 (IPv4 ones mapped when the families differ).
    V6([u8; 16], [u8; 16]),
}

impl AddrPair {
    /// Picks one family for `src` and `dst`: IPv4 if both are, IPv6 otherwise.
    pub(crate) fn of(src: &SocketAddr, dst: &SocketAddr) -> AddrPair {
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => AddrPair::V4(s.octets(), d.octets()),
            (s, d) => AddrPair::V6(v6(s).octets(), v6(d).octets()),
        }
    }
}

/// `ip` as IPv6, mapping IPv4.
fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        for v in [Version::V1, Version::V2, Version::V3] {
            assert_eq!(Version::from_number(v.number()), Some(v));
        }
        assert_eq!(Version::from_number(0), None);
        assert_eq!(Version::from_number(4), None);
    }

    #[test]
    fn addr_pair_picks_one_family() {
        let v4: SocketAddr = "1.2.3.4:1".parse().unwrap();
        let v6: SocketAddr = "[::2]:1".parse().unwrap();
        assert_eq!(
            AddrPair::of(&v4, &v4),
            AddrPair::V4([1, 2, 3, 4], [1, 2, 3, 4])
        );
        let mapped = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304).octets();
        let two = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2).octets();
        assert_eq!(AddrPair::of(&v4, &v6), AddrPair::V6(mapped, two));
        assert_eq!(AddrPair::of(&v6, &v4), AddrPair::V6(two, mapped));
    }
}
