//! Incremental UTF-8 validation for text messages (RFC 6455 §5.6, §8.1; RFC 3629).
//!
//! A text message may be split over several frames, and a frame over several
//! reads, at any byte. [`Utf8Validator`] is fed the pieces in order and fails as
//! soon as a byte makes the stream invalid ("fail fast", as Autobahn's 6.x cases
//! require), not only at the end of the message. The bulk work is done by
//! `core::str::from_utf8`, which is ASCII-accelerated; only a char split across
//! pieces (at most 3 carried bytes) is handled here.
//!
//! `from_utf8` reports `error_len() == None` only when the input ends in a
//! *valid prefix* of a multi-byte sequence (overlong forms, surrogates and values
//! above U+10FFFF are rejected by their second byte), which is exactly the state
//! that may legally continue in the next piece.

/// Streaming UTF-8 validator. Five bytes of state, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Bytes of a sequence that is incomplete so far (a valid prefix).
    pending: [u8; 4],
    /// Number of bytes used in `pending` (0..=3).
    len: u8,
}

/// Invalid UTF-8 was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Total length of the sequence started by a (valid) lead byte.
fn seq_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Utf8Validator {
            pending: [0; 4],
            len: 0,
        }
    }

    /// True when a multi-byte sequence is incomplete so far.
    pub fn is_incomplete(&self) -> bool {
        self.len != 0
    }

    /// Validate the next piece of the stream. Fails as soon as the stream cannot
    /// be valid UTF-8 whatever follows.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.len != 0 {
            let have = usize::from(self.len);
            let need = seq_len(self.pending[0]);
            let take = need.saturating_sub(have).min(data.len());
            let (head, rest) = data.split_at(take);
            let end = have + take;
            self.pending[have..end].copy_from_slice(head);
            match core::str::from_utf8(&self.pending[..end]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; only possible when `data` is used up.
                    self.len = end as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
            data = rest;
        }
        match core::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = data.get(e.valid_up_to()..).unwrap_or_default();
                // A valid prefix is 1 to 3 bytes long (documented by `Utf8Error`).
                match self.pending.get_mut(..tail.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(tail);
                        self.len = tail.len() as u8;
                        Ok(())
                    }
                    None => Err(Utf8Error),
                }
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// End of the message: an incomplete sequence at the end is invalid.
    pub fn finish(&self) -> Result<(), Utf8Error> {
        if self.len == 0 {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    /// Forget any state (start of a new message).
    pub fn reset(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(data: &[u8], cuts: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut at = 0;
        for &c in cuts {
            v.feed(&data[at..c])?;
            at = c;
        }
        v.feed(&data[at..])?;
        v.finish()
    }

    #[test]
    fn valid_split_everywhere() {
        // "κόσμε" + U+10FFFF + U+FFFF + ASCII (Autobahn 6.2 / 6.3 material).
        let s = "κόσμε\u{10FFFF}\u{FFFF}\u{800}abc\u{7F}";
        let b = s.as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                assert_eq!(feed_split(b, &[i, j]), Ok(()), "cuts {i} {j}");
            }
        }
        // One byte at a time.
        let cuts: Vec<usize> = (1..b.len()).collect();
        assert_eq!(feed_split(b, &cuts), Ok(()));
    }

    #[test]
    fn invalid_sequences() {
        let bad: &[&[u8]] = &[
            b"\x80",             // lone continuation
            b"\xC0\xAF",         // overlong
            b"\xE0\x80\xAF",     // overlong 3-byte
            b"\xED\xA0\x80",     // surrogate U+D800
            b"\xF4\x90\x80\x80", // > U+10FFFF
            b"\xF5\x80\x80\x80", // invalid lead
            b"\xFF",             // invalid byte
            b"\xCE\xBA\xE1\xBD", // truncated at the end
            b"a\xE1\x80b",       // truncated in the middle
            b"\xF0\x90\x80",     // truncated 4-byte at the end
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
        ];
        for b in bad {
            for i in 0..=b.len() {
                assert_eq!(feed_split(b, &[i]), Err(Utf8Error), "{b:x?} cut {i}");
            }
        }
    }

    #[test]
    fn fails_fast_on_invalid_prefix() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ab\xE0"), Ok(()));
        assert!(v.is_incomplete());
        // E0 80 can never become valid: fail on this byte, before the sequence ends.
        assert_eq!(v.feed(b"\x80"), Err(Utf8Error));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xF4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xED"), Ok(()));
        assert_eq!(v.feed(b"\xA0"), Err(Utf8Error));

        // A lone invalid lead fails immediately.
        assert_eq!(Utf8Validator::new().feed(b"\xF8"), Err(Utf8Error));
    }

    #[test]
    fn pending_survives_empty_feeds() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xF0").unwrap();
        v.feed(b"").unwrap();
        v.feed(b"\x9F").unwrap();
        v.feed(b"").unwrap();
        v.feed(b"\x98").unwrap();
        assert!(v.finish().is_err());
        v.feed(b"\x80").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
