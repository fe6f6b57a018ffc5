//! idle_conns: what an idle WebSocket connection costs the server in memory. It
//! opens N connections, lets them go quiet, and reads the server's resident memory
//! before and after.
//!
//! ```sh
//! ulimit -n 20000    # N sockets here, N in the server: raise the limit in both shells
//! cargo run --release --example ws_echo -- --addr 127.0.0.1:9001 &
//! cargo run --release --example idle_conns -- --url ws://127.0.0.1:9001/ --clients 10000 --pid $!
//! ```
//!
//! Flags: `--url ws://HOST:PORT/PATH` (default `ws://127.0.0.1:9001/`), `--clients N`
//! (10000), `--pid PID` (the server's process, to read its memory; without it only
//! the connections are opened), `--connect-concurrency C` (most handshakes in flight,
//! default 256), `--quiet SECS` (the connections count as idle once nothing has
//! arrived for this long, default 1), `--hold SECS` (stay connected this much longer
//! and read the memory again, default 0), `--timeout SECS` (for the whole run,
//! default 120), `--max-kib-per-conn K` (exit 3 if the cost per connection is over
//! K KiB), `--help`. `scripts/idle_memory.sh` runs it against `ws_echo` and
//! `chat_push`.
//!
//! # What it measures
//!
//! 1. **Before**: the server's `VmRSS` (resident memory) from `/proc/PID/status`,
//!    with no connection open.
//! 2. **Connect**: opens the N connections (the `wirepatterns::ws::client`
//!    handshake over non-blocking sockets, one `mio::Poll`), at most C handshakes at
//!    a time. Whatever the server sends is read and discarded (the chat's join
//!    notices: N(N+1)/2 of them for N clients), and pings are answered, so the
//!    connections stay alive and nothing waits in the server's queues.
//! 3. **Quiet**: waits until nothing has arrived for `--quiet` seconds, then reads
//!    `VmRSS` again (and `VmHWM`, the peak).
//! 4. Prints (after - before) / N as KiB per connection, and a `RESULT key=value`
//!    line.
//!
//! The figure is what the process holds: connection state, buffers, and the
//! allocator's own overhead and fragmentation. It does not count the kernel's socket
//! memory (receive and send buffers live in the kernel, not in the process).
//!
//! Exit code 0 on success, 3 when a connection failed, the run timed out, or the cost
//! is over `--max-kib-per-conn`; 2 on bad usage; 1 when nothing could connect.

use std::io::{self, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use wirepatterns::http::Status;
use wirepatterns::ws::Event;
use wirepatterns::ws::client::{self, ClientDecoder, ClientHandshake};

#[path = "support/mod.rs"]
mod support;
use support::Rng;

const USAGE: &str = "\
idle_conns: open N idle WebSocket connections and read the server's memory before and after

usage: idle_conns [--url ws://HOST:PORT/PATH] [--clients N] [--pid PID]
                  [--connect-concurrency C] [--quiet SECS] [--hold SECS]
                  [--timeout SECS] [--max-kib-per-conn K]

  --url URL                  the server's WebSocket (default ws://127.0.0.1:9001/)
  --clients N                connections to open (default 10000)
  --pid PID                  the server's process id, to read /proc/PID/status
  --connect-concurrency C    most handshakes in flight at once (default 256)
  --quiet SECS               idle once nothing arrived for this long (default 1)
  --hold SECS                then stay connected this long and measure again (default 0)
  --timeout SECS             end the whole run after this long (default 120)
  --max-kib-per-conn K       exit 3 if the server's memory per connection is over K KiB
  --help                     this text

N sockets need N open files here and in the server: run `ulimit -n 20000` first.
";

/// Bytes read per `read()` call, into one buffer shared by all connections.
const READ_CHUNK: usize = 64 * 1024;

/// What the command line asked for.
struct Options {
    /// The server's address, resolved from the URL.
    addr: SocketAddr,
    /// The URL's authority, for the `Host` header.
    host: String,
    /// The URL's path, for the request line.
    path: String,
    /// The URL as given, for printing.
    url: String,
    clients: usize,
    pid: Option<u32>,
    connect_concurrency: usize,
    quiet: Duration,
    hold: Duration,
    timeout: Duration,
    max_kib: Option<f64>,
}

fn parse_options() -> Result<Option<Options>, String> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut clients = 10_000usize;
    let mut pid = None;
    let mut connect_concurrency = 256usize;
    let (mut quiet, mut hold, mut timeout) = (1.0f64, 0.0f64, 120.0f64);
    let mut max_kib = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{flag} needs a value")),
        };
        let bad = |what: &str| format!("{flag}: {value:?} is not {what}");
        match flag.as_str() {
            "--url" => url = value,
            "--clients" => clients = value.parse().map_err(|_| bad("a count"))?,
            "--pid" => pid = Some(value.parse().map_err(|_| bad("a process id"))?),
            "--connect-concurrency" => {
                connect_concurrency = value.parse().map_err(|_| bad("a count"))?
            }
            "--quiet" => quiet = value.parse().map_err(|_| bad("seconds"))?,
            "--hold" => hold = value.parse().map_err(|_| bad("seconds"))?,
            "--timeout" => timeout = value.parse().map_err(|_| bad("seconds"))?,
            "--max-kib-per-conn" => {
                max_kib = Some(value.parse().map_err(|_| bad("a number of KiB"))?)
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if clients == 0 || connect_concurrency == 0 {
        return Err("--clients and --connect-concurrency must be at least 1".into());
    }
    let seconds = |s: f64, name: &str| {
        Duration::try_from_secs_f64(s).map_err(|_| format!("{name} must be a positive number"))
    };
    let (authority, path) = support::split_ws_url(&url)?;
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("--url {url:?}: cannot resolve {authority:?} (HOST:PORT): {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    Ok(Some(Options {
        addr,
        host: authority.to_string(),
        path: path.to_string(),
        url: url.clone(),
        clients,
        pid,
        connect_concurrency,
        quiet: seconds(quiet, "--quiet")?,
        hold: seconds(hold, "--hold")?,
        timeout: seconds(timeout, "--timeout")?,
        max_kib,
    }))
}

/// Where one idle client's connection is, from connect to gone.
enum ClientState {
    /// The TCP connect is in progress.
    Connecting(ClientHandshake),
    /// The upgrade request is sent; waiting for the 101.
    Handshaking(ClientHandshake),
    /// Upgraded: frames are read, counted and dropped; pings answered.
    Open,
    /// Closed or failed.
    Gone,
}

struct Conn {
    stream: TcpStream,
    state: ClientState,
    decoder: ClientDecoder,
    /// Received bytes not consumed yet: the response head, then a partial frame.
    pending: Vec<u8>,
    /// Bytes to send (the request, then pongs), from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
}

/// The server's memory, from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// Resident now.
    rss: u64,
    /// Resident and anonymous (heap, stacks): what connections add to.
    anon: u64,
    /// The peak of `rss` over the process's life.
    hwm: u64,
}

fn read_memory(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.get(name.len()..)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    match (field("VmRSS:"), field("RssAnon:"), field("VmHWM:")) {
        (Some(rss), Some(anon), Some(hwm)) => Ok(Memory { rss, anon, hwm }),
        _ => Err(io::Error::other(format!(
            "/proc/{pid}/status has no VmRSS, RssAnon or VmHWM"
        ))),
    }
}

/// Totals of the run.
#[derive(Default)]
struct Tally {
    /// Handshakes that succeeded.
    opened: usize,
    /// Connections that failed or were closed, with the first few reasons.
    failed: usize,
    errors: Vec<String>,
    /// Text messages received (the chat's notices), and bytes read in all.
    texts: u64,
    bytes_in: u64,
    pings: u64,
    /// When the last handshake completed or the last message (not a ping) arrived:
    /// the connections are idle once this is `--quiet` ago. Pings do not count:
    /// with thousands of connections, some are always being pinged.
    last_activity: Option<Instant>,
    /// When the last text or binary message arrived, from the start of the run.
    last_message: Option<Instant>,
}

impl Tally {
    fn fail(&mut self, conn: &mut Conn, what: String) {
        if !matches!(conn.state, ClientState::Gone) {
            conn.state = ClientState::Gone;
            self.failed += 1;
            if self.errors.len() < 5 {
                self.errors.push(what);
            }
        }
    }
}

/// Writes what is queued; `Err` if the connection is broken.
fn flush(conn: &mut Conn) -> io::Result<()> {
    support::write_queued(&mut conn.stream, &mut conn.out, &mut conn.out_pos)
}

/// Decodes and drops frames; answers pings. Returns the bytes used.
fn decode(conn: &mut Conn, data: &[u8], rng: &mut Rng, tally: &mut Tally) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        let decoded = conn
            .decoder
            .decode(data.get(pos..).unwrap_or_default())
            .map_err(|e| format!("frame from the server: {e}"))?;
        pos += decoded.consumed;
        match decoded.event {
            None => return Ok(pos),
            Some(Event::Text(_)) => {
                tally.texts += 1;
                let now = Instant::now();
                tally.last_activity = Some(now);
                tally.last_message = Some(now);
            }
            Some(Event::Ping(payload)) => {
                tally.pings += 1;
                client::write_pong(&mut conn.out, payload, rng.mask_key());
            }
            Some(Event::Close(close)) => {
                return Err(format!(
                    "the server closed the connection ({:?})",
                    close.map(|c| c.code.0)
                ));
            }
            Some(_) => {}
        }
    }
}

/// Reads until `WouldBlock`; handles the handshake response and frames.
fn on_readable(
    conn: &mut Conn,
    buf: &mut [u8],
    rng: &mut Rng,
    tally: &mut Tally,
) -> Result<(), String> {
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Err("the server closed the connection".into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        let data = buf.get(..n).unwrap_or_default();
        tally.bytes_in += n as u64;
        conn.pending.extend_from_slice(data);
        if let ClientState::Handshaking(handshake) = &mut conn.state {
            match handshake.read_response(&conn.pending) {
                Ok(Status::Partial) => continue,
                Ok(Status::Complete(head_len)) => {
                    conn.pending.drain(..head_len);
                    conn.state = ClientState::Open;
                    tally.opened += 1;
                    tally.last_activity = Some(Instant::now());
                }
                Err(e) => return Err(format!("handshake: {e}")),
            }
        }
        let pending = std::mem::take(&mut conn.pending);
        let used = decode(conn, &pending, rng, tally)?;
        conn.pending = pending;
        conn.pending.drain(..used);
    }
}

fn main() -> ExitCode {
    let opts = match parse_options() {
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
    match run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(opts: &Options) -> io::Result<ExitCode> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let before = opts.pid.map(read_memory).transpose()?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(opts.clients);
    let mut rng = Rng::seeded();
    let mut tally = Tally::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut in_flight = 0usize;
    let mut timed_out = false;
    // Set when a connect fails (out of descriptors, most likely): open no more.
    let mut stop_opening = false;

    // Connect, then wait for quiet.
    let mut all_done_at: Option<Instant> = None;
    loop {
        while !stop_opening && in_flight < opts.connect_concurrency && conns.len() < opts.clients {
            let mut stream = match TcpStream::connect(opts.addr) {
                Ok(stream) => stream,
                Err(e) => {
                    let what = format!("connect to {}: {e}", opts.addr);
                    if conns.is_empty() {
                        return Err(io::Error::new(e.kind(), what));
                    }
                    tally.failed += opts.clients - conns.len();
                    tally.errors.push(format!(
                        "{what} (after {} connections; `ulimit -n`?)",
                        conns.len()
                    ));
                    stop_opening = true;
                    break;
                }
            };
            let token = Token(conns.len());
            poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(Conn {
                stream,
                state: ClientState::Connecting(ClientHandshake::new(rng.nonce())),
                decoder: ClientDecoder::default(),
                pending: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
            });
            in_flight += 1;
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        if (stop_opening || conns.len() == opts.clients) && in_flight == 0 {
            let done_at = *all_done_at.get_or_insert(now);
            let last = tally.last_activity.unwrap_or(done_at).max(done_at);
            if now.duration_since(last) >= opts.quiet {
                break;
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            let was_in_flight = matches!(
                conn.state,
                ClientState::Connecting(_) | ClientState::Handshaking(_)
            );
            if let ClientState::Connecting(_) = conn.state
                && event.is_writable()
            {
                // Connected, or failed: `peer_addr` tells which.
                match conn.stream.take_error() {
                    Ok(None) if conn.stream.peer_addr().is_ok() => {
                        if let ClientState::Connecting(handshake) =
                            std::mem::replace(&mut conn.state, ClientState::Gone)
                        {
                            if let Err(e) =
                                handshake.write_request(&opts.host, &opts.path, &mut conn.out)
                            {
                                return Err(io::Error::other(format!("--url {}: {e}", opts.url)));
                            }
                            conn.state = ClientState::Handshaking(handshake);
                        }
                    }
                    Ok(None) => continue, // not connected yet
                    Ok(Some(e)) | Err(e) => tally.fail(conn, format!("connect: {e}")),
                }
            }
            if !matches!(conn.state, ClientState::Gone | ClientState::Connecting(_))
                && (event.is_readable() || event.is_read_closed() || event.is_error())
                && let Err(e) = on_readable(conn, &mut buf, &mut rng, &mut tally)
            {
                tally.fail(conn, e);
            }
            if !matches!(conn.state, ClientState::Gone | ClientState::Connecting(_))
                && let Err(e) = flush(conn)
            {
                tally.fail(conn, format!("write: {e}"));
            }
            let still = matches!(
                conn.state,
                ClientState::Connecting(_) | ClientState::Handshaking(_)
            );
            if was_in_flight && !still {
                in_flight -= 1;
            }
        }
    }
    let secs = |at: Option<Instant>| at.map_or(0.0, |t| t.duration_since(start).as_secs_f64());
    // Handshakes done; last message received; memory read (now).
    let connect_s = secs(all_done_at);
    let last_message_s = secs(tally.last_message);
    let measured_s = start.elapsed().as_secs_f64();
    let after = opts.pid.map(read_memory).transpose()?;

    // Hold, answering pings, and measure again.
    let hold_end = Instant::now() + opts.hold;
    while !opts.hold.is_zero() && Instant::now() < hold_end {
        poll.poll(&mut events, Some(Duration::from_millis(200)))?;
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if matches!(conn.state, ClientState::Open) {
                if let Err(e) = on_readable(conn, &mut buf, &mut rng, &mut tally) {
                    tally.fail(conn, e);
                } else if let Err(e) = flush(conn) {
                    tally.fail(conn, format!("write: {e}"));
                }
            }
        }
    }
    let held = if opts.hold.is_zero() {
        None
    } else {
        opts.pid.map(read_memory).transpose()?
    };
    let open = conns
        .iter()
        .filter(|c| matches!(c.state, ClientState::Open))
        .count();

    println!(
        "{} connections to {} opened in {connect_s:.2} s ({} failed); received {} text messages \
         (the last at {last_message_s:.2} s), {} bytes, {} pings; memory read at {measured_s:.2} s",
        tally.opened, opts.url, tally.failed, tally.texts, tally.bytes_in, tally.pings
    );
    for e in &tally.errors {
        println!("  error: {e}");
    }
    let mut over = false;
    let mut result = format!(
        "RESULT clients={} opened={} open={open} failed={} connect_s={connect_s:.2} \
         last_message_s={last_message_s:.2} measured_s={measured_s:.2} texts={} bytes_in={} pings={}",
        opts.clients, tally.opened, tally.failed, tally.texts, tally.bytes_in, tally.pings
    );
    if let (Some(before), Some(after)) = (before, after) {
        let per_conn = |m: &Memory| (m.rss as f64 - before.rss as f64) / tally.opened.max(1) as f64;
        let kib = per_conn(&after);
        println!(
            "server VmRSS: {} KiB before, {} KiB with {} idle connections (RssAnon {} -> {} KiB, VmHWM {} KiB)",
            before.rss, after.rss, tally.opened, before.anon, after.anon, after.hwm
        );
        println!("server memory per idle connection: {kib:.2} KiB");
        result += &format!(
            " rss_before_kb={} rss_after_kb={} anon_before_kb={} anon_after_kb={} hwm_kb={} kib_per_conn={kib:.2}",
            before.rss, after.rss, before.anon, after.anon, after.hwm
        );
        if let Some(held) = held {
            let kib_held = per_conn(&held);
            println!(
                "after holding {:.0} s more: VmRSS {} KiB, {kib_held:.2} KiB per connection",
                opts.hold.as_secs_f64(),
                held.rss
            );
            result += &format!(" rss_held_kb={} kib_per_conn_held={kib_held:.2}", held.rss);
            over |= opts.max_kib.is_some_and(|max| kib_held > max);
        }
        over |= opts.max_kib.is_some_and(|max| kib > max);
        if let Some(max) = opts.max_kib {
            println!(
                "goal: at most {max} KiB per connection: {}",
                if over { "MISSED" } else { "met" }
            );
        }
    }
    result += &format!(" timed_out={timed_out}");
    println!("{result}");
    if tally.opened == 0 {
        return Ok(ExitCode::from(1));
    }
    let complete = tally.opened == opts.clients && open == opts.clients && !timed_out;
    Ok(if complete && !over {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
