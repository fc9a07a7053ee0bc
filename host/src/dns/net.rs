//! The network side of one DNS question: UDP from a fresh ephemeral port with retransmission
//! (RFC 1035 §4.2.1, RFC 5452 §9.2), and TCP when the answer was truncated (RFC 1035 §4.2.2).
//! Blocking with deadlines: runs on the resolver threads only.
use super::error::DnsError;
use super::records::{Kind, Records};
use super::wire::{decode_answer, encode_query, Answer};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// A query id no off-path attacker can guess (RFC 5452 §9.2).
fn query_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return (super::rng::random_u64() >> 48) as u16;
    }
    u16::from_ne_bytes(b)
}

/// One question over UDP from a fresh ephemeral port (RFC 5452 §9.2: random source port
/// and id), answers accepted only from the servers asked.
pub(super) struct UdpExchange<'a> {
    sock: UdpSocket,
    id: u16,
    query: Vec<u8>,
    name: &'a str,
    kind: Kind,
    servers: &'a [SocketAddr],
    /// The socket is IPv6 (dual stack): IPv4 servers are addressed as mapped addresses.
    v6: bool,
}

impl<'a> UdpExchange<'a> {
    pub(super) fn new(
        name: &'a str,
        kind: Kind,
        servers: &'a [SocketAddr],
    ) -> Result<Self, DnsError> {
        let v6 = servers.iter().any(SocketAddr::is_ipv6);
        let local: SocketAddr = if v6 {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).map_err(|e| {
            DnsError::Server(name.to_string(), format!("cannot open a socket: {e}"))
        })?;
        let id = query_id();
        Ok(UdpExchange {
            sock,
            id,
            query: encode_query(id, name, kind)?,
            name,
            kind,
            servers,
            v6,
        })
    }

    fn io(&self, server: impl std::fmt::Display, e: std::io::Error) -> DnsError {
        DnsError::Server(self.name.to_string(), format!("{server}: {e}"))
    }

    pub(super) fn send(&self, server: SocketAddr) -> Result<(), DnsError> {
        let to = match (self.v6, server) {
            (true, SocketAddr::V4(a)) => {
                SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port())
            }
            _ => server,
        };
        self.sock
            .send_to(&self.query, to)
            .map(|_| ())
            .map_err(|e| self.io(server, e))
    }

    /// The answer, or `None` when nothing of ours came before `until`.
    pub(super) fn wait(&self, until: Instant) -> Result<Option<Answer>, DnsError> {
        let mut buf = [0u8; 4096];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| self.io("socket", e))?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
                    if !self.servers.contains(&from) {
                        continue;
                    }
                    match decode_answer(&buf[..n], self.id, self.name, self.kind)? {
                        Answer::Unrelated => continue,
                        a => return Ok(Some(a)),
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.io("socket", e)),
            }
        }
    }
}

/// The same question over TCP (RFC 1035 §4.2.2: two-byte length prefix), before `deadline`.
pub(super) fn tcp_query(
    server: SocketAddr,
    name: &str,
    kind: Kind,
    deadline: Instant,
) -> Result<(Records, Duration), DnsError> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let fail = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            DnsError::Timeout(name.to_string())
        }
        _ => DnsError::Server(name.to_string(), format!("{server} (tcp): {e}")),
    };
    if left().is_zero() {
        return Err(DnsError::Timeout(name.to_string()));
    }
    let id = query_id();
    let q = encode_query(id, name, kind)?;
    let mut s = TcpStream::connect_timeout(&server, left()).map_err(fail)?;
    let mut framed = u16::try_from(q.len())
        .unwrap_or(u16::MAX)
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&q);
    s.set_write_timeout(Some(left().max(Duration::from_millis(1))))
        .map_err(fail)?;
    s.write_all(&framed).map_err(fail)?;
    s.set_read_timeout(Some(left().max(Duration::from_millis(1))))
        .map_err(fail)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(fail)?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).map_err(fail)?;
    match decode_answer(&body, id, name, kind)? {
        Answer::Records(r, ttl) => Ok((r, ttl)),
        _ => Err(DnsError::Server(
            name.to_string(),
            format!("{server} (tcp): no answer to our question"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{rdata, RData, Record};

    /// The answer a server would give to `query`: one A record.
    fn answer(query: &[u8], ip: [u8; 4]) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut m = Message::new();
        m.set_id(q.id()).set_message_type(MessageType::Response);
        m.add_query(q.queries()[0].clone());
        m.add_answer(Record::from_rdata(
            q.queries()[0].name().clone(),
            60,
            RData::A(rdata::A(ip.into())),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_count_only_from_the_servers_asked_rfc5452() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let spoofer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let servers = [server.local_addr().unwrap()];
        let ex = UdpExchange::new("h.test", Kind::A, &servers).unwrap();
        ex.send(servers[0]).unwrap();
        let mut buf = [0u8; 512];
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (n, from) = server.recv_from(&mut buf).unwrap();
        // A forged answer (right id and question) from another address comes first.
        spoofer
            .send_to(&answer(&buf[..n], [10, 6, 6, 6]), from)
            .unwrap();
        server
            .send_to(&answer(&buf[..n], [10, 0, 0, 1]), from)
            .unwrap();
        let got = ex.wait(Instant::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(
            got,
            Some(Answer::Records(
                Records::Addrs(vec![IpAddr::from([10, 0, 0, 1])]),
                Duration::from_secs(60)
            ))
        );
    }

    #[test]
    fn nothing_before_the_deadline_is_none() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let servers = [silent.local_addr().unwrap()];
        let ex = UdpExchange::new("h.test", Kind::A, &servers).unwrap();
        ex.send(servers[0]).unwrap();
        assert_eq!(ex.wait(Instant::now()).unwrap(), None);
    }
}
