//! Outgoing connections on the loop (`Context::connect`): bytes sent before the
//! connect completes wait for it, replies come to `on_out_data`, and every
//! connection ends exactly once in `on_out_closed`, with the right reason: a
//! refused connect, a peer that closes, a close the application asked for.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wirepatterns::http::Response;
use wirepatterns::server::{
    Config, Context, Handler, Incoming, OutEnd, OutId, Reply, Server, TimerId,
};

/// What happened, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// On start, connects to each address and sends `hello\n` at once; echoes what
/// comes back into the log; closes a connection itself once it has read
/// `bye`.
struct Dialer {
    targets: Vec<SocketAddr>,
    ids: Vec<OutId>,
    /// What each connection received so far (a read may cut anywhere).
    received: Vec<Vec<u8>>,
    log: Log,
}

impl Dialer {
    fn name(&self, out: OutId) -> usize {
        self.ids
            .iter()
            .position(|&o| o == out)
            .unwrap_or(usize::MAX)
    }

    fn note(&self, line: String) {
        self.log.lock().expect("log").push(line);
    }
}

impl Handler for Dialer {
    fn on_request(&mut self, _: &mut Context<'_>, _: &Incoming<'_>, _: &mut Response) -> Reply {
        Reply::Respond
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        for &addr in &self.targets {
            let out = ctx.connect(addr);
            assert!(ctx.send_out(out, b"hello\n"), "queued before connecting");
            self.ids.push(out);
        }
    }

    fn on_out_connected(&mut self, ctx: &mut Context<'_>, out: OutId) {
        assert!(ctx.is_out_connected(out));
        self.note(format!("{} connected", self.name(out)));
    }

    fn on_out_data(&mut self, ctx: &mut Context<'_>, out: OutId, data: &[u8]) {
        let text = String::from_utf8_lossy(data).to_string();
        self.note(format!("{} got {text}", self.name(out)));
        let n = self.name(out);
        if self.received.len() <= n {
            self.received.resize(n + 1, Vec::new());
        }
        let Some(received) = self.received.get_mut(n) else {
            return;
        };
        received.extend_from_slice(data);
        if received.ends_with(b"bye\n") {
            ctx.close_out(out);
            assert!(!ctx.send_out(out, b"more"), "closing: no more sends");
        }
    }

    fn on_out_closed(&mut self, _: &mut Context<'_>, out: OutId, end: OutEnd) {
        let end = match end {
            OutEnd::ConnectFailed(_) => "connect failed".to_string(),
            other => other.to_string(),
        };
        self.note(format!("{} ended: {end}", self.name(out)));
    }

    fn on_timer(&mut self, _: &mut Context<'_>, _: TimerId, _: u64) {}
}

/// A peer that reads one line, answers it, then says `bye` (`close_after` =
/// false) or closes its end (`true`).
fn peer(close_after: bool) -> (SocketAddr, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let join = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        s.write_all(b"echo ").expect("write");
        s.write_all(&got).expect("write");
        if close_after {
            return String::from_utf8_lossy(&got).to_string();
        }
        s.write_all(b"bye\n").expect("write");
        // Wait for the dialer's close: end of file.
        let n = s.read(&mut buf).unwrap_or(1);
        assert_eq!(n, 0, "the dialer closes after bye");
        String::from_utf8_lossy(&got).to_string()
    });
    (addr, join)
}

/// A loopback port nobody listens on.
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[test]
fn outgoing_connections_connect_exchange_and_end_once_each() {
    let (a, join_a) = peer(false);
    let (b, join_b) = peer(true);
    let refused = closed_port();
    let log = Log::default();
    let dialer = Dialer {
        targets: vec![a, b, refused],
        ids: Vec::new(),
        received: Vec::new(),
        log: Arc::clone(&log),
    };
    let config = Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    let running = Server::bind(config, dialer)
        .expect("bind")
        .spawn()
        .expect("spawn");

    // Each peer saw the bytes queued before the connect completed.
    assert_eq!(join_a.join().expect("peer a"), "hello\n");
    assert_eq!(join_b.join().expect("peer b"), "hello\n");

    let deadline = Instant::now() + Duration::from_secs(10);
    let ended = |log: &Log| {
        log.lock()
            .expect("log")
            .iter()
            .filter(|l| l.contains("ended"))
            .count()
    };
    while ended(&log) < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    running.stop().expect("stop");
    let log = log.lock().expect("log").clone();
    let of = |n: usize| -> Vec<&str> {
        log.iter()
            .filter(|l| l.starts_with(&format!("{n} ")))
            .map(String::as_str)
            .collect()
    };
    // Replies may arrive in one read or several, cut anywhere: join what each
    // got.
    let joined = |n: usize| -> String {
        of(n)
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{n} got ")))
            .collect::<String>()
    };
    assert_eq!(of(0).first().copied(), Some("0 connected"), "{log:?}");
    assert_eq!(joined(0), "echo hello\nbye\n", "{log:?}");
    assert_eq!(of(0).last().copied(), Some("0 ended: closed"), "{log:?}");
    assert_eq!(of(1).first().copied(), Some("1 connected"), "{log:?}");
    assert_eq!(joined(1), "echo hello\n", "{log:?}");
    assert_eq!(
        of(1).last().copied(),
        Some("1 ended: closed by the peer"),
        "{log:?}"
    );
    assert_eq!(of(2), ["2 ended: connect failed"], "{log:?}");
    for n in 0..3 {
        let ends = of(n).iter().filter(|l| l.contains("ended")).count();
        assert_eq!(ends, 1, "connection {n} ends once: {log:?}");
    }
}

/// Sends 8 MiB to a peer that never reads, then aborts; and closes a second
/// connection before it ever started.
struct Aborter {
    target: SocketAddr,
    stuck: Option<OutId>,
    log: Log,
}

impl Handler for Aborter {
    fn on_request(&mut self, _: &mut Context<'_>, _: &Incoming<'_>, _: &mut Response) -> Reply {
        Reply::Respond
    }

    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let stuck = ctx.connect(self.target);
        assert!(ctx.send_out(stuck, &vec![b'x'; 8 << 20]));
        self.stuck = Some(stuck);
        let never = ctx.connect(self.target);
        ctx.close_out(never);
        ctx.set_timer(Duration::from_millis(300), 0);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId, _: u64) {
        if let Some(stuck) = self.stuck {
            let queued = ctx.out_queued(stuck).unwrap_or(0);
            self.log
                .lock()
                .expect("log")
                .push(format!("queued {}", queued > 0));
            // A graceful close would wait for ever: the peer does not read.
            ctx.close_out(stuck);
            ctx.abort_out(stuck);
        }
    }

    fn on_out_closed(&mut self, _: &mut Context<'_>, out: OutId, end: OutEnd) {
        let which = if Some(out) == self.stuck {
            "stuck"
        } else {
            "never"
        };
        self.log
            .lock()
            .expect("log")
            .push(format!("{which} ended: {end}"));
    }
}

#[test]
fn an_abort_drops_what_a_stuck_peer_never_read_and_a_close_before_connecting_ends_at_once() {
    // Accepts, never reads: its receive window fills and our writes stop.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = listener.local_addr().expect("addr");
    let holder = thread::spawn(move || {
        let mut kept = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                kept.push(s);
            }
            thread::sleep(Duration::from_millis(5));
        }
        kept.len()
    });
    let log = Log::default();
    let aborter = Aborter {
        target,
        stuck: None,
        log: Arc::clone(&log),
    };
    let config = Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    };
    let running = Server::bind(config, aborter)
        .expect("bind")
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(4);
    while log.lock().expect("log").len() < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    running.stop().expect("stop");
    let log = log.lock().expect("log").clone();
    assert_eq!(
        log,
        ["never ended: closed", "queued true", "stuck ended: closed"],
        "{log:?}"
    );
    assert!(
        holder.join().expect("holder") <= 1,
        "the closed one never connected"
    );
}
