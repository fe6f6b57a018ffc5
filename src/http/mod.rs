//! HTTP/1.1, sans-I/O: bytes in, parsed requests out; responses in, bytes out.
//!
//! # The message, as RFC 9112 §2.1 draws it
//!
//! ```text
//! HTTP-message = start-line CRLF
//!                *( field-line CRLF )
//!                CRLF
//!                [ message-body ]
//! ```
//!
//! A request is a *start line* (`GET /index.html HTTP/1.1`), zero or more *header
//! field lines* (`Host: example.com`), an empty line, and maybe a *body*. The empty
//! line is the boundary the notes talk about: the head ends at the first `CRLF CRLF`.
//! Where the body ends is not marked in the bytes at all; the head says how to find it
//! (§6.3): a `Content-Length` gives the byte count, `Transfer-Encoding: chunked` splits
//! the body into self-delimiting chunks, and a request with neither has no body.
//!
//! # What is here
//!
//! - [`request`]: [`RequestParser`] turns the bytes of a head into a [`Request`] view
//!   that borrows from the buffer. It answers [`Status::Partial`] ("need more",
//!   consuming nothing) until the whole head is there, then
//!   [`Status::Complete`] with the head's length. It remembers how far it searched, so a
//!   head that arrives one byte at a time costs O(n) in all, not O(n²).
//! - [`body`]: [`BodyDecoder`] is fed the bytes after the head as they arrive and hands
//!   back the body's data, for `Content-Length` and `chunked` framing alike.
//! - [`response`]: writes a status line, header fields and a body (sized or chunked)
//!   into an output buffer.
//! - [`response_parser`]: the client's side: [`ResponseParser`] reads a status line
//!   and header fields, and decides where the body ends (RFC 9112 §6.3: HEAD, 1xx,
//!   204, 304, chunked, Content-Length, or the server closing); [`ResponseReader`]
//!   hands out a whole response as head, body pieces and its end.
//! - [`error`]: [`HttpError`], one variant per rule, each knowing the status code it
//!   is answered with.
//! - [`tables`]: the byte classes of the grammar (`tchar`, `field-vchar`, ...) as
//!   256-entry lookup tables, with the ABNF above each.
//! - [`query`]: the `name=value` pairs after a target's `?`, percent-decoded.
//! - [`date`]: the IMF-fixdate a server puts in its `Date` field.
//!
//! Nothing in this module touches a socket or a clock: the driver in
//! [`crate::server`] does the I/O and passes the bytes in.

pub mod body;
pub mod date;
pub mod error;
mod head;
pub mod query;
pub mod request;
pub mod response;
pub mod response_parser;
pub mod tables;

pub use body::{BodyDecoder, Decoded};
pub use error::HttpError;
pub use request::{Framing, Header, Headers, Request, RequestParser, TargetForm, Version};
pub use response::Response;
pub use response_parser::{
    ResponseEvent, ResponseFraming, ResponseHead, ResponseParser, ResponseReader, ResponseStep,
};

/// The outcome of a parse that did not fail: either the message is all there, or more
/// bytes are needed. "Need more" is an expected answer, not an error, and it consumes
/// nothing: call again with the same bytes plus whatever arrived since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The message is complete; `T` says what was parsed (and how many bytes it took).
    Complete(T),
    /// The bytes so far are a valid beginning, but not a whole message.
    Partial,
}

impl<T> Status<T> {
    /// `true` for [`Status::Complete`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }

    /// `true` for [`Status::Partial`].
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}

/// Every bound the parser and decoder enforce. Each one has a default and can be
/// changed; each one, when crossed, is answered with the status its field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header section (start line, field lines and the empty line), in bytes.
    /// Over it: 431 Request Header Fields Too Large. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Longest request-target, in bytes. Over it: 414 URI Too Long. Default 8 KiB.
    pub max_target_bytes: usize,
    /// Most header field lines in one head. Over it: 431. Default 100.
    pub max_headers: usize,
    /// Largest decoded body, in bytes. Over it: 413 Content Too Large. Default 8 MiB.
    pub max_body_bytes: u64,
    /// Longest chunked trailer section, in bytes. Over it: 431. Default 16 KiB.
    pub max_trailer_bytes: usize,
    /// Longest chunk-size line (size and extensions), in bytes. Over it: 400.
    /// Default 4 KiB.
    pub max_chunk_line_bytes: usize,
    /// Accept a bare LF (no CR) as the end of a line of the head: a leading empty
    /// line, the request line, a field line or the empty line that ends the head.
    /// Default `false`: such a head is answered 400 ([`HttpError::BareLf`]). RFC 9112
    /// §2.2 allows a recipient to accept it, but a proxy in front that ends lines only
    /// at CRLF reads a different head than this server would, and that disagreement is
    /// how requests get smuggled (see [`request`]'s module docs). Chunked framing is
    /// CRLF-only whatever this says (RFC 9112 §7.1).
    pub allow_bare_lf: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_target_bytes: 8 * 1024,
            max_headers: 100,
            max_body_bytes: 8 * 1024 * 1024,
            max_trailer_bytes: 16 * 1024,
            max_chunk_line_bytes: 4 * 1024,
            allow_bare_lf: false,
        }
    }
}
