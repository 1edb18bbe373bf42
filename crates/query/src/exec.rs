//! Running filters over the sealed segments and the WAL tail.
//!
//! Per segment, row groups whose time range or term sets (from the manifest) cannot match are
//! not read. The rest go through three steps, spread over all cores:
//! 1. **match**: only the columns the filter needs are read, the low-cardinality ones as
//!    dictionaries, so each term is decided once per distinct value;
//! 2. **one per request**: for the matching rows only the small key columns are read (time,
//!    leaf, stage, first, cluster). The stages of one request share its time and cluster, so
//!    rows with a time of their own are requests of their own; only where several matching
//!    rows share a time (and the first-stage flags cannot tell them apart) are audit IDs read;
//! 3. **output**: the display columns are read for the rows kept (with a limit, the most
//!    recent ones only); pages without one of them are not decoded.
//!
//! The WAL tail is decoded into the same columns, so an event is visible as soon as it is
//! acknowledged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{
    Array, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use kaudit_model::Event;
use kaudit_store::manifest::{Manifest, SegmentMeta};
use kaudit_store::record::StoredRecord;
use kaudit_store::segment::{self, col};
use kaudit_store::{Layout, wal};

use crate::filter::{Field, Filter, Matcher, Term, Value, cmp};
use crate::rows::{PART_COLUMNS, Part, StrCol};
pub use crate::rows::{Row, RowRef, Rows};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What to fetch.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Rows matching any of these (each a conjunction of terms); none: every row.
    pub filters: Vec<Filter>,
    /// Every stage event, not one per request.
    pub stages: bool,
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Also fetch the stored event JSON.
    pub with_event: bool,
    /// Only the most recent this many requests are returned (all are counted).
    pub limit: Option<usize>,
}

impl Query {
    /// A query for one filter.
    pub fn new(filter: Filter) -> Query {
        Query {
            filters: vec![filter],
            ..Default::default()
        }
    }
}

/// Statistics of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scanned {
    pub segments: usize,
    pub row_groups_read: usize,
    pub row_groups_skipped: usize,
    /// Rows whose filter columns were evaluated.
    pub rows_read: u64,
    /// Rows that matched (before one-per-request).
    pub rows_matched: u64,
    /// Matching rows whose audit ID had to be read to tell requests apart.
    pub ids_read: u64,
    pub wal_rows: u64,
    pub threads: usize,
}

fn stage_rank(s: &str) -> u8 {
    match s {
        "RequestReceived" => 1,
        "ResponseStarted" => 2,
        "ResponseComplete" => 3,
        "Panic" => 4,
        _ => 0,
    }
}

/// Whether the filter only looks at what is the same in every stage event of a request (so
/// the request's first stored stage decides for all of it).
pub fn request_invariant(f: &Filter) -> bool {
    f.terms.iter().all(|t| {
        !matches!(
            t.field,
            Field::Code | Field::Stage | Field::Decision | Field::Reason
        )
    })
}

/// Where matching rows come from: a row group of a segment, or the decoded WAL tail.
enum Source {
    /// `first_leaf`: rows are consecutive leaves, so a row's leaf is known without reading.
    Group {
        seg: usize,
        rg: usize,
        first_leaf: u64,
    },
    Wal(RecordBatch),
}

/// The unsealed WAL files after `manifest`'s sealed size, decoded into segment columns;
/// `Ok(None)` when they do not start there or one vanished (a seal finished meanwhile).
fn read_wal_tail(
    layout: &Layout,
    manifest: &Manifest,
) -> Result<Option<Option<RecordBatch>>, String> {
    let mut b = segment::Builder::new();
    let mut expect = manifest.sealed_size;
    for (first, path) in wal::list(&layout.wal()).map_err(|e| e.to_string())? {
        if first < manifest.sealed_size {
            continue;
        }
        if first != expect {
            return Ok(None);
        }
        let mut leaf = first;
        let scanned = wal::scan(&path, |flags, payload| {
            if let Ok(r) = StoredRecord::decode(payload)
                && let Ok(e) = serde_json::from_str::<Event<'_>>(r.event)
            {
                b.push(
                    leaf,
                    &r,
                    &kaudit_store::row::Row::from_event(&e),
                    flags & wal::FIRST != 0,
                );
            }
            leaf += 1;
        });
        match scanned {
            Ok(_) => expect = leaf,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(Some((!b.is_empty()).then(|| b.finish_batch())))
}

/// The data directory opened for one query.
struct Scan {
    layout: Layout,
    manifest: Manifest,
    readers: Vec<std::sync::OnceLock<Result<segment::Reader, String>>>,
    sources: Vec<Source>,
    st: Scanned,
}

impl Scan {
    fn open(dir: &Path, q: &Query) -> Result<Scan, String> {
        let layout = Layout {
            root: dir.to_path_buf(),
        };
        if !layout.manifest().exists() {
            return Err(format!(
                "{}: not a kaudit data directory (import something first: kaudit import --data {} FILES)",
                dir.display(),
                dir.display()
            ));
        }
        // A writer may seal while we look: it lists the segment in the manifest, then deletes
        // the WAL file. Reading the manifest first and finding a WAL file missing (a gap
        // after the sealed size, or a file gone) means a seal finished: look again.
        let mut tries = 0;
        let (manifest, wal_batch) = loop {
            let manifest = Manifest::load(&layout.manifest()).map_err(|e| e.to_string())?;
            match read_wal_tail(&layout, &manifest) {
                Ok(Some(b)) => break (manifest, b),
                Ok(None) if tries < 20 => tries += 1,
                Ok(None) => {
                    return Err(format!(
                        "{}: the WAL does not continue where the manifest ends (run `kaudit verify`)",
                        layout.wal().display()
                    ));
                }
                Err(e) => return Err(e),
            }
        };
        let mut st = Scanned::default();
        let mut sources = Vec::new();
        for (seg, s) in manifest.segments.iter().enumerate() {
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
        Ok(Scan {
            readers: manifest
                .segments
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            layout,
            manifest,
            sources,
            st,
        })
    }

    /// `columns` of source `i`: all rows, or only those listed (ascending).
    fn read(
        &self,
        i: usize,
        columns: &[&str],
        rows: Option<&[u32]>,
    ) -> Result<RecordBatch, String> {
        match &self.sources[i] {
            Source::Group { seg, rg, .. } => {
                let r = self.readers[*seg]
                    .get_or_init(|| {
                        segment::Reader::open(
                            &self
                                .layout
                                .segments()
                                .join(&self.manifest.segments[*seg].file),
                        )
                    })
                    .as_ref()
                    .map_err(Clone::clone)?;
                let n = self.manifest.segments[*seg].row_groups[*rg].rows as usize;
                match rows {
                    Some(rows) if rows.len() < n => {
                        let mut sel = vec![false; n];
                        for &r in rows {
                            sel[r as usize] = true;
                        }
                        r.read(*rg, columns, Some(&sel))
                    }
                    _ => r.read(*rg, columns, None),
                }
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

    fn rows(&self, i: usize) -> usize {
        match &self.sources[i] {
            Source::Group { seg, rg, .. } => {
                self.manifest.segments[*seg].row_groups[*rg].rows as usize
            }
            Source::Wal(b) => b.num_rows(),
        }
    }

    /// The indices of the matching rows of source `i`.
    fn matching(&self, i: usize, q: &Query, first_only: bool) -> Result<Vec<u32>, String> {
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
fn parallel<T: Send>(
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

/// A matching row, with what is needed to keep one row per request and to order them.
#[derive(Clone, Copy, Debug)]
struct Hit {
    time: i64,
    cluster: u32,
    leaf: u64,
    src: u32,
    row: u32,
    rank: u8,
    first: bool,
    no_time: bool,
}

impl Hit {
    /// Order by (time, cluster, leaf), packed: rows without a time first.
    fn key(&self) -> u128 {
        ((self.time as u64 ^ 1 << 63) as u128) << 64
            | (self.cluster as u128) << 48
            | (self.leaf & ((1 << 48) - 1)) as u128
    }
}

const KEY_COLUMNS: &[&str] = &["time", "first", "stage", "cluster"];

/// The key columns of the matching `rows` of source `i`, as hits sorted by [`Hit::key`].
fn hits_of(
    scan: &Scan,
    i: usize,
    rows: &[u32],
    clusters: &Mutex<Vec<String>>,
) -> Result<Vec<Hit>, String> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (b, base) = match &scan.sources[i] {
        Source::Group { first_leaf, .. } => {
            (scan.read(i, KEY_COLUMNS, Some(rows))?, Some(*first_leaf))
        }
        Source::Wal(_) => {
            let mut cols = KEY_COLUMNS.to_vec();
            cols.push("leaf");
            (scan.read(i, &cols, Some(rows))?, None)
        }
    };
    let time = col::<TimestampMicrosecondArray>(&b, "time")?;
    let leaf = match base {
        Some(_) => None,
        None => Some(col::<UInt64Array>(&b, "leaf")?),
    };
    let first = col::<BooleanArray>(&b, "first")?;
    let stage = StrCol::of(&b, "stage")?;
    let cluster = StrCol::of(&b, "cluster")?;
    let mut ids: FastMap<&str, u32> = FastMap::default();
    let mut hits = Vec::with_capacity(rows.len());
    for (j, &row) in rows.iter().enumerate() {
        let c = cluster.get(j);
        let cid = match ids.get(c) {
            Some(&id) => id,
            None => {
                let mut all = clusters.lock().unwrap();
                let id = match all.iter().position(|x| x == c) {
                    Some(p) => p,
                    None => {
                        all.push(c.to_string());
                        all.len() - 1
                    }
                } as u32;
                ids.insert(c, id);
                id
            }
        };
        hits.push(Hit {
            time: if time.is_null(j) {
                i64::MIN
            } else {
                time.value(j)
            },
            no_time: time.is_null(j),
            cluster: cid,
            leaf: match (base, leaf) {
                (Some(f), _) => f + row as u64,
                (_, Some(l)) => l.value(j),
                _ => unreachable!("a leaf column or a base"),
            },
            src: i as u32,
            row,
            rank: stage_rank(stage.get(j)),
            first: first.value(j),
        });
    }
    hits.sort_by_key(Hit::key);
    Ok(hits)
}

/// Runs `q` over the data directory at `dir`; rows come in time order.
pub fn run(dir: &Path, q: &Query) -> Result<(Rows, Scanned), String> {
    let scan = Scan::open(dir, q)?;
    let clusters: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if let (Some(n), false) = (q.limit, q.stages)
        && q.filters.iter().all(request_invariant)
    {
        return run_recent(&scan, q, n, &clusters);
    }
    let mut st = scan.st;
    // 1 and 2: the matching rows and their keys.
    let (per_src, threads) = parallel(scan.sources.len(), &|i| {
        let rows = scan.matching(i, q, false)?;
        Ok((scan.rows(i) as u64, hits_of(&scan, i, &rows, &clusters)?))
    })?;
    st.threads = threads;
    let mut hits: Vec<Hit> = Vec::new();
    for (read, h) in per_src {
        st.rows_read += read;
        hits.extend(h);
    }
    st.rows_matched = hits.len() as u64;
    let kept = if q.stages {
        hits
    } else {
        one_per_request(&scan, q, hits, &mut st)?
    };
    output(&scan, q, kept, None, st)
}

/// The most recent `n` requests of a filter on request fields: every request is counted at
/// its first stored stage, and keys are read only for the newest row groups that can hold
/// the answer.
fn run_recent(
    scan: &Scan,
    q: &Query,
    n: usize,
    clusters: &Mutex<Vec<String>>,
) -> Result<(Rows, Scanned), String> {
    let mut st = scan.st;
    let (per_src, threads) = parallel(scan.sources.len(), &|i| {
        let rows = scan.matching(i, q, false)?;
        let firsts = if rows.is_empty() {
            0
        } else {
            let b = scan.read(i, &["first"], Some(&rows))?;
            col::<BooleanArray>(&b, "first")?.true_count()
        };
        Ok((scan.rows(i) as u64, rows, firsts))
    })?;
    st.threads = threads;
    let mut total = 0;
    let mut matched: Vec<(usize, Vec<u32>)> = Vec::new();
    for (i, (read, rows, firsts)) in per_src.into_iter().enumerate() {
        st.rows_read += read;
        st.rows_matched += rows.len() as u64;
        total += firsts;
        if !rows.is_empty() {
            matched.push((i, rows));
        }
    }
    // Newest first: by the latest time each row group holds (the WAL tail has no recorded
    // range: it goes first).
    let newest = |i: usize| match &scan.sources[i] {
        Source::Group { seg, rg, .. } => scan.manifest.segments[*seg].row_groups[*rg]
            .max_time
            .unwrap_or(i64::MIN),
        Source::Wal(_) => i64::MAX,
    };
    matched.sort_by_key(|(i, _)| std::cmp::Reverse(newest(*i)));
    let mut hits: Vec<Hit> = Vec::new();
    let mut kept: Vec<Hit> = Vec::new();
    let mut next = 0;
    let step = st.threads.max(1);
    while next < matched.len() {
        let batch = &matched[next..(next + step).min(matched.len())];
        let (more, _) = parallel(batch.len(), &|k| {
            hits_of(scan, batch[k].0, &batch[k].1, clusters)
        })?;
        next += batch.len();
        for h in more {
            hits.extend(h);
        }
        kept = one_per_request(scan, q, hits.clone(), &mut st)?;
        kept.sort_by_key(|h| (h.time, h.leaf));
        if kept.len() >= n {
            // Row groups whose times all come before the n-th most recent request cannot
            // change the answer.
            let t = kept[kept.len() - n].time;
            if matched.get(next).is_none_or(|(i, _)| newest(*i) < t) {
                break;
            }
        }
    }
    output(scan, q, kept, Some(total), st)
}

/// Orders the rows kept, applies the limit, and reads their display columns.
fn output(
    scan: &Scan,
    q: &Query,
    mut kept: Vec<Hit>,
    total: Option<usize>,
    st: Scanned,
) -> Result<(Rows, Scanned), String> {
    // Nearly sorted already: a stable sort (run-detecting merge) is close to linear here.
    kept.sort_by_key(|h| (h.time, h.leaf));
    let total = total.unwrap_or(kept.len());
    if let Some(n) = q.limit
        && kept.len() > n
    {
        kept.drain(..kept.len() - n);
    }
    // 3: the output columns of the rows kept.
    let mut by_src: Vec<Vec<u32>> = vec![Vec::new(); scan.sources.len()];
    for h in &kept {
        by_src[h.src as usize].push(h.row);
    }
    let wanted: Vec<usize> = (0..by_src.len())
        .filter(|&i| !by_src[i].is_empty())
        .collect();
    for i in &wanted {
        by_src[*i].sort_unstable();
    }
    let mut cols: Vec<&str> = PART_COLUMNS.to_vec();
    if q.with_event {
        cols.push("event");
    }
    let (parts, _) = parallel(wanted.len(), &|k| {
        let i = wanted[k];
        let b = scan.read(i, &cols, Some(&by_src[i]))?;
        Part::of(&b, q.with_event)
    })?;
    // Where each (source, row) landed: part k, position in by_src.
    let mut part_of = vec![u32::MAX; scan.sources.len()];
    for (k, &i) in wanted.iter().enumerate() {
        part_of[i] = k as u32;
    }
    let order = kept
        .iter()
        .map(|h| {
            let rows = &by_src[h.src as usize];
            let pos = rows.binary_search(&h.row).expect("kept rows were fetched");
            (part_of[h.src as usize], pos as u32)
        })
        .collect();
    Ok((
        Rows {
            parts,
            order,
            total,
        },
        st,
    ))
}

/// Keeps one row per request: its latest stage (the first stored on a tie).
fn one_per_request(
    scan: &Scan,
    q: &Query,
    mut hits: Vec<Hit>,
    st: &mut Scanned,
) -> Result<Vec<Hit>, String> {
    let invariant = q.filters.iter().all(request_invariant);
    // Each source's hits are sorted already: the stable sort merges those runs.
    hits.sort_by_key(Hit::key);
    let better = |a: &Hit, b: &Hit| a.rank > b.rank;
    let mut kept = Vec::with_capacity(hits.len());
    // Rows that need their audit ID to be told apart: (index into hits).
    let mut unsure: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < hits.len() {
        let h = hits[i];
        let mut j = i + 1;
        while j < hits.len() && !h.no_time && hits[j].time == h.time && hits[j].cluster == h.cluster
        {
            j += 1;
        }
        let run = &hits[i..j];
        let firsts = run.iter().filter(|x| x.first).count();
        if run.len() == 1 && !h.no_time {
            kept.push(h);
        } else if invariant && firsts == 1 && !h.no_time {
            // Every request in the run has its first stage in it: one request.
            let mut best = run[0];
            for x in &run[1..] {
                if better(x, &best) {
                    best = *x;
                }
            }
            kept.push(best);
        } else {
            unsure.extend(i..j);
        }
        i = j;
    }
    if unsure.is_empty() {
        return Ok(kept);
    }
    st.ids_read = unsure.len() as u64;
    // Read the audit IDs of the unsure rows, source by source.
    let mut by_src: FastMap<u32, Vec<u32>> = FastMap::default();
    for &k in &unsure {
        by_src.entry(hits[k].src).or_default().push(hits[k].row);
    }
    let srcs: Vec<(u32, Vec<u32>)> = by_src
        .into_iter()
        .map(|(s, mut r)| {
            r.sort_unstable();
            r.dedup();
            (s, r)
        })
        .collect();
    let (ids, _) = parallel(srcs.len(), &|k| {
        let (s, rows) = &srcs[k];
        let b = scan.read(*s as usize, &["audit_id"], Some(rows))?;
        let a = StrCol::of(&b, "audit_id")?;
        Ok((0..rows.len())
            .map(|j| a.get(j).to_string())
            .collect::<Vec<String>>())
    })?;
    let mut id_of: FastMap<(u32, u32), &str> = FastMap::default();
    for ((s, rows), ids) in srcs.iter().zip(&ids) {
        for (r, id) in rows.iter().zip(ids) {
            id_of.insert((*s, *r), id.as_str());
        }
    }
    let mut best: FastMap<(u32, &str), usize> = FastMap::default();
    let mut extra: Vec<Hit> = Vec::new();
    for &k in &unsure {
        let h = hits[k];
        let id = id_of[&(h.src, h.row)];
        if id.is_empty() {
            extra.push(h);
            continue;
        }
        match best.get(&(h.cluster, id)) {
            Some(&at) => {
                if better(&h, &extra[at]) {
                    extra[at] = h;
                }
            }
            None => {
                best.insert((h.cluster, id), extra.len());
                extra.push(h);
            }
        }
    }
    kept.extend(extra);
    Ok(kept)
}

/// Counts matching requests by the values of a dictionary-read column (e.g. `user`).
/// Needs [`request_invariant`] filters: each request is counted at its first stored stage.
pub fn count_by(
    dir: &Path,
    q: &Query,
    column: &'static str,
) -> Result<(Vec<(String, u64)>, Scanned), String> {
    if !q.filters.iter().all(request_invariant) {
        return Err("count_by needs filters on request fields only".into());
    }
    let scan = Scan::open(dir, q)?;
    let mut st = scan.st;
    let (parts, threads) = parallel(scan.sources.len(), &|i| {
        let rows = scan.matching(i, q, true)?;
        let mut m: FastMap<String, u64> = FastMap::default();
        if rows.is_empty() {
            return Ok((scan.rows(i) as u64, rows.len() as u64, m));
        }
        let b = scan.read(i, &[column], Some(&rows))?;
        let c = StrCol::of(&b, column)?;
        match &c {
            StrCol::Dict { keys, values } => {
                let mut per = vec![0u64; values.len() + 1];
                for j in 0..keys.len() {
                    let k = if keys.is_null(j) {
                        values.len()
                    } else {
                        keys.value(j) as usize
                    };
                    per[k] += 1;
                }
                for (k, n) in per.into_iter().enumerate() {
                    if n > 0 {
                        let v = if k == values.len() || values.is_null(k) {
                            ""
                        } else {
                            values.value(k)
                        };
                        *m.entry(v.to_string()).or_default() += n;
                    }
                }
            }
            StrCol::Plain(_) => {
                for j in 0..b.num_rows() {
                    *m.entry(c.get(j).to_string()).or_default() += 1;
                }
            }
        }
        Ok((scan.rows(i) as u64, rows.len() as u64, m))
    })?;
    st.threads = threads;
    let mut all: FastMap<String, u64> = FastMap::default();
    for (read, matched, m) in parts {
        st.rows_read += read;
        st.rows_matched += matched;
        for (k, n) in m {
            *all.entry(k).or_default() += n;
        }
    }
    let mut v: Vec<(String, u64)> = all.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((v, st))
}

/// The columns the filters read.
fn filter_columns(q: &Query, first_only: bool) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = Vec::new();
    let mut add = |c: &'static str| {
        if !cols.contains(&c) {
            cols.push(c);
        }
    };
    if q.cluster.is_some() {
        add("cluster");
    }
    if first_only {
        add("first");
    }
    for f in &q.filters {
        if f.since.is_some() || f.until.is_some() {
            add("time");
        }
        for t in &f.terms {
            add(t.field.column());
            if t.field == Field::Resource {
                add("subresource");
            }
        }
    }
    cols
}

/// Which rows of `b` match (reading only [`filter_columns`]).
fn filter_mask(b: &RecordBatch, q: &Query, first_only: bool) -> Result<Vec<bool>, String> {
    let n = b.num_rows();
    let mut m = vec![true; n];
    if let Some(c) = &q.cluster {
        keep_str(&StrCol::of(b, "cluster")?, &mut m, |s| s == c);
    }
    if first_only {
        let first = col::<BooleanArray>(b, "first")?;
        for (i, keep) in m.iter_mut().enumerate() {
            *keep &= first.value(i);
        }
    }
    match q.filters.as_slice() {
        [] => {}
        [f] => filter_terms(b, f, &mut m)?,
        fs => {
            let mut any = vec![false; n];
            for f in fs {
                let mut one = m.clone();
                filter_terms(b, f, &mut one)?;
                for (a, o) in any.iter_mut().zip(one) {
                    *a |= o;
                }
            }
            m = any;
        }
    }
    Ok(m)
}

/// Narrows `m` to the rows matching one filter.
fn filter_terms(b: &RecordBatch, f: &Filter, m: &mut [bool]) -> Result<(), String> {
    if f.since.is_some() || f.until.is_some() {
        let t = col::<TimestampMicrosecondArray>(b, "time")?;
        let (lo, hi) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        // Rows without a time never match a time range.
        for (i, keep) in m.iter_mut().enumerate() {
            *keep &= !t.is_null(i) && (lo..hi).contains(&t.value(i));
        }
    }
    for t in &f.terms {
        apply_term(b, t, m)?;
    }
    Ok(())
}

/// Row groups that may hold matches, by time range and term sets.
fn row_groups(s: &SegmentMeta, q: &Query) -> Vec<usize> {
    (0..s.row_groups.len())
        .filter(|&i| {
            let g = &s.row_groups[i];
            if let Some(c) = &q.cluster
                && let Some(set) = g.terms.get("cluster")
                && !set.contains(c)
            {
                return false;
            }
            q.filters.is_empty() || q.filters.iter().any(|f| group_may_match(g, f))
        })
        .collect()
}

fn group_may_match(g: &segment::RowGroupTerms, f: &Filter) -> bool {
    if let (Some(since), Some(max)) = (f.since, g.max_time)
        && max < since
    {
        return false;
    }
    if let (Some(until), Some(min)) = (f.until, g.min_time)
        && min >= until
    {
        return false;
    }
    for t in &f.terms {
        if t.negated {
            continue;
        }
        let col = match t.field {
            Field::Verb => "verb",
            Field::Resource => "resource",
            Field::Namespace => "namespace",
            Field::User => "user",
            Field::Cluster => "cluster",
            Field::Stage => "stage",
            _ => continue,
        };
        let Some(set) = g.terms.get(col) else {
            continue;
        };
        let Matcher::Any(vals) = &t.matcher else {
            continue;
        };
        let possible = vals.iter().any(|v| match v {
            Value::Exact(x) => {
                let x = if t.field == Field::Resource {
                    x.split('/').next().unwrap_or("")
                } else {
                    x
                };
                set.iter().any(|s| s == x)
            }
            Value::Glob(r) => set.iter().any(|s| r.is_match(s)),
            Value::Cidr(..) => true,
        });
        if !possible {
            return false;
        }
    }
    true
}

/// Keeps the rows whose value passes `pred` (decided once per distinct value of a dictionary).
fn keep_str(c: &StrCol, m: &mut [bool], pred: impl Fn(&str) -> bool) {
    match c {
        StrCol::Plain(a) => {
            for (i, keep) in m.iter_mut().enumerate() {
                if *keep {
                    *keep = pred(if a.is_null(i) { "" } else { a.value(i) });
                }
            }
        }
        StrCol::Dict { keys, values } => {
            let hit: Vec<bool> = (0..values.len())
                .map(|k| {
                    pred(if values.is_null(k) {
                        ""
                    } else {
                        values.value(k)
                    })
                })
                .collect();
            if keys.null_count() == 0 {
                for (keep, &k) in m.iter_mut().zip(keys.values().iter()) {
                    *keep &= hit[k as usize];
                }
            } else {
                let null_hit = pred("");
                for (i, keep) in m.iter_mut().enumerate() {
                    if *keep {
                        *keep = if keys.is_null(i) {
                            null_hit
                        } else {
                            hit[keys.value(i) as usize]
                        };
                    }
                }
            }
        }
    }
}

fn apply_term(b: &RecordBatch, t: &Term, m: &mut [bool]) -> Result<(), String> {
    let keep = |hit: bool| hit != t.negated;
    match t.field {
        Field::Code => {
            let a = col::<Int32Array>(b, "code")?;
            // `code=401,403` compares numbers; globs and regexes see the decimal text.
            let numbers: Option<Vec<i64>> = match &t.matcher {
                Matcher::Any(vals) => vals
                    .iter()
                    .map(|v| match v {
                        Value::Exact(x) => x.parse().ok(),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            for (i, k) in m.iter_mut().enumerate() {
                if *k {
                    let hit = !a.is_null(i) && {
                        let v = a.value(i) as i64;
                        match (&t.matcher, &numbers) {
                            (Matcher::Cmp(op, n), _) => cmp(*op, v, *n),
                            (_, Some(ns)) => ns.contains(&v),
                            (mt, None) => mt.matches_str(&v.to_string()),
                        }
                    };
                    *k = keep(hit);
                }
            }
        }
        Field::Group => {
            let a = col::<ListArray>(b, "groups")?;
            for (i, k) in m.iter_mut().enumerate() {
                if *k {
                    let g = a.value(i);
                    let g = g
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or("column groups: not a list of strings")?;
                    let hit = (0..g.len()).any(|j| {
                        t.matcher
                            .matches_str(if g.is_null(j) { "" } else { g.value(j) })
                    });
                    *k = keep(hit);
                }
            }
        }
        Field::Resource => {
            let (res, sub) = (StrCol::of(b, "resource")?, StrCol::of(b, "subresource")?);
            match (&res, &sub) {
                (
                    StrCol::Dict {
                        keys: rk,
                        values: rv,
                    },
                    StrCol::Dict {
                        keys: sk,
                        values: sv,
                    },
                ) if (rv.len() + 1) * (sv.len() + 1) <= 1 << 16 => {
                    // Decide each (resource, subresource) pair once.
                    let (nr, ns) = (rv.len() + 1, sv.len() + 1);
                    let s_at = |k: usize| {
                        if k == sv.len() || sv.is_null(k) {
                            ""
                        } else {
                            sv.value(k)
                        }
                    };
                    let mut table = vec![false; nr * ns];
                    for r in 0..nr {
                        let rs = if r == rv.len() || rv.is_null(r) {
                            ""
                        } else {
                            rv.value(r)
                        };
                        for s in 0..ns {
                            table[r * ns + s] = keep(match_resource(&t.matcher, rs, s_at(s)));
                        }
                    }
                    for (i, k) in m.iter_mut().enumerate() {
                        if *k {
                            let r = if rk.is_null(i) {
                                rv.len()
                            } else {
                                rk.value(i) as usize
                            };
                            let s = if sk.is_null(i) {
                                sv.len()
                            } else {
                                sk.value(i) as usize
                            };
                            *k = table[r * ns + s];
                        }
                    }
                }
                _ => {
                    for (i, k) in m.iter_mut().enumerate() {
                        if *k {
                            *k = keep(match_resource(&t.matcher, res.get(i), sub.get(i)));
                        }
                    }
                }
            }
        }
        f => {
            let c = StrCol::of(b, f.column())?;
            keep_str(&c, m, |s| keep(t.matcher.matches_str(s)));
        }
    }
    Ok(())
}

/// `resource=pods` matches the resource; `resource=pods/exec` the resource and subresource.
fn match_resource(m: &Matcher, res: &str, sub: &str) -> bool {
    match m {
        Matcher::Any(vals) => vals.iter().any(|v| match v {
            Value::Exact(x) => match x.split_once('/') {
                Some((r, s)) => r == res && (s == sub || s == "*"),
                None => x == res,
            },
            Value::Glob(r) => {
                r.is_match(res) || (!sub.is_empty() && r.is_match(&format!("{res}/{sub}")))
            }
            Value::Cidr(..) => false,
        }),
        m => m.matches_str(res) || (!sub.is_empty() && m.matches_str(&format!("{res}/{sub}"))),
    }
}
