//! The upload service's requests, sans-I/O: which route a request takes, whether
//! its tus headers follow the protocol, and the header fields of every answer.
//!
//! # What is checked here, and what is not
//!
//! This file sees only a request's head ([`Request`]): method, target and header
//! fields. It never sees a body, a file or a socket. So it decides everything
//! that can be decided from the head alone, before a byte of the body is read:
//!
//! - the route ([`route`]): a tus request under `/uploads`, a whole file at
//!   `PUT /files/NAME`, or the digest of a finished upload at
//!   `GET /uploads/ID/digest`; anything else is 404, a method a route does not
//!   take is 405 with `Allow`;
//! - the tus version (`Tus-Resumable: 1.0.0`, tus 1.0.0 §Core Protocol,
//!   "Tus-Resumable": a missing or other version is 412 with `Tus-Version`, and the
//!   request is not processed);
//! - each tus header's grammar: `Upload-Length` and `Upload-Offset` are
//!   non-negative integers (§Headers), `Upload-Metadata` is comma-separated
//!   `key base64value` pairs with unique keys (§Creation, "Upload-Metadata"),
//!   `Upload-Checksum` is `sha1 <base64 of 20 bytes>` (§Checksum), a PATCH's
//!   `Content-Type` is `application/offset+octet-stream` (§Core, "PATCH": 415
//!   otherwise);
//! - the size limit where a length is declared: `Upload-Length` over the maximum
//!   is 413 (§Creation: "the Server MUST respond with the 413"), and so is a
//!   `PUT /files/NAME` whose `Content-Length` is over it;
//! - the whole-file NAME ([`file_name`]): one path segment that cannot leave the
//!   directory, decided on the raw target.
//!
//! What needs the upload's state (does this id exist, is the offset right, does
//! the part fit in the upload's length, does the checksum match the bytes) is the
//! store's: [`super::store`].
//!
//! A rejection is a [`TusError`]: it knows its status code
//! ([`TusError::status`]), and its `Display` text is the one-line reason that goes
//! in the answer's body ([`rejection`]).
//!
//! # Why the NAME is judged raw
//!
//! A server that percent-decodes a target and then normalises it (drops `.`
//! segments, resolves `..`) answers a request for a different resource than the
//! one named: `/files/a/../../etc/passwd` becomes `/etc/passwd`, and
//! `/files/%2e%2e/x` becomes `/x`, whose answer is a 404 that hides the attack.
//! Here nothing is normalised: the NAME is the raw bytes after `/files/`, up to a
//! `?`, and it is refused (400, naming the rule) if it holds a `/` or `\` raw, a
//! byte the path grammar does not allow unencoded (RFC 3986 §3.3: `pchar`), a
//! `%` not followed by two hex digits, or, once decoded (RFC 3986 §2.1), a `/`,
//! `\`, NUL or other control byte, bytes that are not UTF-8, more than 255 bytes,
//! or exactly `.` or `..`. What is left can only name a file directly inside the
//! directory. (The decoder is not [`crate::http::query::decode`]: in a query `+`
//! means a space, in a path it is a `+`.)
//!
//! # The answers
//!
//! Every tus answer carries `Tus-Resumable: 1.0.0` (tus §Core, "Tus-Resumable":
//! MUST be in every response; the protocol's own OPTIONS example carries it too).
//! The functions below fill a [`Response`] for each:
//!
//! | request | function | status | fields |
//! |---|---|---|---|
//! | `OPTIONS /uploads` | [`options_answer`] | 204 | `Tus-Version: 1.0.0` (MUST), `Tus-Extension: creation,termination,checksum`, `Tus-Max-Size`, `Tus-Checksum-Algorithm: sha1` |
//! | `POST /uploads` | [`created_answer`] | 201 | `Location: /uploads/ID` (§Creation: MUST) |
//! | `HEAD /uploads/ID` | [`head_answer`] | 200 | `Upload-Offset` (MUST, even 0), `Upload-Length` (MUST when known), `Upload-Metadata` when the upload has any (§Creation: MUST), `Cache-Control: no-store` (MUST) |
//! | `PATCH /uploads/ID` | [`patch_answer`] | 204 | `Upload-Offset`: the new offset (MUST) |
//! | `DELETE /uploads/ID` | [`delete_answer`] | 204 | (§Termination: MUST be 204) |
//! | `GET /uploads/ID/digest` | [`stored_answer`] | 200 | body `stored ID: SIZE bytes, sha1 HEX` |
//! | `PUT /files/NAME` | [`stored_answer`] | 201 new, 200 replaced | body `stored NAME: SIZE bytes, sha1 HEX` |
//! | any refusal | [`rejection`], [`error_answer`] | the error's | a `text/plain` body with the reason, `Connection: close`; 412 adds `Tus-Version`, 405 adds `Allow`, 413 adds `Tus-Max-Size` |

use std::fmt;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use thiserror::Error;

use crate::http::{Framing, Request, Response};

/// The one protocol version this server speaks (tus §Core, "Tus-Resumable").
pub const TUS_VERSION: &str = "1.0.0";

/// The extensions this server implements, for `Tus-Extension` (tus §Core,
/// "Tus-Extension"; each extension's section says to list its name).
pub const TUS_EXTENSIONS: &str = "creation,termination,checksum";

/// The checksum algorithms this server checks, for `Tus-Checksum-Algorithm`
/// (tus §Checksum: a server MUST support at least sha1).
pub const CHECKSUM_ALGORITHMS: &str = "sha1";

/// The media type of a PATCH body (tus §Core, "PATCH").
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// The tus creation URL: `POST` here creates an upload, whose URL is under it.
pub const UPLOADS_PATH: &str = "/uploads";

/// Where whole files are stored: `PUT /files/NAME`.
pub const FILES_PATH: &str = "/files";

/// The longest file name, in bytes once decoded (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// An upload's id: 16 bytes, written as 32 lowercase hex digits in its URL
/// (`/uploads/0f3a...`) and its file names. Only ids of exactly this form are
/// looked up, so an id can never name anything outside the store's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId([u8; 16]);

impl UploadId {
    /// The id made of these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> UploadId {
        UploadId(bytes)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses 32 lowercase hex digits; anything else is `None`.
    ///
    /// ```
    /// use wirepatterns::patterns::upload::UploadId;
    ///
    /// let id = UploadId::parse("000102030405060708090a0b0c0d0e0f").unwrap();
    /// assert_eq!(id.as_bytes()[15], 15);
    /// assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0e0f");
    /// assert!(UploadId::parse("000102030405060708090A0B0C0D0E0F").is_none());
    /// assert!(UploadId::parse("..").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<UploadId> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = lower_hex(*pair.first()?)?;
            let lo = lower_hex(*pair.get(1)?)?;
            *out.get_mut(i)? = hi << 4 | lo;
        }
        Some(UploadId(out))
    }

    /// The upload's URL path: `/uploads/ID`.
    pub fn path(&self) -> String {
        format!("{UPLOADS_PATH}/{self}")
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A lowercase hex digit's value.
fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Any hex digit's value (percent-encoding allows both cases, RFC 3986 §2.1).
fn any_hex(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => lower_hex(b),
    }
}

/// Why a request is refused before its body is read, with the rule it broke.
/// [`TusError::status`] is the answer's status; the `Display` text is its reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TusError {
    /// No route for this path.
    #[error(
        "no such resource: uploads are created with POST /uploads, whole files stored with PUT /files/NAME"
    )]
    NotFound,
    /// `/uploads/ID` where ID is not an upload id (tus §Core, "HEAD"/"PATCH": SHOULD
    /// answer 404 for an upload that does not exist).
    #[error("no such upload")]
    UnknownUpload,
    /// The route exists but does not take this method (RFC 9110 §15.5.6: send
    /// `Allow`).
    #[error("method not allowed here (allowed: {allow})")]
    MethodNotAllowed {
        /// The methods the route takes, for the `Allow` field.
        allow: &'static str,
    },
    /// `Tus-Resumable` missing or not `1.0.0` (tus §Core, "Tus-Resumable": MUST
    /// answer 412 with `Tus-Version` and not process the request).
    #[error(
        "unsupported tus version: this server speaks Tus-Resumable: 1.0.0 (tus 1.0.0, Tus-Resumable)"
    )]
    UnsupportedVersion,
    /// A tus header sent more than once: which one counts would be a guess.
    #[error("{0} sent more than once")]
    DuplicateHeader(&'static str),
    /// POST without `Upload-Length` (tus §Creation: the request MUST carry
    /// `Upload-Length` or `Upload-Defer-Length`; this server does not implement
    /// creation-defer-length).
    #[error(
        "POST /uploads needs Upload-Length (tus 1.0.0, Creation; Upload-Defer-Length is not supported)"
    )]
    MissingUploadLength,
    /// `Upload-Length` is not a non-negative integer (tus §Headers).
    #[error("invalid Upload-Length: expected a non-negative integer (tus 1.0.0, Upload-Length)")]
    InvalidUploadLength,
    /// A declared size over the server's maximum (tus §Creation: MUST answer 413).
    #[error("{length} bytes is more than this server's maximum of {max} bytes (Tus-Max-Size)")]
    TooLarge {
        /// The size declared.
        length: u64,
        /// The maximum.
        max: u64,
    },
    /// PATCH without `Upload-Offset` (tus §Core, "PATCH").
    #[error("PATCH needs Upload-Offset (tus 1.0.0, PATCH)")]
    MissingUploadOffset,
    /// `Upload-Offset` is not a non-negative integer (tus §Headers).
    #[error("invalid Upload-Offset: expected a non-negative integer (tus 1.0.0, Upload-Offset)")]
    InvalidUploadOffset,
    /// `Upload-Metadata` breaks its grammar (tus §Creation, "Upload-Metadata").
    #[error("invalid Upload-Metadata: {0} (tus 1.0.0, Upload-Metadata)")]
    InvalidMetadata(&'static str),
    /// `Upload-Checksum` is not `ALGORITHM BASE64` (tus §Checksum).
    #[error("invalid Upload-Checksum: {0} (tus 1.0.0, Checksum)")]
    InvalidChecksum(&'static str),
    /// A checksum algorithm this server does not check (tus §Checksum: MUST answer
    /// 400).
    #[error("unsupported checksum algorithm: this server checks sha1 (Tus-Checksum-Algorithm)")]
    UnsupportedChecksum,
    /// A PATCH whose `Content-Type` is not `application/offset+octet-stream` (tus
    /// §Core, "PATCH": SHOULD answer 415).
    #[error(
        "PATCH bodies must be Content-Type: application/offset+octet-stream (tus 1.0.0, PATCH)"
    )]
    UnsupportedMediaType,
    /// A POST with a body: the creation-with-upload extension is not implemented.
    #[error(
        "POST /uploads takes no body: send the bytes with PATCH (creation-with-upload is not supported)"
    )]
    CreationWithUpload,
    /// A whole-file NAME that could leave the directory, or is not a plain name.
    #[error("invalid file name: {0}")]
    InvalidName(&'static str),
}

impl TusError {
    /// The status code this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            TusError::NotFound | TusError::UnknownUpload => 404,
            TusError::MethodNotAllowed { .. } => 405,
            TusError::UnsupportedVersion => 412,
            TusError::TooLarge { .. } => 413,
            TusError::UnsupportedMediaType => 415,
            _ => 400,
        }
    }
}

/// A checksum sent with a part (tus §Checksum, `Upload-Checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// `sha1 BASE64`: the SHA-1 digest of the part's bytes.
    Sha1([u8; 20]),
}

impl Checksum {
    /// Parses an `Upload-Checksum` value: the algorithm's name, one space, the
    /// digest in standard base64 with padding.
    ///
    /// ```
    /// use wirepatterns::patterns::upload::tus::{Checksum, TusError};
    ///
    /// // sha1("") is da39a3ee5e6b4b0d3255bfef95601890afd80709.
    /// let Checksum::Sha1(d) = Checksum::parse(b"sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=").unwrap();
    /// assert_eq!(d[0], 0xda);
    /// assert_eq!(Checksum::parse(b"md5 1B2M2Y8AsgTpgAmY7PhCfg=="), Err(TusError::UnsupportedChecksum));
    /// ```
    pub fn parse(value: &[u8]) -> Result<Checksum, TusError> {
        let text =
            std::str::from_utf8(value).map_err(|_| TusError::InvalidChecksum("not ASCII"))?;
        let (algorithm, digest) = text
            .split_once(' ')
            .ok_or(TusError::InvalidChecksum("expected ALGORITHM SP BASE64"))?;
        if algorithm.is_empty() || algorithm.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(TusError::InvalidChecksum("expected ALGORITHM SP BASE64"));
        }
        if !algorithm.eq_ignore_ascii_case("sha1") {
            return Err(TusError::UnsupportedChecksum);
        }
        let bytes = BASE64_STANDARD
            .decode(digest)
            .map_err(|_| TusError::InvalidChecksum("the digest is not base64"))?;
        let digest: [u8; 20] = bytes
            .try_into()
            .map_err(|_| TusError::InvalidChecksum("a sha1 digest is 20 bytes"))?;
        Ok(Checksum::Sha1(digest))
    }

    /// The header value: `sha1 BASE64`.
    pub fn header_value(&self) -> String {
        match self {
            Checksum::Sha1(d) => format!("sha1 {}", BASE64_STANDARD.encode(d)),
        }
    }
}

/// An upload's metadata (tus §Creation, "Upload-Metadata"): key-value pairs the
/// client attaches at creation, such as the file's name. The server stores them
/// and gives them back on every HEAD; it does not interpret them.
///
/// ```text
/// Upload-Metadata = [ pair *( "," pair ) ]      ; empty: no pairs
/// pair            = key [ SP base64-value ]     ; no value: an empty value
/// key             = 1*( VCHAR except "," )      ; unique within the header
/// ```
///
/// The protocol says keys "MUST NOT contain spaces and commas and MUST NOT be
/// empty", "SHOULD be ASCII", values "MUST be Base64 encoded", and "All keys MUST
/// be unique". This parser enforces all of it (keys of visible ASCII), allows
/// spaces around a pair, and keeps the value exactly as received, to echo on HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The header value as received (or as built), echoed on HEAD.
    raw: String,
    /// The pairs, values decoded.
    pairs: Vec<(String, Vec<u8>)>,
}

impl Metadata {
    /// Parses an `Upload-Metadata` value. An empty value is no pairs.
    ///
    /// ```
    /// use wirepatterns::patterns::upload::tus::Metadata;
    ///
    /// let m = Metadata::parse(b"filename d29ybGQucG5n,is_confidential").unwrap();
    /// assert_eq!(m.get("filename"), Some(&b"world.png"[..]));
    /// assert_eq!(m.get("is_confidential"), Some(&b""[..]));
    /// assert!(Metadata::parse(b"").unwrap().is_empty());
    /// assert!(Metadata::parse(b"a x,a y").is_err());
    /// ```
    pub fn parse(value: &[u8]) -> Result<Metadata, TusError> {
        let raw = std::str::from_utf8(value).map_err(|_| TusError::InvalidMetadata("not ASCII"))?;
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        if raw.trim_matches(' ').is_empty() {
            return Ok(Metadata {
                raw: String::new(),
                pairs,
            });
        }
        for pair in raw.split(',') {
            let pair = pair.trim_matches(' ');
            let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
            if key.is_empty() {
                return Err(TusError::InvalidMetadata("empty key"));
            }
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(TusError::InvalidMetadata(
                    "a key is visible ASCII, without spaces or commas",
                ));
            }
            if value.contains(' ') {
                return Err(TusError::InvalidMetadata(
                    "a pair is KEY SP BASE64VALUE, one space",
                ));
            }
            let decoded = BASE64_STANDARD
                .decode(value)
                .map_err(|_| TusError::InvalidMetadata("a value is not base64"))?;
            if pairs.iter().any(|(k, _)| k == key) {
                return Err(TusError::InvalidMetadata("a key appears twice"));
            }
            pairs.push((key.to_string(), decoded));
        }
        Ok(Metadata {
            raw: raw.to_string(),
            pairs,
        })
    }

    /// Builds metadata from pairs (for a client), encoding each value in base64.
    /// Keys are checked as [`Metadata::parse`] checks them.
    ///
    /// ```
    /// use wirepatterns::patterns::upload::tus::Metadata;
    ///
    /// let m = Metadata::from_pairs([("filename", &b"world.png"[..])]).unwrap();
    /// assert_eq!(m.raw(), "filename d29ybGQucG5n");
    /// assert!(Metadata::from_pairs([("file name", &b"x"[..])]).is_err());
    /// ```
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Metadata, TusError> {
        let mut raw = String::new();
        for (key, value) in pairs {
            if !raw.is_empty() {
                raw.push(',');
            }
            raw.push_str(key);
            if !value.is_empty() {
                raw.push(' ');
                raw.push_str(&BASE64_STANDARD.encode(value));
            }
        }
        Metadata::parse(raw.as_bytes())
    }

    /// The value of `key`, decoded; `None` if there is no such key.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The pairs, in the order sent, values decoded.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// No pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The header value: as received, or as [`Metadata::from_pairs`] built it;
    /// empty when there are no pairs.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// A tus request, its headers checked (tus 1.0.0 core, creation and termination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TusRequest {
    /// `OPTIONS`: what the server supports (tus §Core, "OPTIONS").
    Options,
    /// `POST /uploads`: create an upload of `length` bytes (tus §Creation).
    Create {
        /// `Upload-Length`, at most the maximum size.
        length: u64,
        /// `Upload-Metadata`, empty if not sent.
        metadata: Metadata,
    },
    /// `HEAD /uploads/ID`: where the upload stands (tus §Core, "HEAD").
    Head {
        /// The upload.
        id: UploadId,
    },
    /// `PATCH /uploads/ID`: bytes to append at `offset` (tus §Core, "PATCH").
    Patch {
        /// The upload.
        id: UploadId,
        /// `Upload-Offset`: where the client believes the upload ends. The store
        /// answers 409 if it is not so.
        offset: u64,
        /// `Upload-Checksum`, if sent: the part is committed only if it matches.
        checksum: Option<Checksum>,
        /// The body's length from `Content-Length`; `None` for a chunked body,
        /// whose length is known only at its end. The store refuses (413) a part
        /// declared to run past the upload's length before it is read.
        body_length: Option<u64>,
        /// `Upload-Length`, if sent on the PATCH (tus allows it only to set a
        /// deferred length; here it must equal the upload's length).
        upload_length: Option<u64>,
    },
    /// `DELETE /uploads/ID`: the upload is terminated (tus §Termination).
    Delete {
        /// The upload.
        id: UploadId,
    },
}

/// Where a request goes: the three kinds of request the upload service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A tus request under `/uploads`.
    Tus(TusRequest),
    /// `PUT /files/NAME`: the whole file in one body.
    Whole {
        /// The file name, decoded and checked by [`file_name`].
        name: String,
        /// The body's `Content-Length` (at most the maximum); `None` for a chunked
        /// body.
        length: Option<u64>,
    },
    /// `GET /uploads/ID/digest`: the size and SHA-1 digest of a finished upload,
    /// for a client to check what was stored.
    Digest {
        /// The upload.
        id: UploadId,
    },
}

/// Decides where a request goes and checks everything about it that its head
/// alone can tell (see the module docs). `max_size` is the largest upload or whole
/// file, in bytes.
///
/// ```
/// use wirepatterns::http::{RequestParser, Status};
/// use wirepatterns::patterns::upload::tus::{route, Route, TusError, TusRequest};
///
/// let bytes = b"POST /uploads HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\
///     Upload-Length: 100\r\nUpload-Metadata: filename YS5wbmc=\r\n\r\n";
/// let mut parser = RequestParser::default();
/// let Ok(Status::Complete(req)) = parser.parse(bytes) else { panic!() };
/// let Ok(Route::Tus(TusRequest::Create { length, metadata })) = route(&req, 1000) else { panic!() };
/// assert_eq!((length, metadata.get("filename")), (100, Some(&b"a.png"[..])));
/// assert_eq!(route(&req, 99).unwrap_err().status(), 413);
/// ```
pub fn route(request: &Request<'_>, max_size: u64) -> Result<Route, TusError> {
    let target = request.target_bytes();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    if path == b"*" {
        // OPTIONS * asks about the server as a whole (RFC 9112 §3.2.4).
        return match method(request)? {
            "OPTIONS" => Ok(Route::Tus(TusRequest::Options)),
            _ => Err(TusError::MethodNotAllowed { allow: "OPTIONS" }),
        };
    }
    if let Some(rest) = path.strip_prefix(FILES_PATH.as_bytes()) {
        let Some(raw_name) = rest.strip_prefix(b"/") else {
            return Err(TusError::NotFound);
        };
        if request.method() != "PUT" {
            return Err(TusError::MethodNotAllowed { allow: "PUT" });
        }
        let name = file_name(raw_name)?;
        let length = match request.framing() {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        };
        if let Some(length) = length.filter(|&n| n > max_size) {
            return Err(TusError::TooLarge {
                length,
                max: max_size,
            });
        }
        return Ok(Route::Whole { name, length });
    }
    let Some(rest) = path.strip_prefix(UPLOADS_PATH.as_bytes()) else {
        return Err(TusError::NotFound);
    };
    if rest.is_empty() || rest == b"/" {
        // The creation URL.
        return match method(request)? {
            "OPTIONS" => Ok(Route::Tus(TusRequest::Options)),
            "POST" => {
                check_version(request)?;
                create(request, max_size).map(Route::Tus)
            }
            _ => Err(TusError::MethodNotAllowed {
                allow: "OPTIONS, POST",
            }),
        };
    }
    let Some(rest) = rest.strip_prefix(b"/") else {
        return Err(TusError::NotFound);
    };
    let rest = std::str::from_utf8(rest).map_err(|_| TusError::UnknownUpload)?;
    if let Some(id) = rest.strip_suffix("/digest") {
        let id = UploadId::parse(id).ok_or(TusError::UnknownUpload)?;
        return match request.method() {
            "GET" => Ok(Route::Digest { id }),
            _ => Err(TusError::MethodNotAllowed { allow: "GET" }),
        };
    }
    let id = UploadId::parse(rest).ok_or(TusError::UnknownUpload)?;
    match method(request)? {
        "OPTIONS" => Ok(Route::Tus(TusRequest::Options)),
        m @ ("HEAD" | "PATCH" | "DELETE") => {
            check_version(request)?;
            match m {
                "HEAD" => Ok(Route::Tus(TusRequest::Head { id })),
                "DELETE" => Ok(Route::Tus(TusRequest::Delete { id })),
                _ => patch(request, id).map(Route::Tus),
            }
        }
        _ => Err(TusError::MethodNotAllowed {
            allow: "OPTIONS, HEAD, PATCH, DELETE",
        }),
    }
}

/// The request's method, or the one `X-HTTP-Method-Override` names (tus §Core,
/// "X-HTTP-Method-Override": if present it MUST be taken as the method, for
/// clients that cannot send PATCH or DELETE).
fn method<'a>(request: &Request<'a>) -> Result<&'a str, TusError> {
    match single(request, "X-HTTP-Method-Override")? {
        None => Ok(request.method()),
        Some(m) => std::str::from_utf8(m).map_err(|_| TusError::MethodNotAllowed {
            allow: "OPTIONS, POST, HEAD, PATCH, DELETE",
        }),
    }
}

/// tus §Core, "Tus-Resumable": every request but OPTIONS MUST carry it; a
/// version the server does not speak is 412 and the request is not processed.
fn check_version(request: &Request<'_>) -> Result<(), TusError> {
    match single(request, "Tus-Resumable")? {
        Some(v) if v == TUS_VERSION.as_bytes() => Ok(()),
        _ => Err(TusError::UnsupportedVersion),
    }
}

/// `POST /uploads` (tus §Creation).
fn create(request: &Request<'_>, max_size: u64) -> Result<TusRequest, TusError> {
    match request.framing() {
        Framing::None | Framing::Length(0) => {}
        Framing::Length(_) | Framing::Chunked => return Err(TusError::CreationWithUpload),
    }
    let length = single(request, "Upload-Length")?
        .ok_or(TusError::MissingUploadLength)
        .and_then(|v| integer(v).ok_or(TusError::InvalidUploadLength))?;
    if length > max_size {
        return Err(TusError::TooLarge {
            length,
            max: max_size,
        });
    }
    let metadata = match single(request, "Upload-Metadata")? {
        Some(v) => Metadata::parse(v)?,
        None => Metadata::default(),
    };
    Ok(TusRequest::Create { length, metadata })
}

/// `PATCH /uploads/ID` (tus §Core, "PATCH"; §Checksum).
fn patch(request: &Request<'_>, id: UploadId) -> Result<TusRequest, TusError> {
    let content_type = single(request, "Content-Type")?.unwrap_or_default();
    // The media type, before any parameters; compared case-insensitively
    // (RFC 9110 §8.3.1).
    let media_type = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if !media_type.eq_ignore_ascii_case(OFFSET_OCTET_STREAM.as_bytes()) {
        return Err(TusError::UnsupportedMediaType);
    }
    let offset = single(request, "Upload-Offset")?
        .ok_or(TusError::MissingUploadOffset)
        .and_then(|v| integer(v).ok_or(TusError::InvalidUploadOffset))?;
    let checksum = single(request, "Upload-Checksum")?
        .map(Checksum::parse)
        .transpose()?;
    let upload_length = single(request, "Upload-Length")?
        .map(|v| integer(v).ok_or(TusError::InvalidUploadLength))
        .transpose()?;
    let body_length = match request.framing() {
        Framing::Length(n) => Some(n),
        Framing::None => Some(0),
        Framing::Chunked => None,
    };
    Ok(TusRequest::Patch {
        id,
        offset,
        checksum,
        body_length,
        upload_length,
    })
}

/// The value of the field `name`, refusing it sent twice.
fn single<'a>(request: &Request<'a>, name: &'static str) -> Result<Option<&'a [u8]>, TusError> {
    let mut found = None;
    for h in request.headers() {
        if h.name.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(TusError::DuplicateHeader(name));
            }
            found = Some(h.value);
        }
    }
    Ok(found)
}

/// A non-negative integer as tus writes it: `1*DIGIT`, no sign, no spaces, at
/// most `u64::MAX`.
///
/// ```
/// use wirepatterns::patterns::upload::tus::integer;
///
/// assert_eq!(integer(b"0"), Some(0));
/// assert_eq!(integer(b"18446744073709551615"), Some(u64::MAX));
/// assert_eq!(integer(b"18446744073709551616"), None);
/// assert_eq!(integer(b"-1"), None);
/// assert_eq!(integer(b""), None);
/// ```
pub fn integer(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Whether a byte may appear unencoded in a path segment (RFC 3986 §3.3):
///
/// ```text
/// pchar       = unreserved / pct-encoded / sub-delims / ":" / "@"
/// unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
/// sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
/// ```
///
/// (`%` is allowed here as the start of pct-encoded, checked when decoding.)
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'%'
        )
}

/// The file name of `PUT /files/NAME`, from the raw bytes after `/files/` (the
/// target up to `?`), decoded; refused if it could name anything but a file
/// directly inside the directory (see the module docs for every rule).
///
/// ```
/// use wirepatterns::patterns::upload::tus::file_name;
///
/// assert_eq!(file_name(b"cat%20photo.jpg").unwrap(), "cat photo.jpg");
/// assert_eq!(file_name(b"a+b").unwrap(), "a+b");
/// for hostile in [&b".."[..], b"a/x", b"%2e%2e", b"..%2fx", b"a%5cb", b"a%00", b""] {
///     assert_eq!(file_name(hostile).unwrap_err().status(), 400);
/// }
/// ```
pub fn file_name(raw: &[u8]) -> Result<String, TusError> {
    if raw.is_empty() {
        return Err(TusError::InvalidName("empty"));
    }
    if raw.contains(&b'/') {
        return Err(TusError::InvalidName("a name is one path segment: no '/'"));
    }
    if raw.contains(&b'\\') {
        return Err(TusError::InvalidName("no '\\' in a name"));
    }
    if !raw.iter().all(|&b| is_pchar(b)) {
        return Err(TusError::InvalidName(
            "a byte that must be percent-encoded in a path (RFC 3986 section 3.3)",
        ));
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hi = raw.get(i + 1).and_then(|&h| any_hex(h));
            let lo = raw.get(i + 2).and_then(|&l| any_hex(l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(TusError::InvalidName(
                    "a '%' not followed by two hex digits (RFC 3986 section 2.1)",
                ));
            };
            decoded.push(hi << 4 | lo);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.contains(&b'/') {
        return Err(TusError::InvalidName("an encoded '/' (%2F)"));
    }
    if decoded.contains(&b'\\') {
        return Err(TusError::InvalidName("an encoded '\\' (%5C)"));
    }
    if decoded.contains(&0) {
        return Err(TusError::InvalidName("an encoded NUL (%00)"));
    }
    if decoded.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(TusError::InvalidName("an encoded control byte"));
    }
    if decoded == b"." || decoded == b".." {
        return Err(TusError::InvalidName("'.' and '..' name directories"));
    }
    if decoded.len() > NAME_MAX {
        return Err(TusError::InvalidName("longer than 255 bytes"));
    }
    String::from_utf8(decoded).map_err(|_| TusError::InvalidName("not UTF-8 once decoded"))
}

/// Percent-encodes a file name for `PUT /files/NAME`: every byte but the
/// unreserved ones (RFC 3986 §2.3) becomes `%XX`, so [`file_name`] gives the
/// name back.
///
/// ```
/// use wirepatterns::patterns::upload::tus::{encode_name, file_name};
///
/// assert_eq!(encode_name("cat photo+1.jpg"), "cat%20photo%2B1.jpg");
/// assert_eq!(file_name(encode_name("é ü").as_bytes()).unwrap(), "é ü");
/// ```
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Adds `Tus-Resumable: 1.0.0`, which every tus answer carries.
fn tus_resumable(res: &mut Response) {
    res.header("Tus-Resumable", TUS_VERSION);
}

/// The answer to `OPTIONS` (tus §Core, "OPTIONS"): 204 with `Tus-Version` (MUST),
/// `Tus-Extension`, `Tus-Max-Size` and `Tus-Checksum-Algorithm` (§Checksum).
pub fn options_answer(res: &mut Response, max_size: u64) {
    res.set_status(204);
    tus_resumable(res);
    res.header("Tus-Version", TUS_VERSION);
    res.header("Tus-Extension", TUS_EXTENSIONS);
    res.header("Tus-Max-Size", max_size.to_string());
    res.header("Tus-Checksum-Algorithm", CHECKSUM_ALGORITHMS);
}

/// The answer to a successful `POST /uploads` (tus §Creation): 201 with the new
/// upload's URL in `Location` (a path, which the protocol allows: "MAY be
/// absolute or relative").
pub fn created_answer(res: &mut Response, id: UploadId) {
    res.set_status(201);
    tus_resumable(res);
    res.header("Location", id.path());
}

/// The answer to `HEAD /uploads/ID` (tus §Core, "HEAD"; §Creation): 200 with
/// `Upload-Offset` (always, even 0), `Upload-Length`, `Upload-Metadata` as the
/// client sent it when there is any, and `Cache-Control: no-store` so that no
/// cache keeps a stale offset.
pub fn head_answer(res: &mut Response, offset: u64, length: u64, metadata: &str) {
    res.set_status(200);
    tus_resumable(res);
    res.header("Upload-Offset", offset.to_string());
    res.header("Upload-Length", length.to_string());
    if !metadata.is_empty() {
        res.header("Upload-Metadata", metadata);
    }
    res.header("Cache-Control", "no-store");
}

/// The answer to a `PATCH` whose bytes were stored (tus §Core, "PATCH"): 204 with
/// the new `Upload-Offset`.
pub fn patch_answer(res: &mut Response, offset: u64) {
    res.set_status(204);
    tus_resumable(res);
    res.header("Upload-Offset", offset.to_string());
}

/// The answer to `DELETE /uploads/ID` (tus §Termination: MUST be 204).
pub fn delete_answer(res: &mut Response) {
    res.set_status(204);
    tus_resumable(res);
}

/// The answer carrying what was stored: for `PUT /files/NAME`, 201 if the name is
/// new and 200 if it replaced a file (RFC 9110 §9.3.4); for
/// `GET /uploads/ID/digest`, 200. The body is `stored NAME: SIZE bytes, sha1 HEX`
/// and a newline ([`super::Stored`]'s `Display`, read back by
/// [`super::Stored::parse`]).
pub fn stored_answer(res: &mut Response, status: u16, stored: &super::Stored) {
    res.set_status(status);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.set_body(format!("{stored}\n"));
}

/// A refusal: the error's status, `Tus-Resumable`, a `text/plain` body with the
/// reason, and `Connection: close` (the body, if any, is not read: nothing after
/// it on the connection could be trusted). A 412 adds `Tus-Version` (tus §Core:
/// MUST), a 405 `Allow` (RFC 9110 §15.5.6: MUST), a 413 `Tus-Max-Size`.
pub fn rejection(res: &mut Response, err: &TusError, max_size: u64) {
    error_answer(res, err.status(), err);
    match err {
        TusError::UnsupportedVersion => {
            res.header("Tus-Version", TUS_VERSION);
        }
        TusError::MethodNotAllowed { allow } => {
            res.header("Allow", allow);
        }
        TusError::TooLarge { .. } => {
            res.header("Tus-Max-Size", max_size.to_string());
        }
        _ => {}
    }
}

/// A refusal with any status and reason (the store's errors use it): the status,
/// `Tus-Resumable`, the reason as a one-line `text/plain` body, `Connection:
/// close`.
pub fn error_answer(res: &mut Response, status: u16, reason: &dyn fmt::Display) {
    res.set_status(status);
    tus_resumable(res);
    res.header("Content-Type", "text/plain; charset=utf-8");
    res.set_body(format!("{reason}\n"));
    res.set_close();
}
