//! Strict HTTP/1.1 framing (RFC 9112), one rule per test, over real TCP.
//!
//! Each test starts a server on 127.0.0.1:0, sends the raw bytes of a request that
//! breaks one framing rule, followed by a valid request, and checks that the answer
//! is `400 Bad Request` with `Connection: close` and a body that is the rule's
//! [`HttpError`] text, and then that the connection is closed: the request after the
//! bad one is never answered. Once two parsers could disagree about where a message
//! ends, nothing after that point on the connection can be trusted (RFC 9112 §11.2).
//!
//! The rules are the ones whose leniencies the 2025 "funky chunks" research turned
//! into request smuggling (a chunk line ended by a bare LF, a line terminator inside a
//! chunk extension, chunk data longer than its size, tricks in the trailer section),
//! plus a bare LF in the head and parameters on `chunked`. httparse is no oracle for
//! these: it accepts several of them. Whitespace before a chunk extension's `;` (BWS,
//! §7.1.1) stays accepted, and so does a bare LF in the head when
//! `Limits::allow_bare_lf` says so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wirepatterns::http::{HttpError, Limits};
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::{Config, Running, Server};

/// How long a client waits for any one read before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Answered only if the server keeps reading after the bad request.
const AFTER: &[u8] = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n";

/// The head of a chunked request; the test appends the body.
const CHUNKED: &[u8] = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

fn start_with(limits: Limits) -> Running<RequestResponse> {
    let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.limits = limits;
    Server::bind(config, RequestResponse::new())
        .and_then(Server::spawn)
        .expect("server starts")
}

/// Sends `bytes` on a fresh connection, then reads until the server closes it.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset after the answer (the client's unread bytes) also ends it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => {
                return out;
            }
            Err(e) => panic!(
                "read failed ({e}), got so far {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// One response from the front of `bytes`: (status line, head, body), and the rest.
fn split_response(bytes: &[u8]) -> (String, String, Vec<u8>, Vec<u8>) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end + 4]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    let len: usize = head
        .lines()
        .skip(1)
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().expect("numeric Content-Length"))
        })
        .unwrap_or(0);
    let body_end = (end + 4 + len).min(bytes.len());
    let body = bytes[end + 4..body_end].to_vec();
    (status, head, body, bytes[body_end..].to_vec())
}

/// `bad` then a valid request: exactly one `400`, naming `rule`, with
/// `Connection: close`, and then the connection closed with nothing more.
fn assert_400(bad: &[u8], rule: HttpError) {
    assert_400_with(Limits::default(), bad, rule);
}

fn assert_400_with(limits: Limits, bad: &[u8], rule: HttpError) {
    assert_eq!(rule.status(), 400);
    let server = start_with(limits);
    let mut bytes = bad.to_vec();
    bytes.extend_from_slice(AFTER);
    let got = exchange(server.addr, &bytes);
    let (status, head, body, rest) = split_response(&got);
    let shown = String::from_utf8_lossy(bad);
    assert_eq!(status, "HTTP/1.1 400 Bad Request", "for {shown:?}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "{head}"
    );
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("{rule}\n"),
        "for {shown:?}"
    );
    assert!(
        rest.is_empty(),
        "the connection must close after the 400, got {:?}",
        String::from_utf8_lossy(&rest)
    );
    server.stop().expect("server stops");
}

/// `good` then a valid request: both answered 200, the first echoing `body`.
fn assert_echoed(limits: Limits, good: &[u8], body: &[u8]) {
    let server = start_with(limits);
    let mut bytes = good.to_vec();
    bytes.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let got = exchange(server.addr, &bytes);
    let (status, _, first, rest) = split_response(&got);
    assert_eq!(
        status,
        "HTTP/1.1 200 OK",
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    if !body.is_empty() {
        assert_eq!(first, body);
    }
    let (status, _, _, rest) = split_response(&rest);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(rest.is_empty());
    server.stop().expect("server stops");
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut bytes = CHUNKED.to_vec();
    bytes.extend_from_slice(body);
    bytes
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1: chunked framing lines end in CRLF only.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_bare_lf_ending_a_chunk_size_line_is_400() {
    assert_400(
        &chunked(b"5\nhello\r\n0\r\n\r\n"),
        HttpError::BareLfInChunkedBody,
    );
}

#[test]
fn rfc9112_7_1_bare_lf_after_chunk_data_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\n0\r\n\r\n"),
        HttpError::BareLfInChunkedBody,
    );
}

#[test]
fn rfc9112_7_1_bare_lf_ending_the_last_chunk_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\r\n0\n\r\n"),
        HttpError::BareLfInChunkedBody,
    );
}

#[test]
fn rfc9112_7_1_bare_lf_ending_the_chunked_body_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\r\n0\r\n\n"),
        HttpError::BareLfInChunkedBody,
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1.1: only a ';' extension may follow a chunk size.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_1_whitespace_after_chunk_size_without_semicolon_is_400() {
    assert_400(
        &chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
        HttpError::WhitespaceAfterChunkSize,
    );
}

#[test]
fn rfc9112_7_1_1_tab_after_last_chunk_size_without_semicolon_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\r\n0\t\r\n\r\n"),
        HttpError::WhitespaceAfterChunkSize,
    );
}

#[test]
fn rfc9112_7_1_1_whitespace_before_semicolon_is_accepted() {
    assert_echoed(
        Limits::default(),
        &chunked(b"5 ;a=b\r\nhello\r\n6\t;q=\"x;y\"\r\n world\r\n0 ; z\r\n\r\n"),
        b"hello world",
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1.1: no CR or LF inside a chunk extension, quoted or not.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_1_crlf_inside_a_quoted_chunk_extension_is_400() {
    // A parser that skips extensions up to the first CRLF reads "y\"" as chunk data.
    assert_400(
        &chunked(b"5;a=\"x\r\ny\"\r\nhello\r\n0\r\n\r\n"),
        HttpError::LineBreakInChunkExtension,
    );
}

#[test]
fn rfc9112_7_1_1_lf_inside_a_quoted_chunk_extension_is_400() {
    assert_400(
        &chunked(b"5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n"),
        HttpError::LineBreakInChunkExtension,
    );
}

#[test]
fn rfc9112_7_1_1_lf_inside_an_unquoted_chunk_extension_is_400() {
    // The "terminator inside an extension" class: to a parser that ends lines at LF,
    // "hello" starts here; to one that ends them at CRLF, it is still the extension.
    assert_400(
        &chunked(b"5;a\nhello\r\nhello\r\n0\r\n\r\n"),
        HttpError::LineBreakInChunkExtension,
    );
}

#[test]
fn rfc9112_7_1_1_cr_inside_an_unquoted_chunk_extension_is_400() {
    assert_400(
        &chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
        HttpError::LineBreakInChunkExtension,
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1: chunk sizes and chunk data.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_chunk_size_of_more_than_16_hex_digits_is_400() {
    // Leading zeros too: the count is checked before any arithmetic.
    assert_400(
        &chunked(b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
        HttpError::ChunkSizeTooLong,
    );
}

#[test]
fn rfc9112_7_1_chunk_data_longer_than_its_size_is_400() {
    // Oversized chunk data spilling into what must be the CRLF after it.
    assert_400(
        &chunked(b"3\r\nhello\r\n0\r\n\r\n"),
        HttpError::MissingChunkCrlf,
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1.2: the trailer section is field lines, each ended by CRLF.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_2_bare_lf_in_the_trailer_section_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\r\n0\r\nX-Trailer: a\nGET /smuggled HTTP/1.1\r\n\r\n"),
        HttpError::BareLfInChunkedBody,
    );
}

#[test]
fn rfc9112_7_1_2_obs_fold_in_the_trailer_section_is_400() {
    assert_400(
        &chunked(b"5\r\nhello\r\n0\r\nX-Trailer: a\r\n b\r\n\r\n"),
        HttpError::ObsoleteFold,
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §7.1: chunked takes no parameters.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_7_1_chunked_with_parameters_is_400() {
    assert_400(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;foo=bar\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        HttpError::ChunkedWithParameters,
    );
}

// ---------------------------------------------------------------------------------
// RFC 9112 §2.2: a bare LF in the head is refused unless allowed.
// ---------------------------------------------------------------------------------

#[test]
fn rfc9112_2_2_bare_lf_ending_the_request_line_is_400() {
    assert_400(b"GET / HTTP/1.1\nHost: x\r\n\r\n", HttpError::BareLf);
}

#[test]
fn rfc9112_2_2_bare_lf_ending_a_field_line_is_400() {
    assert_400(
        b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
        HttpError::BareLf,
    );
}

#[test]
fn rfc9112_2_2_bare_lf_ending_the_head_is_400() {
    assert_400(b"GET / HTTP/1.1\r\nHost: x\r\n\n", HttpError::BareLf);
}

#[test]
fn rfc9112_2_2_bare_lf_in_the_head_is_accepted_when_allowed() {
    let limits = Limits {
        allow_bare_lf: true,
        ..Limits::default()
    };
    assert_echoed(limits, b"GET / HTTP/1.1\nHost: x\nX-A: b\n\n", b"");
    // The body's lines stay CRLF-only whatever the switch says.
    assert_400_with(
        limits,
        &chunked(b"5\nhello\r\n0\r\n\r\n"),
        HttpError::BareLfInChunkedBody,
    );
}

// ---------------------------------------------------------------------------------
// The fuzz seeds for these rules (fuzz/seeds/): each `reject_*` file is rejected and
// each `accept_*` file accepted, so the seeds keep exercising what their names say.
// ---------------------------------------------------------------------------------

/// The seed files of one fuzz target: (name, input without the leading seed byte).
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("seed file");
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, bytes.get(1..).unwrap_or_default().to_vec())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn fuzz_seeds_for_the_chunked_decoder_are_judged_as_named() {
    use wirepatterns::http::{BodyDecoder, Framing};
    for (name, input) in seeds("chunked_decoder") {
        let mut decoder =
            BodyDecoder::new(Framing::Chunked, &Limits::default()).expect("chunked decoder");
        let mut at = 0;
        let result = loop {
            match decoder.decode(&input[at..]) {
                Ok(step) if step.done => break Ok(at + step.consumed),
                Ok(step) if step.consumed == 0 => break Ok(at),
                Ok(step) => at += step.consumed,
                Err(e) => break Err(e),
            }
        };
        if name.starts_with("reject_") {
            assert!(result.is_err(), "{name} accepted");
        } else {
            assert!(name.starts_with("accept_"), "{name}: accept_ or reject_");
            assert_eq!(result, Ok(input.len()), "{name}");
            assert!(decoder.is_done(), "{name}");
        }
    }
}

#[test]
fn fuzz_seeds_for_the_request_parser_are_judged_as_named() {
    use wirepatterns::http::{RequestParser, Status};
    for (name, input) in seeds("parse_request") {
        let result = RequestParser::default()
            .parse(&input)
            .map(|s| matches!(s, Status::Complete(_)));
        if name.starts_with("reject_") {
            assert!(result.is_err(), "{name} accepted");
        } else {
            assert!(name.starts_with("accept_"), "{name}: accept_ or reject_");
            assert_eq!(result, Ok(true), "{name}");
        }
    }
}
