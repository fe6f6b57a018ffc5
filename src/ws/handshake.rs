//! The opening handshake, server side (RFC 6455 §4.2).
//!
//! A WebSocket starts life as an HTTP/1.1 request that asks to switch protocols:
//!
//! ```text
//! GET /chat HTTP/1.1
//! Host: server.example.com
//! Upgrade: websocket
//! Connection: Upgrade
//! Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
//! Origin: http://example.com
//! Sec-WebSocket-Version: 13
//! ```
//!
//! and the server agrees with a 101, after which both sides speak frames:
//!
//! ```text
//! HTTP/1.1 101 Switching Protocols
//! Upgrade: websocket
//! Connection: Upgrade
//! Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! ```
//!
//! The accept value proves that the server read the key and understood the request as
//! a WebSocket handshake (so a plain HTTP server, or a cache, cannot be mistaken for
//! one): `base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))` (§4.2.2 item
//! 5.4). It is not security: anyone can compute it.
//!
//! # What is checked (§4.2.1), in order
//!
//! 1. `Upgrade` holds the token `websocket` (any case). Without it the request is not
//!    a WebSocket handshake at all ([`is_upgrade_request`]) and is left to the HTTP
//!    side. Each remaining rule answers 400 unless noted.
//! 2. The method is GET, and the version HTTP/1.1 or later.
//! 3. `Connection` holds the token `Upgrade` (any case); it may be one of several
//!    tokens, as Firefox sends `Connection: keep-alive, Upgrade`.
//! 4. Exactly one `Sec-WebSocket-Key`, the base64 encoding of 16 bytes.
//! 5. Exactly one `Sec-WebSocket-Version`; other than `13`: 426, with
//!    `Sec-WebSocket-Version: 13` to tell the client what to retry with (§4.4).
//! 6. With an origin allow-list configured, an `Origin` not on it: 403 (§10.2).
//!
//! `Host` is required by HTTP/1.1 itself and checked by the request parser.
//! Subprotocols and extensions (`Sec-WebSocket-Protocol`, `-Extensions`) are not
//! negotiated: the server selects none, which §4.2.2 allows, and the client then
//! knows that RSV bits and extension opcodes stay unused.
//!
//! # Origins
//!
//! Browsers send `Origin` with every WebSocket handshake, naming the site whose page
//! opened it; other clients usually send none. The allow-list is a defence against
//! other web sites using a visitor's browser to connect (§10.2), so it turns away a
//! browser on an unlisted site but lets through a request without `Origin`: such a
//! client is not a browser, and could send any Origin it liked anyway. Origins are
//! compared as whole ASCII strings, ignoring case: `http://127.0.0.1:8080`.

use base64::prelude::{BASE64_STANDARD, Engine as _};
use sha1::{Digest, Sha1};

use super::error::HandshakeError;
use crate::http::{Request, Version};

/// The GUID that §1.3 fixes for computing `Sec-WebSocket-Accept`.
pub const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The one protocol version this server speaks (§4.1, §4.4).
pub const WEBSOCKET_VERSION: &str = "13";

/// How the server decides whether to accept a handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// The origins allowed to connect, such as `http://127.0.0.1:8080`. `None`
    /// accepts any (the default, as the seed's node server does); with `Some`, a
    /// handshake whose `Origin` is not in the list is answered 403.
    pub allowed_origins: Option<Vec<String>>,
}

/// An accepted handshake: what the application may want to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted<'a> {
    /// The `Origin` header's value, if the client sent one (browsers always do).
    pub origin: Option<&'a [u8]>,
    /// The request-target, such as `/chat`.
    pub target: &'a str,
    /// The `Sec-WebSocket-Accept` value that was sent.
    pub accept: String,
}

/// Whether `request` asks for a WebSocket: its `Upgrade` header holds the token
/// `websocket`, in any case (§4.2.1 item 3). Such a request is answered by
/// [`accept`] (with 101 or an error status), anything else by the HTTP side.
pub fn is_upgrade_request(request: &Request<'_>) -> bool {
    has_token(request, "upgrade", "websocket")
}

/// The `Sec-WebSocket-Accept` value for a key (§4.2.2 item 5.4).
///
/// ```
/// use wirepatterns::ws::handshake::accept_key;
///
/// // RFC 6455 §1.3's own example.
/// assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID.as_bytes());
    BASE64_STANDARD.encode(sha1.finalize())
}

/// Check a handshake request (see the module docs) and, if it is acceptable, append
/// the 101 response to `out`. On error nothing is written; send
/// [`write_rejection`]'s response and close the connection.
///
/// ```
/// use wirepatterns::http::{RequestParser, Status};
/// use wirepatterns::ws::handshake::{HandshakeConfig, accept};
///
/// let bytes = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";
/// let mut parser = RequestParser::default();
/// let Ok(Status::Complete(request)) = parser.parse(bytes) else { panic!() };
/// let mut out = Vec::new();
/// let accepted = accept(&request, &HandshakeConfig::default(), &mut out).unwrap();
/// assert_eq!(accepted.origin, Some(&b"http://example.com"[..]));
/// assert_eq!(
///     out,
///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
///       Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
/// );
/// ```
pub fn accept<'a>(
    request: &Request<'a>,
    config: &HandshakeConfig,
    out: &mut Vec<u8>,
) -> Result<Accepted<'a>, HandshakeError> {
    if !is_upgrade_request(request) {
        return Err(HandshakeError::NotUpgrade);
    }
    // §4.1 item 2: "The method of the request MUST be GET, and the HTTP version MUST
    // be at least 1.1."
    if request.method() != "GET" {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.version() < Version::Http11 {
        return Err(HandshakeError::HttpVersionTooOld);
    }
    // §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade",
    // treated as an ASCII case-insensitive value."
    if !has_token(request, "connection", "upgrade") {
        return Err(HandshakeError::ConnectionLacksUpgrade);
    }
    // §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value
    // that, when decoded, is 16 bytes in length."
    let key = match single_header(request, "sec-websocket-key") {
        Single::None => return Err(HandshakeError::MissingKey),
        Single::Many => return Err(HandshakeError::DuplicateKey),
        Single::One(key) => key,
    };
    if !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    // §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    match single_header(request, "sec-websocket-version") {
        Single::None => return Err(HandshakeError::MissingVersion),
        Single::Many => return Err(HandshakeError::DuplicateVersion),
        Single::One(version) if version != WEBSOCKET_VERSION.as_bytes() => {
            return Err(HandshakeError::UnsupportedVersion);
        }
        Single::One(_) => {}
    }
    let origin = request.header("origin");
    if let (Some(allowed), Some(origin)) = (&config.allowed_origins, origin)
        && !allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
    {
        return Err(HandshakeError::OriginNotAllowed);
    }

    let accept = accept_key(key);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    Ok(Accepted {
        origin,
        target: request.target(),
        accept,
    })
}

/// Append the response that refuses a handshake: the error's status, a plain-text
/// body naming the broken rule, and `Connection: close`. A 426 also carries
/// `Sec-WebSocket-Version: 13` (§4.4) and, as RFC 9110 §15.5.22 requires of every
/// 426, an `Upgrade` header (which §7.8 pairs with an `Upgrade` connection option).
///
/// ```
/// use wirepatterns::ws::HandshakeError;
/// use wirepatterns::ws::handshake::write_rejection;
///
/// let mut out = Vec::new();
/// write_rejection(HandshakeError::MissingKey, &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
/// assert!(text.ends_with("\r\n\r\nmissing Sec-WebSocket-Key header (RFC 6455 section 4.2.1)\n"));
/// ```
pub fn write_rejection(error: HandshakeError, out: &mut Vec<u8>) {
    let status = error.status();
    let phrase = match status {
        403 => "Forbidden",
        426 => "Upgrade Required",
        _ => "Bad Request",
    };
    let body = format!("{error}\n");
    let version_fields = if status == 426 {
        "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n"
    } else {
        "Connection: close\r\n"
    };
    let head = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{version_fields}\r\n",
        body.len()
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.as_bytes());
}

/// Whether any `name` field line holds `token` in its comma-separated list
/// (RFC 9110 §5.6.1: `#token`, elements separated by `OWS "," OWS`, empty elements
/// allowed), ignoring ASCII case. A list may be split over several field lines
/// (§5.3), so every line with that name is searched.
fn has_token(request: &Request<'_>, name: &str, token: &str) -> bool {
    request
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|element| element.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How many times a field that may appear only once is present.
enum Single<'a> {
    None,
    One(&'a [u8]),
    Many,
}

fn single_header<'a>(request: &Request<'a>, name: &str) -> Single<'a> {
    let mut values = request
        .headers()
        .filter(|h| h.name.eq_ignore_ascii_case(name));
    match (values.next(), values.next()) {
        (None, _) => Single::None,
        (Some(h), None) => Single::One(h.value),
        (Some(_), Some(_)) => Single::Many,
    }
}

/// A key is 16 bytes in base64: exactly 24 characters, the last two `==`.
fn is_valid_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64_STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{RequestParser, Status};

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// Run the handshake on `head`, returning the response bytes or the error.
    fn handshake_with(head: &str, config: &HandshakeConfig) -> Result<Vec<u8>, HandshakeError> {
        let mut parser = RequestParser::default();
        let Ok(Status::Complete(request)) = parser.parse(head.as_bytes()) else {
            panic!("test request does not parse: {head:?}");
        };
        let mut out = Vec::new();
        accept(&request, config, &mut out).map(|_| out)
    }

    fn handshake(head: &str) -> Result<Vec<u8>, HandshakeError> {
        handshake_with(head, &HandshakeConfig::default())
    }

    /// `GOOD` with one field line replaced (or removed, if `with` is empty).
    fn good_with(line: &str, with: &str) -> String {
        let with = if with.is_empty() {
            String::new()
        } else {
            format!("{with}\r\n")
        };
        let replaced = GOOD.replace(&format!("{line}\r\n"), &with);
        assert_ne!(replaced, GOOD, "{line} not in the good request");
        replaced
    }

    #[test]
    fn rfc6455_1_3_accept_key_vector() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc6455_4_2_2_valid_handshake_is_101() {
        let out = handshake(GOOD).unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn rfc6455_4_2_1_tokens_are_case_insensitive_and_may_be_in_lists() {
        let head = good_with("Upgrade: websocket", "upgrade: WebSocket")
            .replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE");
        assert!(handshake(&head).is_ok());
        let head = good_with(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nConnection: upgrade",
        );
        assert!(handshake(&head).is_ok());
    }

    #[test]
    fn rfc6455_4_2_1_without_upgrade_websocket_is_not_a_handshake() {
        let head = good_with("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(handshake(&head), Err(HandshakeError::NotUpgrade));
        let head = good_with("Upgrade: websocket", "");
        assert_eq!(handshake(&head), Err(HandshakeError::NotUpgrade));
    }

    #[test]
    fn rfc6455_4_2_1_method_not_get_is_400() {
        let head = GOOD.replacen("GET", "POST", 1);
        assert_eq!(handshake(&head), Err(HandshakeError::MethodNotGet));
        assert_eq!(HandshakeError::MethodNotGet.status(), 400);
    }

    #[test]
    fn rfc6455_4_2_1_http_1_0_is_400() {
        let head = GOOD.replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert_eq!(handshake(&head), Err(HandshakeError::HttpVersionTooOld));
    }

    #[test]
    fn rfc6455_4_2_1_connection_without_upgrade_is_400() {
        let head = good_with("Connection: Upgrade", "Connection: keep-alive");
        assert_eq!(
            handshake(&head),
            Err(HandshakeError::ConnectionLacksUpgrade)
        );
        let head = good_with("Connection: Upgrade", "");
        assert_eq!(
            handshake(&head),
            Err(HandshakeError::ConnectionLacksUpgrade)
        );
        // "Upgrade" must be a whole token, not part of one.
        let head = good_with("Connection: Upgrade", "Connection: Upgraded");
        assert_eq!(
            handshake(&head),
            Err(HandshakeError::ConnectionLacksUpgrade)
        );
    }

    #[test]
    fn rfc6455_4_2_1_missing_key_is_400() {
        let head = good_with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "");
        assert_eq!(handshake(&head), Err(HandshakeError::MissingKey));
        assert_eq!(HandshakeError::MissingKey.status(), 400);
    }

    #[test]
    fn rfc6455_4_2_1_key_not_16_bytes_is_400() {
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",     // no padding
            "dGhlIHNhbXBsZSBub25j",       // 15 bytes
            "dGhlIHNhbXBsZSBub25jZXM=",   // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQ!=",   // not base64
            "dGhlIHNhbXBsZSBub25jZR==",   // non-zero trailing bits
            "dGhlIHNhbXBsZSBub25jZQ==AA", // too long
        ] {
            let line = format!("Sec-WebSocket-Key: {bad}");
            let head = good_with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", &line);
            assert_eq!(handshake(&head), Err(HandshakeError::InvalidKey), "{bad}");
        }
    }

    #[test]
    fn rfc6455_11_3_1_duplicate_key_is_400() {
        let line = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
        let head = good_with(line, &format!("{line}\r\n{line}"));
        assert_eq!(handshake(&head), Err(HandshakeError::DuplicateKey));
    }

    #[test]
    fn rfc6455_4_2_1_missing_version_is_400() {
        let head = good_with("Sec-WebSocket-Version: 13", "");
        assert_eq!(handshake(&head), Err(HandshakeError::MissingVersion));
    }

    #[test]
    fn rfc6455_11_3_5_duplicate_version_is_400() {
        let line = "Sec-WebSocket-Version: 13";
        let head = good_with(line, &format!("{line}\r\n{line}"));
        assert_eq!(handshake(&head), Err(HandshakeError::DuplicateVersion));
    }

    #[test]
    fn rfc6455_4_4_other_version_is_426_with_version_13() {
        let head = good_with("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
        assert_eq!(handshake(&head), Err(HandshakeError::UnsupportedVersion));
        let mut out = Vec::new();
        write_rejection(HandshakeError::UnsupportedVersion, &mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        assert!(text.contains("\r\nUpgrade: websocket\r\n"), "{text}");
    }

    #[test]
    fn rfc6455_10_2_origin_allow_list() {
        let config = HandshakeConfig {
            allowed_origins: Some(vec!["http://example.com".into()]),
        };
        assert!(handshake_with(GOOD, &config).is_ok());
        let head = good_with("Origin: http://example.com", "Origin: http://EXAMPLE.com");
        assert!(handshake_with(&head, &config).is_ok());
        let head = good_with("Origin: http://example.com", "Origin: http://evil.example");
        assert_eq!(
            handshake_with(&head, &config),
            Err(HandshakeError::OriginNotAllowed)
        );
        assert_eq!(HandshakeError::OriginNotAllowed.status(), 403);
        // No allow-list: any origin. No Origin at all: not a browser, let through.
        assert!(handshake(&head).is_ok());
        let head = good_with("Origin: http://example.com", "");
        assert!(handshake_with(&head, &config).is_ok());
    }

    #[test]
    fn rejection_response_is_well_formed() {
        let mut out = Vec::new();
        write_rejection(HandshakeError::ConnectionLacksUpgrade, &mut out);
        let text = String::from_utf8_lossy(&out);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(
            head.contains("\r\nContent-Type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(
            head.contains(&format!("\r\nContent-Length: {}", body.len())),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close"), "{head}");
        assert!(
            body.contains("Connection header must include Upgrade"),
            "{body}"
        );
    }
}
