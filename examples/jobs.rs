//! The notes' polling server: long-running jobs, followed by short polling, long
//! polling, Server-Sent Events and WebSocket, with a lab page that races them.
//!
//! ```sh
//! cargo run --example jobs
//! # then open http://127.0.0.1:8080/ and press "Submit a job", or with curl:
//! curl -X POST http://127.0.0.1:8080/submit                          # job:1764480000000
//! curl 'http://127.0.0.1:8080/checkstatus?jobId=job:1764480000000'   # JobStatus: 10%
//! curl 'http://127.0.0.1:8080/checkstatus?jobId=job:1764480000000&wait=30&since=10'
//! curl -N 'http://127.0.0.1:8080/events?jobId=job:1764480000000'     # an event per step
//! curl http://127.0.0.1:8080/stats                                  # what each pattern cost
//! ```
//!
//! As the seed's express server: `POST /submit` answers at once with a handle,
//! and the job advances 10% every `--step-ms` (3000) until 100%; `GET
//! /checkstatus?jobId=ID` answers `JobStatus: N%`. Beyond the seed: a long poll
//! (`&wait=SECS&since=N`, held until the progress passes N), an SSE stream
//! (`GET /events?jobId=ID`), a WebSocket (`ws://ADDR/jobs?jobId=ID`), the lab page
//! at `GET /`, and the server's costs per pattern at `GET /stats`. The behaviour
//! lives in `wirepatterns::patterns::polling`; this file is flags, printing and
//! wiring.
//!
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:8080; port 0 picks a free port),
//! `--step-ms MS` (time per 10% step, default 3000), `--keep-secs SECS` (how long a
//! finished job is kept before it is forgotten: 404; default 600),
//! `--max-jobs N` (jobs held at once, finished ones included; more submits get 503
//! with Retry-After; default 100000), `--max-wait SECS` (the longest a long poll
//! is held, default 30), `--heartbeat-secs SECS` (a comment on a quiet event
//! stream this often, default 15; 0: never), `--max-connections N` (default
//! 10000), `--store FILE` (keep the jobs in an append-only file, so that a
//! restarted server still answers for every handle it gave out), `--trace` (a line
//! for every request, held request, wake-up, event and departure, with its cost).
//! Ctrl-C stops it gracefully and prints the server's totals and the costs per
//! pattern.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wirepatterns::cli::{Args, CliError, Spec};
use wirepatterns::patterns::polling::{JobsApp, JobsConfig, JobsReport};
use wirepatterns::patterns::websocket::{WsConfig, WsServer};
use wirepatterns::server::Config;

#[path = "support/mod.rs"]
mod support;

fn main() -> ExitCode {
    let spec = spec();
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (jobs_config, config) = match configs(&args) {
        Ok(configs) => configs,
        Err(e) => return support::usage_error(&spec, &e),
    };

    let mut app = match JobsApp::new(jobs_config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(replayed) = app.replayed() {
        if let Some(warning) = replayed.warning() {
            eprintln!("{warning}");
        }
        println!("{replayed}");
    }
    let start = Instant::now();
    let trace = args.trace;
    app.set_observer(start, trace, move |report| {
        let mut out = std::io::stdout().lock();
        match report {
            JobsReport::Line(line) if trace => {
                let _ = writeln!(out, "{line}");
            }
            JobsReport::Line(_) => {}
            JobsReport::Warning(text) => eprintln!("warning: {text}"),
            // Printed once the server has stopped (below), so that the answers
            // written during the shutdown are counted too.
            JobsReport::Costs(_) => {}
        }
        let _ = out.flush();
    });
    let mut server = WsServer::new(WsConfig::default(), app);
    if trace {
        server.set_observer(move |event| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", event.trace_line(start));
            let _ = out.flush();
        });
    }
    support::serve_then(config, server, |server, out| {
        let _ = writeln!(out, "costs per pattern:");
        for line in server.app().costs().to_string().lines() {
            let _ = writeln!(out, "  {line}");
        }
    })
}

fn spec() -> Spec {
    Spec::new(
        "jobs",
        "The seed's job server: POST /submit, then follow the job by short polling, long \
         polling, Server-Sent Events or WebSocket. GET / serves a page that races all four.",
        "127.0.0.1:8080",
    )
    .option("--step-ms", "MS", "time per 10% step (default 3000; at least 1)")
    .option(
        "--keep-secs",
        "SECS",
        "keep a finished job this long, then forget it: 404 (default 600)",
    )
    .option(
        "--max-jobs",
        "N",
        "jobs held at once, finished ones included; more submits get 503 (default 100000; at least 1)",
    )
    .option(
        "--max-wait",
        "SECS",
        "the longest a long poll is held, whatever its wait= (default 30)",
    )
    .option(
        "--heartbeat-secs",
        "SECS",
        "a comment on a quiet event stream this often (default 15; 0: never)",
    )
    .option(
        "--max-connections",
        "N",
        "most connections open at once; more are refused with 503 (default 10000; at least 1)",
    )
    .option(
        "--store",
        "FILE",
        "keep the jobs in this append-only file: a restart answers for every handle given out",
    )
}

/// The server's settings from the flags; a value that makes no sense is refused.
fn configs(args: &Args) -> Result<(JobsConfig, Config), CliError> {
    let mut jobs = JobsConfig::default();
    if let Some(ms) = args.at_least("--step-ms", 1u64)? {
        jobs.jobs.step = Duration::from_millis(ms);
    }
    if let Some(keep) = args.seconds("--keep-secs")? {
        jobs.jobs.keep = keep;
    }
    if let Some(max) = args.at_least("--max-jobs", 1usize)? {
        jobs.jobs.max_jobs = max;
    }
    if let Some(wait) = args.seconds("--max-wait")? {
        jobs.max_wait = wait;
    }
    if let Some(every) = args.seconds("--heartbeat-secs")? {
        jobs.heartbeat = (!every.is_zero()).then_some(every);
    }
    jobs.store = args.value("--store").map(PathBuf::from);
    let mut config = Config::new(args.addr);
    if let Some(max) = args.at_least("--max-connections", 1)? {
        config.max_connections = max;
    }
    // A held long poll must outlive its wait: the driver's idle timeout would
    // otherwise cut it first.
    config.idle_timeout = config
        .idle_timeout
        .max(jobs.max_wait + Duration::from_secs(5));
    Ok((jobs, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirepatterns::cli::Parsed;

    fn parse(args: &[&str]) -> Result<(JobsConfig, Config), CliError> {
        match spec().parse(args.iter().map(|a| a.to_string()))? {
            Parsed::Run(args) => configs(&args),
            Parsed::Help(_) => panic!("help"),
        }
    }

    #[test]
    fn flags_set_the_store_and_the_server() {
        let Ok((jobs, _)) = parse(&[
            "--step-ms",
            "250",
            "--keep-secs",
            "5",
            "--max-jobs",
            "7",
            "--max-wait",
            "90",
            "--heartbeat-secs",
            "0",
            "--store",
            "/tmp/jobs.store",
        ]) else {
            panic!("refused")
        };
        assert_eq!(jobs.jobs.step, Duration::from_millis(250));
        assert_eq!(jobs.jobs.keep, Duration::from_secs(5));
        assert_eq!(jobs.jobs.max_jobs, 7);
        assert_eq!(jobs.max_wait, Duration::from_secs(90));
        assert_eq!(jobs.heartbeat, None);
        assert_eq!(jobs.store, Some(PathBuf::from("/tmp/jobs.store")));
    }

    #[test]
    fn values_that_make_no_sense_are_refused() {
        let refused = |args: &[&str]| match parse(args) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{args:?} accepted"),
        };
        assert_eq!(
            refused(&["--step-ms", "0"]),
            "--step-ms 0: must be at least 1"
        );
        assert_eq!(
            refused(&["--max-jobs", "0"]),
            "--max-jobs 0: must be at least 1"
        );
        assert!(refused(&["--max-wait", "-1"]).contains("must be a number of seconds"));
        assert!(refused(&["--keep-secs", "soon"]).contains("not a valid value"));
    }
}
