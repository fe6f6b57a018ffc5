//! Request/response: every request answered with its own anatomy, or its body
//! echoed back.
//!
//! ```sh
//! cargo run --example request_response -- --addr 127.0.0.1:8080 --trace
//! curl -v 'http://127.0.0.1:8080/search?q=tcp'               # anatomy of the request
//! curl -v --data-binary 'hello' http://127.0.0.1:8080/echo    # body echoed back
//! curl -v -H 'Transfer-Encoding: chunked' --data-binary 'hello' http://127.0.0.1:8080/
//! ```
//!
//! `POST /json` takes a job status as JSON, or a list of them (the message of the
//! `serialize_cost` bench), decodes it with `serde_json` and answers it
//! re-encoded: a JSON API's processing step, with nothing else in it. With
//! `--trace`, the `handler done` step of each request's timeline is that decode
//! and encode, and it grows with the body:
//!
//! ```sh
//! cargo run --release --example request_response -- --sample-jobs 10000 > jobs.json
//! cargo run --release --example request_response -- --trace
//! curl -s -o /dev/null -w '%{http_code} %{size_download} B\n' --data-binary @jobs.json http://127.0.0.1:8080/json
//! curl -d '{"id":"job:1764480000000-2","progress":40,"at_ms":1764480012000}' http://127.0.0.1:8080/json
//! curl -d '{"id":"job:01"}' http://127.0.0.1:8080/json     # 400 and the reason, one line
//! ```
//!
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:8080; port 0 picks a free port),
//! `--trace` (print a line per request, in the trace format every example shares,
//! then its cost timeline), `--sample-jobs N` (print a JSON list of N job statuses,
//! a body for `POST /json`, and exit), `--help`.
//! The server prints one line, `listening on http://ADDR`, once it accepts
//! connections. Ctrl-C stops it gracefully (queued responses finish) and prints
//! the server's totals; a second Ctrl-C quits at once. The behaviour lives in `wirepatterns::patterns::request_response`;
//! this file is flags, printing and wiring, and the `/json` path (the library has
//! no serde dependency).

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use wirepatterns::cli::Spec;
use wirepatterns::cost::RequestCost;
use wirepatterns::http::Response;
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::{Config, Context, Handler, Incoming, Reply};
use wirepatterns::trace::TraceLine;

#[path = "support/mod.rs"]
mod support;

#[path = "support/job_message.rs"]
mod job_message;

use job_message::{JobStatus, sample_jobs};

fn spec() -> Spec {
    Spec::new(
        "request_response",
        "Answers a request without a body with its anatomy (start line, header fields, \
         where the head ended), and a request with a body with that body; POST /json \
         decodes a JSON job status (or a list of them) and answers it re-encoded.",
        "127.0.0.1:8080",
    )
    .option(
        "--sample-jobs",
        "N",
        "print a JSON list of N job statuses (a body for POST /json) and exit",
    )
}

fn main() -> ExitCode {
    let spec = spec();
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match args.parsed::<usize>("--sample-jobs") {
        Ok(None) => {}
        Ok(Some(n)) => return print_sample(n),
        Err(e) => return support::usage_error(&spec, &e),
    }

    let handler = if args.trace {
        let start = Instant::now();
        RequestResponse::with_observer(move |cost| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", TraceLine::request(start, cost));
            let _ = write!(out, "{}", cost.timeline());
            let _ = out.flush();
        })
    } else {
        RequestResponse::new()
    };

    support::serve(Config::new(args.addr), WithJson { inner: handler })
}

/// Prints `n` job statuses as one JSON array, for `curl --data-binary @FILE`.
fn print_sample(n: usize) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &sample_jobs(n))
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the sample: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The path answered by [`answer_json`]; every other request goes to the
/// library's handler unchanged.
const JSON_PATH: &str = "/json";

/// The library's request/response handler, with `POST /json` in front of it.
/// `RequestResponse` implements two callbacks, `on_request` and
/// `on_request_done`; this passes both on, and the others keep their defaults
/// here as they do there.
struct WithJson {
    inner: RequestResponse,
}

impl Handler for WithJson {
    fn on_request(
        &mut self,
        ctx: &mut Context<'_>,
        req: &Incoming<'_>,
        res: &mut Response,
    ) -> Reply {
        let request = req.request();
        if request.path() != JSON_PATH {
            return self.inner.on_request(ctx, req, res);
        }
        answer_json(request.method(), req.body(), res);
        Reply::Respond
    }

    fn on_request_done(&mut self, cost: &RequestCost) {
        self.inner.on_request_done(cost);
    }
}

/// The longest reason a 400 repeats from the decoder: its message may quote the
/// offending value, which the client chose.
const MAX_REASON_CHARS: usize = 200;

/// `POST /json`: decodes `body` as one [`JobStatus`] (a JSON object) or a list of
/// them (a JSON array, told apart by its first byte) and answers 200 with the
/// same statuses re-encoded, compact, as `application/json`. A body that is not
/// such a document is answered 400 with one line, `invalid JSON job status: `
/// and `serde_json`'s reason (what it expected, at which line and column). Any
/// other method is answered 405.
fn answer_json(method: &str, body: &[u8], res: &mut Response) {
    if method != "POST" {
        res.set_status(405);
        res.header("Allow", "POST");
        res.header("Content-Type", "text/plain; charset=utf-8");
        res.body_mut().extend_from_slice(
            b"POST /json takes a JSON job status, or a list of them; it answers POST only\n",
        );
        return;
    }
    let is_list = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let out = res.body_mut();
    let answered = if is_list {
        serde_json::from_slice::<Vec<JobStatus>>(body)
            .and_then(|jobs| serde_json::to_writer(&mut *out, &jobs))
    } else {
        serde_json::from_slice::<JobStatus>(body)
            .and_then(|job| serde_json::to_writer(&mut *out, &job))
    };
    match answered {
        Ok(()) => {
            out.push(b'\n');
            res.header("Content-Type", "application/json");
        }
        Err(e) => {
            out.clear();
            let reason: String = e
                .to_string()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(MAX_REASON_CHARS)
                .collect();
            out.extend_from_slice(format!("invalid JSON job status: {reason}\n").as_bytes());
            res.set_status(400);
            res.header("Content-Type", "text/plain; charset=utf-8");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use wirepatterns::cli::Parsed;
    use wirepatterns::patterns::jobs::JobId;
    use wirepatterns::server::Server;

    /// `answer_json`'s status, content type and body, as text.
    fn answer(method: &str, body: &[u8]) -> (u16, String, String) {
        let mut res = Response::new(200);
        answer_json(method, body, &mut res);
        let head = String::from_utf8_lossy(res.header_bytes()).into_owned();
        let content_type = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or_default()
            .to_string();
        let text = String::from_utf8(res.body().to_vec()).expect("the answer is text");
        (res.status(), content_type, text)
    }

    /// A refusal: 400, plain text, exactly one line naming the rule.
    fn refused(body: &[u8]) -> String {
        let (status, content_type, text) = answer("POST", body);
        assert_eq!(status, 400, "{text}");
        assert_eq!(content_type, "text/plain; charset=utf-8");
        assert!(text.starts_with("invalid JSON job status: "), "{text}");
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        assert!(text.ends_with('\n'), "{text:?}");
        text
    }

    #[test]
    fn a_job_status_is_decoded_and_answered_re_encoded() {
        let body =
            b" {\"at_ms\": 1764480012000, \"progress\": 40,\n \"id\": \"job:1764480000000-2\"}";
        let (status, content_type, text) = answer("POST", body);
        assert_eq!(status, 200, "{text}");
        assert_eq!(content_type, "application/json");
        // Compact, in field order: the server decoded it, it did not echo it.
        assert_eq!(
            text,
            "{\"id\":\"job:1764480000000-2\",\"progress\":40,\"at_ms\":1764480012000}\n"
        );
    }

    #[test]
    fn a_list_of_jobs_comes_back_whole() {
        let jobs = sample_jobs(25);
        let body = serde_json::to_vec_pretty(&jobs).unwrap();
        let (status, _, text) = answer("POST", &body);
        assert_eq!(status, 200, "{text}");
        let back: Vec<JobStatus> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, jobs);
        assert!(back.iter().any(|j| j.id.counter() > 0) && back.iter().any(JobStatus::done));
        let (status, _, text) = answer("POST", b"[]");
        assert_eq!((status, text.as_str()), (200, "[]\n"));
    }

    #[test]
    fn invalid_json_is_refused_with_one_line_naming_the_problem() {
        let text = refused(b"{\"id\": \"job:1\", \"progress\": 40");
        assert!(text.contains("EOF while parsing"), "{text}");
        let text = refused(b"");
        assert!(text.contains("EOF"), "{text}");
        let text = refused(b"<job/>");
        assert!(text.contains("expected value at line 1 column 1"), "{text}");
        let text = refused(b"{\"id\":\"job:1\",\"progress\":40}");
        assert!(text.contains("missing field `at_ms`"), "{text}");
        let text = refused(b"[{\"id\":\"job:1\",\"progress\":40,\"at_ms\":1},3]");
        assert!(text.contains("expected struct JobStatus"), "{text}");
    }

    #[test]
    fn values_the_jobs_server_never_writes_are_refused() {
        let text = refused(b"{\"id\":\"job:01\",\"progress\":40,\"at_ms\":1}");
        assert!(
            text.contains("string \"job:01\", expected a job handle"),
            "{text}"
        );
        let text = refused(b"{\"id\":\"job:1-0\",\"progress\":40,\"at_ms\":1}");
        assert!(text.contains("job:1-0"), "{text}");
        let text = refused(b"{\"id\":\"job:1\",\"progress\":101,\"at_ms\":1}");
        assert!(
            text.contains("`101`, expected a progress in percent"),
            "{text}"
        );
        let text = refused(b"{\"id\":\"job:1\",\"progress\":-1,\"at_ms\":1}");
        assert!(text.contains("-1"), "{text}");
    }

    #[test]
    fn a_long_reason_stays_one_short_line() {
        let handle = format!("job:{}\n", "9".repeat(5000));
        let body = format!("{{\"id\":{handle:?},\"progress\":1,\"at_ms\":1}}");
        let text = refused(body.as_bytes());
        let limit = "invalid JSON job status: ".len() + MAX_REASON_CHARS + 1;
        assert!(text.chars().count() <= limit, "{} chars", text.len());
    }

    #[test]
    fn only_post_is_answered() {
        let (status, _, text) = answer("GET", b"");
        assert_eq!(status, 405);
        assert!(text.contains("POST only"), "{text}");
    }

    #[test]
    fn sample_jobs_flag_takes_a_count() {
        let parse = |args: &[&str]| spec().parse(args.iter().map(|a| a.to_string()));
        let Ok(Parsed::Run(args)) = parse(&["--sample-jobs", "3"]) else {
            panic!("refused")
        };
        assert_eq!(args.parsed::<usize>("--sample-jobs"), Ok(Some(3)));
        let Ok(Parsed::Run(args)) = parse(&["--sample-jobs", "many"]) else {
            panic!("refused")
        };
        assert!(args.parsed::<usize>("--sample-jobs").is_err());
        let jobs = sample_jobs(3);
        assert_eq!(jobs.len(), 3);
        assert_eq!(jobs[2].id, JobId::new(1_764_480_000_000, 2));
    }

    /// Reads one response (head, then a `Content-Length` body) from `stream`,
    /// keeping what follows it in `buf`.
    fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (String, String) {
        let mut chunk = [0u8; 16 * 1024];
        for _ in 0..10_000 {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("a Content-Length");
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    buf.drain(..end + 4 + len);
                    return (head, body);
                }
            }
            let n = stream
                .read(&mut chunk)
                .expect("the response arrives in time");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(buf));
            buf.extend_from_slice(&chunk[..n]);
        }
        panic!("no whole response after 10,000 reads")
    }

    #[test]
    fn over_tcp_json_is_answered_and_other_paths_are_the_library_s() {
        let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        let handler = WithJson {
            inner: RequestResponse::new(),
        };
        let server = Server::bind(config, handler)
            .and_then(Server::spawn)
            .expect("server starts");
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        let mut post = |path: &str, body: &str| {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).expect("write");
            read_response(&mut stream, &mut buf)
        };

        let job = "{\"id\":\"job:1764480000000\",\"progress\":100,\"at_ms\":1764480030000}";
        let (head, body) = post("/json", job);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        assert_eq!(body, format!("{job}\n"));

        // Invalid JSON: 400 and one line; the connection is still usable.
        let (head, body) = post("/json", "{\"id\":");
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        assert!(body.starts_with("invalid JSON job status: "), "{body}");
        assert_eq!(body.lines().count(), 1, "{body}");

        // Any other path is the library's echo, unchanged.
        let (head, body) = post("/echo", job);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, job);

        drop(stream);
        server.stop().expect("server stops");
    }
}
