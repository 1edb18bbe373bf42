//! The audit events users name on the command line, through the one reader
//! (`kaudit_ingest::input`): files (plain or gzip; rotated sets oldest first) or standard
//! input (`-`, or no file at all), as a Kubernetes audit log or a cloud export. Skipped records
//! are named on stderr.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use kaudit_ingest::input;
use kaudit_model::cloud::Format;
use kaudit_model::decode::{Record, Stats};

/// The shape of the inputs, for commands whose `--format` is their output's.
#[derive(clap::Args, Clone, Copy)]
pub struct InputFormat {
    /// The inputs' shape: auto (recognised per file), k8s (audit.log lines, EventLists,
    /// arrays), eks (CloudWatch exports and subscription payloads), gke (Cloud Logging
    /// entries, Pub/Sub envelopes), aks (diagnostic records).
    #[arg(
        id = "input_format",
        long = "input-format",
        value_name = "FORMAT",
        default_value = "auto"
    )]
    pub format: Format,
}

/// How many skipped records to name on stderr per input before only counting them.
const MAX_REPORTED: usize = 20;

/// Decodes the events of every input (standard input when `paths` is empty), as `format`,
/// calling `f(input name, record)` with each until it fails. Skipped records are reported on
/// stderr as `file:line: reason`, with a count per input when any were. Returns the combined
/// statistics.
pub fn for_each_event<F>(paths: &[PathBuf], format: Format, mut f: F) -> Result<Stats>
where
    F: for<'b> FnMut(&str, &Record<'b>) -> Result<()>,
{
    let stdin = [PathBuf::from(input::STDIN)];
    let paths = if paths.is_empty() {
        stdin.to_vec()
    } else {
        kaudit_ingest::rotation::order(paths)
    };
    if paths.iter().any(|p| input::is_stdin(p)) && std::io::stdin().is_terminal() {
        eprintln!("kaudit: reading audit events from the terminal (end with Ctrl-D)");
    }
    let mut total = Stats::default();
    for path in &paths {
        let stats = each_in(path, format, &mut f)?;
        if stats.skipped() > 0 {
            eprintln!("{}: {stats}", input::display_name(path));
        }
        total.merge(&stats);
    }
    Ok(total)
}

fn each_in<F>(path: &Path, format: Format, f: &mut F) -> Result<Stats>
where
    F: for<'b> FnMut(&str, &Record<'b>) -> Result<()>,
{
    let name = input::display_name(path);
    let mut reported = 0usize;
    let mut err: Option<anyhow::Error> = None;
    let disk = std::rc::Rc::new(std::cell::Cell::new(0));
    let stats = input::read(path, format, disk, &mut |item| match item {
        Ok(rec) => match f(&name, &rec) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                err = Some(e);
                ControlFlow::Break(())
            }
        },
        Err(e) => {
            if reported < MAX_REPORTED {
                eprintln!("{}", e.render(&name));
            } else if reported == MAX_REPORTED {
                eprintln!("{name}: more records skipped; only counting them from here");
            }
            reported += 1;
            ControlFlow::Continue(())
        }
    })
    .map_err(|e| anyhow!("cannot read {e}"))?;
    match err {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}
