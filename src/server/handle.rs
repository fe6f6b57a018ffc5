//! Reaching a running server from other threads: stop it, read its totals.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::Waker;

use crate::cost::ServerStats;

/// What other threads share with the loop.
pub(crate) struct Shared {
    /// Wakes the loop from `poll()`.
    waker: Waker,
    /// Set to ask the loop to shut down.
    stop: AtomicBool,
    /// The totals, copied here once per turn of the loop.
    stats: Mutex<ServerStats>,
}

impl Shared {
    pub(crate) fn new(waker: Waker) -> Shared {
        Shared {
            waker,
            stop: AtomicBool::new(false),
            stats: Mutex::new(ServerStats::default()),
        }
    }

    /// Whether shutdown was asked for.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Copies the loop's totals for [`ServerHandle::stats`].
    pub(crate) fn publish(&self, stats: &ServerStats) {
        if let Ok(mut shared) = self.stats.lock() {
            *shared = *stats;
        }
    }
}

/// A handle to a running server, usable from any thread: stop it, read its totals.
#[derive(Clone)]
pub struct ServerHandle {
    /// The state shared with the loop.
    shared: Arc<Shared>,
}

impl ServerHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> ServerHandle {
        ServerHandle { shared }
    }

    /// Asks the server to shut down gracefully, and returns at once. The loop stops
    /// accepting, calls [`Handler::on_shutdown`](super::Handler::on_shutdown) (the
    /// WebSocket glue sends each client a 1001 close), closes connections that
    /// have nothing in progress, and lets the others finish: a request being
    /// answered gets its response (with `Connection: close`), queued output is
    /// written. Whatever is still open after
    /// [`Config::shutdown_grace`](super::Config::shutdown_grace) is closed. Then
    /// [`Server::run`](super::Server::run) returns.
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

/// A server running on its own thread; see [`Server::spawn`](super::Server::spawn).
pub struct Running<H> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its handle.
    pub handle: ServerHandle,
    /// The thread; it returns the handler when the server stops.
    thread: JoinHandle<io::Result<H>>,
}

impl<H> Running<H> {
    pub(crate) fn new(
        addr: SocketAddr,
        handle: ServerHandle,
        thread: JoinHandle<io::Result<H>>,
    ) -> Running<H> {
        Running {
            addr,
            handle,
            thread,
        }
    }

    /// Shuts the server down ([`ServerHandle::shutdown`]), waits for it to finish,
    /// and returns its handler.
    pub fn stop(self) -> io::Result<H> {
        self.handle.shutdown();
        self.thread
            .join()
            .map_err(|_| io::Error::other("server thread panicked"))?
    }
}
