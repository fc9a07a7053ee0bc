//! Expressions (Pratt parsing) and function-call arguments.
//!
//! Binding powers, loosest first: `||`, `&&`, comparisons (`== != =~ !~ < > <= >=`),
//! `+ -`, and the prefix `!` tightest, so `!$x == 1` is `(!$x) == 1` as in C.
use super::ast::{Arg, BinOp, Call, Expr, PvRef, StrLit};
use super::error::{ConfigError, Span};
use super::lexer::{Tok, Token};
use super::parser::Parser;

/// Binding power of the prefix `!`.
const NOT_BP: u8 = 9;

/// The operator a token stands for, with its left and right binding powers.
fn binop(tok: Tok<'_>) -> Option<(BinOp, u8, u8)> {
    Some(match tok {
        Tok::OrOr => (BinOp::Or, 1, 2),
        Tok::AndAnd => (BinOp::And, 3, 4),
        Tok::Eq => (BinOp::Eq, 5, 6),
        Tok::Ne => (BinOp::Ne, 5, 6),
        Tok::Match => (BinOp::Match, 5, 6),
        Tok::NoMatch => (BinOp::NoMatch, 5, 6),
        Tok::Lt => (BinOp::Lt, 5, 6),
        Tok::Gt => (BinOp::Gt, 5, 6),
        Tok::Le => (BinOp::Le, 5, 6),
        Tok::Ge => (BinOp::Ge, 5, 6),
        Tok::Plus => (BinOp::Add, 7, 8),
        Tok::Minus => (BinOp::Sub, 7, 8),
        _ => return None,
    })
}

/// The old OpenSIPS operand keywords (`uri == myself`) and the pseudo-variable each means.
fn legacy_pv(word: &str) -> Option<&'static str> {
    Some(match word {
        "uri" => "ru",
        "method" => "rm",
        "src_ip" => "si",
        "src_port" => "sp",
        "dst_ip" => "Ri",
        "dst_port" => "Rp",
        "from_uri" => "fu",
        "to_uri" => "tu",
        "status" => "rs",
        "proto" => "proto",
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    /// A full expression.
    pub(super) fn expr(&mut self) -> Result<Expr, ConfigError> {
        self.expr_bp(0)
    }

    fn expr_bp(&mut self, min_bp: u8) -> Result<Expr, ConfigError> {
        let mut lhs = self.operand()?;
        loop {
            let t = self.peek()?;
            let Some((op, l_bp, r_bp)) = binop(t.tok) else {
                break;
            };
            if l_bp < min_bp {
                break;
            }
            self.bump()?;
            let rhs = self.expr_bp(r_bp)?;
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                span: t.span,
            };
        }
        Ok(lhs)
    }

    fn operand(&mut self) -> Result<Expr, ConfigError> {
        self.nested(Self::operand_inner)
    }

    fn operand_inner(&mut self) -> Result<Expr, ConfigError> {
        let t = self.bump()?;
        Ok(match t.tok {
            Tok::Not => Expr::Not(Box::new(self.expr_bp(NOT_BP)?), t.span),
            Tok::LParen => {
                let e = self.expr_bp(0)?;
                self.expect(Tok::RParen, "')' to close '('")?;
                e
            }
            Tok::Minus => {
                let (n, span) = self.negative(t.span, "a number after '-'")?;
                Expr::Int(n, span)
            }
            Tok::Str(raw) => Expr::Str(StrLit {
                raw: raw.to_owned(),
                span: t.span,
            }),
            Tok::Int(n) => Expr::Int(n, t.span),
            Tok::Pv(_) => Expr::Pv(self.pv_ref(t)),
            Tok::Ident("myself") => Expr::Myself(t.span),
            Tok::Ident("NULL" | "null") => Expr::Null(t.span),
            Tok::Ident(name) => match legacy_pv(name) {
                Some(pv) if self.peek()?.tok != Tok::LParen => Expr::Pv(PvRef {
                    name: pv.to_owned(),
                    arg: None,
                    span: t.span,
                    arg_span: None,
                }),
                _ => Expr::Call(self.call(name, t.span)?),
            },
            _ => {
                return Err(self.unexpected(
                    t,
                    "an operand (string, number, pseudo-variable, function call or 'myself')",
                ))
            }
        })
    }

    /// The integer after a consumed `-`, negated, with the span from the `-`.
    fn negative(
        &mut self,
        minus: Span,
        what: impl std::fmt::Display,
    ) -> Result<(i64, Span), ConfigError> {
        let n = self.bump()?;
        match n.tok {
            Tok::Int(v) => Ok((-v, minus.to(n.span))),
            _ => Err(self.unexpected(n, what)),
        }
    }

    /// The [`PvRef`] of a pseudo-variable token.
    pub(super) fn pv_ref(&self, t: Token<'_>) -> PvRef {
        match t.tok {
            Tok::Pv(pv) => PvRef {
                name: pv.name.to_owned(),
                arg: pv.arg.map(|(a, _)| a.to_owned()),
                span: t.span,
                arg_span: pv.arg.map(|(_, s)| s),
            },
            // Only called on pseudo-variable tokens; anything else yields an empty name,
            // which compilation rejects as unknown.
            _ => PvRef {
                name: String::new(),
                arg: None,
                span: t.span,
                arg_span: None,
            },
        }
    }

    /// `name(args)`, `name()` or `name` (the name is consumed).
    pub(super) fn call(&mut self, name: &str, span: Span) -> Result<Call, ConfigError> {
        let mut args = Vec::new();
        if self.eat(Tok::LParen)? && !self.eat(Tok::RParen)? {
            loop {
                args.push(self.arg(name)?);
                let t = self.bump()?;
                match t.tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => {
                        return Err(self.unexpected(
                            t,
                            format_args!("',' or ')' in the arguments of '{name}'"),
                        ))
                    }
                }
            }
        }
        Ok(Call {
            name: name.to_owned(),
            args,
            span,
        })
    }

    fn arg(&mut self, func: &str) -> Result<Arg, ConfigError> {
        let t = self.bump()?;
        Ok(match t.tok {
            Tok::Str(raw) => Arg::Str(StrLit {
                raw: raw.to_owned(),
                span: t.span,
            }),
            Tok::Int(n) => Arg::Int(n, t.span),
            Tok::Minus => {
                let (n, span) = self.negative(
                    t.span,
                    format_args!("a number after '-' in the arguments of '{func}'"),
                )?;
                Arg::Int(n, span)
            }
            Tok::Pv(_) => Arg::Pv(self.pv_ref(t)),
            Tok::Ident(w) => Arg::Word(w.to_owned(), t.span),
            _ => {
                return Err(self.unexpected(
                    t,
                    format_args!(
                        "a string, number, pseudo-variable or name as argument of '{func}'"
                    ),
                ))
            }
        })
    }
}
