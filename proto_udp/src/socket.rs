//! The sockets: one UDP socket that every receiving thread of an address shares
//! ([`bind_shared`], `udp_spread` call: each datagram wakes one waiting thread), or one
//! `SO_REUSEPORT` socket per thread on the same address ([`bind_workers`], `udp_spread` source:
//! the kernel spreads datagrams over them by source address and port); and a send that never
//! waits (RFC 3261 §18.1.1: a request over UDP goes out as one datagram, whatever its size;
//! see README "SIP over UDP" for the 1300-byte rule).
use sipcore_abi::SendError;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::time::Duration;

/// How long a receiving thread blocks before it looks at the shutdown flag again. Stopping
/// normally wakes it at once (`shutdown(SHUT_RD)`, see [`wake`]); this bounds it otherwise.
pub const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// A socket that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another socket already has the address (another sipcore, or another program).
    #[error("udp:{0}: address already in use (add reuse_port to the socket line to share it with other processes deliberately)")]
    InUse(SocketAddr),
    /// Any other failure.
    #[error("udp:{addr}: {what}: {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err(addr: SocketAddr, what: &'static str) -> impl FnOnce(io::Error) -> BindError {
    move |source| BindError::Io { addr, what, source }
}

fn new_socket(addr: SocketAddr) -> Result<Socket, BindError> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(io_err(addr, "socket"))?;
    if addr.is_ipv6() {
        // `udp:[::]` serves IPv6 only, as OpenSIPS: IPv4 has its own socket lines.
        s.set_only_v6(true).map_err(io_err(addr, "IPV6_V6ONLY"))?;
    }
    Ok(s)
}

fn bind(s: &Socket, addr: SocketAddr) -> Result<(), BindError> {
    s.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse(addr),
        _ => BindError::Io {
            addr,
            what: "bind",
            source: e,
        },
    })
}

/// Refuses port 0: a UDP socket line needs a port.
fn has_port(addr: SocketAddr) -> Result<(), BindError> {
    if addr.port() != 0 {
        return Ok(());
    }
    Err(BindError::Io {
        addr,
        what: "port",
        source: io::Error::new(io::ErrorKind::InvalidInput, "a udp socket needs a port"),
    })
}

/// A socket bound to `addr` (with `SO_REUSEPORT` when `reuse_port`), with [`READ_TIMEOUT`]
/// on reads.
fn bound(addr: SocketAddr, reuse_port: bool) -> Result<UdpSocket, BindError> {
    let s = new_socket(addr)?;
    if reuse_port {
        s.set_reuse_port(true)
            .map_err(io_err(addr, "SO_REUSEPORT"))?;
    }
    bind(&s, addr)?;
    s.set_read_timeout(Some(READ_TIMEOUT))
        .map_err(io_err(addr, "SO_RCVTIMEO"))?;
    Ok(UdpSocket::from(s))
}

/// Bind `n` sockets to `addr` with `SO_REUSEPORT`, each with [`READ_TIMEOUT`] on reads.
///
/// Unless `shared` (`reuse_port` on the socket line), the address is first bound once without
/// `SO_REUSEPORT` and released: if anything holds it, that fails, so a second sipcore on the
/// same address stops at startup instead of silently taking a share of the datagrams.
pub fn bind_workers(addr: SocketAddr, n: usize, shared: bool) -> Result<Vec<UdpSocket>, BindError> {
    has_port(addr)?;
    if !shared {
        bind(&new_socket(addr)?, addr)?;
    }
    (0..n.max(1)).map(|_| bound(addr, true)).collect()
}

/// One socket on `addr` for every receiving thread of the address (`udp_spread` call; the
/// threads wait for it apart, see `readiness`). `SO_REUSEPORT` only with `shared`
/// (`reuse_port` on the socket line), so that another process on the address stops the
/// startup with "address already in use".
pub fn bind_shared(addr: SocketAddr, shared: bool) -> Result<UdpSocket, BindError> {
    has_port(addr)?;
    bound(addr, shared)
}

/// Receives one datagram into `buf`: its length and source, or `None` when there was none to
/// take (after a read shutdown Linux answers at once with nothing and no source address,
/// which `UdpSocket::recv_from` asserts against: it panicked in a stopping thread).
pub fn recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    // SAFETY: an initialised byte slice is a valid `[MaybeUninit<u8>]` of the same length,
    // and recvfrom only writes initialised bytes into it.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    let (n, from) = SockRef::from(sock).recv_from(uninit)?;
    Ok(from.as_socket().map(|a| (n, a)))
}

/// Send one datagram without waiting for buffer space (`MSG_DONTWAIT`): a full send buffer
/// is an error, never a wait.
pub fn send_to(sock: &UdpSocket, data: &[u8], dst: SocketAddr) -> io::Result<usize> {
    SockRef::from(sock).send_to_with_flags(data, &dst.into(), libc::MSG_DONTWAIT)
}

/// The [`SendError`] for a failed send: a full buffer is [`SendError::QUEUE_FULL`] (the
/// datagram is dropped, counted; UDP's loss is the answer, as a retransmission will come).
pub fn send_error(e: &io::Error) -> SendError {
    match e.raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS) => SendError::QUEUE_FULL,
        Some(libc::EMSGSIZE) => SendError::TOO_LARGE,
        Some(libc::EAFNOSUPPORT | libc::EINVAL | libc::EADDRNOTAVAIL) => SendError::UNSUPPORTED,
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ECONNREFUSED | libc::EPERM) => {
            SendError::NO_CONNECTION
        }
        _ => SendError::INTERNAL,
    }
}

/// Wake the threads blocked in a receive on `sock` (stop): a read shutdown makes a pending
/// `recvfrom` return at once on Linux, even on an unconnected UDP socket (which reports
/// `ENOTCONN` to the caller, ignored here). Sending from the socket still works.
pub fn wake(sock: &UdpSocket) {
    let _ = SockRef::from(sock).shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn loopback_port() -> SocketAddr {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn workers_share_the_address_and_others_are_refused() {
        let addr = loopback_port();
        let socks = bind_workers(addr, 3, false).unwrap();
        assert_eq!(socks.len(), 3);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap(), addr);
        }
        // A second process without reuse_port: the probe bind fails.
        assert!(matches!(bind_workers(addr, 1, false), Err(BindError::InUse(a)) if a == addr));
        // A plain bind (another program) fails too.
        assert!(UdpSocket::bind(addr).is_err());
        // With reuse_port, sharing is deliberate and allowed.
        assert_eq!(bind_workers(addr, 1, true).unwrap().len(), 1);
        let e = bind_workers(addr, 1, false).unwrap_err().to_string();
        assert!(
            e.contains("address already in use") && e.contains("reuse_port"),
            "{e}"
        );
    }

    #[test]
    fn a_shared_socket_is_exclusive_unless_reuse_port() {
        let addr = loopback_port();
        let s = bind_shared(addr, false).unwrap();
        assert_eq!(s.local_addr().unwrap(), addr);
        assert!(matches!(bind_shared(addr, false), Err(BindError::InUse(a)) if a == addr));
        assert!(matches!(bind_shared(addr, true), Err(BindError::InUse(_))));
        assert!(matches!(
            bind_workers(addr, 1, false),
            Err(BindError::InUse(_))
        ));
        drop(s);
        // With reuse_port on both, the address is shared deliberately.
        let a = bind_shared(addr, true).unwrap();
        let b = bind_shared(addr, true).unwrap();
        assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
        let e = bind_shared("127.0.0.1:0".parse().unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("needs a port"), "{e}");
    }

    #[test]
    fn threads_sharing_a_socket_each_get_datagrams() {
        // Two threads blocked on one socket: each datagram wakes one of them, and when one is
        // busy the other takes the next (what `udp_spread` call is for). Each thread holds
        // on to its first datagram until the other has one too, so both must get one.
        let s = std::sync::Arc::new(bind_shared(loopback_port(), false).unwrap());
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let addr = s.local_addr().unwrap();
        let got = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, got) = (s.clone(), got.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8];
                    let n = s.recv_from(&mut buf).map(|(n, _)| n);
                    got.wait();
                    n
                })
            })
            .collect();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"one", addr).unwrap();
        peer.send_to(b"two", addr).unwrap();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), 3);
        }
    }

    #[test]
    fn ipv6_sockets_bind_and_exchange_datagrams() {
        let Ok(probe) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let socks = bind_workers(addr, 2, false).unwrap();
        let peer = UdpSocket::bind("[::1]:0").unwrap();
        let n = send_to(&socks[0], b"ping", peer.local_addr().unwrap()).unwrap();
        assert_eq!(n, 4);
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], addr));
    }

    #[test]
    fn port_zero_is_refused() {
        let e = bind_workers("127.0.0.1:0".parse().unwrap(), 1, false).unwrap_err();
        assert!(e.to_string().contains("needs a port"), "{e}");
    }

    #[test]
    fn wake_interrupts_a_blocked_receive_at_once() {
        let socks = bind_workers(loopback_port(), 1, false).unwrap();
        let s = std::sync::Arc::new(socks.into_iter().next().unwrap());
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = s.clone();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            recv(&r, &mut buf)
        });
        // Whether the thread blocked already or not, the shutdown makes it return, with
        // nothing (no datagram, no source) or an error.
        let t0 = Instant::now();
        wake(&s);
        let got = t.join().unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "{got:?}");
        assert!(matches!(got, Ok(None) | Err(_)), "{got:?}");
        // And so does every later receive, at once.
        let mut buf = [0u8; 8];
        assert!(matches!(recv(&s, &mut buf), Ok(None) | Err(_)));
        // Sending still works after the read shutdown.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_to(&s, b"x", peer.local_addr().unwrap()).unwrap();
    }

    #[test]
    fn errors_map_to_send_errors() {
        let e = |n| send_error(&io::Error::from_raw_os_error(n));
        assert_eq!(e(libc::EAGAIN), SendError::QUEUE_FULL);
        assert_eq!(e(libc::ENOBUFS), SendError::QUEUE_FULL);
        assert_eq!(e(libc::EMSGSIZE), SendError::TOO_LARGE);
        assert_eq!(e(libc::EAFNOSUPPORT), SendError::UNSUPPORTED);
        assert_eq!(e(libc::ENETUNREACH), SendError::NO_CONNECTION);
        assert_eq!(e(libc::EIO), SendError::INTERNAL);
    }

    #[test]
    fn an_oversized_datagram_is_too_large() {
        let s = &bind_workers(loopback_port(), 1, false).unwrap()[0];
        let dst = loopback_port();
        let err = send_to(s, &vec![b'x'; 70_000], dst).unwrap_err();
        assert_eq!(send_error(&err), SendError::TOO_LARGE);
    }
}
