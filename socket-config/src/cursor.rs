//! A bounded byte cursor over the value, which knows how to turn a byte offset into the
//! character column reported in errors.

use crate::error::{SocketError, SocketErrorKind};

/// Scans `src[pos..end]`. Every offset it hands out is absolute in `src`, so errors raised while
/// parsing a bond member (a bounded window of the value) still carry the column in the value.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over the whole of `src`.
    pub(crate) fn new(src: &'a str) -> Self {
        Cursor {
            src,
            pos: 0,
            end: src.len(),
        }
    }

    /// A cursor over `src[start..end]` (both at ASCII delimiters, hence char boundaries).
    pub(crate) fn window(&self, start: usize, end: usize) -> Cursor<'a> {
        let end = end.min(self.src.len());
        Cursor {
            src: self.src,
            pos: start.min(end),
            end,
        }
    }

    /// Current absolute byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Move to absolute offset `pos` (clamped to the window end).
    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos.min(self.end);
    }

    /// True when the window is exhausted.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    /// The byte at the cursor, if any.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.byte_at(self.pos)
    }

    /// The byte at absolute offset `off`, if inside the window.
    pub(crate) fn byte_at(&self, off: usize) -> Option<u8> {
        if off < self.end {
            self.src.as_bytes().get(off).copied()
        } else {
            None
        }
    }

    /// True when the cursor is at the end or at whitespace (a token boundary).
    pub(crate) fn at_boundary(&self) -> bool {
        !matches!(self.peek(), Some(b) if !b.is_ascii_whitespace())
    }

    /// Skip ASCII whitespace.
    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Offset of the first byte at or after the cursor for which `stop` holds (or the window end).
    pub(crate) fn find_from(&self, from: usize, stop: impl Fn(u8) -> bool) -> usize {
        let mut i = from;
        while let Some(b) = self.byte_at(i) {
            if stop(b) {
                return i;
            }
            i += 1;
        }
        self.end.max(from)
    }

    /// The text of `src[start..end]` (empty if the bounds are not char boundaries, which the
    /// parser never produces: all its offsets sit at ASCII bytes or the ends).
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or("")
    }

    /// The whitespace-delimited token at the cursor, without consuming it: `(start, end, text)`.
    pub(crate) fn peek_token(&self) -> (usize, usize, &'a str) {
        let end = self.find_from(self.pos, |b| b.is_ascii_whitespace());
        (self.pos, end, self.slice(self.pos, end))
    }

    /// An error of `kind` at absolute byte offset `off`.
    pub(crate) fn err(&self, off: usize, kind: SocketErrorKind) -> SocketError {
        let chars = match self.src.get(..off) {
            Some(s) => s.chars().count(),
            None => off,
        };
        SocketError {
            column: chars + 1,
            kind,
        }
    }
}
