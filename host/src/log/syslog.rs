//! Syslog: OpenSIPS's `log_facility` names and RFC 3164 datagrams to the local syslog socket
//! (`/dev/log`), formatted as glibc's `syslog()` writes them: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`.
//! The formatter is pure; [`SyslogWriter`] only sends, reconnecting when the daemon restarts.
use super::severity::Severity;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// The syslog socket; `SIPCORE_SYSLOG_SOCKET` replaces it (for tests, which bind their own).
pub const DEFAULT_SOCKET: &str = "/dev/log";
/// The environment variable naming another socket.
pub const SOCKET_ENV: &str = "SIPCORE_SYSLOG_SOCKET";
/// The longest datagram sent (rsyslog's default maximum message size); longer records are cut.
pub const MAX_DATAGRAM: usize = 8192;

/// OpenSIPS's `log_facility` values, with their syslog codes (RFC 5424 §6.2.1).
const FACILITIES: [(&str, u8); 20] = [
    ("LOG_KERN", 0),
    ("LOG_USER", 1),
    ("LOG_MAIL", 2),
    ("LOG_DAEMON", 3),
    ("LOG_AUTH", 4),
    ("LOG_SYSLOG", 5),
    ("LOG_LPR", 6),
    ("LOG_NEWS", 7),
    ("LOG_UUCP", 8),
    ("LOG_CRON", 9),
    ("LOG_AUTHPRIV", 10),
    ("LOG_FTP", 11),
    ("LOG_LOCAL0", 16),
    ("LOG_LOCAL1", 17),
    ("LOG_LOCAL2", 18),
    ("LOG_LOCAL3", 19),
    ("LOG_LOCAL4", 20),
    ("LOG_LOCAL5", 21),
    ("LOG_LOCAL6", 22),
    ("LOG_LOCAL7", 23),
];

/// A syslog facility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(u8);

impl Facility {
    /// `LOG_DAEMON`, OpenSIPS's default.
    pub const DAEMON: Facility = Facility(3);

    /// A `log_facility` value (`LOG_LOCAL0`; case-insensitive, `LOG_` optional).
    pub fn parse(name: &str) -> Result<Facility, String> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("LOG_") {
            upper
        } else {
            format!("LOG_{upper}")
        };
        FACILITIES
            .iter()
            .find(|(n, _)| *n == full)
            .map(|&(_, code)| Facility(code))
            .ok_or_else(|| {
                format!(
                    "log_facility: unknown facility '{name}' (expected one of LOG_DAEMON, LOG_USER, LOG_LOCAL0 .. LOG_LOCAL7, LOG_AUTH, LOG_AUTHPRIV, LOG_SYSLOG, LOG_KERN, LOG_MAIL, LOG_LPR, LOG_NEWS, LOG_UUCP, LOG_CRON, LOG_FTP)"
                )
            })
    }

    /// The facility code (0-23).
    pub fn code(self) -> u8 {
        self.0
    }

    /// `<PRI>`'s number for a record of `severity`: facility × 8 + severity.
    pub fn priority(self, severity: Severity) -> u16 {
        u16::from(self.0) * 8 + u16::from(severity.syslog())
    }
}

/// Whether `name` can be a syslog tag (`log_name`): 1-32 printable ASCII characters, none of
/// them white space, `:`, `[` or `]` (they delimit the tag).
pub fn valid_tag(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b':' | b'[' | b']'))
}

/// A local time, as the RFC 3164 header shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-60.
    pub second: u8,
}

impl Stamp {
    /// Now, in the machine's time zone.
    pub fn now_local() -> Stamp {
        // SAFETY: time() and localtime_r() only write the values we pass; a zeroed tm is a
        // valid (if meaningless) tm for localtime_r to overwrite.
        let tm = unsafe {
            let t = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            libc::localtime_r(&t, &mut tm);
            tm
        };
        let small = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
        Stamp {
            month: small(tm.tm_mon + 1),
            day: small(tm.tm_mday),
            hour: small(tm.tm_hour),
            minute: small(tm.tm_min),
            second: small(tm.tm_sec),
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One RFC 3164 datagram: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG`, cut to [`MAX_DATAGRAM`]
/// bytes at a character boundary.
pub fn format(
    facility: Facility,
    severity: Severity,
    at: Stamp,
    tag: &str,
    pid: u32,
    msg: &str,
) -> String {
    let month = MONTHS[usize::from(at.month.clamp(1, 12)) - 1];
    let mut out = format!(
        "<{}>{} {:>2} {:02}:{:02}:{:02} {}[{}]: ",
        facility.priority(severity),
        month,
        at.day,
        at.hour,
        at.minute,
        at.second,
        tag,
        pid
    );
    let room = MAX_DATAGRAM.saturating_sub(out.len());
    let mut cut = msg.len().min(room);
    while !msg.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(&msg[..cut]);
    out
}

/// Sends datagrams to the syslog socket; reconnects once per failed send (a restarted daemon
/// makes a new socket) and counts what it could not send.
pub struct SyslogWriter {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    lost: u64,
}

/// The syslog socket could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot send to the syslog socket {path}: {source}")]
pub struct SyslogError {
    /// The socket's path.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl SyslogWriter {
    /// Connects to the socket at `path` (see [`socket_path`]).
    pub fn connect(path: PathBuf) -> Result<SyslogWriter, SyslogError> {
        let sock = open(&path).map_err(|source| SyslogError {
            path: path.clone(),
            source,
        })?;
        Ok(SyslogWriter {
            path,
            sock: Some(sock),
            lost: 0,
        })
    }

    /// Records not sent since the last successful send (taken: the count restarts at 0).
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// Sends one datagram (at most one reconnection; a record that still fails is counted).
    pub fn send(&mut self, datagram: &[u8]) -> bool {
        for _ in 0..2 {
            if self.sock.is_none() {
                self.sock = open(&self.path).ok();
            }
            let Some(s) = &self.sock else { break };
            if s.send(datagram).is_ok() {
                return true;
            }
            self.sock = None;
        }
        self.lost += 1;
        false
    }
}

/// `$SIPCORE_SYSLOG_SOCKET`, else `/dev/log`.
pub fn socket_path() -> PathBuf {
    std::env::var_os(SOCKET_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

fn open(path: &std::path::Path) -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(path)?;
    // A daemon that stops reading must not hold the logging thread (nor the exit) for long.
    s.set_write_timeout(Some(Duration::from_secs(1)))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Stamp = Stamp {
        month: 12,
        day: 6,
        hour: 9,
        minute: 5,
        second: 7,
    };

    #[test]
    fn facilities_parse_as_opensips_names() {
        assert_eq!(Facility::parse("LOG_DAEMON").unwrap(), Facility::DAEMON);
        assert_eq!(Facility::parse("LOG_LOCAL0").unwrap().code(), 16);
        assert_eq!(Facility::parse("local7").unwrap().code(), 23);
        assert_eq!(Facility::parse("LOG_USER").unwrap().code(), 1);
        let e = Facility::parse("LOG_LOCAL8").unwrap_err();
        assert!(
            e.contains("'LOG_LOCAL8'") && e.contains("LOG_LOCAL0"),
            "{e}"
        );
        assert!(Facility::parse("").is_err());
    }

    #[test]
    fn priority_is_facility_times_8_plus_severity() {
        let local0 = Facility::parse("LOG_LOCAL0").unwrap();
        assert_eq!(local0.priority(Severity::Err), 131);
        assert_eq!(local0.priority(Severity::Info), 134);
        assert_eq!(Facility::DAEMON.priority(Severity::Alert), 25);
        assert_eq!(Facility::DAEMON.priority(Severity::Debug), 31);
    }

    #[test]
    fn datagram_is_glibc_syslog_format() {
        let local3 = Facility::parse("LOG_LOCAL3").unwrap();
        let d = format(
            local3,
            Severity::Notice,
            AT,
            "sipcore",
            42,
            "NOTICE hi, module: core",
        );
        assert_eq!(
            d,
            "<157>Dec  6 09:05:07 sipcore[42]: NOTICE hi, module: core"
        );
        let two_digit = Stamp { day: 16, ..AT };
        assert!(format(local3, Severity::Err, two_digit, "t", 1, "x").starts_with("<155>Dec 16 "));
    }

    #[test]
    fn long_records_are_cut_at_a_character_boundary() {
        let msg = "é".repeat(MAX_DATAGRAM);
        let d = format(Facility::DAEMON, Severity::Info, AT, "sipcore", 1, &msg);
        assert!(
            d.len() <= MAX_DATAGRAM && d.len() > MAX_DATAGRAM - 2,
            "{}",
            d.len()
        );
        assert!(d.ends_with('é'));
    }

    #[test]
    fn tags_are_checked() {
        assert!(valid_tag("sipcore-test"));
        assert!(valid_tag("opensips_1"));
        for bad in ["", "a b", "a:b", "x[1]", &"a".repeat(33), "é"] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn writer_sends_to_the_socket_and_counts_what_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut w = SyslogWriter::connect(path.clone()).unwrap();
        assert!(w.send(b"<14>one"));
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<14>one");
        // The daemon goes away: counted, not sent.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        assert!(!w.send(b"<14>two"));
        assert_eq!(w.take_lost(), 1);
        // It comes back on a new socket at the same path: reconnected.
        let server = UnixDatagram::bind(&path).unwrap();
        assert!(w.send(b"<14>three"));
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<14>three");
        assert_eq!(w.take_lost(), 0);
    }
}
