//! The jobs server over real TCP on 127.0.0.1: the seed's flow, then every way of
//! following a job (short poll, long poll, SSE, WebSocket), the store's bounds,
//! every bad input, clients that leave while held, and the store file across a
//! restart.
//!
//! Each test starts its own server on a free port through the library API with
//! short steps (tens of milliseconds), so that a job runs from 0% to 100% in well
//! under a second. Clients are plain blocking sockets with read timeouts, and
//! tungstenite for WebSocket (an independent implementation); every wait is
//! bounded and waits on the server's answers, not on a guess of how long things
//! take.

mod jobs_support;
mod ws_support;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jobs_support::*;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;
use wirepatterns::patterns::jobs::{JobConfig, JobId};
use wirepatterns::patterns::polling::{JobsApp, JobsConfig, Pattern};
use wirepatterns::patterns::record_file::HEADER_LEN;

/// The step of most tests: 11 updates in about half a second.
const STEP: Duration = Duration::from_millis(50);

/// A step no test waits for: the job stays at 0%.
const FOREVER: Duration = Duration::from_secs(3600);

/// Long enough for any job of [`STEP`] to finish, with room for a loaded machine.
const RUN: Duration = Duration::from_secs(10);

/// Long enough for a restored job of 60 ms steps to finish: 10 steps at most.
const RESUME: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// The seed's flow and handles.
// ---------------------------------------------------------------------------

#[test]
fn seed_flow_submit_then_short_poll_to_100() {
    let server = start(config(STEP));
    let started_ms = now_ms();
    let mut client = Client::connect(server.addr);
    client.request("POST", "/submit", "");
    let id = handle_of(&client.response());
    let handle = JobId::parse(&id).unwrap();
    assert!(
        handle.ms() >= started_ms - 1 && handle.ms() <= now_ms() + 1,
        "the handle names the millisecond of the submit: {id}"
    );

    // Short polls on one kept-alive connection until 100%.
    let mut seen = Vec::new();
    let deadline = Instant::now() + RUN;
    loop {
        client.request("GET", &format!("/checkstatus?jobId={}", enc(&id)), "");
        let resp = client.response();
        let progress = progress_of(&resp);
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{resp:?}"
        );
        assert_eq!(resp.header("cache-control"), Some("no-store"), "{resp:?}");
        let updated: u64 = resp
            .header("job-updated-at")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric Job-Updated-At: {resp:?}"));
        assert!(
            updated >= handle.ms() && updated <= now_ms(),
            "Job-Updated-At {updated} is between the submit and now: {resp:?}"
        );
        assert_eq!(progress % 10, 0, "{resp:?}");
        if seen.last() != Some(&progress) {
            seen.push(progress);
        }
        if progress == 100 {
            break;
        }
        assert!(Instant::now() < deadline, "never reached 100%: {seen:?}");
        std::thread::sleep(STEP / 5);
    }
    assert_eq!(seen.first(), Some(&0), "the first poll sees 0%: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress only grows: {seen:?}"
    );
    // Polled five times a step, every step is seen (a skipped one would mean two
    // steps landed in one fifth of a step).
    assert!(seen.len() >= 6, "most steps seen one by one: {seen:?}");
    server.stop().unwrap();
}

#[test]
fn submits_in_one_millisecond_get_distinct_handles() {
    let server = start(config(FOREVER));
    // 100 submits pipelined in one write: read in one go, handled in one turn of
    // the loop, so many land in the same millisecond.
    const N: usize = 100;
    let mut client = Client::connect(server.addr);
    client.send(request_bytes("POST", "/submit", "").repeat(N).as_bytes());
    let mut handles: Vec<String> = (0..N).map(|_| handle_of(&client.response())).collect();

    // And 4 connections at once, 25 pipelined submits each.
    let addr = server.addr;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                client.send(request_bytes("POST", "/submit", "").repeat(25).as_bytes());
                (0..25)
                    .map(|_| handle_of(&client.response()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        handles.extend(t.join().unwrap());
    }

    let distinct: BTreeSet<&String> = handles.iter().collect();
    assert_eq!(
        distinct.len(),
        handles.len(),
        "a handle repeated: {handles:?}"
    );
    let ids: Vec<JobId> = handles.iter().map(|h| JobId::parse(h).unwrap()).collect();
    assert!(
        ids.iter().any(|id| id.counter() > 0),
        "no two submits shared a millisecond, so the test proved nothing: {handles:?}"
    );
    // Every handle answers, as its own job.
    for id in handles.iter().step_by(7) {
        assert_eq!(status(server.addr, id), 0, "{id}");
    }
    server.stop().unwrap();
}

#[test]
fn job_id_is_percent_decoded() {
    let server = start(config(FOREVER));
    let id = submit(server.addr);
    let (_, digits) = id.split_once(':').unwrap();
    for target in [
        format!("/checkstatus?jobId={id}"),
        format!("/checkstatus?jobId=job%3A{digits}"),
        format!("/checkstatus?jobId=job%3a{digits}"),
        format!("/checkstatus?jobId=%6A%6F%62%3A{digits}"),
    ] {
        let resp = call(server.addr, "GET", &target);
        assert_eq!(progress_of(&resp), 0, "{target}: {resp:?}");
    }
    // The same on the SSE path.
    let (head, mut sse) = Sse::open(server.addr, &format!("/events?jobId=job%3A{digits}"), "");
    assert_eq!(head.status, 200, "{head:?}");
    sse.block().expect("retry");
    assert_eq!(status_event(&sse.event().expect("0%")).0, 0);
    drop(sse);
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------
// Long polling.
// ---------------------------------------------------------------------------

/// A long poll's target.
fn long_poll(id: &str, wait: &str, since: u8) -> String {
    format!("/checkstatus?jobId={}&wait={wait}&since={since}", enc(id))
}

#[test]
fn long_poll_is_held_until_the_next_step_lands() {
    let step = Duration::from_millis(400);
    let server = start(config(step));
    let id = submit(server.addr);
    let sent_ms = now_ms();
    let sent = Instant::now();
    let resp = call(server.addr, "GET", &long_poll(&id, "10", 0));
    let took = sent.elapsed();
    assert_eq!(progress_of(&resp), 10, "the next step's progress: {resp:?}");
    assert_eq!(resp.header("cache-control"), Some("no-store"), "{resp:?}");
    let updated: u64 = resp
        .header("job-updated-at")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Job-Updated-At: {resp:?}"));
    // The update it reports happened after the request was sent: it was held.
    assert!(
        updated >= sent_ms,
        "answered with an update from before the request ({updated} < {sent_ms})"
    );
    // And answered when that step landed, not at the 10 s wait.
    assert!(took < step + Duration::from_secs(2), "took {took:?}");
    server.stop().unwrap();
}

#[test]
fn many_held_long_polls_are_all_answered_by_one_step() {
    let step = Duration::from_millis(500);
    let server = start(config(step));
    let id = submit(server.addr);
    const N: usize = 20;
    let mut clients: Vec<Client> = (0..N)
        .map(|_| {
            let mut c = Client::connect(server.addr);
            c.request("GET", &long_poll(&id, "10", 0), "");
            c
        })
        .collect();
    wait_stat(server.addr, "long.held_now", RUN, |n| n == N as u64);
    for c in &mut clients {
        assert_eq!(progress_of(&c.response()), 10);
    }
    wait_stat(server.addr, "long.held_now", RUN, |n| n == 0);
    server.stop().unwrap();
}

#[test]
fn long_poll_times_out_with_the_current_status_after_wait() {
    let server = start(config(FOREVER));
    let id = submit(server.addr);
    let sent = Instant::now();
    let resp = call(server.addr, "GET", &long_poll(&id, "1", 0));
    let took = sent.elapsed();
    assert_eq!(progress_of(&resp), 0, "{resp:?}");
    assert!(took >= Duration::from_secs(1), "answered early: {took:?}");
    assert!(
        took < Duration::from_millis(2500),
        "answered late: {took:?}"
    );
    server.stop().unwrap();
}

#[test]
fn long_poll_already_past_since_is_answered_at_once() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    wait_progress(server.addr, &id, 30, RUN);
    let sent = Instant::now();
    let resp = call(server.addr, "GET", &long_poll(&id, "30", 10));
    let took = sent.elapsed();
    assert!(progress_of(&resp) >= 30, "{resp:?}");
    assert!(took < Duration::from_millis(500), "held for {took:?}");
    server.stop().unwrap();
}

#[test]
fn long_poll_wait_is_clamped_to_max_wait() {
    let server = start(JobsConfig {
        max_wait: Duration::from_secs(1),
        ..config(FOREVER)
    });
    let id = submit(server.addr);
    let sent = Instant::now();
    let resp = call(server.addr, "GET", &long_poll(&id, "3600", 0));
    let took = sent.elapsed();
    assert_eq!(progress_of(&resp), 0, "{resp:?}");
    assert!(took >= Duration::from_secs(1), "answered early: {took:?}");
    assert!(
        took < Duration::from_millis(2500),
        "not clamped to 1 s: {took:?}"
    );
    server.stop().unwrap();
}

#[test]
fn a_client_leaving_a_held_long_poll_is_noticed_at_once_and_counted() {
    let server = start(config(FOREVER));
    let id = submit(server.addr);
    let before = stat(&stats(server.addr), "long.left_while_held");
    let mut client = Client::connect(server.addr);
    client.request("GET", &long_poll(&id, "60", 0), "");
    wait_stat(server.addr, "long.held_now", RUN, |n| n == 1);
    let left = Instant::now();
    drop(client);
    // Noticed at once: long before the 60 s wait, or any step.
    let after = wait_stat(server.addr, "long.held_now", Duration::from_secs(2), |n| {
        n == 0
    });
    assert!(left.elapsed() < Duration::from_secs(2));
    assert_eq!(
        stat(&after, "long.left_while_held"),
        before + 1,
        "{after:?}"
    );
    assert_eq!(stat(&after, "long.timed_out"), 0, "{after:?}");
    let app = server.stop().unwrap();
    let costs = app.app().costs().of(Pattern::LongPoll);
    assert_eq!(costs.left_while_held, 1, "{costs:?}");
    assert_eq!(costs.held_now, 0, "{costs:?}");
}

// ---------------------------------------------------------------------------
// Server-sent events.
// ---------------------------------------------------------------------------

/// Checks an SSE response head and its first block, `retry: <ms>`.
fn assert_sse_start(head: &Resp, sse: &mut Sse) {
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.header("content-type")
            .map(|v| v.split(';').next().unwrap().trim()),
        Some("text/event-stream"),
        "{head:?}"
    );
    assert_eq!(head.header("cache-control"), Some("no-store"), "{head:?}");
    let first = sse.block().expect("a first block");
    let retry = first
        .field("retry")
        .unwrap_or_else(|| panic!("retry first: {first:?}"));
    assert!(retry.parse::<u64>().is_ok_and(|ms| ms > 0), "{first:?}");
    assert_eq!(first.0.lines().count(), 1, "retry alone: {first:?}");
}

#[test]
fn sse_sends_retry_then_every_update_in_order_then_ends() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    let (head, mut sse) = Sse::open(server.addr, &format!("/events?jobId={}", enc(&id)), "");
    assert_eq!(
        head.header("transfer-encoding"),
        Some("chunked"),
        "{head:?}"
    );
    assert_sse_start(&head, &mut sse);
    let events = sse.rest();
    let ids: Vec<u8> = events.iter().map(|e| e.0).collect();
    assert_eq!(ids, progress_after(None), "{events:?}");
    let handle_ms = JobId::parse(&id).unwrap().ms();
    assert!(events[0].1 >= handle_ms, "{events:?}");
    assert!(
        events.windows(2).all(|w| w[0].1 <= w[1].1),
        "stamps in order: {events:?}"
    );
    assert!(sse.ended, "the chunked terminator was read");
    // The connection is still good for another request.
    let mut client = sse.client;
    client.request("GET", &format!("/checkstatus?jobId={}", enc(&id)), "");
    assert_eq!(progress_of(&client.response()), 100);
    drop(client);
    server.stop().unwrap();
}

#[test]
fn sse_sends_a_heartbeat_comment_after_quiet() {
    let heartbeat = Duration::from_millis(200);
    let server = start(JobsConfig {
        heartbeat: Some(heartbeat),
        ..config(FOREVER)
    });
    let id = submit(server.addr);
    let (head, mut sse) = Sse::open(server.addr, &format!("/events?jobId={}", enc(&id)), "");
    assert_sse_start(&head, &mut sse);
    assert_eq!(status_event(&sse.block().expect("0%")).0, 0);
    let quiet = Instant::now();
    let beat = sse.block().expect("a heartbeat");
    let after = quiet.elapsed();
    assert_eq!(beat.0, ": heartbeat", "{beat:?}");
    assert!(
        after + Duration::from_millis(50) >= heartbeat,
        "heartbeat after {after:?}"
    );
    assert!(after < Duration::from_secs(2), "heartbeat after {after:?}");
    // And again after the next quiet spell.
    assert!(sse.block().expect("another heartbeat").is_comment());
    drop(sse);
    server.stop().unwrap();
}

#[test]
fn sse_last_event_id_header_resumes_after_30_with_no_gap_or_repeat() {
    let server = start(config(Duration::from_millis(100)));
    let id = submit(server.addr);
    // A client that saw 30% reconnects while the job still runs: it gets what
    // it missed at once, then the rest as it comes.
    wait_progress(server.addr, &id, 30, RUN);
    let (head, mut sse) = Sse::open(
        server.addr,
        &format!("/events?jobId={}", enc(&id)),
        "Last-Event-ID: 30\r\n",
    );
    assert_eq!(
        head.header("transfer-encoding"),
        Some("chunked"),
        "still running, so a stream: {head:?}"
    );
    assert_sse_start(&head, &mut sse);
    let ids: Vec<u8> = sse.rest().iter().map(|e| e.0).collect();
    assert_eq!(ids, progress_after(Some(30)));
    drop(sse);
    server.stop().unwrap();
}

#[test]
fn sse_a_cursor_ahead_of_the_job_gets_only_what_comes_after_it() {
    // `Last-Event-ID: 30` on a job still at 0%: the events after the cursor are
    // 40%..100%, as for a long poll's `since` and the WebSocket's `since` (which
    // wait for 40%), not 0%..30% again.
    let server = start(config(STEP));
    let id = submit(server.addr);
    let (head, mut sse) = Sse::open(
        server.addr,
        &format!("/events?jobId={}", enc(&id)),
        "Last-Event-ID: 30\r\n",
    );
    assert_sse_start(&head, &mut sse);
    let ids: Vec<u8> = sse.rest().iter().map(|e| e.0).collect();
    assert_eq!(ids, progress_after(Some(30)));
    drop(sse);
    server.stop().unwrap();
}

#[test]
fn sse_last_event_id_query_resumes_after_30_with_no_gap_or_repeat() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    // Once the job is done: everything after 30% at once, then the end.
    wait_progress(server.addr, &id, 100, RUN);
    let (head, mut sse) = Sse::open(
        server.addr,
        &format!("/events?jobId={}&lastEventId=30", enc(&id)),
        "",
    );
    assert_sse_start(&head, &mut sse);
    let ids: Vec<u8> = sse.rest().iter().map(|e| e.0).collect();
    assert_eq!(ids, progress_after(Some(30)));
    drop(sse);
    server.stop().unwrap();
}

#[test]
fn sse_an_empty_last_event_id_starts_from_the_beginning_either_way() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    wait_progress(server.addr, &id, 100, RUN);
    for (target, extra) in [
        (format!("/events?jobId={}&lastEventId=", enc(&id)), ""),
        (format!("/events?jobId={}", enc(&id)), "Last-Event-ID: \r\n"),
    ] {
        let (head, mut sse) = Sse::open(server.addr, &target, extra);
        assert_sse_start(&head, &mut sse);
        let ids: Vec<u8> = sse.rest().iter().map(|e| e.0).collect();
        assert_eq!(ids, progress_after(None), "{target} {extra:?}");
    }
    server.stop().unwrap();
}

#[test]
fn sse_reconnect_after_the_last_update_gets_204() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    wait_progress(server.addr, &id, 100, RUN);
    for (target, extra) in [
        (
            format!("/events?jobId={}", enc(&id)),
            "Last-Event-ID: 100\r\n",
        ),
        (format!("/events?jobId={}&lastEventId=100", enc(&id)), ""),
    ] {
        let resp = call_with(server.addr, "GET", &target, extra);
        assert_eq!(resp.status, 204, "{target} {extra:?}: {resp:?}");
        assert!(resp.body.is_empty(), "{resp:?}");
    }
    server.stop().unwrap();
}

#[test]
fn a_client_leaving_an_sse_stream_is_noticed_at_once_and_counted() {
    let server = start(config(FOREVER));
    let id = submit(server.addr);
    let before = stat(&stats(server.addr), "sse.left_while_held");
    let (head, mut sse) = Sse::open(server.addr, &format!("/events?jobId={}", enc(&id)), "");
    assert_sse_start(&head, &mut sse);
    assert_eq!(status_event(&sse.event().expect("0%")).0, 0);
    wait_stat(server.addr, "sse.held_now", RUN, |n| n == 1);
    // Everything sent was read, so closing is a FIN, not a reset.
    drop(sse);
    let left = Instant::now();
    let after = wait_stat(server.addr, "sse.held_now", Duration::from_secs(2), |n| {
        n == 0
    });
    assert!(left.elapsed() < Duration::from_secs(2));
    assert_eq!(stat(&after, "sse.left_while_held"), before + 1, "{after:?}");
    let app = server.stop().unwrap();
    let costs = app.app().costs().of(Pattern::Sse);
    assert_eq!(costs.left_while_held, 1, "{costs:?}");
    assert_eq!(costs.held_now, 0, "{costs:?}");
}

// ---------------------------------------------------------------------------
// WebSocket.
// ---------------------------------------------------------------------------

/// A tungstenite client on `ws://addr{path}`.
fn ws_connect(addr: std::net::SocketAddr, path: &str) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (ws, response) =
        tungstenite::client(format!("ws://{addr}{path}"), stream).expect("handshake accepted");
    assert_eq!(response.status(), 101);
    ws
}

/// Every text message up to the close, which must be 1000; the `(progress,
/// at_ms)` of each.
fn ws_updates(ws: &mut tungstenite::WebSocket<TcpStream>) -> Vec<(u8, u64)> {
    let mut out = Vec::new();
    for _ in 0..1000 {
        match ws.read().expect("a message") {
            Message::Text(text) => {
                let progress: u8 = text
                    .strip_prefix("JobStatus: ")
                    .and_then(|t| t.split('%').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("not a status: {text:?}"));
                out.push((progress, parse_status_at(&text, progress)));
            }
            Message::Close(frame) => {
                let frame = frame.expect("a close code");
                assert_eq!(frame.code, CloseCode::Normal, "{frame:?} after {out:?}");
                // tungstenite answered the close: the closing handshake is
                // complete, and nothing follows it.
                match ws.read() {
                    Err(tungstenite::Error::ConnectionClosed) => return out,
                    Err(e) => panic!("after the close: {e}"),
                    Ok(m) => panic!("after the close: {m:?}"),
                }
            }
            other => panic!("unexpected {other:?} after {out:?}"),
        }
    }
    panic!("never closed: {out:?}");
}

#[test]
fn ws_jobs_gets_every_update_as_text_then_a_1000_close() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    let mut ws = ws_connect(server.addr, &format!("/jobs?jobId={id}"));
    let updates = ws_updates(&mut ws);
    let progress: Vec<u8> = updates.iter().map(|u| u.0).collect();
    assert_eq!(progress, progress_after(None), "{updates:?}");
    assert!(updates.windows(2).all(|w| w[0].1 <= w[1].1), "{updates:?}");
    drop(ws);
    server.stop().unwrap();
}

#[test]
fn ws_jobs_since_starts_after_it() {
    let server = start(config(STEP));
    let id = submit(server.addr);
    let mut ws = ws_connect(server.addr, &format!("/jobs?jobId={}&since=30", enc(&id)));
    let progress: Vec<u8> = ws_updates(&mut ws).iter().map(|u| u.0).collect();
    assert_eq!(progress, progress_after(Some(30)));
    drop(ws);
    server.stop().unwrap();
}

#[test]
fn ws_unknown_job_is_refused_404_and_a_bad_one_400() {
    let server = start(config(FOREVER));
    for (path, status) in [
        ("/jobs?jobId=job:1".to_string(), 404),
        ("/jobs?jobId=job%3A1".to_string(), 404),
        ("/jobs?jobId=nonsense".to_string(), 400),
        ("/jobs".to_string(), 400),
    ] {
        let raw = ws_support::RawWs::open(server.addr, &ws_support::handshake_request(&path, ""));
        let expected = format!("HTTP/1.1 {status} ");
        assert!(
            raw.response.starts_with(&expected),
            "{path}: {}",
            raw.response
        );
        // tungstenite sees the same refusal.
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        match tungstenite::client(format!("ws://{}{path}", server.addr), stream) {
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                assert_eq!(resp.status(), status, "{path}")
            }
            Err(e) => panic!("{path}: {e}"),
            Ok(_) => panic!("{path}: accepted"),
        }
    }
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------
// The store's bounds.
// ---------------------------------------------------------------------------

#[test]
fn a_finished_job_expires_after_keep() {
    let keep = Duration::from_millis(300);
    let server = start(JobsConfig {
        jobs: JobConfig {
            step: Duration::from_millis(20),
            keep,
            ..JobConfig::default()
        },
        ..JobsConfig::default()
    });
    let id = submit(server.addr);
    let done = wait_progress(server.addr, &id, 100, RUN);
    let done_ms: u64 = done.header("job-updated-at").unwrap().parse().unwrap();
    let target = format!("/checkstatus?jobId={}", enc(&id));
    let deadline = Instant::now() + RUN;
    let gone = loop {
        let resp = call(server.addr, "GET", &target);
        if resp.status == 404 {
            break now_ms();
        }
        assert_eq!(progress_of(&resp), 100, "{resp:?}");
        assert!(Instant::now() < deadline, "never expired");
        std::thread::sleep(Duration::from_millis(10));
    };
    let kept = gone - done_ms;
    assert!(
        kept + 1 >= keep.as_millis() as u64,
        "expired {kept} ms after its 100%, keep is {keep:?}"
    );
    // Every path says so.
    let resp = call(server.addr, "GET", &format!("/events?jobId={}", enc(&id)));
    assert_eq!(resp.status, 404, "{resp:?}");
    let resp = call(server.addr, "GET", &long_poll(&id, "5", 0));
    assert_eq!(resp.status, 404, "{resp:?}");
    server.stop().unwrap();
}

#[test]
fn submits_over_max_jobs_get_503_with_retry_after() {
    let server = start(JobsConfig {
        jobs: JobConfig {
            step: Duration::from_secs(10),
            max_jobs: 3,
            ..JobConfig::default()
        },
        ..JobsConfig::default()
    });
    let ids: Vec<String> = (0..3).map(|_| submit(server.addr)).collect();
    for _ in 0..2 {
        let resp = call(server.addr, "POST", "/submit");
        assert_eq!(resp.status, 503, "{resp:?}");
        let retry: u64 = resp
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a Retry-After in seconds: {resp:?}"));
        // Nothing has finished: a place frees up no sooner than the first job's
        // next step (within 10 s) plus the 600 s a finished job is kept.
        assert!((601..=610).contains(&retry), "{resp:?}");
        assert!(
            String::from_utf8_lossy(&resp.body).contains(&format!("retry in {retry} s")),
            "the body says the same as the header: {resp:?}"
        );
    }
    for id in &ids {
        assert_eq!(status(server.addr, id), 0);
    }
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------
// Bad input.
// ---------------------------------------------------------------------------

/// Checks a 400 whose body names `words` (each, case-insensitively).
fn assert_400(addr: std::net::SocketAddr, target: &str, words: &[&str]) {
    let resp = call(addr, "GET", target);
    assert_eq!(resp.status, 400, "{target}: {resp:?}");
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{target}: {resp:?}"
    );
    let text = resp.text().to_lowercase();
    for word in words {
        assert!(
            text.contains(&word.to_lowercase()),
            "{target}: the body names {word:?}: {:?}",
            resp.text()
        );
    }
}

#[test]
fn every_bad_input_is_a_400_naming_which() {
    let server = start(config(FOREVER));
    let addr = server.addr;
    let id = enc(&submit(addr));
    for path in ["/checkstatus", "/events"] {
        assert_400(addr, path, &["jobId", "missing"]);
        assert_400(addr, &format!("{path}?other=1"), &["jobId", "missing"]);
        for bad in [
            "nonsense", "job:", "job:abc", "job:017", "job:1-0", "job%3Ax", "job%3", "job%ZZ1",
        ] {
            assert_400(addr, &format!("{path}?jobId={bad}"), &["jobId"]);
        }
    }
    for wait in ["abc", "-1", "1.5x", ""] {
        assert_400(
            addr,
            &format!("/checkstatus?jobId={id}&wait={wait}&since=0"),
            &["wait"],
        );
    }
    assert_400(addr, &format!("/checkstatus?jobId={id}&wait=5"), &["since"]);
    for since in ["abc", "-1", ""] {
        assert_400(
            addr,
            &format!("/checkstatus?jobId={id}&wait=5&since={since}"),
            &["since"],
        );
    }
    // The job is untouched by all that.
    assert_eq!(status(addr, &id.replace("%3A", ":")), 0);
    server.stop().unwrap();
}

#[test]
fn unknown_handles_and_paths_are_404() {
    let server = start(config(FOREVER));
    let addr = server.addr;
    submit(addr);
    for target in [
        "/checkstatus?jobId=job:1".to_string(),
        "/checkstatus?jobId=job%3A1-5".to_string(),
        long_poll("job:1", "5", 0),
        "/events?jobId=job:1".to_string(),
        "/nope".to_string(),
        "/submit/extra".to_string(),
    ] {
        let sent = Instant::now();
        let resp = call(addr, "GET", &target);
        assert_eq!(resp.status, 404, "{target}: {resp:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{target}: not held"
        );
    }
    server.stop().unwrap();
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let server = start(config(FOREVER));
    let addr = server.addr;
    for (method, target, allowed) in [
        ("GET", "/submit", "POST"),
        ("PUT", "/submit", "POST"),
        ("DELETE", "/submit", "POST"),
        ("POST", "/checkstatus?jobId=job:1", "GET"),
        ("DELETE", "/checkstatus", "GET"),
        ("POST", "/events?jobId=job:1", "GET"),
        ("PUT", "/events", "GET"),
        ("POST", "/", "HEAD"),
        ("DELETE", "/stats", "HEAD"),
    ] {
        let resp = call(addr, method, target);
        assert_eq!(resp.status, 405, "{method} {target}: {resp:?}");
        let allow = resp
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {target}: no Allow: {resp:?}"));
        let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(
            methods.contains(&allowed) && !methods.contains(&method),
            "{method} {target}: Allow: {allow}"
        );
    }
    server.stop().unwrap();
}

#[test]
fn head_gets_what_get_would_without_the_body() {
    let server = start(config(FOREVER));
    let id = submit(server.addr);
    let mut client = Client::connect(server.addr);
    for target in [
        "/".to_string(),
        format!("/checkstatus?jobId={}", enc(&id)),
        "/stats".into(),
    ] {
        let get = call(server.addr, "GET", &target);
        assert_eq!(get.status, 200, "GET {target}: {get:?}");
        client.request("HEAD", &target, "");
        let head = client.head();
        assert_eq!(head.status, 200, "HEAD {target}: {head:?}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {target}: {head:?}"
        );
        if target != "/stats" {
            // /stats counts the requests, so its length changes between the two.
            assert_eq!(
                head.header("content-length"),
                Some(get.body.len().to_string().as_str()),
                "HEAD {target}: the length GET's body has: {head:?}"
            );
        }
    }
    // No body came after any of the heads: the next answer on the connection
    // starts right after the last one.
    client.request("GET", &format!("/checkstatus?jobId={}", enc(&id)), "");
    let next = client.response();
    assert_eq!(next.status, 200, "{next:?}");
    assert_eq!(progress_of(&next), 0);
    server.stop().unwrap();
}

#[test]
fn the_lab_page_and_stats_are_served() {
    let server = start(config(FOREVER));
    let resp = call(server.addr, "GET", "/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(
        resp.header("content-type"),
        Some("text/html; charset=utf-8"),
        "{resp:?}"
    );
    assert!(resp.text().contains("<html") || resp.text().contains("<!DOCTYPE"));
    submit(server.addr);
    status(server.addr, &submit(server.addr));
    let stats = stats(server.addr);
    assert!(stat(&stats, "short.requests") >= 1, "{stats:?}");
    for (name, value) in &stats {
        assert!(
            !name.is_empty() && !name.contains(' ') && !value.contains(' '),
            "one `name value` a line: {name:?} {value:?}"
        );
    }
    server.stop().unwrap();
}

// ---------------------------------------------------------------------------
// The store file across a restart.
// ---------------------------------------------------------------------------

/// The settings of a server keeping its jobs in `store`.
fn stored(store: &std::path::Path, step: Duration) -> JobsConfig {
    JobsConfig {
        store: Some(store.to_path_buf()),
        ..config(step)
    }
}

/// Every record of a store file as (byte offset, payload text), and the file's
/// length.
fn records(path: &std::path::Path) -> (Vec<(u64, String)>, u64) {
    let bytes = std::fs::read(path).expect("read the store");
    let mut records = Vec::new();
    let mut at = 0usize;
    while at + HEADER_LEN <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        let payload = bytes
            .get(at + HEADER_LEN..at + HEADER_LEN + len)
            .expect("whole records only");
        records.push((at as u64, String::from_utf8_lossy(payload).into_owned()));
        at += HEADER_LEN + len;
    }
    assert_eq!(at, bytes.len(), "whole records only");
    (records, bytes.len() as u64)
}

/// The progress of `id` the records say: its last `progress` record's, 0 after
/// only its `submit`.
fn recorded_progress(records: &[(u64, String)], id: &str) -> Option<u8> {
    records.iter().rev().find_map(|(_, payload)| {
        let fields: Vec<&str> = payload.split(' ').collect();
        match fields.as_slice() {
            ["v1", "progress", job, p, _] if *job == id => p.parse().ok(),
            ["v1", "submit", job, _] if *job == id => Some(0),
            _ => None,
        }
    })
}

#[test]
fn a_restart_on_the_same_store_resumes_every_job() {
    let dir = TempDir::new("restart");
    let path = dir.path().join("jobs.store");
    let step = Duration::from_millis(60);
    let server = start(stored(&path, step));
    let a = submit(server.addr);
    let b = submit(server.addr);
    wait_progress(server.addr, &a, 30, RUN);
    let recorded_a = status(server.addr, &a);
    let recorded_b = status(server.addr, &b);
    drop(server.stop().unwrap());

    let server = start(stored(&path, step));
    let resumed_a = status(server.addr, &a);
    assert!(
        resumed_a >= recorded_a,
        "{a}: {resumed_a}% after the restart, {recorded_a}% before"
    );
    assert!(status(server.addr, &b) >= recorded_b);
    // Both resume to the end by themselves (nothing new submitted meanwhile).
    wait_progress(server.addr, &a, 100, RESUME);
    wait_progress(server.addr, &b, 100, RESUME);
    // A new handle is none of the old ones.
    let c = submit(server.addr);
    assert!(c != a && c != b, "{c}");
    drop(server.stop().unwrap());

    // And a finished job is still there after another restart.
    let server = start(stored(&path, step));
    assert_eq!(status(server.addr, &a), 100);
    drop(server.stop().unwrap());
}

#[test]
fn after_a_restart_an_sse_reader_is_told_which_updates_were_not_kept() {
    let dir = TempDir::new("restart-sse");
    let path = dir.path().join("jobs.store");
    let server = start(stored(&path, Duration::from_millis(60)));
    let id = submit(server.addr);
    wait_progress(server.addr, &id, 40, RUN);
    drop(server.stop().unwrap());

    // Back with a long step: the job stays where it was restored, and its log
    // holds that one update only.
    let server = start(stored(&path, Duration::from_secs(60)));
    let restored = status(server.addr, &id);
    assert!((40..100).contains(&restored), "restored at {restored}%");
    let (head, mut sse) = Sse::open(
        server.addr,
        &format!("/events?jobId={}", enc(&id)),
        "Last-Event-ID: 10\r\n",
    );
    assert_sse_start(&head, &mut sse);
    // 20% up to the one before the restored update were not kept: the stream
    // says so in a comment, then goes on from what it has.
    let missed = (restored - 20) / 10;
    let expected = if missed == 1 {
        ": missed 20%, 1 update not kept".to_string()
    } else {
        format!(": missed 20%-{}%, {missed} updates not kept", restored - 10)
    };
    let notice = sse.block().expect("a block after retry");
    assert_eq!(notice.0, expected, "{notice:?}");
    let event = sse.event().expect("the restored update");
    assert_eq!(status_event(&event).0, restored, "{event:?}");
    drop(sse);
    server.stop().unwrap();
}

#[test]
fn the_store_file_reports_its_appends_and_syncs_in_stats() {
    let dir = TempDir::new("stats");
    let path = dir.path().join("jobs.store");
    let server = start(stored(&path, Duration::from_secs(60)));
    submit(server.addr);
    submit(server.addr);
    // The syncs run on the journal's thread, at most one a second; /stats shows
    // them once taken in, and then nothing waits to reach the disk.
    wait_stat(server.addr, "journal.syncs", RUN, |n| n >= 1);
    let stats = wait_stat(server.addr, "journal.unsynced_bytes", RUN, |n| n == 0);
    assert_eq!(stat(&stats, "journal.records"), 2, "{stats:?}");
    assert_eq!(
        stat(&stats, "journal.bytes"),
        std::fs::metadata(&path).unwrap().len(),
        "{stats:?}"
    );
    assert!(stat(&stats, "journal.sync_max_us") <= stat(&stats, "journal.sync_us"));
    server.stop().unwrap();
}

#[test]
fn a_torn_last_record_is_cut_and_the_earlier_ones_kept() {
    let dir = TempDir::new("torn");
    let path = dir.path().join("jobs.store");
    let step = Duration::from_millis(60);
    let server = start(stored(&path, step));
    let a = submit(server.addr);
    wait_progress(server.addr, &a, 30, RUN);
    drop(server.stop().unwrap());

    let (recs, len) = records(&path);
    let before = recorded_progress(&recs, &a).expect("the job is recorded");
    assert!(before >= 30, "{recs:?}");
    let (last, _) = *recs.last().unwrap();
    // Once the last record is cut, the job's progress is the one before it.
    let kept = recorded_progress(&recs[..recs.len() - 1], &a).expect("its submit is kept");
    // A crash in the middle of the last append: a few bytes of it missing.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let app = JobsApp::new(stored(&path, step)).expect("start-up cuts a torn tail");
    let replayed = app.replayed().expect("a store was replayed");
    let torn = replayed.torn.expect("the torn record is reported");
    assert_eq!((torn.offset, torn.bytes_cut), (last, len - 3 - last));
    assert_eq!(replayed.records, recs.len() - 1, "{replayed:?}");
    assert_eq!(replayed.bytes, last, "{replayed:?}");
    assert!(replayed.warning().is_some());
    let server = start_app(app);
    // The records before the torn one still answer: the job is known, at the
    // progress they recorded (or a step on, if one has landed since).
    let resumed = status(server.addr, &a);
    assert!(
        resumed >= kept,
        "{a}: {resumed}%, the kept records say {kept}%"
    );
    wait_progress(server.addr, &a, 100, RESUME);
    drop(server.stop().unwrap());
    // The torn bytes were cut, and appends went on from there.
    let (recs, _) = records(&path);
    assert!(recs.iter().any(|r| r.0 == last), "{recs:?}");
    assert_eq!(recorded_progress(&recs, &a), Some(100));
}

#[test]
fn a_corrupt_middle_record_stops_start_up_naming_its_offset() {
    let dir = TempDir::new("corrupt");
    let path = dir.path().join("jobs.store");
    let step = Duration::from_millis(30);
    let server = start(stored(&path, step));
    // Three submits: at least three records, whatever the steps wrote.
    let a = submit(server.addr);
    submit(server.addr);
    submit(server.addr);
    wait_progress(server.addr, &a, 20, RUN);
    drop(server.stop().unwrap());

    let (recs, _) = records(&path);
    assert!(recs.len() >= 3, "{recs:?}");
    let bad = recs[1].0;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[bad as usize + HEADER_LEN] ^= 0x01;
    std::fs::File::create(&path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();

    let err = match JobsApp::new(stored(&path, step)) {
        Ok(_) => panic!("start-up with a corrupt record succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("byte offset {bad}")),
        "the error names byte offset {bad}: {err}"
    );
    // Nothing was changed.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
