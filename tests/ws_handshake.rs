//! The opening handshake and the failure of a connection, over TCP, as raw bytes:
//! what a client that breaks a rule sees on the wire.

mod ws_support;

use std::time::{Duration, Instant};

use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::websocket::WsConfig;
use wirepatterns::server::{ServerHandle, ServerStats};
use wirepatterns::ws::{HandshakeConfig, Limits};
use ws_support::*;

#[test]
fn rfc6455_4_2_2_accept_value_is_the_rfcs_own_example() {
    let server = start_echo(no_pings());
    let raw = RawWs::open(server.addr, &handshake_request("/", ""));
    let head = &raw.response;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert_eq!(header(head, "upgrade"), Some("websocket"));
    assert_eq!(header(head, "connection"), Some("Upgrade"));
    assert_eq!(
        header(head, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(header(head, "content-length"), None, "a 101 has no body");
    server.stop().expect("stops");
}

#[test]
fn rfc6455_4_2_1_bad_key_is_400_with_a_body_naming_the_rule() {
    let server = start_echo(no_pings());
    let request =
        handshake_request("/", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "not-sixteen-bytes");
    let (head, body) = http(server.addr, &request);
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert_eq!(header(&head, "connection"), Some("close"));
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.2.1)\n"
    );
    server.stop().expect("stops");
}

#[test]
fn rfc6455_4_2_1_missing_connection_upgrade_is_400() {
    let server = start_echo(no_pings());
    let request =
        handshake_request("/", "").replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n");
    let (head, body) = http(server.addr, &request);
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("Connection header must include Upgrade"));
    server.stop().expect("stops");
}

#[test]
fn rfc6455_4_4_version_8_is_426_with_version_13() {
    let server = start_echo(no_pings());
    let request =
        handshake_request("/", "").replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let (head, body) = http(server.addr, &request);
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{head}"
    );
    assert_eq!(header(&head, "sec-websocket-version"), Some("13"));
    assert!(String::from_utf8_lossy(&body).contains("version 13"));
    server.stop().expect("stops");
}

#[test]
fn rfc6455_10_2_origin_not_on_the_allow_list_is_403() {
    let mut config = no_pings();
    config.handshake = HandshakeConfig {
        allowed_origins: Some(vec!["http://127.0.0.1:8080".to_string()]),
    };
    let server = start_chat(config, HubConfig::default());
    let (head, body) = http(
        server.addr,
        &handshake_request("/", "Origin: http://evil.example\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("origin not allowed"));
    // The listed origin (any case) and a client without Origin are accepted.
    let listed = RawWs::open(
        server.addr,
        &handshake_request("/", "Origin: HTTP://127.0.0.1:8080\r\n"),
    );
    assert!(
        listed.response.starts_with("HTTP/1.1 101 "),
        "{}",
        listed.response
    );
    let no_origin = RawWs::open(server.addr, &handshake_request("/", ""));
    assert!(
        no_origin.response.starts_with("HTTP/1.1 101 "),
        "{}",
        no_origin.response
    );
    let app = server.stop().expect("stops");
    assert_eq!(app.stats().rejected, 1);
    assert_eq!(app.stats().opened, 2);
}

#[test]
fn chat_plain_get_root_serves_the_chat_page() {
    let server = start_chat(no_pings(), HubConfig::default());
    let (head, body) = http(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = String::from_utf8(body).expect("UTF-8 page");
    for needle in [
        "<ul id=\"messages\">",
        "<input id=\"text\"",
        "<button id=\"send\"",
        "new WebSocket(\"ws://\" + location.host + \"/\")",
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    server.stop().expect("stops");
}

#[test]
fn chat_plain_get_elsewhere_is_404() {
    let server = start_chat(no_pings(), HubConfig::default());
    let (head, _) = http(server.addr, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    server.stop().expect("stops");
}

/// Sends `bytes` after the handshake and expects a close frame with `code`, then
/// the end of the connection.
fn expect_failure(config: WsConfig, bytes: &[u8], code: u16) {
    let server = start_echo(config);
    let mut raw = RawWs::connect(server.addr);
    raw.send(bytes);
    let close = raw.read_data_or_close().expect("a close frame");
    assert_eq!(close.opcode, 0x8, "{close:?}");
    assert_eq!(close.close_code(), Some(code), "{close:?}");
    assert!(raw.at_eof(), "the server closes TCP after failing");
    let app = server.stop().expect("stops");
    assert_eq!(app.stats().protocol_errors, 1);
    assert_eq!(app.app().echoed, 0);
}

#[test]
fn rfc6455_5_1_unmasked_client_frame_is_closed_1002() {
    expect_failure(no_pings(), &client_frame(true, 0x1, b"Hello", None), 1002);
}

#[test]
fn rfc6455_5_2_reserved_opcode_is_closed_1002() {
    expect_failure(
        no_pings(),
        &client_frame(true, 0x3, b"", Some([1, 2, 3, 4])),
        1002,
    );
}

#[test]
fn rfc6455_5_5_fragmented_ping_is_closed_1002() {
    expect_failure(
        no_pings(),
        &client_frame(false, 0x9, b"x", Some([1, 2, 3, 4])),
        1002,
    );
}

#[test]
fn rfc6455_8_1_invalid_utf8_is_closed_1007() {
    expect_failure(
        no_pings(),
        &client_frame(true, 0x1, b"ok \xFF", Some([1, 2, 3, 4])),
        1007,
    );
}

#[test]
fn rfc6455_10_4_message_over_the_limit_is_closed_1009() {
    let config = WsConfig {
        limits: Limits {
            max_frame_payload: 1024,
            max_message_size: 1024,
        },
        ..no_pings()
    };
    expect_failure(
        config,
        &client_frame(true, 0x2, &[0u8; 1025], Some([1, 2, 3, 4])),
        1009,
    );
}

/// The server's totals once it has read `total` bytes from its clients; panics
/// naming `what` if that does not happen within [`READ_TIMEOUT`].
fn once_read(handle: &ServerHandle, total: u64, what: &str) -> ServerStats {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let stats = handle.stats();
        assert!(
            stats.bytes_in <= total,
            "the server read {} bytes, more than the {total} sent ({what})",
            stats.bytes_in
        );
        if stats.bytes_in == total {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the server never read {what}: {} of {total} bytes in after {READ_TIMEOUT:?}",
            stats.bytes_in
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn rfc6455_5_2_frames_split_at_every_byte_over_tcp_are_decoded() {
    let server = start_echo(no_pings());
    let mut raw = RawWs::connect(server.addr);
    let mut bytes = client_frame(false, 0x1, "split ".as_bytes(), Some([9, 8, 7, 6]));
    bytes.extend(client_frame(
        true,
        0x0,
        "✓ here".as_bytes(),
        Some([1, 3, 5, 7]),
    ));
    let handshake = handshake_request("/", "").len() as u64;
    let before = once_read(&server.handle, handshake, "the handshake");
    // Each byte goes out only once the server has read every byte before it, so
    // no two bytes can arrive in one read: the decoder is handed the two frames
    // one byte per read, whatever the kernel would otherwise have coalesced.
    for (i, byte) in bytes.iter().enumerate() {
        raw.send(std::slice::from_ref(byte));
        once_read(
            &server.handle,
            handshake + i as u64 + 1,
            &format!("byte {i} of the frames"),
        );
    }
    assert_eq!(raw.read_frame().expect("echo").text(), "split ✓ here");
    let after = server.handle.stats();
    // So at least one read per byte, each of which returned data: its byte.
    assert!(
        after.read_calls - before.read_calls >= bytes.len() as u64,
        "{} reads for {} pieces",
        after.read_calls - before.read_calls,
        bytes.len()
    );
    server.stop().expect("stops");
}

#[test]
fn rfc6455_5_5_1_close_with_a_one_byte_payload_is_closed_1002() {
    expect_failure(
        no_pings(),
        &client_frame(true, 0x8, &[0x03], Some([1, 2, 3, 4])),
        1002,
    );
}
