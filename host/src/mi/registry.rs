//! [`Registry`]: the table of MI commands, shared by every thread that answers MI requests.

use super::{builtins, MiError, Params};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

/// An MI command: called with the request's parameters, answers the JSON `result` or an error.
/// Called on the MI server's threads, possibly several at once.
pub type Handler = Arc<dyn Fn(&Params<'_>) -> Result<Value, MiError> + Send + Sync>;

/// Writes a command's `result` as JSON text, piece by piece, to the client (or to a buffer).
pub type Writer = Box<dyn FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send>;

/// An MI command whose answer may be large: checks its parameters (errors are answered as for
/// a [`Handler`]) and returns the [`Writer`] that produces the `result`, so that the server
/// streams it instead of building it in memory.
pub type StreamHandler = Arc<dyn Fn(&Params<'_>) -> Result<Writer, MiError> + Send + Sync>;

/// A command's answer: a value, or a writer for a streamed one.
pub enum Outcome {
    /// The `result` value.
    Value(Value),
    /// Writes the `result` JSON text.
    Stream(Writer),
}

/// What a name runs: a registered handler, or a built-in that reads the registry itself.
#[derive(Clone)]
enum Action {
    Handler(Handler),
    Stream(StreamHandler),
    Which,
    Help,
}

#[derive(Clone)]
struct Entry {
    action: Action,
    help: Arc<str>,
    alias_of: Option<Arc<str>>,
}

/// Thread-safe table of MI commands by name (with aliases, e.g. `ws:trace` → `ws_trace` as in
/// OpenSIPS 4.x). Handlers run outside the table's lock, so a handler may use the registry.
#[derive(Default)]
pub struct Registry {
    table: RwLock<HashMap<String, Entry>>,
}

impl Registry {
    /// An empty registry (no built-ins).
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the core commands, as OpenSIPS's core exports them:
    /// `which` (sorted command names), `help` (one command's help text; parameter `mi_cmd`),
    /// `version` (`{"Server": "sipcore <version>"}`) and `uptime` (`Now`, `Up since`, `Up time`).
    /// `started` is when the server started.
    pub fn with_builtins(version: &str, started: Instant) -> Self {
        let r = Self::new();
        let server = format!("sipcore {version}");
        let builtins: [(&str, &str, Action); 4] = [
            (
                "which",
                "Lists the names of all MI commands.",
                Action::Which,
            ),
            (
                "help",
                "Shows the help text of the MI command named by 'mi_cmd'.",
                Action::Help,
            ),
            (
                "version",
                "Shows the server's name and version.",
                Action::Handler(Arc::new(move |p: &Params<'_>| {
                    p.at_most(0)?;
                    Ok(json!({ "Server": server }))
                })),
            ),
            (
                "uptime",
                "Shows the current time, the start time and the uptime in seconds.",
                Action::Handler(Arc::new(move |p: &Params<'_>| {
                    p.at_most(0)?;
                    Ok(builtins::uptime_now(started))
                })),
            ),
        ];
        for (name, help, action) in builtins {
            // The table is empty and the names distinct: insertion cannot collide.
            let _ = r.insert(name, help, action, None);
        }
        r
    }

    /// Registers `handler` as command `name` with its `help` text.
    /// [`MiError::Duplicate`] when the name (or an alias of that name) exists.
    pub fn register(&self, name: &str, help: &str, handler: Handler) -> Result<(), MiError> {
        self.insert(name, help, Action::Handler(handler), None)
    }

    /// Registers the streamed command `name` (see [`StreamHandler`]).
    /// [`MiError::Duplicate`] when the name exists.
    pub fn register_stream(
        &self,
        name: &str,
        help: &str,
        handler: StreamHandler,
    ) -> Result<(), MiError> {
        self.insert(name, help, Action::Stream(handler), None)
    }

    /// Makes `alias` run the command `target` (an alias of an alias points at the real
    /// command). [`MiError::UnknownTarget`] when `target` does not exist,
    /// [`MiError::Duplicate`] when `alias` does.
    pub fn register_alias(&self, alias: &str, target: &str) -> Result<(), MiError> {
        let mut table = self.write();
        let entry = table
            .get(target)
            .cloned()
            .ok_or_else(|| MiError::UnknownTarget(target.to_string()))?;
        if table.contains_key(alias) {
            return Err(MiError::Duplicate(alias.to_string()));
        }
        let real = entry.alias_of.clone().unwrap_or_else(|| Arc::from(target));
        table.insert(
            alias.to_string(),
            Entry {
                alias_of: Some(real),
                ..entry
            },
        );
        Ok(())
    }

    fn insert(
        &self,
        name: &str,
        help: &str,
        action: Action,
        alias_of: Option<Arc<str>>,
    ) -> Result<(), MiError> {
        let mut table = self.write();
        if table.contains_key(name) {
            return Err(MiError::Duplicate(name.to_string()));
        }
        table.insert(
            name.to_string(),
            Entry {
                action,
                help: Arc::from(help),
                alias_of,
            },
        );
        Ok(())
    }

    /// Runs command `method` with `params` (a JSON array, object or `null`).
    /// [`MiError::MethodNotFound`] for an unknown name, [`MiError::InvalidParams`] for params
    /// that are not structured, the handler's own error otherwise. A handler that panics is
    /// caught and answered with [`MiError::Internal`]. A streamed command's answer is built
    /// in memory here (batches, tests); the HTTP server uses [`Registry::call_streamed`].
    pub fn call(&self, method: &str, params: &Value) -> Result<Value, MiError> {
        match self.call_streamed(method, params)? {
            Outcome::Value(v) => Ok(v),
            Outcome::Stream(w) => {
                let mut buf = Vec::new();
                w(&mut buf).map_err(|e| MiError::Internal(format!("{method}: {e}")))?;
                serde_json::from_slice(&buf)
                    .map_err(|e| MiError::Internal(format!("{method}: invalid JSON: {e}")))
            }
        }
    }

    /// Like [`Registry::call`], but a streamed command answers its [`Writer`], unrun.
    pub fn call_streamed(&self, method: &str, params: &Value) -> Result<Outcome, MiError> {
        let action = self
            .read()
            .get(method)
            .map(|e| e.action.clone())
            .ok_or_else(|| MiError::MethodNotFound(method.to_string()))?;
        let params = Params::new(params)?;
        match action {
            Action::Which => {
                params.at_most(0)?;
                Ok(Outcome::Value(json!(self.names())))
            }
            Action::Help => self.help_result(&params).map(Outcome::Value),
            Action::Handler(h) => guarded(method, || h(&params)).map(Outcome::Value),
            Action::Stream(h) => guarded(method, || h(&params)).map(Outcome::Stream),
        }
    }

    fn help_result(&self, params: &Params<'_>) -> Result<Value, MiError> {
        params.at_most(1)?;
        let name = params.get_str((0, "mi_cmd"))?;
        let table = self.read();
        let entry = table.get(name).ok_or_else(|| {
            MiError::custom_with_data(404, "Unknown MI command", name.to_string())
        })?;
        Ok(match &entry.alias_of {
            Some(real) => json!({"Help": &*entry.help, "Alias of": &**real}),
            None => json!({"Help": &*entry.help}),
        })
    }

    /// All command names, aliases included, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// Whether `name` is a command or an alias.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The help text of command (or alias) `name`.
    pub fn help(&self, name: &str) -> Option<String> {
        self.read().get(name).map(|e| e.help.to_string())
    }

    // A poisoned lock only means a panic elsewhere while holding it; the map stays consistent
    // because every write is a single insert.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `f`, turning a panic into [`MiError::Internal`].
fn guarded<T>(method: &str, f: impl FnOnce() -> Result<T, MiError>) -> Result<T, MiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(MiError::Internal(format!(
                "command '{method}' panicked: {why}"
            )))
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn echo() -> Handler {
        Arc::new(|p: &Params<'_>| Ok(json!({"first": p.get_str((0, "x"))?})))
    }

    #[test]
    fn register_call_alias() {
        let r = Registry::new();
        r.register("ws_trace", "Traces WS.", echo()).unwrap();
        assert_eq!(
            r.register("ws_trace", "again", echo()),
            Err(MiError::Duplicate("ws_trace".into()))
        );
        r.register_alias("ws:trace", "ws_trace").unwrap();
        r.register_alias("ws:t", "ws:trace").unwrap();
        assert_eq!(
            r.register_alias("ws:trace", "ws_trace"),
            Err(MiError::Duplicate("ws:trace".into()))
        );
        assert_eq!(
            r.register_alias("x", "nope"),
            Err(MiError::UnknownTarget("nope".into()))
        );
        assert_eq!(
            r.register("ws:trace", "", echo()),
            Err(MiError::Duplicate("ws:trace".into()))
        );
        assert_eq!(r.names(), ["ws:t", "ws:trace", "ws_trace"]);
        assert!(r.contains("ws:t"));
        assert_eq!(r.help("ws:trace").as_deref(), Some("Traces WS."));
        for name in ["ws_trace", "ws:trace", "ws:t"] {
            assert_eq!(r.call(name, &json!(["on"])), Ok(json!({"first": "on"})));
        }
        assert_eq!(
            r.call("ws_trace", &json!({"x": "off"})),
            Ok(json!({"first": "off"}))
        );
        assert_eq!(
            r.call("ws_trace", &json!([])),
            Err(MiError::InvalidParams("missing parameter 'x'".into()))
        );
        assert_eq!(
            r.call("ws_trace", &json!(3)),
            Err(MiError::InvalidParams(
                "params must be an array or an object".into()
            ))
        );
        assert_eq!(
            r.call("nope", &Value::Null),
            Err(MiError::MethodNotFound("nope".into()))
        );
    }

    #[test]
    fn panicking_handler_is_caught() {
        let r = Registry::new();
        r.register("boom", "", Arc::new(|_: &Params<'_>| panic!("kaboom")))
            .unwrap();
        r.register(
            "boom2",
            "",
            Arc::new(|_: &Params<'_>| std::panic::panic_any(format!("n={}", 2))),
        )
        .unwrap();
        assert_eq!(
            r.call("boom", &Value::Null),
            Err(MiError::Internal("command 'boom' panicked: kaboom".into()))
        );
        assert_eq!(
            r.call("boom2", &Value::Null),
            Err(MiError::Internal("command 'boom2' panicked: n=2".into()))
        );
        // The registry still works afterwards.
        assert_eq!(r.names(), ["boom", "boom2"]);
    }

    #[test]
    fn builtins() {
        let started = Instant::now()
            .checked_sub(std::time::Duration::from_secs(100))
            .unwrap();
        let r = Registry::with_builtins("0.1.0", started);
        assert_eq!(r.names(), ["help", "uptime", "version", "which"]);
        assert_eq!(
            r.call("which", &Value::Null),
            Ok(json!(["help", "uptime", "version", "which"]))
        );
        assert_eq!(
            r.call("version", &json!([])),
            Ok(json!({"Server": "sipcore 0.1.0"}))
        );
        assert_eq!(
            r.call("version", &json!(["x"])),
            Err(MiError::InvalidParams(
                "too many parameters: 1 given, at most 0 accepted".into()
            ))
        );
        let up = r.call("uptime", &Value::Null).unwrap();
        let secs: u64 = up["Up time"]
            .as_str()
            .unwrap()
            .strip_suffix(" [sec]")
            .unwrap()
            .parse()
            .unwrap();
        assert!((100..160).contains(&secs), "{secs}");
        assert_eq!(up["Now"].as_str().map(str::len), Some(24));
        r.register("a", "Does a.", echo()).unwrap();
        r.register_alias("b", "a").unwrap();
        assert_eq!(
            r.call("help", &json!(["a"])),
            Ok(json!({"Help": "Does a."}))
        );
        assert_eq!(
            r.call("help", &json!({"mi_cmd": "b"})),
            Ok(json!({"Help": "Does a.", "Alias of": "a"}))
        );
        assert_eq!(
            r.call("help", &json!(["zz"])),
            Err(MiError::custom_with_data(404, "Unknown MI command", "zz"))
        );
        assert_eq!(
            r.call("help", &json!([])),
            Err(MiError::InvalidParams("missing parameter 'mi_cmd'".into()))
        );
    }
}
