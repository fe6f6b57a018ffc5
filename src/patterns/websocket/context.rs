//! [`WsContext`]: what a [`WsApp`] can do from its callbacks.

#[allow(unused_imports)]
use super::*;

/// What a [`WsApp`] can do: send on any WebSocket, close one, look at backlogs, set
/// timers. It wraps the driver's [`Context`].
pub struct WsContext<'a, 'b> {
    /// The driver's context: sends, closes, timers, the clock.
    pub(super) ctx: &'a mut Context<'b>,
    /// The WebSockets.
    pub(super) sessions: &'a mut Sessions,
}

impl<'b> WsContext<'_, 'b> {
    /// The loop's time (see [`Context::now`]).
    pub fn now(&self) -> Instant {
        self.ctx.now()
    }

    /// Whether messages can be sent on `conn`: it is an open WebSocket and no close
    /// frame has gone out on it.
    pub fn can_send(&self, conn: ConnId) -> bool {
        self.sessions
            .get(conn)
            .is_some_and(|s| s.state == WsState::Open)
    }

    /// Sends a text message; `false` (and nothing sent) if `conn` cannot be sent on.
    pub fn send_text(&mut self, conn: ConnId, text: &str) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.sessions.scratch.clear();
        ws::write_text(&mut self.sessions.scratch, text);
        self.ctx.send_raw(conn, &self.sessions.scratch);
        self.sessions.stats.messages_out += 1;
        true
    }

    /// Sends a binary message; `false` (and nothing sent) if `conn` cannot be sent
    /// on.
    pub fn send_binary(&mut self, conn: ConnId, data: &[u8]) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.sessions.scratch.clear();
        ws::write_binary(&mut self.sessions.scratch, data);
        self.ctx.send_raw(conn, &self.sessions.scratch);
        self.sessions.stats.messages_out += 1;
        true
    }

    /// Sends a frame encoded beforehand ([`ws::text_frame`], [`ws::binary_frame`]),
    /// sharing its bytes: the way to send one message to many connections. This is
    /// [`Context::send_shared`] for a WebSocket (it checks that `conn` can be sent
    /// on and counts the message). `false` (and nothing sent) if `conn` cannot be
    /// sent on.
    pub fn send_shared(&mut self, conn: ConnId, frame: &Bytes) -> bool {
        if !self.can_send(conn) {
            return false;
        }
        self.ctx.send_shared(conn, frame.clone());
        self.sessions.stats.messages_out += 1;
        true
    }

    /// Starts the close handshake (§7.1.2): sends a close frame with `code` and
    /// `reason` (cut to fit 123 bytes), then waits up to
    /// [`WsConfig::close_timeout`] for the peer's close before closing TCP (then
    /// aborting it, whatever is still queued). The
    /// application's `on_close` follows this callback. Nothing if `conn` is not
    /// open.
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        let Sessions {
            by_index, scratch, ..
        } = &mut *self.sessions;
        let Some(session) = session_mut(by_index, conn) else {
            return;
        };
        if session.state != WsState::Open {
            return;
        }
        if session.busy {
            session.close_requested = Some((code, reason.to_string()));
        } else {
            scratch.clear();
            session.ws.close(code, reason, scratch);
            self.ctx.send_raw(conn, scratch);
        }
        self.sessions
            .end(self.ctx, conn, WsClosed::ByServer(code), WsState::Closing);
    }

    /// Fails the connection at once (§7.1.7): sends a close frame with `code` and
    /// `reason` behind what is queued, closes TCP once that is written, and waits
    /// for nothing. For a peer that is misbehaving or cannot keep up. A peer that
    /// does not read what is queued before the frame within
    /// [`WsConfig::close_timeout`] has its connection aborted then, the rest of the
    /// queue dropped. Nothing if `conn` is not open.
    pub fn fail(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        if !self.can_send(conn) {
            return;
        }
        self.sessions.scratch.clear();
        ws::write_close(
            &mut self.sessions.scratch,
            Some(CloseFrame { code, reason }),
        );
        self.ctx.send_raw(conn, &self.sessions.scratch);
        self.sessions
            .end(self.ctx, conn, WsClosed::ByServer(code), WsState::Done);
    }

    /// Stops decoding `conn`'s messages: the one being handled is the last until
    /// [`WsContext::resume_reading`]. What already arrived waits undecoded in
    /// the driver's buffer, and the socket is not read
    /// ([`Context::pause_reading`]), so TCP's flow control makes the peer wait:
    /// this is how an application paces a sender it cannot take more from now
    /// (the push hub, when its broadcast log is full). Frames to `conn` are
    /// still written. While paused, the keepalive does not count the peer's
    /// silence against it (its pongs wait unread too). Ignored unless the
    /// WebSocket is open; once it stops being open (a close frame sent or
    /// received), reading resumes by itself, so that the close handshake can
    /// finish.
    pub fn pause_reading(&mut self, conn: ConnId) {
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        if session.state != WsState::Open || session.paused {
            return;
        }
        session.paused = true;
        self.sessions.stats.read_pauses += 1;
        self.ctx.pause_reading(conn);
    }

    /// Decodes `conn`'s messages again after [`WsContext::pause_reading`]: what
    /// waits in the buffer first, in this turn. Ignored if it is not paused.
    pub fn resume_reading(&mut self, conn: ConnId) {
        let Some(session) = self.sessions.get_mut(conn) else {
            return;
        };
        if !session.paused {
            return;
        }
        session.paused = false;
        self.ctx.resume_reading(conn);
    }

    /// Whether `conn`'s messages are paused ([`WsContext::pause_reading`]).
    pub fn is_reading_paused(&self, conn: ConnId) -> bool {
        self.sessions.get(conn).is_some_and(|s| s.paused)
    }

    /// Offers `conn` to its socket in this turn, so that what was just appended
    /// to the log its [`WsApp::source`] reads is written ([`Context::wake_writer`]:
    /// each connection is woken once however often it is asked).
    pub fn wake_writer(&mut self, conn: ConnId) {
        self.ctx.wake_writer(conn);
    }

    /// Bytes queued for `conn` and not yet written to its socket, this callback's
    /// sends included, and what its [`WsApp::source`] still had to write (see
    /// [`Context::queued_bytes`]); `None` once it has closed.
    pub fn queued_bytes(&self, conn: ConnId) -> Option<usize> {
        self.ctx.queued_bytes(conn)
    }

    /// The peer's address of a WebSocket, known until its `on_close` has returned.
    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.sessions.get(conn).map(|s| s.peer)
    }

    /// Calls [`WsApp::on_timer`] with `data` after `after`. All 64 bits of `data`
    /// are the application's: the glue tells its own timers apart by their
    /// [`TimerId`], not by their data.
    pub fn set_timer(&mut self, after: Duration, data: u64) -> TimerId {
        self.ctx.set_timer(after, data)
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.ctx.cancel_timer(timer)
    }

    /// The server's totals (write system calls, bytes), as of now.
    pub fn server_stats(&self) -> &ServerStats {
        self.ctx.stats()
    }

    /// The glue's counters.
    pub fn stats(&self) -> &WsStats {
        &self.sessions.stats
    }

    /// The driver's context, for what is not WebSocket: answering a request held
    /// with [`Reply::Deferred`] or sending a part of a [`Reply::Stream`] from a
    /// WebSocket callback or a timer (a server that offers one event by several
    /// transports wakes them all from one place).
    pub fn http(&mut self) -> &mut Context<'b> {
        self.ctx
    }
}
