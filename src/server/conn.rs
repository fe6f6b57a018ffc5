//! One connection's state: its socket, buffers, parser, and where it is in the
//! exchange; and the slab that holds all connections.
//!
//! A connection moves through these phases:
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
//! The read buffer keeps the bytes that arrived but are not consumed yet: a head
//! still arriving, a request pipelined behind one still being answered, or bytes
//! after a `101`. While a body is being decoded, the head stays at the front (the
//! parsed [`crate::http::Request`] points into it) and each batch of body bytes is
//! decoded into `body` and removed from behind the head.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;

use super::ConnId;
use crate::cost::RequestCost;
use crate::http::{BodyDecoder, RequestParser, Version};

/// Most responses queued on one connection and not yet written; past it, the
/// connection counts as backlogged whatever the bytes.
pub(crate) const MAX_UNWRITTEN_RESPONSES: usize = 1024;

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
    /// A last response is queued; close once it is written.
    Closing,
    /// Output written and FIN sent: reading and discarding what the peer still
    /// sends until it closes too (or the linger timeout passes), so that closing
    /// with unread bytes does not make the kernel send a reset that could destroy
    /// the response before the client reads it.
    Lingering,
}

/// What the loop remembers about the request being answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestMeta {
    /// Length of its head, which stays at the front of the read buffer until the
    /// request is dispatched.
    pub(crate) head_len: usize,
    /// Its version: decides chunked vs close-delimited streams and whether
    /// `Connection: keep-alive` is announced.
    pub(crate) version: Version,
    /// It was HEAD: the response gets no body.
    pub(crate) head_only: bool,
    /// The connection may be kept after the response (version and `Connection`).
    pub(crate) keep_alive: bool,
    /// The streaming response to it is chunked (else delimited by close).
    pub(crate) chunked: bool,
    /// The connection's output counter when its head was parsed, to count the bytes
    /// of its response.
    pub(crate) out_start: u64,
}

impl RequestMeta {
    pub(crate) const NONE: RequestMeta = RequestMeta {
        head_len: 0,
        version: Version::Http11,
        head_only: false,
        keep_alive: false,
        chunked: false,
        out_start: 0,
    };
}

/// A read buffer: `buf[start..end]` holds bytes received and not yet consumed.
///
/// `buf` is zero-filled once when it grows and then reused, so a read writes
/// straight into it with no per-read initialisation and no allocation.
///
/// A connection holds storage only while it has bytes to read or to consume: once
/// everything is consumed, the loop takes the storage back
/// ([`Input::take_storage`]) and lends it to the next connection that reads
/// ([`Input::give_storage`]). So thousands of idle connections hold no read
/// buffers, and a busy one still reads without allocating.
#[derive(Debug, Default)]
pub(crate) struct Input {
    /// The storage; its whole length is usable.
    buf: Vec<u8>,
    /// First unconsumed byte.
    start: usize,
    /// One past the last received byte.
    end: usize,
}

impl Input {
    /// The unconsumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The unconsumed bytes, to transform in place.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..self.end).unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` bytes from the front.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops `n` bytes starting `at` bytes from the front (the body bytes behind a
    /// head that must stay in place).
    pub(crate) fn remove(&mut self, at: usize, n: usize) {
        let from = (self.start + at).min(self.end);
        let to = (from + n).min(self.end);
        self.buf.copy_within(to..self.end, from);
        self.end -= to - from;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Makes sure there is free space after `end`: moves the data to the front if
    /// that frees some, else grows (doubling, from `initial`, up to `max`).
    /// `false` if the buffer is full at `max`.
    pub(crate) fn make_room(&mut self, initial: usize, max: usize) -> bool {
        if self.end < self.buf.len() {
            return true;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return true;
        }
        let len = self.buf.len();
        if len >= max {
            return false;
        }
        let new_len = if len == 0 { initial } else { len * 2 }.clamp(1, max);
        self.buf.resize(new_len, 0);
        true
    }

    /// The free space to read into.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let end = self.end;
        self.buf.get_mut(end..).unwrap_or_default()
    }

    /// Records that `n` bytes were read into [`Input::spare`].
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Whether the buffer is at `max` and full.
    pub(crate) fn is_full(&self, max: usize) -> bool {
        self.buf.len() >= max && self.start == 0 && self.end == self.buf.len()
    }

    /// Whether the buffer has storage to read into (see [`Input::take_storage`]).
    pub(crate) fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes the storage of a buffer whose bytes are all consumed, leaving it with
    /// none; `None` if bytes are waiting (they stay) or there is no storage.
    pub(crate) fn take_storage(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() || self.buf.is_empty() {
            return None;
        }
        self.start = 0;
        self.end = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Gives storage (taken from another buffer, so already initialised) to a
    /// buffer that has none; a buffer that has some keeps its own.
    pub(crate) fn give_storage(&mut self, buf: Vec<u8>) {
        if self.buf.is_empty() {
            self.buf = buf;
            self.start = 0;
            self.end = 0;
        }
    }
}

/// One client connection.
pub(crate) struct Conn {
    /// Its id, as handed to the application.
    pub(crate) id: ConnId,
    /// The socket.
    pub(crate) socket: TcpStream,
    /// The peer's address, for logs.
    pub(crate) peer: SocketAddr,
    /// Bytes received and not consumed yet.
    pub(crate) input: Input,
    /// The head parser; it remembers how far it searched across reads.
    pub(crate) parser: RequestParser,
    /// The body decoder while in [`Phase::Body`].
    pub(crate) decoder: Option<BodyDecoder>,
    /// The decoded body of the request in progress; reused between requests.
    pub(crate) body: Vec<u8>,
    /// Bytes to write: `output[out_pos..]` is still queued.
    pub(crate) output: Vec<u8>,
    /// How much of `output` has been written.
    pub(crate) out_pos: usize,
    /// Bytes ever appended to `output`, to tell which response a write finished.
    pub(crate) out_total: u64,
    /// Bytes ever written.
    pub(crate) written_total: u64,
    /// Where the connection is in its exchange.
    pub(crate) phase: Phase,
    /// The request being answered (valid from its head until its response is
    /// complete).
    pub(crate) meta: RequestMeta,
    /// Readiness: `true` from a readable event until a read returns `WouldBlock`
    /// (mio is edge-triggered: no new event comes while data is left unread).
    pub(crate) read_ready: bool,
    /// The peer closed its sending side (a read returned 0).
    pub(crate) read_closed: bool,
    /// Not being read because queued output passed the bound.
    pub(crate) paused: bool,
    /// The interest currently registered with the poll, to re-register only on
    /// change (each re-registration is a system call).
    pub(crate) interest: Interest,
    /// When the connection times out in its current phase, if it can.
    pub(crate) deadline: Option<Instant>,
    /// The time of this connection's entry in the timer heap, if it has one.
    pub(crate) scheduled: Option<Instant>,
    /// When it was accepted.
    pub(crate) accepted: Instant,
    /// When the last read that returned data came back.
    pub(crate) last_read: Instant,
    /// The last time bytes moved either way (for the idle timeout).
    pub(crate) last_activity: Instant,
    /// The last time body bytes arrived (for the body timeout).
    pub(crate) body_progress: Instant,
    /// When the linger phase began.
    pub(crate) linger_since: Instant,
    /// Costs of the request being received (reads are counted here).
    pub(crate) current: RequestCost,
    /// Whether `current` has seen its first byte.
    pub(crate) current_started: bool,
    /// The cost of the request handed to the handler and not fully answered yet.
    pub(crate) inflight: Option<RequestCost>,
    /// Answered requests whose response is still being written, oldest first, each
    /// with the `out_total` at which its last byte is written.
    pub(crate) unwritten: VecDeque<(u64, RequestCost)>,
    /// System calls and bytes on this connection so far.
    pub(crate) io: crate::cost::IoCounters,
    /// Requests parsed on this connection so far.
    pub(crate) requests: u64,
    /// Why the connection is closing, once that is decided.
    pub(crate) close_reason: super::CloseReason,
    /// Queued in the loop's list of connections to drive again (so it is queued
    /// once, however many actions touch it).
    pub(crate) dirty: bool,
}

impl Conn {
    /// Bytes queued for writing.
    pub(crate) fn queued(&self) -> usize {
        self.output.len().saturating_sub(self.out_pos)
    }

    /// Whether the client is behind on reading: more than `bound` bytes queued, or
    /// [`MAX_UNWRITTEN_RESPONSES`] responses waiting to be written (many tiny
    /// responses would otherwise pile up bookkeeping under the byte bound). While
    /// backlogged, the connection is neither read nor parsed.
    pub(crate) fn backlogged(&self, bound: usize) -> bool {
        self.queued() > bound || self.unwritten.len() >= MAX_UNWRITTEN_RESPONSES
    }

    /// A fresh cost record for the next request on this connection.
    pub(crate) fn next_cost(&self) -> RequestCost {
        RequestCost::new(
            self.id.serial(),
            self.requests,
            self.accepted,
            self.last_read,
        )
    }
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

    pub(crate) fn get_index(&self, index: usize) -> Option<&Conn> {
        self.slots.get(index)?.as_ref()
    }

    pub(crate) fn get_index_mut(&mut self, index: usize) -> Option<&mut Conn> {
        self.slots.get_mut(index)?.as_mut()
    }

    /// The connection `id`, if it is still open.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.get_index(id.index()).filter(|c| c.id == id)
    }

    /// Connections open.
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

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn input_keeps_unconsumed_bytes_across_reads() {
        let mut input = Input::default();
        assert!(input.make_room(4, 8));
        input.spare()[..4].copy_from_slice(b"abcd");
        input.filled(4);
        input.consume(1);
        assert_eq!(input.data(), b"bcd");
        // Full: compacts to the front rather than growing.
        assert!(input.make_room(4, 8));
        assert_eq!(input.data(), b"bcd");
        assert_eq!(input.spare().len(), 1);
        input.spare()[0] = b'e';
        input.filled(1);
        // Full with nothing consumed: grows.
        assert!(input.make_room(4, 8));
        assert_eq!(input.spare().len(), 4);
        input.spare().copy_from_slice(b"fghi");
        input.filled(4);
        assert!(!input.make_room(4, 8));
        assert!(input.is_full(8));
        // Remove from the middle (body bytes behind a head).
        input.remove(2, 3);
        assert_eq!(input.data(), b"bcghi");
        input.remove(4, 100);
        assert_eq!(input.data(), b"bcgh");
        input.consume(100);
        assert!(input.is_empty());
    }

    #[test]
    fn storage_moves_only_when_every_byte_is_consumed() {
        let mut input = Input::default();
        assert!(!input.has_storage());
        assert_eq!(input.take_storage(), None);
        assert!(input.make_room(4, 8));
        input.spare()[..2].copy_from_slice(b"ab");
        input.filled(2);
        // Bytes waiting: the storage stays.
        assert_eq!(input.take_storage(), None);
        input.consume(2);
        let storage = input
            .take_storage()
            .expect("empty buffer gives its storage");
        assert_eq!(storage.len(), 4);
        assert!(!input.has_storage());
        assert!(input.data().is_empty());
        assert!(input.spare().is_empty());

        // Lent to another buffer, which reads into it without allocating.
        let mut other = Input::default();
        other.give_storage(storage);
        assert!(other.has_storage());
        assert!(other.make_room(4, 8));
        assert_eq!(other.spare().len(), 4);
        other.spare()[..3].copy_from_slice(b"xyz");
        other.filled(3);
        assert_eq!(other.data(), b"xyz");
        // A buffer that has storage keeps its own (and its bytes).
        other.give_storage(vec![0; 16]);
        assert_eq!(other.data(), b"xyz");
        assert_eq!(other.spare().len(), 1);
    }
}
