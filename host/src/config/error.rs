//! Positions in the configuration file and the error type every stage reports with.
//!
//! A [`Span`] is a byte range of the source; a [`ConfigError`] turns one into
//! `file:line:col: message` plus the offending source line with a caret under the column.
use std::fmt;

/// A byte range `start..end` in the configuration source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets. The parser rejects sources over 4 GiB, so offsets fit in `u32`.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// What went wrong. Every variant is reported at a position of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read (reported without a position).
    #[error("cannot read file: {0}")]
    Io(String),
    /// The source is larger than spans can address.
    #[error("configuration file is larger than 4 GiB")]
    TooLarge,
    /// A `"` or `'` string without its closing quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// A `/*` comment without `*/`.
    #[error("unterminated comment (missing '*/')")]
    UnterminatedComment,
    /// `$name(` or `$(` without the closing `)` on the same line.
    #[error("unterminated pseudo-variable (missing ')')")]
    UnterminatedPv,
    /// A `$` not followed by a pseudo-variable name.
    #[error("expected a pseudo-variable name after '$'")]
    BadPvName,
    /// A character that starts no token.
    #[error("unexpected character '{0}'")]
    UnexpectedChar(char),
    /// A malformed or out-of-range integer.
    #[error("bad number '{0}'")]
    BadNumber(String),
    /// The parser wanted something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What was expected, with its context (e.g. "';' after 'exit'").
        expected: String,
        /// The token found instead.
        found: String,
    },
    /// `name =` with nothing after it on the line.
    #[error("missing value after '{0} ='")]
    MissingValue(String),
    /// A construct of the OpenSIPS language this implementation does not support.
    #[error("'{0}' is not supported")]
    Unsupported(String),
    /// `else` that follows no `if`.
    #[error("'else' without a matching 'if'")]
    ElseWithoutIf,
    /// Two route blocks of the same kind and name.
    #[error("duplicate {route}, first defined at line {line}, column {col}")]
    DuplicateRoute {
        /// The route, e.g. "route[relay]".
        route: String,
        /// Line of the first definition.
        line: u32,
        /// Column of the first definition.
        col: u32,
    },
    /// A call to a function nobody registered.
    #[error("unknown function '{0}'")]
    UnknownFunction(String),
    /// A call with too few or too many arguments.
    #[error("wrong number of arguments for '{func}': expected {expected}, got {got}")]
    ArgCount {
        /// The function.
        func: String,
        /// The accepted counts, e.g. "1 or 2".
        expected: String,
        /// The count given.
        got: usize,
    },
    /// An argument of the wrong kind.
    #[error("argument {index} of '{func}' must be {expected}")]
    ArgKind {
        /// The function.
        func: String,
        /// 1-based argument position.
        index: usize,
        /// What the function accepts there.
        expected: &'static str,
    },
    /// `route(name)` naming no `route[name]` block.
    #[error("unknown route '{0}'")]
    UnknownRoute(String),
    /// A pseudo-variable name this implementation does not know.
    #[error("unknown pseudo-variable '${0}'")]
    UnknownPv(String),
    /// A known pseudo-variable with a missing or invalid argument.
    #[error("invalid pseudo-variable '${pv}': {reason}")]
    BadPvArg {
        /// The pseudo-variable name.
        pv: String,
        /// Why the argument is refused.
        reason: String,
    },
    /// Assignment to a pseudo-variable that cannot be written.
    #[error("pseudo-variable '${0}' is read-only")]
    ReadOnlyPv(String),
    /// A regular expression that does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    /// An xlog level that is not one of the L_* names.
    #[error(
        "unknown log level '{0}' (expected L_ALERT, L_CRIT, L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG)"
    )]
    BadLogLevel(String),
    /// An operator applied to operands it cannot take (e.g. `myself < 3`).
    #[error("{0}")]
    BadOperand(String),
    /// A table grew past its index type (routes, variables).
    #[error("too many {0}")]
    Limit(&'static str),
    /// A semantic error reported by the host through [`super::Config::error_at`].
    #[error("{0}")]
    Other(String),
}

/// An error with its place in the configuration file.
///
/// `Display` renders `file:line:col: message`, then the source line and a caret under the
/// column (I/O errors, which have no position, render as `file: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given to the parser.
    pub file: String,
    /// 1-based line; 0 when the error has no position.
    pub line: u32,
    /// 1-based column in characters; 0 when the error has no position.
    pub col: u32,
    /// What went wrong.
    pub kind: ErrorKind,
    /// The source line the error is on, without its line break.
    pub source_line: String,
}

impl ConfigError {
    /// An error located at byte `offset` of `src`.
    pub(crate) fn at(file: &str, src: &str, offset: u32, kind: ErrorKind) -> ConfigError {
        let loc = locate(src, offset as usize);
        ConfigError {
            file: file.to_owned(),
            line: loc.line,
            col: loc.col,
            kind,
            source_line: loc.line_text.to_owned(),
        }
    }

    /// An error about the whole file (no position).
    pub(crate) fn whole_file(file: &str, kind: ErrorKind) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: 0,
            col: 0,
            kind,
            source_line: String::new(),
        }
    }

    /// The message alone, without position or snippet.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.kind);
        }
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.kind)?;
        write!(f, "\n{}\n", self.source_line)?;
        // Keep tabs so the caret lines up under tab-indented source.
        for c in self
            .source_line
            .chars()
            .take(self.col.saturating_sub(1) as usize)
        {
            f.write_str(if c == '\t' { "\t" } else { " " })?;
        }
        f.write_str("^")
    }
}

impl std::error::Error for ConfigError {}

/// Line, column and line text of a byte offset.
pub(crate) struct Location<'a> {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// The whole line, without `\n` / `\r\n`.
    pub line_text: &'a str,
}

/// Find line and column of `offset` (clamped to the source, rounded down to a char boundary).
pub(crate) fn locate(src: &str, offset: usize) -> Location<'_> {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = src.as_bytes().get(..offset).unwrap_or_default();
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    let line_end = memchr::memchr(b'\n', src.as_bytes().get(offset..).unwrap_or_default())
        .map_or(src.len(), |p| offset + p);
    let line_text = &src[line_start..line_end];
    let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
    // A lone '\r' ending the file is cut from `line_text` like the one of a CRLF: an error at
    // the end of the file points just past the line as shown, not one column further.
    let col = src[line_start..offset]
        .chars()
        .count()
        .min(line_text.chars().count())
        + 1;
    Location {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        line_text,
    }
}
