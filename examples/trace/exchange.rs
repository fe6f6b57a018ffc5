//! One exchange over a blocking `TcpStream`: resolve, connect, write the request,
//! read one response by its framing (or, with `--ws`, hold a WebSocket
//! conversation), dumping every byte and marking each phase on the way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use wirepatterns::http::response_parser::{ResponseEvent, ResponseFraming, ResponseReader};
use wirepatterns::http::tables::is_tchar;
use wirepatterns::http::{Limits, Status};
use wirepatterns::trace::Dur;
use wirepatterns::ws::{ClientDecoder, ClientHandshake, CloseCode, CloseFrame, Event, client};

use crate::support::Rng;
use crate::url::Url;
use crate::wire::{Block, Bytes, Counted, Counters, Timeline, hex_dump};

/// Why an exchange failed: a one-line message and the process's exit code (2 for
/// a request that cannot be made as asked, 1 for everything the network or the
/// server did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message, one line.
    pub message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn net(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method: `GET`, or `POST` when there is a body, unless `-X` says.
    pub method: String,
    /// Where to.
    pub url: Url,
    /// `-H` header fields, in order.
    pub headers: Vec<(String, String)>,
    /// `-d` data: the body (sent with Content-Length), or with `--ws` the message.
    pub data: Option<Vec<u8>>,
    /// How long any one connect, read or write may take.
    pub timeout: Duration,
    /// `-0`: send an HTTP/1.0 request (a server then answers a stream it cannot
    /// size by closing the connection at its end, RFC 9112 §6.3 rule 8).
    pub http10: bool,
}

/// What came back from an HTTP exchange.
#[derive(Debug, Clone)]
pub struct HttpReport {
    /// Status codes of interim (1xx) responses, in order.
    pub interim: Vec<u16>,
    /// The final status code.
    pub status: u16,
    /// Its header fields.
    pub headers: Vec<(String, Vec<u8>)>,
    /// How its body was framed.
    pub framing: ResponseFraming,
    /// The body, decoded (no chunk framing).
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// The phases.
    pub timeline: Timeline,
}

/// What came back from a WebSocket conversation.
#[derive(Debug, Clone)]
pub struct WsReport {
    /// The text (or, lossily, binary) messages received, in order.
    pub received: Vec<String>,
    /// The server's close code, if its close frame had one.
    pub close_code: Option<u16>,
    /// The phases.
    pub timeline: Timeline,
}

/// Writes `text` to the trace; a trace that cannot be written (a closed pipe) is
/// not a reason to stop the exchange.
fn emit(out: &mut dyn Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
}

fn info(out: &mut dyn Write, text: &str) {
    emit(out, &format!("== Info: {text}\n"));
}

fn dump(out: &mut dyn Write, block: Block, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let mut text = String::new();
    hex_dump(&mut text, block, bytes);
    emit(out, &text);
}

/// Bytes as text for a one-line message: printable ASCII kept, the rest escaped.
fn printable(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// The request's bytes: the head (request line, `Host`, the `-H` fields,
/// `Content-Length` for a body) and the body. The method must be a token, and each
/// field a token name and a value without CR, LF or NUL, or the request would not
/// be the one asked for.
pub fn build_request(request: &Request) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let method = &request.method;
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Failure::usage(format!(
            "bad method {method:?}: it must be a token (RFC 9110 section 9.1)"
        )));
    }
    let has = |name: &str| {
        request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let version = if request.http10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut head = format!("{method} {} {version}\r\n", request.url.target);
    // RFC 9112 §3.2: a client MUST send Host in every HTTP/1.1 request (and this
    // one sends it in 1.0 too, as curl does); a -H Host replaces it.
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", request.url.host_header()));
    }
    for (name, value) in &request.headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(Failure::usage(format!(
                "bad -H field name {name:?}: it must be a token (RFC 9110 section 5.1)"
            )));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Failure::usage(format!(
                "bad -H value for {name}: no CR, LF or NUL (RFC 9110 section 5.5)"
            )));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = request.data.clone().unwrap_or_default();
    // RFC 9110 §8.6: a body is announced by its length (a POST without one also
    // says 0, so the server does not wait for a body that never comes).
    if (request.data.is_some() || method == "POST" || method == "PUT")
        && !has("content-length")
        && !has("transfer-encoding")
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    Ok((head.into_bytes(), body))
}

/// The addresses `url` names, each one tried in turn by [`connect`].
fn resolve(url: &Url) -> Result<Vec<SocketAddr>, Failure> {
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| Failure::net(format!("cannot resolve host {:?}: {e}", url.host)))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::net(format!(
            "cannot resolve host {:?}: no address",
            url.host
        )));
    }
    Ok(addrs)
}

/// Resolves and connects, marking both phases; the stream has `timeout` on reads
/// and writes.
fn open(
    url: &Url,
    timeout: Duration,
    timeline: &mut Timeline,
    out: &mut dyn Write,
) -> Result<Counted<TcpStream>, Failure> {
    let addrs = resolve(url)?;
    timeline.mark("DNS lookup", Instant::now(), Counters::default());
    let mut last = None;
    for addr in &addrs {
        info(out, &format!("Trying {addr}..."));
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                timeline.mark("TCP connect", Instant::now(), Counters::default());
                info(
                    out,
                    &format!(
                        "Connected to {} ({}) port {}",
                        url.host,
                        addr.ip(),
                        addr.port()
                    ),
                );
                let set = stream
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| stream.set_write_timeout(Some(timeout)));
                set.map_err(|e| Failure::net(format!("cannot set timeouts: {e}")))?;
                return Ok(Counted::new(stream));
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, e) = last.ok_or_else(|| Failure::net("no address to connect to"))?;
    Err(Failure::net(format!(
        "cannot connect to {} ({addr}): {e}",
        url.host
    )))
}

/// One `read()`, retried if a signal interrupted it; a timeout is a failure that
/// says what was awaited.
fn read_some(
    stream: &mut Counted<TcpStream>,
    buf: &mut [u8],
    awaiting: &str,
    timeout: Duration,
) -> Result<usize, Failure> {
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::net(format!(
                    "no {awaiting} within {}",
                    Dur(timeout)
                )));
            }
            Err(e) => {
                return Err(Failure::net(format!(
                    "read failed while waiting for {awaiting}: {e}"
                )));
            }
        }
    }
}

fn write_all(stream: &mut Counted<TcpStream>, bytes: &[u8]) -> Result<(), Failure> {
    stream
        .write_all(bytes)
        .map_err(|e| Failure::net(format!("write failed: {e}")))
}

/// Size of each `read()`.
const READ_CHUNK: usize = 16 * 1024;

/// Sends `request` and reads one response, by its framing (RFC 9112 §6.3): to its
/// Content-Length, to the last chunk, or, when it is close-delimited, to the
/// server's close. The trace goes to `out` as it happens.
pub fn http(request: &Request, out: &mut dyn Write) -> Result<HttpReport, Failure> {
    let (head, body) = build_request(request)?;
    let start = Instant::now();
    let mut timeline = Timeline::new(start);
    let mut stream = open(&request.url, request.timeout, &mut timeline, out)?;

    let mut bytes = head.clone();
    bytes.extend_from_slice(&body);
    write_all(&mut stream, &bytes)?;
    dump(out, Block::SendHeader, &head);
    dump(out, Block::SendData, &body);
    timeline.mark("request written", Instant::now(), stream.counters);

    let limits = Limits {
        max_body_bytes: 1 << 30,
        ..Limits::default()
    };
    let mut reader = ResponseReader::with_limits(&request.method, limits);
    // Received and not yet consumed; `base` is where `buf[0]` lies in the stream.
    let mut buf = Vec::new();
    let mut base = 0u64;
    // Where the final head ends in the stream: bytes before it are headers.
    let mut head_end: Option<u64> = None;
    let mut report = HttpReport {
        interim: Vec::new(),
        status: 0,
        headers: Vec::new(),
        framing: ResponseFraming::UntilClose,
        body: Vec::new(),
        trailers: Vec::new(),
        timeline: Timeline::new(start),
    };
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut received = 0u64;
    let mut complete = false;
    // Every read returns at least one byte or ends the loop, and the reader's limits
    // bound the bytes, so this ends; the socket's timeout bounds each wait.
    while !complete {
        let n = read_some(&mut stream, &mut chunk, "response", request.timeout)?;
        if n == 0 {
            reader
                .eof()
                .map_err(|e| Failure::net(format!("the server closed the connection: {e}")))?;
            info(out, "the server closed the connection");
        } else if received == 0 {
            timeline.mark("first byte", Instant::now(), stream.counters);
        }
        let from = received;
        received += n as u64;
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        // Each step consumes bytes or returns an event; need-more ends it.
        for _ in 0..=buf.len() + 4 {
            let step = reader
                .read(&buf[pos..])
                .map_err(|e| Failure::net(format!("bad response: {e}")))?;
            pos += step.consumed;
            match step.event {
                None => break,
                Some(ResponseEvent::Interim(h)) => {
                    report.interim.push(h.status());
                    info(
                        out,
                        &format!(
                            "interim response {} {}: the final one follows",
                            h.status(),
                            printable(h.reason())
                        ),
                    );
                }
                Some(ResponseEvent::Head(h)) => {
                    head_end = Some(base + pos as u64);
                    report.status = h.status();
                    report.framing = h.framing();
                    report.headers = h
                        .headers()
                        .map(|f| (f.name.to_string(), f.value.to_vec()))
                        .collect();
                    timeline.mark("head parsed", Instant::now(), stream.counters);
                }
                Some(ResponseEvent::Body(data)) => report.body.extend_from_slice(data),
                Some(ResponseEvent::Complete) => {
                    timeline.mark("body complete", Instant::now(), stream.counters);
                    complete = true;
                    break;
                }
            }
        }
        // This read's bytes: the part before the final head's end is header.
        let split = head_end.unwrap_or(received).clamp(from, received);
        let read = &chunk[..n];
        let (h, d) = read.split_at((split - from) as usize);
        dump(out, Block::RecvHeader, h);
        dump(out, Block::RecvData, d);
        base += pos as u64;
        buf.drain(..pos);
        if n == 0 && !complete {
            return Err(Failure::net(
                "the server closed the connection before the response was complete",
            ));
        }
    }
    if !buf.is_empty() {
        info(
            out,
            &format!(
                "{} after the response, not read as part of it",
                Bytes(buf.len() as u64)
            ),
        );
    }
    report.trailers = reader.trailers().to_vec();
    let framing = match report.framing {
        ResponseFraming::NoBody => "no body (RFC 9112 section 6.3 rule 1)".to_string(),
        ResponseFraming::Switched => "switched protocols: what follows is not HTTP".to_string(),
        ResponseFraming::Chunked => "chunked".to_string(),
        ResponseFraming::Length(n) => format!("Content-Length {n}"),
        ResponseFraming::UntilClose => "until the server closed the connection".to_string(),
    };
    info(
        out,
        &format!(
            "status {}, body {} ({framing})",
            report.status,
            Bytes(report.body.len() as u64)
        ),
    );
    report.timeline = timeline;
    emit(out, &report.timeline.to_string());
    Ok(report)
}

/// A frame the server sent, decoded and owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

impl Incoming {
    fn describe(&self) -> String {
        match self {
            Incoming::Text(t) => format!("text (0x1), {}: {t:?}", Bytes(t.len() as u64)),
            Incoming::Binary(b) => {
                format!("binary (0x2), {}: {}", Bytes(b.len() as u64), printable(b))
            }
            Incoming::Ping(p) => format!("ping (0x9), {}: {}", Bytes(p.len() as u64), printable(p)),
            Incoming::Pong(p) => format!("pong (0xa), {}: {}", Bytes(p.len() as u64), printable(p)),
            Incoming::Close(None) => "close (0x8), no code".to_string(),
            Incoming::Close(Some((code, reason))) => {
                format!("close (0x8), code {code}, reason {reason:?}")
            }
        }
    }
}

/// The WebSocket side: the bytes received and not yet decoded, and the decoder.
struct Frames {
    decoder: ClientDecoder,
    buf: Vec<u8>,
}

impl Frames {
    /// The next whole frame in `buf`, if there is one.
    fn next(&mut self) -> Result<Option<Incoming>, Failure> {
        // Each call consumes bytes or stops: bounded by the buffer's length.
        for _ in 0..=self.buf.len() {
            let decoded = self
                .decoder
                .decode(&self.buf)
                .map_err(|e| Failure::net(format!("bad frame from the server: {e}")))?;
            let consumed = decoded.consumed;
            let event = decoded.event.map(|e| match e {
                Event::Text(t) => Incoming::Text(t.to_string()),
                Event::Binary(b) => Incoming::Binary(b.to_vec()),
                Event::Ping(p) => Incoming::Ping(p.to_vec()),
                Event::Pong(p) => Incoming::Pong(p.to_vec()),
                Event::Close(c) => Incoming::Close(c.map(|c| (c.code.0, c.reason.to_string()))),
            });
            self.buf.drain(..consumed);
            if event.is_some() || consumed == 0 {
                return Ok(event);
            }
        }
        Ok(None)
    }
}

/// The WebSocket conversation: the opening handshake with the crate's client role
/// (RFC 6455 §4.1), each message sent as a masked text frame and the server's
/// frames read until its next message, then the close handshake (§5.5.1, §7): a
/// close frame each way, then the server closes TCP.
///
/// The nonce and the masking keys come from a small non-cryptographic generator
/// seeded from the time and the process id: enough for a trace, not the "strong
/// source of entropy" §10.3 asks of a browser. The library itself takes keys from
/// its caller.
pub fn websocket(
    request: &Request,
    messages: &mut dyn Iterator<Item = String>,
    out: &mut dyn Write,
) -> Result<WsReport, Failure> {
    let url = &request.url;
    let mut rng = Rng::seeded();
    let handshake = ClientHandshake::new(rng.nonce());
    let mut head = Vec::new();
    handshake
        .write_request(&url.host_header(), &url.target, &mut head)
        .map_err(|e| Failure::usage(format!("cannot build the handshake: {e}")))?;
    // The -H fields go before the empty line.
    head.truncate(head.len() - 2);
    for (name, value) in &request.headers {
        if name.is_empty()
            || !name.bytes().all(is_tchar)
            || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            return Err(Failure::usage(format!("bad -H field {name:?}")));
        }
        head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");

    let start = Instant::now();
    let mut timeline = Timeline::new(start);
    let mut stream = open(url, request.timeout, &mut timeline, out)?;
    write_all(&mut stream, &head)?;
    dump(out, Block::SendHeader, &head);
    timeline.mark("handshake sent", Instant::now(), stream.counters);

    let mut handshake = handshake;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    // The handshake head is bounded (`MAX_RESPONSE_HEAD`): every read adds a byte
    // or ends the loop.
    let head_len = loop {
        let n = read_some(
            &mut stream,
            &mut chunk,
            "handshake response",
            request.timeout,
        )?;
        if n == 0 {
            return Err(Failure::net(
                "the server closed the connection during the handshake",
            ));
        }
        if buf.is_empty() {
            timeline.mark("first byte", Instant::now(), stream.counters);
        }
        let from = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        let status = handshake
            .read_response(&buf)
            .map_err(|e| Failure::net(format!("handshake refused: {e}")))?;
        match status {
            Status::Partial => dump(out, Block::RecvHeader, &chunk[..n]),
            Status::Complete(len) => {
                let split = len.saturating_sub(from).min(n);
                dump(out, Block::RecvHeader, &chunk[..split]);
                dump(out, Block::RecvData, &chunk[split..n]);
                break len;
            }
        }
    };
    timeline.mark("101 received", Instant::now(), stream.counters);
    info(
        out,
        &format!(
            "WebSocket open: Sec-WebSocket-Accept is {}",
            handshake.expected_accept()
        ),
    );
    let mut frames = Frames {
        decoder: ClientDecoder::default(),
        buf: buf.split_off(head_len),
    };

    let mut report = WsReport {
        received: Vec::new(),
        close_code: None,
        timeline: Timeline::new(start),
    };
    let mut closed_by_server = false;
    for (i, message) in messages.enumerate() {
        let mut frame = Vec::new();
        let key = rng.mask_key();
        client::write_text(&mut frame, &message, key);
        write_all(&mut stream, &frame)?;
        info(
            out,
            &format!(
                "send frame: text (0x1), {}, masked with key {:02x}{:02x}{:02x}{:02x}: {message:?}",
                Bytes(message.len() as u64),
                key[0],
                key[1],
                key[2],
                key[3]
            ),
        );
        dump(out, Block::SendData, &frame);
        timeline.mark(
            format!("message {} sent", i + 1),
            Instant::now(),
            stream.counters,
        );
        match converse(
            &mut stream,
            &mut frames,
            &mut rng,
            &mut chunk,
            request.timeout,
            out,
            &mut report,
        )? {
            true => timeline.mark(
                format!("message {} answered", i + 1),
                Instant::now(),
                stream.counters,
            ),
            false => {
                // §5.5.1: a close is answered with a close, then the server closes TCP.
                closed_by_server = true;
                let mut frame = Vec::new();
                let code = report.close_code.map_or(CloseCode::NORMAL, CloseCode);
                client::write_close(
                    &mut frame,
                    Some(CloseFrame { code, reason: "" }),
                    rng.mask_key(),
                );
                write_all(&mut stream, &frame)?;
                info(
                    out,
                    &format!(
                        "send frame: close (0x8), code {}, answering the server's",
                        code.0
                    ),
                );
                dump(out, Block::SendData, &frame);
                timeline.mark("close answered", Instant::now(), stream.counters);
                break;
            }
        }
    }
    if !closed_by_server {
        let mut frame = Vec::new();
        let close = CloseFrame {
            code: CloseCode::NORMAL,
            reason: "",
        };
        client::write_close(&mut frame, Some(close), rng.mask_key());
        write_all(&mut stream, &frame)?;
        info(out, "send frame: close (0x8), code 1000");
        dump(out, Block::SendData, &frame);
        timeline.mark("close sent", Instant::now(), stream.counters);
        // Frames the server sent before its close are read and shown; its close
        // ends the conversation.
        while converse(
            &mut stream,
            &mut frames,
            &mut rng,
            &mut chunk,
            request.timeout,
            out,
            &mut report,
        )? {}
        timeline.mark("close answered", Instant::now(), stream.counters);
    }
    // RFC 6455 §7.1.1: the server closes TCP first; wait for its FIN.
    loop {
        let n = read_some(
            &mut stream,
            &mut chunk,
            "the server to close TCP",
            request.timeout,
        )?;
        if n == 0 {
            break;
        }
        dump(out, Block::RecvData, &chunk[..n]);
    }
    timeline.mark("TCP closed", Instant::now(), stream.counters);
    info(out, "the server closed the connection");
    report.timeline = timeline;
    emit(out, &report.timeline.to_string());
    Ok(report)
}

/// Reads frames until a data message (`Ok(true)`) or the server's close frame
/// (`Ok(false)`, answered with a close if this side had not sent one). Pings are
/// answered with pongs on the way (§5.5.2).
fn converse(
    stream: &mut Counted<TcpStream>,
    frames: &mut Frames,
    rng: &mut Rng,
    chunk: &mut [u8],
    timeout: Duration,
    out: &mut dyn Write,
    report: &mut WsReport,
) -> Result<bool, Failure> {
    // Every turn decodes a frame or reads at least one byte; the decoder bounds the
    // frame sizes and the socket's timeout bounds each wait.
    loop {
        while let Some(frame) = frames.next()? {
            info(out, &format!("recv frame: {}", frame.describe()));
            match frame {
                Incoming::Text(t) => {
                    report.received.push(t);
                    return Ok(true);
                }
                Incoming::Binary(b) => {
                    report
                        .received
                        .push(String::from_utf8_lossy(&b).into_owned());
                    return Ok(true);
                }
                Incoming::Ping(payload) => {
                    let mut pong = Vec::new();
                    client::write_pong(&mut pong, &payload, rng.mask_key());
                    write_all(stream, &pong)?;
                    info(out, "send frame: pong (0xa), the ping's payload");
                    dump(out, Block::SendData, &pong);
                }
                Incoming::Pong(_) => {}
                Incoming::Close(close) => {
                    report.close_code = close.map(|(code, _)| code);
                    return Ok(false);
                }
            }
        }
        let n = read_some(stream, chunk, "frame from the server", timeout)?;
        if n == 0 {
            return Err(Failure::net("the server closed TCP without a close frame"));
        }
        dump(out, Block::RecvData, &chunk[..n]);
        frames.buf.extend_from_slice(&chunk[..n]);
    }
}
