//! The server over real TCP on 127.0.0.1: every byte asserted as the client sees it.
//!
//! Each test starts a server on a free port (port 0) on its own thread through the
//! library API, talks to it with a plain blocking `std::net::TcpStream` (read
//! timeouts on, so a bug fails a test instead of hanging it), and stops it.
//! The handler is the `request_response` example's: an anatomy of a request without
//! a body, an echo of a request with one.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use wirepatterns::http::HttpError;
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::{Config, Running, Server, ServerStats};

/// How long a client waits for any one read before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A request that is answered if it is ever parsed: sent after a bad one to check
/// that nothing after a bad request is processed.
const AFTER: &[u8] = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n";

fn config() -> Config {
    Config::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The server's totals once `ready` holds for them (they are published at the end
/// of each turn of the loop, which may be just after the client got its bytes), or
/// after a few seconds, whatever they are then.
fn stats_when(
    server: &Running<RequestResponse>,
    ready: impl Fn(&ServerStats) -> bool,
) -> ServerStats {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let stats = server.handle.stats();
        if ready(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server's totals once it has read `total` bytes in all; panics if that does
/// not happen within [`READ_TIMEOUT`] (or if it read more than that).
fn once_read(server: &Running<RequestResponse>, total: u64) -> ServerStats {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let stats = server.handle.stats();
        assert!(stats.bytes_in <= total, "read more than sent: {stats:?}");
        if stats.bytes_in == total {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the server never read byte {total}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn start(config: Config) -> Running<RequestResponse> {
    Server::bind(config, RequestResponse::new())
        .and_then(Server::spawn)
        .expect("server starts")
}

/// A client connection with its own read buffer.
struct Client {
    stream: TcpStream,
    /// Bytes read and not yet taken by a parse.
    buf: Vec<u8>,
}

/// A response as the client parsed it.
#[derive(Debug)]
struct Resp {
    status_line: String,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more bytes into `buf`; `false` at end of file.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) => panic!(
                "read failed ({e}); got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Reads exactly `n` bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill(), "connection closed before {n} bytes arrived");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a response head (status line to the empty line).
    fn head(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                let head = String::from_utf8(head).expect("ASCII head");
                let status_line = head.lines().next().unwrap_or_default().to_string();
                return (status_line, head);
            }
            assert!(
                self.fill(),
                "connection closed inside a response head: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads a whole Content-Length framed response.
    fn response(&mut self) -> Resp {
        let (status_line, head) = self.head();
        let mut resp = Resp {
            status_line,
            head,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().expect("numeric Content-Length"))
            .unwrap_or(0);
        resp.body = self.take(len);
        resp
    }

    /// Reads until the server closes; fails if it does not within the timeout.
    fn until_eof(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }
}

/// Sends `bad` followed by a valid request on a fresh connection and checks the
/// answer: exactly `status_line`, `Connection: close`, a body naming the rule
/// (exactly `rule`'s text when given), then end of file: the request after it is
/// never answered.
fn assert_rejected(
    addr: SocketAddr,
    bad: &[u8],
    status_line: &str,
    rule: Option<HttpError>,
) -> String {
    let mut client = Client::connect(addr);
    let mut bytes = bad.to_vec();
    bytes.extend_from_slice(AFTER);
    client.send(&bytes);
    let resp = client.response();
    assert_eq!(
        resp.status_line,
        status_line,
        "for {:?}",
        String::from_utf8_lossy(&bad[..bad.len().min(80)])
    );
    assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{resp:?}"
    );
    let text = resp.text();
    assert!(
        text.contains("RFC"),
        "the body names the rule broken: {text:?}"
    );
    if let Some(rule) = rule {
        assert_eq!(text, format!("{rule}\n"));
    }
    let rest = client.until_eof();
    assert!(
        rest.is_empty(),
        "nothing may follow the error response, got {:?}",
        String::from_utf8_lossy(&rest)
    );
    text
}

#[test]
fn rfc9112_2_request_split_into_one_byte_writes() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    let request = b"GET /one/byte?at=a-time HTTP/1.1\r\nHost: example.com\r\nX-Test: 1\r\n\r\n";
    // Each byte goes out only once the server has read every byte before it, so no
    // two bytes can arrive in one read: the parser is handed the head one byte per
    // read, whatever the kernel would otherwise have coalesced.
    let mut reads = 0;
    for (i, byte) in request.iter().enumerate() {
        let before = server.handle.stats().read_calls;
        client.send(std::slice::from_ref(byte));
        let stats = once_read(&server, i as u64 + 1);
        reads += stats.read_calls - before;
    }
    assert!(
        reads >= request.len() as u64,
        "{reads} reads for {} pieces",
        request.len()
    );
    let resp = client.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    let text = resp.text();
    assert!(
        text.starts_with("GET /one/byte?at=a-time HTTP/1.1\n"),
        "{text}"
    );
    assert!(text.contains("  X-Test: 1\n"), "{text}");
    assert!(
        text.contains(&format!("head: {} bytes", request.len())),
        "{text}"
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_9_3_pipelined_requests_answered_in_order() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree",
    );
    let first = client.response();
    let second = client.response();
    let third = client.response();
    assert!(first.text().starts_with("GET /1 HTTP/1.1\n"), "{first:?}");
    assert!(second.text().starts_with("GET /2 HTTP/1.1\n"), "{second:?}");
    assert_eq!(third.body, b"three");
    let stats = stats_when(&server, |s| s.responses == 3);
    assert_eq!(stats.requests, 3);
    server.stop().unwrap();
}

#[test]
fn rfc9112_9_3_keep_alive_serves_two_requests_on_one_connection() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = client.response();
    assert_eq!(first.status_line, "HTTP/1.1 200 OK");
    assert_eq!(first.header("connection"), None);
    assert!(first.header("date").is_some_and(|d| d.ends_with(" GMT")));
    client.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    let second = client.response();
    assert!(second.text().starts_with("GET /second HTTP/1.1\n"));
    assert_eq!(
        stats_when(&server, |s| s.responses == 2).connections_accepted,
        1
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_9_3_http10_closes_after_the_response() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.0\r\n\r\n");
    let resp = client.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(
        resp.text()
            .contains("connection: close after this response")
    );
    assert!(client.until_eof().is_empty());
    server.stop().unwrap();
}

#[test]
fn rfc9112_9_3_http10_keep_alive_is_honoured() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = client.response();
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    client.send(b"GET /b HTTP/1.0\r\n\r\n");
    let resp = client.response();
    assert!(resp.text().starts_with("GET /b HTTP/1.0\n"));
    assert!(client.until_eof().is_empty());
    server.stop().unwrap();
}

#[test]
fn rfc9112_9_6_connection_close_request_is_answered_then_closed() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    client.send(AFTER);
    let resp = client.response();
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(client.until_eof().is_empty());
    server.stop().unwrap();
}

#[test]
fn rfc9110_9_3_2_head_gets_content_length_but_no_body() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let get = client.response();
    // HEAD then GET pipelined: if HEAD's answer had a body, the second status line
    // would not come right after its head.
    client.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status_line, head) = client.head();
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    let head_resp = Resp {
        status_line,
        head,
        body: Vec::new(),
    };
    // The Content-Length the GET would have had (the anatomy names the method
    // twice, and HEAD is one byte longer than GET).
    let len: usize = head_resp.header("content-length").unwrap().parse().unwrap();
    assert_eq!(len, get.body.len() + 2);
    let next = client.response();
    assert_eq!(next.status_line, "HTTP/1.1 200 OK");
    assert!(next.text().starts_with("GET /next HTTP/1.1\n"));
    server.stop().unwrap();
}

#[test]
fn rfc9110_10_1_1_expect_100_continue_gets_100_then_200() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(
        b"PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = client.take(b"HTTP/1.1 100 Continue\r\n\r\n".len());
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    client.send(b"hello world");
    let resp = client.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.body, b"hello world");
    server.stop().unwrap();
}

#[test]
fn rfc9110_10_1_1_expect_100_continue_over_the_limit_gets_413_not_100() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388609\r\nExpect: 100-continue\r\n\r\n",
        "HTTP/1.1 413 Content Too Large",
        Some(HttpError::BodyTooLarge),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_7_1_chunked_request_is_echoed_content_length_framed() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/x-test\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
    );
    let resp = client.response();
    assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
    assert_eq!(resp.header("content-length"), Some("11"));
    assert_eq!(resp.header("content-type"), Some("text/x-test"));
    assert_eq!(resp.header("transfer-encoding"), None);
    assert_eq!(resp.body, b"hello world");
    // The connection is still good.
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.response().status_line, "HTTP/1.1 200 OK");
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_2_content_length_body_split_across_writes_is_echoed() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut writer = client.stream.try_clone().unwrap();
    let sent = body.clone();
    let t = std::thread::spawn(move || {
        writer.write_all(head.as_bytes()).unwrap();
        for part in sent.chunks(7_777) {
            writer.write_all(part).unwrap();
        }
    });
    let resp = client.response();
    t.join().unwrap();
    assert_eq!(resp.body.len(), body.len());
    assert!(resp.body == body, "echoed body differs");
    server.stop().unwrap();
}

// ---- The bad-input table: status, rule named, connection closed, nothing after. ----

#[test]
fn rfc9112_3_malformed_request_lines_are_400() {
    let server = start(config());
    for bad in [
        &b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /\r\nHost: x\r\n\r\n",
        b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert_rejected(server.addr, bad, "HTTP/1.1 400 Bad Request", None);
    }
    server.stop().unwrap();
}

#[test]
fn rfc9112_5_1_space_before_colon_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::WhitespaceBeforeColon),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9110_5_1_invalid_token_char_in_field_name_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nBad(Name): y\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::InvalidHeaderName),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_5_2_obs_fold_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::ObsoleteFold),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_2_2_bare_cr_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        None,
    );
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\rHost: x\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        None,
    );
    server.stop().unwrap();
}

#[test]
fn rfc9110_5_5_nul_in_field_value_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        None,
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_3_2_missing_host_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::MissingHost),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_3_2_several_host_fields_are_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::DuplicateHost),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_1_content_length_with_transfer_encoding_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::ContentLengthWithTransferEncoding),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_3_differing_content_lengths_are_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::ConflictingContentLength),
    );
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::ConflictingContentLength),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9110_8_6_content_length_not_digits_or_overflowing_is_400() {
    let server = start(config());
    for value in ["+5", "5a", "-1", "0x5", "", "99999999999999999999999"] {
        let bad = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {value}\r\n\r\nhello");
        assert_rejected(
            server.addr,
            bad.as_bytes(),
            "HTTP/1.1 400 Bad Request",
            Some(HttpError::InvalidContentLength),
        );
    }
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_1_transfer_coding_other_than_chunked_is_501() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 501 Not Implemented",
        Some(HttpError::UnsupportedTransferCoding),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_3_chunked_not_last_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::ChunkedNotLast),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_7_1_invalid_chunk_size_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::InvalidChunkSize),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_7_1_missing_crlf_after_chunk_data_is_400() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        Some(HttpError::MissingChunkCrlf),
    );
    server.stop().unwrap();
}

#[test]
fn rfc6585_5_header_section_over_the_limit_is_431() {
    let server = start(config());
    let mut bad = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    bad.extend(std::iter::repeat_n(b'a', 17 * 1024));
    bad.extend_from_slice(b"\r\n\r\n");
    assert_rejected(
        server.addr,
        &bad,
        "HTTP/1.1 431 Request Header Fields Too Large",
        Some(HttpError::HeadTooLarge),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9112_3_request_target_over_the_limit_is_414() {
    let server = start(config());
    let mut bad = b"GET /".to_vec();
    bad.extend(std::iter::repeat_n(b'a', 9 * 1024));
    bad.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_rejected(
        server.addr,
        &bad,
        "HTTP/1.1 414 URI Too Long",
        Some(HttpError::TargetTooLong),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9110_15_5_14_content_length_over_the_body_limit_is_413() {
    let server = start(config());
    assert_rejected(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8388609\r\n\r\nsome",
        "HTTP/1.1 413 Content Too Large",
        Some(HttpError::BodyTooLarge),
    );
    server.stop().unwrap();
}

#[test]
fn rfc9110_15_5_14_chunked_body_growing_over_the_limit_is_413() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    let mut writer = client.stream.try_clone().unwrap();
    // 9 chunks of 1 MiB: the ninth crosses the 8 MiB default. The writer stops at
    // the first failed write (the server may close once it has answered).
    let t = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1024 * 1024];
        if writer
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_err()
        {
            return;
        }
        for _ in 0..9 {
            let mut part = b"100000\r\n".to_vec();
            part.extend_from_slice(&chunk);
            part.extend_from_slice(b"\r\n");
            if writer.write_all(&part).is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
        let _ = writer.write_all(AFTER);
    });
    let resp = client.response();
    assert_eq!(resp.status_line, "HTTP/1.1 413 Content Too Large");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.text(), format!("{}\n", HttpError::BodyTooLarge));
    assert!(client.until_eof().is_empty());
    t.join().unwrap();
    let stats = stats_when(&server, |s| s.error_responses.get(413) == 1);
    assert_eq!(stats.error_responses.get(413), 1);
    server.stop().unwrap();
}

#[test]
fn rfc9110_15_6_6_http_2_or_later_request_line_is_505() {
    let server = start(config());
    for bad in [
        &b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/3.0\r\nHost: x\r\n\r\n",
    ] {
        assert_rejected(
            server.addr,
            bad,
            "HTTP/1.1 505 HTTP Version Not Supported",
            Some(HttpError::VersionNotSupported),
        );
    }
    server.stop().unwrap();
}

#[test]
fn rfc9110_15_5_9_head_not_complete_within_the_header_timeout_is_408() {
    let mut config = config();
    config.header_timeout = Duration::from_millis(300);
    let server = start(config);
    let mut client = Client::connect(server.addr);
    let started = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    let resp = client.response();
    let waited = started.elapsed();
    assert_eq!(resp.status_line, "HTTP/1.1 408 Request Timeout");
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.text(), format!("{}\n", HttpError::HeadTimeout));
    assert!(client.until_eof().is_empty());
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    assert_eq!(stats_when(&server, |s| s.timeouts == 1).timeouts, 1);
    server.stop().unwrap();
}

#[test]
fn idle_keep_alive_connection_past_its_timeout_is_closed_quietly() {
    let mut config = config();
    config.idle_timeout = Duration::from_millis(300);
    let server = start(config);
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.response().status_line, "HTTP/1.1 200 OK");
    let started = Instant::now();
    let rest = client.until_eof();
    let waited = started.elapsed();
    assert!(
        rest.is_empty(),
        "closed with no bytes, got {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    server.stop().unwrap();
}

#[test]
fn connection_that_sends_nothing_is_closed_quietly_at_the_header_timeout() {
    let mut config = config();
    config.header_timeout = Duration::from_millis(300);
    let server = start(config);
    let mut client = Client::connect(server.addr);
    assert!(client.until_eof().is_empty());
    server.stop().unwrap();
}

// ---- Isolation, robustness, limits. ----

#[test]
fn other_connections_are_served_while_one_sends_garbage() {
    let server = start(config());
    let mut good = Client::connect(server.addr);
    let mut bad = Client::connect(server.addr);
    // The bad client starts a head and stalls...
    bad.send(b"GET / HTTP/1.1\r\nX-Slow: ");
    for i in 0..20 {
        good.send(format!("GET /good/{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let resp = good.response();
        assert!(
            resp.text()
                .starts_with(&format!("GET /good/{i} HTTP/1.1\n"))
        );
        if i == 10 {
            // ... then sends garbage, and is answered and closed.
            bad.send(b"\x00\x01\x02\r\n\r\n");
        }
    }
    let resp = bad.response();
    assert_eq!(resp.status_line, "HTTP/1.1 400 Bad Request");
    assert!(bad.until_eof().is_empty());
    // A flood of garbage from fresh connections changes nothing for the good one.
    for _ in 0..20 {
        let mut junk = Client::connect(server.addr);
        let mut garbage = vec![0xff; 600];
        garbage.extend_from_slice(b"\r\n\r\n");
        junk.send(&garbage);
        let _ = junk.until_eof();
    }
    good.send(b"GET /still HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(good.response().status_line, "HTTP/1.1 200 OK");
    server.stop().unwrap();
}

#[test]
fn half_closed_client_still_gets_its_response() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    client.send(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n");
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let resp = client.response();
    assert!(resp.text().starts_with("GET /half HTTP/1.1\n"));
    assert!(client.until_eof().is_empty());
    server.stop().unwrap();
}

#[test]
fn peer_reset_is_a_clean_close() {
    let server = start(config());
    for _ in 0..10 {
        let client = Client::connect(server.addr);
        // Unread bytes + SO_LINGER 0 would be a reset; simply closing with a
        // request in flight is the common case.
        let mut s = client.stream;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(s);
    }
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(client.response().status_line, "HTTP/1.1 200 OK");
    let stats = stats_when(&server, |s| s.connections_open == 1);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.connections_accepted, 11);
    server.stop().unwrap();
}

#[test]
fn connections_over_the_limit_get_503_with_retry_after_then_close() {
    let mut config = config();
    config.max_connections = 2;
    let server = start(config);
    let mut a = Client::connect(server.addr);
    let mut b = Client::connect(server.addr);
    a.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    b.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    a.response();
    b.response();
    // The third is answered at once, without sending anything, and closed.
    let mut c = Client::connect(server.addr);
    let answer = String::from_utf8(c.until_eof()).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nRetry-After: 1\r\n"), "{answer}");
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with("connection limit (2 open); try again shortly\n"),
        "{answer}"
    );
    assert_eq!(
        stats_when(&server, |s| s.connections_rejected == 1).connections_rejected,
        1
    );
    a.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(a.response().status_line, "HTTP/1.1 200 OK");
    server.stop().unwrap();
}

#[test]
fn backpressure_client_that_does_not_read_stops_being_read() {
    let mut config = config();
    config.max_queued_output = 256 * 1024;
    let bound = config.max_queued_output as u64;
    let server = start(config);
    let mut client = Client::connect(server.addr);
    const N: usize = 40_000;
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut writer = client.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let t = std::thread::spawn(move || {
        let batch: Vec<u8> = request.repeat(1000);
        for _ in 0..N / 1000 {
            writer.write_all(&batch).expect("server resumes reading");
        }
    });

    // Wait until the server has paused reading this connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.handle.stats().backpressure_pauses == 0 {
        assert!(Instant::now() < deadline, "server never paused reading");
        std::thread::sleep(Duration::from_millis(10));
    }
    // While paused, its memory stays bounded: nothing more is read or answered.
    std::thread::sleep(Duration::from_millis(200));
    let paused = server.handle.stats();
    std::thread::sleep(Duration::from_millis(200));
    // A loop that had stopped altogether would also parse nothing: show it is
    // alive by serving another connection meanwhile, which must be the only
    // request parsed since the pause.
    let mut other = Client::connect(server.addr);
    other.send(b"GET / HTTP/1.1\r\nHost: b\r\n\r\n");
    assert_eq!(other.response().status_line, "HTTP/1.1 200 OK");
    let later = stats_when(&server, |s| s.requests > paused.requests);
    assert_eq!(
        later.requests,
        paused.requests + 1,
        "no request of the paused connection is parsed while it is paused"
    );
    assert!(paused.requests < N as u64, "paused before the end");
    let slack = 64 * 1024;
    assert!(
        later.peak_queued_output_bytes <= bound + slack,
        "queued output {} stays near the bound {bound}",
        later.peak_queued_output_bytes
    );

    // Now read everything: the server resumes and answers every request, in order.
    let mut seen = 0;
    while seen < N {
        let resp = client.response();
        assert_eq!(resp.status_line, "HTTP/1.1 200 OK");
        seen += 1;
    }
    t.join().unwrap();
    // Its N requests, and the other connection's one.
    let stats = stats_when(&server, |s| s.responses == N as u64 + 1);
    assert_eq!(stats.requests, N as u64 + 1);
    assert!(stats.peak_queued_output_bytes <= bound + slack);
    server.stop().unwrap();
}

#[test]
fn stats_count_requests_bytes_and_syscalls() {
    let server = start(config());
    let mut client = Client::connect(server.addr);
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    client.send(request);
    let resp = client.response();
    let stats = stats_when(&server, |s| s.responses == 1);
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.responses, 1);
    assert_eq!(stats.bytes_in, request.len() as u64);
    assert_eq!(stats.bytes_out, (resp.head.len() + resp.body.len()) as u64);
    // At least the read that got the request and the one that found nothing more.
    assert!(stats.read_calls >= 2, "{stats:?}");
    assert!(stats.write_calls >= 1, "{stats:?}");
    assert_eq!(stats.queued_output_bytes, 0);
    server.stop().unwrap();
}

#[test]
fn read_timeout_guard_does_not_mask_a_dead_server() {
    // A sanity check of the test client itself: reading from a server that never
    // answers fails with a timeout error instead of hanging.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 1];
    let err = (&stream).read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
}
