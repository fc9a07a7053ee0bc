//! Waiting until a socket its threads share is readable, waking one thread per datagram and
//! not all of them: each thread has its own epoll instance with the socket registered
//! `EPOLLEXCLUSIVE` (Linux 4.5; epoll(7)). A stop (`shutdown(SHUT_RD)`) still wakes every
//! thread: the kernel wakes all waiters on a state change.
use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// One thread's wait on a shared socket.
pub struct Readiness {
    ep: OwnedFd,
}

impl Readiness {
    /// An epoll instance watching `sock` for input, exclusively.
    pub fn new(sock: &UdpSocket) -> io::Result<Readiness> {
        // SAFETY: epoll_create1 takes no pointer; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nothing else.
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open for the call; `ev` is a valid epoll_event.
        let r = unsafe {
            libc::epoll_ctl(
                ep.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                sock.as_raw_fd(),
                &mut ev,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Readiness { ep })
    }

    /// Waits until the socket is readable or `timeout` passed: true when readable (a
    /// datagram, an error to read, or the read side shut down).
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `ev` is valid for one event, as the count says; the descriptor is open.
        let n = unsafe { libc::epoll_wait(self.ep.as_raw_fd(), &mut ev, 1, ms) };
        match n {
            n if n > 0 => Ok(true),
            0 => Ok(false),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn readable_when_a_datagram_waits_not_before() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = Readiness::new(&s).unwrap();
        assert!(!r.wait(Duration::from_millis(0)).unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"x", s.local_addr().unwrap()).unwrap();
        // Level-triggered: readable until it is read, however often it is asked.
        assert!(r.wait(Duration::from_secs(30)).unwrap());
        assert!(r.wait(Duration::from_secs(30)).unwrap());
        let mut buf = [0u8; 4];
        assert_eq!(s.recv_from(&mut buf).unwrap().0, 1);
        assert!(!r.wait(Duration::from_millis(0)).unwrap());
    }

    #[test]
    fn a_read_shutdown_wakes_a_waiting_thread() {
        let s = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let r = Readiness::new(&s).unwrap();
        let t0 = Instant::now();
        let waiter = std::thread::spawn(move || r.wait(Duration::from_secs(60)).unwrap());
        crate::socket::wake(&s);
        assert!(waiter.join().unwrap());
        assert!(t0.elapsed() < Duration::from_secs(30));
    }
}
