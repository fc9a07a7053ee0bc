//! Server-side figures read from /proc: CPU time (utime+stime of /proc/PID/stat, proc(5)) and
//! memory (VmRSS of /proc/PID/status; Pss of /proc/PID/smaps_rollup) over a process and,
//! optionally, all its descendants (Kamailio is many processes).

use std::fs;

/// Clock ticks per second (sysconf(_SC_CLK_TCK)).
fn ticks() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `(ppid, (utime, stime) in ticks)` of one process.
fn stat(pid: u32) -> Option<(u32, (u64, u64))> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, (ut, st)))
}

/// `pid` and, if `tree`, every live descendant of it.
pub fn pids(pid: u32, tree: bool) -> Vec<u32> {
    let mut out = vec![pid];
    if !tree {
        return out;
    }
    let mut all = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some((pp, _)) = stat(p) {
                    all.push((p, pp));
                }
            }
        }
    }
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        for &(p, pp) in &all {
            if pp == parent && !out.contains(&p) {
                out.push(p);
            }
        }
        i += 1;
    }
    out
}

/// CPU seconds consumed so far by `pids`: `(user + system, system)`. System time includes
/// what the kernel did on their behalf, softirq work on their sends included (over loopback,
/// the receiving side's TCP processing runs in the sender's context).
pub fn cpu_secs(pids: &[u32]) -> (f64, f64) {
    let (u, s) = pids
        .iter()
        .filter_map(|&p| stat(p))
        .fold((0u64, 0u64), |(u, s), (_, (ut, st))| (u + ut, s + st));
    ((u + s) as f64 / ticks(), s as f64 / ticks())
}

fn kb_field(path: &str, key: &str) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Memory of `pids` in bytes: `(sum of VmRSS, sum of Pss)`. For one process both are its RSS
/// (up to shared pages); for a multi-process server Pss does not count shared memory twice.
pub fn mem_bytes(pids: &[u32]) -> (u64, u64) {
    let mut rss = 0;
    let mut pss = 0;
    for p in pids {
        rss += kb_field(&format!("/proc/{p}/status"), "VmRSS:").unwrap_or(0) * 1024;
        pss += kb_field(&format!("/proc/{p}/smaps_rollup"), "Pss:").unwrap_or(0) * 1024;
    }
    (rss, pss)
}

/// Raise the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            let _ = libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
    }
    r.rlim_cur
}

/// CPU seconds consumed so far by this process (the load generator itself).
pub fn self_cpu_secs() -> f64 {
    cpu_secs(&[std::process::id()]).0
}
