//! The client's requests as bytes, and reading the server's answers over a
//! blocking socket with the library's response parser.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use wirepatterns::http::response_parser::{ResponseEvent, ResponseReader};
use wirepatterns::patterns::upload::tus::{
    Checksum, FILES_PATH, Metadata, OFFSET_OCTET_STREAM, TUS_VERSION, UPLOADS_PATH, encode_name,
};

/// `PUT /files/NAME` with a `Content-Length` body: the whole file.
pub fn put_head(host: &str, name: &str, length: u64) -> String {
    format!(
        "PUT {FILES_PATH}/{} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\n\r\n",
        encode_name(name)
    )
}

/// `POST /uploads`: a tus upload of `length` bytes (tus §Creation). `Content-Length:
/// 0` says there is no body (RFC 9110 §8.6: a POST SHOULD carry it).
pub fn create_head(host: &str, length: u64, metadata: &Metadata) -> String {
    let mut head = format!(
        "POST {UPLOADS_PATH} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: {TUS_VERSION}\r\n\
         Upload-Length: {length}\r\n"
    );
    if !metadata.is_empty() {
        head.push_str(&format!("Upload-Metadata: {}\r\n", metadata.raw()));
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    head
}

/// `PATCH` of `length` bytes at `offset`, with their checksum if given (tus §Core,
/// §Checksum).
pub fn patch_head(
    host: &str,
    path: &str,
    offset: u64,
    length: u64,
    checksum: Option<&Checksum>,
) -> String {
    let mut head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: {TUS_VERSION}\r\n\
         Upload-Offset: {offset}\r\nContent-Type: {OFFSET_OCTET_STREAM}\r\n\
         Content-Length: {length}\r\n"
    );
    if let Some(c) = checksum {
        head.push_str(&format!("Upload-Checksum: {}\r\n", c.header_value()));
    }
    head.push_str("\r\n");
    head
}

/// `HEAD` of an upload: its offset (tus §Core).
pub fn head_head(host: &str, path: &str) -> String {
    format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: {TUS_VERSION}\r\n\r\n")
}

/// `GET /uploads/ID/digest`: what the server stored.
pub fn digest_head(host: &str, path: &str) -> String {
    format!("GET {path}/digest HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// The path of the upload a 201's `Location` names: a path as it is, or the path
/// of an absolute `http://HOST/...` URL (tus §Creation: it "MAY be absolute or
/// relative").
pub fn location_path(location: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(location).map_err(|_| "Location is not ASCII".to_string())?;
    let path = match text.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => text,
    };
    if !path.starts_with('/') || path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("Location {text:?} is not a path or an http URL"));
    }
    Ok(path.to_string())
}

/// An answer, copied out of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The header fields.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The first field called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The server will close the connection after this answer.
    pub fn closes(&self) -> bool {
        self.header("Connection").is_some_and(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
        })
    }

    /// The body's first line, for an error message.
    pub fn reason(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.lines().next().unwrap_or_default().to_string()
    }
}

/// A connection, with what it has sent and the bytes read but not yet used.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes received and not yet parsed.
    buf: Vec<u8>,
}

/// What was written, over all connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Requests sent (a request cut short counts).
    pub requests: u64,
    /// Every byte written: heads and bodies.
    pub bytes: u64,
    /// Body bytes written.
    pub body: u64,
    /// Connections opened.
    pub connections: u64,
}

impl Conn {
    /// Connects, with `timeout` on the connect and on every read and write.
    pub fn open(addr: SocketAddr, timeout: Duration, sent: &mut Sent) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        sent.connections += 1;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Writes a request head.
    pub fn send_head(&mut self, head: &str, sent: &mut Sent) -> io::Result<()> {
        sent.requests += 1;
        self.stream.write_all(head.as_bytes())?;
        sent.bytes += head.len() as u64;
        Ok(())
    }

    /// Writes body bytes.
    pub fn send_body(&mut self, bytes: &[u8], sent: &mut Sent) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        sent.bytes += bytes.len() as u64;
        sent.body += bytes.len() as u64;
        Ok(())
    }

    /// Reads the answer to a request with `method`, by its framing alone (RFC 9112
    /// §6.3). Bytes after it stay for the next answer.
    pub fn read_answer(&mut self, method: &str) -> Result<Answer, String> {
        let mut reader = ResponseReader::new(method);
        let mut status = 0;
        let mut headers = Vec::new();
        let mut body = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        // Each turn either uses bytes, ends, or reads; a read of 0 ends the input,
        // after which the reader completes or fails: the loop is bounded by the
        // bytes the server sends, and each read by the socket's timeout.
        loop {
            let step = reader
                .read(&self.buf)
                .map_err(|e| format!("the server's answer to {method}: {e}"))?;
            let consumed = step.consumed;
            let done = match step.event {
                Some(ResponseEvent::Head(h)) => {
                    status = h.status();
                    headers = h
                        .headers()
                        .map(|f| (f.name.to_string(), f.value.to_vec()))
                        .collect();
                    false
                }
                Some(ResponseEvent::Interim(_)) => false,
                Some(ResponseEvent::Body(data)) => {
                    body.extend_from_slice(data);
                    false
                }
                Some(ResponseEvent::Complete) => true,
                None => {
                    let n = match self.stream.read(&mut chunk) {
                        Ok(n) => n,
                        Err(e) => return Err(format!("reading the answer to {method}: {e}")),
                    };
                    if n == 0 {
                        reader
                            .eof()
                            .map_err(|e| format!("the server's answer to {method}: {e}"))?;
                    }
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    false
                }
            };
            self.buf.drain(..consumed.min(self.buf.len()));
            if done {
                return Ok(Answer {
                    status,
                    headers,
                    body,
                });
            }
        }
    }
}
