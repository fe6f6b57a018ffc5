//! The four shapes of answer the handler trait allows, through the real loop over
//! TCP: at once, later (long polling), in parts (streaming), and by taking the
//! connection over (upgrade). Plus the costs and close reasons handed to handlers,
//! and closing a connection now whatever is queued (abort).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::cost::RequestCost;
use wirepatterns::http::Response;
use wirepatterns::server::{
    CloseReason, Config, ConnId, Context, Handler, Incoming, Reply, Running, Server, TimerId,
};

const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Blocks of 64 KiB an upgraded connection queues on "flood": 16 MiB.
const FLOOD_BLOCKS: usize = 256;

/// What the test application saw, shared with the test thread.
#[derive(Default)]
struct Seen {
    closes: Vec<(u64, CloseReason)>,
    costs: Vec<RequestCost>,
    /// Connections whose `/park` request the handler has parked, in order.
    parked: Vec<u64>,
}

/// What a timer is for.
enum Due {
    /// Answer this deferred request.
    Answer(ConnId),
    /// Send part `n` of this stream (3 parts, then the end).
    Part(ConnId, u32),
    /// A parked request's time is up.
    Timeout(ConnId),
    /// Answer this deferred request with a whole stream at once.
    LateStream(ConnId),
    /// Close this connection now, whatever is still queued.
    Abort(ConnId),
}

/// A small application exercising every kind of reply.
#[derive(Default)]
struct App {
    /// Requests parked by `/park`, answered by `/wake` or by their timeout timer.
    parked: Vec<(ConnId, TimerId)>,
    /// Timers in flight, by the data given to `set_timer`.
    due: HashMap<u64, Due>,
    /// The next timer data.
    next: u64,
    seen: Arc<Mutex<Seen>>,
}

impl App {
    fn after(&mut self, ctx: &mut Context<'_>, ms: u64, due: Due) -> TimerId {
        self.next += 1;
        self.due.insert(self.next, due);
        ctx.set_timer(Duration::from_millis(ms), self.next)
    }
}

impl Handler for App {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let request = req.request();
        match request.path() {
            "/wait" => {
                let ms = request
                    .query()
                    .and_then(|q| q.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(100);
                self.after(ctx, ms, Due::Answer(req.conn()));
                Reply::Deferred
            }
            "/park" => {
                // Long polling: wait for `/wake`, or give up after `ms`.
                let ms = request
                    .query()
                    .and_then(|q| q.strip_prefix("ms="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(5_000);
                let timer = self.after(ctx, ms, Due::Timeout(req.conn()));
                self.parked.push((req.conn(), timer));
                if let Ok(mut seen) = self.seen.lock() {
                    seen.parked.push(req.conn().serial());
                }
                Reply::Deferred
            }
            "/late-stream" => {
                self.after(ctx, 20, Due::LateStream(req.conn()));
                Reply::Deferred
            }
            "/wake" => {
                let parked = std::mem::take(&mut self.parked);
                for (conn, timer) in &parked {
                    assert!(ctx.cancel_timer(*timer), "the timeout is still pending");
                    assert!(!ctx.timer_pending(*timer));
                    ctx.respond(
                        *conn,
                        Response::text(200, &format!("woken by {}\n", req.conn())),
                    );
                }
                res.body_mut()
                    .extend_from_slice(format!("woke {}\n", parked.len()).as_bytes());
                Reply::Respond
            }
            "/stream" => {
                res.header("Content-Type", "text/event-stream");
                self.after(ctx, 20, Due::Part(req.conn(), 1));
                Reply::Stream
            }
            "/upgrade" if request.header("upgrade") == Some(b"echo") => {
                res.set_status(101);
                res.header("Upgrade", "echo");
                res.header("Connection", "Upgrade");
                Reply::Upgrade
            }
            "/queued" => {
                let queued = ctx.queued_bytes(req.conn());
                res.body_mut()
                    .extend_from_slice(format!("{queued:?}\n").as_bytes());
                Reply::Respond
            }
            path => {
                res.body_mut()
                    .extend_from_slice(format!("{path}\n").as_bytes());
                Reply::Respond
            }
        }
    }

    fn on_upgraded_data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        if data.windows(5).any(|w| w == b"flood") {
            // More than the kernel's buffers hold for a client that does not
            // read, then a close that waits for it all to be written: bounded
            // by an abort 200 ms later.
            let block = vec![b'x'; 64 * 1024];
            for _ in 0..FLOOD_BLOCKS {
                ctx.send_raw(conn, &block);
            }
            ctx.close(conn);
            self.after(ctx, 200, Due::Abort(conn));
            return data.len();
        }
        ctx.send_raw(conn, data);
        if data.windows(3).any(|w| w == b"bye") {
            ctx.close(conn);
        }
        data.len()
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId, data: u64) {
        match self.due.remove(&data) {
            Some(Due::Answer(conn)) => ctx.respond(conn, Response::text(200, "waited\n")),
            Some(Due::Part(conn, n)) if n <= 3 => {
                ctx.send_chunk(conn, format!("data: {n}\n\n").as_bytes());
                self.after(ctx, 20, Due::Part(conn, n + 1));
            }
            Some(Due::Part(conn, _)) => ctx.end_stream(conn),
            Some(Due::Timeout(conn)) => {
                self.parked.retain(|(c, _)| *c != conn);
                ctx.respond(conn, Response::text(504, "timed out\n"));
            }
            Some(Due::LateStream(conn)) => {
                // Start, fill and end a stream in one callback: the actions run in
                // the order asked.
                let mut head = Response::new(200);
                head.header("Content-Type", "text/plain");
                ctx.start_stream(conn, head);
                ctx.send_chunk(conn, b"late ");
                ctx.send_chunk(conn, b"parts");
                ctx.end_stream(conn);
            }
            Some(Due::Abort(conn)) => ctx.abort(conn),
            None => {}
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        self.parked.retain(|(c, _)| *c != conn);
        if let Ok(mut seen) = self.seen.lock() {
            seen.closes.push((conn.serial(), reason));
        }
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.costs.push(*cost);
        }
    }
}

fn start() -> (Running<App>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = App {
        seen: Arc::clone(&seen),
        ..App::default()
    };
    let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::bind(config, app)
        .and_then(Server::spawn)
        .expect("server starts");
    (server, seen)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until `buf` holds `n` bytes.
fn read_n(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) {
    let mut chunk = [0u8; 4096];
    while buf.len() < n {
        let got = stream.read(&mut chunk).expect("read");
        assert!(got > 0, "closed early: {:?}", String::from_utf8_lossy(buf));
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// Reads one response head and returns it (without the empty line).
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            return String::from_utf8(head).unwrap();
        }
        let len = buf.len() + 1;
        read_n(stream, buf, len);
    }
}

/// Reads one Content-Length framed response: (head, body).
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (String, String) {
    let head = read_head(stream, buf);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    read_n(stream, buf, len);
    let body: Vec<u8> = buf.drain(..len).collect();
    (head, String::from_utf8(body).unwrap())
}

fn read_to_eof(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    stream.read_to_end(buf).expect("closed cleanly");
}

/// Waits until `ready` holds for what the application saw; panics naming `what`
/// if it does not within [`READ_TIMEOUT`]. Tests order events by this, never by
/// sleeping and hoping the server got there.
fn wait_until(seen: &Mutex<Seen>, what: &str, ready: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if ready(&seen.lock().unwrap()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {READ_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn deferred_answer_from_a_timer_holds_no_thread() {
    let (server, _) = start();
    let mut waiter = connect(server.addr);
    let started = Instant::now();
    // A deferred request, and one pipelined behind it: it must wait its turn.
    waiter
        .write_all(
            b"GET /wait?ms=600 HTTP/1.1\r\nHost: x\r\n\r\nGET /behind HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    // Meanwhile another connection is served: the loop is not blocked.
    let mut other = connect(server.addr);
    let mut buf = Vec::new();
    other
        .write_all(b"GET /meanwhile HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, body) = read_response(&mut other, &mut buf);
    assert_eq!(body, "/meanwhile\n");
    // ... while the deferred request is still unanswered.
    waiter
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = waiter.read(&mut byte);
    assert!(
        early.is_err() || started.elapsed() >= Duration::from_millis(600),
        "answered before its timer: {early:?}"
    );
    waiter.set_read_timeout(Some(READ_TIMEOUT)).unwrap();

    let mut buf = Vec::new();
    let (head, body) = read_response(&mut waiter, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(body, "waited\n");
    assert!(started.elapsed() >= Duration::from_millis(590));
    let (_, body) = read_response(&mut waiter, &mut buf);
    assert_eq!(body, "/behind\n", "the pipelined request is answered after");
    server.stop().unwrap();
}

#[test]
fn deferred_answer_from_another_connections_request() {
    let (server, seen) = start();
    let mut parked = connect(server.addr);
    parked
        .write_all(b"GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // `/wake` must reach the handler after `/park` has been parked, or it wakes
    // nobody: wait for the handler to have parked it, not for a while.
    wait_until(&seen, "the handler parking the /park request", |s| {
        s.parked == [1]
    });
    let mut waker = connect(server.addr);
    waker
        .write_all(b"GET /wake HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let (_, body) = read_response(&mut waker, &mut buf);
    assert_eq!(body, "woke 1\n");
    let mut buf = Vec::new();
    let (_, body) = read_response(&mut parked, &mut buf);
    assert_eq!(body, "woken by conn 2\n");
    server.stop().unwrap();
}

#[test]
fn long_poll_gives_up_when_its_timer_fires() {
    let (server, _) = start();
    let mut parked = connect(server.addr);
    let started = Instant::now();
    parked
        .write_all(b"GET /park?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut parked, &mut buf);
    assert!(
        head.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{head}"
    );
    assert_eq!(body, "timed out\n");
    assert!(started.elapsed() >= Duration::from_millis(140));
    // The connection serves the next request.
    parked
        .write_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, body) = read_response(&mut parked, &mut buf);
    assert_eq!(body, "/again\n");
    server.stop().unwrap();
}

#[test]
fn deferred_request_answered_with_a_stream() {
    let (server, _) = start();
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /late-stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut client, &mut buf);
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    let expected = b"5\r\nlate \r\n5\r\nparts\r\n0\r\n\r\n";
    read_n(&mut client, &mut buf, expected.len());
    assert_eq!(&buf[..], expected);
    server.stop().unwrap();
}

#[test]
fn streamed_response_goes_out_in_three_chunks_then_the_connection_is_reused() {
    let (server, _) = start();
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut client, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nContent-Type: text/event-stream\r\n"));
    assert!(!head.contains("Content-Length"));
    let expected = b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n";
    read_n(&mut client, &mut buf, expected.len());
    assert_eq!(&buf[..expected.len()], expected);
    buf.drain(..expected.len());
    client
        .write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, body) = read_response(&mut client, &mut buf);
    assert_eq!(body, "/next\n");
    server.stop().unwrap();
}

#[test]
fn rfc9112_6_3_streamed_response_to_http10_is_delimited_by_close() {
    let (server, _) = start();
    let mut client = connect(server.addr);
    client.write_all(b"GET /stream HTTP/1.0\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    read_to_eof(&mut client, &mut buf);
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert_eq!(body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    server.stop().unwrap();
}

#[test]
fn rfc9110_9_3_2_streamed_response_to_head_has_no_body() {
    let (server, _) = start();
    let mut client = connect(server.addr);
    client
        .write_all(
            b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut client, &mut buf);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    let (head, body) = read_response(&mut client, &mut buf);
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body, "/after\n");
    server.stop().unwrap();
}

#[test]
fn upgrade_hands_raw_bytes_to_the_handler_and_back() {
    let (server, seen) = start();
    let mut client = connect(server.addr);
    // Bytes right behind the upgrade request belong to the new protocol.
    client
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly")
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut client, &mut buf);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nUpgrade: echo\r\n"));
    assert!(!head.contains("Content-Length"));
    read_n(&mut client, &mut buf, 5);
    assert_eq!(buf.drain(..5).collect::<Vec<_>>(), b"early");
    for msg in [&b"ping"[..], b"GET / HTTP/1.1\r\n\r\n", &[0u8, 255, 13, 10]] {
        client.write_all(msg).unwrap();
        read_n(&mut client, &mut buf, msg.len());
        assert_eq!(buf.drain(..msg.len()).collect::<Vec<_>>(), msg);
    }
    client.write_all(b"bye").unwrap();
    read_to_eof(&mut client, &mut buf);
    assert_eq!(buf, b"bye");
    // The server sent FIN and lingers until the client closes too.
    drop(client);
    wait_until(&seen, "the handler hearing of the close", |s| {
        !s.closes.is_empty()
    });
    server.stop().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.closes, vec![(1, CloseReason::Done)]);
}

#[test]
fn abort_closes_a_connection_whose_peer_stopped_reading_dropping_its_queue() {
    let (server, seen) = start();
    let mut client = connect(server.addr);
    client
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
        )
        .unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut client, &mut buf);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let asked = Instant::now();
    client.write_all(b"flood").unwrap();
    // The client reads nothing: the close after output could never happen; the
    // abort 200 ms later closes the connection all the same.
    wait_until(&seen, "the handler hearing of the abort", |s| {
        !s.closes.is_empty()
    });
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert_eq!(seen.lock().unwrap().closes, vec![(1, CloseReason::Done)]);
    let deadline = Instant::now() + READ_TIMEOUT;
    while server.handle.stats().connections_open > 0 {
        assert!(Instant::now() < deadline, "the server still counts it open");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Reading at last, the client gets what the kernel had taken, then the end:
    // the rest of the queue was dropped.
    buf.clear();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match client.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    assert!(buf.len() < FLOOD_BLOCKS * 64 * 1024, "{} bytes", buf.len());
    server.stop().unwrap();
}

#[test]
fn handler_sees_its_connections_queued_output() {
    let (server, _) = start();
    let mut client = connect(server.addr);
    client
        .write_all(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let (_, body) = read_response(&mut client, &mut buf);
    assert_eq!(body, "Some(0)\n");
    server.stop().unwrap();
}

#[test]
fn each_request_reports_its_costs() {
    let (server, seen) = start();
    let mut client = connect(server.addr);
    let request = b"GET /costly HTTP/1.1\r\nHost: x\r\n\r\n";
    client.write_all(request).unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut client, &mut buf);
    drop(client);
    wait_until(&seen, "the handler hearing of the close", |s| {
        !s.closes.is_empty()
    });
    server.stop().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.closes, vec![(1, CloseReason::PeerClosed)]);
    assert_eq!(seen.costs.len(), 1);
    let cost = &seen.costs[0];
    assert_eq!(cost.conn, 1);
    assert_eq!(cost.index, 0);
    assert_eq!(cost.status, 200);
    assert_eq!(cost.label.as_bytes(), b"GET /costly HTTP/1.1");
    assert_eq!(cost.head_bytes, request.len() as u64);
    assert_eq!(cost.bytes_in(), request.len() as u64);
    assert_eq!(cost.bytes_out, (head.len() + body.len()) as u64);
    // The read that brought the request, and the one that found the socket empty.
    assert!(cost.read_calls >= 2, "{cost:?}");
    assert!(cost.read_would_block >= 1, "{cost:?}");
    assert!(cost.write_calls >= 1, "{cost:?}");
    let (parsed, body_done, handled, written) = (
        cost.head_parsed.unwrap(),
        cost.body_done.unwrap(),
        cost.handler_done.unwrap(),
        cost.written.unwrap(),
    );
    assert!(cost.accepted <= cost.first_byte);
    assert!(cost.first_byte <= parsed && parsed <= body_done);
    assert!(body_done <= handled && handled <= written);
    let timeline = cost.timeline().to_string();
    assert!(
        timeline.contains("conn 1 request 0: GET /costly HTTP/1.1 -> 200"),
        "{timeline}"
    );
    assert!(timeline.contains("response written"), "{timeline}");
}

#[test]
fn close_reasons_reach_the_handler() {
    let (server, seen) = start();
    let mut bad = connect(server.addr);
    bad.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    read_to_eof(&mut bad, &mut buf);
    assert!(buf.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    drop(bad);
    wait_until(&seen, "the handler hearing of the close", |s| {
        !s.closes.is_empty()
    });
    let mut kept = connect(server.addr);
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    read_response(&mut kept, &mut buf);
    server.stop().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.closes,
        vec![(1, CloseReason::BadRequest), (2, CloseReason::Shutdown)]
    );
}
