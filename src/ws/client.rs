//! The client side of a WebSocket (RFC 6455 §4.1, §5.1, §5.3), sans-I/O: the
//! opening handshake request, the check of the server's answer, masked frames out
//! and unmasked frames in.
//!
//! # The client's half of the protocol
//!
//! 1. **The request** (§4.1). The client picks 16 random bytes, the *nonce*, and
//!    sends their base64 encoding as `Sec-WebSocket-Key`:
//!
//!    ```text
//!    GET /chat HTTP/1.1
//!    Host: server.example.com
//!    Upgrade: websocket
//!    Connection: Upgrade
//!    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
//!    Sec-WebSocket-Version: 13
//!    ```
//!
//! 2. **The answer** (§4.1, "the client MUST validate the server's response"): the
//!    status is 101; `Upgrade` is `websocket` and `Connection` holds `Upgrade`, both
//!    in any case; `Sec-WebSocket-Accept` is `base64(SHA-1(key + GUID))`, the value
//!    [`super::handshake::accept_key`] computes (the server proves it read *this*
//!    key, so a cached or unrelated HTTP answer is never taken for a WebSocket); and
//!    the server selected no extension and no subprotocol, since the client asked for
//!    none. Anything else fails the connection before it opens: close the TCP
//!    connection, there is no close frame to send yet. A server may send its first
//!    frames right behind the 101, in the same read: [`ClientHandshake::read_response`]
//!    says where the head ended, and the bytes after it are frames.
//! 3. **Frames out** (§5.1, §5.3): "a client MUST mask all frames that it sends to
//!    the server", each with a fresh key from a strong source of randomness, so that
//!    script in a browser cannot choose the bytes on the wire (§10.3). This core has
//!    no randomness (it is sans-I/O, like the rest of [`super`]), so every writer here
//!    takes the key from the caller: [`write_text`], [`write_binary`], [`write_ping`],
//!    [`write_pong`], [`write_close`].
//! 4. **Frames in** (§5.1): "A client MUST close a connection if it detects a masked
//!    frame." Every other receive rule is the server's: no RSV bits, no reserved
//!    opcodes, control frames short and whole, fragments in order, text as UTF-8,
//!    close bodies well formed. [`ClientDecoder`] enforces them all and yields the
//!    same [`Event`]s as the server's [`super::Decoder`].
//!
//! # Whole frames
//!
//! The server's decoder consumes a frame's payload as it arrives, because it must
//! unmask it piece by piece anyway. A client has nothing to unmask, so
//! [`ClientDecoder`] waits until a frame is all in the buffer and then hands it out
//! as a slice of that buffer, with no copy. Until then it consumes nothing; only the
//! frame header is looked at again on the next call, so the work stays O(n) however
//! the input is split. The cost is that the caller's buffer holds one whole frame,
//! at most [`Limits::max_frame_payload`] plus a 14-byte header: a frame announced
//! larger than that fails with 1009 as soon as its header arrives. Fragments of a
//! message are copied into the decoder's message buffer.
//!
//! # Example: a whole exchange, both sides in one process
//!
//! ```
//! use wirepatterns::http::{RequestParser, Status};
//! use wirepatterns::ws::{ClientDecoder, ClientHandshake, Decoder, Event, client, frame};
//! use wirepatterns::ws::handshake::{HandshakeConfig, accept};
//!
//! // The client writes its request (the nonce would come from a random generator).
//! let handshake = ClientHandshake::new(*b"the sample nonce");
//! let mut request = Vec::new();
//! handshake.write_request("server.example.com", "/chat", &mut request).unwrap();
//!
//! // The server accepts it and sends a first message behind the 101.
//! let mut parser = RequestParser::default();
//! let Ok(Status::Complete(parsed)) = parser.parse(&request) else { panic!() };
//! let mut response = Vec::new();
//! accept(&parsed, &HandshakeConfig::default(), &mut response).unwrap();
//! frame::write_text(&mut response, "welcome");
//!
//! // The client checks the 101; the bytes after it are frames.
//! let mut handshake = handshake;
//! let Ok(Status::Complete(head_len)) = handshake.read_response(&response) else { panic!() };
//! let mut decoder = ClientDecoder::default();
//! let decoded = decoder.decode(&response[head_len..]).unwrap();
//! assert_eq!(decoded.event, Some(Event::Text("welcome")));
//!
//! // The client's answer is masked with a key the caller chose; the server unmasks it.
//! let mut out = Vec::new();
//! client::write_text(&mut out, "hi", [1, 2, 3, 4]);
//! let mut server = Decoder::default();
//! assert_eq!(server.decode(&mut out).unwrap().event, Some(Event::Text("hi")));
//! ```

use base64::prelude::{BASE64_STANDARD, Engine as _};
use thiserror::Error;

use super::coding::{CloseCode, OpCode};
use super::decoder::{Decoded, Event, Limits, MessageKind};
use super::error::WsError;
use super::frame::{CloseFrame, FrameHeader, MAX_CONTROL_PAYLOAD, parse_close_payload};
use super::handshake::{WEBSOCKET_VERSION, accept_key};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;
use crate::http::Status;

/// The longest response head [`ClientHandshake::read_response`] waits for. A 101
/// is about 130 bytes; a refusal with a few headers is well under this.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// A message buffer bigger than this is given back to the allocator once its
/// message has been delivered (as the server's decoder does).
const KEEP_MESSAGE_CAPACITY: usize = 64 * 1024;

/// Why the client fails a connection: the handshake went wrong (before the
/// connection opened: close TCP, nothing else to send), or a received frame broke a
/// rule (fail the connection with [`ClientError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The host for the `Host` header is empty or holds bytes other than visible
    /// ASCII (it would break the request's framing).
    #[error("the host must be non-empty visible ASCII (RFC 9112 section 3.2)")]
    InvalidHost,
    /// The path is not an origin-form request-target: it must start with `/` and
    /// hold only visible ASCII (§3: "resource-name").
    #[error("the path must start with / and be visible ASCII (RFC 6455 section 3)")]
    InvalidPath,
    /// The response head did not end within [`MAX_RESPONSE_HEAD`] bytes.
    #[error("the handshake response head is too long")]
    ResponseTooLarge,
    /// The status line is not `HTTP/1.1 NNN reason`.
    #[error("malformed status line in the handshake response (RFC 9112 section 4)")]
    MalformedStatusLine,
    /// A header line is not `name: value`.
    #[error("malformed header line in the handshake response (RFC 9112 section 5)")]
    MalformedHeader,
    /// The server answered with another status than 101 (§4.1: "If the status code
    /// received from the server is not 101, the client handles the response per
    /// HTTP"; for this client that means giving up).
    #[error("the server answered {0}, not 101 Switching Protocols (RFC 6455 section 4.1)")]
    NotSwitchingProtocols(u16),
    /// The response's `Upgrade` header does not name `websocket` (§4.1).
    #[error("the response's Upgrade header is not websocket (RFC 6455 section 4.1)")]
    UpgradeNotWebsocket,
    /// The response's `Connection` header lacks the token `Upgrade` (§4.1).
    #[error("the response's Connection header lacks Upgrade (RFC 6455 section 4.1)")]
    ConnectionLacksUpgrade,
    /// No `Sec-WebSocket-Accept` in the response (§4.1).
    #[error("the response has no Sec-WebSocket-Accept (RFC 6455 section 4.1)")]
    MissingAccept,
    /// A `Sec-WebSocket-Accept` that is not the hash of our key, or more than one
    /// (§4.1, §11.3.3: "MUST NOT appear more than once").
    #[error("Sec-WebSocket-Accept does not match the key (RFC 6455 section 4.1)")]
    WrongAccept,
    /// The server selected an extension the client never offered (§4.1).
    #[error("the server selected an extension that was not offered (RFC 6455 section 4.1)")]
    UnrequestedExtension,
    /// The server selected a subprotocol the client never offered (§4.1).
    #[error("the server selected a subprotocol that was not offered (RFC 6455 section 4.1)")]
    UnrequestedSubprotocol,
    /// A masked frame from the server (§5.1: "A client MUST close a connection if it
    /// detects a masked frame").
    #[error("server frames must not be masked (RFC 6455 section 5.1)")]
    MaskedFrame,
    /// A received frame broke one of the rules both roles share.
    #[error(transparent)]
    Frame(#[from] WsError),
}

impl ClientError {
    /// The close code to fail an open connection with, or `None` for a handshake
    /// fault: the connection never opened, so the client just closes TCP (§4.1:
    /// "_Fail the WebSocket Connection_").
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            ClientError::MaskedFrame => Some(CloseCode::PROTOCOL_ERROR),
            ClientError::Frame(error) => Some(error.close_code()),
            _ => None,
        }
    }
}

/// The client's opening handshake: the key it sent and the answer it expects.
///
/// ```
/// use wirepatterns::ws::ClientHandshake;
///
/// // RFC 6455 §1.3 / §4.1: the nonce "the sample nonce" gives the key
/// // dGhlIHNhbXBsZSBub25jZQ==, which the server must answer with s3pPLMBi....
/// let handshake = ClientHandshake::new(*b"the sample nonce");
/// assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(handshake.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    /// `Sec-WebSocket-Key`: the nonce in base64, 24 characters.
    key: String,
    /// The `Sec-WebSocket-Accept` a genuine server answers with.
    accept: String,
    /// How far the search for the end of the response head has got, so that a head
    /// arriving in many small reads is searched once, not from the start each time.
    searched_to: usize,
}

impl ClientHandshake {
    /// A handshake whose key encodes `nonce`. §4.1: the nonce "MUST be selected
    /// randomly for each connection"; the caller supplies it because this core has
    /// no source of randomness.
    pub fn new(nonce: [u8; 16]) -> ClientHandshake {
        let key = BASE64_STANDARD.encode(nonce);
        let accept = accept_key(key.as_bytes());
        ClientHandshake {
            key,
            accept,
            searched_to: 0,
        }
    }

    /// The `Sec-WebSocket-Key` value sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` value the server must send back.
    pub fn expected_accept(&self) -> &str {
        &self.accept
    }

    /// Append the upgrade request for `path` (such as `/chat`) on `host` (the
    /// `Host` header's value: `127.0.0.1:8080`) to `out` (§4.1, items 1-9; the
    /// optional `Origin`, `Sec-WebSocket-Protocol` and `-Extensions` are not sent).
    /// Nothing is written if `host` or `path` could not be sent as they are.
    ///
    /// ```
    /// use wirepatterns::ws::ClientHandshake;
    ///
    /// let mut out = Vec::new();
    /// ClientHandshake::new(*b"the sample nonce").write_request("example.com", "/chat", &mut out).unwrap();
    /// assert_eq!(
    ///     out,
    ///     b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
    ///       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///       Sec-WebSocket-Version: 13\r\n\r\n"
    /// );
    /// ```
    pub fn write_request(
        &self,
        host: &str,
        path: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let visible = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if host.is_empty() || !visible(host) {
            return Err(ClientError::InvalidHost);
        }
        if !path.starts_with('/') || !visible(path) {
            return Err(ClientError::InvalidPath);
        }
        for piece in [
            "GET ",
            path,
            " HTTP/1.1\r\nHost: ",
            host,
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
            &self.key,
            "\r\nSec-WebSocket-Version: ",
            WEBSOCKET_VERSION,
            "\r\n\r\n",
        ] {
            out.extend_from_slice(piece.as_bytes());
        }
        Ok(())
    }

    /// Check the server's response, given the bytes received so far (from the
    /// start of the response). `Partial` until the head's blank line has arrived;
    /// then `Complete(head_len)` if the server accepted, and the bytes after
    /// `head_len` are already WebSocket frames. Every rule of §4.1 that is broken is
    /// an error (see the module docs): close the connection.
    pub fn read_response(&mut self, buf: &[u8]) -> Result<Status<usize>, ClientError> {
        // Resume the search where the last call stopped, less 3 bytes in case the
        // blank line's CR LF CR LF straddles the boundary.
        let from = self.searched_to.saturating_sub(3);
        let window = buf.get(..buf.len().min(MAX_RESPONSE_HEAD)).unwrap_or(buf);
        let found = window
            .get(from..)
            .and_then(|rest| rest.windows(4).position(|w| w == b"\r\n\r\n"));
        let Some(at) = found else {
            if buf.len() >= MAX_RESPONSE_HEAD {
                return Err(ClientError::ResponseTooLarge);
            }
            self.searched_to = buf.len();
            return Ok(Status::Partial);
        };
        let head_len = from + at + 4;
        let head = buf.get(..from + at).unwrap_or_default();
        self.check_head(head)?;
        Ok(Status::Complete(head_len))
    }

    /// Check a response head without its final blank line.
    fn check_head(&self, head: &[u8]) -> Result<(), ClientError> {
        let mut lines = head
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
        // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
        // A 101 exists only in HTTP/1.1 (RFC 9110 §15.2: never sent to a 1.0 client).
        let status_line = lines.next().unwrap_or_default();
        let code = match status_line.strip_prefix(b"HTTP/1.1 ") {
            Some([a, b, c, rest @ ..])
                if [a, b, c].iter().all(|d| d.is_ascii_digit())
                    && (rest.is_empty() || rest.first() == Some(&b' ')) =>
            {
                [a, b, c]
                    .iter()
                    .fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'))
            }
            _ => return Err(ClientError::MalformedStatusLine),
        };

        let mut upgrade = false;
        let mut connection = false;
        let mut accepts = 0;
        let mut accept_ok = false;
        let mut extension = false;
        let mut protocol = false;
        for line in lines {
            // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS; no
            // whitespace before the colon, no folded continuation lines.
            let colon = line.iter().position(|&b| b == b':');
            let (name, value) = match colon {
                Some(i) if i > 0 => (
                    &line[..i],
                    line.get(i + 1..).unwrap_or_default().trim_ascii(),
                ),
                _ => return Err(ClientError::MalformedHeader),
            };
            if !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(ClientError::MalformedHeader);
            }
            let is = |expected: &str| name.eq_ignore_ascii_case(expected.as_bytes());
            if is("upgrade") {
                upgrade |= has_token(value, "websocket");
            } else if is("connection") {
                connection |= has_token(value, "upgrade");
            } else if is("sec-websocket-accept") {
                accepts += 1;
                accept_ok = value == self.accept.as_bytes();
            } else if is("sec-websocket-extensions") {
                extension |= !value.is_empty();
            } else if is("sec-websocket-protocol") {
                protocol |= !value.is_empty();
            }
        }

        // §4.1, the client's checks of the server's handshake, in the RFC's order.
        if code != 101 {
            return Err(ClientError::NotSwitchingProtocols(code));
        }
        if !upgrade {
            return Err(ClientError::UpgradeNotWebsocket);
        }
        if !connection {
            return Err(ClientError::ConnectionLacksUpgrade);
        }
        match accepts {
            0 => return Err(ClientError::MissingAccept),
            1 if accept_ok => {}
            _ => return Err(ClientError::WrongAccept),
        }
        if extension {
            return Err(ClientError::UnrequestedExtension);
        }
        if protocol {
            return Err(ClientError::UnrequestedSubprotocol);
        }
        Ok(())
    }
}

/// Whether a comma-separated list (RFC 9110 §5.6.1) holds `token`, in any case.
fn has_token(list: &[u8], token: &str) -> bool {
    list.split(|&b| b == b',')
        .any(|element| element.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Append one masked frame with FIN set (a whole message, or a control frame) to
/// `out`: the header with the MASK bit and `key`, then the payload XORed with the
/// key (§5.3). `key` must be fresh for every frame and unpredictable to anyone who
/// chooses the payload (§10.3); the caller draws it from its random generator.
///
/// ```
/// use wirepatterns::ws::{OpCode, client};
///
/// // RFC 6455 §5.7: "A single-frame masked text message".
/// let mut out = Vec::new();
/// client::write_frame(&mut out, OpCode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8], key: [u8; 4]) {
    let header = FrameHeader {
        mask: Some(key),
        ..FrameHeader::server(true, opcode, payload.len() as u64)
    };
    out.reserve(header.encoded_len() + payload.len());
    header.write(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(masked) = out.get_mut(start..) {
        apply_mask(masked, key, 0);
    }
}

/// Append a text message as one masked frame.
pub fn write_text(out: &mut Vec<u8>, text: &str, key: [u8; 4]) {
    write_frame(out, OpCode::Text, text.as_bytes(), key);
}

/// Append a binary message as one masked frame.
pub fn write_binary(out: &mut Vec<u8>, data: &[u8], key: [u8; 4]) {
    write_frame(out, OpCode::Binary, data, key);
}

/// Append a masked ping; a payload over 125 bytes is cut to its first 125 (§5.5).
pub fn write_ping(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    write_frame(out, OpCode::Ping, control_payload(payload), key);
}

/// Append a masked pong, the answer to a ping with "exactly the same Application
/// data" (§5.5.3); cut to 125 bytes like [`write_ping`].
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    write_frame(out, OpCode::Pong, control_payload(payload), key);
}

/// Append a masked close frame: empty for `None`, else the code and the reason,
/// cut at a character boundary to the 123 bytes that fit (§5.5.1).
pub fn write_close(out: &mut Vec<u8>, close: Option<CloseFrame<'_>>, key: [u8; 4]) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = match close {
        None => 0,
        Some(CloseFrame { code, reason }) => {
            let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let reason = reason.as_bytes().get(..end).unwrap_or_default();
            payload[..2].copy_from_slice(&code.0.to_be_bytes());
            payload[2..2 + end].copy_from_slice(reason);
            2 + end
        }
    };
    write_frame(
        out,
        OpCode::Close,
        payload.get(..len).unwrap_or_default(),
        key,
    );
}

fn control_payload(payload: &[u8]) -> &[u8] {
    payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload)
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Frames are being decoded.
    Open,
    /// A close frame was received; later input is consumed and ignored.
    Closed,
    /// The connection failed with this error; every later call returns it.
    Failed(ClientError),
}

/// How a decode call ended, worked out before the event borrows its payload.
enum Outcome {
    /// No whole frame left (or only frames that complete nothing).
    NeedMore,
    /// A message in one frame, or a control frame: `input[start..end]`.
    InPlace {
        opcode: OpCode,
        start: usize,
        end: usize,
    },
    /// The last fragment of a message assembled in `message_buf`.
    Buffered(MessageKind),
}

/// A sans-I/O decoder for the frames a server sends: unmasked, checked against
/// every receive rule of §5 (see the module docs), handed out whole.
///
/// ```
/// use wirepatterns::ws::{ClientDecoder, Event};
///
/// // RFC 6455 §5.7: "Hel" and "lo" as two unmasked fragments, a ping between them.
/// let mut input = vec![0x01, 0x03, b'H', b'e', b'l'];
/// input.extend([0x89, 0x00]);
/// input.extend([0x80, 0x02, b'l', b'o']);
///
/// let mut decoder = ClientDecoder::default();
/// let first = decoder.decode(&input).unwrap();
/// assert_eq!(first.event, Some(Event::Ping(&[])));
/// let used = first.consumed;
/// let second = decoder.decode(&input[used..]).unwrap();
/// assert_eq!(second.event, Some(Event::Text("Hello")));
/// assert_eq!(used + second.consumed, input.len());
/// ```
#[derive(Debug, Clone)]
pub struct ClientDecoder {
    /// The size bounds to enforce.
    limits: Limits,
    /// Open, closed by the server, or failed.
    state: State,
    /// The type of the fragmented message in progress, if any (§5.4).
    message: Option<MessageKind>,
    /// The fragments of that message so far.
    message_buf: Vec<u8>,
    /// `message_buf` holds a message already handed out: clear it on the next call.
    message_delivered: bool,
    /// UTF-8 state of the fragmented text message in progress.
    utf8: Utf8Validator,
}

impl Default for ClientDecoder {
    fn default() -> Self {
        ClientDecoder::new(Limits::default())
    }
}

impl ClientDecoder {
    /// A decoder that enforces `limits`.
    pub fn new(limits: Limits) -> ClientDecoder {
        ClientDecoder {
            limits,
            state: State::Open,
            message: None,
            message_buf: Vec::new(),
            message_delivered: false,
            utf8: Utf8Validator::default(),
        }
    }

    /// Whether the server's close frame has been decoded.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Decode from `input`, the bytes received and not yet consumed. Returns how
    /// many bytes were consumed and the event they completed, if any: drop the
    /// consumed bytes and call again, after reading more if there was no event. A
    /// frame not yet whole is left unconsumed.
    pub fn decode<'a>(&'a mut self, input: &'a [u8]) -> Result<Decoded<'a>, ClientError> {
        if self.message_delivered {
            self.message_delivered = false;
            self.message_buf.clear();
            if self.message_buf.capacity() > KEEP_MESSAGE_CAPACITY {
                self.message_buf = Vec::new();
            }
        }
        let mut pos = 0;
        let outcome = loop {
            match self.state {
                State::Failed(error) => return Err(error),
                State::Closed => {
                    return Ok(Decoded {
                        consumed: input.len(),
                        event: None,
                    });
                }
                State::Open => {}
            }
            let rest = input.get(pos..).unwrap_or_default();
            let (header, header_len) = match FrameHeader::parse(rest) {
                Ok(Status::Complete(parsed)) => parsed,
                Ok(Status::Partial) => break Outcome::NeedMore,
                Err(error) => return Err(self.fail(error.into())),
            };
            let kind = self.check_header(&header).map_err(|e| self.fail(e))?;
            // The limits checked above bound the length, so it fits a usize.
            let len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
            let start = pos + header_len;
            let Some(payload) = start.checked_add(len).and_then(|end| input.get(start..end)) else {
                break Outcome::NeedMore;
            };
            pos = start + len;
            let Some(kind) = kind else {
                break Outcome::InPlace {
                    opcode: header.opcode,
                    start,
                    end: pos,
                };
            };
            if header.fin && self.message.is_none() {
                // A whole message in one frame: no copy.
                break Outcome::InPlace {
                    opcode: header.opcode,
                    start,
                    end: pos,
                };
            }
            // A fragment (§5.4). §8.1: text is checked fragment by fragment, so a
            // bad byte fails the connection without waiting for the last one.
            if kind == MessageKind::Text && self.utf8.feed(payload).is_err() {
                return Err(self.fail(WsError::InvalidUtf8.into()));
            }
            self.message_buf.extend_from_slice(payload);
            if header.fin {
                break Outcome::Buffered(kind);
            }
            self.message = Some(kind);
        };

        let consumed = pos;
        let event = match outcome {
            Outcome::NeedMore => None,
            Outcome::InPlace { opcode, start, end } => {
                let payload = input.get(start..end).unwrap_or_default();
                Some(match opcode {
                    OpCode::Ping => Event::Ping(payload),
                    OpCode::Pong => Event::Pong(payload),
                    OpCode::Close => match parse_close_payload(payload) {
                        Ok(close) => {
                            self.state = State::Closed;
                            Event::Close(close)
                        }
                        Err(error) => return Err(self.fail(error.into())),
                    },
                    OpCode::Binary => Event::Binary(payload),
                    _ => match std::str::from_utf8(payload) {
                        Ok(text) => Event::Text(text),
                        Err(_) => return Err(self.fail(WsError::InvalidUtf8.into())),
                    },
                })
            }
            Outcome::Buffered(kind) => {
                self.message = None;
                self.message_delivered = true;
                let complete = self.utf8.finish();
                self.utf8.reset();
                if kind == MessageKind::Text && complete.is_err() {
                    return Err(self.fail(WsError::InvalidUtf8.into()));
                }
                Some(match kind {
                    MessageKind::Binary => Event::Binary(&self.message_buf),
                    // Every fragment passed the validator and the last ended on a
                    // character boundary, so this cannot fail.
                    MessageKind::Text => match std::str::from_utf8(&self.message_buf) {
                        Ok(text) => Event::Text(text),
                        Err(_) => {
                            self.state = State::Failed(WsError::InvalidUtf8.into());
                            return Err(WsError::InvalidUtf8.into());
                        }
                    },
                })
            }
        };
        Ok(Decoded { consumed, event })
    }

    /// Apply the header rules. Returns the message kind for a data frame, `None`
    /// for a control frame. Changes nothing: the frame may not be whole yet.
    fn check_header(&self, header: &FrameHeader) -> Result<Option<MessageKind>, ClientError> {
        // §5.2: RSV bits without a negotiated extension, and unknown opcodes, fail
        // the connection.
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::ReservedBitsSet.into());
        }
        if let OpCode::Reserved(_) = header.opcode {
            return Err(WsError::ReservedOpcode.into());
        }
        // §5.1: "A client MUST close a connection if it detects a masked frame."
        if header.mask.is_some() {
            return Err(ClientError::MaskedFrame);
        }
        let len = header.payload_len;
        if header.opcode.is_control() {
            // §5.5: control frames carry at most 125 bytes and are not fragmented.
            if !header.fin {
                return Err(WsError::FragmentedControlFrame.into());
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::ControlFrameTooLong.into());
            }
            // §5.5.1: a close body starts with a 2-byte code.
            if header.opcode == OpCode::Close && len == 1 {
                return Err(WsError::CloseFrameOneByte.into());
            }
            return Ok(None);
        }
        // §10.4: limits on frame and message size (1009).
        if len > self.limits.max_frame_payload {
            return Err(WsError::FrameTooLarge.into());
        }
        let so_far = self.message_buf.len() as u64;
        if so_far.saturating_add(len) > self.limits.max_message_size as u64 {
            return Err(WsError::MessageTooLarge.into());
        }
        // §5.4: a continuation needs a message in progress; a new message needs none.
        match (header.opcode, self.message) {
            (OpCode::Continuation, Some(kind)) => Ok(Some(kind)),
            (OpCode::Continuation, None) => Err(WsError::UnexpectedContinuation.into()),
            (_, Some(_)) => Err(WsError::ExpectedContinuation.into()),
            (OpCode::Text, None) => Ok(Some(MessageKind::Text)),
            (_, None) => Ok(Some(MessageKind::Binary)),
        }
    }

    /// Remember that the connection failed, and return the error.
    fn fail(&mut self, error: ClientError) -> ClientError {
        self.state = State::Failed(error);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestParser;
    use crate::ws::decoder::Decoder;
    use crate::ws::frame::{write_frame as write_server_frame, write_text as write_server_text};
    use crate::ws::handshake::{HandshakeConfig, accept};

    const NONCE: [u8; 16] = *b"the sample nonce";
    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A 101 as RFC 6455 §1.3 shows it, for the sample nonce.
    const GOOD_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn check(response: &[u8]) -> Result<Status<usize>, ClientError> {
        ClientHandshake::new(NONCE).read_response(response)
    }

    /// GOOD_101 with one header line replaced (or removed, for an empty `with`).
    fn replace(line: &str, with: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(GOOD_101).into_owned();
        assert!(text.contains(line), "{line}");
        text.replace(line, with).into_bytes()
    }

    use crate::ws::decoder::tests::Owned;

    /// Plays the driver: feeds `stream` in pieces cut at `cuts`, keeping unconsumed
    /// bytes, and collects the events.
    fn decode_with(
        limits: Limits,
        stream: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<Owned>, ClientError> {
        let mut decoder = ClientDecoder::new(limits);
        let mut pending = Vec::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            pending.extend_from_slice(&stream[start..cut]);
            start = cut;
            loop {
                let decoded = decoder.decode(&pending)?;
                let consumed = decoded.consumed;
                let event = decoded.event.map(Owned::from);
                pending.drain(..consumed);
                match event {
                    Some(event) => events.push(event),
                    None => break,
                }
            }
        }
        Ok(events)
    }

    fn decode(stream: &[u8]) -> Result<Vec<Owned>, ClientError> {
        decode_with(Limits::default(), stream, &[])
    }

    fn server_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader::server(fin, opcode, payload.len() as u64).write(&mut out);
        out.extend_from_slice(payload);
        out
    }

    // ---- §4.1 the opening handshake, client side ----

    #[test]
    fn rfc6455_4_1_key_is_the_base64_nonce_and_accept_its_hash() {
        // §1.3 and §4.1's own example.
        let handshake = ClientHandshake::new(NONCE);
        assert_eq!(handshake.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(handshake.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn rfc6455_4_1_request_has_every_required_field() {
        let mut out = Vec::new();
        ClientHandshake::new(NONCE)
            .write_request("127.0.0.1:8080", "/", &mut out)
            .unwrap();
        assert_eq!(
            out,
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn rfc6455_4_1_request_refuses_host_or_path_that_would_break_framing() {
        let h = ClientHandshake::new(NONCE);
        let mut out = Vec::new();
        assert_eq!(
            h.write_request("", "/", &mut out),
            Err(ClientError::InvalidHost)
        );
        assert_eq!(
            h.write_request("a\r\nX: y", "/", &mut out),
            Err(ClientError::InvalidHost)
        );
        assert_eq!(
            h.write_request("a", "chat", &mut out),
            Err(ClientError::InvalidPath)
        );
        assert_eq!(
            h.write_request("a", "/a b", &mut out),
            Err(ClientError::InvalidPath)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn rfc6455_4_1_our_request_is_accepted_by_our_server_and_its_answer_by_us() {
        let mut handshake = ClientHandshake::new([7; 16]);
        let mut request = Vec::new();
        handshake
            .write_request("localhost:9001", "/chat?room=1", &mut request)
            .unwrap();
        let mut parser = RequestParser::default();
        let Ok(Status::Complete(parsed)) = parser.parse(&request) else {
            panic!("request did not parse");
        };
        assert_eq!(parsed.head_len(), request.len());
        let mut response = Vec::new();
        let accepted = accept(&parsed, &HandshakeConfig::default(), &mut response).unwrap();
        assert_eq!(accepted.target, "/chat?room=1");
        let head_len = response.len();
        write_server_text(&mut response, "first");
        assert_eq!(
            handshake.read_response(&response),
            Ok(Status::Complete(head_len))
        );
    }

    #[test]
    fn rfc6455_4_1_response_is_partial_until_the_blank_line_at_every_cut() {
        let mut stream = GOOD_101.to_vec();
        stream.extend_from_slice(&server_frame(true, OpCode::Text, b"hi"));
        // Fed one more byte each time into a growing buffer, as reads arrive.
        let mut handshake = ClientHandshake::new(NONCE);
        for cut in 0..GOOD_101.len() {
            assert_eq!(
                handshake.read_response(&stream[..cut]),
                Ok(Status::Partial),
                "{cut}"
            );
        }
        assert_eq!(
            handshake.read_response(&stream),
            Ok(Status::Complete(GOOD_101.len()))
        );
    }

    #[test]
    fn rfc6455_4_1_status_other_than_101_fails() {
        let refusal = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(check(refusal), Err(ClientError::NotSwitchingProtocols(400)));
        let upgrade_required =
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(
            check(upgrade_required),
            Err(ClientError::NotSwitchingProtocols(426))
        );
        assert_eq!(
            check(b"HTTP/1.1 200 OK\r\n\r\n"),
            Err(ClientError::NotSwitchingProtocols(200))
        );
    }

    #[test]
    fn rfc6455_4_1_upgrade_must_be_websocket_in_any_case() {
        assert!(check(&replace("Upgrade: websocket", "Upgrade: WebSocket")).is_ok());
        assert_eq!(
            check(&replace("Upgrade: websocket\r\n", "")),
            Err(ClientError::UpgradeNotWebsocket)
        );
        assert_eq!(
            check(&replace("Upgrade: websocket", "Upgrade: h2c")),
            Err(ClientError::UpgradeNotWebsocket)
        );
    }

    #[test]
    fn rfc6455_4_1_connection_must_hold_upgrade_in_any_case() {
        assert!(
            check(&replace(
                "Connection: Upgrade",
                "connection: keep-alive, upgrade"
            ))
            .is_ok()
        );
        assert_eq!(
            check(&replace("Connection: Upgrade\r\n", "")),
            Err(ClientError::ConnectionLacksUpgrade)
        );
        assert_eq!(
            check(&replace("Connection: Upgrade", "Connection: keep-alive")),
            Err(ClientError::ConnectionLacksUpgrade)
        );
    }

    #[test]
    fn rfc6455_4_1_accept_must_be_the_hash_of_our_key() {
        let accept_line = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        assert_eq!(
            check(&replace(accept_line, "")),
            Err(ClientError::MissingAccept)
        );
        assert_eq!(
            check(&replace(
                accept_line,
                "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
            )),
            Err(ClientError::WrongAccept)
        );
        // Another nonce expects another accept value.
        assert_eq!(
            ClientHandshake::new([0; 16]).read_response(GOOD_101),
            Err(ClientError::WrongAccept)
        );
        // §11.3.3: at most once, even if both copies are right.
        let twice = format!("{accept_line}{accept_line}");
        assert_eq!(
            check(&replace(accept_line, &twice)),
            Err(ClientError::WrongAccept)
        );
    }

    #[test]
    fn rfc6455_4_1_extensions_and_subprotocols_not_offered_fail() {
        let accept_line = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        let ext = format!("{accept_line}Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(
            check(&replace(accept_line, &ext)),
            Err(ClientError::UnrequestedExtension)
        );
        let proto = format!("{accept_line}Sec-WebSocket-Protocol: chat\r\n");
        assert_eq!(
            check(&replace(accept_line, &proto)),
            Err(ClientError::UnrequestedSubprotocol)
        );
    }

    #[test]
    fn rfc9112_malformed_response_heads_fail() {
        assert_eq!(
            check(b"HTTP/1.0 101 Switching\r\n\r\n"),
            Err(ClientError::MalformedStatusLine)
        );
        assert_eq!(
            check(b"HTTP/1.1 1O1 x\r\n\r\n"),
            Err(ClientError::MalformedStatusLine)
        );
        assert_eq!(
            check(b"HTTP/1.1 1011\r\n\r\n"),
            Err(ClientError::MalformedStatusLine)
        );
        assert_eq!(check(b"\r\n\r\n"), Err(ClientError::MalformedStatusLine));
        // A reason phrase is optional.
        assert_eq!(
            check(b"HTTP/1.1 404\r\n\r\n"),
            Err(ClientError::NotSwitchingProtocols(404))
        );
        assert_eq!(
            check(&replace("Upgrade: websocket", "Upgrade websocket")),
            Err(ClientError::MalformedHeader)
        );
        assert_eq!(
            check(&replace("Upgrade: websocket", "Upgrade : websocket")),
            Err(ClientError::MalformedHeader)
        );
        assert_eq!(
            check(&replace("Upgrade: websocket", " folded: line")),
            Err(ClientError::MalformedHeader)
        );
    }

    #[test]
    fn a_response_head_without_end_is_refused_at_the_limit() {
        let mut endless = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        endless.resize(MAX_RESPONSE_HEAD - 1, b'a');
        assert_eq!(check(&endless), Ok(Status::Partial));
        endless.push(b'a');
        assert_eq!(check(&endless), Err(ClientError::ResponseTooLarge));
    }

    #[test]
    fn handshake_faults_have_no_close_code_and_frame_faults_do() {
        assert_eq!(ClientError::WrongAccept.close_code(), None);
        assert_eq!(
            ClientError::MaskedFrame.close_code(),
            Some(CloseCode::PROTOCOL_ERROR)
        );
        assert_eq!(
            ClientError::from(WsError::InvalidUtf8).close_code(),
            Some(CloseCode::INVALID_PAYLOAD)
        );
        assert!(ClientError::MaskedFrame.to_string().len() <= 123);
    }

    // ---- §5.3 frames out: masked ----

    #[test]
    fn rfc6455_5_7_masked_hello_is_written_exactly() {
        let mut out = Vec::new();
        write_text(&mut out, "Hello", KEY);
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn rfc6455_5_3_every_client_frame_is_masked_and_our_server_reads_it() {
        let big = vec![0x5a; 70_000];
        let mut out = Vec::new();
        write_text(&mut out, "Hello", [1, 2, 3, 4]);
        write_binary(&mut out, &big, [5, 6, 7, 8]);
        write_ping(&mut out, &[9; 200], [9, 9, 9, 9]); // cut to 125
        write_pong(&mut out, b"p", [0, 0, 0, 1]);
        let long_reason = "é".repeat(100);
        write_close(
            &mut out,
            Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: &long_reason,
            }),
            [4, 3, 2, 1],
        );
        let mut decoder = Decoder::default();
        let mut events = Vec::new();
        let mut start = 0;
        while start < out.len() {
            let decoded = decoder.decode(&mut out[start..]).unwrap();
            start += decoded.consumed;
            events.push(Owned::from(decoded.event.unwrap()));
        }
        assert_eq!(
            events,
            [
                Owned::Text("Hello".into()),
                Owned::Binary(big),
                Owned::Ping(vec![9; 125]),
                Owned::Pong(b"p".to_vec()),
                // 123 bytes fit: 61 two-byte characters.
                Owned::Close(Some((1000, "é".repeat(61)))),
            ]
        );
        let mut empty_close = Vec::new();
        write_close(&mut empty_close, None, KEY);
        assert_eq!(empty_close, [0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d]);
    }

    // ---- §5 frames in: unmasked ----

    #[test]
    fn rfc6455_5_7_unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(decode(&bytes), Ok(vec![Owned::Text("Hello".into())]));
    }

    #[test]
    fn rfc6455_5_1_client_fails_on_a_masked_frame() {
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode(&masked), Err(ClientError::MaskedFrame));
        // Decided from the header: before the payload arrives.
        assert_eq!(decode(&masked[..6]), Err(ClientError::MaskedFrame));
    }

    #[test]
    fn rfc6455_5_7_fragmented_hello_with_a_ping_between() {
        let mut stream = vec![0x01, 0x03, b'H', b'e', b'l'];
        stream.extend([0x89, 0x05, b'H', b'e', b'l', b'l', b'o']);
        stream.extend([0x80, 0x02, b'l', b'o']);
        assert_eq!(
            decode(&stream),
            Ok(vec![
                Owned::Ping(b"Hello".to_vec()),
                Owned::Text("Hello".into())
            ])
        );
    }

    #[test]
    fn rfc6455_5_2_lengths_7_16_64_and_every_split() {
        let mut stream = Vec::new();
        let sizes = [0usize, 125, 126, 256, 65_535, 65_536, 70_001];
        for &size in &sizes {
            write_server_frame(&mut stream, OpCode::Binary, &vec![size as u8; size]);
        }
        write_server_text(&mut stream, "€ end");
        let expected: Vec<Owned> = sizes
            .iter()
            .map(|&s| Owned::Binary(vec![s as u8; s]))
            .chain([Owned::Text("€ end".into())])
            .collect();
        assert_eq!(decode(&stream), Ok(expected.clone()));
        // Split at a few awkward places, then the last 600 bytes at every byte.
        let cuts = [1, 2, 3, 4, 130, 131, 260, 1000, 70_000];
        assert_eq!(
            decode_with(Limits::default(), &stream, &cuts),
            Ok(expected.clone())
        );
        let tail: Vec<usize> = (stream.len() - 600..stream.len()).collect();
        assert_eq!(decode_with(Limits::default(), &stream, &tail), Ok(expected));
    }

    #[test]
    fn a_fragmented_message_split_at_every_byte() {
        let mut stream = server_frame(false, OpCode::Text, "h€".as_bytes());
        stream.extend(server_frame(true, OpCode::Pong, b"x"));
        stream.extend(server_frame(
            false,
            OpCode::Continuation,
            &"€".as_bytes()[..1],
        ));
        stream.extend(server_frame(
            true,
            OpCode::Continuation,
            &"€!".as_bytes()[1..],
        ));
        stream.extend(server_frame(true, OpCode::Close, &[0x03, 0xE8]));
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(
            decode_with(Limits::default(), &stream, &cuts),
            Ok(vec![
                Owned::Pong(b"x".to_vec()),
                Owned::Text("h€€!".into()),
                Owned::Close(Some((1000, String::new()))),
            ])
        );
    }

    #[test]
    fn rfc6455_5_2_reserved_bits_and_opcodes_fail_with_1002() {
        assert_eq!(
            decode(&[0xC1, 0x00]),
            Err(ClientError::Frame(WsError::ReservedBitsSet))
        );
        assert_eq!(
            decode(&[0x83, 0x00]),
            Err(ClientError::Frame(WsError::ReservedOpcode))
        );
        assert_eq!(
            decode(&[0x8B, 0x00]),
            Err(ClientError::Frame(WsError::ReservedOpcode))
        );
        assert_eq!(
            ClientError::Frame(WsError::ReservedOpcode).close_code(),
            Some(CloseCode::PROTOCOL_ERROR)
        );
    }

    #[test]
    fn rfc6455_5_5_control_frames_are_short_and_whole() {
        assert_eq!(
            decode(&[0x09, 0x00]),
            Err(ClientError::Frame(WsError::FragmentedControlFrame))
        );
        assert_eq!(
            decode(&[0x89, 0x7E, 0x00, 0x7E]),
            Err(ClientError::Frame(WsError::ControlFrameTooLong))
        );
    }

    #[test]
    fn rfc6455_5_5_1_close_bodies_are_checked_and_nothing_after_is_processed() {
        assert_eq!(
            decode(&[0x88, 0x01, 0x03]),
            Err(ClientError::Frame(WsError::CloseFrameOneByte))
        );
        assert_eq!(
            decode(&[0x88, 0x02, 0x03, 0xED]),
            Err(ClientError::Frame(WsError::InvalidCloseCode))
        );
        let mut stream = server_frame(true, OpCode::Close, &[0x03, 0xE9, b'b', b'y', b'e']);
        stream.extend(server_frame(true, OpCode::Text, b"late"));
        assert_eq!(
            decode(&stream),
            Ok(vec![Owned::Close(Some((1001, "bye".into())))])
        );
        assert_eq!(decode(&[0x88, 0x00]), Ok(vec![Owned::Close(None)]));
    }

    #[test]
    fn rfc6455_5_4_continuation_rules() {
        assert_eq!(
            decode(&server_frame(true, OpCode::Continuation, b"x")),
            Err(ClientError::Frame(WsError::UnexpectedContinuation))
        );
        let mut stream = server_frame(false, OpCode::Text, b"a");
        stream.extend(server_frame(true, OpCode::Binary, b"b"));
        assert_eq!(
            decode(&stream),
            Err(ClientError::Frame(WsError::ExpectedContinuation))
        );
    }

    #[test]
    fn rfc6455_8_1_invalid_utf8_fails_with_1007_without_waiting_for_the_end() {
        assert_eq!(
            decode(&server_frame(true, OpCode::Text, b"\xFF")),
            Err(ClientError::Frame(WsError::InvalidUtf8))
        );
        // The first fragment is already bad: no need for the rest.
        assert_eq!(
            decode(&server_frame(false, OpCode::Text, b"ok\xC0\xAF")),
            Err(ClientError::Frame(WsError::InvalidUtf8))
        );
        // A message that ends inside a character.
        let mut stream = server_frame(false, OpCode::Text, b"a");
        stream.extend(server_frame(true, OpCode::Continuation, &[0xE2, 0x82]));
        assert_eq!(
            decode(&stream),
            Err(ClientError::Frame(WsError::InvalidUtf8))
        );
        // Binary is not checked.
        assert_eq!(
            decode(&server_frame(true, OpCode::Binary, b"\xFF")),
            Ok(vec![Owned::Binary(vec![0xFF])])
        );
    }

    #[test]
    fn rfc6455_10_4_limits_fail_with_1009_from_the_header() {
        let limits = Limits {
            max_frame_payload: 100,
            max_message_size: 150,
        };
        // The header of a 101-byte frame is enough to refuse it.
        let big = server_frame(true, OpCode::Binary, &[0; 101]);
        assert_eq!(
            decode_with(limits, &big[..2], &[]),
            Err(ClientError::Frame(WsError::FrameTooLarge))
        );
        let mut stream = server_frame(false, OpCode::Binary, &[0; 100]);
        stream.extend(server_frame(true, OpCode::Continuation, &[0; 51]));
        assert_eq!(
            decode_with(limits, &stream, &[]),
            Err(ClientError::Frame(WsError::MessageTooLarge))
        );
        assert_eq!(
            ClientError::Frame(WsError::MessageTooLarge).close_code(),
            Some(CloseCode::TOO_BIG)
        );
    }

    #[test]
    fn an_error_is_sticky() {
        let mut decoder = ClientDecoder::default();
        assert_eq!(
            decoder.decode(&[0xC1, 0x00]).err(),
            Some(WsError::ReservedBitsSet.into())
        );
        assert_eq!(
            decoder.decode(&[0x81, 0x00]).err(),
            Some(WsError::ReservedBitsSet.into())
        );
    }
}
