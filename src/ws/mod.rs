//! WebSocket (RFC 6455), server side, sans-I/O: bytes in, events and bytes out.
//!
//! # The protocol in one page
//!
//! A WebSocket is a TCP connection that starts as HTTP and then carries *messages*
//! both ways, whenever either side likes: the server can push without being asked,
//! which plain request/response cannot do.
//!
//! 1. **Opening handshake** (§4, [`handshake`]). The client sends an HTTP GET with
//!    `Upgrade: websocket` and a random `Sec-WebSocket-Key`; the server answers
//!    `101 Switching Protocols` with `Sec-WebSocket-Accept`, a hash of the key. From
//!    then on the bytes on the connection are frames, not HTTP.
//! 2. **Frames** (§5, [`frame`]). Each message travels as one or more frames: a 2 to
//!    14 byte header (FIN bit, opcode, MASK bit, payload length in 7, 16 or 64 bits,
//!    masking key) and the payload. Frames from the client are masked: XORed with a
//!    random 4-byte key ([`mask`]). The header layout is drawn in [`frame`].
//! 3. **Messages** (§5.4, §5.6, [`decoder`]). A message is text (UTF-8, checked by
//!    [`utf8`]) or binary. It may be split into fragments: a first frame with FIN
//!    clear, continuation frames, the last with FIN set. Control frames (ping, pong,
//!    close; [`coding`]) are small, never fragmented, and may arrive between a
//!    message's fragments.
//! 4. **Closing** (§5.5.1, §7, [`connection`]). Either side sends a close frame with a
//!    status code; the other answers with one; then the server closes TCP.
//!
//! A rule broken in the handshake is answered with an HTTP status
//! ([`HandshakeError`]); one broken afterwards fails the connection with a close code
//! ([`WsError`]): 1002 for a protocol error, 1007 for invalid UTF-8, 1009 for a frame
//! or message over the [`Limits`].
//!
//! # What is here
//!
//! | file | concept |
//! |---|---|
//! | [`handshake`] | checks an upgrade request, writes the 101 or the refusal |
//! | [`coding`] | the numbers: [`OpCode`], [`CloseCode`] |
//! | [`frame`] | [`FrameHeader`] parse and write; the server's frame writers |
//! | [`mask`] | XOR masking, word at a time, with the bytewise reference beside it |
//! | [`utf8`] | a UTF-8 validator fed in pieces |
//! | [`decoder`] | [`Decoder`]: bytes in, [`Event`]s out, every receive rule enforced |
//! | [`connection`] | [`Connection`]: the decoder plus pongs and the close handshake |
//! | [`error`] | [`HandshakeError`], [`WsError`] |
//!
//! # How a driver uses it
//!
//! ```
//! use wirepatterns::ws::{CloseState, Connection, Event, frame};
//!
//! let mut conn = Connection::default();
//! let mut out = Vec::new(); // bytes to write to the socket
//! // A masked text frame "Hello" from RFC 6455 §5.7, as read from the socket:
//! let mut read_buf = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let mut start = 0;
//! loop {
//!     let decoded = match conn.receive(&mut read_buf[start..], &mut out) {
//!         Ok(decoded) => decoded,
//!         Err(_) => break, // a close frame naming the error is in `out`
//!     };
//!     start += decoded.consumed;
//!     match decoded.event {
//!         Some(Event::Text(text)) => frame::write_text(&mut out, text), // echo
//!         Some(_) => {}
//!         None => break, // need more bytes: keep read_buf[start..], read again
//!     }
//! }
//! assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! assert_eq!(conn.state(), CloseState::Open);
//! ```
//!
//! Nothing here touches a socket, a clock or a random number generator: the driver
//! in [`crate::server`] does the I/O, and the timeouts (how long to wait for a pong,
//! or for the answer to a close) are its business.

pub mod client;
pub mod coding;
pub mod connection;
pub mod decoder;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use client::{ClientDecoder, ClientError, ClientHandshake};
pub use coding::{CloseCode, OpCode};
pub use connection::{CloseState, Connection};
pub use decoder::{Decoded, Decoder, Event, Limits, MessageKind};
pub use error::{HandshakeError, WsError};
pub use frame::{
    CloseFrame, FrameHeader, binary_frame, text_frame, write_binary, write_close, write_ping,
    write_pong, write_text,
};
pub use handshake::{Accepted, HandshakeConfig, accept, is_upgrade_request, write_rejection};
