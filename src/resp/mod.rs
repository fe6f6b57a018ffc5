//! RESP, the Redis serialization protocol, client side, sans-I/O: commands out,
//! replies in.
//!
//! # The protocol in one page
//!
//! RESP (<https://redis.io/docs/latest/develop/reference/protocol-spec/>, "spec"
//! in this module's docs) is a request/response protocol over one TCP
//! connection. The client sends a command as an array of bulk strings
//! ([`command`]); the server answers each command with one reply, in order, so a
//! client may send many commands before reading (*pipelining*) and match the
//! replies by position. Every value starts with a type byte and ends in CRLF;
//! strings that may hold any byte are prefixed by their length, so the reader
//! always knows where a value ends without scanning its data:
//!
//! ```text
//! type  example                            RESP  meaning
//! +     +OK\r\n                            2     simple string (no CR or LF inside)
//! -     -ERR unknown command\r\n           2     error: a reply, not a broken protocol
//! :     :1000\r\n                          2     signed 64-bit integer
//! $     $5\r\nhello\r\n                    2     bulk string; $-1\r\n is the null bulk string
//! *     *2\r\n:1\r\n:2\r\n                 2     array of any values; *-1\r\n is the null array
//! _     _\r\n                              3     null
//! #     #t\r\n                             3     boolean
//! ,     ,1.23\r\n                          3     double (also inf, -inf, nan)
//! (     (3492890328409238509324850943\r\n  3     big number
//! !     !21\r\nSYNTAX invalid syntax\r\n   3     bulk error
//! =     =15\r\ntxt:Some string\r\n         3     verbatim string: format, colon, text
//! %     %1\r\n+key\r\n:1\r\n               3     map of N key-value pairs
//! ~     ~2\r\n:1\r\n:2\r\n                 3     set
//! |     |1\r\n+ttl\r\n:3600\r\n            3     attribute: metadata before the reply it describes
//! >     >3\r\n$7\r\nmessage\r\n...         3     push: data the client did not ask for
//! ```
//!
//! A connection speaks RESP2 until the client sends `HELLO 3`. The difference that
//! matters here is pub/sub: in RESP2 a subscribed connection receives its messages
//! as plain arrays and may send only (un)subscribe commands and PING; in RESP3 they
//! arrive as push frames (`>`), distinguishable from replies, on a connection that
//! can still send any command.
//!
//! # What is here
//!
//! | file | concept |
//! |---|---|
//! | [`command`] | [`command::write_command`] and the PUBLISH, SUBSCRIBE, XADD, XREAD... writers |
//! | [`parser`] | [`Parser`]: bytes in, [`Value`]s out, split anywhere, within [`Limits`] |
//! | [`value`] | [`Value`], every RESP2 and RESP3 type, and why it owns its bytes |
//! | [`pubsub`](mod@pubsub) | [`pubsub()`] reads a [`PubSub`] message; [`xread()`] reads stream entries |
//! | [`error`] | [`RespError`]: one variant per broken rule or crossed bound |
//! | [`link`] | [`RespLink`]: the core on a connection of the server's loop, kept up |
//!
//! # How a driver uses it
//!
//! ```
//! use wirepatterns::resp::{Parsed, Parser, PubSub, command, pubsub};
//!
//! let mut out = Vec::new(); // bytes to write to the socket
//! command::subscribe(&mut out, &[b"room"]);
//! // What the server sent back, as read from the socket (maybe in pieces):
//! let mut read_buf = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n\
//!                      *3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$2\r\nhi\r\n*3\r\n$7\r\nmes".to_vec();
//! let mut parser = Parser::default();
//! let mut said = Vec::new();
//! loop {
//!     match parser.parse(&read_buf) {
//!         Ok(Parsed::Complete { value, consumed }) => {
//!             if let Some(PubSub::Message { payload, .. }) = pubsub(&value) {
//!                 said.push(payload.to_vec());
//!             }
//!             read_buf.drain(..consumed);
//!         }
//!         Ok(Parsed::Partial) => break, // read more, append, parse again
//!         Err(_) => break,              // close the connection
//!     }
//! }
//! assert_eq!(said, [b"hi".to_vec()]);
//! assert_eq!(read_buf, b"*3\r\n$7\r\nmes"); // the start of the next message
//! ```
//!
//! RESP3's *streamed* strings and aggregates (`$?`, `*?` with `;` chunks and a
//! `.` end), which Redis itself never sends, are not supported: their headers are
//! refused as [`RespError::InvalidLength`] and [`RespError::UnknownType`].
//!
//! Nothing above touches a socket or a clock. [`link`] is where the core meets
//! one: a [`RespLink`] is a connection to Redis on the server's own loop
//! (the driver connects out), with pipelining, reconnects and a backoff.

pub mod command;
pub mod error;
pub mod link;
pub mod parser;
pub mod pubsub;
pub mod value;

pub use error::RespError;
pub use link::{LinkConfig, LinkEvent, LinkStats, RespLink};
pub use parser::{Limits, Parsed, Parser};
pub use pubsub::{
    PubSub, StreamEntries, StreamEntry, StreamId, StreamInfo, pubsub, stream_info, xread,
};
pub use value::Value;
