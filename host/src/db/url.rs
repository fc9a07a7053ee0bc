//! `db_url` (OpenSIPS's syntax): `sqlite:///abs/path.db`, `sqlite://relative/path.db` (against
//! the configuration file's directory), `postgres://user:password@host:port/dbname`
//! (`postgresql://` too; the port defaults to 5432).
use super::error::DbError;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed `db_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// An SQLite database file.
    Sqlite {
        /// The file, absolute or relative to the working directory when the config's
        /// directory was.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// The user, if given.
        user: Option<String>,
        /// The password, if given (never shown by `Display`/`Debug`).
        password: Option<String>,
        /// Host name or address (without IPv6 brackets).
        host: String,
        /// Port.
        port: u16,
        /// Database name.
        dbname: String,
    },
}

fn bad(text: &str, reason: impl Into<String>) -> DbError {
    DbError::BadUrl {
        url: redact(text),
        reason: reason.into(),
    }
}

/// `text` with the password of a `scheme://user:password@` part replaced by `***`.
fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let Some((auth, host)) = rest.rsplit_once('@') else {
        return text.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => text.to_string(),
    }
}

/// `%XX` escapes decoded (user names and passwords with `@`, `:` or `/`).
fn percent_decode(text: &str, whole: &str) -> Result<String, DbError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(whole, "bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(whole, "%-escapes are not UTF-8"))
}

impl DbUrl {
    /// Parse `text`; a relative SQLite path is resolved against `config_dir`.
    pub fn parse(text: &str, config_dir: &Path) -> Result<DbUrl, DbError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            bad(
                text,
                "expected scheme://..., e.g. sqlite:///var/lib/sipcore/sipcore.db",
            )
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                if rest.is_empty() || rest == "/" {
                    return Err(bad(text, "no database file"));
                }
                let p = Path::new(rest);
                let path = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    config_dir.join(p)
                };
                Ok(DbUrl::Sqlite { path })
            }
            "postgres" | "postgresql" => Self::parse_postgres(text, rest),
            other => Err(bad(
                text,
                format!("unsupported database {other:?} (sqlite or postgres)"),
            )),
        }
    }

    fn parse_postgres(text: &str, rest: &str) -> Result<DbUrl, DbError> {
        let (authority, dbname) = rest.split_once('/').ok_or_else(|| {
            bad(
                text,
                "no database name (postgres://user:pass@host:port/dbname)",
            )
        })?;
        if dbname.is_empty() || dbname.contains(['/', '?', '#']) {
            return Err(bad(
                text,
                "the database name must be one plain path segment",
            ));
        }
        let (auth, hostport) = match authority.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, authority),
        };
        let (user, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (
                    Some(percent_decode(u, text)?),
                    Some(percent_decode(p, text)?),
                ),
                None => (Some(percent_decode(a, text)?), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad(text, "unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad(text, "no host"));
        }
        let port = match port {
            None => 5432,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(text, format!("bad port {p:?}")))?,
        };
        Ok(DbUrl::Postgres {
            user: user.filter(|u| !u.is_empty()),
            password,
            host: host.to_string(),
            port,
            dbname: dbname.to_string(),
        })
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite { path } => write!(f, "sqlite://{}", path.display()),
            DbUrl::Postgres {
                user,
                host,
                port,
                dbname,
                ..
            } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                match user {
                    Some(u) => write!(f, "postgres://{u}@{host}:{port}/{dbname}"),
                    None => write!(f, "postgres://{host}:{port}/{dbname}"),
                }
            }
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_absolute_and_relative() {
        let dir = Path::new("/etc/sipcore");
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/sipcore/sipcore.db", dir).unwrap(),
            DbUrl::Sqlite {
                path: "/var/lib/sipcore/sipcore.db".into()
            }
        );
        assert_eq!(
            DbUrl::parse("sqlite://users.db", dir).unwrap(),
            DbUrl::Sqlite {
                path: "/etc/sipcore/users.db".into()
            }
        );
        assert_eq!(
            DbUrl::parse("SQLITE://db/u.db", dir).unwrap(),
            DbUrl::Sqlite {
                path: "/etc/sipcore/db/u.db".into()
            }
        );
        assert!(DbUrl::parse("sqlite://", dir).is_err());
        assert!(DbUrl::parse("sqlite:///", dir).is_err());
        assert_eq!(
            DbUrl::parse("sqlite:///var/x.db", dir).unwrap().to_string(),
            "sqlite:///var/x.db"
        );
    }

    #[test]
    fn postgres() {
        let dir = Path::new("/");
        let u = DbUrl::parse(
            "postgres://opensips:s%40cret:x@db.example.com:5433/opensips",
            dir,
        )
        .unwrap();
        assert_eq!(
            u,
            DbUrl::Postgres {
                user: Some("opensips".into()),
                password: Some("s@cret:x".into()),
                host: "db.example.com".into(),
                port: 5433,
                dbname: "opensips".into(),
            }
        );
        assert_eq!(
            u.to_string(),
            "postgres://opensips@db.example.com:5433/opensips"
        );
        assert!(!format!("{u:?}").contains("cret"));
        let u = DbUrl::parse("postgresql://[::1]/sip", dir).unwrap();
        assert_eq!(
            u,
            DbUrl::Postgres {
                user: None,
                password: None,
                host: "::1".into(),
                port: 5432,
                dbname: "sip".into(),
            }
        );
        assert_eq!(u.to_string(), "postgres://[::1]:5432/sip");
        assert!(DbUrl::parse("postgres://h:0/db", dir).is_err());
        assert!(DbUrl::parse("postgres://h:99999/db", dir).is_err());
        assert!(DbUrl::parse("postgres://h", dir).is_err());
        assert!(DbUrl::parse("postgres://h/", dir).is_err());
        assert!(DbUrl::parse("postgres://u:pw@/db", dir).is_err());
    }

    #[test]
    fn other_schemes_and_redaction() {
        let dir = Path::new("/");
        let e = DbUrl::parse("mysql://opensips:secret@localhost/opensips", dir).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unsupported database \"mysql\""), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(DbUrl::parse("users.db", dir).is_err());
        assert!(DbUrl::parse("postgres://u:p%zz@h/db", dir).is_err());
    }
}
