//! `udp_spread "call"`: the threads of a socket take its datagrams as they come, and the
//! datagrams of one call (one Call-ID, RFC 3261 §20.8, peeked at by
//! [`sipcore_sip::peek::call_id`]; a datagram without one goes by its source address) are
//! handled one at a time, in the order they were received.
//!
//! Threads take turns at the socket ([`Sequencer::turn`]): a receive and the note of its
//! call are one step. A thread that receives a datagram of a call another thread is handling
//! leaves a copy with that thread and goes back to the socket; the handling thread takes it next, before it
//! receives again. So a 200 never overtakes its 180 and a BYE never overtakes its ACK (the
//! shared sockets of OpenSIPS's UDP workers and Kamailio's children reorder them), while
//! every thread serves every peer: a trunk that sends everything from one address and port is
//! not held to one thread.
//!
//! At most [`MAX_HELD`] datagrams of a call wait; more are dropped and counted (UDP's answer to
//! loss is the sender's retransmission). As at most one call per thread is being handled at a
//! time, what waits is bounded by threads x `MAX_HELD` datagrams.
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

/// Most datagrams of one call that wait for the thread handling it.
pub const MAX_HELD: usize = 64;

/// A datagram waiting for its call's thread.
#[derive(Debug, PartialEq, Eq)]
pub struct Held {
    /// Its bytes (a copy: the receive buffer is the receiving thread's).
    pub data: Vec<u8>,
    /// Where it came from.
    pub peer: SocketAddr,
}

/// What a thread does with a datagram it received ([`Sequencer::begin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Handle it now, then [`Sequencer::next`] until it says none is left.
    Handle,
    /// Another thread handles its call and will take it.
    Held,
    /// Its call has [`MAX_HELD`] datagrams waiting: dropped.
    Dropped,
}

/// A shard of the calls being handled: key -> the datagrams waiting for its thread.
type Shard = HashMap<u64, VecDeque<Held>>;

/// The calls being handled, by key, with the datagrams waiting for each.
pub struct Sequencer {
    /// Held by a thread from its receive until it noted the datagram's call ([`Sequencer::turn`]).
    turn: Mutex<()>,
    shards: Box<[Mutex<Shard>]>,
    /// Keyed (random per process): the Call-ID is the sender's choice, and a fixed function
    /// would let it aim datagrams of different calls at one key, so at one thread.
    hasher: RandomState,
}

impl Default for Sequencer {
    fn default() -> Self {
        Sequencer::new()
    }
}

impl Sequencer {
    /// An empty sequencer.
    pub fn new() -> Self {
        Sequencer {
            turn: Mutex::new(()),
            shards: (0..16).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// A thread's turn at the socket: taken before its (non-blocking) receive and kept until
    /// the datagram's call is noted ([`Sequencer::begin`]). Without it, a thread could be
    /// preempted between the two while another received the next datagram of the same call
    /// and handled it first. Held for a system call and a look at the datagram, never while
    /// waiting for one.
    pub fn turn(&self) -> MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of a SIP datagram: its Call-ID's, else its source address's.
    pub fn key(&self, data: &[u8], peer: SocketAddr) -> u64 {
        match sipcore_sip::peek::call_id(data) {
            Some(id) => self.hasher.hash_one(id),
            None => self.hasher.hash_one(peer),
        }
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let i = (key % self.shards.len() as u64) as usize;
        // A panic while a shard was locked leaves plain data behind: keep using it.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A datagram of `key` was received: to handle now (no thread is on its call), or left
    /// (copied) for the thread that is, or dropped.
    pub fn begin(&self, key: u64, data: &[u8], peer: SocketAddr) -> Begin {
        match self.shard(key).entry(key) {
            Entry::Vacant(v) => {
                v.insert(VecDeque::new());
                Begin::Handle
            }
            Entry::Occupied(mut o) if o.get().len() < MAX_HELD => {
                o.get_mut().push_back(Held {
                    data: data.to_vec(),
                    peer,
                });
                Begin::Held
            }
            Entry::Occupied(_) => Begin::Dropped,
        }
    }

    /// The next datagram of `key` for the thread that handles its call, in the order they
    /// were received; `None` when none waits, and the call is no longer being handled.
    pub fn next(&self, key: u64) -> Option<Held> {
        let mut shard = self.shard(key);
        let Entry::Occupied(mut o) = shard.entry(key) else {
            return None;
        };
        let held = o.get_mut().pop_front();
        if held.is_none() {
            o.remove();
        }
        held
    }

    /// Calls being handled now.
    #[cfg(test)]
    fn busy(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    fn msg(call: &str, n: u32) -> Vec<u8> {
        format!("INFO sip:b SIP/2.0\r\nCall-ID: {call}\r\nCSeq: {n} INFO\r\n\r\n").into_bytes()
    }

    #[test]
    fn a_call_is_handled_by_one_thread_at_a_time_in_order() {
        let s = Sequencer::new();
        let (a1, a2, a3, b1) = (msg("a", 1), msg("a", 2), msg("a", 3), msg("b", 1));
        let (ka, kb) = (s.key(&a1, peer(1)), s.key(&b1, peer(1)));
        assert_eq!(
            ka,
            s.key(&a3, peer(2)),
            "the key is the Call-ID's, whoever sent it"
        );
        assert_ne!(ka, kb);
        assert_eq!(s.begin(ka, &a1, peer(1)), Begin::Handle);
        // Another call goes ahead at once.
        assert_eq!(s.begin(kb, &b1, peer(1)), Begin::Handle);
        assert_eq!(s.next(kb), None);
        // The call's next datagrams wait for the thread handling it, which takes them in order.
        assert_eq!(s.begin(ka, &a2, peer(1)), Begin::Held);
        assert_eq!(s.begin(ka, &a3, peer(2)), Begin::Held);
        assert_eq!(s.busy(), 1);
        assert_eq!(
            s.next(ka),
            Some(Held {
                data: a2,
                peer: peer(1)
            })
        );
        assert_eq!(
            s.next(ka),
            Some(Held {
                data: a3,
                peer: peer(2)
            })
        );
        assert_eq!(s.next(ka), None);
        assert_eq!(s.busy(), 0);
        // Over: the next datagram of the call is handled by whoever receives it.
        assert_eq!(s.begin(ka, &a1, peer(1)), Begin::Handle);
        assert_eq!(s.next(ka), None);
    }

    #[test]
    fn without_a_call_id_the_source_is_the_key() {
        let s = Sequencer::new();
        let junk = b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert_eq!(s.key(junk, peer(1)), s.key(b"x", peer(1)));
        assert_ne!(s.key(junk, peer(1)), s.key(junk, peer(2)));
    }

    #[test]
    fn at_most_max_held_wait_then_they_are_dropped() {
        let s = Sequencer::new();
        let m = msg("flood", 1);
        let k = s.key(&m, peer(1));
        assert_eq!(s.begin(k, &m, peer(1)), Begin::Handle);
        for _ in 0..MAX_HELD {
            assert_eq!(s.begin(k, &m, peer(1)), Begin::Held);
        }
        assert_eq!(s.begin(k, &m, peer(1)), Begin::Dropped);
        // Another call is not affected.
        let other = msg("other", 1);
        let ko = s.key(&other, peer(1));
        assert_eq!(s.begin(ko, &other, peer(1)), Begin::Handle);
        // Taking one makes room for one.
        assert!(s.next(k).is_some());
        assert_eq!(s.begin(k, &m, peer(1)), Begin::Held);
        assert_eq!(s.begin(k, &m, peer(1)), Begin::Dropped);
    }

    #[test]
    fn threads_racing_on_one_call_handle_each_datagram_once_in_order() {
        // Four threads receive the numbered datagrams of one call in turn (as the kernel hands
        // a shared socket's datagrams out) and handle them through the sequencer: every
        // datagram not dropped is handled exactly once, in the order received.
        let s = Arc::new(Sequencer::new());
        let handled = Arc::new(Mutex::new(Vec::new()));
        // The receive order: the next number, and those dropped (a full queue).
        let recv = Arc::new(Mutex::new((0u32, Vec::new())));
        const N: u32 = 5_000;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, handled, recv) = (s.clone(), handled.clone(), recv.clone());
                std::thread::spawn(move || loop {
                    let (m, k, begin) = {
                        let mut r = recv.lock().unwrap();
                        let n = r.0;
                        if n >= N {
                            return;
                        }
                        r.0 += 1;
                        let m = msg("one", n);
                        let k = s.key(&m, peer(1));
                        let begin = s.begin(k, &m, peer(1));
                        if begin == Begin::Dropped {
                            r.1.push(n);
                        }
                        (m, k, begin)
                    };
                    if begin == Begin::Handle {
                        handled.lock().unwrap().push(m);
                        while let Some(h) = s.next(k) {
                            handled.lock().unwrap().push(h.data);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let dropped = std::mem::take(&mut recv.lock().unwrap().1);
        let want: Vec<Vec<u8>> = (0..N)
            .filter(|n| !dropped.contains(n))
            .map(|n| msg("one", n))
            .collect();
        assert_eq!(*handled.lock().unwrap(), want);
        assert_eq!(s.busy(), 0);
    }
}
