//! The configuration file: OpenSIPS-compatible `.cfg` syntax.
//!
//! ```text
//! log_level = 3                      # globals: int, yes/no/on/off/true/false, "string", word
//! socket = ws:[::1]:8080 as 1.2.3.4:80   # raw text to the end of the line
//! loadmodule "proto_ws.so"
//! modparam("proto_ws", "ws_port", 8080)
//! route { if ($si == "1.2.3.4") exit; route(relay); }
//! route[relay] { t_relay(); }
//! ```
//!
//! Comments are `#` and `//` to the end of the line and `/* ... */`. A hand-written lexer
//! (`lexer.rs`) feeds a recursive-descent parser (`parser.rs`, `expr.rs`); every token
//! carries a [`Span`] and every error is a [`ConfigError`] naming `file:line:col`.
//! Routes are kept as a syntax tree ([`RouteDef`]); `crate::script::compile` resolves them.
mod ast;
mod error;
mod expr;
pub(crate) mod lexer;
mod parser;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_errors;

pub use ast::{
    Arg, BinOp, Call, Expr, GlobalValue, Item, ModParamValue, PvRef, RouteDef, RouteKind, Stmt,
    StrLit,
};
pub use error::{ConfigError, ErrorKind, Span};
pub use lexer::unescape;

use std::path::Path;

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    file: String,
    src: String,
    /// Globals, sockets, `loadmodule` and `modparam` lines, in file order.
    pub items: Vec<Item>,
    /// Route blocks, in file order. No two share kind and name.
    pub routes: Vec<RouteDef>,
}

/// Read and parse a configuration file. Errors name the path as given.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(&name, ErrorKind::Io(e.to_string())))?;
    parse_owned(src, name)
}

/// Parse configuration text; `file_name` is used in error messages.
pub fn parse_str(src: &str, file_name: &str) -> Result<Config, ConfigError> {
    parse_owned(src.to_owned(), file_name.to_owned())
}

fn parse_owned(src: String, file: String) -> Result<Config, ConfigError> {
    if u32::try_from(src.len()).is_err() {
        return Err(ConfigError::whole_file(&file, ErrorKind::TooLarge));
    }
    let (items, routes) = parser::Parser::new(&src, &file).parse_file()?;
    Ok(Config {
        file,
        src,
        items,
        routes,
    })
}

impl Config {
    /// The file name given when parsing.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The whole source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// The text a span covers (empty if the span is not within the source).
    pub fn text(&self, span: Span) -> &str {
        self.src
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// 1-based `(line, column)` of the start of `span`; the column counts characters.
    pub fn position(&self, span: Span) -> (u32, u32) {
        let loc = error::locate(&self.src, span.start as usize);
        (loc.line, loc.col)
    }

    /// A [`ConfigError`] at `span` with the host's own message (e.g. an unknown module
    /// parameter), rendered like every other error as `file:line:col: message`.
    pub fn error_at(&self, span: Span, msg: impl Into<String>) -> ConfigError {
        self.error_kind_at(span, ErrorKind::Other(msg.into()))
    }

    /// A [`ConfigError`] of a given kind at `span`.
    pub fn error_kind_at(&self, span: Span, kind: ErrorKind) -> ConfigError {
        ConfigError::at(&self.file, &self.src, span.start, kind)
    }

    /// The value of the last global assignment to `name`, with the span of that value.
    pub fn global(&self, name: &str) -> Option<(&GlobalValue, Span)> {
        self.items.iter().rev().find_map(|it| match it {
            Item::Global {
                name: n,
                value,
                value_span,
                ..
            } if n == name => Some((value, *value_span)),
            _ => None,
        })
    }

    /// The `socket=`/`listen=` values with their spans, in file order.
    pub fn sockets(&self) -> impl Iterator<Item = (&str, Span)> + '_ {
        self.items.iter().filter_map(|it| match it {
            Item::Socket { text, span } => Some((text.as_str(), *span)),
            _ => None,
        })
    }

    /// The route block of `kind` named `name` (`None`: the unnamed one).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<&RouteDef> {
        self.routes
            .iter()
            .find(|r| r.kind == kind && r.name.as_deref() == name)
    }
}
