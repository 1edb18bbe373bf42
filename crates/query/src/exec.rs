//! Running a filter over the sealed segments and the WAL tail.
//!
//! Per segment, row groups whose time range or term sets (from the manifest) cannot match are
//! not read. The rest are read in two steps: first only the columns the filter needs, with the
//! low-cardinality ones as dictionaries so each term is decided once per distinct value; then
//! the output columns of the matching rows only (pages without a match are not decoded). Row
//! groups are spread over all cores. The WAL tail is decoded into the same columns, so an
//! event is visible as soon as it is acknowledged. A request counts once, as its latest
//! stored stage, unless all stages are asked for.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use arrow_array::{
    Array, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
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
    pub filter: Filter,
    /// Every stage event, not one per request.
    pub stages: bool,
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Also fetch the stored event JSON.
    pub with_event: bool,
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
    pub wal_rows: u64,
    pub threads: usize,
}

impl Scanned {
    pub fn add(&mut self, o: &Scanned) {
        self.segments += o.segments;
        self.row_groups_read += o.row_groups_read;
        self.row_groups_skipped += o.row_groups_skipped;
        self.rows_read += o.rows_read;
        self.rows_matched += o.rows_matched;
        self.wal_rows = o.wal_rows;
        self.threads = self.threads.max(o.threads);
    }
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

/// Runs `q` over the data directory at `dir`; rows come in time order.
pub fn run(dir: &Path, q: &Query) -> Result<(Rows, Scanned), String> {
    let mut cols: Vec<&str> = PART_COLUMNS.to_vec();
    if q.with_event {
        cols.push("event");
    }
    let (parts, st) = scan(dir, q, false, &cols, &|b| Part::of(b, q.with_event))?;
    let parts: Vec<Part> = parts.into_iter().filter(|p| p.len > 0).collect();
    let mut order: Vec<(u32, u32)> = Vec::new();
    if q.stages {
        for (p, part) in parts.iter().enumerate() {
            order.extend((0..part.len as u32).map(|r| (p as u32, r)));
        }
    } else {
        order = latest_stage(
            &parts,
            parts
                .iter()
                .enumerate()
                .flat_map(|(p, part)| (0..part.len as u32).map(move |r| (p as u32, r))),
        );
    }
    sort(&parts, &mut order);
    Ok((Rows { parts, order }, st))
}

/// Counts matching requests by the values of a dictionary-read column (e.g. `user`).
/// Needs a [`request_invariant`] filter: each request is counted at its first stored stage.
pub fn count_by(
    dir: &Path,
    q: &Query,
    column: &'static str,
) -> Result<(Vec<(String, u64)>, Scanned), String> {
    if !request_invariant(&q.filter) {
        return Err("count_by needs a filter on request fields only".into());
    }
    let (parts, st) = scan(dir, q, true, &[column], &|b| {
        let c = StrCol::of(b, column)?;
        let mut m: FastMap<String, u64> = FastMap::default();
        match &c {
            StrCol::Dict { keys, values } => {
                let mut per = vec![0u64; values.len() + 1];
                for i in 0..keys.len() {
                    let k = if keys.is_null(i) {
                        values.len()
                    } else {
                        keys.value(i) as usize
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
                for i in 0..b.num_rows() {
                    *m.entry(c.get(i).to_string()).or_default() += 1;
                }
            }
        }
        Ok(m)
    })?;
    let mut all: FastMap<String, u64> = FastMap::default();
    for m in parts {
        for (k, n) in m {
            *all.entry(k).or_default() += n;
        }
    }
    let mut v: Vec<(String, u64)> = all.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok((v, st))
}

/// One row per request among `rows`: its latest stage.
pub(crate) fn latest_stage(
    parts: &[Part],
    rows: impl Iterator<Item = (u32, u32)>,
) -> Vec<(u32, u32)> {
    let mut at: FastMap<(&str, &str), usize> = FastMap::default();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (p, r) in rows {
        let part = &parts[p as usize];
        let id = part.audit_id.get(r as usize);
        if id.is_empty() {
            out.push((p, r));
            continue;
        }
        let key = (part.cluster.get(r as usize), id);
        match at.get(&key) {
            Some(&i) => {
                let (bp, br) = out[i];
                let best = parts[bp as usize].stage.get(br as usize);
                if stage_rank(part.stage.get(r as usize)) > stage_rank(best) {
                    out[i] = (p, r);
                }
            }
            None => {
                at.insert(key, out.len());
                out.push((p, r));
            }
        }
    }
    out
}

/// Orders rows by time, then leaf.
pub(crate) fn sort(parts: &[Part], order: &mut Vec<(u32, u32)>) {
    let mut keyed: Vec<(i64, u64, u32, u32)> = order
        .iter()
        .map(|&(p, r)| {
            let part = &parts[p as usize];
            let t = part.time(r as usize).unwrap_or(i64::MIN);
            (t, part.leaf(r as usize), p, r)
        })
        .collect();
    keyed.sort_unstable();
    order.clear();
    order.extend(keyed.into_iter().map(|(_, _, p, r)| (p, r)));
}

/// A row group to read: (segment index, row group index).
type Unit = (usize, usize);

/// Runs the filter over every candidate row group (in parallel) and the WAL tail, calling
/// `out` with the `columns` of each unit's matching rows; results come in store order.
/// `first_only` keeps only each request's first stored stage.
fn scan<T: Send>(
    dir: &Path,
    q: &Query,
    first_only: bool,
    columns: &[&str],
    out: &(dyn Fn(&RecordBatch) -> Result<T, String> + Sync),
) -> Result<(Vec<T>, Scanned), String> {
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
    let manifest = Manifest::load(&layout.manifest()).map_err(|e| e.to_string())?;
    let mut st = Scanned::default();
    let mut units: Vec<Unit> = Vec::new();
    for (si, s) in manifest.segments.iter().enumerate() {
        let groups = row_groups(s, q);
        st.row_groups_skipped += s.row_groups.len() - groups.len();
        if !groups.is_empty() {
            st.segments += 1;
        }
        units.extend(groups.into_iter().map(|g| (si, g)));
    }
    st.row_groups_read = units.len();
    let filter_cols = filter_columns(q, first_only);
    let readers: Vec<OnceLock<Result<segment::Reader, String>>> =
        manifest.segments.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, u64, u64, Option<T>)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(units.len())
        .max(1);
    st.threads = threads;
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= units.len() || failed.lock().unwrap().is_some() {
                return;
            }
            let (si, rg) = units[i];
            let r = readers[si].get_or_init(|| {
                segment::Reader::open(&layout.segments().join(&manifest.segments[si].file))
            });
            let res = r.as_ref().map_err(Clone::clone).and_then(|r| {
                let mask = if filter_cols.is_empty() {
                    None
                } else {
                    let b = r.read(rg, &filter_cols, None)?;
                    Some((b.num_rows() as u64, filter_mask(&b, q, first_only)?))
                };
                let (read, sel) = match &mask {
                    Some((n, m)) => (*n, Some(m.as_slice())),
                    None => (manifest.segments[si].row_groups[rg].rows, None),
                };
                let matched = sel.map_or(read, |m| m.iter().filter(|&&x| x).count() as u64);
                if matched == 0 {
                    return Ok((read, 0, None));
                }
                let sel = sel.filter(|_| matched < read);
                let b = r.read(rg, columns, sel)?;
                Ok((read, matched, Some(out(&b)?)))
            });
            match res {
                Ok((read, matched, v)) => results.lock().unwrap().push((i, read, matched, v)),
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
    let mut results = results.into_inner().unwrap();
    results.sort_unstable_by_key(|r| r.0);
    let mut outs = Vec::with_capacity(results.len() + 1);
    for (_, read, matched, v) in results {
        st.rows_read += read;
        st.rows_matched += matched;
        outs.extend(v);
    }
    // The WAL tail: decoded into the same columns.
    let mut b = segment::Builder::new();
    for (first, path) in wal::list(&layout.wal()).map_err(|e| e.to_string())? {
        if first < manifest.sealed_size {
            continue;
        }
        let mut leaf = first;
        wal::scan(&path, |flags, payload| {
            if let Ok(r) = StoredRecord::decode(payload)
                && let Ok(e) = serde_json::from_str::<Event<'_>>(r.event)
            {
                b.push(leaf, &r, &e, flags & wal::FIRST != 0);
            }
            leaf += 1;
        })
        .map_err(|e| e.to_string())?;
    }
    if !b.is_empty() {
        st.wal_rows = b.len() as u64;
        st.rows_read += st.wal_rows;
        let batch = b.finish_batch();
        let m = filter_mask(&batch, q, first_only)?;
        let matched = m.iter().filter(|&&x| x).count();
        if matched > 0 {
            st.rows_matched += matched as u64;
            let batch = arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(m))
                .map_err(|e| e.to_string())?;
            outs.push(out(&batch)?);
        }
    }
    Ok((outs, st))
}

/// The columns the filter reads.
fn filter_columns(q: &Query, first_only: bool) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = Vec::new();
    let mut add = |c: &'static str| {
        if !cols.contains(&c) {
            cols.push(c);
        }
    };
    if q.filter.since.is_some() || q.filter.until.is_some() {
        add("time");
    }
    if q.cluster.is_some() {
        add("cluster");
    }
    if first_only {
        add("first");
    }
    for t in &q.filter.terms {
        add(t.field.column());
        if t.field == Field::Resource {
            add("subresource");
        }
    }
    cols
}

/// Which rows of `b` match (reading only [`filter_columns`]).
fn filter_mask(b: &RecordBatch, q: &Query, first_only: bool) -> Result<Vec<bool>, String> {
    let n = b.num_rows();
    let mut m = vec![true; n];
    let f = &q.filter;
    if f.since.is_some() || f.until.is_some() {
        let t = col::<TimestampMicrosecondArray>(b, "time")?;
        let (lo, hi) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        for (i, keep) in m.iter_mut().enumerate() {
            *keep = !t.is_null(i) && (lo..hi).contains(&t.value(i));
        }
        // An unbounded side still needs a time: rows without one never match a range.
    }
    if let Some(c) = &q.cluster {
        keep_str(&StrCol::of(b, "cluster")?, &mut m, |s| s == c);
    }
    if first_only {
        let first = col::<BooleanArray>(b, "first")?;
        for (i, keep) in m.iter_mut().enumerate() {
            *keep &= first.value(i);
        }
    }
    for t in &f.terms {
        apply_term(b, t, &mut m)?;
    }
    Ok(m)
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
            for (i, k) in m.iter_mut().enumerate() {
                if *k {
                    let hit = !a.is_null(i) && {
                        let v = a.value(i) as i64;
                        match &t.matcher {
                            Matcher::Cmp(op, n) => cmp(*op, v, *n),
                            mt => mt.matches_str(&v.to_string()),
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

/// Row groups that may hold matches, by time range and term sets.
fn row_groups(s: &SegmentMeta, q: &Query) -> Vec<usize> {
    let f = &q.filter;
    (0..s.row_groups.len())
        .filter(|&i| {
            let g = &s.row_groups[i];
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
            if let Some(c) = &q.cluster
                && let Some(set) = g.terms.get("cluster")
                && !set.contains(c)
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
        })
        .collect()
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
