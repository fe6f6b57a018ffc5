//! The command line, the requests the client builds, and uploads against the
//! upload service itself (`UploadApp` on the event loop) over real TCP: whole and
//! chunked, cut and resumed, refused.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha1::{Digest, Sha1};
use wirepatterns::http::{RequestParser, Status};
use wirepatterns::patterns::upload::UploadApp;
use wirepatterns::patterns::upload::store::UploadStore;
use wirepatterns::patterns::upload::tus::{Checksum, Metadata, Route, TusRequest, UploadId, route};
use wirepatterns::server::{Config, Running, Server};

use super::send::{self, Failure};
use super::wire::{self, Answer};
use super::{Command, CutAfter, Mode, SendOptions, parse_args, parse_size};

fn args(list: &[&str]) -> Result<Command, String> {
    parse_args(list.iter().map(|s| s.to_string()))
}

fn send_opts(list: &[&str]) -> SendOptions {
    match args(list) {
        Ok(Command::Send(o)) => o,
        other => panic!("{list:?}: {other:?}"),
    }
}

#[test]
fn send_flags_and_their_defaults() {
    let o = send_opts(&["send", "a.jpg", "--mode", "whole"]);
    assert_eq!(o.file, PathBuf::from("a.jpg"));
    assert_eq!(o.mode, Mode::Whole);
    assert_eq!(o.chunk_size, 1 << 20);
    assert_eq!(
        o.addr,
        "127.0.0.1:8080".parse::<SocketAddr>().expect("addr")
    );
    assert_eq!(o.host, "127.0.0.1:8080");
    assert_eq!(o.cut_after, None);
    assert!(o.checksum);
    assert_eq!(o.timeout, Duration::from_secs(30));
    let o = send_opts(&[
        "send",
        "--mode=chunked",
        "--chunk-size",
        "64K",
        "b.bin",
        "--addr=127.0.0.1:9",
        "--cut-after",
        "90%",
        "--timeout",
        "0.5",
        "--no-checksum",
    ]);
    assert!(!o.checksum);
    assert_eq!(o.file, PathBuf::from("b.bin"));
    assert_eq!(o.mode, Mode::Chunked);
    assert_eq!(o.chunk_size, 64 << 10);
    assert_eq!(o.addr.port(), 9);
    assert_eq!(o.cut_after, Some(CutAfter::Percent(90.0)));
    assert_eq!(o.timeout, Duration::from_millis(500));
    let o = send_opts(&["send", "c", "--mode", "whole", "--cut-after", "1M"]);
    assert_eq!(o.cut_after, Some(CutAfter::Bytes(1 << 20)));
}

#[test]
fn bad_command_lines_are_one_line_errors() {
    for (list, want) in [
        (&[][..], "expected a command"),
        (&["upload"][..], "unknown command upload"),
        (&["send", "--mode", "whole"][..], "send needs a FILE"),
        (&["send", "a"][..], "send needs --mode"),
        (
            &["send", "a", "--mode", "half"][..],
            "--mode half: expected whole or chunked",
        ),
        (&["send", "a", "--mode"][..], "--mode needs a value"),
        (
            &["send", "a", "b", "--mode", "whole"][..],
            "unexpected argument b",
        ),
        (
            &["send", "a", "--mode", "whole", "--chunk-size", "0"][..],
            "must be from 1 byte",
        ),
        (
            &["send", "a", "--mode", "whole", "--chunk-size", "257M"][..],
            "must be from 1 byte",
        ),
        (
            &["send", "a", "--mode", "whole", "--chunk-size", "1X"][..],
            "expected a size",
        ),
        (
            &["send", "a", "--mode", "whole", "--cut-after", "101%"][..],
            "from 0% to 100%",
        ),
        (
            &["send", "a", "--mode", "whole", "--cut-after", "-1%"][..],
            "from 0% to 100%",
        ),
        (
            &["send", "a", "--mode", "whole", "--cut-after", "x"][..],
            "expected a size",
        ),
        (
            &["send", "a", "--mode", "whole", "--timeout", "0"][..],
            "above 0",
        ),
        (
            &["send", "a", "--mode", "whole", "--addr", "nowhere"][..],
            "--addr nowhere: expected HOST:PORT",
        ),
        (
            &["send", "a", "--mode", "whole", "--verbose"][..],
            "unknown flag --verbose",
        ),
        (
            &["send", "a", "--mode", "whole", "--no-checksum=1"][..],
            "--no-checksum takes no value",
        ),
    ] {
        let err = args(list).expect_err(&format!("{list:?} accepted"));
        assert!(err.contains(want), "{list:?}: {err}");
        assert!(!err.contains('\n'), "{list:?}: {err}");
    }
}

#[test]
fn help_and_serve() {
    assert_eq!(args(&["--help"]), Ok(Command::Help));
    assert_eq!(args(&["send", "a", "-h"]), Ok(Command::Help));
    assert_eq!(
        args(&["serve", "--dir", "/tmp/x"]),
        Ok(Command::Serve(vec!["--dir".into(), "/tmp/x".into()]))
    );
}

#[test]
fn sizes() {
    for (text, want) in [
        ("0", Some(0)),
        ("512", Some(512)),
        ("512B", Some(512)),
        ("64K", Some(65_536)),
        ("64k", Some(65_536)),
        ("64KiB", Some(65_536)),
        ("1M", Some(1 << 20)),
        ("16MiB", Some(16 << 20)),
        ("2G", Some(2 << 30)),
        ("", None),
        ("M", None),
        ("1.5M", None),
        ("-1", None),
        ("1T", None),
        ("1 M", None),
        ("99999999999999999999", None),
        ("17179869184G", None),
    ] {
        assert_eq!(parse_size(text), want, "{text:?}");
    }
    assert_eq!(CutAfter::Percent(90.0).bytes(1000), 900);
    assert_eq!(CutAfter::Percent(100.0).bytes(1000), 1000);
    assert_eq!(CutAfter::Bytes(7).bytes(1000), 7);
}

/// Parses `head` with the library's request parser and routes it as the server
/// does.
fn routed(head: &str) -> Route {
    let mut parser = RequestParser::default();
    match parser.parse(head.as_bytes()) {
        Ok(Status::Complete(req)) => {
            assert_eq!(req.head_len(), head.len(), "{head:?}");
            route(&req, 1 << 30).unwrap_or_else(|e| panic!("{head:?} refused: {e}"))
        }
        other => panic!("{head:?}: {other:?}"),
    }
}

#[test]
fn the_requests_follow_the_servers_rules() {
    let head = wire::put_head("127.0.0.1:8080", "cat photo.jpg", 1234);
    assert_eq!(
        head,
        "PUT /files/cat%20photo.jpg HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1234\r\n\r\n"
    );
    assert_eq!(
        routed(&head),
        Route::Whole {
            name: "cat photo.jpg".into(),
            length: Some(1234)
        }
    );

    let metadata = Metadata::from_pairs([("filename", &b"a.png"[..])]).expect("valid");
    let head = wire::create_head("h:1", 99, &metadata);
    assert_eq!(
        head,
        "POST /uploads HTTP/1.1\r\nHost: h:1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 99\r\n\
         Upload-Metadata: filename YS5wbmc=\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(
        routed(&head),
        Route::Tus(TusRequest::Create {
            length: 99,
            metadata
        })
    );

    let id = UploadId::from_bytes([0xab; 16]);
    let path = id.path();
    let checksum = Checksum::Sha1(Sha1::digest(b"abc").into());
    let head = wire::patch_head("h:1", &path, 10, 3, Some(&checksum));
    assert_eq!(
        head,
        format!(
            "PATCH {path} HTTP/1.1\r\nHost: h:1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 10\r\n\
             Content-Type: application/offset+octet-stream\r\nContent-Length: 3\r\n\
             Upload-Checksum: sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=\r\n\r\n"
        )
    );
    assert_eq!(
        routed(&head),
        Route::Tus(TusRequest::Patch {
            id,
            offset: 10,
            checksum: Some(checksum),
            body_length: Some(3),
            upload_length: None
        })
    );
    let head = wire::patch_head("h:1", &path, 10, 3, None);
    assert!(!head.contains("Upload-Checksum"), "{head}");
    assert!(matches!(
        routed(&head),
        Route::Tus(TusRequest::Patch { checksum: None, .. })
    ));
    assert_eq!(
        routed(&wire::head_head("h:1", &path)),
        Route::Tus(TusRequest::Head { id })
    );
    assert_eq!(
        routed(&wire::digest_head("h:1", &path)),
        Route::Digest { id }
    );
}

#[test]
fn locations() {
    for (location, want) in [
        ("/uploads/ab", Ok("/uploads/ab")),
        ("http://127.0.0.1:8080/uploads/ab", Ok("/uploads/ab")),
        ("https://example.com/x/uploads/ab", Ok("/x/uploads/ab")),
        ("uploads/ab", Err(())),
        ("/uploads/a b", Err(())),
    ] {
        let got = wire::location_path(location.as_bytes());
        assert_eq!(got.as_deref().map_err(|_| ()), want, "{location}");
    }
}

#[test]
fn connection_close_is_read_from_the_answer() {
    let answer = |v: &str| Answer {
        status: 200,
        headers: vec![("connection".into(), v.as_bytes().to_vec())],
        body: b"first line\nsecond\n".to_vec(),
    };
    assert!(answer("close").closes());
    assert!(answer("keep-alive, Close").closes());
    assert!(!answer("keep-alive").closes());
    assert_eq!(answer("close").reason(), "first line");
}

// ---------------------------------------------------------------------------
// Uploads against the upload service.
// ---------------------------------------------------------------------------

/// A directory of its own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "wirepatterns-upload-client-{}-{test}-{n}",
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

/// The upload service itself (`UploadApp` on the event loop), on a free
/// loopback port, stopped when dropped.
struct StandIn {
    addr: SocketAddr,
    server: Option<Running<UploadApp>>,
}

impl StandIn {
    fn start(dir: &Path, max_size: u64) -> StandIn {
        let (store, _) = UploadStore::open(dir, max_size).expect("store");
        let config = Config::new("127.0.0.1:0".parse().expect("addr"));
        let server = Server::bind(config, UploadApp::new(store))
            .and_then(Server::spawn)
            .expect("server");
        StandIn {
            addr: server.addr,
            server: Some(server),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.stop();
        }
    }
}

/// A file of `size` bytes that are not all the same.
fn sample(dir: &TempDir, name: &str, size: usize) -> PathBuf {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
    let path = dir.0.join(name);
    fs::write(&path, bytes).expect("written");
    path
}

fn opts(
    file: &Path,
    mode: Mode,
    addr: SocketAddr,
    chunk: u64,
    cut: Option<CutAfter>,
) -> SendOptions {
    SendOptions {
        file: file.to_path_buf(),
        mode,
        chunk_size: chunk,
        addr,
        host: addr.to_string(),
        cut_after: cut,
        checksum: true,
        timeout: Duration::from_secs(10),
    }
}

/// A number from the report's line that starts with `label`.
fn row<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
}

#[test]
fn whole_upload_stores_the_file_and_checks_its_digest() {
    let dir = TempDir::new("whole");
    let file = sample(&dir, "cat photo.jpg", 300_000);
    let server = StandIn::start(&dir.0.join("store"), 1 << 30);
    let outcome = send::run(&opts(&file, Mode::Whole, server.addr, 1 << 20, None))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outcome.matches, "{}", outcome.text);
    assert_eq!(row(&outcome.text, "requests"), "1");
    assert_eq!(
        row(&outcome.text, "re-sent after cut"),
        "0 B  0.00% of the file"
    );
    assert!(
        outcome
            .text
            .contains("digest             matches the local file"),
        "{}",
        outcome.text
    );
    let stored = fs::read(dir.0.join("store/files/cat photo.jpg")).expect("stored");
    assert_eq!(stored, fs::read(&file).expect("file"));
}

#[test]
fn whole_upload_cut_starts_over_and_resends_what_was_sent() {
    let dir = TempDir::new("whole-cut");
    let file = sample(&dir, "a.bin", 200_000);
    let server = StandIn::start(&dir.0.join("store"), 1 << 30);
    let cut = Some(CutAfter::Bytes(150_000));
    let outcome = send::run(&opts(&file, Mode::Whole, server.addr, 1 << 20, cut))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outcome.matches, "{}", outcome.text);
    assert_eq!(row(&outcome.text, "requests"), "2");
    assert_eq!(row(&outcome.text, "connections"), "2");
    // Everything sent before the cut is sent again: 150,000 bytes.
    assert_eq!(
        row(&outcome.text, "re-sent after cut"),
        "146 KiB  75.00% of the file"
    );
    assert!(
        outcome
            .text
            .contains("cut the connection after 146 KiB of body, then started over")
    );
    let files: Vec<_> = fs::read_dir(dir.0.join("store/files"))
        .expect("dir")
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        fs::read_dir(dir.0.join("store/tmp")).expect("dir").count(),
        0
    );
}

#[test]
fn chunked_upload_in_parts_on_one_connection() {
    let dir = TempDir::new("chunked");
    let file = sample(&dir, "b.bin", 100_000);
    let server = StandIn::start(&dir.0.join("store"), 1 << 30);
    let outcome = send::run(&opts(&file, Mode::Chunked, server.addr, 16 * 1024, None))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outcome.matches, "{}", outcome.text);
    // POST, 7 PATCHes (6 of 16 KiB and one of 1,696 bytes), the digest GET.
    assert_eq!(row(&outcome.text, "requests"), "9");
    assert_eq!(row(&outcome.text, "connections"), "1");
    assert_eq!(row(&outcome.text, "body bytes sent"), "97.7 KiB");
}

#[test]
fn chunked_upload_cut_resumes_from_head_and_resends_only_the_part() {
    let dir = TempDir::new("chunked-cut");
    let file = sample(&dir, "c.bin", 100_000);
    let server = StandIn::start(&dir.0.join("store"), 1 << 30);
    // The cut falls 4,000 bytes into the fourth part (parts of 10,000): that part
    // carried a checksum, so the server discards it, and those 4,000 bytes are
    // sent again after HEAD says 30,000.
    let cut = Some(CutAfter::Bytes(34_000));
    let outcome = send::run(&opts(&file, Mode::Chunked, server.addr, 10_000, cut))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outcome.matches, "{}", outcome.text);
    assert_eq!(
        row(&outcome.text, "re-sent after cut"),
        "3.91 KiB  4.00% of the file"
    );
    // POST, 3 PATCHes, the cut PATCH, HEAD, 7 PATCHes, GET.
    assert_eq!(row(&outcome.text, "requests"), "14");
    assert_eq!(row(&outcome.text, "connections"), "2");
    assert!(outcome.text.contains("then resumed from HEAD's offset"));
}

#[test]
fn chunked_upload_without_checksums_keeps_the_cut_part() {
    let dir = TempDir::new("chunked-cut-unchecked");
    let file = sample(&dir, "f.bin", 100_000);
    let server = StandIn::start(&dir.0.join("store"), 1 << 30);
    let mut o = opts(
        &file,
        Mode::Chunked,
        server.addr,
        10_000,
        Some(CutAfter::Bytes(34_000)),
    );
    o.checksum = false;
    let outcome = send::run(&o).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(outcome.matches, "{}", outcome.text);
    // The 4,000 bytes of the cut part that arrived were kept: HEAD says 34,000
    // and nothing is sent twice.
    assert_eq!(
        row(&outcome.text, "re-sent after cut"),
        "0 B  0.00% of the file"
    );
    // POST, 3 PATCHes, the cut PATCH, HEAD, 7 PATCHes (the first of 6,000 bytes),
    // GET.
    assert_eq!(row(&outcome.text, "requests"), "14");
    assert!(
        outcome.text.contains("parts of 9.77 KiB without checksums"),
        "{}",
        outcome.text
    );
}

#[test]
fn a_refused_connection_and_a_missing_file_fail_differently() {
    let dir = TempDir::new("refused");
    let file = sample(&dir, "d.bin", 10);
    // A port nobody listens on: bind one, then free it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    match send::run(&opts(&file, Mode::Whole, addr, 1024, None)) {
        Err(Failure::Failed(e)) => assert!(e.starts_with("cannot connect to "), "{e}"),
        other => panic!("{:?}", other.map(|o| o.text)),
    }
    match send::run(&opts(&dir.0.join("missing"), Mode::Whole, addr, 1024, None)) {
        Err(Failure::Usage(e)) => assert!(e.starts_with("cannot read "), "{e}"),
        other => panic!("{:?}", other.map(|o| o.text)),
    }
}

#[test]
fn a_refusal_is_reported_with_its_reason() {
    let dir = TempDir::new("too-large");
    let file = sample(&dir, "e.bin", 2_000);
    let server = StandIn::start(&dir.0.join("store"), 1_000);
    for mode in [Mode::Whole, Mode::Chunked] {
        match send::run(&opts(&file, mode, server.addr, 1024, None)) {
            Err(Failure::Failed(e)) => assert!(e.contains("the server answered 413"), "{e}"),
            other => panic!("{:?}", other.map(|o| o.text)),
        }
    }
}
