//! Publish/subscribe through Redis, two ways side by side: *push*
//! (`PUBLISH`/`SUBSCRIBE`) and *pull* (a stream, `XADD` and `XREAD BLOCK`), and
//! what each does to a subscriber that goes away for a while.
//!
//! # Push: delivered to whoever is connected now
//!
//! `PUBLISH channel message` hands the message to the connections subscribed to
//! the channel at that instant, and forgets it: Redis keeps no copy. This is
//! RabbitMQ's model in the notes ("pushes messages automatically to the clients
//! that are connected to it"), and the notes' objection to push is the one this
//! lab measures: "we have no idea what happened to the pushed data". A
//! subscriber that is disconnected, or reconnecting, or not yet subscribed
//! again, simply does not get what is published meanwhile, and nobody is told:
//! `PUBLISH`'s reply counts the connections it was handed to (0 while the
//! subscriber is away), not what any of them did with it.
//!
//! # Pull: the consumer's cursor
//!
//! The notes add: "for this reason Kafka changed to long polling". In the pull
//! model the broker keeps an append-only log and each consumer keeps a cursor,
//! its *offset* (the project's design: one log, many readers, each reader a
//! cursor). A Redis stream is such a log: `XADD key MAXLEN ~ cap * field value`
//! appends an entry with an id (`<ms>-<seq>`, increasing) and trims the oldest
//! beyond about `cap`; `XREAD BLOCK ms STREAMS key <last id>` answers the entries
//! after the consumer's last id, or waits up to `ms` for one (Kafka's long poll:
//! a fetch that waits for data instead of answering "nothing" at once). The
//! consumer moves its own cursor. If it goes away and comes back, it asks again
//! from its last id: nothing is lost while the log still holds it, nothing is
//! read twice.
//!
//! # Pull, away longer than the log keeps: told, not silent
//!
//! A bounded log forgets. If more is appended while a consumer is away than the
//! cap keeps, the entries after its cursor are gone when it returns. Kafka's
//! consumer learns it from the broker ("offset out of range": its offset is
//! below the log's start offset) and must decide what to do; it is never handed
//! a silent hole. A Redis stream gives the same numbers (Redis 7,
//! `XINFO STREAM`):
//!
//! - `entries-added` minus `length`: how many entries were ever removed, the
//!   log's *start offset*. Trimming removes the oldest first, so a consumer
//!   that counted the entries it read from the start of the stream (its
//!   offset) and finds the start offset past it is short of exactly
//!   `start offset - offset` entries, all right after its cursor. This is the
//!   check the lab relies on.
//! - `max-deleted-entry-id`: the newest id removed. Redis 7.0 moves it on
//!   `XDEL` only, not when `MAXLEN` trims (seen with 7.0.15: it stays `0-0`
//!   however much is trimmed), so it cannot be the trimming check there; an id
//!   past the cursor still says that an entry the consumer never read was
//!   deleted, and the lab reports that too (with no count).
//!
//! The count assumes a stream that is only trimmed: an `XDEL` of entries
//! already read would make the start offset lag the cursor.
//!
//! On every (re)connect the pull subscriber pipelines `XINFO STREAM` right
//! before its `XREAD`, in one write: Redis runs the commands of one client's
//! read back to back, so the check describes the log the read starts from.
//! [`GapNotice`] is what it is told.
//!
//! `MAXLEN ~ cap` trims by whole internal nodes (100 entries by default), so
//! "about 50" keeps more (after 300 appends with `MAXLEN ~ 50`, Redis 7.0.15
//! held 100; with `MAXLEN = 50`, 50): the lab's beyond-the-cap row trims
//! exactly (`MAXLEN = cap`, [`MaxLen::Exact`]) so that the numbers are the
//! cap's.
//!
//! # The lab
//!
//! [`PubSubLab`] is a [`Handler`] run by the crate's own loop
//! ([`PubSubLab::run`] binds a [`Server`] on a free loopback port whose
//! listener nobody uses): a publisher and a subscriber, each a [`RespLink`] of
//! its own (a blocking `XREAD` must never delay a publish, see
//! [`crate::resp::link`]), and the loop's timers. The publisher sends
//! [`LabConfig::messages`] numbered messages, one every
//! [`LabConfig::interval`]; each carries its number and its send time, in
//! microseconds since one monotonic origin, so latency is receipt minus send on
//! one clock. When the subscriber has received message
//! [`LabConfig::leave_after`], it closes its connection for [`LabConfig::away`],
//! then connects again: push subscribes again, pull resumes from its cursor.
//! [`PubSubReport`] counts what arrived, what was lost, what came twice, what
//! the subscriber was told, and the latencies.
//!
//! What the three rows of the `pubsub` example show (300 messages, 10 ms
//! apart, away for 1 s after the 100th, so about 100 published meanwhile):
//!
//! | row | lost | twice | told | latency |
//! |---|---|---|---|---|
//! | push | what was published while away | 0 | never | under a millisecond, for what arrives |
//! | pull (`MAXLEN ~` far above the run) | 0 | 0 | nothing to tell | up to the absence, for what waited in the log |
//! | pull, `MAXLEN = 50` | what was published while away, less the 50 kept | 0 | yes, the exact count | as pull |
//!
//! A subscriber that leaves in the middle of an `XREAD` batch has handled the
//! entries up to its cursor only; the rest are read again, once, when it
//! comes back. Leaving stops the subscriber's [`RespLink`]
//! ([`RespLink::stop`]: it forgets the replies its old connection owed) and
//! starts it again later.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http::Response;
use crate::resp::command::{self, MaxLen};
use crate::resp::{
    LinkConfig, LinkEvent, PubSub, RespLink, StreamId, Value, pubsub, stream_info, xread,
};
use crate::server::{
    Config, Context, Handler, Incoming, OutEnd, OutId, Reply, Server, ServerHandle, TimerId,
};

/// How the subscriber gets its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `PUBLISH` / `SUBSCRIBE`: Redis pushes to whoever is subscribed now.
    Push,
    /// A stream: `XADD`, and the subscriber's `XREAD BLOCK` from its last id.
    Pull,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
        })
    }
}

/// One run of the lab (one row of the `pubsub` example's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// The row's name in reports (`push`, `pull`, `pull-beyond-cap`).
    pub name: String,
    /// Redis's address.
    pub redis: SocketAddr,
    /// Push or pull.
    pub mode: Mode,
    /// Messages published, numbered from 1.
    pub messages: u64,
    /// The time between two publishes.
    pub interval: Duration,
    /// The subscriber leaves once it has received this message (about a third
    /// of the messages).
    pub leave_after: u64,
    /// How long it stays away.
    pub away: Duration,
    /// How the stream is trimmed (pull only).
    pub maxlen: MaxLen,
    /// How long one `XREAD` waits for entries (pull only).
    pub block: Duration,
    /// The most entries one `XREAD` returns (pull only).
    pub count: u64,
    /// After the last publish is acknowledged with the subscriber back, how
    /// long to wait for messages still on their way before the run ends (the
    /// run ends at once when the last message arrives).
    pub drain: Duration,
}

impl LabConfig {
    /// A push row on `redis` with the defaults: 300 messages every 10 ms, the
    /// subscriber away for 1 s after the 100th.
    pub fn push(redis: SocketAddr) -> LabConfig {
        LabConfig {
            name: "push".into(),
            redis,
            mode: Mode::Push,
            messages: 300,
            interval: Duration::from_millis(10),
            leave_after: 100,
            away: Duration::from_millis(1000),
            maxlen: MaxLen::About(10_000),
            block: Duration::from_millis(1000),
            count: 1000,
            drain: Duration::from_millis(500),
        }
    }

    /// A pull row: as [`LabConfig::push`], on a stream capped far above what a
    /// run publishes (`MAXLEN ~ 10000`; [`LabConfig::with_messages`] keeps it at
    /// least ten times the messages).
    pub fn pull(redis: SocketAddr) -> LabConfig {
        LabConfig {
            name: "pull".into(),
            mode: Mode::Pull,
            ..LabConfig::push(redis)
        }
    }

    /// A pull row whose stream keeps exactly `cap` entries (`MAXLEN = cap`):
    /// less than is published while the subscriber is away, so it must be told
    /// of a gap.
    pub fn pull_beyond_cap(redis: SocketAddr, cap: u64) -> LabConfig {
        LabConfig {
            name: "pull-beyond-cap".into(),
            maxlen: MaxLen::Exact(cap),
            ..LabConfig::pull(redis)
        }
    }

    /// Sets the number of messages, the subscriber leaving after a third of
    /// them; an approximately trimmed stream's cap stays at least ten times
    /// the messages.
    pub fn with_messages(mut self, messages: u64) -> LabConfig {
        self.messages = messages.max(1);
        self.leave_after = (self.messages / 3).max(1);
        if let MaxLen::About(cap) = self.maxlen {
            self.maxlen = MaxLen::About(cap.max(self.messages.saturating_mul(10)));
        }
        self
    }

    /// The longest a run may take before it is abandoned: publishing, the
    /// absence, the drain, and ten seconds of slack.
    pub fn deadline(&self) -> Duration {
        let n = u32::try_from(self.messages).unwrap_or(u32::MAX);
        self.interval.saturating_mul(n) + self.away + self.drain + Duration::from_secs(10)
    }
}

/// What the pull subscriber was told when it came back: entries after its
/// cursor were trimmed before it read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapNotice {
    /// Its last id when it came back.
    pub cursor: StreamId,
    /// Its offset: the entries it had read since the stream began.
    pub offset: u64,
    /// The stream's start offset (`entries-added - length`), if Redis said
    /// `entries-added` (Redis 7).
    pub start_offset: Option<u64>,
    /// The oldest entry the stream still holds, where reading resumes.
    pub first_kept: Option<StreamId>,
    /// How many entries after the cursor are gone: the start offset minus
    /// the offset. `None` when only `max-deleted-entry-id` told of a deletion.
    pub missing: Option<u64>,
}

/// Latencies of the messages received (each first receipt), receipt minus
/// send on one monotonic clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// How many.
    pub samples: usize,
    /// The median (nearest rank).
    pub p50: Duration,
    /// The 99th percentile (nearest rank).
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
}

impl Latency {
    /// The summary of `samples` (sorted here).
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let rank = |p: usize| -> Duration {
            // Nearest rank: the smallest value with at least p% at or below it.
            let n = samples.len();
            let at = (p * n).div_ceil(100).clamp(1, n.max(1)) - 1;
            samples.get(at).copied().unwrap_or_default()
        };
        Latency {
            samples: samples.len(),
            p50: rank(50),
            p99: rank(99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

/// What one run of the lab saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubReport {
    /// The row's name ([`LabConfig::name`]).
    pub name: String,
    /// Push or pull.
    pub mode: Mode,
    /// The stream's trimming (pull only).
    pub maxlen: Option<MaxLen>,
    /// Messages Redis acknowledged (`PUBLISH` or `XADD` answered without error).
    pub published: u64,
    /// Of those, messages published while the subscriber was away (from its
    /// leaving until it was connected and subscribed again).
    pub published_while_away: u64,
    /// `PUBLISH` replies of 0: Redis handed the message to nobody, and said so
    /// to the publisher only.
    pub published_to_nobody: u64,
    /// Messages never published: the publisher's link was down (refused), or
    /// its connection ended before Redis answered (maybe published, maybe not).
    pub not_published: u64,
    /// Connections the subscriber made (2 for one absence; more if Redis cut
    /// it off and it reconnected).
    pub subscriber_connects: u64,
    /// Distinct messages the subscriber received.
    pub received: u64,
    /// Receipts of a message already received.
    pub duplicates: u64,
    /// Messages published and never received.
    pub lost: u64,
    /// What the subscriber was told of entries trimmed before it read them.
    pub gaps: Vec<GapNotice>,
    /// Latencies of the messages received.
    pub latency: Latency,
    /// How long the run took, from the first publish.
    pub elapsed: Duration,
}

impl PubSubReport {
    /// Whether the subscriber was told of any gap.
    pub fn gap_told(&self) -> bool {
        !self.gaps.is_empty()
    }

    /// How many missing messages the subscriber was told of, in all.
    pub fn told_missing(&self) -> u64 {
        self.gaps.iter().filter_map(|g| g.missing).sum()
    }
}

/// Why a run did not give a report.
#[derive(Debug)]
pub enum LabError {
    /// Redis could not be reached when the run started.
    Unreachable {
        /// Where it was looked for.
        addr: SocketAddr,
        /// What the connection said.
        why: String,
    },
    /// Redis answered a command with an error.
    Redis {
        /// The command.
        command: &'static str,
        /// Its error reply.
        message: String,
    },
    /// The run did not finish within [`LabConfig::deadline`] (Redis went away
    /// and did not come back, say).
    TimedOut(Duration),
    /// The loop could not be set up or failed.
    Io(std::io::Error),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Unreachable { addr, why } => write!(
                f,
                "cannot reach Redis at {addr} ({why}); start one with: \
                 redis-server --port {} --save \"\"",
                addr.port()
            ),
            LabError::Redis { command, message } => {
                write!(f, "Redis answered {command} with an error: {message}")
            }
            LabError::TimedOut(d) => write!(
                f,
                "the run did not finish within {} ms (did Redis go away?)",
                d.as_millis()
            ),
            LabError::Io(e) => write!(f, "the loop failed: {e}"),
        }
    }
}

impl std::error::Error for LabError {}

/// Timer data: the links' own timers, and the lab's.
const PUBLISHER_LINK: u64 = 1;
const SUBSCRIBER_LINK: u64 = 2;
const TICK: u64 = 3;
const BACK: u64 = 4;
const DRAIN: u64 = 5;
const DEADLINE: u64 = 6;

/// Reply tags on the subscriber's link, and the `DEL` at the end on the
/// publisher's (whose other tags are message numbers, from 1).
const TAG_XINFO: u64 = u64::MAX - 1;
const TAG_XREAD: u64 = u64::MAX - 2;
const TAG_DEL: u64 = u64::MAX - 3;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for both links (and the subscription).
    Connecting,
    /// Publishing.
    Running,
    /// Removing the stream.
    Finishing,
    /// Over: the loop is shutting down.
    Done,
}

/// One run of the lab, as a [`Handler`] (see the [module docs](self)).
#[derive(Debug)]
pub struct PubSubLab {
    /// The run.
    config: LabConfig,
    /// The channel or stream key, unique to this run.
    key: Vec<u8>,
    /// Stops the loop when the run is over.
    handle: Option<ServerHandle>,
    /// `PUBLISH` or `XADD`.
    publisher: RespLink,
    /// `SUBSCRIBE`d, or looping on `XREAD BLOCK`.
    subscriber: RespLink,
    /// Where the run is.
    phase: Phase,
    /// The clock's origin: send times are microseconds since it.
    origin: Instant,
    /// The next message to publish.
    next_seq: u64,
    /// Publishes whose replies are due.
    acks_due: u64,
    /// Publishes acknowledged.
    published: u64,
    /// Of those sent, while the subscriber was away.
    published_while_away: u64,
    /// `PUBLISH` replies of 0.
    published_to_nobody: u64,
    /// Publishes refused or unanswered.
    not_published: u64,
    /// Connections the subscriber made.
    subscriber_connects: u64,
    /// The subscriber is connected and set up (subscribed, or reading).
    present: bool,
    /// The subscriber left and is not back yet.
    away: bool,
    /// The subscriber has left once.
    left_once: bool,
    /// Which subscriber link is the current one (each leave makes a new one).
    generation: u64,
    /// Which messages arrived, by number.
    seen: Vec<bool>,
    /// Distinct messages received.
    received: u64,
    /// Receipts of a message already received.
    duplicates: u64,
    /// Latencies of first receipts.
    latencies: Vec<Duration>,
    /// The pull subscriber's last id.
    cursor: StreamId,
    /// The pull subscriber's offset: entries it read since the stream began.
    offset: u64,
    /// What it was told.
    gaps: Vec<GapNotice>,
    /// The drain timer, once set.
    drain_timer: Option<TimerId>,
    /// When the run ended.
    ended_at: Option<Instant>,
    /// Why the run failed, if it did.
    error: Option<LabError>,
    /// Scratch for link events.
    events: Vec<LinkEvent>,
}

/// A key no other run uses: the row's name, the process, a counter, the clock.
fn unique_key(name: &str) -> Vec<u8> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "wirepatterns:pubsub:{name}:{}:{}:{nanos}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
    .into_bytes()
}

/// `<seq> <sent_us>`, the push payload.
fn parse_payload(payload: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, sent) = text.split_once(' ')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

/// The `seq` and `sent_us` fields of a stream entry.
fn entry_fields(fields: &[(&[u8], &[u8])]) -> Option<(u64, u64)> {
    let field = |name: &[u8]| -> Option<u64> {
        let (_, v) = fields.iter().find(|(f, _)| *f == name)?;
        std::str::from_utf8(v).ok()?.parse().ok()
    };
    Some((field(b"seq")?, field(b"sent_us")?))
}

impl PubSubLab {
    /// A run that has not started: [`PubSubLab::run`] runs it.
    pub fn new(config: LabConfig) -> PubSubLab {
        let key = unique_key(&config.name);
        let messages = usize::try_from(config.messages).unwrap_or(usize::MAX);
        PubSubLab {
            publisher: RespLink::new(LinkConfig::new(config.redis), PUBLISHER_LINK),
            subscriber: Self::new_subscriber(&config),
            key,
            handle: None,
            phase: Phase::Connecting,
            origin: Instant::now(),
            next_seq: 1,
            acks_due: 0,
            published: 0,
            published_while_away: 0,
            published_to_nobody: 0,
            not_published: 0,
            subscriber_connects: 0,
            present: false,
            away: false,
            left_once: false,
            generation: 0,
            seen: vec![false; messages.saturating_add(1).min(1 << 24)],
            received: 0,
            duplicates: 0,
            latencies: Vec::new(),
            cursor: StreamId::default(),
            offset: 0,
            gaps: Vec::new(),
            drain_timer: None,
            ended_at: None,
            error: None,
            events: Vec::new(),
            config,
        }
    }

    /// Runs `config` on a loop of its own (a [`Server`] on a free loopback
    /// port, its listener unused) and returns what it saw. An unreachable
    /// Redis ends it at once with [`LabError::Unreachable`].
    pub fn run(config: LabConfig) -> Result<PubSubReport, LabError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut server =
            Server::bind(Config::new(addr), PubSubLab::new(config)).map_err(LabError::Io)?;
        let handle = server.handle();
        server.handler_mut().handle = Some(handle);
        server.run().map_err(LabError::Io)?;
        server.into_handler().into_report()
    }

    /// The channel or stream key of this run.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// What the run saw, or why it failed.
    pub fn into_report(self) -> Result<PubSubReport, LabError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let published = self.published;
        let ended = self.ended_at.unwrap_or_else(Instant::now);
        Ok(PubSubReport {
            name: self.config.name,
            mode: self.config.mode,
            maxlen: (self.config.mode == Mode::Pull).then_some(self.config.maxlen),
            published,
            published_while_away: self.published_while_away,
            published_to_nobody: self.published_to_nobody,
            not_published: self.not_published,
            subscriber_connects: self.subscriber_connects,
            received: self.received,
            duplicates: self.duplicates,
            lost: published.saturating_sub(self.received),
            gaps: self.gaps,
            latency: Latency::of(self.latencies),
            elapsed: ended.saturating_duration_since(self.origin),
        })
    }

    /// A subscriber link that has not connected yet.
    fn new_subscriber(config: &LabConfig) -> RespLink {
        let mut link = LinkConfig::new(config.redis);
        link.subscriber = config.mode == Mode::Push;
        RespLink::new(link, SUBSCRIBER_LINK)
    }

    /// Starts publishing once both links are up and the subscriber is set up.
    fn maybe_begin(&mut self, ctx: &mut Context<'_>) {
        if self.phase == Phase::Connecting && self.publisher.is_up() && self.present {
            self.phase = Phase::Running;
            self.origin = Instant::now();
            self.publish_next(ctx);
        }
    }

    /// Publishes the next message and sets the timer of the one after.
    fn publish_next(&mut self, ctx: &mut Context<'_>) {
        let seq = self.next_seq;
        if self.phase != Phase::Running || seq > self.config.messages {
            return;
        }
        let sent_us = Instant::now()
            .saturating_duration_since(self.origin)
            .as_micros();
        let sent_us = u64::try_from(sent_us).unwrap_or(u64::MAX);
        let key = &self.key;
        let sent = match self.config.mode {
            Mode::Push => {
                let payload = format!("{seq} {sent_us}");
                self.publisher.command(Some(seq), |out| {
                    command::publish(out, key, payload.as_bytes());
                })
            }
            Mode::Pull => {
                let (seq_text, sent_text) = (seq.to_string(), sent_us.to_string());
                let maxlen = self.config.maxlen;
                self.publisher.command(Some(seq), |out| {
                    command::xadd_trimmed(
                        out,
                        key,
                        Some(maxlen),
                        b"*",
                        &[
                            (b"seq", seq_text.as_bytes()),
                            (b"sent_us", sent_text.as_bytes()),
                        ],
                    );
                })
            }
        };
        if sent {
            self.acks_due += 1;
            if !self.present {
                self.published_while_away += 1;
            }
        } else {
            self.not_published += 1;
        }
        self.next_seq += 1;
        if self.next_seq <= self.config.messages {
            let n = u32::try_from(self.next_seq - 1).unwrap_or(u32::MAX);
            let at = self.origin + self.config.interval.saturating_mul(n);
            ctx.set_timer_at(at, TICK);
        }
        self.check_done(ctx);
    }

    /// Asks for the entries after the cursor, waiting up to the block time.
    fn read_next(&mut self) {
        let (key, cursor) = (&self.key, self.cursor.to_string());
        let (count, block) = (self.config.count, self.config.block.as_millis());
        let block = u64::try_from(block).unwrap_or(u64::MAX).max(1);
        self.subscriber.command(Some(TAG_XREAD), |out| {
            command::xread(out, Some(count), Some(block), &[(key, cursor.as_bytes())]);
        });
    }

    /// The subscriber's link is up: subscribe, or check for a gap and read.
    fn subscriber_up(&mut self, ctx: &mut Context<'_>) {
        let key = &self.key;
        match self.config.mode {
            Mode::Push => {
                // Present once Redis confirms (a `subscribe` message).
                self.subscriber
                    .command(None, |out| command::subscribe(out, &[key]));
            }
            Mode::Pull => {
                // In the same write as the XREAD: Redis runs both back to back,
                // so the check describes the log the read starts from.
                self.subscriber.command(Some(TAG_XINFO), |out| {
                    command::xinfo_stream(out, key);
                });
                self.read_next();
                self.came_back(ctx);
            }
        }
        self.subscriber.flush(ctx);
    }

    /// The subscriber is set up again.
    fn came_back(&mut self, ctx: &mut Context<'_>) {
        self.present = true;
        self.away = false;
        self.maybe_begin(ctx);
        self.check_done(ctx);
    }

    /// The subscriber leaves: its connection closes (the link forgets the
    /// replies that connection owed), and a timer brings it back.
    fn leave(&mut self, ctx: &mut Context<'_>) {
        self.left_once = true;
        self.away = true;
        self.generation += 1;
        self.present = false;
        self.subscriber.stop(ctx);
        ctx.set_timer(self.config.away, BACK);
    }

    /// Message `seq`, sent at `sent_us`, arrived.
    fn receive(&mut self, ctx: &mut Context<'_>, seq: u64, sent_us: u64) {
        let Some(seen) = usize::try_from(seq)
            .ok()
            .filter(|&i| i > 0)
            .and_then(|i| self.seen.get_mut(i))
        else {
            return;
        };
        if *seen {
            self.duplicates += 1;
        } else {
            *seen = true;
            self.received += 1;
            let sent = self.origin + Duration::from_micros(sent_us);
            self.latencies
                .push(Instant::now().saturating_duration_since(sent));
        }
        if !self.left_once && seq >= self.config.leave_after {
            self.leave(ctx);
        }
    }

    /// What the subscriber's link of generation `generation` reported.
    fn subscriber_event(&mut self, ctx: &mut Context<'_>, event: LinkEvent, generation: u64) {
        if generation != self.generation {
            // Parsed from the connection it just closed: it is gone.
            return;
        }
        match event {
            LinkEvent::Push(value) => match pubsub(&value) {
                Some(PubSub::Subscribe { channel, .. }) if channel == self.key.as_slice() => {
                    self.came_back(ctx);
                }
                Some(PubSub::Message { channel, payload }) if channel == self.key.as_slice() => {
                    if let Some((seq, sent_us)) = parse_payload(payload) {
                        self.receive(ctx, seq, sent_us);
                        self.check_done(ctx);
                    }
                }
                _ => {}
            },
            LinkEvent::Reply {
                tag: TAG_XINFO,
                value,
            } => self.check_gap(&value),
            LinkEvent::Reply {
                tag: TAG_XREAD,
                value,
            } => {
                if let Some(message) = value.as_error() {
                    let message = String::from_utf8_lossy(message).into_owned();
                    self.fail(
                        ctx,
                        LabError::Redis {
                            command: "XREAD",
                            message,
                        },
                    );
                    return;
                }
                let streams = xread(&value).unwrap_or_default();
                let key = std::mem::take(&mut self.key);
                'entries: for stream in streams.iter().filter(|s| s.stream == key.as_slice()) {
                    for entry in &stream.entries {
                        if generation != self.generation {
                            // It left in the middle of this batch: the rest
                            // is read again from the cursor when it is back.
                            break 'entries;
                        }
                        if let Some(id) = StreamId::parse(entry.id) {
                            self.cursor = id;
                        }
                        self.offset += 1;
                        if let Some((seq, sent_us)) = entry_fields(&entry.fields) {
                            self.receive(ctx, seq, sent_us);
                        }
                    }
                }
                self.key = key;
                if generation == self.generation && self.phase != Phase::Done {
                    self.read_next();
                }
                self.check_done(ctx);
            }
            LinkEvent::Up
            | LinkEvent::Down { .. }
            | LinkEvent::Reply { .. }
            | LinkEvent::Broken(_) => {}
        }
    }

    /// The answer to `XINFO STREAM` on coming back: were entries after the
    /// cursor trimmed?
    fn check_gap(&mut self, value: &Value) {
        // No stream yet ("no such key"): nothing was removed.
        let Some(info) = stream_info(value) else {
            return;
        };
        let start_offset = info
            .entries_added
            .map(|added| added.saturating_sub(info.length));
        let missing = start_offset
            .map(|start| start.saturating_sub(self.offset))
            .filter(|&missing| missing > 0);
        let deleted_unread = info.max_deleted.is_some_and(|id| id > self.cursor);
        if missing.is_none() && !deleted_unread {
            return;
        }
        self.gaps.push(GapNotice {
            cursor: self.cursor,
            offset: self.offset,
            start_offset,
            first_kept: info.first_entry,
            missing,
        });
        if let Some(missing) = missing {
            // The entries it never read count in its offset from now on.
            self.offset += missing;
        }
    }

    /// What the publisher's link reported.
    fn publisher_event(&mut self, ctx: &mut Context<'_>, event: LinkEvent) {
        match event {
            LinkEvent::Reply { tag: TAG_DEL, .. } => self.end(ctx),
            LinkEvent::Reply { value, .. } => {
                self.acks_due = self.acks_due.saturating_sub(1);
                if let Some(message) = value.as_error() {
                    let message = String::from_utf8_lossy(message).into_owned();
                    let command = match self.config.mode {
                        Mode::Push => "PUBLISH",
                        Mode::Pull => "XADD",
                    };
                    self.fail(ctx, LabError::Redis { command, message });
                    return;
                }
                self.published += 1;
                if value.as_integer() == Some(0) {
                    self.published_to_nobody += 1;
                }
                self.check_done(ctx);
            }
            LinkEvent::Up | LinkEvent::Down { .. } | LinkEvent::Push(_) | LinkEvent::Broken(_) => {}
        }
    }

    /// Ends the run once everything is published and acknowledged, the
    /// subscriber is back, and the last message arrived (or, if it never
    /// will, after the drain time).
    fn check_done(&mut self, ctx: &mut Context<'_>) {
        let published_all = self.next_seq > self.config.messages && self.acks_due == 0;
        if self.phase != Phase::Running || !published_all || !self.present {
            return;
        }
        let last = usize::try_from(self.config.messages).unwrap_or(usize::MAX);
        if self.seen.get(last).copied().unwrap_or(false) {
            self.finish(ctx);
        } else if self.drain_timer.is_none() {
            self.drain_timer = Some(ctx.set_timer(self.config.drain, DRAIN));
        }
    }

    /// The run is over: remove the stream, then stop.
    fn finish(&mut self, ctx: &mut Context<'_>) {
        if self.phase != Phase::Running {
            return;
        }
        self.ended_at = Some(Instant::now());
        self.phase = Phase::Finishing;
        self.subscriber.stop(ctx);
        let key = &self.key;
        let asked = self.config.mode == Mode::Pull
            && self
                .publisher
                .command(Some(TAG_DEL), |out| command::del(out, &[key]));
        if asked {
            self.publisher.flush(ctx);
        } else {
            self.end(ctx);
        }
    }

    /// Fails the run with `error` (the first one counts) and stops.
    fn fail(&mut self, ctx: &mut Context<'_>, error: LabError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.end(ctx);
    }

    /// Closes both links and stops the loop.
    fn end(&mut self, ctx: &mut Context<'_>) {
        if self.phase == Phase::Done {
            return;
        }
        self.ended_at.get_or_insert_with(Instant::now);
        self.phase = Phase::Done;
        self.publisher.stop(ctx);
        self.subscriber.stop(ctx);
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
    }
}

impl Handler for PubSubLab {
    fn on_request(&mut self, _: &mut Context<'_>, _: &Incoming<'_>, res: &mut Response) -> Reply {
        res.set_status(404);
        Reply::Respond
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.publisher.start(ctx);
        self.subscriber.start(ctx);
        ctx.set_timer(self.config.deadline(), DEADLINE);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, data: u64) {
        if self.publisher.on_timer(ctx, timer) || self.subscriber.on_timer(ctx, timer) {
            return;
        }
        match data {
            TICK => self.publish_next(ctx),
            BACK if self.phase != Phase::Done => self.subscriber.start(ctx),
            DRAIN => self.finish(ctx),
            DEADLINE if self.phase == Phase::Finishing => self.end(ctx),
            DEADLINE => {
                let deadline = self.config.deadline();
                self.fail(ctx, LabError::TimedOut(deadline));
            }
            _ => {}
        }
    }

    fn on_out_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        // Each link greets Redis; it is up (LinkEvent::Up) when Redis answers.
        if !self.subscriber.on_connected(ctx, out) {
            self.publisher.on_connected(ctx, out);
        }
    }

    fn on_out_data(&mut self, ctx: &mut Context<'_>, out: OutId, data: &[u8]) {
        let mut events = std::mem::take(&mut self.events);
        if self.subscriber.on_data(ctx, out, data, &mut events) {
            let generation = self.generation;
            for event in events.drain(..) {
                if event == LinkEvent::Up {
                    self.subscriber_connects += 1;
                    self.subscriber_up(ctx);
                } else {
                    self.subscriber_event(ctx, event, generation);
                }
            }
        } else if self.publisher.on_data(ctx, out, data, &mut events) {
            for event in events.drain(..) {
                if event == LinkEvent::Up {
                    self.maybe_begin(ctx);
                } else {
                    self.publisher_event(ctx, event);
                }
            }
        }
        events.clear();
        self.events = events;
    }

    fn on_out_closed(&mut self, ctx: &mut Context<'_>, out: OutId, end: OutEnd) {
        let subscriber = self.subscriber.on_closed(ctx, out, end);
        let down = match subscriber {
            Some(down) => {
                // Lost unasked: it reconnects by itself and sets up again.
                self.present = false;
                Some(down)
            }
            None => self.publisher.on_closed(ctx, out, end).inspect(|down| {
                if let LinkEvent::Down { unanswered, .. } = down {
                    let unanswered = (*unanswered as u64).min(self.acks_due);
                    self.acks_due -= unanswered;
                    self.not_published += unanswered;
                }
            }),
        };
        if down.is_some() && self.phase == Phase::Connecting {
            let addr = self.config.redis;
            let why = match end {
                // The link gave up on a connect that hung.
                OutEnd::Closed => format!(
                    "no answer within {} ms",
                    LinkConfig::new(addr).connect_timeout.as_millis()
                ),
                end => end.to_string(),
            };
            self.fail(ctx, LabError::Unreachable { addr, why });
        }
    }

    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        self.publisher.flush(ctx);
        self.subscriber.flush(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn payloads_and_fields() {
        assert_eq!(parse_payload(b"12 3456"), Some((12, 3456)));
        assert_eq!(parse_payload(b"12"), None);
        assert_eq!(parse_payload(b"x 1"), None);
        let fields: [(&[u8], &[u8]); 2] = [(b"seq", b"7"), (b"sent_us", b"99")];
        assert_eq!(entry_fields(&fields), Some((7, 99)));
        assert_eq!(entry_fields(&fields[..1]), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |n: u64| Duration::from_millis(n);
        let l = Latency::of((1..=100).rev().map(ms).collect());
        assert_eq!(
            (l.samples, l.p50, l.p99, l.max),
            (100, ms(50), ms(99), ms(100))
        );
        let one = Latency::of(vec![ms(3)]);
        assert_eq!((one.p50, one.p99, one.max), (ms(3), ms(3), ms(3)));
        assert_eq!(Latency::of(Vec::new()), Latency::default());
    }

    #[test]
    fn gap_counts_what_the_offset_never_reached() {
        let mut lab = PubSubLab::new(LabConfig::pull_beyond_cap(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            50,
        ));
        lab.cursor = StreamId { ms: 100, seq: 0 };
        lab.offset = 100;
        // 200 added, 50 kept: 150 removed, of which the first 100 were read.
        let info = Value::Array(vec![
            bulk("length"),
            Value::Integer(50),
            bulk("max-deleted-entry-id"),
            bulk("150-0"),
            bulk("entries-added"),
            Value::Integer(200),
        ]);
        lab.check_gap(&info);
        assert_eq!(lab.gaps.len(), 1);
        assert_eq!(lab.gaps[0].missing, Some(50));
        assert_eq!(lab.offset, 150);
        // Trimmed only up to what it read: no gap.
        let mut behind = PubSubLab::new(LabConfig::pull(SocketAddr::from(([127, 0, 0, 1], 1))));
        behind.cursor = StreamId { ms: 100, seq: 0 };
        behind.offset = 100;
        let info = Value::Array(vec![
            bulk("length"),
            Value::Integer(100),
            bulk("max-deleted-entry-id"),
            bulk("90-0"),
            bulk("entries-added"),
            Value::Integer(190),
        ]);
        behind.check_gap(&info);
        assert!(behind.gaps.is_empty());
    }
}
