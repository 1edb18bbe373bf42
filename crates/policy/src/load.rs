//! Loading a policy file as kube-apiserver does at start-up (`pkg/audit/policy/reader.go`).
//!
//! The order is kube-apiserver's: parse the YAML, check `apiVersion`/`kind`, decode the
//! fields, validate, count the rules. Where kube-apiserver stops at the first fatal error,
//! [`load`] carries on as far as it can, so one run lists every problem. Keys that
//! kube-apiserver's lenient decoding drops (unknown, misplaced, misspelled or duplicated) are
//! warnings that say how the rule is widened; type errors (a string where a list belongs) are
//! fatal, as they are for kube-apiserver.

use std::collections::BTreeSet;

use crate::diag::{Diagnostic, Severity};
use crate::policy::{GroupResources, Policy, PolicyRule, Positions};
use crate::validate::validate;
use crate::version::K8sVersion;
use crate::yaml::{self, Key, Node, Pos, Value};

/// How to load.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// The kube-apiserver release to behave like.
    pub version: K8sVersion,
}

/// A loaded policy and everything found wrong with it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The policy as kube-apiserver would see it (dropped keys dropped). Meaningful only
    /// when [`Loaded::is_valid`].
    pub policy: Policy,
    /// Problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether kube-apiserver would start with this policy.
    pub fn is_valid(&self) -> bool {
        !self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

const TOP_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "rules",
    "omitStages",
    "omitManagedFields",
];
const RULE_KEYS: &[&str] = &[
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
];
const GR_KEYS: &[&str] = &["group", "resources", "resourceNames"];
const META_KEYS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Loads, validates and counts the rules of the policy in `text`.
pub fn load(text: &str, opts: &LoadOptions) -> Loaded {
    let mut cx = Cx {
        diags: Vec::new(),
        positions: Positions::default(),
        version: opts.version,
    };
    let policy = cx.load(text).unwrap_or_default();
    let mut policy = policy;
    if cx
        .diags
        .iter()
        .all(|d| d.code != "not-a-policy" && d.code != "yaml-syntax" && d.code != "empty-file")
    {
        validate(&policy, opts.version, &cx.positions, &mut cx.diags);
        if policy.rules.is_empty() {
            cx.diags.push(Diagnostic {
                severity: Severity::Error,
                code: "no-rules",
                path: "rules".into(),
                pos: cx.positions.find("rules"),
                message: "the policy has no rules: kube-apiserver refuses it (\"loaded illegal policy with 0 rules\")"
                    .into(),
            });
        }
    }
    cx.diags.sort_by_key(|d| {
        (
            d.pos.map_or((u32::MAX, u32::MAX), |p| (p.line, p.col)),
            d.severity,
        )
    });
    policy.positions = cx.positions;
    Loaded {
        policy,
        diagnostics: cx.diags,
    }
}

struct Cx {
    diags: Vec<Diagnostic>,
    positions: Positions,
    version: K8sVersion,
}

impl Cx {
    fn diag(
        &mut self,
        severity: Severity,
        code: &'static str,
        path: &str,
        pos: Pos,
        message: String,
    ) {
        self.diags.push(Diagnostic {
            severity,
            code,
            path: path.to_string(),
            pos: Some(pos),
            message,
        });
    }

    fn type_error(&mut self, path: &str, node: &Node, expected: &str) {
        let found = node.value.kind_name();
        let hint = match (&node.value, expected) {
            (Value::Str(_) | Value::Int(_) | Value::Bool(_), e) if e.starts_with("a list") => {
                " (write it as a list: [value] or one \"- value\" per line)"
            }
            _ => "",
        };
        self.diag(
            Severity::Error,
            "wrong-type",
            path,
            node.pos,
            format!("expected {expected}, found {found}{hint}: kube-apiserver fails to decode the policy"),
        );
    }

    fn load(&mut self, text: &str) -> Option<Policy> {
        let doc = match yaml::parse(text) {
            Ok(d) => d,
            Err(e) => {
                self.diag(
                    Severity::Error,
                    "yaml-syntax",
                    "",
                    e.pos,
                    format!(
                        "YAML syntax error: {}: kube-apiserver fails with \"failed decoding\"",
                        e.message
                    ),
                );
                return None;
            }
        };
        let root = match doc.root {
            Some(r) if r.value != Value::Null => r,
            _ => {
                self.diags.push(Diagnostic {
                    severity: Severity::Error,
                    code: "empty-file",
                    path: String::new(),
                    pos: Some(Pos { line: 1, col: 1 }),
                    message: "the file holds no policy (empty, or only comments): kube-apiserver refuses to start; \
                              a policy needs apiVersion: audit.k8s.io/v1, kind: Policy and at least one rule"
                        .into(),
                });
                return None;
            }
        };
        if doc.extra_documents > 0 {
            self.diag(
                Severity::Warning,
                "extra-documents",
                "",
                root.pos,
                format!(
                    "{} more YAML document(s) after the first (after ---) are ignored: kube-apiserver reads only the first",
                    doc.extra_documents
                ),
            );
        }
        let Value::Map(entries) = &root.value else {
            self.diag(
                Severity::Error,
                "not-a-policy",
                "",
                root.pos,
                format!(
                    "not an audit policy: expected a mapping with apiVersion, kind and rules, found {}",
                    root.value.kind_name()
                ),
            );
            return None;
        };
        // apiVersion and kind first: kube-apiserver's decoder reads them before anything else.
        let last = |name: &str| entries.iter().rev().find(|(k, _)| k.name == name);
        let api_version = last("apiVersion").and_then(|(_, n)| self.string(n, "apiVersion"));
        let kind = last("kind").and_then(|(_, n)| self.string(n, "kind"));
        let av_pos = last("apiVersion").map_or(root.pos, |(_, n)| n.pos);
        let kind_pos = last("kind").map_or(root.pos, |(_, n)| n.pos);
        if !self.check_type_meta(
            api_version.as_deref(),
            kind.as_deref(),
            av_pos,
            kind_pos,
            root.pos,
        ) {
            return None;
        }
        let fields = self.fields(entries, "", TOP_KEYS, Scope::Top);
        let mut p = Policy::default();
        for (k, v) in fields {
            self.positions.0.insert(k.name.clone(), v.pos);
            match k.name.as_str() {
                "rules" => p.rules = self.rules(v),
                "omitStages" => p.omit_stages = self.str_list(v, "omitStages"),
                "omitManagedFields" => {
                    p.omit_managed_fields = self.boolean(v, "omitManagedFields").unwrap_or(false)
                }
                "metadata" => self.metadata(v),
                _ => {}
            }
        }
        Some(p)
    }

    /// Returns whether decoding should go on.
    fn check_type_meta(
        &mut self,
        av: Option<&str>,
        kind: Option<&str>,
        av_pos: Pos,
        kind_pos: Pos,
        root: Pos,
    ) -> bool {
        let fix = "start the file with \"apiVersion: audit.k8s.io/v1\" and \"kind: Policy\"";
        match (av, kind) {
            (None | Some(""), None | Some("")) => {
                self.diag(
                    Severity::Error,
                    "api-version",
                    "apiVersion",
                    root,
                    format!("apiVersion and kind are missing: kube-apiserver refuses the file (\"unknown group version field\"); {fix}"),
                );
                true
            }
            (None | Some(""), Some(k)) => {
                let m = if k == "Policy" {
                    format!(
                        "apiVersion is missing: kube-apiserver refuses the file (\"unknown group version field\"); {fix}"
                    )
                } else {
                    format!(
                        "apiVersion is missing and kind is {k:?}: this is not an audit policy; {fix}"
                    )
                };
                self.diag(Severity::Error, "api-version", "apiVersion", kind_pos, m);
                k == "Policy"
            }
            (Some(v), kind) => {
                let known_audit = matches!(
                    v,
                    "audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1"
                );
                if !v.starts_with("audit.k8s.io/") {
                    let what = match kind {
                        Some(k) if !k.is_empty() => format!("a {k} ({v})"),
                        _ => format!("an object of apiVersion {v}"),
                    };
                    self.diag(
                        Severity::Error,
                        "not-a-policy",
                        "apiVersion",
                        av_pos,
                        format!("this is {what}, not an audit policy: {fix}"),
                    );
                    return false;
                }
                if !known_audit {
                    self.diag(
                        Severity::Error,
                        "api-version",
                        "apiVersion",
                        av_pos,
                        format!("unknown version {v:?}: kube-apiserver reads only audit.k8s.io/v1 policies"),
                    );
                } else if v != "audit.k8s.io/v1" {
                    let ver = self.version;
                    if !ver.beta_policies() {
                        self.diag(
                            Severity::Error,
                            "api-version",
                            "apiVersion",
                            av_pos,
                            format!(
                                "{v} policies are refused by kube-apiserver since 1.24 (this check follows {ver}): \
                                 change it to audit.k8s.io/v1, the fields are the same"
                            ),
                        );
                    } else if ver.minor >= 21 {
                        self.diag(
                            Severity::Warning,
                            "api-version",
                            "apiVersion",
                            av_pos,
                            format!("{v} is deprecated (kube-apiserver {ver} warns) and refused from 1.24: use audit.k8s.io/v1"),
                        );
                    }
                }
                match kind {
                    None | Some("") | Some("Policy") => {}
                    Some(k) => self.diag(
                        Severity::Error,
                        "kind",
                        "kind",
                        kind_pos,
                        format!(
                            "kind {k:?} is not registered in {v}: an audit policy has kind: Policy"
                        ),
                    ),
                }
                true
            }
        }
    }

    /// The known fields of a mapping, last one winning; reports duplicates and unknown keys.
    fn fields<'n>(
        &mut self,
        entries: &'n [(Key, Node)],
        path: &str,
        known: &[&str],
        scope: Scope,
    ) -> Vec<(&'n Key, &'n Node)> {
        let mut seen = BTreeSet::new();
        let mut out: Vec<(&Key, &Node)> = Vec::new();
        for (i, (k, v)) in entries.iter().enumerate() {
            let fpath = join(path, &k.name);
            // omitManagedFields exists only from the release that added it.
            let in_version = k.name != "omitManagedFields" || self.version.omit_managed_fields();
            let is_known = known.contains(&k.name.as_str()) && in_version;
            if !is_known {
                let m = unknown_field_message(&k.name, scope.clone(), self.version);
                self.diag(Severity::Warning, "unknown-field", &fpath, k.pos, m);
                continue;
            }
            if entries[i + 1..].iter().any(|(k2, _)| k2.name == k.name) {
                self.diag(
                    Severity::Warning,
                    "duplicate-key",
                    &fpath,
                    k.pos,
                    format!("{:?} is set again later in the same mapping: kube-apiserver keeps only the last value", k.name),
                );
                continue;
            }
            if seen.insert(k.name.as_str()) {
                out.push((k, v));
            }
        }
        out
    }

    fn rules(&mut self, node: &Node) -> Vec<PolicyRule> {
        let items = match &node.value {
            Value::Null => return vec![],
            Value::Seq(items) => items,
            _ => {
                self.type_error("rules", node, "a list of rules");
                return vec![];
            }
        };
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("rules[{i}]");
            self.positions.0.insert(path.clone(), item.pos);
            let mut r = PolicyRule::default();
            match &item.value {
                Value::Map(entries) => {
                    for (k, v) in self.fields(entries, &path, RULE_KEYS, Scope::Rule(i)) {
                        let fpath = join(&path, &k.name);
                        self.positions.0.insert(fpath.clone(), v.pos);
                        match k.name.as_str() {
                            "level" => r.level = self.string(v, &fpath).unwrap_or_default(),
                            "users" => r.users = self.str_list(v, &fpath),
                            "userGroups" => r.user_groups = self.str_list(v, &fpath),
                            "verbs" => r.verbs = self.str_list(v, &fpath),
                            "namespaces" => r.namespaces = self.str_list(v, &fpath),
                            "nonResourceURLs" => r.non_resource_urls = self.str_list(v, &fpath),
                            "omitStages" => r.omit_stages = self.str_list(v, &fpath),
                            "omitManagedFields" => r.omit_managed_fields = self.boolean(v, &fpath),
                            "resources" => r.resources = self.group_resources(v, &fpath, i),
                            _ => {}
                        }
                    }
                }
                Value::Null => {}
                _ => self.type_error(&path, item, "a rule (a mapping with level and conditions)"),
            }
            rules.push(r);
        }
        rules
    }

    fn group_resources(&mut self, node: &Node, path: &str, rule: usize) -> Vec<GroupResources> {
        let items = match &node.value {
            Value::Null => return vec![],
            Value::Seq(items) => items,
            _ => {
                self.type_error(
                    path,
                    node,
                    "a list of {group, resources, resourceNames} entries",
                );
                return vec![];
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            let epath = format!("{path}[{j}]");
            self.positions.0.insert(epath.clone(), item.pos);
            let mut gr = GroupResources::default();
            match &item.value {
                Value::Map(entries) => {
                    let group_name = entries
                        .iter()
                        .rev()
                        .find(|(k, _)| k.name == "group")
                        .and_then(|(_, v)| v.value.as_coerced_str().map(|s| s.into_owned()))
                        .unwrap_or_default();
                    for (k, v) in
                        self.fields(entries, &epath, GR_KEYS, Scope::Resources(rule, group_name))
                    {
                        let fpath = join(&epath, &k.name);
                        self.positions.0.insert(fpath.clone(), v.pos);
                        match k.name.as_str() {
                            "group" => gr.group = self.string(v, &fpath).unwrap_or_default(),
                            "resources" => gr.resources = self.str_list(v, &fpath),
                            "resourceNames" => gr.resource_names = self.str_list(v, &fpath),
                            _ => {}
                        }
                    }
                }
                Value::Null => {}
                _ => self.type_error(
                    &epath,
                    item,
                    "a mapping with group, resources and resourceNames",
                ),
            }
            out.push(gr);
        }
        out
    }

    fn metadata(&mut self, node: &Node) {
        match &node.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (k, v) in self.fields(entries, "metadata", META_KEYS, Scope::Metadata) {
                    let p = join("metadata", &k.name);
                    match k.name.as_str() {
                        "labels" | "annotations" => match &v.value {
                            Value::Null => {}
                            Value::Map(m) => {
                                for (k2, v2) in m {
                                    if v2.value.as_coerced_str().is_none()
                                        && v2.value != Value::Null
                                    {
                                        self.type_error(&join(&p, &k2.name), v2, "a string");
                                    }
                                }
                            }
                            _ => self.type_error(&p, v, "a mapping of strings"),
                        },
                        "name" | "namespace" | "generateName" | "uid" | "resourceVersion" => {
                            self.string(v, &p);
                        }
                        _ => {}
                    }
                }
            }
            _ => self.type_error("metadata", node, "a mapping (object metadata)"),
        }
    }

    /// A string field: scalars are coerced as sigs.k8s.io/yaml does; null is "".
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Null => None,
            v => match v.as_coerced_str() {
                Some(s) => Some(s.into_owned()),
                None => {
                    self.type_error(path, node, "a string");
                    None
                }
            },
        }
    }

    fn str_list(&mut self, node: &Node, path: &str) -> Vec<String> {
        match &node.value {
            Value::Null => vec![],
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    let p = format!("{path}[{i}]");
                    self.positions.0.insert(p.clone(), it.pos);
                    self.string(it, &p).unwrap_or_default()
                })
                .collect(),
            _ => {
                self.type_error(path, node, "a list of strings");
                vec![]
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match &node.value {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            _ => {
                let m = if matches!(node.value, Value::Str(_)) {
                    "a boolean (true or false, unquoted)"
                } else {
                    "a boolean (true or false)"
                };
                self.type_error(path, node, m);
                None
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Where an unknown key was found.
#[derive(Clone, Debug)]
enum Scope {
    Top,
    Metadata,
    Rule(usize),
    Resources(usize, String),
}

/// What dropping a filter field does to a rule.
fn widening(field: &str) -> Option<&'static str> {
    Some(match field {
        "users" => "every user",
        "userGroups" => "users of every group",
        "verbs" => "every verb",
        "namespaces" => "every namespace",
        "resources" => "every resource",
        "nonResourceURLs" => "every non-resource URL",
        "resourceNames" => "every object name",
        _ => return None,
    })
}

fn unknown_field_message(name: &str, scope: Scope, version: K8sVersion) -> String {
    let dropped = if version.strict_decoding() {
        "kube-apiserver drops it (lenient decoding, with a warning in its log)"
    } else {
        "kube-apiserver drops it silently"
    };
    if name == "omitManagedFields" && !version.omit_managed_fields() {
        return format!(
            "omitManagedFields does not exist before Kubernetes 1.23 (this check follows {version}): {dropped}"
        );
    }
    match scope {
        Scope::Resources(rule, group) => {
            let group_desc = if group.is_empty() {
                "the core group".to_string()
            } else {
                format!("group {group:?}")
            };
            if RULE_KEYS.contains(&name) {
                let effect = widening(name)
                    .map(|w| format!(", so rule {rule} applies to {w}"))
                    .unwrap_or_default();
                return format!(
                    "misplaced: {name:?} is a field of the rule, not of a resources entry (indent it to line up with \"resources:\"); {dropped}{effect}"
                );
            }
            if let Some(s) = suggest(name, GR_KEYS) {
                let effect = match s {
                    "resources" => format!(
                        ", so this entry covers every resource of {group_desc} (rule {rule} is widened)"
                    ),
                    "resourceNames" => format!(
                        ", so this entry matches every object name (rule {rule} is widened)"
                    ),
                    "group" => ", so this entry means the core group (\"\")".to_string(),
                    _ => String::new(),
                };
                return format!("unknown field; did you mean {s:?}? {dropped}{effect}");
            }
            format!(
                "unknown field in a resources entry (known: group, resources, resourceNames): {dropped}"
            )
        }
        Scope::Rule(rule) => {
            if let Some(s) = suggest(name, RULE_KEYS) {
                let effect = match widening(s) {
                    Some(w) => format!(", so rule {rule} applies to {w}"),
                    None if s == "level" => format!(", so rule {rule} has no level"),
                    None if s == "omitStages" => {
                        ", so no stage is omitted by this rule".to_string()
                    }
                    None => String::new(),
                };
                return format!("unknown field; did you mean {s:?}? {dropped}{effect}");
            }
            if GR_KEYS.contains(&name) {
                return format!(
                    "misplaced: {name:?} belongs inside a resources entry (resources: [{{group: ..., resources: [...]}}]); {dropped}"
                );
            }
            format!("unknown field in a rule: {dropped}")
        }
        Scope::Top => {
            if let Some(s) = suggest(name, TOP_KEYS) {
                return format!("unknown field; did you mean {s:?}? {dropped}");
            }
            if RULE_KEYS.contains(&name) {
                return format!(
                    "misplaced: {name:?} is a field of a rule (under rules:), not of the policy; {dropped}"
                );
            }
            format!(
                "unknown field in the policy (known: {}): {dropped}",
                TOP_KEYS.join(", ")
            )
        }
        Scope::Metadata => format!("unknown field in metadata: {dropped}"),
    }
}

/// A known key `name` is probably a misspelling of.
fn suggest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .copied()
        .map(|k| {
            let kl = k.to_ascii_lowercase();
            let d = if kl == lower || kl == format!("{lower}s") || format!("{kl}s") == lower {
                0
            } else {
                edit_distance(&lower, &kl)
            };
            (d, k)
        })
        .filter(|(d, k)| *d <= if k.len() > 6 { 2 } else { 1 })
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
