//! Upgraded connections written straight from the application's storage
//! ([`Handler::source`]), through the real loop over TCP: a shared [`FrameLog`]
//! of frames far larger than the sockets' buffers, read by a slow client, arrives
//! whole and in order, each byte once; a private frame queued while a short write
//! left the log's frame half written goes out only at that frame's end; and what
//! the source writes is counted.
//!
//! The frames have a header (a marker byte, a sequence number, a length) and a
//! payload whose bytes say which frame they belong to, so the client notices any
//! byte out of place: a private frame written inside a log frame breaks the
//! parse.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::http::Response;
use wirepatterns::patterns::frame_log::{FrameLog, Pending, ReaderId};
use wirepatterns::server::{
    CloseReason, Config, ConnId, Context, Handler, Incoming, Reply, Running, Server, Source,
    TimerId,
};

const TIMEOUT: Duration = Duration::from_secs(10);
/// A log frame's first byte.
const LOG_FRAME: u8 = 0xAA;
/// A private frame's first byte.
const PRIVATE_FRAME: u8 = 0xBB;
/// A header: marker, sequence number, payload length.
const HEADER: usize = 9;
/// A private frame's payload length.
const PRIVATE_LEN: usize = 16;
/// Frames a timer batch (`a`) appends.
const BATCH_FRAMES: u32 = 24;
/// Frames of [`BIG_FRAME`] bytes a `b` appends.
const BIG_FRAMES: u32 = 4;
const BIG_FRAME: usize = 4 << 20;

/// The payload byte of frame `seq` (never a marker).
fn fill(seq: u32) -> u8 {
    1 + (seq % 100) as u8
}

/// The payload length of the timer batches' frame `seq`: 100 to 400 KB.
fn batch_len(seq: u32) -> usize {
    100_000 + (seq as usize * 7919) % 300_000
}

/// Timer batches the slow-reader test asks for.
const ROUNDS: u32 = 6;

fn encode(marker: u8, seq: u32, len: usize, byte: u8) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + len);
    frame.push(marker);
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.resize(HEADER + len, byte);
    frame
}

/// What the application saw, shared with the test thread.
#[derive(Default)]
struct Seen {
    /// Source bytes the kernel took.
    source_bytes: u64,
    /// `source_written` calls.
    source_writes: u64,
    /// Writes that took less than the reader's whole lag.
    partial: u64,
    /// Writes that left the reader in the middle of a frame.
    cuts: u64,
    /// Writes whose log bytes were two slices (the log's ring wrapped).
    wrapped: u64,
    /// The connection's own `bytes_out` after the last source write.
    conn_bytes_out: u64,
    /// When the private frame was queued: the log position it must follow, whether
    /// the reader was mid-frame, `Context::queued_bytes` and the reader's lag.
    private: Option<(u64, bool, usize, u64)>,
}

/// Serves upgraded connections from one log.
struct LogApp {
    log: FrameLog,
    readers: HashMap<ConnId, ReaderId>,
    next_seq: u32,
    /// Connections waiting for a timer batch.
    batch_for: Vec<ConnId>,
    seen: Arc<Mutex<Seen>>,
}

impl LogApp {
    fn append(&mut self, ctx: &mut Context<'_>, len: impl Fn(u32) -> usize, count: u32) {
        for _ in 0..count {
            let seq = self.next_seq;
            self.next_seq += 1;
            let frame = encode(LOG_FRAME, seq, len(seq), fill(seq));
            self.log.append(&frame).expect("the client keeps up");
        }
        let conns: Vec<ConnId> = self.readers.keys().copied().collect();
        // Waking again and again costs nothing more.
        for _ in 0..3 {
            for &conn in &conns {
                ctx.wake_writer(conn);
            }
        }
    }
}

impl Handler for LogApp {
    fn on_request(&mut self, _: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        if req.request().path() != "/log" {
            return Reply::Respond;
        }
        self.readers.insert(req.conn(), self.log.add_reader());
        res.set_status(101);
        res.header("Upgrade", "frames");
        res.header("Connection", "Upgrade");
        Reply::Upgrade
    }

    fn on_upgraded_data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        for &byte in data.iter() {
            match byte {
                b'a' => {
                    // Appended from a timer: only the wake gets it written.
                    self.batch_for.push(conn);
                    ctx.set_timer(Duration::from_millis(1), 0);
                }
                b'b' => self.append(ctx, |_| BIG_FRAME, BIG_FRAMES),
                b'p' => {
                    let Some(&reader) = self.readers.get(&conn) else {
                        continue;
                    };
                    let cursor = self.log.cursor(reader).unwrap_or(0);
                    let end = self.log.frame_end(reader);
                    let queued = ctx.queued_bytes(conn).unwrap_or(0);
                    let lag = self.log.lag(reader);
                    self.seen.lock().unwrap().private =
                        Some((end.unwrap_or(cursor), end.is_some(), queued, lag));
                    ctx.send_raw(conn, &encode(PRIVATE_FRAME, 0, PRIVATE_LEN, PRIVATE_FRAME));
                }
                _ => {}
            }
        }
        data.len()
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId, _: u64) {
        if !self.batch_for.is_empty() {
            self.batch_for.clear();
            self.append(ctx, batch_len, BATCH_FRAMES);
        }
    }

    fn source(&self, conn: ConnId) -> Source<'_> {
        let Some(&reader) = self.readers.get(&conn) else {
            return Source::NONE;
        };
        match self.log.pending(reader) {
            Pending::Bytes(first, second) => {
                let cursor = self.log.cursor(reader).unwrap_or(0);
                let rest = self.log.frame_end(reader).map_or(0, |end| end - cursor);
                // Whether or not the log's ring wraps here, the loop gets two
                // slices: the frame's rest, the private bytes and the next
                // frames then fall across them anywhere.
                let (first, second) = if second.is_empty() {
                    first.split_at(first.len() / 2)
                } else {
                    (first, second)
                };
                Source::new(first, second, rest as usize)
            }
            Pending::Fallen | Pending::Unknown => Source::NONE,
        }
    }

    fn source_written(&mut self, ctx: &mut Context<'_>, conn: ConnId, n: usize) {
        let Some(&reader) = self.readers.get(&conn) else {
            return;
        };
        let lag = self.log.lag(reader);
        let wrapped = matches!(
            self.log.pending(reader),
            Pending::Bytes(a, b) if !a.is_empty() && !b.is_empty()
        );
        self.log.consume(reader, n);
        let mut seen = self.seen.lock().unwrap();
        seen.source_bytes += n as u64;
        seen.source_writes += 1;
        seen.partial += u64::from((n as u64) < lag);
        seen.cuts += u64::from(!self.log.at_boundary(reader));
        seen.wrapped += u64::from(wrapped);
        seen.conn_bytes_out = ctx.io(conn).map_or(0, |io| io.bytes_out);
    }

    fn on_close(&mut self, _: &mut Context<'_>, conn: ConnId, _: CloseReason) {
        if let Some(reader) = self.readers.remove(&conn) {
            self.log.remove_reader(reader);
        }
    }
}

fn start(capacity: usize) -> (Running<LogApp>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = LogApp {
        log: FrameLog::new(capacity),
        readers: HashMap::new(),
        next_seq: 0,
        batch_for: Vec::new(),
        seen: Arc::clone(&seen),
    };
    let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::bind(config, app)
        .and_then(Server::spawn)
        .expect("server starts");
    (server, seen)
}

/// Connects and upgrades; returns the stream and the bytes read past the 101.
fn upgrade(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(
            b"GET /log HTTP/1.1\r\nHost: x\r\nUpgrade: frames\r\nConnection: Upgrade\r\n\r\n",
        )
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
            return (stream, buf.split_off(end + 4));
        }
        let got = stream.read(&mut chunk).unwrap();
        assert!(got > 0, "closed before the 101");
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// The client's side: checks every byte as frames are parsed.
#[derive(Default)]
struct Client {
    buf: Vec<u8>,
    /// Log frames seen, by sequence number.
    frames: u32,
    /// Log bytes seen (header and payload): the log position.
    log_pos: u64,
    /// The log position at which each private frame started.
    privates: Vec<u64>,
}

impl Client {
    /// Parses what is buffered; panics on any byte out of place.
    fn parse(&mut self, len_of: impl Fn(u32) -> usize) {
        let mut at = 0;
        while let Some(header) = self.buf.get(at..at + HEADER) {
            let seq = u32::from_be_bytes(header[1..5].try_into().unwrap());
            let len = u32::from_be_bytes(header[5..9].try_into().unwrap()) as usize;
            let Some(payload) = self.buf.get(at + HEADER..at + HEADER + len) else {
                break;
            };
            match header[0] {
                LOG_FRAME => {
                    assert_eq!(seq, self.frames, "frames in order, each once");
                    assert_eq!(len, len_of(seq), "frame {seq}'s length");
                    let byte = fill(seq);
                    assert!(
                        payload.iter().all(|&b| b == byte),
                        "frame {seq}'s payload holds a byte from elsewhere"
                    );
                    self.frames += 1;
                    self.log_pos += (HEADER + len) as u64;
                }
                PRIVATE_FRAME => {
                    assert_eq!(len, PRIVATE_LEN);
                    assert!(payload.iter().all(|&b| b == PRIVATE_FRAME));
                    self.privates.push(self.log_pos);
                }
                other => panic!(
                    "a frame header expected at log position {}, got {other:#x}",
                    self.log_pos
                ),
            }
            at += HEADER + len;
        }
        self.buf.drain(..at);
    }

    /// Reads, slowly, until `frames` log frames have arrived.
    fn read_until(
        &mut self,
        stream: &mut TcpStream,
        frames: u32,
        len_of: impl Fn(u32) -> usize + Copy,
    ) {
        let mut chunk = vec![0u8; 16 * 1024];
        let mut reads = 0u32;
        let deadline = Instant::now() + TIMEOUT;
        while self.frames < frames {
            assert!(Instant::now() < deadline, "frames did not arrive in time");
            let got = stream.read(&mut chunk).expect("read");
            assert!(got > 0, "closed early after {} frames", self.frames);
            self.buf.extend_from_slice(&chunk[..got]);
            self.parse(len_of);
            reads += 1;
            if reads.is_multiple_of(4) {
                // A slow reader: the server's writes keep stopping short.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[test]
fn a_log_far_larger_than_the_socket_buffers_reaches_a_slow_reader_once_in_order() {
    // 16 MiB of log for six batches of about 6 MB each, the next one asked for
    // when half of the last one is read.
    let (server, seen) = start(16 << 20);
    let (mut stream, rest) = upgrade(server.addr);
    let mut client = Client {
        buf: rest,
        ..Client::default()
    };
    stream.write_all(b"a").unwrap();
    for round in 1..=ROUNDS {
        client.read_until(
            &mut stream,
            round * BATCH_FRAMES - BATCH_FRAMES / 2,
            batch_len,
        );
        if round < ROUNDS {
            stream.write_all(b"a").unwrap();
        }
    }
    client.read_until(&mut stream, ROUNDS * BATCH_FRAMES, batch_len);
    assert!(client.buf.is_empty(), "nothing after the last frame");
    assert!(client.privates.is_empty());
    let total: u64 = (0..ROUNDS * BATCH_FRAMES)
        .map(|seq| (HEADER + batch_len(seq)) as u64)
        .sum();
    assert_eq!(client.log_pos, total);
    let stats = server.handle.stats();
    {
        let seen = seen.lock().unwrap();
        eprintln!(
            "source writes {}, partial {}, cuts {}, wrapped {}",
            seen.source_writes, seen.partial, seen.cuts, seen.wrapped
        );
        assert_eq!(seen.source_bytes, total, "each byte written once");
        assert!(seen.partial > 0, "short writes happened");
        assert!(
            seen.conn_bytes_out >= total,
            "the connection's counters include the source: {} < {total}",
            seen.conn_bytes_out
        );
        assert!(
            stats.bytes_out >= total,
            "the server's bytes_out includes the source: {} < {total}",
            stats.bytes_out
        );
        assert!(stats.write_calls >= seen.source_writes);
    }
    drop(stream);
    server.stop().unwrap();
}

#[test]
fn a_private_frame_goes_out_only_at_the_end_of_the_log_frame_a_short_write_cut() {
    let (server, seen) = start(32 << 20);
    let (mut stream, rest) = upgrade(server.addr);
    // 16 MiB the client does not read yet: the writes stop mid-frame.
    stream.write_all(b"b").unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while seen.lock().unwrap().cuts == 0 {
        assert!(Instant::now() < deadline, "no write stopped mid-frame");
        std::thread::sleep(Duration::from_millis(2));
    }
    stream.write_all(b"p").unwrap();
    while seen.lock().unwrap().private.is_none() {
        assert!(
            Instant::now() < deadline,
            "the private frame was not queued"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut client = Client {
        buf: rest,
        ..Client::default()
    };
    client.read_until(&mut stream, BIG_FRAMES, |_| BIG_FRAME);
    assert!(client.buf.is_empty(), "nothing after the last frame");
    let (after, mid_frame, queued, lag) = seen.lock().unwrap().private.unwrap();
    assert!(
        mid_frame,
        "the private frame was queued while a frame was cut"
    );
    assert_eq!(
        client.privates,
        vec![after],
        "the private frame follows the end of the frame that was cut, at once"
    );
    assert!(lag > 0);
    assert!(
        queued as u64 >= lag,
        "queued_bytes counts what the source has to write: {queued} < {lag}"
    );
    drop(stream);
    server.stop().unwrap();
}
