//! A connection's read buffer, and how idle connections hold none.
//!
//! Bytes arrive from the socket in pieces that need not match messages: a head cut
//! in two, three pipelined requests in one read, a WebSocket frame split anywhere.
//! [`Input`] keeps what arrived and is not consumed yet, in one contiguous slice, so
//! that a parser always sees every byte of the message in progress.

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
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The unconsumed bytes, to transform in place.
    #[inline]
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..self.end).unwrap_or_default()
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops `n` bytes from the front.
    #[inline]
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
    #[inline]
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
    #[inline]
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let end = self.end;
        self.buf.get_mut(end..).unwrap_or_default()
    }

    /// Records that `n` bytes were read into [`Input::spare`].
    #[inline]
    pub(crate) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Whether the buffer is at `max` and full.
    #[inline]
    pub(crate) fn is_full(&self, max: usize) -> bool {
        self.buf.len() >= max && self.start == 0 && self.end == self.buf.len()
    }

    /// Bytes of storage held (what the buffer costs, used or not).
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether the buffer has storage to read into (see [`Input::take_storage`]).
    #[inline]
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
