//! Evaluating a policy: `pkg/audit/policy/checker.go`, exactly.

use kaudit_model::{Level, Stage, StageSet};

use crate::attrs::Attributes;
use crate::policy::{GroupResources, Policy};
use crate::version::K8sVersion;

/// What the policy decides for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// The level: `None` means no event at all.
    pub level: Level,
    /// Stages for which no event is emitted: the union of the policy's and the matched rule's.
    #[serde(rename = "omitStages")]
    pub omit_stages: StageSet,
    /// Whether `metadata.managedFields` is dropped from logged bodies.
    #[serde(rename = "omitManagedFields")]
    pub omit_managed_fields: bool,
    /// The 0-based index of the rule that matched; `None` when none did.
    pub rule: Option<usize>,
}

impl Decision {
    /// Whether an event of `stage` is written for this request.
    pub fn records(&self, stage: Stage) -> bool {
        self.level != Level::None && !self.omit_stages.contains(stage)
    }
}

/// A policy compiled for evaluation.
#[derive(Clone, Debug)]
pub struct Evaluator {
    rules: Vec<Rule>,
    omit_stages: StageSet,
    omit_managed_fields: bool,
    group_wildcard: bool,
    index: Option<Index>,
}

/// Which rules can possibly match, by the cheap attributes, one bit per rule (policies of up
/// to 64 rules). User, groups, verb, namespace and (API group, resource, subresource) are
/// indexed exactly; a candidate in `exact` needs no further check for a resource request.
/// The rest (resourceNames, non-resource URLs) is decided by the exact matcher, in order.
#[derive(Clone, Debug, Default)]
struct Index {
    users: SmallMap,
    any_user: u64,
    groups: SmallMap,
    any_group: u64,
    verbs: SmallMap,
    any_verb: u64,
    namespaces: SmallMap,
    any_namespace: u64,
    /// API group -> index into `tables`.
    api_groups: SmallMap,
    tables: Vec<GroupTable>,
    /// Rules with `group: "*"` (1.36+): their resources apply in every API group.
    wildcard: GroupTable,
    /// Resource rules with no `resources`: every (group, resource) passes.
    any_resource: u64,
    resource_rules: u64,
    non_resource_rules: u64,
    /// Rules fully decided by the masks for resource requests.
    exact: u64,
}

/// The resources one API group's entries name, by shape of the spec.
#[derive(Clone, Debug, Default)]
struct GroupTable {
    /// `resources: []` or `"*"`: everything in the group.
    all: u64,
    /// `"pods"` (no subresource) or `"pods/exec"`, keyed by the whole spec.
    exact: SmallMap,
    /// `"pods/*"`, keyed by `pods`: the resource with or without any subresource.
    prefix: SmallMap,
    /// `"*/exec"`, keyed by `exec`: any resource with that subresource.
    sub: SmallMap,
}

impl GroupTable {
    fn add(&mut self, gr: &GroupResources, bit: u64) {
        if gr.resources.is_empty() {
            self.all |= bit;
        }
        for res in &gr.resources {
            if res == "*" {
                self.all |= bit;
            } else if let Some(sub) = res.strip_prefix("*/") {
                self.sub.add(sub, bit);
            } else if let Some(r) = res.strip_suffix("/*") {
                self.prefix.add(r, bit);
            } else {
                self.exact.add(res, bit);
            }
        }
    }

    #[inline]
    fn get(&self, resource: &str, sub: &str) -> u64 {
        let mut m = self.all | self.prefix.get(resource);
        if sub.is_empty() {
            m |= self.exact.get(resource);
        } else {
            m |= self.exact.get_joined(resource, sub) | self.sub.get(sub);
        }
        m
    }
}

/// A few strings, each with a value (a rule mask, or an index). Policies name a handful of
/// users, groups, verbs and API groups: comparing lengths first and then bytes beats hashing
/// for these sizes.
#[derive(Clone, Debug, Default)]
struct SmallMap {
    keys: Vec<Box<str>>,
    masks: Vec<u64>,
    /// Bit `len % 64` is set when some key has that length: most lookups stop here.
    lens: u64,
}

impl SmallMap {
    fn add(&mut self, k: &str, bit: u64) {
        match self.keys.iter().position(|x| &**x == k) {
            Some(i) => self.masks[i] |= bit,
            None => {
                self.keys.push(k.into());
                self.masks.push(bit);
                self.lens |= 1 << (k.len() % 64);
            }
        }
    }

    /// The slot of `k`, adding it (with value 0) when absent.
    fn slot(&mut self, k: &str) -> usize {
        self.add(k, 0);
        self.keys.iter().position(|x| &**x == k).unwrap()
    }

    #[inline]
    fn get(&self, k: &str) -> u64 {
        self.find(k).map_or(0, |i| self.masks[i])
    }

    #[inline]
    fn find(&self, k: &str) -> Option<usize> {
        if self.lens & (1 << (k.len() % 64)) == 0 {
            return None;
        }
        // keys are unique
        self.keys
            .iter()
            .position(|key| key.len() == k.len() && **key == *k)
    }

    /// The value of `a + "/" + b`, without building the string.
    #[inline]
    fn get_joined(&self, a: &str, b: &str) -> u64 {
        let len = a.len() + 1 + b.len();
        if self.lens & (1 << (len % 64)) == 0 {
            return 0;
        }
        for (key, mask) in self.keys.iter().zip(&self.masks) {
            if key.len() == len && combined_eq(key, a, b) {
                return *mask;
            }
        }
        0
    }
}

impl Index {
    fn new(rules: &[Rule], group_wildcard: bool) -> Option<Index> {
        if rules.len() > 64 {
            return None;
        }
        let mut ix = Index::default();
        for (i, r) in rules.iter().enumerate() {
            let bit = 1u64 << i;
            let add = |map: &mut SmallMap, any: &mut u64, list: &[String]| {
                if list.is_empty() {
                    *any |= bit;
                }
                for v in list {
                    map.add(v, bit);
                }
            };
            add(&mut ix.users, &mut ix.any_user, &r.users);
            add(&mut ix.groups, &mut ix.any_group, &r.user_groups);
            add(&mut ix.verbs, &mut ix.any_verb, &r.verbs);
            add(&mut ix.namespaces, &mut ix.any_namespace, &r.namespaces);
            if r.resources.is_empty() {
                ix.any_resource |= bit;
            }
            for gr in &r.resources {
                if group_wildcard && gr.group == "*" {
                    ix.wildcard.add(gr, bit);
                } else {
                    let t = ix.api_groups.slot(&gr.group);
                    if t == ix.tables.len() {
                        ix.tables.push(GroupTable::default());
                    }
                    ix.api_groups.masks[t] = t as u64;
                    ix.tables[t].add(gr, bit);
                }
            }
            let resource_only = !r.namespaces.is_empty() || !r.resources.is_empty();
            let non_resource_only = !resource_only && !r.non_resource_urls.is_empty();
            if !non_resource_only {
                ix.resource_rules |= bit;
            }
            if !resource_only {
                ix.non_resource_rules |= bit;
            }
            if r.resources.iter().all(|g| g.resource_names.is_empty()) {
                ix.exact |= bit;
            }
        }
        Some(ix)
    }

    /// Rules that match `a` on user, groups and verb, and for a resource request on namespace
    /// and (API group, resource, subresource); exactly, except for the parts outside `exact`.
    fn candidates(&self, a: &Attributes<'_>) -> u64 {
        let look = |m: &SmallMap, k: &str| m.get(k);
        let mut mask = if a.resource_request {
            self.resource_rules
        } else {
            self.non_resource_rules
        };
        if mask & !self.any_verb != 0 {
            mask &= self.any_verb | look(&self.verbs, &a.verb);
        }
        match &a.user {
            None => mask &= self.any_user & self.any_group,
            Some(u) => {
                if mask & !self.any_user != 0 {
                    mask &= self.any_user | look(&self.users, u.name);
                }
                if mask & !self.any_group != 0 {
                    let mut g = self.any_group;
                    for grp in u.groups {
                        g |= look(&self.groups, grp);
                    }
                    mask &= g;
                }
            }
        }
        if a.resource_request {
            if mask & !self.any_namespace != 0 {
                mask &= self.any_namespace | look(&self.namespaces, &a.namespace);
            }
            if mask & !self.any_resource != 0 {
                let (res, sub) = (&*a.resource, &*a.subresource);
                let mut m = self.any_resource | self.wildcard.get(res, sub);
                if let Some(t) = self.api_groups.find(&a.api_group) {
                    m |= self.tables[t].get(res, sub);
                }
                mask &= m;
            }
        }
        mask
    }
}

#[derive(Clone, Debug)]
struct Rule {
    level: Level,
    omit_stages: StageSet,
    omit_managed_fields: bool,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    namespaces: Vec<String>,
    resources: Vec<GroupResources>,
    non_resource_urls: Vec<String>,
}

fn stages(list: &[String], path: &str) -> Result<StageSet, String> {
    list.iter()
        .map(|s| s.parse::<Stage>().map_err(|e| format!("{path}: {e}")))
        .collect()
}

impl Evaluator {
    /// Compiles `p` as kube-apiserver `version` would use it. Fails only on a level or stage
    /// name that validation rejects anyway.
    pub fn new(p: &Policy, version: K8sVersion) -> Result<Evaluator, String> {
        let omit_stages = stages(&p.omit_stages, "omitStages")?;
        let rules = p
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(Rule {
                    level: r
                        .level
                        .parse()
                        .map_err(|e| format!("rules[{i}].level: {e}"))?,
                    omit_stages: omit_stages
                        .union(stages(&r.omit_stages, &format!("rules[{i}].omitStages"))?),
                    omit_managed_fields: r.omit_managed_fields.unwrap_or(p.omit_managed_fields),
                    users: r.users.clone(),
                    user_groups: r.user_groups.clone(),
                    verbs: r.verbs.clone(),
                    namespaces: r.namespaces.clone(),
                    resources: r.resources.clone(),
                    non_resource_urls: r.non_resource_urls.clone(),
                })
            })
            .collect::<Result<Vec<Rule>, String>>()?;
        let index = Index::new(&rules, version.group_wildcard());
        Ok(Evaluator {
            rules,
            omit_stages,
            omit_managed_fields: p.omit_managed_fields,
            group_wildcard: version.group_wildcard(),
            index,
        })
    }

    /// The decision for one request: the first rule that matches wins.
    pub fn evaluate(&self, a: &Attributes<'_>) -> Decision {
        let hit = match &self.index {
            Some(ix) => {
                let mut mask = ix.candidates(a);
                let mut hit = None;
                let exact = if a.resource_request { ix.exact } else { 0 };
                while mask != 0 {
                    let i = mask.trailing_zeros() as usize;
                    if exact & (1 << i) != 0 || self.matches_target(&self.rules[i], a) {
                        hit = Some(i);
                        break;
                    }
                    mask &= mask - 1;
                }
                hit
            }
            None => self.rules.iter().position(|r| self.matches(r, a)),
        };
        match hit {
            Some(i) => {
                let r = &self.rules[i];
                Decision {
                    level: r.level,
                    omit_stages: r.omit_stages,
                    omit_managed_fields: r.omit_managed_fields,
                    rule: Some(i),
                }
            }
            None => Decision {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
                rule: None,
            },
        }
    }

    /// Whether rule `i` matches `a` (ignoring the rules before it).
    pub fn rule_matches(&self, i: usize, a: &Attributes<'_>) -> bool {
        self.matches(&self.rules[i], a)
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the policy has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn matches(&self, r: &Rule, a: &Attributes<'_>) -> bool {
        if !r.users.is_empty() {
            match &a.user {
                Some(u) if has(&r.users, u.name) => {}
                _ => return false,
            }
        }
        if !r.user_groups.is_empty() {
            match &a.user {
                Some(u) if u.groups.iter().any(|g| has(&r.user_groups, g)) => {}
                _ => return false,
            }
        }
        if !r.verbs.is_empty() && !has(&r.verbs, &a.verb) {
            return false;
        }
        self.matches_target(r, a)
    }

    /// The resource or non-resource part of a rule (steps 4 to 6 of `ruleMatches`).
    fn matches_target(&self, r: &Rule, a: &Attributes<'_>) -> bool {
        if !r.namespaces.is_empty() || !r.resources.is_empty() {
            return self.matches_resource(r, a);
        }
        if !r.non_resource_urls.is_empty() {
            return !a.resource_request
                && r.non_resource_urls.iter().any(|s| path_matches(&a.path, s));
        }
        true
    }

    fn matches_resource(&self, r: &Rule, a: &Attributes<'_>) -> bool {
        if !a.resource_request {
            return false;
        }
        if !r.namespaces.is_empty() && !has(&r.namespaces, &a.namespace) {
            return false;
        }
        if r.resources.is_empty() {
            return true;
        }
        let (resource, sub) = (&*a.resource, &*a.subresource);
        for gr in &r.resources {
            if gr.group != *a.api_group && !(self.group_wildcard && gr.group == "*") {
                continue;
            }
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !has(&gr.resource_names, &a.name) {
                continue;
            }
            for res in &gr.resources {
                if res == "*" || combined_eq(res, resource, sub) {
                    return true;
                }
                if !sub.is_empty() && res.strip_prefix("*/") == Some(sub) {
                    return true;
                }
                if res.strip_suffix("/*") == Some(resource) {
                    return true;
                }
            }
        }
        false
    }
}

/// `res == resource` or `res == resource + "/" + sub`, without building the string.
fn combined_eq(res: &str, resource: &str, sub: &str) -> bool {
    if sub.is_empty() {
        return res == resource;
    }
    res.len() == resource.len() + 1 + sub.len()
        && res.starts_with(resource)
        && res.as_bytes()[resource.len()] == b'/'
        && res.ends_with(sub)
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

/// `pathMatches`: `*`, exact, or a trailing-`*` raw string prefix.
pub(crate) fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || (spec.ends_with('*') && path.starts_with(spec.trim_end_matches('*')))
}
