//! chat_load: a load client for the push chat. It opens N WebSocket connections,
//! has one of them send M messages back to back, and checks that every client got
//! every broadcast, timing each one.
//!
//! ```sh
//! cargo run --release --example chat_push -- --addr 127.0.0.1:8080 &    # or any chat server
//! cargo run --release --example chat_load -- --url ws://127.0.0.1:8080/ --clients 100 --messages 2000
//! ```
//!
//! Flags: `--url ws://HOST:PORT/PATH` (default `ws://127.0.0.1:8080/`), `--clients N`
//! (100), `--messages M` (2000), `--timeout SECS` (20, for the whole run),
//! `--settle SECS` (10), `--idle SECS` (2), `--connect-concurrency C` (64), `--help`.
//!
//! Each client is a socket; past about 1000 clients raise the open-file limit first
//! (in the shell that starts the client, and in the server's): `ulimit -n 20000`.
//!
//! # What it does
//!
//! The chat protocol (the notes' node server, and `chat_push`): when a client
//! connects, every connected client, the new one included, gets
//! `User<port> just connected.`; when a client sends a text `<t>`, every connected
//! client, the sender included, gets `User<port> says: <t>`. `<port>` is the
//! sender's TCP port as the server sees it, which is our local port.
//!
//! 1. **Connect**: opens the N connections, at most C handshakes at a time. The
//!    handshake and the frames are `wirepatterns::ws::client`; each client is a
//!    non-blocking socket, and one thread drives them all with one `mio::Poll`.
//! 2. **Settle**: waits until every client has its own join notice and, in all,
//!    N(N+1)/2 have arrived (each client hears of itself and of every later joiner),
//!    at most `--settle` seconds.
//! 3. **Send**: the first client sends M messages `m<seq>-<send_ns>` back to back
//!    (as fast as its socket takes them; `<send_ns>` is read from this process's
//!    monotonic clock just before the frame is written).
//! 4. **Receive**: every client counts the `says: ` broadcasts carrying our
//!    messages, and records latency = receipt - send time, one clock for both.
//!    Receipt time is when the read that brought the frame returned, so it includes
//!    this process's own queueing.
//! 5. **End**: when every client has all M (`end=complete`); or when everything was
//!    sent and nothing arrived for `--idle` seconds (`end=idle`: loss); or at
//!    `--timeout` (`end=timeout`). Then each client sends a close frame and the
//!    sockets are dropped.
//!
//! It prints deliveries/s (deliveries over the time from the first send to the last
//! receipt), latency p50/p99/max, and a `RESULT key=value ...` line with the same
//! key names as the `wsload chat` tool's. Exit code 0 when every client got every
//! message, 3 when not (loss, timeout, not settled), 2 on bad usage, 1 when nothing
//! could connect.

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

usage: chat_load [--url ws://HOST:PORT/PATH] [--clients N] [--messages M]
                 [--timeout SECS] [--settle SECS] [--idle SECS]
                 [--connect-concurrency C]

  --url URL                  the chat's WebSocket (default ws://127.0.0.1:8080/)
  --clients N                connections to open (default 100)
  --messages M               messages the first client sends (default 2000)
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

/// How many messages the sender encodes before it lets the loop read again.
const SEND_BATCH: usize = 64;

/// What the command line asked for.
struct Options {
    /// The server's address, resolved from the URL.
    addr: SocketAddr,
    /// The URL's authority, for the `Host` header.
    host: String,
    /// The URL's path and query, for the request line.
    path: String,
    /// The URL as given, for printing.
    url: String,
    clients: usize,
    messages: u64,
    timeout: Duration,
    settle: Duration,
    idle: Duration,
    connect_concurrency: usize,
}

/// The flags `chat_load` takes (each with a value), besides `--help`.
const FLAGS: [&str; 7] = [
    "--url",
    "--clients",
    "--messages",
    "--timeout",
    "--settle",
    "--idle",
    "--connect-concurrency",
];

/// The options from the command line (without the program name); `Ok(None)` for
/// `--help`. Counts must be at least 1 and durations more than 0.
fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut url = "ws://127.0.0.1:8080/".to_string();
    let (mut clients, mut messages) = (100usize, 2000u64);
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
            "--url" => url = value,
            "--clients" => clients = support::count(&flag, &value)?,
            "--messages" => messages = support::count(&flag, &value)? as u64,
            "--timeout" => timeout = support::secs(&flag, &value, false)?,
            "--settle" => settle = support::secs(&flag, &value, false)?,
            "--idle" => idle = support::secs(&flag, &value, false)?,
            "--connect-concurrency" => connect_concurrency = support::count(&flag, &value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if clients as u64 * messages > 200_000_000 {
        return Err("clients x messages over 200 million: too many latencies to keep".into());
    }
    let (authority, path) = support::split_ws_url(&url)?;
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
    Ok(Some(Options {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        url: url.clone(),
        clients,
        messages,
        timeout,
        settle,
        idle,
        connect_concurrency,
    }))
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
    /// It got `User<own port> just connected.`
    own_notice: bool,
    /// Join notices received, its own included.
    notices: u64,
    /// Distinct messages of ours received.
    received: u64,
    /// Messages of ours received twice.
    duplicates: u64,
    /// Messages that came after one with a higher sequence number.
    order_violations: u64,
    /// The highest sequence number seen so far.
    last_seq: Option<u64>,
    /// One bit per sequence number: received already.
    seen: Vec<u64>,
}

struct Client {
    stream: TcpStream,
    state: ClientState,
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

/// What the whole run shares: the sender's port, the latencies, the clock.
struct Run {
    opts: Options,
    start: Instant,
    rng: Rng,
    sender_port: Option<u16>,
    latencies_ns: Vec<u64>,
    notices: u64,
    clients_complete: usize,
    first_send_ns: Option<u64>,
    last_receipt_ns: u64,
    errors: Vec<String>,
    failed: usize,
    /// Clients whose handshake succeeded.
    opened: usize,
}

impl Run {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn error(&mut self, what: String) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(what);
        }
    }
}

/// A chat line that counts: a join notice or one of our messages.
enum Line {
    Joined(u16),
    Message { port: u16, seq: u64, sent_ns: u64 },
}

fn parse_line(text: &str) -> Option<Line> {
    let rest = text.strip_prefix("User")?;
    if let Some(port) = rest.strip_suffix(" just connected.") {
        return port.parse().ok().map(Line::Joined);
    }
    let (port, message) = rest.split_once(" says: ")?;
    let (seq, sent_ns) = message.strip_prefix('m')?.split_once('-')?;
    Some(Line::Message {
        port: port.parse().ok()?,
        seq: seq.parse().ok()?,
        sent_ns: sent_ns.parse().ok()?,
    })
}

/// Count one text message received by a client at `now_ns`.
fn on_text(tally: &mut Tally, own_port: u16, text: &str, now_ns: u64, run: &mut Run) {
    match parse_line(text) {
        Some(Line::Joined(port)) => {
            tally.notices += 1;
            run.notices += 1;
            tally.own_notice |= port == own_port;
        }
        Some(Line::Message { port, seq, sent_ns }) if Some(port) == run.sender_port => {
            if seq >= run.opts.messages {
                return;
            }
            let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
            if tally.seen.is_empty() {
                tally.seen = vec![0; run.opts.messages.div_ceil(64) as usize];
            }
            let Some(slot) = tally.seen.get_mut(word) else {
                return;
            };
            if *slot & bit != 0 {
                tally.duplicates += 1;
                return;
            }
            *slot |= bit;
            if tally.last_seq.is_some_and(|last| seq < last) {
                tally.order_violations += 1;
            }
            tally.last_seq = Some(tally.last_seq.map_or(seq, |last| last.max(seq)));
            tally.received += 1;
            run.latencies_ns.push(now_ns.saturating_sub(sent_ns));
            run.last_receipt_ns = now_ns;
            if tally.received == run.opts.messages {
                run.clients_complete += 1;
            }
        }
        _ => {}
    }
}

/// Decode the frames in `data` for one client; returns how many bytes were used.
fn decode_frames(
    client: &mut Client,
    data: &[u8],
    now_ns: u64,
    run: &mut Run,
) -> Result<usize, String> {
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
            Some(Event::Text(text)) => on_text(&mut client.tally, client.port, text, now_ns, run),
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
            Err(e) => return Err(format!("handshake with {}: {e}", run.opts.url)),
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
    if let ClientState::Connecting(_) = client.state {
        if let Ok(Some(e)) | Err(e) = client.stream.take_error() {
            return Err(format!("connect to {}: {e}", run.opts.addr));
        }
        match client.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()), // not yet
            Err(e) => return Err(format!("connect to {}: {e}", run.opts.addr)),
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
            .write_request(&run.opts.host, &run.opts.path, &mut client.out)
            .map_err(|e| format!("--url {}: {e}", run.opts.url))?;
        client.state = ClientState::Handshaking(handshake);
    }
    flush(client).map_err(|e| format!("write to {}: {e}", run.opts.addr))?;
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
            Err(e) => return Err(format!("read from {}: {e}", run.opts.addr)),
        }
    }
    // Replies (pongs) written while reading.
    flush(client).map_err(|e| format!("write to {}: {e}", run.opts.addr))
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
    match run(opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(opts: Options) -> Result<ExitCode, String> {
    let n = opts.clients;
    let m = opts.messages;
    println!(
        "chat_load: {n} clients on {}, 1 sender, {m} messages ({} deliveries expected)",
        opts.url,
        n as u64 * m
    );
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let cpu_start = cpu_seconds();
    let mut run = Run {
        opts,
        start: Instant::now(),
        rng: Rng::seeded(),
        sender_port: None,
        latencies_ns: Vec::new(),
        notices: 0,
        clients_complete: 0,
        first_send_ns: None,
        last_receipt_ns: 0,
        errors: Vec::new(),
        failed: 0,
        opened: 0,
    };

    let mut connected_at: Option<Instant> = None;
    let mut settled_at: Option<Instant> = None;
    let mut settled = false;
    let mut sent: u64 = 0;
    let mut send_done_ns: Option<u64> = None;
    let mut text = String::new();
    let end = loop {
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
            let mut stream = match TcpStream::connect(run.opts.addr) {
                Ok(stream) => stream,
                // EMFILE (24): the per-process limit on open files.
                Err(e) if e.raw_os_error() == Some(24) => {
                    return Err(format!(
                        "cannot open socket {} of {n}: {e}. Raise the limit on open files \
                         in this shell (and the server's) with `ulimit -n 20000`",
                        clients.len() + 1
                    ));
                }
                Err(e) => return Err(format!("cannot connect to {}: {e}", run.opts.addr)),
            };
            let token = Token(clients.len());
            poll.registry()
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| format!("cannot register a socket: {e}"))?;
            let handshake = ClientHandshake::new(run.rng.nonce());
            clients.push(Client {
                stream,
                state: ClientState::Connecting(handshake),
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

        // 3. Send: the first client, a batch at a time while its socket keeps up.
        if settled_at.is_some() && sent < m {
            let sender = clients
                .first_mut()
                .filter(|c| matches!(c.state, ClientState::Open));
            match sender {
                None => {
                    run.error("the sender's connection is gone: nothing more can be sent".into());
                    break End::Idle;
                }
                Some(sender) => {
                    run.sender_port = Some(sender.port);
                    if sender.out.is_empty() {
                        for _ in 0..SEND_BATCH {
                            if sent == m {
                                break;
                            }
                            text.clear();
                            let sent_ns = run.start.elapsed().as_nanos() as u64;
                            run.first_send_ns.get_or_insert(sent_ns);
                            let _ = write!(text, "m{sent}-{sent_ns}");
                            client::write_text(&mut sender.out, &text, run.rng.mask_key());
                            sent += 1;
                        }
                        if let Err(e) = flush(sender) {
                            let port = sender.port;
                            sender.state = ClientState::Gone;
                            run.error(format!("sender on port {port}: write: {e}"));
                        }
                        if sent == m {
                            send_done_ns = Some(run.now_ns());
                        }
                    }
                }
            }
        }

        // 4. End?
        if sent == m && run.clients_complete == run.opened {
            break End::Complete;
        }
        if let Some(done) = send_done_ns {
            let quiet_since = run.last_receipt_ns.max(done);
            if run.now_ns().saturating_sub(quiet_since) >= run.opts.idle.as_nanos() as u64 {
                break End::Idle;
            }
        }

        // Wait for readiness; wake up now and then for the timers above. While the
        // sender has more to send and room to send it, do not wait at all.
        let sender_ready =
            settled_at.is_some() && sent < m && clients.first().is_some_and(|c| c.out.is_empty());
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
    report(
        &run,
        &clients,
        end,
        settled,
        sent,
        (connected_at, settled_at, send_done_ns),
        wall_s,
        client_cpu_s,
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
) -> Result<ExitCode, String> {
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
    println!(
        "join notices {}/{notices_expected}, {} in {settle_s:.3} s",
        run.notices,
        if settled { "settled" } else { "NOT settled" }
    );
    println!(
        "sent {sent}/{} messages in {send_s:.3} s",
        run.opts.messages
    );
    println!(
        "received {received}/{expected} deliveries ({lost} lost) in {delivery_s:.3} s: {per_s:.0} deliveries/s"
    );
    println!("latency ms: p50 {p50:.2}, p99 {p99:.2}, max {max:.2}, mean {mean:.2}");
    if duplicates > 0 || order_violations > 0 {
        println!("duplicates {duplicates}, order violations {order_violations}");
    }
    println!(
        "RESULT clients={n} clients_ok={clients_ok} messages={} connect_s={connect_s:.3} \
         notices_expected={notices_expected} notices_received={} settled={settled} \
         settle_s={settle_s:.3} sent={sent} send_s={send_s:.3} expected={expected} \
         received={received} lost={lost} delivery_s={delivery_s:.4} deliveries_per_s={per_s:.0} \
         lat_p50_ms={p50:.3} lat_p99_ms={p99:.3} lat_max_ms={max:.3} lat_mean_ms={mean:.3} \
         order_violations={order_violations} duplicates={duplicates} \
         client_cpu_s={client_cpu_s:.3} wall_s={wall_s:.3} end={} complete={complete}",
        run.opts.messages,
        run.notices,
        end.name()
    );
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
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
    fn unknown_flags_are_named_as_such() {
        assert_eq!(refused(&["--bogus"]), "unknown flag --bogus");
        assert_eq!(refused(&["--bogus", "1"]), "unknown flag --bogus");
        assert_eq!(refused(&["--bogus=1"]), "unknown flag --bogus");
        assert_eq!(refused(&["--clients"]), "--clients needs a value");
        assert_eq!(
            refused(&["--clients", "--messages", "5"]),
            "--clients needs a value"
        );
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
    }

    #[test]
    fn defaults_and_given_values() {
        let Ok(Some(opts)) = parse(&[]) else { panic!() };
        assert_eq!((opts.clients, opts.messages), (100, 2000));
        assert_eq!(opts.addr, "127.0.0.1:8080".parse().unwrap());
        let Ok(Some(opts)) = parse(&[
            "--url=ws://127.0.0.1:9/x",
            "--clients",
            "2",
            "--idle",
            "0.5",
        ]) else {
            panic!()
        };
        assert_eq!(opts.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(opts.path, "/x");
        assert_eq!(opts.clients, 2);
        assert_eq!(opts.idle, Duration::from_millis(500));
    }
}
