//! Deadlines, kept in a binary heap, that drive the poll timeout.
//!
//! An event loop waits in `poll()` for sockets to become ready. It also has to wake
//! up when nothing happens: a client that stopped sending halfway through a head
//! (header timeout), a kept-alive connection nobody uses (idle timeout), a long poll
//! whose time is up, a WebSocket that needs a ping. So before every `poll()` the loop
//! asks this heap for the earliest deadline and passes the time left as the poll's
//! timeout; after `poll()` returns, it pops every deadline that has passed.
//!
//! Two kinds of entries share the heap:
//!
//! - **Connection deadlines**, one per connection at a time. A connection's deadline
//!   moves on every request (idle timeout pushed back, header timeout started), and
//!   pushing a heap entry on each move would fill the heap with dead entries at the
//!   request rate. Instead the connection records its current deadline and the time
//!   of the one entry it has in the heap (`scheduled`); an entry is only pushed when
//!   the new deadline is *earlier* than the scheduled one. When an entry fires, the
//!   loop looks at the connection: if its deadline has moved later, it pushes one
//!   entry for the new time; if the entry is not the connection's scheduled one any
//!   more, it is simply dropped. (Kernel and runtime timer wheels use the same trick:
//!   cancel lazily, re-arm on expiry.)
//! - **Handler timers**, set by the application through the handler's context, each
//!   with a `u64` the application chose. Cancelling one removes it from the live
//!   set; its heap entry is dropped when it comes up.
//!
//! **One pass fires what was due when it began.** A handler may re-arm a timer
//! from its own callback, even with zero delay. If the pass kept popping whatever
//! is due, such a timer would fire again and again within one pass, and the loop
//! would never get back to its sockets. So a pass (`Timers::begin_pass`) fires
//! only entries pushed before it began; an entry pushed during the pass waits for
//! the next one, after the loop has polled its sockets.
//!
//! Dead entries are bounded: when they outnumber live ones, `Timers::compact`
//! rebuilds the heap from the live entries only.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use super::ConnId;

/// A timer set by the application; pass it to `Context::cancel_timer` to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
    /// The timer's number, unique for the life of the server.
    pub fn get(&self) -> u64 {
        self.0
    }
}

/// What a heap entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// A connection's deadline (header, body, idle or linger timeout).
    Conn(ConnId),
    /// An application timer.
    User(TimerId),
}

/// One heap entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When it fires.
    at: Instant,
    /// Insertion order, so entries with the same `at` fire first-in first-out.
    seq: u64,
    /// What fires.
    key: Key,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    // BinaryHeap is a max-heap: reverse the order so the earliest entry is on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// An expired entry, as handed back to the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A connection's entry scheduled for `at` has come up; the loop checks whether
    /// it is still that connection's scheduled entry.
    Conn(ConnId, Instant),
    /// An application timer, with the application's data.
    User(TimerId, u64),
}

/// The deadline heap.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Every entry not yet popped, live or dead.
    heap: BinaryHeap<Entry>,
    /// The next entry's insertion number.
    seq: u64,
    /// Application timers not yet fired or cancelled, with their data.
    live: HashMap<u64, u64>,
    /// The next application timer's number.
    next_id: u64,
    /// Entries pushed at or after this insertion number belong to the next pass.
    pass_limit: u64,
    /// Due entries pushed during the current pass, set aside until it ends.
    deferred: Vec<Entry>,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
            live: HashMap::new(),
            next_id: 0,
            // Outside a pass, every due entry may be popped.
            pass_limit: u64::MAX,
            deferred: Vec::new(),
        }
    }
}

impl Timers {
    /// Schedules a connection's deadline entry.
    pub(crate) fn push_conn(&mut self, at: Instant, conn: ConnId) {
        self.push(at, Key::Conn(conn));
    }

    /// Sets an application timer.
    pub(crate) fn set(&mut self, at: Instant, data: u64) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        self.live.insert(id.0, data);
        self.push(at, Key::User(id));
        id
    }

    /// Cancels an application timer; `false` if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        self.live.remove(&id.0).is_some()
    }

    /// Whether an application timer is still pending.
    pub(crate) fn is_pending(&self, id: TimerId) -> bool {
        self.live.contains_key(&id.0)
    }

    fn push(&mut self, at: Instant, key: Key) {
        self.heap.push(Entry {
            at,
            seq: self.seq,
            key,
        });
        self.seq += 1;
    }

    /// The earliest entry's time. It may be a dead entry: waking up early for it
    /// costs one empty loop turn.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Starts a pass: [`Timers::pop_expired`] then pops only entries pushed
    /// before this call.
    pub(crate) fn begin_pass(&mut self) {
        self.pass_limit = self.seq;
    }

    /// Ends a pass: entries set aside during it go back in the heap.
    pub(crate) fn end_pass(&mut self) {
        self.heap.extend(self.deferred.drain(..));
        self.pass_limit = u64::MAX;
    }

    /// Pops the next entry due at `now` and pushed before the pass began,
    /// skipping cancelled application timers.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Expired> {
        while self.heap.peek().is_some_and(|e| e.at <= now) {
            let entry = self.heap.pop()?;
            if entry.seq >= self.pass_limit {
                self.deferred.push(entry);
                continue;
            }
            match entry.key {
                Key::Conn(conn) => return Some(Expired::Conn(conn, entry.at)),
                Key::User(id) => {
                    if let Some(data) = self.live.remove(&id.0) {
                        return Some(Expired::User(id, data));
                    }
                }
            }
        }
        None
    }

    /// Entries in the heap, live or dead.
    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.deferred.len()
    }

    /// Live application timers.
    pub(crate) fn live_user_timers(&self) -> usize {
        self.live.len()
    }

    /// Drops every dead entry: application timers that were cancelled, and
    /// connection entries for which `conn_entry_live(conn, at)` is false.
    pub(crate) fn compact(&mut self, conn_entry_live: impl Fn(ConnId, Instant) -> bool) {
        let live = &self.live;
        self.heap.retain(|e| match e.key {
            Key::Conn(conn) => conn_entry_live(conn, e.at),
            Key::User(id) => live.contains_key(&id.0),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_fifo_on_ties() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let late = timers.set(t0 + Duration::from_millis(20), 2);
        let a = timers.set(t0 + Duration::from_millis(10), 1);
        let b = timers.set(t0 + Duration::from_millis(10), 3);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_expired(t0), None);
        let now = t0 + Duration::from_millis(30);
        assert_eq!(timers.pop_expired(now), Some(Expired::User(a, 1)));
        assert_eq!(timers.pop_expired(now), Some(Expired::User(b, 3)));
        assert_eq!(timers.pop_expired(now), Some(Expired::User(late, 2)));
        assert_eq!(timers.pop_expired(now), None);
    }

    #[test]
    fn a_timer_rearmed_with_zero_delay_waits_for_the_next_pass() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let first = timers.set(t0, 1);
        timers.begin_pass();
        assert_eq!(timers.pop_expired(t0), Some(Expired::User(first, 1)));
        // Re-armed from its callback, due at once, and one set in the past.
        let again = timers.set(t0, 1);
        let past = timers.set(t0 - Duration::from_millis(5), 2);
        assert_eq!(timers.pop_expired(t0), None, "pushed during the pass");
        timers.end_pass();
        timers.begin_pass();
        assert_eq!(timers.pop_expired(t0), Some(Expired::User(past, 2)));
        assert_eq!(timers.pop_expired(t0), Some(Expired::User(again, 1)));
        assert_eq!(timers.pop_expired(t0), None);
        timers.end_pass();
    }

    #[test]
    fn cancelled_timers_do_not_fire_and_are_compacted() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let ids: Vec<_> = (0..10).map(|i| timers.set(t0, i)).collect();
        for id in &ids[..9] {
            assert!(timers.cancel(*id));
        }
        assert!(!timers.cancel(ids[0]));
        timers.compact(|_, _| true);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_expired(t0), Some(Expired::User(ids[9], 9)));
        assert!(!timers.is_pending(ids[9]));
    }
}
