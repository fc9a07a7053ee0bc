//! Listener sockets: one copy per worker bound with `SO_REUSEPORT` so the kernel spreads the
//! accepts; if a second copy cannot be bound, a single socket polled by worker 0.

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
    /// One socket per worker, or a single one for worker 0.
    pub sockets: Vec<std::net::TcpListener>,
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s)
}

/// Bind `addr` once per worker (`copies`). The first bind decides errors (address in use);
/// later copies that fail make the set fall back to the first socket alone.
pub(crate) fn bind(id: u32, addr: SocketAddr, copies: usize) -> Result<ListenerSet, DriverError> {
    let err = |source| DriverError::Bind { addr, source };
    let first = bind_one(addr, copies > 1).map_err(err)?;
    let bound = first
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    let mut sockets: Vec<std::net::TcpListener> = vec![first.into()];
    for _ in 1..copies {
        match bind_one(bound, true) {
            Ok(s) => sockets.push(s.into()),
            Err(_) => {
                sockets.truncate(1);
                break;
            }
        }
    }
    Ok(ListenerSet {
        id,
        addr: bound,
        sockets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_one_copy_per_worker_on_the_resolved_port() {
        let set = bind(7, "127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(set.sockets.len(), 3);
        assert_ne!(set.addr.port(), 0);
        for s in &set.sockets {
            assert_eq!(s.local_addr().unwrap(), set.addr);
        }
    }

    #[test]
    fn address_in_use_is_reported() {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        match bind(1, addr, 1) {
            Err(DriverError::Bind { addr: a, .. }) => assert_eq!(a, addr),
            other => panic!("expected a bind error, got {other:?}"),
        }
    }
}
