//! What the trace shows of the wire: every byte in a hex dump, and a timeline of
//! phases with the bytes and system calls each one took.

use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use wirepatterns::trace::Dur;

/// Bytes per row of the hex dump, as `curl --trace` prints them.
pub const ROW: usize = 16;

/// The direction and kind of a dumped block, as `curl --trace` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// The request head.
    SendHeader,
    /// A request body, or WebSocket frames sent.
    SendData,
    /// Response heads (interim ones included).
    RecvHeader,
    /// A response body (with its chunk framing), or WebSocket frames received.
    RecvData,
}

impl Block {
    fn label(self) -> &'static str {
        match self {
            Block::SendHeader => "=> Send header",
            Block::SendData => "=> Send data",
            Block::RecvHeader => "<= Recv header",
            Block::RecvData => "<= Recv data",
        }
    }
}

/// Appends `bytes` to `out` as `curl --trace` prints them: a line naming the block
/// and its size, then rows of the offset, 16 bytes in hex, and the same bytes as
/// text with `.` for anything that is not printable ASCII. A short last row is
/// padded so the text column stays aligned.
///
/// ```text
/// => Send header, 18 bytes (0x12)
/// 0000: 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a GET / HTTP/1.1..
/// 0010: 0d 0a                                           ..
/// ```
pub fn hex_dump(out: &mut String, block: Block, bytes: &[u8]) {
    let n = bytes.len();
    let _ = writeln!(
        out,
        "{}, {n} {} ({n:#x})",
        block.label(),
        if n == 1 { "byte" } else { "bytes" }
    );
    // Four hex digits of offset, more for a block over 64 KiB, the same in every row.
    let last = n.saturating_sub(1) / ROW * ROW;
    let width = (usize::BITS - last.leading_zeros()).div_ceil(4).max(4) as usize;
    for (row, chunk) in bytes.chunks(ROW).enumerate() {
        let _ = write!(out, "{:0width$x}: ", row * ROW);
        for i in 0..ROW {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
        }
        out.extend(chunk.iter().map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
}

/// A byte count in the unit its size calls for: `78 B`, `1.50 KiB`, `2.00 MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let text = if n < 1024 {
            format!("{n} B")
        } else if n < 1024 * 1024 {
            format!("{:.2} KiB", n as f64 / 1024.0)
        } else {
            format!("{:.2} MiB", n as f64 / (1024.0 * 1024.0))
        };
        f.pad(&text)
    }
}

/// Totals of a [`Counted`] stream at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `read()` calls, those that failed or returned 0 included.
    pub reads: u64,
    /// `write()` calls.
    pub writes: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
}

/// A stream that counts every `read()` and `write()` made through it: each call is
/// one system call on a `TcpStream`, so these are the syscall counts.
#[derive(Debug)]
pub struct Counted<S> {
    /// The stream itself.
    pub inner: S,
    /// The totals so far.
    pub counters: Counters,
}

impl<S> Counted<S> {
    /// Wraps `inner`, all counts at zero.
    pub fn new(inner: S) -> Counted<S> {
        Counted {
            inner,
            counters: Counters::default(),
        }
    }
}

impl<S: Read> Read for Counted<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.counters.reads += 1;
        let n = self.inner.read(buf)?;
        self.counters.bytes_in += n as u64;
        Ok(n)
    }
}

impl<S: Write> Write for Counted<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.counters.writes += 1;
        let n = self.inner.write(buf)?;
        self.counters.bytes_out += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One phase: its name, when it ended, and the counters then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// What ended it ("connected", "head parsed", ...).
    pub name: String,
    /// When it ended.
    pub at: Instant,
    /// The stream's totals when it ended.
    pub counters: Counters,
}

/// The phases of one exchange, in order, from a start time. Each phase is what
/// happened since the one before: its time, bytes and system calls.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    phases: Vec<Phase>,
}

impl Timeline {
    /// A timeline that starts at `start`.
    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            phases: Vec::new(),
        }
    }

    /// Ends a phase named `name` at `at`, with the stream's totals then.
    pub fn mark(&mut self, name: impl Into<String>, at: Instant, counters: Counters) {
        self.phases.push(Phase {
            name: name.into(),
            at,
            counters,
        });
    }

    /// The phases so far.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The time from the start to the last phase.
    pub fn total(&self) -> Duration {
        self.phases.last().map_or(Duration::ZERO, |p| {
            p.at.saturating_duration_since(self.start)
        })
    }
}

/// The timeline as a table, one row per phase, then the totals:
///
/// ```text
/// == Timeline: each phase since the one before
///    phase                 at     took        sent    received  writes   reads
///    DNS lookup       4.15 µs  4.15 µs         0 B         0 B       0       0
///    TCP connect       182 µs   178 µs         0 B         0 B       0       0
///    request written   261 µs  78.9 µs        67 B         0 B       1       0
/// ```
impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = Dur::WIDTH;
        let name_width = self
            .phases()
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("phase".len());
        writeln!(f, "== Timeline: each phase since the one before")?;
        writeln!(
            f,
            "   {:<name_width$}  {:>w$}  {:>w$}  {:>10}  {:>10}  {:>6}  {:>6}",
            "phase", "at", "took", "sent", "received", "writes", "reads"
        )?;
        let mut prev_at = self.start;
        let mut prev = Counters::default();
        for p in &self.phases {
            let c = p.counters;
            writeln!(
                f,
                "   {:<name_width$}  {:>w$}  {:>w$}  {:>10}  {:>10}  {:>6}  {:>6}",
                p.name,
                Dur(p.at.saturating_duration_since(self.start)),
                Dur(p.at.saturating_duration_since(prev_at)),
                Bytes(c.bytes_out - prev.bytes_out),
                Bytes(c.bytes_in - prev.bytes_in),
                c.writes - prev.writes,
                c.reads - prev.reads,
            )?;
            prev_at = p.at;
            prev = c;
        }
        let last = self
            .phases
            .last()
            .map_or(Counters::default(), |p| p.counters);
        writeln!(
            f,
            "   {:<name_width$}  {:>w$}  {:>w$}  {:>10}  {:>10}  {:>6}  {:>6}",
            "total",
            "",
            Dur(self.total()),
            Bytes(last.bytes_out),
            Bytes(last.bytes_in),
            last.writes,
            last.reads,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_dump_rows_are_curl_trace_rows() {
        let mut out = String::new();
        hex_dump(&mut out, Block::SendHeader, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            out,
            "=> Send header, 18 bytes (0x12)\n\
             0000: 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a GET / HTTP/1.1..\n\
             0010: 0d 0a                                           ..\n"
        );
        let mut out = String::new();
        hex_dump(&mut out, Block::RecvData, &[0x00, b'a', 0x7f, 0xff]);
        assert_eq!(
            out,
            "<= Recv data, 4 bytes (0x4)\n\
             0000: 00 61 7f ff                                     .a..\n"
        );
        let mut out = String::new();
        hex_dump(&mut out, Block::RecvHeader, b"x");
        assert!(out.starts_with("<= Recv header, 1 byte (0x1)\n"), "{out}");
        // Every row is as wide as a full one, up to its text.
        let mut out = String::new();
        let bytes: Vec<u8> = (0..=255).collect();
        hex_dump(&mut out, Block::SendData, &bytes);
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 16);
        assert!(rows[15].starts_with("00f0: f0 f1"));
        assert!(rows.iter().all(|r| r.len() == 6 + 3 * ROW + ROW));
        // Over 64 KiB, the offsets take five digits in every row.
        let mut out = String::new();
        hex_dump(&mut out, Block::RecvData, &[b'z'; 0x10001]);
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert!(rows[0].starts_with("00000: 7a 7a"), "{}", rows[0]);
        assert!(rows[0x1000].starts_with("10000: 7a "), "{}", rows[0x1000]);
        assert_eq!(rows[1].len(), 7 + 3 * ROW + ROW);
        assert_eq!(rows[0x1000].len(), 7 + 3 * ROW + 1);
    }

    #[test]
    fn bytes_are_written_in_human_units() {
        assert_eq!(Bytes(0).to_string(), "0 B");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.50 KiB");
        assert_eq!(Bytes(3 * 1024 * 1024).to_string(), "3.00 MiB");
        assert_eq!(format!("{:>8}", Bytes(78)), "    78 B");
    }

    #[test]
    fn counted_streams_count_calls_and_bytes() {
        let mut stream = Counted::new(io::Cursor::new(b"hello".to_vec()));
        let mut buf = [0u8; 3];
        assert_eq!(stream.read(&mut buf).unwrap(), 3);
        assert_eq!(stream.read(&mut buf).unwrap(), 2);
        assert_eq!(stream.read(&mut buf).unwrap(), 0);
        assert_eq!(
            stream.counters,
            Counters {
                reads: 3,
                writes: 0,
                bytes_in: 5,
                bytes_out: 0
            }
        );
        let mut sink = Counted::new(Vec::new());
        sink.write_all(b"abc").unwrap();
        assert_eq!((sink.counters.writes, sink.counters.bytes_out), (1, 3));
    }

    #[test]
    fn timeline_rows_are_the_differences_between_phases() {
        let start = Instant::now();
        let mut t = Timeline::new(start);
        let c = |reads, writes, bytes_in, bytes_out| Counters {
            reads,
            writes,
            bytes_in,
            bytes_out,
        };
        t.mark(
            "TCP connect",
            start + Duration::from_micros(100),
            c(0, 0, 0, 0),
        );
        t.mark(
            "request written",
            start + Duration::from_micros(150),
            c(0, 1, 0, 78),
        );
        t.mark(
            "first byte",
            start + Duration::from_millis(2),
            c(1, 1, 2048, 78),
        );
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "== Timeline: each phase since the one before",
                "   phase                 at     took        sent    received  writes   reads",
                "   TCP connect       100 µs   100 µs         0 B         0 B       0       0",
                "   request written   150 µs  50.0 µs        78 B         0 B       1       0",
                "   first byte       2.00 ms  1.85 ms         0 B    2.00 KiB       0       1",
                "   total                     2.00 ms        78 B    2.00 KiB       1       1",
            ]
        );
        assert_eq!(t.total(), Duration::from_millis(2));
    }
}
