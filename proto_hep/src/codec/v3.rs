//! HEPv3 (HEP3 spec rev. 37): `"HEP3"`, u16 total length (header included), then chunks of
//! `u16 vendor, u16 type, u16 length (6-byte chunk header included), data`; all integers in
//! network byte order, no padding.
//!
//! Emitted chunk order (heplify's, which every receiver accepts and Homer tools prefer, with the
//! correlation id before the payload): 0x01 family, 0x02 IP proto, 0x03/0x05 src address,
//! 0x04/0x06 dst address, 0x07 src port, 0x08 dst port, 0x09 seconds, 0x0a microseconds,
//! 0x0b proto type, 0x0c capture id, [0x0e auth key], [0x11 correlation id], [0x13 node name],
//! extra chunks, 0x0f payload (0x10 when compressed). This is the full set Kamailio's
//! sipcapture requires (it drops packets with fewer than 9 of the basic chunks).

use super::ids::{chunk, family, vendor};
use super::{AddrPair, Chunk, DecodeError, Decoded, HepRecord, Version};
use bytes::BufMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The packet magic.
pub const MAGIC: [u8; 4] = *b"HEP3";
/// Packet header length: magic + u16 total length.
pub const HEADER_LEN: usize = 6;
/// Chunk header length: vendor + type + length.
pub const CHUNK_HEADER_LEN: usize = 6;

/// Encoded length of a chunk carrying `data_len` bytes.
const fn chunk_len(data_len: usize) -> usize {
    CHUNK_HEADER_LEN + data_len
}

/// Encoded length of an optional octet-string chunk.
fn opt_len(v: Option<&[u8]>) -> usize {
    v.map_or(0, |d| chunk_len(d.len()))
}

/// Exact v3 length of `rec`.
pub(super) fn encoded_len(rec: &HepRecord<'_>) -> usize {
    let addrs = match AddrPair::of(&rec.src, &rec.dst) {
        AddrPair::V4(..) => 2 * chunk_len(4),
        AddrPair::V6(..) => 2 * chunk_len(16),
    };
    HEADER_LEN
        + 2 * chunk_len(1) // family, ip proto
        + addrs
        + 2 * chunk_len(2) // ports
        + 2 * chunk_len(4) // time
        + chunk_len(1) // proto type
        + chunk_len(4) // capture id
        + opt_len(rec.auth_key)
        + opt_len(rec.correlation_id)
        + opt_len(rec.node_name)
        + rec.extra.iter().map(|c| chunk_len(c.data.len())).sum::<usize>()
        + chunk_len(rec.payload.len())
}

/// Bytes staged on the stack before they are appended to the output buffer.
const STAGE: usize = 256;

/// Appends chunks to the output buffer: the small chunks (headers, addresses, ports, times,
/// ids) are gathered on the stack and appended with one copy, the payload with another,
/// instead of one bounds-checked append each (about 30 per packet).
struct Writer<'a, B: BufMut> {
    out: &'a mut B,
    stage: [u8; STAGE],
    staged: usize,
}

impl<'a, B: BufMut> Writer<'a, B> {
    fn new(out: &'a mut B) -> Self {
        Writer {
            out,
            stage: [0; STAGE],
            staged: 0,
        }
    }

    /// Copies `data`: staged when it fits, else after what is staged.
    #[inline]
    fn put(&mut self, data: &[u8]) {
        let end = self.staged + data.len();
        if let Some(dst) = self.stage.get_mut(self.staged..end) {
            dst.copy_from_slice(data);
            self.staged = end;
        } else {
            self.flush();
            self.out.put_slice(data);
        }
    }

    /// Appends what is staged.
    fn flush(&mut self) {
        self.out.put_slice(&self.stage[..self.staged]);
        self.staged = 0;
    }

    /// Writes a chunk header. `data_len` fits a u16 because the whole packet was checked to.
    fn header(&mut self, vendor_id: u16, type_id: u16, data_len: usize) {
        let len = u16::try_from(chunk_len(data_len)).unwrap_or(u16::MAX);
        let [v0, v1] = vendor_id.to_be_bytes();
        let [t0, t1] = type_id.to_be_bytes();
        let [l0, l1] = len.to_be_bytes();
        self.put(&[v0, v1, t0, t1, l0, l1]);
    }

    /// Writes a generic chunk.
    fn chunk(&mut self, type_id: u16, data: &[u8]) {
        self.header(vendor::GENERIC, type_id, data.len());
        self.put(data);
    }
}

/// Appends `rec` as HEP3 to `out`; `len` is [`encoded_len`], already checked to be <= 65535
/// (the caller reserves it, so no write reallocates).
pub(super) fn encode_into(rec: &HepRecord<'_>, len: usize, out: &mut impl BufMut) {
    let mut w = Writer::new(out);
    w.put(&MAGIC);
    w.put(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    let pair = AddrPair::of(&rec.src, &rec.dst);
    let fam = match pair {
        AddrPair::V4(..) => family::INET,
        AddrPair::V6(..) => family::INET6,
    };
    w.chunk(chunk::IP_FAMILY, &[fam]);
    w.chunk(chunk::IP_PROTO, &[rec.ip_proto]);
    match pair {
        AddrPair::V4(s, d) => {
            w.chunk(chunk::IPV4_SRC, &s);
            w.chunk(chunk::IPV4_DST, &d);
        }
        AddrPair::V6(s, d) => {
            w.chunk(chunk::IPV6_SRC, &s);
            w.chunk(chunk::IPV6_DST, &d);
        }
    }
    w.chunk(chunk::SRC_PORT, &rec.src.port().to_be_bytes());
    w.chunk(chunk::DST_PORT, &rec.dst.port().to_be_bytes());
    w.chunk(chunk::TS_SEC, &rec.ts_sec.to_be_bytes());
    w.chunk(chunk::TS_USEC, &rec.ts_usec.to_be_bytes());
    w.chunk(chunk::PROTO_TYPE, &[rec.proto_type]);
    w.chunk(chunk::CAPTURE_ID, &rec.capture_id.to_be_bytes());
    let optional = [
        (chunk::AUTH_KEY, rec.auth_key),
        (chunk::CORRELATION_ID, rec.correlation_id),
        (chunk::NODE_NAME, rec.node_name),
    ];
    for (type_id, value) in optional {
        if let Some(data) = value {
            w.chunk(type_id, data);
        }
    }
    for c in rec.extra {
        w.header(c.vendor, c.type_id, c.data.len());
        w.put(c.data);
    }
    let payload_type = if rec.payload_compressed {
        chunk::COMPRESSED_PAYLOAD
    } else {
        chunk::PAYLOAD
    };
    w.chunk(payload_type, rec.payload);
    w.flush();
}

/// See [`super::v3_frame_len`].
pub(super) fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let magic_have = buf.len().min(MAGIC.len());
    if buf.get(..magic_have) != MAGIC.get(..magic_have) {
        return Err(DecodeError::BadMagic);
    }
    match buf.get(4..HEADER_LEN) {
        Some(&[hi, lo]) => {
            let len = u16::from_be_bytes([hi, lo]);
            if usize::from(len) < HEADER_LEN {
                Err(DecodeError::BadTotalLength(len))
            } else {
                Ok(Some(usize::from(len)))
            }
        }
        _ => Ok(None),
    }
}

/// `data` as a fixed-size array, or [`DecodeError::BadChunkSize`].
fn fixed<const N: usize>(type_id: u16, data: &[u8]) -> Result<[u8; N], DecodeError> {
    <[u8; N]>::try_from(data).map_err(|_| DecodeError::BadChunkSize {
        type_id,
        expected: N,
        actual: data.len(),
    })
}

/// Generic chunks collected while walking a packet (last occurrence wins, as in heplify-server).
#[derive(Default)]
struct Fields<'a> {
    family: Option<u8>,
    ip_proto: u8,
    v4: (Option<[u8; 4]>, Option<[u8; 4]>),
    v6: (Option<[u8; 16]>, Option<[u8; 16]>),
    ports: (u16, u16),
    ts: (u32, u32),
    proto_type: u8,
    capture_id: u32,
    auth_key: Option<&'a [u8]>,
    correlation_id: Option<&'a [u8]>,
    node_name: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    compressed: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// Stores a generic chunk; returns false if it has no field (the caller keeps it as extra).
    fn set(&mut self, type_id: u16, data: &'a [u8]) -> Result<bool, DecodeError> {
        match type_id {
            chunk::IP_FAMILY => self.family = Some(fixed::<1>(type_id, data)?[0]),
            chunk::IP_PROTO => self.ip_proto = fixed::<1>(type_id, data)?[0],
            chunk::IPV4_SRC => self.v4.0 = Some(fixed(type_id, data)?),
            chunk::IPV4_DST => self.v4.1 = Some(fixed(type_id, data)?),
            chunk::IPV6_SRC => self.v6.0 = Some(fixed(type_id, data)?),
            chunk::IPV6_DST => self.v6.1 = Some(fixed(type_id, data)?),
            chunk::SRC_PORT => self.ports.0 = u16::from_be_bytes(fixed(type_id, data)?),
            chunk::DST_PORT => self.ports.1 = u16::from_be_bytes(fixed(type_id, data)?),
            chunk::TS_SEC => self.ts.0 = u32::from_be_bytes(fixed(type_id, data)?),
            chunk::TS_USEC => self.ts.1 = u32::from_be_bytes(fixed(type_id, data)?),
            chunk::PROTO_TYPE => self.proto_type = fixed::<1>(type_id, data)?[0],
            chunk::CAPTURE_ID => self.capture_id = u32::from_be_bytes(fixed(type_id, data)?),
            chunk::AUTH_KEY => self.auth_key = Some(data),
            chunk::CORRELATION_ID => self.correlation_id = Some(data),
            chunk::NODE_NAME => self.node_name = Some(data),
            chunk::PAYLOAD => self.payload = Some(data),
            chunk::COMPRESSED_PAYLOAD => self.compressed = Some(data),
            other => {
                if let Some(expected) = chunk::fixed_size(other) {
                    if data.len() != expected {
                        return Err(DecodeError::BadChunkSize {
                            type_id: other,
                            expected,
                            actual: data.len(),
                        });
                    }
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The source and destination socket addresses for the packet's family.
    fn addresses(&self) -> Result<(SocketAddr, SocketAddr), DecodeError> {
        let (src, dst): (IpAddr, IpAddr) = match self.family {
            None => return Err(DecodeError::MissingChunk(chunk::IP_FAMILY)),
            Some(family::INET) => match self.v4 {
                (Some(s), Some(d)) => (Ipv4Addr::from(s).into(), Ipv4Addr::from(d).into()),
                (None, _) => return Err(DecodeError::MissingChunk(chunk::IPV4_SRC)),
                (_, None) => return Err(DecodeError::MissingChunk(chunk::IPV4_DST)),
            },
            Some(family::INET6) => match self.v6 {
                (Some(s), Some(d)) => (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into()),
                (None, _) => return Err(DecodeError::MissingChunk(chunk::IPV6_SRC)),
                (_, None) => return Err(DecodeError::MissingChunk(chunk::IPV6_DST)),
            },
            Some(other) => return Err(DecodeError::UnsupportedFamily(other)),
        };
        Ok((
            SocketAddr::new(src, self.ports.0),
            SocketAddr::new(dst, self.ports.1),
        ))
    }
}

/// Decodes one complete HEP3 packet (the whole of `buf`).
///
/// Checks: magic, total length == `buf.len()`, every chunk length >= 6 and within the packet,
/// exact sizes of the fixed-size generic chunks. Requires the family chunk, both addresses of
/// that family and a payload (0x000f or 0x0010); ports, times, IP proto, proto type and
/// capture id default to 0. Chunks of vendors other than 0 are never interpreted.
pub(super) fn decode(buf: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let declared = match frame_len(buf)? {
        Some(n) => n,
        None => {
            return Err(DecodeError::Truncated {
                needed: HEADER_LEN,
                got: buf.len(),
            })
        }
    };
    if declared != buf.len() {
        return Err(DecodeError::LengthMismatch {
            declared,
            actual: buf.len(),
        });
    }
    let mut fields = Fields::default();
    let mut extra = Vec::new();
    let mut offset = HEADER_LEN;
    while let Some(rest) = buf.get(offset..).filter(|r| !r.is_empty()) {
        let [v0, v1, t0, t1, l0, l1] = match rest.get(..CHUNK_HEADER_LEN) {
            Some(&[a, b, c, d, e, f]) => [a, b, c, d, e, f],
            _ => return Err(DecodeError::ChunkHeaderTruncated { offset }),
        };
        let (vendor_id, type_id) = (u16::from_be_bytes([v0, v1]), u16::from_be_bytes([t0, t1]));
        let length = u16::from_be_bytes([l0, l1]);
        let data = match rest.get(CHUNK_HEADER_LEN..usize::from(length)) {
            Some(d) => d,
            None => return Err(DecodeError::BadChunkLength { offset, length }),
        };
        let known = vendor_id == vendor::GENERIC && fields.set(type_id, data)?;
        if !known {
            extra.push(Chunk {
                vendor: vendor_id,
                type_id,
                data,
            });
        }
        offset += usize::from(length);
    }
    let (src, dst) = fields.addresses()?;
    let (payload, payload_compressed) = match (fields.payload, fields.compressed) {
        (Some(p), Some(c)) => {
            extra.push(Chunk {
                vendor: vendor::GENERIC,
                type_id: chunk::COMPRESSED_PAYLOAD,
                data: c,
            });
            (p, false)
        }
        (Some(p), None) => (p, false),
        (None, Some(c)) => (c, true),
        (None, None) => return Err(DecodeError::MissingChunk(chunk::PAYLOAD)),
    };
    Ok(Decoded {
        version: Version::V3,
        src,
        dst,
        ip_proto: fields.ip_proto,
        proto_type: fields.proto_type,
        ts_sec: fields.ts.0,
        ts_usec: fields.ts.1,
        capture_id: fields.capture_id,
        auth_key: fields.auth_key,
        correlation_id: fields.correlation_id,
        node_name: fields.node_name,
        payload,
        payload_compressed,
        extra,
    })
}

#[cfg(test)]
#[path = "v3_tests.rs"]
mod tests;
