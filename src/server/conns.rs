//! The loop's table of open connections, indexed by their poll token, and what
//! the loop keeps per connection beside its HTTP state: the socket, its readiness,
//! its poll interest and its entry in the timer heap.

use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;

use super::ConnId;
use super::h1::H1Conn;

/// One client connection, as the loop holds it.
pub(crate) struct Conn {
    /// Its id, as handed to the application.
    pub(crate) id: ConnId,
    /// The socket.
    pub(crate) socket: TcpStream,
    /// The HTTP/1.1 state machine: everything but the socket.
    pub(crate) h1: H1Conn,
    /// Readiness: `true` from a readable event until a read returns `WouldBlock`
    /// (mio is edge-triggered: no new event comes while data is left unread).
    pub(crate) read_ready: bool,
    /// The interest registered with the poll, to re-register only on change (each
    /// re-registration is a system call).
    pub(crate) interest: Interest,
    /// When the connection next needs [`H1Conn::on_deadline`], if ever.
    pub(crate) deadline: Option<Instant>,
    /// The time of this connection's entry in the timer heap, if it has one (see
    /// [`super::timer`] for why the two differ).
    pub(crate) scheduled: Option<Instant>,
    /// Queued in the loop's list of connections to drive again (so it is queued
    /// once, however many actions touch it).
    pub(crate) dirty: bool,
    /// The buffer capacity last counted in the server's totals for it.
    pub(crate) counted_capacity: usize,
    /// The queued output last counted in the server's totals for it.
    pub(crate) counted_queued: usize,
}

/// The open connections, indexed by the poll token.
#[derive(Default)]
pub(crate) struct Slab {
    /// Connection slots; `None` is free.
    slots: Vec<Option<Conn>>,
    /// Free slot indexes, reused before the vector grows.
    free: Vec<usize>,
    /// Connections in the slab.
    open: usize,
}

impl Slab {
    /// The index the next [`Slab::insert`] will use.
    pub(crate) fn next_index(&self) -> usize {
        self.free.last().copied().unwrap_or(self.slots.len())
    }

    /// Stores `conn` at [`Slab::next_index`].
    pub(crate) fn insert(&mut self, conn: Conn) -> usize {
        self.open += 1;
        match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.slots.get_mut(index) {
                    *slot = Some(conn);
                }
                index
            }
            None => {
                self.slots.push(Some(conn));
                self.slots.len() - 1
            }
        }
    }

    /// Takes a connection out.
    pub(crate) fn remove(&mut self, index: usize) -> Option<Conn> {
        let conn = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        self.open -= 1;
        Some(conn)
    }

    #[inline]
    pub(crate) fn get_index(&self, index: usize) -> Option<&Conn> {
        self.slots.get(index)?.as_ref()
    }

    #[inline]
    pub(crate) fn get_index_mut(&mut self, index: usize) -> Option<&mut Conn> {
        self.slots.get_mut(index)?.as_mut()
    }

    /// The connection `id`, if it is still open.
    #[inline]
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.get_index(id.index()).filter(|c| c.id == id)
    }

    /// The connection `id`, mutably, if it is still open.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.get_index_mut(id.index()).filter(|c| c.id == id)
    }

    /// Connections open.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.open
    }

    /// Indexes of all open connections.
    pub(crate) fn indexes(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i)
            .collect()
    }
}
