//! The seed's push chat, on the broadcast hub, alone or sharing its room with
//! other servers through Redis.
//!
//! Alone ([`ChatPush::new`]) it is the notes' node server: everyone hears
//! `User<port> just connected.`, `User<port> says: <text>` and
//! `User<port> left.`, through one [`PushHub`] log. With a relay
//! ([`ChatPush::with_relay`]) the room is every server's that uses the same
//! Redis and room name: what a user says is `PUBLISH`ed, and every server,
//! this one included, shows what Redis delivers, in Redis's order
//! ([`super::relay`] has the rules, and what is lost while Redis is away).
//! User names then carry their server: `User<port>@<server>`.

use super::push::{BroadcastCost, HubConfig, PushHub};
use super::relay::{RelayConfig, RelayEvent, RelayStats, RoomRelay};
use super::websocket::{Message, Opened, WsApp, WsClosed, WsContext};
use crate::http::Response;
use crate::server::{
    CloseReason, ConnId, Context, Incoming, OutEnd, OutId, Reply, Source, TimerId,
};
use crate::ws::CloseCode;

/// Told each line of the relay's state changes.
type StatusObserver = Box<dyn FnMut(&str) + Send>;

/// The page served at `GET /`: a message list, a text box and a send button, on a
/// WebSocket to the same host.
pub const CHAT_PAGE: &str = include_str!("chat.html");

/// The seed's push chat: everyone hears `User<port> just connected.` when someone
/// joins (the newcomer too), `User<port> says: <text>` for every text message (the
/// sender too), and `User<port> left.` when someone leaves, where `<port>` is that
/// user's remote TCP port. `GET /` serves [`CHAT_PAGE`]; other plain requests get
/// 404. Every broadcast goes through the hub's one log ([`PushHub`]); a message
/// too big for the log once framed ([`HubConfig::log_bytes`]) fails its sender
/// with 1009 instead.
#[derive(Default)]
pub struct ChatPush {
    /// The members and the broadcasts.
    hub: PushHub,
    /// The room shared through Redis, if any.
    relay: Option<RoomRelay>,
    /// `@<server>` after user names when the room is shared, else empty.
    suffix: String,
    /// Scratch for the relay's events.
    relay_events: Vec<RelayEvent>,
    /// Senders paused because relayed messages wait for room in the log.
    paused: Vec<ConnId>,
    /// Newcomers whose join notice is published and not yet delivered back:
    /// each joins the hub when Redis delivers its notice, so that, as alone,
    /// its first line is its own join notice and it sees the room from there
    /// on, in Redis's order.
    pending_joins: Vec<(String, ConnId)>,
    /// Told each line of the relay's state changes (for the server's log).
    on_status: Option<StatusObserver>,
}

impl ChatPush {
    /// A chat whose hub uses `config`.
    pub fn new(config: HubConfig) -> ChatPush {
        ChatPush {
            hub: PushHub::new(config),
            ..ChatPush::default()
        }
    }

    /// A chat whose room is shared with every server on the same Redis and
    /// room ([`super::relay`]). `on_status` is told, in a line, each time the
    /// room becomes shared or falls back to this server alone.
    pub fn with_relay(
        config: HubConfig,
        relay: RelayConfig,
        on_status: impl FnMut(&str) + Send + 'static,
    ) -> ChatPush {
        let mut relay = relay;
        // A delivery the log cannot hold could not be shown anyway.
        relay.max_message_bytes = relay.max_message_bytes.min(config.log_bytes);
        ChatPush {
            hub: PushHub::new(config),
            suffix: format!("@{}", relay.server),
            relay: Some(RoomRelay::new(relay)),
            on_status: Some(Box::new(on_status)),
            ..ChatPush::default()
        }
    }

    /// Sets the observer of each broadcast's cost (for `--trace`).
    pub fn set_observer(&mut self, observer: impl FnMut(&BroadcastCost) + Send + 'static) {
        self.hub.set_observer(observer);
    }

    /// The relay's totals, if the room is shared through Redis.
    pub fn relay_stats(&self) -> Option<RelayStats> {
        self.relay.as_ref().map(RoomRelay::stats)
    }

    /// Whether the room is shared through Redis now.
    pub fn is_shared(&self) -> bool {
        self.relay.as_ref().is_some_and(RoomRelay::is_shared)
    }

    /// Calls `observer` with each broadcast's cost (for `--trace`).
    pub fn with_observer(
        config: HubConfig,
        observer: impl FnMut(&BroadcastCost) + Send + 'static,
    ) -> ChatPush {
        let mut chat = ChatPush::new(config);
        chat.hub.set_observer(observer);
        chat
    }

    /// The hub, for its members and totals.
    pub fn hub(&self) -> &PushHub {
        &self.hub
    }

    /// Broadcasts `User<port><rest...>` for `conn`'s user (`User<port>@<server>`
    /// with a relay). While the room is shared it is only published: it is
    /// shown when Redis delivers it, and a sender is paused while delivered
    /// messages wait for room. Otherwise a message `conn` sent goes through
    /// [`PushHub::send_from`] (`paced`: it may wait for room, its sender
    /// paused); a join or leave notice is appended at once.
    fn announce(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, rest: &[&str], paced: bool) {
        let port = ws.peer_addr(conn).map_or(0, |a| a.port());
        let mut digits = [0u8; 5];
        let port = decimal(port, &mut digits);
        let mut parts: [&str; 5] = ["User", port, &self.suffix, "", ""];
        for (slot, part) in parts.iter_mut().skip(3).zip(rest) {
            *slot = part;
        }
        if let Some(relay) = self.relay.as_mut()
            && relay.publish(&parts.concat())
        {
            if paced && self.hub.waiting_bytes() > 0 && ws.can_send(conn) {
                ws.pause_reading(conn);
                self.paused.push(conn);
            }
            return;
        }
        if paced {
            self.hub.send_from(ws, conn, &parts);
        } else {
            self.hub.broadcast_text_parts(ws, Some(conn), &parts);
        }
    }
}

impl ChatPush {
    /// Acts on what the relay reported: shows delivered messages, tells users
    /// and the log when the room changes.
    fn relay_happened(&mut self, ws: &mut WsContext<'_, '_>) {
        let mut events = std::mem::take(&mut self.relay_events);
        for event in events.drain(..) {
            match event {
                RelayEvent::Message(text) => {
                    if let Some(at) = self.pending_joins.iter().position(|(n, _)| *n == text) {
                        let (_, conn) = self.pending_joins.remove(at);
                        if ws.can_send(conn) {
                            self.hub.join(conn);
                        }
                    }
                    self.hub.send_relayed(ws, &[&text]);
                }
                RelayEvent::Shared => {
                    let room = self.relay.as_ref().map_or("", |r| r.config().room.as_str());
                    let line =
                        format!("room {room} is shared through Redis: everyone in it hears you");
                    self.tell(ws, &line);
                }
                RelayEvent::Alone(why) => {
                    // Newcomers whose notice will not come back join here,
                    // told here.
                    for (notice, conn) in std::mem::take(&mut self.pending_joins) {
                        if ws.can_send(conn) {
                            self.hub.join(conn);
                            self.hub.broadcast_text_parts(ws, Some(conn), &[&notice]);
                        }
                    }
                    let line =
                        format!("{why}; until Redis is back, only users on this server hear you");
                    self.tell(ws, &line);
                }
            }
        }
        self.relay_events = events;
        if let Some(relay) = self.relay.as_mut() {
            relay.pace(ws.http(), self.hub.waiting_bytes());
        }
    }

    /// Tells this server's users and its log `line`, as `Server@<server>: line`.
    fn tell(&mut self, ws: &mut WsContext<'_, '_>, line: &str) {
        if let Some(on_status) = self.on_status.as_mut() {
            on_status(line);
        }
        self.hub
            .broadcast_text_parts(ws, None, &["Server", &self.suffix, ": ", line]);
    }
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &str {
    let mut start = buf.len();
    loop {
        start -= 1;
        if let Some(b) = buf.get_mut(start) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(start..).unwrap_or_default()).unwrap_or("0")
}

impl WsApp for ChatPush {
    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, _opened: &Opened<'_>) {
        // Shared through Redis: publish the notice; the newcomer joins when
        // Redis delivers it back (`pending_joins`).
        if let Some(relay) = self.relay.as_mut()
            && relay.is_shared()
        {
            let port = ws.peer_addr(conn).map_or(0, |a| a.port());
            let notice = format!("User{port}{} just connected.", self.suffix);
            if relay.publish(&notice) {
                self.pending_joins.push((notice, conn));
                return;
            }
        }
        // As the seed: add the connection, then tell everybody, newcomer included.
        self.hub.join(conn);
        self.announce(ws, conn, &[" just connected."], false);
    }

    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        match msg {
            // `User65535 says: ` and the text must fit in the broadcast log;
            // RFC 6455 §7.4.1: 1009 is for "a message that is too big for it to
            // process".
            Message::Text(text) if !self.hub.fits(text.len().saturating_add(16)) => ws.fail(
                conn,
                CloseCode::TOO_BIG,
                "message too big for the broadcast log",
            ),
            Message::Text(text) => self.announce(ws, conn, &[" says: ", text], true),
            // The chat carries text. RFC 6455 §7.4.1: 1003 "indicates that an
            // endpoint is terminating the connection because it has received a
            // type of data it cannot accept".
            Message::Binary(_) => ws.fail(
                conn,
                CloseCode::UNSUPPORTED_DATA,
                "this chat takes text messages only",
            ),
        }
    }

    fn on_close(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
        // At shutdown every connection closes: telling each of the others would
        // cost n² sends to connections that are closing too.
        let shutdown = matches!(
            closed,
            WsClosed::Shutdown | WsClosed::Dropped(CloseReason::Shutdown)
        );
        let pending = self.pending_joins.iter().position(|(_, c)| *c == conn);
        if let Some(at) = pending {
            self.pending_joins.remove(at);
        }
        let member = self.hub.leave_because(conn, closed);
        if (member || pending.is_some()) && !shutdown {
            self.announce(ws, conn, &[" left."], false);
        }
    }

    fn on_http(&mut self, _ctx: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let request = req.request();
        if request.path() != "/" {
            res.set_status(404);
            res.header("Content-Type", "text/plain; charset=utf-8");
            res.body_mut().extend_from_slice(
                b"not found: the chat page is at / and its WebSocket at ws://HOST/\n",
            );
            return Reply::Respond;
        }
        match request.method() {
            "GET" | "HEAD" => {
                res.header("Content-Type", "text/html; charset=utf-8");
                res.header("Cache-Control", "no-cache");
                res.body_mut().extend_from_slice(CHAT_PAGE.as_bytes());
            }
            _ => {
                res.set_status(405);
                res.header("Allow", "GET, HEAD");
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.body_mut()
                    .extend_from_slice(b"the chat page is read with GET\n");
            }
        }
        Reply::Respond
    }

    fn on_turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        self.hub.turn_end(ws);
        if let Some(relay) = self.relay.as_mut() {
            let waiting = self.hub.waiting_bytes();
            relay.pace(ws.http(), waiting);
            if waiting == 0 {
                for conn in self.paused.drain(..) {
                    ws.resume_reading(conn);
                }
            }
            relay.flush(ws.http());
        }
    }

    fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, _data: u64) {
        if let Some(relay) = self.relay.as_mut()
            && relay.on_timer(ws.http(), timer)
        {
            return;
        }
        self.hub.on_timer(ws, timer);
    }

    fn on_start(&mut self, ws: &mut WsContext<'_, '_>) {
        if let Some(relay) = self.relay.as_mut() {
            relay.start(ws.http());
        }
    }

    fn on_shutdown(&mut self, ws: &mut WsContext<'_, '_>) {
        if let Some(relay) = self.relay.as_mut() {
            relay.stop(ws.http());
        }
    }

    fn on_out_connected(&mut self, ws: &mut WsContext<'_, '_>, out: OutId) {
        if let Some(relay) = self.relay.as_mut() {
            relay.on_connected(ws.http(), out);
        }
    }

    fn on_out_data(&mut self, ws: &mut WsContext<'_, '_>, out: OutId, data: &[u8]) {
        if let Some(relay) = self.relay.as_mut() {
            relay.on_data(ws.http(), out, data, &mut self.relay_events);
            self.relay_happened(ws);
        }
    }

    fn on_out_closed(&mut self, ws: &mut WsContext<'_, '_>, out: OutId, end: OutEnd) {
        if let Some(relay) = self.relay.as_mut() {
            relay.on_closed(ws.http(), out, end, &mut self.relay_events);
            self.relay_happened(ws);
        }
    }

    fn source(&self, conn: ConnId) -> Source<'_> {
        self.hub.source(conn)
    }

    fn source_written(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, n: usize) {
        self.hub.source_written(ws, conn, n);
    }

    fn source_done(&mut self, conn: ConnId) {
        self.hub.source_done(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_ports() {
        let mut buf = [0u8; 5];
        assert_eq!(decimal(0, &mut buf), "0");
        assert_eq!(decimal(7, &mut buf), "7");
        assert_eq!(decimal(8080, &mut buf), "8080");
        assert_eq!(decimal(65535, &mut buf), "65535");
    }
}
