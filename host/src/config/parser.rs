//! Recursive-descent parser for top-level items and route statements.
//! Expressions and call arguments are in `expr.rs`.
use super::ast::*;
use super::error::{locate, ConfigError, ErrorKind, Span};
use super::lexer::{unescape, Lexer, Tok, Token};
use std::collections::HashMap;
use std::fmt;

/// Parser state: the lexer plus one token of lookahead.
pub(crate) struct Parser<'a> {
    pub(super) src: &'a str,
    file: &'a str,
    lx: Lexer<'a>,
    peeked: Option<Token<'a>>,
    depth: u32,
}

/// Nesting limit of blocks, statements and sub-expressions (keeps recursion bounded).
const MAX_NESTING: u32 = 200;

/// Parsed items and routes.
pub(crate) type Parsed = (Vec<Item>, Vec<RouteDef>);

impl<'a> Parser<'a> {
    /// A parser over `src`; errors name `file`.
    pub(crate) fn new(src: &'a str, file: &'a str) -> Self {
        Parser {
            src,
            file,
            lx: Lexer::new(src),
            peeked: None,
            depth: 0,
        }
    }

    /// An error at `span`.
    pub(super) fn err(&self, span: Span, kind: ErrorKind) -> ConfigError {
        ConfigError::at(self.file, self.src, span.start, kind)
    }

    /// The next token, without consuming it.
    pub(super) fn peek(&mut self) -> Result<Token<'a>, ConfigError> {
        if let Some(t) = self.peeked {
            return Ok(t);
        }
        let t = self.lx.next_token().map_err(|(k, sp)| self.err(sp, k))?;
        self.peeked = Some(t);
        Ok(t)
    }

    /// Consume and return the next token.
    pub(super) fn bump(&mut self) -> Result<Token<'a>, ConfigError> {
        let t = self.peek()?;
        self.peeked = None;
        Ok(t)
    }

    /// Consume the next token if it is `tok`.
    pub(super) fn eat(&mut self, tok: Tok<'_>) -> Result<bool, ConfigError> {
        if self.peek()?.tok == tok {
            self.peeked = None;
            return Ok(true);
        }
        Ok(false)
    }

    /// Consume `tok` or fail with "expected {what}, found ...".
    pub(super) fn expect(
        &mut self,
        tok: Tok<'_>,
        what: impl fmt::Display,
    ) -> Result<Token<'a>, ConfigError> {
        let t = self.peek()?;
        if t.tok == tok {
            self.peeked = None;
            return Ok(t);
        }
        Err(self.unexpected(t, what))
    }

    /// "expected {what}, found {t}" at `t`.
    pub(super) fn unexpected(&self, t: Token<'_>, what: impl fmt::Display) -> ConfigError {
        self.err(
            t.span,
            ErrorKind::Expected {
                expected: what.to_string(),
                found: t.tok.to_string(),
            },
        )
    }

    /// Parse the whole file.
    pub(crate) fn parse_file(mut self) -> Result<Parsed, ConfigError> {
        let mut items = Vec::new();
        let mut routes: Vec<RouteDef> = Vec::new();
        let mut seen: HashMap<(RouteKind, Option<String>), Span> = HashMap::new();
        loop {
            let t = self.bump()?;
            let word = match t.tok {
                Tok::Eof => break,
                Tok::Semi => continue,
                Tok::Ident(w) => w,
                _ => {
                    return Err(self.unexpected(
                        t,
                        "a global parameter, 'loadmodule', 'modparam' or a route block",
                    ))
                }
            };
            match word {
                "socket" | "listen" => items.push(self.socket(word)?),
                "loadmodule" => items.push(self.loadmodule()?),
                "modparam" => items.push(self.modparam(t.span)?),
                _ => match RouteKind::from_keyword(word) {
                    Some(kind) => {
                        let def = self.route_def(kind, t.span)?;
                        let key = (def.kind, def.name.clone());
                        if let Some(first) = seen.get(&key) {
                            let loc = locate(self.src, first.start as usize);
                            let route = match &def.name {
                                Some(n) => format!("{}[{n}]", kind.keyword()),
                                None => kind.keyword().to_owned(),
                            };
                            return Err(self.err(
                                def.span,
                                ErrorKind::DuplicateRoute {
                                    route,
                                    line: loc.line,
                                    col: loc.col,
                                },
                            ));
                        }
                        seen.insert(key, def.span);
                        routes.push(def);
                    }
                    None if matches!(
                        word,
                        "timer_route" | "event_route" | "include_file" | "import_file"
                    ) =>
                    {
                        return Err(self.err(t.span, ErrorKind::Unsupported(word.to_owned())))
                    }
                    None => items.push(self.global(word, t.span)?),
                },
            }
        }
        Ok((items, routes))
    }

    /// `socket = <rest of line>` (the keyword is consumed).
    fn socket(&mut self, word: &str) -> Result<Item, ConfigError> {
        let eq = self.expect(Tok::Assign, format_args!("'=' after '{word}'"))?;
        self.lx.set_pos(eq.span.end as usize);
        let (text, span) = self.lx.raw_line();
        if text.is_empty() {
            return Err(self.err(span, ErrorKind::MissingValue(word.to_owned())));
        }
        Ok(Item::Socket {
            text: text.to_owned(),
            span,
        })
    }

    /// `name = value` (the name is consumed).
    fn global(&mut self, name: &str, span: Span) -> Result<Item, ConfigError> {
        let eq = self.expect(Tok::Assign, format_args!("'=' after '{name}'"))?;
        self.lx.set_pos(eq.span.end as usize);
        let (value, value_span) = if self.lx.at_quote() {
            let t = self.bump()?;
            match t.tok {
                Tok::Str(raw) => (GlobalValue::Str(unescape(raw).into_owned()), t.span),
                _ => return Err(self.unexpected(t, format_args!("a value after '{name} ='"))),
            }
        } else {
            let (word, wspan) = self.lx.raw_word();
            if word.is_empty() {
                return Err(self.err(wspan, ErrorKind::MissingValue(name.to_owned())));
            }
            let value = match word {
                "yes" | "on" | "true" => GlobalValue::Int(1),
                "no" | "off" | "false" => GlobalValue::Int(0),
                _ => match word.parse::<i64>() {
                    Ok(n) => GlobalValue::Int(n),
                    Err(_) => GlobalValue::Word(word.to_owned()),
                },
            };
            (value, wspan)
        };
        self.eat(Tok::Semi)?;
        Ok(Item::Global {
            name: name.to_owned(),
            value,
            span,
            value_span,
        })
    }

    /// A string literal, decoded, with its span.
    fn string(&mut self, what: &'static str) -> Result<(String, Span), ConfigError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Str(raw) => Ok((unescape(raw).into_owned(), t.span)),
            _ => Err(self.unexpected(t, what)),
        }
    }

    /// `loadmodule "file"` (the keyword is consumed).
    fn loadmodule(&mut self) -> Result<Item, ConfigError> {
        let (path, span) = self.string("a quoted module file name after 'loadmodule'")?;
        self.eat(Tok::Semi)?;
        Ok(Item::LoadModule { path, span })
    }

    /// `modparam("module", "param", value)` (the keyword is consumed).
    fn modparam(&mut self, span: Span) -> Result<Item, ConfigError> {
        self.expect(Tok::LParen, "'(' after 'modparam'")?;
        let (module, _) = self.string("a quoted module name in 'modparam'")?;
        self.expect(Tok::Comma, "',' after the module name in 'modparam'")?;
        let (param, param_span) = self.string("a quoted parameter name in 'modparam'")?;
        self.expect(Tok::Comma, "',' after the parameter name in 'modparam'")?;
        let t = self.bump()?;
        let (value, value_span) = match t.tok {
            Tok::Str(raw) => (ModParamValue::Str(unescape(raw).into_owned()), t.span),
            Tok::Int(n) => (ModParamValue::Int(n), t.span),
            Tok::Minus => {
                let n = self.bump()?;
                match n.tok {
                    Tok::Int(v) => (ModParamValue::Int(-v), t.span.to(n.span)),
                    _ => return Err(self.unexpected(n, "a number after '-' in 'modparam'")),
                }
            }
            _ => return Err(self.unexpected(t, "a string or number as 'modparam' value")),
        };
        self.expect(Tok::RParen, "')' to close 'modparam'")?;
        self.eat(Tok::Semi)?;
        Ok(Item::ModParam {
            module,
            param,
            value,
            span,
            param_span,
            value_span,
        })
    }

    /// A route name inside `[...]` or `(...)`: identifier, string or number.
    pub(super) fn route_name(
        &mut self,
        what: impl fmt::Display,
    ) -> Result<(String, Span), ConfigError> {
        let t = self.bump()?;
        let name = match t.tok {
            Tok::Ident(s) => s.to_owned(),
            Tok::Str(raw) => unescape(raw).into_owned(),
            Tok::Int(n) => n.to_string(),
            _ => return Err(self.unexpected(t, what)),
        };
        Ok((name, t.span))
    }

    /// `kind [name] { body }` (the keyword is consumed).
    fn route_def(&mut self, kind: RouteKind, kw: Span) -> Result<RouteDef, ConfigError> {
        let kwd = kind.keyword();
        let mut span = kw;
        let mut name = None;
        if self.eat(Tok::LBracket)? {
            let (n, _) = self.route_name(format_args!("a route name after '{kwd}['"))?;
            let close = self.expect(Tok::RBracket, format_args!("']' after the {kwd} name"))?;
            span = span.to(close.span);
            name = Some(n);
        }
        self.expect(Tok::LBrace, format_args!("'{{' to open the {kwd} block"))?;
        let body = self.block_body()?;
        Ok(RouteDef {
            kind,
            name,
            span,
            body,
        })
    }

    /// Statements up to and including the closing `}` (the `{` is consumed).
    fn block_body(&mut self) -> Result<Vec<Stmt>, ConfigError> {
        let mut body = Vec::new();
        loop {
            let t = self.peek()?;
            match t.tok {
                Tok::RBrace => {
                    self.bump()?;
                    return Ok(body);
                }
                Tok::Eof => return Err(self.unexpected(t, "'}' to close the block")),
                Tok::Semi => {
                    self.bump()?;
                }
                _ => body.push(self.statement()?),
            }
        }
    }

    /// Run `f` one nesting level deeper, failing past [`MAX_NESTING`].
    pub(super) fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        if self.depth >= MAX_NESTING {
            let t = self.peek()?;
            return Err(self.err(t.span, ErrorKind::Limit("nested blocks or expressions")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// One statement.
    fn statement(&mut self) -> Result<Stmt, ConfigError> {
        self.nested(Self::statement_inner)
    }

    fn statement_inner(&mut self) -> Result<Stmt, ConfigError> {
        let t = self.bump()?;
        match t.tok {
            Tok::LBrace => Ok(Stmt::Block(self.block_body()?, t.span)),
            Tok::Pv(_) => self.assignment(t),
            Tok::Ident("if") => self.if_chain(t.span),
            Tok::Ident("else") => Err(self.err(t.span, ErrorKind::ElseWithoutIf)),
            Tok::Ident("exit") => {
                self.expect(Tok::Semi, "';' after 'exit'")?;
                Ok(Stmt::Exit(t.span))
            }
            Tok::Ident("drop") => {
                self.expect(Tok::Semi, "';' after 'drop'")?;
                Ok(Stmt::Drop(t.span))
            }
            Tok::Ident("return") => self.return_stmt(t.span),
            Tok::Ident("route") => self.route_call(),
            Tok::Ident(
                w @ ("switch" | "while" | "for" | "foreach" | "break" | "case" | "default"),
            ) => Err(self.err(t.span, ErrorKind::Unsupported(w.to_owned()))),
            Tok::Ident(name) => {
                let call = self.call(name, t.span)?;
                self.expect(Tok::Semi, format_args!("';' after the call to '{name}'"))?;
                Ok(Stmt::Call(call))
            }
            _ => Err(self.unexpected(t, "a statement")),
        }
    }

    /// `$pv = expr;` (the pseudo-variable token is consumed).
    fn assignment(&mut self, t: Token<'a>) -> Result<Stmt, ConfigError> {
        let pv = self.pv_ref(t);
        let eq = self.expect(Tok::Assign, format_args!("'=' after {}", t.tok))?;
        let value = self.expr()?;
        self.expect(Tok::Semi, "';' after the assignment")?;
        Ok(Stmt::Assign {
            pv,
            value,
            span: eq.span,
        })
    }

    /// `return;`, `return(e);`, `return e;` (the keyword is consumed).
    fn return_stmt(&mut self, span: Span) -> Result<Stmt, ConfigError> {
        if self.eat(Tok::Semi)? {
            return Ok(Stmt::Return(None, span));
        }
        let e = self.expr()?;
        self.expect(Tok::Semi, "';' after 'return'")?;
        Ok(Stmt::Return(Some(e), span))
    }

    /// `route(name);` (the keyword is consumed).
    fn route_call(&mut self) -> Result<Stmt, ConfigError> {
        self.expect(Tok::LParen, "'(' after 'route'")?;
        let (name, span) = self.route_name("a route name in 'route(...)'")?;
        self.expect(Tok::RParen, "')' after the route name")?;
        self.expect(Tok::Semi, format_args!("';' after 'route({name})'"))?;
        Ok(Stmt::Route { name, span })
    }

    /// `if (c) s [else if (c) s]... [else s]` (the first `if` is consumed). The chain is
    /// read in a loop, so long `else if` chains do not deepen the recursion.
    fn if_chain(&mut self, first: Span) -> Result<Stmt, ConfigError> {
        let mut arms = Vec::new();
        let mut span = first;
        let els = loop {
            self.expect(Tok::LParen, "'(' after 'if'")?;
            let cond = self.expr()?;
            self.expect(Tok::RParen, "')' to close the 'if' condition")?;
            arms.push((cond, self.statement()?, span));
            if !self.eat(Tok::Ident("else"))? {
                break None;
            }
            let t = self.peek()?;
            if t.tok != Tok::Ident("if") {
                break Some(Box::new(self.statement()?));
            }
            self.bump()?;
            span = t.span;
        };
        let mut tail = els;
        while let Some((cond, then, span)) = arms.pop() {
            tail = Some(Box::new(Stmt::If {
                cond,
                then: Box::new(then),
                els: tail,
                span,
            }));
        }
        // At least one arm was read, so `tail` is an `if`.
        tail.map(|b| *b)
            .ok_or_else(|| self.err(first, ErrorKind::ElseWithoutIf))
    }
}
