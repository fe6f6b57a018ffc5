//! # wirepatterns
//!
//! Backend communication patterns (request/response, push, short and long polling,
//! Server-Sent Events) built from scratch over raw TCP, with every cost measured:
//! bytes, system calls, and time per phase.
//!
//! A request/response exchange, as the notes draw it, has four steps: the client
//! sends a request, the server *parses* it, *processes* it, and sends a response
//! whose end the client must be able to find. This crate makes each of those steps
//! visible code, and counts what each one costs.
//!
//! # Layout
//!
//! Dependencies point one way, top to bottom:
//!
//! | layer | module | owns |
//! |---|---|---|
//! | examples | `examples/*.rs` | a `cargo run` per pattern: flags, printing, wiring |
//! | patterns | [`patterns`] | what each pattern does: request/response, the push hub and chat, WebSocket glue |
//! | driver | [`server`] | the mio event loop: listener, connections, buffers, timers, the [`server::Handler`] trait |
//! | protocol cores | [`http`], [`ws`], [`resp`] | sans-I/O state machines: bytes in, events out; messages in, bytes out (RESP: Redis's protocol, client side) |
//! | costs | [`cost`], [`trace`] | timestamps, byte and syscall counts, the timeline printer; the one-line trace format every example prints |
//!
//! [`cli`] is the small flag parser the example servers share; [`chart`] draws the
//! comparison examples' numbers as SVG bar charts.
//!
//! - [`http`] and [`ws`] never touch a socket or a clock. It is fed bytes and says "need
//!   more", "complete, here is what I parsed and how many bytes it took", or "this
//!   breaks rule X". That makes every split-read case a plain unit test.
//! - The driver is one thread and one `mio::Poll`: it reads until `WouldBlock`,
//!   hands the bytes to the parser, calls the application's handler, and writes
//!   until `WouldBlock`, queueing the rest. No async runtime, no thread per
//!   connection.
//!
//! Start with `cargo run --example request_response -- --trace` and a `curl` to it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chart;
pub mod cli;
pub mod cost;
pub mod http;
pub mod patterns;
pub mod resp;
pub mod server;
pub mod trace;
pub mod ws;
