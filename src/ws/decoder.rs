//! The message decoder: received bytes in, messages and control frames out
//! (RFC 6455 §5, server role).
//!
//! # What it enforces
//!
//! Every frame header is checked against the rules a server applies, in this order:
//!
//! 1. RSV1-3 must be 0: no extension was negotiated (§5.2).
//! 2. The opcode must not be reserved (§5.2).
//! 3. The frame must be masked: it comes from a client (§5.1).
//! 4. A control frame (close, ping, pong) has FIN set and at most 125 bytes of
//!    payload (§5.5); a close payload is not 1 byte long (§5.5.1).
//! 5. Fragmentation (§5.4): a continuation frame needs a message in progress; a text
//!    or binary frame needs no message in progress. Control frames may come between
//!    the fragments of a message.
//! 6. Limits (§10.4): the frame's payload, and the message's payload so far plus this
//!    frame's, must fit the configured [`Limits`] (else 1009).
//!
//! All of these are decided from the header alone, before any payload is read, so an
//! oversized or illegal frame is refused before the server buffers a byte of it.
//! Payload rules come as the payload arrives: text is validated as UTF-8 piece by
//! piece and fails (1007) as soon as the bad byte is fed, not when the message ends
//! (§8.1); a close body's code and reason are checked when the frame is complete.
//!
//! # How bytes flow
//!
//! [`Decoder::decode`] is given the bytes received and not yet consumed. It consumes
//! as many as it can, up to the end of the first complete event, and says how many
//! it used ([`Decoded::consumed`]). The caller drops those bytes and calls again,
//! after more have arrived if the answer had no event. A frame header that is not
//! all there is left unconsumed (at most 13 bytes, looked at again next time);
//! payload bytes are consumed as soon as they arrive. So each byte is handled once,
//! and the work is O(n) however the input is split.
//!
//! Payload bytes are unmasked in place, in the caller's buffer (masking is only for
//! the wire, and consumed bytes are not needed afterwards). A message that arrives
//! whole, in one frame, in one call, is handed back as a slice of that buffer: no
//! copy. Anything else (fragments, or a frame split across reads) is copied into the
//! decoder's message buffer as it arrives, and handed back from there. Control frame
//! payloads have their own 125-byte buffer, because they can arrive in the middle of
//! a fragmented message.
//!
//! # After the end
//!
//! Once a close frame has been decoded, nothing after it is processed: later input
//! is consumed and ignored. Once an error has been returned, every later call returns
//! the same error. The caller answers the close (or the error) as
//! [`super::Connection`] does.

use super::coding::OpCode;
use super::error::WsError;
use super::frame::{CloseFrame, FrameHeader, MAX_CONTROL_PAYLOAD, parse_close_payload};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;
use crate::http::Status;

/// A message buffer bigger than this is given back to the allocator after its
/// message has been delivered, so that one big message does not pin memory for the
/// rest of an idle connection's life.
const KEEP_MESSAGE_CAPACITY: usize = 64 * 1024;

/// The bounds the decoder enforces. Over either one: close 1009 (§7.4.1: "a message
/// that is too big for it to process").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame, in bytes. Default 16 MiB.
    pub max_frame_payload: u64,
    /// Largest payload of a whole message (all its fragments), in bytes.
    /// Default 16 MiB.
    pub max_message_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_payload: 16 * 1024 * 1024,
            max_message_size: 16 * 1024 * 1024,
        }
    }
}

/// Something the peer sent: a whole message, or a control frame.
///
/// The payloads borrow from the input buffer or from the decoder, until the next
/// call to [`Decoder::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A text message, validated as UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping: answer with a pong carrying the same payload (§5.5.2).
    Ping(&'a [u8]),
    /// A pong: the answer to a ping this side sent, or an unsolicited heartbeat.
    Pong(&'a [u8]),
    /// The peer started (or answered) the close handshake: `None` for a close frame
    /// with an empty body, else the code and reason (§5.5.1).
    Close(Option<CloseFrame<'a>>),
}

/// What one [`Decoder::decode`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// How many input bytes were used. Remove them before the next call.
    pub consumed: usize,
    /// The event that ended this call, or `None` if all usable input was consumed
    /// without completing one: call again when more bytes arrive.
    pub event: Option<Event<'a>>,
}

/// Whether a message is text or binary, decided by its first frame (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Opcode 0x1: UTF-8 text.
    Text,
    /// Opcode 0x2: arbitrary bytes.
    Binary,
}

/// The frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// What the payload belongs to.
    kind: FrameKind,
    /// The masking key, to unmask each piece as it arrives.
    key: [u8; 4],
    /// Payload bytes read so far: the key's phase for the next piece (§5.3).
    received: u64,
    /// Payload bytes still to come.
    remaining: u64,
}

#[derive(Debug, Clone, Copy)]
enum FrameKind {
    /// Close, ping or pong: the payload goes to the control buffer.
    Control(OpCode),
    /// A piece of a text or binary message.
    Data {
        /// The message's type, from its first frame.
        kind: MessageKind,
        /// FIN: this frame ends the message.
        fin: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Expecting a frame header.
    Header,
    /// Inside a frame's payload.
    Payload(Frame),
    /// A close frame was received; nothing after it is processed.
    Closed,
    /// The connection failed with this error.
    Failed(WsError),
}

/// How a decode call ended, worked out before the event borrows its payload.
enum Outcome {
    /// Input used up (or only part of a header left): no event.
    NeedMore,
    /// A single-frame message that arrived whole: `input[start..end]`, unmasked.
    InPlace {
        kind: MessageKind,
        start: usize,
        end: usize,
    },
    /// A message assembled in `message_buf`.
    Buffered(MessageKind),
    /// A control frame, its payload in `control`.
    Control(OpCode),
}

/// A sans-I/O WebSocket message decoder for the server side of a connection.
///
/// ```
/// use wirepatterns::ws::{Decoder, Event};
///
/// // RFC 6455 §5.7: "Hel" and "lo" as two masked fragments (key 0 0 0 0 for
/// // readability; a real client picks random keys), with a ping between them.
/// let mut input = vec![0x01, 0x83, 0, 0, 0, 0, b'H', b'e', b'l'];
/// input.extend([0x89, 0x80, 0, 0, 0, 0]);
/// input.extend([0x80, 0x82, 0, 0, 0, 0, b'l', b'o']);
///
/// let mut decoder = Decoder::default();
/// let first = decoder.decode(&mut input).unwrap();
/// assert_eq!(first.event, Some(Event::Ping(&[])));
/// let used = first.consumed;
/// let second = decoder.decode(&mut input[used..]).unwrap();
/// assert_eq!(second.event, Some(Event::Text("Hello")));
/// assert_eq!(used + second.consumed, input.len());
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The size bounds to enforce.
    limits: Limits,
    /// Where in the byte stream the decoder is.
    state: State,
    /// The type of the message whose fragments are arriving, if one is in progress:
    /// decides whether a continuation or a new data frame is legal (§5.4).
    message: Option<MessageKind>,
    /// The payload of the message in progress, when it does not arrive whole.
    message_buf: Vec<u8>,
    /// `message_buf` holds a message already handed out: clear it on the next call.
    message_delivered: bool,
    /// UTF-8 state of the text message in progress, across fragments and reads.
    utf8: Utf8Validator,
    /// The payload of the control frame being read (they may arrive mid-message, so
    /// they cannot share `message_buf`).
    control: [u8; MAX_CONTROL_PAYLOAD],
    /// How many bytes of `control` are filled.
    control_len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder that enforces `limits`.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            state: State::Header,
            message: None,
            message_buf: Vec::new(),
            message_delivered: false,
            utf8: Utf8Validator::default(),
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether a close frame has been decoded (nothing after it is processed).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether a fragmented message is in progress (its first frame has arrived, its
    /// last has not).
    pub fn message_in_progress(&self) -> Option<MessageKind> {
        self.message
    }

    /// Decode from `input`, the bytes received and not yet consumed. Payload bytes
    /// are unmasked in place. Returns how many bytes were consumed and the event they
    /// completed, if any; see the module docs.
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, WsError> {
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
                State::Header => {
                    let rest = input.get(pos..).unwrap_or_default();
                    let (header, header_len) = match FrameHeader::parse(rest) {
                        Ok(Status::Complete(parsed)) => parsed,
                        Ok(Status::Partial) => break Outcome::NeedMore,
                        Err(error) => return Err(self.fail(error)),
                    };
                    let frame = self.check_header(&header).map_err(|e| self.fail(e))?;
                    pos += header_len;
                    self.state = State::Payload(frame);
                }
                State::Payload(mut frame) => {
                    let available = input.len() - pos;
                    let take = frame.remaining.min(available as u64) as usize;
                    if take == 0 && frame.remaining > 0 {
                        break Outcome::NeedMore;
                    }
                    let start = pos;
                    let Some(chunk) = input.get_mut(start..start + take) else {
                        break Outcome::NeedMore;
                    };
                    apply_mask(chunk, frame.key, (frame.received % 4) as usize);
                    let whole_frame_here = frame.received == 0 && take as u64 == frame.remaining;
                    frame.received += take as u64;
                    frame.remaining -= take as u64;
                    pos += take;
                    let frame_done = frame.remaining == 0;
                    self.state = if frame_done {
                        State::Header
                    } else {
                        State::Payload(frame)
                    };

                    match frame.kind {
                        FrameKind::Control(opcode) => {
                            let end = self.control_len + take;
                            if let Some(slot) = self.control.get_mut(self.control_len..end) {
                                slot.copy_from_slice(chunk);
                                self.control_len = end;
                            }
                            if frame_done {
                                break Outcome::Control(opcode);
                            }
                        }
                        FrameKind::Data { kind, fin } => {
                            let message_done = frame_done && fin;
                            if message_done && whole_frame_here && self.message_buf.is_empty() {
                                // The whole message is this chunk: hand it out in
                                // place, no copy.
                                break Outcome::InPlace {
                                    kind,
                                    start,
                                    end: pos,
                                };
                            }
                            // §8.1: validate text as it arrives. The last piece is
                            // checked with the whole message below, when the
                            // message becomes a `&str`.
                            if kind == MessageKind::Text
                                && !message_done
                                && self.utf8.feed(chunk).is_err()
                            {
                                return Err(self.fail(WsError::InvalidUtf8));
                            }
                            self.message_buf.extend_from_slice(chunk);
                            if message_done {
                                break Outcome::Buffered(kind);
                            }
                        }
                    }
                }
            }
        };

        let consumed = pos;
        let input: &'a [u8] = input;
        let event = match outcome {
            Outcome::NeedMore => None,
            Outcome::InPlace { kind, start, end } => {
                self.message = None;
                self.utf8.reset();
                let payload = input.get(start..end).unwrap_or_default();
                Some(match kind {
                    MessageKind::Binary => Event::Binary(payload),
                    MessageKind::Text => match std::str::from_utf8(payload) {
                        Ok(text) => Event::Text(text),
                        Err(_) => return Err(self.fail(WsError::InvalidUtf8)),
                    },
                })
            }
            Outcome::Buffered(kind) => {
                self.message = None;
                self.utf8.reset();
                self.message_delivered = true;
                Some(match kind {
                    MessageKind::Binary => Event::Binary(&self.message_buf),
                    MessageKind::Text => match std::str::from_utf8(&self.message_buf) {
                        Ok(text) => Event::Text(text),
                        Err(_) => {
                            self.state = State::Failed(WsError::InvalidUtf8);
                            return Err(WsError::InvalidUtf8);
                        }
                    },
                })
            }
            Outcome::Control(opcode) => {
                let payload = self.control.get(..self.control_len).unwrap_or_default();
                Some(match opcode {
                    OpCode::Ping => Event::Ping(payload),
                    OpCode::Pong => Event::Pong(payload),
                    _ => match parse_close_payload(payload) {
                        Ok(close) => {
                            self.state = State::Closed;
                            Event::Close(close)
                        }
                        Err(error) => {
                            self.state = State::Failed(error);
                            return Err(error);
                        }
                    },
                })
            }
        };
        Ok(Decoded { consumed, event })
    }

    /// Apply the header rules (see the module docs) and describe the frame to read.
    fn check_header(&mut self, header: &FrameHeader) -> Result<Frame, WsError> {
        // §5.2: "If a nonzero value is received and none of the negotiated extensions
        // defines the meaning of such a nonzero value, the receiving endpoint MUST
        // _Fail the WebSocket Connection_."
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::ReservedBitsSet);
        }
        // §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
        // the WebSocket Connection_."
        if let OpCode::Reserved(_) = header.opcode {
            return Err(WsError::ReservedOpcode);
        }
        // §5.1: "The server MUST close the connection upon receiving a frame that is
        // not masked."
        let Some(key) = header.mask else {
            return Err(WsError::UnmaskedFrame);
        };
        let len = header.payload_len;

        let kind = if header.opcode.is_control() {
            // §5.5: "All control frames MUST have a payload length of 125 bytes or
            // less and MUST NOT be fragmented."
            if !header.fin {
                return Err(WsError::FragmentedControlFrame);
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(WsError::ControlFrameTooLong);
            }
            // §5.5.1: "If there is a body, the first two bytes of the body MUST be a
            // 2-byte unsigned integer".
            if header.opcode == OpCode::Close && len == 1 {
                return Err(WsError::CloseFrameOneByte);
            }
            self.control_len = 0;
            FrameKind::Control(header.opcode)
        } else {
            if len > self.limits.max_frame_payload {
                return Err(WsError::FrameTooLarge);
            }
            let so_far = self.message_buf.len() as u64;
            if so_far.saturating_add(len) > self.limits.max_message_size as u64 {
                return Err(WsError::MessageTooLarge);
            }
            // §5.4: a fragmented message is one text or binary frame, then
            // continuation frames; the fragments of two messages never interleave.
            let kind = match (header.opcode, self.message) {
                (OpCode::Continuation, Some(kind)) => kind,
                (OpCode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
                (_, Some(_)) => return Err(WsError::ExpectedContinuation),
                (OpCode::Text, None) => MessageKind::Text,
                (_, None) => MessageKind::Binary,
            };
            self.message = Some(kind);
            FrameKind::Data {
                kind,
                fin: header.fin,
            }
        };
        Ok(Frame {
            kind,
            key,
            received: 0,
            remaining: len,
        })
    }

    /// Remember that the connection failed, and return the error.
    fn fail(&mut self, error: WsError) -> WsError {
        self.state = State::Failed(error);
        error
    }
}
