//! redis_load: how many messages a second go through Redis, push and pull, on
//! the crate's own RESP core and loop, to set beside `redis-benchmark`.
//!
//! ```sh
//! redis-server --port 6379 --save "" &
//! cargo run --release --example redis_load -- --addr 127.0.0.1:6379 --mode both --messages 200000 --pipeline 16
//! ```
//!
//! Two connections to Redis on one `wirepatterns` loop
//! ([`wirepatterns::resp::RespLink`]): one writes, one reads.
//!
//! - **publish** (push): the reader `SUBSCRIBE`s to a fresh channel; the writer
//!   sends `PUBLISH channel <payload>`. A message counts when the subscriber
//!   has it.
//! - **xadd** (pull): the writer sends `XADD key MAXLEN ~ N * m <payload>` to a
//!   fresh stream; the reader loops `XREAD COUNT 10000 BLOCK 2000 STREAMS key
//!   <last id>` from `0-0`. A message counts when the reader has its entry.
//!
//! The writer keeps at most `--pipeline` commands unanswered (1: one round
//! trip per message; 16: a window of 16, as `redis-benchmark -P 16`), writing
//! what the window allows once per turn of the loop. The rate is messages over
//! the time from the first send to the last message read, end to end through
//! Redis, not the writer's rate alone.
//!
//! Flags: `--addr HOST:PORT` (Redis, default 127.0.0.1:6379), `--mode
//! publish|xadd|both` (both), `--messages N` (200000), `--pipeline P` (16),
//! `--payload BYTES` (64), `--redis-pid PID` (also report Redis's CPU time per
//! message, from `/proc/PID/task/*/schedstat`), `--help`. The client's CPU time is
//! this process's, read the same way. It prints a table and one
//! `RESULT mode=... msgs_per_s=... client_cpu_us_per_msg=... redis_cpu_us_per_msg=...`
//! line per mode. Exit 1 if Redis cannot be reached or a run does not finish
//! within 60 s.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wirepatterns::cli::{Args, CliError, Spec};
use wirepatterns::resp::{LinkConfig, LinkEvent, PubSub, RespLink, Value, command, pubsub, xread};
use wirepatterns::server::{
    Config, Context, Handler, Incoming, OutEnd, OutId, Reply, Server, TimerId,
};

#[path = "support/mod.rs"]
mod support;

/// Which way messages go through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PUBLISH / SUBSCRIBE.
    Publish,
    /// XADD / XREAD.
    Xadd,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Publish => "publish",
            Mode::Xadd => "xadd",
        }
    }
}

/// One run's settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    redis: SocketAddr,
    messages: u64,
    pipeline: u64,
    payload: usize,
    redis_pid: Option<u32>,
}

/// Reply tags.
const TAG_WRITE: u64 = 1;
const TAG_READ: u64 = 2;
const TAG_SETUP: u64 = 3;
/// Timer data of the run's deadline.
const DEADLINE: u64 = 7;

/// One run, on the loop.
struct Load {
    mode: Mode,
    settings: Settings,
    payload: Vec<u8>,
    /// The channel or stream key, fresh per run.
    key: Vec<u8>,
    writer: RespLink,
    reader: RespLink,
    events: Vec<LinkEvent>,
    /// The key was deleted (xadd) / the subscription is live (publish).
    writer_ready: bool,
    reader_ready: bool,
    sent: u64,
    acked: u64,
    received: u64,
    /// The last stream id read.
    last_id: Vec<u8>,
    started: Option<Instant>,
    finished: Option<Instant>,
    error: Option<String>,
    done: Arc<AtomicBool>,
}

impl Load {
    fn new(mode: Mode, settings: Settings, done: Arc<AtomicBool>) -> Load {
        let mut reader_config = LinkConfig::new(settings.redis);
        reader_config.subscriber = mode == Mode::Publish;
        // A benchmark does not retry: a lost connection ends the run.
        let key = format!(
            "wirepatterns:redis_load:{}:{}",
            mode.name(),
            std::process::id()
        );
        Load {
            mode,
            settings,
            payload: vec![b'x'; settings.payload],
            key: key.into_bytes(),
            writer: RespLink::new(LinkConfig::new(settings.redis), 1),
            reader: RespLink::new(reader_config, 2),
            events: Vec::new(),
            writer_ready: false,
            reader_ready: false,
            sent: 0,
            acked: 0,
            received: 0,
            last_id: b"0-0".to_vec(),
            started: None,
            finished: None,
            error: None,
            done,
        }
    }

    fn stop(&mut self, ctx: &mut Context<'_>, error: Option<String>) {
        if self.error.is_none() {
            self.error = error;
        }
        self.writer.stop(ctx);
        self.reader.stop(ctx);
        self.done.store(true, Ordering::SeqCst);
    }

    /// Sends what the pipeline window allows.
    fn fill(&mut self) {
        if !(self.writer_ready && self.reader_ready) {
            return;
        }
        let now = Instant::now();
        self.started.get_or_insert(now);
        while self.sent < self.settings.messages && self.sent - self.acked < self.settings.pipeline
        {
            let (key, payload, cap) = (&self.key, &self.payload, self.settings.messages);
            let mode = self.mode;
            self.writer.command(Some(TAG_WRITE), |out| match mode {
                Mode::Publish => command::publish(out, key, payload),
                Mode::Xadd => command::xadd(out, key, Some(cap), b"*", &[(b"m", payload)]),
            });
            self.sent += 1;
        }
    }

    fn read_more(&mut self) {
        let (key, id) = (&self.key, &self.last_id);
        self.reader.command(Some(TAG_READ), |out| {
            command::xread(out, Some(10_000), Some(2000), &[(key, id)]);
        });
    }

    /// The reader is up: subscribe, or start reading the stream.
    fn reader_up(&mut self) {
        match self.mode {
            Mode::Publish => {
                let key = &self.key;
                self.reader
                    .command(None, |buf| command::subscribe(buf, &[key]));
            }
            Mode::Xadd => {
                self.reader_ready = true;
                self.read_more();
            }
        }
    }

    fn handle(&mut self, ctx: &mut Context<'_>) {
        let events = std::mem::take(&mut self.events);
        for event in &events {
            match event {
                LinkEvent::Up => {}
                LinkEvent::Down { end, .. } => {
                    let why = format!("the connection to Redis at {} {end}", self.settings.redis);
                    self.stop(ctx, Some(why));
                }
                LinkEvent::Broken(why) => self.stop(ctx, Some(format!("Redis: {why}"))),
                LinkEvent::Reply { tag, value } => self.reply(ctx, *tag, value),
                LinkEvent::Push(value) => {
                    if let Some(PubSub::Subscribe { .. }) = pubsub(value) {
                        self.reader_ready = true;
                    } else if let Some(PubSub::Message { .. }) = pubsub(value) {
                        self.count(1);
                    }
                }
            }
        }
        self.events = events;
        self.events.clear();
        self.fill();
        if self.finished.is_some() && self.error.is_none() && !self.done.load(Ordering::SeqCst) {
            self.stop(ctx, None);
        }
    }

    fn reply(&mut self, ctx: &mut Context<'_>, tag: u64, value: &Value) {
        if let Some(error) = value.as_error() {
            let why = format!(
                "Redis refused a command: {}",
                String::from_utf8_lossy(error)
            );
            return self.stop(ctx, Some(why));
        }
        match tag {
            TAG_SETUP => self.writer_ready = true,
            TAG_WRITE => self.acked += 1,
            TAG_READ => {
                if let Some(streams) = xread(value) {
                    for stream in streams {
                        if let Some(last) = stream.entries.last() {
                            self.last_id = last.id.to_vec();
                        }
                        self.count(stream.entries.len() as u64);
                    }
                }
                if self.received < self.settings.messages {
                    self.read_more();
                }
            }
            _ => {}
        }
    }

    fn count(&mut self, n: u64) {
        self.received += n;
        if self.received >= self.settings.messages && self.finished.is_none() {
            self.finished = Some(Instant::now());
        }
    }
}

impl Handler for Load {
    fn on_request(
        &mut self,
        _: &mut Context<'_>,
        _: &Incoming<'_>,
        _: &mut wirepatterns::http::Response,
    ) -> Reply {
        Reply::Respond
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.writer.start(ctx);
        self.reader.start(ctx);
        ctx.set_timer(Duration::from_secs(60), DEADLINE);
    }

    fn on_out_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        // Each link greets Redis; it is up (LinkEvent::Up) when Redis answers.
        if !self.writer.on_connected(ctx, out) {
            self.reader.on_connected(ctx, out);
        }
    }

    fn on_out_data(&mut self, ctx: &mut Context<'_>, out: OutId, data: &[u8]) {
        let mut events = std::mem::take(&mut self.events);
        if self.reader.on_data(ctx, out, data, &mut events) {
            if events.contains(&LinkEvent::Up) {
                self.reader_up();
            }
        } else if self.writer.on_data(ctx, out, data, &mut events)
            && events.contains(&LinkEvent::Up)
        {
            let key = &self.key;
            // A fresh key: what an earlier run left must not count.
            self.writer.command(Some(TAG_SETUP), |buf| {
                command::write_command(buf, &[b"DEL", key]);
            });
        }
        self.events = events;
        self.handle(ctx);
    }

    fn on_out_closed(&mut self, ctx: &mut Context<'_>, out: OutId, end: OutEnd) {
        let down = self
            .writer
            .on_closed(ctx, out, end)
            .or_else(|| self.reader.on_closed(ctx, out, end));
        if down.is_some() && !self.done.load(Ordering::SeqCst) {
            let why = if self.writer.stats().connects == 0 || self.reader.stats().connects == 0 {
                format!(
                    "cannot reach Redis at {} ({end}); start one: redis-server --port {} --save \"\"",
                    self.settings.redis,
                    self.settings.redis.port()
                )
            } else {
                format!("the connection to Redis at {} {end}", self.settings.redis)
            };
            self.stop(ctx, Some(why));
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, data: u64) {
        if self.writer.on_timer(ctx, timer) || self.reader.on_timer(ctx, timer) {
            return;
        }
        if data == DEADLINE && !self.done.load(Ordering::SeqCst) {
            let why = format!(
                "not finished in 60 s: {} sent, {} answered, {} read",
                self.sent, self.acked, self.received
            );
            self.stop(ctx, Some(why));
        }
    }

    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        self.writer.flush(ctx);
        self.reader.flush(ctx);
    }
}

/// What one run measured.
struct Outcome {
    mode: Mode,
    messages: u64,
    elapsed: Duration,
    client_cpu: Duration,
    redis_cpu: Option<Duration>,
    batches: u64,
}

fn run(mode: Mode, settings: Settings) -> Result<Outcome, String> {
    let done = Arc::new(AtomicBool::new(false));
    let load = Load::new(mode, settings, Arc::clone(&done));
    let config = Config {
        addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        ..Config::default()
    };
    let server = Server::bind(config, load).map_err(|e| format!("cannot start the loop: {e}"))?;
    let redis_before = settings.redis_pid.map(cpu_of).transpose()?;
    let self_before = cpu_of_self()?;
    let running = server
        .spawn()
        .map_err(|e| format!("cannot start the loop: {e}"))?;
    let give_up = Instant::now() + Duration::from_secs(70);
    while !done.load(Ordering::SeqCst) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(2));
    }
    let self_after = cpu_of_self()?;
    let redis_after = settings.redis_pid.map(cpu_of).transpose()?;
    let load = running
        .stop()
        .map_err(|e| format!("the loop failed: {e}"))?;
    if let Some(error) = load.error {
        return Err(error);
    }
    let (Some(started), Some(finished)) = (load.started, load.finished) else {
        return Err("the run did not finish".into());
    };
    Ok(Outcome {
        mode,
        messages: load.received,
        elapsed: finished.saturating_duration_since(started),
        client_cpu: self_after.saturating_sub(self_before),
        redis_cpu: redis_before
            .zip(redis_after)
            .map(|(b, a)| a.saturating_sub(b)),
        batches: load.writer.stats().batches,
    })
}

/// CPU time of process `pid` so far (all its threads, from the scheduler:
/// [`support::cpu_time`]).
fn cpu_of(pid: u32) -> Result<Duration, String> {
    support::cpu_time(pid).map_err(|e| format!("--redis-pid {pid}: {e}"))
}

/// This process's CPU time so far: the loop's thread and this one.
fn cpu_of_self() -> Result<Duration, String> {
    support::cpu_time(std::process::id())
}

fn settings(args: &Args) -> Result<(Vec<Mode>, Settings), CliError> {
    let modes = match args.value("--mode").unwrap_or("both") {
        "publish" => vec![Mode::Publish],
        "xadd" => vec![Mode::Xadd],
        "both" => vec![Mode::Publish, Mode::Xadd],
        other => {
            return Err(CliError::OutOfRange(
                "--mode",
                other.to_string(),
                "must be publish, xadd or both".into(),
            ));
        }
    };
    let messages = args.at_least("--messages", 1)?.unwrap_or(200_000) as u64;
    let pipeline = args.at_least("--pipeline", 1)?.unwrap_or(16) as u64;
    let payload = args.at_least("--payload", 1)?.unwrap_or(64);
    let redis_pid = args.parsed::<u32>("--redis-pid")?;
    Ok((
        modes,
        Settings {
            redis: args.addr,
            messages,
            pipeline,
            payload,
            redis_pid,
        },
    ))
}

fn main() -> ExitCode {
    let spec = Spec::client(
        "redis_load",
        "Messages per second through Redis, PUBLISH/SUBSCRIBE and XADD/XREAD, on the crate's RESP core.",
        "127.0.0.1:6379",
    )
    .option("--mode", "MODE", "publish, xadd or both (default both)")
    .option("--messages", "N", "messages per mode (default 200000)")
    .option("--pipeline", "P", "commands in flight at most (default 16)")
    .option("--payload", "BYTES", "message size (default 64)")
    .option("--redis-pid", "PID", "report Redis's CPU time per message too");
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (modes, settings) = match settings(&args) {
        Ok(s) => s,
        Err(e) => return support::usage_error(&spec, &e),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "redis_load: {} messages of {} B per mode, pipeline {}, Redis at {}",
        settings.messages, settings.payload, settings.pipeline, settings.redis
    );
    let mut results = Vec::new();
    for mode in modes {
        match run(mode, settings) {
            Ok(outcome) => {
                if results.is_empty() {
                    let _ = writeln!(
                        out,
                        "{:<8} {:>10} {:>11} {:>12} {:>18} {:>17}",
                        "mode", "messages", "elapsed", "msgs/s", "client CPU/msg", "Redis CPU/msg"
                    );
                }
                let secs = outcome.elapsed.as_secs_f64().max(1e-9);
                let rate = outcome.messages as f64 / secs;
                let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / outcome.messages.max(1) as f64;
                let redis = outcome
                    .redis_cpu
                    .map_or("-".to_string(), |c| format!("{:.2} µs", per(c)));
                let _ = writeln!(
                    out,
                    "{:<8} {:>10} {:>8.0} ms {:>12.0} {:>15.2} µs {:>17}",
                    outcome.mode.name(),
                    outcome.messages,
                    secs * 1e3,
                    rate,
                    per(outcome.client_cpu),
                    redis
                );
                results.push((outcome, rate));
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("error: {} run: {e}", mode.name());
                return ExitCode::FAILURE;
            }
        }
    }
    for (outcome, rate) in &results {
        let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / outcome.messages.max(1) as f64;
        let _ = writeln!(
            out,
            "RESULT mode={} messages={} pipeline={} payload={} msgs_per_s={:.0} client_cpu_us_per_msg={:.2} redis_cpu_us_per_msg={} writes={}",
            outcome.mode.name(),
            outcome.messages,
            settings.pipeline,
            settings.payload,
            rate,
            per(outcome.client_cpu),
            outcome
                .redis_cpu
                .map_or("-".to_string(), |c| format!("{:.2}", per(c))),
            outcome.batches
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_redis_ends_the_run_with_a_hint() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let settings = Settings {
            redis: closed,
            messages: 10,
            pipeline: 1,
            payload: 8,
            redis_pid: None,
        };
        let error = run(Mode::Publish, settings).err().expect("fails");
        assert!(error.contains("cannot reach Redis"), "{error}");
        assert!(error.contains("redis-server --port"), "{error}");
    }
}
