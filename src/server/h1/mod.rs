//! One HTTP/1.1 connection as a state machine with no socket inside (sans-I/O).
//!
//! The parser in [`crate::http`] turns bytes into a request. A *connection* needs
//! more: which request is being answered, whether later ones wait behind it, when
//! it may time out, when to close and how. [`H1Conn`] holds all of that and
//! nothing else. It is fed bytes ([`H1Conn::read_space`], [`H1Conn::on_read`]),
//! the time, and the handler's answers ([`H1Conn::answer`], [`H1Conn::respond`],
//! [`H1Conn::send_chunk`], ...); it says what to write ([`H1Conn::output`]), which
//! deadline comes next and whether to close ([`H1Conn::settle`]). The event loop
//! ([`super::event_loop`]) does the system calls; this type decides. So every
//! transition below is a plain unit test with a fake clock (`tests.rs`),
//! and the TCP tests are the end-to-end proof. (hyper splits its HTTP/1 code the
//! same way: `proto::h1::Conn` under a dispatcher.)
//!
//! # Phases
//!
//! ```text
//!            ┌──────────────────────── keep-alive ───────────────────────┐
//!            v                                                           │
//!  accept -> Head --(head with body)--> Body --(body done)--> handler ---┤
//!             │                                                 │ Deferred -> Waiting --respond--┤
//!             │                                                 │ Stream   -> Streaming --end----┤
//!             │                                                 │ Upgrade  -> Upgraded
//!             │                                                 └ close    -> Closing
//!             └── bad input / timeout -> Closing -> (output written, FIN sent) -> Lingering -> closed
//! ```
//!
//! - **Head**: reading a request head. Requests pipelined behind one being answered
//!   wait in the read buffer, unparsed, until it is answered: responses go out in
//!   the order of the requests (RFC 9112 §9.3.2).
//! - **Body**: the head is parsed; decoding the body behind it (Content-Length or
//!   chunked). `Expect: 100-continue` gets its `100 Continue` here (RFC 9110
//!   §10.1.1). The head stays at the front of the buffer (the parsed request
//!   points into it); decoded body bytes are removed from behind it.
//! - **Waiting**: the handler holds the request ([`super::Reply::Deferred`]), as a
//!   long poll does. **Streaming**: the response goes out in parts
//!   ([`super::Reply::Stream`]). In both, the client's end of file means it is
//!   gone: the connection closes at once, unless
//!   [`Config::hold_after_half_close`] says otherwise.
//! - **Upgraded**: after a `101`, the bytes belong to the handler.
//! - **Closing**: a last response is queued; once written, FIN is sent and the
//!   connection **lingers**: it reads and discards what the client still sends
//!   until the client closes too or [`Config::linger_timeout`] passes. Closing a
//!   socket with unread input makes the kernel send a reset, which can destroy the
//!   response before the client reads it (RFC 9112 §9.6). A handler that cannot
//!   wait for a peer that stopped reading aborts instead ([`H1Conn::abort`]):
//!   closed at once, the queue dropped, from any phase but Lingering.
//!
//! # Deadlines
//!
//! | phase | deadline | when it passes |
//! |---|---|---|
//! | Head, nothing received yet on a new connection | accepted + `header_timeout` | closed quietly |
//! | Head, part of a head received | its first byte + `header_timeout` | 408, then close |
//! | Head between requests, Closing | last activity + `idle_timeout` | closed quietly |
//! | Body | last body byte + `body_timeout` | 408, then close |
//! | Lingering | FIN + `linger_timeout` | closed |
//! | any phase, idle and holding buffers | last activity + `idle_release` | buffers given back |
//! | any phase, after shutdown was asked | shutdown + `shutdown_grace` | closed |
//!
//! # Backpressure
//!
//! A client can send requests without reading the responses. Once more than
//! [`Config::max_queued_output`] bytes (or [`MAX_UNWRITTEN_RESPONSES`] responses)
//! wait to be written, the connection is *backlogged*: it is neither read nor
//! parsed until the client has read enough. Memory per connection stays bounded by
//! that bound plus the read buffer's maximum (and a body up to its limit).

mod time;

use std::net::SocketAddr;
use std::time::Instant;

use super::config::Config;
use super::handler::{BodyMode, CloseReason, Reply};
use super::input::Input;
use super::ledger::{Ledger, ReadCall};
use crate::cost::{IoCounters, Label, RequestCost};
use crate::http::date::HttpDate;
use crate::http::response::{CONTINUE, Encoding, encode_chunk, encode_last_chunk};
use crate::http::{
    BodyDecoder, Framing, HttpError, Limits, Request, RequestParser, Response, Status, Version,
};

/// Most responses queued on one connection and not yet written; past it, the
/// connection counts as backlogged whatever the bytes.
pub(crate) const MAX_UNWRITTEN_RESPONSES: usize = 1024;
/// A decoded body buffer bigger than this is freed after its request instead of
/// being kept for the next one.
const BODY_KEEP_BYTES: usize = 64 * 1024;
/// An output buffer bigger than this is freed once it has been written out.
const OUTPUT_KEEP_BYTES: usize = 256 * 1024;

/// Where a connection is in its exchange; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a request head (or more of one).
    Head,
    /// The head is parsed; decoding the body behind it.
    Body,
    /// The handler deferred its answer; later requests wait in the buffer.
    Waiting,
    /// A response is being streamed in parts.
    Streaming,
    /// After a `101`: bytes belong to the handler.
    Upgraded,
    /// A last response is queued; FIN once it is written.
    Closing,
    /// FIN sent: reading and discarding until the peer closes too.
    Lingering,
}

/// What the request being answered needs remembered once its head is consumed.
#[derive(Debug, Clone, Copy)]
struct RequestMeta {
    /// Length of its head, which stays at the front of the read buffer until the
    /// request is dispatched.
    head_len: usize,
    /// Its version: chunked or close-delimited streams, `keep-alive` announced.
    version: Version,
    /// It was HEAD: the response gets no body.
    head_only: bool,
    /// The connection may be kept after the response.
    keep_alive: bool,
    /// The streaming response to it is chunked (else delimited by close).
    chunked: bool,
    /// Where its response starts in the output stream: a `100 Continue` sent
    /// before the handler ran counts as part of it.
    out_start: u64,
}

impl RequestMeta {
    const NONE: RequestMeta = RequestMeta {
        head_len: 0,
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
        chunked: false,
        out_start: 0,
    };
}

/// What the connection can do next with what it has; see [`H1Conn::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing until more bytes arrive, the handler answers, output drains or a
    /// deadline passes.
    Idle,
    /// Stopped because too much output is queued (backpressure).
    Backlogged,
    /// A complete request waits for the handler: [`H1Conn::request`] gives it,
    /// [`H1Conn::answer`] takes the handler's reply.
    Request,
    /// Bytes on an upgraded connection wait for the handler:
    /// [`H1Conn::take_input`], then [`H1Conn::return_input`].
    Upgraded,
    /// A head with a body is parsed: the handler says how to take the body
    /// ([`H1Conn::request`] gives the head, [`H1Conn::choose_body`] takes the
    /// answer).
    Head,
    /// Decoded body bytes of a request taken in parts wait for the handler:
    /// [`H1Conn::body_part`], then [`H1Conn::body_part_taken`].
    BodyPart,
}

/// Where a body taken in parts is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parts {
    /// No body is being taken in parts.
    No,
    /// Being taken: pieces go to the handler as they are decoded.
    Open,
    /// Complete: the last piece (if any) is handed out, then the request.
    Done,
    /// It cannot complete (rejected, timed out): the handler is yet to be told.
    Aborted,
}

/// The framing of a body whose head the handler has not answered yet
/// ([`Step::Head`]).
#[derive(Debug, Clone, Copy)]
struct PendingBody {
    framing: Framing,
    expects_continue: bool,
}

/// What the driver must do after driving a connection; see [`H1Conn::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Close the connection now, for this reason.
    pub(crate) close: Option<CloseReason>,
    /// Send FIN (`shutdown(Write)`) now: the connection lingers, and bytes may be
    /// waiting to be discarded, so read it again.
    pub(crate) send_fin: bool,
    /// Whether reading makes sense now (poll interest READABLE).
    pub(crate) read: bool,
    /// Whether output is queued (poll interest WRITABLE).
    pub(crate) write: bool,
    /// When to call [`H1Conn::on_deadline`] next.
    pub(crate) deadline: Option<Instant>,
    /// What happened since the last settle, for the server's totals.
    pub(crate) tally: Tally,
}

/// Events the server counts in its totals, collected since the last
/// [`H1Conn::settle`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Request heads parsed.
    pub(crate) heads: u64,
    /// The status of the error response the connection itself sent, if any.
    pub(crate) error_status: Option<u16>,
    /// A timeout passed (408 sent, or closed quietly).
    pub(crate) timed_out: bool,
    /// The connection just became backlogged and stopped being read.
    pub(crate) paused: bool,
}

/// What a `write()` call did, for [`H1Conn::on_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteCall {
    /// It wrote this many bytes.
    Wrote(usize),
    /// The socket's buffer is full.
    WouldBlock,
}

/// One HTTP/1.1 connection's state; see the module docs.
#[derive(Debug)]
pub(crate) struct H1Conn {
    /// The peer's address, for the handler.
    peer: SocketAddr,
    /// Bytes received and not consumed yet.
    input: Input,
    /// The head parser; it remembers how far it searched across reads.
    parser: RequestParser,
    /// The body decoder while in [`Phase::Body`].
    decoder: Option<BodyDecoder>,
    /// The decoded body of the request in progress; reused between requests.
    body: Vec<u8>,
    /// Bytes to write: `output[out_pos..]` is still queued.
    output: Vec<u8>,
    /// How much of `output` has been written.
    out_pos: usize,
    /// Bytes ever appended to `output`: positions in the output stream.
    out_total: u64,
    /// Bytes ever written.
    written_total: u64,
    /// Where the connection is in its exchange.
    phase: Phase,
    /// The request being answered.
    meta: RequestMeta,
    /// The peer closed its sending side (a read returned 0).
    read_closed: bool,
    /// Not read because queued output passed the bound.
    paused: bool,
    /// Not read because the handler asked ([`super::Context::pause_reading`]):
    /// buffered bytes wait unparsed until it resumes the connection.
    app_paused: bool,
    /// A parsed head's body framing, until the handler says how to take it.
    pending_body: Option<PendingBody>,
    /// The body being taken in parts, if one is.
    parts: Parts,
    /// What broke a body taken in parts, kept until the bytes decoded before it
    /// are handed out.
    parts_error: Option<HttpError>,
    /// Set when the connection must close at once, with why.
    close_now: Option<CloseReason>,
    /// Why it will close once its last response is written.
    close_reason: CloseReason,
    /// The server is shutting down: no more requests are served.
    shutting_down: Option<Instant>,
    /// When it was accepted.
    accepted: Instant,
    /// The last time bytes moved either way (idle timeout, buffer release).
    last_activity: Instant,
    /// The last time body bytes arrived (body timeout).
    body_progress: Instant,
    /// When FIN was sent.
    linger_since: Instant,
    /// Requests whose head was parsed on this connection.
    requests: u64,
    /// System calls and bytes, for [`super::Context::io`].
    io: IoCounters,
    /// The connection was upgraded: the handler's source may hold the rest of
    /// a frame it started.
    upgraded: bool,
    /// What the handler's source (`Handler::source`) still had to write when
    /// the driver last wrote: output queued outside this connection.
    source_pending: usize,
    /// Events for the server's totals since the last settle.
    tally: Tally,
    /// Which request each call and byte is charged to.
    ledger: Ledger,
}

impl H1Conn {
    /// A connection numbered `serial`, from `peer`, accepted at `now`.
    pub(crate) fn new(serial: u64, peer: SocketAddr, limits: Limits, now: Instant) -> H1Conn {
        H1Conn {
            peer,
            input: Input::default(),
            parser: RequestParser::new(limits),
            decoder: None,
            body: Vec::new(),
            output: Vec::new(),
            out_pos: 0,
            out_total: 0,
            written_total: 0,
            phase: Phase::Head,
            meta: RequestMeta::NONE,
            read_closed: false,
            paused: false,
            app_paused: false,
            pending_body: None,
            parts: Parts::No,
            parts_error: None,
            close_now: None,
            close_reason: CloseReason::PeerClosed,
            shutting_down: None,
            accepted: now,
            last_activity: now,
            body_progress: now,
            linger_since: now,
            requests: 0,
            io: IoCounters::default(),
            upgraded: false,
            source_pending: 0,
            tally: Tally::default(),
            ledger: Ledger::new(serial, now),
        }
    }

    // ----- what the handler and the driver read -----

    /// The peer's address.
    #[inline]
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// System calls and bytes so far.
    #[inline]
    pub(crate) fn io(&self) -> IoCounters {
        self.io
    }

    /// Bytes queued for writing.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        self.output.len().saturating_sub(self.out_pos)
    }

    /// The bytes to write next.
    #[inline]
    pub(crate) fn output(&self) -> &[u8] {
        self.output.get(self.out_pos..).unwrap_or_default()
    }

    /// Bytes of storage held in buffers (read, body, output, cost records).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.input.capacity()
            + self.body.capacity()
            + self.output.capacity()
            + self.ledger.capacity()
    }

    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the client is behind on reading; see the module docs.
    #[inline]
    pub(crate) fn backlogged(&self, config: &Config) -> bool {
        self.queued() > config.max_queued_output
            || self.ledger.unwritten() >= MAX_UNWRITTEN_RESPONSES
    }

    /// Whether reading now makes sense: not after end of file or while closing;
    /// not while backlogged (except when nothing is parsed anyway: a held request
    /// or a stream must notice its client leaving); not with a full buffer.
    #[inline]
    pub(crate) fn wants_read(&self, config: &Config, max_input: usize) -> bool {
        let parses = !matches!(
            self.phase,
            Phase::Waiting | Phase::Streaming | Phase::Lingering
        );
        !(self.read_closed || self.app_paused)
            && self.close_now.is_none()
            && self.phase != Phase::Closing
            && !(parses && self.backlogged(config))
            && !self.input.is_full(max_input)
    }

    // ----- bytes in -----

    /// Room to read into (growing the buffer up to `max`), or `None` if the buffer
    /// is full. While lingering, what was read before is dropped first.
    #[inline]
    pub(crate) fn read_space(&mut self, initial: usize, max: usize) -> Option<&mut [u8]> {
        if self.phase == Phase::Lingering {
            self.input.clear();
        }
        if self.input.make_room(initial.max(1), max) {
            Some(self.input.spare())
        } else {
            None
        }
    }

    /// A `read()` call returned: data (`n` bytes put in [`H1Conn::read_space`]),
    /// `WouldBlock`, or end of file (`Ended`).
    #[inline]
    pub(crate) fn on_read(&mut self, call: ReadCall, now: Instant) {
        self.io.read_calls += 1;
        let lingering = self.phase == Phase::Lingering;
        self.ledger.read(call, now, lingering);
        match call {
            ReadCall::Data(n) => {
                self.input.filled(n);
                self.io.bytes_in += n as u64;
                self.last_activity = now;
            }
            ReadCall::Ended => self.read_closed = true,
            ReadCall::WouldBlock => {}
        }
    }

    /// Lends the connection a read buffer (it keeps its own if it has one).
    pub(crate) fn lend_read_buffer(&mut self, buf: Vec<u8>) {
        self.input.give_storage(buf);
    }

    /// Gives back the read buffer if every byte in it is consumed.
    pub(crate) fn return_read_buffer(&mut self) -> Option<Vec<u8>> {
        self.input.take_storage()
    }

    /// Whether it holds a read buffer.
    pub(crate) fn has_read_buffer(&self) -> bool {
        self.input.has_storage()
    }

    // ----- parsing -----

    /// Parses what is buffered as far as the phase allows, and says what is next.
    pub(crate) fn step(&mut self, config: &Config, date: &HttpDate, now: Instant) -> Step {
        loop {
            if self.app_paused && matches!(self.phase, Phase::Head | Phase::Body | Phase::Upgraded)
            {
                // The handler takes nothing more now: what is buffered waits.
                return Step::Idle;
            }
            match self.phase {
                Phase::Head => {
                    if self.input.is_empty() || self.close_now.is_some() {
                        return Step::Idle;
                    }
                    if self.backlogged(config) {
                        return Step::Backlogged;
                    }
                    if self.shutting_down.is_some() {
                        // No new request is served during shutdown.
                        self.close_now = Some(CloseReason::Shutdown);
                        return Step::Idle;
                    }
                    self.ledger.start_from_buffer();
                    match self.parser.parse(self.input.data()) {
                        Ok(Status::Partial) => return Step::Idle,
                        Ok(Status::Complete(req)) => {
                            let facts = HeadFacts::of(&req);
                            if let Some(step) = self.head_parsed(facts, now) {
                                return step;
                            }
                        }
                        Err(e) => self.reject_error(&e, date),
                    }
                }
                Phase::Body if self.pending_body.is_some() => return Step::Head,
                Phase::Body if self.parts != Parts::No => {
                    if let Some(step) = self.step_parts(config, date, now) {
                        return step;
                    }
                }
                Phase::Body => match self.decode_body(config, now) {
                    Err(e) => self.reject_error(&e, date),
                    Ok(true) => {
                        self.decoder = None;
                        self.ledger.body_done(now, self.body.len());
                        return Step::Request;
                    }
                    Ok(false) => return Step::Idle,
                },
                Phase::Upgraded => {
                    if self.input.is_empty() || self.close_now.is_some() {
                        return Step::Idle;
                    }
                    if self.backlogged(config) {
                        return Step::Backlogged;
                    }
                    return Step::Upgraded;
                }
                Phase::Waiting | Phase::Streaming | Phase::Closing => return Step::Idle,
                Phase::Lingering => {
                    self.input.clear();
                    return Step::Idle;
                }
            }
        }
    }

    /// A head is complete: record it, then ask for the handler or start on the
    /// body. `None` to keep stepping (the request was rejected).
    fn head_parsed(&mut self, facts: HeadFacts, now: Instant) -> Option<Step> {
        self.requests += 1;
        self.tally.heads += 1;
        self.ledger.head_parsed(now, facts.head_len, facts.label);
        self.meta = RequestMeta {
            head_len: facts.head_len,
            version: facts.version,
            head_only: facts.head_only,
            keep_alive: facts.keep_alive,
            chunked: false,
            out_start: self.out_total,
        };
        match facts.framing {
            Framing::None | Framing::Length(0) => {
                self.ledger.body_done(now, 0);
                Some(Step::Request)
            }
            framing => {
                // The handler says how to take the body first (`Step::Head`).
                self.pending_body = Some(PendingBody {
                    framing,
                    expects_continue: facts.expects_continue,
                });
                self.phase = Phase::Body;
                self.body_progress = now;
                Some(Step::Head)
            }
        }
    }

    /// The handler said how to take the body of the head of [`Step::Head`]
    /// (`res`: its refusal, for [`BodyMode::Reject`]).
    pub(crate) fn choose_body(
        &mut self,
        mode: BodyMode,
        res: &Response,
        config: &Config,
        date: &HttpDate,
        now: Instant,
    ) {
        let Some(pending) = self.pending_body.take() else {
            return;
        };
        let limits = match mode {
            BodyMode::Reject => {
                // Answered now, and the body is never read: the connection closes
                // once the answer is written (what arrived of the body is dropped,
                // as are later requests).
                self.meta.keep_alive = false;
                self.answer(Reply::Respond, res, date, now);
                self.input.clear();
                return;
            }
            BodyMode::Whole => config.limits,
            // The handler bounds what it keeps; the body itself may be as large
            // as its framing says.
            BodyMode::Parts => Limits {
                max_body_bytes: u64::MAX,
                ..config.limits
            },
        };
        match BodyDecoder::new(pending.framing, &limits) {
            // A declared length over the limit: 413 at once, and no 100 Continue.
            Err(e) => self.reject_error(&e, date),
            Ok(decoder) => {
                self.decoder = Some(decoder);
                self.body_progress = now;
                if mode == BodyMode::Parts {
                    self.parts = Parts::Open;
                }
                // RFC 9110 §10.1.1: a client that sent `Expect: 100-continue`
                // waits for this before sending the body. If some of the body is
                // already here, the client did not wait, and 100 is not needed.
                if pending.expects_continue && self.input.len() == self.meta.head_len {
                    self.push_output(CONTINUE);
                }
            }
        }
    }

    /// A step of a body taken in parts: hand out what is decoded, decode more,
    /// or finish. `None` to keep stepping (the request was rejected).
    fn step_parts(&mut self, config: &Config, date: &HttpDate, now: Instant) -> Option<Step> {
        if !self.body.is_empty() {
            return Some(Step::BodyPart);
        }
        if let Some(e) = self.parts_error.take() {
            self.reject_error(&e, date);
            return None;
        }
        if self.parts == Parts::Done {
            let total = self.decoder.take().map_or(0, |d| d.decoded_len());
            self.ledger
                .body_done(now, usize::try_from(total).unwrap_or(usize::MAX));
            self.parts = Parts::No;
            return Some(Step::Request);
        }
        match self.decode_body(config, now) {
            // What was decoded before the error goes out first: it is body.
            Err(e) if !self.body.is_empty() => {
                self.parts_error = Some(e);
                Some(Step::BodyPart)
            }
            Err(e) => {
                self.reject_error(&e, date);
                None
            }
            Ok(done) => {
                if done {
                    self.parts = Parts::Done;
                }
                if !self.body.is_empty() {
                    Some(Step::BodyPart)
                } else if done {
                    self.step_parts(config, date, now)
                } else {
                    Some(Step::Idle)
                }
            }
        }
    }

    /// The decoded body bytes of [`Step::BodyPart`].
    pub(crate) fn body_part(&self) -> &[u8] {
        &self.body
    }

    /// The handler took the bytes of [`Step::BodyPart`].
    pub(crate) fn body_part_taken(&mut self) {
        self.body.clear();
        if self.body.capacity() > BODY_KEEP_BYTES {
            self.body = Vec::new();
        }
    }

    /// Whether a body taken in parts will not complete and the handler has not
    /// been told: once `true`, it is told ([`crate::server::BodyPart::Incomplete`]).
    /// `closing`: the connection is closing now, so a body still open never
    /// completes.
    pub(crate) fn take_incomplete_parts(&mut self, closing: bool) -> bool {
        let incomplete = match self.parts {
            Parts::Aborted => true,
            Parts::Open | Parts::Done => closing,
            Parts::No => false,
        };
        if incomplete {
            self.parts = Parts::No;
        }
        incomplete
    }

    /// Decodes buffered body bytes: `Ok(true)` once the body is complete.
    fn decode_body(&mut self, config: &Config, now: Instant) -> Result<bool, HttpError> {
        let head_len = self.meta.head_len;
        let max_body = config.limits.max_body_bytes;
        let mut used = 0;
        let mut outcome = Ok(false);
        if let Some(decoder) = self.decoder.as_mut() {
            let data = self.input.data().get(head_len..).unwrap_or_default();
            loop {
                let rest = data.get(used..).unwrap_or_default();
                match decoder.decode(rest) {
                    Ok(d) => {
                        used += d.consumed;
                        self.body.extend_from_slice(d.data);
                        if self.parts == Parts::No && self.body.len() as u64 > max_body {
                            outcome = Err(HttpError::BodyTooLarge);
                            break;
                        }
                        if d.done {
                            outcome = Ok(true);
                            break;
                        }
                        if d.consumed == 0 {
                            break;
                        }
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
        } else {
            outcome = Ok(true);
        }
        self.input.remove(head_len, used);
        self.ledger.body_wire_bytes(used);
        if used > 0 {
            self.body_progress = now;
        }
        outcome
    }

    /// The complete request and its decoded body, for the handler (after
    /// [`Step::Request`]).
    pub(crate) fn request(&self) -> Option<(Request<'_>, &[u8])> {
        let request = self.parser.last_request(self.input.data())?;
        Some((request, &self.body))
    }

    /// The handler answered the request of [`Step::Request`] at `now`: queue the
    /// response and move to the phase the reply asks for.
    pub(crate) fn answer(&mut self, reply: Reply, res: &Response, date: &HttpDate, now: Instant) {
        self.input.consume(self.meta.head_len);
        if self.body.capacity() > BODY_KEEP_BYTES {
            self.body = Vec::new();
        } else {
            self.body.clear();
        }
        self.ledger.dispatched(now, self.meta.out_start);
        if !self.input.is_empty() {
            // Pipelined behind this one: it came in the same reads.
            self.ledger.start_from_buffer();
        }
        self.encode_answer(reply, res, date);
    }

    /// Encodes a response to the request being answered; see [`H1Conn::answer`].
    fn encode_answer(&mut self, reply: Reply, res: &Response, date: &HttpDate) {
        let meta = self.meta;
        let mut enc = Encoding {
            version: meta.version,
            head_only: meta.head_only,
            close: false,
            date: Some(date),
        };
        self.ledger.set_status(res.status());
        // During shutdown, no connection is kept for another request.
        let keep_alive = meta.keep_alive && self.shutting_down.is_none();
        match reply {
            Reply::Deferred => self.phase = Phase::Waiting,
            Reply::Upgrade if res.status() == 101 => {
                res.encode(&mut self.output, &enc);
                self.output_grew();
                self.ledger.response_complete(self.out_total);
                self.phase = Phase::Upgraded;
                self.upgraded = true;
            }
            Reply::Stream if res.status_allows_body() => {
                // RFC 9112 §7.1: chunked for HTTP/1.1. An HTTP/1.0 client does not
                // know chunked: the body then ends when the connection closes (§6.3).
                let chunked = meta.version == Version::Http11;
                let close = !keep_alive || res.wants_close() || !chunked;
                enc.close = close;
                self.meta.keep_alive = !close;
                self.meta.chunked = chunked;
                res.encode_stream_head(&mut self.output, &enc, chunked);
                self.output_grew();
                self.phase = Phase::Streaming;
            }
            _ => {
                let close = !keep_alive || res.wants_close();
                enc.close = close;
                res.encode(&mut self.output, &enc);
                self.output_grew();
                self.ledger.response_complete(self.out_total);
                if close {
                    self.phase = Phase::Closing;
                    self.close_reason = CloseReason::Done;
                } else {
                    self.phase = Phase::Head;
                }
            }
        }
    }

    // ----- the handler's later answers -----

    /// Answers a held request. `false` if none is held.
    pub(crate) fn respond(&mut self, res: &Response, date: &HttpDate) -> bool {
        if self.phase != Phase::Waiting {
            return false;
        }
        self.encode_answer(Reply::Respond, res, date);
        true
    }

    /// Answers a held request with a streaming response. `false` if none is held.
    pub(crate) fn start_stream(&mut self, res: &Response, date: &HttpDate) -> bool {
        if self.phase != Phase::Waiting {
            return false;
        }
        self.encode_answer(Reply::Stream, res, date);
        true
    }

    /// Queues one part of a streaming response. `false` if not streaming.
    #[inline]
    pub(crate) fn send_chunk(&mut self, bytes: &[u8]) -> bool {
        if self.phase != Phase::Streaming {
            return false;
        }
        if self.meta.head_only {
            // HEAD: the head went out, the body never does.
        } else if self.meta.chunked {
            encode_chunk(&mut self.output, bytes);
        } else {
            self.output.extend_from_slice(bytes);
        }
        self.output_grew();
        true
    }

    /// Ends a streaming response. `false` if not streaming.
    pub(crate) fn end_stream(&mut self) -> bool {
        if self.phase != Phase::Streaming {
            return false;
        }
        if self.meta.chunked && !self.meta.head_only {
            encode_last_chunk(&mut self.output);
        }
        self.output_grew();
        self.ledger.response_complete(self.out_total);
        if self.meta.keep_alive && self.shutting_down.is_none() {
            self.phase = Phase::Head;
        } else {
            self.phase = Phase::Closing;
            self.close_reason = CloseReason::Done;
        }
        true
    }

    /// Queues bytes as they are on an upgraded connection. `false` if not upgraded.
    #[inline]
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) -> bool {
        if self.phase != Phase::Upgraded {
            return false;
        }
        self.push_output(bytes);
        true
    }

    /// Closes once what is queued is written. `false` if already lingering.
    pub(crate) fn close_after_output(&mut self) -> bool {
        if self.phase == Phase::Lingering {
            return false;
        }
        self.phase = Phase::Closing;
        self.close_reason = CloseReason::Done;
        self.ledger.abandon_inflight();
        self.decoder = None;
        self.input.clear();
        true
    }

    /// The handler paused reading ([`super::Context::pause_reading`]). `false`
    /// if it was paused already or is closing.
    pub(crate) fn pause_reading(&mut self) -> bool {
        if self.app_paused || matches!(self.phase, Phase::Closing | Phase::Lingering) {
            return false;
        }
        self.app_paused = true;
        true
    }

    /// The handler resumed reading ([`super::Context::resume_reading`]). `false`
    /// if it was not paused.
    pub(crate) fn resume_reading(&mut self) -> bool {
        std::mem::replace(&mut self.app_paused, false)
    }

    /// Whether the handler paused reading.
    #[inline]
    pub(crate) fn reading_paused(&self) -> bool {
        self.app_paused
    }

    /// Closes now, dropping what is queued: [`H1Conn::settle`] says close, with
    /// [`CloseReason::Done`]. `false` if already lingering (everything written,
    /// FIN sent: the linger timeout bounds what is left).
    pub(crate) fn abort(&mut self) -> bool {
        if !self.close_after_output() {
            return false;
        }
        self.output.clear();
        self.out_pos = 0;
        self.output_grew();
        self.source_pending = 0;
        self.close_now = Some(CloseReason::Done);
        true
    }

    /// The bytes on an upgraded connection, lent to the handler mutably (a
    /// WebSocket unmasks in place) while the connection table stays readable. Give
    /// them back with [`H1Conn::return_input`].
    pub(crate) fn take_input(&mut self) -> Input {
        std::mem::take(&mut self.input)
    }

    /// The handler used `used` of the bytes lent by [`H1Conn::take_input`]. If it
    /// used none and the buffer is full at `max_input`, the handler needs more
    /// than the buffer can hold: the connection closes.
    pub(crate) fn return_input(&mut self, mut input: Input, used: usize, max_input: usize) {
        let len = input.len();
        let full = input.is_full(max_input);
        input.consume(used.min(len));
        self.input = input;
        if used == 0 && full {
            self.phase = Phase::Closing;
            self.close_reason = CloseReason::Error;
            self.input.clear();
        }
    }

    // ----- bytes out -----

    /// A `write()` of [`H1Conn::output`] returned, at `now`. Reports each response
    /// whose last byte is now written. Returns `true` if the connection was paused
    /// by backpressure and may be read again.
    pub(crate) fn on_write(
        &mut self,
        call: WriteCall,
        config: &Config,
        now: Instant,
        report: impl FnMut(&RequestCost),
    ) -> bool {
        self.io.write_calls += 1;
        let n = match call {
            WriteCall::Wrote(n) => n.min(self.queued()),
            WriteCall::WouldBlock => 0,
        };
        self.ledger.write(self.written_total, n);
        if n == 0 {
            return false;
        }
        self.out_pos += n;
        self.written_total += n as u64;
        self.io.bytes_out += n as u64;
        self.last_activity = now;
        self.ledger.written(self.written_total, now, report);
        if self.out_pos >= self.output.len() {
            if self.output.capacity() > OUTPUT_KEEP_BYTES {
                self.output = Vec::new();
            } else {
                self.output.clear();
            }
            self.out_pos = 0;
        } else if self.out_pos >= self.output.len() / 2 {
            // Keep the queue's memory proportional to what is queued, even when it
            // never drains completely (a stream to a slow reader).
            self.output.drain(..self.out_pos);
            self.out_pos = 0;
        }
        if self.paused && !self.backlogged(config) {
            self.paused = false;
            return true;
        }
        false
    }

    /// How much of the handler's source the driver may write now; see
    /// [`SourceUse`].
    #[inline]
    pub(crate) fn source_use(&self) -> SourceUse {
        match self.phase {
            _ if self.close_now.is_some() || !self.upgraded => SourceUse::None,
            Phase::Upgraded => SourceUse::All,
            Phase::Closing => SourceUse::FrameRest,
            _ => SourceUse::None,
        }
    }

    /// A write that included `n` bytes of the handler's source returned at
    /// `now`; `counted`: the call itself was counted already (by
    /// [`H1Conn::on_write`], for the connection's own bytes in the same call).
    pub(crate) fn on_source_write(&mut self, n: usize, counted: bool, now: Instant) {
        if !counted {
            self.io.write_calls += 1;
        }
        if n > 0 {
            self.io.bytes_out += n as u64;
            self.last_activity = now;
        }
    }

    /// What the handler's source still has to write, as of the driver's last
    /// write: counted as queued by [`H1Conn::settle`] (FIN and WRITABLE
    /// interest wait for it).
    #[inline]
    pub(crate) fn set_source_pending(&mut self, n: usize) {
        self.source_pending = n;
    }

    /// See [`H1Conn::set_source_pending`].
    #[inline]
    pub(crate) fn source_pending(&self) -> usize {
        self.source_pending
    }

    /// Appends bytes to the output.
    #[inline]
    fn push_output(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        self.output_grew();
    }

    /// Accounts for output appended since the last call.
    #[inline]
    fn output_grew(&mut self) {
        let queued_total = self.written_total + self.queued() as u64;
        self.out_total = queued_total;
    }

    // ----- bad input -----

    /// Answers bad input with its status and rule, then closes.
    fn reject_error(&mut self, err: &HttpError, date: &HttpDate) {
        let reason = if err.status() == 408 {
            CloseReason::Timeout
        } else {
            CloseReason::BadRequest
        };
        self.reject(&Response::from_error(err), reason, date);
    }

    /// Queues `res` as the last response; nothing after it is read.
    fn reject(&mut self, res: &Response, reason: CloseReason, date: &HttpDate) {
        let data = self.input.data();
        let label = Label::new(start_line(data.get(..256).unwrap_or(data)));
        let head_bytes = self.input.len();
        self.tally.error_status = Some(res.status());
        if reason == CloseReason::Timeout {
            self.tally.timed_out = true;
        }
        self.input.clear();
        self.decoder = None;
        self.body.clear();
        self.pending_body = None;
        if self.parts != Parts::No {
            self.parts = Parts::Aborted;
        }
        self.ledger.abandon_inflight();
        let start = self.out_total;
        let enc = Encoding {
            version: Version::Http11,
            head_only: false,
            close: true,
            date: Some(date),
        };
        res.encode(&mut self.output, &enc);
        self.output_grew();
        self.ledger
            .rejected(res.status(), label, head_bytes, start, self.out_total);
        self.phase = Phase::Closing;
        self.close_reason = reason;
    }
}

/// How much of the handler's source (`Handler::source`) the driver may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceUse {
    /// None: not an upgraded connection, or closing at once.
    None,
    /// Only the rest of a frame a short write cut: the connection is closing
    /// (its close frame may follow, nothing else from the source).
    FrameRest,
    /// All of it: an open upgraded connection.
    All,
}

/// What the connection needs from a parsed head once the parser's borrow ends.
struct HeadFacts {
    head_len: usize,
    framing: Framing,
    version: Version,
    keep_alive: bool,
    head_only: bool,
    expects_continue: bool,
    label: Label,
}

impl HeadFacts {
    fn of(req: &Request<'_>) -> HeadFacts {
        HeadFacts {
            head_len: req.head_len(),
            framing: req.framing(),
            version: req.version(),
            keep_alive: req.keep_alive(),
            head_only: req.method() == "HEAD",
            expects_continue: req.expects_continue(),
            label: Label::new(start_line(req.head_bytes())),
        }
    }
}

/// The request line of a head: up to the first line end, after any empty lines
/// the parser skipped.
fn start_line(head: &[u8]) -> &[u8] {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let rest = head.get(start..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    rest.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests;
