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

use crate::http::{Framing, Request, Response, TargetForm};

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
            // Checked here: a comma in a key would split it into two pairs that
            // parse.
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
                return Err(TusError::InvalidMetadata(
                    "a key is visible ASCII, without spaces or commas",
                ));
            }
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
    let mut target = request.target_bytes();
    if request.target_form() == TargetForm::Absolute {
        // `http://host/uploads`: the path is what follows the authority (RFC 9112
        // §3.2.2: a server MUST accept the absolute form).
        let after_scheme = target
            .windows(3)
            .position(|w| w == b"://")
            .and_then(|i| target.get(i + 3..))
            .unwrap_or_default();
        target = after_scheme
            .iter()
            .position(|&b| b == b'/')
            .and_then(|i| after_scheme.get(i..))
            .unwrap_or(b"/");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::Encoding;
    use crate::http::{RequestParser, Status, Version};

    const MAX: u64 = 1000;
    const ID: &str = "00112233445566778899aabbccddeeff";

    /// Routes the request whose head is `head` (field lines joined with CRLF,
    /// `Host` added), with the maximum size `MAX`.
    fn route_of(start: &str, fields: &[&str]) -> Result<Route, TusError> {
        let mut bytes = format!("{start} HTTP/1.1\r\nHost: x\r\n");
        for f in fields {
            bytes.push_str(f);
            bytes.push_str("\r\n");
        }
        bytes.push_str("\r\n");
        let mut parser = RequestParser::default();
        match parser.parse(bytes.as_bytes()) {
            Ok(Status::Complete(req)) => route(&req, MAX),
            other => panic!("{bytes:?} did not parse: {other:?}"),
        }
    }

    fn err_of(start: &str, fields: &[&str]) -> TusError {
        match route_of(start, fields) {
            Err(e) => e,
            Ok(r) => panic!("{start} {fields:?} accepted: {r:?}"),
        }
    }

    fn id() -> UploadId {
        UploadId::parse(ID).expect("valid id")
    }

    fn encoded(res: &Response) -> String {
        let mut out = Vec::new();
        res.encode(&mut out, &Encoding::new(Version::Http11));
        String::from_utf8(out).expect("ASCII")
    }

    const PATCH_OK: [&str; 4] = [
        "Tus-Resumable: 1.0.0",
        "Upload-Offset: 10",
        "Content-Type: application/offset+octet-stream",
        "Content-Length: 5",
    ];

    #[test]
    fn core_options_needs_no_tus_resumable() {
        for start in ["OPTIONS /uploads", "OPTIONS /uploads/", "OPTIONS *"] {
            assert_eq!(
                route_of(start, &[]),
                Ok(Route::Tus(TusRequest::Options)),
                "{start}"
            );
        }
        let path = format!("OPTIONS /uploads/{ID}");
        assert_eq!(route_of(&path, &[]), Ok(Route::Tus(TusRequest::Options)));
        // The server MUST ignore it on OPTIONS, whatever its value.
        assert_eq!(
            route_of("OPTIONS /uploads", &["Tus-Resumable: 0.2.2"]),
            Ok(Route::Tus(TusRequest::Options))
        );
    }

    #[test]
    fn core_options_answer_advertises_version_extensions_and_limits() {
        let mut res = Response::new(200);
        options_answer(&mut res, 4096);
        assert_eq!(
            encoded(&res),
            "HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\nTus-Version: 1.0.0\r\n\
             Tus-Extension: creation,termination,checksum\r\nTus-Max-Size: 4096\r\n\
             Tus-Checksum-Algorithm: sha1\r\n\r\n"
        );
    }

    #[test]
    fn core_tus_resumable_missing_or_other_is_412() {
        let post = ["Upload-Length: 5"];
        let head = format!("HEAD /uploads/{ID}");
        let delete = format!("DELETE /uploads/{ID}");
        let patch = format!("PATCH /uploads/{ID}");
        for (start, fields) in [
            ("POST /uploads", &post[..]),
            (head.as_str(), &[][..]),
            (delete.as_str(), &[][..]),
            (patch.as_str(), &PATCH_OK[1..]),
        ] {
            assert_eq!(
                err_of(start, fields),
                TusError::UnsupportedVersion,
                "{start}"
            );
            let mut with = fields.to_vec();
            with.push("Tus-Resumable: 0.2.2");
            assert_eq!(
                err_of(start, &with),
                TusError::UnsupportedVersion,
                "{start}"
            );
            with.pop();
            with.push("Tus-Resumable: 1.0.0");
            assert!(route_of(start, &with).is_ok(), "{start}");
        }
        assert_eq!(TusError::UnsupportedVersion.status(), 412);
    }

    #[test]
    fn core_412_answer_carries_tus_version_and_closes() {
        let mut res = Response::new(200);
        rejection(&mut res, &TusError::UnsupportedVersion, MAX);
        let text = encoded(&res);
        assert!(
            text.starts_with("HTTP/1.1 412 Precondition Failed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nTus-Version: 1.0.0\r\n"), "{text}");
        assert!(text.contains("\r\nTus-Resumable: 1.0.0\r\n"), "{text}");
        assert!(res.wants_close());
        assert!(
            text.ends_with("this server speaks Tus-Resumable: 1.0.0 (tus 1.0.0, Tus-Resumable)\n"),
            "{text}"
        );
    }

    #[test]
    fn creation_reads_length_and_metadata() {
        let v = "Tus-Resumable: 1.0.0";
        assert_eq!(
            route_of("POST /uploads", &[v, "Upload-Length: 0"]),
            Ok(Route::Tus(TusRequest::Create {
                length: 0,
                metadata: Metadata::default()
            }))
        );
        let Ok(Route::Tus(TusRequest::Create { length, metadata })) = route_of(
            "POST /uploads",
            &[
                v,
                "Upload-Length: 1000",
                "Upload-Metadata: filename YS5wbmc=,secret",
                "Content-Length: 0",
            ],
        ) else {
            panic!("refused")
        };
        assert_eq!(length, MAX);
        assert_eq!(metadata.get("filename"), Some(&b"a.png"[..]));
        assert_eq!(metadata.get("secret"), Some(&b""[..]));
        assert_eq!(metadata.raw(), "filename YS5wbmc=,secret");
        // An empty Upload-Metadata is accepted: no pairs.
        let Ok(Route::Tus(TusRequest::Create { metadata, .. })) = route_of(
            "POST /uploads/",
            &[v, "Upload-Length: 1", "Upload-Metadata:"],
        ) else {
            panic!("refused")
        };
        assert!(metadata.is_empty());
    }

    #[test]
    fn creation_upload_length_rules() {
        let v = "Tus-Resumable: 1.0.0";
        assert_eq!(err_of("POST /uploads", &[v]), TusError::MissingUploadLength);
        assert_eq!(
            err_of("POST /uploads", &[v, "Upload-Defer-Length: 1"]),
            TusError::MissingUploadLength
        );
        for bad in [
            "-1",
            "+5",
            "1.5",
            "abc",
            "1e3",
            "0x10",
            "18446744073709551616",
            "1 2",
        ] {
            let field = format!("Upload-Length: {bad}");
            assert_eq!(
                err_of("POST /uploads", &[v, &field]),
                TusError::InvalidUploadLength,
                "{bad}"
            );
        }
        assert_eq!(
            err_of("POST /uploads", &[v, "Upload-Length: 1001"]),
            TusError::TooLarge {
                length: 1001,
                max: MAX
            }
        );
        assert_eq!(
            err_of("POST /uploads", &[v, "Upload-Length: 1001"]).status(),
            413
        );
        assert_eq!(
            err_of(
                "POST /uploads",
                &[v, "Upload-Length: 5", "Upload-Length: 6"]
            ),
            TusError::DuplicateHeader("Upload-Length")
        );
        // creation-with-upload is not implemented: a body is refused.
        assert_eq!(
            err_of(
                "POST /uploads",
                &[v, "Upload-Length: 5", "Content-Length: 5"]
            ),
            TusError::CreationWithUpload
        );
        assert_eq!(
            err_of(
                "POST /uploads",
                &[v, "Upload-Length: 5", "Transfer-Encoding: chunked"]
            ),
            TusError::CreationWithUpload
        );
    }

    #[test]
    fn creation_413_answer_names_the_maximum() {
        let mut res = Response::new(200);
        rejection(
            &mut res,
            &TusError::TooLarge {
                length: 1001,
                max: MAX,
            },
            MAX,
        );
        let text = encoded(&res);
        assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
        assert!(text.contains("\r\nTus-Max-Size: 1000\r\n"), "{text}");
        assert!(
            text.ends_with(
                "1001 bytes is more than this server's maximum of 1000 bytes (Tus-Max-Size)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn creation_metadata_grammar() {
        let good: [(&[u8], usize); 6] = [
            (b"", 0),
            (b"   ", 0),
            (b"a", 1),
            (b"a YQ==", 1),
            (b"a YQ==, b, c Yw==", 3),
            (
                b"filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
                2,
            ),
        ];
        for (value, n) in good {
            let m = Metadata::parse(value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(m.pairs().count(), n, "{value:?}");
        }
        let bad: [&[u8]; 10] = [
            b"a YQ==,a Yg==",
            b"a,,b",
            b",a",
            b"a YQ",
            b"a Y Q==",
            b"a  YQ==",
            b"a !!!!",
            b"k\xc3\xa9 YQ==",
            b"a YQ==,",
            b"\x01 YQ==",
        ];
        for value in bad {
            let err = Metadata::parse(value).expect_err(&format!("{value:?} accepted"));
            assert!(
                matches!(err, TusError::InvalidMetadata(_)),
                "{value:?}: {err:?}"
            );
            assert_eq!(err.status(), 400);
        }
        assert_eq!(
            err_of(
                "POST /uploads",
                &[
                    "Tus-Resumable: 1.0.0",
                    "Upload-Length: 1",
                    "Upload-Metadata: a YQ==,a YQ=="
                ]
            ),
            TusError::InvalidMetadata("a key appears twice")
        );
    }

    #[test]
    fn creation_metadata_round_trip_and_binary_values() {
        let m = Metadata::from_pairs([
            ("filename", &b"r\xe9sum\xe9,1 2.pdf"[..]),
            ("flag", &b""[..]),
        ])
        .expect("valid keys");
        let back = Metadata::parse(m.raw().as_bytes()).expect("parses");
        assert_eq!(back.get("filename"), Some(&b"r\xe9sum\xe9,1 2.pdf"[..]));
        assert_eq!(back.get("flag"), Some(&b""[..]));
        assert_eq!(back.get("other"), None);
        assert!(Metadata::from_pairs([("a,b", &b"x"[..])]).is_err());
        assert!(Metadata::from_pairs([("", &b"x"[..])]).is_err());
    }

    #[test]
    fn core_head_and_delete_route_by_id() {
        let v = "Tus-Resumable: 1.0.0";
        let head = format!("HEAD /uploads/{ID}");
        assert_eq!(
            route_of(&head, &[v]),
            Ok(Route::Tus(TusRequest::Head { id: id() }))
        );
        let delete = format!("DELETE /uploads/{ID}?x=1");
        assert_eq!(
            route_of(&delete, &[v]),
            Ok(Route::Tus(TusRequest::Delete { id: id() }))
        );
        for bad in [
            "HEAD /uploads/nothing",
            "HEAD /uploads/00112233445566778899AABBCCDDEEFF",
            "HEAD /uploads/00112233445566778899aabbccddeeff0",
            "HEAD /uploads/../files/x",
            "HEAD /uploads/%30%30",
        ] {
            assert_eq!(err_of(bad, &[v]), TusError::UnknownUpload, "{bad}");
        }
        assert_eq!(TusError::UnknownUpload.status(), 404);
        for bad in [
            "GET /",
            "HEAD /upload",
            "HEAD /uploadsx",
            "GET /files",
            "GET /filesx/a",
        ] {
            assert_eq!(err_of(bad, &[v]), TusError::NotFound, "{bad}");
        }
    }

    #[test]
    fn core_head_answer_fields() {
        let mut res = Response::new(500);
        head_answer(&mut res, 0, 70, "filename YS5wbmc=");
        assert_eq!(
            encoded(&res),
            "HTTP/1.1 200 OK\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nUpload-Length: 70\r\n\
             Upload-Metadata: filename YS5wbmc=\r\nCache-Control: no-store\r\nContent-Length: 0\r\n\r\n"
        );
        let mut res = Response::new(500);
        head_answer(&mut res, 5, 70, "");
        let text = encoded(&res);
        assert!(!text.contains("Upload-Metadata"), "{text}");
        assert!(text.contains("\r\nUpload-Offset: 5\r\n"), "{text}");
    }

    #[test]
    fn core_patch_reads_offset_checksum_and_lengths() {
        let patch = format!("PATCH /uploads/{ID}");
        assert_eq!(
            route_of(&patch, &PATCH_OK),
            Ok(Route::Tus(TusRequest::Patch {
                id: id(),
                offset: 10,
                checksum: None,
                body_length: Some(5),
                upload_length: None,
            }))
        );
        let Ok(Route::Tus(TusRequest::Patch {
            checksum,
            body_length,
            upload_length,
            ..
        })) = route_of(
            &patch,
            &[
                "Tus-Resumable: 1.0.0",
                "Upload-Offset: 0",
                "Content-Type: Application/Offset+Octet-Stream; q=1",
                "Transfer-Encoding: chunked",
                "Upload-Checksum: sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                "Upload-Length: 99",
            ],
        )
        else {
            panic!("refused")
        };
        let sha1_empty: [u8; 20] = Sha1Empty::DIGEST;
        assert_eq!(checksum, Some(Checksum::Sha1(sha1_empty)));
        assert_eq!(body_length, None);
        assert_eq!(upload_length, Some(99));
        // No body at all: a part of zero bytes.
        let Ok(Route::Tus(TusRequest::Patch { body_length, .. })) =
            route_of(&patch, &PATCH_OK[..3])
        else {
            panic!("refused")
        };
        assert_eq!(body_length, Some(0));
    }

    /// sha1 of the empty string, da39a3ee5e6b4b0d3255bfef95601890afd80709.
    struct Sha1Empty;
    impl Sha1Empty {
        const DIGEST: [u8; 20] = [
            0xda, 0x39, 0xa3, 0xee, 0x5e, 0x6b, 0x4b, 0x0d, 0x32, 0x55, 0xbf, 0xef, 0x95, 0x60,
            0x18, 0x90, 0xaf, 0xd8, 0x07, 0x09,
        ];
    }

    #[test]
    fn core_patch_content_type_is_415() {
        let patch = format!("PATCH /uploads/{ID}");
        let base = &PATCH_OK[..2];
        for ct in [
            None,
            Some("Content-Type: application/octet-stream"),
            Some("Content-Type: text/plain"),
            Some("Content-Type: application/offset+octet-streams"),
            Some("Content-Type:"),
        ] {
            let mut fields = base.to_vec();
            fields.extend(ct);
            let err = err_of(&patch, &fields);
            assert_eq!(err, TusError::UnsupportedMediaType, "{ct:?}");
            assert_eq!(err.status(), 415);
        }
    }

    #[test]
    fn core_patch_offset_rules() {
        let patch = format!("PATCH /uploads/{ID}");
        let ct = "Content-Type: application/offset+octet-stream";
        let v = "Tus-Resumable: 1.0.0";
        assert_eq!(err_of(&patch, &[v, ct]), TusError::MissingUploadOffset);
        for bad in ["-1", "x", "", "1.0", "99999999999999999999"] {
            let field = format!("Upload-Offset: {bad}");
            assert_eq!(
                err_of(&patch, &[v, ct, &field]),
                TusError::InvalidUploadOffset,
                "{bad}"
            );
        }
        assert_eq!(
            err_of(&patch, &[v, ct, "Upload-Offset: 1", "Upload-Offset: 2"]),
            TusError::DuplicateHeader("Upload-Offset")
        );
        assert_eq!(
            err_of(&patch, &[v, ct, "Upload-Offset: 1", "Upload-Length: x"]),
            TusError::InvalidUploadLength
        );
    }

    #[test]
    fn checksum_header_rules() {
        let patch = format!("PATCH /uploads/{ID}");
        for (value, want) in [
            (
                "md5 1B2M2Y8AsgTpgAmY7PhCfg==",
                TusError::UnsupportedChecksum,
            ),
            ("crc32 AAAAAA==", TusError::UnsupportedChecksum),
            (
                "sha1",
                TusError::InvalidChecksum("expected ALGORITHM SP BASE64"),
            ),
            (
                "sha1 ***",
                TusError::InvalidChecksum("the digest is not base64"),
            ),
            (
                "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk",
                TusError::InvalidChecksum("the digest is not base64"),
            ),
            (
                "sha1 YQ==",
                TusError::InvalidChecksum("a sha1 digest is 20 bytes"),
            ),
            (
                "sha1  2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                TusError::InvalidChecksum("the digest is not base64"),
            ),
        ] {
            let field = format!("Upload-Checksum: {value}");
            let mut fields = PATCH_OK.to_vec();
            fields.push(&field);
            let err = err_of(&patch, &fields);
            assert_eq!(err, want, "{value}");
            assert_eq!(err.status(), 400, "{value}");
        }
        assert_eq!(
            Checksum::parse(b"SHA1 2jmj7l5rSw0yVb/vlWAYkK/YBwk="),
            Ok(Checksum::Sha1(Sha1Empty::DIGEST))
        );
        assert_eq!(
            Checksum::Sha1(Sha1Empty::DIGEST).header_value(),
            "sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
    }

    #[test]
    fn core_method_override_is_the_method() {
        let path = format!("POST /uploads/{ID}");
        let mut fields = PATCH_OK.to_vec();
        fields.push("X-HTTP-Method-Override: PATCH");
        assert!(matches!(
            route_of(&path, &fields),
            Ok(Route::Tus(TusRequest::Patch { .. }))
        ));
        assert_eq!(
            route_of(
                &path,
                &["Tus-Resumable: 1.0.0", "X-HTTP-Method-Override: DELETE"]
            ),
            Ok(Route::Tus(TusRequest::Delete { id: id() }))
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let get = format!("GET /uploads/{ID}");
        let put = format!("PUT /uploads/{ID}");
        let digest_post = format!("POST /uploads/{ID}/digest");
        for (start, allow) in [
            ("GET /uploads", "OPTIONS, POST"),
            ("DELETE /uploads", "OPTIONS, POST"),
            (get.as_str(), "OPTIONS, HEAD, PATCH, DELETE"),
            (put.as_str(), "OPTIONS, HEAD, PATCH, DELETE"),
            (digest_post.as_str(), "GET"),
            ("GET /files/a.jpg", "PUT"),
            ("POST /files/a.jpg", "PUT"),
        ] {
            let err = err_of(start, &["Tus-Resumable: 1.0.0"]);
            assert_eq!(err, TusError::MethodNotAllowed { allow }, "{start}");
            let mut res = Response::new(200);
            rejection(&mut res, &err, MAX);
            let text = encoded(&res);
            assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
            assert!(text.contains(&format!("\r\nAllow: {allow}\r\n")), "{text}");
        }
    }

    #[test]
    fn rfc9112_3_2_2_absolute_form_routes_by_its_path() {
        assert_eq!(
            route_of("OPTIONS http://example.com/uploads", &[]),
            Ok(Route::Tus(TusRequest::Options))
        );
        let head = format!("HEAD http://example.com:8080/uploads/{ID}");
        assert_eq!(
            route_of(&head, &["Tus-Resumable: 1.0.0"]),
            Ok(Route::Tus(TusRequest::Head { id: id() }))
        );
        assert!(matches!(
            err_of("PUT http://example.com/files/../x", &[]),
            TusError::InvalidName(_)
        ));
        assert_eq!(err_of("PUT http://example.com", &[]), TusError::NotFound);
    }

    #[test]
    fn digest_route() {
        let get = format!("GET /uploads/{ID}/digest");
        assert_eq!(route_of(&get, &[]), Ok(Route::Digest { id: id() }));
        assert_eq!(
            err_of("GET /uploads/xyz/digest", &[]),
            TusError::UnknownUpload
        );
    }

    #[test]
    fn whole_put_routes_with_its_name_and_length() {
        assert_eq!(
            route_of("PUT /files/cat%20photo.jpg?x=1", &["Content-Length: 1000"]),
            Ok(Route::Whole {
                name: "cat photo.jpg".into(),
                length: Some(1000)
            })
        );
        assert_eq!(
            route_of("PUT /files/a", &["Transfer-Encoding: chunked"]),
            Ok(Route::Whole {
                name: "a".into(),
                length: None
            })
        );
        assert_eq!(
            route_of("PUT /files/a", &[]),
            Ok(Route::Whole {
                name: "a".into(),
                length: Some(0)
            })
        );
        let err = err_of("PUT /files/a", &["Content-Length: 1001"]);
        assert_eq!(
            err,
            TusError::TooLarge {
                length: 1001,
                max: MAX
            }
        );
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn whole_hostile_names_are_400_never_404() {
        // Each as a raw request target: decided on the raw bytes, nothing
        // normalised away first.
        let hostile = [
            "/files/../x",
            "/files/a/x",
            "/files/a/../b",
            "/files/..",
            "/files/.",
            "/files/",
            "/files/%2e%2e",
            "/files/%2E%2E",
            "/files/.%2e",
            "/files/%2e",
            "/files/..%2fetc%2fpasswd",
            "/files/%2F",
            "/files/a%5cb",
            "/files/a%5Cb",
            "/files/a%00b",
            "/files/a%0ab",
            "/files/a%0Db",
            "/files/%7f",
            "/files/a%2",
            "/files/a%zz",
            "/files/%c3%28",
            "/files/%ff",
            "/files/a\"b",
            "/files/a<b",
            "/files/a|b",
            "/files/a^b",
            "/files/a`b",
            "/files/a{b",
        ];
        for target in hostile {
            let start = format!("PUT {target}");
            let err = err_of(&start, &["Content-Length: 1"]);
            assert!(matches!(err, TusError::InvalidName(_)), "{target}: {err:?}");
            assert_eq!(err.status(), 400, "{target}");
        }
        let long = "a".repeat(NAME_MAX + 1);
        assert!(file_name(long.as_bytes()).is_err());
        assert!(file_name("a".repeat(NAME_MAX).as_bytes()).is_ok());
        // Bytes the request parser lets through but a path must not hold raw.
        for raw in [&b"a\\b"[..], b"a b", b"a\x00b", b"caf\xc3\xa9", b"a\tb"] {
            assert!(
                matches!(file_name(raw), Err(TusError::InvalidName(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn whole_plain_names_are_accepted() {
        for (raw, name) in [
            ("a.jpg", "a.jpg"),
            (".hidden", ".hidden"),
            ("...", "..."),
            ("a..b", "a..b"),
            ("%2e%2e%2e", "..."),
            ("caf%C3%A9.png", "café.png"),
            (
                "a+b=c;d,e@f:g!h$i&j'k(l)m*n~o_p-q",
                "a+b=c;d,e@f:g!h$i&j'k(l)m*n~o_p-q",
            ),
            ("%25", "%"),
        ] {
            assert_eq!(file_name(raw.as_bytes()).as_deref(), Ok(name), "{raw}");
            assert_eq!(
                file_name(encode_name(name).as_bytes()).as_deref(),
                Ok(name),
                "{name}"
            );
        }
    }

    #[test]
    fn answers_carry_tus_resumable() {
        let mut res = Response::new(200);
        created_answer(&mut res, id());
        assert_eq!(
            encoded(&res),
            format!(
                "HTTP/1.1 201 Created\r\nTus-Resumable: 1.0.0\r\nLocation: /uploads/{ID}\r\nContent-Length: 0\r\n\r\n"
            )
        );
        let mut res = Response::new(200);
        patch_answer(&mut res, 42);
        assert_eq!(
            encoded(&res),
            "HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 42\r\n\r\n"
        );
        let mut res = Response::new(200);
        delete_answer(&mut res);
        assert_eq!(
            encoded(&res),
            "HTTP/1.1 204 No Content\r\nTus-Resumable: 1.0.0\r\n\r\n"
        );
        let mut res = Response::new(200);
        error_answer(&mut res, 460, &"checksum mismatch");
        let text = encoded(&res);
        assert!(
            text.starts_with("HTTP/1.1 460 \r\nTus-Resumable: 1.0.0\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nchecksum mismatch\n"), "{text}");
        assert!(res.wants_close());
    }

    #[test]
    fn stored_answer_body_is_the_stored_line() {
        let stored = super::super::Stored {
            name: "a.png".into(),
            size: 3,
            sha1: [1; 20],
        };
        let mut res = Response::new(500);
        stored_answer(&mut res, 201, &stored);
        let text = encoded(&res);
        assert!(text.starts_with("HTTP/1.1 201 Created\r\n"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).expect("a body");
        assert_eq!(super::super::Stored::parse(body), Some(stored));
    }
}
