//! What each request costs: time per phase, bytes, and system calls.
//!
//! The notes say a request/response exchange costs a connection, some bytes each
//! way, some parsing, and a few trips into the kernel. This module holds the counters
//! that make those costs visible:
//!
//! - [`RequestCost`]: one request's timeline and counts. The driver
//!   ([`crate::server`]) takes the timestamps (`Instant::now()` a few times per
//!   request) and counts every `read()` and `write()` it makes, including the one
//!   that ends with `WouldBlock`, on behalf of the request in progress on that
//!   connection. The protocol code never sees a clock.
//! - [`RequestCost::timeline`]: a printable timeline in the spirit of
//!   `curl -v --trace`, used by the examples' `--trace` flag.
//! - [`ServerStats`]: the server-wide totals.
//!
//! The phases of one request, in order:
//!
//! ```text
//! accept ── first byte read ── head parsed ── body complete ── handler done ── response written
//!            (read syscalls)     (parse)        (body reads)     (application)   (write syscalls)
//! ```
//!
//! On a kept-alive connection, "accept" is long past for the second request, so the
//! timeline counts from the request's first byte and shows the accept for the first
//! request only. Pipelined requests that arrived in one `read()`, or whose responses
//! left in one `write()`, share those calls: they are counted once, and the
//! timeline of each says with which requests ([`RequestCost::read_group`]).

use std::fmt;
use std::time::{Duration, Instant};

use crate::trace::{Count, Dur, Span};

/// Longest start line kept in a [`RequestCost`] for display; longer ones are cut.
pub const LABEL_BYTES: usize = 64;

/// A short copy of a request's start line, held inline so that recording it
/// allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The first `len` bytes of the start line.
    bytes: [u8; LABEL_BYTES],
    /// How many of `bytes` are used.
    len: u8,
    /// Whether the text was longer than what is kept: shown as a trailing `…`.
    cut: bool,
}

impl Label {
    /// An empty label.
    pub const EMPTY: Label = Label {
        bytes: [0; LABEL_BYTES],
        len: 0,
        cut: false,
    };

    /// Keeps up to [`LABEL_BYTES`] bytes of `text`.
    pub fn new(text: &[u8]) -> Label {
        let mut label = Label::EMPTY;
        label.push(text);
        label
    }

    /// Appends as much of `more` as fits.
    pub fn push(&mut self, more: &[u8]) {
        let at = self.len as usize;
        let n = more.len().min(LABEL_BYTES.saturating_sub(at));
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(at..at + n), more.get(..n)) {
            dst.copy_from_slice(src);
            self.len += n as u8;
        }
        self.cut |= n < more.len();
    }

    /// Whether the text was longer than [`LABEL_BYTES`] and was cut.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len as usize).unwrap_or_default()
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_bytes().escape_ascii())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// What one connection has cost so far in system calls and bytes, both ways.
/// Whoever needs the cost of one message on an upgraded connection reads these
/// before and after ([`crate::server::Context::io`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// `read()` calls, including those that returned `WouldBlock`.
    pub read_calls: u64,
    /// `write()` calls, including those that returned `WouldBlock`.
    pub write_calls: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

/// One request's costs, from the first byte read to the last byte of its response
/// written.
///
/// Timestamps that a request never reached (a request rejected while its head was
/// still arriving has no "head parsed") are `None`.
#[derive(Debug, Clone, Copy)]
pub struct RequestCost {
    /// Which connection carried it (the driver's connection number), so that
    /// several requests of one connection can be told apart from other traffic.
    pub conn: u64,
    /// Its position on the connection: 0 for the first request, 1 for the next kept
    /// alive or pipelined one, and so on.
    pub index: u64,
    /// The request's start line (cut to [`LABEL_BYTES`]), to name it in a timeline.
    pub label: Label,
    /// The status code it was answered with.
    pub status: u16,
    /// When the connection was accepted. Shared by every request on it.
    pub accepted: Instant,
    /// When the read that delivered the request's first byte returned. For a
    /// pipelined request that arrived in the same read as the one before it, that
    /// read's time.
    pub first_byte: Instant,
    /// When the head was complete and parsed.
    pub head_parsed: Option<Instant>,
    /// When the body was complete (the same as `head_parsed` without a body).
    pub body_done: Option<Instant>,
    /// When the application's handler returned (for a deferred answer, when the
    /// handler first returned). `None` for bad input answered by the server itself.
    pub handler_done: Option<Instant>,
    /// When the last byte of the response was handed to the kernel.
    pub written: Option<Instant>,
    /// Bytes of the head, from the request line to the empty line.
    pub head_bytes: u64,
    /// Bytes of the body as they came over the wire (chunk framing included).
    pub body_wire_bytes: u64,
    /// Bytes of the body once decoded.
    pub body_bytes: u64,
    /// Bytes of the response (head, body, and any 100 Continue before it).
    pub bytes_out: u64,
    /// `read()` calls made while this request was the one being received,
    /// including the one that returned `WouldBlock`.
    pub read_calls: u32,
    /// Of `read_calls`, how many returned `WouldBlock` (nothing there yet).
    pub read_would_block: u32,
    /// `write()` calls that carried this request's response (a write that carried
    /// several pipelined responses is counted once, for the first of them).
    pub write_calls: u32,
    /// The requests of this connection (by [`RequestCost::index`], first to last,
    /// this one included) whose bytes came in the same `read()` calls as this
    /// one's. A read that carried several pipelined requests is counted once, in
    /// the `read_calls` of the first of them; the others show 0 and this group.
    /// `(index, index)` when the reads were this request's alone.
    pub read_group: (u64, u64),
    /// The same for `write()` calls: the responses, first to last, that shared a
    /// write with this one's. The write is counted in the first one's
    /// `write_calls`.
    pub write_group: (u64, u64),
}

impl RequestCost {
    /// A request whose first byte was read at `first_byte`, on a connection accepted
    /// at `accepted`.
    pub fn new(conn: u64, index: u64, accepted: Instant, first_byte: Instant) -> RequestCost {
        RequestCost {
            conn,
            index,
            label: Label::EMPTY,
            status: 0,
            accepted,
            first_byte,
            head_parsed: None,
            body_done: None,
            handler_done: None,
            written: None,
            head_bytes: 0,
            body_wire_bytes: 0,
            body_bytes: 0,
            bytes_out: 0,
            read_calls: 0,
            read_would_block: 0,
            write_calls: 0,
            read_group: (index, index),
            write_group: (index, index),
        }
    }

    /// Bytes received for this request: head and body as sent.
    pub fn bytes_in(&self) -> u64 {
        self.head_bytes + self.body_wire_bytes
    }

    /// From the first byte read to the response written: the time the server spent
    /// on this request, as the client would see it minus the network.
    pub fn total(&self) -> Option<Duration> {
        self.written
            .map(|w| w.saturating_duration_since(self.first_byte))
    }

    /// The timeline, for printing. Times count from the request's first byte and
    /// take the unit their size calls for ([`crate::trace::Dur`]); the step from
    /// the phase before is in its own column:
    ///
    /// ```text
    /// * conn 3 request 0: GET / HTTP/1.1 -> 200
    /// *   connection accepted 400 µs before the first byte
    /// *    0 ns  first byte read
    /// * 10.0 µs  head parsed        +10.0 µs  78 bytes of head
    /// * 10.0 µs  body complete         +0 ns  0 bytes of body (0 on the wire)
    /// * 15.0 µs  handler done       +5.00 µs
    /// * 30.0 µs  response written   +15.0 µs  245 bytes out
    /// *   syscalls: 2 reads (1 WouldBlock); 1 write
    /// *   bytes: 78 in, 245 out
    /// ```
    ///
    /// Only a connection's first request shows when it was accepted: for the
    /// requests kept alive after it, that moment says nothing about them.
    ///
    /// When pipelined requests came in one `read()` or their responses went out in
    /// one `write()`, the calls are counted once, in the first request's numbers
    /// ([`RequestCost::read_group`], [`RequestCost::write_group`]), and the
    /// timeline says so instead of showing a later request as free:
    ///
    /// ```text
    /// *   syscalls: 2 reads (1 WouldBlock), shared with requests 1-2; 1 write, shared with responses 1-2
    /// *   syscalls: none of its own: its bytes came in request 0's reads (requests 0-2), its response went in request 0's write (responses 0-2)
    /// ```
    pub fn timeline(&self) -> Timeline<'_> {
        Timeline { cost: self }
    }
}

/// A [`RequestCost`] formatted as a timeline; see [`RequestCost::timeline`].
pub struct Timeline<'a> {
    /// The request being shown.
    cost: &'a RequestCost,
}

/// How one request's reads or writes are told: its own calls (maybe shared with
/// the requests after it), or none, its bytes having gone in an earlier
/// request's calls.
enum Calls {
    /// This request's own calls, shared with requests `others` if any.
    Own(Option<Span>),
    /// None of its own: the calls were made for request `first` of `group`.
    Borrowed { first: u64, group: Span },
}

impl Calls {
    /// How the calls of request `index`, in `group`, are told.
    fn of(index: u64, group: (u64, u64)) -> Calls {
        let (first, last) = group;
        if first < index {
            Calls::Borrowed {
                first,
                group: Span(first, last),
            }
        } else if last > index {
            Calls::Own(Some(Span(index + 1, last)))
        } else {
            Calls::Own(None)
        }
    }
}

impl fmt::Display for Timeline<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.cost;
        let since = |t: Instant| Dur(t.saturating_duration_since(c.first_byte));
        writeln!(
            f,
            "* conn {} request {}: {} -> {}",
            c.conn, c.index, c.label, c.status
        )?;
        if c.index == 0 {
            writeln!(
                f,
                "*   connection accepted {} before the first byte",
                Dur(c.first_byte.saturating_duration_since(c.accepted))
            )?;
        }
        let w = Dur::WIDTH;
        writeln!(f, "* {:>w$}  first byte read", Dur(Duration::ZERO))?;
        let mut prev = c.first_byte;
        let phases = [
            (c.head_parsed, "head parsed"),
            (c.body_done, "body complete"),
            (c.handler_done, "handler done"),
            (c.written, "response written"),
        ];
        for (at, name) in phases {
            let Some(at) = at else {
                writeln!(f, "* {:>w$}  {name:<17}  (not reached)", "-")?;
                continue;
            };
            // Phases are shown in order; a skipped one does not reset the step.
            let step = format!("+{}", Dur(at.saturating_duration_since(prev)));
            write!(f, "* {:>w$}  {name:<17}  {step:>8}", since(at))?;
            match name {
                "head parsed" => write!(f, "  {} bytes of head", c.head_bytes)?,
                "body complete" => write!(
                    f,
                    "  {} bytes of body ({} on the wire)",
                    c.body_bytes, c.body_wire_bytes
                )?,
                "response written" => write!(f, "  {} bytes out", c.bytes_out)?,
                _ => {}
            }
            writeln!(f)?;
            prev = at;
        }
        let reads = Calls::of(c.index, c.read_group);
        let writes = Calls::of(c.index, c.write_group);
        write!(f, "*   syscalls: ")?;
        match (reads, writes) {
            (
                Calls::Borrowed {
                    first: r,
                    group: rg,
                },
                Calls::Borrowed {
                    first: w,
                    group: wg,
                },
            ) => write!(
                f,
                "none of its own: its bytes came in request {r}'s reads (requests {rg}), \
                 its response went in request {w}'s write (responses {wg})"
            )?,
            (reads, writes) => {
                match reads {
                    Calls::Own(others) => {
                        write!(f, "{}", Count(c.read_calls.into(), "read", "reads"))?;
                        if c.read_would_block > 0 {
                            write!(f, " ({} WouldBlock)", c.read_would_block)?;
                        }
                        if let Some(others) = others {
                            write!(f, ", shared with requests {others}")?;
                        }
                    }
                    Calls::Borrowed { first, group } => write!(
                        f,
                        "no read of its own: its bytes came in request {first}'s reads \
                         (requests {group})"
                    )?,
                }
                write!(f, "; ")?;
                match writes {
                    Calls::Own(others) => {
                        write!(f, "{}", Count(c.write_calls.into(), "write", "writes"))?;
                        if let Some(others) = others {
                            write!(f, ", shared with responses {others}")?;
                        }
                    }
                    Calls::Borrowed { first, group } => write!(
                        f,
                        "no write of its own: its response went in request {first}'s write \
                         (responses {group})"
                    )?,
                }
            }
        }
        writeln!(f)?;
        writeln!(f, "*   bytes: {} in, {} out", c.bytes_in(), c.bytes_out)
    }
}

/// The statuses the server itself answers bad input with, in the order
/// [`ErrorCounts`] keeps them.
pub const ERROR_STATUSES: [u16; 8] = [400, 408, 413, 414, 431, 501, 505, 500];

/// Error responses the server generated, by status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    /// One counter per entry of [`ERROR_STATUSES`]; any other status is counted
    /// with 500's.
    counts: [u64; ERROR_STATUSES.len()],
}

impl ErrorCounts {
    /// Counts one response with `status`.
    pub fn add(&mut self, status: u16) {
        let at = ERROR_STATUSES
            .iter()
            .position(|&s| s == status)
            .unwrap_or(ERROR_STATUSES.len() - 1);
        if let Some(n) = self.counts.get_mut(at) {
            *n += 1;
        }
    }

    /// How many responses with `status` were sent.
    pub fn get(&self, status: u16) -> u64 {
        ERROR_STATUSES
            .iter()
            .position(|&s| s == status)
            .and_then(|at| self.counts.get(at).copied())
            .unwrap_or(0)
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(status, count)` for every status counted at least once.
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        ERROR_STATUSES
            .iter()
            .zip(self.counts.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (*s, *n))
    }
}

/// Totals for the whole server since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted and served.
    pub connections_accepted: u64,
    /// Connections open right now.
    pub connections_open: u64,
    /// Connections refused because the server was at its connection limit: each
    /// was accepted, answered `503` with `Retry-After` and `Connection: close`
    /// without its request being read, and closed.
    pub connections_rejected: u64,
    /// Times `accept()` failed for lack of resources (out of file descriptors or
    /// memory): the connections waiting in the backlog stay there until a retry
    /// shortly after.
    pub accept_failures: u64,
    /// Capacity, in bytes, of every buffer the loop holds now: connections' read,
    /// body and output buffers, the spare read buffers, the action queue. After a
    /// burst it comes back down once connections have been idle for
    /// `Config::idle_release` (RSS cannot show this: the allocator keeps freed
    /// pages).
    pub buffer_capacity_bytes: u64,
    /// Requests whose head was parsed (bad requests rejected before that are
    /// counted in `error_responses` only).
    pub requests: u64,
    /// Responses whose last byte was written.
    pub responses: u64,
    /// Bytes read from all connections.
    pub bytes_in: u64,
    /// Bytes written to all connections.
    pub bytes_out: u64,
    /// `read()` calls, including those that returned `WouldBlock` or an error.
    pub read_calls: u64,
    /// `write()` calls, including those that returned `WouldBlock` or an error.
    pub write_calls: u64,
    /// Output bytes produced but not yet written, over all connections, now.
    pub queued_output_bytes: u64,
    /// The most output ever queued on one connection at once: with backpressure
    /// this stays near the configured bound however fast a client sends.
    pub peak_queued_output_bytes: u64,
    /// Times a connection stopped being read because its queued output passed the
    /// bound.
    pub backpressure_pauses: u64,
    /// Connections closed because the header, body or idle timeout passed.
    pub timeouts: u64,
    /// Error responses the server itself sent, by status: bad input it refused
    /// before the application saw it (a malformed or unsupported head, a head or
    /// body too large, a head or body too slow to arrive: 400, 501, 505, 413, 414,
    /// 431, 408). The application's own error responses (a 404 from a handler) are
    /// not counted here: to the server they are responses like any other.
    pub error_responses: ErrorCounts,
}

impl fmt::Display for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "connections: {} accepted, {} open, {} refused at the limit (503), {} accept failures",
            self.connections_accepted,
            self.connections_open,
            self.connections_rejected,
            self.accept_failures
        )?;
        writeln!(
            f,
            "requests: {} parsed, {} answered",
            self.requests, self.responses
        )?;
        writeln!(
            f,
            "bytes: {} in, {} out ({} queued now, peak {} on one connection)",
            self.bytes_in, self.bytes_out, self.queued_output_bytes, self.peak_queued_output_bytes
        )?;
        writeln!(
            f,
            "syscalls: {} read, {} write",
            self.read_calls, self.write_calls
        )?;
        writeln!(
            f,
            "backpressure pauses: {}, timeouts: {}",
            self.backpressure_pauses, self.timeouts
        )?;
        // Only the driver's own answers: the application's 400s and 404s are
        // ordinary responses to it.
        write!(
            f,
            "refused by the server before the application saw them (malformed or unsupported, too large, too slow):"
        )?;
        let mut none = true;
        for (status, n) in self.error_responses.iter() {
            write!(f, " {status}x{n}")?;
            none = false;
        }
        if none {
            write!(f, " none")?;
        }
        writeln!(f)?;
        write!(f, "buffers held: {} bytes", self.buffer_capacity_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_longer_than_kept_ends_in_an_ellipsis() {
        let short = Label::new(b"GET / HTTP/1.1");
        assert_eq!(short.to_string(), "GET / HTTP/1.1");
        assert!(!short.is_cut());
        let long = format!("GET /checkstatus?jobId={} HTTP/1.1", "9".repeat(60));
        let label = Label::new(long.as_bytes());
        assert!(label.is_cut());
        assert_eq!(label.as_bytes(), &long.as_bytes()[..LABEL_BYTES]);
        assert_eq!(
            label.to_string(),
            format!("{}…", &long[..LABEL_BYTES]),
            "the kept bytes, then the mark"
        );
        // Filled in two pushes: cut by the second.
        let mut pushed = Label::new(&long.as_bytes()[..40]);
        assert!(!pushed.is_cut());
        pushed.push(&long.as_bytes()[40..]);
        assert_eq!(pushed, label);
    }

    /// A request of `conn`, `index`, whose first byte came 400 µs after the
    /// accept, parsed 10 µs later, handled in 5 µs and written 15 µs after that.
    fn served(index: u64) -> RequestCost {
        let t0 = Instant::now();
        let first = t0 + Duration::from_micros(400);
        let mut c = RequestCost::new(3, index, t0, first);
        c.label = Label::new(b"GET / HTTP/1.1");
        c.status = 200;
        c.head_parsed = Some(first + Duration::from_micros(10));
        c.body_done = c.head_parsed;
        c.handler_done = Some(first + Duration::from_micros(15));
        c.written = Some(first + Duration::from_micros(30));
        c.head_bytes = 78;
        c.bytes_out = 245;
        c
    }

    #[test]
    fn timeline_of_a_first_request_shows_the_accept_and_every_phase() {
        let mut c = served(0);
        c.read_calls = 2;
        c.read_would_block = 1;
        c.write_calls = 1;
        assert_eq!(
            c.timeline().to_string(),
            "* conn 3 request 0: GET / HTTP/1.1 -> 200\n\
             *   connection accepted 400 µs before the first byte\n\
             *    0 ns  first byte read\n\
             * 10.0 µs  head parsed        +10.0 µs  78 bytes of head\n\
             * 10.0 µs  body complete         +0 ns  0 bytes of body (0 on the wire)\n\
             * 15.0 µs  handler done       +5.00 µs\n\
             * 30.0 µs  response written   +15.0 µs  245 bytes out\n\
             *   syscalls: 2 reads (1 WouldBlock); 1 write\n\
             *   bytes: 78 in, 245 out\n"
        );
        assert_eq!(c.total(), Some(Duration::from_micros(30)));
    }

    #[test]
    fn timeline_of_a_pipelined_group_says_who_shared_the_syscalls() {
        // Three requests came in one read and left in one write: the first
        // carries the calls, the others say where theirs went.
        let mut first = served(0);
        first.read_calls = 2;
        first.read_would_block = 1;
        first.write_calls = 1;
        first.read_group = (0, 2);
        first.write_group = (0, 2);
        let text = first.timeline().to_string();
        assert!(
            text.contains(
                "*   syscalls: 2 reads (1 WouldBlock), shared with requests 1-2; \
                 1 write, shared with responses 1-2\n"
            ),
            "{text}"
        );
        let mut second = served(1);
        second.read_group = (0, 2);
        second.write_group = (0, 2);
        let text = second.timeline().to_string();
        assert!(text.starts_with("* conn 3 request 1: GET / HTTP/1.1 -> 200\n*    0 ns"));
        assert!(!text.contains("accepted"), "{text}");
        assert!(
            text.contains(
                "*   syscalls: none of its own: its bytes came in request 0's reads \
                 (requests 0-2), its response went in request 0's write (responses 0-2)\n"
            ),
            "{text}"
        );
        // Read alone, answered in one write with the next response.
        let mut third = served(2);
        third.read_calls = 1;
        third.write_group = (1, 2);
        let text = third.timeline().to_string();
        assert!(
            text.contains(
                "*   syscalls: 1 read; no write of its own: its response went in \
                 request 1's write (responses 1-2)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn timeline_switches_units_for_long_waits_and_keeps_columns_apart() {
        // A handler that held the answer for ten seconds (a long poll).
        let mut c = served(0);
        let first = c.first_byte;
        c.handler_done = Some(first + Duration::from_micros(10_000_015));
        c.written = Some(first + Duration::from_micros(10_004_805));
        c.bytes_out = 220;
        c.read_calls = 1;
        c.write_calls = 1;
        let text = c.timeline().to_string();
        assert!(
            text.contains("*  10.0 s  handler done        +10.0 s\n"),
            "{text}"
        );
        assert!(
            text.contains("*  10.0 s  response written   +4.79 ms  220 bytes out\n"),
            "{text}"
        );
    }

    #[test]
    fn label_is_cut_and_escaped() {
        let long = [b'a'; 100];
        assert_eq!(Label::new(&long).as_bytes().len(), LABEL_BYTES);
        assert_eq!(
            Label::new(b"GET /\x01 HTTP/1.1").to_string(),
            "GET /\\x01 HTTP/1.1"
        );
    }

    #[test]
    fn totals_say_the_error_responses_are_the_servers_own() {
        let mut stats = ServerStats::default();
        let text = stats.to_string();
        assert!(
            text.contains(
                "\nrefused by the server before the application saw them \
                 (malformed or unsupported, too large, too slow): none\n"
            ),
            "{text}"
        );
        stats.error_responses.add(400);
        stats.error_responses.add(400);
        stats.error_responses.add(408);
        let text = stats.to_string();
        assert!(text.contains("too slow): 400x2 408x1\n"), "{text}");
        assert!(!text.contains("error responses"), "{text}");
    }

    #[test]
    fn error_counts_by_status() {
        let mut e = ErrorCounts::default();
        e.add(400);
        e.add(400);
        e.add(431);
        e.add(418);
        assert_eq!(e.get(400), 2);
        assert_eq!(e.get(431), 1);
        assert_eq!(e.get(500), 1);
        assert_eq!(e.total(), 4);
    }
}
