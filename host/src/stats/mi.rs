//! MI commands of the statistics, as OpenSIPS 3.x's `statistics.c` exports them:
//! `get_statistics`, `list_statistics`, `reset_statistics`, `reset_all_statistics`, each
//! taking the array parameter `statistics` (`{"statistics": ["all"]}`, `["core:"]`,
//! `["rcv_requests"]`), also given positionally (`[["all"]]`, as opensips-cli sends it, or
//! `["all", "core:"]`, as `sipcore mi get_statistics all core:` sends it).
use super::{collect, matches, reset, Sample};
use crate::mi::{Key, MiError, Params, Registry};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The `statistics` argument: its strings, in order. [`MiError::InvalidParams`] when it is
/// missing or holds something else than strings.
pub fn statistics_param(p: &Params<'_>) -> Result<Vec<String>, MiError> {
    let bad = || MiError::InvalidParams("'statistics' must be an array of strings".into());
    let strings = |a: &[Value]| -> Result<Vec<String>, MiError> {
        a.iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    };
    let list = match (p.get(Key::Either(0, "statistics")), p.raw()) {
        (Some(Value::Array(a)), _) => strings(a)?,
        (Some(Value::String(s)), Value::Object(_)) => vec![s.clone()],
        (Some(Value::String(_)), Value::Array(all)) => strings(all)?,
        (None, _) => {
            return Err(MiError::InvalidParams(
                "missing parameter 'statistics'".into(),
            ))
        }
        _ => return Err(bad()),
    };
    if p.is_named() {
        p.at_most(1)?;
    }
    if list.is_empty() {
        return Err(bad());
    }
    Ok(list)
}

fn not_found() -> MiError {
    MiError::custom(404, "Statistics Not Found")
}

/// The samples any of `args` selects, each once, in collection order.
fn selected(args: &[String]) -> Vec<Sample> {
    collect()
        .into_iter()
        .filter(|s| args.iter().any(|a| matches(a, s)))
        .collect()
}

/// `get_statistics`: `{"group:name": value, ...}`; 404 "Statistics Not Found" when nothing
/// matched.
fn get(p: &Params<'_>) -> Result<Value, MiError> {
    let args = statistics_param(p)?;
    let found = selected(&args);
    if found.is_empty() {
        return Err(not_found());
    }
    let map: Map<String, Value> = found
        .iter()
        .map(|s| (s.key(), Value::from(s.value)))
        .collect();
    Ok(Value::Object(map))
}

/// `list_statistics`: `{"group:name": "incremental" | "non-incremental"}`, every statistic
/// without parameters.
fn list(p: &Params<'_>) -> Result<Value, MiError> {
    let found = if p.is_empty() {
        collect()
    } else {
        selected(&statistics_param(p)?)
    };
    if found.is_empty() {
        return Err(not_found());
    }
    let kind = |s: &Sample| {
        if s.gauge {
            "non-incremental"
        } else {
            "incremental"
        }
    };
    let map: Map<String, Value> = found
        .iter()
        .map(|s| (s.key(), Value::from(kind(s))))
        .collect();
    Ok(Value::Object(map))
}

/// `reset_statistics`: the named counters back to 0 (OpenSIPS resets single statistics only;
/// `group:` and `all` work here too); gauges keep their value. `"OK"`, or 404.
fn reset_some(p: &Params<'_>) -> Result<Value, MiError> {
    let args = statistics_param(p)?;
    match reset(|s| args.iter().any(|a| matches(a, s))) {
        0 => Err(not_found()),
        _ => Ok(Value::from("OK")),
    }
}

/// Register the four commands.
pub fn register(r: &Registry) -> Result<(), MiError> {
    r.register(
        "get_statistics",
        "Prints statistics (all, group: or one name) given in the array 'statistics'.",
        Arc::new(get),
    )?;
    r.register(
        "list_statistics",
        "Lists the statistics and whether each is incremental (array 'statistics' optional).",
        Arc::new(list),
    )?;
    r.register(
        "reset_statistics",
        "Resets the counters named in the array 'statistics' (gauges are not reset).",
        Arc::new(reset_some),
    )?;
    r.register(
        "reset_all_statistics",
        "Resets every counter (gauges are not reset).",
        Arc::new(|p: &Params<'_>| {
            p.at_most(0)?;
            reset(|_| true);
            Ok(Value::from("OK"))
        }),
    )?;
    for (alias, cmd) in [
        ("statistics:get", "get_statistics"),
        ("statistics:list", "list_statistics"),
        ("statistics:reset", "reset_statistics"),
        ("statistics:reset_all", "reset_all_statistics"),
    ] {
        r.register_alias(alias, cmd)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    fn reg() -> Registry {
        let r = Registry::with_builtins("0", Instant::now());
        register(&r).unwrap();
        r
    }

    #[test]
    fn parameter_shapes() {
        let r = reg();
        for params in [
            json!({"statistics": ["core:"]}),
            json!([["core:"]]),
            json!(["core:"]),
            json!({"statistics": "core:"}),
            json!(["sl:", "core:"]),
        ] {
            let v = r.call("get_statistics", &params).unwrap();
            assert!(v["core:rcv_requests"].is_u64(), "{params}: {v}");
        }
        let one = r.call("get_statistics", &json!([["rcv_replies"]])).unwrap();
        assert_eq!(one.as_object().unwrap().len(), 1, "{one}");
        let all = r
            .call("statistics:get", &json!({"statistics": ["all"]}))
            .unwrap();
        assert!(all["shmem:real_used_size"].as_u64().unwrap() > 0, "{all}");
        assert!(all["registrar:accepted_regs"].is_u64());
        assert_eq!(
            r.call("get_statistics", &json!([["nope"]])),
            Err(MiError::custom(404, "Statistics Not Found"))
        );
        for bad in [
            json!([]),
            json!({}),
            json!([[1]]),
            json!([[]]),
            json!({"statistics": 5}),
        ] {
            assert!(
                matches!(
                    r.call("get_statistics", &bad),
                    Err(MiError::InvalidParams(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn reset_and_list() {
        let r = reg();
        super::super::counters::SL_RCV_ACKS.add(3);
        assert_eq!(
            r.call("reset_statistics", &json!([["received_ACKs"]])),
            Ok(json!("OK"))
        );
        assert_eq!(
            r.call("reset_statistics", &json!({"statistics": ["nope"]})),
            Err(MiError::custom(404, "Statistics Not Found"))
        );
        let l = r.call("list_statistics", &Value::Null).unwrap();
        assert_eq!(l["core:rcv_requests"], json!("incremental"));
        assert_eq!(l["shmem:used_size"], json!("non-incremental"));
        // (reset_all_statistics is run by the end-to-end test: here it would race the other
        // tests' counters.)
        assert!(r.contains("reset_all_statistics"));
    }
}
