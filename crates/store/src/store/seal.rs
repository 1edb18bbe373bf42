//! Sealing: complete WAL files become segments on a background thread ([`Sealer`]), one at a
//! time and in order; a segment is listed in the manifest only once its file is durable, and
//! its WAL file deleted only after that.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kaudit_model::Event;

use super::Store;
use crate::error::{Error, Result, io_err};
use crate::manifest::SegmentMeta;
use crate::merkle::hex;
use crate::record::StoredRecord;
use crate::row::Row;
use crate::segment::{self, RowGroupTerms};
use crate::wal;

/// A complete WAL file waiting to be sealed.
pub(super) struct Pending {
    pub first: u64,
    pub last: u64,
    /// The WAL file; `None` when loaded in bulk (the live segment is all there is).
    pub path: Option<PathBuf>,
    /// The tree's right edge after its last leaf.
    pub frontier_after: Vec<[u8; 32]>,
    /// Its segment was built while appending: the sealing thread holds its pages, and these
    /// are its row groups' term sets.
    pub live: Option<Vec<RowGroupTerms>>,
}

/// What the sealing thread is asked to seal.
pub(super) struct SealJob {
    first: u64,
    last: u64,
    /// `None` when loaded in bulk: there is no WAL file to read back.
    wal: Option<PathBuf>,
    segment: PathBuf,
    origin: String,
    group_rows: usize,
    frontier_after: Vec<String>,
    /// Finish the live segment of `first` with these term sets (falling back to reading the
    /// WAL file if it failed on the way).
    live: Option<Vec<RowGroupTerms>>,
}

/// A message to the sealing thread. Those of one live segment arrive in order: `Open`, its
/// pages, then `Seal` (or `Abort`).
pub(super) enum Msg {
    /// Seal a complete WAL file: finish its live segment, or read the file back.
    Seal(SealJob),
    /// Start the live segment of the WAL file starting at leaf `first`.
    Open {
        first: u64,
        tmp: PathBuf,
        origin: String,
        group_rows: usize,
    },
    /// Encode and compress a page of a live segment.
    Page {
        first: u64,
        batch: arrow_array::RecordBatch,
        end_group: bool,
    },
    /// Drop a live segment (its WAL file will be read back instead).
    Abort { first: u64 },
}

/// Pages in flight to the sealing thread at most: appends wait beyond (a page holds at most
/// 8,192 events and 4 MiB of them, so this bounds the memory they take).
const PAGES_IN_FLIGHT: usize = 2;

/// The sealing thread: live segments page by page while appends go on, and one WAL file
/// at a time, in order.
pub(super) struct Sealer {
    jobs: Option<mpsc::SyncSender<Msg>>,
    /// Each seal's segment, and whether it was built while appending.
    results: mpsc::Receiver<Result<(SegmentMeta, bool)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    busy: bool,
    /// Segments sealed so far: (built while appending, read back from the WAL).
    counts: (u64, u64),
    error: Option<Error>,
    retry_at: Option<Instant>,
}

impl Sealer {
    pub(super) fn start() -> Sealer {
        let (jobs, rx) = mpsc::sync_channel::<Msg>(PAGES_IN_FLIGHT);
        let (tx, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kaudit-seal".into())
            .spawn(move || {
                // Live segments being written: Err once one failed (then sealing reads
                // its WAL file back).
                let mut live: Vec<(u64, Result<segment::PageWriter>)> = Vec::new();
                for msg in rx {
                    match msg {
                        Msg::Open {
                            first,
                            tmp,
                            origin,
                            group_rows,
                        } => {
                            live.retain(|(f, _)| *f != first);
                            let w = segment::PageWriter::create(&tmp, first, &origin, group_rows);
                            live.push((first, w));
                        }
                        Msg::Page {
                            first,
                            batch,
                            end_group,
                        } => {
                            if let Some((_, w)) = live.iter_mut().find(|(f, _)| *f == first)
                                && let Ok(pw) = w
                                && let Err(e) = pw.write(&batch, end_group)
                            {
                                *w = Err(e);
                            }
                        }
                        Msg::Abort { first } => live.retain(|(f, _)| *f != first),
                        Msg::Seal(job) => {
                            let w = live
                                .iter()
                                .position(|(f, _)| *f == job.first)
                                .map(|i| live.remove(i).1);
                            let r = match (w, &job.live) {
                                (Some(Ok(w)), Some(terms)) => match seal_live(&job, w, terms) {
                                    Ok(m) => Ok((m, true)),
                                    Err(e) if job.wal.is_none() => Err(e),
                                    Err(_) => seal_file(&job).map(|m| (m, false)),
                                },
                                (Some(Err(e)), _) if job.wal.is_none() => Err(e),
                                _ => seal_file(&job).map(|m| (m, false)),
                            };
                            if tx.send(r).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .expect("spawning the sealing thread");
        Sealer {
            jobs: Some(jobs),
            results,
            thread: Some(thread),
            busy: false,
            counts: (0, 0),
            error: None,
            retry_at: None,
        }
    }

    pub(super) fn send(&self, msg: Msg) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(msg).ok())
            .ok_or(Error::SealerStopped)
    }

    fn submit(&mut self, job: SealJob) -> Result<()> {
        self.send(Msg::Seal(job))?;
        self.busy = true;
        Ok(())
    }

    fn result(&mut self, wait: bool) -> Result<Option<Result<SegmentMeta>>> {
        let r = self.result_inner(wait)?;
        Ok(r.map(|r| {
            r.map(|(m, live)| {
                if live {
                    self.counts.0 += 1;
                } else {
                    self.counts.1 += 1;
                }
                m
            })
        }))
    }

    fn result_inner(&mut self, wait: bool) -> Result<Option<Result<(SegmentMeta, bool)>>> {
        let r = if wait {
            self.results.recv().map_err(|_| Error::SealerStopped)
        } else {
            match self.results.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => Err(Error::SealerStopped),
            }
        };
        self.busy = false;
        r.map(Some)
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Finishes the live segment of a complete WAL file (on the sealing thread), after checking
/// it holds every row of the file. A failure leaves no segment file.
fn seal_live(
    job: &SealJob,
    w: segment::PageWriter,
    terms: &[RowGroupTerms],
) -> Result<SegmentMeta> {
    let rows = job.last - job.first + 1;
    let grouped: u64 = terms.iter().map(|g| g.rows).sum();
    if w.rows() != rows || grouped != rows {
        return Err(Error::damaged(
            &job.segment,
            format!(
                "the segment built while appending holds {} rows, the WAL file {rows}",
                w.rows()
            ),
        ));
    }
    w.finish(&job.segment, terms)?;
    segment_meta(job, rows, terms.to_vec())
}

/// Writes the segment of one complete WAL file by reading it back (on the sealing thread). A
/// failure leaves no segment file (the writer removes its temporary file).
fn seal_file(job: &SealJob) -> Result<SegmentMeta> {
    let (first, last, path) = (job.first, job.last, &job.segment);
    let Some(wal_path) = &job.wal else {
        return Err(Error::BulkLost(format!(
            "{}: leaves {first}..={last} were loaded in bulk and their segment was not built",
            path.display()
        )));
    };
    let mut b = segment::SegmentWriter::create(path, first, &job.origin, job.group_rows)?;
    let mut leaf = first;
    let mut err = None;
    wal::scan(wal_path, |flags, payload| {
        if err.is_some() {
            return;
        }
        let r = match StoredRecord::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                err = Some(Error::damaged(wal_path, format!("leaf {leaf}: {e}")));
                return;
            }
        };
        let e: Event<'_> = match serde_json::from_str(r.event) {
            Ok(e) => e,
            Err(e) => {
                err = Some(Error::damaged(wal_path, format!("leaf {leaf}: {e}")));
                return;
            }
        };
        if let Err(e) = b.push(leaf, &r, &Row::from_event(&e), flags & wal::FIRST != 0) {
            err = Some(e);
            return;
        }
        leaf += 1;
    })
    .map_err(io_err(wal_path))?;
    if let Some(e) = err {
        return Err(e);
    }
    if leaf != last + 1 {
        return Err(Error::damaged(
            wal_path,
            format!("holds leaves {first}..{leaf}, expected up to {last}"),
        ));
    }
    let rows = b.len();
    let groups = b.finish()?;
    segment_meta(job, rows, groups)
}

/// The manifest entry of a segment just written.
fn segment_meta(job: &SealJob, rows: u64, groups: Vec<RowGroupTerms>) -> Result<SegmentMeta> {
    let path = &job.segment;
    let (bytes, digest) = segment::file_digest(path).map_err(io_err(path))?;
    Ok(SegmentMeta {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        first_leaf: job.first,
        last_leaf: job.last,
        rows,
        bytes,
        sha256: hex(&digest),
        min_time: groups.iter().filter_map(|g| g.min_time).min(),
        max_time: groups.iter().filter_map(|g| g.max_time).max(),
        row_groups: groups,
        frontier_after: job.frontier_after.clone(),
    })
}

impl Store {
    /// Seals everything appended so far: the current WAL file is closed and every complete
    /// WAL file is turned into a segment; returns when they all are.
    pub fn seal(&mut self) -> Result<()> {
        self.rotate()?;
        self.poll_seals(true)
    }

    /// Closes the current WAL file (after a checkpoint covering it) and starts a new one;
    /// the closed file is sealed in the background.
    pub(super) fn rotate(&mut self) -> Result<()> {
        if self.wal_rows == 0 {
            return Ok(());
        }
        if self.bulk.is_none() {
            // (In bulk, checkpoints follow seals: nothing new is durable yet.)
            self.checkpoint()?;
            let cp_path = self.layout.checkpoints();
            self.checkpoints.sync_data().map_err(io_err(&cp_path))?;
        }
        let next = self.frontier.size();
        let (first, path) = match self.bulk {
            // The WAL file stays empty (and starts at or below the sealed size: opening the
            // store after a crash removes it).
            Some(first) => {
                self.bulk = Some(next);
                (first, None)
            }
            None => {
                let new_wal = wal::Writer::create(&self.layout.wal(), next)
                    .map_err(io_err(&self.layout.wal()))?;
                let old = std::mem::replace(&mut self.wal, new_wal);
                (old.first, Some(old.path.clone()))
            }
        };
        let live = self.finish_live(first);
        self.pending.push_back(Pending {
            first,
            last: next - 1,
            path,
            frontier_after: self.frontier.hashes().to_vec(),
            live,
        });
        self.dedup.start_wal(next);
        self.wal_rows = 0;
        self.start_live();
        Ok(())
    }

    /// Hands the oldest pending WAL file to the sealing thread and takes in what it finished.
    /// With `wait`, returns when nothing is pending (or a seal failed); otherwise never
    /// blocks and never fails: a failure is kept in [`Store::seal_error`] and retried a
    /// little later (the WAL keeps the data meanwhile).
    pub fn poll_seals(&mut self, wait: bool) -> Result<()> {
        loop {
            if !self.sealer.busy
                && let Some(p) = self.pending.front_mut()
                && (wait || self.sealer.retry_at.is_none_or(|t| Instant::now() >= t))
            {
                let job = SealJob {
                    live: p.live.take(),
                    first: p.first,
                    last: p.last,
                    wal: p.path.clone(),
                    segment: segment::file_name(&self.layout.segments(), p.first, p.last),
                    origin: self.keys.origin.clone(),
                    group_rows: self.opts.row_group_rows,
                    frontier_after: p.frontier_after.iter().map(|h| hex(h)).collect(),
                };
                if let Err(e) = self.sealer.submit(job) {
                    self.sealer.error = Some(e.clone());
                    return if wait { Err(e) } else { Ok(()) };
                }
            }
            if !self.sealer.busy {
                return Ok(());
            }
            let result = match self.sealer.result(wait) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => Err(e),
            };
            match result.and_then(|meta| self.sealed(meta)) {
                Ok(()) => {
                    self.sealer.error = None;
                    self.sealer.retry_at = None;
                    if self.bulk.is_some() {
                        // Synced: the sealed segment is, and a torn line would fail `verify`.
                        let cp = self.layout.checkpoints();
                        self.housekeeping_error = self
                            .checkpoint()
                            .and_then(|()| self.checkpoints.sync_data().map_err(io_err(&cp)))
                            .err();
                    }
                }
                Err(e) if self.pending.front().is_some_and(|p| p.path.is_none()) => {
                    // Built without the WAL: there is nothing to read back and try again.
                    let e = Error::BulkLost(format!(
                        "{e} (loaded in bulk: the events since the last sealed segment are not \
                         stored; load them again)"
                    ));
                    self.sealer.error = Some(e.clone());
                    self.broken = Some(e.clone());
                    return if wait { Err(e) } else { Ok(()) };
                }
                Err(e) => {
                    self.sealer.error = Some(e.clone());
                    self.sealer.retry_at = Some(Instant::now() + Duration::from_secs(5));
                    return if wait { Err(e) } else { Ok(()) };
                }
            }
        }
    }

    /// Why the last seal failed, if the most recent attempt did (the WAL keeps the data).
    pub fn seal_error(&self) -> Option<&Error> {
        self.sealer.error.as_ref()
    }

    /// Segments sealed since the store was opened: (built while appending, read back from
    /// their WAL file: one this process did not start, or after a failure).
    pub fn seal_counts(&self) -> (u64, u64) {
        self.sealer.counts
    }

    /// Complete WAL files not yet sealed.
    pub fn pending_seals(&self) -> usize {
        self.pending.len()
    }

    /// Closes the current WAL file and seals it in the background (if it holds anything).
    pub fn start_seal(&mut self) -> Result<()> {
        self.rotate()?;
        self.poll_seals(false)
    }

    /// The sealing thread finished the oldest pending file: list the segment, then delete
    /// the WAL file.
    fn sealed(&mut self, meta: SegmentMeta) -> Result<()> {
        let p = self.pending.front().expect("a seal was in flight");
        debug_assert_eq!(meta.first_leaf, p.first);
        let wal_path = p.path.clone();
        let last = p.last;
        let mut m = self.manifest.clone();
        m.segments.push(meta);
        m.sealed_size = last + 1;
        m.sealed_frontier = m.segments.last().unwrap().frontier_after.clone();
        m.save(&self.layout.manifest())?;
        self.manifest = m;
        self.pending.pop_front();
        self.dedup.sealed(&self.manifest.segments);
        if let Some(p) = wal_path {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(())
    }
}
