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
        let layout = Layout::new(dir);
        if !layout.manifest().exists() {
            return Err(Error::NotAStore {
                dir: dir.to_path_buf(),
            });
        }
        for tries in 0..TRIES {
            let manifest = Manifest::load(&layout.manifest())?;
            if let Some(wal) = open_wal(&layout, manifest.sealed_size)? {
                return Ok(Snapshot {
                    readers: manifest.segments.iter().map(|_| OnceLock::new()).collect(),
                    layout,
                    manifest,
                    wal,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1 + u64::from(tries)));
        }
        Err(Error::damaged(
            &layout.wal(),
            "the WAL does not continue where the manifest's segments end (run `kaudit verify`)",
        ))
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
        self.scan_wal(
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
        Ok(end.pos)
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

/// Opens the WAL files from the first starting at `sealed` on; `None` when they do not start
/// there or one vanished before it was opened (a seal finished meanwhile: look again).
fn open_wal(layout: &Layout, sealed: u64) -> Result<Option<Vec<WalFile>>> {
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
        if out.is_empty() && first != sealed {
            return Ok(None);
        }
        match Shared::open(&path) {
            Ok(file) => out.push(WalFile { first, file }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(Some(out))
}
