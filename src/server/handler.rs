//! How an application plugs into the loop: the [`Handler`] trait and its [`Context`].
//!
//! The loop owns every socket, buffer and timer; the application never does I/O.
//! It is called when something happens and answers by returning a [`Reply`] or by
//! asking the [`Context`] to do something. Four shapes of answer cover the patterns
//! of the notes:
//!
//! | pattern | what the handler does |
//! |---|---|
//! | request/response | fills in the response and returns [`Reply::Respond`] |
//! | long polling | returns [`Reply::Deferred`], keeps the [`ConnId`], and later (from a timer or another connection's request) calls [`Context::respond`]. No thread waits meanwhile: the connection just sits in the loop |
//! | Server-Sent Events | fills in the head and returns [`Reply::Stream`]; then [`Context::send_chunk`] per event, [`Context::end_stream`] at the end |
//! | WebSocket | answers `101 Switching Protocols` with [`Reply::Upgrade`]; from then on the peer's bytes go to [`Handler::on_upgraded_data`] and [`Context::send_raw`] writes bytes as they are |
//!
//! What the context is asked to do is queued and carried out by the loop as soon as
//! the handler returns, in the order asked. Responses on one connection always go
//! out in the order of the requests: while a request is waiting for its answer,
//! requests pipelined after it wait in the connection's buffer, unparsed.
//!
//! # Writing from the application's own buffer: [`Source`]
//!
//! [`Context::send_raw`] and [`Context::send_shared`] copy the bytes into the
//! connection's output buffer, where they wait for the socket. A broadcast to N
//! connections then holds N copies of each message. An upgraded connection can
//! instead be written *from the application's storage*: a shared, append-only log
//! of encoded frames ([`crate::patterns::frame_log::FrameLog`]) where each
//! connection is a byte cursor. Three parts make it work:
//!
//! - [`Handler::source`]: when the connection is writable, the loop asks for the
//!   bytes it has to write, as up to two slices (a ring that wraps), and how many
//!   of them finish a frame a short write cut ([`Source::frame_rest`]).
//! - [`Handler::source_written`]: after each write the loop says how many of those
//!   bytes the kernel took, so the application advances the cursor.
//! - [`Context::wake_writer`]: after appending to its log, the application asks the
//!   loop to offer the connection to its socket in this turn (deduplicated: waking
//!   a connection many times in one callback costs one entry).
//!
//! The loop writes, in one `writev` where it can: first the source's
//! `frame_rest`, then the connection's own queued output (its private frames:
//! a pong, a close frame, sent with [`Context::send_raw`]), then the rest of the
//! source. So a private frame is never written inside a log frame. No bytes are
//! copied per connection and no reference count is taken per message. Every
//! source write counts in the connection's and the server's counters
//! ([`Context::io`], [`ServerStats`]) and as activity; what the source still has
//! to write counts as queued ([`Context::queued_bytes`], the server's queued and
//! peak queued output), and the connection asks for WRITABLE events while any is
//! left, but it does not pause reading from the connection as its own backlog
//! does ([`super::Config::max_queued_output`]): the log is bounded by the
//! application, which paces or cuts off a reader that falls behind. Connections without a
//! source (the default) are written as before. Once a connection closes its
//! output ([`Context::close`]), only the source's `frame_rest` is still written,
//! so that its private output does not land inside a frame. The push hub
//! ([`crate::patterns::push`]) broadcasts this way.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ConnId;
use super::actions::{Action, Actions};
use super::conns::Slab;
use super::outgoing::{OutEnd, OutId, Outgoing};
use super::timer::{TimerId, Timers};
use crate::cost::{IoCounters, RequestCost, ServerStats};
use crate::http::{Request, Response};

/// What the handler does with a request it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The response passed to [`Handler::on_request`] is complete: send it now.
    Respond,
    /// The answer comes later, through [`Context::respond`] (or
    /// [`Context::start_stream`]) with this request's [`ConnId`]. The response
    /// passed in is ignored. A client that hangs up (end of file or reset) while
    /// its request is held is noticed at once: the connection closes and
    /// [`Handler::on_close`] says so, so a long poll can forget it (see
    /// [`super::Config::hold_after_half_close`]).
    Deferred,
    /// The response passed in is the head (and maybe a first part) of a response
    /// whose body follows in parts: [`Context::send_chunk`], then
    /// [`Context::end_stream`]. It is sent chunked to HTTP/1.1 clients and, to
    /// HTTP/1.0 clients, delimited by closing the connection. Backpressure does not
    /// stop a handler from sending parts: check [`Context::queued_bytes`] to notice
    /// a client that does not keep up. A client that hangs up is noticed at once,
    /// as for [`Reply::Deferred`] ([`Handler::on_close`]).
    Stream,
    /// The response passed in is a `101 Switching Protocols`: once it is sent, the
    /// connection no longer speaks HTTP and its bytes go to
    /// [`Handler::on_upgraded_data`]. With any other status this is treated as
    /// [`Reply::Respond`].
    Upgrade,
}

/// Why a connection closed, as told to [`Handler::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side (end of file) with nothing left to answer.
    PeerClosed,
    /// A read or write failed (connection reset, broken pipe).
    Error,
    /// The server answered a bad request and closed, as it must.
    BadRequest,
    /// The response said (or the request asked for) `Connection: close`, or a
    /// close-delimited stream ended, or the handler called [`Context::close`].
    Done,
    /// The header, body, or idle timeout passed.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

/// A request handed to the application: the parsed head, the decoded body, and the
/// connection it came on.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The connection, to answer on later or to tell apart from others.
    pub(crate) conn: ConnId,
    /// The head, borrowed from the connection's read buffer.
    pub(crate) request: Request<'a>,
    /// The whole body, decoded (chunk framing removed); empty if there was none
    /// or it was taken in parts ([`BodyMode::Parts`]).
    pub(crate) body: &'a [u8],
}

/// How a handler takes a request's body ([`Handler::on_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// Whole: the loop decodes the body into one buffer, at most
    /// [`crate::http::Limits::max_body_bytes`] (over it: 413), and hands it to
    /// [`Handler::on_request`]. For small bodies: the handler sees one
    /// complete request, and the limit bounds what a client can make the server
    /// hold.
    Whole,
    /// In parts: each piece of the body goes to [`Handler::on_body_part`] as it
    /// is decoded (chunk framing removed), with no limit but the handler's own;
    /// then [`Handler::on_request`] with an empty body once it is complete. A
    /// handler that cannot take more for now calls
    /// [`Context::pause_reading`]: the loop stops reading the connection, so a
    /// fast client cannot make the server buffer, until
    /// [`Context::resume_reading`]. For uploads: nothing holds the whole body.
    Parts,
    /// Refused before the body is read: the response filled in by
    /// [`Handler::on_head`] is sent at once with `Connection: close`, and the
    /// connection closes without reading the body (a 413 for a declared length
    /// over the limit, a 409 for an upload at the wrong offset). A client that
    /// sent `Expect: 100-continue` never sends it (RFC 9110 §10.1.1).
    Reject,
}

/// A piece of a request body taken in parts ([`Handler::on_body_part`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPart<'a> {
    /// The next bytes of the body, decoded; valid during the call only.
    Data(&'a [u8]),
    /// The body will never be complete: the client disconnected, sent a
    /// malformed chunk, stopped sending until the body timeout, or the server
    /// shut down. [`Handler::on_request`] will not be called for it. (An
    /// upload keeps or drops what it stored, as its protocol says.)
    Incomplete,
}

impl<'a> Incoming<'a> {
    /// The connection the request came on.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// The parsed head.
    pub fn request(&self) -> &Request<'a> {
        &self.request
    }

    /// The decoded body (empty without one).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// An application served by the loop.
///
/// Only [`Handler::on_request`] is required; the other callbacks matter to the
/// patterns that use them and do nothing by default.
pub trait Handler {
    /// A request is complete (head parsed, body decoded). Fill in `res` (it comes
    /// cleared: status 200, no fields, empty body) and say what to do with it.
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply;

    /// A request's head is parsed and a body follows (`Content-Length` above 0,
    /// or chunked): say how to take it. `req` has the head and no body yet; `res`
    /// comes cleared and is sent only with [`BodyMode::Reject`]. By default the
    /// body is taken whole ([`BodyMode::Whole`]), as for every request before
    /// this callback existed.
    fn on_head(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> BodyMode {
        let _ = (ctx, req, res);
        BodyMode::Whole
    }

    /// A piece of the body of a request taken in parts ([`BodyMode::Parts`]),
    /// in order; after the last one, [`Handler::on_request`], or
    /// [`BodyPart::Incomplete`] if the body cannot be completed.
    fn on_body_part(&mut self, ctx: &mut Context<'_>, conn: ConnId, part: BodyPart<'_>) {
        let _ = (ctx, conn, part);
    }

    /// Bytes arrived on a connection taken over by [`Reply::Upgrade`]. Return how
    /// many were used; the rest stay buffered and are passed again, with more, when
    /// more arrive (return 0 when a whole frame is not there yet). If the read
    /// buffer is full at its maximum ([`super::Config::max_read_buffer_bytes`]) and
    /// nothing is used, the connection is closed ([`CloseReason::Error`]).
    ///
    /// The bytes are the connection's own read buffer, lent mutably so that a
    /// protocol can transform them in place (a WebSocket unmasks payloads where they
    /// lie, [`crate::ws::Connection::receive`]) instead of copying them out first.
    /// What the handler does to the bytes it uses does not matter; bytes it leaves
    /// unused must stay as they were, as they are passed again.
    fn on_upgraded_data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        let _ = (ctx, conn);
        data.len()
    }

    /// The loop is about to wait for its first event: the place to set the timers
    /// of work that exists before any client connects (jobs restored from a file
    /// keep stepping). Called once, from [`super::Server::run`].
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// The server was asked to shut down ([`super::ServerHandle::shutdown`]): no
    /// new connection is accepted, and connections with nothing in progress are
    /// closed. Answer what is held, end streams, say goodbye on upgraded
    /// connections (a WebSocket sends a 1001 close); what is still queued after
    /// [`super::Config::shutdown_grace`] is dropped with its connection.
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// A timer set with [`Context::set_timer`] came due.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId, data: u64) {
        let _ = (ctx, timer, data);
    }

    /// A connection closed. Forget it: responses to it will be dropped.
    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        let _ = (ctx, conn, reason);
    }

    /// A request's response was fully written: here is what it cost.
    fn on_request_done(&mut self, cost: &RequestCost) {
        let _ = cost;
    }

    /// The bytes an upgraded connection writes straight from the application's
    /// storage (see [the module docs](self#writing-from-the-applications-own-buffer-source)).
    /// Asked each time the loop writes to an upgraded connection: when it is
    /// writable again, and when it was woken ([`Context::wake_writer`]) or had
    /// other output. Must be cheap; by default there is none ([`Source::NONE`]).
    /// Bytes returned stay the application's: the loop only writes them and says
    /// how many went out ([`Handler::source_written`]); the next call must start
    /// where those ended.
    fn source(&self, conn: ConnId) -> Source<'_> {
        let _ = conn;
        Source::NONE
    }

    /// The kernel took the first `n` bytes of what [`Handler::source`] returned
    /// for `conn` (called once per write that took any): advance the cursor.
    /// What the context is asked here is carried out at once.
    fn source_written(&mut self, ctx: &mut Context<'_>, conn: ConnId, n: usize) {
        let _ = (ctx, conn, n);
    }

    /// An outgoing connection asked for with [`Context::connect`] is up: what was
    /// sent on it meanwhile is being written.
    fn on_out_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        let _ = (ctx, out);
    }

    /// Bytes arrived on an outgoing connection, as read: the application keeps
    /// what it cannot use yet (a reply cut in two) in its own buffer.
    fn on_out_data(&mut self, ctx: &mut Context<'_>, out: OutId, data: &[u8]) {
        let _ = (ctx, out, data);
    }

    /// An outgoing connection ended, or never connected: called once per
    /// [`Context::connect`], whatever the reason ([`OutEnd`]), including a close
    /// the application asked for.
    fn on_out_closed(&mut self, ctx: &mut Context<'_>, out: OutId, end: OutEnd) {
        let _ = (ctx, out, end);
    }

    /// One turn of the loop is over: every connection with work was driven, and
    /// everything queued during the turn was written as far as each socket took it
    /// (what a full socket did not take stays queued: [`Context::queued_bytes`]).
    /// [`Context::now`] is the time at this point, not at the start of the turn.
    /// Called once per turn, so it must be cheap; a push hub uses it to time how
    /// long a broadcast took to reach every client.
    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }
}

/// The bytes a connection's [`Handler::source`] has to write: up to two slices,
/// written in order (a ring buffer's two halves; either may be empty), and how
/// many of them, from the start, finish a frame that a short write cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Source<'a> {
    /// The first bytes to write.
    first: &'a [u8],
    /// The bytes after them.
    second: &'a [u8],
    /// How many bytes from the start finish a frame already started.
    frame_rest: usize,
}

impl<'a> Source<'a> {
    /// Nothing to write.
    pub const NONE: Source<'static> = Source {
        first: &[],
        second: &[],
        frame_rest: 0,
    };

    /// `first` then `second` to write; the first `frame_rest` bytes (at most all of
    /// them) finish a frame that was cut, and must go before any private output
    /// of the connection. `frame_rest` is 0 when the cursor is between frames.
    pub fn new(first: &'a [u8], second: &'a [u8], frame_rest: usize) -> Source<'a> {
        let frame_rest = frame_rest.min(first.len().saturating_add(second.len()));
        Source {
            first,
            second,
            frame_rest,
        }
    }

    /// The two slices, in order.
    pub fn slices(&self) -> (&'a [u8], &'a [u8]) {
        (self.first, self.second)
    }

    /// The bytes that finish a frame already started (0 at a boundary).
    pub fn frame_rest(&self) -> usize {
        self.frame_rest
    }

    /// All the bytes to write.
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty() && self.second.is_empty()
    }

    /// Only the bytes that finish the frame already started: what a connection
    /// that sent its close frame, or is about to, may still write.
    pub fn frame_rest_only(self) -> Source<'a> {
        self.take(self.frame_rest)
    }

    /// The first `n` bytes at most.
    pub fn take(self, n: usize) -> Source<'a> {
        let in_first = n.min(self.first.len());
        let in_second = (n - in_first).min(self.second.len());
        Source {
            first: self.first.get(..in_first).unwrap_or_default(),
            second: self.second.get(..in_second).unwrap_or_default(),
            frame_rest: self.frame_rest.min(n),
        }
    }

    /// What is left after the first `n` bytes.
    pub fn skip(self, n: usize) -> Source<'a> {
        let in_first = n.min(self.first.len());
        let in_second = (n - in_first).min(self.second.len());
        match self.first.get(in_first..) {
            Some(rest) if !rest.is_empty() => Source {
                first: rest,
                second: self.second,
                frame_rest: self.frame_rest.saturating_sub(n),
            },
            _ => Source {
                first: self.second.get(in_second..).unwrap_or_default(),
                second: &[],
                frame_rest: self.frame_rest.saturating_sub(n),
            },
        }
    }
}

/// The handler's view of the loop: the time, the timers, other connections, and a
/// way to send on any connection.
pub struct Context<'a> {
    /// The loop's current time, taken once per turn of the loop.
    pub(crate) now: Instant,
    /// The connections, read-only: for queued-output sizes and liveness.
    pub(crate) conns: &'a Slab,
    /// The deadline heap, for application timers.
    pub(crate) timers: &'a mut Timers,
    /// Where requested actions are queued.
    pub(crate) actions: &'a mut Actions,
    /// The server's totals so far.
    pub(crate) stats: &'a ServerStats,
    /// The connections the loop opened for the application.
    pub(crate) outgoing: &'a mut Outgoing,
}

impl Context<'_> {
    /// The loop's time: when this turn of the loop began.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Answers a request the handler deferred. Ignored if the connection has closed
    /// or is not waiting for an answer.
    pub fn respond(&mut self, conn: ConnId, response: Response) {
        self.actions.list.push(Action::Respond(conn, response));
    }

    /// Answers a deferred request with a streaming response (see [`Reply::Stream`]).
    pub fn start_stream(&mut self, conn: ConnId, head: Response) {
        self.actions.list.push(Action::StartStream(conn, head));
    }

    /// Sends one part of a streaming response (one chunk). Empty parts are skipped.
    /// Ignored unless the connection is streaming.
    pub fn send_chunk(&mut self, conn: ConnId, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let range = self.actions.push_bytes(data);
        self.actions.list.push(Action::Chunk(conn, range));
        self.actions.add_pending(conn, data.len());
    }

    /// Ends a streaming response. The connection then serves its next request (or
    /// closes, for an HTTP/1.0 client or a `Connection: close` request).
    pub fn end_stream(&mut self, conn: ConnId) {
        self.actions.list.push(Action::EndStream(conn));
    }

    /// Writes bytes as they are on a connection taken over by [`Reply::Upgrade`].
    /// Ignored on other connections.
    pub fn send_raw(&mut self, conn: ConnId, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let range = self.actions.push_bytes(data);
        self.actions.list.push(Action::Raw(conn, range));
        self.actions.add_pending(conn, data.len());
    }

    /// Writes shared bytes as they are on a connection taken over by
    /// [`Reply::Upgrade`], like [`Context::send_raw`] but without copying them into
    /// the action queue: cloning [`Bytes`] is a reference count, so one frame
    /// encoded once can be queued for every client of a broadcast. (Each client's
    /// output buffer still gets its own copy when the action is carried out: that
    /// is where the bytes wait for the socket.) Ignored on other connections.
    /// The WebSocket glue's `WsContext::send_shared` is this operation.
    pub fn send_shared(&mut self, conn: ConnId, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.actions.add_pending(conn, data.len());
        self.actions.list.push(Action::Shared(conn, data));
    }

    /// Closes a connection once what is queued for it has been written. A peer
    /// that stops reading keeps that from ever happening: the connection then
    /// stays until the idle timeout ([`super::Config::idle_timeout`]), unless
    /// [`Context::abort`] cuts it short.
    pub fn close(&mut self, conn: ConnId) {
        self.actions.list.push(Action::Close(conn));
    }

    /// Closes a connection now, dropping whatever is queued for it and not yet
    /// written. [`Handler::on_close`] follows with [`CloseReason::Done`].
    ///
    /// This is the bound on a close that waits for its peer. A WebSocket server
    /// that sent its close frame must not wait for ever: RFC 6455 §7.1.1 has it
    /// close TCP once the close handshake is done, and §7.1.7 has it close the
    /// connection when it fails it, yet neither can happen through
    /// [`Context::close`] while a peer that stopped reading leaves the close frame
    /// unwritten. The glue's close timeout aborts such a connection
    /// ([`crate::patterns::websocket::WsConfig::close_timeout`]). The socket is
    /// closed as the kernel closes any: what it had already accepted is still
    /// sent, then FIN (or a reset instead, if bytes from the peer were left
    /// unread).
    ///
    /// A connection that already wrote everything and sent FIN (it lingers,
    /// reading what the peer still sends, see [`super::Config::linger_timeout`])
    /// is left to end on its own: its close is under way and bounded already.
    /// Ignored if the connection has closed.
    pub fn abort(&mut self, conn: ConnId) {
        self.actions.list.push(Action::Abort(conn));
    }

    /// Stops reading from a connection: what arrived and is buffered stays
    /// there, unparsed and unhandled, and the socket's read interest goes off,
    /// so that the kernel's receive buffer fills and TCP's flow control makes
    /// the peer wait. Writing goes on. This is how an application paces a
    /// sender it cannot take more from now (a broadcast log that is full),
    /// instead of buffering without bound. [`Context::resume_reading`] undoes
    /// it. Ignored if the connection has closed.
    ///
    /// A paused connection is not read, so a peer that closes meanwhile is
    /// noticed only on resuming (or when a write to it fails); its timers go
    /// on as usual.
    pub fn pause_reading(&mut self, conn: ConnId) {
        self.actions.list.push(Action::PauseReading(conn));
    }

    /// Reads from a connection paused with [`Context::pause_reading`] again:
    /// what is buffered is handled first, in this turn, then the socket is read.
    /// Ignored if the connection is not paused or has closed.
    pub fn resume_reading(&mut self, conn: ConnId) {
        self.actions.list.push(Action::ResumeReading(conn));
    }

    /// Calls [`Handler::on_timer`] with `data` after `after`.
    pub fn set_timer(&mut self, after: Duration, data: u64) -> TimerId {
        self.timers.set(self.now + after, data)
    }

    /// Calls [`Handler::on_timer`] with `data` at `at`.
    pub fn set_timer_at(&mut self, at: Instant, data: u64) -> TimerId {
        self.timers.set(at, data)
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.timers.cancel(timer)
    }

    /// Whether a timer is still to fire.
    pub fn timer_pending(&self, timer: TimerId) -> bool {
        self.timers.is_pending(timer)
    }

    /// Whether a connection is still open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some()
    }

    /// The peer's address; `None` if the connection has closed.
    pub fn peer_addr(&self, conn: ConnId) -> Option<std::net::SocketAddr> {
        self.conns.get(conn).map(|c| c.h1.peer())
    }

    /// Bytes produced for a connection but not yet written to it (a slow reader's
    /// backlog): what was queued before this callback, plus what this callback
    /// asked to send on it so far, plus what its [`Handler::source`] still had
    /// to write when the loop last wrote to it (bytes appended to the
    /// application's log since are the application's to count); `None` if it has
    /// closed.
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.conns
            .get(conn)
            .map(|c| c.h1.queued() + c.h1.source_pending() + self.actions.pending(conn.index()))
    }

    /// Offers the connection to its socket in this turn: the loop asks its
    /// [`Handler::source`] for bytes and writes them (or, if the socket is full,
    /// waits for it to be writable). Call it after appending to the log a
    /// connection reads. Waking a connection again before the callback returns
    /// costs nothing: each is woken once. Ignored if the connection has closed.
    pub fn wake_writer(&mut self, conn: ConnId) {
        self.actions.wake(conn);
    }

    /// What the connection has cost so far in system calls and bytes; `None` if it
    /// has closed. Read it before and after to charge one message.
    pub fn io(&self, conn: ConnId) -> Option<IoCounters> {
        self.conns.get(conn).map(|c| c.h1.io())
    }

    /// The server's totals, as of the start of this callback.
    pub fn stats(&self) -> &ServerStats {
        self.stats
    }

    /// Opens a TCP connection to `addr` (see [`super::outgoing`]): the loop
    /// connects without blocking, then calls [`Handler::on_out_connected`], each
    /// read's bytes go to [`Handler::on_out_data`], and the end, whatever it is,
    /// to [`Handler::on_out_closed`]. What is sent before it is up waits for it.
    /// The blocking servers ([`super::blocking`]) have no loop to do this: there
    /// the connection is never started.
    pub fn connect(&mut self, addr: std::net::SocketAddr) -> OutId {
        self.outgoing.ask(addr)
    }

    /// Queues bytes on an outgoing connection; `false` if it has ended or is
    /// closing. They are written in this turn, as far as the socket takes them.
    pub fn send_out(&mut self, out: OutId, data: &[u8]) -> bool {
        self.outgoing.send(out, data)
    }

    /// Closes an outgoing connection once what is queued on it is written;
    /// [`Handler::on_out_closed`] follows with [`OutEnd::Closed`].
    pub fn close_out(&mut self, out: OutId) {
        self.outgoing.close(out);
    }

    /// Closes an outgoing connection now, dropping what is queued on it and
    /// not yet written (a peer that stopped reading would keep
    /// [`Context::close_out`] from ever finishing); [`Handler::on_out_closed`]
    /// follows with [`OutEnd::Closed`].
    pub fn abort_out(&mut self, out: OutId) {
        self.outgoing.abort(out);
    }

    /// Stops reading an outgoing connection: what its peer sends waits in the
    /// kernel, and TCP's flow control makes the peer wait (Redis then holds the
    /// messages in its client output buffer, up to its own limit). Writing goes
    /// on. An end of file is noticed only on resuming.
    pub fn pause_out(&mut self, out: OutId) {
        self.outgoing.set_paused(out, true);
    }

    /// Reads an outgoing connection paused with [`Context::pause_out`] again.
    pub fn resume_out(&mut self, out: OutId) {
        self.outgoing.set_paused(out, false);
    }

    /// Whether an outgoing connection is connected (not still connecting, not
    /// ended).
    pub fn is_out_connected(&self, out: OutId) -> bool {
        self.outgoing
            .get(out)
            .is_some_and(|c| c.state == super::outgoing::OutState::Open)
    }

    /// Bytes queued on an outgoing connection and not yet written; `None` if it
    /// has ended.
    pub fn out_queued(&self, out: OutId) -> Option<usize> {
        self.outgoing.get(out).map(|c| c.queued())
    }

    /// What an outgoing connection has cost so far; `None` if it has ended.
    pub fn out_io(&self, out: OutId) -> Option<IoCounters> {
        self.outgoing.get(out).map(|c| c.io)
    }
}
