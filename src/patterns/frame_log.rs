//! One broadcast log of encoded frames, read by many connections at their own
//! byte cursor: the push hub's storage, memory by messages, not messages x
//! clients.
//!
//! # The idea
//!
//! A broadcast to N clients could queue the frame N times, once in each client's
//! output buffer. Then memory grows with messages x clients: a burst of 1,000
//! messages to 1,000 clients is a million copies. This log stores each frame
//! **once**, already encoded; a client is nothing but a cursor into it, and the
//! loop writes a client's pending span straight from the log.
//!
//! It is the same idea as the jobs' [`EventLog`](super::log::EventLog) (see
//! DESIGN's "One log, many readers"), in a different unit:
//!
//! | | `EventLog<T>` (jobs) | `FrameLog` (push) |
//! |---|---|---|
//! | what is stored | values, encoded per transport when read | frames, encoded once when appended |
//! | a cursor is | a sequence number (events seen) | a byte position (bytes written) |
//! | why | a job's few updates go out as HTTP, SSE or WebSocket | every reader gets the same bytes |
//! | a reader behind the tail | [`Read::Gap`](super::log::Read::Gap) | [`Pending::Fallen`] |
//!
//! A byte cursor is what a socket needs: a `write()` may take part of a frame, and
//! the next one resumes mid-frame at the exact byte. Frame boundaries are kept
//! too, so that a connection's private frames (a pong, a close frame) are written
//! only between log frames, never inside one a short write cut
//! ([`FrameLog::at_boundary`]).
//!
//! # Positions
//!
//! Every byte ever appended has an absolute position: the first byte is 0, and
//! positions are never reused. The log keeps the bytes from [`FrameLog::tail`] to
//! [`FrameLog::head`]; a reader at position `p` has `head - p` bytes to write.
//!
//! ```text
//!   tail                                                   head
//!    |  frame 7  |  frame 8   |  frame 9  |  frame 10  |
//!    ^ slowest reader          ^ reader B               ^ reader A (caught up)
//! ```
//!
//! # Bounded, and who waits
//!
//! The log holds at most `capacity` bytes. Space is freed only behind the slowest
//! reader: bytes every reader has written are dropped. When a frame does not fit,
//! [`FrameLog::append`] refuses ([`Full`]) and says who holds it back: the hub then
//! stops reading from senders (TCP pushes back on them) until that reader moves,
//! and cuts the reader off only if it makes no progress at all for a while. What
//! cannot be paced (a join notice, a message relayed from elsewhere) goes in with
//! [`FrameLog::force_append`], which drops the oldest frames to make room and
//! reports the readers that fell off the tail, to be closed with 1008: they are
//! told, never silently skipped.
//!
//! The readers' cursors are kept in an ordered set of `(cursor, reader)` as well,
//! so that the slowest one is found in O(log n) however many readers there are.
//!
//! The log is sans-I/O: no socket, no clock. It allocates only when it grows
//! (a ring of bytes and a ring of frame starts, up to their bounds).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

/// A reader of the log: a connection's handle on its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReaderId(u64);

/// A frame did not fit: the log is full of bytes that a reader has not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// Bytes of the frame that was refused.
    pub needed: usize,
    /// Bytes free once everything the slowest reader has written is dropped.
    pub free: usize,
    /// The slowest reader, the one that holds the space.
    pub slowest: Option<ReaderId>,
}

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the broadcast log is full: a {} B frame, {} B free behind the slowest reader",
            self.needed, self.free
        )
    }
}

impl std::error::Error for Full {}

/// What a reader has to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending<'a> {
    /// These bytes, in order (two slices, because the ring wraps; either may be
    /// empty). Both empty: the reader is caught up.
    Bytes(&'a [u8], &'a [u8]),
    /// The reader's cursor is behind the tail: frames it had not written were
    /// dropped ([`FrameLog::force_append`]). It cannot continue without a gap.
    Fallen,
    /// No such reader.
    Unknown,
}

/// The broadcast log. See the [module documentation](self).
#[derive(Debug)]
pub struct FrameLog {
    /// The bytes from `tail` to `head`.
    bytes: VecDeque<u8>,
    /// The absolute position of `bytes[0]`.
    tail: u64,
    /// The absolute position at which each kept frame starts, oldest first.
    starts: VecDeque<u64>,
    /// The most bytes kept.
    capacity: usize,
    /// Each reader's cursor.
    cursors: BTreeMap<ReaderId, u64>,
    /// Every reader by its cursor, ordered: the slowest is the first.
    order: BTreeSet<(u64, ReaderId)>,
    /// The next reader's number.
    next_reader: u64,
    /// Frames appended in all.
    frames: u64,
}

impl FrameLog {
    /// An empty log that keeps at most `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> FrameLog {
        FrameLog {
            bytes: VecDeque::new(),
            tail: 0,
            starts: VecDeque::new(),
            capacity: capacity.max(1),
            cursors: BTreeMap::new(),
            order: BTreeSet::new(),
            next_reader: 0,
            frames: 0,
        }
    }

    /// The position of the oldest byte kept.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// The position after the newest byte: where the next frame goes, and the
    /// cursor of a reader that has written everything.
    pub fn head(&self) -> u64 {
        self.tail + self.bytes.len() as u64
    }

    /// Bytes kept now.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no byte is kept.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The most bytes kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frames appended in all.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Readers now.
    pub fn readers(&self) -> usize {
        self.cursors.len()
    }

    /// A new reader, at the head: it gets the frames appended from now on.
    pub fn add_reader(&mut self) -> ReaderId {
        let id = ReaderId(self.next_reader);
        self.next_reader += 1;
        let head = self.head();
        self.cursors.insert(id, head);
        self.order.insert((head, id));
        id
    }

    /// Forgets a reader; the bytes only it held back are dropped.
    pub fn remove_reader(&mut self, id: ReaderId) {
        if let Some(pos) = self.cursors.remove(&id) {
            self.order.remove(&(pos, id));
            self.trim();
        }
    }

    /// The cursor of a reader.
    pub fn cursor(&self, id: ReaderId) -> Option<u64> {
        self.cursors.get(&id).copied()
    }

    /// Bytes a reader has yet to write (0 for an unknown or fallen reader).
    pub fn lag(&self, id: ReaderId) -> u64 {
        match self.cursors.get(&id) {
            Some(&pos) if pos >= self.tail => self.head() - pos,
            _ => 0,
        }
    }

    /// The slowest reader and its cursor.
    pub fn slowest(&self) -> Option<(ReaderId, u64)> {
        self.order.first().map(|&(pos, id)| (id, pos))
    }

    /// What reader `id` has to write.
    pub fn pending(&self, id: ReaderId) -> Pending<'_> {
        let Some(&pos) = self.cursors.get(&id) else {
            return Pending::Unknown;
        };
        if pos < self.tail {
            return Pending::Fallen;
        }
        let skip = usize::try_from(pos - self.tail).unwrap_or(usize::MAX);
        let (front, back) = self.bytes.as_slices();
        match skip.checked_sub(front.len()) {
            Some(into_back) => Pending::Bytes(&[], back.get(into_back..).unwrap_or_default()),
            None => Pending::Bytes(front.get(skip..).unwrap_or_default(), back),
        }
    }

    /// Whether reader `id`'s cursor is between two frames (or caught up): the
    /// only place a connection's private frame may be written.
    pub fn at_boundary(&self, id: ReaderId) -> bool {
        match self.cursors.get(&id) {
            Some(&pos) => pos == self.head() || self.starts.binary_search(&pos).is_ok(),
            None => true,
        }
    }

    /// The end of the frame reader `id` is in the middle of: the bytes to write
    /// before a private frame may go. `None` at a boundary.
    pub fn frame_end(&self, id: ReaderId) -> Option<u64> {
        let pos = *self.cursors.get(&id)?;
        if pos < self.tail || pos >= self.head() {
            return None;
        }
        match self.starts.binary_search(&pos) {
            Ok(_) => None,
            Err(next) => Some(self.starts.get(next).copied().unwrap_or(self.head())),
        }
    }

    /// Reader `id` wrote `n` more bytes (at most its lag). Returns its new cursor.
    pub fn consume(&mut self, id: ReaderId, n: usize) -> Option<u64> {
        let head = self.head();
        let pos = *self.cursors.get(&id)?;
        if pos < self.tail {
            return Some(pos);
        }
        let new = pos.saturating_add(n as u64).min(head);
        if new != pos {
            self.order.remove(&(pos, id));
            self.order.insert((new, id));
            self.cursors.insert(id, new);
            self.trim();
        }
        Some(new)
    }

    /// The tail [`FrameLog::force_append`] would leave if it appended a frame of
    /// `len` bytes now: the readers whose cursor is before it would fall off. (A
    /// frame larger than the whole log is refused and leaves the tail as it is.)
    pub fn tail_after_forcing(&self, len: usize) -> u64 {
        if len > self.capacity {
            return self.tail;
        }
        let free = self.capacity - self.bytes.len();
        let Some(need) = len.checked_sub(free).filter(|&n| n > 0) else {
            return self.tail;
        };
        let need = need as u64;
        self.starts
            .iter()
            .copied()
            .find(|&start| start - self.tail >= need)
            .unwrap_or(self.head())
    }

    /// The readers whose cursor is before `pos`, slowest first, with their
    /// cursors (readers that fell off already included).
    pub fn readers_behind(&self, pos: u64) -> impl Iterator<Item = (ReaderId, u64)> + '_ {
        self.order
            .range(..(pos, ReaderId(0)))
            .map(|&(cursor, id)| (id, cursor))
    }

    /// Appends one frame, if it fits in what the slowest reader leaves free.
    /// Returns the frame's start position. A frame larger than the whole log
    /// never fits.
    pub fn append(&mut self, frame: &[u8]) -> Result<u64, Full> {
        self.trim();
        let free = self.capacity - self.bytes.len();
        if frame.len() > free {
            return Err(Full {
                needed: frame.len(),
                free,
                slowest: self.slowest().map(|(id, _)| id),
            });
        }
        Ok(self.push(frame))
    }

    /// Appends one frame whatever the readers: the oldest frames are dropped to
    /// make room, and the readers that had not written them fall off the tail
    /// (their ids, and those of readers that fell off before and are not yet
    /// removed, are pushed onto `fallen`: close them, with 1008, and remove them). A frame larger
    /// than the whole log is refused with [`Full`], as it could never be kept.
    pub fn force_append(&mut self, frame: &[u8], fallen: &mut Vec<ReaderId>) -> Result<u64, Full> {
        if frame.len() > self.capacity {
            return Err(Full {
                needed: frame.len(),
                free: self.capacity - self.bytes.len(),
                slowest: self.slowest().map(|(id, _)| id),
            });
        }
        self.trim();
        while self.capacity - self.bytes.len() < frame.len() {
            self.drop_oldest_frame();
        }
        // Readers behind the new tail fell off. They stay at their old cursor
        // (holding nothing back) until removed, and every call reports them.
        fallen.extend(
            self.order
                .range(..(self.tail, ReaderId(0)))
                .map(|&(_, id)| id),
        );
        Ok(self.push(frame))
    }

    fn push(&mut self, frame: &[u8]) -> u64 {
        let start = self.head();
        if !frame.is_empty() {
            self.bytes.extend(frame);
            self.starts.push_back(start);
        }
        self.frames += 1;
        start
    }

    /// Drops the oldest frame, whoever has not written it.
    fn drop_oldest_frame(&mut self) {
        let Some(start) = self.starts.pop_front() else {
            return;
        };
        let end = self.starts.front().copied().unwrap_or(self.head());
        let n = usize::try_from(end - start).unwrap_or(usize::MAX);
        self.bytes.drain(..n.min(self.bytes.len()));
        self.tail = end;
    }

    /// Drops the whole frames every reader has written (all of them, with no
    /// reader).
    fn trim(&mut self) {
        // Readers that fell off do not hold anything back.
        let floor = self
            .order
            .range((self.tail, ReaderId(0))..)
            .next()
            .map_or(self.head(), |&(pos, _)| pos);
        while let Some(&start) = self.starts.front() {
            let end = self.starts.get(1).copied().unwrap_or(self.head());
            if end > floor || start >= floor {
                break;
            }
            self.drop_oldest_frame();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(log: &FrameLog, id: ReaderId) -> Vec<u8> {
        match log.pending(id) {
            Pending::Bytes(a, b) => [a, b].concat(),
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn every_reader_gets_every_frame_once_at_its_own_pace() {
        let mut log = FrameLog::new(64);
        let a = log.add_reader();
        let b = log.add_reader();
        assert_eq!(log.append(b"one"), Ok(0));
        assert_eq!(log.append(b"two!"), Ok(3));
        assert_eq!(pending(&log, a), b"onetwo!");
        // A short write: a resumes mid-frame.
        assert_eq!(log.consume(a, 5), Some(5));
        assert_eq!(pending(&log, a), b"o!");
        assert!(!log.at_boundary(a));
        assert_eq!(log.frame_end(a), Some(7));
        assert_eq!(pending(&log, b), b"onetwo!");
        assert!(log.at_boundary(b));
        // Nothing is dropped until both have written it.
        assert_eq!(log.tail(), 0);
        // Once both have written frame 1, it is dropped; frame 2 stays for both.
        log.consume(b, 3);
        assert_eq!(log.tail(), 3);
        assert_eq!(pending(&log, b), b"two!");
        assert_eq!(pending(&log, a), b"o!");
    }

    #[test]
    fn tail_after_forcing_predicts_who_falls() {
        let mut log = FrameLog::new(10);
        let slow = log.add_reader();
        let mid = log.add_reader();
        log.append(b"aaaa").expect("fits");
        log.append(b"bbbb").expect("fits");
        log.consume(mid, 5); // inside "bbbb"
        assert_eq!(log.tail_after_forcing(2), 0, "fits without dropping");
        assert_eq!(log.tail_after_forcing(3), 4, "drops the first frame");
        assert_eq!(log.tail_after_forcing(7), 8, "drops both");
        assert_eq!(log.tail_after_forcing(11), 0, "refused: too large");
        let behind: Vec<ReaderId> = log.readers_behind(8).map(|(id, _)| id).collect();
        assert_eq!(behind, vec![slow, mid]);
        let tail = log.tail_after_forcing(7);
        let mut fallen = Vec::new();
        log.force_append(b"ccccccc", &mut fallen).expect("forced");
        assert_eq!(log.tail(), tail);
        assert_eq!(fallen, vec![slow, mid]);
    }

    #[test]
    fn bytes_are_dropped_behind_the_slowest_reader_only() {
        let mut log = FrameLog::new(64);
        let a = log.add_reader();
        let b = log.add_reader();
        log.append(b"aaaa").expect("fits");
        log.append(b"bbbb").expect("fits");
        log.consume(a, 8);
        assert_eq!(log.len(), 8, "b holds both frames");
        log.consume(b, 6);
        assert_eq!(log.tail(), 4, "frame 1 written by both is dropped");
        assert_eq!(pending(&log, b), b"bb");
        log.remove_reader(b);
        assert!(log.is_empty(), "no one holds frame 2 any more");
        assert_eq!(log.head(), 8);
        assert_eq!(pending(&log, a), b"");
    }

    #[test]
    fn a_full_log_refuses_and_names_the_slowest_reader() {
        let mut log = FrameLog::new(10);
        let fast = log.add_reader();
        let slow = log.add_reader();
        log.append(b"12345").expect("fits");
        log.append(b"6789").expect("fits");
        log.consume(fast, 9);
        let full = log.append(b"abc").expect_err("1 B free");
        assert_eq!(full.needed, 3);
        assert_eq!(full.free, 1);
        assert_eq!(full.slowest, Some(slow));
        // The slow reader moves past the first frame: room again.
        log.consume(slow, 5);
        assert_eq!(log.append(b"abc"), Ok(9));
        assert_eq!(pending(&log, slow), b"6789abc");
    }

    #[test]
    fn force_append_drops_the_oldest_and_reports_who_fell_off_once() {
        let mut log = FrameLog::new(8);
        let fast = log.add_reader();
        let slow = log.add_reader();
        log.append(b"aaaa").expect("fits");
        log.append(b"bbbb").expect("fits");
        log.consume(fast, 8);
        let mut fallen = Vec::new();
        assert_eq!(log.force_append(b"cc", &mut fallen), Ok(8));
        assert_eq!(fallen, [slow]);
        assert_eq!(log.pending(slow), Pending::Fallen);
        assert_eq!(log.lag(slow), 0);
        assert_eq!(pending(&log, fast), b"cc");
        // The fallen reader holds nothing back.
        log.consume(fast, 2);
        assert!(log.is_empty());
        fallen.clear();
        log.force_append(b"dd", &mut fallen).expect("fits");
        assert_eq!(fallen, [slow], "still behind: reported again until removed");
        log.remove_reader(slow);
        assert_eq!(log.readers(), 1);
        let mut none = Vec::new();
        assert!(
            log.force_append(&[0; 9], &mut none).is_err(),
            "larger than the log"
        );
    }

    #[test]
    fn the_ring_wraps_and_pending_spans_both_halves() {
        let mut log = FrameLog::new(8);
        let r = log.add_reader();
        for round in 0u8..50 {
            let frame = [round; 3];
            log.append(&frame).expect("the reader keeps up");
            let got = pending(&log, r);
            assert_eq!(got, frame);
            // Write it in two pieces, as short writes would.
            log.consume(r, 1);
            log.consume(r, 2);
            assert!(log.at_boundary(r));
        }
        assert_eq!(log.head(), 150);
        assert!(log.is_empty());
        assert_eq!(log.frames(), 50);
    }

    #[test]
    fn a_new_reader_starts_at_the_head_and_unknown_readers_are_told() {
        let mut log = FrameLog::new(16);
        let first = log.add_reader();
        log.append(b"old").expect("fits");
        let late = log.add_reader();
        assert_eq!(pending(&log, late), b"");
        log.append(b"new").expect("fits");
        assert_eq!(pending(&log, late), b"new");
        assert_eq!(pending(&log, first), b"oldnew");
        log.remove_reader(first);
        assert_eq!(log.pending(first), Pending::Unknown);
        assert_eq!(log.consume(first, 1), None);
        assert_eq!(log.slowest(), Some((late, 3)));
    }

    /// Against a plain model: every reader's pending bytes are the concatenation
    /// of the frames appended since it joined, minus what it consumed.
    #[test]
    fn agrees_with_a_copy_per_reader_model() {
        let mut log = FrameLog::new(40);
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut readers: Vec<(ReaderId, Vec<u8>)> = Vec::new();
        for step in 0..5_000u32 {
            match next() % 4 {
                0 if readers.len() < 6 => readers.push((log.add_reader(), Vec::new())),
                1 => {
                    let len = (next() % 9) as usize + 1;
                    let frame: Vec<u8> = (0..len).map(|i| (step as usize + i) as u8).collect();
                    if log.append(&frame).is_ok() {
                        for (_, model) in &mut readers {
                            model.extend_from_slice(&frame);
                        }
                    }
                }
                2 if !readers.is_empty() => {
                    let i = (next() as usize) % readers.len();
                    let (id, model) = &mut readers[i];
                    let n = ((next() % 12) as usize).min(model.len());
                    log.consume(*id, n);
                    model.drain(..n);
                }
                3 if readers.len() > 1 && next() % 8 == 0 => {
                    let (id, _) = readers.swap_remove(0);
                    log.remove_reader(id);
                }
                _ => {}
            }
            for (id, model) in &readers {
                assert_eq!(&pending(&log, *id), model, "step {step}");
            }
            assert!(log.len() <= log.capacity());
        }
    }
}
