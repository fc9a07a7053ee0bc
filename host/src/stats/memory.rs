//! The `shmem:` group, OpenSIPS's shared-memory figures mapped onto what Linux reports for this
//! process. sipcore has no shared-memory pool (one process, threads, the system allocator), so
//! each name means the nearest honest figure, in bytes:
//!
//! | name | here |
//! |---|---|
//! | `total_size` | the machine's memory (`MemTotal` of `/proc/meminfo`): there is no fixed pool |
//! | `used_size` | anonymous resident memory (`RssAnon`): heap and stacks, what the allocator holds in RAM |
//! | `real_used_size` | all resident memory (`VmRSS`): `used_size` plus code and mapped files |
//! | `max_used_size` | peak resident memory (`VmHWM`) |
//! | `free_size` | `total_size` − `real_used_size` |
//! | `fragments` | the process's memory mappings (lines of `/proc/self/maps`), not allocator fragments |
//!
//! All are gauges. Read only when statistics are asked for. Where `/proc` is missing (not
//! Linux) the group is left out.
use super::Sample;

/// Figures parsed from `/proc`, in bytes (mappings: a count).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `MemTotal`.
    pub total: u64,
    /// `RssAnon`.
    pub anon: u64,
    /// `VmRSS`.
    pub rss: u64,
    /// `VmHWM`.
    pub hwm: u64,
    /// Memory mappings.
    pub mappings: u64,
}

/// The value in bytes of the `key:` line of a `/proc` status-like text (`VmRSS:  1234 kB`).
pub fn field_bytes(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let mut it = rest.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        Some(match it.next() {
            Some("kB") => n.saturating_mul(1024),
            _ => n,
        })
    })
}

impl Memory {
    /// Parse the three texts (`/proc/self/status`, `/proc/meminfo`, `/proc/self/maps`); `None`
    /// when `status` lacks `VmRSS`.
    pub fn parse(status: &str, meminfo: &str, maps: &str) -> Option<Memory> {
        Some(Memory {
            total: field_bytes(meminfo, "MemTotal").unwrap_or(0),
            anon: field_bytes(status, "RssAnon").unwrap_or(0),
            rss: field_bytes(status, "VmRSS")?,
            hwm: field_bytes(status, "VmHWM").unwrap_or(0),
            mappings: maps.lines().count() as u64,
        })
    }

    /// Read this process's figures.
    pub fn read() -> Option<Memory> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        Memory::parse(&status, &meminfo, &maps)
    }

    /// The `shmem:` samples.
    pub fn samples(&self, out: &mut Vec<Sample>) {
        let rows = [
            (
                "total_size",
                self.total,
                "bytes of memory of the machine (no fixed pool here)",
            ),
            (
                "used_size",
                self.anon,
                "bytes of anonymous resident memory (heap and stacks)",
            ),
            ("real_used_size", self.rss, "bytes of resident memory (RSS)"),
            (
                "max_used_size",
                self.hwm,
                "peak bytes of resident memory (VmHWM)",
            ),
            (
                "free_size",
                self.total.saturating_sub(self.rss),
                "total_size minus real_used_size",
            ),
            ("fragments", self.mappings, "memory mappings of the process"),
        ];
        for (name, v, help) in rows {
            out.push(Sample::new("shmem", name, v, true, help));
        }
    }
}

/// The `shmem:` samples of this process, if `/proc` can be read.
pub(super) fn samples(out: &mut Vec<Sample>) {
    if let Some(m) = Memory::read() {
        m.samples(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_texts() {
        let status = "Name:\tsipcore\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t   512 kB\n";
        let meminfo = "MemTotal:       16000 kB\nMemFree: 1 kB\n";
        let m = Memory::parse(status, meminfo, "a\nb\nc\n").unwrap();
        assert_eq!(
            m,
            Memory {
                total: 16_384_000,
                anon: 524_288,
                rss: 1_048_576,
                hwm: 2_097_152,
                mappings: 3
            }
        );
        let mut out = Vec::new();
        m.samples(&mut out);
        let free = out.iter().find(|s| s.name == "free_size").unwrap();
        assert_eq!(free.value, 16_384_000 - 1_048_576);
        assert!(out.iter().all(|s| s.gauge && s.group == "shmem"));
        assert_eq!(Memory::parse("VmHWM: 1 kB\n", meminfo, ""), None);
        assert_eq!(field_bytes("VmRSSX: 5 kB\n", "VmRSS"), None);
    }

    #[test]
    fn reads_this_process() {
        let m = Memory::read().expect("/proc is there on Linux");
        assert!(m.rss > 0 && m.hwm >= m.rss && m.total > m.rss && m.mappings > 0);
    }
}
