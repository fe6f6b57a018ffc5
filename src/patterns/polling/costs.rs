//! What each pattern cost the jobs server: per-pattern counters, the wake-ups, the
//! loop's CPU time; printed as a table and served as `/stats` text.

use super::*;

/// Which pattern (or which other route) a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `POST /submit`.
    Submit,
    /// `GET /checkstatus` without `wait`.
    ShortPoll,
    /// `GET /checkstatus` with `wait` and `since`.
    LongPoll,
    /// `GET /events`.
    Sse,
    /// The WebSocket at `/jobs`.
    WebSocket,
    /// Everything else: the page, `/stats`, bad input, unknown paths.
    Other,
}

impl Pattern {
    /// Every pattern, in the order the cost table lists them.
    pub const ALL: [Pattern; 6] = [
        Pattern::Submit,
        Pattern::ShortPoll,
        Pattern::LongPoll,
        Pattern::Sse,
        Pattern::WebSocket,
        Pattern::Other,
    ];

    /// Its name in the cost table and in `/stats` (`long.held_now`).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Submit => "submit",
            Pattern::ShortPoll => "short",
            Pattern::LongPoll => "long",
            Pattern::Sse => "sse",
            Pattern::WebSocket => "ws",
            Pattern::Other => "other",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Pattern::Submit => 0,
            Pattern::ShortPoll => 1,
            Pattern::LongPoll => 2,
            Pattern::Sse => 3,
            Pattern::WebSocket => 4,
            Pattern::Other => 5,
        }
    }
}

/// What one pattern cost the server so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatternCost {
    /// Requests routed to it (for WebSocket: handshakes accepted).
    pub requests: u64,
    /// Bytes received: the heads and (decoded) bodies of its requests, counted
    /// as they are routed (for WebSocket, the handshakes; messages from the
    /// client are not part of this protocol).
    pub bytes_in: u64,
    /// Bytes sent: whole responses once written, plus, for streams and
    /// WebSockets, every event or message as it is queued.
    pub bytes_out: u64,
    /// Requests held (long polls waiting, streams and WebSockets open) now.
    pub held_now: u64,
    /// Requests ever held.
    pub held_total: u64,
    /// Held readers woken by an update (a long poll answered, a stream or a
    /// WebSocket sent the update).
    pub wakeups: u64,
    /// Events sent: SSE events, WebSocket messages; for polls, status answers.
    pub events_sent: u64,
    /// Long polls answered because their `wait` ran out.
    pub timed_out: u64,
    /// Held requests whose client went away before they were answered or ended.
    pub left_while_held: u64,
}

/// What waking the readers of one update cost, measured at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeCost {
    /// The job that moved.
    pub job: JobId,
    /// Its progress after the update.
    pub progress: u8,
    /// When the update was applied: the step timer's callback.
    pub started: Instant,
    /// Long polls answered.
    pub long_polls: u64,
    /// SSE streams sent the update.
    pub streams: u64,
    /// WebSockets sent the update.
    pub websockets: u64,
    /// Readers whose answer the kernel had not all taken by the end of the turn
    /// (their socket buffer was full); it is written when there is room.
    pub backlogged: u64,
    /// From `started` to the end of the loop turn, when every reader's answer had
    /// been offered to its socket: the time for the update to reach every
    /// reader's kernel buffer, the `backlogged` ones excepted.
    pub time_to_all: Duration,
}

impl WakeCost {
    /// Readers woken, of every kind.
    pub fn readers(&self) -> u64 {
        self.long_polls + self.streams + self.websockets
    }
}

/// The server's costs, per pattern, and the loop's CPU time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollingCosts {
    /// Per pattern, in the order of [`Pattern::ALL`].
    pub patterns: [PatternCost; 6],
    /// Job updates applied (steps), whether or not anyone was waiting.
    pub updates: u64,
    /// The last wake-up that had readers.
    pub last_wake: Option<WakeCost>,
    /// The slowest wake-up so far (by `time_to_all`).
    pub slowest_wake: Option<WakeCost>,
    /// The loop thread's CPU time (user and system), as of the last time it was
    /// read: at each `GET /stats` and at shutdown. `None` where the system does
    /// not say (it is read from `/proc/thread-self/schedstat`, Linux).
    pub loop_cpu: Option<Duration>,
    /// Jobs held in the store now, running or finished and still kept.
    pub jobs_held: u64,
    /// The store file's costs (`--store`), as of the same moment as
    /// `loop_cpu`; `None` without a store file.
    pub journal: Option<JournalCosts>,
}

impl PollingCosts {
    /// The cost of one pattern.
    pub fn of(&self, pattern: Pattern) -> &PatternCost {
        &self.patterns[pattern.index()]
    }

    pub(super) fn of_mut(&mut self, pattern: Pattern) -> &mut PatternCost {
        &mut self.patterns[pattern.index()]
    }

    /// The costs as `name value` lines, what `GET /stats` serves: per pattern
    /// `short.requests`, `short.bytes_in`, `short.bytes_out`, `long.held_now`,
    /// `long.held_total`, `long.wakeups`, `sse.events_sent`, `long.timed_out`,
    /// `long.left_while_held`; then `jobs.held`, `jobs.updates`, the last and the
    /// slowest wake-up (`wake.last_readers`, `wake.last_us`, `wake.last_backlogged`,
    /// `wake.slowest_readers`, `wake.slowest_us`; absent before the first) and
    /// `loop.cpu_us` (absent where unknown); with a store file, `journal.records`,
    /// `journal.bytes`, `journal.syncs`, `journal.sync_us`, `journal.sync_max_us`
    /// and `journal.unsynced_bytes`. Times in microseconds.
    pub fn to_stats_text(&self) -> String {
        use fmt::Write;
        let mut out = String::new();
        for pattern in Pattern::ALL {
            let c = self.of(pattern);
            let name = pattern.name();
            for (field, value) in [
                ("requests", c.requests),
                ("bytes_in", c.bytes_in),
                ("bytes_out", c.bytes_out),
                ("held_now", c.held_now),
                ("held_total", c.held_total),
                ("wakeups", c.wakeups),
                ("events_sent", c.events_sent),
                ("timed_out", c.timed_out),
                ("left_while_held", c.left_while_held),
            ] {
                let _ = writeln!(out, "{name}.{field} {value}");
            }
        }
        let _ = writeln!(out, "jobs.held {}", self.jobs_held);
        let _ = writeln!(out, "jobs.updates {}", self.updates);
        for (which, wake) in [("last", &self.last_wake), ("slowest", &self.slowest_wake)] {
            if let Some(w) = wake {
                let _ = writeln!(out, "wake.{which}_readers {}", w.readers());
                let _ = writeln!(out, "wake.{which}_backlogged {}", w.backlogged);
                let _ = writeln!(out, "wake.{which}_us {}", w.time_to_all.as_micros());
            }
        }
        if let Some(cpu) = self.loop_cpu {
            let _ = writeln!(out, "loop.cpu_us {}", cpu.as_micros());
        }
        if let Some(j) = &self.journal {
            for (field, value) in [
                ("records", j.records),
                ("bytes", j.bytes),
                ("syncs", j.syncs),
                ("sync_us", j.sync_time.as_micros() as u64),
                ("sync_max_us", j.sync_max.as_micros() as u64),
                ("unsynced_bytes", j.unsynced_bytes),
            ] {
                let _ = writeln!(out, "journal.{field} {value}");
            }
        }
        out
    }
}

impl fmt::Display for PollingCosts {
    /// An aligned table, one row per pattern, then the loop's CPU time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<7} {:>9} {:>11} {:>11} {:>9} {:>11} {:>9} {:>9} {:>10} {:>12}",
            "pattern",
            "requests",
            "bytes in",
            "bytes out",
            "held now",
            "held total",
            "wake-ups",
            "events",
            "timed out",
            "left (held)"
        )?;
        for pattern in Pattern::ALL {
            let c = self.of(pattern);
            writeln!(
                f,
                "{:<7} {:>9} {:>11} {:>11} {:>9} {:>11} {:>9} {:>9} {:>10} {:>12}",
                pattern.name(),
                c.requests,
                c.bytes_in,
                c.bytes_out,
                c.held_now,
                c.held_total,
                c.wakeups,
                c.events_sent,
                c.timed_out,
                c.left_while_held
            )?;
        }
        write!(
            f,
            "jobs held: {}, updates applied: {}",
            self.jobs_held, self.updates
        )?;
        if let Some(w) = &self.slowest_wake {
            write!(
                f,
                "\nslowest wake-up: {} at {}%: {} reached in {}",
                w.job,
                w.progress,
                Count(w.readers(), "reader", "readers"),
                Dur(w.time_to_all)
            )?;
        }
        if let Some(j) = &self.journal {
            write!(
                f,
                "\nstore file: {} appended ({}), {} on the sync thread ({} in all, \
                 longest {}), {} not yet on disk",
                Count(j.records, "record", "records"),
                Size(j.bytes),
                Count(j.syncs, "sync", "syncs"),
                Dur(j.sync_time),
                Dur(j.sync_max),
                Size(j.unsynced_bytes)
            )?;
        }
        match self.loop_cpu {
            Some(cpu) => write!(f, "\nloop CPU time: {}", Dur(cpu)),
            None => write!(f, "\nloop CPU time: unknown on this system"),
        }
    }
}

/// The CPU time of the calling thread, from `/proc/thread-self/schedstat` (its
/// first field: nanoseconds on a CPU). `None` where there is no such file.
pub fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_text_names_every_counter_once() {
        let mut costs = PollingCosts::default();
        costs.of_mut(Pattern::LongPoll).held_now = 3;
        let text = costs.to_stats_text();
        assert!(text.lines().any(|l| l == "long.held_now 3"));
        let names: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        assert_eq!(names.len(), 6 * 9 + 2);
        // A store file adds its six lines.
        costs.journal = Some(JournalCosts {
            records: 2,
            ..JournalCosts::default()
        });
        let text = costs.to_stats_text();
        assert!(text.lines().any(|l| l == "journal.records 2"));
        assert_eq!(text.lines().count(), 6 * 9 + 2 + 6);
    }
}
