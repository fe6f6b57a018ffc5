//! The [`WsApp`] callbacks the WebSocket glue calls: requests in, handshakes,
//! WebSocket subscribers, departures, timers, shutdown, and the cost of a
//! wake-up at the end of its turn.

use super::*;

impl WsApp for JobsApp {
    fn on_http(&mut self, ctx: &mut Context<'_>, req: &Incoming<'_>, res: &mut Response) -> Reply {
        let (pattern, reply) = self.route(ctx, req, res);
        let cost = self.costs.of_mut(pattern);
        cost.requests += 1;
        cost.bytes_in += request_bytes(req);
        self.tags
            .entry(req.conn().serial())
            .or_default()
            .push_back(Tag {
                pattern,
                streamed: 0,
            });
        if reply == Reply::Stream {
            // The first part goes out as the first chunk: counted now, like
            // every part after it (the head is counted when the stream ends).
            self.count_streamed(req.conn(), pattern, chunk_wire_len(res.body().len()));
        }
        reply
    }

    fn on_handshake(
        &mut self,
        _ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> bool {
        // The 101 (or the refusal) is this handshake's answer: its bytes count
        // for the WebSocket pattern when it is written.
        self.tags
            .entry(req.conn().serial())
            .or_default()
            .push_back(Tag {
                pattern: Pattern::WebSocket,
                streamed: 0,
            });
        self.costs.of_mut(Pattern::WebSocket).bytes_in += request_bytes(req);
        let request = req.request();
        if request.path() != "/jobs" {
            res.set_status(404);
            res.header("Content-Type", "text/plain; charset=utf-8");
            res.body_mut()
                .extend_from_slice(b"the WebSocket is at /jobs?jobId=ID\n");
            return false;
        }
        let query = request.query().unwrap_or("");
        let Ok(job) = self.job_param(query, res) else {
            return false;
        };
        let since_ok = match query::param(query, "since") {
            Ok(None) => true,
            Ok(Some(since)) if self.cursor_of(&since).is_some() => true,
            Ok(Some(_)) => {
                let hint = self.grid_hint();
                bad_request(res, "since", &hint);
                false
            }
            Err(e) => {
                bad_request(res, "since", &e.to_string());
                false
            }
        };
        if since_ok && self.store.status(&job).is_none() {
            not_found(res, &job, self.config.jobs.keep);
            return false;
        }
        since_ok
    }

    fn on_open(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, opened: &Opened<'_>) {
        // `on_handshake` checked the query; it is read again from the target.
        let query = opened.target.split_once('?').map_or("", |(_, q)| q);
        let job = query::param(query, "jobId")
            .ok()
            .flatten()
            .and_then(|t| JobId::parse(&t));
        let cursor = query::param(query, "since")
            .ok()
            .flatten()
            .and_then(|s| self.cursor_of(&s))
            .unwrap_or(0);
        let Some(job) = job.filter(|j| self.store.status(j).is_some()) else {
            ws.close(conn, CloseCode::POLICY_VIOLATION, "no such job");
            return;
        };
        self.costs.of_mut(Pattern::WebSocket).requests += 1;
        self.hold(conn, job, cursor, HeldKind::Ws);
        self.send_ws(ws, conn);
    }

    fn on_start(&mut self, ws: &mut WsContext<'_, '_>) {
        // Jobs restored from the journal step on before anyone connects.
        self.arm_step_timer(ws.http());
        self.arm_sync_timer(ws.http());
    }

    fn on_message(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, msg: Message<'_>) {
        // Updates flow one way; a client message is not part of the protocol.
        let _ = msg;
        ws.close(
            conn,
            CloseCode::POLICY_VIOLATION,
            "this endpoint only sends",
        );
    }

    fn on_close(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, closed: WsClosed) {
        self.tags.remove(&conn.serial());
        if self.release(ws.http(), conn).is_some()
            && !matches!(closed, WsClosed::ByServer(_) | WsClosed::Shutdown)
        {
            self.costs.of_mut(Pattern::WebSocket).left_while_held += 1;
        }
    }

    fn on_http_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, reason: CloseReason) {
        self.tags.remove(&conn.serial());
        let Some(held) = self.release(ctx, conn) else {
            return;
        };
        let pattern = held.kind.pattern();
        if reason == CloseReason::Shutdown {
            return;
        }
        self.costs.of_mut(pattern).left_while_held += 1;
        let (now, job) = (ctx.now(), held.job);
        self.trace(|start| {
            TraceLine::new(start, now, Some(conn.serial()), "left").what(format_args!(
                "{} on {job}: client gone while held",
                match pattern {
                    Pattern::LongPoll => "long poll",
                    Pattern::Sse => "event stream",
                    _ => pattern.name(),
                }
            ))
        });
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        if cost.handler_done.is_none() {
            // Bad input the driver answered itself: never routed.
            let other = self.costs.of_mut(Pattern::Other);
            other.bytes_in += cost.bytes_in();
            other.bytes_out += cost.bytes_out;
            return;
        }
        let Some(queue) = self.tags.get_mut(&cost.conn) else {
            return;
        };
        let Some(tag) = queue.pop_front() else {
            return;
        };
        if queue.is_empty() {
            self.tags.remove(&cost.conn);
        }
        let c = self.costs.of_mut(tag.pattern);
        c.bytes_out += cost.bytes_out.saturating_sub(tag.streamed);
    }

    fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId, data: u64) {
        match data {
            TIMER_STEP if self.step_timer.is_some_and(|(t, _)| t == timer) => self.on_step(ws),
            TIMER_SYNC => {
                self.sync_timer = None;
                self.sync_journal(ws.now(), false);
                self.arm_sync_timer(ws.http());
            }
            TIMER_WAIT | TIMER_HEARTBEAT => self.on_held_timer(ws, timer, data),
            _ => {}
        }
        // A step may land while nothing else happens: schedule what comes next.
        self.arm_step_timer(ws.http());
    }

    fn on_shutdown(&mut self, ws: &mut WsContext<'_, '_>) {
        // Held long polls get the current status; streams end. WebSockets get
        // their 1001 from the glue.
        let conns: Vec<(ConnId, Pattern)> = self
            .held
            .iter()
            .map(|(c, h)| (*c, h.kind.pattern()))
            .collect();
        for (conn, pattern) in conns {
            match pattern {
                Pattern::LongPoll => {
                    self.answer_long_poll(ws.http(), conn, Release::Shutdown);
                }
                Pattern::Sse => {
                    ws.http().end_stream(conn);
                    self.release(ws.http(), conn);
                }
                _ => {}
            }
        }
        self.sync_journal(ws.now(), true);
        self.costs.loop_cpu = thread_cpu_time();
        self.costs.journal = self.journal.as_mut().map(|j| j.costs());
        self.costs.jobs_held = self.store.len() as u64;
        if let Some((_, observer)) = &mut self.observer {
            observer(JobsReport::Costs(&self.costs));
        }
    }

    fn on_turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        // With `sync_every` zero, a turn that appended syncs before the loop
        // sleeps; otherwise this syncs only if the interval has passed.
        self.sync_journal(ws.now(), false);
        // Records left for the next sync (one was still running) need a wake-up.
        self.arm_sync_timer(ws.http());
        if self.turn_wakes.is_empty() {
            return;
        }
        let now = ws.now();
        let backlogged = self
            .turn_woken
            .drain(..)
            .filter(|c| ws.http().queued_bytes(*c).is_some_and(|q| q > 0))
            .count() as u64;
        let wakes = std::mem::take(&mut self.turn_wakes);
        let last = wakes.len().saturating_sub(1);
        for (i, mut wake) in wakes.into_iter().enumerate() {
            wake.time_to_all = now.saturating_duration_since(wake.started);
            // The backlog is the turn's: told with its last wake-up.
            if i == last {
                wake.backlogged = backlogged;
            }
            if self
                .costs
                .slowest_wake
                .is_none_or(|s| wake.time_to_all > s.time_to_all)
            {
                self.costs.slowest_wake = Some(wake);
            }
            self.costs.last_wake = Some(wake);
            self.trace(|start| {
                let mut what = format!("{} {}%:", wake.job, wake.progress);
                for (n, one, many) in [
                    (wake.long_polls, "long poll answered", "long polls answered"),
                    (wake.streams, "stream sent", "streams sent"),
                    (wake.websockets, "websocket sent", "websockets sent"),
                ] {
                    if n > 0 {
                        what.push_str(&format!(" {},", Count(n, one, many)));
                    }
                }
                what.pop();
                if wake.backlogged > 0 {
                    what.push_str(&format!(" ({} backlogged)", wake.backlogged));
                }
                what.push_str(&format!("; reached all in {}", Dur(wake.time_to_all)));
                // Stamped when it was over, as every line is: its start is the
                // time less `reached all in`.
                let over = wake
                    .started
                    .checked_add(wake.time_to_all)
                    .unwrap_or(wake.started);
                TraceLine::new(start, over, None, "wake-up").what(what)
            });
        }
    }
}
