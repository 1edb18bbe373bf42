//! Reading a data directory: [`Snapshot`], one consistent view of everything stored (the
//! sealed segments with what the manifest says of them, then the WAL files after them), the
//! one way every reader (queries, followers, `verify`, proofs) sees the store.
//!
//! A writer may seal or apply retention while a reader looks: sealing lists the new segment in
//! the manifest, then deletes its WAL file; retention saves the manifest, then deletes the
//! oldest segments. A snapshot reads the manifest first, then opens the WAL files after its
//! sealed size, and checks that the first starts exactly there: if a seal finished in between
//! (a gap, or a file gone before it was opened), it looks again. Once open, files are read by
//! position through the descriptors it holds, so a seal or retention that removes their names
//! later changes nothing it reads. Segment files are opened on first use: one that retention
//! removed before that is reported as such ([`Error::is_not_found`]), and a follower then takes
//! a new snapshot.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::OnceLock;

use arrow_array::RecordBatch;
use kaudit_model::Event;

use crate::error::{Error, Result, io_err};
use crate::layout::Layout;
use crate::manifest::{Manifest, SegmentMeta};
use crate::pread::Shared;
use crate::record::StoredRecord;
use crate::row::Row;
use crate::segment::{self, Reader};
use crate::wal::{self, Damage};

/// How many times a snapshot looks again when a seal keeps finishing under it.
const TRIES: u32 = 20;

/// A WAL file after the sealed segments, held open.
pub(crate) struct WalFile {
    /// The first leaf, from its name.
    pub first: u64,
    pub file: Shared,
}

/// A consistent view of a data directory (see the module documentation).
pub struct Snapshot {
    layout: Layout,
    manifest: Manifest,
    readers: Vec<OnceLock<Result<Reader>>>,
    wal: Vec<WalFile>,
}

/// What [`Snapshot::records`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Records passed to the callback.
    pub read: u64,
    /// The leaf after the last one read or passed over.
    pub next: u64,
    /// Leaves asked for that retention removed.
    pub pruned: u64,
    /// WAL records passed over because they do not decode (`kaudit verify` names them).
    pub undecodable: u64,
}

/// Where a reader is in the WAL: file `file` of the snapshot, the frame at byte `offset`,
/// holding leaf `leaf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WalPos {
    pub file: usize,
    pub offset: u64,
    pub leaf: u64,
}

impl Snapshot {
    /// A view of the data directory at `dir` as it is now.
    pub fn open(dir: &Path) -> Result<Snapshot> {
        Snapshot::open_with(dir, false)
    }

    /// [`Snapshot::open`], but when the WAL does not continue where the segments end, the
    /// view as found (the WAL files after the sealed size, whatever leaf they start at), for
    /// `verify` to report where the log breaks after checking everything before it.
    pub(crate) fn open_as_found(dir: &Path) -> Result<Snapshot> {
        Snapshot::open_with(dir, true)
    }

    fn open_with(dir: &Path, as_found: bool) -> Result<Snapshot> {
        let layout = Layout::new(dir);
        if !layout.manifest().exists() {
            return Err(Error::NotAStore {
                dir: dir.to_path_buf(),
            });
        }
        let mut tries = 0;
        loop {
            let manifest = Manifest::load(&layout.manifest())?;
            let last = tries + 1 == TRIES;
            let wal = match open_wal(&layout, manifest.sealed_size, last && as_found)? {
                Ok(wal) => wal,
                Err(_) if !last => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1 + u64::from(tries)));
                    continue;
                }
                Err(gap) => return Err(Error::damaged(&layout.wal(), gap)),
            };
            return Ok(Snapshot {
                readers: manifest.segments.iter().map(|_| OnceLock::new()).collect(),
                layout,
                manifest,
                wal,
            });
        }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The log's name (in every checkpoint).
    pub fn origin(&self) -> &str {
        &self.manifest.origin
    }

    /// Leaves below this were removed by retention.
    pub fn pruned(&self) -> u64 {
        self.manifest.pruned_size
    }

    /// Leaves below this are in sealed segments (or were removed by retention); the WAL holds
    /// the rest.
    pub fn sealed(&self) -> u64 {
        self.manifest.sealed_size
    }

    /// The tree's right edge at [`Snapshot::sealed`] as the manifest records it (hex).
    pub(crate) fn sealed_frontier(&self) -> &[String] {
        &self.manifest.sealed_frontier
    }

    /// The sealed segments, in leaf order, with their row groups' time ranges and term sets.
    pub fn segments(&self) -> &[SegmentMeta] {
        &self.manifest.segments
    }

    pub(crate) fn wal_files(&self) -> &[WalFile] {
        &self.wal
    }

    /// The reader of segment `seg` (opened on first use).
    pub(crate) fn reader(&self, seg: usize) -> Result<&Reader> {
        self.readers[seg]
            .get_or_init(|| {
                Reader::open(
                    &self
                        .layout
                        .segments()
                        .join(&self.manifest.segments[seg].file),
                )
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Closes the segment files opened so far (they are opened again if read again): a
    /// reader that has gone past them does not keep files retention removed on the disk.
    pub(crate) fn release_segments(&mut self) {
        for r in &mut self.readers {
            r.take();
        }
    }

    /// Reads `columns` of row group `rg` of segment `seg` (low-cardinality columns come as
    /// dictionaries); with `selection`, only the rows marked true.
    pub fn read(
        &self,
        seg: usize,
        rg: usize,
        columns: &[&str],
        selection: Option<&[bool]>,
    ) -> Result<RecordBatch> {
        self.reader(seg)?.read(rg, columns, selection)
    }

    /// How many requests each user made in row group `rg` of segment `seg` (rows that are
    /// the first stored stage of their request), when the segment recorded it; `None` for
    /// segments written before kaudit recorded it, or a group with very many users.
    pub fn requests_by_user(&self, seg: usize, rg: usize) -> Result<Option<&[(String, u64)]>> {
        Ok(self.reader(seg)?.requests_by_user(rg))
    }

    /// The WAL's records decoded into the segments' columns (plain strings, with `leaf` and
    /// `first`), so they can be queried like a row group; `None` when the WAL is empty.
    /// Records that do not decode as audit events are left out (`kaudit verify` names them).
    pub fn tail(&self) -> Result<Option<RecordBatch>> {
        let mut b = segment::Builder::new();
        let end = self.scan_wal(
            WalPos {
                file: 0,
                offset: wal::HEADER,
                leaf: self.manifest.sealed_size,
            },
            u64::MAX,
            |leaf, flags, payload| {
                if let Ok(r) = StoredRecord::decode(payload)
                    && let Ok(e) = serde_json::from_str::<Event<'_>>(r.event)
                {
                    b.push(leaf, &r, &Row::from_event(&e), flags & wal::FIRST != 0);
                }
                ControlFlow::Continue(())
            },
        )?;
        self.hole(&end)?;
        Ok((!b.is_empty()).then(|| b.finish_batch()))
    }

    /// Calls `f(leaf, record)` for the stored records of leaves `from..to` in leaf order,
    /// reading only the row groups that hold them, then the WAL, until `f` breaks. Leaves
    /// retention removed are counted in [`Records::pruned`]; leaves past what is stored are
    /// not there yet.
    pub fn records(
        &self,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, StoredRecord<'_>) -> ControlFlow<()>,
    ) -> Result<Records> {
        self.records_at(from, to, None, &mut f).map(|(r, _)| r)
    }

    /// [`Snapshot::records`], going on in the WAL from `at` (where an earlier call stopped,
    /// at leaf `from`) instead of reading it from its start; also returns where in the WAL it
    /// stopped, if it got there.
    pub(crate) fn records_at(
        &self,
        from: u64,
        to: u64,
        at: Option<WalPos>,
        f: &mut impl FnMut(u64, StoredRecord<'_>) -> ControlFlow<()>,
    ) -> Result<(Records, Option<WalPos>)> {
        let mut r = Records {
            next: from.max(self.pruned()),
            pruned: self
                .pruned()
                .saturating_sub(from)
                .min(to.saturating_sub(from)),
            ..Default::default()
        };
        if r.next >= to {
            return Ok((r, None));
        }
        if r.next < self.sealed() {
            if self.segment_records(&mut r, to, f)?.is_break() {
                return Ok((r, None));
            }
            if r.next < to.min(self.sealed()) {
                return Err(Error::damaged(
                    &self.layout.manifest(),
                    format!("no segment holds leaf {} (run `kaudit verify`)", r.next),
                ));
            }
        }
        if r.next >= to {
            return Ok((r, None));
        }
        let at = at.filter(|p| p.leaf == r.next);
        let pos = self.wal_records(at, &mut r, to, f)?;
        Ok((r, Some(pos)))
    }

    /// The segments' part of [`Snapshot::records`].
    fn segment_records(
        &self,
        r: &mut Records,
        to: u64,
        f: &mut impl FnMut(u64, StoredRecord<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        for (i, s) in self.manifest.segments.iter().enumerate() {
            if s.last_leaf < r.next {
                continue;
            }
            if s.first_leaf >= to.min(self.sealed()) {
                break;
            }
            if s.first_leaf > r.next {
                // Not listed (and not below the retention boundary): the manifest is wrong.
                return Err(Error::damaged(
                    &self.layout.manifest(),
                    format!("no segment holds leaf {} (run `kaudit verify`)", r.next),
                ));
            }
            let mut groups = Vec::new();
            let mut at = s.first_leaf;
            for (g, rg) in s.row_groups.iter().enumerate() {
                let end = at + rg.rows;
                if end > r.next && at < to {
                    groups.push(g);
                }
                at = end;
            }
            let mut flow = ControlFlow::Continue(());
            let before = r.next;
            self.reader(i)?.records(Some(groups), |leaf, rec| {
                if leaf < r.next {
                    return Ok(true);
                }
                if leaf >= to {
                    return Ok(false);
                }
                if leaf != r.next {
                    return Err(Error::damaged(
                        &self.layout.segments().join(&s.file),
                        format!(
                            "holds leaf {leaf} where leaf {} belongs (run `kaudit verify`)",
                            r.next
                        ),
                    ));
                }
                r.read += 1;
                r.next = leaf + 1;
                flow = f(leaf, rec);
                Ok(flow.is_continue())
            })?;
            if flow.is_break() {
                return Ok(flow);
            }
            if r.next == before || (r.next <= s.last_leaf && r.next < to) {
                return Err(Error::damaged(
                    &self.layout.segments().join(&s.file),
                    format!(
                        "leaf {} is not where the manifest says (run `kaudit verify`)",
                        r.next
                    ),
                ));
            }
            if r.next >= to {
                break;
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The WAL's part of [`Snapshot::records`], from `at` (or the first WAL file) on.
    /// Returns where reading stopped.
    pub(crate) fn wal_records(
        &self,
        at: Option<WalPos>,
        r: &mut Records,
        to: u64,
        f: &mut impl FnMut(u64, StoredRecord<'_>) -> ControlFlow<()>,
    ) -> Result<WalPos> {
        let at = at.unwrap_or(WalPos {
            file: 0,
            offset: wal::HEADER,
            leaf: self.manifest.sealed_size,
        });
        let want = r.next;
        let end = self.scan_wal(at, to, |leaf, _, payload| {
            if leaf < want {
                return ControlFlow::Continue(());
            }
            r.next = leaf + 1;
            match StoredRecord::decode(payload) {
                Ok(rec) => {
                    r.read += 1;
                    f(leaf, rec)
                }
                // Passed over and counted; `kaudit verify` names it.
                Err(_) => {
                    r.undecodable += 1;
                    ControlFlow::Continue(())
                }
            }
        })?;
        self.hole(&end)?;
        Ok(end.pos)
    }

    /// An error when a scan stopped at a damaged frame with more WAL files after it: the log
    /// has a hole there, and nothing after it can be read in order. (A damaged frame in the
    /// last file is a write under way, or one a crash cut, and is simply the end.)
    fn hole(&self, end: &WalEnd) -> Result<()> {
        match &end.damage {
            Some(d) if !end.last => {
                let w = &self.wal[end.pos.file];
                Err(Error::damaged(
                    w.file.path(),
                    format!(
                        "record {} (leaf {}) at byte {} is damaged ({}), and later WAL files \
                         follow: the WAL was altered or truncated (run `kaudit verify`)",
                        end.pos.leaf - w.first,
                        end.pos.leaf,
                        d.offset,
                        d.what
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Scans the WAL files from `at` in leaf order, calling `f(leaf, flags, payload)` for each
    /// valid frame of leaves below `to` until it breaks, and checking that each file starts
    /// where the one before ends. Stops at the first damaged frame (in the last file, a write
    /// still under way or cut by a crash). Returns where it stopped.
    pub(crate) fn scan_wal(
        &self,
        at: WalPos,
        to: u64,
        mut f: impl FnMut(u64, u8, &[u8]) -> ControlFlow<()>,
    ) -> Result<WalEnd> {
        let mut pos = at;
        while pos.file < self.wal.len() && pos.leaf < to {
            let w = &self.wal[pos.file];
            if pos.offset == wal::HEADER && w.first != pos.leaf {
                return Err(Error::damaged(
                    w.file.path(),
                    format!(
                        "starts at leaf {}, but the log before it ends at leaf {} (run `kaudit \
                         verify`)",
                        w.first, pos.leaf
                    ),
                ));
            }
            let mut leaf = pos.leaf;
            let mut stopped = false;
            // Each frame is passed on before the next is read: where the scan stops is right
            // after the last one passed on.
            let scan = wal::scan_file(&w.file, pos.offset, |flags, payload| {
                stopped = f(leaf, flags, payload).is_break();
                leaf += 1;
                !stopped && leaf < to
            })
            .map_err(io_err(w.file.path()))?;
            if scan.first != w.first {
                return Err(Error::damaged(
                    w.file.path(),
                    format!(
                        "its header says it starts at leaf {} (run `kaudit verify`)",
                        scan.first
                    ),
                ));
            }
            pos.leaf = leaf;
            pos.offset = scan.valid_len;
            let last = pos.file + 1 == self.wal.len();
            if stopped || leaf >= to || scan.damage.is_some() || last {
                return Ok(WalEnd {
                    pos,
                    damage: scan.damage,
                    last,
                });
            }
            pos = WalPos {
                file: pos.file + 1,
                offset: wal::HEADER,
                leaf,
            };
        }
        Ok(WalEnd {
            pos,
            damage: None,
            last: pos.file + 1 >= self.wal.len(),
        })
    }
}

/// Where [`Snapshot::scan_wal`] stopped.
pub(crate) struct WalEnd {
    pub pos: WalPos,
    /// The damaged frame it stopped at, if it did.
    pub damage: Option<Damage>,
    /// Whether `pos` is in the last WAL file.
    pub last: bool,
}

/// Opens the WAL files from the first starting at `sealed` on. The inner `Err` says why they
/// do not start there, or that one vanished before it was opened (a seal finished meanwhile:
/// look again); with `as_found`, the files are taken as they are instead.
fn open_wal(
    layout: &Layout,
    sealed: u64,
    as_found: bool,
) -> Result<std::result::Result<Vec<WalFile>, String>> {
    let dir = layout.wal();
    let files = match wal::list(&dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut out = Vec::new();
    for (first, path) in files {
        // Below the sealed size: sealed already, its removal interrupted.
        if first < sealed {
            continue;
        }
        if out.is_empty() && first != sealed && !as_found {
            return Ok(Err(format!(
                "the segments end at leaf {sealed}, but the first WAL file after them, {}, \
                 starts at leaf {first}: the WAL does not continue where the manifest's \
                 segments end (run `kaudit verify`)",
                path.display()
            )));
        }
        match Shared::open(&path) {
            Ok(file) => out.push(WalFile { first, file }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && as_found => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(format!(
                    "{} vanished while it was being opened (run `kaudit verify`)",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(Ok(out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{append, sealed_by_50};
    use crate::{Options, Store};

    /// A closed store of `n` events, all in the WAL, split into WAL files at `splits`
    /// (as a store that rotated without sealing leaves them); returns the files and, for
    /// each, the byte offsets of its frames.
    pub(crate) fn wal_in_files(
        dir: &Path,
        n: u64,
        splits: &[u64],
    ) -> Vec<(std::path::PathBuf, Vec<u64>)> {
        let mut s = Store::open(dir, Options::default()).unwrap();
        append(&mut s, 0, n);
        s.close().unwrap();
        let wal_dir = dir.join("wal");
        let [(0, only)] = &wal::list(&wal_dir).unwrap()[..] else {
            panic!("one WAL file")
        };
        let mut frames = Vec::new();
        wal::scan(only, |flags, payload| {
            frames.push((flags, payload.to_vec()))
        })
        .unwrap();
        assert_eq!(frames.len() as u64, n);
        std::fs::remove_file(only).unwrap();
        let mut bounds = vec![0];
        bounds.extend_from_slice(splits);
        bounds.push(n);
        let mut out = Vec::new();
        for w in bounds.windows(2) {
            let mut file = wal::Writer::create(&wal_dir, w[0]).unwrap();
            let (mut buf, mut offsets) = (Vec::new(), Vec::new());
            for (flags, payload) in &frames[w[0] as usize..w[1] as usize] {
                offsets.push(wal::HEADER + buf.len() as u64);
                let start = wal::begin_frame(&mut buf);
                buf.extend_from_slice(payload);
                wal::end_frame(*flags, &mut buf, start);
            }
            file.append_durable(&buf).unwrap();
            out.push((file.path.clone(), offsets));
        }
        out
    }

    fn flip(path: &Path, at: u64) {
        let mut b = std::fs::read(path).unwrap();
        b[at as usize] ^= 0x40;
        std::fs::write(path, b).unwrap();
    }

    fn leaves(snap: &Snapshot) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        snap.records(0, u64::MAX, |leaf, _| {
            out.push(leaf);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_every_wal_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let files = wal_in_files(dir.path(), 100, &[40, 70]);
        assert_eq!(files.len(), 3);
        let snap = Snapshot::open(dir.path()).unwrap();
        assert_eq!(leaves(&snap).unwrap(), (0..100).collect::<Vec<_>>());
        assert_eq!(snap.tail().unwrap().unwrap().num_rows(), 100);
    }

    #[test]
    fn a_damaged_record_with_wal_files_after_it_is_an_error_not_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let files = wal_in_files(dir.path(), 100, &[40, 70]);
        // Record 10 of the second file (leaf 50).
        let (path, offsets) = &files[1];
        flip(path, offsets[10] + 20);
        let snap = Snapshot::open(dir.path()).unwrap();
        for e in [leaves(&snap).unwrap_err(), snap.tail().unwrap_err()] {
            let msg = e.to_string();
            assert!(matches!(e, Error::Damaged { .. }), "{msg}");
            assert!(
                msg.contains(&path.display().to_string()) && msg.contains("leaf 50"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_damaged_record_in_the_last_wal_file_is_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let files = wal_in_files(dir.path(), 100, &[40, 70]);
        // Record 5 of the last file (leaf 75): a write under way, or cut by a crash.
        let (path, offsets) = &files[2];
        flip(path, offsets[5] + 20);
        let snap = Snapshot::open(dir.path()).unwrap();
        assert_eq!(leaves(&snap).unwrap(), (0..75).collect::<Vec<_>>());
        assert_eq!(snap.tail().unwrap().unwrap().num_rows(), 75);
    }

    #[test]
    fn a_seal_after_the_snapshot_changes_nothing_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sealed_by_50(dir.path(), 3);
        append(&mut s, 150, 40);
        let snap = Snapshot::open(dir.path()).unwrap();
        assert_eq!(snap.sealed(), 150);
        let wal_file = snap.wal_files()[0].file.path().to_path_buf();
        // The WAL file the snapshot holds fills (a batch goes whole into one file), is sealed
        // into a segment and removed.
        append(&mut s, 190, 30);
        s.poll_seals(true).unwrap();
        assert!(!wal_file.exists(), "sealed and removed");
        assert_eq!(Snapshot::open(dir.path()).unwrap().sealed(), 220);
        let got = leaves(&snap).unwrap();
        assert_eq!(got, (0..220).collect::<Vec<_>>(), "the old view, whole");
        assert_eq!(snap.tail().unwrap().unwrap().num_rows(), 70);
        s.close().unwrap();
    }

    #[test]
    fn retention_after_the_snapshot_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sealed_by_50(dir.path(), 4);
        let snap = Snapshot::open(dir.path()).unwrap();
        // A segment opened before retention removes it is still read whole.
        snap.reader(1).unwrap();
        let one = s.segments().last().unwrap().bytes;
        let removed = s.retain(None, Some(2 * one + 1), i64::MAX).unwrap();
        assert!(removed.len() >= 2, "{removed:?}");
        let mut seg1 = Vec::new();
        let s1 = &snap.segments()[1];
        snap.records(s1.first_leaf, s1.last_leaf + 1, |leaf, _| {
            seg1.push(leaf);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seg1, (s1.first_leaf..=s1.last_leaf).collect::<Vec<_>>());
        // One it had not opened is gone: a not-found error, and a new snapshot starts after
        // what retention removed.
        let e = leaves(&snap).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let fresh = Snapshot::open(dir.path()).unwrap();
        assert!(fresh.pruned() > 0);
        let got = leaves(&fresh).unwrap();
        assert_eq!(got, (fresh.pruned()..s.size()).collect::<Vec<_>>());
        s.close().unwrap();
    }
}
