//! Every phase transition and every deadline, on the state machine alone: the
//! clock is `t0` plus offsets, the "socket" is a byte slice.

use super::*;
use std::time::Duration;

fn config() -> Config {
    Config::default()
}

fn date() -> HttpDate {
    HttpDate::from_unix(784111777)
}

const MAX_INPUT: usize = 64 * 1024;

fn new_conn(t0: Instant) -> H1Conn {
    H1Conn::new(1, "127.0.0.1:5000".parse().unwrap(), Limits::default(), t0)
}

/// The client's bytes arrive in one read.
fn feed(c: &mut H1Conn, bytes: &[u8], now: Instant) {
    let space = c.read_space(8192, MAX_INPUT).expect("room");
    space[..bytes.len()].copy_from_slice(bytes);
    c.on_read(ReadCall::Data(bytes.len()), now);
}

/// The client reads everything queued; returns it.
fn drain(c: &mut H1Conn, now: Instant) -> String {
    let out = c.output().to_vec();
    if !out.is_empty() {
        c.on_write(WriteCall::Wrote(out.len()), &config(), now, |_| {});
    }
    String::from_utf8(out).unwrap()
}

/// A step, answering a head with a body as the default handler does: whole.
fn step(c: &mut H1Conn, now: Instant) -> Step {
    step_taking(c, now, BodyMode::Whole)
}

/// A step, answering a head with a body with `mode` (refusals: 413).
fn step_taking(c: &mut H1Conn, now: Instant, mode: BodyMode) -> Step {
    loop {
        match c.step(&config(), &date(), now) {
            Step::Head => {
                let res = Response::text(413, "too big\n");
                c.choose_body(mode, &res, &config(), &date(), now);
            }
            other => return other,
        }
    }
}

/// The body bytes handed out in parts until the step is not a part.
fn take_parts(c: &mut H1Conn, now: Instant) -> (Vec<u8>, Step) {
    let mut got = Vec::new();
    loop {
        match step_taking(c, now, BodyMode::Parts) {
            Step::BodyPart => {
                got.extend_from_slice(c.body_part());
                c.body_part_taken();
            }
            other => return (got, other),
        }
    }
}

#[test]
fn a_body_taken_in_parts_is_handed_out_as_it_is_decoded_then_the_request() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        t0,
    );
    assert_eq!(take_parts(&mut c, t0), (b"hello".to_vec(), Step::Idle));
    feed(&mut c, b"6\r\n world\r\n0\r\n\r\n", t0);
    assert_eq!(take_parts(&mut c, t0), (b" world".to_vec(), Step::Request));
    // The handler sees the head and no body: it had the body in parts.
    let (request, body) = c.request().unwrap();
    assert_eq!(request.path(), "/u");
    assert!(body.is_empty());
    respond(&mut c, Reply::Respond, "", t0);
    assert_eq!(c.phase(), Phase::Head);
    assert!(!c.take_incomplete_parts(true), "it completed");
}

#[test]
fn a_body_in_parts_has_no_limit_but_the_handler_s() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let len = Limits::default().max_body_bytes + 1;
    feed(
        &mut c,
        format!("PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\nabc").as_bytes(),
        t0,
    );
    assert_eq!(take_parts(&mut c, t0), (b"abc".to_vec(), Step::Idle));
    assert_eq!(c.phase(), Phase::Body, "no 413");
}

#[test]
fn a_body_in_parts_cut_by_a_bad_chunk_is_incomplete_not_complete() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n",
        t0,
    );
    let (got, next) = take_parts(&mut c, t0);
    assert_eq!(got, b"abc");
    assert_eq!(next, Step::Idle);
    assert_eq!(c.phase(), Phase::Closing, "400 for the bad chunk size");
    assert!(drain(&mut c, t0).starts_with("HTTP/1.1 400"));
    assert!(c.take_incomplete_parts(false), "told once");
    assert!(!c.take_incomplete_parts(true), "and only once");
}

#[test]
fn a_body_in_parts_whose_connection_closes_is_incomplete() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf",
        t0,
    );
    assert_eq!(take_parts(&mut c, t0), (b"half".to_vec(), Step::Idle));
    assert!(!c.take_incomplete_parts(false), "still open");
    assert!(c.take_incomplete_parts(true), "the connection is closing");
}

#[test]
fn rfc9110_10_1_1_a_head_refused_gets_its_answer_and_no_100_continue() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99\r\n\r\n",
        t0,
    );
    assert_eq!(step_taking(&mut c, t0, BodyMode::Reject), Step::Idle);
    let out = drain(&mut c, t0);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
    assert_eq!(c.phase(), Phase::Closing);
}

fn respond(c: &mut H1Conn, reply: Reply, body: &str, now: Instant) {
    let mut res = Response::new(if reply == Reply::Upgrade { 101 } else { 200 });
    res.body_mut().extend_from_slice(body.as_bytes());
    c.answer(reply, &res, &date(), now);
}

fn settle(c: &mut H1Conn, now: Instant) -> Settled {
    c.settle(&config(), now, false)
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn start_line_skips_leading_empty_lines() {
    assert_eq!(
        start_line(b"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        b"GET / HTTP/1.1"
    );
    assert_eq!(start_line(b"GET /partial"), b"GET /partial");
    assert_eq!(start_line(b""), b"");
}

#[test]
fn head_to_request_to_head_on_keep_alive() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    let (req, body) = c.request().unwrap();
    assert_eq!(req.path(), "/");
    assert!(body.is_empty());
    respond(&mut c, Reply::Respond, "hi", t0);
    assert_eq!(c.phase(), Phase::Head);
    assert_eq!(step(&mut c, t0), Step::Idle);
    let s = settle(&mut c, t0);
    assert_eq!((s.close, s.read, s.write), (None, true, true));
    assert_eq!(s.tally.heads, 1);
    let out = drain(&mut c, t0);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("Content-Length: 2\r\n\r\nhi"), "{out}");
    let s = settle(&mut c, t0);
    assert_eq!((s.close, s.write), (None, false));
    // Kept alive: first the output buffer is given back, then the idle timeout.
    let release = t0 + config().idle_release;
    assert_eq!(s.deadline, Some(release));
    c.on_deadline(&config(), &date(), release);
    assert_eq!(
        settle(&mut c, release).deadline,
        Some(t0 + config().idle_timeout)
    );
}

#[test]
fn a_body_arriving_in_parts_is_decoded_before_the_handler_sees_it() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello",
        t0,
    );
    assert_eq!(step(&mut c, t0), Step::Idle);
    assert_eq!(c.phase(), Phase::Body);
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        settle(&mut c, t1).deadline,
        Some(t0 + config().body_timeout)
    );
    feed(&mut c, b"world", t1);
    assert_eq!(step(&mut c, t1), Step::Request);
    assert_eq!(c.request().unwrap().1, b"helloworld");
    respond(&mut c, Reply::Respond, "", t1);
    assert_eq!(c.phase(), Phase::Head);
}

#[test]
fn rfc9110_10_1_1_continue_only_when_the_client_waits_for_it() {
    let t0 = Instant::now();
    let head = b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let mut c = new_conn(t0);
    feed(&mut c, head, t0);
    assert_eq!(step(&mut c, t0), Step::Idle);
    assert_eq!(drain(&mut c, t0), "HTTP/1.1 100 Continue\r\n\r\n");
    feed(&mut c, b"ok", t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Respond, "done", t0);
    let n = c.output().len();
    let mut costs = Vec::new();
    c.on_write(WriteCall::Wrote(n), &config(), t0, |cost| costs.push(*cost));
    let continue_len = b"HTTP/1.1 100 Continue\r\n\r\n".len() as u64;
    assert_eq!(
        costs[0].bytes_out,
        continue_len + n as u64,
        "the 100 counts"
    );

    // The body came with the head: the client did not wait, no 100.
    let mut c = new_conn(t0);
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"ok");
    feed(&mut c, &whole, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    assert_eq!(c.queued(), 0);
}

#[test]
fn rfc9112_9_3_2_pipelined_requests_are_answered_in_order() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let mut two = GET.to_vec();
    two.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    feed(&mut c, &two, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    assert_eq!(c.request().unwrap().0.path(), "/");
    respond(&mut c, Reply::Respond, "1", t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    assert_eq!(c.request().unwrap().0.path(), "/second");
    respond(&mut c, Reply::Respond, "2", t0);
    let out = drain(&mut c, t0);
    let first = out.find("\r\n\r\n1").unwrap();
    let second = out.find("\r\n\r\n2").unwrap();
    assert!(first < second, "{out}");
}

#[test]
fn a_held_request_makes_pipelined_ones_wait_until_it_is_answered() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let mut two = GET.to_vec();
    two.extend_from_slice(GET);
    feed(&mut c, &two, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Deferred, "", t0);
    assert_eq!(c.phase(), Phase::Waiting);
    assert_eq!(step(&mut c, t0), Step::Idle, "the second waits");
    let s = settle(&mut c, t0);
    assert_eq!(s.deadline, None, "a held request has no timeout of its own");
    assert!(s.read, "still read, to notice the client leaving");
    // Not held: respond() and start_stream() are refused in other phases.
    assert!(c.respond(&Response::text(200, "later"), &date()));
    assert!(!c.respond(&Response::text(200, "again"), &date()));
    assert_eq!(c.phase(), Phase::Head);
    assert_eq!(step(&mut c, t0), Step::Request);
}

#[test]
fn a_stream_is_chunked_and_ends_back_in_head() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Stream, "", t0);
    assert_eq!(c.phase(), Phase::Streaming);
    assert!(c.send_chunk(b"data: 1\n\n"));
    assert!(!c.send_raw(b"raw is for upgraded connections"));
    assert!(c.end_stream());
    assert!(!c.end_stream());
    assert_eq!(c.phase(), Phase::Head);
    let out = drain(&mut c, t0);
    assert!(out.contains("Transfer-Encoding: chunked\r\n\r\n"), "{out}");
    assert!(out.ends_with("\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n"), "{out}");
}

#[test]
fn rfc9112_6_3_an_http10_stream_is_delimited_by_closing() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, b"GET / HTTP/1.0\r\n\r\n", t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Stream, "", t0);
    assert!(c.send_chunk(b"part"));
    assert!(c.end_stream());
    assert_eq!(c.phase(), Phase::Closing);
    let out = drain(&mut c, t0);
    assert!(!out.contains("Transfer-Encoding"), "{out}");
    assert!(out.contains("Connection: close\r\n\r\npart"), "{out}");
    assert!(settle(&mut c, t0).send_fin);
}

#[test]
fn a_held_request_can_be_answered_with_a_stream() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Deferred, "", t0);
    assert!(!c.send_chunk(b"not yet"), "no stream before it starts");
    assert!(c.start_stream(&Response::new(200), &date()));
    assert_eq!(c.phase(), Phase::Streaming);
    assert!(!c.start_stream(&Response::new(200), &date()), "once");
    assert!(c.send_chunk(b"x"));
    assert!(c.end_stream());
    assert_eq!(c.phase(), Phase::Head);
}

#[test]
fn close_after_output_from_an_upgraded_connection_lingers_after_the_last_byte() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Upgrade, "", t0);
    assert!(c.send_raw(b"goodbye frame"));
    assert!(c.close_after_output());
    assert!(!c.send_raw(b"too late"));
    assert!(!settle(&mut c, t0).send_fin, "the frame is not written yet");
    assert!(drain(&mut c, t0).ends_with("goodbye frame"));
    assert!(settle(&mut c, t0).send_fin);
    assert!(!c.close_after_output(), "already lingering");
}

#[test]
fn abort_closes_at_once_dropping_what_is_queued_unless_already_lingering() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Upgrade, "", t0);
    drain(&mut c, t0);
    // A close frame queued behind data the peer never reads.
    assert!(c.send_raw(b"data the peer never reads, then a close frame"));
    assert!(c.close_after_output());
    assert!(!settle(&mut c, t0).send_fin, "nothing written: no FIN yet");
    let later = t0 + Duration::from_millis(300);
    assert!(c.abort());
    assert_eq!(c.queued(), 0, "the queue is dropped");
    assert!(!c.wants_read(&config(), MAX_INPUT));
    assert_eq!(step(&mut c, later), Step::Idle);
    assert_eq!(settle(&mut c, later).close, Some(CloseReason::Done));

    // Everything written and FIN sent: lingering is bounded on its own.
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Upgrade, "", t0);
    assert!(c.close_after_output());
    drain(&mut c, t0);
    assert!(settle(&mut c, t0).send_fin);
    assert!(!c.abort());
    assert_eq!(settle(&mut c, t0).close, None);
}

#[test]
fn an_upgrade_hands_the_bytes_to_the_handler() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let mut bytes = GET.to_vec();
    bytes.extend_from_slice(b"after");
    feed(&mut c, &bytes, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Upgrade, "", t0);
    assert_eq!(c.phase(), Phase::Upgraded);
    assert_eq!(step(&mut c, t0), Step::Upgraded);
    let mut input = c.take_input();
    assert_eq!(input.data_mut(), b"after");
    c.return_input(input, 2, MAX_INPUT);
    assert_eq!(step(&mut c, t0), Step::Upgraded);
    let input = c.take_input();
    assert_eq!(input.data(), b"ter");
    c.return_input(input, 3, MAX_INPUT);
    assert_eq!(step(&mut c, t0), Step::Idle);
    assert!(c.send_raw(b"frame"));
    assert!(drain(&mut c, t0).ends_with("\r\n\r\nframe"));
    let release = t0 + config().idle_release;
    assert_eq!(
        settle(&mut c, t0).deadline,
        Some(release),
        "only the buffer release"
    );
    c.on_deadline(&config(), &date(), release);
    assert_eq!(
        settle(&mut c, release).deadline,
        None,
        "no timeout after 101"
    );
}

#[test]
fn an_upgraded_handler_that_cannot_use_a_full_buffer_closes_it() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Upgrade, "", t0);
    assert!(c.return_read_buffer().is_some());
    let space = c.read_space(64, 64).expect("room");
    space.fill(0);
    c.on_read(ReadCall::Data(64), t0);
    let input = c.take_input();
    // Full at a maximum of 64 bytes, and nothing used.
    c.return_input(input, 0, 64);
    assert_eq!(c.phase(), Phase::Closing);
    drain(&mut c, t0);
    assert!(settle(&mut c, t0).send_fin);
}

#[test]
fn rfc9112_9_6_close_then_fin_then_linger_until_the_client_closes() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        t0,
    );
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Respond, "bye", t0);
    assert_eq!(c.phase(), Phase::Closing);
    let s = settle(&mut c, t0);
    assert!(!s.send_fin, "not before the response is written");
    assert!(drain(&mut c, t0).contains("Connection: close\r\n"));
    let s = settle(&mut c, t0);
    assert!(s.send_fin);
    assert_eq!(c.phase(), Phase::Lingering);
    assert_eq!(s.deadline, Some(t0 + config().linger_timeout));
    // What the client still sends is read and dropped.
    feed(&mut c, b"GET /ignored HTTP/1.1\r\n\r\n", t0);
    assert_eq!(step(&mut c, t0), Step::Idle);
    c.on_read(ReadCall::Ended, t0);
    assert_eq!(settle(&mut c, t0).close, Some(CloseReason::Done));
}

#[test]
fn bad_input_gets_its_status_and_nothing_after_it_is_parsed() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        t0,
    );
    assert_eq!(step(&mut c, t0), Step::Idle);
    assert_eq!(c.phase(), Phase::Closing);
    let s = settle(&mut c, t0);
    assert_eq!(s.tally.error_status, Some(400));
    let out = drain(&mut c, t0);
    assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
    assert!(out.contains("Host"), "names the rule: {out}");
    assert!(!out.contains("/next"));
    assert!(settle(&mut c, t0).send_fin);
}

#[test]
fn a_connection_that_never_sends_is_closed_quietly_at_the_header_timeout() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let s = settle(&mut c, t0);
    let at = t0 + config().header_timeout;
    assert_eq!(s.deadline, Some(at));
    c.on_deadline(&config(), &date(), at - Duration::from_millis(1));
    assert_eq!(settle(&mut c, at).close, None, "not yet");
    c.on_deadline(&config(), &date(), at);
    let s = settle(&mut c, at);
    assert_eq!(s.close, Some(CloseReason::Timeout));
    assert!(s.tally.timed_out);
    assert_eq!(
        c.queued(),
        0,
        "quietly: no 408 to a client that sent nothing"
    );
}

#[test]
fn rfc9110_15_5_9_a_head_that_stalls_gets_408() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let t1 = t0 + Duration::from_secs(3);
    feed(&mut c, b"GET / HTTP/1.1\r\nHo", t1);
    assert_eq!(step(&mut c, t1), Step::Idle);
    let s = settle(&mut c, t1);
    let at = t1 + config().header_timeout;
    assert_eq!(s.deadline, Some(at), "from the head's first byte");
    c.on_deadline(&config(), &date(), at);
    assert_eq!(c.phase(), Phase::Closing);
    let s = settle(&mut c, at);
    assert_eq!((s.tally.error_status, s.tally.timed_out), (Some(408), true));
    assert!(drain(&mut c, at).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
}

#[test]
fn a_body_that_stalls_gets_408() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(
        &mut c,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc",
        t0,
    );
    assert_eq!(step(&mut c, t0), Step::Idle);
    let t1 = t0 + Duration::from_secs(20);
    feed(&mut c, b"de", t1);
    assert_eq!(step(&mut c, t1), Step::Idle);
    let at = t1 + config().body_timeout;
    assert_eq!(
        settle(&mut c, t1).deadline,
        Some(at),
        "moved by the last body byte"
    );
    c.on_deadline(&config(), &date(), at);
    assert!(drain(&mut c, at).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert_eq!(settle(&mut c, at).tally.error_status, Some(408));
}

#[test]
fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Respond, "", t0);
    let t1 = t0 + Duration::from_millis(5);
    drain(&mut c, t1);
    let at = t1 + config().idle_timeout;
    let deadline = settle(&mut c, t1).deadline;
    assert_eq!(
        deadline,
        Some(t1 + config().idle_release),
        "release comes first"
    );
    c.on_deadline(&config(), &date(), at);
    assert_eq!(settle(&mut c, at).close, Some(CloseReason::Timeout));
}

#[test]
fn lingering_ends_at_the_linger_timeout() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, b"BAD\r\n\r\n", t0);
    step(&mut c, t0);
    drain(&mut c, t0);
    assert!(settle(&mut c, t0).send_fin);
    let at = t0 + config().linger_timeout;
    c.on_deadline(&config(), &date(), at);
    assert_eq!(settle(&mut c, at).close, Some(CloseReason::BadRequest));
}

#[test]
fn end_of_file_while_a_request_is_held_closes_at_once() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Deferred, "", t0);
    assert_eq!(settle(&mut c, t0).close, None);
    c.on_read(ReadCall::Ended, t0);
    assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));

    // Unless the config keeps it: then the held answer still goes out.
    let keep = Config {
        hold_after_half_close: true,
        ..config()
    };
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Deferred, "", t0);
    c.on_read(ReadCall::Ended, t0);
    assert_eq!(c.settle(&keep, t0, false).close, None);
    assert!(c.respond(&Response::text(200, "late"), &date()));
    assert!(drain(&mut c, t0).ends_with("late"));
    assert_eq!(
        c.settle(&keep, t0, false).close,
        Some(CloseReason::PeerClosed)
    );
}

#[test]
fn end_of_file_while_streaming_closes_at_once() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Stream, "", t0);
    drain(&mut c, t0);
    assert_eq!(settle(&mut c, t0).close, None);
    c.on_read(ReadCall::Ended, t0);
    assert!(!c.wants_read(&config(), MAX_INPUT));
    assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));
}

#[test]
fn a_request_answered_at_once_reaches_a_client_that_half_closed() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    c.on_read(ReadCall::Ended, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Respond, "still", t0);
    let s = settle(&mut c, t0);
    assert_eq!(s.close, None, "not before the answer is written");
    assert!(drain(&mut c, t0).ends_with("still"));
    assert_eq!(settle(&mut c, t0).close, Some(CloseReason::PeerClosed));
}

#[test]
fn backpressure_stops_parsing_until_the_client_reads() {
    let t0 = Instant::now();
    let small = Config {
        max_queued_output: 100,
        ..config()
    };
    let mut c = new_conn(t0);
    let mut two = GET.to_vec();
    two.extend_from_slice(GET);
    feed(&mut c, &two, t0);
    assert_eq!(c.step(&small, &date(), t0), Step::Request);
    respond(&mut c, Reply::Respond, &"x".repeat(500), t0);
    assert_eq!(c.step(&small, &date(), t0), Step::Backlogged);
    let s = c.settle(&small, t0, false);
    assert!(s.tally.paused && !s.read && s.write);
    assert!(!c.wants_read(&small, MAX_INPUT));
    let all = c.output().len();
    assert!(
        c.on_write(WriteCall::Wrote(all), &small, t0, |_| {}),
        "resumes"
    );
    assert_eq!(c.step(&small, &date(), t0), Step::Request);
}

#[test]
fn buffers_grown_for_a_burst_are_given_back_after_idle_release() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    step(&mut c, t0);
    respond(&mut c, Reply::Upgrade, "", t0);
    drain(&mut c, t0);
    c.release_buffers();
    let _ = c.return_read_buffer();
    let at_rest = c.capacity();
    // A burst: 400 frames queued, then written.
    for _ in 0..400 {
        c.send_raw(&[b'f'; 300]);
    }
    drain(&mut c, t0);
    let _ = c.return_read_buffer();
    assert!(c.capacity() > at_rest + 100_000, "{}", c.capacity());
    let s = settle(&mut c, t0);
    let at = t0 + config().idle_release;
    assert_eq!(s.deadline, Some(at));
    c.on_deadline(&config(), &date(), at - Duration::from_millis(1));
    assert!(c.capacity() > at_rest, "not before idle_release");
    c.on_deadline(&config(), &date(), at);
    assert_eq!(c.capacity(), at_rest);
    assert_eq!(settle(&mut c, at).deadline, None, "nothing left to release");
}

#[test]
fn shutdown_closes_idle_connections_and_lets_held_ones_finish() {
    let t0 = Instant::now();
    let mut idle = new_conn(t0);
    idle.begin_shutdown(t0);
    assert_eq!(settle(&mut idle, t0).close, Some(CloseReason::Shutdown));

    let mut held = new_conn(t0);
    feed(&mut held, GET, t0);
    step(&mut held, t0);
    respond(&mut held, Reply::Deferred, "", t0);
    held.begin_shutdown(t0);
    let s = settle(&mut held, t0);
    assert_eq!(s.close, None);
    assert_eq!(s.deadline, Some(t0 + config().shutdown_grace));
    assert!(held.respond(&Response::text(200, "done"), &date()));
    let out = drain(&mut held, t0);
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(settle(&mut held, t0).send_fin);

    // What has not finished by the end of the grace period is closed.
    let mut stuck = new_conn(t0);
    feed(&mut stuck, GET, t0);
    step(&mut stuck, t0);
    respond(&mut stuck, Reply::Deferred, "", t0);
    stuck.begin_shutdown(t0);
    stuck.on_deadline(&config(), &date(), t0 + config().shutdown_grace);
    assert_eq!(settle(&mut stuck, t0).close, Some(CloseReason::Shutdown));
}

#[test]
fn pipelined_requests_share_one_read_and_one_write_in_their_costs() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    let three = [GET, GET, GET].concat();
    feed(&mut c, &three, t0);
    c.on_read(ReadCall::WouldBlock, t0);
    for _ in 0..3 {
        assert_eq!(step(&mut c, t0), Step::Request);
        respond(&mut c, Reply::Respond, "ok", t0);
    }
    let n = c.output().len();
    let mut costs = Vec::new();
    c.on_write(WriteCall::Wrote(n), &config(), t0, |cost| costs.push(*cost));
    assert_eq!(costs.len(), 3);
    let reads: u32 = costs.iter().map(|c| c.read_calls).sum();
    let writes: u32 = costs.iter().map(|c| c.write_calls).sum();
    assert_eq!(
        (reads, writes),
        (2, 1),
        "the connection made 2 reads and 1 write"
    );
    assert!(
        costs
            .iter()
            .all(|c| c.read_group == (0, 2) && c.write_group == (0, 2))
    );
    let io = c.io();
    assert_eq!((io.read_calls, io.write_calls), (2, 1));
    assert_eq!(io.bytes_in, three.len() as u64);
}

#[test]
fn a_source_is_written_only_when_upgraded_and_only_its_frame_rest_once_closing() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    assert_eq!(c.source_use(), SourceUse::None, "plain HTTP has no source");
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Upgrade, "", t0);
    assert_eq!(c.source_use(), SourceUse::All);
    drain(&mut c, t0);
    assert!(c.close_after_output());
    assert_eq!(c.source_use(), SourceUse::FrameRest);
    assert!(c.abort());
    assert_eq!(c.source_use(), SourceUse::None, "aborted: nothing more");
}

#[test]
fn source_bytes_left_keep_write_interest_and_hold_back_fin() {
    let t0 = Instant::now();
    let mut c = new_conn(t0);
    feed(&mut c, GET, t0);
    assert_eq!(step(&mut c, t0), Step::Request);
    respond(&mut c, Reply::Upgrade, "", t0);
    drain(&mut c, t0);
    let t1 = t0 + Duration::from_secs(1);
    let before = c.io().bytes_out;
    c.on_source_write(100, false, t1);
    assert_eq!(c.io().bytes_out, before + 100);
    assert_eq!(c.io().write_calls, 2, "the 101's write and the source's");
    c.set_source_pending(50);
    let s = settle(&mut c, t1);
    assert!(s.write, "WRITABLE while the source has bytes left");
    // Closing with the rest of a cut frame still to write: no FIN yet.
    assert!(c.close_after_output());
    assert!(!settle(&mut c, t1).send_fin);
    c.on_source_write(50, true, t1);
    c.set_source_pending(0);
    assert_eq!(
        c.io().write_calls,
        2,
        "a call counted already is not counted again"
    );
    assert!(settle(&mut c, t1).send_fin);
}
