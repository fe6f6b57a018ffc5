//! Responses, sans-I/O: a [`Response`] in, bytes out (RFC 9112 §4, §6, §7).
//!
//! ```text
//! status-line = HTTP-version SP status-code SP [ reason-phrase ]   ; RFC 9112 §4
//! ```
//!
//! A response is a status line, header fields, an empty line and maybe a body, just
//! like a request. What the server has to get right is the part the application does
//! not see: how the client will find the end of the body.
//!
//! - **Content-Length** (RFC 9110 §8.6) when the whole body is known up front: the
//!   common case, and the only one [`Response::encode`] produces.
//! - **chunked** (RFC 9112 §7.1) when the body is produced in parts and its length is
//!   not known when the head goes out (Server-Sent Events, long downloads):
//!   [`Response::encode_stream_head`], then [`encode_chunk`] per part and
//!   [`encode_last_chunk`] to end it. HTTP/1.0 clients do not know chunked; for them
//!   the body simply runs until the server closes the connection (§6.3 rule 8).
//! - **no body at all**: 1xx, 204 and 304 responses never have one (§6.3 rule 1), and
//!   a response to HEAD carries the header fields a GET would have had, including its
//!   Content-Length, but not the body (RFC 9110 §9.3.2).
//!
//! The encoder, not the application, writes the fields that decide framing and
//! persistence: `Content-Length`, `Transfer-Encoding`, `Connection: close` when the
//! server will close after this response (RFC 9112 §9.6), `Connection: keep-alive`
//! for an HTTP/1.0 client whose connection stays open (§9.3), and `Date`
//! (RFC 9110 §6.6.1). The date is passed in as text: this module never reads a clock.
//!
//! Everything is written into a `Vec<u8>` the caller owns and reuses, so encoding a
//! response allocates nothing once that buffer has grown to size.

use super::date::HttpDate;
use super::error::HttpError;
use super::request::Version;
use super::tables::{FIELD_VALUE, is_tchar};

/// The interim response that tells a client sending `Expect: 100-continue` to go
/// ahead with the body (RFC 9110 §10.1.1, §15.2.1).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The last chunk of a chunked body, with an empty trailer section (RFC 9112 §7.1).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The reason phrase for a status code (RFC 9110 §15). Clients must ignore it
/// (RFC 9112 §4), but people read it. Unknown codes get an empty phrase, which the
/// grammar allows.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A header field the encoder refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    /// The name is not a token, or the value holds a control character (CR or LF
    /// in a value would let it end the line early and forge fields or a whole
    /// second response: "response splitting").
    #[error(
        "invalid header field: name must be a token, value must not hold CR, LF or NUL (RFC 9110 section 5)"
    )]
    Malformed,
    /// `Content-Length` or `Transfer-Encoding`: the encoder owns the message's
    /// framing. A second, hand-set length would give the response two framings,
    /// and a client and a proxy could each believe a different one (RFC 9112
    /// section 6.3: the basis of response smuggling).
    #[error(
        "Content-Length and Transfer-Encoding are set by the response writer, which owns the framing (RFC 9112 section 6)"
    )]
    Framing,
}

/// A response: status, header fields and body.
///
/// The application fills one in; [`Response::encode`] (or
/// [`Response::encode_stream_head`]) turns it into bytes. The fields the encoder owns
/// (`Content-Length`, `Transfer-Encoding`, `Date`, and `Connection: close` or
/// `keep-alive`) must not be added by hand.
///
/// ```
/// use wirepatterns::http::{Response, Version};
/// use wirepatterns::http::response::Encoding;
///
/// let mut res = Response::new(200);
/// res.header("Content-Type", "text/plain");
/// res.body_mut().extend_from_slice(b"hi\n");
/// let mut out = Vec::new();
/// res.encode(&mut out, &Encoding::new(Version::Http11));
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nhi\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100-999 (RFC 9110 §15: three digits).
    status: u16,
    /// The header field lines, already in wire form (`Name: value\r\n` each), so that
    /// encoding is one copy and adding a field allocates nothing once this has grown.
    headers: Vec<u8>,
    /// The body bytes of a sized response. Streaming responses send theirs later.
    body: Vec<u8>,
    /// Set by the application to close the connection after this response even if
    /// the client asked to keep it.
    close: bool,
}

impl Default for Response {
    fn default() -> Self {
        Response::new(200)
    }
}

/// What the encoder needs to know about the exchange besides the response itself.
#[derive(Debug, Clone, Copy)]
pub struct Encoding<'a> {
    /// The request's version: an HTTP/1.0 client gets `Connection: keep-alive` when
    /// the connection stays open, and never gets a chunked body.
    pub version: Version,
    /// The request was HEAD: send the header fields, not the body.
    pub head_only: bool,
    /// The server closes the connection after this response: say so.
    pub close: bool,
    /// The `Date` field's value, if the server has a clock.
    pub date: Option<&'a HttpDate>,
}

impl<'a> Encoding<'a> {
    /// A response to a non-HEAD request of `version`, connection kept, no `Date`.
    pub fn new(version: Version) -> Encoding<'a> {
        Encoding {
            version,
            head_only: false,
            close: false,
            date: None,
        }
    }
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: u16) -> Response {
        Response {
            status: clamp_status(status),
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// A `text/plain` response with `body`.
    pub fn text(status: u16, body: &str) -> Response {
        let mut res = Response::new(status);
        res.header("Content-Type", "text/plain; charset=utf-8");
        res.body.extend_from_slice(body.as_bytes());
        res
    }

    /// The answer to a request that broke a rule: the error's status, a
    /// `text/plain` body naming the rule (the error's `Display` text), and
    /// `Connection: close`, since nothing after a bad request can be trusted
    /// (RFC 9112 §9.3, §11.2).
    pub fn from_error(err: &HttpError) -> Response {
        use std::io::Write as _;
        let mut res = Response::new(err.status());
        res.header("Content-Type", "text/plain; charset=utf-8");
        // Writing into a Vec cannot fail.
        let _ = writeln!(res.body, "{err}");
        res.close = true;
        res
    }

    /// Makes this response like [`Response::new`]`(200)` again, keeping the buffers'
    /// capacity so that a reused response allocates nothing.
    pub fn clear(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
        self.close = false;
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status code (codes outside 100-999 become 500).
    pub fn set_status(&mut self, status: u16) -> &mut Self {
        self.status = clamp_status(status);
        self
    }

    /// Adds a header field. A field that could break the message (a name that is not
    /// a token, a value with CR, LF, NUL or another control byte) is not added, nor
    /// is `Content-Length` or `Transfer-Encoding` (the encoder sets the framing, from
    /// the body and from how the response is sent): use [`Response::try_header`] to
    /// find out.
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let _ = self.try_header(name, value);
        self
    }

    /// Adds a header field, or says why it cannot be sent (RFC 9110 §5.1, §5.5;
    /// framing fields: RFC 9112 §6).
    pub fn try_header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, InvalidHeader> {
        let value = value.as_ref();
        let name_ok = !name.is_empty() && name.bytes().all(is_tchar);
        let value_ok = value.iter().all(|&b| FIELD_VALUE[b as usize]);
        if !name_ok || !value_ok {
            return Err(InvalidHeader::Malformed);
        }
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(InvalidHeader::Framing);
        }
        self.headers.reserve(name.len() + value.len() + 4);
        self.headers.extend_from_slice(name.as_bytes());
        self.headers.extend_from_slice(b": ");
        self.headers.extend_from_slice(value);
        self.headers.extend_from_slice(b"\r\n");
        Ok(self)
    }

    /// The header field lines added so far, in wire form.
    pub fn header_bytes(&self) -> &[u8] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, to write into (e.g. with `std::io::Write` or `extend_from_slice`).
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) -> &mut Self {
        self.body = body.into();
        self
    }

    /// Asks the server to close the connection after this response.
    pub fn set_close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// Whether the application asked to close after this response.
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// Whether a response with this status may carry a body at all
    /// (RFC 9112 §6.3 rule 1: 1xx, 204 and 304 never do).
    pub fn status_allows_body(&self) -> bool {
        !(self.status < 200 || self.status == 204 || self.status == 304)
    }

    /// Appends the whole response, framed by `Content-Length`, to `out`.
    ///
    /// 1xx and 204 responses get no `Content-Length` (RFC 9110 §8.6: MUST NOT) and
    /// no body; 304 gets no body. A HEAD response gets the `Content-Length` the GET
    /// would have had and no body (RFC 9110 §9.3.2).
    pub fn encode(&self, out: &mut Vec<u8>, enc: &Encoding<'_>) {
        let allows_body = self.status_allows_body();
        out.reserve(64 + self.headers.len() + if allows_body { self.body.len() } else { 0 });
        self.encode_common(out, enc);
        if allows_body {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, self.body.len() as u64);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if allows_body && !enc.head_only {
            out.extend_from_slice(&self.body);
        }
    }

    /// Appends the head of a streaming response to `out`: the body follows later, in
    /// parts. With `chunked`, the head says `Transfer-Encoding: chunked` and the
    /// parts must be framed with [`encode_chunk`] and ended with [`encode_last_chunk`].
    /// Without it (for HTTP/1.0 clients), the body is delimited by closing the
    /// connection, so `enc.close` must be set (RFC 9112 §6.3 rule 8). Any body
    /// already in this response is sent as the first part.
    pub fn encode_stream_head(&self, out: &mut Vec<u8>, enc: &Encoding<'_>, chunked: bool) {
        self.encode_common(out, enc);
        if chunked && self.status_allows_body() {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.body.is_empty() && !enc.head_only && self.status_allows_body() {
            if chunked {
                encode_chunk(out, &self.body);
            } else {
                out.extend_from_slice(&self.body);
            }
        }
    }

    /// Status line, the application's fields, and the fields the encoder owns
    /// except the framing ones.
    fn encode_common(&self, out: &mut Vec<u8>, enc: &Encoding<'_>) {
        push_status_line(out, self.status);
        if let Some(date) = enc.date {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(date.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.headers);
        if enc.close || self.close {
            // RFC 9112 §9.6: a server that will close after this response sends "close".
            out.extend_from_slice(b"Connection: close\r\n");
        } else if enc.version == Version::Http10 && self.status != 101 {
            // RFC 9112 §9.3 (and Appendix C.2.2): a 1.0 connection persists only if
            // the server says so.
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
}

/// Appends one chunk of a chunked body: `chunk-size CRLF chunk-data CRLF`
/// (RFC 9112 §7.1). An empty `data` writes nothing, since a zero-size chunk would
/// end the body.
///
/// ```
/// let mut out = Vec::new();
/// wirepatterns::http::response::encode_chunk(&mut out, b"hello, world");
/// assert_eq!(out, b"c\r\nhello, world\r\n");
/// ```
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.reserve(data.len() + 20);
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section, ending a chunked body.
pub fn encode_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(LAST_CHUNK);
}

/// Appends `HTTP/1.1 <code> <reason>\r\n`. The server always answers with the
/// highest version it speaks (RFC 9110 §6.2); HTTP/1.0 clients understand a 1.1
/// status line.
pub fn push_status_line(out: &mut Vec<u8>, status: u16) {
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    let status = clamp_status(status);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.push(b'0' + (status / 100) as u8);
    out.push(b'0' + (status / 10 % 10) as u8);
    out.push(b'0' + (status % 10) as u8);
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Status codes are three digits (RFC 9110 §15); anything else is a server bug,
/// answered as 500 rather than sent as a malformed line.
fn clamp_status(status: u16) -> u16 {
    if (100..=999).contains(&status) {
        status
    } else {
        500
    }
}

/// Appends `n` in decimal, without going through `fmt`.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends `n` in lowercase hexadecimal (a chunk-size is 1*HEXDIG, RFC 9112 §7.1).
fn push_hex(out: &mut Vec<u8>, mut n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(version: Version) -> Encoding<'static> {
        Encoding::new(version)
    }

    fn encoded(res: &Response, e: &Encoding<'_>) -> String {
        let mut out = Vec::new();
        res.encode(&mut out, e);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc9112_4_status_line_and_content_length() {
        let mut res = Response::new(404);
        res.header("Content-Type", "text/plain");
        res.body_mut().extend_from_slice(b"nope");
        assert_eq!(
            encoded(&res, &enc(Version::Http11)),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope"
        );
    }

    #[test]
    fn rfc9110_9_3_2_head_gets_the_get_content_length_but_no_body() {
        let mut res = Response::new(200);
        res.body_mut().extend_from_slice(b"0123456789");
        let mut e = enc(Version::Http11);
        e.head_only = true;
        assert_eq!(
            encoded(&res, &e),
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
        );
    }

    #[test]
    fn rfc9110_8_6_no_content_length_on_204_and_1xx() {
        let mut res = Response::new(204);
        res.body_mut().extend_from_slice(b"ignored");
        assert_eq!(
            encoded(&res, &enc(Version::Http11)),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        let mut res = Response::new(101);
        res.header("Upgrade", "websocket");
        res.header("Connection", "Upgrade");
        assert_eq!(
            encoded(&res, &enc(Version::Http11)),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }

    #[test]
    fn rfc9112_9_6_close_is_announced() {
        let res = Response::new(200);
        let mut e = enc(Version::Http11);
        e.close = true;
        assert_eq!(
            encoded(&res, &e),
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn rfc9112_9_3_http10_keep_alive_is_announced() {
        let res = Response::new(200);
        assert_eq!(
            encoded(&res, &enc(Version::Http10)),
            "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn rfc9110_6_6_1_date_field() {
        let date = HttpDate::from_unix(784_111_777);
        let mut e = enc(Version::Http11);
        e.date = Some(&date);
        assert_eq!(
            encoded(&Response::new(200), &e),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn error_response_names_the_rule_and_closes() {
        let res = Response::from_error(&HttpError::MissingHost);
        let text = encoded(&res, &enc(Version::Http11));
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(
            text.ends_with("missing Host header in an HTTP/1.1 request (RFC 9112 section 3.2)\n"),
            "{text}"
        );
        let res = Response::from_error(&HttpError::VersionNotSupported);
        assert!(
            encoded(&res, &enc(Version::Http11))
                .starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n")
        );
    }

    #[test]
    fn rfc9112_7_1_chunks() {
        let mut out = Vec::new();
        let mut res = Response::new(200);
        res.header("Content-Type", "text/event-stream");
        res.encode_stream_head(&mut out, &enc(Version::Http11), true);
        encode_chunk(&mut out, b"data: 1\n\n");
        encode_chunk(&mut out, b"");
        encode_chunk(&mut out, &[b'x'; 255]);
        encode_last_chunk(&mut out);
        let mut expected = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\nff\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 255]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn header_injection_is_refused() {
        let mut res = Response::new(200);
        assert_eq!(
            res.try_header("X-Evil", "a\r\nSet-Cookie: x").err(),
            Some(InvalidHeader::Malformed)
        );
        assert_eq!(
            res.try_header("Bad Name", "v").err(),
            Some(InvalidHeader::Malformed)
        );
        assert_eq!(
            res.try_header("", "v").err(),
            Some(InvalidHeader::Malformed)
        );
        assert!(res.try_header("X-Ok", "tab\there").is_ok());
        assert_eq!(res.header_bytes(), b"X-Ok: tab\there\r\n");
    }

    #[test]
    fn rfc9112_6_framing_fields_belong_to_the_writer() {
        let mut res = Response::new(200);
        for name in [
            "Content-Length",
            "content-length",
            "Transfer-Encoding",
            "TRANSFER-ENCODING",
        ] {
            assert_eq!(
                res.try_header(name, "999").err(),
                Some(InvalidHeader::Framing),
                "{name}"
            );
        }
        res.header("Content-Length", "999");
        res.header("Transfer-Encoding", "chunked");
        res.body_mut().extend_from_slice(b"hello");
        let mut out = Vec::new();
        res.encode(&mut out, &enc(Version::Http11));
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        out.clear();
        res.encode_stream_head(&mut out, &enc(Version::Http11), true);
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("Transfer-Encoding").count(), 1, "{text}");
        assert!(!text.contains("Content-Length"), "{text}");
    }

    #[test]
    fn status_codes_are_three_digits() {
        let mut out = Vec::new();
        push_status_line(&mut out, 1000);
        assert_eq!(out, b"HTTP/1.1 500 Internal Server Error\r\n");
        out.clear();
        push_status_line(&mut out, 599);
        assert_eq!(out, b"HTTP/1.1 599 \r\n");
    }

    #[test]
    fn decimal_and_hex() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
            out.clear();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}").into_bytes());
        }
    }
}
