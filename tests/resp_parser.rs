//! The RESP reply parser (`wirepatterns::resp`): the spec's examples for every
//! type, every reply split at every byte and fed byte by byte, pipelined replies,
//! malformed replies refused with the error that names their rule, the limits
//! enforced on headers before data, a round trip of generated value trees, and the
//! pub/sub and XREAD readers over real reply bytes.

use proptest::prelude::*;
use wirepatterns::resp::{
    Limits, Parsed, Parser, PubSub, RespError, StreamEntries, StreamEntry, StreamId, StreamInfo,
    Value, pubsub, stream_info, xread,
};

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

fn simple(s: &str) -> Value {
    Value::Simple(s.as_bytes().to_vec())
}

/// Parses `bytes` in one call, expecting one whole reply that uses all of them.
fn parse_whole(bytes: &[u8]) -> Value {
    match Parser::default().parse(bytes) {
        Ok(Parsed::Complete { value, consumed }) => {
            assert_eq!(
                consumed,
                bytes.len(),
                "consumed of {:?}",
                String::from_utf8_lossy(bytes)
            );
            value
        }
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// The error `bytes` (fed whole) is refused with.
fn parse_err(bytes: &[u8], limits: Limits) -> RespError {
    match Parser::new(limits).parse(bytes) {
        Err(e) => e,
        other => panic!("{:?} accepted: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// The spec's examples, type by type, with the value each one is.
fn spec_examples() -> Vec<(&'static [u8], Value)> {
    vec![
        (b"+OK\r\n", simple("OK")),
        (
            b"-Error message\r\n",
            Value::Error(b"Error message".to_vec()),
        ),
        (
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            Value::Error(
                b"WRONGTYPE Operation against a key holding the wrong kind of value".to_vec(),
            ),
        ),
        (b":0\r\n", Value::Integer(0)),
        (b":1000\r\n", Value::Integer(1000)),
        (b":-1000\r\n", Value::Integer(-1000)),
        (b":+7\r\n", Value::Integer(7)),
        (b":9223372036854775807\r\n", Value::Integer(i64::MAX)),
        (b":-9223372036854775808\r\n", Value::Integer(i64::MIN)),
        (b"$5\r\nhello\r\n", bulk("hello")),
        (b"$0\r\n\r\n", bulk("")),
        (b"$4\r\na\r\nb\r\n", Value::Bulk(b"a\r\nb".to_vec())),
        (b"$-1\r\n", Value::Null),
        (b"*0\r\n", Value::Array(vec![])),
        (
            b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n",
            Value::Array(vec![bulk("hello"), bulk("world")]),
        ),
        (
            b"*3\r\n:1\r\n:2\r\n:3\r\n",
            Value::Array(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
            ]),
        ),
        (
            b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n$5\r\nhello\r\n",
            Value::Array(vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
                Value::Integer(4),
                bulk("hello"),
            ]),
        ),
        (
            b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
            Value::Array(vec![
                Value::Array(vec![
                    Value::Integer(1),
                    Value::Integer(2),
                    Value::Integer(3),
                ]),
                Value::Array(vec![simple("Hello"), Value::Error(b"World".to_vec())]),
            ]),
        ),
        (b"*-1\r\n", Value::Null),
        (
            b"*3\r\n$5\r\nhello\r\n$-1\r\n$5\r\nworld\r\n",
            Value::Array(vec![bulk("hello"), Value::Null, bulk("world")]),
        ),
        (b"_\r\n", Value::Null),
        (b"#t\r\n", Value::Boolean(true)),
        (b"#f\r\n", Value::Boolean(false)),
        (b",1.23\r\n", Value::Double(1.23)),
        (b",10\r\n", Value::Double(10.0)),
        (b",-1.5e-3\r\n", Value::Double(-1.5e-3)),
        (b",+2E2\r\n", Value::Double(200.0)),
        (b",inf\r\n", Value::Double(f64::INFINITY)),
        (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
        (
            b"(3492890328409238509324850943850943825024385\r\n",
            Value::BigNumber(b"3492890328409238509324850943850943825024385".to_vec()),
        ),
        (b"(-12\r\n", Value::BigNumber(b"-12".to_vec())),
        (
            b"!21\r\nSYNTAX invalid syntax\r\n",
            Value::Error(b"SYNTAX invalid syntax".to_vec()),
        ),
        (
            b"=15\r\ntxt:Some string\r\n",
            Value::Verbatim {
                format: *b"txt",
                text: b"Some string".to_vec(),
            },
        ),
        (
            b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            Value::Map(vec![
                (simple("first"), Value::Integer(1)),
                (simple("second"), Value::Integer(2)),
            ]),
        ),
        (
            b"~3\r\n+a\r\n:1\r\n#f\r\n",
            Value::Set(vec![simple("a"), Value::Integer(1), Value::Boolean(false)]),
        ),
        (
            b">3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$2\r\nhi\r\n",
            Value::Push(vec![bulk("message"), bulk("room"), bulk("hi")]),
        ),
        // The spec's attribute example: metadata before an array, dropped.
        (
            b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n\
              *2\r\n:2039123\r\n:9543892\r\n",
            Value::Array(vec![Value::Integer(2039123), Value::Integer(9543892)]),
        ),
        // An attribute inside an aggregate does not count as one of its elements.
        (
            b"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n|0\r\n:2\r\n",
            Value::Array(vec![Value::Integer(1), Value::Integer(2)]),
        ),
    ]
}

#[test]
fn spec_examples_parse_to_their_values() {
    for (bytes, want) in spec_examples() {
        assert_eq!(
            parse_whole(bytes),
            want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // nan is not equal to itself: checked apart.
    let Value::Double(d) = parse_whole(b",nan\r\n") else {
        panic!()
    };
    assert!(d.is_nan());
}

/// Feeds growing prefixes of `bytes` ending at each of `ends`, as a driver does
/// when reads end there: every prefix short of the whole is `Partial`, the whole
/// is the reply.
fn parse_in_pieces(bytes: &[u8], ends: &[usize]) -> (Value, usize, u64) {
    let mut parser = Parser::default();
    for &end in ends.iter().filter(|&&e| e < bytes.len()) {
        assert_eq!(
            parser.parse(&bytes[..end]),
            Ok(Parsed::Partial),
            "{:?} cut at {end}",
            String::from_utf8_lossy(bytes)
        );
    }
    match parser.parse(bytes) {
        Ok(Parsed::Complete { value, consumed }) => (value, consumed, parser.bytes_examined()),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
    }
}

#[test]
fn every_split_point_gives_the_same_value() {
    for (bytes, want) in spec_examples() {
        for cut in 0..bytes.len() {
            let (value, consumed, _) = parse_in_pieces(bytes, &[cut]);
            assert_eq!(
                (value, consumed),
                (want.clone(), bytes.len()),
                "cut at {cut}"
            );
        }
        // Two cuts: every pair, for the short ones.
        if bytes.len() <= 40 {
            for a in 0..bytes.len() {
                for b in a..bytes.len() {
                    let (value, _, _) = parse_in_pieces(bytes, &[a, b]);
                    assert_eq!(value, want, "cut at {a} and {b}");
                }
            }
        }
    }
}

#[test]
fn byte_by_byte_gives_the_same_value_in_linear_work() {
    for (bytes, want) in spec_examples() {
        let ends: Vec<usize> = (0..bytes.len()).collect();
        let (value, consumed, examined) = parse_in_pieces(bytes, &ends);
        assert_eq!((value, consumed), (want, bytes.len()));
        assert!(
            examined <= bytes.len() as u64,
            "{examined} for {}",
            bytes.len()
        );
    }
    // A long line and a long bulk string, a byte at a time: each byte examined once.
    let mut big = b"*2\r\n+".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    big.extend_from_slice(b"\r\n$20000\r\n");
    big.extend(std::iter::repeat_n(b'b', 20_000));
    big.extend_from_slice(b"\r\n");
    let ends: Vec<usize> = (0..big.len()).collect();
    let (value, consumed, examined) = parse_in_pieces(&big, &ends);
    assert_eq!(consumed, big.len());
    assert_eq!(value.as_items().map(<[Value]>::len), Some(2));
    assert!(examined <= big.len() as u64, "{examined} for {}", big.len());
}

#[test]
fn pipelined_replies_come_one_after_another() {
    let examples = spec_examples();
    let all: Vec<u8> = examples
        .iter()
        .flat_map(|(b, _)| b.iter().copied())
        .collect();
    let mut parser = Parser::default();
    let mut at = 0;
    for (bytes, want) in &examples {
        match parser.parse(&all[at..]) {
            Ok(Parsed::Complete { value, consumed }) => {
                assert_eq!(&value, want);
                assert_eq!(consumed, bytes.len());
                at += consumed;
            }
            other => panic!("at {at}: {other:?}"),
        }
    }
    assert_eq!(at, all.len());
    assert_eq!(parser.parse(&all[at..]), Ok(Parsed::Partial));
}

#[test]
fn malformed_replies_are_refused_with_their_rule() {
    let cases: &[(&[u8], RespError)] = &[
        (b"?", RespError::UnknownType),
        // RESP3 streamed strings and aggregates are not supported.
        (b"$?\r\n;4\r\nHell\r\n;0\r\n", RespError::InvalidLength),
        (b"*?\r\n:1\r\n.\r\n", RespError::InvalidLength),
        (b";4\r\nHell\r\n", RespError::UnknownType),
        (b"hello\r\n", RespError::UnknownType),
        (b"*1\r\nx", RespError::UnknownType),
        (b"+OK\n", RespError::BareLf),
        (b"$3\nabc\r\n", RespError::BareLf),
        (b"+OK\rX\r\n", RespError::CrWithoutLf),
        (b"$3\r\nabcd\r\n", RespError::MissingCrlf),
        (b"$3\r\nab\r\n\r\n", RespError::MissingCrlf),
        (b"$3\r\nabc\rX", RespError::MissingCrlf),
        (b"$\r\n", RespError::InvalidLength),
        (b"$x\r\n", RespError::InvalidLength),
        (b"$+3\r\nabc\r\n", RespError::InvalidLength),
        (b"$ 3\r\nabc\r\n", RespError::InvalidLength),
        (b"*1a\r\n", RespError::InvalidLength),
        (b"$-2\r\n", RespError::NegativeLength),
        (b"$-0\r\n", RespError::NegativeLength),
        (b"*-5\r\n", RespError::NegativeLength),
        (b"%-1\r\n", RespError::NegativeLength),
        (b"!-1\r\n", RespError::NegativeLength),
        (b"$99999999999999999999\r\n", RespError::IntegerOverflow),
        (b"*9223372036854775808\r\n", RespError::IntegerOverflow),
        (b":\r\n", RespError::InvalidInteger),
        (b":-\r\n", RespError::InvalidInteger),
        (b":12a\r\n", RespError::InvalidInteger),
        (b":1.5\r\n", RespError::InvalidInteger),
        (b":9223372036854775808\r\n", RespError::IntegerOverflow),
        (b":-9223372036854775809\r\n", RespError::IntegerOverflow),
        (b"_x\r\n", RespError::InvalidNull),
        (b"#x\r\n", RespError::InvalidBoolean),
        (b"#\r\n", RespError::InvalidBoolean),
        (b",\r\n", RespError::InvalidDouble),
        (b",abc\r\n", RespError::InvalidDouble),
        (b",infinity\r\n", RespError::InvalidDouble),
        (b",NaN\r\n", RespError::InvalidDouble),
        (b",1.2.3\r\n", RespError::InvalidDouble),
        (b"(\r\n", RespError::InvalidBigNumber),
        (b"(12x\r\n", RespError::InvalidBigNumber),
        (b"=3\r\ntxt\r\n", RespError::InvalidVerbatim),
        (b"=5\r\ntxt-x\r\n", RespError::InvalidVerbatim),
    ];
    for &(bytes, want) in cases {
        assert_eq!(
            parse_err(bytes, Limits::default()),
            want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn an_error_is_final() {
    let mut parser = Parser::default();
    assert_eq!(parser.parse(b"+OK\n"), Err(RespError::BareLf));
    assert_eq!(parser.parse(b"+OK\r\n"), Err(RespError::BareLf));
    parser.reset();
    assert!(matches!(
        parser.parse(b"+OK\r\n"),
        Ok(Parsed::Complete { .. })
    ));
}

#[test]
fn bad_bytes_are_refused_as_soon_as_they_arrive() {
    // The type byte alone, a bare LF before the line ends, the byte after a bulk's
    // data: no need to wait for more.
    let mut parser = Parser::default();
    assert_eq!(parser.parse(b"x"), Err(RespError::UnknownType));
    let mut parser = Parser::default();
    assert_eq!(parser.parse(b"*2\r\n+a\n"), Err(RespError::BareLf));
    let mut parser = Parser::default();
    assert_eq!(parser.parse(b"$1\r\nab"), Err(RespError::MissingCrlf));
}

#[test]
fn limits_are_enforced_on_headers_before_data() {
    let small = Limits {
        max_bulk_len: 10,
        max_elements: 3,
        max_depth: 2,
        max_line_len: 8,
    };
    // The header alone: the 1000 bytes it announces never need to arrive.
    assert_eq!(parse_err(b"$1000\r\n", small), RespError::BulkTooLong);
    assert_eq!(parse_err(b"!11\r\n", small), RespError::BulkTooLong);
    assert_eq!(parse_err(b"=11\r\n", small), RespError::BulkTooLong);
    assert_eq!(
        parse_err(b"$9223372036854775807\r\n", Limits::default()),
        RespError::BulkTooLong
    );
    assert_eq!(parse_err(b"*4\r\n", small), RespError::TooManyElements);
    assert_eq!(parse_err(b"%4\r\n", small), RespError::TooManyElements);
    assert_eq!(parse_err(b"~4\r\n", small), RespError::TooManyElements);
    assert_eq!(parse_err(b">4\r\n", small), RespError::TooManyElements);
    assert_eq!(parse_err(b"|4\r\n", small), RespError::TooManyElements);
    assert_eq!(parse_err(b"*1\r\n*1\r\n*1\r\n", small), RespError::TooDeep);
    assert_eq!(parse_err(b"*1\r\n%1\r\n~1\r\n", small), RespError::TooDeep);
    // A line over the limit is refused before its CRLF arrives.
    assert_eq!(parse_err(b"+123456789", small), RespError::LineTooLong);
    assert_eq!(parse_err(b"-123456789\r\n", small), RespError::LineTooLong);
    // Exactly at each limit: accepted.
    let at_limits = b"*3\r\n$10\r\n0123456789\r\n*1\r\n+12345678\r\n:1\r\n";
    assert!(matches!(
        Parser::new(small).parse(at_limits),
        Ok(Parsed::Complete { .. })
    ));
    // Deep nesting meets the default limit, not the stack.
    let deep = b"*1\r\n".repeat(100_000);
    assert_eq!(parse_err(&deep, Limits::default()), RespError::TooDeep);
    let unbounded = Limits {
        max_depth: usize::MAX,
        ..Limits::default()
    };
    assert_eq!(parse_err(&deep, unbounded), RespError::TooDeep);
}

#[test]
fn pubsub_messages_in_resp2_and_resp3() {
    let cases: &[(&[u8], PubSub<'static>)] = &[
        (
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n",
            PubSub::Subscribe {
                channel: b"room",
                count: 1,
            },
        ),
        (
            b">3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:2\r\n",
            PubSub::Subscribe {
                channel: b"room",
                count: 2,
            },
        ),
        (
            b"*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhello\r\n",
            PubSub::Message {
                channel: b"room",
                payload: b"hello",
            },
        ),
        (
            b">3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$0\r\n\r\n",
            PubSub::Message {
                channel: b"room",
                payload: b"",
            },
        ),
        (
            b"*4\r\n$8\r\npmessage\r\n$2\r\nr*\r\n$4\r\nroom\r\n$2\r\nhi\r\n",
            PubSub::PMessage {
                pattern: b"r*",
                channel: b"room",
                payload: b"hi",
            },
        ),
        (
            b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nroom\r\n:0\r\n",
            PubSub::Unsubscribe {
                channel: Some(b"room"),
                count: 0,
            },
        ),
        (
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
            PubSub::Unsubscribe {
                channel: None,
                count: 0,
            },
        ),
        (
            b">3\r\n$10\r\npsubscribe\r\n$2\r\nr*\r\n:1\r\n",
            PubSub::PSubscribe {
                pattern: b"r*",
                count: 1,
            },
        ),
        (
            b">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n",
            PubSub::PUnsubscribe {
                pattern: None,
                count: 0,
            },
        ),
        (
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            PubSub::Pong { payload: b"" },
        ),
    ];
    for (bytes, want) in cases {
        let value = parse_whole(bytes);
        assert_eq!(
            pubsub(&value),
            Some(*want),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Not pub/sub messages: ordinary replies, wrong shapes.
    for bytes in [
        &b"+OK\r\n"[..],
        b":3\r\n",
        b"*2\r\n$7\r\nmessage\r\n$4\r\nroom\r\n",
        b"*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n:1\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n$1\r\n1\r\n",
        b"*3\r\n$7\r\nnothing\r\n$4\r\nroom\r\n$2\r\nhi\r\n",
        b"%1\r\n$7\r\nmessage\r\n$4\r\nroom\r\n",
    ] {
        assert_eq!(
            pubsub(&parse_whole(bytes)),
            None,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn xinfo_stream_replies_in_resp2_and_resp3() {
    let first = Value::Array(vec![
        bulk("5-0"),
        Value::Array(vec![bulk("seq"), bulk("5")]),
    ]);
    let flat = vec![
        bulk("length"),
        Value::Integer(50),
        bulk("max-deleted-entry-id"),
        bulk("4-0"),
        bulk("entries-added"),
        Value::Integer(54),
        bulk("first-entry"),
        first,
        bulk("last-entry"),
        Value::Null,
    ];
    let want = StreamInfo {
        length: 50,
        entries_added: Some(54),
        max_deleted: Some(StreamId { ms: 4, seq: 0 }),
        first_entry: Some(StreamId { ms: 5, seq: 0 }),
    };
    assert_eq!(stream_info(&Value::Array(flat.clone())), Some(want));
    let map = flat
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    assert_eq!(stream_info(&Value::Map(map)), Some(want));
    assert_eq!(
        stream_info(&Value::Error(b"ERR no such key".to_vec())),
        None
    );
    assert_eq!(stream_info(&Value::Array(vec![bulk("groups")])), None);
    assert_eq!(
        StreamId::parse(b"1526919030474-3"),
        Some(StreamId {
            ms: 1526919030474,
            seq: 3
        })
    );
    assert!(
        StreamId::parse(b"9-0") < StreamId::parse(b"10-0"),
        "numeric, not text, order"
    );
    assert_eq!(StreamId::parse(b"7"), Some(StreamId { ms: 7, seq: 0 }));
    assert_eq!(StreamId::parse(b"1-x"), None);
}

#[test]
fn xread_replies_in_resp2_and_resp3() {
    let resp2 = b"*2\r\n\
        *2\r\n$4\r\nchat\r\n*2\r\n\
            *2\r\n$3\r\n1-0\r\n*4\r\n$4\r\nuser\r\n$3\r\nann\r\n$4\r\ntext\r\n$2\r\nhi\r\n\
            *2\r\n$3\r\n2-0\r\n*-1\r\n\
        *2\r\n$4\r\nlogs\r\n*1\r\n\
            *2\r\n$5\r\n2-1-0\r\n*2\r\n$1\r\nk\r\n$0\r\n\r\n";
    let want = vec![
        StreamEntries {
            stream: b"chat",
            entries: vec![
                StreamEntry {
                    id: b"1-0",
                    fields: vec![(b"user", b"ann"), (b"text", b"hi")],
                },
                StreamEntry {
                    id: b"2-0",
                    fields: vec![],
                },
            ],
        },
        StreamEntries {
            stream: b"logs",
            entries: vec![StreamEntry {
                id: b"2-1-0",
                fields: vec![(b"k", b"")],
            }],
        },
    ];
    let value = parse_whole(resp2);
    assert_eq!(xread(&value), Some(want.clone()));
    // RESP3: a map from stream to entries.
    let resp3 = b"%2\r\n\
        $4\r\nchat\r\n*2\r\n\
            *2\r\n$3\r\n1-0\r\n*4\r\n$4\r\nuser\r\n$3\r\nann\r\n$4\r\ntext\r\n$2\r\nhi\r\n\
            *2\r\n$3\r\n2-0\r\n_\r\n\
        $4\r\nlogs\r\n*1\r\n\
            *2\r\n$5\r\n2-1-0\r\n*2\r\n$1\r\nk\r\n$0\r\n\r\n";
    assert_eq!(xread(&parse_whole(resp3)), Some(want));
    // A BLOCK that timed out: null in either protocol.
    assert_eq!(xread(&parse_whole(b"*-1\r\n")), Some(vec![]));
    assert_eq!(xread(&parse_whole(b"_\r\n")), Some(vec![]));
    // Not XREAD replies.
    for bytes in [
        &b"-ERR no\r\n"[..],
        b"*1\r\n$4\r\nchat\r\n",
        b"*1\r\n*2\r\n$4\r\nchat\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\nf\r\n",
        b"*1\r\n*2\r\n$4\r\nchat\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n:1\r\n",
    ] {
        assert_eq!(
            xread(&parse_whole(bytes)),
            None,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// The test's own encoder: a value as the server would send it. Nulls as `_`, an
/// error with CR or LF inside as a bulk error.
fn encode(value: &Value, out: &mut Vec<u8>) {
    fn bulk_like(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        out.extend_from_slice(format!("{}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    fn line(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    match value {
        Value::Simple(s) => line(out, b'+', s),
        Value::Error(e) if e.contains(&b'\r') || e.contains(&b'\n') => bulk_like(out, b'!', e),
        Value::Error(e) => line(out, b'-', e),
        Value::Integer(n) => line(out, b':', n.to_string().as_bytes()),
        Value::Bulk(b) => bulk_like(out, b'$', b),
        Value::Null => line(out, b'_', b""),
        Value::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
        Value::Double(d) => line(out, b',', d.to_string().as_bytes()),
        Value::BigNumber(n) => line(out, b'(', n),
        Value::Verbatim { format, text } => {
            let mut data = format.to_vec();
            data.push(b':');
            data.extend_from_slice(text);
            bulk_like(out, b'=', &data);
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let kind = match value {
                Value::Array(_) => b'*',
                Value::Set(_) => b'~',
                _ => b'>',
            };
            line(out, kind, items.len().to_string().as_bytes());
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(pairs) => {
            line(out, b'%', pairs.len().to_string().as_bytes());
            for (k, v) in pairs {
                encode(k, out);
                encode(v, out);
            }
        }
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    let line_bytes = proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..12,
    );
    let any_bytes = proptest::collection::vec(any::<u8>(), 0..20);
    let leaf = prop_oneof![
        line_bytes.clone().prop_map(Value::Simple),
        line_bytes.prop_map(Value::Error),
        any_bytes.clone().prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        any_bytes.clone().prop_map(Value::Bulk),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Boolean),
        any::<f64>()
            .prop_filter("nan is not equal to itself", |d| !d.is_nan())
            .prop_map(Value::Double),
        "-?[0-9]{1,60}".prop_map(|s| Value::BigNumber(s.into_bytes())),
        ("[a-z]{3}", any_bytes).prop_map(|(f, text)| Value::Verbatim {
            format: f.as_bytes().try_into().unwrap(),
            text,
        }),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any value tree, encoded, parses back equal: whole, cut at two random
    /// points, and pipelined behind another.
    #[test]
    fn generated_values_round_trip(value in arb_value(), other in arb_value(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let mut bytes = Vec::new();
        encode(&value, &mut bytes);
        prop_assert_eq!(parse_whole(&bytes), value.clone());
        let mut cuts = [a.index(bytes.len()), b.index(bytes.len())];
        cuts.sort_unstable();
        let (parsed, consumed, examined) = parse_in_pieces(&bytes, &cuts);
        prop_assert_eq!(&parsed, &value);
        prop_assert_eq!(consumed, bytes.len());
        prop_assert!(examined <= bytes.len() as u64);
        let first = bytes.len();
        encode(&other, &mut bytes);
        let mut parser = Parser::default();
        prop_assert_eq!(parser.parse(&bytes), Ok(Parsed::Complete { value, consumed: first }));
        prop_assert_eq!(parser.parse(&bytes[first..]), Ok(Parsed::Complete { value: other, consumed: bytes.len() - first }));
    }

    /// Arbitrary bytes never panic, and a reply is never longer than its input.
    #[test]
    fn arbitrary_bytes_are_parsed_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(Parsed::Complete { consumed, .. }) = Parser::default().parse(&bytes) {
            prop_assert!(consumed > 0 && consumed <= bytes.len());
        }
    }
}
