//! The `chat_push` handler over real TCP: the seed's messages, exactly, to every
//! user; and what the notes warn about (clients that cannot keep up, clients that
//! vanish, clients that leave mid-broadcast).

mod ws_support;

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::Message;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::websocket::WsConfig;
use ws_support::*;

#[test]
fn push_join_says_and_left_reach_every_user_with_the_senders_port() {
    let server = start_chat(no_pings(), HubConfig::default());
    let (mut a, pa) = tungstenite_client(server.addr);
    assert_eq!(read_text(&mut a), format!("User{pa} just connected."));
    let (mut b, pb) = tungstenite_client(server.addr);
    let joined_b = format!("User{pb} just connected.");
    assert_eq!(read_text(&mut a), joined_b);
    assert_eq!(read_text(&mut b), joined_b);
    let (mut c, pc) = tungstenite_client(server.addr);
    let joined_c = format!("User{pc} just connected.");
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(read_text(ws), joined_c);
    }

    // Every message reaches every user, the sender included, named by its port.
    a.send(Message::text("Hello! I'm client")).expect("send");
    let says = format!("User{pa} says: Hello! I'm client");
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(read_text(ws), says);
    }
    c.send(Message::text("ünïcode ✓")).expect("send");
    let says = format!("User{pc} says: ünïcode ✓");
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(read_text(ws), says);
    }

    // A close handshake: the others hear that C left.
    c.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .expect("close");
    assert!(matches!(c.read(), Ok(Message::Close(_))));
    let left = format!("User{pc} left.");
    assert_eq!(read_text(&mut a), left);
    assert_eq!(read_text(&mut b), left);

    // A plain disconnect (no close frame) is noticed too.
    drop(b);
    assert_eq!(read_text(&mut a), format!("User{pb} left."));

    let app = server.stop().expect("stops");
    let hub = app.app().hub().stats();
    assert_eq!(hub.broadcasts, 3 + 2 + 2);
    assert_eq!(hub.deliveries, (1 + 2 + 3) + (3 + 3) + (2 + 1));
    assert_eq!(hub.dropped_slow, 0);
}

#[test]
fn push_binary_message_is_refused_with_1003() {
    let server = start_chat(no_pings(), HubConfig::default());
    let mut raw = RawWs::connect(server.addr);
    assert!(
        raw.read_frame()
            .expect("join")
            .text()
            .ends_with("just connected.")
    );
    raw.send(&client_frame(true, 0x2, b"\x00\x01", Some([5, 6, 7, 8])));
    let close = raw.read_data_or_close().expect("close");
    assert_eq!(close.close_code(), Some(1003));
    assert!(raw.at_eof());
    server.stop().expect("stops");
}

/// Reads `raw` on a thread until `done` holds for the texts so far (or the
/// connection ends), and returns them.
fn collect(
    mut raw: RawWs,
    done: impl Fn(&[String]) -> bool + Send + 'static,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let mut texts = Vec::new();
        while !done(&texts) {
            match raw.read_data_or_close() {
                Some(frame) if frame.opcode == 0x1 => texts.push(frame.text()),
                _ => break,
            }
        }
        texts
    })
}

#[test]
fn push_stopped_reader_is_closed_1008_after_the_slow_timeout_while_others_get_every_broadcast() {
    // When the log is full the sender is paced; the client that stopped reading
    // holds it back for the slow timeout, then it is cut off and the sender goes
    // on.
    let hub = HubConfig {
        log_bytes: 512 * 1024,
        slow_timeout: Duration::from_millis(500),
    };
    // The slow client reads only once the broadcast is over: its close frame
    // must still be there then, so the close timeout (which would cut its
    // connection, queue and all, RFC 6455 §7.1.1) is longer than the test.
    let config = WsConfig {
        close_timeout: Duration::from_secs(60),
        ..no_pings()
    };
    let server = start_chat(config, hub);
    // A client that completes the handshake and then never reads.
    let mut slow = RawWs::connect(server.addr);
    let slow_port = slow.port;
    // A client that sends, and reads everything (its own messages come back too).
    let mut fast = RawWs::connect(server.addr);
    let fast_port = fast.port;
    let mut writer = fast.stream.try_clone().expect("clone");
    const COUNT: usize = 600;
    let left = format!("User{slow_port} left.");
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (left, received) = (left.clone(), Arc::clone(&received));
        thread::spawn(move || {
            let mut texts = Vec::new();
            while received.load(Ordering::Acquire) < COUNT || !texts.contains(&left) {
                match fast.read_data_or_close() {
                    Some(frame) if frame.opcode == 0x1 => {
                        let text = frame.text();
                        if text.contains(" says: ") {
                            received.fetch_add(1, Ordering::Release);
                        }
                        texts.push(text);
                    }
                    _ => break,
                }
            }
            texts
        })
    };
    // 600 messages of 16 kB: nearly 10 MB for each client, more than the kernel's
    // buffers between the server and the slow client hold. The sender stays at
    // most 8 messages ahead of its own reading, so only the slow client lags.
    let body = "x".repeat(16_000);
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..COUNT {
        while received.load(Ordering::Acquire) + 8 < i {
            assert!(
                Instant::now() < deadline,
                "the fast client stopped receiving"
            );
            thread::sleep(Duration::from_micros(200));
        }
        writer
            .write_all_frame(&masked_text(&format!("{i:04} {body}")))
            .expect("send");
    }
    let texts = reader.join().expect("reader");
    let says: Vec<&String> = texts.iter().filter(|t| t.contains(" says: ")).collect();
    assert_eq!(says.len(), COUNT, "the fast client got every broadcast");
    for (i, text) in says.iter().enumerate() {
        assert!(
            text.starts_with(&format!("User{fast_port} says: {i:04} ")),
            "in order"
        );
    }
    assert!(texts.contains(&left), "the others hear that it left");

    // The slow client, reading at last, finds what was queued before the bound,
    // then a close frame with 1008, then the end of the connection.
    let mut frames = 0;
    let close = loop {
        let frame = slow.read_data_or_close().expect("a close frame at the end");
        if frame.opcode == 0x8 {
            break frame;
        }
        frames += 1;
        assert!(frames <= COUNT + 2, "more frames than were sent");
    };
    assert_eq!(close.close_code(), Some(1008));
    assert!(frames < COUNT, "it did not get everything: it was cut off");
    assert!(slow.at_eof());

    let app = server.stop().expect("stops");
    let stats = app.app().hub().stats();
    assert_eq!(stats.slow_closed, 1, "cut off for making no progress");
    assert_eq!(stats.dropped_slow, 0, "nobody fell off the log's tail");
    assert!(stats.paced > 0, "the sender waited for room");
    assert_eq!(app.stats().closed_by_server, 1);
}

/// `write_all` under a name that says what is written.
trait WriteFrame {
    fn write_all_frame(&mut self, frame: &[u8]) -> std::io::Result<()>;
}

impl WriteFrame for std::net::TcpStream {
    fn write_all_frame(&mut self, frame: &[u8]) -> std::io::Result<()> {
        std::io::Write::write_all(self, frame)
    }
}

#[test]
fn push_dead_peer_is_removed_after_the_ping_timeout_and_the_others_see_left() {
    let config = WsConfig {
        ping_interval: Some(Duration::from_millis(200)),
        ping_timeout: Duration::from_millis(300),
        ..WsConfig::default()
    };
    let server = start_chat(config, HubConfig::default());
    let (mut alive, alive_port) = tungstenite_client(server.addr);
    assert_eq!(
        read_text(&mut alive),
        format!("User{alive_port} just connected.")
    );
    // Handshake, then silence: it never reads, so it never answers a ping.
    let dead = RawWs::connect(server.addr);
    assert_eq!(
        read_text(&mut alive),
        format!("User{} just connected.", dead.port)
    );
    // tungstenite answers pings while it reads, so `alive` stays.
    assert_eq!(read_text(&mut alive), format!("User{} left.", dead.port));
    // For several ping timeouts more, the live one (answering as it reads) stays.
    alive
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let until = Instant::now() + Duration::from_millis(1000);
    while Instant::now() < until {
        match alive.read() {
            Ok(Message::Ping(_)) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected only pings, got {other:?}"),
        }
    }
    alive
        .get_ref()
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    alive.send(Message::text("still here")).expect("send");
    assert_eq!(
        read_text(&mut alive),
        format!("User{alive_port} says: still here")
    );
    let app = server.stop().expect("stops");
    assert_eq!(app.stats().ping_timeouts, 1);
    assert_eq!(app.app().hub().stats().dead_peers, 1);
    assert!(app.stats().pings_sent >= 3, "{:?}", app.stats());
    drop(dead);
}

#[test]
fn push_client_leaving_mid_broadcast_does_not_break_delivery_to_others() {
    let server = start_chat(no_pings(), HubConfig::default());
    const COUNT: usize = 300;
    let sender = RawWs::connect(server.addr);
    let sender_port = sender.port;
    let mut writer = sender.stream.try_clone().expect("clone");
    // Two that leave while the messages flow: one after reading a few messages,
    // one that read nothing at all (unread data makes each close a reset).
    let mut quitter = RawWs::connect(server.addr);
    let quitter_left = format!("User{} left.", quitter.port);
    let mut vanisher = Some(RawWs::connect(server.addr));
    let vanisher_left = format!("User{} left.", vanisher.as_ref().map_or(0, |v| v.port));
    let done = {
        let lefts = [quitter_left.clone(), vanisher_left.clone()];
        move |texts: &[String]| {
            texts.iter().filter(|t| t.contains(" says: ")).count() == COUNT
                && lefts.iter().all(|l| texts.contains(l))
        }
    };
    let mut readers = vec![collect(sender, done.clone())];
    for _ in 0..3 {
        readers.push(collect(RawWs::connect(server.addr), done.clone()));
    }
    let leaver = thread::spawn(move || {
        for _ in 0..20 {
            let _ = quitter.read_frame();
        }
        drop(quitter);
    });
    let body = "y".repeat(1000);
    for i in 0..COUNT {
        if i == COUNT / 2 {
            drop(vanisher.take());
        }
        writer
            .write_all_frame(&masked_text(&format!("{i:03} {body}")))
            .expect("send");
    }
    leaver.join().expect("leaver");
    for reader in readers {
        let texts = reader.join().expect("reader");
        let says: Vec<&String> = texts.iter().filter(|t| t.contains(" says: ")).collect();
        assert_eq!(says.len(), COUNT, "every broadcast arrived");
        for (i, text) in says.iter().enumerate() {
            assert!(text.starts_with(&format!("User{sender_port} says: {i:03} ")));
        }
        assert!(texts.contains(&quitter_left) && texts.contains(&vanisher_left));
    }
    let app = server.stop().expect("stops");
    assert_eq!(app.app().hub().stats().dropped_slow, 0);
    // The two that left, and the four readers that hung up once done: none with a
    // close handshake. A reader whose end of file the server had not yet seen at
    // shutdown is closed by the graceful shutdown (1001) instead.
    let stats = app.stats();
    assert!(stats.dropped >= 2, "{stats:?}");
    assert_eq!(stats.dropped + stats.closed_at_shutdown, 6, "{stats:?}");
}
