//! The syntax tree of a configuration file: top-level items and route blocks, as written.
//! Nothing here is resolved; `crate::script::compile` turns routes into a runnable tree.
use super::error::Span;
use std::borrow::Cow;

/// A top-level line of the file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `name = value` (any name; the host decides which it knows).
    Global {
        /// The parameter name.
        name: String,
        /// Its value.
        value: GlobalValue,
        /// Span of the name.
        span: Span,
        /// Span of the value.
        value_span: Span,
    },
    /// `socket = ...` or `listen = ...`: the rest of the line, for the `socket-config` parser.
    Socket {
        /// The text after `=`, a trailing `#` comment removed, blanks trimmed.
        text: String,
        /// Span of `text` (its start is the first character of the value).
        span: Span,
    },
    /// `loadmodule "file.so"`.
    LoadModule {
        /// The file name as written.
        path: String,
        /// Span of the string literal.
        span: Span,
    },
    /// `modparam("module", "param", value)`.
    ModParam {
        /// The module name.
        module: String,
        /// The parameter name.
        param: String,
        /// The value.
        value: ModParamValue,
        /// Span of the `modparam` keyword.
        span: Span,
        /// Span of the parameter name literal.
        param_span: Span,
        /// Span of the value.
        value_span: Span,
    },
}

/// The value of a global assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalValue {
    /// An integer; `yes/on/true` are 1 and `no/off/false` are 0.
    Int(i64),
    /// A quoted string, escapes decoded.
    Str(String),
    /// Any other bare word, e.g. `LOG_LOCAL0` or `udp:10.0.0.1:5060`.
    Word(String),
}

/// The value of a `modparam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModParamValue {
    /// A quoted string, escapes decoded.
    Str(String),
    /// An integer (may be negative).
    Int(i64),
}

/// The kinds of route block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// `route` / `route[name]`: requests (named ones are called with `route(name)`).
    Request,
    /// `onreply_route` / `onreply_route[name]`.
    OnReply,
    /// `failure_route[name]`.
    Failure,
    /// `branch_route[name]`.
    Branch,
    /// `local_route`.
    Local,
    /// `startup_route`.
    Startup,
    /// `error_route`.
    Error,
}

impl RouteKind {
    /// The keyword that opens such a block.
    pub fn keyword(self) -> &'static str {
        match self {
            RouteKind::Request => "route",
            RouteKind::OnReply => "onreply_route",
            RouteKind::Failure => "failure_route",
            RouteKind::Branch => "branch_route",
            RouteKind::Local => "local_route",
            RouteKind::Startup => "startup_route",
            RouteKind::Error => "error_route",
        }
    }

    /// The kind a keyword opens, if any.
    pub fn from_keyword(word: &str) -> Option<RouteKind> {
        Some(match word {
            "route" => RouteKind::Request,
            "onreply_route" => RouteKind::OnReply,
            "failure_route" => RouteKind::Failure,
            "branch_route" => RouteKind::Branch,
            "local_route" => RouteKind::Local,
            "startup_route" => RouteKind::Startup,
            "error_route" => RouteKind::Error,
            _ => return None,
        })
    }
}

/// A route block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDef {
    /// Which kind.
    pub kind: RouteKind,
    /// `None` for the unnamed (main) block of its kind.
    pub name: Option<String>,
    /// Span of the keyword (through the closing `]` when named).
    pub span: Span,
    /// The statements.
    pub body: Vec<Stmt>,
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// `if (cond) then [else els]`.
    If {
        /// The condition.
        cond: Expr,
        /// Taken when true.
        then: Box<Stmt>,
        /// Taken when false.
        els: Option<Box<Stmt>>,
        /// Span of the `if` keyword.
        span: Span,
    },
    /// `{ ... }`.
    Block(Vec<Stmt>, Span),
    /// `exit;`
    Exit(Span),
    /// `drop;`
    Drop(Span),
    /// `return;`, `return(expr);`, `return expr;`
    Return(Option<Expr>, Span),
    /// `route(name);`
    Route {
        /// The route called.
        name: String,
        /// Span of the name.
        span: Span,
    },
    /// `name(args);` or `name;`
    Call(Call),
    /// `$pv = expr;`
    Assign {
        /// The target.
        pv: PvRef,
        /// The value.
        value: Expr,
        /// Span of the `=`.
        span: Span,
    },
}

/// A function call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function name.
    pub name: String,
    /// The arguments.
    pub args: Vec<Arg>,
    /// Span of the name.
    pub span: Span,
}

/// A function argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A string literal.
    Str(StrLit),
    /// An integer literal (sign included).
    Int(i64, Span),
    /// A pseudo-variable.
    Pv(PvRef),
    /// A bare word, e.g. `L_ERR`.
    Word(String, Span),
}

impl Arg {
    /// Where the argument is.
    pub fn span(&self) -> Span {
        match self {
            Arg::Str(s) => s.span,
            Arg::Int(_, sp) | Arg::Word(_, sp) => *sp,
            Arg::Pv(p) => p.span,
        }
    }
}

/// A string literal: raw text between the quotes, escapes not yet decoded, so positions
/// inside it (e.g. of a pseudo-variable in a format string) map back to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrLit {
    /// The text between the quotes.
    pub raw: String,
    /// Span including the quotes.
    pub span: Span,
}

impl StrLit {
    /// The decoded value (see [`super::lexer::unescape`]).
    pub fn value(&self) -> Cow<'_, str> {
        super::lexer::unescape(&self.raw)
    }

    /// Byte offset in the file of the first character after the opening quote.
    pub fn content_start(&self) -> u32 {
        self.span.start + 1
    }
}

/// A pseudo-variable reference as written: `$name` or `$name(arg)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvRef {
    /// The name.
    pub name: String,
    /// The argument text.
    pub arg: Option<String>,
    /// Span of the whole reference.
    pub span: Span,
    /// Span of the argument text.
    pub arg_span: Option<Span>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (regular expression match)
    Match,
    /// `!~`
    NoMatch,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `+` (integer addition or string concatenation)
    Add,
    /// `-` (integer subtraction)
    Sub,
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A string literal.
    Str(StrLit),
    /// An integer literal.
    Int(i64, Span),
    /// A pseudo-variable.
    Pv(PvRef),
    /// A function call (true when it returns > 0).
    Call(Call),
    /// `myself`: compares equal to the server's own addresses.
    Myself(Span),
    /// `NULL`.
    Null(Span),
    /// `!e`
    Not(Box<Expr>, Span),
    /// `l op r`
    Binary {
        /// The operator.
        op: BinOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// Span of the operator.
        span: Span,
    },
}

impl Expr {
    /// A span to report errors about this expression at (its first token, or the operator).
    pub fn span(&self) -> Span {
        match self {
            Expr::Str(s) => s.span,
            Expr::Int(_, sp) | Expr::Myself(sp) | Expr::Null(sp) | Expr::Not(_, sp) => *sp,
            Expr::Pv(p) => p.span,
            Expr::Call(c) => c.span,
            Expr::Binary { span, .. } => *span,
        }
    }
}
