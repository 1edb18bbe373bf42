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
