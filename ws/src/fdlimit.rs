//! Startup check of the descriptor limit (`RLIMIT_NOFILE`) against `ws_max_connections`: a
//! limit below it means accepts fail with EMFILE long before the configured limit (and its 503
//! answer) is reached, so say it once at startup.

/// Descriptors needed besides the connections and the refused ones being answered:
/// listeners, pollers and wakers, the MI, logs, HEP sockets.
pub(crate) const MARGIN: u64 = 64;

/// The soft "Max open files" limit from the text of `/proc/self/limits`; `None` when absent
/// or unlimited.
pub(crate) fn soft_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.strip_prefix("Max open files")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The warning to give, if the soft limit `soft` is below `max_connections` + `refuse_pool`
/// + [`MARGIN`].
pub(crate) fn check(
    soft: u64,
    max_connections: usize,
    refuse_pool: usize,
) -> Option<(String, String, String)> {
    let needed = (max_connections as u64)
        .saturating_add(refuse_pool as u64)
        .saturating_add(MARGIN);
    (soft < needed).then(|| {
        (
            soft.to_string(),
            max_connections.to_string(),
            needed.to_string(),
        )
    })
}

/// Read the process's limit and call `warn` once if it is too low.
pub(crate) fn warn_if_low(
    max_connections: usize,
    refuse_pool: usize,
    warn: impl FnOnce(&str, &[(&str, &str)]),
) {
    let Ok(text) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let Some(soft) = soft_nofile(&text) else {
        return;
    };
    if let Some((soft, max, needed)) = check(soft, max_connections, refuse_pool) {
        let param = crate::flavor::get().named("ws_max_connections");
        warn(
            &format!("descriptor limit (ulimit -n) below {param}: accepts will fail before the limit is reached"),
            &[
                ("nofile", &soft),
                (&param, &max),
                ("recommended", &needed),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 524288               files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn reads_the_soft_limit() {
        assert_eq!(soft_nofile(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024  ", "unlimited");
        assert_eq!(soft_nofile(&unlimited), None);
        assert_eq!(soft_nofile("nothing here"), None);
    }

    #[test]
    fn warns_below_connections_plus_margin() {
        assert_eq!(
            check(1024, 2048, 64),
            Some(("1024".into(), "2048".into(), "2176".into()))
        );
        assert_eq!(check(2176, 2048, 64), None);
        assert!(check(2175, 2048, 64).is_some());
        assert_eq!(check(u64::MAX, usize::MAX, usize::MAX), None);
    }
}
