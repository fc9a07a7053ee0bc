//! Helpers of the built-in commands: the `uptime` answer and its UTC dates, formatted as C's
//! `asctime()`/`ctime()` lay them out (what OpenSIPS's `uptime` prints), with std only.

use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `t` in UTC laid out as `asctime()` does, without its newline: `"Thu Jan  1 00:00:00 1970"`
/// (day of month padded with a space to width 2).
pub fn asctime_utc(t: SystemTime) -> String {
    let secs: i64 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let back = e.duration();
            // Round towards the past so that 0.5 s before the epoch is 23:59:59.
            let s = i64::try_from(back.as_secs()).unwrap_or(i64::MAX);
            -s - i64::from(back.subsec_nanos() > 0)
        }
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let wd = (days + 4).rem_euclid(7) as usize;
    let month = MONTHS
        .get(m.wrapping_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS.get(wd).copied().unwrap_or("???"),
        month,
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Proleptic Gregorian (year, month 1-12, day 1-31) of a count of days since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The `uptime` answer for a server up for `up` at wall-clock time `now`:
/// `{"Now": .., "Up since": .., "Up time": "N [sec]"}` (dates as [`asctime_utc`]). Whole
/// seconds only, so that "Now" minus "Up since" always shows as "Up time".
pub fn uptime_value(now: SystemTime, up: Duration) -> Value {
    let up = Duration::from_secs(up.as_secs());
    let since = now.checked_sub(up).unwrap_or(UNIX_EPOCH);
    json!({
        "Now": asctime_utc(now),
        "Up since": asctime_utc(since),
        "Up time": format!("{} [sec]", up.as_secs()),
    })
}

/// [`uptime_value`] read from the clocks now, for a server started at `started`.
pub(super) fn uptime_now(started: Instant) -> Value {
    uptime_value(SystemTime::now(), started.elapsed())
}

#[cfg(test)]
mod unit {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn dates_match_gnu_date() {
        // Expected values from `date -u -d @N "+%a %b %e %H:%M:%S %Y"`.
        let cases = [
            (0, "Thu Jan  1 00:00:00 1970"),
            (951_782_400, "Tue Feb 29 00:00:00 2000"),
            (1_000_000_000, "Sun Sep  9 01:46:40 2001"),
            (1_795_469_184, "Mon Nov 23 21:26:24 2026"),
            (4_102_444_799, "Thu Dec 31 23:59:59 2099"),
            (-86_400, "Wed Dec 31 00:00:00 1969"),
        ];
        for (secs, want) in cases {
            assert_eq!(asctime_utc(at(secs)), want, "{secs}");
        }
        assert_eq!(
            asctime_utc(UNIX_EPOCH - Duration::from_millis(500)),
            "Wed Dec 31 23:59:59 1969"
        );
    }

    #[test]
    fn uptime_fields() {
        let now = at(1_000_000_000) + Duration::from_millis(100);
        let v = uptime_value(now, Duration::from_millis(3_661_900));
        assert_eq!(
            v,
            json!({
                "Now": "Sun Sep  9 01:46:40 2001",
                "Up since": "Sun Sep  9 00:45:39 2001",
                "Up time": "3661 [sec]",
            })
        );
    }
}
