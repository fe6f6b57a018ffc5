//! upload: send a file to the upload service the two ways the notes describe, the
//! whole file in one request or in resumable parts (tus 1.0.0), and see what a cut
//! connection costs each.
//!
//! ```sh
//! cargo run --example upload -- serve --dir /tmp/uploads &
//! cargo run --example upload -- send photo.jpg --mode whole
//! cargo run --example upload -- send photo.jpg --mode chunked --chunk-size 1M
//! cargo run --example upload -- send photo.jpg --mode whole --cut-after 90%
//! cargo run --example upload -- send photo.jpg --mode chunked --cut-after 90%
//! ```
//!
//! # `send FILE --mode whole|chunked`
//!
//! - `--mode whole`: one `PUT /files/NAME` (NAME is FILE's name, percent-encoded)
//!   with the file as a `Content-Length` body. The server answers 201 (or 200 if it
//!   replaced a file of that name) with the line `stored NAME: SIZE bytes, sha1
//!   HEX`.
//! - `--mode chunked`: tus 1.0.0 on one kept-alive connection. `POST /uploads`
//!   with `Upload-Length` and `Upload-Metadata: filename <base64>` (201,
//!   `Location`), then one `PATCH` per part of `--chunk-size` bytes with
//!   `Upload-Offset` and `Upload-Checksum: sha1 <base64>` (204 with the new
//!   `Upload-Offset`), then `GET /uploads/ID/digest` for the same `stored` line.
//!
//! Either way the client computes the file's SHA-1 first, and at the end checks
//! the server's size and digest against it.
//!
//! `--cut-after SIZE` (bytes, `64K`, `1M`, or a share of the file such as `90%`)
//! drops the connection once that many bytes of body have been sent, once, and
//! then goes on the only way each mode can: whole starts over from byte 0 (the
//! server threw the half file away); chunked asks `HEAD` for the offset and
//! resumes there (the server kept every part it acknowledged; the part cut short
//! carried a checksum that could not be checked, so it was discarded). Any other
//! connection failure during a chunked upload is resumed the same way, at most 5
//! times in a row.
//!
//! `--no-checksum` sends the parts without `Upload-Checksum`. The server then
//! keeps whatever part of a cut part arrived (tus: store as much as possible), so
//! a cut costs nothing to send again, but a part damaged on the way would be
//! stored damaged: only the final digest would tell.
//!
//! Other flags: `--chunk-size SIZE` (default 1M, at most 256M: each part is held
//! in memory, to be hashed and sent again if it is refused), `--addr HOST:PORT` (default 127.0.0.1:8080),
//! `--timeout SECS` (the longest a connect, read or write may take, default 30),
//! `--help`.
//!
//! # What it prints
//!
//! A progress bar on stderr while it sends (only when stderr is a terminal), then
//! a report on stdout. For a 100,000-byte file in parts of 10,000 bytes, cut
//! after 34,000 bytes:
//!
//! ```text
//! upload c.bin (97.7 KiB, sha1 07d53c0dd2ccd14f0b0f8a8fb83dfdf612acaa2f) to 127.0.0.1:8080, chunked: tus, parts of 9.77 KiB with checksums
//!   cut the connection after 33.2 KiB of body, then resumed from HEAD's offset
//!
//!   requests                   14
//!   connections                 2
//!   body bytes sent       102 KiB
//!   all bytes sent        105 KiB  heads included
//!   re-sent after cut    3.91 KiB  4.00% of the file
//!   time                  42.1 ms
//!   throughput         2.26 MiB/s  the file's size over the time
//!   the server says    stored 27c349e8dae81d1ce69f10b0fd2ffcc1: 100000 bytes, sha1 07d53c0dd2ccd14f0b0f8a8fb83dfdf612acaa2f
//!   digest             matches the local file
//! RESULT mode=chunked chunk_size=10000 size=100000 requests=14 ...
//! ```
//!
//! (The last line says the same as `key=value` pairs, for scripts:
//! `scripts/upload.sh` reads it.)
//!
//! *requests* counts every request (POST, PATCHes, HEADs, the digest GET), a
//! request cut short included; *re-sent* is the body bytes sent beyond the file's
//! size, the cost of the cut: here the 4,000 bytes of the part that was cut, which
//! the server discarded since its checksum could not be checked. Whole mode sends
//! again everything sent before the cut.
//!
//! # `serve [--addr HOST:PORT] [--dir DIR] [--max-size BYTES] [--trace]`
//!
//! The service (`wirepatterns::patterns::upload::UploadApp`): `PUT /files/NAME`
//! and tus 1.0.0 under `/uploads`, on the event loop, each body taken in parts
//! straight to disk as it arrives. `--dir` (default `target/upload-store`, inside
//! the build directory, which git ignores) holds `uploads/`, `files/` and `tmp/`;
//! a restarted server finds its uploads again. `--max-size` (default 4G) is the
//! largest upload or whole file: larger ones get 413 before their body is read.
//! `--trace` prints a line per request (what it cost, as every example does) and
//! per part or file stored or cut. Ctrl-C stops it gracefully.
//!
//! # `chart CSV SVG`
//!
//! Draws the CSV `scripts/upload.sh` writes (throughput, requests and the
//! server's peak memory per way of sending) as an SVG of bar charts.
//!
//! Exit code 0 when the server's digest matches the file, 1 when the server could
//! not be reached, refused the upload, broke the protocol or stored something
//! else, 2 on a command line that cannot be followed (a FILE that cannot be read
//! included). Errors are one line on stderr.

mod chart;
mod send;
mod serve;
mod wire;

#[path = "../support/mod.rs"]
mod support;

#[cfg(test)]
mod tests;

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const SYNOPSIS: &str = "usage: upload send FILE --mode whole|chunked [--chunk-size SIZE] \
[--addr HOST:PORT] [--cut-after SIZE|PERCENT%] [--no-checksum] [--timeout SECS]
       upload serve [--addr HOST:PORT] [--dir DIR] [--max-size BYTES] [--trace]
       upload chart CSV SVG";

const HELP: &str =
    "send FILE to the upload service, whole (one PUT /files/NAME) or chunked (tus 1.0.0
parts, resumable), and check the server's digest against the file's.

  --mode whole|chunked   one request, or tus parts (required)
  --chunk-size SIZE      bytes per PATCH in chunked mode (default 1M; K, M, G: powers of 1024)
  --addr HOST:PORT       the server (default 127.0.0.1:8080)
  --cut-after SIZE|P%    drop the connection once this much body is sent, then resume
  --no-checksum          chunked: send parts without Upload-Checksum (a cut part is kept)
  --timeout SECS         the longest a connect, read or write may take (default 30)
  --help                 print this help";

/// The largest part: each is held in memory to be hashed before it is sent.
const MAX_CHUNK: u64 = 256 << 20;

/// How the file is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `PUT /files/NAME`.
    Whole,
    /// tus parts.
    Chunked,
}

/// Where `--cut-after` drops the connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CutAfter {
    /// After this many bytes of body.
    Bytes(u64),
    /// After this share of the file, in percent (0 to 100).
    Percent(f64),
}

impl CutAfter {
    /// The byte count for a file of `size` bytes.
    pub fn bytes(&self, size: u64) -> u64 {
        match *self {
            CutAfter::Bytes(n) => n,
            CutAfter::Percent(p) => (size as f64 * p / 100.0) as u64,
        }
    }
}

/// What `send` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOptions {
    /// The file.
    pub file: PathBuf,
    /// Whole or chunked.
    pub mode: Mode,
    /// Bytes per PATCH.
    pub chunk_size: u64,
    /// The server.
    pub addr: SocketAddr,
    /// `--addr` as given, for the `Host` field.
    pub host: String,
    /// Where to cut, if at all.
    pub cut_after: Option<CutAfter>,
    /// Send `Upload-Checksum` with each part (not with `--no-checksum`).
    pub checksum: bool,
    /// The longest any connect, read or write may take.
    pub timeout: Duration,
}

/// The command line, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `--help`.
    Help,
    /// `serve ...`, with the arguments after `serve` (read by [`serve::run`]).
    Serve(Vec<String>),
    /// `chart CSV SVG` (read by [`chart::run`]).
    Chart(Vec<String>),
    /// `send FILE ...`.
    Send(SendOptions),
}

/// Reads a size: digits, optionally followed by `K`, `M` or `G` (powers of 1024,
/// `KiB`/`MiB`/`GiB` too) or `B`.
pub fn parse_size(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = text.get(digits.len()..)?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

/// Reads the command line (without the program name). Errors are one line.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(sub) = args.next() else {
        return Err("expected a command: send, serve or chart".into());
    };
    match sub.as_str() {
        "-h" | "--help" => return Ok(Command::Help),
        // Its flags belong to the server, which reads them itself.
        "serve" => return Ok(Command::Serve(args.collect())),
        "chart" => return Ok(Command::Chart(args.collect())),
        "send" => {}
        other => {
            return Err(format!(
                "unknown command {other}: expected send, serve or chart"
            ));
        }
    }
    let mut file = None;
    let mut mode = None;
    let mut chunk_size = 1 << 20;
    let mut addr_text = "127.0.0.1:8080".to_string();
    let mut cut_after = None;
    let mut timeout = Duration::from_secs(30);
    let mut checksum = true;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |flag: &str| match inline.clone() {
            Some(v) => Ok(v),
            None => args.next().ok_or_else(|| format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--no-checksum" if inline.is_some() => {
                return Err("--no-checksum takes no value".into());
            }
            "--no-checksum" => checksum = false,
            "--mode" => {
                mode = Some(match value("--mode")?.as_str() {
                    "whole" => Mode::Whole,
                    "chunked" => Mode::Chunked,
                    other => return Err(format!("--mode {other}: expected whole or chunked")),
                })
            }
            "--chunk-size" => {
                let v = value("--chunk-size")?;
                chunk_size = match parse_size(&v) {
                    Some(n) if (1..=MAX_CHUNK).contains(&n) => n,
                    Some(_) => {
                        return Err(format!("--chunk-size {v}: must be from 1 byte to 256M"));
                    }
                    None => {
                        return Err(format!(
                            "--chunk-size {v}: expected a size such as 65536, 64K or 1M"
                        ));
                    }
                };
            }
            "--addr" => addr_text = value("--addr")?,
            "--cut-after" => {
                let v = value("--cut-after")?;
                cut_after = Some(match v.strip_suffix('%') {
                    Some(p) => match p.parse::<f64>() {
                        Ok(p) if (0.0..=100.0).contains(&p) => CutAfter::Percent(p),
                        _ => return Err(format!("--cut-after {v}: a share is from 0% to 100%")),
                    },
                    None => CutAfter::Bytes(parse_size(&v).ok_or_else(|| {
                        format!("--cut-after {v}: expected a size such as 1000, 64K, 1M or a share such as 90%")
                    })?),
                });
            }
            "--timeout" => {
                let v = value("--timeout")?;
                timeout = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        format!("--timeout {v}: expected a number of seconds above 0")
                    })?;
            }
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown flag {f}")),
            _ if file.is_none() => file = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg}: send takes one FILE")),
        }
    }
    let file = file.ok_or("send needs a FILE")?;
    let mode = mode.ok_or("send needs --mode whole or --mode chunked")?;
    let addr = addr_text
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--addr {addr_text}: expected HOST:PORT"))?;
    Ok(Command::Send(SendOptions {
        file,
        mode,
        chunk_size,
        addr,
        host: addr_text,
        cut_after,
        checksum,
        timeout,
    }))
}

fn main() -> ExitCode {
    let command = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n{SYNOPSIS}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{SYNOPSIS}\n\n{HELP}");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve::run(args),
        Command::Chart(args) => chart::run(args),
        Command::Send(opts) => match send::run(&opts) {
            Ok(outcome) => {
                print!("{}", outcome.text);
                if outcome.matches {
                    ExitCode::SUCCESS
                } else {
                    eprintln!("error: the server stored something other than the file");
                    ExitCode::FAILURE
                }
            }
            Err(send::Failure::Usage(e)) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Err(send::Failure::Failed(e)) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
