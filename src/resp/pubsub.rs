//! Reading the replies that are not plain values: pub/sub messages and `XREAD`.
//!
//! # Pub/sub messages
//!
//! After `SUBSCRIBE`, a RESP2 connection is in *subscribe mode*: the server sends
//! three-element arrays whenever it likes, and only a few commands are allowed.
//! Under RESP3 (`HELLO 3`) the same arrays come as *push* frames (`>`), which a
//! client can tell apart from replies by their type alone. [`pubsub`] reads either:
//!
//! ```text
//! ["subscribe",    channel, count]      the subscription is live; count = how many now
//! ["unsubscribe",  channel, count]      channel is null after UNSUBSCRIBE of nothing
//! ["psubscribe",   pattern, count]
//! ["punsubscribe", pattern, count]
//! ["message",      channel, payload]    someone PUBLISHed to channel
//! ["pmessage",     pattern, channel, payload]
//! ["pong",         payload]             PING's answer in RESP2 subscribe mode
//! ```
//!
//! # Stream entries
//!
//! `XREAD ... STREAMS key id` answers, per stream, the entries after `id`: each an
//! id (`1526919030474-0`) and a flat list of field, value, field, value. RESP2
//! sends `[[stream, [[id, [f, v, ...]], ...]], ...]`; RESP3 sends a map from
//! stream to the same entry list; `BLOCK` that times out sends a null. [`xread`]
//! reads all three shapes.
//!
//! `XINFO STREAM key` describes the stream: how many entries it holds, how many
//! were ever added, its first entry. [`stream_info`] reads what a consumer needs
//! to know whether entries after its cursor were trimmed away ([`StreamId`] reads
//! and orders the ids).

use std::fmt;

use super::value::Value;

/// A message a subscribed connection receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSub<'a> {
    /// `SUBSCRIBE` took effect for `channel`; the connection now has `count`
    /// subscriptions.
    Subscribe {
        /// The channel.
        channel: &'a [u8],
        /// Subscriptions (channels and patterns) now held.
        count: i64,
    },
    /// `UNSUBSCRIBE` took effect for `channel` (`None` when there was nothing to
    /// unsubscribe from).
    Unsubscribe {
        /// The channel.
        channel: Option<&'a [u8]>,
        /// Subscriptions now held; at 0 the connection leaves subscribe mode.
        count: i64,
    },
    /// `PSUBSCRIBE` took effect for `pattern`.
    PSubscribe {
        /// The glob-style pattern.
        pattern: &'a [u8],
        /// Subscriptions now held.
        count: i64,
    },
    /// `PUNSUBSCRIBE` took effect for `pattern` (`None` when there was nothing).
    PUnsubscribe {
        /// The pattern.
        pattern: Option<&'a [u8]>,
        /// Subscriptions now held.
        count: i64,
    },
    /// A `PUBLISH` to a subscribed channel.
    Message {
        /// The channel it was published to.
        channel: &'a [u8],
        /// What was published.
        payload: &'a [u8],
    },
    /// A `PUBLISH` to a channel matching a subscribed pattern.
    PMessage {
        /// The pattern that matched.
        pattern: &'a [u8],
        /// The channel it was published to.
        channel: &'a [u8],
        /// What was published.
        payload: &'a [u8],
    },
    /// The answer to `PING` in RESP2 subscribe mode.
    Pong {
        /// PING's argument, or empty.
        payload: &'a [u8],
    },
}

/// Reads `value` as a pub/sub message (a RESP2 array or a RESP3 push); `None` if it
/// is not one (an ordinary reply, or a message of the wrong shape).
///
/// ```
/// use wirepatterns::resp::{PubSub, Value, pubsub};
///
/// let bulk = |s: &str| Value::Bulk(s.as_bytes().to_vec());
/// let msg = Value::Push(vec![bulk("message"), bulk("room"), bulk("hi")]);
/// assert_eq!(pubsub(&msg), Some(PubSub::Message { channel: b"room", payload: b"hi" }));
/// assert_eq!(pubsub(&Value::Simple(b"OK".to_vec())), None);
/// ```
pub fn pubsub(value: &Value) -> Option<PubSub<'_>> {
    let items = match value {
        Value::Array(items) | Value::Push(items) => items,
        _ => return None,
    };
    let (kind, rest) = items.split_first()?;
    let kind = kind.as_bytes()?;
    Some(match (kind, rest) {
        (b"message", [channel, payload]) => PubSub::Message {
            channel: channel.as_bytes()?,
            payload: payload.as_bytes()?,
        },
        (b"pmessage", [pattern, channel, payload]) => PubSub::PMessage {
            pattern: pattern.as_bytes()?,
            channel: channel.as_bytes()?,
            payload: payload.as_bytes()?,
        },
        (b"subscribe", [channel, count]) => PubSub::Subscribe {
            channel: channel.as_bytes()?,
            count: count.as_integer()?,
        },
        (b"unsubscribe", [channel, count]) => PubSub::Unsubscribe {
            channel: nullable(channel)?,
            count: count.as_integer()?,
        },
        (b"psubscribe", [pattern, count]) => PubSub::PSubscribe {
            pattern: pattern.as_bytes()?,
            count: count.as_integer()?,
        },
        (b"punsubscribe", [pattern, count]) => PubSub::PUnsubscribe {
            pattern: nullable(pattern)?,
            count: count.as_integer()?,
        },
        (b"pong", [payload]) => PubSub::Pong {
            payload: payload.as_bytes()?,
        },
        _ => return None,
    })
}

/// One stream entry: its id and its field-value pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry<'a> {
    /// The entry id, `<milliseconds>-<sequence>`.
    pub id: &'a [u8],
    /// The fields and values, in the order `XADD` gave them (empty for an entry
    /// deleted since, which Redis sends with null fields).
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

/// The entries `XREAD` returned for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntries<'a> {
    /// The stream's key.
    pub stream: &'a [u8],
    /// Its new entries, oldest first.
    pub entries: Vec<StreamEntry<'a>>,
}

/// Reads an `XREAD` reply: one [`StreamEntries`] per stream with new entries, an
/// empty list for a null (a `BLOCK` that timed out). `None` if the reply has
/// another shape (an error reply included: check [`Value::as_error`] first to say
/// why).
///
/// ```
/// use wirepatterns::resp::{Value, xread};
///
/// let bulk = |s: &str| Value::Bulk(s.as_bytes().to_vec());
/// let entry = Value::Array(vec![bulk("1-0"), Value::Array(vec![bulk("msg"), bulk("hi")])]);
/// let reply = Value::Array(vec![Value::Array(vec![bulk("chat"), Value::Array(vec![entry])])]);
/// let streams = xread(&reply).unwrap();
/// assert_eq!(streams[0].stream, b"chat");
/// assert_eq!(streams[0].entries[0].id, b"1-0");
/// assert_eq!(streams[0].entries[0].fields, [(&b"msg"[..], &b"hi"[..])]);
/// ```
pub fn xread(value: &Value) -> Option<Vec<StreamEntries<'_>>> {
    match value {
        Value::Null => Some(Vec::new()),
        Value::Array(streams) => streams
            .iter()
            .map(|s| match s.as_items()? {
                [stream, entries] => stream_entries(stream, entries),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams
            .iter()
            .map(|(stream, entries)| stream_entries(stream, entries))
            .collect(),
        _ => None,
    }
}

/// One stream's name and entry list.
fn stream_entries<'a>(stream: &'a Value, entries: &'a Value) -> Option<StreamEntries<'a>> {
    let entries = entries
        .as_items()?
        .iter()
        .map(stream_entry)
        .collect::<Option<Vec<_>>>()?;
    Some(StreamEntries {
        stream: stream.as_bytes()?,
        entries,
    })
}

/// `[id, [field, value, ...]]`.
fn stream_entry(entry: &Value) -> Option<StreamEntry<'_>> {
    let [id, fields] = entry.as_items()? else {
        return None;
    };
    let fields = match fields {
        Value::Null => Vec::new(),
        fields => {
            let flat = fields.as_items()?;
            if flat.len() % 2 != 0 {
                return None;
            }
            flat.chunks_exact(2)
                .map(|pair| match pair {
                    [f, v] => Some((f.as_bytes()?, v.as_bytes()?)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?
        }
    };
    Some(StreamEntry {
        id: id.as_bytes()?,
        fields,
    })
}

/// A channel that may be null (unsubscribing from nothing).
fn nullable(v: &Value) -> Option<Option<&[u8]>> {
    match v {
        Value::Null => Some(None),
        v => v.as_bytes().map(Some),
    }
}

/// A stream entry id, `<milliseconds>-<sequence>`, ordered as Redis orders
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// The milliseconds part.
    pub ms: u64,
    /// The sequence within the millisecond.
    pub seq: u64,
}

impl StreamId {
    /// Reads `<ms>-<seq>` (or `<ms>` alone, sequence 0); `None` if it is not
    /// one.
    ///
    /// ```
    /// use wirepatterns::resp::StreamId;
    ///
    /// assert_eq!(StreamId::parse(b"1526919030474-3"), Some(StreamId { ms: 1526919030474, seq: 3 }));
    /// assert!(StreamId::parse(b"1-0") < StreamId::parse(b"1-1"));
    /// assert_eq!(StreamId::parse(b"1-x"), None);
    /// ```
    pub fn parse(text: &[u8]) -> Option<StreamId> {
        let text = std::str::from_utf8(text).ok()?;
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// The parts of an `XINFO STREAM` reply a consumer needs to know whether it
/// fell behind the stream's trimming ([`stream_info`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Entries held now (`length`).
    pub length: u64,
    /// Entries ever added (`entries-added`, Redis 7).
    pub entries_added: Option<u64>,
    /// The newest id deleted (`max-deleted-entry-id`, Redis 7; `0-0` when
    /// none was; Redis 7.0 moves it on `XDEL`, not on trimming).
    pub max_deleted: Option<StreamId>,
    /// The oldest entry held (`first-entry`), if any.
    pub first_entry: Option<StreamId>,
}

/// Reads an `XINFO STREAM` reply: field-value pairs, flat in RESP2, a map in
/// RESP3. `None` if it is neither, or has no `length`.
pub fn stream_info(value: &Value) -> Option<StreamInfo> {
    let pairs: Vec<(&Value, &Value)> = match value {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    let mut info = StreamInfo::default();
    let mut length = None;
    let count = |v: &Value| v.as_integer().and_then(|n| u64::try_from(n).ok());
    for (key, value) in pairs {
        match key.as_bytes() {
            Some(b"length") => length = count(value),
            Some(b"entries-added") => info.entries_added = count(value),
            Some(b"max-deleted-entry-id") => {
                info.max_deleted = value.as_bytes().and_then(StreamId::parse);
            }
            Some(b"first-entry") => {
                info.first_entry = value
                    .as_items()
                    .and_then(<[Value]>::first)
                    .and_then(Value::as_bytes)
                    .and_then(StreamId::parse);
            }
            _ => {}
        }
    }
    info.length = length?;
    Some(info)
}
