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
            .collect::<Result<_, String>>()?;
        Ok(Evaluator {
            rules,
            omit_stages,
            omit_managed_fields: p.omit_managed_fields,
            group_wildcard: version.group_wildcard(),
        })
    }

    /// The decision for one request: the first rule that matches wins.
    pub fn evaluate(&self, a: &Attributes<'_>) -> Decision {
        for (i, r) in self.rules.iter().enumerate() {
            if self.matches(r, a) {
                return Decision {
                    level: r.level,
                    omit_stages: r.omit_stages,
                    omit_managed_fields: r.omit_managed_fields,
                    rule: Some(i),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages,
            omit_managed_fields: self.omit_managed_fields,
            rule: None,
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
