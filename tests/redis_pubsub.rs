//! Push vs pull pub/sub against a real Redis (`patterns::pubsub`): a subscriber
//! that leaves and comes back loses what was pushed meanwhile, resumes a
//! stream from its cursor with nothing lost and nothing twice, and is told of
//! the entries a capped stream trimmed before it could read them, with the
//! right count.
//!
//! The tests that need `redis-server` (`apt-get install -y redis-server`) are
//! ignored by `cargo test` and run with `cargo test -- --ignored`; the one
//! that checks an unreachable Redis runs always.

mod redis_support;

use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use redis_support::RedisServer;
use wirepatterns::patterns::pubsub::{LabConfig, LabError, PubSubLab, PubSubReport};
use wirepatterns::resp::command::MaxLen;

/// A short run: `messages` every 5 ms, the subscriber away for `away_ms`
/// after a third of them.
fn short(config: LabConfig, messages: u64, away_ms: u64) -> LabConfig {
    LabConfig {
        interval: Duration::from_millis(5),
        away: Duration::from_millis(away_ms),
        drain: Duration::from_millis(300),
        ..config.with_messages(messages)
    }
}

/// Every message is accounted for once: received or lost.
fn check_totals(r: &PubSubReport, messages: u64) {
    assert_eq!(r.published, messages, "{r:?}");
    assert_eq!(r.received + r.lost, r.published, "{r:?}");
    assert_eq!(r.duplicates, 0, "nothing is received twice: {r:?}");
    assert_eq!(r.latency.samples as u64, r.received, "{r:?}");
    assert_eq!(r.subscriber_connects, 2, "one absence: {r:?}");
}

#[test]
#[ignore = "needs redis-server"]
fn pull_subscriber_resumes_from_its_cursor_with_nothing_lost_or_twice() {
    let redis = RedisServer::require();
    let report = PubSubLab::run(short(LabConfig::pull(redis.addr()), 60, 300)).expect("runs");
    check_totals(&report, 60);
    assert!(report.published_while_away > 0, "it was away: {report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.received, 60);
    assert!(!report.gap_told(), "nothing was trimmed: {report:?}");
    // What was published while it was away arrived late, not never.
    assert!(
        report.latency.max >= Duration::from_millis(100),
        "{report:?}"
    );
}

#[test]
#[ignore = "needs redis-server"]
fn push_subscriber_loses_what_is_published_while_it_is_away_and_is_not_told() {
    let redis = RedisServer::require();
    let report = PubSubLab::run(short(LabConfig::push(redis.addr()), 60, 300)).expect("runs");
    check_totals(&report, 60);
    assert!(report.lost > 0, "{report:?}");
    // Roughly what was published while it was away: a message or two on
    // their way when it left may be lost with them.
    let away = report.published_while_away;
    assert!(
        report.lost >= away && report.lost <= away + 3,
        "lost {} for {away} published while away: {report:?}",
        report.lost
    );
    // PUBLISH told the publisher, in its count of receivers, for those sent
    // once Redis had seen the subscriber go (not for one sent on the heels of
    // its close, handed to a connection already closing).
    assert!(
        report.published_to_nobody > 0 && report.published_to_nobody <= away,
        "{report:?}"
    );
    assert!(!report.gap_told(), "push never tells: {report:?}");
}

#[test]
#[ignore = "needs redis-server"]
fn pull_subscriber_away_beyond_the_cap_is_told_how_many_it_missed() {
    let redis = RedisServer::require();
    let config = LabConfig {
        maxlen: MaxLen::Exact(10),
        ..short(LabConfig::pull_beyond_cap(redis.addr(), 10), 120, 250)
    };
    let report = PubSubLab::run(config).expect("runs");
    check_totals(&report, 120);
    assert!(
        report.published_while_away > 10,
        "more than the cap was published while away: {report:?}"
    );
    assert!(report.lost > 0, "{report:?}");
    assert!(report.gap_told(), "told, not silent: {report:?}");
    // The count it was told, from Redis's numbers, is the count the message
    // numbers say it lost.
    assert_eq!(report.told_missing(), report.lost, "{report:?}");
    assert_eq!(report.gaps.len(), 1, "{report:?}");
    let gap = report.gaps[0];
    assert!(
        gap.first_kept.is_some_and(|first| first > gap.cursor),
        "{gap:?}"
    );
}

#[test]
#[ignore = "needs redis-server"]
fn pull_subscriber_cut_off_by_redis_reconnects_and_resumes() {
    let mut redis = RedisServer::require();
    let config = LabConfig {
        // It never leaves on its own: Redis cuts it off instead.
        leave_after: u64::MAX,
        ..short(LabConfig::pull(redis.addr()), 100, 0)
    };
    let run = thread::spawn(move || PubSubLab::run(config));
    thread::sleep(Duration::from_millis(200));
    let killed = redis.kill_clients("normal").expect("CLIENT KILL");
    assert!(killed >= 1, "the lab's links were connected");
    let report = run.join().expect("no panic").expect("runs");
    assert!(
        report.subscriber_connects >= 2,
        "it reconnected: {report:?}"
    );
    // The publisher was cut off too: what it could not publish meanwhile is
    // not counted as published (a publish whose answer was lost may have
    // been, and then arrives too).
    assert_eq!(report.published + report.not_published, 100, "{report:?}");
    assert!(report.received >= report.published, "{report:?}");
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
}

#[test]
fn unreachable_redis_ends_the_run_with_how_to_start_one() {
    // A port nothing listens on: bind one, read it, close it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match PubSubLab::run(LabConfig::pull(addr)) {
        Err(e @ LabError::Unreachable { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&addr.to_string()), "{text}");
            assert!(
                text.contains(&format!("redis-server --port {port} --save")),
                "{text}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
