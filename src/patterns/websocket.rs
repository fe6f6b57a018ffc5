//! WebSocket over the event loop: the glue between the driver's [`Handler`] and the
//! sans-I/O core in [`crate::ws`], so that an application deals in messages, not
//! bytes.
//!
//! # What happens on a connection
//!
//! 1. **Handshake.** A request whose `Upgrade` header names `websocket`
//!    ([`ws::is_upgrade_request`]) is checked by [`ws::accept`]. A bad one is
//!    answered with the status its [`HandshakeError`] names (400, 403 for an origin
//!    not on the allow-list, 426 with `Sec-WebSocket-Version: 13` for another
//!    version), a body naming the rule, and `Connection: close`. A good one gets
//!    `101 Switching Protocols` ([`Reply::Upgrade`]) and the application hears of
//!    it in [`WsApp::on_open`], with the peer's address (the seed names users by
//!    their remote port) and the request's `Origin`. Any other request goes to
//!    [`WsApp::on_http`], so one port serves a page and its WebSocket.
//! 2. **Messages.** The peer's bytes go, in place, to the connection's
//!    [`ws::Connection`], which unmasks them where they lie and yields whole
//!    messages ([`WsApp::on_message`]) however TCP split them. The automatic
//!    replies it writes (a pong for a ping, the answer to a close) are sent at once.
//! 3. **Keepalive.** Every [`WsConfig::ping_interval`] the server pings. A peer
//!    that sends nothing at all (no pong, no frame) within [`WsConfig::ping_timeout`]
//!    of a ping is taken for dead: its TCP connection is closed and the application
//!    told [`WsClosed::PingTimeout`]. This is how a server learns that a client
//!    vanished without a FIN (a laptop lid closed, a NAT entry dropped): TCP alone
//!    would keep writing into the void until its retransmissions give up, minutes
//!    later.
//! 4. **Closing** (RFC 6455 §7). A close frame from the peer is answered (by the
//!    core) and the server closes TCP first, as §7.1.1 asks. A frame that breaks a
//!    rule fails the connection: a close frame with the error's code (1002, 1007,
//!    1009), then TCP close, with no wait for an answer (§7.1.7). The application
//!    may close gracefully ([`WsContext::close`]: a close frame, then up to
//!    [`WsConfig::close_timeout`] for the peer's) or at once ([`WsContext::fail`]:
//!    a close frame, then TCP close, as a push hub does to a client that cannot keep
//!    up).
//!
//! [`WsApp::on_close`] is called exactly once per opened WebSocket, as soon as no
//! more messages can be sent on it, whichever way it ended; messages that arrive
//! after that are dropped.
//!
//! # Writing an application
//!
//! ```
//! use wirepatterns::patterns::websocket::{Message, WsApp, WsConfig, WsContext, WsServer};
//! use wirepatterns::server::{Config, ConnId, Server};
//!
//! /// Answers every text message with its length.
//! struct Lengths;
//!
//! impl WsApp for Lengths {
//!     fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
//!         if let Message::Text(text) = msg {
//!             ws.send_text(conn, &text.len().to_string());
//!         }
//!     }
//! }
//!
//! let handler = WsServer::new(WsConfig::default(), Lengths);
//! let server = Server::bind(Config::new("127.0.0.1:0".parse().unwrap()), handler)?;
//! # drop(server);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`WsEcho`], the `ws_echo` example's application, is the smallest real one; the
//! push chat ([`super::push::ChatPush`]) is built on a broadcast hub.

use std::mem;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Response;
use crate::server::{CloseReason, ConnId, Context, Handler, Incoming, Reply, ServerStats, TimerId};
use crate::ws::{
    self, CloseCode, CloseFrame, Connection, Event, HandshakeConfig, HandshakeError, Limits,
    WsError,
};

/// Timer data with this bit set belongs to the glue (keepalive and close timers);
/// the application's timer data has it clear.
const GLUE_TIMER: u64 = 1 << 63;

/// The glue's settings: what it accepts, and its timeouts. Each has a default.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Which handshakes to accept: the optional origin allow-list. Default: any
    /// origin, as the seed's node server.
    pub handshake: HandshakeConfig,
    /// Frame and message size limits (default 16 MiB each; over them: close 1009).
    pub limits: Limits,
    /// How often to ping each connection. Default 20 s; `None` never pings (dead
    /// peers are then found only by TCP errors). A ping goes out once the previous
    /// one is settled, so pings are `max(ping_interval, ping_timeout)` apart at
    /// most rates.
    pub ping_interval: Option<Duration>,
    /// How long after a ping the peer has to send something (a pong or any frame)
    /// before it is taken for dead. Default 20 s.
    pub ping_timeout: Duration,
    /// After the server sends a close frame ([`WsContext::close`]), how long it
    /// waits for the peer's before closing TCP anyway. Default 5 s.
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            handshake: HandshakeConfig::default(),
            limits: Limits::default(),
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// A message from the peer, whole (fragments joined, text checked as UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// What the application learns about a WebSocket when it opens.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The peer's address; its port names the user in the seed's chat.
    pub peer: SocketAddr,
    /// The request's `Origin`, if it sent one (browsers do; the seed accepts the
    /// connection "with request.origin").
    pub origin: Option<&'a [u8]>,
    /// The request-target of the handshake, such as `/`.
    pub target: &'a str,
}

/// How a WebSocket ended, as told to [`WsApp::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsClosed {
    /// The peer started the close handshake (its code, if its close frame had one);
    /// the server answered and closed TCP.
    ByPeer(Option<CloseCode>),
    /// The application closed it with this code ([`WsContext::close`] or
    /// [`WsContext::fail`]).
    ByServer(CloseCode),
    /// The peer broke a rule of RFC 6455; the server sent a close frame with
    /// [`WsError::close_code`] and closed TCP.
    ProtocolError(WsError),
    /// The peer did not answer a ping within [`WsConfig::ping_timeout`].
    PingTimeout,
    /// The TCP connection went away without a close handshake (reset, end of file,
    /// server shutdown).
    Dropped(CloseReason),
}

/// A WebSocket application: what happens when connections open, send, and close.
/// Only [`WsApp::on_message`] is required.
pub trait WsApp {
    /// A WebSocket opened (the 101 is queued ahead of anything sent here).
    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, opened: &Opened<'_>) {
        let _ = (ws, conn, opened);
    }

    /// A whole message arrived.
    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>);

    /// A WebSocket ended (see [`WsClosed`]); nothing more can be sent on it. Called
    /// once per [`WsApp::on_open`].
    fn on_close(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
        let _ = (ws, conn, closed);
    }

    /// A request that is not a WebSocket handshake. By default: `426 Upgrade
    /// Required` naming the protocol this endpoint speaks (RFC 9110 §15.5.22).
    fn on_http(&mut self, ctx: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let _ = (ctx, req);
        not_a_websocket(res);
        Reply::Respond
    }

    /// A timer set with [`WsContext::set_timer`] came due.
    fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        let _ = (ws, timer, data);
    }

    /// A turn of the loop ended: what was sent during it has been written as far as
    /// the sockets took it (see [`Handler::on_turn_end`]).
    fn on_turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        let _ = ws;
    }
}

/// The answer to a plain HTTP request at a WebSocket-only endpoint: 426, with the
/// `Upgrade` and `Sec-WebSocket-Version` fields that say what to ask for instead.
pub fn not_a_websocket(res: &mut Response) {
    res.set_status(426);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.header("Upgrade", "websocket");
    res.header("Connection", "Upgrade");
    res.header("Sec-WebSocket-Version", ws::handshake::WEBSOCKET_VERSION);
    res.body_mut()
        .extend_from_slice(b"this endpoint speaks WebSocket (RFC 6455): send an upgrade request\n");
}

/// What the glue counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Handshakes accepted (WebSockets opened).
    pub opened: u64,
    /// Handshakes refused (400, 403, 426).
    pub rejected: u64,
    /// Whole messages received.
    pub messages_in: u64,
    /// Messages sent by the application (a broadcast counts once per client).
    pub messages_out: u64,
    /// Pings sent by the keepalive.
    pub pings_sent: u64,
    /// WebSockets ended by the peer's close frame.
    pub closed_by_peer: u64,
    /// WebSockets ended by the application.
    pub closed_by_server: u64,
    /// WebSockets failed for breaking a protocol rule.
    pub protocol_errors: u64,
    /// Peers removed for not answering a ping in time.
    pub ping_timeouts: u64,
    /// WebSockets whose TCP connection went away without a close handshake.
    pub dropped: u64,
}

/// Where one WebSocket is, from the glue's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Messages flow both ways.
    Open,
    /// The application closed it: a close frame went out (or will as soon as the
    /// decoder is back), and the peer's is awaited. Nothing more is delivered.
    Closing,
    /// TCP close is requested: everything that arrives is dropped.
    Done,
}

/// One WebSocket's state.
#[derive(Debug)]
struct Slot {
    /// The connection, to tell a reused slot from this one.
    id: ConnId,
    /// The peer's address, kept so that it can be named in `on_close` after TCP is
    /// gone.
    peer: SocketAddr,
    /// The decoder and the close handshake. Taken out (leaving a placeholder)
    /// while a message it decoded is being handled: see `busy`.
    ws: Connection,
    /// Where the WebSocket is.
    phase: Phase,
    /// `ws` is out of the slot because a message of this connection is being
    /// handled; a close asked for meanwhile waits in `close_requested`.
    busy: bool,
    /// A graceful close the application asked for while `busy`, started once the
    /// decoder is back.
    close_requested: Option<(CloseCode, String)>,
    /// The last time bytes arrived: any frame proves the peer alive.
    last_heard: Instant,
    /// When the last ping went out (or the connection opened), for the interval.
    last_ping: Instant,
    /// A ping not yet answered: when it went out.
    ping_sent: Option<Instant>,
    /// The slot's one timer (keepalive, or the close timeout while `Closing`).
    timer: Option<TimerId>,
}

/// The glue's state that the application's [`WsContext`] reaches.
#[derive(Debug, Default)]
struct Sockets {
    /// WebSockets by the connection's slot index.
    slots: Vec<Option<Slot>>,
    /// WebSockets that ended and whose application has not been told yet (it is
    /// told right after the callback that ended them returns).
    ended: Vec<(ConnId, WsClosed)>,
    /// Where frames are encoded before they are queued; reused.
    scratch: Vec<u8>,
    /// Counters.
    stats: WsStats,
    /// How long to wait for the answer to a close frame.
    close_timeout: Duration,
}

impl Sockets {
    fn get(&self, conn: ConnId) -> Option<&Slot> {
        self.slots
            .get(conn.index())?
            .as_ref()
            .filter(|s| s.id == conn)
    }

    fn get_mut(&mut self, conn: ConnId) -> Option<&mut Slot> {
        slot_mut(&mut self.slots, conn)
    }

    /// Marks a WebSocket ended and queues the application's `on_close`.
    fn end(&mut self, ctx: &mut Context<'_>, conn: ConnId, closed: WsClosed, phase: Phase) {
        let Some(slot) = self.get_mut(conn) else {
            return;
        };
        let was_open = slot.phase == Phase::Open;
        slot.phase = phase;
        if phase == Phase::Done {
            if let Some(timer) = slot.timer.take() {
                ctx.cancel_timer(timer);
            }
            ctx.close(conn);
        }
        if !was_open {
            return;
        }
        let stats = &mut self.stats;
        match closed {
            WsClosed::ByPeer(_) => stats.closed_by_peer += 1,
            WsClosed::ByServer(_) => stats.closed_by_server += 1,
            WsClosed::ProtocolError(_) => stats.protocol_errors += 1,
            WsClosed::PingTimeout => stats.ping_timeouts += 1,
            WsClosed::Dropped(_) => stats.dropped += 1,
        }
        self.ended.push((conn, closed));
    }
}

/// The slot of `conn`, if it is still the one in its place.
fn slot_mut(slots: &mut [Option<Slot>], conn: ConnId) -> Option<&mut Slot> {
    slots
        .get_mut(conn.index())?
        .as_mut()
        .filter(|s| s.id == conn)
}

/// What a [`WsApp`] can do: send on any WebSocket, close one, look at backlogs, set
/// timers. It wraps the driver's [`Context`].
pub struct WsContext<'a, 'b> {
    /// The driver's context: sends, closes, timers, the clock.
    ctx: &'a mut Context<'b>,
    /// The WebSockets.
    socks: &'a mut Sockets,
}

impl WsContext<'_, '_> {
    /// The loop's time (see [`Context::now`]).
    pub fn now(&self) -> Instant {
        self.ctx.now()
    }

    /// Whether messages can be sent on `conn`: it is an open WebSocket and no close
    /// frame has gone out on it.
    pub fn can_send(&self, conn: ConnId) -> bool {
        self.socks.get(conn).is_some_and(|s| s.phase == Phase::Open)
    }

    /// Sends a text message; `false` (and nothing sent) if `conn` cannot be sent on.
    pub fn send_text(&mut self, conn: ConnId, text: &str) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.socks.scratch.clear();
        ws::write_text(&mut self.socks.scratch, text);
        self.ctx.send_raw(conn, &self.socks.scratch);
        self.socks.stats.messages_out += 1;
        true
    }

    /// Sends a binary message; `false` (and nothing sent) if `conn` cannot be sent
    /// on.
    pub fn send_binary(&mut self, conn: ConnId, data: &[u8]) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.socks.scratch.clear();
        ws::write_binary(&mut self.socks.scratch, data);
        self.ctx.send_raw(conn, &self.socks.scratch);
        self.socks.stats.messages_out += 1;
        true
    }

    /// Sends a frame encoded beforehand ([`ws::text_frame`], [`ws::binary_frame`]),
    /// sharing its bytes: the way to send one message to many connections. `false`
    /// (and nothing sent) if `conn` cannot be sent on.
    pub fn send_frame(&mut self, conn: ConnId, frame: &Bytes) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.ctx.send_shared(conn, frame.clone());
        self.socks.stats.messages_out += 1;
        true
    }

    /// Starts the close handshake (§7.1.2): sends a close frame with `code` and
    /// `reason` (cut to fit 123 bytes), then waits up to
    /// [`WsConfig::close_timeout`] for the peer's close before closing TCP. The
    /// application's `on_close` follows this callback. Nothing if `conn` is not
    /// open.
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        let Sockets {
            slots,
            scratch,
            close_timeout,
            ..
        } = &mut *self.socks;
        let Some(slot) = slot_mut(slots, conn) else {
            return;
        };
        if slot.phase != Phase::Open {
            return;
        }
        if let Some(timer) = slot.timer.take() {
            self.ctx.cancel_timer(timer);
        }
        slot.timer = Some(self.ctx.set_timer(*close_timeout, glue_timer(conn)));
        if slot.busy {
            slot.close_requested = Some((code, reason.to_string()));
        } else {
            scratch.clear();
            slot.ws.close(code, reason, scratch);
            self.ctx.send_raw(conn, scratch);
        }
        self.socks
            .end(self.ctx, conn, WsClosed::ByServer(code), Phase::Closing);
    }

    /// Fails the connection at once (§7.1.7): sends a close frame with `code` and
    /// `reason` behind what is queued, closes TCP once that is written, and waits
    /// for nothing. For a peer that is misbehaving or cannot keep up. Nothing if
    /// `conn` is not open.
    pub fn fail(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        if !self.can_send(conn) {
            return;
        }
        self.socks.scratch.clear();
        ws::write_close(&mut self.socks.scratch, Some(CloseFrame { code, reason }));
        self.ctx.send_raw(conn, &self.socks.scratch);
        self.socks
            .end(self.ctx, conn, WsClosed::ByServer(code), Phase::Done);
    }

    /// Bytes queued for `conn` and not yet written to its socket, this callback's
    /// sends included (see [`Context::queued_bytes`]); `None` once it has closed.
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.ctx.queued_bytes(conn)
    }

    /// The peer's address of a WebSocket, known until its `on_close` has returned.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.socks.get(conn).map(|s| s.peer)
    }

    /// Calls [`WsApp::on_timer`] with `data` after `after`. `data` must be below
    /// 2^63 (the top bit is the glue's and is cleared).
    pub fn set_timer(&mut self, after: Duration, data: u64) -> TimerId {
        self.ctx.set_timer(after, data & !GLUE_TIMER)
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.ctx.cancel_timer(timer)
    }

    /// The server's totals (write system calls, bytes), as of now.
    pub fn server_stats(&self) -> &ServerStats {
        self.ctx.stats()
    }

    /// The glue's counters.
    pub fn stats(&self) -> &WsStats {
        &self.socks.stats
    }
}

/// Timer data for a glue timer of `conn`.
fn glue_timer(conn: ConnId) -> u64 {
    GLUE_TIMER | conn.index() as u64
}

/// A [`Handler`] that speaks WebSocket and hands messages to a [`WsApp`].
pub struct WsServer<A> {
    /// The application.
    app: A,
    /// The settings.
    config: WsConfig,
    /// The WebSockets and what the application's context reaches.
    socks: Sockets,
    /// The automatic replies (pong, close answer, error close) the core writes,
    /// sent right after each decode; reused.
    replies: Vec<u8>,
}

impl<A: WsApp> WsServer<A> {
    /// Serves `app` with `config`.
    pub fn new(config: WsConfig, app: A) -> WsServer<A> {
        let socks = Sockets {
            close_timeout: config.close_timeout,
            ..Sockets::default()
        };
        WsServer {
            app,
            config,
            socks,
            replies: Vec::new(),
        }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// The application, taking the glue apart.
    pub fn into_app(self) -> A {
        self.app
    }

    /// The glue's counters.
    pub fn stats(&self) -> &WsStats {
        &self.socks.stats
    }

    /// WebSockets open now (from the handshake until TCP is closed).
    pub fn open_count(&self) -> usize {
        self.socks.slots.iter().flatten().count()
    }

    /// Tells the application about the WebSockets that ended during the last
    /// callback (its `on_close` may end more: told in turn).
    fn notify_ended(&mut self, ctx: &mut Context<'_>) {
        while !self.socks.ended.is_empty() {
            let batch = mem::take(&mut self.socks.ended);
            for &(conn, closed) in &batch {
                let mut ws = WsContext {
                    ctx,
                    socks: &mut self.socks,
                };
                self.app.on_close(&mut ws, conn, closed);
            }
            if self.socks.ended.is_empty() {
                let mut batch = batch;
                batch.clear();
                self.socks.ended = batch;
            }
        }
    }

    /// Arms a slot's keepalive timer for its next check, if pinging is on.
    fn arm_keepalive(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(interval) = self.config.ping_interval else {
            return;
        };
        let timeout = self.config.ping_timeout;
        let Some(slot) = self.socks.get_mut(conn) else {
            return;
        };
        // With a ping outstanding, the next thing to check is its timeout; the next
        // ping goes out only once that one is settled.
        let at = match slot.ping_sent {
            Some(sent) => sent + timeout,
            None => slot.last_ping + interval,
        };
        // Never due at once: a timer set for now from inside a timer callback would
        // fire again in the same pass, for ever (zero durations are possible in a
        // hand-made config).
        let at = at.max(ctx.now() + Duration::from_millis(1));
        slot.timer = Some(ctx.set_timer_at(at, glue_timer(conn)));
    }

    /// A glue timer of the slot at `index` fired.
    fn glue_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, index: usize) {
        let Some(slot) = self.socks.slots.get_mut(index).and_then(Option::as_mut) else {
            return;
        };
        if slot.timer != Some(timer) {
            return; // a timer replaced since
        }
        slot.timer = None;
        let conn = slot.id;
        let now = ctx.now();
        match slot.phase {
            Phase::Done => {}
            Phase::Closing => {
                // §7.1.1: the peer did not answer our close in time; close TCP.
                slot.phase = Phase::Done;
                ctx.close(conn);
            }
            Phase::Open => {
                if let Some(sent) = slot.ping_sent {
                    if slot.last_heard >= sent {
                        slot.ping_sent = None;
                    } else if now >= sent + self.config.ping_timeout {
                        // Nothing heard since the ping: the peer is gone. A close
                        // frame would only wait in its queue: close TCP.
                        self.socks
                            .end(ctx, conn, WsClosed::PingTimeout, Phase::Done);
                        return;
                    }
                }
                let Some(interval) = self.config.ping_interval else {
                    return;
                };
                if slot.ping_sent.is_none() && now >= slot.last_ping + interval {
                    // §5.5.2: a ping may carry "Application data"; none is needed,
                    // as any frame that comes back proves the peer alive.
                    self.replies.clear();
                    ws::write_ping(&mut self.replies, b"");
                    ctx.send_raw(conn, &self.replies);
                    slot.ping_sent = Some(now);
                    slot.last_ping = now;
                    self.socks.stats.pings_sent += 1;
                }
                self.arm_keepalive(ctx, conn);
            }
        }
    }

    /// Answers a WebSocket handshake: 101 and a new slot, or the refusal.
    fn handshake(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let conn = req.conn();
        let request = req.request();
        // `accept` writes the 101 as bytes for sans-I/O users; the driver encodes
        // responses itself, so only the computed accept value is used here.
        self.replies.clear();
        let accepted = match ws::accept(request, &self.config.handshake, &mut self.replies) {
            Ok(accepted) => accepted,
            Err(error) => {
                self.socks.stats.rejected += 1;
                rejection(error, res);
                return Reply::Respond;
            }
        };
        let Some(peer) = ctx.peer_addr(conn) else {
            return Reply::Respond;
        };
        res.set_status(101);
        res.header("Upgrade", "websocket");
        res.header("Connection", "Upgrade");
        res.header("Sec-WebSocket-Accept", &accepted.accept);
        let now = ctx.now();
        let index = conn.index();
        if self.socks.slots.len() <= index {
            self.socks.slots.resize_with(index + 1, || None);
        }
        if let Some(entry) = self.socks.slots.get_mut(index) {
            *entry = Some(Slot {
                id: conn,
                peer,
                ws: Connection::new(self.config.limits),
                phase: Phase::Open,
                busy: false,
                close_requested: None,
                last_heard: now,
                last_ping: now,
                ping_sent: None,
                timer: None,
            });
        }
        self.socks.stats.opened += 1;
        self.arm_keepalive(ctx, conn);
        let opened = Opened {
            peer,
            origin: accepted.origin,
            target: accepted.target,
        };
        let mut ws = WsContext {
            ctx,
            socks: &mut self.socks,
        };
        self.app.on_open(&mut ws, conn, &opened);
        self.notify_ended(ctx);
        Reply::Upgrade
    }

    /// Decodes what arrived on `conn` and hands out its messages; returns how many
    /// bytes were used.
    fn receive(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        let now = ctx.now();
        let Some(slot) = self.socks.get_mut(conn) else {
            return data.len(); // not a WebSocket of ours: drop the bytes
        };
        if slot.phase == Phase::Done {
            return data.len();
        }
        slot.last_heard = now;
        let total = data.len();
        let mut decoder = mem::take(&mut slot.ws);
        slot.busy = true;
        let mut pos = 0;
        let mut stop = false;
        while !stop {
            self.replies.clear();
            let input = data.get_mut(pos..).unwrap_or_default();
            let event = match decoder.receive(input, &mut self.replies) {
                Ok(decoded) => {
                    pos += decoded.consumed;
                    decoded.event
                }
                Err(error) => {
                    // The core wrote the close frame with the error's code.
                    ctx.send_raw(conn, &self.replies);
                    self.socks
                        .end(ctx, conn, WsClosed::ProtocolError(error), Phase::Done);
                    pos = total;
                    break;
                }
            };
            ctx.send_raw(conn, &self.replies);
            let phase = self.socks.get(conn).map_or(Phase::Done, |s| s.phase);
            match event {
                None => stop = true,
                Some(Event::Text(text)) if phase == Phase::Open => {
                    self.socks.stats.messages_in += 1;
                    let mut ws = WsContext {
                        ctx,
                        socks: &mut self.socks,
                    };
                    self.app.on_message(&mut ws, conn, Message::Text(text));
                }
                Some(Event::Binary(bytes)) if phase == Phase::Open => {
                    self.socks.stats.messages_in += 1;
                    let mut ws = WsContext {
                        ctx,
                        socks: &mut self.socks,
                    };
                    self.app.on_message(&mut ws, conn, Message::Binary(bytes));
                }
                Some(Event::Close(close)) => {
                    // Answered by the core (if we had not sent a close already):
                    // the handshake is complete, close TCP (§7.1.1).
                    let code = close.map(|c| c.code);
                    self.socks
                        .end(ctx, conn, WsClosed::ByPeer(code), Phase::Done);
                    pos = total;
                    stop = true;
                }
                // Pings were answered by the core; pongs and late messages need
                // nothing more.
                Some(_) => {}
            }
            // What the application did to this connection meanwhile.
            let Some(slot) = self.socks.get_mut(conn) else {
                break;
            };
            if slot.phase == Phase::Done {
                pos = total;
                break;
            }
            if let Some((code, reason)) = slot.close_requested.take() {
                self.replies.clear();
                decoder.close(code, &reason, &mut self.replies);
                ctx.send_raw(conn, &self.replies);
            }
        }
        if let Some(slot) = self.socks.get_mut(conn) {
            slot.ws = decoder;
            slot.busy = false;
        }
        self.notify_ended(ctx);
        pos
    }
}

/// The refusal of a bad handshake, through the driver's encoder: the error's
/// status, a body naming the rule, `Connection: close`; a 426 also says which
/// version to use (§4.4). The same answer as [`ws::write_rejection`].
fn rejection(error: HandshakeError, res: &mut Response) {
    res.set_status(error.status());
    res.header("Content-Type", "text/plain; charset=utf-8");
    if error == HandshakeError::UnsupportedVersion {
        res.header("Sec-WebSocket-Version", ws::handshake::WEBSOCKET_VERSION);
        res.header("Upgrade", "websocket");
        res.header("Connection", "Upgrade");
    }
    res.body_mut()
        .extend_from_slice(error.to_string().as_bytes());
    res.body_mut().push(b'\n');
    res.set_close();
}

impl<A: WsApp> Handler for WsServer<A> {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        if ws::is_upgrade_request(req.request()) {
            self.handshake(ctx, req, res)
        } else {
            self.app.on_http(ctx, req, res)
        }
    }

    fn on_upgraded_data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        self.receive(ctx, conn, data)
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, data: u64) {
        if data & GLUE_TIMER != 0 {
            let index = (data & !GLUE_TIMER) as usize;
            self.glue_timer(ctx, timer, index);
        } else {
            let mut ws = WsContext {
                ctx,
                socks: &mut self.socks,
            };
            self.app.on_timer(&mut ws, timer, data);
        }
        self.notify_ended(ctx);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        if self.socks.get(conn).is_none() {
            return; // a plain HTTP connection
        }
        self.socks
            .end(ctx, conn, WsClosed::Dropped(reason), Phase::Done);
        self.notify_ended(ctx);
        if let Some(entry) = self.socks.slots.get_mut(conn.index())
            && entry.as_ref().is_some_and(|s| s.id == conn)
        {
            if let Some(timer) = entry.as_ref().and_then(|s| s.timer) {
                ctx.cancel_timer(timer);
            }
            *entry = None;
        }
    }

    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        let mut ws = WsContext {
            ctx,
            socks: &mut self.socks,
        };
        self.app.on_turn_end(&mut ws);
        self.notify_ended(ctx);
    }
}

/// The `ws_echo` example's application: every text or binary message is sent back
/// as it came, the same type, on any path. It is the target for conformance
/// testing: everything it does not do itself (fragments, pings, the close
/// handshake, limits, every error) is the core's.
#[derive(Default)]
pub struct WsEcho {
    /// Who to tell about each message echoed (for `--trace`).
    observer: Option<EchoObserver>,
    /// Messages echoed.
    pub echoed: u64,
    /// Payload bytes echoed.
    pub echoed_bytes: u64,
}

/// Called with each message echoed: the connection, whether it was text, its
/// payload size.
pub type EchoObserver = Box<dyn FnMut(ConnId, bool, usize) + Send>;

impl WsEcho {
    /// The echo application, reporting nothing.
    pub fn new() -> WsEcho {
        WsEcho::default()
    }

    /// Calls `observer` with each message echoed.
    pub fn with_observer(observer: impl FnMut(ConnId, bool, usize) + Send + 'static) -> WsEcho {
        WsEcho {
            observer: Some(Box::new(observer)),
            ..WsEcho::default()
        }
    }
}

impl WsApp for WsEcho {
    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        let (sent, text, len) = match msg {
            Message::Text(text) => (ws.send_text(conn, text), true, text.len()),
            Message::Binary(data) => (ws.send_binary(conn, data), false, data.len()),
        };
        if sent {
            self.echoed += 1;
            self.echoed_bytes += len as u64;
            if let Some(observer) = self.observer.as_mut() {
                observer(conn, text, len);
            }
        }
    }
}
