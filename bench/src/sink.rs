//! A sink that reads and discards HEP packets (stand-in collector), over UDP (one datagram per
//! packet) or TCP (HEPv3 packets back to back, framed by their length field), printing
//! `packets=N bytes=B` once a second so a script can check that tracing really sent.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// Bind `bind` and discard everything received, forever. With `no_read`, never read: the
/// kernel drops datagrams once the socket buffer is full (no ICMP, no CPU spent by the sink).
///
/// The socket is non-blocking with a 4 MiB receive buffer; the sink drains it with
/// `recvmmsg(2)` (64 datagrams per call) and, when it is empty, sleeps 1 ms instead of
/// blocking. So it is never a waiter on the socket, and a sender on the same host does not pay
/// for waking it on every datagram (on loopback the sender's `sendmmsg` runs the receive path,
/// wake-ups included, in its own context; a collector on another host costs the sender none
/// of that). Datagrams still go through the kernel's whole UDP receive path.
pub fn run(bind: &str, no_read: bool) -> std::io::Result<()> {
    let s = UdpSocket::bind(bind)?;
    if no_read {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    s.set_nonblocking(true)?;
    set_rcvbuf(&s, 4 << 20);
    let mut rx = Batch::new();
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    loop {
        match rx.recv(&s) {
            Ok(lens) => {
                packets += lens.len() as u64;
                bytes += lens.iter().map(|&n| n as u64).sum::<u64>();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if last.elapsed() >= Duration::from_secs(1) {
            println!("packets={packets} bytes={bytes}");
            last = Instant::now();
        }
    }
}

/// Asks for a receive buffer of `n` bytes (the kernel caps it at net.core.rmem_max).
fn set_rcvbuf(s: &UdpSocket, n: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and a pointer to a c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::addr_of!(n).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        eprintln!("sink: SO_RCVBUF: {}", std::io::Error::last_os_error());
    }
}

/// Datagrams per `recvmmsg` call.
const RX_BATCH: usize = 64;

/// Buffers for one `recvmmsg` call.
struct Batch {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: (0..RX_BATCH).map(|_| vec![0u8; 65536]).collect(),
            lens: Vec::with_capacity(RX_BATCH),
        }
    }

    /// Receives up to [`RX_BATCH`] datagrams without waiting; returns their lengths.
    fn recv(&mut self, s: &UdpSocket) -> std::io::Result<&[usize]> {
        use std::os::fd::AsRawFd;
        let mut iov: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
        let mut hdr: Vec<libc::mmsghdr> = (0..RX_BATCH)
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for (h, v) in hdr.iter_mut().zip(iov.iter_mut()) {
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdr` holds RX_BATCH headers, each pointing to one iovec of `iov` that
        // points to a live 64 KiB buffer of `self.bufs`; both outlive the call.
        let n = unsafe {
            libc::recvmmsg(
                s.as_raw_fd(),
                hdr.as_mut_ptr(),
                RX_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.lens.clear();
        self.lens
            .extend(hdr.iter().take(n as usize).map(|h| h.msg_len as usize));
        Ok(&self.lens)
    }
}

/// TCP: accept collectors' connections (one thread each) and count HEPv3 packets by their
/// 16-bit total length at offset 4 (HEP3 spec).
pub fn run_tcp(bind: &str) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let l = TcpListener::bind(bind)?;
    let packets = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    {
        let (p, b) = (packets.clone(), bytes.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            println!(
                "packets={} bytes={}",
                p.load(Ordering::Relaxed),
                b.load(Ordering::Relaxed)
            );
        });
    }
    for s in l.incoming() {
        let mut s = s?;
        let (p, b) = (packets.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut have = 0usize;
            loop {
                let n = match s.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                b.fetch_add(n as u64, Ordering::Relaxed);
                let mut pos = 0;
                while have - pos >= 6 {
                    let len = usize::from(u16::from_be_bytes([buf[pos + 4], buf[pos + 5]]));
                    if len < 6 {
                        eprintln!("sink: bad HEP length {len}");
                        return;
                    }
                    if have - pos < len {
                        break;
                    }
                    pos += len;
                    p.fetch_add(1, Ordering::Relaxed);
                }
                buf.copy_within(pos..have, 0);
                have -= pos;
            }
        });
    }
    Ok(())
}
