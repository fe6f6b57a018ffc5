//! `upload serve`: the upload service on the event loop
//! ([`wirepatterns::patterns::upload::UploadApp`]), with its flags and its trace.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use wirepatterns::cli::{Args, CliError, Parsed, Spec};
use wirepatterns::patterns::upload::{UploadApp, UploadStore};
use wirepatterns::server::Config;
use wirepatterns::trace::{Dur, Size, TraceLine};

use crate::parse_size;
use crate::support;

/// Where uploads go without `--dir`: inside the build directory, which git
/// ignores.
const DEFAULT_DIR: &str = "target/upload-store";
/// The largest upload or whole file without `--max-size`: 4 GiB.
const DEFAULT_MAX: u64 = 4 << 30;

/// The server's flags.
pub fn spec() -> Spec {
    Spec::new(
        "upload serve",
        "The upload service: PUT /files/NAME takes a whole file, streamed to a temporary \
         file and renamed into place when complete; /uploads speaks tus 1.0.0 (creation, \
         termination, checksum): resumable uploads in parts. Bodies go to disk as they \
         arrive; nothing holds a whole file.",
        "127.0.0.1:8080",
    )
    .option(
        "--dir",
        "DIR",
        "where uploads and files are stored (default target/upload-store)",
    )
    .option(
        "--max-size",
        "BYTES",
        "the largest upload or whole file; K, M, G: powers of 1024 (default 4G)",
    )
}

/// The store's directory and maximum size from the flags.
fn settings(args: &Args) -> Result<(PathBuf, u64), CliError> {
    let dir = PathBuf::from(args.value("--dir").unwrap_or(DEFAULT_DIR));
    let max = match args.value("--max-size") {
        None => DEFAULT_MAX,
        Some(text) => match parse_size(text) {
            Some(n) if n > 0 => n,
            _ => {
                return Err(CliError::OutOfRange(
                    "--max-size",
                    text.to_string(),
                    "expected a size above 0, such as 1048576, 64M or 2G".into(),
                ));
            }
        },
    };
    Ok((dir, max))
}

/// Runs the server with the arguments after `serve`.
pub fn run(args: Vec<String>) -> ExitCode {
    let spec = spec();
    let args = match spec.parse(args) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return support::usage_error(&spec, &e),
    };
    let (dir, max) = match settings(&args) {
        Ok(settings) => settings,
        Err(e) => return support::usage_error(&spec, &e),
    };
    let (store, recovery) = match UploadStore::open(&dir, max) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: cannot open the store in {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "store: {} (uploads {} found, {} leftovers of interrupted work removed); largest upload {}",
        dir.display(),
        recovery.uploads,
        recovery.removed,
        Size(max)
    );
    for (path, why) in &recovery.skipped {
        println!("store: left alone {}: {why}", path.display());
    }
    let mut app = UploadApp::new(store);
    if args.trace {
        let start = Instant::now();
        app.set_request_observer(move |cost| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", TraceLine::request(start, cost));
            let _ = out.flush();
        });
        app.set_observer(move |event| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{:>7}  {event}", Dur(start.elapsed()).to_string());
            let _ = out.flush();
        });
    }
    support::serve(Config::new(args.addr), app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(PathBuf, u64), String> {
        match spec().parse(args.iter().map(|a| a.to_string())) {
            Ok(Parsed::Run(args)) => settings(&args).map_err(|e| e.to_string()),
            Ok(Parsed::Help(_)) => Err("help".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn the_server_flags_have_defaults_and_refuse_nonsense() {
        assert_eq!(parse(&[]), Ok((PathBuf::from(DEFAULT_DIR), DEFAULT_MAX)));
        assert_eq!(
            parse(&["--dir", "/tmp/u", "--max-size", "64M"]),
            Ok((PathBuf::from("/tmp/u"), 64 << 20))
        );
        assert!(parse(&["--max-size", "0"]).is_err_and(|e| e.contains("above 0")));
        assert!(parse(&["--max-size", "lots"]).is_err_and(|e| e.contains("--max-size")));
        assert!(parse(&["--bogus"]).is_err());
    }
}
