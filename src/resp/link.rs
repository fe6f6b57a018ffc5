//! A connection to Redis on the server's own loop: connect, pipeline commands,
//! read replies and pushes, and reconnect with a backoff when it breaks.
//!
//! The rest of [`crate::resp`] never touches a socket; this is where the core
//! meets one. A [`RespLink`] owns no socket either: it asks the loop for an
//! outgoing connection ([`Context::connect`], see [`crate::server::outgoing`])
//! and is fed what the loop reports. The application owns the link and passes
//! its [`Handler`](crate::server::Handler) callbacks on:
//!
//! | the loop says | the application calls | the link |
//! |---|---|---|
//! | [`on_out_connected`](crate::server::Handler::on_out_connected) | [`RespLink::on_connected`] | greets Redis with `PING` |
//! | [`on_out_data`](crate::server::Handler::on_out_data) | [`RespLink::on_data`] | is up once Redis answered ([`LinkEvent::Up`]), then parses: [`LinkEvent::Reply`], [`LinkEvent::Push`] |
//! | [`on_out_closed`](crate::server::Handler::on_out_closed) | [`RespLink::on_closed`] | is down: [`LinkEvent::Down`], retries later |
//! | [`on_timer`](crate::server::Handler::on_timer) | [`RespLink::on_timer`] | retries, or gives up on a connect that hangs |
//! | [`on_turn_end`](crate::server::Handler::on_turn_end) | [`RespLink::flush`] | writes the turn's commands in one go |
//!
//! # Pipelining
//!
//! [`RespLink::command`] appends a command to a batch and remembers a tag for
//! its reply; [`RespLink::flush`], once per turn of the loop, hands the whole
//! batch to the connection. A turn that publishes a hundred chat messages then
//! costs one `write()` to Redis, not a hundred, and Redis answers them in order:
//! replies are matched to tags first in, first out (RESP has no request ids;
//! order is the contract).
//!
//! # Reconnecting
//!
//! When the connection ends (Redis restarted, the network broke) or cannot be
//! made, the link is down: every command still waiting for its reply is
//! reported lost ([`LinkEvent::Down`] says how many; a PUBLISH among them may or
//! may not have reached Redis), new commands are refused, and a timer retries
//! after a delay that doubles from [`LinkConfig::backoff_min`] up to
//! [`LinkConfig::backoff_max`], with jitter (half the delay is random), so that
//! many servers that lost the same Redis do not all reconnect in the same
//! millisecond. A connect that neither succeeds nor fails within
//! [`LinkConfig::connect_timeout`] is abandoned and retried the same way. Once
//! connected again the delay starts over. What a connection had set up
//! (subscriptions) is gone with it: the application sets it up again on
//! [`LinkEvent::Up`].
//!
//! # When Redis stops answering
//!
//! A Redis that is stopped (`SIGSTOP`, a machine that froze) leaves the connection
//! open and answers nothing: no end of file comes, and a client that only waits would
//! wait for ever while its commands pile up. So every [`LinkConfig::health_every`]
//! (5 s) the link looks: a command that was already waiting at the last look, with no
//! reply at all since, means Redis stopped answering, and the link closes the
//! connection and reconnects as for any loss ([`LinkEvent::Down`] with `stalled`).
//! An idle link sends a `PING` at each look, so that a stall is noticed even when the
//! application is quiet (a subscribed connection cannot be asked: its peer is checked
//! through its twin, or by its own traffic). Commands that the kernel has not taken
//! are bounded too ([`LinkConfig::max_queued_bytes`]): past it, new ones are refused.
//!
//! # Blocking commands get a link of their own
//!
//! A `SUBSCRIBE`d connection only receives, and an `XREAD BLOCK` holds its
//! connection until data or its timeout: a `PUBLISH` queued behind it on the
//! same connection would wait just as long. So a subscriber or a blocking
//! reader is a second [`RespLink`] ([`LinkConfig::subscriber`] for the first),
//! and commands that must not wait go on another.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::command;
use super::parser::{Limits, Parsed, Parser};
use super::pubsub::pubsub;
use super::value::Value;
use crate::server::{Context, OutEnd, OutId, TimerId};

/// How a [`RespLink`] connects and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Redis's address.
    pub addr: SocketAddr,
    /// The first retry's delay after a failure.
    pub backoff_min: Duration,
    /// The longest delay between retries.
    pub backoff_max: Duration,
    /// How long a connect may take before it is abandoned and retried.
    pub connect_timeout: Duration,
    /// The bounds on what Redis may send ([`Limits`]).
    pub limits: Limits,
    /// The most bytes of one reply (or of replies not yet parsed) held at once:
    /// past it the link is broken and reconnects, whatever the parser's limits
    /// would allow (a million elements of a big bulk string each).
    pub max_input_bytes: usize,
    /// The most bytes of commands handed to the connection and not yet taken by
    /// the kernel (Redis not reading): past it [`RespLink::command`] refuses,
    /// instead of buffering without bound.
    pub max_queued_bytes: usize,
    /// How often the link checks that Redis answers (see [the module
    /// docs](self#when-redis-stops-answering)); `None`: never. A link whose
    /// blocking reads (`XREAD BLOCK ms`) may wait longer than this needs more.
    pub health_every: Option<Duration>,
    /// A subscriber link: a RESP2 array that reads as a pub/sub message
    /// ([`pubsub`]) is a [`LinkEvent::Push`], not the reply to a command. (RESP3
    /// push frames are pushes on any link.)
    pub subscriber: bool,
}

impl LinkConfig {
    /// Defaults for `addr`: retries from 100 ms doubling to 5 s, 2 s to connect,
    /// the parser's default limits, 64 MiB of input and 4 MiB of unwritten
    /// commands at most, a health check every 5 s, not a subscriber.
    pub fn new(addr: SocketAddr) -> LinkConfig {
        LinkConfig {
            addr,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            limits: Limits::default(),
            max_input_bytes: 64 * 1024 * 1024,
            max_queued_bytes: 4 * 1024 * 1024,
            health_every: Some(Duration::from_secs(5)),
            subscriber: false,
        }
    }
}

/// What happened on a link, for the application to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// Connected (again): set up what the connection needs (subscriptions).
    Up,
    /// The connection ended or could not be made; a retry is scheduled.
    Down {
        /// Why.
        end: OutEnd,
        /// Commands sent whose replies will never come.
        unanswered: usize,
        /// The delay before the next try.
        retry_in: Duration,
        /// The link closed it because Redis stopped answering (see [the module
        /// docs](self#when-redis-stops-answering)).
        stalled: bool,
    },
    /// The reply to the command tagged `tag` (errors are replies too:
    /// [`Value::Error`]).
    Reply {
        /// The tag given to [`RespLink::command`].
        tag: u64,
        /// The reply.
        value: Value,
    },
    /// Something the server sent unasked: a pub/sub message or confirmation.
    Push(Value),
    /// Redis broke the protocol or a limit ([`super::RespError`]), or sent a
    /// reply nobody asked for: the link closes and retries.
    Broken(String),
}

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not connected; a retry timer may be set.
    Down,
    /// Connecting: the loop's connection, and the connect deadline.
    Connecting(OutId),
    /// Connected, waiting for the answer to the greeting `PING` (a listening
    /// socket is not a Redis that answers: a frozen one's kernel still accepts).
    Greeting(OutId),
    /// Connected, and Redis answered.
    Up(OutId),
}

/// What a link did, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections made.
    pub connects: u64,
    /// Connect attempts that failed or timed out.
    pub connect_failures: u64,
    /// Connections that ended after being up.
    pub disconnects: u64,
    /// Commands handed to the connection.
    pub commands: u64,
    /// Batches written (one per [`RespLink::flush`] with commands).
    pub batches: u64,
    /// Replies matched to commands.
    pub replies: u64,
    /// Pushes received.
    pub pushes: u64,
    /// Replies that were errors.
    pub errors: u64,
    /// Commands refused because the link was down, or its unwritten commands
    /// were at [`LinkConfig::max_queued_bytes`].
    pub refused: u64,
    /// Connections closed because Redis stopped answering.
    pub stalls: u64,
    /// `PING`s sent by the health check on an idle link.
    pub pings: u64,
    /// Commands whose replies were lost with their connection.
    pub unanswered: u64,
    /// Bytes of commands sent.
    pub bytes_out: u64,
    /// Bytes of replies received.
    pub bytes_in: u64,
}

/// One connection to Redis, kept up (see the [module docs](self)).
#[derive(Debug)]
pub struct RespLink {
    /// How it connects.
    config: LinkConfig,
    /// The data its timers carry, so the application can tell them apart.
    timer_data: u64,
    /// Where it is.
    state: State,
    /// The retry timer while down, the connect deadline while connecting, the
    /// health check while up.
    timer: Option<TimerId>,
    /// At the last health check: replies received by then, and whether a
    /// command was waiting for one.
    checked: (u64, bool),
    /// The connection is being closed because Redis stopped answering.
    stalled: bool,
    /// Bytes handed to the connection and not yet written, as of the last look.
    queued: usize,
    /// The next retry's delay.
    backoff: Duration,
    /// The reply parser.
    parser: Parser,
    /// Bytes received and not yet parsed.
    input: Vec<u8>,
    /// Commands of this turn, not yet handed to the connection.
    batch: Vec<u8>,
    /// Commands in the batch.
    batch_commands: usize,
    /// Tags of commands whose replies are due, oldest first.
    waiting: VecDeque<Option<u64>>,
    /// Reading is paused ([`RespLink::pause_reading`]).
    paused: bool,
    /// Totals.
    stats: LinkStats,
}

impl RespLink {
    /// A link that is not connected yet: call [`RespLink::start`]. Its timers
    /// carry `timer_data`.
    pub fn new(config: LinkConfig, timer_data: u64) -> RespLink {
        RespLink {
            parser: Parser::new(config.limits),
            backoff: config.backoff_min,
            config,
            timer_data,
            state: State::Down,
            timer: None,
            checked: (0, false),
            stalled: false,
            queued: 0,
            input: Vec::new(),
            batch: Vec::new(),
            batch_commands: 0,
            waiting: VecDeque::new(),
            paused: false,
            stats: LinkStats::default(),
        }
    }

    /// Where it connects.
    pub fn addr(&self) -> SocketAddr {
        self.config.addr
    }

    /// Whether it is connected.
    pub fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }

    /// Totals so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Commands sent whose replies have not come yet (queued ones included).
    pub fn in_flight(&self) -> usize {
        self.waiting.len()
    }

    /// Connects now (unless it is already connected or connecting).
    pub fn start(&mut self, ctx: &mut Context<'_>) {
        if self.state != State::Down {
            return;
        }
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        let out = ctx.connect(self.config.addr);
        self.state = State::Connecting(out);
        self.timer = Some(ctx.set_timer(self.config.connect_timeout, self.timer_data));
    }

    /// Queues a command written by `write` (with [`super::command`]'s writers),
    /// whose reply will come as [`LinkEvent::Reply`] with `tag` (`None`: no
    /// reply expected, as for SUBSCRIBE, whose confirmations are pushes).
    /// Refused (`false`) while the link is not up, or while more than
    /// [`LinkConfig::max_queued_bytes`] of commands wait to be written. It is
    /// sent at the next [`RespLink::flush`].
    pub fn command(&mut self, tag: Option<u64>, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let backed_up = self.queued.saturating_add(self.batch.len()) > self.config.max_queued_bytes;
        if !self.is_up() || backed_up {
            self.stats.refused += 1;
            return false;
        }
        write(&mut self.batch);
        self.batch_commands += 1;
        if tag.is_some() || !self.config.subscriber {
            self.waiting.push_back(tag);
        }
        true
    }

    /// Hands the commands queued since the last flush to the connection, in one
    /// piece. Call it once per turn ([`crate::server::Handler::on_turn_end`]).
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        if self.batch.is_empty() {
            return;
        }
        if let State::Up(out) = self.state
            && ctx.send_out(out, &self.batch)
        {
            self.stats.commands += self.batch_commands as u64;
            self.stats.batches += 1;
            self.stats.bytes_out += self.batch.len() as u64;
            self.queued = ctx.out_queued(out).unwrap_or(0);
        }
        self.batch.clear();
        self.batch_commands = 0;
        if self.batch.capacity() > 64 * 1024 {
            self.batch = Vec::new();
        }
    }

    /// The loop connected `out`: `true` if it is this link's. The link greets
    /// Redis with `PING` and is up ([`LinkEvent::Up`], from
    /// [`RespLink::on_data`]) once Redis answers, within the connect timeout.
    pub fn on_connected(&mut self, ctx: &mut Context<'_>, out: OutId) -> bool {
        if self.state != State::Connecting(out) {
            return false;
        }
        self.state = State::Greeting(out);
        let mut ping = Vec::new();
        command::ping(&mut ping, None);
        ctx.send_out(out, &ping);
        true
    }

    /// Redis answered the greeting: the link is up.
    fn greeted(&mut self, ctx: &mut Context<'_>, out: OutId) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        self.state = State::Up(out);
        if self.paused {
            ctx.pause_out(out);
        }
        self.backoff = self.config.backoff_min;
        self.stats.connects += 1;
        self.queued = 0;
        self.checked = (self.stats.replies, false);
        if let Some(every) = self.config.health_every {
            self.timer = Some(ctx.set_timer(every, self.timer_data));
        }
    }

    /// Bytes arrived on `out`: if it is this link's, the replies and pushes they
    /// complete are appended to `events` and `true` is returned.
    pub fn on_data(
        &mut self,
        ctx: &mut Context<'_>,
        out: OutId,
        data: &[u8],
        events: &mut Vec<LinkEvent>,
    ) -> bool {
        if self.state != State::Up(out) && self.state != State::Greeting(out) {
            return false;
        }
        self.stats.bytes_in += data.len() as u64;
        self.queued = ctx.out_queued(out).unwrap_or(0);
        self.input.extend_from_slice(data);
        let mut start = 0;
        let broken = loop {
            match self
                .parser
                .parse(self.input.get(start..).unwrap_or_default())
            {
                Ok(Parsed::Partial) => break None,
                Ok(Parsed::Complete { value, consumed }) => {
                    start += consumed;
                    if self.state == State::Greeting(out) {
                        if let Some(error) = value.as_error() {
                            let error = String::from_utf8_lossy(error);
                            break Some(format!("Redis answered PING with an error: {error}"));
                        }
                        self.greeted(ctx, out);
                        events.push(LinkEvent::Up);
                        continue;
                    }
                    match self.classify(value) {
                        Ok(Some(event)) => events.push(event),
                        Ok(None) => {}
                        Err(()) => {
                            break Some("a reply came that no command asked for".to_string());
                        }
                    }
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        self.input.drain(..start.min(self.input.len()));
        let broken = broken.or_else(|| {
            (self.input.len() > self.config.max_input_bytes).then(|| {
                format!(
                    "a reply longer than {} bytes (LinkConfig::max_input_bytes)",
                    self.config.max_input_bytes
                )
            })
        });
        if let Some(why) = broken {
            events.push(LinkEvent::Broken(why));
            // The stream cannot be trusted past this point: close and retry.
            ctx.abort_out(out);
        }
        true
    }

    /// Sorts a parsed value into a push or the reply to the oldest command
    /// (`Ok(None)`: the reply to a command sent without a tag, dropped; an
    /// error among those is counted in [`LinkStats::errors`]). `Err` if no
    /// command is waiting for a reply.
    fn classify(&mut self, value: Value) -> Result<Option<LinkEvent>, ()> {
        let push =
            matches!(value, Value::Push(_)) || (self.config.subscriber && pubsub(&value).is_some());
        if push {
            self.stats.pushes += 1;
            return Ok(Some(LinkEvent::Push(value)));
        }
        let tag = self.waiting.pop_front().ok_or(())?;
        self.stats.replies += 1;
        if value.is_error() {
            self.stats.errors += 1;
        }
        Ok(tag.map(|tag| LinkEvent::Reply { tag, value }))
    }

    /// The loop ended `out`: if it is this link's, the link is down and a retry
    /// is scheduled; the event says so.
    pub fn on_closed(
        &mut self,
        ctx: &mut Context<'_>,
        out: OutId,
        end: OutEnd,
    ) -> Option<LinkEvent> {
        match self.state {
            State::Connecting(o) | State::Greeting(o) if o == out => {
                self.stats.connect_failures += 1;
            }
            State::Up(o) if o == out => self.stats.disconnects += 1,
            _ => return None,
        }
        Some(self.down(ctx, end))
    }

    /// Goes down: forgets the connection's state and schedules a retry.
    fn down(&mut self, ctx: &mut Context<'_>, end: OutEnd) -> LinkEvent {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        self.state = State::Down;
        let unanswered = self.waiting.len();
        self.stats.unanswered += unanswered as u64;
        self.forget();
        let retry_in = jittered(self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.backoff_max);
        self.timer = Some(ctx.set_timer(retry_in, self.timer_data));
        LinkEvent::Down {
            end,
            unanswered,
            retry_in,
            stalled: std::mem::take(&mut self.stalled),
        }
    }

    /// A timer fired: `true` if it was this link's (a retry is made, a
    /// connect that hangs is abandoned, or the health check runs; an
    /// abandoned or stalled connection's end comes as [`RespLink::on_closed`]).
    pub fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) -> bool {
        if self.timer != Some(timer) {
            return false;
        }
        self.timer = None;
        match self.state {
            State::Down => self.start(ctx),
            State::Connecting(out) | State::Greeting(out) => ctx.abort_out(out),
            State::Up(out) => self.check_health(ctx, out),
        }
        true
    }

    /// The health check: a command that has waited a whole period with no reply
    /// at all coming means Redis stopped answering; an idle link asks (`PING`).
    fn check_health(&mut self, ctx: &mut Context<'_>, out: OutId) {
        let Some(every) = self.config.health_every else {
            return;
        };
        let waiting = !self.waiting.is_empty();
        let (replies_then, waited_then) = self.checked;
        if waiting && waited_then && self.stats.replies == replies_then {
            self.stats.stalls += 1;
            self.stalled = true;
            ctx.abort_out(out);
            return;
        }
        if !waiting && !self.config.subscriber && self.command(None, |b| command::ping(b, None)) {
            self.stats.pings += 1;
            self.flush(ctx);
        }
        self.checked = (self.stats.replies, !self.waiting.is_empty());
        self.timer = Some(ctx.set_timer(every, self.timer_data));
    }

    /// Stops reading what Redis sends ([`Context::pause_out`]), until
    /// [`RespLink::resume_reading`]; a connection made meanwhile starts paused.
    pub fn pause_reading(&mut self, ctx: &mut Context<'_>) {
        self.paused = true;
        if let State::Up(out) | State::Greeting(out) = self.state {
            ctx.pause_out(out);
        }
    }

    /// Reads again after [`RespLink::pause_reading`].
    pub fn resume_reading(&mut self, ctx: &mut Context<'_>) {
        self.paused = false;
        if let State::Up(out) | State::Greeting(out) = self.state {
            ctx.resume_out(out);
        }
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.paused
    }

    /// Closes the connection (what is queued is written first) and forgets
    /// what it was waiting for: no retry follows, and a later
    /// [`RespLink::start`] begins afresh.
    pub fn stop(&mut self, ctx: &mut Context<'_>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_timer(timer);
        }
        if let State::Connecting(out) | State::Greeting(out) | State::Up(out) = self.state {
            self.flush(ctx);
            ctx.close_out(out);
        }
        self.state = State::Down;
        self.forget();
    }

    /// Drops the connection's state: replies still due, bytes not parsed, the
    /// commands not sent.
    fn forget(&mut self) {
        self.waiting.clear();
        self.input.clear();
        self.batch.clear();
        self.batch_commands = 0;
        self.parser.reset();
    }
}

/// `delay` with its second half random: between half of it and all of it.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let span = half.as_nanos().max(1);
    half + Duration::from_nanos((u128::from(nanos) % span) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::ServerStats;
    use crate::resp::command;
    use crate::server::actions::Actions;
    use crate::server::conns::Slab;
    use crate::server::outgoing::Outgoing;
    use crate::server::timer::Timers;
    use std::time::Instant;

    /// What the loop would hold, kept between calls.
    #[derive(Default)]
    struct Loop {
        conns: Slab,
        timers: Timers,
        actions: Actions,
        stats: ServerStats,
        outgoing: Outgoing,
    }

    impl Loop {
        fn ctx<R>(&mut self, f: impl FnOnce(&mut Context<'_>) -> R) -> R {
            let mut ctx = Context {
                now: Instant::now(),
                conns: &self.conns,
                timers: &mut self.timers,
                actions: &mut self.actions,
                stats: &self.stats,
                outgoing: &mut self.outgoing,
            };
            f(&mut ctx)
        }

        /// What the link handed to connection `out` to write.
        fn written(&self, out: OutId) -> Vec<u8> {
            self.outgoing
                .get(out)
                .map(|c| c.output.clone())
                .unwrap_or_default()
        }
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 6379))
    }

    /// Connects `link` on `out` and answers its greeting.
    fn greet(lp: &mut Loop, link: &mut RespLink, out: OutId) {
        assert!(lp.ctx(|ctx| link.on_connected(ctx, out)));
        let mut ping = Vec::new();
        command::ping(&mut ping, None);
        assert_eq!(lp.written(out), ping, "the greeting");
        if let Some(conn) = lp.outgoing.get_mut(out) {
            conn.output.clear();
        }
        let mut events = Vec::new();
        assert!(lp.ctx(|ctx| link.on_data(ctx, out, b"+PONG\r\n", &mut events)));
        assert_eq!(events, [LinkEvent::Up]);
    }

    /// A link that is up on a connection the fake loop handed out.
    fn up(lp: &mut Loop, subscriber: bool) -> (RespLink, OutId) {
        let mut config = LinkConfig::new(addr());
        config.subscriber = subscriber;
        let mut link = RespLink::new(config, 9);
        lp.ctx(|ctx| link.start(ctx));
        let out = lp.outgoing.indexes().len();
        assert_eq!(out, 1);
        let State::Connecting(out) = link.state else {
            panic!("connecting");
        };
        greet(lp, &mut link, out);
        (link, out)
    }

    #[test]
    fn commands_of_a_turn_leave_in_one_batch_and_replies_match_tags_in_order() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        assert!(link.command(Some(1), |b| command::ping(b, None)));
        assert!(link.command(None, |b| command::publish(b, b"c", b"x")));
        assert!(link.command(Some(3), |b| command::ping(b, Some(b"hi"))));
        lp.ctx(|ctx| link.flush(ctx));
        let mut expected = Vec::new();
        command::ping(&mut expected, None);
        command::publish(&mut expected, b"c", b"x");
        command::ping(&mut expected, Some(b"hi"));
        assert_eq!(lp.written(out), expected);
        assert_eq!((link.stats().commands, link.stats().batches), (3, 1));
        // The replies, split mid-way: the untagged one is dropped, the others
        // come back with their tags, in order.
        let replies = b"+PONG\r\n:2\r\n$2\r\nhi\r\n";
        let mut events = Vec::new();
        for piece in [&replies[..9], &replies[9..]] {
            assert!(lp.ctx(|ctx| link.on_data(ctx, out, piece, &mut events)));
        }
        assert_eq!(
            events,
            [
                LinkEvent::Reply {
                    tag: 1,
                    value: Value::Simple(b"PONG".to_vec())
                },
                LinkEvent::Reply {
                    tag: 3,
                    value: Value::Bulk(b"hi".to_vec())
                },
            ]
        );
        assert_eq!(link.in_flight(), 0);
    }

    #[test]
    fn a_subscriber_sorts_messages_from_replies_and_a_reply_nobody_asked_for_breaks_the_link() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, true);
        let mut events = Vec::new();
        let message = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n";
        lp.ctx(|ctx| link.on_data(ctx, out, message, &mut events));
        assert!(
            matches!(events.as_slice(), [LinkEvent::Push(_)]),
            "{events:?}"
        );
        events.clear();
        lp.ctx(|ctx| link.on_data(ctx, out, b":1\r\n", &mut events));
        assert!(
            matches!(events.as_slice(), [LinkEvent::Broken(_)]),
            "{events:?}"
        );
        assert!(
            lp.outgoing.get(out).is_some_and(|c| c.closing),
            "closed to retry"
        );
    }

    #[test]
    fn a_reply_longer_than_the_input_bound_breaks_the_link() {
        let mut lp = Loop::default();
        let mut config = LinkConfig::new(addr());
        config.max_input_bytes = 100;
        let mut link = RespLink::new(config, 9);
        lp.ctx(|ctx| link.start(ctx));
        let State::Connecting(out) = link.state else {
            panic!("connecting");
        };
        greet(&mut lp, &mut link, out);
        link.command(Some(1), |b| command::ping(b, None));
        let mut events = Vec::new();
        // A bulk string the parser would take (its default limit is 512 MiB),
        // arriving: within the bound nothing happens, past it the link breaks.
        lp.ctx(|ctx| link.on_data(ctx, out, b"$1000\r\n", &mut events));
        lp.ctx(|ctx| link.on_data(ctx, out, &[b'a'; 80], &mut events));
        assert!(events.is_empty(), "{events:?}");
        lp.ctx(|ctx| link.on_data(ctx, out, &[b'a'; 80], &mut events));
        assert!(
            matches!(events.as_slice(), [LinkEvent::Broken(_)]),
            "{events:?}"
        );
        assert!(lp.outgoing.get(out).is_some_and(|c| c.closing));
    }

    #[test]
    fn a_broken_reply_closes_the_connection() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        link.command(Some(1), |b| command::ping(b, None));
        let mut events = Vec::new();
        lp.ctx(|ctx| link.on_data(ctx, out, b"?what\r\n", &mut events));
        assert!(
            matches!(events.as_slice(), [LinkEvent::Broken(_)]),
            "{events:?}"
        );
        assert!(lp.outgoing.get(out).is_some_and(|c| c.closing));
    }

    #[test]
    fn going_down_loses_what_waits_refuses_commands_and_retries_later_each_time() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        link.command(Some(1), |b| command::ping(b, None));
        link.command(Some(2), |b| command::ping(b, None));
        let down = lp.ctx(|ctx| link.on_closed(ctx, out, OutEnd::PeerClosed));
        let Some(LinkEvent::Down {
            unanswered,
            retry_in,
            ..
        }) = down
        else {
            panic!("{down:?}");
        };
        assert_eq!(unanswered, 2);
        assert!(retry_in >= Duration::from_millis(50) && retry_in <= Duration::from_millis(100));
        assert!(
            !link.command(Some(3), |b| command::ping(b, None)),
            "down: refused"
        );
        assert_eq!(link.stats().refused, 1);
        // Each failed retry doubles the delay, up to the most.
        let mut delays = Vec::new();
        for _ in 0..10 {
            let timer = link.timer.expect("a retry timer");
            assert!(lp.ctx(|ctx| link.on_timer(ctx, timer)));
            let State::Connecting(out) = link.state else {
                panic!("retrying");
            };
            let down = lp.ctx(|ctx| {
                link.on_closed(
                    ctx,
                    out,
                    OutEnd::ConnectFailed(std::io::ErrorKind::ConnectionRefused),
                )
            });
            let Some(LinkEvent::Down { retry_in, .. }) = down else {
                panic!("{down:?}");
            };
            delays.push(retry_in);
        }
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(200));
        assert!(delays[1] >= Duration::from_millis(200) && delays[1] <= Duration::from_millis(400));
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(5)),
            "{delays:?}"
        );
        assert!(delays[9] >= Duration::from_millis(2500), "{delays:?}");
        // A connection ending that is not the link's is none of its business.
        let stranger = lp.ctx(|ctx| ctx.connect(addr()));
        assert_eq!(
            lp.ctx(|ctx| link.on_closed(ctx, stranger, OutEnd::PeerClosed)),
            None
        );
    }

    #[test]
    fn stopped_and_started_again_a_link_matches_no_old_reply() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        link.command(Some(1), |b| command::ping(b, None));
        lp.ctx(|ctx| link.flush(ctx));
        lp.ctx(|ctx| link.stop(ctx));
        assert_eq!(link.in_flight(), 0);
        assert!(lp.outgoing.get(out).is_some_and(|c| c.closing));
        lp.ctx(|ctx| link.start(ctx));
        let State::Connecting(again) = link.state else {
            panic!("connecting");
        };
        greet(&mut lp, &mut link, again);
        link.command(Some(2), |b| command::ping(b, None));
        let mut events = Vec::new();
        lp.ctx(|ctx| link.on_data(ctx, again, b"+PONG\r\n", &mut events));
        assert_eq!(
            events,
            [LinkEvent::Reply {
                tag: 2,
                value: Value::Simple(b"PONG".to_vec())
            }]
        );
    }

    #[test]
    fn an_idle_link_pings_and_a_link_with_no_reply_for_a_whole_period_is_stalled() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        let fire = |lp: &mut Loop, link: &mut RespLink| {
            let timer = link.timer.expect("the health check is armed");
            assert!(lp.ctx(|ctx| link.on_timer(ctx, timer)));
        };
        // Idle: the check asks.
        fire(&mut lp, &mut link);
        let mut ping = Vec::new();
        command::ping(&mut ping, None);
        assert_eq!(lp.written(out), ping);
        assert_eq!(link.stats().pings, 1);
        // Redis answers: all is well, and the next idle check asks again.
        let mut events = Vec::new();
        lp.ctx(|ctx| link.on_data(ctx, out, b"+PONG\r\n", &mut events));
        assert!(
            events.is_empty(),
            "an untagged reply is dropped: {events:?}"
        );
        fire(&mut lp, &mut link);
        assert_eq!(link.stats().pings, 2);
        // No answer to that one for a whole period: stalled, the connection
        // is dropped at once, and the Down event says why.
        fire(&mut lp, &mut link);
        assert_eq!(link.stats().stalls, 1);
        assert!(
            lp.outgoing
                .get(out)
                .is_some_and(|c| c.closing && c.queued() == 0)
        );
        let down = lp.ctx(|ctx| link.on_closed(ctx, out, OutEnd::Closed));
        assert!(
            matches!(
                down,
                Some(LinkEvent::Down {
                    stalled: true,
                    unanswered: 1,
                    ..
                })
            ),
            "{down:?}"
        );
    }

    #[test]
    fn a_slow_reply_is_not_a_stall_when_others_keep_coming() {
        let mut lp = Loop::default();
        let (mut link, out) = up(&mut lp, false);
        let mut events = Vec::new();
        for round in 0..5 {
            // Two commands wait at every check, but one reply came between
            // checks: Redis is slow, not stopped.
            link.command(Some(round), |b| command::ping(b, None));
            link.command(Some(round + 100), |b| command::ping(b, None));
            lp.ctx(|ctx| link.flush(ctx));
            let timer = link.timer.expect("armed");
            assert!(lp.ctx(|ctx| link.on_timer(ctx, timer)));
            lp.ctx(|ctx| link.on_data(ctx, out, b"+PONG\r\n", &mut events));
        }
        assert_eq!(link.stats().stalls, 0);
        assert!(lp.outgoing.get(out).is_some_and(|c| !c.closing));
    }

    #[test]
    fn commands_are_refused_while_too_many_bytes_wait_to_be_written() {
        let mut lp = Loop::default();
        let mut config = LinkConfig::new(addr());
        config.max_queued_bytes = 1000;
        let mut link = RespLink::new(config, 9);
        lp.ctx(|ctx| link.start(ctx));
        let State::Connecting(out) = link.state else {
            panic!("connecting");
        };
        greet(&mut lp, &mut link, out);
        // The fake loop never writes: everything flushed stays queued.
        let big = [b'x'; 600];
        assert!(link.command(None, |b| command::publish(b, b"c", &big)));
        lp.ctx(|ctx| link.flush(ctx));
        assert!(link.command(None, |b| command::publish(b, b"c", &big)));
        lp.ctx(|ctx| link.flush(ctx));
        assert!(!link.command(None, |b| command::publish(b, b"c", &big)));
        assert_eq!(link.stats().refused, 1);
    }

    #[test]
    fn a_connect_that_hangs_is_abandoned_at_its_deadline() {
        let mut lp = Loop::default();
        let mut link = RespLink::new(LinkConfig::new(addr()), 9);
        lp.ctx(|ctx| link.start(ctx));
        let State::Connecting(out) = link.state else {
            panic!("connecting");
        };
        let timer = link.timer.expect("connect deadline");
        assert!(lp.ctx(|ctx| link.on_timer(ctx, timer)));
        assert!(lp.outgoing.get(out).is_some_and(|c| c.closing), "abandoned");
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        for ms in [1u64, 100, 5000] {
            let d = Duration::from_millis(ms);
            let j = jittered(d);
            assert!(j >= d / 2 && j <= d, "{j:?} for {d:?}");
        }
    }
}
