//! The response side, for a client: status line, header fields, and where the body
//! ends (RFC 9112 §4-§8).
//!
//! ```text
//! status-line   = HTTP-version SP status-code SP [ reason-phrase ]   ; RFC 9112 §4
//! status-code   = 3DIGIT
//! reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
//! field-line    = field-name ":" OWS field-value OWS                 ; §5
//! ```
//!
//! # Where a response ends
//!
//! A request's body is delimited by its own head alone: `Content-Length`, chunked,
//! or no body. A response's is harder, because its length can depend on the request
//! it answers, on the status code, and on the connection itself. RFC 9112 §6.3 lists
//! the rules in the order they apply, first match wins:
//!
//! 1. A response to **HEAD**, and every **1xx**, **204** and **304** response, ends
//!    with its head, whatever its fields say: a `Content-Length` there describes the
//!    body a GET would have had, not bytes that follow.
//! 2. A **2xx to CONNECT** (and, by RFC 9110 §15.2.2, a **101 Switching
//!    Protocols**) ends with its head too, and the bytes after it belong to another
//!    protocol: a tunnel, or the WebSocket frames after a handshake.
//! 3. **`Transfer-Encoding`** with chunked as the final coding: the body is chunked
//!    (§7.1), decoded here by the crate's [`BodyDecoder`]. With a Transfer-Encoding
//!    whose last coding is not chunked, the body runs until the server closes the
//!    connection.
//! 4. **`Content-Length`**: that many bytes (rule 6). An invalid value, or values
//!    that disagree, make the framing unknowable: an unrecoverable error (rule 5),
//!    and the client closes the connection.
//! 5. Otherwise the body is **close-delimited**: it runs until the server closes the
//!    connection (rule 8). This is HTTP/1.0's way, and the only one where the end
//!    of the connection is the end of the message.
//!
//! Two things follow. A 1xx other than 101 is *interim* (RFC 9110 §15.2): the real
//! response follows it on the same connection, so the client reads another head
//! (`100 Continue`, `103 Early Hints`). And end of input means different things per
//! framing (§8): for a close-delimited body it is the end of the message; inside a
//! Content-Length body, a chunked body or a head, it is a *truncated* response,
//! [`HttpError::TruncatedResponse`], never to be taken for a whole one.
//!
//! # Strictness
//!
//! The parser is the request parser's sibling ([`super::request`]): it shares that
//! parser's code for the field lines and the framing fields, and follows the same
//! rules: lines end in CRLF (a bare LF only with [`Limits::allow_bare_lf`]), a
//! bare CR is refused, field names are tokens, values hold no control bytes,
//! obsolete line folding is refused ([`HttpError::ObsoleteFold`]; RFC 9112 §5.2
//! asks a user agent to unfold it instead, which this parser does not do, as
//! httparse does not by default), the framing fields are checked whatever the
//! status (an invalid `Content-Length` on a 304 is refused too), and the head is
//! bounded by
//! [`Limits::max_head_bytes`] and [`Limits::max_headers`]. Both `Transfer-Encoding`
//! and `Content-Length` in one response is refused
//! ([`HttpError::ContentLengthWithTransferEncoding`]): §6.3 rule 3 lets
//! Transfer-Encoding win but says the message "ought to be handled as an error",
//! since it is how responses are split.
//!
//! # The two layers
//!
//! - [`ResponseParser`]: one head, fed the bytes so far; `Partial` (nothing
//!   consumed) until the empty line has arrived, then `Complete` with a
//!   [`ResponseHead`] view over the buffer that knows its [`ResponseFraming`]. The
//!   search for the empty line resumes where the last call stopped: O(n) however the
//!   head is split.
//! - [`ResponseReader`]: a whole response, as a caller wants it: interim heads, the
//!   final head, the body's pieces, then [`ResponseEvent::Complete`];
//!   [`ResponseReader::eof`] says whether the server closing the connection ended
//!   the response or cut it short.
//!
//! ```
//! use wirepatterns::http::response_parser::{ResponseEvent, ResponseReader};
//!
//! let bytes = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\n";
//! let mut reader = ResponseReader::new("GET");
//! let mut input = &bytes[..];
//! let mut body = Vec::new();
//! loop {
//!     let step = reader.read(input).unwrap();
//!     match step.event {
//!         Some(ResponseEvent::Head(head)) => assert_eq!(head.status(), 200),
//!         Some(ResponseEvent::Body(data)) => body.extend_from_slice(data),
//!         Some(ResponseEvent::Complete) => break,
//!         Some(ResponseEvent::Interim(_)) => unreachable!(),
//!         None => panic!("needs more bytes: read them, append, call again"),
//!     }
//!     input = &input[step.consumed..];
//! }
//! assert_eq!(body, b"Wiki");
//! ```

use super::body::BodyDecoder;
use super::error::HttpError;
use super::head::{self, ContentLength, FieldSpan, MAX_HEAD_BYTES, Search, Span, TransferCodings};
use super::request::{Framing, Header, Headers, Version};
use super::tables::swar;
use super::{Limits, Status};

/// How the body of a response is delimited, decided by RFC 9112 §6.3 from the
/// request's method, the status code and the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: the response ends with its head (§6.3 rule 1: a response to HEAD,
    /// or a 1xx, 204 or 304).
    NoBody,
    /// The connection now speaks another protocol (101 Switching Protocols, or a
    /// 2xx to CONNECT: §6.3 rule 2): the response ends with its head, and the bytes
    /// after it are not HTTP.
    Switched,
    /// `Transfer-Encoding` ending in chunked (§6.3 rule 3, §7.1).
    Chunked,
    /// `Content-Length: n` (§6.3 rule 6): exactly n bytes follow the head.
    Length(u64),
    /// Neither (§6.3 rule 8), or a Transfer-Encoding whose last coding is not chunked
    /// (rule 3): the body runs until the server closes the connection.
    UntilClose,
}

/// The parsed head, as offsets into the buffer it came from.
#[derive(Debug, Clone, Default)]
struct Parsed {
    version: Option<Version>,
    status: u16,
    reason: Span,
    fields: Vec<FieldSpan>,
    framing: Option<ResponseFraming>,
    /// Bytes from the start of the buffer to the end of the empty line.
    head_len: usize,
}

/// An incremental, sans-I/O parser for one response head.
///
/// Call [`ResponseParser::parse`] with everything received so far from the start
/// of the response; `Partial` consumes nothing. The request's method matters to the
/// framing (a response to HEAD has no body), so the parser is made for one.
///
/// ```
/// use wirepatterns::http::response_parser::{ResponseFraming, ResponseParser};
/// use wirepatterns::http::Status;
///
/// let bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
/// let mut parser = ResponseParser::new("GET");
/// assert!(parser.parse(&bytes[..20]).unwrap().is_partial());
/// let Status::Complete(head) = parser.parse(bytes).unwrap() else { panic!() };
/// assert_eq!((head.status(), head.reason()), (200, &b"OK"[..]));
/// assert_eq!(head.framing(), ResponseFraming::Length(5));
/// assert_eq!(&bytes[head.head_len()..], b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    /// The request was HEAD: no response to it has a body (§6.3 rule 1).
    head_request: bool,
    /// The request was CONNECT: a 2xx turns the connection into a tunnel (rule 2).
    connect_request: bool,
    /// How far the search for the end of the head has got: bytes before it are not
    /// searched again.
    searched_to: usize,
    /// Bytes looked at by the search, over this parser's life: the measure that
    /// shows the search is linear.
    bytes_searched: u64,
    /// The head of the last `Complete` parse.
    parsed: Parsed,
}

impl ResponseParser {
    /// A parser for the response to a request with `method`, with default limits.
    pub fn new(method: &str) -> ResponseParser {
        ResponseParser::with_limits(method, Limits::default())
    }

    /// A parser for the response to a request with `method` that enforces `limits`
    /// (the head's size and field count, bare LF).
    pub fn with_limits(method: &str, mut limits: Limits) -> ResponseParser {
        limits.max_head_bytes = limits.max_head_bytes.min(MAX_HEAD_BYTES);
        ResponseParser {
            limits,
            head_request: method == "HEAD",
            connect_request: method == "CONNECT",
            searched_to: 0,
            bytes_searched: 0,
            parsed: Parsed::default(),
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes the search for the end of the head has looked at, over this parser's
    /// life: below 3n for a head of n bytes, however it was split.
    pub fn bytes_searched(&self) -> u64 {
        self.bytes_searched
    }

    /// Forgets partial progress: the next call parses a new head at the front of its
    /// buffer. [`ResponseParser::parse`] does this itself after a `Complete` (the
    /// next head, after an interim 1xx, starts fresh).
    pub fn reset(&mut self) {
        self.searched_to = 0;
    }

    /// Parses the head at the front of `buf`.
    ///
    /// - `Ok(Status::Partial)`: not all there yet; nothing consumed. Call again with
    ///   the same bytes and more.
    /// - `Ok(Status::Complete(head))`: the head is `buf[..head.head_len()]`; what
    ///   follows is framed as [`ResponseHead::framing`] says.
    /// - `Err(e)`: the response breaks the rule `e` names; close the connection.
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Result<Status<ResponseHead<'a>>, HttpError> {
        let Some(end) = self.find_head_end(buf)? else {
            return Ok(Status::Partial);
        };
        self.reset();
        let head = buf.get(..end).unwrap_or_default();
        let parsed = parse_head(
            head,
            &self.limits,
            self.head_request,
            self.connect_request,
            &mut self.parsed,
        );
        if let Err(e) = parsed {
            // Half-filled: no `last_head` from it.
            self.parsed.version = None;
            return Err(e);
        }
        Ok(Status::Complete(ResponseHead {
            buf,
            parsed: &self.parsed,
        }))
    }

    /// The head of the last `Complete` parse, viewed over `buf` again (which must
    /// start with the same head bytes); `None` if there was none or `buf` is shorter.
    pub fn last_head<'a>(&'a self, buf: &'a [u8]) -> Option<ResponseHead<'a>> {
        if self.parsed.version.is_none() || buf.len() < self.parsed.head_len {
            return None;
        }
        Some(ResponseHead {
            buf,
            parsed: &self.parsed,
        })
    }

    /// Finds the index just past the empty line that ends the head, resuming where
    /// the last call stopped; enforces the size limit and rejects a buffer that
    /// cannot begin a status line without waiting for its end.
    fn find_head_end(&mut self, buf: &[u8]) -> Result<Option<usize>, HttpError> {
        check_version_prefix(buf)?;
        let search =
            head::find_empty_line(buf, self.searched_to, &mut self.bytes_searched, |_| Ok(()))?;
        match search {
            Search::Found(end) if end > self.limits.max_head_bytes => Err(HttpError::HeadTooLarge),
            Search::Found(end) => Ok(Some(end)),
            Search::Resume(_) if buf.len() > self.limits.max_head_bytes => {
                Err(HttpError::HeadTooLarge)
            }
            Search::Resume(at) => {
                self.searched_to = at;
                Ok(None)
            }
        }
    }
}

/// Rejects, as soon as its first bytes are in, a response that cannot begin with
/// `HTTP/` DIGIT `.` DIGIT: a server speaking another protocol gets its error at
/// once, not when the head limit is reached.
fn check_version_prefix(buf: &[u8]) -> Result<(), HttpError> {
    for (i, &b) in buf.iter().take(8).enumerate() {
        let ok = match i {
            0..=4 => b == b"HTTP/"[i],
            5 | 7 => b.is_ascii_digit(),
            _ => b == b'.',
        };
        if !ok {
            return Err(HttpError::InvalidVersion);
        }
    }
    Ok(())
}

/// Parses a whole head (status line, field lines, empty line) and decides its
/// framing.
fn parse_head(
    head: &[u8],
    limits: &Limits,
    head_request: bool,
    connect_request: bool,
    out: &mut Parsed,
) -> Result<(), HttpError> {
    out.fields.clear();
    out.version = None;
    out.framing = None;
    let at = parse_status_line(head, limits.allow_bare_lf, out)?;
    // The field lines and the empty line, by the request's grammar (RFC 9112 §5);
    // obs-fold is refused (§5.2, see the module docs). The search found the end,
    // so the parse reaches it.
    let mut facts = FieldFacts::default();
    let end = head::parse_field_lines(head, at, limits, |field| {
        facts.note(field.name.of(head), field.value.of(head))?;
        out.fields.push(field);
        Ok(())
    })?;
    out.head_len = end;
    out.framing = Some(facts.framing(out.status, head_request, connect_request)?);
    Ok(())
}

/// Parses `HTTP-version SP status-code SP [ reason-phrase ] CRLF` at the front of
/// `head` (RFC 9112 §4) and returns the index of the next line.
fn parse_status_line(
    head: &[u8],
    allow_bare_lf: bool,
    out: &mut Parsed,
) -> Result<usize, HttpError> {
    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (RFC 9112 §2.3). RFC 9110 §6.2: a
    // higher 1.x minor is read as the highest this client speaks; HTTP/2 and later
    // never send a text status line.
    let version = head::parse_version(head.get(..8))?;
    if head.get(8) != Some(&b' ') {
        return Err(HttpError::InvalidStatusLine);
    }
    // status-code = 3DIGIT (§4); RFC 9110 §15: values outside 100..599 are invalid.
    let status = match head.get(9..12) {
        Some(&[a, b, c]) if [a, b, c].iter().all(u8::is_ascii_digit) => [a, b, c]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')),
        _ => return Err(HttpError::InvalidStatusCode),
    };
    if !(100..=599).contains(&status) {
        return Err(HttpError::InvalidStatusCode);
    }
    // SP [ reason-phrase ]. The SP is in the grammar even when the reason is empty;
    // many servers leave it out with the reason ("HTTP/1.1 200\r\n"), and like
    // httparse this parser accepts that. A client SHOULD ignore the reason (§4).
    let mut at = 12;
    let reason_start;
    match head.get(at) {
        Some(b' ') => {
            at += 1;
            reason_start = at;
            // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the bytes a field
            // value may hold, so the field value scan finds where it stops.
            at = swar::value_end(head, at);
        }
        Some(b'\r' | b'\n') => reason_start = at,
        // A fourth digit, or anything else glued to the code.
        Some(_) | None => return Err(HttpError::InvalidStatusCode),
    }
    let reason_end = at;
    let next = match (head.get(at), head.get(at + 1)) {
        (Some(b'\r'), Some(b'\n')) => at + 2,
        (Some(b'\r'), _) => return Err(HttpError::BareCr),
        (Some(b'\n'), _) if allow_bare_lf => at + 1,
        (Some(b'\n'), _) => return Err(HttpError::BareLf),
        // A control byte in the reason phrase.
        _ => return Err(HttpError::InvalidStatusLine),
    };
    out.version = Some(version);
    out.status = status;
    out.reason = Span::new(reason_start, reason_end);
    Ok(next)
}

/// What the framing fields said, gathered while the field lines are parsed.
#[derive(Debug, Default)]
struct FieldFacts {
    content_length: ContentLength,
    /// Transfer-Encoding seen: the codings it listed.
    transfer_encoding: Option<TransferCodings>,
}

impl FieldFacts {
    fn note(&mut self, name: &[u8], value: &[u8]) -> Result<(), HttpError> {
        if name.eq_ignore_ascii_case(b"content-length") {
            // RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values may
            // be taken as one, values that differ are an unrecoverable error
            // (RFC 9112 §6.3 rule 5).
            self.content_length.note(value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // RFC 9112 §6.1: Transfer-Encoding = #transfer-coding; several lines form
            // one list, in order. RFC 9112 §7.1: chunked defines no parameters.
            self.transfer_encoding.get_or_insert_default().note(value)?;
        }
        Ok(())
    }

    /// RFC 9112 §6.3, the rules in order.
    fn framing(
        &self,
        status: u16,
        head_request: bool,
        connect_request: bool,
    ) -> Result<ResponseFraming, HttpError> {
        // Rule 2 for 101 (RFC 9110 §15.2.2: the protocol changes right after the
        // empty line), checked first since 101 is also a 1xx.
        if status == 101 || (connect_request && (200..300).contains(&status)) {
            return Ok(ResponseFraming::Switched);
        }
        // Rule 1: HEAD, 1xx, 204, 304: no body, whatever the fields say.
        if head_request || status < 200 || status == 204 || status == 304 {
            return Ok(ResponseFraming::NoBody);
        }
        if let Some(te) = self.transfer_encoding {
            // Rule 3: both is how responses are split; "ought to be handled as an
            // error".
            if self.content_length.0.is_some() {
                return Err(HttpError::ContentLengthWithTransferEncoding);
            }
            // §6.1: chunked MUST NOT be applied more than once.
            if te.chunked_count > 1 {
                return Err(HttpError::ChunkedNotLast);
            }
            // Rule 3: chunked last, or else read until the server closes.
            return Ok(if te.last_is_chunked {
                ResponseFraming::Chunked
            } else {
                ResponseFraming::UntilClose
            });
        }
        Ok(match self.content_length.0 {
            // Rule 6.
            Some(n) => ResponseFraming::Length(n),
            // Rule 8.
            None => ResponseFraming::UntilClose,
        })
    }
}

/// A parsed response head: a view over the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    buf: &'a [u8],
    parsed: &'a Parsed,
}

impl<'a> ResponseHead<'a> {
    /// The HTTP version of the status line.
    pub fn version(&self) -> Version {
        self.parsed.version.unwrap_or(Version::Http11)
    }

    /// The status code, 100 to 599.
    pub fn status(&self) -> u16 {
        self.parsed.status
    }

    /// The reason phrase, possibly empty. Bytes, since it may hold obs-text; a
    /// client SHOULD ignore it (RFC 9112 §4).
    pub fn reason(&self) -> &'a [u8] {
        self.parsed.reason.of(self.buf)
    }

    /// The header fields in the order received.
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + 'a {
        Headers::new(self.buf, &self.parsed.fields)
    }

    /// How many header fields there are.
    pub fn header_count(&self) -> usize {
        self.parsed.fields.len()
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The head's length in bytes, the empty line included.
    pub fn head_len(&self) -> usize {
        self.parsed.head_len
    }

    /// The head's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf.get(..self.parsed.head_len).unwrap_or_default()
    }

    /// How the body that follows is delimited (RFC 9112 §6.3).
    pub fn framing(&self) -> ResponseFraming {
        self.parsed.framing.unwrap_or(ResponseFraming::UntilClose)
    }

    /// A 1xx other than 101: interim; the final response follows (RFC 9110 §15.2).
    pub fn is_interim(&self) -> bool {
        self.parsed.status < 200 && self.parsed.status != 101
    }
}

/// What one [`ResponseReader::read`] call found.
#[derive(Debug, Clone, Copy)]
pub enum ResponseEvent<'a> {
    /// An interim 1xx head (not 101); another head follows.
    Interim(ResponseHead<'a>),
    /// The final response's head.
    Head(ResponseHead<'a>),
    /// A piece of the body, decoded (chunk framing removed).
    Body(&'a [u8]),
    /// The response is complete. Bytes after it belong to the next response on the
    /// connection or, after [`ResponseFraming::Switched`], to the new protocol.
    Complete,
}

/// What one [`ResponseReader::read`] call did.
#[derive(Debug, Clone, Copy)]
pub struct ResponseStep<'a> {
    /// How many input bytes were used; remove them before the next call.
    pub consumed: usize,
    /// What they completed, or `None`: read more bytes, append them to what was not
    /// consumed, and call again.
    pub event: Option<ResponseEvent<'a>>,
}

/// Where a [`ResponseReader`] is.
#[derive(Debug, Clone)]
enum ReaderState {
    /// Reading a head (the first, or the one after an interim 1xx).
    Head,
    /// Reading a Content-Length or chunked body.
    Body(Box<BodyDecoder>),
    /// Reading a close-delimited body; this many bytes so far.
    UntilClose(u64),
    /// The message has ended; [`ResponseEvent::Complete`] is next.
    Ended,
    /// `Complete` was returned.
    Complete,
}

/// A whole response, sans-I/O: feed it the bytes as they arrive; it hands out the
/// interim heads, the final head, the body's pieces and the end. Call
/// [`ResponseReader::eof`] when the server closes the connection.
#[derive(Debug, Clone)]
pub struct ResponseReader {
    parser: ResponseParser,
    state: ReaderState,
    /// Interim heads read so far.
    interim: u32,
    /// The trailer fields of a chunked body, once it is complete.
    trailers: Vec<(String, Vec<u8>)>,
}

/// The most interim (1xx) heads accepted before the final one: a server that sends
/// them forever would otherwise hold the client forever.
pub const MAX_INTERIM_RESPONSES: u32 = 32;

impl ResponseReader {
    /// A reader for the response to a request with `method`, default limits.
    pub fn new(method: &str) -> ResponseReader {
        ResponseReader::with_limits(method, Limits::default())
    }

    /// A reader for the response to a request with `method` that enforces `limits`
    /// (head size and field count, body size, chunk lines and trailers).
    pub fn with_limits(method: &str, limits: Limits) -> ResponseReader {
        ResponseReader {
            parser: ResponseParser::with_limits(method, limits),
            state: ReaderState::Head,
            interim: 0,
            trailers: Vec::new(),
        }
    }

    /// The final head, viewed over `buf`, which must start with it (for a caller that
    /// keeps the head's bytes at the front of its buffer).
    pub fn last_head<'a>(&'a self, buf: &'a [u8]) -> Option<ResponseHead<'a>> {
        self.parser.last_head(buf)
    }

    /// Whether [`ResponseEvent::Complete`] has been returned.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, ReaderState::Complete)
    }

    /// The trailer fields of a chunked body, once it is complete.
    pub fn trailers(&self) -> &[(String, Vec<u8>)] {
        &self.trailers
    }

    /// Reads from the front of `input`, the bytes received and not yet consumed.
    pub fn read<'a>(&'a mut self, input: &'a [u8]) -> Result<ResponseStep<'a>, HttpError> {
        let limits = *self.parser.limits();
        match &mut self.state {
            ReaderState::Head => {
                let (framing, interim) = match self.parser.parse(input)? {
                    Status::Partial => return Ok(need_more()),
                    Status::Complete(head) => (head.framing(), head.is_interim()),
                };
                if interim {
                    self.interim += 1;
                    if self.interim > MAX_INTERIM_RESPONSES {
                        return Err(HttpError::HeadTooLarge);
                    }
                } else {
                    self.state = match framing {
                        ResponseFraming::NoBody | ResponseFraming::Switched => ReaderState::Ended,
                        ResponseFraming::Chunked => ReaderState::Body(Box::new(BodyDecoder::new(
                            Framing::Chunked,
                            &limits,
                        )?)),
                        ResponseFraming::Length(n) => ReaderState::Body(Box::new(
                            BodyDecoder::new(Framing::Length(n), &limits)?,
                        )),
                        ResponseFraming::UntilClose => ReaderState::UntilClose(0),
                    };
                }
                let head = self
                    .parser
                    .last_head(input)
                    .ok_or(HttpError::InvalidStatusLine)?;
                let consumed = head.head_len();
                let event = if interim {
                    ResponseEvent::Interim(head)
                } else {
                    ResponseEvent::Head(head)
                };
                Ok(ResponseStep {
                    consumed,
                    event: Some(event),
                })
            }
            ReaderState::Body(decoder) => {
                let mut used = 0;
                // Framing bytes alone (a chunk-size line) produce no data: go on to
                // the data or the end in the same call.
                let (data, done) = loop {
                    let rest = input.get(used..).unwrap_or_default();
                    let step = decoder.decode(rest)?;
                    used += step.consumed;
                    if step.done || !step.data.is_empty() || step.consumed == 0 {
                        break (step.data, step.done);
                    }
                };
                if done {
                    self.trailers = decoder.trailers().to_vec();
                    self.state = ReaderState::Ended;
                }
                let event = if !data.is_empty() {
                    // With the last data, `Complete` comes on the next call.
                    Some(ResponseEvent::Body(data))
                } else if done {
                    self.state = ReaderState::Complete;
                    Some(ResponseEvent::Complete)
                } else {
                    None
                };
                Ok(ResponseStep {
                    consumed: used,
                    event,
                })
            }
            ReaderState::UntilClose(total) => {
                if input.is_empty() {
                    return Ok(need_more());
                }
                *total = total
                    .checked_add(input.len() as u64)
                    .filter(|&t| t <= limits.max_body_bytes)
                    .ok_or(HttpError::BodyTooLarge)?;
                Ok(ResponseStep {
                    consumed: input.len(),
                    event: Some(ResponseEvent::Body(input)),
                })
            }
            ReaderState::Ended | ReaderState::Complete => {
                self.state = ReaderState::Complete;
                Ok(ResponseStep {
                    consumed: 0,
                    event: Some(ResponseEvent::Complete),
                })
            }
        }
    }

    /// The server closed the connection (a read returned 0). `Ok(())` if that ends
    /// the response: a close-delimited body ends here (RFC 9112 §6.3 rule 8), and
    /// a response already complete is unaffected. Inside a head, a Content-Length
    /// body or a chunked body it is [`HttpError::TruncatedResponse`] (RFC 9112 §8).
    /// After `Ok`, the next [`ResponseReader::read`] returns
    /// [`ResponseEvent::Complete`] if it has not been returned yet.
    pub fn eof(&mut self) -> Result<(), HttpError> {
        match &self.state {
            ReaderState::UntilClose(_) => {
                self.state = ReaderState::Ended;
                Ok(())
            }
            ReaderState::Ended | ReaderState::Complete => Ok(()),
            ReaderState::Head | ReaderState::Body(_) => Err(HttpError::TruncatedResponse),
        }
    }
}

fn need_more<'a>() -> ResponseStep<'a> {
    ResponseStep {
        consumed: 0,
        event: None,
    }
}
