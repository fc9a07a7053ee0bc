//! [`MiError`]: why an MI call failed, and its JSON-RPC 2.0 error object (§5.1).

use serde_json::{json, Map, Value};

/// Why an MI command (or a JSON-RPC request) failed. Each variant maps to the JSON-RPC 2.0 error
/// code returned to the caller (JSON-RPC 2.0 §5.1); [`MiError::Custom`] carries a command's own
/// code, as OpenSIPS commands answer e.g. `400 "Bad param"` or `500 "Bad parameter value"`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MiError {
    /// The body is not valid JSON (-32700); the detail is the parser's message.
    #[error("Parse error: {0}")]
    ParseError(String),
    /// The JSON is not a valid request object (-32600); the detail names what is wrong.
    #[error("Invalid Request: {0}")]
    InvalidRequest(String),
    /// No command of that name is registered (-32601); the field is the name asked for.
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// The command's parameters are missing or of the wrong kind (-32602); names the problem.
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    /// The command failed inside (-32603), including a handler that panicked.
    #[error("Internal error: {0}")]
    Internal(String),
    /// Registration refused: a command or alias of that name already exists (-32603 if sent).
    #[error("MI command '{0}' is already registered")]
    Duplicate(String),
    /// Alias refused: the command it would point to does not exist (-32603 if sent).
    #[error("MI alias target '{0}' is not registered")]
    UnknownTarget(String),
    /// A command's own error: `code`, `message` and optional `data` are sent as they are.
    #[error("{code} {message}")]
    Custom {
        /// The error code, e.g. 400 or 500 as OpenSIPS uses.
        code: i64,
        /// The short message, e.g. "Bad param".
        message: String,
        /// Optional detail, sent as the error object's `data` member.
        data: Option<Value>,
    },
}

impl MiError {
    /// A command's own error with a code and message and no data.
    pub fn custom(code: i64, message: impl Into<String>) -> Self {
        MiError::Custom {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A command's own error with a code, message and detail (`data`).
    pub fn custom_with_data(code: i64, message: impl Into<String>, data: impl Into<Value>) -> Self {
        MiError::Custom {
            code,
            message: message.into(),
            data: Some(data.into()),
        }
    }

    /// The JSON-RPC 2.0 error code (§5.1) of this error.
    pub fn code(&self) -> i64 {
        match self {
            MiError::ParseError(_) => -32700,
            MiError::InvalidRequest(_) => -32600,
            MiError::MethodNotFound(_) => -32601,
            MiError::InvalidParams(_) => -32602,
            MiError::Internal(_) | MiError::Duplicate(_) | MiError::UnknownTarget(_) => -32603,
            MiError::Custom { code, .. } => *code,
        }
    }

    /// The JSON-RPC 2.0 error object (§5.1): `{"code": .., "message": ..[, "data": ..]}`. The
    /// message is this error's text (it names the problem); `Custom` keeps its own message/data.
    pub fn to_json(&self) -> Value {
        match self {
            MiError::Custom {
                code,
                message,
                data,
            } => {
                let mut m = Map::new();
                m.insert("code".into(), json!(code));
                m.insert("message".into(), json!(message));
                if let Some(d) = data {
                    m.insert("data".into(), d.clone());
                }
                Value::Object(m)
            }
            other => json!({"code": other.code(), "message": other.to_string()}),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn codes_follow_json_rpc() {
        assert_eq!(MiError::ParseError("x".into()).code(), -32700);
        assert_eq!(MiError::InvalidRequest("x".into()).code(), -32600);
        assert_eq!(MiError::MethodNotFound("x".into()).code(), -32601);
        assert_eq!(MiError::InvalidParams("x".into()).code(), -32602);
        assert_eq!(MiError::Internal("x".into()).code(), -32603);
        assert_eq!(MiError::Duplicate("x".into()).code(), -32603);
        assert_eq!(MiError::UnknownTarget("x".into()).code(), -32603);
        assert_eq!(MiError::custom(400, "Bad param").code(), 400);
    }

    #[test]
    fn error_objects() {
        assert_eq!(
            MiError::MethodNotFound("foo".into()).to_json(),
            json!({"code": -32601, "message": "Method not found: foo"})
        );
        assert_eq!(
            MiError::custom(400, "Bad param").to_json(),
            json!({"code": 400, "message": "Bad param"})
        );
        assert_eq!(
            MiError::custom_with_data(
                500,
                "Bad parameter value",
                "trace_mode should be 'on' or 'off'"
            )
            .to_json(),
            json!({"code": 500, "message": "Bad parameter value",
                   "data": "trace_mode should be 'on' or 'off'"})
        );
    }
}
