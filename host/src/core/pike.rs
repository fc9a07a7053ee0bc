//! `pike_check_req()` and the MI commands `pike_list` / `pike_rm` over the one
//! [`Pike`] limiter of the process, with its timer (releases and forgetting, every second) and
//! the block / release log lines.
use crate::mi::{MiError, Params, Registry};
use crate::pike::{Pike, PikeConfig, Release, Source, Verdict};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The pike modparams (set once at startup, defaults otherwise).
static SETTINGS: OnceLock<PikeConfig> = OnceLock::new();
/// The limiter, created (and its timer started) by the first `pike_check_req()`.
static PIKE: OnceLock<Pike> = OnceLock::new();
/// The limiter's clock starts here.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// How often the timer releases calmed sources and forgets silent ones.
const TIMER_EVERY: Duration = Duration::from_secs(1);

/// Apply the pike modparams (before the first message; later calls are ignored).
pub(crate) fn configure(cfg: PikeConfig) {
    let _ = SETTINGS.set(cfg);
}

fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn pike() -> &'static Pike {
    PIKE.get_or_init(|| {
        start_timer();
        Pike::new(SETTINGS.get().copied().unwrap_or_default())
    })
}

fn start_timer() {
    let spawned = std::thread::Builder::new()
        .name("pike-timer".into())
        .spawn(|| loop {
            std::thread::sleep(TIMER_EVERY);
            let p = pike();
            for s in p.sweep(now_ms()) {
                log_release(p, s, Release::Calm);
            }
        });
    if let Err(e) = spawned {
        crate::log!(Error, "pike", "cannot start the pike timer: {}", e);
    }
}

fn level(p: &Pike) -> crate::log::Severity {
    crate::log::Severity::from_opensips(p.config().log_level)
}

/// The release line (OpenSIPS's text, with the address instead of its node pointer).
fn log_release(p: &Pike, s: Source, why: Release) {
    let lvl = level(p);
    if crate::log::enabled_at(lvl) {
        let why = match why {
            Release::Calm => "",
            Release::Evicted => " (forgotten: max_tracked reached)",
            Release::Removed => " (pike_rm)",
        };
        crate::log::record_at(lvl, "pike", &format!("PIKE - UNBLOCKing ip {s}{why}"), &[]);
    }
}

/// `pike_check_req()` for a request from `src`: 1, -2 (blocked by this request, logged
/// once) or -1 (blocked). No source address (cannot happen for a received request): 1, as
/// OpenSIPS answers on internal errors.
pub(crate) fn check_req(src: Option<IpAddr>) -> i64 {
    let Some(ip) = src else {
        return 1;
    };
    let p = pike();
    let c = p.check(ip, now_ms());
    for (s, why) in c.released {
        log_release(p, s, why);
    }
    if c.verdict == Verdict::NewlyBlocked {
        let lvl = level(p);
        if crate::log::enabled_at(lvl) {
            let s = Source::of(ip, p.config().ipv6_prefix);
            crate::log::record_at(lvl, "pike", &format!("PIKE - BLOCKing ip {s}"), &[]);
        }
    }
    c.verdict.code()
}

/// `pike_list` (OpenSIPS 3 `pike:list`): `{"IPs": [blocked addresses]}` as OpenSIPS, plus
/// `"Blocked"`: per address its requests in this unit and the one before and for how long
/// (s) it has been blocked.
fn list() -> Value {
    let Some(p) = PIKE.get() else {
        return json!({ "IPs": [], "Blocked": [] });
    };
    let now = now_ms();
    let blocked = p.blocked(now);
    let ips: Vec<String> = blocked.iter().map(|b| b.source.to_string()).collect();
    let details: Vec<Value> = blocked
        .iter()
        .map(|b| {
            json!({
                "IP": b.source.to_string(),
                "hits": b.hits,
                "prev_hits": b.prev_hits,
                "blocked_for": now.saturating_sub(b.since_ms) / 1000,
            })
        })
        .collect();
    json!({ "IPs": ips, "Blocked": details })
}

/// Register `pike_list` and `pike_rm`, and their OpenSIPS 3 names `pike:list`, `pike:rm`.
pub(crate) fn register_mi(registry: &Registry) -> Result<(), MiError> {
    registry.register(
        "pike_list",
        "Lists the source addresses pike blocks now: IPs (as OpenSIPS) and Blocked (each \
         with its requests in this sampling unit and the one before, and seconds blocked).",
        Arc::new(|p: &Params<'_>| {
            p.at_most(0)?;
            Ok(list())
        }),
    )?;
    registry.register(
        "pike_rm",
        "Unblocks a source address pike blocks: param ip.",
        Arc::new(|params: &Params<'_>| {
            params.at_most(1)?;
            let text = params.get_str((0, "ip"))?;
            let ip: IpAddr = text
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| MiError::custom(500, "Bad IP"))?;
            let Some(p) = PIKE.get() else {
                return Err(MiError::custom(404, "Match not found"));
            };
            match p.unblock(ip, now_ms()) {
                Ok(s) => {
                    log_release(p, s, Release::Removed);
                    Ok(json!("OK"))
                }
                Err(false) => Err(MiError::custom(404, "Match not found")),
                Err(true) => Err(MiError::custom(400, "IP not blocked")),
            }
        }),
    )?;
    registry.register_alias("pike:list", "pike_list")?;
    registry.register_alias("pike:rm", "pike_rm")
}
