//! The directory: what other threads know about each connection, which outbound connection
//! to reuse for an address, and the inbound admission counts. Pure bookkeeping, no I/O.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::admission::Admission;
use super::api::ConnMeta;

/// What other threads know about a connection.
#[derive(Debug, Clone)]
pub(crate) struct DirEntry {
    pub meta: ConnMeta,
    pub traced: bool,
    pub since: Instant,
    pub state: &'static str,
    /// TLS version and cipher, once a TLS handshake completed.
    pub tls: Option<super::stream::TlsSummary>,
    /// Outbound: the host name it was opened for (SNI, certificate check, `Host`), lower
    /// case; empty when it was opened for an address. Part of the reuse key.
    pub name: Box<str>,
}

/// Connections by id, outbound connections by peer address (for reuse, as OpenSIPS's TCP
/// reuse), and inbound admission counts.
///
/// `by_peer` holds **only outbound connections we opened**: an inbound connection's peer
/// address is a browser's source port, not a place to send to (RFC 7118 §5: a client cannot
/// accept connections), so no address taken from a message can ever select it. Only
/// [`Self::insert_outbound`] adds to it.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    pub conns: HashMap<u64, DirEntry>,
    by_peer: HashMap<(SocketAddr, Box<str>), u64>,
    /// Inbound connections per peer address (`ws_max_connections_per_ip`).
    pub admission: Admission,
}

impl Directory {
    /// Record an outbound connection `id` to `addr` (opened for the host name `e.name`); it
    /// becomes the one reused for `addr` and that name unless another open one is already.
    /// A connection verified for one name is never reused for another (OpenSIPS
    /// `cert_check_on_conn_reusage`, always on).
    pub fn insert_outbound(&mut self, id: u64, addr: SocketAddr, e: DirEntry) {
        debug_assert!(e.meta.outbound);
        let key = (addr, e.name.clone());
        self.conns.insert(id, e);
        self.by_peer.entry(key).or_insert(id);
    }

    /// Record an admitted inbound connection (already counted by [`Admission::admit`]).
    pub fn insert_inbound(&mut self, id: u64, e: DirEntry) {
        self.conns.insert(id, e);
    }

    /// The outbound connection to reuse for `addr` and the host name `name` (lower case;
    /// empty: opened for the address), if one is open.
    pub fn outbound_to(&self, addr: &SocketAddr, name: &str) -> Option<u64> {
        self.by_peer.get(&(*addr, Box::from(name))).copied()
    }

    /// Forget a connection (its peer mapping if it points to it, its admission count if
    /// inbound).
    pub fn remove(&mut self, id: u64) {
        if let Some(e) = self.conns.remove(&id) {
            let key = (e.meta.peer, e.name.clone());
            if self.by_peer.get(&key) == Some(&id) {
                self.by_peer.remove(&key);
            }
            if !e.meta.outbound {
                self.admission.release(e.meta.peer.ip());
            }
        }
    }

    /// Set the state of a connection; a closing one is no longer reused.
    pub fn set_state(&mut self, id: u64, state: &'static str) {
        if let Some(e) = self.conns.get_mut(&id) {
            e.state = state;
            let key = (e.meta.peer, e.name.clone());
            if state == "closing" && self.by_peer.get(&key) == Some(&id) {
                self.by_peer.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, peer: &str, outbound: bool) -> DirEntry {
        DirEntry {
            meta: ConnMeta {
                id,
                listener: 0,
                local: "127.0.0.1:5060".parse().unwrap(),
                peer: peer.parse().unwrap(),
                outbound,
            },
            traced: false,
            since: Instant::now(),
            state: "open",
            tls: None,
            name: Box::from(""),
        }
    }

    #[test]
    fn only_outbound_connections_are_found_by_address() {
        let mut d = Directory::default();
        let client: SocketAddr = "10.0.0.1:50000".parse().unwrap();
        let ip = client.ip();
        assert_eq!(d.admission.admit(ip, false, 0).0, None);
        d.insert_inbound(1, entry(1, "10.0.0.1:50000", false));
        assert_eq!(
            d.outbound_to(&client, ""),
            None,
            "an inbound connection is never reused"
        );
        d.insert_outbound(0x100, client, entry(0x100, "10.0.0.1:50000", true));
        assert_eq!(d.outbound_to(&client, ""), Some(0x100));
        d.set_state(0x100, "closing");
        assert_eq!(
            d.outbound_to(&client, ""),
            None,
            "a closing one is not reused"
        );
        d.remove(0x100);
        d.remove(1);
        assert!(d.conns.is_empty());
        assert_eq!(d.admission.tracked(), 0, "the inbound one was released");
    }

    /// A connection opened (and its certificate checked) for one host name is reused only
    /// for that name, even when another name resolves to the same address.
    #[test]
    fn outbound_reuse_is_per_host_name() {
        let mut d = Directory::default();
        let server: SocketAddr = "192.0.2.5:443".parse().unwrap();
        let mut a = entry(0x100, "192.0.2.5:443", true);
        a.name = Box::from("a.example");
        d.insert_outbound(0x100, server, a);
        assert_eq!(d.outbound_to(&server, "a.example"), Some(0x100));
        assert_eq!(d.outbound_to(&server, "b.example"), None);
        assert_eq!(d.outbound_to(&server, ""), None);
        d.set_state(0x100, "closing");
        assert_eq!(d.outbound_to(&server, "a.example"), None);
    }
}
