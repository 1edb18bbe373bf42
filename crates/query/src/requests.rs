//! One row per request: a request's stage events share its request time and cluster, so
//! matching rows are grouped by those; only where several requests share both are audit IDs
//! read. The row kept is the request's latest stage.

use std::collections::HashMap;
use std::sync::Mutex;

use arrow_array::{Array, BooleanArray, TimestampMicrosecondArray, UInt64Array};
use kaudit_store::col;

use crate::rows::StrCol;
use crate::scan::{Scan, Source, parallel};
use crate::spec::{Query, Scanned, request_invariant};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

fn stage_rank(s: &str) -> u8 {
    match s {
        "RequestReceived" => 1,
        "ResponseStarted" => 2,
        "ResponseComplete" => 3,
        "Panic" => 4,
        _ => 0,
    }
}

/// A matching row, with what is needed to keep one row per request and to order them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hit {
    pub time: i64,
    cluster: u32,
    pub leaf: u64,
    pub src: u32,
    pub row: u32,
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
pub(crate) fn hits_of(
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

/// Keeps one row per request: its latest stage (the first stored on a tie).
pub(crate) fn one_per_request(
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
