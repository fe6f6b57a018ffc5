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
//!   messages on a connection that could also carry messages the other way. A
//!   client that reconnects adds `&since=N` (the last progress it saw) and gets
//!   only what came after, as SSE's `Last-Event-ID` does.
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
//! | WebSocket | per connection, here, from `since=N` when it connects | the server pushes |
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
//! path: 405 with `Allow`. An unknown path: 404. Every path that answers GET
//! answers HEAD the same way, without the body (RFC 9110 §9.1, §9.3.2).
//!
//! # Where the code is
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the settings, the server's state ([`JobsApp`]), starting it |
//! | `readers.rs` | the held readers: the step timer, waking a job's readers, holding and releasing them, long-poll waits and SSE heartbeats |
//! | `routes.rs` | the requests: routing, the parameters and their 400s, submit, short and long polls, opening an event stream |
//! | `app.rs` | the [`WsApp`] callbacks the WebSocket glue calls, the WebSocket subscribers, shutdown, the wake-up's cost at the end of a turn |
//! | `wire.rs` | the bytes: an SSE event, a status line, chunk and frame sizes |
//! | `costs.rs` | what each pattern cost ([`PollingCosts`]), as a table and as `/stats` text |

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::jobs::{JobConfig, JobId, JobStore, Update};
use super::journal::{Journal, JournalConfig, JournalCosts, JournalError, Replayed};
use super::log::Read;
use super::websocket::{Message, Opened, WsApp, WsClosed, WsContext, not_a_websocket};
use crate::cost::RequestCost;
use crate::http::Response;
use crate::http::query;
use crate::server::{CloseReason, ConnId, Context, Incoming, Reply, TimerId};
use crate::trace::{Count, Dur, Size, TraceLine};
use crate::ws::CloseCode;

mod app;
mod costs;
mod readers;
mod routes;
mod wire;

pub use costs::{Pattern, PatternCost, PollingCosts, WakeCost, thread_cpu_time};
use routes::{bad_request, not_found, request_bytes};
use wire::{
    FINISHED, HEARTBEAT, chunk_wire_len, events_after, push_event, push_missed, push_status_line,
    ws_frame_len,
};

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

/// What the server reports to an observer (`--trace`).
#[derive(Debug)]
pub enum JobsReport<'a> {
    /// One event, as a trace line.
    Line(TraceLine),
    /// The costs so far, at shutdown.
    Costs(&'a PollingCosts),
    /// Something went wrong that a person must hear of, trace or not: the
    /// journal could not be written or synced (the jobs go on in memory, but a
    /// restart would not know what was lost).
    Warning(&'a str),
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

    /// Tells the observer of a failure, whether or not it wants trace lines.
    pub(super) fn warn(&mut self, text: &str) {
        if let Some((_, observer)) = &mut self.observer {
            observer(JobsReport::Warning(text));
        }
    }

    /// Tells the observer of an event, as a trace line, if it wants lines; the
    /// line is built only then.
    pub(super) fn trace(&mut self, line: impl FnOnce(Instant) -> TraceLine) {
        if let Some((start, observer)) = &mut self.observer
            && self.trace_lines
        {
            observer(JobsReport::Line(line(*start)));
        }
    }
}
