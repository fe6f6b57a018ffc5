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
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:8080; port 0 picks a free port),
//! `--trace` (print a line per request, in the trace format every example shares,
//! then its cost timeline), `--help`.
//! The server prints one line, `listening on http://ADDR`, once it accepts
//! connections. Ctrl-C stops it gracefully (queued responses finish) and prints
//! the server's totals; a second Ctrl-C quits at once. The behaviour lives in `wirepatterns::patterns::request_response`;
//! this file is flags, printing and wiring.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use wirepatterns::cli::Spec;
use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::Config;
use wirepatterns::trace::TraceLine;

#[path = "support/mod.rs"]
mod support;

fn main() -> ExitCode {
    let spec = Spec::new(
        "request_response",
        "Answers a request without a body with its anatomy (start line, header fields, \
         where the head ended), and a request with a body with that body.",
        "127.0.0.1:8080",
    );
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };

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

    support::serve(Config::new(args.addr), handler)
}
