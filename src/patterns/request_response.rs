//! Request/response, the pattern everything else is measured against.
//!
//! The client sends a request; the server parses it, processes it, and answers; the
//! client finds the end of the answer and can send the next request on the same
//! connection. This handler makes the first two steps visible:
//!
//! - a request **without a body** (any method, any path) is answered with its own
//!   *anatomy*: the start line taken apart, each header field on its own line, where
//!   the head ended, how a body would have been framed, and whether the connection
//!   stays open. It is what the parser saw, byte counts included.
//! - a request **with a body** (any method, any path) gets the decoded body back,
//!   framed by `Content-Length` whatever framing it came with: a chunked request
//!   comes back as the same bytes without the chunk framing.
//!
//! Answering costs no allocation: the anatomy is written straight into the
//! response buffer the loop reuses.

use std::io::Write as _;

use crate::cost::RequestCost;
use crate::http::response::push_decimal;
use crate::http::{Framing, Request, Response, TargetForm};
use crate::server::{Context, Handler, Incoming, Reply};

/// Called with each finished request's costs (for `--trace`).
pub type CostObserver = Box<dyn FnMut(&RequestCost) + Send>;

/// The request/response handler: anatomy for requests without a body, echo for
/// requests with one.
#[derive(Default)]
pub struct RequestResponse {
    /// Who to tell about each request's costs, if anyone.
    observer: Option<CostObserver>,
    /// Requests answered with their anatomy.
    pub anatomies: u64,
    /// Requests answered with their body echoed.
    pub echoes: u64,
}

impl RequestResponse {
    /// The handler, reporting costs nowhere.
    pub fn new() -> RequestResponse {
        RequestResponse::default()
    }

    /// Calls `observer` with every request's costs once its response is written.
    pub fn with_observer(observer: impl FnMut(&RequestCost) + Send + 'static) -> RequestResponse {
        RequestResponse {
            observer: Some(Box::new(observer)),
            ..RequestResponse::default()
        }
    }
}

impl Handler for RequestResponse {
    fn on_request(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let request = req.request();
        match request.framing() {
            Framing::None | Framing::Length(0) => {
                self.anatomies += 1;
                res.header("Content-Type", "text/plain; charset=utf-8");
                write_anatomy(request, res.body_mut());
            }
            Framing::Length(_) | Framing::Chunked => {
                self.echoes += 1;
                let content_type = request
                    .header("content-type")
                    .unwrap_or(b"application/octet-stream");
                res.header("Content-Type", content_type);
                res.body_mut().extend_from_slice(req.body());
            }
        }
        Reply::Respond
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        if let Some(observer) = self.observer.as_mut() {
            observer(cost);
        }
    }
}

/// Writes the anatomy of `request` into `out`:
///
/// ```text
/// GET /search?q=tcp HTTP/1.1
///   method:         GET
///   request-target: /search?q=tcp (origin-form)
///   path:           /search
///   query:          q=tcp
///   version:        HTTP/1.1
/// header fields: 2
///   Host: example.com
///   Accept: */*
/// head: 62 bytes, ended by the empty line
/// body: none (neither Content-Length nor Transfer-Encoding)
/// connection: keep-alive
/// ```
pub fn write_anatomy(request: &Request<'_>, out: &mut Vec<u8>) {
    out.reserve(256 + request.head_len());
    let version = request.version().as_str().as_bytes();
    out.extend_from_slice(request.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.target_bytes());
    out.push(b' ');
    out.extend_from_slice(version);
    out.extend_from_slice(b"\n  method:         ");
    out.extend_from_slice(request.method().as_bytes());
    out.extend_from_slice(b"\n  request-target: ");
    out.extend_from_slice(request.target_bytes());
    out.extend_from_slice(match request.target_form() {
        TargetForm::Origin => b" (origin-form)".as_slice(),
        TargetForm::Absolute => b" (absolute-form)",
        TargetForm::Authority => b" (authority-form)",
        TargetForm::Asterisk => b" (asterisk-form)",
    });
    out.extend_from_slice(b"\n  path:           ");
    out.extend_from_slice(request.path().as_bytes());
    if let Some(query) = request.query() {
        out.extend_from_slice(b"\n  query:          ");
        out.extend_from_slice(query.as_bytes());
    }
    out.extend_from_slice(b"\n  version:        ");
    out.extend_from_slice(version);
    out.extend_from_slice(b"\nheader fields: ");
    push_decimal(out, request.header_count() as u64);
    out.push(b'\n');
    for header in request.headers() {
        out.extend_from_slice(b"  ");
        out.extend_from_slice(header.name.as_bytes());
        out.extend_from_slice(b": ");
        push_printable(out, header.value);
        out.push(b'\n');
    }
    out.extend_from_slice(b"head: ");
    push_decimal(out, request.head_len() as u64);
    out.extend_from_slice(b" bytes, ended by the empty line\nbody: ");
    match request.framing() {
        Framing::None => {
            out.extend_from_slice(b"none (neither Content-Length nor Transfer-Encoding)")
        }
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n);
            out.extend_from_slice(b" bytes");
        }
        Framing::Chunked => out.extend_from_slice(b"chunked"),
    }
    out.extend_from_slice(if request.keep_alive() {
        b"\nconnection: keep-alive\n".as_slice()
    } else {
        b"\nconnection: close after this response\n"
    });
}

/// Appends a field value as text: printable ASCII as is, anything else (obs-text,
/// tabs) escaped, so the anatomy stays readable and valid UTF-8.
fn push_printable(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        out.extend_from_slice(value);
    } else {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", value.escape_ascii());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{RequestParser, Status};

    fn anatomy(bytes: &[u8]) -> String {
        let mut parser = RequestParser::default();
        let Ok(Status::Complete(req)) = parser.parse(bytes) else {
            panic!("test request does not parse");
        };
        let mut out = Vec::new();
        write_anatomy(&req, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn anatomy_shows_start_line_fields_and_head_end() {
        let text =
            anatomy(b"GET /search?q=tcp HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            text,
            "GET /search?q=tcp HTTP/1.1\n  method:         GET\n  request-target: /search?q=tcp (origin-form)\n  path:           /search\n  query:          q=tcp\n  version:        HTTP/1.1\nheader fields: 2\n  Host: example.com\n  Accept: */*\nhead: 62 bytes, ended by the empty line\nbody: none (neither Content-Length nor Transfer-Encoding)\nconnection: keep-alive\n"
        );
    }

    #[test]
    fn anatomy_escapes_obs_text_and_names_forms() {
        let text = anatomy(b"OPTIONS * HTTP/1.0\r\nX-Latin: caf\xe9\r\n\r\n");
        assert!(text.contains("(asterisk-form)"), "{text}");
        assert!(text.contains("X-Latin: caf\\xe9"), "{text}");
        assert!(
            text.contains("connection: close after this response"),
            "{text}"
        );
    }
}
