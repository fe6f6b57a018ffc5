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
//! transition below is a plain unit test with a fake clock (this file's tests),
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
//!   response before the client reads it (RFC 9112 §9.6).
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

use std::net::SocketAddr;
use std::time::Instant;

use super::config::Config;
use super::handler::{CloseReason, Reply};
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
}

impl RequestMeta {
    const NONE: RequestMeta = RequestMeta {
        head_len: 0,
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
        chunked: false,
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
            close_now: None,
            close_reason: CloseReason::PeerClosed,
            shutting_down: None,
            accepted: now,
            last_activity: now,
            body_progress: now,
            linger_since: now,
            requests: 0,
            io: IoCounters::default(),
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
        !self.read_closed
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
                            if let Some(step) = self.head_parsed(facts, config, date, now) {
                                return step;
                            }
                        }
                        Err(e) => self.reject_error(&e, date),
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
    fn head_parsed(
        &mut self,
        facts: HeadFacts,
        config: &Config,
        date: &HttpDate,
        now: Instant,
    ) -> Option<Step> {
        self.requests += 1;
        self.tally.heads += 1;
        self.ledger.head_parsed(now, facts.head_len, facts.label);
        self.meta = RequestMeta {
            head_len: facts.head_len,
            version: facts.version,
            head_only: facts.head_only,
            keep_alive: facts.keep_alive,
            chunked: false,
        };
        match facts.framing {
            Framing::None | Framing::Length(0) => {
                self.ledger.body_done(now, 0);
                Some(Step::Request)
            }
            framing => match BodyDecoder::new(framing, &config.limits) {
                // A declared length over the limit: 413 at once, and no 100 Continue.
                Err(e) => {
                    self.reject_error(&e, date);
                    None
                }
                Ok(decoder) => {
                    self.decoder = Some(decoder);
                    self.phase = Phase::Body;
                    self.body_progress = now;
                    // RFC 9110 §10.1.1: a client that sent `Expect: 100-continue`
                    // waits for this before sending the body. If some of the body is
                    // already here, the client did not wait, and 100 is not needed.
                    if facts.expects_continue && self.input.len() == facts.head_len {
                        self.push_output(CONTINUE);
                    }
                    None
                }
            },
        }
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
                        if self.body.len() as u64 > max_body {
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
        self.ledger.dispatched(now, self.out_total);
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

    // ----- time -----

    /// When [`H1Conn::on_deadline`] must next be called, if ever.
    fn deadline(&self, config: &Config) -> Option<Instant> {
        let queued = self.queued();
        let mut at = match self.phase {
            Phase::Head if self.input.is_empty() && queued == 0 && self.requests == 0 => {
                Some(self.accepted + config.header_timeout)
            }
            Phase::Head if !self.input.is_empty() && !self.backlogged(config) => {
                Some(self.ledger_first_byte() + config.header_timeout)
            }
            Phase::Head | Phase::Closing => Some(self.last_activity + config.idle_timeout),
            Phase::Body => Some(self.body_progress + config.body_timeout),
            Phase::Lingering => Some(self.linger_since + config.linger_timeout),
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => None,
        };
        if self.holds_idle_buffers() {
            at = earliest(at, self.last_activity + config.idle_release);
        }
        if let Some(since) = self.shutting_down {
            at = earliest(at, since + config.shutdown_grace);
        }
        at
    }

    /// When the head being received began (its first byte, or the read that
    /// brought it with an earlier request).
    #[inline]
    fn ledger_first_byte(&self) -> Instant {
        self.ledger.first_byte()
    }

    /// Whether buffers grown for past traffic could be given back: nothing
    /// queued, nothing being received, and storage held.
    #[inline]
    fn holds_idle_buffers(&self) -> bool {
        self.queued() == 0
            && self.input.is_empty()
            && (self.output.capacity() > 0
                || self.body.capacity() > 0
                || self.ledger.capacity() > 0)
            && !matches!(self.phase, Phase::Body | Phase::Closing | Phase::Lingering)
    }

    /// A deadline may have passed: act on whichever did.
    pub(crate) fn on_deadline(&mut self, config: &Config, date: &HttpDate, now: Instant) {
        if self
            .shutting_down
            .is_some_and(|at| at + config.shutdown_grace <= now)
        {
            self.close_now = Some(CloseReason::Shutdown);
            return;
        }
        if self.holds_idle_buffers() && self.last_activity + config.idle_release <= now {
            self.release_buffers();
        }
        match self.phase {
            Phase::Head if self.input.is_empty() || self.backlogged(config) => {
                let since = if self.requests == 0 && self.queued() == 0 && self.input.is_empty() {
                    self.accepted + config.header_timeout
                } else {
                    self.last_activity + config.idle_timeout
                };
                if since <= now {
                    // Idle between requests (or never sent anything): close quietly.
                    self.close_now = Some(CloseReason::Timeout);
                    self.tally.timed_out = true;
                }
            }
            Phase::Head => {
                if self.ledger_first_byte() + config.header_timeout <= now {
                    // RFC 9110 §15.5.9: 408, the head did not arrive in time.
                    self.reject_error(&HttpError::HeadTimeout, date);
                }
            }
            Phase::Closing => {
                if self.last_activity + config.idle_timeout <= now {
                    self.close_now = Some(CloseReason::Timeout);
                    self.tally.timed_out = true;
                }
            }
            Phase::Body => {
                if self.body_progress + config.body_timeout <= now {
                    let mut res = Response::text(
                        408,
                        "request body not received within the timeout (RFC 9110 section 15.5.9)\n",
                    );
                    res.set_close();
                    self.reject(&res, CloseReason::Timeout, date);
                }
            }
            Phase::Lingering => {
                if self.linger_since + config.linger_timeout <= now {
                    self.close_now = Some(self.close_reason);
                }
            }
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => {}
        }
    }

    /// Gives back the output, body and cost-record buffers (all empty).
    fn release_buffers(&mut self) {
        if self.queued() == 0 {
            self.output = Vec::new();
            self.out_pos = 0;
        }
        self.body = Vec::new();
        self.ledger.release();
    }

    /// The server is shutting down as of `now`: no request after the one in
    /// progress is served, and a connection with nothing in progress closes.
    pub(crate) fn begin_shutdown(&mut self, now: Instant) {
        if self.shutting_down.is_some() {
            return;
        }
        self.shutting_down = Some(now);
        if self.phase == Phase::Head && self.input.is_empty() {
            if self.queued() == 0 {
                self.close_now = Some(CloseReason::Shutdown);
            } else {
                self.phase = Phase::Closing;
                self.close_reason = CloseReason::Shutdown;
            }
        }
    }

    // ----- after each drive -----

    /// After the driver read, stepped and wrote: whether to close or send FIN,
    /// the poll interest, and the next deadline. `more_work`: actions for this
    /// connection are still to be carried out (do not close yet).
    pub(crate) fn settle(&mut self, config: &Config, now: Instant, more_work: bool) -> Settled {
        let mut settled = Settled {
            close: self.close_now,
            send_fin: false,
            read: false,
            write: false,
            deadline: None,
            tally: std::mem::take(&mut self.tally),
        };
        if settled.close.is_some() {
            return settled;
        }
        let queued = self.queued();
        if queued == 0 && !more_work {
            match self.phase {
                Phase::Closing if self.read_closed => {
                    settled.close = Some(self.close_reason);
                    return settled;
                }
                Phase::Closing => {
                    // Everything is written: FIN, then linger until the client
                    // closes too. Bytes may be waiting already (a pipelined
                    // request after a bad one): the driver reads them now.
                    settled.send_fin = true;
                    self.phase = Phase::Lingering;
                    self.linger_since = now;
                    self.input.clear();
                }
                Phase::Lingering if self.read_closed => {
                    settled.close = Some(self.close_reason);
                    return settled;
                }
                Phase::Head | Phase::Body | Phase::Upgraded if self.read_closed => {
                    // The client is done sending and everything it asked for is
                    // answered (what is left is at most a partial request).
                    settled.close = Some(CloseReason::PeerClosed);
                    return settled;
                }
                _ => {}
            }
        }
        if self.read_closed
            && matches!(self.phase, Phase::Waiting | Phase::Streaming)
            && !config.hold_after_half_close
        {
            // The client is gone: nobody will read the held answer or the stream.
            settled.close = Some(CloseReason::PeerClosed);
            return settled;
        }
        let backlogged = self.backlogged(config);
        settled.tally.paused = backlogged && !self.paused;
        self.paused = backlogged;
        settled.read = !self.paused || matches!(self.phase, Phase::Waiting | Phase::Streaming);
        settled.write = queued > 0;
        settled.deadline = self.deadline(config);
        settled
    }
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

/// The earlier of a deadline and another.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
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
mod tests {
    //! Every phase transition and every deadline, on the state machine alone: the
    //! clock is `t0` plus offsets, the "socket" is a byte slice.

    use super::*;
    use std::time::Duration;

    fn config() -> Config {
        Config::default()
    }

    fn date() -> HttpDate {
        HttpDate::from_unix(784111777)
    }

    const MAX_INPUT: usize = 64 * 1024;

    fn new_conn(t0: Instant) -> H1Conn {
        H1Conn::new(1, "127.0.0.1:5000".parse().unwrap(), Limits::default(), t0)
    }

    /// The client's bytes arrive in one read.
    fn feed(c: &mut H1Conn, bytes: &[u8], now: Instant) {
        let space = c.read_space(8192, MAX_INPUT).expect("room");
        space[..bytes.len()].copy_from_slice(bytes);
        c.on_read(ReadCall::Data(bytes.len()), now);
    }

    /// The client reads everything queued; returns it.
    fn drain(c: &mut H1Conn, now: Instant) -> String {
        let out = c.output().to_vec();
        if !out.is_empty() {
            c.on_write(WriteCall::Wrote(out.len()), &config(), now, |_| {});
        }
        String::from_utf8(out).unwrap()
    }

    fn step(c: &mut H1Conn, now: Instant) -> Step {
        c.step(&config(), &date(), now)
    }

    fn respond(c: &mut H1Conn, reply: Reply, body: &str, now: Instant) {
        let mut res = Response::new(if reply == Reply::Upgrade { 101 } else { 200 });
        res.body_mut().extend_from_slice(body.as_bytes());
        c.answer(reply, &res, &date(), now);
    }

    fn settle(c: &mut H1Conn, now: Instant) -> Settled {
        c.settle(&config(), now, false)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn start_line_skips_leading_empty_lines() {
        assert_eq!(
            start_line(b"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            b"GET / HTTP/1.1"
        );
        assert_eq!(start_line(b"GET /partial"), b"GET /partial");
        assert_eq!(start_line(b""), b"");
    }

    #[test]
    fn head_to_request_to_head_on_keep_alive() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        let (req, body) = c.request().unwrap();
        assert_eq!(req.path(), "/");
        assert!(body.is_empty());
        respond(&mut c, Reply::Respond, "hi", t0);
        assert_eq!(c.phase(), Phase::Head);
        assert_eq!(step(&mut c, t0), Step::Idle);
        let s = settle(&mut c, t0);
        assert_eq!((s.close, s.read, s.write), (None, true, true));
        assert_eq!(s.tally.heads, 1);
        let out = drain(&mut c, t0);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with("Content-Length: 2\r\n\r\nhi"), "{out}");
        let s = settle(&mut c, t0);
        assert_eq!((s.close, s.write), (None, false));
        // Kept alive: first the output buffer is given back, then the idle timeout.
        let release = t0 + config().idle_release;
        assert_eq!(s.deadline, Some(release));
        c.on_deadline(&config(), &date(), release);
        assert_eq!(
            settle(&mut c, release).deadline,
            Some(t0 + config().idle_timeout)
        );
    }

    #[test]
    fn a_body_arriving_in_parts_is_decoded_before_the_handler_sees_it() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(
            &mut c,
            b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
            t0,
        );
        assert_eq!(step(&mut c, t0), Step::Idle);
        assert_eq!(c.phase(), Phase::Body);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            settle(&mut c, t1).deadline,
            Some(t0 + config().body_timeout)
        );
        feed(&mut c, b"world", t1);
        assert_eq!(step(&mut c, t1), Step::Request);
        assert_eq!(c.request().unwrap().1, b"helloworld");
        respond(&mut c, Reply::Respond, "", t1);
        assert_eq!(c.phase(), Phase::Head);
    }

    #[test]
    fn rfc9110_10_1_1_continue_only_when_the_client_waits_for_it() {
        let t0 = Instant::now();
        let head =
            b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        let mut c = new_conn(t0);
        feed(&mut c, head, t0);
        assert_eq!(step(&mut c, t0), Step::Idle);
        assert_eq!(drain(&mut c, t0), "HTTP/1.1 100 Continue\r\n\r\n");
        feed(&mut c, b"ok", t0);
        assert_eq!(step(&mut c, t0), Step::Request);

        // The body came with the head: the client did not wait, no 100.
        let mut c = new_conn(t0);
        let mut whole = head.to_vec();
        whole.extend_from_slice(b"ok");
        feed(&mut c, &whole, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        assert_eq!(c.queued(), 0);
    }

    #[test]
    fn rfc9112_9_3_2_pipelined_requests_are_answered_in_order() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let mut two = GET.to_vec();
        two.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        feed(&mut c, &two, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        assert_eq!(c.request().unwrap().0.path(), "/");
        respond(&mut c, Reply::Respond, "1", t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        assert_eq!(c.request().unwrap().0.path(), "/second");
        respond(&mut c, Reply::Respond, "2", t0);
        let out = drain(&mut c, t0);
        let first = out.find("\r\n\r\n1").unwrap();
        let second = out.find("\r\n\r\n2").unwrap();
        assert!(first < second, "{out}");
    }

    #[test]
    fn a_held_request_makes_pipelined_ones_wait_until_it_is_answered() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let mut two = GET.to_vec();
        two.extend_from_slice(GET);
        feed(&mut c, &two, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Deferred, "", t0);
        assert_eq!(c.phase(), Phase::Waiting);
        assert_eq!(step(&mut c, t0), Step::Idle, "the second waits");
        let s = settle(&mut c, t0);
        assert_eq!(s.deadline, None, "a held request has no timeout of its own");
        assert!(s.read, "still read, to notice the client leaving");
        // Not held: respond() and start_stream() are refused in other phases.
        assert!(c.respond(&Response::text(200, "later"), &date()));
        assert!(!c.respond(&Response::text(200, "again"), &date()));
        assert_eq!(c.phase(), Phase::Head);
        assert_eq!(step(&mut c, t0), Step::Request);
    }

    #[test]
    fn a_stream_is_chunked_and_ends_back_in_head() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Stream, "", t0);
        assert_eq!(c.phase(), Phase::Streaming);
        assert!(c.send_chunk(b"data: 1\n\n"));
        assert!(!c.send_raw(b"raw is for upgraded connections"));
        assert!(c.end_stream());
        assert!(!c.end_stream());
        assert_eq!(c.phase(), Phase::Head);
        let out = drain(&mut c, t0);
        assert!(out.contains("Transfer-Encoding: chunked\r\n\r\n"), "{out}");
        assert!(out.ends_with("\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n"), "{out}");
    }

    #[test]
    fn rfc9112_6_3_an_http10_stream_is_delimited_by_closing() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, b"GET / HTTP/1.0\r\n\r\n", t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Stream, "", t0);
        assert!(c.send_chunk(b"part"));
        assert!(c.end_stream());
        assert_eq!(c.phase(), Phase::Closing);
        let out = drain(&mut c, t0);
        assert!(!out.contains("Transfer-Encoding"), "{out}");
        assert!(out.contains("Connection: close\r\n\r\npart"), "{out}");
        assert!(settle(&mut c, t0).send_fin);
    }

    #[test]
    fn a_held_request_can_be_answered_with_a_stream() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        step(&mut c, t0);
        respond(&mut c, Reply::Deferred, "", t0);
        assert!(!c.send_chunk(b"not yet"), "no stream before it starts");
        assert!(c.start_stream(&Response::new(200), &date()));
        assert_eq!(c.phase(), Phase::Streaming);
        assert!(!c.start_stream(&Response::new(200), &date()), "once");
        assert!(c.send_chunk(b"x"));
        assert!(c.end_stream());
        assert_eq!(c.phase(), Phase::Head);
    }

    #[test]
    fn close_after_output_from_an_upgraded_connection_lingers_after_the_last_byte() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        step(&mut c, t0);
        respond(&mut c, Reply::Upgrade, "", t0);
        assert!(c.send_raw(b"goodbye frame"));
        assert!(c.close_after_output());
        assert!(!c.send_raw(b"too late"));
        assert!(!settle(&mut c, t0).send_fin, "the frame is not written yet");
        assert!(drain(&mut c, t0).ends_with("goodbye frame"));
        assert!(settle(&mut c, t0).send_fin);
        assert!(!c.close_after_output(), "already lingering");
    }

    #[test]
    fn an_upgrade_hands_the_bytes_to_the_handler() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let mut bytes = GET.to_vec();
        bytes.extend_from_slice(b"after");
        feed(&mut c, &bytes, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Upgrade, "", t0);
        assert_eq!(c.phase(), Phase::Upgraded);
        assert_eq!(step(&mut c, t0), Step::Upgraded);
        let mut input = c.take_input();
        assert_eq!(input.data_mut(), b"after");
        c.return_input(input, 2, MAX_INPUT);
        assert_eq!(step(&mut c, t0), Step::Upgraded);
        let input = c.take_input();
        assert_eq!(input.data(), b"ter");
        c.return_input(input, 3, MAX_INPUT);
        assert_eq!(step(&mut c, t0), Step::Idle);
        assert!(c.send_raw(b"frame"));
        assert!(drain(&mut c, t0).ends_with("\r\n\r\nframe"));
        let release = t0 + config().idle_release;
        assert_eq!(
            settle(&mut c, t0).deadline,
            Some(release),
            "only the buffer release"
        );
        c.on_deadline(&config(), &date(), release);
        assert_eq!(
            settle(&mut c, release).deadline,
            None,
            "no timeout after 101"
        );
    }

    #[test]
    fn an_upgraded_handler_that_cannot_use_a_full_buffer_closes_it() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Upgrade, "", t0);
        assert!(c.return_read_buffer().is_some());
        let space = c.read_space(64, 64).expect("room");
        space.fill(0);
        c.on_read(ReadCall::Data(64), t0);
        let input = c.take_input();
        // Full at a maximum of 64 bytes, and nothing used.
        c.return_input(input, 0, 64);
        assert_eq!(c.phase(), Phase::Closing);
        drain(&mut c, t0);
        assert!(settle(&mut c, t0).send_fin);
    }

    #[test]
    fn rfc9112_9_6_close_then_fin_then_linger_until_the_client_closes() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(
            &mut c,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            t0,
        );
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Respond, "bye", t0);
        assert_eq!(c.phase(), Phase::Closing);
        let s = settle(&mut c, t0);
        assert!(!s.send_fin, "not before the response is written");
        assert!(drain(&mut c, t0).contains("Connection: close\r\n"));
        let s = settle(&mut c, t0);
        assert!(s.send_fin);
        assert_eq!(c.phase(), Phase::Lingering);
        assert_eq!(s.deadline, Some(t0 + config().linger_timeout));
        // What the client still sends is read and dropped.
        feed(&mut c, b"GET /ignored HTTP/1.1\r\n\r\n", t0);
        assert_eq!(step(&mut c, t0), Step::Idle);
        c.on_read(ReadCall::Ended, t0);
        assert_eq!(settle(&mut c, t0).close, Some(CloseReason::Done));
    }

    #[test]
    fn bad_input_gets_its_status_and_nothing_after_it_is_parsed() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(
            &mut c,
            b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
            t0,
        );
        assert_eq!(step(&mut c, t0), Step::Idle);
        assert_eq!(c.phase(), Phase::Closing);
        let s = settle(&mut c, t0);
        assert_eq!(s.tally.error_status, Some(400));
        let out = drain(&mut c, t0);
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("Host"), "names the rule: {out}");
        assert!(!out.contains("/next"));
        assert!(settle(&mut c, t0).send_fin);
    }

    #[test]
    fn a_connection_that_never_sends_is_closed_quietly_at_the_header_timeout() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let s = settle(&mut c, t0);
        let at = t0 + config().header_timeout;
        assert_eq!(s.deadline, Some(at));
        c.on_deadline(&config(), &date(), at - Duration::from_millis(1));
        assert_eq!(settle(&mut c, at).close, None, "not yet");
        c.on_deadline(&config(), &date(), at);
        let s = settle(&mut c, at);
        assert_eq!(s.close, Some(CloseReason::Timeout));
        assert!(s.tally.timed_out);
        assert_eq!(
            c.queued(),
            0,
            "quietly: no 408 to a client that sent nothing"
        );
    }

    #[test]
    fn rfc9110_15_5_9_a_head_that_stalls_gets_408() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let t1 = t0 + Duration::from_secs(3);
        feed(&mut c, b"GET / HTTP/1.1\r\nHo", t1);
        assert_eq!(step(&mut c, t1), Step::Idle);
        let s = settle(&mut c, t1);
        let at = t1 + config().header_timeout;
        assert_eq!(s.deadline, Some(at), "from the head's first byte");
        c.on_deadline(&config(), &date(), at);
        assert_eq!(c.phase(), Phase::Closing);
        let s = settle(&mut c, at);
        assert_eq!((s.tally.error_status, s.tally.timed_out), (Some(408), true));
        assert!(drain(&mut c, at).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    }

    #[test]
    fn a_body_that_stalls_gets_408() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(
            &mut c,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
            t0,
        );
        assert_eq!(step(&mut c, t0), Step::Idle);
        let t1 = t0 + Duration::from_secs(20);
        feed(&mut c, b"de", t1);
        assert_eq!(step(&mut c, t1), Step::Idle);
        let at = t1 + config().body_timeout;
        assert_eq!(
            settle(&mut c, t1).deadline,
            Some(at),
            "moved by the last body byte"
        );
        c.on_deadline(&config(), &date(), at);
        assert!(drain(&mut c, at).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
        assert_eq!(settle(&mut c, at).tally.error_status, Some(408));
    }

    #[test]
    fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Respond, "", t0);
        let t1 = t0 + Duration::from_millis(5);
        drain(&mut c, t1);
        let at = t1 + config().idle_timeout;
        let deadline = settle(&mut c, t1).deadline;
        assert_eq!(
            deadline,
            Some(t1 + config().idle_release),
            "release comes first"
        );
        c.on_deadline(&config(), &date(), at);
        assert_eq!(settle(&mut c, at).close, Some(CloseReason::Timeout));
    }

    #[test]
    fn lingering_ends_at_the_linger_timeout() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, b"BAD\r\n\r\n", t0);
        step(&mut c, t0);
        drain(&mut c, t0);
        assert!(settle(&mut c, t0).send_fin);
        let at = t0 + config().linger_timeout;
        c.on_deadline(&config(), &date(), at);
        assert_eq!(settle(&mut c, at).close, Some(CloseReason::BadRequest));
    }

    #[test]
    fn end_of_file_while_a_request_is_held_closes_at_once() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Deferred, "", t0);
        assert_eq!(settle(&mut c, t0).close, None);
        c.on_read(ReadCall::Ended, t0);
        assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));

        // Unless the config keeps it: then the held answer still goes out.
        let keep = Config {
            hold_after_half_close: true,
            ..config()
        };
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        step(&mut c, t0);
        respond(&mut c, Reply::Deferred, "", t0);
        c.on_read(ReadCall::Ended, t0);
        assert_eq!(c.settle(&keep, t0, false).close, None);
        assert!(c.respond(&Response::text(200, "late"), &date()));
        assert!(drain(&mut c, t0).ends_with("late"));
        assert_eq!(
            c.settle(&keep, t0, false).close,
            Some(CloseReason::PeerClosed)
        );
    }

    #[test]
    fn end_of_file_while_streaming_closes_at_once() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        step(&mut c, t0);
        respond(&mut c, Reply::Stream, "", t0);
        drain(&mut c, t0);
        assert_eq!(settle(&mut c, t0).close, None);
        c.on_read(ReadCall::Ended, t0);
        assert!(!c.wants_read(&config(), MAX_INPUT));
        assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));
    }

    #[test]
    fn a_request_answered_at_once_reaches_a_client_that_half_closed() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        c.on_read(ReadCall::Ended, t0);
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Respond, "still", t0);
        let s = settle(&mut c, t0);
        assert_eq!(s.close, None, "not before the answer is written");
        assert!(drain(&mut c, t0).ends_with("still"));
        assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));
    }

    #[test]
    fn backpressure_stops_parsing_until_the_client_reads() {
        let t0 = Instant::now();
        let small = Config {
            max_queued_output: 100,
            ..config()
        };
        let mut c = new_conn(t0);
        let mut two = GET.to_vec();
        two.extend_from_slice(GET);
        feed(&mut c, &two, t0);
        assert_eq!(c.step(&small, &date(), t0), Step::Request);
        respond(&mut c, Reply::Respond, &"x".repeat(500), t0);
        assert_eq!(c.step(&small, &date(), t0), Step::Backlogged);
        let s = c.settle(&small, t0, false);
        assert!(s.tally.paused && !s.read && s.write);
        assert!(!c.wants_read(&small, MAX_INPUT));
        let all = c.output().len();
        assert!(
            c.on_write(WriteCall::Wrote(all), &small, t0, |_| {}),
            "resumes"
        );
        assert_eq!(c.step(&small, &date(), t0), Step::Request);
    }

    #[test]
    fn buffers_grown_for_a_burst_are_given_back_after_idle_release() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        feed(&mut c, GET, t0);
        step(&mut c, t0);
        respond(&mut c, Reply::Upgrade, "", t0);
        drain(&mut c, t0);
        c.release_buffers();
        let _ = c.return_read_buffer();
        let at_rest = c.capacity();
        // A burst: 400 frames queued, then written.
        for _ in 0..400 {
            c.send_raw(&[b'f'; 300]);
        }
        drain(&mut c, t0);
        let _ = c.return_read_buffer();
        assert!(c.capacity() > at_rest + 100_000, "{}", c.capacity());
        let s = settle(&mut c, t0);
        let at = t0 + config().idle_release;
        assert_eq!(s.deadline, Some(at));
        c.on_deadline(&config(), &date(), at - Duration::from_millis(1));
        assert!(c.capacity() > at_rest, "not before idle_release");
        c.on_deadline(&config(), &date(), at);
        assert_eq!(c.capacity(), at_rest);
        assert_eq!(settle(&mut c, at).deadline, None, "nothing left to release");
    }

    #[test]
    fn shutdown_closes_idle_connections_and_lets_held_ones_finish() {
        let t0 = Instant::now();
        let mut idle = new_conn(t0);
        idle.begin_shutdown(t0);
        assert_eq!(settle(&mut idle, t0).close, Some(CloseReason::Shutdown));

        let mut held = new_conn(t0);
        feed(&mut held, GET, t0);
        step(&mut held, t0);
        respond(&mut held, Reply::Deferred, "", t0);
        held.begin_shutdown(t0);
        let s = settle(&mut held, t0);
        assert_eq!(s.close, None);
        assert_eq!(s.deadline, Some(t0 + config().shutdown_grace));
        assert!(held.respond(&Response::text(200, "done"), &date()));
        let out = drain(&mut held, t0);
        assert!(out.contains("Connection: close\r\n"), "{out}");
        assert!(settle(&mut held, t0).send_fin);

        // What has not finished by the end of the grace period is closed.
        let mut stuck = new_conn(t0);
        feed(&mut stuck, GET, t0);
        step(&mut stuck, t0);
        respond(&mut stuck, Reply::Deferred, "", t0);
        stuck.begin_shutdown(t0);
        stuck.on_deadline(&config(), &date(), t0 + config().shutdown_grace);
        assert_eq!(settle(&mut stuck, t0).close, Some(CloseReason::Shutdown));
    }

    #[test]
    fn pipelined_requests_share_one_read_and_one_write_in_their_costs() {
        let t0 = Instant::now();
        let mut c = new_conn(t0);
        let three = [GET, GET, GET].concat();
        feed(&mut c, &three, t0);
        c.on_read(ReadCall::WouldBlock, t0);
        for _ in 0..3 {
            assert_eq!(step(&mut c, t0), Step::Request);
            respond(&mut c, Reply::Respond, "ok", t0);
        }
        let n = c.output().len();
        let mut costs = Vec::new();
        c.on_write(WriteCall::Wrote(n), &config(), t0, |cost| costs.push(*cost));
        assert_eq!(costs.len(), 3);
        let reads: u32 = costs.iter().map(|c| c.read_calls).sum();
        let writes: u32 = costs.iter().map(|c| c.write_calls).sum();
        assert_eq!(
            (reads, writes),
            (2, 1),
            "the connection made 2 reads and 1 write"
        );
        assert!(
            costs
                .iter()
                .all(|c| c.read_group == (0, 2) && c.write_group == (0, 2))
        );
        let io = c.io();
        assert_eq!((io.read_calls, io.write_calls), (2, 1));
        assert_eq!(io.bytes_in, three.len() as u64);
    }
}
