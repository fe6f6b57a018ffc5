//! The command line, the requests the client builds, and whole uploads against a
//! stand-in server made of the library's pieces (`tus::route`, `UploadStore`,
//! the request parser and body decoder) over real TCP, one connection at a time.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha1::{Digest, Sha1};
use wirepatterns::http::response::Encoding;
use wirepatterns::http::{BodyDecoder, Limits, RequestParser, Response, Status};
use wirepatterns::patterns::upload::store::UploadStore;
use wirepatterns::patterns::upload::tus::{
    self, Checksum, Metadata, Route, TusRequest, UploadId, route,
};

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
// Whole uploads against a stand-in server.
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

/// A blocking stand-in for the upload server, built only from the library's
/// sans-I/O pieces: one connection at a time, on its own thread, until stopped.
struct StandIn {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    fn start(dir: &Path, max_size: u64) -> StandIn {
        let (store, _) = UploadStore::open(dir, max_size).expect("store");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut store = store;
            // Bounded: no test opens this many connections.
            for _ in 0..10_000 {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                serve_conn(stream, &mut store);
            }
        });
        StandIn {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a request's head said, copied out of the buffer.
struct Head {
    route: Result<Route, tus::TusError>,
    head_len: usize,
    framing: wirepatterns::http::Framing,
    version: wirepatterns::http::Version,
    is_head: bool,
    keep_alive: bool,
}

/// Serves one connection until it ends: every request routed by `tus::route`,
/// bodies streamed into the store as they arrive.
fn serve_conn(mut stream: TcpStream, store: &mut UploadStore) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let max = store.max_size();
    let mut buf = Vec::new();
    let mut parser = RequestParser::default();
    let mut chunk = vec![0u8; 64 * 1024];
    // Bounded by the requests a test sends on one connection.
    for _ in 0..100_000 {
        let head = loop {
            match parser.parse(&buf) {
                Ok(Status::Complete(req)) => {
                    break Head {
                        route: route(&req, max),
                        head_len: req.head_len(),
                        framing: req.framing(),
                        version: req.version(),
                        is_head: req.method() == "HEAD",
                        keep_alive: req.keep_alive(),
                    };
                }
                Ok(Status::Partial) => match stream.read(&mut chunk) {
                    Ok(n) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    _ => return,
                },
                Err(_) => return,
            }
        };
        buf.drain(..head.head_len);
        let mut res = Response::new(200);
        match head.route {
            Err(e) => tus::rejection(&mut res, &e, max),
            Ok(Route::Tus(TusRequest::Options)) => tus::options_answer(&mut res, max),
            Ok(Route::Tus(TusRequest::Create { length, metadata })) => {
                match store.create(length, &metadata) {
                    Ok(id) => tus::created_answer(&mut res, id),
                    Err(e) => tus::error_answer(&mut res, e.status(), &e),
                }
            }
            Ok(Route::Tus(TusRequest::Head { id })) => match store.info(id) {
                Ok(i) => tus::head_answer(&mut res, i.offset, i.length, &i.metadata),
                Err(e) => tus::error_answer(&mut res, e.status(), &e),
            },
            Ok(Route::Tus(TusRequest::Delete { id })) => match store.delete(id) {
                Ok(()) => tus::delete_answer(&mut res),
                Err(e) => tus::error_answer(&mut res, e.status(), &e),
            },
            Ok(Route::Digest { id }) => match store.digest(id) {
                Ok(s) => tus::stored_answer(&mut res, 200, &s),
                Err(e) => tus::error_answer(&mut res, e.status(), &e),
            },
            Ok(Route::Tus(TusRequest::Patch {
                id,
                offset,
                checksum,
                body_length,
                upload_length,
            })) => {
                let mut part =
                    match store.begin_part(id, offset, body_length, upload_length, checksum) {
                        Ok(p) => p,
                        Err(e) => {
                            tus::error_answer(&mut res, e.status(), &e);
                            write_answer(&mut stream, &res, &head.version, head.is_head);
                            return;
                        }
                    };
                let complete = body(&mut stream, &mut buf, head.framing, |bytes| {
                    store.write_part(&mut part, bytes).is_ok()
                });
                if !complete {
                    let _ = store.abort_part(part);
                    return;
                }
                match store.finish_part(part) {
                    Ok(end) => tus::patch_answer(&mut res, end.offset),
                    Err(e) => tus::error_answer(&mut res, e.status(), &e),
                }
            }
            Ok(Route::Whole { name, .. }) => {
                let Ok(mut whole) = store.begin_whole(&name) else {
                    return;
                };
                let complete = body(&mut stream, &mut buf, head.framing, |bytes| {
                    whole.write(bytes).is_ok()
                });
                if !complete {
                    let _ = store.abort_whole(whole);
                    return;
                }
                match store.finish_whole(whole) {
                    Ok((s, replaced)) => {
                        tus::stored_answer(&mut res, if replaced { 200 } else { 201 }, &s)
                    }
                    Err(e) => tus::error_answer(&mut res, e.status(), &e),
                }
            }
        }
        if !head.keep_alive {
            res.set_close();
        }
        write_answer(&mut stream, &res, &head.version, head.is_head);
        if res.wants_close() {
            return;
        }
    }
}

/// Streams a request's body to `sink`, piece by piece as it arrives; `false` if
/// the connection ended first or `sink` refused a piece.
fn body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    framing: wirepatterns::http::Framing,
    mut sink: impl FnMut(&[u8]) -> bool,
) -> bool {
    let limits = Limits {
        max_body_bytes: u64::MAX,
        ..Limits::default()
    };
    let Ok(mut decoder) = BodyDecoder::new(framing, &limits) else {
        return false;
    };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let Ok(step) = decoder.decode(buf) else {
            return false;
        };
        let (consumed, done) = (step.consumed, step.done);
        if !step.data.is_empty() && !sink(step.data) {
            return false;
        }
        buf.drain(..consumed);
        if done {
            return true;
        }
        if consumed == 0 {
            match stream.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                _ => return false,
            }
        }
    }
}

fn write_answer(
    stream: &mut TcpStream,
    res: &Response,
    version: &wirepatterns::http::Version,
    is_head: bool,
) {
    let mut out = Vec::new();
    let mut enc = Encoding::new(*version);
    enc.head_only = is_head;
    enc.close = res.wants_close();
    res.encode(&mut out, &enc);
    let _ = stream.write_all(&out);
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
