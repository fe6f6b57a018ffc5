//! The driver: one thread, one `mio::Poll`, every connection.
//!
//! # How a readiness loop serves many connections on one thread
//!
//! A blocking server gives each connection a thread that sleeps in `read()`. This
//! one puts every socket in non-blocking mode and asks the kernel (epoll, through
//! mio) which of them are ready. Then it does as much as it can on each ready socket
//! without ever waiting:
//!
//! 1. **Accept** until `accept()` says `WouldBlock`. Each new connection is
//!    registered for READABLE events.
//! 2. **Read** until `read()` says `WouldBlock`. mio's events are edge-triggered: an
//!    event means "something changed", and no new event comes for bytes left unread,
//!    so stopping early would strand them. (Every `read()` is counted, the one that
//!    returns `WouldBlock` too: it is a real system call, and part of what a request
//!    costs.)
//! 3. **Parse** what arrived ([`crate::http::RequestParser`]). A head cut anywhere
//!    by TCP is just "need more": the bytes stay in the connection's buffer for the
//!    next read. Bytes after a complete request are the next request (pipelining);
//!    they stay too.
//! 4. **Call the application** ([`Handler`]) and encode its response into the
//!    connection's output buffer. All requests that arrived in one read are answered
//!    before anything is written, so their responses go out in one `write()`.
//! 5. **Write** until everything is written or `write()` says `WouldBlock`. A short
//!    write is normal (the kernel's send buffer is full): the rest stays queued, and
//!    only then does the connection ask for WRITABLE events, which say when there is
//!    room again. Asking for WRITABLE while nothing is queued would wake the loop for
//!    nothing.
//!
//! Before blocking in `poll()`, the loop takes the earliest deadline from its timer
//! heap ([`timer`]) as the poll timeout, so timeouts fire with no thread per timer.
//!
//! # What keeps it robust
//!
//! - **Backpressure.** A client can send requests without reading the responses.
//!   Once a connection's queued output passes [`Config::max_queued_output`] (or
//!   1024 responses wait to be written), the loop stops reading from it and stops
//!   parsing its buffered requests (it drops READABLE interest), until the client
//!   has read enough. Memory per connection stays bounded by that bound plus the
//!   read buffer's maximum (and a body being received, up to its limit).
//! - **Idle connections hold little.** A read buffer belongs to a connection only
//!   while it has bytes not yet consumed; then it goes back to the loop for the
//!   next connection that reads ([`Config::read_buffer_bytes`]). A WebSocket
//!   waiting for its next message costs its state, not 8 KiB of empty buffer
//!   (`examples/idle_conns.rs` measures it).
//! - **Bad input** gets the status its [`crate::http::HttpError`] names, a body that
//!   says which rule was broken, and `Connection: close`; nothing after it on that
//!   connection is parsed. The loop then half-closes (FIN) and *lingers*, reading
//!   and discarding until the client closes too: closing a socket with unread input
//!   makes the kernel send a reset, which can destroy the response before the
//!   client reads it.
//! - **Timeouts** ([`Config`]): a head that does not complete in time gets 408, a
//!   connection idle between requests is closed quietly.
//! - **A connection limit**: past it, new connections are accepted and closed at once.
//! - Nothing input can reach panics: no `unwrap`, no unchecked indexing.
//!
//! # Plugging in
//!
//! An application implements [`Handler`]; see [`handler`] for the four shapes an
//! answer can take (at once, later, in parts, or by taking the connection over).
//! [`Server::bind`] then [`Server::run`] (or [`Server::spawn`] to run it on a thread).
//! Every request's costs ([`crate::cost::RequestCost`]) go to
//! [`Handler::on_request_done`]; totals are in [`ServerStats`].
//!
//! ```
//! use std::io::{Read, Write};
//! use wirepatterns::http::Response;
//! use wirepatterns::server::{Config, Context, Handler, Incoming, Reply, Server};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn on_request(&mut self, _: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
//!         res.header("Content-Type", "text/plain");
//!         res.body_mut().extend_from_slice(b"hello from ");
//!         res.body_mut().extend_from_slice(req.request().path().as_bytes());
//!         Reply::Respond
//!     }
//! }
//!
//! let config = Config::new("127.0.0.1:0".parse().unwrap());
//! let running = Server::bind(config, Hello)?.spawn()?;
//! let mut client = std::net::TcpStream::connect(running.addr)?;
//! client.write_all(b"GET /there HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! client.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(answer.ends_with("\r\n\r\nhello from /there"));
//! running.stop()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod conn;
pub mod handler;
pub mod timer;

use std::fmt;
use std::io::{self, Read, Write};
use std::mem;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use conn::{Conn, Input, Phase, RequestMeta, Slab};
use handler::{Action, Actions};
use timer::{Expired, Timers};

pub use crate::cost::{IoCounters, ServerStats};
pub use handler::{CloseReason, Context, Handler, Incoming, Reply};
pub use timer::TimerId;

use crate::cost::{Label, RequestCost};
use crate::http::date::HttpDate;
use crate::http::response::{CONTINUE, Encoding, encode_chunk, encode_last_chunk};
use crate::http::{
    BodyDecoder, Framing, HttpError, Limits, RequestParser, Response, Status, Version,
};

/// The listener's poll token.
const LISTENER: Token = Token(usize::MAX);
/// The waker's poll token (shutdown requests from other threads).
const WAKER: Token = Token(usize::MAX - 1);
/// How many read/parse/write rounds one connection gets per wake-up before the loop
/// serves others (it comes back to it right after).
const MAX_ROUNDS: usize = 16;
/// A decoded body buffer bigger than this is freed after its request instead of
/// being kept for the next one.
const BODY_KEEP_BYTES: usize = 64 * 1024;
/// An output buffer bigger than this is freed once it has been written out.
const OUTPUT_KEEP_BYTES: usize = 256 * 1024;
/// Read buffers the loop keeps for lending, beyond those connections hold (see
/// [`Config::read_buffer_bytes`]); more are freed.
const SPARE_READ_BUFFERS: usize = 16;

/// Every limit and timeout of the server, each with a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Default `127.0.0.1:8080`; port 0 picks a free port (read it
    /// back with [`Server::local_addr`]).
    pub addr: SocketAddr,
    /// The parser's and body decoder's limits (head, target, header count, body).
    pub limits: Limits,
    /// How long a request head may take to arrive, from its first byte (and, on a
    /// new connection, from the accept). Past it: 408, then close; a connection that
    /// sent nothing at all is closed quietly. Default 10 s.
    pub header_timeout: Duration,
    /// How long a body may go without a byte arriving. Past it: 408, then close.
    /// Default 30 s.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may sit between requests (or with a
    /// response its client does not read). Past it: closed quietly. Default 60 s.
    pub idle_timeout: Duration,
    /// After a last response and FIN, how long to keep reading and discarding what
    /// the client still sends before closing anyway. Default 2 s.
    pub linger_timeout: Duration,
    /// Most connections open at once; more are accepted and closed at once (and
    /// counted in [`ServerStats::connections_rejected`]). Default 10 000.
    pub max_connections: usize,
    /// Queued output on one connection past which the loop stops reading from it
    /// (backpressure). Default 1 MiB.
    pub max_queued_output: usize,
    /// A connection's read buffer starts at this size. Default 8 KiB. A connection
    /// holds one only while it has bytes to read or not yet consumed: once all are
    /// consumed, the buffer goes back to the loop, which lends it to the next
    /// connection that reads. So an idle connection (a WebSocket waiting for its
    /// next message, a kept-alive HTTP client between requests) holds none, and a
    /// busy one does not allocate to read.
    pub read_buffer_bytes: usize,
    /// A connection's read buffer never grows past this (nor past what a head at
    /// the limit needs). When it is full of requests waiting their turn, the
    /// connection is not read until some are answered. Default 64 KiB.
    pub max_read_buffer_bytes: usize,
    /// Events taken from the kernel per `poll()`. Default 1024.
    pub events_capacity: usize,
    /// After [`ServerHandle::shutdown`], how long held requests, streams and
    /// queued output get to finish before their connections are closed anyway.
    /// Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            linger_timeout: Duration::from_secs(2),
            max_connections: 10_000,
            max_queued_output: 1024 * 1024,
            read_buffer_bytes: 8 * 1024,
            max_read_buffer_bytes: 64 * 1024,
            events_capacity: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The default configuration, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            ..Config::default()
        }
    }
}

/// A connection, as the application knows it. Ids are never reused, so an id kept
/// after its connection closed refers to nothing (what is sent to it is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The connection's number: 1 for the first accepted, and so on.
    serial: u64,
    /// Its slot in the loop's table (and its poll token).
    index: usize,
}

impl ConnId {
    /// The connection's number (1 for the first accepted connection).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    #[cfg(test)]
    pub(crate) fn new_for_tests(serial: u64, index: usize) -> ConnId {
        ConnId { serial, index }
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn {}", self.serial)
    }
}

/// What other threads share with the loop.
struct Shared {
    /// Wakes the loop from `poll()`.
    waker: Waker,
    /// Set to ask the loop to stop.
    stop: AtomicBool,
    /// The totals, copied here once per turn of the loop.
    stats: Mutex<ServerStats>,
}

/// A handle to a running server, usable from any thread: stop it, read its totals.
#[derive(Clone)]
pub struct ServerHandle {
    /// The state shared with the loop.
    shared: Arc<Shared>,
}

impl ServerHandle {
    /// Asks the loop to stop; [`Server::run`] then closes every connection and
    /// returns.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.shared.waker.wake();
    }

    /// The server's totals, as of the end of the loop's last turn.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

/// The `Date` field's value, formatted once per second.
struct DateCache {
    /// The unix second it was formatted for.
    secs: u64,
    /// The formatted date.
    date: HttpDate,
}

impl DateCache {
    fn now() -> DateCache {
        let secs = unix_now();
        DateCache {
            secs,
            date: HttpDate::from_unix(secs),
        }
    }

    fn refresh(&mut self) {
        let secs = unix_now();
        if secs != self.secs {
            self.secs = secs;
            self.date = HttpDate::from_unix(secs);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Everything the loop owns besides the poll, the listener and the handler.
struct Core {
    /// The limits and timeouts.
    config: Config,
    /// The read buffer's real maximum: the configured one, or more if a head at the
    /// limit needs more.
    max_input: usize,
    /// For (re/de)registering connections.
    registry: Registry,
    /// The open connections.
    conns: Slab,
    /// Connection deadlines and application timers.
    timers: Timers,
    /// What the handler asked for during its last callback.
    actions: Actions,
    /// Totals.
    stats: ServerStats,
    /// The `Date` value.
    date: DateCache,
    /// The response handed to the handler for each request, cleared and reused so
    /// that answering allocates nothing.
    scratch: Response,
    /// Connections to drive again before the next blocking poll.
    dirty: Vec<usize>,
    /// Read buffers of [`Config::read_buffer_bytes`] not lent to any connection:
    /// taken by a connection about to read, given back when it has consumed
    /// everything (at most [`SPARE_READ_BUFFERS`] are kept).
    spare_inputs: Vec<Vec<u8>>,
    /// The time at the start of this turn of the loop.
    now: Instant,
    /// Connection numbers handed out so far.
    serials: u64,
    /// When to try `accept()` again after it failed for lack of resources (with
    /// edge-triggered events, no new event would come for connections already
    /// waiting).
    accept_retry: Option<Instant>,
}

/// Builds a [`Context`] from the loop's parts (a macro, so that the borrows stay
/// field by field and the rest of `Core` stays usable).
macro_rules! context {
    ($core:expr) => {
        Context {
            now: $core.now,
            conns: &$core.conns,
            timers: &mut $core.timers,
            actions: &mut $core.actions,
            stats: &$core.stats,
        }
    };
}

/// The server: a listener, its connections, and the application.
pub struct Server<H> {
    /// The readiness poll.
    poll: Poll,
    /// The listening socket.
    listener: TcpListener,
    /// Where it listens (with the real port when port 0 was asked for).
    local_addr: SocketAddr,
    /// What [`ServerHandle`]s share.
    shared: Arc<Shared>,
    /// The application.
    handler: H,
    /// The loop's state.
    core: Core,
}

/// A server running on its own thread; see [`Server::spawn`].
pub struct Running<H> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its handle.
    pub handle: ServerHandle,
    /// The thread; it returns the handler when the server stops.
    thread: JoinHandle<io::Result<H>>,
}

impl<H> Running<H> {
    /// Stops the server and returns its handler.
    pub fn stop(self) -> io::Result<H> {
        self.handle.shutdown();
        self.thread
            .join()
            .map_err(|_| io::Error::other("server thread panicked"))?
    }
}

impl<H: Handler> Server<H> {
    /// Binds the listener and sets up the loop; nothing is accepted until
    /// [`Server::run`].
    pub fn bind(config: Config, handler: H) -> io::Result<Server<H>> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let registry = poll.registry().try_clone()?;
        let max_input = config
            .max_read_buffer_bytes
            .max(config.limits.max_head_bytes.saturating_add(1024))
            .max(config.read_buffer_bytes)
            .max(1);
        let core = Core {
            max_input,
            registry,
            conns: Slab::default(),
            timers: Timers::default(),
            actions: Actions::default(),
            stats: ServerStats::default(),
            date: DateCache::now(),
            scratch: Response::default(),
            dirty: Vec::new(),
            spare_inputs: Vec::new(),
            now: Instant::now(),
            serials: 0,
            accept_retry: None,
            config,
        };
        Ok(Server {
            poll,
            listener,
            local_addr,
            shared: Arc::new(Shared {
                waker,
                stop: AtomicBool::new(false),
                stats: Mutex::new(ServerStats::default()),
            }),
            handler,
            core,
        })
    }

    /// Where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server and read its totals from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The application.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The application, taking the server apart.
    pub fn into_handler(self) -> H {
        self.handler
    }

    /// The totals so far.
    pub fn stats(&self) -> ServerStats {
        self.core.stats
    }

    /// Runs the server on a new thread.
    pub fn spawn(mut self) -> io::Result<Running<H>>
    where
        H: Send + 'static,
    {
        let addr = self.local_addr;
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("wirepatterns-server".into())
            .spawn(move || {
                self.run()?;
                Ok(self.into_handler())
            })?;
        Ok(Running {
            addr,
            handle,
            thread,
        })
    }

    /// Runs the loop until [`ServerHandle::shutdown`] is called.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(self.core.config.events_capacity.max(16));
        while !self.shared.stop.load(Ordering::Acquire) {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.core.now = Instant::now();
            self.core.date.refresh();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(index) => {
                        if let Some(conn) = self.core.conns.get_index_mut(index)
                            && (event.is_readable() || event.is_read_closed() || event.is_error())
                        {
                            conn.read_ready = true;
                        }
                        self.drive(index);
                    }
                }
            }
            if self.core.accept_retry.is_some_and(|at| at <= self.core.now) {
                self.core.accept_retry = None;
                self.accept();
            }
            self.fire_timers();
            self.drive_dirty();
            self.turn_end();
            self.publish();
        }
        for index in self.core.conns.indexes() {
            self.close(index, CloseReason::Shutdown);
        }
        self.publish();
        Ok(())
    }

    /// How long `poll()` may block: until the earliest deadline, or not at all if
    /// connections are waiting to be driven again.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.core.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = match (self.core.timers.next_deadline(), self.core.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        next.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            // epoll counts in milliseconds: round up, or the loop would spin
            // through the last fraction of a millisecond.
            let ms = left.as_micros().div_ceil(1000);
            Duration::from_millis(ms.min(u64::MAX as u128) as u64)
        })
    }

    /// Tells the handler that the turn is over (see [`Handler::on_turn_end`]).
    fn turn_end(&mut self) {
        self.core.now = Instant::now();
        let core = &mut self.core;
        let mut ctx = context!(core);
        self.handler.on_turn_end(&mut ctx);
        self.apply_actions();
    }

    /// Copies the totals to where [`ServerHandle::stats`] reads them.
    fn publish(&mut self) {
        self.core.stats.connections_open = self.core.conns.len() as u64;
        if let Ok(mut shared) = self.shared.stats.lock() {
            *shared = self.core.stats;
        }
    }

    /// Accepts until `WouldBlock`.
    fn accept(&mut self) {
        loop {
            let core = &mut self.core;
            match self.listener.accept() {
                Ok((socket, peer)) => {
                    if core.conns.len() >= core.config.max_connections {
                        // At the limit: accept and close at once, so the client gets
                        // an answer (a close) rather than waiting in the backlog.
                        core.stats.connections_rejected += 1;
                        drop(socket);
                        continue;
                    }
                    // Responses are written whole, in as few writes as possible;
                    // Nagle's algorithm would only delay them.
                    let _ = socket.set_nodelay(true);
                    core.serials += 1;
                    let index = core.conns.next_index();
                    let id = ConnId {
                        serial: core.serials,
                        index,
                    };
                    let now = Instant::now();
                    let mut conn = Conn {
                        id,
                        socket,
                        peer,
                        input: Input::default(),
                        parser: RequestParser::new(core.config.limits),
                        decoder: None,
                        body: Vec::new(),
                        output: Vec::new(),
                        out_pos: 0,
                        out_total: 0,
                        written_total: 0,
                        phase: Phase::Head,
                        meta: RequestMeta::NONE,
                        read_ready: false,
                        read_closed: false,
                        paused: false,
                        interest: Interest::READABLE,
                        deadline: None,
                        scheduled: None,
                        accepted: now,
                        last_read: now,
                        last_activity: now,
                        body_progress: now,
                        linger_since: now,
                        current: RequestCost::new(core.serials, 0, now, now),
                        current_started: false,
                        inflight: None,
                        unwritten: Default::default(),
                        io: Default::default(),
                        requests: 0,
                        close_reason: CloseReason::PeerClosed,
                        dirty: false,
                    };
                    if core
                        .registry
                        .register(&mut conn.socket, Token(index), Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    set_deadline(
                        &mut conn,
                        &mut core.timers,
                        Some(now + core.config.header_timeout),
                    );
                    core.conns.insert(conn);
                    core.stats.connections_accepted += 1;
                    core.stats.connections_open = core.conns.len() as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(_) => {
                    // Out of descriptors or memory: try again shortly.
                    core.accept_retry = Some(Instant::now() + Duration::from_millis(10));
                    break;
                }
            }
        }
    }

    /// Does everything that can be done on one connection now: write what is
    /// queued, read what arrived, answer complete requests, write the answers.
    fn drive(&mut self, index: usize) {
        for _ in 0..MAX_ROUNDS {
            if let Err(reason) = self.flush(index) {
                return self.close(index, reason);
            }
            if let Err(reason) = self.read(index) {
                return self.close(index, reason);
            }
            let blocked = self.process(index);
            if let Err(reason) = self.flush(index) {
                return self.close(index, reason);
            }
            let core = &self.core;
            let Some(conn) = core.conns.get_index(index) else {
                return;
            };
            let unblocked = blocked && !conn.backlogged(core.config.max_queued_output);
            if !unblocked && !wants_read(conn, &core.config, core.max_input) {
                return self.settle(index);
            }
        }
        // It still has work: serve the others first, then come back.
        mark_dirty(&mut self.core, index);
        self.settle(index);
    }

    /// Drives the connections that actions or timers touched.
    fn drive_dirty(&mut self) {
        // Bounded: a connection that keeps having work is left for the next turn
        // (the poll then does not block).
        for _ in 0..4 {
            if self.core.dirty.is_empty() {
                return;
            }
            let batch = mem::take(&mut self.core.dirty);
            for &index in &batch {
                if let Some(conn) = self.core.conns.get_index_mut(index) {
                    conn.dirty = false;
                }
            }
            for &index in &batch {
                self.drive(index);
            }
            // Reuse the batch's allocation if nothing was added meanwhile.
            if self.core.dirty.is_empty() {
                let mut batch = batch;
                batch.clear();
                self.core.dirty = batch;
            }
        }
    }

    /// Reads until `WouldBlock`, end of file, or a full buffer.
    fn read(&mut self, index: usize) -> Result<(), CloseReason> {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return Ok(());
        };
        if !wants_read(conn, &core.config, core.max_input) {
            return Ok(());
        }
        if !conn.input.has_storage()
            && let Some(buf) = core.spare_inputs.pop()
        {
            conn.input.give_storage(buf);
        }
        let mut got_data = false;
        loop {
            if conn.phase == Phase::Lingering {
                conn.input.clear();
            }
            if !conn
                .input
                .make_room(core.config.read_buffer_bytes.max(1), core.max_input)
            {
                break;
            }
            let result = conn.socket.read(conn.input.spare());
            core.stats.read_calls += 1;
            conn.io.read_calls += 1;
            conn.current.read_calls += 1;
            match result {
                Ok(0) => {
                    conn.read_closed = true;
                    conn.read_ready = false;
                    break;
                }
                Ok(n) => {
                    conn.input.filled(n);
                    core.stats.bytes_in += n as u64;
                    conn.io.bytes_in += n as u64;
                    got_data = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.current.read_would_block += 1;
                    conn.read_ready = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(CloseReason::Error),
            }
        }
        if got_data {
            let t = Instant::now();
            conn.last_read = t;
            conn.last_activity = t;
            if !conn.current_started && conn.phase != Phase::Lingering {
                conn.current.first_byte = t;
                conn.current_started = true;
            }
        }
        Ok(())
    }

    /// Parses and answers what is in the buffer, as far as the connection's phase
    /// allows. Returns `true` if it stopped because too much output is queued.
    fn process(&mut self, index: usize) -> bool {
        loop {
            let core = &mut self.core;
            let Some(conn) = core.conns.get_index_mut(index) else {
                return false;
            };
            let bound = core.config.max_queued_output;
            match conn.phase {
                Phase::Head => {
                    if conn.input.is_empty() {
                        return false;
                    }
                    if conn.backlogged(bound) {
                        // Backpressure: requests wait until the client reads.
                        return true;
                    }
                    if !conn.current_started {
                        // Pipelined behind the previous request: it arrived with it.
                        conn.current.first_byte = conn.last_read;
                        conn.current_started = true;
                    }
                    let head = match conn.parser.parse(conn.input.data()) {
                        Ok(Status::Partial) => return false,
                        Ok(Status::Complete(req)) => Ok(HeadFacts {
                            head_len: req.head_len(),
                            framing: req.framing(),
                            version: req.version(),
                            keep_alive: req.keep_alive(),
                            head_only: req.method() == "HEAD",
                            expects_continue: req.expects_continue(),
                            label: Label::new(start_line(req.head_bytes())),
                        }),
                        Err(e) => Err(e),
                    };
                    match head {
                        Ok(facts) => self.head_parsed(index, facts),
                        Err(e) => reject_error(core, index, &e),
                    }
                }
                Phase::Body => {
                    let head_len = conn.meta.head_len;
                    let max_body = core.config.limits.max_body_bytes;
                    let mut used = 0;
                    let mut outcome: Result<bool, HttpError> = Ok(false);
                    if let Some(decoder) = conn.decoder.as_mut() {
                        let data = conn.input.data().get(head_len..).unwrap_or_default();
                        loop {
                            let rest = data.get(used..).unwrap_or_default();
                            match decoder.decode(rest) {
                                Ok(d) => {
                                    used += d.consumed;
                                    conn.body.extend_from_slice(d.data);
                                    if conn.body.len() as u64 > max_body {
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
                    conn.input.remove(head_len, used);
                    conn.current.body_wire_bytes += used as u64;
                    if used > 0 {
                        conn.body_progress = core.now;
                    }
                    match outcome {
                        Err(e) => reject_error(core, index, &e),
                        Ok(true) => {
                            conn.decoder = None;
                            conn.current.body_done = Some(Instant::now());
                            conn.current.body_bytes = conn.body.len() as u64;
                            self.dispatch(index);
                        }
                        Ok(false) => return false,
                    }
                }
                Phase::Upgraded => {
                    if conn.input.is_empty() {
                        return false;
                    }
                    if conn.backlogged(bound) {
                        return true;
                    }
                    let id = conn.id;
                    let full = conn.input.is_full(core.max_input);
                    // The buffer is lent to the handler mutably (a WebSocket unmasks
                    // in place), so it leaves the slab for the call: the context
                    // reads the slab meanwhile. Moving it moves a few words, no bytes.
                    let mut input = mem::take(&mut conn.input);
                    let data = input.data_mut();
                    let len = data.len();
                    let mut ctx = context!(core);
                    let used = self.handler.on_upgraded_data(&mut ctx, id, data);
                    if let Some(conn) = core.conns.get_index_mut(index) {
                        conn.input = input;
                        conn.input.consume(used.min(len));
                        if used == 0 && full {
                            // The handler needs more than the buffer can hold.
                            conn.phase = Phase::Closing;
                            conn.close_reason = CloseReason::Error;
                            conn.input.clear();
                        }
                    }
                    self.apply_actions();
                    if used == 0 {
                        return false;
                    }
                }
                Phase::Waiting | Phase::Streaming | Phase::Closing => return false,
                Phase::Lingering => {
                    conn.input.clear();
                    return false;
                }
            }
        }
    }

    /// A head is complete: record it, then answer it or start on its body.
    fn head_parsed(&mut self, index: usize, facts: HeadFacts) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        core.stats.requests += 1;
        conn.requests += 1;
        let now = Instant::now();
        conn.current.head_parsed = Some(now);
        conn.current.head_bytes = facts.head_len as u64;
        conn.current.label = facts.label;
        conn.meta = RequestMeta {
            head_len: facts.head_len,
            version: facts.version,
            head_only: facts.head_only,
            keep_alive: facts.keep_alive,
            chunked: false,
            out_start: conn.out_total,
        };
        match facts.framing {
            Framing::None | Framing::Length(0) => {
                conn.current.body_done = Some(now);
                self.dispatch(index);
            }
            framing => match BodyDecoder::new(framing, &core.config.limits) {
                // A declared length over the limit: 413 at once, and no 100 Continue.
                Err(e) => reject_error(core, index, &e),
                Ok(decoder) => {
                    conn.decoder = Some(decoder);
                    conn.phase = Phase::Body;
                    conn.body_progress = core.now;
                    // RFC 9110 §10.1.1: a client that sent `Expect: 100-continue`
                    // waits for this before sending the body. If some of the body is
                    // already here, the client did not wait, and 100 is not needed.
                    if facts.expects_continue && conn.input.len() == facts.head_len {
                        let before = conn.output.len();
                        conn.output.extend_from_slice(CONTINUE);
                        account_output(conn, &mut core.stats, before);
                    }
                }
            },
        }
    }

    /// Hands a complete request to the application and queues its answer.
    fn dispatch(&mut self, index: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index(index) else {
            return;
        };
        let id = conn.id;
        core.scratch.clear();
        let reply = match conn.parser.last_request(conn.input.data()) {
            Some(request) => {
                let incoming = Incoming {
                    conn: id,
                    request,
                    body: &conn.body,
                };
                let mut ctx = context!(core);
                self.handler
                    .on_request(&mut ctx, &incoming, &mut core.scratch)
            }
            None => {
                // Cannot happen: the head is kept in the buffer until now.
                core.scratch = Response::text(500, "request head lost\n");
                Reply::Respond
            }
        };
        let handler_done = Instant::now();
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        conn.input.consume(conn.meta.head_len);
        if conn.body.capacity() > BODY_KEEP_BYTES {
            conn.body = Vec::new();
        } else {
            conn.body.clear();
        }
        let next = conn.next_cost();
        let mut cost = mem::replace(&mut conn.current, next);
        conn.current_started = !conn.input.is_empty();
        cost.handler_done = Some(handler_done);
        conn.inflight = Some(cost);
        answer(conn, &core.scratch, reply, &core.date.date, &mut core.stats);
        self.apply_actions();
    }

    /// Carries out what the handler asked for through its context.
    fn apply_actions(&mut self) {
        let core = &mut self.core;
        if core.actions.list.is_empty() {
            return;
        }
        let mut list = mem::take(&mut core.actions.list);
        let mut data = mem::take(&mut core.actions.data);
        for action in list.drain(..) {
            let id = match &action {
                Action::Respond(id, _)
                | Action::StartStream(id, _)
                | Action::Chunk(id, _)
                | Action::EndStream(id)
                | Action::Raw(id, _)
                | Action::Shared(id, _)
                | Action::Close(id) => *id,
            };
            let Some(conn) = core.conns.get_index_mut(id.index()).filter(|c| c.id == id) else {
                continue;
            };
            let before = conn.output.len();
            match action {
                Action::Respond(_, res) if conn.phase == Phase::Waiting => {
                    answer(conn, &res, Reply::Respond, &core.date.date, &mut core.stats);
                }
                Action::StartStream(_, res) if conn.phase == Phase::Waiting => {
                    answer(conn, &res, Reply::Stream, &core.date.date, &mut core.stats);
                }
                Action::Chunk(_, range) if conn.phase == Phase::Streaming => {
                    let bytes = data.get(range).unwrap_or_default();
                    if conn.meta.head_only {
                        // HEAD: the head went out, the body never does.
                    } else if conn.meta.chunked {
                        encode_chunk(&mut conn.output, bytes);
                    } else {
                        conn.output.extend_from_slice(bytes);
                    }
                    account_output(conn, &mut core.stats, before);
                }
                Action::EndStream(_) if conn.phase == Phase::Streaming => {
                    if conn.meta.chunked && !conn.meta.head_only {
                        encode_last_chunk(&mut conn.output);
                    }
                    account_output(conn, &mut core.stats, before);
                    finish_response(conn);
                    if conn.meta.keep_alive {
                        conn.phase = Phase::Head;
                    } else {
                        conn.phase = Phase::Closing;
                        conn.close_reason = CloseReason::Done;
                    }
                }
                Action::Raw(_, range) if conn.phase == Phase::Upgraded => {
                    conn.output
                        .extend_from_slice(data.get(range).unwrap_or_default());
                    account_output(conn, &mut core.stats, before);
                }
                Action::Shared(_, bytes) if conn.phase == Phase::Upgraded => {
                    conn.output.extend_from_slice(&bytes);
                    account_output(conn, &mut core.stats, before);
                }
                Action::Close(_) if conn.phase != Phase::Lingering => {
                    conn.phase = Phase::Closing;
                    conn.close_reason = CloseReason::Done;
                    conn.inflight = None;
                    conn.decoder = None;
                    conn.input.clear();
                }
                // Anything else no longer fits the connection's phase: dropped.
                _ => continue,
            }
            mark_dirty(core, id.index());
        }
        core.actions.list = list;
        data.clear();
        core.actions.data = data;
        core.actions.clear_pending();
    }

    /// Writes queued output until it is all written or `WouldBlock`.
    fn flush(&mut self, index: usize) -> Result<(), CloseReason> {
        let Server { core, handler, .. } = self;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return Ok(());
        };
        let mut wrote = false;
        while conn.out_pos < conn.output.len() {
            let result = conn
                .socket
                .write(conn.output.get(conn.out_pos..).unwrap_or_default());
            core.stats.write_calls += 1;
            conn.io.write_calls += 1;
            // The write is on behalf of the oldest response not yet written.
            if let Some((_, cost)) = conn.unwritten.front_mut() {
                cost.write_calls += 1;
            } else if let Some(cost) = conn.inflight.as_mut() {
                cost.write_calls += 1;
            } else {
                conn.current.write_calls += 1;
            }
            match result {
                Ok(0) => return Err(CloseReason::Error),
                Ok(n) => {
                    conn.out_pos += n;
                    conn.written_total += n as u64;
                    conn.io.bytes_out += n as u64;
                    core.stats.bytes_out += n as u64;
                    core.stats.queued_output_bytes =
                        core.stats.queued_output_bytes.saturating_sub(n as u64);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(CloseReason::Error),
            }
        }
        if !wrote {
            return Ok(());
        }
        let t = Instant::now();
        conn.last_activity = t;
        while let Some(&(end, _)) = conn.unwritten.front() {
            if end > conn.written_total {
                break;
            }
            if let Some((_, mut cost)) = conn.unwritten.pop_front() {
                cost.written = Some(t);
                core.stats.responses += 1;
                handler.on_request_done(&cost);
            }
        }
        if conn.out_pos >= conn.output.len() {
            if conn.output.capacity() > OUTPUT_KEEP_BYTES {
                conn.output = Vec::new();
            } else {
                conn.output.clear();
            }
            conn.out_pos = 0;
        } else if conn.out_pos >= conn.output.len() / 2 {
            // Keep the queue's memory proportional to what is queued, even when it
            // never drains completely (a stream to a slow reader).
            conn.output.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
        if conn.paused && !conn.backlogged(core.config.max_queued_output) {
            // Backpressure over: bytes may have arrived while READABLE was off.
            conn.paused = false;
            conn.read_ready = true;
        }
        Ok(())
    }

    /// After a drive: close if the exchange is over, set the poll interest and the
    /// deadline for what the connection waits for now.
    fn settle(&mut self, index: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        let queued = conn.queued();
        if queued == 0 && !conn.dirty {
            match conn.phase {
                Phase::Closing => {
                    // Everything is written: send FIN, then linger until the
                    // client closes too.
                    let _ = conn.socket.shutdown(Shutdown::Write);
                    if conn.read_closed {
                        let reason = conn.close_reason;
                        return self.close(index, reason);
                    }
                    conn.phase = Phase::Lingering;
                    conn.linger_since = core.now;
                    conn.input.clear();
                    // Bytes may be waiting already (a pipelined request after a bad
                    // one): read and discard them now.
                    conn.read_ready = true;
                    mark_dirty(core, index);
                }
                Phase::Lingering if conn.read_closed => {
                    let reason = conn.close_reason;
                    return self.close(index, reason);
                }
                Phase::Head | Phase::Body | Phase::Upgraded if conn.read_closed => {
                    // The client is done sending and everything it asked for is
                    // answered (what is left is at most a partial request).
                    return self.close(index, CloseReason::PeerClosed);
                }
                _ => {}
            }
        }
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        let bound = core.config.max_queued_output;
        let backlogged = conn.backlogged(bound);
        if backlogged && !conn.paused {
            conn.paused = true;
            core.stats.backpressure_pauses += 1;
        }
        let queued64 = queued as u64;
        if queued64 > core.stats.peak_queued_output_bytes {
            core.stats.peak_queued_output_bytes = queued64;
        }
        let want = if conn.paused {
            Interest::WRITABLE
        } else if queued > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if want != conn.interest {
            if core
                .registry
                .reregister(&mut conn.socket, Token(index), want)
                .is_err()
            {
                return self.close(index, CloseReason::Error);
            }
            conn.interest = want;
        }
        let config = &core.config;
        // Everything read is consumed: the buffer goes back to the loop, so an idle
        // connection holds none. One grown past the initial size for a burst (a
        // big head, a pipelined flood) is freed instead.
        if let Some(buf) = conn.input.take_storage()
            && buf.len() == config.read_buffer_bytes.max(1)
            && core.spare_inputs.len() < SPARE_READ_BUFFERS
        {
            core.spare_inputs.push(buf);
        }
        let deadline = match conn.phase {
            Phase::Head if conn.input.is_empty() && queued == 0 && conn.requests == 0 => {
                Some(conn.accepted + config.header_timeout)
            }
            Phase::Head if !conn.input.is_empty() && !backlogged => {
                Some(conn.current.first_byte + config.header_timeout)
            }
            Phase::Head | Phase::Closing => Some(conn.last_activity + config.idle_timeout),
            Phase::Body => Some(conn.body_progress + config.body_timeout),
            Phase::Lingering => Some(conn.linger_since + config.linger_timeout),
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => None,
        };
        set_deadline(conn, &mut core.timers, deadline);
    }

    /// Fires every deadline and timer that has passed.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        self.core.now = now;
        while let Some(expired) = self.core.timers.pop_expired(now) {
            match expired {
                Expired::User(id, data) => {
                    let core = &mut self.core;
                    let mut ctx = context!(core);
                    self.handler.on_timer(&mut ctx, id, data);
                    self.apply_actions();
                }
                Expired::Conn(id, at) => {
                    let core = &mut self.core;
                    let Some(conn) = core
                        .conns
                        .get_index_mut(id.index())
                        .filter(|c| c.id == id && c.scheduled == Some(at))
                    else {
                        continue; // a dead entry
                    };
                    conn.scheduled = None;
                    match conn.deadline {
                        None => {}
                        Some(deadline) if deadline > now => {
                            // The deadline moved later since this entry was pushed.
                            core.timers.push_conn(deadline, id);
                            conn.scheduled = Some(deadline);
                        }
                        Some(_) => self.timeout(id.index()),
                    }
                }
            }
        }
        // Dead entries (deadlines that moved earlier, cancelled timers) may not
        // outnumber live ones by much.
        let core = &mut self.core;
        let live = core.conns.len() + core.timers.live_user_timers();
        if core.timers.len() > 2 * live + 1024 {
            let conns = &core.conns;
            core.timers
                .compact(|id, at| conns.get(id).is_some_and(|c| c.scheduled == Some(at)));
        }
    }

    /// A connection's deadline passed.
    fn timeout(&mut self, index: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        let bound = core.config.max_queued_output;
        match conn.phase {
            Phase::Head if !conn.input.is_empty() && !conn.backlogged(bound) => {
                // RFC 9110 §15.5.9: 408, the head did not arrive in time.
                core.stats.timeouts += 1;
                reject(
                    core,
                    index,
                    Response::from_error(&HttpError::HeadTimeout),
                    CloseReason::Timeout,
                );
                mark_dirty(core, index);
            }
            Phase::Head | Phase::Closing => {
                // Idle between requests (or never sent anything): close quietly.
                core.stats.timeouts += 1;
                self.close(index, CloseReason::Timeout);
            }
            Phase::Body => {
                core.stats.timeouts += 1;
                let mut res = Response::text(
                    408,
                    "request body not received within the timeout (RFC 9110 section 15.5.9)\n",
                );
                res.set_close();
                reject(core, index, res, CloseReason::Timeout);
                mark_dirty(core, index);
            }
            Phase::Lingering => {
                let reason = conn.close_reason;
                self.close(index, reason);
            }
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => {}
        }
    }

    /// Closes a connection now and tells the application.
    fn close(&mut self, index: usize, reason: CloseReason) {
        let core = &mut self.core;
        let Some(mut conn) = core.conns.remove(index) else {
            return;
        };
        let _ = core.registry.deregister(&mut conn.socket);
        core.stats.queued_output_bytes = core
            .stats
            .queued_output_bytes
            .saturating_sub(conn.queued() as u64);
        core.stats.connections_open = core.conns.len() as u64;
        let id = conn.id;
        drop(conn);
        let mut ctx = context!(core);
        self.handler.on_close(&mut ctx, id, reason);
        self.apply_actions();
    }
}

/// What the loop needs from a parsed head once the parser's borrow ends.
struct HeadFacts {
    head_len: usize,
    framing: Framing,
    version: Version,
    keep_alive: bool,
    head_only: bool,
    expects_continue: bool,
    label: Label,
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

/// Whether reading from `conn` now makes sense.
fn wants_read(conn: &Conn, config: &Config, max_input: usize) -> bool {
    conn.read_ready
        && !conn.read_closed
        && conn.phase != Phase::Closing
        && (conn.phase == Phase::Lingering || !conn.backlogged(config.max_queued_output))
        && !conn.input.is_full(max_input)
}

/// Queues `index` to be driven again before the loop blocks.
fn mark_dirty(core: &mut Core, index: usize) {
    if let Some(conn) = core.conns.get_index_mut(index)
        && !conn.dirty
    {
        conn.dirty = true;
        core.dirty.push(index);
    }
}

/// Sets a connection's deadline, pushing a heap entry only if it is earlier than
/// the one already scheduled (see [`timer`]).
fn set_deadline(conn: &mut Conn, timers: &mut Timers, deadline: Option<Instant>) {
    conn.deadline = deadline;
    if let Some(at) = deadline
        && conn.scheduled.is_none_or(|s| at < s)
    {
        timers.push_conn(at, conn.id);
        conn.scheduled = Some(at);
    }
}

/// Counts output appended since `before`.
fn account_output(conn: &mut Conn, stats: &mut ServerStats, before: usize) {
    let added = conn.output.len().saturating_sub(before) as u64;
    conn.out_total += added;
    stats.queued_output_bytes += added;
}

/// Encodes the handler's answer to the request in `conn.meta` and moves the
/// connection to the matching phase.
fn answer(conn: &mut Conn, res: &Response, reply: Reply, date: &HttpDate, stats: &mut ServerStats) {
    let meta = conn.meta;
    let before = conn.output.len();
    let mut enc = Encoding {
        version: meta.version,
        head_only: meta.head_only,
        close: false,
        date: Some(date),
    };
    if let Some(cost) = conn.inflight.as_mut() {
        cost.status = res.status();
    }
    match reply {
        Reply::Deferred => conn.phase = Phase::Waiting,
        Reply::Upgrade if res.status() == 101 => {
            res.encode(&mut conn.output, &enc);
            account_output(conn, stats, before);
            finish_response(conn);
            conn.phase = Phase::Upgraded;
        }
        Reply::Stream if res.status_allows_body() => {
            // RFC 9112 §7.1: chunked for HTTP/1.1. An HTTP/1.0 client does not
            // know chunked: the body then ends when the connection closes (§6.3).
            let chunked = meta.version == Version::Http11;
            let close = !meta.keep_alive || res.wants_close() || !chunked;
            enc.close = close;
            conn.meta.keep_alive = !close;
            conn.meta.chunked = chunked;
            res.encode_stream_head(&mut conn.output, &enc, chunked);
            account_output(conn, stats, before);
            conn.phase = Phase::Streaming;
        }
        _ => {
            let close = !meta.keep_alive || res.wants_close();
            enc.close = close;
            res.encode(&mut conn.output, &enc);
            account_output(conn, stats, before);
            finish_response(conn);
            if close {
                conn.phase = Phase::Closing;
                conn.close_reason = CloseReason::Done;
            } else {
                conn.phase = Phase::Head;
            }
        }
    }
}

/// The in-flight request's response is fully queued: its cost waits for the write.
fn finish_response(conn: &mut Conn) {
    if let Some(mut cost) = conn.inflight.take() {
        cost.bytes_out = conn.out_total.saturating_sub(conn.meta.out_start);
        conn.unwritten.push_back((conn.out_total, cost));
    }
}

/// Answers bad input: its status and rule, `Connection: close`, then close.
fn reject_error(core: &mut Core, index: usize, err: &HttpError) {
    let reason = if err.status() == 408 {
        CloseReason::Timeout
    } else {
        CloseReason::BadRequest
    };
    reject(core, index, Response::from_error(err), reason);
}

/// Queues `res` as the last response on the connection; nothing after it is read.
fn reject(core: &mut Core, index: usize, res: Response, reason: CloseReason) {
    let Some(conn) = core.conns.get_index_mut(index) else {
        return;
    };
    core.stats.error_responses.add(res.status());
    let next = conn.next_cost();
    let mut cost = mem::replace(&mut conn.current, next);
    if cost.label.as_bytes().is_empty() {
        let data = conn.input.data();
        cost.label = Label::new(start_line(data.get(..256).unwrap_or(data)));
    }
    cost.status = res.status();
    if cost.head_parsed.is_none() {
        // Rejected while the head was arriving: what came of it is its size.
        cost.head_bytes = conn.input.len() as u64;
    }
    conn.current_started = false;
    conn.input.clear();
    conn.decoder = None;
    conn.body.clear();
    conn.inflight = None;
    let before = conn.output.len();
    let enc = Encoding {
        version: Version::Http11,
        head_only: false,
        close: true,
        date: Some(&core.date.date),
    };
    res.encode(&mut conn.output, &enc);
    account_output(conn, &mut core.stats, before);
    // No handler ran: `handler_done` stays unset.
    cost.bytes_out = conn.output.len().saturating_sub(before) as u64;
    conn.unwritten.push_back((conn.out_total, cost));
    conn.phase = Phase::Closing;
    conn.close_reason = reason;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        assert_eq!(c.body_timeout, Duration::from_secs(30));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.linger_timeout, Duration::from_secs(2));
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_queued_output, 1024 * 1024);
        assert_eq!(c.read_buffer_bytes, 8 * 1024);
        assert_eq!(c.max_read_buffer_bytes, 64 * 1024);
    }

    #[test]
    fn start_line_skips_leading_empty_lines() {
        assert_eq!(
            start_line(b"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            b"GET / HTTP/1.1"
        );
        assert_eq!(start_line(b"GET /partial"), b"GET /partial");
        assert_eq!(start_line(b""), b"");
    }
}
