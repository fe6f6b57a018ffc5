//! The numbers on the wire: opcodes (RFC 6455 §5.2, §11.8) and close status codes
//! (§7.4, §11.7).
//!
//! ```text
//! %x0        continuation frame          (§5.4)
//! %x1        text frame                  (§5.6)
//! %x2        binary frame                (§5.6)
//! %x3-7      reserved for further non-control frames
//! %x8        connection close            (§5.5.1)
//! %x9        ping                        (§5.5.2)
//! %xA        pong                        (§5.5.3)
//! %xB-F      reserved for further control frames
//! ```
//!
//! The high bit of the opcode splits the space in two: opcodes 0x8 and up are
//! *control* frames, which carry at most 125 bytes and are never fragmented (§5.5).
//! A reserved opcode still parses (as [`OpCode::Reserved`], the way tungstenite keeps
//! `Reserved(u8)`), so the decoder can answer it with the right close code instead of
//! a parse failure.

use std::fmt;

/// The 4-bit opcode of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: the next fragment of the message in progress (§5.4).
    Continuation,
    /// 0x1: the first frame of a text message: UTF-8 payload (§5.6).
    Text,
    /// 0x2: the first frame of a binary message: arbitrary payload (§5.6).
    Binary,
    /// 0x8: the close handshake: optional status code and reason (§5.5.1).
    Close,
    /// 0x9: a ping; the peer answers with a pong carrying the same payload (§5.5.2).
    Ping,
    /// 0xA: a pong: the answer to a ping, or an unsolicited heartbeat (§5.5.3).
    Pong,
    /// 0x3-0x7 and 0xB-0xF: reserved for future use. Receiving one is a protocol
    /// error unless an extension defined it (§5.2); this crate negotiates none.
    Reserved(u8),
}

impl OpCode {
    /// The opcode for the low 4 bits of `bits` (the upper bits are ignored).
    pub fn from_bits(bits: u8) -> OpCode {
        match bits & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }

    /// The 4-bit value sent on the wire.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(bits) => bits & 0x0F,
        }
    }

    /// Whether this is a control frame: the opcode's high bit is set (§5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A close status code (§7.4): why an endpoint is closing the connection.
///
/// A plain `u16` with names for the registered values, so any code that arrives can
/// be represented and then judged by [`CloseCode::is_valid_on_wire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure; the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutting down, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: "no status code was present". Reserved: never sent in a close frame,
    /// only reported locally for an empty close.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Reserved: never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data did not match its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy (here: a client that does not
    /// keep up with its outbound queue).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message was too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1015: TLS handshake failure. Reserved: never sent.
    pub const TLS_FAILURE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame on the wire (§7.4.1, §7.4.2, and
    /// the IANA registry of §11.7, as the Autobahn test suite checks it):
    ///
    /// - 1000-1003 and 1007-1014: defined by the RFC or registered with IANA;
    /// - 3000-3999: registered by libraries and frameworks; 4000-4999: private use.
    ///
    /// Everything else is invalid in a received close frame: below 1000 ("not
    /// used"), 1004 (reserved), 1005, 1006 and 1015 (MUST NOT be set in a close
    /// frame, §7.4.1), 1016-2999 (reserved for future RFCs, unassigned) and 5000 up.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_2_opcodes_round_trip_all_16_values() {
        for bits in 0u8..16 {
            let op = OpCode::from_bits(bits);
            assert_eq!(op.bits(), bits);
            assert_eq!(op.is_control(), bits >= 8);
            let reserved = matches!(bits, 0x3..=0x7 | 0xB..=0xF);
            assert_eq!(matches!(op, OpCode::Reserved(_)), reserved, "{bits:#x}");
        }
    }

    #[test]
    fn rfc6455_7_4_valid_close_codes() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ];
        let invalid = [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in valid.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(CloseCode(code).is_valid_on_wire(), "{code}");
        }
        for code in invalid {
            assert!(!CloseCode(code).is_valid_on_wire(), "{code}");
        }
    }
}
