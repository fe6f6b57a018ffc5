//! Arbitrary bytes to the request parser, fed in arbitrary pieces.
//!
//! The first byte seeds the piece sizes; the rest is what a client sent. The input
//! is parsed twice, whole and as a growing buffer cut into pieces (the way a server
//! reads it), for up to three pipelined requests. Checked: no panic; both ways give
//! the same result; a complete head lies within the input; every accessor of a
//! parsed request works on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirepatterns::http::{HttpError, Request, RequestParser, Status};

/// What one parse gave, reduced to owned values so two runs can be compared.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Complete {
        head_len: usize,
        method: String,
        target: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
        summary: String,
    },
    Partial,
    Error(HttpError),
}

fn inspect(req: &Request<'_>, buf: &[u8]) -> Outcome {
    let head_len = req.head_len();
    assert!(head_len <= buf.len(), "head_len {head_len} past the input");
    assert_eq!(req.head_bytes(), &buf[..head_len]);
    // Every accessor, on every kind of head the fuzzer finds.
    let method = req.method().to_owned();
    assert!(!method.is_empty());
    let target = req.target_bytes().to_vec();
    assert!(!target.is_empty());
    let _ = (req.target(), req.path(), req.query());
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect();
    assert_eq!(headers.len(), req.header_count());
    for (name, value) in &headers {
        assert!(req.header(name).is_some());
        // Values never keep the OWS around them, nor a line ending.
        assert!(!value.starts_with(b" ") && !value.ends_with(b" "));
        assert!(!value.starts_with(b"\t") && !value.ends_with(b"\t"));
        assert!(!value.contains(&b'\n') && !value.contains(&b'\r'));
    }
    let summary = format!(
        "{:?} {:?} {:?} {:?} {} {}",
        req.target_form(),
        req.version(),
        req.host(),
        req.framing(),
        req.keep_alive(),
        req.expects_continue()
    );
    Outcome::Complete {
        head_len,
        method,
        target,
        headers,
        summary,
    }
}

fn parse(parser: &mut RequestParser, buf: &[u8]) -> Outcome {
    match parser.parse(buf) {
        Ok(Status::Complete(req)) => inspect(&req, buf),
        Ok(Status::Partial) => Outcome::Partial,
        Err(e) => Outcome::Error(e),
    }
}

/// Parses up to three pipelined heads from `input`, feeding each as a growing
/// buffer that grows by `piece()` bytes at a time.
fn run(input: &[u8], mut piece: impl FnMut() -> usize) -> Vec<Outcome> {
    let mut parser = RequestParser::default();
    let mut outcomes = Vec::new();
    let mut start = 0;
    for _ in 0..3 {
        let rest = &input[start..];
        let mut end = 0;
        let outcome = loop {
            end = (end + piece()).min(rest.len());
            match parse(&mut parser, &rest[..end]) {
                Outcome::Partial if end < rest.len() => continue,
                other => break other,
            }
        };
        let next = match &outcome {
            Outcome::Complete { head_len, .. } => start + head_len,
            _ => input.len() + 1,
        };
        outcomes.push(outcome);
        if next > input.len() {
            break;
        }
        start = next;
    }
    outcomes
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, || input.len().max(1));
    // Piece sizes from 1 to 16 bytes, varying with a small generator seeded by
    // the first byte (seed 0 feeds one byte at a time).
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
