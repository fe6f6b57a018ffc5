//! The job store's journal: `--store FILE`, so that a restarted server still
//! answers for every handle it gave out.
//!
//! # The idea
//!
//! The job store ([`crate::patterns::jobs`]) lives in memory: a restart forgets
//! every job, and every handle a client holds answers 404. To survive a restart
//! the server could save a snapshot of the store now and then, but a snapshot is
//! rewritten in place, and a crash during the rewrite can leave neither the old
//! nor the new one whole. So the store is not saved; its *history* is. Everything
//! that changes a job is one of two events:
//!
//! - a job was **submitted** (its handle, and when), and
//! - a job **reached progress P** (its handle, P, and when).
//!
//! Each event is appended as one record to the end of a file ([`RecordFile`]:
//! a length, two checksums, the payload), and a record, once written, is never
//! touched again.
//! On start-up the file is read from the beginning and the events are replayed:
//! the last progress recorded for each job is its state, and
//! [`JobStore::restore`] re-creates it. A job that was running resumes from its
//! last recorded progress; a finished one still answers 100% until it would have
//! been forgotten anyway.
//!
//! Because the file only ever grows at its end, a crash can damage at most the
//! record it was writing: the last one. That is the one case start-up repairs
//! (below); any other damage is reported, never guessed around.
//!
//! # Record payloads
//!
//! A payload is one line of ASCII text without its newline, fields separated by
//! exactly one space, in this grammar (version 1):
//!
//! ```text
//! payload   = "v1" SP event
//! event     = "submit" SP handle SP stamp
//!           / "progress" SP handle SP percent SP stamp
//! handle    = a job handle as it is written on the wire: "job:" ms [ "-" n ]
//! percent   = decimal 0..=100
//! stamp     = "at=" decimal       ; ms since the Unix epoch, u64
//! ```
//!
//! ```text
//! v1 submit job:1764480000000 at=1764480000000
//! v1 progress job:1764480000000 40 at=1764480012000
//! v1 progress job:1764480000000-1 100 at=1764480030000
//! ```
//!
//! Every number is written the way Rust's `Display` writes it (no sign, no
//! leading zeros), and [`Event::decode`] accepts exactly that and nothing else:
//! one event has one spelling, and bytes that merely look close are refused.
//! Text rather than binary because an operator told "bad record at byte offset
//! 8123" can look at the file with `less` or `xxd` and read it; the price is about
//! twice the size of a binary encoding (see [Growth](#growth-the-file-is-never-compacted)).
//!
//! The `v1` in front is the format's version. A later format writes `v2`; this
//! code refuses it ([`DecodeError::Version`]) rather than misread it.
//!
//! # Replay: what [`Journal::open`] restores
//!
//! [`Journal::open`] opens the file with [`RecordFile::open`] (which cuts a torn
//! tail and refuses a corrupt record), decodes every record, then, for each
//! handle that appears, takes its **last** event: a submit means 0%, a progress
//! record means its P. (A progress record without a submit before it is taken at
//! its word: a progress record is only ever written for a handle that was given
//! out.) Then, per handle, in handle order:
//!
//! - **running** (last progress < 100): restored with [`JobStore::restore`] at that
//!   progress, stamped with the recorded time. Its next step is one step from
//!   now: the step in progress at the crash is redone from its start.
//! - **finished** (100%) at wall time `F`: if `F + keep` has passed by the wall
//!   clock now, it is **not restored**: the store would have forgotten it by now
//!   (404), so it stays forgotten ([`Replayed::expired_skipped`]). Otherwise it is
//!   restored finished and kept for what remains of `keep`, not for a fresh
//!   `keep` from the restart.
//!
//! Finally the store is told the greatest handle in the file
//! ([`JobStore::reserve`]), skipped ones included, so that a handle is never
//! given out twice, even when the wall clock now reads earlier than it did.
//!
//! What stops start-up with an error, leaving the file unchanged:
//!
//! - a whole record whose checksum fails, anywhere in the file
//!   ([`RecordError::Corrupt`], naming its byte offset);
//! - a record whose checksum is right but whose payload does not decode
//!   ([`JournalError::Decode`], naming its byte offset): it was written by
//!   something else (another program, or a newer version of this one).
//!
//! What start-up repairs, with a warning ([`Replayed::warning`]): a **torn** last
//! record (the file ends inside it: a crash interrupted its append). The file is
//! truncated to the end of the last whole record and appends resume there. The
//! event in the torn record is lost; every record before it is intact.
//!
//! # When records reach the disk
//!
//! Appends ([`Journal::submitted`], [`Journal::progressed`]) are one `write` each,
//! on the loop thread, into the kernel's page cache: they return in microseconds
//! and never wait for the disk. Getting the bytes *onto* the disk is a separate
//! `fdatasync`, which waits until the disk answers (a fraction of a millisecond
//! on an SSD with a write cache, several milliseconds on a spinning disk, far
//! more on a busy one). The loop never makes that call: the journal has a thread
//! of its own, `journal-sync`, which holds a second handle on the file
//! ([`RecordFile::sync_handle`]) and does nothing but sync when asked. The loop
//! only hands it a request ("sync; the file ends at offset N") and, later, takes
//! in the answer. Disk writes on the loop thread are appends to the page cache,
//! and nothing else.
//!
//! - **When a sync starts: at most one per [`JournalConfig::sync_every`]** (1 s by
//!   default), on the first loop turn that finds unsynced records once
//!   `sync_every` has passed since the previous one started. The loop calls
//!   [`Journal::flush_if_due`] at the end of every turn and wakes for
//!   [`Journal::next_flush`] (with its other timers), so unsynced records never
//!   wait for traffic. After a quiet spell the first records' sync starts at the
//!   end of the very turn that appended them.
//! - **One sync at a time.** Records appended while a sync runs are not covered
//!   by it (it was asked for the bytes before offset N); they go in the next one,
//!   which starts once the running one has finished (the loop looks every few
//!   milliseconds while it waits).
//! - Hence **every record is on disk about `sync_every` after it was appended,
//!   plus one sync's time** (plus however late the loop turn runs). The
//!   journal's costs say how long syncs take here ([`JournalCosts::sync_max`]).
//! - `sync_every` = [`Duration::ZERO`] starts a sync at the end of every turn
//!   that appended anything, as soon as the previous one has finished: one sync
//!   covers every record of the turns it waited for (group commit).
//! - On shutdown the server calls [`Journal::sync`], which waits for the thread:
//!   every record is on disk when the server exits.
//!
//! [`JournalCosts`] counts appends, bytes, syncs and the time the sync thread
//! spent in them, for the server's cost report (`/stats` and the totals at
//! Ctrl-C).
//!
//! A sync that fails is not retried: on Linux a failed `fsync` may have dropped
//! the dirty pages it could not write, and a second `fsync` then "succeeds"
//! without them. Nobody knows any more what the file holds past the last good
//! sync, so the journal refuses every further write ([`JournalError::SyncFailed`]);
//! a restart replays what is really there.
//!
//! # What a crash can lose
//!
//! | what crashes | what is lost |
//! |---|---|
//! | the process (a panic, `kill -9`, the OOM killer) | nothing that was appended: the bytes are in the kernel's page cache and reach the file anyway |
//! | the machine (power loss, kernel panic) | the records appended since the last finished sync started: about the last `sync_every` of updates, plus one sync's time; if it struck mid-write, the last record is torn and cut at start-up, with a warning |
//!
//! What losing records means for clients, honestly:
//!
//! - **A lost progress record**: the job resumes from an earlier progress and
//!   redoes those steps. A client that saw 50% may see 40% after the restart (a
//!   reader whose cursor is ahead of the restored log is told so by the log).
//! - **A lost submit record**: the client may already hold the handle, because
//!   the answer to `POST /submit` goes out in the same loop turn, possibly before
//!   that turn's sync. After the restart that handle answers **404**, as if it
//!   had never been given out. Closing that window means holding each turn's
//!   answers until its sync has returned (the group commit of databases), which
//!   adds one sync to the latency of every submit; this journal gives the
//!   guarantee ("appended, then synced") and the server chooses the order.
//! - **Even with no loss**, a running job repeats the step it was in, and its
//!   earlier updates (and their stamps) are not replayed into its log: a reader
//!   that asks for them gets the restored update instead. An SSE stream says which
//!   it missed first, in a comment (`: missed 20%-30%, 2 updates not kept`); a
//!   long poll answers the current status, which is all it ever answers; a
//!   WebSocket, whose messages are status lines only, gets the restored update.
//!
//! # Growth: the file is never compacted
//!
//! No whole record is ever rewritten, so records of long-forgotten jobs stay in
//! the file, and the file grows for as long as the server accepts jobs. What it
//! costs, with the default 10% steps: 11 records per job (a submit and ten
//! progress records, 10% to 100%), each a 14-byte header and a 44 to 50-byte
//! payload: **689 bytes per job** (a test checks this number). A million jobs
//! make a 689 MB file, which start-up reads and holds in memory in full while it
//! replays (about a kilobyte per job ever submitted), however few jobs are still
//! live. A binary payload would halve the file, not change its slope.
//!
//! A later compaction would write a new file holding one record per job still
//! live (its last progress) and one for the greatest handle ever given out (so
//! that handles still never repeat), `fsync` it, `rename` it over the old one (atomic on
//! POSIX) and `fsync` the directory: the file's size then follows the live jobs,
//! not the history, and a crash at any point leaves either the old file or the
//! new one, whole.
//!
//! # Using it from the loop
//!
//! ```text
//! start-up    Journal::open(path, &mut store, now, wall_ms)  -> print Replayed, and its warning
//! submit      let id = store.submit(..)?; journal.submitted(&id, wall_ms)?  (before answering)
//! timer       store.advance(now, wall_ms, &mut woke);
//!             for id in woke: journal.progressed(&id, its progress, its last update's at_ms)
//!             (both from store.log(&id): the update at its last_seq)
//!             (one record per woken job: its latest progress; missed steps need no record)
//! end of turn journal.flush_if_due(now)?;  poll timeout <= journal.next_flush()
//! shutdown    journal.sync()?
//! ```
//!
//! If `submitted` fails (a full disk), the job exists in memory only; the server
//! should answer an error rather than hand out a handle it could not answer for
//! after a restart.
//!
//! # Example: a restart
//!
//! ```
//! use std::time::Instant;
//! use wirepatterns::patterns::jobs::{JobConfig, JobStore};
//! use wirepatterns::patterns::journal::Journal;
//!
//! let path = std::env::temp_dir().join(format!("wirepatterns-journal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! let (t0, ms0) = (Instant::now(), 1_764_480_000_000);
//!
//! // First run: one job, recorded at 40%.
//! let mut store = JobStore::new(JobConfig::default());
//! let (mut journal, replayed) = Journal::open(&path, &mut store, t0, ms0)?;
//! assert_eq!(replayed.records, 0);
//! let id = store.submit(t0, ms0).expect("room for a job");
//! journal.submitted(&id, ms0)?;
//! journal.progressed(&id, 40, ms0 + 12_000)?;
//! journal.sync()?;
//! drop(journal); // the server stops (or crashes)
//!
//! // Second run: the handle still answers, at its last recorded progress.
//! let mut store = JobStore::new(JobConfig::default());
//! let (_journal, replayed) = Journal::open(&path, &mut store, Instant::now(), ms0 + 20_000)?;
//! assert_eq!(store.status(&id), Some(40));
//! assert_eq!((replayed.records, replayed.running), (2, 1));
//! println!("{replayed}");
//! # drop(_journal);
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), wirepatterns::patterns::journal::JournalError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::patterns::jobs::{JobId, JobStore};
use crate::patterns::record_file::{HEADER_LEN, RecordError, RecordFile, SyncHandle, TornTail};
use crate::trace::Count;

/// While a sync is in flight and more records wait, how often the loop looks
/// whether it has finished (one sync at a time).
const SYNC_CHECK: Duration = Duration::from_millis(5);

/// The version word every payload starts with.
const VERSION: &str = "v1";

/// One event of a job's history: the payload of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A job was submitted: its handle was given out (its 0% update).
    /// Written `v1 submit <handle> at=<ms>`.
    Submitted {
        /// The handle given out.
        id: JobId,
        /// When, in ms since the Unix epoch: the stamp of its 0% update.
        wall_ms: u64,
    },
    /// A job reached a progress. Written `v1 progress <handle> <P> at=<ms>`.
    Progressed {
        /// The job.
        id: JobId,
        /// Its progress after the update, 0..=100 (more is written as 100).
        progress: u8,
        /// When the update happened, in ms since the Unix epoch: its `at=` stamp.
        wall_ms: u64,
    },
}

impl Event {
    /// The record payload of this event (its `Display` text, as bytes).
    pub fn encode(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Reads an event from a record payload, accepting exactly what
    /// [`Event::encode`] writes (see [Record payloads](self#record-payloads)).
    pub fn decode(payload: &[u8]) -> Result<Event, DecodeError> {
        let text = std::str::from_utf8(payload).map_err(|_| DecodeError::NotText)?;
        let mut fields = text.split(' ');
        if fields.next() != Some(VERSION) {
            return Err(DecodeError::Version);
        }
        let mut next = || fields.next().ok_or(DecodeError::FieldCount);
        let event = match next()? {
            "submit" => {
                let id = JobId::parse(next()?).ok_or(DecodeError::Handle)?;
                let wall_ms = parse_stamp(next()?)?;
                Event::Submitted { id, wall_ms }
            }
            "progress" => {
                let id = JobId::parse(next()?).ok_or(DecodeError::Handle)?;
                let progress = canonical_u64(next()?)
                    .and_then(|p| u8::try_from(p).ok())
                    .filter(|p| *p <= 100)
                    .ok_or(DecodeError::Progress)?;
                let wall_ms = parse_stamp(next()?)?;
                Event::Progressed {
                    id,
                    progress,
                    wall_ms,
                }
            }
            _ => return Err(DecodeError::Kind),
        };
        match fields.next() {
            Some(_) => Err(DecodeError::FieldCount),
            None => Ok(event),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Submitted { id, wall_ms } => write!(f, "{VERSION} submit {id} at={wall_ms}"),
            Event::Progressed {
                id,
                progress,
                wall_ms,
            } => write!(
                f,
                "{VERSION} progress {id} {} at={wall_ms}",
                (*progress).min(100)
            ),
        }
    }
}

/// `at=<ms>`, the number canonical.
fn parse_stamp(field: &str) -> Result<u64, DecodeError> {
    field
        .strip_prefix("at=")
        .and_then(canonical_u64)
        .ok_or(DecodeError::Stamp)
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

/// Why a payload is not a journal event (see [`Event::decode`]). Named after
/// the place in the grammar where decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload is not UTF-8 text.
    NotText,
    /// It does not start with `v1 `: another format version, or not a journal.
    Version,
    /// The event word is neither `submit` nor `progress`.
    Kind,
    /// Fields are missing or there are too many (or separated by more than one
    /// space).
    FieldCount,
    /// The handle is not a canonical `job:<ms>` or `job:<ms>-<n>`.
    Handle,
    /// The progress is not a canonical decimal 0..=100.
    Progress,
    /// The stamp is not `at=` and a canonical decimal `u64`.
    Stamp,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::NotText => "the payload is not UTF-8 text",
            DecodeError::Version => {
                "the payload does not start with \"v1 \" (another format version, \
                 or not a job journal)"
            }
            DecodeError::Kind => "the event is neither \"submit\" nor \"progress\"",
            DecodeError::FieldCount => "wrong number of fields",
            DecodeError::Handle => "the job handle is malformed",
            DecodeError::Progress => "the progress is not a number from 0 to 100",
            DecodeError::Stamp => "the stamp is not at=<ms since the epoch>",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Everything that can go wrong opening, appending to, or syncing the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The record file failed: the operating system refused an operation, the
    /// file is locked by another server, or a record is corrupt (its message
    /// names the byte offset).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A record's checksum is right but its payload is not a journal event.
    #[error(
        "store file {} has a record at byte offset {offset} that is not a job \
         journal record: {reason}; its checksum is right, so something else wrote \
         it (another program, or a newer version of this one); the file was not \
         changed",
        path.display()
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record's header.
        offset: u64,
        /// Where decoding stopped.
        reason: DecodeError,
    },
    /// An earlier sync failed, so which appended records reached the disk is
    /// unknown; the journal refuses further writes.
    #[error(
        "store file {} refuses writes: an earlier sync failed, and the kernel may \
         have dropped the records it could not write; restart the server (start-up \
         replays what the file really holds)",
        path.display()
    )]
    SyncFailed {
        /// The file.
        path: PathBuf,
    },
    /// The thread that syncs the file could not be started.
    #[error("could not start the store file's sync thread: {0}")]
    SyncThread(#[source] std::io::Error),
}

/// How often the journal flushes to disk (see [When records reach the
/// disk](self#when-records-reach-the-disk)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// The least time between two syncs, and so the most a power loss can lose
    /// (1 s by default). [`Duration::ZERO`]: sync at the end of every loop turn
    /// that appended. A duration too long to add to an `Instant`: never sync
    /// except on [`Journal::sync`].
    pub sync_every: Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            sync_every: Duration::from_secs(1),
        }
    }
}

/// What [`Journal::open`] found and restored: print it at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replayed {
    /// Whole records read (and decoded).
    pub records: usize,
    /// The file's length after any torn tail was cut: where appends resume.
    pub bytes: u64,
    /// Jobs re-created in the store: `running + finished`.
    pub jobs_restored: usize,
    /// Of those, jobs below 100%: they resume stepping.
    pub running: usize,
    /// Of those, jobs at 100% finished less than `keep` ago: they answer 100%
    /// until then.
    pub finished: usize,
    /// Jobs finished more than `keep` ago, not restored: they would already
    /// have been forgotten (404).
    pub expired_skipped: usize,
    /// Set when a torn last record was cut: see [`Replayed::warning`].
    pub torn: Option<TornTail>,
}

impl Replayed {
    /// A warning line to print when a torn last record was cut, else `None`.
    pub fn warning(&self) -> Option<String> {
        self.torn.map(|torn| {
            format!(
                "warning: store file: {torn}; the one event in it is lost (a job \
                 resumes from its previous record)"
            )
        })
    }
}

impl fmt::Display for Replayed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store: replayed {} ({}): restored {} ({} running, {} finished), skipped {} \
             finished longer than keep ago",
            Count(self.records as u64, "record", "records"),
            Count(self.bytes, "byte", "bytes"),
            Count(self.jobs_restored as u64, "job", "jobs"),
            self.running,
            self.finished,
            self.expired_skipped
        )?;
        if let Some(torn) = self.torn {
            write!(f, "; cut a torn last record at byte offset {}", torn.offset)?;
        }
        Ok(())
    }
}

/// The journal's costs since it was opened, for the server's cost report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalCosts {
    /// Records appended.
    pub records: u64,
    /// Bytes appended, headers included: how fast the file grows.
    pub bytes: u64,
    /// Syncs (`fdatasync` calls) completed, by the journal's sync thread.
    pub syncs: u64,
    /// Time the sync thread spent waiting in syncs, in total (the loop spends
    /// none: it only hands the request over).
    pub sync_time: Duration,
    /// The longest single sync: the longest records waited to be durable, past
    /// the wait for their turn.
    pub sync_max: Duration,
    /// Bytes appended but not yet synced, now: what a power loss would lose.
    pub unsynced_bytes: u64,
}

/// The job store's append-only journal. See the [module documentation](self).
#[derive(Debug)]
pub struct Journal {
    /// The records; the single writer of the file (it holds the file's lock).
    file: RecordFile,
    /// The flush policy.
    config: JournalConfig,
    /// When the next sync may happen: the open's `now`, then each sync's time
    /// plus `sync_every`. `None` if that is too far to represent (never).
    next_sync: Option<Instant>,
    /// Counters for [`Journal::costs`] (`unsynced_bytes` is filled in there).
    costs: JournalCosts,
    /// Set when a sync failed: every later write is refused.
    sync_failed: bool,
    /// The thread that syncs, and the sync it is doing.
    syncer: Syncer,
}

/// The journal's sync thread: it owns a [`SyncHandle`] on the file and does one
/// `fdatasync` per request, so the loop never waits for the disk.
#[derive(Debug)]
struct Syncer {
    /// Requests: "sync; the file's end is now at this offset". Dropped (`None`)
    /// to stop the thread.
    requests: Option<mpsc::Sender<u64>>,
    /// Answers, one per request, in order.
    done: mpsc::Receiver<SyncDone>,
    /// The end offset of the request the thread is working on, if any: at most
    /// one is in flight.
    in_flight: Option<u64>,
    /// Joined on drop, so that the file (and its lock) is closed when the
    /// journal is.
    thread: Option<thread::JoinHandle<()>>,
}

/// A finished sync: what it covered, how long it took, and whether it worked.
#[derive(Debug)]
struct SyncDone {
    end: u64,
    took: Duration,
    result: Result<(), RecordError>,
}

impl Syncer {
    /// Starts the thread, syncing through `handle`.
    fn start(handle: SyncHandle) -> Result<Syncer, JournalError> {
        let (requests, inbox) = mpsc::channel::<u64>();
        let (outbox, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                for end in inbox {
                    let started = Instant::now();
                    let result = handle.sync();
                    let took = started.elapsed();
                    if outbox.send(SyncDone { end, took, result }).is_err() {
                        return;
                    }
                }
            })
            .map_err(JournalError::SyncThread)?;
        Ok(Syncer {
            requests: Some(requests),
            done,
            in_flight: None,
            thread: Some(thread),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once its sync returns.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` with the default
    /// [`JournalConfig`] and replays it into `store` (see
    /// [Replay](self#replay-what-journalopen-restores)).
    ///
    /// `store` should be new and empty; its [`JobConfig`] (`keep`, the step) is
    /// the one the jobs are restored under. `now` and `wall_ms` are the present,
    /// on the loop's monotonic clock and the wall clock: they decide which
    /// finished jobs have expired and when restored jobs next step or expire.
    ///
    /// [`JobConfig`]: crate::patterns::jobs::JobConfig
    pub fn open(
        path: impl AsRef<Path>,
        store: &mut JobStore,
        now: Instant,
        wall_ms: u64,
    ) -> Result<(Journal, Replayed), JournalError> {
        Journal::open_with(path, JournalConfig::default(), store, now, wall_ms)
    }

    /// [`Journal::open`] with an explicit [`JournalConfig`].
    pub fn open_with(
        path: impl AsRef<Path>,
        config: JournalConfig,
        store: &mut JobStore,
        now: Instant,
        wall_ms: u64,
    ) -> Result<(Journal, Replayed), JournalError> {
        let (file, recovery) = RecordFile::open(path)?;

        // The last event of each handle: (progress, when), in handle order.
        let mut last: BTreeMap<JobId, (u8, u64)> = BTreeMap::new();
        for record in &recovery.records {
            let event = Event::decode(&record.payload).map_err(|reason| JournalError::Decode {
                path: file.path().to_path_buf(),
                offset: record.offset,
                reason,
            })?;
            match event {
                Event::Submitted { id, wall_ms } => last.insert(id, (0, wall_ms)),
                Event::Progressed {
                    id,
                    progress,
                    wall_ms,
                } => last.insert(id, (progress, wall_ms)),
            };
        }

        let mut replayed = Replayed {
            records: recovery.records.len(),
            bytes: file.end_offset(),
            torn: recovery.torn,
            ..Replayed::default()
        };
        let keep = store.config().keep;
        for (&id, &(progress, at_ms)) in &last {
            if progress < 100 {
                store.restore(id, progress, now, at_ms);
                replayed.running += 1;
                continue;
            }
            // Finished at `at_ms`: how long ago, by the wall clock (0 if the
            // clock now reads earlier).
            let age = Duration::from_millis(wall_ms.saturating_sub(at_ms));
            if age >= keep {
                replayed.expired_skipped += 1;
                continue;
            }
            // Restored as if it had finished `age` ago on the monotonic clock, so
            // it expires when `keep` has passed since it really finished. If the
            // clock cannot go back that far, it is kept for a whole `keep` from now.
            let finished_at = now.checked_sub(age).unwrap_or(now);
            store.restore(id, 100, finished_at, at_ms);
            replayed.finished += 1;
        }
        replayed.jobs_restored = replayed.running + replayed.finished;
        if let Some((&greatest, _)) = last.last_key_value() {
            store.reserve(greatest);
        }

        let syncer = Syncer::start(file.sync_handle()?)?;
        let journal = Journal {
            file,
            config,
            next_sync: Some(now),
            costs: JournalCosts::default(),
            sync_failed: false,
            syncer,
        };
        Ok((journal, replayed))
    }

    /// Appends "job `id` was submitted at `wall_ms`" (into the page cache: see
    /// [When records reach the disk](self#when-records-reach-the-disk)). Call it
    /// right after [`JobStore::submit`], before the handle is sent.
    pub fn submitted(&mut self, id: &JobId, wall_ms: u64) -> Result<(), JournalError> {
        self.append(Event::Submitted { id: *id, wall_ms })
    }

    /// Appends "job `id` reached `progress` at `wall_ms`" (more than 100 is
    /// written as 100). `wall_ms` is the update's own stamp (its `at_ms`). One
    /// record per job after each [`JobStore::advance`] that woke it, with its
    /// progress then, is enough: replay keeps only the last.
    pub fn progressed(
        &mut self,
        id: &JobId,
        progress: u8,
        wall_ms: u64,
    ) -> Result<(), JournalError> {
        self.append(Event::Progressed {
            id: *id,
            progress: progress.min(100),
            wall_ms,
        })
    }

    /// Starts a sync if records are waiting and the last one started at least
    /// `sync_every` before `now`; returns whether it started one. Never waits for
    /// the disk: the journal's thread syncs, and this call (like every append)
    /// first takes in what it finished, so a failed sync is reported here. Call
    /// it at the end of every loop turn.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<bool, JournalError> {
        self.collect()?;
        match self.next_flush() {
            Some(due) if due <= now => {
                if self.syncer.in_flight.is_some() {
                    // One sync at a time: look again shortly.
                    self.next_sync = now.checked_add(SYNC_CHECK);
                    return Ok(false);
                }
                self.start_sync(now)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// When [`Journal::flush_if_due`] next has something to do: `None` when
    /// nothing is waiting (or the policy never syncs). The loop wakes no later
    /// than this.
    pub fn next_flush(&self) -> Option<Instant> {
        if self.sync_failed {
            return None;
        }
        let waiting = match self.syncer.in_flight {
            // Records appended after the sync in flight started.
            Some(end) => self.file.end_offset() > end,
            None => self.file.unsynced_bytes() > 0,
        };
        if waiting { self.next_sync } else { None }
    }

    /// Syncs now, whatever the policy, and waits for it: every record appended
    /// so far is on disk when it returns. For shutdown (and tests). Does nothing
    /// if nothing is waiting.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        // The sync in flight may have started before the last appends: wait for
        // it, then sync what is left.
        for _ in 0..2 {
            self.wait_for_sync()?;
            if self.file.unsynced_bytes() == 0 {
                return Ok(());
            }
            self.start_sync(Instant::now())?;
        }
        self.wait_for_sync()
    }

    /// Waits until the sync in flight, if any, has finished, and takes it in.
    pub fn wait_for_sync(&mut self) -> Result<(), JournalError> {
        if self.syncer.in_flight.is_some() {
            match self.syncer.done.recv() {
                Ok(done) => self.finished(done),
                Err(_) => self.thread_gone(),
            }
        }
        self.check_failed()
    }

    /// The journal's costs since it was opened, syncs finished so far included.
    pub fn costs(&mut self) -> JournalCosts {
        let _ = self.collect();
        JournalCosts {
            unsynced_bytes: self.file.unsynced_bytes(),
            ..self.costs
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Appends `event` as one record and counts it.
    fn append(&mut self, event: Event) -> Result<(), JournalError> {
        self.collect()?;
        let payload = event.encode();
        self.file.append(&payload)?;
        self.costs.records += 1;
        self.costs.bytes += (HEADER_LEN + payload.len()) as u64;
        Ok(())
    }

    /// Hands "sync up to the end now" to the thread; `now` starts the next
    /// `sync_every`.
    fn start_sync(&mut self, now: Instant) -> Result<(), JournalError> {
        let end = self.file.end_offset();
        let sent = match &self.syncer.requests {
            Some(requests) => requests.send(end).is_ok(),
            None => false,
        };
        if !sent {
            self.thread_gone();
            return self.check_failed();
        }
        self.syncer.in_flight = Some(end);
        self.next_sync = now.checked_add(self.config.sync_every);
        Ok(())
    }

    /// Takes in the syncs the thread finished; the error if one failed.
    fn collect(&mut self) -> Result<(), JournalError> {
        loop {
            match self.syncer.done.try_recv() {
                Ok(done) => self.finished(done),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if self.syncer.in_flight.is_some() {
                        self.thread_gone();
                    }
                    break;
                }
            }
        }
        self.check_failed()
    }

    /// Counts a finished sync and marks what it made durable.
    fn finished(&mut self, done: SyncDone) {
        self.syncer.in_flight = None;
        self.costs.syncs += 1;
        self.costs.sync_time += done.took;
        self.costs.sync_max = self.costs.sync_max.max(done.took);
        match done.result {
            Ok(()) => self.file.mark_synced(done.end),
            Err(_) => self.sync_failed = true,
        }
    }

    /// The sync thread is gone (it cannot be, short of a panic in it): nobody
    /// knows what reached the disk, as after a failed sync.
    fn thread_gone(&mut self) {
        self.syncer.in_flight = None;
        self.sync_failed = true;
    }

    /// The refusal every call gets once a sync failed.
    fn check_failed(&self) -> Result<(), JournalError> {
        if self.sync_failed {
            Err(self.sync_failed_error())
        } else {
            Ok(())
        }
    }

    /// The error every write returns after a failed sync.
    fn sync_failed_error(&self) -> JournalError {
        JournalError::SyncFailed {
            path: self.file.path().to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patterns::jobs::JobConfig;
    use crate::patterns::log::Read;
    use std::sync::atomic::{AtomicU64, Ordering};

    const MS0: u64 = 1_764_480_000_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// A file path unique to one test, removed when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "wirepatterns-journal-{}-{name}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&path);
            TempPath(path)
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn new_store() -> JobStore {
        JobStore::new(JobConfig::default())
    }

    /// Opens `path` into a new default store at (`now`, `wall_ms`).
    fn reopen(path: &Path, now: Instant, wall_ms: u64) -> (JobStore, Journal, Replayed) {
        let mut store = new_store();
        let (journal, replayed) = Journal::open(path, &mut store, now, wall_ms).unwrap();
        (store, journal, replayed)
    }

    /// A journal at `path`, opened empty at `t0`, syncing at most every
    /// `sync_every`.
    fn syncing_every(path: &Path, sync_every: Duration, t0: Instant) -> Journal {
        let mut store = new_store();
        let config = JournalConfig { sync_every };
        Journal::open_with(path, config, &mut store, t0, MS0)
            .unwrap()
            .0
    }

    /// The byte offsets of the file's records, read with the record layer.
    fn record_offsets(path: &Path) -> Vec<u64> {
        let (_, recovery) = RecordFile::open(path).unwrap();
        recovery.records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn both_record_kinds_round_trip_through_their_exact_bytes() {
        let submitted = Event::Submitted {
            id: JobId::new(MS0, 0),
            wall_ms: MS0,
        };
        let progressed = Event::Progressed {
            id: JobId::new(MS0, 3),
            progress: 40,
            wall_ms: MS0 + 12_000,
        };
        assert_eq!(
            submitted.encode(),
            b"v1 submit job:1764480000000 at=1764480000000"
        );
        assert_eq!(
            progressed.encode(),
            b"v1 progress job:1764480000000-3 40 at=1764480012000"
        );
        for event in [submitted, progressed] {
            assert_eq!(Event::decode(&event.encode()), Ok(event));
        }
        let extremes = Event::Progressed {
            id: JobId::new(u64::MAX, u64::MAX),
            progress: 100,
            wall_ms: u64::MAX,
        };
        assert_eq!(Event::decode(&extremes.encode()), Ok(extremes));
        // Over 100 is written as 100, so it always decodes.
        let over = Event::Progressed {
            id: JobId::new(1, 0),
            progress: 250,
            wall_ms: 0,
        };
        assert_eq!(over.encode(), b"v1 progress job:1 100 at=0");
    }

    #[test]
    fn decoding_accepts_only_the_canonical_spelling() {
        use DecodeError::*;
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", Version),
            (b"v2 submit job:1 at=1", Version),
            (b"V1 submit job:1 at=1", Version),
            (b"v1", FieldCount),
            (b"v1 submit", FieldCount),
            (b"v1 submit job:1", FieldCount),
            (b"v1 submit job:1 at=1 extra", FieldCount),
            (b"v1 submit job:1 at=1 ", FieldCount),
            (b"v1  submit job:1 at=1", Kind),
            (b"v1 finish job:1 at=1", Kind),
            (b"v1 submit job:01 at=1", Handle),
            (b"v1 submit job:1-0 at=1", Handle),
            (b"v1 submit 1 at=1", Handle),
            (b"v1 submit job:1 at=01", Stamp),
            (b"v1 submit job:1 at=", Stamp),
            (b"v1 submit job:1 1", Stamp),
            (b"v1 submit job:1 at=1\n", Stamp),
            (b"v1 submit job:1 at=18446744073709551616", Stamp),
            (b"v1 progress job:1 101 at=1", Progress),
            (b"v1 progress job:1 040 at=1", Progress),
            (b"v1 progress job:1 -4 at=1", Progress),
            (b"v1 progress job:1 256 at=1", Progress),
            (b"v1 progress job:1 at=1", Progress),
            (b"v1 submit job:1 at=\xff", NotText),
        ];
        for (payload, expected) in cases {
            assert_eq!(
                Event::decode(payload),
                Err(*expected),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn replay_restores_running_jobs_at_their_last_progress_and_finished_ones_as_finished() {
        let tmp = TempPath::new("replay");
        let t0 = Instant::now();
        let mut store = new_store();
        let (mut journal, replayed) = Journal::open(&tmp.0, &mut store, t0, MS0).unwrap();
        assert_eq!(replayed, Replayed::default());
        let running = store.submit(t0, MS0).unwrap();
        let finished = store.submit(t0, MS0).unwrap();
        let fresh = store.submit(t0, MS0).unwrap();
        for id in [running, finished, fresh] {
            journal.submitted(&id, MS0).unwrap();
        }
        for p in [10, 20, 30] {
            journal
                .progressed(&running, p, MS0 + 1000 * u64::from(p))
                .unwrap();
        }
        journal.progressed(&finished, 100, MS0 + 30_000).unwrap();
        // A progress record whose submit is not in the file is taken at its word.
        let orphan = JobId::new(MS0 - 5, 0);
        journal.progressed(&orphan, 50, MS0 + 1).unwrap();
        journal.sync().unwrap();
        drop(journal);

        // Restart 40 s after MS0.
        let t1 = t0 + secs(1);
        let (store, _journal, replayed) = reopen(&tmp.0, t1, MS0 + 40_000);
        assert_eq!(
            replayed,
            Replayed {
                records: 8,
                bytes: std::fs::metadata(&tmp.0).unwrap().len(),
                jobs_restored: 4,
                running: 3,
                finished: 1,
                expired_skipped: 0,
                torn: None,
            }
        );
        assert_eq!(store.status(&running), Some(30));
        assert_eq!(store.status(&fresh), Some(0));
        assert_eq!(store.status(&orphan), Some(50));
        assert_eq!(store.status(&finished), Some(100));
        // The running job's log holds its recorded update with its recorded stamp.
        let log = store.log(&running).unwrap();
        assert!(!log.is_closed());
        assert_eq!(
            log.get(4).map(|u| (u.progress, u.at_ms)),
            Some((30, MS0 + 30_000))
        );
        // The finished one's log is closed: a reader at the end is told so.
        assert!(matches!(
            store.log(&finished).unwrap().read(11),
            Read::Ended
        ));
        // Running jobs step again one step after the restart.
        assert_eq!(store.next_deadline(), Some(t1 + secs(3)));
        let text = replayed.to_string();
        assert!(
            text.contains("replayed 8 records")
                && text.contains("restored 4 jobs (3 running, 1 finished)"),
            "{text}"
        );
        assert_eq!(replayed.warning(), None);
    }

    #[test]
    fn the_last_record_of_a_job_wins() {
        let tmp = TempPath::new("last-wins");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&id, MS0).unwrap();
        journal.progressed(&id, 60, MS0 + 1).unwrap();
        journal.progressed(&id, 20, MS0 + 2).unwrap();
        drop(journal);
        let (store, _, _) = reopen(&tmp.0, t0, MS0 + 10);
        assert_eq!(store.status(&id), Some(20));
    }

    #[test]
    fn a_finished_job_past_keep_is_skipped_and_a_recent_one_keeps_only_what_remains() {
        let tmp = TempPath::new("expiry");
        let t0 = Instant::now();
        let (old, recent) = (JobId::new(MS0, 0), JobId::new(MS0, 1));
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&old, MS0).unwrap();
        journal.submitted(&recent, MS0).unwrap();
        journal.progressed(&old, 100, MS0 + 30_000).unwrap();
        journal.progressed(&recent, 100, MS0 + 100_000).unwrap();
        drop(journal);

        // keep is 600 s: `old` finished exactly 600 s before the restart (gone, as
        // the store would have forgotten it), `recent` 530 s before (70 s left).
        let t1 = t0 + secs(1000);
        let (mut store, _journal, replayed) = reopen(&tmp.0, t1, MS0 + 630_000);
        assert_eq!(
            (
                replayed.jobs_restored,
                replayed.finished,
                replayed.expired_skipped
            ),
            (1, 1, 1)
        );
        assert!(replayed.to_string().contains("skipped 1 finished"));
        assert_eq!(store.status(&old), None);
        assert_eq!(store.status(&recent), Some(100));
        assert_eq!(store.next_deadline(), Some(t1 + secs(70)));
        let mut woke = Vec::new();
        store.advance(t1 + secs(69), MS0 + 699_000, &mut woke);
        assert_eq!(store.status(&recent), Some(100));
        store.advance(t1 + secs(70), MS0 + 700_000, &mut woke);
        assert_eq!(store.status(&recent), None);
    }

    #[test]
    fn handles_given_out_after_a_restart_are_above_every_handle_in_the_file() {
        let tmp = TempPath::new("handles");
        let t0 = Instant::now();
        let running = JobId::new(MS0, 7);
        // Given out while the wall clock was an hour fast, finished, forgotten.
        let ahead = JobId::new(MS0 + 3_600_000, 2);
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&ahead, MS0).unwrap();
        journal.progressed(&ahead, 100, MS0).unwrap();
        journal.submitted(&running, MS0).unwrap();
        drop(journal);

        let (mut store, _, replayed) = reopen(&tmp.0, t0, MS0 + 700_000);
        assert_eq!((replayed.running, replayed.expired_skipped), (1, 1));
        assert_eq!(store.status(&ahead), None);
        let next = store.submit(t0, MS0 + 700_000).unwrap();
        assert_eq!(next, JobId::new(MS0 + 3_600_000, 3));

        // Without the skipped one, above the restored one.
        let tmp = TempPath::new("handles-restored");
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&running, MS0).unwrap();
        drop(journal);
        let (mut store, _, _) = reopen(&tmp.0, t0, MS0);
        assert_eq!(store.submit(t0, MS0).unwrap(), JobId::new(MS0, 8));
    }

    #[test]
    fn a_torn_last_record_is_cut_with_a_warning_and_appends_resume_after_it() {
        let tmp = TempPath::new("torn");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&id, MS0).unwrap();
        journal.progressed(&id, 10, MS0 + 3000).unwrap();
        drop(journal);
        let offsets = record_offsets(&tmp.0);
        let len = std::fs::metadata(&tmp.0).unwrap().len();
        // A crash in the middle of the second append: its last 5 bytes are missing.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&tmp.0)
            .unwrap();
        file.set_len(len - 5).unwrap();
        drop(file);

        let (store, mut journal, replayed) = reopen(&tmp.0, t0, MS0 + 4000);
        let torn = replayed.torn.expect("a torn tail");
        assert_eq!(
            (torn.offset, torn.bytes_cut),
            (offsets[1], len - 5 - offsets[1])
        );
        assert_eq!((replayed.records, replayed.bytes), (1, offsets[1]));
        let warning = replayed.warning().expect("a warning");
        assert!(
            warning.starts_with("warning:")
                && warning.contains(&format!("byte offset {}", offsets[1])),
            "{warning}"
        );
        assert!(replayed.to_string().contains("torn"), "{replayed}");
        assert_eq!(store.status(&id), Some(0));
        assert_eq!(std::fs::metadata(&tmp.0).unwrap().len(), offsets[1]);

        journal.progressed(&id, 20, MS0 + 6000).unwrap();
        drop(journal);
        let (store, _, replayed) = reopen(&tmp.0, t0, MS0 + 7000);
        assert_eq!((replayed.records, replayed.torn), (2, None));
        assert_eq!(store.status(&id), Some(20));
        assert_eq!(record_offsets(&tmp.0)[1], offsets[1]);
    }

    #[test]
    fn a_corrupt_middle_record_stops_open_naming_its_byte_offset() {
        let tmp = TempPath::new("corrupt");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let (_, mut journal, _) = reopen(&tmp.0, t0, MS0);
        journal.submitted(&id, MS0).unwrap();
        journal.progressed(&id, 10, MS0 + 3000).unwrap();
        journal.progressed(&id, 20, MS0 + 6000).unwrap();
        drop(journal);
        let middle = record_offsets(&tmp.0)[1];
        let mut bytes = std::fs::read(&tmp.0).unwrap();
        // "v1 progress job:..." -> "v1 progress jpb:...": full length, bad checksum.
        bytes[middle as usize + HEADER_LEN + 13] ^= 0x1f;
        std::fs::write(&tmp.0, &bytes).unwrap();

        let mut store = new_store();
        let err = Journal::open(&tmp.0, &mut store, t0, MS0).unwrap_err();
        assert!(
            matches!(err, JournalError::Record(RecordError::Corrupt { offset, .. }) if offset == middle),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("byte offset {middle}")),
            "{message}"
        );
        assert!(store.is_empty());
        assert_eq!(
            std::fs::read(&tmp.0).unwrap(),
            bytes,
            "the file was changed"
        );
    }

    #[test]
    fn a_valid_record_that_is_not_an_event_stops_open_naming_its_byte_offset() {
        let tmp = TempPath::new("foreign");
        let (mut file, _) = RecordFile::open(&tmp.0).unwrap();
        file.append(b"v1 submit job:1 at=1").unwrap();
        let foreign = file.append(b"v2 submit job:2 at=2").unwrap();
        file.append(b"v1 submit job:3 at=3").unwrap();
        drop(file);

        let mut store = new_store();
        let err = Journal::open(&tmp.0, &mut store, Instant::now(), MS0).unwrap_err();
        match &err {
            JournalError::Decode { offset, reason, .. } => {
                assert_eq!((*offset, *reason), (foreign, DecodeError::Version));
            }
            other => panic!("expected Decode, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("byte offset {foreign}")) && foreign > 0,
            "{message}"
        );
        assert!(
            store.is_empty(),
            "nothing is restored from a file that fails"
        );
    }

    #[test]
    fn one_job_restored_is_one_job() {
        let text = Replayed {
            records: 1,
            bytes: 60,
            jobs_restored: 1,
            running: 0,
            finished: 1,
            ..Replayed::default()
        }
        .to_string();
        assert!(
            text.starts_with("store: replayed 1 record (60 bytes): restored 1 job (0 running"),
            "{text}"
        );
    }

    #[test]
    fn flushes_wait_for_sync_every_and_happen_only_when_something_was_appended() {
        let tmp = TempPath::new("flush");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let mut journal = syncing_every(&tmp.0, secs(1), t0);
        assert_eq!(journal.next_flush(), None);
        assert!(!journal.flush_if_due(t0).unwrap(), "nothing to sync");

        // After a quiet spell the first record's sync starts in its own turn,
        // on the sync thread.
        journal.submitted(&id, MS0).unwrap();
        assert_eq!(journal.next_flush(), Some(t0));
        assert!(journal.flush_if_due(t0).unwrap());
        assert_eq!(journal.next_flush(), None, "nothing more waits");
        journal.wait_for_sync().unwrap();
        assert_eq!(journal.costs().unsynced_bytes, 0);
        assert_eq!(journal.next_flush(), None);

        // The next one waits until a second has passed since that sync.
        let t = t0 + Duration::from_millis(200);
        journal.progressed(&id, 10, MS0 + 200).unwrap();
        assert_eq!(journal.next_flush(), Some(t0 + secs(1)));
        assert!(!journal.flush_if_due(t).unwrap());
        assert!(
            !journal
                .flush_if_due(t0 + Duration::from_millis(999))
                .unwrap()
        );
        assert!(journal.costs().unsynced_bytes > 0);
        assert!(journal.flush_if_due(t0 + secs(1)).unwrap());
        journal.wait_for_sync().unwrap();

        let costs = journal.costs();
        assert_eq!(
            (costs.records, costs.syncs, costs.unsynced_bytes),
            (2, 2, 0)
        );
        assert_eq!(costs.bytes, std::fs::metadata(&tmp.0).unwrap().len());
        assert!(costs.sync_max <= costs.sync_time);
    }

    #[test]
    fn sync_every_zero_syncs_every_turn_that_appended_and_no_other() {
        let tmp = TempPath::new("flush-zero");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let mut journal = syncing_every(&tmp.0, Duration::ZERO, t0);
        for turn in 0..3u64 {
            let now = t0 + Duration::from_millis(turn);
            // Several records in one turn: one sync.
            journal.progressed(&id, 10, MS0).unwrap();
            journal.progressed(&id, 20, MS0).unwrap();
            assert!(journal.flush_if_due(now).unwrap(), "turn {turn}");
            assert!(!journal.flush_if_due(now).unwrap(), "turn {turn}");
            journal.wait_for_sync().unwrap();
        }
        assert_eq!(journal.costs().syncs, 3);
        assert_eq!(journal.costs().records, 6);
        journal.sync().unwrap();
        assert_eq!(
            journal.costs().syncs,
            3,
            "sync with nothing waiting is free"
        );
    }

    #[test]
    fn records_appended_during_a_sync_wait_for_the_next_one() {
        let tmp = TempPath::new("flush-overlap");
        let t0 = Instant::now();
        let id = JobId::new(MS0, 0);
        let mut journal = syncing_every(&tmp.0, Duration::ZERO, t0);
        journal.submitted(&id, MS0).unwrap();
        assert!(journal.flush_if_due(t0).unwrap());
        let first_end = journal.file.end_offset();
        // Appended while that sync may still run: not covered by it.
        journal.progressed(&id, 10, MS0).unwrap();
        assert!(journal.next_flush().is_some(), "the new record waits");
        journal.wait_for_sync().unwrap();
        let costs = journal.costs();
        assert_eq!(costs.syncs, 1);
        assert_eq!(
            costs.unsynced_bytes,
            journal.file.end_offset() - first_end,
            "only what the first sync covered is marked durable"
        );
        // The next turn syncs the rest; a full sync leaves nothing waiting.
        assert!(journal.flush_if_due(t0 + Duration::from_millis(1)).unwrap());
        journal.sync().unwrap();
        let costs = journal.costs();
        assert_eq!((costs.syncs, costs.unsynced_bytes), (2, 0));
        assert_eq!(journal.next_flush(), None);
    }

    #[test]
    fn the_file_is_closed_with_the_journal_so_it_can_be_reopened() {
        let tmp = TempPath::new("reopen-lock");
        let t0 = Instant::now();
        for round in 0..3u64 {
            let (mut store, mut journal, _) = reopen(&tmp.0, t0, MS0);
            let id = store.submit(t0, MS0 + round).unwrap();
            journal.submitted(&id, MS0 + round).unwrap();
            assert!(journal.flush_if_due(t0).unwrap());
            // Dropped with its sync maybe in flight: the sync thread's handle
            // on the file (and the file's lock) goes with it.
        }
        let (store, _, replayed) = reopen(&tmp.0, t0, MS0);
        assert_eq!(replayed.records, 3);
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_job_of_the_default_config_costs_689_bytes_of_file() {
        let tmp = TempPath::new("size");
        let t0 = Instant::now();
        let (mut store, mut journal, _) = reopen(&tmp.0, t0, MS0);
        let id = store.submit(t0, MS0).unwrap();
        journal.submitted(&id, MS0).unwrap();
        for k in 1..=10u64 {
            let mut woke = Vec::new();
            store.advance(t0 + secs(3 * k), MS0 + 3000 * k, &mut woke);
            for id in woke {
                let progress = store.status(&id).unwrap();
                journal.progressed(&id, progress, MS0 + 3000 * k).unwrap();
            }
        }
        assert_eq!(journal.costs().records, 11);
        assert_eq!(journal.costs().bytes, 689);
        drop(journal);
        let (store, _, replayed) = reopen(&tmp.0, t0, MS0 + 40_000);
        assert_eq!(replayed.finished, 1);
        assert_eq!(store.status(&id), Some(100));
    }

    #[test]
    fn a_second_server_on_the_same_file_is_refused() {
        let tmp = TempPath::new("locked");
        let (_store, _journal, _) = reopen(&tmp.0, Instant::now(), MS0);
        let mut store = new_store();
        let err = Journal::open(&tmp.0, &mut store, Instant::now(), MS0).unwrap_err();
        assert!(
            matches!(err, JournalError::Record(RecordError::Locked { .. })),
            "{err:?}"
        );
    }
}
