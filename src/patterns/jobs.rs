//! The job store: long-running jobs that answer at once with a handle, then advance
//! a step at a time, each with a log of its updates for any number of readers.
//!
//! # The idea
//!
//! The notes' long upload, as the seed's express server plays it: `POST /submit`
//! answers at once with a handle (`job:<ms since the epoch>`), and the job then
//! advances 10% every 3 s until 100%. Whoever wants to follow it (a short poll, a
//! long poll, an SSE stream, a WebSocket subscriber) asks about the handle.
//!
//! This module is that store and nothing else: no socket, no timer, no thread, no
//! file. Time is passed in by the caller, twice over:
//!
//! - an [`Instant`] (`now`), monotonic, for *deadlines*: when the next step is due,
//!   when a finished job is forgotten;
//! - a `u64` of milliseconds since the Unix epoch (`wall_ms`), for what is *shown*:
//!   the handle's text and the stamp on each update (`at=<ms>` on the wire, so a
//!   client can measure how late an update reached it).
//!
//! The driver asks [`JobStore::next_deadline`] when to wake next, sets a loop timer
//! for it, and on that timer calls [`JobStore::advance`], which applies every step
//! and expiry that is due and lists the jobs that got a new update, so the server
//! wakes the readers it holds for them. A thousand running jobs cost one timer, not
//! a thousand (and no thread per job).
//!
//! # One log per job, and what its sequence numbers mean
//!
//! Each job's updates are an [`EventLog<Update>`] (see [`crate::patterns::log`]):
//! readers are cursors, and the log answers "what is after cursor N". The submit
//! appends the 0% update (sequence number 1), each step appends the next one, and
//! the 100% update closes the log, so a reader at the end gets [`Read::Ended`]
//! (an SSE stream ends, a reconnect gets 204).
//!
//! The HTTP layer speaks *progress* on the wire (`since=40`, `id: 40`), the log
//! speaks *sequence numbers*. With `step_percent` = 10 the mapping is
//!
//! ```text
//! progress  =  (seq - 1) * step_percent        seq 1 -> 0%, seq 2 -> 10%, ..., seq 11 -> 100%
//! seq       =  progress / step_percent + 1
//! ```
//!
//! and it holds for every job for its whole life, restored ones included
//! ([`JobStore::restore`]). If `step_percent` does not divide 100 (say 30), the last
//! step is shortened so that the job still ends at exactly 100%: 0, 30, 60, 90,
//! 100. [`JobConfig::progress_for_seq`] and [`JobConfig::seq_for_progress`] do the
//! conversion (the latter accepts only progress values a job actually reports, so a
//! made-up `since=45` can be answered 400, like a cursor from the future).
//!
//! # Handles
//!
//! The seed's handle, `job:${Date.now()}`, collides when two submits land in the
//! same millisecond: the second client gets the first one's job. Here a handle is
//! the pair (milliseconds, counter), written
//!
//! - `job:<wall_ms>` for the first handle given out in that millisecond (the seed's
//!   form, which is what nearly every handle looks like), and
//! - `job:<wall_ms>-<n>` for the n-th one after it in the same millisecond (n >= 1).
//!
//! Handles are given out in strictly increasing order: if the wall clock stands
//! still *or goes back* (an NTP correction), the store keeps counting from the last
//! handle it gave out instead of trusting the clock, so no two handles of one store
//! are ever equal, restored ones included. [`JobId::parse`] accepts exactly the
//! strings [`JobId`]'s `Display` writes (no `+`, no leading zeros, no `-0`), so one
//! job has one spelling.
//!
//! # Deadlines: two ordered sets
//!
//! Every job has exactly one pending deadline: its next step while it runs, its
//! expiry once it has finished. They live in two `BTreeSet<(Instant, JobId)>`, one
//! for steps and one for expiries, rather than one `BinaryHeap` with lazy deletion:
//!
//! - [`JobStore::next_deadline`] is exact and takes `&self` (the first entry of
//!   each set). A heap with lazy deletion would have to skip stale entries, which
//!   needs `&mut self`, or report a deadline that no longer exists.
//! - Replacing a job ([`JobStore::restore`] of a handle already present) removes its
//!   old entry at once, so no garbage accumulates.
//! - The expiries set alone answers "when does the oldest finished job go", which
//!   is the `Retry-After` of a full store ([`StoreFull`]); with no finished job,
//!   the steps set's first entry gives the lower bound used instead.
//!
//! Each operation costs O(log n) in the number of jobs.
//!
//! # Bounds
//!
//! The store holds at most [`JobConfig::max_jobs`] jobs, finished ones still kept
//! included; a submit past it fails with [`StoreFull`] saying when to retry (the
//! server answers 503 with `Retry-After`). A finished job is kept for
//! [`JobConfig::keep`] after its last step, then forgotten (404). Each job's log
//! holds at most its own few updates (11 with the defaults).
//!
//! # Example: the seed's flow, on a fake clock
//!
//! ```
//! use std::time::{Duration, Instant};
//! use wirepatterns::patterns::jobs::{JobConfig, JobStore};
//! use wirepatterns::patterns::log::Read;
//!
//! let t0 = Instant::now();
//! let mut store = JobStore::new(JobConfig::default());
//! let id = store.submit(t0, 1_700_000_000_000).unwrap();
//! assert_eq!(id.to_string(), "job:1700000000000");
//! assert_eq!(store.status(&id), Some(0));
//! assert_eq!(store.next_deadline(), Some(t0 + Duration::from_secs(3)));
//!
//! // The loop's timer fires 3 s later: one step.
//! let mut woke = Vec::new();
//! store.advance(t0 + Duration::from_secs(3), 1_700_000_003_000, &mut woke);
//! assert_eq!(woke, [id]);
//! assert_eq!(store.status(&id), Some(10));
//!
//! // A long poll with `since=0` is a reader at the cursor of the 0% update.
//! let cursor = store.config().seq_for_progress(0).unwrap();
//! let log = store.log(&id).unwrap();
//! match log.read(cursor) {
//!     Read::Events(mut events) => {
//!         let (seq, update) = events.next().unwrap();
//!         assert_eq!(store.config().progress_for_seq(seq), Some(10));
//!         assert_eq!((update.progress, update.at_ms), (10, 1_700_000_003_000));
//!     }
//!     other => panic!("expected the 10% update, got {other:?}"),
//! }
//! ```
//!
//! [`Read::Ended`]: crate::patterns::log::Read::Ended

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use crate::patterns::log::EventLog;

/// How the store paces jobs and how much it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobConfig {
    /// The time between two steps of a job (3 s by default, as in the seed): how
    /// long the work stands for.
    pub step: Duration,
    /// How long a finished job is kept after its 100% update before it is forgotten
    /// (600 s by default; the notes: "configure how long to keep the job"). Until
    /// then its handle still answers.
    pub keep: Duration,
    /// The most jobs held at once, finished ones still kept included (100,000 by
    /// default): bounds the store's memory whatever clients do.
    pub max_jobs: usize,
    /// How many percent one step adds (10 by default, as in the seed). Taken as 1
    /// if 0 and as 100 if over 100, so that every job ends.
    pub step_percent: u8,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            step: Duration::from_secs(3),
            keep: Duration::from_secs(600),
            max_jobs: 100_000,
            step_percent: 10,
        }
    }
}

impl JobConfig {
    /// The percent one step adds, as the store uses it: `step_percent` clamped to
    /// 1..=100.
    pub fn effective_step_percent(&self) -> u8 {
        self.step_percent.clamp(1, 100)
    }

    /// The sequence number of a job's 100% update, its last: one for 0% plus one
    /// per step (11 with the default 10%).
    pub fn last_seq(&self) -> u64 {
        let step = u64::from(self.effective_step_percent());
        100u64.div_ceil(step) + 1
    }

    /// The progress reported by the update with sequence number `seq`:
    /// `(seq - 1) * step_percent`, capped at 100. `None` for 0 (the cursor of a
    /// reader that has seen nothing, not an update) and past [`JobConfig::last_seq`].
    pub fn progress_for_seq(&self, seq: u64) -> Option<u8> {
        if seq == 0 || seq > self.last_seq() {
            return None;
        }
        let step = u64::from(self.effective_step_percent());
        let progress = (seq - 1).saturating_mul(step).min(100);
        u8::try_from(progress).ok()
    }

    /// The sequence number of the update reporting `progress`: `progress /
    /// step_percent + 1` (and [`JobConfig::last_seq`] for 100). `None` if no update
    /// reports exactly that progress (over 100, or not a multiple of the step): a
    /// client that sends it made it up.
    pub fn seq_for_progress(&self, progress: u8) -> Option<u64> {
        let step = self.effective_step_percent();
        if progress == 100 {
            Some(self.last_seq())
        } else if progress < 100 && progress.is_multiple_of(step) {
            Some(u64::from(progress / step) + 1)
        } else {
            None
        }
    }
}

/// A job's handle: unique within a store, written `job:<ms>` or `job:<ms>-<n>`.
///
/// Ordered by when it was given out (milliseconds, then counter), which is also
/// the order of the store's deadline sets when two deadlines tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId {
    /// The wall-clock millisecond (since the Unix epoch) the handle was given out
    /// in, as the seed's `Date.now()`: a human can read when the job started.
    ms: u64,
    /// How many handles were given out before this one in the same millisecond:
    /// 0 for the first, which is written without a suffix. This is what keeps two
    /// submits in one millisecond apart.
    n: u64,
}

impl JobId {
    /// The handle for millisecond `ms` and counter `n` (0 for the first in that
    /// millisecond). For restoring handles written elsewhere; a store gives out
    /// new ones itself.
    pub fn new(ms: u64, n: u64) -> Self {
        JobId { ms, n }
    }

    /// The wall-clock millisecond the handle was given out in.
    pub fn ms(&self) -> u64 {
        self.ms
    }

    /// The handle's counter within its millisecond (0 for the first).
    pub fn counter(&self) -> u64 {
        self.n
    }

    /// Reads a handle from its text form, `job:<ms>` or `job:<ms>-<n>` with `n >=
    /// 1`. Only the canonical spelling [`JobId`]'s `Display` writes is accepted
    /// (decimal digits, no sign, no leading zeros, no `-0`), so every handle has
    /// exactly one text form. `None` for anything else.
    pub fn parse(text: &str) -> Option<JobId> {
        let rest = text.strip_prefix("job:")?;
        let (ms, n) = match rest.split_once('-') {
            Some((ms, n)) => (canonical_u64(ms)?, canonical_u64(n)?),
            None => (canonical_u64(rest)?, 0),
        };
        if rest.contains('-') && n == 0 {
            return None;
        }
        Some(JobId { ms, n })
    }
}

/// A decimal `u64` written the way `Display` writes it: digits only, no leading
/// zero unless it is `0` itself. `None` otherwise (including overflow).
fn canonical_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.n == 0 {
            write!(f, "job:{}", self.ms)
        } else {
            write!(f, "job:{}-{}", self.ms, self.n)
        }
    }
}

/// One update of a job: what its log holds, one per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Update {
    /// The job's progress after this update, 0..=100: the `N` of `JobStatus: N%`.
    pub progress: u8,
    /// When the update happened, in milliseconds since the Unix epoch: sent with it
    /// (`at=<ms>`) so a client can measure how late it arrived. For a step applied
    /// late, the time it was due, not the time it was applied.
    pub at_ms: u64,
}

/// The error of submitting to a full store: the server answers 503 with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFull {
    /// How long until a place frees up: until the oldest finished job expires;
    /// if no job has finished yet, until the earliest next step plus
    /// [`JobConfig::keep`] (no place frees up sooner, though it may later: a
    /// client that comes back then is told again).
    pub retry_after: Duration,
}

impl StoreFull {
    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up and at
    /// least 1: the value of an HTTP `Retry-After` (RFC 9110 §10.2.3 counts in
    /// seconds).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl fmt::Display for StoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the job store is full: retry in {} s",
            self.retry_after_secs()
        )
    }
}

impl std::error::Error for StoreFull {}

/// One job's state.
#[derive(Debug)]
struct Job {
    /// The progress of its last update, 0..=100: what a short poll answers.
    progress: u8,
    /// Its updates, the 0% one first: what every reader reads.
    log: EventLog<Update>,
    /// Its one pending deadline: the next step while `progress < 100` (an entry of
    /// `steps`), its expiry after (an entry of `expiries`). Kept to find and remove
    /// that entry. `None` if the deadline is too far to represent as an `Instant`
    /// (then it never comes).
    due: Option<Instant>,
    /// The number of the last [`JobStore::advance`] call that listed this job in
    /// `woke`, so that a job stepped several times in one call is listed once.
    woke_in: u64,
}

/// Long-running jobs, each advancing a step at a time, each with a log of updates.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct JobStore {
    /// The pacing and bounds, `step_percent` already clamped to 1..=100.
    config: JobConfig,
    /// Every job held, running or finished and still kept: what lookups read.
    jobs: HashMap<JobId, Job>,
    /// The next step of every running job, earliest first.
    steps: BTreeSet<(Instant, JobId)>,
    /// The expiry of every finished job, earliest first: also answers when a full
    /// store frees a place.
    expiries: BTreeSet<(Instant, JobId)>,
    /// The greatest handle given out or restored so far: the next one is above it,
    /// so handles never repeat even if the wall clock stands still or goes back.
    last_id: Option<JobId>,
    /// How many times [`JobStore::advance`] was called: tags the jobs listed in
    /// `woke` during the current call (see `Job::woke_in`).
    advances: u64,
    /// Steps applied in all (a job woken once by a late advance may have taken
    /// several).
    steps_applied: u64,
}

impl JobStore {
    /// An empty store with `config`.
    pub fn new(config: JobConfig) -> Self {
        let config = JobConfig {
            step_percent: config.effective_step_percent(),
            ..config
        };
        JobStore {
            config,
            jobs: HashMap::new(),
            steps: BTreeSet::new(),
            expiries: BTreeSet::new(),
            last_id: None,
            advances: 0,
            steps_applied: 0,
        }
    }

    /// The configuration in use (`step_percent` clamped to 1..=100), with the
    /// progress/sequence-number conversions.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Starts a job at `now` and returns its new, unique handle, written from
    /// `wall_ms` (see [Handles](self#handles)). The job's log holds its 0% update
    /// (sequence number 1, stamped `wall_ms`); its first step is due at `now +
    /// step`.
    ///
    /// Jobs whose expiry is due at `now` are forgotten first, so they do not count.
    /// If the store still holds [`JobConfig::max_jobs`] jobs, nothing is created and
    /// [`StoreFull`] says when to retry.
    pub fn submit(&mut self, now: Instant, wall_ms: u64) -> Result<JobId, StoreFull> {
        self.expire_due(now);
        if self.jobs.len() >= self.config.max_jobs {
            let retry_after = match (self.expiries.first(), self.steps.first()) {
                // The oldest finished job goes first.
                (Some((at, _)), _) => at.saturating_duration_since(now),
                // None has finished: no slot frees before a running job takes its
                // next step and is then kept for `keep`. The earliest next step
                // plus `keep` is a lower bound (the job may need more steps),
                // cheap to find; a client told to come back then is told again.
                (None, Some((at, _))) => at
                    .saturating_duration_since(now)
                    .saturating_add(self.config.keep),
                (None, None) => self.config.step.saturating_add(self.config.keep),
            };
            return Err(StoreFull { retry_after });
        }
        let id = self.next_id(wall_ms);
        self.last_id = Some(id);
        self.insert(id, 0, now, wall_ms);
        Ok(id)
    }

    /// Re-creates job `id` at `progress`, as recorded before a restart, and returns
    /// the progress it was restored at.
    ///
    /// Its log starts with that update, stamped `wall_ms`, at the sequence number
    /// the progress maps to ([`JobConfig::seq_for_progress`]), so the mapping holds
    /// for restored jobs too: a reader whose cursor is older (an SSE client
    /// reconnecting with `Last-Event-ID: 20` to a job restored at 40%) is told
    /// [`Read::Gap`](crate::patterns::log::Read::Gap), since the earlier updates and
    /// their stamps were not kept. A running job's next step is due at `now +
    /// step`: the step in progress at the crash is redone from its start. A job
    /// restored at 100% is finished: its log is closed and it is kept for `keep`
    /// from `now`.
    ///
    /// `progress` over 100 is taken as 100, and a value off the step grid (the step
    /// changed between runs) is rounded down to it, so the job redoes a little
    /// rather than skipping any. A job already held under `id` is replaced. Later
    /// handles given out by [`JobStore::submit`] are above `id`. Restoring does not
    /// check [`JobConfig::max_jobs`]: these handles were already given out, and the
    /// store must keep answering for them.
    pub fn restore(&mut self, id: JobId, progress: u8, now: Instant, wall_ms: u64) -> u8 {
        let step = self.config.step_percent;
        let progress = match progress {
            p if p >= 100 => 100,
            p => p - p % step.max(1),
        };
        self.remove(&id);
        if self.last_id.is_none_or(|last| id > last) {
            self.last_id = Some(id);
        }
        self.insert(id, progress, now, wall_ms);
        progress
    }

    /// Makes every handle given out from now on greater than `id`, without holding
    /// a job under it.
    ///
    /// For a restart: the journal ([`crate::patterns::journal`]) names handles of
    /// jobs that are not restored because they were already forgotten (finished
    /// more than `keep` ago). Those handles were given out once and must not be
    /// given out again, even if the wall clock now reads earlier than they do.
    pub fn reserve(&mut self, id: JobId) {
        if self.last_id.is_none_or(|last| id > last) {
            self.last_id = Some(id);
        }
    }

    /// When [`JobStore::advance`] next has something to do: the earliest next step
    /// or expiry of any job. `None` if no job is held (or every deadline is too far
    /// to represent). The driver sets its loop timer for it.
    pub fn next_deadline(&self) -> Option<Instant> {
        let step = self.steps.first().map(|(at, _)| *at);
        let expiry = self.expiries.first().map(|(at, _)| *at);
        match (step, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies every step and expiry due at `now`, earliest first, and pushes onto
    /// `woke` each job that got at least one new update (once, in the order of its
    /// first update in this call; `woke` is not cleared). The server then wakes the
    /// long polls and streams it holds for those jobs.
    ///
    /// A late call misses nothing: every step that came due since the last call is
    /// applied, in order, each stamped with the time it was due (`wall_ms` minus
    /// how late it is applied), and each step's deadline counts from the previous
    /// step's deadline, not from `now`, so the pace does not drift. A finished job
    /// is forgotten once `keep` has passed since its last step was due; a job that
    /// both finishes and expires within one late call is listed in `woke` and
    /// already gone.
    pub fn advance(&mut self, now: Instant, wall_ms: u64, woke: &mut Vec<JobId>) {
        self.advances = self.advances.wrapping_add(1);
        loop {
            let step = self.steps.first().copied().filter(|(at, _)| *at <= now);
            let expiry = self.expiries.first().copied().filter(|(at, _)| *at <= now);
            match (step, expiry) {
                // Ties go to the step: it happened before the expiry it leads to.
                (Some(s), Some(e)) if e < s => self.expire(e),
                (Some(s), _) => self.step(s, now, wall_ms, woke),
                (None, Some(e)) => self.expire(e),
                (None, None) => break,
            }
        }
    }

    /// The progress of job `id`, 0..=100; `None` if no such job is held (never
    /// given out, or forgotten after `keep`): a 404.
    pub fn status(&self, id: &JobId) -> Option<u8> {
        self.jobs.get(id).map(|job| job.progress)
    }

    /// The log of job `id`'s updates, for a reader at its cursor; `None` if no
    /// such job is held.
    pub fn log(&self, id: &JobId) -> Option<&EventLog<Update>> {
        self.jobs.get(id).map(|job| &job.log)
    }

    /// Steps applied so far, over all jobs: each is one update in a job's log,
    /// even when a late [`JobStore::advance`] applies several of one job at once
    /// (and lists the job once).
    pub fn steps_applied(&self) -> u64 {
        self.steps_applied
    }

    /// How many jobs are held, running or finished and still kept.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is held.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// The handle after the last one given out: `(wall_ms, 0)` if the clock moved
    /// past it, else the next counter in the last handle's millisecond.
    fn next_id(&self, wall_ms: u64) -> JobId {
        match self.last_id {
            Some(last) if wall_ms <= last.ms => match last.n.checked_add(1) {
                Some(n) => JobId { ms: last.ms, n },
                None => JobId {
                    ms: last.ms.saturating_add(1),
                    n: 0,
                },
            },
            _ => JobId { ms: wall_ms, n: 0 },
        }
    }

    /// Creates job `id` at `progress` (on the step grid): its log holds that update
    /// at the sequence number it maps to, and its deadline is scheduled from `now`.
    fn insert(&mut self, id: JobId, progress: u8, now: Instant, wall_ms: u64) {
        let capacity = usize::try_from(self.config.last_seq()).unwrap_or(usize::MAX);
        let mut log = EventLog::new(capacity);
        let seq = self.config.seq_for_progress(progress).unwrap_or(1);
        // Fill the sequence numbers below `seq` with placeholders, then drop them,
        // so the update lands at the sequence number its progress maps to.
        for earlier in 1..seq {
            let progress = self.config.progress_for_seq(earlier).unwrap_or(0);
            let _ = log.append(Update {
                progress,
                at_ms: wall_ms,
            });
        }
        let _ = log.append(Update {
            progress,
            at_ms: wall_ms,
        });
        log.trim_before(seq);
        let mut job = Job {
            progress,
            log,
            due: None,
            woke_in: 0,
        };
        if progress >= 100 {
            job.log.close();
            job.due = now.checked_add(self.config.keep);
            if let Some(at) = job.due {
                self.expiries.insert((at, id));
            }
        } else {
            job.due = now.checked_add(self.config.step);
            if let Some(at) = job.due {
                self.steps.insert((at, id));
            }
        }
        self.jobs.insert(id, job);
    }

    /// Forgets job `id` and its pending deadline, if it is held.
    fn remove(&mut self, id: &JobId) {
        if let Some(job) = self.jobs.remove(id)
            && let Some(at) = job.due
        {
            self.steps.remove(&(at, *id));
            self.expiries.remove(&(at, *id));
        }
    }

    /// Forgets every finished job whose expiry is due at `now`.
    fn expire_due(&mut self, now: Instant) {
        while let Some(entry) = self.expiries.first().copied().filter(|(at, _)| *at <= now) {
            self.expire(entry);
        }
    }

    /// Forgets the job of expiry entry `(at, id)`.
    fn expire(&mut self, (at, id): (Instant, JobId)) {
        self.expiries.remove(&(at, id));
        self.jobs.remove(&id);
    }

    /// Applies the step of entry `(due, id)`, due at or before `now`: appends the
    /// next update (stamped when it was due), then schedules the next step, or,
    /// at 100%, closes the log and schedules the expiry.
    fn step(
        &mut self,
        (due, id): (Instant, JobId),
        now: Instant,
        wall_ms: u64,
        woke: &mut Vec<JobId>,
    ) {
        self.steps.remove(&(due, id));
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        self.steps_applied += 1;
        let late =
            u64::try_from(now.saturating_duration_since(due).as_millis()).unwrap_or(u64::MAX);
        job.progress = job
            .progress
            .saturating_add(self.config.step_percent)
            .min(100);
        let _ = job.log.append(Update {
            progress: job.progress,
            at_ms: wall_ms.saturating_sub(late),
        });
        if job.woke_in != self.advances {
            job.woke_in = self.advances;
            woke.push(id);
        }
        if job.progress >= 100 {
            job.log.close();
            job.due = due.checked_add(self.config.keep);
            if let Some(at) = job.due {
                self.expiries.insert((at, id));
            }
        } else {
            job.due = due.checked_add(self.config.step);
            if let Some(at) = job.due {
                self.steps.insert((at, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::log::Read;

    const MS0: u64 = 1_700_000_000_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The updates after `cursor` as `(seq, progress, at_ms)`, or a panic naming
    /// the answer.
    fn updates_after(store: &JobStore, id: &JobId, cursor: u64) -> Vec<(u64, u8, u64)> {
        match store.log(id).map(|log| log.read(cursor)) {
            Some(Read::Events(events)) => {
                events.map(|(seq, u)| (seq, u.progress, u.at_ms)).collect()
            }
            other => panic!("cursor {cursor}: expected events, got {other:?}"),
        }
    }

    #[test]
    fn seed_flow_steps_to_100_in_ten_steps_then_the_log_ends() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = store.submit(t0, MS0).unwrap();
        assert_eq!(id.to_string(), format!("job:{MS0}"));
        assert_eq!(store.status(&id), Some(0));
        assert_eq!(updates_after(&store, &id, 0), [(1, 0, MS0)]);
        for k in 1..=10u64 {
            let mut woke = Vec::new();
            // Just before the step: nothing happens.
            store.advance(t0 + secs(3 * k) - Duration::from_millis(1), MS0, &mut woke);
            assert!(woke.is_empty(), "step {k} came early");
            store.advance(t0 + secs(3 * k), MS0 + 3000 * k, &mut woke);
            assert_eq!(woke, [id]);
            let progress = u8::try_from(10 * k).unwrap();
            assert_eq!(store.status(&id), Some(progress));
            assert_eq!(
                updates_after(&store, &id, k),
                [(k + 1, progress, MS0 + 3000 * k)]
            );
        }
        let log = store.log(&id).unwrap();
        assert!(log.is_closed());
        assert_eq!(log.last_seq(), 11);
        assert!(matches!(log.read(11), Read::Ended));
        // No more steps: only the expiry is pending.
        assert_eq!(store.next_deadline(), Some(t0 + secs(30) + secs(600)));
    }

    #[test]
    fn two_submits_in_one_millisecond_get_distinct_handles_that_parse_back() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let a = store.submit(t0, MS0).unwrap();
        let b = store.submit(t0, MS0).unwrap();
        let c = store.submit(t0, MS0).unwrap();
        let d = store.submit(t0, MS0 + 1).unwrap();
        let texts: Vec<String> = [a, b, c, d].iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            [
                format!("job:{MS0}"),
                format!("job:{MS0}-1"),
                format!("job:{MS0}-2"),
                format!("job:{}", MS0 + 1),
            ]
        );
        for (id, text) in [a, b, c, d].iter().zip(&texts) {
            assert_eq!(JobId::parse(text), Some(*id));
        }
        assert_eq!(store.len(), 4);
    }

    #[test]
    fn a_wall_clock_going_back_never_repeats_a_handle() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let a = store.submit(t0, MS0).unwrap();
        let b = store.submit(t0, MS0 - 5000).unwrap();
        assert_ne!(a, b);
        assert_eq!(b.to_string(), format!("job:{MS0}-1"));
    }

    #[test]
    fn parse_accepts_only_the_canonical_spelling() {
        assert_eq!(JobId::parse("job:17"), Some(JobId::new(17, 0)));
        assert_eq!(JobId::parse("job:17-3"), Some(JobId::new(17, 3)));
        assert_eq!(JobId::parse("job:0"), Some(JobId::new(0, 0)));
        for bad in [
            "",
            "job:",
            "job:-1",
            "job:17-",
            "job:17-0",
            "job:017",
            "job:17-03",
            "job:+17",
            "job:17-1-2",
            "Job:17",
            "job: 17",
            "17",
            "job:18446744073709551616",
            "job:1a",
        ] {
            assert_eq!(JobId::parse(bad), None, "{bad:?}");
        }
        let max = JobId::new(u64::MAX, u64::MAX);
        assert_eq!(JobId::parse(&max.to_string()), Some(max));
    }

    #[test]
    fn a_full_store_says_to_retry_when_the_oldest_finished_job_expires() {
        let t0 = Instant::now();
        let config = JobConfig {
            max_jobs: 2,
            ..JobConfig::default()
        };
        let mut store = JobStore::new(config);
        let a = store.submit(t0, MS0).unwrap();
        store.submit(t0 + secs(1), MS0 + 1000).unwrap();
        // Nothing finished: no place frees before a's next step (at 3 s) plus
        // keep (600 s).
        assert_eq!(
            store.submit(t0 + secs(2), MS0 + 2000),
            Err(StoreFull {
                retry_after: secs(601)
            })
        );
        assert_eq!(store.len(), 2);
        // Job a finishes at 30 s, the other at 31 s; a expires at 630 s.
        let mut woke = Vec::new();
        store.advance(t0 + secs(40), MS0 + 40_000, &mut woke);
        assert_eq!(store.status(&a), Some(100));
        assert_eq!(
            store.submit(t0 + secs(100), MS0 + 100_000),
            Err(StoreFull {
                retry_after: secs(530)
            })
        );
        // Once a has expired, a submit fits, even without an advance first.
        let c = store.submit(t0 + secs(630), MS0 + 630_000).unwrap();
        assert_eq!(store.status(&a), None);
        assert_eq!(store.status(&c), Some(0));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_finished_job_is_forgotten_after_keep() {
        let t0 = Instant::now();
        let config = JobConfig {
            keep: secs(60),
            ..JobConfig::default()
        };
        let mut store = JobStore::new(config);
        let id = store.submit(t0, MS0).unwrap();
        let mut woke = Vec::new();
        store.advance(t0 + secs(30), MS0 + 30_000, &mut woke);
        assert_eq!(store.status(&id), Some(100));
        assert_eq!(store.next_deadline(), Some(t0 + secs(90)));
        store.advance(t0 + secs(89), MS0 + 89_000, &mut woke);
        assert_eq!(store.status(&id), Some(100));
        store.advance(t0 + secs(90), MS0 + 90_000, &mut woke);
        assert_eq!(store.status(&id), None);
        assert!(store.log(&id).is_none());
        assert!(store.is_empty());
        assert_eq!(store.next_deadline(), None);
    }

    #[test]
    fn a_late_advance_applies_every_missed_step_in_order_with_its_due_stamp() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = store.submit(t0, MS0).unwrap();
        let mut woke = Vec::new();
        // 10 s late for the first step: steps at 3, 6, 9 s are due at 10 s.
        store.advance(t0 + secs(10), MS0 + 10_000, &mut woke);
        assert_eq!(woke, [id], "listed once however many steps");
        assert_eq!(store.steps_applied(), 3, "but every step counted");
        assert_eq!(store.status(&id), Some(30));
        assert_eq!(
            updates_after(&store, &id, 1),
            [
                (2, 10, MS0 + 3000),
                (3, 20, MS0 + 6000),
                (4, 30, MS0 + 9000)
            ]
        );
        // The pace does not drift: the next step is still due at 12 s.
        assert_eq!(store.next_deadline(), Some(t0 + secs(12)));
    }

    #[test]
    fn woke_lists_exactly_the_jobs_that_advanced() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let a = store.submit(t0, MS0).unwrap();
        let b = store.submit(t0 + secs(1), MS0 + 1000).unwrap();
        let c = store.submit(t0 + secs(2), MS0 + 2000).unwrap();
        let mut woke = Vec::new();
        store.advance(t0 + secs(4), MS0 + 4000, &mut woke);
        assert_eq!(woke, [a, b]);
        assert_eq!(store.status(&c), Some(0));
        woke.clear();
        store.advance(t0 + secs(4), MS0 + 4000, &mut woke);
        assert!(woke.is_empty(), "nothing new at the same instant");
        store.advance(t0 + secs(5), MS0 + 5000, &mut woke);
        assert_eq!(woke, [c]);
    }

    #[test]
    fn next_deadline_is_the_earliest_step_or_expiry() {
        let t0 = Instant::now();
        let config = JobConfig {
            keep: secs(1),
            ..JobConfig::default()
        };
        let mut store = JobStore::new(config);
        assert_eq!(store.next_deadline(), None);
        store.submit(t0 + secs(2), MS0 + 2000).unwrap();
        assert_eq!(store.next_deadline(), Some(t0 + secs(5)));
        store.submit(t0, MS0).unwrap();
        assert_eq!(store.next_deadline(), Some(t0 + secs(3)));
        // The first job finishes at 30 s and expires at 31 s, before the second's
        // step at 32 s.
        let mut woke = Vec::new();
        store.advance(t0 + secs(30), MS0 + 30_000, &mut woke);
        assert_eq!(store.next_deadline(), Some(t0 + secs(31)));
        store.advance(t0 + secs(31), MS0 + 31_000, &mut woke);
        assert_eq!(store.len(), 1);
        assert_eq!(store.next_deadline(), Some(t0 + secs(32)));
    }

    #[test]
    fn progress_and_sequence_numbers_map_both_ways() {
        let config = JobConfig::default();
        assert_eq!(config.last_seq(), 11);
        for seq in 1..=11u64 {
            let progress = config.progress_for_seq(seq).unwrap();
            assert_eq!(u64::from(progress), (seq - 1) * 10);
            assert_eq!(config.seq_for_progress(progress), Some(seq));
        }
        assert_eq!(config.progress_for_seq(0), None);
        assert_eq!(config.progress_for_seq(12), None);
        assert_eq!(config.seq_for_progress(45), None);
        assert_eq!(config.seq_for_progress(110), None);

        // A step that does not divide 100: the last step is shorter.
        let thirty = JobConfig {
            step_percent: 30,
            ..config
        };
        let all: Vec<_> = (1..=thirty.last_seq())
            .map(|seq| thirty.progress_for_seq(seq).unwrap())
            .collect();
        assert_eq!(all, [0, 30, 60, 90, 100]);
        assert_eq!(thirty.seq_for_progress(100), Some(5));
        assert_eq!(thirty.seq_for_progress(90), Some(4));

        // 0 is taken as 1: a job of 101 updates, not one that never ends.
        let zero = JobConfig {
            step_percent: 0,
            ..config
        };
        assert_eq!(zero.last_seq(), 101);
    }

    #[test]
    fn a_job_with_an_uneven_step_ends_at_exactly_100() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig {
            step_percent: 30,
            ..JobConfig::default()
        });
        let id = store.submit(t0, MS0).unwrap();
        let mut woke = Vec::new();
        store.advance(t0 + secs(60), MS0 + 60_000, &mut woke);
        let got: Vec<_> = updates_after(&store, &id, 0)
            .iter()
            .map(|u| (u.0, u.1))
            .collect();
        assert_eq!(got, [(1, 0), (2, 30), (3, 60), (4, 90), (5, 100)]);
        assert!(store.log(&id).unwrap().is_closed());
    }

    #[test]
    fn the_log_seq_of_every_update_maps_to_its_progress() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = store.submit(t0, MS0).unwrap();
        let mut woke = Vec::new();
        store.advance(t0 + secs(30), MS0 + 30_000, &mut woke);
        for (seq, progress, _) in updates_after(&store, &id, 0) {
            assert_eq!(store.config().progress_for_seq(seq), Some(progress));
        }
    }

    #[test]
    fn restore_resumes_a_job_at_its_recorded_progress() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = JobId::new(MS0, 4);
        assert_eq!(store.restore(id, 40, t0, MS0 + 99), 40);
        assert_eq!(store.status(&id), Some(40));
        // The log starts with the 40% update, at the sequence number 40% maps to.
        let log = store.log(&id).unwrap();
        assert_eq!(log.oldest_seq(), Some(5));
        assert_eq!(updates_after(&store, &id, 4), [(5, 40, MS0 + 99)]);
        // A reader from before the restart is told what it missed.
        assert!(matches!(
            log.read(2),
            Read::Gap {
                oldest_kept: 5,
                missed: 2
            }
        ));
        assert!(matches!(log.read(5), Read::UpToDate));
        // The next step is one step from now.
        assert_eq!(store.next_deadline(), Some(t0 + secs(3)));
        let mut woke = Vec::new();
        store.advance(t0 + secs(3), MS0 + 3099, &mut woke);
        assert_eq!(woke, [id]);
        assert_eq!(updates_after(&store, &id, 5), [(6, 50, MS0 + 3099)]);
        // New handles are above restored ones.
        let next = store.submit(t0 + secs(3), MS0).unwrap();
        assert_eq!(next, JobId::new(MS0, 5));
    }

    #[test]
    fn restore_of_a_finished_job_closes_its_log_and_keeps_it_for_keep() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = JobId::new(MS0, 0);
        assert_eq!(store.restore(id, 200, t0, MS0), 100);
        let log = store.log(&id).unwrap();
        assert!(log.is_closed());
        assert!(matches!(log.read(11), Read::Ended));
        assert_eq!(store.next_deadline(), Some(t0 + secs(600)));
    }

    #[test]
    fn restore_rounds_progress_off_the_grid_down_and_replaces_a_held_job() {
        let t0 = Instant::now();
        let mut store = JobStore::new(JobConfig::default());
        let id = store.submit(t0, MS0).unwrap();
        assert_eq!(store.restore(id, 47, t0 + secs(1), MS0 + 1000), 40);
        assert_eq!(store.len(), 1);
        assert_eq!(store.status(&id), Some(40));
        // Only the restored job's deadline is pending, not the replaced one's.
        assert_eq!(store.next_deadline(), Some(t0 + secs(4)));
        let mut woke = Vec::new();
        store.advance(t0 + secs(3), MS0 + 3000, &mut woke);
        assert!(woke.is_empty());
    }
}
