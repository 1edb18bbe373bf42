//! Running a filter over the sealed segments and the WAL tail.
//!
//! Per segment, row groups whose time range or term sets (from the manifest) cannot match are
//! not read; only the columns the query needs are decoded. The WAL tail is decoded into the
//! same columns, so an event is visible as soon as it is acknowledged. A request counts once,
//! as its latest stored stage, unless all stages are asked for.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{
    Array, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use kaudit_model::Event;
use kaudit_store::manifest::{Manifest, SegmentMeta};
use kaudit_store::record::StoredRecord;
use kaudit_store::segment::{self, col};
use kaudit_store::{Layout, request_key, wal};

use crate::filter::{Field, Filter, Matcher, Term, Value, cmp};

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

/// One matching event.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Row {
    pub leaf: u64,
    pub time: Option<i64>,
    pub cluster: String,
    pub audit_id: String,
    pub stage: String,
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: Option<i32>,
    pub source_ip: String,
    pub user_agent: String,
    pub request_uri: String,
    /// The first stored stage of its request.
    pub first: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// Statistics of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scanned {
    pub segments: usize,
    pub row_groups_read: usize,
    pub row_groups_skipped: usize,
    pub rows_read: u64,
    pub wal_rows: u64,
}

const BASE: &[&str] = &[
    "leaf",
    "time",
    "cluster",
    "audit_id",
    "stage",
    "user",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "code",
    "source_ip",
    "user_agent",
    "request_uri",
    "first",
];

fn stage_rank(s: &str) -> u8 {
    match s {
        "RequestReceived" => 1,
        "ResponseStarted" => 2,
        "ResponseComplete" => 3,
        "Panic" => 4,
        _ => 0,
    }
}

/// Runs `q` over the data directory at `dir`; rows come in time order.
pub fn run(dir: &Path, q: &Query) -> Result<(Vec<Row>, Scanned), String> {
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
    let mut cols: Vec<&str> = BASE.to_vec();
    for t in &q.filter.terms {
        let c = t.field.column();
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    if q.with_event {
        cols.push("event");
    }
    let mut rows = Vec::new();
    let mut st = Scanned::default();
    for s in &manifest.segments {
        let groups = row_groups(s, q);
        st.row_groups_skipped += s.row_groups.len() - groups.len();
        if groups.is_empty() {
            continue;
        }
        st.segments += 1;
        st.row_groups_read += groups.len();
        let path = layout.segments().join(&s.file);
        segment::read(&path, &cols, Some(groups), |b| {
            st.rows_read += b.num_rows() as u64;
            eval_batch(&b, q, &mut rows)
        })?;
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
        let batch = b.finish_batch();
        eval_batch(&batch, q, &mut rows)?;
    }
    if !q.stages {
        rows = latest_stage(rows);
    }
    rows.sort_by_key(|r| (r.time, r.leaf));
    Ok((rows, st))
}

/// One row per request: its latest stage among the matches.
fn latest_stage(rows: Vec<Row>) -> Vec<Row> {
    let mut at: HashMap<u128, usize> = HashMap::new();
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        if r.audit_id.is_empty() {
            out.push(r);
            continue;
        }
        let k = request_key(&r.cluster, &r.audit_id);
        match at.get(&k) {
            Some(&i) => {
                if stage_rank(&r.stage) > stage_rank(&out[i].stage) {
                    out[i] = r;
                }
            }
            None => {
                at.insert(k, out.len());
                out.push(r);
            }
        }
    }
    out
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

enum Col<'b> {
    Str(&'b StringArray),
    Code(&'b Int32Array),
    List(&'b ListArray),
}

fn str_at(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) { "" } else { a.value(i) }
}

fn eval_batch(b: &RecordBatch, q: &Query, rows: &mut Vec<Row>) -> Result<(), String> {
    let time = col::<TimestampMicrosecondArray>(b, "time")?;
    let leaf = col::<UInt64Array>(b, "leaf")?;
    let s = |n: &str| col::<StringArray>(b, n);
    let (cluster, audit_id, stage, user, verb) = (
        s("cluster")?,
        s("audit_id")?,
        s("stage")?,
        s("user")?,
        s("verb")?,
    );
    let (resource, sub, ns, name) = (
        s("resource")?,
        s("subresource")?,
        s("namespace")?,
        s("name")?,
    );
    let (ip, ua, uri) = (s("source_ip")?, s("user_agent")?, s("request_uri")?);
    let code = col::<Int32Array>(b, "code")?;
    let first = col::<BooleanArray>(b, "first")?;
    let event = if q.with_event {
        Some(s("event")?)
    } else {
        None
    };
    let mut terms: Vec<(&Term, Col<'_>)> = Vec::new();
    for t in &q.filter.terms {
        let c = match t.field {
            Field::Code => Col::Code(code),
            Field::Group => Col::List(col::<ListArray>(b, "groups")?),
            f => Col::Str(s(f.column())?),
        };
        terms.push((t, c));
    }
    let f = &q.filter;
    'rows: for i in 0..b.num_rows() {
        let t = if time.is_null(i) {
            None
        } else {
            Some(time.value(i))
        };
        if let Some(since) = f.since
            && t.is_none_or(|t| t < since)
        {
            continue;
        }
        if let Some(until) = f.until
            && t.is_none_or(|t| t >= until)
        {
            continue;
        }
        if let Some(c) = &q.cluster
            && cluster.value(i) != c
        {
            continue;
        }
        for (term, c) in &terms {
            let hit = match c {
                Col::Str(a) => {
                    let v = str_at(a, i);
                    if term.field == Field::Resource {
                        match_resource(&term.matcher, v, str_at(sub, i))
                    } else {
                        term.matcher.matches_str(v)
                    }
                }
                Col::Code(a) => {
                    if a.is_null(i) {
                        false
                    } else {
                        let v = a.value(i) as i64;
                        match &term.matcher {
                            Matcher::Cmp(op, n) => cmp(*op, v, *n),
                            m => m.matches_str(&v.to_string()),
                        }
                    }
                }
                Col::List(a) => {
                    let g = a.value(i);
                    let g = g.as_any().downcast_ref::<StringArray>().unwrap();
                    (0..g.len()).any(|j| term.matcher.matches_str(str_at(g, j)))
                }
            };
            if hit == term.negated {
                continue 'rows;
            }
        }
        rows.push(Row {
            leaf: leaf.value(i),
            time: t,
            cluster: cluster.value(i).to_string(),
            audit_id: audit_id.value(i).to_string(),
            stage: stage.value(i).to_string(),
            user: user.value(i).to_string(),
            verb: verb.value(i).to_string(),
            resource: str_at(resource, i).to_string(),
            subresource: str_at(sub, i).to_string(),
            namespace: str_at(ns, i).to_string(),
            name: str_at(name, i).to_string(),
            code: if code.is_null(i) {
                None
            } else {
                Some(code.value(i))
            },
            source_ip: str_at(ip, i).to_string(),
            user_agent: str_at(ua, i).to_string(),
            request_uri: uri.value(i).to_string(),
            first: first.value(i),
            event: event.map(|e| e.value(i).to_string()),
        });
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
