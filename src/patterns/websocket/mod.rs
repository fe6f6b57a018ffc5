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
//! 3. **Keepalive** ([`keepalive`], RFC 6455 §5.5.2). With `interval` =
//!    [`WsConfig::ping_interval`] and `timeout` = [`WsConfig::ping_timeout`], a
//!    WebSocket opened at `t0` is pinged at `t0 + interval`, then `interval` after
//!    each ping went out, whether or not the peer answered it. A ping sent while
//!    none is unanswered sets a deadline `timeout` after it; anything at all from
//!    the peer (a pong, any frame) clears it. A peer that sent nothing by the
//!    deadline is taken for dead, exactly at `ping sent + timeout`: its TCP
//!    connection is closed at once ([`Context::abort`]: a close frame would only
//!    wait in its queue) and the application told [`WsClosed::PingTimeout`]. So a
//!    peer that goes silent is closed `timeout` after the first ping it leaves
//!    unanswered, at most `interval + timeout` after it was last heard. This is
//!    how a server learns that a client vanished without a FIN (a laptop lid
//!    closed, a NAT entry dropped): TCP alone would keep writing into the void
//!    until its retransmissions give up, minutes later.
//! 4. **Closing** (RFC 6455 §7). A close frame from the peer is answered (by the
//!    core) and the server closes TCP first, as §7.1.1 asks. A frame that breaks a
//!    rule fails the connection: a close frame with the error's code (1002, 1007,
//!    1009), then TCP close, with no wait for an answer (§7.1.7). The application
//!    may close gracefully ([`WsContext::close`]: a close frame, then up to
//!    [`WsConfig::close_timeout`] for the peer's) or at once ([`WsContext::fail`]:
//!    a close frame, then TCP close, as a push hub does to a client that cannot keep
//!    up).
//!
//!    Whichever way, once the server has sent a close frame, TCP is closed when
//!    the peer's close arrives (or, when none is awaited, as soon as the frame is
//!    written), and **at the latest [`WsConfig::close_timeout`] after the frame
//!    was queued**: then the connection is aborted ([`Context::abort`]), dropping
//!    what is still queued, the close frame included. This matters for a peer that
//!    stopped reading: its close frame sits behind what it did not read and would
//!    never be written, and without the bound the connection would stay until the
//!    driver's idle timeout (60 s). Such cut-short closes are counted in
//!    [`WsStats::close_timeouts`]; the application was told in `on_close` when the
//!    close began, and is not told again.
//!
//! 5. **Shutdown.** When the server is asked to stop ([`Handler::on_shutdown`]),
//!    the application hears it first ([`WsApp::on_shutdown`], to say goodbye), then
//!    every open WebSocket gets a close frame with 1001 Going Away (§7.4.1: "an
//!    endpoint is going away, such as a server going down") and its TCP connection
//!    is closed once that frame is written, without waiting for the peer's answer:
//!    the server is leaving either way. The application is told
//!    [`WsClosed::Shutdown`]. A handshake that arrives after that is refused with
//!    503.
//!
//! [`WsApp::on_close`] is called exactly once per opened WebSocket, as soon as no
//! more messages can be sent on it, whichever way it ended; messages that arrive
//! after that are dropped.
//!
//! # What it reports
//!
//! An observer ([`WsServer::set_observer`], for the examples' `--trace`) hears of
//! everything the glue handles, as [`WsEvent`]s: each plain request and what it
//! cost, each handshake accepted or refused (with the rule it broke) and what it
//! cost, each message with what its connection read and wrote for it, and each
//! WebSocket that ended. A message's cost is taken from the connection's own
//! counters ([`Context::io`]) over the loop turn that read it, reported at the end
//! of that turn, once its answers have been written: the reads that brought it,
//! the writes that carried whatever was sent on that connection meanwhile.
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
//! push chat ([`super::chat::ChatPush`]) is built on a broadcast hub.
//!
//! # Broadcasting from one log
//!
//! Sending a message to many WebSockets with [`WsContext::send_shared`] still
//! copies it into each connection's output buffer. An application that keeps its
//! frames, encoded once, in a shared log ([`super::frame_log::FrameLog`], each
//! WebSocket a byte cursor) can have the loop write them from there instead
//! ([`Handler::source`], whose module docs tell how): it returns each
//! connection's pending bytes from [`WsApp::source`], advances the cursor in
//! [`WsApp::source_written`], calls [`WsContext::wake_writer`] after appending,
//! and drops the cursor in [`WsApp::source_done`]. The glue keeps the protocol
//! whole: its own frames (pongs, close frames) are written only between the log's
//! frames, and once a close frame is queued nothing from the log follows it but
//! the end of a frame a short write cut. The push hub ([`super::push::PushHub`])
//! broadcasts this way.
//!
//! # Layout
//!
//! One concern per file: `app.rs` (the [`WsApp`] trait and what it is handed),
//! `context.rs` ([`WsContext`], what an application can do), `sessions.rs` (the
//! glue's state for each WebSocket), `events.rs` ([`WsStats`] and what the
//! observer is told), `keepalive.rs` (the ping schedule, on its own clock),
//! `echo.rs` ([`WsEcho`]), and this file: [`WsConfig`] and [`WsServer`], the
//! [`Handler`] that runs handshakes, decodes frames and calls the application.

use std::fmt;
use std::mem;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cost::{IoCounters, Label, RequestCost};
use crate::http::Response;
use crate::server::{
    CloseReason, ConnId, Context, Handler, Incoming, OutEnd, OutId, Reply, ServerStats, Source,
    TimerId,
};
use crate::trace::{LineCost, SharedWith, Span, TraceLine};
use crate::ws::{
    self, CloseCode, CloseFrame, Connection, Event, HandshakeConfig, HandshakeError, Limits,
    WsError,
};

mod app;
mod context;
mod echo;
mod events;
pub mod keepalive;
mod sessions;

pub use app::{Message, Opened, WsApp, WsClosed, not_a_websocket};
pub use context::WsContext;
pub use echo::WsEcho;
pub use events::{MessageCost, WsEvent, WsObserver, WsStats};
use events::{Report, Verdict};
pub use keepalive::{Keepalive, KeepaliveStep};
use sessions::{Session, Sessions, WsState, session_mut};

/// The glue's settings: what it accepts, and its timeouts. Each has a default.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Which handshakes to accept: the optional origin allow-list. Default: any
    /// origin, as the seed's node server.
    pub handshake: HandshakeConfig,
    /// Frame and message size limits (default 16 MiB each; over them: close 1009).
    pub limits: Limits,
    /// How often to ping each connection. Default 20 s; `None` never pings (dead
    /// peers are then found only by TCP errors). The first ping goes out this long
    /// after the handshake, each next one this long after the previous one,
    /// answered or not (the schedule: [`keepalive`]).
    pub ping_interval: Option<Duration>,
    /// How long after a ping the peer has to send something (a pong or any frame)
    /// before it is taken for dead. Default 20 s. It is closed exactly this long
    /// after the oldest ping it left unanswered.
    pub ping_timeout: Duration,
    /// After the server sends a close frame (any: [`WsContext::close`],
    /// [`WsContext::fail`], a protocol error's, the answer to the peer's, 1001 at
    /// shutdown), the most time until its TCP connection is closed. Default 5 s.
    /// A graceful close waits this long for the peer's close frame; a close that
    /// waits for nothing but its frame to be written (a peer that stopped reading
    /// keeps it queued) is aborted after this long, dropping what is queued
    /// (RFC 6455 §7.1.1, §7.1.7).
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

/// Timer data for a glue timer of `conn`: the session's index, so that the
/// timer's session is found without a search. It is not what marks the timer as
/// the glue's (an application timer may carry any data): the [`TimerId`] kept in
/// [`Session::timer`] is, as timer ids are never reused.
fn glue_timer(conn: ConnId) -> u64 {
    conn.index() as u64
}

/// A [`Handler`] that speaks WebSocket and hands messages to a [`WsApp`].
pub struct WsServer<A> {
    /// The application.
    app: A,
    /// The settings.
    config: WsConfig,
    /// The WebSockets and what the application's context reaches.
    sessions: Sessions,
    /// The automatic replies (pong, close answer, error close) the core writes,
    /// sent right after each decode; reused.
    replies: Vec<u8>,
    /// Who hears of everything handled, if anyone (`--trace`).
    observer: Option<WsObserver>,
    /// What is kept to tell the observer.
    report: Report,
    /// The server is shutting down: handshakes are refused.
    shutting_down: bool,
}

impl<A: WsApp> WsServer<A> {
    /// Serves `app` with `config`.
    pub fn new(config: WsConfig, app: A) -> WsServer<A> {
        let sessions = Sessions {
            close_timeout: config.close_timeout,
            ..Sessions::default()
        };
        WsServer {
            app,
            config,
            sessions,
            replies: Vec::new(),
            observer: None,
            report: Report::default(),
            shutting_down: false,
        }
    }

    /// Calls `observer` with everything the glue handles: requests, handshakes
    /// accepted and refused, messages, and WebSockets ending ([`WsEvent`]).
    pub fn set_observer(&mut self, observer: impl FnMut(&WsEvent<'_>) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Tells the observer, if any.
    fn tell(&mut self, event: WsEvent<'_>) {
        if let Some(observer) = self.observer.as_mut() {
            observer(&event);
        }
    }

    /// Notes that `conn` read or wrote this turn (only with an observer).
    fn touch(&mut self, conn: ConnId) {
        if self.observer.is_some() && !self.report.touched.contains(&conn) {
            self.report.touched.push(conn);
        }
    }

    /// Keeps a handshake's verdict until its response is written (only with an
    /// observer).
    fn keep_verdict(&mut self, verdict: Verdict) {
        if self.observer.is_some() {
            self.report.verdicts.push(verdict);
        }
    }

    /// The loop turn ended: charges this turn's messages with what their
    /// connections read and wrote during it, and tells the observer.
    fn report_turn(&mut self, ctx: &mut Context<'_>) {
        if self.observer.is_none() || self.report.touched.is_empty() {
            return;
        }
        let now = ctx.now();
        let mut messages = mem::take(&mut self.report.messages);
        for &conn in &self.report.touched {
            let Some(session) = self.sessions.get_mut(conn) else {
                continue;
            };
            let Some(io) = ctx.io(conn) else {
                continue;
            };
            let seen = mem::replace(&mut session.io_seen, io);
            let turn = session.io_turn.take().unwrap_or(io);
            let spent = IoCounters {
                read_calls: io.read_calls.saturating_sub(seen.read_calls),
                write_calls: io.write_calls.saturating_sub(turn.write_calls),
                bytes_in: io.bytes_in.saturating_sub(seen.bytes_in),
                bytes_out: io.bytes_out.saturating_sub(turn.bytes_out),
            };
            let mut mine = messages.iter_mut().filter(|m| m.conn == conn);
            let Some(first) = mine.next() else {
                continue;
            };
            first.io = spent;
            let first_index = first.index;
            let last_index = messages
                .iter()
                .filter(|m| m.conn == conn)
                .map(|m| m.index)
                .max()
                .unwrap_or(first_index);
            for m in messages.iter_mut().filter(|m| m.conn == conn) {
                m.group = (first_index, last_index);
            }
        }
        self.report.touched.clear();
        for m in &mut messages {
            m.took = now.saturating_duration_since(m.at);
        }
        for m in &messages {
            self.tell(WsEvent::Message(m));
        }
        messages.clear();
        self.report.messages = messages;
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
        &self.sessions.stats
    }

    /// WebSockets open now (from the handshake until TCP is closed).
    pub fn open_count(&self) -> usize {
        self.sessions.by_index.iter().flatten().count()
    }

    /// Tells the application about the WebSockets that ended during the last
    /// callback (its `on_close` may end more: told in turn).
    fn notify_ended(&mut self, ctx: &mut Context<'_>) {
        while !self.sessions.ended.is_empty() {
            let batch = mem::take(&mut self.sessions.ended);
            for &(conn, closed) in &batch {
                let at = ctx.now();
                self.tell(WsEvent::Closed { conn, at, closed });
                let mut ws = WsContext {
                    ctx,
                    sessions: &mut self.sessions,
                };
                self.app.on_close(&mut ws, conn, closed);
            }
            if self.sessions.ended.is_empty() {
                let mut batch = batch;
                batch.clear();
                self.sessions.ended = batch;
            }
        }
    }

    /// Arms a session's keepalive timer for its next wake-up, if pinging is on.
    fn arm_keepalive(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        let Some(keepalive) = session.keepalive.as_ref() else {
            return;
        };
        // Never due at once: a timer set for now from inside a timer callback would
        // fire again in the same pass, for ever (zero durations are possible in a
        // hand-made config).
        let at = keepalive
            .next_wake()
            .max(ctx.now() + Duration::from_millis(1));
        let timer = ctx.set_timer_at(at, glue_timer(conn));
        // A session has one timer at a time: a replaced one must never fire, or it
        // would reach the application as one of its own.
        if let Some(old) = session.timer.replace(timer) {
            ctx.cancel_timer(old);
        }
    }

    /// A glue timer of the session at `index` fired: the keepalive's while the
    /// WebSocket is open, the close timeout after a close frame went out.
    fn glue_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, index: usize) {
        let Some(session) = self
            .sessions
            .by_index
            .get_mut(index)
            .and_then(Option::as_mut)
        else {
            return;
        };
        if session.timer != Some(timer) {
            return; // a timer replaced since
        }
        session.timer = None;
        let conn = session.id;
        let now = ctx.now();
        match session.state {
            WsState::Done if ctx.queued_bytes(conn) == Some(0) => {
                // Everything is written and FIN sent: the connection lingers, a
                // close under way that the driver's linger timeout bounds.
            }
            WsState::Closing | WsState::Done => {
                // §7.1.1: the peer did not answer our close in time (`Closing`),
                // or it stopped reading, so that the close frame still waits in
                // the queue (`Done`: §7.1.7 wants the connection closed, and
                // waiting for a peer that does not read would keep it until the
                // idle timeout). Close TCP now, dropping what is queued.
                session.state = WsState::Done;
                ctx.abort(conn);
                self.sessions.stats.close_timeouts += 1;
            }
            WsState::Open => {
                let paused = session.paused;
                let Some(keepalive) = session.keepalive.as_mut() else {
                    return;
                };
                if paused {
                    // We are the ones not reading: its answers wait unread.
                    keepalive.on_peer_activity(now);
                }
                match keepalive.on_timer(now) {
                    KeepaliveStep::Wait => {}
                    KeepaliveStep::Ping => {
                        // §5.5.2: a ping may carry "Application data"; none is
                        // needed, as any frame that comes back proves the peer
                        // alive.
                        self.replies.clear();
                        ws::write_ping(&mut self.replies, b"");
                        ctx.send_raw(conn, &self.replies);
                        self.sessions.stats.pings_sent += 1;
                        self.touch(conn);
                    }
                    KeepaliveStep::TimedOut => {
                        // Nothing heard since a ping: the peer is gone. A close
                        // frame would only wait in its queue: TCP is aborted.
                        self.sessions
                            .end(ctx, conn, WsClosed::PingTimeout, WsState::Done);
                        return;
                    }
                }
                self.arm_keepalive(ctx, conn);
            }
        }
    }

    /// Answers a WebSocket handshake: 101 and a new session, or the refusal.
    fn handshake(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let conn = req.conn();
        let request = req.request();
        let origin = || {
            request
                .header("origin")
                .map(|o| String::from_utf8_lossy(o).into_owned())
        };
        if self.shutting_down {
            self.sessions.stats.rejected += 1;
            res.set_status(503);
            res.header("Content-Type", "text/plain; charset=utf-8");
            res.body_mut()
                .extend_from_slice(b"the server is shutting down\n");
            res.set_close();
            self.keep_verdict(Verdict {
                conn,
                at: ctx.now(),
                status: 503,
                reason: "the server is shutting down".to_string(),
                origin: origin(),
                peer: None,
            });
            return Reply::Respond;
        }
        // `accept` writes the 101 as bytes for sans-I/O users; the driver encodes
        // responses itself, so only the computed accept value is used here.
        self.replies.clear();
        let accepted = match ws::accept(request, &self.config.handshake, &mut self.replies) {
            Ok(accepted) => accepted,
            Err(error) => {
                self.sessions.stats.rejected += 1;
                rejection(error, res);
                if self.observer.is_some() {
                    self.keep_verdict(Verdict {
                        conn,
                        at: ctx.now(),
                        status: error.status(),
                        reason: error.to_string(),
                        origin: origin(),
                        peer: None,
                    });
                }
                return Reply::Respond;
            }
        };
        let Some(peer) = ctx.peer_addr(conn) else {
            return Reply::Respond;
        };
        if !self.app.on_handshake(ctx, req, res) {
            self.sessions.stats.rejected += 1;
            res.set_close();
            if self.observer.is_some() {
                let reason = String::from_utf8_lossy(res.body()).trim_end().to_string();
                self.keep_verdict(Verdict {
                    conn,
                    at: ctx.now(),
                    status: res.status(),
                    reason,
                    origin: origin(),
                    peer: None,
                });
            }
            return Reply::Respond;
        }
        if self.observer.is_some() {
            let origin = accepted
                .origin
                .map(|o| String::from_utf8_lossy(o).into_owned());
            self.keep_verdict(Verdict {
                conn,
                at: ctx.now(),
                status: 101,
                reason: String::new(),
                origin,
                peer: Some(peer),
            });
            self.touch(conn);
        }
        res.set_status(101);
        res.header("Upgrade", "websocket");
        res.header("Connection", "Upgrade");
        res.header("Sec-WebSocket-Accept", &accepted.accept);
        let now = ctx.now();
        let index = conn.index();
        if self.sessions.by_index.len() <= index {
            self.sessions.by_index.resize_with(index + 1, || None);
        }
        if let Some(entry) = self.sessions.by_index.get_mut(index) {
            *entry = Some(Session::open(conn, peer, &self.config, now));
        }
        self.sessions.stats.opened += 1;
        self.arm_keepalive(ctx, conn);
        let opened = Opened {
            peer,
            origin: accepted.origin,
            target: accepted.target,
        };
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_open(&mut ws, conn, &opened);
        self.notify_ended(ctx);
        Reply::Upgrade
    }

    /// Decodes what arrived on `conn` and hands out its messages; returns how many
    /// bytes were used.
    fn receive(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        let now = ctx.now();
        if self.sessions.get(conn).is_some() {
            self.touch(conn);
        }
        if self.observer.is_some()
            && let Some(session) = self.sessions.get_mut(conn)
            && session.io_turn.is_none()
        {
            session.io_turn = ctx.io(conn);
        }
        let Some(session) = self.sessions.get_mut(conn) else {
            return data.len(); // not a WebSocket of ours: drop the bytes
        };
        if session.state == WsState::Done {
            return data.len();
        }
        if let Some(keepalive) = session.keepalive.as_mut() {
            keepalive.on_peer_activity(now);
        }
        let total = data.len();
        let mut decoder = mem::take(&mut session.ws);
        session.busy = true;
        // Frame bytes of the message being received, for its cost.
        let mut wire = mem::take(&mut session.wire_pending);
        let mut pos = 0;
        let mut stop = false;
        while !stop {
            self.replies.clear();
            let input = data.get_mut(pos..).unwrap_or_default();
            let event = match decoder.receive(input, &mut self.replies) {
                Ok(decoded) => {
                    pos += decoded.consumed;
                    wire += decoded.consumed as u64;
                    decoded.event
                }
                Err(error) => {
                    // The core wrote the close frame with the error's code.
                    ctx.send_raw(conn, &self.replies);
                    self.sessions
                        .end(ctx, conn, WsClosed::ProtocolError(error), WsState::Done);
                    pos = total;
                    break;
                }
            };
            ctx.send_raw(conn, &self.replies);
            let state = self.sessions.get(conn).map_or(WsState::Done, |s| s.state);
            match event {
                None => stop = true,
                Some(Event::Text(text)) if state == WsState::Open => {
                    self.sessions.stats.messages_in += 1;
                    self.record(conn, now, true, text.as_bytes(), mem::take(&mut wire));
                    let mut ws = WsContext {
                        ctx,
                        sessions: &mut self.sessions,
                    };
                    self.app.on_message(&mut ws, conn, Message::Text(text));
                }
                Some(Event::Binary(bytes)) if state == WsState::Open => {
                    self.sessions.stats.messages_in += 1;
                    self.record(conn, now, false, bytes, mem::take(&mut wire));
                    let mut ws = WsContext {
                        ctx,
                        sessions: &mut self.sessions,
                    };
                    self.app.on_message(&mut ws, conn, Message::Binary(bytes));
                }
                Some(Event::Close(close)) => {
                    // Answered by the core (if we had not sent a close already):
                    // the handshake is complete, close TCP (§7.1.1).
                    let code = close.map(|c| c.code);
                    self.sessions
                        .end(ctx, conn, WsClosed::ByPeer(code), WsState::Done);
                    pos = total;
                    stop = true;
                }
                // Pings were answered by the core; pongs and late messages need
                // nothing more (and their bytes are no message's).
                Some(_) => wire = 0,
            }
            // What the application did to this connection meanwhile.
            let Some(session) = self.sessions.get_mut(conn) else {
                break;
            };
            if session.state == WsState::Done {
                pos = total;
                break;
            }
            if let Some((code, reason)) = session.close_requested.take() {
                self.replies.clear();
                decoder.close(code, &reason, &mut self.replies);
                ctx.send_raw(conn, &self.replies);
            }
            if session.paused {
                // The application takes nothing more now: the rest waits in the
                // driver's buffer, as it arrived, until it resumes.
                break;
            }
        }
        if let Some(session) = self.sessions.get_mut(conn) {
            session.ws = decoder;
            session.busy = false;
            session.wire_pending = wire;
        }
        self.notify_ended(ctx);
        pos
    }

    /// Counts a message of `conn` and, with an observer, keeps it to be costed at
    /// the end of the turn.
    fn record(&mut self, conn: ConnId, at: Instant, text: bool, payload: &[u8], wire: u64) {
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        let index = session.messages;
        session.messages += 1;
        if self.observer.is_none() {
            return;
        }
        let preview = if text {
            Label::new(payload.get(..PREVIEW_BYTES).unwrap_or(payload))
        } else {
            Label::EMPTY
        };
        self.report.messages.push(MessageCost {
            conn,
            index,
            at,
            text,
            payload_bytes: payload.len() as u64,
            wire_bytes: wire,
            preview,
            io: IoCounters::default(),
            group: (index, index),
            took: Duration::ZERO,
        });
    }

    /// The server is shutting down: the application says goodbye, then every open
    /// WebSocket gets a 1001 close frame and its TCP connection closes once that
    /// is written (§7.4.1); one whose close handshake is under way is closed now.
    fn shutdown(&mut self, ctx: &mut Context<'_>) {
        self.shutting_down = true;
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_shutdown(&mut ws);
        self.notify_ended(ctx);
        for index in 0..self.sessions.by_index.len() {
            let Some(session) = self
                .sessions
                .by_index
                .get_mut(index)
                .and_then(Option::as_mut)
            else {
                continue;
            };
            let conn = session.id;
            match session.state {
                WsState::Done => {}
                WsState::Closing => {
                    // The application was told already; the peer's answer is not
                    // awaited any more.
                    session.state = WsState::Done;
                    if let Some(timer) = session.timer.take() {
                        ctx.cancel_timer(timer);
                    }
                    ctx.close(conn);
                }
                WsState::Open => {
                    self.sessions.scratch.clear();
                    ws::write_close(
                        &mut self.sessions.scratch,
                        Some(CloseFrame {
                            code: CloseCode::GOING_AWAY,
                            reason: "server shutting down",
                        }),
                    );
                    ctx.send_raw(conn, &self.sessions.scratch);
                    self.sessions
                        .end(ctx, conn, WsClosed::Shutdown, WsState::Done);
                }
            }
        }
        self.notify_ended(ctx);
    }
}

/// Bytes of a text message kept to name it in a trace.
const PREVIEW_BYTES: usize = 24;

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

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_start(&mut ws);
    }

    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.shutdown(ctx);
    }

    fn on_out_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_out_connected(&mut ws, out);
        self.notify_ended(ctx);
    }

    fn on_out_data(&mut self, ctx: &mut Context<'_>, out: OutId, data: &[u8]) {
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_out_data(&mut ws, out, data);
        self.notify_ended(ctx);
    }

    fn on_out_closed(&mut self, ctx: &mut Context<'_>, out: OutId, end: OutEnd) {
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_out_closed(&mut ws, out, end);
        self.notify_ended(ctx);
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        self.app.on_request_done(cost);
        if self.observer.is_none() {
            return;
        }
        let at = self
            .report
            .verdicts
            .iter()
            .position(|v| v.conn.serial() == cost.conn && v.status == cost.status);
        let Some(verdict) = at.map(|at| self.report.verdicts.swap_remove(at)) else {
            self.tell(WsEvent::Request(cost));
            return;
        };
        let origin = verdict.origin.as_deref();
        let event = match verdict.peer {
            Some(peer) if verdict.status == 101 => WsEvent::Opened { cost, peer, origin },
            _ => WsEvent::Refused {
                conn: cost.conn,
                at: cost.written.unwrap_or(verdict.at),
                cost: Some(cost),
                status: verdict.status,
                reason: &verdict.reason,
                origin,
            },
        };
        self.tell(event);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, data: u64) {
        // The glue's own timers are the ones its sessions hold; every other timer
        // is the application's, and its data is passed on whole.
        let index = usize::try_from(data).ok();
        let glue = index
            .and_then(|i| self.sessions.by_index.get(i))
            .and_then(Option::as_ref)
            .is_some_and(|s| s.timer == Some(timer));
        if let (true, Some(index)) = (glue, index) {
            self.glue_timer(ctx, timer, index);
        } else {
            let mut ws = WsContext {
                ctx,
                sessions: &mut self.sessions,
            };
            self.app.on_timer(&mut ws, timer, data);
        }
        self.notify_ended(ctx);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        // A refusal whose response never got written is still told.
        while let Some(at) = self.report.verdicts.iter().position(|v| v.conn == conn) {
            let verdict = self.report.verdicts.swap_remove(at);
            if verdict.status != 101 {
                self.tell(WsEvent::Refused {
                    conn: conn.serial(),
                    at: ctx.now(),
                    cost: None,
                    status: verdict.status,
                    reason: &verdict.reason,
                    origin: verdict.origin.as_deref(),
                });
            }
        }
        if self.sessions.get(conn).is_none() {
            // A plain HTTP connection: the application may hold a request on it.
            self.app.on_http_close(ctx, conn, reason);
            return;
        }
        self.sessions
            .end(ctx, conn, WsClosed::Dropped(reason), WsState::Done);
        self.notify_ended(ctx);
        if let Some(entry) = self.sessions.by_index.get_mut(conn.index())
            && entry.as_ref().is_some_and(|s| s.id == conn)
        {
            if let Some(timer) = entry.as_ref().and_then(|s| s.timer) {
                ctx.cancel_timer(timer);
            }
            *entry = None;
        }
        self.app.source_done(conn);
    }

    fn source(&self, conn: ConnId) -> Source<'_> {
        match self.sessions.get(conn).map(|s| s.state) {
            Some(WsState::Open) => self.app.source(conn),
            Some(_) => self.app.source(conn).frame_rest_only(),
            None => Source::NONE,
        }
    }

    fn source_written(&mut self, ctx: &mut Context<'_>, conn: ConnId, n: usize) {
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.source_written(&mut ws, conn, n);
        self.notify_ended(ctx);
    }

    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        // Messages first: a broadcast the application reports now was caused by
        // one of them.
        self.report_turn(ctx);
        let mut ws = WsContext {
            ctx,
            sessions: &mut self.sessions,
        };
        self.app.on_turn_end(&mut ws);
        self.notify_ended(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::actions::{Action, Actions};
    use crate::server::timer::{Expired, Timers};

    /// Remembers how each WebSocket ended, and says goodbye at shutdown.
    #[derive(Default)]
    struct Goodbye {
        closed: Vec<(ConnId, WsClosed)>,
    }

    impl WsApp for Goodbye {
        fn on_message(&mut self, _: &mut WsContext<'_, '_>, _: ConnId, _: Message<'_>) {}

        fn on_close(&mut self, _: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
            self.closed.push((conn, closed));
        }

        fn on_shutdown(&mut self, ws: &mut WsContext<'_, '_>) {
            let open: Vec<ConnId> = ws
                .sessions
                .by_index
                .iter()
                .flatten()
                .map(|s| s.id)
                .collect();
            for conn in open {
                ws.send_text(conn, "bye");
            }
        }
    }

    /// A session of `conn` in `state`, as the handshake would leave it.
    fn session(conn: ConnId, state: WsState, now: Instant) -> Session {
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        Session {
            state,
            ..Session::open(conn, peer, &WsConfig::default(), now)
        }
    }

    // The driver's part of graceful shutdown (calling `on_shutdown`, then writing
    // what is queued within the grace period) is tested with the driver; here the
    // glue's part is driven with a context of its own, and what it asks the driver
    // to do is read off the action queue.
    #[test]
    fn rfc6455_7_4_1_shutdown_sends_1001_going_away_then_closes_without_waiting() {
        let now = Instant::now();
        let open = ConnId::new_for_tests(1, 0);
        let closing = ConnId::new_for_tests(2, 1);
        let mut server = WsServer::new(WsConfig::default(), Goodbye::default());
        server.sessions.by_index = vec![
            Some(session(open, WsState::Open, now)),
            Some(session(closing, WsState::Closing, now)),
        ];
        let conns = Default::default();
        let mut timers = Default::default();
        let mut actions = crate::server::actions::Actions::default();
        let stats = ServerStats::default();
        let mut outgoing = Default::default();
        let mut ctx = Context {
            now,
            conns: &conns,
            timers: &mut timers,
            actions: &mut actions,
            stats: &stats,
            outgoing: &mut outgoing,
        };
        server.on_shutdown(&mut ctx);

        let mut goodbye = Vec::new();
        ws::write_text(&mut goodbye, "bye");
        let mut close = Vec::new();
        ws::write_close(
            &mut close,
            Some(CloseFrame {
                code: CloseCode::GOING_AWAY,
                reason: "server shutting down",
            }),
        );
        let sent: Vec<(ConnId, Vec<u8>)> = actions
            .list
            .iter()
            .filter_map(|a| match a {
                Action::Raw(conn, range) => Some((*conn, actions.data[range.clone()].to_vec())),
                _ => None,
            })
            .collect();
        // The open one: the application's goodbye, then the 1001 close frame.
        assert_eq!(sent, [(open, goodbye), (open, close)]);
        // Both TCP connections close once their output is written.
        let closes: Vec<ConnId> = actions
            .list
            .iter()
            .filter_map(|a| match a {
                Action::Close(conn) => Some(*conn),
                _ => None,
            })
            .collect();
        assert_eq!(closes, [open, closing]);
        // Only the open one's application hears of it now (the closing one's was
        // told when its close began).
        assert_eq!(server.app().closed, [(open, WsClosed::Shutdown)]);
        assert_eq!(server.stats().closed_at_shutdown, 1);
        assert!(
            !server
                .sessions
                .get(open)
                .is_some_and(|s| s.state != WsState::Done)
        );
    }

    /// What the glue asked the driver for, read off the action queue (which is
    /// emptied).
    #[derive(Debug, PartialEq, Eq)]
    enum Did {
        Sent(ConnId, Vec<u8>),
        Close(ConnId),
        Abort(ConnId),
    }

    fn did(actions: &mut Actions) -> Vec<Did> {
        let out = actions
            .list
            .drain(..)
            .filter_map(|a| match a {
                Action::Raw(conn, range) => Some(Did::Sent(conn, actions.data[range].to_vec())),
                Action::Close(conn) => Some(Did::Close(conn)),
                Action::Abort(conn) => Some(Did::Abort(conn)),
                _ => None,
            })
            .collect();
        actions.data.clear();
        out
    }

    /// Calls `f` with a context whose clock reads `now` (the driver's part,
    /// played by hand: no connection table, no socket).
    fn at<R>(
        timers: &mut Timers,
        actions: &mut Actions,
        now: Instant,
        f: impl FnOnce(&mut Context<'_>) -> R,
    ) -> R {
        let conns = Default::default();
        let stats = ServerStats::default();
        let mut outgoing = Default::default();
        let mut ctx = Context {
            now,
            conns: &conns,
            timers,
            actions,
            stats: &stats,
            outgoing: &mut outgoing,
        };
        f(&mut ctx)
    }

    /// Fires into the glue every timer due at `now`, as the loop does.
    fn fire<A: WsApp>(
        server: &mut WsServer<A>,
        timers: &mut Timers,
        actions: &mut Actions,
        now: Instant,
    ) {
        timers.begin_pass();
        while let Some(expired) = timers.pop_expired(now) {
            if let Expired::User(id, data) = expired {
                at(timers, actions, now, |ctx| server.on_timer(ctx, id, data));
            }
        }
        timers.end_pass();
    }

    /// A glue whose one WebSocket, `conn`, opened at `t0` with `config`.
    fn opened(
        config: WsConfig,
        conn: ConnId,
        t0: Instant,
        timers: &mut Timers,
    ) -> WsServer<Goodbye> {
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let mut server = WsServer::new(config.clone(), Goodbye::default());
        server.sessions.by_index = vec![Some(Session::open(conn, peer, &config, t0))];
        let mut actions = Actions::default();
        at(timers, &mut actions, t0, |ctx| {
            server.arm_keepalive(ctx, conn)
        });
        server
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn keepalive_with_a_fake_clock_pings_every_interval_and_aborts_at_ping_plus_timeout() {
        let t0 = Instant::now();
        let conn = ConnId::new_for_tests(1, 0);
        let config = WsConfig {
            ping_interval: Some(ms(100)),
            ping_timeout: ms(250),
            ..WsConfig::default()
        };
        let mut timers = Timers::default();
        let mut actions = Actions::default();
        let mut server = opened(config, conn, t0, &mut timers);
        let mut ping = Vec::new();
        ws::write_ping(&mut ping, b"");
        let mut pings_at = Vec::new();
        let mut aborted_at = None;
        for offset in 1..=1000 {
            let now = t0 + ms(offset);
            if offset == 120 {
                // The peer answers the first ping (a masked, empty pong).
                let mut pong = [0x8A, 0x80, 1, 2, 3, 4];
                at(&mut timers, &mut actions, now, |ctx| {
                    server.on_upgraded_data(ctx, conn, &mut pong)
                });
            }
            fire(&mut server, &mut timers, &mut actions, now);
            for d in did(&mut actions) {
                match d {
                    Did::Sent(c, bytes) if c == conn && bytes == ping => pings_at.push(offset),
                    Did::Abort(c) if c == conn => aborted_at = Some(offset),
                    Did::Close(c) if c == conn => {}
                    other => panic!("unexpected {other:?} at {offset} ms"),
                }
            }
            if aborted_at.is_some() {
                break;
            }
        }
        // Answered at 120: the ping at 200 is the first unanswered one, and the
        // peer is aborted exactly 250 ms after it, pings going on meanwhile.
        assert_eq!(pings_at, [100, 200, 300, 400]);
        assert_eq!(aborted_at, Some(450));
        assert_eq!(server.app().closed, [(conn, WsClosed::PingTimeout)]);
        assert_eq!(server.stats().pings_sent, 4);
        assert_eq!(server.stats().ping_timeouts, 1);
        assert_eq!(server.stats().close_timeouts, 0);
    }

    #[test]
    fn rfc6455_7_1_7_a_failed_connection_is_aborted_at_the_close_timeout_if_still_open() {
        let t0 = Instant::now();
        let conn = ConnId::new_for_tests(1, 0);
        let config = WsConfig {
            ping_interval: None,
            close_timeout: ms(300),
            ..WsConfig::default()
        };
        let mut timers = Timers::default();
        let mut actions = Actions::default();
        let mut server = opened(config, conn, t0, &mut timers);
        at(&mut timers, &mut actions, t0, |ctx| {
            let mut ws = WsContext {
                ctx,
                sessions: &mut server.sessions,
            };
            ws.fail(conn, CloseCode::POLICY_VIOLATION, "too slow");
            server.notify_ended(ctx);
        });
        let mut close = Vec::new();
        ws::write_close(
            &mut close,
            Some(CloseFrame {
                code: CloseCode::POLICY_VIOLATION,
                reason: "too slow",
            }),
        );
        // The frame, then TCP close once it is written...
        assert_eq!(
            did(&mut actions),
            [Did::Sent(conn, close), Did::Close(conn)]
        );
        assert_eq!(
            server.app().closed,
            [(conn, WsClosed::ByServer(CloseCode::POLICY_VIOLATION))]
        );
        // ... which a peer that stopped reading never lets happen: at the close
        // timeout, and not before, the connection is aborted.
        fire(&mut server, &mut timers, &mut actions, t0 + ms(299));
        assert_eq!(did(&mut actions), []);
        fire(&mut server, &mut timers, &mut actions, t0 + ms(300));
        assert_eq!(did(&mut actions), [Did::Abort(conn)]);
        fire(&mut server, &mut timers, &mut actions, t0 + ms(10_000));
        assert_eq!(did(&mut actions), []);
        assert_eq!(server.stats().close_timeouts, 1);
        assert_eq!(server.stats().closed_by_server, 1);
        assert_eq!(server.app().closed.len(), 1, "told once");
    }

    #[test]
    fn rfc6455_7_1_1_an_unanswered_close_is_aborted_at_the_close_timeout() {
        let t0 = Instant::now();
        let conn = ConnId::new_for_tests(1, 0);
        let config = WsConfig {
            ping_interval: Some(ms(100)),
            close_timeout: ms(300),
            ..WsConfig::default()
        };
        let mut timers = Timers::default();
        let mut actions = Actions::default();
        let mut server = opened(config, conn, t0, &mut timers);
        at(&mut timers, &mut actions, t0 + ms(50), |ctx| {
            let mut ws = WsContext {
                ctx,
                sessions: &mut server.sessions,
            };
            ws.close(conn, CloseCode(4000), "bye");
            server.notify_ended(ctx);
        });
        assert!(matches!(did(&mut actions)[..], [Did::Sent(..)]));
        // No ping once closing (the keepalive's timer is gone), no TCP close
        // before the peer answers or the timeout passes.
        for offset in [100, 200, 349] {
            fire(&mut server, &mut timers, &mut actions, t0 + ms(offset));
            assert_eq!(did(&mut actions), [], "at {offset} ms");
        }
        fire(&mut server, &mut timers, &mut actions, t0 + ms(350));
        assert_eq!(did(&mut actions), [Did::Abort(conn)]);
        assert_eq!(server.stats().close_timeouts, 1);
        assert_eq!(server.stats().pings_sent, 0);
        assert_eq!(
            server.app().closed,
            [(conn, WsClosed::ByServer(CloseCode(4000)))]
        );
    }

    #[test]
    fn closed_reads_as_words() {
        assert_eq!(
            WsClosed::ByPeer(Some(CloseCode::NORMAL)).to_string(),
            "closed by the peer (1000)"
        );
        assert_eq!(
            WsClosed::Shutdown.to_string(),
            "server shutting down (1001)"
        );
    }
}
