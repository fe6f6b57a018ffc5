//! What a request head and a response head have in common (RFC 9112 §2-§6), parsed
//! once for both [`super::request`] and [`super::response_parser`].
//!
//! ```text
//! HTTP-message = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]  ; §2.1
//! HTTP-version = "HTTP" "/" DIGIT "." DIGIT                                  ; §2.3
//! field-line   = field-name ":" OWS field-value OWS                          ; §5
//! ```
//!
//! Only the start line differs between the two directions (a request line or a
//! status line), and what the fields mean. The rest is the same grammar, enforced
//! the same way:
//!
//! - [`find_empty_line`]: the search for the empty line that ends the head, resumable
//!   so that a head arriving in pieces is searched once in all.
//! - [`parse_version`]: `HTTP/1.0` and `HTTP/1.x`, the only versions with a text
//!   head.
//! - [`parse_field_lines`]: the field lines after the start line, up to and
//!   including the empty line, each checked against the grammar and the
//!   [`Limits::max_headers`] bound.
//! - [`ContentLength`] and [`TransferCodings`]: the two fields that frame a body,
//!   read from their lists.
//!
//! Each parser's module docs say which rules it applies and why; the RFC sections
//! are cited again here where a rule is enforced.

use super::Limits;
use super::error::HttpError;
use super::request::Version;
use super::tables::swar;

/// The longest head either parser accepts, whatever [`Limits::max_head_bytes`]
/// says: offsets into a head are stored as `u32` ([`Span`]), and no sane head
/// comes near 4 GiB.
pub(super) const MAX_HEAD_BYTES: usize = u32::MAX as usize - 1;

/// Where a piece of the head lies in the buffer: `buf[start..end]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: u32,
    pub(super) end: u32,
}

impl Span {
    pub(super) fn new(start: usize, end: usize) -> Span {
        // Heads are bounded by `Limits::max_head_bytes`, which both parsers cap at
        // `MAX_HEAD_BYTES`, so these fit.
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(super) fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Where one field line's name and value lie.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FieldSpan {
    pub(super) name: Span,
    pub(super) value: Span,
}

/// Where [`find_empty_line`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Search {
    /// The head ends just before this index (the end of its empty line).
    Found(usize),
    /// Not there yet: every byte before this index has been searched, and the next
    /// search, over the same bytes and more, resumes here.
    Resume(usize),
}

/// Searches `buf` from `at` for the empty line that ends a head (RFC 9112 §2.1): an
/// LF followed by CRLF or by a bare LF. Which line endings are valid is checked
/// later by the parse; here a bare LF ends a line, so that the parse sees, and
/// refuses, the head a lenient reader would have taken.
///
/// `searched` counts the bytes looked at (the measure that shows the search is
/// linear). `on_lf` is called with the index of each LF found, before it is looked
/// past, so that a parser can bound its start line as soon as it ends.
#[inline]
pub(super) fn find_empty_line(
    buf: &[u8],
    mut at: usize,
    searched: &mut u64,
    mut on_lf: impl FnMut(usize) -> Result<(), HttpError>,
) -> Result<Search, HttpError> {
    loop {
        let Some(lf) = swar::find_lf(buf, at) else {
            // Searched to the end without finding it.
            *searched += buf.len().saturating_sub(at) as u64;
            return Ok(Search::Resume(buf.len()));
        };
        *searched += (lf + 1 - at) as u64;
        on_lf(lf)?;
        // The head ends at an LF that is followed by an empty line: LF or CRLF.
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Ok(Search::Found(lf + 2)),
            (Some(b'\r'), Some(b'\n')) => return Ok(Search::Found(lf + 3)),
            // Not enough bytes after this LF to tell: look at it again next time.
            (None, _) | (Some(b'\r'), None) => return Ok(Search::Resume(lf)),
            _ => at = lf + 1,
        }
    }
}

/// `HTTP-version = "HTTP" "/" DIGIT "." DIGIT` (RFC 9112 §2.3), given the eight
/// bytes where it should stand (`None` if the line is shorter).
pub(super) fn parse_version(bytes: Option<&[u8]>) -> Result<Version, HttpError> {
    match bytes {
        Some([b'H', b'T', b'T', b'P', b'/', major, b'.', minor])
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                // RFC 9110 §6.2: a higher 1.x minor is read as the highest 1.x
                // spoken here.
                (b'1', _) => Ok(Version::Http11),
                // HTTP/2 and later do not use this text syntax; HTTP/0.x is gone.
                _ => Err(HttpError::VersionNotSupported),
            }
        }
        _ => Err(HttpError::InvalidVersion),
    }
}

/// Parses the field lines of `head` from `at` (just after the start line) up to
/// and including the empty line that ends the head, and returns the index just
/// past that line. Each field line is handed to `on_field` in order; an error from
/// it ends the parse.
///
/// Every line ends in CRLF, or in a bare LF only when [`Limits::allow_bare_lf`]
/// (RFC 9112 §2.2); a bare CR is refused whatever the setting. More than
/// [`Limits::max_headers`] lines: [`HttpError::HeadTooLarge`]. A `head` that ends
/// before its empty line (a head still arriving, parsed in one pass on the chance
/// that it is whole): [`HttpError::InvalidHeaderName`].
#[inline]
pub(super) fn parse_field_lines(
    head: &[u8],
    mut at: usize,
    limits: &Limits,
    mut on_field: impl FnMut(FieldSpan) -> Result<(), HttpError>,
) -> Result<usize, HttpError> {
    let allow_bare_lf = limits.allow_bare_lf;
    // RFC 9112 §2.2: whitespace between the start line and the first field line
    // MUST be rejected (or those lines ignored). Here: rejected.
    if matches!(head.get(at), Some(b' ' | b'\t')) {
        return Err(HttpError::WhitespaceAfterStartLine);
    }
    let mut count = 0;
    loop {
        match head.get(at) {
            // The empty line that ends the head (RFC 9112 §2.1, §2.2).
            Some(b'\n') if allow_bare_lf => return Ok(at + 1),
            Some(b'\n') => return Err(HttpError::BareLf),
            Some(b'\r') if head.get(at + 1) == Some(&b'\n') => return Ok(at + 2),
            Some(b'\r') => return Err(HttpError::BareCr),
            // RFC 9112 §5.2: a line that starts with whitespace continues the one
            // before it (obs-fold). A server MUST reject or unfold it; both parsers
            // here reject it (the response parser's module docs say why a client
            // does too).
            Some(b' ' | b'\t') => return Err(HttpError::ObsoleteFold),
            Some(_) => {}
            None => return Err(HttpError::InvalidHeaderName),
        }
        if count >= limits.max_headers {
            return Err(HttpError::HeadTooLarge);
        }
        let (field, next) = parse_field_line(head, at, allow_bare_lf)?;
        on_field(field)?;
        count += 1;
        at = next;
    }
}

/// Parses one `field-name ":" OWS field-value OWS` line starting at `head[at]`, and
/// returns its spans and the index of the next line. The line ends in CRLF, or in a
/// bare LF only when `allow_bare_lf` (RFC 9112 §2.2).
#[inline]
fn parse_field_line(
    head: &[u8],
    at: usize,
    allow_bare_lf: bool,
) -> Result<(FieldSpan, usize), HttpError> {
    // field-name = token (RFC 9110 §5.1)
    let name_start = at;
    let mut i = swar::token_end(head, at);
    let name_end = i;
    match head.get(i) {
        Some(b':') if name_end > name_start => i += 1,
        // RFC 9112 §5.1: no whitespace is allowed between the field name and colon;
        // a server MUST reject such a request with 400.
        Some(b' ' | b'\t') => return Err(HttpError::WhitespaceBeforeColon),
        Some(b'\r' | b'\n') => return Err(HttpError::MissingColon),
        Some(0) => return Err(HttpError::NulByte),
        _ => return Err(HttpError::InvalidHeaderName),
    }

    // OWS before the value.
    while matches!(head.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let value_start = i;
    let stop = swar::value_end(head, i);
    let next = match head.get(stop) {
        Some(b'\n') if allow_bare_lf => stop + 1,
        Some(b'\n') => return Err(HttpError::BareLf),
        Some(b'\r') if head.get(stop + 1) == Some(&b'\n') => stop + 2,
        Some(b'\r') => return Err(HttpError::BareCr),
        Some(0) => return Err(HttpError::NulByte),
        _ => return Err(HttpError::InvalidHeaderValue),
    };
    // OWS after the value is not part of it.
    let mut value_end = stop;
    while value_end > value_start && matches!(head[value_end - 1], b' ' | b'\t') {
        value_end -= 1;
    }
    Ok((
        FieldSpan {
            name: Span::new(name_start, name_end),
            value: Span::new(value_start, value_end),
        },
        next,
    ))
}

/// The `Content-Length` of a head, from all its lines.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ContentLength(pub(super) Option<u64>);

impl ContentLength {
    /// Reads one Content-Length field value. RFC 9110 §8.6: Content-Length =
    /// 1*DIGIT. A list of identical values ("5, 5") or repeated identical lines may
    /// be accepted as one; values that differ are an unrecoverable error (RFC 9112
    /// §6.3 rule 5).
    pub(super) fn note(&mut self, value: &[u8]) -> Result<(), HttpError> {
        for item in value.split(|&b| b == b',') {
            let n = parse_content_length(trim_ows(item))?;
            match self.0 {
                Some(prev) if prev != n => return Err(HttpError::ConflictingContentLength),
                _ => self.0 = Some(n),
            }
        }
        Ok(())
    }
}

/// `1*DIGIT`, with overflow checked (RFC 9110 §8.6: a recipient MUST anticipate
/// large numerals and prevent overflow).
fn parse_content_length(digits: &[u8]) -> Result<u64, HttpError> {
    if digits.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(HttpError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(HttpError::InvalidContentLength)?;
    }
    Ok(n)
}

/// The transfer codings of a head's `Transfer-Encoding` lines, as far as framing
/// needs them. What each direction makes of them is its own rule (RFC 9112 §6.3
/// rules 3 and 4).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct TransferCodings {
    /// How many times chunked was listed.
    pub(super) chunked_count: u32,
    /// The last coding listed is chunked.
    pub(super) last_is_chunked: bool,
    /// A coding other than chunked was listed.
    pub(super) other: bool,
}

impl TransferCodings {
    /// Reads one Transfer-Encoding field value. RFC 9112 §6.1: Transfer-Encoding =
    /// #transfer-coding; several lines form one list, in order.
    pub(super) fn note(&mut self, value: &[u8]) -> Result<(), HttpError> {
        if value.eq_ignore_ascii_case(b"chunked") {
            // The usual value, without walking a list.
            self.chunked_count += 1;
            self.last_is_chunked = true;
            return Ok(());
        }
        for item in value.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                continue;
            }
            // A coding may carry parameters ("gzip;q=1"): the name is first.
            let mut parts = item.split(|&b| b == b';');
            let coding = trim_ows(parts.next().unwrap_or(item));
            if coding.eq_ignore_ascii_case(b"chunked") {
                // RFC 9112 §7.1: chunked defines no parameters, and their presence
                // SHOULD be treated as an error. A peer or intermediary that drops
                // "chunked;x" as unknown while this parser reads it as chunked would
                // frame the body differently.
                if parts.next().is_some() {
                    return Err(HttpError::ChunkedWithParameters);
                }
                self.chunked_count += 1;
                self.last_is_chunked = true;
            } else {
                self.other = true;
                self.last_is_chunked = false;
            }
        }
        Ok(())
    }
}

/// Strips optional whitespace (SP / HTAB) from both ends.
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
