//! The driver's defects that only show through the real loop: a client that hangs
//! up on a held request or a stream, a timer re-armed with zero delay, and memory
//! kept after a burst. Each test waits on the server's own state, bounded in time.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::http::Response;
use wirepatterns::server::{
    CloseReason, Config, ConnId, Context, Handler, Incoming, Reply, Running, Server, ServerStats,
    TimerId,
};

const WAIT: Duration = Duration::from_secs(5);

/// What the application saw, shared with the test.
#[derive(Default)]
struct Seen {
    closes: Vec<(ConnId, CloseReason)>,
    held: Vec<ConnId>,
    /// Timer callbacks in each loop turn that had any.
    fires_per_turn: Vec<u32>,
    fires_this_turn: u32,
    fires_total: u32,
}

struct App {
    seen: Arc<Mutex<Seen>>,
}

/// Zero-delay re-arms before the application stops re-arming.
const REARMS: u32 = 50_000;

impl Handler for App {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        match req.request().path() {
            "/hold" => {
                self.seen.lock().unwrap().held.push(req.conn());
                Reply::Deferred
            }
            "/stuck" => Reply::Deferred,
            "/stream" => {
                self.seen.lock().unwrap().held.push(req.conn());
                res.body_mut().extend_from_slice(b"first part\n");
                Reply::Stream
            }
            "/spin" => {
                ctx.set_timer(Duration::ZERO, 0);
                Reply::Respond
            }
            "/upgrade" => {
                res.set_status(101);
                res.header("Upgrade", "burst");
                res.header("Connection", "Upgrade");
                Reply::Upgrade
            }
            _ => Reply::Respond,
        }
    }

    fn on_upgraded_data(&mut self, ctx: &mut Context<'_>, conn: ConnId, data: &mut [u8]) -> usize {
        // Each byte asks for a burst of 400 frames of 300 bytes.
        for _ in 0..data.len() * 400 {
            ctx.send_raw(conn, &[b'f'; 300]);
        }
        data.len()
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId, _: u64) {
        let mut seen = self.seen.lock().unwrap();
        seen.fires_this_turn += 1;
        seen.fires_total += 1;
        if seen.fires_total < REARMS {
            ctx.set_timer(Duration::ZERO, 0);
        }
    }

    fn on_turn_end(&mut self, _: &mut Context<'_>) {
        let mut seen = self.seen.lock().unwrap();
        let n = std::mem::take(&mut seen.fires_this_turn);
        if n > 0 {
            seen.fires_per_turn.push(n);
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        // Held requests get an answer; `/stuck` ones are left to the grace period.
        for conn in self.seen.lock().unwrap().held.clone() {
            ctx.respond(conn, Response::text(200, "shutting down\n"));
        }
    }

    fn on_close(&mut self, _: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        self.seen.lock().unwrap().closes.push((conn, reason));
    }
}

fn start(config: Config) -> (Running<App>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = App {
        seen: Arc::clone(&seen),
    };
    let server = Server::bind(config, app).unwrap().spawn().unwrap();
    (server, seen)
}

fn config() -> Config {
    Config::new("127.0.0.1:0".parse().unwrap())
}

/// Waits, bounded, until `done` holds for what the application saw.
fn wait_seen(seen: &Mutex<Seen>, what: &str, done: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(&seen.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits, bounded, until `done` holds for the server's totals.
fn wait_stats(
    server: &Running<App>,
    what: &str,
    done: impl Fn(&ServerStats) -> bool,
) -> ServerStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = server.handle.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn hang_up_on(path: &str, half_close: bool) -> (ConnId, CloseReason) {
    let (server, seen) = start(config());
    let mut client = TcpStream::connect(server.addr).unwrap();
    write!(client, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    wait_seen(&seen, "the request to be held", |s| s.held.len() == 1);
    if path == "/stream" {
        // Read what was sent, so that closing is a FIN (closing with unread
        // bytes would be a reset, reported as an error).
        client.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"first part\n\r\n") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
    }
    if half_close {
        client.shutdown(Shutdown::Write).unwrap();
    } else {
        drop(client);
    }
    // The handler never writes again: only the end of file can tell it.
    wait_seen(&seen, "on_close", |s| !s.closes.is_empty());
    server.stop().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.closes.len(), 1);
    assert_eq!(seen.closes[0].0, seen.held[0]);
    seen.closes[0]
}

#[test]
fn a_held_request_notices_its_client_hanging_up_at_once() {
    assert_eq!(hang_up_on("/hold", false).1, CloseReason::PeerClosed);
}

#[test]
fn a_held_request_takes_a_half_close_for_the_client_leaving() {
    assert_eq!(hang_up_on("/hold", true).1, CloseReason::PeerClosed);
}

#[test]
fn a_stream_notices_its_client_hanging_up_at_once() {
    assert_eq!(hang_up_on("/stream", false).1, CloseReason::PeerClosed);
}

#[test]
fn a_request_answered_at_once_still_reaches_a_client_that_half_closed() {
    let (server, _) = start(config());
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .write_all(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.stop().unwrap();
}

#[test]
fn a_timer_rearmed_with_zero_delay_fires_once_per_turn() {
    let (server, seen) = start(config());
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .write_all(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // 1,000 turns are enough to see the pattern; the loop must also still answer.
    wait_seen(&seen, "1000 turns with a timer", |s| {
        s.fires_per_turn.len() >= 1000
    });
    let mut client2 = TcpStream::connect(server.addr).unwrap();
    client2
        .write_all(b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    client2.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = String::new();
    client2.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    server.stop().unwrap();
    let seen = seen.lock().unwrap();
    let most = seen.fires_per_turn.iter().max().copied().unwrap_or(0);
    assert_eq!(most, 1, "only timers due when a pass began may fire in it");
}

#[test]
fn buffer_capacity_at_rest_is_the_same_before_and_after_a_burst() {
    let config = Config {
        idle_release: Duration::from_millis(100),
        ..config()
    };
    let (server, _) = start(config);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 1024];
    let n = client.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 101 "));
    let at_rest = |server: &Running<App>| {
        // At rest: the same value twice, 300 ms (3 idle_release) apart.
        let deadline = Instant::now() + WAIT;
        let mut last = server.handle.stats().buffer_capacity_bytes;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = server.handle.stats().buffer_capacity_bytes;
            if now == last {
                return now;
            }
            assert!(Instant::now() < deadline, "buffers never settle");
            last = now;
        }
    };
    let before = at_rest(&server);
    // The burst: 400 frames of 300 bytes, read in full.
    client.write_all(b"!").unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < 400 * 300 {
        got += client.read(&mut buf).unwrap();
    }
    let during = wait_stats(&server, "the burst's buffers", |s| s.bytes_out >= 400 * 300)
        .buffer_capacity_bytes;
    let after = at_rest(&server);
    server.stop().unwrap();
    assert!(
        during > before,
        "the burst grew buffers: {before} -> {during}"
    );
    assert_eq!(
        after, before,
        "given back after the burst (during: {during})"
    );
}

/// Reads until end of file (bounded by the read timeout).
fn read_to_end(client: &mut TcpStream) -> String {
    client.set_read_timeout(Some(WAIT)).unwrap();
    let mut all = Vec::new();
    client.read_to_end(&mut all).unwrap();
    String::from_utf8(all).unwrap()
}

#[test]
fn graceful_shutdown_answers_held_requests_and_closes_idle_connections() {
    let config = Config {
        shutdown_grace: Duration::from_secs(60),
        ..config()
    };
    let (server, seen) = start(config);
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut held = TcpStream::connect(server.addr).unwrap();
    held.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_seen(&seen, "the request to be held", |s| s.held.len() == 1);
    wait_stats(&server, "the first answer", |s| s.responses == 1);
    let started = Instant::now();
    server.stop().unwrap();
    // Nothing waited for the 60 s grace: every connection finished at once.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let idle_saw = read_to_end(&mut idle);
    assert!(idle_saw.starts_with("HTTP/1.1 200 OK\r\n"), "{idle_saw}");
    assert_eq!(
        idle_saw.matches("HTTP/1.1").count(),
        1,
        "then closed: {idle_saw}"
    );
    let held_saw = read_to_end(&mut held);
    assert!(held_saw.starts_with("HTTP/1.1 200 OK\r\n"), "{held_saw}");
    assert!(held_saw.contains("\r\nConnection: close\r\n"), "{held_saw}");
    assert!(held_saw.ends_with("shutting down\n"), "{held_saw}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.closes.len(), 2);
    assert!(
        seen.closes.iter().any(|c| c.1 == CloseReason::Shutdown),
        "{:?}",
        seen.closes
    );
}

#[test]
fn graceful_shutdown_closes_what_does_not_finish_within_the_grace() {
    let config = Config {
        shutdown_grace: Duration::from_millis(200),
        ..config()
    };
    let (server, seen) = start(config);
    let mut stuck = TcpStream::connect(server.addr).unwrap();
    stuck
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_stats(&server, "the request to be parsed", |s| s.requests == 1);
    server.stop().unwrap();
    assert_eq!(read_to_end(&mut stuck), "", "closed without an answer");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.closes.len(), 1);
    assert_eq!(seen.closes[0].1, CloseReason::Shutdown);
}
