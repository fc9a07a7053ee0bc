//! A UDP sink that reads and discards datagrams (stand-in HEP collector), printing
//! `packets=N bytes=B` once a second so a script can check that tracing really sent.

use std::net::UdpSocket;
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
