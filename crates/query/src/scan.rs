//! The store opened for one query ([`Scan`]): the row groups that can match (by their time
//! ranges and term sets) and the WAL tail, as numbered sources read column by column; and
//! the executor that spreads work over all cores ([`parallel`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{RecordBatch, UInt32Array};
use kaudit_store::Snapshot;

use crate::matching::{filter_columns, filter_mask};
use crate::plan::{group_wholly_matches, row_groups};
use crate::spec::{Query, Scanned};

/// Where matching rows come from: a row group of a segment, or the decoded WAL tail.
pub(crate) enum Source {
    /// `first_leaf`: rows are consecutive leaves, so a row's leaf is known without reading.
    Group {
        seg: usize,
        rg: usize,
        first_leaf: u64,
    },
    Wal(RecordBatch),
}

/// The data directory opened for one query.
pub(crate) struct Scan {
    pub snap: Snapshot,
    pub sources: Vec<Source>,
    pub st: Scanned,
}

impl Scan {
    pub fn open(dir: &std::path::Path, q: &Query) -> Result<Scan, String> {
        let snap = Snapshot::open(dir).map_err(|e| e.to_string())?;
        let wal_batch = snap.tail().map_err(|e| e.to_string())?;
        let mut st = Scanned::default();
        let mut sources = Vec::new();
        for (seg, s) in snap.segments().iter().enumerate() {
            let groups = row_groups(s, q);
            st.row_groups_skipped += s.row_groups.len() - groups.len();
            if !groups.is_empty() {
                st.segments += 1;
            }
            st.row_groups_read += groups.len();
            let mut starts = Vec::with_capacity(s.row_groups.len());
            let mut at = s.first_leaf;
            for g in &s.row_groups {
                starts.push(at);
                at += g.rows;
            }
            sources.extend(groups.into_iter().map(|rg| Source::Group {
                seg,
                rg,
                first_leaf: starts[rg],
            }));
        }
        if let Some(b) = wal_batch {
            st.wal_rows = b.num_rows() as u64;
            sources.push(Source::Wal(b));
        }
        Ok(Scan { snap, sources, st })
    }

    /// `columns` of source `i`: all rows, or only those listed (ascending).
    pub fn read(
        &self,
        i: usize,
        columns: &[&str],
        rows: Option<&[u32]>,
    ) -> Result<RecordBatch, String> {
        match &self.sources[i] {
            Source::Group { seg, rg, .. } => {
                let n = self.snap.segments()[*seg].row_groups[*rg].rows as usize;
                let read = match rows {
                    Some(rows) if rows.len() < n => {
                        let mut sel = vec![false; n];
                        for &r in rows {
                            sel[r as usize] = true;
                        }
                        self.snap.read(*seg, *rg, columns, Some(&sel))
                    }
                    _ => self.snap.read(*seg, *rg, columns, None),
                };
                read.map_err(|e| e.to_string())
            }
            Source::Wal(b) => {
                let idx: Vec<usize> = columns
                    .iter()
                    .filter_map(|c| b.schema().index_of(c).ok())
                    .collect();
                let b = b.project(&idx).map_err(|e| e.to_string())?;
                match rows {
                    Some(rows) => {
                        let take = UInt32Array::from(rows.to_vec());
                        let cols = b
                            .columns()
                            .iter()
                            .map(|c| arrow_select::take::take(c.as_ref(), &take, None))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| e.to_string())?;
                        RecordBatch::try_new(b.schema(), cols).map_err(|e| e.to_string())
                    }
                    None => Ok(b),
                }
            }
        }
    }

    /// The rows of source `i`.
    pub fn rows(&self, i: usize) -> usize {
        match &self.sources[i] {
            Source::Group { seg, rg, .. } => {
                self.snap.segments()[*seg].row_groups[*rg].rows as usize
            }
            Source::Wal(b) => b.num_rows(),
        }
    }

    /// The latest request time source `i` can hold (the WAL tail has no recorded range: it is
    /// the newest).
    pub fn newest(&self, i: usize) -> i64 {
        match &self.sources[i] {
            Source::Group { seg, rg, .. } => self.snap.segments()[*seg].row_groups[*rg]
                .max_time
                .unwrap_or(i64::MIN),
            Source::Wal(_) => i64::MAX,
        }
    }

    /// The counts of `column` in source `i` for the rows `q` matches, when they were counted
    /// as it was sealed and `q` takes the whole row group (see
    /// [`crate::plan::group_wholly_matches`]).
    pub fn counted(
        &self,
        i: usize,
        q: &Query,
        column: &str,
    ) -> Result<Option<&[(String, u64)]>, String> {
        let Source::Group { seg, rg, .. } = self.sources[i] else {
            return Ok(None);
        };
        if column != "user" || !group_wholly_matches(&self.snap.segments()[seg].row_groups[rg], q) {
            return Ok(None);
        }
        self.snap
            .requests_by_user(seg, rg)
            .map_err(|e| e.to_string())
    }

    /// The indices of the matching rows of source `i`.
    pub fn matching(&self, i: usize, q: &Query, first_only: bool) -> Result<Vec<u32>, String> {
        let cols = filter_columns(q, first_only);
        if cols.is_empty() {
            return Ok((0..self.rows(i) as u32).collect());
        }
        let b = self.read(i, &cols, None)?;
        let m = filter_mask(&b, q, first_only)?;
        Ok(m.iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i as u32)
            .collect())
    }
}

/// Runs `f` over `0..n` on all cores; results in index order.
pub(crate) fn parallel<T: Send>(
    n: usize,
    f: &(dyn Fn(usize) -> Result<T, String> + Sync),
) -> Result<(Vec<T>, usize), String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(n)
        .max(1);
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(n));
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n || failed.lock().unwrap().is_some() {
                return;
            }
            match f(i) {
                Ok(v) => out.lock().unwrap().push((i, v)),
                Err(e) => {
                    failed.lock().unwrap().get_or_insert(e);
                    return;
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    let mut v = out.into_inner().unwrap();
    v.sort_unstable_by_key(|x| x.0);
    Ok((v.into_iter().map(|x| x.1).collect(), threads))
}
