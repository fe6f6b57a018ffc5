//! WebSocket echo: every text or binary message comes back as it was sent, on any
//! path. The target for conformance testing.
//!
//! ```sh
//! cargo run --example ws_echo -- --addr 127.0.0.1:9001 --trace
//! # in a browser's dev tools (any page):
//! #   let ws = new WebSocket("ws://127.0.0.1:9001/");
//! #   ws.onmessage = m => console.log(`echo: ${m.data}`);
//! #   ws.onopen = () => ws.send("hello");
//! # or an Autobahn fuzzingclient pointed at ws://127.0.0.1:9001
//! ```
//!
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:9001; port 0 picks a free port),
//! `--trace` (print a line for every request, handshake, refusal, message and
//! close, with what it cost), `--ping-interval SECS` (default 20;
//! 0 never pings), `--ping-timeout SECS` (default 20; more than 0),
//! `--close-timeout SECS` (after the server's close frame, TCP is closed when the
//! client answers or at most this much later, even if the client stopped reading;
//! default 5; more than 0), `--help`.
//! The server prints one line, `listening on http://ADDR`, once it accepts
//! connections. Ctrl-C stops it gracefully (every client gets a 1001 close) and
//! prints the server's totals; a second Ctrl-C quits at once. Fragmentation, pings, the close handshake, limits and every error
//! are the WebSocket core's (`wirepatterns::ws`); the glue and this application
//! live in `wirepatterns::patterns::websocket`; this file is flags, printing and
//! wiring.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use wirepatterns::cli::{self, Spec};
use wirepatterns::patterns::websocket::{WsEcho, WsServer};
use wirepatterns::server::Config;
use wirepatterns::trace::TraceLine;

#[path = "support/mod.rs"]
mod support;

fn main() -> ExitCode {
    let spec = cli::ws_flags(Spec::new(
        "ws_echo",
        "Echoes every WebSocket text or binary message back as the same type, on any path.",
        "127.0.0.1:9001",
    ));
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let ws_config = match cli::ws_config(&args) {
        Ok(config) => config,
        Err(e) => return support::usage_error(&spec, &e),
    };

    let mut server = WsServer::new(ws_config, WsEcho::new());
    if args.trace {
        let start = Instant::now();
        server.set_observer(move |event| print(event.trace_line(start)));
    }

    support::serve(Config::new(args.addr), server)
}

/// Prints a trace line at once: a trace is read as it happens.
fn print(line: TraceLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
