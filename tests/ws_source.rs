//! A WebSocket application written from a shared [`FrameLog`] through the glue
//! ([`WsApp::source`]), read by tungstenite, an independent implementation that
//! checks every frame: the glue's own frames (a pong, a close frame) go out only
//! between the log's frames, and once the server sent its close frame nothing
//! from the log follows it.

mod ws_support;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::Message as TMessage;
use wirepatterns::patterns::frame_log::{FrameLog, Pending, ReaderId};
use wirepatterns::patterns::websocket::{Message, Opened, WsApp, WsContext, WsServer};
use wirepatterns::server::{Config, ConnId, Running, Server, Source};
use wirepatterns::ws::{self, CloseCode};
use ws_support::*;

/// Payload bytes of each log message.
const MESSAGE: usize = 2 << 20;
/// Log messages a "go" appends: far more than the sockets hold.
const MESSAGES: u8 = 8;

/// What the application saw, shared with the test thread.
#[derive(Default)]
struct Seen {
    /// Writes that left a reader in the middle of a frame.
    cuts: u64,
}

struct LogWs {
    log: FrameLog,
    readers: HashMap<ConnId, ReaderId>,
    seen: Arc<Mutex<Seen>>,
}

impl WsApp for LogWs {
    fn on_open(&mut self, _: &mut WsContext<'_, '_>, conn: ConnId, _: &Opened<'_>) {
        self.readers.insert(conn, self.log.add_reader());
    }

    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        match msg {
            Message::Text("go") => {
                for i in 0..MESSAGES {
                    let frame = ws::binary_frame(&vec![i; MESSAGE]);
                    self.log.append(&frame).expect("room in the log");
                }
                ws.wake_writer(conn);
                ws.wake_writer(conn);
            }
            Message::Text("bye") => ws.close(conn, CloseCode::NORMAL, "bye"),
            _ => {}
        }
    }

    fn source_done(&mut self, conn: ConnId) {
        if let Some(reader) = self.readers.remove(&conn) {
            self.log.remove_reader(reader);
        }
    }

    fn source(&self, conn: ConnId) -> Source<'_> {
        let Some(&reader) = self.readers.get(&conn) else {
            return Source::NONE;
        };
        match self.log.pending(reader) {
            Pending::Bytes(first, second) => {
                let cursor = self.log.cursor(reader).unwrap_or(0);
                let rest = self.log.frame_end(reader).map_or(0, |end| end - cursor);
                Source::new(first, second, rest as usize)
            }
            Pending::Fallen | Pending::Unknown => Source::NONE,
        }
    }

    fn source_written(&mut self, _: &mut WsContext<'_, '_>, conn: ConnId, n: usize) {
        if let Some(&reader) = self.readers.get(&conn) {
            self.log.consume(reader, n);
            if !self.log.at_boundary(reader) {
                self.seen.lock().unwrap().cuts += 1;
            }
        }
    }
}

fn start() -> (Running<WsServer<LogWs>>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = LogWs {
        log: FrameLog::new(64 << 20),
        readers: HashMap::new(),
        seen: Arc::clone(&seen),
    };
    let config = Config::new(([127, 0, 0, 1], 0).into());
    let server = Server::bind(config, WsServer::new(no_pings(), app))
        .and_then(Server::spawn)
        .expect("server starts");
    (server, seen)
}

/// Waits until a write of the log stopped in the middle of a frame.
fn wait_for_a_cut(seen: &Mutex<Seen>) {
    let deadline = Instant::now() + READ_TIMEOUT;
    while seen.lock().unwrap().cuts == 0 {
        assert!(Instant::now() < deadline, "no write stopped mid-frame");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_pong_goes_between_log_frames_and_every_log_message_arrives_in_order() {
    let (server, seen) = start();
    let (mut ws, _) = tungstenite_client(server.addr);
    ws.send(TMessage::text("go")).unwrap();
    wait_for_a_cut(&seen);
    ws.send(TMessage::Ping(b"between".to_vec().into())).unwrap();
    let mut next = 0u8;
    let mut pongs = 0;
    while next < MESSAGES {
        match ws.read().expect("a valid frame") {
            TMessage::Binary(data) => {
                assert_eq!(data.len(), MESSAGE);
                assert!(data.iter().all(|&b| b == next), "message {next} intact");
                next += 1;
            }
            TMessage::Pong(payload) => {
                assert_eq!(&payload[..], b"between");
                assert!(next < MESSAGES, "the pong did not wait for the whole log");
                pongs += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pongs, 1);
    ws.close(None).unwrap();
    server.stop().unwrap();
}

#[test]
fn after_its_close_frame_the_server_writes_nothing_more_from_the_log() {
    let (server, seen) = start();
    let (mut ws, _) = tungstenite_client(server.addr);
    ws.send(TMessage::text("go")).unwrap();
    wait_for_a_cut(&seen);
    ws.send(TMessage::text("bye")).unwrap();
    let mut next = 0u8;
    loop {
        match ws.read() {
            Ok(TMessage::Binary(data)) => {
                assert!(data.iter().all(|&b| b == next), "message {next} intact");
                next += 1;
            }
            Ok(TMessage::Close(frame)) => {
                let frame = frame.expect("a close code");
                assert_eq!(u16::from(frame.code), 1000);
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("a valid stream of frames after {next} messages: {e}"),
        }
    }
    assert!(next >= 1, "the frame the write cut was finished first");
    assert!(
        next < MESSAGES,
        "the close frame did not wait for the whole log"
    );
    // Nothing after the close frame: tungstenite answers it, the server closes.
    loop {
        match ws.read() {
            Ok(TMessage::Binary(_)) => panic!("a log message after the close frame"),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => break,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                ) =>
            {
                break;
            }
            Err(e) => panic!("after the close frame: {e}"),
        }
    }
    server.stop().unwrap();
}
