//! One log, many readers: an append-only, bounded event log with sequence numbers.
//!
//! # The idea
//!
//! Push, long polling, Server-Sent Events and a WebSocket subscriber look like four
//! different machines, but they read the same thing: the updates of one job (or the
//! messages of one room), in order. What differs is only *who holds the reader's
//! place* and *who moves it forward*. So the updates are stored once, in a log where
//! every event gets a sequence number (1, 2, 3, ...), and each reader is nothing but a
//! cursor: the sequence number of the last event it has seen (`0` before the first).
//!
//! | reader | whose cursor | who advances it |
//! |---|---|---|
//! | push hub (chat) | per connection, kept in the hub | the server, as fast as the socket drains |
//! | long poll | the client's: `since=N` in each request | the client, one request per step |
//! | SSE | the server's while the stream is open; the client's `Last-Event-ID` on reconnect | the server pushes; the client resumes with it |
//! | WebSocket subscriber | per connection, kept by the server | the server, as each message is queued |
//!
//! What the log gives every one of them for free:
//!
//! - **Memory by events, not events x readers.** An event is stored once, however
//!   many readers there are; a reader costs one `u64`. Ten thousand long polls held on
//!   one job cost ten thousand cursors, not ten thousand copies of its updates.
//! - **Bounded retention.** The log keeps at most [`EventLog::capacity`] events;
//!   appending past it drops the oldest (and [`EventLog::trim_before`] drops old ones
//!   on purpose). Memory never grows with time.
//! - **No silent loss.** A reader whose cursor is older than what is still kept is
//!   told so, with the exact numbers ([`Read::Gap`]): comparing two integers is all it
//!   takes, and the transport decides what to say (a gap notice, a 1008 close, a
//!   fresh snapshot). A reader never skips events without knowing.
//! - **No repeats.** A reader that reconnects with the last sequence number it saw
//!   gets exactly the events after it: nothing twice, nothing missing (the unit tests
//!   check this over many random appends and cursors).
//! - **Explicit answers.** Reading from a cursor answers one of five things
//!   ([`Read`]): here are the events after it; nothing yet (a long poll waits); you
//!   missed some; that cursor is from the future (a client made it up: answer 400);
//!   the log is finished and you have everything (an SSE stream ends, a reconnect
//!   gets 204 No Content).
//!
//! The log is sans-I/O: no socket, no clock, no waking. Whoever appends (a job's
//! timer, a chat message) then wakes the readers it holds; the log only answers
//! "what is after cursor N". The read path allocates nothing: [`Events`] borrows the
//! log's storage (two slices, because a ring wraps) and yields `(seq, &T)`.
//!
//! # The push hub's byte ring
//!
//! The chat hub ([`super::push::PushHub`], on [`super::frame_log::FrameLog`])
//! adopts the same idea with different storage: it keeps already-encoded frames in
//! a ring of bytes, and each connection's cursor is a *byte*
//! offset, so a short `write()` can resume mid-frame. Same rules (one copy, a cursor
//! per reader, a reader behind the tail is detected by comparing two numbers and cut
//! off instead of silently losing data), different unit: bytes there, events here. A
//! job's few updates are kept as values and encoded per transport, so this type
//! counts events.
//!
//! # Example: two readers at different cursors
//!
//! ```
//! use wirepatterns::patterns::log::{EventLog, Read};
//!
//! let mut log = EventLog::new(16);
//! for pct in [10, 20, 30] {
//!     log.append(format!("JobStatus: {pct}%")).unwrap();
//! }
//!
//! // A long poll: `GET /checkstatus?...&since=1` (the client saw update 1).
//! match log.read(1) {
//!     Read::Events(events) => {
//!         let got: Vec<_> = events.map(|(seq, text)| (seq, text.as_str())).collect();
//!         assert_eq!(got, [(2, "JobStatus: 20%"), (3, "JobStatus: 30%")]);
//!     }
//!     other => panic!("expected events, got {other:?}"),
//! }
//!
//! // An SSE reconnect with `Last-Event-ID: 3`: it has everything, so it waits.
//! assert!(matches!(log.read(3), Read::UpToDate));
//!
//! // The next update reaches both; the SSE stream writes it as `id: 4`.
//! assert_eq!(log.append("JobStatus: 40%".to_string()), Ok(4));
//! if let Read::Events(mut events) = log.read(3) {
//!     assert_eq!(events.next(), Some((4, &"JobStatus: 40%".to_string())));
//!     assert_eq!(events.next(), None);
//! }
//!
//! // The job finishes: a reader at the end learns the stream is over.
//! log.close();
//! assert!(matches!(log.read(4), Read::Ended));
//! // A made-up cursor is from the future: the server answers 400.
//! assert!(matches!(log.read(99), Read::Ahead { last_seq: 4 }));
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;

/// An append-only, bounded log of events of type `T`, numbered from 1.
///
/// Readers are not registered here: a reader is a `u64` cursor it (or its
/// connection's state) holds, and [`EventLog::read`] answers what lies after it.
#[derive(Debug, Clone)]
pub struct EventLog<T> {
    /// The events still kept, oldest first: `events[i]` has sequence number
    /// `oldest_seq + i`. A ring, so dropping the oldest costs nothing.
    events: VecDeque<T>,
    /// The sequence number of the last event ever appended (0 before the first):
    /// the cursor of a reader that has seen everything. It never goes back, even
    /// when old events are dropped, so sequence numbers are never reused.
    last_seq: u64,
    /// The most events kept; appending past it drops the oldest. This bounds the
    /// log's memory however long it lives.
    capacity: usize,
    /// Set by [`EventLog::close`]: no more appends, and a reader at the end is told
    /// [`Read::Ended`] instead of [`Read::UpToDate`] (so it stops waiting).
    closed: bool,
}

/// What [`EventLog::read`] answers for a cursor.
#[derive(Debug, Clone)]
pub enum Read<'a, T> {
    /// The events after the cursor that are still kept, oldest first, each with its
    /// sequence number. Never empty. After handing them all out, the reader's new
    /// cursor is [`Events::last_seq`].
    Events(Events<'a, T>),
    /// Nothing after the cursor yet, and the log is open: a long poll waits, an SSE
    /// stream sends a heartbeat.
    UpToDate,
    /// The cursor is older than what is kept: events after it were dropped. The
    /// reader is told, never moved silently; to go on it resumes with the cursor
    /// `oldest_kept - 1` (what it does about the hole is the transport's policy).
    Gap {
        /// The sequence number of the oldest event still kept (if none is kept,
        /// the next one to be appended): the first event the reader can still get.
        oldest_kept: u64,
        /// How many events after the cursor were dropped before the reader saw them:
        /// `oldest_kept - cursor - 1`.
        missed: u64,
    },
    /// The cursor is past the last event ever appended: nobody was given it (a client
    /// made it up, or it belongs to another log). A server answers 400.
    Ahead {
        /// The last sequence number the log has given out: a valid cursor is at most
        /// this.
        last_seq: u64,
    },
    /// The log is closed and the reader has seen its last event: an SSE stream ends
    /// and a reconnect gets 204 No Content.
    Ended,
}

/// The events after a cursor, borrowed from the log: an iterator of `(seq, &T)`.
///
/// Allocation-free: it holds the (at most two, because the ring may wrap) slices of
/// the log's storage and the sequence number of the next event it yields.
#[derive(Debug)]
pub struct Events<'a, T> {
    /// The first run of events still to yield, contiguous in memory.
    front: &'a [T],
    /// The run after the ring's wrap point (empty if it does not wrap).
    back: &'a [T],
    /// The sequence number of the next event [`Iterator::next`] yields.
    next_seq: u64,
}

/// The error of appending to a closed log. The event is handed back, not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed<T> {
    /// The event that was not appended.
    pub event: T,
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event log is closed: no more events are appended")
    }
}

impl<T: fmt::Debug> std::error::Error for Closed<T> {}

impl<T> EventLog<T> {
    /// An empty, open log keeping at most `capacity` events.
    ///
    /// A log that keeps nothing could answer nothing but [`Read::Gap`], so a
    /// `capacity` of 0 is taken as 1. Storage grows as events arrive (up to
    /// `capacity`), so a large capacity costs nothing until it is used.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            events: VecDeque::new(),
            last_seq: 0,
            capacity: capacity.max(1),
            closed: false,
        }
    }

    /// Appends `event` and returns its sequence number: one more than the last
    /// one given out, starting at 1. If the log is full, the oldest event is
    /// dropped first. A closed log refuses and hands the event back.
    pub fn append(&mut self, event: T) -> Result<u64, Closed<T>> {
        if self.closed {
            return Err(Closed { event });
        }
        if self.events.len() >= self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
        self.last_seq = self.last_seq.saturating_add(1);
        Ok(self.last_seq)
    }

    /// What lies after `cursor`, the sequence number of the last event the reader
    /// has seen (0 for a reader that has seen nothing). See [`Read`].
    pub fn read(&self, cursor: u64) -> Read<'_, T> {
        if cursor > self.last_seq {
            return Read::Ahead {
                last_seq: self.last_seq,
            };
        }
        if cursor == self.last_seq {
            return if self.closed {
                Read::Ended
            } else {
                Read::UpToDate
            };
        }
        // cursor < last_seq, so `cursor + 1` cannot overflow.
        let wanted = cursor + 1;
        let oldest_kept = self.next_oldest();
        if wanted < oldest_kept {
            return Read::Gap {
                oldest_kept,
                missed: oldest_kept - wanted,
            };
        }
        // oldest_kept <= wanted <= last_seq, so the offset is inside the deque.
        let skip = usize::try_from(wanted - oldest_kept).unwrap_or(usize::MAX);
        let (front, back) = self.events.as_slices();
        let (front, back) = match skip.checked_sub(front.len()) {
            // The reader's first event is in the second run: skip all of the first.
            Some(into_back) if into_back > 0 => {
                (&[][..], back.get(into_back..).unwrap_or_default())
            }
            _ => (front.get(skip..).unwrap_or_default(), back),
        };
        Read::Events(Events {
            front,
            back,
            next_seq: wanted,
        })
    }

    /// The event with sequence number `seq`, if it is still kept.
    pub fn get(&self, seq: u64) -> Option<&T> {
        let offset = seq.checked_sub(self.oldest_seq()?)?;
        self.events.get(usize::try_from(offset).ok()?)
    }

    /// Drops every event with a sequence number below `seq` (for example once every
    /// known reader has passed it) and returns how many were dropped. Sequence
    /// numbers are not reused: readers behind the new oldest event get [`Read::Gap`].
    pub fn trim_before(&mut self, seq: u64) -> usize {
        let below = seq.saturating_sub(self.next_oldest());
        let n = usize::try_from(below)
            .unwrap_or(usize::MAX)
            .min(self.events.len());
        self.events.drain(..n);
        n
    }

    /// Marks the log finished: later appends fail with [`Closed`], and a reader that
    /// has seen the last event gets [`Read::Ended`]. Events still kept stay readable.
    /// Closing twice is the same as once.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Whether [`EventLog::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The sequence number of the last event appended, 0 if none was: the cursor
    /// of a reader that has seen everything.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The sequence number of the oldest event still kept, `None` if none is.
    pub fn oldest_seq(&self) -> Option<u64> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.next_oldest())
        }
    }

    /// How many events are kept now (at most [`EventLog::capacity`]).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event is kept (none appended yet, or all dropped).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The most events this log keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sequence number of the oldest event kept, or, if none is, of the next
    /// one to be appended: `last_seq - len + 1`.
    fn next_oldest(&self) -> u64 {
        let len = u64::try_from(self.events.len()).unwrap_or(u64::MAX);
        self.last_seq.saturating_sub(len).saturating_add(1)
    }
}

impl<'a, T> Events<'a, T> {
    /// The sequence number of the next event this yields, `None` once all are
    /// yielded.
    pub fn first_seq(&self) -> Option<u64> {
        if self.front.is_empty() && self.back.is_empty() {
            None
        } else {
            Some(self.next_seq)
        }
    }

    /// The sequence number of the last event this yields: the reader's cursor once
    /// it has handed them all out. (Once all are yielded, it is the cursor already.)
    pub fn last_seq(&self) -> u64 {
        let n = u64::try_from(self.len()).unwrap_or(u64::MAX);
        self.next_seq.saturating_add(n).saturating_sub(1)
    }

    /// The events still to yield, as the two contiguous runs of the log's ring
    /// (the second is empty unless the ring wraps), without their sequence numbers.
    pub fn as_slices(&self) -> (&'a [T], &'a [T]) {
        (self.front, self.back)
    }
}

impl<T> Clone for Events<'_, T> {
    fn clone(&self) -> Self {
        Events {
            front: self.front,
            back: self.back,
            next_seq: self.next_seq,
        }
    }
}

impl<'a, T> Iterator for Events<'a, T> {
    type Item = (u64, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        let event = match self.front.split_first() {
            Some((first, rest)) => {
                self.front = rest;
                first
            }
            None => {
                let (first, rest) = self.back.split_first()?;
                self.back = rest;
                first
            }
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        Some((seq, event))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.front.len() + self.back.len();
        (n, Some(n))
    }
}

impl<T> ExactSizeIterator for Events<'_, T> {}

impl<T> FusedIterator for Events<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events after `cursor` as `(seq, value)`, or a panic naming the answer.
    fn events_after(log: &EventLog<u64>, cursor: u64) -> Vec<(u64, u64)> {
        match log.read(cursor) {
            Read::Events(events) => events.map(|(seq, v)| (seq, *v)).collect(),
            other => panic!("cursor {cursor}: expected events, got {other:?}"),
        }
    }

    /// A log of capacity `cap` holding the values `10 * seq` for seq 1..=n.
    fn filled(cap: usize, n: u64) -> EventLog<u64> {
        let mut log = EventLog::new(cap);
        for seq in 1..=n {
            assert_eq!(log.append(10 * seq), Ok(seq));
        }
        log
    }

    #[test]
    fn sequence_numbers_start_at_one_and_increase_by_one() {
        let mut log = EventLog::new(4);
        assert_eq!(log.last_seq(), 0);
        assert_eq!(log.oldest_seq(), None);
        assert!(log.is_empty());
        assert_eq!(log.append('a'), Ok(1));
        assert_eq!(log.append('b'), Ok(2));
        assert_eq!(log.append('c'), Ok(3));
        assert_eq!(log.last_seq(), 3);
        assert_eq!(log.oldest_seq(), Some(1));
        assert_eq!(log.len(), 3);
        assert_eq!(log.get(2), Some(&'b'));
        assert_eq!(log.get(0), None);
        assert_eq!(log.get(4), None);
    }

    #[test]
    fn an_empty_log_is_up_to_date_at_zero_and_ahead_past_it() {
        let log: EventLog<u64> = EventLog::new(4);
        assert!(matches!(log.read(0), Read::UpToDate));
        assert!(matches!(log.read(1), Read::Ahead { last_seq: 0 }));
    }

    #[test]
    fn reading_from_zero_gives_everything_kept() {
        let log = filled(8, 3);
        assert_eq!(events_after(&log, 0), [(1, 10), (2, 20), (3, 30)]);
    }

    #[test]
    fn reading_from_the_middle_gives_only_what_follows() {
        let log = filled(8, 5);
        assert_eq!(events_after(&log, 3), [(4, 40), (5, 50)]);
        let Read::Events(events) = log.read(3) else {
            panic!("expected events");
        };
        assert_eq!(events.first_seq(), Some(4));
        assert_eq!(events.last_seq(), 5);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn reading_from_the_end_is_up_to_date_while_open() {
        let log = filled(8, 5);
        assert!(matches!(log.read(5), Read::UpToDate));
    }

    #[test]
    fn a_cursor_from_the_future_is_ahead_and_names_the_last_seq() {
        let log = filled(8, 5);
        assert!(matches!(log.read(6), Read::Ahead { last_seq: 5 }));
        assert!(matches!(log.read(u64::MAX), Read::Ahead { last_seq: 5 }));
    }

    #[test]
    fn appending_past_capacity_drops_the_oldest() {
        let log = filled(4, 10);
        assert_eq!(log.len(), 4);
        assert_eq!(log.capacity(), 4);
        assert_eq!(log.oldest_seq(), Some(7));
        assert_eq!(log.last_seq(), 10);
        assert_eq!(log.get(6), None);
        assert_eq!(log.get(7), Some(&70));
        // A reader that saw 6 lost nothing: 7 is the oldest kept.
        assert_eq!(
            events_after(&log, 6),
            [(7, 70), (8, 80), (9, 90), (10, 100)]
        );
    }

    #[test]
    fn a_cursor_behind_the_kept_events_is_told_the_gap_with_exact_numbers() {
        let log = filled(4, 10);
        // Kept: 7..=10. A reader at 2 wanted 3 and missed 3, 4, 5, 6.
        assert!(matches!(
            log.read(2),
            Read::Gap {
                oldest_kept: 7,
                missed: 4
            }
        ));
        assert!(matches!(
            log.read(0),
            Read::Gap {
                oldest_kept: 7,
                missed: 6
            }
        ));
        assert!(matches!(
            log.read(5),
            Read::Gap {
                oldest_kept: 7,
                missed: 1
            }
        ));
        // Resuming at oldest_kept - 1 reads on.
        assert_eq!(events_after(&log, 6).first(), Some(&(7, 70)));
    }

    #[test]
    fn every_cursor_reads_correctly_while_the_ring_is_wrapped() {
        let mut log = EventLog::new(4);
        // Append until the storage wraps (the head moves one slot per append once
        // full, so it wraps within one turn of the allocation).
        let mut wrapped = false;
        for seq in 1..=100 {
            assert_eq!(log.append(10 * seq), Ok(seq));
            if log.len() == 4 && !log.events.as_slices().1.is_empty() {
                wrapped = true;
                break;
            }
        }
        assert!(wrapped, "the ring never wrapped");
        let last = log.last_seq();
        for cursor in last - 4..last {
            let Read::Events(events) = log.read(cursor) else {
                panic!("cursor {cursor}: expected events");
            };
            let (a, b) = events.as_slices();
            let joined: Vec<u64> = a.iter().chain(b).copied().collect();
            let want: Vec<u64> = (cursor + 1..=last).map(|s| 10 * s).collect();
            assert_eq!(joined, want, "slices from cursor {cursor}");
            assert_eq!(
                events_after(&log, cursor),
                (cursor + 1..=last).map(|s| (s, 10 * s)).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn trim_before_drops_older_events_and_readers_behind_get_a_gap() {
        let mut log = filled(8, 5);
        assert_eq!(log.trim_before(4), 3);
        assert_eq!(log.oldest_seq(), Some(4));
        assert_eq!(log.trim_before(2), 0);
        assert!(matches!(
            log.read(1),
            Read::Gap {
                oldest_kept: 4,
                missed: 2
            }
        ));
        assert_eq!(events_after(&log, 3), [(4, 40), (5, 50)]);
        // Trimming everything keeps the numbering: the next append is 6.
        assert_eq!(log.trim_before(u64::MAX), 2);
        assert!(log.is_empty());
        assert_eq!(log.oldest_seq(), None);
        assert!(matches!(
            log.read(3),
            Read::Gap {
                oldest_kept: 6,
                missed: 2
            }
        ));
        assert!(matches!(log.read(5), Read::UpToDate));
        assert_eq!(log.append(60), Ok(6));
    }

    #[test]
    fn a_closed_log_refuses_appends_and_ends_readers_at_the_end() {
        let mut log = filled(8, 3);
        log.close();
        log.close();
        assert!(log.is_closed());
        assert_eq!(log.append(40), Err(Closed { event: 40 }));
        assert_eq!(log.last_seq(), 3);
        assert!(matches!(log.read(3), Read::Ended));
        // Readers behind still get what is kept, and learn Ended afterwards.
        assert_eq!(events_after(&log, 1), [(2, 20), (3, 30)]);
        assert!(matches!(log.read(4), Read::Ahead { last_seq: 3 }));
    }

    #[test]
    fn a_closed_empty_log_ends_a_reader_at_zero() {
        let mut log: EventLog<u64> = EventLog::new(2);
        log.close();
        assert!(matches!(log.read(0), Read::Ended));
    }

    #[test]
    fn capacity_zero_is_taken_as_one() {
        let mut log = EventLog::new(0);
        assert_eq!(log.capacity(), 1);
        assert_eq!(log.append(1u64), Ok(1));
        assert_eq!(log.append(2u64), Ok(2));
        assert_eq!(events_after(&log, 1), [(2, 2)]);
    }

    #[test]
    fn events_iterator_reports_its_exact_size_and_is_fused() {
        let log = filled(8, 4);
        let Read::Events(mut events) = log.read(1) else {
            panic!("expected events");
        };
        assert_eq!(events.len(), 3);
        events.next();
        assert_eq!(events.len(), 2);
        assert_eq!(events.first_seq(), Some(3));
        events.next();
        events.next();
        assert_eq!(events.next(), None);
        assert_eq!(events.next(), None);
        assert_eq!(events.first_seq(), None);
        assert_eq!(events.last_seq(), 4);
    }

    /// A small deterministic PRNG (xorshift64*), so the property loop needs no
    /// dependency and fails the same way every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    #[test]
    fn readers_resuming_from_their_last_seq_see_each_event_once_or_are_told_of_a_gap() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..50 {
            let cap = 1 + rng.below(12) as usize;
            let mut log = EventLog::new(cap);
            // The model: every value ever appended, value = seq * 3 + round.
            let value = |seq: u64| seq * 3 + round;
            // Each reader: its cursor, what it saw, what it was told it missed.
            let mut readers: Vec<(u64, Vec<u64>, u64)> = vec![(0, Vec::new(), 0); 5];
            for _ in 0..400 {
                match rng.below(4) {
                    0 | 1 => {
                        let seq = log.last_seq() + 1;
                        assert_eq!(log.append(value(seq)), Ok(seq));
                    }
                    _ => {
                        let r = rng.below(readers.len() as u64) as usize;
                        let take = 1 + rng.below(cap as u64 + 2) as usize;
                        let (cursor, seen, missed) = &mut readers[r];
                        match log.read(*cursor) {
                            Read::Events(events) => {
                                assert_eq!(events.first_seq(), Some(*cursor + 1));
                                for (seq, v) in events.take(take) {
                                    assert_eq!(seq, *cursor + 1, "no event skipped");
                                    assert_eq!(*v, value(seq));
                                    seen.push(seq);
                                    *cursor = seq;
                                }
                            }
                            Read::UpToDate => assert_eq!(*cursor, log.last_seq()),
                            Read::Gap {
                                oldest_kept,
                                missed: m,
                            } => {
                                assert_eq!(Some(oldest_kept), log.oldest_seq());
                                assert_eq!(m, oldest_kept - *cursor - 1);
                                *missed += m;
                                *cursor = oldest_kept - 1;
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
            }
            // Drain every reader; each event was seen once or counted as missed.
            for (cursor, seen, missed) in &mut readers {
                loop {
                    match log.read(*cursor) {
                        Read::Events(events) => {
                            for (seq, _) in events {
                                seen.push(seq);
                                *cursor = seq;
                            }
                        }
                        Read::Gap {
                            oldest_kept,
                            missed: m,
                        } => {
                            *missed += m;
                            *cursor = oldest_kept - 1;
                        }
                        Read::UpToDate => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                assert!(seen.windows(2).all(|w| w[0] < w[1]), "no repeats");
                assert_eq!(seen.len() as u64 + *missed, log.last_seq());
            }
        }
    }

    #[test]
    fn any_cursor_gets_the_answer_the_model_predicts() {
        let mut rng = Rng(42);
        for _ in 0..200 {
            let cap = 1 + rng.below(10) as usize;
            let n = rng.below(30);
            let mut log = filled(cap, n);
            if rng.below(3) == 0 {
                log.trim_before(rng.below(n + 3));
            }
            let closed = rng.below(2) == 0;
            if closed {
                log.close();
            }
            let oldest = log.oldest_seq().unwrap_or(n + 1);
            for cursor in 0..=n + 3 {
                match log.read(cursor) {
                    Read::Ahead { last_seq } => {
                        assert!(cursor > n);
                        assert_eq!(last_seq, n);
                    }
                    Read::Ended => assert!(closed && cursor == n),
                    Read::UpToDate => assert!(!closed && cursor == n),
                    Read::Gap {
                        oldest_kept,
                        missed,
                    } => {
                        assert!(cursor + 1 < oldest && cursor < n);
                        assert_eq!(oldest_kept, oldest);
                        assert_eq!(missed, oldest - cursor - 1);
                    }
                    Read::Events(events) => {
                        assert!(cursor + 1 >= oldest && cursor < n);
                        let got: Vec<(u64, u64)> = events.map(|(s, v)| (s, *v)).collect();
                        let want: Vec<(u64, u64)> = (cursor + 1..=n).map(|s| (s, 10 * s)).collect();
                        assert_eq!(got, want);
                    }
                }
            }
        }
    }
}
