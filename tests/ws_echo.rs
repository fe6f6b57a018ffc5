//! The `ws_echo` handler driven by tungstenite, an independent WebSocket
//! implementation, over real TCP: what it sends must come back unchanged, as the
//! same type, and the control frames must follow RFC 6455.

mod ws_support;

use tungstenite::Message;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use ws_support::{Frame as RawFrame, *};

#[test]
fn echo_text_comes_back_as_text() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    for text in ["Hello", "", "héllo wörld ✓", "🎉 emoji"] {
        ws.send(Message::text(text)).expect("send");
        assert_eq!(ws.read().expect("echo"), Message::text(text));
    }
    let app = server.stop().expect("stops");
    assert_eq!(app.app().echoed, 4);
}

#[test]
fn echo_binary_comes_back_as_binary() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    let data: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(data.clone())).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::binary(data));
    server.stop().expect("stops");
}

#[test]
fn echo_one_megabyte_messages_of_both_types() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    let binary: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    ws.send(Message::binary(binary.clone())).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::binary(binary));
    let text = "abcdefghij✓".repeat(80_000); // 1.04 MB of UTF-8
    ws.send(Message::text(text.clone())).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text(text));
    server.stop().expect("stops");
}

#[test]
fn rfc6455_5_4_fragmented_message_is_echoed_whole() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    // "fragment" split inside a multi-byte character, with a ping between fragments
    // (§5.4: control frames may be injected in the middle of a fragmented message).
    let text = "frag✓ment".as_bytes();
    let (first, rest) = text.split_at(6); // cuts "✓" (3 bytes) after its first 2
    ws.write(Message::Frame(Frame::message(
        first.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .expect("first fragment");
    ws.write(Message::Ping(b"between".to_vec().into()))
        .expect("ping");
    ws.write(Message::Frame(Frame::message(
        rest.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .expect("last fragment");
    ws.flush().expect("flush");
    assert_eq!(
        ws.read().expect("pong"),
        Message::Pong(b"between".to_vec().into())
    );
    assert_eq!(ws.read().expect("echo"), Message::text("frag✓ment"));
    server.stop().expect("stops");
}

#[test]
fn rfc6455_5_5_2_ping_is_answered_with_a_pong_of_the_same_payload() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    ws.send(Message::Ping(b"are you there?".to_vec().into()))
        .expect("ping");
    assert_eq!(
        ws.read().expect("pong"),
        Message::Pong(b"are you there?".to_vec().into())
    );
    server.stop().expect("stops");
}

#[test]
fn rfc6455_5_5_1_close_handshake_echoes_the_code_and_the_server_closes_tcp() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "done".into(),
    }))
    .expect("close");
    let answer = ws.read().expect("close answer");
    match answer {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame echoing 1001, got {other:?}"),
    }
    // Then the server closes TCP: tungstenite sees the end of the connection.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected the connection to end, got {other:?}"),
    }
    let app = server.stop().expect("stops");
    assert_eq!(app.stats().closed_by_peer, 1);
}

#[test]
fn rfc6455_5_1_echo_frames_from_the_server_are_never_masked() {
    let server = start_echo(no_pings());
    let mut raw = RawWs::connect(server.addr);
    raw.send(&masked_text("Hello"));
    let frame = raw.read_frame().expect("echo");
    assert_eq!(
        frame,
        RawFrame {
            fin: true,
            opcode: 0x1,
            masked: false,
            payload: b"Hello".to_vec()
        }
    );
    server.stop().expect("stops");
}

#[test]
fn plain_http_to_the_echo_endpoint_is_426_naming_websocket() {
    let server = start_echo(no_pings());
    let (head, body) = http(server.addr, "GET /anything HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{head}"
    );
    assert_eq!(header(&head, "upgrade"), Some("websocket"));
    assert_eq!(header(&head, "sec-websocket-version"), Some("13"));
    assert!(String::from_utf8_lossy(&body).contains("WebSocket"));
    server.stop().expect("stops");
}

#[test]
fn echo_answers_on_any_path() {
    let server = start_echo(no_pings());
    let mut raw = RawWs::open(server.addr, &handshake_request("/some/path?x=1", ""));
    assert!(
        raw.response.starts_with("HTTP/1.1 101 "),
        "{}",
        raw.response
    );
    raw.send(&masked_text("path"));
    assert_eq!(raw.read_frame().expect("echo").text(), "path");
    server.stop().expect("stops");
}

#[test]
fn rfc6455_7_4_1_graceful_shutdown_sends_1001_going_away() {
    let server = start_echo(no_pings());
    let (mut ws, _) = tungstenite_client(server.addr);
    ws.send(Message::text("before")).expect("send");
    assert_eq!(ws.read().expect("echo"), Message::text("before"));
    // The server does not wait for the client's answer to its close frame: `stop`
    // returns once the frame is written and TCP is closed.
    let app = server.stop().expect("stops");
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    assert_eq!(app.stats().closed_at_shutdown, 1);
}
