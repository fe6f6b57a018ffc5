//! Arbitrary bytes to the WebSocket frame decoder, fed in arbitrary pieces.
//!
//! The first byte seeds the piece sizes; the rest is what a client sent after the
//! handshake. The bytes go through `ws::Connection` (the decoder plus the automatic
//! pong, close reply and failing close frame) twice: whole, and cut into pieces of
//! 1 to 16 bytes the way reads cut a stream, each time playing the driver (append,
//! decode until no event, drop what was consumed). Small limits, so the fuzzer
//! reaches 1009.
//!
//! Checked: no panic; a call never consumes more than it was given; a call that
//! returns an event consumed something (else a driver looping on events would
//! spin); what is left unconsumed between reads is at most a partial frame header;
//! payloads respect the limits (125 bytes for control frames); nothing is delivered
//! after a close frame or an error; and feeding in pieces gives the same events,
//! the same error and the same bytes to send as feeding the input whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirepatterns::ws::frame::{MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use wirepatterns::ws::{CloseState, Connection, Event, Limits, WsError};

/// Small limits, so the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_frame_payload: 300,
    max_message_size: 700,
};

/// An event with its payload copied out, to compare two runs.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

impl Owned {
    fn new(event: Event<'_>) -> Owned {
        match event {
            Event::Text(t) => {
                assert!(t.len() <= LIMITS.max_message_size, "text over the limit");
                Owned::Text(t.to_owned())
            }
            Event::Binary(b) => {
                assert!(b.len() <= LIMITS.max_message_size, "binary over the limit");
                Owned::Binary(b.to_vec())
            }
            Event::Ping(p) => {
                assert!(p.len() <= MAX_CONTROL_PAYLOAD, "ping over 125 bytes");
                Owned::Ping(p.to_vec())
            }
            Event::Pong(p) => {
                assert!(p.len() <= MAX_CONTROL_PAYLOAD, "pong over 125 bytes");
                Owned::Pong(p.to_vec())
            }
            Event::Close(c) => {
                let c = c.map(|c| (c.code.0, c.reason.to_owned()));
                if let Some((_, reason)) = &c {
                    assert!(
                        reason.len() <= MAX_CONTROL_PAYLOAD - 2,
                        "close reason too long"
                    );
                }
                Owned::Close(c)
            }
        }
    }
}

/// What one run gave.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Every event, in order.
    events: Vec<Owned>,
    /// How it ended: `Ok(())` if the input ran out (or was ignored after a close).
    result: Result<(), WsError>,
    /// The bytes the connection asked to send (pongs, close frames).
    out: Vec<u8>,
    /// Where the close handshake ended up.
    state: CloseState,
}

/// Feeds `input` to a fresh connection in pieces of `piece()` bytes.
fn run(input: &[u8], mut piece: impl FnMut() -> usize) -> Outcome {
    let mut conn = Connection::new(LIMITS);
    let mut pending: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut closed = false;
    let result = 'feed: loop {
        let end = (fed + piece()).min(input.len());
        pending.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            let given = pending.len();
            let decoded = match conn.receive(&mut pending, &mut out) {
                Ok(decoded) => decoded,
                Err(e) => {
                    assert_eq!(conn.state(), CloseState::Closed, "failed but not closed");
                    break 'feed Err(e);
                }
            };
            let consumed = decoded.consumed;
            assert!(consumed <= given, "consumed past the input");
            // Copied out, so the borrow of `pending` ends before it is drained.
            let event = decoded.event.map(Owned::new);
            pending.drain(..consumed);
            let Some(event) = event else {
                break;
            };
            assert!(consumed > 0, "an event from no bytes");
            assert!(!closed, "an event after the close frame");
            closed = matches!(event, Owned::Close(_));
            events.push(event);
        }
        // Left for the next read: at most a frame header that is not all there.
        assert!(
            pending.len() < MAX_HEADER_LEN,
            "kept {} bytes unconsumed",
            pending.len()
        );
        if fed == input.len() {
            break Ok(());
        }
    };
    if closed {
        assert_eq!(
            conn.state(),
            CloseState::Closed,
            "close received but not closed"
        );
    }
    Outcome {
        events,
        result,
        out,
        state: conn.state(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, || input.len().max(1));
    // Piece sizes from 1 to 16 bytes, varying with a small generator seeded by the
    // first byte (seed 0 feeds one byte at a time).
    let mut state = u32::from(seed);
    let pieces = run(input, || {
        if seed == 0 {
            return 1;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as usize % 16 + 1
    });
    assert_eq!(whole, pieces);
});
