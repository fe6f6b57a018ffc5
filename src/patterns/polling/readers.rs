//! The held readers: long polls waiting, event streams and WebSockets open. The one
//! step timer, waking a job's readers when it moves, holding and releasing them,
//! long-poll waits and SSE heartbeats.

use super::*;

impl JobsApp {
    // ---- timers --------------------------------------------------------------

    /// Keeps the one step timer on the store's earliest deadline.
    pub(super) fn arm_step_timer(&mut self, ctx: &mut Context<'_>) {
        let next = self.store.next_deadline();
        match (self.step_timer, next) {
            (Some((_, at)), Some(next)) if at == next => {}
            (current, next) => {
                if let Some((timer, _)) = current {
                    ctx.cancel_timer(timer);
                }
                self.step_timer = next.map(|at| (ctx.set_timer_at(at, TIMER_STEP), at));
            }
        }
    }

    /// Schedules the journal's next sync, if it has unsynced appends.
    pub(super) fn arm_sync_timer(&mut self, ctx: &mut Context<'_>) {
        let Some(journal) = &self.journal else {
            return;
        };
        if self.sync_timer.is_none()
            && let Some(at) = journal.next_flush()
        {
            self.sync_timer = Some(ctx.set_timer_at(at, TIMER_SYNC));
        }
    }

    /// Syncs the journal if its policy says it is time (`force`: now, whatever
    /// it says).
    pub(super) fn sync_journal(&mut self, now: Instant, force: bool) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        let synced = if force {
            journal.sync().map(|()| true)
        } else {
            journal.flush_if_due(now)
        };
        if let Err(e) = synced {
            self.warn(&format!("journal sync failed: {e}"));
        }
    }

    /// The step timer fired: apply what is due, record it, wake the readers.
    pub(super) fn on_step(&mut self, ws: &mut WsContext<'_, '_>) {
        self.step_timer = None;
        let now = ws.now();
        let wall = wall_ms();
        let mut woke = std::mem::take(&mut self.woke);
        woke.clear();
        let steps_before = self.store.steps_applied();
        self.store.advance(now, wall, &mut woke);
        self.costs.updates += self.store.steps_applied() - steps_before;
        for job in &woke {
            let Some(update) = self
                .store
                .log(job)
                .and_then(|log| log.get(log.last_seq()).copied())
            else {
                continue; // finished and forgotten within this one late advance
            };
            let progress = update.progress;
            if let Some(journal) = &mut self.journal
                && let Err(e) = journal.progressed(job, progress, update.at_ms)
            {
                self.warn(&format!("journal append failed: {e}"));
            }
            self.wake(ws, *job, progress);
        }
        self.woke = woke;
        self.costs.jobs_held = self.store.len() as u64;
        self.arm_step_timer(ws.http());
        self.arm_sync_timer(ws.http());
    }

    /// Job `job` has a new update: every reader behind it gets it.
    pub(super) fn wake(&mut self, ws: &mut WsContext<'_, '_>, job: JobId, progress: u8) {
        let Some(readers) = self.readers.remove(&job) else {
            return;
        };
        let mut wake = WakeCost {
            job,
            progress,
            started: ws.now(),
            long_polls: 0,
            streams: 0,
            websockets: 0,
            backlogged: 0,
            time_to_all: Duration::ZERO,
        };
        let mut still = Vec::with_capacity(readers.conns.len());
        let last_seq = self.store.log(&job).map(|l| l.last_seq());
        // Every long poll this update releases gets the same answer: built once.
        let mut answer = None;
        for conn in readers.conns {
            let Some(held) = self.held.get(&conn).filter(|h| h.job == job) else {
                continue; // left since, or moved on
            };
            let pattern = held.kind.pattern();
            if pattern == Pattern::LongPoll && last_seq.is_some_and(|seq| seq <= held.cursor) {
                // Its `since` is still ahead of the job: it goes on waiting.
                still.push(conn);
                continue;
            }
            let before = self.costs.of(pattern).events_sent;
            let open = match pattern {
                Pattern::LongPoll => {
                    self.answer_long_poll_with(ws.http(), conn, Release::Update, &mut answer)
                }
                Pattern::Sse => self.send_events(ws.http(), conn),
                _ => self.send_ws(ws, conn),
            };
            if self.costs.of(pattern).events_sent > before {
                self.costs.of_mut(pattern).wakeups += 1;
                self.turn_woken.push(conn);
                match pattern {
                    Pattern::LongPoll => wake.long_polls += 1,
                    Pattern::Sse => wake.streams += 1,
                    _ => wake.websockets += 1,
                }
            }
            if open {
                still.push(conn);
            }
        }
        if !still.is_empty() {
            self.readers.insert(
                job,
                Readers {
                    conns: still,
                    stale: 0,
                },
            );
        }
        if wake.readers() > 0 {
            self.turn_wakes.push(wake);
        }
    }

    // ---- holding and releasing -------------------------------------------------

    pub(super) fn hold(&mut self, conn: ConnId, job: JobId, cursor: u64, kind: HeldKind) {
        let pattern = kind.pattern();
        if let HeldKind::Long { timer }
        | HeldKind::Sse {
            timer: Some(timer), ..
        } = kind
        {
            self.timers.insert(timer, conn);
        }
        self.held.insert(conn, Held { job, cursor, kind });
        self.readers.entry(job).or_default().conns.push(conn);
        let cost = self.costs.of_mut(pattern);
        cost.held_now += 1;
        cost.held_total += 1;
    }

    /// Forgets a held reader; its timer is cancelled. Returns what it was.
    pub(super) fn release(&mut self, ctx: &mut Context<'_>, conn: ConnId) -> Option<Held> {
        let held = self.held.remove(&conn)?;
        match held.kind {
            HeldKind::Long { timer }
            | HeldKind::Sse {
                timer: Some(timer), ..
            } => {
                ctx.cancel_timer(timer);
                self.timers.remove(&timer);
            }
            _ => {}
        }
        let pattern = held.kind.pattern();
        let cost = self.costs.of_mut(pattern);
        cost.held_now = cost.held_now.saturating_sub(1);
        if let Some(readers) = self.readers.get_mut(&held.job) {
            readers.stale += 1;
            if readers.stale * 2 > readers.conns.len() {
                let held_now = &self.held;
                readers.conns.retain(|c| held_now.contains_key(c));
                readers.stale = 0;
                if readers.conns.is_empty() {
                    self.readers.remove(&held.job);
                }
            }
        }
        Some(held)
    }

    /// Answers the held long poll on `conn` with the job's current status (404 if
    /// it was forgotten meanwhile), and forgets it. Returns `false`: it is no
    /// longer held.
    pub(super) fn answer_long_poll(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        why: Release,
    ) -> bool {
        self.answer_long_poll_with(ctx, conn, why, &mut None)
    }

    /// [`answer_long_poll`](Self::answer_long_poll), with the status answer kept in
    /// `answer` for the next poll on the same job: the callers that answer many
    /// polls of one job in one go (an update, every poll it releases) build it once.
    pub(super) fn answer_long_poll_with(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        why: Release,
        answer: &mut Option<Response>,
    ) -> bool {
        let Some(held) = self.release(ctx, conn) else {
            return false;
        };
        let res = match answer {
            Some(res) => res.clone(),
            None => {
                let mut res = Response::new(200);
                self.status_response(&held.job, &mut res);
                answer.insert(res).clone()
            }
        };
        let cost = self.costs.of_mut(Pattern::LongPoll);
        cost.events_sent += 1;
        if why == Release::WaitOver {
            cost.timed_out += 1;
        }
        let status = res.status();
        ctx.respond(conn, res);
        let serial = conn.serial();
        let job = held.job;
        self.trace(|start| {
            TraceLine::new(start, Instant::now(), Some(serial), "released").what(format_args!(
                "long poll on {job} -> {status}{}",
                match why {
                    Release::Update => "",
                    Release::WaitOver => " (wait ran out)",
                    Release::Shutdown => " (server shutting down)",
                }
            ))
        });
        false
    }

    /// Sends the events `conn`'s stream has not had yet; ends the stream after the
    /// last. Returns whether it is still open.
    pub(super) fn send_events(&mut self, ctx: &mut Context<'_>, conn: ConnId) -> bool {
        let Some(held) = self.held.get_mut(&conn) else {
            return false;
        };
        let job = held.job;
        let Some(log) = self.store.log(&job) else {
            // The job was forgotten: nothing more will come.
            ctx.end_stream(conn);
            self.release(ctx, conn);
            return false;
        };
        self.text.clear();
        let mut sent = 0u64;
        let mut cursor = held.cursor;
        let after = events_after(log, cursor);
        if let Some((first, last)) = after.missed {
            let config = self.store.config();
            let (from, to) = (
                config.progress_for_seq(first).unwrap_or(0),
                config.progress_for_seq(last).unwrap_or(0),
            );
            push_missed(&mut self.text, from, to, last - first + 1);
        }
        if let Some(events) = after.events {
            for (seq, update) in events {
                push_event(&mut self.text, update);
                cursor = seq;
                sent += 1;
            }
        }
        held.cursor = cursor;
        let ended = matches!(log.read(cursor), Read::Ended);
        let now = ctx.now();
        if sent > 0 {
            if let HeldKind::Sse { last_sent, .. } = &mut held.kind {
                *last_sent = now;
            }
            ctx.send_chunk(conn, self.text.as_bytes());
            let bytes = chunk_wire_len(self.text.len());
            self.count_streamed(conn, Pattern::Sse, bytes);
            self.costs.of_mut(Pattern::Sse).events_sent += sent;
            let shown = self.shown(cursor);
            self.trace(|start| {
                TraceLine::new(start, now, Some(conn.serial()), "sse event").what(format_args!(
                    "{job}: {} up to {shown}%, {bytes} B queued",
                    Count(sent, "event", "events")
                ))
            });
        }
        if ended {
            ctx.end_stream(conn);
            self.release(ctx, conn);
            return false;
        }
        true
    }

    /// Sends the messages `conn`'s WebSocket has not had yet; closes it with 1000
    /// after the last. Returns whether it is still open.
    pub(super) fn send_ws(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId) -> bool {
        let Some(held) = self.held.get_mut(&conn) else {
            return false;
        };
        let job = held.job;
        let Some(log) = self.store.log(&job) else {
            ws.close(conn, CloseCode::NORMAL, "job forgotten");
            return false;
        };
        let mut sent = 0u64;
        let mut bytes = 0u64;
        let mut cursor = held.cursor;
        // A WebSocket reader that missed updates gets the oldest kept: its
        // messages have one form (a status line), so nothing else is sent.
        if let Some(events) = events_after(log, cursor).events {
            for (seq, update) in events {
                self.text.clear();
                push_status_line(&mut self.text, update);
                if ws.send_text(conn, &self.text) {
                    sent += 1;
                    bytes += ws_frame_len(self.text.len());
                }
                cursor = seq;
            }
        }
        held.cursor = cursor;
        let ended = matches!(log.read(cursor), Read::Ended);
        if sent > 0 {
            let cost = self.costs.of_mut(Pattern::WebSocket);
            cost.events_sent += sent;
            cost.bytes_out += bytes;
            let (serial, now, shown) = (conn.serial(), ws.now(), self.shown(cursor));
            self.trace(|start| {
                TraceLine::new(start, now, Some(serial), "ws update").what(format_args!(
                    "{job}: {} up to {shown}%, {bytes} B queued",
                    Count(sent, "message", "messages")
                ))
            });
        }
        if ended {
            // `on_close` follows and releases it. The close frame: 2 B of header,
            // 2 B of code, the reason.
            ws.close(conn, CloseCode::NORMAL, FINISHED);
            self.costs.of_mut(Pattern::WebSocket).bytes_out += ws_frame_len(2 + FINISHED.len());
            return false;
        }
        true
    }

    /// The body and stamp of a status answer for `job`; 404 if it is gone.
    pub(super) fn status_response(&self, job: &JobId, res: &mut Response) {
        let update = self
            .store
            .log(job)
            .and_then(|log| log.get(log.last_seq()).copied());
        match update {
            Some(update) => {
                res.set_status(200);
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                let mut at = Vec::new();
                crate::http::response::push_decimal(&mut at, update.at_ms);
                res.header("Job-Updated-At", &at);
                res.body_mut()
                    .extend_from_slice(format!("JobStatus: {}%\n", update.progress).as_bytes());
            }
            None => not_found(res, job, self.config.jobs.keep),
        }
    }

    /// Counts `bytes` of a stream part on `conn`'s current request.
    pub(super) fn count_streamed(&mut self, conn: ConnId, pattern: Pattern, bytes: u64) {
        self.costs.of_mut(pattern).bytes_out += bytes;
        if let Some(tag) = self.tags.get_mut(&conn.serial()).and_then(|q| q.back_mut()) {
            tag.streamed += bytes;
        }
    }

    /// A held long poll's wait ran out, or a stream's heartbeat is due.
    pub(super) fn on_held_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        let Some(conn) = self.timers.remove(&timer) else {
            return;
        };
        if data == TIMER_WAIT {
            self.answer_long_poll(ws.http(), conn, Release::WaitOver);
            return;
        }
        let Some(every) = self.config.heartbeat else {
            return;
        };
        let now = ws.now();
        let Some(Held {
            kind:
                HeldKind::Sse {
                    timer: slot,
                    last_sent,
                },
            ..
        }) = self.held.get_mut(&conn)
        else {
            return;
        };
        let quiet = now.saturating_duration_since(*last_sent) >= every;
        if quiet {
            *last_sent = now;
        }
        // The next heartbeat is due `every` after the last thing sent.
        let next = ws.http().set_timer_at(*last_sent + every, TIMER_HEARTBEAT);
        *slot = Some(next);
        self.timers.insert(next, conn);
        if quiet {
            ws.http().send_chunk(conn, HEARTBEAT.as_bytes());
            let bytes = chunk_wire_len(HEARTBEAT.len());
            self.count_streamed(conn, Pattern::Sse, bytes);
            self.trace(|start| {
                TraceLine::new(start, now, Some(conn.serial()), "heartbeat").what(format_args!(
                    "comment on a quiet event stream, {bytes} B queued"
                ))
            });
        }
    }
}
