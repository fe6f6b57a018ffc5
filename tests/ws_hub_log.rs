//! The push chat's hub writes every member from one shared log of frames, over
//! real TCP: a burst larger than the sockets' buffers reaches every member that
//! keeps reading, whole and in order, written from the log (each frame stored
//! once, the log never past its size); a member that stops reading holds the
//! full log back for the slow timeout (the sender is paced meanwhile), then it
//! is closed with 1008, its stream still valid frame by frame, while the
//! others get everything; a message too big for the log is refused with 1009.

mod ws_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::websocket::WsConfig;
use ws_support::*;

/// Once `go` is set, reads `raw` until `count` chat messages (`says`) arrived,
/// counting them in `received`; returns the texts and the connection (kept open,
/// so that its leaving is not broadcast).
fn keep_reading(
    mut raw: RawWs,
    count: usize,
    received: Arc<AtomicUsize>,
    go: Arc<AtomicBool>,
) -> thread::JoinHandle<(Vec<String>, RawWs)> {
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !go.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "never told to read");
            thread::sleep(Duration::from_millis(1));
        }
        let mut texts = Vec::new();
        let mut says = 0;
        while says < count {
            match raw.read_data_or_close() {
                Some(frame) if frame.opcode == 0x1 => {
                    let text = frame.text();
                    if text.contains(" says: ") {
                        says += 1;
                        received.fetch_add(1, Ordering::Release);
                    }
                    texts.push(text);
                }
                other => panic!("after {says} messages: {other:?}"),
            }
        }
        (texts, raw)
    })
}

#[test]
fn a_burst_larger_than_the_socket_buffers_reaches_every_reader_whole_and_in_order() {
    const LOG: usize = 32 << 20;
    const COUNT: usize = 1250;
    const READERS: usize = 4;
    let server = start_chat(
        no_pings(),
        HubConfig {
            log_bytes: LOG,
            ..HubConfig::default()
        },
    );
    let sender = RawWs::connect(server.addr);
    let sender_port = sender.port;
    let mut writer = sender.stream.try_clone().expect("clone");
    let received = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let mut readers = vec![keep_reading(
        sender,
        COUNT,
        Arc::clone(&received),
        Arc::clone(&go),
    )];
    for _ in 1..READERS {
        readers.push(keep_reading(
            RawWs::connect(server.addr),
            COUNT,
            Arc::clone(&received),
            Arc::clone(&go),
        ));
    }
    // 1250 messages of 16 kB sent at once: 20 MB for each reader, more than the
    // kernel's buffers between the server and a reader hold, all of it within
    // the 32 MiB log. The readers start only once the server has taken the whole
    // burst: what their sockets could not take waits in the log.
    let body = "z".repeat(16_000);
    let mut burst = Vec::new();
    for i in 0..COUNT {
        burst.extend_from_slice(&masked_text(&format!("{i:04} {body}")));
    }
    std::io::Write::write_all(&mut writer, &burst).expect("send");
    go.store(true, Ordering::Release);
    let mut kept = Vec::new();
    for reader in readers {
        let (texts, raw) = reader.join().expect("reader");
        let says: Vec<&String> = texts.iter().filter(|t| t.contains(" says: ")).collect();
        assert_eq!(says.len(), COUNT, "every broadcast arrived");
        for (i, text) in says.iter().enumerate() {
            assert_eq!(
                text.len(),
                format!("User{sender_port} says: {i:04} {body}").len()
            );
            assert!(
                text.starts_with(&format!("User{sender_port} says: {i:04} ")),
                "in order, whole"
            );
        }
        kept.push(raw);
    }
    assert_eq!(received.load(Ordering::Acquire), COUNT * READERS);

    let app = server.stop().expect("stops");
    let hub = app.app().hub();
    let stats = hub.stats();
    assert_eq!(stats.dropped_slow, 0, "{stats:?}");
    assert_eq!(stats.broadcasts as usize, READERS + COUNT, "{stats:?}");
    // Each frame stored once: the log is its only copy, never past its size.
    assert!(stats.log_peak_bytes as usize <= LOG, "{stats:?}");
    assert!(hub.log().len() <= hub.log().capacity());
    assert!(
        stats.log_peak_bytes > 1 << 20,
        "the burst outran the sockets and waited in the log: {stats:?}"
    );
    // Everything given to the members was written from the log, nothing else:
    // the chat frames went out through the readers' cursors, not the glue.
    assert_eq!(stats.bytes_written, stats.bytes_queued, "{stats:?}");
    assert_eq!(app.stats().messages_out, 0, "{:?}", app.stats());
    assert!(stats.bytes_queued > (COUNT * READERS * 16_000) as u64);
    drop(kept);
}

#[test]
fn a_reader_that_stops_is_closed_1008_after_the_slow_timeout_while_the_others_get_everything() {
    const LOG: usize = 1 << 20;
    const COUNT: usize = 800;
    const FAST: usize = 2;
    // The slow client reads only once the burst is over: its close frame must
    // still be there then, so the close timeout is longer than the test.
    let config = WsConfig {
        close_timeout: Duration::from_secs(60),
        ..no_pings()
    };
    let slow_timeout = Duration::from_millis(400);
    let hub = HubConfig {
        log_bytes: LOG,
        slow_timeout,
    };
    let server = start_chat(config, hub);
    let mut slow = RawWs::connect(server.addr);
    let slow_left = format!("User{} left.", slow.port);
    let sender = RawWs::connect(server.addr);
    let sender_port = sender.port;
    let mut writer = sender.stream.try_clone().expect("clone");
    let received = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(true));
    let mut readers = vec![keep_reading(
        sender,
        COUNT,
        Arc::clone(&received),
        Arc::clone(&go),
    )];
    readers.push(keep_reading(
        RawWs::connect(server.addr),
        COUNT,
        Arc::clone(&received),
        go,
    ));
    // 800 messages of 16 kB: 12.8 MB for each client, far more than the log and
    // the slow client's socket buffers. The sender stays at most 8 messages ahead
    // of the fast readers, so only the slow client falls behind.
    let body = "w".repeat(16_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut longest_wait = Duration::ZERO;
    for i in 0..COUNT {
        while received.load(Ordering::Acquire) + 8 * FAST < i * FAST {
            assert!(Instant::now() < deadline, "the fast readers stopped");
            thread::sleep(Duration::from_micros(200));
        }
        let sent = Instant::now();
        std::io::Write::write_all(&mut writer, &masked_text(&format!("{i:04} {body}")))
            .expect("send");
        longest_wait = longest_wait.max(sent.elapsed());
    }
    // The sender was held back (TCP's window closed on it) for about the slow
    // timeout, not for ever: the bound is loose, as this machine is shared.
    assert!(
        longest_wait < Duration::from_secs(10),
        "the sender waited {longest_wait:?}"
    );
    let mut left_after = None;
    let mut kept = Vec::new();
    for reader in readers {
        let (texts, raw) = reader.join().expect("reader");
        let says: Vec<&String> = texts.iter().filter(|t| t.contains(" says: ")).collect();
        assert_eq!(says.len(), COUNT, "the fast readers got every broadcast");
        for (i, text) in says.iter().enumerate() {
            assert!(text.starts_with(&format!("User{sender_port} says: {i:04} ")));
        }
        // When the slow one left: after how many messages.
        let at = texts
            .iter()
            .position(|t| *t == slow_left)
            .expect("the others hear that it left");
        left_after = Some(texts[..at].iter().filter(|t| t.contains(" says: ")).count());
        kept.push(raw);
    }
    let left_after = left_after.expect("readers");

    // The slow client, reading at last: whole frames in order (the last one its
    // socket took in part finished from what the hub kept), then 1008, then the
    // end of the connection.
    let frame_len = format!("User{sender_port} says: 0000 {body}").len() + 4;
    let mut got = 0;
    let close = loop {
        let frame = slow
            .read_data_or_close()
            .expect("whole frames, then a close frame");
        if frame.opcode == 0x8 {
            break frame;
        }
        let text = frame.text();
        if text.contains(" says: ") {
            assert!(text.starts_with(&format!("User{sender_port} says: {got:04} ")));
            got += 1;
        }
    };
    assert_eq!(close.close_code(), Some(1008));
    assert!(slow.at_eof());
    assert!(got < COUNT, "it was cut off");
    // Not before it held the log full: the messages broadcast after the last one
    // it got fill it (less the sixteenth paced messages leave free for notices).
    assert!(
        (left_after - got + 1) * frame_len >= LOG - LOG / 16,
        "closed after {left_after} messages, having {got}: it did not hold the log full"
    );

    let app = server.stop().expect("stops");
    let stats = app.app().hub().stats();
    assert_eq!(stats.slow_closed, 1, "{stats:?}");
    assert_eq!(stats.dropped_slow, 0, "nobody fell off the tail: {stats:?}");
    assert!(stats.paced >= 1, "the sender waited for room: {stats:?}");
    assert!(stats.log_peak_bytes as usize <= LOG, "{stats:?}");
    assert!(
        stats.bytes_queued > 4 * LOG as u64,
        "far more was sent than the log holds: {stats:?}"
    );
    drop(kept);
}

#[test]
fn a_message_too_big_for_the_log_fails_its_sender_with_1009_and_reaches_nobody() {
    let server = start_chat(
        no_pings(),
        HubConfig {
            log_bytes: 1024,
            ..HubConfig::default()
        },
    );
    let mut big = RawWs::connect(server.addr);
    let (mut other, other_port) = tungstenite_client(server.addr);
    assert_eq!(
        read_text(&mut other),
        format!("User{other_port} just connected.")
    );
    for _ in 0..2 {
        assert_eq!(big.read_data_or_close().map(|f| f.opcode), Some(0x1));
    }
    // Framed (4 bytes of header) with `User<port> says: ` (16 bytes), 1010 bytes
    // no longer fit in 1024.
    big.send_text(&"b".repeat(1010));
    let close = big.read_data_or_close().expect("a close frame");
    assert_eq!(close.close_code(), Some(1009));
    // The others hear only that it left; a message that fits still goes out.
    assert_eq!(read_text(&mut other), format!("User{} left.", big.port));
    other
        .send(tungstenite::Message::text("a".repeat(900)))
        .expect("send");
    assert_eq!(
        read_text(&mut other),
        format!("User{other_port} says: {}", "a".repeat(900))
    );
    let app = server.stop().expect("stops");
    let stats = app.app().hub().stats();
    assert_eq!(stats.too_large, 0, "{stats:?}");
    assert_eq!(stats.dropped_slow, 0, "{stats:?}");
}
