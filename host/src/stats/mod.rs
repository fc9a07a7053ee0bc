//! Statistics with OpenSIPS's names (`core`, `sl`, `usrloc`, `registrar`, `shmem` groups) and
//! the plugins' own (`ws`, `wss`, `hep`), for MI `get_statistics` / `reset_statistics` (as
//! OpenSIPS's `statistics.c`) and `GET /metrics` (Prometheus text format, as OpenSIPS's
//! prometheus module).
//!
//! * [`counters`]: the host's counters, relaxed atomics on their own cache lines, bumped on
//!   the message path (no lock, no allocation there).
//! * [`memory`]: the `shmem:` figures, read from `/proc` when asked.
//! * [`prometheus`]: the text exposition format, pure.
//! * [`mi`]: the MI commands.
//!
//! Everything else (usrloc levels, the plugins' statistics through ABI 1.5 `Module::stats`) is
//! a [`Source`] asked only when statistics are read. A reset is a baseline remembered per
//! counter (read path only), so plugins need no reset call and nothing on the message path
//! changes.
pub mod counters;
pub mod memory;
pub mod mi;
pub mod prometheus;

use sipcore_abi::{StatRecord, StatSink};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

/// One statistic read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Group (OpenSIPS module name), e.g. `core`.
    pub group: String,
    /// Name within the group, e.g. `rcv_requests`.
    pub name: String,
    /// Value (a counter's, after its reset baseline).
    pub value: u64,
    /// A level that goes up and down (OpenSIPS `STAT_NO_RESET`/`STAT_IS_FUNC`); counters only
    /// grow until reset.
    pub gauge: bool,
    /// What it means, one line (`# HELP`).
    pub help: String,
}

impl Sample {
    /// A sample.
    pub fn new(group: &str, name: &str, value: u64, gauge: bool, help: &str) -> Sample {
        Sample {
            group: group.to_string(),
            name: name.to_string(),
            value,
            gauge,
            help: help.to_string(),
        }
    }

    /// `group:name`, OpenSIPS's MI key.
    pub fn key(&self) -> String {
        format!("{}:{}", self.group, self.name)
    }
}

/// Something that reports statistics when they are read (the location tables, a plugin).
pub type Source = Box<dyn Fn(&mut Vec<Sample>) + Send + Sync>;

static SOURCES: Mutex<Vec<Source>> = Mutex::new(Vec::new());
static BASELINES: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Add a source (at startup).
pub fn add_source(s: Source) {
    lock(&SOURCES).push(s);
}

/// A plugin's ABI 1.5 `Module::stats` as a [`Source`]: the records it reports are copied into
/// samples during the call (nothing it lends outlives the call).
pub fn plugin_source(f: extern "C" fn(&StatSink)) -> Source {
    Box::new(move |out: &mut Vec<Sample>| {
        let sink = StatSink {
            ctx: (out as *mut Vec<Sample>).cast::<c_void>(),
            emit: emit_record,
        };
        f(&sink);
    })
}

/// The host's side of [`StatSink::emit`]: `ctx` is the `Vec<Sample>` of [`plugin_source`].
extern "C" fn emit_record(ctx: *mut c_void, rec: &StatRecord<'_>) {
    let _ = sipcore_abi::catch_panic(|| {
        // SAFETY: `ctx` is the `&mut Vec<Sample>` plugin_source passed in the sink, alive and
        // not otherwise borrowed for the whole call to the plugin, which calls this on the
        // same thread before it returns.
        let out = unsafe { &mut *ctx.cast::<Vec<Sample>>() };
        out.push(Sample::new(
            rec.group.as_str(),
            rec.name.as_str(),
            rec.value,
            rec.gauge,
            rec.help.as_str(),
        ));
    });
}

/// Every statistic now, raw (before reset baselines): the host's counters, `shmem`, then the
/// sources in the order they were added.
fn raw() -> Vec<Sample> {
    let mut out = counters::samples();
    memory::samples(&mut out);
    for s in lock(&SOURCES).iter() {
        s(&mut out);
    }
    out
}

/// Every statistic now, counters net of their last reset.
pub fn collect() -> Vec<Sample> {
    let mut all = raw();
    let base = lock(&BASELINES);
    if let Some(base) = base.as_ref() {
        for s in all.iter_mut().filter(|s| !s.gauge) {
            if let Some(b) = base.get(&s.key()) {
                s.value = s.value.saturating_sub(*b);
            }
        }
    }
    all
}

/// Reset the counters `pick` selects to 0 (gauges are not reset, as OpenSIPS's
/// `STAT_NO_RESET`); returns how many statistics `pick` selected, gauges included.
pub fn reset(pick: impl Fn(&Sample) -> bool) -> usize {
    let all = raw();
    let mut base = lock(&BASELINES);
    let base = base.get_or_insert_with(HashMap::new);
    let mut n = 0;
    for s in all.iter().filter(|s| pick(s)) {
        n += 1;
        if !s.gauge {
            base.insert(s.key(), s.value);
        }
    }
    n
}

/// Whether `s` is what an OpenSIPS statistics argument names: `all`, `group:` (the whole
/// group), `name` (case-insensitive, any group, as OpenSIPS's `get_stat`) or `group:name`.
pub fn matches(arg: &str, s: &Sample) -> bool {
    if arg == "all" {
        return true;
    }
    if let Some(group) = arg.strip_suffix(':') {
        return !group.is_empty() && s.group.eq_ignore_ascii_case(group);
    }
    match arg.split_once(':') {
        Some((g, n)) if s.group.eq_ignore_ascii_case(g) && s.name.eq_ignore_ascii_case(n) => true,
        _ => s.name.eq_ignore_ascii_case(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_select_as_opensips_does() {
        let s = Sample::new("core", "rcv_requests", 1, false, "");
        let u = Sample::new("usrloc", "location-users", 1, true, "");
        for arg in [
            "all",
            "core:",
            "CORE:",
            "rcv_requests",
            "RCV_Requests",
            "core:rcv_requests",
        ] {
            assert!(matches(arg, &s), "{arg}");
        }
        for arg in ["sl:", ":", "rcv", "sl:rcv_requests"] {
            assert!(!matches(arg, &s), "{arg}");
        }
        assert!(matches("location-users", &u));
        assert!(matches("usrloc:", &u));
    }

    #[test]
    fn reset_keeps_gauges_and_subtracts_baselines() {
        counters::CORE_RCV_REQUESTS.add(5);
        let before = collect();
        let get = |v: &[Sample], n: &str| v.iter().find(|s| s.name == n).map(|s| s.value);
        assert!(get(&before, "rcv_requests").unwrap() >= 5);
        assert_eq!(reset(|s| s.name == "rcv_requests"), 1);
        counters::CORE_RCV_REQUESTS.add(2);
        let after = collect();
        // Other tests may bump the counter too, but never below what we added after reset.
        assert!(get(&after, "rcv_requests").unwrap() >= 2);
        assert!(get(&after, "rcv_requests").unwrap() < get(&before, "rcv_requests").unwrap() + 2);
        // A gauge is selected but keeps its value.
        assert_eq!(reset(|s| s.name == "real_used_size"), 1);
    }
}
