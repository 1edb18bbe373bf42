//! `kaudit import`: files into the store, deduplicated, with a summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use kaudit_model::cloud::{self, Format};
use kaudit_model::decode::{self, DecodeError, ErrorKind, Record};
use kaudit_store::{Incoming, Store, now_micros};

use crate::batch::Batch;

/// Events per store append (one fsync each) when the input is a pipe; in a bulk load, events
/// between progress reports (and between readings of the clock for their time of receipt).
pub const BATCH: usize = 8192;
/// Skipped records named per file before only counting.
pub const MAX_REPORTED: usize = 20;

/// What to import as.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster the events are stored under.
    pub cluster: String,
    /// The input shape: a Kubernetes audit log, or a cloud export (EKS, GKE, AKS); `Auto`
    /// recognises it per file.
    pub format: Format,
}

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
    /// Total input bytes (file sizes on disk).
    pub total: u64,
    pub events: u64,
}

fn flush(batch: &mut Batch, store: &mut Store, f: &mut FileSummary) -> Result<(), String> {
    if batch.is_empty() {
        return Ok(());
    }
    batch.received = now_micros();
    let r = store.append(&batch.incoming())?;
    f.stored += r.stored;
    f.duplicates += r.duplicates;
    batch.clear();
    Ok(())
}

/// Counts bytes read from the file on disk (before decompression), for progress.
struct Counting<R> {
    inner: R,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// Imports `paths` (rotation sets put in order first) into `store`.
pub fn import(
    store: &mut Store,
    paths: &[PathBuf],
    opts: &Options,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<FileSummary>, String> {
    let paths = crate::rotation::order(paths);
    // Files can be read again after a crash, so the store loads them in bulk, without its
    // write-ahead log (see `Store::begin_bulk`); not a pipe or a device, nor a deleted file (a
    // shell's here-document behind /dev/stdin).
    let bulk = paths.iter().all(|p| can_read_again(p));
    if bulk {
        store.begin_bulk()?;
    }
    let total = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mut done = Progress {
        total,
        ..Default::default()
    };
    let mut out = Vec::new();
    for path in &paths {
        let f = import_file(store, path, opts, bulk, &mut done, &mut progress)?;
        out.push(f);
    }
    Ok(out)
}

/// Reads one input file as `kaudit import` does: plain or gzipped, its shape given or
/// recognised from its start (a Kubernetes audit log is streamed; cloud exports are read
/// whole). Calls `cb` with each record or decoding error; `disk` counts the bytes read from
/// disk (before decompression), for progress.
pub fn read_file(
    path: &Path,
    format: Format,
    disk: std::rc::Rc<std::cell::Cell<u64>>,
    cb: &mut dyn FnMut(Result<Record<'_>, DecodeError>) -> ControlFlow<()>,
) -> Result<decode::Stats, String> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut r = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: file,
            n: disk,
        },
    );
    let gz = r
        .fill_buf()
        .map_err(|e| format!("{name}: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut head = Vec::new();
    (&mut reader)
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| format!("{name}: {e}"))?;
    let format = match format {
        Format::Auto => cloud::detect(&head),
        f => f,
    };
    if format == Format::K8s {
        decode::decode_reader(io::Cursor::new(head).chain(reader), cb)
            .map_err(|e| format!("{name}: {e}"))
    } else {
        let mut all = head;
        reader
            .read_to_end(&mut all)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(cloud::decode_as(&all, format, cb))
    }
}

/// Whether `path` is a file that can be read again: regular and not deleted.
fn can_read_again(path: &Path) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        m.is_file() && m.nlink() > 0
    }
    #[cfg(not(unix))]
    {
        m.is_file()
    }
}

fn import_file(
    store: &mut Store,
    path: &Path,
    opts: &Options,
    bulk: bool,
    done: &mut Progress,
    progress: &mut impl FnMut(Progress),
) -> Result<FileSummary, String> {
    let name = path.display().to_string();
    let counter = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut fs = FileSummary {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut batch = Batch::new(&opts.cluster, 0);
    let mut failed: Option<String> = None;
    let base = *done;
    let mut received = now_micros();
    let mut cb = |item: Result<Record<'_>, DecodeError>| {
        match item {
            Ok(rec) if bulk => {
                fs.events += 1;
                let inc = Incoming::new(received, &opts.cluster, rec.raw, &rec.event);
                match store.push_bulk(&inc) {
                    Ok(true) => fs.stored += 1,
                    Ok(false) => fs.duplicates += 1,
                    Err(e) => {
                        let item = rec.item.map(|i| format!(" (item {i})")).unwrap_or_default();
                        failed = Some(format!("{name}:{}{item}: {e}", rec.line));
                        return ControlFlow::Break(());
                    }
                }
                // The time of receipt moves on as a batch's would.
                if fs.events.is_multiple_of(BATCH as u64) {
                    received = now_micros();
                    progress(Progress {
                        bytes: base.bytes + counter.get(),
                        total: base.total,
                        events: base.events + fs.events,
                    });
                }
            }
            Ok(rec) => {
                fs.events += 1;
                batch.push(rec.raw, &rec.event);
                if batch.len() >= BATCH {
                    if let Err(e) = flush(&mut batch, store, &mut fs) {
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
    let stats = read_file(path, opts.format, counter.clone(), &mut cb)?;
    if let Some(e) = failed {
        return Err(e);
    }
    flush(&mut batch, store, &mut fs)?;
    fs.bytes = stats.bytes;
    done.bytes += counter.get();
    done.events += fs.events;
    progress(*done);
    Ok(fs)
}
