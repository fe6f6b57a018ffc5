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
//! 0 never pings), `--ping-timeout SECS` (default 20; more than 0),
//! `--close-timeout SECS` (after the server's close frame, TCP is closed when the
//! client answers or at most this much later, even if the client stopped reading;
//! default 5; more than 0), `--allow-origin ORIGIN` (repeatable; accept WebSockets only from these origins,
//! written as a browser sends them, such as `http://127.0.0.1:8080` with no
//! trailing slash; by default any), `--max-queue BYTES` (the size of the hub's
//! broadcast log, which every client writes from: when it is full, senders are
//! not read until readers make room, and a message too big for it is refused
//! with 1009; default 4194304, at least 1024), `--slow-timeout SECS` (a client
//! that reads nothing for this long while the full log waits for it is closed
//! with 1008; default 5; more than 0),
//! `--max-connections N` (more are refused with 503; default 10000, at least 1),
//! `--redis HOST:PORT` (share the room with every chat_push on the same Redis
//! and room, through `PUBLISH`/`SUBSCRIBE`: see below), `--room NAME` (the
//! room, default `lobby`), `--server-name NAME` (this server's name in user
//! names, `User<port>@<name>`; default the port of `--addr`, or the process id
//! when that is 0), `--help`. A value that makes no sense (`--max-connections 0`) is refused with
//! the usage, exit code 2.
//! The server prints one line, `listening on http://ADDR`, once it accepts
//! connections. Ctrl-C stops it gracefully (every member gets a 1001 close) and
//! prints the server's totals, refusals at the connection limit included; a second
//! Ctrl-C quits at once. The behaviour lives in `wirepatterns::patterns::chat`
//! and `wirepatterns::patterns::push`; this file is flags, printing and wiring.
//!
//! # Several servers, one room, through Redis
//!
//! ```sh
//! redis-server --port 6379 --save "" &
//! cargo run --example chat_push -- --addr 127.0.0.1:8081 --redis 127.0.0.1:6379 &
//! cargo run --example chat_push -- --addr 127.0.0.1:8082 --redis 127.0.0.1:6379 &
//! # open http://127.0.0.1:8081/ and http://127.0.0.1:8082/: one room
//! ```
//!
//! Each server publishes what its users say and shows what Redis delivers, its
//! own users' messages included, so every user on every server sees the same
//! order: Redis's. Users are named `User<port>@<server>`. If Redis goes away,
//! each server says so in its log (`redis: ...`) and to its users, and keeps
//! serving them as a room of its own; when Redis is back, it rejoins and says
//! so. What is said on the other servers meanwhile is lost to this one, and
//! the other way round (`wirepatterns::patterns::relay` has the details).

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use wirepatterns::cli::{self, Args, CliError, Spec};
use wirepatterns::patterns::chat::ChatPush;
use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::relay::RelayConfig;
use wirepatterns::patterns::websocket::{WsConfig, WsServer};
use wirepatterns::server::Config;
use wirepatterns::trace::TraceLine;

#[path = "support/mod.rs"]
mod support;

/// The smallest `--max-queue`: a log that cannot hold a few chat lines drops
/// every member at the first broadcast that meets a full socket.
const MIN_QUEUE: usize = 1024;

fn main() -> ExitCode {
    let spec = cli::ws_flags(Spec::new(
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
        "size of the broadcast log; when it is full, senders wait for readers \
         (default 4194304; at least 1024)",
    )
    .option(
        "--slow-timeout",
        "SECS",
        "close a client with 1008 that reads nothing for this long while the full log \
         waits for it (default 5)",
    )
    .option(
        "--max-connections",
        "N",
        "most connections open at once; more are refused with 503 (default 10000; at least 1)",
    )
    .option(
        "--redis",
        "HOST:PORT",
        "share the room with every chat_push on this Redis (PUBLISH/SUBSCRIBE)",
    )
    .option(
        "--room",
        "NAME",
        "the room shared through Redis (default lobby)",
    )
    .option(
        "--server-name",
        "NAME",
        "this server's name in user names with --redis (default: the port of --addr)",
    );
    let args = match support::parse_args(&spec) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (ws_config, hub, config) = match configs(&args) {
        Ok(configs) => configs,
        Err(e) => return support::usage_error(&spec, &e),
    };
    let relay = match relay_config(&args) {
        Ok(relay) => relay,
        Err(e) => return support::usage_error(&spec, &e),
    };

    let start = Instant::now();
    let mut chat = match relay {
        Some(relay) => {
            println!(
                "room {} through Redis at {}, as server {}",
                relay.room, relay.redis, relay.server
            );
            ChatPush::with_relay(hub, relay, |line| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "redis: {line}");
                let _ = out.flush();
            })
        }
        None => ChatPush::new(hub),
    };
    if args.trace {
        chat.set_observer(move |cost| print(cost.trace_line(start)));
    }
    let mut server = WsServer::new(ws_config, chat);
    if args.trace {
        server.set_observer(move |event| print(event.trace_line(start)));
    }

    support::serve_then(config, server, |server, out| {
        let _ = writeln!(out, "push hub totals:");
        for line in server.app().hub().stats().to_string().lines() {
            let _ = writeln!(out, "  {line}");
        }
        if let Some(relay) = server.app().relay_stats() {
            let _ = writeln!(out, "redis relay totals:");
            for line in relay.to_string().lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
    })
}

/// Prints a trace line at once: a trace is read as it happens.
fn print(line: TraceLine) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The glue's, the hub's and the server's settings from the flags; a value that
/// makes no sense is refused.
fn configs(args: &Args) -> Result<(WsConfig, HubConfig, Config), CliError> {
    let mut ws_config = cli::ws_config(args)?;
    let origins = args
        .values("--allow-origin")
        .map(|o| cli::origin("--allow-origin", o))
        .collect::<Result<Vec<String>, CliError>>()?;
    if !origins.is_empty() {
        ws_config.handshake.allowed_origins = Some(origins);
    }
    let mut hub = HubConfig::default();
    if let Some(max) = args.at_least("--max-queue", MIN_QUEUE)? {
        hub.log_bytes = max;
    }
    if let Some(secs) = args.seconds("--slow-timeout")? {
        if secs.is_zero() {
            return Err(CliError::OutOfRange(
                "--slow-timeout",
                args.value("--slow-timeout").unwrap_or("0").to_string(),
                "must be more than 0 seconds (a reader needs time to read)".into(),
            ));
        }
        hub.slow_timeout = secs;
    }
    let mut config = Config::new(args.addr);
    if let Some(max) = args.at_least("--max-connections", 1)? {
        config.max_connections = max;
    }
    Ok((ws_config, hub, config))
}

/// The relay's settings: `None` without `--redis`.
fn relay_config(args: &Args) -> Result<Option<RelayConfig>, CliError> {
    let Some(redis) = args.value("--redis") else {
        for flag in ["--room", "--server-name"] {
            if args.value(flag).is_some() {
                return Err(CliError::OutOfRange(
                    flag,
                    args.value(flag).unwrap_or_default().to_string(),
                    "is for a room shared through Redis: give --redis too".into(),
                ));
            }
        }
        return Ok(None);
    };
    let redis = cli::socket_addr("--redis", redis)?;
    let server = match args.value("--server-name") {
        Some(name) => name.to_string(),
        None if args.addr.port() != 0 => args.addr.port().to_string(),
        None => format!("pid{}", std::process::id()),
    };
    let mut relay = RelayConfig::new(redis, server);
    if let Some(room) = args.value("--room") {
        relay.room = room.to_string();
    }
    for (flag, value) in [("--room", &relay.room), ("--server-name", &relay.server)] {
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(CliError::OutOfRange(
                flag,
                value.clone(),
                "must be letters, digits, '-', '_' or '.'".into(),
            ));
        }
    }
    Ok(Some(relay))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirepatterns::cli::Parsed;

    fn parse(args: &[&str]) -> Result<(WsConfig, HubConfig, Config), CliError> {
        let spec = cli::ws_flags(Spec::new("chat_push", "test", "127.0.0.1:8080"))
            .option("--allow-origin", "ORIGIN", "")
            .option("--max-queue", "BYTES", "")
            .option("--slow-timeout", "SECS", "")
            .option("--max-connections", "N", "");
        match spec.parse(args.iter().map(|a| a.to_string()))? {
            Parsed::Run(args) => configs(&args),
            Parsed::Help(_) => panic!("help"),
        }
    }

    fn refused(args: &[&str]) -> String {
        match parse(args) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{args:?} accepted"),
        }
    }

    #[test]
    fn values_that_make_no_sense_are_refused() {
        assert_eq!(
            refused(&["--max-connections", "0"]),
            "--max-connections 0: must be at least 1"
        );
        assert_eq!(
            refused(&["--max-queue", "0"]),
            "--max-queue 0: must be at least 1024"
        );
        assert_eq!(
            refused(&["--max-queue=100"]),
            "--max-queue 100: must be at least 1024"
        );
        assert!(refused(&["--ping-timeout", "0"]).starts_with("--ping-timeout 0: must be more"));
        assert!(refused(&["--close-timeout", "0"]).starts_with("--close-timeout 0: must be more"));
        assert!(refused(&["--slow-timeout", "0"]).starts_with("--slow-timeout 0: must be more"));
        assert!(refused(&["--allow-origin", "http://127.0.0.1:8080/"]).contains("no path"));
        assert!(refused(&["--max-connections", "-3"]).contains("not a valid value"));
    }

    #[test]
    fn sensible_values_are_taken() {
        let Ok((ws, hub, config)) = parse(&[
            "--max-connections",
            "1",
            "--max-queue",
            "1024",
            "--allow-origin",
            "http://127.0.0.1:8080",
            "--ping-interval",
            "0",
            "--close-timeout",
            "0.5",
            "--slow-timeout",
            "2.5",
        ]) else {
            panic!()
        };
        assert_eq!(config.max_connections, 1);
        assert_eq!(hub.log_bytes, 1024);
        assert_eq!(hub.slow_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(
            ws.handshake.allowed_origins,
            Some(vec!["http://127.0.0.1:8080".to_string()])
        );
        assert_eq!(ws.ping_interval, None);
        assert_eq!(ws.close_timeout, std::time::Duration::from_millis(500));
    }
}
