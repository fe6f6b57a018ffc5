//! The WebSocket glue with small applications of its own, over TCP: what reaches
//! the application at the handshake, and the close handshake the server starts.

mod ws_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::patterns::websocket::{
    Message, Opened, WsApp, WsClosed, WsConfig, WsContext, WsServer,
};
use wirepatterns::server::{Config, ConnId, Running, Server};
use wirepatterns::ws::CloseCode;
use ws_support::*;

/// What the application saw, shared with the test.
#[derive(Debug, Default)]
struct Seen {
    opened: Vec<(u16, Option<String>, String)>,
    messages: Vec<String>,
    closed: Vec<WsClosed>,
}

/// Records everything; a message "close" starts the close handshake with 4000,
/// "fail" fails the connection with 1008. "flood close" and "flood fail" first
/// queue [`FLOOD_FRAMES`] binary messages of 64 KiB, more than the kernel's
/// buffers between the server and a client that does not read can hold.
struct Recorder(Arc<Mutex<Seen>>);

impl WsApp for Recorder {
    fn on_open(&mut self, _: &mut WsContext<'_, '_>, _: ConnId, opened: &Opened<'_>) {
        let origin = opened
            .origin
            .map(|o| String::from_utf8_lossy(o).into_owned());
        if let Ok(mut seen) = self.0.lock() {
            seen.opened
                .push((opened.peer.port(), origin, opened.target.to_string()));
        }
    }

    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        let Message::Text(text) = msg else { return };
        if let Ok(mut seen) = self.0.lock() {
            seen.messages.push(text.to_string());
        }
        let then = match text.strip_prefix("flood ") {
            Some(then) => {
                let block = vec![0u8; 64 * 1024];
                for _ in 0..FLOOD_FRAMES {
                    ws.send_binary(conn, &block);
                }
                then
            }
            None => text,
        };
        match then {
            "close" => ws.close(conn, CloseCode(4000), "asked to"),
            "fail" => ws.fail(conn, CloseCode::POLICY_VIOLATION, "asked to"),
            _ => {}
        }
    }

    fn on_close(&mut self, _: &mut WsContext<'_, '_>, _: ConnId, closed: WsClosed) {
        if let Ok(mut seen) = self.0.lock() {
            seen.closed.push(closed);
        }
    }
}

/// Binary messages of 64 KiB queued by "flood ...": 16 MiB, about four times
/// what the loopback buffers took from a client that does not read, when
/// measured.
const FLOOD_FRAMES: usize = 256;

fn start(config: WsConfig) -> (Running<WsServer<Recorder>>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Recorder(Arc::clone(&seen));
    let server = Server::bind(
        Config::new(SocketAddr::from(([127, 0, 0, 1], 0))),
        WsServer::new(config, app),
    )
    .and_then(Server::spawn)
    .expect("server starts");
    (server, seen)
}

/// Waits (bounded) until `ready` holds for what the application saw.
fn seen_when(seen: &Mutex<Seen>, ready: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + READ_TIMEOUT;
    while Instant::now() < deadline {
        if seen.lock().map(|s| ready(&s)).unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the application never saw it: {seen:?}");
}

#[test]
fn origin_port_and_target_reach_the_application() {
    let (server, seen) = start(no_pings());
    let raw = RawWs::open(
        server.addr,
        &handshake_request("/room?x=1", "Origin: http://127.0.0.1:8080\r\n"),
    );
    assert!(raw.response.starts_with("HTTP/1.1 101 "));
    seen_when(&seen, |s| !s.opened.is_empty());
    let opened = seen.lock().expect("lock").opened.clone();
    assert_eq!(
        opened,
        [(
            raw.port,
            Some("http://127.0.0.1:8080".to_string()),
            "/room?x=1".to_string()
        )]
    );
    server.stop().expect("stops");
}

#[test]
fn rfc6455_7_1_2_server_close_waits_for_the_peers_answer_then_closes_tcp() {
    let (server, seen) = start(no_pings());
    let mut raw = RawWs::connect(server.addr);
    raw.send_text("close");
    let close = raw.read_data_or_close().expect("close frame");
    assert_eq!(close.close_code(), Some(4000));
    assert_eq!(&close.payload[2..], b"asked to");
    // The application hears of it at once; a message sent now is not delivered.
    seen_when(&seen, |s| s.closed == [WsClosed::ByServer(CloseCode(4000))]);
    raw.send_text("too late");
    // Our answer completes the handshake: the server closes TCP, sending nothing
    // more (no second close frame).
    raw.send(&client_frame(
        true,
        0x8,
        &4000u16.to_be_bytes(),
        Some([1, 2, 3, 4]),
    ));
    assert!(raw.at_eof());
    let app = server.stop().expect("stops");
    assert_eq!(seen.lock().expect("lock").messages, ["close"]);
    assert_eq!(app.stats().closed_by_server, 1);
}

#[test]
fn rfc6455_7_1_1_unanswered_server_close_ends_tcp_after_the_close_timeout() {
    let config = WsConfig {
        close_timeout: Duration::from_millis(200),
        ..no_pings()
    };
    let (server, _seen) = start(config);
    let mut raw = RawWs::connect(server.addr);
    let sent = Instant::now();
    raw.send_text("close");
    let close = raw.read_data_or_close().expect("close frame");
    assert_eq!(close.close_code(), Some(4000));
    // We never answer: TCP ends anyway, after about the close timeout.
    assert!(raw.at_eof());
    let waited = sent.elapsed();
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    server.stop().expect("stops");
}

#[test]
fn fail_sends_the_close_frame_and_ends_tcp_at_once() {
    let (server, seen) = start(no_pings());
    let mut raw = RawWs::connect(server.addr);
    raw.send_text("fail");
    let close = raw.read_data_or_close().expect("close frame");
    assert_eq!(close.close_code(), Some(1008));
    assert!(raw.at_eof());
    seen_when(&seen, |s| {
        s.closed == [WsClosed::ByServer(CloseCode::POLICY_VIOLATION)]
    });
    server.stop().expect("stops");
}

#[test]
fn on_close_comes_once_per_websocket_whichever_way_it_ends() {
    let (server, seen) = start(no_pings());
    // By the peer's close frame, by a protocol error, by hanging up.
    let mut by_close = RawWs::connect(server.addr);
    by_close.send(&client_frame(
        true,
        0x8,
        &1000u16.to_be_bytes(),
        Some([1, 2, 3, 4]),
    ));
    assert!(by_close.read_data_or_close().is_some() && by_close.at_eof());
    let mut by_error = RawWs::connect(server.addr);
    by_error.send(&client_frame(true, 0x1, b"unmasked", None));
    assert!(by_error.read_data_or_close().is_some() && by_error.at_eof());
    drop(RawWs::connect(server.addr));
    seen_when(&seen, |s| s.closed.len() >= 3);
    server.stop().expect("stops");
    let closed = seen.lock().expect("lock").closed.clone();
    assert_eq!(closed.len(), 3, "{closed:?}");
    assert!(closed.contains(&WsClosed::ByPeer(Some(CloseCode::NORMAL))));
    assert!(closed.contains(&WsClosed::ProtocolError(
        wirepatterns::ws::WsError::UnmaskedFrame
    )));
    assert!(
        closed.iter().any(|c| matches!(c, WsClosed::Dropped(_))),
        "{closed:?}"
    );
}

/// A client that stopped reading while the server queued 16 MiB for it, then
/// asked it (`command`) to close: its TCP connection must end at the close
/// timeout (300 ms), not at the driver's idle timeout (60 s). Checks what the
/// client finds when it reads at last: part of the messages, no close frame (it
/// was dropped with the rest of the queue), then the end of the connection.
/// Returns how the application was told the WebSocket ended.
fn stalled_client_is_cut_off_at_the_close_timeout(command: &str) -> WsClosed {
    let close_timeout = Duration::from_millis(300);
    let config = WsConfig {
        close_timeout,
        ..no_pings()
    };
    let (server, seen) = start(config);
    let mut raw = RawWs::connect(server.addr);
    let asked = Instant::now();
    raw.send_text(command);
    seen_when(&seen, |s| !s.closed.is_empty());
    // The server's own count of open connections: it drops when TCP is closed.
    let deadline = asked + Duration::from_secs(5);
    while server.handle.stats().connections_open > 0 {
        assert!(
            Instant::now() < deadline,
            "still open {:?} after the close: {:?}",
            asked.elapsed(),
            server.handle.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = asked.elapsed();
    assert!(
        took >= close_timeout,
        "closed before the close timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    let mut messages = 0;
    while let Some(frame) = raw.read_frame() {
        assert_eq!(
            frame.opcode, 0x2,
            "only the binary messages, no close frame"
        );
        messages += 1;
    }
    assert!(messages < FLOOD_FRAMES, "the queue was dropped: {messages}");

    let app = server.stop().expect("stops");
    assert_eq!(app.stats().close_timeouts, 1, "{:?}", app.stats());
    assert_eq!(app.stats().closed_by_server, 1);
    let closed = seen.lock().expect("lock").closed.clone();
    assert_eq!(closed.len(), 1, "told once: {closed:?}");
    closed[0]
}

#[test]
fn rfc6455_7_1_7_failed_client_that_stopped_reading_is_closed_at_the_close_timeout() {
    let closed = stalled_client_is_cut_off_at_the_close_timeout("flood fail");
    assert_eq!(closed, WsClosed::ByServer(CloseCode::POLICY_VIOLATION));
}

#[test]
fn rfc6455_7_1_1_closed_client_that_stopped_reading_is_closed_at_the_close_timeout() {
    let closed = stalled_client_is_cut_off_at_the_close_timeout("flood close");
    assert_eq!(closed, WsClosed::ByServer(CloseCode(4000)));
}
