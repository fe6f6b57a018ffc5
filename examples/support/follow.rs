//! Following one job of the jobs server, as a client sees it: short polling, long
//! polling, Server-Sent Events or a WebSocket, over plain blocking sockets that count
//! every byte they carry and give every read what is left of the run's limit.
//!
//! `poll_client` follows one job with it and prints what that cost;
//! `compare_patterns` follows many jobs every way and compares. What is counted,
//! and how lateness is measured, is described in `examples/poll_client.rs`.
//!
//! This folder has no `main.rs`; each example includes this file with
//! `#[path = "support/follow.rs"] mod follow;` beside `mod support;`.

// Each example uses only its part of this file.
#![allow(dead_code)]

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::ProgressBar;
use wirepatterns::http::body::BodyDecoder;
use wirepatterns::http::{Framing, Limits, Status};
use wirepatterns::trace::{Count, Dur};
use wirepatterns::ws::client::{self, ClientDecoder, ClientHandshake};
use wirepatterns::ws::{ClientError, CloseFrame, Event};

use super::support;

/// The longest response head this client reads (a jobs answer's is about 200 B).
pub const MAX_HEAD: usize = 16 * 1024;

/// The longest a TCP connect may take, within the run's limit.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// How long to wait for the server to close TCP after the WebSocket close
/// handshake (RFC 6455 §7.1.1: the server closes first), within the run's limit.
pub const WS_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The first reconnection delay of an SSE client until the server sends `retry:`
/// (the WHATWG standard leaves it to the client; browsers use a few seconds).
pub const SSE_DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// How the job is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Short,
    Long,
    Sse,
    Ws,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "short" => Some(Mode::Short),
            "long" => Some(Mode::Long),
            "sse" => Some(Mode::Sse),
            "ws" => Some(Mode::Ws),
            _ => None,
        }
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub struct Options {
    pub addr: SocketAddr,
    pub mode: Mode,
    /// Short polling: the pause between an answer and the next request.
    pub interval: Duration,
    /// Long polling: the `wait=` sent, in whole seconds.
    pub wait_secs: u64,
    /// The whole run's limit.
    pub timeout: Duration,
}

// ---------------------------------------------------------------------------
// Time: the run's limit, and the wall clock the server stamps with
// ---------------------------------------------------------------------------

/// The run's limit: every connect and read gets at most what is left of it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub limit: Duration,
}

impl Deadline {
    pub fn new(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    /// Time left, or a `TimedOut` error once there is less than a millisecond (a
    /// socket timeout of zero would mean "no timeout").
    pub fn left(&self) -> io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(left)
    }

    /// Sleeps `d`, or until the limit if that comes first.
    pub fn sleep(&self, d: Duration) {
        std::thread::sleep(d.min(self.at.saturating_duration_since(Instant::now())));
    }
}

/// Milliseconds since the Unix epoch on this machine's clock, the unit of the
/// server's stamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ---------------------------------------------------------------------------
// The socket, counted and bounded
// ---------------------------------------------------------------------------

/// Bytes on the wire, each way, for all the connections of one count.
#[derive(Debug, Default)]
pub struct Wire {
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
}

/// A TCP connection that adds every byte it reads or writes to a [`Wire`], and gives
/// each read and write what is left of the [`Deadline`] as its timeout.
pub struct Timed<'w> {
    pub stream: TcpStream,
    pub wire: &'w Wire,
    pub deadline: Deadline,
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.deadline.left()?))?;
        let n = self.stream.read(buf)?;
        self.wire.bytes_in.set(self.wire.bytes_in.get() + n as u64);
        Ok(n)
    }
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.deadline.left()?))?;
        let n = self.stream.write(buf)?;
        self.wire
            .bytes_out
            .set(self.wire.bytes_out.get() + n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// One connection: the counted socket and the bytes read from it but not used yet.
pub struct Conn<'w> {
    pub io: Timed<'w>,
    pub buf: Vec<u8>,
}

/// Opens a connection to `addr`. The error names the address and says what to do
/// when nothing listens there.
pub fn connect<'w>(
    addr: SocketAddr,
    wire: &'w Wire,
    deadline: Deadline,
) -> Result<Conn<'w>, String> {
    let limit = deadline
        .left()
        .map_err(|e| fail_io(&e, addr, deadline, "a connection"))?
        .min(CONNECT_LIMIT);
    let stream = TcpStream::connect_timeout(&addr, limit).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to {addr}: connection refused (is the jobs server running? \
             cargo run --example jobs -- --addr {addr})"
        ),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("cannot connect to {addr}: no answer within {}", Dur(limit))
        }
        _ => format!("cannot connect to {addr}: {e}"),
    })?;
    // Requests are small and each one is waited for: send them at once (no Nagle).
    let _ = stream.set_nodelay(true);
    Ok(Conn {
        io: Timed {
            stream,
            wire,
            deadline,
        },
        buf: Vec::new(),
    })
}

/// The message for an I/O error while talking to `addr`, waiting for `what`.
pub fn fail_io(e: &io::Error, addr: SocketAddr, deadline: Deadline, what: &str) -> String {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "timed out waiting for {what} from {addr}: the run's limit is {} (--timeout; \
             a server with a slow --step-ms needs more)",
            Dur(deadline.limit)
        ),
        _ => format!("connection to {addr} failed while waiting for {what}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 by hand: a request writer and a response reader
// ---------------------------------------------------------------------------

/// Appends a request with no body: the request line, `Host`, the `headers` given,
/// and the empty line that ends the head (RFC 9112 §2.1, §3).
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
) {
    let _ = write!(out, "{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A query value, percent-encoded: every byte but letters, digits, `-._~` (the
/// unreserved characters of RFC 3986 §2.3) and `:` (which a query may hold as it
/// is, §3.4) becomes `%XX`. `job:17` stays `job:17`; `a&b` becomes `a%26b`.
pub fn query_value(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Why a response could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The socket failed or timed out.
    Io(io::Error),
    /// The server closed the connection before the response was whole.
    Closed,
    /// The bytes are not an HTTP/1.1 response.
    Malformed(String),
}

/// A response head: the status line and the header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `HTTP/1.1` (rather than `HTTP/1.0`).
    http11: bool,
    pub status: u16,
    pub reason: String,
    /// Each field as (name, value), the value without surrounding whitespace.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first field named `name` (names are case-insensitive, RFC 9110 §5.1).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a field's comma-separated list holds `token` (in any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// How the body ends (RFC 9112 §6.3): no body for 1xx, 204 and 304; chunked if
    /// the last transfer coding is `chunked`; else `Content-Length` bytes; else
    /// when the server closes the connection.
    pub fn body_framing(&self) -> Result<BodyFraming, ReadError> {
        if self.status < 200 || self.status == 204 || self.status == 304 {
            return Ok(BodyFraming::Known(Framing::None));
        }
        if let Some(te) = self.header("Transfer-Encoding") {
            let last = te.rsplit(',').next().unwrap_or_default().trim();
            return if last.eq_ignore_ascii_case("chunked") {
                Ok(BodyFraming::Known(Framing::Chunked))
            } else {
                Ok(BodyFraming::UntilClose)
            };
        }
        // Several Content-Length fields must agree (RFC 9112 §6.3 item 5).
        let mut length = None;
        for (_, value) in self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        {
            let n = parse_digits(value)
                .ok_or_else(|| ReadError::Malformed(format!("Content-Length {value:?}")))?;
            if length.is_some_and(|m| m != n) {
                return Err(ReadError::Malformed("Content-Length fields differ".into()));
            }
            length = Some(n);
        }
        Ok(length.map_or(BodyFraming::UntilClose, |n| {
            BodyFraming::Known(Framing::Length(n))
        }))
    }

    /// Whether the connection may carry another request after this response: an
    /// HTTP/1.1 response without `Connection: close` (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        self.http11 && !self.has_token("Connection", "close")
    }
}

/// Where a response body ends.
#[derive(Debug)]
pub enum BodyFraming {
    /// The head says (no body, Content-Length or chunked).
    Known(Framing),
    /// When the server closes the connection (a response with neither length nor
    /// chunking).
    UntilClose,
}

/// A string of ASCII digits as a number; `None` for anything else (a sign, a
/// space inside, a number past `u64`).
pub fn parse_digits(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads once from `r` into the end of `buf`; `Ok(0)` at the end of the stream.
pub fn read_more(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Where the head in `buf` ends (just past its empty line), if it is all there.
/// Lines end in CRLF, or a bare LF (RFC 9112 §2.2 lets a recipient accept it).
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            let line = buf.get(line_start..i).unwrap_or_default();
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// Parses a head (status line and field lines, its empty line included or not).
pub fn parse_head(bytes: &[u8]) -> Result<Head, ReadError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ReadError::Malformed("the response head is not UTF-8".into()))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4)
    let status_line = lines.next().unwrap_or_default();
    let bad_status = || ReadError::Malformed(format!("status line {status_line:?}"));
    let (version, rest) = status_line.split_once(' ').ok_or_else(bad_status)?;
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(bad_status()),
    };
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 {
        return Err(bad_status());
    }
    let status = parse_digits(code).ok_or_else(bad_status)? as u16;
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty() && !name.contains([' ', '\t']))
            .ok_or_else(|| ReadError::Malformed(format!("header line {line:?}")))?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Head {
        http11,
        status,
        reason: reason.to_string(),
        headers,
    })
}

/// Reads from `r` until `buf` holds a whole head; returns it and removes its bytes
/// from `buf` (what follows is the body).
pub fn read_head(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Head, ReadError> {
    loop {
        if let Some(end) = head_end(buf) {
            let head = parse_head(buf.get(..end).unwrap_or_default())?;
            buf.drain(..end);
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(ReadError::Malformed(format!(
                "no end of the response head in {MAX_HEAD} bytes"
            )));
        }
        if read_more(r, buf)? == 0 {
            return Err(ReadError::Closed);
        }
    }
}

/// A response body being read, a piece at a time as it arrives (an SSE stream is
/// one long body). Content-Length and chunked framing are decoded by the crate's
/// own [`BodyDecoder`], the one its server uses for request bodies.
pub enum Body {
    Framed(BodyDecoder),
    UntilClose { done: bool },
}

impl Body {
    pub fn new(head: &Head) -> Result<Body, ReadError> {
        Ok(match head.body_framing()? {
            BodyFraming::Known(framing) => {
                let limits = Limits {
                    max_body_bytes: u64::MAX,
                    ..Limits::default()
                };
                let decoder = BodyDecoder::new(framing, &limits)
                    .map_err(|e| ReadError::Malformed(e.to_string()))?;
                Body::Framed(decoder)
            }
            BodyFraming::UntilClose => Body::UntilClose { done: false },
        })
    }

    /// The next piece of the body, reading from `r` if `buf` holds none; `None` once
    /// the body has ended (then `buf` holds what comes after it).
    pub fn next(
        &mut self,
        r: &mut impl Read,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Vec<u8>>, ReadError> {
        loop {
            match self {
                Body::Framed(decoder) => {
                    if decoder.is_done() {
                        return Ok(None);
                    }
                    if !buf.is_empty() {
                        let decoded = decoder
                            .decode(buf)
                            .map_err(|e| ReadError::Malformed(e.to_string()))?;
                        let (data, consumed) = (decoded.data.to_vec(), decoded.consumed);
                        buf.drain(..consumed.min(buf.len()));
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                        if consumed > 0 {
                            continue;
                        }
                    }
                    if read_more(r, buf)? == 0 {
                        return Err(ReadError::Closed);
                    }
                }
                Body::UntilClose { done } => {
                    if !buf.is_empty() {
                        return Ok(Some(std::mem::take(buf)));
                    }
                    if *done || read_more(r, buf)? == 0 {
                        *done = true;
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    pub body: Vec<u8>,
}

/// Reads one whole response from `r` (`buf` holds bytes already read).
pub fn read_response(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Response, ReadError> {
    let head = read_head(r, buf)?;
    let mut body_reader = Body::new(&head)?;
    let mut body = Vec::new();
    while let Some(piece) = body_reader.next(r, buf)? {
        body.extend_from_slice(&piece);
    }
    Ok(Response { head, body })
}

impl ReadError {
    /// The message, saying what was awaited from `addr`.
    pub fn message(&self, addr: SocketAddr, deadline: Deadline, what: &str) -> String {
        match self {
            ReadError::Io(e) => fail_io(e, addr, deadline, what),
            ReadError::Closed => format!("{addr} closed the connection before {what} was whole"),
            ReadError::Malformed(why) => format!("{addr} sent a malformed {what}: {why}"),
        }
    }
}

// ---------------------------------------------------------------------------
// What the server says: `JobStatus: N% at=<ms>`, `Job-Updated-At: <ms>`
// ---------------------------------------------------------------------------

/// Parses `JobStatus: 40%` (a polling answer's body) or `JobStatus: 40%
/// at=1764480003000` (an SSE event's data, a WebSocket message): the progress, and
/// the stamp if there is one. Whitespace around it (the body's `\n`) is ignored.
pub fn parse_status(text: &str) -> Result<(u8, Option<u64>), String> {
    let bad = || format!("expected `JobStatus: N%` or `JobStatus: N% at=MS`, got {text:?}");
    let rest = text.trim().strip_prefix("JobStatus:").ok_or_else(bad)?;
    let (percent, after) = rest.trim_start().split_once('%').ok_or_else(bad)?;
    let progress = parse_digits(percent)
        .filter(|&p| p <= 100)
        .ok_or_else(bad)? as u8;
    let after = after.trim();
    if after.is_empty() {
        return Ok((progress, None));
    }
    let stamp = after.strip_prefix("at=").ok_or_else(bad)?;
    Ok((progress, Some(parse_stamp(stamp).ok_or_else(bad)?)))
}

/// Parses a stamp, milliseconds since the epoch: `Job-Updated-At: 1764480003000`.
pub fn parse_stamp(text: &str) -> Option<u64> {
    parse_digits(text)
}

// ---------------------------------------------------------------------------
// Server-sent events, as the WHATWG HTML standard parses them
// ---------------------------------------------------------------------------

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:`'s value, `message` when the event had none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event ID when it was dispatched (`id:` need not be repeated).
    pub id: String,
}

/// An event-stream parser, fed bytes as they arrive, split anywhere.
///
/// The stream is lines, each ending in CRLF, LF or CR. An empty line dispatches
/// the event gathered so far. `:` starts a comment. Otherwise a line is `field:
/// value` (one space after the colon is dropped) or just `field` (empty value):
/// `data` appends the value and a newline to the data; `event` sets the type; `id`
/// sets the last event ID, unless the value holds a NUL; `retry` sets the
/// reconnection time if it is all ASCII digits. Other fields are ignored. An event
/// with no data is not dispatched; an event the stream ends in the middle of is
/// dropped.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The line being read, as bytes (a line ends only at CR or LF, bytes that
    /// never occur inside a UTF-8 sequence, so it is decoded once whole).
    pub line: Vec<u8>,
    /// The last byte was a CR: an LF right after it ends the same line.
    pub after_cr: bool,
    /// The first line has been read (a byte order mark may precede it only).
    pub started: bool,
    pub data: String,
    pub event_type: String,
    /// The last event ID buffer: kept from event to event.
    pub id: String,
    /// The last event ID the stream committed (at its last empty line): what a
    /// reconnect sends as `Last-Event-ID`.
    pub last_event_id: String,
    /// The last valid `retry:`, in milliseconds.
    pub retry_ms: Option<u64>,
    /// Comment lines seen (the server's heartbeats).
    pub comments: u64,
}

impl SseParser {
    /// Parses `bytes`, pushing each event completed onto `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(out);
                }
                b'\n' => self.end_line(out),
                _ => self.line.push(b),
            }
        }
    }

    pub fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let bytes = std::mem::take(&mut self.line);
        let decoded = String::from_utf8_lossy(&bytes);
        let mut line: &str = &decoded;
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
    }

    pub fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        self.last_event_id = self.id.clone();
        let mut data = std::mem::take(&mut self.data);
        let event_type = std::mem::take(&mut self.event_type);
        if data.is_empty() {
            return;
        }
        if data.ends_with('\n') {
            data.pop();
        }
        out.push(SseEvent {
            event: if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type
            },
            data,
            id: self.id.clone(),
        });
    }
}

// ---------------------------------------------------------------------------
// What following the job cost
// ---------------------------------------------------------------------------

/// The updates seen: each distinct progress value once, with how late it came.
#[derive(Debug, Default)]
pub struct Updates {
    /// (progress, lateness in ms if the server stamped it), in the order seen.
    pub seen: Vec<(u8, Option<i64>)>,
}

impl Updates {
    /// Notes that the client read `progress`, stamped `stamp` by the server, at
    /// `now_ms`; `true` if it is news (a progress value not seen before).
    pub fn saw(&mut self, progress: u8, stamp: Option<u64>, now_ms: u64) -> bool {
        if self.seen.iter().any(|&(p, _)| p == progress) {
            return false;
        }
        let late = stamp.map(|s| now_ms as i64 - s as i64);
        self.seen.push((progress, late));
        true
    }

    pub fn done(&self) -> bool {
        self.seen.iter().any(|&(p, _)| p >= 100)
    }

    pub fn latest(&self) -> Option<u8> {
        self.seen.iter().map(|&(p, _)| p).max()
    }

    /// The updates seen ([`is_update`]: 0% is not one), each with its lateness.
    pub fn updates(&self) -> impl Iterator<Item = (u8, Option<i64>)> + '_ {
        self.seen.iter().copied().filter(|&(p, _)| is_update(p))
    }

    /// How many updates were seen ([`is_update`]: 0% is not one).
    pub fn updates_seen(&self) -> u64 {
        self.updates().count() as u64
    }

    /// The updates of `made` (a job's progress values, in order, as the server
    /// lists them) that were never seen: what [`missed`] counts, by name.
    pub fn missed_of(&self, made: &[u8]) -> Vec<u8> {
        made.iter()
            .copied()
            .filter(|&p| is_update(p) && !self.seen.iter().any(|&(s, _)| s == p))
            .collect()
    }
}

/// Whether a progress value is an update. The 0% a client sees first is where it
/// starts following, not an update: a job of 10% steps makes 10 updates (10%,
/// 20%, ... 100%), one per step, as the server counts them (`jobs.updates` in
/// `GET /stats`). `poll_client` and `compare_patterns` both count this way.
pub fn is_update(progress: u8) -> bool {
    progress > 0
}

/// Updates the server made that no client saw: `made` of them, `seen` seen (each
/// distinct update once; over one job in `poll_client`, over all of a way's jobs
/// in `compare_patterns`). A short poll answers with the progress of now, so an
/// update replaced by the next one before the poll is never seen; per-update
/// figures are over the updates seen and say nothing of these.
pub fn missed(made: u64, seen: u64) -> u64 {
    made.saturating_sub(seen)
}

/// The nearest-rank percentile `pct` (1 to 100) of `sorted` (ascending): the
/// smallest value that at least `pct`% of the values are at or below. `None` if
/// empty. The p50 of 1..=10 is 5, the p90 is 9, the p100 (the max) is 10.
pub fn percentile(sorted: &[u64], pct: u32) -> Option<u64> {
    let n = sorted.len();
    let rank = (pct as usize * n).div_ceil(100).clamp(1, n.max(1));
    sorted.get(rank - 1).copied()
}

/// Everything counted while following the job.
pub struct Tally<'w> {
    pub wire: &'w Wire,
    pub requests: u64,
    pub connections: u64,
    /// Polling answers, SSE events or WebSocket messages.
    pub answers: u64,
    /// SSE comments (heartbeats).
    pub comments: u64,
    pub updates: Updates,
    pub bar: ProgressBar,
}

impl<'w> Tally<'w> {
    /// Nothing counted yet, on `wire`; `bar` shows the progress (or is hidden).
    pub fn new(wire: &'w Wire, bar: ProgressBar) -> Tally<'w> {
        Tally {
            wire,
            requests: 0,
            connections: 0,
            answers: 0,
            comments: 0,
            updates: Updates::default(),
            bar,
        }
    }

    /// Counts an answer saying `progress` (stamped `stamp`), read just now.
    pub fn answer(&mut self, progress: u8, stamp: Option<u64>) {
        self.answers += 1;
        self.updates.saw(progress, stamp, now_ms());
        self.bar
            .set_position(u64::from(self.updates.latest().unwrap_or(0)));
        self.bar.set_message(format!(
            "{}, {} B out, {} B in",
            Count(self.requests, "request", "requests"),
            self.wire.bytes_out.get(),
            self.wire.bytes_in.get()
        ));
    }
}

// ---------------------------------------------------------------------------
// Submitting, and the four ways of following
// ---------------------------------------------------------------------------

/// Sends a request with no body and reads the whole response, on `conn` (opened
/// first if `None`). A reused connection the server has since closed is opened
/// again and the request sent again, once (safe: these requests change nothing).
/// Afterwards `conn` is `None` if the response did not keep the connection.
pub fn exchange<'w>(
    conn: &mut Option<Conn<'w>>,
    target: &str,
    opts: &Options,
    deadline: Deadline,
    tally: &mut Tally<'w>,
) -> Result<Response, String> {
    let what = format!("the answer to GET {target}");
    let mut request = Vec::new();
    write_request(&mut request, "GET", target, &opts.addr.to_string(), &[]);
    for attempt in 0..2 {
        let reused = conn.is_some();
        let c = match conn {
            Some(c) => c,
            None => {
                tally.connections += 1;
                conn.insert(connect(opts.addr, tally.wire, deadline)?)
            }
        };
        let before = tally.wire.bytes_in.get();
        let sent = c.io.write_all(&request);
        if sent.is_ok() {
            tally.requests += 1;
        }
        let got = match sent {
            Ok(()) => read_response(&mut c.io, &mut c.buf),
            Err(e) => Err(ReadError::Io(e)),
        };
        // Nothing at all came back on a connection used before: the server closed
        // it while it was idle. Try once more on a new one.
        let nothing_back = tally.wire.bytes_in.get() == before;
        let closed_idle = nothing_back
            && match &got {
                Err(ReadError::Closed) => true,
                Err(ReadError::Io(e)) => matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ),
                _ => false,
            };
        if reused && closed_idle && attempt == 0 {
            *conn = None;
            continue;
        }
        let response = got.map_err(|e| e.message(opts.addr, deadline, &what))?;
        if !response.head.keep_alive() {
            *conn = None;
        }
        return Ok(response);
    }
    Err(format!("{} kept closing the connection", opts.addr))
}

/// Writes one request with no body (`METHOD target`, `Host`, then `headers`) on
/// `conn`. `what` names the answer awaited, for the error.
fn send(
    conn: &mut Conn<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    opts: &Options,
    deadline: Deadline,
    what: &str,
) -> Result<(), String> {
    let mut request = Vec::new();
    write_request(
        &mut request,
        method,
        target,
        &opts.addr.to_string(),
        headers,
    );
    conn.io
        .write_all(&request)
        .map_err(|e| fail_io(&e, opts.addr, deadline, what))
}

/// `POST /submit` on a connection of its own: the job's handle.
pub fn submit(opts: &Options, wire: &Wire, deadline: Deadline) -> Result<String, String> {
    let mut conn = connect(opts.addr, wire, deadline)?;
    let what = "the answer to POST /submit";
    // A POST without a body still says so (RFC 9110 §8.6: a user agent SHOULD
    // send Content-Length when there is no Transfer-Encoding).
    send(
        &mut conn,
        "POST",
        "/submit",
        &[("Content-Length", "0"), ("Connection", "close")],
        opts,
        deadline,
        what,
    )?;
    let response = read_response(&mut conn.io, &mut conn.buf)
        .map_err(|e| e.message(opts.addr, deadline, what))?;
    let body = String::from_utf8_lossy(&response.body);
    match response.head.status {
        200 => {}
        503 => {
            return Err(format!(
                "the server's job store is full (503); it says to retry after {} s",
                response.head.header("Retry-After").unwrap_or("?")
            ));
        }
        status => {
            return Err(format!(
                "POST /submit answered {status} {}: {}",
                response.head.reason,
                body.trim()
            ));
        }
    }
    let id = body.trim();
    if !id.starts_with("job:") || id.contains(char::is_whitespace) {
        return Err(format!(
            "POST /submit answered {body:?}, not a job:<id> handle"
        ));
    }
    Ok(id.to_string())
}

/// The job's progress values as the server lists them, once the job has ended:
/// `GET /events?jobId=ID` with no `Last-Event-ID` replays the job's whole log (its
/// 0% and every step; the jobs server keeps all of a job's updates as long as it
/// keeps the job) and, the job being over, ends. This is how a client learns how
/// many updates there were, whatever the server's step (10% by default: 0%, 10%,
/// ... 100%). On a connection of its own, counted on `wire`.
pub fn job_progress(
    id: &str,
    opts: &Options,
    wire: &Wire,
    deadline: Deadline,
) -> Result<Vec<u8>, String> {
    let target = format!("/events?jobId={}", query_value(id));
    let what = format!("the answer to GET {target}");
    let mut conn = connect(opts.addr, wire, deadline)?;
    send(
        &mut conn,
        "GET",
        &target,
        &[("Accept", "text/event-stream"), ("Connection", "close")],
        opts,
        deadline,
        &what,
    )?;
    let response = read_response(&mut conn.io, &mut conn.buf)
        .map_err(|e| e.message(opts.addr, deadline, &what))?;
    if response.head.status != 200 {
        return Err(format!(
            "GET {target} answered {} {}: {}",
            response.head.status,
            response.head.reason,
            String::from_utf8_lossy(&response.body).trim()
        ));
    }
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    parser.feed(&response.body, &mut events);
    let mut progress = Vec::new();
    for event in events.iter().filter(|e| e.event == "message") {
        let (p, _) = parse_status(&event.data)?;
        if progress.last().is_some_and(|&last| last >= p) {
            return Err(format!("GET {target} listed {p}% after {progress:?}"));
        }
        progress.push(p);
    }
    if progress.last() != Some(&100) {
        return Err(format!(
            "GET {target} listed {progress:?}, which does not end at 100%"
        ));
    }
    Ok(progress)
}

/// A polling answer: its progress and its `Job-Updated-At` stamp.
pub fn polled_status(response: &Response, target: &str) -> Result<(u8, Option<u64>), String> {
    let body = String::from_utf8_lossy(&response.body);
    if response.head.status != 200 {
        return Err(format!(
            "GET {target} answered {} {}: {}",
            response.head.status,
            response.head.reason,
            body.trim()
        ));
    }
    let (progress, _) = parse_status(&body)?;
    let stamp = match response.head.header("Job-Updated-At") {
        Some(text) => Some(
            parse_stamp(text)
                .ok_or_else(|| format!("Job-Updated-At {text:?} is not milliseconds"))?,
        ),
        None => None,
    };
    Ok((progress, stamp))
}

/// Follows job `id` to 100% the way `opts.mode` says, counting into `tally`.
pub fn follow<'w>(
    id: &str,
    opts: &Options,
    deadline: Deadline,
    tally: &mut Tally<'w>,
) -> Result<(), String> {
    match opts.mode {
        Mode::Short | Mode::Long => follow_polling(id, opts, deadline, tally),
        Mode::Sse => follow_sse(id, opts, deadline, tally),
        Mode::Ws => follow_ws(id, opts, deadline, tally),
    }
}

/// Short and long polling, on one keep-alive connection.
pub fn follow_polling<'w>(
    id: &str,
    opts: &Options,
    deadline: Deadline,
    tally: &mut Tally<'w>,
) -> Result<(), String> {
    let mut conn = None;
    let job = query_value(id);
    while !tally.updates.done() {
        let target = match (opts.mode, tally.updates.latest()) {
            (Mode::Long, Some(since)) => format!(
                "/checkstatus?jobId={job}&wait={}&since={since}",
                opts.wait_secs
            ),
            _ => format!("/checkstatus?jobId={job}"),
        };
        let response = exchange(&mut conn, &target, opts, deadline, tally)?;
        let (progress, stamp) = polled_status(&response, &target)?;
        tally.answer(progress, stamp);
        if opts.mode == Mode::Short && progress < 100 {
            deadline.sleep(opts.interval);
        }
    }
    Ok(())
}

/// Server-sent events: one stream, read to its end; reconnected with
/// `Last-Event-ID` if it ends before 100%, as `EventSource` does.
pub fn follow_sse<'w>(
    id: &str,
    opts: &Options,
    deadline: Deadline,
    tally: &mut Tally<'w>,
) -> Result<(), String> {
    let target = format!("/events?jobId={}", query_value(id));
    let what = format!("the event stream of GET {target}");
    let mut last_event_id = String::new();
    let mut retry = SSE_DEFAULT_RETRY;
    // Why the last stream ended early, when this is a reconnect.
    let mut reconnecting: Option<String> = None;
    loop {
        tally.connections += 1;
        let mut conn =
            connect(opts.addr, tally.wire, deadline).map_err(|e| match &reconnecting {
                Some(why) => format!("{why}; reconnecting after {}: {e}", Dur(retry)),
                None => e,
            })?;
        let mut headers = vec![
            ("Accept", "text/event-stream"),
            ("Cache-Control", "no-cache"),
        ];
        if !last_event_id.is_empty() {
            headers.push(("Last-Event-ID", &last_event_id));
        }
        send(&mut conn, "GET", &target, &headers, opts, deadline, &what)?;
        tally.requests += 1;
        let head = read_head(&mut conn.io, &mut conn.buf)
            .map_err(|e| e.message(opts.addr, deadline, &what))?;
        match head.status {
            // "No more events": the job has ended (WHATWG: do not reconnect).
            204 => break,
            200 => {}
            status => {
                let body = read_response_body(&head, &mut conn).unwrap_or_default();
                return Err(format!(
                    "GET {target} answered {status} {}: {}",
                    head.reason,
                    body.trim()
                ));
            }
        }
        let content_type = head.header("Content-Type").unwrap_or_default();
        if !content_type.starts_with("text/event-stream") {
            return Err(format!(
                "GET {target} answered Content-Type {content_type:?}, not text/event-stream"
            ));
        }
        let mut body = Body::new(&head).map_err(|e| e.message(opts.addr, deadline, &what))?;
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        // Read the stream until the server ends it. A connection that breaks
        // midway is reconnected, like one that ends early.
        let ended = loop {
            match body.next(&mut conn.io, &mut conn.buf) {
                Ok(Some(bytes)) => parser.feed(&bytes, &mut events),
                Ok(None) => break Ok(()),
                Err(ReadError::Closed) => break Err("the connection closed midway"),
                Err(e) => return Err(e.message(opts.addr, deadline, &what)),
            }
            // `EventSource.onmessage` gets the events of type `message` only.
            for event in events.drain(..).filter(|e| e.event == "message") {
                let (progress, stamp) = parse_status(&event.data)?;
                tally.answer(progress, stamp);
            }
        };
        tally.comments += parser.comments;
        last_event_id = parser.last_event_id.clone();
        if let Some(ms) = parser.retry_ms {
            retry = Duration::from_millis(ms);
        }
        if tally.updates.done() {
            if let Err(why) = ended {
                return Err(format!("the event stream from {}: {why}", opts.addr));
            }
            break;
        }
        // Ended before 100%: wait `retry`, then reconnect from the last ID.
        reconnecting = Some(format!(
            "the event stream ended before 100% ({})",
            match ended {
                Ok(()) => "the server ended it",
                Err(why) => why,
            }
        ));
        deadline.sleep(retry);
    }
    Ok(())
}

/// The rest of a response whose head was read, as text, for an error message.
pub fn read_response_body(head: &Head, conn: &mut Conn<'_>) -> Result<String, ReadError> {
    let mut body = Body::new(head)?;
    let mut text = Vec::new();
    while let Some(piece) = body.next(&mut conn.io, &mut conn.buf)? {
        text.extend_from_slice(&piece);
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// What the WebSocket loop does next with a decoded frame.
pub enum WsStep {
    NeedMore,
    Text(String),
    Ping(Vec<u8>),
    Close(Option<u16>),
    Other,
}

/// A WebSocket with the crate's own client: the upgrade, then one text message per
/// update, until the server's close (answered with the same code).
pub fn follow_ws<'w>(
    id: &str,
    opts: &Options,
    deadline: Deadline,
    tally: &mut Tally<'w>,
) -> Result<(), String> {
    let target = format!("/jobs?jobId={}", query_value(id));
    let addr = opts.addr;
    let mut rng = support::Rng::seeded();
    tally.connections += 1;
    let mut conn = connect(addr, tally.wire, deadline)?;
    let mut handshake = ClientHandshake::new(rng.nonce());
    let mut request = Vec::new();
    handshake
        .write_request(&addr.to_string(), &target, &mut request)
        .map_err(|e| e.to_string())?;
    let what = format!("the upgrade answer to GET {target}");
    conn.io
        .write_all(&request)
        .map_err(|e| fail_io(&e, addr, deadline, &what))?;
    tally.requests += 1;
    let head_len = loop {
        match handshake.read_response(&conn.buf) {
            Ok(Status::Complete(len)) => break len,
            Ok(Status::Partial) => {}
            Err(ClientError::NotSwitchingProtocols(status)) => {
                return Err(format!(
                    "the server refused the WebSocket on {target}: {status}"
                ));
            }
            Err(e) => return Err(format!("{addr} answered the upgrade wrongly: {e}")),
        }
        match read_more(&mut conn.io, &mut conn.buf) {
            Ok(0) => return Err(ReadError::Closed.message(addr, deadline, &what)),
            Ok(_) => {}
            Err(e) => return Err(e.message(addr, deadline, &what)),
        }
    };
    conn.buf.drain(..head_len.min(conn.buf.len()));
    let what = format!("messages on {target}");
    let mut decoder = ClientDecoder::default();
    loop {
        let decoded = decoder
            .decode(&conn.buf)
            .map_err(|e| format!("{addr} broke the WebSocket protocol: {e}"))?;
        let consumed = decoded.consumed;
        let step = match decoded.event {
            None => WsStep::NeedMore,
            Some(Event::Text(text)) => WsStep::Text(text.to_string()),
            Some(Event::Ping(payload)) => WsStep::Ping(payload.to_vec()),
            Some(Event::Close(close)) => WsStep::Close(close.map(|c| c.code.0)),
            Some(_) => WsStep::Other,
        };
        conn.buf.drain(..consumed.min(conn.buf.len()));
        match step {
            WsStep::Text(text) => {
                let (progress, stamp) = parse_status(&text)?;
                tally.answer(progress, stamp);
            }
            WsStep::Ping(payload) => {
                let mut pong = Vec::new();
                client::write_pong(&mut pong, &payload, rng.mask_key());
                conn.io
                    .write_all(&pong)
                    .map_err(|e| fail_io(&e, addr, deadline, &what))?;
            }
            WsStep::Close(code) => {
                // Answer the close with the same code (RFC 6455 §5.5.1), then wait
                // a little for the server to close TCP first (§7.1.1).
                let mut reply = Vec::new();
                let frame = code.map(|c| CloseFrame {
                    code: wirepatterns::ws::CloseCode(c),
                    reason: "",
                });
                client::write_close(&mut reply, frame, rng.mask_key());
                let _ = conn.io.write_all(&reply);
                conn.io.deadline = Deadline {
                    at: deadline.at.min(Instant::now() + WS_CLOSE_WAIT),
                    limit: deadline.limit,
                };
                let mut rest = Vec::new();
                while matches!(read_more(&mut conn.io, &mut rest), Ok(n) if n > 0) {
                    rest.clear();
                }
                if !tally.updates.done() {
                    let code = code.map_or("no code".to_string(), |c| c.to_string());
                    return Err(format!(
                        "the server closed the WebSocket ({code}) before 100%"
                    ));
                }
                return Ok(());
            }
            WsStep::Other => {}
            WsStep::NeedMore => match read_more(&mut conn.io, &mut conn.buf) {
                Ok(0) => {
                    return Err(format!(
                        "{addr} closed the connection without a WebSocket close{}",
                        if tally.updates.done() {
                            ""
                        } else {
                            ", before 100%"
                        }
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(e.message(addr, deadline, &what)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out its bytes `step` at a time, then says end of stream:
    /// a response split across many reads, as TCP may deliver it.
    struct Trickle {
        bytes: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Trickle {
        fn new(bytes: &[u8], step: usize) -> Trickle {
            Trickle {
                bytes: bytes.to_vec(),
                at: 0,
                step,
            }
        }
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// Reads every response in `bytes`, fed `step` bytes per read.
    fn responses(bytes: &[u8], step: usize) -> Vec<Response> {
        let mut r = Trickle::new(bytes, step);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while r.at < r.bytes.len() || !buf.is_empty() {
            out.push(read_response(&mut r, &mut buf).expect("a whole response"));
        }
        out
    }

    const STATUS_40: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Job-Updated-At: 1764480003000\r\n\
        Content-Length: 15\r\n\r\n\
        JobStatus: 40%\n";

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\n\
        Transfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";

    #[test]
    fn request_writer_writes_a_head_and_nothing_else() {
        let mut out = Vec::new();
        write_request(
            &mut out,
            "POST",
            "/submit",
            "127.0.0.1:8080",
            &[("Content-Length", "0")],
        );
        assert_eq!(
            out,
            b"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(query_value("job:1764480000000-1"), "job:1764480000000-1");
        assert_eq!(query_value("a&b=c d"), "a%26b%3Dc%20d");
    }

    #[test]
    fn content_length_body_is_read_whole_and_headers_found_in_any_case() {
        for step in [1, 2, 7, 4096] {
            let got = responses(STATUS_40, step);
            assert_eq!(got.len(), 1, "step {step}");
            let r = &got[0];
            assert_eq!((r.head.status, r.head.reason.as_str()), (200, "OK"));
            assert_eq!(r.body, b"JobStatus: 40%\n", "step {step}");
            assert_eq!(r.head.header("job-updated-at"), Some("1764480003000"));
            assert!(r.head.keep_alive());
        }
    }

    #[test]
    fn chunked_body_is_decoded_whatever_the_reads() {
        for step in [1, 3, 4096] {
            let got = responses(CHUNKED, step);
            assert_eq!(got.len(), 1, "step {step}");
            assert_eq!(got[0].body, b"hello, world", "step {step}");
        }
    }

    #[test]
    fn back_to_back_responses_on_one_connection_stay_apart() {
        let mut both = CHUNKED.to_vec();
        both.extend_from_slice(STATUS_40);
        both.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        both.extend_from_slice(STATUS_40);
        for step in [1, 5, 4096] {
            let got = responses(&both, step);
            let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
            assert_eq!(
                bodies,
                [
                    &b"hello, world"[..],
                    b"JobStatus: 40%\n",
                    b"",
                    b"JobStatus: 40%\n"
                ],
                "step {step}"
            );
            assert_eq!(got[2].head.status, 204);
        }
    }

    #[test]
    fn a_body_without_length_runs_to_the_close() {
        let bytes = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it";
        let got = responses(bytes, 4);
        assert_eq!(got[0].body, b"all of it");
        assert!(!got[0].head.keep_alive());
        let old = responses(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 100);
        assert!(!old[0].head.keep_alive(), "HTTP/1.0 closes by default");
    }

    #[test]
    fn cut_short_or_malformed_responses_are_errors() {
        let read = |bytes: &[u8]| read_response(&mut Trickle::new(bytes, 3), &mut Vec::new());
        assert!(matches!(read(b""), Err(ReadError::Closed)));
        assert!(matches!(read(&STATUS_40[..20]), Err(ReadError::Closed)));
        assert!(matches!(
            read(&STATUS_40[..STATUS_40.len() - 1]),
            Err(ReadError::Closed)
        ));
        assert!(matches!(
            read(&CHUNKED[..CHUNKED.len() - 2]),
            Err(ReadError::Closed)
        ));
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(
                matches!(read(bad), Err(ReadError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let endless = [b'x'; MAX_HEAD + 10];
        let mut r = Trickle::new(&endless, 1000);
        assert!(matches!(
            read_response(&mut r, &mut Vec::new()),
            Err(ReadError::Malformed(_))
        ));
    }

    /// The events from feeding `pieces` one after another.
    fn sse(pieces: &[&str]) -> (Vec<SseEvent>, SseParser) {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for piece in pieces {
            parser.feed(piece.as_bytes(), &mut events);
        }
        (events, parser)
    }

    fn event(data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: "message".into(),
            data: data.into(),
            id: id.into(),
        }
    }

    #[test]
    fn sse_the_servers_stream() {
        let stream = "retry: 2000\n\n\
            id: 0\ndata: JobStatus: 0% at=1764480000000\n\n\
            : heartbeat\n\n\
            id: 10\ndata: JobStatus: 10% at=1764480003000\n\n";
        let (events, parser) = sse(&[stream]);
        assert_eq!(
            events,
            [
                event("JobStatus: 0% at=1764480000000", "0"),
                event("JobStatus: 10% at=1764480003000", "10")
            ]
        );
        assert_eq!(parser.retry_ms, Some(2000));
        assert_eq!(parser.comments, 1);
        assert_eq!(parser.last_event_id, "10");
    }

    #[test]
    fn sse_data_lines_join_with_newlines_and_one_space_is_dropped() {
        let (events, _) = sse(&["data: first\ndata:second\ndata:  third\ndata\n\n"]);
        assert_eq!(events, [event("first\nsecond\n third\n", "")]);
        let (events, _) = sse(&["event: progress\ndata: x\n\ndata: y\n\n"]);
        assert_eq!(events[0].event, "progress");
        assert_eq!(events[1].event, "message", "the type does not carry over");
    }

    #[test]
    fn sse_comments_and_unknown_fields_are_ignored_and_empty_events_not_sent() {
        let (events, parser) = sse(&[
            ": hi\n:\nfoo: bar\nretry: soon\n\n\n",
            "data: a\n: inside\n\n",
        ]);
        assert_eq!(events, [event("a", "")]);
        assert_eq!(parser.comments, 3);
        assert_eq!(parser.retry_ms, None, "retry must be digits only");
    }

    #[test]
    fn sse_id_persists_until_changed_and_a_nul_is_refused() {
        let (events, parser) = sse(&[
            "id: 7\ndata: a\n\n",
            "data: b\n\n",
            "id: bad\0\ndata: c\n\n",
            "id\ndata: d\n\n",
        ]);
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["7", "7", "7", ""]);
        assert_eq!(parser.last_event_id, "");
        // An id with no data is still the stream's last event ID at the empty line.
        let (events, parser) = sse(&["id: 40\n\n"]);
        assert!(events.is_empty());
        assert_eq!(parser.last_event_id, "40");
        // ...but not before it.
        let (_, parser) = sse(&["id: 40\n\nid: 50\n"]);
        assert_eq!(parser.last_event_id, "40");
    }

    #[test]
    fn sse_every_line_ending_and_every_split() {
        let want = [event("a\nb", "1"), event("c", "1")];
        for text in [
            "id: 1\ndata: a\ndata: b\n\ndata: c\n\n",
            "id: 1\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
            "id: 1\rdata: a\rdata: b\r\rdata: c\r\r",
            "\u{FEFF}id: 1\rdata: a\r\ndata: b\n\r\ndata: c\n\r",
        ] {
            // Whole, then cut at every byte (a CR at the end of one read and its LF
            // at the start of the next are still one line ending).
            assert_eq!(sse(&[text]).0, want, "{text:?}");
            for cut in 1..text.len() {
                if !text.is_char_boundary(cut) {
                    continue;
                }
                let (a, b) = text.split_at(cut);
                assert_eq!(sse(&[a, b]).0, want, "{text:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn sse_an_event_the_stream_ends_inside_is_dropped() {
        let (events, _) = sse(&["data: whole\n\ndata: cut"]);
        assert_eq!(events, [event("whole", "")]);
        let (events, _) = sse(&["data: no blank line\n"]);
        assert!(events.is_empty());
    }

    #[test]
    fn status_lines_and_stamps() {
        assert_eq!(parse_status("JobStatus: 40%\n"), Ok((40, None)));
        assert_eq!(parse_status("JobStatus: 0%"), Ok((0, None)));
        assert_eq!(
            parse_status("JobStatus: 100% at=1764480003000"),
            Ok((100, Some(1_764_480_003_000)))
        );
        for bad in [
            "",
            "JobStatus: 40",
            "JobStatus: 101%",
            "JobStatus: -1%",
            "JobStatus: x%",
            "Status: 40%",
            "JobStatus: 40% at=",
            "JobStatus: 40% at=12.5",
            "JobStatus: 40% since=3",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_stamp("1764480003000"), Some(1_764_480_003_000));
        assert_eq!(parse_stamp(" 17 "), Some(17));
        for bad in ["", "-5", "+5", "1.5", "1 2", "99999999999999999999999"] {
            assert_eq!(parse_stamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 50), Some(5));
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 100), Some(10));
        assert_eq!(percentile(&ten, 1), Some(1));
        let eleven: Vec<u64> = (1..=11).collect();
        assert_eq!(percentile(&eleven, 50), Some(6));
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 100), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn updates_count_each_progress_once_with_its_lateness() {
        let mut updates = Updates::default();
        assert!(updates.saw(0, Some(1000), 1005));
        assert!(!updates.saw(0, Some(1000), 1100), "a repeat is no news");
        assert!(updates.saw(10, None, 1200));
        assert!(updates.saw(20, Some(1300), 1290));
        assert_eq!(updates.seen, [(0, Some(5)), (10, None), (20, Some(-10))]);
        assert_eq!(updates.latest(), Some(20));
        assert!(!updates.done());
        updates.saw(100, Some(0), 0);
        assert!(updates.done());
    }

    #[test]
    fn missed_updates_are_those_made_and_not_seen_and_0_is_none() {
        let made = [0, 25, 50, 75, 100];
        let mut updates = Updates::default();
        // A short poll slower than the steps: 0%, then 50%, then 100%.
        for p in [0, 0, 50, 100] {
            updates.saw(p, None, 0);
        }
        assert_eq!(updates.updates_seen(), 2, "0% is where following starts");
        assert_eq!(updates.missed_of(&made), [25, 75]);
        let made_updates = made.iter().filter(|&&p| is_update(p)).count() as u64;
        assert_eq!(made_updates, 4);
        assert_eq!(missed(made_updates, updates.updates_seen()), 2);
        // A client that joined after 0% misses nothing for it.
        let mut late = Updates::default();
        for p in [25, 50, 75, 100] {
            late.saw(p, None, 0);
        }
        assert_eq!(late.missed_of(&made), []);
        assert_eq!(missed(4, late.updates_seen()), 0);
    }
}
