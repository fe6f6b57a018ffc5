//! Arbitrary bytes to the response reader, fed whole and in arbitrary pieces, then
//! the server's close.
//!
//! The first byte seeds the piece sizes (0: one byte at a time); the second picks
//! the request's method (GET, HEAD or CONNECT, which change the framing); the rest
//! is the response as received. Checked: no panic; a call never consumes more than
//! it was given; a body piece is never empty; the body stays within the limit; and feeding the input in pieces gives the same
//! heads, body, trailers, end and error as feeding it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirepatterns::http::response_parser::{ResponseEvent, ResponseReader};
use wirepatterns::http::{HttpError, Limits};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Each head as (interim, status, head bytes).
    heads: Vec<(bool, u16, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    result: Result<bool, HttpError>,
}

fn limits() -> Limits {
    // Small limits, so the fuzzer reaches them.
    Limits {
        max_head_bytes: 1024,
        max_headers: 16,
        max_body_bytes: 4096,
        max_trailer_bytes: 256,
        max_chunk_line_bytes: 64,
        ..Limits::default()
    }
}

fn run(input: &[u8], method: &str, mut piece: impl FnMut() -> usize) -> Outcome {
    let mut reader = ResponseReader::with_limits(method, limits());
    let mut out = Outcome {
        heads: Vec::new(),
        body: Vec::new(),
        trailers: Vec::new(),
        result: Ok(false),
    };
    let (mut fed, mut used) = (0, 0);
    let result = 'feed: loop {
        fed = (fed + piece()).min(input.len());
        loop {
            let available = &input[used..fed];
            let step = match reader.read(available) {
                Ok(step) => step,
                Err(e) => break 'feed Err(e),
            };
            assert!(step.consumed <= available.len(), "consumed past the input");
            used += step.consumed;
            match step.event {
                // Need more (framing alone may have been consumed).
                None => break,
                Some(ResponseEvent::Interim(h)) => {
                    out.heads.push((true, h.status(), h.as_bytes().to_vec()))
                }
                Some(ResponseEvent::Head(h)) => {
                    out.heads.push((false, h.status(), h.as_bytes().to_vec()))
                }
                Some(ResponseEvent::Body(data)) => {
                    assert!(!data.is_empty());
                    out.body.extend_from_slice(data);
                    assert!(out.body.len() as u64 <= limits().max_body_bytes);
                }
                Some(ResponseEvent::Complete) => break 'feed Ok(true),
            }
        }
        if fed == input.len() {
            // The server closes.
            if let Err(e) = reader.eof() {
                break Err(e);
            }
            match reader.read(&input[used..]).map(|s| s.event) {
                Ok(Some(ResponseEvent::Complete)) => break Ok(true),
                Ok(_) => break Ok(false),
                Err(e) => break Err(e),
            }
        }
    };
    out.result = result;
    out.trailers = reader.trailers().to_vec();
    out
}

fuzz_target!(|data: &[u8]| {
    let [seed, method, input @ ..] = data else {
        return;
    };
    let method = ["GET", "HEAD", "CONNECT"][usize::from(*method) % 3];
    let whole = run(input, method, || input.len().max(1));
    let mut state = u32::from(*seed);
    let pieces = run(input, method, || {
        if *seed == 0 {
            return 1;
        }
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        (state >> 16) as usize % 16 + 1
    });
    assert_eq!(whole, pieces);
});
