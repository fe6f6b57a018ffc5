//! An append-only file of checksummed records: the durable layer under a store.
//!
//! A store that must survive a restart (the jobs store's `--store FILE`) writes
//! each change as one record at the end of a file and, on start-up, reads every
//! record back from the beginning. Nothing already written is ever changed in
//! place: a record is written once, and the only edit this module ever makes to
//! existing bytes is cutting off a torn tail (below).
//!
//! # Format
//!
//! The file is a sequence of records and nothing else (no file header). Each
//! record is a fixed 14-byte header followed by its payload:
//!
//! ```text
//!  offset  0      2                6                10               14
//!          +------+----------------+----------------+----------------+=============+
//!          | 'W'  | payload length | CRC-32 of the  | CRC-32 of      | payload     |
//!          | 'R'  | u32 LE         | payload, u32 LE| bytes 0..10,   | (length     |
//!          |      |                |                | u32 LE         |  bytes)     |
//!          +------+----------------+----------------+----------------+=============+
//!           magic   how far the      catches a        catches a bad
//!                   next record is   damaged payload  length or magic
//! ```
//!
//! The next record starts right after the payload. CRC-32 is the IEEE one (the
//! polynomial of zip, PNG and Ethernet; [`crc32`]).
//!
//! Why a checksum over the header too: the length says where the next record
//! starts, so a bit flipped in it makes everything after it unreadable, and,
//! worse, a length grown past the end of the file would look exactly like a
//! record torn by a crash, and cutting it off would silently drop every whole
//! record after it. With its own checksum a damaged header is always reported as
//! corruption, never mistaken for a torn tail.
//!
//! # What [`RecordFile::open`] does with what it finds
//!
//! It reads every record from the start and returns them in a [`Recovery`]. At
//! each record's offset:
//!
//! - **Whole and valid**: returned as a [`Record`].
//! - **Torn** (the file ends inside the record: fewer than 14 header bytes whose
//!   magic bytes, as far as present, are right, or a valid header whose payload
//!   the file ends before): this is what a crash in the middle of an append
//!   leaves. The file is truncated to the end of the last whole record and the
//!   cut is reported in [`Recovery::torn`] ([`TornTail`]: where, how many bytes),
//!   so the caller can print a warning. Appends then resume there.
//! - **Corrupt** (wrong magic, a header checksum that fails, a length over the
//!   maximum record size, or a whole payload whose checksum fails), anywhere in
//!   the file, middle or last: [`RecordError::Corrupt`] naming the record's byte
//!   offset and what is wrong ([`Corruption`]), and **nothing is changed**. A
//!   crash cannot produce this; a disk, a copy, or a person editing the file can.
//!   The operator decides what to do (restore a backup, or cut the file at that
//!   offset by hand, knowing what is lost), not this code.
//!
//! A length over the maximum ([`Options::max_record_len`], 1 MiB by default) is
//! corruption even when the header checksum is right (a file written with a
//! larger maximum): it keeps a single header from making `open` allocate
//! gigabytes.
//!
//! # When bytes reach the disk, and what a crash can lose
//!
//! [`RecordFile::append`] hands header and payload to the kernel in one
//! `write_all` on a file opened in append mode: the bytes are in the page cache,
//! visible to any reader, but not yet on disk. [`RecordFile::sync`] calls
//! `File::sync_data`, which returns once they are. So:
//!
//! - A **process crash** (panic, kill -9) loses nothing that `append` returned
//!   for: the kernel still has the bytes.
//! - A **machine crash or power loss** loses everything appended since the last
//!   `sync`. If it happened mid-write, the last record may be torn; the next
//!   `open` cuts it off and reports it.
//!
//! This type never syncs by itself: the caller decides, because it knows the
//! cost it can pay. An event loop syncs once per loop turn when something was
//! appended ([`RecordFile::unsynced_bytes`] says so), or on a timer; syncing
//! after every append is the safest and the slowest (one disk flush per record,
//! milliseconds on a spinning disk). `sync` blocks the calling thread until the
//! disk answers; a single-threaded loop that must not wait hands a
//! [`SyncHandle`] ([`RecordFile::sync_handle`]) to a thread of its own and
//! records what it synced with [`RecordFile::mark_synced`], as the job journal
//! does.
//!
//! # Failure model, in full
//!
//! - One writer per file: `open` takes an exclusive advisory lock
//!   ([`std::fs::File::try_lock`]) and fails with [`RecordError::Locked`] if
//!   another `RecordFile` (in this or another process) holds it. Two writers
//!   would interleave their records.
//! - An `append` whose write fails part-way (a full disk) would leave a partial
//!   record in the *middle* once later appends follow it, and that reads as
//!   corruption. So a failed append truncates the file back to where the record
//!   began. If even that fails, the `RecordFile` refuses further appends
//!   ([`RecordError::Poisoned`]); reopening it cuts the partial record as a torn
//!   tail.
//! - A newly created file is made durable by syncing its directory too (on Unix),
//!   so that it does not vanish in a power loss after records in it were synced.
//! - Not handled: a file system that, after a power loss, leaves the end of the
//!   file filled with zero bytes (some do, when the size reached the disk before
//!   the data). Zeros have the wrong magic, so `open` reports corruption at that
//!   offset; the operator can cut the file there.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The two bytes every record starts with ("WR", for wirepatterns record).
pub const MAGIC: [u8; 2] = *b"WR";

/// Bytes in a record header: magic (2), payload length (4), payload CRC (4),
/// header CRC (4).
pub const HEADER_LEN: usize = 14;

/// The default largest payload, in bytes, that [`RecordFile::append`] writes and
/// [`RecordFile::open`] accepts: 1 MiB.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 1 << 20;

/// The 256-entry lookup table of CRC-32 (IEEE, reflected polynomial
/// `0xEDB88320`): entry `i` is the CRC remainder of the byte `i`, so one table
/// look-up replaces eight shift-and-xor steps per byte.
const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Built at compile time by [`crc_table`].
static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, as in zip and PNG) of `bytes`.
///
/// `crc32(b"123456789") == 0xCBF4_3926`, the standard check value.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Settings for [`RecordFile::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The largest payload in bytes. `append` refuses a bigger one
    /// ([`RecordError::TooLarge`]); `open` treats a header announcing a bigger
    /// one as corrupt, so a damaged length cannot make it allocate gigabytes.
    pub max_record_len: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_record_len: DEFAULT_MAX_RECORD_LEN,
        }
    }
}

/// One whole, valid record read back by [`RecordFile::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of the record's header in the file: the same number
    /// [`RecordFile::append`] returned when it was written, so a caller can say
    /// which record it is talking about.
    pub offset: u64,
    /// The bytes that were appended.
    pub payload: Vec<u8>,
}

/// A torn last record that [`RecordFile::open`] cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the torn record began: the file's length after the cut, and the
    /// offset of the next append.
    pub offset: u64,
    /// How many bytes were cut (the partial header and payload).
    pub bytes_cut: u64,
}

impl std::fmt::Display for TornTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cut a torn last record at byte offset {} ({}; the write was \
             interrupted, most likely by a crash; records before it are intact)",
            self.offset,
            crate::trace::Count(self.bytes_cut, "byte", "bytes")
        )
    }
}

/// What [`RecordFile::open`] found in the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Every whole record, in file order.
    pub records: Vec<Record>,
    /// Set when the file ended inside a record and that tail was cut off: the
    /// caller should warn, since updates in it were lost.
    pub torn: Option<TornTail>,
}

/// What is wrong with a corrupt record (see [`RecordError::Corrupt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// The record does not start with [`MAGIC`]: the offset is not where a
    /// record begins, or the bytes there were overwritten.
    Magic {
        /// The bytes found where the magic should be (one byte when the file
        /// ends right after it).
        found: Vec<u8>,
    },
    /// The header's own checksum fails: its length or payload checksum field
    /// was damaged, so where the next record starts is unknown.
    HeaderChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the header bytes as read.
        computed: u32,
    },
    /// The header announces a payload longer than the maximum record size.
    Length {
        /// The length in the header.
        len: u32,
        /// The maximum this file was opened with ([`Options::max_record_len`]).
        max: u32,
    },
    /// The payload is all there but its checksum fails: its bytes were damaged.
    PayloadChecksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the payload as read.
        computed: u32,
    },
}

/// Bytes as `0x57 0x52`: hexadecimal, marked as such.
struct Hex<'a>(&'a [u8]);

impl std::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:#04x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::Magic { found } => write!(
                f,
                "bad magic: expected {} (\"WR\"), found {} ({:?})",
                Hex(&MAGIC),
                Hex(found),
                String::from_utf8_lossy(found)
            ),
            Corruption::HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#010x}, computed \
                 {computed:#010x}): the length field cannot be trusted"
            ),
            Corruption::Length { len, max } => write!(
                f,
                "payload length {len} exceeds the maximum record size {max} \
                 (written with a larger maximum? open it with that maximum)"
            ),
            Corruption::PayloadChecksum { stored, computed } => write!(
                f,
                "payload checksum mismatch (stored {stored:#010x}, computed \
                 {computed:#010x}): the payload bytes were damaged"
            ),
        }
    }
}

/// Everything that can go wrong opening, appending to, or syncing a record file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The operating system refused an operation on the file (permissions, a
    /// missing directory, a full disk...): its message says which.
    #[error("could not {op} record file {}: {source}", path.display())]
    Io {
        /// What was being done: "open", "read", "append to", "truncate", "sync".
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Another writer (this process or another) has the file open.
    #[error(
        "record file {} is locked by another writer (is another server running \
         with the same store file?)",
        path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// A whole record is damaged; the file was left unchanged.
    #[error(
        "record file {} is corrupt at byte offset {offset}: {kind}; the file was \
         not changed: restore it from a backup, or truncate it to {offset} bytes \
         to drop this record and everything after it",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged record's header.
        offset: u64,
        /// What is wrong with it.
        kind: Corruption,
    },
    /// `append` was given a payload over the maximum record size.
    #[error(
        "payload of {len} bytes exceeds the maximum record size of {max} bytes \
         (split it, or raise Options::max_record_len)"
    )]
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The maximum ([`Options::max_record_len`]).
        max: u32,
    },
    /// An earlier append failed part-way and the partial record could not be
    /// cut off; appending more would bury it in the middle of the file.
    #[error(
        "record file {} refuses appends: an earlier append failed and its partial \
         record at byte offset {offset} could not be removed; reopen the file \
         (the partial record is cut as a torn tail)",
        path.display()
    )]
    Poisoned {
        /// The file.
        path: PathBuf,
        /// Where the partial record begins.
        offset: u64,
    },
}

/// An open append-only record file: the single writer of one file.
///
/// See the [module documentation](self) for the format and for when appended
/// records are durable.
#[derive(Debug)]
pub struct RecordFile {
    /// Opened for reading and appending, and exclusively locked: every write
    /// lands at the end, whatever the read position.
    file: File,
    /// For error messages.
    path: PathBuf,
    /// The file's length as this writer knows it: the offset the next record
    /// gets, returned by `append`, and where a failed append truncates back to.
    end: u64,
    /// The length at the last successful `sync` (or at open): the bytes past it
    /// are in the page cache only, and a machine crash can lose them.
    synced_end: u64,
    /// From [`Options`]: the largest payload `append` writes.
    max_record_len: u32,
    /// Set when a failed append could not be undone; `append` then refuses
    /// ([`RecordError::Poisoned`]).
    poisoned: bool,
}

/// A handle on a [`RecordFile`] that can only sync it ([`RecordFile::sync_handle`]).
#[derive(Debug)]
pub struct SyncHandle {
    /// A duplicate of the record file's descriptor: same file, same lock.
    file: File,
    /// For error messages.
    path: PathBuf,
}

impl SyncHandle {
    /// Waits until every byte written to the file before this call is on disk
    /// (`File::sync_data`).
    pub fn sync(&self) -> Result<(), RecordError> {
        self.file.sync_data().map_err(|source| RecordError::Io {
            op: "sync",
            path: self.path.clone(),
            source,
        })
    }
}

impl RecordFile {
    /// Opens (or creates) the record file at `path` with the default
    /// [`Options`], reads every record, and cuts a torn tail.
    ///
    /// See the [module documentation](self) for what counts as torn and what as
    /// corrupt.
    pub fn open(path: impl AsRef<Path>) -> Result<(RecordFile, Recovery), RecordError> {
        RecordFile::open_with(path, Options::default())
    }

    /// [`RecordFile::open`] with explicit [`Options`].
    pub fn open_with(
        path: impl AsRef<Path>,
        options: Options,
    ) -> Result<(RecordFile, Recovery), RecordError> {
        let path = path.as_ref().to_path_buf();
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| RecordError::Io { op, path, source }
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(RecordError::Locked { path }),
            Err(TryLockError::Error(source)) => return Err(io("lock", &path)(source)),
        }
        if !existed {
            sync_parent_dir(&path).map_err(io("sync the directory of", &path))?;
        }
        let file_len = file.metadata().map_err(io("read", &path))?.len();

        let (recovery, whole_end) =
            read_records(&file, file_len, options.max_record_len).map_err(|e| match e {
                ReadError::Io(source) => io("read", &path)(source),
                ReadError::Corrupt { offset, kind } => RecordError::Corrupt {
                    path: path.clone(),
                    offset,
                    kind,
                },
            })?;
        if recovery.torn.is_some() {
            file.set_len(whole_end).map_err(io("truncate", &path))?;
            // Make the cut durable before new records follow it: otherwise a
            // power loss could bring the torn bytes back in front of them.
            file.sync_all().map_err(io("sync", &path))?;
        }
        let record_file = RecordFile {
            file,
            path,
            end: whole_end,
            synced_end: whole_end,
            max_record_len: options.max_record_len,
            poisoned: false,
        };
        Ok((record_file, recovery))
    }

    /// Appends one record holding `payload` and returns its byte offset.
    ///
    /// Header and payload go to the kernel in one `write_all`: when this
    /// returns, the record survives a crash of the process but not of the
    /// machine, until [`RecordFile::sync`].
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, RecordError> {
        if self.poisoned {
            return Err(RecordError::Poisoned {
                path: self.path.clone(),
                offset: self.end,
            });
        }
        let too_large = RecordError::TooLarge {
            len: payload.len(),
            max: self.max_record_len,
        };
        let len = match u32::try_from(payload.len()) {
            Ok(len) if len <= self.max_record_len => len,
            _ => return Err(too_large),
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&crc32(payload).to_le_bytes());
        let header_crc = crc32(&bytes);
        bytes.extend_from_slice(&header_crc.to_le_bytes());
        bytes.extend_from_slice(payload);

        let offset = self.end;
        if let Err(source) = self.file.write_all(&bytes) {
            // Part of the record may be in the file; remove it so that the next
            // append does not start behind a partial record.
            if self.file.set_len(offset).is_err() {
                self.poisoned = true;
            }
            return Err(RecordError::Io {
                op: "append to",
                path: self.path.clone(),
                source,
            });
        }
        self.end += bytes.len() as u64;
        Ok(offset)
    }

    /// Waits until every appended record is on disk (`File::sync_data`).
    ///
    /// Does nothing when nothing was appended since the last sync, so a loop
    /// may call it every turn.
    pub fn sync(&mut self) -> Result<(), RecordError> {
        if self.end == self.synced_end {
            return Ok(());
        }
        self.file.sync_data().map_err(|source| RecordError::Io {
            op: "sync",
            path: self.path.clone(),
            source,
        })?;
        self.synced_end = self.end;
        Ok(())
    }

    /// A second handle on the file that only syncs it, so that the syncing can
    /// happen on a thread of its own and the thread that appends never waits for
    /// the disk. Record what such a sync covered with [`RecordFile::mark_synced`].
    /// The handle shares the file's lock: drop it before reopening the file.
    pub fn sync_handle(&self) -> Result<SyncHandle, RecordError> {
        let file = self.file.try_clone().map_err(|source| RecordError::Io {
            op: "open a second handle on",
            path: self.path.clone(),
            source,
        })?;
        Ok(SyncHandle {
            file,
            path: self.path.clone(),
        })
    }

    /// Records that every byte before offset `end` is on disk: a
    /// [`SyncHandle::sync`] that started once [`RecordFile::end_offset`] was
    /// `end` has returned `Ok`.
    pub fn mark_synced(&mut self, end: u64) {
        self.synced_end = self.synced_end.max(end.min(self.end));
    }

    /// Bytes appended since the last [`RecordFile::sync`]: what a machine crash
    /// could lose now. Zero means a sync has nothing to do.
    pub fn unsynced_bytes(&self) -> u64 {
        self.end - self.synced_end
    }

    /// The file's length: the offset the next appended record gets.
    pub fn end_offset(&self) -> u64 {
        self.end
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why [`read_records`] stopped; the caller adds the path.
enum ReadError {
    /// Reading failed.
    Io(std::io::Error),
    /// A record at `offset` is damaged.
    Corrupt {
        /// Byte offset of its header.
        offset: u64,
        /// What is wrong.
        kind: Corruption,
    },
}

/// Reads records from the start of `file` (whose length is `file_len`) and
/// returns them with the end offset of the last whole record. Changes nothing.
fn read_records(
    file: &File,
    file_len: u64,
    max_record_len: u32,
) -> Result<(Recovery, u64), ReadError> {
    let mut reader = BufReader::new(file);
    let mut recovery = Recovery::default();
    let mut offset = 0u64;
    while offset < file_len {
        let remaining = file_len - offset;
        let corrupt = |kind| ReadError::Corrupt { offset, kind };
        let torn = TornTail {
            offset,
            bytes_cut: remaining,
        };

        if remaining < HEADER_LEN as u64 {
            // A partial header: torn, provided what is there of the magic is
            // right (otherwise these bytes were never a record's start).
            let mut partial = [0u8; HEADER_LEN];
            let partial = partial.get_mut(..remaining as usize).unwrap_or_default();
            reader.read_exact(partial).map_err(ReadError::Io)?;
            let magic_len = partial.len().min(MAGIC.len());
            let found = partial.get(..magic_len).unwrap_or_default();
            if MAGIC.get(..magic_len) != Some(found) {
                return Err(corrupt(Corruption::Magic {
                    found: found.to_vec(),
                }));
            }
            recovery.torn = Some(torn);
            break;
        }

        let mut header = [0u8; HEADER_LEN];
        reader.read_exact(&mut header).map_err(ReadError::Io)?;
        let [m0, m1, l0, l1, l2, l3, p0, p1, p2, p3, h0, h1, h2, h3] = header;
        if [m0, m1] != MAGIC {
            return Err(corrupt(Corruption::Magic {
                found: vec![m0, m1],
            }));
        }
        let stored_header_crc = u32::from_le_bytes([h0, h1, h2, h3]);
        let computed_header_crc = crc32(&[m0, m1, l0, l1, l2, l3, p0, p1, p2, p3]);
        if stored_header_crc != computed_header_crc {
            return Err(corrupt(Corruption::HeaderChecksum {
                stored: stored_header_crc,
                computed: computed_header_crc,
            }));
        }
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if len > max_record_len {
            return Err(corrupt(Corruption::Length {
                len,
                max: max_record_len,
            }));
        }
        let record_len = HEADER_LEN as u64 + u64::from(len);
        if record_len > remaining {
            // A valid header whose payload the file ends inside: a crash
            // interrupted this append.
            recovery.torn = Some(torn);
            break;
        }
        let mut payload = vec![0u8; len as usize];
        reader.read_exact(&mut payload).map_err(ReadError::Io)?;
        let stored = u32::from_le_bytes([p0, p1, p2, p3]);
        let computed = crc32(&payload);
        if stored != computed {
            return Err(corrupt(Corruption::PayloadChecksum { stored, computed }));
        }
        recovery.records.push(Record { offset, payload });
        offset += record_len;
    }
    Ok((recovery, offset))
}

/// Syncs the directory holding `path`, so that a newly created file's name
/// survives a power loss (POSIX makes the directory entry durable only then).
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened and synced this way outside Unix.
#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A file path unique to one test, removed when dropped.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "wirepatterns-record-file-{}-{name}-{n}",
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

    /// The bit-at-a-time CRC-32, the reference the table version must match.
    fn crc32_bitwise(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn payload(i: usize) -> Vec<u8> {
        (0..(i * 7) % 300).map(|j| (i * 31 + j) as u8).collect()
    }

    /// Writes `payloads` to a fresh file and returns their offsets.
    fn write_file(path: &Path, payloads: &[Vec<u8>]) -> Vec<u64> {
        let (mut file, recovery) = RecordFile::open(path).unwrap();
        assert_eq!(recovery, Recovery::default());
        let offsets = payloads.iter().map(|p| file.append(p).unwrap()).collect();
        file.sync().unwrap();
        offsets
    }

    fn expect_corrupt(path: &Path) -> (u64, Corruption) {
        match RecordFile::open(path) {
            Err(RecordError::Corrupt { offset, kind, .. }) => (offset, kind),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value_and_the_bitwise_reference() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        for i in 0..64 {
            let p = payload(i);
            assert_eq!(crc32(&p), crc32_bitwise(&p));
        }
    }

    #[test]
    fn a_missing_file_is_created_empty_and_an_empty_file_opens_with_no_records() {
        let tmp = TempPath::new("empty");
        let (file, recovery) = RecordFile::open(&tmp.0).unwrap();
        assert_eq!(recovery, Recovery::default());
        assert_eq!(file.end_offset(), 0);
        drop(file);
        assert_eq!(std::fs::metadata(&tmp.0).unwrap().len(), 0);
        let (_, recovery) = RecordFile::open(&tmp.0).unwrap();
        assert_eq!(recovery, Recovery::default());
    }

    #[test]
    fn records_round_trip_across_reopens_with_their_offsets() {
        let tmp = TempPath::new("round-trip");
        let first: Vec<Vec<u8>> = (0..200).map(payload).collect();
        let offsets = write_file(&tmp.0, &first);
        assert_eq!(offsets[0], 0);

        let (mut file, recovery) = RecordFile::open(&tmp.0).unwrap();
        assert_eq!(recovery.torn, None);
        let read: Vec<(u64, Vec<u8>)> = recovery
            .records
            .into_iter()
            .map(|r| (r.offset, r.payload))
            .collect();
        let expected: Vec<(u64, Vec<u8>)> = offsets.iter().copied().zip(first.clone()).collect();
        assert_eq!(read, expected);

        let more = file.append(b"after reopen").unwrap();
        assert_eq!(more, std::fs::metadata(&tmp.0).unwrap().len() - 12 - 14);
        drop(file);
        let (_, recovery) = RecordFile::open(&tmp.0).unwrap();
        assert_eq!(recovery.records.len(), 201);
        assert_eq!(recovery.records[200].offset, more);
        assert_eq!(recovery.records[200].payload, b"after reopen");
    }

    #[test]
    fn a_torn_last_record_cut_at_any_byte_is_truncated_reported_and_appends_resume() {
        let tmp = TempPath::new("torn-source");
        let payloads = vec![
            b"one".to_vec(),
            b"two".to_vec(),
            b"the last record".to_vec(),
        ];
        let offsets = write_file(&tmp.0, &payloads);
        let whole = std::fs::read(&tmp.0).unwrap();
        let last = offsets[2];
        for cut in last + 1..whole.len() as u64 {
            let torn_path = TempPath::new("torn");
            std::fs::write(&torn_path.0, &whole[..cut as usize]).unwrap();

            let (mut file, recovery) = RecordFile::open(&torn_path.0).unwrap();
            assert_eq!(
                recovery.torn,
                Some(TornTail {
                    offset: last,
                    bytes_cut: cut - last
                }),
                "cut at {cut}"
            );
            let kept: Vec<&[u8]> = recovery.records.iter().map(|r| &r.payload[..]).collect();
            assert_eq!(kept, [&b"one"[..], b"two"], "cut at {cut}");
            assert_eq!(std::fs::metadata(&torn_path.0).unwrap().len(), last);

            assert_eq!(file.append(b"resumed").unwrap(), last);
            file.sync().unwrap();
            drop(file);
            let (_, recovery) = RecordFile::open(&torn_path.0).unwrap();
            assert_eq!(recovery.torn, None, "cut at {cut}");
            let kept: Vec<&[u8]> = recovery.records.iter().map(|r| &r.payload[..]).collect();
            assert_eq!(kept, [&b"one"[..], b"two", b"resumed"], "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_payload_byte_in_a_middle_record_is_corrupt_at_its_offset_and_nothing_changes() {
        let tmp = TempPath::new("flip-payload");
        let offsets = write_file(
            &tmp.0,
            &[b"first".to_vec(), b"middle".to_vec(), b"last".to_vec()],
        );
        let mut bytes = std::fs::read(&tmp.0).unwrap();
        bytes[offsets[1] as usize + HEADER_LEN + 2] ^= 0x01;
        std::fs::write(&tmp.0, &bytes).unwrap();

        let (offset, kind) = expect_corrupt(&tmp.0);
        assert_eq!(offset, offsets[1]);
        assert!(
            matches!(kind, Corruption::PayloadChecksum { .. }),
            "{kind:?}"
        );
        assert_eq!(std::fs::read(&tmp.0).unwrap(), bytes);
    }

    #[test]
    fn a_flipped_payload_byte_in_the_last_whole_record_is_corrupt_not_torn() {
        let tmp = TempPath::new("flip-last");
        let offsets = write_file(&tmp.0, &[b"first".to_vec(), b"last".to_vec()]);
        let mut bytes = std::fs::read(&tmp.0).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 0x80;
        std::fs::write(&tmp.0, &bytes).unwrap();

        let (offset, kind) = expect_corrupt(&tmp.0);
        assert_eq!(offset, offsets[1]);
        assert!(
            matches!(kind, Corruption::PayloadChecksum { .. }),
            "{kind:?}"
        );
        assert_eq!(std::fs::read(&tmp.0).unwrap(), bytes);
    }

    #[test]
    fn any_flipped_bit_in_a_length_field_is_corrupt_never_a_torn_tail() {
        let tmp = TempPath::new("flip-length-source");
        let offsets = write_file(
            &tmp.0,
            &[b"first".to_vec(), b"middle".to_vec(), b"last".to_vec()],
        );
        let whole = std::fs::read(&tmp.0).unwrap();
        for &record in &[offsets[1], offsets[2]] {
            for bit in 0..32 {
                let flipped = TempPath::new("flip-length");
                let mut bytes = whole.clone();
                bytes[record as usize + 2 + bit / 8] ^= 1 << (bit % 8);
                std::fs::write(&flipped.0, &bytes).unwrap();

                let (offset, kind) = expect_corrupt(&flipped.0);
                assert_eq!(offset, record, "bit {bit}");
                assert!(
                    matches!(kind, Corruption::HeaderChecksum { .. }),
                    "bit {bit}: {kind:?}"
                );
                assert_eq!(std::fs::read(&flipped.0).unwrap(), bytes, "bit {bit}");
            }
        }
    }

    #[test]
    fn a_bad_magic_is_corrupt_at_its_offset() {
        let tmp = TempPath::new("magic");
        let offsets = write_file(&tmp.0, &[b"first".to_vec(), b"second".to_vec()]);
        let mut bytes = std::fs::read(&tmp.0).unwrap();
        bytes[offsets[1] as usize] = b'X';
        std::fs::write(&tmp.0, &bytes).unwrap();
        let (offset, kind) = expect_corrupt(&tmp.0);
        assert_eq!(offset, offsets[1]);
        assert_eq!(
            kind,
            Corruption::Magic {
                found: vec![b'X', b'R']
            }
        );

        // Trailing bytes too short for a header are torn only if they start
        // like a record.
        let tail = TempPath::new("magic-tail");
        std::fs::write(&tail.0, b"\0\0\0").unwrap();
        let (offset, kind) = expect_corrupt(&tail.0);
        assert_eq!((offset, kind), (0, Corruption::Magic { found: vec![0, 0] }));
        assert_eq!(std::fs::read(&tail.0).unwrap(), b"\0\0\0");
    }

    #[test]
    fn a_length_over_the_maximum_is_refused_on_append_and_corrupt_on_open() {
        let tmp = TempPath::new("max");
        let (mut file, _) = RecordFile::open_with(&tmp.0, Options { max_record_len: 8 }).unwrap();
        assert_eq!(file.append(b"12345678").unwrap(), 0);
        assert!(matches!(
            file.append(b"123456789"),
            Err(RecordError::TooLarge { len: 9, max: 8 })
        ));
        assert_eq!(file.end_offset(), (HEADER_LEN + 8) as u64);
        drop(file);

        let err = RecordFile::open_with(&tmp.0, Options { max_record_len: 4 }).unwrap_err();
        match err {
            RecordError::Corrupt { offset, kind, .. } => {
                assert_eq!(offset, 0);
                assert_eq!(kind, Corruption::Length { len: 8, max: 4 });
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            std::fs::metadata(&tmp.0).unwrap().len(),
            (HEADER_LEN + 8) as u64
        );
    }

    #[test]
    fn sync_clears_the_unsynced_count() {
        let tmp = TempPath::new("sync");
        let (mut file, _) = RecordFile::open(&tmp.0).unwrap();
        assert_eq!(file.unsynced_bytes(), 0);
        file.append(b"abc").unwrap();
        assert_eq!(file.unsynced_bytes(), (HEADER_LEN + 3) as u64);
        file.sync().unwrap();
        assert_eq!(file.unsynced_bytes(), 0);
    }

    #[test]
    fn a_bad_magic_is_shown_in_hex_and_as_text() {
        let bad = Corruption::Magic {
            found: b"DA".to_vec(),
        };
        assert_eq!(
            bad.to_string(),
            "bad magic: expected 0x57 0x52 (\"WR\"), found 0x44 0x41 (\"DA\")"
        );
    }

    #[test]
    fn a_sync_on_another_thread_marks_only_what_it_was_asked_for() {
        let tmp = TempPath::new("sync-handle");
        let (mut file, _) = RecordFile::open(&tmp.0).unwrap();
        file.append(b"abc").unwrap();
        let end = file.end_offset();
        let handle = file.sync_handle().unwrap();
        std::thread::spawn(move || handle.sync())
            .join()
            .unwrap()
            .unwrap();
        // Appended after the sync was asked for: still waiting.
        file.append(b"defg").unwrap();
        file.mark_synced(end);
        assert_eq!(file.unsynced_bytes(), (HEADER_LEN + 4) as u64);
        // An older mark does not move it back; one past the end stops at it.
        file.mark_synced(0);
        assert_eq!(file.unsynced_bytes(), (HEADER_LEN + 4) as u64);
        file.mark_synced(u64::MAX);
        assert_eq!(file.unsynced_bytes(), 0);
    }

    #[test]
    fn a_second_writer_on_the_same_file_is_refused() {
        let tmp = TempPath::new("lock");
        let (_first, _) = RecordFile::open(&tmp.0).unwrap();
        assert!(matches!(
            RecordFile::open(&tmp.0),
            Err(RecordError::Locked { .. })
        ));
    }

    #[test]
    fn error_messages_name_the_offset_and_the_file() {
        let tmp = TempPath::new("message");
        write_file(&tmp.0, &[b"x".to_vec()]);
        let mut bytes = std::fs::read(&tmp.0).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 1;
        std::fs::write(&tmp.0, &bytes).unwrap();
        let message = RecordFile::open(&tmp.0).unwrap_err().to_string();
        assert!(message.contains("byte offset 0"), "{message}");
        assert!(message.contains(&tmp.0.display().to_string()), "{message}");
    }
}
