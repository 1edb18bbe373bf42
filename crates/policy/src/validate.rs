//! Validation, as `pkg/apis/audit/validation/validation.go` does it: every error, with its
//! field path and kube-apiserver's own wording.

use crate::diag::{Diagnostic, Severity};
use crate::policy::{Policy, Positions};
use crate::version::K8sVersion;

const LEVELS: [&str; 4] = ["None", "Metadata", "Request", "RequestResponse"];
const STAGES: [&str; 4] = [
    "RequestReceived",
    "ResponseStarted",
    "ResponseComplete",
    "Panic",
];

/// Appends a diagnostic for every validation error of `p`.
pub fn validate(p: &Policy, version: K8sVersion, pos: &Positions, out: &mut Vec<Diagnostic>) {
    let mut err = |path: String, message: String| {
        out.push(Diagnostic {
            severity: Severity::Error,
            code: "invalid",
            pos: pos.find(&path),
            path,
            message,
        })
    };
    omit_stages(&p.omit_stages, "omitStages", &mut err);
    for (i, r) in p.rules.iter().enumerate() {
        let rp = format!("rules[{i}]");
        let lp = format!("{rp}.level");
        if r.level.is_empty() {
            err(lp, "Required value: every rule needs a level (None, Metadata, Request or RequestResponse)".into());
        } else if !LEVELS.contains(&r.level.as_str()) {
            let hint = LEVELS
                .iter()
                .find(|l| l.eq_ignore_ascii_case(&r.level))
                .map(|l| format!(" (levels are case-sensitive: write {l})"))
                .unwrap_or_default();
            err(
                lp,
                format!(
                    "Unsupported value: {:?}: supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\"{hint}",
                    r.level
                ),
            );
        }
        for (j, u) in r.non_resource_urls.iter().enumerate() {
            if u == "*" {
                continue;
            }
            let up = format!("{rp}.nonResourceURLs[{j}]");
            if !u.starts_with('/') {
                err(
                    up.clone(),
                    format!(
                        "Invalid value: {u:?}: non-resource URL rules must begin with a '/' character"
                    ),
                );
            }
            if !u.is_empty() && u[..u.len() - 1].contains('*') {
                err(
                    up,
                    format!(
                        "Invalid value: {u:?}: non-resource URL wildcards '*' must be the final character of the rule"
                    ),
                );
            }
        }
        for (j, gr) in r.resources.iter().enumerate() {
            // kube-apiserver's path has no index here (rules[i].resources.group); ours adds it,
            // so the position points at the right entry.
            let gp = format!("{rp}.resources[{j}].group");
            let wildcard = gr.group == "*" && version.group_wildcard();
            if !(gr.group.is_empty() || wildcard) {
                let msgs = dns1123_subdomain(&gr.group);
                if !msgs.is_empty() {
                    let extra = if gr.group == "*" {
                        format!(
                            " (group \"*\" is accepted from Kubernetes 1.36; this check follows {version})"
                        )
                    } else if let Some((g, _)) = gr.group.split_once('/') {
                        format!(" (a group has no version: write {g:?})")
                    } else {
                        String::new()
                    };
                    err(
                        gp,
                        format!("Invalid value: {:?}: {}{extra}", gr.group, msgs.join(",")),
                    );
                }
            }
            if !gr.resource_names.is_empty() && gr.resources.is_empty() {
                err(
                    format!("{rp}.resources[{j}].resourceNames"),
                    format!(
                        "Invalid value: {:?}: using resourceNames requires at least one resource",
                        gr.resource_names
                    ),
                );
            }
        }
        omit_stages(&r.omit_stages, &format!("{rp}.omitStages"), &mut err);
        if !r.non_resource_urls.is_empty() && (!r.resources.is_empty() || !r.namespaces.is_empty())
        {
            err(
                format!("{rp}.nonResourceURLs"),
                format!(
                    "Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
                    r.non_resource_urls
                ),
            );
        }
    }
}

fn omit_stages(stages: &[String], path: &str, err: &mut impl FnMut(String, String)) {
    for (i, s) in stages.iter().enumerate() {
        if !STAGES.contains(&s.as_str()) {
            err(
                format!("{path}[{i}]"),
                format!(
                    "Invalid value: {s:?}: allowed stages are {}",
                    STAGES.join(",")
                ),
            );
        }
    }
}

/// `validation.IsDNS1123Subdomain`'s messages (empty when valid).
fn dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    };
    if !v.split('.').all(label_ok) {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string(),
        );
    }
    errs
}
