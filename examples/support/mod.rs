//! Code shared by the examples.
//!
//! # Servers: `request_response`, `chat_push`, `ws_echo`
//!
//! - [`parse_args`]: the command line, against the example's [`Spec`]; `--help`
//!   prints the usage and exits 0, a bad command line prints the error and the
//!   usage and exits 2 ([`usage_error`] does the same for a value the example
//!   checks itself).
//! - [`serve`]: binds, prints the ready line `listening on http://ADDR` (tests
//!   and scripts wait for it; with `--addr 127.0.0.1:0` it shows the port picked),
//!   runs the server until Ctrl-C, then prints the server's totals. On Ctrl-C the
//!   server stops accepting, lets queued responses finish within
//!   `Config::shutdown_grace` and sends WebSocket clients a 1001 close
//!   (`ServerHandle::shutdown`); a second Ctrl-C quits at once. A port already in
//!   use, or any other failure, is printed on stderr and exits 1.
//!
//! # Clients that report: `poll_client`, `compare_patterns`, `sync_vs_async`
//!
//! - [`parse_settings`]: [`parse_args`], then the example's own reading of the
//!   flags into its settings; a value it refuses exits 2 with the usage.
//! - [`finish`] and [`exit_code`]: the end of the run: the report on stdout and
//!   exit 0, or `error: ...` on stderr and exit 1.
//!
//! # Load clients: `chat_load`, `idle_conns` and `poll_load`
//!
//! They open many client connections over non-blocking sockets (the first two
//! with [`wirepatterns::ws::client`], `poll_load` as plain HTTP), and share their
//! command-line reading ([`next_client_arg`], [`count`], [`secs`]) and these small
//! pieces:
//!
//! - [`split_ws_url`]: the `--url ws://HOST:PORT/PATH` flag split into the
//!   authority (for the `Host` header and for resolving) and the path (for the
//!   request line). Resolving the authority stays in each example, since they
//!   differ: `chat_load` defaults the port to 80, `idle_conns` requires one.
//! - [`Rng`]: a fast generator for handshake nonces and masking keys.
//! - [`write_queued`]: writes a connection's queued bytes until done or the socket
//!   is full.
//! - [`read_memory`] and [`cpu_time`]: a server process's memory and CPU time,
//!   from `/proc`, for the clients given its `--pid`.
//!
//! This folder has no `main.rs`, so Cargo does not build it as an example; each
//! example includes it with `#[path = "support/mod.rs"] mod support;`.

// Each example uses only its part of this file.
#![allow(dead_code)]

use std::fmt::Display;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wirepatterns::cli::{self, Args, Parsed, Spec};
use wirepatterns::server::{Config, Handler, ServerHandle};

/// Exit code for a command line that cannot be followed.
pub const EXIT_USAGE: u8 = 2;

/// The process's arguments parsed against `spec`. `Err` carries the exit code when
/// the program should stop now: after printing the usage for `--help` (0), or the
/// error and the usage for a bad command line (2).
pub fn parse_args(spec: &Spec) -> Result<Args, ExitCode> {
    match spec.parse_env() {
        Ok(Parsed::Run(args)) => Ok(args),
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => Err(usage_error(spec, &e)),
    }
}

/// Prints `error: ...` and the usage to stderr; returns the exit code 2.
pub fn usage_error(spec: &Spec, error: &dyn Display) -> ExitCode {
    eprintln!("error: {error}\n\n{}", spec.usage());
    ExitCode::from(EXIT_USAGE)
}

/// The process's arguments parsed against `spec` (as [`parse_args`] does), then
/// read into the example's settings by `read`. `Err` carries the exit code when the
/// program should stop now: [`parse_args`]'s, or 2 with the error and the usage
/// when `read` refuses a value.
pub fn parse_settings<S>(
    spec: &Spec,
    read: impl FnOnce(&Args) -> Result<S, String>,
) -> Result<(Args, S), ExitCode> {
    let args = parse_args(spec)?;
    match read(&args) {
        Ok(settings) => Ok((args, settings)),
        Err(e) => Err(usage_error(spec, &e)),
    }
}

/// How a run that ends with a report ends: `Ok(report)` prints the report on
/// stdout and exits 0; `Err(e)`, as [`exit_code`].
pub fn finish(outcome: Result<String, impl Display>) -> ExitCode {
    exit_code(outcome.map(|report| print!("{report}")))
}

/// Exit code 0 for `Ok`; for `Err(e)`, prints `error: e` on stderr and exits 1.
pub fn exit_code(outcome: Result<(), impl Display>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a server for an example: binds `config.addr`, prints `listening on
/// http://ADDR`, stops gracefully on Ctrl-C, then prints the server's totals.
/// Exit code 0 after Ctrl-C, 1 (with the reason on stderr) if the address cannot
/// be bound or the loop fails.
pub fn serve<H: Handler>(config: Config, handler: H) -> ExitCode {
    serve_then(config, handler, |_, _| {})
}

/// [`serve`], then `after` prints what the handler counted, below the server's
/// totals.
pub fn serve_then<H: Handler>(
    config: Config,
    handler: H,
    after: impl FnOnce(&H, &mut dyn Write),
) -> ExitCode {
    let grace = config.shutdown_grace;
    let served = cli::serve_keeping(config, handler, |addr, handle| {
        println!("listening on http://{addr}");
        let _ = io::stdout().flush();
        stop_on_ctrl_c(handle, grace);
    });
    match served {
        Ok((stats, handler)) => {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "server totals:");
            for line in stats.to_string().lines() {
                let _ = writeln!(out, "  {line}");
            }
            after(&handler, &mut out);
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On the first Ctrl-C (SIGINT), asks the server to stop gracefully; on the
/// second, exits at once (status 130, as a shell reports SIGINT). A process can
/// install only one Ctrl-C handler, so this is called once, from [`serve`].
fn stop_on_ctrl_c(handle: ServerHandle, grace: Duration) {
    let stopping = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if stopping.swap(true, Ordering::SeqCst) {
            eprintln!("second Ctrl-C: quitting at once");
            std::process::exit(130);
        }
        println!(
            "Ctrl-C: stopping. No new connections; queued responses have {} to finish; \
             WebSocket clients get a 1001 close. Ctrl-C again quits at once.",
            seconds(grace)
        );
        let _ = io::stdout().flush();
        handle.shutdown();
    });
    if let Err(e) = installed {
        eprintln!(
            "warning: cannot catch Ctrl-C ({e}): it will end the server at once, without totals"
        );
    }
}

/// `5 s`, `0.5 s`: a duration for a learner to read.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Splits a `ws://` URL into its authority and its path (`/` when it has none):
/// `ws://127.0.0.1:8080/chat` gives `("127.0.0.1:8080", "/chat")`. The error, for a
/// URL that does not start with `ws://`, names the `--url` flag.
pub fn split_ws_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("--url {url:?} must start with ws:// (wss is not supported)"))?;
    Ok(match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    })
}

/// xorshift64*: masking keys and handshake nonces. RFC 6455 §10.3 asks for keys an
/// attacker cannot predict, which matters for browsers running hostile script; a
/// load tool only needs them to differ, so a fast generator seeded from the clock
/// is enough here.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((nanos ^ u64::from(std::process::id()) << 32) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A masking key for one client frame (RFC 6455 §5.3).
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }

    /// A handshake nonce, sent base64-encoded as `Sec-WebSocket-Key` (§4.1).
    pub fn nonce(&mut self) -> [u8; 16] {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.next().to_ne_bytes());
        nonce[8..].copy_from_slice(&self.next().to_ne_bytes());
        nonce
    }
}

/// Writes `out[*out_pos..]` to `stream` until it is all written (then empties `out`
/// and resets `out_pos`) or the socket would block (then keeps the rest queued).
/// `Err` if the connection is broken.
pub fn write_queued(
    stream: &mut impl Write,
    out: &mut Vec<u8>,
    out_pos: &mut usize,
) -> io::Result<()> {
    while *out_pos < out.len() {
        let rest = out.get(*out_pos..).unwrap_or_default();
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.clear();
    *out_pos = 0;
    Ok(())
}

/// One item of a load client's command line.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientArg {
    /// `--help` or `-h`.
    Help,
    /// A known flag and its value (`--flag value` or `--flag=value`).
    Flag(String, String),
}

/// The next item of a load client's command line (`chat_load`, `idle_conns`):
/// every flag there takes a value. The flag is checked against `known` before its
/// value is taken, so `--bogus` is an unknown flag, not one that "needs a value".
/// `Ok(None)` at the end.
pub fn next_client_arg(
    args: &mut impl Iterator<Item = String>,
    known: &[&str],
) -> Result<Option<ClientArg>, String> {
    let Some(arg) = args.next() else {
        return Ok(None);
    };
    let (flag, inline) = match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => {
            (flag.to_string(), Some(value.to_string()))
        }
        _ => (arg, None),
    };
    if flag == "--help" || flag == "-h" {
        return Ok(Some(ClientArg::Help));
    }
    if !flag.starts_with("--") {
        return Err(format!(
            "unexpected argument {flag:?} (options are --flags)"
        ));
    }
    if !known.contains(&flag.as_str()) {
        return Err(format!("unknown flag {flag}"));
    }
    let value = match inline {
        Some(value) => value,
        None => match args.next() {
            Some(value) if !known.contains(&value.as_str()) && value != "--help" => value,
            _ => return Err(format!("{flag} needs a value")),
        },
    };
    Ok(Some(ClientArg::Flag(flag, value)))
}

/// A count flag's value, at least 1.
pub fn count(flag: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err(format!("{flag} 0: must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{flag} {value:?}: not a count (a whole number, 1 or more)"
        )),
    }
}

/// A duration flag's value in seconds (fractions allowed); `0` only if
/// `zero_ok`.
pub fn secs(flag: &str, value: &str, zero_ok: bool) -> Result<Duration, String> {
    let d = value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag} {value:?}: not a number of seconds, 0 or more"))?;
    if d.is_zero() && !zero_ok {
        return Err(format!("{flag} {value}: must be more than 0 seconds"));
    }
    Ok(d)
}

/// A server's memory, from `/proc/PID/status`, in KiB: what the load clients
/// (`idle_conns`, `poll_load`) read before and after opening their connections.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident now.
    pub rss: u64,
    /// Resident and anonymous (heap, stacks): what connections add to.
    pub anon: u64,
    /// The peak of `rss` over the process's life.
    pub hwm: u64,
}

/// Reads process `pid`'s memory from `/proc/PID/status`.
pub fn read_memory(pid: u32) -> Result<Memory, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| format!("server memory: cannot read {path}: {e}"))?;
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
        _ => Err(format!("{path} has no VmRSS, RssAnon or VmHWM")),
    }
}

/// The CPU time process `pid` has used so far, user and system, all its threads:
/// the first field of `/proc/PID/task/TID/schedstat` (nanoseconds, the
/// scheduler's own account) summed over the threads. A kernel without schedstat
/// has only `utime + stime` in `/proc/PID/stat`, in clock ticks (USER_HZ, 100 a
/// second on Linux), so there the time is read to 10 ms. Threads that have ended
/// are not counted: read the same process before and after, and keep its threads.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if let Some(ns) = schedstat_ns(pid) {
        return Ok(Duration::from_nanos(ns));
    }
    // The command name (field 2) is in parentheses and may hold spaces: count
    // fields after its closing one. utime and stime are fields 14 and 15.
    let ticks = stat.rfind(')').and_then(|close| {
        let mut fields = stat.get(close + 1..)?.split_whitespace().skip(11);
        let user: u64 = fields.next()?.parse().ok()?;
        let system: u64 = fields.next()?.parse().ok()?;
        Some(user + system)
    });
    match ticks {
        Some(ticks) => Ok(Duration::from_millis(ticks * 10)),
        None => Err(format!("{path} has no utime and stime")),
    }
}

/// The sum of the run times in `/proc/PID/task/*/schedstat`, in nanoseconds;
/// `None` if no thread's could be read.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = None;
    for task in tasks.flatten() {
        // A thread may end between the listing and the read: skip it.
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
        {
            total = Some(total.unwrap_or(0) + ns);
        }
    }
    total
}
