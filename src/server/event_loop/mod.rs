//! The dispatcher: one thread, one `mio::Poll`, every socket.
//!
//! This file does the system calls and nothing else: it asks the kernel which
//! sockets are ready, accepts, reads until `WouldBlock`, writes until `WouldBlock`,
//! sets each socket's poll interest, and fires deadlines. What the bytes mean,
//! what to answer and when to close is decided by each connection's
//! `H1Conn`, which never sees a socket.
//!
//! One turn of the loop, from a readiness event to the handler and back:
//!
//! 1. `poll()` blocks until a socket is ready or the earliest deadline
//!    (`Server::poll_timeout`).
//! 2. The listener is ready: `Server::accept` until `WouldBlock`.
//! 3. A connection is ready: `Server::drive` it:
//!    - `Server::flush`: write what is queued, until done or `WouldBlock`;
//!    - `Server::read`: read until `WouldBlock`, end of file, or a full buffer;
//!    - `Server::process`: let the connection parse (`H1Conn::step`); a
//!      complete request goes to [`Handler::on_request`], bytes on an upgraded
//!      connection to [`Handler::on_upgraded_data`]; the answer goes back into the
//!      connection (`H1Conn::answer`) and what the handler asked through its
//!      context is carried out (`Server::apply_actions`);
//!    - flush again, so that the answers of one read leave in one `write()`;
//!    - `Server::settle`: close, send FIN, set the poll interest and the
//!      deadline, as the connection says (`H1Conn::settle`).
//! 4. Deadlines that passed fire (`Server::fire_timers`): application timers
//!    go to [`Handler::on_timer`], connection deadlines to
//!    `H1Conn::on_deadline`.
//! 5. Connections that actions touched are driven (`Server::drive_dirty`);
//!    [`Handler::on_turn_end`]; the totals are published for
//!    [`ServerHandle::stats`](super::ServerHandle::stats).
//!
//! mio's events are edge-triggered: an event means "something changed", and no new
//! event comes for bytes left unread, so a connection is read until `WouldBlock`
//! (its `read_ready` flag stays set until then). WRITABLE interest is asked for only
//! while output is queued (the connection's own, or bytes its handler's
//! [`Handler::source`] had left when the socket said `WouldBlock`): asking while
//! nothing is queued would wake the loop for nothing.

use std::io::{self, Write};
use std::mem;
use std::net::Shutdown;
use std::sync::Arc;

use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::ConnId;
use super::actions::Actions;
use super::config::Config;
use super::conns::{Conn, Slab};
use super::date_cache::DateCache;
use super::h1::H1Conn;
use super::handle::{Running, ServerHandle, Shared};
use super::handler::{CloseReason, Context, Handler};
use super::outgoing::{OUT_TOKEN_BASE, OutEnd, Outgoing};
use super::timer::{Expired, Timers};
use crate::cost::ServerStats;
use crate::http::Response;

/// The listener's poll token.
const LISTENER: Token = Token(usize::MAX);
/// The waker's poll token (shutdown requests from other threads).
const WAKER: Token = Token(usize::MAX - 1);
/// How many read/parse/write rounds one connection gets per wake-up before the loop
/// serves others (it comes back to it right after).
const MAX_ROUNDS: usize = 16;
/// Read buffers the loop keeps for lending, beyond those connections hold (see
/// [`Config::read_buffer_bytes`]); more are freed.
const SPARE_READ_BUFFERS: usize = 16;

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
    /// Buffer capacity held by connections, as last counted.
    conn_capacity: usize,
    /// Output queued on all connections, as last counted.
    queued_total: usize,
    /// The last time the loop had work (events, timers, actions): its own buffers
    /// are given back [`Config::idle_release`] after it.
    last_busy: Instant,
    /// The time at the start of this turn of the loop.
    now: Instant,
    /// Connection numbers handed out so far.
    serials: u64,
    /// When to try `accept()` again after it failed for lack of resources (with
    /// edge-triggered events, no new event would come for connections already
    /// waiting).
    accept_retry: Option<Instant>,
    /// When shutdown was asked for, once it was.
    shutdown_since: Option<Instant>,
    /// The answer to a connection over the limit, encoded once.
    over_limit: Vec<u8>,
    /// The connections the application asked the loop to open.
    outgoing: Outgoing,
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
            outgoing: &mut $core.outgoing,
        }
    };
}

mod calls;
mod drive;
mod outgoing;

/// The server: a listener, its connections, and the application.
pub struct Server<H> {
    /// The readiness poll.
    poll: Poll,
    /// The listening socket.
    listener: TcpListener,
    /// Where it listens (with the real port when port 0 was asked for).
    local_addr: std::net::SocketAddr,
    /// What [`ServerHandle`]s share.
    shared: Arc<Shared>,
    /// The application.
    handler: H,
    /// The loop's state.
    core: Core,
}

impl<H: Handler> Server<H> {
    /// Binds the listener and sets up the loop; nothing is accepted until
    /// [`Server::run`]. A config that makes no sense ([`Config::validate`]) is an
    /// `InvalidInput` error.
    pub fn bind(config: Config, handler: H) -> io::Result<Server<H>> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
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
        let now = Instant::now();
        let over_limit = over_limit_response(config.max_connections);
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
            conn_capacity: 0,
            queued_total: 0,
            last_busy: now,
            now,
            serials: 0,
            accept_retry: None,
            shutdown_since: None,
            over_limit,
            outgoing: Outgoing::default(),
            config,
        };
        Ok(Server {
            poll,
            listener,
            local_addr,
            shared: Arc::new(Shared::new(waker)),
            handler,
            core,
        })
    }

    /// Where the server listens.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }

    /// A handle to stop the server and read its totals from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle::new(Arc::clone(&self.shared))
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
        Ok(Running::new(addr, handle, thread))
    }

    /// Runs the loop until [`ServerHandle::shutdown`] is called and the shutdown
    /// is complete: every connection finished (or [`Config::shutdown_grace`]
    /// passed).
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(self.core.config.events_capacity.max(16));
        self.start();
        loop {
            if self.shared.stop_requested() && self.core.shutdown_since.is_none() {
                self.begin_shutdown();
            }
            if let Some(since) = self.core.shutdown_since
                && (self.core.conns.len() == 0
                    || since + self.core.config.shutdown_grace <= Instant::now())
            {
                break;
            }
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.core.now = Instant::now();
            self.core.date.refresh();
            if !events.is_empty() {
                self.core.last_busy = self.core.now;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(token) if token >= OUT_TOKEN_BASE => {
                        let readable =
                            event.is_readable() || event.is_read_closed() || event.is_error();
                        self.out_event(token - OUT_TOKEN_BASE, readable);
                    }
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
            self.drive_out_dirty();
            self.drive_dirty();
            self.drive_out_dirty();
            self.turn_end();
            // What the turn's end queued on outgoing connections (a batch of
            // pipelined commands) leaves in this turn.
            self.drive_out_dirty();
            self.release_idle_loop_buffers();
            self.publish();
        }
        for index in self.core.conns.indexes() {
            self.close(index, CloseReason::Shutdown);
        }
        for index in self.core.outgoing.indexes() {
            self.end_out(index, OutEnd::Closed);
        }
        self.publish();
        Ok(())
    }

    /// Shutdown was asked for: stop accepting, tell the handler, and let every
    /// connection finish what it is doing (see [`H1Conn::begin_shutdown`]).
    fn begin_shutdown(&mut self) {
        let now = Instant::now();
        self.core.now = now;
        self.core.shutdown_since = Some(now);
        self.core.accept_retry = None;
        let _ = self.poll.registry().deregister(&mut self.listener);
        // Connections first, so that answers the handler gives now already say
        // `Connection: close`.
        for index in self.core.conns.indexes() {
            if let Some(conn) = self.core.conns.get_index_mut(index) {
                conn.h1.begin_shutdown(now);
            }
            mark_dirty(&mut self.core, index);
        }
        let core = &mut self.core;
        let mut ctx = context!(core);
        self.handler.on_shutdown(&mut ctx);
        self.apply_actions();
        self.drive_dirty();
        self.publish();
    }

    /// How long `poll()` may block: until the earliest deadline, or not at all if
    /// connections are waiting to be driven again.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.core.dirty.is_empty() || !self.core.outgoing.dirty.is_empty() {
            return Some(Duration::ZERO);
        }
        let release =
            (self.loop_buffers() > 0).then(|| self.core.last_busy + self.core.config.idle_release);
        let grace = self
            .core
            .shutdown_since
            .map(|at| at + self.core.config.shutdown_grace);
        let next = [
            self.core.timers.next_deadline(),
            self.core.accept_retry,
            release,
            grace,
        ]
        .into_iter()
        .flatten()
        .min();
        next.map(|at| {
            let left = at.saturating_duration_since(Instant::now());
            // epoll counts in milliseconds: round up, or the loop would spin
            // through the last fraction of a millisecond.
            let ms = left.as_micros().div_ceil(1000);
            Duration::from_millis(ms.min(u64::MAX as u128) as u64)
        })
    }

    /// Bytes of storage the loop holds outside connections.
    fn loop_buffers(&self) -> usize {
        let core = &self.core;
        core.spare_inputs.iter().map(Vec::capacity).sum::<usize>()
            + core.actions.capacity()
            + core.dirty.capacity() * mem::size_of::<usize>()
    }

    /// Once the loop has been idle for [`Config::idle_release`], gives back what it
    /// grew for a burst: spare read buffers, the action queue, the dirty list.
    fn release_idle_loop_buffers(&mut self) {
        let core = &mut self.core;
        if core.now < core.last_busy + core.config.idle_release {
            return;
        }
        core.spare_inputs = Vec::new();
        core.actions.release();
        if core.dirty.is_empty() {
            core.dirty = Vec::new();
        }
    }

    /// Copies the totals to where [`ServerHandle::stats`] reads them.
    fn publish(&mut self) {
        let loop_buffers = self.loop_buffers();
        let core = &mut self.core;
        core.stats.connections_open = core.conns.len() as u64;
        core.stats.buffer_capacity_bytes = (core.conn_capacity + loop_buffers) as u64;
        core.stats.queued_output_bytes = core.queued_total as u64;
        self.shared.publish(&core.stats);
    }

    /// Accepts until `WouldBlock`.
    fn accept(&mut self) {
        if self.core.shutdown_since.is_some() {
            return;
        }
        loop {
            let core = &mut self.core;
            match self.listener.accept() {
                Ok((mut socket, peer)) => {
                    if core.conns.len() >= core.config.max_connections {
                        // At the limit: answer 503 at once, without reading the
                        // request, and close, so the client learns why rather
                        // than waiting in the backlog or seeing a bare reset.
                        core.stats.connections_rejected += 1;
                        core.stats.write_calls += 1;
                        if let Ok(n) = socket.write(&core.over_limit) {
                            core.stats.bytes_out += n as u64;
                        }
                        let _ = socket.shutdown(Shutdown::Write);
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
                        h1: H1Conn::new(core.serials, peer, core.config.limits, now),
                        read_ready: false,
                        interest: Interest::READABLE,
                        deadline: None,
                        scheduled: None,
                        dirty: false,
                        counted_capacity: 0,
                        counted_queued: 0,
                    };
                    if core
                        .registry
                        .register(&mut conn.socket, Token(index), Interest::READABLE)
                        .is_err()
                    {
                        continue;
                    }
                    let deadline = Some(now + core.config.header_timeout);
                    set_deadline(&mut conn, &mut core.timers, deadline);
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
                    core.stats.accept_failures += 1;
                    core.accept_retry = Some(Instant::now() + Duration::from_millis(10));
                    break;
                }
            }
        }
    }

    /// Fires every deadline and timer that was due when the pass began.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        self.core.now = now;
        self.core.timers.begin_pass();
        while let Some(expired) = self.core.timers.pop_expired(now) {
            self.core.last_busy = now;
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
                        Some(_) => {
                            conn.h1.on_deadline(&core.config, &core.date.date, now);
                            mark_dirty(core, id.index());
                        }
                    }
                }
            }
        }
        self.core.timers.end_pass();
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

    /// Closes a connection now and tells the application.
    fn close(&mut self, index: usize, reason: CloseReason) {
        // A body the handler was taking in parts ends here, incomplete.
        self.body_incomplete(index, true);
        let core = &mut self.core;
        let Some(mut conn) = core.conns.remove(index) else {
            return;
        };
        let _ = core.registry.deregister(&mut conn.socket);
        core.conn_capacity = core.conn_capacity.saturating_sub(conn.counted_capacity);
        core.queued_total = core.queued_total.saturating_sub(conn.counted_queued);
        core.stats.connections_open = core.conns.len() as u64;
        let id = conn.id;
        drop(conn);
        let mut ctx = context!(core);
        self.handler.on_close(&mut ctx, id, reason);
        self.apply_actions();
    }
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

/// Updates the loop's count of buffer capacity held by connections with `conn`'s.
fn count_capacity(conn: &mut Conn, total: &mut usize) {
    let now = conn.h1.capacity();
    *total = total.saturating_sub(conn.counted_capacity) + now;
    conn.counted_capacity = now;
}

/// Sets a connection's deadline, pushing a heap entry only if it is earlier than
/// the one already scheduled (see [`super::timer`]).
fn set_deadline(conn: &mut Conn, timers: &mut Timers, deadline: Option<Instant>) {
    conn.deadline = deadline;
    if let Some(at) = deadline
        && conn.scheduled.is_none_or(|s| at < s)
    {
        timers.push_conn(at, conn.id);
        conn.scheduled = Some(at);
    }
}

/// The answer to a connection over the limit: 503, when to retry, and close
/// (RFC 9110 §15.6.4, §10.2.3).
pub(crate) fn over_limit_response(max_connections: usize) -> Vec<u8> {
    let mut res = Response::text(
        503,
        &format!(
            "the server is at its connection limit ({max_connections} open); try again shortly\n"
        ),
    );
    res.header("Retry-After", "1");
    let mut out = Vec::new();
    res.encode(
        &mut out,
        &crate::http::response::Encoding {
            version: crate::http::Version::Http11,
            head_only: false,
            close: true,
            date: None,
        },
    );
    out
}
