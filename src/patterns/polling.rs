//! The jobs server: one long-running job followed four ways, by short polling,
//! long polling, Server-Sent Events and WebSocket, on one port.
//!
//! # The patterns, as the notes tell them
//!
//! A client submits a long job (the notes' upload) and the server answers at once
//! with a handle (`POST /submit` → `job:1764480000000`). The job then advances
//! 10% a step (3 s by default) until 100%. How does the client learn of progress?
//!
//! - **Short polling** (`GET /checkstatus?jobId=ID`): it asks, the server answers
//!   at once with the current status (`JobStatus: 40%`). Simple, stateless, and
//!   wasteful: most answers say what the client already knew. "The only downside is
//!   the networking cost": one request per interval, useful or not, and an update
//!   waits up to one interval to be seen.
//! - **Long polling** (`...&wait=SECS&since=N`): it asks "anything after N?", and
//!   the server **holds** the request until there is (or SECS pass, then it answers
//!   the current status anyway, so that no proxy times it out). One request per
//!   update, each seen as soon as it happens. Holding costs no thread here: the
//!   request is a [`Reply::Deferred`] sitting in the loop, a few hundred bytes.
//! - **Server-Sent Events** (`GET /events?jobId=ID`, WHATWG HTML §9.2): one request,
//!   and the response never ends until the job does; each update is an event
//!   (`id: 40` / `data: JobStatus: 40% at=<ms>`). A dropped connection is resumed
//!   by the browser with `Last-Event-ID: 40`, and gets only what came after.
//! - **WebSocket** (`ws://HOST/jobs?jobId=ID`): the same updates, pushed as text
//!   messages on a connection that could also carry messages the other way.
//!
//! # One log, many readers
//!
//! Each job's updates are an append-only [`EventLog`](super::log::EventLog) with
//! sequence numbers (see [`super::jobs`]). The four patterns only differ in who
//! moves a reader forward:
//!
//! | pattern | the reader's cursor | who advances it |
//! |---|---|---|
//! | short polling | none: it asks for the current value | the client, on a timer |
//! | long polling | `since=N` in each request | the client, one request per update |
//! | SSE | `id:` / `Last-Event-ID` | the server pushes; a reconnect resumes there |
//! | WebSocket | per connection, here | the server pushes |
//!
//! On the wire the cursor is the **progress** (`since=40`, `id: 40`): for a job it
//! is also its update's sequence number (40% is update 5, see
//! [`JobConfig::seq_for_progress`]). A cursor the job never reports (`since=45`) is
//! 400, as is one that is not a number.
//!
//! # Timers, not threads
//!
//! Every job's next step is in the [`JobStore`]; the server keeps **one** loop
//! timer, for the store's earliest deadline. When it fires, the store applies what
//! is due and names the jobs that moved, and the server wakes that job's readers:
//! each held long poll whose `since` is now behind is answered, each stream gets
//! its new events, each WebSocket its messages, all in the same turn of the loop.
//! A held long poll has one more timer, for its `wait`; an SSE stream one for its
//! heartbeat (a comment line after [`JobsConfig::heartbeat`] of quiet, so that
//! proxies and the client see the connection is alive). A client that goes away
//! while held is noticed by the driver at once ([`WsApp::on_http_close`]): its
//! timer is cancelled and it is counted ([`PatternCost::left_while_held`]).
//!
//! # What a wake-up costs
//!
//! [`WakeCost`] is measured at the server, for each job update that had readers:
//! from the update (the step timer's callback) to the end of that loop turn, when
//! every reader's answer had been handed to the kernel. It is the figure behind
//! "10,000 held long polls answered within N ms". [`PollingCosts`] counts, per
//! pattern, requests, bytes each way, requests held now and in all, wake-ups,
//! events sent; and the loop thread's CPU time. `GET /stats` serves them as text.
//!
//! # Persistence
//!
//! With [`JobsConfig::store`], every submit and every step is appended to a
//! [`Journal`] (an append-only file of checksummed records), and a restarted
//! server replays it: every handle it gave out still answers, and running jobs
//! resume from their last recorded progress. See [`super::journal`] for when the
//! file reaches the disk and what a crash can lose.
//!
//! # Bad input
//!
//! A missing or malformed `jobId`, a malformed `wait`, a `since` missing or
//! malformed when `wait` is given, a malformed `Last-Event-ID`: 400 with a body
//! naming which. An unknown or expired handle: 404. A wrong method on a known
//! path: 405 with `Allow`. An unknown path: 404.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::jobs::{JobConfig, JobId, JobStore, Update};
use super::journal::{Journal, JournalConfig, JournalError, Replayed};
use super::log::Read;
use super::websocket::{Message, Opened, WsApp, WsClosed, WsContext, not_a_websocket};
use crate::cost::RequestCost;
use crate::http::Response;
use crate::http::query;
use crate::server::{CloseReason, ConnId, Context, Incoming, Reply, TimerId};
use crate::trace::{Count, Dur, TraceLine};
use crate::ws::CloseCode;

/// The lab page served at `GET /`.
pub const LAB_PAGE: &str = include_str!("jobs.html");

/// The jobs server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// The job store's pacing and bounds (step, keep, max jobs).
    pub jobs: JobConfig,
    /// The longest a long poll is held, whatever its `wait` says. Default 30 s:
    /// under the 60 s idle timeout of common proxies, so that they do not cut a
    /// held request first.
    pub max_wait: Duration,
    /// Send an SSE comment after this much quiet on a stream; `None`: never.
    /// Default 15 s.
    pub heartbeat: Option<Duration>,
    /// The `retry:` hint sent first on every event stream: how long a browser
    /// waits before reconnecting a dropped stream. Default 1 s.
    pub retry: Duration,
    /// The journal file, if the store is to survive a restart.
    pub store: Option<PathBuf>,
    /// When the journal is flushed to disk.
    pub journal: JournalConfig,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            jobs: JobConfig::default(),
            max_wait: Duration::from_secs(30),
            heartbeat: Some(Duration::from_secs(15)),
            retry: Duration::from_secs(1),
            store: None,
            journal: JournalConfig::default(),
        }
    }
}

/// Which pattern (or which other route) a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `POST /submit`.
    Submit,
    /// `GET /checkstatus` without `wait`.
    ShortPoll,
    /// `GET /checkstatus` with `wait` and `since`.
    LongPoll,
    /// `GET /events`.
    Sse,
    /// The WebSocket at `/jobs`.
    WebSocket,
    /// Everything else: the page, `/stats`, bad input, unknown paths.
    Other,
}

impl Pattern {
    /// Every pattern, in the order the cost table lists them.
    pub const ALL: [Pattern; 6] = [
        Pattern::Submit,
        Pattern::ShortPoll,
        Pattern::LongPoll,
        Pattern::Sse,
        Pattern::WebSocket,
        Pattern::Other,
    ];

    /// Its name in the cost table and in `/stats` (`long.held_now`).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Submit => "submit",
            Pattern::ShortPoll => "short",
            Pattern::LongPoll => "long",
            Pattern::Sse => "sse",
            Pattern::WebSocket => "ws",
            Pattern::Other => "other",
        }
    }

    fn index(self) -> usize {
        match self {
            Pattern::Submit => 0,
            Pattern::ShortPoll => 1,
            Pattern::LongPoll => 2,
            Pattern::Sse => 3,
            Pattern::WebSocket => 4,
            Pattern::Other => 5,
        }
    }
}

/// What one pattern cost the server so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatternCost {
    /// Requests routed to it (for WebSocket: handshakes accepted).
    pub requests: u64,
    /// Bytes received: the heads and (decoded) bodies of its requests, counted
    /// as they are routed (for WebSocket, the handshakes; messages from the
    /// client are not part of this protocol).
    pub bytes_in: u64,
    /// Bytes sent: whole responses once written, plus, for streams and
    /// WebSockets, every event or message as it is queued.
    pub bytes_out: u64,
    /// Requests held (long polls waiting, streams and WebSockets open) now.
    pub held_now: u64,
    /// Requests ever held.
    pub held_total: u64,
    /// Held readers woken by an update (a long poll answered, a stream or a
    /// WebSocket sent the update).
    pub wakeups: u64,
    /// Events sent: SSE events, WebSocket messages; for polls, status answers.
    pub events_sent: u64,
    /// Long polls answered because their `wait` ran out.
    pub timed_out: u64,
    /// Held requests whose client went away before they were answered or ended.
    pub left_while_held: u64,
}

/// What waking the readers of one update cost, measured at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeCost {
    /// The job that moved.
    pub job: JobId,
    /// Its progress after the update.
    pub progress: u8,
    /// When the update was applied: the step timer's callback.
    pub started: Instant,
    /// Long polls answered.
    pub long_polls: u64,
    /// SSE streams sent the update.
    pub streams: u64,
    /// WebSockets sent the update.
    pub websockets: u64,
    /// Readers whose answer the kernel had not all taken by the end of the turn
    /// (their socket buffer was full); it is written when there is room.
    pub backlogged: u64,
    /// From `started` to the end of the loop turn, when every reader's answer had
    /// been offered to its socket: the time for the update to reach every
    /// reader's kernel buffer, the `backlogged` ones excepted.
    pub time_to_all: Duration,
}

impl WakeCost {
    /// Readers woken, of every kind.
    pub fn readers(&self) -> u64 {
        self.long_polls + self.streams + self.websockets
    }
}

/// The server's costs, per pattern, and the loop's CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollingCosts {
    /// Per pattern, in the order of [`Pattern::ALL`].
    pub patterns: [PatternCost; 6],
    /// Job updates applied (steps), whether or not anyone was waiting.
    pub updates: u64,
    /// The last wake-up that had readers.
    pub last_wake: Option<WakeCost>,
    /// The slowest wake-up so far (by `time_to_all`).
    pub slowest_wake: Option<WakeCost>,
    /// The loop thread's CPU time (user and system), as of the last time it was
    /// read: at each `GET /stats` and at shutdown. `None` where the system does
    /// not say (it is read from `/proc/thread-self/schedstat`, Linux).
    pub loop_cpu: Option<Duration>,
    /// Jobs held in the store now, running or finished and still kept.
    pub jobs_held: u64,
}

impl PollingCosts {
    /// The cost of one pattern.
    pub fn of(&self, pattern: Pattern) -> &PatternCost {
        &self.patterns[pattern.index()]
    }

    fn of_mut(&mut self, pattern: Pattern) -> &mut PatternCost {
        &mut self.patterns[pattern.index()]
    }

    /// The costs as `name value` lines, what `GET /stats` serves: per pattern
    /// `short.requests`, `short.bytes_in`, `short.bytes_out`, `long.held_now`,
    /// `long.held_total`, `long.wakeups`, `sse.events_sent`, `long.timed_out`,
    /// `long.left_while_held`; then `jobs.held`, `jobs.updates`, the last and the
    /// slowest wake-up (`wake.last_readers`, `wake.last_us`, `wake.last_backlogged`,
    /// `wake.slowest_readers`, `wake.slowest_us`; absent before the first) and
    /// `loop.cpu_us` (absent where unknown). Times in microseconds.
    pub fn to_stats_text(&self) -> String {
        use fmt::Write;
        let mut out = String::new();
        for pattern in Pattern::ALL {
            let c = self.of(pattern);
            let name = pattern.name();
            for (field, value) in [
                ("requests", c.requests),
                ("bytes_in", c.bytes_in),
                ("bytes_out", c.bytes_out),
                ("held_now", c.held_now),
                ("held_total", c.held_total),
                ("wakeups", c.wakeups),
                ("events_sent", c.events_sent),
                ("timed_out", c.timed_out),
                ("left_while_held", c.left_while_held),
            ] {
                let _ = writeln!(out, "{name}.{field} {value}");
            }
        }
        let _ = writeln!(out, "jobs.held {}", self.jobs_held);
        let _ = writeln!(out, "jobs.updates {}", self.updates);
        for (which, wake) in [("last", &self.last_wake), ("slowest", &self.slowest_wake)] {
            if let Some(w) = wake {
                let _ = writeln!(out, "wake.{which}_readers {}", w.readers());
                let _ = writeln!(out, "wake.{which}_backlogged {}", w.backlogged);
                let _ = writeln!(out, "wake.{which}_us {}", w.time_to_all.as_micros());
            }
        }
        if let Some(cpu) = self.loop_cpu {
            let _ = writeln!(out, "loop.cpu_us {}", cpu.as_micros());
        }
        out
    }
}

impl fmt::Display for PollingCosts {
    /// An aligned table, one row per pattern, then the loop's CPU time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<7} {:>9} {:>11} {:>11} {:>9} {:>11} {:>9} {:>9} {:>10} {:>12}",
            "pattern",
            "requests",
            "bytes in",
            "bytes out",
            "held now",
            "held total",
            "wake-ups",
            "events",
            "timed out",
            "left (held)"
        )?;
        for pattern in Pattern::ALL {
            let c = self.of(pattern);
            writeln!(
                f,
                "{:<7} {:>9} {:>11} {:>11} {:>9} {:>11} {:>9} {:>9} {:>10} {:>12}",
                pattern.name(),
                c.requests,
                c.bytes_in,
                c.bytes_out,
                c.held_now,
                c.held_total,
                c.wakeups,
                c.events_sent,
                c.timed_out,
                c.left_while_held
            )?;
        }
        write!(
            f,
            "jobs held: {}, updates applied: {}",
            self.jobs_held, self.updates
        )?;
        if let Some(w) = &self.slowest_wake {
            write!(
                f,
                "\nslowest wake-up: {} at {}%: {} reached in {}",
                w.job,
                w.progress,
                Count(w.readers(), "reader", "readers"),
                Dur(w.time_to_all)
            )?;
        }
        match self.loop_cpu {
            Some(cpu) => write!(f, "\nloop CPU time: {}", Dur(cpu)),
            None => write!(f, "\nloop CPU time: unknown on this system"),
        }
    }
}

/// What the server reports to an observer (`--trace`).
#[derive(Debug)]
pub enum JobsReport<'a> {
    /// One event, as a trace line.
    Line(TraceLine),
    /// The costs so far, at shutdown.
    Costs(&'a PollingCosts),
}

/// Who hears of what happens.
type Observer = Box<dyn FnMut(JobsReport<'_>) + Send>;

/// Why the jobs server could not start.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The journal could not be opened or replayed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// A reader the server holds: a long poll waiting, a stream or a WebSocket open.
#[derive(Debug)]
struct Held {
    /// The job it follows.
    job: JobId,
    /// The last update it has (by sequence number).
    cursor: u64,
    /// How it is answered.
    kind: HeldKind,
}

#[derive(Debug)]
enum HeldKind {
    /// A long poll, answered when the log passes `cursor` or `timer` fires.
    Long { timer: TimerId },
    /// An SSE stream; `timer` is its heartbeat, due `heartbeat` after `last_sent`.
    Sse {
        timer: Option<TimerId>,
        last_sent: Instant,
    },
    /// A WebSocket subscriber.
    Ws,
}

impl HeldKind {
    fn pattern(&self) -> Pattern {
        match self {
            HeldKind::Long { .. } => Pattern::LongPoll,
            HeldKind::Sse { .. } => Pattern::Sse,
            HeldKind::Ws => Pattern::WebSocket,
        }
    }
}

/// The readers of one job. A reader that leaves is removed from `held` at once
/// but stays here until the next wake-up of the job (or a compaction), so that a
/// close costs O(1) however many wait on the same job.
#[derive(Debug, Default)]
struct Readers {
    conns: Vec<ConnId>,
    stale: usize,
}

/// A request routed, waiting for its cost (its response written).
#[derive(Debug, Clone, Copy)]
struct Tag {
    pattern: Pattern,
    /// Bytes of stream parts already counted as they were queued, so that the
    /// response's total is not counted twice.
    streamed: u64,
}

/// Why a held long poll is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The job moved past its `since`.
    Update,
    /// Its `wait` ran out: it gets the current status.
    WaitOver,
    /// The server is shutting down: it gets the current status now.
    Shutdown,
}

/// Timer data: what a timer is for.
const TIMER_STEP: u64 = 1;
const TIMER_WAIT: u64 = 2;
const TIMER_HEARTBEAT: u64 = 3;
const TIMER_SYNC: u64 = 4;

/// The jobs server, as a [`WsApp`]: serve it with
/// `WsServer::new(WsConfig::default(), JobsApp::new(config)?)`.
pub struct JobsApp {
    config: JobsConfig,
    store: JobStore,
    journal: Option<Journal>,
    replayed: Option<Replayed>,
    /// The one timer for the store's earliest deadline, and when it is due.
    step_timer: Option<(TimerId, Instant)>,
    /// The journal's sync timer, while one is pending.
    sync_timer: Option<TimerId>,
    /// Every reader held, by connection.
    held: HashMap<ConnId, Held>,
    /// Held readers by job.
    readers: HashMap<JobId, Readers>,
    /// The connection of each pending wait or heartbeat timer.
    timers: HashMap<TimerId, ConnId>,
    /// Requests routed and not yet written, per connection (by serial), in order.
    tags: HashMap<u64, VecDeque<Tag>>,
    costs: PollingCosts,
    /// Wake-ups of this turn, finished at its end; and who they woke.
    turn_wakes: Vec<WakeCost>,
    turn_woken: Vec<ConnId>,
    /// Scratch: the jobs that moved in one advance; an event's text.
    woke: Vec<JobId>,
    text: String,
    observer: Option<(Instant, Observer)>,
    /// Whether the observer wants trace lines, or only the costs.
    trace_lines: bool,
}

impl fmt::Debug for JobsApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsApp")
            .field("config", &self.config)
            .field("jobs", &self.store.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch: the stamps on updates and the handles.
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The CPU time of the calling thread, from `/proc/thread-self/schedstat` (its
/// first field: nanoseconds on a CPU). `None` where there is no such file.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

impl JobsApp {
    /// A server with `config`; with a store file, the journal is opened and
    /// replayed first (what it found: [`JobsApp::replayed`]).
    pub fn new(config: JobsConfig) -> Result<JobsApp, JobsError> {
        let mut store = JobStore::new(config.jobs);
        let (journal, replayed) = match &config.store {
            Some(path) => {
                let (journal, replayed) = Journal::open_with(
                    path,
                    config.journal,
                    &mut store,
                    Instant::now(),
                    wall_ms(),
                )?;
                (Some(journal), Some(replayed))
            }
            None => (None, None),
        };
        Ok(JobsApp {
            config,
            store,
            journal,
            replayed,
            step_timer: None,
            sync_timer: None,
            held: HashMap::new(),
            readers: HashMap::new(),
            timers: HashMap::new(),
            tags: HashMap::new(),
            costs: PollingCosts::default(),
            turn_wakes: Vec::new(),
            turn_woken: Vec::new(),
            woke: Vec::new(),
            text: String::new(),
            observer: None,
            trace_lines: false,
        })
    }

    /// Reports the costs at shutdown and, if `lines`, every request held,
    /// wake-up, event, timeout and departure as a trace line (times from
    /// `start`). Without `lines` no trace text is built at all, so a wake-up of
    /// 10,000 readers does not format 10,000 lines to throw away.
    pub fn set_observer(
        &mut self,
        start: Instant,
        lines: bool,
        observer: impl FnMut(JobsReport<'_>) + Send + 'static,
    ) {
        self.observer = Some((start, Box::new(observer)));
        self.trace_lines = lines;
    }

    /// What replaying the journal found at start-up; `None` without a store file.
    pub fn replayed(&self) -> Option<&Replayed> {
        self.replayed.as_ref()
    }

    /// The costs so far (the loop's CPU time as of the last `/stats` or shutdown).
    pub fn costs(&self) -> &PollingCosts {
        &self.costs
    }

    /// The job store.
    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// The settings.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    fn trace(&mut self, line: impl FnOnce(Instant) -> TraceLine) {
        if let Some((start, observer)) = &mut self.observer
            && self.trace_lines
        {
            observer(JobsReport::Line(line(*start)));
        }
    }

    // ---- timers --------------------------------------------------------------

    /// Keeps the one step timer on the store's earliest deadline.
    fn arm_step_timer(&mut self, ctx: &mut Context<'_>) {
        let next = self.store.next_deadline();
        match (self.step_timer, next) {
            (Some((_, at)), Some(next)) if at == next => {}
            (current, next) => {
                if let Some((timer, _)) = current {
                    ctx.cancel_timer(timer);
                }
                self.step_timer = next.map(|at| (ctx.set_timer_at(at, TIMER_STEP), at));
            }
        }
    }

    /// Schedules the journal's next sync, if it has unsynced appends.
    fn arm_sync_timer(&mut self, ctx: &mut Context<'_>) {
        let Some(journal) = &self.journal else {
            return;
        };
        if self.sync_timer.is_none()
            && let Some(at) = journal.next_flush()
        {
            self.sync_timer = Some(ctx.set_timer_at(at, TIMER_SYNC));
        }
    }

    /// Syncs the journal if its policy says it is time (`force`: now, whatever
    /// it says).
    fn sync_journal(&mut self, now: Instant, force: bool) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let synced = if force {
            journal.sync().map(|()| true)
        } else {
            journal.flush_if_due(now)
        };
        if let Err(e) = synced {
            let text = format!("journal sync failed: {e}");
            self.trace(|start| TraceLine::new(start, Instant::now(), None, "journal").what(text));
        }
    }

    /// The step timer fired: apply what is due, record it, wake the readers.
    fn on_step(&mut self, ws: &mut WsContext<'_, '_>) {
        self.step_timer = None;
        let now = ws.now();
        let wall = wall_ms();
        let mut woke = std::mem::take(&mut self.woke);
        woke.clear();
        self.store.advance(now, wall, &mut woke);
        for job in &woke {
            self.costs.updates += 1;
            let Some(update) = self
                .store
                .log(job)
                .and_then(|log| log.get(log.last_seq()).copied())
            else {
                continue; // finished and forgotten within this one late advance
            };
            let progress = update.progress;
            if let Some(journal) = &mut self.journal
                && let Err(e) = journal.progressed(job, progress, update.at_ms)
            {
                let text = format!("journal append failed: {e}");
                self.trace(|start| TraceLine::new(start, now, None, "journal").what(text));
            }
            self.wake(ws, *job, progress);
        }
        self.woke = woke;
        self.costs.jobs_held = self.store.len() as u64;
        self.arm_step_timer(ws.http());
        self.arm_sync_timer(ws.http());
    }

    /// Job `job` has a new update: every reader behind it gets it.
    fn wake(&mut self, ws: &mut WsContext<'_, '_>, job: JobId, progress: u8) {
        let Some(readers) = self.readers.remove(&job) else {
            return;
        };
        let mut wake = WakeCost {
            job,
            progress,
            started: ws.now(),
            long_polls: 0,
            streams: 0,
            websockets: 0,
            backlogged: 0,
            time_to_all: Duration::ZERO,
        };
        let mut still = Vec::with_capacity(readers.conns.len());
        for conn in readers.conns {
            let Some(held) = self.held.get(&conn).filter(|h| h.job == job) else {
                continue; // left since, or moved on
            };
            let pattern = held.kind.pattern();
            if pattern == Pattern::LongPoll
                && self
                    .store
                    .log(&job)
                    .is_some_and(|l| l.last_seq() <= held.cursor)
            {
                // Its `since` is still ahead of the job: it goes on waiting.
                still.push(conn);
                continue;
            }
            let before = self.costs.of(pattern).events_sent;
            let open = match pattern {
                Pattern::LongPoll => self.answer_long_poll(ws.http(), conn, Release::Update),
                Pattern::Sse => self.send_events(ws.http(), conn),
                _ => self.send_ws(ws, conn),
            };
            if self.costs.of(pattern).events_sent > before {
                self.costs.of_mut(pattern).wakeups += 1;
                self.turn_woken.push(conn);
                match pattern {
                    Pattern::LongPoll => wake.long_polls += 1,
                    Pattern::Sse => wake.streams += 1,
                    _ => wake.websockets += 1,
                }
            }
            if open {
                still.push(conn);
            }
        }
        if !still.is_empty() {
            self.readers.insert(
                job,
                Readers {
                    conns: still,
                    stale: 0,
                },
            );
        }
        if wake.readers() > 0 {
            self.turn_wakes.push(wake);
        }
    }

    // ---- holding and releasing -------------------------------------------------

    fn hold(&mut self, conn: ConnId, job: JobId, cursor: u64, kind: HeldKind) {
        let pattern = kind.pattern();
        if let HeldKind::Long { timer }
        | HeldKind::Sse {
            timer: Some(timer), ..
        } = kind
        {
            self.timers.insert(timer, conn);
        }
        self.held.insert(conn, Held { job, cursor, kind });
        self.readers.entry(job).or_default().conns.push(conn);
        let cost = self.costs.of_mut(pattern);
        cost.held_now += 1;
        cost.held_total += 1;
    }

    /// Forgets a held reader; its timer is cancelled. Returns what it was.
    fn release(&mut self, ctx: &mut Context<'_>, conn: ConnId) -> Option<Held> {
        let held = self.held.remove(&conn)?;
        match held.kind {
            HeldKind::Long { timer }
            | HeldKind::Sse {
                timer: Some(timer), ..
            } => {
                ctx.cancel_timer(timer);
                self.timers.remove(&timer);
            }
            _ => {}
        }
        let pattern = held.kind.pattern();
        let cost = self.costs.of_mut(pattern);
        cost.held_now = cost.held_now.saturating_sub(1);
        if let Some(readers) = self.readers.get_mut(&held.job) {
            readers.stale += 1;
            if readers.stale * 2 > readers.conns.len() {
                let held_now = &self.held;
                readers.conns.retain(|c| held_now.contains_key(c));
                readers.stale = 0;
                if readers.conns.is_empty() {
                    self.readers.remove(&held.job);
                }
            }
        }
        Some(held)
    }

    /// Answers the held long poll on `conn` with the job's current status (404 if
    /// it was forgotten meanwhile), and forgets it. Returns `false`: it is no
    /// longer held.
    fn answer_long_poll(&mut self, ctx: &mut Context<'_>, conn: ConnId, why: Release) -> bool {
        let Some(held) = self.release(ctx, conn) else {
            return false;
        };
        let mut res = Response::new(200);
        self.status_response(&held.job, &mut res);
        let cost = self.costs.of_mut(Pattern::LongPoll);
        cost.events_sent += 1;
        if why == Release::WaitOver {
            cost.timed_out += 1;
        }
        let status = res.status();
        ctx.respond(conn, res);
        let serial = conn.serial();
        let job = held.job;
        self.trace(|start| {
            TraceLine::new(start, Instant::now(), Some(serial), "released").what(format_args!(
                "long poll on {job} -> {status}{}",
                match why {
                    Release::Update => "",
                    Release::WaitOver => " (wait ran out)",
                    Release::Shutdown => " (server shutting down)",
                }
            ))
        });
        false
    }

    /// Sends the events `conn`'s stream has not had yet; ends the stream after the
    /// last. Returns whether it is still open.
    fn send_events(&mut self, ctx: &mut Context<'_>, conn: ConnId) -> bool {
        let Some(held) = self.held.get_mut(&conn) else {
            return false;
        };
        let job = held.job;
        let Some(log) = self.store.log(&job) else {
            // The job was forgotten: nothing more will come.
            ctx.end_stream(conn);
            self.release(ctx, conn);
            return false;
        };
        self.text.clear();
        let mut sent = 0u64;
        let mut cursor = held.cursor;
        if let Some(events) = events_after(log.read(cursor), log) {
            for (seq, update) in events {
                push_event(&mut self.text, update);
                cursor = seq;
                sent += 1;
            }
        }
        held.cursor = cursor;
        let ended = matches!(log.read(cursor), Read::Ended);
        let now = ctx.now();
        if sent > 0 {
            if let HeldKind::Sse { last_sent, .. } = &mut held.kind {
                *last_sent = now;
            }
            ctx.send_chunk(conn, self.text.as_bytes());
            let bytes = chunk_wire_len(self.text.len());
            self.count_streamed(conn, Pattern::Sse, bytes);
            self.costs.of_mut(Pattern::Sse).events_sent += sent;
            let shown = self.shown(cursor);
            self.trace(|start| {
                TraceLine::new(start, now, Some(conn.serial()), "sse event").what(format_args!(
                    "{job}: {} up to {shown}%, {bytes} B queued",
                    Count(sent, "event", "events")
                ))
            });
        }
        if ended {
            ctx.end_stream(conn);
            self.release(ctx, conn);
            return false;
        }
        true
    }

    /// Sends the messages `conn`'s WebSocket has not had yet; closes it with 1000
    /// after the last. Returns whether it is still open.
    fn send_ws(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId) -> bool {
        let Some(held) = self.held.get_mut(&conn) else {
            return false;
        };
        let job = held.job;
        let Some(log) = self.store.log(&job) else {
            ws.close(conn, CloseCode::NORMAL, "job forgotten");
            return false;
        };
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut cursor = held.cursor;
        if let Some(events) = events_after(log.read(cursor), log) {
            for (seq, update) in events {
                self.text.clear();
                push_status_line(&mut self.text, update);
                if ws.send_text(conn, &self.text) {
                    sent += 1;
                    bytes += ws_frame_len(self.text.len());
                }
                cursor = seq;
            }
        }
        held.cursor = cursor;
        let ended = matches!(log.read(cursor), Read::Ended);
        if sent > 0 {
            let cost = self.costs.of_mut(Pattern::WebSocket);
            cost.events_sent += sent;
            cost.bytes_out += bytes;
            let (serial, now, shown) = (conn.serial(), ws.now(), self.shown(cursor));
            self.trace(|start| {
                TraceLine::new(start, now, Some(serial), "ws update").what(format_args!(
                    "{job}: {} up to {shown}%, {bytes} B queued",
                    Count(sent, "message", "messages")
                ))
            });
        }
        if ended {
            // `on_close` follows and releases it. The close frame: 2 B of header,
            // 2 B of code, the reason.
            ws.close(conn, CloseCode::NORMAL, FINISHED);
            self.costs.of_mut(Pattern::WebSocket).bytes_out += ws_frame_len(2 + FINISHED.len());
            return false;
        }
        true
    }

    /// The body and stamp of a status answer for `job`; 404 if it is gone.
    fn status_response(&self, job: &JobId, res: &mut Response) {
        let update = self
            .store
            .log(job)
            .and_then(|log| log.get(log.last_seq()).copied());
        match update {
            Some(update) => {
                res.set_status(200);
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                let mut at = Vec::new();
                crate::http::response::push_decimal(&mut at, update.at_ms);
                res.header("Job-Updated-At", &at);
                res.body_mut()
                    .extend_from_slice(format!("JobStatus: {}%\n", update.progress).as_bytes());
            }
            None => not_found(res, job, self.config.jobs.keep),
        }
    }

    /// Counts `bytes` of a stream part on `conn`'s current request.
    fn count_streamed(&mut self, conn: ConnId, pattern: Pattern, bytes: u64) {
        self.costs.of_mut(pattern).bytes_out += bytes;
        if let Some(tag) = self.tags.get_mut(&conn.serial()).and_then(|q| q.back_mut()) {
            tag.streamed += bytes;
        }
    }
}

impl JobsApp {
    /// The progress shown for sequence number `seq` (0 before the first).
    fn shown(&self, seq: u64) -> u8 {
        self.store.config().progress_for_seq(seq).unwrap_or(0)
    }

    /// Routes a plain request.
    fn route(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> (Pattern, Reply) {
        let request = req.request();
        let method = request.method();
        let query = request.query().unwrap_or("");
        match request.path() {
            "/" => {
                if method != "GET" {
                    return (Pattern::Other, method_not_allowed(res, "GET"));
                }
                res.header("Content-Type", "text/html; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut().extend_from_slice(LAB_PAGE.as_bytes());
                (Pattern::Other, Reply::Respond)
            }
            "/submit" => {
                if method != "POST" {
                    return (Pattern::Submit, method_not_allowed(res, "POST"));
                }
                (Pattern::Submit, self.submit(ctx, res))
            }
            "/checkstatus" => {
                if method != "GET" {
                    return (Pattern::ShortPoll, method_not_allowed(res, "GET"));
                }
                self.check_status(ctx, req.conn(), query, res)
            }
            "/events" => {
                if method != "GET" {
                    return (Pattern::Sse, method_not_allowed(res, "GET"));
                }
                (Pattern::Sse, self.events(ctx, req, query, res))
            }
            "/jobs" => {
                if method != "GET" {
                    return (Pattern::WebSocket, method_not_allowed(res, "GET"));
                }
                not_a_websocket(res);
                (Pattern::WebSocket, Reply::Respond)
            }
            "/stats" => {
                if method != "GET" {
                    return (Pattern::Other, method_not_allowed(res, "GET"));
                }
                self.costs.loop_cpu = thread_cpu_time();
                self.costs.jobs_held = self.store.len() as u64;
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut()
                    .extend_from_slice(self.costs.to_stats_text().as_bytes());
                (Pattern::Other, Reply::Respond)
            }
            _ => {
                res.set_status(404);
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.body_mut().extend_from_slice(
                    b"no such path: try GET /, POST /submit, GET /checkstatus, GET /events, ws /jobs, GET /stats\n",
                );
                (Pattern::Other, Reply::Respond)
            }
        }
    }

    /// `POST /submit`: a new job, its handle at once.
    fn submit(&mut self, ctx: &mut Context<'_>, res: &mut Response) -> Reply {
        let wall = wall_ms();
        match self.store.submit(ctx.now(), wall) {
            Ok(id) => {
                if let Some(journal) = &mut self.journal
                    && let Err(e) = journal.submitted(&id, wall)
                {
                    // The handle could not be recorded: a restart would not know
                    // it. Say so rather than hand out a handle that may vanish.
                    res.set_status(500);
                    res.header("Content-Type", "text/plain; charset=utf-8");
                    res.body_mut().extend_from_slice(
                        format!("the job could not be recorded: {e}\n").as_bytes(),
                    );
                    return Reply::Respond;
                }
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut()
                    .extend_from_slice(format!("{id}\n").as_bytes());
                self.costs.jobs_held = self.store.len() as u64;
                self.arm_step_timer(ctx);
                self.arm_sync_timer(ctx);
            }
            Err(full) => {
                res.set_status(503);
                res.header("Content-Type", "text/plain; charset=utf-8");
                let secs =
                    full.retry_after.as_secs() + u64::from(full.retry_after.subsec_nanos() > 0);
                res.header("Retry-After", secs.max(1).to_string());
                res.body_mut()
                    .extend_from_slice(format!("{full}\n").as_bytes());
            }
        }
        Reply::Respond
    }

    /// `GET /checkstatus`: short poll, or long poll with `wait` and `since`.
    fn check_status(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        query: &str,
        res: &mut Response,
    ) -> (Pattern, Reply) {
        let wait = match query::param(query, "wait") {
            Ok(w) => w,
            Err(e) => return (Pattern::LongPoll, bad_request(res, "wait", &e.to_string())),
        };
        let pattern = if wait.is_some() {
            Pattern::LongPoll
        } else {
            Pattern::ShortPoll
        };
        let job = match self.job_param(query, res) {
            Ok(job) => job,
            Err(reply) => return (pattern, reply),
        };
        let Some(wait) = wait else {
            // `status_response` answers 404 for a job not held.
            self.status_response(&job, res);
            if res.status() == 200 {
                self.costs.of_mut(Pattern::ShortPoll).events_sent += 1;
            }
            return (pattern, Reply::Respond);
        };
        let wait = match wait.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs).min(self.config.max_wait),
            Err(_) => {
                return (
                    pattern,
                    bad_request(res, "wait", "expected whole seconds, such as wait=25"),
                );
            }
        };
        let since = match query::param(query, "since") {
            Ok(Some(since)) => since,
            Ok(None) => {
                return (
                    pattern,
                    bad_request(
                        res,
                        "since",
                        "required with wait: the last progress seen, such as since=40",
                    ),
                );
            }
            Err(e) => return (pattern, bad_request(res, "since", &e.to_string())),
        };
        let Some(cursor) = self.cursor_of(&since) else {
            return (pattern, bad_request(res, "since", &self.grid_hint()));
        };
        let Some(log) = self.store.log(&job) else {
            not_found(res, &job, self.config.jobs.keep);
            return (pattern, Reply::Respond);
        };
        // Answered at once if there is already something after `since`, or the
        // job has ended (nothing more will come), or no wait was asked for.
        let hold = matches!(log.read(cursor), Read::UpToDate | Read::Ahead { .. });
        if !hold || wait.is_zero() {
            self.status_response(&job, res);
            self.costs.of_mut(Pattern::LongPoll).events_sent += 1;
            return (pattern, Reply::Respond);
        }
        let timer = ctx.set_timer(wait, TIMER_WAIT);
        self.hold(conn, job, cursor, HeldKind::Long { timer });
        let now = ctx.now();
        self.trace(|start| {
            TraceLine::new(start, now, Some(conn.serial()), "held").what(format_args!(
                "long poll on {job} since {since}%, up to {}",
                Dur(wait)
            ))
        });
        (pattern, Reply::Deferred)
    }

    /// `GET /events`: an SSE stream from the client's cursor.
    fn events(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        query: &str,
        res: &mut Response,
    ) -> Reply {
        let job = match self.job_param(query, res) {
            Ok(job) => job,
            Err(reply) => return reply,
        };
        // A reconnecting browser sends `Last-Event-ID`, and its URL still has the
        // `lastEventId` it first connected with: the header is newer, so it wins.
        let cursor = match req.request().header("last-event-id") {
            Some(value) => match std::str::from_utf8(value)
                .ok()
                .and_then(|v| self.cursor_of(v.trim()))
            {
                Some(cursor) => cursor,
                None => return bad_request(res, "Last-Event-ID", &self.grid_hint()),
            },
            None => match query::param(query, "lastEventId") {
                Ok(None) => 0,
                Ok(Some(v)) => match self.cursor_of(&v) {
                    Some(cursor) => cursor,
                    None => return bad_request(res, "lastEventId", &self.grid_hint()),
                },
                Err(e) => return bad_request(res, "lastEventId", &e.to_string()),
            },
        };
        let Some(log) = self.store.log(&job) else {
            not_found(res, &job, self.config.jobs.keep);
            return Reply::Respond;
        };
        // A cursor ahead of the job (a client that saw more than a restarted
        // server recorded) waits for the updates after it, as a long poll and a
        // WebSocket do: nothing is sent twice.
        let mut cursor = cursor;
        if matches!(log.read(cursor), Read::Ended) {
            // Everything was seen and nothing more will come: 204 tells a
            // browser's EventSource to stop reconnecting (WHATWG HTML §9.2.3).
            res.set_status(204);
            return Reply::Respond;
        }
        res.header("Content-Type", "text/event-stream");
        res.header("Cache-Control", "no-store");
        let mut sent = 0u64;
        self.text.clear();
        self.text.push_str("retry: ");
        self.text
            .push_str(&self.config.retry.as_millis().to_string());
        self.text.push_str("\n\n");
        if let Some(events) = events_after(log.read(cursor), log) {
            for (seq, update) in events {
                push_event(&mut self.text, update);
                cursor = seq;
                sent += 1;
            }
        }
        res.body_mut().extend_from_slice(self.text.as_bytes());
        self.costs.of_mut(Pattern::Sse).events_sent += sent;
        let conn = req.conn();
        if matches!(log.read(cursor), Read::Ended) {
            // All of it is here: a whole response, no stream to hold.
            return Reply::Respond;
        }
        let now = ctx.now();
        let timer = self
            .config
            .heartbeat
            .map(|every| ctx.set_timer(every, TIMER_HEARTBEAT));
        self.hold(
            conn,
            job,
            cursor,
            HeldKind::Sse {
                timer,
                last_sent: now,
            },
        );
        let shown = self.shown(cursor);
        self.trace(|start| {
            TraceLine::new(start, now, Some(conn.serial()), "held").what(format_args!(
                "event stream on {job} from {shown}%, {} at once",
                Count(sent, "event", "events")
            ))
        });
        Reply::Stream
    }

    /// The `jobId` of a query, or the 400 answer. Whether the job exists is
    /// checked after every parameter is (400 before 404).
    fn job_param(&self, query: &str, res: &mut Response) -> Result<JobId, Reply> {
        let text = match query::param(query, "jobId") {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(bad_request(
                    res,
                    "jobId",
                    "missing: add ?jobId=job:<ms> from POST /submit",
                ));
            }
            Err(e) => return Err(bad_request(res, "jobId", &e.to_string())),
        };
        JobId::parse(&text).ok_or_else(|| {
            bad_request(
                res,
                "jobId",
                "not a handle: expected job:<ms> or job:<ms>-<n>",
            )
        })
    }

    /// The cursor (sequence number) for a progress value sent by a client.
    fn cursor_of(&self, progress: &str) -> Option<u64> {
        if progress.is_empty() || !progress.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let progress: u8 = progress.parse().ok()?;
        self.store.config().seq_for_progress(progress)
    }

    /// What a progress value must look like.
    fn grid_hint(&self) -> String {
        format!(
            "expected a progress this job reports: 0, {}, ... 100",
            self.store.config().effective_step_percent()
        )
    }

    /// A held long poll's wait ran out, or a stream's heartbeat is due.
    fn on_held_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        let Some(conn) = self.timers.remove(&timer) else {
            return;
        };
        if data == TIMER_WAIT {
            self.answer_long_poll(ws.http(), conn, Release::WaitOver);
            return;
        }
        let Some(every) = self.config.heartbeat else {
            return;
        };
        let now = ws.now();
        let Some(Held {
            kind:
                HeldKind::Sse {
                    timer: slot,
                    last_sent,
                },
            ..
        }) = self.held.get_mut(&conn)
        else {
            return;
        };
        let quiet = now.saturating_duration_since(*last_sent) >= every;
        if quiet {
            *last_sent = now;
        }
        // The next heartbeat is due `every` after the last thing sent.
        let next = ws.http().set_timer_at(*last_sent + every, TIMER_HEARTBEAT);
        *slot = Some(next);
        self.timers.insert(next, conn);
        if quiet {
            ws.http().send_chunk(conn, HEARTBEAT.as_bytes());
            let bytes = chunk_wire_len(HEARTBEAT.len());
            self.count_streamed(conn, Pattern::Sse, bytes);
            self.trace(|start| {
                TraceLine::new(start, now, Some(conn.serial()), "heartbeat").what(format_args!(
                    "comment on a quiet event stream, {bytes} B queued"
                ))
            });
        }
    }
}

/// The reason of the close frame that ends a job's WebSocket.
const FINISHED: &str = "job finished";

/// The comment sent on a quiet event stream: a line starting with `:` is
/// ignored by the client (WHATWG HTML §9.2.6) but keeps the connection busy.
const HEARTBEAT: &str = ": heartbeat\n\n";

impl WsApp for JobsApp {
    fn on_http(&mut self, ctx: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let (pattern, reply) = self.route(ctx, req, res);
        let cost = self.costs.of_mut(pattern);
        cost.requests += 1;
        cost.bytes_in += request_bytes(req);
        self.tags
            .entry(req.conn().serial())
            .or_default()
            .push_back(Tag {
                pattern,
                streamed: 0,
            });
        if reply == Reply::Stream {
            // The first part goes out as the first chunk: counted now, like
            // every part after it (the head is counted when the stream ends).
            self.count_streamed(req.conn(), pattern, chunk_wire_len(res.body().len()));
        }
        reply
    }

    fn on_handshake(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> bool {
        // The 101 (or the refusal) is this handshake's answer: its bytes count
        // for the WebSocket pattern when it is written.
        self.tags
            .entry(req.conn().serial())
            .or_default()
            .push_back(Tag {
                pattern: Pattern::WebSocket,
                streamed: 0,
            });
        self.costs.of_mut(Pattern::WebSocket).bytes_in += request_bytes(req);
        let request = req.request();
        if request.path() != "/jobs" {
            res.set_status(404);
            res.header("Content-Type", "text/plain; charset=utf-8");
            res.body_mut()
                .extend_from_slice(b"the WebSocket is at /jobs?jobId=ID\n");
            return false;
        }
        let query = request.query().unwrap_or("");
        let Ok(job) = self.job_param(query, res) else {
            return false;
        };
        let since_ok = match query::param(query, "since") {
            Ok(None) => true,
            Ok(Some(since)) if self.cursor_of(&since).is_some() => true,
            Ok(Some(_)) => {
                let hint = self.grid_hint();
                bad_request(res, "since", &hint);
                false
            }
            Err(e) => {
                bad_request(res, "since", &e.to_string());
                false
            }
        };
        if since_ok && self.store.status(&job).is_none() {
            not_found(res, &job, self.config.jobs.keep);
            return false;
        }
        since_ok
    }

    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, opened: &Opened<'_>) {
        // `on_handshake` checked the query; it is read again from the target.
        let query = opened.target.split_once('?').map_or("", |(_, q)| q);
        let job = query::param(query, "jobId")
            .ok()
            .flatten()
            .and_then(|t| JobId::parse(&t));
        let cursor = query::param(query, "since")
            .ok()
            .flatten()
            .and_then(|s| self.cursor_of(&s))
            .unwrap_or(0);
        let Some(job) = job.filter(|j| self.store.status(j).is_some()) else {
            ws.close(conn, CloseCode::POLICY_VIOLATION, "no such job");
            return;
        };
        self.costs.of_mut(Pattern::WebSocket).requests += 1;
        self.hold(conn, job, cursor, HeldKind::Ws);
        self.send_ws(ws, conn);
    }

    fn on_start(&mut self, ws: &mut WsContext<'_, '_>) {
        // Jobs restored from the journal step on before anyone connects.
        self.arm_step_timer(ws.http());
        self.arm_sync_timer(ws.http());
    }

    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        // Updates flow one way; a client message is not part of the protocol.
        let _ = msg;
        ws.close(
            conn,
            CloseCode::POLICY_VIOLATION,
            "this endpoint only sends",
        );
    }

    fn on_close(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
        self.tags.remove(&conn.serial());
        if self.release(ws.http(), conn).is_some()
            && !matches!(closed, WsClosed::ByServer(_) | WsClosed::Shutdown)
        {
            self.costs.of_mut(Pattern::WebSocket).left_while_held += 1;
        }
    }

    fn on_http_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        self.tags.remove(&conn.serial());
        let Some(held) = self.release(ctx, conn) else {
            return;
        };
        let pattern = held.kind.pattern();
        if reason == CloseReason::Shutdown {
            return;
        }
        self.costs.of_mut(pattern).left_while_held += 1;
        let (now, job) = (ctx.now(), held.job);
        self.trace(|start| {
            TraceLine::new(start, now, Some(conn.serial()), "left").what(format_args!(
                "{} on {job}: client gone while held",
                match pattern {
                    Pattern::LongPoll => "long poll",
                    Pattern::Sse => "event stream",
                    _ => pattern.name(),
                }
            ))
        });
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        if cost.handler_done.is_none() {
            // Bad input the driver answered itself: never routed.
            let other = self.costs.of_mut(Pattern::Other);
            other.bytes_in += cost.bytes_in();
            other.bytes_out += cost.bytes_out;
            return;
        }
        let Some(queue) = self.tags.get_mut(&cost.conn) else {
            return;
        };
        let Some(tag) = queue.pop_front() else {
            return;
        };
        if queue.is_empty() {
            self.tags.remove(&cost.conn);
        }
        let c = self.costs.of_mut(tag.pattern);
        c.bytes_out += cost.bytes_out.saturating_sub(tag.streamed);
    }

    fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        match data {
            TIMER_STEP if self.step_timer.is_some_and(|(t, _)| t == timer) => self.on_step(ws),
            TIMER_SYNC => {
                self.sync_timer = None;
                self.sync_journal(ws.now(), false);
                self.arm_sync_timer(ws.http());
            }
            TIMER_WAIT | TIMER_HEARTBEAT => self.on_held_timer(ws, timer, data),
            _ => {}
        }
        // A step may land while nothing else happens: schedule what comes next.
        self.arm_step_timer(ws.http());
    }

    fn on_shutdown(&mut self, ws: &mut WsContext<'_, '_>) {
        // Held long polls get the current status; streams end. WebSockets get
        // their 1001 from the glue.
        let conns: Vec<(ConnId, Pattern)> = self
            .held
            .iter()
            .map(|(c, h)| (*c, h.kind.pattern()))
            .collect();
        for (conn, pattern) in conns {
            match pattern {
                Pattern::LongPoll => {
                    self.answer_long_poll(ws.http(), conn, Release::Shutdown);
                }
                Pattern::Sse => {
                    ws.http().end_stream(conn);
                    self.release(ws.http(), conn);
                }
                _ => {}
            }
        }
        self.sync_journal(ws.now(), true);
        self.costs.loop_cpu = thread_cpu_time();
        self.costs.jobs_held = self.store.len() as u64;
        if let Some((_, observer)) = &mut self.observer {
            observer(JobsReport::Costs(&self.costs));
        }
    }

    fn on_turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        // With `sync_every` zero, a turn that appended syncs before the loop
        // sleeps; otherwise this syncs only if the interval has passed.
        self.sync_journal(ws.now(), false);
        if self.turn_wakes.is_empty() {
            return;
        }
        let now = ws.now();
        let backlogged = self
            .turn_woken
            .drain(..)
            .filter(|c| ws.http().queued_bytes(*c).is_some_and(|q| q > 0))
            .count() as u64;
        let wakes = std::mem::take(&mut self.turn_wakes);
        let last = wakes.len().saturating_sub(1);
        for (i, mut wake) in wakes.into_iter().enumerate() {
            wake.time_to_all = now.saturating_duration_since(wake.started);
            // The backlog is the turn's: told with its last wake-up.
            if i == last {
                wake.backlogged = backlogged;
            }
            if self
                .costs
                .slowest_wake
                .is_none_or(|s| wake.time_to_all > s.time_to_all)
            {
                self.costs.slowest_wake = Some(wake);
            }
            self.costs.last_wake = Some(wake);
            self.trace(|start| {
                let mut what = format!("{} {}%:", wake.job, wake.progress);
                for (n, one, many) in [
                    (wake.long_polls, "long poll answered", "long polls answered"),
                    (wake.streams, "stream sent", "streams sent"),
                    (wake.websockets, "websocket sent", "websockets sent"),
                ] {
                    if n > 0 {
                        what.push_str(&format!(" {},", Count(n, one, many)));
                    }
                }
                what.pop();
                if wake.backlogged > 0 {
                    what.push_str(&format!(" ({} backlogged)", wake.backlogged));
                }
                what.push_str(&format!("; reached all in {}", Dur(wake.time_to_all)));
                TraceLine::new(start, wake.started, None, "wake-up").what(what)
            });
        }
    }
}

/// Bytes of a request as parsed: its head and its (decoded) body. Counted when
/// it is routed, so a held request whose client leaves is counted too.
fn request_bytes(req: &Incoming<'_>) -> u64 {
    (req.request().head_len() + req.body().len()) as u64
}

/// The events a reader at a cursor gets: after it, or, if it is older than what
/// is kept, from the oldest kept (a job restored from the journal keeps only its
/// last update; the reader gets that rather than nothing).
fn events_after<'a>(
    read: Read<'a, Update>,
    log: &'a super::log::EventLog<Update>,
) -> Option<super::log::Events<'a, Update>> {
    match read {
        Read::Events(events) => Some(events),
        Read::Gap { oldest_kept, .. } => match log.read(oldest_kept.saturating_sub(1)) {
            Read::Events(events) => Some(events),
            _ => None,
        },
        _ => None,
    }
}

/// `JobStatus: 40% at=1764480003000`: an update as SSE data or a WebSocket message.
fn push_status_line(out: &mut String, update: &Update) {
    use fmt::Write;
    let _ = write!(out, "JobStatus: {}% at={}", update.progress, update.at_ms);
}

/// One SSE event: `id: 40`, `data: JobStatus: 40% at=<ms>`, an empty line.
fn push_event(out: &mut String, update: &Update) {
    use fmt::Write;
    let _ = write!(out, "id: {}\ndata: ", update.progress);
    push_status_line(out, update);
    out.push_str("\n\n");
}

/// Bytes on the wire of a chunk of `len` bytes: hex size, CRLF, data, CRLF (an
/// empty part is not sent at all: it would be the last chunk).
fn chunk_wire_len(len: usize) -> u64 {
    if len == 0 {
        return 0;
    }
    let hex_digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as u64;
    hex_digits + 2 + len as u64 + 2
}

/// Bytes on the wire of an unmasked server text frame with `len` payload bytes.
fn ws_frame_len(len: usize) -> u64 {
    let header = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    header + len as u64
}

/// 400, naming the parameter and what is wrong with it.
fn bad_request(res: &mut Response, name: &str, why: &str) -> Reply {
    res.set_status(400);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut()
        .extend_from_slice(format!("bad {name}: {why}\n").as_bytes());
    Reply::Respond
}

/// 404 for a handle never given out or forgotten.
fn not_found(res: &mut Response, job: &JobId, keep: Duration) {
    res.set_status(404);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut().extend_from_slice(
        format!(
            "no such job: {job} (never given out, or finished more than {} s ago and forgotten)\n",
            keep.as_secs()
        )
        .as_bytes(),
    );
}

/// 405 with the methods the path allows (RFC 9110 §15.5.6).
fn method_not_allowed(res: &mut Response, allow: &str) -> Reply {
    res.set_status(405);
    res.header("Allow", allow);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut()
        .extend_from_slice(format!("this path answers {allow} only\n").as_bytes());
    Reply::Respond
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lengths_match_the_encoders() {
        for len in [0usize, 1, 15, 16, 255, 256, 4095, 4096, 70_000] {
            let data = vec![b'x'; len];
            let mut chunk = Vec::new();
            crate::http::response::encode_chunk(&mut chunk, &data);
            assert_eq!(chunk_wire_len(len), chunk.len() as u64, "chunk of {len}");
            let mut frame = Vec::new();
            crate::ws::write_binary(&mut frame, &data);
            assert_eq!(ws_frame_len(len), frame.len() as u64, "frame of {len}");
        }
    }

    #[test]
    fn an_event_is_id_then_data_then_an_empty_line() {
        let mut out = String::new();
        push_event(
            &mut out,
            &Update {
                progress: 40,
                at_ms: 1_764_480_003_000,
            },
        );
        assert_eq!(out, "id: 40\ndata: JobStatus: 40% at=1764480003000\n\n");
    }

    #[test]
    fn cursors_are_progress_values_on_the_step_grid() {
        let app = JobsApp::new(JobsConfig::default()).expect("no store file");
        assert_eq!(app.cursor_of("0"), Some(1));
        assert_eq!(app.cursor_of("40"), Some(5));
        assert_eq!(app.cursor_of("100"), Some(11));
        for bad in ["45", "110", "-10", "+10", "", "4 0", "1e2", "999"] {
            assert_eq!(app.cursor_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stats_text_names_every_counter_once() {
        let mut costs = PollingCosts::default();
        costs.of_mut(Pattern::LongPoll).held_now = 3;
        let text = costs.to_stats_text();
        assert!(text.lines().any(|l| l == "long.held_now 3"));
        let names: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        assert_eq!(names.len(), 6 * 9 + 2);
    }
}
