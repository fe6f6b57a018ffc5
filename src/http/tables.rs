//! Byte classes of the HTTP grammar, as 256-entry lookup tables.
//!
//! A parser asks one question per byte ("may this byte appear here?"). A table
//! indexed by the byte answers it with one load and no branches, which is why
//! httparse and most fast HTTP parsers use them. Each table sits under the ABNF
//! rule it implements.
//!
//! [`swar`] holds the word-at-a-time versions of the two hottest scans, each with
//! the plain byte-by-byte loop beside it as the reference.

/// Builds a 256-entry table from a predicate on the byte `b`, at compile time.
macro_rules! table {
    (|$b:ident| $pred:expr) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let $b = i as u8;
            t[i] = $pred;
            i += 1;
        }
        t
    }};
}

/// RFC 9110 §5.6.2:
///
/// ```text
/// token  = 1*tchar
/// tchar  = "!" / "#" / "$" / "%" / "&" / "'" / "*"
///        / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
///        / DIGIT / ALPHA
/// ```
pub static TCHAR: [bool; 256] = table!(|b| {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
});

/// RFC 9110 §5.5:
///
/// ```text
/// field-value    = *field-content
/// field-content  = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
/// field-vchar    = VCHAR / obs-text
/// obs-text       = %x80-FF
/// ```
///
/// So a value byte is HTAB, SP, a visible ASCII character (%x21-7E) or obs-text.
/// Everything else (NUL, other controls, DEL) is rejected.
pub static FIELD_VALUE: [bool; 256] = table!(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));

/// RFC 9112 §3.2 allows only the characters of a URI (RFC 3986) in a
/// request-target, which are all visible ASCII:
///
/// ```text
/// request-target = origin-form / absolute-form / authority-form / asterisk-form
/// ```
///
/// This table accepts any VCHAR (%x21-7E) and, like httparse and most servers,
/// obs-text (%x80-FF) that browsers send unescaped; it rejects SP, controls and DEL.
/// The request line is split on SP, so SP ends the target.
pub static TARGET: [bool; 256] = table!(|b| b > 0x20 && b != 0x7f);

/// RFC 3986 §3.2.2, the bytes of a reg-name other than pct-encoded (whose `%` and
/// two HEXDIG are checked as a sequence, not byte by byte):
///
/// ```text
/// reg-name    = *( unreserved / pct-encoded / sub-delims )
/// unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
/// sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
/// ```
///
/// Used for the host of a Host field value and of an authority-form target, and for
/// the address of an IPvFuture (which adds `:`).
pub static REG_NAME: [bool; 256] = table!(|b| {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=')
});

/// `true` if `b` is a `tchar`.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

/// Word-at-a-time ("SIMD within a register") scans.
///
/// Eight bytes are loaded as one `u64`, and a few arithmetic operations tell whether
/// any of them needs a closer look. Most bytes of a header value are ordinary
/// characters, so most words are skipped whole; the first word that holds an
/// interesting byte is finished with the table. Each fast scan has its plain
/// byte-by-byte twin here, and the tests check that they agree on every input.
pub mod swar {
    use super::{FIELD_VALUE, TARGET, TCHAR};

    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Loads 8 bytes from `buf[at..at + 8]` as a little-endian word.
    #[inline]
    fn load(buf: &[u8], at: usize) -> Option<u64> {
        let bytes: [u8; 8] = buf.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// Nonzero if some byte of `x` is less than `n` (for `n` <= 128; bytes with the
    /// high bit set count as large). The classic "haszero" trick, shifted by `n`.
    #[inline]
    fn has_less(x: u64, n: u8) -> u64 {
        x.wrapping_sub(ONES * n as u64) & !x & HIGHS
    }

    /// Nonzero if some byte of `x` equals `n`.
    #[inline]
    fn has_byte(x: u64, n: u8) -> u64 {
        let y = x ^ (ONES * n as u64);
        y.wrapping_sub(ONES) & !y & HIGHS
    }

    /// Index of the first byte at or after `at` that may not appear in a field value
    /// (CR and LF included, which is where a value ends), or `buf.len()`.
    /// The plain reference is [`value_end_plain`].
    #[inline]
    pub fn value_end(buf: &[u8], mut at: usize) -> usize {
        // A word is clean when no byte is below SP (controls, HTAB, CR, LF) and none
        // is DEL. HTAB is allowed but rare: it is found like the others, then
        // stepped over.
        while let Some(w) = load(buf, at) {
            let found = has_less(w, 0x20) | has_byte(w, 0x7f);
            if found != 0 {
                // The lowest flagged byte is exact (the borrows of the trick only
                // flag bytes above a true hit, never below it).
                let i = at + (found.trailing_zeros() / 8) as usize;
                if buf.get(i) != Some(&b'\t') {
                    return i;
                }
                at = i + 1;
                continue;
            }
            at += 8;
        }
        value_end_plain(buf, at)
    }

    /// The byte-by-byte reference for [`value_end`].
    #[inline]
    pub fn value_end_plain(buf: &[u8], at: usize) -> usize {
        match buf.get(at..) {
            Some(rest) => rest
                .iter()
                .position(|&b| !FIELD_VALUE[b as usize])
                .map_or(buf.len(), |p| at + p),
            None => buf.len(),
        }
    }

    /// Index of the first byte at or after `at` that may not appear in a
    /// request-target (SP ends it), or `buf.len()`. The plain reference is
    /// [`target_end_plain`].
    #[inline]
    pub fn target_end(buf: &[u8], mut at: usize) -> usize {
        while let Some(w) = load(buf, at) {
            let found = has_less(w, 0x21) | has_byte(w, 0x7f);
            if found != 0 {
                return at + (found.trailing_zeros() / 8) as usize;
            }
            at += 8;
        }
        target_end_plain(buf, at)
    }

    /// The byte-by-byte reference for [`target_end`].
    #[inline]
    pub fn target_end_plain(buf: &[u8], at: usize) -> usize {
        match buf.get(at..) {
            Some(rest) => rest
                .iter()
                .position(|&b| !TARGET[b as usize])
                .map_or(buf.len(), |p| at + p),
            None => buf.len(),
        }
    }

    /// Index of the first byte at or after `at` that is not a `tchar`, or
    /// `buf.len()`. Eight bytes per step: one bounds check per block, and the eight
    /// table lookups unrolled. The plain reference is [`token_end_plain`].
    #[inline]
    pub fn token_end(buf: &[u8], mut at: usize) -> usize {
        while let Some(block) = buf
            .get(at..at + 8)
            .and_then(|b| <&[u8; 8]>::try_from(b).ok())
        {
            if let Some(p) = block.iter().position(|&b| !TCHAR[b as usize]) {
                return at + p;
            }
            at += 8;
        }
        token_end_plain(buf, at)
    }

    /// The byte-by-byte reference for [`token_end`].
    #[inline]
    pub fn token_end_plain(buf: &[u8], at: usize) -> usize {
        match buf.get(at..) {
            Some(rest) => rest
                .iter()
                .position(|&b| !TCHAR[b as usize])
                .map_or(buf.len(), |p| at + p),
            None => buf.len(),
        }
    }

    /// Index of the first LF at or after `at`, or `None`. The plain reference is
    /// [`find_lf_plain`].
    #[inline]
    pub fn find_lf(buf: &[u8], mut at: usize) -> Option<usize> {
        while let Some(w) = load(buf, at) {
            let found = has_byte(w, b'\n');
            if found != 0 {
                return Some(at + (found.trailing_zeros() / 8) as usize);
            }
            at += 8;
        }
        find_lf_plain(buf, at)
    }

    /// The byte-by-byte reference for [`find_lf`].
    #[inline]
    pub fn find_lf_plain(buf: &[u8], at: usize) -> Option<usize> {
        buf.get(at..)?
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| at + p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_5_6_2_tchar_table_matches_the_abnf() {
        let listed =
            b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for b in 0..=255u8 {
            assert_eq!(is_tchar(b), listed.contains(&b), "byte {b:#04x}");
        }
    }

    #[test]
    fn rfc3986_3_2_2_reg_name_table_matches_the_abnf() {
        let listed =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=";
        for b in 0..=255u8 {
            assert_eq!(REG_NAME[b as usize], listed.contains(&b), "byte {b:#04x}");
        }
    }

    #[test]
    fn rfc9110_5_5_field_value_rejects_controls_and_del() {
        for b in 0..=255u8 {
            let ok = b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
            assert_eq!(FIELD_VALUE[b as usize], ok, "byte {b:#04x}");
        }
    }

    #[test]
    fn swar_scans_agree_with_plain_scans_on_every_byte_at_every_offset() {
        // Put each byte value at each position of a 20-byte run of 'a', and start
        // the scan at several offsets: word boundaries and the tail both get hit.
        for b in 0..=255u8 {
            for pos in 0..20 {
                let mut buf = vec![b'a'; 20];
                buf[pos] = b;
                for start in 0..4 {
                    assert_eq!(
                        swar::value_end(&buf, start),
                        swar::value_end_plain(&buf, start)
                    );
                    assert_eq!(
                        swar::target_end(&buf, start),
                        swar::target_end_plain(&buf, start)
                    );
                    assert_eq!(swar::find_lf(&buf, start), swar::find_lf_plain(&buf, start));
                    assert_eq!(
                        swar::token_end(&buf, start),
                        swar::token_end_plain(&buf, start)
                    );
                }
            }
        }
    }

    #[test]
    fn swar_scans_stop_at_end_of_buffer() {
        assert_eq!(swar::value_end(b"abc", 0), 3);
        assert_eq!(swar::value_end(b"abc", 7), 3);
        assert_eq!(swar::find_lf(b"abcdefghijkl", 0), None);
        assert_eq!(swar::find_lf(b"abcdefghijk\n", 0), Some(11));
    }
}
