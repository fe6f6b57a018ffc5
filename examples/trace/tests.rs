//! The client against the crate's own servers, started in this process on free
//! ports of 127.0.0.1: `request_response` (Content-Length bodies, HEAD), the jobs
//! server (a chunked SSE stream, a 204), `ws_echo` (a WebSocket conversation), and
//! tiny `std::net` servers for what those never send (a close-delimited body, a
//! truncated one, interim 1xx responses). Every socket has a timeout and every
//! wait a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use wirepatterns::http::response_parser::ResponseFraming;
use wirepatterns::patterns::jobs::JobConfig;
use wirepatterns::patterns::polling::{JobsApp, JobsConfig};
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::patterns::websocket::{WsConfig, WsEcho, WsServer};
use wirepatterns::server::{Config, Server};

use crate::exchange::{self, Failure, HttpReport, Request};
use crate::url::Url;
use crate::{Command, parse_args, run};

/// The longest any one connect, read or write may take before a test fails.
const TIMEOUT: Duration = Duration::from_secs(5);

fn loopback() -> Config {
    Config::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn request(method: &str, url: &str) -> Request {
    Request {
        method: method.to_string(),
        url: Url::parse(url).expect("a good URL"),
        headers: Vec::new(),
        data: None,
        timeout: TIMEOUT,
        http10: false,
    }
}

/// Runs an HTTP exchange and returns its report and its trace.
fn http(request: &Request) -> (HttpReport, String) {
    let mut out = Vec::new();
    let report = exchange::http(request, &mut out).unwrap_or_else(|f| panic!("{f:?}"));
    (report, String::from_utf8(out).expect("the trace is text"))
}

fn header<'a>(report: &'a HttpReport, name: &str) -> Option<&'a [u8]> {
    report
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The sizes of the dumped blocks whose label starts with `prefix` (`=>` or `<=`),
/// after checking that each block's rows hold exactly that many bytes.
fn dumped(trace: &str, prefix: &str) -> u64 {
    let mut total = 0;
    let mut lines = trace.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with(prefix) {
            continue;
        }
        let size: u64 = line
            .split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a size in {line:?}"));
        let mut in_rows = 0;
        let is_row = |l: &&str| {
            l.split_once(": ").is_some_and(|(offset, _)| {
                offset.len() >= 4 && offset.bytes().all(|b| b.is_ascii_hexdigit())
            })
        };
        while let Some(row) = lines.next_if(is_row) {
            // "0000: " then 16 columns of "xx " (or blanks), then the text.
            let (_, rest) = row.split_once(": ").expect("a row");
            in_rows += rest[..48].split_whitespace().count() as u64;
        }
        assert_eq!(in_rows, size, "block {line:?}");
        total += size;
    }
    total
}

/// Checks the trace shows every byte the timeline counted, each way.
fn assert_every_byte_dumped(trace: &str, report_timeline: &crate::wire::Timeline) {
    let last = report_timeline.phases().last().expect("phases").counters;
    assert_eq!(dumped(trace, "=>"), last.bytes_out, "{trace}");
    assert_eq!(dumped(trace, "<="), last.bytes_in, "{trace}");
}

#[test]
fn content_length_bodies_from_request_response_come_back_exactly() {
    let server = Server::bind(loopback(), RequestResponse::new())
        .and_then(Server::spawn)
        .expect("server starts");
    let url = format!("http://{}/hello?x=1", server.addr);

    // No body: the anatomy of the request, framed by Content-Length.
    let mut get = request("GET", &url);
    get.headers.push(("X-Trace".to_string(), "yes".to_string()));
    let (report, trace) = http(&get);
    assert_eq!(report.status, 200);
    let text = String::from_utf8(report.body.clone()).unwrap();
    assert!(text.starts_with("GET /hello?x=1 HTTP/1.1\n"), "{text}");
    assert!(text.contains("X-Trace: yes"), "{text}");
    assert!(text.contains(&format!("Host: {}", server.addr)), "{text}");
    assert_eq!(
        report.framing,
        ResponseFraming::Length(report.body.len() as u64)
    );
    assert_every_byte_dumped(&trace, &report.timeline);
    assert!(trace.contains("=> Send header, "), "{trace}");
    assert!(trace.contains("<= Recv header, "), "{trace}");
    let names: Vec<&str> = report
        .timeline
        .phases()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "DNS lookup",
            "TCP connect",
            "request written",
            "first byte",
            "head parsed",
            "body complete"
        ]
    );

    // A body: echoed byte for byte, including bytes that are not text.
    let mut post = request("POST", &url);
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    post.data = Some(data.clone());
    post.headers.push((
        "Content-Type".to_string(),
        "application/octet-stream".to_string(),
    ));
    let (report, trace) = http(&post);
    assert_eq!(report.status, 200);
    assert_eq!(report.body, data);
    assert_every_byte_dumped(&trace, &report.timeline);

    // HEAD: the head says how long the body would be; none follows.
    let (report, _) = http(&request("HEAD", &url));
    assert_eq!(report.status, 200);
    assert_eq!(report.framing, ResponseFraming::NoBody);
    assert!(report.body.is_empty());
    let length: usize =
        std::str::from_utf8(header(&report, "content-length").expect("Content-Length"))
            .unwrap()
            .parse()
            .unwrap();
    assert!(length > 0);
    server.stop().expect("stops");
}

#[test]
fn a_chunked_event_stream_and_a_204_from_the_jobs_server() {
    let config = JobsConfig {
        jobs: JobConfig {
            // Slow enough that each stream is asked for while its job still runs.
            step: Duration::from_millis(50),
            ..JobConfig::default()
        },
        ..JobsConfig::default()
    };
    let ws = WsConfig {
        ping_interval: None,
        ..WsConfig::default()
    };
    let server = Server::bind(
        loopback(),
        WsServer::new(ws, JobsApp::new(config).expect("app")),
    )
    .and_then(Server::spawn)
    .expect("server starts");
    let base = format!("http://{}", server.addr);

    let (submitted, _) = http(&request("POST", &format!("{base}/submit")));
    assert_eq!(submitted.status, 200, "{submitted:?}");
    let id = String::from_utf8(submitted.body)
        .unwrap()
        .trim()
        .to_string();
    assert!(id.starts_with("job:"), "{id}");
    let id = id.replace(':', "%3A");

    // The stream is chunked and ends after 100%.
    let (events, trace) = http(&request("GET", &format!("{base}/events?jobId={id}")));
    assert_eq!(events.status, 200);
    assert_eq!(events.framing, ResponseFraming::Chunked);
    let text = String::from_utf8(events.body.clone()).unwrap();
    assert!(text.starts_with("retry: "), "{text}");
    assert!(text.contains("id: 100\n"), "{text}");
    assert_every_byte_dumped(&trace, &events.timeline);
    // The chunk framing was on the wire, not in the body.
    let received = events.timeline.phases().last().unwrap().counters.bytes_in;
    assert!(received > events.body.len() as u64 + 5, "{received}");
    assert!(trace.contains("(chunked)"), "{trace}");

    // Asked in HTTP/1.0, the stream of a job still running cannot be chunked: it
    // ends when the server closes the connection.
    let (submitted, _) = http(&request("POST", &format!("{base}/submit")));
    let running = String::from_utf8(submitted.body)
        .unwrap()
        .trim()
        .replace(':', "%3A");
    let mut old = request("GET", &format!("{base}/events?jobId={running}"));
    old.http10 = true;
    let (closed, trace) = http(&old);
    assert_eq!(closed.status, 200);
    assert_eq!(closed.framing, ResponseFraming::UntilClose);
    let ids = |body: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(body)
            .lines()
            .filter(|l| l.starts_with("id: "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        ids(&closed.body),
        ids(&events.body),
        "the same events, framed by the close"
    );
    assert_eq!(
        ids(&closed.body).last().map(String::as_str),
        Some("id: 100")
    );
    assert!(
        trace.contains("the server closed the connection"),
        "{trace}"
    );
    assert_every_byte_dumped(&trace, &closed.timeline);

    // Content-Length.
    let (stats, _) = http(&request("GET", &format!("{base}/stats")));
    assert_eq!(stats.status, 200);
    assert!(matches!(stats.framing, ResponseFraming::Length(n) if n == stats.body.len() as u64));

    // 204: nothing after the last update.
    let mut again = request("GET", &format!("{base}/events?jobId={id}"));
    again
        .headers
        .push(("Last-Event-ID".to_string(), "100".to_string()));
    let (done, _) = http(&again);
    assert_eq!(done.status, 204);
    assert_eq!(done.framing, ResponseFraming::NoBody);
    assert!(done.body.is_empty());
    server.stop().expect("stops");
}

/// A one-connection server that reads the request head, then writes `response`
/// (in pieces of `piece` bytes) and closes.
fn raw_server(response: &'static [u8], piece: usize) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Bounded: the request is small, and each read adds bytes or ends the loop.
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        for part in response.chunks(piece) {
            if stream.write_all(part).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        request
    });
    (addr, thread)
}

#[test]
fn a_close_delimited_body_ends_when_the_server_closes() {
    let (addr, server) = raw_server(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the close",
        7,
    );
    let (report, trace) = http(&request("GET", &format!("http://{addr}/")));
    assert_eq!(report.framing, ResponseFraming::UntilClose);
    assert_eq!(report.body, b"all of this, until the close");
    assert!(
        trace.contains("the server closed the connection"),
        "{trace}"
    );
    assert_every_byte_dumped(&trace, &report.timeline);
    let sent = server.join().expect("server thread");
    assert!(
        sent.starts_with(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:"),
        "{}",
        String::from_utf8_lossy(&sent)
    );
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let (addr, server) = raw_server(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        5,
    );
    let (report, trace) = http(&request("GET", &format!("http://{addr}/")));
    assert_eq!(report.interim, [100, 103]);
    assert_eq!((report.status, report.body.as_slice()), (200, &b"ok"[..]));
    assert!(trace.contains("interim response 100 Continue"), "{trace}");
    assert_every_byte_dumped(&trace, &report.timeline);
    server.join().expect("server thread");
}

#[test]
fn a_truncated_response_is_an_error_not_a_body() {
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 O",
    ] {
        let (addr, server) = raw_server(response, 64);
        let mut out = Vec::new();
        let failure =
            exchange::http(&request("GET", &format!("http://{addr}/")), &mut out).unwrap_err();
        assert_eq!(failure.code, 1);
        assert!(failure.message.contains("closed"), "{failure:?}");
        assert!(
            failure.message.contains("RFC 9112 section 8"),
            "{failure:?}"
        );
        server.join().expect("server thread");
    }
}

#[test]
fn a_bad_response_is_named() {
    let (addr, server) = raw_server(b"SSH-2.0-OpenSSH\r\n", 64);
    let mut out = Vec::new();
    let failure =
        exchange::http(&request("GET", &format!("http://{addr}/")), &mut out).unwrap_err();
    assert_eq!(failure.code, 1);
    assert!(
        failure
            .message
            .contains("bad response: invalid HTTP-version"),
        "{failure:?}"
    );
    server.join().expect("server thread");
}

#[test]
fn websocket_messages_are_echoed_by_ws_echo_and_closed_cleanly() {
    let ws = WsConfig {
        ping_interval: None,
        ..WsConfig::default()
    };
    let server = Server::bind(loopback(), WsServer::new(ws, WsEcho::new()))
        .and_then(Server::spawn)
        .expect("server starts");
    let messages = ["hello", "", "héllo wörld ✓", &"x".repeat(70_000)];
    let mut lines = messages.iter().map(|m| m.to_string());
    let mut out = Vec::new();
    let req = request("GET", &format!("ws://{}/", server.addr));
    let report =
        exchange::websocket(&req, &mut lines, &mut out).unwrap_or_else(|f| panic!("{f:?}"));
    assert_eq!(report.received, messages);
    assert_eq!(report.close_code, Some(1000));
    let trace = String::from_utf8(out).unwrap();
    assert!(
        trace.contains("recv frame: text (0x1), 5 B: \"hello\""),
        "{trace}"
    );
    assert!(
        trace.contains("send frame: close (0x8), code 1000"),
        "{trace}"
    );
    assert_every_byte_dumped(&trace, &report.timeline);
    let names: Vec<&str> = report
        .timeline
        .phases()
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names.last(), Some(&"TCP closed"));
    assert!(names.contains(&"message 4 answered"), "{names:?}");
    let app = server.stop().expect("stops");
    assert_eq!(app.app().echoed, 4);
}

#[test]
fn a_websocket_refusal_is_named() {
    // request_response answers an upgrade request as any other GET: not 101.
    let server = Server::bind(loopback(), RequestResponse::new())
        .and_then(Server::spawn)
        .expect("server starts");
    let mut out = Vec::new();
    let req = request("GET", &format!("http://{}/", server.addr));
    let failure = exchange::websocket(&req, &mut std::iter::empty(), &mut out).unwrap_err();
    assert_eq!(failure.code, 1);
    assert!(failure.message.contains("not 101"), "{failure:?}");
    server.stop().expect("stops");
}

#[test]
fn command_lines_are_read_as_curl_reads_them() {
    let args = |list: &[&str]| parse_args(list.iter().map(|s| s.to_string()));
    let Ok(Command::Run { request, ws }) = args(&["http://h:81/p", "-d", "x", "-H", "A: b c "])
    else {
        panic!("runs");
    };
    assert_eq!(request.method, "POST", "-d makes it a POST");
    assert!(!ws);
    assert_eq!(request.headers, [("A".to_string(), "b c".to_string())]);
    assert_eq!(request.data.as_deref(), Some(&b"x"[..]));
    let Ok(Command::Run { request, .. }) = args(&["-X", "PUT", "http://h/", "-d", "x"]) else {
        panic!("runs");
    };
    assert_eq!(request.method, "PUT");
    let Ok(Command::Run { request, ws }) = args(&["ws://h/chat", "-d", "hi"]) else {
        panic!("runs");
    };
    assert!(ws, "ws:// means --ws");
    assert_eq!(request.method, "GET");
    assert!(matches!(args(&["--help"]), Ok(Command::Help)));
    let Ok(Command::Run { request, .. }) = args(&["http://h/", "-0"]) else {
        panic!("runs");
    };
    assert!(request.http10);
    assert_eq!(
        exchange::build_request(&request).unwrap().0,
        b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"
    );
    for (bad, why) in [
        (&[][..], "no URL"),
        (&["ftp://h/"][..], "bad URL"),
        (&["http://h/", "-X"][..], "-X needs a value"),
        (&["http://h/", "-H", "nocolon"][..], "must be 'Name: value'"),
        (&["http://h/", "--bogus"][..], "unknown flag"),
        (&["http://h/", "http://i/"][..], "one URL only"),
        (&["http://h/", "--timeout", "0"][..], "--timeout"),
        (&["ws://h/", "-0"][..], "--ws needs HTTP/1.1"),
    ] {
        let err = args(bad).unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn requests_are_built_with_host_and_content_length() {
    let mut req = request("POST", "http://[::1]:8080/p?q=1");
    req.data = Some(b"abc".to_vec());
    req.headers.push(("Accept".to_string(), "*/*".to_string()));
    let (head, body) = exchange::build_request(&req).unwrap();
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "POST /p?q=1 HTTP/1.1\r\nHost: [::1]:8080\r\nAccept: */*\r\nContent-Length: 3\r\n\r\n"
    );
    assert_eq!(body, b"abc");
    // A -H Host replaces the URL's.
    let mut req = request("GET", "http://h/");
    req.headers.push(("host".to_string(), "other".to_string()));
    let (head, _) = exchange::build_request(&req).unwrap();
    assert_eq!(head, b"GET / HTTP/1.1\r\nhost: other\r\n\r\n");
    // What would change the request's framing is refused.
    for (method, name, value) in [
        ("GE T", "A", "b"),
        ("GET", "A B", "c"),
        ("GET", "A", "b\r\nInjected: yes"),
        ("", "A", "b"),
    ] {
        let mut req = request("GET", "http://h/");
        req.method = method.to_string();
        req.headers.push((name.to_string(), value.to_string()));
        let failure = exchange::build_request(&req).unwrap_err();
        assert_eq!(failure.code, 2, "{failure:?}");
    }
}

#[test]
fn unreachable_hosts_fail_with_exit_code_1_not_a_panic() {
    // A port nothing listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut out = Vec::new();
    let refused = run(
        &request("GET", &format!("http://127.0.0.1:{port}/")),
        false,
        &mut std::iter::empty(),
        &mut out,
    );
    let Err(Failure { code, message }) = refused else {
        panic!("connected to a closed port")
    };
    assert_eq!(code, 1);
    assert!(
        message.starts_with("cannot connect to 127.0.0.1"),
        "{message}"
    );
    // `.invalid` never resolves (RFC 6761 §6.4).
    let unresolvable = run(
        &request("GET", "http://no-such-host.invalid/"),
        false,
        &mut std::iter::empty(),
        &mut out,
    );
    let Err(Failure { code, message }) = unresolvable else {
        panic!("resolved .invalid")
    };
    assert_eq!(code, 1);
    assert!(
        message.starts_with("cannot resolve host \"no-such-host.invalid\""),
        "{message}"
    );
}
