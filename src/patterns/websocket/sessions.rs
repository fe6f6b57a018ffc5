//! The glue's state for each WebSocket: where it is in its life, its decoder and
//! close handshake, its keepalive and its timer.

#[allow(unused_imports)]
use super::*;

/// Where one WebSocket is, from the glue's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WsState {
    /// Messages flow both ways.
    Open,
    /// The application closed it: a close frame went out (or will as soon as the
    /// decoder is back), and the peer's is awaited. Nothing more is delivered.
    Closing,
    /// TCP close is requested: everything that arrives is dropped.
    Done,
}

/// One WebSocket's state.
#[derive(Debug)]
pub(super) struct Session {
    /// The connection, to tell this session from a later connection that reuses
    /// its index.
    pub(super) id: ConnId,
    /// The peer's address, kept so that it can be named in `on_close` after TCP is
    /// gone.
    pub(super) peer: SocketAddr,
    /// The decoder and the close handshake. Taken out (leaving a placeholder)
    /// while a message it decoded is being handled: see `busy`.
    pub(super) ws: Connection,
    /// Where the WebSocket is.
    pub(super) state: WsState,
    /// `ws` is out of the session because a message of this connection is being
    /// handled; a close asked for meanwhile waits in `close_requested`.
    pub(super) busy: bool,
    /// A graceful close the application asked for while `busy`, started once the
    /// decoder is back.
    pub(super) close_requested: Option<(CloseCode, String)>,
    /// The ping schedule, if pinging is on ([`WsConfig::ping_interval`]).
    pub(super) keepalive: Option<Keepalive>,
    /// The session's one timer: the keepalive's while `Open`, the close timeout
    /// once a close frame went out (`Closing`, `Done`).
    /// Timer ids are never reused, so this id alone tells the glue's timers from
    /// the application's.
    pub(super) timer: Option<TimerId>,
    /// Messages received so far (the next one's [`MessageCost::index`]).
    pub(super) messages: u64,
    /// Frame bytes consumed since the last whole message, for its `wire_bytes`.
    pub(super) wire_pending: u64,
    /// The application paused reading from it ([`WsContext::pause_reading`]):
    /// no message is decoded until it resumes.
    pub(super) paused: bool,
    /// The connection's counters at the end of the last turn it read in: reads
    /// since then are the next message's.
    pub(super) io_seen: IoCounters,
    /// The connection's counters when this turn first handed it bytes: writes
    /// since then are this turn's (writes before it carried other connections'
    /// broadcasts and are no message's of this one).
    pub(super) io_turn: Option<IoCounters>,
}

impl Session {
    /// A session just opened by a handshake at `now`, pinging on `config`'s
    /// schedule.
    pub(super) fn open(id: ConnId, peer: SocketAddr, config: &WsConfig, now: Instant) -> Session {
        let keepalive = config
            .ping_interval
            .map(|interval| Keepalive::new(interval, config.ping_timeout, now));
        Session {
            id,
            peer,
            ws: Connection::new(config.limits),
            state: WsState::Open,
            busy: false,
            close_requested: None,
            keepalive,
            timer: None,
            messages: 0,
            wire_pending: 0,
            paused: false,
            io_seen: IoCounters::default(),
            io_turn: None,
        }
    }
}

/// The glue's state that the application's [`WsContext`] reaches.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// Sessions by their connection's index ([`ConnId::index`]).
    pub(super) by_index: Vec<Option<Session>>,
    /// WebSockets that ended and whose application has not been told yet (it is
    /// told right after the callback that ended them returns).
    pub(super) ended: Vec<(ConnId, WsClosed)>,
    /// Where frames are encoded before they are queued; reused.
    pub(super) scratch: Vec<u8>,
    /// Counters.
    pub(super) stats: WsStats,
    /// How long to wait for the answer to a close frame.
    pub(super) close_timeout: Duration,
}

impl Sessions {
    pub(super) fn get(&self, conn: ConnId) -> Option<&Session> {
        self.by_index
            .get(conn.index())?
            .as_ref()
            .filter(|s| s.id == conn)
    }

    pub(super) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        session_mut(&mut self.by_index, conn)
    }

    /// Marks a WebSocket ended and queues the application's `on_close`.
    ///
    /// Leaving `Open`, the keepalive stops and the close timeout starts: a close
    /// frame went out (or is about to), and TCP is closed when the peer's answer
    /// comes (`Closing`) or once the frame is written (`Done`), or at the latest
    /// [`WsConfig::close_timeout`] from now, when the timer aborts it
    /// (`WsServer::glue_timer`). A dead peer (ping timeout) is aborted at once: it
    /// will read nothing more. A dropped one needs nothing: TCP is gone.
    pub(super) fn end(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        closed: WsClosed,
        state: WsState,
    ) {
        let close_timeout = self.close_timeout;
        let Some(session) = self.get_mut(conn) else {
            return;
        };
        let was_open = session.state == WsState::Open;
        session.state = state;
        if session.paused {
            // The peer's answer to the close frame must be read.
            session.paused = false;
            ctx.resume_reading(conn);
        }
        if was_open {
            if let Some(timer) = session.timer.take() {
                ctx.cancel_timer(timer);
            }
            match closed {
                WsClosed::Dropped(_) => {}
                WsClosed::PingTimeout => ctx.abort(conn),
                _ => session.timer = Some(ctx.set_timer(close_timeout, glue_timer(conn))),
            }
        }
        if state == WsState::Done {
            ctx.close(conn);
        }
        if !was_open {
            return;
        }
        let stats = &mut self.stats;
        match closed {
            WsClosed::ByPeer(_) => stats.closed_by_peer += 1,
            WsClosed::ByServer(_) => stats.closed_by_server += 1,
            WsClosed::ProtocolError(_) => stats.protocol_errors += 1,
            WsClosed::PingTimeout => stats.ping_timeouts += 1,
            WsClosed::Dropped(_) => stats.dropped += 1,
            WsClosed::Shutdown => stats.closed_at_shutdown += 1,
        }
        self.ended.push((conn, closed));
    }
}

/// The session of `conn`, if it is still the one in its place.
pub(super) fn session_mut(by_index: &mut [Option<Session>], conn: ConnId) -> Option<&mut Session> {
    by_index
        .get_mut(conn.index())?
        .as_mut()
        .filter(|s| s.id == conn)
}
