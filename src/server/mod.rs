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
//! # Where each part lives
//!
//! | file | concern |
//! |---|---|
//! | [`event_loop`] | the dispatcher, the only files with system calls: `mod.rs` the loop (`poll()`, accept, deadlines, shutdown), `drive.rs` one connection's reads, writes, poll interest and close, `calls.rs` the calls into the handler and what it asks for |
//! | `h1/` | one HTTP/1.1 connection as a sans-I/O state machine: `mod.rs` phases, keep-alive, pipelining, 100-continue, lingering close, backpressure; `time.rs` its deadlines, buffer release, shutdown grace and what the driver does after each drive; `tests.rs` a fake-clock test per transition and timeout |
//! | `input.rs` | a connection's read buffer, lent by the loop only while it holds bytes |
//! | `ledger.rs` | which request each `read()`, `write()` and byte is charged to |
//! | [`handler`] | what an application implements ([`Handler`]) and its view of the loop ([`Context`]) |
//! | `actions.rs` | what a handler asks through its context, queued until it returns |
//! | [`timer`] | the deadline heap: connection deadlines and application timers |
//! | `config.rs` | [`Config`]: every limit and timeout, each with a default |
//! | `conns.rs` | the table of open connections, by poll token |
//! | `handle.rs` | [`ServerHandle`] and [`Running`]: stopping the loop and reading its totals from other threads |
//! | [`blocking`] | not the loop: the same handler and HTTP/1.1 state machine served by blocking threads, one per connection or a fixed pool, to compare with it (`examples/sync_vs_async.rs`) |
//!
//! # What keeps it robust
//!
//! - **Backpressure.** A client can send requests without reading the responses.
//!   Once a connection's queued output passes [`Config::max_queued_output`] (or
//!   1024 responses wait to be written), the loop stops reading from it and stops
//!   parsing its buffered requests (it drops READABLE interest), until the client
//!   has read enough. Memory per connection stays bounded by that bound plus the
//!   read buffer's maximum (and a body being received, up to its limit).
//! - **One copy of a broadcast.** An upgraded connection can be written straight
//!   from the application's storage, a shared log of encoded frames where each
//!   connection is a byte cursor ([`Handler::source`], [`Context::wake_writer`]):
//!   no copy per connection, and the connection's private frames (a pong, a close)
//!   are written only between the log's frames. See [`handler`].
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
//! - **A connection limit**: past it, a new connection is answered `503` with
//!   `Retry-After` at once, without its request being read, and closed.
//! - **Graceful shutdown** ([`ServerHandle::shutdown`]): stop accepting, finish
//!   what is in progress within [`Config::shutdown_grace`], then close.
//! - **Memory comes back**: buffers grown for a burst are given back once a
//!   connection has been idle for [`Config::idle_release`]
//!   ([`ServerStats::buffer_capacity_bytes`] counts what is held).
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

pub(crate) mod actions;
pub mod blocking;
mod config;
pub(crate) mod conns;
mod date_cache;
pub mod event_loop;
mod h1;
mod handle;
pub mod handler;
mod input;
mod ledger;
pub mod outgoing;
pub mod timer;

use std::fmt;

pub use crate::cost::{IoCounters, ServerStats};
pub use config::{Config, ConfigError};
pub use event_loop::Server;
pub use handle::{Running, ServerHandle};
pub use handler::{BodyMode, BodyPart, CloseReason, Context, Handler, Incoming, Reply, Source};
pub use outgoing::{OutEnd, OutId};
pub use timer::TimerId;

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
