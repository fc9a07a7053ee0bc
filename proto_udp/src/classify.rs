//! What to do with one received datagram (RFC 3261 §18.3: over UDP a datagram is one
//! message). Pure: every datagram is an attacker's, so this decides on its first bytes and
//! its length only, before anything is copied or parsed. Malformed SIP is not judged here: it
//! goes to the host, which answers 400 or drops it.

/// The shortest datagram that can be a SIP message: a start line and the mandatory header
/// fields (RFC 3261 §8.1.1) need far more. OpenSIPS drops datagrams under its
/// `MIN_UDP_PACKET` (20 bytes) as "probing packets" likewise.
pub const MIN_SIP_LEN: usize = 20;

/// The verdict on one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram {
    /// Looks like SIP: hand it to the host.
    Sip,
    /// Zero bytes: dropped silently.
    Empty,
    /// Only CR and LF: a keep-alive ping (the "\r\n\r\n" many phones send; RFC 5626 §4.4.1
    /// names STUN for UDP, and CRLF for streams): dropped silently, not answered.
    KeepAlive,
    /// Longer than `udp_max_msg_size`.
    TooLarge,
    /// Not SIP: too short, or its first byte (after leading CRLFs) is not a letter. Covers
    /// STUN (first byte 0x00/0x01, RFC 5389 §6), DTLS and RTP (RFC 7983 §7), and scanners'
    /// binary probes.
    NotSip,
    /// From source port 0, which no reply can reach (OpenSIPS drops these too).
    PortZero,
}

/// Classify `data` received from source port `src_port`, with `max_len` the largest message
/// accepted.
pub fn classify(data: &[u8], src_port: u16, max_len: usize) -> Datagram {
    if data.is_empty() {
        return Datagram::Empty;
    }
    // A start line begins with a method (a token; every registered method is letters) or
    // "SIP/2.0". Leading CRLFs are tolerated as the host's parser (and the stream framing of
    // the same crate) tolerates them.
    let first = sipcore_sip::stream::leading_crlf(data);
    if first == data.len() {
        return Datagram::KeepAlive;
    }
    if data.len() > max_len {
        return Datagram::TooLarge;
    }
    if src_port == 0 {
        return Datagram::PortZero;
    }
    if data.len() - first < MIN_SIP_LEN || !data[first].is_ascii_alphabetic() {
        return Datagram::NotSip;
    }
    Datagram::Sip
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 65507;

    #[test]
    fn sip_requests_and_replies_pass() {
        let opt = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        assert_eq!(classify(opt, 5060, MAX), Datagram::Sip);
        assert_eq!(
            classify(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", 1, MAX),
            Datagram::Sip
        );
        // Leading CRLFs before the start line (RFC 3261 §7.5 tolerance).
        assert_eq!(
            classify(b"\r\n\r\nSIP/2.0 486 Busy Here\r\n\r\n", 5060, MAX),
            Datagram::Sip
        );
        // Lower-case and extension methods still start with a letter; the host judges them.
        assert_eq!(
            classify(b"invite sip:a SIP/2.0\r\n\r\n", 5060, MAX),
            Datagram::Sip
        );
    }

    #[test]
    fn empty_and_keepalives_are_told_apart() {
        assert_eq!(classify(b"", 5060, MAX), Datagram::Empty);
        assert_eq!(classify(b"\r\n\r\n", 5060, MAX), Datagram::KeepAlive);
        assert_eq!(classify(b"\r\n", 5060, MAX), Datagram::KeepAlive);
        assert_eq!(classify(b"\n", 5060, MAX), Datagram::KeepAlive);
        // Even from port 0 or beyond the size limit, a CRLF ping is only a ping.
        assert_eq!(classify(b"\r\n\r\n", 0, 2), Datagram::KeepAlive);
    }

    #[test]
    fn stun_dtls_rtp_and_short_probes_are_not_sip() {
        // A STUN Binding Request (RFC 5389 §6): type 0x0001, length 0, magic cookie, id.
        let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        stun.extend_from_slice(&[7u8; 12]);
        assert_eq!(classify(&stun, 3478, MAX), Datagram::NotSip);
        let mut resp = stun.clone();
        resp[0] = 0x01;
        assert_eq!(classify(&resp, 3478, MAX), Datagram::NotSip);
        // DTLS (20-63) and RTP (128-191) first bytes.
        assert_eq!(classify(&[22u8; 40], 5004, MAX), Datagram::NotSip);
        assert_eq!(classify(&[0x80u8; 172], 5004, MAX), Datagram::NotSip);
        // Text that starts like SIP but is too short to be a message.
        assert_eq!(classify(b"OPTIONS", 5060, MAX), Datagram::NotSip);
        assert_eq!(classify(b"\r\nINVITE x\r\n", 5060, MAX), Datagram::NotSip);
        // A digit or blank first.
        assert_eq!(
            classify(b"1NVITE sip:a SIP/2.0\r\n\r\n", 5060, MAX),
            Datagram::NotSip
        );
        assert_eq!(
            classify(b" INVITE sip:a SIP/2.0\r\n\r\n", 5060, MAX),
            Datagram::NotSip
        );
    }

    #[test]
    fn size_limit_is_inclusive() {
        let mut m = b"MESSAGE sip:a SIP/2.0\r\n\r\n".to_vec();
        m.resize(2048, b'x');
        assert_eq!(classify(&m, 5060, 2048), Datagram::Sip);
        m.push(b'x');
        assert_eq!(classify(&m, 5060, 2048), Datagram::TooLarge);
        // Too large wins over "not SIP": both are dropped, the size is the reason counted.
        assert_eq!(classify(&[0u8; 3000], 5060, 2048), Datagram::TooLarge);
    }

    #[test]
    fn source_port_zero_is_dropped() {
        let opt = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        assert_eq!(classify(opt, 0, MAX), Datagram::PortZero);
    }
}
