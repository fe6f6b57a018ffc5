//! poll_load: what clients that wait cost the jobs server (`examples/jobs.rs`):
//! N long polls held on one job (`--mode long`), or N open Server-Sent Events
//! streams (`--mode sse`). It reads the server's memory and CPU from `/proc` while
//! they wait, and, for the long polls, how fast one update answers them all.
//!
//! ```sh
//! ulimit -n 20000    # N sockets here and N in the server: in the shell that starts both
//! cargo build --release --example jobs --example poll_load
//! target/release/examples/jobs --addr 127.0.0.1:8080 --step-ms 20000 --max-wait 60 \
//!     --max-connections 20000 &
//! target/release/examples/poll_load --addr 127.0.0.1:8080 --pid $! --conns 10000
//! ```
//!
//! `scripts/polling.sh long` and `scripts/polling.sh sse` run it against a fresh
//! server. The flags are listed in [`USAGE`] (`--help`).
//!
//! # Long polls (`--mode long`)
//!
//! 1. **Before**: the server's `/stats` and its memory (`VmRSS`, `RssAnon`,
//!    `VmHWM` from `/proc/PID/status`).
//! 2. **Submit**: `POST /submit` makes one job; a short poll
//!    `GET /checkstatus?jobId=ID` reads its progress P.
//! 3. **Open**: N connections, each sending
//!    `GET /checkstatus?jobId=ID&wait=W&since=P`. The server holds each until the
//!    job passes P. At most C requests are in flight at once (sent, and not yet
//!    counted in the server's `long.held_now`, read from `/stats` between
//!    batches), so the listen backlog (128) never overflows.
//! 4. **Held**: waits until `/stats` says `long.held_now` is N.
//! 5. **Memory**: (VmRSS held - VmRSS before) / N is the memory per held poll;
//!    read again after the CPU window.
//! 6. **CPU**: the server's `utime + stime` (`/proc/PID/stat`) over `--cpu-secs`,
//!    as a share of one core; and `loop.cpu_us` from `/stats`, if it reports one.
//! 7. **Release**: waits for every answer (the job's next update, or W seconds).
//!    Client side: the time from the first answer to the last, and for each
//!    answer its receipt time minus its `Job-Updated-At` (millisecond clocks).
//!    Server side, from `/stats`: `wake.last_us` (from the update to the last
//!    answer handed to the kernel) and `wake.last_readers` (or
//!    `long.wake_last_us` and `long.wake_last_readers`, if the server names them
//!    so).
//! 8. **After**: closes the connections and reads the memory once more a second
//!    later (what the server gave back).
//!
//! For a clean figure, the job's next update must come after steps 3-6: run the
//! server with a long step (`--step-ms 20000`) and `--max-wait` at least W. An
//! answer that arrives before all N are held is counted as `early` and reported.
//!
//! # SSE streams (`--mode sse`)
//!
//! Steps 1-2 as above; then N connections each send `GET /events?jobId=ID`, read
//! the stream as it comes (chunked, decoded, split into events), and count the
//! events and `: heartbeat` comments. A stream counts as open once its `200` head
//! and its first bytes arrived; at most C are waiting for that at once. Once all N
//! are open, it reads for `--settle` seconds more (so heartbeats have gone through
//! every stream: run the server with `--heartbeat-secs 1`), then measures memory
//! and CPU as for long polls, still reading, and closes them.
//!
//! # What the figures include
//!
//! Memory is what the server process holds: connection state, buffers, the
//! allocator's overhead and fragmentation; not the kernel's socket buffers. CPU
//! comes in clock ticks (`USER_HZ`, 100 per second on Linux: 10 ms), so over
//! 5 s one tick is 0.2 % of a core. This tool runs on the same machine, so its own
//! work (reading 10,000 answers at once) is inside the client-side times.
//!
//! Loops are bounded: every wait ends at `--timeout` (120 s for the whole run),
//! each connection may send at most 1 MiB, and only 127.0.0.1 is accepted.
//! Exit code 0 when every connection did its part and the goals given were met;
//! 3 when not; 2 on bad usage; 1 when the run could not start.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

#[path = "support/mod.rs"]
mod support;
use support::{ClientArg, Memory, read_memory};

const USAGE: &str = "\
poll_load: hold N long polls or N SSE streams on the jobs server and read its memory and CPU

usage: poll_load --pid PID [--addr 127.0.0.1:PORT] [--mode long|sse] [--conns N]
                 [--wait SECS] [--settle SECS] [--cpu-secs SECS]
                 [--connect-concurrency C] [--timeout SECS]
                 [--max-kib-per-conn K] [--max-cpu-pct P] [--max-wake-ms MS]

  --pid PID                  the server's process id, for /proc/PID/status and stat
  --addr 127.0.0.1:PORT      the jobs server (default 127.0.0.1:8080; loopback only)
  --mode long|sse            held long polls (default) or open SSE streams
  --conns N                  connections to open (default 10000)
  --wait SECS                long polls' wait=SECS (default 30; the server clamps it
                             to its --max-wait)
  --settle SECS              sse: read this long after all are open (default 2)
  --cpu-secs SECS            window for the server's CPU while they wait (default 5)
  --connect-concurrency C    most requests in flight at once (default 100)
  --timeout SECS             end the whole run after this long (default 120)
  --max-kib-per-conn K       goal: server memory per connection (exit 3 if over)
  --max-cpu-pct P            goal: server CPU while they wait, % of a core
  --max-wake-ms MS           goal (long): the server's wake.last_us, in ms
  --help                     this text

N sockets need N open files here and in the server: run `ulimit -n 20000` first.
";

/// The flags `poll_load` takes (each with a value), besides `--help`.
const FLAGS: [&str; 12] = [
    "--pid",
    "--addr",
    "--mode",
    "--conns",
    "--wait",
    "--settle",
    "--cpu-secs",
    "--connect-concurrency",
    "--timeout",
    "--max-kib-per-conn",
    "--max-cpu-pct",
    "--max-wake-ms",
];

/// Bytes read per `read()` call, into one buffer shared by all connections.
const READ_CHUNK: usize = 64 * 1024;

/// Most bytes one connection may send us: a held poll's answer is a few hundred
/// bytes, and a stream's heartbeats a few dozen a second. Past it the connection
/// is dropped as misbehaving, which also bounds every read loop.
const MAX_BYTES_PER_CONN: usize = 1024 * 1024;

/// `USER_HZ`: the unit of `utime` and `stime` in `/proc/PID/stat`, fixed at 100
/// by the Linux ABI whatever the kernel's own tick rate.
const TICKS_PER_SEC: f64 = 100.0;

/// How long one control request (`/submit`, `/checkstatus`, `/stats`) may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Held long polls on one job.
    Long,
    /// Open SSE streams on one job.
    Sse,
}

/// What the command line asked for.
#[derive(Debug)]
struct Options {
    addr: SocketAddr,
    pid: u32,
    mode: Mode,
    conns: usize,
    wait_secs: u64,
    settle: Duration,
    cpu_window: Duration,
    connect_concurrency: usize,
    timeout: Duration,
    max_kib: Option<f64>,
    max_cpu_pct: Option<f64>,
    max_wake_ms: Option<f64>,
}

/// A goal's value: a number above 0.
fn goal(flag: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{flag} {value:?}: not a number above 0")),
    }
}

/// The options from the command line (without the program name); `Ok(None)` for
/// `--help`.
fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 8080));
    let mut pid = None;
    let mut mode = Mode::Long;
    let mut conns = 10_000usize;
    let mut wait_secs = 30u64;
    let mut settle = Duration::from_secs(2);
    let mut cpu_window = Duration::from_secs(5);
    let mut connect_concurrency = 100usize;
    let mut timeout = Duration::from_secs(120);
    let (mut max_kib, mut max_cpu_pct, mut max_wake_ms) = (None, None, None);
    let mut args = args.into_iter();
    while let Some(arg) = support::next_client_arg(&mut args, &FLAGS)? {
        let ClientArg::Flag(flag, value) = arg else {
            return Ok(None);
        };
        match flag.as_str() {
            "--addr" => {
                addr = value
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("{flag} {value:?}: not IP:PORT"))?;
            }
            "--pid" => match value.parse::<u32>() {
                Ok(p) if p > 0 => pid = Some(p),
                _ => return Err(format!("{flag} {value:?}: not a process id")),
            },
            "--mode" => {
                mode = match value.as_str() {
                    "long" => Mode::Long,
                    "sse" => Mode::Sse,
                    _ => return Err(format!("{flag} {value:?}: long or sse")),
                }
            }
            "--conns" => conns = support::count(&flag, &value)?,
            "--wait" => {
                wait_secs = support::count(&flag, &value)? as u64;
            }
            "--settle" => settle = support::secs(&flag, &value, true)?,
            "--cpu-secs" => cpu_window = support::secs(&flag, &value, false)?,
            "--connect-concurrency" => connect_concurrency = support::count(&flag, &value)?,
            "--timeout" => timeout = support::secs(&flag, &value, false)?,
            "--max-kib-per-conn" => max_kib = Some(goal(&flag, &value)?),
            "--max-cpu-pct" => max_cpu_pct = Some(goal(&flag, &value)?),
            "--max-wake-ms" => max_wake_ms = Some(goal(&flag, &value)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if addr.ip() != Ipv4Addr::LOCALHOST {
        return Err(format!(
            "--addr {addr}: this load tool only talks to 127.0.0.1"
        ));
    }
    let pid = pid.ok_or("--pid PID is needed: the server's memory and CPU are the point")?;
    Ok(Some(Options {
        addr,
        pid,
        mode,
        conns,
        wait_secs,
        settle,
        cpu_window,
        connect_concurrency,
        timeout,
        max_kib,
        max_cpu_pct,
        max_wake_ms,
    }))
}

// --- the server's process, from /proc ------------------------------------------

/// The server's CPU time so far, in ticks (1/100 s).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    user: u64,
    system: u64,
}

impl Cpu {
    fn total(&self) -> u64 {
        self.user + self.system
    }

    fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// The server's CPU time so far, from `/proc/PID/stat`.
fn read_cpu(pid: u32) -> Result<Cpu, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_cpu(&stat).ok_or_else(|| format!("{path}: no utime and stime"))
}

/// `utime` and `stime` from a `/proc/PID/stat` line: fields 14 and 15, counted
/// after the command name, which is in parentheses and may itself hold spaces.
fn parse_cpu(stat: &str) -> Option<Cpu> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After ")" comes field 3 (state), so field k is at index k - 3.
    Some(Cpu {
        user: fields.get(14 - 3)?.parse().ok()?,
        system: fields.get(15 - 3)?.parse().ok()?,
    })
}

// --- HTTP responses ------------------------------------------------------------

/// A complete HTTP response, as far as this tool needs it.
#[derive(Debug, Default)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Bytes of head and body.
    len: usize,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The head of a response at the start of `buf`: `Ok(None)` while partial.
/// Returns the reply with its status and headers (no body yet) and the head's
/// length.
fn parse_head(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(head_len)) => {
            let reply = Reply {
                status: response.code.unwrap_or(0),
                headers: response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                body: Vec::new(),
                len: head_len,
            };
            Ok(Some((reply, head_len)))
        }
        Err(e) => Err(format!("bad response head: {e}")),
    }
}

/// Whether a response's body is chunked.
fn is_chunked(reply: &Reply) -> bool {
    reply
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// A whole response at the start of `buf` (head, then a body framed by
/// `Content-Length` or chunked): `Ok(None)` while partial. `eof` says the server
/// closed, which ends a body framed by neither.
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Reply>, String> {
    let Some((mut reply, head_len)) = parse_head(buf)? else {
        return Ok(None);
    };
    let rest = buf.get(head_len..).unwrap_or_default();
    if is_chunked(&reply) {
        let (used, ended) = dechunk(rest, &mut reply.body)?;
        reply.len = head_len + used;
        return Ok(ended.then_some(reply));
    }
    let length = match reply.header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {v:?}"))?,
        ),
        None if reply.status == 204 || reply.status == 304 => Some(0),
        None => None,
    };
    match length {
        Some(n) if rest.len() >= n => {
            reply.body = rest.get(..n).unwrap_or_default().to_vec();
            reply.len = head_len + n;
            Ok(Some(reply))
        }
        Some(_) => Ok(None),
        None if eof => {
            reply.body = rest.to_vec();
            reply.len = buf.len();
            Ok(Some(reply))
        }
        None => Ok(None),
    }
}

/// Decodes the complete chunks at the start of `buf` (a chunked body, from a
/// chunk boundary) into `out`. Returns the bytes used and whether the last chunk
/// (size 0, then an empty line; trailers are not expected) was among them.
fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), String> {
    let mut pos = 0;
    // Each turn takes one whole chunk or stops; every chunk is at least 5 bytes.
    while pos < buf.len() {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok((pos, false));
        };
        let line = std::str::from_utf8(rest.get(..line_end).unwrap_or_default())
            .map_err(|_| "chunk size line is not text".to_string())?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(hex, 16).map_err(|_| format!("bad chunk size line {line:?}"))?;
        if size > MAX_BYTES_PER_CONN {
            return Err(format!("chunk of {size} bytes"));
        }
        let data_start = line_end + 2;
        let Some(data) = rest.get(data_start..data_start + size) else {
            return Ok((pos, false));
        };
        match rest.get(data_start + size..data_start + size + 2) {
            None => return Ok((pos, false)),
            Some(b"\r\n") => {}
            Some(_) => return Err("chunk data not followed by CRLF".into()),
        }
        out.extend_from_slice(data);
        pos += data_start + size + 2;
        if size == 0 {
            return Ok((pos, true));
        }
    }
    Ok((pos, false))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `JobStatus: 40%` in a body: 40.
fn progress_of(body: &str) -> Option<u32> {
    let at = body.find("JobStatus:")?;
    let rest = body.get(at + "JobStatus:".len()..)?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A query value with everything but RFC 3986's unreserved characters
/// percent-encoded (`job:17` -> `job%3A17`).
fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// --- control requests: one blocking connection each ----------------------------

/// Sends one request with `Connection: close` and reads the whole response, in at
/// most [`CONTROL_TIMEOUT`].
fn control(addr: SocketAddr, method: &str, target: &str) -> Result<Reply, String> {
    let what = format!("{method} {target}");
    let fail = |e: io::Error| format!("{what}: {e}");
    let mut stream = std::net::TcpStream::connect_timeout(&addr, CONTROL_TIMEOUT).map_err(fail)?;
    stream
        .set_read_timeout(Some(CONTROL_TIMEOUT))
        .map_err(fail)?;
    stream
        .set_write_timeout(Some(CONTROL_TIMEOUT))
        .map_err(fail)?;
    let body_header = if method == "POST" {
        "Content-Length: 0\r\n"
    } else {
        ""
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\n{body_header}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(fail)?;
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while Instant::now() < deadline && buf.len() < MAX_BYTES_PER_CONN {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(reply) = parse_response(&buf, n == 0).map_err(|e| format!("{what}: {e}"))? {
            return Ok(reply);
        }
        if n == 0 {
            return Err(format!("{what}: the server closed before a whole response"));
        }
    }
    Err(format!(
        "{what}: no whole response within {CONTROL_TIMEOUT:?}"
    ))
}

/// The server's `/stats`: `name value` lines.
type Stats = BTreeMap<String, String>;

fn read_stats(addr: SocketAddr) -> Result<Stats, String> {
    let reply = control(addr, "GET", "/stats")?;
    if reply.status != 200 {
        return Err(format!("GET /stats: status {}", reply.status));
    }
    Ok(parse_stats(&reply.text()))
}

fn parse_stats(text: &str) -> Stats {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.trim().split_once(char::is_whitespace)?;
            Some((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

fn stat(stats: &Stats, name: &str) -> Option<u64> {
    stats.get(name)?.parse().ok()
}

/// `POST /submit`: the new job's handle.
fn submit(addr: SocketAddr) -> Result<String, String> {
    let reply = control(addr, "POST", "/submit")?;
    let id = reply.text().trim().to_string();
    if reply.status != 200 || id.is_empty() {
        return Err(format!(
            "POST /submit: status {}, body {id:?}",
            reply.status
        ));
    }
    Ok(id)
}

/// A short poll: the job's progress now.
fn short_poll(addr: SocketAddr, job: &str) -> Result<u32, String> {
    let target = format!("/checkstatus?jobId={}", query_escape(job));
    let reply = control(addr, "GET", &target)?;
    let body = reply.text();
    match (reply.status, progress_of(&body)) {
        (200, Some(p)) => Ok(p),
        _ => Err(format!(
            "GET {target}: status {}, body {:?}",
            reply.status,
            body.trim()
        )),
    }
}

// --- the load connections ------------------------------------------------------

/// A long poll's answer, as received.
#[derive(Debug)]
struct Answer {
    at: Instant,
    /// Wall clock at receipt, ms since the epoch (to compare with
    /// `Job-Updated-At`).
    at_ms: u64,
    status: u16,
    progress: Option<u32>,
    updated_at_ms: Option<u64>,
    /// Whether it came before all N were held.
    early: bool,
}

/// An SSE stream, once its head arrived.
#[derive(Debug, Default)]
struct Stream {
    /// Decoded body text not yet split into events.
    text: Vec<u8>,
    /// Whether anything of the body arrived (the stream counts as open then).
    started: bool,
    retries: u64,
    events: u64,
    heartbeats: u64,
    /// The last chunk arrived: the server ended the stream.
    ended: bool,
}

#[derive(Debug)]
enum State {
    /// The TCP connect is in progress.
    Connecting,
    /// The request is queued or sent; the response head has not come.
    Waiting,
    /// Long: the answer came.
    Answered(Answer),
    /// SSE: the head came; the body streams.
    Streaming(Stream),
    /// Failed or closed early (why is in [`Tally::errors`], for the first few).
    Failed,
}

struct Conn {
    stream: TcpStream,
    state: State,
    /// The request, written from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes read and not used yet.
    pending: Vec<u8>,
    bytes_in: usize,
}

impl Conn {
    fn failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }
}

/// Counters the connections' events update.
#[derive(Default)]
struct Tally {
    /// Long: answers received (any status), and those before all were held.
    answers: usize,
    early: usize,
    /// SSE: streams whose head and first bytes came.
    streams_open: usize,
    failed: usize,
    errors: Vec<String>,
    /// Set once all N are held (long) or open (SSE).
    all_waiting: bool,
}

impl Tally {
    fn fail(&mut self, conn: &mut Conn, why: String) {
        if !conn.failed() {
            if self.errors.len() < 5 {
                self.errors.push(why);
            }
            self.failed += 1;
            conn.state = State::Failed;
        }
    }
}

/// The load connections and the poll that drives them.
struct Load {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    buf: Vec<u8>,
    tally: Tally,
    mode: Mode,
}

impl Load {
    /// Opens one more connection that will send `request`.
    fn open(&mut self, addr: SocketAddr, request: &[u8]) -> Result<(), String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| {
            format!(
                "connect to {addr}: {e} (after {} connections; `ulimit -n`?)",
                self.conns.len()
            )
        })?;
        let token = Token(self.conns.len());
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register: {e}"))?;
        self.conns.push(Conn {
            stream,
            state: State::Connecting,
            out: request.to_vec(),
            out_pos: 0,
            pending: Vec::new(),
            bytes_in: 0,
        });
        Ok(())
    }

    /// Waits up to `timeout` for readiness and handles what came.
    fn turn(&mut self, timeout: Duration) -> Result<(), String> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("poll: {e}")),
        }
        for event in self.events.iter() {
            let Some(conn) = self.conns.get_mut(event.token().0) else {
                continue;
            };
            if conn.failed() {
                continue;
            }
            if matches!(conn.state, State::Connecting) {
                if !event.is_writable() && !event.is_error() {
                    continue;
                }
                match conn.stream.take_error() {
                    Ok(None) if conn.stream.peer_addr().is_ok() => conn.state = State::Waiting,
                    Ok(None) => continue, // not connected yet
                    Ok(Some(e)) | Err(e) => {
                        self.tally.fail(conn, format!("connect: {e}"));
                        continue;
                    }
                }
            }
            if let Err(e) =
                support::write_queued(&mut conn.stream, &mut conn.out, &mut conn.out_pos)
            {
                self.tally.fail(conn, format!("write: {e}"));
                continue;
            }
            if (event.is_readable() || event.is_read_closed() || event.is_error())
                && let Err(e) = on_readable(conn, &mut self.buf, &mut self.tally, self.mode)
            {
                self.tally.fail(conn, e);
            }
        }
        Ok(())
    }

    /// Calls `turn` until `done` or `deadline`; true if `done`.
    fn run_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&Load) -> bool,
    ) -> Result<bool, String> {
        loop {
            if done(self) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            self.turn((deadline - now).min(Duration::from_millis(50)))?;
        }
    }
}

/// Reads until `WouldBlock` (at most [`MAX_BYTES_PER_CONN`] in the connection's
/// life) and moves the connection on: a long poll's answer, a stream's events.
fn on_readable(
    conn: &mut Conn,
    buf: &mut [u8],
    tally: &mut Tally,
    mode: Mode,
) -> Result<(), String> {
    let mut eof = false;
    loop {
        match conn.stream.read(buf) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                conn.bytes_in += n;
                if conn.bytes_in > MAX_BYTES_PER_CONN {
                    return Err(format!("over {MAX_BYTES_PER_CONN} bytes from the server"));
                }
                conn.pending
                    .extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    match mode {
        Mode::Long => long_poll_input(conn, tally, eof),
        Mode::Sse => stream_input(conn, tally, eof),
    }
}

/// A long poll: the answer, once whole.
fn long_poll_input(conn: &mut Conn, tally: &mut Tally, eof: bool) -> Result<(), String> {
    if matches!(conn.state, State::Answered(_)) {
        // A kept-alive connection after its answer: nothing more is expected.
        return if eof {
            Ok(())
        } else {
            Err("bytes after the answer".into())
        };
    }
    match parse_response(&conn.pending, eof)? {
        Some(reply) => {
            let body = reply.text();
            let answer = Answer {
                at: Instant::now(),
                at_ms: epoch_ms(),
                status: reply.status,
                progress: progress_of(&body),
                updated_at_ms: reply
                    .header("job-updated-at")
                    .and_then(|v| v.trim().parse().ok()),
                early: !tally.all_waiting,
            };
            tally.answers += 1;
            tally.early += usize::from(answer.early);
            conn.pending.clear();
            conn.state = State::Answered(answer);
            Ok(())
        }
        None if eof => Err("the server closed before answering".into()),
        None => Ok(()),
    }
}

/// An SSE stream: its head, then its chunks, split into events.
fn stream_input(conn: &mut Conn, tally: &mut Tally, eof: bool) -> Result<(), String> {
    if matches!(conn.state, State::Waiting) {
        let Some((reply, head_len)) = parse_head(&conn.pending)? else {
            return if eof {
                Err("the server closed before the head".into())
            } else {
                Ok(())
            };
        };
        if reply.status != 200 || !is_chunked(&reply) {
            return Err(format!(
                "stream answered {} (chunked: {})",
                reply.status,
                is_chunked(&reply)
            ));
        }
        conn.pending.drain(..head_len);
        conn.state = State::Streaming(Stream::default());
    }
    let State::Streaming(stream) = &mut conn.state else {
        return Ok(());
    };
    let (used, ended) = dechunk(&conn.pending, &mut stream.text)?;
    conn.pending.drain(..used);
    stream.ended |= ended;
    // One event per blank line: `retry:`, `id:`/`data:` lines, or a comment.
    while let Some(end) = find(&stream.text, b"\n\n") {
        let event: Vec<u8> = stream.text.drain(..end + 2).collect();
        let event = String::from_utf8_lossy(&event);
        if event.starts_with("retry:") {
            stream.retries += 1;
        } else if event.starts_with(':') {
            stream.heartbeats += 1;
        } else if event.lines().any(|l| l.starts_with("data:")) {
            stream.events += 1;
        }
    }
    if !stream.started && (used > 0 || ended) {
        stream.started = true;
        tally.streams_open += 1;
    }
    if eof || stream.ended {
        return Err(format!(
            "the server ended the stream ({} events, {} heartbeats)",
            stream.events, stream.heartbeats
        ));
    }
    Ok(())
}

// --- printing ------------------------------------------------------------------

/// A table of `what | value | unit | goal` rows, printed aligned.
struct Table {
    title: String,
    rows: Vec<[String; 4]>,
}

impl Table {
    fn new(title: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, what: &str, value: impl ToString, unit: &str) {
        self.rows.push([
            what.to_string(),
            value.to_string(),
            unit.to_string(),
            String::new(),
        ]);
    }

    /// A row with a goal: `met` or `MISSED` beside it.
    fn goal_row(&mut self, what: &str, value: f64, decimals: usize, unit: &str, max: Option<f64>) {
        let verdict = match max {
            Some(max) if value <= max => format!("goal < {max}: met"),
            Some(max) => format!("goal < {max}: MISSED"),
            None => String::new(),
        };
        self.rows.push([
            what.to_string(),
            format!("{value:.decimals$}"),
            unit.to_string(),
            verdict,
        ]);
    }

    fn print(&self) {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2) = (width(0), width(1), width(2));
        println!("\n{}", self.title);
        for [what, value, unit, goal] in &self.rows {
            let line = format!("  {what:<w0$}  {value:>w1$} {unit:<w2$}  {goal}");
            println!("{}", line.trim_end());
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn kib_per_conn(before: &Memory, after: &Memory, n: usize) -> f64 {
    (after.rss as f64 - before.rss as f64) / n.max(1) as f64
}

// --- the run -------------------------------------------------------------------

fn main() -> ExitCode {
    let opts = match parse_options(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(support::EXIT_USAGE);
        }
    };
    match run(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The `/stats` value `name` went up by from `a` to `b`, if `b` has it and it is
/// not 0 (`loop.cpu_us` is read from `/proc/thread-self/schedstat`, which some
/// kernels leave at 0).
fn stat_delta(a: &Stats, b: &Stats, name: &str) -> Option<u64> {
    let after = stat(b, name).filter(|v| *v > 0)?;
    Some(after.saturating_sub(stat(a, name).unwrap_or(0)))
}

/// The whole run; `Ok(true)` if complete and every goal given was met.
fn run(opts: &Options) -> Result<bool, String> {
    let deadline = Instant::now() + opts.timeout;
    let (addr, pid) = (opts.addr, opts.pid);

    // 1-2. Before; one job.
    let stats_before = read_stats(addr)?;
    let job = submit(addr)?;
    let since = short_poll(addr, &job)?;
    let mem_before = read_memory(pid)?;
    let job_q = query_escape(&job);
    let (request, what) = match opts.mode {
        Mode::Long => (
            format!(
                "GET /checkstatus?jobId={job_q}&wait={}&since={since} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
                opts.wait_secs
            ),
            format!("long polls (wait={}&since={since})", opts.wait_secs),
        ),
        Mode::Sse => (
            format!(
                "GET /events?jobId={job_q} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            ),
            "SSE streams".to_string(),
        ),
    };
    println!(
        "server process {pid} at {addr}; job {job} at {since}%; opening {} {what}",
        opts.conns
    );
    let mut load = Load {
        poll: Poll::new().map_err(|e| format!("poll: {e}"))?,
        events: Events::with_capacity(1024),
        conns: Vec::with_capacity(opts.conns),
        buf: vec![0u8; READ_CHUNK],
        tally: Tally::default(),
        mode: opts.mode,
    };

    // 3-4. Open all N and wait until they all wait.
    let opened = open_all(&mut load, opts, request.as_bytes(), deadline)?;
    println!(
        "{} opened in {:.2} s ({} failed); {} waiting{}",
        load.conns.len(),
        opened.secs,
        load.tally.failed,
        opened.waiting,
        match opts.mode {
            Mode::Long => format!(
                " (long.held_now from /stats, read {} times while opening); {} answered before all were held",
                opened.stats_reads, load.tally.early
            ),
            Mode::Sse => String::new(),
        }
    );
    if opts.mode == Mode::Sse && opened.all_waiting {
        // Read a while, so heartbeats have gone through every stream.
        load.run_until((Instant::now() + opts.settle).min(deadline), |_| false)?;
    }

    // 5-6. Memory; CPU over the window (still reading: SSE heartbeats); memory.
    let mem_waiting = read_memory(pid)?;
    let stats_waiting = read_stats(addr)?;
    let cpu0 = read_cpu(pid)?;
    let heartbeats0 = heartbeats(&load.conns);
    let window_start = Instant::now();
    load.run_until((window_start + opts.cpu_window).min(deadline), |_| false)?;
    let window_cpu = read_cpu(pid)?.since(&cpu0);
    let window_s = window_start.elapsed().as_secs_f64();
    let heartbeats_in_window = heartbeats(&load.conns) - heartbeats0;
    let stats_window = read_stats(addr)?;
    let mem_window = read_memory(pid)?;

    // 7. Long: the release (the next update, or `wait` seconds).
    let release_start = Instant::now();
    let cpu2 = read_cpu(pid)?;
    if opts.mode == Mode::Long {
        load.run_until(deadline, |l| {
            l.tally.answers + l.tally.failed >= l.conns.len()
        })?;
    }
    let release_cpu = read_cpu(pid)?.since(&cpu2);
    let release_s = release_start.elapsed().as_secs_f64();
    let stats_released = read_stats(addr)?;
    let mem_released = read_memory(pid)?;
    let summary = Summary::of(&load.conns, since);

    // 8. Close; what is given back.
    let Load { conns, tally, .. } = load;
    let n_conns = conns.len();
    drop(conns);
    std::thread::sleep(Duration::from_secs(1));
    let mem_closed = read_memory(pid)?;
    let stats_closed = read_stats(addr)?;

    // --- report ---
    let n = opts.conns;
    let waiting = opened.waiting;
    let mode_name = match opts.mode {
        Mode::Long => "long",
        Mode::Sse => "sse",
    };
    let per = match opts.mode {
        Mode::Long => "held poll",
        Mode::Sse => "open stream",
    };
    let mut ok = opened.all_waiting && tally.failed == 0 && n_conns == n;
    let mut result = format!(
        "RESULT mode={mode_name} conns={n} opened={n_conns} failed={} waiting={waiting} open_s={:.2}",
        tally.failed, opened.secs
    );

    let kib = kib_per_conn(&mem_before, &mem_waiting, waiting);
    let kib_later = kib_per_conn(&mem_before, &mem_window, waiting);
    let mut t = Table::new(format!(
        "server memory (/proc/{pid}/status), {waiting} {per}s"
    ));
    t.row("VmRSS before", mem_before.rss, "KiB");
    t.row(&format!("VmRSS with all {per}s"), mem_waiting.rss, "KiB");
    t.row(
        "RssAnon before -> with them",
        format!("{} -> {}", mem_before.anon, mem_waiting.anon),
        "KiB",
    );
    t.goal_row(&format!("memory per {per}"), kib, 2, "KiB", opts.max_kib);
    t.goal_row(
        &format!("  again after the {window_s:.0} s CPU window"),
        kib_later,
        2,
        "KiB",
        opts.max_kib,
    );
    t.row("VmHWM (peak so far)", mem_window.hwm, "KiB");
    if opts.mode == Mode::Long {
        t.row("VmRSS once all were answered", mem_released.rss, "KiB");
        t.row(
            "  grown since they were held, per answer",
            format!("{:.2}", kib_per_conn(&mem_waiting, &mem_released, waiting)),
            "KiB",
        );
    }
    t.row("VmRSS 1 s after closing them", mem_closed.rss, "KiB");
    t.print();
    ok &= opts
        .max_kib
        .is_none_or(|max| kib <= max && kib_later <= max);
    result += &format!(
        " rss_before_kb={} rss_waiting_kb={} rss_after_window_kb={} hwm_kb={} rss_released_kb={} \
         rss_closed_kb={} kib_per_conn={kib:.2} kib_per_conn_after_window={kib_later:.2}",
        mem_before.rss,
        mem_waiting.rss,
        mem_window.rss,
        mem_window.hwm,
        mem_released.rss,
        mem_closed.rss
    );

    let cpu_pct = window_cpu.total() as f64 / TICKS_PER_SEC / window_s * 100.0;
    let loop_pct = stat_delta(&stats_waiting, &stats_window, "loop.cpu_us")
        .map(|us| us as f64 / 1e6 / window_s * 100.0);
    let mut t = Table::new(format!(
        "server CPU while they wait ({window_s:.2} s window)"
    ));
    t.row(
        "utime + stime (/proc/PID/stat)",
        window_cpu.total() * 10,
        "ms",
    );
    t.goal_row(
        "  as a share of one core",
        cpu_pct,
        2,
        "%",
        opts.max_cpu_pct,
    );
    t.row(
        "  resolution: one tick",
        format!("{:.2}", 100.0 / TICKS_PER_SEC / window_s),
        "%",
    );
    if let Some(p) = loop_pct {
        t.row(
            "the loop thread (/stats loop.cpu_us)",
            format!("{p:.3}"),
            "%",
        );
    }
    if opts.mode == Mode::Sse {
        t.row(
            "heartbeats received in the window",
            heartbeats_in_window,
            "",
        );
        t.row(
            "  per stream per second",
            format!(
                "{:.2}",
                heartbeats_in_window as f64 / waiting.max(1) as f64 / window_s
            ),
            "",
        );
        if heartbeats_in_window > 0 {
            t.row(
                "  server CPU per heartbeat",
                format!(
                    "{:.1}",
                    window_cpu.total() as f64 / TICKS_PER_SEC * 1e6 / heartbeats_in_window as f64
                ),
                "µs",
            );
        }
    }
    t.print();
    ok &= opts.max_cpu_pct.is_none_or(|max| cpu_pct <= max);
    result += &format!(" cpu_ticks={} cpu_pct={cpu_pct:.2}", window_cpu.total());
    if let Some(p) = loop_pct {
        result += &format!(" loop_cpu_pct={p:.3}");
    }

    match opts.mode {
        Mode::Long => {
            let release = Release {
                secs: release_s,
                cpu: release_cpu,
                loop_us: stat_delta(&stats_window, &stats_released, "loop.cpu_us"),
                idle_loop_us: loop_pct.map(|p| p / 100.0 * 1e6 * release_s),
                stats: &stats_released,
            };
            let (met, line) = report_release(opts, waiting, &summary, &tally, &release);
            ok &= met;
            result += &line;
        }
        Mode::Sse => {
            let mut t = Table::new("the streams");
            t.row("open when measured", waiting, "");
            t.row("still open at the end", summary.streaming, "");
            t.row("job events received (all streams)", summary.events, "");
            t.row("heartbeats received (all streams)", summary.heartbeats, "");
            t.row("failed or ended early", tally.failed, "");
            t.print();
            ok &= summary.streaming == n;
            result += &format!(
                " open_at_end={} events={} heartbeats={} heartbeats_in_window={heartbeats_in_window}",
                summary.streaming, summary.events, summary.heartbeats
            );
        }
    }

    let third = match opts.mode {
        Mode::Long => "answered",
        Mode::Sse => "after CPU",
    };
    print_stats_changes(&[
        ("before", &stats_before),
        ("waiting", &stats_waiting),
        (third, &stats_released),
        ("closed", &stats_closed),
    ]);
    for e in &tally.errors {
        println!("error: {e}");
    }
    println!("{result} ok={ok}");
    Ok(ok)
}

/// How opening went.
struct Opened {
    /// All N opened and waiting (held at the server, or streaming).
    all_waiting: bool,
    /// How many wait: `long.held_now` (long), streams started (SSE).
    waiting: usize,
    secs: f64,
    /// `/stats` reads it took (long).
    stats_reads: u64,
}

/// Opens the N connections, at most `--connect-concurrency` of them in flight
/// (sent, and not yet held by the server or streaming), and waits until all wait.
fn open_all(
    load: &mut Load,
    opts: &Options,
    request: &[u8],
    deadline: Instant,
) -> Result<Opened, String> {
    let start = Instant::now();
    let mut held_now = 0usize; // long: the server's long.held_now, as last read
    let mut stats_reads = 0u64;
    let mut connect_failed = false;
    let all_waiting = loop {
        if Instant::now() >= deadline {
            break false;
        }
        let opened = load.conns.len();
        let waiting = match opts.mode {
            Mode::Long => held_now,
            Mode::Sse => load.tally.streams_open,
        };
        // Answered (too early), failed and waiting ones are no longer in flight.
        let settled = waiting + load.tally.answers + load.tally.failed;
        let in_flight = opened.saturating_sub(settled);
        if !connect_failed && opened < opts.conns && in_flight < opts.connect_concurrency {
            if let Err(e) = load.open(opts.addr, request) {
                load.tally.errors.push(e);
                connect_failed = true;
            }
            continue;
        }
        if (opened == opts.conns || connect_failed) && settled >= opened {
            break waiting == opts.conns;
        }
        load.turn(Duration::from_millis(1))?;
        if opts.mode == Mode::Long {
            // A batch is out (or all are): how many does the server hold?
            let stats = read_stats(opts.addr)?;
            stats_reads += 1;
            held_now = stat(&stats, "long.held_now")
                .ok_or("the server's /stats has no long.held_now")? as usize;
        }
    };
    load.tally.all_waiting = all_waiting;
    Ok(Opened {
        all_waiting,
        waiting: match opts.mode {
            Mode::Long => held_now,
            Mode::Sse => load.tally.streams_open,
        },
        secs: start.elapsed().as_secs_f64(),
        stats_reads,
    })
}

/// What the release cost the server.
struct Release<'a> {
    /// From the end of the CPU window to the last answer (includes the wait for
    /// the update).
    secs: f64,
    /// The process's CPU over that time, and the loop thread's (`loop.cpu_us`).
    cpu: Cpu,
    loop_us: Option<u64>,
    /// What the loop thread would have used over that time at its rate while
    /// they waited (the CPU window's): taken off `loop_us` to leave the wake-up's.
    idle_loop_us: Option<f64>,
    /// `/stats` once all were answered.
    stats: &'a Stats,
}

/// Prints the release table; returns whether it went as it should (every poll
/// answered by the update, none early, the wake-up goal met) and the `RESULT`
/// fields.
fn report_release(
    opts: &Options,
    waiting: usize,
    summary: &Summary,
    tally: &Tally,
    release: &Release,
) -> (bool, String) {
    // The server's names: `wake.last_*` (every reader of the update), or
    // `long.wake_last_*` (the long polls'), whichever it serves.
    let stats = release.stats;
    let either = |a: &str, b: &str| stat(stats, a).or_else(|| stat(stats, b));
    let wake_us = either("long.wake_last_us", "wake.last_us");
    let wake_readers = either("long.wake_last_readers", "wake.last_readers");
    let backlogged = stat(stats, "wake.last_backlogged");
    let wake_ms = wake_us.map(|us| us as f64 / 1000.0);
    let answers = summary.answered.max(1) as f64;

    let mut t = Table::new(format!(
        "the release: one update answers {waiting} held polls"
    ));
    t.row("answered (any status)", summary.answered, "");
    t.row("  200 with progress > since", summary.released, "");
    t.row("  answered before all were held", tally.early, "");
    t.row("failed or closed early", tally.failed, "");
    t.row(
        "client: first to last answer",
        format!("{:.2}", summary.spread.as_secs_f64() * 1000.0),
        "ms",
    );
    t.row(
        "client: update -> receipt p50 / p99 / max",
        format!(
            "{} / {} / {}",
            percentile(&summary.lag_ms, 0.5),
            percentile(&summary.lag_ms, 0.99),
            percentile(&summary.lag_ms, 1.0)
        ),
        "ms",
    );
    match wake_ms {
        Some(ms) => t.goal_row(
            "server: update -> last answer handed to the kernel",
            ms,
            3,
            "ms",
            opts.max_wake_ms,
        ),
        None => t.row("server: wake.last_us", "missing from /stats", ""),
    }
    t.row(
        "server: answers of that update (wake.last_readers)",
        wake_readers.map_or("-".to_string(), |r| r.to_string()),
        "",
    );
    if let Some(b) = backlogged {
        t.row("server: answers not all taken by the kernel", b, "");
    }
    t.row(
        &format!(
            "server CPU from the window's end to the last answer ({:.1} s)",
            release.secs
        ),
        format!(
            "{} user + {} system",
            release.cpu.user * 10,
            release.cpu.system * 10
        ),
        "ms",
    );
    if let Some(us) = release.loop_us {
        let idle = release.idle_loop_us.unwrap_or(0.0);
        t.row(
            "  the loop thread (loop.cpu_us), less its idle rate, per answer",
            format!("{:.1}", (us as f64 - idle).max(0.0) / answers),
            "µs",
        );
    }
    t.print();

    let met = summary.released == opts.conns
        && tally.early == 0
        && match (opts.max_wake_ms, wake_ms) {
            (Some(max), Some(ms)) => ms <= max,
            (Some(_), None) => false,
            (None, _) => true,
        };
    let mut line = format!(
        " answered={} released={} early={} release_s={:.2} spread_ms={:.2} lag_p50_ms={} \
         lag_max_ms={} wake_last_us={} wake_last_readers={} release_user_ticks={} release_sys_ticks={}",
        summary.answered,
        summary.released,
        tally.early,
        release.secs,
        summary.spread.as_secs_f64() * 1000.0,
        percentile(&summary.lag_ms, 0.5),
        percentile(&summary.lag_ms, 1.0),
        wake_us.map_or("-".to_string(), |v| v.to_string()),
        wake_readers.map_or("-".to_string(), |v| v.to_string()),
        release.cpu.user,
        release.cpu.system,
    );
    if let Some(us) = release.loop_us {
        let idle = release.idle_loop_us.unwrap_or(0.0);
        line += &format!(
            " release_loop_us={us} wake_loop_us_per_answer={:.1}",
            (us as f64 - idle).max(0.0) / answers
        );
    }
    (met, line)
}

/// What the connections got, counted before they are closed.
#[derive(Default)]
struct Summary {
    /// Long: answers, those with status 200 and progress past `since`, the time
    /// from the first answer to the last, and each released answer's receipt
    /// time minus its `Job-Updated-At`, sorted.
    answered: usize,
    released: usize,
    spread: Duration,
    lag_ms: Vec<u64>,
    /// SSE: streams still open, and what they all received.
    streaming: usize,
    events: u64,
    heartbeats: u64,
}

impl Summary {
    fn of(conns: &[Conn], since: u32) -> Summary {
        let mut s = Summary::default();
        let (mut first, mut last) = (None::<Instant>, None::<Instant>);
        for conn in conns {
            match &conn.state {
                State::Answered(a) => {
                    s.answered += 1;
                    if a.status == 200 && a.progress.is_some_and(|p| p > since) {
                        s.released += 1;
                        if let Some(updated) = a.updated_at_ms {
                            s.lag_ms.push(a.at_ms.saturating_sub(updated));
                        }
                    }
                    if !a.early {
                        first = Some(first.map_or(a.at, |f| f.min(a.at)));
                        last = Some(last.map_or(a.at, |l| l.max(a.at)));
                    }
                }
                State::Streaming(st) => {
                    s.streaming += 1;
                    s.events += st.events;
                    s.heartbeats += st.heartbeats;
                }
                _ => {}
            }
        }
        if let (Some(f), Some(l)) = (first, last) {
            s.spread = l - f;
        }
        s.lag_ms.sort_unstable();
        s
    }
}

fn heartbeats(conns: &[Conn]) -> u64 {
    conns
        .iter()
        .map(|c| match &c.state {
            State::Streaming(s) => s.heartbeats,
            _ => 0,
        })
        .sum()
}

/// The `/stats` names whose value changed between snapshots, one column each.
fn print_stats_changes(snapshots: &[(&str, &Stats)]) {
    let Some((_, first)) = snapshots.first() else {
        return;
    };
    let mut names: Vec<&String> = first.keys().collect();
    for (_, s) in snapshots {
        names.extend(s.keys());
    }
    names.sort();
    names.dedup();
    let changed: Vec<&String> = names
        .into_iter()
        .filter(|name| {
            let values: Vec<Option<&String>> =
                snapshots.iter().map(|(_, s)| s.get(*name)).collect();
            values.windows(2).any(|w| w.first() != w.get(1))
        })
        .collect();
    if changed.is_empty() {
        return;
    }
    let w0 = changed.iter().map(|n| n.len()).max().unwrap_or(0);
    let widths: Vec<usize> = snapshots
        .iter()
        .map(|(label, s)| {
            changed
                .iter()
                .map(|n| s.get(*n).map_or(1, String::len))
                .max()
                .unwrap_or(0)
                .max(label.len())
        })
        .collect();
    println!("\nserver /stats (names whose value changed)");
    let mut line = format!("  {:<w0$}", "name");
    for ((label, _), w) in snapshots.iter().zip(&widths) {
        line += &format!("  {label:>w$}");
    }
    println!("{line}");
    for name in changed {
        let mut line = format!("  {name:<w0$}");
        for ((_, s), w) in snapshots.iter().zip(&widths) {
            line += &format!("  {:>w$}", s.get(name).map_or("-", String::as_str));
        }
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        parse_options(args.iter().map(|a| a.to_string()))
    }

    fn refused(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => e,
            Ok(_) => panic!("{args:?} accepted"),
        }
    }

    #[test]
    fn command_line() {
        let Ok(Some(o)) = parse(&["--pid", "42"]) else {
            panic!()
        };
        assert_eq!(
            (o.pid, o.mode, o.conns, o.wait_secs),
            (42, Mode::Long, 10_000, 30)
        );
        let Ok(Some(o)) = parse(&["--pid=7", "--mode", "sse", "--addr", "127.0.0.1:9"]) else {
            panic!()
        };
        assert_eq!((o.mode, o.addr.port()), (Mode::Sse, 9));
        assert!(matches!(parse(&["--help"]), Ok(None)));
        assert!(refused(&[]).contains("--pid PID is needed"));
        assert!(
            refused(&["--pid", "1", "--addr", "10.0.0.1:80"]).contains("only talks to 127.0.0.1")
        );
        assert!(refused(&["--pid", "1", "--mode", "ws"]).contains("long or sse"));
        assert_eq!(
            refused(&["--pid", "1", "--conns", "0"]),
            "--conns 0: must be at least 1"
        );
        assert!(refused(&["--pid", "1", "--max-cpu-pct", "-1"]).contains("above 0"));
        assert_eq!(refused(&["--bogus"]), "unknown flag --bogus");
    }

    #[test]
    fn cpu_ticks_are_fields_14_and_15_after_the_name() {
        let stat = "1234 (jobs (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        let cpu = parse_cpu(stat).unwrap();
        assert_eq!((cpu.user, cpu.system, cpu.total()), (250, 50, 300));
        assert!(parse_cpu("1 (x) S 1").is_none());
        let own = read_cpu(std::process::id());
        assert!(own.is_ok(), "{own:?}");
    }

    #[test]
    fn responses_by_length_chunked_and_close() {
        let r =
            b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nJob-Updated-At: 17\r\n\r\nJobStatus: 40%\n";
        assert!(parse_response(&r[..r.len() - 1], false).unwrap().is_none());
        let reply = parse_response(r, false).unwrap().unwrap();
        assert_eq!((reply.status, reply.len), (200, r.len()));
        assert_eq!(progress_of(&reply.text()), Some(40));
        assert_eq!(reply.header("job-updated-at"), Some("17"));

        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n";
        assert!(parse_response(&c[..c.len() - 2], false).unwrap().is_none());
        assert_eq!(parse_response(c, false).unwrap().unwrap().body, b"abcde");

        let e = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
        assert!(parse_response(e, false).unwrap().is_none());
        assert_eq!(
            parse_response(e, true).unwrap().unwrap().body,
            b"until close"
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
    }

    #[test]
    fn dechunk_stops_at_a_partial_chunk() {
        let mut out = Vec::new();
        assert_eq!(dechunk(b"3\r\nabc\r\n4\r\nde", &mut out), Ok((8, false)));
        assert_eq!(out, b"abc");
        assert!(dechunk(b"3\r\nabcX\r\n", &mut out).is_err());
        assert!(dechunk(b"zz\r\n", &mut out).is_err());
    }

    #[test]
    fn small_helpers() {
        assert_eq!(query_escape("job:17-a_b.c~"), "job%3A17-a_b.c~");
        assert_eq!(progress_of("\n\nJobStatus: 100%\n\n"), Some(100));
        assert_eq!(progress_of("nothing"), None);
        let s = parse_stats("long.held_now 10000\nshort.requests 3\n\nodd\n");
        assert_eq!(stat(&s, "long.held_now"), Some(10_000));
        assert_eq!(stat(&s, "odd"), None);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 3);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
