//! Frames: the header parser and the server's frame writer (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! :                     Payload Data continued ...                :
//! + - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - +
//! |                     Payload Data continued ...                |
//! +---------------------------------------------------------------+
//! ```
//!
//! - **FIN**: this is the last frame of a message. A message can be split into
//!   fragments (§5.4): a text or binary frame with FIN clear, continuation frames,
//!   and a last continuation with FIN set.
//! - **RSV1-3**: reserved for extensions (permessage-deflate uses RSV1). This crate
//!   negotiates none, so they must be 0.
//! - **opcode**: what the frame is, see [`OpCode`].
//! - **MASK** and **Masking-key**: set on every frame from a client, never on a frame
//!   from a server (§5.1, §5.3; see [`super::mask`]).
//! - **Payload len**: 0-125 is the length itself; 126 means the next 2 bytes hold it
//!   (16-bit, big-endian); 127 means the next 8 bytes hold it (64-bit, top bit 0).
//!   So a header is 2 to 14 bytes: `2 + (0, 2 or 8) + (0 or 4)`.
//!
//! # Minimal length encoding
//!
//! §5.2 adds: "In all cases, the minimal number of bytes MUST be used to encode the
//! length, for example, the length of a 124-byte-long string can't be encoded as the
//! sequence 126, 0, 124." That is a rule for the *sender*, and this writer always
//! follows it. The RFC gives no rule for a receiver that sees a longer form than
//! needed, and the value is never ambiguous, so [`FrameHeader::parse`] accepts it, as
//! tungstenite does and the Autobahn suite expects. Failing the connection would only
//! break peers over a redundant zero byte. The one encoding rule with a receiving
//! consequence is enforced: the 64-bit form must have its top bit clear.
//!
//! # Parsing
//!
//! [`FrameHeader::parse`] looks at the front of a byte slice. If the header is not
//! all there it answers [`Status::Partial`] and consumes nothing; otherwise it returns
//! the header and its length. It checks only the header's syntax: which frames a
//! server accepts (masked, no RSV, known opcodes, control frame rules) is decided by
//! the [`super::decoder::Decoder`], which knows the connection's state.
//!
//! # Writing
//!
//! The `write_*` functions append one unmasked frame, as a server sends it, to the
//! caller's buffer. [`text_frame`] and [`binary_frame`] encode a whole message once
//! into shared [`Bytes`], for a broadcast that sends the same frame to many clients.

use bytes::Bytes;

use super::coding::{CloseCode, OpCode};
use super::error::WsError;
use crate::http::Status;

/// Most payload bytes a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of key.
pub const MAX_HEADER_LEN: usize = 14;

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// RSV1: meaningful only with an extension (permessage-deflate's "compressed").
    pub rsv1: bool,
    /// RSV2: meaningful only with an extension.
    pub rsv2: bool,
    /// RSV3: meaningful only with an extension.
    pub rsv3: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, present exactly when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// How many payload bytes follow the header.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header as this server sends it: no RSV bits, no mask.
    pub fn server(fin: bool, opcode: OpCode, payload_len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parse a header from the front of `buf`. `Complete((header, header_len))` when
    /// it is all there, `Partial` (consuming nothing) when more bytes are needed.
    ///
    /// ```
    /// use wirepatterns::http::Status;
    /// use wirepatterns::ws::{FrameHeader, OpCode};
    ///
    /// // RFC 6455 §5.7: a single-frame masked text message, "Hello".
    /// let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    /// assert_eq!(FrameHeader::parse(&bytes[..5]), Ok(Status::Partial));
    /// let Ok(Status::Complete((header, len))) = FrameHeader::parse(&bytes) else { panic!() };
    /// assert_eq!((header.fin, header.opcode, header.payload_len, len), (true, OpCode::Text, 5, 6));
    /// assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Status<(FrameHeader, usize)>, WsError> {
        let [first, second, ..] = *buf else {
            return Ok(Status::Partial);
        };
        let (payload_len, mut len) = match second & 0x7F {
            126 => match buf.get(2..4) {
                Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
                _ => return Ok(Status::Partial),
            },
            127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(bytes) => {
                    let n = u64::from_be_bytes(bytes);
                    // §5.2: "the most significant bit MUST be 0".
                    if n >> 63 != 0 {
                        return Err(WsError::LengthTopBitSet);
                    }
                    (n, 10)
                }
                None => return Ok(Status::Partial),
            },
            short => (u64::from(short), 2),
        };
        let mask = if second & 0x80 != 0 {
            match buf
                .get(len..len + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
            {
                Some(key) => {
                    len += 4;
                    Some(key)
                }
                None => return Ok(Status::Partial),
            }
        } else {
            None
        };
        let header = FrameHeader {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: first & 0x20 != 0,
            rsv3: first & 0x10 != 0,
            opcode: OpCode::from_bits(first),
            mask,
            payload_len,
        };
        Ok(Status::Complete((header, len)))
    }

    /// How many bytes [`FrameHeader::write`] produces for this header.
    pub fn encoded_len(&self) -> usize {
        let length_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + length_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Append the header to `out`, with the length in its minimal form (§5.2).
    pub fn write(&self, out: &mut Vec<u8>) {
        let first = u8::from(self.fin) << 7
            | u8::from(self.rsv1) << 6
            | u8::from(self.rsv2) << 5
            | u8::from(self.rsv3) << 4
            | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        out.push(first);
        match self.payload_len {
            // The match arms bound each value, so the casts below are exact.
            len @ 0..=125 => out.push(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// A close frame's body (§5.5.1): a status code and a UTF-8 reason, which may be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// Why the sender is closing.
    pub code: CloseCode,
    /// Text for humans and logs; not meant for the user (§7.1.6), may be empty.
    pub reason: &'a str,
}

/// Read a received close frame's payload (§5.5.1): empty (no code), or a 2-byte
/// big-endian code followed by a UTF-8 reason.
///
/// Errors: a 1-byte payload or a code that may not be sent (1002), a reason that is
/// not UTF-8 (1007).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame<'_>>, WsError> {
    match *payload {
        [] => Ok(None),
        [_] => Err(WsError::CloseFrameOneByte),
        [hi, lo, ref reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([hi, lo]));
            if !code.is_valid_on_wire() {
                return Err(WsError::InvalidCloseCode);
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

/// Append an unmasked frame with FIN set: one whole message, or a control frame.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    out.reserve(MAX_HEADER_LEN + payload.len());
    FrameHeader::server(true, opcode, payload.len() as u64).write(out);
    out.extend_from_slice(payload);
}

/// Append a text message as one frame.
pub fn write_text(out: &mut Vec<u8>, text: &str) {
    write_frame(out, OpCode::Text, text.as_bytes());
}

/// Append a binary message as one frame.
pub fn write_binary(out: &mut Vec<u8>, data: &[u8]) {
    write_frame(out, OpCode::Binary, data);
}

/// Append a ping. A control frame carries at most 125 bytes (§5.5), so a longer
/// payload is cut to its first 125 bytes.
pub fn write_ping(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(out, OpCode::Ping, control_payload(payload));
}

/// Append a pong: the answer to a ping, with "exactly the same Application data"
/// (§5.5.3). Cut to 125 bytes like [`write_ping`] (a valid ping never has more).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    write_frame(out, OpCode::Pong, control_payload(payload));
}

/// Append a close frame: empty for `None`, else the code and reason (§5.5.1). The
/// reason is cut, at a character boundary, to the 123 bytes that fit beside the code.
pub fn write_close(out: &mut Vec<u8>, close: Option<CloseFrame<'_>>) {
    let Some(CloseFrame { code, reason }) = close else {
        write_frame(out, OpCode::Close, &[]);
        return;
    };
    let reason = truncate_at_char_boundary(reason, MAX_CONTROL_PAYLOAD - 2);
    FrameHeader::server(true, OpCode::Close, 2 + reason.len() as u64).write(out);
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
}

/// One text message as frame bytes, encoded once and shared: cloning [`Bytes`] is a
/// reference count, so a broadcast to many clients copies the frame into each
/// client's output but never encodes it again.
pub fn text_frame(text: &str) -> Bytes {
    let mut out = Vec::new();
    write_text(&mut out, text);
    Bytes::from(out)
}

/// One binary message as frame bytes, encoded once and shared (see [`text_frame`]).
pub fn binary_frame(data: &[u8]) -> Bytes {
    let mut out = Vec::new();
    write_binary(&mut out, data);
    Bytes::from(out)
}

fn control_payload(payload: &[u8]) -> &[u8] {
    payload.get(..MAX_CONTROL_PAYLOAD).unwrap_or(payload)
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::mask::apply_mask;

    fn parse(bytes: &[u8]) -> (FrameHeader, usize) {
        match FrameHeader::parse(bytes) {
            Ok(Status::Complete(parsed)) => parsed,
            other => panic!("not a complete header: {other:?}"),
        }
    }

    #[test]
    fn rfc6455_5_7_unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, len) = parse(&bytes);
        assert_eq!(h, FrameHeader::server(true, OpCode::Text, 5));
        assert_eq!(&bytes[len..], b"Hello");
        let mut out = Vec::new();
        write_text(&mut out, "Hello");
        assert_eq!(out, bytes);
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        let mut bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, len) = parse(&bytes);
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, len),
            (true, OpCode::Text, 5, 6)
        );
        let key = h.mask.unwrap_or_default();
        apply_mask(&mut bytes[len..], key, 0);
        assert_eq!(&bytes[len..], b"Hello");
    }

    #[test]
    fn rfc6455_5_7_fragmented_hello() {
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let last = [0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(parse(&first).0, FrameHeader::server(false, OpCode::Text, 3));
        assert_eq!(
            parse(&last).0,
            FrameHeader::server(true, OpCode::Continuation, 2)
        );
    }

    #[test]
    fn rfc6455_5_7_ping_and_pong_hello() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        assert_eq!(parse(&ping).0, FrameHeader::server(true, OpCode::Ping, 5));
        let mut out = Vec::new();
        write_ping(&mut out, b"Hello");
        assert_eq!(out, ping);
        out.clear();
        write_pong(&mut out, b"Hello");
        assert_eq!(out, [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn rfc6455_5_2_length_encodings_7_16_64() {
        // §5.7: "256 bytes binary message in a single unmasked frame" and
        // "64KiB binary message in a single unmasked frame".
        let cases: [(u64, &[u8]); 6] = [
            (0, &[0x82, 0x00]),
            (125, &[0x82, 0x7D]),
            (126, &[0x82, 0x7E, 0x00, 0x7E]),
            (256, &[0x82, 0x7E, 0x01, 0x00]),
            (65535, &[0x82, 0x7E, 0xFF, 0xFF]),
            (
                65536,
                &[0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
            ),
        ];
        for (len, bytes) in cases {
            let header = FrameHeader::server(true, OpCode::Binary, len);
            let mut out = Vec::new();
            header.write(&mut out);
            assert_eq!(out, bytes, "length {len}");
            assert_eq!(header.encoded_len(), bytes.len());
            assert_eq!(parse(bytes), (header, bytes.len()));
        }
    }

    #[test]
    fn rfc6455_5_2_non_minimal_length_is_accepted() {
        // 5 encoded in the 16-bit and 64-bit forms: against the sender's MUST, but
        // unambiguous (see the module docs).
        assert_eq!(parse(&[0x82, 0x7E, 0x00, 0x05]).0.payload_len, 5);
        assert_eq!(
            parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 5]).0.payload_len,
            5
        );
    }

    #[test]
    fn rfc6455_5_2_64_bit_length_with_top_bit_set_is_1002() {
        let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        assert_eq!(FrameHeader::parse(&bytes), Err(WsError::LengthTopBitSet));
        assert_eq!(
            WsError::LengthTopBitSet.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn an_incomplete_header_is_partial_at_every_length() {
        for len in [0u64, 200, 70_000] {
            let header = FrameHeader {
                mask: Some([1, 2, 3, 4]),
                ..FrameHeader::server(false, OpCode::Binary, len)
            };
            let mut out = Vec::new();
            header.write(&mut out);
            for cut in 0..out.len() {
                assert_eq!(
                    FrameHeader::parse(&out[..cut]),
                    Ok(Status::Partial),
                    "{len} {cut}"
                );
            }
            assert_eq!(parse(&out), (header, out.len()));
        }
    }

    #[test]
    fn header_round_trips_every_bit() {
        for first in 0..=255u8 {
            for mask in [None, Some([9, 8, 7, 6])] {
                let mut bytes = vec![first, if mask.is_some() { 0x80 | 3 } else { 3 }];
                bytes.extend(mask.iter().flatten());
                let (h, len) = parse(&bytes);
                assert_eq!(len, bytes.len());
                let mut out = Vec::new();
                h.write(&mut out);
                assert_eq!(out, bytes);
            }
        }
    }

    #[test]
    fn rfc6455_5_5_1_close_payloads() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(
            parse_close_payload(&[0x03]),
            Err(WsError::CloseFrameOneByte)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, b'b', b'y', b'e']),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "bye"
            }))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xED]),
            Err(WsError::InvalidCloseCode)
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xE8, 0xFF]),
            Err(WsError::InvalidCloseReason)
        );
    }

    #[test]
    fn close_writes_code_and_truncated_reason() {
        let mut out = Vec::new();
        write_close(&mut out, None);
        assert_eq!(out, [0x88, 0x00]);

        out.clear();
        write_close(
            &mut out,
            Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: "bye",
            }),
        );
        assert_eq!(out, [0x88, 0x05, 0x03, 0xE8, b'b', b'y', b'e']);

        // 62 two-byte characters (124 bytes) do not fit in 123: cut to 61 of them.
        let long = "é".repeat(62);
        out.clear();
        write_close(
            &mut out,
            Some(CloseFrame {
                code: CloseCode(4000),
                reason: &long,
            }),
        );
        assert_eq!(out[1], 2 + 122);
        assert_eq!(
            parse_close_payload(&out[2..]).map(|c| c.map(|c| c.reason.len())),
            Ok(Some(122))
        );
    }

    #[test]
    fn shared_frames_match_the_writers() {
        let mut out = Vec::new();
        write_text(&mut out, "hi all");
        assert_eq!(&text_frame("hi all")[..], &out[..]);
        let data = vec![7u8; 300];
        out.clear();
        write_binary(&mut out, &data);
        assert_eq!(&binary_frame(&data)[..], &out[..]);
    }
}
