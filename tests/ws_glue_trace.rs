//! The WebSocket glue's own timer namespace and what it reports to its observer,
//! over TCP: an application timer keeps all 64 bits of its data beside the glue's
//! keepalive, and every handshake, refusal, message and close reaches the observer
//! with its cost.

mod ws_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wirepatterns::patterns::websocket::{
    Message, Opened, WsApp, WsClosed, WsConfig, WsContext, WsEcho, WsEvent, WsServer,
};
use wirepatterns::server::{Config, ConnId, Running, Server, TimerId};
use wirepatterns::ws::HandshakeConfig;
use ws_support::*;

/// Sets a timer with data `u64::MAX` when a WebSocket opens, and records the data
/// of every timer that reaches it.
struct TopBitTimer(Arc<Mutex<Vec<u64>>>);

impl WsApp for TopBitTimer {
    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, _: ConnId, _: &Opened<'_>) {
        ws.set_timer(Duration::from_millis(20), u64::MAX);
        // One whose data is a small number, as a glue timer's data is.
        ws.set_timer(Duration::from_millis(20), 0);
    }

    fn on_message(&mut self, _: &mut WsContext<'_, '_>, _: ConnId, _: Message<'_>) {}

    fn on_timer(&mut self, _: &mut WsContext<'_, '_>, _: TimerId, data: u64) {
        if let Ok(mut fired) = self.0.lock() {
            fired.push(data);
        }
    }
}

fn bind<A: WsApp + Send + 'static>(server: WsServer<A>) -> Running<WsServer<A>> {
    Server::bind(Config::new(SocketAddr::from(([127, 0, 0, 1], 0))), server)
        .and_then(Server::spawn)
        .expect("server starts")
}

#[test]
fn application_timer_data_is_passed_whole_and_keepalive_still_pings() {
    let fired = Arc::new(Mutex::new(Vec::new()));
    let config = WsConfig {
        ping_interval: Some(Duration::from_millis(50)),
        ping_timeout: Duration::from_secs(5),
        ..WsConfig::default()
    };
    let server = bind(WsServer::new(config, TopBitTimer(Arc::clone(&fired))));
    let mut raw = RawWs::connect(server.addr);
    // The keepalive's ping comes: the glue's timer is still the glue's.
    let ping = raw.read_frame().expect("a ping");
    assert_eq!(ping.opcode, 0x9, "expected a ping, got {ping:?}");
    let deadline = Instant::now() + READ_TIMEOUT;
    while fired.lock().map(|f| f.len() < 2).unwrap_or(true) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen = fired.lock().expect("lock").clone();
    seen.sort_unstable();
    assert_eq!(seen, [0, u64::MAX], "the application's timers, data whole");
    let app = server.stop().expect("stops");
    assert!(app.stats().pings_sent >= 1);
    assert_eq!(app.stats().ping_timeouts, 0);
}

/// One event as the test keeps it.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Request(u16),
    Opened(u16, Option<String>),
    Refused(u16, String, bool),
    Message {
        payload: u64,
        wire: u64,
        reads: u64,
        writes: u64,
        out: u64,
    },
    Closed(WsClosed),
    /// The trace line: its time, and its text.
    Line(Duration, String),
}

fn observed(events: &Mutex<Vec<Seen>>, ready: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
    let deadline = Instant::now() + READ_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(events) = events.lock()
            && ready(&events)
        {
            return events.clone();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the observer never heard it: {events:?}");
}

#[test]
fn observer_hears_requests_handshakes_refusals_messages_and_closes() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let config = WsConfig {
        handshake: HandshakeConfig {
            allowed_origins: Some(vec!["http://good.example".to_string()]),
        },
        ..no_pings()
    };
    let mut handler = WsServer::new(config, WsEcho::new());
    let sink = Arc::clone(&events);
    let start = Instant::now();
    handler.set_observer(move |event: &WsEvent<'_>| {
        let seen = match *event {
            WsEvent::Request(cost) => Seen::Request(cost.status),
            WsEvent::Opened { cost, origin, .. } => {
                Seen::Opened(cost.status, origin.map(String::from))
            }
            WsEvent::Refused {
                status,
                reason,
                cost,
                ..
            } => Seen::Refused(status, reason.to_string(), cost.is_some()),
            WsEvent::Message(m) => Seen::Message {
                payload: m.payload_bytes,
                wire: m.wire_bytes,
                reads: m.io.read_calls,
                writes: m.io.write_calls,
                out: m.io.bytes_out,
            },
            WsEvent::Closed { closed, .. } => Seen::Closed(closed),
        };
        if let Ok(mut events) = sink.lock() {
            events.push(seen);
            let line = event.trace_line(start);
            events.push(Seen::Line(line.at, line.to_string()));
        }
    });
    let server = bind(handler);

    // A plain request: 426 from the echo's default on_http.
    let (head, _) = http(
        server.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    // A refused origin.
    let refused = RawWs::open(
        server.addr,
        &handshake_request("/", "Origin: http://evil.example\r\n"),
    );
    assert!(refused.response.starts_with("HTTP/1.1 403 "));
    // An accepted one, a message echoed, and the peer's close.
    let mut raw = RawWs::open(
        server.addr,
        &handshake_request("/", "Origin: http://good.example\r\n"),
    );
    assert!(raw.response.starts_with("HTTP/1.1 101 "));
    raw.send_text("hello");
    assert_eq!(raw.read_data_or_close().expect("echo").text(), "hello");
    raw.send(&client_frame(
        true,
        0x8,
        &1000u16.to_be_bytes(),
        Some([1, 2, 3, 4]),
    ));
    let answer = raw.read_data_or_close().expect("the close answered");
    assert_eq!(answer.close_code(), Some(1000));
    assert!(raw.at_eof());

    let all = observed(&events, |e| {
        e.iter().any(|s| matches!(s, Seen::Closed(_)))
            && e.iter().any(|s| matches!(s, Seen::Refused(..)))
            && e.iter().any(|s| matches!(s, Seen::Request(_)))
    });
    server.stop().expect("stops");
    let kept: Vec<&Seen> = all
        .iter()
        .filter(|s| !matches!(s, Seen::Line(..)))
        .collect();
    assert!(kept.contains(&&Seen::Request(426)), "{all:?}");
    assert!(
        kept.iter()
            .any(|s| matches!(s, Seen::Refused(403, reason, true) if reason.contains("origin"))),
        "{all:?}"
    );
    assert!(
        kept.contains(&&Seen::Opened(101, Some("http://good.example".to_string()))),
        "{all:?}"
    );
    // "hello" masked: 2 bytes of header, 4 of mask, 5 of payload. Its turn read it
    // (at least one read() with data) and wrote the 7-byte echo in one write().
    let message = kept
        .iter()
        .find_map(|s| match s {
            Seen::Message {
                payload,
                wire,
                reads,
                writes,
                out,
            } => Some((*payload, *wire, *reads, *writes, *out)),
            _ => None,
        })
        .expect("a message event");
    assert_eq!((message.0, message.1), (5, 11), "{all:?}");
    assert!(message.2 >= 1, "{all:?}");
    assert_eq!((message.3, message.4), (1, 7), "{all:?}");
    assert!(
        kept.contains(&&Seen::Closed(WsClosed::ByPeer(Some(
            wirepatterns::ws::CloseCode::NORMAL
        )))),
        "{all:?}"
    );
    // Every event also reads as one trace line.
    let lines: Vec<&String> = all
        .iter()
        .filter_map(|s| match s {
            Seen::Line(_, line) => Some(line),
            _ => None,
        })
        .collect();
    // Told in time order: each line is stamped when its event was over (a
    // request's response written, a message's turn done), not when it began.
    let times: Vec<Duration> = all
        .iter()
        .filter_map(|s| match s {
            Seen::Line(at, _) => Some(*at),
            _ => None,
        })
        .collect();
    assert!(times.is_sorted(), "{lines:#?}");
    // Every line with a cost has its cost columns at the same place, whatever
    // the length of its text (an origin, a request line).
    let column = |line: &str, needle: &str| {
        line.find(needle)
            .and_then(|at| line.get(..at))
            .map(|before| before.chars().count())
    };
    let costed: Vec<&&String> = lines.iter().filter(|l| l.contains("  in ")).collect();
    assert!(costed.len() >= 4, "{lines:#?}");
    for needle in ["  in ", "  out ", " read", " write", "  took "] {
        let at: Vec<Option<usize>> = costed.iter().map(|l| column(l, needle)).collect();
        assert!(
            at.iter().all(|a| a.is_some() && *a == at[0]),
            "{needle:?} at {at:?}: {lines:#?}"
        );
    }
    for kind in ["request", "refused", "handshake", "ws message", "ws closed"] {
        assert!(lines.iter().any(|l| l.contains(kind)), "{kind}: {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.contains("text \"hello\" (5 B)")),
        "{lines:#?}"
    );
}

#[test]
fn a_message_is_charged_only_its_own_turns_writes() {
    // A member gets a copy of every join; the message it sends afterwards is
    // charged the write of its own copy of the broadcast, not the earlier ones.
    let costs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&costs);
    let mut handler = WsServer::new(
        no_pings(),
        wirepatterns::patterns::chat::ChatPush::new(Default::default()),
    );
    handler.set_observer(move |event: &WsEvent<'_>| {
        if let WsEvent::Message(m) = event
            && let Ok(mut costs) = sink.lock()
        {
            costs.push((m.io.write_calls, m.io.bytes_out, m.wire_bytes));
        }
    });
    let server = bind(handler);
    let (mut a, a_port) = tungstenite_client(server.addr);
    assert!(read_text(&mut a).ends_with("just connected."));
    let (mut b, _) = tungstenite_client(server.addr);
    assert!(read_text(&mut b).ends_with("just connected."));
    assert!(read_text(&mut a).ends_with("just connected."));
    a.send(tungstenite::Message::text("hi")).expect("send");
    let said = read_text(&mut a);
    assert_eq!(said, format!("User{a_port} says: hi"));
    let deadline = Instant::now() + READ_TIMEOUT;
    while costs.lock().map(|c| c.is_empty()).unwrap_or(true) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    server.stop().expect("stops");
    let costs = costs.lock().expect("lock").clone();
    // Its own copy: a 2-byte header and the text. The client's frame: 2 + 4 + 2.
    assert_eq!(costs, [(1, 2 + said.len() as u64, 8)]);
    drop(b);
}
