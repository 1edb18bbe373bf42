//! The data directory opened for writing ([`Store`]): appending with group commit
//! ([`append`]), sealing WAL files into segments on a background thread ([`seal`]),
//! checkpoints, retention ([`retain`]), and recovery from a crash when it is opened
//! ([`recover`]).

mod append;
mod live;
mod recover;
mod retain;
mod seal;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::dedup::Dedup;
use crate::error::{Error, Result, io_err};
use crate::layout::Layout;
use crate::manifest::{Manifest, SegmentMeta, unhex};
use crate::merkle::{Frontier, Hash, hex};
use crate::note::{self, Checkpoint, Keys};
use crate::segment;
use crate::wal;

pub use append::Incoming;
use live::Live;
pub use recover::Recovery;
use seal::{Pending, Sealer};

/// Tuning.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seal the WAL into a segment after this many records.
    pub seal_rows: u64,
    /// Sign a checkpoint at most this often while appending (and always on seal and close).
    pub checkpoint_every: Duration,
    /// Rows per Parquet row group in sealed segments (the unit of skipping and of parallel
    /// reading).
    pub row_group_rows: usize,
    /// Rows of recently sealed segments whose dedup keys stay in memory (beyond the WAL's,
    /// which always do). Older requests are found through their row groups' time ranges.
    pub dedup_hot_rows: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seal_rows: 1_000_000,
            checkpoint_every: Duration::from_secs(1),
            row_group_rows: segment::ROW_GROUP,
            dedup_hot_rows: 1_000_000,
        }
    }
}

/// An open, writable data directory.
pub struct Store {
    layout: Layout,
    keys: Keys,
    manifest: Manifest,
    opts: Options,
    wal: wal::Writer,
    wal_rows: u64,
    frontier: Frontier,
    dedup: Dedup,
    /// Complete WAL files waiting to be sealed, oldest first (the first may be in the works).
    pending: VecDeque<Pending>,
    sealer: Sealer,
    housekeeping_error: Option<Error>,
    checkpoints: File,
    last_checkpoint: (u64, Instant),
    scratch: Vec<u8>,
    recovery: Recovery,
    /// The segment of the WAL file being appended to, built while appending (`None` for a
    /// WAL file this process did not start, or after a failure: sealing then reads it back).
    live: Option<Live>,
    /// Loading in bulk (see [`Store::begin_bulk`]): the first leaf of the segment being built.
    bulk: Option<u64>,
    /// Why bulk loading cannot go on: a segment built without the WAL was lost.
    broken: Option<Error>,
    /// `layout.segments()`, made once (deduplication may read segments on any append).
    segments_dir: PathBuf,
    /// Held (an exclusive file lock on `lock`) while the store is open for writing.
    _lock: File,
}

impl Store {
    /// Opens the data directory at `dir`, creating it (and a signing key) if needed, and
    /// recovers from a crash: cuts a torn WAL tail, finishes an interrupted seal, removes what
    /// an interrupted seal or retention left (see [`Recovery`]).
    pub fn open(dir: &Path, opts: Options) -> Result<Store> {
        let layout = Layout::new(dir);
        for d in [layout.wal(), layout.segments()] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let lock = lock(&layout)?;
        let keys = keys(&layout)?;
        let manifest = if layout.manifest().exists() {
            Manifest::load(&layout.manifest())?
        } else {
            let m = Manifest::new(keys.origin.clone());
            m.save(&layout.manifest())?;
            m
        };
        let mut recovery = Recovery::default();
        recovery.clean_up(&layout, &keys, &manifest)?;
        let checkpoints = OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.checkpoints())
            .map_err(io_err(&layout.checkpoints()))?;
        let mut dedup = Dedup::new(opts.dedup_hot_rows);
        dedup.open_segments(&layout.segments(), &manifest.segments)?;
        let wal = recover::read_wal(&layout, &keys, &manifest, &mut dedup, &mut recovery)?;
        let segments_dir = layout.segments();
        let mut store = Store {
            layout,
            keys,
            manifest,
            opts,
            wal: wal.writer,
            wal_rows: wal.rows,
            frontier: wal.frontier,
            dedup,
            pending: wal.pending,
            sealer: Sealer::start(),
            housekeeping_error: None,
            checkpoints,
            last_checkpoint: (0, Instant::now()),
            scratch: Vec::new(),
            recovery,
            live: None,
            bulk: None,
            broken: None,
            segments_dir,
            _lock: lock,
        };
        store.start_live();
        store.last_checkpoint = (store.latest_checkpoint_size()?, Instant::now());
        if store.wal_rows >= store.opts.seal_rows {
            store.rotate()?;
        }
        store.poll_seals(false)?;
        Ok(store)
    }

    fn latest_checkpoint_size(&self) -> Result<u64> {
        Ok(
            note::latest_checkpoint(&self.layout.checkpoints(), &self.keys)?
                .map_or(0, |(_, c)| c.size),
        )
    }

    /// What opening repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The signing keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The number of events stored (the tree size), including those removed by retention.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The sealed segments, oldest first.
    pub fn segments(&self) -> &[SegmentMeta] {
        &self.manifest.segments
    }

    /// Why the last checkpoint or WAL rotation after an append failed, if it did (the
    /// appended events are durable regardless; it is tried again on the next append).
    pub fn housekeeping_error(&self) -> Option<&Error> {
        self.housekeeping_error.as_ref()
    }

    /// Signs a checkpoint of the current tree head, if it grew since the last one.
    /// When loading in bulk, only sealed events are durable: the checkpoint is of them.
    pub fn checkpoint(&mut self) -> Result<()> {
        let (size, root) = match self.bulk {
            Some(_) => self.sealed_tree()?,
            None => (self.frontier.size(), self.frontier.root()),
        };
        if size == self.last_checkpoint.0 && size != 0 {
            self.last_checkpoint.1 = Instant::now();
            return Ok(());
        }
        let cp = Checkpoint {
            origin: self.keys.origin.clone(),
            size,
            root,
            time: kaudit_model::now_micros(),
        };
        let note = self.keys.sign(&cp.body());
        let line = note::Line::to_line(note);
        let p = self.layout.checkpoints();
        // A failed write (disk full) must not leave half a line for the next one to follow.
        let before = self.checkpoints.metadata().map_err(io_err(&p))?.len();
        if let Err(e) = self.checkpoints.write_all(line.as_bytes()) {
            let _ = self.checkpoints.set_len(before);
            return Err(io_err(&p)(e));
        }
        self.last_checkpoint = (size, Instant::now());
        Ok(())
    }

    /// The size and root of the tree of sealed events.
    fn sealed_tree(&self) -> Result<(u64, Hash)> {
        let m = &self.manifest;
        let hashes = m
            .sealed_frontier
            .iter()
            .map(|h| {
                unhex(h).ok_or_else(|| {
                    Error::damaged(&self.layout.manifest(), format!("bad hash {h:?}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let f = Frontier::from_parts(m.sealed_size, hashes)
            .map_err(|e| Error::damaged(&self.layout.manifest(), e))?;
        Ok((f.size(), f.root()))
    }

    /// Rows in the WAL file being appended to.
    pub fn wal_rows(&self) -> u64 {
        self.wal_rows
    }

    /// Bytes in WAL files (the one appended to and those waiting to be sealed).
    pub fn wal_bytes(&self) -> u64 {
        let pending: u64 = self
            .pending
            .iter()
            .filter_map(|p| fs::metadata(p.path.as_ref()?).ok())
            .map(|m| m.len())
            .sum();
        pending + self.wal.len
    }

    /// (hot dedup keys, cold row groups, cold row groups cached, cold row groups read).
    pub fn dedup_stats(&self) -> (usize, usize, usize, u64) {
        let (a, b, c) = self.dedup.sizes();
        (a, b, c, self.dedup.cold_loads)
    }

    /// Signs a final checkpoint, makes the checkpoint log durable and finishes pending seals
    /// (when loading in bulk, seals everything first).
    pub fn close(mut self) -> Result<()> {
        if self.bulk.is_some() {
            if let Some(e) = self.broken.clone() {
                // Complete segments before the failure are still sealed.
                let _ = self.poll_seals(true);
                return Err(e);
            }
            self.seal()?;
            // The WAL file still starts where the load began: the next one starts where the
            // log ends (created before the old one goes; opening removes a leftover).
            let next = self.frontier.size();
            if self.wal.first != next {
                let wal_dir = self.layout.wal();
                let new_wal = wal::Writer::create(&wal_dir, next).map_err(io_err(&wal_dir))?;
                let old = std::mem::replace(&mut self.wal, new_wal);
                fs::remove_file(&old.path).map_err(io_err(&old.path))?;
            }
        }
        self.checkpoint()?;
        let p = self.layout.checkpoints();
        self.checkpoints.sync_data().map_err(io_err(&p))?;
        self.poll_seals(true)
    }
}

/// Takes the data directory's lock: one writer at a time (two would interleave WAL frames and
/// fork the tree). Held while the returned file is open.
fn lock(layout: &Layout) -> Result<File> {
    let path = layout.lock();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: layout.root.clone(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// The signing keys, made (with a random log id) the first time.
fn keys(layout: &Layout) -> Result<Keys> {
    let dir = layout.keys();
    if dir.join("signing.key").exists() {
        return Keys::load(&dir).map_err(io_err(&dir));
    }
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| Error::io(&dir, std::io::Error::other(e.to_string())))?;
    let k = Keys::generate(format!("kaudit/{}", hex(&id))).map_err(io_err(&dir))?;
    k.save(&dir).map_err(io_err(&dir))?;
    Ok(k)
}
