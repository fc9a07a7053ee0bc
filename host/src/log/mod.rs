//! Logging: one slog drain owned by the host. Plugins log through [`host_log`], the `log`
//! callback of the `HostApi` table, so every record is formatted by the same drain.
//!
//! Records are filtered on OpenSIPS's scale ([`Severity`], `log_level`), then written to
//! stderr (text, or JSON with `log_json`) or to syslog (`log_stderror = no`, with
//! `log_facility` and `log_name`). Warnings and worse repeated with the same text by the same
//! module are written at most [`REPEAT_LIMIT`] times per [`REPEAT_WINDOW`]; a line
//! "... repeated K more times" follows when the window ends.
mod drain;
pub mod limit;
pub mod severity;
pub mod syslog;

pub use severity::Severity;

use limit::RateLimiter;
use sipcore_abi::{abi_stable::std_types::RSlice, abi_stable::std_types::RStr, LogKv, LogLevel};
use slog::{o, Drain, Logger};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

static ROOT: OnceLock<Logger> = OnceLock::new();
/// The `log_level` in force (OpenSIPS's number; `i64::MIN`, nothing, before [`init`]).
static MAX_LEVEL: AtomicI64 = AtomicI64::new(i64::MIN);
static GUARD: Mutex<Option<slog_async::AsyncGuard>> = Mutex::new(None);
static LIMITER: OnceLock<Limiter> = OnceLock::new();

/// Copies of one text from one module written per [`REPEAT_WINDOW`] before the rest are
/// counted instead.
pub const REPEAT_LIMIT: u64 = 10;
/// The window of [`REPEAT_LIMIT`].
pub const REPEAT_WINDOW: Duration = Duration::from_secs(1);
/// Texts tracked at once; more are written without limit rather than held in memory.
const REPEAT_KEYS: usize = 4096;

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Stderr, one text line per record (`log_stderror = yes`, the default).
    Stderr,
    /// Stderr, one JSON object per line (`log_json = yes`).
    Json,
    /// Syslog (`log_stderror = no`): `log_facility` and `log_name`.
    Syslog {
        /// The facility.
        facility: syslog::Facility,
        /// The tag.
        tag: String,
    },
}

/// The logging globals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `log_level` (OpenSIPS's scale).
    pub level: i64,
    /// The sink.
    pub target: Target,
}

/// Logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `log_stderror = no` and the syslog socket is not there.
    #[error("log_stderror = no: {0}")]
    Syslog(#[from] syslog::SyslogError),
}

struct Limiter {
    state: Mutex<RateLimiter>,
    wake: Condvar,
}

/// Install the root logger (asynchronous, so that a slow sink never stalls a SIP worker;
/// records beyond the queue are dropped and the drop is reported) and the thread that writes
/// the "repeated" lines. Later calls are ignored.
pub fn init(settings: &Settings) -> Result<(), InitError> {
    if ROOT.get().is_some() {
        return Ok(());
    }
    let sink = match &settings.target {
        Target::Stderr => drain::terminal(),
        Target::Json => drain::json(),
        Target::Syslog { facility, tag } => {
            let w = syslog::SyslogWriter::connect(syslog::socket_path())?;
            Box::new(drain::SyslogDrain::new(w, *facility, tag.clone()).ignore_res())
        }
    };
    let (drain, guard) = slog_async::Async::new(sink)
        .chan_size(16_384)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build_with_guard();
    if ROOT.set(Logger::root(drain.fuse(), o!())).is_ok() {
        MAX_LEVEL.store(settings.level, Ordering::Relaxed);
        *GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
        let limiter = LIMITER.get_or_init(|| Limiter {
            state: Mutex::new(RateLimiter::new(REPEAT_LIMIT, REPEAT_WINDOW, REPEAT_KEYS)),
            wake: Condvar::new(),
        });
        let spawned = std::thread::Builder::new()
            .name("log-repeat".into())
            .spawn(move || report_repeats(limiter));
        if let Err(e) = spawned {
            crate::log!(Error, "core", "cannot start the log repeat timer: {}", e);
        }
    }
    Ok(())
}

/// Writes the "repeated" line of each window as it ends (sleeps while none is pending).
fn report_repeats(l: &'static Limiter) -> ! {
    let mut st = l.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let ended = st.expire(Instant::now());
        if !ended.is_empty() {
            drop(st);
            for r in ended {
                emit(r.severity, &r.module, &r.line());
            }
            st = l.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st = match st.next_deadline() {
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                l.wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => l.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Write the pending "repeated" lines and flush pending records (at exit).
pub fn flush() {
    if let Some(l) = LIMITER.get() {
        let pending = l.state.lock().unwrap_or_else(|e| e.into_inner()).drain();
        for r in pending {
            emit(r.severity, &r.module, &r.line());
        }
    }
    drop(GUARD.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// Whether records at `level` are written (one atomic load: cheap on the message path).
pub fn enabled(level: slog::Level) -> bool {
    enabled_at(Severity::from_slog(level))
}

/// Whether records of `severity` are written.
pub fn enabled_at(severity: Severity) -> bool {
    severity.opensips() <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// The root logger; a discarding one before [`init`].
pub fn root() -> &'static Logger {
    ROOT.get_or_init(|| Logger::root(slog::Discard, o!()))
}

fn to_severity(level: LogLevel) -> Severity {
    match level.0 {
        0 | 1 => Severity::Crit,
        2 => Severity::Err,
        3 => Severity::Warn,
        4 => Severity::Info,
        5 => Severity::Debug,
        _ => Severity::Trace,
    }
}

/// Log a record for `module` with extra `key=value` pairs (used by plugins and the core).
pub fn record(level: slog::Level, module: &str, msg: &str, kv: &[(&str, &str)]) {
    record_at(Severity::from_slog(level), module, msg, kv)
}

/// [`record`] at an exact OpenSIPS severity (`xlog`, pike's `log_level`).
pub fn record_at(severity: Severity, module: &str, msg: &str, kv: &[(&str, &str)]) {
    if !enabled_at(severity) {
        return;
    }
    let mut text = String::with_capacity(msg.len() + 16 * kv.len());
    push_escaped(&mut text, msg);
    for (k, v) in kv {
        let _ = write!(text, " {k}=");
        push_escaped(&mut text, v);
    }
    if severity <= Severity::Warn {
        if let Some(l) = LIMITER.get() {
            let c = l.state.lock().unwrap_or_else(|e| e.into_inner()).check(
                Instant::now(),
                severity,
                module,
                &text,
            );
            if c.first_suppressed {
                l.wake.notify_one();
            }
            if let Some(k) = c.repeated {
                emit(severity, module, &limit::summary(&text, k));
            }
            if !c.log {
                return;
            }
        }
    }
    emit(severity, module, &text);
}

/// Hands one record to the drain; the tag carries the exact severity ([`Severity::name`];
/// slog wants both as constants).
fn emit(severity: Severity, module: &str, text: &str) {
    emit_to(root(), severity, module, text)
}

fn emit_to(log: &Logger, severity: Severity, module: &str, text: &str) {
    use slog::Level as L;
    match severity {
        Severity::Alert => slog::log!(log, L::Critical, "ALERT", "{}", text; "module" => module),
        Severity::Crit => slog::log!(log, L::Critical, "CRITICAL", "{}", text; "module" => module),
        Severity::Err => slog::log!(log, L::Error, "ERROR", "{}", text; "module" => module),
        Severity::Warn => slog::log!(log, L::Warning, "WARNING", "{}", text; "module" => module),
        Severity::Notice => slog::log!(log, L::Info, "NOTICE", "{}", text; "module" => module),
        Severity::Info => slog::log!(log, L::Info, "INFO", "{}", text; "module" => module),
        Severity::Debug => slog::log!(log, L::Debug, "DBG", "{}", text; "module" => module),
        Severity::Trace => slog::log!(log, L::Trace, "TRACE", "{}", text; "module" => module),
    }
}

/// Appends `s` with control characters escaped (`\n`, `\r`, `\xNN`; a tab stays), so that one
/// record is one line whatever it quotes: a CR/LF in a header value that a script logs, or in
/// a peer's bytes, cannot forge a log line.
fn push_escaped(out: &mut String, s: &str) {
    if s.chars().all(|c| c == '\t' || !c.is_control()) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// `HostApi::log`: a plugin's log record. Never unwinds into the plugin.
pub extern "C" fn host_log(
    level: LogLevel,
    module: RStr<'_>,
    msg: RStr<'_>,
    kv: RSlice<'_, LogKv<'_>>,
) {
    let _ = sipcore_abi::catch_panic(|| {
        let pairs: Vec<(&str, &str)> = kv
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        record_at(to_severity(level), module.as_str(), msg.as_str(), &pairs);
    });
}

/// Log from host code: `log!(Info, "core", "text {}", x; "peer" => p)`.
#[macro_export]
macro_rules! log {
    ($lvl:ident, $module:expr, $($fmt:expr),+ $(; $($k:expr => $v:expr),* )?) => {{
        if $crate::log::enabled(slog::Level::$lvl) {
            let kv: &[(&str, &str)] = &[$($(($k, &$v.to_string())),*)?];
            $crate::log::record(slog::Level::$lvl, $module, &format!($($fmt),+), kv);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps each record's tag and slog level.
    struct Tags(Mutex<Vec<(String, slog::Level)>>);

    impl Drain for &'static Tags {
        type Ok = ();
        type Err = slog::Never;
        fn log(&self, r: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
            let mut v = self.0.lock().unwrap();
            v.push((r.tag().to_string(), r.level()));
            Ok(())
        }
    }

    #[test]
    fn records_carry_their_exact_severity_in_the_tag() {
        let tags: &'static Tags = Box::leak(Box::new(Tags(Mutex::new(Vec::new()))));
        let log = Logger::root(tags, o!());
        for s in Severity::ALL {
            emit_to(&log, s, "m", "t");
        }
        let got = tags.0.lock().unwrap().clone();
        let want: Vec<(String, slog::Level)> = Severity::ALL
            .iter()
            .map(|s| (s.name().to_string(), s.to_slog()))
            .collect();
        assert_eq!(got, want);
        for (tag, level) in got {
            assert_eq!(Severity::from_name(&tag).map(|s| s.to_slog()), Some(level));
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        push_escaped(&mut out, "a\tb c");
        assert_eq!(out, "a\tb c");
        out.clear();
        push_escaped(&mut out, "x\r\nDEC 01 forged line\u{1b}[31m\u{85}é");
        assert_eq!(out, "x\\r\\nDEC 01 forged line\\x1b[31m\\x85é");
    }
}
