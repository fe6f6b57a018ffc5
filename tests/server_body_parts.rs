//! Request bodies in parts, over TCP: a handler that takes a body as it arrives
//! (`Handler::on_head` -> `BodyMode::Parts`, `Handler::on_body_part`) gets every
//! byte, in order, of a body larger than the whole-body limit, chunked or with a
//! length; while its own buffer is full it pauses reading and the loop reads no
//! more, so it never holds more than its bound and one read buffer; a client that
//! disconnects mid-body is reported as an incomplete body, never a complete one;
//! a head refused (`BodyMode::Reject`) is answered at once and its body never read.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::http::Response;
use wirepatterns::server::{
    BodyMode, BodyPart, Config, ConnId, Context, Handler, Incoming, Reply, Running, Server, TimerId,
};

/// The handler's buffer bound: past it, it pauses the connection until a timer
/// "writes the buffer out".
const BOUND: usize = 64 * 1024;
/// The loop's largest read buffer in these tests.
const MAX_READ: usize = 64 * 1024;

/// What the handler saw, shared with the test.
#[derive(Default)]
struct Seen {
    /// Bodies stored, by the request's path.
    stored: HashMap<String, Vec<u8>>,
    /// The most bytes the handler held unwritten at once.
    max_buffered: usize,
    /// Times it paused a connection.
    pauses: usize,
    /// Paths whose body was reported incomplete.
    incomplete: Vec<String>,
    /// Paths whose request was handed over complete.
    completed: Vec<String>,
}

/// Takes `/upload...` in parts through a bounded buffer; refuses `/refuse` before
/// its body; anything else whole.
#[derive(Default)]
struct Uploads {
    seen: Arc<Mutex<Seen>>,
    /// Per connection: the path and the bytes not yet "written".
    open: HashMap<ConnId, (String, Vec<u8>)>,
    /// Timer data -> the connection it flushes.
    timers: HashMap<u64, ConnId>,
    next: u64,
}

impl Uploads {
    fn flush(&mut self, conn: ConnId) {
        if let Some((path, buffer)) = self.open.get_mut(&conn) {
            let mut seen = self.seen.lock().expect("seen");
            seen.stored.entry(path.clone()).or_default().append(buffer);
        }
    }
}

impl Handler for Uploads {
    fn on_head(&mut self, _: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> BodyMode {
        let path = req.request().path().to_string();
        if path == "/refuse" {
            *res = Response::text(413, "too large for this test\n");
            return BodyMode::Reject;
        }
        if path.starts_with("/upload") {
            self.open.insert(req.conn(), (path, Vec::new()));
            return BodyMode::Parts;
        }
        BodyMode::Whole
    }

    fn on_body_part(&mut self, ctx: &mut Context<'_>, conn: ConnId, part: BodyPart<'_>) {
        match part {
            BodyPart::Data(data) => {
                let Some((_, buffer)) = self.open.get_mut(&conn) else {
                    return;
                };
                buffer.extend_from_slice(data);
                let held = buffer.len();
                let mut seen = self.seen.lock().expect("seen");
                seen.max_buffered = seen.max_buffered.max(held);
                if held >= BOUND {
                    // Full: no more until the buffer is written out.
                    seen.pauses += 1;
                    drop(seen);
                    ctx.pause_reading(conn);
                    self.next += 1;
                    self.timers.insert(self.next, conn);
                    ctx.set_timer(Duration::from_millis(1), self.next);
                }
            }
            BodyPart::Incomplete => {
                if let Some((path, _)) = self.open.remove(&conn) {
                    self.seen.lock().expect("seen").incomplete.push(path);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId, data: u64) {
        if let Some(conn) = self.timers.remove(&data) {
            self.flush(conn);
            ctx.resume_reading(conn);
        }
    }

    fn on_request(&mut self, _: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let path = req.request().path().to_string();
        if self.open.contains_key(&req.conn()) {
            self.flush(req.conn());
            self.open.remove(&req.conn());
            let mut seen = self.seen.lock().expect("seen");
            seen.completed.push(path.clone());
            let size = seen.stored.get(&path).map_or(0, Vec::len);
            *res = Response::text(201, &format!("stored {size} bytes\n"));
        } else {
            *res = Response::text(200, &format!("whole body of {} bytes\n", req.body().len()));
        }
        Reply::Respond
    }
}

fn start() -> (Running<Uploads>, Arc<Mutex<Seen>>) {
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"));
    config.max_read_buffer_bytes = MAX_READ;
    let app = Uploads::default();
    let seen = Arc::clone(&app.seen);
    let server = Server::bind(config, app)
        .and_then(Server::spawn)
        .expect("server");
    (server, seen)
}

fn connect(server: &Running<Uploads>) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Reads one response with a Content-Length body; returns the head and body.
fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.split_once(": ")
                        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                })
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return (head, body);
            }
        }
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Bytes that differ from position to position, so that a lost or reordered
/// piece shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_body_larger_than_the_whole_body_limit_arrives_in_parts_through_a_bounded_buffer() {
    let (server, seen) = start();
    // 8 MiB + 1: one byte over the whole-body limit, which would be 413.
    let body = pattern(8 * 1024 * 1024 + 1);
    let mut stream = connect(&server);
    stream
        .write_all(
            format!(
                "PUT /upload-length HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .expect("head");
    stream.write_all(&body).expect("body");
    let (head, answer) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    assert_eq!(answer, format!("stored {} bytes\n", body.len()));
    // The same connection serves on.
    stream
        .write_all(b"POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        .expect("write");
    assert_eq!(read_response(&mut stream).1, "whole body of 3 bytes\n");
    server.stop().expect("stops");
    let seen = seen.lock().expect("seen");
    assert!(
        seen.stored["/upload-length"] == body,
        "every byte, in order"
    );
    assert!(seen.pauses > 0, "the handler had to pause");
    assert!(
        seen.max_buffered < BOUND + MAX_READ,
        "held at most its bound and one read buffer: {}",
        seen.max_buffered
    );
}

#[test]
fn a_chunked_body_arrives_in_parts_without_its_framing() {
    let (server, seen) = start();
    let body = pattern(300_000);
    let mut wire =
        b"POST /upload-chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(7000) {
        wire.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\nTrailer-Field: x\r\n\r\n");
    let mut stream = connect(&server);
    stream.write_all(&wire).expect("write");
    let (head, answer) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    assert_eq!(answer, format!("stored {} bytes\n", body.len()));
    server.stop().expect("stops");
    let seen = seen.lock().expect("seen");
    assert!(seen.stored["/upload-chunked"] == body);
    assert_eq!(seen.completed, ["/upload-chunked"]);
}

#[test]
fn a_client_that_disconnects_mid_body_is_an_incomplete_body_not_a_complete_one() {
    let (server, seen) = start();
    let mut stream = connect(&server);
    stream
        .write_all(b"PUT /upload-cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .expect("head");
    stream.write_all(&pattern(40_000)).expect("part");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("seen").incomplete.is_empty() {
        assert!(Instant::now() < deadline, "never told");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop().expect("stops");
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.incomplete, ["/upload-cut"]);
    assert!(seen.completed.is_empty(), "never handed over as complete");
    // What arrived before the cut was handed out (the handler decides what to
    // keep).
    let kept = seen.stored.get("/upload-cut").map_or(0, Vec::len);
    assert!(kept <= 40_000, "{kept}");
}

#[test]
fn a_head_refused_is_answered_at_once_and_its_body_never_read() {
    let (server, seen) = start();
    let mut stream = connect(&server);
    // It waits for 100 Continue, as a client with a large body does: the answer
    // must come without the body.
    stream
        .write_all(
            b"PUT /refuse HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1000000000\r\n\r\n",
        )
        .expect("head");
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    assert!(!head.contains("100 Continue"), "{head}");
    assert_eq!(body, "too large for this test\n");
    // And the connection ends.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    server.stop().expect("stops");
    assert!(seen.lock().expect("seen").stored.is_empty());
}
