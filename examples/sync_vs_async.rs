//! Synchronous vs asynchronous, measured: slow clients against three servers of the
//! same request/response handler.
//!
//! ```sh
//! cargo run --release --example sync_vs_async -- [--slow-clients 200] [--fast-requests 1000] [--pool 16]
//! ```
//!
//! The notes: *"Once call is made, this gets block."* A blocking server gives every
//! connection a thread that sleeps in `read()` until that client's next bytes. This
//! example runs three servers of `wirepatterns::patterns::request_response`, one
//! after the other, each in a child process of its own (this same program, started
//! with `--serve`), so that its threads, memory and CPU time are its own:
//!
//! | server | what serves a connection |
//! |---|---|
//! | `threads` | a new thread for every connection (`server::blocking`, `Model::ThreadPerConnection`) |
//! | `pool` | one of a fixed pool of `--pool N` threads; other connections wait in the kernel's accept queue (`Model::Pool`) |
//! | `loop` | the one thread of the mio event loop (`server::Server`) |
//!
//! Against each, at once:
//!
//! - `--slow-clients` (200) connections each send one request one byte at a time,
//!   spread over `--slow-secs` (5 s), then read the answer (`Connection: close`).
//!   Each holds its connection, and on a blocking server its thread, all that time.
//! - `--fast-requests` (1000) requests, each on a new connection, are due at a
//!   steady rate over the first 80% of that window and made by `--fast-clients`
//!   (8) threads. Each must be answered within `--timeout` (1 s) of when it was
//!   *due*: a request a client thread could not even send in time counts as timed
//!   out, and latency is counted from when it was due, not from when it was sent
//!   (otherwise a client stuck behind a stalled server would hide the stall:
//!   coordinated omission).
//!
//! Read from `/proc/PID/status` and `/proc/PID/stat` of the server's process:
//! threads (the most seen, sampled every 20 ms), peak resident memory (`VmHWM`)
//! and the CPU time it spent during the run (user + system, in 10 ms ticks).
//!
//! What it shows: a pool with fewer threads than slow clients stalls (its threads
//! all sleep in `read()` on slow clients; fast requests wait in the accept queue
//! and time out, or are answered late); a thread per connection answers them, at
//! the price of a thread and its memory per connection; the loop answers them with
//! one thread.
//!
//! Output: an aligned table, and in `--out DIR` (default `target/sync_vs_async`)
//! `sync_vs_async.csv` and `sync_vs_async.svg`. Loopback only; every wait is
//! bounded; the default run takes about half a minute.
//!
//! `--serve loop|threads|pool [--addr 127.0.0.1:0] [--pool N]` is the child's
//! role: serve, print `listening on http://ADDR`, and stop when standard input
//! ends.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use wirepatterns::chart::{BarChart, Series, stack};
use wirepatterns::cli::{Args, Spec};
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::blocking::{BlockingServer, Model};
use wirepatterns::server::{Config, Server};
use wirepatterns::trace::Dur;

#[path = "support/mod.rs"]
mod support;

/// The servers, in the order they run.
const SERVERS: [Kind; 3] = [Kind::Threads, Kind::Pool, Kind::Loop];

/// How long a child may take to say where it listens, and to exit once told.
const CHILD_BOUND: Duration = Duration::from_secs(10);

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: u64 = 100;

fn spec() -> Spec {
    Spec::new(
        "sync_vs_async",
        "Runs a thread-per-connection server, a fixed pool of threads and the event \
         loop, each in a child process, against slow clients and fast requests at \
         once; prints what each served and what it cost (threads, memory, CPU).",
        "127.0.0.1:0",
    )
    .option(
        "--slow-clients",
        "N",
        "connections that trickle one request byte by byte (default 200)",
    )
    .option(
        "--fast-requests",
        "N",
        "requests made meanwhile, each on a new connection (default 1000)",
    )
    .option("--pool", "N", "threads in the fixed pool (default 16)")
    .option(
        "--fast-clients",
        "N",
        "threads making the fast requests (default 8)",
    )
    .option(
        "--slow-secs",
        "SECS",
        "how long each slow client takes to send its request (default 5)",
    )
    .option(
        "--timeout",
        "SECS",
        "a fast request not answered this long after it was due is not served (default 1)",
    )
    .option(
        "--out",
        "DIR",
        "where to write sync_vs_async.csv and .svg (default target/sync_vs_async)",
    )
    .option(
        "--serve",
        "loop|threads|pool",
        "the child's role: serve on --addr until standard input ends",
    )
}

/// The three servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Threads,
    Pool,
    Loop,
}

impl Kind {
    fn flag(self) -> &'static str {
        match self {
            Kind::Threads => "threads",
            Kind::Pool => "pool",
            Kind::Loop => "loop",
        }
    }

    fn from_flag(value: &str) -> Option<Kind> {
        SERVERS.into_iter().find(|k| k.flag() == value)
    }

    fn name(self, pool: usize) -> String {
        match self {
            Kind::Threads => "thread per connection".into(),
            Kind::Pool => format!("pool of {pool} threads"),
            Kind::Loop => "event loop (mio)".into(),
        }
    }
}

/// The run's settings.
#[derive(Debug, Clone)]
struct Settings {
    slow_clients: usize,
    fast_requests: usize,
    pool: usize,
    fast_clients: usize,
    slow_window: Duration,
    timeout: Duration,
    out: PathBuf,
}

fn main() -> ExitCode {
    let spec = spec();
    let (args, settings) = match support::parse_settings(&spec, settings) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    if let Some(role) = args.value("--serve") {
        let Some(kind) = Kind::from_flag(role) else {
            return support::usage_error(
                &spec,
                &format!("--serve {role:?}: one of loop, threads, pool"),
            );
        };
        return serve_child(kind, args.addr, settings.pool);
    }
    support::exit_code(run(&settings))
}

fn settings(args: &Args) -> Result<Settings, String> {
    let count = |flag: &'static str, default: usize| -> Result<usize, String> {
        Ok(args
            .at_least(flag, 1usize)
            .map_err(|e| e.to_string())?
            .unwrap_or(default))
    };
    let secs = |flag: &'static str, default: f64| -> Result<Duration, String> {
        let d = args
            .seconds(flag)
            .map_err(|e| e.to_string())?
            .unwrap_or(Duration::from_secs_f64(default));
        if d.is_zero() {
            return Err(format!("{flag} 0: must be more than 0 seconds"));
        }
        Ok(d)
    };
    Ok(Settings {
        slow_clients: count("--slow-clients", 200)?,
        fast_requests: count("--fast-requests", 1000)?,
        pool: count("--pool", 16)?,
        fast_clients: count("--fast-clients", 8)?,
        slow_window: secs("--slow-secs", 5.0)?,
        timeout: secs("--timeout", 1.0)?,
        out: args
            .value("--out")
            .map_or_else(|| PathBuf::from("target/sync_vs_async"), PathBuf::from),
    })
}

// ----- the child: one server -----

/// Serves request/response as `kind` on `addr` until standard input ends.
fn serve_child(kind: Kind, addr: SocketAddr, pool: usize) -> ExitCode {
    let config = Config::new(addr);
    let stop: Box<dyn FnOnce() -> Result<(), String>>;
    let listening = match kind {
        Kind::Loop => match Server::bind(config, RequestResponse::new()).and_then(Server::spawn) {
            Ok(running) => {
                let addr = running.addr;
                stop = Box::new(move || running.stop().map(drop).map_err(|e| e.to_string()));
                addr
            }
            Err(e) => {
                eprintln!("error: {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        Kind::Threads | Kind::Pool => {
            let model = if kind == Kind::Pool {
                Model::Pool { threads: pool }
            } else {
                Model::ThreadPerConnection
            };
            match BlockingServer::spawn(config, model, RequestResponse::new) {
                Ok(server) => {
                    let addr = server.addr();
                    stop = Box::new(move || {
                        server.stop();
                        Ok(())
                    });
                    addr
                }
                Err(e) => {
                    eprintln!("error: {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    println!("listening on http://{listening}");
    let _ = io::stdout().flush();
    // Standard input ends when the parent is done with this server (or gone).
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
    match stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: stopping: {e}");
            ExitCode::FAILURE
        }
    }
}

// ----- the parent: the clients and the measurements -----

/// What one server did and cost.
#[derive(Debug, Clone)]
struct Outcome {
    name: String,
    fast_served: usize,
    fast_timed_out: usize,
    /// Latencies of the fast requests served, from when each was due, sorted.
    latencies: Vec<Duration>,
    slow_served: usize,
    threads_before: u64,
    threads_peak: u64,
    rss_before_kib: u64,
    hwm_kib: u64,
    cpu: Duration,
}

impl Outcome {
    /// The `p`th percentile of the served requests' latency (nearest rank).
    fn percentile(&self, p: usize) -> Option<Duration> {
        let n = self.latencies.len();
        if n == 0 {
            return None;
        }
        let rank = (p * n).div_ceil(100).clamp(1, n);
        self.latencies.get(rank - 1).copied()
    }
}

fn run(settings: &Settings) -> Result<(), String> {
    let request_len = SLOW_REQUEST.len();
    let byte_every = settings.slow_window / request_len as u32;
    println!(
        "{} slow clients, each sending a {request_len}-byte request one byte every {} (for {}),",
        settings.slow_clients,
        Dur(byte_every),
        Dur(settings.slow_window),
    );
    println!(
        "while {} fast requests are due over {} from {} client threads, each to be answered \
         within {} of when it was due",
        settings.fast_requests,
        Dur(fast_window(settings)),
        settings.fast_clients,
        Dur(settings.timeout),
    );
    let mut outcomes = Vec::new();
    for kind in SERVERS {
        let name = kind.name(settings.pool);
        println!("{name}: running...");
        let outcome = measure(kind, &name, settings)?;
        outcomes.push(outcome);
    }
    println!();
    print!("{}", table(&outcomes, settings));
    std::fs::create_dir_all(&settings.out)
        .map_err(|e| format!("{}: {e}", settings.out.display()))?;
    let csv_path = settings.out.join("sync_vs_async.csv");
    write_file(&csv_path, &csv(&outcomes, settings))?;
    let svg_path = settings.out.join("sync_vs_async.svg");
    write_file(&svg_path, &svg(&outcomes, settings))?;
    println!("\nwrote {} and {}", csv_path.display(), svg_path.display());
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The fast requests are due over the first 80% of the slow clients' window, so
/// that every one of them is made while the slow clients hold their connections.
fn fast_window(settings: &Settings) -> Duration {
    settings.slow_window.mul_f64(0.8)
}

/// A server in its own process, and what is needed to stop it.
struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ChildServer {
    fn start(kind: Kind, pool: usize) -> Result<ChildServer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut child = Command::new(exe)
            .args(["--serve", kind.flag(), "--addr", "127.0.0.1:0"])
            .args(["--pool", &pool.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {} server: {e}", kind.flag()))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err("no standard output from the child".into());
        };
        // The ready line, read on a thread so that the wait is bounded.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(CHILD_BOUND).unwrap_or_default();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(ChildServer { child, stdin, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the {} server did not say where it listens (got {line:?})",
                    kind.flag()
                ))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends its standard input (it stops gracefully) and waits for it, killing
    /// it if it takes longer than [`CHILD_BOUND`].
    fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CHILD_BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the clients against one server and reads what it cost.
fn measure(kind: Kind, name: &str, settings: &Settings) -> Result<Outcome, String> {
    let server = ChildServer::start(kind, settings.pool)?;
    let pid = server.pid();
    let before = read_proc(pid)?;
    let sampler = Sampler::start(pid);

    let slow = SlowClients::start(server.addr, settings);
    // The fast requests start once the slow clients are connected (or had a
    // second to try: a stalled pool's accept queue may not take them all).
    slow.wait_connected(Duration::from_secs(1));
    let fast = fast_requests(server.addr, settings);
    let slow_served = slow.finish();

    let threads_peak = sampler.stop();
    let after = read_proc(pid)?;
    server.stop();

    let mut latencies = fast.latencies;
    latencies.sort_unstable();
    Ok(Outcome {
        name: name.to_string(),
        fast_served: latencies.len(),
        fast_timed_out: fast.timed_out,
        latencies,
        slow_served,
        threads_before: before.threads,
        threads_peak: threads_peak.max(after.threads),
        rss_before_kib: before.rss_kib,
        hwm_kib: after.hwm_kib,
        cpu: after.cpu.saturating_sub(before.cpu),
    })
}

/// What each slow client sends, one byte at a time.
const SLOW_REQUEST: &[u8] = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// The slow clients, each on a thread of its own.
struct SlowClients {
    threads: Vec<thread::JoinHandle<bool>>,
    connected: Arc<AtomicUsize>,
    count: usize,
}

impl SlowClients {
    fn start(addr: SocketAddr, settings: &Settings) -> SlowClients {
        let connected = Arc::new(AtomicUsize::new(0));
        let window = settings.slow_window;
        let threads = (0..settings.slow_clients)
            .filter_map(|_| {
                let connected = Arc::clone(&connected);
                thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || slow_client(addr, SLOW_REQUEST, window, &connected))
                    .ok()
            })
            .collect();
        SlowClients {
            threads,
            connected,
            count: settings.slow_clients,
        }
    }

    /// Waits until every slow client is connected, or `bound` passed.
    fn wait_connected(&self, bound: Duration) {
        let deadline = Instant::now() + bound;
        while self.connected.load(Ordering::Relaxed) < self.count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for every slow client; returns how many were answered.
    fn finish(self) -> usize {
        self.threads
            .into_iter()
            .map(|t| t.join())
            .filter(|served| matches!(served, Ok(true)))
            .count()
    }
}

/// Connects, sends `request` one byte at a time over `window`, and reads the
/// answer; `true` if it was a 200. Every step is bounded: the whole client
/// takes at most about twice the window.
fn slow_client(
    addr: SocketAddr,
    request: &[u8],
    window: Duration,
    connected: &AtomicUsize,
) -> bool {
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, window) else {
        return false;
    };
    connected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let step = window / request.len().max(1) as u32;
    for (i, byte) in request.iter().enumerate() {
        if stream.write_all(std::slice::from_ref(byte)).is_err() {
            return false;
        }
        // Paced against the start, so that the client's own delays do not add up.
        let next = started + step * (i as u32 + 1);
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let deadline = started + window * 2;
    answered_ok(&mut stream, deadline)
}

/// Reads until the server closes (every request here says `Connection: close`),
/// or `deadline`; `true` if the answer was a complete 200.
fn answered_ok(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut answer = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
        if answer.len() > 1 << 20 {
            return false;
        }
    }
    answer.starts_with(b"HTTP/1.1 200 OK\r\n") && complete(&answer)
}

/// Whether a response holds its whole `Content-Length` body.
fn complete(answer: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(head)) = response.parse(answer) else {
        return false;
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok());
    length == Some(answer.len() - head)
}

/// What the fast clients saw.
struct Fast {
    latencies: Vec<Duration>,
    timed_out: usize,
}

/// Makes the fast requests: request `i` is due at `start + i * window / n`, made
/// by client thread `i % fast_clients`, on a new connection, and must be answered
/// by its due time plus the timeout.
fn fast_requests(addr: SocketAddr, settings: &Settings) -> Fast {
    let n = settings.fast_requests;
    let clients = settings.fast_clients.min(n);
    let spacing = fast_window(settings).div_f64(n as f64);
    let timeout = settings.timeout;
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            thread::spawn(move || {
                let mut fast = Fast {
                    latencies: Vec::new(),
                    timed_out: 0,
                };
                for i in (c..n).step_by(clients) {
                    let due = start + spacing.mul_f64(i as f64);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                    match fast_request(addr, due + timeout) {
                        true => fast.latencies.push(due.elapsed()),
                        false => fast.timed_out += 1,
                    }
                }
                fast
            })
        })
        .collect();
    let mut all = Fast {
        latencies: Vec::with_capacity(n),
        timed_out: 0,
    };
    for thread in threads {
        match thread.join() {
            Ok(fast) => {
                all.latencies.extend(fast.latencies);
                all.timed_out += fast.timed_out;
            }
            Err(_) => all.timed_out += n.div_ceil(clients),
        }
    }
    all
}

/// One fast request on a new connection; `true` if answered by `deadline`.
fn fast_request(addr: SocketAddr, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return false;
    }
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, left) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(left));
    if stream
        .write_all(b"GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    answered_ok(&mut stream, deadline)
}

// ----- reading the server's process -----

/// What `/proc` says about a process.
#[derive(Debug, Clone, Copy)]
struct Proc {
    threads: u64,
    rss_kib: u64,
    hwm_kib: u64,
    cpu: Duration,
}

/// Reads threads and memory from `/proc/PID/status` and CPU time from
/// `/proc/PID/stat`.
fn read_proc(pid: u32) -> Result<Proc, String> {
    let memory = support::read_memory(pid)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status has no Threads"))?;
    Ok(Proc {
        threads,
        rss_kib: memory.rss,
        hwm_kib: memory.hwm,
        cpu: cpu_time(pid)?,
    })
}

/// User plus system CPU time of a process (its threads, living and ended), from
/// fields 14 and 15 of `/proc/PID/stat`, counted in ticks of 1/100 s.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count
    // fields after its closing parenthesis, where field 3 is the first.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_whitespace().skip(11);
    let mut tick = || fields.next().and_then(|f| f.parse::<u64>().ok());
    match (tick(), tick()) {
        (Some(user), Some(system)) => Ok(Duration::from_millis(
            (user + system) * 1000 / TICKS_PER_SEC,
        )),
        _ => Err(format!("/proc/{pid}/stat has no utime and stime")),
    }
}

/// Samples a process's thread count on a thread of its own, keeping the most.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<u64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut peak = 0;
            // Bounded: at most ten minutes of samples.
            for _ in 0..30_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(proc) = read_proc(pid) {
                    peak = peak.max(proc.threads);
                }
                thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

// ----- output -----

/// `12.3 MiB`, `812 KiB`.
fn kib(kib: u64) -> String {
    if kib >= 10 * 1024 {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    } else {
        format!("{kib} KiB")
    }
}

fn opt_dur(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| Dur(d).to_string())
}

fn table(outcomes: &[Outcome], settings: &Settings) -> String {
    let header = [
        "server",
        "fast served",
        "timed out",
        "p50",
        "p99",
        "slow served",
        "threads",
        "peak RSS",
        "server CPU",
    ];
    let rows: Vec<[String; 9]> = outcomes
        .iter()
        .map(|o| {
            [
                o.name.clone(),
                format!("{}/{}", o.fast_served, settings.fast_requests),
                o.fast_timed_out.to_string(),
                opt_dur(o.percentile(50)),
                opt_dur(o.percentile(99)),
                format!("{}/{}", o.slow_served, settings.slow_clients),
                format!("{} ({} before)", o.threads_peak, o.threads_before),
                kib(o.hwm_kib),
                Dur(o.cpu).to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    let _ = write!(
        out,
        "\nfast served: answered within {} of when due; p50, p99: their latency, from when due\n\
         slow served: slow clients answered (one that could not connect within {} is not)\n\
         threads: the most seen in the server's process (and before the clients came; the \
         child's main thread, waiting for the end of its input, is one)\n\
         peak RSS: VmHWM; server CPU: user + system during the run, in 10 ms ticks\n",
        Dur(settings.timeout),
        Dur(settings.slow_window),
    );
    out
}

fn csv(outcomes: &[Outcome], settings: &Settings) -> String {
    let mut out = String::from(
        "server,fast_requests,fast_served,fast_timed_out,p50_us,p99_us,slow_clients,slow_served,\
         threads_idle,threads_peak,rss_idle_kib,peak_rss_kib,server_cpu_ms\n",
    );
    let us = |d: Option<Duration>| d.map_or_else(String::new, |d| d.as_micros().to_string());
    for o in outcomes {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            o.name,
            settings.fast_requests,
            o.fast_served,
            o.fast_timed_out,
            us(o.percentile(50)),
            us(o.percentile(99)),
            settings.slow_clients,
            o.slow_served,
            o.threads_before,
            o.threads_peak,
            o.rss_before_kib,
            o.hwm_kib,
            o.cpu.as_millis(),
        );
    }
    out
}

fn svg(outcomes: &[Outcome], settings: &Settings) -> String {
    let categories: Vec<String> = outcomes.iter().map(|o| o.name.clone()).collect();
    let chart = |title: &str, unit: &str, values: Vec<f64>, log_scale: bool| BarChart {
        title: title.to_string(),
        unit: unit.to_string(),
        categories: categories.clone(),
        series: vec![Series::new(unit, values)],
        log_scale,
    };
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let charts = [
        chart(
            &format!("fast requests served of {}", settings.fast_requests),
            "requests",
            outcomes.iter().map(|o| o.fast_served as f64).collect(),
            false,
        ),
        chart(
            "p99 latency of the fast requests served",
            "ms",
            outcomes.iter().map(|o| ms(o.percentile(99))).collect(),
            true,
        ),
        chart(
            "threads (most seen)",
            "threads",
            outcomes.iter().map(|o| o.threads_peak as f64).collect(),
            false,
        ),
        chart(
            "peak resident memory (VmHWM)",
            "MiB",
            outcomes.iter().map(|o| o.hwm_kib as f64 / 1024.0).collect(),
            false,
        ),
        chart(
            "server CPU during the run",
            "ms",
            outcomes
                .iter()
                .map(|o| o.cpu.as_secs_f64() * 1000.0)
                .collect(),
            false,
        ),
    ];
    stack(
        &format!(
            "{} slow clients, {} fast requests",
            settings.slow_clients, settings.fast_requests
        ),
        &charts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(latencies_ms: &[u64]) -> Outcome {
        Outcome {
            name: "x".into(),
            fast_served: latencies_ms.len(),
            fast_timed_out: 0,
            latencies: latencies_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            slow_served: 0,
            threads_before: 1,
            threads_peak: 1,
            rss_before_kib: 1,
            hwm_kib: 1,
            cpu: Duration::ZERO,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let o = outcome(&(1..=100).collect::<Vec<_>>());
        assert_eq!(o.percentile(50), Some(Duration::from_millis(50)));
        assert_eq!(o.percentile(99), Some(Duration::from_millis(99)));
        assert_eq!(outcome(&[7]).percentile(99), Some(Duration::from_millis(7)));
        assert_eq!(outcome(&[]).percentile(50), None);
    }

    #[test]
    fn a_response_is_complete_only_with_its_whole_body() {
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Len"));
    }

    #[test]
    fn this_process_cpu_time_and_threads_are_read_from_proc() {
        let me = read_proc(std::process::id()).unwrap();
        assert!(me.threads >= 1);
        assert!(me.rss_kib > 0 && me.hwm_kib >= me.rss_kib, "{me:?}");
    }

    #[test]
    fn table_columns_line_up() {
        let settings = Settings {
            slow_clients: 2,
            fast_requests: 3,
            pool: 1,
            fast_clients: 1,
            slow_window: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            out: PathBuf::new(),
        };
        let mut long = outcome(&[1, 2, 3]);
        long.name = "a much longer server name".into();
        let text = table(&[outcome(&[1]), long], &settings);
        let lines: Vec<&str> = text.lines().take(3).collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
        assert!(
            lines[1].contains("1/3") && lines[2].contains("3/3"),
            "{text}"
        );
    }

    #[test]
    fn the_role_and_counts_are_checked() {
        assert_eq!(Kind::from_flag("pool"), Some(Kind::Pool));
        assert_eq!(Kind::from_flag("fibers"), None);
        let parse = |args: &[&str]| match spec().parse(args.iter().map(|a| a.to_string())) {
            Ok(wirepatterns::cli::Parsed::Run(args)) => settings(&args),
            _ => Err("did not parse".into()),
        };
        assert_eq!(parse(&[]).unwrap().pool, 16);
        assert!(parse(&["--pool", "0"]).is_err());
        assert!(parse(&["--slow-secs", "0"]).is_err());
    }
}
