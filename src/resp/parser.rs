//! The incremental reply parser: bytes in, [`Value`]s out, every bound enforced.
//!
//! # How it resumes
//!
//! A reply can arrive cut anywhere: in the middle of a length, of a bulk string's
//! data, between the CR and the LF. The caller calls [`Parser::parse`] with
//! everything received since the reply began; until the reply is whole the answer
//! is [`Parsed::Partial`] and nothing is consumed, so the caller keeps the bytes
//! and appends the next read. The parser remembers how far it got, so no byte is
//! looked at twice and a reply fed one byte at a time costs O(n) in all, as the
//! HTTP head parser does ([`crate::http::response_parser`]):
//!
//! - `pos`: every byte before it belongs to an element already parsed;
//! - `scanned`: how far the search for the CRLF that ends the current line has got;
//! - `bulk`: a bulk string whose header was read, waiting for its data and CRLF
//!   (the length alone says when they are all there: an O(1) check per call);
//! - `stack`: the aggregates (arrays, maps, sets, pushes, attributes) still open,
//!   innermost last, each with the elements parsed so far and how many are still to
//!   come.
//!
//! Nesting is an explicit stack, not recursion, so a hostile server that nests
//! `*1\r\n` a million times meets [`Limits::max_depth`], not a stack overflow.
//!
//! # What a hostile server can make it hold
//!
//! Every length is checked against [`Limits`] as soon as its line is in, before
//! the data it announces: a `$` over [`Limits::max_bulk_len`] is refused on its
//! header. An aggregate's element vector is reserved for at most
//! [`RESERVE_ELEMENTS`] up front and grows with the elements that actually arrive,
//! and a bulk string is copied out only once all its data is there; so memory
//! follows the bytes received, not the lengths claimed. Lines (simple strings,
//! errors, integers, lengths) are bounded by [`Limits::max_line_len`], refused as
//! soon as that many bytes arrive without a CRLF.
//!
//! # Attributes
//!
//! A RESP3 attribute (`|`) is a map of metadata sent before the reply it describes
//! (spec: "a client library may ignore them"). The parser checks and bounds it like
//! any map, then drops it: the value that follows takes its place. Its bytes count
//! in `consumed`.
//!
//! # After an error
//!
//! A [`RespError`] leaves the stream at an unknown point: every later call returns
//! the same error, and the caller closes the connection.

use super::error::RespError;
use super::value::Value;

/// Most elements an aggregate's vector is reserved for before they arrive.
pub const RESERVE_ELEMENTS: usize = 16;

/// Highest [`Limits::max_depth`] a parser accepts: a deeper limit is lowered to it.
/// Dropping, comparing or printing a [`Value`] recurses over its nesting, so the
/// depth must stay small enough for that recursion.
pub const MAX_DEPTH_CAP: usize = 256;

/// The bounds the parser enforces against a hostile or broken server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, bulk error or verbatim string, in bytes. Default
    /// 512 MiB, Redis's own `proto-max-bulk-len`; a client that only expects chat
    /// messages should set far less.
    pub max_bulk_len: usize,
    /// Most elements in one array, set or push, or pairs in one map or attribute.
    /// Default 1,048,576.
    pub max_elements: usize,
    /// Deepest nesting of aggregates (a flat array is depth 1). Default 32; at most
    /// [`MAX_DEPTH_CAP`].
    pub max_depth: usize,
    /// Longest line after the type byte (simple string, error, integer, double, big
    /// number, length), in bytes. Default 64 KiB.
    pub max_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_elements: 1024 * 1024,
            max_depth: 32,
            max_line_len: 64 * 1024,
        }
    }
}

/// What one [`Parser::parse`] call found.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// The reply is not all there: nothing consumed. Call again with the same bytes
    /// and more.
    Partial,
    /// A whole reply: `value`, made of the first `consumed` bytes of the buffer.
    Complete {
        /// The reply.
        value: Value,
        /// How many bytes it took: remove them before the next call.
        consumed: usize,
    },
}

/// What [`Parser::element`] did.
enum Step {
    /// The input ran out: call again with more.
    NeedMore,
    /// An aggregate was opened or a bulk header read (or an empty attribute
    /// dropped): parse on.
    Opened,
    /// A whole element.
    Value(Value),
}

/// The kind of a bulk string whose header was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BulkKind {
    /// `$`
    Bulk,
    /// `!`
    Error,
    /// `=`
    Verbatim,
}

/// A bulk string waiting for its data: `len` bytes and CRLF from `pos`.
#[derive(Debug, Clone, Copy)]
struct Bulk {
    kind: BulkKind,
    len: usize,
}

/// The kind of an open aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggKind {
    Array,
    Map,
    Set,
    Push,
    Attribute,
}

/// An aggregate still open: its elements so far and how many are to come (keys and
/// values count one each in a map).
#[derive(Debug, Clone)]
struct Frame {
    kind: AggKind,
    remaining: usize,
    items: Vec<Value>,
}

impl Frame {
    /// The finished aggregate, or `None` for an attribute (dropped).
    fn finish(self) -> Option<Value> {
        let items = self.items;
        Some(match self.kind {
            AggKind::Array => Value::Array(items),
            AggKind::Set => Value::Set(items),
            AggKind::Push => Value::Push(items),
            AggKind::Map => Value::Map(pairs(items)),
            AggKind::Attribute => return None,
        })
    }
}

/// `[k1, v1, k2, v2]` as `[(k1, v1), (k2, v2)]`.
fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// An incremental, sans-I/O parser for RESP2 and RESP3 replies.
///
/// ```
/// use wirepatterns::resp::{Parsed, Parser, Value};
///
/// let bytes = b"*2\r\n$5\r\nhello\r\n:42\r\n+PONG\r\n";
/// let mut parser = Parser::default();
/// assert_eq!(parser.parse(&bytes[..9]).unwrap(), Parsed::Partial);
/// let Parsed::Complete { value, consumed } = parser.parse(bytes).unwrap() else { panic!() };
/// assert_eq!(value, Value::Array(vec![Value::Bulk(b"hello".to_vec()), Value::Integer(42)]));
/// // Pipelined: the next reply starts where this one ended.
/// let Parsed::Complete { value, .. } = parser.parse(&bytes[consumed..]).unwrap() else { panic!() };
/// assert_eq!(value, Value::Simple(b"PONG".to_vec()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Parser {
    limits: Limits,
    /// Bytes of the current reply already parsed into elements.
    pos: usize,
    /// How far the search for the current line's CRLF has got.
    scanned: usize,
    /// A bulk string whose header was read, waiting for its data.
    bulk: Option<Bulk>,
    /// Open aggregates, innermost last.
    stack: Vec<Frame>,
    /// The error returned, returned again by every later call.
    failed: Option<RespError>,
    /// Bytes examined over the parser's life: shows that the work is linear.
    bytes_examined: u64,
}

impl Parser {
    /// A parser that enforces `limits` (its depth lowered to [`MAX_DEPTH_CAP`]).
    pub fn new(mut limits: Limits) -> Parser {
        limits.max_depth = limits.max_depth.min(MAX_DEPTH_CAP);
        Parser {
            limits,
            ..Parser::default()
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes this parser has examined over its life: each byte of input once (the
    /// data of a bulk string when it is copied out, a line's bytes when its CRLF
    /// is searched), however the input was split.
    pub fn bytes_examined(&self) -> u64 {
        self.bytes_examined
    }

    /// Forgets a reply in progress (the next call parses a new reply at the front of
    /// its buffer) and any error.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.bulk = None;
        self.stack.clear();
        self.failed = None;
    }

    /// Parses the reply at the front of `buf`, which holds everything received
    /// since the reply began (the same bytes as the last `Partial` call, and maybe
    /// more).
    ///
    /// - `Ok(Parsed::Partial)`: not all there; nothing consumed.
    /// - `Ok(Parsed::Complete { value, consumed })`: the reply is
    ///   `buf[..consumed]`; the next one starts after it.
    /// - `Err(e)`: the bytes break the rule `e` names; close the connection.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Parsed, RespError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.step(buf) {
            Ok(Some(value)) => {
                let consumed = self.pos;
                self.reset();
                Ok(Parsed::Complete { value, consumed })
            }
            Ok(None) => Ok(Parsed::Partial),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    /// Parses elements until the reply is whole (`Some`) or the input runs out.
    fn step(&mut self, buf: &[u8]) -> Result<Option<Value>, RespError> {
        // Each pass consumes a line (3 bytes at least) or a bulk's data, or returns,
        // so the loop ends; the bound only makes that visible.
        for _ in 0..=buf.len() {
            let value = match self.element(buf)? {
                Step::NeedMore => return Ok(None),
                Step::Opened => continue,
                Step::Value(value) => value,
            };
            if let Some(done) = self.complete(value) {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    /// Reads one element, or the header of one, at `pos`.
    fn element(&mut self, buf: &[u8]) -> Result<Step, RespError> {
        if let Some(bulk) = self.bulk {
            return self.bulk_data(buf, bulk);
        }
        let Some(&kind) = buf.get(self.pos) else {
            return Ok(Step::NeedMore);
        };
        // A bad type byte is refused as soon as it arrives, not at the line's end.
        if !b"+-:$*_#,(!=%~>|".contains(&kind) {
            return Err(RespError::UnknownType);
        }
        let Some(cr) = self.find_line_end(buf)? else {
            return Ok(Step::NeedMore);
        };
        let line = buf.get(self.pos + 1..cr).unwrap_or_default();
        let next = cr + 2;
        let value = match kind {
            b'+' => Value::Simple(line.to_vec()),
            b'-' => Value::Error(line.to_vec()),
            b':' => Value::Integer(parse_integer(line)?),
            b'_' if line.is_empty() => Value::Null,
            b'_' => return Err(RespError::InvalidNull),
            b'#' => match line {
                b"t" => Value::Boolean(true),
                b"f" => Value::Boolean(false),
                _ => return Err(RespError::InvalidBoolean),
            },
            b',' => Value::Double(parse_double(line)?),
            b'(' => Value::BigNumber(parse_big_number(line)?),
            b'$' | b'!' | b'=' => {
                let Some(len) = parse_length(line)? else {
                    if kind != b'$' {
                        return Err(RespError::NegativeLength);
                    }
                    self.pos = next;
                    return Ok(Step::Value(Value::Null));
                };
                if len > self.limits.max_bulk_len {
                    return Err(RespError::BulkTooLong);
                }
                let kind = match kind {
                    b'$' => BulkKind::Bulk,
                    b'!' => BulkKind::Error,
                    _ if len < 4 => return Err(RespError::InvalidVerbatim),
                    _ => BulkKind::Verbatim,
                };
                self.pos = next;
                self.bulk = Some(Bulk { kind, len });
                return Ok(Step::Opened);
            }
            // '*', '%', '~', '>', '|': the type-byte check above leaves only these.
            _ => {
                let Some(count) = parse_length(line)? else {
                    if kind != b'*' {
                        return Err(RespError::NegativeLength);
                    }
                    self.pos = next;
                    return Ok(Step::Value(Value::Null));
                };
                if count > self.limits.max_elements {
                    return Err(RespError::TooManyElements);
                }
                let (agg, remaining) = match kind {
                    b'*' => (AggKind::Array, Some(count)),
                    b'~' => (AggKind::Set, Some(count)),
                    b'>' => (AggKind::Push, Some(count)),
                    b'%' => (AggKind::Map, count.checked_mul(2)),
                    _ => (AggKind::Attribute, count.checked_mul(2)),
                };
                let remaining = remaining.ok_or(RespError::TooManyElements)?;
                if self.stack.len() >= self.limits.max_depth {
                    return Err(RespError::TooDeep);
                }
                self.pos = next;
                let frame = Frame {
                    kind: agg,
                    remaining,
                    items: Vec::with_capacity(remaining.min(RESERVE_ELEMENTS)),
                };
                if remaining == 0 {
                    return Ok(match frame.finish() {
                        Some(value) => Step::Value(value),
                        None => Step::Opened, // an empty attribute: nothing to give
                    });
                }
                self.stack.push(frame);
                return Ok(Step::Opened);
            }
        };
        self.pos = next;
        Ok(Step::Value(value))
    }

    /// The data of a bulk string whose header was read, once it and its CRLF are in.
    fn bulk_data(&mut self, buf: &[u8], bulk: Bulk) -> Result<Step, RespError> {
        let end = self.pos.saturating_add(bulk.len);
        // The CR after the data is checked as soon as it arrives.
        match buf.get(end) {
            None => return Ok(Step::NeedMore),
            Some(b'\r') => {}
            Some(_) => return Err(RespError::MissingCrlf),
        }
        match buf.get(end.saturating_add(1)) {
            None => return Ok(Step::NeedMore),
            Some(b'\n') => {}
            Some(_) => return Err(RespError::MissingCrlf),
        }
        let data = buf.get(self.pos..end).unwrap_or_default();
        self.bytes_examined += data.len() as u64 + 2;
        let value = match bulk.kind {
            BulkKind::Bulk => Value::Bulk(data.to_vec()),
            BulkKind::Error => Value::Error(data.to_vec()),
            BulkKind::Verbatim => match data {
                [a, b, c, b':', text @ ..] => Value::Verbatim {
                    format: [*a, *b, *c],
                    text: text.to_vec(),
                },
                _ => return Err(RespError::InvalidVerbatim),
            },
        };
        self.bulk = None;
        self.pos = end.saturating_add(2);
        Ok(Step::Value(value))
    }

    /// Finds the CR of the CRLF that ends the line starting at `pos`, resuming the
    /// search where the last call stopped. Refuses a bare LF, a CR without LF and a
    /// line over the limit as soon as they are seen.
    fn find_line_end(&mut self, buf: &[u8]) -> Result<Option<usize>, RespError> {
        let start = self.pos + 1;
        let from = self.scanned.max(start);
        let rest = buf.get(from..).unwrap_or_default();
        let found = rest.iter().position(|&b| b == b'\r' || b == b'\n');
        let at = found.map_or(buf.len(), |i| from + i);
        self.bytes_examined += at.saturating_sub(from) as u64;
        if at.saturating_sub(start) > self.limits.max_line_len {
            return Err(RespError::LineTooLong);
        }
        self.scanned = at;
        if found.is_none() {
            return Ok(None);
        }
        match (buf.get(at), buf.get(at + 1)) {
            (Some(b'\n'), _) => Err(RespError::BareLf),
            (_, None) => Ok(None),
            (_, Some(b'\n')) => {
                self.bytes_examined += 2;
                Ok(Some(at))
            }
            (_, Some(_)) => Err(RespError::CrWithoutLf),
        }
    }

    /// Adds a finished element to the innermost open aggregate, closing every
    /// aggregate it completes; the whole reply when the outermost one closes (or
    /// when the element was the reply).
    fn complete(&mut self, mut value: Value) -> Option<Value> {
        // Each pass closes one aggregate, so the stack's length bounds the loop.
        for _ in 0..=self.stack.len() {
            let Some(top) = self.stack.last_mut() else {
                // No aggregate open: `value` is the reply.
                return Some(value);
            };
            top.items.push(value);
            top.remaining = top.remaining.saturating_sub(1);
            if top.remaining > 0 {
                return None;
            }
            // A closed attribute gives nothing: the value after it takes its place.
            value = self.stack.pop().and_then(Frame::finish)?;
        }
        Some(value)
    }
}

/// A length: `-1` is `None` (a null), digits are the count; any other negative,
/// sign or byte is refused.
fn parse_length(line: &[u8]) -> Result<Option<usize>, RespError> {
    match line {
        b"-1" => Ok(None),
        [b'-', ..] => Err(RespError::NegativeLength),
        [] => Err(RespError::InvalidLength),
        digits => {
            let mut n: usize = 0;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return Err(RespError::InvalidLength);
                }
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(d - b'0')))
                    .filter(|&n| i64::try_from(n).is_ok())
                    .ok_or(RespError::IntegerOverflow)?;
            }
            Ok(Some(n))
        }
    }
}

/// `[<+|->]<value>`, a signed 64-bit integer (spec, "Integers"). The digits are
/// accumulated towards the sign, so `i64::MIN` parses.
fn parse_integer(line: &[u8]) -> Result<i64, RespError> {
    let (negative, digits) = match line {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if digits.is_empty() {
        return Err(RespError::InvalidInteger);
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(RespError::InvalidInteger);
        }
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(RespError::IntegerOverflow)?;
    }
    Ok(n)
}

/// `[<+|->]<integral>[.<fractional>][<E|e>[sign]<exponent>]`, or `inf`, `-inf`,
/// `nan` (spec, "Doubles").
fn parse_double(line: &[u8]) -> Result<f64, RespError> {
    match line {
        b"inf" => return Ok(f64::INFINITY),
        b"-inf" => return Ok(f64::NEG_INFINITY),
        b"nan" => return Ok(f64::NAN),
        _ => {}
    }
    // Only the grammar's bytes, and a digit first after the sign, so Rust's parser
    // (which also takes "infinity" and "NaN") sees nothing else.
    let body = line
        .strip_prefix(b"-")
        .or(line.strip_prefix(b"+"))
        .unwrap_or(line);
    let grammar = body.first().is_some_and(u8::is_ascii_digit)
        && body
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !grammar {
        return Err(RespError::InvalidDouble);
    }
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(RespError::InvalidDouble)
}

/// `[<+|->]<number>` of any length (spec, "Big numbers"), kept as text.
fn parse_big_number(line: &[u8]) -> Result<Vec<u8>, RespError> {
    let digits = line
        .strip_prefix(b"-")
        .or(line.strip_prefix(b"+"))
        .unwrap_or(line);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::InvalidBigNumber);
    }
    Ok(line.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b"0"), Ok(Some(0)));
        assert_eq!(parse_length(b"0012"), Ok(Some(12)));
        assert_eq!(parse_length(b"-1"), Ok(None));
        assert_eq!(
            parse_length(b"9223372036854775807"),
            Ok(Some(i64::MAX as usize))
        );
        assert_eq!(
            parse_length(b"9223372036854775808"),
            Err(RespError::IntegerOverflow)
        );
        assert_eq!(parse_length(b"-01"), Err(RespError::NegativeLength));
        assert_eq!(parse_length(b"1-"), Err(RespError::InvalidLength));
        assert_eq!(parse_length(b""), Err(RespError::InvalidLength));
    }

    #[test]
    fn integers() {
        assert_eq!(parse_integer(b"-0"), Ok(0));
        assert_eq!(parse_integer(b"+12"), Ok(12));
        assert_eq!(parse_integer(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_integer(b"+"), Err(RespError::InvalidInteger));
        assert_eq!(parse_integer(b"--1"), Err(RespError::InvalidInteger));
        assert_eq!(
            parse_integer(b"99999999999999999999"),
            Err(RespError::IntegerOverflow)
        );
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_double(b"1.5e3"), Ok(1500.0));
        assert_eq!(parse_double(b"-0.25"), Ok(-0.25));
        assert!(parse_double(b"nan").is_ok_and(f64::is_nan));
        for bad in [
            &b"inf "[..],
            b"+inf",
            b"Infinity",
            b".5",
            b"1e",
            b"0x10",
            b"1_000",
        ] {
            assert_eq!(parse_double(bad), Err(RespError::InvalidDouble), "{bad:?}");
        }
    }

    #[test]
    fn state_is_kept_between_calls_and_cleared_after_a_reply() {
        let mut parser = Parser::default();
        assert_eq!(parser.parse(b"*2\r\n$3\r\nab"), Ok(Parsed::Partial));
        assert_eq!(parser.stack.len(), 1);
        assert!(parser.bulk.is_some());
        assert_eq!(parser.pos, 8);
        let whole = b"*2\r\n$3\r\nabc\r\n:1\r\n";
        assert!(matches!(
            parser.parse(whole),
            Ok(Parsed::Complete { consumed: 17, .. })
        ));
        assert_eq!((parser.pos, parser.scanned), (0, 0));
        assert!(parser.stack.is_empty() && parser.bulk.is_none());
    }

    #[test]
    fn an_attribute_alone_is_not_a_reply() {
        let mut parser = Parser::default();
        assert_eq!(parser.parse(b"|1\r\n+a\r\n:1\r\n"), Ok(Parsed::Partial));
        assert_eq!(
            parser.parse(b"|1\r\n+a\r\n:1\r\n#t\r\n"),
            Ok(Parsed::Complete {
                value: Value::Boolean(true),
                consumed: 16
            })
        );
    }

    #[test]
    fn a_shorter_buffer_than_promised_does_not_panic() {
        let mut parser = Parser::default();
        assert_eq!(parser.parse(b"*2\r\n$10\r\nab"), Ok(Parsed::Partial));
        assert_eq!(parser.parse(b"*"), Ok(Parsed::Partial));
        assert_eq!(parser.parse(b""), Ok(Parsed::Partial));
    }

    #[test]
    fn a_length_claim_is_not_memory() {
        // A million elements claimed, three sent: a partial reply holding room for
        // a few, not a million.
        let mut parser = Parser::default();
        let bytes = b"*1000000\r\n:1\r\n:2\r\n:3\r\n";
        assert_eq!(parser.parse(bytes), Ok(Parsed::Partial));
        assert_eq!(parser.stack.len(), 1);
        assert_eq!(parser.stack[0].items.len(), 3);
        assert!(parser.stack[0].items.capacity() <= 2 * RESERVE_ELEMENTS);
        assert_eq!(parser.stack[0].remaining, 1_000_000 - 3);
    }

    #[test]
    fn the_depth_limit_is_capped() {
        let limits = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        assert_eq!(Parser::new(limits).limits().max_depth, MAX_DEPTH_CAP);
    }
}
