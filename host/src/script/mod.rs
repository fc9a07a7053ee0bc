//! The routing script: compiled once from the configuration's route blocks, then run for
//! every message.
//!
//! [`compile`] resolves every function name to a [`FuncId`] (checking argument counts and
//! kinds), every `route(name)` to a route index, every pseudo-variable to a [`Pv`] with its
//! argument parsed, compiles constant regexes and splits format strings. [`Script::run`]
//! then walks that tree with no name lookups, asking an [`Env`] for message data.
//!
//! Semantics follow OpenSIPS:
//! * `exit` ends the whole script ([`Outcome::Exit`]); `drop` ends it and marks the message
//!   dropped ([`Outcome::Drop`]); `return(n)` returns from the current route to its caller
//!   (`$rc` = n), and in the top route ends processing with [`Outcome::Return`]`(n)`;
//!   falling off the end is `return(1)`.
//! * A function (or `return`) yielding 0 stops the script like `exit` — host functions
//!   should return 1 for success/true and -1 (or another negative) for failure/false.
//! * String comparisons ignore ASCII case; `=~` regexes are case-insensitive (REG_ICASE).
//! * `route()` nesting deeper than [`MAX_ROUTE_DEPTH`] logs an error and drops the message.
//! * `$var(x)` lives in the engine's [`RunState`] and starts unset on every run.
mod compile;
mod engine;
mod format;
mod func;
mod pv;
mod state;
mod tree;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_run;

pub(crate) use compile::build_regex;
pub use engine::MAX_ROUTE_DEPTH;
pub use func::{ArgKind, FuncId, FuncSpec, FunctionTable, RegisterError};
pub use pv::{HeaderName, KnownHeader, Pv, SocketField, VarId};
pub use tree::{Format, Segment};
pub use value::{LogLevel, Value};

use crate::config::{Config, ConfigError, RouteKind};

/// What the host provides to a running script: the current message and the functions it
/// registered. One `Env` serves one message (or one connection event, for filter routes).
pub trait Env {
    /// Value of a pseudo-variable for the current message; `Value::Null` if absent.
    /// Never called for [`Pv::Var`] or [`Pv::RetCode`], which the engine serves.
    fn pv_get(&mut self, pv: &Pv) -> Value<'_>;
    /// Write a pseudo-variable (`$ru`, `$rU`, `$rd`, `$rp`, `$du`); `Err` is logged with
    /// the script line. Never called for [`Pv::Var`].
    fn pv_set(&mut self, pv: &Pv, v: Value<'_>) -> Result<(), String>;
    /// A host function other than `xlog` / `is_method`. Arguments follow the function's
    /// [`ArgKind`]s. Return > 0 for true, < 0 for false; 0 stops the script.
    fn call(&mut self, f: FuncId, args: &[Value<'_>]) -> i64;
    /// After [`Env::call`]: the value the call stored for its argument `index` (0-based),
    /// one declared [`ArgKind::OutPv`]; `None` leaves that pseudo-variable as it was. The
    /// engine writes it (a `$var` becomes visible from the next statement on).
    fn take_output(&mut self, index: usize) -> Option<String> {
        let _ = index;
        None
    }
    /// Output of `xlog`, and the engine's own run-time errors.
    fn log(&mut self, level: LogLevel, text: &str);
    /// Whether `log` would print at `level`; `xlog` skips formatting when not.
    fn log_enabled(&self, level: LogLevel) -> bool {
        let _ = level;
        true
    }
    /// `v == myself`: is this one of the server's own addresses or domains?
    fn is_myself(&mut self, v: &Value<'_>) -> bool;
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `exit` (or a function / `return` yielding 0).
    Exit,
    /// `drop`: the message (or connection, for a trace filter) is dropped.
    Drop,
    /// The top route returned this value (1 when it ran off its end).
    Return(i64),
}

/// A route of a compiled [`Script`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRef(u16);

impl RouteRef {
    /// A number for this route, stable for the life of its [`Script`] (for handles that
    /// cross the plugin ABI); [`Script::route_from_index`] turns it back.
    pub fn index(self) -> u16 {
        self.0
    }
}

/// Reusable per-thread state of a run: `$var` slots and the scratch buffer. Reusing one
/// across runs ([`Script::run_with`]) keeps steady-state runs allocation-free.
#[derive(Debug, Default)]
pub struct RunState {
    vars: state::Vars,
    scratch: String,
}

impl RunState {
    /// Empty state (allocates nothing until used).
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug)]
struct Route {
    kind: RouteKind,
    name: Option<Box<str>>,
    body: Box<[tree::Node]>,
}

/// A compiled routing script. Immutable and `Send + Sync`: share it between workers.
#[derive(Debug)]
pub struct Script {
    file: Box<str>,
    routes: Box<[Route]>,
    var_names: Box<[Box<str>]>,
}

/// Compile the route blocks of `cfg` against the functions of `funcs`.
pub fn compile(cfg: &Config, funcs: &FunctionTable) -> Result<Script, ConfigError> {
    let mut c = compile::Compiler::new(cfg, funcs)?;
    let mut routes = Vec::with_capacity(cfg.routes.len());
    for r in &cfg.routes {
        let body = c.block(&r.body)?;
        routes.push(Route {
            kind: r.kind,
            name: r.name.as_deref().map(Into::into),
            body,
        });
    }
    Ok(Script {
        file: cfg.file().into(),
        routes: routes.into_boxed_slice(),
        var_names: std::mem::take(&mut c.vars.names).into_boxed_slice(),
    })
}

impl Script {
    /// Run `route` for one message. Allocation-free unless the script stores strings or
    /// builds arguments; use [`Script::run_with`] to reuse buffers across messages.
    pub fn run(&self, route: RouteRef, env: &mut impl Env) -> Outcome {
        self.exec(route, env, &mut RunState::new())
    }

    /// Run `route` reusing `state` (cleared first).
    pub fn run_with(&self, state: &mut RunState, route: RouteRef, env: &mut impl Env) -> Outcome {
        self.exec(route, env, state)
    }

    /// The route of `kind` named `name` (`None`: the unnamed block of that kind).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<RouteRef> {
        let i = self
            .routes
            .iter()
            .position(|r| r.kind == kind && r.name.as_deref() == name)?;
        u16::try_from(i).ok().map(RouteRef)
    }

    /// The route numbered `i` by [`RouteRef::index`], if this script has it.
    pub fn route_from_index(&self, i: u16) -> Option<RouteRef> {
        ((i as usize) < self.routes.len()).then_some(RouteRef(i))
    }

    /// The main request route, `route { ... }`.
    pub fn main_route(&self) -> Option<RouteRef> {
        self.route(RouteKind::Request, None)
    }

    /// A named request route, `route[name]` (e.g. for `trace_filter_route`).
    pub fn route_by_name(&self, name: &str) -> Option<RouteRef> {
        self.route(RouteKind::Request, Some(name))
    }

    /// `onreply_route` (`None`) or `onreply_route[name]`.
    pub fn onreply_route(&self, name: Option<&str>) -> Option<RouteRef> {
        self.route(RouteKind::OnReply, name)
    }

    /// `failure_route[name]`.
    pub fn failure_route(&self, name: &str) -> Option<RouteRef> {
        self.route(RouteKind::Failure, Some(name))
    }

    /// `startup_route`.
    pub fn startup_route(&self) -> Option<RouteRef> {
        self.route(RouteKind::Startup, None)
    }

    /// Kind and name of a route.
    pub fn route_info(&self, r: RouteRef) -> Option<(RouteKind, Option<&str>)> {
        self.routes
            .get(r.0 as usize)
            .map(|x| (x.kind, x.name.as_deref()))
    }

    /// The names of the `$var` variables, indexed by [`VarId`].
    pub fn var_names(&self) -> &[Box<str>] {
        &self.var_names
    }
}
