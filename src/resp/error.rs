//! What can be wrong with the bytes a Redis server sends, one variant per rule.
//!
//! An error *reply* (`-ERR unknown command\r\n`, `!21\r\n...`) is not here: it is a
//! well-formed [`super::Value::Error`] that the caller handles like any other reply.
//! A [`RespError`] means the byte stream itself broke the protocol (or a bound in
//! [`super::Limits`]): the parser cannot know where the next reply starts, so the
//! only safe answer is to close the connection (and reconnect if the caller wants).
//!
//! Like the crate's other protocol errors, it is fieldless and `Copy`: the variant
//! says which rule was broken. "spec" below is the Redis serialization protocol
//! specification (<https://redis.io/docs/latest/develop/reference/protocol-spec/>).

use thiserror::Error;

/// A reply that breaks the protocol or a configured bound: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RespError {
    /// A reply starts with a byte that names no RESP2 or RESP3 type (spec: "the
    /// first byte in an RESP-serialized payload always identifies its type").
    #[error("unknown RESP type byte")]
    UnknownType,
    /// A LF not preceded by CR: every RESP line ends in CRLF (spec: "\r\n (CRLF) is
    /// the protocol's terminator").
    #[error("bare LF: RESP lines end in CRLF")]
    BareLf,
    /// A CR followed by something other than LF. Simple strings and errors may not
    /// hold CR or LF (spec: "the string mustn't contain a CR (\r) or LF (\n)").
    #[error("CR not followed by LF: RESP lines end in CRLF")]
    CrWithoutLf,
    /// The bytes after a bulk string's data are not CRLF: the length and the data
    /// disagree.
    #[error("bulk data not followed by CRLF: the length and the data disagree")]
    MissingCrlf,
    /// A length (`$`, `*`, `%`, `~`, `>`, `|`, `!`, `=`) that is empty or holds a
    /// byte other than an ASCII digit.
    #[error("invalid length: expected ASCII digits")]
    InvalidLength,
    /// A negative length other than `-1`, or `-1` where no null is defined (only
    /// `$-1` and `*-1` are RESP2's null bulk string and null array).
    #[error("negative length: only $-1 and *-1 are defined")]
    NegativeLength,
    /// An integer reply (`:`) that is empty or holds a non-digit after its sign.
    #[error("invalid integer: expected an optional sign and ASCII digits")]
    InvalidInteger,
    /// An integer or a length that does not fit in a signed 64-bit integer (spec:
    /// integers are "signed, base-10, 64-bit").
    #[error("integer overflows 64 bits")]
    IntegerOverflow,
    /// A null (`_`) with something between the type byte and the CRLF.
    #[error("invalid null: expected _ followed by CRLF")]
    InvalidNull,
    /// A boolean (`#`) other than `t` or `f`.
    #[error("invalid boolean: expected t or f")]
    InvalidBoolean,
    /// A double (`,`) that is not a decimal number, `inf`, `-inf` or `nan`.
    #[error("invalid double")]
    InvalidDouble,
    /// A big number (`(`) that is not an optional sign followed by digits.
    #[error("invalid big number: expected an optional sign and ASCII digits")]
    InvalidBigNumber,
    /// A verbatim string (`=`) shorter than 4 bytes or without `:` after its
    /// three-byte format (spec: "the first three bytes provide information about the
    /// format of the following string ... followed by a colon").
    #[error("invalid verbatim string: expected a three-byte format and a colon")]
    InvalidVerbatim,
    /// A bulk string, bulk error or verbatim string whose length is over
    /// [`super::Limits::max_bulk_len`]; refused on its header, before its data.
    #[error("bulk string longer than the limit")]
    BulkTooLong,
    /// An aggregate announcing more elements than [`super::Limits::max_elements`].
    #[error("aggregate with more elements than the limit")]
    TooManyElements,
    /// Aggregates nested deeper than [`super::Limits::max_depth`].
    #[error("aggregates nested deeper than the limit")]
    TooDeep,
    /// A line (simple string, error, integer, length...) longer than
    /// [`super::Limits::max_line_len`], refused before its end arrives.
    #[error("line longer than the limit")]
    LineTooLong,
}
