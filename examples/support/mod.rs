//! Code shared by the WebSocket load clients `chat_load` and `idle_conns`.
//!
//! Both open many client connections with [`wirepatterns::ws::client`] over
//! non-blocking sockets, and need the same three small pieces, which live here:
//!
//! - [`split_ws_url`]: the `--url ws://HOST:PORT/PATH` flag split into the
//!   authority (for the `Host` header and for resolving) and the path (for the
//!   request line). Resolving the authority stays in each example, since they
//!   differ: `chat_load` defaults the port to 80, `idle_conns` requires one.
//! - [`Rng`]: a fast generator for handshake nonces and masking keys.
//! - [`write_queued`]: writes a connection's queued bytes until done or the socket
//!   is full.
//!
//! This folder has no `main.rs`, so Cargo does not build it as an example; each
//! example includes it with `#[path = "support/mod.rs"] mod support;`.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Splits a `ws://` URL into its authority and its path (`/` when it has none):
/// `ws://127.0.0.1:8080/chat` gives `("127.0.0.1:8080", "/chat")`. The error, for a
/// URL that does not start with `ws://`, names the `--url` flag.
pub fn split_ws_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("--url {url:?} must start with ws:// (wss is not supported)"))?;
    Ok(match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    })
}

/// xorshift64*: masking keys and handshake nonces. RFC 6455 §10.3 asks for keys an
/// attacker cannot predict, which matters for browsers running hostile script; a
/// load tool only needs them to differ, so a fast generator seeded from the clock
/// is enough here.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((nanos ^ u64::from(std::process::id()) << 32) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A masking key for one client frame (RFC 6455 §5.3).
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_ne_bytes()
    }

    /// A handshake nonce, sent base64-encoded as `Sec-WebSocket-Key` (§4.1).
    pub fn nonce(&mut self) -> [u8; 16] {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.next().to_ne_bytes());
        nonce[8..].copy_from_slice(&self.next().to_ne_bytes());
        nonce
    }
}

/// Writes `out[*out_pos..]` to `stream` until it is all written (then empties `out`
/// and resets `out_pos`) or the socket would block (then keeps the rest queued).
/// `Err` if the connection is broken.
pub fn write_queued(
    stream: &mut impl Write,
    out: &mut Vec<u8>,
    out_pos: &mut usize,
) -> io::Result<()> {
    while *out_pos < out.len() {
        let rest = out.get(*out_pos..).unwrap_or_default();
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.clear();
    *out_pos = 0;
    Ok(())
}
