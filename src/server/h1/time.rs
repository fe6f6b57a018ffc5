//! The connection's clock: which deadline comes next, what happens when it
//! passes, the buffer release and the shutdown grace, and what the driver must do
//! after each drive ([`H1Conn::settle`]). Time is passed in; nothing here reads a
//! clock.

use std::time::Instant;

use super::{H1Conn, Phase, Settled};
use crate::http::date::HttpDate;
use crate::http::{HttpError, Response};
use crate::server::config::Config;
use crate::server::handler::CloseReason;

impl H1Conn {
    /// When [`H1Conn::on_deadline`] must next be called, if ever.
    fn deadline(&self, config: &Config) -> Option<Instant> {
        let queued = self.queued();
        let mut at = match self.phase {
            // The handler holds the connection: no parse deadline meanwhile.
            Phase::Head | Phase::Body if self.app_paused => None,
            Phase::Head if self.input.is_empty() && queued == 0 && self.requests == 0 => {
                Some(self.accepted + config.header_timeout)
            }
            Phase::Head if !self.input.is_empty() && !self.backlogged(config) => {
                Some(self.ledger_first_byte() + config.header_timeout)
            }
            Phase::Head | Phase::Closing => Some(self.last_activity + config.idle_timeout),
            Phase::Body => Some(self.body_progress + config.body_timeout),
            Phase::Lingering => Some(self.linger_since + config.linger_timeout),
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => None,
        };
        if self.holds_idle_buffers() {
            at = earliest(at, self.last_activity + config.idle_release);
        }
        if let Some(since) = self.shutting_down {
            at = earliest(at, since + config.shutdown_grace);
        }
        at
    }

    /// When the head being received began (its first byte, or the read that
    /// brought it with an earlier request).
    #[inline]
    fn ledger_first_byte(&self) -> Instant {
        self.ledger.first_byte()
    }

    /// Whether buffers grown for past traffic could be given back: nothing
    /// queued, nothing being received, and storage held.
    #[inline]
    fn holds_idle_buffers(&self) -> bool {
        self.queued() == 0
            && self.input.is_empty()
            && (self.output.capacity() > 0
                || self.body.capacity() > 0
                || self.ledger.capacity() > 0)
            && !matches!(self.phase, Phase::Body | Phase::Closing | Phase::Lingering)
    }

    /// A deadline may have passed: act on whichever did.
    pub(crate) fn on_deadline(&mut self, config: &Config, date: &HttpDate, now: Instant) {
        if self
            .shutting_down
            .is_some_and(|at| at + config.shutdown_grace <= now)
        {
            self.close_now = Some(CloseReason::Shutdown);
            return;
        }
        if self.holds_idle_buffers() && self.last_activity + config.idle_release <= now {
            self.release_buffers();
        }
        match self.phase {
            Phase::Head if self.input.is_empty() || self.backlogged(config) => {
                let since = if self.requests == 0 && self.queued() == 0 && self.input.is_empty() {
                    self.accepted + config.header_timeout
                } else {
                    self.last_activity + config.idle_timeout
                };
                if since <= now {
                    // Idle between requests (or never sent anything): close quietly.
                    self.close_now = Some(CloseReason::Timeout);
                    self.tally.timed_out = true;
                }
            }
            Phase::Head => {
                if self.ledger_first_byte() + config.header_timeout <= now {
                    // RFC 9110 §15.5.9: 408, the head did not arrive in time.
                    self.reject_error(&HttpError::HeadTimeout, date);
                }
            }
            Phase::Closing => {
                if self.last_activity + config.idle_timeout <= now {
                    self.close_now = Some(CloseReason::Timeout);
                    self.tally.timed_out = true;
                }
            }
            Phase::Body => {
                if self.body_progress + config.body_timeout <= now {
                    let mut res = Response::text(
                        408,
                        "request body not received within the timeout (RFC 9110 section 15.5.9)\n",
                    );
                    res.set_close();
                    self.reject(&res, CloseReason::Timeout, date);
                }
            }
            Phase::Lingering => {
                if self.linger_since + config.linger_timeout <= now {
                    self.close_now = Some(self.close_reason);
                }
            }
            Phase::Waiting | Phase::Streaming | Phase::Upgraded => {}
        }
    }

    /// Gives back the output, body and cost-record buffers (all empty).
    pub(crate) fn release_buffers(&mut self) {
        if self.queued() == 0 {
            self.output = Vec::new();
            self.out_pos = 0;
        }
        self.body = Vec::new();
        self.ledger.release();
    }

    /// The server is shutting down as of `now`: no request after the one in
    /// progress is served, and a connection with nothing in progress closes.
    pub(crate) fn begin_shutdown(&mut self, now: Instant) {
        if self.shutting_down.is_some() {
            return;
        }
        self.shutting_down = Some(now);
        if self.phase == Phase::Head && self.input.is_empty() {
            if self.queued() == 0 {
                self.close_now = Some(CloseReason::Shutdown);
            } else {
                self.phase = Phase::Closing;
                self.close_reason = CloseReason::Shutdown;
            }
        }
    }

    // ----- after each drive -----

    /// After the driver read, stepped and wrote: whether to close or send FIN,
    /// the poll interest, and the next deadline. `more_work`: actions for this
    /// connection are still to be carried out (do not close yet).
    pub(crate) fn settle(&mut self, config: &Config, now: Instant, more_work: bool) -> Settled {
        let mut settled = Settled {
            close: self.close_now,
            send_fin: false,
            read: false,
            write: false,
            deadline: None,
            tally: std::mem::take(&mut self.tally),
        };
        if settled.close.is_some() {
            return settled;
        }
        // The handler's source counts: FIN and WRITABLE interest wait for it.
        let queued = self.queued() + self.source_pending;
        if queued == 0 && !more_work {
            match self.phase {
                Phase::Closing if self.read_closed => {
                    settled.close = Some(self.close_reason);
                    return settled;
                }
                Phase::Closing => {
                    // Everything is written: FIN, then linger until the client
                    // closes too. Bytes may be waiting already (a pipelined
                    // request after a bad one): the driver reads them now.
                    settled.send_fin = true;
                    self.phase = Phase::Lingering;
                    self.linger_since = now;
                    self.input.clear();
                }
                Phase::Lingering if self.read_closed => {
                    settled.close = Some(self.close_reason);
                    return settled;
                }
                Phase::Head | Phase::Body | Phase::Upgraded if self.read_closed => {
                    // The client is done sending and everything it asked for is
                    // answered (what is left is at most a partial request).
                    settled.close = Some(CloseReason::PeerClosed);
                    return settled;
                }
                _ => {}
            }
        }
        if self.read_closed
            && matches!(self.phase, Phase::Waiting | Phase::Streaming)
            && !config.hold_after_half_close
        {
            // The client is gone: nobody will read the held answer or the stream.
            settled.close = Some(CloseReason::PeerClosed);
            return settled;
        }
        let backlogged = self.backlogged(config);
        settled.tally.paused = backlogged && !self.paused;
        self.paused = backlogged;
        settled.read = !self.app_paused
            && (!self.paused || matches!(self.phase, Phase::Waiting | Phase::Streaming));
        settled.write = queued > 0;
        settled.deadline = self.deadline(config);
        settled
    }
}

/// The earlier of a deadline and another.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}
