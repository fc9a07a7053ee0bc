//! Reconnecting to a TCP collector (issue 10, item 14): the delays between attempts, and
//! giving a connection up without leaving its unsent data in the kernel.

use std::net::TcpStream;
use std::time::Duration;

/// Closes a connection we give up on with a reset, so that the kernel discards its unsent
/// data now (a graceful close keeps it queued for a peer that is not reading).
pub(crate) fn abort(s: TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `s` owns an open socket for the duration of the call; `linger` is a valid
        // `struct linger` whose size is passed with it; the kernel only reads it.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    drop(s);
}

/// Reconnection delays: doubling from `backoff_min` to `backoff_max` while attempts fail or
/// connections do not last; reset by a connection that lasted `backoff_max`.
pub(crate) struct Backoff {
    /// The next delay.
    pub(crate) next: Duration,
    /// `backoff_min`.
    pub(crate) min: Duration,
    /// `backoff_max`.
    pub(crate) max: Duration,
}

impl Backoff {
    /// The delay before the next attempt after a failed one (and doubles the following).
    pub(crate) fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// The delay before reconnecting after losing a connection that was up for `lived`.
    pub(crate) fn lost(&mut self, lived: Duration) -> Duration {
        if lived >= self.max {
            self.next = self.min;
            Duration::ZERO
        } else {
            self.failed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_until_a_connection_lasts() {
        let ms = Duration::from_millis;
        let mut b = Backoff {
            next: ms(100),
            min: ms(100),
            max: ms(1000),
        };
        assert_eq!(b.failed(), ms(100));
        assert_eq!(b.failed(), ms(200));
        // Connections that do not last (a stalled collector) keep doubling, up to the cap.
        assert_eq!(b.lost(ms(150)), ms(400));
        assert_eq!(b.lost(ms(150)), ms(800));
        assert_eq!(b.lost(ms(150)), ms(1000));
        assert_eq!(b.lost(ms(999)), ms(1000));
        // One that lasted: reconnect at once, and start over.
        assert_eq!(b.lost(ms(1000)), Duration::ZERO);
        assert_eq!(b.failed(), ms(100));
    }
}
