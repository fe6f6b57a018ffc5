//! The requests: routing, each parameter checked (400 naming which), submit, the
//! short and the long poll, opening an event stream.

use super::*;

impl JobsApp {
    /// The progress shown for sequence number `seq` (0 before the first).
    pub(super) fn shown(&self, seq: u64) -> u8 {
        self.store.config().progress_for_seq(seq).unwrap_or(0)
    }

    /// Routes a plain request.
    pub(super) fn route(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> (Pattern, Reply) {
        let request = req.request();
        let method = request.method();
        let query = request.query().unwrap_or("");
        match request.path() {
            "/" => {
                if !is_get(method) {
                    return (Pattern::Other, method_not_allowed(res, GET));
                }
                res.header("Content-Type", "text/html; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut().extend_from_slice(LAB_PAGE.as_bytes());
                (Pattern::Other, Reply::Respond)
            }
            "/submit" => {
                if method != "POST" {
                    return (Pattern::Submit, method_not_allowed(res, "POST"));
                }
                (Pattern::Submit, self.submit(ctx, res))
            }
            "/checkstatus" => {
                if !is_get(method) {
                    return (Pattern::ShortPoll, method_not_allowed(res, GET));
                }
                self.check_status(ctx, req.conn(), query, res)
            }
            "/events" => {
                if !is_get(method) {
                    return (Pattern::Sse, method_not_allowed(res, GET));
                }
                (Pattern::Sse, self.events(ctx, req, query, res))
            }
            "/jobs" => {
                if !is_get(method) {
                    return (Pattern::WebSocket, method_not_allowed(res, GET));
                }
                not_a_websocket(res);
                (Pattern::WebSocket, Reply::Respond)
            }
            "/stats" => {
                if !is_get(method) {
                    return (Pattern::Other, method_not_allowed(res, GET));
                }
                self.costs.loop_cpu = thread_cpu_time();
                self.costs.journal = self.journal.as_mut().map(|j| j.costs());
                self.costs.jobs_held = self.store.len() as u64;
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut()
                    .extend_from_slice(self.costs.to_stats_text().as_bytes());
                (Pattern::Other, Reply::Respond)
            }
            _ => {
                res.set_status(404);
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.body_mut().extend_from_slice(
                    b"no such path: try GET /, POST /submit, GET /checkstatus, GET /events, ws /jobs, GET /stats\n",
                );
                (Pattern::Other, Reply::Respond)
            }
        }
    }

    /// `POST /submit`: a new job, its handle at once.
    pub(super) fn submit(&mut self, ctx: &mut Context<'_>, res: &mut Response) -> Reply {
        let wall = wall_ms();
        match self.store.submit(ctx.now(), wall) {
            Ok(id) => {
                if let Some(journal) = &mut self.journal
                    && let Err(e) = journal.submitted(&id, wall)
                {
                    // The handle could not be recorded: a restart would not know
                    // it. Say so rather than hand out a handle that may vanish.
                    res.set_status(500);
                    res.header("Content-Type", "text/plain; charset=utf-8");
                    res.body_mut().extend_from_slice(
                        format!("the job could not be recorded: {e}\n").as_bytes(),
                    );
                    return Reply::Respond;
                }
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Cache-Control", "no-store");
                res.body_mut()
                    .extend_from_slice(format!("{id}\n").as_bytes());
                self.costs.jobs_held = self.store.len() as u64;
                self.arm_step_timer(ctx);
                self.arm_sync_timer(ctx);
            }
            Err(full) => {
                res.set_status(503);
                res.header("Content-Type", "text/plain; charset=utf-8");
                res.header("Retry-After", full.retry_after_secs().to_string());
                res.body_mut()
                    .extend_from_slice(format!("{full}\n").as_bytes());
            }
        }
        Reply::Respond
    }

    /// `GET /checkstatus`: short poll, or long poll with `wait` and `since`.
    pub(super) fn check_status(
        &mut self,
        ctx: &mut Context<'_>,
        conn: ConnId,
        query: &str,
        res: &mut Response,
    ) -> (Pattern, Reply) {
        let wait = match query::param(query, "wait") {
            Ok(w) => w,
            Err(e) => return (Pattern::LongPoll, bad_request(res, "wait", &e.to_string())),
        };
        let pattern = if wait.is_some() {
            Pattern::LongPoll
        } else {
            Pattern::ShortPoll
        };
        let job = match self.job_param(query, res) {
            Ok(job) => job,
            Err(reply) => return (pattern, reply),
        };
        let Some(wait) = wait else {
            // `status_response` answers 404 for a job not held.
            self.status_response(&job, res);
            if res.status() == 200 {
                self.costs.of_mut(Pattern::ShortPoll).events_sent += 1;
            }
            return (pattern, Reply::Respond);
        };
        let wait = match wait.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs).min(self.config.max_wait),
            Err(_) => {
                return (
                    pattern,
                    bad_request(res, "wait", "expected whole seconds, such as wait=25"),
                );
            }
        };
        let since = match query::param(query, "since") {
            Ok(Some(since)) => since,
            Ok(None) => {
                return (
                    pattern,
                    bad_request(
                        res,
                        "since",
                        "required with wait: the last progress seen, such as since=40",
                    ),
                );
            }
            Err(e) => return (pattern, bad_request(res, "since", &e.to_string())),
        };
        let Some(cursor) = self.cursor_of(&since) else {
            return (pattern, bad_request(res, "since", &self.grid_hint()));
        };
        let Some(log) = self.store.log(&job) else {
            not_found(res, &job, self.config.jobs.keep);
            return (pattern, Reply::Respond);
        };
        // Answered at once if there is already something after `since`, or the
        // job has ended (nothing more will come), or no wait was asked for.
        let hold = matches!(log.read(cursor), Read::UpToDate | Read::Ahead { .. });
        if !hold || wait.is_zero() {
            self.status_response(&job, res);
            self.costs.of_mut(Pattern::LongPoll).events_sent += 1;
            return (pattern, Reply::Respond);
        }
        let timer = ctx.set_timer(wait, TIMER_WAIT);
        self.hold(conn, job, cursor, HeldKind::Long { timer });
        let now = ctx.now();
        self.trace(|start| {
            TraceLine::new(start, now, Some(conn.serial()), "held").what(format_args!(
                "long poll on {job} since {since}%, up to {}",
                Dur(wait)
            ))
        });
        (pattern, Reply::Deferred)
    }

    /// `GET /events`: an SSE stream from the client's cursor.
    pub(super) fn events(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        query: &str,
        res: &mut Response,
    ) -> Reply {
        let job = match self.job_param(query, res) {
            Ok(job) => job,
            Err(reply) => return reply,
        };
        // A reconnecting browser sends `Last-Event-ID`, and its URL still has the
        // `lastEventId` it first connected with: the header is newer, so it wins.
        // Either one empty means no event seen yet (an `EventSource` whose last
        // event ID is the empty string sends no header at all, WHATWG HTML
        // §9.2.3): the stream starts from the beginning.
        let header = req
            .request()
            .header("last-event-id")
            .map(|v| std::str::from_utf8(v).map(str::trim));
        let cursor = match header {
            Some(Ok("")) => 0,
            Some(value) => match value.ok().and_then(|v| self.cursor_of(v)) {
                Some(cursor) => cursor,
                None => return bad_request(res, "Last-Event-ID", &self.grid_hint()),
            },
            None => match query::param(query, "lastEventId") {
                Ok(None) => 0,
                Ok(Some(v)) if v.is_empty() => 0,
                Ok(Some(v)) => match self.cursor_of(&v) {
                    Some(cursor) => cursor,
                    None => return bad_request(res, "lastEventId", &self.grid_hint()),
                },
                Err(e) => return bad_request(res, "lastEventId", &e.to_string()),
            },
        };
        let Some(log) = self.store.log(&job) else {
            not_found(res, &job, self.config.jobs.keep);
            return Reply::Respond;
        };
        // A cursor ahead of the job (a client that saw more than a restarted
        // server recorded) waits for the updates after it, as a long poll and a
        // WebSocket do: nothing is sent twice.
        let mut cursor = cursor;
        if matches!(log.read(cursor), Read::Ended) {
            // Everything was seen and nothing more will come: 204 tells a
            // browser's EventSource to stop reconnecting (WHATWG HTML §9.2.3).
            res.set_status(204);
            return Reply::Respond;
        }
        res.header("Content-Type", "text/event-stream");
        res.header("Cache-Control", "no-store");
        let mut sent = 0u64;
        self.text.clear();
        self.text.push_str("retry: ");
        self.text
            .push_str(&self.config.retry.as_millis().to_string());
        self.text.push_str("\n\n");
        let after = events_after(log, cursor);
        if let Some((first, last)) = after.missed {
            let (from, to) = (self.shown(first), self.shown(last));
            push_missed(&mut self.text, from, to, last - first + 1);
        }
        if let Some(events) = after.events {
            for (seq, update) in events {
                push_event(&mut self.text, update);
                cursor = seq;
                sent += 1;
            }
        }
        res.body_mut().extend_from_slice(self.text.as_bytes());
        self.costs.of_mut(Pattern::Sse).events_sent += sent;
        let conn = req.conn();
        if matches!(log.read(cursor), Read::Ended) {
            // All of it is here: a whole response, no stream to hold.
            return Reply::Respond;
        }
        let now = ctx.now();
        let timer = self
            .config
            .heartbeat
            .map(|every| ctx.set_timer(every, TIMER_HEARTBEAT));
        self.hold(
            conn,
            job,
            cursor,
            HeldKind::Sse {
                timer,
                last_sent: now,
            },
        );
        let shown = self.shown(cursor);
        self.trace(|start| {
            let what = if sent == 0 {
                format!("event stream on {job}, next after {shown}%")
            } else {
                format!(
                    "event stream on {job}: {} at once, up to {shown}%",
                    Count(sent, "event", "events")
                )
            };
            TraceLine::new(start, now, Some(conn.serial()), "held").what(what)
        });
        Reply::Stream
    }

    /// The `jobId` of a query, or the 400 answer. Whether the job exists is
    /// checked after every parameter is (400 before 404).
    pub(super) fn job_param(&self, query: &str, res: &mut Response) -> Result<JobId, Reply> {
        let text = match query::param(query, "jobId") {
            Ok(Some(text)) => text,
            Ok(None) => {
                return Err(bad_request(
                    res,
                    "jobId",
                    "missing: add ?jobId=job:<ms> from POST /submit",
                ));
            }
            Err(e) => return Err(bad_request(res, "jobId", &e.to_string())),
        };
        JobId::parse(&text).ok_or_else(|| {
            bad_request(
                res,
                "jobId",
                "not a handle: expected job:<ms> or job:<ms>-<n>",
            )
        })
    }

    /// The cursor (sequence number) for a progress value sent by a client.
    pub(super) fn cursor_of(&self, progress: &str) -> Option<u64> {
        if progress.is_empty() || !progress.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let progress: u8 = progress.parse().ok()?;
        self.store.config().seq_for_progress(progress)
    }

    /// What a progress value must look like.
    pub(super) fn grid_hint(&self) -> String {
        format!(
            "expected a progress this job reports: 0, {}, ... 100",
            self.store.config().effective_step_percent()
        )
    }
}

/// Bytes of a request as parsed: its head and its (decoded) body. Counted when
/// it is routed, so a held request whose client leaves is counted too.
pub(super) fn request_bytes(req: &Incoming<'_>) -> u64 {
    (req.request().head_len() + req.body().len()) as u64
}

/// 400, naming the parameter and what is wrong with it.
pub(super) fn bad_request(res: &mut Response, name: &str, why: &str) -> Reply {
    res.set_status(400);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut()
        .extend_from_slice(format!("bad {name}: {why}\n").as_bytes());
    Reply::Respond
}

/// 404 for a handle never given out or forgotten.
pub(super) fn not_found(res: &mut Response, job: &JobId, keep: Duration) {
    res.set_status(404);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut().extend_from_slice(
        format!(
            "no such job: {job} (never given out, or finished more than {} s ago and forgotten)\n",
            keep.as_secs()
        )
        .as_bytes(),
    );
}

/// 405 with the methods the path allows (RFC 9110 §15.5.6).
/// The methods of a path that reads: GET, and HEAD, which every general-purpose
/// server must support (RFC 9110 §9.1). A HEAD is routed exactly as a GET, held
/// ones included, so that it gets the same header fields (§9.3.2); the driver
/// sends no body.
const GET: &str = "GET, HEAD";

/// Whether `method` is one of [`GET`]'s.
fn is_get(method: &str) -> bool {
    method == "GET" || method == "HEAD"
}

pub(super) fn method_not_allowed(res: &mut Response, allow: &str) -> Reply {
    res.set_status(405);
    res.header("Allow", allow);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.body_mut()
        .extend_from_slice(format!("this path answers {allow} only\n").as_bytes());
    Reply::Respond
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_progress_values_on_the_step_grid() {
        let app = JobsApp::new(JobsConfig::default()).expect("no store file");
        assert_eq!(app.cursor_of("0"), Some(1));
        assert_eq!(app.cursor_of("40"), Some(5));
        assert_eq!(app.cursor_of("100"), Some(11));
        for bad in ["45", "110", "-10", "+10", "", "4 0", "1e2", "999"] {
            assert_eq!(app.cursor_of(bad), None, "{bad:?}");
        }
    }
}
