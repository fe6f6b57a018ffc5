//! Senders are paced, readers are not dropped: over real TCP, with a broadcast
//! log far smaller than the burst, senders that write as fast as they can are
//! held back (their sockets not read) while the log is full, and every reader
//! that keeps reading gets every message, in each sender's order, with nobody
//! closed. What cannot be paced (join and leave notices) is appended
//! regardless: a reader that stopped and falls off the log's tail because of
//! it is closed with 1008, without waiting for the slow timeout.

mod ws_support;

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::thread;
use std::time::{Duration, Instant};

use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::websocket::WsConfig;
use ws_support::*;

/// The two tests each load the machine (one floods, one times a stall): run
/// them one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Reads `raw` until it has `count` chat messages; returns each sender's
/// message numbers in the order they came.
fn read_all(mut raw: RawWs, count: usize) -> thread::JoinHandle<HashMap<String, Vec<u32>>> {
    thread::spawn(move || {
        let mut by_sender: HashMap<String, Vec<u32>> = HashMap::new();
        let mut says = 0;
        while says < count {
            match raw.read_data_or_close() {
                Some(frame) if frame.opcode == 0x1 => {
                    let text = frame.text();
                    // `User<port> says: <sender> <n> <padding>`
                    let Some((_, message)) = text.split_once(" says: ") else {
                        continue;
                    };
                    let mut words = message.split(' ');
                    let sender = words.next().unwrap_or_default().to_string();
                    let n: u32 = words.next().and_then(|n| n.parse().ok()).expect("number");
                    by_sender.entry(sender).or_default().push(n);
                    says += 1;
                }
                other => panic!("after {says} of {count} messages: {other:?}"),
            }
        }
        by_sender
    })
}

#[test]
fn a_burst_75_logs_long_reaches_every_reader_that_keeps_reading_and_nobody_is_closed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const LOG: usize = 16 * 1024;
    const SENDERS: usize = 3;
    const PER_SENDER: u32 = 4000;
    const LISTENERS: usize = 2;
    // Generous: readers that keep reading must never come near it, even on a
    // busy machine; it only bounds a test that went wrong.
    let hub = HubConfig {
        log_bytes: LOG,
        slow_timeout: Duration::from_secs(10),
    };
    let server = start_chat(no_pings(), hub);
    let total = SENDERS * PER_SENDER as usize;
    // Every member reads everything, senders included (on a clone of their
    // socket, from their own thread), so each reader is its own thread.
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..SENDERS {
        let raw = RawWs::connect(server.addr);
        senders.push(raw.stream.try_clone().expect("clone"));
        readers.push(raw);
    }
    for _ in 0..LISTENERS {
        readers.push(RawWs::connect(server.addr));
    }
    // Everyone's join notices are out before the burst; the readers skip them.
    let readers: Vec<_> = readers.into_iter().map(|r| read_all(r, total)).collect();
    // Each sender writes its messages as fast as TCP lets it, never waiting for
    // its own to come back: about 100 bytes each, 1.2 MB in all, some 75 logs'
    // worth.
    let padding = "p".repeat(80);
    let writers: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(k, mut stream)| {
            let padding = padding.clone();
            thread::spawn(move || {
                stream
                    .set_write_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                let mut batch = Vec::new();
                for i in 0..PER_SENDER {
                    batch.extend_from_slice(&masked_text(&format!("s{k} {i} {padding}")));
                    if batch.len() > 8 * 1024 || i + 1 == PER_SENDER {
                        stream.write_all(&batch).expect("send");
                        batch.clear();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    for reader in readers {
        let by_sender = reader.join().expect("reader");
        assert_eq!(by_sender.len(), SENDERS);
        for (sender, numbers) in &by_sender {
            let expected: Vec<u32> = (0..PER_SENDER).collect();
            assert!(
                *numbers == expected,
                "{sender}: every message, in order ({} of {PER_SENDER})",
                numbers.len()
            );
        }
    }
    let app = server.stop().expect("stops");
    let stats = *app.app().hub().stats();
    assert!(stats.paced > 0, "the senders had to wait: {stats:?}");
    assert!(app.stats().read_pauses > 0, "{:?}", app.stats());
    assert_eq!(stats.slow_closed, 0, "nobody was closed: {stats:?}");
    assert_eq!(stats.dropped_slow, 0, "nobody fell off: {stats:?}");
    assert!(stats.log_peak_bytes as usize <= LOG, "{stats:?}");
    // One waiting message per sender at most.
    assert!(
        stats.waiting_peak_bytes <= (SENDERS * 200) as u64,
        "{stats:?}"
    );
    // Every message to every member, and the join notices (then some leave
    // notices, as the readers hang up).
    let members = SENDERS + LISTENERS;
    assert!(
        stats.deliveries >= (total * members + members * (members + 1) / 2) as u64,
        "{stats:?}"
    );
}

#[test]
fn join_notices_are_not_paced_and_a_stopped_reader_they_push_off_the_tail_is_closed_1008() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const LOG: usize = 16 * 1024;
    // The slow timeout is far away: what closes the stopped reader here is the
    // stream of join and leave notices that pushes it off the log's tail.
    let hub = HubConfig {
        log_bytes: LOG,
        slow_timeout: Duration::from_secs(60),
    };
    let config = WsConfig {
        close_timeout: Duration::from_secs(60),
        ..no_pings()
    };
    let server = start_chat(config, hub);
    // A client that never reads (with a small receive window, so that it soon
    // takes almost nothing more; the kernel still opens it a little now and
    // then, as it compacts what it holds, so "stopped" is never exact).
    let mut stopped = RawWs::connect_small_window(server.addr, 4096);
    // A sender that writes 4 kB messages as fast as TCP lets it, and reads
    // what comes back on another thread, until told to stop: it keeps the log
    // full, and is paced.
    let sender = RawWs::connect(server.addr);
    let mut writer = sender.stream.try_clone().expect("clone");
    writer
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let stop = std::sync::Arc::clone(&stop);
        thread::spawn(move || {
            let frame = masked_text(&"j".repeat(4000));
            let mut sent = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            // At most 20,000 messages (80 MB): bounded whatever happens.
            while sent < 20_000 && Instant::now() < deadline {
                if stop.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                match writer.write_all(&frame) {
                    Ok(()) => sent += 1,
                    // Paced: the server is not reading; try again (a frame cut
                    // by the timeout leaves this stream unusable, which is fine:
                    // the sender only keeps the log full).
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
        })
    };
    let draining = thread::spawn(move || {
        let mut sender = sender;
        while sender.read_data_or_close().is_some_and(|f| f.opcode == 0x1) {}
    });
    // Let the log fill and the sender be paced.
    thread::sleep(Duration::from_millis(500));
    // Newcomers join and leave: each join and each leave notice is appended
    // at once, however full the log is, pushing its oldest frames out; the
    // stopped reader's cursor is in the oldest. 1,500 of them are 66 kB of
    // notices, four logs' worth.
    for _ in 0..1500 {
        let mut newcomer = RawWs::connect(server.addr);
        let joined = newcomer.read_data_or_close().expect("its own join notice");
        assert!(joined.text().ends_with(" just connected."), "{joined:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    writing.join().expect("writer");
    // The stopped reader, reading at last: frames, then 1008.
    let close = loop {
        let frame = stopped.read_data_or_close().expect("frames, then a close");
        if frame.opcode == 0x8 {
            break frame;
        }
    };
    assert_eq!(close.close_code(), Some(1008));
    let app = server.stop().expect("stops");
    drop(draining);
    let stats = *app.app().hub().stats();
    // The stopped reader at least (the sender, the slowest reader once it is
    // gone, may follow it if the notices outrun its reading for a moment).
    assert!(stats.dropped_slow >= 1, "fell off the tail: {stats:?}");
    assert_eq!(stats.slow_closed, 0, "not the slow timeout: {stats:?}");
    assert!(stats.paced >= 1, "the sender waited for room: {stats:?}");
    assert!(stats.log_peak_bytes as usize <= LOG, "{stats:?}");
}
