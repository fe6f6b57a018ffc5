//! `Context::pause_reading` and `resume_reading` over TCP: a paused connection's
//! buffered bytes wait unparsed (a pipelined request is handled only after the
//! resume), no parse deadline runs meanwhile, and the connection serves on as
//! before once resumed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wirepatterns::http::Response;
use wirepatterns::server::{Config, Context, Handler, Incoming, Reply, Server, TimerId};

/// What happened, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// `/pause` is answered, then its connection is paused for 400 ms (a timer
/// resumes it); any other path is answered with its name.
struct Pauser {
    log: Log,
    paused: Vec<wirepatterns::server::ConnId>,
}

impl Handler for Pauser {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let path = req.request().path().to_string();
        self.log
            .lock()
            .expect("log")
            .push(format!("request {path}"));
        if path == "/pause" {
            ctx.pause_reading(req.conn());
            self.paused.push(req.conn());
            ctx.set_timer(Duration::from_millis(400), 0);
        }
        res.body_mut().extend_from_slice(path.as_bytes());
        Reply::Respond
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _timer: TimerId, _data: u64) {
        self.log.lock().expect("log").push("resume".into());
        for conn in self.paused.drain(..) {
            ctx.resume_reading(conn);
        }
    }
}

/// Reads responses until `n` bodies ending the stream's `Content-Length`
/// framing have arrived; returns them in order.
fn read_bodies(stream: &mut TcpStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut bodies = Vec::new();
    let mut chunk = [0u8; 4096];
    while bodies.len() < n {
        let got = stream.read(&mut chunk).expect("read");
        assert!(got > 0, "closed after {bodies:?}");
        buf.extend_from_slice(&chunk[..got]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .or_else(|| {
                    head.lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                })
                .and_then(|v| v.trim().parse().ok())
                .expect("Content-Length");
            if buf.len() < end + 4 + len {
                break;
            }
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            bodies.push(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string());
            buf.drain(..end + 4 + len);
        }
    }
    bodies
}

#[test]
fn a_paused_connection_keeps_its_pipelined_request_unparsed_until_resumed() {
    let log: Log = Arc::default();
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"));
    // Far shorter than the pause: a parse deadline running meanwhile would
    // answer the waiting request 408 instead of serving it.
    config.header_timeout = Duration::from_millis(100);
    let app = Pauser {
        log: Arc::clone(&log),
        paused: Vec::new(),
    };
    let server = Server::bind(config, app)
        .and_then(Server::spawn)
        .expect("server");
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // Two requests in one write, and half of a third: all in the server's
    // buffer at once.
    stream
        .write_all(
            b"GET /pause HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /after HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /third HTTP/1.1\r\nHo",
        )
        .expect("write");
    assert_eq!(read_bodies(&mut stream, 1), ["/pause"]);
    stream.write_all(b"st: t\r\n\r\n").expect("write");
    assert_eq!(read_bodies(&mut stream, 2), ["/after", "/third"]);
    // Served on as usual.
    stream
        .write_all(b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    assert_eq!(read_bodies(&mut stream, 1), ["/last"]);
    assert_eq!(
        *log.lock().expect("log"),
        [
            "request /pause",
            "resume",
            "request /after",
            "request /third",
            "request /last"
        ],
        "nothing was parsed while paused"
    );
    let stats = server.handle.stats();
    assert_eq!(stats.timeouts, 0, "no deadline ran while paused");
    server.stop().expect("stops");
}
