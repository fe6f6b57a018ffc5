//! Uploading a file: one whole request, or resumable parts (tus 1.0.0).
//!
//! # Two ways to send a big file
//!
//! The notes' first design exercise is an image upload service, and they give
//! two answers, both request/response:
//!
//! 1. **The whole file in one request.** `PUT /files/NAME` with the file as the
//!    body. Simplest: one request, one answer. But a big body is a long request,
//!    and if the connection drops at 90% the 90% is lost: the server cannot keep
//!    half a file under NAME (a reader would take it for the file), so it throws
//!    the half away and the client starts over.
//! 2. **The file in parts, each a small request.** Create an upload, then send
//!    part after part, each saying where in the file it goes. A cut costs at most
//!    the part in flight: the client asks the server how much it has, and goes on
//!    from there. The price is one request per part: a head, a round trip and an
//!    answer each, which small parts pay many times over.
//!
//! Either way the server must never hold a file in memory: bytes go to disk as
//! they arrive, and the server's memory stays bounded by its buffers whatever the
//! file's size.
//!
//! # tus: a protocol for the second way
//!
//! [tus](https://tus.io/protocols/resumable-upload) 1.0.0 is an open protocol for
//! resumable uploads over plain HTTP; clients exist for browsers, Python, Go,
//! Java, mobile. Its *core protocol* is three requests on an upload's URL:
//!
//! ```text
//! HEAD  /uploads/ID                 -> 200  Upload-Offset: 3000, Upload-Length: 10000
//! PATCH /uploads/ID                 -> 204  Upload-Offset: 4000
//!       Upload-Offset: 3000
//!       Content-Type: application/offset+octet-stream
//!       (1000 bytes)
//! OPTIONS /uploads                  -> 204  Tus-Version: 1.0.0, Tus-Extension: ...
//! ```
//!
//! - `HEAD` says how many bytes the server has (the *offset*); `PATCH` appends
//!   bytes, and must say at which offset it believes it appends: if that is not
//!   where the upload ends, the server answers 409 and writes nothing, so a part
//!   can never land twice or leave a hole.
//! - Every request and answer carries `Tus-Resumable: 1.0.0`; a server that does
//!   not speak the client's version answers 412 with the versions it does speak in
//!   `Tus-Version`.
//!
//! Extensions add the rest; this server implements three, and says so in
//! `Tus-Extension`:
//!
//! - **creation**: `POST /uploads` with `Upload-Length` (and optional
//!   `Upload-Metadata`, such as the file's name) creates an upload; the 201's
//!   `Location` is its URL.
//! - **termination**: `DELETE /uploads/ID` removes it (204).
//! - **checksum**: a PATCH may carry `Upload-Checksum: sha1 <base64>`; the server
//!   checks the part against it before committing it, and answers 460 and
//!   discards the part if it does not match.
//!
//! Not implemented (and not advertised): creation-defer-length, creation-with-
//! upload, expiration, concatenation, checksum-trailer.
//!
//! # Where each rule of the protocol is enforced
//!
//! | tus 1.0.0 section: rule | where |
//! |---|---|
//! | Core, Tus-Resumable: in every request but OPTIONS; another version is 412 with `Tus-Version`, request not processed | [`tus::route`]; [`tus::rejection`] adds `Tus-Version` |
//! | Core, Tus-Resumable: in every response | every answer function in [`tus`] |
//! | Core, Upload-Offset / Upload-Length: non-negative integers | [`tus::integer`], in [`tus::route`] |
//! | Core, X-HTTP-Method-Override: taken as the method when present | [`tus::route`] |
//! | Core, OPTIONS: `Tus-Version` in the answer; `Tus-Extension`, `Tus-Max-Size` | [`tus::options_answer`] |
//! | Core, HEAD: `Upload-Offset` always, `Upload-Length`, `Cache-Control: no-store`; 404 for an unknown upload | [`tus::head_answer`]; [`store::UploadStore::info`] |
//! | Core, PATCH: `Content-Type: application/offset+octet-stream`, else 415 | [`tus::route`] |
//! | Core, PATCH: offset not the upload's: 409, nothing changed | [`store::UploadStore::begin_part`] |
//! | Core, PATCH: 204 with the new `Upload-Offset`; store as much as received | [`tus::patch_answer`]; [`store::UploadStore::abort_part`] keeps an unchecked part's bytes |
//! | Creation: `Upload-Length` required (no defer-length here); over the maximum 413; 201 with `Location` | [`tus::route`], [`store::UploadStore::create`], [`tus::created_answer`] |
//! | Creation, Upload-Metadata: pairs, unique non-empty keys, base64 values, empty accepted; echoed on HEAD | [`tus::Metadata::parse`]; [`tus::head_answer`] |
//! | Termination: 204, then 404 for the upload | [`tus::delete_answer`]; [`store::UploadStore::delete`] |
//! | Checksum: `Tus-Checksum-Algorithm`; unsupported algorithm 400; mismatch 460, nothing appended, offset unchanged | [`tus::options_answer`]; [`tus::Checksum::parse`]; [`store::UploadStore::finish_part`] |
//!
//! A rule about the connection (answer a refusal at once with `Connection: close`
//! without reading the body; keep-alive between parts; a body cut short reported
//! as such) belongs to the server that drives these pieces.
//!
//! # The contract the server follows
//!
//! | request | answer |
//! |---|---|
//! | `OPTIONS /uploads` (or `/uploads/ID`, or `*`) | 204, [`tus::options_answer`] |
//! | `POST /uploads`, `Upload-Length: N` | 201, `Location: /uploads/ID` ([`tus::created_answer`]) |
//! | `HEAD /uploads/ID` | 200 ([`tus::head_answer`]) |
//! | `PATCH /uploads/ID` | 204 with the new `Upload-Offset` ([`tus::patch_answer`]) |
//! | `DELETE /uploads/ID` | 204 ([`tus::delete_answer`]) |
//! | `GET /uploads/ID/digest` | 200, body `stored ID: SIZE bytes, sha1 HEX` ([`tus::stored_answer`]); 409 if not complete |
//! | `PUT /files/NAME` | 201 (new) or 200 (replaced), body `stored NAME: SIZE bytes, sha1 HEX` ([`tus::stored_answer`]) |
//! | anything refused | the status of [`tus::TusError::status`] or [`store::StoreError::status`], a one-line reason, `Connection: close` ([`tus::rejection`], [`tus::error_answer`]) |
//!
//! The `stored` line is [`Stored`]: a client reads it back with
//! [`Stored::parse`] and compares the digest with its own.
//!
//! # Layout
//!
//! - [`tus`]: the requests, sans-I/O. A [`crate::http::Request`] head in, a
//!   [`tus::Route`] or a [`tus::TusError`] out; and the header fields of every
//!   answer.
//! - [`store`]: the files: uploads that grow by appends, whole files renamed into
//!   place when complete, what survives a crash.

pub mod server;
pub mod store;
pub mod tus;

use std::fmt;

pub use server::{UploadApp, UploadEvent, UploadStats};
pub use store::{StoreError, UploadStore};
pub use tus::{Route, TusError, TusRequest, UploadId};

/// What was stored: a whole file, or a finished upload (named by its id). Its
/// `Display` is the line the server sends back, `stored NAME: SIZE bytes, sha1
/// HEX`; [`Stored::parse`] reads it.
///
/// ```
/// use wirepatterns::patterns::upload::Stored;
///
/// let s = Stored { name: "cat: 1.jpg".into(), size: 3, sha1: [0xab; 20] };
/// let line = s.to_string();
/// assert_eq!(line, format!("stored cat: 1.jpg: 3 bytes, sha1 {}", "ab".repeat(20)));
/// assert_eq!(Stored::parse(&line), Some(s));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The file's name, or the upload's id.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-1 digest of its bytes.
    pub sha1: [u8; 20],
}

impl Stored {
    /// The digest as 40 lowercase hex digits.
    pub fn sha1_hex(&self) -> String {
        sha1_hex(&self.sha1)
    }

    /// Reads a `stored NAME: SIZE bytes, sha1 HEX` line (a trailing newline is
    /// allowed). The NAME may itself hold `": "`: the line is read from its end.
    pub fn parse(line: &str) -> Option<Stored> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rest = line.strip_prefix("stored ")?;
        let (name, tail) = rest.rsplit_once(": ")?;
        let (size, hex) = tail.split_once(" bytes, sha1 ")?;
        let size = tus::integer(size.as_bytes())?;
        if hex.len() != 40 {
            return None;
        }
        let mut sha1 = [0u8; 20];
        for (out, pair) in sha1.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            if text.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            *out = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Stored {
            name: name.to_string(),
            size,
            sha1,
        })
    }
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored {}: {} bytes, sha1 {}",
            self.name,
            self.size,
            self.sha1_hex()
        )
    }
}

/// A SHA-1 digest as 40 lowercase hex digits.
///
/// ```
/// use sha1::{Digest, Sha1};
/// use wirepatterns::patterns::upload::sha1_hex;
///
/// let d: [u8; 20] = Sha1::digest(b"abc").into();
/// assert_eq!(sha1_hex(&d), "a9993e364706816aba3e25717850c26c9cd0d89d");
/// ```
pub fn sha1_hex(digest: &[u8; 20]) -> String {
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_line_round_trips_and_refuses_damage() {
        let s = Stored {
            name: "a b: c, 3 bytes".into(),
            size: 12_345,
            sha1: [0x0f; 20],
        };
        let line = format!("{s}\n");
        assert_eq!(Stored::parse(&line), Some(s));
        let hex = "0f".repeat(20);
        for bad in [
            String::new(),
            format!("stored a: 1 bytes, sha1 {}", "0F".repeat(20)),
            format!("stored a: 1 bytes, sha1 {}", "0f".repeat(19)),
            format!("stored a: 1 bytes, sha1 {hex}0"),
            format!("stored a: x bytes, sha1 {hex}"),
            format!("stored a: -1 bytes, sha1 {hex}"),
            format!("stored a 1 bytes, sha1 {hex}"),
            format!("saved a: 1 bytes, sha1 {hex}"),
            format!("stored a: 1 bytes, md5 {hex}"),
            format!("stored a: 1 bytes, sha1 {}zz", "0f".repeat(19)),
        ] {
            assert_eq!(Stored::parse(&bad), None, "{bad:?}");
        }
    }
}
