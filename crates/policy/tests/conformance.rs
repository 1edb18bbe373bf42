//! The 235 policy vectors (`test_data/conformance/policy-vectors.json`): every checker case
//! evaluates to the expected decision and every validation case loads, or fails at the
//! expected step, under each Kubernetes version it applies to.

use kaudit_model::{Stage, StageSet, Text};
use kaudit_policy::{Attributes, Evaluator, K8sVersion, LoadOptions, Severity, User, load};
use serde_json::Value;
use std::borrow::Cow;

fn versions(applies_to: &str) -> Vec<K8sVersion> {
    let v = |m| K8sVersion { minor: m };
    match applies_to {
        "all" | ">=1.24" => vec![v(28), v(36)],
        ">=1.36" => vec![v(36)],
        "<=1.35" => vec![v(28), v(35)],
        other => panic!("unknown appliesTo {other}"),
    }
}

fn policy_text(case: &Value) -> String {
    if let Some(t) = case["policyText"].as_str() {
        return t.to_string();
    }
    match &case["policy"] {
        Value::Null => String::new(),
        p => serde_json::to_string_pretty(p).unwrap(),
    }
}

fn s(v: &Value) -> Cow<'_, str> {
    Cow::Borrowed(v.as_str().unwrap_or(""))
}

#[test]
fn conformance_vectors() {
    let data = std::fs::read_to_string(
        kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
            .join("test_data/conformance/policy-vectors.json"),
    )
    .unwrap();
    let cases: Vec<Value> = serde_json::from_str(&data).unwrap();
    assert_eq!(cases.len(), 235);
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        for version in versions(case["appliesTo"].as_str().unwrap()) {
            runs += 1;
            let loaded = load(&policy_text(case), &LoadOptions { version });
            let at = format!("{name} @{version}");
            match case["kind"].as_str().unwrap() {
                "checker" => {
                    checker(case, &loaded, version, &at, &mut failures);
                    // A checker vector's policy loads (only warnings at worst), unless the
                    // vector says kube-apiserver would refuse it (it is evaluated anyway).
                    let refused = case["note"]
                        .as_str()
                        .is_some_and(|n| n.contains("would refuse"));
                    let worst = loaded.diagnostics.iter().map(|d| d.severity).max();
                    if refused != (worst == Some(Severity::Error)) {
                        failures.push(format!(
                            "{at}: worst diagnostic {worst:?}, but the vector says it is {}",
                            if refused { "refused" } else { "accepted" }
                        ));
                    }
                }
                "validation" => validation(case, &loaded, &at, &mut failures),
                k => panic!("unknown kind {k}"),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(runs >= 235);
}

/// A checker case: the request evaluates to the expected decision (and the candidate index
/// picks the rule a plain scan picks).
fn checker(
    case: &Value,
    loaded: &kaudit_policy::Loaded,
    version: K8sVersion,
    at: &str,
    failures: &mut Vec<String>,
) {
    let ev = match Evaluator::new(&loaded.policy, version) {
        Ok(e) => e,
        Err(e) => {
            failures.push(format!("{at}: does not compile: {e}"));
            return;
        }
    };
    let r = &case["request"];
    let groups: Vec<Text<'_>> = r["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .map(|x| Text::borrowed(x.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let attrs = Attributes {
        user: r["user"].as_str().map(|u| User {
            name: u,
            groups: &groups,
        }),
        verb: s(&r["verb"]),
        namespace: s(&r["namespace"]),
        api_group: s(&r["apiGroup"]),
        api_version: s(&r["apiVersion"]),
        resource: s(&r["resource"]),
        subresource: s(&r["subresource"]),
        name: s(&r["name"]),
        path: s(&r["path"]),
        resource_request: r["resourceRequest"].as_bool().unwrap(),
    };
    let d = ev.evaluate(&attrs);
    // The candidate index only prunes: the first rule that matches on its own is the one the
    // indexed evaluation picked.
    let linear = (0..ev.len()).find(|&i| ev.rule_matches(i, &attrs));
    assert_eq!(d.rule, linear, "{at}: index disagrees");
    let e = &case["expect"];
    let want_stages: StageSet = e["omitStages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().parse::<Stage>().unwrap())
        .collect();
    let got = (d.level.as_str(), d.omit_stages, d.omit_managed_fields);
    let want = (
        e["level"].as_str().unwrap(),
        want_stages,
        e["omitManagedFields"].as_bool().unwrap(),
    );
    if got != want {
        failures.push(format!("{at}: got {got:?}, want {want:?}"));
    }
}

/// A validation case: the policy loads, or fails at the expected step (and, where the case
/// names a field path, with an error at that path).
fn validation(case: &Value, loaded: &kaudit_policy::Loaded, at: &str, failures: &mut Vec<String>) {
    let valid = case["valid"].as_bool().unwrap();
    if loaded.is_valid() != valid {
        let diags: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| d.render("policy"))
            .collect();
        failures.push(format!(
            "{at}: valid={} want {valid}: {diags:?}",
            loaded.is_valid()
        ));
        return;
    }
    if valid {
        return;
    }
    let codes: Vec<&str> = loaded.errors().map(|d| d.code).collect();
    let step_ok = match case["failsAt"].as_str().unwrap() {
        "decode" => codes.iter().any(|c| {
            matches!(
                *c,
                "yaml-syntax"
                    | "empty-file"
                    | "not-a-policy"
                    | "api-version"
                    | "kind"
                    | "wrong-type"
            )
        }),
        "validation" => codes.contains(&"invalid"),
        "rule-count" => codes == ["no-rules"],
        other => panic!("{other}"),
    };
    if !step_ok {
        failures.push(format!(
            "{at}: failed with {codes:?}, want failure at {}",
            case["failsAt"]
        ));
    }
    let why = case["why"].as_str().unwrap_or("");
    if let Some((path, _)) = why.split_once(": ")
        && (path.starts_with("rules[") || path.starts_with("omitStages"))
    {
        let norm = |p: &str| {
            p.split('.')
                .map(|s| {
                    if s.starts_with("resources[") {
                        "resources"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        if !loaded.errors().any(|d| norm(&d.path) == path) {
            let paths: Vec<&str> = loaded.errors().map(|d| d.path.as_str()).collect();
            failures.push(format!("{at}: no error at {path} (errors at {paths:?})"));
        }
    }
}
