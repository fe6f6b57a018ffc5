//! What a head costs to parse when it arrives one byte per read.
//!
//! A server calls the parser again after every read, with everything received so
//! far. If each call started over from the first byte, a head of n bytes sent one
//! byte at a time would cost O(n²): that is how CVE-2023-43669 let a slow 20 MB
//! header burn minutes of tungstenite's CPU. The parser resumes where the last call
//! stopped, so the whole head costs O(n).
//!
//! These tests compare two inputs of the same length fed one byte per read, so the
//! machine's speed cancels out: a linear parser takes about as long on either, a
//! quadratic one hundreds of times longer on the one it rescans (at 16 KiB). The
//! bound used here is loose (25x) so that a busy machine does not fail the test.

use std::time::{Duration, Instant};

use wirepatterns::http::{RequestParser, Status};

/// Feeds `input` one byte per read to one parser, as a server would; gives up (and
/// returns `None`) once `budget` is spent.
fn one_byte_at_a_time(input: &[u8], budget: Duration) -> Option<Duration> {
    let mut parser = RequestParser::default();
    let started = Instant::now();
    for end in 1..=input.len() {
        match parser.parse(&input[..end]) {
            Ok(Status::Partial) => {}
            Ok(Status::Complete(req)) => {
                assert_eq!(req.head_len(), input.len(), "head ends at the last byte");
                return Some(started.elapsed());
            }
            Err(e) => panic!("rejected at byte {end}: {e}"),
        }
        if end % 256 == 0 && started.elapsed() > budget {
            return None;
        }
    }
    panic!("the head never completed")
}

/// A head of exactly `len` bytes whose bulk is one long field value.
fn long_value_head(len: usize) -> Vec<u8> {
    let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".to_vec();
    head.resize(len - 4, b'v');
    head.extend_from_slice(b"\r\n\r\n");
    head
}

/// The fastest of three runs: the least disturbed by other work on the machine.
fn best_of_three(input: &[u8]) -> Duration {
    (0..3)
        .map(|_| one_byte_at_a_time(input, Duration::from_secs(60)).expect("within a minute"))
        .min()
        .unwrap_or_default()
}

/// RFC 9112 §2.2 lets a server skip empty lines before the request line; skipping
/// them again on every read is quadratic. 16 KiB of CRLF, then a request.
/// FAILS until the skip resumes where the previous call stopped (measured: ~95 ms
/// against ~0.4 ms for an ordinary head of the same size, in a release build).
#[test]
fn empty_lines_before_the_request_line_cost_linear_time_one_byte_at_a_time() {
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut crlfs = b"\r\n".repeat((16 * 1024 - 64) / 2);
    crlfs.extend_from_slice(request);
    let reference = best_of_three(&long_value_head(crlfs.len()));
    let budget = reference * 25 + Duration::from_millis(5);
    let took = one_byte_at_a_time(&crlfs, budget);
    assert!(
        took.is_some(),
        "{} bytes of empty lines fed one byte at a time took over {budget:?}, \
         25 times an ordinary head of the same size ({reference:?}): quadratic",
        crlfs.len()
    );
}

/// The reference itself: a long field value, fed one byte at a time, costs about
/// as much per byte at 16 KiB as at 4 KiB (a quadratic parser: 4 times as much).
#[test]
fn a_long_field_value_costs_linear_time_one_byte_at_a_time() {
    let small = best_of_three(&long_value_head(4 * 1024));
    let large = best_of_three(&long_value_head(16 * 1024));
    // Linear: about 4x. Quadratic: about 16x. Allow noise up to 10x.
    assert!(
        large < small * 10 + Duration::from_millis(5),
        "16 KiB took {large:?}, 4 KiB took {small:?}: more than linear"
    );
}
