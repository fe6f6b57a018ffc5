//! A job's status as a message that serde can encode: what the jobs server knows
//! of a job (its handle, its progress, when that progress was reached), with the
//! same checks as the crate's own text forms.
//!
//! The library has no serde dependency, so [`JobId`] is not `Serialize`; this
//! file writes a handle as its text (`job:1764480000000-2`, what every client
//! sees) and reads it back with [`JobId::parse`], which accepts only the
//! canonical spelling. A progress over 100 is refused, as
//! [`wirepatterns::patterns::journal::Event::decode`] refuses it. A job has no
//! separate state field: 100% is done, anything less is running.
//!
//! Used by the `request_response` example (`POST /json`) and by the
//! `serialize_cost` bench, so that both handle the same message.

// Each includer uses only its part of this file.
#![allow(dead_code)]

use std::fmt::{self, Write as _};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use wirepatterns::patterns::jobs::JobId;

/// One job's status.
///
/// As JSON: `{"id":"job:1764480000000-2","progress":40,"at_ms":1764480012000}`;
/// as XML, a `<job>` element with one child element per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "job")]
pub struct JobStatus {
    /// The job's handle, as text.
    #[serde(serialize_with = "write_handle", deserialize_with = "read_handle")]
    pub id: JobId,
    /// Its progress in percent, 0..=100.
    #[serde(deserialize_with = "read_percent")]
    pub progress: u8,
    /// When it reached that progress, in ms since the Unix epoch (the `at=` of
    /// the jobs server's `JobStatus: 40% at=<ms>` line).
    pub at_ms: u64,
}

impl JobStatus {
    /// Whether the job has finished.
    pub fn done(&self) -> bool {
        self.progress == 100
    }
}

/// The longest handle: `job:`, two `u64`s and a `-`.
const HANDLE_MAX: usize = 4 + 20 + 1 + 20;

/// A handle's text, formatted on the stack.
struct HandleText {
    bytes: [u8; HANDLE_MAX],
    len: usize,
}

impl fmt::Write for HandleText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes a handle as its text form, formatted once on the stack and handed to
/// the format as a `str` (serde's `collect_str` would make postcard format it
/// twice, once to learn its length).
fn write_handle<S: Serializer>(id: &JobId, serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = HandleText {
        bytes: [0; HANDLE_MAX],
        len: 0,
    };
    write!(text, "{id}").map_err(serde::ser::Error::custom)?;
    let text = text
        .bytes
        .get(..text.len)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| serde::ser::Error::custom("a handle is ASCII"))?;
    serializer.serialize_str(text)
}

/// Reads a handle from its text form; anything [`JobId::parse`] refuses is an
/// error naming the field.
fn read_handle<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JobId, D::Error> {
    struct Handle;

    impl Visitor<'_> for Handle {
        type Value = JobId;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a job handle such as \"job:1764480000000\" or \"job:1764480000000-2\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<JobId, E> {
            JobId::parse(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
        }
    }

    deserializer.deserialize_str(Handle)
}

/// Reads a progress, refusing anything over 100.
fn read_percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let progress = u8::deserialize(deserializer)?;
    if progress > 100 {
        return Err(de::Error::invalid_value(
            de::Unexpected::Unsigned(u64::from(progress)),
            &"a progress in percent, 0 to 100",
        ));
    }
    Ok(progress)
}

/// `n` job statuses as a busy jobs server holds them: handles given out in the
/// same few milliseconds (so some carry a `-n` counter), progress at every step
/// of the 10% grid, each update stamped after its job's start.
pub fn sample_jobs(n: usize) -> Vec<JobStatus> {
    const START_MS: u64 = 1_764_480_000_000;
    (0..n as u64)
        .map(|i| {
            let ms = START_MS + i / 3;
            let progress = ((i * 10) % 110) as u8;
            JobStatus {
                id: JobId::new(ms, i % 3),
                progress,
                at_ms: ms + u64::from(progress / 10) * 3000,
            }
        })
        .collect()
}
