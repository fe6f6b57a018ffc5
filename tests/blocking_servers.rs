//! The blocking servers (`server::blocking`) against the event loop, over real
//! TCP on 127.0.0.1:0.
//!
//! - Same handler, same bytes: for the same requests, a thread per connection and
//!   a fixed pool answer exactly what the loop answers (the `Date` value aside):
//!   a request's anatomy, a body echoed, a chunked body, two requests on one
//!   kept-alive connection (RFC 9112 §9.3), a bad request answered 400 and closed.
//! - What blocking costs: a pool of 2 threads held by 4 slow clients answers no
//!   other client while they hold it, where the loop and a thread per connection
//!   answer every one; asserted on counts of answers, with generous bounds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::blocking::{BlockingServer, Model};
use wirepatterns::server::{Config, Running, Server};

/// How long a test waits for an answer that must come: far more than it takes.
const GENEROUS: Duration = Duration::from_secs(10);

fn config() -> Config {
    Config::new("127.0.0.1:0".parse().unwrap())
}

/// The three servers, each serving `RequestResponse`.
struct Three {
    event_loop: Running<RequestResponse>,
    threads: BlockingServer,
    pool: BlockingServer,
}

impl Three {
    fn start(config: Config, pool_threads: usize) -> Three {
        Three {
            event_loop: Server::bind(config.clone(), RequestResponse::new())
                .unwrap()
                .spawn()
                .unwrap(),
            threads: BlockingServer::spawn(
                config.clone(),
                Model::ThreadPerConnection,
                RequestResponse::new,
            )
            .unwrap(),
            pool: BlockingServer::spawn(
                config,
                Model::Pool {
                    threads: pool_threads,
                },
                RequestResponse::new,
            )
            .unwrap(),
        }
    }

    fn addrs(&self) -> [(&'static str, SocketAddr); 3] {
        [
            ("loop", self.event_loop.addr),
            ("thread per connection", self.threads.addr()),
            ("pool", self.pool.addr()),
        ]
    }

    fn stop(self) {
        self.event_loop.stop().unwrap();
        self.threads.stop();
        self.pool.stop();
    }
}

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GENEROUS)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("reading from {addr}: {e}, after {answer:?}"));
    answer
}

/// The answer with every `Date` value replaced by a fixed one (it is the one part
/// that depends on when the request was answered).
fn without_dates(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let mut out = String::new();
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("\r\nDate: ") {
        let value = at + "\r\nDate: ".len();
        out.push_str(&rest[..value]);
        out.push_str("<date>");
        let end = rest[value..].find("\r\n").map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Sends `request` to all three servers; asserts they answer the same bytes and
/// returns that answer.
fn same_answer(request: &[u8]) -> String {
    let servers = Three::start(config(), 4);
    let answers: Vec<(&str, String)> = servers
        .addrs()
        .iter()
        .map(|&(name, addr)| (name, without_dates(&exchange(addr, request))))
        .collect();
    servers.stop();
    let (_, expected) = &answers[0];
    for (name, answer) in &answers[1..] {
        assert_eq!(answer, expected, "{name} answers differently from the loop");
    }
    expected.clone()
}

#[test]
fn get_is_answered_with_the_same_anatomy_as_the_loop() {
    let answer = same_answer(b"GET /search?q=tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nDate: <date>\r\n"), "{answer}");
    assert!(answer.contains("  query:          q=tcp\n"), "{answer}");
    assert!(
        answer.ends_with("connection: close after this response\n"),
        "{answer}"
    );
}

#[test]
fn post_body_is_echoed_as_the_loop_echoes_it() {
    let answer = same_answer(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\necho me",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Content-Length: 7\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\necho me"), "{answer}");
}

#[test]
fn chunked_body_comes_back_without_its_framing_as_from_the_loop() {
    let answer = same_answer(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert!(answer.contains("Content-Length: 11\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhello world"), "{answer}");
}

#[test]
fn rfc9112_9_3_two_requests_on_one_kept_alive_connection_as_on_the_loop() {
    let answer = same_answer(
        b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond",
    );
    assert_eq!(answer.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{answer}");
    let first = answer.find("GET /first").expect("first answered");
    let second = answer.find("\r\n\r\nsecond").expect("second answered");
    assert!(first < second, "answers out of order: {answer}");
    assert!(answer.contains("connection: keep-alive\n"), "{answer}");
}

#[test]
fn bad_request_gets_400_naming_the_rule_then_close_as_from_the_loop() {
    // No Host in an HTTP/1.1 request (RFC 9112 §3.2); the request after it is
    // never answered.
    let answer = same_answer(b"GET / HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
    assert!(answer.contains("Host"), "{answer}");
    assert!(!answer.contains("/after"), "{answer}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

/// A client that sends the start of a request head and then nothing: it holds
/// its connection (and, on a blocking server, the thread serving it).
fn slow_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /slow HTTP/1.1\r\nHo").unwrap();
    stream
}

/// Waits (bounded) until `accepted()` reaches `n`.
fn wait_accepted(n: u64, accepted: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + GENEROUS;
    while accepted() < n && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    accepted()
}

/// Sends `count` complete requests at once, each on its own connection, and
/// counts those answered within `bound`.
fn fast_requests_answered(addr: SocketAddr, count: usize, bound: Duration) -> usize {
    let clients: Vec<_> = (0..count)
        .map(|_| {
            thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect_timeout(&addr, bound) else {
                    return false;
                };
                let _ = stream.set_read_timeout(Some(bound));
                if stream
                    .write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .is_err()
                {
                    return false;
                }
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                answer.starts_with(b"HTTP/1.1 200 OK\r\n")
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join())
        .filter(|answered| matches!(answered, Ok(true)))
        .count()
}

#[test]
fn a_pool_held_by_slow_clients_answers_nobody_while_the_loop_and_threads_answer_all() {
    const POOL: usize = 2;
    const SLOW: usize = 4;
    const FAST: usize = 3;
    // The header timeout would free the pool's threads (408): far beyond the test.
    let mut config = config();
    config.header_timeout = Duration::from_secs(120);
    let servers = Three::start(config, POOL);

    let mut slow = Vec::new();
    for (_, addr) in servers.addrs() {
        for _ in 0..SLOW {
            slow.push(slow_client(addr));
        }
    }
    let loop_accepted = wait_accepted(SLOW as u64, || {
        servers.event_loop.handle.stats().connections_accepted
    });
    let threads_accepted =
        wait_accepted(SLOW as u64, || servers.threads.stats().connections_accepted);
    let pool_accepted = wait_accepted(POOL as u64, || servers.pool.stats().connections_accepted);
    assert_eq!(loop_accepted, SLOW as u64);
    assert_eq!(threads_accepted, SLOW as u64);
    // Every pool thread is now asleep in read(), on a slow client.
    assert_eq!(pool_accepted, POOL as u64);
    assert_eq!(servers.threads.stats().threads_now, SLOW as u64);

    // The fast clients of all three servers at once: the test takes one bound.
    let bound = Duration::from_secs(5);
    let [(_, loop_addr), (_, threads_addr), (_, pool_addr)] = servers.addrs();
    let on_loop = thread::spawn(move || fast_requests_answered(loop_addr, FAST, bound));
    let on_threads = thread::spawn(move || fast_requests_answered(threads_addr, FAST, bound));
    let on_pool = fast_requests_answered(pool_addr, FAST, bound);
    let on_loop = on_loop.join().unwrap();
    let on_threads = on_threads.join().unwrap();
    assert_eq!(on_loop, FAST, "the loop answers beside slow clients");
    assert_eq!(
        on_threads, FAST,
        "a thread per connection answers beside slow clients"
    );
    assert_eq!(
        on_pool, 0,
        "the pool's threads are all held by slow clients"
    );
    // A thread per connection paid a thread for every slow client.
    assert!(servers.threads.stats().threads_peak >= (SLOW + 1) as u64);
    assert!(servers.pool.stats().threads_peak == POOL as u64);

    // Once the slow clients leave, the pool serves again.
    drop(slow);
    assert_eq!(fast_requests_answered(pool_addr, 1, GENEROUS), 1);
    servers.stop();
}

#[test]
fn stop_ends_idle_kept_alive_connections_and_joins() {
    for model in [Model::ThreadPerConnection, Model::Pool { threads: 2 }] {
        let server = BlockingServer::spawn(config(), model, RequestResponse::new).unwrap();
        let mut idle = TcpStream::connect(server.addr()).unwrap();
        idle.set_read_timeout(Some(GENEROUS)).unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = idle.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"), "{model}");
        let started = Instant::now();
        let stats = server.stop();
        assert!(started.elapsed() < GENEROUS, "{model}: stop took too long");
        assert_eq!(stats.responses, 1, "{model}");
        assert_eq!(stats.connections_open, 0, "{model}");
        // The kept-alive connection was closed by the server.
        let mut rest = Vec::new();
        assert_eq!(idle.read_to_end(&mut rest).unwrap_or(0), 0, "{model}");
    }
}

#[test]
fn a_deferred_answer_is_refused_with_501_by_a_blocking_server() {
    use wirepatterns::http::Response;
    use wirepatterns::server::{Context, Handler, Incoming, Reply};

    struct Defers;
    impl Handler for Defers {
        fn on_request(&mut self, _: &mut Context<'_>, _: &Incoming<'_>, _: &mut Response) -> Reply {
            Reply::Deferred
        }
    }
    let server = BlockingServer::spawn(config(), Model::ThreadPerConnection, || Defers).unwrap();
    let answer = exchange(server.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    server.stop();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 501 Not Implemented\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Connection: close\r\n"), "{answer}");
}
