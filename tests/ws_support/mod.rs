//! What the WebSocket tests share: servers on free ports through the library API,
//! a tungstenite client (an independent implementation), and a raw client that
//! writes and reads frames byte by byte, so that tests can assert the bytes.
//!
//! Every client socket has a read timeout, so a bug fails a test instead of hanging
//! it; every loop is bounded.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::WebSocket;
use wirepatterns::patterns::chat::ChatPush;
use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::websocket::{WsConfig, WsEcho, WsServer};
use wirepatterns::server::{Config, Running, Server};

/// How long a client waits for any one read before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A handshake request with RFC 6455's own key (§1.3), plus `extra` header lines
/// (each ending in CRLF).
pub fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn server_config() -> Config {
    Config::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The `ws_echo` example's handler on a free port.
pub fn start_echo(config: WsConfig) -> Running<WsServer<WsEcho>> {
    Server::bind(server_config(), WsServer::new(config, WsEcho::new()))
        .and_then(Server::spawn)
        .expect("echo server starts")
}

/// The `chat_push` example's handler on a free port.
pub fn start_chat(config: WsConfig, hub: HubConfig) -> Running<WsServer<ChatPush>> {
    Server::bind(server_config(), WsServer::new(config, ChatPush::new(hub)))
        .and_then(Server::spawn)
        .expect("chat server starts")
}

/// Keepalive off: tests that are not about pings should not see any.
pub fn no_pings() -> WsConfig {
    WsConfig {
        ping_interval: None,
        ..WsConfig::default()
    }
}

fn connect_tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A tungstenite client connected to `ws://addr/`, and its local port (which the
/// chat names it by).
pub fn tungstenite_client(addr: SocketAddr) -> (WebSocket<TcpStream>, u16) {
    let stream = connect_tcp(addr);
    let port = stream.local_addr().expect("local addr").port();
    let (ws, response) =
        tungstenite::client(format!("ws://{addr}/"), stream).expect("handshake accepted");
    assert_eq!(response.status(), 101);
    (ws, port)
}

/// The next text message, skipping pings and pongs.
pub fn read_text(ws: &mut WebSocket<TcpStream>) -> String {
    for _ in 0..100 {
        match ws.read().expect("a message") {
            tungstenite::Message::Text(text) => return text.as_str().to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
    panic!("no text message");
}

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    /// Whether the MASK bit was set (a server must never set it).
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        String::from_utf8(self.payload.clone()).expect("text frame is UTF-8")
    }

    /// A close frame's code, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        match self.payload.as_slice() {
            [a, b, ..] => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        }
    }
}

/// A WebSocket client written by hand: the handshake as text, frames as bytes.
pub struct RawWs {
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    /// The 101 response head.
    pub response: String,
    /// Its local port.
    pub port: u16,
}

/// The bytes of a client frame: FIN, opcode, masked with `key` (or not).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match key {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked text frame, as a client sends it.
pub fn masked_text(text: &str) -> Vec<u8> {
    client_frame(true, 0x1, text.as_bytes(), Some([0x12, 0x34, 0x56, 0x78]))
}

impl RawWs {
    /// Connects and completes the handshake (asserting the 101).
    pub fn connect(addr: SocketAddr) -> RawWs {
        let mut ws = RawWs::open(addr, &handshake_request("/", ""));
        assert!(
            ws.response
                .starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{}",
            ws.response
        );
        ws.response.clear();
        ws
    }

    /// Connects, sends `request`, and reads the response head (whatever it is).
    pub fn open(addr: SocketAddr, request: &str) -> RawWs {
        RawWs::open_on(connect_tcp(addr), request)
    }

    /// Connects with a receive buffer of about `bytes` and completes the
    /// handshake. `SO_RCVBUF` is set before connecting, so the window is small
    /// from the first segment and the kernel does not grow it: a client that
    /// stops reading then stops taking bytes almost at once, instead of
    /// absorbing megabytes into its socket.
    pub fn connect_small_window(addr: SocketAddr, bytes: usize) -> RawWs {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut ws = RawWs::open_on(stream, &handshake_request("/", ""));
        assert!(
            ws.response
                .starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{}",
            ws.response
        );
        ws.response.clear();
        ws
    }

    /// Sends `request` on `stream` and reads the response head.
    fn open_on(stream: TcpStream, request: &str) -> RawWs {
        let port = stream.local_addr().expect("local addr").port();
        let mut ws = RawWs {
            stream,
            buf: Vec::new(),
            response: String::new(),
            port,
        };
        ws.stream.write_all(request.as_bytes()).expect("write");
        let end = ws.fill_until(|buf| find(buf, b"\r\n\r\n").map(|i| i + 4));
        let head: Vec<u8> = ws.buf.drain(..end).collect();
        ws.response = String::from_utf8(head).expect("head is text");
        ws
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(&masked_text(text));
    }

    /// Reads until `complete` says how many buffered bytes make a unit; panics at
    /// end of file or timeout.
    fn fill_until(&mut self, complete: impl Fn(&[u8]) -> Option<usize>) -> usize {
        self.try_fill_until(complete)
            .unwrap_or_else(|| panic!("connection ended early; have {:?}", self.buf))
    }

    /// Like `fill_until`, but `None` at end of file.
    fn try_fill_until(&mut self, complete: impl Fn(&[u8]) -> Option<usize>) -> Option<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(n) = complete(&self.buf) {
                return Some(n);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed: {e}; have {} bytes", self.buf.len()),
            }
        }
    }

    /// The next frame; `None` at end of file (with nothing left over).
    pub fn read_frame(&mut self) -> Option<Frame> {
        let total = self.try_fill_until(parse_frame_len)?;
        let bytes: Vec<u8> = self.buf.drain(..total).collect();
        Some(parse_frame(&bytes))
    }

    /// The next frame that is not a ping or pong.
    pub fn read_data_or_close(&mut self) -> Option<Frame> {
        for _ in 0..1000 {
            let frame = self.read_frame()?;
            if frame.opcode != 0x9 && frame.opcode != 0xA {
                return Some(frame);
            }
        }
        panic!("only pings and pongs");
    }

    /// Whether the server closed: end of file, nothing left unread.
    pub fn at_eof(&mut self) -> bool {
        self.try_fill_until(|buf| (!buf.is_empty()).then_some(0))
            .is_none()
            && self.buf.is_empty()
    }
}

/// The whole length of the frame at the front of `buf`, if all of it is there.
fn parse_frame_len(buf: &[u8]) -> Option<usize> {
    let [_, second, ..] = *buf else { return None };
    let masked = second & 0x80 != 0;
    let (len, header) = match second & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let total = header + if masked { 4 } else { 0 } + len;
    (buf.len() >= total).then_some(total)
}

fn parse_frame(bytes: &[u8]) -> Frame {
    let masked = bytes[1] & 0x80 != 0;
    let header = match bytes[1] & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    } + if masked { 4 } else { 0 };
    Frame {
        fin: bytes[0] & 0x80 != 0,
        opcode: bytes[0] & 0x0F,
        masked,
        payload: bytes[header..].to_vec(),
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A plain HTTP exchange on a fresh connection: sends `request`, reads until the
/// server closes or the body's Content-Length is in. Returns the head and the body.
pub fn http(addr: SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut stream = connect_tcp(addr);
    stream.write_all(request.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let length = head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            if let Some(length) = length
                && buf.len() >= end + 4 + length
            {
                return (head, buf[end + 4..end + 4 + length].to_vec());
            }
        }
        assert!(Instant::now() < deadline, "no complete response");
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
    let end = find(&buf, b"\r\n\r\n").expect("a response head") + 4;
    (
        String::from_utf8_lossy(&buf[..end]).into_owned(),
        buf[end..].to_vec(),
    )
}

/// A header's value in a response head.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
