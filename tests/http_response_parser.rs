//! The response parser and reader (`wirepatterns::http::response_parser`): every
//! framing of RFC 9112 §6.3, the same response split at every byte, bad input
//! refused with the error that names its rule, and a differential test against
//! httparse's `Response` on handwritten and generated heads.

use proptest::prelude::*;
use wirepatterns::http::response_parser::{
    ResponseEvent, ResponseFraming, ResponseParser, ResponseReader,
};
use wirepatterns::http::{HttpError, Limits, Status, Version};

/// Everything a reader made of one response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Outcome {
    /// Status codes of the interim heads, in order.
    interim: Vec<u16>,
    status: u16,
    reason: Vec<u8>,
    version: Option<Version>,
    headers: Vec<(String, Vec<u8>)>,
    framing: Option<ResponseFraming>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    /// `Complete` was returned.
    complete: bool,
    /// Bytes after the response, not consumed.
    rest: Vec<u8>,
}

/// Feeds `input` to a reader for `method` in pieces that end at `cuts` (and at the
/// end), reading everything each piece allows; then, if `eof`, tells the reader the
/// server closed. Every loop is bounded by the input's length.
fn read_with(input: &[u8], method: &str, cuts: &[usize], eof: bool) -> Result<Outcome, HttpError> {
    let mut reader = ResponseReader::new(method);
    let mut out = Outcome::default();
    let mut pos = 0;
    let mut ends: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
    ends.push(input.len());
    'feed: for &fed in &ends {
        let buf = &input[..fed];
        // Each event consumes bytes or ends the loop; Complete and need-more end it.
        for _ in 0..=input.len() + 2 {
            let step = reader.read(&buf[pos..])?;
            pos += step.consumed;
            match step.event {
                None => break,
                Some(ResponseEvent::Interim(head)) => out.interim.push(head.status()),
                Some(ResponseEvent::Head(head)) => {
                    out.status = head.status();
                    out.reason = head.reason().to_vec();
                    out.version = Some(head.version());
                    out.framing = Some(head.framing());
                    out.headers = head
                        .headers()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect();
                }
                Some(ResponseEvent::Body(data)) => out.body.extend_from_slice(data),
                Some(ResponseEvent::Complete) => {
                    out.complete = true;
                    break 'feed;
                }
            }
        }
    }
    if !out.complete && eof {
        reader.eof()?;
        for _ in 0..3 {
            let step = reader.read(&input[pos..])?;
            pos += step.consumed;
            match step.event {
                Some(ResponseEvent::Complete) => {
                    out.complete = true;
                    break;
                }
                Some(ResponseEvent::Body(data)) => out.body.extend_from_slice(data),
                _ => {}
            }
        }
    }
    out.trailers = reader.trailers().to_vec();
    out.rest = input[pos..].to_vec();
    Ok(out)
}

/// Read in one piece, then the server closes.
fn read(input: &[u8], method: &str) -> Result<Outcome, HttpError> {
    read_with(input, method, &[], true)
}

/// The same response split at every byte boundary into two pieces, and fed one byte
/// at a time, must give the same outcome (or error) as fed whole.
fn assert_split_invariant(input: &[u8], method: &str) {
    let whole = read(input, method);
    for cut in 1..input.len() {
        assert_eq!(
            read_with(input, method, &[cut], true),
            whole,
            "cut at {cut}"
        );
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        read_with(input, method, &every, true),
        whole,
        "byte at a time"
    );
}

fn header<'a>(out: &'a Outcome, name: &str) -> Option<&'a [u8]> {
    out.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

#[test]
fn rfc9112_6_3_content_length_body_leaves_the_next_response_unread() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n";
    let out = read_with(input, "GET", &[], false).unwrap();
    assert_eq!(out.status, 200);
    assert_eq!(out.reason, b"OK");
    assert_eq!(out.version, Some(Version::Http11));
    assert_eq!(out.framing, Some(ResponseFraming::Length(5)));
    assert_eq!(out.body, b"hello");
    assert!(out.complete);
    assert_eq!(out.rest, b"HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!(header(&out, "content-type"), Some(&b"text/plain"[..]));
    assert_split_invariant(input, "GET");
}

#[test]
fn rfc9112_6_3_content_length_zero_is_complete_at_the_head() {
    let out = read_with(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "GET",
        &[],
        false,
    )
    .unwrap();
    assert!(out.complete);
    assert!(out.body.is_empty());
}

#[test]
fn rfc9112_7_1_chunked_body_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n\r\n\
4;name=value\r\nWiki\r\n5 ; quoted=\"a;b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Sum: 42\r\n\r\nNEXT";
    let out = read_with(input, "GET", &[], false).unwrap();
    assert_eq!(out.framing, Some(ResponseFraming::Chunked));
    assert_eq!(out.body, b"Wikipedia in\r\n\r\nchunks.");
    assert!(out.complete);
    assert_eq!(out.rest, b"NEXT");
    assert_eq!(
        out.trailers,
        vec![
            ("Expires".to_string(), b"never".to_vec()),
            ("X-Sum".to_string(), b"42".to_vec())
        ]
    );
    assert_split_invariant(input, "GET");
}

#[test]
fn rfc9112_6_3_rule_8_close_delimited_body_ends_only_when_the_server_closes() {
    let input = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the close";
    let open = read_with(input, "GET", &[], false).unwrap();
    assert_eq!(open.framing, Some(ResponseFraming::UntilClose));
    assert_eq!(open.version, Some(Version::Http10));
    assert_eq!(open.body, b"all of this, until the close");
    assert!(!open.complete, "not complete while the connection is open");
    let closed = read(input, "GET").unwrap();
    assert!(closed.complete);
    assert_eq!(closed.body, open.body);
    assert_split_invariant(input, "GET");
}

#[test]
fn rfc9112_6_3_rule_3_transfer_coding_not_ending_in_chunked_reads_until_close() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b...";
    let out = read(input, "GET").unwrap();
    assert_eq!(out.framing, Some(ResponseFraming::UntilClose));
    assert_eq!(out.body, b"\x1f\x8b...");
    assert!(out.complete);
    // Chunked last after another coding: chunked framing (the rest is content).
    let out = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
        "GET",
    )
    .unwrap();
    assert_eq!(out.framing, Some(ResponseFraming::Chunked));
    assert_eq!(out.body, b"ab");
}

#[test]
fn rfc9110_15_2_interim_responses_then_the_final_one() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let out = read_with(input, "POST", &[], false).unwrap();
    assert_eq!(out.interim, vec![100, 103]);
    assert_eq!(out.status, 201);
    assert_eq!(out.body, b"ok");
    assert!(out.complete);
    assert!(out.rest.is_empty());
    assert_split_invariant(input, "POST");
}

#[test]
fn rfc9112_6_3_rule_1_response_to_head_has_no_body() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\n";
    let out = read_with(input, "HEAD", &[], false).unwrap();
    assert_eq!(out.framing, Some(ResponseFraming::NoBody));
    assert!(out.complete);
    assert!(out.body.is_empty());
    assert_eq!(out.rest, b"HTTP/1.1 200 OK\r\n");
    // The same bytes answering a GET: a 1234-byte body, cut short.
    assert_eq!(read(input, "GET"), Err(HttpError::TruncatedResponse));
    assert_split_invariant(input, "HEAD");
}

#[test]
fn rfc9112_6_3_rule_1_204_and_304_have_no_body() {
    for input in [
        &b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nrest"[..],
        &b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\nrest"[..],
        &b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\nrest"[..],
    ] {
        let out = read_with(input, "GET", &[], false).unwrap();
        assert_eq!(out.framing, Some(ResponseFraming::NoBody));
        assert!(out.complete);
        assert!(out.body.is_empty());
        assert_eq!(out.rest, b"rest");
        assert_split_invariant(input, "GET");
    }
}

#[test]
fn rfc9110_15_2_2_101_switches_protocols_after_the_head() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi";
    let out = read_with(input, "GET", &[], false).unwrap();
    assert!(out.interim.is_empty(), "101 is final for HTTP");
    assert_eq!(out.status, 101);
    assert_eq!(out.framing, Some(ResponseFraming::Switched));
    assert!(out.complete);
    assert_eq!(
        out.rest, b"\x81\x02hi",
        "the frames are left for the new protocol"
    );
    assert_split_invariant(input, "GET");
}

#[test]
fn rfc9112_6_3_rule_2_connect_2xx_is_a_tunnel() {
    let input = b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01";
    let out = read_with(input, "CONNECT", &[], false).unwrap();
    assert_eq!(out.framing, Some(ResponseFraming::Switched));
    assert_eq!(out.rest, b"\x16\x03\x01");
    // A refused CONNECT has an ordinary body.
    let out = read(
        b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 1\r\n\r\nx",
        "CONNECT",
    )
    .unwrap();
    assert_eq!(out.body, b"x");
}

#[test]
fn rfc9112_8_truncated_responses_are_errors_not_complete() {
    for (input, method) in [
        (
            &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
            "GET",
        ),
        (
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"[..],
            "GET",
        ),
        (
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"[..],
            "GET",
        ),
        (&b"HTTP/1.1 200 OK\r\nContent-Le"[..], "GET"),
        (&b""[..], "GET"),
        (&b"HTTP/1.1 100 Continue\r\n\r\n"[..], "GET"),
    ] {
        assert_eq!(
            read(input, method),
            Err(HttpError::TruncatedResponse),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // Without the close, it is just not complete yet.
        let open = read_with(input, method, &[], false).unwrap();
        assert!(!open.complete);
    }
    assert_eq!(HttpError::TruncatedResponse.status(), 502);
}

#[test]
fn bad_status_lines_are_refused_by_name() {
    let cases: &[(&[u8], HttpError)] = &[
        (b"HTTP/1.1 OK\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1 20 OK\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1 2000 OK\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1 099 Low\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1 600 High\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1  200 OK\r\n\r\n", HttpError::InvalidStatusCode),
        (b"HTTP/1.1\r\n\r\n", HttpError::InvalidStatusLine),
        (b"HTTP/1.1\t200 OK\r\n\r\n", HttpError::InvalidStatusLine),
        (b"HTTP/1.1 200 O\x01K\r\n\r\n", HttpError::InvalidStatusLine),
        (b"HTTP/1.1 200 OK\rX: y\r\n\r\n", HttpError::BareCr),
        (b"HTTP/1.1 200 OK\nX: y\r\n\r\n", HttpError::BareLf),
        (b"ICY 200 OK\r\n\r\n", HttpError::InvalidVersion),
        (b"HTTP/1 200 OK\r\n\r\n", HttpError::InvalidVersion),
        (b"http/1.1 200 OK\r\n\r\n", HttpError::InvalidVersion),
        (b"HTTP/2.0 200 OK\r\n\r\n", HttpError::VersionNotSupported),
        (b"\r\nHTTP/1.1 200 OK\r\n\r\n", HttpError::InvalidVersion),
    ];
    for (input, expected) in cases {
        let shown = String::from_utf8_lossy(input);
        assert_eq!(read(input, "GET").map(|_| ()), Err(*expected), "{shown:?}");
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            read_with(input, "GET", &every, true).map(|_| ()),
            Err(*expected),
            "{shown:?} byte at a time"
        );
    }
    assert_eq!(HttpError::InvalidStatusLine.status(), 502);
}

#[test]
fn another_protocol_is_refused_from_its_first_bytes() {
    let mut parser = ResponseParser::new("GET");
    assert!(parser.parse(b"HTT").unwrap().is_partial());
    assert_eq!(
        parser.parse(b"SSH-2.0").map(|_| ()),
        Err(HttpError::InvalidVersion)
    );
    let mut parser = ResponseParser::new("GET");
    assert_eq!(
        parser.parse(b"\x16\x03\x01").map(|_| ()),
        Err(HttpError::InvalidVersion)
    );
}

#[test]
fn bad_fields_are_refused_by_name() {
    let cases: &[(&[u8], HttpError)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
            HttpError::InvalidContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            HttpError::ConflictingContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n",
            HttpError::ConflictingContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            HttpError::ContentLengthWithTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            HttpError::ChunkedNotLast,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
            HttpError::ChunkedWithParameters,
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            HttpError::WhitespaceBeforeColon,
        ),
        (
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            HttpError::MissingColon,
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            HttpError::ObsoleteFold,
        ),
        (
            b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n",
            HttpError::WhitespaceAfterStartLine,
        ),
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", HttpError::NulByte),
        (
            b"HTTP/1.1 200 OK\r\nX: a\x7fb\r\n\r\n",
            HttpError::InvalidHeaderValue,
        ),
        (
            b"HTTP/1.1 200 OK\r\n{X}: a\r\n\r\n",
            HttpError::InvalidHeaderName,
        ),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n\n", HttpError::BareLf),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            HttpError::BareLfInChunkedBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            HttpError::InvalidChunkSize,
        ),
    ];
    for (input, expected) in cases {
        let shown = String::from_utf8_lossy(input);
        assert_eq!(read(input, "GET").map(|_| ()), Err(*expected), "{shown:?}");
        let every: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            read_with(input, "GET", &every, true).map(|_| ()),
            Err(*expected),
            "{shown:?} byte at a time"
        );
    }
    // Identical repeated values are one (RFC 9112 §6.3 rule 5).
    let out = read(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab",
        "GET",
    )
    .unwrap();
    assert_eq!(out.body, b"ab");
}

#[test]
fn oversized_heads_are_refused_before_they_end() {
    let limits = Limits {
        max_head_bytes: 256,
        max_headers: 4,
        ..Limits::default()
    };
    // A head that never ends: refused once it passes the limit, not at the close.
    let mut parser = ResponseParser::with_limits("GET", limits);
    let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    long.resize(256, b'a');
    assert!(parser.parse(&long).unwrap().is_partial());
    long.push(b'a');
    assert_eq!(
        parser.parse(&long).map(|_| ()),
        Err(HttpError::HeadTooLarge)
    );
    // Too many fields.
    let mut parser = ResponseParser::with_limits("GET", limits);
    let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    assert_eq!(parser.parse(many).map(|_| ()), Err(HttpError::HeadTooLarge));
    // The default limit, through the reader.
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        huge.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(20)).as_bytes());
    }
    huge.extend_from_slice(b"\r\n");
    assert_eq!(read(&huge, "GET").map(|_| ()), Err(HttpError::HeadTooLarge));
}

#[test]
fn too_large_bodies_are_refused() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let mut reader = ResponseReader::with_limits("GET", limits);
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(reader.read(input).map(|_| ()), Err(HttpError::BodyTooLarge));
    let mut reader = ResponseReader::with_limits("GET", limits);
    let input = b"HTTP/1.1 200 OK\r\n\r\n";
    let step = reader.read(input).unwrap();
    assert_eq!(step.consumed, input.len());
    assert!(reader.read(b"0123456789").is_ok());
    assert_eq!(reader.read(b"!").map(|_| ()), Err(HttpError::BodyTooLarge));
}

#[test]
fn a_head_fed_one_byte_at_a_time_is_searched_in_linear_time() {
    let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..90 {
        input.extend_from_slice(format!("X-{i}: value\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\n");
    let mut parser = ResponseParser::new("GET");
    for end in 1..input.len() {
        assert!(
            parser.parse(&input[..end]).unwrap().is_partial(),
            "at {end}"
        );
    }
    assert!(parser.parse(&input).unwrap().is_complete());
    let n = input.len() as u64;
    assert!(
        parser.bytes_searched() < 3 * n,
        "{} bytes searched for a head of {n}",
        parser.bytes_searched()
    );
}

#[test]
fn status_without_reason_and_obs_text_in_reason() {
    let out = read(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET").unwrap();
    assert_eq!((out.status, out.reason.as_slice()), (200, &b""[..]));
    let out = read(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "GET").unwrap();
    assert_eq!(out.reason, b"");
    let out = read(
        b"HTTP/1.1 404 Nicht gefunden \xfc\r\nContent-Length: 0\r\n\r\n",
        "GET",
    )
    .unwrap();
    assert_eq!(out.reason, b"Nicht gefunden \xfc");
    let out = read(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", "GET").unwrap();
    assert_eq!(out.version, Some(Version::Http11));
}

#[test]
fn bare_lf_heads_are_accepted_when_allowed() {
    let limits = Limits {
        allow_bare_lf: true,
        ..Limits::default()
    };
    let mut parser = ResponseParser::with_limits("GET", limits);
    let input = b"HTTP/1.1 200 OK\nX: y\n\nbody";
    let Status::Complete(head) = parser.parse(input).unwrap() else {
        panic!("complete")
    };
    assert_eq!(head.header("x"), Some(&b"y"[..]));
    assert_eq!(&input[head.head_len()..], b"body");
}

// The differential test: status code, reason and header fields agree with httparse.

/// What httparse makes of a head: (head length, code, reason, fields).
type Parsed = (usize, u16, Vec<u8>, Vec<(String, Vec<u8>)>);

fn httparse_head(input: &[u8]) -> Option<Parsed> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(input) {
        Ok(httparse::Status::Complete(len)) => Some((
            len,
            response.code?,
            response.reason?.as_bytes().to_vec(),
            response
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
        )),
        _ => None,
    }
}

fn our_head(input: &[u8]) -> Option<Parsed> {
    let mut parser = ResponseParser::new("GET");
    match parser.parse(input) {
        Ok(Status::Complete(head)) => Some((
            head.head_len(),
            head.status(),
            head.reason().to_vec(),
            head.headers()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
        )),
        _ => None,
    }
}

fn assert_agrees_with_httparse(input: &[u8]) {
    let theirs = httparse_head(input);
    let ours = our_head(input);
    assert!(
        theirs.is_some(),
        "httparse refused {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(input));
}

#[test]
fn differential_handwritten_heads_agree_with_httparse() {
    for input in [
        &b"HTTP/1.1 200 OK\r\n\r\n"[..],
        b"HTTP/1.0 404 Not Found\r\nServer: x\r\nContent-Length: 9\r\n\r\nnot found",
        b"HTTP/1.1 200\r\n\r\n",
        b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://example.com/\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:    padded   \r\nX-Tab:\tv\t\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error \r\nA: b: c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nDate: Mon, 30 Nov 2026 08:00:00 GMT\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: token\r\n\r\n",
        b"HTTP/1.1 200 Reason with   many  spaces\r\n\r\n",
    ] {
        assert_agrees_with_httparse(input);
    }
}

/// A field name: a token (RFC 9110 §5.6.2), not one that decides framing.
fn field_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}".prop_filter("not a framing field", |n| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("transfer-encoding")
    })
}

/// A field value: visible ASCII and inner spaces, possibly empty.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ !-~]{0,30}[!-~])?"]
}

/// A reason phrase: visible ASCII and spaces.
fn reason() -> impl Strategy<Value = String> {
    "[ !-~]{0,30}"
}

proptest! {
    #[test]
    fn differential_generated_heads_agree_with_httparse(
        minor in 0u8..=1,
        status in 100u16..600,
        reason in reason(),
        fields in prop::collection::vec((field_name(), field_value(), "[ \t]{0,2}", "[ \t]{0,2}"), 0..12),
        body in "[ -~]{0,10}",
    ) {
        let mut head = format!("HTTP/1.{minor} {status} {reason}\r\n");
        for (name, value, before, after) in &fields {
            head.push_str(&format!("{name}:{before}{value}{after}\r\n"));
        }
        head.push_str("\r\n");
        let input = format!("{head}{body}");
        let theirs = httparse_head(input.as_bytes());
        let ours = our_head(input.as_bytes());
        prop_assert!(theirs.is_some());
        prop_assert_eq!(&ours, &theirs);
        // And split anywhere, the reader sees the same head.
        let cut = input.len() / 2;
        let whole = read_with(input.as_bytes(), "HEAD", &[], false);
        prop_assert_eq!(read_with(input.as_bytes(), "HEAD", &[cut], false), whole);
    }

    #[test]
    fn any_split_of_a_generated_chunked_response_gives_the_same_body(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..6),
        cuts in prop::collection::vec(0usize..400, 0..8),
    ) {
        let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut expected = Vec::new();
        for chunk in &chunks {
            input.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            input.extend_from_slice(chunk);
            input.extend_from_slice(b"\r\n");
            expected.extend_from_slice(chunk);
        }
        input.extend_from_slice(b"0\r\n\r\n");
        let mut cuts = cuts;
        cuts.sort_unstable();
        let out = read_with(&input, "GET", &cuts, false).unwrap();
        prop_assert!(out.complete);
        prop_assert_eq!(out.body, expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_reads_agree(
        input in prop::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..200,
    ) {
        let whole = read(&input, "GET");
        prop_assert_eq!(read_with(&input, "GET", &[cut], true), whole);
    }
}

/// Pieces of heads, valid and not, for heads that sit near the grammar's edges.
fn head_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"HTTP/1.1 ".to_vec()),
        Just(b"HTTP/1.0 ".to_vec()),
        Just(b"HTTP/1.1".to_vec()),
        Just(b"200".to_vec()),
        Just(b"404 Not Found".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b":".to_vec()),
        Just(b"X-A".to_vec()),
        Just(b"Content-Length: 0".to_vec()),
        Just(b"value".to_vec()),
        Just(b"\x7f".to_vec()),
        Just(b"\x00".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ]
}

proptest! {
    /// The parser is the stricter of the two: every head it accepts, httparse
    /// accepts too, with the same length, status code, reason and fields.
    #[test]
    fn differential_every_head_accepted_is_read_as_httparse_reads_it(
        status_line in any::<bool>(),
        pieces in prop::collection::vec(head_piece(), 1..24),
    ) {
        // Half the time a good status line, so that the fields are reached.
        let mut input = if status_line { b"HTTP/1.1 200 OK\r\n".to_vec() } else { Vec::new() };
        input.extend(pieces.concat());
        input.extend_from_slice(b"\r\n\r\n");
        if let Some(ours) = our_head(&input) {
            // httparse gives an empty reason for one that is not UTF-8.
            if std::str::from_utf8(&ours.2).is_ok() {
                prop_assert_eq!(Some(ours), httparse_head(&input));
            }
        }
    }
}

#[test]
fn a_refused_head_leaves_no_last_head() {
    let mut parser = ResponseParser::new("GET");
    let good = b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n";
    assert!(parser.parse(good).unwrap().is_complete());
    assert_eq!(parser.last_head(good).map(|h| h.status()), Some(200));
    let bad = b"HTTP/1.1 201 Created\r\nX : 1\r\n\r\n";
    assert_eq!(
        parser.parse(bad).map(|_| ()),
        Err(HttpError::WhitespaceBeforeColon)
    );
    assert!(parser.last_head(bad).is_none());
}
