//! Logging: one slog drain owned by the host. Plugins log through [`host_log`], the `log`
//! callback of the `HostApi` table, so every record is formatted by the same drain.
use sipcore_abi::{abi_stable::std_types::RSlice, abi_stable::std_types::RStr, LogKv, LogLevel};
use slog::{o, Drain, Level, Logger};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static ROOT: OnceLock<Logger> = OnceLock::new();
/// The most verbose level enabled, as `slog::Level::as_usize` (0 = nothing before [`init`]).
static MAX_LEVEL: AtomicUsize = AtomicUsize::new(0);
static GUARD: std::sync::Mutex<Option<slog_async::AsyncGuard>> = std::sync::Mutex::new(None);

/// Map OpenSIPS's numeric `log_level` (-3 alert .. 4 debug) to a slog level.
pub fn level_from_opensips(n: i64) -> Level {
    match n {
        i64::MIN..=-2 => Level::Critical,
        -1 => Level::Error,
        0 | 1 => Level::Warning,
        2 | 3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Trace,
    }
}

/// Install the root logger (stderr, terminal format, asynchronous so that a slow stderr never
/// stalls a SIP worker; records beyond the queue are dropped and the drop is reported).
/// Later calls are ignored.
pub fn init(level: Level) {
    let decorator = slog_term::PlainDecorator::new(std::io::stderr());
    let drain = slog_term::FullFormat::new(decorator).build().fuse();
    let (drain, guard) = slog_async::Async::new(drain)
        .chan_size(16_384)
        .overflow_strategy(slog_async::OverflowStrategy::DropAndReport)
        .build_with_guard();
    let drain = drain.filter_level(level).fuse();
    if ROOT.set(Logger::root(drain, o!())).is_ok() {
        MAX_LEVEL.store(level.as_usize(), Ordering::Relaxed);
        *GUARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    }
}

/// Flush pending records (at exit).
pub fn flush() {
    drop(GUARD.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// Whether records at `level` are printed (one atomic load: cheap on the message path).
pub fn enabled(level: Level) -> bool {
    level.as_usize() <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// The root logger; a discarding one before [`init`].
pub fn root() -> &'static Logger {
    ROOT.get_or_init(|| Logger::root(slog::Discard, o!()))
}

fn to_slog(level: LogLevel) -> Level {
    match level.0 {
        0 | 1 => Level::Critical,
        2 => Level::Error,
        3 => Level::Warning,
        4 => Level::Info,
        5 => Level::Debug,
        _ => Level::Trace,
    }
}

/// Log a record for `module` with extra `key=value` pairs (used by plugins and the core).
pub fn record(level: Level, module: &str, msg: &str, kv: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let log = root();
    let mut text = String::with_capacity(msg.len() + 16 * kv.len());
    push_escaped(&mut text, msg);
    for (k, v) in kv {
        let _ = write!(text, " {k}=");
        push_escaped(&mut text, v);
    }
    match level {
        Level::Critical => slog::crit!(log, "{}", text; "module" => module),
        Level::Error => slog::error!(log, "{}", text; "module" => module),
        Level::Warning => slog::warn!(log, "{}", text; "module" => module),
        Level::Info => slog::info!(log, "{}", text; "module" => module),
        Level::Debug => slog::debug!(log, "{}", text; "module" => module),
        Level::Trace => slog::trace!(log, "{}", text; "module" => module),
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
        record(to_slog(level), module.as_str(), msg.as_str(), &pairs);
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

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        push_escaped(&mut out, "a\tb c");
        assert_eq!(out, "a\tb c");
        out.clear();
        push_escaped(&mut out, "x\r\nDEC 01 forged line\u{1b}[31m\u{85}é");
        assert_eq!(out, "x\\r\\nDEC 01 forged line\\x1b[31m\\x85é");
    }

    #[test]
    fn opensips_levels_map() {
        assert_eq!(level_from_opensips(-3), Level::Critical);
        assert_eq!(level_from_opensips(-1), Level::Error);
        assert_eq!(level_from_opensips(1), Level::Warning);
        assert_eq!(level_from_opensips(3), Level::Info);
        assert_eq!(level_from_opensips(4), Level::Debug);
    }
}
