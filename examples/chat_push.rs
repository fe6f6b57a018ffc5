//! The push chat of the notes: the server pushes every message to every user.
//!
//! ```sh
//! cargo run --example chat_push -- --addr 127.0.0.1:8080 --trace
//! # then open http://127.0.0.1:8080/ in two browser tabs and chat, or paste the
//! # seed's snippet into the dev tools of any page:
//! #   let ws = new WebSocket("ws://localhost:8080");
//! #   ws.onmessage = message => console.log(`Received: ${message.data}`);
//! #   ws.send("Hello! I'm client")
//! ```
//!
//! As the seed's node server, message for message: when someone joins, everyone
//! (the newcomer too) gets `User<port> just connected.`; for every text message
//! everyone (the sender too) gets `User<port> says: <text>`, `<port>` being the
//! sender's remote TCP port. Also, everyone gets `User<port> left.` when someone
//! leaves. `GET /` serves the chat page; the WebSocket is at `ws://HOST:PORT/`.
//!
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:8080; port 0 picks a free port),
//! `--trace` (print a line for every request, handshake, refusal, message,
//! broadcast and close, with what it cost), `--ping-interval SECS` (default 20;
//! 0 never pings), `--ping-timeout SECS` (default 20), `--allow-origin ORIGIN`
//! (repeatable; accept WebSockets only from these origins, such as
//! `http://127.0.0.1:8080`; by default any), `--max-queue BYTES` (a client with more
//! than this waiting to be written is closed with 1008; default 1048576),
//! `--max-connections N` (more are accepted and closed at once; default 10000),
//! `--help`.
//! The server prints one line, `listening on http://ADDR`, once it accepts
//! connections. The behaviour lives in `wirepatterns::patterns::push`; this file is
//! flags, printing and wiring.

use std::io::Write;
use std::time::Instant;

use wirepatterns::cli::{self, Spec};
use wirepatterns::patterns::push::{ChatPush, HubConfig};
use wirepatterns::patterns::websocket::{WsConfig, WsServer};
use wirepatterns::server::Config;
use wirepatterns::trace::TraceLine;

fn main() {
    let spec = WsConfig::flags(Spec::new(
        "chat_push",
        "The seed's push chat over WebSocket: every message is pushed to every user. \
         GET / serves a chat page.",
        "127.0.0.1:8080",
    ))
    .option(
        "--allow-origin",
        "ORIGIN",
        "accept WebSockets only from this origin (repeatable; default: any)",
    )
    .option(
        "--max-queue",
        "BYTES",
        "close a client with 1008 past this much unwritten output (default 1048576)",
    )
    .option(
        "--max-connections",
        "N",
        "most connections open at once; more are closed at once (default 10000)",
    );
    let args = spec.parse_env_or_exit();
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("error: {e}\n\n{}", spec.usage());
        std::process::exit(2);
    };
    let mut ws_config = WsConfig::from_args(&args).unwrap_or_else(|e| fail(&e));
    let origins: Vec<String> = args.values("--allow-origin").map(String::from).collect();
    if !origins.is_empty() {
        ws_config.handshake.allowed_origins = Some(origins);
    }
    let mut hub = HubConfig::default();
    if let Some(max) = args
        .parsed::<usize>("--max-queue")
        .unwrap_or_else(|e| fail(&e))
    {
        hub.max_queue = max;
    }

    let mut config = Config::new(args.addr);
    if let Some(max) = args
        .parsed::<usize>("--max-connections")
        .unwrap_or_else(|e| fail(&e))
    {
        config.max_connections = max;
    }

    let start = Instant::now();
    let chat = if args.trace {
        ChatPush::with_observer(hub, move |cost| print(cost.trace_line(start)))
    } else {
        ChatPush::new(hub)
    };
    let mut server = WsServer::new(ws_config, chat);
    if args.trace {
        server.set_observer(move |event| print(event.trace_line(start)));
    }

    cli::serve(config, server);
}

/// Prints a trace line at once: a trace is read as it happens.
fn print(line: TraceLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
