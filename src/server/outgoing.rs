//! Connections the loop opens itself: the client side of TCP, on the same loop
//! as the server side.
//!
//! A server that talks to a broker (Redis, for pub/sub) is a client of it. Doing
//! that with a blocking socket, or on a thread of its own, would stall the loop
//! or share its state across threads; instead the loop connects out the way it
//! accepts: non-blocking, readiness-driven, with no protocol of its own. The
//! application asks for a connection ([`Context::connect`]) and is told when it
//! is up ([`Handler::on_out_connected`]), what arrives on it
//! ([`Handler::on_out_data`]) and when it ends, once and why
//! ([`Handler::on_out_closed`]). What it sends ([`Context::send_out`]) is queued
//! and written by the loop, in order; bytes sent before the connection is up
//! wait for it, so a client can queue its first commands with the connect.
//!
//! A non-blocking `connect()` (POSIX `connect(2)`, `EINPROGRESS`) returns at once;
//! the socket becomes *writable* when the handshake is done or failed. The loop
//! then reads the socket's pending error (`SO_ERROR`): none means connected. A
//! refused or unreachable peer is an [`OutEnd::ConnectFailed`]; how long to wait
//! for a peer that never answers, and when to try again, is the application's
//! policy (a timer and [`Context::close_out`]): the RESP link's backoff is one
//! ([`crate::resp::link`]).
//!
//! Outgoing connections are few (a broker link or two), so the table is a small
//! slab and the poll tokens sit in a range of their own, above any accepted
//! connection's.
//!
//! [`Context::connect`]: super::Context::connect
//! [`Context::send_out`]: super::Context::send_out
//! [`Context::close_out`]: super::Context::close_out
//! [`Handler::on_out_connected`]: super::Handler::on_out_connected
//! [`Handler::on_out_data`]: super::Handler::on_out_data
//! [`Handler::on_out_closed`]: super::Handler::on_out_closed

use std::fmt;
use std::io;
use std::net::SocketAddr;

use mio::Interest;
use mio::net::TcpStream;

use crate::cost::IoCounters;

/// The first poll token of outgoing connections: accepted connections use their
/// slab index, which never comes near it.
pub(crate) const OUT_TOKEN_BASE: usize = usize::MAX / 2;

/// An outgoing connection, as the application knows it. Ids are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutId {
    /// Its number: 1 for the first connection asked for, and so on.
    serial: u64,
    /// Its slot in the loop's table.
    index: usize,
}

impl OutId {
    /// The connection's number (1 for the first one asked for).
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

impl fmt::Display for OutId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out {}", self.serial)
    }
}

/// Why an outgoing connection ended ([`super::Handler::on_out_closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutEnd {
    /// It never connected: refused, unreachable, or the socket could not be made.
    ConnectFailed(io::ErrorKind),
    /// The peer closed it (end of file).
    PeerClosed,
    /// A read or a write failed (a reset, for one).
    Error(io::ErrorKind),
    /// The application closed it ([`super::Context::close_out`]), or the server
    /// is shutting down.
    Closed,
}

impl fmt::Display for OutEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutEnd::ConnectFailed(kind) => write!(f, "could not connect ({kind})"),
            OutEnd::PeerClosed => f.write_str("closed by the peer"),
            OutEnd::Error(kind) => write!(f, "failed ({kind})"),
            OutEnd::Closed => f.write_str("closed"),
        }
    }
}

/// Where an outgoing connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Asked for; the loop has not called `connect()` yet.
    Asked,
    /// `connect()` is in progress.
    Connecting,
    /// Connected: reading and writing.
    Open,
}

/// One outgoing connection, as the loop holds it.
pub(crate) struct OutConn {
    /// Its id.
    pub(crate) id: OutId,
    /// Where to.
    pub(crate) addr: SocketAddr,
    /// The socket, once `connect()` was called.
    pub(crate) socket: Option<TcpStream>,
    /// Where it is.
    pub(crate) state: OutState,
    /// Bytes to write, from `written` on.
    pub(crate) output: Vec<u8>,
    /// Bytes of `output` already written.
    pub(crate) written: usize,
    /// The application asked to close once `output` is written.
    pub(crate) closing: bool,
    /// Readable since the last read that returned `WouldBlock`.
    pub(crate) read_ready: bool,
    /// The interest registered with the poll.
    pub(crate) interest: Option<Interest>,
    /// In the table's dirty list.
    pub(crate) dirty: bool,
    /// Not read until resumed ([`super::Context::pause_out`]).
    pub(crate) paused: bool,
    /// What it cost.
    pub(crate) io: IoCounters,
}

impl OutConn {
    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.output.len().saturating_sub(self.written)
    }
}

/// The outgoing connections.
#[derive(Default)]
pub(crate) struct Outgoing {
    /// Slots; `None` is free.
    slots: Vec<Option<OutConn>>,
    /// Free slot indexes.
    free: Vec<usize>,
    /// Ids handed out so far.
    serials: u64,
    /// Slots to drive before the loop blocks again.
    pub(crate) dirty: Vec<usize>,
    /// The buffer reads land in, lent to [`super::Handler::on_out_data`].
    pub(crate) read_buf: Vec<u8>,
}

impl Outgoing {
    /// A new connection to `addr`, to be started by the loop.
    pub(crate) fn ask(&mut self, addr: SocketAddr) -> OutId {
        self.serials += 1;
        let index = self.free.pop().unwrap_or(self.slots.len());
        let id = OutId {
            serial: self.serials,
            index,
        };
        let conn = OutConn {
            id,
            addr,
            socket: None,
            state: OutState::Asked,
            output: Vec::new(),
            written: 0,
            closing: false,
            read_ready: false,
            interest: None,
            dirty: false,
            paused: false,
            io: IoCounters::default(),
        };
        if index == self.slots.len() {
            self.slots.push(Some(conn));
        } else if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(conn);
        }
        self.mark_dirty(index);
        id
    }

    /// The connection `id`, if it is still open.
    pub(crate) fn get(&self, id: OutId) -> Option<&OutConn> {
        self.slots
            .get(id.index)
            .and_then(Option::as_ref)
            .filter(|c| c.id == id)
    }

    /// The connection `id`, mutably, if it is still open.
    pub(crate) fn get_mut(&mut self, id: OutId) -> Option<&mut OutConn> {
        self.slots
            .get_mut(id.index)
            .and_then(Option::as_mut)
            .filter(|c| c.id == id)
    }

    /// The connection in slot `index`.
    pub(crate) fn get_index_mut(&mut self, index: usize) -> Option<&mut OutConn> {
        self.slots.get_mut(index).and_then(Option::as_mut)
    }

    /// Takes the connection in slot `index` out of the table.
    pub(crate) fn remove(&mut self, index: usize) -> Option<OutConn> {
        let conn = self.slots.get_mut(index).and_then(Option::take)?;
        self.free.push(index);
        Some(conn)
    }

    /// Queues slot `index` to be driven before the loop blocks.
    pub(crate) fn mark_dirty(&mut self, index: usize) {
        if let Some(conn) = self.slots.get_mut(index).and_then(Option::as_mut)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(index);
        }
    }

    /// Appends `data` to `id`'s output; `false` if it is closed or closing.
    pub(crate) fn send(&mut self, id: OutId, data: &[u8]) -> bool {
        let Some(conn) = self.get_mut(id).filter(|c| !c.closing) else {
            return false;
        };
        if conn.written == conn.output.len() {
            conn.output.clear();
            conn.written = 0;
        }
        conn.output.extend_from_slice(data);
        self.mark_dirty(id.index);
        true
    }

    /// Asks `id` to close once its output is written.
    pub(crate) fn close(&mut self, id: OutId) {
        if let Some(conn) = self.get_mut(id) {
            conn.closing = true;
            self.mark_dirty(id.index);
        }
    }

    /// Stops or restarts reading `id`. Restarting reads at once: bytes may have
    /// arrived meanwhile, and no new readiness event comes for them.
    pub(crate) fn set_paused(&mut self, id: OutId, paused: bool) {
        if let Some(conn) = self.get_mut(id) {
            if conn.paused && !paused {
                conn.read_ready = true;
                conn.paused = false;
                self.mark_dirty(id.index);
            } else {
                conn.paused = paused;
            }
        }
    }

    /// Closes `id` now, dropping what it has not written.
    pub(crate) fn abort(&mut self, id: OutId) {
        if let Some(conn) = self.get_mut(id) {
            conn.closing = true;
            conn.output = Vec::new();
            conn.written = 0;
            self.mark_dirty(id.index);
        }
    }

    /// Slot indexes of every open connection.
    pub(crate) fn indexes(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|_| i))
            .collect()
    }
}
