//! What the glue counts ([`WsStats`]) and tells an observer ([`WsEvent`],
//! [`MessageCost`]), and what it keeps until it can tell it.

#[allow(unused_imports)]
use super::*;

/// What the glue counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WsStats {
    /// Handshakes accepted (WebSockets opened).
    pub opened: u64,
    /// Handshakes refused (400, 403, 426; 503 during shutdown).
    pub rejected: u64,
    /// Whole messages received.
    pub messages_in: u64,
    /// Messages sent by the application (a broadcast counts once per client).
    pub messages_out: u64,
    /// Pings sent by the keepalive.
    pub pings_sent: u64,
    /// Times the application paused reading a connection
    /// ([`WsContext::pause_reading`]).
    pub read_pauses: u64,
    /// WebSockets ended by the peer's close frame.
    pub closed_by_peer: u64,
    /// WebSockets ended by the application.
    pub closed_by_server: u64,
    /// WebSockets failed for breaking a protocol rule.
    pub protocol_errors: u64,
    /// Peers removed for not answering a ping in time.
    pub ping_timeouts: u64,
    /// WebSockets whose TCP connection went away without a close handshake.
    pub dropped: u64,
    /// WebSockets closed with 1001 because the server was shutting down.
    pub closed_at_shutdown: u64,
    /// Closes cut short by [`WsConfig::close_timeout`]: after the server's close
    /// frame, the peer did not answer it in time (a graceful close), or did not
    /// read what was queued up to it (a close that waited only for its frame to
    /// be written), and its TCP connection was aborted ([`Context::abort`]). Each
    /// of these WebSockets is also counted by how it ended.
    pub close_timeouts: u64,
}

/// Something the glue handled, as told to its observer ([`WsServer::set_observer`]).
#[derive(Debug, Clone, Copy)]
pub enum WsEvent<'a> {
    /// A request that was not a handshake, answered by [`WsApp::on_http`]: what it
    /// cost, once its response was written.
    Request(&'a RequestCost),
    /// A handshake accepted: its `101` was written (`cost`), and the WebSocket is
    /// open.
    Opened {
        /// The handshake request's cost.
        cost: &'a RequestCost,
        /// The peer's address.
        peer: SocketAddr,
        /// The request's `Origin`, if it sent one.
        origin: Option<&'a str>,
    },
    /// A handshake refused: 400, 403 (origin not allowed), 426 (another version)
    /// or, during shutdown, 503.
    Refused {
        /// The connection's number ([`ConnId::serial`]).
        conn: u64,
        /// When it is told: when its response was written, or, without `cost`,
        /// when the connection closed before it was.
        at: Instant,
        /// The refusal's cost once written; `None` if the connection closed before
        /// it was.
        cost: Option<&'a RequestCost>,
        /// The status it was answered with.
        status: u16,
        /// The rule it broke, as the response's body says it.
        reason: &'a str,
        /// The request's `Origin`, if it sent one.
        origin: Option<&'a str>,
    },
    /// A whole message was handed to [`WsApp::on_message`]; told at the end of the
    /// loop turn that read it, when what was sent on its connection meanwhile had
    /// been written.
    Message(&'a MessageCost),
    /// A WebSocket ended (as told to [`WsApp::on_close`]).
    Closed {
        /// The connection.
        conn: ConnId,
        /// When.
        at: Instant,
        /// How.
        closed: WsClosed,
    },
}

/// What one message cost its connection, for [`WsEvent::Message`].
#[derive(Debug, Clone, Copy)]
pub struct MessageCost {
    /// The connection it came on.
    pub conn: ConnId,
    /// Its number among the messages of that connection, from 0.
    pub index: u64,
    /// The start of the loop turn that read it.
    pub at: Instant,
    /// A text message (else binary).
    pub text: bool,
    /// Its payload size.
    pub payload_bytes: u64,
    /// Its frames' bytes as they came over the wire (headers and masks included).
    pub wire_bytes: u64,
    /// The start of its text (cut to [`crate::cost::LABEL_BYTES`]); empty for a
    /// binary message.
    pub preview: Label,
    /// What the connection did for it: the `read()` calls that brought the
    /// message (since the connection's last read turn) and the `write()` calls of
    /// its turn that carried what was sent on it (an echo, the sender's own copy
    /// of a broadcast), with their bytes. When several
    /// messages came in one turn, the calls are counted once, in the first one's
    /// `io`; the others have zeros and the same `group`.
    pub io: IoCounters,
    /// The messages of this connection (by `index`, first to last) that shared
    /// `io`: `(index, index)` when it was this one's alone.
    pub group: (u64, u64),
    /// From `at` to the end of the turn: read, handled, and its answers handed to
    /// the kernel.
    pub took: Duration,
}

impl WsEvent<'_> {
    /// The event as a line of the examples' trace ([`crate::trace`]), with the trace
    /// begun at `start`.
    pub fn trace_line(&self, start: Instant) -> TraceLine {
        match *self {
            WsEvent::Request(cost) => TraceLine::request(start, cost),
            WsEvent::Opened { cost, peer, origin } => {
                let mut line = TraceLine::request(start, cost);
                line.kind = "handshake";
                line.what = match origin {
                    Some(origin) => format!("101 to {peer}, origin {origin}"),
                    None => format!("101 to {peer}"),
                };
                line
            }
            WsEvent::Refused {
                conn,
                at,
                cost,
                status,
                reason,
                origin,
            } => {
                let mut line = match cost {
                    Some(cost) => TraceLine::request(start, cost),
                    None => TraceLine::new(start, at, Some(conn), ""),
                };
                line.kind = "refused";
                line.what = match origin {
                    Some(origin) => format!("{status} {reason}, origin {origin}"),
                    None => format!("{status} {reason}"),
                };
                if cost.is_none() {
                    line.what
                        .push_str(" (closed before the answer was written)");
                }
                line
            }
            WsEvent::Message(m) => {
                let what = if m.text {
                    let cut = if m.payload_bytes > m.preview.as_bytes().len() as u64 {
                        "..."
                    } else {
                        ""
                    };
                    format!("text \"{}{cut}\" ({} B)", m.preview, m.payload_bytes)
                } else {
                    format!("binary ({} B)", m.payload_bytes)
                };
                let (first, last) = m.group;
                // Stamped at the end of its turn, when what it answered was written.
                TraceLine::new(
                    start,
                    m.at.checked_add(m.took).unwrap_or(m.at),
                    Some(m.conn.serial()),
                    "ws message",
                )
                .what(what)
                .cost(LineCost {
                    bytes_in: m.wire_bytes,
                    bytes_out: m.io.bytes_out,
                    copies: None,
                    read_calls: m.io.read_calls,
                    write_calls: m.io.write_calls,
                    took: Some(("took", m.took)),
                    shared: (first != last).then_some(SharedWith {
                        what: "messages",
                        span: Span(first, last),
                    }),
                })
            }
            WsEvent::Closed { conn, at, closed } => {
                TraceLine::new(start, at, Some(conn.serial()), "ws closed").what(closed)
            }
        }
    }
}

/// Called with everything the glue handles (for `--trace`).
pub type WsObserver = Box<dyn FnMut(&WsEvent<'_>) + Send>;

/// What the glue decided about a handshake, kept until its response is written
/// so that the observer hears both at once.
#[derive(Debug)]
pub(super) struct Verdict {
    /// The connection.
    pub(super) conn: ConnId,
    /// When it was decided.
    pub(super) at: Instant,
    /// 101, or the refusal's status.
    pub(super) status: u16,
    /// Why it was refused (empty when accepted).
    pub(super) reason: String,
    /// The request's `Origin`.
    pub(super) origin: Option<String>,
    /// The peer (known when accepted).
    pub(super) peer: Option<SocketAddr>,
}

/// What the observer is told at the end of a loop turn, and what is kept to tell
/// it. Empty, and never filled, without an observer.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// Handshakes whose response is not yet written.
    pub(super) verdicts: Vec<Verdict>,
    /// This turn's messages, costed at its end.
    pub(super) messages: Vec<MessageCost>,
    /// Sessions that read or wrote during this turn: their counters are taken
    /// again at its end, so that the next message is charged only its own turn.
    pub(super) touched: Vec<ConnId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_line_is_stamped_at_the_end_of_its_turn() {
        let start = Instant::now();
        let m = MessageCost {
            conn: ConnId::new_for_tests(2, 0),
            index: 0,
            at: start + Duration::from_millis(1770),
            text: true,
            payload_bytes: 2,
            wire_bytes: 8,
            preview: Label::new(b"hi"),
            io: IoCounters {
                read_calls: 2,
                write_calls: 1,
                bytes_in: 8,
                bytes_out: 20,
            },
            group: (0, 0),
            took: Duration::from_millis(30),
        };
        let line = WsEvent::Message(&m).trace_line(start);
        // Read at 1.770 s, its turn over 30 ms later: the line is made then.
        assert_eq!(line.at, Duration::from_millis(1800));
        let text = line.to_string();
        assert!(
            text.starts_with("  1.800 s  conn 2     ws message  in 8 B "),
            "{text:?}"
        );
        assert!(text.contains("took 30.0 ms"), "{text:?}");
        assert!(text.ends_with("text \"hi\" (2 B)"), "{text:?}");
    }
}
