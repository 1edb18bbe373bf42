//! Deciding which rows of a batch match a query, reading only the filter's columns;
//! dictionary columns decide each term once per distinct value.

use arrow_array::{
    Array, BooleanArray, Int32Array, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use kaudit_store::col;

use crate::filter::{Field, Filter, Matcher, Term, Value, cmp};
use crate::rows::StrCol;
use crate::spec::Query;

/// The columns the filters read.
pub(crate) fn filter_columns(q: &Query, first_only: bool) -> Vec<&'static str> {
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
pub(crate) fn filter_mask(
    b: &RecordBatch,
    q: &Query,
    first_only: bool,
) -> Result<Vec<bool>, String> {
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
