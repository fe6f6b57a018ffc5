//! The flags every example server shares, and a way to add its own.
//!
//! Every example server takes `--addr HOST:PORT` (where to listen; each example
//! picks its default), `--trace` (print the cost timeline of each request) and
//! `--help`. An example adds its own flags with [`Spec::switch`] (present or not)
//! and [`Spec::option`] (takes a value). `--name value` and `--name=value` both work.
//! [`ws_flags`] and [`ws_config`] add and read the WebSocket keepalive flags;
//! [`Args::at_least`] and [`origin`] reject values that make no sense; [`serve`]
//! binds and runs a server and says why it could not.
//!
//! A client example (one that connects rather than listens) starts from
//! [`Spec::client`] instead: its `--addr` is the server to connect to, and it has
//! no `--trace`.
//!
//! Nothing here prints or exits: the examples do that (their shared part is
//! `examples/support/mod.rs`), with the errors this module returns.
//!
//! ```
//! use wirepatterns::cli::{Parsed, Spec};
//!
//! let spec = Spec::new("demo", "A demo server.", "127.0.0.1:8080")
//!     .option("--clients", "N", "how many clients");
//! let args = ["--addr", "127.0.0.1:0", "--clients=3", "--trace"].map(String::from);
//! let Ok(Parsed::Run(args)) = spec.parse(args) else { panic!() };
//! assert_eq!(args.addr.port(), 0);
//! assert!(args.trace);
//! assert_eq!(args.value("--clients"), Some("3"));
//! ```

use std::fmt::{Display, Write as _};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use crate::patterns::websocket::WsConfig;
use crate::server::{Config, Handler, Server, ServerHandle, ServerStats};

/// A flag an example adds to the common ones.
#[derive(Debug, Clone)]
struct Flag {
    /// The flag, with its dashes: `--clients`.
    name: &'static str,
    /// The placeholder for its value in the help (`N`), or `None` for a switch.
    value: Option<&'static str>,
    /// One line of help.
    help: &'static str,
}

/// What a program accepts: the common flags and its own.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program's name, for the usage line.
    program: &'static str,
    /// What it does, one or two sentences, for `--help`.
    about: &'static str,
    /// `--addr`'s default.
    default_addr: &'static str,
    /// A client: `--addr` is where to connect, and there is no `--trace`.
    client: bool,
    /// The program's own flags.
    extra: Vec<Flag>,
}

/// The flags as given.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--addr`, resolved.
    pub addr: SocketAddr,
    /// `--trace` was given.
    pub trace: bool,
    /// The program's own flags that were given, with their values (switches have
    /// none).
    given: Vec<(&'static str, Option<String>)>,
}

/// The outcome of parsing.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// Run with these flags.
    Run(Args),
    /// `--help` was asked for: print this text and exit successfully.
    Help(String),
}

/// A command line that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag nobody defined.
    #[error("unknown flag {0}")]
    UnknownFlag(String),
    /// A flag that takes a value came last, without one.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// A flag that takes a value was followed by another flag (`--store
    /// --trace`): most likely the value was forgotten.
    #[error(
        "{0} needs a value, but {1} follows it (a value that starts with -- is written {0}=VALUE)"
    )]
    ValueIsAFlag(&'static str, String),
    /// A switch was given a value (`--trace=yes`).
    #[error("{0} takes no value")]
    UnexpectedValue(&'static str),
    /// `--addr` is not `HOST:PORT`, or the host does not resolve.
    #[error("--addr {0}: expected HOST:PORT ({1})")]
    BadAddr(String, String),
    /// A value that does not parse as what the flag wants.
    #[error("{0} {1}: not a valid value")]
    BadValue(&'static str, String),
    /// A value that parses but makes no sense for the flag: the flag, the value as
    /// given, and the rule it breaks (`--max-connections 0: must be at least 1`).
    #[error("{0} {1}: {2}")]
    OutOfRange(&'static str, String, String),
}

impl Spec {
    /// A program called `program`, doing `about`, listening on `default_addr`
    /// unless `--addr` says otherwise.
    pub fn new(program: &'static str, about: &'static str, default_addr: &'static str) -> Spec {
        Spec {
            program,
            about,
            default_addr,
            client: false,
            extra: Vec::new(),
        }
    }

    /// A client program: `--addr` names the server to connect to (`default_addr`
    /// unless given), and `--trace` is not a flag (it stays `false` in [`Args`]).
    ///
    /// ```
    /// use wirepatterns::cli::{CliError, Parsed, Spec};
    ///
    /// let spec = Spec::client("demo_client", "A demo client.", "127.0.0.1:8080");
    /// assert!(spec.usage().contains("the server to connect to"));
    /// let Ok(Parsed::Run(args)) = spec.parse([]) else { panic!() };
    /// assert_eq!(args.addr.port(), 8080);
    /// let err = spec.parse(["--trace".to_string()]).unwrap_err();
    /// assert_eq!(err, CliError::UnknownFlag("--trace".into()));
    /// ```
    pub fn client(program: &'static str, about: &'static str, default_addr: &'static str) -> Spec {
        Spec {
            client: true,
            ..Spec::new(program, about, default_addr)
        }
    }

    /// Adds a flag that is either present or not.
    pub fn switch(mut self, name: &'static str, help: &'static str) -> Spec {
        self.extra.push(Flag {
            name,
            value: None,
            help,
        });
        self
    }

    /// Adds a flag that takes a value, shown as `value_name` in the help.
    pub fn option(
        mut self,
        name: &'static str,
        value_name: &'static str,
        help: &'static str,
    ) -> Spec {
        self.extra.push(Flag {
            name,
            value: Some(value_name),
            help,
        });
        self
    }

    /// The `--help` text.
    pub fn usage(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "{}\n", self.about);
        let _ = writeln!(
            text,
            "usage: cargo run --example {} -- [options]\n\noptions:",
            self.program
        );
        let mut lines = if self.client {
            vec![(
                "--addr HOST:PORT".to_string(),
                format!("the server to connect to (default {})", self.default_addr),
            )]
        } else {
            vec![
                (
                    "--addr HOST:PORT".to_string(),
                    format!(
                        "where to listen (default {}; port 0 picks a free one)",
                        self.default_addr
                    ),
                ),
                (
                    "--trace".to_string(),
                    "print a line for each thing the server handles, with what it cost".to_string(),
                ),
            ]
        };
        for flag in &self.extra {
            let left = match flag.value {
                Some(v) => format!("{} {v}", flag.name),
                None => flag.name.to_string(),
            };
            lines.push((left, flag.help.to_string()));
        }
        lines.push(("--help".to_string(), "print this help".to_string()));
        let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (left, help) in lines {
            let _ = writeln!(text, "  {left:<width$}  {help}");
        }
        text
    }

    /// Parses `args` (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(&self, args: I) -> Result<Parsed, CliError> {
        let mut addr_text = self.default_addr.to_string();
        let mut trace = false;
        let mut given = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            match name.as_str() {
                "--help" | "-h" => return Ok(Parsed::Help(self.usage())),
                "--trace" if !self.client => {
                    if inline.is_some() {
                        return Err(CliError::UnexpectedValue("--trace"));
                    }
                    trace = true;
                }
                "--addr" => {
                    addr_text = match inline {
                        Some(v) => v,
                        None => separate_value(&mut args, "--addr")?,
                    };
                }
                other => {
                    let flag = self
                        .extra
                        .iter()
                        .find(|f| f.name == other)
                        .ok_or_else(|| CliError::UnknownFlag(other.to_string()))?;
                    let value = match (flag.value, inline) {
                        (None, Some(_)) => return Err(CliError::UnexpectedValue(flag.name)),
                        (None, None) => None,
                        (Some(_), Some(v)) => Some(v),
                        (Some(_), None) => Some(separate_value(&mut args, flag.name)?),
                    };
                    given.push((flag.name, value));
                }
            }
        }
        let addr = resolve(&addr_text)?;
        Ok(Parsed::Run(Args { addr, trace, given }))
    }

    /// Parses the process's arguments (without the program name). The caller
    /// prints the help or the error: `examples/support/mod.rs` prints the usage
    /// and exits 0 on `--help`, and 2 with the error and the usage on a bad
    /// command line.
    pub fn parse_env(&self) -> Result<Parsed, CliError> {
        self.parse(std::env::args().skip(1))
    }
}

/// Adds the timing flags every WebSocket example takes to `spec`:
/// `--ping-interval SECS`, `--ping-timeout SECS` and `--close-timeout SECS`.
/// [`ws_config`] reads them.
pub fn ws_flags(spec: Spec) -> Spec {
    spec.option(
        "--ping-interval",
        "SECS",
        "ping every connection this often (default 20; 0: never; fractions allowed)",
    )
    .option(
        "--ping-timeout",
        "SECS",
        "drop a peer that sends nothing this long after a ping (default 20; more than 0)",
    )
    .option(
        "--close-timeout",
        "SECS",
        "close TCP at most this long after sending a close frame (default 5; more than 0)",
    )
}

/// [`WsConfig::default`] with the timing flags of [`ws_flags`] applied:
/// `--ping-interval 0` never pings; `--ping-timeout` and `--close-timeout` must be
/// more than 0 (a peer cannot answer in no time); negative, infinite or
/// unparsable values are refused.
///
/// ```
/// use std::time::Duration;
/// use wirepatterns::cli::{self, Parsed, Spec};
///
/// let spec = cli::ws_flags(Spec::new("demo", "A demo.", "127.0.0.1:9001"));
/// let args = ["--ping-interval", "0.2", "--ping-timeout=0.3", "--close-timeout", "1.5"]
///     .map(String::from);
/// let Ok(Parsed::Run(args)) = spec.parse(args) else { panic!() };
/// let config = cli::ws_config(&args).unwrap();
/// assert_eq!(config.ping_interval, Some(Duration::from_millis(200)));
/// assert_eq!(config.ping_timeout, Duration::from_millis(300));
/// assert_eq!(config.close_timeout, Duration::from_millis(1500));
///
/// let args = ["--ping-timeout", "0"].map(String::from);
/// let Ok(Parsed::Run(args)) = spec.parse(args) else { panic!() };
/// assert!(cli::ws_config(&args).is_err());
/// ```
pub fn ws_config(args: &Args) -> Result<WsConfig, CliError> {
    let mut config = WsConfig::default();
    if let Some(secs) = args.seconds("--ping-interval")? {
        config.ping_interval = (!secs.is_zero()).then_some(secs);
    }
    if let Some(secs) = args.seconds("--ping-timeout")? {
        if secs.is_zero() {
            return Err(CliError::OutOfRange(
                "--ping-timeout",
                args.value("--ping-timeout").unwrap_or("0").to_string(),
                "must be more than 0 seconds (no peer can answer a ping in no time)".into(),
            ));
        }
        config.ping_timeout = secs;
    }
    if let Some(secs) = args.seconds("--close-timeout")? {
        if secs.is_zero() {
            return Err(CliError::OutOfRange(
                "--close-timeout",
                args.value("--close-timeout").unwrap_or("0").to_string(),
                "must be more than 0 seconds (the close frame needs time to be written)".into(),
            ));
        }
        config.close_timeout = secs;
    }
    Ok(config)
}

/// Checks one value of an origin allow-list flag (`--allow-origin`): an origin as
/// a browser sends it in its `Origin` header (RFC 6454 section 6.1), that is
/// `scheme://host` or `scheme://host:port`, with no path and no trailing slash, or
/// the literal `null`. A value with a path could never match, so every browser
/// would be refused.
///
/// ```
/// use wirepatterns::cli::origin;
///
/// assert!(origin("--allow-origin", "http://127.0.0.1:8080").is_ok());
/// assert!(origin("--allow-origin", "http://127.0.0.1:8080/").is_err());
/// assert!(origin("--allow-origin", "127.0.0.1:8080").is_err());
/// ```
pub fn origin(flag: &'static str, value: &str) -> Result<String, CliError> {
    let refuse = |rule: &str| Err(CliError::OutOfRange(flag, value.to_string(), rule.into()));
    if value == "null" {
        return Ok(value.to_string());
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return refuse("an origin is SCHEME://HOST[:PORT], such as http://127.0.0.1:8080");
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    if !scheme_ok {
        return refuse("an origin starts with a scheme, such as http:// or https://");
    }
    if rest.is_empty() {
        return refuse("an origin needs a host after the scheme");
    }
    if let Some(i) = rest.find(['/', '?', '#']) {
        let bare = value.get(..scheme.len() + 3 + i).unwrap_or(value);
        return refuse(&format!(
            "an origin has no path, query or trailing slash (a browser sends {bare})"
        ));
    }
    Ok(value.to_string())
}

/// Why [`serve`] could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another socket already listens on the address (another server, or an
    /// earlier run still going).
    #[error(
        "cannot listen on {0}: the address is already in use (is another server running? \
         --addr 127.0.0.1:0 picks a free port)"
    )]
    AddrInUse(SocketAddr),
    /// The address could not be bound for another reason (a port below 1024
    /// without the privilege, an address that is not this machine's).
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, #[source] io::Error),
    /// The event loop failed while running.
    #[error("the server stopped: {0}")]
    Run(#[source] io::Error),
}

/// Binds `config.addr`, calls `ready` with the address really bound (with the
/// port picked when `--addr` asked for port 0) and a handle to stop the server,
/// then runs the server until [`ServerHandle::shutdown`] is called, and returns
/// its totals.
///
/// `ready` is where an example prints its ready line and arranges for Ctrl-C to
/// call [`ServerHandle::shutdown`]; this function prints nothing.
///
/// ```
/// use wirepatterns::cli::{self, ServeError};
/// use wirepatterns::patterns::request_response::RequestResponse;
/// use wirepatterns::server::Config;
///
/// // Occupy a port, then ask for it: the error says what to do.
/// let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let config = Config::new(busy.local_addr()?);
/// let err = cli::serve(config, RequestResponse::new(), |_, _| {}).unwrap_err();
/// assert!(matches!(err, ServeError::AddrInUse(_)));
/// assert!(err.to_string().contains("--addr 127.0.0.1:0"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve<H: Handler>(
    config: Config,
    handler: H,
    ready: impl FnOnce(SocketAddr, ServerHandle),
) -> Result<ServerStats, ServeError> {
    serve_keeping(config, handler, ready).map(|(stats, _)| stats)
}

/// [`serve`], giving the handler back too, for what it counted.
pub fn serve_keeping<H: Handler>(
    config: Config,
    handler: H,
    ready: impl FnOnce(SocketAddr, ServerHandle),
) -> Result<(ServerStats, H), ServeError> {
    let addr = config.addr;
    let mut server = Server::bind(config, handler).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => ServeError::AddrInUse(addr),
        _ => ServeError::Bind(addr, e),
    })?;
    ready(server.local_addr(), server.handle());
    server.run().map_err(ServeError::Run)?;
    let stats = server.stats();
    Ok((stats, server.into_handler()))
}

impl Args {
    /// Whether the program's flag `name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.given.iter().any(|(n, _)| *n == name)
    }

    /// The value of the program's flag `name` (the last one, if given twice).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value of the program's flag `name`, in the order given (for a flag
    /// that may be repeated, such as `--allow-origin`).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.given
            .iter()
            .filter(move |(n, _)| *n == name)
            .filter_map(|(_, v)| v.as_deref())
    }

    /// The value of `name` parsed as a `T`, refused if it is below `min` (such as
    /// `--max-connections 0`); `Ok(None)` if it was not given.
    pub fn at_least<T: FromStr + PartialOrd + Display>(
        &self,
        name: &'static str,
        min: T,
    ) -> Result<Option<T>, CliError> {
        match self.parsed::<T>(name)? {
            Some(v) if v < min => Err(CliError::OutOfRange(
                name,
                self.value(name).unwrap_or_default().to_string(),
                format!("must be at least {min}"),
            )),
            v => Ok(v),
        }
    }

    /// The value of `name` as a duration in seconds (fractions allowed, such as
    /// `0.25`); negative, infinite or unparsable values are refused. `Ok(None)` if
    /// it was not given.
    pub fn seconds(&self, name: &'static str) -> Result<Option<Duration>, CliError> {
        let Some(secs) = self.parsed::<f64>(name)? else {
            return Ok(None);
        };
        Duration::try_from_secs_f64(secs).map(Some).map_err(|_| {
            CliError::OutOfRange(
                name,
                self.value(name).unwrap_or_default().to_string(),
                "must be a number of seconds, 0 or more".into(),
            )
        })
    }

    /// The value of `name` parsed as a `T`; `Ok(None)` if it was not given.
    pub fn parsed<T: FromStr>(&self, name: &'static str) -> Result<Option<T>, CliError> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| CliError::BadValue(name, v.to_string())),
        }
    }
}

/// The value of flag `flag` as `HOST:PORT` (a name is resolved, IPv4 first),
/// for flags other than `--addr` that name a server (`--redis`).
pub fn socket_addr(flag: &'static str, text: &str) -> Result<SocketAddr, CliError> {
    resolve(text).map_err(|e| {
        let why = match e {
            CliError::BadAddr(_, why) => why,
            other => other.to_string(),
        };
        CliError::OutOfRange(
            flag,
            text.to_string(),
            format!("expected HOST:PORT ({why})"),
        )
    })
}

/// `HOST:PORT` to an address: a literal IP needs no lookup; a name is resolved and
/// its first address (IPv4 preferred) is used.
fn resolve(text: &str) -> Result<SocketAddr, CliError> {
    if let Ok(addr) = SocketAddr::from_str(text) {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| CliError::BadAddr(text.to_string(), e.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| CliError::BadAddr(text.to_string(), "no address".to_string()))
}

/// The value of `flag` given as the next argument (`--store FILE`): missing at
/// the end, and refused when the next argument is another flag.
fn separate_value(
    args: &mut impl Iterator<Item = String>,
    flag: &'static str,
) -> Result<String, CliError> {
    match args.next() {
        None => Err(CliError::MissingValue(flag)),
        Some(next) if next.starts_with("--") => Err(CliError::ValueIsAFlag(flag, next)),
        Some(value) => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::new("demo", "A demo.", "127.0.0.1:8080")
            .switch("--quiet", "say less")
            .option("--rate", "N", "per second")
    }

    fn parse(args: &[&str]) -> Result<Parsed, CliError> {
        spec().parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        let Ok(Parsed::Run(args)) = parse(&[]) else {
            panic!()
        };
        assert_eq!(args.addr, "127.0.0.1:8080".parse().unwrap());
        assert!(!args.trace);
        assert!(!args.flag("--quiet"));
        assert_eq!(args.parsed::<u32>("--rate"), Ok(None));
    }

    #[test]
    fn both_value_forms_and_own_flags() {
        let Ok(Parsed::Run(args)) = parse(&["--addr=127.0.0.1:0", "--quiet", "--rate", "5"]) else {
            panic!()
        };
        assert_eq!(args.addr.port(), 0);
        assert!(args.flag("--quiet"));
        assert_eq!(args.parsed::<u32>("--rate"), Ok(Some(5)));
        let Ok(Parsed::Run(args)) = parse(&["--rate", "1", "--rate=2"]) else {
            panic!()
        };
        assert_eq!(args.values("--rate").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(args.value("--rate"), Some("2"));
        let Ok(Parsed::Run(args)) = parse(&["--rate=x"]) else {
            panic!()
        };
        assert!(matches!(
            args.parsed::<u32>("--rate"),
            Err(CliError::BadValue(..))
        ));
    }

    #[test]
    fn help_lists_every_flag() {
        let Ok(Parsed::Help(text)) = parse(&["--trace", "--help"]) else {
            panic!()
        };
        for flag in [
            "--addr HOST:PORT",
            "--trace",
            "--quiet",
            "--rate N",
            "--help",
        ] {
            assert!(text.contains(flag), "{text}");
        }
        assert!(text.contains("default 127.0.0.1:8080"), "{text}");
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&["--nope"]).err(),
            Some(CliError::UnknownFlag("--nope".into()))
        );
        assert_eq!(
            parse(&["--addr"]).err(),
            Some(CliError::MissingValue("--addr"))
        );
        assert_eq!(
            parse(&["--rate"]).err(),
            Some(CliError::MissingValue("--rate"))
        );
        assert_eq!(
            parse(&["--rate", "--quiet"]).err(),
            Some(CliError::ValueIsAFlag("--rate", "--quiet".into()))
        );
        assert_eq!(
            parse(&["--addr", "--trace"]).err(),
            Some(CliError::ValueIsAFlag("--addr", "--trace".into()))
        );
        assert_eq!(
            parse(&["--quiet=1"]).err(),
            Some(CliError::UnexpectedValue("--quiet"))
        );
        assert!(matches!(
            parse(&["--addr", "no-port"]).err(),
            Some(CliError::BadAddr(..))
        ));
    }

    fn run_args(spec: &Spec, args: &[&str]) -> Args {
        match spec.parse(args.iter().map(|s| s.to_string())) {
            Ok(Parsed::Run(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn at_least_refuses_values_below_the_minimum() {
        let spec = Spec::new("demo", "A demo.", "127.0.0.1:8080").option("--max", "N", "most");
        let args = run_args(&spec, &["--max", "0"]);
        let err = args.at_least::<usize>("--max", 1).unwrap_err();
        assert_eq!(
            err,
            CliError::OutOfRange("--max", "0".into(), "must be at least 1".into())
        );
        assert_eq!(err.to_string(), "--max 0: must be at least 1");
        let args = run_args(&spec, &["--max=1"]);
        assert_eq!(args.at_least::<usize>("--max", 1), Ok(Some(1)));
        let args = run_args(&spec, &[]);
        assert_eq!(args.at_least::<usize>("--max", 1), Ok(None));
        let args = run_args(&spec, &["--max", "-1"]);
        assert!(matches!(
            args.at_least::<usize>("--max", 1),
            Err(CliError::BadValue(..))
        ));
    }

    #[test]
    fn seconds_take_fractions_and_refuse_negative_and_infinite() {
        let spec = Spec::new("demo", "A demo.", "127.0.0.1:8080").option("--wait", "S", "wait");
        let args = run_args(&spec, &["--wait", "0.25"]);
        assert_eq!(args.seconds("--wait"), Ok(Some(Duration::from_millis(250))));
        for bad in ["-1", "inf", "NaN"] {
            let args = run_args(&spec, &["--wait", bad]);
            assert!(
                matches!(args.seconds("--wait"), Err(CliError::OutOfRange(..))),
                "{bad}"
            );
        }
        let args = run_args(&spec, &["--wait", "soon"]);
        assert!(matches!(
            args.seconds("--wait"),
            Err(CliError::BadValue(..))
        ));
    }

    #[test]
    fn ws_config_from_the_keepalive_flags() {
        let spec = ws_flags(Spec::new("demo", "A demo.", "127.0.0.1:9001"));
        let config = ws_config(&run_args(&spec, &[])).unwrap();
        assert_eq!(config.ping_interval, WsConfig::default().ping_interval);
        assert_eq!(config.close_timeout, Duration::from_secs(5));
        let config = ws_config(&run_args(&spec, &["--ping-interval", "0"])).unwrap();
        assert_eq!(config.ping_interval, None);
        let config = ws_config(&run_args(&spec, &["--close-timeout", "0.3"])).unwrap();
        assert_eq!(config.close_timeout, Duration::from_millis(300));
        for bad in [
            &["--ping-timeout", "0"][..],
            &["--ping-timeout", "-2"],
            &["--ping-interval", "-1"],
            &["--close-timeout", "0"],
            &["--close-timeout", "-1"],
        ] {
            let err = ws_config(&run_args(&spec, bad)).unwrap_err();
            assert!(matches!(err, CliError::OutOfRange(..)), "{bad:?}: {err}");
        }
        let err = ws_config(&run_args(&spec, &["--ping-timeout", "0"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--ping-timeout 0: must be more than 0")
        );
        let err = ws_config(&run_args(&spec, &["--close-timeout", "0"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--close-timeout 0: must be more than 0")
        );
    }

    #[test]
    fn origins_as_browsers_send_them() {
        for good in ["http://127.0.0.1:8080", "https://example.com", "null"] {
            assert_eq!(origin("--allow-origin", good), Ok(good.to_string()));
        }
        let err = origin("--allow-origin", "http://127.0.0.1:8080/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--allow-origin http://127.0.0.1:8080/: an origin has no path, query or trailing \
             slash (a browser sends http://127.0.0.1:8080)"
        );
        for bad in [
            "127.0.0.1:8080",
            "http://",
            "://x",
            "1http://x",
            "http://x/chat",
        ] {
            assert!(origin("--allow-origin", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serve_on_a_busy_port_says_to_pick_a_free_one() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = busy.local_addr().unwrap();
        let handler = crate::patterns::request_response::RequestResponse::new();
        let mut ready_called = false;
        let err = serve(Config::new(addr), handler, |_, _| ready_called = true).unwrap_err();
        assert!(!ready_called);
        assert!(matches!(err, ServeError::AddrInUse(a) if a == addr));
        let text = err.to_string();
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("already in use"), "{text}");
        assert!(text.contains("--addr 127.0.0.1:0"), "{text}");
    }

    #[test]
    fn serve_runs_until_shutdown_and_returns_the_totals() {
        use std::io::{Read, Write};
        let handler = crate::patterns::request_response::RequestResponse::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            serve(
                Config::new("127.0.0.1:0".parse().unwrap()),
                handler,
                |addr, handle| {
                    let _ = tx.send((addr, handle));
                },
            )
        });
        let (addr, handle) = rx.recv().unwrap();
        assert_ne!(addr.port(), 0);
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        handle.shutdown();
        let stats = thread.join().unwrap().unwrap();
        assert_eq!(stats.connections_accepted, 1);
        assert_eq!(stats.responses, 1);
    }
}
