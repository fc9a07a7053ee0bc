//! Format strings (`xlog("$rm from $si:$sp\n")`): split once at compile time into literal
//! text and pseudo-variables, working on the raw literal so errors point inside the string.
use super::compile::Compiler;
use super::tree::{Format, Segment};
use crate::config::lexer::{escape_char, scan_pv};
use crate::config::{ConfigError, Span, StrLit};

impl Compiler<'_> {
    /// Split a string literal into segments. Escapes are decoded as in any string, plus
    /// `\$` for a literal dollar sign.
    pub(crate) fn format(&mut self, lit: &StrLit) -> Result<Format, ConfigError> {
        let raw = lit.raw.as_str();
        let base = lit.content_start() as usize;
        let mut segs = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while let Some(c) = raw.get(i..).and_then(|r| r.chars().next()) {
            match c {
                '\\' => {
                    let Some(e) = raw.get(i + 1..).and_then(|r| r.chars().next()) else {
                        text.push('\\');
                        i += 1;
                        continue;
                    };
                    match (e, escape_char(e)) {
                        ('$', _) => text.push('$'),
                        (_, Some(Some(d))) => text.push(d),
                        (_, Some(None)) => {}
                        (_, None) => {
                            text.push('\\');
                            text.push(e);
                        }
                    }
                    i += 1 + e.len_utf8();
                }
                '$' => {
                    let pv = scan_pv(raw, i, raw.len()).map_err(|(kind, sp)| {
                        let at = Span::new(base + sp.start as usize, base + sp.end as usize);
                        self.err(at, kind)
                    })?;
                    let name = raw.get(pv.name.0..pv.name.1).unwrap_or("");
                    let arg = pv.arg.and_then(|(a, b)| raw.get(a..b));
                    let arg_span = pv.arg.map(|(a, b)| Span::new(base + a, base + b));
                    let resolved =
                        self.pv(name, arg, Span::new(base + i, base + pv.end), arg_span)?;
                    if !text.is_empty() {
                        segs.push(Segment::Lit(std::mem::take(&mut text).into()));
                    }
                    segs.push(Segment::Pv(resolved));
                    i = pv.end;
                }
                c => {
                    text.push(c);
                    i += c.len_utf8();
                }
            }
        }
        if !text.is_empty() {
            segs.push(Segment::Lit(text.into()));
        }
        Ok(Format {
            segs: segs.into_boxed_slice(),
        })
    }
}
