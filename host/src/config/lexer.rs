//! The lexer: a hand-written scanner over the source bytes. Tokens borrow from the source and
//! carry their [`Span`]. Besides ordinary tokens it offers the two raw modes the OpenSIPS
//! grammar needs: the rest of a line (`socket=` values) and one bare word (global values).
use super::error::{ErrorKind, Span};
use std::fmt;

/// A lexical error and where it is.
pub(crate) type LexResult<T> = Result<T, (ErrorKind, Span)>;

/// Token kinds. Strings keep their raw text between the quotes (escapes undecoded), so that
/// positions inside them can still be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// `[A-Za-z_][A-Za-z0-9_]*`
    Ident(&'a str),
    /// A non-negative decimal or `0x` hexadecimal integer.
    Int(i64),
    /// The raw text between `"..."` or `'...'`.
    Str(&'a str),
    /// A pseudo-variable.
    Pv(PvTok<'a>),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `;`
    Semi,
    /// `,`
    Comma,
    /// `=`
    Assign,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
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
    AndAnd,
    /// `||`
    OrOr,
    /// `!`
    Not,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// End of input.
    Eof,
}

/// A pseudo-variable token: `$name`, `$name(arg)`, `$(name)` or `$(name(arg))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PvTok<'a> {
    /// The name, e.g. `hdr`.
    pub name: &'a str,
    /// The text between the parentheses and its span, e.g. `Max-Forwards`.
    pub arg: Option<(&'a str, Span)>,
}

/// A token with its place in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// What it is.
    pub tok: Tok<'a>,
    /// Where it is.
    pub span: Span,
}

impl fmt::Display for Tok<'_> {
    /// How the token is named in "found ..." messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self {
            Tok::Ident(s) => return write!(f, "'{s}'"),
            Tok::Int(n) => return write!(f, "'{n}'"),
            Tok::Str(s) => return write!(f, "string \"{s}\""),
            Tok::Pv(pv) => {
                return match pv.arg {
                    Some((a, _)) => write!(f, "'${}({a})'", pv.name),
                    None => write!(f, "'${}'", pv.name),
                }
            }
            Tok::Eof => return f.write_str("end of file"),
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Semi => ";",
            Tok::Comma => ",",
            Tok::Assign => "=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Match => "=~",
            Tok::NoMatch => "!~",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Not => "!",
            Tok::Plus => "+",
            Tok::Minus => "-",
        };
        write!(f, "'{p}'")
    }
}

/// Byte ranges of a scanned pseudo-variable (see [`scan_pv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PvScan {
    /// The name.
    pub name: (usize, usize),
    /// The argument between parentheses.
    pub arg: Option<(usize, usize)>,
    /// Offset just past the pseudo-variable.
    pub end: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Scan a pseudo-variable whose `$` is at `start` in `s`, not looking past `limit`.
/// Shared by the lexer and the format-string splitter (which passes the string's end).
pub(crate) fn scan_pv(s: &str, start: usize, limit: usize) -> LexResult<PvScan> {
    let b = s.as_bytes().get(..limit).unwrap_or(s.as_bytes());
    let mut i = start + 1;
    let wrapped = b.get(i) == Some(&b'(');
    if wrapped {
        i += 1;
    }
    let name_start = i;
    while b.get(i).is_some_and(|&c| is_ident_char(c)) {
        i += 1;
    }
    if i == name_start || !b.get(name_start).is_some_and(|&c| is_ident_start(c)) {
        return Err((ErrorKind::BadPvName, Span::new(start, start + 1)));
    }
    let name = (name_start, i);
    let mut arg = None;
    if b.get(i) == Some(&b'(') {
        let open = i;
        let mut depth = 1usize;
        let mut j = i + 1;
        loop {
            match b.get(j) {
                Some(b'(') => depth += 1,
                Some(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Some(b'\n') | None => {
                    return Err((ErrorKind::UnterminatedPv, Span::new(open, open + 1)))
                }
                Some(_) => {}
            }
            j += 1;
        }
        arg = Some((open + 1, j));
        i = j + 1;
    }
    if wrapped {
        if b.get(i) != Some(&b')') {
            return Err((ErrorKind::UnterminatedPv, Span::new(start + 1, start + 2)));
        }
        i += 1;
    }
    Ok(PvScan { name, arg, end: i })
}

/// Decode the escapes of a string literal's raw text: `\n \r \t \\ \" \'`, and a backslash
/// before a line break joins lines. Any other backslash is kept (so regexes keep `\.`).
pub fn unescape(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains('\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e) => match escape_char(e) {
                Some(Some(d)) => out.push(d),
                Some(None) => {}
                None => {
                    out.push('\\');
                    out.push(e);
                }
            },
            None => out.push('\\'),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The meaning of `\e`: `Some(Some(c))` a character, `Some(None)` nothing (line joining),
/// `None` not an escape (the backslash stays).
pub(crate) fn escape_char(e: char) -> Option<Option<char>> {
    Some(Some(match e {
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        '\\' => '\\',
        '"' => '"',
        '\'' => '\'',
        '\n' => return Some(None),
        _ => return None,
    }))
}

/// The scanner. Pull-based: the parser asks for one token at a time, which lets it switch
/// to the raw modes right after a `=`.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub(crate) fn new(src: &'a str) -> Self {
        Lexer { src, pos: 0 }
    }

    /// Continue scanning from byte offset `pos` (a char boundary after a token).
    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.src.len());
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.src.as_bytes().get(i).copied()
    }

    fn skip_blanks(&mut self) {
        while matches!(self.byte(self.pos), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_to_eol(&mut self) {
        let rest = self.src.as_bytes().get(self.pos..).unwrap_or_default();
        self.pos = memchr::memchr(b'\n', rest).map_or(self.src.len(), |p| self.pos + p);
    }

    /// Skip whitespace and `#`, `//`, `/* */` comments.
    fn skip_trivia(&mut self) -> LexResult<()> {
        loop {
            match self.byte(self.pos) {
                Some(b' ' | b'\t' | b'\r' | b'\n' | 0x0c) => self.pos += 1,
                Some(b'#') => self.skip_to_eol(),
                Some(b'/') if self.byte(self.pos + 1) == Some(b'/') => self.skip_to_eol(),
                Some(b'/') if self.byte(self.pos + 1) == Some(b'*') => {
                    let body = self.src.as_bytes().get(self.pos + 2..).unwrap_or_default();
                    match memchr::memmem::find(body, b"*/") {
                        Some(p) => self.pos += 2 + p + 2,
                        None => {
                            return Err((
                                ErrorKind::UnterminatedComment,
                                Span::new(self.pos, self.pos + 2),
                            ))
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next token.
    pub(crate) fn next_token(&mut self) -> LexResult<Token<'a>> {
        self.skip_trivia()?;
        let start = self.pos;
        let Some(c) = self.byte(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let next = self.byte(start + 1);
        let (tok, len) = match c {
            c if is_ident_start(c) => {
                let mut i = start + 1;
                while self.byte(i).is_some_and(is_ident_char) {
                    i += 1;
                }
                (Tok::Ident(&self.src[start..i]), i - start)
            }
            b'0'..=b'9' => return self.number(start),
            b'"' | b'\'' => return self.string(start, c),
            b'$' => {
                let pv = scan_pv(self.src, start, self.src.len())?;
                self.pos = pv.end;
                let tok = Tok::Pv(PvTok {
                    name: &self.src[pv.name.0..pv.name.1],
                    arg: pv.arg.map(|(a, b)| (&self.src[a..b], Span::new(a, b))),
                });
                return Ok(Token {
                    tok,
                    span: Span::new(start, pv.end),
                });
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b';' => (Tok::Semi, 1),
            b',' => (Tok::Comma, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'=' => match next {
                Some(b'=') => (Tok::Eq, 2),
                Some(b'~') => (Tok::Match, 2),
                _ => (Tok::Assign, 1),
            },
            b'!' => match next {
                Some(b'=') => (Tok::Ne, 2),
                Some(b'~') => (Tok::NoMatch, 2),
                _ => (Tok::Not, 1),
            },
            b'<' if next == Some(b'=') => (Tok::Le, 2),
            b'<' => (Tok::Lt, 1),
            b'>' if next == Some(b'=') => (Tok::Ge, 2),
            b'>' => (Tok::Gt, 1),
            b'&' if next == Some(b'&') => (Tok::AndAnd, 2),
            b'|' if next == Some(b'|') => (Tok::OrOr, 2),
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                return Err((
                    ErrorKind::UnexpectedChar(ch),
                    Span::new(start, start + ch.len_utf8()),
                ));
            }
        };
        self.pos = start + len;
        Ok(Token {
            tok,
            span: Span::new(start, start + len),
        })
    }

    fn number(&mut self, start: usize) -> LexResult<Token<'a>> {
        let mut i = start;
        while self.byte(i).is_some_and(is_ident_char) {
            i += 1;
        }
        let text = &self.src[start..i];
        let span = Span::new(start, i);
        let value = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => i64::from_str_radix(hex, 16),
            None => text.parse::<i64>(),
        };
        self.pos = i;
        match value {
            Ok(n) => Ok(Token {
                tok: Tok::Int(n),
                span,
            }),
            Err(_) => Err((ErrorKind::BadNumber(text.to_owned()), span)),
        }
    }

    fn string(&mut self, start: usize, quote: u8) -> LexResult<Token<'a>> {
        let mut i = start + 1;
        loop {
            match self.byte(i) {
                None => return Err((ErrorKind::UnterminatedString, Span::new(start, start + 1))),
                Some(b'\\') => i += 2,
                Some(c) if c == quote => break,
                Some(_) => i += 1,
            }
        }
        // `i` is at the closing quote (ASCII), so both slice ends are char boundaries.
        self.pos = i + 1;
        Ok(Token {
            tok: Tok::Str(&self.src[start + 1..i]),
            span: Span::new(start, i + 1),
        })
    }

    /// After blanks, is the next character a quote (the value is a string token)?
    pub(crate) fn at_quote(&mut self) -> bool {
        self.skip_blanks();
        matches!(self.byte(self.pos), Some(b'"' | b'\''))
    }

    /// The rest of the line, blanks trimmed and a `#` comment (outside quotes) removed.
    /// The span covers the kept text; it is empty at the end of the line when nothing is left.
    pub(crate) fn raw_line(&mut self) -> (&'a str, Span) {
        self.skip_blanks();
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = start;
        let mut in_quote = false;
        while let Some(&c) = bytes.get(i) {
            match c {
                b'\n' => break,
                b'#' if !in_quote => break,
                b'"' => in_quote = !in_quote,
                _ => {}
            }
            i += 1;
        }
        let text = self.src[start..i].trim_end();
        self.set_pos(i);
        self.skip_to_eol();
        (text, Span::new(start, start + text.len()))
    }

    /// One bare word: the characters up to a blank, line break, `;` or `#`.
    /// The span is empty when there is no word.
    pub(crate) fn raw_word(&mut self) -> (&'a str, Span) {
        self.skip_blanks();
        let start = self.pos;
        let mut i = start;
        while self
            .byte(i)
            .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'#'))
        {
            i += 1;
        }
        self.pos = i;
        (&self.src[start..i], Span::new(start, i))
    }
}
