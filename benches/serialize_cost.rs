//! What it costs to turn a job's status into bytes and back: the crate's plain
//! text beside JSON, XML and a binary format.
//!
//! ```text
//! cargo bench --bench serialize_cost
//! ```
//!
//! The notes call (de)serialization expensive and XML heavy. This bench puts
//! numbers on both, for the message the jobs server deals in: a job's handle,
//! its progress and when it got there (see `examples/support/job_message.rs`;
//! 100% is done, so there is no separate state field). Two messages:
//!
//! | message | what |
//! |---|---|
//! | `one_job` | `job:1764480000000-2` at 40%, stamped 12 s after its start |
//! | `100_jobs` | a list of 100 such statuses, some handles with a `-n` counter |
//!
//! Each message is encoded and decoded by every format:
//!
//! | contender | bytes | code |
//! |---|---|---|
//! | `text` | `v1 progress job:1764480000000-2 40 at=1764480012000`, one line per job | the crate's journal payload, [`Event`]'s `Display` and [`Event::decode`]; the list (lines ending in `\n`) is split and joined here, the crate having no list form |
//! | `status_line` (one job only) | `JobStatus: 40% at=1764480012000` | what the jobs server sends on SSE and WebSocket (and, without `at=`, to a short poll). It carries no handle (the client asked about one), so it round-trips progress and stamp only. The crate's writer is private to the jobs server; the same `write!` is here, with a hand parser as strict as the journal's |
//! | `json` | `{"id":"job:1764480000000-2","progress":40,"at_ms":1764480012000}`; a list is a JSON array | `serde_json` |
//! | `xml` | `<job><id>job:1764480000000-2</id><progress>40</progress><at_ms>1764480012000</at_ms></job>`; a list is `<jobs><job>…</job>…</jobs>` | `quick-xml`'s serde support |
//! | `postcard` | varints and length-prefixed strings, no field names | `postcard` |
//!
//! Every format checks what the text checks: the handle is parsed by
//! [`JobId::parse`] (canonical spelling only) and a progress over 100 is refused.
//! Encoding appends to one buffer reused across iterations, as a server reuses its
//! response buffer; decoding builds the owned value (a `Vec` for the list) from
//! the bytes. Before anything is timed, each contender's output is decoded back and
//! compared with the input, so a broken codec fails the bench instead of being
//! measured.
//!
//! One criterion group per message and direction (`encode/one_job`,
//! `decode/100_jobs`, ...) holds every format, so they are compared side by side;
//! `thrpt` is in jobs per second. After the groups come two tables: the encoded
//! sizes (and their ratios to the text and to JSON), then every format's time,
//! per message and per job, with its ratio to the text and to JSON. For that
//! table the formats of one message and direction are timed in turn, a burst of
//! about a millisecond each (A B C D A B C D ...), keeping each one's fastest
//! burst: all of them see the same machine load, which on a shared machine gives
//! steadier ratios than criterion estimates taken seconds apart.
//!
//! ```text
//! cargo bench --bench serialize_cost -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench serialize_cost -- 100_jobs     # one message, its rows
//! cargo bench --bench serialize_cost -- ratios       # only the tables
//! ```
//!
//! [`Event`]: wirepatterns::patterns::journal::Event
//! [`Event::decode`]: wirepatterns::patterns::journal::Event::decode
//! [`JobId::parse`]: wirepatterns::patterns::jobs::JobId::parse

// This bench times its formats in its own round robin, not in `support::alternate`.
#[allow(dead_code)]
mod support;

#[path = "../examples/support/job_message.rs"]
mod job_message;

use std::fmt::Debug;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use wirepatterns::patterns::jobs::{JobId, Update};
use wirepatterns::patterns::journal::Event;

use job_message::{JobStatus, sample_jobs};

/// Appends the encoding of a value to a buffer.
type Encode<T> = fn(&T, &mut Vec<u8>) -> Result<(), String>;
/// Reads a value back from its encoding.
type Decode<T> = fn(&[u8]) -> Result<T, String>;

/// One format for one kind of message.
struct Codec<T> {
    /// The contender's name in criterion's ids and in the tables.
    name: &'static str,
    encode: Encode<T>,
    decode: Decode<T>,
}

// ---------------------------------------------------------------------------
// text: the journal's payload line

/// A status as the journal's progress event.
fn event_of(job: &JobStatus) -> Event {
    Event::Progressed {
        id: job.id,
        progress: job.progress,
        wall_ms: job.at_ms,
    }
}

/// The status a journal payload describes; a submit event is not one.
fn status_of(payload: &[u8]) -> Result<JobStatus, String> {
    match Event::decode(payload) {
        Ok(Event::Progressed {
            id,
            progress,
            wall_ms,
        }) => Ok(JobStatus {
            id,
            progress,
            at_ms: wall_ms,
        }),
        Ok(other) => Err(format!("not a progress event: {other}")),
        Err(e) => Err(format!("{e:?}")),
    }
}

fn text_encode(job: &JobStatus, out: &mut Vec<u8>) -> Result<(), String> {
    write!(out, "{}", event_of(job)).map_err(|e| e.to_string())
}

fn text_decode(bytes: &[u8]) -> Result<JobStatus, String> {
    status_of(bytes)
}

/// The list: one journal line per job, each ending in `\n`.
fn text_list_encode(jobs: &Vec<JobStatus>, out: &mut Vec<u8>) -> Result<(), String> {
    for job in jobs {
        writeln!(out, "{}", event_of(job)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn text_list_decode(bytes: &[u8]) -> Result<Vec<JobStatus>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or("the last line does not end in \\n")?;
    body.split(|&b| b == b'\n').map(status_of).collect()
}

// ---------------------------------------------------------------------------
// status_line: what the jobs server sends on a stream

fn status_line_encode(update: &Update, out: &mut Vec<u8>) -> Result<(), String> {
    write!(out, "JobStatus: {}% at={}", update.progress, update.at_ms).map_err(|e| e.to_string())
}

/// A decimal written as `Display` writes it: digits, no leading zero.
fn canonical_u64(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

fn status_line_decode(bytes: &[u8]) -> Result<Update, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let (progress, at) = text
        .strip_prefix("JobStatus: ")
        .and_then(|rest| rest.split_once("% at="))
        .ok_or("not `JobStatus: N% at=MS`")?;
    let progress = canonical_u64(progress)
        .and_then(|p| u8::try_from(p).ok())
        .filter(|&p| p <= 100)
        .ok_or("progress is not 0 to 100")?;
    let at_ms = canonical_u64(at).ok_or("at= is not a number")?;
    Ok(Update { progress, at_ms })
}

// ---------------------------------------------------------------------------
// serde formats

fn json_encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    serde_json::to_writer(out, value).map_err(|e| e.to_string())
}

fn json_decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// XML needs one root element: the list is `<jobs>` holding one `<job>` per job.
#[derive(Deserialize)]
#[serde(rename = "jobs")]
struct XmlJobs {
    job: Vec<JobStatus>,
}

/// [`XmlJobs`] to write, borrowing the list.
#[derive(Serialize)]
#[serde(rename = "jobs")]
struct XmlJobsRef<'a> {
    job: &'a [JobStatus],
}

fn xml_encode(job: &JobStatus, out: &mut Vec<u8>) -> Result<(), String> {
    quick_xml::se::to_utf8_io_writer(out, job)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn xml_decode(bytes: &[u8]) -> Result<JobStatus, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

fn xml_list_encode(jobs: &Vec<JobStatus>, out: &mut Vec<u8>) -> Result<(), String> {
    quick_xml::se::to_utf8_io_writer(out, &XmlJobsRef { job: jobs })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn xml_list_decode(bytes: &[u8]) -> Result<Vec<JobStatus>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    quick_xml::de::from_str::<XmlJobs>(text)
        .map(|jobs| jobs.job)
        .map_err(|e| e.to_string())
}

fn postcard_encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), String> {
    let buf = std::mem::take(out);
    *out = postcard::to_extend(value, buf).map_err(|e| e.to_string())?;
    Ok(())
}

fn postcard_decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// the contenders

/// The message `one_job`: a handle with a counter, at 40%.
fn one_job() -> JobStatus {
    JobStatus {
        id: JobId::new(1_764_480_000_000, 2),
        progress: 40,
        at_ms: 1_764_480_012_000,
    }
}

/// How many jobs the list message holds.
const LIST_LEN: usize = 100;

/// The formats of one job, the text first (the tables' reference).
fn one_job_codecs() -> [Codec<JobStatus>; 4] {
    [
        Codec {
            name: "text",
            encode: text_encode,
            decode: text_decode,
        },
        Codec {
            name: "json",
            encode: json_encode,
            decode: json_decode,
        },
        Codec {
            name: "xml",
            encode: xml_encode,
            decode: xml_decode,
        },
        Codec {
            name: "postcard",
            encode: postcard_encode,
            decode: postcard_decode,
        },
    ]
}

/// The status line, for one job only: it carries no handle.
fn status_line_codec() -> Codec<Update> {
    Codec {
        name: "status_line",
        encode: status_line_encode,
        decode: status_line_decode,
    }
}

/// The formats of the list, the text first.
fn list_codecs() -> [Codec<Vec<JobStatus>>; 4] {
    [
        Codec {
            name: "text",
            encode: text_list_encode,
            decode: text_list_decode,
        },
        Codec {
            name: "json",
            encode: json_encode,
            decode: json_decode,
        },
        Codec {
            name: "xml",
            encode: xml_list_encode,
            decode: xml_list_decode,
        },
        Codec {
            name: "postcard",
            encode: postcard_encode,
            decode: postcard_decode,
        },
    ]
}

/// The update a status line carries for `job`.
fn update_of(job: &JobStatus) -> Update {
    Update {
        progress: job.progress,
        at_ms: job.at_ms,
    }
}

/// Encodes `value` with `codec`, checks that it decodes back to `value`, and
/// returns the bytes. Panics (ending the bench) on any difference.
fn verified<T: PartialEq + Debug>(message: &str, codec: &Codec<T>, value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Err(e) = (codec.encode)(value, &mut bytes) {
        panic!("{message}/{}: encoding failed: {e}", codec.name);
    }
    match (codec.decode)(&bytes) {
        Ok(back) => assert_eq!(
            &back,
            value,
            "{message}/{}: decoding its own output gave another value; bytes: {}",
            codec.name,
            bytes.escape_ascii()
        ),
        Err(e) => panic!(
            "{message}/{}: cannot decode its own output ({e}): {}",
            codec.name,
            bytes.escape_ascii()
        ),
    }
    // Encoding into a buffer that already holds something appends, and twice
    // gives the same bytes.
    let mut again = bytes.clone();
    (codec.encode)(value, &mut again).expect("encodes twice");
    assert_eq!(again.len(), 2 * bytes.len(), "{message}/{}", codec.name);
    assert_eq!(
        &again[bytes.len()..],
        &bytes[..],
        "{message}/{}",
        codec.name
    );
    bytes
}

/// A status with its handle as any text, to write what [`JobStatus`] never writes.
#[derive(Serialize)]
#[serde(rename = "job")]
struct RawStatus<'a> {
    id: &'a str,
    progress: u8,
    at_ms: u64,
}

/// Checks that every format refuses what the text refuses: a handle not in its
/// canonical spelling (`-02`), and a progress over 100. The well-formed value
/// written the same way must decode, so the check cannot pass for a wrong reason.
fn check_refusals() {
    let good = RawStatus {
        id: "job:1764480000000-2",
        progress: 40,
        at_ms: 1,
    };
    let leading_zero = RawStatus {
        id: "job:1764480000000-02",
        ..good
    };
    let too_far = RawStatus {
        progress: 101,
        ..good
    };
    let serde_formats: [(&str, Encode<RawStatus<'static>>, Decode<JobStatus>); 3] = [
        ("json", json_encode, json_decode),
        ("xml", xml_raw_encode, xml_decode),
        ("postcard", postcard_encode, postcard_decode),
    ];
    for (name, encode, decode) in serde_formats {
        let bytes = |raw: &RawStatus<'static>| {
            let mut out = Vec::new();
            encode(raw, &mut out).expect("encodes");
            out
        };
        assert!(decode(&bytes(&good)).is_ok(), "{name}: the good status");
        assert!(
            decode(&bytes(&leading_zero)).is_err(),
            "{name}: `-02` accepted"
        );
        assert!(decode(&bytes(&too_far)).is_err(), "{name}: 101% accepted");
    }
    assert!(text_decode(b"v1 progress job:1764480000000-2 40 at=1").is_ok());
    assert!(text_decode(b"v1 progress job:1764480000000-02 40 at=1").is_err());
    assert!(text_decode(b"v1 progress job:1764480000000-2 101 at=1").is_err());
    assert!(status_line_decode(b"JobStatus: 40% at=1").is_ok());
    assert!(status_line_decode(b"JobStatus: 101% at=1").is_err());
    assert!(status_line_decode(b"JobStatus: 40% at=01").is_err());
}

fn xml_raw_encode(raw: &RawStatus, out: &mut Vec<u8>) -> Result<(), String> {
    quick_xml::se::to_utf8_io_writer(out, raw)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// criterion groups

/// One group per direction for a message: every codec on the same value.
fn groups<T: PartialEq + Debug>(
    c: &mut Criterion,
    message: &str,
    jobs: u64,
    value: &T,
    codecs: &[Codec<T>],
    status_line: Option<(&Update, &Codec<Update>)>,
) {
    let encoded: Vec<Vec<u8>> = codecs.iter().map(|k| verified(message, k, value)).collect();
    let line = status_line.map(|(update, codec)| (update, codec, verified(message, codec, update)));

    let mut group = c.benchmark_group(format!("encode/{message}"));
    group.throughput(Throughput::Elements(jobs));
    for (codec, bytes) in codecs.iter().zip(&encoded) {
        let mut buf = Vec::with_capacity(bytes.len());
        group.bench_function(codec.name, |b| {
            b.iter(|| {
                buf.clear();
                let done = (codec.encode)(black_box(value), &mut buf);
                black_box(done.is_ok() && !buf.is_empty())
            })
        });
    }
    if let Some((update, codec, bytes)) = &line {
        let mut buf = Vec::with_capacity(bytes.len());
        group.bench_function(codec.name, |b| {
            b.iter(|| {
                buf.clear();
                let done = (codec.encode)(black_box(update), &mut buf);
                black_box(done.is_ok() && !buf.is_empty())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("decode/{message}"));
    group.throughput(Throughput::Elements(jobs));
    for (codec, bytes) in codecs.iter().zip(&encoded) {
        group.bench_function(codec.name, |b| b.iter(|| (codec.decode)(black_box(bytes))));
    }
    if let Some((_, codec, bytes)) = &line {
        group.bench_function(codec.name, |b| b.iter(|| (codec.decode)(black_box(bytes))));
    }
    group.finish();
}

fn one(c: &mut Criterion) {
    support::check_arg_split();
    check_refusals();
    let job = one_job();
    let update = update_of(&job);
    let line = status_line_codec();
    groups(
        c,
        "one_job",
        1,
        &job,
        &one_job_codecs(),
        Some((&update, &line)),
    );
}

fn list(c: &mut Criterion) {
    let jobs = sample_jobs(LIST_LEN);
    groups(c, "100_jobs", LIST_LEN as u64, &jobs, &list_codecs(), None);
}

// ---------------------------------------------------------------------------
// the tables

/// A size in the unit its size calls for: `52 B`, `6.07 KiB`.
fn size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.2} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// `1.00x`, `0.41x`.
fn times(ratio: f64) -> String {
    format!("{ratio:.2}x")
}

/// Encoded sizes of both messages in every format, with their ratios to the text
/// and to JSON.
fn size_table() {
    let job = one_job();
    let jobs = sample_jobs(LIST_LEN);
    let one: Vec<(&str, usize)> = one_job_codecs()
        .iter()
        .map(|k| (k.name, verified("one_job", k, &job).len()))
        .collect();
    let many: Vec<(&str, usize)> = list_codecs()
        .iter()
        .map(|k| (k.name, verified("100_jobs", k, &jobs).len()))
        .collect();
    let line = verified("one_job", &status_line_codec(), &update_of(&job)).len();

    println!("\nencoded sizes (text: the journal's line per job; status_line carries no handle)");
    let mut table = support::Table::new(&[
        "format", "one job", "vs text", "vs json", "100 jobs", "vs text", "vs json", "per job",
    ]);
    let find = |list: &[(&str, usize)], name: &str| {
        list.iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, s)| s as f64)
            .unwrap_or(f64::NAN)
    };
    let (text_one, json_one) = (find(&one, "text"), find(&one, "json"));
    let (text_many, json_many) = (find(&many, "text"), find(&many, "json"));
    for (&(name, one_size), &(_, many_size)) in one.iter().zip(&many) {
        table.row(vec![
            name.to_string(),
            size(one_size),
            times(one_size as f64 / text_one),
            times(one_size as f64 / json_one),
            size(many_size),
            times(many_size as f64 / text_many),
            times(many_size as f64 / json_many),
            format!("{:.1} B", many_size as f64 / LIST_LEN as f64),
        ]);
    }
    table.row(vec![
        "status_line".to_string(),
        size(line),
        times(line as f64 / text_one),
        times(line as f64 / json_one),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
    ]);
    table.print();
}

/// A contender of [`round_robin`]: runs its operation the given number of times
/// and returns the seconds per call.
type Burst<'a> = Box<dyn FnMut(u32) -> f64 + 'a>;

/// `op` as a [`Burst`]: one dynamic call per burst, none per operation.
fn burst_of<'a, R>(mut op: impl FnMut() -> R + 'a) -> Burst<'a> {
    Box::new(move |calls| {
        let start = Instant::now();
        for _ in 0..calls {
            black_box(op());
        }
        start.elapsed().as_secs_f64() / f64::from(calls.max(1))
    })
}

/// Times every contender in turn, a burst each (A B C D A B C D ...), and returns
/// the fastest burst of each in seconds per call.
///
/// [`support::alternate`] does this for two; here every format of one message
/// and direction shares the rounds, so that all of them see the same machine
/// load and any two can be compared. Each gets as many calls per burst as fill
/// `burst` (found by doubling, which also warms it up), and the one that goes
/// first changes every round.
fn round_robin(rounds: usize, burst: Duration, contenders: &mut [Burst<'_>]) -> Vec<f64> {
    let calls: Vec<u32> = contenders
        .iter_mut()
        .map(|run| {
            let mut calls = 1u32;
            while run(calls) * f64::from(calls) < burst.as_secs_f64() && calls < 1 << 24 {
                calls *= 2;
            }
            calls
        })
        .collect();
    let n = contenders.len();
    let mut best = vec![f64::MAX; n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            best[i] = best[i].min(contenders[i](calls[i]));
        }
    }
    best
}

/// The encode and decode bursts of `codecs` on `value` (each encodes into its own
/// reused buffer, each decodes its own encoding), in the order of `codecs`.
fn bursts<'a, T>(value: &'a T, codecs: &'a [Codec<T>]) -> (Vec<Burst<'a>>, Vec<Burst<'a>>) {
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    for codec in codecs {
        let mut buf = Vec::new();
        encode.push(burst_of(move || {
            buf.clear();
            (codec.encode)(black_box(value), &mut buf).is_ok()
        }));
        let mut bytes = Vec::new();
        // `verified` has already checked this round trip.
        let _ = (codec.encode)(value, &mut bytes);
        decode.push(burst_of(move || (codec.decode)(black_box(&bytes)).is_ok()));
    }
    (encode, decode)
}

/// The sizes table, then every format's time per message and direction, with
/// its ratio to the text and to JSON, all formats of a row group timed in one
/// round robin.
fn ratios(_: &mut Criterion) {
    let args = support::RunArgs::from_env();
    let selected = |message: &str| {
        let ids: Vec<String> = ["encode", "decode"]
            .iter()
            .flat_map(|dir| {
                ["text", "status_line", "json", "xml", "postcard"]
                    .iter()
                    .map(move |name| format!("{dir}/{message}/{name}"))
            })
            .chain([format!("ratios/{message}")])
            .collect();
        args.selects_any(&ids)
    };
    let (show_one, show_many) = (selected("one_job"), selected("100_jobs"));
    if !show_one && !show_many {
        return;
    }
    size_table();

    // Short bursts, many rounds: on a loaded machine a short burst is more likely
    // to run undisturbed, and the fastest one is what is kept.
    const ROUNDS: usize = 101;
    const BURST: Duration = Duration::from_millis(1);
    println!(
        "\ntimes, every format of a message and direction in turn (A B C D ...): {ROUNDS} \
         bursts of ~{} each, the fastest burst of each",
        support::time(BURST.as_secs_f64())
    );
    let mut table = support::Table::new(&["benchmark", "time", "per job", "vs text", "vs json"]);
    let mut rows = |dir: &str, message: &str, jobs: usize, names: &[&str], times_s: &[f64]| {
        let (text, json) = (times_s[0], times_s[1]);
        for (name, &t) in names.iter().zip(times_s) {
            table.row(vec![
                format!("{dir}/{message}/{name}"),
                support::time(t),
                support::time(t / jobs as f64),
                times(t / text),
                times(t / json),
            ]);
        }
    };
    let job = one_job();
    let update = update_of(&job);
    let jobs = sample_jobs(LIST_LEN);
    let one_codecs = one_job_codecs();
    let line_codec = [status_line_codec()];
    let list = list_codecs();
    if show_one {
        let names: Vec<&str> = one_codecs
            .iter()
            .map(|k| k.name)
            .chain(line_codec.iter().map(|k| k.name))
            .collect();
        let (mut encode, mut decode) = bursts(&job, &one_codecs);
        let (line_encode, line_decode) = bursts(&update, &line_codec);
        encode.extend(line_encode);
        decode.extend(line_decode);
        rows(
            "encode",
            "one_job",
            1,
            &names,
            &round_robin(ROUNDS, BURST, &mut encode),
        );
        rows(
            "decode",
            "one_job",
            1,
            &names,
            &round_robin(ROUNDS, BURST, &mut decode),
        );
    }
    if show_many {
        let names: Vec<&str> = list.iter().map(|k| k.name).collect();
        let (mut encode, mut decode) = bursts(&jobs, &list);
        rows(
            "encode",
            "100_jobs",
            LIST_LEN,
            &names,
            &round_robin(ROUNDS, BURST, &mut encode),
        );
        rows(
            "decode",
            "100_jobs",
            LIST_LEN,
            &names,
            &round_robin(ROUNDS, BURST, &mut decode),
        );
    }
    if !table.is_empty() {
        table.print();
    }
    support::print_report_paths(None);
}

/// Defaults for every group; the command line (`--warm-up-time 1`, `--sample-size
/// 20`, ...) overrides them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = one, list, ratios
}
criterion_main!(benches);
