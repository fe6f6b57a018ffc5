//! poll_client: submit one job to the jobs server and follow it to 100% one of four
//! ways, then print what following it cost on the wire.
//!
//! ```sh
//! cargo run --example jobs -- --addr 127.0.0.1:8080 --step-ms 300 &
//! cargo run --example poll_client -- --mode short --interval-ms 100
//! cargo run --example poll_client -- --mode long
//! cargo run --example poll_client -- --mode sse
//! cargo run --example poll_client -- --mode ws
//! ```
//!
//! Flags: `--mode short|long|sse|ws` (required), `--interval-ms MS` (short polling's
//! pause between an answer and the next request, default 1000), `--wait SECS` (how
//! long a long poll may be held, default 25), `--timeout SECS` (the whole run's limit,
//! default 120), `--addr HOST:PORT` (the server, default 127.0.0.1:8080), `--help`.
//!
//! # The four ways (the server's side: `src/patterns/polling/`, run by `examples/jobs.rs`)
//!
//! First `POST /submit` on a connection of its own answers `job:<id>`; that exchange
//! is shown on its own line and not counted in the table, which is the cost of
//! *following* the job:
//!
//! - **short**: `GET /checkstatus?jobId=ID` on one keep-alive connection, again and
//!   again, `--interval-ms` after each answer, until the answer says 100%. Most
//!   answers repeat what the client already knew.
//! - **long**: the first request is the same; each next one adds `wait=SECS&since=N`
//!   (N = the progress last seen), and the server holds it until the progress passes
//!   N. Every answer is news, and none waits for a timer on the client.
//! - **sse**: one `GET /events?jobId=ID`; the server answers with a
//!   `text/event-stream` (chunked, as it is sent while it happens) that carries one
//!   event per update and ends after 100%. The
//!   stream is read as a browser's `EventSource` reads it (the WHATWG HTML standard,
//!   "server-sent events"): lines ending in CRLF, LF or CR; `data:` lines joined; `id:`
//!   remembered and sent back as `Last-Event-ID` if the client must reconnect;
//!   `retry:` sets the reconnection delay; `:` lines are comments (heartbeats).
//! - **ws**: a WebSocket on `/jobs?jobId=ID` (the crate's own client,
//!   `wirepatterns::ws::client`): one text message per update; after 100% the server
//!   closes with 1000 and this client answers the close.
//!
//! # What the table counts
//!
//! - **bytes** are exactly what the TCP socket took and gave (`write()` and `read()`
//!   return values, through `Timed` in `support/follow.rs`, where the four ways
//!   are written): request and response heads, chunk sizes, frame headers, close
//!   frames. Not TCP/IP headers, nor the handshake of TCP itself.
//! - **updates seen**: distinct progress values (0%, 10%, ... 100%). An answer that
//!   repeats the progress already seen is not an update.
//! - **lateness**: for each update, this machine's clock when the client read it
//!   minus the server's stamp of when the update happened (`Job-Updated-At` on a
//!   polling answer, `at=<ms>` in an SSE event or a WebSocket message). Both clocks
//!   are milliseconds since the epoch, so this means something only when the server
//!   runs on this machine (or on one whose clock agrees); it is p50 (the median) and
//!   max over the updates, by the nearest-rank method.
//!
//! Every read and connect is bounded by what is left of `--timeout`; a run that
//! passes it fails with a message saying what it was waiting for. Exit code 0 when
//! the job was followed to 100%, 1 when the server could not be reached or broke the
//! protocol, 2 on bad usage.
//!
//! The progress bar (`indicatif`) is drawn on stderr, and only when stderr is a
//! terminal; the table goes to stdout.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use wirepatterns::cli::{Args, Spec};
use wirepatterns::trace::{Count, Dur};

#[path = "support/mod.rs"]
mod support;

#[path = "support/follow.rs"]
mod follow;

use follow::{Deadline, Mode, Options, Tally, Wire, follow, percentile, submit};

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

fn spec() -> Spec {
    Spec::client(
        "poll_client",
        "poll_client: submit a job to the jobs server and follow it to 100% by short \
         polling, long polling, server-sent events or a WebSocket, then print what \
         following it cost: requests, connections, bytes on the wire, updates and how \
         late they arrived. --mode is required.",
        "127.0.0.1:8080",
    )
    .option(
        "--mode",
        "short|long|sse|ws",
        "how to follow the job (required)",
    )
    .option(
        "--interval-ms",
        "MS",
        "short polling: pause after each answer before the next request (default 1000)",
    )
    .option(
        "--wait",
        "SECS",
        "long polling: how long the server may hold a request, whole seconds (default 25)",
    )
    .option(
        "--timeout",
        "SECS",
        "fail the whole run after this long (default 120; a slow server --step-ms needs more)",
    )
}

/// The options from parsed flags; `Err` is a message for [`support::usage_error`].
fn options(args: &Args) -> Result<Options, String> {
    let mode = match args.value("--mode") {
        None => return Err("--mode is required: short, long, sse or ws".into()),
        Some(text) => Mode::parse(text)
            .ok_or_else(|| format!("--mode {text:?}: expected short, long, sse or ws"))?,
    };
    let interval_ms = args
        .at_least("--interval-ms", 1u64)
        .map_err(|e| e.to_string())?
        .unwrap_or(1000);
    let wait_secs = args
        .at_least("--wait", 1u64)
        .map_err(|e| e.to_string())?
        .unwrap_or(25);
    let timeout = args
        .seconds("--timeout")
        .map_err(|e| e.to_string())?
        .unwrap_or(Duration::from_secs(120));
    if timeout.is_zero() {
        return Err("--timeout 0: must be more than 0 seconds".into());
    }
    Ok(Options {
        addr: args.addr,
        mode,
        interval: Duration::from_millis(interval_ms),
        wait_secs,
        timeout,
    })
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// One row of the table: label, value (right-aligned), unit, note.
struct Row(&'static str, String, &'static str, String);

/// The rows, aligned in columns.
fn table(rows: &[Row]) -> String {
    let width = |f: &dyn Fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let label_w = width(&|r| r.0.chars().count());
    let value_w = width(&|r| r.1.chars().count());
    let unit_w = width(&|r| r.2.chars().count());
    let mut out = String::new();
    for Row(label, value, unit, note) in rows {
        let line = format!("  {label:<label_w$}  {value:>value_w$} {unit:<unit_w$}  {note}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A duration split into its number and its unit (`51.0 ms` -> `51.0`, `ms`), for
/// the value and unit columns.
fn dur_cells(d: Duration) -> (String, &'static str) {
    let text = Dur(d).to_string();
    let (value, unit) = text.split_once(' ').unwrap_or((&text, ""));
    let unit = ["ns", "µs", "ms", "s"]
        .into_iter()
        .find(|u| *u == unit)
        .unwrap_or("");
    (value.to_string(), unit)
}

/// What the table says about the run.
fn report(mode: Mode, tally: &Tally<'_>, took: Duration) -> String {
    let (sent, received) = (tally.wire.bytes_out.get(), tally.wire.bytes_in.get());
    let updates = tally.updates.seen.len() as u64;
    let requests = tally.requests;
    let mut rows = vec![
        Row(
            "requests sent",
            requests.to_string(),
            "",
            format!(
                "on {}",
                Count(tally.connections, "connection", "connections")
            ),
        ),
        Row(
            "connections opened",
            tally.connections.to_string(),
            "",
            String::new(),
        ),
        Row("bytes sent", sent.to_string(), "B", "on the wire".into()),
        Row(
            "bytes received",
            received.to_string(),
            "B",
            "on the wire".into(),
        ),
        Row(
            "answers received",
            tally.answers.to_string(),
            "",
            match mode {
                Mode::Sse => format!(
                    "events, and {} (heartbeats)",
                    Count(tally.comments, "comment", "comments")
                ),
                Mode::Ws => "text messages".into(),
                Mode::Short | Mode::Long => "responses".into(),
            },
        ),
        Row(
            "updates seen",
            updates.to_string(),
            "",
            "distinct progress values".into(),
        ),
    ];
    if requests > 0 {
        rows.push(Row(
            "updates per request",
            format!("{:.2}", updates as f64 / requests as f64),
            "",
            format!(
                "{} / {}",
                Count(updates, "update", "updates"),
                Count(requests, "request", "requests")
            ),
        ));
    }
    if updates > 0 {
        rows.push(Row(
            "bytes per update",
            format!("{:.1}", (sent + received) as f64 / updates as f64),
            "B",
            format!(
                "({sent} + {received}) B / {}",
                Count(updates, "update", "updates")
            ),
        ));
    }
    let mut late: Vec<u64> = tally
        .updates
        .seen
        .iter()
        .filter_map(|&(_, late)| late)
        .map(|ms| ms.max(0) as u64)
        .collect();
    late.sort_unstable();
    let ahead = tally
        .updates
        .seen
        .iter()
        .filter(|&&(_, late)| late.is_some_and(|ms| ms < 0))
        .count();
    let stamped = format!(
        "of {} stamped",
        Count(late.len() as u64, "update", "updates")
    );
    for (label, pct, note) in [
        (
            "lateness p50",
            50,
            "from the server's stamp to this client reading it (whole ms)".to_string(),
        ),
        ("lateness max", 100, stamped),
    ] {
        // The stamps are whole milliseconds, so lateness is shown as a whole
        // number of them: "0 ms" means under a millisecond, not "0 ns".
        let (value, unit) = match percentile(&late, pct) {
            Some(ms) => (ms.to_string(), "ms"),
            None => ("-".to_string(), ""),
        };
        rows.push(Row(label, value, unit, note));
    }
    let (value, unit) = dur_cells(took);
    rows.push(Row(
        "took",
        value,
        unit,
        "from the first connect to the last byte read".into(),
    ));
    let mut out = table(&rows);
    if ahead > 0 {
        let _ = writeln!(
            out,
            "  ({} stamped ahead of this machine's clock, counted as 0: is the server's \
             clock another machine's?)",
            Count(ahead as u64, "update was", "updates were")
        );
    }
    out
}

fn describe(opts: &Options) -> String {
    match opts.mode {
        Mode::Short => format!(
            "short polling (GET /checkstatus, {} after each answer)",
            Dur(opts.interval)
        ),
        Mode::Long => format!(
            "long polling (GET /checkstatus with wait={}&since=N)",
            opts.wait_secs
        ),
        Mode::Sse => "server-sent events (GET /events, one stream)".to_string(),
        Mode::Ws => "a WebSocket (/jobs, one text message per update)".to_string(),
    }
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(100);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:25}] {pos:>3}%  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn run(opts: &Options) -> Result<String, String> {
    let deadline = Deadline::new(opts.timeout);
    let submit_wire = Wire::default();
    let id = submit(opts, &submit_wire, deadline)?;
    let mut out = format!(
        "submitted {id} to {} (POST /submit on its own connection: {} B sent, {} B received; \
         not counted below)\nfollowing it by {}:\n",
        opts.addr,
        submit_wire.bytes_out.get(),
        submit_wire.bytes_in.get(),
        describe(opts),
    );
    let wire = Wire::default();
    let mut tally = Tally::new(&wire, progress_bar());
    let start = Instant::now();
    let followed = follow(&id, opts, deadline, &mut tally);
    let took = start.elapsed();
    tally.bar.finish_and_clear();
    followed?;
    out.push_str(&report(opts.mode, &tally, took));
    Ok(out)
}

fn main() -> ExitCode {
    match support::parse_settings(&spec(), options) {
        Ok((_, opts)) => support::finish(run(&opts)),
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let rows = [
            Row("requests sent", "34".into(), "", "on 1 connection".into()),
            Row("bytes received", "5440".into(), "B", "on the wire".into()),
            Row("lateness p50", "51.0".into(), "ms", String::new()),
        ];
        assert_eq!(
            table(&rows),
            "  requests sent     34     on 1 connection\n\
             \x20 bytes received  5440 B   on the wire\n\
             \x20 lateness p50    51.0 ms\n"
        );
        assert_eq!(
            dur_cells(Duration::from_millis(51)),
            ("51.0".to_string(), "ms")
        );
    }

    fn parse(args: &[&str]) -> Result<Options, String> {
        match spec().parse(args.iter().map(|s| s.to_string())) {
            Ok(wirepatterns::cli::Parsed::Run(args)) => options(&args),
            Ok(wirepatterns::cli::Parsed::Help(_)) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn command_line() {
        let opts = parse(&["--mode", "long"]).unwrap();
        assert_eq!(opts.mode, Mode::Long);
        assert_eq!(opts.interval, Duration::from_secs(1));
        assert_eq!(opts.wait_secs, 25);
        assert_eq!(opts.timeout, Duration::from_secs(120));
        assert_eq!(opts.addr, "127.0.0.1:8080".parse().unwrap());
        let opts = parse(&[
            "--mode=short",
            "--interval-ms",
            "100",
            "--wait=3",
            "--timeout",
            "0.5",
            "--addr",
            "127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(opts.interval, Duration::from_millis(100));
        assert_eq!(opts.wait_secs, 3);
        assert_eq!(opts.timeout, Duration::from_millis(500));
        assert_eq!(opts.addr.port(), 9);
        for (args, says) in [
            (&[][..], "--mode is required"),
            (&["--mode", "poll"], "--mode \"poll\""),
            (&["--mode", "ws", "--interval-ms", "0"], "--interval-ms 0"),
            (&["--mode", "ws", "--wait", "1.5"], "--wait"),
            (&["--mode", "ws", "--timeout", "0"], "--timeout 0"),
            (&["--mode", "ws", "--trace"], "unknown flag --trace"),
            (&["--mode"], "--mode needs a value"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err(), "help");
    }
}
