//! Severities on OpenSIPS's scale: `log_level` and `xlog`'s `L_*` names share one number line
//! (-3 alert .. 4 debug), and syslog priorities follow from it as OpenSIPS sends them.

/// The severity of a record, ordered most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `L_ALERT` (-3).
    Alert,
    /// `L_CRIT` (-2).
    Crit,
    /// `L_ERR` (-1).
    Err,
    /// `L_WARN` (1).
    Warn,
    /// `L_NOTICE` (2).
    Notice,
    /// `L_INFO` (3).
    Info,
    /// `L_DBG` (4).
    Debug,
    /// Beyond OpenSIPS's scale (5): printed only with `log_level` 5 or more.
    Trace,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 8] = [
        Severity::Alert,
        Severity::Crit,
        Severity::Err,
        Severity::Warn,
        Severity::Notice,
        Severity::Info,
        Severity::Debug,
        Severity::Trace,
    ];

    /// OpenSIPS's number: a record is written when it is at most the `log_level` global.
    pub fn opensips(self) -> i64 {
        match self {
            Severity::Alert => -3,
            Severity::Crit => -2,
            Severity::Err => -1,
            Severity::Warn => 1,
            Severity::Notice => 2,
            Severity::Info => 3,
            Severity::Debug => 4,
            Severity::Trace => 5,
        }
    }

    /// The severity a number on OpenSIPS's scale names (0, which OpenSIPS leaves unnamed,
    /// is a warning; below -3 is alert, above 5 trace).
    pub fn from_opensips(n: i64) -> Severity {
        match n {
            i64::MIN..=-3 => Severity::Alert,
            -2 => Severity::Crit,
            -1 => Severity::Err,
            0 | 1 => Severity::Warn,
            2 => Severity::Notice,
            3 => Severity::Info,
            4 => Severity::Debug,
            _ => Severity::Trace,
        }
    }

    /// The syslog severity (RFC 5424 §6.2.1) OpenSIPS sends for the level: `LOG_ALERT` 1 ..
    /// `LOG_DEBUG` 7.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Alert => 1,
            Severity::Crit => 2,
            Severity::Err => 3,
            Severity::Warn => 4,
            Severity::Notice => 5,
            Severity::Info => 6,
            Severity::Debug | Severity::Trace => 7,
        }
    }

    /// The level's name in syslog and JSON records (OpenSIPS's prefixes).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Alert => "ALERT",
            Severity::Crit => "CRITICAL",
            Severity::Err => "ERROR",
            Severity::Warn => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Info => "INFO",
            Severity::Debug => "DBG",
            Severity::Trace => "TRACE",
        }
    }

    /// The severity [`Severity::name`] names.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The host's slog levels (the `log!` macro): critical is `L_CRIT`, info `L_INFO`.
    pub fn from_slog(level: slog::Level) -> Severity {
        match level {
            slog::Level::Critical => Severity::Crit,
            slog::Level::Error => Severity::Err,
            slog::Level::Warning => Severity::Warn,
            slog::Level::Info => Severity::Info,
            slog::Level::Debug => Severity::Debug,
            slog::Level::Trace => Severity::Trace,
        }
    }

    /// The nearest slog level (slog has no alert or notice: the terminal format prints
    /// alert as CRIT and notice as INFO; syslog and JSON records carry the exact level).
    pub fn to_slog(self) -> slog::Level {
        match self {
            Severity::Alert | Severity::Crit => slog::Level::Critical,
            Severity::Err => slog::Level::Error,
            Severity::Warn => slog::Level::Warning,
            Severity::Notice | Severity::Info => slog::Level::Info,
            Severity::Debug => slog::Level::Debug,
            Severity::Trace => slog::Level::Trace,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensips_numbers_round_trip_and_order() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_opensips(s.opensips()), s);
            assert_eq!(Severity::from_name(s.name()), Some(s));
        }
        let numbers: Vec<i64> = Severity::ALL.iter().map(|s| s.opensips()).collect();
        assert_eq!(numbers, [-3, -2, -1, 1, 2, 3, 4, 5]);
        assert_eq!(Severity::from_opensips(0), Severity::Warn);
        assert_eq!(Severity::from_opensips(-9), Severity::Alert);
        assert_eq!(Severity::from_opensips(9), Severity::Trace);
    }

    #[test]
    fn syslog_priorities_are_opensips_ones() {
        let prios: Vec<u8> = Severity::ALL.iter().map(|s| s.syslog()).collect();
        assert_eq!(prios, [1, 2, 3, 4, 5, 6, 7, 7]);
    }

    #[test]
    fn slog_levels_map_both_ways() {
        for l in [
            slog::Level::Critical,
            slog::Level::Error,
            slog::Level::Warning,
            slog::Level::Info,
            slog::Level::Debug,
            slog::Level::Trace,
        ] {
            assert_eq!(Severity::from_slog(l).to_slog(), l);
        }
        assert_eq!(Severity::Notice.to_slog(), slog::Level::Info);
        assert_eq!(Severity::Alert.to_slog(), slog::Level::Critical);
    }
}
