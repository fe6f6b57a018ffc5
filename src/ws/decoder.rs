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
//! A message that arrives whole, in one frame, in one call, is unmasked in place, in
//! the caller's buffer (masking is only for the wire, and consumed bytes are not
//! needed afterwards), and handed back as a slice of that buffer: no copy. Anything
//! else (fragments, or a frame split across reads) is unmasked as it is copied into
//! the decoder's message buffer ([`copy_masked`]: one pass over the bytes), and
//! handed back from there; those consumed input bytes are left masked. Control
//! frame payloads are unmasked in place and copied to their own 125-byte buffer,
//! because they can arrive in the middle of a fragmented message.
//!
//! # Memory: the message buffer
//!
//! Two costs pull against each other: copying (a buffer that grows by doubling
//! copies what it holds at each step, and one freed after every message is
//! allocated and grown again for the next) and memory held by connections that
//! have gone quiet (issue 3: an idle connection costs at most 10 KiB all told).
//! The policy:
//!
//! - **Reserve ahead, on evidence.** When a data frame's payload starts going into
//!   the message buffer, room for the rest of the frame is reserved at once, so a
//!   big frame is not copied again as the buffer grows. But the length in a header
//!   is only a claim: a hostile client can announce 16 MiB and send 1 byte, on
//!   thousands of connections. So the reservation is at most
//!   [`RESERVE_FACTOR`] times the bytes of the message actually received so far
//!   (at least [`RESERVE_FLOOR`]), taken whole when the rest of the frame is
//!   within twice that. A 1 MiB frame arriving in 64 KiB reads is reserved in one
//!   step; a header announcing 16 MiB followed by a trickle gets 4 KiB, and then
//!   room in proportion to what arrives. What a client can make the decoder hold
//!   is thus a constant factor of what it actually sent (plus a few KiB), not what
//!   it claimed; and reserved room is not written until bytes arrive. Never more
//!   than the [`Limits`] allow, either: they are checked on the header, before any
//!   reservation (§10.4).
//! - **Keep it through a burst.** A delivered message's buffer is cleared, not
//!   freed, so the next message reuses its memory, and is unmasked straight over
//!   the old bytes (see `MessageBuf`).
//! - **Give it back when idle.** A call that ends needing more input with no message
//!   in progress (the driver has drained what it read, and the peer stopped at a
//!   message boundary) drops a buffer bigger than [`IDLE_MESSAGE_CAPACITY`]. A
//!   driver that loops until a call returns no event (as in [`super`]'s example)
//!   gets this for free; one that stops as soon as its input is consumed can call
//!   [`Decoder::shrink_idle`] instead. While a message is in progress, the buffer
//!   holds that message (bounded by [`Limits::max_message_size`]) plus the
//!   reservation above; how long a client may take to finish one is the driver's
//!   timeout to set.
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
use super::mask::{apply_mask, copy_masked};
use super::utf8::Utf8Validator;
use crate::http::Status;

/// The most message buffer capacity an idle decoder keeps (see "Memory" in the
/// module docs): enough for chat-sized messages split across reads to reuse it,
/// small enough for issue 3's 10 KiB per idle connection, beside the driver's read
/// buffer.
pub const IDLE_MESSAGE_CAPACITY: usize = 1024;

/// The least room reserved ahead for a frame's payload, however little of it has
/// arrived (see "Memory" in the module docs).
pub const RESERVE_FLOOR: usize = 4 * 1024;

/// How many times the bytes of a message received so far the decoder may reserve
/// ahead for the rest of a frame the header announced (see "Memory" in the module
/// docs). With 16, a frame up to 32 times the size of its first piece (a 1 MiB
/// frame after a 64 KiB read) is reserved in one step, and a client that announces
/// much and sends little gets little.
pub const RESERVE_FACTOR: usize = 16;

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
    message_buf: MessageBuf,
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
            message_buf: MessageBuf::default(),
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

    /// Decode from `input`, the bytes received and not yet consumed. Consumed bytes
    /// may be changed (a payload handed out of `input` is unmasked in place).
    /// Returns how many bytes were consumed and the event they completed, if any;
    /// see the module docs.
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, WsError> {
        if self.message_delivered {
            // Cleared, not freed: the next message reuses the capacity. An idle
            // connection gives it back below, when a call ends needing more input.
            self.message_delivered = false;
            self.message_buf.clear();
        }
        let mut pos = 0;
        let outcome = loop {
            match self.state {
                State::Failed(error) => {
                    self.shrink_idle();
                    return Err(error);
                }
                State::Closed => {
                    self.shrink_idle();
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
                    // §5.3: the key's phase is how far into the payload this piece
                    // starts.
                    let phase = (frame.received % 4) as usize;
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
                            apply_mask(chunk, frame.key, phase);
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
                                // The whole message is this chunk: unmask it and
                                // hand it out in place, no copy.
                                apply_mask(chunk, frame.key, phase);
                                break Outcome::InPlace {
                                    kind,
                                    start,
                                    end: pos,
                                };
                            }
                            // `take` bytes now, `frame.remaining` more to come.
                            let frame_rest = frame.remaining.saturating_add(take as u64);
                            let piece = self
                                .message_buf
                                .append_unmasked(chunk, frame.key, phase, frame_rest);
                            // §8.1: validate text as it arrives. The last piece is
                            // checked with the whole message below, when the
                            // message becomes a `&str`.
                            if kind == MessageKind::Text
                                && !message_done
                                && self.utf8.feed(piece).is_err()
                            {
                                return Err(self.fail(WsError::InvalidUtf8));
                            }
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
            Outcome::NeedMore => {
                if self.message.is_none() {
                    // Input drained at a message boundary: the connection may stay
                    // quiet now, so do not pin a big buffer.
                    self.shrink_idle();
                }
                None
            }
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
                    MessageKind::Binary => Event::Binary(self.message_buf.message()),
                    MessageKind::Text => match std::str::from_utf8(self.message_buf.message()) {
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

    /// Give back the message buffer's memory if the decoder is idle: no message in
    /// progress (or the connection is over) and more than
    /// [`IDLE_MESSAGE_CAPACITY`] allocated. Does nothing otherwise, so it is safe
    /// to call at any time; a driver calls it when it has drained its input and
    /// will wait for the socket (see "Memory" in the module docs).
    /// [`Decoder::decode`] does the same whenever a call ends needing more input
    /// with no message in progress.
    ///
    /// ```
    /// use wirepatterns::ws::{Decoder, Event};
    ///
    /// // A 2000-byte binary message split across two reads (key 0 0 0 0).
    /// let mut frame = vec![0x82, 0xFE, 0x07, 0xD0, 0, 0, 0, 0];
    /// frame.resize(8 + 2000, b'x');
    /// let mut decoder = Decoder::default();
    /// let (first, second) = frame.split_at_mut(1000);
    /// assert_eq!(decoder.decode(first).unwrap().event, None);
    /// let event = decoder.decode(second).unwrap().event;
    /// assert!(matches!(event, Some(Event::Binary(b)) if b.len() == 2000));
    /// assert!(decoder.buffered_capacity() >= 2000);
    /// decoder.shrink_idle();
    /// assert_eq!(decoder.buffered_capacity(), 0);
    /// ```
    pub fn shrink_idle(&mut self) {
        let over = matches!(self.state, State::Closed | State::Failed(_));
        let idle = self.message.is_none() || over;
        if idle && self.message_buf.capacity() > IDLE_MESSAGE_CAPACITY {
            self.message_buf = MessageBuf::default();
            self.message_delivered = false;
        }
    }

    /// Bytes allocated for the message buffer: what this decoder holds on the heap.
    pub fn buffered_capacity(&self) -> usize {
        self.message_buf.capacity()
    }

    /// Remember that the connection failed, and return the error.
    fn fail(&mut self, error: WsError) -> WsError {
        self.state = State::Failed(error);
        self.shrink_idle();
        error
    }
}

/// The payload of a message that does not arrive whole, assembled across frames and
/// reads, unmasked.
///
/// The bytes past the message are kept initialized: `bytes.len()` is how far this
/// allocation has ever been written, and only `..len` is the message. So the next
/// message is unmasked straight over the old bytes ([`copy_masked`]: one pass,
/// reading the masked input once), where a `Vec` truncated after each message would
/// need its new bytes zeroed, or copied in and then unmasked in place (two passes),
/// since this crate has no `unsafe` to write into uninitialized capacity.
#[derive(Debug, Clone, Default)]
struct MessageBuf {
    /// Initialized storage; only `..len` is the message.
    bytes: Vec<u8>,
    /// Bytes of the message received so far.
    len: usize,
}

impl MessageBuf {
    /// Bytes of the message received so far.
    fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte of a message is held.
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message so far.
    fn message(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Forget the message; keep the memory.
    fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes allocated.
    fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Append `masked`, a piece of a data frame's payload starting `phase` bytes
    /// into it, unmasked with `key`; `frame_rest` bytes of the frame (counting this
    /// piece) are still to come. Returns the piece as appended.
    fn append_unmasked(
        &mut self,
        masked: &[u8],
        key: [u8; 4],
        phase: usize,
        frame_rest: u64,
    ) -> &[u8] {
        self.reserve_ahead(masked.len(), frame_rest);
        let start = self.len;
        let end = start.saturating_add(masked.len());
        if end > self.bytes.len() {
            // Zeroes only the part never written before (within the capacity just
            // reserved, so no reallocation).
            self.bytes.resize(end, 0);
        }
        let piece = self.bytes.get_mut(start..end).unwrap_or_default();
        copy_masked(piece, masked, key, phase);
        self.len = end;
        piece
    }

    /// Make room before `incoming` bytes of a data frame are appended, when
    /// `frame_rest` bytes of the frame (counting those) are still to come: the
    /// "reserve ahead, on evidence" rule of the module docs. The evidence is the
    /// message's bytes received so far, counting `incoming`; `frame_rest` was
    /// checked against the [`Limits`] on the header.
    fn reserve_ahead(&mut self, incoming: usize, frame_rest: u64) {
        let evidence = self.len.saturating_add(incoming);
        let allowance = evidence.saturating_mul(RESERVE_FACTOR).max(RESERVE_FLOOR);
        // Hostile input: `frame_rest` is the peer's claim. Trust it only within
        // twice the allowance (so a frame a little over the allowance is not
        // reserved short and then copied whole to grow by a few bytes).
        let want = if frame_rest <= (allowance as u64).saturating_mul(2) {
            frame_rest as usize
        } else {
            allowance
        };
        let needed = self.len.saturating_add(want);
        // `reserve` does nothing if the room is there; else it grows to at least
        // double, so many small fragments stay amortized O(n).
        if let Some(more) = needed.checked_sub(self.bytes.len()) {
            self.bytes.reserve(more);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ws::coding::CloseCode;
    use crate::ws::frame::write_frame;
    use crate::ws::mask::apply_mask;

    /// A frame as a client sends it: masked with `key`. The masking is the test's
    /// stand-in for a client; the crate itself never masks.
    pub(crate) fn client_frame(fin: bool, opcode: OpCode, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let header = FrameHeader {
            mask: Some(key),
            ..FrameHeader::server(fin, opcode, payload.len() as u64)
        };
        let mut out = Vec::new();
        header.write(&mut out);
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key, 0);
        out
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn text(fin: bool, payload: &[u8]) -> Vec<u8> {
        client_frame(fin, OpCode::Text, payload, KEY)
    }

    fn cont(fin: bool, payload: &[u8]) -> Vec<u8> {
        client_frame(fin, OpCode::Continuation, payload, KEY)
    }

    /// An event with its payload copied out, to compare across calls (the client
    /// decoder's tests use it too).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Owned {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    impl From<Event<'_>> for Owned {
        fn from(event: Event<'_>) -> Owned {
            match event {
                Event::Text(t) => Owned::Text(t.to_owned()),
                Event::Binary(b) => Owned::Binary(b.to_vec()),
                Event::Ping(p) => Owned::Ping(p.to_vec()),
                Event::Pong(p) => Owned::Pong(p.to_vec()),
                Event::Close(c) => Owned::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
            }
        }
    }

    /// Plays the driver: appends each piece to a buffer of unconsumed bytes, decodes
    /// until no event comes, drops what was consumed. Also checks that the decoder
    /// never leaves more than a partial header unconsumed (so the work stays O(n)).
    struct Harness {
        decoder: Decoder,
        pending: Vec<u8>,
        events: Vec<Owned>,
    }

    impl Harness {
        fn new(limits: Limits) -> Harness {
            Harness {
                decoder: Decoder::new(limits),
                pending: Vec::new(),
                events: Vec::new(),
            }
        }

        fn feed(&mut self, piece: &[u8]) -> Result<(), WsError> {
            self.pending.extend_from_slice(piece);
            loop {
                let decoded = self.decoder.decode(&mut self.pending)?;
                let consumed = decoded.consumed;
                let event = decoded.event.map(Owned::from);
                self.pending.drain(..consumed);
                match event {
                    Some(event) => self.events.push(event),
                    None => break,
                }
            }
            assert!(
                self.pending.len() < MAX_HEADER_LEN_FOR_TESTS,
                "kept {}",
                self.pending.len()
            );
            Ok(())
        }
    }

    const MAX_HEADER_LEN_FOR_TESTS: usize = crate::ws::frame::MAX_HEADER_LEN;

    /// Decode `stream` fed in the given pieces.
    fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Result<Vec<Owned>, WsError> {
        let mut harness = Harness::new(Limits::default());
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
            harness.feed(&stream[start..cut])?;
            start = cut;
        }
        Ok(harness.events)
    }

    fn decode(stream: &[u8]) -> Result<Vec<Owned>, WsError> {
        decode_in_pieces(stream, &[])
    }

    fn one_byte_at_a_time(stream: &[u8]) -> Result<Vec<Owned>, WsError> {
        let cuts: Vec<usize> = (1..stream.len()).collect();
        decode_in_pieces(stream, &cuts)
    }

    fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        payload
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode(&bytes), Ok(vec![Owned::Text("Hello".into())]));
        assert_eq!(
            one_byte_at_a_time(&bytes),
            Ok(vec![Owned::Text("Hello".into())])
        );
    }

    #[test]
    fn rfc6455_5_1_server_rejects_unmasked_frame() {
        // §5.7's unmasked "Hello": fine from a server, not from a client.
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(decode(&bytes), Err(WsError::UnmaskedFrame));
        assert_eq!(
            WsError::UnmaskedFrame.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        // Refused on the header alone, before the payload arrives.
        assert_eq!(decode(&bytes[..2]), Err(WsError::UnmaskedFrame));
    }

    #[test]
    fn rfc6455_5_2_reserved_bits_without_extension_are_1002() {
        for bit in [0x40, 0x20, 0x10] {
            let mut bytes = text(true, b"hi");
            bytes[0] |= bit;
            assert_eq!(decode(&bytes), Err(WsError::ReservedBitsSet), "{bit:#x}");
        }
    }

    #[test]
    fn rfc6455_5_2_reserved_opcodes_are_1002() {
        for bits in (0x3..=0x7).chain(0xB..=0xF) {
            let bytes = client_frame(true, OpCode::Reserved(bits), b"", KEY);
            assert_eq!(decode(&bytes), Err(WsError::ReservedOpcode), "{bits:#x}");
            assert_eq!(WsError::ReservedOpcode.close_code(), CloseCode(1002));
        }
    }

    #[test]
    fn rfc6455_5_5_control_frame_over_125_is_1002() {
        let ok = client_frame(true, OpCode::Ping, &[b'x'; 125], KEY);
        assert_eq!(decode(&ok), Ok(vec![Owned::Ping(vec![b'x'; 125])]));
        for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            let bytes = client_frame(true, opcode, &[0x03; 126], KEY);
            assert_eq!(
                decode(&bytes[..8]), // the whole header, no payload
                Err(WsError::ControlFrameTooLong),
                "{opcode:?}"
            );
        }
    }

    #[test]
    fn rfc6455_5_5_fragmented_control_frame_is_1002() {
        for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            let bytes = client_frame(false, opcode, b"", KEY);
            assert_eq!(
                decode(&bytes),
                Err(WsError::FragmentedControlFrame),
                "{opcode:?}"
            );
        }
    }

    #[test]
    fn rfc6455_5_7_fragmented_hello() {
        let mut bytes = text(false, b"Hel");
        bytes.extend(cont(true, b"lo"));
        assert_eq!(decode(&bytes), Ok(vec![Owned::Text("Hello".into())]));
    }

    #[test]
    fn rfc6455_5_4_control_frames_between_fragments() {
        let mut bytes = client_frame(false, OpCode::Binary, b"ab", KEY);
        bytes.extend(client_frame(true, OpCode::Ping, b"p1", [1, 2, 3, 4]));
        bytes.extend(cont(false, b""));
        bytes.extend(client_frame(true, OpCode::Pong, b"p2", [5, 6, 7, 8]));
        bytes.extend(cont(true, b"cd"));
        let expected = vec![
            Owned::Ping(b"p1".to_vec()),
            Owned::Pong(b"p2".to_vec()),
            Owned::Binary(b"abcd".to_vec()),
        ];
        assert_eq!(decode(&bytes), Ok(expected.clone()));
        assert_eq!(one_byte_at_a_time(&bytes), Ok(expected));
    }

    #[test]
    fn rfc6455_5_4_continuation_without_message_is_1002() {
        assert_eq!(
            decode(&cont(true, b"x")),
            Err(WsError::UnexpectedContinuation)
        );
        // Also right after a complete message.
        let mut bytes = text(true, b"done");
        bytes.extend(cont(true, b"x"));
        assert_eq!(decode(&bytes), Err(WsError::UnexpectedContinuation));
    }

    #[test]
    fn rfc6455_5_4_new_data_frame_during_fragmented_message_is_1002() {
        for opcode in [OpCode::Text, OpCode::Binary] {
            let mut bytes = text(false, b"a");
            bytes.extend(client_frame(true, opcode, b"b", KEY));
            assert_eq!(decode(&bytes), Err(WsError::ExpectedContinuation));
        }
    }

    #[test]
    fn rfc6455_5_6_invalid_utf8_fails_fast_1007() {
        // A 100-byte text frame whose 4th byte is invalid: the error comes when that
        // byte is fed, 96 bytes before the frame ends.
        let mut payload = b"abc\xFFdefg".to_vec();
        payload.resize(100, b'z');
        let bytes = text(true, &payload);
        let header_len = 2 + 4;
        let mut harness = Harness::new(Limits::default());
        assert_eq!(harness.feed(&bytes[..header_len + 3]), Ok(()));
        assert_eq!(
            harness.feed(&bytes[header_len + 3..header_len + 4]),
            Err(WsError::InvalidUtf8)
        );
        assert_eq!(
            WsError::InvalidUtf8.close_code(),
            CloseCode::INVALID_PAYLOAD
        );

        // Across fragments: "κό", then σ (CF 83) split between two fragments, then
        // ED A0, the start of a surrogate: invalid at the A0, before the message ends.
        let mut harness = Harness::new(Limits::default());
        assert_eq!(harness.feed(&text(false, "κό".as_bytes())), Ok(()));
        assert_eq!(harness.feed(&cont(false, b"\xCF")), Ok(()));
        let third = cont(false, b"\x83\xED\xA0\x80");
        assert_eq!(harness.feed(&third[..8]), Ok(()));
        assert_eq!(harness.feed(&third[8..9]), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn rfc6455_5_6_utf8_split_across_fragments_and_reads() {
        let euro = "€".as_bytes();
        let mut bytes = text(false, &euro[..1]);
        bytes.extend(client_frame(true, OpCode::Ping, b"", KEY));
        bytes.extend(cont(false, &euro[1..2]));
        bytes.extend(cont(true, &euro[2..]));
        let expected = Ok(vec![Owned::Ping(vec![]), Owned::Text("€".into())]);
        assert_eq!(decode(&bytes), expected);
        assert_eq!(one_byte_at_a_time(&bytes), expected);

        // A message that ends inside a character is invalid.
        let mut bytes = text(false, b"ok");
        bytes.extend(cont(true, &euro[..2]));
        assert_eq!(decode(&bytes), Err(WsError::InvalidUtf8));
        assert_eq!(one_byte_at_a_time(&bytes), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn rfc6455_5_5_1_close_frames() {
        let empty = client_frame(true, OpCode::Close, b"", KEY);
        assert_eq!(decode(&empty), Ok(vec![Owned::Close(None)]));

        let bye = client_frame(true, OpCode::Close, &close_payload(1000, b"bye"), KEY);
        assert_eq!(
            decode(&bye),
            Ok(vec![Owned::Close(Some((1000, "bye".into())))])
        );

        // A 1-byte body is refused on the header.
        let one = client_frame(true, OpCode::Close, &[0x03], KEY);
        assert_eq!(decode(&one[..6]), Err(WsError::CloseFrameOneByte));

        let bad_reason = client_frame(true, OpCode::Close, &close_payload(1000, b"\xC3"), KEY);
        assert_eq!(decode(&bad_reason), Err(WsError::InvalidCloseReason));
        assert_eq!(WsError::InvalidCloseReason.close_code(), CloseCode(1007));
    }

    #[test]
    fn rfc6455_7_4_1_invalid_close_code_is_1002() {
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let bytes = client_frame(true, OpCode::Close, &close_payload(code, b""), KEY);
            assert_eq!(decode(&bytes), Err(WsError::InvalidCloseCode), "{code}");
        }
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            let bytes = client_frame(true, OpCode::Close, &close_payload(code, b""), KEY);
            assert_eq!(
                decode(&bytes),
                Ok(vec![Owned::Close(Some((code, String::new())))])
            );
        }
    }

    #[test]
    fn rfc6455_5_5_1_nothing_after_close_is_processed() {
        let mut bytes = client_frame(true, OpCode::Close, b"", KEY);
        bytes.extend(text(true, b"late"));
        bytes.extend([0xFF; 20]); // not even a valid frame
        let mut decoder = Decoder::default();
        let first = decoder
            .decode(&mut bytes)
            .map(|d| (d.consumed, d.event.map(Owned::from)));
        assert_eq!(first, Ok((6, Some(Owned::Close(None)))));
        assert!(decoder.is_closed());
        let rest = decoder
            .decode(&mut bytes[6..])
            .map(|d| (d.consumed, d.event.is_none()));
        assert_eq!(rest, Ok((bytes.len() - 6, true)));
    }

    #[test]
    fn rfc6455_5_5_2_ping_carries_its_payload() {
        // §5.7: "Unmasked Ping request and masked Ping response" with body "Hello";
        // from a client the ping is masked.
        let ping = client_frame(true, OpCode::Ping, b"Hello", KEY);
        assert_eq!(decode(&ping), Ok(vec![Owned::Ping(b"Hello".to_vec())]));
    }

    #[test]
    fn rfc6455_10_4_frame_over_limit_is_1009() {
        let limits = Limits {
            max_frame_payload: 100,
            max_message_size: 1000,
        };
        let mut harness = Harness::new(limits);
        let bytes = client_frame(true, OpCode::Binary, &[0; 101], KEY);
        // Refused on the header: nothing of the payload is buffered.
        assert_eq!(harness.feed(&bytes[..6]), Err(WsError::FrameTooLarge));
        assert_eq!(WsError::FrameTooLarge.close_code(), CloseCode::TOO_BIG);
        let mut harness = Harness::new(limits);
        assert_eq!(
            harness.feed(&client_frame(true, OpCode::Binary, &[0; 100], KEY)),
            Ok(())
        );
    }

    #[test]
    fn rfc6455_10_4_message_over_limit_is_1009() {
        let limits = Limits {
            max_frame_payload: 100,
            max_message_size: 250,
        };
        let mut harness = Harness::new(limits);
        for _ in 0..2 {
            let fragment = client_frame(false, OpCode::Binary, &[1; 100], KEY);
            let fragment = if harness.decoder.message_in_progress().is_some() {
                let mut f = fragment;
                f[0] &= 0xF0; // continuation
                f
            } else {
                fragment
            };
            assert_eq!(harness.feed(&fragment), Ok(()));
        }
        let last = client_frame(true, OpCode::Continuation, &[1; 51], KEY);
        assert_eq!(harness.feed(&last[..6]), Err(WsError::MessageTooLarge));
        // Exactly at the limit is fine.
        let mut harness = Harness::new(limits);
        let mut bytes = client_frame(false, OpCode::Binary, &[1; 100], KEY);
        bytes.extend(client_frame(false, OpCode::Continuation, &[1; 100], KEY));
        bytes.extend(client_frame(true, OpCode::Continuation, &[1; 50], KEY));
        assert_eq!(harness.feed(&bytes), Ok(()));
        assert_eq!(harness.events, vec![Owned::Binary(vec![1; 250])]);
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = Decoder::default();
        let mut bad = [0x81, 0x05, 0, 0, 0, 0, 0];
        assert_eq!(decoder.decode(&mut bad).err(), Some(WsError::UnmaskedFrame));
        let mut good = text(true, b"hi");
        assert_eq!(
            decoder.decode(&mut good).err(),
            Some(WsError::UnmaskedFrame)
        );
    }

    /// A stream with every kind of frame and all three length forms.
    fn mixed_stream(big: usize) -> (Vec<u8>, Vec<Owned>) {
        let big_payload: Vec<u8> = (0..big).map(|i| (i * 7 + i / 256) as u8).collect();
        let mut stream = Vec::new();
        stream.extend([
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        stream.extend(client_frame(
            true,
            OpCode::Binary,
            &big_payload,
            [9, 8, 7, 6],
        ));
        stream.extend(text(false, "héllo wö".as_bytes()));
        stream.extend(client_frame(
            true,
            OpCode::Ping,
            b"are you there",
            [1, 1, 2, 3],
        ));
        stream.extend(cont(false, b""));
        stream.extend(cont(true, "rld €".as_bytes()));
        stream.extend(client_frame(true, OpCode::Binary, b"", [4, 3, 2, 1]));
        stream.extend(text(true, b""));
        stream.extend(client_frame(
            true,
            OpCode::Close,
            &close_payload(1001, b"gone"),
            KEY,
        ));
        let events = vec![
            Owned::Text("Hello".into()),
            Owned::Binary(big_payload),
            Owned::Ping(b"are you there".to_vec()),
            Owned::Text("héllo wörld €".into()),
            Owned::Binary(vec![]),
            Owned::Text(String::new()),
            Owned::Close(Some((1001, "gone".into()))),
        ];
        (stream, events)
    }

    #[test]
    fn frames_split_at_every_byte_decode_the_same() {
        let (stream, expected) = mixed_stream(300);
        assert_eq!(decode(&stream).as_ref(), Ok(&expected));
        assert_eq!(one_byte_at_a_time(&stream).as_ref(), Ok(&expected));
        for cut in 0..=stream.len() {
            assert_eq!(
                decode_in_pieces(&stream, &[cut]).as_ref(),
                Ok(&expected),
                "cut {cut}"
            );
        }
        for step in [2, 3, 5, 7, 13, 64] {
            let cuts: Vec<usize> = (step..stream.len()).step_by(step).collect();
            assert_eq!(
                decode_in_pieces(&stream, &cuts).as_ref(),
                Ok(&expected),
                "step {step}"
            );
        }
    }

    #[test]
    fn a_64_kib_frame_one_byte_at_a_time_is_linear() {
        // The harness asserts that no more than a partial header is ever kept, so
        // each byte is looked at a bounded number of times.
        let (stream, expected) = mixed_stream(65_536);
        assert_eq!(one_byte_at_a_time(&stream), Ok(expected));
    }

    #[test]
    fn rfc6455_5_2_length_encodings_7_16_64() {
        for len in [0, 1, 125, 126, 127, 256, 65_535, 65_536, 70_000] {
            let payload = vec![0xA5; len];
            let bytes = client_frame(true, OpCode::Binary, &payload, KEY);
            let header_len = bytes.len() - len;
            let expected_header = match len {
                0..=125 => 6,
                126..=65_535 => 8,
                _ => 14,
            };
            assert_eq!(header_len, expected_header, "{len}");
            assert_eq!(decode(&bytes), Ok(vec![Owned::Binary(payload)]), "{len}");
        }
    }

    #[test]
    fn emit_then_parse_round_trips() {
        // Server frames, given a key by the test (playing a client), decode back to
        // what was written.
        let mut server = Vec::new();
        write_frame(&mut server, OpCode::Text, "round trip ✓".as_bytes());
        write_frame(&mut server, OpCode::Binary, &[0u8; 1000]);
        write_frame(&mut server, OpCode::Ping, b"p");
        crate::ws::frame::write_close(
            &mut server,
            Some(CloseFrame {
                code: CloseCode::GOING_AWAY,
                reason: "bye",
            }),
        );
        let mut client = Vec::new();
        let mut rest = &server[..];
        while let Ok(Status::Complete((header, len))) = FrameHeader::parse(rest) {
            let payload_len = header.payload_len as usize;
            let payload = &rest[len..len + payload_len];
            assert_eq!(header.mask, None, "the server never masks");
            client.extend(client_frame(
                header.fin,
                header.opcode,
                payload,
                [0xde, 0xad, 0xbe, 0xef],
            ));
            rest = &rest[len + payload_len..];
        }
        assert!(rest.is_empty());
        assert_eq!(
            decode(&client),
            Ok(vec![
                Owned::Text("round trip ✓".into()),
                Owned::Binary(vec![0; 1000]),
                Owned::Ping(b"p".to_vec()),
                Owned::Close(Some((1001, "bye".into()))),
            ])
        );
    }

    #[test]
    fn a_whole_single_frame_message_is_not_copied() {
        let mut bytes = client_frame(true, OpCode::Binary, b"in place", KEY);
        let input_range = bytes.as_ptr_range();
        let mut decoder = Decoder::default();
        let decoded = decoder.decode(&mut bytes);
        let Ok(Decoded {
            event: Some(Event::Binary(payload)),
            ..
        }) = decoded
        else {
            panic!("{decoded:?}");
        };
        assert_eq!(payload, b"in place");
        assert!(input_range.contains(&payload.as_ptr()));
    }

    /// The message buffer's capacity and address after a read.
    type BufferState = (usize, usize);

    /// Feed `stream` to `decoder` in `read`-byte pieces, as a driver with a buffer of
    /// that size would (decoding until no event, keeping a partial header for the
    /// next read). Returns the events and, after each piece, the message buffer's
    /// capacity and address.
    fn feed_reads(
        decoder: &mut Decoder,
        stream: &[u8],
        read: usize,
    ) -> Result<(Vec<Owned>, Vec<BufferState>), WsError> {
        let mut events = Vec::new();
        let mut buffer = Vec::new();
        let mut pending = Vec::new();
        for piece in stream.chunks(read) {
            pending.extend_from_slice(piece);
            let mut start = 0;
            loop {
                let decoded = decoder.decode(&mut pending[start..])?;
                start += decoded.consumed;
                match decoded.event {
                    Some(event) => events.push(Owned::from(event)),
                    None => break,
                }
            }
            // At most a partial header is left for the next read.
            pending.drain(..start);
            assert!(pending.len() < MAX_HEADER_LEN_FOR_TESTS);
            buffer.push((
                decoder.buffered_capacity(),
                decoder.message_buf.bytes.as_ptr() as usize,
            ));
        }
        Ok((events, buffer))
    }

    #[test]
    fn a_1_mib_frame_in_64_kib_reads_is_reserved_once() {
        let payload: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i * 31 + i / 4096) as u8)
            .collect();
        let frame = client_frame(true, OpCode::Binary, &payload, KEY);
        let mut decoder = Decoder::default();
        let (events, buffer) = feed_reads(&mut decoder, &frame, 64 * 1024).unwrap();
        assert_eq!(events, vec![Owned::Binary(payload.clone())]);
        // The first piece reserved room for the whole frame, and the buffer never
        // moved (no copy to grow it) until the message was delivered.
        let (first_capacity, first_address) = buffer[0];
        assert_eq!(first_capacity, payload.len());
        let last = buffer.len() - 1;
        for &(capacity, address) in &buffer[..last] {
            assert_eq!((capacity, address), (first_capacity, first_address));
        }
        // The driver drained its input at a message boundary: the buffer is given
        // back (the final decode call of the last piece ended needing more input).
        assert_eq!(buffer[last].0, 0);
    }

    #[test]
    fn hostile_length_claim_reserves_only_on_evidence() {
        // A header announcing 16 MiB (the default limit, so it passes), then a
        // trickle. Reserving the announced length would cost 16 MiB per connection
        // for a 14-byte header.
        let announced = 16 << 20;
        let mut header = Vec::new();
        FrameHeader {
            mask: Some(KEY),
            ..FrameHeader::server(true, OpCode::Binary, announced as u64)
        }
        .write(&mut header);
        let mut decoder = Decoder::default();
        let mut input = header.clone();
        input.extend([0u8; 10]);
        let len = input.len();
        let decoded = decoder.decode(&mut input).map(|d| (d.consumed, d.event));
        assert_eq!(decoded, Ok((len, None)));
        assert_eq!(decoder.buffered_capacity(), RESERVE_FLOOR);

        // As bytes keep coming, the reservation stays within a constant factor of
        // what arrived: at most 2 x (received + 2 x max(floor, factor x received)).
        let mut received = 10;
        for piece_len in [1, 100, 4096, 10_000, 65_536, 65_536, 200_000] {
            let mut piece = vec![0u8; piece_len];
            let decoded = decoder.decode(&mut piece).map(|d| (d.consumed, d.event));
            assert_eq!(decoded, Ok((piece_len, None)));
            received += piece_len;
            let allowance = RESERVE_FLOOR.max(RESERVE_FACTOR * received);
            let bound = 2 * (received + 2 * allowance);
            let capacity = decoder.buffered_capacity();
            assert!(capacity <= bound, "{capacity} > {bound} after {received}");
            assert!(capacity < announced, "{capacity} after {received}");
        }
    }

    #[test]
    fn rfc6455_10_4_over_the_limit_fails_1009_before_any_reservation() {
        // Frame limit: refused on the header, nothing reserved.
        let mut header = Vec::new();
        FrameHeader {
            mask: Some(KEY),
            ..FrameHeader::server(true, OpCode::Binary, (16 << 20) + 1)
        }
        .write(&mut header);
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.decode(&mut header).err(),
            Some(WsError::FrameTooLarge)
        );
        assert_eq!(decoder.buffered_capacity(), 0);

        // Message limit: the first fragment is buffered; the header of one that
        // would cross the limit fails without reserving for it, and the failed
        // decoder lets go of what it held.
        let limits = Limits {
            max_frame_payload: 1 << 20,
            max_message_size: 1 << 20,
        };
        let mut decoder = Decoder::new(limits);
        let mut first = client_frame(false, OpCode::Binary, &[7; 100_000], KEY);
        assert_eq!(decoder.decode(&mut first).map(|d| d.event), Ok(None));
        let held = decoder.buffered_capacity();
        assert!((100_000..=(1 << 20)).contains(&held), "{held}");
        let mut header = Vec::new();
        FrameHeader {
            mask: Some(KEY),
            ..FrameHeader::server(true, OpCode::Continuation, (1 << 20) - 99_999)
        }
        .write(&mut header);
        assert_eq!(
            decoder.decode(&mut header).err(),
            Some(WsError::MessageTooLarge)
        );
        assert_eq!(WsError::MessageTooLarge.close_code(), CloseCode::TOO_BIG);
        assert_eq!(decoder.buffered_capacity(), 0);
    }

    #[test]
    fn the_buffer_is_kept_through_a_burst_and_given_back_when_idle() {
        // Three 100 KB messages back to back in 64 KiB reads: every message ends
        // inside a read, so the next one is already in progress when a call ends.
        let messages: Vec<Vec<u8>> = (0..3u8).map(|m| vec![m; 100_000]).collect();
        let mut stream = Vec::new();
        for message in &messages {
            stream.extend(client_frame(true, OpCode::Binary, message, KEY));
        }
        let mut decoder = Decoder::default();
        let (events, buffer) = feed_reads(&mut decoder, &stream, 64 * 1024).unwrap();
        let expected: Vec<Owned> = messages.into_iter().map(Owned::Binary).collect();
        assert_eq!(events, expected);
        // One allocation for the whole burst.
        let last = buffer.len() - 1;
        assert!(buffer[..last].iter().all(|b| *b == buffer[0]), "{buffer:?}");
        assert!(buffer[0].0 >= 100_000);
        // The stream ended at a message boundary: idle, so given back.
        assert_eq!(buffer[last].0, 0);
    }

    #[test]
    fn shrink_idle_keeps_a_message_in_progress_and_small_buffers() {
        let payload: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
        let frame = client_frame(true, OpCode::Binary, &payload, KEY);
        let mut decoder = Decoder::default();
        let mut first = frame[..20_000].to_vec();
        assert_eq!(decoder.decode(&mut first).map(|d| d.event), Ok(None));
        let held = decoder.buffered_capacity();
        assert!(held >= 20_000 - 8);
        decoder.shrink_idle(); // a message is in progress: nothing happens
        assert_eq!(decoder.buffered_capacity(), held);
        let mut rest = frame[20_000..].to_vec();
        let event = decoder.decode(&mut rest).map(|d| d.event.map(Owned::from));
        assert_eq!(event, Ok(Some(Owned::Binary(payload))));
        decoder.shrink_idle();
        assert_eq!(decoder.buffered_capacity(), 0);

        // A small split message keeps its small buffer when idle (no allocation
        // for the next one).
        let frame = text(true, b"a short message split in two");
        let (a, b) = frame.split_at(10);
        let mut harness = Harness::new(Limits::default());
        assert_eq!(harness.feed(a), Ok(()));
        assert_eq!(harness.feed(b), Ok(()));
        let kept = harness.decoder.buffered_capacity();
        assert!((1..=IDLE_MESSAGE_CAPACITY).contains(&kept), "{kept}");
    }

    #[test]
    fn big_messages_in_uneven_pieces_decode_the_same() {
        // Two rounds of the mixed stream with a 200 KB binary message: the second
        // round reuses (or regrows) the buffer the first left, at every read size.
        let (stream, events) = mixed_stream(200_000);
        let close = client_frame(true, OpCode::Close, &close_payload(1001, b"gone"), KEY);
        assert!(stream.ends_with(&close));
        let mut twice = stream[..stream.len() - close.len()].to_vec();
        twice.extend(&stream);
        let mut expected = events[..events.len() - 1].to_vec();
        expected.extend(events);
        for read in [1, 7, 1000, 4096, 8192, 65_535, 65_536, 65_537, 300_000] {
            let mut decoder = Decoder::default();
            let result = feed_reads(&mut decoder, &twice, read).map(|(events, _)| events);
            assert_eq!(result.as_ref(), Ok(&expected), "read {read}");
        }
        let cuts: Vec<usize> = (0..twice.len()).step_by(9_973).collect();
        assert_eq!(decode_in_pieces(&twice, &cuts), Ok(expected));
    }

    #[test]
    fn reserve_ahead_is_bounded_by_the_frame_and_amortized() {
        fn reserved(incoming: usize, frame_rest: u64) -> usize {
            let mut buf = MessageBuf::default();
            buf.reserve_ahead(incoming, frame_rest);
            buf.capacity()
        }
        // Exactly the rest of the frame when the evidence covers half of it.
        assert_eq!(reserved(65_522, 1 << 20), 1 << 20);
        // Never more than the frame announces.
        assert_eq!(reserved(10, 100), 100);
        // A claim far beyond the evidence gets the allowance.
        assert_eq!(reserved(1, 1 << 24), RESERVE_FLOOR);
        assert_eq!(reserved(100_000, 1 << 24), 100_000 * RESERVE_FACTOR);
        // Many small fragments: the capacity at least doubles when it grows.
        let mut buf = MessageBuf::default();
        let mut grows = 0;
        for _ in 0..10_000 {
            let before = buf.capacity();
            buf.append_unmasked(&[0; 10], KEY, 0, 10);
            if buf.capacity() != before {
                grows += 1;
            }
        }
        assert_eq!(buf.len(), 100_000);
        assert!(grows <= 20, "{grows}");
    }

    #[test]
    fn the_message_buffer_reuses_its_bytes_without_stale_data() {
        // A long message, then a shorter one over the same bytes: the second is
        // exactly its own bytes, none of the first's past its end.
        let mut buf = MessageBuf::default();
        let long = client_frame(true, OpCode::Binary, &[0xAA; 1000], KEY);
        buf.append_unmasked(&long[8..], KEY, 0, 1000);
        assert_eq!(buf.message(), &[0xAA; 1000][..]);
        let address = buf.bytes.as_ptr();
        buf.clear();
        assert!(buf.is_empty());
        let short = client_frame(true, OpCode::Binary, b"short", KEY);
        let piece = buf.append_unmasked(&short[6..8], KEY, 0, 5).to_vec();
        assert_eq!(piece, b"sh");
        buf.append_unmasked(&short[8..], KEY, 2, 3);
        assert_eq!(buf.message(), b"short");
        assert_eq!(buf.bytes.as_ptr(), address, "no new allocation");
    }
}
