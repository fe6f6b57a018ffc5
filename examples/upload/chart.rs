//! `upload chart CSV SVG`: draws what `scripts/upload.sh` measured (one row per
//! run: the way the file was sent, and what it cost) as bar charts, with the
//! library's [`wirepatterns::chart`].
//!
//! The CSV's header names its columns; the ones read are `run` (the label of a
//! bar), `throughput_mib_s`, `requests` and `server_peak_mib`. Rows whose `run`
//! contains `cut` are left out of the charts (they measure a loss, not a speed).

use std::process::ExitCode;

use wirepatterns::chart::{BarChart, Series, stack};

/// One run's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// How the file was sent (`whole`, `chunked 64K`, ...).
    pub run: String,
    /// The file's size over the time, in MiB/s.
    pub throughput: f64,
    /// Requests made.
    pub requests: f64,
    /// The server's peak memory, in MiB.
    pub peak: f64,
}

/// Reads the rows of `csv`; `Err` names what is missing.
pub fn parse(csv: &str) -> Result<Vec<Row>, String> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("an empty CSV")?.split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("the CSV has no column {name}"))
    };
    let (run, throughput, requests, peak) = (
        column("run")?,
        column("throughput_mib_s")?,
        column("requests")?,
        column("server_peak_mib")?,
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let number = |at: usize| {
                cells
                    .get(at)
                    .and_then(|c| c.parse::<f64>().ok())
                    .ok_or_else(|| format!("row {}: not a number in column {}", i + 1, at + 1))
            };
            Ok(Row {
                run: cells.get(run).copied().unwrap_or_default().to_string(),
                throughput: number(throughput)?,
                requests: number(requests)?,
                peak: number(peak)?,
            })
        })
        .collect()
}

/// The SVG document for `rows` (runs with `cut` in their label left out).
pub fn draw(rows: &[Row], title: &str) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| !r.run.contains("cut")).collect();
    let categories: Vec<String> = rows.iter().map(|r| r.run.clone()).collect();
    let chart = |title: &str, unit: &str, name: &str, value: fn(&Row) -> f64, log: bool| BarChart {
        title: title.into(),
        unit: unit.into(),
        categories: categories.clone(),
        series: vec![Series::new(name, rows.iter().map(|r| value(r)).collect())],
        log_scale: log,
    };
    stack(
        title,
        &[
            chart(
                "Throughput: the file's size over the upload's time",
                "MiB/s",
                "throughput",
                |r| r.throughput,
                false,
            ),
            chart(
                "Requests made (one per part, plus the creation and the digest)",
                "requests",
                "requests",
                |r| r.requests,
                true,
            ),
            chart(
                "The server's peak memory (VmHWM)",
                "MiB",
                "peak memory",
                |r| r.peak,
                false,
            ),
        ],
    )
}

/// Runs `upload chart CSV SVG`.
pub fn run(args: Vec<String>) -> ExitCode {
    let [csv, svg] = args.as_slice() else {
        eprintln!("usage: upload chart CSV SVG (the CSV scripts/upload.sh writes)");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(csv) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read {csv}: {e}");
            return ExitCode::from(2);
        }
    };
    let rows = match parse(&text) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {csv}: {e}");
            return ExitCode::from(2);
        }
    };
    let doc = draw(
        &rows,
        "One file uploaded whole, and in tus parts of each size",
    );
    if let Err(e) = std::fs::write(svg, doc) {
        eprintln!("error: cannot write {svg}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {svg}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "run,mode,chunk_size,throughput_mib_s,requests,server_peak_mib,resent_mib\n\
                       whole,whole,0,400.5,1,3.2,0\n\
                       chunked 64K,chunked,65536,80.25,3202,3.4,0\n\
                       whole cut at 90%,whole,0,300,2,3.1,180\n";

    #[test]
    fn the_script_s_csv_is_read_by_its_header() {
        let rows = parse(CSV).expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].run, "chunked 64K");
        assert_eq!(
            (rows[1].throughput, rows[1].requests, rows[1].peak),
            (80.25, 3202.0, 3.4)
        );
        assert!(parse("run,requests\nx,1\n").is_err_and(|e| e.contains("throughput_mib_s")));
        assert!(
            parse("run,throughput_mib_s,requests,server_peak_mib\nx,fast,1,2\n")
                .is_err_and(|e| e.contains("row 1"))
        );
    }

    #[test]
    fn the_chart_leaves_the_cut_runs_out() {
        let svg = draw(&parse(CSV).expect("rows"), "t");
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{}",
            &svg[..40]
        );
        assert!(svg.contains("chunked 64K"));
        assert!(!svg.contains("cut at 90%"));
    }
}
