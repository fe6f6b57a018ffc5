//! The uploads on disk: tus uploads that grow by appends, and whole files that
//! appear under their name only once complete.
//!
//! # The directory
//!
//! ```text
//! DIR/uploads/ID        the bytes of upload ID received so far: its length IS the offset
//! DIR/uploads/ID.info   its length and metadata, written once at creation
//! DIR/uploads/ID.part   a checksummed part while it arrives (committed or discarded)
//! DIR/files/NAME        a whole file, complete
//! DIR/tmp/*.tmp         a whole file while it arrives
//! ```
//!
//! `tmp/` sits on the same file system as `files/`, so moving a finished file
//! into place is one `rename`, which is atomic: a reader of `files/NAME` sees the
//! old file or the new one, never half of one.
//!
//! The directory belongs to one server at a time: opening the store removes what
//! it takes for leftovers of an interrupted run (files in `tmp/`, `.part` files).
//!
//! # Offsets are what is stored
//!
//! The offset `HEAD` reports is the length of `uploads/ID`, nothing else: bytes
//! are appended to that file (opened in append mode) and the offset in memory
//! moves only after the write returned; if a write fails half-way, the file is cut
//! back to the last offset. On start-up ([`UploadStore::open`]) the offsets are
//! read back from the files' lengths, so a restarted server knows every upload and
//! where each stands.
//!
//! A part is written one of two ways ([`UploadStore::begin_part`]):
//!
//! - **Without a checksum**, straight onto the upload, piece by piece: a part cut
//!   short (the client's connection dropped) keeps what arrived, as tus asks
//!   ("The Server SHOULD always attempt to store as much of the received data as
//!   possible", §Core, "PATCH"). The client's `HEAD` then says where to resume.
//! - **With `Upload-Checksum`**, into the side file `ID.part`, hashed as it
//!   arrives. At the end of the body ([`UploadStore::finish_part`]) the digest is
//!   compared: if it matches, the part is copied onto the upload and the offset
//!   moves; if not, the side file is removed, the offset does not move, and the
//!   answer is 460 (tus §Checksum: "the Server MUST NOT append the body to the
//!   upload and MUST NOT update the upload's offset"). A part cut short is
//!   discarded whole ([`UploadStore::abort_part`]): it cannot be checked.
//!
//! A part must start at the upload's offset, or nothing is written and the
//! answer is 409 (tus §Core, "PATCH": "MUST respond with the 409 Conflict status
//! without modifying the upload resource"). While a part is arriving, its upload
//! is locked: a second PATCH to it is 423 (Locked, RFC 4918 §11.3), the answer
//! tusd gives, which tus clients retry.
//!
//! # When bytes reach the disk, and what a crash can lose
//!
//! Appends go to the kernel's page cache (`write`), which is fast and survives the
//! process being killed, but not the machine losing power. Only when an upload
//! completes (its offset reaches its length) is it flushed: `fsync` of the file,
//! then of its directory. A whole file is flushed before its rename, and the
//! directory after it; an upload's `.info` file and its empty data file are
//! flushed at creation, with their directory, before the 201 goes out.
//!
//! So a **crash of the process** loses nothing that was written. A **crash of the
//! machine** (power loss, kernel panic) can lose:
//!
//! - the bytes of an unfinished upload that were appended since the last flush:
//!   after the reboot its file is shorter, the start-up scan reads the shorter
//!   length as the offset, and the client's `HEAD` tells it to resend from there.
//!   Nothing inconsistent is reported: the offset is always what is on disk. (A
//!   file system that writes data after metadata could in principle leave zeros at
//!   the end of the file after a crash; ext4's default `data=ordered` does not.)
//! - a whole file whose rename was not yet flushed: `NAME` is either the old file
//!   or the new one, complete. The temporary file of a whole upload that was still
//!   arriving is removed at start-up: a cut or a crash leaves nothing under
//!   `NAME`.
//! - an upload whose creation was not flushed (the 201 had not been sent yet).
//!
//! What is never possible: a finished upload or whole file that reads back
//! different from what the client sent, or a `HEAD` offset that is more than is
//! stored.
//!
//! # Errors
//!
//! Every refusal is a [`StoreError`] that knows its status code
//! ([`StoreError::status`]); a disk error is [`StoreError::Io`], answered 500.
//! Nothing here panics. All of this runs on the server's loop thread: appends and
//! renames are short, the `fsync`s at completion wait for the disk.
//!
//! # The digest
//!
//! Each upload keeps a running SHA-1 of its bytes while they are stored by this
//! process (an unchecked part's as they are written, a checked part's as it is
//! copied onto the upload once accepted), so its digest is known the moment it
//! completes. After a restart the running digest is gone; [`UploadStore::digest`]
//! then reads the finished file back once (64 KiB at a time) and keeps the
//! result.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};
use thiserror::Error;

use super::Stored;
use super::tus::{Checksum, Metadata, UploadId};

/// The size of the buffer used to copy a committed part and to hash a file.
const COPY_BUF: usize = 64 * 1024;

/// Why the store refused, or failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No upload with this id (tus §Core: SHOULD answer 404; after a DELETE too,
    /// §Termination).
    #[error("no such upload")]
    NotFound,
    /// A PATCH whose `Upload-Offset` is not where the upload ends (tus §Core,
    /// "PATCH": MUST answer 409 and change nothing).
    #[error(
        "Upload-Offset {sent} does not match the upload's offset {offset}: HEAD it and resume from there"
    )]
    OffsetMismatch {
        /// The upload's offset.
        offset: u64,
        /// The offset the client sent.
        sent: u64,
    },
    /// Another part of this upload is arriving now.
    #[error("another PATCH to this upload is in progress")]
    Locked,
    /// A part that would run past the upload's length, or a whole file past the
    /// maximum size.
    #[error("{end} bytes would exceed the limit of {limit} bytes")]
    TooLarge {
        /// Where the bytes would end.
        end: u64,
        /// The upload's length, or the maximum size.
        limit: u64,
    },
    /// A PATCH whose `Upload-Length` differs from the upload's (the length is set
    /// once, at creation).
    #[error("Upload-Length {sent} differs from the upload's length {length}")]
    LengthMismatch {
        /// The upload's length.
        length: u64,
        /// The length the client sent.
        sent: u64,
    },
    /// The part's bytes do not match its `Upload-Checksum` (tus §Checksum: 460,
    /// nothing appended).
    #[error("checksum mismatch: the part was discarded (tus 1.0.0, Checksum)")]
    ChecksumMismatch,
    /// The digest of an upload that is not finished.
    #[error("the upload is not complete: {offset} of {length} bytes")]
    Incomplete {
        /// Bytes stored.
        offset: u64,
        /// Bytes expected.
        length: u64,
    },
    /// The disk failed.
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

impl StoreError {
    /// The status code this is answered with.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound => 404,
            StoreError::OffsetMismatch { .. } | StoreError::Incomplete { .. } => 409,
            StoreError::Locked => 423,
            StoreError::TooLarge { .. } => 413,
            StoreError::LengthMismatch { .. } => 400,
            StoreError::ChecksumMismatch => 460,
            StoreError::Io(_) => 500,
        }
    }
}

/// One upload, as the store knows it.
#[derive(Debug)]
struct Upload {
    /// Bytes expected in all (`Upload-Length`).
    length: u64,
    /// Bytes stored: the data file's length.
    offset: u64,
    /// `Upload-Metadata` as the client sent it, echoed on HEAD.
    metadata: String,
    /// SHA-1 of bytes `0..offset`, while this process has seen them all.
    running: Option<Sha1>,
    /// The digest once complete.
    digest: Option<[u8; 20]>,
}

/// What [`UploadStore::info`] tells about an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    /// Bytes stored, which is the offset `HEAD` reports.
    pub offset: u64,
    /// Bytes expected in all.
    pub length: u64,
    /// `Upload-Metadata` as sent at creation (empty if none).
    pub metadata: String,
}

/// What the start-up scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Uploads found, finished or not.
    pub uploads: usize,
    /// Leftovers removed: unfinished whole files, uncommitted parts, creations
    /// that never completed.
    pub removed: usize,
    /// Files that could not be understood, left alone, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// A part of an upload, arriving: created by [`UploadStore::begin_part`], fed by
/// [`UploadStore::write_part`], ended by [`UploadStore::finish_part`] (the body
/// is complete) or [`UploadStore::abort_part`] (it was cut short). Until one of
/// those two, the upload is locked (423).
#[derive(Debug)]
#[must_use = "a part locks its upload until finish_part or abort_part"]
pub struct Part {
    /// The upload.
    id: UploadId,
    /// Where the part starts.
    start: u64,
    /// Bytes received so far.
    written: u64,
    /// The file the bytes go to: the upload itself, or the side file.
    file: File,
    /// With a checksum: the expected digest and the hash of the bytes so far.
    check: Option<([u8; 20], Sha1)>,
}

impl Part {
    /// The upload this part belongs to.
    pub fn id(&self) -> UploadId {
        self.id
    }

    /// Bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// How a part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEnd {
    /// The upload's offset now: the `Upload-Offset` of the 204.
    pub offset: u64,
    /// The upload is complete (and was flushed to disk).
    pub complete: bool,
}

/// A whole file arriving into a temporary file: [`UploadStore::begin_whole`],
/// [`WholeFile::write`], then [`UploadStore::finish_whole`] or
/// [`UploadStore::abort_whole`]. Dropped without either, it removes its
/// temporary file.
#[derive(Debug)]
pub struct WholeFile {
    /// The name it will have.
    name: String,
    /// The temporary file's path.
    tmp: PathBuf,
    /// The temporary file (`None` once finished or aborted).
    file: Option<File>,
    /// The SHA-1 of the bytes so far.
    hasher: Sha1,
    /// Bytes so far.
    size: u64,
    /// The most bytes accepted.
    max_size: u64,
}

impl WholeFile {
    /// Appends `bytes` to the temporary file. Past the maximum size: 413, nothing
    /// of `bytes` written.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let end = self.size.saturating_add(bytes.len() as u64);
        if end > self.max_size {
            return Err(StoreError::TooLarge {
                end,
                limit: self.max_size,
            });
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the file was already finished"))?;
        file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size = end;
        Ok(())
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The name it will be stored under.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for WholeFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Neither finished nor aborted: leave nothing behind.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// The uploads in one directory (see the module docs for its layout).
#[derive(Debug)]
pub struct UploadStore {
    /// `DIR/uploads`.
    uploads_dir: PathBuf,
    /// `DIR/files`.
    files_dir: PathBuf,
    /// `DIR/tmp`.
    tmp_dir: PathBuf,
    /// The largest upload or whole file.
    max_size: u64,
    /// Every upload, finished or not.
    uploads: HashMap<UploadId, Upload>,
    /// Uploads with a part arriving.
    locked: HashSet<UploadId>,
    /// Mixed into ids and temporary names when /dev/urandom cannot be read.
    counter: u64,
}

impl UploadStore {
    /// Opens (creating if needed) the store in `dir`, and scans it: every upload
    /// found is known again, its offset read from its file's length; leftovers of
    /// interrupted work (whole files still arriving, uncommitted parts) are
    /// removed. `max_size` is the largest upload or whole file accepted.
    pub fn open(
        dir: impl AsRef<Path>,
        max_size: u64,
    ) -> Result<(UploadStore, Recovery), StoreError> {
        let dir = dir.as_ref();
        let mut store = UploadStore {
            uploads_dir: dir.join("uploads"),
            files_dir: dir.join("files"),
            tmp_dir: dir.join("tmp"),
            max_size,
            uploads: HashMap::new(),
            locked: HashSet::new(),
            counter: 0,
        };
        for d in [&store.uploads_dir, &store.files_dir, &store.tmp_dir] {
            fs::create_dir_all(d)?;
        }
        let mut recovery = Recovery::default();
        for entry in fs::read_dir(&store.tmp_dir)? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(&path)?;
                recovery.removed += 1;
            }
        }
        let mut data_files = Vec::new();
        for entry in fs::read_dir(&store.uploads_dir)? {
            let path = entry?.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                recovery.skipped.push((path, "not a UTF-8 name".into()));
                continue;
            };
            if let Some(stem) = file_name.strip_suffix(".part") {
                if UploadId::parse(stem).is_some() {
                    fs::remove_file(&path)?;
                    recovery.removed += 1;
                    continue;
                }
            } else if let Some(stem) = file_name.strip_suffix(".info.tmp") {
                if UploadId::parse(stem).is_some() {
                    fs::remove_file(&path)?;
                    recovery.removed += 1;
                    continue;
                }
            } else if let Some(stem) = file_name.strip_suffix(".info") {
                if let Some(id) = UploadId::parse(stem) {
                    match store.load(id, &path) {
                        Ok(()) => recovery.uploads += 1,
                        Err(why) => recovery.skipped.push((path, why)),
                    }
                    continue;
                }
            } else if let Some(id) = UploadId::parse(file_name) {
                data_files.push((id, path));
                continue;
            }
            recovery
                .skipped
                .push((path, "not a file this store writes".into()));
        }
        // A data file without its info: a creation that did not complete (no 201
        // was sent), so no client knows this id.
        for (id, path) in data_files {
            if !store.uploads.contains_key(&id)
                && !store.uploads_dir.join(format!("{id}.info")).exists()
            {
                fs::remove_file(&path)?;
                recovery.removed += 1;
            }
        }
        Ok((store, recovery))
    }

    /// Reads one upload's `.info` and its data file's length.
    fn load(&mut self, id: UploadId, info_path: &Path) -> Result<(), String> {
        let text = fs::read_to_string(info_path).map_err(|e| e.to_string())?;
        let (length, metadata) = parse_info(&text).ok_or("unreadable .info file")?;
        let data = self.data_path(id);
        let offset = fs::metadata(&data)
            .map_err(|e| format!("its data file: {e}"))?
            .len();
        if offset > length {
            return Err(format!("{offset} bytes stored for an upload of {length}"));
        }
        self.uploads.insert(
            id,
            Upload {
                length,
                offset,
                metadata,
                running: (offset == 0).then(Sha1::new),
                digest: None,
            },
        );
        Ok(())
    }

    /// The largest upload or whole file accepted.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// How many uploads the store holds, finished or not.
    pub fn len(&self) -> usize {
        self.uploads.len()
    }

    /// The store holds no upload.
    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty()
    }

    /// `DIR/uploads/ID`.
    fn data_path(&self, id: UploadId) -> PathBuf {
        self.uploads_dir.join(id.to_string())
    }

    /// `DIR/uploads/ID.part`.
    fn part_path(&self, id: UploadId) -> PathBuf {
        self.uploads_dir.join(format!("{id}.part"))
    }

    /// `DIR/uploads/ID.info`.
    fn info_path(&self, id: UploadId) -> PathBuf {
        self.uploads_dir.join(format!("{id}.info"))
    }

    /// 16 bytes nobody can guess: from `/dev/urandom`, or, if it cannot be read,
    /// the SHA-1 of a counter, the time and the process id (unique, and hard
    /// enough to guess for a teaching server).
    fn random_bytes(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let from_os = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out));
        if from_os.is_err() {
            self.counter += 1;
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let mut h = Sha1::new();
            h.update(self.counter.to_le_bytes());
            h.update(nanos.to_le_bytes());
            h.update(std::process::id().to_le_bytes());
            let digest: [u8; 20] = h.finalize().into();
            for (o, d) in out.iter_mut().zip(digest) {
                *o = d;
            }
        }
        out
    }

    /// Creates a new file at `path(random id)`, trying a few ids if one is taken
    /// (with 16 random bytes, a second try already means something other than
    /// chance is at work, so the tries are few).
    fn create_new(&mut self, path: impl Fn(UploadId) -> PathBuf) -> io::Result<(UploadId, File)> {
        for _ in 0..8 {
            let id = UploadId::from_bytes(self.random_bytes());
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path(id))
            {
                Ok(file) => return Ok((id, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free name after 8 random tries"))
    }

    /// Creates an upload of `length` bytes (tus §Creation) and returns its id.
    /// The empty data file and the `.info` file are flushed to disk before this
    /// returns. Over the maximum size: 413.
    pub fn create(&mut self, length: u64, metadata: &Metadata) -> Result<UploadId, StoreError> {
        if length > self.max_size {
            return Err(StoreError::TooLarge {
                end: length,
                limit: self.max_size,
            });
        }
        // `create_new` reserves the id: a collision (or a leftover) is never reused.
        let dir = self.uploads_dir.clone();
        let (id, data) = self.create_new(|id| dir.join(id.to_string()))?;
        let written = (|| {
            data.sync_all()?;
            let tmp = self.uploads_dir.join(format!("{id}.info.tmp"));
            let mut info = File::create(&tmp)?;
            info.write_all(info_text(length, metadata.raw()).as_bytes())?;
            info.sync_all()?;
            fs::rename(&tmp, self.info_path(id))?;
            sync_dir(&self.uploads_dir)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(self.data_path(id));
            let _ = fs::remove_file(self.uploads_dir.join(format!("{id}.info.tmp")));
            let _ = fs::remove_file(self.info_path(id));
            return Err(e.into());
        }
        self.uploads.insert(
            id,
            Upload {
                length,
                offset: 0,
                metadata: metadata.raw().to_string(),
                running: Some(Sha1::new()),
                digest: None,
            },
        );
        Ok(id)
    }

    /// An upload's offset, length and metadata; 404 if there is none.
    pub fn info(&self, id: UploadId) -> Result<UploadInfo, StoreError> {
        let u = self.uploads.get(&id).ok_or(StoreError::NotFound)?;
        Ok(UploadInfo {
            offset: u.offset,
            length: u.length,
            metadata: u.metadata.clone(),
        })
    }

    /// An upload's offset: bytes stored. 404 if there is none.
    pub fn offset(&self, id: UploadId) -> Result<u64, StoreError> {
        self.uploads
            .get(&id)
            .map(|u| u.offset)
            .ok_or(StoreError::NotFound)
    }

    /// Whether a part of this upload is arriving now.
    pub fn is_locked(&self, id: UploadId) -> bool {
        self.locked.contains(&id)
    }

    /// Starts a part of upload `id` at `at_offset` (a PATCH, tus §Core). Checks,
    /// before any byte is read: the upload exists (404), no other part is arriving
    /// (423), `at_offset` is its offset (409), `upload_length`, if sent, is its
    /// length (400), and `body_length`, if declared, fits in what remains (413).
    /// With `checksum`, the bytes go to the side file until the part is checked.
    pub fn begin_part(
        &mut self,
        id: UploadId,
        at_offset: u64,
        body_length: Option<u64>,
        upload_length: Option<u64>,
        checksum: Option<Checksum>,
    ) -> Result<Part, StoreError> {
        let upload = self.uploads.get(&id).ok_or(StoreError::NotFound)?;
        if self.locked.contains(&id) {
            return Err(StoreError::Locked);
        }
        if at_offset != upload.offset {
            return Err(StoreError::OffsetMismatch {
                offset: upload.offset,
                sent: at_offset,
            });
        }
        if let Some(sent) = upload_length.filter(|&l| l != upload.length) {
            return Err(StoreError::LengthMismatch {
                length: upload.length,
                sent,
            });
        }
        if let Some(n) = body_length {
            let end = upload.offset.saturating_add(n);
            if end > upload.length {
                return Err(StoreError::TooLarge {
                    end,
                    limit: upload.length,
                });
            }
        }
        let (file, check) = match checksum {
            None => (
                OpenOptions::new().append(true).open(self.data_path(id))?,
                None,
            ),
            Some(Checksum::Sha1(expected)) => (
                File::create(self.part_path(id))?,
                Some((expected, Sha1::new())),
            ),
        };
        self.locked.insert(id);
        Ok(Part {
            id,
            start: at_offset,
            written: 0,
            file,
            check,
        })
    }

    /// Appends a piece of a part's body. A piece that would run past the upload's
    /// length is refused (413) and nothing of it is written; the caller then ends
    /// the part with [`UploadStore::abort_part`]. Without a checksum, the offset
    /// moves by the piece's length once it is written.
    pub fn write_part(&mut self, part: &mut Part, bytes: &[u8]) -> Result<(), StoreError> {
        let upload = self.uploads.get_mut(&part.id).ok_or(StoreError::NotFound)?;
        let end = part.start + part.written + bytes.len() as u64;
        if end > upload.length {
            return Err(StoreError::TooLarge {
                end,
                limit: upload.length,
            });
        }
        if let Err(e) = part.file.write_all(bytes) {
            if part.check.is_none() {
                // Cut the upload back to what is known to be whole.
                let _ = part.file.set_len(upload.offset);
            }
            return Err(e.into());
        }
        part.written += bytes.len() as u64;
        match part.check.as_mut() {
            Some((_, hasher)) => hasher.update(bytes),
            None => {
                upload.offset = end;
                if let Some(r) = upload.running.as_mut() {
                    r.update(bytes);
                }
            }
        }
        Ok(())
    }

    /// Ends a part whose body arrived whole. With a checksum, the digest is
    /// compared: a match commits the part (copied onto the upload), a mismatch
    /// discards it (460, offset unchanged). The upload is unlocked either way; if
    /// it is now complete it is flushed to disk.
    pub fn finish_part(&mut self, part: Part) -> Result<PartEnd, StoreError> {
        self.locked.remove(&part.id);
        let Part {
            id,
            written,
            file,
            check,
            ..
        } = part;
        if let Some((expected, hasher)) = check {
            drop(file);
            let part_path = self.part_path(id);
            let actual: [u8; 20] = hasher.finalize().into();
            if actual != expected {
                fs::remove_file(&part_path)?;
                return Err(StoreError::ChecksumMismatch);
            }
            let committed = self.commit(id, &part_path, written);
            let _ = fs::remove_file(&part_path);
            committed?;
        }
        self.end_of_part(id)
    }

    /// Appends the checked side file onto the upload, and continues the upload's
    /// running digest with the bytes as they are copied (so a checked part is
    /// hashed twice in all: once against its checksum, once here, and never while
    /// it is unchecked).
    fn commit(&mut self, id: UploadId, part_path: &Path, written: u64) -> Result<(), StoreError> {
        let upload = self.uploads.get_mut(&id).ok_or(StoreError::NotFound)?;
        let mut from = File::open(part_path)?;
        let mut to = OpenOptions::new()
            .append(true)
            .open(self.uploads_dir.join(id.to_string()))?;
        let mut buf = vec![0u8; COPY_BUF];
        let mut copied = 0u64;
        let result = (|| -> io::Result<()> {
            loop {
                let n = from.read(&mut buf)?;
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                    return Ok(());
                };
                to.write_all(chunk)?;
                if let Some(r) = upload.running.as_mut() {
                    r.update(chunk);
                }
                copied += n as u64;
            }
        })();
        if let Err(e) = result.and_then(|()| {
            if copied == written {
                Ok(())
            } else {
                Err(io::Error::other("the part file changed size"))
            }
        }) {
            let _ = to.set_len(upload.offset);
            // The running digest took bytes that are not stored: forget it; the
            // digest is computed from the file once the upload completes.
            upload.running = None;
            return Err(e.into());
        }
        upload.offset += copied;
        Ok(())
    }

    /// Ends a part whose body was cut short (the connection dropped, or a piece
    /// was refused). Without a checksum, what arrived stays (tus: store as much as
    /// possible); with one, the part is discarded. The upload is unlocked.
    pub fn abort_part(&mut self, part: Part) -> Result<PartEnd, StoreError> {
        self.locked.remove(&part.id);
        let id = part.id;
        if part.check.is_some() {
            drop(part);
            fs::remove_file(self.part_path(id))?;
        }
        self.end_of_part(id)
    }

    /// The offset after a part; a complete upload is flushed and its digest kept.
    fn end_of_part(&mut self, id: UploadId) -> Result<PartEnd, StoreError> {
        let path = self.data_path(id);
        let upload = self.uploads.get_mut(&id).ok_or(StoreError::NotFound)?;
        let complete = upload.offset == upload.length;
        if complete && upload.digest.is_none() {
            File::open(&path)?.sync_all()?;
            sync_dir(&self.uploads_dir)?;
            upload.digest = upload.running.take().map(|h| h.finalize().into());
        }
        Ok(PartEnd {
            offset: upload.offset,
            complete,
        })
    }

    /// Appends `bytes` to upload `id` at `at_offset` in one go: a part without a
    /// checksum, begun, written and finished (409 if `at_offset` is not the
    /// offset, and nothing is written).
    pub fn append(
        &mut self,
        id: UploadId,
        at_offset: u64,
        bytes: &[u8],
    ) -> Result<PartEnd, StoreError> {
        let mut part = self.begin_part(id, at_offset, Some(bytes.len() as u64), None, None)?;
        match self.write_part(&mut part, bytes) {
            Ok(()) => self.finish_part(part),
            Err(e) => {
                let _ = self.abort_part(part);
                Err(e)
            }
        }
    }

    /// The size and SHA-1 of a finished upload, named by its id. 409 while it is
    /// not complete. After a restart the file is read back once to compute it.
    pub fn digest(&mut self, id: UploadId) -> Result<Stored, StoreError> {
        let path = self.data_path(id);
        let upload = self.uploads.get_mut(&id).ok_or(StoreError::NotFound)?;
        if upload.offset != upload.length {
            return Err(StoreError::Incomplete {
                offset: upload.offset,
                length: upload.length,
            });
        }
        let sha1 = match upload.digest {
            Some(d) => d,
            None => {
                let d = hash_file(&path)?;
                upload.digest = Some(d);
                d
            }
        };
        Ok(Stored {
            name: id.to_string(),
            size: upload.length,
            sha1,
        })
    }

    /// Removes upload `id` and its files (tus §Termination). 423 while a part is
    /// arriving; 404 if there is none.
    pub fn delete(&mut self, id: UploadId) -> Result<(), StoreError> {
        if !self.uploads.contains_key(&id) {
            return Err(StoreError::NotFound);
        }
        if self.locked.contains(&id) {
            return Err(StoreError::Locked);
        }
        // The info goes first: without it the upload no longer exists, even if
        // removing the data file fails (the next start-up removes it).
        fs::remove_file(self.info_path(id))?;
        self.uploads.remove(&id);
        remove_if_there(&self.data_path(id))?;
        remove_if_there(&self.part_path(id))?;
        Ok(())
    }

    /// Starts a whole file to be stored as `name` (already checked by
    /// [`super::tus::file_name`]), in a temporary file in `DIR/tmp`.
    pub fn begin_whole(&mut self, name: &str) -> Result<WholeFile, StoreError> {
        let dir = self.tmp_dir.clone();
        let (tag, file) = self.create_new(|tag| dir.join(format!("{tag}.tmp")))?;
        let tmp = self.tmp_dir.join(format!("{tag}.tmp"));
        Ok(WholeFile {
            name: name.to_string(),
            tmp,
            file: Some(file),
            hasher: Sha1::new(),
            size: 0,
            max_size: self.max_size,
        })
    }

    /// Finishes a whole file: flushes it, renames it into place as `DIR/files/NAME`
    /// (replacing any file of that name), flushes the directory. Returns what was
    /// stored and whether a file was replaced (200) or the name is new (201).
    pub fn finish_whole(&mut self, mut whole: WholeFile) -> Result<(Stored, bool), StoreError> {
        let file = whole
            .file
            .take()
            .ok_or_else(|| io::Error::other("the file was already finished"))?;
        let target = self.files_dir.join(&whole.name);
        let done = (|| -> io::Result<bool> {
            file.sync_all()?;
            drop(file);
            let replaced = fs::symlink_metadata(&target).is_ok();
            fs::rename(&whole.tmp, &target)?;
            sync_dir(&self.files_dir)?;
            Ok(replaced)
        })();
        let replaced = match done {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(&whole.tmp);
                return Err(e.into());
            }
        };
        let stored = Stored {
            name: std::mem::take(&mut whole.name),
            size: whole.size,
            sha1: whole.hasher.clone().finalize().into(),
        };
        Ok((stored, replaced))
    }

    /// Drops a whole file that did not arrive complete: its temporary file is
    /// removed, and nothing appears under its name.
    pub fn abort_whole(&mut self, mut whole: WholeFile) -> Result<(), StoreError> {
        whole.file = None;
        remove_if_there(&whole.tmp)?;
        Ok(())
    }

    /// Where whole files are stored: `DIR/files`.
    pub fn files_dir(&self) -> &Path {
        &self.files_dir
    }

    /// Where uploads are stored: `DIR/uploads`.
    pub fn uploads_dir(&self) -> &Path {
        &self.uploads_dir
    }
}

/// Removes a file; one that is not there is fine.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Flushes a directory's entries (a new, renamed or removed name) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The SHA-1 of a file, read 64 KiB at a time.
fn hash_file(path: &Path) -> io::Result<[u8; 20]> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut h = Sha1::new();
    loop {
        let n = file.read(&mut buf)?;
        match buf.get(..n) {
            Some(chunk) if !chunk.is_empty() => h.update(chunk),
            _ => return Ok(h.finalize().into()),
        }
    }
}

/// The `.info` file: three lines.
///
/// ```text
/// tus-upload 1
/// length 12345
/// metadata filename d29ybGQucG5n
/// ```
fn info_text(length: u64, metadata: &str) -> String {
    format!("tus-upload 1\nlength {length}\nmetadata {metadata}\n")
}

/// Reads an `.info` file back: the length and the metadata, which is checked
/// again (a file edited by hand must not put a CR into a HEAD answer).
fn parse_info(text: &str) -> Option<(u64, String)> {
    let mut lines = text.lines();
    if lines.next()? != "tus-upload 1" {
        return None;
    }
    let length = super::tus::integer(lines.next()?.strip_prefix("length ")?.as_bytes())?;
    let metadata = lines.next()?.strip_prefix("metadata ")?;
    Metadata::parse(metadata.as_bytes()).ok()?;
    Some((length, metadata.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A directory of its own under the system's temporary directory, removed
    /// when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "wirepatterns-upload-{}-{test}-{n}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("temp dir");
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const MAX: u64 = 1 << 20;

    fn open(dir: &TempDir) -> UploadStore {
        UploadStore::open(&dir.0, MAX).expect("opens").0
    }

    fn meta(name: &str) -> Metadata {
        Metadata::from_pairs([("filename", name.as_bytes())]).expect("valid")
    }

    fn sha1(bytes: &[u8]) -> [u8; 20] {
        Sha1::digest(bytes).into()
    }

    fn stored_bytes(store: &UploadStore, id: UploadId) -> Vec<u8> {
        fs::read(store.data_path(id)).expect("data file")
    }

    /// Every name in a directory.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn create_gives_distinct_ids_with_offset_zero() {
        let dir = TempDir::new("create");
        let mut store = open(&dir);
        let a = store.create(10, &meta("a.png")).expect("created");
        let b = store.create(0, &Metadata::default()).expect("created");
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 32);
        assert_eq!(
            store.info(a).expect("known"),
            UploadInfo {
                offset: 0,
                length: 10,
                metadata: "filename YS5wbmc=".into()
            }
        );
        assert_eq!(store.offset(b).expect("known"), 0);
        assert_eq!(store.len(), 2);
        let mut want = vec![
            a.to_string(),
            format!("{a}.info"),
            b.to_string(),
            format!("{b}.info"),
        ];
        want.sort();
        assert_eq!(names(store.uploads_dir()), want);
        assert!(matches!(
            store.create(MAX + 1, &Metadata::default()),
            Err(StoreError::TooLarge { end, limit: MAX }) if end == MAX + 1
        ));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn appends_move_the_offset_to_what_is_stored() {
        let dir = TempDir::new("append");
        let mut store = open(&dir);
        let id = store.create(11, &Metadata::default()).expect("created");
        assert_eq!(
            store.append(id, 0, b"hello ").expect("stored"),
            PartEnd {
                offset: 6,
                complete: false
            }
        );
        assert_eq!(
            store.append(id, 6, b"world").expect("stored"),
            PartEnd {
                offset: 11,
                complete: true
            }
        );
        assert_eq!(stored_bytes(&store, id), b"hello world");
        assert_eq!(store.offset(id).expect("known"), 11);
        let stored = store.digest(id).expect("complete");
        assert_eq!(stored.sha1, sha1(b"hello world"));
        assert_eq!((stored.name, stored.size), (id.to_string(), 11));
    }

    #[test]
    fn tus_409_on_a_wrong_offset_writes_nothing() {
        let dir = TempDir::new("conflict");
        let mut store = open(&dir);
        let id = store.create(10, &Metadata::default()).expect("created");
        store.append(id, 0, b"abc").expect("stored");
        for wrong in [0, 2, 4, 10, u64::MAX] {
            let err = store.append(id, wrong, b"xyz").expect_err("conflict");
            assert!(
                matches!(err, StoreError::OffsetMismatch { offset: 3, sent } if sent == wrong),
                "{err:?}"
            );
            assert_eq!(err.status(), 409);
            assert_eq!(stored_bytes(&store, id), b"abc", "at {wrong}");
            assert_eq!(store.offset(id).expect("known"), 3);
            assert!(!store.is_locked(id));
        }
        let err = store
            .begin_part(id, 1, None, None, Some(Checksum::Sha1(sha1(b"x"))))
            .expect_err("conflict");
        assert_eq!(err.status(), 409);
        assert!(!store.part_path(id).exists());
    }

    #[test]
    fn parts_past_the_length_are_413_before_and_while_reading() {
        let dir = TempDir::new("too-large");
        let mut store = open(&dir);
        let id = store.create(5, &Metadata::default()).expect("created");
        // Declared: refused before a byte is read.
        let err = store
            .begin_part(id, 0, Some(6), None, None)
            .expect_err("too large");
        assert!(
            matches!(err, StoreError::TooLarge { end: 6, limit: 5 }),
            "{err:?}"
        );
        assert_eq!(err.status(), 413);
        assert!(!store.is_locked(id));
        // Chunked (length unknown): the piece that crosses the end is refused,
        // nothing of it written; what came before stays.
        let mut part = store.begin_part(id, 0, None, None, None).expect("begun");
        store.write_part(&mut part, b"abc").expect("fits");
        let err = store
            .write_part(&mut part, b"def")
            .expect_err("past the end");
        assert_eq!(err.status(), 413);
        assert_eq!(
            store.abort_part(part).expect("ended"),
            PartEnd {
                offset: 3,
                complete: false
            }
        );
        assert_eq!(stored_bytes(&store, id), b"abc");
        // An Upload-Length other than the upload's is refused.
        let err = store
            .begin_part(id, 3, None, Some(6), None)
            .expect_err("mismatch");
        assert!(matches!(
            err,
            StoreError::LengthMismatch { length: 5, sent: 6 }
        ));
        assert_eq!(err.status(), 400);
        store
            .begin_part(id, 3, None, Some(5), None)
            .map(|p| store.abort_part(p))
            .expect("same length")
            .expect("ended");
    }

    #[test]
    fn checksum_match_commits_the_part() {
        let dir = TempDir::new("checksum-ok");
        let mut store = open(&dir);
        let id = store.create(8, &Metadata::default()).expect("created");
        store.append(id, 0, b"1234").expect("stored");
        let mut part = store
            .begin_part(id, 4, Some(4), None, Some(Checksum::Sha1(sha1(b"5678"))))
            .expect("begun");
        store.write_part(&mut part, b"56").expect("written");
        // While it arrives the upload does not move, and the side file holds it.
        assert_eq!(store.offset(id).expect("known"), 4);
        assert_eq!(fs::read(store.part_path(id)).expect("side file"), b"56");
        store.write_part(&mut part, b"78").expect("written");
        assert_eq!(
            store.finish_part(part).expect("committed"),
            PartEnd {
                offset: 8,
                complete: true
            }
        );
        assert_eq!(stored_bytes(&store, id), b"12345678");
        assert!(!store.part_path(id).exists());
        assert_eq!(store.digest(id).expect("complete").sha1, sha1(b"12345678"));
    }

    #[test]
    fn checksum_460_on_mismatch_discards_the_part() {
        let dir = TempDir::new("checksum-bad");
        let mut store = open(&dir);
        let id = store.create(8, &Metadata::default()).expect("created");
        store.append(id, 0, b"1234").expect("stored");
        let mut part = store
            .begin_part(id, 4, Some(4), None, Some(Checksum::Sha1(sha1(b"5678"))))
            .expect("begun");
        store.write_part(&mut part, b"5679").expect("written");
        let err = store.finish_part(part).expect_err("mismatch");
        assert!(matches!(err, StoreError::ChecksumMismatch));
        assert_eq!(err.status(), 460);
        assert_eq!(stored_bytes(&store, id), b"1234");
        assert_eq!(store.offset(id).expect("known"), 4);
        assert!(!store.part_path(id).exists());
        assert!(!store.is_locked(id));
        // The right bytes then go in, and the digest is of what was committed.
        let mut part = store
            .begin_part(id, 4, Some(4), None, Some(Checksum::Sha1(sha1(b"5678"))))
            .expect("begun");
        store.write_part(&mut part, b"5678").expect("written");
        store.finish_part(part).expect("committed");
        assert_eq!(store.digest(id).expect("complete").sha1, sha1(b"12345678"));
    }

    #[test]
    fn a_cut_part_keeps_what_arrived_unless_it_was_checked() {
        let dir = TempDir::new("cut");
        let mut store = open(&dir);
        let id = store.create(10, &Metadata::default()).expect("created");
        // Without a checksum: the bytes that arrived stay (tus: store as much as
        // possible), and the client resumes from the offset HEAD gives.
        let mut part = store
            .begin_part(id, 0, Some(10), None, None)
            .expect("begun");
        store.write_part(&mut part, b"0123").expect("written");
        assert_eq!(store.offset(id).expect("known"), 4);
        assert_eq!(
            store.abort_part(part).expect("ended"),
            PartEnd {
                offset: 4,
                complete: false
            }
        );
        assert_eq!(stored_bytes(&store, id), b"0123");
        // With a checksum: the cut part cannot be checked, so none of it counts.
        let mut part = store
            .begin_part(id, 4, Some(6), None, Some(Checksum::Sha1(sha1(b"456789"))))
            .expect("begun");
        store.write_part(&mut part, b"456").expect("written");
        assert_eq!(
            store.abort_part(part).expect("ended"),
            PartEnd {
                offset: 4,
                complete: false
            }
        );
        assert_eq!(stored_bytes(&store, id), b"0123");
        assert!(!store.part_path(id).exists());
        // Resume from the offset.
        let end = store.append(id, 4, b"456789").expect("stored");
        assert_eq!(
            end,
            PartEnd {
                offset: 10,
                complete: true
            }
        );
        assert_eq!(
            store.digest(id).expect("complete").sha1,
            sha1(b"0123456789")
        );
    }

    #[test]
    fn a_part_locks_its_upload_423() {
        let dir = TempDir::new("lock");
        let mut store = open(&dir);
        let id = store.create(10, &Metadata::default()).expect("created");
        let part = store.begin_part(id, 0, None, None, None).expect("begun");
        assert!(store.is_locked(id));
        let err = store
            .begin_part(id, 0, None, None, None)
            .expect_err("locked");
        assert!(matches!(err, StoreError::Locked));
        assert_eq!(err.status(), 423);
        assert_eq!(store.delete(id).expect_err("locked").status(), 423);
        assert_eq!(part.id(), id);
        assert_eq!(part.written(), 0);
        store.finish_part(part).expect("ended");
        assert!(!store.is_locked(id));
        store.append(id, 0, b"x").expect("unlocked");
    }

    #[test]
    fn unknown_uploads_are_404() {
        let dir = TempDir::new("unknown");
        let mut store = open(&dir);
        let id = UploadId::from_bytes([7; 16]);
        for err in [
            store.info(id).expect_err("unknown"),
            store.append(id, 0, b"x").expect_err("unknown"),
            store.digest(id).expect_err("unknown"),
            store.delete(id).expect_err("unknown"),
        ] {
            assert!(matches!(err, StoreError::NotFound), "{err:?}");
            assert_eq!(err.status(), 404);
        }
    }

    #[test]
    fn disk_errors_are_500_and_panic_nothing() {
        let dir = TempDir::new("io");
        let mut store = open(&dir);
        let id = store.create(4, &Metadata::default()).expect("created");
        fs::remove_file(store.data_path(id)).expect("removed");
        let err = store.append(id, 0, b"ab").expect_err("no data file");
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert_eq!(err.status(), 500);
        assert!(!store.is_locked(id));
        // The whole-file side: a temporary directory that is gone.
        fs::remove_dir_all(dir.0.join("tmp")).expect("removed");
        let err = store.begin_whole("a").expect_err("no tmp dir");
        assert_eq!(err.status(), 500);
    }

    #[test]
    fn digest_of_an_unfinished_upload_is_409() {
        let dir = TempDir::new("incomplete");
        let mut store = open(&dir);
        let id = store.create(4, &Metadata::default()).expect("created");
        store.append(id, 0, b"ab").expect("stored");
        let err = store.digest(id).expect_err("incomplete");
        assert!(matches!(
            err,
            StoreError::Incomplete {
                offset: 2,
                length: 4
            }
        ));
        assert_eq!(err.status(), 409);
        // An empty upload is complete at once.
        let empty = store.create(0, &Metadata::default()).expect("created");
        assert_eq!(store.digest(empty).expect("complete").sha1, sha1(b""));
    }

    #[test]
    fn termination_removes_the_upload_and_its_files() {
        let dir = TempDir::new("delete");
        let mut store = open(&dir);
        let id = store.create(4, &Metadata::default()).expect("created");
        store.append(id, 0, b"ab").expect("stored");
        let keep = store.create(4, &Metadata::default()).expect("created");
        store.delete(id).expect("deleted");
        assert!(matches!(store.info(id), Err(StoreError::NotFound)));
        assert!(matches!(store.delete(id), Err(StoreError::NotFound)));
        let mut want = vec![keep.to_string(), format!("{keep}.info")];
        want.sort();
        assert_eq!(names(store.uploads_dir()), want);
    }

    #[test]
    fn a_restarted_store_knows_its_uploads_and_their_offsets() {
        let dir = TempDir::new("restart");
        let (a, b, c);
        {
            let mut store = open(&dir);
            a = store.create(6, &meta("a.png")).expect("created");
            b = store.create(3, &Metadata::default()).expect("created");
            c = store.create(9, &Metadata::default()).expect("created");
            store.append(a, 0, b"abc").expect("stored");
            store.append(b, 0, b"xyz").expect("stored");
            // A checked part in flight when the server dies: its side file stays.
            let mut part = store
                .begin_part(
                    c,
                    0,
                    Some(9),
                    None,
                    Some(Checksum::Sha1(sha1(b"123456789"))),
                )
                .expect("begun");
            store.write_part(&mut part, b"1234").expect("written");
            std::mem::forget(part);
        }
        // Leftovers of a crash: a whole file arriving, a creation half done.
        let orphan = UploadId::from_bytes([9; 16]);
        fs::write(dir.0.join("tmp").join("0123.tmp"), b"half a file").expect("written");
        fs::write(dir.0.join("uploads").join(orphan.to_string()), b"").expect("written");
        fs::write(dir.0.join("uploads").join("README"), b"not ours").expect("written");
        let (mut store, recovery) = UploadStore::open(&dir.0, MAX).expect("reopens");
        assert_eq!(recovery.uploads, 3);
        assert_eq!(recovery.removed, 3, "{recovery:?}");
        assert_eq!(recovery.skipped.len(), 1, "{recovery:?}");
        assert_eq!(
            store.info(a).expect("known"),
            UploadInfo {
                offset: 3,
                length: 6,
                metadata: "filename YS5wbmc=".into()
            }
        );
        assert_eq!(store.offset(c).expect("known"), 0);
        assert!(!store.part_path(c).exists());
        assert!(!store.data_path(orphan).exists());
        assert!(names(&dir.0.join("tmp")).is_empty());
        // A finished upload's digest is read back from disk.
        assert_eq!(store.digest(b).expect("complete").sha1, sha1(b"xyz"));
        // An unfinished one resumes where the file ends.
        store.append(a, 3, b"def").expect("resumed");
        assert_eq!(store.digest(a).expect("complete").sha1, sha1(b"abcdef"));
    }

    #[test]
    fn a_damaged_info_file_is_skipped_not_trusted() {
        let dir = TempDir::new("damaged");
        let id;
        {
            let mut store = open(&dir);
            id = store.create(2, &Metadata::default()).expect("created");
        }
        let info = dir.0.join("uploads").join(format!("{id}.info"));
        for bad in [
            "",
            "tus-upload 1\nlength x\nmetadata \n",
            "tus-upload 2\nlength 2\nmetadata \n",
            "tus-upload 1\nlength 2\nmetadata a\rb\n",
        ] {
            fs::write(&info, bad).expect("written");
            let (store, recovery) = UploadStore::open(&dir.0, MAX).expect("opens");
            assert_eq!(recovery.uploads, 0, "{bad:?}");
            assert_eq!(recovery.skipped.len(), 1, "{bad:?}");
            assert!(matches!(store.info(id), Err(StoreError::NotFound)));
        }
        // More bytes stored than the upload's length: not trusted either.
        fs::write(&info, "tus-upload 1\nlength 2\nmetadata \n").expect("written");
        fs::write(dir.0.join("uploads").join(id.to_string()), b"abc").expect("written");
        let (_, recovery) = UploadStore::open(&dir.0, MAX).expect("opens");
        assert_eq!((recovery.uploads, recovery.skipped.len()), (0, 1));
    }

    #[test]
    fn whole_file_appears_under_its_name_only_when_finished() {
        let dir = TempDir::new("whole");
        let mut store = open(&dir);
        let mut whole = store.begin_whole("cat photo.jpg").expect("begun");
        whole.write(b"meow ").expect("written");
        assert!(names(store.files_dir()).is_empty());
        whole.write(b"meow").expect("written");
        assert_eq!((whole.size(), whole.name()), (9, "cat photo.jpg"));
        let (stored, replaced) = store.finish_whole(whole).expect("finished");
        assert!(!replaced);
        assert_eq!(stored.size, 9);
        assert_eq!(stored.sha1, sha1(b"meow meow"));
        assert_eq!(stored.name, "cat photo.jpg");
        assert_eq!(
            fs::read(store.files_dir().join("cat photo.jpg")).expect("stored"),
            b"meow meow"
        );
        assert!(names(&dir.0.join("tmp")).is_empty());
        // The same name again replaces it.
        let mut whole = store.begin_whole("cat photo.jpg").expect("begun");
        whole.write(b"purr").expect("written");
        let (stored, replaced) = store.finish_whole(whole).expect("finished");
        assert!(replaced);
        assert_eq!(stored.sha1, sha1(b"purr"));
        assert_eq!(
            fs::read(store.files_dir().join("cat photo.jpg")).expect("stored"),
            b"purr"
        );
    }

    #[test]
    fn whole_file_cut_short_leaves_nothing() {
        let dir = TempDir::new("whole-abort");
        let mut store = open(&dir);
        let mut whole = store.begin_whole("a.bin").expect("begun");
        whole.write(b"half").expect("written");
        assert_eq!(names(&dir.0.join("tmp")).len(), 1);
        store.abort_whole(whole).expect("aborted");
        assert!(names(&dir.0.join("tmp")).is_empty());
        assert!(names(store.files_dir()).is_empty());
        // Dropped without finishing: the same.
        let mut whole = store.begin_whole("a.bin").expect("begun");
        whole.write(b"half").expect("written");
        drop(whole);
        assert!(names(&dir.0.join("tmp")).is_empty());
        assert!(names(store.files_dir()).is_empty());
        // A cut never damages a file already stored under the name.
        let mut whole = store.begin_whole("a.bin").expect("begun");
        whole.write(b"complete").expect("written");
        store.finish_whole(whole).expect("finished");
        let mut whole = store.begin_whole("a.bin").expect("begun");
        whole.write(b"cut").expect("written");
        store.abort_whole(whole).expect("aborted");
        assert_eq!(
            fs::read(store.files_dir().join("a.bin")).expect("stored"),
            b"complete"
        );
    }

    #[test]
    fn whole_file_over_the_maximum_is_413() {
        let dir = TempDir::new("whole-max");
        let (mut store, _) = UploadStore::open(&dir.0, 5).expect("opens");
        let mut whole = store.begin_whole("a").expect("begun");
        whole.write(b"abc").expect("fits");
        let err = whole.write(b"def").expect_err("too large");
        assert!(matches!(err, StoreError::TooLarge { end: 6, limit: 5 }));
        assert_eq!(err.status(), 413);
        assert_eq!(whole.size(), 3);
        store.abort_whole(whole).expect("aborted");
        assert!(names(&dir.0.join("tmp")).is_empty());
    }

    #[test]
    fn digests_of_many_parts_match_the_file() {
        // Parts of many sizes, checked and not, in one upload: the running digest
        // equals the digest of the bytes on disk, and of a fresh store's read.
        let dir = TempDir::new("digests");
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut store = open(&dir);
        let id = store
            .create(data.len() as u64, &Metadata::default())
            .expect("created");
        let mut at = 0usize;
        for (i, size) in [1usize, 100, 999, 1, 2048, 1851].into_iter().enumerate() {
            let part = data.get(at..at + size).expect("in range");
            let checksum = (i % 2 == 0).then(|| Checksum::Sha1(sha1(part)));
            let mut p = store
                .begin_part(id, at as u64, Some(size as u64), None, checksum)
                .expect("begun");
            for piece in part.chunks(300) {
                store.write_part(&mut p, piece).expect("written");
            }
            at += size;
            assert_eq!(store.finish_part(p).expect("ended").offset, at as u64);
        }
        assert_eq!(at, data.len());
        assert_eq!(stored_bytes(&store, id), data);
        let digest = store.digest(id).expect("complete").sha1;
        assert_eq!(digest, sha1(&data));
        drop(store);
        let mut again = open(&dir);
        assert_eq!(again.digest(id).expect("complete").sha1, digest);
    }
}
