//! The three sinks behind the root logger: stderr as text (slog-term), stderr as one JSON
//! object per line (slog-json), and syslog. A record's exact OpenSIPS level travels in its slog
//! tag (slog has no alert or notice), which the JSON and syslog sinks read.
use super::severity::Severity;
use super::syslog::{self, Facility, SyslogWriter};
use slog::{Drain, OwnedKVList, Record, KV};
use std::cell::RefCell;
use std::fmt::Write as _;

/// A sink, boxed so that the asynchronous drain takes any of them.
pub type Sink = Box<dyn Drain<Ok = (), Err = slog::Never> + Send>;

/// The exact severity of a record: its tag, else its slog level (slog-async's own reports).
pub fn severity_of(r: &Record<'_>) -> Severity {
    Severity::from_name(r.tag()).unwrap_or_else(|| Severity::from_slog(r.level()))
}

/// Stderr, terminal format: `Dec 06 10:45:01.123 INFO text, module: core`.
pub fn terminal() -> Sink {
    let decorator = slog_term::PlainDecorator::new(std::io::stderr());
    Box::new(slog_term::FullFormat::new(decorator).build().ignore_res())
}

/// Stderr, one JSON object per line: `{"ts":"2026-12-06T10:45:01.123Z","level":"NOTICE",
/// "msg":"...","module":"core"}` (`ts` in UTC, RFC 3339).
pub fn json() -> Sink {
    let out = std::io::LineWriter::new(std::io::stderr());
    let drain = slog_json::Json::new(out)
        .set_newlines(true)
        .set_flush(true)
        .add_key_value(slog::o!(
            "ts" => slog::FnValue(|_: &Record<'_>| {
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            "level" => slog::FnValue(|r: &Record<'_>| severity_of(r).name()),
            "msg" => slog::PushFnValue(|r: &Record<'_>, s| s.emit(r.msg())),
        ))
        .build();
    Box::new(drain.ignore_res())
}

/// Syslog, one datagram per record: `<PRI>Mmm dd hh:mm:ss TAG[PID]: LEVEL text, module: core`.
pub struct SyslogDrain {
    writer: RefCell<SyslogWriter>,
    facility: Facility,
    tag: String,
    pid: u32,
}

impl SyslogDrain {
    /// A drain sending through `writer` with `facility` and `tag` (`log_name`).
    pub fn new(writer: SyslogWriter, facility: Facility, tag: String) -> SyslogDrain {
        SyslogDrain {
            writer: RefCell::new(writer),
            facility,
            tag,
            pid: std::process::id(),
        }
    }

    fn send(&self, severity: Severity, body: &str) {
        let d = syslog::format(
            self.facility,
            severity,
            syslog::Stamp::now_local(),
            &self.tag,
            self.pid,
            body,
        );
        let mut w = self.writer.borrow_mut();
        if w.send(d.as_bytes()) {
            let lost = w.take_lost();
            if lost > 0 {
                drop(w);
                let note = format!(
                    "{} {lost} log records lost while the syslog socket was unreachable, module: core",
                    Severity::Err.name()
                );
                self.send(Severity::Err, &note);
            }
        }
    }
}

impl Drain for SyslogDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, r: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let severity = severity_of(r);
        let mut body = format!("{} {}", severity.name(), r.msg());
        let mut kv = KvText(&mut body);
        let _ = r.kv().serialize(r, &mut kv);
        let _ = values.serialize(r, &mut kv);
        self.send(severity, &body);
        Ok(())
    }
}

/// Appends `, key: value` per pair, as the terminal format does.
struct KvText<'a>(&'a mut String);

impl slog::Serializer for KvText<'_> {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, ", {key}: {val}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn syslog_drain_writes_level_text_and_module() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let writer = SyslogWriter::connect(path).unwrap();
        let local1 = Facility::parse("LOG_LOCAL1").unwrap();
        let drain = SyslogDrain::new(writer, local1, "tagx".into());
        let log = slog::Logger::root(std::sync::Mutex::new(drain).fuse(), slog::o!());
        slog::log!(log, slog::Level::Info, "NOTICE", "{}", "hello"; "module" => "pike");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let d = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(d.starts_with("<141>"), "{d}");
        let pid = std::process::id();
        assert!(
            d.ends_with(&format!(" tagx[{pid}]: NOTICE hello, module: pike")),
            "{d}"
        );
    }
}
