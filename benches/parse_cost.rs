//! What it costs to parse a request: the hand parser beside httparse.
//!
//! ```text
//! cargo bench --bench parse_cost
//! ```
//!
//! Each corpus item is one criterion group with both contenders on the same bytes,
//! so the ratio between them is measured side by side (the absolute times drift on a
//! shared machine; the ratio much less). Criterion prints time per request and
//! bytes/s (`thrpt`).
//!
//! | group | bytes |
//! |---|---|
//! | `short_get` | a minimal `GET /` with a Host |
//! | `browser_get` | a Chrome-like GET: about 700 bytes, 15 header fields |
//! | `post_content_length` | a POST head plus a small JSON body, `Content-Length` framed |
//! | `post_chunked` | a POST head plus a body in a few chunks |
//!
//! Both sides do what a server must do before it can act on the request:
//!
//! - **wirepatterns**: one [`RequestParser`] reused across requests, as a connection
//!   keeps it (it resets itself after `Complete`). It checks every rule of RFC 9112
//!   (Host, framing, target form...), which httparse leaves to its caller. For the
//!   POST items a [`BodyDecoder`] then walks the body.
//! - **httparse**: the head into a preallocated `[EMPTY_HEADER; 64]`, as hyper does;
//!   for the POST items the caller's share of the work too: find `Content-Length` or
//!   `Transfer-Encoding: chunked` among the headers, then take the body bytes, or walk
//!   the chunks with `httparse::parse_chunk_size`.
//!
//! The last group, `one_byte_reads`, shows why the parser remembers how far it has
//! searched: a head of 1, 2, 4, 8, 16 or 32 KiB arrives one byte per read into a
//! growing buffer. The hand parser resumes its search, O(n) in all; calling httparse
//! on the whole buffer after each read starts over each time, O(n²) in all.
//! Re-parsing from the start is how CVE-2023-43669 let one slow header burn minutes
//! of CPU in tungstenite. Criterion's HTML report draws the two curves on the
//! group's page, `target/criterion/one_byte_reads/report/index.html` (all groups:
//! `target/criterion/report/index.html`).
//!
//! After the groups come two tables, ours beside httparse measured in alternating
//! bursts (A B A B) so that both sides see the same machine load: on a shared machine
//! that ratio is steadier than the ratio of two criterion estimates taken seconds
//! apart. The first is ours/httparse per corpus item; the second is the
//! `one_byte_reads` curve: per head size both times, the ratio, and how each side's
//! time grows when the head doubles (about 2x is linear, about 4x quadratic).
//!
//! Criterion's options work as usual and are not taken for a filter:
//!
//! ```text
//! cargo bench --bench parse_cost -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench parse_cost -- short_get        # one item, its row of the table
//! cargo bench --bench parse_cost -- ratios           # only the two tables
//! ```

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use wirepatterns::http::{BodyDecoder, Framing, Limits, RequestParser, Status};

const SHORT_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

/// What Chrome sends for a page navigation, cookies and client hints included.
const BROWSER_GET: &[u8] = b"GET /articles/2024/http-parsing?page=2&sort=recent HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/articles/2024/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n\
Cookie: session=3f9a1c2b7d; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\r\n";

const POST_CONTENT_LENGTH: &[u8] = b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: application/json\r\n\
Content-Type: application/json\r\n\
Content-Length: 59\r\n\r\n\
{\"item\":\"book\",\"quantity\":2,\"price\":12.5,\"currency\":\"EUR\"}\n";

const POST_CHUNKED: &[u8] = b"POST /api/v1/upload HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: curl/8.5.0\r\n\
Content-Type: application/octet-stream\r\n\
Transfer-Encoding: chunked\r\n\r\n\
1a\r\nabcdefghijklmnopqrstuvwxyz\r\n\
10\r\n0123456789ABCDEF\r\n\
20\r\nthe quick brown fox jumps over t\r\n\
0\r\n\r\n";

/// What both sides do with the body bytes they find: hand the slice on (its
/// pointer through `black_box`, so it must exist) and count it. Passing the slice
/// itself through `black_box` would copy it through the stack with a 16-byte load
/// right after two 8-byte stores, a store-forwarding stall that measures the
/// harness rather than the parser.
#[inline(always)]
fn use_body(data: &[u8]) -> usize {
    black_box(data.as_ptr());
    data.len()
}

/// Parses a whole request (head and, if framed, body) with the hand parser and
/// returns the number of bytes it took and of body bytes it found.
fn ours(parser: &mut RequestParser, buf: &[u8]) -> (usize, usize) {
    let (head_len, framing) = match parser.parse(buf) {
        Ok(Status::Complete(req)) => {
            // Touch what a server reads from the head.
            black_box((req.method(), req.target(), req.header_count()));
            (req.head_len(), req.framing())
        }
        other => panic!("not a complete request: {other:?}"),
    };
    if framing == Framing::None {
        return (head_len, 0);
    }
    let mut decoder = BodyDecoder::new(framing, parser.limits()).expect("body within limits");
    let mut at = head_len;
    let mut body = 0;
    while !decoder.is_done() {
        let step = decoder.decode(&buf[at..]).expect("valid body");
        body += use_body(step.data);
        at += step.consumed;
        assert!(step.consumed > 0 || decoder.is_done(), "body incomplete");
    }
    (at, body)
}

/// The same work with httparse: the head, then the body by the caller's reading of
/// the framing headers.
fn theirs(buf: &[u8]) -> (usize, usize) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("not a complete request: {other:?}"),
    };
    black_box((req.method, req.path, req.headers.len()));
    let mut content_length = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let digits = std::str::from_utf8(h.value).expect("ascii");
            content_length = Some(digits.trim().parse::<usize>().expect("a length"));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked");
        }
    }
    if let Some(n) = content_length {
        return (head_len + n, use_body(&buf[head_len..head_len + n]));
    }
    if !chunked {
        return (head_len, 0);
    }
    let mut at = head_len;
    let mut body = 0;
    loop {
        let (line, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(s)) => s,
            other => panic!("bad chunk: {other:?}"),
        };
        at += line;
        if size == 0 {
            // No trailers in this corpus: the final CRLF.
            assert_eq!(&buf[at..at + 2], b"\r\n");
            return (at + 2, body);
        }
        let size = size as usize;
        body += use_body(&buf[at..at + size]);
        at += size;
        assert_eq!(&buf[at..at + 2], b"\r\n", "chunk data ends in CRLF");
        at += 2;
    }
}

/// The corpus, by group name.
const ITEMS: [(&str, &[u8]); 4] = [
    ("short_get", SHORT_GET),
    ("browser_get", BROWSER_GET),
    ("post_content_length", POST_CONTENT_LENGTH),
    ("post_chunked", POST_CHUNKED),
];

fn corpus(c: &mut Criterion) {
    for (name, bytes) in ITEMS {
        // Both sides must agree on what they parsed, or the comparison is void.
        let mut parser = RequestParser::default();
        assert_eq!(ours(&mut parser, bytes), theirs(bytes), "{name}");
        assert_eq!(ours(&mut parser, bytes).0, bytes.len(), "{name}");

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("wirepatterns", |b| {
            b.iter(|| ours(&mut parser, black_box(bytes)))
        });
        group.bench_function("httparse", |b| b.iter(|| theirs(black_box(bytes))));
        group.finish();
    }
}

/// A head of exactly `size` bytes: a request line, a Host, and long `X-Pad-n` fields
/// (big cookies and tokens are what make real heads long).
fn big_head(size: usize) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    let mut n = 0;
    loop {
        let line_start = format!("X-Pad-{n}: ");
        let room = size - head.len() - 2;
        if room < line_start.len() + 3 {
            // Not enough room for another field: pad the last value instead.
            let last_crlf = head.len() - 2;
            head.splice(last_crlf..last_crlf, std::iter::repeat_n(b'x', room));
            break;
        }
        let value_len = (room - line_start.len() - 2).min(1000);
        head.extend_from_slice(line_start.as_bytes());
        head.extend(std::iter::repeat_n(b'v', value_len));
        head.extend_from_slice(b"\r\n");
        n += 1;
    }
    head.extend_from_slice(b"\r\n");
    assert_eq!(head.len(), size);
    head
}

/// Head sizes for `one_byte_reads`, each twice the one before, so that the time per
/// doubling shows the shape: about 2x for linear work, about 4x for quadratic.
const ONE_BYTE_SIZES: [usize; 6] = [1024, 2048, 4096, 8192, 16 * 1024, 32 * 1024];

/// A parser for the `one_byte_reads` heads. The default limit on a head is 16 KiB
/// (beyond it the answer is 431); raised here so that the largest head parses.
fn one_byte_parser() -> RequestParser {
    RequestParser::new(Limits {
        max_head_bytes: ONE_BYTE_SIZES[ONE_BYTE_SIZES.len() - 1],
        ..Limits::default()
    })
}

/// Feeds `head` to the hand parser one byte per read into a growing buffer, as a
/// slow client makes a server do. The parser resumes its search for the end of the
/// head where the last call stopped: O(n) in all.
fn ours_one_byte(parser: &mut RequestParser, buf: &mut Vec<u8>, head: &[u8]) -> usize {
    buf.clear();
    for &byte in head {
        buf.push(byte);
        match parser.parse(buf) {
            Ok(Status::Partial) => {}
            Ok(Status::Complete(req)) => return req.head_len(),
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!("the head ends with its last byte")
}

/// The same with httparse, called on the whole buffer after each read: it starts
/// over each time, O(n²) in all.
fn theirs_one_byte(buf: &mut Vec<u8>, head: &[u8]) -> usize {
    buf.clear();
    for &byte in head {
        buf.push(byte);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Partial) => {}
            Ok(httparse::Status::Complete(n)) => return n,
            Err(e) => panic!("{e}"),
        }
    }
    unreachable!("the head ends with its last byte")
}

fn one_byte_reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_byte_reads");
    // The quadratic side takes over 100 ms per 32 KiB head: few, flat samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for size in ONE_BYTE_SIZES {
        let head = big_head(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut parser = one_byte_parser();
        let mut buf = Vec::with_capacity(size);
        group.bench_with_input(BenchmarkId::new("wirepatterns", size), &head, |b, head| {
            b.iter(|| black_box(ours_one_byte(&mut parser, &mut buf, head)))
        });
        group.bench_with_input(BenchmarkId::new("httparse", size), &head, |b, head| {
            b.iter(|| black_box(theirs_one_byte(&mut buf, head)))
        });
    }
    group.finish();
}

/// The summary tables, printed after criterion's groups: ours and httparse timed in
/// alternating bursts (see [`support::alternate`]), so that both see the same
/// machine load. A row is printed when the run measures and the filter selects one
/// of the row's criterion benchmarks (or `ratios`).
fn ratios(_: &mut Criterion) {
    support::check_arg_split();
    let args = support::RunArgs::from_env();

    const ROUNDS: usize = 31;
    const BURST: Duration = Duration::from_millis(4);
    let mut table = support::Table::new(&["item", "wirepatterns", "httparse", "ours / httparse"]);
    for (name, bytes) in ITEMS {
        let ids = [
            format!("{name}/wirepatterns"),
            format!("{name}/httparse"),
            format!("ratios/{name}"),
        ];
        if !args.selects_any(&ids) {
            continue;
        }
        let mut parser = RequestParser::default();
        let (ours_s, theirs_s) = support::alternate(
            ROUNDS,
            BURST,
            || ours(&mut parser, black_box(bytes)),
            || theirs(black_box(bytes)),
        );
        table.row(vec![
            name.to_string(),
            support::time(ours_s),
            support::time(theirs_s),
            format!("{:.2}", ours_s / theirs_s),
        ]);
    }
    let corpus_selected = !table.is_empty();
    if corpus_selected {
        println!(
            "\nratios, A B A B: {ROUNDS} bursts of ~{} per side, the fastest burst of each",
            support::time(BURST.as_secs_f64())
        );
        table.print();
    }

    let ids: Vec<String> = ONE_BYTE_SIZES
        .iter()
        .flat_map(|size| {
            [
                format!("one_byte_reads/wirepatterns/{size}"),
                format!("one_byte_reads/httparse/{size}"),
            ]
        })
        .chain([String::from("ratios/one_byte_reads")])
        .collect();
    let one_byte_selected = args.selects_any(&ids);
    if one_byte_selected {
        one_byte_table();
        support::print_report_paths(Some("one_byte_reads"));
    } else if corpus_selected {
        support::print_report_paths(None);
    }
}

/// The `one_byte_reads` summary: per head size both times, how many times slower
/// httparse-from-the-start is, and how each side's time grows when the head doubles.
fn one_byte_table() {
    // One quadratic 32 KiB head takes longer than a burst: it is then one call, and
    // the 21 rounds take a few seconds.
    const ROUNDS: usize = 21;
    const BURST: Duration = Duration::from_millis(20);
    println!(
        "\none_byte_reads: a head fed one byte per read, A B A B: {ROUNDS} bursts of \
         ~{} (at least one head) per side, the fastest burst of each",
        support::time(BURST.as_secs_f64())
    );
    let mut table = support::Table::new(&[
        "head size",
        "wirepatterns",
        "httparse",
        "httparse / ours",
        "ours per doubling",
        "httparse per doubling",
    ]);
    let mut first: Option<(f64, f64)> = None;
    let mut previous: Option<(f64, f64)> = None;
    for size in ONE_BYTE_SIZES {
        let head = big_head(size);
        let mut parser = one_byte_parser();
        let (mut buf_ours, mut buf_theirs) = (Vec::new(), Vec::new());
        let (ours_s, theirs_s) = support::alternate(
            ROUNDS,
            BURST,
            || ours_one_byte(&mut parser, &mut buf_ours, &head),
            || theirs_one_byte(&mut buf_theirs, &head),
        );
        let growth = |now: f64, before: f64| format!("{:.2}x", now / before);
        let (ours_growth, theirs_growth) = match previous {
            Some((ours_before, theirs_before)) => {
                (growth(ours_s, ours_before), growth(theirs_s, theirs_before))
            }
            None => ("-".to_string(), "-".to_string()),
        };
        table.row(vec![
            format!("{} KiB", size / 1024),
            support::time(ours_s),
            support::time(theirs_s),
            format!("{:.0}x", theirs_s / ours_s),
            ours_growth,
            theirs_growth,
        ]);
        first = first.or(Some((ours_s, theirs_s)));
        previous = Some((ours_s, theirs_s));
    }
    table.print();
    // One step of the curve is noisy on a shared machine; the whole range much less.
    if let (Some((ours_first, theirs_first)), Some((ours_last, theirs_last))) = (first, previous) {
        let (smallest, largest) = (ONE_BYTE_SIZES[0], ONE_BYTE_SIZES[ONE_BYTE_SIZES.len() - 1]);
        let bytes = largest / smallest;
        println!(
            "from {} KiB to {} KiB ({bytes}x the bytes): wirepatterns {:.1}x the time, \
             httparse {:.0}x (linear work would be {bytes}x, quadratic {}x)",
            smallest / 1024,
            largest / 1024,
            ours_last / ours_first,
            theirs_last / theirs_first,
            bytes * bytes,
        );
    }
}

/// Defaults for every group; the command line (`--warm-up-time 1`, `--sample-size
/// 20`, ...) overrides them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = corpus, one_byte_reads, ratios
}
criterion_main!(benches);
