//! The space of requests, cut into boxes, to decide exactly when one rule covers another.
//!
//! A rule matches a union of *cubes*: products of one value set per request attribute (kind,
//! user, group, verb, namespace, API group, resource, subresource, name, path). Each set is
//! finite (`{get, list}`) or co-finite (everything but `{…}`), which is exactly what a rule's
//! lists can say. Two things need care:
//!
//! - groups: a request has a *set* of groups and a rule wants any of its `userGroups`. A rule
//!   set is covered for every group set iff it is covered for every single group, so one
//!   "witness group" per request is enough;
//! - paths: `nonResourceURLs` are exact strings or raw prefixes. The paths are split into the
//!   finitely many classes that every pattern of the policy treats alike (each exact string,
//!   and "longest mentioned prefix is p"), so path sets are finite sets of classes.
//!
//! Subtracting the cubes of earlier rules from a later rule's cubes leaves nothing exactly when
//! the later rule can never decide a request.

use std::collections::BTreeSet;

use crate::policy::{Policy, PolicyRule};

/// The attributes, in cube order.
pub const DIMS: [&str; 10] = [
    "kind",
    "user",
    "group",
    "verb",
    "namespace",
    "apiGroup",
    "resource",
    "subresource",
    "name",
    "path",
];
const KIND: usize = 0;
const USER: usize = 1;
const GROUP: usize = 2;
const VERB: usize = 3;
const NS: usize = 4;
const API_GROUP: usize = 5;
const RESOURCE: usize = 6;
const SUB: usize = 7;
const NAME: usize = 8;
const PATH: usize = 9;

/// The value standing for "no authenticated user".
pub const NIL_USER: &str = "\u{0}nobody";

/// A set of attribute values: finite, or everything except a finite set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Set {
    /// Exactly these.
    Fin(BTreeSet<String>),
    /// Everything but these.
    Cof(BTreeSet<String>),
}

impl Set {
    fn any() -> Set {
        Set::Cof(BTreeSet::new())
    }
    fn of<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Set {
        Set::Fin(items.into_iter().map(Into::into).collect())
    }
    fn is_empty(&self) -> bool {
        matches!(self, Set::Fin(s) if s.is_empty())
    }
    fn intersect(&self, o: &Set) -> Set {
        match (self, o) {
            (Set::Fin(a), Set::Fin(b)) => Set::Fin(a.intersection(b).cloned().collect()),
            (Set::Fin(a), Set::Cof(b)) | (Set::Cof(b), Set::Fin(a)) => {
                Set::Fin(a.difference(b).cloned().collect())
            }
            (Set::Cof(a), Set::Cof(b)) => Set::Cof(a.union(b).cloned().collect()),
        }
    }
    fn minus(&self, o: &Set) -> Set {
        let comp = match o {
            Set::Fin(b) => Set::Cof(b.clone()),
            Set::Cof(b) => Set::Fin(b.clone()),
        };
        self.intersect(&comp)
    }
    /// One member, for examples (`None` for "anything").
    pub fn example(&self) -> Option<&str> {
        match self {
            Set::Fin(s) => s.iter().next().map(String::as_str),
            Set::Cof(ex) if ex.is_empty() => None,
            Set::Cof(_) => Some("…"),
        }
    }
    /// Whether the set is "anything".
    pub fn is_any(&self) -> bool {
        matches!(self, Set::Cof(s) if s.is_empty())
    }
}

/// A product of value sets.
pub type Cube = [Set; 10];

fn is_empty(c: &Cube) -> bool {
    c.iter().any(Set::is_empty)
}

/// Whether two cubes share a request.
pub fn overlaps(a: &Cube, b: &Cube) -> bool {
    a.iter()
        .zip(b.iter())
        .all(|(x, y)| !x.intersect(y).is_empty())
}

/// The intersection of two cubes.
pub fn intersect(a: &Cube, b: &Cube) -> Cube {
    std::array::from_fn(|i| a[i].intersect(&b[i]))
}

/// `a − b` as disjoint cubes.
fn subtract(a: &Cube, b: &Cube, out: &mut Vec<Cube>) {
    if !overlaps(a, b) {
        out.push(a.clone());
        return;
    }
    let mut rest = a.clone();
    for d in 0..DIMS.len() {
        let outside = rest[d].minus(&b[d]);
        if !outside.is_empty() {
            let mut piece = rest.clone();
            piece[d] = outside;
            out.push(piece);
        }
        rest[d] = rest[d].intersect(&b[d]);
    }
}

/// Subtracts every cube of `bs` from every cube of `as_`. `None` when the pieces grow past
/// `limit` (the analysis gives up rather than take long).
pub fn subtract_all(as_: Vec<Cube>, bs: &[Cube], limit: usize) -> Option<Vec<Cube>> {
    let mut cur = as_;
    for b in bs {
        let mut next = Vec::with_capacity(cur.len());
        for a in &cur {
            subtract(a, b, &mut next);
        }
        if next.len() > limit {
            return None;
        }
        cur = next;
    }
    Some(cur)
}

/// Turns rules into cubes, with the path classes of a whole policy.
pub struct Space {
    atoms: BTreeSet<String>,
    group_wildcard: bool,
}

impl Space {
    /// The space for `p`.
    pub fn new(p: &Policy, group_wildcard: bool) -> Space {
        let mut atoms = BTreeSet::new();
        atoms.insert("^".to_string());
        for r in &p.rules {
            for u in &r.non_resource_urls {
                if u == "*" {
                    continue;
                }
                if u.ends_with('*') {
                    atoms.insert(format!("^{}", u.trim_end_matches('*')));
                } else {
                    atoms.insert(format!("={u}"));
                }
            }
        }
        Space {
            atoms,
            group_wildcard,
        }
    }

    fn all_paths(&self) -> Set {
        Set::Fin(self.atoms.clone())
    }

    fn paths_matching(&self, urls: &[String]) -> Set {
        Set::Fin(
            self.atoms
                .iter()
                .filter(|a| {
                    urls.iter().any(|u| {
                        if u == "*" {
                            return true;
                        }
                        let (exact, body) = (a.starts_with('='), &a[1..]);
                        if u.ends_with('*') {
                            body.starts_with(u.trim_end_matches('*'))
                        } else {
                            exact && body == u
                        }
                    })
                })
                .cloned()
                .collect(),
        )
    }

    /// The cubes rule `r` matches (empty when it can match nothing).
    pub fn rule(&self, r: &PolicyRule) -> Vec<Cube> {
        let mut base: Cube = std::array::from_fn(|_| Set::any());
        base[KIND] = Set::of(["R", "N"]);
        base[PATH] = self.all_paths();
        if !r.users.is_empty() {
            base[USER] = Set::of(r.users.iter().cloned());
        }
        if !r.user_groups.is_empty() {
            base[USER] = base[USER].intersect(&Set::Cof([NIL_USER.to_string()].into()));
            base[GROUP] = Set::of(r.user_groups.iter().cloned());
        }
        if !r.verbs.is_empty() {
            base[VERB] = Set::of(r.verbs.iter().cloned());
        }
        let mut out = Vec::new();
        if !r.namespaces.is_empty() || !r.resources.is_empty() {
            base[KIND] = Set::of(["R"]);
            if !r.namespaces.is_empty() {
                base[NS] = Set::of(r.namespaces.iter().cloned());
            }
            if r.resources.is_empty() {
                out.push(base);
            } else {
                for gr in &r.resources {
                    let mut c = base.clone();
                    if !(self.group_wildcard && gr.group == "*") {
                        c[API_GROUP] = Set::of([gr.group.clone()]);
                    }
                    if gr.resources.is_empty() {
                        out.push(c);
                        continue;
                    }
                    if !gr.resource_names.is_empty() {
                        c[NAME] = Set::of(gr.resource_names.iter().cloned());
                    }
                    for res in &gr.resources {
                        for (rs, sub) in resource_pattern(res) {
                            let mut c2 = c.clone();
                            c2[RESOURCE] = rs;
                            c2[SUB] = sub;
                            out.push(c2);
                        }
                    }
                }
            }
        } else if !r.non_resource_urls.is_empty() {
            base[KIND] = Set::of(["N"]);
            base[PATH] = self.paths_matching(&r.non_resource_urls);
            out.push(base);
        } else {
            out.push(base);
        }
        out.retain(|c| !is_empty(c));
        out
    }
}

/// What a `resources` string matches, as (resource set, subresource set) pairs. Subresource
/// `""` stands for "no subresource".
fn resource_pattern(res: &str) -> Vec<(Set, Set)> {
    let any = Set::any;
    if res == "*" {
        return vec![(any(), any())];
    }
    match res.split_once('/') {
        None if res.is_empty() => vec![],
        None => vec![(Set::of([res]), Set::of([""]))],
        Some(("*", "*")) => vec![(any(), Set::of(["*"])), (Set::of(["*"]), any())],
        Some(("*", sub)) if !sub.contains('/') => vec![(any(), Set::of([sub]))],
        Some((r, "*")) if !r.contains('/') => vec![(Set::of([r]), any())],
        Some((r, sub)) if !sub.contains('/') && !r.is_empty() && !sub.is_empty() => {
            vec![(Set::of([r]), Set::of([sub]))]
        }
        Some(_) => vec![],
    }
}

/// A readable example request from a cube: the constrained attributes only.
pub fn describe(c: &Cube) -> String {
    let mut parts = Vec::new();
    let kind_r = matches!(&c[KIND], Set::Fin(s) if s.len() == 1 && s.contains("R"));
    let kind_n = matches!(&c[KIND], Set::Fin(s) if s.len() == 1 && s.contains("N"));
    for (d, set) in c.iter().enumerate() {
        if d == KIND || set.is_any() {
            continue;
        }
        if d == PATH && !kind_n {
            continue;
        }
        if (NS..=NAME).contains(&d) && !kind_r {
            continue;
        }
        let v = match set.example() {
            Some(v) if d == USER && v == NIL_USER => "(unauthenticated)".to_string(),
            Some(v) if d == PATH => {
                let body = &v[1..];
                if v.starts_with('^') {
                    format!("{body}…")
                } else {
                    body.to_string()
                }
            }
            Some("") if d == SUB => "(none)".to_string(),
            Some("") if d == API_GROUP => "\"\" (core)".to_string(),
            Some("") if d == NS => "\"\" (cluster-scoped)".to_string(),
            Some(v) => v.to_string(),
            None => continue,
        };
        let v = if matches!(set, Set::Cof(_)) {
            format!("other than {}", list(set))
        } else {
            v
        };
        parts.push(format!("{}={v}", DIMS[d]));
    }
    if parts.is_empty() {
        if kind_r {
            "any resource request".into()
        } else if kind_n {
            "any non-resource request".into()
        } else {
            "any request".into()
        }
    } else {
        parts.join(" ")
    }
}

fn list(s: &Set) -> String {
    match s {
        Set::Fin(v) | Set::Cof(v) => v
            .iter()
            .map(|x| {
                if x == NIL_USER {
                    "(unauthenticated)"
                } else {
                    x.as_str()
                }
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}
