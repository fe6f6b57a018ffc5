//! What the jobs tests share: a jobs server on a free port through the library API,
//! a blocking HTTP/1.1 client that reads Content-Length and chunked bodies byte by
//! byte (so a test sees the framing, the chunked terminator included), an SSE
//! reader on top of it, and bounded waits on the server's own state.
//!
//! Every client socket has a read timeout and every loop a deadline, so a bug fails
//! a test instead of hanging it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wirepatterns::patterns::jobs::{JobConfig, JobId};
use wirepatterns::patterns::polling::{JobsApp, JobsConfig};
use wirepatterns::patterns::websocket::{WsConfig, WsServer};
use wirepatterns::server::{Config, Running, Server};

/// How long a client waits for any one read before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A running jobs server.
pub type JobsServer = Running<WsServer<JobsApp>>;

/// The jobs server's settings with jobs that advance every `step` (10% a step), the
/// rest default.
pub fn config(step: Duration) -> JobsConfig {
    JobsConfig {
        jobs: JobConfig {
            step,
            ..JobConfig::default()
        },
        ..JobsConfig::default()
    }
}

/// The `jobs` example's application on a free port of 127.0.0.1 (WebSocket pings
/// off: no test here is about them).
pub fn start(config: JobsConfig) -> JobsServer {
    start_app(JobsApp::new(config).expect("the jobs app starts"))
}

/// Serves `app` on a free port of 127.0.0.1.
pub fn start_app(app: JobsApp) -> JobsServer {
    let ws = WsConfig {
        ping_interval: None,
        ..WsConfig::default()
    };
    Server::bind(
        Config::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        WsServer::new(ws, app),
    )
    .and_then(Server::spawn)
    .expect("server starts")
}

/// Milliseconds since the Unix epoch, as the server stamps updates.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits")
}

/// A handle with its `:` percent-encoded, as a browser's `encodeURIComponent`
/// writes it.
pub fn enc(id: &str) -> String {
    id.replace(':', "%3A")
}

/// A response as the client parsed it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.head, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A header's value in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A client connection with its own read buffer.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes read and not yet taken by a parse.
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one request (`extra`: header lines, each ending in CRLF). A POST
    /// carries `Content-Length: 0`.
    pub fn request(&mut self, method: &str, target: &str, extra: &str) {
        self.send(request_bytes(method, target, extra).as_bytes());
    }

    /// Reads more bytes into `buf`; `false` at end of file (or a reset).
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
                Err(e) => panic!(
                    "read failed ({e}); got so far: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "connection closed before {n} bytes arrived");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8(line[..i].to_vec()).expect("ASCII line");
            }
            assert!(
                self.fill(),
                "connection closed inside a line: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads a response head (status line to the empty line).
    pub fn head(&mut self) -> Resp {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                let head = String::from_utf8(head).expect("ASCII head");
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no status in {head:?}"));
                return Resp {
                    status,
                    head,
                    body: Vec::new(),
                };
            }
            assert!(
                self.fill(),
                "connection closed inside a response head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads a whole response: a Content-Length body, a chunked one (every chunk,
    /// the terminator included), none for 204 and 304, else up to end of file.
    pub fn response(&mut self) -> Resp {
        let mut resp = self.head();
        if resp.status == 204 || resp.status == 304 {
            return resp;
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            while let Some(chunk) = self.chunk() {
                resp.body.extend_from_slice(&chunk);
            }
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("numeric Content-Length");
            resp.body = self.take(len);
        } else {
            resp.body = self.until_eof();
        }
        resp
    }

    /// Reads one chunk of a chunked body; `None` once the last chunk (size 0) and
    /// the empty line after it (no trailers expected) have been read.
    pub fn chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.line();
        let size = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            let end = self.line();
            assert_eq!(end, "", "the chunked terminator ends with an empty line");
            return None;
        }
        let data = self.take(size);
        assert_eq!(self.take(2), b"\r\n", "a chunk ends with CRLF");
        Some(data)
    }

    /// Reads until the server closes; fails if it does not within the timeout.
    pub fn until_eof(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// Whether the server closed with nothing more sent.
    pub fn at_eof(&mut self) -> bool {
        self.buf.is_empty() && !self.fill()
    }
}

/// The bytes of one request (`extra`: header lines, each ending in CRLF).
pub fn request_bytes(method: &str, target: &str, extra: &str) -> String {
    let length = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{length}{extra}\r\n")
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection; its whole response.
pub fn call(addr: SocketAddr, method: &str, target: &str) -> Resp {
    call_with(addr, method, target, "")
}

/// [`call`] with extra header lines.
pub fn call_with(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Resp {
    let mut client = Client::connect(addr);
    client.request(method, target, extra);
    client.response()
}

/// `POST /submit`: the handle, checked to be the canonical `job:<ms>[-<n>]`.
pub fn submit(addr: SocketAddr) -> String {
    let resp = call(addr, "POST", "/submit");
    handle_of(&resp)
}

/// The handle a submit's response carries, after checking the response.
pub fn handle_of(resp: &Resp) -> String {
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{resp:?}"
    );
    let text = resp.text();
    let id = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("the handle ends with a newline: {text:?}"));
    assert!(JobId::parse(id).is_some(), "not a handle: {id:?}");
    id.to_string()
}

/// The `N` of a `JobStatus: N%\n` body.
pub fn progress_of(resp: &Resp) -> u8 {
    assert_eq!(resp.status, 200, "{resp:?}");
    let text = resp.text();
    text.strip_prefix("JobStatus: ")
        .and_then(|t| t.strip_suffix("%\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a status body: {text:?}"))
}

/// A short poll's progress.
pub fn status(addr: SocketAddr, id: &str) -> u8 {
    progress_of(&call(
        addr,
        "GET",
        &format!("/checkstatus?jobId={}", enc(id)),
    ))
}

/// Short-polls (a few ms apart) until the job reports at least `target`; returns
/// that response. Fails after `within`.
pub fn wait_progress(addr: SocketAddr, id: &str, target: u8, within: Duration) -> Resp {
    let deadline = Instant::now() + within;
    loop {
        let resp = call(addr, "GET", &format!("/checkstatus?jobId={}", enc(id)));
        if progress_of(&resp) >= target {
            return resp;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never reached {target}%: still {:?}, updated at {:?}",
            resp.text(),
            resp.header("job-updated-at")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `GET /stats` as a map of name to value.
pub fn stats(addr: SocketAddr) -> BTreeMap<String, String> {
    let resp = call(addr, "GET", "/stats");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{resp:?}"
    );
    resp.text()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("not `name value`: {line:?}"));
            (name.to_string(), value.trim().to_string())
        })
        .collect()
}

/// One counter of `/stats`, as a number.
pub fn stat(stats: &BTreeMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in /stats: {stats:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number: {stats:?}"))
}

/// Polls `/stats` (a few ms apart) until `done` holds for counter `name`; returns
/// the stats then. Fails after `within`.
pub fn wait_stat(
    addr: SocketAddr,
    name: &str,
    within: Duration,
    done: impl Fn(u64) -> bool,
) -> BTreeMap<String, String> {
    let deadline = Instant::now() + within;
    loop {
        let stats = stats(addr);
        if done(stat(&stats, name)) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {name}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One SSE block: its lines up to the blank line that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block(pub String);

impl Block {
    /// The value of field `name` (`name: value`), if the block has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            (n == name).then(|| v.strip_prefix(' ').unwrap_or(v))
        })
    }

    /// Whether every line is a comment (`: ...`).
    pub fn is_comment(&self) -> bool {
        self.0.lines().all(|l| l.starts_with(':'))
    }
}

/// An SSE stream read off a chunked response (or off a whole one, which is all
/// read at once).
pub struct Sse {
    pub client: Client,
    /// Decoded body bytes not yet split into blocks.
    pending: Vec<u8>,
    /// Whether the body ended: the chunked terminator was read, or the whole
    /// Content-Length body.
    pub ended: bool,
    /// Whether the body is chunked (a stream) rather than one whole body.
    pub chunked: bool,
}

impl Sse {
    /// Sends `GET target` with `extra` header lines and reads the response head.
    pub fn open(addr: SocketAddr, target: &str, extra: &str) -> (Resp, Sse) {
        let mut client = Client::connect(addr);
        client.request("GET", target, extra);
        let head = client.head();
        let mut sse = Sse {
            client,
            pending: Vec::new(),
            ended: false,
            chunked: head
                .header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked")),
        };
        if !sse.chunked {
            // A whole response (an error, or every event of a finished job at
            // once): its body is all there is.
            if let Some(len) = head.header("content-length") {
                let len = len.parse().expect("numeric Content-Length");
                sse.pending = sse.client.take(len);
            }
            sse.ended = true;
        }
        (head, sse)
    }

    /// The next block, or `None` once the stream ended (chunked terminator read).
    /// Fails if the stream ends inside a block.
    pub fn block(&mut self) -> Option<Block> {
        loop {
            if let Some(i) = find(&self.pending, b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..i + 2).collect();
                let text = String::from_utf8(block[..i].to_vec()).expect("UTF-8 events");
                return Some(Block(text));
            }
            if self.ended {
                assert!(
                    self.pending.is_empty(),
                    "the stream ended inside a block: {:?}",
                    String::from_utf8_lossy(&self.pending)
                );
                return None;
            }
            match self.client.chunk() {
                Some(data) => self.pending.extend_from_slice(&data),
                None => self.ended = true,
            }
        }
    }

    /// The next block that is not a comment; `None` at the end of the stream.
    pub fn event(&mut self) -> Option<Block> {
        loop {
            let block = self.block()?;
            if !block.is_comment() {
                return Some(block);
            }
        }
    }

    /// Every event up to the end of the stream (comments skipped), each checked to
    /// be `id: N` with `data: JobStatus: N% at=<ms>`; returns the ids and stamps.
    pub fn rest(&mut self) -> Vec<(u8, u64)> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let Some(event) = self.event() else {
                return out;
            };
            out.push(status_event(&event));
        }
        panic!("the stream never ended: {out:?}");
    }
}

/// An SSE job event's `(progress, at_ms)`, after checking that its `id` is its
/// progress and its data the status line.
pub fn status_event(event: &Block) -> (u8, u64) {
    let id: u8 = event
        .field("id")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric id: {event:?}"));
    let data = event
        .field("data")
        .unwrap_or_else(|| panic!("no data: {event:?}"));
    let at = parse_status_at(data, id);
    (id, at)
}

/// The `<ms>` of `JobStatus: N% at=<ms>`, after checking that `N` is `progress`.
pub fn parse_status_at(text: &str, progress: u8) -> u64 {
    let prefix = format!("JobStatus: {progress}% at=");
    text.strip_prefix(&prefix)
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}<ms>`, got {text:?}"))
}

/// The progress values of a job's updates from `from` (exclusive) to 100 with the
/// default 10% step.
pub fn progress_after(from: Option<u8>) -> Vec<u8> {
    (0..=100u8)
        .step_by(10)
        .filter(|p| from.is_none_or(|f| *p > f))
        .collect()
}

/// A directory of its own under the system's temporary directory, removed when
/// dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "wirepatterns-jobs-{}-{tag}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create the temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
