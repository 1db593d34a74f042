//! What our snapshotter says it did: with `--log-level debug` its server logs one `served`
//! line per call (`method`, `work_us` in the snapshotter, `total_us` in the handler). The
//! bench reads the lines a stretch of work added to the log and sums them per method
//! (`CTRD_BENCH_CALL_PROFILE=1`).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::Error;

/// Calls of one method: how many, and the microseconds of work and in all.
#[derive(Debug, Default, Clone, Copy)]
pub struct Calls {
    pub count: u64,
    pub work_us: u64,
    pub total_us: u64,
}

/// A snapshotter's log, read from a mark on.
#[derive(Debug)]
pub struct CallLog {
    path: PathBuf,
    mark: u64,
}

impl CallLog {
    /// Reads `path` from its current end on.
    pub fn at_end(path: PathBuf) -> Result<CallLog, Error> {
        let mut log = CallLog { path, mark: 0 };
        log.mark()?;
        Ok(log)
    }

    /// Moves the mark to the log's current end.
    pub fn mark(&mut self) -> Result<(), Error> {
        self.mark = std::fs::metadata(&self.path)
            .map_err(|e| Error::io(&self.path, e))?
            .len();
        Ok(())
    }

    /// The calls logged since the mark, per method; moves the mark to the end.
    pub fn since_mark(&mut self) -> Result<BTreeMap<String, Calls>, Error> {
        let mut file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        file.seek(SeekFrom::Start(self.mark))
            .map_err(|e| Error::io(&self.path, e))?;
        let mut text = String::new();
        let read = file
            .read_to_string(&mut text)
            .map_err(|e| Error::io(&self.path, e))?;
        self.mark += read as u64;
        let mut calls: BTreeMap<String, Calls> = BTreeMap::new();
        for line in text.lines().filter(|l| l.contains(" served")) {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_owned())
            };
            let (Some(method), Some(work), Some(total)) =
                (field("method"), field("work_us"), field("total_us"))
            else {
                continue;
            };
            let entry = calls.entry(method).or_default();
            entry.count += 1;
            entry.work_us += work.parse::<u64>().unwrap_or(0);
            entry.total_us += total.parse::<u64>().unwrap_or(0);
        }
        Ok(calls)
    }
}

/// Prints `calls` (summed over `per` repetitions of `what`) as a table, per repetition.
pub fn print(what: &str, calls: &BTreeMap<String, Calls>, per: usize) {
    let per = per.max(1) as f64;
    println!("\nCalls served per {what}, from the debug log:");
    println!("| method | calls | work (ms) | in the handler (ms) |");
    println!("|---|---|---|---|");
    let (mut work, mut total) = (0.0, 0.0);
    for (method, c) in calls {
        let w = c.work_us as f64 / 1000.0 / per;
        let t = c.total_us as f64 / 1000.0 / per;
        work += w;
        total += t;
        println!(
            "| {method} | {:.1} | {w:.2} | {t:.2} |",
            c.count as f64 / per
        );
    }
    println!("| all | | {work:.2} | {total:.2} |");
}
