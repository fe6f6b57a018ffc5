//! The message body: finding where it ends, and decoding chunked transfer coding.
//!
//! The head tells how the body is delimited (RFC 9112 §6.3, see [`Framing`]):
//!
//! - `Content-Length: n`: the next n bytes are the body.
//! - `Transfer-Encoding: chunked` (§7.1): the body is sent as chunks, each one
//!   prefixed by its size in hex, ended by a chunk of size zero and an optional
//!   trailer section:
//!
//! ```text
//! chunked-body   = *chunk
//!                  last-chunk
//!                  trailer-section
//!                  CRLF
//!
//! chunk          = chunk-size [ chunk-ext ] CRLF
//!                  chunk-data CRLF
//! chunk-size     = 1*HEXDIG
//! last-chunk     = 1*("0") [ chunk-ext ] CRLF
//! chunk-data     = 1*OCTET ; a sequence of chunk-size octets
//!
//! chunk-ext      = *( BWS ";" BWS chunk-ext-name
//!                     [ BWS "=" BWS chunk-ext-val ] )
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! So `4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n` carries the 9 bytes `Wikipedia`.
//! Chunking lets a sender start before it knows the total length: a streamed
//! response, or an upload of unknown size.
//!
//! [`BodyDecoder`] is a state machine fed bytes as they arrive, split anywhere. It
//! hands back the body's data as slices of the input (no copy), consumes the framing
//! bytes around them, and never needs to see a byte twice. Chunk extensions are
//! skipped (their line is bounded); trailer fields are checked against the field
//! grammar, kept, and bounded in size.
//!
//! # Strict framing
//!
//! Where a chunk ends is decided by these lines alone, so any byte two parsers read
//! differently lets one of them see a chunk (or a whole request) the other does not:
//! request smuggling. The 2025 "funky chunks" research found such disagreements in
//! many servers and proxies, each from a leniency in the lines above. The decoder
//! takes the grammar literally and answers anything else with 400:
//!
//! - **CRLF only** (§7.1): a chunk-size line, the line end after chunk-data, the last
//!   chunk, each trailer line and the final empty line end in CRLF. A bare LF is
//!   [`HttpError::BareLfInChunkedBody`]: the grammar says CRLF, and erratum 7633, which
//!   asked to allow a bare LF here as §2.2 does for the head, was rejected.
//!   [`Limits::allow_bare_lf`] does not apply to the body.
//! - **Only `;` after BWS** (§7.1.1): `chunk-size [ chunk-ext ] CRLF`, and
//!   `chunk-ext` starts with `BWS ";"`. So whitespace after the size is allowed only
//!   before a `;` (`5 ;x` is accepted); `5 \r\n`, whitespace that no `;` follows, is
//!   [`HttpError::WhitespaceAfterChunkSize`].
//! - **No line break inside an extension** (§7.1.1): `chunk-ext-val` is a token or a
//!   quoted-string (RFC 9110 §5.6.4), and neither holds a CR or LF. A parser that
//!   skips a quoted-string blindly ends the line at a CRLF inside the quotes, another
//!   reads past it: [`HttpError::LineBreakInChunkExtension`], quoted or not.
//! - **At most 16 hex digits** (§7.1: prevent overflow): a longer chunk-size is
//!   [`HttpError::ChunkSizeTooLong`], decided by counting digits before any
//!   arithmetic, so `00000000000000001` is refused as surely as an overflow is.
//! - **Exactly chunk-size bytes of data, then CRLF** (§7.1): data that runs past its
//!   size into what should be the line end is [`HttpError::MissingChunkCrlf`].
//! - **Trailer lines are field lines** (§7.1.2, §5.2): obs-fold (a line starting with
//!   SP or HTAB) is [`HttpError::ObsoleteFold`], a malformed line
//!   [`HttpError::InvalidTrailer`].

use super::Limits;
use super::error::HttpError;
use super::request::Framing;
use super::tables::{FIELD_VALUE, TCHAR};

/// What one [`BodyDecoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many input bytes were used (framing and data). Remove them before the
    /// next call. Zero with `done == false` means "need more bytes".
    pub consumed: usize,
    /// Body bytes decoded by this call: a slice of the input, possibly empty.
    pub data: &'a [u8],
    /// The body is complete: bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Content-Length framing: this many bytes still to come.
    Length { remaining: u64 },
    /// Reading a chunk-size line.
    Size(SizeLine),
    /// Inside chunk-data: this many bytes still to come.
    Data { remaining: u64 },
    /// After chunk-data: the CRLF that must follow it. `saw_cr` once the CR came.
    DataEnd { saw_cr: bool },
    /// After the last chunk: reading trailer field lines.
    Trailers,
    /// The body is complete.
    Done,
}

/// Progress through one `chunk-size [ chunk-ext ] CRLF` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SizeLine {
    /// The size so far.
    size: u64,
    /// How many hex digits were read.
    digits: u32,
    /// Past the digits, in whitespace (BWS) that only a `;` may follow.
    in_whitespace: bool,
    /// Past a `;`: in the extensions, which are skipped.
    in_extension: bool,
    /// Inside a quoted-string of an extension (RFC 9110 §5.6.4).
    in_quotes: bool,
    /// After a `\` inside a quoted-string: the next byte is a quoted-pair's.
    escaped: bool,
    /// A CR was read; only LF may follow.
    saw_cr: bool,
    /// Bytes of this line so far, bounded by `Limits::max_chunk_line_bytes`.
    len: usize,
}

/// A sans-I/O decoder for one request body.
///
/// ```
/// use wirepatterns::http::{BodyDecoder, Framing, Limits};
///
/// let mut decoder = BodyDecoder::new(Framing::Chunked, &Limits::default()).unwrap();
/// let mut input: &[u8] = b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
/// let mut body = Vec::new();
/// while !decoder.is_done() {
///     let step = decoder.decode(input).unwrap();
///     body.extend_from_slice(step.data);
///     input = &input[step.consumed..];
/// }
/// assert_eq!(body, b"Wikipedia");
/// ```
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Decoded body bytes so far, checked against `max_body`.
    total: u64,
    max_body: u64,
    max_chunk_line: usize,
    max_trailer: usize,
    /// The trailer line being read (trailer lines are short and rare, so they are
    /// gathered here rather than parsed in place).
    line: Vec<u8>,
    /// A CR began the current trailer line (only LF may follow it).
    line_cr: bool,
    /// Bytes of trailer section so far, bounded by `max_trailer`.
    trailer_len: usize,
    /// Trailer fields received, as (name, value).
    trailers: Vec<(String, Vec<u8>)>,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    ///
    /// Fails with [`HttpError::BodyTooLarge`] at once if a Content-Length is over the
    /// limit, so the server can answer 413 before the body is sent.
    pub fn new(framing: Framing, limits: &Limits) -> Result<BodyDecoder, HttpError> {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) if n > limits.max_body_bytes => {
                return Err(HttpError::BodyTooLarge);
            }
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::Size(SizeLine::default()),
        };
        Ok(BodyDecoder {
            state,
            total: 0,
            max_body: limits.max_body_bytes,
            max_chunk_line: limits.max_chunk_line_bytes,
            max_trailer: limits.max_trailer_bytes,
            line: Vec::new(),
            line_cr: false,
            trailer_len: 0,
            trailers: Vec::new(),
        })
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Body bytes counted against the limit so far: for chunked framing, a chunk
    /// counts as soon as its size line is read.
    pub fn decoded_len(&self) -> u64 {
        self.total
    }

    /// The trailer fields of a chunked body, once it is done.
    pub fn trailers(&self) -> &[(String, Vec<u8>)] {
        &self.trailers
    }

    /// Decodes from the front of `input`. Returns at most one run of body data; call
    /// again with the rest of the input while `consumed > 0` and not `done`.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, HttpError> {
        if let Some(step) = self.decode_whole_chunk(input)? {
            return Ok(step);
        }
        let mut at = 0;
        while at < input.len() {
            match &mut self.state {
                State::Done => break,
                State::Length { remaining } => {
                    let n = take(*remaining, input.len() - at);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Done;
                    }
                    self.total += n as u64;
                    return Ok(self.step(at + n, &input[at..at + n]));
                }
                State::Data { remaining } => {
                    let n = take(*remaining, input.len() - at);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::DataEnd { saw_cr: false };
                    }
                    return Ok(self.step(at + n, &input[at..at + n]));
                }
                State::Size(line) => {
                    let b = input[at];
                    at += 1;
                    if let Some(size) = size_line_byte(line, b, self.max_chunk_line)? {
                        self.start_chunk(size)?;
                    }
                }
                State::DataEnd { saw_cr } => {
                    let b = input[at];
                    at += 1;
                    // RFC 9112 §7.1: chunk-data is followed by CRLF, and only CRLF.
                    match (b, *saw_cr) {
                        (b'\r', false) => *saw_cr = true,
                        (b'\n', true) => self.state = State::Size(SizeLine::default()),
                        (b'\n', false) => return Err(HttpError::BareLfInChunkedBody),
                        _ => return Err(HttpError::MissingChunkCrlf),
                    }
                }
                State::Trailers => {
                    let b = input[at];
                    at += 1;
                    self.trailer_byte(b)?;
                }
            }
        }
        Ok(self.step(at, &[]))
    }

    /// The common case, decided without the byte-by-byte machine: at a chunk
    /// boundary, with the CRLF after the previous chunk and the whole next size line
    /// (plain hex digits, no extension) in `input`. Takes that chunk's data, or ends
    /// the body when it is the last chunk followed by an empty trailer section.
    /// `None` (and nothing changed) for anything else.
    #[inline]
    fn decode_whole_chunk<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<Option<Decoded<'a>>, HttpError> {
        let mut at = match &self.state {
            State::DataEnd { saw_cr: false } if input.starts_with(b"\r\n") => 2,
            State::Size(line) if line.len == 0 => 0,
            _ => return Ok(None),
        };
        let Some((size, used)) = size_line_whole(&input[at..]) else {
            return Ok(None);
        };
        if used > self.max_chunk_line {
            return Ok(None);
        }
        at += used;
        if size == 0 {
            // last-chunk, then (usually) an empty trailer section: just CRLF.
            if input[at..].starts_with(b"\r\n") && self.max_trailer >= 2 {
                self.trailer_len += 2;
                self.state = State::Done;
                return Ok(Some(Decoded {
                    consumed: at + 2,
                    data: &[],
                    done: true,
                }));
            }
            self.state = State::Trailers;
            return Ok(Some(Decoded {
                consumed: at,
                data: &[],
                done: false,
            }));
        }
        self.start_chunk(size)?;
        let n = take(size, input.len() - at);
        self.state = if n as u64 == size {
            State::DataEnd { saw_cr: false }
        } else {
            State::Data {
                remaining: size - n as u64,
            }
        };
        Ok(Some(Decoded {
            consumed: at + n,
            data: &input[at..at + n],
            done: false,
        }))
    }

    fn step<'a>(&self, consumed: usize, data: &'a [u8]) -> Decoded<'a> {
        Decoded {
            consumed,
            data,
            done: self.is_done(),
        }
    }

    /// A chunk-size line has ended: start its data, or the trailers after the last
    /// chunk.
    fn start_chunk(&mut self, size: u64) -> Result<(), HttpError> {
        if size == 0 {
            self.state = State::Trailers;
            return Ok(());
        }
        self.total = self
            .total
            .checked_add(size)
            .filter(|&t| t <= self.max_body)
            .ok_or(HttpError::BodyTooLarge)?;
        self.state = State::Data { remaining: size };
        Ok(())
    }

    /// One byte of the trailer section (RFC 9112 §7.1.2): field lines, then an empty
    /// line, each ended by CRLF (§7.1: not a bare LF).
    fn trailer_byte(&mut self, b: u8) -> Result<(), HttpError> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailer {
            return Err(HttpError::TrailerTooLarge);
        }
        if !self.line_cr {
            match b {
                // The CR is not stored: the body's last line is usually just CRLF,
                // and it should not cost an allocation.
                b'\r' => self.line_cr = true,
                b'\n' => return Err(HttpError::BareLfInChunkedBody),
                _ => self.line.push(b),
            }
            return Ok(());
        }
        // After a CR, only LF (RFC 9112 §2.2: a bare CR is no line ending).
        self.line_cr = false;
        if b != b'\n' {
            return Err(HttpError::InvalidTrailer);
        }
        let mut line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.state = State::Done;
            return Ok(());
        }
        // RFC 9112 §5.2: a line starting with whitespace continues the previous one
        // (obs-fold); in a trailer section, as in the head, it is rejected.
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(HttpError::ObsoleteFold);
        }
        self.trailers.push(parse_trailer_line(&line)?);
        line.clear();
        self.line = line;
        Ok(())
    }
}

/// How many of `available` bytes to take when `remaining` are wanted.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// Feeds one byte of a `chunk-size [ chunk-ext ] CRLF` line. Returns the chunk size
/// when the line ends.
fn size_line_byte(line: &mut SizeLine, b: u8, max_len: usize) -> Result<Option<u64>, HttpError> {
    line.len += 1;
    if line.len > max_len {
        return Err(HttpError::InvalidChunkExtension);
    }
    if line.saw_cr {
        // RFC 9112 §2.2: a CR must be followed by LF.
        return match b {
            b'\n' => finish_size_line(line),
            _ if line.in_extension => Err(HttpError::LineBreakInChunkExtension),
            _ => Err(HttpError::InvalidChunkSize),
        };
    }
    if line.in_quotes {
        // quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE (RFC 9110 §5.6.4):
        // no CR or LF, escaped or not. The line cannot end inside the quotes.
        match b {
            b'\r' | b'\n' => return Err(HttpError::LineBreakInChunkExtension),
            _ if !FIELD_VALUE[b as usize] => return Err(HttpError::InvalidChunkExtension),
            _ if line.escaped => line.escaped = false,
            b'\\' => line.escaped = true,
            b'"' => line.in_quotes = false,
            _ => {}
        }
        return Ok(None);
    }
    match b {
        // RFC 9112 §7.1.1: BWS is allowed only before a ";".
        b'\r' if line.in_whitespace && !line.in_extension => {
            return Err(HttpError::WhitespaceAfterChunkSize);
        }
        b'\r' => line.saw_cr = true,
        // An unquoted LF in an extension: a line break inside it (RFC 9112 §7.1.1).
        b'\n' if line.in_extension => return Err(HttpError::LineBreakInChunkExtension),
        // RFC 9112 §7.1: the line ends in CRLF, not a bare LF.
        b'\n' => return Err(HttpError::BareLfInChunkedBody),
        _ if line.in_extension => {
            // chunk-ext is skipped: its bytes only have to be field characters
            // (no controls), a quoted-string is followed to its end, and the line
            // is bounded.
            if !FIELD_VALUE[b as usize] {
                return Err(HttpError::InvalidChunkExtension);
            }
            line.in_quotes = b == b'"';
        }
        _ if line.in_whitespace => match b {
            b';' => line.in_extension = true,
            b' ' | b'\t' => {}
            _ => return Err(HttpError::InvalidChunkSize),
        },
        _ => match hex_value(b) {
            Some(v) => {
                // chunk-size = 1*HEXDIG; RFC 9112 §7.1: a recipient MUST anticipate
                // large hexadecimal numerals and prevent integer overflow. 16 digits
                // fill a u64: a 17th is refused before it is shifted in.
                if line.digits >= 16 {
                    return Err(HttpError::ChunkSizeTooLong);
                }
                line.size = (line.size << 4) | u64::from(v);
                line.digits += 1;
            }
            // BWS ";" ...: the extensions start after at least one digit.
            None if line.digits > 0 && b == b';' => line.in_extension = true,
            None if line.digits > 0 && matches!(b, b' ' | b'\t') => line.in_whitespace = true,
            None => return Err(HttpError::InvalidChunkSize),
        },
    }
    Ok(None)
}

/// A whole `1*HEXDIG CRLF` line at the front of `input`, without extensions or
/// whitespace, of at most 16 digits: its size and length. `None` for anything else
/// (a bare LF included), which the byte-by-byte path, [`size_line_byte`], then
/// decides: this is only its shortcut for the common line, and the tests check the
/// two agree.
#[inline]
fn size_line_whole(input: &[u8]) -> Option<(u64, usize)> {
    let mut size = 0u64;
    for (i, &b) in input.iter().enumerate().take(17) {
        match b {
            b'\r' if i > 0 => return (input.get(i + 1) == Some(&b'\n')).then_some((size, i + 2)),
            _ if i == 16 => return None,
            _ => size = (size << 4) | u64::from(hex_value(b)?),
        }
    }
    None
}

fn finish_size_line(line: &SizeLine) -> Result<Option<u64>, HttpError> {
    if line.digits == 0 {
        return Err(HttpError::InvalidChunkSize);
    }
    Ok(Some(line.size))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5), for one trailer line without
/// its line ending.
fn parse_trailer_line(line: &[u8]) -> Result<(String, Vec<u8>), HttpError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::InvalidTrailer)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| TCHAR[b as usize]) {
        return Err(HttpError::InvalidTrailer);
    }
    if !value.iter().all(|&b| FIELD_VALUE[b as usize]) {
        return Err(HttpError::InvalidTrailer);
    }
    let value = value.trim_ascii();
    let name = String::from_utf8_lossy(name).into_owned();
    Ok((name, value.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        framing: Framing,
        input: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, usize), HttpError> {
        let mut decoder = BodyDecoder::new(framing, &Limits::default())?;
        let mut body = Vec::new();
        let mut fed = 0; // bytes made available so far
        let mut used = 0; // bytes consumed so far
        while !decoder.is_done() {
            if fed == input.len() && used == fed {
                break;
            }
            fed = (fed + piece).min(input.len());
            loop {
                let step = decoder.decode(&input[used..fed])?;
                body.extend_from_slice(step.data);
                used += step.consumed;
                if step.consumed == 0 || step.done {
                    break;
                }
            }
        }
        if !decoder.is_done() {
            return Err(HttpError::InvalidChunkSize);
        }
        Ok((body, used))
    }

    #[test]
    fn rfc9112_7_1_chunked_body_decodes_at_every_split() {
        let input =
            b"4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nNEXT";
        for piece in 1..input.len() {
            let (body, used) = decode_all(Framing::Chunked, input, piece).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "piece {piece}");
            assert_eq!(&input[used..], b"NEXT");
        }
    }

    #[test]
    fn rfc9112_6_3_content_length_body_stops_at_length() {
        for piece in 1..12 {
            let (body, used) =
                decode_all(Framing::Length(5), b"helloGET / HTTP/1.1", piece).unwrap();
            assert_eq!(body, b"hello");
            assert_eq!(used, 5);
        }
    }

    #[test]
    fn rfc9112_6_3_no_framing_means_no_body() {
        let decoder = BodyDecoder::new(Framing::None, &Limits::default()).unwrap();
        assert!(decoder.is_done());
    }

    #[test]
    fn rfc9112_7_1_2_trailers_are_parsed() {
        let mut decoder = BodyDecoder::new(Framing::Chunked, &Limits::default()).unwrap();
        let input = b"3\r\nabc\r\n0\r\nChecksum: 123 \r\nX-B: c\r\n\r\n";
        let mut at = 0;
        while !decoder.is_done() {
            at += decoder.decode(&input[at..]).unwrap().consumed;
        }
        assert_eq!(at, input.len());
        assert_eq!(
            decoder.trailers(),
            &[
                ("Checksum".to_string(), b"123".to_vec()),
                ("X-B".to_string(), b"c".to_vec())
            ]
        );
    }

    #[test]
    fn rfc9112_7_1_invalid_chunk_size_is_rejected() {
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b";ext\r\n",
            b"-1\r\n",
            b"1 2\r\n",
            b"1\rX",
            b" 1\r\n",
        ] {
            assert_eq!(
                decode_all(Framing::Chunked, bad, 64),
                Err(HttpError::InvalidChunkSize),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rfc9112_7_1_chunk_size_of_more_than_16_digits_is_rejected() {
        for input in [
            &b"10000000000000000\r\n"[..],
            b"00000000000000001\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            for piece in [1, 3, 64] {
                assert_eq!(
                    decode_all(Framing::Chunked, input, piece),
                    Err(HttpError::ChunkSizeTooLong)
                );
            }
        }
        // 16 digits are read (and then found too large for the body limit).
        assert_eq!(
            decode_all(Framing::Chunked, b"0000000000000001\r\na\r\n0\r\n\r\n", 64),
            Ok((b"a".to_vec(), 26))
        );
    }

    /// The strict framing rules of the module docs, each with the error naming it,
    /// at every split of the input: the byte-by-byte path (one byte per piece) and
    /// the whole-line shortcut (large pieces) must give the same answer.
    #[test]
    fn rfc9112_7_1_strict_framing_rules_hold_at_every_split() {
        use HttpError::*;
        let cases: &[(&[u8], HttpError)] = &[
            // Bare LF ending a chunk-size line, chunk data, the last chunk, a trailer
            // line, the final empty line.
            (b"5\nhello\r\n0\r\n\r\n", BareLfInChunkedBody),
            (b"5\r\nhello\n0\r\n\r\n", BareLfInChunkedBody),
            (b"5\r\nhello\r\n0\n\r\n", BareLfInChunkedBody),
            (b"0\r\nX: y\n\r\n", BareLfInChunkedBody),
            (b"0\r\n\n", BareLfInChunkedBody),
            (b"5;a=b\nhello\r\n0\r\n\r\n", LineBreakInChunkExtension),
            // Whitespace after the size that no ';' follows.
            (b"5 \r\nhello\r\n0\r\n\r\n", WhitespaceAfterChunkSize),
            (b"5\t\r\nhello\r\n0\r\n\r\n", WhitespaceAfterChunkSize),
            (b"0 \r\n\r\n", WhitespaceAfterChunkSize),
            // A line break inside an extension, quoted or not.
            (
                b"5;a=\"x\r\ny\"\r\nhello\r\n0\r\n\r\n",
                LineBreakInChunkExtension,
            ),
            (
                b"5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n",
                LineBreakInChunkExtension,
            ),
            (
                b"5;a=\"x\\\ry\"\r\nhello\r\n0\r\n\r\n",
                LineBreakInChunkExtension,
            ),
            (b"5;a\rb\r\nhello\r\n0\r\n\r\n", LineBreakInChunkExtension),
            // Chunk data longer than its size, spilling into the next line.
            (b"5\r\nhelloXX\r\n0\r\n\r\n", MissingChunkCrlf),
            // obs-fold in the trailer section.
            (b"0\r\nX: a\r\n b\r\n\r\n", ObsoleteFold),
            (b"0\r\n\tX: a\r\n\r\n", ObsoleteFold),
        ];
        for (input, want) in cases {
            for piece in 1..=input.len() {
                assert_eq!(
                    decode_all(Framing::Chunked, input, piece).map(|(body, _)| body),
                    Err(*want),
                    "{:?}, pieces of {piece}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    /// The whole-line shortcut agrees with the byte-by-byte reference on every line it
    /// takes, and leaves every other line (bare LF included) to it.
    #[test]
    fn size_line_shortcut_agrees_with_the_byte_by_byte_path() {
        let lines: &[&[u8]] = &[
            b"0\r\n",
            b"5\r\n",
            b"aF\r\n",
            b"ffffffffffffffff\r\n",
            b"0000000000000001\r\n",
            b"00000000000000001\r\n",
            b"5\n",
            b"5\rX",
            b"5 \r\n",
            b"5;a\r\n",
            b"\r\n",
            b"g\r\n",
        ];
        for line in lines {
            let mut reference = SizeLine::default();
            let mut by_byte = Ok(None);
            let mut used = 0;
            for &b in *line {
                used += 1;
                by_byte = size_line_byte(&mut reference, b, 4096);
                if !matches!(by_byte, Ok(None)) {
                    break;
                }
            }
            match size_line_whole(line) {
                Some((size, len)) => {
                    assert_eq!(by_byte, Ok(Some(size)), "{line:?}");
                    assert_eq!(len, used, "{line:?}");
                }
                None => assert!(
                    !matches!(by_byte, Ok(Some(_))) || line.ends_with(b";a\r\n"),
                    "shortcut declined a plain line {line:?}"
                ),
            }
        }
        assert_eq!(size_line_whole(b"5\n"), None);
    }

    #[test]
    fn rfc9112_7_1_1_whitespace_before_semicolon_and_quoted_extensions_are_accepted() {
        let input = b"5 ;a=b\r\nhello\r\n6\t; q=\"x;\\\"y\"\r\n world\r\n0 ;z\r\n\r\n";
        for piece in 1..=input.len() {
            let (body, used) = decode_all(Framing::Chunked, input, piece).unwrap();
            assert_eq!(body, b"hello world", "pieces of {piece}");
            assert_eq!(used, input.len());
        }
    }

    #[test]
    fn rfc9112_7_1_missing_crlf_after_chunk_data_is_rejected() {
        assert_eq!(
            decode_all(Framing::Chunked, b"3\r\nabcX\r\n0\r\n\r\n", 64),
            Err(HttpError::MissingChunkCrlf)
        );
        assert_eq!(
            decode_all(Framing::Chunked, b"3\r\nabc\rX0\r\n\r\n", 64),
            Err(HttpError::MissingChunkCrlf)
        );
    }

    #[test]
    fn rfc9112_7_1_1_long_chunk_extension_is_rejected() {
        let mut input = b"1;".to_vec();
        input.extend(std::iter::repeat_n(b'a', 5000));
        assert_eq!(
            decode_all(Framing::Chunked, &input, 64),
            Err(HttpError::InvalidChunkExtension)
        );
    }

    #[test]
    fn rfc9112_7_1_2_oversized_trailer_section_is_rejected() {
        let mut input = b"0\r\nX: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 20_000));
        assert_eq!(
            decode_all(Framing::Chunked, &input, 4096),
            Err(HttpError::TrailerTooLarge)
        );
    }

    #[test]
    fn rfc9112_7_1_2_invalid_trailer_is_rejected() {
        assert_eq!(
            decode_all(Framing::Chunked, b"0\r\nBad Name: x\r\n\r\n", 64),
            Err(HttpError::InvalidTrailer)
        );
    }

    #[test]
    fn chunked_body_over_limit_is_rejected_as_it_arrives() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let mut decoder = BodyDecoder::new(Framing::Chunked, &limits).unwrap();
        // 8 bytes fit; the second chunk's size line alone pushes the total to 16.
        let input = b"8\r\n12345678\r\n8\r\n";
        let mut at = 0;
        let err = loop {
            match decoder.decode(&input[at..]) {
                Ok(step) if step.consumed > 0 => at += step.consumed,
                Ok(_) => panic!("needs no more input before failing"),
                Err(e) => break e,
            }
        };
        assert_eq!(decoder.decoded_len(), 8);
        assert_eq!(err, HttpError::BodyTooLarge);
    }

    #[test]
    fn content_length_over_limit_is_rejected_before_the_body() {
        let limits = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            BodyDecoder::new(Framing::Length(11), &limits).err(),
            Some(HttpError::BodyTooLarge)
        );
    }
}
