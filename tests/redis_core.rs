//! The RESP core (`wirepatterns::resp`) against a real redis-server: pub/sub in
//! RESP2 and RESP3, messages in publish order, streams (`XADD MAXLEN ~`, `XREAD
//! BLOCK`), a thousand pipelined commands re-parsed in arbitrary splits, error
//! replies, and the harness itself: `CLIENT KILL` cuts subscribers, a restart keeps
//! its port (waiting while something else holds it) and a new connection works.
//!
//! Every test starts its own server (`tests/redis_support`) and talks to it over
//! blocking sockets whose reads have deadlines. They are `#[ignore]`d because they
//! need `redis-server`: run them with `cargo test --test redis_core -- --ignored`.

mod redis_support;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use redis_support::{RedisServer, RespClient};
use wirepatterns::resp::{Parsed, Parser, PubSub, Value, command, pubsub, xread};

fn bulk(s: &[u8]) -> Value {
    Value::Bulk(s.to_vec())
}

fn simple(s: &str) -> Value {
    Value::Simple(s.as_bytes().to_vec())
}

/// A stream id, `<ms>-<seq>`, as a pair that orders as ids do.
fn stream_id(id: &[u8]) -> (u64, u64) {
    let text = std::str::from_utf8(id).expect("ids are ASCII");
    let (ms, seq) = text.split_once('-').expect("ids are <ms>-<seq>");
    (
        ms.parse().expect("ms is a number"),
        seq.parse().expect("seq is a number"),
    )
}

/// The next value on `client`, read as a pub/sub message and handed to `check`
/// (the value itself is needed to tell arrays from pushes).
fn next_pubsub(client: &mut RespClient, check: impl FnOnce(&Value, PubSub<'_>)) {
    let value = client.read().expect("a pub/sub message");
    let message = pubsub(&value).unwrap_or_else(|| panic!("not a pub/sub message: {value:?}"));
    check(&value, message);
}

#[test]
#[ignore = "needs redis-server"]
fn publish_subscribe_round_trip_in_resp2() {
    let mut redis = RedisServer::require();
    let mut sub = RespClient::connect(redis.addr()).expect("connect");
    let mut out = Vec::new();
    command::subscribe(&mut out, &[b"room", b"other"]);
    sub.send_raw(&out).expect("send");
    for (channel, count) in [(&b"room"[..], 1), (b"other", 2)] {
        next_pubsub(&mut sub, |value, message| {
            assert!(matches!(value, Value::Array(_)), "RESP2: {value:?}");
            assert_eq!(message, PubSub::Subscribe { channel, count });
        });
    }
    assert_eq!(redis.numsub(b"room").expect("numsub"), 1);

    let mut publisher = RespClient::connect(redis.addr()).expect("connect");
    let mut out = Vec::new();
    command::publish(&mut out, b"room", b"hello\r\n\0 world");
    publisher.send_raw(&out).expect("send");
    // The reply counts the subscribers the message was handed to.
    assert_eq!(publisher.read().expect("reply"), Value::Integer(1));
    next_pubsub(&mut sub, |value, message| {
        assert!(matches!(value, Value::Array(_)), "RESP2: {value:?}");
        assert_eq!(
            message,
            PubSub::Message {
                channel: b"room",
                payload: b"hello\r\n\0 world"
            }
        );
    });

    // In RESP2 subscribe mode PING is answered by a `pong` message.
    let mut out = Vec::new();
    command::ping(&mut out, Some(b"still there"));
    sub.send_raw(&out).expect("send");
    next_pubsub(&mut sub, |_, message| {
        assert_eq!(
            message,
            PubSub::Pong {
                payload: b"still there"
            }
        );
    });

    let mut out = Vec::new();
    command::unsubscribe(&mut out, &[b"room"]);
    sub.send_raw(&out).expect("send");
    next_pubsub(&mut sub, |_, message| {
        assert_eq!(
            message,
            PubSub::Unsubscribe {
                channel: Some(b"room"),
                count: 1
            }
        );
    });
    redis.wait_numsub(b"room", 0).expect("unsubscribed");
    assert_eq!(
        publisher
            .call(&[b"PUBLISH", b"room", b"nobody"])
            .expect("reply"),
        Value::Integer(0)
    );
}

#[test]
#[ignore = "needs redis-server"]
fn publish_subscribe_round_trip_in_resp3() {
    let redis = RedisServer::require();
    let mut sub = RespClient::connect(redis.addr()).expect("connect");
    let Value::Map(hello) = sub.hello3().expect("HELLO 3") else {
        unreachable!("hello3 checks for a map")
    };
    let proto = hello
        .iter()
        .find(|(k, _)| k.as_bytes() == Some(b"proto"))
        .map(|(_, v)| v.clone());
    assert_eq!(proto, Some(Value::Integer(3)));

    let mut out = Vec::new();
    command::subscribe(&mut out, &[b"room"]);
    sub.send_raw(&out).expect("send");
    next_pubsub(&mut sub, |value, message| {
        assert!(matches!(value, Value::Push(_)), "RESP3: {value:?}");
        assert_eq!(
            message,
            PubSub::Subscribe {
                channel: b"room",
                count: 1
            }
        );
    });

    let mut publisher = RespClient::connect(redis.addr()).expect("connect");
    assert_eq!(
        publisher
            .call(&[b"PUBLISH", b"room", b"hi"])
            .expect("reply"),
        Value::Integer(1)
    );
    // A RESP3 subscriber may send any command: its reply comes after the push
    // already queued, and the two are told apart by their type alone.
    sub.send(&[b"ECHO", b"a reply"]).expect("send");
    next_pubsub(&mut sub, |value, message| {
        assert!(matches!(value, Value::Push(_)), "RESP3: {value:?}");
        assert_eq!(
            message,
            PubSub::Message {
                channel: b"room",
                payload: b"hi"
            }
        );
    });
    let reply = sub.read().expect("ECHO's reply");
    assert_eq!(reply, bulk(b"a reply"));
    assert_eq!(pubsub(&reply), None);
    // PING is an ordinary command here: `+PONG`, not a `pong` message.
    assert_eq!(sub.call(&[b"PING"]).expect("reply"), simple("PONG"));
}

#[test]
#[ignore = "needs redis-server"]
fn a_subscriber_gets_messages_in_publish_order_and_only_its_channel() {
    const N: usize = 500;
    let mut redis = RedisServer::require();
    let mut sub = RespClient::connect(redis.addr()).expect("connect");
    let mut elsewhere = RespClient::connect(redis.addr()).expect("connect");
    for (client, channel) in [(&mut sub, &b"room"[..]), (&mut elsewhere, b"lobby")] {
        client.send(&[b"SUBSCRIBE", channel]).expect("send");
        next_pubsub(client, |_, message| {
            assert_eq!(message, PubSub::Subscribe { channel, count: 1 });
        });
    }
    redis.wait_numsub(b"room", 1).expect("subscribed");

    // All N in one write: pipelined, so the server takes them in this order.
    let mut out = Vec::new();
    for i in 0..N {
        command::publish(&mut out, b"room", format!("message {i}").as_bytes());
    }
    let mut publisher = RespClient::connect(redis.addr()).expect("connect");
    publisher.send_raw(&out).expect("send");
    for i in 0..N {
        assert_eq!(publisher.read().expect("reply"), Value::Integer(1), "#{i}");
    }
    for i in 0..N {
        let want = format!("message {i}");
        next_pubsub(&mut sub, |_, message| {
            assert_eq!(
                message,
                PubSub::Message {
                    channel: b"room",
                    payload: want.as_bytes()
                }
            );
        });
    }
    // Every PUBLISH was handed to its subscribers before it was answered, so a
    // PING sent now is answered after anything `lobby` received: only the pong.
    elsewhere.send(&[b"PING"]).expect("send");
    next_pubsub(&mut elsewhere, |_, message| {
        assert_eq!(message, PubSub::Pong { payload: b"" });
    });
}

#[test]
#[ignore = "needs redis-server"]
fn xadd_trims_to_about_maxlen_and_xread_reads_after_an_id() {
    const ADDED: usize = 1000;
    const CAP: u64 = 100;
    let mut redis = RedisServer::require();
    let mut client = RespClient::connect(redis.addr()).expect("connect");

    let mut out = Vec::new();
    for i in 0..ADDED {
        let n = i.to_string();
        command::xadd(&mut out, b"chat", Some(CAP), b"*", &[(b"n", n.as_bytes())]);
    }
    client.send_raw(&out).expect("send");
    let mut ids = Vec::with_capacity(ADDED);
    for i in 0..ADDED {
        match client.read().expect("XADD's reply") {
            Value::Bulk(id) => ids.push(id),
            other => panic!("XADD #{i}: {other:?}"),
        }
    }
    assert!(
        ids.windows(2).all(|w| stream_id(&w[0]) < stream_id(&w[1])),
        "ids increase"
    );

    // `~` trims whole internal nodes (100 entries by default): at least CAP stay,
    // and far fewer than were added.
    let len = redis
        .command(&[b"XLEN", b"chat"])
        .expect("XLEN")
        .as_integer()
        .expect("an integer");
    assert!(
        (CAP as i64..=2 * CAP as i64).contains(&len),
        "XLEN {len} after {ADDED} adds with MAXLEN ~ {CAP}"
    );

    // From an id near the end: exactly the entries after it, oldest first.
    let from = &ids[ADDED - 11];
    let mut out = Vec::new();
    command::xread(&mut out, Some(50), Some(1000), &[(b"chat", from)]);
    client.send_raw(&out).expect("send");
    let reply = client.read().expect("XREAD's reply");
    let streams = xread(&reply).unwrap_or_else(|| panic!("not an XREAD reply: {reply:?}"));
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].stream, b"chat");
    let got: Vec<_> = streams[0].entries.iter().map(|e| e.id.to_vec()).collect();
    assert_eq!(got, ids[ADDED - 10..]);
    for (entry, i) in streams[0].entries.iter().zip(ADDED - 10..) {
        assert_eq!(entry.fields, [(&b"n"[..], i.to_string().as_bytes())]);
    }

    // From the last id, nothing new: BLOCK times out and the reply is a null.
    let last = ids[ADDED - 1].clone();
    let mut out = Vec::new();
    command::xread(&mut out, None, Some(200), &[(b"chat", &last)]);
    let asked = Instant::now();
    client.send_raw(&out).expect("send");
    let reply = client.read().expect("XREAD's reply");
    let waited = asked.elapsed();
    assert_eq!(reply, Value::Null);
    assert_eq!(xread(&reply), Some(Vec::new()));
    assert!(
        waited >= Duration::from_millis(180),
        "a 200 ms BLOCK answered after {waited:?}"
    );

    // A reader blocked on the last id is woken by the next XADD: the entry, pushed
    // to it by a pull that was waiting. Over RESP3 the reply is a map.
    let mut reader = RespClient::connect(redis.addr()).expect("connect");
    reader.hello3().expect("HELLO 3");
    let mut out = Vec::new();
    command::xread(&mut out, None, Some(5000), &[(b"chat", &last)]);
    reader.send_raw(&out).expect("send");
    // Wait until the server has it blocked, so the XADD is what wakes it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let blocked = redis.command(&[b"INFO", b"clients"]).expect("INFO");
        let text = String::from_utf8_lossy(blocked.as_bytes().expect("INFO is a string"));
        if text.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "reader never blocked: {text}");
        thread::sleep(Duration::from_millis(10));
    }
    let new_id = redis
        .command(&[b"XADD", b"chat", b"*", b"n", b"new"])
        .expect("XADD");
    let new_id = new_id.as_bytes().expect("an id").to_vec();
    assert!(stream_id(&new_id) > stream_id(&last));
    let reply = reader.read().expect("XREAD's reply");
    assert!(matches!(reply, Value::Map(_)), "RESP3: {reply:?}");
    let streams = xread(&reply).unwrap_or_else(|| panic!("not an XREAD reply: {reply:?}"));
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].entries.len(), 1);
    assert_eq!(streams[0].entries[0].id, new_id);
    assert_eq!(streams[0].entries[0].fields, [(&b"n"[..], &b"new"[..])]);
}

/// The payload of the `i`th ECHO: any bytes (CR, LF, NUL, `$`, `*` included), of
/// lengths from 0 to a few KiB, so replies cross read boundaries.
fn payload(i: usize) -> Vec<u8> {
    let len = (i * 37) % 3000;
    let alphabet = b"ab\r\n$*\0:z-";
    (0..len)
        .map(|j| alphabet[(i + j) % alphabet.len()])
        .collect()
}

#[test]
#[ignore = "needs redis-server"]
fn a_thousand_pipelined_commands_are_answered_in_order_however_the_bytes_are_split() {
    const N: usize = 1000;
    let redis = RedisServer::require();
    let mut client = RespClient::connect(redis.addr()).expect("connect");
    assert_eq!(
        client.call(&[b"SET", b"text", b"a string"]).expect("SET"),
        simple("OK")
    );

    // Four kinds of command in turn, each with a reply of its own kind.
    let mut out = Vec::new();
    let mut expected = Vec::with_capacity(N);
    let mut counter = 0;
    for i in 0..N {
        match i % 4 {
            0 => {
                command::write_command(&mut out, &[b"INCR", b"counter"]);
                counter += 1;
                expected.push(Value::Integer(counter));
            }
            1 => {
                command::write_command(&mut out, &[b"ECHO", &payload(i)]);
                expected.push(Value::Bulk(payload(i)));
            }
            2 => {
                command::write_command(&mut out, &[b"GET", b"missing"]);
                expected.push(Value::Null);
            }
            _ => {
                command::ping(&mut out, None);
                expected.push(simple("PONG"));
            }
        }
    }

    // Written by another thread while this one reads, so neither side's buffers
    // have to hold everything.
    let mut writer = client.stream().try_clone().expect("clone");
    let writing = thread::spawn(move || writer.write_all(&out));
    client.record();
    let mut got = Vec::with_capacity(N);
    for i in 0..N {
        got.push(client.read().unwrap_or_else(|e| panic!("reply #{i}: {e}")));
    }
    writing.join().expect("writer").expect("written");
    assert_eq!(got, expected);
    let bytes = client.take_recorded();

    // The same bytes again, cut at pseudo-random points (and one byte at a time):
    // the same replies, in the same order.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for max_piece in [1, 7, 100, 4096, 65536] {
        let mut parser = Parser::default();
        let mut buf = Vec::new();
        let mut values = Vec::with_capacity(N);
        let mut at = 0;
        while at < bytes.len() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let piece = 1 + (seed >> 33) as usize % max_piece;
            let end = (at + piece).min(bytes.len());
            buf.extend_from_slice(&bytes[at..end]);
            at = end;
            // Every whole reply now in the buffer; a bound on the count for form.
            for _ in 0..=buf.len() {
                match parser.parse(&buf).expect("valid RESP") {
                    Parsed::Complete { value, consumed } => {
                        values.push(value);
                        buf.drain(..consumed);
                    }
                    Parsed::Partial => break,
                }
            }
        }
        assert!(buf.is_empty(), "pieces of {max_piece}: bytes left over");
        assert_eq!(values, expected, "pieces of at most {max_piece} bytes");
    }
}

#[test]
#[ignore = "needs redis-server"]
fn an_error_reply_is_a_value_and_the_connection_goes_on() {
    let redis = RedisServer::require();
    for resp3 in [false, true] {
        let mut client = RespClient::connect(redis.addr()).expect("connect");
        if resp3 {
            client.hello3().expect("HELLO 3");
        }
        assert_eq!(
            client.call(&[b"SET", b"text", b"a string"]).expect("SET"),
            simple("OK")
        );
        // Pipelined: an error in the middle does not disturb the replies around it.
        let mut out = Vec::new();
        command::write_command(&mut out, &[b"LPUSH", b"text", b"x"]);
        command::write_command(&mut out, &[b"NOSUCHCOMMAND", b"x"]);
        command::xadd(&mut out, b"text", None, b"*", &[(b"f", b"v")]);
        command::write_command(&mut out, &[b"GET", b"text"]);
        client.send_raw(&out).expect("send");

        let wrong_type = client.read().expect("a reply");
        let message = wrong_type.as_error().expect("an error reply");
        assert!(message.starts_with(b"WRONGTYPE "), "{wrong_type:?}");
        let unknown = client.read().expect("a reply");
        let message = unknown.as_error().expect("an error reply");
        assert!(message.starts_with(b"ERR unknown command"), "{unknown:?}");
        let xadd = client.read().expect("a reply");
        assert!(
            xadd.as_error()
                .is_some_and(|m| m.starts_with(b"WRONGTYPE ")),
            "{xadd:?}"
        );
        assert_eq!(client.read().expect("GET"), bulk(b"a string"));
        assert_eq!(client.call(&[b"PING"]).expect("PING"), simple("PONG"));
    }
}

#[test]
#[ignore = "needs redis-server"]
fn restart_keeps_the_port_and_kill_clients_cuts_subscribers() {
    let mut redis = RedisServer::require();
    let port = redis.port();
    let pid = redis.pid().expect("running");

    // kill_clients: the subscriber's connection is closed, the server stays.
    let mut sub = RespClient::connect(redis.addr()).expect("connect");
    sub.send(&[b"SUBSCRIBE", b"room"]).expect("send");
    sub.read().expect("subscribe confirmed");
    redis.wait_numsub(b"room", 1).expect("subscribed");
    assert_eq!(redis.kill_clients("pubsub").expect("CLIENT KILL"), 1);
    assert!(
        sub.closed_within(Duration::from_secs(5))
            .expect("EOF, not a value"),
        "the subscriber was not cut"
    );
    redis.wait_numsub(b"room", 0).expect("unsubscribed");

    let mut client = RespClient::connect(redis.addr()).expect("connect");
    assert_eq!(
        client.call(&[b"SET", b"k", b"v"]).expect("SET"),
        simple("OK")
    );
    redis.restart().expect("restart");
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), Some(pid), "a new process");
    // The old connection died with the old process.
    assert!(
        client
            .closed_within(Duration::from_secs(5))
            .expect("EOF, not a value"),
        "the old connection is still open"
    );
    // A new one works, on a server that kept nothing.
    let mut client = RespClient::connect(redis.addr()).expect("connect again");
    assert_eq!(client.call(&[b"PING"]).expect("PING"), simple("PONG"));
    assert_eq!(client.call(&[b"GET", b"k"]).expect("GET"), Value::Null);
    assert_eq!(
        redis.command(&[b"DBSIZE"]).expect("DBSIZE"),
        Value::Integer(0)
    );

    // Stopped: nothing listens on the port; the log shows both runs.
    redis.stop().expect("stop");
    assert!(
        RespClient::connect(redis.addr()).is_err(),
        "still listening"
    );
    let log = redis.log();
    assert_eq!(
        log.matches("Ready to accept connections").count(),
        2,
        "{log}"
    );
}

#[test]
#[ignore = "needs redis-server"]
fn restart_waits_while_its_port_is_taken() {
    let mut redis = RedisServer::require();
    let port = redis.port();
    redis.stop().expect("stop");
    // Something else takes the port; it lets go a little later.
    let squatter = std::net::TcpListener::bind(redis.addr()).expect("the port is free");
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        drop(squatter);
    });
    redis.restart().expect("restart once the port is free");
    release.join().expect("released");
    assert_eq!(redis.port(), port);
    assert_eq!(redis.command(&[b"PING"]).expect("PING"), simple("PONG"));
    let log = redis.log();
    assert!(log.contains("Address already in use"), "{log}");
}
