//! The one format every example's `--trace` prints: one line per thing the server
//! handled, with what it cost.
//!
//! A server that teaches has to show what it does, and the three example servers
//! handle different things: `request_response` answers requests, `ws_echo`
//! upgrades connections and echoes messages, `chat_push` serves a page, upgrades,
//! refuses foreign origins and broadcasts. Each of those is an *event*, and each
//! event becomes one [`TraceLine`], laid out in the same columns:
//!
//! ```text
//!   1.013 s  conn 1     request     in 79 B       out 4704 B                2 reads    1 write     took 172 µs             GET / HTTP/1.1 -> 200
//!   1.021 s  conn 2     handshake   in 186 B      out 166 B                 2 reads    1 write     took 246 µs             101 to 127.0.0.1:41448, origin http://127.0.0.1:28651
//!   1.021 s  conn 2     broadcast   in 0 B        out 27 B x 1 client       0 reads    1 write     reached all in 416 µs   User41448 just connected.
//!   1.022 s  conn 2     ws message  in 8 B        out 20 B                  2 reads    1 write     took 79.2 µs            text "hi" (2 B)
//!   1.022 s  conn 2     broadcast   in 0 B        out 20 B x 1 client       0 reads    1 write     reached all in 79.2 µs  User41448 says: hi
//!   1.022 s  conn 2     ws closed   closed by the peer (1000)
//!   1.022 s  conn 2     broadcast   in 0 B        out 17 B x 0 clients      0 reads    1 write     reached all in 115 µs   User41448 left.
//!   1.082 s  conn 4     refused     in 183 B      out 186 B                 2 reads    1 write     took 177 µs             403 origin not allowed (RFC 6455 section 10.2), origin http://evil.example
//! ```
//!
//! (`chat_push --allow-origin http://127.0.0.1:28651 --trace`: the page loaded,
//! a client that says hi and leaves, then a WebSocket from a foreign origin,
//! refused.) An event that did I/O of its own has its cost in fixed-width columns
//! first and its text last, so that the numbers stay in their columns however
//! long the text is (a request's target, an origin); an event without I/O of its
//! own (a close, or the jobs server's `held`, `released` and `wake-up`) has only
//! its text.
//!
//! - **when**: the time since the trace began (the example takes the time it
//!   starts at) of the moment the event happened *as the line tells it*, which is
//!   the moment the line was made: for a request, when the last byte of its
//!   response was handed to the kernel; for a message, when its loop turn had
//!   written what it answered; for a broadcast, when it had reached every
//!   client; for a close, when the connection closed. So lines come in time
//!   order, even for a request held for seconds (a long poll, an event stream),
//!   and an event's start is its time minus its `took`: a long poll's line at
//!   `1.062 s` that `took 973 ms` arrived at 89 ms. The time is in seconds to the
//!   millisecond ([`Clock`]), so that events 200 ms apart never share a time.
//! - **conn**: the driver's connection number ([`crate::server::ConnId::serial`]);
//!   a broadcast shows the connection whose message caused it.
//! - **cost**: bytes read and written for the event, the `read()` and `write()`
//!   system calls it took (those that returned `WouldBlock` included), and how
//!   long it took. A broadcast's output is one frame queued to many clients: `x 3
//!   clients`. When the system calls were shared with other requests (pipelining)
//!   the line says so after its text; the request timeline
//!   ([`crate::cost::RequestCost::timeline`]) tells the details.
//!
//! The columns are as wide as [`columns`] says: wide enough for a few MB in or out,
//! hundreds of system calls and any duration; only a figure beyond those (a
//! connection number past 9999, a 10 MB body) pushes the columns after it right.
//!
//! Durations are written with the unit their size calls for, in a fixed width
//! ([`Dur`]): `850 ns`, `12.3 µs`, `412 µs`, `1.25 ms`, `10.0 s`, so that a
//! 10-second wait reads as `10.0 s` rather than `10004805 µs`. Counts agree with
//! their noun ([`Count`]): `1 client`, `3 clients`.
//!
//! The library formats; it never prints. The events come from the patterns'
//! observers (`RequestResponse::with_observer`, `WsServer::set_observer`,
//! `PushHub::set_observer`), and each example prints the lines they make.

use std::fmt;
use std::time::{Duration, Instant};

use crate::cost::RequestCost;

/// A duration written with the unit its size calls for, to three significant
/// digits: `850 ns`, `9.05 µs`, `412 µs`, `1.25 ms`, `10.0 s`.
///
/// A width given in the format string (`{:>7}`) pads it; [`Dur::WIDTH`] fits every
/// duration below 1000 seconds.
///
/// ```
/// use std::time::Duration;
/// use wirepatterns::trace::Dur;
///
/// assert_eq!(Dur(Duration::from_nanos(850)).to_string(), "850 ns");
/// assert_eq!(Dur(Duration::from_micros(412)).to_string(), "412 µs");
/// assert_eq!(Dur(Duration::from_micros(10_004_805)).to_string(), "10.0 s");
/// assert_eq!(format!("{:>7}", Dur(Duration::from_micros(9))), "9.00 µs");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    /// Characters in the widest duration below 1000 seconds (`99.9 ms`).
    pub const WIDTH: usize = 7;
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos < 1000 {
            return f.pad(&format!("{nanos} ns"));
        }
        const UNITS: [(f64, &str); 3] = [(1e3, "µs"), (1e6, "ms"), (1e9, "s")];
        let nanos = nanos as f64;
        let mut text = String::new();
        for (i, (scale, unit)) in UNITS.iter().enumerate() {
            let value = nanos / scale;
            text = format!("{} {unit}", three_digits(value));
            // 999.7 µs rounds to "1000 µs": say "1.00 ms" instead.
            let last = i + 1 == UNITS.len();
            if last || value < 999.5 {
                break;
            }
        }
        f.pad(&text)
    }
}

/// `value` to three significant digits, as [`Dur`] and [`Size`] print it: two
/// decimals below 10 (`9.05`), one below 100 (`12.3`), none above (`412`).
fn three_digits(value: f64) -> String {
    if value < 9.995 {
        format!("{value:.2}")
    } else if value < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// A size in bytes as a person reads it: bytes below 1 KiB, then KiB, MiB or
/// GiB (powers of 1024) with three significant digits.
///
/// ```
/// use wirepatterns::trace::Size;
///
/// assert_eq!(Size(512).to_string(), "512 B");
/// assert_eq!(Size(4_464 * 1024).to_string(), "4.36 MiB");
/// assert_eq!(Size(4 * 1024 * 1024).to_string(), "4.00 MiB");
/// assert_eq!(Size(20_480).to_string(), "20.0 KiB");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 1024 {
            return f.pad(&format!("{} B", self.0));
        }
        const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
        let mut value = self.0 as f64;
        let mut text = String::new();
        for (i, unit) in UNITS.iter().enumerate() {
            value /= 1024.0;
            text = format!("{} {unit}", three_digits(value));
            if i + 1 == UNITS.len() || value < 1023.5 {
                break;
            }
        }
        f.pad(&text)
    }
}

/// A count and its noun, in agreement: `1 client`, `3 clients`, `0 writes`.
///
/// ```
/// use wirepatterns::trace::Count;
///
/// assert_eq!(Count(1, "client", "clients").to_string(), "1 client");
/// assert_eq!(Count(3, "client", "clients").to_string(), "3 clients");
/// assert_eq!(format!("{:<8}", Count(0, "read", "reads")), "0 reads ");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64, pub &'static str, pub &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, one, many) = *self;
        f.pad(&format!("{n} {}", if n == 1 { one } else { many }))
    }
}

/// A range of requests or responses on one connection, by index: `1` or `0-2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub u64, pub u64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}-{}", self.0, self.1)
        }
    }
}

/// What an event cost, for the cost columns of a [`TraceLine`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCost {
    /// Bytes read for it.
    pub bytes_in: u64,
    /// Bytes written for it (per copy, when `copies` is set).
    pub bytes_out: u64,
    /// The output went to this many clients (a broadcast); `None` for one peer.
    pub copies: Option<u64>,
    /// `read()` calls, `WouldBlock` included.
    pub read_calls: u64,
    /// `write()` calls, `WouldBlock` included.
    pub write_calls: u64,
    /// How long it took, and what that time is: `("took", d)`, `("reached all
    /// in", d)`.
    pub took: Option<(&'static str, Duration)>,
    /// Other requests or messages these system calls were shared with, said in
    /// words at the end of the line (`syscalls shared with requests 0-2`).
    pub shared: Option<SharedWith>,
}

/// Whom an event's system calls were shared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedWith {
    /// What the others are (plural noun): `"requests"`, `"messages"`.
    pub what: &'static str,
    /// Which (by index on the connection), this one included.
    pub span: Span,
}

/// One event, as one line of a trace. See the [module docs](self) for the
/// columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// When the event happened as the line tells it (for an event with a
    /// duration, when it ended), since the trace began.
    pub at: Duration,
    /// The connection it happened on (or was caused by), by its serial number.
    pub conn: Option<u64>,
    /// What kind of event: a short fixed word or two (`request`, `handshake`,
    /// `refused`, `ws message`, `ws closed`, `broadcast`).
    pub kind: &'static str,
    /// What happened, in words.
    pub what: String,
    /// What it cost, for events that did I/O of their own.
    pub cost: Option<LineCost>,
}

/// A moment on a trace's timeline: seconds since the trace began, to the
/// millisecond (`0.576 s`, `11.347 s`). A fixed resolution, unlike [`Dur`], so
/// that two events 200 ms apart never read as the same time, however long the
/// trace has run.
///
/// ```
/// use std::time::Duration;
/// use wirepatterns::trace::Clock;
///
/// assert_eq!(Clock(Duration::from_micros(576_400)).to_string(), "0.576 s");
/// assert_eq!(Clock(Duration::from_micros(11_347_000)).to_string(), "11.347 s");
/// assert_eq!(format!("{:>9}", Clock(Duration::ZERO)), "  0.000 s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock(pub Duration);

impl Clock {
    /// Characters in the widest moment below 1000 seconds (`999.999 s`).
    pub const WIDTH: usize = 9;
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole milliseconds, rounded down, so that a line never claims a moment
        // that had not come yet.
        let ms = self.0.as_millis();
        f.pad(&format!("{}.{:03} s", ms / 1000, ms % 1000))
    }
}

/// The width of each column of a [`TraceLine`], in characters. A column's text is
/// padded to its width; a longer one (a figure past what the width was chosen
/// for) pushes the columns after it right.
pub mod columns {
    use super::Clock;

    /// `when`: [`Clock::WIDTH`].
    pub const WHEN: usize = Clock::WIDTH;
    /// `conn 9999`.
    pub const CONN: usize = 9;
    /// `ws message`: the longest kind.
    pub const KIND: usize = 10;
    /// `in 9999999 B`.
    pub const IN: usize = 12;
    /// `out 99999 B x 99 clients`, `out 9999999 B`.
    pub const OUT: usize = 24;
    /// `999 reads`.
    pub const READS: usize = 9;
    /// `999 writes`.
    pub const WRITES: usize = 10;
    /// `reached all in 99.9 ms`.
    pub const TOOK: usize = 22;
    /// Between two columns: two spaces.
    pub const GAP: usize = 2;
    /// Where the text of a line without cost starts.
    pub const TEXT_WITHOUT_COST: usize = WHEN + CONN + KIND + 3 * GAP;
    /// Where the text of a line with its cost starts: after every cost column.
    pub const TEXT_WITH_COST: usize =
        TEXT_WITHOUT_COST + IN + OUT + READS + WRITES + TOOK + 5 * GAP;
}

impl TraceLine {
    /// A line for an event at `at`, with the trace begun at `start`. For an event
    /// that took time, `at` is when it ended (the line's time column), and the
    /// cost's `took` tells how long before that it began.
    pub fn new(start: Instant, at: Instant, conn: Option<u64>, kind: &'static str) -> TraceLine {
        TraceLine {
            at: at.saturating_duration_since(start),
            conn,
            kind,
            what: String::new(),
            cost: None,
        }
    }

    /// The line of a request whose response was written: `GET / HTTP/1.1 -> 200`,
    /// with its bytes, system calls and time from its first byte to its response
    /// written, and the other requests it shared system calls with, if any.
    ///
    /// It is stamped with the time its response was written (the moment the line
    /// is made), not that of its first byte: a request held for a second comes
    /// after what happened in that second, and its start is its time minus its
    /// `took`.
    pub fn request(start: Instant, cost: &RequestCost) -> TraceLine {
        let (first, last) = (
            cost.read_group.0.min(cost.write_group.0),
            cost.read_group.1.max(cost.write_group.1),
        );
        let done = cost.written.unwrap_or(cost.first_byte);
        TraceLine::new(start, done, Some(cost.conn), "request")
            .what(format_args!("{} -> {}", cost.label, cost.status))
            .cost(LineCost {
                bytes_in: cost.bytes_in(),
                bytes_out: cost.bytes_out,
                copies: None,
                read_calls: cost.read_calls.into(),
                write_calls: cost.write_calls.into(),
                took: cost.total().map(|t| ("took", t)),
                shared: (first != last).then_some(SharedWith {
                    what: "requests",
                    span: Span(first, last),
                }),
            })
    }

    /// The same line saying `what` happened.
    pub fn what(mut self, what: impl fmt::Display) -> TraceLine {
        self.what = what.to_string();
        self
    }

    /// The same line with its cost.
    pub fn cost(mut self, cost: LineCost) -> TraceLine {
        self.cost = Some(cost);
        self
    }
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conn = self.conn.map_or_else(String::new, |c| format!("conn {c}"));
        write!(
            f,
            "{:>when$}  {conn:<conn_w$}  {:<kind$}  ",
            Clock(self.at),
            self.kind,
            when = columns::WHEN,
            conn_w = columns::CONN,
            kind = columns::KIND,
        )?;
        let Some(cost) = self.cost else {
            return write!(f, "{}", self.what);
        };
        let out = match cost.copies {
            Some(n) => format!(
                "out {} B x {}",
                cost.bytes_out,
                Count(n, "client", "clients")
            ),
            None => format!("out {} B", cost.bytes_out),
        };
        let took = cost.took.map_or_else(String::new, |(label, took)| {
            format!("{label} {}", Dur(took))
        });
        let mut text = self.what.clone();
        if let Some(shared) = cost.shared {
            if !text.is_empty() {
                text.push_str("  ");
            }
            text.push_str(&format!(
                "(syscalls shared with {} {})",
                shared.what, shared.span
            ));
        }
        let columns = format!(
            "{:<in_w$}  {out:<out_w$}  {:<reads$}  {:<writes$}  {took:<took_w$}  {text}",
            format!("in {} B", cost.bytes_in),
            Count(cost.read_calls, "read", "reads"),
            Count(cost.write_calls, "write", "writes"),
            in_w = columns::IN,
            out_w = columns::OUT,
            reads = columns::READS,
            writes = columns::WRITES,
            took_w = columns::TOOK,
        );
        // No trailing spaces when there is no text.
        f.write_str(columns.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(nanos: u64) -> String {
        Dur(Duration::from_nanos(nanos)).to_string()
    }

    #[test]
    fn durations_take_the_unit_their_size_calls_for() {
        assert_eq!(d(0), "0 ns");
        assert_eq!(d(999), "999 ns");
        assert_eq!(d(1_000), "1.00 µs");
        assert_eq!(d(9_050), "9.05 µs");
        assert_eq!(d(12_340), "12.3 µs");
        assert_eq!(d(412_000), "412 µs");
        assert_eq!(d(999_700), "1.00 ms");
        assert_eq!(d(1_250_000), "1.25 ms");
        assert_eq!(d(85_000_000), "85.0 ms");
        assert_eq!(d(10_004_805_000), "10.0 s");
        assert_eq!(d(4_000_000_000_000), "4000 s");
    }

    #[test]
    fn durations_pad_to_a_fixed_width() {
        for nanos in [
            0,
            7,
            999,
            1_000,
            99_940,
            412_000,
            999_700,
            99_900_000,
            5e11 as u64,
        ] {
            let text = format!("{:>w$}", Dur(Duration::from_nanos(nanos)), w = Dur::WIDTH);
            assert_eq!(text.chars().count(), Dur::WIDTH, "{text:?}");
        }
    }

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(Count(0, "client", "clients").to_string(), "0 clients");
        assert_eq!(Count(1, "client", "clients").to_string(), "1 client");
        assert_eq!(Count(2, "write", "writes").to_string(), "2 writes");
        assert_eq!(Span(2, 2).to_string(), "2");
        assert_eq!(Span(0, 2).to_string(), "0-2");
    }

    #[test]
    fn a_line_without_cost_is_when_conn_kind_what() {
        let t0 = Instant::now();
        let line = TraceLine::new(t0, t0 + Duration::from_millis(1520), Some(4), "ws closed")
            .what("by the peer (1000)");
        assert_eq!(
            line.to_string(),
            "  1.520 s  conn 4     ws closed   by the peer (1000)"
        );
        assert_eq!(
            column_of(&line.to_string(), "by the"),
            columns::TEXT_WITHOUT_COST
        );
    }

    /// The character (not byte: `µ` is two) at which `needle` starts in `line`.
    fn column_of(line: &str, needle: &str) -> usize {
        let at = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {line:?}"));
        line.get(..at).map_or(0, |before| before.chars().count())
    }

    fn request_line(t0: Instant, what: &str, cost: LineCost) -> String {
        TraceLine::new(t0, t0 + Duration::from_millis(1010), Some(1), "request")
            .what(what)
            .cost(cost)
            .to_string()
    }

    #[test]
    fn cost_columns_start_at_the_same_place_whatever_the_text() {
        let t0 = Instant::now();
        let cost = LineCost {
            bytes_in: 86,
            bytes_out: 160,
            read_calls: 2,
            write_calls: 1,
            took: Some(("took", Duration::from_micros(631))),
            ..LineCost::default()
        };
        // As wide as every column was made for.
        let widest = LineCost {
            bytes_in: 9_999_999,
            bytes_out: 99_999,
            copies: Some(99),
            read_calls: 999,
            write_calls: 999,
            took: Some(("reached all in", Duration::from_micros(99_900))),
            shared: None,
        };
        let long_target = format!("GET /checkstatus?jobId={} HTTP/1.1 -> 200", "9".repeat(80));
        let lines = [
            request_line(t0, "POST /submit HTTP/1.1 -> 200", cost),
            request_line(t0, &long_target, cost),
            request_line(t0, "", cost),
            request_line(t0, "GET / HTTP/1.1 -> 200", widest),
        ];
        let columns = |line: &str, cost: &LineCost| {
            let took = cost
                .took
                .map_or(String::new(), |(label, _)| label.to_string());
            [
                column_of(line, "in "),
                column_of(line, "out "),
                column_of(line, &format!("{} read", cost.read_calls)),
                column_of(line, &format!("{} write", cost.write_calls)),
                column_of(line, &took),
            ]
        };
        let first = columns(&lines[0], &cost);
        for (line, cost) in lines.iter().zip([cost, cost, cost, widest]) {
            assert_eq!(columns(line, &cost), first, "{line:?}");
        }
        for (line, what) in lines.iter().zip(["POST", "GET /check", "", "GET / "]) {
            if !what.is_empty() {
                assert_eq!(column_of(line, what), columns::TEXT_WITH_COST, "{line:?}");
            }
        }
        assert!(
            lines[1].ends_with(&long_target),
            "the whole target: {:?}",
            lines[1]
        );
        // Without text, the line ends with its last column, no padding after it.
        assert!(lines[2].ends_with("took 631 µs"), "{:?}", lines[2]);
    }

    #[test]
    fn cost_columns_line_up_and_say_shared_syscalls() {
        let t0 = Instant::now();
        let request = TraceLine::new(t0, t0 + Duration::from_micros(12_300), Some(1), "request")
            .what("GET / HTTP/1.1 -> 200")
            .cost(LineCost {
                bytes_in: 78,
                bytes_out: 245,
                read_calls: 2,
                write_calls: 1,
                took: Some(("took", Duration::from_micros(31))),
                shared: Some(SharedWith {
                    what: "requests",
                    span: Span(0, 2),
                }),
                ..LineCost::default()
            });
        let broadcast = TraceLine::new(t0, t0 + Duration::from_secs(3), Some(12), "broadcast")
            .what("User51234 says: hi")
            .cost(LineCost {
                bytes_in: 8,
                bytes_out: 24,
                copies: Some(1),
                read_calls: 0,
                write_calls: 3,
                took: Some(("reached all in", Duration::from_micros(85))),
                shared: None,
            });
        assert_eq!(
            request.to_string(),
            "  0.012 s  conn 1     request     in 78 B       out 245 B                 \
             2 reads    1 write     took 31.0 µs            GET / HTTP/1.1 -> 200  \
             (syscalls shared with requests 0-2)"
        );
        assert_eq!(
            broadcast.to_string(),
            "  3.000 s  conn 12    broadcast   in 8 B        out 24 B x 1 client       \
             0 reads    3 writes    reached all in 85.0 µs  User51234 says: hi"
        );
    }

    #[test]
    fn a_held_request_is_stamped_when_its_response_was_written() {
        // A long poll: its first byte at 89 ms, answered 973 ms later.
        let t0 = Instant::now();
        let first_byte = t0 + Duration::from_millis(89);
        let mut cost = RequestCost::new(3, 0, t0, first_byte);
        cost.label =
            crate::cost::Label::new(b"GET /checkstatus?jobId=job:1&wait=30&since=10 HTTP/1.1");
        cost.status = 200;
        cost.written = Some(first_byte + Duration::from_millis(973));
        let line = TraceLine::request(t0, &cost);
        assert_eq!(line.at, Duration::from_millis(1062));
        let text = line.to_string();
        assert!(
            text.starts_with("  1.062 s  conn 3     request "),
            "{text:?}"
        );
        assert!(text.contains("took 973 ms"), "{text:?}");
        // A line made after its release, at 1.061 s, comes before it, in order.
        let released = TraceLine::new(t0, t0 + Duration::from_millis(1061), Some(3), "released");
        assert!(released.at <= line.at);
    }
}
