//! The data directory as a whole: appending (group commit), checkpoints, sealing, retention,
//! and recovery on open.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kaudit_model::{Event, Stage};

use crate::dedup::{Dedup, stage_bit};
use crate::manifest::{Manifest, SegmentMeta, unhex};
use crate::merkle::{Frontier, Hash, hex, leaf_hash, record_hash};
use crate::note::{Checkpoint, Keys};
use crate::record::{MAX_CLUSTER, StoredRecord};
use crate::row::{Row, RowOf};
use crate::segment::{self, RowGroupTerms};
use crate::wal;

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

/// Why a bulk load cannot go on after its segment failed.
const BULK_LOST: &str = "the segment being built without the write-ahead log failed: the \
                         events loaded since the last sealed segment are not stored; load them \
                         again";

/// Why an event cannot be stored at all: an over-long cluster name or event.
fn refusal(inc: &Incoming<'_>) -> Option<String> {
    if inc.cluster.len() > MAX_CLUSTER {
        return Some(format!("cluster name longer than {MAX_CLUSTER} bytes"));
    }
    let len = inc.record().encoded_len();
    (len > wal::MAX_RECORD).then(|| {
        format!(
            "event {:?} is {len} bytes, above the {} byte limit",
            inc.audit_id,
            wal::MAX_RECORD
        )
    })
}

/// One event to store.
pub struct Incoming<'a> {
    /// When it was received (microseconds since the epoch).
    pub received: i64,
    pub cluster: &'a str,
    /// The event's JSON exactly as received.
    pub raw: &'a str,
    /// Its `auditID`, `stage` and `requestReceivedTimestamp` (for deduplication).
    pub audit_id: &'a str,
    pub stage: Option<Stage>,
    pub time: Option<i64>,
    /// Its segment columns, taken from the parsed event (without, the store parses `raw`
    /// again to get them).
    pub row: Option<RowOf<'a>>,
}

impl<'a> Incoming<'a> {
    /// What the store keeps of it (a leaf's content).
    fn record(&self) -> StoredRecord<'a> {
        StoredRecord {
            received: self.received,
            cluster: self.cluster,
            event: self.raw,
        }
    }

    /// Its row: the one it carries, or parsed from `raw` into `slot`.
    fn take_row<'s>(
        &'s self,
        slot: &'s mut Option<Event<'a>>,
    ) -> std::result::Result<Row<'s>, serde_json::Error> {
        match self.row {
            Some(r) => Ok(r.get()),
            None => Ok(Row::from_event(
                slot.insert(serde_json::from_str(self.raw)?),
            )),
        }
    }

    /// The incoming form of a parsed event.
    pub fn new(received: i64, cluster: &'a str, raw: &'a str, e: &'a Event<'a>) -> Incoming<'a> {
        Incoming {
            received,
            cluster,
            raw,
            audit_id: e.audit_id.as_str(),
            stage: e.stage,
            time: e.request_received_timestamp.map(|t| t.micros()),
            row: Some(RowOf::Event(e)),
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    pub stored: u64,
    /// Skipped: the same (cluster, auditID, request time, stage) is already stored.
    pub duplicates: u64,
}

/// What opening found and repaired.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// A torn tail cut from the last WAL file: (file, bytes cut, why).
    pub torn_tail: Option<(PathBuf, u64, String)>,
    /// Complete WAL files found unsealed on open (an interrupted seal), sealed again.
    pub sealed_on_open: usize,
    /// An unfinished last line cut from `checkpoints.jsonl` or `retention.jsonl` (a write
    /// cut by a crash or power loss; it was never a complete signed note): (file, bytes cut).
    pub torn_notes: Vec<(PathBuf, u64)>,
    /// Segment files an interrupted seal or retention left, removed (see
    /// [`remove_leftovers`]).
    pub removed_leftovers: Vec<PathBuf>,
}

impl Recovery {
    /// What was repaired, one sentence each, for the log or the terminal.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((p, n, why)) = &self.torn_tail {
            out.push(format!(
                "recovered: cut {n} bytes of an unacknowledged write from {} ({why})",
                p.display()
            ));
        }
        for (p, n) in &self.torn_notes {
            out.push(format!(
                "recovered: cut an unfinished last line ({n} bytes) from {}",
                p.display()
            ));
        }
        for p in &self.removed_leftovers {
            out.push(format!(
                "recovered: removed {}, left by an interrupted seal or retention",
                p.display()
            ));
        }
        if self.sealed_on_open > 0 {
            out.push(format!(
                "recovered: sealing {} WAL file(s) left unsealed",
                self.sealed_on_open
            ));
        }
        out
    }
}

/// Ends an unfinished last line (no newline after it) of a file of signed notes, as a crash or
/// power loss can leave it: one that is a whole note gets its newline; anything else was never
/// a complete note and is cut (a line appended after it would make both unreadable).
/// Returns the bytes cut.
fn end_torn_line(path: &Path) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path)(e)),
    };
    let len = f.metadata().map_err(io_err(path))?.len();
    // Back from the end, a block at a time, to the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        f.read_exact(chunk).map_err(io_err(path))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end == len {
        return Ok(0);
    }
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(end)).map_err(io_err(path))?;
    f.read_to_end(&mut tail).map_err(io_err(path))?;
    if serde_json::from_slice::<CheckpointLine>(&tail).is_ok() {
        f.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        f.write_all(b"\n").map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        return Ok(0);
    }
    f.set_len(end).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(len - end)
}

/// Removes what an interrupted seal or retention left in `segments/`, and returns the
/// segment files removed. Temporary files go. A segment file the manifest does not list goes
/// only when that is provably safe, since the manifest is not signed (an older copy put back
/// must not cost the segments it does not know):
/// - past the sealed size, when its events are still in the WAL (a WAL file starts where it
///   does: the seal is done again) or no signed checkpoint reaches it (a bulk load signs one
///   only after the manifest lists the segment: its events are loaded again);
/// - below the retained boundary, when a signed retention record names it (retention saves
///   the manifest before deleting files).
///
/// Any other unlisted file stays, for `verify` to report.
fn remove_leftovers(layout: &Layout, keys: &Keys, manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let dir = layout.segments();
    let mut candidates = Vec::new();
    for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let p = e.map_err(io_err(&dir))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match segment::leaves_of(&name) {
            Some(leaves) if !manifest.segments.iter().any(|s| s.file == name) => {
                candidates.push((p, name, leaves))
            }
            Some(_) => {}
            None if p.extension().is_some_and(|x| x == "tmp") => {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
            None => {}
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let wal_starts: Vec<u64> = wal::list(&layout.wal())
        .map_err(io_err(&layout.wal()))?
        .into_iter()
        .map(|(first, _)| first)
        .collect();
    let signed = latest_checkpoint_size(layout, keys);
    let retired = signed_removals(layout, keys);
    let mut removed = Vec::new();
    for (p, name, (first, last)) in candidates {
        let unsealed =
            first >= manifest.sealed_size && (wal_starts.contains(&first) || signed <= first);
        let retained = last < manifest.pruned_size && retired.contains(&name);
        if unsealed || retained {
            fs::remove_file(&p).map_err(io_err(&p))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// The segment files signed retention records say were removed.
fn signed_removals(layout: &Layout, keys: &Keys) -> std::collections::HashSet<String> {
    let text = fs::read(layout.retention()).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| serde_json::from_str::<CheckpointLine>(l).ok())
        .filter_map(|c| keys.open(&c.note).ok().map(str::to_string))
        .flat_map(|body| {
            body.lines()
                .filter_map(|l| l.strip_prefix("removed ")?.split(' ').next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The paths inside a data directory.
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn wal(&self) -> PathBuf {
        self.root.join("wal")
    }
    pub fn segments(&self) -> PathBuf {
        self.root.join("segments")
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints.jsonl")
    }
    pub fn retention(&self) -> PathBuf {
        self.root.join("retention.jsonl")
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
    housekeeping_error: Option<String>,
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
    broken: Option<String>,
    /// `layout.segments()`, made once (deduplication may read segments on any append).
    segments_dir: PathBuf,
    /// Held (an exclusive file lock on `lock`) while the store is open for writing.
    _lock: File,
}

/// A store error: what and where.
pub type Result<T> = std::result::Result<T, String>;

fn io_err(path: &Path) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens the data directory at `dir`, creating it (and a signing key) if needed, and
    /// recovers from a crash: cuts a torn WAL tail, finishes an interrupted seal.
    pub fn open(dir: &Path, opts: Options) -> Result<Store> {
        let layout = Layout {
            root: dir.to_path_buf(),
        };
        for d in [layout.wal(), layout.segments()] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        // One writer at a time: two would interleave WAL frames and fork the tree.
        let lock_path = layout.root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "{}: another kaudit process is writing to this data directory",
                    dir.display()
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let keys = if layout.keys().join("signing.key").exists() {
            Keys::load(&layout.keys()).map_err(io_err(&layout.keys()))?
        } else {
            let mut id = [0u8; 8];
            getrandom::fill(&mut id).map_err(|e| e.to_string())?;
            let k =
                Keys::generate(format!("kaudit/{}", hex(&id))).map_err(io_err(&layout.keys()))?;
            k.save(&layout.keys()).map_err(io_err(&layout.keys()))?;
            k
        };
        let manifest = if layout.manifest().exists() {
            Manifest::load(&layout.manifest()).map_err(io_err(&layout.manifest()))?
        } else {
            let m = Manifest::new(keys.origin.clone());
            m.save(&layout.manifest())
                .map_err(io_err(&layout.manifest()))?;
            m
        };
        let hashes = manifest
            .sealed_frontier
            .iter()
            .map(|h| unhex(h).ok_or_else(|| format!("manifest.json: bad hash {h:?}")))
            .collect::<Result<Vec<_>>>()?;
        let frontier = Frontier::from_parts(manifest.sealed_size, hashes)
            .map_err(|e| format!("manifest.json: sealed_frontier: {e}"))?;
        let mut recovery = Recovery::default();
        for p in [layout.checkpoints(), layout.retention()] {
            let cut = end_torn_line(&p)?;
            if cut > 0 {
                recovery.torn_notes.push((p, cut));
            }
        }
        recovery.removed_leftovers = remove_leftovers(&layout, &keys, &manifest)?;
        let checkpoints = OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.checkpoints())
            .map_err(io_err(&layout.checkpoints()))?;
        for e in fs::read_dir(layout.wal()).map_err(io_err(&layout.wal()))? {
            let p = e.map_err(io_err(&layout.wal()))?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        let mut files = wal::list(&layout.wal()).map_err(io_err(&layout.wal()))?;
        let mut store_frontier = frontier;
        // WAL files wholly below the sealed size were sealed: their deletion was interrupted.
        let mut sealed_files = Vec::new();
        files.retain(|(first, p)| {
            if *first < manifest.sealed_size {
                sealed_files.push(p.clone());
                false
            } else {
                true
            }
        });
        for p in sealed_files {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        let mut dedup = Dedup::new(opts.dedup_hot_rows);
        dedup.open_segments(&layout.segments(), &manifest.segments)?;
        let n = files.len();
        let mut pending = VecDeque::new();
        let mut last: Option<(u64, PathBuf, u64, u64)> = None;
        for (i, (first, path)) in files.into_iter().enumerate() {
            if first != store_frontier.size() {
                return Err(format!(
                    "{}: starts at leaf {first}, but the log so far ends at {}: a WAL file is \
                     missing or misplaced (run `kaudit verify`)",
                    path.display(),
                    store_frontier.size()
                ));
            }
            dedup.start_wal(first);
            let mut rows = 0;
            let scan = wal::scan(&path, |_, payload| {
                store_frontier.push(leaf_hash(payload));
                rows += 1;
                if let Ok(r) = StoredRecord::decode(payload) {
                    note_seen(&mut dedup, r.cluster, r.event);
                }
            })
            .map_err(io_err(&path))?;
            if let Some(d) = scan.damage {
                if i + 1 < n {
                    return Err(format!(
                        "{}: record {} at byte {}: {} (not the last WAL file, so not a torn \
                         write: run `kaudit verify`)",
                        path.display(),
                        d.record,
                        d.offset,
                        d.what
                    ));
                }
                let len = fs::metadata(&path).map_err(io_err(&path))?.len();
                recovery.torn_tail = Some((path.clone(), len - scan.valid_len, d.what));
            }
            if i + 1 < n {
                // A complete file an interrupted (or background) seal left behind.
                pending.push_back(Pending {
                    first,
                    last: store_frontier.size() - 1,
                    path: Some(path),
                    frontier_after: store_frontier.hashes().to_vec(),
                    live: None,
                });
                recovery.sealed_on_open += 1;
            } else {
                last = Some((first, path, scan.valid_len, rows));
            }
        }
        // A checkpoint is signed only after the WAL is fsync'd: leaves it covers were durable.
        // If the WAL now ends before them, the damage is not a torn write, and cutting it would
        // destroy acknowledged events.
        if let Some((p, _, why)) = &recovery.torn_tail {
            let signed = latest_checkpoint_size(&layout, &keys);
            if signed > store_frontier.size() {
                return Err(format!(
                    "{}: damaged at leaf {} ({why}), but a signed checkpoint covers {signed} \
                     leaves: acknowledged events are damaged, not a torn write; nothing was cut \
                     (run `kaudit verify`)",
                    p.display(),
                    store_frontier.size()
                ));
            }
        }
        let (wal, wal_rows) = match last {
            Some((first, path, valid, rows)) => (
                wal::Writer::reopen(&path, first, valid).map_err(io_err(&path))?,
                rows,
            ),
            None => {
                dedup.start_wal(store_frontier.size());
                (
                    wal::Writer::create(&layout.wal(), store_frontier.size())
                        .map_err(io_err(&layout.wal()))?,
                    0,
                )
            }
        };
        let segments_dir = layout.segments();
        let mut store = Store {
            layout,
            keys,
            manifest,
            opts,
            wal,
            wal_rows,
            frontier: store_frontier,
            dedup,
            pending,
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
        store.last_checkpoint = (store.latest_checkpoint_size(), Instant::now());
        if store.wal_rows >= store.opts.seal_rows {
            store.rotate()?;
        }
        store.poll_seals(false)?;
        Ok(store)
    }

    fn latest_checkpoint_size(&self) -> u64 {
        latest_checkpoint_size(&self.layout, &self.keys)
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

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Stores a batch durably: one write and one fsync for the whole batch. Events already
    /// stored (same cluster, auditID, request time and stage) are skipped. On error nothing
    /// of the batch is kept.
    pub fn append(&mut self, batch: &[Incoming<'_>]) -> Result<Appended> {
        self.append_group(&[batch])
            .pop()
            .expect("one result per batch")
    }

    /// Stores several batches with one write and one fsync (group commit), in order. Each
    /// batch gets its own result: one refused (an over-long cluster name or event) keeps
    /// nothing of itself and does not affect the others; a failed write fails them all,
    /// keeping nothing. Events repeated across the batches are stored once.
    pub fn append_group(&mut self, batches: &[&[Incoming<'_>]]) -> Vec<Result<Appended>> {
        let bulk = self.bulk.is_some();
        if bulk && let Some(e) = self.broken.as_ref() {
            return batches.iter().map(|_| Err(e.clone())).collect();
        }
        let mut frames = std::mem::take(&mut self.scratch);
        frames.clear();
        let mut results = Vec::with_capacity(batches.len());
        let mut leaves = Vec::new();
        let mut undo: Vec<(u64, u8)> = Vec::new();
        // (batch, event, flags) of each record written, in leaf order.
        let mut written: Vec<(usize, usize, u8)> = Vec::new();
        for (bi, batch) in batches.iter().enumerate() {
            let marks = (frames.len(), leaves.len(), undo.len(), written.len());
            let mut out = Appended::default();
            let mut failed = None;
            for (ii, inc) in batch.iter().enumerate() {
                if let Some(e) = refusal(inc) {
                    failed = Some(e);
                    break;
                }
                let mut flags = wal::FIRST;
                match self.seen(inc) {
                    Ok(None) => {}
                    Ok(Some((key, bit, bits))) => {
                        if bits & bit != 0 {
                            out.duplicates += 1;
                            continue;
                        }
                        if bits != 0 {
                            flags = 0;
                        }
                        undo.push((key, self.dedup.current(key)));
                        self.dedup.note(key, bit);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                let rec = inc.record();
                if bulk {
                    leaves.push(record_hash(&rec));
                } else {
                    // Encoded straight into its frame: the record is not copied again.
                    let start = wal::begin_frame(&mut frames);
                    rec.encode(&mut frames);
                    leaves.push(leaf_hash(wal::frame_payload(&frames, start)));
                    wal::end_frame(flags, &mut frames, start);
                }
                written.push((bi, ii, flags));
                out.stored += 1;
            }
            match failed {
                None => results.push(Ok(out)),
                Some(e) => {
                    frames.truncate(marks.0);
                    leaves.truncate(marks.1);
                    self.dedup.undo(&undo[marks.2..]);
                    undo.truncate(marks.2);
                    written.truncate(marks.3);
                    results.push(Err(e));
                }
            }
        }
        if !leaves.is_empty()
            && !bulk
            && let Err(e) = self.wal.append_durable(&frames)
        {
            self.dedup.undo(&undo);
            self.scratch = frames;
            let e = format!("{}: {e}", self.wal.path.display());
            return results
                .into_iter()
                .map(|r| r.and_then(|_| Err(e.clone())))
                .collect();
        }
        self.scratch = frames;
        let first_leaf = self.frontier.size();
        self.wal_rows += leaves.len() as u64;
        for l in leaves {
            self.frontier.push(l);
        }
        if !self.feed_live(batches, &written, first_leaf) && bulk {
            // The leaves are counted but their segment is gone: nothing more can be stored
            // in this session (what was sealed stays; loading again adds the rest).
            let e = BULK_LOST.to_string();
            self.broken = Some(e.clone());
            return results
                .into_iter()
                .map(|r| r.and_then(|_| Err(e.clone())))
                .collect();
        }
        // What follows is housekeeping: the batches are durable whatever happens to it, so a
        // failure is kept (see `housekeeping_error`), not returned.
        let mut housekeeping = Ok(());
        // (In bulk, checkpoints follow seals instead: see `poll_seals`.)
        if !bulk && self.last_checkpoint.1.elapsed() >= self.opts.checkpoint_every {
            housekeeping = self.checkpoint();
        }
        if housekeeping.is_ok() && self.wal_rows >= self.opts.seal_rows {
            housekeeping = self.rotate();
        }
        self.housekeeping_error = housekeeping.err();
        let _ = self.poll_seals(false);
        results
    }

    /// Why the last checkpoint or WAL rotation after an append failed, if it did (the
    /// appended events are durable regardless; it is tried again on the next append).
    pub fn housekeeping_error(&self) -> Option<&str> {
        self.housekeeping_error.as_deref()
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
            time: now_micros(),
        };
        let note = self.keys.sign(&cp.body());
        let mut line = serde_json::to_string(&CheckpointLine { note }).unwrap();
        line.push('\n');
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
            .map(|h| unhex(h).ok_or_else(|| format!("manifest: bad hash {h:?}")))
            .collect::<Result<Vec<_>>>()?;
        let f = Frontier::from_parts(m.sealed_size, hashes)?;
        Ok((f.size(), f.root()))
    }

    /// Switches to loading in bulk, for input that is kept elsewhere and can be loaded again
    /// (the files `kaudit import` reads): appends then skip the write-ahead log (its write,
    /// checksum and fsync) and go straight into the segment being built. An event is durable
    /// once its segment is sealed (every `seal_rows` events, and by [`Store::seal`] and
    /// [`Store::close`]), not when its append returns: a crash loses the unsealed ones and
    /// never a sealed one, and loading the same input again adds exactly those
    /// (deduplication skips the rest). Checkpoints are signed over sealed events only, so
    /// `kaudit verify` holds at every moment. What the WAL holds is sealed first.
    pub fn begin_bulk(&mut self) -> Result<()> {
        if self.bulk.is_some() {
            return Ok(());
        }
        self.seal()?;
        if self.live.is_none() {
            self.start_live();
        }
        match &self.live {
            Some(l) if l.first == self.frontier.size() && self.wal_rows == 0 => {}
            _ => return Err("the sealing thread is not running: cannot load in bulk".into()),
        }
        self.bulk = Some(self.frontier.size());
        Ok(())
    }

    /// Seals everything appended so far: the current WAL file is closed and every complete
    /// WAL file is turned into a segment; returns when they all are.
    pub fn seal(&mut self) -> Result<()> {
        self.rotate()?;
        self.poll_seals(true)
    }

    /// Closes the current WAL file (after a checkpoint covering it) and starts a new one;
    /// the closed file is sealed in the background.
    fn rotate(&mut self) -> Result<()> {
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

    /// Starts building the segment of the current WAL file while appending, if the file is
    /// empty (one this process did not fill from its start is read back when sealed).
    fn start_live(&mut self) {
        self.live = None;
        if self.wal_rows != 0 {
            return;
        }
        let first = self.bulk.unwrap_or(self.wal.first);
        let open = Msg::Open {
            first,
            tmp: self
                .layout
                .segments()
                .join(format!("{first:020}-live.parquet.tmp")),
            origin: self.keys.origin.clone(),
            group_rows: self.opts.row_group_rows,
        };
        if self.sealer.send(open).is_ok() {
            self.live = Some(Live {
                first,
                builder: segment::Builder::with_group_rows(self.opts.row_group_rows),
            });
        }
    }

    /// Adds the records just made durable (`written`, from leaf `first_leaf` on) to the
    /// live segment, and hands its full pages to the sealing thread. Returns whether the live
    /// segment holds them (there was one, and it did not fail).
    fn feed_live(
        &mut self,
        batches: &[&[Incoming<'_>]],
        written: &[(usize, usize, u8)],
        first_leaf: u64,
    ) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        debug_assert_eq!(live.first + live.builder.total_rows(), first_leaf);
        let mut ok = true;
        for (k, &(bi, ii, flags)) in written.iter().enumerate() {
            let inc = &batches[bi][ii];
            let leaf = first_leaf + k as u64;
            let mut parsed = None;
            let Ok(row) = inc.take_row(&mut parsed) else {
                ok = false;
                break;
            };
            let first = flags & wal::FIRST != 0;
            if live_push(live, &self.sealer, leaf, &inc.record(), &row, first).is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            // Sealing reads this WAL file back instead.
            let first = live.first;
            self.live = None;
            let _ = self.sealer.send(Msg::Abort { first });
        }
        ok
    }

    /// Loads one event in bulk (after [`Store::begin_bulk`]): deduplicated, hashed and added
    /// to the segment being built at once, with none of a batch's bookkeeping. Returns whether
    /// it was stored (`false`: a duplicate). After an error nothing more can be loaded in
    /// this session (see [`Store::begin_bulk`]), except for a refused event (an over-long
    /// cluster name or event), which leaves the store as it was.
    pub fn push_bulk(&mut self, inc: &Incoming<'_>) -> Result<bool> {
        if self.bulk.is_none() {
            return Err("not loading in bulk".into());
        }
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if let Some(e) = refusal(inc) {
            return Err(e);
        }
        // Its row, before anything changes: an event without one that does not parse is
        // refused like an over-long one.
        let mut parsed = None;
        let row = inc
            .take_row(&mut parsed)
            .map_err(|e| format!("event {:?} is not an audit event: {e}", inc.audit_id))?;
        let mut first = true;
        if let Some((key, bit, bits)) = self.seen(inc)? {
            if bits & bit != 0 {
                return Ok(false);
            }
            first = bits == 0;
            self.dedup.note(key, bit);
        }
        let rec = inc.record();
        let leaf = self.frontier.size();
        self.frontier.push(record_hash(&rec));
        self.wal_rows += 1;
        let sent = match self.live.as_mut() {
            Some(live) => live_push(live, &self.sealer, leaf, &rec, &row, first),
            None => Err(()),
        };
        match sent {
            Ok(page) => {
                if self.wal_rows >= self.opts.seal_rows {
                    self.housekeeping_error = self.rotate().err();
                    let _ = self.poll_seals(false);
                } else if page {
                    let _ = self.poll_seals(false);
                }
            }
            Err(()) => {
                self.broken = Some(BULK_LOST.to_string());
                return Err(BULK_LOST.to_string());
            }
        }
        Ok(true)
    }

    /// The dedup state of an event with an audit ID: (key, its stage's bit, the stages stored).
    fn seen(&mut self, inc: &Incoming<'_>) -> Result<Option<(u64, u8, u8)>> {
        if inc.audit_id.is_empty() {
            return Ok(None);
        }
        let key = self.dedup.key(inc.cluster, inc.audit_id, inc.time);
        let bit = stage_bit(inc.stage);
        let bits = self
            .dedup
            .lookup(key, inc.time, bit, &self.segments_dir)
            .map_err(|e| format!("reading stored keys to deduplicate: {e}"))?;
        Ok(Some((key, bit, bits)))
    }

    /// Ends the live segment of the WAL file starting at `first`: its last page goes to the
    /// sealing thread; returns its row groups' term sets (`None` if there is no live segment).
    fn finish_live(&mut self, first: u64) -> Option<Vec<RowGroupTerms>> {
        let mut live = self.live.take()?;
        debug_assert_eq!(live.first, first);
        let (batch, terms) = live.builder.finish();
        if let Some(batch) = batch {
            let page = Msg::Page {
                first,
                batch,
                end_group: true,
            };
            if self.sealer.send(page).is_err() {
                return None;
            }
        }
        Some(terms)
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
                    let e = format!(
                        "{e} (loaded in bulk: the events since the last sealed segment are not \
                         stored; load them again)"
                    );
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
    pub fn seal_error(&self) -> Option<&str> {
        self.sealer.error.as_deref()
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

    /// Closes the current WAL file and seals it in the background (if it holds anything).
    pub fn start_seal(&mut self) -> Result<()> {
        self.rotate()?;
        self.poll_seals(false)
    }

    /// (hot dedup keys, cold row groups, cold row groups cached, cold row groups read).
    pub fn dedup_stats(&self) -> (usize, usize, usize, u64) {
        let (a, b, c) = self.dedup.sizes();
        (a, b, c, self.dedup.cold_loads)
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
        m.save(&self.layout.manifest())
            .map_err(io_err(&self.layout.manifest()))?;
        self.manifest = m;
        self.pending.pop_front();
        self.dedup.sealed(&self.manifest.segments);
        if let Some(p) = wal_path {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(())
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

    /// Removes whole segments, oldest first, while they are older than `max_age` (by their
    /// newest event) or the segments together exceed `max_bytes`. Records what it removed in
    /// `retention.jsonl`, signed, before removing anything.
    pub fn retain(
        &mut self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
        now: i64,
    ) -> Result<Vec<SegmentMeta>> {
        let mut total: u64 = self.manifest.segments.iter().map(|s| s.bytes).sum();
        let mut n = 0;
        let mut reasons = Vec::new();
        for s in &self.manifest.segments {
            let old =
                max_age.is_some_and(|a| s.max_time.is_some_and(|t| t < now - a.as_micros() as i64));
            let big = max_bytes.is_some_and(|m| total > m);
            if !old && !big {
                break;
            }
            reasons.push(if old {
                format!("older than {}s", max_age.unwrap().as_secs())
            } else {
                format!("over {} bytes", max_bytes.unwrap())
            });
            total -= s.bytes;
            n += 1;
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let removed: Vec<SegmentMeta> = self.manifest.segments[..n].to_vec();
        let last = removed.last().unwrap();
        let prefix = last.last_leaf + 1;
        let mut body = format!("kaudit-retention/{}\n", self.keys.origin);
        for (s, why) in removed.iter().zip(&reasons) {
            body.push_str(&format!(
                "removed {} leaves {}-{} rows {} sha256 {} ({why})\n",
                s.file, s.first_leaf, s.last_leaf, s.rows, s.sha256
            ));
        }
        body.push_str(&format!("prefix {prefix}\n"));
        body.push_str(&format!("frontier {}\n", last.frontier_after.join(" ")));
        let mut t = Vec::new();
        kaudit_model::MicroTime(now).write_to(&mut t);
        body.push_str(&format!("time {}\n", String::from_utf8_lossy(&t)));
        let note = self.keys.sign(&body);
        let mut line = serde_json::to_string(&CheckpointLine { note }).unwrap();
        line.push('\n');
        let p = self.layout.retention();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io_err(&p))?;
        f.write_all(line.as_bytes()).map_err(io_err(&p))?;
        f.sync_all().map_err(io_err(&p))?;
        // The new manifest is saved before anything in memory changes: a failed save leaves
        // the store as it was (the signed record of a removal not done is harmless: `verify`
        // checks the segments listed).
        let mut m = self.manifest.clone();
        m.segments.drain(..n);
        m.pruned_size = prefix;
        m.save(&self.layout.manifest())
            .map_err(io_err(&self.layout.manifest()))?;
        self.manifest = m;
        self.dedup.retained(prefix);
        for s in &removed {
            let p = self.layout.segments().join(&s.file);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(removed)
    }
}

fn note_seen(dedup: &mut Dedup, cluster: &str, event: &str) {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(rename = "auditID", borrow, default)]
        audit_id: std::borrow::Cow<'a, str>,
        #[serde(default)]
        stage: Option<Stage>,
        #[serde(rename = "requestReceivedTimestamp", default)]
        time: Option<kaudit_model::MicroTime>,
    }
    if let Ok(k) = serde_json::from_str::<Key<'_>>(event)
        && !k.audit_id.is_empty()
    {
        let key = dedup.key(cluster, &k.audit_id, k.time.map(|t| t.micros()));
        dedup.note(key, stage_bit(k.stage));
    }
}

/// The tree size of the latest checkpoint signed by `keys` (0 without one).
fn latest_checkpoint_size(layout: &Layout, keys: &Keys) -> u64 {
    // Lossy: one damaged byte must not hide every checkpoint.
    fs::read(layout.checkpoints())
        .ok()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .and_then(|t| {
            t.lines()
                .rev()
                .find_map(|l| serde_json::from_str::<CheckpointLine>(l).ok())
        })
        .and_then(|c| {
            keys.open(&c.note)
                .ok()
                .and_then(|b| Checkpoint::parse(b).ok())
        })
        .map_or(0, |c| c.size)
}

/// One line of `checkpoints.jsonl` or `retention.jsonl`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct CheckpointLine {
    pub note: String,
}

/// A complete WAL file waiting to be sealed.
struct Pending {
    first: u64,
    last: u64,
    /// The WAL file; `None` when loaded in bulk (the live segment is all there is).
    path: Option<PathBuf>,
    /// The tree's right edge after its last leaf.
    frontier_after: Vec<[u8; 32]>,
    /// Its segment was built while appending: the sealing thread holds its pages, and these
    /// are its row groups' term sets.
    live: Option<Vec<RowGroupTerms>>,
}

/// The segment of the WAL file being appended to, built while appending.
struct Live {
    first: u64,
    builder: segment::Builder,
}

/// What the sealing thread is asked to seal.
struct SealJob {
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
enum Msg {
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
struct Sealer {
    jobs: Option<mpsc::SyncSender<Msg>>,
    /// Each seal's segment, and whether it was built while appending.
    results: mpsc::Receiver<Result<(SegmentMeta, bool)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    busy: bool,
    /// Segments sealed so far: (built while appending, read back from the WAL).
    counts: (u64, u64),
    error: Option<String>,
    retry_at: Option<Instant>,
}

impl Sealer {
    fn start() -> Sealer {
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

    fn send(&self, msg: Msg) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|j| j.send(msg).ok())
            .ok_or_else(|| "the sealing thread has stopped".to_string())
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
            self.results
                .recv()
                .map_err(|_| "the sealing thread has stopped".to_string())
        } else {
            match self.results.try_recv() {
                Ok(r) => Ok(r),
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => {
                    Err("the sealing thread has stopped".to_string())
                }
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

/// Adds one stored event (leaf `leaf`) to a live segment and hands a full page to the sealing
/// thread; returns whether it did (a page ends every few thousand rows). Fails if the sealing
/// thread has stopped.
fn live_push(
    live: &mut Live,
    sealer: &Sealer,
    leaf: u64,
    rec: &StoredRecord<'_>,
    row: &Row<'_>,
    first: bool,
) -> std::result::Result<bool, ()> {
    live.builder.push(leaf, rec, row, first);
    let Some((batch, end_group)) = live.builder.take_page() else {
        return Ok(false);
    };
    let page = Msg::Page {
        first: live.first,
        batch,
        end_group,
    };
    sealer.send(page).map(|_| true).map_err(|_| ())
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
        return Err(format!(
            "{}: the segment built while appending holds {} rows, the WAL file {rows}",
            job.segment.display(),
            w.rows()
        ));
    }
    w.finish(&job.segment)?;
    segment_meta(job, rows, terms.to_vec())
}

/// Writes the segment of one complete WAL file by reading it back (on the sealing thread). A
/// failure leaves no segment file (the writer removes its temporary file).
fn seal_file(job: &SealJob) -> Result<SegmentMeta> {
    let (first, last, path) = (job.first, job.last, &job.segment);
    let Some(wal_path) = &job.wal else {
        return Err(format!(
            "{}: leaves {first}..={last} were loaded in bulk and their segment was not built",
            path.display()
        ));
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
                err = Some(format!("{}: leaf {leaf}: {e}", wal_path.display()));
                return;
            }
        };
        let e: Event<'_> = match serde_json::from_str(r.event) {
            Ok(e) => e,
            Err(e) => {
                err = Some(format!("{}: leaf {leaf}: {e}", wal_path.display()));
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
        return Err(format!(
            "{}: holds leaves {first}..{leaf}, expected up to {last}",
            wal_path.display()
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
