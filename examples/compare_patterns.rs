//! compare_patterns: the same jobs followed six ways (short polling at three
//! intervals, long polling, Server-Sent Events, a WebSocket), one way at a time, and
//! what each way cost side by side: requests, bytes on the wire, updates missed,
//! lateness, the server's CPU time.
//!
//! ```sh
//! cargo run --release --example compare_patterns
//! cargo run --release --example compare_patterns -- --jobs 50 --step-ms 100 --out /tmp/cmp
//! ```
//!
//! Flags: `--jobs N` (jobs followed at once each way, default 20), `--step-ms MS`
//! (the time between two updates of a job, default 200; a job makes 10 updates, 10%
//! each, so it runs ten steps), `--out DIR` (where the CSV and the SVG go, default
//! `target/compare_patterns`), `--addr HOST:PORT` (where the servers listen, default
//! `127.0.0.1:0`: a free port), `--trace` (print the servers' trace lines on stderr;
//! they cost the servers CPU time too), `--help`.
//!
//! # What it does
//!
//! For each way, in turn: start a fresh jobs server (the library's [`JobsApp`], the
//! one `examples/jobs.rs` serves) in this process, on a thread of its own, so that
//! the CPU time its loop thread spends is that way's alone; submit `--jobs` jobs;
//! follow every job to 100% at once, one client thread per job, with the code
//! `poll_client` uses (`examples/support/follow.rs`); read the server's counters;
//! stop it. The ways:
//!
//! - **short poll**, `GET /checkstatus?jobId=ID` again and again, at three pauses
//!   scaled to the step: half a step (two polls per update: nothing missed, most
//!   answers repeat), two and a half steps (more than half the updates are replaced
//!   before the next poll), ten steps (the whole job: almost nothing but the start
//!   and the end is seen). At the default 200 ms step: 100 ms, 500 ms, 2 s.
//! - **long poll**, `...&wait=25&since=N`: one request per update, held until it
//!   happens (plus the first request, which learns the current progress, and one
//!   per `wait` that runs out with no news).
//! - **SSE**, one `GET /events?jobId=ID` stream: one event per update, and one for
//!   the progress when the stream opens.
//! - **WebSocket**, `/jobs?jobId=ID`: one text message per update, and one for the
//!   progress when it opens.
//!
//! # The columns (stdout) and the CSV
//!
//! An **update** is one of the 10 steps of a job (10%, 20%, ... 100%); the 0% a
//! client sees first is where it starts, not an update. How many updates there
//! were comes from the server (steps applied), not from the clients.
//!
//! - `requests`: HTTP requests sent (a WebSocket's is its upgrade).
//! - `bytes c→s`, `bytes s→c`: exactly what the clients' sockets wrote and read,
//!   heads, chunk sizes and frame headers included (not TCP/IP headers).
//! - `bytes/update`, `req/update`: both directions' bytes, and requests, per update
//!   the clients saw (the useful ones).
//! - `missed`: updates the server made that no client saw, of all it made. A short
//!   poll answers with the current progress: an update replaced by the next one
//!   before the poll is never seen. This is apart from lateness.
//! - `late p50`, `late p99`: over the updates seen, from the server's stamp of the
//!   update (`Job-Updated-At`, or `at=` in an event or message) to the client
//!   reading it, in whole milliseconds, by the nearest rank (as `poll_client`).
//! - `server CPU`: the server loop thread's CPU time while the jobs were followed
//!   (read through `GET /stats` before and after; Linux only, else `-`).
//!
//! `DIR/compare_patterns.csv` has one row per way under this header (empty fields
//! where a value is not known: no update seen, no CPU time on this system):
//!
//! ```text
//! pattern,mode,interval_ms,jobs,requests,connections,bytes_client_to_server,bytes_server_to_client,updates,updates_seen,updates_missed,answers_without_news,requests_per_update,bytes_per_update,lateness_p50_ms,lateness_p99_ms,server_cpu_us
//! ```
//!
//! `answers_without_news` are answers that told their client nothing new: short
//! polls that found the progress unchanged, long polls whose wait ran out.
//!
//! `DIR/compare_patterns.svg` draws bytes per update seen (each way), lateness (p50
//! and p99), requests per update seen, updates missed and the server's CPU time per
//! update seen, one bar chart each (`wirepatterns::chart`).
//!
//! Every client read and connect is bounded by the run's limit (ten steps, plus two
//! pauses, plus 30 s); exit code 0 when every job was followed to 100%, 1 when one
//! could not be (or a file could not be written), 2 on bad usage. The progress line
//! is drawn on stderr when it is a terminal.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use wirepatterns::chart::{self, BarChart, Series};
use wirepatterns::cli::{Args, Spec};
use wirepatterns::patterns::jobs::JobConfig;
use wirepatterns::patterns::polling::{JobsApp, JobsConfig, JobsReport, Pattern, PatternCost};
use wirepatterns::patterns::websocket::{WsConfig, WsServer};
use wirepatterns::server::{Config, Running, Server};
use wirepatterns::trace::Dur;

#[path = "support/mod.rs"]
mod support;

#[path = "support/follow.rs"]
mod follow;

use follow::{
    Deadline, Mode, Options, Tally, Wire, connect, follow, is_update, missed, percentile,
    read_response, submit, write_request,
};

/// How long the server may hold a long poll, as `poll_client` asks by default.
const LONG_WAIT_SECS: u64 = 25;

/// The CSV's header: the columns of [`Measured::csv_row`].
const CSV_HEADER: &str = "pattern,mode,interval_ms,jobs,requests,connections,\
    bytes_client_to_server,bytes_server_to_client,updates,updates_seen,updates_missed,\
    answers_without_news,requests_per_update,bytes_per_update,lateness_p50_ms,lateness_p99_ms,server_cpu_us";

/// The most jobs followed at once (a client thread each).
const MAX_JOBS: usize = 1000;

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

/// What the command line asked for.
#[derive(Debug, Clone)]
struct Settings {
    /// Where each server listens (port 0: a free one).
    addr: SocketAddr,
    /// Jobs followed at once, each way.
    jobs: usize,
    /// The time between two updates of a job.
    step: Duration,
    /// Where the CSV and the SVG are written.
    out: PathBuf,
    /// Print the servers' trace lines.
    trace: bool,
}

fn spec() -> Spec {
    Spec::new(
        "compare_patterns",
        "compare_patterns: follow the same jobs by short polling (three intervals), long \
         polling, server-sent events and a WebSocket, one way at a time on a fresh jobs \
         server in this process, and print what each cost: requests, bytes on the wire, \
         updates missed, lateness, the server's CPU time. Writes DIR/compare_patterns.csv \
         and DIR/compare_patterns.svg.",
        "127.0.0.1:0",
    )
    .option(
        "--jobs",
        "N",
        "jobs followed at once each way, one client thread each (default 20)",
    )
    .option(
        "--step-ms",
        "MS",
        "time between two updates of a job; a job makes 10 (default 200)",
    )
    .option(
        "--out",
        "DIR",
        "where to write compare_patterns.csv and .svg (default target/compare_patterns)",
    )
}

/// The settings from parsed flags; `Err` is a message for [`support::usage_error`].
fn settings(args: &Args) -> Result<Settings, String> {
    let jobs = args
        .at_least("--jobs", 1usize)
        .map_err(|e| e.to_string())?
        .unwrap_or(20);
    if jobs > MAX_JOBS {
        return Err(format!("--jobs {jobs}: at most {MAX_JOBS}"));
    }
    let step_ms = args
        .at_least("--step-ms", 2u64)
        .map_err(|e| e.to_string())?
        .unwrap_or(200);
    if step_ms > 60_000 {
        return Err(format!("--step-ms {step_ms}: at most 60000 (a minute)"));
    }
    let out = match args.value("--out") {
        Some("") => return Err("--out: needs a directory".into()),
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from("target/compare_patterns"),
    };
    Ok(Settings {
        addr: args.addr,
        jobs,
        step: Duration::from_millis(step_ms),
        out,
        trace: args.trace,
    })
}

// ---------------------------------------------------------------------------
// The ways compared
// ---------------------------------------------------------------------------

/// One way of following the jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Way {
    /// Its name in the table, the CSV and the chart.
    name: String,
    mode: Mode,
    /// Short polling: the pause after each answer.
    interval: Duration,
    /// Long polling: the `wait=` sent.
    wait_secs: u64,
}

impl Way {
    fn new(mode: Mode, interval: Duration) -> Way {
        let name = match mode {
            Mode::Short => format!("short poll {}", whole(interval)),
            Mode::Long => "long poll".into(),
            Mode::Sse => "SSE".into(),
            Mode::Ws => "WebSocket".into(),
        };
        Way {
            name,
            mode,
            interval,
            wait_secs: LONG_WAIT_SECS,
        }
    }

    /// What the CSV's `mode` column says.
    fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Short => "short",
            Mode::Long => "long",
            Mode::Sse => "sse",
            Mode::Ws => "ws",
        }
    }

    /// The server's counters for this way's requests.
    fn pattern(&self) -> Pattern {
        match self.mode {
            Mode::Short => Pattern::ShortPoll,
            Mode::Long => Pattern::LongPoll,
            Mode::Sse => Pattern::Sse,
            Mode::Ws => Pattern::WebSocket,
        }
    }
}

/// The six ways, with short polling's pauses scaled to `step`: half a step, two
/// and a half, ten (100 ms, 500 ms and 2 s at 200 ms).
fn ways(step: Duration) -> Vec<Way> {
    let ms = step.as_millis().max(2) as u64;
    let mut ways: Vec<Way> = [ms / 2, ms * 5 / 2, ms * 10]
        .into_iter()
        .map(|interval| Way::new(Mode::Short, Duration::from_millis(interval.max(1))))
        .collect();
    for mode in [Mode::Long, Mode::Sse, Mode::Ws] {
        ways.push(Way::new(mode, Duration::ZERO));
    }
    ways
}

/// A duration as a short name: `100 ms`, `2 s`, `2.5 s`.
fn whole(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(100) {
        let s = format!("{:.1}", ms as f64 / 1000.0);
        format!("{} s", s.trim_end_matches(".0"))
    } else {
        format!("{ms} ms")
    }
}

// ---------------------------------------------------------------------------
// Following the jobs one way, against a fresh server
// ---------------------------------------------------------------------------

/// What following one job cost, as its client counted it.
#[derive(Debug, Clone, Default)]
struct Followed {
    requests: u64,
    connections: u64,
    answers: u64,
    bytes_out: u64,
    bytes_in: u64,
    /// Each distinct progress seen, with its lateness in ms (as `poll_client`).
    seen: Vec<(u8, Option<i64>)>,
}

/// What one way cost, all its jobs together.
#[derive(Debug, Clone)]
struct Measured {
    way: Way,
    jobs: usize,
    requests: u64,
    connections: u64,
    /// Polling answers, events, messages.
    answers: u64,
    /// Answers that told the client something new (its first included).
    news: u64,
    bytes_out: u64,
    bytes_in: u64,
    /// Updates the server applied to the jobs (from the server).
    updates: u64,
    /// Updates the clients saw.
    seen: u64,
    /// The lateness of each update seen, in ms, ascending.
    late_ms: Vec<u64>,
    /// The server's own counters for this way's pattern.
    server: PatternCost,
    /// The server loop thread's CPU time while following.
    server_cpu: Option<Duration>,
    /// From the first follower starting to the last one done.
    took: Duration,
}

impl Measured {
    /// Adds up what the clients counted.
    fn new(way: Way, jobs: usize, followed: &[Followed]) -> Measured {
        let mut m = Measured {
            way,
            jobs,
            requests: 0,
            connections: 0,
            answers: 0,
            news: 0,
            bytes_out: 0,
            bytes_in: 0,
            updates: 0,
            seen: 0,
            late_ms: Vec::new(),
            server: PatternCost::default(),
            server_cpu: None,
            took: Duration::ZERO,
        };
        for f in followed {
            m.requests += f.requests;
            m.connections += f.connections;
            m.answers += f.answers;
            m.news += f.seen.len() as u64;
            m.bytes_out += f.bytes_out;
            m.bytes_in += f.bytes_in;
            // 0% is where a client starts, not an update (`follow::is_update`).
            for &(progress, late) in &f.seen {
                if is_update(progress) {
                    m.seen += 1;
                    if let Some(ms) = late {
                        // A stamp ahead of this clock (it cannot be: one machine)
                        // counts as 0, as in poll_client.
                        m.late_ms.push(ms.max(0) as u64);
                    }
                }
            }
        }
        m.late_ms.sort_unstable();
        m
    }

    /// Updates made that no client saw.
    fn missed(&self) -> u64 {
        missed(self.updates, self.seen)
    }

    /// Answers that repeated what their client knew: short polls with nothing new,
    /// long polls whose wait ran out.
    fn repeats(&self) -> u64 {
        self.answers.saturating_sub(self.news)
    }

    /// `value` per update seen; NaN when none was seen.
    fn per_update(&self, value: f64) -> f64 {
        if self.seen == 0 {
            f64::NAN
        } else {
            value / self.seen as f64
        }
    }

    fn bytes_per_update(&self) -> f64 {
        self.per_update((self.bytes_out + self.bytes_in) as f64)
    }

    fn requests_per_update(&self) -> f64 {
        self.per_update(self.requests as f64)
    }

    fn late(&self, pct: u32) -> Option<u64> {
        percentile(&self.late_ms, pct)
    }

    /// One CSV row, the columns of [`CSV_HEADER`].
    fn csv_row(&self) -> String {
        let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let real = |v: f64| {
            if v.is_finite() {
                format!("{v:.3}")
            } else {
                String::new()
            }
        };
        let interval = match self.way.mode {
            Mode::Short => self.way.interval.as_millis().to_string(),
            _ => String::new(),
        };
        [
            csv_field(&self.way.name),
            self.way.mode_name().to_string(),
            interval,
            self.jobs.to_string(),
            self.requests.to_string(),
            self.connections.to_string(),
            self.bytes_out.to_string(),
            self.bytes_in.to_string(),
            self.updates.to_string(),
            self.seen.to_string(),
            self.missed().to_string(),
            self.repeats().to_string(),
            real(self.requests_per_update()),
            real(self.bytes_per_update()),
            opt(self.late(50)),
            opt(self.late(99)),
            opt(self.server_cpu.map(|d| d.as_micros() as u64)),
        ]
        .join(",")
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180
/// §2: quotes inside are doubled).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A running jobs server.
type JobsServer = Running<WsServer<JobsApp>>;

/// A fresh jobs server whose jobs step every `step`, on its own thread.
fn start_server(settings: &Settings) -> Result<JobsServer, String> {
    let config = JobsConfig {
        jobs: JobConfig {
            step: settings.step,
            ..JobConfig::default()
        },
        ..JobsConfig::default()
    };
    let mut app = JobsApp::new(config).map_err(|e| format!("the jobs server: {e}"))?;
    let trace = settings.trace;
    app.set_observer(Instant::now(), trace, move |report| match report {
        JobsReport::Line(line) => eprintln!("{line}"),
        JobsReport::Warning(text) => eprintln!("warning: {text}"),
        JobsReport::Costs(_) => {}
    });
    Server::bind(
        Config::new(settings.addr),
        WsServer::new(WsConfig::default(), app),
    )
    .and_then(Server::spawn)
    .map_err(|e| format!("cannot start a jobs server on {}: {e}", settings.addr))
}

/// The server loop thread's CPU time, as `GET /stats` reads it (`loop.cpu_us`);
/// `None` where the system does not say.
fn server_cpu(addr: SocketAddr, deadline: Deadline) -> Result<Option<Duration>, String> {
    let wire = Wire::default();
    let mut conn = connect(addr, &wire, deadline)?;
    let mut request = Vec::new();
    write_request(
        &mut request,
        "GET",
        "/stats",
        &addr.to_string(),
        &[("Connection", "close")],
    );
    std::io::Write::write_all(&mut conn.io, &request)
        .map_err(|e| format!("GET /stats on {addr}: {e}"))?;
    let response = read_response(&mut conn.io, &mut conn.buf)
        .map_err(|e| e.message(addr, deadline, "the answer to GET /stats"))?;
    if response.head.status != 200 {
        return Err(format!("GET /stats answered {}", response.head.status));
    }
    let text = String::from_utf8_lossy(&response.body);
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix("loop.cpu_us "))
        .and_then(|us| us.trim().parse().ok())
        .map(Duration::from_micros))
}

/// Follows job `id` to 100% as `opts` says, on this thread.
fn follow_one(id: &str, opts: &Options) -> Result<Followed, String> {
    let deadline = Deadline::new(opts.timeout);
    let wire = Wire::default();
    let mut tally = Tally::new(&wire, ProgressBar::hidden());
    follow(id, opts, deadline, &mut tally).map_err(|e| format!("following {id}: {e}"))?;
    Ok(Followed {
        requests: tally.requests,
        connections: tally.connections,
        answers: tally.answers,
        bytes_out: wire.bytes_out.get(),
        bytes_in: wire.bytes_in.get(),
        seen: tally.updates.seen.clone(),
    })
}

/// Follows `settings.jobs` jobs `way` on a fresh server; `progress` is told how
/// many jobs are done, now and then.
fn measure(way: &Way, settings: &Settings, progress: &dyn Fn(usize)) -> Result<Measured, String> {
    let server = start_server(settings)?;
    let addr = server.addr;
    let result = follow_all(way, settings, addr, progress);
    let app = server
        .stop()
        .map_err(|e| format!("stopping the jobs server: {e}"))?
        .into_app();
    let (mut measured, cpu_before, cpu_after) = result?;
    let costs = app.costs();
    measured.updates = costs.updates;
    measured.server = *costs.of(way.pattern());
    measured.server_cpu = cpu_after
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(measured)
}

/// Submits the jobs, reads the CPU time, follows them all at once, reads it again.
fn follow_all(
    way: &Way,
    settings: &Settings,
    addr: SocketAddr,
    progress: &dyn Fn(usize),
) -> Result<(Measured, Option<Duration>, Option<Duration>), String> {
    // The run's limit: the job's ten steps, two pauses, and room to spare.
    let timeout = settings.step * 10 + way.interval * 2 + Duration::from_secs(30);
    let opts = Options {
        addr,
        mode: way.mode,
        interval: way.interval,
        wait_secs: way.wait_secs,
        timeout,
    };
    let deadline = Deadline::new(timeout);
    let submit_wire = Wire::default();
    let ids = (0..settings.jobs)
        .map(|_| submit(&opts, &submit_wire, deadline))
        .collect::<Result<Vec<String>, String>>()?;
    let cpu_before = server_cpu(addr, deadline)?;
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    let followed = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (opts, done) = (&opts, &done);
                s.spawn(move || {
                    let result = follow_one(id, opts);
                    done.fetch_add(1, Ordering::Relaxed);
                    result
                })
            })
            .collect();
        // Every follower ends by the run's limit; this waits a little longer.
        let tick = Duration::from_millis(50);
        let ticks = (timeout + Duration::from_secs(5)).as_millis() / tick.as_millis();
        for _ in 0..ticks {
            progress(done.load(Ordering::Relaxed));
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
            std::thread::sleep(tick);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a follower thread panicked".into()))
            })
            .collect::<Result<Vec<Followed>, String>>()
    })?;
    let took = start.elapsed();
    let cpu_after = server_cpu(addr, Deadline::new(Duration::from_secs(10)))?;
    let mut measured = Measured::new(way.clone(), settings.jobs, &followed);
    measured.took = took;
    Ok((measured, cpu_before, cpu_after))
}

// ---------------------------------------------------------------------------
// The report: a table, a CSV, a chart
// ---------------------------------------------------------------------------

/// Bytes in human units: `512 B`, `12.3 KiB`, `4.56 MiB`.
fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{:.2} MiB", f / KIB / KIB)
    }
}

/// The table: a header, then one line per way, columns aligned (the pattern's
/// name to the left, numbers to the right).
fn table(measured: &[Measured]) -> String {
    let header = [
        "pattern",
        "requests",
        "bytes c→s",
        "bytes s→c",
        "bytes/update",
        "req/update",
        "missed",
        "late p50",
        "late p99",
        "server CPU",
    ];
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    let rows: Vec<Vec<String>> = measured
        .iter()
        .map(|m| {
            let per = |v: f64, text: &dyn Fn(f64) -> String| {
                if v.is_finite() {
                    text(v)
                } else {
                    "-".to_string()
                }
            };
            vec![
                m.way.name.clone(),
                m.requests.to_string(),
                bytes(m.bytes_out),
                bytes(m.bytes_in),
                per(m.bytes_per_update(), &|v| bytes(v.round() as u64)),
                per(m.requests_per_update(), &|v| format!("{v:.2}")),
                format!("{} of {}", m.missed(), m.updates),
                ms(m.late(50)),
                ms(m.late(99)),
                m.server_cpu.map_or("-".to_string(), |d| Dur(d).to_string()),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let cells = std::iter::once(header.map(String::from).to_vec()).chain(rows);
    for row in cells {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            let w = widths[c];
            if c == 0 {
                let _ = write!(line, " {cell:<w$}");
            } else {
                let _ = write!(line, "  {cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The CSV: [`CSV_HEADER`], then one row per way.
fn csv(measured: &[Measured]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for m in measured {
        out.push_str(&m.csv_row());
        out.push('\n');
    }
    out
}

/// The charts, one above the other.
fn svg(measured: &[Measured], settings: &Settings) -> String {
    let categories: Vec<String> = measured.iter().map(|m| m.way.name.clone()).collect();
    let per = |f: &dyn Fn(&Measured) -> f64| measured.iter().map(f).collect::<Vec<f64>>();
    let late = |pct| per(&|m: &Measured| m.late(pct).map_or(f64::NAN, |v| v as f64));
    let made = measured.iter().map(|m| m.updates).max().unwrap_or(0);
    let charts = [
        BarChart {
            title: "Bytes on the wire per update seen".into(),
            unit: "bytes".into(),
            categories: categories.clone(),
            series: vec![
                Series::new(
                    "client → server",
                    per(&|m: &Measured| m.per_update(m.bytes_out as f64)),
                ),
                Series::new(
                    "server → client",
                    per(&|m: &Measured| m.per_update(m.bytes_in as f64)),
                ),
            ],
            log_scale: false,
        },
        BarChart {
            title: "Lateness of the updates seen (server's stamp to client's read)".into(),
            unit: "ms".into(),
            categories: categories.clone(),
            series: vec![Series::new("p50", late(50)), Series::new("p99", late(99))],
            log_scale: false,
        },
        BarChart {
            title: "Requests per update seen".into(),
            unit: "requests".into(),
            categories: categories.clone(),
            series: vec![Series::new(
                "requests",
                per(&|m: &Measured| m.requests_per_update()),
            )],
            log_scale: false,
        },
        BarChart {
            title: format!("Updates never seen, of the {made} made"),
            unit: "updates".into(),
            categories: categories.clone(),
            series: vec![Series::new(
                "missed",
                per(&|m: &Measured| m.missed() as f64),
            )],
            log_scale: false,
        },
        BarChart {
            title: "Server loop CPU time per update seen".into(),
            unit: "µs".into(),
            categories,
            series: vec![Series::new(
                "CPU",
                per(&|m: &Measured| {
                    m.server_cpu
                        .map_or(f64::NAN, |d| m.per_update(d.as_secs_f64() * 1e6))
                }),
            )],
            log_scale: false,
        },
    ];
    chart::stack(
        &format!(
            "{} jobs followed each way, an update every {} (compare_patterns)",
            settings.jobs,
            whole(settings.step)
        ),
        &charts,
    )
}

/// Writes the CSV and the SVG into `dir`; returns their paths.
fn write_files(
    dir: &Path,
    measured: &[Measured],
    settings: &Settings,
) -> Result<[PathBuf; 2], String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let csv_path = dir.join("compare_patterns.csv");
    let svg_path = dir.join("compare_patterns.svg");
    for (path, text) in [
        (&csv_path, csv(measured)),
        (&svg_path, svg(measured, settings)),
    ] {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok([csv_path, svg_path])
}

/// The progress line: jobs followed of all, and the way being followed.
fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {elapsed:>3} [{bar:25}] {pos}/{len} jobs  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Follows the jobs every way, one way at a time.
fn run_all(settings: &Settings, bar: &ProgressBar) -> Result<Vec<Measured>, String> {
    let mut measured = Vec::new();
    for (i, way) in ways(settings.step).iter().enumerate() {
        bar.set_message(way.name.clone());
        let base = (i * settings.jobs) as u64;
        measured.push(measure(way, settings, &|done| {
            bar.set_position(base + done as u64)
        })?);
    }
    Ok(measured)
}

fn run(settings: &Settings) -> Result<String, String> {
    let all = ways(settings.step);
    let bar = progress_bar((all.len() * settings.jobs) as u64);
    let measured = run_all(settings, &bar);
    bar.finish_and_clear();
    let measured = measured?;
    let [csv_path, svg_path] = write_files(&settings.out, &measured, settings)?;
    let mut out = format!(
        "{} jobs followed each way (10 updates each, one every {}), one way at a time, each \
         on a fresh jobs server:\n\n",
        settings.jobs,
        whole(settings.step)
    );
    out.push_str(&table(&measured));
    let _ = write!(
        out,
        "\n  bytes: what the clients' sockets wrote (c→s) and read (s→c), heads and framing \
         included\n  \
         bytes/update, req/update: both ways' bytes, and requests, per update seen\n  \
         missed: updates the server made that no client saw, apart from lateness\n  \
         late: from the server's stamp of an update to the client reading it (whole ms, \
         nearest rank)\n  \
         server CPU: the server loop thread's, while the jobs were followed\n\n\
         wrote {} and {}\n",
        csv_path.display(),
        svg_path.display()
    );
    Ok(out)
}

fn main() -> ExitCode {
    match support::parse_settings(&spec(), settings) {
        Ok((_, settings)) => support::finish(run(&settings)),
        Err(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_settings(jobs: usize, step_ms: u64) -> Settings {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jobs,
            step: Duration::from_millis(step_ms),
            out: PathBuf::new(),
            trace: false,
        }
    }

    fn way(mode: Mode) -> Way {
        Way::new(mode, Duration::ZERO)
    }

    #[test]
    fn sse_and_websocket_send_one_event_per_update() {
        let settings = test_settings(2, 30);
        for mode in [Mode::Sse, Mode::Ws] {
            let m = measure(&way(mode), &settings, &|_| {}).expect("followed");
            // 10 updates a job, made by the server, all seen, on one request each.
            assert_eq!(m.updates, 20, "{mode:?}");
            assert_eq!((m.seen, m.missed()), (20, 0), "{mode:?}");
            assert_eq!(m.requests, 2, "{mode:?}");
            // One event per update, and one for 0% when the stream opens: none
            // repeats, and the server says it sent as many.
            assert_eq!(m.answers, 2 * (10 + 1), "{mode:?}");
            assert_eq!(m.repeats(), 0, "{mode:?}");
            assert_eq!(m.server.events_sent, m.answers, "{mode:?}");
            assert_eq!(m.late_ms.len(), 20, "every update is stamped");
        }
    }

    #[test]
    fn long_polling_makes_one_request_per_update_plus_timeouts() {
        // A wait (1 s) shorter than the step (1.5 s): most updates need a second
        // request, after the first one's wait ran out.
        let settings = test_settings(1, 1500);
        let mut long = way(Mode::Long);
        long.wait_secs = 1;
        let m = measure(&long, &settings, &|_| {}).expect("followed");
        assert_eq!((m.updates, m.seen, m.missed()), (10, 10, 0));
        // Every answer is news or a wait that ran out; the client counts the
        // latter as repeats, the server as timeouts, and they agree.
        let timeouts = m.repeats();
        assert_eq!(timeouts, m.server.timed_out);
        assert!(timeouts >= 1, "a 1 s wait runs out within a 1.5 s step");
        // The first request learns the current progress (a plain poll); then one
        // per update, and one more per wait that ran out.
        assert_eq!(m.requests, 1 + m.seen + timeouts);
        assert_eq!(
            m.server.requests,
            m.requests - 1,
            "the first is a short poll"
        );
    }

    #[test]
    fn short_polling_slower_than_the_step_misses_updates_and_counts_them() {
        // A poll every 150 ms, an update every 40 ms: a job's 10 updates take
        // 400 ms, in which a client polls about 3 times, so most updates are
        // replaced before a poll can see them.
        let settings = test_settings(2, 40);
        let short = Way::new(Mode::Short, Duration::from_millis(150));
        let m = measure(&short, &settings, &|_| {}).expect("followed");
        assert_eq!(m.updates, 20, "the server made 10 updates a job");
        assert!(m.seen >= 2, "each client sees 100% at least");
        assert!(m.seen < m.updates, "{} seen of {}", m.seen, m.updates);
        // What was not seen is missed, and only that: seen counts distinct
        // progress values (a repeat is not an update).
        assert_eq!(m.missed(), m.updates - m.seen);
        assert_eq!(m.late_ms.len() as u64, m.seen);
        // Every poll was answered; the answers with nothing new are repeats.
        assert_eq!(m.answers, m.requests);
        assert_eq!(m.repeats(), m.answers - m.news);
        assert_eq!(m.server.requests, m.requests);
    }

    #[test]
    fn missed_and_lateness_from_what_clients_saw() {
        let followed = [
            Followed {
                requests: 4,
                answers: 4,
                seen: vec![(0, Some(3)), (30, Some(120)), (100, Some(5))],
                ..Followed::default()
            },
            Followed {
                requests: 3,
                answers: 3,
                seen: vec![(20, Some(-2)), (100, Some(40))],
                ..Followed::default()
            },
        ];
        let mut m = Measured::new(way(Mode::Short), 2, &followed);
        m.updates = 20;
        // 0% is no update: 4 seen of 20, 16 missed.
        assert_eq!((m.seen, m.missed()), (4, 16));
        assert_eq!(m.news, 5);
        assert_eq!(m.repeats(), 2);
        // Lateness of the updates only, a stamp ahead of the clock as 0.
        assert_eq!(m.late_ms, [0, 5, 40, 120]);
        assert_eq!((m.late(50), m.late(99)), (Some(5), Some(120)));
        assert_eq!(m.requests_per_update(), 7.0 / 4.0);
        let none = Measured::new(way(Mode::Sse), 1, &[Followed::default()]);
        assert!(none.requests_per_update().is_nan());
        assert_eq!(none.late(50), None);
    }

    #[test]
    fn every_way_once_writes_one_csv_row_per_pattern() {
        let dir = std::env::temp_dir().join(format!(
            "compare_patterns_test_{}_{}",
            std::process::id(),
            support::Rng::seeded().next()
        ));
        let mut settings = test_settings(1, 20);
        settings.out = dir.clone();
        let measured = run_all(&settings, &ProgressBar::hidden()).expect("every way");
        let [csv_path, svg_path] = write_files(&dir, &measured, &settings).expect("written");
        let text = std::fs::read_to_string(&csv_path).expect("the CSV");
        let svg_text = std::fs::read_to_string(&svg_path).expect("the SVG");
        let _ = std::fs::remove_dir_all(&dir);

        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let columns = CSV_HEADER.split(',').count();
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let names: Vec<String> = ways(settings.step).into_iter().map(|w| w.name).collect();
        assert_eq!(
            rows.iter().map(|r| r[0].to_string()).collect::<Vec<_>>(),
            names
        );
        assert_eq!(
            names,
            [
                "short poll 10 ms",
                "short poll 50 ms",
                "short poll 200 ms",
                "long poll",
                "SSE",
                "WebSocket"
            ]
        );
        let num = |row: &[&str], name: &str| -> u64 {
            let i = CSV_HEADER.split(',').position(|c| c == name).unwrap();
            row[i].parse().unwrap()
        };
        for row in &rows {
            assert_eq!(row.len(), columns, "{row:?}");
            // Every job made its 10 updates, and whatever was not seen was missed.
            assert_eq!(num(row, "updates"), 10, "{row:?}");
            assert_eq!(num(row, "updates_seen") + num(row, "updates_missed"), 10);
            assert!(num(row, "requests") >= 1 && num(row, "bytes_server_to_client") > 0);
        }
        // Long polling and push miss nothing, and every answer is news.
        for row in &rows[3..] {
            assert_eq!(num(row, "updates_missed"), 0, "{row:?}");
            assert_eq!(num(row, "answers_without_news"), 0, "{row:?}");
        }
        // The chart names every way.
        assert!(svg_text.starts_with("<?xml") && svg_text.ends_with("</svg>\n"));
        for name in &names {
            assert!(svg_text.contains(&format!(">{name}</text>")), "{name}");
        }
    }

    #[test]
    fn the_table_lines_up() {
        let mut m = Measured::new(
            way(Mode::Sse),
            1,
            &[Followed {
                requests: 1,
                answers: 11,
                bytes_out: 123,
                bytes_in: 2048,
                seen: (0..=10).map(|i| (i * 10, Some(1))).collect(),
                ..Followed::default()
            }],
        );
        m.updates = 10;
        m.server_cpu = Some(Duration::from_micros(1500));
        let mut short = Measured::new(Way::new(Mode::Short, Duration::from_secs(2)), 1, &[]);
        short.updates = 10;
        let text = table(&[m, short]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "  pattern         requests  bytes c→s  bytes s→c  bytes/update  req/update    \
             missed  late p50  late p99  server CPU"
        );
        assert_eq!(
            lines[1],
            "  SSE                    1      123 B    2.0 KiB         217 B        0.10   \
             0 of 10      1 ms      1 ms     1.50 ms"
        );
        assert_eq!(
            lines[2],
            "  short poll 2 s         0        0 B        0 B             -           -  \
             10 of 10         -         -           -"
        );
        // Every line is as wide as the header (columns end at the same place).
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
    }

    #[test]
    fn short_polling_intervals_scale_with_the_step() {
        let names: Vec<String> = ways(Duration::from_millis(200))
            .into_iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(
            names,
            [
                "short poll 100 ms",
                "short poll 500 ms",
                "short poll 2 s",
                "long poll",
                "SSE",
                "WebSocket"
            ]
        );
        assert_eq!(whole(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(csv_field("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.00 MiB");
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        match spec().parse(args.iter().map(|s| s.to_string())) {
            Ok(wirepatterns::cli::Parsed::Run(args)) => settings(&args),
            Ok(wirepatterns::cli::Parsed::Help(_)) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn command_line() {
        let s = parse(&[]).unwrap();
        assert_eq!(
            (s.jobs, s.step, s.out.clone()),
            (
                20,
                Duration::from_millis(200),
                PathBuf::from("target/compare_patterns")
            )
        );
        assert_eq!(s.addr.port(), 0);
        let s = parse(&["--jobs", "3", "--step-ms=50", "--out", "/tmp/x"]).unwrap();
        assert_eq!(
            (s.jobs, s.step, s.out),
            (3, Duration::from_millis(50), PathBuf::from("/tmp/x"))
        );
        for (args, says) in [
            (&["--jobs", "0"][..], "--jobs 0"),
            (&["--jobs", "1001"], "--jobs 1001"),
            (&["--step-ms", "1"], "--step-ms 1"),
            (&["--step-ms", "60001"], "--step-ms 60001"),
            (&["--out", ""], "--out"),
            (&["--mode", "sse"], "unknown flag --mode"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err(), "help");
    }
}
