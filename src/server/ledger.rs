//! Which request each system call and byte belongs to.
//!
//! A connection's reads and writes do not line up with its requests. One `read()`
//! can bring the end of one request and three more pipelined behind it; one
//! `write()` can carry the responses to all four; a response a slow client does
//! not read can take many writes. The [`Ledger`] is the one place where each call
//! is charged, by these rules:
//!
//! - A `read()` (the one that returns `WouldBlock` included) is charged to the
//!   request being received. A request whose first bytes were already buffered,
//!   because they came in a read charged to an earlier request, shows no read of
//!   its own; both then name the group of requests that shared those reads
//!   ([`RequestCost::read_group`]).
//! - A `write()` is charged to the oldest response not yet fully written. Every
//!   other response the same write carried bytes of joins its group
//!   ([`RequestCost::write_group`]).
//! - A response's cost is reported once its last byte is written.
//!
//! So summing `read_calls` and `write_calls` over a connection's requests gives
//! the connection's real count of system calls, and no request claims a call that
//! another also claims.

use std::collections::VecDeque;
use std::time::Instant;

use crate::cost::{Label, RequestCost};

/// A response queued whole and not yet written.
#[derive(Debug)]
struct Unwritten {
    /// Its first byte's position in the connection's output stream.
    start: u64,
    /// One past its last byte's position.
    end: u64,
    /// Its cost, reported when `end` is written.
    cost: RequestCost,
}

/// A connection's cost records; see the module docs.
#[derive(Debug)]
pub(crate) struct Ledger {
    /// The connection's number.
    serial: u64,
    /// When it was accepted.
    accepted: Instant,
    /// The request being received: reads are charged here.
    current: RequestCost,
    /// Whether `current` has its first byte.
    started: bool,
    /// The request the last read that brought data was charged to.
    last_read_owner: Option<u64>,
    /// When that read returned.
    last_read: Instant,
    /// The request handed to the handler whose response is not complete yet.
    inflight: Option<RequestCost>,
    /// Where `inflight`'s response starts in the output stream.
    inflight_start: u64,
    /// Complete responses not yet fully written, oldest first.
    unwritten: VecDeque<Unwritten>,
    /// The next request's index on the connection.
    next_index: u64,
}

/// What a `read()` call returned, as far as costs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadCall {
    /// It brought this many bytes.
    Data(usize),
    /// Nothing there yet.
    WouldBlock,
    /// End of file, or an error.
    Ended,
}

impl Ledger {
    /// The ledger of connection `serial`, accepted at `accepted`.
    pub(crate) fn new(serial: u64, accepted: Instant) -> Ledger {
        Ledger {
            serial,
            accepted,
            current: RequestCost::new(serial, 0, accepted, accepted),
            started: false,
            last_read_owner: None,
            last_read: accepted,
            inflight: None,
            inflight_start: 0,
            unwritten: VecDeque::new(),
            next_index: 1,
        }
    }

    /// Charges one `read()` call to the request being received. `discarding`: the
    /// connection is lingering and what it reads belongs to no request.
    #[inline]
    pub(crate) fn read(&mut self, call: ReadCall, now: Instant, discarding: bool) {
        self.current.read_calls = self.current.read_calls.saturating_add(1);
        match call {
            ReadCall::Data(_) if !discarding => {
                if !self.started {
                    self.current.first_byte = now;
                    self.started = true;
                }
                self.last_read_owner = Some(self.current.index);
                self.last_read = now;
            }
            ReadCall::WouldBlock => {
                self.current.read_would_block = self.current.read_would_block.saturating_add(1)
            }
            _ => {}
        }
    }

    /// The request being received starts with bytes already buffered: they came
    /// in the last read, charged to an earlier request, and the two join one group.
    #[inline]
    pub(crate) fn start_from_buffer(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.current.first_byte = self.last_read;
        let index = self.current.index;
        let Some(owner) = self.last_read_owner.filter(|&o| o < index) else {
            return;
        };
        let first = self.group_start(owner);
        self.current.read_group = (first, index);
        for cost in self.costs_mut() {
            if cost.index >= first && cost.index < index {
                cost.read_group.1 = index;
            }
        }
    }

    /// Where the read group of request `owner` starts.
    fn group_start(&self, owner: u64) -> u64 {
        self.inflight
            .iter()
            .chain(self.unwritten.iter().map(|u| &u.cost))
            .find(|c| c.index == owner)
            .map_or(owner, |c| c.read_group.0)
    }

    /// Every record not yet reported.
    fn costs_mut(&mut self) -> impl Iterator<Item = &mut RequestCost> {
        self.inflight
            .iter_mut()
            .chain(self.unwritten.iter_mut().map(|u| &mut u.cost))
    }

    /// When the request being received began: its first byte's read (for a
    /// request buffered behind another, the read that brought it).
    #[inline]
    pub(crate) fn first_byte(&self) -> Instant {
        self.current.first_byte
    }

    /// The head of the request being received was parsed.
    #[inline]
    pub(crate) fn head_parsed(&mut self, now: Instant, head_bytes: usize, label: Label) {
        self.current.head_parsed = Some(now);
        self.current.head_bytes = head_bytes as u64;
        self.current.label = label;
    }

    /// `n` bytes of its body arrived, as sent (chunk framing included).
    #[inline]
    pub(crate) fn body_wire_bytes(&mut self, n: usize) {
        self.current.body_wire_bytes += n as u64;
    }

    /// Its body is complete (`decoded` bytes once decoded).
    #[inline]
    pub(crate) fn body_done(&mut self, now: Instant, decoded: usize) {
        self.current.body_done = Some(now);
        self.current.body_bytes = decoded as u64;
    }

    /// The handler returned for the request being received, at `now`; its
    /// response starts at `out_start` in the output stream. The next request's
    /// record begins.
    pub(crate) fn dispatched(&mut self, now: Instant, out_start: u64) {
        let mut cost = self.take_current();
        cost.handler_done = Some(now);
        self.inflight = Some(cost);
        self.inflight_start = out_start;
    }

    /// The request being received is answered by the server itself (bad input, a
    /// timeout) with `status`; its response is `start..end` of the output stream.
    /// `label` names it if its head was never parsed, and `head_bytes` is then
    /// what came of its head.
    pub(crate) fn rejected(
        &mut self,
        status: u16,
        label: Label,
        head_bytes: usize,
        start: u64,
        end: u64,
    ) {
        let mut cost = self.take_current();
        if cost.label.as_bytes().is_empty() {
            cost.label = label;
        }
        if cost.head_parsed.is_none() {
            cost.head_bytes = head_bytes as u64;
        }
        cost.status = status;
        cost.bytes_out = end.saturating_sub(start);
        self.inflight = None;
        self.push_unwritten(Unwritten { start, end, cost });
    }

    /// The status of the response to the request in flight.
    #[inline]
    pub(crate) fn set_status(&mut self, status: u16) {
        if let Some(cost) = self.inflight.as_mut() {
            cost.status = status;
        }
    }

    /// The response in flight is complete; its last byte is at `end` in the
    /// output stream.
    pub(crate) fn response_complete(&mut self, end: u64) {
        if let Some(mut cost) = self.inflight.take() {
            let start = self.inflight_start;
            cost.bytes_out = end.saturating_sub(start);
            self.push_unwritten(Unwritten { start, end, cost });
        }
    }

    /// The request in flight is dropped without a complete response (the
    /// connection is closing).
    pub(crate) fn abandon_inflight(&mut self) {
        self.inflight = None;
    }

    /// Charges one `write()` call that began at `from` in the output stream and
    /// wrote `n` bytes (0 for `WouldBlock` or an error).
    #[inline]
    pub(crate) fn write(&mut self, from: u64, n: usize) {
        let to = from + n as u64;
        let Some(first) = self.unwritten.front_mut() else {
            // No complete response: the one in progress (a stream, a response
            // being queued), or the request being received.
            let cost = self.inflight.as_mut().unwrap_or(&mut self.current);
            cost.write_calls = cost.write_calls.saturating_add(1);
            return;
        };
        first.cost.write_calls = first.cost.write_calls.saturating_add(1);
        let lead = first.cost.write_group.0;
        if self.unwritten.get(1).is_none_or(|u| u.start >= to) {
            // The common case: the write carried one response's bytes only.
            return;
        }
        // The responses this write carried bytes of: the first, and every later
        // one that starts before the write's end.
        let carried = 1 + self
            .unwritten
            .iter()
            .skip(1)
            .take_while(|u| u.start < to)
            .count();
        let Some(last) = self.unwritten.get(carried - 1).map(|u| u.cost.index) else {
            return;
        };
        for u in self.unwritten.iter_mut().take(carried) {
            u.cost.write_group.0 = u.cost.write_group.0.min(lead);
            u.cost.write_group.1 = u.cost.write_group.1.max(last);
        }
    }

    /// Bytes up to `written` of the output stream are written, at `now`: reports
    /// every response that is now complete on the wire.
    #[inline]
    pub(crate) fn written(
        &mut self,
        written: u64,
        now: Instant,
        mut report: impl FnMut(&RequestCost),
    ) {
        while self.unwritten.front().is_some_and(|u| u.end <= written) {
            if let Some(mut done) = self.unwritten.pop_front() {
                done.cost.written = Some(now);
                report(&done.cost);
            }
        }
    }

    /// Queues a complete response until its last byte is written. The first one
    /// gets room for itself alone: a connection almost always has one response
    /// queued at a time, and a record is a few hundred bytes, so the default first
    /// growth (room for four) would keep about 1 KiB per connection, idle ones
    /// included, for nothing. Pipelined responses grow the queue as usual.
    fn push_unwritten(&mut self, unwritten: Unwritten) {
        if self.unwritten.capacity() == 0 {
            self.unwritten.reserve_exact(1);
        }
        self.unwritten.push_back(unwritten);
    }

    /// Responses complete but not yet written.
    #[inline]
    pub(crate) fn unwritten(&self) -> usize {
        self.unwritten.len()
    }

    /// Bytes of storage the ledger holds.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.unwritten.capacity() * std::mem::size_of::<Unwritten>()
    }

    /// Gives back the storage of an empty queue grown for a burst.
    pub(crate) fn release(&mut self) {
        if self.unwritten.is_empty() {
            self.unwritten = VecDeque::new();
        }
    }

    /// Takes the record of the request being received and starts the next one.
    fn take_current(&mut self) -> RequestCost {
        let next = RequestCost::new(self.serial, self.next_index, self.accepted, self.last_read);
        self.next_index += 1;
        self.started = false;
        std::mem::replace(&mut self.current, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_read_and_a_write_shared_by_three_pipelined_requests_are_counted_once() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(7, t0);
        let t1 = t0 + Duration::from_millis(1);
        // One read brings three requests; the next read finds nothing.
        ledger.read(ReadCall::Data(90), t1, false);
        ledger.read(ReadCall::WouldBlock, t1, false);
        let mut out = 0;
        for i in 0..3u64 {
            if i > 0 {
                ledger.start_from_buffer();
            }
            ledger.head_parsed(t1, 30, Label::new(b"GET / HTTP/1.1"));
            ledger.dispatched(t1, out);
            ledger.set_status(200);
            out += 100;
            ledger.response_complete(out);
        }
        // One write carries all three responses.
        ledger.write(0, 300);
        let mut seen = Vec::new();
        ledger.written(300, t1, |c| seen.push(*c));
        assert_eq!(seen.len(), 3);
        let calls: Vec<_> = seen.iter().map(|c| (c.read_calls, c.write_calls)).collect();
        assert_eq!(calls, [(2, 1), (0, 0), (0, 0)]);
        for c in &seen {
            assert_eq!(c.read_group, (0, 2), "request {}", c.index);
            assert_eq!(c.write_group, (0, 2), "request {}", c.index);
            assert_eq!(c.bytes_out, 100);
            assert_eq!(c.conn, 7);
        }
        assert_eq!(seen.iter().map(|c| c.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn one_response_at_a_time_keeps_room_for_one_record_only() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(1, t0);
        let one = std::mem::size_of::<Unwritten>();
        let mut out = 0;
        for _ in 0..3 {
            ledger.read(ReadCall::Data(40), t0, false);
            ledger.head_parsed(t0, 40, Label::EMPTY);
            ledger.dispatched(t0, out);
            out += 100;
            ledger.response_complete(out);
            assert_eq!(ledger.capacity(), one);
            ledger.write(out - 100, 100);
            ledger.written(out, t0, |_| {});
        }
        // Pipelined responses still queue: the record grows past one.
        for _ in 0..3 {
            ledger.start_from_buffer();
            ledger.head_parsed(t0, 40, Label::EMPTY);
            ledger.dispatched(t0, out);
            out += 100;
            ledger.response_complete(out);
        }
        assert_eq!(ledger.unwritten(), 3);
        assert!(ledger.capacity() >= 3 * one);
        let mut seen = 0;
        ledger.write(out - 300, 300);
        ledger.written(out, t0, |_| seen += 1);
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_response_written_in_two_calls_is_charged_both() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(1, t0);
        ledger.read(ReadCall::Data(40), t0, false);
        ledger.head_parsed(t0, 40, Label::EMPTY);
        ledger.dispatched(t0, 0);
        ledger.response_complete(1000);
        ledger.write(0, 600);
        ledger.write(600, 0); // WouldBlock
        ledger.write(600, 400);
        let mut seen = Vec::new();
        ledger.written(600, t0, |c| seen.push(*c));
        assert!(seen.is_empty(), "not complete at 600 of 1000");
        ledger.written(1000, t0, |c| seen.push(*c));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].write_calls, 3);
        assert_eq!(seen[0].write_group, (0, 0));
        assert_eq!(seen[0].read_group, (0, 0));
    }

    #[test]
    fn a_request_read_on_its_own_has_its_own_group() {
        let t0 = Instant::now();
        let mut ledger = Ledger::new(1, t0);
        ledger.read(ReadCall::Data(40), t0, false);
        ledger.dispatched(t0, 0);
        ledger.response_complete(10);
        ledger.write(0, 10);
        ledger.written(10, t0, |_| {});
        // The next request arrives in a read of its own.
        let t1 = t0 + Duration::from_secs(1);
        ledger.read(ReadCall::Data(40), t1, false);
        ledger.start_from_buffer(); // already started: no effect
        ledger.dispatched(t1, 10);
        ledger.response_complete(20);
        ledger.write(10, 10);
        let mut seen = Vec::new();
        ledger.written(20, t1, |c| seen.push(*c));
        assert_eq!(seen[0].index, 1);
        assert_eq!(seen[0].read_calls, 1);
        assert_eq!(seen[0].read_group, (1, 1));
        assert_eq!(seen[0].first_byte, t1);
    }
}
