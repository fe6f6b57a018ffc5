//! Push: the server sends without being asked.
//!
//! # The pattern
//!
//! In request/response the client asks and the server answers; a client that wants
//! to hear about events must keep asking ("anything new?" "no." "anything new?"),
//! which costs a round trip per question and delays each event until the next one.
//! With push the client connects once and then only listens: the moment the server
//! has something (a chat message, a new item in a queue), it writes it to every
//! connected client. The seed's example is a chat on WebSocket: every user hears
//! `User<port> just connected.` when someone joins and `User<port> says: <text>` for
//! every message, where `<port>` is the sender's remote TCP port.
//!
//! # What the notes warn about, and what this hub does about it
//!
//! - **Push requires the client to be online.** A client that is gone gets nothing,
//!   and worse, the server may not know it is gone: a peer that vanished without a
//!   FIN (a dropped Wi-Fi link) looks exactly like a quiet one. The WebSocket glue
//!   pings every connection ([`super::websocket::WsConfig::ping_interval`]) and
//!   removes a peer that answers nothing within the ping timeout; the chat tells the
//!   others `User<port> left.`.
//! - **The server does not know what happened to the pushed data.** A successful
//!   `write()` means the kernel took the bytes, not that the client read them. The
//!   hub can only see how much is still waiting on its side: how far each
//!   client's cursor is behind the log's head ([`FrameLog::lag`]).
//! - **A client may not be able to keep up.** A client that reads slower than
//!   messages arrive falls behind, and an unbounded backlog per client is how one
//!   slow phone takes a server's memory. Here there is no backlog per client at
//!   all: the broadcasts live in one bounded log ([`HubConfig::log_bytes`],
//!   4 MiB by default; the `chat_push` example's `--max-queue`), and how far
//!   behind a client is is its cursor's distance from the log's head. A frame
//!   larger than the whole log cannot be broadcast ([`HubStats::too_large`]);
//!   the chat refuses such a message with 1009 before it gets there.
//!
//!   **When the log is full, senders wait, not readers.** A client's message
//!   that finds no room ([`PushHub::send_from`]) waits, encoded, and its
//!   sender's socket is no longer read ([`WsContext::pause_reading`]): its
//!   kernel receive buffer fills, TCP's window closes, and the sender's own
//!   `send()` blocks. That is backpressure carried back to the producer, the
//!   way a pipe between two processes does it. As readers write, room frees up,
//!   the waiting messages go in, in the order they came, and their senders are
//!   read again. So a reader that keeps reading gets every message however long
//!   the burst, and memory is the log plus at most one waiting message per
//!   sender ([`HubStats::waiting_peak_bytes`]).
//!
//!   A reader that **stops** would stop everyone this way, so it gets a bound:
//!   one that makes no progress at all for [`HubConfig::slow_timeout`] (5 s)
//!   while senders wait for it is closed with 1008 (policy violation) and
//!   counted ([`HubStats::slow_closed`]); its cursor leaves the log at once and
//!   the senders go on. (Kafka chose long polling, where each consumer pulls at
//!   its own pace, for exactly this reason: a broker never waits for a
//!   consumer.)
//!
//!   A message relayed from another server through Redis
//!   ([`PushHub::send_relayed`], [`super::relay`]) is paced the same way; its
//!   source is the Redis connection, which the relay stops reading while
//!   messages wait.
//!
//!   What does not come from a sender that can be paced cannot wait: a join or
//!   leave notice is appended at once ([`FrameLog::force_append`]), dropping the oldest frames
//!   if it must. A reader still behind those frames falls off the log's tail
//!   and is closed with 1008 too ([`HubStats::dropped_slow`]). If a closed
//!   client's last write stopped in the middle of a frame, the rest of that one
//!   frame is kept for it (the only bytes ever copied per client), so that its
//!   stream stays valid: the frames it had, the end of the cut one, the 1008
//!   close frame. The close frame waits behind what its socket already holds:
//!   a client that never reads again never sees it, and the glue aborts its
//!   connection at the close timeout
//!   ([`super::websocket::WsConfig::close_timeout`]); meanwhile it gets nothing
//!   more and holds nothing of the log back.
//!
//! # What a broadcast costs
//!
//! A message is encoded into a frame **once** and appended **once** to the shared
//! log ([`FrameLog`]); each member is only a byte cursor into it (a byte, not a
//! frame, so that a write the kernel cut short resumes mid-frame). The broadcast
//! then wakes every member's writer ([`WsContext::wake_writer`], deduplicated by
//! the driver), and at the end of the callback the loop writes each member's
//! pending span straight from the log ([`WsApp::source`]): one `write`/`writev`
//! per member per turn, several broadcasts at once, with no copy per member and
//! no reference count per message. Memory is the log, whatever the number of
//! members ([`HubStats::log_peak_bytes`]).
//!
//! [`BroadcastCost`] records, for each broadcast: the frame bytes encoded once,
//! the clients reached (members whose cursor the frame was appended in front
//! of), the bytes queued as a logical figure (`frame x clients`: what the clients
//! have to write between them, not memory, which is the frame once), and, at the
//! end of the loop turn, the write system calls and bytes written during the
//! turn and how long it took until every client's copy had been handed to the
//! kernel (see [`BroadcastCost::time_to_all`] for exactly what is measured).
//! Before the log, `bytes_queued` was also memory (a shared reference per client
//! in each client's queue); now it is not. Frames written from the log are not
//! in the glue's [`super::websocket::WsStats::messages_out`]: the hub counts
//! them ([`HubStats::deliveries`], [`HubStats::bytes_written`]).
//!
//! A client that disconnects during a broadcast does not break it: closes are
//! carried out after the callback, and a member that can no longer be sent to is
//! skipped.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::frame_log::{FrameLog, Pending, ReaderId};
#[cfg(doc)]
use super::websocket::WsApp;
use super::websocket::{WsClosed, WsContext};
use crate::cost::Label;
use crate::server::{ConnId, Source, TimerId};
use crate::trace::{Count, Dur, LineCost, SharedWith, Size, Span, TraceLine};
use crate::ws::{CloseCode, FrameHeader, OpCode};

/// The hub's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// Size of the broadcast log, in bytes: the most memory the broadcasts take
    /// however many members there are, and how far behind the newest broadcast a
    /// member may be. A sender's message that does not fit waits, its sender
    /// paused, until readers make room ([`PushHub::send_from`]); a join or leave
    /// notice that does not fit pushes the oldest frames out, and a member
    /// still behind them is failed with 1008. A frame larger than the whole log
    /// is not broadcast ([`HubStats::too_large`]). Default 4 MiB.
    pub log_bytes: usize,
    /// How long a reader may make no progress at all while the log is full and
    /// senders wait for it, before it is closed with 1008
    /// ([`HubStats::slow_closed`]). Default 5 s.
    pub slow_timeout: Duration,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            log_bytes: 4 * 1024 * 1024,
            slow_timeout: Duration::from_secs(5),
        }
    }
}

/// The hub's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Broadcasts made.
    pub broadcasts: u64,
    /// Frames given to clients to write, over all broadcasts: each broadcast's
    /// clients reached. (Frames written from the log are not in the glue's
    /// [`super::websocket::WsStats::messages_out`].)
    pub deliveries: u64,
    /// Bytes encoded and appended to the log: each broadcast's frame, once.
    pub bytes_encoded: u64,
    /// Bytes for clients to write: each frame times the clients it reached. A
    /// logical figure: the log holds each frame once.
    pub bytes_queued: u64,
    /// Bytes of the log the kernel took, over all clients' sockets.
    pub bytes_written: u64,
    /// Clients failed with 1008 because they fell a whole log behind, pushed
    /// off its tail by what cannot be paced (joins and leaves).
    pub dropped_slow: u64,
    /// Clients closed with 1008 because they made no progress for
    /// [`HubConfig::slow_timeout`] while the full log waited for them.
    pub slow_closed: u64,
    /// Messages that found the log full and waited for room, their sender's
    /// reading paused meanwhile ([`PushHub::send_from`]).
    pub paced: u64,
    /// The most bytes of such waiting messages held at once (one message per
    /// waiting sender), beside the log.
    pub waiting_peak_bytes: u64,
    /// Broadcasts not made because their frame was larger than the whole log.
    pub too_large: u64,
    /// The most bytes the log held at once.
    pub log_peak_bytes: u64,
    /// Members removed because they did not answer a ping in time.
    pub dead_peers: u64,
}

impl std::fmt::Display for HubStats {
    /// Three lines, for a server's summary at exit:
    ///
    /// ```text
    /// broadcasts: 100005 (10005050 deliveries), 437 MiB written from the log
    /// log: peak 4.00 MiB; 1512 messages waited for room (peak 2.01 KiB waiting)
    /// closed with 1008: 0 making no progress while the log was full, 0 fallen off its tail; 0 too large for it
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "broadcasts: {} ({} deliveries), {} written from the log",
            self.broadcasts,
            self.deliveries,
            Size(self.bytes_written)
        )?;
        writeln!(
            f,
            "log: peak {}; {} waited for room (peak {} waiting)",
            Size(self.log_peak_bytes),
            Count(self.paced, "message", "messages"),
            Size(self.waiting_peak_bytes)
        )?;
        write!(
            f,
            "closed with 1008: {} making no progress while the log was full, {} fallen off \
             its tail; {} too large for it",
            self.slow_closed, self.dropped_slow, self.too_large
        )
    }
}

/// What one broadcast cost, and what caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastCost {
    /// The broadcast's number, from 1.
    pub seq: u64,
    /// The connection whose event caused it (a chat message, a join, a leave), if
    /// the caller said.
    pub from: Option<ConnId>,
    /// The start of what was broadcast (text messages; empty for a frame encoded
    /// beforehand).
    pub text: Label,
    /// Size of the frame, encoded once (header and payload).
    pub frame_bytes: usize,
    /// Members that got the frame: those whose cursor it was appended in front
    /// of, still open.
    pub clients: usize,
    /// Members failed with 1008 by this broadcast, having fallen a whole log
    /// behind.
    pub dropped_slow: usize,
    /// How long the message waited for room in the full log, its sender paced
    /// meanwhile ([`PushHub::send_from`]); zero if it went in at once.
    pub waited: Duration,
    /// Bytes for the clients to write between them, `frame_bytes * clients`: a
    /// logical figure (the frame is stored once).
    pub bytes_queued: u64,
    /// The start of the loop turn in which the broadcast was made: just after
    /// `poll()` returned with the event that led to it (for a chat message, before
    /// the message was even read).
    pub started: Instant,
    /// `write()` system calls made from the broadcast's callback to the end of the
    /// turn, on all connections (so shared with the other broadcasts of the turn,
    /// see `turn_group`, and including any other traffic of the turn).
    pub turn_write_calls: u64,
    /// Bytes written over the same span.
    pub turn_bytes_written: u64,
    /// The broadcasts made in the same turn (by `seq`, first to last, this one
    /// included), whose output went out in the same writes.
    pub turn_group: (u64, u64),
    /// Members whose output was not all taken by the kernel by the end of the turn
    /// (their socket buffer was full): their cursor is behind the log's head, and
    /// the rest is written from the log when the socket has room.
    pub backlogged: usize,
    /// From `started` to the end of the turn, when the loop had offered every
    /// member's pending span of the log to its socket: the time for the frame to reach every client's
    /// kernel buffer, except the `backlogged` ones. It does not include the network
    /// or the client reading.
    pub time_to_all: Duration,
}

impl BroadcastCost {
    /// The broadcast as a line of the examples' trace ([`crate::trace`]), with the
    /// trace begun at `start`: who caused it, what was said, the frame's size times
    /// the clients it reached, the turn's writes, and the time to reach them all;
    /// stamped with the moment it had reached them all (`started` plus
    /// `time_to_all`).
    pub fn trace_line(&self, start: Instant) -> TraceLine {
        let mut what = self.text.to_string();
        if !self.waited.is_zero() {
            what.push_str(&format!(
                " (waited {} for room in the log)",
                Dur(self.waited)
            ));
        }
        if self.backlogged > 0 {
            what.push_str(&format!(" ({} backlogged)", self.backlogged));
        }
        if self.dropped_slow > 0 {
            what.push_str(&format!(
                " ({} dropped as too slow, 1008)",
                Count(self.dropped_slow as u64, "client", "clients")
            ));
        }
        let (first, last) = self.turn_group;
        // Stamped when it had reached them all, as the line is made then.
        TraceLine::new(
            start,
            self.started
                .checked_add(self.time_to_all)
                .unwrap_or(self.started),
            self.from.map(|c| c.serial()),
            "broadcast",
        )
        .what(what)
        .cost(LineCost {
            bytes_in: 0,
            bytes_out: self.frame_bytes as u64,
            copies: Some(self.clients as u64),
            read_calls: 0,
            write_calls: self.turn_write_calls,
            took: Some(("reached all in", self.time_to_all)),
            shared: (first != last).then_some(SharedWith {
                what: "broadcasts",
                span: Span(first, last),
            }),
        })
    }
}

impl std::fmt::Display for BroadcastCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "broadcast {}: {} B frame encoded once, {} reached, {} B queued; \
             turn: {}, {} B written",
            self.seq,
            self.frame_bytes,
            Count(self.clients as u64, "client", "clients"),
            self.bytes_queued,
            Count(self.turn_write_calls, "write syscall", "write syscalls"),
            self.turn_bytes_written
        )?;
        let (first, last) = self.turn_group;
        if first != last {
            write!(f, " (shared by broadcasts {})", Span(first, last))?;
        }
        write!(f, "; {} to reach all", Dur(self.time_to_all))?;
        if self.backlogged > 0 {
            write!(f, " but {} backlogged", self.backlogged)?;
        }
        if self.dropped_slow > 0 {
            write!(f, "; {} dropped as too slow (1008)", self.dropped_slow)?;
        }
        if !self.waited.is_zero() {
            write!(f, "; waited {} for room in the log", Dur(self.waited))?;
        }
        Ok(())
    }
}

/// Called with each broadcast's cost at the end of its turn (for `--trace`).
pub type BroadcastObserver = Box<dyn FnMut(&BroadcastCost) + Send>;

/// The broadcasts of the current loop turn, waiting for its end to be timed.
#[derive(Debug, Default)]
struct Turn {
    /// The server's write calls when the turn's first broadcast began.
    write_calls: u64,
    /// The server's bytes written then.
    bytes_out: u64,
    /// The broadcasts so far; reused from turn to turn.
    costs: Vec<BroadcastCost>,
}

/// A member's cursor into the log. It outlives the membership: after `on_close`
/// the end of a frame a short write cut is still to be written, so the cursor is
/// dropped only in [`PushHub::source_done`].
#[derive(Debug)]
struct Reader {
    /// The connection.
    conn: ConnId,
    /// Its cursor in the log.
    id: ReaderId,
    /// The end of the frame its last write cut, kept when it fell off the log's
    /// tail so that its stream stays whole up to the 1008 close frame. Empty
    /// otherwise.
    rest: Vec<u8>,
    /// The last time the kernel took some of its pending bytes (`None`: not
    /// since it joined).
    progressed: Option<Instant>,
}

/// A sender's message that found the log full: it waits here, encoded, while
/// its sender is not read ([`PushHub::send_from`]).
#[derive(Debug)]
struct Waiting {
    /// The sender (`None`: relayed from elsewhere, [`PushHub::send_relayed`]).
    from: Option<ConnId>,
    /// The encoded frame.
    frame: Vec<u8>,
    /// The start of its text, for the cost report.
    text: Label,
    /// When it arrived.
    since: Instant,
}

/// What became of a sender's message ([`PushHub::send_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Appended to the log at once, for every member to write, as the
    /// broadcast with this number ([`BroadcastCost::seq`]; its cost goes to the
    /// observer at the end of the turn).
    Now(u64),
    /// The log was full: the message waits for room, and its sender is not read
    /// until it is in.
    Waiting,
    /// Larger than the whole log: not broadcast ([`HubStats::too_large`]).
    TooLarge,
}

/// A broadcast hub: members join and leave, and a broadcast appends one frame to
/// a shared log that every member writes from. See the [module
/// documentation](self).
pub struct PushHub {
    /// The settings.
    config: HubConfig,
    /// The broadcasts, encoded once; each member is a cursor into it.
    log: FrameLog,
    /// The cursors, by the connection's slot index.
    readers: Vec<Option<Reader>>,
    /// Which connection each cursor belongs to.
    by_reader: HashMap<ReaderId, ConnId>,
    /// The frame being encoded; reused from broadcast to broadcast.
    frame: Vec<u8>,
    /// Readers about to fall off the log's tail, with their cursors; reused.
    falling: Vec<(ReaderId, u64)>,
    /// Readers that fell off it; reused.
    fallen: Vec<ReaderId>,
    /// The members, in no particular order: a broadcast walks this dense list.
    members: Vec<ConnId>,
    /// Each member's place in `members`, by the connection's slot index, so that
    /// joining and leaving take constant time however many members there are.
    positions: Vec<Option<usize>>,
    /// Totals.
    stats: HubStats,
    /// This turn's broadcasts, timed at its end.
    turn: Turn,
    /// Who to tell each broadcast's cost, if anyone.
    observer: Option<BroadcastObserver>,
    /// Senders' messages waiting for room in the log, oldest first; each
    /// waiting sender is paused, so at most one per sender.
    waiting: VecDeque<Waiting>,
    /// Bytes of `waiting`'s frames.
    waiting_bytes: usize,
    /// Frame buffers of messages that went in, for the next ones to wait in.
    spare_frames: Vec<Vec<u8>>,
    /// Since when senders have been waiting (`waiting` not empty).
    pacing_since: Option<Instant>,
    /// The timer that looks for readers making no progress while senders wait.
    slow_timer: Option<TimerId>,
}

impl Default for PushHub {
    fn default() -> Self {
        PushHub::new(HubConfig::default())
    }
}

impl PushHub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> PushHub {
        PushHub {
            config,
            log: FrameLog::new(config.log_bytes),
            readers: Vec::new(),
            by_reader: HashMap::new(),
            frame: Vec::new(),
            falling: Vec::new(),
            fallen: Vec::new(),
            members: Vec::new(),
            positions: Vec::new(),
            stats: HubStats::default(),
            turn: Turn::default(),
            observer: None,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            spare_frames: Vec::new(),
            pacing_since: None,
            slow_timer: None,
        }
    }

    /// Calls `observer` with each broadcast's cost, at the end of its turn.
    pub fn set_observer(&mut self, observer: impl FnMut(&BroadcastCost) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Adds a member; `false` if it was one already. Its cursor starts at the
    /// log's head: it gets every broadcast from now on (a join notice made next
    /// included).
    pub fn join(&mut self, conn: ConnId) -> bool {
        if self.contains(conn) {
            return false;
        }
        self.attach(conn);
        let index = conn.index();
        if self.positions.len() <= index {
            self.positions.resize(index + 1, None);
        }
        if let Some(slot) = self.positions.get_mut(index) {
            *slot = Some(self.members.len());
            self.members.push(conn);
        }
        true
    }

    /// Removes a member; `false` if it was not one. It gets no more broadcasts:
    /// from now on its connection writes only the end of a frame a short write
    /// cut, and its cursor stays until [`PushHub::source_done`] (it holds back
    /// nothing once a whole log was appended after it). (To count dead peers, use
    /// [`PushHub::leave_because`].)
    pub fn leave(&mut self, conn: ConnId) -> bool {
        let Some(at) = self.position(conn) else {
            return false;
        };
        if let Some(slot) = self.positions.get_mut(conn.index()) {
            *slot = None;
        }
        self.members.swap_remove(at);
        // The last member moved into the hole: record its new place.
        if let Some(&moved) = self.members.get(at)
            && let Some(slot) = self.positions.get_mut(moved.index())
        {
            *slot = Some(at);
        }
        true
    }

    /// Gives `conn` a cursor at the log's head, unless it has one.
    fn attach(&mut self, conn: ConnId) {
        let index = conn.index();
        if self.readers.len() <= index {
            self.readers.resize_with(index + 1, || None);
        }
        let Some(slot) = self.readers.get_mut(index) else {
            return;
        };
        if slot.as_ref().is_some_and(|r| r.conn == conn) {
            return;
        }
        // A cursor left by an earlier connection in the same slot (its
        // `source_done` never came): it holds the log back for nobody.
        if let Some(old) = slot.take() {
            self.log.remove_reader(old.id);
            self.by_reader.remove(&old.id);
        }
        let id = self.log.add_reader();
        self.by_reader.insert(id, conn);
        *slot = Some(Reader {
            conn,
            id,
            rest: Vec::new(),
            progressed: None,
        });
    }

    /// `conn`'s cursor, if it has one.
    fn reader(&self, conn: ConnId) -> Option<&Reader> {
        self.readers
            .get(conn.index())?
            .as_ref()
            .filter(|r| r.conn == conn)
    }

    /// `conn`'s cursor, if it has one.
    fn reader_mut(&mut self, conn: ConnId) -> Option<&mut Reader> {
        self.readers
            .get_mut(conn.index())?
            .as_mut()
            .filter(|r| r.conn == conn)
    }

    /// Where `conn` is in `members`, if it is a member.
    fn position(&self, conn: ConnId) -> Option<usize> {
        let at = (*self.positions.get(conn.index())?)?;
        (self.members.get(at) == Some(&conn)).then_some(at)
    }

    /// Removes a member that closed for `closed`, counting dead peers; `false` if
    /// it was not one.
    pub fn leave_because(&mut self, conn: ConnId, closed: WsClosed) -> bool {
        let left = self.leave(conn);
        if left && closed == WsClosed::PingTimeout {
            self.stats.dead_peers += 1;
        }
        left
    }

    /// Whether `conn` is a member.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.position(conn).is_some()
    }

    /// The members, in no particular order.
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// The totals.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// The settings.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The broadcast log: its size now ([`FrameLog::len`]) is the memory the
    /// broadcasts take, at most [`HubConfig::log_bytes`].
    pub fn log(&self) -> &FrameLog {
        &self.log
    }

    /// Whether a text message of `len` bytes fits in the log once encoded.
    pub fn fits(&self, len: usize) -> bool {
        let header = FrameHeader::server(true, OpCode::Text, len as u64);
        header.encoded_len().saturating_add(len) <= self.log.capacity()
    }

    /// What `conn` has to write from the log ([`WsApp::source`]): its pending
    /// span, or, once it fell off the tail, the end of the frame it was cut in.
    /// A connection that left writes only the end of a frame a short write cut.
    pub fn source(&self, conn: ConnId) -> Source<'_> {
        let Some(reader) = self.reader(conn) else {
            return Source::NONE;
        };
        if !reader.rest.is_empty() {
            return Source::new(&reader.rest, &[], reader.rest.len());
        }
        let source = self.pending(reader.id);
        if self.contains(conn) {
            source
        } else {
            source.frame_rest_only()
        }
    }

    /// What reader `id` has to write from the log.
    fn pending(&self, id: ReaderId) -> Source<'_> {
        match self.log.pending(id) {
            Pending::Bytes(first, second) => {
                let cursor = self.log.cursor(id).unwrap_or(0);
                let rest = self
                    .log
                    .frame_end(id)
                    .map_or(0, |end| end.saturating_sub(cursor));
                Source::new(first, second, usize::try_from(rest).unwrap_or(usize::MAX))
            }
            Pending::Fallen | Pending::Unknown => Source::NONE,
        }
    }

    /// The kernel took `n` bytes of what [`PushHub::source`] gave for `conn`
    /// ([`WsApp::source_written`]): its cursor moves on, and messages waiting
    /// for room go in if there is room now.
    pub fn source_written(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId, n: usize) {
        self.stats.bytes_written += n as u64;
        let now = ws.now();
        let Some(reader) = self.reader_mut(conn) else {
            return;
        };
        if n > 0 {
            reader.progressed = Some(now);
        }
        if reader.rest.is_empty() {
            let id = reader.id;
            self.log.consume(id, n);
            if !self.waiting.is_empty() {
                self.admit_waiting(ws);
            }
        } else {
            let n = n.min(reader.rest.len());
            reader.rest.drain(..n);
        }
    }

    /// `conn`'s connection is gone ([`WsApp::source_done`]): its cursor is
    /// dropped, and with it what only it held back in the log.
    pub fn source_done(&mut self, conn: ConnId) {
        let Some(slot) = self.readers.get_mut(conn.index()) else {
            return;
        };
        if slot.as_ref().is_some_and(|r| r.conn == conn)
            && let Some(reader) = slot.take()
        {
            self.log.remove_reader(reader.id);
            self.by_reader.remove(&reader.id);
        }
    }

    /// Broadcasts a message that `from` sent (a chat message), made of `parts`
    /// joined, **pacing the sender**: if the log has no room for it (its slowest
    /// reader is behind; a sixteenth of the log stays free for join and leave
    /// notices, which cannot wait) or other senders' messages already wait, the message
    /// waits, encoded, and `from` is not read any more
    /// ([`WsContext::pause_reading`]): its socket's receive buffer fills and
    /// TCP makes it wait. Waiting messages go into the log in the order they
    /// came as soon as readers make room (at least an eighth of the log, so
    /// that senders are not woken for a few bytes at a time), and their senders
    /// are read again. A reader that makes no progress at all for
    /// [`HubConfig::slow_timeout`] while messages wait is closed with 1008
    /// ([`HubStats::slow_closed`]), which frees the log for the others. So a
    /// reader that keeps reading never loses a message, however long the burst,
    /// and memory stays the log plus at most one waiting message per sender.
    ///
    /// What does not come from a sender that can be paced (a join or leave
    /// notice, a message relayed from elsewhere) goes through
    /// [`PushHub::broadcast_text_parts`] instead, which appends at once.
    pub fn send_from(&mut self, ws: &mut WsContext<'_, '_>, from: ConnId, parts: &[&str]) -> Sent {
        self.send_paced(ws, Some(from), parts)
    }

    /// Broadcasts a message relayed from elsewhere (another server's chat,
    /// through Redis), paced as [`PushHub::send_from`] paces a sender's, except
    /// that there is no sender here to pause: the relay watches
    /// [`PushHub::waiting_bytes`] and stops reading its own source (its Redis
    /// connection) while messages wait. Readers that stall the log are cut off
    /// after [`HubConfig::slow_timeout`] as for any sender.
    pub fn send_relayed(&mut self, ws: &mut WsContext<'_, '_>, parts: &[&str]) -> Sent {
        self.send_paced(ws, None, parts)
    }

    /// [`PushHub::send_from`] and [`PushHub::send_relayed`]: `from` is paused
    /// while its message waits.
    fn send_paced(
        &mut self,
        ws: &mut WsContext<'_, '_>,
        from: Option<ConnId>,
        parts: &[&str],
    ) -> Sent {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let header = FrameHeader::server(true, OpCode::Text, len as u64);
        let mut frame = self.spare_frames.pop().unwrap_or_default();
        frame.clear();
        header.write(&mut frame);
        let mut text = Label::EMPTY;
        for part in parts {
            frame.extend_from_slice(part.as_bytes());
            text.push(part.as_bytes());
        }
        if frame.len() > self.log.capacity() {
            self.stats.too_large += 1;
            self.spare_frames.push(frame);
            return Sent::TooLarge;
        }
        let free = self.log.capacity() - self.log.len();
        if self.waiting.is_empty()
            && free >= self.paced_need(frame.len())
            && self.log.append(&frame).is_ok()
        {
            self.begin_turn(ws);
            self.note_log_size();
            let cost = self.reach_members(ws, frame.len(), from, text, 0, Duration::ZERO);
            self.spare_frames.push(frame);
            return Sent::Now(cost.seq);
        }
        let now = ws.now();
        self.waiting_bytes += frame.len();
        self.waiting.push_back(Waiting {
            from,
            frame,
            text,
            since: now,
        });
        self.stats.paced += 1;
        self.stats.waiting_peak_bytes =
            self.stats.waiting_peak_bytes.max(self.waiting_bytes as u64);
        if let Some(from) = from {
            ws.pause_reading(from);
        }
        if self.pacing_since.is_none() {
            self.pacing_since = Some(now);
        }
        if self.slow_timer.is_none() {
            self.slow_timer = Some(ws.set_timer(self.config.slow_timeout, 0));
        }
        Sent::Waiting
    }

    /// The free bytes a sender's frame of `len` bytes needs in the log before it
    /// goes in: itself, and a sixteenth of the log kept free for what cannot be
    /// paced (join and leave notices), so that a burst of senders does not leave
    /// every reader one notice away from falling off the tail. A frame too big
    /// for both needs the whole log free.
    fn paced_need(&self, len: usize) -> usize {
        let capacity = self.log.capacity();
        len.saturating_add(capacity / 16).min(capacity)
    }

    /// Messages waiting for room now ([`PushHub::send_from`]).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Bytes of the messages waiting for room now.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// Appends the waiting messages that fit now, oldest first, once readers have
    /// made room for at least an eighth of the log (or all of it is free), and
    /// reads their senders again.
    fn admit_waiting(&mut self, ws: &mut WsContext<'_, '_>) {
        let capacity = self.log.capacity();
        let now = ws.now();
        while let Some(front) = self.waiting.front() {
            let free = capacity - self.log.len();
            let enough = self.paced_need(front.frame.len()).max(capacity / 8);
            if free < enough || self.log.append(&front.frame).is_err() {
                break;
            }
            let Some(waiting) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes -= waiting.frame.len();
            self.begin_turn(ws);
            self.note_log_size();
            let waited = now
                .saturating_duration_since(waiting.since)
                .max(Duration::from_nanos(1));
            self.reach_members(
                ws,
                waiting.frame.len(),
                waiting.from,
                waiting.text,
                0,
                waited,
            );
            if let Some(from) = waiting.from {
                ws.resume_reading(from);
            }
            self.spare_frames.push(waiting.frame);
        }
        if self.waiting.is_empty() {
            self.pacing_since = None;
            if let Some(timer) = self.slow_timer.take() {
                ws.cancel_timer(timer);
            }
            self.spare_frames.truncate(4);
        }
    }

    /// A timer came due ([`WsApp::on_timer`]): if it is the hub's, close the
    /// readers that made no progress for [`HubConfig::slow_timeout`] while
    /// senders waited for them, with 1008, and let the waiting messages in.
    /// Returns whether it was the hub's timer.
    pub fn on_timer(&mut self, ws: &mut WsContext<'_, '_>, timer: TimerId) -> bool {
        if self.slow_timer != Some(timer) {
            return false;
        }
        self.slow_timer = None;
        let Some(pacing_since) = self.pacing_since else {
            return true;
        };
        let now = ws.now();
        let timeout = self.config.slow_timeout;
        let mut next: Option<Instant> = None;
        let mut stalled = Vec::new();
        for reader in self.readers.iter().flatten() {
            if self.log.lag(reader.id) == 0 || !self.contains(reader.conn) {
                continue;
            }
            let since = reader
                .progressed
                .map_or(pacing_since, |p| p.max(pacing_since));
            if now.saturating_duration_since(since) >= timeout {
                stalled.push(reader.conn);
            } else {
                let due = since + timeout;
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        for conn in stalled {
            self.cut_off(ws, conn);
        }
        self.admit_waiting(ws);
        if !self.waiting.is_empty() {
            let after = next.map_or(timeout, |at| at.saturating_duration_since(now));
            self.slow_timer = Some(ws.set_timer(after.max(Duration::from_millis(1)), 0));
        }
        true
    }

    /// Closes a member that held the full log back without progress, with 1008:
    /// its cursor leaves the log at once (keeping only the end of a frame its
    /// last write cut, so that its close frame lands between frames).
    fn cut_off(&mut self, ws: &mut WsContext<'_, '_>, conn: ConnId) {
        if !ws.can_send(conn) {
            return;
        }
        let Some(reader) = self.reader(conn) else {
            return;
        };
        let id = reader.id;
        let mut rest = Vec::new();
        copy_rest_of_frame(&self.log, id, &mut rest);
        self.log.remove_reader(id);
        self.by_reader.remove(&id);
        if let Some(reader) = self.reader_mut(conn) {
            reader.rest = rest;
        }
        let reason = format!(
            "slow consumer: no progress for {} while the broadcast log was full",
            Dur(self.config.slow_timeout)
        );
        ws.fail(conn, CloseCode::POLICY_VIOLATION, &reason);
        ws.wake_writer(conn);
        self.stats.slow_closed += 1;
    }

    /// Sends `text` to every member: encoded once, appended to the log once.
    pub fn broadcast_text(&mut self, ws: &mut WsContext<'_, '_>, text: &str) -> BroadcastCost {
        self.broadcast_text_parts(ws, None, &[text])
    }

    /// Sends a text message made of `parts` joined, encoded straight into one frame
    /// (no intermediate string): `["User", "4242", " says: ", text]`. `from` is the
    /// connection whose event caused it, for the cost report.
    pub fn broadcast_text_parts(
        &mut self,
        ws: &mut WsContext<'_, '_>,
        from: Option<ConnId>,
        parts: &[&str],
    ) -> BroadcastCost {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let header = FrameHeader::server(true, OpCode::Text, len as u64);
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        header.write(&mut frame);
        let mut text = Label::EMPTY;
        for part in parts {
            frame.extend_from_slice(part.as_bytes());
            text.push(part.as_bytes());
        }
        let cost = self.broadcast(ws, &frame, from, text);
        self.frame = frame;
        cost
    }

    /// Sends a frame encoded beforehand ([`crate::ws::text_frame`], [`crate::ws::binary_frame`])
    /// to every member: appended once to the log, every member's writer woken. A
    /// member that falls a whole log behind for it is failed with 1008 (its
    /// `on_close` follows the callback); a member that can no longer be sent to
    /// is skipped. A frame larger than the whole log reaches nobody
    /// ([`HubStats::too_large`]).
    pub fn broadcast_frame(&mut self, ws: &mut WsContext<'_, '_>, frame: &[u8]) -> BroadcastCost {
        self.broadcast(ws, frame, None, Label::EMPTY)
    }

    /// Before a forced append moves the tail to `new_tail`: a reader behind it
    /// whose last write cut a frame keeps the end of that frame, so that its
    /// stream stays whole up to its close frame.
    fn keep_cut_frames(&mut self, new_tail: u64) {
        self.falling.clear();
        self.falling.extend(self.log.readers_behind(new_tail));
        for &(id, _) in &self.falling {
            let Some(&conn) = self.by_reader.get(&id) else {
                continue;
            };
            let Some(reader) = self
                .readers
                .get_mut(conn.index())
                .and_then(Option::as_mut)
                .filter(|r| r.conn == conn && r.rest.is_empty())
            else {
                continue;
            };
            copy_rest_of_frame(&self.log, id, &mut reader.rest);
        }
    }

    /// [`PushHub::broadcast_frame`], saying who caused it and what it says.
    fn broadcast(
        &mut self,
        ws: &mut WsContext<'_, '_>,
        frame: &[u8],
        from: Option<ConnId>,
        text: Label,
    ) -> BroadcastCost {
        self.begin_turn(ws);
        let size = frame.len();
        let mut dropped = 0;
        if size > self.log.capacity() {
            self.stats.too_large += 1;
            return self.reach_members(ws, 0, from, text, 0, Duration::ZERO);
        }
        {
            self.keep_cut_frames(self.log.tail_after_forcing(size));
            let mut fallen = std::mem::take(&mut self.fallen);
            fallen.clear();
            if self.log.force_append(frame, &mut fallen).is_ok() {
                self.note_log_size();
            }
            for &id in &fallen {
                let Some(&conn) = self.by_reader.get(&id) else {
                    continue;
                };
                // A connection that left is closing or, if the application keeps
                // it open, no longer hears broadcasts: its cursor just stays.
                if self.contains(conn) && ws.can_send(conn) {
                    ws.fail(
                        conn,
                        CloseCode::POLICY_VIOLATION,
                        "slow consumer: fell a whole broadcast log behind",
                    );
                    ws.wake_writer(conn);
                    dropped += 1;
                }
            }
            self.fallen = fallen;
        }
        self.reach_members(ws, size, from, text, dropped, Duration::ZERO)
    }

    /// Remembers the write counters at the turn's first broadcast.
    fn begin_turn(&mut self, ws: &WsContext<'_, '_>) {
        if self.turn.costs.is_empty() {
            let server = ws.server_stats();
            self.turn.write_calls = server.write_calls;
            self.turn.bytes_out = server.bytes_out;
        }
    }

    /// Records the log's size after an append.
    fn note_log_size(&mut self) {
        self.stats.log_peak_bytes = self.stats.log_peak_bytes.max(self.log.len() as u64);
    }

    /// A frame of `size` bytes was appended (0: none was): wakes every member's
    /// writer, counts the broadcast and keeps its cost for the turn's end.
    fn reach_members(
        &mut self,
        ws: &mut WsContext<'_, '_>,
        size: usize,
        from: Option<ConnId>,
        text: Label,
        dropped: usize,
        waited: Duration,
    ) -> BroadcastCost {
        let mut clients = 0;
        if size > 0 {
            for &member in &self.members {
                if ws.can_send(member) && self.reader(member).is_some() {
                    ws.wake_writer(member);
                    clients += 1;
                }
            }
        }
        self.stats.broadcasts += 1;
        self.stats.deliveries += clients as u64;
        self.stats.bytes_encoded += size as u64;
        self.stats.bytes_queued += (size * clients) as u64;
        self.stats.dropped_slow += dropped as u64;
        let cost = BroadcastCost {
            seq: self.stats.broadcasts,
            from,
            text,
            frame_bytes: size,
            clients,
            dropped_slow: dropped,
            waited,
            bytes_queued: (size * clients) as u64,
            started: ws.now(),
            turn_write_calls: 0,
            turn_bytes_written: 0,
            turn_group: (self.stats.broadcasts, self.stats.broadcasts),
            backlogged: 0,
            time_to_all: Duration::ZERO,
        };
        self.turn.costs.push(cost);
        cost
    }

    /// The loop turn ended: time this turn's broadcasts and report them. Call it
    /// from [`WsApp::on_turn_end`].
    pub fn turn_end(&mut self, ws: &mut WsContext<'_, '_>) {
        // Cursors dropped during the turn (connections gone) may have made room.
        if !self.waiting.is_empty() {
            self.admit_waiting(ws);
        }
        if self.turn.costs.is_empty() {
            return;
        }
        let now = ws.now();
        let server = ws.server_stats();
        let write_calls = server.write_calls.saturating_sub(self.turn.write_calls);
        let bytes_written = server.bytes_out.saturating_sub(self.turn.bytes_out);
        // Nothing queued anywhere: every member is reached. Otherwise count the
        // members still waiting for their socket.
        let backlogged = if server.queued_output_bytes == 0 {
            0
        } else {
            self.members
                .iter()
                .filter(|&&m| ws.queued_bytes(m).is_some_and(|q| q > 0))
                .count()
        };
        let first = self.turn.costs.first().map_or(0, |c| c.seq);
        let last = self.turn.costs.last().map_or(0, |c| c.seq);
        for cost in &mut self.turn.costs {
            cost.turn_write_calls = write_calls;
            cost.turn_bytes_written = bytes_written;
            cost.turn_group = (first, last);
            cost.backlogged = backlogged;
            cost.time_to_all = now.saturating_duration_since(cost.started);
            if let Some(observer) = self.observer.as_mut() {
                observer(cost);
            }
        }
        self.turn.costs.clear();
    }
}

/// Appends to `out` the end of the frame reader `id` is in the middle of: what it
/// must still write for its stream to stay whole before a close frame. Nothing if
/// it is between frames (or has fallen off the log already).
fn copy_rest_of_frame(log: &FrameLog, id: ReaderId, out: &mut Vec<u8>) {
    let (Some(end), Some(cursor), Pending::Bytes(first, second)) =
        (log.frame_end(id), log.cursor(id), log.pending(id))
    else {
        return;
    };
    let want = usize::try_from(end.saturating_sub(cursor)).unwrap_or(usize::MAX);
    let from_first = want.min(first.len());
    out.extend_from_slice(first.get(..from_first).unwrap_or_default());
    let from_second = (want - from_first).min(second.len());
    out.extend_from_slice(second.get(..from_second).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_cost_reads_as_a_trace_line() {
        let cost = BroadcastCost {
            seq: 3,
            from: Some(ConnId::new_for_tests(7, 0)),
            text: Label::new(b"User4242 says: hi"),
            frame_bytes: 30,
            clients: 2,
            dropped_slow: 1,
            waited: Duration::ZERO,
            bytes_queued: 60,
            started: Instant::now(),
            turn_write_calls: 3,
            turn_bytes_written: 60,
            turn_group: (2, 3),
            backlogged: 1,
            time_to_all: Duration::from_micros(40),
        };
        let line = cost.to_string();
        assert!(line.starts_with("broadcast 3: 30 B frame encoded once, 2 clients reached"));
        assert!(line.contains("3 write syscalls, 60 B written (shared by broadcasts 2-3)"));
        assert!(line.contains("40.0 µs to reach all but 1 backlogged"));
        assert!(line.contains("1 dropped as too slow (1008)"));
        let one = BroadcastCost {
            clients: 1,
            turn_write_calls: 1,
            ..cost
        };
        assert!(one.to_string().contains("1 client reached"), "{one}");
        assert!(one.to_string().contains("turn: 1 write syscall,"), "{one}");
        // Stamped when it had reached them all: 5 ms and 40 µs after the start.
        let start = cost.started - Duration::from_millis(5);
        assert_eq!(
            cost.trace_line(start).to_string(),
            "  0.005 s  conn 7     broadcast   in 0 B        out 30 B x 2 clients      \
             0 reads    3 writes    reached all in 40.0 µs  \
             User4242 says: hi (1 backlogged) (1 client dropped as too slow, 1008)  \
             (syscalls shared with broadcasts 2-3)"
        );
    }

    #[test]
    fn members_join_once_and_leave_once() {
        let mut hub = PushHub::default();
        let a = ConnId::new_for_tests(1, 0);
        assert!(hub.join(a));
        assert!(!hub.join(a));
        assert!(hub.contains(a));
        assert!(hub.leave_because(a, WsClosed::PingTimeout));
        assert!(!hub.leave(a));
        assert_eq!(hub.stats().dead_peers, 1);
        assert_eq!(hub.config().log_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn leaving_keeps_every_other_member_findable() {
        let mut hub = PushHub::default();
        let ids: Vec<ConnId> = (0..6)
            .map(|i| ConnId::new_for_tests(i + 1, i as usize * 2))
            .collect();
        for &id in &ids {
            assert!(hub.join(id));
        }
        for gone in [ids[0], ids[3], ids[5]] {
            assert!(hub.leave(gone));
            assert!(!hub.contains(gone));
        }
        for &id in &[ids[1], ids[2], ids[4]] {
            assert!(hub.contains(id));
        }
        assert_eq!(hub.members().len(), 3);
        // A later connection in a reused slot is not taken for the old one.
        let reused = ConnId::new_for_tests(99, ids[1].index());
        assert!(!hub.contains(reused));
        assert!(!hub.leave(reused));
        assert!(hub.contains(ids[1]));
    }
}
