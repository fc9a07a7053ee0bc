//! The Prometheus text exposition format (version 0.0.4) of [`Sample`]s, as OpenSIPS's
//! prometheus module exports its statistics: one family per statistic, named
//! `sipcore_<group>_<name>` with every character outside `[a-zA-Z0-9_]` turned into `_`, and
//! `_total` appended to counters (the Prometheus naming rule `promtool check metrics`
//! enforces) unless the name already ends with it. Pure.
use super::Sample;
use std::fmt::Write;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metric name of a sample.
pub fn metric_name(s: &Sample) -> String {
    let mut n = String::with_capacity(9 + s.group.len() + s.name.len() + 6);
    n.push_str("sipcore_");
    for c in s
        .group
        .chars()
        .chain(std::iter::once('_'))
        .chain(s.name.chars())
    {
        n.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    if !s.gauge && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

/// `# HELP` text escaped as the format requires (backslash and line feed).
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The exposition text of `samples`: `# HELP`, `# TYPE` (counter or gauge) and the value of
/// each. A second sample with the same metric name (two names that differ only in characters
/// turned into `_`) is left out: a family appears once.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::with_capacity(samples.len() * 120);
    let mut seen = std::collections::HashSet::new();
    for s in samples {
        let name = metric_name(s);
        if !seen.insert(name.clone()) {
            continue;
        }
        let kind = if s.gauge { "gauge" } else { "counter" };
        let help = if s.help.is_empty() {
            s.key()
        } else {
            escape_help(&s.help)
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", s.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_escapes() {
        let samples = [
            Sample::new("core", "rcv_requests", 3, false, "requests\\in\nall"),
            Sample::new("usrloc", "location-users", 2, true, "users"),
            Sample::new("ws", "connections_total", 9, false, ""),
            Sample::new("usrloc", "location_users", 5, true, "dup"),
        ];
        let text = render(&samples);
        assert_eq!(
            text,
            "# HELP sipcore_core_rcv_requests_total requests\\\\in\\nall\n\
             # TYPE sipcore_core_rcv_requests_total counter\n\
             sipcore_core_rcv_requests_total 3\n\
             # HELP sipcore_usrloc_location_users users\n\
             # TYPE sipcore_usrloc_location_users gauge\n\
             sipcore_usrloc_location_users 2\n\
             # HELP sipcore_ws_connections_total ws:connections_total\n\
             # TYPE sipcore_ws_connections_total counter\n\
             sipcore_ws_connections_total 9\n"
        );
    }
}
