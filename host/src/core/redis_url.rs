//! Where the usrloc cluster finds Redis (`cachedb_url`): one server,
//! `redis://[[user]:password@]host[:port][/db]`, or the primary that Redis Sentinel names,
//! `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db]` (the form
//! of redis-py's and Celery's sentinel URLs; the sentinels' default port is 26379). The
//! credentials and the database apply to the primary; the sentinels are asked without them.
//! Pure parsing: no I/O here.
use thiserror::Error;

/// Default port of a sentinel.
pub const SENTINEL_PORT: u16 = 26379;

/// A parsed `cachedb_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One Redis server, as the `redis` crate reads the URL.
    Single(String),
    /// The primary of `master` as the first sentinel that answers names it.
    Sentinel {
        /// `(host, port)` of each sentinel, in the URL's order (IPv6 without brackets).
        sentinels: Vec<(String, u16)>,
        /// The monitored primary's name (`sentinel monitor NAME ...`).
        master: String,
        /// `user:password@` as written (percent-encoding kept), or empty.
        userinfo: String,
        /// The database number.
        db: u32,
    },
}

/// Why a `cachedb_url` is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    /// Neither `redis://` nor `redis+sentinel://`.
    #[error("must be redis://host[:port][/db] or redis+sentinel://host[:port][,host[:port]...]/MASTER[/db]")]
    Scheme,
    /// A sentinel address that is not `host[:port]`.
    #[error("sentinel address '{0}' is not host[:port]")]
    Sentinel(String),
    /// No master name after the sentinels.
    #[error("names no master (redis+sentinel://host:port/MASTER)")]
    NoMaster,
    /// A database that is not a number, or something after it.
    #[error("database '{0}' is not a number")]
    Db(String),
}

impl Target {
    /// Parse a `cachedb_url` (the `redis://` form is left to the `redis` crate).
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        if url.starts_with("redis://") {
            return Ok(Target::Single(url.to_string()));
        }
        let rest = url
            .strip_prefix("redis+sentinel://")
            .ok_or(UrlError::Scheme)?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (format!("{u}@"), h),
            None => (String::new(), authority),
        };
        let sentinels = hosts
            .split(',')
            .map(host_port)
            .collect::<Result<Vec<_>, _>>()?;
        let (master, db) = path.split_once('/').unwrap_or((path, ""));
        if master.is_empty() {
            return Err(UrlError::NoMaster);
        }
        let db = match db.trim_end_matches('/') {
            "" => 0,
            d => d.parse().map_err(|_| UrlError::Db(d.to_string()))?,
        };
        Ok(Target::Sentinel {
            sentinels,
            master: master.to_string(),
            userinfo,
            db,
        })
    }

    /// The `redis://` URL of the primary at `host:port` (a sentinel's answer), with the
    /// credentials and database of the sentinel URL.
    pub fn primary_url(userinfo: &str, db: u32, host: &str, port: u16) -> String {
        if host.contains(':') {
            format!("redis://{userinfo}[{host}]:{port}/{db}")
        } else {
            format!("redis://{userinfo}{host}:{port}/{db}")
        }
    }
}

/// `host[:port]` or `[v6][:port]` of a sentinel.
fn host_port(s: &str) -> Result<(String, u16), UrlError> {
    let bad = || UrlError::Sentinel(s.to_string());
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !host_ok {
        return Err(bad());
    }
    let port = match port {
        None => SENTINEL_PORT,
        Some(p) => p.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?,
    };
    Ok((host.to_string(), port))
}

/// `url` with its password replaced by `***`, for logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_server_urls_are_left_to_the_redis_crate() {
        let t = Target::parse("redis://:pw@10.0.0.9:6379/2").unwrap();
        assert_eq!(t, Target::Single("redis://:pw@10.0.0.9:6379/2".into()));
    }

    #[test]
    fn sentinel_urls_name_every_sentinel_the_master_and_the_db() {
        let t =
            Target::parse("redis+sentinel://:p%40ss@s1,10.0.0.2:26380,[::1]:5/mymaster/3").unwrap();
        assert_eq!(
            t,
            Target::Sentinel {
                sentinels: vec![
                    ("s1".into(), 26379),
                    ("10.0.0.2".into(), 26380),
                    ("::1".into(), 5)
                ],
                master: "mymaster".into(),
                userinfo: ":p%40ss@".into(),
                db: 3,
            }
        );
        assert_eq!(
            Target::primary_url(":p%40ss@", 3, "10.0.0.7", 6379),
            "redis://:p%40ss@10.0.0.7:6379/3"
        );
        assert_eq!(
            Target::primary_url("", 0, "::1", 6379),
            "redis://[::1]:6379/0"
        );
        let t = Target::parse("redis+sentinel://127.0.0.1:26379/m").unwrap();
        assert!(matches!(t, Target::Sentinel { db: 0, .. }));
    }

    #[test]
    fn malformed_urls_are_refused_with_the_reason() {
        assert_eq!(Target::parse("rediss://h/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("http://h/"), Err(UrlError::Scheme));
        assert_eq!(
            Target::parse("redis+sentinel://h:26379"),
            Err(UrlError::NoMaster)
        );
        assert_eq!(
            Target::parse("redis+sentinel://h:26379/m/x"),
            Err(UrlError::Db("x".into()))
        );
        for bad in ["h:0", "h:99999", "h:x", "[::1", "[::1]x", "", "a b"] {
            let url = format!("redis+sentinel://{bad},h2/m");
            assert!(
                matches!(Target::parse(&url), Err(UrlError::Sentinel(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redacted("redis://:s3cret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(
            redacted("redis://alice:s3cret@h:6379/0"),
            "redis://alice:***@h:6379/0"
        );
        assert_eq!(
            redacted("redis+sentinel://:x@s1,s2/m"),
            "redis+sentinel://:***@s1,s2/m"
        );
        assert_eq!(redacted("redis://h:6379/0"), "redis://h:6379/0");
    }
}
