//! [`Params`]: an MI command's arguments, positional (a JSON array) or named (a JSON object),
//! as JSON-RPC 2.0 §4.2 allows.

use super::MiError;
use serde_json::Value;
use std::fmt;

/// Which parameter to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'k> {
    /// By position in a positional (array) call; never matches a named call.
    Pos(usize),
    /// By name in a named (object) call; never matches a positional call.
    Name(&'k str),
    /// By position in a positional call, by name in a named call: the way OpenSIPS maps
    /// `opensips-cli -x mi ws:trace on` onto the named parameter `trace_mode`.
    Either(usize, &'k str),
}

impl From<usize> for Key<'_> {
    fn from(i: usize) -> Self {
        Key::Pos(i)
    }
}

impl<'k> From<&'k str> for Key<'k> {
    fn from(n: &'k str) -> Self {
        Key::Name(n)
    }
}

impl<'k> From<(usize, &'k str)> for Key<'k> {
    fn from((i, n): (usize, &'k str)) -> Self {
        Key::Either(i, n)
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Pos(i) => write!(f, "#{i}"),
            Key::Name(n) | Key::Either(_, n) => write!(f, "'{n}'"),
        }
    }
}

/// The arguments of one MI call, borrowed from the request. A missing `params` member
/// (JSON `null`) reads as an empty positional list.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    value: &'a Value,
}

static EMPTY: Value = Value::Null;

impl<'a> Params<'a> {
    /// Wraps a request's `params`: an array, an object, or `null` (none). Anything else is
    /// [`MiError::InvalidParams`] (JSON-RPC 2.0 §4.2: params must be a structured value).
    pub fn new(value: &'a Value) -> Result<Self, MiError> {
        match value {
            Value::Null | Value::Array(_) | Value::Object(_) => Ok(Params { value }),
            _ => Err(MiError::InvalidParams(
                "params must be an array or an object".into(),
            )),
        }
    }

    /// No parameters at all.
    pub fn none() -> Params<'static> {
        Params { value: &EMPTY }
    }

    /// The raw JSON (`null`, an array or an object).
    pub fn raw(&self) -> &'a Value {
        self.value
    }

    /// Whether the call used named parameters (a JSON object).
    pub fn is_named(&self) -> bool {
        self.value.is_object()
    }

    /// How many parameters were given.
    pub fn len(&self) -> usize {
        match self.value {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        }
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parameter at `key`, if given.
    pub fn get<'k>(&self, key: impl Into<Key<'k>>) -> Option<&'a Value> {
        match (key.into(), self.value) {
            (Key::Pos(i) | Key::Either(i, _), Value::Array(a)) => a.get(i),
            (Key::Name(n) | Key::Either(_, n), Value::Object(o)) => o.get(n),
            _ => None,
        }
    }

    /// The string parameter at `key`; [`MiError::InvalidParams`] naming it when it is missing or
    /// not a string.
    pub fn get_str<'k>(&self, key: impl Into<Key<'k>>) -> Result<&'a str, MiError> {
        let key = key.into();
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    /// The string parameter at `key`, or `None` when it is not given (or `null`);
    /// [`MiError::InvalidParams`] when it is given but not a string.
    pub fn opt_str<'k>(&self, key: impl Into<Key<'k>>) -> Result<Option<&'a str>, MiError> {
        let key = key.into();
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(MiError::InvalidParams(format!(
                "parameter {key} must be a string"
            ))),
        }
    }

    /// The integer parameter at `key`, given as a JSON integer or as a string of digits (the
    /// command line sends strings); [`MiError::InvalidParams`] naming it otherwise.
    pub fn get_int<'k>(&self, key: impl Into<Key<'k>>) -> Result<i64, MiError> {
        let key = key.into();
        self.opt_int(key)?.ok_or_else(|| missing(key))
    }

    /// Like [`Params::get_int`], but `None` when the parameter is not given (or `null`).
    pub fn opt_int<'k>(&self, key: impl Into<Key<'k>>) -> Result<Option<i64>, MiError> {
        let key = key.into();
        let bad = || MiError::InvalidParams(format!("parameter {key} must be an integer"));
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// [`MiError::InvalidParams`] when more than `max` parameters were given.
    pub fn at_most(&self, max: usize) -> Result<(), MiError> {
        if self.len() > max {
            return Err(MiError::InvalidParams(format!(
                "too many parameters: {} given, at most {max} accepted",
                self.len()
            )));
        }
        Ok(())
    }
}

fn missing(key: Key<'_>) -> MiError {
    MiError::InvalidParams(format!("missing parameter {key}"))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn positional_and_named() {
        let a = json!(["on", "42"]);
        let p = Params::new(&a).unwrap();
        assert_eq!(p.len(), 2);
        assert!(!p.is_named());
        assert_eq!(p.get_str(0).unwrap(), "on");
        assert_eq!(p.get_str((0, "trace_mode")).unwrap(), "on");
        assert_eq!(p.get_int(1).unwrap(), 42);
        assert_eq!(p.get("trace_mode"), None);

        let o = json!({"trace_mode": "off", "n": 7});
        let p = Params::new(&o).unwrap();
        assert!(p.is_named());
        assert_eq!(p.get_str("trace_mode").unwrap(), "off");
        assert_eq!(p.get_str((0, "trace_mode")).unwrap(), "off");
        assert_eq!(p.get_int("n").unwrap(), 7);
        assert_eq!(p.get(0), None);
    }

    #[test]
    fn null_is_empty() {
        let p = Params::new(&Value::Null).unwrap();
        assert!(p.is_empty());
        assert!(Params::none().is_empty());
        assert_eq!(p.opt_str(0).unwrap(), None);
        assert_eq!(p.opt_int("x").unwrap(), None);
    }

    #[test]
    fn errors_name_the_parameter() {
        let a = json!([1, "x", 1.5, {"a": 1}]);
        let p = Params::new(&a).unwrap();
        let e = |m: &str| MiError::InvalidParams(m.to_string());
        assert_eq!(p.get_str(0), Err(e("parameter #0 must be a string")));
        assert_eq!(p.get_int(1), Err(e("parameter #1 must be an integer")));
        assert_eq!(p.get_int(2), Err(e("parameter #2 must be an integer")));
        assert_eq!(p.get_int(3), Err(e("parameter #3 must be an integer")));
        assert_eq!(p.get_str(9), Err(e("missing parameter #9")));
        assert_eq!(
            p.get_str((9, "trace_mode")),
            Err(e("missing parameter 'trace_mode'"))
        );
        assert_eq!(
            p.at_most(2),
            Err(e("too many parameters: 4 given, at most 2 accepted"))
        );
        assert_eq!(p.at_most(4), Ok(()));
        assert_eq!(
            Params::new(&json!("x")).err(),
            Some(e("params must be an array or an object"))
        );
    }
}
