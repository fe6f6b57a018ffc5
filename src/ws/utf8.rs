//! Incremental UTF-8 validation, for text messages that arrive in pieces.
//!
//! A text message must be valid UTF-8 (RFC 6455 §5.6), and §8.1 says an endpoint
//! that receives invalid UTF-8 "MUST _Fail the WebSocket Connection_" (close 1007).
//! The message may come in several fragments and each fragment in several reads, and
//! a piece can end in the middle of a multi-byte character: `€` is `E2 82 AC`, and a
//! read can end after `E2 82`. That is not an error yet; it becomes one only if the
//! next bytes do not complete the character, or if the message ends there.
//!
//! [`Utf8Validator`] keeps the at most 3 bytes of such an unfinished character between
//! calls, and fails as soon as the bytes fed so far cannot be the start of valid
//! UTF-8. It leans on `std::str::from_utf8`, whose error tells the two cases apart:
//! `error_len() == None` means "the input ends inside a character that could still be
//! completed", `Some(_)` means "these bytes are invalid whatever follows". Note that
//! std rejects a prefix that can never complete (such as `E0 80`, the start of an
//! overlong form, or `F4 90`, beyond U+10FFFF) at once, so failing fast costs nothing.
//!
//! The UTF-8 grammar it enforces (RFC 3629 §4):
//!
//! ```text
//! UTF8-char   = UTF8-1 / UTF8-2 / UTF8-3 / UTF8-4
//! UTF8-1      = %x00-7F
//! UTF8-2      = %xC2-DF UTF8-tail
//! UTF8-3      = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
//!               %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
//! UTF8-4      = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
//!               %xF4 %x80-8F 2( UTF8-tail )
//! UTF8-tail   = %x80-BF
//! ```

use thiserror::Error;

/// The bytes fed to a [`Utf8Validator`] are not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid UTF-8")]
pub struct InvalidUtf8;

/// A UTF-8 validator that is fed bytes in pieces.
///
/// ```
/// use wirepatterns::ws::utf8::Utf8Validator;
///
/// let euro = "€".as_bytes(); // E2 82 AC
/// let mut v = Utf8Validator::default();
/// assert!(v.feed(&euro[..1]).is_ok()); // could still become a character
/// assert!(v.is_incomplete());
/// assert!(v.feed(&euro[1..]).is_ok());
/// assert!(v.finish().is_ok());
///
/// let mut v = Utf8Validator::default();
/// assert!(v.feed(&[0xE2, 0x28]).is_err()); // 0x28 cannot continue a character
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of a character that the input so far ended inside: its first
    /// `pending_len` bytes. A character is at most 4 bytes, so at most 3 are pending.
    pending: [u8; 3],
    /// How many bytes of `pending` are in use (0 when the input ended on a character
    /// boundary).
    pending_len: u8,
}

impl Utf8Validator {
    /// Validate the next piece of input. Fails as soon as the bytes fed so far cannot
    /// begin a valid UTF-8 sequence; an unfinished character at the end of `bytes` is
    /// kept for the next call.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        let Some(rest) = self.complete_pending(bytes)? else {
            // All of `bytes` went into a character that is still unfinished.
            return Ok(());
        };
        match std::str::from_utf8(rest) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(())
            }
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => self.keep_pending(rest.get(e.valid_up_to()..).unwrap_or_default()),
        }
    }

    /// Whether the input so far ends inside a character.
    pub fn is_incomplete(&self) -> bool {
        self.pending_len != 0
    }

    /// The input is over: fails if it ended inside a character.
    pub fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.is_incomplete() {
            Err(InvalidUtf8)
        } else {
            Ok(())
        }
    }

    /// Forget everything, ready for a new message.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// If a character is pending, finish it with the first bytes of `bytes`, and
    /// return the bytes after it; `None` if `bytes` ran out before it finished.
    fn complete_pending<'a>(&mut self, bytes: &'a [u8]) -> Result<Option<&'a [u8]>, InvalidUtf8> {
        let pending_len = usize::from(self.pending_len);
        if pending_len == 0 {
            return Ok(Some(bytes));
        }
        // The pending bytes and up to enough new ones for the longest character.
        let taken = bytes.len().min(4 - pending_len);
        // In bounds: `keep_pending` never stores more than 3 bytes, so
        // pending_len <= 3, and pending_len + taken <= 4 with taken <= bytes.len().
        let mut joined = [0u8; 4];
        let joined_len = pending_len + taken;
        joined[..pending_len].copy_from_slice(&self.pending[..pending_len]);
        joined[pending_len..joined_len].copy_from_slice(&bytes[..taken]);
        let joined = &joined[..joined_len];

        let valid_up_to = match std::str::from_utf8(joined) {
            Ok(_) => joined_len,
            Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
            Err(e) => e.valid_up_to(),
        };
        if valid_up_to < pending_len {
            // The pending character is still unfinished, so `bytes` was too short
            // to finish it and all of it was taken: keep the longer prefix.
            self.keep_pending(joined)?;
            return Ok(None);
        }
        // The pending character is complete; the new bytes it used are done with.
        self.pending_len = 0;
        Ok(Some(
            bytes.get(valid_up_to - pending_len..).unwrap_or_default(),
        ))
    }

    /// Remember an unfinished character (1 to 3 bytes that `from_utf8` accepted as a
    /// possible prefix).
    fn keep_pending(&mut self, tail: &[u8]) -> Result<(), InvalidUtf8> {
        let slot = self.pending.get_mut(..tail.len()).ok_or(InvalidUtf8)?;
        slot.copy_from_slice(tail);
        self.pending_len = tail.len() as u8;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in the given pieces; `Ok(true)` if it was valid and complete.
    fn validate_in_pieces(input: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            v.feed(&input[start..cut])?;
            start = cut;
        }
        v.finish()
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut samples: Vec<Vec<u8>> = [
            "",
            "Hello",
            "κόσμε",
            "€uro ≠ £",
            "🎉 party 🎈",
            "\u{10FFFF}\u{FFFF}\u{800}\u{7FF}\u{80}\u{7F}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        // Invalid: lone continuation, overlong forms, surrogates, beyond U+10FFFF,
        // truncated at the end, a bad byte after a good prefix.
        for bad in [
            &b"\x80"[..],
            b"\xC0\xAF",
            b"\xE0\x80\xAF",
            b"\xED\xA0\x80",
            b"\xF4\x90\x80\x80",
            b"\xF5",
            b"\xFF",
            b"ab\xE2\x82",
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited",
            b"\xF0\x9F\x8E",
            b"\xE2\x28\xA1",
        ] {
            samples.push(bad.to_vec());
        }
        samples
    }

    #[test]
    fn agrees_with_std_when_split_at_every_point() {
        for input in samples() {
            let expected = std::str::from_utf8(&input).is_ok();
            assert_eq!(validate_in_pieces(&input, &[]).is_ok(), expected);
            for a in 0..=input.len() {
                assert_eq!(
                    validate_in_pieces(&input, &[a]).is_ok(),
                    expected,
                    "{input:x?} at {a}"
                );
                for b in a..=input.len() {
                    let ok = validate_in_pieces(&input, &[a, b]).is_ok();
                    assert_eq!(ok, expected, "{input:x?} at {a}, {b}");
                }
            }
            // One byte at a time.
            let cuts: Vec<usize> = (1..input.len()).collect();
            assert_eq!(validate_in_pieces(&input, &cuts).is_ok(), expected);
        }
    }

    #[test]
    fn agrees_with_std_on_every_two_byte_sequence_split_in_the_middle() {
        for first in 0..=255u8 {
            for second in 0..=255u8 {
                let input = [first, second, b'a', b'b'];
                let expected = std::str::from_utf8(&input).is_ok();
                assert_eq!(validate_in_pieces(&input, &[1]).is_ok(), expected);
            }
        }
    }

    #[test]
    fn fails_at_the_first_byte_that_cannot_continue() {
        // "κόσμε" then the start of a surrogate (ED A0): invalid at the A0.
        let mut v = Utf8Validator::default();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert!(v.feed(&[0xED]).is_ok());
        assert!(v.feed(&[0xA0]).is_err());

        // An overlong prefix fails on its second byte, before a third arrives.
        let mut v = Utf8Validator::default();
        assert!(v.feed(&[0xE0]).is_ok());
        assert!(v.feed(&[0x80]).is_err());
    }

    #[test]
    fn an_unfinished_character_at_the_end_is_invalid() {
        let mut v = Utf8Validator::default();
        assert!(v.feed(&[b'a', 0xF0, 0x9F]).is_ok());
        assert!(v.feed(&[0x8E]).is_ok());
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }
}
