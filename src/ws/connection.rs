//! One server-side WebSocket connection after the handshake: the decoder plus the
//! close handshake (RFC 6455 §5.5.1, §7), still without I/O.
//!
//! # The close handshake
//!
//! Either side may start closing by sending a close frame. The other side answers
//! with a close frame of its own ("typically echoing the status code it received",
//! §5.5.1) and sends nothing more. When an endpoint has both sent and received a
//! close frame, the WebSocket connection is closed, and the TCP connection can go;
//! the server should close TCP first (§7.1.1), so the client does not sit in
//! TIME_WAIT.
//!
//! ```text
//!   Open ──receive close──► (reply written) ──► Closed
//!     │
//!     └──close() sends one──► CloseSent ──receive close──► Closed
//! ```
//!
//! A protocol error *fails* the connection (§7.1.7): a close frame with the error's
//! code is sent (unless one was sent already) and the connection is Closed at once,
//! without waiting for the peer's answer.
//!
//! [`Connection::receive`] does the automatic parts: it writes the pong for a ping
//! (§5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
//! response"), the close reply, and the close frame for an error, into the caller's
//! output buffer. The driver writes that buffer to the socket, and closes the socket
//! once [`Connection::state`] is [`CloseState::Closed`] and the buffer is flushed.
//! How long to wait in `CloseSent` for the peer's answer is the driver's business:
//! it has the clock.

use super::coding::CloseCode;
use super::decoder::{Decoded, Decoder, Event, Limits};
use super::error::WsError;
use super::frame::{CloseFrame, write_close, write_pong};

/// Where a connection is in the close handshake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CloseState {
    /// Messages flow both ways.
    #[default]
    Open,
    /// This side sent a close frame and waits for the peer's; it sends nothing more,
    /// but still decodes what arrives.
    CloseSent,
    /// The close handshake is done, or the connection failed: flush the output
    /// buffer, then close the TCP connection.
    Closed,
}

/// The server side of one WebSocket connection: decodes what the client sends and
/// keeps the close handshake.
///
/// ```
/// use wirepatterns::ws::{CloseState, Connection, Event};
///
/// let mut conn = Connection::default();
/// let mut out = Vec::new();
/// // A masked ping "Hello" (RFC 6455 §5.7), key 0 0 0 0.
/// let mut input = vec![0x89, 0x85, 0, 0, 0, 0, b'H', b'e', b'l', b'l', b'o'];
/// let decoded = conn.receive(&mut input, &mut out).unwrap();
/// assert_eq!(decoded.event, Some(Event::Ping(b"Hello")));
/// assert_eq!(out, [0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']); // the pong
///
/// // A masked close with no body: answered with an empty close.
/// out.clear();
/// let mut input = vec![0x88, 0x80, 1, 2, 3, 4];
/// conn.receive(&mut input, &mut out).unwrap();
/// assert_eq!(out, [0x88, 0x00]);
/// assert_eq!(conn.state(), CloseState::Closed);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Turns received bytes into events.
    decoder: Decoder,
    /// The close handshake's progress.
    state: CloseState,
}

impl Connection {
    /// A connection whose decoder enforces `limits`.
    pub fn new(limits: Limits) -> Connection {
        Connection {
            decoder: Decoder::new(limits),
            state: CloseState::Open,
        }
    }

    /// Where the close handshake is.
    pub fn state(&self) -> CloseState {
        self.state
    }

    /// Whether messages may still be sent: no close frame has gone out.
    pub fn can_send(&self) -> bool {
        self.state == CloseState::Open
    }

    /// Decode received bytes (see [`Decoder::decode`]) and write the automatic
    /// replies into `out`: a pong for a ping, the answering close frame for a close,
    /// and for an error the close frame that fails the connection (its code from
    /// [`WsError::close_code`], its reason the error's text).
    pub fn receive<'a>(
        &'a mut self,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, WsError> {
        let state = self.state;
        if state == CloseState::Closed {
            return Ok(Decoded {
                consumed: input.len(),
                event: None,
            });
        }
        let decoded = match self.decoder.decode(input) {
            Ok(decoded) => decoded,
            Err(error) => {
                if state == CloseState::Open {
                    let reason = error.to_string();
                    let close = CloseFrame {
                        code: error.close_code(),
                        reason: &reason,
                    };
                    write_close(out, Some(close));
                }
                self.state = CloseState::Closed;
                return Err(error);
            }
        };
        match decoded.event {
            Some(Event::Ping(payload)) if state == CloseState::Open => write_pong(out, payload),
            Some(Event::Close(close)) => {
                if state == CloseState::Open {
                    // §5.5.1: echo the status code; an empty close gets an empty one.
                    let reply = close.map(|c| CloseFrame {
                        code: c.code,
                        reason: "",
                    });
                    write_close(out, reply);
                }
                self.state = CloseState::Closed;
            }
            _ => {}
        }
        Ok(decoded)
    }

    /// Give back the decoder's message buffer if no message is in progress (see
    /// [`Decoder::shrink_idle`]): call it when the input is drained and the
    /// connection waits for the socket, so that an idle connection does not keep
    /// the memory of its last big message. A driver that calls
    /// [`Connection::receive`] until it returns no event gets this already.
    pub fn shrink_idle(&mut self) {
        self.decoder.shrink_idle();
    }

    /// Start the close handshake: write a close frame with `code` and `reason` into
    /// `out`, unless one was sent already. Afterwards [`Connection::can_send`] is
    /// false; wait for the peer's close (or a timeout) before closing TCP.
    pub fn close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) {
        if self.state == CloseState::Open {
            write_close(out, Some(CloseFrame { code, reason }));
            self.state = CloseState::CloseSent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::coding::OpCode;
    use crate::ws::decoder::tests::client_frame;
    use crate::ws::frame::parse_close_payload;

    const KEY: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

    /// Feed `input` whole; return the output written and whether it failed.
    fn receive(conn: &mut Connection, mut input: Vec<u8>) -> (Vec<u8>, Result<usize, WsError>) {
        let mut out = Vec::new();
        let result = conn.receive(&mut input, &mut out).map(|d| d.consumed);
        (out, result)
    }

    #[test]
    fn rfc6455_5_5_2_ping_is_answered_with_the_same_payload() {
        let mut conn = Connection::default();
        let (out, _) = receive(&mut conn, client_frame(true, OpCode::Ping, b"Hello", KEY));
        assert_eq!(out, [0x8a, 0x05, b'H', b'e', b'l', b'l', b'o']);
    }

    #[test]
    fn rfc6455_5_5_1_close_is_answered_by_echoing_the_code() {
        let mut conn = Connection::default();
        let payload = [0x03, 0xE9, b'b', b'y', b'e']; // 1001 "bye"
        let (out, _) = receive(&mut conn, client_frame(true, OpCode::Close, &payload, KEY));
        assert_eq!(out, [0x88, 0x02, 0x03, 0xE9]);
        assert_eq!(conn.state(), CloseState::Closed);
        assert!(!conn.can_send());
        // Anything after it is consumed and ignored, without replies.
        let late = client_frame(true, OpCode::Ping, b"late", KEY);
        let len = late.len();
        assert_eq!(receive(&mut conn, late), (vec![], Ok(len)));
    }

    #[test]
    fn rfc6455_7_1_7_protocol_error_sends_close_with_its_code_and_reason() {
        let mut conn = Connection::default();
        let (out, result) = receive(&mut conn, vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
        assert_eq!(result, Err(WsError::UnmaskedFrame));
        assert_eq!(conn.state(), CloseState::Closed);
        assert_eq!(out[0], 0x88);
        let close = parse_close_payload(&out[2..]).ok().flatten();
        assert_eq!(close.map(|c| c.code), Some(CloseCode::PROTOCOL_ERROR));
        assert!(close.is_some_and(|c| c.reason.contains("5.1")));
    }

    #[test]
    fn rfc6455_5_6_invalid_text_closes_with_1007() {
        let mut conn = Connection::default();
        let (out, result) = receive(&mut conn, client_frame(true, OpCode::Text, b"\xFF", KEY));
        assert_eq!(result, Err(WsError::InvalidUtf8));
        assert_eq!(&out[2..4], &1007u16.to_be_bytes());
    }

    #[test]
    fn rfc6455_7_1_2_server_initiated_close_waits_for_the_answer() {
        let mut conn = Connection::default();
        let mut out = Vec::new();
        conn.close(CloseCode::GOING_AWAY, "shutting down", &mut out);
        assert_eq!(&out[..4], &[0x88, 15, 0x03, 0xE9]);
        assert_eq!(conn.state(), CloseState::CloseSent);
        assert!(!conn.can_send());
        // A second close() sends nothing more.
        out.clear();
        conn.close(CloseCode::NORMAL, "", &mut out);
        assert!(out.is_empty());
        // Messages and pings still decode, but no pong goes out after our close.
        let (out, _) = receive(&mut conn, client_frame(true, OpCode::Ping, b"x", KEY));
        assert!(out.is_empty());
        // The peer's close completes the handshake without another reply.
        let answer = client_frame(true, OpCode::Close, &[0x03, 0xE9], KEY);
        let (out, _) = receive(&mut conn, answer);
        assert!(out.is_empty());
        assert_eq!(conn.state(), CloseState::Closed);
    }

    #[test]
    fn an_idle_connection_gives_back_a_big_message_buffer() {
        // A 200 KB binary message arriving in two reads, as `receive` is called by
        // a driver that stops once its input is consumed (no final empty call).
        let payload = vec![0x5a; 200_000];
        let frame = client_frame(true, OpCode::Binary, &payload, KEY);
        let mut conn = Connection::default();
        let mut out = Vec::new();
        let (first, second) = frame.split_at(65_536);
        let mut first = first.to_vec();
        let mut second = second.to_vec();
        let decoded = conn
            .receive(&mut first, &mut out)
            .map(|d| d.event.is_none());
        assert_eq!(decoded, Ok(true));
        let decoded = conn.receive(&mut second, &mut out);
        assert!(
            matches!(decoded, Ok(Decoded { event: Some(Event::Binary(b)), .. }) if b == payload)
        );
        assert!(conn.decoder.buffered_capacity() >= 200_000);
        conn.shrink_idle();
        assert_eq!(conn.decoder.buffered_capacity(), 0);
        assert!(out.is_empty());
        assert_eq!(conn.state(), CloseState::Open);
    }

    #[test]
    fn a_connection_is_small() {
        // Idle connections must stay cheap (issue 3: at most 10 KiB each, all told).
        // The decoder keeps a 125-byte control buffer inline and allocates a message
        // buffer only while a message is split across reads or fragments; an idle
        // decoder keeps at most IDLE_MESSAGE_CAPACITY of it.
        assert!(
            std::mem::size_of::<Connection>() <= 256,
            "{}",
            std::mem::size_of::<Connection>()
        );
    }
}
