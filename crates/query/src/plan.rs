//! Which row groups a query must read: those whose time range and term sets (recorded when
//! they were sealed) can hold a match.

use kaudit_store::{RowGroupTerms, SegmentMeta};

use crate::filter::{Field, Filter, Matcher, Value};
use crate::spec::Query;

/// Row groups that may hold matches, by time range and term sets.
pub(crate) fn row_groups(s: &SegmentMeta, q: &Query) -> Vec<usize> {
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

fn group_may_match(g: &RowGroupTerms, f: &Filter) -> bool {
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

/// Whether every row of row group `g` matches `q`, so what was counted when it was sealed
/// answers for it: a filter without terms whose time range holds all its rows, and (with a
/// cluster asked for) only that cluster in it.
pub(crate) fn group_wholly_matches(g: &RowGroupTerms, q: &Query) -> bool {
    if let Some(c) = &q.cluster
        && g.terms
            .get("cluster")
            .is_none_or(|set| set.as_slice() != [c.clone()])
    {
        return false;
    }
    let holds = |f: &Filter| {
        if f.since.is_none() && f.until.is_none() {
            return true;
        }
        // Rows without a request time never match a time range.
        match (g.min_time, g.max_time, g.untimed) {
            (Some(lo), Some(hi), false) => {
                f.since.is_none_or(|s| s <= lo) && f.until.is_none_or(|u| hi < u)
            }
            _ => false,
        }
    };
    q.filters.is_empty() || q.filters.iter().any(|f| f.terms.is_empty() && holds(f))
}
