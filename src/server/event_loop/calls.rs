//! Calls into the application: the loop's start to [`Handler::on_start`], a complete request to [`Handler::on_request`], an
//! upgraded connection's bytes to [`Handler::on_upgraded_data`], the end of a turn to
//! [`Handler::on_turn_end`], and what the handler asked through its [`Context`],
//! carried out once it returns.

use std::mem;
use std::time::Instant;

use super::{Server, mark_dirty};
use crate::http::Response;
use crate::server::actions::Action;
use crate::server::h1::Step;
use crate::server::handler::{BodyMode, BodyPart, Context, Handler, Incoming, Reply};

impl<H: Handler> Server<H> {
    /// Tells the handler that the loop is starting (see [`Handler::on_start`]).
    pub(super) fn start(&mut self) {
        self.core.now = Instant::now();
        let core = &mut self.core;
        let mut ctx = context!(core);
        self.handler.on_start(&mut ctx);
        self.apply_actions();
    }

    /// Tells the handler that the turn is over (see [`Handler::on_turn_end`]).
    pub(super) fn turn_end(&mut self) {
        self.core.now = Instant::now();
        let core = &mut self.core;
        let mut ctx = context!(core);
        self.handler.on_turn_end(&mut ctx);
        self.apply_actions();
    }

    /// Lets the connection parse what is buffered, handing complete requests and
    /// upgraded bytes to the handler. Returns `true` if it stopped because too
    /// much output is queued.
    pub(super) fn process(&mut self, index: usize) -> bool {
        // The time a head is parsed: now, or when the handler of the request
        // before it returned.
        let mut now = Instant::now();
        loop {
            let core = &mut self.core;
            let Some(conn) = core.conns.get_index_mut(index) else {
                return false;
            };
            match conn.h1.step(&core.config, &core.date.date, now) {
                Step::Idle => return false,
                Step::Backlogged => return true,
                Step::Request => now = self.dispatch(index),
                Step::Head => self.head(index, now),
                Step::BodyPart => self.body_part(index),
                Step::Upgraded => {
                    if self.upgraded_data(index) == 0 {
                        // The handler needs more bytes than there are.
                        return false;
                    }
                }
            }
        }
    }

    /// Hands a complete request to the application and gives its answer back to
    /// the connection. Returns when the handler returned.
    pub(super) fn dispatch(&mut self, index: usize) -> Instant {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index(index) else {
            return Instant::now();
        };
        let id = conn.id;
        core.scratch.clear();
        let reply = match conn.h1.request() {
            Some((request, body)) => {
                let incoming = Incoming {
                    conn: id,
                    request,
                    body,
                };
                let mut ctx = context!(core);
                self.handler
                    .on_request(&mut ctx, &incoming, &mut core.scratch)
            }
            None => {
                // Cannot happen: the head is kept in the buffer until now.
                core.scratch = Response::text(500, "request head lost\n");
                Reply::Respond
            }
        };
        let handler_done = Instant::now();
        if let Some(conn) = core.conns.get_index_mut(index) {
            conn.h1
                .answer(reply, &core.scratch, &core.date.date, handler_done);
        }
        self.apply_actions();
        handler_done
    }

    /// Asks the handler how to take the body of a parsed head
    /// ([`Handler::on_head`]) and tells the connection.
    pub(super) fn head(&mut self, index: usize, now: Instant) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index(index) else {
            return;
        };
        let id = conn.id;
        core.scratch.clear();
        let mode = match conn.h1.request() {
            Some((request, _)) => {
                let incoming = Incoming {
                    conn: id,
                    request,
                    body: &[],
                };
                let mut ctx = context!(core);
                self.handler.on_head(&mut ctx, &incoming, &mut core.scratch)
            }
            None => BodyMode::Whole,
        };
        if let Some(conn) = core.conns.get_index_mut(index) {
            conn.h1
                .choose_body(mode, &core.scratch, &core.config, &core.date.date, now);
        }
        self.apply_actions();
    }

    /// Hands decoded body bytes of a request taken in parts to the handler
    /// ([`Handler::on_body_part`]).
    pub(super) fn body_part(&mut self, index: usize) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index(index) else {
            return;
        };
        let id = conn.id;
        let data = conn.h1.body_part();
        let mut ctx = context!(core);
        self.handler
            .on_body_part(&mut ctx, id, BodyPart::Data(data));
        if let Some(conn) = core.conns.get_index_mut(index) {
            conn.h1.body_part_taken();
        }
        self.apply_actions();
    }

    /// Tells the handler that a body it was taking in parts will not complete,
    /// if that is so (`closing`: the connection is closing now).
    pub(super) fn body_incomplete(&mut self, index: usize, closing: bool) {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        if !conn.h1.take_incomplete_parts(closing) {
            return;
        }
        let id = conn.id;
        let mut ctx = context!(core);
        self.handler
            .on_body_part(&mut ctx, id, BodyPart::Incomplete);
        self.apply_actions();
    }

    /// Lends the bytes of an upgraded connection to the handler; returns how many
    /// it used.
    pub(super) fn upgraded_data(&mut self, index: usize) -> usize {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return 0;
        };
        let id = conn.id;
        // The buffer is lent to the handler mutably (a WebSocket unmasks in
        // place), so it leaves the slab for the call: the context reads the slab
        // meanwhile. Moving it moves a few words, no bytes.
        let mut input = conn.h1.take_input();
        let mut ctx = context!(core);
        let used = self
            .handler
            .on_upgraded_data(&mut ctx, id, input.data_mut());
        if let Some(conn) = core.conns.get_index_mut(index) {
            conn.h1.return_input(input, used, core.max_input);
        }
        self.apply_actions();
        used
    }

    /// Carries out what the handler asked for through its context.
    pub(super) fn apply_actions(&mut self) {
        let core = &mut self.core;
        if !core.actions.wakes.is_empty() {
            core.last_busy = core.now;
            let wakes = core.actions.take_wakes();
            for &id in &wakes {
                if core.conns.get(id).is_some() {
                    mark_dirty(core, id.index());
                }
            }
            core.actions.return_wakes(wakes);
        }
        if core.actions.list.is_empty() {
            return;
        }
        core.last_busy = core.now;
        let mut list = mem::take(&mut core.actions.list);
        let mut data = mem::take(&mut core.actions.data);
        for action in list.drain(..) {
            let id = action.conn();
            let Some(conn) = core.conns.get_mut(id) else {
                continue;
            };
            if let Action::ResumeReading(_) = action
                && conn.h1.resume_reading()
            {
                // Bytes may have arrived while READABLE was off.
                conn.read_ready = true;
                mark_dirty(core, id.index());
                continue;
            }
            let h1 = &mut conn.h1;
            let date = &core.date.date;
            let applied = match action {
                Action::Respond(_, res) => h1.respond(&res, date),
                Action::StartStream(_, res) => h1.start_stream(&res, date),
                Action::Chunk(_, range) => h1.send_chunk(data.get(range).unwrap_or_default()),
                Action::EndStream(_) => h1.end_stream(),
                Action::Raw(_, range) => h1.send_raw(data.get(range).unwrap_or_default()),
                Action::Shared(_, bytes) => h1.send_raw(&bytes),
                Action::Close(_) => h1.close_after_output(),
                Action::Abort(_) => h1.abort(),
                Action::PauseReading(_) => h1.pause_reading(),
                Action::ResumeReading(_) => false, // carried out above
            };
            // An action that no longer fits the connection's phase is dropped.
            if applied {
                mark_dirty(core, id.index());
            }
        }
        core.actions.list = list;
        data.clear();
        core.actions.data = data;
        core.actions.clear_pending();
    }
}
