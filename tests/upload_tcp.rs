//! The upload service over real TCP, with a temporary directory: whole files
//! streamed to disk and renamed into place only when complete; tus 1.0.0
//! uploads in parts, resumed after a cut; and every refusal answered before the
//! body is read, with nothing written.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};
use wirepatterns::patterns::upload::tus::Checksum;
use wirepatterns::patterns::upload::{UploadApp, UploadStore};
use wirepatterns::server::{Config, Running, Server};

const MAX: u64 = 64 * 1024 * 1024;

/// A fresh directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "wirepatterns-upload-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(dir: &Path) -> Running<UploadApp> {
    start_buffering(dir, wirepatterns::patterns::upload::server::WRITE_BUFFER)
}

/// The loop's largest read buffer in these tests.
const MAX_READ: usize = 64 * 1024;

fn start_buffering(dir: &Path, write_buffer: usize) -> Running<UploadApp> {
    let (store, _) = UploadStore::open(dir, MAX).expect("store");
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"));
    config.max_read_buffer_bytes = MAX_READ;
    Server::bind(
        config,
        UploadApp::new(store).with_write_buffer(write_buffer),
    )
    .and_then(Server::spawn)
    .expect("server")
}

#[test]
fn an_upload_faster_than_its_write_buffer_is_paced_and_held_to_its_bound() {
    let dir = TempDir::new("paced");
    const BUFFER: usize = 16 * 1024;
    let server = start_buffering(&dir.0, BUFFER);
    // 4 MiB in one request, written as fast as TCP takes it: far more than the
    // handler's buffer, so it must pause the connection again and again.
    let data = pattern(4 * 1024 * 1024);
    let mut stream = connect(&server);
    let answer = exchange(&mut stream, "PUT", "/files/big.bin", &[], &data);
    assert_eq!(answer.status, 201, "{}", answer.head);
    assert!(
        answer
            .body
            .ends_with(&format!("sha1 {}\n", sha1_hex(&data)))
    );
    let app = server.stop().expect("stops");
    let stats = *app.stats();
    assert!(stats.pauses > 0, "the handler paused its client: {stats:?}");
    assert!(
        stats.peak_buffered < (BUFFER + MAX_READ) as u64,
        "held at most its buffer and one read: {stats:?}"
    );
    assert!(
        stats.writes >= (data.len() / (BUFFER + MAX_READ)) as u64,
        "{stats:?}"
    );
    assert!(std::fs::read(dir.0.join("files/big.bin")).expect("stored") == data);
}

fn connect(server: &Running<UploadApp>) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// One response: status, head, body (by Content-Length; none for 204 and HEAD).
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn read_answer(stream: &mut TcpStream, head_only: bool) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head[9..12].parse().expect("status");
            let len: usize = if head_only || status == 204 {
                0
            } else {
                head.lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0)
            };
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Answer { status, head, body };
            }
        }
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a request (head fields given as lines) with `body`, reads the answer.
fn exchange(
    stream: &mut TcpStream,
    method: &str,
    target: &str,
    fields: &[&str],
    body: &[u8],
) -> Answer {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n");
    for f in fields {
        head.push_str(f);
        head.push_str("\r\n");
    }
    let declared = fields.iter().any(|f| f.starts_with("Content-Length:"));
    if !declared && (!body.is_empty() || method == "PUT" || method == "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(body).expect("body");
    read_answer(stream, method == "HEAD")
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

const TUS: &str = "Tus-Resumable: 1.0.0";

/// Creates an upload of `length` bytes; returns its path.
fn create(stream: &mut TcpStream, length: usize) -> String {
    let answer = exchange(
        stream,
        "POST",
        "/uploads",
        &[
            TUS,
            &format!("Upload-Length: {length}"),
            "Upload-Metadata: filename Y2F0LmpwZw==",
        ],
        b"",
    );
    assert_eq!(answer.status, 201, "{}", answer.head);
    answer.header("Location").expect("Location").to_string()
}

fn offset(stream: &mut TcpStream, upload: &str) -> u64 {
    let answer = exchange(stream, "HEAD", upload, &[TUS], b"");
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.header("Cache-Control"), Some("no-store"));
    answer
        .header("Upload-Offset")
        .and_then(|v| v.parse().ok())
        .expect("Upload-Offset")
}

fn patch(stream: &mut TcpStream, upload: &str, at: u64, part: &[u8], checksum: bool) -> Answer {
    let digest: [u8; 20] = Sha1::digest(part).into();
    let check = Checksum::Sha1(digest).header_value();
    let mut fields = vec![
        TUS.to_string(),
        format!("Upload-Offset: {at}"),
        "Content-Type: application/offset+octet-stream".to_string(),
    ];
    if checksum {
        fields.push(format!("Upload-Checksum: {check}"));
    }
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    exchange(stream, "PATCH", upload, &fields, part)
}

#[test]
fn a_whole_file_is_stored_with_its_digest_and_a_cut_one_leaves_nothing() {
    let dir = TempDir::new("whole");
    let server = start(&dir.0);
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut stream = connect(&server);
    let answer = exchange(&mut stream, "PUT", "/files/cat.jpg", &[], &data);
    assert_eq!(answer.status, 201, "{}", answer.head);
    assert_eq!(
        answer.body,
        format!(
            "stored cat.jpg: {} bytes, sha1 {}\n",
            data.len(),
            sha1_hex(&data)
        )
    );
    assert!(std::fs::read(dir.0.join("files/cat.jpg")).expect("stored") == data);

    // A second file, cut halfway: nothing appears under its name.
    let mut cut = connect(&server);
    cut.write_all(
        format!(
            "PUT /files/dog.jpg HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .as_bytes(),
    )
    .expect("head");
    cut.write_all(&data[..data.len() / 2]).expect("half");
    drop(cut);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_receiving(&dir.0) {
        assert!(Instant::now() < deadline, "the temporary file stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.stop().expect("stops");
    assert!(
        !dir.0.join("files/dog.jpg").exists(),
        "a cut upload leaves no file"
    );
}

/// Whether a whole file is still arriving (its temporary file exists).
fn server_receiving(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("tmp")).is_ok_and(|mut d| d.next().is_some())
}

#[test]
fn a_tus_upload_in_checked_parts_is_stored_whole_and_its_digest_matches() {
    let dir = TempDir::new("tus");
    let server = start(&dir.0);
    let data = pattern(2 * 1024 * 1024 + 5);
    let mut stream = connect(&server);
    let options = exchange(&mut stream, "OPTIONS", "/uploads", &[], b"");
    assert_eq!(options.status, 204);
    assert_eq!(options.header("Tus-Version"), Some("1.0.0"));
    assert_eq!(options.header("Tus-Checksum-Algorithm"), Some("sha1"));
    let upload = create(&mut stream, data.len());
    let mut at = 0;
    // All parts on one kept-alive connection.
    for part in data.chunks(512 * 1024) {
        let answer = patch(&mut stream, &upload, at, part, true);
        assert_eq!(answer.status, 204, "{}", answer.head);
        assert_eq!(answer.header("Tus-Resumable"), Some("1.0.0"));
        at += part.len() as u64;
        assert_eq!(
            answer.header("Upload-Offset"),
            Some(at.to_string().as_str())
        );
    }
    assert_eq!(offset(&mut stream, &upload), data.len() as u64);
    let digest = exchange(&mut stream, "GET", &format!("{upload}/digest"), &[], b"");
    assert_eq!(digest.status, 200);
    assert!(digest.body.ends_with(&format!(
        ": {} bytes, sha1 {}\n",
        data.len(),
        sha1_hex(&data)
    )));
    server.stop().expect("stops");
}

#[test]
fn a_chunked_patch_body_is_a_part_like_any_other() {
    let dir = TempDir::new("chunked-patch");
    let server = start(&dir.0);
    let data = pattern(300_000);
    let mut stream = connect(&server);
    let upload = create(&mut stream, data.len());
    // The part's length is not declared: it ends with the last chunk.
    let mut wire = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: t\r\n{TUS}\r\nUpload-Offset: 0\r\n\
         Content-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in data.chunks(20_000) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&wire).expect("write");
    let answer = read_answer(&mut stream, false);
    assert_eq!(answer.status, 204, "{}", answer.head);
    assert_eq!(answer.header("Upload-Offset"), Some("300000"));
    // Kept alive: the digest on the same connection.
    let digest = exchange(&mut stream, "GET", &format!("{upload}/digest"), &[], b"");
    assert!(
        digest
            .body
            .ends_with(&format!("sha1 {}\n", sha1_hex(&data))),
        "{}",
        digest.body
    );
    server.stop().expect("stops");
}

#[test]
fn a_cut_part_keeps_what_arrived_and_the_upload_resumes_from_head() {
    let dir = TempDir::new("resume");
    let server = start(&dir.0);
    let data = pattern(1024 * 1024);
    let mut stream = connect(&server);
    let upload = create(&mut stream, data.len());
    // One part for everything, without a checksum, cut after 300 kB.
    let mut cut = connect(&server);
    cut.write_all(
        format!(
            "PATCH {upload} HTTP/1.1\r\nHost: t\r\n{TUS}\r\nUpload-Offset: 0\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .as_bytes(),
    )
    .expect("head");
    cut.write_all(&data[..300_000]).expect("part");
    drop(cut);
    // Once the cut part has ended (an empty PATCH at the offset is 423 while a
    // part is in flight, or 409 if its bytes moved the offset since the HEAD;
    // 204 after), the offset HEAD reports is what is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let at = offset(&mut stream, &upload);
        let answer = patch(&mut stream, &upload, at, b"", false);
        if answer.status == 204 {
            break at;
        }
        assert!(matches!(answer.status, 409 | 423), "{}", answer.head);
        assert!(Instant::now() < deadline, "the cut part never ended");
        std::thread::sleep(Duration::from_millis(20));
        stream = connect(&server);
    };
    let stored = std::fs::metadata(
        dir.0
            .join("uploads")
            .join(upload.trim_start_matches("/uploads/")),
    )
    .expect("the upload's file")
    .len();
    assert_eq!(stored, kept, "HEAD reports exactly what is on disk");
    assert!(kept > 0 && kept <= 300_000, "{kept}");
    // Resume from there.
    let answer = patch(&mut stream, &upload, kept, &data[kept as usize..], true);
    assert_eq!(answer.status, 204, "{}", answer.head);
    let digest = exchange(&mut stream, "GET", &format!("{upload}/digest"), &[], b"");
    assert!(
        digest
            .body
            .ends_with(&format!("sha1 {}\n", sha1_hex(&data))),
        "{}",
        digest.body
    );
    server.stop().expect("stops");
}

#[test]
fn refusals_come_before_the_body_and_change_nothing() {
    let dir = TempDir::new("refusals");
    let server = start(&dir.0);
    let mut stream = connect(&server);
    let upload = create(&mut stream, 1000);
    assert_eq!(
        patch(&mut stream, &upload, 0, &pattern(100), false).status,
        204
    );

    // The wrong offset: 409, nothing written, the connection closed.
    let mut s = connect(&server);
    let answer = patch(&mut s, &upload, 50, &pattern(100), false);
    assert_eq!(answer.status, 409, "{}", answer.head);
    assert!(answer.head.contains("Connection: close"), "{}", answer.head);
    let mut s = connect(&server);
    assert_eq!(offset(&mut s, &upload), 100, "nothing written");

    // A checksum that does not match: 460, the part discarded.
    let mut s = connect(&server);
    let mut part = pattern(100);
    let sent = patch_with_wrong_checksum(&mut s, &upload, 100, &mut part);
    assert_eq!(sent.status, 460, "{}", sent.head);
    let mut s = connect(&server);
    assert_eq!(offset(&mut s, &upload), 100, "the part was discarded");

    // A part declared past the upload's length: 413 before its body.
    let mut s = connect(&server);
    let answer = exchange(
        &mut s,
        "PATCH",
        &upload,
        &[
            TUS,
            "Upload-Offset: 100",
            "Content-Type: application/offset+octet-stream",
            "Content-Length: 5000",
            "Expect: 100-continue",
        ],
        b"",
    );
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert!(!answer.head.contains("100 Continue"), "{}", answer.head);

    // The wrong content type: 415. No Tus-Resumable: 412 with Tus-Version.
    let mut s = connect(&server);
    let answer = exchange(
        &mut s,
        "PATCH",
        &upload,
        &[TUS, "Upload-Offset: 100", "Content-Type: text/plain"],
        b"abc",
    );
    assert_eq!(answer.status, 415, "{}", answer.head);
    let mut s = connect(&server);
    let answer = exchange(&mut s, "POST", "/uploads", &["Upload-Length: 10"], b"");
    assert_eq!(answer.status, 412, "{}", answer.head);
    assert_eq!(answer.header("Tus-Version"), Some("1.0.0"));

    // Names that try to leave the directory: 400, never a 404 from a normalised
    // path, and no file anywhere.
    for target in [
        "/files/../x",
        "/files/a/x",
        "/files/%2e%2e",
        "/files/a%2Fb",
        "/files/..%2Fx",
        "/files/%00x",
    ] {
        let mut s = connect(&server);
        let answer = exchange(&mut s, "PUT", target, &[], b"abc");
        assert_eq!(answer.status, 400, "{target}: {}", answer.head);
    }
    // An unknown upload: 404.
    let mut s = connect(&server);
    assert_eq!(
        exchange(
            &mut s,
            "HEAD",
            "/uploads/00000000000000000000000000000000",
            &[TUS],
            b""
        )
        .status,
        404
    );
    server.stop().expect("stops");
    let files: Vec<_> = std::fs::read_dir(dir.0.join("files"))
        .expect("files")
        .flatten()
        .collect();
    assert!(files.is_empty(), "{files:?}");
    assert!(!dir.0.join("x").exists());
}

fn patch_with_wrong_checksum(s: &mut TcpStream, upload: &str, at: u64, part: &mut [u8]) -> Answer {
    let digest: [u8; 20] = Sha1::digest(b"something else").into();
    let check = Checksum::Sha1(digest).header_value();
    exchange(
        s,
        "PATCH",
        upload,
        &[
            TUS,
            &format!("Upload-Offset: {at}"),
            "Content-Type: application/offset+octet-stream",
            &format!("Upload-Checksum: {check}"),
        ],
        part,
    )
}
