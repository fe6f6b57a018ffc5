//! Writing commands: every command is an array of bulk strings.
//!
//! ```text
//! *3\r\n$7\r\nPUBLISH\r\n$4\r\nroom\r\n$2\r\nhi\r\n     PUBLISH room hi
//! ```
//!
//! A client sends each command as a RESP array whose elements are bulk strings: the
//! command name and its arguments, each prefixed by its length, so arguments may
//! hold any bytes (spec, "Sending commands to a Redis server"). Every writer here
//! *appends* to a caller-owned `Vec<u8>`: pipelining (sending many commands before
//! reading any reply, the replies then coming back in the same order) is appending
//! several commands and writing the buffer once.
//!
//! [`write_command`] takes any arguments; the functions after it write the commands
//! the crate's pub/sub and stream code uses, with no allocation beyond the buffer.
//!
//! ```
//! use wirepatterns::resp::command;
//!
//! let mut out = Vec::new();
//! command::publish(&mut out, b"room", b"hi");
//! command::ping(&mut out, None);
//! assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nroom\r\n$2\r\nhi\r\n*1\r\n$4\r\nPING\r\n");
//! ```

/// `n` in decimal: the digits are `buf[start..]`, for the returned `start`.
fn decimal(buf: &mut [u8; 20], mut n: u64) -> usize {
    let mut at = buf.len();
    // u64::MAX has 20 digits: the loop ends by then.
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    at
}

/// Appends `n` in decimal.
fn write_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let start = decimal(&mut buf, n);
    out.extend_from_slice(buf.get(start..).unwrap_or_default());
}

/// Appends an array header, `*<n>\r\n`: `n` elements follow.
pub fn write_array_header(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    write_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string, `$<len>\r\n<bytes>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    write_decimal(out, bytes.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number as a bulk string (`$<len>\r\n<digits>\r\n`), as arguments
/// such as counts and timeouts are sent.
pub fn write_bulk_number(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let start = decimal(&mut buf, n);
    write_bulk(out, buf.get(start..).unwrap_or_default());
}

/// Appends a command: `args[0]` is its name, the rest its arguments.
pub fn write_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    write_array_header(out, args.len());
    for arg in args {
        write_bulk(out, arg);
    }
}

/// `PUBLISH channel message`: the reply is the number of subscribers that got it.
pub fn publish(out: &mut Vec<u8>, channel: &[u8], message: &[u8]) {
    write_command(out, &[b"PUBLISH", channel, message]);
}

/// `SUBSCRIBE channel...`: each channel is confirmed by a `subscribe` message
/// ([`super::PubSub::Subscribe`]). Redis refuses it without a channel.
pub fn subscribe(out: &mut Vec<u8>, channels: &[&[u8]]) {
    write_array_header(out, 1 + channels.len());
    write_bulk(out, b"SUBSCRIBE");
    for channel in channels {
        write_bulk(out, channel);
    }
}

/// `UNSUBSCRIBE [channel...]`: no channel means all of them.
pub fn unsubscribe(out: &mut Vec<u8>, channels: &[&[u8]]) {
    write_array_header(out, 1 + channels.len());
    write_bulk(out, b"UNSUBSCRIBE");
    for channel in channels {
        write_bulk(out, channel);
    }
}

/// `PING [message]`: `+PONG` (or the message) back; in RESP2 subscribe mode,
/// a `pong` message ([`super::PubSub::Pong`]).
pub fn ping(out: &mut Vec<u8>, message: Option<&[u8]>) {
    match message {
        Some(message) => write_command(out, &[b"PING", message]),
        None => write_command(out, &[b"PING"]),
    }
}

/// `HELLO protover`: switch the connection to RESP `protover` (3 for push frames,
/// maps, doubles...); the reply is a map describing the server.
pub fn hello(out: &mut Vec<u8>, protover: u8) {
    write_array_header(out, 2);
    write_bulk(out, b"HELLO");
    write_bulk_number(out, u64::from(protover));
}

/// `XADD key [MAXLEN ~ cap] id field value [field value ...]`: appends an entry to
/// a stream, trimming it to about `cap` entries (`~`: Redis trims whole internal
/// nodes, so a few more may stay; exact trimming costs more). `id` is usually `*`
/// (the server picks the next id). The reply is the new entry's id.
pub fn xadd(out: &mut Vec<u8>, key: &[u8], cap: Option<u64>, id: &[u8], fields: &[(&[u8], &[u8])]) {
    xadd_trimmed(out, key, cap.map(MaxLen::About), id, fields);
}

/// How `XADD` trims its stream ([`xadd_trimmed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxLen {
    /// `MAXLEN ~ n`: at least `n` entries stay; Redis removes only whole
    /// internal nodes (100 entries each by default, `stream-node-max-entries`),
    /// so up to a node's worth more may stay. Cheap.
    About(u64),
    /// `MAXLEN = n`: exactly the newest `n` entries stay. Costs a partial node
    /// rewrite when the cut falls inside one.
    Exact(u64),
}

impl MaxLen {
    /// The cap, `n`.
    pub fn cap(self) -> u64 {
        match self {
            MaxLen::About(n) | MaxLen::Exact(n) => n,
        }
    }
}

/// `XADD key [MAXLEN ~|= cap] id field value [field value ...]`: [`xadd`] with
/// the trimming spelled out ([`MaxLen`]); `None` never trims.
pub fn xadd_trimmed(
    out: &mut Vec<u8>,
    key: &[u8],
    maxlen: Option<MaxLen>,
    id: &[u8],
    fields: &[(&[u8], &[u8])],
) {
    let trim = if maxlen.is_some() { 3 } else { 0 };
    write_array_header(out, 3 + trim + 2 * fields.len());
    write_bulk(out, b"XADD");
    write_bulk(out, key);
    if let Some(maxlen) = maxlen {
        write_bulk(out, b"MAXLEN");
        write_bulk(
            out,
            if matches!(maxlen, MaxLen::Exact(_)) {
                b"="
            } else {
                b"~"
            },
        );
        write_bulk_number(out, maxlen.cap());
    }
    write_bulk(out, id);
    for (field, value) in fields {
        write_bulk(out, field);
        write_bulk(out, value);
    }
}

/// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...`: the entries after each `id`
/// (`$` for "only new ones"), at most `count` per stream, waiting up to `block_ms`
/// milliseconds (0: forever) when there are none. Read the reply with
/// [`super::xread`].
pub fn xread(
    out: &mut Vec<u8>,
    count: Option<u64>,
    block_ms: Option<u64>,
    streams: &[(&[u8], &[u8])],
) {
    let options = 2 * usize::from(count.is_some()) + 2 * usize::from(block_ms.is_some());
    write_array_header(out, 2 + options + 2 * streams.len());
    write_bulk(out, b"XREAD");
    if let Some(count) = count {
        write_bulk(out, b"COUNT");
        write_bulk_number(out, count);
    }
    if let Some(ms) = block_ms {
        write_bulk(out, b"BLOCK");
        write_bulk_number(out, ms);
    }
    write_bulk(out, b"STREAMS");
    for (key, _) in streams {
        write_bulk(out, key);
    }
    for (_, id) in streams {
        write_bulk(out, id);
    }
}

/// `XINFO STREAM key`: the stream's length, its first and last entries, and
/// (Redis 7) `entries-added` and `max-deleted-entry-id`, from which a reader
/// can tell whether entries after its cursor were trimmed before it read them.
/// The reply is a list of field-value pairs (a map in RESP3); an error if the
/// key does not exist.
pub fn xinfo_stream(out: &mut Vec<u8>, key: &[u8]) {
    write_command(out, &[b"XINFO", b"STREAM", key]);
}

/// `DEL key...`: removes keys; the reply is how many existed.
pub fn del(out: &mut Vec<u8>, keys: &[&[u8]]) {
    write_array_header(out, 1 + keys.len());
    write_bulk(out, b"DEL");
    for key in keys {
        write_bulk(out, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimals() {
        for (n, s) in [
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(written(|o| write_decimal(o, n)), s);
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            written(|o| write_command(o, &[b"LLEN", b"mylist"])),
            "*2\r\n$4\r\nLLEN\r\n$6\r\nmylist\r\n"
        );
        assert_eq!(
            written(|o| write_command(o, &[b"X", b""])),
            "*2\r\n$1\r\nX\r\n$0\r\n\r\n"
        );
        assert_eq!(
            written(|o| subscribe(o, &[b"a", b"bc"])),
            "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$2\r\nbc\r\n"
        );
        assert_eq!(
            written(|o| unsubscribe(o, &[])),
            "*1\r\n$11\r\nUNSUBSCRIBE\r\n"
        );
        assert_eq!(
            written(|o| ping(o, Some(b"x"))),
            "*2\r\n$4\r\nPING\r\n$1\r\nx\r\n"
        );
        assert_eq!(written(|o| hello(o, 3)), "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
    }

    #[test]
    fn xadd_and_xread() {
        assert_eq!(
            written(|o| xadd(o, b"s", Some(1000), b"*", &[(b"f", b"v")])),
            "*8\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$4\r\n1000\r\n\
             $1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            written(|o| xadd_trimmed(o, b"s", Some(MaxLen::Exact(50)), b"*", &[(b"f", b"v")])),
            "*8\r\n$4\r\nXADD\r\n$1\r\ns\r\n$6\r\nMAXLEN\r\n$1\r\n=\r\n$2\r\n50\r\n\
             $1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        assert_eq!(
            written(|o| xadd(o, b"s", None, b"1-1", &[])),
            "*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n1-1\r\n"
        );
        assert_eq!(
            written(|o| xread(o, Some(10), Some(5000), &[(b"a", b"0-0"), (b"b", b"$")])),
            "*10\r\n$5\r\nXREAD\r\n$5\r\nCOUNT\r\n$2\r\n10\r\n$5\r\nBLOCK\r\n$4\r\n5000\r\n\
             $7\r\nSTREAMS\r\n$1\r\na\r\n$1\r\nb\r\n$3\r\n0-0\r\n$1\r\n$\r\n"
        );
        assert_eq!(
            written(|o| xread(o, None, None, &[(b"a", b"0")])),
            "*4\r\n$5\r\nXREAD\r\n$7\r\nSTREAMS\r\n$1\r\na\r\n$1\r\n0\r\n"
        );
    }

    #[test]
    fn xinfo_stream_and_del() {
        assert_eq!(
            written(|o| xinfo_stream(o, b"s")),
            "*3\r\n$5\r\nXINFO\r\n$6\r\nSTREAM\r\n$1\r\ns\r\n"
        );
        assert_eq!(
            written(|o| del(o, &[b"a", b"bc"])),
            "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbc\r\n"
        );
    }
}
