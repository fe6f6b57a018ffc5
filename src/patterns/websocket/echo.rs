//! [`WsEcho`]: the `ws_echo` example's application.

#[allow(unused_imports)]
use super::*;

/// The `ws_echo` example's application: every text or binary message is sent back
/// as it came, the same type, on any path. It is the target for conformance
/// testing: everything it does not do itself (fragments, pings, the close
/// handshake, limits, every error) is the core's.
#[derive(Default)]
pub struct WsEcho {
    /// Messages echoed.
    pub echoed: u64,
    /// Payload bytes echoed.
    pub echoed_bytes: u64,
}

impl WsEcho {
    /// The echo application. (What it handles is reported by the glue's observer,
    /// [`WsServer::set_observer`].)
    pub fn new() -> WsEcho {
        WsEcho::default()
    }
}

impl WsApp for WsEcho {
    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        let (sent, len) = match msg {
            Message::Text(text) => (ws.send_text(conn, text), text.len()),
            Message::Binary(data) => (ws.send_binary(conn, data), data.len()),
        };
        if sent {
            self.echoed += 1;
            self.echoed_bytes += len as u64;
        }
    }
}
