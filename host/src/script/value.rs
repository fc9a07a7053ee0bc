//! Script values, log levels, and the comparison rules of OpenSIPS expressions.
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

/// A value seen by the script. Strings borrow where they can (a header straight from the
/// message buffer, a literal from the compiled script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// No value (absent header, unset variable, `NULL`).
    Null,
    /// An integer.
    Int(i64),
    /// A string.
    Str(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// A borrowed string value.
    pub fn str(s: &'a str) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    /// Is it [`Value::Null`]?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer: an `Int`, or a `Str` holding a decimal integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Str(s) => s.parse().ok(),
            Value::Null => None,
        }
    }

    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Detach from whatever it borrows.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(n) => Value::Int(n),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }

    /// Truth in a condition: `Null` false, integers non-zero, strings non-empty.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Int(n) => *n != 0,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// Append as text: `<null>` for `Null` (as OpenSIPS's xlog prints it).
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("<null>"),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Str(s) => out.push_str(s),
        }
    }
}

/// xlog levels, with OpenSIPS's numeric values (`log_level` scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// `L_ALERT` (-3)
    Alert,
    /// `L_CRIT` (-2)
    Crit,
    /// `L_ERR` (-1)
    Err,
    /// `L_WARN` (1)
    Warn,
    /// `L_NOTICE` (2)
    Notice,
    /// `L_INFO` (3)
    Info,
    /// `L_DBG` (4)
    Dbg,
}

impl LogLevel {
    /// Parse an `L_*` name.
    pub fn from_name(s: &str) -> Option<LogLevel> {
        Some(match s {
            "L_ALERT" => LogLevel::Alert,
            "L_CRIT" => LogLevel::Crit,
            "L_ERR" => LogLevel::Err,
            "L_WARN" => LogLevel::Warn,
            "L_NOTICE" => LogLevel::Notice,
            "L_INFO" => LogLevel::Info,
            "L_DBG" => LogLevel::Dbg,
            _ => return None,
        })
    }

    /// OpenSIPS's number for the level (compare with the `log_level` global).
    pub fn opensips_value(self) -> i64 {
        match self {
            LogLevel::Alert => -3,
            LogLevel::Crit => -2,
            LogLevel::Err => -1,
            LogLevel::Warn => 1,
            LogLevel::Notice => 2,
            LogLevel::Info => 3,
            LogLevel::Dbg => 4,
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator that gives the same result with the operands swapped.
    pub(crate) fn mirrored(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Ge => CmpOp::Le,
            op => op,
        }
    }
}

/// ASCII case-insensitive ordering (OpenSIPS compares strings with `strcasecmp`).
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    let a = a.bytes().map(|c| c.to_ascii_lowercase());
    let b = b.bytes().map(|c| c.to_ascii_lowercase());
    a.cmp(b)
}

/// Evaluate `l op r`.
///
/// * Two integers compare as numbers; an integer and a string compare as numbers when the
///   string is a decimal integer, otherwise they are unequal and unordered.
/// * Two strings compare ignoring ASCII case, as OpenSIPS does.
/// * `Null` equals only `Null`; ordering with `Null` is false. `!=` is always `!(==)`.
pub(crate) fn compare(op: CmpOp, l: &Value<'_>, r: &Value<'_>) -> bool {
    let ord = match (l, r) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Str(s)) => s.parse::<i64>().ok().map(|b| a.cmp(&b)),
        (Value::Str(s), Value::Int(b)) => s.parse::<i64>().ok().map(|a| a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Some(cmp_ignore_case(a, b)),
    };
    let null_involved = l.is_null() || r.is_null();
    match (op, ord) {
        (CmpOp::Eq, o) => o == Some(Ordering::Equal),
        (CmpOp::Ne, o) => o != Some(Ordering::Equal),
        // Ordering involving Null is always false, even Null <= Null.
        (_, _) if null_involved => false,
        (_, None) => false,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}

/// `l + r`: integer addition (wrapping) when both are integers, else concatenation of their
/// texts (`Null` as empty).
pub(crate) fn add<'a>(l: Value<'_>, r: Value<'a>) -> Value<'a> {
    match (&l, &r) {
        (Value::Int(a), Value::Int(b)) => Value::Int(a.wrapping_add(*b)),
        _ => {
            let mut s = String::new();
            for v in [&l, &r] {
                if !v.is_null() {
                    v.write_to(&mut s);
                }
            }
            Value::Str(Cow::Owned(s))
        }
    }
}

/// `l - r`: integer subtraction (wrapping); `Null` unless both are integers.
pub(crate) fn sub<'a>(l: &Value<'_>, r: &Value<'_>) -> Value<'a> {
    match (l.as_int(), r.as_int()) {
        (Some(a), Some(b)) => Value::Int(a.wrapping_sub(b)),
        _ => Value::Null,
    }
}
