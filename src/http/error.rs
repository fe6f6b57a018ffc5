//! What can be wrong with a request (or, for a client, a response), and how each
//! fault is answered.
//!
//! Every variant names the rule that was broken, and [`HttpError::status`] gives the
//! status code the server answers it with (the way h11's `error_status_hint` does).
//! The `Display` text is the sentence that goes into the response body, so a client
//! that gets a 400 learns which rule it broke. After any of these the server closes
//! the connection: once framing is in doubt, nothing later on the connection can be
//! trusted (RFC 9112 §9.3, §11.2 on request smuggling).

use thiserror::Error;

/// A request the server will not process, with the rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HttpError {
    /// The method is not a `token` (RFC 9110 §9.1, RFC 9112 §3.1).
    #[error("invalid method: the method must be a token (RFC 9112 section 3.1)")]
    InvalidMethod,
    /// The request-target is empty or holds a byte that may not appear in it.
    #[error("invalid request-target (RFC 9112 section 3.2)")]
    InvalidTarget,
    /// The request-target's form does not fit the method: `*` is only for OPTIONS,
    /// authority-form only for CONNECT (RFC 9112 §3.2.3, §3.2.4).
    #[error("request-target form does not match the method (RFC 9112 section 3.2)")]
    TargetFormMismatch,
    /// The request-target is longer than the configured limit.
    #[error("request-target longer than the limit (RFC 9112 section 3)")]
    TargetTooLong,
    /// The HTTP-version is not `HTTP/` DIGIT `.` DIGIT (RFC 9112 §2.3).
    #[error("invalid HTTP-version: expected HTTP/DIGIT.DIGIT (RFC 9112 section 2.3)")]
    InvalidVersion,
    /// A request line with a major version this server does not speak (2 or more).
    #[error("HTTP version not supported: this server speaks HTTP/1.x (RFC 9110 section 15.6.6)")]
    VersionNotSupported,
    /// The request line is not `method SP request-target SP HTTP-version`, with single
    /// spaces (RFC 9112 §3).
    #[error(
        "malformed request line: expected method SP request-target SP HTTP-version (RFC 9112 section 3)"
    )]
    InvalidRequestLine,
    /// A field name is not a `token` (RFC 9110 §5.1).
    #[error("invalid header field name: the name must be a token (RFC 9110 section 5.1)")]
    InvalidHeaderName,
    /// Whitespace between a field name and the colon (RFC 9112 §5.1: MUST reject).
    #[error("whitespace between header field name and colon (RFC 9112 section 5.1)")]
    WhitespaceBeforeColon,
    /// A field line without a colon.
    #[error("header field line without a colon (RFC 9112 section 5)")]
    MissingColon,
    /// A field value holds a byte that is not field-vchar, SP or HTAB, such as NUL or
    /// a control character (RFC 9110 §5.5).
    #[error("invalid byte in header field value (RFC 9110 section 5.5)")]
    InvalidHeaderValue,
    /// A field line that begins with whitespace: obsolete line folding
    /// (RFC 9112 §5.2: a server MUST reject it or replace it; this one rejects it).
    #[error("obsolete line folding is not accepted (RFC 9112 section 5.2)")]
    ObsoleteFold,
    /// A CR not followed by LF (RFC 9112 §2.2).
    #[error("bare CR: a CR must be followed by LF (RFC 9112 section 2.2)")]
    BareCr,
    /// A line of the head (a leading empty line, the request line, a field line or
    /// the empty line that ends the head) ended by a bare LF, without its CR. RFC 9112
    /// §2.2 lets a recipient accept it; this parser refuses it unless
    /// [`Limits::allow_bare_lf`](super::Limits::allow_bare_lf) is set, because a
    /// front end that reads lines differently is how requests get smuggled.
    #[error("bare LF: a line of the request head must end in CRLF (RFC 9112 section 2.2)")]
    BareLf,
    /// A NUL byte in the head.
    #[error("NUL byte in the request head (RFC 9110 section 5.5)")]
    NulByte,
    /// Whitespace before the first field line (RFC 9112 §2.2: MUST reject or ignore
    /// such lines; this server rejects them).
    #[error("whitespace between the start line and the first header field (RFC 9112 section 2.2)")]
    WhitespaceAfterStartLine,
    /// An HTTP/1.1 request without a Host field (RFC 9112 §3.2: MUST answer 400).
    #[error("missing Host header in an HTTP/1.1 request (RFC 9112 section 3.2)")]
    MissingHost,
    /// More than one Host field line (RFC 9112 §3.2: MUST answer 400).
    #[error("more than one Host header (RFC 9112 section 3.2)")]
    DuplicateHost,
    /// A Host field value that is not `uri-host [ ":" port ]` (RFC 9110 §7.2,
    /// RFC 3986 §3.2.2; RFC 9112 §3.2: MUST answer 400).
    #[error("invalid Host header value (RFC 9112 section 3.2)")]
    InvalidHost,
    /// The head is bigger than the configured limit, or has too many field lines.
    #[error("request header fields too large (RFC 6585 section 5)")]
    HeadTooLarge,
    /// Content-Length is not `1*DIGIT`, or overflows (RFC 9110 §8.6).
    #[error("invalid Content-Length: expected 1*DIGIT (RFC 9110 section 8.6)")]
    InvalidContentLength,
    /// Several Content-Length values that are not all the same
    /// (RFC 9112 §6.3 rule 5: unrecoverable error).
    #[error("conflicting Content-Length values (RFC 9112 section 6.3)")]
    ConflictingContentLength,
    /// Content-Length and Transfer-Encoding in one request
    /// (RFC 9112 §6.1: MAY be treated as an error; this server does, to prevent
    /// request smuggling).
    #[error("both Content-Length and Transfer-Encoding present (RFC 9112 section 6.1)")]
    ContentLengthWithTransferEncoding,
    /// A transfer coding other than chunked: not implemented here
    /// (RFC 9112 §6.1: SHOULD answer 501).
    #[error("transfer coding not implemented: only chunked is supported (RFC 9112 section 6.1)")]
    UnsupportedTransferCoding,
    /// chunked is not the final coding (including a Transfer-Encoding that lists no
    /// coding at all), or is applied twice (RFC 9112 §6.3 rule 4: MUST answer 400).
    #[error("chunked must be the final transfer coding, applied once (RFC 9112 section 6.3)")]
    ChunkedNotLast,
    /// A chunk-size that is not 1*HEXDIG, or overflows (RFC 9112 §7.1).
    #[error("invalid chunk size (RFC 9112 section 7.1)")]
    InvalidChunkSize,
    /// A chunk-size of more than 16 hex digits: rejected before any arithmetic, so
    /// neither leading zeros nor overflow can make two parsers read different sizes
    /// (RFC 9112 §7.1: a recipient MUST anticipate large numerals and prevent
    /// overflow).
    #[error("chunk size longer than 16 hex digits (RFC 9112 section 7.1)")]
    ChunkSizeTooLong,
    /// Whitespace after a chunk-size that no `;` follows (`5 \r\n`): the grammar only
    /// allows BWS before a chunk extension (RFC 9112 §7.1.1).
    #[error(
        "whitespace after a chunk size must lead to a ';' chunk extension (RFC 9112 section 7.1.1)"
    )]
    WhitespaceAfterChunkSize,
    /// A CR or LF inside a chunk extension, quoted or not: chunk-ext-val is a token or
    /// a quoted-string, and neither may hold a line break (RFC 9112 §7.1.1,
    /// RFC 9110 §5.6.4).
    #[error("CR or LF inside a chunk extension (RFC 9112 section 7.1.1)")]
    LineBreakInChunkExtension,
    /// A line of chunked framing (a chunk-size line, the line end after chunk data,
    /// the last chunk, a trailer line or the final empty line) ended by a bare LF.
    /// RFC 9112 §7.1 writes each as CRLF; erratum 7633, which asked to allow a bare
    /// LF there, was rejected. [`Limits::allow_bare_lf`](super::Limits::allow_bare_lf)
    /// does not change this.
    #[error("bare LF in chunked framing: chunk lines end in CRLF only (RFC 9112 section 7.1)")]
    BareLfInChunkedBody,
    /// `Transfer-Encoding: chunked` with parameters (`chunked;foo=bar`): the chunked
    /// coding defines none, and their presence SHOULD be treated as an error
    /// (RFC 9112 §7.1).
    #[error("the chunked transfer coding takes no parameters (RFC 9112 section 7.1)")]
    ChunkedWithParameters,
    /// A chunk extension that does not parse, or a chunk-size line over the limit.
    #[error("invalid chunk extension or chunk line too long (RFC 9112 section 7.1.1)")]
    InvalidChunkExtension,
    /// Chunk data not followed by CRLF (RFC 9112 §7.1).
    #[error("missing CRLF after chunk data (RFC 9112 section 7.1)")]
    MissingChunkCrlf,
    /// A trailer field line that does not parse (RFC 9112 §7.1.2).
    #[error("invalid trailer field (RFC 9112 section 7.1.2)")]
    InvalidTrailer,
    /// The trailer section is bigger than the configured limit.
    #[error("trailer section too large (RFC 9112 section 7.1.2)")]
    TrailerTooLarge,
    /// The body is bigger than the configured limit.
    #[error("request body larger than the limit (RFC 9110 section 15.5.14)")]
    BodyTooLarge,
    /// The head did not arrive within the header timeout.
    #[error("request head not received within the timeout (RFC 9110 section 15.5.9)")]
    HeadTimeout,
    /// A response's status line is not `HTTP-version SP status-code SP
    /// [ reason-phrase ]`, or its reason phrase holds a control byte (RFC 9112 §4).
    #[error(
        "malformed status line: expected HTTP-version SP status-code SP reason-phrase (RFC 9112 section 4)"
    )]
    InvalidStatusLine,
    /// A response's status code is not three digits from 100 to 599 (RFC 9110 §15).
    #[error("invalid status code: expected three digits, 100 to 599 (RFC 9110 section 15)")]
    InvalidStatusCode,
    /// The connection closed before the response was complete: inside the head, or
    /// inside a body framed by Content-Length or chunked (RFC 9112 §8: such a message
    /// is incomplete, never to be taken for a whole one).
    #[error("the connection closed before the response was complete (RFC 9112 section 8)")]
    TruncatedResponse,
}

impl HttpError {
    /// The status code this fault is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::TargetTooLong => 414,
            HttpError::VersionNotSupported => 505,
            HttpError::HeadTooLarge | HttpError::TrailerTooLarge => 431,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::BodyTooLarge => 413,
            HttpError::HeadTimeout => 408,
            // What a gateway answers when the server behind it sent a response it
            // could not use (RFC 9110 §15.6.3).
            HttpError::InvalidStatusLine
            | HttpError::InvalidStatusCode
            | HttpError::TruncatedResponse => 502,
            _ => 400,
        }
    }
}
