//! Compilation: the syntax tree of the routes becomes the resolved [`super::tree`], once, at
//! startup. Every error is a [`ConfigError`] at the offending span.
use super::func::{ArgKind, FuncId, FunctionTable};
use super::pv::{resolve, ErrAt, Pv, VarNames};
use super::tree::{CArg, CExpr, CallNode, Const, Format, Node, Segment};
use super::value::{add, compare, sub, CmpOp, LogLevel, Value};
use crate::config::{
    Arg, BinOp, Call, Config, ConfigError, ErrorKind, Expr, PvRef, RouteKind, Span, Stmt,
};
use std::collections::HashMap;

/// Compilation state.
pub(crate) struct Compiler<'c> {
    cfg: &'c Config,
    funcs: &'c FunctionTable,
    /// Request routes by name.
    routes: HashMap<&'c str, u16>,
    /// `$var` names.
    pub(crate) vars: VarNames,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl<'c> Compiler<'c> {
    /// A compiler for `cfg`; fails if there are more routes than a `u16` numbers.
    pub(crate) fn new(cfg: &'c Config, funcs: &'c FunctionTable) -> Result<Self, ConfigError> {
        let mut routes = HashMap::new();
        for (i, r) in cfg.routes.iter().enumerate() {
            let idx = u16::try_from(i)
                .map_err(|_| cfg.error_kind_at(r.span, ErrorKind::Limit("routes")))?;
            if let (RouteKind::Request, Some(name)) = (r.kind, &r.name) {
                routes.insert(name.as_str(), idx);
            }
        }
        let src = cfg.source().as_bytes();
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', src).map(|p| p + 1))
            .collect();
        Ok(Compiler {
            cfg,
            funcs,
            routes,
            vars: VarNames::default(),
            line_starts,
        })
    }

    /// An error at `span`.
    pub(crate) fn err(&self, span: Span, kind: ErrorKind) -> ConfigError {
        self.cfg.error_kind_at(span, kind)
    }

    fn line(&self, span: Span) -> u32 {
        let n = self
            .line_starts
            .partition_point(|&s| s <= span.start as usize);
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Compile a route body.
    pub(crate) fn block(&mut self, stmts: &[Stmt]) -> Result<Box<[Node]>, ConfigError> {
        let mut out = Vec::with_capacity(stmts.len());
        for s in stmts {
            self.stmt(s, &mut out)?;
        }
        Ok(out.into_boxed_slice())
    }

    fn branch(&mut self, s: &Stmt) -> Result<Box<[Node]>, ConfigError> {
        let mut out = Vec::new();
        self.stmt(s, &mut out)?;
        Ok(out.into_boxed_slice())
    }

    fn stmt(&mut self, s: &Stmt, out: &mut Vec<Node>) -> Result<(), ConfigError> {
        match s {
            Stmt::If { .. } => self.if_chain(s, out)?,
            Stmt::Block(stmts, _) => {
                for s in stmts {
                    self.stmt(s, out)?;
                }
            }
            Stmt::Exit(_) => out.push(Node::Exit),
            Stmt::Drop(_) => out.push(Node::Drop),
            Stmt::Return(None, _) => out.push(Node::Return(CExpr::Const(Const::Int(1)))),
            Stmt::Return(Some(e), _) => out.push(Node::Return(self.expr(e)?)),
            Stmt::Route { name, span } => {
                let idx = *self
                    .routes
                    .get(name.as_str())
                    .ok_or_else(|| self.err(*span, ErrorKind::UnknownRoute(name.clone())))?;
                out.push(Node::Route {
                    idx,
                    line: self.line(*span),
                });
            }
            Stmt::Call(c) => out.push(Node::Call(self.call(c)?)),
            Stmt::Assign { pv, value, .. } => {
                let target = self.pv_ref(pv)?;
                if !target.is_writable() {
                    return Err(self.err(pv.span, ErrorKind::ReadOnlyPv(pv.name.clone())));
                }
                let value = self.expr(value)?;
                let what = self.cfg.text(pv.span).into();
                out.push(Node::Assign {
                    pv: target,
                    value,
                    what,
                    line: self.line(pv.span),
                });
            }
        }
        Ok(())
    }

    /// An `if` / `else if` chain, walked in a loop (long chains do not deepen the recursion).
    /// Every branch is checked; a constant condition keeps only what it selects.
    fn if_chain(&mut self, mut s: &Stmt, out: &mut Vec<Node>) -> Result<(), ConfigError> {
        let mut arms = Vec::new();
        let last = loop {
            let Stmt::If {
                cond, then, els, ..
            } = s
            else {
                break self.branch(s)?;
            };
            arms.push((self.expr(cond)?, self.branch(then)?));
            match els {
                Some(e) => s = e,
                None => break Box::default(),
            }
        };
        let mut tail = last.into_vec();
        while let Some((cond, then)) = arms.pop() {
            tail = match cond {
                CExpr::Const(c) if c.value().truthy() => then.into_vec(),
                CExpr::Const(_) => tail,
                cond => vec![Node::If {
                    cond,
                    then,
                    els: tail.into_boxed_slice(),
                }],
            };
        }
        out.extend(tail);
        Ok(())
    }

    fn pv_ref(&mut self, r: &PvRef) -> Result<Pv, ConfigError> {
        self.pv(&r.name, r.arg.as_deref(), r.span, r.arg_span)
    }

    /// Resolve a pseudo-variable, reporting at `span` or at its argument.
    pub(crate) fn pv(
        &mut self,
        name: &str,
        arg: Option<&str>,
        span: Span,
        arg_span: Option<Span>,
    ) -> Result<Pv, ConfigError> {
        resolve(name, arg, &mut self.vars).map_err(|(kind, at)| {
            let sp = match at {
                ErrAt::Arg => arg_span.unwrap_or(span),
                ErrAt::Whole => span,
            };
            self.err(sp, kind)
        })
    }

    fn expr(&mut self, e: &Expr) -> Result<CExpr, ConfigError> {
        Ok(match e {
            Expr::Str(s) => CExpr::Const(Const::Str(s.value().into())),
            Expr::Int(n, _) => CExpr::Const(Const::Int(*n)),
            Expr::Null(_) => CExpr::Const(Const::Null),
            Expr::Pv(p) => CExpr::Pv(self.pv_ref(p)?),
            Expr::Call(c) => CExpr::Call(self.call(c)?),
            Expr::Myself(span) => return Err(self.myself_misuse(*span)),
            Expr::Not(x, _) => match self.expr(x)? {
                CExpr::Const(c) => bool_const(!c.value().truthy()),
                x => CExpr::Not(Box::new(x)),
            },
            Expr::Binary { op, lhs, rhs, span } => self.binary(*op, lhs, rhs, *span)?,
        })
    }

    fn myself_misuse(&self, span: Span) -> ConfigError {
        self.err(
            span,
            ErrorKind::BadOperand("'myself' can only be compared with '==' or '!='".into()),
        )
    }

    fn binary(
        &mut self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Result<CExpr, ConfigError> {
        let myself = match (lhs, rhs) {
            (Expr::Myself(_), Expr::Myself(s)) => return Err(self.myself_misuse(*s)),
            (Expr::Myself(_), other) | (other, Expr::Myself(_)) => Some(other),
            _ => None,
        };
        if let Some(other) = myself {
            if !matches!(op, BinOp::Eq | BinOp::Ne) {
                return Err(self.myself_misuse(span));
            }
            let v = Box::new(self.expr(other)?);
            return Ok(CExpr::Myself {
                neg: op == BinOp::Ne,
                v,
            });
        }
        let l = self.expr(lhs)?;
        if matches!(op, BinOp::Match | BinOp::NoMatch) {
            return self.regex_match(op == BinOp::NoMatch, l, rhs);
        }
        let r = self.expr(rhs)?;
        let cmp = match op {
            BinOp::Eq => CmpOp::Eq,
            BinOp::Ne => CmpOp::Ne,
            BinOp::Lt => CmpOp::Lt,
            BinOp::Gt => CmpOp::Gt,
            BinOp::Le => CmpOp::Le,
            BinOp::Ge => CmpOp::Ge,
            BinOp::And | BinOp::Or => return Ok(logic(op == BinOp::And, l, r)),
            BinOp::Add | BinOp::Sub => {
                return Ok(match (l, r) {
                    (CExpr::Const(a), CExpr::Const(b)) => {
                        CExpr::Const(Const::from_value(if op == BinOp::Add {
                            add(a.value(), b.value())
                        } else {
                            sub(&a.value(), &b.value())
                        }))
                    }
                    (l, r) if op == BinOp::Add => CExpr::Add(Box::new(l), Box::new(r)),
                    (l, r) => CExpr::Sub(Box::new(l), Box::new(r)),
                })
            }
            // Handled above.
            BinOp::Match | BinOp::NoMatch => {
                return Err(self.err(span, ErrorKind::BadOperand("regex".into())))
            }
        };
        Ok(match (l, r) {
            (CExpr::Const(a), CExpr::Const(b)) => bool_const(compare(cmp, &a.value(), &b.value())),
            (l, CExpr::Const(c)) => CExpr::CmpConst {
                op: cmp,
                l: Box::new(l),
                c,
            },
            (CExpr::Const(c), r) => CExpr::CmpConst {
                op: cmp.mirrored(),
                l: Box::new(r),
                c,
            },
            (l, r) => CExpr::Cmp {
                op: cmp,
                l: Box::new(l),
                r: Box::new(r),
            },
        })
    }

    /// `l =~ rhs`: a constant pattern is compiled now (a bad one is an error at its span).
    fn regex_match(&mut self, neg: bool, l: CExpr, rhs: &Expr) -> Result<CExpr, ConfigError> {
        let r = self.expr(rhs)?;
        let pattern = match &r {
            CExpr::Const(Const::Str(s)) => s.to_string(),
            CExpr::Const(Const::Int(n)) => n.to_string(),
            _ => {
                return Ok(CExpr::MatchDyn {
                    neg,
                    l: Box::new(l),
                    r: Box::new(r),
                })
            }
        };
        let re = build_regex(&pattern).map_err(|m| self.err(rhs.span(), ErrorKind::BadRegex(m)))?;
        Ok(match l {
            CExpr::Const(c) => {
                let hit = match c.value() {
                    Value::Null => false,
                    Value::Int(n) => re.is_match(&n.to_string()),
                    Value::Str(s) => re.is_match(&s),
                };
                bool_const(hit != neg)
            }
            l => CExpr::Match {
                neg,
                l: Box::new(l),
                re,
            },
        })
    }

    /// Resolve a call and check its arguments.
    fn call(&mut self, c: &Call) -> Result<CallNode, ConfigError> {
        let funcs = self.funcs;
        let id = funcs
            .lookup(&c.name)
            .ok_or_else(|| self.err(c.span, ErrorKind::UnknownFunction(c.name.clone())))?;
        let spec = funcs
            .spec(id)
            .ok_or_else(|| self.err(c.span, ErrorKind::UnknownFunction(c.name.clone())))?;
        let (min, max, got) = (spec.min_args, spec.args.len(), c.args.len());
        if got < min || got > max {
            let expected = match max - min {
                0 => min.to_string(),
                1 => format!("{min} or {max}"),
                _ => format!("{min} to {max}"),
            };
            return Err(self.err(
                c.span,
                ErrorKind::ArgCount {
                    func: c.name.clone(),
                    expected,
                    got,
                },
            ));
        }
        match (id, c.args.as_slice()) {
            (FuncId::XLOG, [fmt]) => Ok(CallNode::Xlog {
                level: LogLevel::Err,
                fmt: self.format_arg(c, 1, fmt)?,
            }),
            (FuncId::XLOG, [level, fmt]) => {
                let name = match level {
                    Arg::Word(w, _) => w.clone(),
                    Arg::Str(s) => s.value().into_owned(),
                    other => self.cfg.text(other.span()).to_owned(),
                };
                let level = LogLevel::from_name(&name)
                    .ok_or_else(|| self.err(level.span(), ErrorKind::BadLogLevel(name)))?;
                Ok(CallNode::Xlog {
                    level,
                    fmt: self.format_arg(c, 2, fmt)?,
                })
            }
            (FuncId::T_ON_FAILURE | FuncId::T_ON_REPLY | FuncId::T_ON_BRANCH, [name]) => {
                // The route must exist, of the kind the function arms: checked here, so a
                // typo stops the start at its file:line:col, not the first call.
                let kind = match id {
                    FuncId::T_ON_FAILURE => RouteKind::Failure,
                    FuncId::T_ON_REPLY => RouteKind::OnReply,
                    _ => RouteKind::Branch,
                };
                let text = match name {
                    Arg::Str(s) => s.value().into_owned(),
                    Arg::Word(w, _) => w.clone(),
                    other => self.cfg.text(other.span()).to_owned(),
                };
                let idx = self
                    .cfg
                    .routes
                    .iter()
                    .position(|r| r.kind == kind && r.name.as_deref() == Some(text.as_str()))
                    .ok_or_else(|| {
                        self.err(
                            name.span(),
                            ErrorKind::UnknownRoute(format!("{}[{text}]", kind.keyword())),
                        )
                    })?;
                Ok(CallNode::Host {
                    id,
                    args: Box::new([CArg::Const(Const::Int(idx as i64))]),
                })
            }
            (FuncId::T_CHECK_STATUS, [re]) => {
                let pattern = match re {
                    Arg::Str(s) => s.value().into_owned(),
                    Arg::Word(w, _) => w.clone(),
                    other => self.cfg.text(other.span()).to_owned(),
                };
                build_regex(&pattern).map_err(|m| self.err(re.span(), ErrorKind::BadRegex(m)))?;
                Ok(CallNode::Host {
                    id,
                    args: Box::new([CArg::Const(Const::Str(pattern.into()))]),
                })
            }
            (FuncId::IS_METHOD, [list]) => {
                let text = match list {
                    Arg::Str(s) => s.value().into_owned(),
                    Arg::Word(w, _) => w.clone(),
                    _ => String::new(),
                };
                let methods: Box<[Box<str>]> = text.split('|').map(|m| m.trim().into()).collect();
                if methods.iter().any(|m| m.is_empty()) {
                    let expected = "a method list like \"INVITE|REGISTER\"";
                    return Err(self.err(
                        list.span(),
                        ErrorKind::ArgKind {
                            func: c.name.clone(),
                            index: 1,
                            expected,
                        },
                    ));
                }
                Ok(CallNode::IsMethod(methods))
            }
            _ => {
                let mut args = Vec::with_capacity(got);
                for (i, (a, kind)) in c.args.iter().zip(spec.args.iter()).enumerate() {
                    args.push(self.carg(c, i + 1, *kind, a)?);
                }
                Ok(CallNode::Host {
                    id,
                    args: args.into_boxed_slice(),
                })
            }
        }
    }

    fn format_arg(&mut self, c: &Call, index: usize, a: &Arg) -> Result<Format, ConfigError> {
        match self.carg(c, index, ArgKind::Format, a)? {
            CArg::Format(f) => Ok(f),
            CArg::Const(Const::Str(s)) => Ok(Format {
                segs: Box::new([Segment::Lit(s)]),
            }),
            _ => Err(self.arg_kind_err(c, index, ArgKind::Format, a)),
        }
    }

    fn arg_kind_err(&self, c: &Call, index: usize, kind: ArgKind, a: &Arg) -> ConfigError {
        self.err(
            a.span(),
            ErrorKind::ArgKind {
                func: c.name.clone(),
                index,
                expected: kind.expected(),
            },
        )
    }

    fn carg(
        &mut self,
        c: &Call,
        index: usize,
        kind: ArgKind,
        a: &Arg,
    ) -> Result<CArg, ConfigError> {
        Ok(match (kind, a) {
            (ArgKind::Str | ArgKind::IntOrStr, Arg::Str(s)) => {
                CArg::Const(Const::Str(s.value().into()))
            }
            (ArgKind::Str | ArgKind::IntOrStr, Arg::Word(w, _)) => {
                CArg::Const(Const::Str(w.as_str().into()))
            }
            (ArgKind::Int | ArgKind::IntOrStr, Arg::Int(n, _)) => CArg::Const(Const::Int(*n)),
            (ArgKind::Int, Arg::Str(s)) => match s.value().trim().parse::<i64>() {
                Ok(n) => CArg::Const(Const::Int(n)),
                Err(_) => return Err(self.arg_kind_err(c, index, kind, a)),
            },
            (ArgKind::Int, Arg::Pv(p)) => CArg::PvInt(self.pv_ref(p)?),
            (ArgKind::Pv | ArgKind::IntOrStr, Arg::Pv(p)) => CArg::Pv(self.pv_ref(p)?),
            (ArgKind::OutPv, Arg::Pv(p)) => {
                let pv = self.pv_ref(p)?;
                if !pv.is_writable() {
                    return Err(self.err(p.span, ErrorKind::ReadOnlyPv(p.name.clone())));
                }
                CArg::Out(pv)
            }
            (ArgKind::Format, Arg::Str(s)) => {
                let f = self.format(s)?;
                match f.as_literal() {
                    Some(text) => CArg::Const(Const::Str(text.into())),
                    None => CArg::Format(f),
                }
            }
            (ArgKind::Format, Arg::Int(n, _)) => CArg::Const(Const::Str(n.to_string().into())),
            (ArgKind::Format, Arg::Pv(p)) => {
                let pv = self.pv_ref(p)?;
                CArg::Format(Format {
                    segs: Box::new([Segment::Pv(pv)]),
                })
            }
            _ => return Err(self.arg_kind_err(c, index, kind, a)),
        })
    }
}

fn bool_const(b: bool) -> CExpr {
    CExpr::Const(Const::Int(i64::from(b)))
}

/// `l && r` / `l || r`, folded when the left side is constant (or both are).
fn logic(and: bool, l: CExpr, r: CExpr) -> CExpr {
    match (l, r) {
        (CExpr::Const(a), CExpr::Const(b)) => {
            let (a, b) = (a.value().truthy(), b.value().truthy());
            bool_const(if and { a && b } else { a || b })
        }
        // `false && x` is false, `true || x` is true: x never runs.
        (CExpr::Const(a), _) if a.value().truthy() != and => bool_const(!and),
        (l, r) if and => CExpr::And(Box::new(l), Box::new(r)),
        (l, r) => CExpr::Or(Box::new(l), Box::new(r)),
    }
}

/// Compile a pattern the way OpenSIPS does (`REG_ICASE`); the error is one line.
pub(crate) fn build_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let line = text
                .lines()
                .find_map(|l| l.trim_start().strip_prefix("error:"))
                .map(str::trim);
            line.map_or_else(
                || text.lines().next().unwrap_or("").trim().to_owned(),
                str::to_owned,
            )
        })
}
