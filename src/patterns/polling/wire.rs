//! The bytes of the patterns: a status line, an SSE event, and the wire size of a
//! chunk and of a WebSocket frame (to count what is sent without re-encoding it).

use super::*;

/// The reason of the close frame that ends a job's WebSocket.
pub(super) const FINISHED: &str = "job finished";

/// The comment sent on a quiet event stream: a line starting with `:` is
/// ignored by the client (WHATWG HTML §9.2.6) but keeps the connection busy.
pub(super) const HEARTBEAT: &str = ": heartbeat\n\n";

/// What a reader at a cursor gets: the events after it, and the updates it can
/// no longer get, if any.
pub(super) struct After<'a> {
    /// The events after the cursor, or, if it is older than what is kept, from
    /// the oldest kept (a job restored from the journal keeps only its last
    /// update; the reader gets that rather than nothing).
    pub(super) events: Option<crate::patterns::log::Events<'a, Update>>,
    /// The sequence numbers the reader missed because they were not kept
    /// (`Read::Gap`): first and last, inclusive.
    pub(super) missed: Option<(u64, u64)>,
}

/// Reads `log` after `cursor` (see [`After`]).
pub(super) fn events_after<'a>(
    log: &'a crate::patterns::log::EventLog<Update>,
    cursor: u64,
) -> After<'a> {
    match log.read(cursor) {
        Read::Events(events) => After {
            events: Some(events),
            missed: None,
        },
        Read::Gap {
            oldest_kept,
            missed,
        } => After {
            events: match log.read(oldest_kept.saturating_sub(1)) {
                Read::Events(events) => Some(events),
                _ => None,
            },
            missed: (missed > 0).then(|| (cursor + 1, oldest_kept.saturating_sub(1))),
        },
        _ => After {
            events: None,
            missed: None,
        },
    }
}

/// The comment that tells an event stream's reader which updates it missed
/// (`: missed 10%-20%, 2 updates not kept`): a reader is never moved past
/// updates silently. A comment, so a browser's `EventSource` ignores it (WHATWG
/// HTML §9.2.6) while anyone reading the stream sees it.
pub(super) fn push_missed(out: &mut String, first: u8, last: u8, count: u64) {
    use fmt::Write;
    let updates = if count == 1 { "update" } else { "updates" };
    if first == last {
        let _ = write!(out, ": missed {first}%, {count} {updates} not kept\n\n");
    } else {
        let _ = write!(
            out,
            ": missed {first}%-{last}%, {count} {updates} not kept\n\n"
        );
    }
}

/// `JobStatus: 40% at=1764480003000`: an update as SSE data or a WebSocket message.
pub(super) fn push_status_line(out: &mut String, update: &Update) {
    use fmt::Write;
    let _ = write!(out, "JobStatus: {}% at={}", update.progress, update.at_ms);
}

/// One SSE event: `id: 40`, `data: JobStatus: 40% at=<ms>`, an empty line.
pub(super) fn push_event(out: &mut String, update: &Update) {
    use fmt::Write;
    let _ = write!(out, "id: {}\ndata: ", update.progress);
    push_status_line(out, update);
    out.push_str("\n\n");
}

/// Bytes on the wire of a chunk of `len` bytes: hex size, CRLF, data, CRLF (an
/// empty part is not sent at all: it would be the last chunk).
pub(super) fn chunk_wire_len(len: usize) -> u64 {
    if len == 0 {
        return 0;
    }
    let hex_digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as u64;
    hex_digits + 2 + len as u64 + 2
}

/// Bytes on the wire of an unmasked server text frame with `len` payload bytes.
pub(super) fn ws_frame_len(len: usize) -> u64 {
    let header = match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    };
    header + len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lengths_match_the_encoders() {
        for len in [0usize, 1, 15, 16, 255, 256, 4095, 4096, 70_000] {
            let data = vec![b'x'; len];
            let mut chunk = Vec::new();
            crate::http::response::encode_chunk(&mut chunk, &data);
            assert_eq!(chunk_wire_len(len), chunk.len() as u64, "chunk of {len}");
            let mut frame = Vec::new();
            crate::ws::write_binary(&mut frame, &data);
            assert_eq!(ws_frame_len(len), frame.len() as u64, "frame of {len}");
        }
    }

    #[test]
    fn a_missed_notice_is_one_comment_naming_the_updates() {
        let mut out = String::new();
        push_missed(&mut out, 20, 20, 1);
        push_missed(&mut out, 20, 40, 3);
        assert_eq!(
            out,
            ": missed 20%, 1 update not kept\n\n: missed 20%-40%, 3 updates not kept\n\n"
        );
    }

    #[test]
    fn an_event_is_id_then_data_then_an_empty_line() {
        let mut out = String::new();
        push_event(
            &mut out,
            &Update {
                progress: 40,
                at_ms: 1_764_480_003_000,
            },
        );
        assert_eq!(out, "id: 40\ndata: JobStatus: 40% at=1764480003000\n\n");
    }
}
