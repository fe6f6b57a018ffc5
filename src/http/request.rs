//! The request head: start line and header fields (RFC 9112 §2-§6).
//!
//! ```text
//! request-line   = method SP request-target SP HTTP-version       ; §3
//! HTTP-version   = "HTTP" "/" DIGIT "." DIGIT                      ; §2.3
//! field-line     = field-name ":" OWS field-value OWS              ; §5
//! ```
//!
//! # How the parser works
//!
//! Parsing happens in two steps.
//!
//! 1. **Find the end of the head.** The head ends at the first empty line. Bytes arrive
//!    in pieces, so the parser searches only the bytes it has not searched before and
//!    remembers how far it got ([`RequestParser`] keeps `searched_to`). A head that
//!    comes one byte per read is then searched once in all: O(n), not O(n²). (Starting
//!    the search from the front on every read is how a 20 MB header once cost
//!    tungstenite minutes of CPU: CVE-2023-43669.) While searching, the parser also
//!    enforces the size limits, so a client cannot make it buffer without bound.
//! 2. **Parse the head in one pass**, now that it is all there: the request line, then
//!    each field line, checking every byte against the grammar and remembering where
//!    each piece starts and ends. The fields that decide framing and connection
//!    handling (`Host`, `Content-Length`, `Transfer-Encoding`, `Connection`, `Expect`)
//!    are interpreted on the way.
//!
//! Most heads arrive whole in one read. So the first call for each request tries step
//! 2 straight away, on everything it was given: if the parse reaches the empty line,
//! the head is complete and was read once. If not (the head is still arriving, or
//! breaks a rule), the call goes on with step 1 as above, and so do the later calls:
//! the first read's bytes are looked at twice at most, and the total stays O(n).
//!
//! The parsed head is kept as offsets into the buffer (not copies), and [`Request`]
//! is a view that pairs those offsets with the buffer: `request.method()` is a
//! `&str` that points into the bytes that came off the socket.
//!
//! # Line endings
//!
//! Every line of the head ends in CRLF (RFC 9112 §2.1). §2.2 lets a recipient also
//! accept a bare LF as a line terminator, and many servers (and httparse) do. This
//! parser does not, by default: a head with a line ended by a bare LF (a leading
//! empty line, the request line, a field line or the empty line that ends the head)
//! is answered 400 ([`HttpError::BareLf`]).
//!
//! The reason is request smuggling. A request usually passes through a proxy or load
//! balancer before it reaches the server, and the two must agree on where each line,
//! and so the head and the body, end. If the front end ends lines only at CRLF and
//! the back end also at LF, a bare LF inside what the front end took for one field
//! value is, to the back end, the start of another field line: a
//! `Transfer-Encoding` or `Content-Length` the front end never saw, and with it a
//! different body length and a second request hidden in the first one's body. A
//! server that refuses a bare LF cannot be on the lenient side of that disagreement.
//! Where no such front end exists and old clients send bare LFs, set
//! [`Limits::allow_bare_lf`] (a MAY of §2.2, so still conforming).
//!
//! A bare CR, a CR not followed by LF, is rejected whatever the setting: it is the
//! same kind of disagreement the other way round. Empty lines (CRLF) before the request
//! line are skipped (§2.2: SHOULD ignore at least one). The chunked body's lines are
//! CRLF-only whatever the setting (RFC 9112 §7.1, see [`super::body`]).

use super::error::HttpError;
use super::head::{
    self, ContentLength, FieldSpan, MAX_HEAD_BYTES, Search, Span, TransferCodings, trim_ows,
};
use super::tables::{REG_NAME, is_tchar, swar};
use super::{Limits, Status};

/// Extra bytes, beyond the longest allowed target, that a request line may take for
/// its method, spaces and version before the parser answers 414 without waiting for
/// the line to end.
const REQUEST_LINE_SLACK: usize = 64;

/// The HTTP version of a request (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client asks to
    /// keep them.
    Http10,
    /// HTTP/1.1 (and any HTTP/1.x with x >= 1, answered as 1.1 per RFC 9110 §6.2):
    /// connections persist unless either side says `Connection: close`.
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// The four forms a request-target can take (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: the usual form, for a request to an origin server (§3.2.1).
    Origin,
    /// `http://host/path`: a whole URI, as sent to proxies (§3.2.2).
    Absolute,
    /// `host:port`: only with CONNECT (§3.2.3).
    Authority,
    /// `*`: only with OPTIONS, meaning the server as a whole (§3.2.4).
    Asterisk,
}

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither Content-Length nor Transfer-Encoding: the request has no body.
    None,
    /// `Content-Length: n`: exactly n bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`: a series of chunks, ended by a zero-size chunk.
    Chunked,
}

/// One header field line, borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'b> {
    /// The field name as sent (names are case-insensitive: compare with
    /// `eq_ignore_ascii_case`).
    pub name: &'b str,
    /// The field value, with leading and trailing whitespace removed. Values may hold
    /// obs-text (bytes >= 0x80), so they are bytes, not `str`.
    pub value: &'b [u8],
}

/// The parsed head, as offsets into the buffer it came from.
#[derive(Debug, Clone, Default)]
struct Parsed {
    method: Span,
    target: Span,
    version: Option<Version>,
    form: Option<TargetForm>,
    fields: Vec<FieldSpan>,
    host: Option<usize>,
    framing: Option<Framing>,
    keep_alive: bool,
    expect_continue: bool,
    /// Bytes from the start of the buffer to the end of the empty line.
    head_len: usize,
}

/// An incremental, sans-I/O parser for request heads.
///
/// Keep one per connection. Call [`RequestParser::parse`] with everything received
/// so far that has not been consumed; after a `Complete(request)`, the caller
/// removes `request.head_len()` bytes (and the body) from the front and the parser
/// is ready for the next request on the same connection (pipelining).
///
/// ```
/// use wirepatterns::http::{RequestParser, Status};
///
/// let mut parser = RequestParser::default();
/// let bytes = b"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n";
/// assert_eq!(parser.parse(&bytes[..10]).unwrap().is_partial(), true);
/// match parser.parse(bytes).unwrap() {
///     Status::Complete(req) => {
///         assert_eq!(req.method(), "GET");
///         assert_eq!(req.target(), "/hello");
///         assert_eq!(req.header("host"), Some(&b"example.com"[..]));
///         assert_eq!(req.head_len(), bytes.len());
///     }
///     Status::Partial => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    /// How far the search for the end of the head has got: bytes before this index
    /// were searched by an earlier call and are not searched again.
    searched_to: usize,
    /// How many bytes of empty lines before the request line have been skipped
    /// (RFC 9112 §2.2); the skip resumes here, so it too is O(n) in all.
    skipped_to: usize,
    /// Bytes looked at by the search for the end of the head, over this parser's
    /// life: the measure that proves the search is linear.
    bytes_searched: u64,
    /// Whether the request line's LF has been seen (for the early 414 check).
    request_line_ended: bool,
    /// Whether this request's first read was already tried as a whole head.
    tried_whole: bool,
    /// The head of the last `Complete` parse.
    parsed: Parsed,
}

impl Default for RequestParser {
    fn default() -> Self {
        RequestParser::new(Limits::default())
    }
}

impl RequestParser {
    /// A parser that enforces `limits`.
    pub fn new(mut limits: Limits) -> RequestParser {
        limits.max_head_bytes = limits.max_head_bytes.min(MAX_HEAD_BYTES);
        RequestParser {
            limits,
            searched_to: 0,
            skipped_to: 0,
            bytes_searched: 0,
            request_line_ended: false,
            tried_whole: false,
            parsed: Parsed::default(),
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partial progress, ready for a new request at the front of the
    /// buffer. [`RequestParser::parse`] does this itself after a `Complete`.
    pub fn reset(&mut self) {
        self.searched_to = 0;
        self.skipped_to = 0;
        self.request_line_ended = false;
        self.tried_whole = false;
    }

    /// Bytes the search for the end of the head has looked at, over this parser's
    /// life (empty lines skipped included). For a head of n bytes fed in any number
    /// of pieces this stays below 3n: each byte is searched once, plus at most two
    /// bytes after an LF that are looked at again when the next piece arrives.
    pub fn bytes_searched(&self) -> u64 {
        self.bytes_searched
    }

    /// Parses the head at the front of `buf`.
    ///
    /// - `Ok(Status::Partial)`: not all there yet; nothing consumed. Call again with
    ///   the same bytes and more.
    /// - `Ok(Status::Complete(request))`: the head is `buf[..request.head_len()]`;
    ///   the body, if any, starts right after it.
    /// - `Err(e)`: the request breaks a rule; `e.status()` is the answer.
    ///
    /// `buf` must start where the previous call's buffer started (same request),
    /// with any new bytes appended; after a `Complete`, the next request starts fresh.
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> Result<Status<Request<'a>>, HttpError> {
        if !self.tried_whole {
            // Most heads arrive whole in one read: parse them in one pass, without a
            // separate search for the empty line first. If the head is not all there
            // (or breaks a rule), fall back to the resumable search below, which is
            // how every later call on this request goes: the bytes of the first read
            // are looked at at most twice more, so the total stays O(n).
            self.tried_whole = true;
            let parsed = skip_empty_lines(buf).and_then(|start| {
                let end = parse_head(buf, start, &self.limits, &mut self.parsed).ok()?;
                (end - start <= self.limits.max_head_bytes).then_some(end)
            });
            if let Some(end) = parsed {
                self.bytes_searched += end as u64;
                self.reset();
                return Ok(Status::Complete(Request {
                    buf,
                    parsed: &self.parsed,
                }));
            }
            // At most the whole buffer was looked at.
            self.bytes_searched += buf.len() as u64;
        }
        match self.find_head_end(buf)? {
            None => Ok(Status::Partial),
            Some((start, end)) => {
                self.reset();
                let head = buf.get(..end).ok_or(HttpError::InvalidRequestLine)?;
                let parsed_end = parse_head(head, start, &self.limits, &mut self.parsed)?;
                debug_assert_eq!(parsed_end, end);
                Ok(Status::Complete(Request {
                    buf,
                    parsed: &self.parsed,
                }))
            }
        }
    }

    /// The head of the last `Complete` parse, viewed over `buf` again. The driver
    /// uses this when the body arrives in later reads: `buf` must still start with
    /// the same head bytes. Returns `None` if `buf` is too short to hold that head.
    pub fn last_request<'a>(&'a self, buf: &'a [u8]) -> Option<Request<'a>> {
        if self.parsed.version.is_none() || buf.len() < self.parsed.head_len {
            return None;
        }
        Some(Request {
            buf,
            parsed: &self.parsed,
        })
    }

    /// Step 1: find where the head ends. Returns the start of the request line
    /// (after skipped empty lines) and the index just past the empty line.
    fn find_head_end(&mut self, buf: &[u8]) -> Result<Option<(usize, usize)>, HttpError> {
        // RFC 9112 §2.2: skip empty lines (CRLF or LF) before the request line,
        // resuming where the last call stopped.
        let mut start = self.skipped_to;
        loop {
            match (buf.get(start), buf.get(start + 1)) {
                (Some(b'\n'), _) => start += 1,
                (Some(b'\r'), Some(b'\n')) => start += 2,
                _ => break,
            }
        }
        self.bytes_searched += (start - self.skipped_to) as u64;
        self.skipped_to = start;
        let searched_before = self.searched_to;
        let max_line = self.limits.max_target_bytes + REQUEST_LINE_SLACK;
        let request_line_ended = &mut self.request_line_ended;
        let search = head::find_empty_line(
            buf,
            self.searched_to.max(start),
            &mut self.bytes_searched,
            |lf| {
                // The first LF ends the request line: bound it now (414).
                if !*request_line_ended {
                    *request_line_ended = true;
                    if lf - start > max_line {
                        return Err(HttpError::TargetTooLong);
                    }
                }
                Ok(())
            },
        )?;
        let at = match search {
            Search::Found(end) if end - start > self.limits.max_head_bytes => {
                return Err(HttpError::HeadTooLarge);
            }
            Search::Found(end) => return Ok(Some((start, end))),
            Search::Resume(at) => at,
        };
        // Everything before `at` has been searched: the next call starts there.
        self.searched_to = at;
        let pending = buf.len() - start;
        if !self.request_line_ended && pending > self.limits.max_target_bytes + REQUEST_LINE_SLACK {
            return Err(HttpError::TargetTooLong);
        }
        // Too big a head, or nothing but empty lines and too many of them.
        if pending > self.limits.max_head_bytes || start > self.limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge);
        }
        // The method's first bytes are checked once: a call whose search already
        // went past them had them all in its buffer, and they have not changed.
        if searched_before < start + METHOD_PREFIX_CHECK {
            check_method_prefix(buf.get(start..).unwrap_or_default())?;
        }
        Ok(None)
    }
}

/// How many bytes of a partial request line are checked for a valid method.
const METHOD_PREFIX_CHECK: usize = 32;

/// Rejects a request whose first bytes cannot begin a request line, without
/// waiting for the head to end: a client speaking another protocol (a TLS
/// ClientHello starts with byte 0x16) or sending binary garbage gets its 400 at
/// once instead of at the header timeout. Only the first few bytes are looked at, so
/// this costs a bounded amount per call.
fn check_method_prefix(line: &[u8]) -> Result<(), HttpError> {
    for (i, &b) in line.iter().take(METHOD_PREFIX_CHECK).enumerate() {
        match b {
            // method = token, ended by SP (RFC 9112 §3).
            b' ' | b'\t' if i == 0 => return Err(HttpError::InvalidRequestLine),
            b' ' => return Ok(()),
            // A line ending (or the CR of an empty line before the request line):
            // the full parse decides.
            b'\r' | b'\n' => return Ok(()),
            _ if is_tchar(b) => {}
            _ => return Err(HttpError::InvalidMethod),
        }
    }
    Ok(())
}

/// Step 2: parse the head that starts at `buf[start]` up to and including its empty
/// line, and return the index just past that line.
fn parse_head(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    out: &mut Parsed,
) -> Result<usize, HttpError> {
    out.fields.clear();
    out.host = None;
    out.version = None;
    let allow_bare_lf = limits.allow_bare_lf;

    let head = buf;
    let at = parse_request_line(head, start, limits, out)?;

    // RFC 9112 §2.2: the empty lines skipped before the request line are CRLF too,
    // unless a bare LF is allowed. Checked after the request line, so that a bad
    // method gets the same answer here as from the early check of a head that is
    // still arriving (`check_method_prefix`).
    if !allow_bare_lf && has_bare_lf(buf.get(..start).unwrap_or_default()) {
        return Err(HttpError::BareLf);
    }

    // The field lines and the empty line: the grammar both directions share
    // (RFC 9112 §5, obs-fold refused per §5.2, at most `max_headers` lines).
    let mut fields = FieldFacts::default();
    let end = head::parse_field_lines(head, at, limits, |field| {
        fields.note(head, &field, out.fields.len(), out)?;
        out.fields.push(field);
        Ok(())
    })?;
    out.head_len = end;
    fields.finish(out)?;
    Ok(end)
}

/// Whether `bytes` hold an LF that no CR comes right before (RFC 9112 §2.2).
fn has_bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// Where the request line starts: after any empty lines (RFC 9112 §2.2). `None` if
/// the buffer holds nothing else yet.
fn skip_empty_lines(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        match buf.get(start)? {
            b'\n' => start += 1,
            b'\r' if buf.get(start + 1) == Some(&b'\n') => start += 2,
            _ => return Some(start),
        }
    }
}

/// Parses `method SP request-target SP HTTP-version CRLF` from `head[at..]`, and
/// returns the index of the next line.
fn parse_request_line(
    head: &[u8],
    mut at: usize,
    limits: &Limits,
    out: &mut Parsed,
) -> Result<usize, HttpError> {
    let start_of_line = at;
    // method = token (RFC 9110 §9.1)
    let method_start = at;
    while head.get(at).is_some_and(|&b| is_tchar(b)) {
        at += 1;
    }
    let method_end = at;
    match head.get(at) {
        Some(b' ') if method_end > method_start => at += 1,
        Some(b'\r' | b'\n') if method_end > method_start => {
            return Err(HttpError::InvalidRequestLine);
        }
        Some(b' ' | b'\t') if method_end == method_start => {
            return Err(HttpError::InvalidRequestLine);
        }
        _ => return Err(HttpError::InvalidMethod),
    }

    // request-target: everything up to the next SP (RFC 9112 §3.2).
    let target_start = at;
    let target_end = swar::target_end(head, at);
    if target_end == target_start {
        return Err(HttpError::InvalidTarget);
    }
    if target_end - target_start > limits.max_target_bytes {
        return Err(HttpError::TargetTooLong);
    }
    match head.get(target_end) {
        Some(b' ') => at = target_end + 1,
        Some(b'\r' | b'\n') => return Err(HttpError::InvalidRequestLine),
        _ => return Err(HttpError::InvalidTarget),
    }

    // HTTP-version = "HTTP" "/" DIGIT "." DIGIT (RFC 9112 §2.3), then CRLF or LF.
    // RFC 9110 §6.2: a 1.x request with a higher minor is answered as the highest
    // 1.x this server speaks.
    let version = head::parse_version(head.get(at..at + 8))?;
    at += 8;
    at = line_end(head, at, limits.allow_bare_lf).ok_or(match head.get(at) {
        Some(b'\r') => HttpError::BareCr,
        // RFC 9112 §2.2: a bare LF ends the line only if allowed.
        Some(b'\n') => HttpError::BareLf,
        Some(b' ' | b'\t') => HttpError::InvalidRequestLine,
        _ => HttpError::InvalidVersion,
    })?;
    // The same bound the search for the head's end applies to the request line
    // (`at - 1` is its LF), checked here too for a head parsed in one pass.
    if at - 1 - start_of_line > limits.max_target_bytes + REQUEST_LINE_SLACK {
        return Err(HttpError::TargetTooLong);
    }

    let method = &head[method_start..method_end];
    let target = &head[target_start..target_end];
    let form = target_form(method, target)?;

    out.method = Span::new(method_start, method_end);
    out.target = Span::new(target_start, target_end);
    out.version = Some(version);
    out.form = Some(form);
    Ok(at)
}

/// If `head[at..]` starts with CRLF (or a bare LF, when `allow_bare_lf`), the index
/// just past it.
#[inline]
fn line_end(head: &[u8], at: usize, allow_bare_lf: bool) -> Option<usize> {
    match head.get(at) {
        Some(b'\n') if allow_bare_lf => Some(at + 1),
        Some(b'\r') if head.get(at + 1) == Some(&b'\n') => Some(at + 2),
        _ => None,
    }
}

/// Classifies a request-target and checks it fits the method (RFC 9112 §3.2).
fn target_form(method: &[u8], target: &[u8]) -> Result<TargetForm, HttpError> {
    let is_connect = method == b"CONNECT";
    let form = if target.first() == Some(&b'/') {
        TargetForm::Origin
    } else if target == b"*" {
        TargetForm::Asterisk
    } else if is_absolute_uri(target) {
        TargetForm::Absolute
    } else if is_connect {
        TargetForm::Authority
    } else {
        return Err(HttpError::InvalidTarget);
    };
    let fits = match form {
        // §3.2.3: authority-form is only used for CONNECT, and CONNECT uses only it.
        TargetForm::Authority => is_connect,
        // §3.2.4: asterisk-form is only used for a server-wide OPTIONS.
        TargetForm::Asterisk => method == b"OPTIONS",
        TargetForm::Origin | TargetForm::Absolute => !is_connect,
    };
    if !fits {
        return Err(HttpError::TargetFormMismatch);
    }
    // §3.2.3: authority-form = uri-host ":" port. A CONNECT target that is not the
    // other forms must be this one, port included.
    if form == TargetForm::Authority && !matches!(split_host_port(target), Some((_, Some(_)))) {
        return Err(HttpError::InvalidTarget);
    }
    Ok(form)
}

/// `scheme "://" ...`, where scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
/// (RFC 3986 §3.1).
fn is_absolute_uri(target: &[u8]) -> bool {
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &target[..colon];
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && target[colon..].starts_with(b"://")
}

/// What the fields that matter to the server itself said, gathered while the
/// field lines are parsed.
#[derive(Default)]
struct FieldFacts {
    content_length: ContentLength,
    /// Transfer-Encoding seen: the codings it listed.
    transfer_encoding: Option<TransferCodings>,
    connection_close: bool,
    connection_keep_alive: bool,
    expect_continue: bool,
}

impl FieldFacts {
    /// Interprets one field line if its name is one the server acts on.
    #[inline]
    fn note(
        &mut self,
        head: &[u8],
        field: &FieldSpan,
        index: usize,
        out: &mut Parsed,
    ) -> Result<(), HttpError> {
        // Dispatch on length first: most fields are none of these, and this rejects
        // them before the name is even looked at.
        if !matches!(field.name.end - field.name.start, 4 | 6 | 10 | 14 | 17) {
            return Ok(());
        }
        let name = field.name.of(head);
        let value = field.value.of(head);
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                // RFC 9112 §3.2: a request with more than one Host field: 400.
                if out.host.is_some() {
                    return Err(HttpError::DuplicateHost);
                }
                if !is_valid_host(value) {
                    return Err(HttpError::InvalidHost);
                }
                out.host = Some(index);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                // RFC 9110 §8.6, RFC 9112 §6.3 rule 5: equal values are one, values
                // that differ are an error.
                self.content_length.note(value)?;
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // RFC 9112 §6.1: several lines form one list, in order; RFC 9112
                // §7.1: "chunked;x" is refused (400), since a front end that drops it
                // as unknown would frame the body differently.
                self.transfer_encoding.get_or_insert_default().note(value)?;
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                // RFC 9110 §7.6.1: Connection = #connection-option.
                for option in value.split(|&b| b == b',') {
                    let option = trim_ows(option);
                    if option.eq_ignore_ascii_case(b"close") {
                        self.connection_close = true;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        self.connection_keep_alive = true;
                    }
                }
            }
            // RFC 9110 §10.1.1: the only expectation defined is 100-continue.
            6 if name.eq_ignore_ascii_case(b"expect")
                && trim_ows(value).eq_ignore_ascii_case(b"100-continue") =>
            {
                self.expect_continue = true;
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies the rules that need all the fields: Host presence, body framing and
    /// persistence.
    fn finish(self, out: &mut Parsed) -> Result<(), HttpError> {
        let version = out.version.unwrap_or(Version::Http11);
        // RFC 9112 §3.2: an HTTP/1.1 request without Host: 400.
        if version == Version::Http11 && out.host.is_none() {
            return Err(HttpError::MissingHost);
        }

        // RFC 9112 §6.3: how long is the body?
        let framing = match (self.transfer_encoding, self.content_length.0) {
            // §6.1: a sender MUST NOT send both; a server MAY reject the request.
            // Rejecting is the only answer that rules out request smuggling.
            (Some(_), Some(_)) => return Err(HttpError::ContentLengthWithTransferEncoding),
            (Some(te), None) => {
                // §6.3 rule 4: chunked that is not the final coding: 400.
                // §6.1: chunked MUST NOT be applied more than once.
                if te.chunked_count > 1 || (te.chunked_count == 1 && !te.last_is_chunked) {
                    return Err(HttpError::ChunkedNotLast);
                }
                // §6.1: a coding this server does not implement: 501 (a SHOULD).
                if te.other {
                    return Err(HttpError::UnsupportedTransferCoding);
                }
                // An empty list ("Transfer-Encoding:" with nothing, or only commas:
                // RFC 9110 §5.6.1 ignores empty elements) names no coding at all, so
                // chunked is not the final one either: §6.3 rule 4's MUST, 400. There
                // is no coding to be unknown, so §6.1's 501 does not apply.
                if te.chunked_count == 0 {
                    return Err(HttpError::ChunkedNotLast);
                }
                Framing::Chunked
            }
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::None,
        };

        // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 persists only
        // with "keep-alive". §6.1: a Transfer-Encoding in a 1.0 request means the
        // framing is suspect, so the connection closes after the response.
        out.keep_alive = match version {
            Version::Http11 => !self.connection_close,
            Version::Http10 => {
                self.connection_keep_alive
                    && !self.connection_close
                    && self.transfer_encoding.is_none()
            }
        };
        out.framing = Some(framing);
        out.expect_continue = self.expect_continue && version == Version::Http11;
        Ok(())
    }
}

/// A Host field value (RFC 9110 §7.2): `uri-host [ ":" port ]`, checked by
/// [`split_host_port`]. RFC 9112 §3.2: a server MUST answer 400 to a request whose
/// Host value is invalid. An empty value is a valid (empty) reg-name: RFC 9112 §3.2
/// has the client send it when the target URI has no authority.
fn is_valid_host(value: &[u8]) -> bool {
    split_host_port(value).is_some()
}

/// `uri-host [ ":" port ]`: the grammar of a Host field value (RFC 9110 §7.2) and,
/// with the port required, of an authority-form target (RFC 9112 §3.2.3). Both
/// take `uri-host` from RFC 3986 §3.2.2 and `port` from §3.2.3:
///
/// ```text
/// Host           = uri-host [ ":" port ]              ; RFC 9110 §7.2
/// authority-form = uri-host ":" port                  ; RFC 9112 §3.2.3
/// uri-host       = IP-literal / IPv4address / reg-name
/// IP-literal     = "[" ( IPv6address / IPvFuture  ) "]"
/// reg-name       = *( unreserved / pct-encoded / sub-delims )
/// pct-encoded    = "%" HEXDIG HEXDIG
/// port           = *DIGIT
/// ```
///
/// Every IPv4address is also a reg-name, so it needs no rule of its own here. A
/// reg-name may be empty, so `""` is a valid Host value (RFC 9112 §3.2 asks for an
/// empty Host when the target URI has no authority).
///
/// Returns the host and, if there is a `:`, the port (possibly empty), or `None` if
/// `s` is not `uri-host [ ":" port ]`.
fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    // An IP-literal ends at its "]"; a reg-name (or IPv4address) at the first byte
    // that cannot continue it, which must be the ":" before the port.
    let host_end = if s.first() == Some(&b'[') {
        let close = s.iter().position(|&b| b == b']')?;
        if !is_ip_literal_inside(&s[1..close]) {
            return None;
        }
        close + 1
    } else {
        reg_name_end(s)
    };
    let (host, rest) = s.split_at(host_end);
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}

/// The length of the reg-name at the front of `s`:
/// `*( unreserved / pct-encoded / sub-delims )` (RFC 3986 §3.2.2).
fn reg_name_end(s: &[u8]) -> usize {
    let is_hex = |i: usize| s.get(i).is_some_and(u8::is_ascii_hexdigit);
    let mut i = 0;
    loop {
        match s.get(i) {
            Some(&b) if REG_NAME[b as usize] => i += 1,
            Some(b'%') if is_hex(i + 1) && is_hex(i + 2) => i += 3,
            _ => return i,
        }
    }
}

/// What lies between the brackets of an IP-literal (RFC 3986 §3.2.2):
///
/// ```text
/// IP-literal = "[" ( IPv6address / IPvFuture  ) "]"
/// IPvFuture  = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
/// ```
///
/// ABNF strings are case-insensitive (RFC 5234 §2.3), so "v" may be "V".
fn is_ip_literal_inside(s: &[u8]) -> bool {
    match s {
        [b'v' | b'V', future @ ..] => {
            let Some(dot) = future.iter().position(|&b| b == b'.') else {
                return false;
            };
            let (version, address) = (&future[..dot], &future[dot + 1..]);
            !version.is_empty()
                && version.iter().all(u8::is_ascii_hexdigit)
                && !address.is_empty()
                && address.iter().all(|&b| REG_NAME[b as usize] || b == b':')
        }
        _ => is_ipv6_address(s),
    }
}

/// IPv6address (RFC 3986 §3.2.2), the text form of RFC 4291 §2.2:
///
/// ```text
/// IPv6address =                            6( h16 ":" ) ls32
///             /                       "::" 5( h16 ":" ) ls32
///             / [               h16 ] "::" 4( h16 ":" ) ls32
///             / [ *1( h16 ":" ) h16 ] "::" 3( h16 ":" ) ls32
///             / [ *2( h16 ":" ) h16 ] "::" 2( h16 ":" ) ls32
///             / [ *3( h16 ":" ) h16 ] "::"    h16 ":"   ls32
///             / [ *4( h16 ":" ) h16 ] "::"              ls32
///             / [ *5( h16 ":" ) h16 ] "::"              h16
///             / [ *6( h16 ":" ) h16 ] "::"
/// h16         = 1*4HEXDIG
/// ls32        = ( h16 ":" h16 ) / IPv4address
/// ```
///
/// Read as: eight 16-bit pieces, where an IPv4address may stand for the last two,
/// and one "::" may stand for one or more pieces (so the pieces written number
/// eight without "::", and at most seven with it).
fn is_ipv6_address(s: &[u8]) -> bool {
    // The pieces before and after the "::", if there is one.
    let (before, after) = match s.windows(2).position(|w| w == b"::") {
        Some(at) => (&s[..at], Some(&s[at + 2..])),
        None => (s, None),
    };
    // Counts the pieces of `part`, a ":"-separated list of h16 where the last may be
    // an IPv4address (worth two pieces) if `ls32_allowed`; `None` if it is not one.
    let pieces = |part: &[u8], ls32_allowed: bool| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut count = 0;
        let mut groups = part.split(|&b| b == b':').peekable();
        while let Some(group) = groups.next() {
            let last = groups.peek().is_none();
            if (1..=4).contains(&group.len()) && group.iter().all(u8::is_ascii_hexdigit) {
                count += 1;
            } else if last && ls32_allowed && is_ipv4_address(group) {
                count += 2;
            } else {
                return None;
            }
        }
        Some(count)
    };
    match after {
        None => pieces(before, true) == Some(8),
        Some(after) => match (pieces(before, false), pieces(after, true)) {
            (Some(b), Some(a)) => b + a <= 7,
            _ => false,
        },
    }
}

/// IPv4address (RFC 3986 §3.2.2): four dec-octets, without leading zeros.
///
/// ```text
/// IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet
/// dec-octet   = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35
/// ```
fn is_ipv4_address(s: &[u8]) -> bool {
    let is_dec_octet = |o: &[u8]| match o {
        [d] => d.is_ascii_digit(),
        [b'1'..=b'9', d] => d.is_ascii_digit(),
        [b'1', d, e] => d.is_ascii_digit() && e.is_ascii_digit(),
        [b'2', b'0'..=b'4', d] => d.is_ascii_digit(),
        [b'2', b'5', b'0'..=b'5'] => true,
        _ => false,
    };
    let mut octets = 0;
    for octet in s.split(|&b| b == b'.') {
        if !is_dec_octet(octet) {
            return false;
        }
        octets += 1;
    }
    octets == 4
}

/// A parsed request head: a view over the buffer it was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    buf: &'a [u8],
    parsed: &'a Parsed,
}

impl<'a> Request<'a> {
    /// The method, such as `GET` (case-sensitive, RFC 9110 §9.1).
    pub fn method(&self) -> &'a str {
        // Checked to be tchar, which is ASCII.
        std::str::from_utf8(self.parsed.method.of(self.buf)).unwrap_or_default()
    }

    /// The request-target as sent, such as `/path?query`.
    pub fn target(&self) -> &'a str {
        // Checked to be VCHAR or obs-text; obs-text is not UTF-8 in general.
        std::str::from_utf8(self.target_bytes()).unwrap_or_default()
    }

    /// The request-target's bytes (which may include obs-text, bytes >= 0x80).
    pub fn target_bytes(&self) -> &'a [u8] {
        self.parsed.target.of(self.buf)
    }

    /// The target's path: the target up to `?`, for origin-form.
    pub fn path(&self) -> &'a str {
        let t = self.target();
        t.split('?').next().unwrap_or(t)
    }

    /// The query after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// Which of the four forms the target has.
    pub fn target_form(&self) -> TargetForm {
        self.parsed.form.unwrap_or(TargetForm::Origin)
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.parsed.version.unwrap_or(Version::Http11)
    }

    /// All header fields, in the order received.
    pub fn headers(&self) -> Headers<'a> {
        Headers::new(self.buf, &self.parsed.fields)
    }

    /// How many header field lines there are.
    pub fn header_count(&self) -> usize {
        self.parsed.fields.len()
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The Host field's value (present in every HTTP/1.1 request).
    pub fn host(&self) -> Option<&'a [u8]> {
        let i = self.parsed.host?;
        self.parsed.fields.get(i).map(|f| f.value.of(self.buf))
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.parsed.framing.unwrap_or(Framing::None)
    }

    /// Whether the connection may carry another request after this one's response
    /// (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        self.parsed.keep_alive
    }

    /// Whether the client sent `Expect: 100-continue` and waits for a 100 response
    /// before sending the body (RFC 9110 §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.parsed.expect_continue
    }

    /// Bytes from the start of the buffer to the end of the head's empty line
    /// (including any empty lines skipped before the request line). The body starts
    /// here.
    pub fn head_len(&self) -> usize {
        self.parsed.head_len
    }

    /// The raw bytes of the head.
    pub fn head_bytes(&self) -> &'a [u8] {
        self.buf.get(..self.parsed.head_len).unwrap_or_default()
    }
}

/// Iterator over a request's header fields.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    fields: std::slice::Iter<'a, FieldSpan>,
}

impl<'a> Headers<'a> {
    /// The fields at `fields` of the head in `buf` (a response head's too).
    pub(super) fn new(buf: &'a [u8], fields: &'a [FieldSpan]) -> Headers<'a> {
        Headers {
            buf,
            fields: fields.iter(),
        }
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        let f = self.fields.next()?;
        Some(Header {
            // Checked to be tchar, which is ASCII.
            name: std::str::from_utf8(f.name.of(self.buf)).unwrap_or_default(),
            value: f.value.of(self.buf),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Status<usize>, HttpError> {
        RequestParser::default().parse(bytes).map(|s| match s {
            Status::Complete(r) => Status::Complete(r.head_len()),
            Status::Partial => Status::Partial,
        })
    }

    fn err(bytes: &[u8]) -> HttpError {
        match parse(bytes) {
            Err(e) => e,
            Ok(s) => panic!("accepted {:?}: {s:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn with_parsed<T>(bytes: &[u8], f: impl FnOnce(Request<'_>) -> T) -> T {
        let mut p = RequestParser::default();
        match p.parse(bytes) {
            Ok(Status::Complete(r)) => f(r),
            other => panic!("not complete: {other:?}"),
        }
    }

    const SIMPLE: &[u8] = b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \r\n\r\n";

    #[test]
    fn rfc9112_3_request_line_and_fields_are_parsed() {
        with_parsed(SIMPLE, |r| {
            assert_eq!(r.method(), "GET");
            assert_eq!(r.target(), "/a?b=c");
            assert_eq!(r.path(), "/a");
            assert_eq!(r.query(), Some("b=c"));
            assert_eq!(r.version(), Version::Http11);
            assert_eq!(r.target_form(), TargetForm::Origin);
            let h: Vec<_> = r.headers().collect();
            assert_eq!(h.len(), 2);
            assert_eq!(
                h[0],
                Header {
                    name: "Host",
                    value: b"example.com"
                }
            );
            // RFC 9112 §5: OWS around the value is not part of it.
            assert_eq!(
                h[1],
                Header {
                    name: "Accept",
                    value: b"*/*"
                }
            );
            assert_eq!(r.head_len(), SIMPLE.len());
            assert_eq!(r.framing(), Framing::None);
            assert!(r.keep_alive());
        });
    }

    #[test]
    fn partial_heads_consume_nothing_at_every_split() {
        for cut in 0..SIMPLE.len() {
            assert_eq!(parse(&SIMPLE[..cut]), Ok(Status::Partial), "cut at {cut}");
        }
        // And with one parser fed a growing buffer, byte by byte.
        let mut p = RequestParser::default();
        for cut in 0..SIMPLE.len() {
            assert!(p.parse(&SIMPLE[..cut]).unwrap().is_partial());
        }
        assert!(p.parse(SIMPLE).unwrap().is_complete());
    }

    #[test]
    fn one_byte_at_a_time_searches_each_byte_a_bounded_number_of_times() {
        // The head end search resumes where it stopped: after feeding n bytes one
        // at a time, the resume point is never more than 2 bytes behind the end.
        let mut p = RequestParser::default();
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..50 {
            big.extend_from_slice(format!("X-{i}: value\r\n").as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        for cut in 1..big.len() {
            assert!(p.parse(&big[..cut]).unwrap().is_partial());
            assert!(
                p.searched_to + 2 >= cut,
                "searched_to {} at {cut}",
                p.searched_to
            );
        }
        assert!(p.parse(&big).unwrap().is_complete());
    }

    /// Feeds `input` one byte per call to one parser and returns the bytes its
    /// search looked at in all.
    fn searched_one_byte_at_a_time(input: &[u8]) -> u64 {
        let mut p = RequestParser::new(Limits {
            max_headers: 10_000,
            ..Limits::default()
        });
        for cut in 1..input.len() {
            assert!(p.parse(&input[..cut]).unwrap().is_partial(), "cut {cut}");
        }
        assert!(p.parse(input).unwrap().is_complete());
        p.bytes_searched()
    }

    #[test]
    fn a_head_fed_one_byte_at_a_time_is_searched_in_linear_work() {
        // Measured in bytes looked at, not time: deterministic. A parser that started
        // over on every read would look at about n²/2 bytes (134 million at 16 KiB).
        let mut long_value = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".to_vec();
        long_value.resize(16 * 1024 - 4, b'v');
        long_value.extend_from_slice(b"\r\n\r\n");
        let mut many_lines = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        while many_lines.len() < 16 * 1024 - 16 {
            many_lines.extend_from_slice(b"a:b\r\n");
        }
        many_lines.extend_from_slice(b"\r\n");
        // RFC 9112 §2.2: empty lines before the request line are skipped; the skip
        // resumes too.
        let mut empty_lines = b"\r\n".repeat(8 * 1024 - 32);
        empty_lines.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        for input in [&long_value, &many_lines, &empty_lines] {
            let n = input.len() as u64;
            let searched = searched_one_byte_at_a_time(input);
            assert!(
                searched < 3 * n,
                "{searched} bytes searched for a {n}-byte head"
            );
        }
    }

    #[test]
    fn pipelined_requests_parse_one_after_another() {
        let two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut p = RequestParser::default();
        let first = match p.parse(two).unwrap() {
            Status::Complete(r) => {
                assert_eq!(r.target(), "/1");
                r.head_len()
            }
            Status::Partial => panic!("partial"),
        };
        match p.parse(&two[first..]).unwrap() {
            Status::Complete(r) => assert_eq!(r.target(), "/2"),
            Status::Partial => panic!("partial"),
        }
    }

    #[test]
    fn rfc9112_2_2_bare_lf_line_endings_are_400_by_default() {
        for head in [
            &b"GET / HTTP/1.1\nHost: a\n\n"[..],
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(
                err(head),
                HttpError::BareLf,
                "{:?}",
                String::from_utf8_lossy(head)
            );
            // The same answer when the head arrives one byte at a time.
            let mut p = RequestParser::default();
            let mut answer = Ok(false);
            for end in 1..=head.len() {
                answer = p.parse(&head[..end]).map(|s| s.is_complete());
                if answer != Ok(false) {
                    break;
                }
            }
            assert_eq!(answer, Err(HttpError::BareLf));
        }
    }

    #[test]
    fn rfc9112_2_2_bare_lf_line_endings_are_accepted_when_allowed() {
        let limits = Limits {
            allow_bare_lf: true,
            ..Limits::default()
        };
        for head in [
            &b"GET / HTTP/1.1\nHost: a\n\n"[..],
            b"\n\r\nGET / HTTP/1.1\r\nHost: a\n\r\n",
        ] {
            let mut p = RequestParser::new(limits);
            match p.parse(head) {
                Ok(Status::Complete(r)) => {
                    assert_eq!(r.host(), Some(&b"a"[..]));
                    assert_eq!(r.head_len(), head.len());
                }
                other => panic!("not complete: {other:?}"),
            }
        }
    }

    #[test]
    fn rfc9112_7_1_chunked_with_parameters_is_400() {
        for te in ["chunked;foo=bar", "chunked ; q=1", "gzip, chunked;x"] {
            let head = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(
                err(head.as_bytes()),
                HttpError::ChunkedWithParameters,
                "{te}"
            );
        }
    }

    #[test]
    fn rfc9112_2_2_leading_empty_lines_are_skipped() {
        with_parsed(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", |r| {
            assert_eq!(r.method(), "GET");
            assert_eq!(r.head_len(), 4 + 27);
        });
    }

    #[test]
    fn rfc9112_2_2_bare_cr_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
            HttpError::BareCr
        );
        assert_eq!(err(b"GET / HTTP/1.1\rHost: a\r\n\r\n"), HttpError::BareCr);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\n\rX\n\r\n"),
            HttpError::BareCr
        );
    }

    #[test]
    fn rfc9110_5_5_nul_in_value_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"),
            HttpError::NulByte
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n"),
            HttpError::InvalidHeaderValue
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n"),
            HttpError::InvalidHeaderValue
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX\0: b\r\n\r\n"),
            HttpError::NulByte
        );
    }

    #[test]
    fn rfc9110_5_5_obs_text_in_value_is_accepted() {
        with_parsed(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\t!\r\n\r\n",
            |r| {
                assert_eq!(r.header("x"), Some(&b"caf\xc3\xa9\t!"[..]));
            },
        );
    }

    #[test]
    fn rfc9112_5_1_space_before_colon_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
            HttpError::WhitespaceBeforeColon
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"),
            HttpError::WhitespaceBeforeColon
        );
    }

    #[test]
    fn rfc9110_5_1_invalid_token_in_field_name_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"),
            HttpError::InvalidHeaderName
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\n: a\r\n\r\n"),
            HttpError::InvalidHeaderName
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost\r\n\r\n"),
            HttpError::MissingColon
        );
    }

    #[test]
    fn rfc9110_9_1_invalid_token_in_method_is_400() {
        assert_eq!(
            err(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::InvalidMethod
        );
        assert_eq!(
            err(b" / HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::InvalidRequestLine
        );
        assert_eq!(
            err(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::InvalidTarget
        );
        assert_eq!(
            err(b"GET /\r\nHost: a\r\n\r\n"),
            HttpError::InvalidRequestLine
        );
        assert_eq!(
            err(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
            HttpError::InvalidRequestLine
        );
    }

    #[test]
    fn rfc9112_3_garbage_before_the_method_ends_is_rejected_before_the_head_ends() {
        // A TLS ClientHello sent to a plain HTTP port.
        assert_eq!(
            err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            HttpError::InvalidMethod
        );
        assert_eq!(err(b"GE\xffT / HTTP/1.1\r\n"), HttpError::InvalidMethod);
        assert_eq!(err(b" / HTTP/1.1\r\n"), HttpError::InvalidRequestLine);
        // A valid prefix still waits for more.
        assert_eq!(parse(b"GET /\xff"), Ok(Status::Partial));
        assert_eq!(parse(b"\r\nPOS"), Ok(Status::Partial));
        assert_eq!(parse(b"\r"), Ok(Status::Partial));
    }

    #[test]
    fn rfc9112_5_2_obs_fold_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n"),
            HttpError::ObsoleteFold
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"),
            HttpError::ObsoleteFold
        );
    }

    #[test]
    fn rfc9112_2_2_whitespace_after_start_line_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n"),
            HttpError::WhitespaceAfterStartLine
        );
    }

    #[test]
    fn rfc9112_3_2_missing_host_in_http11_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nX: a\r\n\r\n"),
            HttpError::MissingHost
        );
        // HTTP/1.0 did not require Host.
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_complete());
    }

    #[test]
    fn rfc9112_3_2_duplicate_host_is_400() {
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            HttpError::DuplicateHost
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            HttpError::InvalidHost
        );
    }

    /// A head with `Host: {value}`.
    fn with_host(value: &[u8]) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n\r\n");
        head
    }

    /// A CONNECT head with `target`.
    fn connect_to(target: &[u8]) -> Vec<u8> {
        let mut head = b"CONNECT ".to_vec();
        head.extend_from_slice(target);
        head.extend_from_slice(b" HTTP/1.1\r\nHost: a:80\r\n\r\n");
        head
    }

    /// The answer to `head` fed one byte at a time to one parser, as a server reads
    /// a slow client: the first answer that is not Partial.
    fn err_one_byte_at_a_time(head: &[u8]) -> HttpError {
        let mut p = RequestParser::default();
        for end in 1..=head.len() {
            match p.parse(&head[..end]) {
                Ok(Status::Partial) => {}
                Err(e) => return e,
                Ok(Status::Complete(_)) => panic!("accepted {head:?}"),
            }
        }
        panic!("still partial: {head:?}")
    }

    #[test]
    fn rfc9112_3_2_host_outside_uri_host_grammar_is_400() {
        for bad in [
            // Not a port after the colon, or a second colon.
            &b":aaaa"[..],
            b"a:b",
            b"a:80:81",
            // A byte no host may hold, or an IP-literal not at the start.
            b"$[::1]:8080",
            b"a/b",
            b"a@b",
            b"a b",
            // pct-encoded = "%" HEXDIG HEXDIG.
            b"a%zz",
            b"a%4",
            b"%",
            // IP-literal = "[" ( IPv6address / IPvFuture ) "]".
            b"[a.a0",
            b"[::1",
            b"[::1]x",
            b"[::1]]",
            b"[zz]",
            b"[]",
            b"[v.x]",
            b"[v7.]",
            b"[v7.a/b]",
            b"[1.2.3.4]",
            b"[1:2:3:4:5:6:7]",
            b"[1:2:3:4:5:6:7:8:9]",
            b"[1::2:3:4:5:6:7:8]",
            b"[1::2::3]",
            b"[:::]",
            b"[12345::]",
            b"[::1.2.3]",
            b"[::1.2.3.04]",
            b"[::256.0.0.1]",
            b"[1.2.3.4::]",
            b"[::1%25eth0]",
        ] {
            let head = with_host(bad);
            assert_eq!(
                err(&head),
                HttpError::InvalidHost,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(err_one_byte_at_a_time(&head), HttpError::InvalidHost);
        }
    }

    #[test]
    fn rfc9112_3_2_host_values_in_uri_host_grammar_are_accepted() {
        for good in [
            // RFC 9112 §3.2: empty when the target URI has no authority.
            &b""[..],
            b"example.com",
            b"example.com:8080",
            // port = *DIGIT: it may be empty.
            b"example.com:",
            b"127.0.0.1:80",
            // reg-name with pct-encoded and sub-delims.
            b"a%20b",
            b"ex%4Fmple",
            b"a!$&'()*+,;=-._~",
            b"[::1]",
            b"[::1]:8080",
            b"[::]",
            b"[1:2:3:4:5:6:7:8]",
            b"[1::]",
            b"[::1:2:3:4:5:6:7]",
            b"[::ffff:192.0.2.1]:443",
            b"[1:2:3:4:5:6:255.255.255.255]",
            b"[FE80::aBcD]",
            // IPvFuture; "v" is case-insensitive like every ABNF string.
            b"[v7.a:b]",
            b"[V1F.x!$]:1",
        ] {
            with_parsed(&with_host(good), |r| assert_eq!(r.host(), Some(good)));
        }
    }

    #[test]
    fn rfc9112_3_2_3_connect_target_outside_authority_form_is_400() {
        for bad in [
            &b"a:b"[..],
            b"a:80/x",
            b"\xff:0",
            b"a:80:81",
            b"a%zz:80",
            b"[::1:80",
            // authority-form = uri-host ":" port: the port is not optional.
            b"a.example",
            b"[::1]",
        ] {
            let head = connect_to(bad);
            assert_eq!(
                err(&head),
                HttpError::InvalidTarget,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(err_one_byte_at_a_time(&head), HttpError::InvalidTarget);
        }
    }

    #[test]
    fn rfc9112_3_2_3_connect_authority_form_targets_are_accepted() {
        for good in [
            &b"a.example:443"[..],
            b"10.0.0.1:8080",
            b"[::1]:443",
            b"[v1.x]:443",
            b"a%2Db:1",
        ] {
            with_parsed(&connect_to(good), |r| {
                assert_eq!(r.target_form(), TargetForm::Authority);
                assert_eq!(r.target_bytes(), good);
            });
        }
    }

    #[test]
    fn rfc3986_3_2_2_ipv6_check_agrees_with_std() {
        // The standard library's parser reads the same RFC 4291 text form: on
        // every string built from these pieces, the two must agree.
        let pieces: [&str; 10] = [
            "", "1", "ffff", "12345", ":", "::", ".", "1.2.3.4", "0.0.0.0", "g",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for d in pieces {
                        let s = format!("{a}{b}{c}{d}");
                        let ours = is_ipv6_address(s.as_bytes());
                        let std = s.parse::<std::net::Ipv6Addr>().is_ok();
                        assert_eq!(ours, std, "{s:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 10_000);
        for s in [
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1::3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "::1.2.3.04",
            "::01.2.3.4",
            "::1.2.3.255",
            "::1.2.3.256",
            "1:2:3:4:5::1.2.3.4",
            "1:2:3:4:5:6::1.2.3.4",
        ] {
            let std = s.parse::<std::net::Ipv6Addr>().is_ok();
            assert_eq!(is_ipv6_address(s.as_bytes()), std, "{s:?}");
        }
    }

    #[test]
    fn rfc9112_2_3_version_is_checked() {
        assert_eq!(
            err(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/3.0\r\nHost: a\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/1.x\r\nHost: a\r\n\r\n"),
            HttpError::InvalidVersion
        );
        assert_eq!(
            err(b"GET / HTTP/11\r\nHost: a\r\n\r\n"),
            HttpError::InvalidVersion
        );
        assert_eq!(
            err(b"GET / http/1.1\r\nHost: a\r\n\r\n"),
            HttpError::InvalidVersion
        );
        with_parsed(b"GET / HTTP/1.0\r\n\r\n", |r| {
            assert_eq!(r.version(), Version::Http10);
            // RFC 9112 §9.3: HTTP/1.0 closes unless asked to keep alive.
            assert!(!r.keep_alive());
        });
        with_parsed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", |r| {
            assert!(r.keep_alive())
        });
        with_parsed(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n",
            |r| assert!(!r.keep_alive()),
        );
        // RFC 9110 §6.2: a higher 1.x minor is answered as 1.1.
        with_parsed(b"GET / HTTP/1.7\r\nHost: a\r\n\r\n", |r| {
            assert_eq!(r.version(), Version::Http11)
        });
    }

    #[test]
    fn rfc9112_3_2_target_forms() {
        with_parsed(
            b"GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
            |r| assert_eq!(r.target_form(), TargetForm::Absolute),
        );
        with_parsed(
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
            |r| assert_eq!(r.target_form(), TargetForm::Authority),
        );
        with_parsed(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", |r| {
            assert_eq!(r.target_form(), TargetForm::Asterisk)
        });
        assert_eq!(
            err(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::TargetFormMismatch
        );
        assert_eq!(
            err(b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::TargetFormMismatch
        );
        assert_eq!(
            err(b"GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
            HttpError::InvalidTarget
        );
    }

    #[test]
    fn rfc9112_3_target_over_limit_is_414() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', 8 * 1024 + 1));
        let mut whole = long.clone();
        whole.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(err(&whole), HttpError::TargetTooLong);
        // Without waiting for the line to end.
        long.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(err(&long), HttpError::TargetTooLong);
    }

    #[test]
    fn head_over_limit_is_431() {
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        while big.len() <= 16 * 1024 {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        // Before the end of the head arrives...
        assert_eq!(err(&big), HttpError::HeadTooLarge);
        // ...and after.
        big.extend_from_slice(b"\r\n");
        assert_eq!(err(&big), HttpError::HeadTooLarge);
    }

    #[test]
    fn too_many_fields_is_431() {
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for _ in 0..100 {
            big.extend_from_slice(b"X: 1\r\n");
        }
        big.extend_from_slice(b"\r\n");
        assert_eq!(err(&big), HttpError::HeadTooLarge);
    }

    #[test]
    fn rfc9112_6_3_content_length_framing() {
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n",
            |r| assert_eq!(r.framing(), Framing::Length(42)),
        );
        // Identical repeated values may be treated as one (RFC 9112 §6.3 rule 5).
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
            |r| assert_eq!(r.framing(), Framing::Length(7)),
        );
    }

    #[test]
    fn rfc9112_6_3_conflicting_content_length_is_400() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            HttpError::ConflictingContentLength
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n"),
            HttpError::ConflictingContentLength
        );
    }

    #[test]
    fn rfc9110_8_6_content_length_must_be_digits() {
        for bad in ["-1", "+1", "1.0", "0x10", "", "1 1", "18446744073709551616"] {
            let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                err(req.as_bytes()),
                HttpError::InvalidContentLength,
                "{bad:?}"
            );
        }
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
            |r| assert_eq!(r.framing(), Framing::Length(u64::MAX)),
        );
    }

    #[test]
    fn rfc9112_6_1_content_length_with_transfer_encoding_is_400() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpError::ContentLengthWithTransferEncoding
        );
    }

    #[test]
    fn rfc9112_6_1_transfer_codings() {
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            |r| assert_eq!(r.framing(), Framing::Chunked),
        );
        let te = |v: &str| format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {v}\r\n\r\n");
        assert_eq!(
            err(te("gzip").as_bytes()),
            HttpError::UnsupportedTransferCoding
        );
        assert_eq!(
            err(te("gzip, chunked").as_bytes()),
            HttpError::UnsupportedTransferCoding
        );
        assert_eq!(HttpError::UnsupportedTransferCoding.status(), 501);
        assert_eq!(
            err(te("chunked, gzip").as_bytes()),
            HttpError::ChunkedNotLast
        );
        assert_eq!(
            err(te("chunked, chunked").as_bytes()),
            HttpError::ChunkedNotLast
        );
        assert_eq!(HttpError::ChunkedNotLast.status(), 400);
        // Several lines form one list: "chunked" then "gzip" is chunked-not-last.
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
            HttpError::ChunkedNotLast
        );
    }

    #[test]
    fn rfc9112_6_3_empty_transfer_encoding_is_400() {
        // Transfer-Encoding = #transfer-coding; an empty list (or one of only empty
        // elements, which RFC 9110 §5.6.1 says to ignore) names no coding, so chunked
        // is not the final coding: RFC 9112 §6.3 rule 4, MUST answer 400. There is no
        // unknown coding to answer 501 for.
        for value in ["", ",", " , ,"] {
            let head = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:{value}\r\n\r\n");
            assert_eq!(err(head.as_bytes()), HttpError::ChunkedNotLast, "{value:?}");
            assert_eq!(
                err_one_byte_at_a_time(head.as_bytes()),
                HttpError::ChunkedNotLast
            );
        }
        assert_eq!(HttpError::ChunkedNotLast.status(), 400);
        // An empty line beside one that says chunked adds nothing to the list.
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n",
            |r| assert_eq!(r.framing(), Framing::Chunked),
        );
    }

    #[test]
    fn rfc9110_10_1_1_expect_100_continue_is_seen() {
        with_parsed(
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
            |r| assert!(r.expects_continue()),
        );
    }

    #[test]
    fn last_request_reviews_the_head_over_a_longer_buffer() {
        let mut p = RequestParser::default();
        let mut buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n".to_vec();
        assert!(p.parse(&buf).unwrap().is_complete());
        buf.extend_from_slice(b"abc");
        let r = p.last_request(&buf).unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(&buf[r.head_len()..], b"abc");
    }

    #[test]
    fn errors_map_to_the_status_of_their_rule() {
        assert_eq!(HttpError::TargetTooLong.status(), 414);
        assert_eq!(HttpError::HeadTooLarge.status(), 431);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
        assert_eq!(HttpError::BodyTooLarge.status(), 413);
        assert_eq!(HttpError::HeadTimeout.status(), 408);
        assert_eq!(HttpError::MissingHost.status(), 400);
    }
}
