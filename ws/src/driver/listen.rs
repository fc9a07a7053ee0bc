//! Listener sockets.
//!
//! Without `reuse_port` (the default), one socket is bound **without** `SO_REUSEPORT`, so a
//! second process on the same address fails to start with "address in use" instead of
//! silently taking a share of the connections; each worker polls its own descriptor of that
//! socket (`dup`); whichever worker is woken first accepts, and hands the connection to the
//! next worker in round-robin order (`accept.rs`), since the kernel does not spread them.
//!
//! With `reuse_port` on the socket line, one `SO_REUSEPORT` socket per worker so the kernel
//! spreads the accepts; another process that also sets `reuse_port` on the same address
//! (same user) then joins the group deliberately. If a copy cannot be bound, the remaining
//! workers get descriptors of the first socket.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use super::api::DriverError;

/// Listen backlog.
const BACKLOG: i32 = 1024;

/// One configured listener and its sockets.
#[derive(Debug)]
pub(crate) struct ListenerSet {
    /// The host's listener id.
    pub id: u32,
    /// The bound address (port 0 resolved).
    pub addr: SocketAddr,
    /// One socket (or descriptor of the shared socket) per worker; fewer when descriptors
    /// ran out (worker `i` polls `sockets[i]`).
    pub sockets: Vec<std::net::TcpListener>,
    /// One `SO_REUSEPORT` socket per worker (else one socket shared through descriptors).
    pub reuse_port: bool,
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR only lets a restart bind over TIME_WAIT connections; on Linux it never
    // lets two sockets listen on the same address.
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux (`accept::admit`
    // sets it per connection elsewhere).
    s.set_tcp_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s)
}

/// Bind `addr` for `copies` workers, with one `SO_REUSEPORT` socket each when `reuse_port`,
/// else one socket shared through duplicated descriptors. The first bind decides errors
/// (address in use); a later copy that fails is replaced by a descriptor of the first socket,
/// and if even that fails the set has fewer sockets than workers.
pub(crate) fn bind(
    id: u32,
    addr: SocketAddr,
    copies: usize,
    reuse_port: bool,
) -> Result<ListenerSet, DriverError> {
    let first = bind_one(addr, reuse_port).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            DriverError::AddrInUse { addr }
        } else {
            DriverError::Bind { addr, source }
        }
    })?;
    let bound = first
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    let first: std::net::TcpListener = first.into();
    let mut sockets: Vec<std::net::TcpListener> = Vec::with_capacity(copies);
    for _ in 1..copies {
        let copy = if reuse_port {
            bind_one(bound, true)
                .map(std::net::TcpListener::from)
                .or_else(|_| first.try_clone())
        } else {
            first.try_clone()
        };
        match copy {
            Ok(s) => sockets.push(s),
            Err(_) => break,
        }
    }
    sockets.insert(0, first);
    Ok(ListenerSet {
        id,
        addr: bound,
        sockets,
        reuse_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_one_copy_per_worker_on_the_resolved_port() {
        for reuse_port in [false, true] {
            let set = bind(7, "127.0.0.1:0".parse().unwrap(), 3, reuse_port).unwrap();
            assert_eq!(set.sockets.len(), 3);
            assert_ne!(set.addr.port(), 0);
            for s in &set.sockets {
                assert_eq!(s.local_addr().unwrap(), set.addr);
            }
        }
    }

    /// `accept::admit` relies on this instead of a `setsockopt` per connection.
    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_sockets_inherit_tcp_nodelay() {
        for reuse_port in [false, true] {
            // One socket: with several SO_REUSEPORT copies the kernel picks which accepts.
            let set = bind(7, "127.0.0.1:0".parse().unwrap(), 1, reuse_port).unwrap();
            let _client = std::net::TcpStream::connect(set.addr).unwrap();
            let l = &set.sockets[0];
            l.set_nonblocking(false).unwrap();
            let (s, _) = l.accept().unwrap();
            assert!(s.nodelay().unwrap());
            assert_eq!(s.local_addr().unwrap(), set.addr);
        }
    }

    #[test]
    fn address_in_use_is_reported() {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        match bind(1, addr, 1, false) {
            Err(DriverError::AddrInUse { addr: a }) => assert_eq!(a, addr),
            other => panic!("expected address in use, got {other:?}"),
        }
    }

    #[test]
    fn a_second_set_on_the_same_address_fails_unless_both_reuse_port() {
        // Without reuse_port on the first set, nobody joins it, reuse_port or not.
        let a = bind(1, "127.0.0.1:0".parse().unwrap(), 2, false).unwrap();
        for reuse_port in [false, true] {
            assert!(matches!(
                bind(2, a.addr, 2, reuse_port),
                Err(DriverError::AddrInUse { .. })
            ));
        }
        // Both with reuse_port: the second joins deliberately.
        let b = bind(1, "127.0.0.1:0".parse().unwrap(), 2, true).unwrap();
        assert!(bind(2, b.addr, 2, true).is_ok());
        assert!(matches!(
            bind(3, b.addr, 1, false),
            Err(DriverError::AddrInUse { .. })
        ));
    }
}
