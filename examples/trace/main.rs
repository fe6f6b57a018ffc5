//! trace: one HTTP/1.1 request (or one WebSocket conversation) over a plain
//! blocking TCP socket, with every byte sent and received dumped as
//! `curl --trace` dumps it, then the exchange's timeline: each phase with its
//! time, bytes and `read()`/`write()` system calls.
//!
//! ```sh
//! cargo run --example request_response &
//! cargo run --example trace -- 'http://127.0.0.1:8080/hello?x=1'
//! cargo run --example trace -- http://127.0.0.1:8080/ -d 'echo me'
//! cargo run --example trace -- http://127.0.0.1:8080/ -X HEAD -H 'Accept: text/plain'
//! cargo run --example ws_echo &
//! echo hello | cargo run --example trace -- http://127.0.0.1:9001/ --ws
//! ```
//!
//! Flags: `URL` (`http://HOST[:PORT][/PATH][?QUERY]`, port 80 by default, an IPv6
//! address in brackets; `ws://` is the same with `--ws`), `-X METHOD` (default GET,
//! or POST with `-d`, as curl does), `-d DATA` (the body, sent with
//! `Content-Length`; with `--ws`, the one message to send instead of stdin's
//! lines), `-H 'Name: value'` (an extra header field; repeat it; a `Host` given here
//! replaces the one from the URL), `--ws` (a WebSocket: each line of stdin is sent as
//! a text frame, each frame received is shown decoded, then a clean close),
//! `-0`/`--http1.0` (send an HTTP/1.0 request: a server answers a stream of unknown
//! length by closing the connection at its end, the close-delimited framing),
//! `--timeout SECS` (the longest any connect, read or write may take, default 30),
//! `--help`.
//!
//! The response is read by its framing alone (RFC 9112 §6.3, the library's
//! `http::response_parser`), so no `Connection: close` is sent: the body ends at its
//! Content-Length, at its last chunk, with the head (HEAD, 1xx, 204, 304), or, for
//! a close-delimited body, when the server closes. A server that closes before
//! then gave a truncated response, and the client says so.
//!
//! # What it prints
//!
//! `trace http://127.0.0.1:8080/ -d 'echo me'` against `request_response`, which
//! echoes a body:
//!
//! ```text
//! == Info: Trying 127.0.0.1:8080...
//! == Info: Connected to 127.0.0.1 (127.0.0.1) port 8080
//! => Send header, 60 bytes (0x3c)
//! 0000: 50 4f 53 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d POST / HTTP/1.1.
//! 0010: 0a 48 6f 73 74 3a 20 31 32 37 2e 30 2e 30 2e 31 .Host: 127.0.0.1
//! 0020: 3a 38 30 38 30 0d 0a 43 6f 6e 74 65 6e 74 2d 4c :8080..Content-L
//! 0030: 65 6e 67 74 68 3a 20 37 0d 0a 0d 0a             ength: 7....
//! => Send data, 7 bytes (0x7)
//! 0000: 65 63 68 6f 20 6d 65                            echo me
//! <= Recv header, 115 bytes (0x73)
//! 0000: 48 54 54 50 2f 31 2e 31 20 32 30 30 20 4f 4b 0d HTTP/1.1 200 OK.
//! 0010: 0a 44 61 74 65 3a 20 4d 6f 6e 2c 20 33 30 20 4e .Date: Mon, 30 N
//! 0020: 6f 76 20 32 30 32 36 20 30 38 3a 32 34 3a 31 35 ov 2026 08:24:15
//! 0030: 20 47 4d 54 0d 0a 43 6f 6e 74 65 6e 74 2d 54 79  GMT..Content-Ty
//! 0040: 70 65 3a 20 61 70 70 6c 69 63 61 74 69 6f 6e 2f pe: application/
//! 0050: 6f 63 74 65 74 2d 73 74 72 65 61 6d 0d 0a 43 6f octet-stream..Co
//! 0060: 6e 74 65 6e 74 2d 4c 65 6e 67 74 68 3a 20 37 0d ntent-Length: 7.
//! 0070: 0a 0d 0a                                        ...
//! <= Recv data, 7 bytes (0x7)
//! 0000: 65 63 68 6f 20 6d 65                            echo me
//! == Info: status 200, body 7 B (Content-Length 7)
//! == Timeline: each phase since the one before
//!    phase                 at     took        sent    received  writes   reads
//!    DNS lookup       3.25 µs  3.25 µs         0 B         0 B       0       0
//!    TCP connect       144 µs   140 µs         0 B         0 B       0       0
//!    request written   201 µs  57.7 µs        67 B         0 B       1       0
//!    first byte        580 µs   378 µs         0 B       122 B       0       1
//!    head parsed       610 µs  30.2 µs         0 B         0 B       0       0
//!    body complete     614 µs  3.76 µs         0 B         0 B       0       0
//!    total                      614 µs        67 B       122 B       1       1
//! ```
//!
//! and the frames of `echo hello | trace http://127.0.0.1:9001/ --ws` against
//! `ws_echo`, after the handshake:
//!
//! ```text
//! == Info: send frame: text (0x1), 5 B, masked with key 5c9b5ff1: "hello"
//! => Send data, 11 bytes (0xb)
//! 0000: 81 85 5c 9b 5f f1 34 fe 33 9d 33                ..\._.4.3.3
//! <= Recv data, 7 bytes (0x7)
//! 0000: 81 05 68 65 6c 6c 6f                            ..hello
//! == Info: recv frame: text (0x1), 5 B: "hello"
//! == Info: send frame: close (0x8), code 1000
//! ```
//!
//! - `=>` lines are what was sent, `<=` what was received, one block per `write()`
//!   or `read()` (a read that holds the end of the head and the start of the body
//!   is shown as two blocks); `== Info:` lines say what the client made of it.
//! - The timeline's rows are phases, each measured from the end of the one before:
//!   how long it took, the bytes sent and received in it, and the `write()` and
//!   `read()` calls (counted by wrapping the socket, so each one is a system call).
//!   The DNS lookup and TCP connect rows have no calls of that kind: they are
//!   `getaddrinfo` and `connect`.
//! - With `--ws`, each frame is also shown decoded: its opcode, length and text.
//!   Masking keys and the handshake nonce come from a small non-cryptographic
//!   generator seeded from the time and the process id; RFC 6455 §10.3 asks a
//!   browser for strong randomness, which a trace does not need. The library's
//!   client role (`ws::client`) takes its keys from the caller.
//!
//! Exit code 0 when the response (or the conversation) was complete, 1 when the host
//! could not be resolved or reached or the server broke the protocol, 2 on a
//! command line that cannot be followed (a bad URL included). Errors are one line
//! on stderr.

#[path = "../support/mod.rs"]
mod support;

mod exchange;
mod url;
mod wire;

#[cfg(test)]
mod tests;

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use exchange::{Failure, Request};
use url::Url;

const USAGE: &str =
    "usage: trace URL [-X METHOD] [-d DATA] [-H 'Name: value']... [--ws] [--timeout SECS]";

/// The command line, understood.
#[derive(Debug)]
enum Command {
    /// `--help`.
    Help,
    /// An exchange to make.
    Run { request: Request, ws: bool },
}

/// Reads the command line (without the program name). Errors are one line.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut url = None;
    let mut method = None;
    let mut data = None;
    let mut headers = Vec::new();
    let mut ws = false;
    let mut http10 = false;
    let mut timeout = Duration::from_secs(30);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-X" | "--request" => method = Some(value(&arg)?),
            "-d" | "--data" => data = Some(value(&arg)?.into_bytes()),
            "-H" | "--header" => {
                let line = value(&arg)?;
                let Some((name, field)) = line.split_once(':') else {
                    return Err(format!("-H {line:?} must be 'Name: value'"));
                };
                headers.push((name.to_string(), field.trim().to_string()));
            }
            "--ws" => ws = true,
            "-0" | "--http1.0" => http10 = true,
            "--timeout" => {
                let secs = value(&arg)?;
                timeout = match secs.parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                    _ => {
                        return Err(format!(
                            "--timeout {secs:?} must be seconds, more than 0 and at most 3600"
                        ));
                    }
                };
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            _ if url.is_some() => return Err(format!("one URL only; {arg:?} is a second one")),
            _ => url = Some(Url::parse(&arg)?),
        }
    }
    let url = url.ok_or("no URL")?;
    let ws = ws || url.websocket;
    if ws && http10 {
        return Err("--ws needs HTTP/1.1 (RFC 6455 section 4.1), not --http1.0".to_string());
    }
    let method =
        method.unwrap_or_else(|| if data.is_some() && !ws { "POST" } else { "GET" }.to_string());
    Ok(Command::Run {
        request: Request {
            method,
            url,
            headers,
            data,
            timeout,
            http10,
        },
        ws,
    })
}

/// Makes the exchange, tracing it to `out`; `stdin_lines` are the WebSocket
/// messages when `-d` gave none.
fn run(
    request: &Request,
    ws: bool,
    stdin_lines: &mut dyn Iterator<Item = String>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if ws {
        let mut one = request
            .data
            .as_ref()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .into_iter();
        let messages: &mut dyn Iterator<Item = String> = if request.data.is_some() {
            &mut one
        } else {
            stdin_lines
        };
        exchange::websocket(request, messages, out).map(|_| ())
    } else {
        exchange::http(request, out).map(|_| ())
    }
}

fn main() -> ExitCode {
    let (request, ws) = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run { request, ws }) => (request, ws),
        Err(e) => {
            eprintln!("trace: {e} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines().map_while(Result::ok);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(&request, ws, &mut lines, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = out.flush();
            eprintln!("trace: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
