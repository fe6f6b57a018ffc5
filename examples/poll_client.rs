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
//! - **updates**: a job's steps (10%, 20%, ... 100% with the server's default 10%
//!   step); the 0% a client sees first is where it starts following, not an update
//!   (as `compare_patterns` counts). **updates seen**: distinct progress values
//!   after 0%; an answer that repeats the progress already seen is not an update.
//! - **updates missed**: the job's updates this client never saw, named. A short
//!   poll answers with the progress of now, so an update replaced by the next one
//!   before the poll is never seen. How many updates the job had is the server's
//!   word: once the job has reached 100%, `GET /events?jobId=ID` from the start
//!   replays its whole log (0% and every step, whatever the step), on a connection
//!   of its own, shown on its own line and not counted in the table.
//! - **per update seen** (requests, bytes): over the updates seen only. Short
//!   polling that misses updates looks cheaper per update than it is: it paid for
//!   fewer of them; the table says so below it when any were missed.
//! - **lateness**: for each update, this machine's clock when the client read it
//!   minus the server's stamp of when the update happened (`Job-Updated-At` on a
//!   polling answer, `at=<ms>` in an SSE event or a WebSocket message). Both clocks
//!   are milliseconds since the epoch, so this means something only when the server
//!   runs on this machine (or on one whose clock agrees); it is p50 (the median) and
//!   max over the updates seen, by the nearest-rank method.
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

use follow::{
    Deadline, Mode, Options, Tally, Wire, follow, is_update, job_progress, missed, percentile,
    submit,
};

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

/// Progress values, compactly: `10%, 20%, 40%`, with a run of three or more
/// updates that came one after another in `made` (the job's progress values, in
/// order) written as its ends: `10%, 40–60%, 90%`.
fn percents(values: &[u8], made: &[u8]) -> String {
    let index = |p: u8| made.iter().position(|&m| m == p);
    let mut runs: Vec<(u8, u8, usize)> = Vec::new();
    for &p in values {
        match runs.last_mut() {
            Some((_, last, len))
                if index(p).is_some() && index(p) == index(*last).map(|i| i + 1) =>
            {
                *last = p;
                *len += 1;
            }
            _ => runs.push((p, p, 1)),
        }
    }
    let mut parts = Vec::new();
    for (first, last, len) in runs {
        match len {
            1 => parts.push(format!("{first}%")),
            2 => parts.push(format!("{first}%, {last}%")),
            _ => parts.push(format!("{first}–{last}%")),
        }
    }
    parts.join(", ")
}

/// What the table says about the run. `made` is the job's progress values as the
/// server listed them afterwards (0% included), or why they could not be had.
fn report(mode: Mode, tally: &Tally<'_>, took: Duration, made: &Result<Vec<u8>, String>) -> String {
    let (sent, received) = (tally.wire.bytes_out.get(), tally.wire.bytes_in.get());
    let updates = tally.updates.updates_seen();
    let requests = tally.requests;
    // The job's updates (0% is not one) and those never seen, when the server
    // said which there were.
    let job = made.as_ref().ok().map(|made| {
        let total = made.iter().filter(|&&p| is_update(p)).count() as u64;
        (
            total,
            missed(total, updates),
            tally.updates.missed_of(made),
            made,
        )
    });
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
            match &job {
                Some((total, ..)) => {
                    format!("of the job's {total} (0% is where following starts, not an update)")
                }
                None => "0% is where following starts, not an update".into(),
            },
        ),
        match &job {
            Some((total, count, which, made)) => Row(
                "updates missed",
                count.to_string(),
                "",
                if which.is_empty() {
                    format!("of {total}")
                } else {
                    format!("of {total}: {}", percents(which, made))
                },
            ),
            None => Row(
                "updates missed",
                "-".into(),
                "",
                "unknown: the server did not list the job's updates (below)".into(),
            ),
        },
    ];
    if requests > 0 {
        rows.push(Row(
            "updates seen per request",
            format!("{:.2}", updates as f64 / requests as f64),
            "",
            format!(
                "{} seen / {}",
                Count(updates, "update", "updates"),
                Count(requests, "request", "requests")
            ),
        ));
    }
    if updates > 0 {
        rows.push(Row(
            "bytes per update seen",
            format!("{:.1}", (sent + received) as f64 / updates as f64),
            "B",
            format!(
                "({sent} + {received}) B / {} seen",
                Count(updates, "update", "updates")
            ),
        ));
    }
    let mut late: Vec<u64> = tally
        .updates
        .updates()
        .filter_map(|(_, late)| late)
        .map(|ms| ms.max(0) as u64)
        .collect();
    late.sort_unstable();
    let ahead = tally
        .updates
        .updates()
        .filter(|&(_, late)| late.is_some_and(|ms| ms < 0))
        .count();
    let stamped = format!(
        "of {} seen and stamped",
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
    if let Some((total, count, ..)) = job
        && count > 0
    {
        let _ = writeln!(
            out,
            "  (the figures per update seen leave out the {count} missed: {} B and {} bought {} \
             of the\n   job's {total} updates, not {total}; a shorter --interval-ms sees more of \
             them, for more requests)",
            sent + received,
            Count(requests, "request", "requests"),
            updates,
        );
    }
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
    // The job's updates, as the server lists them now that it has ended.
    let made_wire = Wire::default();
    let made = job_progress(&id, opts, &made_wire, deadline);
    out.push_str(&report(opts.mode, &tally, took, &made));
    match &made {
        Ok(list) => {
            let listed: Vec<String> = list.iter().map(|p| format!("{p}%")).collect();
            let _ = writeln!(
                out,
                "the job's progress, as the server listed it after 100%: {} (GET /events from \
                 the start, on its own connection: {} B sent, {} B received; not counted above)",
                listed.join(" "),
                made_wire.bytes_out.get(),
                made_wire.bytes_in.get(),
            );
        }
        Err(e) => {
            let _ = writeln!(out, "the server did not list the job's updates: {e}");
        }
    }
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

    use wirepatterns::patterns::jobs::JobConfig;
    use wirepatterns::patterns::polling::{JobsApp, JobsConfig};
    use wirepatterns::patterns::websocket::{WsConfig, WsServer};
    use wirepatterns::server::{Config, Server};

    #[test]
    fn missed_updates_are_named_compactly_in_the_jobs_order() {
        let tens: Vec<u8> = (0..=10).map(|i| i * 10).collect();
        assert_eq!(
            percents(&[10, 30, 40, 60, 80, 90], &tens),
            "10%, 30%, 40%, 60%, 80%, 90%"
        );
        assert_eq!(
            percents(&[10, 20, 30, 50, 70, 80, 90, 100], &tens),
            "10–30%, 50%, 70–100%"
        );
        // A 30% step ends with a shorter one: 90% and 100% follow each other.
        assert_eq!(
            percents(&[30, 60, 90, 100], &[0, 30, 60, 90, 100]),
            "30–100%"
        );
        let ones: Vec<u8> = (0..=100).collect();
        let missed: Vec<u8> = (1..=100).filter(|p| p % 25 != 0).collect();
        assert_eq!(percents(&missed, &ones), "1–24%, 26–49%, 51–74%, 76–99%");
        assert_eq!(percents(&[], &tens), "");
    }

    /// Submits a job to the server at `addr`, follows it `mode`, and asks the
    /// server for the job's updates afterwards, as `run` does.
    fn follow_one(addr: std::net::SocketAddr, mode: Mode) -> (String, Tally<'static>, Vec<u8>) {
        let opts = Options {
            addr,
            mode,
            interval: Duration::from_millis(400),
            wait_secs: 5,
            timeout: Duration::from_secs(30),
        };
        let deadline = Deadline::new(opts.timeout);
        let id = submit(&opts, &Wire::default(), deadline).expect("submitted");
        let wire: &'static Wire = Box::leak(Box::default());
        let mut tally = Tally::new(wire, ProgressBar::hidden());
        follow(&id, &opts, deadline, &mut tally).expect("followed to 100%");
        let made = job_progress(&id, &opts, &Wire::default(), deadline).expect("listed");
        (id, tally, made)
    }

    #[test]
    fn short_polling_slower_than_the_steps_reports_the_updates_it_missed() {
        // Steps of 25% every 30 ms: the job is done 120 ms after its submit. A
        // poll every 400 ms sees where it starts, then 100%: at least two of the
        // four updates (25%, 50%, 75%) are never seen, however slow this machine.
        let config = JobsConfig {
            jobs: JobConfig {
                step: Duration::from_millis(30),
                step_percent: 25,
                ..JobConfig::default()
            },
            ..JobsConfig::default()
        };
        let app = JobsApp::new(config).expect("a jobs server");
        let server = Server::bind(
            Config::new(([127, 0, 0, 1], 0).into()),
            WsServer::new(WsConfig::default(), app),
        )
        .and_then(Server::spawn)
        .expect("listening");
        for mode in [Mode::Short, Mode::Sse] {
            let (id, tally, made) = follow_one(server.addr, mode);
            assert_eq!(
                made,
                [0, 25, 50, 75, 100],
                "{id}: the server's step, not 10%"
            );
            let seen = tally.updates.updates_seen();
            let which = tally.updates.missed_of(&made);
            let count = missed(4, seen);
            // Every update is seen or missed, and the count and the names agree.
            assert_eq!(seen + which.len() as u64, 4, "{mode:?}");
            assert_eq!(count, which.len() as u64, "{mode:?}");
            let text = report(mode, &tally, Duration::from_secs(1), &Ok(made.clone()));
            let row = |label: &str| {
                text.lines()
                    .find(|l| l.trim_start().starts_with(label))
                    .unwrap_or_else(|| panic!("no {label:?} row in\n{text}"))
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            assert_eq!(
                row("updates seen "),
                format!(
                    "updates seen {seen} of the job's 4 (0% is where following starts, not an update)"
                )
            );
            match mode {
                Mode::Short => {
                    assert!(count >= 2, "{count} missed of 4:\n{text}");
                    assert_eq!(
                        row("updates missed"),
                        format!("updates missed {count} of 4: {}", percents(&which, &made))
                    );
                    assert!(
                        text.contains(&format!("leave out the {count} missed")),
                        "{text}"
                    );
                }
                _ => {
                    assert_eq!(count, 0, "an event stream sends every update:\n{text}");
                    assert_eq!(row("updates missed"), "updates missed 0 of 4");
                    assert!(!text.contains("leave out"), "{text}");
                }
            }
        }
        server.stop().expect("stopped");
    }

    #[test]
    fn without_the_servers_list_missed_is_unknown_not_zero() {
        let wire = Wire::default();
        let mut tally = Tally::new(&wire, ProgressBar::hidden());
        tally.requests = 3;
        tally.answer(0, None);
        tally.answer(50, None);
        tally.answer(100, None);
        let text = report(
            Mode::Short,
            &tally,
            Duration::from_secs(1),
            &Err("404".into()),
        );
        let missed = text
            .lines()
            .find(|l| l.contains("updates missed"))
            .expect("a missed row");
        assert!(
            missed.contains(" - ") && missed.contains("unknown"),
            "{text}"
        );
        let per_request = text
            .lines()
            .find(|l| l.contains("updates seen per request"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
        assert_eq!(
            per_request.as_deref(),
            Some("updates seen per request 0.67 2 updates seen / 3 requests"),
            "0% is no update: {text}"
        );
        assert!(!text.contains("leave out"), "{text}");
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
