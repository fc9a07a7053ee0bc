//! UDP sender loop: one datagram per queued packet. Each sweep of the queue takes every staged
//! packet; they go out up to [`MAX_BATCH`] per `sendmmsg(2)` call (Linux/glibc; one `send` per
//! packet elsewhere), a partial `sendmmsg` being continued where it stopped. After a sweep of
//! fewer than [`FULL_SWEEP`](super::FULL_SWEEP) packets the thread waits
//! [`BATCH_WINDOW`](super::BATCH_WINDOW), so that under load it is woken by its timer, not by
//! every packet; when idle it parks until the next packet.
//!
//! HEPv3 runs of similar size go out as one `sendmsg` with UDP segmentation offload when the
//! kernel and the route allow it ([`super::gso`]; `hep_udp_gso`, on by default).
//!
//! The socket is bound to an ephemeral port of the collector's family and connected to the
//! collector (the kernel then skips the route lookup per datagram). An ICMP "port unreachable"
//! surfaces as `ECONNREFUSED` on a later send: that packet is counted as dropped and the socket
//! kept. Other send errors drop the packet and close the socket, so the next packet re-resolves
//! the collector. A failed resolution or bind drops packets until a backoff delay (doubling
//! from `backoff_min` to `backoff_max`) has passed.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
use super::gso;
use super::stats::Counters;
use super::Worker;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Most datagrams per `sendmmsg` call (the kernel's limit, UIO_MAXIOV, is 1024).
pub const MAX_BATCH: usize = 256;

/// Something that sends datagrams in order: the socket, or a test double.
pub(crate) trait Datagrams {
    /// Sends `packets[0]`, `packets[1]`, ... as one datagram each, at most [`MAX_BATCH`] per
    /// call; returns how many were sent (at least 1), or the error of the first one.
    fn send_many(&mut self, packets: &[&[u8]]) -> io::Result<usize>;
}

/// The real thing: a connected UDP socket.
struct Connected {
    socket: UdpSocket,
    /// Scratch arrays for `sendmmsg`, reused across calls.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    mmsg: mmsg::Scratch,
    /// UDP segmentation offload ([`gso`]): the largest segment the path takes, while the
    /// kernel and the route accept it (`None`: one datagram per packet).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    gso: Option<usize>,
    /// The padded packets of one segmented send, reused across calls.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    gso_buf: Vec<u8>,
}

impl Datagrams for Connected {
    /// A run of packets that [`gso::plan`] accepts goes out in one `sendmsg` with
    /// `UDP_SEGMENT`; packets before the next such run go out through `sendmmsg`.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn send_many(&mut self, packets: &[&[u8]]) -> io::Result<usize> {
        if let Some(max_segment) = self.gso {
            if let Some(run) = gso::plan(packets, max_segment) {
                gso::build(&mut self.gso_buf, packets, run);
                match mmsg::send_segmented(&self.socket, &self.gso_buf, run.segment) {
                    Ok(()) => return Ok(run.count),
                    // No checksum offload on the route's device (EIO), a segment the route
                    // no longer takes (EINVAL): one datagram per packet from now on.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                        self.gso = None;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                // Up to where the next run starts (or all of them).
                let next = (1..packets.len().min(MAX_BATCH))
                    .find(|&k| gso::starts_run(&packets[k..], max_segment))
                    .unwrap_or(packets.len());
                return self.mmsg.send(&self.socket, &packets[..next]);
            }
        }
        self.mmsg.send(&self.socket, packets)
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn send_many(&mut self, packets: &[&[u8]]) -> io::Result<usize> {
        let Some(first) = packets.first() else {
            return Ok(0);
        };
        self.socket.send(first)?;
        Ok(1)
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod mmsg {
    //! `sendmmsg(2)` over a connected socket (no destination address per message), and one
    //! segmented `sendmsg(2)` (`UDP_SEGMENT`).
    use super::MAX_BATCH;
    use std::io;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// The `iovec` and `mmsghdr` arrays of one call. They hold raw pointers into the packets
    /// only during [`Scratch::send`], which clears them before returning.
    pub(super) struct Scratch {
        iov: Vec<libc::iovec>,
        hdr: Vec<libc::mmsghdr>,
    }

    impl Scratch {
        /// Empty arrays with room for [`MAX_BATCH`] messages.
        pub(super) fn new() -> Scratch {
            Scratch {
                iov: Vec::with_capacity(MAX_BATCH),
                hdr: Vec::with_capacity(MAX_BATCH),
            }
        }

        /// See [`super::Datagrams::send_many`].
        pub(super) fn send(&mut self, socket: &UdpSocket, packets: &[&[u8]]) -> io::Result<usize> {
            let n = packets.len().min(MAX_BATCH);
            self.iov.clear();
            self.hdr.clear();
            // The kernel only reads through iov_base (the cast to *mut is what the C type
            // wants).
            self.iov.extend(packets.iter().take(n).map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            }));
            // `iov` is complete and is not touched again until the call returns, so these
            // pointers stay valid.
            for iov in self.iov.iter_mut() {
                self.hdr.push(libc::mmsghdr {
                    msg_hdr: libc::msghdr {
                        msg_name: std::ptr::null_mut(),
                        msg_namelen: 0,
                        msg_iov: iov,
                        msg_iovlen: 1,
                        msg_control: std::ptr::null_mut(),
                        msg_controllen: 0,
                        msg_flags: 0,
                    },
                    msg_len: 0,
                });
            }
            let count = u32::try_from(self.hdr.len()).unwrap_or(0);
            // SAFETY: `hdr` holds `count` initialised `mmsghdr`s, each pointing to one `iovec`
            // of `iov` (alive and unmoved until we clear it below), each of which points to a
            // packet borrowed for this whole call; no `msg_name` or control data. The kernel
            // writes only the `msg_len` fields, inside `hdr`. The descriptor is owned by
            // `socket` and open for the duration of the call.
            let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), self.hdr.as_mut_ptr(), count, 0) };
            self.iov.clear();
            self.hdr.clear();
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(usize::try_from(r).unwrap_or(0))
        }
    }

    /// `UDP_SEGMENT` (linux/udp.h; not in the libc crate for glibc targets).
    const UDP_SEGMENT: libc::c_int = 103;

    /// Whether the kernel knows `UDP_SEGMENT` (Linux 4.18+): an older one would ignore the
    /// control message and send the whole buffer as one datagram.
    pub(super) fn segmentation_supported(socket: &UdpSocket) -> bool {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` are valid for writes of the sizes given; the descriptor is
        // owned by `socket`.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                UDP_SEGMENT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        r == 0
    }

    /// The MTU of the connected socket's route (`IP_MTU` / `IPV6_MTU`), if known.
    pub(super) fn path_mtu(socket: &UdpSocket, v6: bool) -> Option<usize> {
        let (level, name) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_MTU)
        } else {
            (libc::IPPROTO_IP, libc::IP_MTU)
        };
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as in `segmentation_supported`.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (r == 0).then(|| usize::try_from(v).ok()).flatten()
    }

    /// Sends `buf` in one call, which the kernel cuts into datagrams of `segment` bytes (the
    /// last one shorter, if `buf` is not a multiple).
    pub(super) fn send_segmented(socket: &UdpSocket, buf: &[u8], segment: usize) -> io::Result<()> {
        let seg = u16::try_from(segment).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // Room for one cmsghdr and a u16, 8-byte aligned (CMSG_SPACE(2) is 24 on LP64).
        let mut control = [0u64; 4];
        // SAFETY: CMSG_SPACE / CMSG_LEN only compute sizes.
        let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(2), libc::CMSG_LEN(2)) };
        if space as usize > std::mem::size_of_val(&control) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: an all-zero msghdr is valid (no name, no iov, no control yet).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: `msg_control` points to `control`, large enough for one header and its
        // u16 (checked above) and aligned for cmsghdr; CMSG_FIRSTHDR returns its start, and
        // CMSG_DATA a pointer inside it, written unaligned. `iov` points to `buf`, borrowed
        // for the whole call; the kernel only reads both. The descriptor is owned by
        // `socket`.
        let r = unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            if c.is_null() {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            (*c).cmsg_len = cmsg_len as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
            libc::sendmsg(socket.as_raw_fd(), &msg, 0)
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Sends `packets` in order through `out`, continuing after partial sends. A packet whose
/// send fails is counted as dropped; after `ECONNREFUSED` sending goes on, after any other
/// error it stops and the error is returned (the socket should be replaced). Returns the
/// number of packets consumed (sent or dropped).
pub(crate) fn send_all(
    out: &mut impl Datagrams,
    packets: &[&[u8]],
    counters: &Counters,
) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while let Some(rest) = packets.get(done..).filter(|r| !r.is_empty()) {
        match out.send_many(rest) {
            Ok(n) if n > 0 => {
                let n = n.min(rest.len());
                counters.sent(n as u64);
                done += n;
            }
            Ok(_) => {
                counters.error();
                counters.dropped(1);
                return (done + 1, Some(io::ErrorKind::WriteZero.into()));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                counters.error();
                counters.dropped(1);
                done += 1;
                if e.kind() != io::ErrorKind::ConnectionRefused {
                    return (done, Some(e));
                }
            }
        }
    }
    (done, None)
}

/// Opens a socket connected to the first resolved address of the collector.
fn open(w: &Worker) -> io::Result<Connected> {
    let addrs = w.resolve()?;
    let to = addrs
        .first()
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
    let local: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(to)?;
    // A full socket buffer must not stall the thread forever.
    socket.set_write_timeout(Some(w.cfg.tcp_write_timeout))?;
    // Segments fit the route's MTU less the IP and UDP headers.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let gso = (w.gso && mmsg::segmentation_supported(&socket))
        .then(|| mmsg::path_mtu(&socket, to.is_ipv6()))
        .flatten()
        .map(|mtu| mtu.saturating_sub(if to.is_ipv6() { 48 } else { 28 }))
        .filter(|&m| m >= 512);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let gso = None;
    Ok(Connected::new(socket, gso))
}

impl Connected {
    /// A connected socket; `gso`: the largest segment for segmented sends (`None`: one
    /// datagram per packet; always so off Linux/glibc).
    fn new(socket: UdpSocket, gso: Option<usize>) -> Connected {
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = gso;
        Connected {
            socket,
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            mmsg: mmsg::Scratch::new(),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            gso,
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            gso_buf: Vec::new(),
        }
    }
}

/// The socket, reopened after errors with a backoff.
struct Link {
    socket: Option<Connected>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Link {
    /// Sends `packets`, (re)opening the socket as needed; drops what cannot be sent.
    fn send(&mut self, w: &mut Worker, mut packets: &[&[u8]]) {
        let shared = std::sync::Arc::clone(&w.shared);
        let counters = &shared.counters;
        while !packets.is_empty() {
            if self.socket.is_none() {
                if self.retry_at.is_some_and(|t| Instant::now() < t) {
                    counters.dropped(packets.len() as u64);
                    return;
                }
                match open(w) {
                    Ok(s) => {
                        self.socket = Some(s);
                        self.retry_at = None;
                        self.backoff = w.cfg.backoff_min;
                        counters.up(false);
                    }
                    Err(e) => {
                        counters.error();
                        w.failed(format_args!("open a socket to the collector: {e}"));
                        counters.dropped(packets.len() as u64);
                        self.retry_at = Some(Instant::now() + self.backoff);
                        self.backoff = (self.backoff * 2).min(w.cfg.backoff_max);
                        return;
                    }
                }
            }
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            let errors = counters.snapshot().errors;
            let (done, err) = send_all(socket, packets, counters);
            packets = packets.get(done..).unwrap_or_default();
            if let Some(e) = err {
                w.failed(format_args!("send: {e}"));
                self.socket = None;
                counters.down();
            } else if counters.snapshot().errors > errors {
                w.failed("send: connection refused (nothing listens on the collector's port)");
            }
        }
    }
}

/// Runs until the handle is dropped and the queue is drained.
pub(crate) fn run(mut w: Worker) {
    let mut link = Link {
        socket: None,
        retry_at: None,
        backoff: w.cfg.backoff_min,
    };
    let mut batches = Vec::new();
    loop {
        w.check_health();
        let stopping = w.shared.stopping();
        let n = w.sweep(&mut batches);
        if batches.is_empty() {
            if stopping {
                break;
            }
            w.park();
            continue;
        }
        let packets: Vec<&[u8]> = batches
            .iter()
            .flat_map(|b| (0..b.len()).filter_map(|i| b.packet(i)))
            .collect();
        link.send(&mut w, &packets);
        drop(packets);
        for b in batches.drain(..) {
            w.release(b);
        }
        if n < super::FULL_SWEEP && !stopping {
            w.shared.sleep(super::BATCH_WINDOW);
        }
    }
    w.shared.counters.down();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts at most `per_call` datagrams per call; fails at the packet indexes in `fail`.
    struct Fake {
        got: Vec<Vec<u8>>,
        per_call: usize,
        calls: usize,
        next: usize,
        fail: Vec<(usize, io::ErrorKind)>,
    }

    fn fake(per_call: usize, fail: &[(usize, io::ErrorKind)]) -> Fake {
        Fake {
            got: Vec::new(),
            per_call,
            calls: 0,
            next: 0,
            fail: fail.to_vec(),
        }
    }

    impl Datagrams for Fake {
        fn send_many(&mut self, packets: &[&[u8]]) -> io::Result<usize> {
            self.calls += 1;
            let mut n = 0;
            for p in packets.iter().take(self.per_call.min(MAX_BATCH)) {
                if let Some(i) = self.fail.iter().position(|f| f.0 == self.next) {
                    if n > 0 {
                        return Ok(n);
                    }
                    self.next += 1;
                    return Err(self.fail.remove(i).1.into());
                }
                self.got.push(p.to_vec());
                self.next += 1;
                n += 1;
            }
            Ok(n)
        }
    }

    fn packets(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("packet {i}").into_bytes()).collect()
    }

    fn refs(p: &[Vec<u8>]) -> Vec<&[u8]> {
        p.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn partial_sends_are_continued_in_order() {
        let p = packets(10);
        let mut out = fake(3, &[]);
        let c = Counters::default();
        let (done, err) = send_all(&mut out, &refs(&p), &c);
        assert_eq!((done, err.is_none()), (10, true));
        assert_eq!(out.got, p);
        assert_eq!(out.calls, 4);
        assert_eq!((c.snapshot().sent, c.snapshot().dropped), (10, 0));
    }

    #[test]
    fn more_than_max_batch_takes_several_calls() {
        let p = packets(MAX_BATCH * 2 + 1);
        let mut out = fake(usize::MAX, &[]);
        let c = Counters::default();
        assert_eq!(send_all(&mut out, &refs(&p), &c).0, p.len());
        assert_eq!(out.got, p);
        assert_eq!(out.calls, 3);
    }

    #[test]
    fn refused_costs_one_packet_and_goes_on() {
        let p = packets(10);
        let mut out = fake(100, &[(4, io::ErrorKind::ConnectionRefused)]);
        let c = Counters::default();
        let (done, err) = send_all(&mut out, &refs(&p), &c);
        assert_eq!((done, err.is_none()), (10, true));
        let mut want = p.clone();
        want.remove(4);
        assert_eq!(out.got, want);
        let st = c.snapshot();
        assert_eq!((st.sent, st.dropped, st.errors), (9, 1, 1));
    }

    #[test]
    fn other_errors_stop_after_dropping_one() {
        let p = packets(10);
        let mut out = fake(100, &[(2, io::ErrorKind::PermissionDenied)]);
        let c = Counters::default();
        let (done, err) = send_all(&mut out, &refs(&p), &c);
        assert_eq!(done, 3);
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::PermissionDenied));
        assert_eq!(out.got, p[..2].to_vec());
        let st = c.snapshot();
        assert_eq!((st.sent, st.dropped, st.errors), (2, 1, 1));
    }

    #[test]
    fn interrupted_is_retried() {
        let p = packets(3);
        let mut out = fake(100, &[(0, io::ErrorKind::Interrupted)]);
        let c = Counters::default();
        assert_eq!(send_all(&mut out, &refs(&p), &c).0, 3);
        // The interrupted attempt consumed the fake's index 0 without sending anything.
        assert_eq!(out.got, p);
        assert_eq!(c.snapshot().dropped, 0);
    }

    /// A receiving socket on loopback (5 s read timeout) and a sending one connected to it.
    fn loopback_pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        (rx, tx)
    }

    #[test]
    fn a_batch_arrives_intact_and_in_order_over_a_real_socket() {
        let (rx, tx) = loopback_pair();
        let mut out = Connected::new(tx, None);
        // Few and small enough for the default receive buffer.
        let p: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1 + usize::from(i) * 7]).collect();
        let c = Counters::default();
        let (done, err) = send_all(&mut out, &refs(&p), &c);
        assert_eq!(done, 64);
        assert!(err.is_none(), "{err:?}");
        let mut buf = [0u8; 2048];
        for want in &p {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &want[..]);
        }
        assert_eq!(c.snapshot().sent, 64);
    }

    /// HEPv3 packets of several sizes through `UDP_SEGMENT` on loopback: each arrives as a
    /// datagram of its own, in order, decoding to its own payload; the padded ones are as
    /// long as their run's segment.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn segmented_runs_arrive_as_one_decodable_datagram_per_packet() {
        use crate::codec::decode;
        let (rx, tx) = loopback_pair();
        if !mmsg::segmentation_supported(&tx) {
            eprintln!("skipped: this kernel has no UDP_SEGMENT (Linux 4.18+)");
            return;
        }
        let max = mmsg::path_mtu(&tx, false).unwrap() - 28;
        let mut out = Connected::new(tx, Some(max));
        let payloads: Vec<Vec<u8>> = (0..40usize)
            .map(|i| vec![b'a' + (i % 26) as u8; 300 + (i * 37) % 90])
            .collect();
        let p: Vec<Vec<u8>> = payloads
            .iter()
            .map(|pl| crate::sender::tests::hep(pl).to_vec())
            .collect();
        let c = Counters::default();
        let (done, err) = send_all(&mut out, &refs(&p), &c);
        assert_eq!(done, p.len());
        assert!(err.is_none(), "{err:?}");
        assert!(out.gso.is_some(), "segmentation was turned off");
        let mut buf = [0u8; 4096];
        let mut padded = 0;
        for (want, pl) in p.iter().zip(&payloads) {
            let n = rx.recv(&mut buf).unwrap();
            let d = decode(&buf[..n]).expect("decodes");
            assert_eq!(d.payload, &pl[..]);
            if n != want.len() {
                padded += 1;
                assert!(n > want.len());
                assert!(d.extra.iter().any(|ch| ch.vendor == super::gso::PAD_VENDOR));
            }
        }
        assert!(padded > 0, "no packet was padded: no run was segmented");
        assert_eq!(c.snapshot().sent, p.len() as u64);
    }
}
