//! The flags every example server shares, and a way to add its own.
//!
//! Every example server takes `--addr HOST:PORT` (where to listen; each example
//! picks its default), `--trace` (print the cost timeline of each request) and
//! `--help`. An example adds its own flags with [`Spec::switch`] (present or not)
//! and [`Spec::option`] (takes a value). `--name value` and `--name=value` both work.
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

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

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
    /// A switch was given a value (`--trace=yes`).
    #[error("{0} takes no value")]
    UnexpectedValue(&'static str),
    /// `--addr` is not `HOST:PORT`, or the host does not resolve.
    #[error("--addr {0}: expected HOST:PORT ({1})")]
    BadAddr(String, String),
    /// A value that does not parse as what the flag wants.
    #[error("{0} {1}: not a valid value")]
    BadValue(&'static str, String),
}

impl Spec {
    /// A program called `program`, doing `about`, listening on `default_addr`
    /// unless `--addr` says otherwise.
    pub fn new(program: &'static str, about: &'static str, default_addr: &'static str) -> Spec {
        Spec {
            program,
            about,
            default_addr,
            extra: Vec::new(),
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
        let mut lines = vec![
            (
                "--addr HOST:PORT".to_string(),
                format!(
                    "where to listen (default {}; port 0 picks a free one)",
                    self.default_addr
                ),
            ),
            (
                "--trace".to_string(),
                "print the cost of each request, message or broadcast".to_string(),
            ),
        ];
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
                "--trace" => {
                    if inline.is_some() {
                        return Err(CliError::UnexpectedValue("--trace"));
                    }
                    trace = true;
                }
                "--addr" => {
                    addr_text = match inline {
                        Some(v) => v,
                        None => args.next().ok_or(CliError::MissingValue("--addr"))?,
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
                        (Some(_), None) => {
                            Some(args.next().ok_or(CliError::MissingValue(flag.name))?)
                        }
                    };
                    given.push((flag.name, value));
                }
            }
        }
        let addr = resolve(&addr_text)?;
        Ok(Parsed::Run(Args { addr, trace, given }))
    }

    /// Parses the process's arguments. On `--help`, prints the usage and exits 0;
    /// on a bad command line, prints the error and the usage to stderr and exits 2.
    pub fn parse_env_or_exit(&self) -> Args {
        match self.parse(std::env::args().skip(1)) {
            Ok(Parsed::Run(args)) => args,
            Ok(Parsed::Help(text)) => {
                print!("{text}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("error: {e}\n\n{}", self.usage());
                std::process::exit(2);
            }
        }
    }
}

/// Binds `config.addr`, prints the ready line `listening on http://ADDR` (the real
/// address, so `--addr 127.0.0.1:0` shows the port picked), and runs the server until
/// it stops. Tests and scripts wait for that line, so every example server prints it
/// through here. Exits 1, with a message on stderr, if the address cannot be bound or
/// the loop fails.
pub fn serve<H: crate::server::Handler>(config: crate::server::Config, handler: H) -> ! {
    use std::io::Write as _;
    let addr = config.addr;
    let mut server = match crate::server::Server::bind(config, handler) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on http://{}", server.local_addr());
    let _ = std::io::stdout().flush();
    match server.run() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("server stopped: {e}");
            std::process::exit(1);
        }
    }
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
            parse(&["--quiet=1"]).err(),
            Some(CliError::UnexpectedValue("--quiet"))
        );
        assert!(matches!(
            parse(&["--addr", "no-port"]).err(),
            Some(CliError::BadAddr(..))
        ));
    }
}
