//! [`Value`]: one parsed reply, RESP2 and RESP3 types alike.
//!
//! # Owned, not borrowed
//!
//! A value owns its bytes (`Vec<u8>`) instead of borrowing from the read buffer.
//! The parser is fed a buffer that keeps growing until a reply is whole, and the
//! caller removes the consumed bytes right after; a borrowed value would pin that
//! buffer for as long as the value lives, and a subscriber typically keeps a
//! message (hands it to a hub, queues it for many clients) well past the next
//! read. The copy is one pass over the data, the same copy the caller would make to
//! keep it, and each string is allocated at its announced length once its data is
//! all there (never on a length alone: see [`super::parser`]). The helpers that
//! interpret a value ([`pubsub`](mod@super::pubsub)) borrow from it, so looking at a message
//! costs no further copy.
//!
//! # Nulls and errors
//!
//! RESP2 has two nulls, the null bulk string `$-1` and the null array `*-1`; RESP3
//! has one, `_`. All three parse to [`Value::Null`]: no command's meaning depends
//! on which null it got. Likewise a simple error (`-`) and a bulk error (`!`, which
//! may hold any bytes) are both [`Value::Error`]: an error is a reply, not a parse
//! failure.

/// One RESP reply, or an element of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+OK\r\n`: a simple string (no CR or LF inside).
    Simple(Vec<u8>),
    /// `-ERR message\r\n` or `!len\r\nmessage\r\n`: an error reply. The first word
    /// is by convention its kind (`ERR`, `WRONGTYPE`, `NOAUTH`...).
    Error(Vec<u8>),
    /// `:1000\r\n`: a signed 64-bit integer.
    Integer(i64),
    /// `$5\r\nhello\r\n`: a binary-safe bulk string.
    Bulk(Vec<u8>),
    /// `$-1\r\n`, `*-1\r\n` (RESP2) or `_\r\n` (RESP3): no value.
    Null,
    /// `*2\r\n...`: an ordered list of values.
    Array(Vec<Value>),
    /// `#t\r\n` / `#f\r\n` (RESP3).
    Boolean(bool),
    /// `,3.14\r\n` (RESP3), including `inf`, `-inf` and `nan`.
    Double(f64),
    /// `(3492890328409238509324850943850943825024385\r\n` (RESP3): an integer of
    /// any size, kept as its decimal text (an optional `-` and digits).
    BigNumber(Vec<u8>),
    /// `=15\r\ntxt:Some string\r\n` (RESP3): a string with a three-byte format
    /// (`txt`, `mkd`) meant to be shown as is.
    Verbatim {
        /// The format, such as `txt` or `mkd`.
        format: [u8; 3],
        /// The string after the colon.
        text: Vec<u8>,
    },
    /// `%2\r\n...` (RESP3): key-value pairs, in the order the server sent them.
    Map(Vec<(Value, Value)>),
    /// `~2\r\n...` (RESP3): an unordered collection, in the order the server sent it.
    Set(Vec<Value>),
    /// `>3\r\n...` (RESP3): out-of-band data, such as a pub/sub message, that is not
    /// the reply to a command.
    Push(Vec<Value>),
}

impl Value {
    /// The bytes of a string-like value: simple string, bulk string, verbatim text.
    /// `None` for anything else (errors included).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Simple(b) | Value::Bulk(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The integer of an [`Value::Integer`].
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn as_items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// The message of an error reply.
    pub fn as_error(&self) -> Option<&[u8]> {
        match self {
            Value::Error(e) => Some(e),
            _ => None,
        }
    }

    /// `true` for [`Value::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}
