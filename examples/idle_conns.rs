//! idle_conns: what an idle WebSocket connection costs the server in memory. It
//! opens N connections, lets them go quiet, and reads the server's resident memory
//! before and after.
//!
//! ```sh
//! ulimit -n 20000    # N sockets here, N in the server: raise the limit in both shells
//! cargo run --release --example ws_echo -- --addr 127.0.0.1:9001 &
//! cargo run --release --example idle_conns -- --url ws://127.0.0.1:9001/ --clients 10000
//! ```
//!
//! Flags: `--url ws://HOST:PORT/PATH` (default `ws://127.0.0.1:9001/`), `--clients N`
//! (10000), `--pid PID` (the server's process, whose memory is read; by default the
//! process listening on the URL's port on this machine, see below),
//! `--connect-concurrency C` (most handshakes in flight, default 100: below the
//! listen backlog of 128 that mio's `TcpListener::bind` asks for, so no SYN is
//! dropped and retried a second later, which would distort the timings),
//! `--quiet SECS` (the connections count as idle once nothing has
//! arrived for this long, default 1), `--hold SECS` (stay connected this much longer
//! and read the memory again, default 0), `--timeout SECS` (for the whole run,
//! default 120), `--max-kib-per-conn K` (exit 3 if the cost per connection is over
//! K KiB), `--read yes|no` (`no`: after the handshake a client never reads again,
//! see below; default yes), `--help`. `scripts/idle_memory.sh` runs it against `ws_echo` and
//! `chat_push`.
//!
//! # Which server
//!
//! Measuring the server's memory is the point, so without `--pid` idle_conns finds
//! the server itself, as `ss -ltnp` does: the socket listening on the URL's port
//! (`/proc/net/tcp`, `/proc/net/tcp6`) and the process holding it (`/proc/*/fd`).
//! That works for a server on this machine run by the same user. When no such
//! process can be found (the server is on another machine, run by another user, or
//! this is not Linux), idle_conns still opens the connections but says at the
//! start and in the summary that the memory was NOT measured, and how to get it
//! (`--pid`); `RESULT` then has `measured=false`. `--max-kib-per-conn` needs the
//! memory, so with it an unknown server is an error.
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
//! With `--read no` the clients read nothing after the 101 (nor answer pings):
//! what the server pushes piles up in the kernel's socket buffers until they are
//! full, then waits on the server's side. The server is idle, then, once its CPU
//! time (`/proc/PID/stat`) has not moved for `--quiet` seconds; measure before
//! its ping timeout closes the silent connections.
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
use support::{ClientArg, Memory, Rng, read_memory};

const USAGE: &str = "\
idle_conns: open N idle WebSocket connections and read the server's memory before and after

usage: idle_conns [--url ws://HOST:PORT/PATH] [--clients N] [--pid PID]
                  [--connect-concurrency C] [--quiet SECS] [--hold SECS]
                  [--timeout SECS] [--max-kib-per-conn K] [--read yes|no]

  --url URL                  the server's WebSocket (default ws://127.0.0.1:9001/)
  --clients N                connections to open (default 10000)
  --pid PID                  the server's process id, to read /proc/PID/status
                             (default: the process listening on the URL's port here)
  --connect-concurrency C    most handshakes in flight at once (default 100)
  --quiet SECS               idle once nothing arrived for this long (default 1)
  --hold SECS                then stay connected this long and measure again (default 0)
  --timeout SECS             end the whole run after this long (default 120)
  --max-kib-per-conn K       exit 3 if the server's memory per connection is over K KiB
  --read yes|no              no: never read after the handshake (default yes)
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
    /// Whether clients read after the handshake.
    read: bool,
}

/// The flags `idle_conns` takes (each with a value), besides `--help`.
const FLAGS: [&str; 9] = [
    "--url",
    "--clients",
    "--pid",
    "--connect-concurrency",
    "--quiet",
    "--hold",
    "--timeout",
    "--max-kib-per-conn",
    "--read",
];

/// Handshakes in flight at once by default: below the listen backlog of a server
/// bound with mio's `TcpListener::bind` (128, the standard library's value), so
/// that connections that are not accepted yet wait in the backlog rather than
/// having their SYNs dropped and retried a second later, which would show up as
/// slow connects.
const DEFAULT_CONNECT_CONCURRENCY: usize = 100;

/// The options from the command line (without the program name); `Ok(None)` for
/// `--help`. Counts must be at least 1; `--quiet` and `--timeout` more than 0.
fn parse_options(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut url = "ws://127.0.0.1:9001/".to_string();
    let mut clients = 10_000usize;
    let mut pid = None;
    let mut connect_concurrency = DEFAULT_CONNECT_CONCURRENCY;
    let mut quiet = Duration::from_secs(1);
    let mut hold = Duration::ZERO;
    let mut timeout = Duration::from_secs(120);
    let mut max_kib = None;
    let mut read = true;
    let mut args = args.into_iter();
    while let Some(arg) = support::next_client_arg(&mut args, &FLAGS)? {
        let ClientArg::Flag(flag, value) = arg else {
            return Ok(None);
        };
        match flag.as_str() {
            "--url" => url = value,
            "--clients" => clients = support::count(&flag, &value)?,
            "--pid" => match value.parse::<u32>() {
                Ok(p) if p > 0 => pid = Some(p),
                _ => return Err(format!("{flag} {value:?}: not a process id")),
            },
            "--connect-concurrency" => connect_concurrency = support::count(&flag, &value)?,
            "--quiet" => quiet = support::secs(&flag, &value, false)?,
            "--hold" => hold = support::secs(&flag, &value, true)?,
            "--timeout" => timeout = support::secs(&flag, &value, false)?,
            "--max-kib-per-conn" => match value.parse::<f64>() {
                Ok(k) if k.is_finite() && k > 0.0 => max_kib = Some(k),
                _ => return Err(format!("{flag} {value:?}: not a number of KiB above 0")),
            },
            "--read" => match value.as_str() {
                "yes" => read = true,
                "no" => read = false,
                _ => return Err(format!("{flag} {value:?}: yes or no")),
            },
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
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
        quiet,
        hold,
        timeout,
        max_kib,
        read,
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
    /// Upgraded, and never read again (`--read no`).
    Silent,
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

/// The process that listens on `addr`'s port on this machine, found as `ss -ltnp`
/// finds it: the listening socket's inode in `/proc/net/tcp` and `/proc/net/tcp6`,
/// then the process with a file descriptor on that socket in `/proc/*/fd`. `Err`
/// says why none was found.
fn find_server(addr: SocketAddr) -> Result<u32, String> {
    let port = addr.port();
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(&"0A"), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue; // not a listening socket (state 0A is LISTEN)
            };
            let Some((ip, p)) = local.split_once(':') else {
                continue;
            };
            let same_ip = proc_net_ip(ip).is_some_and(|ip| ip == addr.ip() || ip.is_unspecified());
            if same_ip && u16::from_str_radix(p, 16) == Ok(port) && *inode != "0" {
                sockets.push(format!("socket:[{inode}]"));
            }
        }
    }
    if sockets.is_empty() {
        return Err(format!(
            "no socket listens on {addr} on this machine (is the server elsewhere?)"
        ));
    }
    let mut pids = Vec::new();
    let procs = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // another user's process
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
        });
        if holds {
            pids.push(pid);
        }
    }
    match pids.as_slice() {
        [pid] => Ok(*pid),
        [] => Err(format!(
            "a socket listens on {addr}, but no process of this user holds it (another user's?)"
        )),
        _ => Err(format!(
            "several processes hold the socket listening on {addr}: {pids:?}"
        )),
    }
}

/// An address as `/proc/net/tcp` and `tcp6` print it: the address's bytes read as
/// native-endian 32-bit words, each printed in hex (`0100007F` is 127.0.0.1 on a
/// little-endian machine).
fn proc_net_ip(hex: &str) -> Option<std::net::IpAddr> {
    let mut bytes = Vec::with_capacity(16);
    for i in (0..hex.len()).step_by(8) {
        let word = u32::from_str_radix(hex.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(|b| {
            let v6 = std::net::Ipv6Addr::from(b);
            v6.to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4)
        }),
        _ => None,
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

/// Reads until `WouldBlock`; handles the handshake response and frames. With
/// `read` false, stops for good once the handshake is done.
fn on_readable(
    conn: &mut Conn,
    buf: &mut [u8],
    rng: &mut Rng,
    tally: &mut Tally,
    read: bool,
) -> Result<(), String> {
    loop {
        if matches!(conn.state, ClientState::Silent) {
            return Ok(());
        }
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
                    conn.state = if read {
                        ClientState::Open
                    } else {
                        ClientState::Silent
                    };
                    tally.opened += 1;
                    tally.last_activity = Some(Instant::now());
                    if !read {
                        conn.pending.clear();
                        return Ok(());
                    }
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

/// The server's CPU time so far, in clock ticks (user + system, from
/// `/proc/PID/stat`); `None` if it cannot be read.
fn server_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count
    // fields after its closing one. utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
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
    match run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(opts: &Options) -> io::Result<ExitCode> {
    // Whose memory to read: --pid, or the process listening on the URL's port.
    let (pid, not_measured) = match opts.pid {
        Some(pid) => {
            println!("server: process {pid} (--pid)");
            (Some(pid), None)
        }
        None => match find_server(opts.addr) {
            Ok(pid) => {
                println!(
                    "server: process {pid}, found listening on {} (--pid PID to choose another)",
                    opts.addr
                );
                (Some(pid), None)
            }
            Err(why) => {
                if opts.max_kib.is_some() {
                    return Err(io::Error::other(format!(
                        "--max-kib-per-conn needs the server's memory, and {why}: pass --pid PID"
                    )));
                }
                let note = format!(
                    "the server's memory is NOT measured: {why}. Run the server on this \
                     machine as this user, or pass --pid PID of the server process."
                );
                println!("WARNING: {note}");
                (None, Some(note))
            }
        },
    };
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let before = pid.map(read_memory).transpose().map_err(io::Error::other)?;
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
    // The server's CPU ticks, and when they last changed (`--read no`).
    let mut server_cpu = (None, Instant::now());
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
        if !opts.read
            && let Some(pid) = pid
        {
            // Nothing is read: the server is idle once its CPU time stops.
            let cpu = server_cpu_ticks(pid);
            if cpu != server_cpu.0 {
                server_cpu = (cpu, now);
                tally.last_activity = Some(now);
            }
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
                && let Err(e) = on_readable(conn, &mut buf, &mut rng, &mut tally, opts.read)
            {
                tally.fail(conn, e);
            }
            if matches!(conn.state, ClientState::Silent) && was_in_flight {
                // No more events from it: the server's pushes pile up unread.
                poll.registry().deregister(&mut conn.stream)?;
            }
            if !matches!(
                conn.state,
                ClientState::Gone | ClientState::Connecting(_) | ClientState::Silent
            ) && let Err(e) = flush(conn)
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
    let after = pid.map(read_memory).transpose().map_err(io::Error::other)?;

    // Hold, answering pings, and measure again.
    let hold_end = Instant::now() + opts.hold;
    while !opts.hold.is_zero() && Instant::now() < hold_end {
        poll.poll(&mut events, Some(Duration::from_millis(200)))?;
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if matches!(conn.state, ClientState::Open) {
                if let Err(e) = on_readable(conn, &mut buf, &mut rng, &mut tally, true) {
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
        pid.map(read_memory).transpose().map_err(io::Error::other)?
    };
    let open = conns
        .iter()
        .filter(|c| matches!(c.state, ClientState::Open | ClientState::Silent))
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
        "RESULT read={} clients={} opened={} open={open} failed={} connect_s={connect_s:.2} \
         last_message_s={last_message_s:.2} measured_s={measured_s:.2} texts={} bytes_in={} pings={}",
        if opts.read { "yes" } else { "no" },
        opts.clients,
        tally.opened,
        tally.failed,
        tally.texts,
        tally.bytes_in,
        tally.pings
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
    if let Some(note) = &not_measured {
        println!("WARNING: {note}");
    }
    result += &format!(" measured={} timed_out={timed_out}", not_measured.is_none());
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
        assert_eq!(refused(&["--pid"]), "--pid needs a value");
        assert!(matches!(parse(&["--help"]), Ok(None)));
        assert_eq!(refused(&["--read", "maybe"]), "--read \"maybe\": yes or no");
    }

    #[test]
    fn values_that_make_no_sense_are_refused() {
        assert_eq!(
            refused(&["--clients", "0"]),
            "--clients 0: must be at least 1"
        );
        assert_eq!(
            refused(&["--connect-concurrency", "0"]),
            "--connect-concurrency 0: must be at least 1"
        );
        assert_eq!(
            refused(&["--quiet", "0"]),
            "--quiet 0: must be more than 0 seconds"
        );
        assert_eq!(
            refused(&["--timeout", "0"]),
            "--timeout 0: must be more than 0 seconds"
        );
        assert!(refused(&["--pid", "0"]).contains("not a process id"));
        assert!(refused(&["--max-kib-per-conn", "-1"]).contains("above 0"));
        assert!(refused(&["--max-kib-per-conn", "NaN"]).contains("above 0"));
        let Ok(Some(opts)) = parse(&["--hold", "0"]) else {
            panic!()
        };
        assert!(opts.hold.is_zero());
    }

    #[test]
    fn default_connect_concurrency_is_below_the_listen_backlog() {
        let Ok(Some(opts)) = parse(&[]) else { panic!() };
        assert_eq!(opts.connect_concurrency, DEFAULT_CONNECT_CONCURRENCY);
        assert!(opts.connect_concurrency < 128);
    }

    #[test]
    fn proc_net_addresses() {
        let v4 = 0x7F00_0001u32.to_be_bytes();
        let hex = format!("{:08X}", u32::from_ne_bytes(v4));
        assert_eq!(proc_net_ip(&hex), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(proc_net_ip("00000000"), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(proc_net_ip(&"0".repeat(32)), Some("::".parse().unwrap()));
        assert_eq!(proc_net_ip("xyz"), None);
    }

    #[test]
    fn finds_the_process_listening_on_a_port() {
        if !std::path::Path::new("/proc/net/tcp").exists() {
            return; // not Linux: find_server has nothing to read
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(find_server(addr), Ok(std::process::id()));
        drop(listener);
        assert!(find_server(addr).unwrap_err().contains("no socket listens"));
    }
}
