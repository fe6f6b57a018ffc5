//! What the Redis tests share: a real `redis-server` of their own, and a blocking
//! RESP client built on the crate's own writer and parser.
//!
//! # The server
//!
//! [`RedisServer::start`] runs `redis-server` on a free port of 127.0.0.1, in a
//! fresh temporary directory, with persistence off (`--save "" --appendonly no`),
//! in the foreground (`--daemonize no`) so the harness owns the process, and its
//! output in a log file ([`RedisServer::log`]). It returns once the server answers
//! `PING` with `+PONG` *and* `INFO server` names the process it spawned (not some
//! other server that took the port meanwhile). Dropping it kills the process and
//! removes the directory; if the test is failing, the log is printed first.
//!
//! ```ignore
//! mod redis_support;
//! use redis_support::{RedisServer, RespClient};
//!
//! let redis = RedisServer::require(); // fails the test if redis-server is missing
//! let mut client = RespClient::connect(redis.addr()).unwrap();
//! client.send(&[b"SUBSCRIBE", b"room"]).unwrap();
//! redis.wait_numsub(b"room", 1).unwrap();                     // the server's own state
//! redis.command(&[b"PUBLISH", b"room", b"hi"]).unwrap();     // inspect or act
//! redis.restart().unwrap();                                   // same port, empty data
//! ```
//!
//! | method | what |
//! |---|---|
//! | [`RedisServer::start`] / [`RedisServer::require`] | start one (`require` panics with how to install redis-server) |
//! | [`RedisServer::addr`] / [`RedisServer::port`] | where it listens |
//! | [`RedisServer::command`] | one command on a kept connection, its reply |
//! | [`RedisServer::numsub`] / [`RedisServer::wait_numsub`] | `PUBSUB NUMSUB`, and a bounded wait for a count |
//! | [`RedisServer::kill_clients`] | `CLIENT KILL TYPE normal\|pubsub`: cut connections, keep the server |
//! | [`RedisServer::stop`] / [`RedisServer::restart`] | kill it (port free after) / start it again on the same port |
//! | [`RedisServer::log`] | what it printed, for failure messages |
//!
//! # The client
//!
//! [`RespClient`] writes commands with [`wirepatterns::resp::command`] and reads
//! replies with [`wirepatterns::resp::Parser`], over a plain blocking `TcpStream`.
//! Every read has a deadline ([`READ_TIMEOUT`] unless given), so a bug fails a
//! test instead of hanging it; it can record every byte it reads
//! ([`RespClient::record`]) for tests that re-parse them.
//!
//! If `redis-server` is not on `PATH`, [`RedisServer::start`] fails with a message
//! saying how to install it. The tests that need it are `#[ignore]`d and run with
//! `cargo test -- --ignored`.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wirepatterns::resp::{Parsed, Parser, Value, command};

/// How long a client waits for a reply before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a server has to answer `PING` after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many free ports [`RedisServer::start`] tries when the one it picked is
/// taken before redis-server binds it.
pub const START_ATTEMPTS: usize = 5;

/// How long [`RedisServer::restart`] keeps trying when its port is still in use.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(5);

/// The program the harness runs.
pub const REDIS_SERVER: &str = "redis-server";

/// What to do when redis-server is missing.
pub const INSTALL_HINT: &str = "redis-server is not on PATH: the Redis tests need a real server. \
     Install it (Debian/Ubuntu: `apt-get install -y redis-server`), then run \
     `cargo test -- --ignored`";

/// `true` if `redis-server` is an executable file in one of `PATH`'s directories.
pub fn redis_available() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(REDIS_SERVER))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// A port of 127.0.0.1 that nothing listened on a moment ago: bind port 0, read
/// the port the kernel chose, close the listener. Another process may take it
/// before it is used again; [`RedisServer::start`] retries when that happens.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A new, empty directory under the system's temporary directory, named from the
/// process id, a counter and the clock so that parallel tests never share one.
fn temp_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut last = None;
    for _ in 0..10 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "wirepatterns-redis-{}-{n}-{nanos}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary directory")))
}

/// Why one attempt to run redis-server on a port did not give a server.
enum SpawnError {
    /// The port was taken (the log says "Address already in use"): try another
    /// port, or the same one a little later.
    PortTaken,
    /// Anything else: give up.
    Failed(io::Error),
}

/// A `redis-server` process of the test's own, on 127.0.0.1.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    log_path: PathBuf,
    /// The connection [`RedisServer::command`] uses, opened on first use and
    /// dropped on any error, stop or restart.
    conn: Option<RespClient>,
}

impl RedisServer {
    /// Starts redis-server on a free port in a new temporary directory and waits
    /// (up to [`START_TIMEOUT`]) until it answers `PING`. Picks another port, up to
    /// [`START_ATTEMPTS`] times, if the one picked was taken meanwhile. Fails with
    /// [`INSTALL_HINT`] if redis-server is not on `PATH`.
    pub fn start() -> io::Result<RedisServer> {
        if !redis_available() {
            return Err(io::Error::new(ErrorKind::NotFound, INSTALL_HINT));
        }
        let dir = temp_dir()?;
        let log_path = dir.join("redis.log");
        let mut server = RedisServer {
            child: None,
            port: 0,
            dir,
            log_path,
            conn: None,
        };
        for _ in 0..START_ATTEMPTS {
            server.port = free_port()?;
            match server.spawn() {
                Ok(child) => {
                    server.child = Some(child);
                    return Ok(server);
                }
                Err(SpawnError::PortTaken) => continue,
                Err(SpawnError::Failed(e)) => return Err(e),
            }
        }
        Err(io::Error::new(
            ErrorKind::AddrInUse,
            format!(
                "redis-server found every port taken ({START_ATTEMPTS} tries); log:\n{}",
                server.log()
            ),
        ))
    }

    /// [`RedisServer::start`], or a panic that says why (how to install
    /// redis-server when it is missing, the server's log when it did not start).
    #[track_caller]
    pub fn require() -> RedisServer {
        RedisServer::start().unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
    }

    /// Where it listens: 127.0.0.1 and [`RedisServer::port`].
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The port it listens on; the same after [`RedisServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory it runs in (its `--dir`, with the log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the running server, `None` after [`RedisServer::stop`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server (every run of it, with a header line per run) printed.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Sends one command on the harness's own connection (opened on first use)
    /// and returns its reply. An error reply is `Ok(Value::Error(..))`; an I/O
    /// error drops the connection, and the next call opens a new one.
    pub fn command(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => RespClient::connect(self.addr())?,
        };
        let reply = conn.call(args)?;
        self.conn = Some(conn);
        Ok(reply)
    }

    /// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
    pub fn numsub(&mut self, channel: &[u8]) -> io::Result<i64> {
        let reply = self.command(&[b"PUBSUB", b"NUMSUB", channel])?;
        match reply.as_items() {
            Some([_, count]) => count.as_integer(),
            _ => None,
        }
        .ok_or_else(|| unexpected("PUBSUB NUMSUB", &reply))
    }

    /// Waits (up to [`READ_TIMEOUT`]) until `channel` has exactly `n` subscribers.
    pub fn wait_numsub(&mut self, channel: &[u8], n: i64) -> io::Result<()> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut last = -1;
        while Instant::now() < deadline {
            last = self.numsub(channel)?;
            if last == n {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::new(
            ErrorKind::TimedOut,
            format!(
                "{} has {last} subscribers after {READ_TIMEOUT:?}, not {n}",
                String::from_utf8_lossy(channel)
            ),
        ))
    }

    /// `CLIENT KILL TYPE kind` (`normal`, `pubsub`, `replica`, `master`): closes
    /// every connection of that type except the harness's own, and returns how
    /// many were closed. The server keeps running.
    pub fn kill_clients(&mut self, kind: &str) -> io::Result<i64> {
        let reply = self.command(&[b"CLIENT", b"KILL", b"TYPE", kind.as_bytes()])?;
        reply
            .as_integer()
            .ok_or_else(|| unexpected("CLIENT KILL", &reply))
    }

    /// Kills the server (SIGKILL) and waits until the process is gone and its port
    /// can be bound again. Does nothing if it is not running.
    pub fn stop(&mut self) -> io::Result<()> {
        self.conn = None;
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // Already exited is not an error: wait() reaps it either way.
        let _ = child.kill();
        child.wait()?;
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            // std binds with SO_REUSEADDR, as redis-server does: this succeeds as
            // soon as nothing listens, whatever connections linger in TIME_WAIT.
            match TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("port {} still in use after stop: {e}", self.port),
                    ));
                }
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Stops the server if it runs, then starts it again on the same port and in
    /// the same directory (with no data: nothing is saved), retrying for up to
    /// [`RESTART_TIMEOUT`] while the port is in use. Existing connections are
    /// closed by the stop; clients must connect again.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop()?;
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(SpawnError::PortTaken) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Err(SpawnError::PortTaken) => {
                    return Err(io::Error::new(
                        ErrorKind::AddrInUse,
                        format!("port {} still taken after {RESTART_TIMEOUT:?}", self.port),
                    ));
                }
                Err(SpawnError::Failed(e)) => return Err(e),
            }
        }
    }

    /// Runs redis-server on `self.port` and waits until it answers.
    fn spawn(&self) -> Result<Child, SpawnError> {
        let failed = SpawnError::Failed;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(failed)?;
        writeln!(log, "== {REDIS_SERVER} --port {}", self.port).map_err(failed)?;
        let run_starts = log.metadata().map_err(failed)?.len();
        let stderr = log.try_clone().map_err(failed)?;
        let port = self.port.to_string();
        let mut child = Command::new(REDIS_SERVER)
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir"])
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                failed(io::Error::new(
                    e.kind(),
                    format!("cannot run {REDIS_SERVER}: {e}. {INSTALL_HINT}"),
                ))
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let run = self.log_since(run_starts);
                    return Err(if run.contains("Address already in use") {
                        SpawnError::PortTaken
                    } else {
                        failed(io::Error::other(format!(
                            "redis-server exited ({status}) on port {}; log:\n{run}",
                            self.port
                        )))
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(failed(e)),
            }
            if answers_as(self.addr(), child.id()) {
                return Ok(child);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "redis-server did not answer PING on port {} within {START_TIMEOUT:?}; \
                         log:\n{}",
                        self.port,
                        self.log_since(run_starts)
                    ),
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log from byte `offset` on.
    fn log_since(&self, offset: u64) -> String {
        let mut bytes = Vec::new();
        let read = File::open(&self.log_path).and_then(|mut f| {
            io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
            f.read_to_end(&mut bytes)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(no log: {e})"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- redis-server log ({}) ---\n{}--- end of log ---",
                self.log_path.display(),
                self.log()
            );
        }
        let _ = self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `true` if a server on `addr` answers `PING` with `+PONG` and `INFO server` says
/// its process id is `pid`. Each step waits at most a second.
fn answers_as(addr: SocketAddr, pid: u32) -> bool {
    let Ok(mut client) = RespClient::connect_within(addr, Duration::from_millis(500)) else {
        return false;
    };
    let short = Duration::from_secs(1);
    let pong = client
        .send(&[b"PING"])
        .and_then(|()| client.read_within(short));
    if !matches!(pong, Ok(Some(Value::Simple(ref s))) if s == b"PONG") {
        return false;
    }
    let info = client
        .send(&[b"INFO", b"server"])
        .and_then(|()| client.read_within(short));
    let Ok(Some(Value::Bulk(info))) = info else {
        return false;
    };
    let want = format!("process_id:{pid}\r\n");
    String::from_utf8_lossy(&info).contains(&want)
}

/// An `InvalidData` error: `what` got `reply`.
fn unexpected(what: &str, reply: &Value) -> io::Error {
    io::Error::new(
        ErrorKind::InvalidData,
        format!("unexpected reply to {what}: {reply:?}"),
    )
}

/// A blocking RESP connection: commands written with
/// [`wirepatterns::resp::command::write_command`], replies read with
/// [`Parser`], every read bounded in time.
pub struct RespClient {
    stream: TcpStream,
    parser: Parser,
    /// Bytes received and not yet parsed into a reply start at `start`.
    buf: Vec<u8>,
    start: usize,
    /// Every byte read, while recording.
    recorded: Option<Vec<u8>>,
}

impl RespClient {
    /// Connects to `addr` (within [`READ_TIMEOUT`]), TCP_NODELAY on.
    pub fn connect(addr: SocketAddr) -> io::Result<RespClient> {
        RespClient::connect_within(addr, READ_TIMEOUT)
    }

    /// Connects to `addr` within `timeout`.
    pub fn connect_within(addr: SocketAddr, timeout: Duration) -> io::Result<RespClient> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(RespClient {
            stream,
            parser: Parser::default(),
            buf: Vec::new(),
            start: 0,
            recorded: None,
        })
    }

    /// The socket, to clone for a writer thread or to shut down.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes one command (`args[0]` its name).
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = Vec::new();
        command::write_command(&mut out, args);
        self.stream.write_all(&out)
    }

    /// Writes bytes as they are: commands appended with the crate's writers
    /// (pipelining), or anything else.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one command and reads one reply (which must be its own: do not use
    /// on a RESP3 connection with subscriptions, where a push may come first).
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.send(args)?;
        self.read()
    }

    /// `HELLO 3`: the connection speaks RESP3 from now on. Returns the server's
    /// description (a map), or an error if the reply is not one.
    pub fn hello3(&mut self) -> io::Result<Value> {
        let mut out = Vec::new();
        command::hello(&mut out, 3);
        self.send_raw(&out)?;
        let reply = self.read()?;
        match reply {
            Value::Map(_) => Ok(reply),
            other => Err(unexpected("HELLO 3", &other)),
        }
    }

    /// The next value, within [`READ_TIMEOUT`] (a `TimedOut` error after it).
    pub fn read(&mut self) -> io::Result<Value> {
        self.read_within(READ_TIMEOUT)?.ok_or_else(|| {
            io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "no whole reply within {READ_TIMEOUT:?} ({} bytes of one received)",
                    self.buf.len() - self.start
                ),
            )
        })
    }

    /// The next value if one is whole within `timeout`, `None` if not (the bytes
    /// of a partial one are kept for the next read). The server closing the
    /// connection is `UnexpectedEof`; bytes that break RESP are `InvalidData`.
    pub fn read_within(&mut self, timeout: Duration) -> io::Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        // Every pass parses, then reads at least one byte or waits until the
        // deadline: the time bounds the loop; the count makes the bound explicit.
        for _ in 0..10_000_000 {
            match self.parser.parse(&self.buf[self.start..]) {
                Ok(Parsed::Complete { value, consumed }) => {
                    self.start += consumed;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    } else if self.start > 64 * 1024 && self.start > self.buf.len() / 2 {
                        self.buf.drain(..self.start);
                        self.start = 0;
                    }
                    return Ok(Some(value));
                }
                Ok(Parsed::Partial) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("the server broke RESP: {e}"),
                    ));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "the server closed the connection ({} bytes of a reply received)",
                            self.buf.len() - self.start
                        ),
                    ));
                }
                Ok(n) => {
                    let got = &chunk[..n];
                    self.buf.extend_from_slice(got);
                    if let Some(recorded) = &mut self.recorded {
                        recorded.extend_from_slice(got);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Starts (or restarts, from nothing) recording every byte read from now on.
    pub fn record(&mut self) {
        self.recorded = Some(Vec::new());
    }

    /// The bytes recorded since [`RespClient::record`]; recording stops.
    pub fn take_recorded(&mut self) -> Vec<u8> {
        self.recorded.take().unwrap_or_default()
    }

    /// `true` if the server closed the connection within `timeout`: a read returns
    /// end of file (or a reset). Fails if a value arrives instead.
    pub fn closed_within(&mut self, timeout: Duration) -> io::Result<bool> {
        match self.read_within(timeout) {
            Ok(None) => Ok(false),
            Ok(Some(value)) => Err(unexpected("a closed connection", &value)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::BrokenPipe
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}
