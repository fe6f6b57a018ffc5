//! What a WebSocket application is: the messages it gets, how a WebSocket ends,
//! and the [`WsApp`] trait the glue calls.

#[allow(unused_imports)]
use super::*;

/// A message from the peer, whole (fragments joined, text checked as UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

/// What the application learns about a WebSocket when it opens.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The peer's address; its port names the user in the seed's chat.
    pub peer: SocketAddr,
    /// The request's `Origin`, if it sent one (browsers do; the seed accepts the
    /// connection "with request.origin").
    pub origin: Option<&'a [u8]>,
    /// The request-target of the handshake, such as `/`.
    pub target: &'a str,
}

/// How a WebSocket ended, as told to [`WsApp::on_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsClosed {
    /// The peer started the close handshake (its code, if its close frame had one);
    /// the server answered and closed TCP.
    ByPeer(Option<CloseCode>),
    /// The application closed it with this code ([`WsContext::close`] or
    /// [`WsContext::fail`]).
    ByServer(CloseCode),
    /// The peer broke a rule of RFC 6455; the server sent a close frame with
    /// [`WsError::close_code`] and closed TCP.
    ProtocolError(WsError),
    /// The peer did not answer a ping within [`WsConfig::ping_timeout`].
    PingTimeout,
    /// The TCP connection went away without a close handshake (reset, end of file,
    /// the driver closing it).
    Dropped(CloseReason),
    /// The server is shutting down: a close frame with 1001 (Going Away) went out
    /// and TCP closes once it is written, without waiting for the peer's answer.
    Shutdown,
}

impl fmt::Display for WsClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsClosed::ByPeer(Some(code)) => write!(f, "closed by the peer ({})", code.0),
            WsClosed::ByPeer(None) => write!(f, "closed by the peer (no code)"),
            WsClosed::ByServer(code) => write!(f, "closed by the server ({})", code.0),
            WsClosed::ProtocolError(error) => {
                write!(f, "failed: {error} ({})", error.close_code().0)
            }
            WsClosed::PingTimeout => write!(f, "no answer to a ping: taken for dead"),
            WsClosed::Dropped(reason) => {
                let why = match reason {
                    CloseReason::PeerClosed => "the peer's end of file",
                    CloseReason::Error => "reset or broken pipe",
                    CloseReason::BadRequest => "bad input",
                    CloseReason::Done => "closed by the server",
                    CloseReason::Timeout => "timed out",
                    CloseReason::Shutdown => "server shutdown",
                };
                write!(f, "TCP closed without a close frame: {why}")
            }
            WsClosed::Shutdown => write!(f, "server shutting down (1001)"),
        }
    }
}

/// A WebSocket application: what happens when connections open, send, and close.
/// Only [`WsApp::on_message`] is required.
pub trait WsApp {
    /// A WebSocket opened (the 101 is queued ahead of anything sent here).
    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, opened: &Opened<'_>) {
        let _ = (ws, conn, opened);
    }

    /// A whole message arrived.
    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>);

    /// A WebSocket ended (see [`WsClosed`]); nothing more can be sent on it. Called
    /// once per [`WsApp::on_open`].
    fn on_close(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
        let _ = (ws, conn, closed);
    }

    /// A request that is not a WebSocket handshake. By default: `426 Upgrade
    /// Required` naming the protocol this endpoint speaks (RFC 9110 §15.5.22).
    fn on_http(&mut self, ctx: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let _ = (ctx, req);
        not_a_websocket(res);
        Reply::Respond
    }

    /// A valid handshake for `target` is about to be accepted. Return `true` to
    /// accept it; to refuse it instead (an unknown resource: 404), fill `res` with
    /// the refusal (status, body) and return `false`: it is sent with
    /// `Connection: close` and counted in [`WsStats::rejected`]. By default every
    /// valid handshake is accepted.
    fn on_handshake(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> bool {
        let _ = (ctx, req, res);
        true
    }

    /// A connection that is not a WebSocket closed: one that carried plain
    /// requests through [`WsApp::on_http`]. An application that holds such a
    /// request ([`Reply::Deferred`], a long poll) or streams on it
    /// ([`Reply::Stream`], Server-Sent Events) forgets it here.
    fn on_http_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        let _ = (ctx, conn, reason);
    }

    /// A plain request's response, or a handshake's 101 or refusal, was fully
    /// written: what it cost ([`Handler::on_request_done`]).
    fn on_request_done(&mut self, cost: &RequestCost) {
        let _ = cost;
    }

    /// The loop is starting ([`Handler::on_start`]): set the timers of work that
    /// exists before any client connects.
    fn on_start(&mut self, ws: &mut WsContext<'_, '_>) {
        let _ = ws;
    }

    /// A timer set with [`WsContext::set_timer`] came due, with its data as given
    /// (all 64 bits).
    fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        let _ = (ws, timer, data);
    }

    /// The server is shutting down: the last chance to send something (a goodbye
    /// message) before every WebSocket gets its 1001 close frame. Each one's
    /// [`WsApp::on_close`] follows, with [`WsClosed::Shutdown`].
    fn on_shutdown(&mut self, ws: &mut WsContext<'_, '_>) {
        let _ = ws;
    }

    /// An outgoing connection ([`Context::connect`], through
    /// [`WsContext::http`]) is up ([`crate::server::Handler::on_out_connected`]).
    fn on_out_connected(&mut self, ws: &mut WsContext<'_, '_>, out: OutId) {
        let _ = (ws, out);
    }

    /// Bytes arrived on an outgoing connection
    /// ([`crate::server::Handler::on_out_data`]).
    fn on_out_data(&mut self, ws: &mut WsContext<'_, '_>, out: OutId, data: &[u8]) {
        let _ = (ws, out, data);
    }

    /// An outgoing connection ended ([`crate::server::Handler::on_out_closed`]).
    fn on_out_closed(&mut self, ws: &mut WsContext<'_, '_>, out: OutId, end: OutEnd) {
        let _ = (ws, out, end);
    }

    /// A turn of the loop ended: what was sent during it has been written as far as
    /// the sockets took it (see [`Handler::on_turn_end`]).
    fn on_turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        let _ = ws;
    }

    /// The encoded frames a WebSocket writes straight from the application's
    /// storage, a shared log of frames where `conn` is a cursor
    /// ([`Handler::source`], [`crate::patterns::frame_log::FrameLog`]). By default
    /// none. The glue passes it on while the WebSocket is open; once a close frame
    /// is queued, only the rest of a frame a short write cut
    /// ([`Source::frame_rest_only`]), so that nothing from the log follows the
    /// close frame and the close frame never lands inside a log frame. The glue's
    /// own frames (pongs, close answers) are private output, written between log
    /// frames. Frames written this way are the application's to count (they are
    /// not in [`WsStats::messages_out`]).
    fn source(&self, conn: ConnId) -> Source<'_> {
        let _ = conn;
        Source::NONE
    }

    /// The kernel took the first `n` bytes of what [`WsApp::source`] returned for
    /// `conn`: advance its cursor ([`Handler::source_written`]).
    fn source_written(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, n: usize) {
        let _ = (ws, conn, n);
    }

    /// `conn`'s TCP connection is gone: its [`WsApp::source`] is asked no more,
    /// so its cursor can be dropped. This comes after [`WsApp::on_close`], which
    /// is told as soon as nothing more can be *sent*: until then the source must
    /// still answer for `conn`, as the end of a frame a short write cut is
    /// written before the close frame. (A source that drops the cursor in
    /// `on_close` instead leaves such a frame unfinished, and the close frame
    /// inside it.)
    fn source_done(&mut self, conn: ConnId) {
        let _ = conn;
    }
}

/// The answer to a plain HTTP request at a WebSocket-only endpoint: 426, with the
/// `Upgrade` and `Sec-WebSocket-Version` fields that say what to ask for instead.
pub fn not_a_websocket(res: &mut Response) {
    res.set_status(426);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.header("Upgrade", "websocket");
    res.header("Connection", "Upgrade");
    res.header("Sec-WebSocket-Version", ws::handshake::WEBSOCKET_VERSION);
    res.body_mut()
        .extend_from_slice(b"this endpoint speaks WebSocket (RFC 6455): send an upgrade request\n");
}
