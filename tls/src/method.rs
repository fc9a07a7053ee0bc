//! The `tls_method` grammar of OpenSIPS tls_mgm (README, "tls_method"; parser
//! `tls_get_method()` in `modules/tls_openssl/openssl_config.c`): a single method name, or a
//! range `[VLOW]-[VHIGH]` whose missing ends mean "lowest"/"highest supported".
//!
//! Where we differ: names are matched whole and case-insensitively (OpenSIPS compares only the
//! length of the input, so `TLS` is taken for `TLSany`), and nothing below TLS 1.2 is ever
//! negotiated (RFC 8996 deprecates TLS 1.0 and 1.1): a range that reaches lower is raised to
//! TLS 1.2, and one that lies wholly below TLS 1.2 (OpenSIPS's own templates say `TLSv1`, which
//! OpenSSL 3 cannot negotiate at its default security level) becomes TLS 1.2-1.3; both with a
//! warning, so the OpenSIPS lines still start a working server.

use std::fmt;

use openssl::ssl::SslVersion;
use thiserror::Error;

/// A TLS protocol version (RFC 8446 §4.2.1 `supported_versions`, RFC 5246 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.0 (RFC 2246); named `TLSv1` in OpenSIPS.
    Tls1_0,
    /// TLS 1.1 (RFC 4346); `TLSv1_1` (not an OpenSIPS name, accepted for completeness).
    Tls1_1,
    /// TLS 1.2 (RFC 5246); `TLSv1_2`.
    Tls1_2,
    /// TLS 1.3 (RFC 8446); `TLSv1_3`.
    Tls1_3,
}

impl TlsVersion {
    /// The lowest version this crate ever negotiates (Mozilla "intermediate"; RFC 8996).
    pub const FLOOR: TlsVersion = TlsVersion::Tls1_2;
    /// The highest version OpenSSL 3 supports.
    pub const HIGHEST: TlsVersion = TlsVersion::Tls1_3;

    /// The OpenSSL constant for this version.
    pub fn to_openssl(self) -> SslVersion {
        match self {
            TlsVersion::Tls1_0 => SslVersion::TLS1,
            TlsVersion::Tls1_1 => SslVersion::TLS1_1,
            TlsVersion::Tls1_2 => SslVersion::TLS1_2,
            TlsVersion::Tls1_3 => SslVersion::TLS1_3,
        }
    }

    /// Maps an OpenSSL version back (SSL 3 and unknown values give `None`).
    pub fn from_openssl(v: SslVersion) -> Option<TlsVersion> {
        [
            TlsVersion::Tls1_0,
            TlsVersion::Tls1_1,
            TlsVersion::Tls1_2,
            TlsVersion::Tls1_3,
        ]
        .into_iter()
        .find(|t| t.to_openssl() == v)
    }

    /// The OpenSIPS spelling (`TLSv1`, `TLSv1_1`, `TLSv1_2`, `TLSv1_3`).
    pub fn opensips_name(self) -> &'static str {
        match self {
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1_1",
            TlsVersion::Tls1_2 => "TLSv1_2",
            TlsVersion::Tls1_3 => "TLSv1_3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.opensips_name())
    }
}

/// A parsed `tls_method`: the accepted protocol versions, inclusive, never below
/// [`TlsVersion::FLOOR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsMethod {
    /// Lowest accepted version.
    pub min: TlsVersion,
    /// Highest accepted version.
    pub max: TlsVersion,
}

impl Default for TlsMethod {
    /// TLS 1.2 to TLS 1.3 (Mozilla "intermediate"); OpenSIPS's default `SSLv23` means the same
    /// here.
    fn default() -> Self {
        TlsMethod {
            min: TlsVersion::FLOOR,
            max: TlsVersion::HIGHEST,
        }
    }
}

impl fmt::Display for TlsMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// Why a `tls_method` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MethodError {
    /// A name that is none of `SSLv23`, `TLSany`, `any`, `TLSv1`, `TLSv1_1`, `TLSv1_2`, `TLSv1_3`.
    #[error(
        "unknown TLS method {0:?} (expected SSLv23, TLSany, TLSv1, TLSv1_1, TLSv1_2 or TLSv1_3)"
    )]
    UnknownName(String),
    /// More than one `-` in the value.
    #[error("malformed TLS method range (more than one '-')")]
    MalformedRange,
    /// The low end is above the high end.
    #[error("empty TLS method range: {low} is above {high}")]
    EmptyRange {
        /// Low end as written.
        low: TlsVersion,
        /// High end as written.
        high: TlsVersion,
    },
}

/// One end of a range, before the floor is applied.
fn parse_name(s: &str) -> Result<Option<TlsVersion>, MethodError> {
    let names = [
        ("TLSv1", TlsVersion::Tls1_0),
        ("TLSv1_1", TlsVersion::Tls1_1),
        ("TLSv1_2", TlsVersion::Tls1_2),
        ("TLSv1_3", TlsVersion::Tls1_3),
    ];
    if ["SSLv23", "TLSany", "any"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(s))
    {
        return Ok(None);
    }
    names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| Some(*v))
        .ok_or_else(|| MethodError::UnknownName(s.to_string()))
}

impl TlsMethod {
    /// Parses a `tls_method` value. Returns the method and, when the value reached below
    /// TLS 1.2 and was raised, a warning text for the log.
    pub fn parse(value: &str) -> Result<(TlsMethod, Option<String>), MethodError> {
        let value = value.trim();
        let (low, high) = match value.split_once('-') {
            None => {
                let v = parse_name(value)?;
                (v, v)
            }
            Some((l, h)) => {
                if h.contains('-') {
                    return Err(MethodError::MalformedRange);
                }
                let low = if l.trim().is_empty() {
                    None
                } else {
                    parse_name(l.trim())?
                };
                let high = if h.trim().is_empty() {
                    None
                } else {
                    parse_name(h.trim())?
                };
                (low, high)
            }
        };
        // A missing low end is "the lowest supported"; the floor is applied after the range
        // is checked.
        let min = low.unwrap_or(TlsVersion::Tls1_0);
        let max = high.unwrap_or(TlsVersion::HIGHEST);
        if min > max {
            return Err(MethodError::EmptyRange {
                low: min,
                high: max,
            });
        }
        if max < TlsVersion::FLOOR {
            let warning = format!(
                "tls_method {value:?} allows only versions below TLS 1.2 (RFC 8996): \
                 TLSv1_2-TLSv1_3 used instead"
            );
            return Ok((TlsMethod::default(), Some(warning)));
        }
        if min < TlsVersion::FLOOR {
            let warning = low.map(|low| {
                format!("tls_method {value:?} allows {low}, below TLS 1.2 (RFC 8996): raised to TLSv1_2")
            });
            return Ok((
                TlsMethod {
                    min: TlsVersion::FLOOR,
                    max,
                },
                warning,
            ));
        }
        Ok((TlsMethod { min, max }, None))
    }

    /// Whether `v` lies in the range.
    pub fn allows(&self, v: TlsVersion) -> bool {
        self.min <= v && v <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::TlsVersion::*;
    use super::*;

    fn ok(s: &str) -> (TlsVersion, TlsVersion, bool) {
        let (m, w) = TlsMethod::parse(s).unwrap();
        (m.min, m.max, w.is_some())
    }

    #[test]
    fn single_names_and_any() {
        assert_eq!(ok("TLSv1_2"), (Tls1_2, Tls1_2, false));
        assert_eq!(ok("TLSv1_3"), (Tls1_3, Tls1_3, false));
        assert_eq!(ok("tlsv1_3"), (Tls1_3, Tls1_3, false));
        assert_eq!(ok("SSLv23"), (Tls1_2, Tls1_3, false));
        assert_eq!(ok("TLSany"), (Tls1_2, Tls1_3, false));
        assert_eq!(ok("any"), (Tls1_2, Tls1_3, false));
    }

    #[test]
    fn ranges_from_the_opensips_readme() {
        assert_eq!(ok("TLSv1_2-"), (Tls1_2, Tls1_3, false));
        assert_eq!(ok("-TLSv1_2"), (Tls1_2, Tls1_2, false));
        assert_eq!(ok("-"), (Tls1_2, Tls1_3, false));
        assert_eq!(ok(" TLSv1_2 - TLSv1_3 "), (Tls1_2, Tls1_3, false));
        // Reaching below the floor is raised, with a warning.
        assert_eq!(ok("TLSv1-TLSv1_3"), (Tls1_2, Tls1_3, true));
        assert_eq!(ok("TLSv1-"), (Tls1_2, Tls1_3, true));
    }

    #[test]
    fn wholly_below_the_floor_becomes_the_default_range() {
        // OpenSIPS's templates say "[default]TLSv1".
        assert_eq!(ok("TLSv1"), (Tls1_2, Tls1_3, true));
        assert_eq!(ok("-TLSv1_1"), (Tls1_2, Tls1_3, true));
        assert_eq!(ok("TLSv1_1"), (Tls1_2, Tls1_3, true));
    }

    #[test]
    fn errors() {
        assert_eq!(
            TlsMethod::parse("TLS"),
            Err(MethodError::UnknownName("TLS".into()))
        );
        assert_eq!(
            TlsMethod::parse("TLSv1_4"),
            Err(MethodError::UnknownName("TLSv1_4".into()))
        );
        assert_eq!(
            TlsMethod::parse("TLSv1_2-TLSv1_3-"),
            Err(MethodError::MalformedRange)
        );
        assert_eq!(
            TlsMethod::parse("TLSv1_3-TLSv1_2"),
            Err(MethodError::EmptyRange {
                low: Tls1_3,
                high: Tls1_2
            })
        );
        assert!(matches!(
            TlsMethod::parse(""),
            Err(MethodError::UnknownName(_))
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in ["TLSv1_2", "TLSv1_3", "TLSv1_2-TLSv1_3"] {
            assert_eq!(TlsMethod::parse(s).unwrap().0.to_string(), s);
        }
        assert_eq!(TlsVersion::from_openssl(SslVersion::TLS1_3), Some(Tls1_3));
    }
}
