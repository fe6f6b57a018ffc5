//! Blocking servers beside the loop: a thread per connection, and a fixed pool of
//! threads.
//!
//! The notes' "Synchronous vs Asynchronous" says of a synchronous call: *once the
//! call is made, the caller is blocked*. A server built from blocking calls has one
//! caller per connection, a thread, and each of them blocks in one of three places:
//!
//! - **`accept()`** sleeps until a client connects;
//! - **`read()`** sleeps until the client's next bytes arrive, however long that
//!   takes (up to a timeout, here the connection's next deadline);
//! - **`write()`** sleeps while the kernel's send buffer is full, that is while the
//!   client does not read.
//!
//! While it sleeps, the thread can do nothing else: it serves one connection. So
//! serving N clients at once takes N threads. The loop ([`super::event_loop`])
//! makes the opposite choice: non-blocking sockets, one thread, and the kernel
//! (epoll) saying which socket has something to do.
//!
//! # Two ways to get the threads
//!
//! - **A thread per connection** ([`Model::ThreadPerConnection`]): one thread
//!   accepts, and spawns a thread for every connection it accepts. Nobody waits
//!   for a thread, but every open connection, an idle or slow one included, costs
//!   one. Past [`Config::max_connections`] open connections (or if the system
//!   refuses a new thread), a connection is answered `503` with `Retry-After` at
//!   once and closed, as the loop does.
//! - **A fixed pool** ([`Model::Pool`]): N threads, each accepting and serving one
//!   connection at a time, from start to close. At most N connections are served
//!   at once. The others wait **in the kernel's accept queue** (the listen backlog
//!   of a `std::net::TcpListener`, 128 connections; past it the kernel stops
//!   completing handshakes and the clients' SYNs are retried). There is no queue
//!   in user space: a connection waiting its turn costs the server nothing but
//!   the kernel's socket, and nobody reads it until a thread is free.
//!
//! # What a thread costs
//!
//! - **Stack**: Rust gives a spawned thread 2 MiB of stack (`RUST_MIN_STACK`
//!   changes it). That is address space reserved with `mmap`, plus a guard page;
//!   only the pages the thread touches become resident memory, a few KiB for a
//!   thread that parses a request. 10,000 threads reserve 20 GiB of address space
//!   but not of memory.
//! - **The kernel**: a task structure and a kernel stack (16 KiB on x86-64) per
//!   thread, and a scheduler entry: every byte that wakes a thread is a context
//!   switch into it.
//! - **The allocator**: glibc gives threads their own malloc arenas (up to 8 per
//!   core), each a separate region whose freed memory is kept.
//! - **This server**: per connection, the same state the loop keeps (the
//!   connection's state machine and buffers, a read buffer of
//!   [`Config::read_buffer_bytes`] while it reads), and one handler per thread.
//!   Spawning and joining a thread per connection costs a `clone()` and an
//!   `mmap`/`munmap` each: tens of microseconds.
//!
//! `examples/sync_vs_async.rs` measures these per server, in a child process of
//! its own: threads, peak resident memory, CPU time.
//!
//! # Why a slow client holds a pool thread
//!
//! A client that sends its request one byte at a time keeps its thread asleep in
//! `read()` between bytes: the thread cannot serve anyone else meanwhile, and
//! nothing but the connection's timeouts takes it back ([`Config::header_timeout`]:
//! a head must arrive within 10 s of its first byte, else 408 and close;
//! [`Config::body_timeout`]: 30 s between body bytes). N such clients hold all N
//! threads of a pool, and
//! every other client, however fast, waits in the accept queue until one of them
//! finishes: the pool *stalls*. A thread per connection gives the next client a
//! new thread instead, at the price of a thread (and its memory) per slow client.
//! The loop holds a slow client as a few hundred bytes of state in a table; its
//! one thread sleeps only when no socket at all has anything to do.
//!
//! # The same protocol as the loop
//!
//! The HTTP/1.1 rules are not written twice. Each connection is the loop's own
//! sans-I/O state machine (`h1::H1Conn`, built on [`crate::http::RequestParser`],
//! [`crate::http::BodyDecoder`] and [`crate::http::Response`]'s encoding): the
//! thread does the system calls, blocking, and the state machine decides what they
//! mean. So both servers answer the same bytes as the loop for the same requests:
//! keep-alive and pipelining (RFC 9112 §9.3), `100 Continue` (RFC 9110 §10.1.1),
//! every limit of [`crate::http::Limits`], bad input answered with its status and
//! `Connection: close`, then FIN and a bounded linger (RFC 9112 §9.6), and the
//! header, body and idle timeouts of [`Config`] (here a read timeout set to the
//! connection's next deadline: a blocking `read()` with a timeout is how a
//! blocking server keeps a clock).
//!
//! # The handler
//!
//! The servers call the same [`Handler`] as the loop. A handler's [`Context`] is
//! its view of the loop (timers, other connections, answering later); a blocking
//! server has no loop, so each thread gives its handler a context of its own with
//! no other connection in it, whose timers never fire and whose requests to send
//! are dropped. That is enough for a handler that answers at once
//! ([`Reply::Respond`]), as request/response does
//! ([`crate::patterns::request_response::RequestResponse`]). A handler that defers
//! its answer, streams it or upgrades the connection needs the loop: the blocking
//! servers answer such a request `501 Not Implemented` and close. Bodies are taken
//! whole ([`crate::server::BodyMode::Whole`]): the handler's
//! [`Handler::on_head`] is not asked.
//!
//! Each thread makes its own handler with the function given to
//! [`BlockingServer::spawn`] (a thread per connection: one per connection; a pool:
//! one per thread), so handlers share nothing unless the application shares it
//! itself, behind a lock: state shared between blocking threads is paid for with
//! a mutex, where the loop's one handler needs none.
//!
//! # Stopping
//!
//! [`BlockingServer::stop`] stops accepting (wakes the accepting threads with a
//! connection of its own), ends the read side of every open connection (a thread
//! asleep in `read()` wakes to an end of file, finishes what it was answering and
//! closes), waits up to [`Config::shutdown_grace`], closes what is still open, and
//! joins every thread.
//!
//! ```
//! use std::io::{Read, Write};
//! use wirepatterns::patterns::request_response::RequestResponse;
//! use wirepatterns::server::Config;
//! use wirepatterns::server::blocking::{BlockingServer, Model};
//!
//! let config = Config::new("127.0.0.1:0".parse().unwrap());
//! let server = BlockingServer::spawn(config, Model::Pool { threads: 4 }, RequestResponse::new)?;
//! let mut client = std::net::TcpStream::connect(server.addr())?;
//! client.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")?;
//! let mut answer = String::new();
//! client.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(answer.ends_with("\r\n\r\nhi"));
//! let stats = server.stop();
//! assert_eq!(stats.responses, 1);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::ConnId;
use super::actions::Actions;
use super::config::Config;
use super::conns::Slab;
use super::date_cache::DateCache;
use super::event_loop::over_limit_response;
use super::h1::{H1Conn, Step, WriteCall};
use super::handler::{BodyMode, CloseReason, Context, Handler, Incoming, Reply};
use super::ledger::ReadCall;
use super::outgoing::Outgoing;
use super::timer::Timers;
use crate::cost::ServerStats;
use crate::http::Response;

/// How a blocking server gets the threads that serve its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One accepting thread, and a new thread for every accepted connection.
    ThreadPerConnection,
    /// A fixed number of threads, each accepting and serving one connection at a
    /// time; connections beyond them wait in the kernel's accept queue.
    Pool {
        /// How many threads (at least 1).
        threads: usize,
    },
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Model::ThreadPerConnection => f.write_str("thread per connection"),
            Model::Pool { threads } => write!(f, "pool of {threads} threads"),
        }
    }
}

/// A blocking server's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockingStats {
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections answered `503` and closed: over [`Config::max_connections`],
    /// or a thread could not be spawned for them.
    pub connections_rejected: u64,
    /// Threads the system refused to spawn (each such connection was rejected).
    pub spawn_failures: u64,
    /// Request heads parsed.
    pub requests: u64,
    /// Responses whose last byte was written.
    pub responses: u64,
    /// Threads serving connections now (a pool's threads always count).
    pub threads_now: u64,
    /// The most threads serving connections at once.
    pub threads_peak: u64,
}

/// The totals, updated by every thread.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    spawn_failures: AtomicU64,
    requests: AtomicU64,
    responses: AtomicU64,
    threads_now: AtomicU64,
    threads_peak: AtomicU64,
}

/// What the server's threads share.
struct Shared {
    /// Limits and timeouts, as the loop's.
    config: Config,
    /// The read buffer's real maximum (as the loop computes it).
    max_input: usize,
    /// Set once [`BlockingServer::stop`] is called.
    stop: AtomicBool,
    /// Every open connection (a second handle to its socket), so that stopping
    /// can wake a thread asleep in `read()` by ending the socket's read side.
    open: Mutex<HashMap<u64, TcpStream>>,
    /// Signalled whenever a connection leaves `open`.
    closed: Condvar,
    /// Connection numbers handed out.
    serials: AtomicU64,
    /// The totals.
    counters: Counters,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn stats(&self) -> BlockingStats {
        let c = &self.counters;
        BlockingStats {
            connections_accepted: c.accepted.load(Ordering::Relaxed),
            connections_open: self.open().len() as u64,
            connections_rejected: c.rejected.load(Ordering::Relaxed),
            spawn_failures: c.spawn_failures.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            responses: c.responses.load(Ordering::Relaxed),
            threads_now: c.threads_now.load(Ordering::Relaxed),
            threads_peak: c.threads_peak.load(Ordering::Relaxed),
        }
    }

    /// A serving thread starts.
    fn thread_started(&self) {
        let c = &self.counters;
        let now = c.threads_now.fetch_add(1, Ordering::Relaxed) + 1;
        c.threads_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// A serving thread ends.
    fn thread_ended(&self) {
        self.counters.threads_now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A blocking server running on its threads: where it listens, its totals, and
/// [`BlockingServer::stop`].
pub struct BlockingServer {
    /// Where it listens.
    addr: SocketAddr,
    /// How it serves.
    model: Model,
    /// What its threads share.
    shared: Arc<Shared>,
    /// The accepting threads (a pool's threads serve too). A thread per
    /// connection's acceptor returns the handles of connection threads still
    /// running when it stops.
    acceptors: Vec<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl fmt::Debug for BlockingServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingServer")
            .field("addr", &self.addr)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl BlockingServer {
    /// Binds `config.addr` and starts serving on threads as `model` says, each
    /// thread with a handler made by `make_handler`. A config that makes no sense
    /// ([`Config::validate`]) or a pool of 0 threads is an `InvalidInput` error.
    pub fn spawn<H, F>(config: Config, model: Model, make_handler: F) -> io::Result<BlockingServer>
    where
        H: Handler,
        F: Fn() -> H + Send + Sync + 'static,
    {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if model == (Model::Pool { threads: 0 }) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pool needs at least 1 thread",
            ));
        }
        let listener = Arc::new(TcpListener::bind(config.addr)?);
        let addr = listener.local_addr()?;
        let max_input = config
            .max_read_buffer_bytes
            .max(config.limits.max_head_bytes.saturating_add(1024))
            .max(config.read_buffer_bytes)
            .max(1);
        let shared = Arc::new(Shared {
            config,
            max_input,
            stop: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            closed: Condvar::new(),
            serials: AtomicU64::new(0),
            counters: Counters::default(),
        });
        let make_handler = Arc::new(make_handler);
        let mut acceptors = Vec::new();
        let server = |acceptors: Vec<JoinHandle<Vec<JoinHandle<()>>>>| BlockingServer {
            addr,
            model,
            shared: Arc::clone(&shared),
            acceptors,
        };
        match model {
            Model::ThreadPerConnection => {
                let (shared, listener) = (Arc::clone(&shared), Arc::clone(&listener));
                let spawned = thread::Builder::new()
                    .name("blocking-accept".into())
                    .spawn(move || accept_and_spawn(&listener, &shared, make_handler));
                match spawned {
                    Ok(handle) => acceptors.push(handle),
                    Err(e) => return Err(e),
                }
            }
            Model::Pool { threads } => {
                for i in 0..threads {
                    let (shared, listener) = (Arc::clone(&shared), Arc::clone(&listener));
                    let make_handler = Arc::clone(&make_handler);
                    let spawned = thread::Builder::new()
                        .name(format!("blocking-pool-{i}"))
                        .spawn(move || {
                            pool_worker(&listener, &shared, make_handler.as_ref());
                            Vec::new()
                        });
                    match spawned {
                        Ok(handle) => acceptors.push(handle),
                        Err(e) => {
                            // Stop the threads already started before failing.
                            server(acceptors).stop();
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(server(acceptors))
    }

    /// Where the server listens (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How it serves.
    pub fn model(&self) -> Model {
        self.model
    }

    /// The totals so far.
    pub fn stats(&self) -> BlockingStats {
        self.shared.stats()
    }

    /// Stops gracefully (see [the module docs](self#stopping)), joins every
    /// thread, and returns the totals.
    pub fn stop(self) -> BlockingStats {
        let shared = &self.shared;
        shared.stop.store(true, Ordering::Release);
        // Wake every thread asleep in accept(): each takes one connection, sees
        // the flag and ends. A pool thread busy with a client checks the flag
        // before accepting again.
        let wake_addr = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        for _ in 0..self.acceptors.len() {
            let _ = TcpStream::connect_timeout(&wake_addr, Duration::from_millis(200));
        }
        // Threads asleep in read() wake to an end of file; what they are
        // answering is still written.
        for stream in shared.open().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + shared.config.shutdown_grace;
        let mut open = shared.open();
        while !open.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Past the grace: close what is left (a client that does not
                // read its response); blocked writes fail at once.
                for stream in open.values() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                break;
            }
            open = match shared.closed.wait_timeout(open, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        drop(open);
        for acceptor in self.acceptors {
            if let Ok(conn_threads) = acceptor.join() {
                for conn_thread in conn_threads {
                    let _ = conn_thread.join();
                }
            }
        }
        shared.stats()
    }
}

/// A thread per connection: accepts, and spawns a thread for each connection,
/// until the server stops. Returns the connection threads still running.
fn accept_and_spawn<H, F>(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    make_handler: Arc<F>,
) -> Vec<JoinHandle<()>>
where
    H: Handler,
    F: Fn() -> H + Send + Sync + 'static,
{
    let over_limit = over_limit_response(shared.config.max_connections);
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        let Some((mut stream, peer)) = accept(listener, shared) else {
            continue;
        };
        if shared.stopping() {
            break;
        }
        // Forget the threads that ended (now and then, so that this stays cheap).
        if threads.len() >= 64 && threads.len().is_power_of_two() {
            threads.retain(|t| !t.is_finished());
        }
        let open = shared.counters.threads_now.load(Ordering::Relaxed);
        if open >= shared.config.max_connections as u64 {
            reject(&mut stream, &over_limit, shared);
            continue;
        }
        let Ok(second) = stream.try_clone() else {
            continue;
        };
        let (conn_shared, make_handler) = (Arc::clone(shared), Arc::clone(&make_handler));
        // Counted before the thread runs, so that the limit above sees it.
        shared.thread_started();
        let spawned = thread::Builder::new()
            .name("blocking-conn".into())
            .spawn(move || {
                let mut handler = make_handler();
                serve(stream, peer, &mut handler, &conn_shared);
                conn_shared.thread_ended();
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(_) => {
                shared.thread_ended();
                shared
                    .counters
                    .spawn_failures
                    .fetch_add(1, Ordering::Relaxed);
                let mut stream = second;
                reject(&mut stream, &over_limit, shared);
            }
        }
    }
    threads.retain(|t| !t.is_finished());
    threads
}

/// One thread of a pool: accepts a connection, serves it to the end, accepts the
/// next, until the server stops.
fn pool_worker<H: Handler, F: Fn() -> H>(listener: &TcpListener, shared: &Shared, make: &F) {
    shared.thread_started();
    let mut handler = make();
    while !shared.stopping() {
        let Some((stream, peer)) = accept(listener, shared) else {
            continue;
        };
        if shared.stopping() {
            break;
        }
        serve(stream, peer, &mut handler, shared);
    }
    shared.thread_ended();
}

/// Blocks in `accept()`; `None` if it failed (after a pause, if the failure was
/// for lack of resources).
fn accept(listener: &TcpListener, shared: &Shared) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept() {
        Ok(accepted) => Some(accepted),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
            ) =>
        {
            None
        }
        Err(_) => {
            // Out of descriptors or memory: the connection stays in the backlog.
            if !shared.stopping() {
                thread::sleep(Duration::from_millis(10));
            }
            None
        }
    }
}

/// Answers a connection the server cannot take `503` (encoded once, as the
/// loop's), without reading its request, and closes it.
fn reject(stream: &mut TcpStream, answer: &[u8], shared: &Shared) {
    shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(answer);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Serves one connection to its end, blocking, on the calling thread.
fn serve<H: Handler>(stream: TcpStream, peer: SocketAddr, handler: &mut H, shared: &Shared) {
    let serial = shared.serials.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(second) = stream.try_clone() else {
        return;
    };
    {
        // Registered under the lock `stop` sweeps with: a connection either
        // sees the stop, or is swept by it.
        let mut open = shared.open();
        if shared.stopping() {
            return;
        }
        open.insert(serial, second);
    }
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    // Responses are written whole; Nagle's algorithm would only delay them.
    let _ = stream.set_nodelay(true);
    // A client that does not read its response for this long is dropped, as
    // the loop drops it after its idle timeout.
    let _ = stream.set_write_timeout(Some(shared.config.idle_timeout));
    let mut conn = BlockingConn {
        stream,
        h1: H1Conn::new(serial, peer, shared.config.limits, Instant::now()),
        id: ConnId { serial, index: 0 },
        app: AppSide::default(),
        date: DateCache::now(),
    };
    let reason = conn.run(handler, shared);
    {
        let mut open = shared.open();
        open.remove(&serial);
        shared.closed.notify_all();
    }
    // No other connection exists in this handler's world.
    let mut ctx = conn.app.context();
    handler.on_close(&mut ctx, conn.id, reason);
}

/// What a handler's [`Context`] is made of, when there is no loop: no other
/// connection, timers that never fire, actions that are dropped.
#[derive(Default)]
struct AppSide {
    conns: Slab,
    timers: Timers,
    actions: Actions,
    stats: ServerStats,
    /// Outgoing connections asked for: never started here (no loop).
    outgoing: Outgoing,
    /// The response handed to the handler, cleared and reused.
    scratch: Response,
}

impl AppSide {
    fn context(&mut self) -> Context<'_> {
        Context {
            now: Instant::now(),
            conns: &self.conns,
            timers: &mut self.timers,
            actions: &mut self.actions,
            stats: &self.stats,
            outgoing: &mut self.outgoing,
        }
    }

    /// Drops what the handler asked its context for: there is no loop to do it.
    fn forget_actions(&mut self) {
        self.actions.list.clear();
        self.actions.data.clear();
        let wakes = self.actions.take_wakes();
        self.actions.return_wakes(wakes);
        self.actions.clear_pending();
        if self.timers.len() > 0 {
            self.timers = Timers::default();
        }
    }
}

/// One connection served by one thread: the socket, and the loop's state machine.
struct BlockingConn {
    stream: TcpStream,
    h1: H1Conn,
    id: ConnId,
    app: AppSide,
    date: DateCache,
}

impl BlockingConn {
    /// Reads, answers and writes until the connection is done; returns why.
    fn run<H: Handler>(&mut self, handler: &mut H, shared: &Shared) -> CloseReason {
        let config = &shared.config;
        let mut ended = false;
        loop {
            self.date.refresh();
            // Answer every complete request already received (pipelining), in
            // order; write first if too much is queued.
            let mut now = Instant::now();
            loop {
                match self.h1.step(config, &self.date.date, now) {
                    Step::Request => now = self.dispatch(handler),
                    Step::Backlogged => {
                        if let Err(reason) = self.write_out(handler, shared) {
                            return reason;
                        }
                    }
                    Step::Idle => break,
                    // Bodies are taken whole here (the handler is not asked).
                    Step::Head => self.h1.choose_body(
                        BodyMode::Whole,
                        &Response::default(),
                        config,
                        &self.date.date,
                        now,
                    ),
                    // Never: an upgrade is refused with 501 (see `dispatch`), and
                    // no body is taken in parts.
                    Step::Upgraded | Step::BodyPart => return CloseReason::Error,
                }
            }
            // Blocks while the client does not read.
            if let Err(reason) = self.write_out(handler, shared) {
                return reason;
            }
            let settled = self.h1.settle(config, Instant::now(), false);
            let counters = &shared.counters;
            counters
                .requests
                .fetch_add(settled.tally.heads, Ordering::Relaxed);
            if let Some(reason) = settled.close {
                return reason;
            }
            if ended {
                // The state machine closes after an end of file once everything
                // is answered; this only guards against reading it again.
                return CloseReason::PeerClosed;
            }
            if settled.send_fin {
                // Bad input answered (or `Connection: close`): FIN, then linger.
                let _ = self.stream.shutdown(Shutdown::Write);
            }
            // Blocks until bytes arrive, the client closes, or the next
            // deadline passes (the read timeout).
            let now = Instant::now();
            let wait = match settled.deadline {
                Some(at) if at <= now => {
                    self.h1.on_deadline(config, &self.date.date, now);
                    continue;
                }
                Some(at) => at - now,
                None => config.idle_timeout,
            };
            let _ = self
                .stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
            let Some(space) = self
                .h1
                .read_space(config.read_buffer_bytes, shared.max_input)
            else {
                // A full buffer: the parser refuses a head before it gets there.
                return CloseReason::Error;
            };
            match self.stream.read(space) {
                Ok(0) => {
                    ended = true;
                    self.h1.on_read(ReadCall::Ended, Instant::now());
                }
                Ok(n) => self.h1.on_read(ReadCall::Data(n), Instant::now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.h1.on_deadline(config, &self.date.date, Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return CloseReason::Error,
            }
        }
    }

    /// Hands the complete request to the handler and queues its answer; returns
    /// when the handler returned.
    fn dispatch<H: Handler>(&mut self, handler: &mut H) -> Instant {
        let app = &mut self.app;
        app.scratch.clear();
        let reply = match self.h1.request() {
            Some((request, body)) => {
                let incoming = Incoming {
                    conn: self.id,
                    request,
                    body,
                };
                let mut ctx = Context {
                    now: Instant::now(),
                    conns: &app.conns,
                    timers: &mut app.timers,
                    actions: &mut app.actions,
                    stats: &app.stats,
                    outgoing: &mut app.outgoing,
                };
                handler.on_request(&mut ctx, &incoming, &mut app.scratch)
            }
            None => {
                // Cannot happen: the head stays in the buffer until answered.
                app.scratch = Response::text(500, "request head lost\n");
                Reply::Respond
            }
        };
        app.forget_actions();
        let reply = match reply {
            Reply::Respond => Reply::Respond,
            // As the loop: these replies with such a status are plain responses.
            Reply::Upgrade if app.scratch.status() != 101 => Reply::Respond,
            Reply::Stream if !app.scratch.status_allows_body() => Reply::Respond,
            Reply::Deferred | Reply::Stream | Reply::Upgrade => {
                // RFC 9110 §15.6.2: the server does not support what the
                // request needs.
                app.scratch = Response::text(
                    501,
                    "this blocking server answers requests at once only: a held, streamed \
                     or upgraded answer needs the event loop (RFC 9110 section 15.6.2)\n",
                );
                app.scratch.set_close();
                Reply::Respond
            }
        };
        let done = Instant::now();
        self.h1.answer(reply, &app.scratch, &self.date.date, done);
        done
    }

    /// Writes everything queued, blocking while the socket's buffer is full.
    fn write_out<H: Handler>(
        &mut self,
        handler: &mut H,
        shared: &Shared,
    ) -> Result<(), CloseReason> {
        let config = &shared.config;
        while !self.h1.output().is_empty() {
            let n = match self.stream.write(self.h1.output()) {
                Ok(0) => return Err(CloseReason::Error),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The write timeout: the client has not read for the idle timeout.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(CloseReason::Timeout);
                }
                Err(_) => return Err(CloseReason::Error),
            };
            let responses = &shared.counters.responses;
            self.h1
                .on_write(WriteCall::Wrote(n), config, Instant::now(), |cost| {
                    responses.fetch_add(1, Ordering::Relaxed);
                    handler.on_request_done(cost);
                });
        }
        Ok(())
    }
}
