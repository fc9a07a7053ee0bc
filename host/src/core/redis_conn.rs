//! Connections to Redis for the usrloc cluster, each with a deadline: to the one server of a
//! `redis://` URL, or to the primary Redis Sentinel names (see `redis_url`).
use super::redis_url::Target;
use std::time::Duration;

/// Deadline of one Redis call (connect, command, pipeline).
pub(super) const DEADLINE: Duration = Duration::from_secs(1);

pub(super) fn connect_url<T: redis::IntoConnectionInfo>(
    url: T,
) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let con = client.get_connection_with_timeout(DEADLINE)?;
    con.set_read_timeout(Some(DEADLINE))?;
    con.set_write_timeout(Some(DEADLINE))?;
    Ok(con)
}

/// A connection to Redis: the one server, or the primary that the first sentinel to answer
/// names (asked again at every reconnection, so a failover is followed), checked with `ROLE`
/// to be a primary (a demoted one answers `slave`; sentinels' clients guide, "Redis Sentinel
/// clients": ask, connect, verify).
pub(super) fn connect(t: &Target) -> redis::RedisResult<redis::Connection> {
    let (sentinels, master, userinfo, db) = match t {
        Target::Single(url) => return connect_url(url.as_str()),
        Target::Sentinel {
            sentinels,
            master,
            userinfo,
            db,
        } => (sentinels, master, userinfo, *db),
    };
    let mut last = None;
    for (host, port) in sentinels {
        let asked = connect_url((host.as_str(), *port)).and_then(|mut s| {
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(master)
                .query::<Option<(String, u16)>>(&mut s)
        });
        let (h, p) = match asked {
            Ok(Some(a)) => a,
            Ok(None) => {
                last = Some(redis::RedisError::from((
                    redis::ErrorKind::ResponseError,
                    "the sentinel does not know the master",
                    master.clone(),
                )));
                continue;
            }
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let mut con = connect_url(Target::primary_url(userinfo, db, &h, p))?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con)?;
        let is_primary =
            matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
        if is_primary {
            return Ok(con);
        }
        last = Some(redis::RedisError::from((
            redis::ErrorKind::ResponseError,
            "the sentinel named a server that is not a primary",
            format!("{h}:{p}"),
        )));
    }
    Err(last.unwrap_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::ResponseError, "no sentinel"))
    }))
}
