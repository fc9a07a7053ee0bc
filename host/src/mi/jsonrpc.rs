//! JSON-RPC 2.0 over the [`Registry`](super::Registry): request body in, response out, no I/O.
//! Batches (§6), notifications (§4.1, no answer) and error objects (§5.1) as the spec defines.

use super::registry::{Outcome, Writer};
use super::{MiError, Registry};
use serde_json::{json, Value};

/// What the HTTP layer sends for one body.
pub enum Answer {
    /// Nothing (only notifications): 204.
    Nothing,
    /// This response object (or batch array).
    Value(Value),
    /// A single request's success response whose `result` the writer produces, for the
    /// server to stream: `{"jsonrpc":"2.0","result":` + writer + `,"id":` id `}`.
    Stream {
        /// The request's id.
        id: Value,
        /// Writes the result.
        writer: Writer,
    },
}

/// Like [`handle_body`], but a single request (not a batch) for a streamed command is
/// answered with [`Answer::Stream`], so that its result is never held whole in memory.
pub fn handle_body_streamed(registry: &Registry, body: &[u8]) -> Answer {
    let v = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return match handle_body(registry, body) {
                Some(v) => Answer::Value(v),
                None => Answer::Nothing,
            }
        }
    };
    let (id, method, params) = match check(&v) {
        Ok(parts) => parts,
        Err(e) => return Answer::Value(e),
    };
    match (id, registry.call_streamed(method, params)) {
        (None, Ok(Outcome::Stream(w))) => {
            // A notification: run it, answer nothing.
            let _ = w(&mut std::io::sink());
            Answer::Nothing
        }
        (None, _) => Answer::Nothing,
        (Some(id), Ok(Outcome::Stream(writer))) => Answer::Stream { id, writer },
        (Some(id), Ok(Outcome::Value(v))) => Answer::Value(success_response(id, v)),
        (Some(id), Err(e)) => Answer::Value(error_response(id, &e)),
    }
}

/// Answers one HTTP body: `Some(response)` to send, or `None` when the body held only
/// notifications (the HTTP layer then answers 204). Invalid JSON gives a -32700 error with id
/// `null`; an empty batch a single -32600 error (§6).
pub fn handle_body(registry: &Registry, body: &[u8]) -> Option<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => handle_value(registry, &v),
        Err(e) => Some(error_response(
            Value::Null,
            &MiError::ParseError(e.to_string()),
        )),
    }
}

/// Answers an already parsed request (an object) or batch (an array of them).
pub fn handle_value(registry: &Registry, v: &Value) -> Option<Value> {
    match v {
        Value::Array(batch) if batch.is_empty() => Some(error_response(
            Value::Null,
            &MiError::InvalidRequest("empty batch".into()),
        )),
        Value::Array(batch) => {
            let answers: Vec<Value> = batch
                .iter()
                .filter_map(|r| handle_one(registry, r))
                .collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        other => handle_one(registry, other),
    }
}

/// A success response (§5): `{"jsonrpc":"2.0","result":..,"id":..}`.
pub fn success_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "result": result, "id": id})
}

/// An error response (§5): `{"jsonrpc":"2.0","error":{..},"id":..}`.
pub fn error_response(id: Value, e: &MiError) -> Value {
    json!({"jsonrpc": "2.0", "error": e.to_json(), "id": id})
}

/// One request object. Invalid requests are answered even without an id (with id `null`
/// when the id itself is unusable), as the spec's examples do; valid notifications are run and
/// get no answer.
fn handle_one(registry: &Registry, req: &Value) -> Option<Value> {
    let (id, method, params) = match check(req) {
        Ok(parts) => parts,
        Err(e) => return Some(e),
    };
    let outcome = registry.call(method, params);
    let id = id?;
    Some(match outcome {
        Ok(result) => success_response(id, result),
        Err(e) => error_response(id, &e),
    })
}

/// A request object's id (`None` for a notification), method and params, or the error
/// response an invalid one gets.
fn check(req: &Value) -> Result<(Option<Value>, &str, &Value), Value> {
    let invalid =
        |id: Value, why: &str| error_response(id, &MiError::InvalidRequest(why.to_string()));
    let Value::Object(obj) = req else {
        return Err(invalid(Value::Null, "a request must be an object"));
    };
    let id = match obj.get("id") {
        None => None,
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => {
            return Err(invalid(
                Value::Null,
                "id must be a string, a number or null",
            ))
        }
    };
    let reply_id = || id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(reply_id(), "jsonrpc must be \"2.0\""));
    }
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Err(invalid(reply_id(), "method must be a string"));
    };
    let params = obj.get("params").unwrap_or(&Value::Null);
    if !matches!(params, Value::Null | Value::Array(_) | Value::Object(_)) {
        return Err(invalid(reply_id(), "params must be an array or an object"));
    }
    Ok((id, method, params))
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::mi::Params;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    fn reg() -> (Registry, Arc<AtomicUsize>) {
        let r = Registry::with_builtins("1.2.3", Instant::now());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        r.register(
            "count",
            "",
            Arc::new(move |_: &Params<'_>| Ok(json!(h.fetch_add(1, Ordering::SeqCst) + 1))),
        )
        .unwrap();
        (r, hits)
    }

    fn run(r: &Registry, body: &str) -> Option<Value> {
        handle_body(r, body.as_bytes())
    }

    #[test]
    fn single_calls() {
        let (r, _) = reg();
        assert_eq!(
            run(&r, r#"{"jsonrpc":"2.0","method":"version","id":1}"#),
            Some(json!({"jsonrpc":"2.0","result":{"Server":"sipcore 1.2.3"},"id":1}))
        );
        assert_eq!(
            run(
                &r,
                r#"{"jsonrpc":"2.0","method":"nope","params":[],"id":"a"}"#
            ),
            Some(
                json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope"},"id":"a"})
            )
        );
        assert_eq!(
            run(
                &r,
                r#"{"jsonrpc":"2.0","method":"version","params":[1],"id":null}"#
            ),
            Some(json!({"jsonrpc":"2.0","error":{"code":-32602,
                "message":"Invalid params: too many parameters: 1 given, at most 0 accepted"},"id":null}))
        );
    }

    #[test]
    fn parse_error_and_invalid_requests() {
        let (r, _) = reg();
        let e = run(&r, r#"{"jsonrpc":"2.0","method":"#).unwrap();
        assert_eq!(e["id"], Value::Null);
        assert_eq!(e["error"]["code"], json!(-32700));
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Parse error: "));
        let cases = [
            (r#"1"#, Value::Null, "a request must be an object"),
            (
                r#"{"jsonrpc":"2.0","method":"which","id":[1]}"#,
                Value::Null,
                "id must be a string, a number or null",
            ),
            (
                r#"{"jsonrpc":"1.0","method":"which","id":3}"#,
                json!(3),
                "jsonrpc must be \"2.0\"",
            ),
            (
                r#"{"method":"which","id":3}"#,
                json!(3),
                "jsonrpc must be \"2.0\"",
            ),
            (
                r#"{"jsonrpc":"2.0","method":1,"id":4}"#,
                json!(4),
                "method must be a string",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"which","params":"x"}"#,
                Value::Null,
                "params must be an array or an object",
            ),
            (r#"[]"#, Value::Null, "empty batch"),
        ];
        for (body, id, why) in cases {
            assert_eq!(
                run(&r, body),
                Some(json!({"jsonrpc":"2.0","error":{"code":-32600,
                    "message":format!("Invalid Request: {why}")},"id":id})),
                "{body}"
            );
        }
    }

    #[test]
    fn notifications_run_but_are_not_answered() {
        let (r, hits) = reg();
        assert_eq!(run(&r, r#"{"jsonrpc":"2.0","method":"count"}"#), None);
        assert_eq!(run(&r, r#"{"jsonrpc":"2.0","method":"nope"}"#), None);
        assert_eq!(
            run(
                &r,
                r#"[{"jsonrpc":"2.0","method":"count"},{"jsonrpc":"2.0","method":"count"}]"#
            ),
            None
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn batch() {
        let (r, _) = reg();
        let body = r#"[{"jsonrpc":"2.0","method":"count","id":1},
            {"jsonrpc":"2.0","method":"count"},
            {"jsonrpc":"2.0","method":"nope","id":2},
            7,
            {"jsonrpc":"2.0","method":"version","id":"v"}]"#;
        assert_eq!(
            run(&r, body),
            Some(json!([
                {"jsonrpc":"2.0","result":1,"id":1},
                {"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope"},"id":2},
                {"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: a request must be an object"},"id":null},
                {"jsonrpc":"2.0","result":{"Server":"sipcore 1.2.3"},"id":"v"},
            ]))
        );
    }
}
