//! Ready investigations: the questions every audit-log guide and dashboard asks, as filters
//! and aggregations over the same executor.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exec::{Query, Rows, Scanned, count_by, request_invariant, run};
use crate::filter::{Filter, parse};

/// A named question.
pub struct Question {
    pub name: &'static str,
    pub about: &'static str,
    /// The filters whose matches are united (a request counts once).
    pub filters: &'static [&'static str],
    pub kind: Kind,
    /// Whether it takes an argument (a user, an object).
    pub arg: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The matching requests.
    Requests,
    /// Requests counted per user, most first.
    TopUsers,
    /// Creations and deletions per time bucket.
    ChangesOverTime,
}

/// Every built-in question.
pub const QUESTIONS: &[Question] = &[
    Question {
        name: "secrets",
        about: "who accessed secrets (any verb on the secrets resource)",
        filters: &["resource=secrets"],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "exec",
        about: "exec, attach and port-forward sessions into pods",
        filters: &["resource=pods/exec,pods/attach,pods/portforward"],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "failed-auth",
        about: "failed authentication: requests answered 401",
        filters: &["code=401"],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "denied",
        about: "denied authorization: requests answered 403",
        filters: &["code=403"],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "deletions",
        about: "deletions (delete and deletecollection)",
        filters: &["verb=delete,deletecollection"],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "rbac-changes",
        about: "changes to RBAC roles and bindings",
        filters: &[
            "apigroup=rbac.authorization.k8s.io verb=create,update,patch,delete,deletecollection",
        ],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "privileged",
        about: "privileged operations: exec/attach/port-forward, RBAC changes, impersonation",
        filters: &[
            "resource=pods/exec,pods/attach,pods/portforward",
            "apigroup=rbac.authorization.k8s.io verb=create,update,patch,delete,deletecollection",
            "as=*",
        ],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "sensitive-reads",
        about: "reads of secrets, configmaps and service-account tokens",
        filters: &[
            "verb=get,list,watch resource=secrets,configmaps",
            "resource=serviceaccounts/token",
        ],
        kind: Kind::Requests,
        arg: None,
    },
    Question {
        name: "top-users",
        about: "users by number of API requests",
        filters: &[""],
        kind: Kind::TopUsers,
        arg: None,
    },
    Question {
        name: "changes-over-time",
        about: "creations and deletions per time bucket (a series for a chart)",
        filters: &["verb=create,delete,deletecollection"],
        kind: Kind::ChangesOverTime,
        arg: None,
    },
    Question {
        name: "user",
        about: "everything one user did",
        filters: &["user={}"],
        kind: Kind::Requests,
        arg: Some("USER"),
    },
    Question {
        name: "object",
        about: "an object's history: every request that named it (RESOURCE/NAMESPACE/NAME, or RESOURCE/NAME when cluster-scoped)",
        filters: &["{}"],
        kind: Kind::Requests,
        arg: Some("RESOURCE/[NAMESPACE/]NAME"),
    },
];

/// A question by name.
pub fn question(name: &str) -> Option<&'static Question> {
    QUESTIONS.iter().find(|q| q.name == name)
}

/// An answer.
#[derive(Debug)]
pub enum Answer {
    Requests(Rows),
    Counts(Vec<(String, u64)>),
    /// (bucket start, creations, deletions).
    Series {
        bucket_micros: i64,
        points: Vec<(i64, u64, u64)>,
    },
}

fn object_filter(arg: &str) -> Result<String, String> {
    let parts: Vec<&str> = arg.split('/').collect();
    match parts.as_slice() {
        [r, n] => Ok(format!("resource={r} name={n}")),
        [r, ns, n] => Ok(format!("resource={r} ns={ns} name={n}")),
        _ => Err(format!(
            "{arg:?}: name the object as RESOURCE/NAMESPACE/NAME (or RESOURCE/NAME)"
        )),
    }
}

/// How to run a question; `Default` asks it plainly.
#[derive(Clone, Debug, Default)]
pub struct AskOptions {
    /// A filter ANDed with the question's (terms, time range).
    pub extra: Filter,
    /// Only this cluster.
    pub cluster: Option<String>,
    /// Also fetch the stored events.
    pub with_event: bool,
    /// Bucket size of a series (microseconds); chosen from the span when absent.
    pub bucket: Option<i64>,
    /// Keep only the most recent requests of a request list (all are counted).
    pub limit: Option<usize>,
    /// "Now" for relative times in the question's filters (microseconds).
    pub now: i64,
}

/// Runs a question (`arg`: its argument, when it takes one).
pub fn ask(
    dir: &Path,
    q: &Question,
    arg: Option<&str>,
    o: &AskOptions,
) -> Result<(Answer, Scanned), String> {
    let (extra, now, bucket) = (&o.extra, o.now, o.bucket);
    if let (Some(what), None) = (q.arg, arg) {
        return Err(format!("{} needs {what}", q.name));
    }
    let mut filters = Vec::new();
    for f in q.filters {
        let text = match (q.name, arg) {
            ("object", Some(a)) => object_filter(a)?,
            (_, Some(a)) => f.replace("{}", &quote(a)),
            _ => f.to_string(),
        };
        let mut filter = parse(&text, now)?;
        filter.terms.extend(extra.terms.iter().cloned());
        filter.since = extra.since;
        filter.until = extra.until;
        filters.push(filter);
    }
    let query = Query {
        filters,
        stages: false,
        cluster: o.cluster.clone(),
        with_event: o.with_event,
        limit: if q.kind == Kind::Requests {
            o.limit
        } else {
            None
        },
    };
    if q.kind == Kind::TopUsers && query.filters.iter().all(request_invariant) {
        // Counted from the dictionary of the user column, at each request's first stage.
        let (counts, s) = count_by(dir, &query, "user")?;
        return Ok((Answer::Counts(counts), s));
    }
    let (all, scanned) = run(dir, &query)?;
    let answer = match q.kind {
        Kind::Requests => Answer::Requests(all),
        Kind::TopUsers => {
            let mut by: BTreeMap<&str, u64> = BTreeMap::new();
            for r in all.iter() {
                *by.entry(r.user).or_default() += 1;
            }
            let mut v: Vec<(String, u64)> =
                by.into_iter().map(|(u, n)| (u.to_string(), n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Answer::Counts(v)
        }
        Kind::ChangesOverTime => {
            let times: Vec<i64> = all.iter().filter_map(|r| r.time).collect();
            let span = match (times.iter().min(), times.iter().max()) {
                (Some(a), Some(b)) => b - a,
                _ => 0,
            };
            let bucket = bucket.unwrap_or_else(|| auto_bucket(span));
            let mut pts: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
            for r in all.iter() {
                let Some(t) = r.time else { continue };
                let k = t.div_euclid(bucket) * bucket;
                let e = pts.entry(k).or_default();
                if r.verb == "create" {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            // Fill empty buckets so the series plots as it happened.
            let mut points = Vec::new();
            if let (Some(&a), Some(&b)) = (pts.keys().next(), pts.keys().next_back()) {
                let mut k = a;
                while k <= b {
                    let (c, d) = pts.get(&k).copied().unwrap_or_default();
                    points.push((k, c, d));
                    k += bucket;
                }
            }
            Answer::Series {
                bucket_micros: bucket,
                points,
            }
        }
    };
    Ok((answer, scanned))
}

fn quote(s: &str) -> String {
    if s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

/// A bucket giving 24 to 100 points over `span`.
pub fn auto_bucket(span: i64) -> i64 {
    const MIN: i64 = 60_000_000;
    for b in [1, 5, 15, 60, 360, 1440, 10080] {
        if span / (b * MIN) <= 100 {
            return b * MIN;
        }
    }
    10080 * MIN
}
