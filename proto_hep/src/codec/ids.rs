//! Numeric identifiers used on the wire: HEP3 chunk types, vendor ids, protocol type codes,
//! IP protocol numbers and address families (HEP3 spec rev. 37, §"Chunk types").

/// Generic (vendor 0x0000) HEP3 chunk type ids.
pub mod chunk {
    /// IP protocol family, u8 (2 = IPv4, 10 = IPv6).
    pub const IP_FAMILY: u16 = 0x0001;
    /// IP protocol id, u8 (17 UDP, 6 TCP, ...).
    pub const IP_PROTO: u16 = 0x0002;
    /// IPv4 source address, 4 bytes.
    pub const IPV4_SRC: u16 = 0x0003;
    /// IPv4 destination address, 4 bytes.
    pub const IPV4_DST: u16 = 0x0004;
    /// IPv6 source address, 16 bytes.
    pub const IPV6_SRC: u16 = 0x0005;
    /// IPv6 destination address, 16 bytes.
    pub const IPV6_DST: u16 = 0x0006;
    /// Source port, u16.
    pub const SRC_PORT: u16 = 0x0007;
    /// Destination port, u16.
    pub const DST_PORT: u16 = 0x0008;
    /// Timestamp, seconds since the Unix epoch, u32.
    pub const TS_SEC: u16 = 0x0009;
    /// Timestamp, microseconds offset added to [`TS_SEC`], u32.
    pub const TS_USEC: u16 = 0x000a;
    /// Protocol type of the payload, u8 (see [`super::proto_type`]).
    pub const PROTO_TYPE: u16 = 0x000b;
    /// Capture agent id, u32.
    pub const CAPTURE_ID: u16 = 0x000c;
    /// Keep-alive timer in seconds, u16.
    pub const KEEP_ALIVE: u16 = 0x000d;
    /// Authentication key, octet string.
    pub const AUTH_KEY: u16 = 0x000e;
    /// Captured packet payload, octet string.
    pub const PAYLOAD: u16 = 0x000f;
    /// Captured payload, compressed (gzip/inflate), octet string.
    pub const COMPRESSED_PAYLOAD: u16 = 0x0010;
    /// Internal correlation id, octet string.
    pub const CORRELATION_ID: u16 = 0x0011;
    /// VLAN id, u16.
    pub const VLAN_ID: u16 = 0x0012;
    /// Capture agent (node) name, octet string.
    pub const NODE_NAME: u16 = 0x0013;

    /// The exact data size (without the 6-byte chunk header) of the fixed-size generic chunks,
    /// or `None` for variable-length and unknown chunks.
    pub const fn fixed_size(type_id: u16) -> Option<usize> {
        match type_id {
            IP_FAMILY | IP_PROTO | PROTO_TYPE => Some(1),
            IPV4_SRC | IPV4_DST | TS_SEC | TS_USEC | CAPTURE_ID => Some(4),
            IPV6_SRC | IPV6_DST => Some(16),
            SRC_PORT | DST_PORT | KEEP_ALIVE | VLAN_ID => Some(2),
            _ => None,
        }
    }
}

/// HEP3 vendor ids (first u16 of every chunk).
pub mod vendor {
    /// Generic chunks defined by the HEP3 specification.
    pub const GENERIC: u16 = 0;
    /// FreeSWITCH.
    pub const FREESWITCH: u16 = 1;
    /// Kamailio / SER.
    pub const KAMAILIO: u16 = 2;
    /// OpenSIPS.
    pub const OPENSIPS: u16 = 3;
    /// Asterisk.
    pub const ASTERISK: u16 = 4;
    /// Homer project.
    pub const HOMER: u16 = 5;
}

/// Protocol type codes carried in chunk 0x000b.
pub mod proto_type {
    /// SIP message.
    pub const SIP: u8 = 0x01;
    /// RTCP report (JSON).
    pub const RTCP: u8 = 0x05;
    /// OpenSIPS private: MI command.
    pub const MI: u8 = 0x57;
    /// OpenSIPS private: REST call.
    pub const REST: u8 = 0x58;
    /// OpenSIPS private: transport (network) event, e.g. WebSocket handshake / close.
    pub const NET: u8 = 0x59;
    /// OpenSIPS private: control (correlation) packet.
    pub const CONTROL: u8 = 0x60;
    /// De-facto standard: log line (heplify-server, Kamailio, OpenSIPS xlog).
    pub const LOG: u8 = 0x64;
}

/// IP protocol numbers carried in chunk 0x0002 and in the HEPv1/v2 header.
pub mod ip_proto {
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPPROTO_IDP, used by OpenSIPS and Kamailio to mean "TLS".
    pub const TLS: u8 = 22;
    /// IPPROTO_ESP, used by OpenSIPS to mean "WebSocket" (WS and WSS).
    pub const WS: u8 = 50;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Address family values (Linux `AF_*`), used by chunk 0x0001 and the HEPv1/v2 header.
pub mod family {
    /// `AF_INET`.
    pub const INET: u8 = 2;
    /// `AF_INET6` (Linux value).
    pub const INET6: u8 = 10;
}
