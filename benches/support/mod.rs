//! What `parse_cost` and `ws_cost` share: reading the command line the way criterion
//! reads it, timing two contenders in alternating bursts, and printing aligned tables.
//!
//! Each bench ends with a ratio table measured here, after criterion's groups. It is
//! printed when the run measures (`cargo bench`, not `--test` or `--list`) and the
//! filter, if any, selects at least one of the benchmarks a row stands for.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the command line asks of this bench run, read as criterion reads it.
#[derive(Debug, PartialEq)]
pub struct RunArgs {
    /// The first positional argument: criterion runs only the benchmarks whose id
    /// (`group/function/parameter`) matches it.
    pub filter: Option<String>,
    /// `--exact`: the filter must equal the whole id.
    pub exact: bool,
    /// True when this run measures. `cargo bench` passes `--bench`; `cargo test
    /// --benches` does not, and `--test`, `--list`, `--ignored` and `--profile-time`
    /// ask for something other than measurements.
    pub measuring: bool,
}

/// Criterion's options that take a value. The value is the next argument
/// (`--sample-size 10`, `-s base`) unless it is attached (`--sample-size=10`,
/// `-sbase`); either way it is never the filter.
const TAKES_A_VALUE: [&str; 20] = [
    "--color",
    "--colour",
    "-c",
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--format",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// Splits the bench's arguments (without the program name) into criterion's
/// filter and the run's mode.
pub fn split_args(args: impl IntoIterator<Item = String>) -> RunArgs {
    let mut run = RunArgs {
        filter: None,
        exact: false,
        measuring: false,
    };
    let mut bench = false;
    let mut other_mode = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--name=value` carries its value; `--name value` takes the next argument.
        let (name, attached) = match arg.split_once('=') {
            Some((name, _)) => (name, true),
            None => (arg.as_str(), false),
        };
        match name {
            "--" => {
                // Everything after `--` is positional.
                if run.filter.is_none() {
                    run.filter = args.next();
                }
                break;
            }
            "--bench" => bench = true,
            "--exact" => run.exact = true,
            "--test" | "--list" | "--ignored" => other_mode = true,
            _ if TAKES_A_VALUE.contains(&name) => {
                other_mode |= name == "--profile-time";
                if !attached {
                    args.next();
                }
            }
            _ if name.starts_with('-') => {} // a flag without a value
            _ => {
                if run.filter.is_none() {
                    run.filter = Some(arg);
                }
            }
        }
    }
    run.measuring = bench && !other_mode;
    run
}

impl RunArgs {
    /// The arguments of this process.
    pub fn from_env() -> RunArgs {
        split_args(std::env::args().skip(1))
    }

    /// Whether criterion's filter selects the benchmark `id`.
    ///
    /// Criterion reads the filter as a regular expression. This reads the common
    /// cases exactly: plain text (found anywhere in the id), `^` and `$` anchors, and
    /// alternatives separated by `|`. An alternative with any other regex syntax
    /// counts as a match: a row too many beats a row silently missing.
    pub fn selects(&self, id: &str) -> bool {
        let Some(filter) = &self.filter else {
            return true;
        };
        if self.exact {
            return id == filter;
        }
        filter.split('|').any(|alternative| {
            let start = alternative.starts_with('^');
            let end = alternative.ends_with('$') && alternative.len() > usize::from(start);
            let text = &alternative[usize::from(start)..alternative.len() - usize::from(end)];
            if text.contains(['\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}']) {
                return true;
            }
            match (start, end) {
                (true, true) => id == text,
                (true, false) => id.starts_with(text),
                (false, true) => id.ends_with(text),
                (false, false) => id.contains(text),
            }
        })
    }

    /// Whether a ratio row standing for these criterion ids is to be printed.
    pub fn selects_any(&self, ids: &[String]) -> bool {
        self.measuring && ids.iter().any(|id| self.selects(id))
    }
}

/// Checks [`split_args`] and [`RunArgs::selects`] on the command lines that matter.
/// Bench targets have no test harness, so the benches call this at every start
/// (`cargo test --benches` included); it panics on a wrong answer.
pub fn check_arg_split() {
    let split = |line: &str| split_args(line.split_whitespace().map(String::from));
    let spaced = split("--warm-up-time 1 --measurement-time 2 --sample-size 10 --bench");
    assert_eq!(
        spaced,
        RunArgs {
            filter: None,
            exact: false,
            measuring: true
        },
        "values of spaced flags are not filters"
    );
    let run = split("-s x --save-baseline y --baseline=z short_get --bench");
    assert_eq!(run.filter.as_deref(), Some("short_get"));
    assert!(run.measuring);
    assert!(run.selects("short_get/httparse"));
    assert!(!run.selects("browser_get/httparse"));
    assert!(!split("--bench --test").measuring);
    assert!(!split("--list").measuring);
    assert!(!split("--bench --profile-time 5").measuring);
    assert!(
        !split("").measuring,
        "cargo test --benches does not pass --bench"
    );
    let run = split("--bench --exact short_get/httparse");
    assert!(run.selects("short_get/httparse") && !run.selects("short_get/wirepatterns"));
    let run = split("--bench ^short|chunked$");
    assert!(run.selects("short_get/httparse") && run.selects("post_chunked"));
    assert!(!run.selects("browser_get/httparse"));
    assert_eq!(split("--bench -- --odd").filter.as_deref(), Some("--odd"));
}

/// Times `ours` and `theirs` in alternating bursts (A B A B ...) and returns the
/// fastest burst of each, in seconds per call.
///
/// Criterion runs one contender for seconds, then the other; on a shared machine
/// whatever else runs in between lands on one side only. Bursts of a few
/// milliseconds in turn put both under the same load, and the fastest burst is the
/// one least disturbed. Each side gets as many calls per burst as fill `burst`
/// (at least one), and the side that goes first changes every round.
pub fn alternate<A, B>(
    rounds: usize,
    burst: Duration,
    mut ours: impl FnMut() -> A,
    mut theirs: impl FnMut() -> B,
) -> (f64, f64) {
    let calls_ours = calls_per_burst(burst, &mut ours);
    let calls_theirs = calls_per_burst(burst, &mut theirs);
    let (mut best_ours, mut best_theirs) = (f64::MAX, f64::MAX);
    for round in 0..rounds {
        if round % 2 == 0 {
            best_ours = best_ours.min(time_burst(calls_ours, &mut ours));
            best_theirs = best_theirs.min(time_burst(calls_theirs, &mut theirs));
        } else {
            best_theirs = best_theirs.min(time_burst(calls_theirs, &mut theirs));
            best_ours = best_ours.min(time_burst(calls_ours, &mut ours));
        }
    }
    (best_ours, best_theirs)
}

/// How many calls of `f` fill `burst` (this also warms `f` up).
fn calls_per_burst<R>(burst: Duration, f: &mut impl FnMut() -> R) -> u32 {
    let start = Instant::now();
    let mut calls = 0;
    while calls == 0 || start.elapsed() < burst {
        black_box(f());
        calls += 1;
    }
    calls
}

/// Seconds per call over one burst of `calls` calls.
fn time_burst<R>(calls: u32, f: &mut impl FnMut() -> R) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        black_box(f());
    }
    start.elapsed().as_secs_f64() / f64::from(calls)
}

/// A time in the unit its size calls for, with three or four significant digits:
/// `57.6 ns`, `2.75 ms`.
pub fn time(seconds: f64) -> String {
    let (value, unit) = if seconds < 1e-6 {
        (seconds * 1e9, "ns")
    } else if seconds < 1e-3 {
        (seconds * 1e6, "µs")
    } else if seconds < 1.0 {
        (seconds * 1e3, "ms")
    } else {
        (seconds, "s")
    };
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {unit}")
}

/// A table printed as Markdown with every column padded to its widest cell, so it
/// reads aligned in a terminal and pastes into NOTES.md as it is. The first column
/// is left-aligned (names), the others right-aligned (numbers).
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(titles: &[&str]) -> Table {
        Table {
            rows: vec![titles.iter().map(|t| t.to_string()).collect()],
        }
    }

    /// Adds a row; it must have as many cells as there are titles.
    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.rows[0].len(), "one cell per column");
        self.rows.push(cells);
    }

    /// True when no row has been added besides the titles.
    pub fn is_empty(&self) -> bool {
        self.rows.len() < 2
    }

    /// Prints the titles and the rows.
    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.rows[0].len())
            .map(|col| {
                let widest = self.rows.iter().map(|row| row[col].chars().count());
                widest.max().unwrap_or(0).max(3)
            })
            .collect();
        let line = |row: &[String]| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(col, (cell, &width))| match col {
                    0 => format!("{cell:<width$}"),
                    _ => format!("{cell:>width$}"),
                })
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        println!("{}", line(&self.rows[0]));
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(col, &width)| match col {
                0 => "-".repeat(width),
                _ => format!("{}:", "-".repeat(width - 1)),
            })
            .collect();
        println!("| {} |", rule.join(" | "));
        for row in &self.rows[1..] {
            println!("{}", line(row));
        }
    }
}

/// Where criterion writes its HTML report: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `target/criterion` (relative to the package,
/// where `cargo bench` runs the bench).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    PathBuf::from(target).join("criterion")
}

/// Prints where criterion's HTML report is: the index of every group, and the page
/// of `group` if one is named (its line chart plots time against input size).
pub fn print_report_paths(group: Option<&str>) {
    let dir = criterion_dir();
    println!(
        "\ncriterion's HTML report, every group: {}",
        dir.join("report/index.html").display()
    );
    if let Some(group) = group {
        println!(
            "the {group} group's page, with its chart: {}",
            dir.join(group).join("report/index.html").display()
        );
    }
}
