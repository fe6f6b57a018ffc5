//! Arbitrary bytes to the RESP reply parser, fed in arbitrary pieces.
//!
//! The first byte seeds the piece sizes; the rest is what a Redis server sent.
//! The bytes are parsed twice, playing the driver each time (append a piece, parse
//! until `Partial`, drop what a reply consumed): whole, and cut into pieces of 1 to
//! 16 bytes the way reads cut a stream. Small limits, so the fuzzer reaches them.
//!
//! Checked: no panic; a reply never consumes more than it was given, nor nothing;
//! bulk strings and aggregates respect the limits; and feeding in pieces gives the
//! same replies and the same error as feeding the input whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirepatterns::resp::{Limits, Parsed, Parser, RespError, Value};

/// Small limits, so the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_bulk_len: 64,
    max_elements: 8,
    max_depth: 4,
    max_line_len: 32,
};

/// Checks the limits over a whole value tree; returns its depth.
fn check(value: &Value) -> usize {
    match value {
        Value::Bulk(b) | Value::Error(b) | Value::Simple(b) => {
            assert!(b.len() <= LIMITS.max_bulk_len.max(LIMITS.max_line_len));
            0
        }
        Value::Array(v) | Value::Set(v) | Value::Push(v) => {
            assert!(v.len() <= LIMITS.max_elements, "too many elements");
            1 + v.iter().map(check).max().unwrap_or(0)
        }
        Value::Map(m) => {
            assert!(m.len() <= LIMITS.max_elements, "too many pairs");
            1 + m
                .iter()
                .map(|(k, v)| check(k).max(check(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// What one run gave: the replies in order and how it ended.
#[derive(Debug, PartialEq)]
struct Outcome {
    replies: Vec<Value>,
    result: Result<(), RespError>,
}

/// Feeds `input` to a fresh parser in pieces of `piece()` bytes.
fn run(input: &[u8], mut piece: impl FnMut() -> usize) -> Outcome {
    let mut parser = Parser::new(LIMITS);
    let mut pending: Vec<u8> = Vec::new();
    let mut replies = Vec::new();
    let mut fed = 0;
    let result = 'feed: loop {
        let end = (fed + piece()).min(input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parser.parse(&pending) {
                Ok(Parsed::Partial) => break,
                Ok(Parsed::Complete { value, consumed }) => {
                    assert!(consumed > 0 && consumed <= pending.len(), "bad consumed");
                    assert!(check(&value) <= LIMITS.max_depth, "too deep");
                    pending.drain(..consumed);
                    replies.push(value);
                }
                Err(e) => break 'feed Err(e),
            }
        }
        if fed == input.len() {
            break Ok(());
        }
    };
    Outcome { replies, result }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, || input.len().max(1));
    let mut state = u32::from(seed);
    let pieces = run(input, || {
        if seed == 0 {
            return 1;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as usize % 16 + 1
    });
    // NaN doubles compare unequal: compare the debug text, which is exact.
    assert_eq!(format!("{whole:?}"), format!("{pieces:?}"));
});
