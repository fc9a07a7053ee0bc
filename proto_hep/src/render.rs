//! Turning a transport-neutral [`TraceRecord`] into one HEP packet (research 6.2, 6.5, 7.3):
//! pure code, no I/O.
use crate::codec::{self, Chunk, HepRecord, Version};
use sipcore_abi::TraceRecord;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// HEP chunk (vendor 0) carrying extra correlation as JSON, as OpenSIPS's tracer does
/// (`{"net":"<connection id>"}`, research 6.5).
pub const EXTRA_CORRELATION: u16 = 0x0065;

/// How events are written (`homer5_on`, `homer5_delim`) and the capture metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderCfg {
    /// `homer5_on`: event parts as delimiter-joined values (1) or a JSON object (0).
    pub homer5: bool,
    /// `homer5_delim`.
    pub delim: String,
    /// `hep_capture_id`.
    pub capture_id: u32,
    /// `hep_auth_key` (HEPv3 chunk 0x000E); empty = none.
    pub auth_key: String,
}

/// The payload of an event record: its parts rendered for Homer 5 (values joined with the
/// delimiter) or Homer 6+ (a JSON object keeping the order of the parts).
pub fn event_payload(rec: &TraceRecord<'_>, cfg: &RenderCfg) -> Vec<u8> {
    if cfg.homer5 {
        let mut out = String::new();
        for (i, kv) in rec.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(&cfg.delim);
            }
            out.push_str(kv.value.as_str());
        }
        return out.into_bytes();
    }
    let mut out = String::from("{");
    for (i, kv) in rec.parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}:{}",
            serde_json::Value::from(kv.key.as_str()),
            serde_json::Value::from(kv.value.as_str())
        );
    }
    out.push('}');
    out.into_bytes()
}

fn addr(a: &sipcore_abi::SockAddr) -> SocketAddr {
    // OpenSIPS sends loopback for events without an address; we always have one, but keep
    // the packet valid if not.
    a.to_std()
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
}

/// Writes `{"net":"<id>"}` into `buf` without allocating; returns its length.
fn net_json_into(id: u64, buf: &mut [u8; 48]) -> usize {
    const HEAD: &[u8; 8] = b"{\"net\":\"";
    // Two digits per step from a table: connection ids carry a generation in their high bits,
    // so they have up to 20 digits (a digit per step was 200 instructions a packet).
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    // u64::MAX has 20 digits: the digits end at 28 at most, the tail at 30.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = id;
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + v as u8;
    }
    let n = digits.len() - i;
    buf[..8].copy_from_slice(HEAD);
    buf[8..8 + n].copy_from_slice(&digits[i..]);
    buf[8 + n..10 + n].copy_from_slice(b"\"}");
    10 + n
}

/// Whether a destination speaking `version` is sent `rec`. HEPv1/v2 have no payload type and
/// no correlation id: a connection event would reach Homer as a SIP capture without a Call-ID,
/// which it discards. So events go only to HEPv3 destinations; SIP captures go to every one.
pub fn carries(rec: &TraceRecord<'_>, version: Version) -> bool {
    version == Version::V3 || (rec.proto_type == sipcore_abi::TRACE_SIP && rec.parts.is_empty())
}

/// Appends the packet of `rec` for a destination speaking `version` to `out`; on error `out` is
/// left unchanged.
pub fn encode(
    rec: &TraceRecord<'_>,
    version: Version,
    cfg: &RenderCfg,
    out: &mut impl codec::Buffer,
) -> Result<(), codec::EncodeError> {
    with_hep(rec, version, cfg, |hep| codec::encode(hep, out))
}

/// Builds the [`HepRecord`] of `rec` (borrowing from it) and hands it to `f`.
fn with_hep<R>(
    rec: &TraceRecord<'_>,
    version: Version,
    cfg: &RenderCfg,
    f: impl FnOnce(&HepRecord<'_>) -> R,
) -> R {
    let event;
    let payload: &[u8] = if rec.parts.is_empty() {
        rec.payload.as_slice()
    } else {
        event = event_payload(rec, cfg);
        &event
    };
    let mut net_json = [0u8; 48];
    let mut extra: [Chunk<'_>; 1] = [Chunk {
        vendor: 0,
        type_id: EXTRA_CORRELATION,
        data: &[],
    }];
    // A SIP capture carried by a connection links to that connection's events (whose
    // correlation id is the connection id).
    let extra: &[Chunk<'_>] = if rec.conn_id != 0 && rec.parts.is_empty() {
        let n = net_json_into(rec.conn_id, &mut net_json);
        extra[0].data = net_json.get(..n).unwrap_or(&[]);
        &extra
    } else {
        &[]
    };
    let hep = HepRecord {
        version,
        src: addr(&rec.src),
        dst: addr(&rec.dst),
        ip_proto: rec.ip_proto,
        proto_type: rec.proto_type,
        ts_sec: u32::try_from(rec.ts_sec).unwrap_or(u32::MAX),
        ts_usec: rec.ts_usec,
        capture_id: cfg.capture_id,
        auth_key: (!cfg.auth_key.is_empty()).then_some(cfg.auth_key.as_bytes()),
        correlation_id: (!rec.correlation.is_empty())
            .then_some(rec.correlation.as_str().as_bytes()),
        node_name: None,
        payload,
        payload_compressed: false,
        extra,
    };
    f(&hep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RSlice, RStr};
    use bytes::BytesMut;
    use sipcore_abi::{LogKv, SockAddr, TRACE_NET, TRACE_SIP};

    fn cfg(homer5: bool) -> RenderCfg {
        RenderCfg {
            homer5,
            delim: ":".into(),
            capture_id: 7,
            auth_key: String::new(),
        }
    }

    fn sa(s: &str) -> SockAddr {
        SockAddr::from(s.parse::<SocketAddr>().unwrap())
    }

    const PARTS: [LogKv<'static>; 3] = [
        LogKv {
            key: RStr::from_str("Protocol"),
            value: RStr::from_str("WS"),
        },
        LogKv {
            key: RStr::from_str("Event"),
            value: RStr::from_str("CLOSED"),
        },
        LogKv {
            key: RStr::from_str("Message"),
            value: RStr::from_str("EOF \"received\""),
        },
    ];

    fn event() -> TraceRecord<'static> {
        TraceRecord {
            proto_type: TRACE_NET,
            ip_proto: 50,
            src: sa("10.0.0.1:5000"),
            dst: sa("127.0.0.1:8080"),
            ts_sec: 1_700_000_000,
            ts_usec: 5,
            correlation: RStr::from_str("42"),
            conn_id: 42,
            payload: RSlice::from_slice(&[]),
            parts: RSlice::from_slice(&PARTS),
        }
    }

    #[test]
    fn events_only_over_hep3() {
        let sip = TraceRecord {
            proto_type: TRACE_SIP,
            payload: RSlice::from_slice(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"),
            parts: RSlice::from_slice(&[]),
            ..event()
        };
        for v in [Version::V1, Version::V2, Version::V3] {
            assert!(carries(&sip, v), "{v:?}");
            assert_eq!(carries(&event(), v), v == Version::V3, "{v:?}");
        }
    }

    #[test]
    fn net_json_digits() {
        let mut b = [0u8; 48];
        for (id, want) in [
            (0u64, "{\"net\":\"0\"}"),
            (42, "{\"net\":\"42\"}"),
            (u64::MAX, "{\"net\":\"18446744073709551615\"}"),
        ] {
            let n = net_json_into(id, &mut b);
            assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), want);
        }
        // Every digit count, each side of each power of ten, and a spread of values.
        let mut ids: Vec<u64> = (0..=1000).collect();
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            ids.extend([p - 1, p, p + 1, next - 1]);
            p = next;
        }
        ids.extend((0..2000u64).map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        for id in ids {
            let n = net_json_into(id, &mut b);
            assert_eq!(
                std::str::from_utf8(&b[..n]).unwrap(),
                format!("{{\"net\":\"{id}\"}}")
            );
        }
    }

    #[test]
    fn homer5_joins_values() {
        assert_eq!(
            event_payload(&event(), &cfg(true)),
            b"WS:CLOSED:EOF \"received\"".to_vec()
        );
    }

    #[test]
    fn homer6_is_ordered_json() {
        let p = event_payload(&event(), &cfg(false));
        assert_eq!(
            String::from_utf8(p).unwrap(),
            r#"{"Protocol":"WS","Event":"CLOSED","Message":"EOF \"received\""}"#
        );
    }

    #[test]
    fn sip_record_carries_net_correlation() {
        let sip = b"OPTIONS sip:a@b SIP/2.0\r\n\r\n";
        let rec = TraceRecord {
            proto_type: TRACE_SIP,
            correlation: RStr::from_str("call-1"),
            payload: RSlice::from_slice(sip),
            parts: RSlice::from_slice(&[]),
            ..event()
        };
        let mut out = BytesMut::new();
        encode(&rec, Version::V3, &cfg(true), &mut out).unwrap();
        let d = codec::decode(&out).unwrap();
        assert_eq!(d.payload, sip);
        assert_eq!(d.correlation_id, Some(&b"call-1"[..]));
        assert_eq!(d.capture_id, 7);
        assert_eq!(d.proto_type, TRACE_SIP);
        assert_eq!(d.src, "10.0.0.1:5000".parse().unwrap());
        let net = d
            .extra
            .iter()
            .find(|c| c.type_id == EXTRA_CORRELATION)
            .unwrap();
        assert_eq!(net.data, br#"{"net":"42"}"#);
    }

    #[test]
    fn encode_appends_the_same_bytes() {
        let sip = b"OPTIONS sip:a@b SIP/2.0\r\n\r\n";
        let rec = TraceRecord {
            proto_type: TRACE_SIP,
            payload: RSlice::from_slice(sip),
            parts: RSlice::from_slice(&[]),
            ..event()
        };
        for version in [Version::V3, Version::V2] {
            let mut one = BytesMut::new();
            encode(&rec, version, &cfg(true), &mut one).unwrap();
            let mut batch = b"prefix".to_vec();
            encode(&rec, version, &cfg(true), &mut batch).unwrap();
            encode(&event(), version, &cfg(true), &mut batch).unwrap();
            assert_eq!(&batch[..6], b"prefix");
            assert_eq!(&batch[6..6 + one.len()], &one[..]);
            let mut ev = BytesMut::new();
            encode(&event(), version, &cfg(true), &mut ev).unwrap();
            assert_eq!(&batch[6 + one.len()..], &ev[..]);
        }
    }

    #[test]
    fn encode_error_leaves_buffer_unchanged() {
        let big = vec![b'x'; 70_000];
        let rec = TraceRecord {
            proto_type: TRACE_SIP,
            payload: RSlice::from_slice(&big),
            parts: RSlice::from_slice(&[]),
            ..event()
        };
        let mut batch = b"keep".to_vec();
        assert!(matches!(
            encode(&rec, Version::V3, &cfg(true), &mut batch),
            Err(codec::EncodeError::TooLong { .. })
        ));
        assert_eq!(batch, b"keep");
    }

    #[test]
    fn v2_event_has_rendered_payload() {
        let mut out = BytesMut::new();
        encode(&event(), Version::V2, &cfg(true), &mut out).unwrap();
        let d = codec::decode(&out).unwrap();
        assert_eq!(d.version, Version::V2);
        assert_eq!(d.payload, b"WS:CLOSED:EOF \"received\"");
        assert_eq!(d.ts_sec, 1_700_000_000);
    }
}
