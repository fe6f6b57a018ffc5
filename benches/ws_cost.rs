//! What WebSocket costs: decoding masked frames, and the opening handshake, beside
//! tungstenite doing the same work.
//!
//! ```text
//! cargo bench --bench ws_cost
//! ```
//!
//! Each group holds both contenders on the same bytes, so read the ratio between
//! them, measured side by side (absolute times drift on a shared machine).
//!
//! After the groups, a table of ours/tungstenite per case (each frame whole and, for
//! the large ones, in 64 KiB reads; the handshake), measured in alternating bursts
//! (A B A B) so that both sides see the same machine load: on a shared machine that
//! ratio is steadier than the ratio of two criterion estimates taken seconds apart.
//! Criterion's options work as usual and a filter selects rows too:
//!
//! ```text
//! cargo bench --bench ws_cost -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench ws_cost -- handshake    # the handshake group and its row
//! cargo bench --bench ws_cost -- ratios       # only the table
//! ```
//!
//! # `decode/<size>`: one masked binary frame from a client, server role
//!
//! A frame of 125 B, 64 KiB or 1 MiB, masked as a client sends it (RFC 6455 §5.3).
//! Each iteration turns the wire bytes into the unmasked message, and pays one copy
//! of the wire bytes on each side (criterion's `Throughput::Bytes` is the payload):
//!
//! - `wirepatterns/whole`: copies the masked frame into the read buffer (standing
//!   in for the socket read, and restoring the masked bytes that the previous
//!   iteration unmasked in place), then one [`Decoder::decode`] call: header rules,
//!   unmasking in place word at a time, the message handed back as a slice of the
//!   read buffer.
//! - `wirepatterns/64k_reads` (64 KiB and 1 MiB only): the same frame arriving in
//!   64 KiB reads, as a driver with a 64 KiB read buffer sees it: each piece is
//!   copied into the buffer and decoded; the decoder unmasks it and appends it to
//!   its message buffer (one more copy), and the last piece completes the message.
//! - `tungstenite`: one `WebSocket` (tungstenite 0.30, `Role::Server`, default
//!   config) reused across iterations, reading from an in-memory stream that
//!   replays the same masked frame without end; each iteration is one
//!   `WebSocket::read()` returning `Message::Binary`. Inside, tungstenite copies
//!   from the stream into its read buffer (in reads of up to 128 KiB, zero-filling
//!   the free part of the buffer before each), parses the header, splits the
//!   payload off as `Bytes` and unmasks it (4 bytes at a time).
//!
//! # `handshake`: the server's side of one opening handshake (§4.2)
//!
//! The same upgrade request (a minimal one, as a non-browser client sends it):
//!
//! - `wirepatterns/parse+accept`: [`RequestParser::parse`], then
//!   [`ws::handshake::accept`]: the §4.2.1 checks, SHA-1 and base64 of the key, and
//!   the 101 written into a reused buffer. `parse`, `accept_key` (SHA-1 + base64
//!   alone) and `accept` alone show the parts.
//! - `tungstenite`: `tungstenite::accept` on an in-memory stream: reads the request
//!   (httparse into an `http::Request`), checks it, writes the 101, and returns the
//!   `WebSocket`, which includes allocating its buffers.

mod support;

use std::hint::black_box;
use std::io::{self, Cursor, Read, Write};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tungstenite::protocol::{Role, WebSocket};
use wirepatterns::http::{RequestParser, Status};
use wirepatterns::ws::handshake::{HandshakeConfig, accept, accept_key};
use wirepatterns::ws::{self, Decoder, Event, OpCode};

/// A masked binary frame of `len` pseudo-random bytes, as a client sends it.
fn masked_frame(len: usize) -> Vec<u8> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let payload: Vec<u8> = (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut frame = Vec::new();
    ws::client::write_frame(
        &mut frame,
        OpCode::Binary,
        &payload,
        [0x37, 0xfa, 0x21, 0x3d],
    );
    frame
}

/// An endless stream of the same frame, for tungstenite to read from; writes are
/// discarded (tungstenite's `read` also flushes its pending output, of which there
/// is none).
struct Replay {
    frame: Vec<u8>,
    pos: usize,
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &self.frame[self.pos..];
            let n = rest.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            self.pos = (self.pos + n) % self.frame.len();
        }
        Ok(filled)
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Our side, the whole frame at once: copy the masked frame into the read buffer
/// (the socket read; it also restores the bytes the last call unmasked in place),
/// then one `decode`.
fn ours_whole(decoder: &mut Decoder, buf: &mut [u8], frame: &[u8]) -> usize {
    buf.copy_from_slice(frame);
    let decoded = decoder.decode(black_box(buf)).expect("valid frame");
    match decoded.event {
        Some(Event::Binary(data)) => data.len(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The size of one read for `ours_in_reads`, as a driver with a 64 KiB buffer has.
const READ: usize = 64 * 1024;

/// Our side, the frame arriving in 64 KiB reads: each piece copied into the read
/// buffer and decoded; the last one completes the message.
fn ours_in_reads(decoder: &mut Decoder, buf: &mut [u8], frame: &[u8]) -> usize {
    let mut got = 0;
    for piece in frame.chunks(READ) {
        let read = &mut buf[..piece.len()];
        read.copy_from_slice(piece);
        let decoded = decoder.decode(black_box(read)).expect("valid frame");
        assert_eq!(decoded.consumed, piece.len());
        if let Some(Event::Binary(data)) = decoded.event {
            got = data.len();
        }
    }
    got
}

/// tungstenite's side: one `read()` of the next frame from the replayed stream.
fn theirs_read(socket: &mut WebSocket<Replay>) -> usize {
    match socket.read().expect("valid frame") {
        tungstenite::Message::Binary(data) => data.len(),
        other => panic!("unexpected {other:?}"),
    }
}

/// tungstenite in server role, reading `frame` over and over.
fn tungstenite_reading(frame: &[u8]) -> WebSocket<Replay> {
    let stream = Replay {
        frame: frame.to_vec(),
        pos: 0,
    };
    WebSocket::from_raw_socket(stream, Role::Server, None)
}

/// The decode groups, by name and payload length.
const FRAMES: [(&str, usize); 3] = [("125B", 125), ("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)];

fn decode(c: &mut Criterion) {
    for (name, len) in FRAMES {
        let frame = masked_frame(len);
        let mut group = c.benchmark_group(format!("decode/{name}"));
        group.throughput(Throughput::Bytes(len as u64));

        let mut decoder = Decoder::default();
        let mut buf = frame.clone();
        assert_eq!(ours_whole(&mut decoder, &mut buf, &frame), len);
        group.bench_function("wirepatterns/whole", |b| {
            b.iter(|| black_box(ours_whole(&mut decoder, &mut buf, &frame)))
        });

        if frame.len() > READ {
            let mut decoder = Decoder::default();
            let mut buf = vec![0u8; READ];
            assert_eq!(ours_in_reads(&mut decoder, &mut buf, &frame), len);
            group.bench_function("wirepatterns/64k_reads", |b| {
                b.iter(|| black_box(ours_in_reads(&mut decoder, &mut buf, &frame)))
            });
        }

        let mut socket = tungstenite_reading(&frame);
        assert_eq!(theirs_read(&mut socket), len);
        group.bench_function("tungstenite", |b| {
            b.iter(|| black_box(theirs_read(&mut socket)))
        });
        group.finish();
    }
}

/// A minimal upgrade request, as a non-browser client sends it (RFC 6455 §1.3's
/// key).
const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// An in-memory connection for tungstenite's handshake: the request to read, and
/// a sink for the response.
struct Handshaking {
    input: Cursor<&'static [u8]>,
    output: Vec<u8>,
}

impl Read for Handshaking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Handshaking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Our side of a handshake: parse the upgrade request, check it and write the 101
/// into `out`.
fn ours_handshake(
    parser: &mut RequestParser,
    config: &HandshakeConfig,
    out: &mut Vec<u8>,
) -> usize {
    out.clear();
    let Ok(Status::Complete(request)) = parser.parse(black_box(UPGRADE)) else {
        panic!("request did not parse");
    };
    let accepted = accept(&request, config, out).expect("valid handshake");
    accepted.accept.len()
}

/// tungstenite's side: `tungstenite::accept` on an in-memory connection.
fn theirs_handshake() -> usize {
    let stream = Handshaking {
        input: Cursor::new(UPGRADE),
        output: Vec::with_capacity(256),
    };
    let socket = tungstenite::accept(black_box(stream)).expect("valid handshake");
    socket.get_ref().output.len()
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let config = HandshakeConfig::default();
    let mut parser = RequestParser::default();
    let mut out = Vec::with_capacity(256);

    group.bench_function(BenchmarkId::new("wirepatterns", "parse+accept"), |b| {
        b.iter(|| black_box(ours_handshake(&mut parser, &config, &mut out)))
    });
    group.bench_function(BenchmarkId::new("wirepatterns", "parse"), |b| {
        b.iter(|| match parser.parse(black_box(UPGRADE)) {
            Ok(Status::Complete(request)) => request.head_len(),
            _ => panic!("request did not parse"),
        })
    });
    group.bench_function(BenchmarkId::new("wirepatterns", "accept_key"), |b| {
        b.iter(|| accept_key(black_box(b"dGhlIHNhbXBsZSBub25jZQ==")))
    });
    let mut parsed_once = RequestParser::default();
    let Ok(Status::Complete(request)) = parsed_once.parse(UPGRADE) else {
        panic!("request did not parse");
    };
    group.bench_function(BenchmarkId::new("wirepatterns", "accept"), |b| {
        b.iter(|| {
            out.clear();
            let accepted = accept(black_box(&request), &config, &mut out).expect("valid");
            black_box(accepted.accept.len())
        })
    });

    group.bench_function(BenchmarkId::new("tungstenite", "accept"), |b| {
        b.iter(|| black_box(theirs_handshake()))
    });
    group.finish();
}

/// The summary table, printed after criterion's groups: ours / tungstenite per
/// case, timed in alternating bursts (see [`support::alternate`]) so that both
/// sides see the same machine load. A row is printed when the run measures and the
/// filter selects one of the row's criterion benchmarks (or `ratios`).
fn ratios(_: &mut Criterion) {
    support::check_arg_split();
    let args = support::RunArgs::from_env();

    const ROUNDS: usize = 31;
    const BURST: Duration = Duration::from_millis(4);
    let mut table =
        support::Table::new(&["case", "wirepatterns", "tungstenite", "ours / tungstenite"]);
    let mut row = |case: String, (ours_s, theirs_s): (f64, f64)| {
        table.row(vec![
            case,
            support::time(ours_s),
            support::time(theirs_s),
            format!("{:.2}", ours_s / theirs_s),
        ])
    };
    for (name, len) in FRAMES {
        let group = format!("decode/{name}");
        let theirs_id = format!("{group}/tungstenite");
        let frame = masked_frame(len);
        let mut socket = tungstenite_reading(&frame);

        let ids = [
            format!("{group}/wirepatterns/whole"),
            theirs_id.clone(),
            format!("ratios/{group}/whole"),
        ];
        if args.selects_any(&ids) {
            let mut decoder = Decoder::default();
            let mut buf = frame.clone();
            row(
                format!("{group}, whole frame"),
                support::alternate(
                    ROUNDS,
                    BURST,
                    || ours_whole(&mut decoder, &mut buf, &frame),
                    || theirs_read(&mut socket),
                ),
            );
        }

        let ids = [
            format!("{group}/wirepatterns/64k_reads"),
            theirs_id,
            format!("ratios/{group}/64k_reads"),
        ];
        if frame.len() > READ && args.selects_any(&ids) {
            let mut decoder = Decoder::default();
            let mut buf = vec![0u8; READ];
            row(
                format!("{group}, in 64 KiB reads"),
                support::alternate(
                    ROUNDS,
                    BURST,
                    || ours_in_reads(&mut decoder, &mut buf, &frame),
                    || theirs_read(&mut socket),
                ),
            );
        }
    }
    let ids = [
        "handshake/wirepatterns/parse+accept".to_string(),
        "handshake/tungstenite/accept".to_string(),
        "ratios/handshake".to_string(),
    ];
    if args.selects_any(&ids) {
        let config = HandshakeConfig::default();
        let mut parser = RequestParser::default();
        let mut out = Vec::with_capacity(256);
        row(
            "handshake, parse + accept".to_string(),
            support::alternate(
                ROUNDS,
                BURST,
                || ours_handshake(&mut parser, &config, &mut out),
                theirs_handshake,
            ),
        );
    }

    if !table.is_empty() {
        println!(
            "\nratios, A B A B: {ROUNDS} bursts of ~{} per side, the fastest burst of each",
            support::time(BURST.as_secs_f64())
        );
        table.print();
        support::print_report_paths(None);
    }
}

/// Defaults for every group; the command line (`--warm-up-time 1`, `--sample-size
/// 20`, ...) overrides them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, handshake, ratios
}
criterion_main!(benches);
