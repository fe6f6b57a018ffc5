//! Arbitrary bytes to the chunked body decoder, fed in arbitrary pieces.
//!
//! The first byte seeds the piece sizes; the rest is the body as sent. Checked: no
//! panic; a call never consumes more than it was given; the data it returns lies
//! inside the bytes it consumed; a call that is given bytes and is not done makes
//! progress; the decoded length stays within the limit; and feeding the input in
//! pieces gives the same body, the same end and the same error as feeding it whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirepatterns::http::{BodyDecoder, Framing, HttpError, Limits};

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<bool, HttpError>,
    body: Vec<u8>,
    consumed: usize,
    trailers: Vec<(String, Vec<u8>)>,
}

fn limits() -> Limits {
    // Small limits, so the fuzzer reaches them.
    Limits {
        max_body_bytes: 4096,
        max_trailer_bytes: 512,
        max_chunk_line_bytes: 64,
        ..Limits::default()
    }
}

fn run(input: &[u8], mut piece: impl FnMut() -> usize) -> Outcome {
    let limits = limits();
    let mut decoder = BodyDecoder::new(Framing::Chunked, &limits).expect("chunked has no length");
    let mut body = Vec::new();
    let (mut fed, mut used) = (0, 0);
    let result = 'feed: loop {
        fed = (fed + piece()).min(input.len());
        loop {
            let available = &input[used..fed];
            let step = match decoder.decode(available) {
                Ok(step) => step,
                Err(e) => break 'feed Err(e),
            };
            assert!(step.consumed <= available.len(), "consumed past the input");
            if !step.data.is_empty() {
                let at = step.data.as_ptr() as usize - available.as_ptr() as usize;
                assert!(
                    at + step.data.len() <= step.consumed,
                    "data outside what was consumed"
                );
            }
            assert!(decoder.decoded_len() <= limits.max_body_bytes);
            body.extend_from_slice(step.data);
            used += step.consumed;
            if step.done {
                assert!(decoder.is_done());
                break 'feed Ok(true);
            }
            if step.consumed == 0 {
                assert!(
                    available.is_empty(),
                    "no progress on {} bytes",
                    available.len()
                );
                break;
            }
        }
        if fed == input.len() {
            break Ok(false);
        }
    };
    Outcome {
        // After an error, how much of the failing call's input was read is not
        // reported (nor needed: the connection closes), so only the body and the
        // error are compared.
        consumed: if result.is_ok() { used } else { 0 },
        result,
        body,
        trailers: decoder.trailers().to_vec(),
    }
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
    assert_eq!(whole, pieces);
});
