//! The audit `Policy` as written in a file.

use crate::yaml::Pos;
use std::collections::BTreeMap;

/// An audit policy, as decoded from its file (strings as written: validation says whether
/// they are valid; [`crate::Evaluator`] is the compiled form that evaluates requests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `rules`, in order: the first that matches wins.
    pub rules: Vec<PolicyRule>,
    /// `omitStages` for every request.
    pub omit_stages: Vec<String>,
    /// `omitManagedFields` default.
    pub omit_managed_fields: bool,
    /// Where each field path (`rules[2].resources[0].group`) is in the file, when loaded from one.
    pub positions: Positions,
}

/// One rule of a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRule {
    /// `level` as written.
    pub level: String,
    /// `users`.
    pub users: Vec<String>,
    /// `userGroups`.
    pub user_groups: Vec<String>,
    /// `verbs`.
    pub verbs: Vec<String>,
    /// `resources`.
    pub resources: Vec<GroupResources>,
    /// `namespaces`.
    pub namespaces: Vec<String>,
    /// `nonResourceURLs`.
    pub non_resource_urls: Vec<String>,
    /// `omitStages` as written.
    pub omit_stages: Vec<String>,
    /// `omitManagedFields`: `None` when absent (the policy's value applies).
    pub omit_managed_fields: Option<bool>,
}

/// One entry of a rule's `resources`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupResources {
    /// `group`: `""` is the core group.
    pub group: String,
    /// `resources`: empty means all of the group.
    pub resources: Vec<String>,
    /// `resourceNames`.
    pub resource_names: Vec<String>,
}

impl PolicyRule {
    /// Whether the rule has no condition at all: it matches every request.
    pub fn is_catch_all(&self) -> bool {
        self.users.is_empty()
            && self.user_groups.is_empty()
            && self.verbs.is_empty()
            && self.resources.is_empty()
            && self.namespaces.is_empty()
            && self.non_resource_urls.is_empty()
    }
}

/// Field path → position in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions(pub BTreeMap<String, Pos>);

impl Positions {
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.0.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
    /// The position of rule `i`.
    pub fn rule(&self, i: usize) -> Option<Pos> {
        self.0.get(&format!("rules[{i}]")).copied()
    }
}
