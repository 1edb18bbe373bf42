//! Sigma rules for Kubernetes audit logs load and run; other log sources are skipped with a
//! reason. The rules below are written in Sigma's format the way SigmaHQ's Kubernetes rules
//! are (field names, the bare `apiGroup` and pseudo-field `hostPath` quirks, `1 of`, an
//! aggregation).

use std::ops::ControlFlow;
use std::sync::Arc;

use kaudit_detect::{Engine, Source, load};

const RULES: &str = r#"
title: Remote command execution in a pod
id: 1b4c8a53-0000-4000-8000-000000000001
status: test
logsource:
  category: application
  product: kubernetes
  service: audit
detection:
  selection:
    verb: create
    objectRef.resource: pods
    objectRef.subresource: exec
  condition: selection
level: medium
tags:
  - attack.execution
  - attack.t1609
  - attack.tä
---
title: Admission controller modification
id: 1b4c8a53-0000-4000-8000-000000000002
logsource:
  product: kubernetes
  service: audit
detection:
  selection:
    apiGroup: admissionregistration.k8s.io
    objectRef.resource:
      - mutatingwebhookconfigurations
      - validatingwebhookconfigurations
    verb:
      - create
      - delete
      - patch
      - replace
      - update
  condition: selection
level: medium
---
title: Container with a hostPath mount
id: 1b4c8a53-0000-4000-8000-000000000003
logsource:
  product: kubernetes
  service: audit
detection:
  selection:
    verb: create
    objectRef.resource: pods
    hostPath: '*'
  condition: selection
level: low
---
title: Unauthorized access burst
id: 1b4c8a53-0000-4000-8000-000000000004
logsource:
  product: kubernetes
  service: audit
detection:
  sel_401:
    responseStatus.code: 401
  sel_403:
    responseStatus.code: 403
  timeframe: 5m
  condition: 1 of sel_* | count() by sourceIPs > 2
level: low
---
title: A Windows rule
logsource:
  product: windows
  service: security
detection:
  selection:
    EventID: 4625
  condition: selection
"#;

fn run(events: &[&str]) -> Vec<String> {
    let set = load(&[Source {
        name: "sigma.yml".into(),
        text: RULES.into(),
    }])
    .unwrap();
    assert_eq!(set.rules.len(), 4);
    assert_eq!(set.skipped.len(), 1, "{:?}", set.skipped);
    assert!(set.skipped[0].contains("not Kubernetes audit"));
    assert!(set.rules.iter().all(|r| r.sigma));
    assert_eq!(set.rules[0].mitre, vec!["T1609"]);
    let mut engine = Engine::new(Arc::new(set));
    let mut alerts = Vec::new();
    for e in events {
        kaudit_model::decode::decode_slice(e.as_bytes(), |r| {
            let r = r.unwrap();
            engine.process(&r.event, r.raw, &mut alerts);
            ControlFlow::Continue(())
        });
    }
    alerts.into_iter().map(|a| a.title).collect()
}

#[test]
fn sigma_rules_run() {
    assert_eq!(
        run(&[
            r#"{"auditID":"1","stage":"ResponseStarted","verb":"create","objectRef":{"resource":"pods","subresource":"exec","namespace":"a","name":"p"},"responseStatus":{"code":101}}"#
        ]),
        ["Remote command execution in a pod"]
    );
    assert_eq!(
        run(&[
            r#"{"auditID":"2","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"mutatingwebhookconfigurations","apiGroup":"admissionregistration.k8s.io","name":"x"},"responseStatus":{"code":201}}"#
        ]),
        ["Admission controller modification"]
    );
    assert_eq!(
        run(&[
            r#"{"auditID":"3","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"pods","namespace":"a"},"responseStatus":{"code":201},"requestObject":{"kind":"Pod","spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}],"containers":[{"name":"c","image":"x"}]}}}"#
        ]),
        ["Container with a hostPath mount"]
    );
    // No hostPath: nothing.
    assert!(run(&[r#"{"auditID":"4","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"pods","namespace":"a"},"responseStatus":{"code":201},"requestObject":{"kind":"Pod","spec":{"containers":[{"name":"c","image":"x"}]}}}"#]).is_empty());
    // The aggregation: more than 2 refusals from one address within 5 minutes.
    let burst: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"auditID":"b{i}","stage":"ResponseComplete","stageTimestamp":"2026-01-01T10:00:0{i}Z","verb":"get","sourceIPs":["198.51.100.1"],"requestURI":"/api","responseStatus":{{"code":{}}}}}"#, if i == 1 { 403 } else { 401 }))
        .collect();
    let refs: Vec<&str> = burst.iter().map(String::as_str).collect();
    assert_eq!(run(&refs), ["Unauthorized access burst"]);
    assert!(run(&refs[..2]).is_empty());
}

#[test]
fn sigma_errors_name_the_rule() {
    let bad = "title: Broken\nlogsource: {product: kubernetes, service: audit}\ndetection:\n  sel: {verb|frobnicate: x}\n  condition: sel\n";
    let e = load(&[Source {
        name: "bad.yml".into(),
        text: bad.into(),
    }])
    .unwrap_err();
    assert!(
        e.contains("bad.yml") && e.contains("unknown modifier"),
        "{e}"
    );
}
