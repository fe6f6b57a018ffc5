//! What can go wrong in a WebSocket connection, and how each fault is answered.
//!
//! Two stages, two enums:
//!
//! - [`HandshakeError`]: the opening handshake is still HTTP, so a bad one is answered
//!   with an HTTP status (400, 403 or 426) and a body naming the rule, then the
//!   connection closes (RFC 6455 §4.2.1: "the server MUST stop processing the client's
//!   handshake and return an HTTP response with an appropriate error code").
//! - [`WsError`]: once frames flow, a broken rule is answered by *failing the
//!   connection* (§7.1.7): send a close frame whose status code says what kind of
//!   fault it was ([`WsError::close_code`]: 1002 protocol error, 1007 invalid data,
//!   1009 too big) and whose reason is the `Display` text, then close the TCP
//!   connection. Nothing the peer sends afterwards is processed.
//!
//! Both are fieldless and `Copy`, like httparse's errors: the variant says everything.

use thiserror::Error;

use super::coding::CloseCode;

/// A handshake the server will not accept, with the rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The request does not ask for a WebSocket at all: no `Upgrade` header whose
    /// token list holds `websocket` (§4.2.1 item 3).
    #[error(
        "not a WebSocket upgrade: the Upgrade header must include websocket (RFC 6455 section 4.2.1)"
    )]
    NotUpgrade,
    /// The method is not GET (§4.1: "The method of the request MUST be GET").
    #[error("the opening handshake must be a GET request (RFC 6455 section 4.2.1)")]
    MethodNotGet,
    /// HTTP/1.0: the handshake needs HTTP/1.1 or later (§4.2.1 item 1).
    #[error("the opening handshake needs HTTP/1.1 or later (RFC 6455 section 4.2.1)")]
    HttpVersionTooOld,
    /// The Connection header is missing or its token list lacks `Upgrade`
    /// (§4.2.1 item 4).
    #[error("the Connection header must include Upgrade (RFC 6455 section 4.2.1)")]
    ConnectionLacksUpgrade,
    /// No Sec-WebSocket-Key header (§4.2.1 item 5).
    #[error("missing Sec-WebSocket-Key header (RFC 6455 section 4.2.1)")]
    MissingKey,
    /// More than one Sec-WebSocket-Key header (§11.3.1: "MUST NOT appear more than
    /// once in an HTTP request").
    #[error("more than one Sec-WebSocket-Key header (RFC 6455 section 11.3.1)")]
    DuplicateKey,
    /// A Sec-WebSocket-Key that is not the base64 encoding of 16 bytes (§4.2.1 item 5,
    /// §4.1: "a randomly selected 16-byte value that has been base64-encoded").
    #[error("Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.2.1)")]
    InvalidKey,
    /// No Sec-WebSocket-Version header (§4.2.1 item 6).
    #[error("missing Sec-WebSocket-Version header (RFC 6455 section 4.2.1)")]
    MissingVersion,
    /// More than one Sec-WebSocket-Version header (§11.3.5).
    #[error("more than one Sec-WebSocket-Version header (RFC 6455 section 11.3.5)")]
    DuplicateVersion,
    /// A Sec-WebSocket-Version other than 13. Answered with 426 and
    /// `Sec-WebSocket-Version: 13`, so the client can retry with a version the server
    /// speaks (§4.2.2 item 4, §4.4).
    #[error("unsupported WebSocket version: this server speaks version 13 (RFC 6455 section 4.4)")]
    UnsupportedVersion,
    /// The Origin is not on the server's allow-list (§4.2.2 item 4, §10.2: "If the
    /// server does not wish to accept this connection, it MUST return an appropriate
    /// HTTP error code (e.g., 403 Forbidden)").
    #[error("origin not allowed (RFC 6455 section 10.2)")]
    OriginNotAllowed,
}

impl HandshakeError {
    /// The HTTP status code this fault is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::OriginNotAllowed => 403,
            _ => 400,
        }
    }
}

/// A received frame or message that breaks RFC 6455: the connection fails with
/// [`WsError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WsError {
    /// A client frame without the MASK bit (§5.1: "The server MUST close the
    /// connection upon receiving a frame that is not masked").
    #[error("client frames must be masked (RFC 6455 section 5.1)")]
    UnmaskedFrame,
    /// RSV1, RSV2 or RSV3 set, but no extension that gives them a meaning was
    /// negotiated (§5.2: "MUST _Fail the WebSocket Connection_").
    #[error("reserved bits set without a negotiated extension (RFC 6455 section 5.2)")]
    ReservedBitsSet,
    /// An opcode from 0x3-0x7 or 0xB-0xF (§5.2: "If an unknown opcode is received, the
    /// receiving endpoint MUST _Fail the WebSocket Connection_").
    #[error("reserved opcode (RFC 6455 section 5.2)")]
    ReservedOpcode,
    /// A 64-bit payload length with its most significant bit set (§5.2: "the most
    /// significant bit MUST be 0").
    #[error("64-bit payload length with the most significant bit set (RFC 6455 section 5.2)")]
    LengthTopBitSet,
    /// A control frame with FIN clear (§5.5: "Control frames ... MUST NOT be
    /// fragmented").
    #[error("control frames must not be fragmented (RFC 6455 section 5.5)")]
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload (§5.5: "All control frames
    /// MUST have a payload length of 125 bytes or less").
    #[error("control frame payload longer than 125 bytes (RFC 6455 section 5.5)")]
    ControlFrameTooLong,
    /// A continuation frame with no fragmented message in progress (§5.4).
    #[error("continuation frame without a message in progress (RFC 6455 section 5.4)")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still in progress: the
    /// fragments of one message may not be interleaved with another (§5.4).
    #[error("new data frame while a fragmented message is in progress (RFC 6455 section 5.4)")]
    ExpectedContinuation,
    /// A close frame with a 1-byte payload: a body, if present, starts with a 2-byte
    /// status code (§5.5.1).
    #[error(
        "close frame payload of 1 byte: a close body starts with a 2-byte code (RFC 6455 section 5.5.1)"
    )]
    CloseFrameOneByte,
    /// A close frame whose status code may not be sent (§7.4.1, §7.4.2, §11.7).
    #[error("invalid close code (RFC 6455 section 7.4)")]
    InvalidCloseCode,
    /// A close frame whose reason is not UTF-8 (§5.5.1: "the body ... MAY contain
    /// UTF-8-encoded data"; §8.1: invalid UTF-8 fails the connection).
    #[error("close reason is not valid UTF-8 (RFC 6455 section 5.5.1)")]
    InvalidCloseReason,
    /// A text message that is not valid UTF-8 (§5.6, §8.1), detected as soon as the
    /// bad bytes arrived.
    #[error("text message is not valid UTF-8 (RFC 6455 section 8.1)")]
    InvalidUtf8,
    /// A frame whose payload is over the configured limit (§10.4: "implementations
    /// SHOULD impose a limit on frame sizes").
    #[error("frame payload larger than the limit (RFC 6455 section 10.4)")]
    FrameTooLarge,
    /// A message whose fragments add up to more than the configured limit (§10.4).
    #[error("message larger than the limit (RFC 6455 section 10.4)")]
    MessageTooLarge,
}

impl WsError {
    /// The close code the connection is failed with (§7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            WsError::FrameTooLarge | WsError::MessageTooLarge => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_7_4_1_each_error_knows_its_close_code() {
        assert_eq!(WsError::UnmaskedFrame.close_code(), CloseCode(1002));
        assert_eq!(WsError::InvalidCloseCode.close_code(), CloseCode(1002));
        assert_eq!(WsError::InvalidUtf8.close_code(), CloseCode(1007));
        assert_eq!(WsError::InvalidCloseReason.close_code(), CloseCode(1007));
        assert_eq!(WsError::MessageTooLarge.close_code(), CloseCode(1009));
        assert_eq!(HandshakeError::MissingKey.status(), 400);
        assert_eq!(HandshakeError::UnsupportedVersion.status(), 426);
        assert_eq!(HandshakeError::OriginNotAllowed.status(), 403);
    }

    #[test]
    fn close_reasons_fit_in_a_close_frame() {
        // A close frame carries at most 123 bytes of reason (125 minus the code).
        for e in [
            WsError::UnmaskedFrame,
            WsError::CloseFrameOneByte,
            WsError::ExpectedContinuation,
            WsError::LengthTopBitSet,
            WsError::ReservedBitsSet,
        ] {
            assert!(e.to_string().len() <= 123, "{e}");
        }
    }
}
