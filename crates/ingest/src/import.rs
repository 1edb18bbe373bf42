//! `kaudit import`: files (or standard input) into a [`Sink`], deduplicated by it, with a
//! summary per file.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use kaudit_model::cloud::Format;
use kaudit_model::decode::{DecodeError, ErrorKind, Record};
use kaudit_model::sink::{Appended, Sink};

use crate::input;

/// Events per commit (one write and one fsync each when the input is a pipe; when it can be
/// read again, events between progress reports and readings of the clock for their time of
/// receipt).
pub const BATCH: usize = 8192;
/// Skipped records named per file before only counting.
pub const MAX_REPORTED: usize = 20;

/// What one file gave.
#[derive(Clone, Debug, Default)]
pub struct FileSummary {
    pub path: PathBuf,
    /// Bytes read (after decompression).
    pub bytes: u64,
    pub events: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub skipped: BTreeMap<ErrorKind, u64>,
    /// The first skipped records, as `file:line[:col] (item N): kind: message`.
    pub reported: Vec<String>,
}

/// Progress, for a progress bar.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes read of all input so far (compressed bytes for gzip input).
    pub bytes: u64,
    /// Total input bytes (file sizes on disk; 0 for standard input).
    pub total: u64,
    pub events: u64,
}

/// Imports `paths` (rotation sets put in order first; `-` is standard input) into `sink`, as
/// `format` (or recognised per file). When every input can be read again, the sink is told
/// ([`Sink::rereadable`]): an interrupted import is simply run again.
pub fn import(
    sink: &mut dyn Sink,
    paths: &[PathBuf],
    format: Format,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<FileSummary>, String> {
    let paths = crate::rotation::order(paths);
    if paths.iter().all(|p| input::rereadable(p)) {
        sink.rereadable()?;
    }
    let total = paths
        .iter()
        .filter(|p| !input::is_stdin(p))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut done = Progress {
        total,
        ..Default::default()
    };
    let mut out = Vec::new();
    for path in &paths {
        out.push(import_file(sink, path, format, &mut done, &mut progress)?);
    }
    Ok(out)
}

fn import_file(
    sink: &mut dyn Sink,
    path: &Path,
    format: Format,
    done: &mut Progress,
    progress: &mut impl FnMut(Progress),
) -> Result<FileSummary, String> {
    let name = input::display_name(path);
    let counter = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut fs = FileSummary {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut failed: Option<String> = None;
    let base = *done;
    let max = sink.max_event();
    let mut cb = |item: Result<Record<'_>, DecodeError>| {
        match item {
            Ok(rec) => {
                fs.events += 1;
                let at = || {
                    let item = rec.item.map(|i| format!(" (item {i})")).unwrap_or_default();
                    format!("{name}:{}{item}", rec.line)
                };
                if rec.raw.len() > max {
                    failed = Some(format!(
                        "{}: an event of {} bytes, above the store's limit of {max}",
                        at(),
                        rec.raw.len()
                    ));
                    return ControlFlow::Break(());
                }
                if let Err(e) = sink.push(rec.raw, &rec.event) {
                    failed = Some(format!("{}: {e}", at()));
                    return ControlFlow::Break(());
                }
                if sink.pending() >= BATCH {
                    if let Err(e) = commit(sink, &mut fs) {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                    progress(Progress {
                        bytes: base.bytes + counter.get(),
                        total: base.total,
                        events: base.events + fs.events,
                    });
                }
            }
            Err(e) => {
                *fs.skipped.entry(e.kind).or_default() += 1;
                if fs.reported.len() < MAX_REPORTED {
                    fs.reported.push(e.render(&name));
                }
            }
        }
        ControlFlow::Continue(())
    };
    let stats = input::read(path, format, counter.clone(), &mut cb)?;
    if let Some(e) = failed {
        return Err(e);
    }
    commit(sink, &mut fs)?;
    fs.bytes = stats.bytes;
    done.bytes += counter.get();
    done.events += fs.events;
    progress(*done);
    Ok(fs)
}

/// Commits what was pushed and counts it into the file's summary.
fn commit(sink: &mut dyn Sink, fs: &mut FileSummary) -> Result<(), String> {
    let a: Appended = sink.commit()?;
    fs.stored += a.stored;
    fs.duplicates += a.duplicates;
    Ok(())
}
