//! A sink that reads and discards HEP packets (stand-in collector), over UDP (one datagram per
//! packet) or TCP (HEPv3 packets back to back, framed by their length field), printing
//! `packets=N bytes=B` once a second so a script can check that tracing really sent.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// Bind `bind` and discard everything received, forever. With `no_read`, never read: the
/// kernel drops datagrams once the socket buffer is full (no ICMP, no CPU spent by the sink).
pub fn run(bind: &str, no_read: bool) -> std::io::Result<()> {
    let s = UdpSocket::bind(bind)?;
    if no_read {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; 65536];
    let (mut packets, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    loop {
        match s.recv(&mut buf) {
            Ok(n) => {
                packets += 1;
                bytes += n as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        if last.elapsed() >= Duration::from_secs(1) {
            println!("packets={packets} bytes={bytes}");
            last = Instant::now();
        }
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
