//! One chat room across several servers, through Redis `PUBLISH`/`SUBSCRIBE`.
//!
//! A push chat keeps its room in one process: the hub knows every member
//! because every member is connected to it. Run two processes and there are two
//! rooms. The usual answer (socket.io's Redis adapter, Phoenix.PubSub,
//! ActionCable) is a broker every process subscribes to: a message said on any
//! server is `PUBLISH`ed to the room's channel, Redis delivers it to every
//! subscribed server, and each server pushes it to its own members.
//!
//! ```text
//!   user ──ws──▶ server A ──PUBLISH──▶ Redis ──message──▶ server A ──ws──▶ A's users
//!                                            └─message──▶ server B ──ws──▶ B's users
//! ```
//!
//! # Rules this relay keeps
//!
//! - **One order, Redis's.** While the room is shared, a server never shows a
//!   message locally first: its own users see it when Redis delivers it back,
//!   in the order Redis put it among everybody else's. Every user of every
//!   server sees the same sequence.
//! - **A newcomer starts at its own join.** The chat publishes a newcomer's
//!   join notice and adds the newcomer to its hub when Redis delivers that
//!   notice back ([`super::chat::ChatPush`]): its first line is its own join
//!   notice, as with one server, and what follows is what everyone hears.
//! - **Two connections.** A subscribed connection only receives; `PUBLISH` goes
//!   on a second one, so that a backlog of deliveries never delays a publish
//!   ([`crate::resp::link`]).
//! - **Names tell servers apart.** `User<port>` is the user's TCP port as its
//!   server sees it; two servers can see the same port (different clients, or
//!   one client connected to both), so a shared room names users
//!   `User<port>@<server>`, where `<server>` is the server's name
//!   ([`RelayConfig::server`]; `chat_push` uses its listening port, unique on
//!   one host).
//! - **Paced, not dropped.** Delivered messages go through the hub's pacing
//!   ([`PushHub::send_relayed`](super::push::PushHub::send_relayed)): while
//!   messages wait for room in the broadcast log, the subscriber connection is
//!   not read ([`RespLink::pause_reading`]), so Redis holds them (up to its own
//!   `client-output-buffer-limit pubsub`, after which it drops the subscriber
//!   and the relay reconnects), and local senders are paused too.
//!
//! # When Redis goes away
//!
//! Gone means closed, refused, or stopped answering: a Redis that is frozen
//! (`SIGSTOP`) keeps its connections open and says nothing, and is noticed by
//! the publishing link's health check ([`RelayConfig::health_every`]).
//!
//! The relay goes down as soon as either connection is lost: the room falls
//! back to this server alone (its users still hear each other, at once), and
//! its users are told. Both links retry with a backoff; once both are up and
//! the subscription is confirmed, the room is shared again and users are told
//! so. What is lost in between, by the nature of `PUBLISH` (fire and forget, no
//! history): everything said on other servers while this one was cut off,
//! everything said here meanwhile for the other servers, joins and leaves
//! included, and messages published just before the break whose delivery had
//! not come back yet. The pull side of pub/sub (Redis Streams, the `pubsub`
//! example) is the answer to that loss.

use std::net::SocketAddr;
use std::time::Duration;

use crate::resp::pubsub::{PubSub, pubsub};
use crate::resp::{Limits, LinkConfig, LinkEvent, LinkStats, RespLink, command};
use crate::server::{Context, OutEnd, OutId, TimerId};

/// Where the room lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Redis's address.
    pub redis: SocketAddr,
    /// The room: its channel is `wirepatterns:chat:<room>`.
    pub room: String,
    /// This server's name in user names (`User<port>@<server>`).
    pub server: String,
    /// The most bytes of relayed messages that may wait for room in the hub
    /// before the subscriber connection stops being read.
    pub max_waiting_bytes: usize,
    /// The longest message taken from Redis: a longer delivery (or any reply
    /// longer than this and a little more) breaks the connection, which is then
    /// made again. A chat sets it to what its broadcast log can hold.
    pub max_message_bytes: usize,
    /// How often the publishing connection checks that Redis still answers
    /// ([`LinkConfig::health_every`]): a Redis that stops answering is noticed
    /// within two of these, and the room falls back to this server alone.
    pub health_every: Option<Duration>,
}

impl RelayConfig {
    /// The default room (`lobby`) on `redis`, for server `server`.
    pub fn new(redis: SocketAddr, server: impl Into<String>) -> RelayConfig {
        RelayConfig {
            redis,
            room: "lobby".into(),
            server: server.into(),
            max_waiting_bytes: 64 * 1024,
            max_message_bytes: 1024 * 1024,
            health_every: Some(Duration::from_secs(5)),
        }
    }

    /// The Redis channel of the room.
    pub fn channel(&self) -> String {
        format!("wirepatterns:chat:{}", self.room)
    }
}

/// What the relay tells the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// A message delivered by Redis, to push to this server's users.
    Message(String),
    /// The room is shared through Redis (first time, or again).
    Shared,
    /// The room is this server's alone until Redis is back: why.
    Alone(String),
}

/// What the relay did, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Messages published.
    pub published: u64,
    /// Messages delivered by Redis.
    pub delivered: u64,
    /// Deliveries refused: not UTF-8 text, or on another channel.
    pub refused: u64,
    /// Times the room fell back to this server alone.
    pub outages: u64,
    /// The publishing connection's totals.
    pub publisher: LinkStats,
    /// The subscribed connection's totals.
    pub subscriber: LinkStats,
}

impl std::fmt::Display for RelayStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (p, s) = (&self.publisher, &self.subscriber);
        writeln!(
            f,
            "messages: {} published, {} delivered by Redis, {} refused (not text, or another channel)",
            self.published, self.delivered, self.refused
        )?;
        writeln!(
            f,
            "outages: {} (times the room fell back to this server alone)",
            self.outages
        )?;
        for (name, link) in [("publisher ", p), ("subscriber", s)] {
            writeln!(
                f,
                "{name}: {} connects, {} failed, {} lost; {} commands in {} writes, {} B out, {} B in",
                link.connects,
                link.connect_failures,
                link.disconnects,
                link.commands,
                link.batches,
                link.bytes_out,
                link.bytes_in
            )?;
        }
        Ok(())
    }
}

/// The timer data of the publisher's and the subscriber's timers.
const PUBLISHER_TIMER: u64 = u64::MAX - 1;
const SUBSCRIBER_TIMER: u64 = u64::MAX - 2;

/// A room shared through Redis (see the [module docs](self)).
#[derive(Debug)]
pub struct RoomRelay {
    /// Where and who.
    config: RelayConfig,
    /// The room's channel.
    channel: Vec<u8>,
    /// `PUBLISH` goes here.
    publisher: RespLink,
    /// `SUBSCRIBE`d to the room.
    subscriber: RespLink,
    /// The subscription is confirmed on the subscriber's current connection.
    subscribed: bool,
    /// What users were last told: shared (`Some(true)`) or alone.
    told: Option<bool>,
    /// Scratch for link events.
    events: Vec<LinkEvent>,
    /// Totals.
    stats: RelayStats,
}

impl RoomRelay {
    /// A relay that is not connected yet: call [`RoomRelay::start`].
    pub fn new(config: RelayConfig) -> RoomRelay {
        // What the room's Redis may send, bounded by what a chat can use: a
        // pub/sub message is a flat array of three strings, PUBLISH's reply an
        // integer.
        let mut link_config = LinkConfig::new(config.redis);
        link_config.limits = Limits {
            max_bulk_len: config.max_message_bytes,
            max_elements: 8,
            max_depth: 2,
            ..Limits::default()
        };
        link_config.max_input_bytes = config.max_message_bytes.saturating_add(64 * 1024);
        link_config.health_every = config.health_every;
        let publisher = RespLink::new(link_config, PUBLISHER_TIMER);
        let mut sub_config = link_config;
        sub_config.subscriber = true;
        RoomRelay {
            channel: config.channel().into_bytes(),
            subscriber: RespLink::new(sub_config, SUBSCRIBER_TIMER),
            publisher,
            config,
            subscribed: false,
            told: None,
            events: Vec::new(),
            stats: RelayStats::default(),
        }
    }

    /// Where and who.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Totals so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            publisher: self.publisher.stats(),
            subscriber: self.subscriber.stats(),
            ..self.stats
        }
    }

    /// Connects both links.
    pub fn start(&mut self, ctx: &mut Context<'_>) {
        self.publisher.start(ctx);
        self.subscriber.start(ctx);
    }

    /// Closes both links for good (shutdown).
    pub fn stop(&mut self, ctx: &mut Context<'_>) {
        self.publisher.stop(ctx);
        self.subscriber.stop(ctx);
    }

    /// Whether the room is shared now: both links up, the subscription live.
    pub fn is_shared(&self) -> bool {
        self.publisher.is_up() && self.subscriber.is_up() && self.subscribed
    }

    /// Publishes `text` to the room (sent at [`RoomRelay::flush`]); `false` if
    /// the room is not shared now (the caller shows it locally instead).
    pub fn publish(&mut self, text: &str) -> bool {
        if !self.is_shared() {
            return false;
        }
        let channel = &self.channel;
        let sent = self.publisher.command(None, |out| {
            command::publish(out, channel, text.as_bytes());
        });
        if sent {
            self.stats.published += 1;
        }
        sent
    }

    /// Writes the commands of this turn (call once per turn).
    pub fn flush(&mut self, ctx: &mut Context<'_>) {
        self.publisher.flush(ctx);
        self.subscriber.flush(ctx);
    }

    /// Stops reading deliveries (the hub has too much waiting), or starts
    /// again, as `waiting_bytes` compares with the configured bound.
    pub fn pace(&mut self, ctx: &mut Context<'_>, waiting_bytes: usize) {
        let over = waiting_bytes > self.config.max_waiting_bytes;
        if over && !self.subscriber.is_reading_paused() {
            self.subscriber.pause_reading(ctx);
        } else if waiting_bytes == 0 && self.subscriber.is_reading_paused() {
            self.subscriber.resume_reading(ctx);
        }
    }

    /// The loop connected `out` (the links greet Redis; they are up when it
    /// answers, in [`RoomRelay::on_data`]).
    pub fn on_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        if !self.subscriber.on_connected(ctx, out) {
            self.publisher.on_connected(ctx, out);
        }
    }

    /// Bytes arrived on `out`.
    pub fn on_data(
        &mut self,
        ctx: &mut Context<'_>,
        out: OutId,
        data: &[u8],
        events: &mut Vec<RelayEvent>,
    ) {
        let mut link_events = std::mem::take(&mut self.events);
        if self.subscriber.on_data(ctx, out, data, &mut link_events) {
            if link_events.contains(&LinkEvent::Up) {
                // Up (again): a new connection has no subscription.
                self.subscribed = false;
                let channel = &self.channel;
                self.subscriber.command(None, |buf| {
                    command::subscribe(buf, &[channel]);
                });
                self.subscriber.flush(ctx);
            }
        } else {
            // The publisher's replies (integers: receivers reached) matter to
            // nobody; they are parsed to keep the stream in step.
            self.publisher.on_data(ctx, out, data, &mut link_events);
        }
        let mut why = String::new();
        for event in link_events.drain(..) {
            match event {
                LinkEvent::Push(value) => match pubsub(&value) {
                    Some(PubSub::Subscribe { channel, .. }) if channel == self.channel => {
                        self.subscribed = true;
                    }
                    Some(PubSub::Message { channel, payload }) if channel == self.channel => {
                        match std::str::from_utf8(payload) {
                            Ok(text) => {
                                self.stats.delivered += 1;
                                events.push(RelayEvent::Message(text.to_string()));
                            }
                            Err(_) => self.stats.refused += 1,
                        }
                    }
                    _ => self.stats.refused += 1,
                },
                LinkEvent::Broken(reason) => why = format!("Redis broke the protocol: {reason}"),
                LinkEvent::Up | LinkEvent::Down { .. } | LinkEvent::Reply { .. } => {}
            }
        }
        self.events = link_events;
        self.check(events, &why);
    }

    /// The loop ended `out`.
    pub fn on_closed(
        &mut self,
        ctx: &mut Context<'_>,
        out: OutId,
        end: OutEnd,
        events: &mut Vec<RelayEvent>,
    ) {
        let down = match self.subscriber.on_closed(ctx, out, end) {
            Some(down) => {
                self.subscribed = false;
                Some(down)
            }
            None => self.publisher.on_closed(ctx, out, end),
        };
        let why = match down {
            Some(LinkEvent::Down {
                retry_in,
                stalled: true,
                ..
            }) => format!(
                "Redis at {} stopped answering; retrying in {} ms",
                self.config.redis,
                retry_in.as_millis()
            ),
            Some(LinkEvent::Down { end, retry_in, .. }) => format!(
                "Redis at {} {end}; retrying in {} ms",
                self.config.redis,
                retry_in.as_millis()
            ),
            _ => String::new(),
        };
        self.check(events, &why);
    }

    /// A timer fired: `true` if it was one of the relay's.
    pub fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) -> bool {
        self.publisher.on_timer(ctx, timer) || self.subscriber.on_timer(ctx, timer)
    }

    /// Tells the chat when the room changes between shared and alone.
    fn check(&mut self, events: &mut Vec<RelayEvent>, why: &str) {
        let shared = self.is_shared();
        if shared && self.told != Some(true) {
            self.told = Some(true);
            events.push(RelayEvent::Shared);
        } else if !shared && self.told != Some(false) && !why.is_empty() {
            if self.told == Some(true) {
                self.stats.outages += 1;
            }
            self.told = Some(false);
            events.push(RelayEvent::Alone(why.to_string()));
        }
    }
}
