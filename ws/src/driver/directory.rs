//! The directory: what other threads know about each connection, which outbound connection
//! to reuse for an address, and the inbound admission counts. Pure bookkeeping, no I/O.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::admission::Admission;
use super::conn::Phase;

/// What other threads know about a connection: two bytes, so that an idle connection costs
/// the directory only a hash table slot (issue 16). Everything else (addresses, age, TLS) is
/// in the owning worker's `Conn`; MI `ws_list` asks the workers (`Runtime::connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirEntry {
    /// Where the connection is in its life.
    pub phase: Phase,
    /// [`super::Sink::opened`] returned true for it.
    pub traced: bool,
}

impl DirEntry {
    /// `connecting`, `tls handshake`, `handshake`, `open` or `closing`.
    pub fn state(&self) -> &'static str {
        self.phase.name()
    }
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
    /// The reuse key of each outbound connection (its peer address and host name, lower
    /// case; empty when it was opened for an address).
    outbound: HashMap<u64, (SocketAddr, Box<str>)>,
    /// Inbound connections per peer address (`ws_max_connections_per_ip`).
    pub admission: Admission,
}

impl Directory {
    /// Record an outbound connection `id` to `addr`, opened for the host name `name`; it
    /// becomes the one reused for `addr` and that name unless another open one is already.
    /// A connection verified for one name is never reused for another (OpenSIPS
    /// `cert_check_on_conn_reusage`, always on).
    pub fn insert_outbound(&mut self, id: u64, addr: SocketAddr, name: Box<str>) {
        let key = (addr, name);
        self.conns.insert(
            id,
            DirEntry {
                phase: Phase::Connecting,
                traced: false,
            },
        );
        self.by_peer.entry(key.clone()).or_insert(id);
        self.outbound.insert(id, key);
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

    /// Forget connection `id` whose peer is `peer`: its reuse mapping if outbound and it is
    /// the one reused, its admission count if inbound.
    pub fn remove(&mut self, id: u64, peer: SocketAddr) {
        if self.conns.remove(&id).is_none() {
            return;
        }
        match self.outbound.remove(&id) {
            Some(key) => {
                if self.by_peer.get(&key) == Some(&id) {
                    self.by_peer.remove(&key);
                }
            }
            None => self.admission.release(peer.ip()),
        }
    }

    /// Set the phase of a connection; a closing one is no longer reused.
    pub fn set_state(&mut self, id: u64, phase: Phase) {
        if let Some(e) = self.conns.get_mut(&id) {
            e.phase = phase;
            if phase.name() == "closing" {
                if let Some(key) = self.outbound.get(&id) {
                    if self.by_peer.get(key) == Some(&id) {
                        self.by_peer.remove(key);
                    }
                }
            }
        }
    }

    /// Set whether a connection is traced (decided once it is connected).
    pub fn set_traced(&mut self, id: u64, traced: bool) {
        if let Some(e) = self.conns.get_mut(&id) {
            e.traced = traced;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound() -> DirEntry {
        DirEntry {
            phase: Phase::ServerHandshake,
            traced: false,
        }
    }

    #[test]
    fn only_outbound_connections_are_found_by_address() {
        let mut d = Directory::default();
        let client: SocketAddr = "10.0.0.1:50000".parse().unwrap();
        let ip = client.ip();
        assert_eq!(d.admission.admit(ip, false, 0).0, None);
        d.insert_inbound(1, inbound());
        assert_eq!(
            d.outbound_to(&client, ""),
            None,
            "an inbound connection is never reused"
        );
        d.insert_outbound(0x100, client, Box::from(""));
        assert_eq!(d.outbound_to(&client, ""), Some(0x100));
        d.set_state(0x100, Phase::Closing);
        assert_eq!(
            d.outbound_to(&client, ""),
            None,
            "a closing one is not reused"
        );
        d.remove(0x100, client);
        assert_eq!(
            d.admission.tracked(),
            1,
            "an outbound one holds no admission count"
        );
        d.remove(1, client);
        assert!(d.conns.is_empty());
        assert!(d.outbound.is_empty());
        assert_eq!(d.admission.tracked(), 0, "the inbound one was released");
    }

    /// A connection opened (and its certificate checked) for one host name is reused only
    /// for that name, even when another name resolves to the same address.
    #[test]
    fn outbound_reuse_is_per_host_name() {
        let mut d = Directory::default();
        let server: SocketAddr = "192.0.2.5:443".parse().unwrap();
        d.insert_outbound(0x100, server, Box::from("a.example"));
        assert_eq!(d.outbound_to(&server, "a.example"), Some(0x100));
        assert_eq!(d.outbound_to(&server, "b.example"), None);
        assert_eq!(d.outbound_to(&server, ""), None);
        d.set_state(0x100, Phase::Closing);
        assert_eq!(d.outbound_to(&server, "a.example"), None);
    }

    /// A second outbound connection to the same place does not take over the reuse mapping,
    /// and removing it leaves the first one's mapping in place.
    #[test]
    fn removing_a_second_outbound_keeps_the_first_mapping() {
        let mut d = Directory::default();
        let server: SocketAddr = "192.0.2.5:443".parse().unwrap();
        d.insert_outbound(0x100, server, Box::from(""));
        d.insert_outbound(0x200, server, Box::from(""));
        assert_eq!(d.outbound_to(&server, ""), Some(0x100));
        d.remove(0x200, server);
        assert_eq!(d.outbound_to(&server, ""), Some(0x100));
        d.remove(0x100, server);
        assert_eq!(d.outbound_to(&server, ""), None);
    }

    /// What an idle connection costs the directory: its slot's key and value.
    #[test]
    fn an_entry_is_two_bytes() {
        assert_eq!(std::mem::size_of::<DirEntry>(), 2);
    }
}
