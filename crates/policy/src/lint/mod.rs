//! `kaudit policy lint`: what a policy gets wrong that kube-apiserver accepts.
//!
//! Each finding has a [`Severity`], a stable code (documented in `docs/policy-lint.md`), the
//! rule it is about and a fix. The checks:
//!
//! - `shadowed`, `partly-shadowed`, `catch-all-not-last`, `never-matches`: decided exactly over
//!   the request space ([`space`]);
//! - `resource-names-never-match`, `resource-names-miss-creates`: `resourceNames` cannot see
//!   creates and lists (their name is empty when the policy runs);
//! - coverage, noise and leaks: the policy is evaluated, with the real evaluator, on probe
//!   requests that stand for what matters (secret reads, RBAC writes, exec, failed logins...)
//!   and for the noisiest traffic of a real cluster;
//! - whatever loading found (unknown fields, deprecated versions) and, for a policy that would
//!   not load, its errors.

mod probes;
pub mod space;

use kaudit_model::{Level, Stage};

use crate::diag::Severity;
use crate::eval::Evaluator;
use crate::load::Loaded;
use crate::version::K8sVersion;
use space::Space;

/// One lint finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// Stable code.
    pub code: &'static str,
    /// The 0-based rule index it is about, if one.
    pub rule: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip)]
    pub fix: String,
}

/// Pieces past which the shadowing analysis of one rule gives up.
const CUBE_LIMIT: usize = 50_000;

/// Lints a loaded policy.
pub fn lint(loaded: &Loaded, version: K8sVersion) -> Vec<Finding> {
    let mut out: Vec<Finding> = loaded
        .diagnostics
        .iter()
        .map(|d| Finding {
            severity: d.severity,
            code: d.code,
            rule: rule_of_path(&d.path),
            message: if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            },
            fix: match d.severity {
                Severity::Error => "kube-apiserver refuses the policy until this is fixed".into(),
                _ => "see `kaudit policy check`".into(),
            },
        })
        .collect();
    if !loaded.is_valid() {
        return out;
    }
    let p = &loaded.policy;
    let Ok(ev) = Evaluator::new(p, version) else {
        return out;
    };
    shadowing(p, version, &mut out);
    resource_names(p, &mut out);
    probes::run(p, &ev, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.rule.cmp(&b.rule))
            .then(a.code.cmp(b.code))
    });
    out
}

fn rule_of_path(path: &str) -> Option<usize> {
    path.strip_prefix("rules[")?.split(']').next()?.parse().ok()
}

fn level_of(p: &crate::Policy, i: usize) -> Level {
    p.rules[i].level.parse().unwrap_or(Level::None)
}

fn shadowing(p: &crate::Policy, version: K8sVersion, out: &mut Vec<Finding>) {
    let space = Space::new(p, version.group_wildcard());
    let cubes: Vec<Vec<space::Cube>> = p.rules.iter().map(|r| space.rule(r)).collect();
    let n = p.rules.len();
    if let Some(c) = p.rules.iter().position(|r| r.is_catch_all())
        && c + 1 < n
    {
        out.push(Finding {
                severity: Severity::Warning,
                code: "catch-all-not-last",
                rule: Some(c),
                message: format!(
                    "rule {c} has no conditions, so it decides every request: rules {}..{} after it never match",
                    c + 1,
                    n - 1
                ),
                fix: format!("move rule {c} to the end, or give it conditions"),
            });
    }
    let catch_all = p
        .rules
        .iter()
        .position(|r| r.is_catch_all())
        .unwrap_or(usize::MAX);
    for j in 0..n {
        if j > catch_all {
            continue; // reported once, by catch-all-not-last
        }
        if cubes[j].is_empty() {
            out.push(Finding {
                severity: Severity::Warning,
                code: "never-matches",
                rule: Some(j),
                message: format!("rule {j} can match no request (its resources patterns match nothing a request can name, such as \"pods/log/extra\" or \"\")"),
                fix: "write resources as \"resource\", \"resource/subresource\", \"*\", \"*/subresource\" or \"resource/*\"".into(),
            });
            continue;
        }
        let mut remaining = cubes[j].clone();
        let mut winners: Vec<usize> = Vec::new();
        let mut gave_up = false;
        for (i, earlier) in cubes.iter().enumerate().take(j) {
            if !remaining
                .iter()
                .any(|a| earlier.iter().any(|b| space::overlaps(a, b)))
            {
                continue;
            }
            winners.push(i);
            match space::subtract_all(std::mem::take(&mut remaining), earlier, CUBE_LIMIT) {
                Some(r) => remaining = r,
                None => {
                    gave_up = true;
                    break;
                }
            }
            if remaining.is_empty() {
                break;
            }
        }
        if gave_up {
            out.push(Finding {
                severity: Severity::Info,
                code: "shadow-analysis-skipped",
                rule: Some(j),
                message: format!("rule {j} overlaps earlier rules in too many ways to decide exactly whether it is shadowed"),
                fix: "simplify the rules before it, or check it with `kaudit policy simulate` on real traffic".into(),
            });
            continue;
        }
        let lj = level_of(p, j);
        if remaining.is_empty() {
            let list = winners
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let same = winners.iter().all(|w| level_of(p, *w) == lj);
            out.push(Finding {
                severity: Severity::Warning,
                code: "shadowed",
                rule: Some(j),
                message: format!(
                    "rule {j} ({lj}) never matches: every request it covers is decided first by rule{} {list}{}",
                    if winners.len() == 1 { "" } else { "s" },
                    if same { " (with the same level, so it is redundant)" } else { "" }
                ),
                fix: format!("move rule {j} before rule {} or delete it", winners[0]),
            });
            continue;
        }
        // Partly shadowed: an earlier rule with a different decision takes part of this one.
        for &i in &winners {
            let differs = level_of(p, i) != lj
                || p.rules[i].omit_stages != p.rules[j].omit_stages
                || p.rules[i].omit_managed_fields != p.rules[j].omit_managed_fields;
            if !differs {
                continue;
            }
            // An earlier rule that lies wholly inside this one is an exception carved out of
            // it, the normal way to write a policy; only rules that cross it are reported.
            if space::subtract_all(cubes[i].clone(), &cubes[j], CUBE_LIMIT)
                .is_some_and(|r| r.is_empty())
            {
                continue;
            }
            let example = cubes[j]
                .iter()
                .flat_map(|a| cubes[i].iter().map(move |b| (a, b)))
                .find(|(a, b)| space::overlaps(a, b))
                .map(|(a, b)| space::describe(&space::intersect(a, b)))
                .unwrap_or_default();
            out.push(Finding {
                severity: Severity::Info,
                code: "partly-shadowed",
                rule: Some(j),
                message: format!(
                    "part of rule {j} ({lj}) is decided first by rule {i} ({}), e.g. {example}",
                    level_of(p, i)
                ),
                fix: format!("if rule {j} should win there, move it before rule {i}"),
            });
        }
    }
}

fn resource_names(p: &crate::Policy, out: &mut Vec<Finding>) {
    const NAMELESS: [&str; 4] = ["create", "list", "watch", "deletecollection"];
    for (i, r) in p.rules.iter().enumerate() {
        if !r.resources.iter().any(|g| !g.resource_names.is_empty()) {
            continue;
        }
        if !r.verbs.is_empty() && r.verbs.iter().all(|v| NAMELESS.contains(&v.as_str())) {
            out.push(Finding {
                severity: Severity::Warning,
                code: "resource-names-never-match",
                rule: Some(i),
                message: format!(
                    "rule {i} names objects (resourceNames) but only for {}: when the policy runs these requests have no name (a list or watch has one only with fieldSelector=metadata.name=…), so the rule practically never matches",
                    r.verbs.join(", ")
                ),
                fix: "drop resourceNames for these verbs (put them in a separate rule without resourceNames)".into(),
            });
        } else if r.verbs.is_empty() || r.verbs.iter().any(|v| NAMELESS.contains(&v.as_str())) {
            out.push(Finding {
                severity: Severity::Info,
                code: "resource-names-miss-creates",
                rule: Some(i),
                message: format!(
                    "rule {i} uses resourceNames: creates and lists of those objects are not matched by it (their name is empty when the policy runs) and fall through to later rules"
                ),
                fix: "add a rule for create/list on the same resources without resourceNames if they matter".into(),
            });
        }
    }
}

/// The worst severity among findings.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

pub(crate) fn stage_kept(d: &crate::Decision, s: Stage) -> bool {
    d.records(s)
}
