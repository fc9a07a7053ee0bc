//! The resolved tree the engine runs: no names, no spans, constants folded, regexes and
//! format strings prepared.
use super::func::FuncId;
use super::pv::Pv;
use super::value::{CmpOp, LogLevel, Value};
use std::borrow::Cow;

/// A constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Const {
    /// `NULL`
    Null,
    /// An integer.
    Int(i64),
    /// A string, escapes decoded.
    Str(Box<str>),
}

impl Const {
    /// As a value borrowing from the tree.
    pub(crate) fn value(&self) -> Value<'_> {
        match self {
            Const::Null => Value::Null,
            Const::Int(n) => Value::Int(*n),
            Const::Str(s) => Value::Str(Cow::Borrowed(s)),
        }
    }

    /// From a value (used by constant folding).
    pub(crate) fn from_value(v: Value<'_>) -> Const {
        match v {
            Value::Null => Const::Null,
            Value::Int(n) => Const::Int(n),
            Value::Str(s) => Const::Str(s.into()),
        }
    }
}

/// A format string split into literal text and pseudo-variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub(crate) segs: Box<[Segment]>,
}

/// A piece of a [`Format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, escapes decoded.
    Lit(Box<str>),
    /// A pseudo-variable, printed as its value (`<null>` when absent).
    Pv(Pv),
}

impl Format {
    /// The pieces.
    pub fn segments(&self) -> &[Segment] {
        &self.segs
    }

    /// The text, when the format holds no pseudo-variable.
    pub fn as_literal(&self) -> Option<&str> {
        match &*self.segs {
            [] => Some(""),
            [Segment::Lit(s)] => Some(s),
            _ => None,
        }
    }
}

/// An argument of a host function.
#[derive(Debug, Clone)]
pub(crate) enum CArg {
    /// A constant, passed as is.
    Const(Const),
    /// A pseudo-variable's current value.
    Pv(Pv),
    /// A pseudo-variable's value converted to an integer (`Null` if it holds none).
    PvInt(Pv),
    /// A rendered format string.
    Format(Format),
    /// A writable pseudo-variable the function may store a result in ([`super::ArgKind::OutPv`]).
    Out(Pv),
}

/// A function call.
#[derive(Debug, Clone)]
pub(crate) enum CallNode {
    /// `xlog`, run by the engine.
    Xlog {
        /// The level.
        level: LogLevel,
        /// The message.
        fmt: Format,
    },
    /// `is_method`, run by the engine against `$rm`.
    IsMethod(Box<[Box<str>]>),
    /// Anything else: [`super::Env::call`].
    Host {
        /// The function.
        id: FuncId,
        /// Its arguments.
        args: Box<[CArg]>,
    },
}

/// An expression.
#[derive(Debug, Clone)]
pub(crate) enum CExpr {
    /// A constant.
    Const(Const),
    /// A pseudo-variable.
    Pv(Pv),
    /// A function call: true when it returns > 0; returning 0 stops the script.
    Call(CallNode),
    /// `!e`
    Not(Box<CExpr>),
    /// `a && b`
    And(Box<CExpr>, Box<CExpr>),
    /// `a || b`
    Or(Box<CExpr>, Box<CExpr>),
    /// `l op constant`: the fast path, nothing copied.
    CmpConst {
        /// The operator (mirrored if the constant was on the left).
        op: CmpOp,
        /// The non-constant side.
        l: Box<CExpr>,
        /// The constant side.
        c: Const,
    },
    /// `l op r`, both dynamic: `l` is copied aside while `r` is evaluated.
    Cmp {
        /// The operator.
        op: CmpOp,
        /// Left.
        l: Box<CExpr>,
        /// Right.
        r: Box<CExpr>,
    },
    /// `l =~ "re"` / `l !~ "re"` with a regex compiled at startup.
    Match {
        /// `!~`
        neg: bool,
        /// The subject.
        l: Box<CExpr>,
        /// The pattern (case-insensitive, as OpenSIPS's REG_ICASE).
        re: regex::Regex,
    },
    /// `l =~ r` with a pattern known only at run time.
    MatchDyn {
        /// `!~`
        neg: bool,
        /// The subject.
        l: Box<CExpr>,
        /// The pattern.
        r: Box<CExpr>,
    },
    /// `v == myself` (`neg`: `!=`).
    Myself {
        /// `!=`
        neg: bool,
        /// The value checked.
        v: Box<CExpr>,
    },
    /// `l + r`
    Add(Box<CExpr>, Box<CExpr>),
    /// `l - r`
    Sub(Box<CExpr>, Box<CExpr>),
}

/// A statement.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// `if`
    If {
        /// Condition.
        cond: CExpr,
        /// Taken when true.
        then: Box<[Node]>,
        /// Taken when false (empty when there is no else).
        els: Box<[Node]>,
    },
    /// `exit`
    Exit,
    /// `drop`
    Drop,
    /// `return(e)`
    Return(CExpr),
    /// `route(name)`
    Route {
        /// Index into the script's routes.
        idx: u16,
        /// Source line, for the recursion-limit message.
        line: u32,
    },
    /// A function call as a statement.
    Call(CallNode),
    /// `$pv = e`
    Assign {
        /// Target (writable).
        pv: Pv,
        /// Value.
        value: CExpr,
        /// The target as written, for error messages.
        what: Box<str>,
        /// Source line, for error messages.
        line: u32,
    },
}
