//! Running filters over the store (through one [`kaudit_store::Snapshot`]: the sealed segments
//! and the WAL tail).
//!
//! Per segment, row groups whose time range or term sets cannot match are not read
//! ([`crate::plan`]). The rest go through three steps, spread over all cores
//! ([`crate::scan`]):
//! 1. **match**: only the columns the filter needs are read, the low-cardinality ones as
//!    dictionaries, so each term is decided once per distinct value ([`crate::matching`]);
//! 2. **one per request**: for the matching rows only the small key columns are read (time,
//!    leaf, stage, first, cluster). The stages of one request share its time and cluster, so
//!    rows with a time of their own are requests of their own; only where several matching
//!    rows share a time (and the first-stage flags cannot tell them apart) are audit IDs read
//!    ([`crate::requests`]);
//! 3. **output**: the display columns are read for the rows kept (with a limit, the most
//!    recent ones only); pages without one of them are not decoded.
//!
//! The WAL tail is decoded into the same columns, so an event is visible as soon as it is
//! acknowledged.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use arrow_array::{Array, BooleanArray};
use kaudit_store::col;

use crate::requests::{Hit, hits_of, one_per_request};
use crate::rows::{PART_COLUMNS, Part, StrCol};
pub use crate::rows::{Row, RowRef, Rows};
use crate::scan::{Scan, parallel};
pub use crate::spec::{Query, Scanned, request_invariant};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
    let newest = |i: usize| scan.newest(i);
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
    let mut all: FastMap<String, u64> = FastMap::default();
    // Row groups the query takes whole, with their requests per user counted when they were
    // sealed, are answered from the counts; the rest are read.
    let mut read = Vec::new();
    for i in 0..scan.sources.len() {
        match scan.counted(i, q, column)? {
            Some(counts) => {
                st.groups_counted += 1;
                for (k, n) in counts {
                    st.rows_matched += n;
                    *all.entry(k.clone()).or_default() += n;
                }
            }
            None => read.push(i),
        }
    }
    let (parts, threads) = parallel(read.len(), &|k| {
        let i = read[k];
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
