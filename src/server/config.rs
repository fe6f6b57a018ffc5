//! The server's settings: every limit and timeout, each with a default.

use std::net::SocketAddr;
use std::time::Duration;

#[cfg(doc)]
use super::{Server, ServerHandle};
#[cfg(doc)]
use crate::cost::ServerStats;
use crate::http::Limits;

/// Every limit and timeout of the server, each with a default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Default `127.0.0.1:8080`; port 0 picks a free port (read it
    /// back with [`Server::local_addr`]).
    pub addr: SocketAddr,
    /// The parser's and body decoder's limits (head, target, header count, body).
    pub limits: Limits,
    /// How long a request head may take to arrive, from its first byte (and, on a
    /// new connection, from the accept). Past it: 408, then close; a connection that
    /// sent nothing at all is closed quietly. Default 10 s.
    pub header_timeout: Duration,
    /// How long a body may go without a byte arriving. Past it: 408, then close.
    /// Default 30 s.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may sit between requests (or with a
    /// response its client does not read). Past it: closed quietly. Default 60 s.
    pub idle_timeout: Duration,
    /// After a last response and FIN, how long to keep reading and discarding what
    /// the client still sends before closing anyway. Default 2 s.
    pub linger_timeout: Duration,
    /// Most connections open at once. Past it, a new connection is accepted,
    /// answered `503 Service Unavailable` with `Retry-After` and
    /// `Connection: close` without its request being read, and closed (counted in
    /// [`ServerStats::connections_rejected`]). Default 10 000; at least 1.
    pub max_connections: usize,
    /// Queued output on one connection past which the loop stops reading from it
    /// (backpressure). Default 1 MiB.
    pub max_queued_output: usize,
    /// A connection's read buffer starts at this size. Default 8 KiB. A connection
    /// holds one only while it has bytes to read or not yet consumed: once all are
    /// consumed, the buffer goes back to the loop, which lends it to the next
    /// connection that reads. So an idle connection (a WebSocket waiting for its
    /// next message, a kept-alive HTTP client between requests) holds none, and a
    /// busy one does not allocate to read.
    pub read_buffer_bytes: usize,
    /// A connection's read buffer never grows past this (nor past what a head at
    /// the limit needs). When it is full of requests waiting their turn, the
    /// connection is not read until some are answered. Default 64 KiB.
    pub max_read_buffer_bytes: usize,
    /// Events taken from the kernel per `poll()`. Default 1024.
    pub events_capacity: usize,
    /// After [`ServerHandle::shutdown`], how long held requests, streams and
    /// queued output get to finish before their connections are closed anyway.
    /// Default 5 s.
    pub shutdown_grace: Duration,
    /// How long a connection (and the loop) must be idle before buffers grown for
    /// a burst are given back: a connection's output and body buffers, the spare
    /// read buffers, the action queue. Not after every response: a steady stream
    /// of requests reuses the same buffers and allocates nothing. Default 10 s.
    pub idle_release: Duration,
    /// Whether a request held for a later answer ([`Reply::Deferred`](super::Reply))
    /// or a streaming response survives the client's end of file. Default `false`:
    /// end of file while a request is held means the client is gone (as hyper and
    /// nginx treat it), so the connection closes at once and the handler hears of
    /// it ([`Handler::on_close`](super::Handler::on_close)). A client that
    /// half-closes and still wants its held answer is rare; `true` keeps it.
    pub hold_after_half_close: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            linger_timeout: Duration::from_secs(2),
            max_connections: 10_000,
            max_queued_output: 1024 * 1024,
            read_buffer_bytes: 8 * 1024,
            max_read_buffer_bytes: 64 * 1024,
            events_capacity: 1024,
            shutdown_grace: Duration::from_secs(5),
            idle_release: Duration::from_secs(10),
            hold_after_half_close: false,
        }
    }
}

impl Config {
    /// The default configuration, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Config {
        Config {
            addr,
            ..Config::default()
        }
    }

    /// Checks that the settings make sense: a server that can hold no connection,
    /// queue no output or read no byte would refuse or reset every client.
    /// [`Server::bind`](super::Server::bind) refuses a config that fails this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::Zero("max_connections"));
        }
        if self.max_queued_output == 0 {
            return Err(ConfigError::Zero("max_queued_output"));
        }
        if self.read_buffer_bytes == 0 {
            return Err(ConfigError::Zero("read_buffer_bytes"));
        }
        if self.max_read_buffer_bytes == 0 {
            return Err(ConfigError::Zero("max_read_buffer_bytes"));
        }
        if self.events_capacity == 0 {
            return Err(ConfigError::Zero("events_capacity"));
        }
        Ok(())
    }
}

/// A [`Config`] that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting that must be at least 1 is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config {
            max_connections: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("max_connections")));
        let c = Config {
            max_queued_output: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Zero("max_queued_output")));
    }
}
