//! One connection's system calls: drive it (write, read, let it parse, write
//! again), read until `WouldBlock`, write until `WouldBlock`, and settle it (close,
//! FIN, poll interest, deadline) as its state machine says.
//!
//! An upgraded connection whose handler has a source ([`Handler::source`]) is
//! written by `Server::flush_source`: each `writev` takes the source's
//! `frame_rest` (the end of a frame a short write cut), then the connection's own
//! queued output (its private frames), then the rest of the source, so that a
//! private frame never lands inside a frame of the application's log. What the
//! kernel took of the source goes to [`Handler::source_written`]. Other
//! connections, and upgraded ones whose source is empty (one call to
//! [`Handler::source`] says so), are written by `Server::flush` as before: one
//! `write()` of the output buffer at a time.

use std::io::{self, IoSlice, Read, Write};
use std::mem;
use std::net::Shutdown;
use std::time::Instant;

use mio::{Interest, Token};

use super::{MAX_ROUNDS, SPARE_READ_BUFFERS, Server, count_capacity, mark_dirty, set_deadline};
use crate::server::h1::{SourceUse, WriteCall};
use crate::server::handler::{CloseReason, Context, Handler, Source};
use crate::server::ledger::ReadCall;

impl<H: Handler> Server<H> {
    /// Does everything that can be done on one connection now: write what is
    /// queued, read what arrived, answer complete requests, write the answers.
    pub(super) fn drive(&mut self, index: usize) {
        for _ in 0..MAX_ROUNDS {
            if let Err(reason) = self.flush(index) {
                return self.close(index, reason);
            }
            if let Err(reason) = self.read(index) {
                return self.close(index, reason);
            }
            let backlogged = self.process(index);
            if let Err(reason) = self.flush(index) {
                return self.close(index, reason);
            }
            let core = &self.core;
            let Some(conn) = core.conns.get_index(index) else {
                return;
            };
            let wants_read = conn.read_ready && conn.h1.wants_read(&core.config, core.max_input);
            // Backlogged, but the flush made room: parse what waits.
            let unblocked = backlogged && !conn.h1.backlogged(&core.config);
            if !unblocked && !wants_read {
                return self.settle(index);
            }
        }
        // It still has work: serve the others first, then come back.
        mark_dirty(&mut self.core, index);
        self.settle(index);
    }

    /// Drives the connections that actions or timers touched.
    pub(super) fn drive_dirty(&mut self) {
        // Bounded: a connection that keeps having work is left for the next turn
        // (the poll then does not block).
        for _ in 0..4 {
            if self.core.dirty.is_empty() {
                return;
            }
            let batch = mem::take(&mut self.core.dirty);
            for &index in &batch {
                if let Some(conn) = self.core.conns.get_index_mut(index) {
                    conn.dirty = false;
                }
            }
            for &index in &batch {
                self.drive(index);
            }
            // Reuse the batch's allocation if nothing was added meanwhile.
            if self.core.dirty.is_empty() {
                let mut batch = batch;
                batch.clear();
                self.core.dirty = batch;
            }
        }
    }

    /// Reads until `WouldBlock`, end of file, or a full buffer.
    pub(super) fn read(&mut self, index: usize) -> Result<(), CloseReason> {
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return Ok(());
        };
        if !conn.read_ready || !conn.h1.wants_read(&core.config, core.max_input) {
            return Ok(());
        }
        if !conn.h1.has_read_buffer()
            && let Some(buf) = core.spare_inputs.pop()
        {
            conn.h1.lend_read_buffer(buf);
        }
        let initial = core.config.read_buffer_bytes;
        while let Some(space) = conn.h1.read_space(initial, core.max_input) {
            let result = conn.socket.read(space);
            core.stats.read_calls += 1;
            let call = match result {
                Ok(0) => ReadCall::Ended,
                Ok(n) => ReadCall::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadCall::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.h1.on_read(ReadCall::Ended, core.now);
                    return Err(CloseReason::Error);
                }
            };
            // Only a read that brought bytes needs its own time (the request's
            // first byte); the clock is read once for it.
            let now = match call {
                ReadCall::Data(_) => Instant::now(),
                _ => core.now,
            };
            conn.h1.on_read(call, now);
            match call {
                ReadCall::Data(n) => core.stats.bytes_in += n as u64,
                ReadCall::WouldBlock | ReadCall::Ended => {
                    conn.read_ready = false;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Writes queued output until it is all written or `WouldBlock`.
    pub(super) fn flush(&mut self, index: usize) -> Result<(), CloseReason> {
        let Server { core, handler, .. } = self;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return Ok(());
        };
        let has_source = match conn.h1.source_use() {
            SourceUse::None => false,
            SourceUse::All => !handler.source(conn.id).is_empty(),
            SourceUse::FrameRest => handler.source(conn.id).frame_rest() > 0,
        };
        if has_source {
            return self.flush_source(index);
        }
        // Nothing from a source: the connection's own output, one `write()` at a
        // time.
        conn.h1.set_source_pending(0);
        while !conn.h1.output().is_empty() {
            let result = conn.socket.write(conn.h1.output());
            core.stats.write_calls += 1;
            let call = match result {
                Ok(0) => return Err(CloseReason::Error),
                Ok(n) => {
                    core.stats.bytes_out += n as u64;
                    WriteCall::Wrote(n)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => WriteCall::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(CloseReason::Error),
            };
            let stats = &mut core.stats;
            let resumed = conn
                .h1
                .on_write(call, &core.config, Instant::now(), |cost| {
                    stats.responses += 1;
                    handler.on_request_done(cost);
                });
            if resumed {
                // Backpressure over: bytes may have arrived while READABLE was off.
                conn.read_ready = true;
            }
            if call == WriteCall::WouldBlock {
                break;
            }
        }
        Ok(())
    }

    /// Writes an upgraded connection's output and its handler's source (see the
    /// module docs for the order) until both are written or `WouldBlock`.
    fn flush_source(&mut self, index: usize) -> Result<(), CloseReason> {
        let mut rounds = 0;
        loop {
            let Server { core, handler, .. } = self;
            let Some(conn) = core.conns.get_index_mut(index) else {
                return Ok(());
            };
            let id = conn.id;
            let source = match conn.h1.source_use() {
                SourceUse::All => handler.source(id),
                SourceUse::FrameRest => handler.source(id).frame_rest_only(),
                SourceUse::None => Source::NONE,
            };
            let output = conn.h1.output();
            if source.is_empty() && output.is_empty() {
                conn.h1.set_source_pending(0);
                return Ok(());
            }
            if rounds == MAX_ROUNDS {
                // A source that does not advance with what was written must not
                // hold the loop: come back after the others.
                conn.h1.set_source_pending(source.len());
                mark_dirty(core, index);
                return Ok(());
            }
            rounds += 1;
            let source_len = source.len();
            let rest_len = source.frame_rest();
            let output_len = output.len();
            let (r1, r2) = source.take(rest_len).slices();
            let (a1, a2) = source.skip(rest_len).slices();
            let slices = [r1, r2, output, a1, a2].map(IoSlice::new);
            let result = conn.socket.write_vectored(&slices);
            core.stats.write_calls += 1;
            let (n, blocked) = match result {
                Ok(0) => return Err(CloseReason::Error),
                Ok(n) => (n, false),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(CloseReason::Error),
            };
            core.stats.bytes_out += n as u64;
            // Split what the kernel took: the frame's rest, the private bytes,
            // then the source's next bytes.
            let before = n.min(rest_len);
            let private = (n - before).min(output_len);
            let from_source = (n - private).min(source_len);
            let now = Instant::now();
            let counted = output_len > 0;
            if counted {
                let call = if blocked {
                    WriteCall::WouldBlock
                } else {
                    WriteCall::Wrote(private)
                };
                let stats = &mut core.stats;
                let resumed = conn.h1.on_write(call, &core.config, now, |cost| {
                    stats.responses += 1;
                    handler.on_request_done(cost);
                });
                if resumed {
                    conn.read_ready = true;
                }
            }
            conn.h1.on_source_write(from_source, counted, now);
            conn.h1.set_source_pending(source_len - from_source);
            if from_source > 0 {
                let mut ctx = context!(core);
                handler.source_written(&mut ctx, id, from_source);
                self.apply_actions();
            }
            if blocked {
                return Ok(());
            }
        }
    }

    /// After a drive: close or send FIN if the connection says so, set the poll
    /// interest and the deadline, and count what happened.
    pub(super) fn settle(&mut self, index: usize) {
        // A body taken in parts that was just rejected or timed out.
        self.body_incomplete(index, false);
        let core = &mut self.core;
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        let settled = conn.h1.settle(&core.config, core.now, conn.dirty);
        let tally = settled.tally;
        core.stats.requests += tally.heads;
        if let Some(status) = tally.error_status {
            core.stats.error_responses.add(status);
        }
        if tally.timed_out {
            core.stats.timeouts += 1;
        }
        if tally.paused {
            core.stats.backpressure_pauses += 1;
        }
        if let Some(reason) = settled.close {
            return self.close(index, reason);
        }
        if settled.send_fin {
            let _ = conn.socket.shutdown(Shutdown::Write);
            conn.read_ready = true;
            mark_dirty(core, index);
        }
        let Some(conn) = core.conns.get_index_mut(index) else {
            return;
        };
        let queued = (conn.h1.queued() + conn.h1.source_pending()) as u64;
        core.stats.peak_queued_output_bytes = core.stats.peak_queued_output_bytes.max(queued);
        let want = match (settled.read, settled.write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            // Paused by the handler with nothing to write: read interest off.
            // (A registration needs some interest; WRITABLE reports once, on
            // registering, and then only after a write fills the socket.)
            (false, false) if conn.h1.reading_paused() => Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        if want != conn.interest {
            if core
                .registry
                .reregister(&mut conn.socket, Token(index), want)
                .is_err()
            {
                return self.close(index, CloseReason::Error);
            }
            conn.interest = want;
        }
        // Everything read is consumed: the buffer goes back to the loop, so an idle
        // connection holds none. One grown past the initial size for a burst (a
        // big head, a pipelined flood) is freed instead.
        if let Some(buf) = conn.h1.return_read_buffer()
            && buf.len() == core.config.read_buffer_bytes.max(1)
            && core.spare_inputs.len() < SPARE_READ_BUFFERS
        {
            core.spare_inputs.push(buf);
        }
        count_capacity(conn, &mut core.conn_capacity);
        let queued = queued as usize;
        core.queued_total = core.queued_total.saturating_sub(conn.counted_queued) + queued;
        conn.counted_queued = queued;
        set_deadline(conn, &mut core.timers, settled.deadline);
    }
}
