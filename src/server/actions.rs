//! What a handler asks the loop to do, queued until the handler returns.
//!
//! A handler runs inside the loop, between system calls, and may ask for things on
//! any connection: answer a held request, send a part of a stream, write to an
//! upgraded connection, close. Doing them at once would mean borrowing the
//! connection table mutably in the middle of a callback that reads it, so each is
//! queued as an [`Action`] and carried out, in the order asked, as soon as the
//! callback returns. The bytes of all actions of one callback share one buffer,
//! so queueing a part allocates nothing once that buffer has grown.

use std::ops::Range;

use bytes::Bytes;

use super::ConnId;
use crate::http::Response;

/// Something the handler asked for, carried out by the loop when the handler
/// returns.
#[derive(Debug)]
pub(crate) enum Action {
    /// Answer a deferred request.
    Respond(ConnId, Response),
    /// Answer a deferred request with a streaming response.
    StartStream(ConnId, Response),
    /// Send one part of a streaming response: bytes `range` of [`Actions::data`].
    Chunk(ConnId, Range<usize>),
    /// End a streaming response.
    EndStream(ConnId),
    /// Write bytes `range` of [`Actions::data`] as they are (upgraded connections).
    Raw(ConnId, Range<usize>),
    /// Write shared bytes as they are (upgraded connections): one encoded frame
    /// queued for many connections without a copy per connection in the queue.
    Shared(ConnId, Bytes),
    /// Close the connection once its queued output is written.
    Close(ConnId),
    /// Close the connection now, dropping its queued output.
    Abort(ConnId),
    /// Stop reading from the connection until [`Action::ResumeReading`].
    PauseReading(ConnId),
    /// Read from the connection again, starting with what is buffered.
    ResumeReading(ConnId),
}

impl Action {
    /// The connection it is for.
    #[inline]
    pub(crate) fn conn(&self) -> ConnId {
        match self {
            Action::Respond(id, _)
            | Action::StartStream(id, _)
            | Action::Chunk(id, _)
            | Action::EndStream(id)
            | Action::Raw(id, _)
            | Action::Shared(id, _)
            | Action::Close(id)
            | Action::Abort(id)
            | Action::PauseReading(id)
            | Action::ResumeReading(id) => *id,
        }
    }
}

/// The queue of actions, and one buffer holding the bytes of all of them, so that
/// sending a part allocates nothing once the buffer has grown.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    /// The actions, in the order asked.
    pub(crate) list: Vec<Action>,
    /// The bytes of `Chunk` and `Raw` actions.
    pub(crate) data: Vec<u8>,
    /// Bytes asked to be sent on each connection (by slot index) during the current
    /// callback and not yet in its output buffer, so that
    /// [`Context::queued_bytes`] counts them: a broadcast that checks each client's
    /// backlog before queueing more must see what it queued a moment ago.
    pending: Vec<usize>,
    /// The slots with a non-zero `pending` entry, to reset them cheaply.
    touched: Vec<usize>,
    /// Connections to offer to their sockets ([`Context::wake_writer`]), each
    /// once however often it was woken.
    ///
    /// [`Context::wake_writer`]: super::Context::wake_writer
    pub(crate) wakes: Vec<ConnId>,
    /// Per slot index: already in `wakes`.
    woken: Vec<bool>,
}

impl Actions {
    #[inline]
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        start..self.data.len()
    }

    /// Counts `n` bytes as asked for on `conn`.
    #[inline]
    pub(crate) fn add_pending(&mut self, conn: ConnId, n: usize) {
        let index = conn.index();
        if self.pending.len() <= index {
            self.pending.resize(index + 1, 0);
        }
        if let Some(slot) = self.pending.get_mut(index) {
            if *slot == 0 {
                self.touched.push(index);
            }
            *slot = slot.saturating_add(n);
        }
    }

    /// Queues `conn` to be offered to its socket, unless it already is.
    #[inline]
    pub(crate) fn wake(&mut self, conn: ConnId) {
        let index = conn.index();
        if self.woken.len() <= index {
            self.woken.resize(index + 1, false);
        }
        if let Some(flag) = self.woken.get_mut(index)
            && !*flag
        {
            *flag = true;
            self.wakes.push(conn);
        }
    }

    /// Takes the woken connections (the list's storage is given back with
    /// [`Actions::return_wakes`]); each may be woken again afterwards.
    pub(crate) fn take_wakes(&mut self) -> Vec<ConnId> {
        for conn in &self.wakes {
            if let Some(flag) = self.woken.get_mut(conn.index()) {
                *flag = false;
            }
        }
        std::mem::take(&mut self.wakes)
    }

    /// Gives the wake list's storage back, emptied.
    pub(crate) fn return_wakes(&mut self, mut wakes: Vec<ConnId>) {
        if self.wakes.is_empty() {
            wakes.clear();
            self.wakes = wakes;
        }
    }

    /// Bytes asked for on the connection in slot `index` and not yet queued.
    #[inline]
    pub(crate) fn pending(&self, index: usize) -> usize {
        self.pending.get(index).copied().unwrap_or(0)
    }

    /// Bytes of storage held by the queue (its list and its byte buffer).
    pub(crate) fn capacity(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Action>()
            + self.data.capacity()
            + self.wakes.capacity() * std::mem::size_of::<ConnId>()
            + self.woken.capacity()
    }

    /// Gives the queue's storage back after a burst (the loop calls it once the
    /// server has been idle for `Config::idle_release`).
    pub(crate) fn release(&mut self) {
        if self.list.is_empty() {
            self.list = Vec::new();
        }
        if self.data.is_empty() {
            self.data = Vec::new();
        }
        self.pending = Vec::new();
        self.touched = Vec::new();
        if self.wakes.is_empty() {
            self.wakes = Vec::new();
            self.woken = Vec::new();
        }
    }

    /// The actions were carried out: nothing is pending any more.
    pub(crate) fn clear_pending(&mut self) {
        for index in self.touched.drain(..) {
            if let Some(slot) = self.pending.get_mut(index) {
                *slot = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_bytes_are_counted_per_connection_until_cleared() {
        let mut actions = Actions::default();
        let a = ConnId::new_for_tests(1, 3);
        let b = ConnId::new_for_tests(2, 0);
        actions.add_pending(a, 10);
        actions.add_pending(a, 5);
        actions.add_pending(b, 7);
        assert_eq!(actions.pending(3), 15);
        assert_eq!(actions.pending(0), 7);
        assert_eq!(actions.pending(1), 0);
        assert_eq!(actions.pending(99), 0);
        actions.clear_pending();
        assert_eq!(actions.pending(3), 0);
        assert_eq!(actions.pending(0), 0);
        assert!(actions.touched.is_empty());
    }

    #[test]
    fn waking_connections_many_times_queues_each_once() {
        let mut actions = Actions::default();
        let conns: Vec<ConnId> = (0..1000)
            .map(|i| ConnId::new_for_tests(i as u64 + 1, i))
            .collect();
        for _ in 0..1000 {
            for &conn in &conns {
                actions.wake(conn);
            }
        }
        assert_eq!(actions.wakes.len(), 1000);
        let taken = actions.take_wakes();
        assert_eq!(taken, conns);
        actions.return_wakes(taken);
        assert!(actions.wakes.is_empty());
        // Carried out: each can be woken again, once.
        actions.wake(conns[7]);
        actions.wake(conns[7]);
        assert_eq!(actions.wakes, vec![conns[7]]);
    }
}
