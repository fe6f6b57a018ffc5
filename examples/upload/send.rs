//! `send`: the upload itself, whole or in tus parts, with the cut and the resume.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sha1::{Digest, Sha1};
use wirepatterns::patterns::upload::Stored;
use wirepatterns::patterns::upload::sha1_hex;
use wirepatterns::patterns::upload::tus::{Checksum, Metadata, integer};
use wirepatterns::trace::{Dur, Size};

use crate::wire::{self, Answer, Conn, Sent};
use crate::{Mode, SendOptions};

/// How a run can fail: the command line could not be followed (exit 2), or the
/// upload failed (exit 1).
#[derive(Debug)]
pub enum Failure {
    /// A FILE that cannot be read.
    Usage(String),
    /// The server could not be reached, refused, broke the protocol, or stored
    /// something else.
    Failed(String),
}

/// The most failures in a row a chunked upload resumes from before giving up.
const MAX_RESUMES: u32 = 5;

/// How many times a HEAD is retried while the upload is locked (423) by the part
/// that was cut, which the server has not yet seen end; 20 ms apart.
const LOCKED_RETRIES: u32 = 250;

/// Bytes read from the file per write in whole mode.
const READ_BUF: usize = 64 * 1024;

/// The deliberate cut: after `at` bytes of body, once.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Body bytes after which the connection is dropped.
    at: u64,
    /// It happened.
    done: bool,
}

impl Cut {
    /// How many of `len` body bytes may be sent when `body_sent` have been: all
    /// of them, or fewer if the cut falls inside.
    fn allow(&self, body_sent: u64, len: usize) -> usize {
        if self.done {
            return len;
        }
        let left = self.at.saturating_sub(body_sent);
        len.min(usize::try_from(left).unwrap_or(usize::MAX))
    }
}

/// Why a request did not get its answer.
enum Broken {
    /// The deliberate cut.
    Cut,
    /// The connection failed.
    Io(String),
}

/// The client's state across requests and connections.
struct Client<'a> {
    opts: &'a SendOptions,
    sent: Sent,
    cut: Option<Cut>,
    bar: ProgressBar,
}

impl Client<'_> {
    fn connect(&mut self) -> Result<Conn, Failure> {
        Conn::open(self.opts.addr, self.opts.timeout, &mut self.sent)
            .map_err(|e| Failure::Failed(format!("cannot connect to {}: {e}", self.opts.addr)))
    }

    /// Sends body bytes, stopping at the cut.
    fn body(&mut self, conn: &mut Conn, bytes: &[u8]) -> Result<(), Broken> {
        let allowed = match self.cut {
            Some(cut) => cut.allow(self.sent.body, bytes.len()),
            None => bytes.len(),
        };
        let first = bytes.get(..allowed).unwrap_or(bytes);
        conn.send_body(first, &mut self.sent)
            .map_err(|e| Broken::Io(format!("sending the body: {e}")))?;
        self.bar.inc(first.len() as u64);
        if allowed < bytes.len() || self.cut.is_some_and(|c| !c.done && self.sent.body >= c.at) {
            if let Some(c) = self.cut.as_mut() {
                c.done = true;
            }
            return Err(Broken::Cut);
        }
        Ok(())
    }
}

/// What a run produced: the report to print, and whether the server's digest
/// matched the file's.
pub struct Outcome {
    /// The report.
    pub text: String,
    /// The server stored exactly the file.
    pub matches: bool,
}

/// Uploads the file as `opts` says and reports.
pub fn run(opts: &SendOptions) -> Result<Outcome, Failure> {
    let (size, local) = hash_file(opts)?;
    let name = opts
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::Usage(format!("{}: not a file name", opts.file.display())))?;
    let bar = progress_bar(size);
    let mut client = Client {
        opts,
        sent: Sent::default(),
        cut: opts.cut_after.map(|c| Cut {
            at: c.bytes(size),
            done: false,
        }),
        bar,
    };
    let started = Instant::now();
    let result = match opts.mode {
        Mode::Whole => whole(&mut client, &name, size),
        Mode::Chunked => chunked(&mut client, &name, size),
    };
    let took = started.elapsed();
    client.bar.finish_and_clear();
    let stored = result?;
    let matches = stored.size == size && stored.sha1 == local;
    let text = report(opts, &name, size, &local, &client, took, &stored, matches);
    Ok(Outcome { text, matches })
}

/// The file's size and SHA-1, read once before the upload.
fn hash_file(opts: &SendOptions) -> Result<(u64, [u8; 20]), Failure> {
    let unreadable =
        |e: io::Error| Failure::Usage(format!("cannot read {}: {e}", opts.file.display()));
    let mut file = File::open(&opts.file).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(Failure::Usage(format!(
            "{}: not a regular file",
            opts.file.display()
        )));
    }
    let mut h = Sha1::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(unreadable)?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        h.update(chunk);
        size += n as u64;
    }
    Ok((size, h.finalize().into()))
}

fn progress_bar(size: u64) -> ProgressBar {
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {elapsed:>3} [{bar:25}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}  {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn failed(what: &str, answer: &Answer) -> Failure {
    Failure::Failed(format!(
        "{what}: the server answered {}: {}",
        answer.status,
        answer.reason()
    ))
}

/// The `stored` line of an answer's body.
fn stored_line(answer: &Answer) -> Result<Stored, Failure> {
    let text = String::from_utf8_lossy(&answer.body);
    Stored::parse(&text).ok_or_else(|| {
        Failure::Failed(format!(
            "the server's answer is not `stored NAME: SIZE bytes, sha1 HEX`: {:?}",
            text.lines().next().unwrap_or_default()
        ))
    })
}

/// Whole mode: one `PUT /files/NAME`; after a cut, everything again.
fn whole(client: &mut Client<'_>, name: &str, size: u64) -> Result<Stored, Failure> {
    let head = wire::put_head(&client.opts.host, name, size);
    // At most one deliberate cut, then one attempt that goes through.
    for _attempt in 0..2 {
        let mut conn = client.connect()?;
        client.bar.set_position(0);
        client.bar.set_message("PUT");
        conn.send_head(&head, &mut client.sent)
            .map_err(|e| Failure::Failed(format!("sending PUT: {e}")))?;
        let mut file = File::open(&client.opts.file).map_err(|e| {
            Failure::Usage(format!("cannot read {}: {e}", client.opts.file.display()))
        })?;
        let mut buf = vec![0u8; READ_BUF];
        let mut cut = false;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Failure::Failed(format!("reading the file: {e}")))?;
            let Some(piece) = buf.get(..n).filter(|p| !p.is_empty()) else {
                break;
            };
            match client.body(&mut conn, piece) {
                Ok(()) => {}
                Err(Broken::Cut) => {
                    cut = true;
                    break;
                }
                Err(Broken::Io(e)) => {
                    // A server that refuses a request answers at once and closes
                    // without reading the body: the answer may be there to read.
                    return Err(match conn.read_answer("PUT") {
                        Ok(answer) if answer.status >= 400 => failed("PUT", &answer),
                        _ => Failure::Failed(e),
                    });
                }
            }
        }
        if cut {
            // Dropping the connection is the cut; the server throws the half away.
            drop(conn);
            continue;
        }
        let answer = conn.read_answer("PUT").map_err(Failure::Failed)?;
        if answer.status != 201 && answer.status != 200 {
            return Err(failed("PUT", &answer));
        }
        return stored_line(&answer);
    }
    Err(Failure::Failed("the upload was cut twice".into()))
}

/// Chunked mode: tus creation, PATCHes (with checksums unless `--no-checksum`), the
/// digest; resumed from
/// HEAD after a cut or a failure.
fn chunked(client: &mut Client<'_>, name: &str, size: u64) -> Result<Stored, Failure> {
    let host = client.opts.host.clone();
    let chunk_size = client.opts.chunk_size;
    let mut conn = Some(client.connect()?);
    let metadata = Metadata::from_pairs([("filename", name.as_bytes())])
        .map_err(|e| Failure::Failed(format!("metadata: {e}")))?;
    client.bar.set_message("POST");
    let answer = request(
        client,
        &mut conn,
        &wire::create_head(&host, size, &metadata),
        "POST",
    )?;
    if answer.status != 201 {
        return Err(failed("POST /uploads", &answer));
    }
    let path = answer
        .header("Location")
        .ok_or_else(|| Failure::Failed("the 201 has no Location".into()))
        .and_then(|l| wire::location_path(l).map_err(Failure::Failed))?;

    let mut file = File::open(&client.opts.file)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", client.opts.file.display())))?;
    let mut offset = 0u64;
    let mut failures = 0u32;
    let mut part = Vec::new();
    let mut parts = 0u64;
    while offset < size {
        let len = chunk_size.min(size - offset);
        read_part(&mut file, offset, len, &mut part)?;
        let checksum = client
            .opts
            .checksum
            .then(|| Checksum::Sha1(Sha1::digest(&part).into()));
        parts += 1;
        client.bar.set_message(format!("PATCH part {parts}"));
        client.bar.set_position(offset);
        match patch(client, &mut conn, &path, offset, &part, checksum.as_ref()) {
            Ok(answer) if answer.status == 204 => {
                let new = answer
                    .header("Upload-Offset")
                    .and_then(integer)
                    .ok_or_else(|| {
                        Failure::Failed("the 204 to PATCH has no valid Upload-Offset".into())
                    })?;
                if new != offset + len {
                    return Err(Failure::Failed(format!(
                        "PATCH of {len} bytes at {offset}: the server says the offset is now {new}"
                    )));
                }
                offset = new;
                failures = 0;
            }
            // 409: the offset was not the server's; 460: the part arrived damaged.
            // Either way, ask where the upload stands and go on from there.
            Ok(answer) if answer.status == 409 || answer.status == 460 => {
                failures += 1;
                if failures > MAX_RESUMES {
                    return Err(failed("PATCH", &answer));
                }
                offset = resume(client, &mut conn, &path)?;
            }
            Ok(answer) => return Err(failed("PATCH", &answer)),
            Err(broken) => {
                if let Broken::Io(e) = &broken {
                    failures += 1;
                    if failures > MAX_RESUMES {
                        return Err(Failure::Failed(e.clone()));
                    }
                }
                conn = None;
                client.bar.set_message("HEAD");
                offset = resume(client, &mut conn, &path)?;
            }
        }
    }
    client.bar.set_message("GET digest");
    let answer = request(client, &mut conn, &wire::digest_head(&host, &path), "GET")?;
    if answer.status != 200 {
        return Err(failed("GET digest", &answer));
    }
    stored_line(&answer)
}

/// Reads `len` bytes of the file at `offset` into `part`.
fn read_part(file: &mut File, offset: u64, len: u64, part: &mut Vec<u8>) -> Result<(), Failure> {
    let read = |e: io::Error| Failure::Failed(format!("reading the file at {offset}: {e}"));
    file.seek(SeekFrom::Start(offset)).map_err(read)?;
    part.clear();
    file.by_ref().take(len).read_to_end(part).map_err(read)?;
    if part.len() as u64 != len {
        return Err(Failure::Failed(
            "the file got shorter while it was sent".into(),
        ));
    }
    Ok(())
}

/// Opens a connection if there is none.
fn ensure<'c>(
    client: &mut Client<'_>,
    conn: &'c mut Option<Conn>,
) -> Result<&'c mut Conn, Failure> {
    if conn.is_none() {
        *conn = Some(client.connect()?);
    }
    conn.as_mut()
        .ok_or_else(|| Failure::Failed("no connection".into()))
}

/// A request without a body, its answer, the connection dropped if the server
/// closes it.
fn request(
    client: &mut Client<'_>,
    conn: &mut Option<Conn>,
    head: &str,
    method: &str,
) -> Result<Answer, Failure> {
    let c = ensure(client, conn)?;
    c.send_head(head, &mut client.sent)
        .map_err(|e| Failure::Failed(format!("sending {method}: {e}")))?;
    let answer = c.read_answer(method).map_err(Failure::Failed)?;
    if answer.closes() {
        *conn = None;
    }
    Ok(answer)
}

/// One PATCH and its answer.
fn patch(
    client: &mut Client<'_>,
    conn: &mut Option<Conn>,
    path: &str,
    offset: u64,
    part: &[u8],
    checksum: Option<&Checksum>,
) -> Result<Answer, Broken> {
    let head = wire::patch_head(&client.opts.host, path, offset, part.len() as u64, checksum);
    let mut c = match conn.take() {
        Some(c) => c,
        None => client.connect().map_err(|e| match e {
            Failure::Usage(e) | Failure::Failed(e) => Broken::Io(e),
        })?,
    };
    c.send_head(&head, &mut client.sent)
        .map_err(|e| Broken::Io(format!("sending PATCH: {e}")))?;
    if let Err(broken) = client.body(&mut c, part) {
        if let Broken::Io(_) = broken {
            // Refused before the body was read: the answer may be there to read.
            if let Ok(answer) = c.read_answer("PATCH") {
                return Ok(answer);
            }
        }
        return Err(broken);
    }
    let answer = c.read_answer("PATCH").map_err(Broken::Io)?;
    if !answer.closes() {
        *conn = Some(c);
    }
    Ok(answer)
}

/// Asks the server where the upload stands (tus §Core, HEAD), on a new connection
/// if needed, retrying while the cut part still holds the upload (423).
fn resume(client: &mut Client<'_>, conn: &mut Option<Conn>, path: &str) -> Result<u64, Failure> {
    let head = wire::head_head(&client.opts.host, path);
    for _ in 0..LOCKED_RETRIES {
        let answer = request(client, conn, &head, "HEAD")?;
        match answer.status {
            200 | 204 => {
                let offset = answer
                    .header("Upload-Offset")
                    .and_then(integer)
                    .ok_or_else(|| {
                        Failure::Failed("the answer to HEAD has no valid Upload-Offset".into())
                    })?;
                client.bar.set_position(offset);
                return Ok(offset);
            }
            423 => std::thread::sleep(Duration::from_millis(20)),
            _ => return Err(failed("HEAD", &answer)),
        }
    }
    Err(Failure::Failed(
        "the upload stayed locked (423) for 5 s after the cut".into(),
    ))
}

/// The report: what was sent, what it cost, and whether the digest matches.
#[allow(clippy::too_many_arguments)]
fn report(
    opts: &SendOptions,
    name: &str,
    size: u64,
    local: &[u8; 20],
    client: &Client<'_>,
    took: Duration,
    stored: &Stored,
    matches: bool,
) -> String {
    let mut out = String::new();
    let how = match opts.mode {
        Mode::Whole => format!(
            "whole: one PUT /files/{}",
            wirepatterns::patterns::upload::tus::encode_name(name)
        ),
        Mode::Chunked => format!(
            "chunked: tus, parts of {}{}",
            Size(opts.chunk_size),
            if opts.checksum {
                " with checksums"
            } else {
                " without checksums"
            }
        ),
    };
    let _ = writeln!(
        out,
        "upload {name} ({}, sha1 {}) to {}, {how}",
        Size(size),
        sha1_hex(local),
        opts.addr
    );
    if let Some(cut) = client.cut.filter(|c| c.done) {
        let then = match opts.mode {
            Mode::Whole => "then started over",
            Mode::Chunked => "then resumed from HEAD's offset",
        };
        let _ = writeln!(
            out,
            "  cut the connection after {} of body, {then}",
            Size(cut.at)
        );
    }
    let _ = writeln!(out);
    let resent = client.sent.body.saturating_sub(size);
    let share = if size == 0 {
        0.0
    } else {
        resent as f64 * 100.0 / size as f64
    };
    let throughput = if took.is_zero() {
        0
    } else {
        (size as f64 / took.as_secs_f64()) as u64
    };
    let rows: [(&str, String, String); 7] = [
        ("requests", client.sent.requests.to_string(), String::new()),
        (
            "connections",
            client.sent.connections.to_string(),
            String::new(),
        ),
        (
            "body bytes sent",
            Size(client.sent.body).to_string(),
            String::new(),
        ),
        (
            "all bytes sent",
            Size(client.sent.bytes).to_string(),
            "heads included".into(),
        ),
        (
            "re-sent after cut",
            Size(resent).to_string(),
            format!("{share:.2}% of the file"),
        ),
        ("time", Dur(took).to_string(), String::new()),
        (
            "throughput",
            format!("{}/s", Size(throughput)),
            "the file's size over the time".into(),
        ),
    ];
    for (label, value, note) in rows {
        let line = format!("  {label:<18} {value:>10}  {note}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let verdict = if matches {
        "matches the local file".to_string()
    } else {
        format!(
            "DIFFERS: the local file is {size} bytes, sha1 {}",
            sha1_hex(local)
        )
    };
    let _ = writeln!(out, "  {:<18} {stored}", "the server says");
    let _ = writeln!(out, "  {:<18} {verdict}", "digest");
    // The same, as one line for scripts (scripts/upload.sh).
    let _ = writeln!(
        out,
        "RESULT mode={} chunk_size={} size={size} requests={} connections={} body_bytes={} \
         all_bytes={} resent_bytes={resent} time_s={:.3} throughput_bytes_per_s={throughput} \
         matches={matches}",
        match opts.mode {
            Mode::Whole => "whole",
            Mode::Chunked => "chunked",
        },
        match opts.mode {
            Mode::Whole => 0,
            Mode::Chunked => opts.chunk_size,
        },
        client.sent.requests,
        client.sent.connections,
        client.sent.body,
        client.sent.bytes,
        took.as_secs_f64()
    );
    out
}
