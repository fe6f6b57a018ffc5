//! Push vs pull publish/subscribe through Redis, side by side.
//!
//! ```sh
//! redis-server --port 6379 --save "" &
//! cargo run --example pubsub
//! cargo run --example pubsub -- --mode pull --messages 600 --interval-ms 5 --away-ms 2000 --cap 100
//! ```
//!
//! A publisher sends numbered messages, one every `--interval-ms`; a subscriber
//! receives them, leaves for `--away-ms` after about a third of them, and comes
//! back. Three rows, each on a fresh channel or stream:
//!
//! - `push`: `PUBLISH`/`SUBSCRIBE`. What is published while the subscriber is
//!   away is lost, and nobody tells it.
//! - `pull`: a Redis stream, `XADD` and `XREAD BLOCK` from the subscriber's last
//!   id (Kafka's long poll; the id is its offset). It resumes where it was:
//!   nothing lost, nothing twice, only late.
//! - `pull-beyond-cap`: the same stream trimmed to exactly `--cap` entries,
//!   fewer than are published while the subscriber is away: it is told how many
//!   it missed (as Kafka's consumer is told "offset out of range").
//!
//! Flags: `--redis HOST:PORT` (default 127.0.0.1:6379; `--addr` says the same),
//! `--mode push|pull|both` (default both; `pull` runs both pull rows),
//! `--messages N` (default 300, at least 3), `--interval-ms MS` (default 10),
//! `--away-ms MS` (default 1000), `--cap N` (the `pull-beyond-cap` row's stream
//! cap, default 50, at least 1), `--help`. A value that makes no sense exits 2
//! with the usage. If Redis cannot be reached the program says how to start
//! one and exits 1.
//!
//! It prints one aligned table, what it teaches, and a `RESULT ...` line per
//! row for scripts. The behaviour lives in `wirepatterns::patterns::pubsub`,
//! run on the crate's own event loop; this file is flags, printing and wiring.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use wirepatterns::cli::{self, Args, Spec};
use wirepatterns::patterns::pubsub::{LabConfig, Mode, PubSubLab, PubSubReport};
use wirepatterns::resp::command::MaxLen;

#[path = "support/mod.rs"]
mod support;

/// The rows to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    Push,
    Pull,
    Both,
}

/// What the flags ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    redis: SocketAddr,
    rows: Rows,
    messages: u64,
    interval: Duration,
    away: Duration,
    cap: u64,
}

fn spec() -> Spec {
    Spec::client(
        "pubsub",
        "pubsub: push (PUBLISH/SUBSCRIBE) vs pull (a Redis stream, XREAD BLOCK from the \
         last id) pub/sub, side by side: a subscriber leaves for a while and comes back; \
         the table says what it lost, got twice, was told, and how late it was.",
        "127.0.0.1:6379",
    )
    .option(
        "--redis",
        "HOST:PORT",
        "Redis (same as --addr; default 127.0.0.1:6379)",
    )
    .option(
        "--mode",
        "push|pull|both",
        "the rows: push, the two pull rows, or all three (default both)",
    )
    .option(
        "--messages",
        "N",
        "messages published per row (default 300; at least 3)",
    )
    .option(
        "--interval-ms",
        "MS",
        "time between two publishes (default 10)",
    )
    .option(
        "--away-ms",
        "MS",
        "how long the subscriber stays away after a third of the messages (default 1000)",
    )
    .option(
        "--cap",
        "N",
        "the pull-beyond-cap row's stream keeps exactly N entries (default 50; at least 1)",
    )
}

/// The settings from parsed flags; `Err` is a message for the usage error.
fn settings(args: &Args) -> Result<Settings, String> {
    let redis = match args.value("--redis") {
        Some(text) => cli::socket_addr("--redis", text).map_err(|e| e.to_string())?,
        None => args.addr,
    };
    let rows = match args.value("--mode") {
        None | Some("both") => Rows::Both,
        Some("push") => Rows::Push,
        Some("pull") => Rows::Pull,
        Some(other) => return Err(format!("--mode {other}: expected push, pull or both")),
    };
    let number = |name: &'static str, min: u64, max: u64, default: u64| -> Result<u64, String> {
        let n = args
            .at_least(name, min)
            .map_err(|e| e.to_string())?
            .unwrap_or(default);
        if n > max {
            return Err(format!("{name} {n}: at most {max}"));
        }
        Ok(n)
    };
    Ok(Settings {
        redis,
        rows,
        messages: number("--messages", 3, 1_000_000, 300)?,
        interval: Duration::from_millis(number("--interval-ms", 0, 60_000, 10)?),
        away: Duration::from_millis(number("--away-ms", 0, 600_000, 1000)?),
        cap: number("--cap", 1, 10_000_000, 50)?,
    })
}

/// The rows' configurations, in the order they run.
fn configs(s: &Settings) -> Vec<LabConfig> {
    let tune = |config: LabConfig| LabConfig {
        interval: s.interval,
        away: s.away,
        ..config.with_messages(s.messages)
    };
    let mut rows = Vec::new();
    if s.rows != Rows::Pull {
        rows.push(tune(LabConfig::push(s.redis)));
    }
    if s.rows != Rows::Push {
        rows.push(tune(LabConfig::pull(s.redis)));
        rows.push(tune(LabConfig::pull_beyond_cap(s.redis, s.cap)));
    }
    rows
}

/// Milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// How the row's stream is trimmed.
fn trim(r: &PubSubReport) -> String {
    match r.maxlen {
        None => "-".into(),
        Some(MaxLen::About(n)) => format!("MAXLEN ~ {n}"),
        Some(MaxLen::Exact(n)) => format!("MAXLEN = {n}"),
    }
}

/// What the subscriber was told.
fn told(r: &PubSubReport) -> String {
    if r.gap_told() {
        format!("yes, {}", r.told_missing())
    } else {
        "no".into()
    }
}

/// The table, the lessons and the RESULT lines.
fn report(s: &Settings, reports: &[PubSubReport]) -> String {
    let mut out = String::new();
    let leave = (s.messages / 3).max(1);
    let _ = writeln!(
        out,
        "Redis at {}: {} messages per row, one every {} ms; the subscriber leaves after \
         message {leave} for {} ms\n",
        s.redis,
        s.messages,
        s.interval.as_millis(),
        s.away.as_millis()
    );
    let header = [
        "row",
        "trim",
        "published",
        "while away",
        "received",
        "lost",
        "twice",
        "gap told",
        "p50 ms",
        "p99 ms",
        "max ms",
    ];
    let rows: Vec<[String; 11]> = reports
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                trim(r),
                r.published.to_string(),
                r.published_while_away.to_string(),
                r.received.to_string(),
                r.lost.to_string(),
                r.duplicates.to_string(),
                told(r),
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.max),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names left-aligned, numbers right-aligned.
            if matches!(i, 0 | 1 | 7) {
                let _ = write!(text, "{cell:<w$}  ");
            } else {
                let _ = write!(text, "{cell:>w$}  ");
            }
        }
        text.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    let _ = writeln!(out);
    for r in reports {
        let _ = writeln!(out, "{}", wrap(&lesson(r, s), 96));
    }
    let _ = writeln!(out);
    for r in reports {
        let _ = writeln!(
            out,
            "RESULT mode={} published={} received={} lost={} duplicates={} gap_told={} \
             told_missing={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3}",
            r.name,
            r.published,
            r.received,
            r.lost,
            r.duplicates,
            if r.gap_told() { "yes" } else { "no" },
            r.told_missing(),
            r.latency.p50.as_secs_f64() * 1000.0,
            r.latency.p99.as_secs_f64() * 1000.0,
            r.latency.max.as_secs_f64() * 1000.0,
        );
    }
    out
}

/// `text` cut into lines of at most `width` characters at spaces, the lines
/// after the first indented by two.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push_str("\n  ");
            line_len = 2;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

/// What a row teaches, from its numbers.
fn lesson(r: &PubSubReport, s: &Settings) -> String {
    match (r.mode, r.maxlen) {
        (Mode::Push, _) => format!(
            "{}: delivered to whoever is connected now. {} messages never reached the \
             subscriber ({} were published while it was away), and nothing told it so: \
             only the publisher could have noticed, in PUBLISH's count of receivers (0 for \
             {} of them). \"We have no idea what happened to the pushed data.\"",
            r.name, r.lost, r.published_while_away, r.published_to_nobody
        ),
        (Mode::Pull, Some(MaxLen::Exact(cap))) if r.gap_told() => format!(
            "{}: the stream kept only its newest {cap}; on coming back, XINFO STREAM put \
             the stream's start (entries-added - length) past the subscriber's offset: it \
             was told {} missing, and {} were lost. Told, not silent: Kafka's \
             \"offset out of range\".",
            r.name,
            r.told_missing(),
            r.lost
        ),
        (Mode::Pull, _) => format!(
            "{}: resumes from its cursor (its last id): {} lost, {} received twice; what was \
             published while it was away came late (max {} ms for {} ms away), not never. \
             Within the cap{}.",
            r.name,
            r.lost,
            r.duplicates,
            ms(r.latency.max),
            s.away.as_millis(),
            if r.gap_told() {
                format!(" only: it was told of {} missing", r.told_missing())
            } else {
                String::new()
            }
        ),
    }
}

fn main() -> ExitCode {
    let spec = spec();
    let (_, settings) = match support::parse_settings(&spec, settings) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut reports = Vec::new();
    for config in configs(&settings) {
        match PubSubLab::run(config) {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    print!("{}", report(&settings, &reports));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirepatterns::cli::Parsed;

    fn parse(args: &[&str]) -> Result<Settings, String> {
        match spec().parse(args.iter().map(|s| s.to_string())) {
            Ok(Parsed::Run(args)) => settings(&args),
            Ok(Parsed::Help(_)) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn defaults_run_three_rows_on_the_local_redis() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.redis, "127.0.0.1:6379".parse().unwrap());
        assert_eq!((s.rows, s.messages, s.cap), (Rows::Both, 300, 50));
        let names: Vec<String> = configs(&s).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["push", "pull", "pull-beyond-cap"]);
    }

    #[test]
    fn lessons_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\n  cc");
        assert_eq!(wrap("aaaaaaa b", 5), "aaaaaaa\n  b");
        assert_eq!(wrap("a", 5), "a");
    }

    #[test]
    fn flags_are_read_and_checked() {
        let s = parse(&["--redis", "127.0.0.1:7000", "--mode", "pull", "--cap", "5"]).unwrap();
        assert_eq!(s.redis.port(), 7000);
        let configs = configs(&s);
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[1].maxlen, MaxLen::Exact(5));
        assert!(
            parse(&["--mode", "sideways"])
                .unwrap_err()
                .contains("--mode")
        );
        assert!(
            parse(&["--messages", "2"])
                .unwrap_err()
                .contains("at least 3")
        );
        assert!(parse(&["--cap", "0"]).unwrap_err().contains("--cap"));
        assert!(
            parse(&["--redis", "nowhere"])
                .unwrap_err()
                .contains("--redis")
        );
    }
}
