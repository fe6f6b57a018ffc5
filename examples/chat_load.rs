//! chat_load: a load client for the push chat. It opens N WebSocket connections,
//! to one chat server or spread over several that share one room, has one of them
//! (or S of them) send M messages back to back, and checks that every client got
//! every broadcast, timing each one.
//!
//! ```sh
//! cargo run --release --example chat_push -- --addr 127.0.0.1:8080 &    # or any chat server
//! cargo run --release --example chat_load -- --url ws://127.0.0.1:8080/ --clients 100 --messages 2000
//! # several servers sharing one room, and their processes' CPU and memory:
//! cargo run --release --example chat_load -- --url ws://127.0.0.1:8081/ --url ws://127.0.0.1:8082/ \
//!     --pid 4242 --pid 4243 --clients 1000 --messages 200
//! ```
//!
//! Flags: `--url ws://HOST:PORT/PATH` (default `ws://127.0.0.1:8080/`; repeatable:
//! client i goes to URL i mod K), `--clients N` (100), `--messages M` (2000, per
//! sender), `--senders S` (1; the first S clients send, so with several URLs the
//! senders are spread over the servers too), `--pid PID` (repeatable: a server
//! process whose CPU time and peak memory are read from `/proc`), `--timeout SECS`
//! (20, for the whole run), `--settle SECS` (10), `--idle SECS` (2),
//! `--connect-concurrency C` (64), `--help`.
//!
//! Each client is a socket; past about 1000 clients raise the open-file limit first
//! (in the shell that starts the client, and in the server's): `ulimit -n 20000`.
//!
//! # The chat's lines
//!
//! The chat protocol (the notes' node server, and `chat_push`): when a client
//! connects, every connected client, the new one included, gets
//! `User<port> just connected.`; when a client sends a text `<t>`, every connected
//! client, the sender included, gets `User<port> says: <t>`. `<port>` is the
//! sender's TCP port as the server sees it, which is our local port.
//!
//! Several chat servers can share one room through a broker (Redis pub/sub): a
//! line said on any server reaches every user on every server. There two users on
//! different servers may have the same port, so the name carries the port the
//! server listens on: `User<port>@<serverport> just connected.`. chat_load takes
//! both forms; with the suffix, a name is a client's when the port is the client's
//! local port and `<serverport>` is the port of the URL the client went to (so the
//! servers must be reached at their own ports, not through a proxy).
//!
//! # What it does
//!
//! 1. **Connect**: opens the N connections, client i to URL i mod K, at most C
//!    handshakes at a time. The handshake and the frames are
//!    `wirepatterns::ws::client`; each client is a non-blocking socket, and one
//!    thread drives them all with one `mio::Poll`, so one clock times every server.
//! 2. **Settle**: waits until every client has its own join notice and, in all,
//!    N(N+1)/2 have arrived (each client hears of itself and of every later joiner),
//!    at most `--settle` seconds. With servers sharing a room, two clients joining
//!    at once on different servers may each hear of the other, so a few more can
//!    arrive; never fewer.
//! 3. **Send**: each sender sends M messages `m<seq>-<send_ns>` back to back (as
//!    fast as its socket takes them, a batch per sender in turn; `<send_ns>` is
//!    read from this process's monotonic clock just before the frame is written).
//! 4. **Receive**: every client counts the `says: ` broadcasts carrying our
//!    messages, and records latency = receipt - send time, one clock for both.
//!    Receipt time is when the read that brought the frame returned, so it includes
//!    this process's own queueing. Order is checked per sender: each sender's
//!    messages must arrive in the order sent (different senders' interleave).
//! 5. **End**: when every client has all S x M (`end=complete`); or when everything
//!    was sent and nothing arrived for `--idle` seconds (`end=idle`: loss); or at
//!    `--timeout` (`end=timeout`). Then each client sends a close frame and the
//!    sockets are dropped.
//!
//! It prints how many clients went to each URL, deliveries/s (deliveries over the
//! time from the first send to the last receipt), latency p50/p99/max, and a
//! `RESULT key=value ...` line with the same key names as the `wsload chat` tool's.
//! Exit code 0 when every client got every message, 3 when not (loss, timeout, not
//! settled), 2 on bad usage (a `--pid` with no such process included), 1 when
//! nothing could connect.
//!
//! # The servers' cost (`--pid`)
//!
//! For each `--pid`, the process's CPU time (user + system, every thread: the
//! scheduler's account in `/proc/PID/task/*/schedstat`, in nanoseconds) is read
//! just before the first send and again when the run ends; for `end=complete` that
//! is the last receipt, so the difference is the CPU the server spent over the
//! delivery window. (After `end=idle` or `end=timeout` the window runs on to the
//! end, but an idle server adds next to nothing.) Summed over the servers and
//! divided by the deliveries received, it is the CPU per delivery, the figure that
//! compares one server with several sharing the load. Each process's peak resident
//! memory (`VmHWM` in `/proc/PID/status`, the peak over its life) is read at the
//! end. `RESULT` then carries `server_cpu_s` (the sum), `server_cpu_s_each`,
//! `server_cpu_per_delivery_us`, `server_peak_rss_mib` (the SUM of the peaks: the
//! memory all the servers needed), `server_peak_rss_mib_max` and
//! `server_peak_rss_mib_each`, in `--pid` order. /proc is read only when `--pid`
//! is given.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wirepatterns::http::Status;
use wirepatterns::ws::client::{self, ClientDecoder, ClientHandshake};
use wirepatterns::ws::{CloseCode, CloseFrame, Event};

#[path = "support/mod.rs"]
mod support;
use support::{ClientArg, Rng};

const USAGE: &str = "\
chat_load: load the push chat with N clients and M broadcast messages

usage: chat_load [--url ws://HOST:PORT/PATH ...] [--clients N] [--messages M]
                 [--senders S] [--pid PID ...] [--timeout SECS] [--settle SECS]
                 [--idle SECS] [--connect-concurrency C]

  --url URL                  the chat's WebSocket (default ws://127.0.0.1:8080/);
                             repeat it for servers sharing one room: client i
                             goes to URL i mod K
  --clients N                connections to open (default 100)
  --messages M               messages each sender sends (default 2000)
  --senders S                how many clients send, the first S (default 1)
  --pid PID                  a server process: report its CPU over the delivery
                             window and its peak memory (repeatable)
  --timeout SECS             end the whole run after this long (default 20)
  --settle SECS              longest wait for the join notices (default 10)
  --idle SECS                after the last send, end when nothing came for this long (default 2)
  --connect-concurrency C    most handshakes in flight at once (default 64)
  --help                     this text

More than about 1000 clients need more open files: run `ulimit -n 20000` first.
Exit code 0 when every client got every message, 3 when not, 2 on bad usage.
";

/// Bytes read per `read()` call, into one buffer shared by all clients.
const READ_CHUNK: usize = 64 * 1024;

/// How many messages a sender encodes before the next sender, or the loop's
/// reading, gets a turn.
const SEND_BATCH: usize = 64;

/// One `--url`: a server the clients are spread over.
struct Target {
    /// The server's address, resolved from the URL.
    addr: SocketAddr,
    /// The URL's authority, for the `Host` header.
    host: String,
    /// The URL's path and query, for the request line.
    path: String,
    /// The URL as given, for printing.
    url: String,
}

impl Target {
    /// The port the URL names (80 when it names none), which a server sharing a
    /// room with others puts after the `@` in its users' names.
    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// What the command line asked for.
struct Options {
    /// The servers, in `--url` order; client i goes to `targets[i % K]`.
    targets: Vec<Target>,
    clients: usize,
    /// Messages per sender.
    messages: u64,
    /// The first `senders` clients send.
    senders: usize,
    /// Server processes to measure (`--pid`), in the order given.
    pids: Vec<u32>,
    timeout: Duration,
    settle: Duration,
    idle: Duration,
    connect_concurrency: usize,
}

impl Options {
    /// The server client `i` goes to.
    fn target_of(&self, i: usize) -> usize {
        i % self.targets.len().max(1)
    }
}

/// The flags `chat_load` takes (each with a value), besides `--help`.
const FLAGS: [&str; 9] = [
    "--url",
    "--clients",
    "--messages",
    "--senders",
    "--pid",
    "--timeout",
    "--settle",
    "--idle",
    "--connect-concurrency",
];

/// The options from the command line (without the program name); `Ok(None)` for
/// `--help`. Counts must be at least 1 and durations more than 0. `--url` and
/// `--pid` may be repeated; whether each `--pid` is a running process is checked
/// apart, by [`check_pids`].
fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut urls: Vec<String> = Vec::new();
    let (mut clients, mut messages, mut senders) = (100usize, 2000u64, 1usize);
    let mut pids: Vec<u32> = Vec::new();
    let mut timeout = Duration::from_secs(20);
    let mut settle = Duration::from_secs(10);
    let mut idle = Duration::from_secs(2);
    let mut connect_concurrency = 64usize;
    let mut args = args.into_iter();
    while let Some(arg) = support::next_client_arg(&mut args, &FLAGS)? {
        let ClientArg::Flag(flag, value) = arg else {
            return Ok(None);
        };
        match flag.as_str() {
            "--url" => urls.push(value),
            "--clients" => clients = support::count(&flag, &value)?,
            "--messages" => messages = support::count(&flag, &value)? as u64,
            "--senders" => senders = support::count(&flag, &value)?,
            "--pid" => match value.parse::<u32>() {
                Ok(pid) if pid > 0 => pids.push(pid),
                _ => return Err(format!("{flag} {value:?}: not a process id")),
            },
            "--timeout" => timeout = support::secs(&flag, &value, false)?,
            "--settle" => settle = support::secs(&flag, &value, false)?,
            "--idle" => idle = support::secs(&flag, &value, false)?,
            "--connect-concurrency" => connect_concurrency = support::count(&flag, &value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if senders > clients {
        return Err(format!(
            "--senders {senders}: more than the {clients} clients"
        ));
    }
    if (clients as u64)
        .saturating_mul(messages)
        .saturating_mul(senders as u64)
        > 200_000_000
    {
        return Err(
            "clients x messages x senders over 200 million: too many latencies to keep".into(),
        );
    }
    if urls.is_empty() {
        urls.push("ws://127.0.0.1:8080/".to_string());
    }
    let targets = urls
        .iter()
        .map(|url| parse_target(url))
        .collect::<Result<Vec<Target>, String>>()?;
    Ok(Some(Options {
        targets,
        clients,
        messages,
        senders,
        pids,
        timeout,
        settle,
        idle,
        connect_concurrency,
    }))
}

/// One `--url`, split and resolved.
fn parse_target(url: &str) -> Result<Target, String> {
    let (authority, path) = support::split_ws_url(url)?;
    if authority.is_empty() {
        return Err(format!("--url {url:?} has no host"));
    }
    // A port is required by ToSocketAddrs; ws:// defaults to 80 (RFC 6455 §3).
    let has_port = authority.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
    });
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {with_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{with_port} resolves to no address"))?;
    Ok(Target {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        url: url.to_string(),
    })
}

/// Each `--pid` must be a process whose CPU time can be read; the error names the
/// first that is not (a usage error: exit code 2).
fn check_pids(pids: &[u32]) -> Result<(), String> {
    for &pid in pids {
        support::cpu_time(pid).map_err(|e| format!("--pid {pid}: no such process? {e}"))?;
    }
    Ok(())
}

/// Where one load client's connection is, from connect to gone.
enum ClientState {
    /// The TCP connect is in progress.
    Connecting(ClientHandshake),
    /// The upgrade request is sent; waiting for the 101.
    Handshaking(ClientHandshake),
    /// Frames flow.
    Open,
    /// Closed or failed; not driven any more.
    Gone,
}

/// What a client counted.
#[derive(Default)]
struct Tally {
    /// It got its own `User<port> just connected.`
    own_notice: bool,
    /// Join notices received, its own included.
    notices: u64,
    /// Distinct messages of ours received, from all senders.
    received: u64,
    /// Messages of ours received twice.
    duplicates: u64,
    /// Messages that came after one of the same sender with a higher sequence
    /// number.
    order_violations: u64,
    /// Per sender, the highest sequence number seen so far.
    last_seq: Vec<Option<u64>>,
    /// One bit per sender and sequence number: received already. Sender k's bits
    /// are the k-th run of `ceil(M / 64)` words.
    seen: Vec<u64>,
}

struct Client {
    stream: TcpStream,
    state: ClientState,
    /// The server it went to: an index into `Options::targets`.
    target: usize,
    /// Our local port, which the server calls our remote port: `User<port>`.
    port: u16,
    decoder: ClientDecoder,
    /// Received bytes not yet consumed: the response head while handshaking, then
    /// the start of a frame that has not all arrived.
    pending: Vec<u8>,
    /// Bytes to send, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// The handshake succeeded (the client counts towards the expected deliveries).
    opened: bool,
    tally: Tally,
}

/// One `--pid`: its CPU time when the sending began, and what the end found.
struct ServerProbe {
    pid: u32,
    /// CPU time read just before the first send.
    cpu_at_send: Option<Duration>,
    /// CPU time from the first send to the end of the run.
    cpu: Option<Duration>,
    /// Peak resident memory (`VmHWM`), KiB.
    peak_kib: Option<u64>,
}

/// What the whole run shares: the senders' names, the latencies, the clock.
struct Run {
    opts: Options,
    start: Instant,
    rng: Rng,
    /// The senders by their local port: for each, the port of the URL the sender
    /// went to, and the sender's index. Empty until the sending begins.
    senders: HashMap<u16, Vec<(u16, usize)>>,
    latencies_ns: Vec<u64>,
    notices: u64,
    clients_complete: usize,
    first_send_ns: Option<u64>,
    last_receipt_ns: u64,
    errors: Vec<String>,
    failed: usize,
    /// Clients whose handshake succeeded.
    opened: usize,
    servers: Vec<ServerProbe>,
}

impl Run {
    /// A run of `opts` against `servers`, before anything is connected.
    fn new(opts: Options, servers: Vec<ServerProbe>) -> Run {
        Run {
            opts,
            start: Instant::now(),
            rng: Rng::seeded(),
            senders: HashMap::new(),
            latencies_ns: Vec::new(),
            notices: 0,
            clients_complete: 0,
            first_send_ns: None,
            last_receipt_ns: 0,
            errors: Vec::new(),
            failed: 0,
            opened: 0,
            servers,
        }
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn error(&mut self, what: String) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(what);
        }
    }

    /// The sender a chat name belongs to, if it is one of ours.
    fn sender_of(&self, name: Name) -> Option<usize> {
        self.senders
            .get(&name.port)?
            .iter()
            .find(|&&(server, _)| name.is(name.port, server))
            .map(|&(_, k)| k)
    }

    /// Messages the senders are to send in all: S x M.
    fn to_send(&self) -> u64 {
        self.opts.senders as u64 * self.opts.messages
    }
}

/// A user's name in the chat, after `User`: `<port>` from a lone server,
/// `<port>@<serverport>` from servers sharing a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Name {
    port: u16,
    server: Option<u16>,
}

impl Name {
    /// `51234` or `51234@8081`: digits only, each number a port.
    fn parse(text: &str) -> Option<Name> {
        let (port, server) = match text.split_once('@') {
            Some((port, server)) => (port, Some(parse_port(server)?)),
            None => (text, None),
        };
        Some(Name {
            port: parse_port(port)?,
            server,
        })
    }

    /// Whether this names the client with local port `port` on the server reached
    /// at `server_port`. Without the `@` suffix the port alone decides (a lone
    /// server sees each client's port once).
    fn is(self, port: u16, server_port: u16) -> bool {
        self.port == port && self.server.is_none_or(|s| s == server_port)
    }
}

/// A port written in decimal digits, nothing else (no sign, no spaces).
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A chat line that counts: a join notice or one of our messages.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Joined(Name),
    Message { from: Name, seq: u64, sent_ns: u64 },
}

fn parse_line(text: &str) -> Option<Line> {
    let rest = text.strip_prefix("User")?;
    if let Some(name) = rest.strip_suffix(" just connected.") {
        return Name::parse(name).map(Line::Joined);
    }
    let (name, message) = rest.split_once(" says: ")?;
    let (seq, sent_ns) = message.strip_prefix('m')?.split_once('-')?;
    Some(Line::Message {
        from: Name::parse(name)?,
        seq: seq.parse().ok()?,
        sent_ns: sent_ns.parse().ok()?,
    })
}

/// Count one text message received at `now_ns` by the client with local port
/// `port` on the server reached at `server_port`.
fn on_text(
    tally: &mut Tally,
    (port, server_port): (u16, u16),
    text: &str,
    now_ns: u64,
    run: &mut Run,
) {
    match parse_line(text) {
        Some(Line::Joined(name)) => {
            tally.notices += 1;
            run.notices += 1;
            tally.own_notice |= name.is(port, server_port);
        }
        Some(Line::Message { from, seq, sent_ns }) => {
            let Some(sender) = run.sender_of(from) else {
                return;
            };
            let m = run.opts.messages;
            if seq >= m {
                return;
            }
            let words = m.div_ceil(64) as usize;
            if tally.seen.is_empty() {
                tally.seen = vec![0; words * run.opts.senders];
                tally.last_seq = vec![None; run.opts.senders];
            }
            let (word, bit) = (sender * words + (seq / 64) as usize, 1u64 << (seq % 64));
            let (Some(slot), Some(last)) =
                (tally.seen.get_mut(word), tally.last_seq.get_mut(sender))
            else {
                return;
            };
            if *slot & bit != 0 {
                tally.duplicates += 1;
                return;
            }
            *slot |= bit;
            if last.is_some_and(|last| seq < last) {
                tally.order_violations += 1;
            }
            *last = Some(last.map_or(seq, |last| last.max(seq)));
            tally.received += 1;
            run.latencies_ns.push(now_ns.saturating_sub(sent_ns));
            run.last_receipt_ns = now_ns;
            if tally.received == run.to_send() {
                run.clients_complete += 1;
            }
        }
        None => {}
    }
}

/// Decode the frames in `data` for one client; returns how many bytes were used.
fn decode_frames(
    client: &mut Client,
    data: &[u8],
    now_ns: u64,
    run: &mut Run,
) -> Result<usize, String> {
    let me = (
        client.port,
        run.opts.targets.get(client.target).map_or(0, Target::port),
    );
    let mut pos = 0;
    loop {
        let rest = data.get(pos..).unwrap_or_default();
        let decoded = client
            .decoder
            .decode(rest)
            .map_err(|e| format!("client on port {}: {e}", client.port))?;
        pos += decoded.consumed;
        match decoded.event {
            None => return Ok(pos),
            Some(Event::Text(text)) => on_text(&mut client.tally, me, text, now_ns, run),
            Some(Event::Ping(payload)) => {
                client::write_pong(&mut client.out, payload, run.rng.mask_key())
            }
            Some(Event::Close(_)) => {
                client::write_close(&mut client.out, None, run.rng.mask_key());
                return Err(format!(
                    "client on port {}: the server closed the connection",
                    client.port
                ));
            }
            Some(_) => {}
        }
    }
}

/// Feed bytes just read to a client.
fn on_bytes(client: &mut Client, data: &[u8], now_ns: u64, run: &mut Run) -> Result<(), String> {
    if let ClientState::Handshaking(handshake) = &mut client.state {
        client.pending.extend_from_slice(data);
        match handshake.read_response(&client.pending) {
            Ok(Status::Partial) => return Ok(()),
            Ok(Status::Complete(head_len)) => {
                client.pending.drain(..head_len);
                client.state = ClientState::Open;
                client.opened = true;
                run.opened += 1;
            }
            Err(e) => {
                let url = run.opts.targets.get(client.target).map(|t| t.url.as_str());
                return Err(format!("handshake with {}: {e}", url.unwrap_or("?")));
            }
        }
        let pending = std::mem::take(&mut client.pending);
        let used = decode_frames(client, &pending, now_ns, run)?;
        client.pending = pending;
        client.pending.drain(..used);
        return Ok(());
    }
    if client.pending.is_empty() {
        // The usual case: decode straight from the read buffer, keep any tail.
        let used = decode_frames(client, data, now_ns, run)?;
        client
            .pending
            .extend_from_slice(data.get(used..).unwrap_or_default());
    } else {
        let mut pending = std::mem::take(&mut client.pending);
        pending.extend_from_slice(data);
        let used = decode_frames(client, &pending, now_ns, run)?;
        pending.drain(..used);
        client.pending = pending;
    }
    Ok(())
}

/// Write queued bytes until done or the socket is full.
fn flush(client: &mut Client) -> io::Result<()> {
    support::write_queued(&mut client.stream, &mut client.out, &mut client.out_pos)
}

/// Handle readiness for one client: finish connecting, write, read everything.
fn drive(client: &mut Client, scratch: &mut [u8], run: &mut Run) -> Result<(), String> {
    let Some(target) = run.opts.targets.get(client.target) else {
        return Err(format!("client on port {}: no such server", client.port));
    };
    let addr = target.addr;
    if let ClientState::Connecting(_) = client.state {
        if let Ok(Some(e)) | Err(e) = client.stream.take_error() {
            return Err(format!("connect to {addr}: {e}"));
        }
        match client.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()), // not yet
            Err(e) => return Err(format!("connect to {addr}: {e}")),
        }
        let port = client
            .stream
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        client.port = port;
        let ClientState::Connecting(handshake) =
            std::mem::replace(&mut client.state, ClientState::Gone)
        else {
            return Ok(());
        };
        handshake
            .write_request(&target.host, &target.path, &mut client.out)
            .map_err(|e| format!("--url {}: {e}", target.url))?;
        client.state = ClientState::Handshaking(handshake);
    }
    flush(client).map_err(|e| format!("write to {addr}: {e}"))?;
    loop {
        match client.stream.read(scratch) {
            Ok(0) => {
                return Err(format!(
                    "client on port {}: the server closed TCP",
                    client.port
                ));
            }
            Ok(n) => {
                let now_ns = run.now_ns();
                on_bytes(client, scratch.get(..n).unwrap_or_default(), now_ns, run)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
    // Replies (pongs) written while reading.
    flush(client).map_err(|e| format!("write to {addr}: {e}"))
}

/// How the run ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    Idle,
    Timeout,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Idle => "idle",
            End::Timeout => "timeout",
        }
    }
}

/// CPU time this (single-threaded) process has used, from the scheduler's account.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default() as f64 / 1e6
}

fn main() -> ExitCode {
    let opts = match parse_options(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = check_pids(&opts.pids) {
        eprintln!("error: {e}\n\n{USAGE}");
        return ExitCode::from(2);
    }
    match run(opts) {
        Ok(outcome) if outcome.complete => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// What a run found, besides what it printed. `main` needs only `complete`; the
/// tests check the rest.
#[cfg_attr(not(test), allow(dead_code))]
struct Outcome {
    /// Every client connected and got every message.
    complete: bool,
    /// Deliveries received, and expected.
    received: u64,
    expected: u64,
    /// Clients that connected, per URL (in `--url` order).
    opened_per_url: Vec<usize>,
}

/// The first line: what the run will do.
fn announce(opts: &Options) {
    let n = opts.clients;
    let m = opts.messages;
    let s = opts.senders;
    let on = match opts.targets.as_slice() {
        [one] => one.url.clone(),
        targets => {
            let urls: Vec<&str> = targets.iter().map(|t| t.url.as_str()).collect();
            format!("{} servers ({})", targets.len(), urls.join(", "))
        }
    };
    let senders = if s == 1 {
        "1 sender".to_string()
    } else {
        format!("{s} senders")
    };
    println!(
        "chat_load: {n} clients on {on}, {senders}, {m} messages{} ({} deliveries expected)",
        if s == 1 { "" } else { " each" },
        n as u64 * m * s as u64
    );
}

/// Reads each `--pid`'s CPU time now (just before the first send).
fn probe_start(servers: &mut [ServerProbe]) {
    for server in servers {
        server.cpu_at_send = support::cpu_time(server.pid).ok();
    }
}

/// Reads each `--pid`'s CPU time and peak memory at the end of the run.
fn probe_end(run: &mut Run) {
    let mut errors = Vec::new();
    for server in &mut run.servers {
        match (server.cpu_at_send, support::cpu_time(server.pid)) {
            (Some(at_send), Ok(now)) => server.cpu = Some(now.saturating_sub(at_send)),
            (None, _) => {}
            (_, Err(e)) => errors.push(format!("server {}: {e}", server.pid)),
        }
        match support::read_memory(server.pid) {
            Ok(memory) => server.peak_kib = Some(memory.hwm),
            Err(e) => errors.push(format!("server {}: {e}", server.pid)),
        }
    }
    for e in errors {
        run.error(e);
    }
}

fn run(opts: Options) -> Result<Outcome, String> {
    announce(&opts);
    let n = opts.clients;
    let m = opts.messages;
    let s = opts.senders;
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let cpu_start = cpu_seconds();
    let servers = opts
        .pids
        .iter()
        .map(|&pid| ServerProbe {
            pid,
            cpu_at_send: None,
            cpu: None,
            peak_kib: None,
        })
        .collect();
    let mut run = Run::new(opts, servers);

    let mut connected_at: Option<Instant> = None;
    let mut settled_at: Option<Instant> = None;
    let mut settled = false;
    // Messages sent so far by each sender (client k for k < S).
    let mut sent: Vec<u64> = vec![0; s];
    let mut send_done_ns: Option<u64> = None;
    let mut text = String::new();
    let end = 'run: loop {
        let now = Instant::now();
        let elapsed = now - run.start;
        if elapsed >= run.opts.timeout {
            break End::Timeout;
        }
        // The scans below run only until the connections have settled.
        let connecting = connected_at.is_none();
        let open = if settled_at.is_none() {
            clients
                .iter()
                .filter(|c| matches!(c.state, ClientState::Open))
                .count()
        } else {
            0
        };

        // 1. Connect: keep up to C handshakes in flight until all N are opened.
        let mut in_flight = if connecting {
            clients
                .iter()
                .filter(|c| {
                    matches!(
                        c.state,
                        ClientState::Connecting(_) | ClientState::Handshaking(_)
                    )
                })
                .count()
        } else {
            0
        };
        let mut room = run.opts.connect_concurrency.saturating_sub(in_flight);
        while room > 0 && clients.len() < n {
            let target = run.opts.target_of(clients.len());
            let addr = run.opts.targets.get(target).map(|t| t.addr);
            let Some(addr) = addr else {
                return Err("no --url to connect to".into());
            };
            let mut stream = match TcpStream::connect(addr) {
                Ok(stream) => stream,
                // EMFILE (24): the per-process limit on open files.
                Err(e) if e.raw_os_error() == Some(24) => {
                    return Err(format!(
                        "cannot open socket {} of {n}: {e}. Raise the limit on open files \
                         in this shell (and the server's) with `ulimit -n 20000`",
                        clients.len() + 1
                    ));
                }
                Err(e) => return Err(format!("cannot connect to {addr}: {e}")),
            };
            let token = Token(clients.len());
            poll.registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| format!("cannot register a socket: {e}"))?;
            let handshake = ClientHandshake::new(run.rng.nonce());
            clients.push(Client {
                stream,
                state: ClientState::Connecting(handshake),
                target,
                port: 0,
                decoder: ClientDecoder::default(),
                pending: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
                opened: false,
                tally: Tally::default(),
            });
            room -= 1;
            in_flight += 1;
        }
        if connecting && clients.len() == n && in_flight == 0 {
            connected_at = Some(now);
            if open == 0 {
                let why = run.errors.first().cloned().unwrap_or_default();
                return Err(format!("no client could connect: {why}"));
            }
        }

        // 2. Settle: every client has its own notice, and open(open+1)/2 in all.
        if let (Some(connected), None) = (connected_at, settled_at) {
            let expected = (open * (open + 1) / 2) as u64;
            let all_own = clients
                .iter()
                .filter(|c| matches!(c.state, ClientState::Open))
                .all(|c| c.tally.own_notice);
            if all_own && run.notices >= expected {
                settled = true;
                settled_at = Some(now);
            } else if now - connected >= run.opts.settle {
                settled_at = Some(now);
            }
        }

        // 3. Send: each sender in turn, a batch at a time while its socket keeps up.
        if settled_at.is_some() && send_done_ns.is_none() {
            if run.senders.is_empty() {
                // The senders' names, so that their messages are told apart.
                for (k, sender) in clients.iter().take(s).enumerate() {
                    let server = run.opts.targets.get(sender.target).map_or(0, Target::port);
                    run.senders
                        .entry(sender.port)
                        .or_default()
                        .push((server, k));
                }
                probe_start(&mut run.servers);
            }
            for (k, sender) in clients.iter_mut().take(s).enumerate() {
                let Some(sent) = sent.get_mut(k) else {
                    break;
                };
                if *sent == m {
                    continue;
                }
                if !matches!(sender.state, ClientState::Open) {
                    run.error(format!(
                        "sender {k}'s connection is gone: nothing more can be sent"
                    ));
                    break 'run End::Idle;
                }
                if !sender.out.is_empty() {
                    continue;
                }
                for _ in 0..SEND_BATCH {
                    if *sent == m {
                        break;
                    }
                    text.clear();
                    let sent_ns = run.start.elapsed().as_nanos() as u64;
                    run.first_send_ns.get_or_insert(sent_ns);
                    let _ = write!(text, "m{sent}-{sent_ns}");
                    client::write_text(&mut sender.out, &text, run.rng.mask_key());
                    *sent += 1;
                }
                if let Err(e) = flush(sender) {
                    let port = sender.port;
                    sender.state = ClientState::Gone;
                    run.error(format!("sender {k} on port {port}: write: {e}"));
                }
            }
            if sent.iter().all(|&k| k == m) {
                send_done_ns = Some(run.now_ns());
            }
        }

        // 4. End?
        if send_done_ns.is_some() && run.clients_complete == run.opened {
            break End::Complete;
        }
        if let Some(done) = send_done_ns {
            let quiet_since = run.last_receipt_ns.max(done);
            if run.now_ns().saturating_sub(quiet_since) >= run.opts.idle.as_nanos() as u64 {
                break End::Idle;
            }
        }

        // Wait for readiness; wake up now and then for the timers above. While a
        // sender has more to send and room to send it, do not wait at all.
        let sender_ready = settled_at.is_some()
            && clients
                .iter()
                .zip(&sent)
                .any(|(c, &k)| k < m && c.out.is_empty());
        let wait = if sender_ready {
            Duration::ZERO
        } else {
            Duration::from_millis(50).min(run.opts.timeout.saturating_sub(elapsed))
        };
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for event in events.iter() {
            let Some(client) = clients.get_mut(event.token().0) else {
                continue;
            };
            if matches!(client.state, ClientState::Gone) {
                continue;
            }
            if let Err(e) = drive(client, &mut scratch, &mut run) {
                client.state = ClientState::Gone;
                let _ = poll.registry().deregister(&mut client.stream);
                run.error(e);
            }
        }
    };
    probe_end(&mut run);

    // Close politely, without waiting for the answers: one write attempt each.
    for client in &mut clients {
        if matches!(client.state, ClientState::Open) {
            let close = CloseFrame {
                code: CloseCode::NORMAL,
                reason: "",
            };
            client::write_close(&mut client.out, Some(close), run.rng.mask_key());
            let _ = flush(client);
        }
    }
    let wall_s = run.start.elapsed().as_secs_f64();
    let client_cpu_s = match (cpu_start, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    Ok(report(
        &run,
        &clients,
        end,
        settled,
        sent.iter().sum(),
        (connected_at, settled_at, send_done_ns),
        wall_s,
        client_cpu_s,
    ))
}

/// `a,b,c` for a `RESULT` value; `na` for a value not known.
fn joined<T: std::fmt::Display>(values: impl IntoIterator<Item = Option<T>>) -> String {
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            Some(value) => {
                let _ = write!(out, "{value}");
            }
            None => out.push_str("na"),
        }
    }
    out
}

/// The clients per URL: how many went to each, and how many connected.
fn print_clients_per_url(run: &Run, clients: &[Client]) -> (Vec<usize>, Vec<usize>) {
    let k = run.opts.targets.len();
    let mut went = vec![0usize; k];
    let mut opened = vec![0usize; k];
    for client in clients {
        if let Some(count) = went.get_mut(client.target) {
            *count += 1;
        }
        if let (true, Some(count)) = (client.opened, opened.get_mut(client.target)) {
            *count += 1;
        }
    }
    let width = run
        .opts
        .targets
        .iter()
        .map(|t| t.url.chars().count())
        .max()
        .unwrap_or(0)
        .max("server".len());
    println!("clients per server:");
    println!(
        "  {:<width$}  {:>7}  {:>9}",
        "server", "clients", "connected"
    );
    for ((target, went), opened) in run.opts.targets.iter().zip(&went).zip(&opened) {
        println!("  {:<width$}  {went:>7}  {opened:>9}", target.url);
    }
    (went, opened)
}

/// A CPU time for a learner: `93.1 ms`, `2.415 s`.
fn cpu_text(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.3} s")
    }
}

/// The servers' CPU and peak memory (`--pid`): a table, and the `RESULT` keys.
fn server_figures(run: &Run, end: End, deliveries: u64) -> String {
    let servers = &run.servers;
    if servers.is_empty() {
        return String::new();
    }
    let cpu_s: Vec<Option<f64>> = servers
        .iter()
        .map(|s| s.cpu.map(|c| c.as_secs_f64()))
        .collect();
    let rss_mib: Vec<Option<f64>> = servers
        .iter()
        .map(|s| s.peak_kib.map(|kib| kib as f64 / 1024.0))
        .collect();
    let cpu_sum: f64 = cpu_s.iter().flatten().sum();
    let rss_sum: f64 = rss_mib.iter().flatten().sum();
    let rss_max = rss_mib.iter().flatten().copied().fold(0.0, f64::max);
    let per_delivery_us = if deliveries > 0 {
        cpu_sum * 1e6 / deliveries as f64
    } else {
        0.0
    };
    let window = if end == End::Complete {
        "to the last receipt"
    } else {
        "to the end of the run"
    };
    println!("server processes: CPU from the first send {window}, peak memory (VmHWM):");
    let mut rows: Vec<[String; 3]> = vec![["pid".into(), "cpu".into(), "peak RSS".into()]];
    for ((server, cpu), rss) in servers.iter().zip(&cpu_s).zip(&rss_mib) {
        rows.push([
            server.pid.to_string(),
            cpu.map_or("?".into(), cpu_text),
            rss.map_or("?".into(), |r| format!("{r:.1} MiB")),
        ]);
    }
    if servers.len() > 1 {
        rows.push(["all".into(), cpu_text(cpu_sum), format!("{rss_sum:.1} MiB")]);
    }
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
    };
    let (w0, w1, w2) = (
        width(0).unwrap_or(0),
        width(1).unwrap_or(0),
        width(2).unwrap_or(0),
    );
    for [pid, cpu, rss] in &rows {
        println!("  {pid:<w0$}  {cpu:>w1$}  {rss:>w2$}");
    }
    println!(
        "server CPU per delivery: {per_delivery_us:.3} µs ({} over {deliveries} deliveries)",
        cpu_text(cpu_sum)
    );
    format!(
        " servers={} server_pids={} server_cpu_s={cpu_sum:.3} server_cpu_s_each={} \
         server_cpu_per_delivery_us={per_delivery_us:.4} server_peak_rss_mib={rss_sum:.1} \
         server_peak_rss_mib_max={rss_max:.1} server_peak_rss_mib_each={}",
        servers.len(),
        joined(servers.iter().map(|s| Some(s.pid))),
        joined(cpu_s.iter().map(|c| c.map(|c| format!("{c:.3}")))),
        joined(rss_mib.iter().map(|r| r.map(|r| format!("{r:.1}")))),
    )
}

#[allow(clippy::too_many_arguments)]
fn report(
    run: &Run,
    clients: &[Client],
    end: End,
    settled: bool,
    sent: u64,
    (connected_at, settled_at, send_done_ns): (Option<Instant>, Option<Instant>, Option<u64>),
    wall_s: f64,
    client_cpu_s: f64,
) -> Outcome {
    let n = run.opts.clients;
    let clients_ok = run.opened;
    let connect_s = connected_at.map_or(wall_s, |t| (t - run.start).as_secs_f64());
    let settle_s = match (connected_at, settled_at) {
        (Some(c), Some(s)) => (s - c).as_secs_f64(),
        _ => 0.0,
    };
    let notices_expected = (clients_ok * (clients_ok + 1) / 2) as u64;
    let expected = clients_ok as u64 * sent;
    let received: u64 = clients.iter().map(|c| c.tally.received).sum();
    let duplicates: u64 = clients.iter().map(|c| c.tally.duplicates).sum();
    let order_violations: u64 = clients.iter().map(|c| c.tally.order_violations).sum();
    let lost = expected.saturating_sub(received);
    let first = run.first_send_ns.unwrap_or_default();
    let send_s = send_done_ns.map_or(0.0, |d| d.saturating_sub(first) as f64 / 1e9);
    let delivery_s = run.last_receipt_ns.saturating_sub(first) as f64 / 1e9;
    let per_s = if delivery_s > 0.0 {
        received as f64 / delivery_s
    } else {
        0.0
    };
    let mut sorted = run.latencies_ns.clone();
    sorted.sort_unstable();
    let (p50, p99) = (percentile_ms(&sorted, 0.50), percentile_ms(&sorted, 0.99));
    let max = sorted.last().copied().unwrap_or_default() as f64 / 1e6;
    let mean = if sorted.is_empty() {
        0.0
    } else {
        sorted.iter().map(|&l| l as f64).sum::<f64>() / sorted.len() as f64 / 1e6
    };
    let complete = end == End::Complete && settled && lost == 0 && clients_ok == n;

    for e in &run.errors {
        eprintln!("error: {e}");
    }
    if run.failed > run.errors.len() {
        eprintln!("... and {} more errors", run.failed - run.errors.len());
    }
    println!("connected {clients_ok}/{n} in {connect_s:.3} s");
    let (went, opened) = print_clients_per_url(run, clients);
    println!(
        "join notices {}/{notices_expected}, {} in {settle_s:.3} s",
        run.notices,
        if settled { "settled" } else { "NOT settled" }
    );
    let each = match run.opts.senders {
        1 => String::new(),
        senders => format!(" ({} from each of {senders} senders)", run.opts.messages),
    };
    println!(
        "sent {sent}/{} messages{each} in {send_s:.3} s",
        run.to_send()
    );
    println!(
        "received {received}/{expected} deliveries ({lost} lost) in {delivery_s:.3} s: {per_s:.0} deliveries/s"
    );
    println!("latency ms: p50 {p50:.2}, p99 {p99:.2}, max {max:.2}, mean {mean:.2}");
    if duplicates > 0 || order_violations > 0 {
        println!("duplicates {duplicates}, order violations {order_violations}");
    }
    let servers = server_figures(run, end, received);
    println!(
        "RESULT clients={n} clients_ok={clients_ok} messages={} connect_s={connect_s:.3} \
         notices_expected={notices_expected} notices_received={} settled={settled} \
         settle_s={settle_s:.3} sent={sent} send_s={send_s:.3} expected={expected} \
         received={received} lost={lost} delivery_s={delivery_s:.4} deliveries_per_s={per_s:.0} \
         lat_p50_ms={p50:.3} lat_p99_ms={p99:.3} lat_max_ms={max:.3} lat_mean_ms={mean:.3} \
         order_violations={order_violations} duplicates={duplicates} \
         client_cpu_s={client_cpu_s:.3} wall_s={wall_s:.3} end={} complete={complete} \
         senders={} urls={} clients_per_url={} clients_ok_per_url={}{servers}",
        run.opts.messages,
        run.notices,
        end.name(),
        run.opts.senders,
        run.opts.targets.len(),
        joined(went.iter().map(Some)),
        joined(opened.iter().map(Some)),
    );
    Outcome {
        complete,
        received,
        expected,
        opened_per_url: opened,
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

    fn accepted(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Some(opts)) => opts,
            Ok(None) => panic!("{args:?} asked for help"),
            Err(e) => panic!("{args:?} refused: {e}"),
        }
    }

    #[test]
    fn unknown_flags_are_named_as_such() {
        assert_eq!(refused(&["--bogus"]), "unknown flag --bogus");
        assert_eq!(refused(&["--bogus", "1"]), "unknown flag --bogus");
        assert_eq!(refused(&["--bogus=1"]), "unknown flag --bogus");
        assert_eq!(refused(&["--clients"]), "--clients needs a value");
        assert_eq!(
            refused(&["--clients", "--messages", "5"]),
            "--clients needs a value"
        );
        assert_eq!(refused(&["--url", "--pid", "5"]), "--url needs a value");
        assert!(refused(&["100"]).starts_with("unexpected argument"));
        assert!(matches!(parse(&["--help"]), Ok(None)));
        assert!(matches!(parse(&["--clients", "3", "-h"]), Ok(None)));
    }

    #[test]
    fn values_that_make_no_sense_are_refused() {
        assert_eq!(
            refused(&["--clients", "0"]),
            "--clients 0: must be at least 1"
        );
        assert_eq!(
            refused(&["--messages=0"]),
            "--messages 0: must be at least 1"
        );
        assert_eq!(refused(&["--senders=0"]), "--senders 0: must be at least 1");
        assert_eq!(
            refused(&["--clients", "3", "--senders", "4"]),
            "--senders 4: more than the 3 clients"
        );
        assert!(refused(&["--clients", "20000", "--messages", "20000"]).contains("200 million"));
        assert!(
            refused(&[
                "--clients",
                "1000",
                "--messages",
                "1000",
                "--senders",
                "201"
            ])
            .contains("200 million")
        );
        assert_eq!(
            refused(&["--connect-concurrency", "0"]),
            "--connect-concurrency 0: must be at least 1"
        );
        for flag in ["--timeout", "--settle", "--idle"] {
            assert_eq!(
                refused(&[flag, "0"]),
                format!("{flag} 0: must be more than 0 seconds")
            );
            assert!(refused(&[flag, "-1"]).contains("not a number of seconds"));
        }
        assert!(refused(&["--clients", "-1"]).contains("not a count"));
        assert!(refused(&["--url", "http://127.0.0.1:1/"]).contains("must start with ws://"));
        // Every --url is checked, not only the first or the last.
        assert!(
            refused(&["--url", "ws://127.0.0.1:1/", "--url", "http://127.0.0.1:2/"])
                .contains("\"http://127.0.0.1:2/\" must start with ws://")
        );
        for pid in ["0", "-1", "abc", "4294967296", ""] {
            assert_eq!(
                refused(&["--pid", pid]),
                format!("--pid {pid:?}: not a process id")
            );
        }
    }

    #[test]
    fn defaults_and_given_values() {
        let opts = accepted(&[]);
        assert_eq!((opts.clients, opts.messages, opts.senders), (100, 2000, 1));
        assert_eq!(opts.targets.len(), 1);
        assert_eq!(opts.targets[0].addr, "127.0.0.1:8080".parse().unwrap());
        assert!(opts.pids.is_empty());
        let opts = accepted(&[
            "--url=ws://127.0.0.1:9/x",
            "--clients",
            "2",
            "--idle",
            "0.5",
        ]);
        assert_eq!(opts.targets.len(), 1);
        assert_eq!(opts.targets[0].addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(opts.targets[0].path, "/x");
        assert_eq!(opts.clients, 2);
        assert_eq!(opts.idle, Duration::from_millis(500));
        // No port: ws:// means 80, and 80 is what a server suffix is matched with.
        let opts = accepted(&["--url", "ws://127.0.0.1/"]);
        assert_eq!(opts.targets[0].port(), 80);
    }

    #[test]
    fn repeated_urls_are_kept_in_order_and_clients_go_round_robin() {
        let opts = accepted(&[
            "--url",
            "ws://127.0.0.1:8081/",
            "--url=ws://127.0.0.1:8082/chat",
            "--clients",
            "7",
            "--url",
            "ws://127.0.0.1:8083",
            "--senders",
            "3",
        ]);
        let urls: Vec<&str> = opts.targets.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "ws://127.0.0.1:8081/",
                "ws://127.0.0.1:8082/chat",
                "ws://127.0.0.1:8083"
            ]
        );
        let ports: Vec<u16> = opts.targets.iter().map(Target::port).collect();
        assert_eq!(ports, [8081, 8082, 8083]);
        assert_eq!(opts.targets[1].path, "/chat");
        assert_eq!(opts.targets[2].path, "/");
        let spread: Vec<usize> = (0..opts.clients).map(|i| opts.target_of(i)).collect();
        assert_eq!(spread, [0, 1, 2, 0, 1, 2, 0]);
        // The senders, the first S clients, land on different servers.
        assert_eq!(opts.senders, 3);
        // The same URL twice is two targets: the clients still alternate.
        let opts = accepted(&["--url", "ws://127.0.0.1:1/", "--url", "ws://127.0.0.1:1/"]);
        assert_eq!(opts.targets.len(), 2);
        assert_eq!((opts.target_of(0), opts.target_of(1)), (0, 1));
    }

    #[test]
    fn repeated_pids_are_kept_in_order() {
        let opts = accepted(&["--pid", "42", "--pid=7", "--clients", "1", "--pid", "42"]);
        assert_eq!(opts.pids, [42, 7, 42]);
    }

    #[test]
    fn a_pid_that_is_no_process_is_a_usage_error() {
        // Above any kernel's pid_max (2^22), so never a process.
        let missing = u32::MAX;
        let e = match check_pids(&[std::process::id(), missing]) {
            Err(e) => e,
            Ok(()) => panic!("pid {missing} taken for a process"),
        };
        assert!(
            e.starts_with(&format!("--pid {missing}: no such process?")),
            "{e}"
        );
        assert_eq!(check_pids(&[std::process::id()]), Ok(()));
        assert_eq!(check_pids(&[]), Ok(()));
    }

    #[test]
    fn names_with_and_without_the_server_suffix() {
        let lone = Name {
            port: 51234,
            server: None,
        };
        let shared = Name {
            port: 51234,
            server: Some(8081),
        };
        assert_eq!(
            parse_line("User51234 just connected."),
            Some(Line::Joined(lone))
        );
        assert_eq!(
            parse_line("User51234@8081 just connected."),
            Some(Line::Joined(shared))
        );
        assert_eq!(
            parse_line("User51234@8081 says: m17-123456789"),
            Some(Line::Message {
                from: shared,
                seq: 17,
                sent_ns: 123_456_789
            })
        );
        assert_eq!(
            parse_line("User51234 says: m0-5"),
            Some(Line::Message {
                from: lone,
                seq: 0,
                sent_ns: 5
            })
        );
        // Departures, other people's words and malformed names do not count.
        for text in [
            "User51234@8081 left.",
            "User51234 left.",
            "User51234@8081 says: hi",
            "User51234@ just connected.",
            "User@8081 just connected.",
            "User51234@8081@8082 just connected.",
            "User51234@80x1 just connected.",
            "User+51234 just connected.",
            "User51234@+8081 just connected.",
            "User70000 just connected.",
            "User51234@70000 says: m1-1",
            "User 51234 just connected.",
        ] {
            assert_eq!(parse_line(text), None, "{text:?}");
        }
    }

    #[test]
    fn own_name_is_the_local_port_on_the_server_of_the_url() {
        let lone = Name {
            port: 51234,
            server: None,
        };
        let shared = Name {
            port: 51234,
            server: Some(8081),
        };
        // A lone server names clients by port alone: any URL matches.
        assert!(lone.is(51234, 8081));
        assert!(lone.is(51234, 9999));
        assert!(!lone.is(51235, 8081));
        // Servers sharing a room: the same local port on another server is someone
        // else.
        assert!(shared.is(51234, 8081));
        assert!(!shared.is(51234, 8082));
        assert!(!shared.is(51235, 8081));
    }

    #[test]
    fn senders_are_told_apart_by_their_server() {
        let Ok(Some(opts)) = parse(&["--clients", "2", "--senders", "2", "--messages", "4"]) else {
            panic!()
        };
        let mut run = Run::new(opts, Vec::new());
        run.opened = 1;
        // Two senders with the same local port on the servers at 8081 and 8082.
        run.senders.insert(40000, vec![(8081, 0), (8082, 1)]);
        let mut tally = Tally::default();
        let me = (50000, 8081);
        on_text(
            &mut tally,
            me,
            "User50000@8081 just connected.",
            1,
            &mut run,
        );
        on_text(
            &mut tally,
            me,
            "User50000@8082 just connected.",
            1,
            &mut run,
        );
        assert!(tally.own_notice);
        assert_eq!(tally.notices, 2);
        for seq in 0..4 {
            on_text(
                &mut tally,
                me,
                &format!("User40000@8081 says: m{seq}-0"),
                9,
                &mut run,
            );
            on_text(
                &mut tally,
                me,
                &format!("User40000@8082 says: m{seq}-0"),
                9,
                &mut run,
            );
        }
        // Eight distinct messages, none taken for a duplicate of the other sender's.
        assert_eq!((tally.received, tally.duplicates), (8, 0));
        assert_eq!(tally.order_violations, 0);
        assert_eq!(run.clients_complete, 1);
        on_text(&mut tally, me, "User40000@8082 says: m2-0", 9, &mut run);
        assert_eq!(tally.duplicates, 1);
        // A third server's user with that port is not a sender of ours.
        on_text(&mut tally, me, "User40000@8083 says: m0-0", 9, &mut run);
        assert_eq!((tally.received, tally.duplicates), (8, 1));
        assert_eq!(run.latencies_ns.len(), 8);
    }

    #[test]
    fn two_urls_to_one_server_are_one_room() {
        use wirepatterns::patterns::chat::ChatPush;
        use wirepatterns::patterns::push::HubConfig;
        use wirepatterns::patterns::websocket::{WsConfig, WsServer};
        use wirepatterns::server::{Config, Server};

        let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        let chat = WsServer::new(WsConfig::default(), ChatPush::new(HubConfig::default()));
        let server = Server::bind(config, chat)
            .and_then(Server::spawn)
            .expect("chat server starts");
        let url = format!("ws://{}/", server.addr);
        let pid = std::process::id().to_string();
        let opts = accepted(&[
            "--url",
            &url,
            "--url",
            &url,
            "--clients",
            "6",
            "--senders",
            "2",
            "--messages",
            "25",
            "--pid",
            &pid,
            "--timeout",
            "10",
        ]);
        let outcome = run(opts);
        let _ = server.stop();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => panic!("run failed: {e}"),
        };
        assert_eq!(outcome.opened_per_url, [3, 3]);
        assert_eq!(outcome.expected, 6 * 2 * 25);
        assert_eq!(outcome.received, outcome.expected);
        assert!(outcome.complete);
    }
}
