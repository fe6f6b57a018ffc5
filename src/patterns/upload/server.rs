//! The upload service on the event loop: [tus 1.0.0](super::tus) and
//! [`PUT /files/NAME`](super::tus::Route::Whole) over the driver, bodies taken in
//! parts straight to disk.
//!
//! # A request's way through
//!
//! 1. **The head** ([`Handler::on_head`]): [`tus::route`] checks everything the
//!    head alone can tell (the tus version, the path, the offsets, the declared
//!    length against the maximum). For a request with a body the store is asked
//!    at once: a PATCH at the wrong offset (409), to an unknown upload (404) or
//!    one whose part runs past the upload (413), a file name that would leave the
//!    directory (400). A refusal is answered now with `Connection: close`
//!    ([`BodyMode::Reject`]): the body is never read, and a client that waits for
//!    `100 Continue` never sends it.
//! 2. **The body** ([`Handler::on_body_part`]): accepted bodies are taken in parts
//!    ([`BodyMode::Parts`]). Each piece the loop decodes (a read's worth, at most
//!    [`crate::server::Config::max_read_buffer_bytes`]) joins the upload's write
//!    buffer, and at the end of the loop's turn ([`Handler::on_turn_end`]) the
//!    buffer is appended to the upload's file (or a part's side file, with a
//!    checksum; or a whole file's temporary file) in one write. The buffer is
//!    bounded ([`WRITE_BUFFER`], 256 KiB): once it is full, the upload's
//!    connection is not read ([`Context::pause_reading`]) until the turn's end
//!    has written it, so a client faster than the disk waits in TCP's window
//!    instead of in the server's memory. Disk writes are appends to the page
//!    cache, on the loop thread. The memory an upload costs is its buffer and
//!    one read buffer, whatever the file's size.
//! 3. **The end**: [`Handler::on_request`] when the body is complete (the part is
//!    checked and committed, the whole file renamed into place: 204 or 201), or
//!    [`BodyPart::Incomplete`] when it will never be (the client went away, sent a
//!    malformed chunk, or stopped sending until the body timeout): a part without
//!    a checksum keeps what arrived (tus: the server SHOULD store as much as it
//!    can, and `HEAD` reports exactly that), a checked part and a whole file are
//!    dropped.
//!
//! A piece the store refuses mid-body (a chunked part running past the upload's
//! length, a whole file past the maximum size) or a disk error ends the part at
//! once; the rest of the body is read and dropped, and the request is answered
//! with the error and `Connection: close`.
//!
//! # What a crash can lose
//!
//! Appends go to the page cache as they arrive and are flushed (fsync) when an
//! upload completes or a whole file is renamed into place ([`super::store`]). A
//! process crash loses nothing the kernel took; a power loss can lose the
//! unflushed tail of an unfinished upload, and then `HEAD` after the restart
//! reports the shorter offset, from which the client resumes.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::store::{Part, StoreError, UploadStore, WholeFile};
use super::tus::{self, Route, TusRequest};
use crate::cost::RequestCost;
use crate::http::Response;
use crate::server::{BodyMode, BodyPart, CloseReason, ConnId, Context, Handler, Incoming, Reply};
use crate::trace::{Dur, Size};

/// A body being received, by connection.
#[derive(Debug)]
enum Receiving {
    /// A tus PATCH's bytes, into the upload (or its side file).
    Part(Part, Progress),
    /// `PUT /files/NAME`, into a temporary file.
    Whole(WholeFile, Progress),
    /// The store refused a piece or the disk failed: the rest of the body is read
    /// and dropped, then this is the answer.
    Failed(u16, String),
}

/// How a body's reception goes, and the bytes it has not written yet.
#[derive(Debug)]
struct Progress {
    /// When its first piece arrived (the head, until then).
    started: Instant,
    /// Disk writes made.
    pieces: u64,
    /// Bytes received.
    bytes: u64,
    /// Bytes received and not yet written: written at the end of the loop's
    /// turn, or when the body ends.
    pending: Vec<u8>,
    /// Reading is paused until `pending` is written.
    paused: bool,
}

impl Progress {
    fn new(now: Instant) -> Progress {
        Progress {
            started: now,
            pieces: 0,
            bytes: 0,
            pending: Vec::new(),
            paused: false,
        }
    }
}

/// The most body bytes one upload holds before they are written
/// ([`UploadApp::with_write_buffer`]): 256 KiB.
pub const WRITE_BUFFER: usize = 256 * 1024;

/// What the service has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// The most body bytes one upload held at once, not yet written.
    pub peak_buffered: u64,
    /// Times an upload's connection was paused because its buffer was full.
    pub pauses: u64,
    /// Disk writes of body bytes.
    pub writes: u64,
}

/// What the service did with a body, for `--trace` ([`UploadApp::set_observer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEvent {
    /// A tus part was stored: `bytes` in `pieces` disk writes, the upload now at
    /// `offset` of `length`.
    PartStored {
        /// The connection.
        conn: ConnId,
        /// The upload's URL path.
        upload: String,
        /// Bytes in the part.
        bytes: u64,
        /// Disk writes (one per decoded piece).
        pieces: u64,
        /// The upload's offset now.
        offset: u64,
        /// Whether the part carried a checksum that matched.
        checked: bool,
        /// Whether the upload is now complete (and flushed to disk).
        complete: bool,
        /// From the first piece to the part's end.
        took: Duration,
    },
    /// A whole file was renamed into place.
    WholeStored {
        /// The connection.
        conn: ConnId,
        /// The file's name.
        name: String,
        /// Its size.
        bytes: u64,
        /// Disk writes.
        pieces: u64,
        /// From the first piece to the rename.
        took: Duration,
    },
    /// A body did not complete, or was refused after it started: what became of
    /// what arrived.
    Dropped {
        /// The connection.
        conn: ConnId,
        /// What it was for (`PATCH /uploads/ID`, `PUT /files/NAME`).
        what: String,
        /// Bytes that had arrived.
        bytes: u64,
        /// What happened to them.
        outcome: String,
    },
}

impl fmt::Display for UploadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadEvent::PartStored {
                conn,
                upload,
                bytes,
                pieces,
                offset,
                checked,
                complete,
                took,
            } => write!(
                f,
                "conn {:<3} part        PATCH {upload}: {} in {pieces} writes{}, offset now {}{} in {}",
                conn.serial(),
                Size(*bytes),
                if *checked { ", sha1 checked" } else { "" },
                Size(*offset),
                if *complete { ", complete, flushed" } else { "" },
                Dur(*took)
            ),
            UploadEvent::WholeStored {
                conn,
                name,
                bytes,
                pieces,
                took,
            } => write!(
                f,
                "conn {:<3} file        PUT /files/{name}: {} in {pieces} writes, flushed and renamed into place in {}",
                conn.serial(),
                Size(*bytes),
                Dur(*took)
            ),
            UploadEvent::Dropped {
                conn,
                what,
                bytes,
                outcome,
            } => write!(
                f,
                "conn {:<3} cut         {what}: {} arrived; {outcome}",
                conn.serial(),
                Size(*bytes)
            ),
        }
    }
}

/// Called with each [`UploadEvent`].
pub type UploadObserver = Box<dyn FnMut(&UploadEvent) + Send>;
/// Called with each request's costs.
pub type RequestObserver = Box<dyn FnMut(&RequestCost) + Send>;

/// The upload service: tus 1.0.0 under `/uploads`, whole files under `/files`.
/// See the [module documentation](self).
pub struct UploadApp {
    /// The files.
    store: UploadStore,
    /// Bodies being received.
    receiving: HashMap<ConnId, Receiving>,
    /// Who hears about each stored or dropped body.
    observer: Option<UploadObserver>,
    /// Who hears about each request's costs.
    requests: Option<RequestObserver>,
    /// The most body bytes one upload holds before reading pauses.
    write_buffer: usize,
    /// Totals.
    stats: UploadStats,
}

impl UploadApp {
    /// The service over `store`, each upload buffering at most [`WRITE_BUFFER`]
    /// bytes.
    pub fn new(store: UploadStore) -> UploadApp {
        UploadApp {
            store,
            receiving: HashMap::new(),
            observer: None,
            requests: None,
            write_buffer: WRITE_BUFFER,
            stats: UploadStats::default(),
        }
    }

    /// Each upload buffers at most `bytes` (at least 1) before it is written.
    pub fn with_write_buffer(mut self, bytes: usize) -> UploadApp {
        self.write_buffer = bytes.max(1);
        self
    }

    /// The totals.
    pub fn stats(&self) -> &UploadStats {
        &self.stats
    }

    /// Writes what `conn`'s body holds (and reads it again if it was paused). A
    /// refusal or a disk error ends the body: the rest is read and dropped.
    fn write_pending(&mut self, ctx: &mut Context<'_>, conn: ConnId) {
        let Some(receiving) = self.receiving.get_mut(&conn) else {
            return;
        };
        let (result, progress) = match receiving {
            Receiving::Part(part, progress) if !progress.pending.is_empty() => {
                (self.store.write_part(part, &progress.pending), progress)
            }
            Receiving::Whole(whole, progress) if !progress.pending.is_empty() => {
                (whole.write(&progress.pending), progress)
            }
            Receiving::Part(_, progress) | Receiving::Whole(_, progress) => (Ok(()), progress),
            Receiving::Failed(..) => return,
        };
        if !progress.pending.is_empty() {
            progress.pieces += 1;
            self.stats.writes += 1;
        }
        progress.pending.clear();
        if std::mem::take(&mut progress.paused) {
            ctx.resume_reading(conn);
        }
        if let Err(e) = result
            && let Some(receiving) = self.receiving.insert(conn, failed(&e))
        {
            self.drop_body(conn, receiving, &format!("refused mid-body: {e}"));
        }
    }

    /// Calls `observer` with each part stored, file stored, or body dropped.
    pub fn set_observer(&mut self, observer: impl FnMut(&UploadEvent) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Calls `observer` with each request's costs once its answer is written.
    pub fn set_request_observer(&mut self, observer: impl FnMut(&RequestCost) + Send + 'static) {
        self.requests = Some(Box::new(observer));
    }

    /// The store.
    pub fn store(&self) -> &UploadStore {
        &self.store
    }

    /// Bodies being received now.
    pub fn receiving(&self) -> usize {
        self.receiving.len()
    }

    fn tell(&mut self, event: UploadEvent) {
        if let Some(observer) = self.observer.as_mut() {
            observer(&event);
        }
    }

    /// Ends a body that will not complete: a part keeps what arrived unless it
    /// was to be checked; a whole file is dropped.
    fn drop_body(&mut self, conn: ConnId, receiving: Receiving, why: &str) {
        let event = match receiving {
            Receiving::Part(part, progress) => {
                let what = format!("PATCH {}", part.id().path());
                let outcome = match self.store.abort_part(part) {
                    Ok(end) => format!("{why}; the upload keeps {} (offset)", Size(end.offset)),
                    Err(e) => format!("{why}; {e}"),
                };
                UploadEvent::Dropped {
                    conn,
                    what,
                    bytes: progress.bytes,
                    outcome,
                }
            }
            Receiving::Whole(whole, progress) => {
                let what = format!("PUT /files/{}", whole.name());
                let outcome = match self.store.abort_whole(whole) {
                    Ok(()) => format!("{why}; nothing stored under the name"),
                    Err(e) => format!("{why}; {e}"),
                };
                UploadEvent::Dropped {
                    conn,
                    what,
                    bytes: progress.bytes,
                    outcome,
                }
            }
            Receiving::Failed(..) => return,
        };
        self.tell(event);
    }

    /// Answers a request whose body (if any) is complete.
    fn answer(&mut self, req: &Incoming<'_>, res: &mut Response) {
        let conn = req.conn();
        let max = self.store.max_size();
        let route = match tus::route(req.request(), max) {
            Ok(route) => route,
            Err(e) => return tus::rejection(res, &e, max),
        };
        let receiving = self.receiving.remove(&conn);
        if let Some(Receiving::Failed(status, reason)) = &receiving {
            return tus::error_answer(res, *status, reason);
        }
        let result = match route {
            Route::Tus(TusRequest::Options) => {
                tus::options_answer(res, max);
                Ok(())
            }
            Route::Tus(TusRequest::Create { length, metadata }) => self
                .store
                .create(length, &metadata)
                .map(|id| tus::created_answer(res, id)),
            Route::Tus(TusRequest::Head { id }) => self
                .store
                .info(id)
                .map(|info| tus::head_answer(res, info.offset, info.length, &info.metadata)),
            Route::Tus(TusRequest::Delete { id }) => {
                self.store.delete(id).map(|()| tus::delete_answer(res))
            }
            Route::Tus(TusRequest::Patch {
                id,
                offset,
                checksum,
                body_length,
                upload_length,
            }) => {
                let started = match receiving {
                    Some(Receiving::Part(part, progress)) => Ok((part, progress)),
                    // No body (an empty PATCH): a part of no bytes.
                    _ => self
                        .store
                        .begin_part(id, offset, body_length, upload_length, checksum)
                        .map(|part| (part, Progress::new(Instant::now()))),
                };
                started.and_then(|(part, progress)| {
                    let checked = checksum.is_some();
                    let end = self.store.finish_part(part)?;
                    tus::patch_answer(res, end.offset);
                    self.tell(UploadEvent::PartStored {
                        conn,
                        upload: id.path(),
                        bytes: progress.bytes,
                        pieces: progress.pieces,
                        offset: end.offset,
                        checked,
                        complete: end.complete,
                        took: progress.started.elapsed(),
                    });
                    Ok(())
                })
            }
            Route::Whole { name, .. } => {
                let started = match receiving {
                    Some(Receiving::Whole(whole, progress)) => Ok((whole, progress)),
                    // No body: an empty file.
                    _ => self
                        .store
                        .begin_whole(&name)
                        .map(|whole| (whole, Progress::new(Instant::now()))),
                };
                started.and_then(|(whole, progress)| {
                    let (stored, replaced) = self.store.finish_whole(whole)?;
                    tus::stored_answer(res, if replaced { 200 } else { 201 }, &stored);
                    self.tell(UploadEvent::WholeStored {
                        conn,
                        name,
                        bytes: progress.bytes,
                        pieces: progress.pieces,
                        took: progress.started.elapsed(),
                    });
                    Ok(())
                })
            }
            Route::Digest { id } => self
                .store
                .digest(id)
                .map(|stored| tus::stored_answer(res, 200, &stored)),
        };
        if let Err(e) = result {
            tus::error_answer(res, e.status(), &e);
        }
    }
}

/// The status and reason of a store error, for a body refused mid-way.
fn failed(e: &StoreError) -> Receiving {
    Receiving::Failed(e.status(), e.to_string())
}

impl Handler for UploadApp {
    fn on_head(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> BodyMode {
        let conn = req.conn();
        let max = self.store.max_size();
        let started = match tus::route(req.request(), max) {
            Err(e) => {
                tus::rejection(res, &e, max);
                return BodyMode::Reject;
            }
            Ok(Route::Tus(TusRequest::Patch {
                id,
                offset,
                checksum,
                body_length,
                upload_length,
            })) => self
                .store
                .begin_part(id, offset, body_length, upload_length, checksum)
                .map(|part| Receiving::Part(part, Progress::new(ctx.now()))),
            Ok(Route::Whole { name, .. }) => self
                .store
                .begin_whole(&name)
                .map(|whole| Receiving::Whole(whole, Progress::new(ctx.now()))),
            // Other requests carry no body worth keeping: taken whole, within the
            // driver's limit, and ignored.
            Ok(_) => return BodyMode::Whole,
        };
        match started {
            Ok(receiving) => {
                self.receiving.insert(conn, receiving);
                BodyMode::Parts
            }
            Err(e) => {
                tus::error_answer(res, e.status(), &e);
                BodyMode::Reject
            }
        }
    }

    fn on_body_part(&mut self, ctx: &mut Context<'_>, conn: ConnId, part: BodyPart<'_>) {
        match part {
            BodyPart::Data(bytes) => {
                let Some(Receiving::Part(_, progress) | Receiving::Whole(_, progress)) =
                    self.receiving.get_mut(&conn)
                else {
                    return; // refused mid-body: the rest is dropped
                };
                progress.bytes += bytes.len() as u64;
                progress.pending.extend_from_slice(bytes);
                let held = progress.pending.len();
                self.stats.peak_buffered = self.stats.peak_buffered.max(held as u64);
                if held >= self.write_buffer && !progress.paused {
                    // Full: read no more from this client until the turn's end
                    // writes the buffer out (TCP makes it wait meanwhile).
                    progress.paused = true;
                    self.stats.pauses += 1;
                    ctx.pause_reading(conn);
                }
            }
            BodyPart::Incomplete => {
                // What arrived is written first: an unchecked part keeps it.
                self.write_pending(ctx, conn);
                if let Some(receiving) = self.receiving.remove(&conn) {
                    self.drop_body(conn, receiving, "the body did not complete");
                }
            }
        }
    }

    fn on_turn_end(&mut self, ctx: &mut Context<'_>) {
        // One disk write per upload per turn, however many pieces arrived.
        let busy: Vec<ConnId> = self
            .receiving
            .iter()
            .filter(|(_, r)| match r {
                Receiving::Part(_, p) | Receiving::Whole(_, p) => !p.pending.is_empty(),
                Receiving::Failed(..) => false,
            })
            .map(|(&conn, _)| conn)
            .collect();
        for conn in busy {
            self.write_pending(ctx, conn);
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        self.write_pending(ctx, req.conn());
        self.answer(req, res);
        Reply::Respond
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, conn: ConnId, _reason: CloseReason) {
        // Told already through `BodyPart::Incomplete`; this only guards the map.
        self.write_pending(ctx, conn);
        if let Some(receiving) = self.receiving.remove(&conn) {
            self.drop_body(conn, receiving, "the connection closed");
        }
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        if let Some(observer) = self.requests.as_mut() {
            observer(cost);
        }
    }
}

impl fmt::Debug for UploadApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadApp")
            .field("store", &self.store)
            .field("receiving", &self.receiving.len())
            .finish()
    }
}
