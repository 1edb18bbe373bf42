//! `kaudit detect` and `kaudit rules`.

use crate::{kaudit, p, text, tmp};

#[test]
fn detect_and_rules() {
    // The exec capture alerts once, as JSON lines.
    let o = kaudit(
        &[
            "detect",
            "--output",
            "ndjson",
            &p("test_data/events/falco-trace-files/exec_pod.json"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(&o.stdout));
    assert_eq!(lines[0]["rule"], "k8s.exec.pod");
    assert_eq!(lines[0]["severity"], "medium");
    assert!(
        lines[0]["message"].as_str().unwrap().contains(": bash"),
        "{}",
        lines[0]
    );
    assert!(text(&o.stderr).contains("1 events"), "{}", text(&o.stderr));

    // A Metadata-only input says that body rules could not match.
    let o = kaudit(
        &["detect", &p("test_data/events/audit2rbac/demo.log")],
        None,
    );
    assert!(o.status.success());
    assert!(
        text(&o.stderr).contains("no event carried a request body"),
        "{}",
        text(&o.stderr)
    );

    // User rules: an override silences the pack's exec rule, a new rule fires instead.
    let dir = tmp("rules");
    std::fs::write(
        dir.join("mine.yaml"),
        "overrides:\n  - id: k8s.exec.pod\n    enabled: false\nrules:\n  - id: acme.exec\n    title: Exec by minikube-user\n    severity: high\n    mitre: [T1609]\n    description: test\n    detection:\n      sel: {objectRef.subresource: exec, user.username: minikube-user}\n      condition: sel\n    tests:\n      - name: hit\n        event: {auditID: a, verb: create, user: {username: minikube-user}, objectRef: {resource: pods, subresource: exec}}\n      - name: miss\n        alerts: 0\n        event: {auditID: b, verb: create, user: {username: bob}, objectRef: {resource: pods, subresource: exec}}\n",
    )
    .unwrap();
    let d = dir.to_string_lossy().into_owned();
    let o = kaudit(
        &[
            "detect",
            "--rules",
            &d,
            "--output",
            "json",
            &p("test_data/events/falco-trace-files/exec_pod.json"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let arr: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = arr.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["acme.exec"]);
    let o = kaudit(&["rules", "test", "--rules", &d], None);
    assert!(o.status.success(), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("0 failed"), "{}", text(&o.stdout));

    // A failing rule test: exit 1 and the failure named.
    std::fs::write(
        dir.join("mine.yaml"),
        "rules:\n  - id: acme.bad\n    title: t\n    severity: low\n    description: d\n    detection: {sel: {verb: delete}}\n    tests:\n      - name: wrong\n        event: {auditID: a, verb: get}\n",
    )
    .unwrap();
    let o = kaudit(&["rules", "test", "--rules", &d], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("FAIL acme.bad / wrong: expected 1 alert(s), got 0"),
        "{}",
        text(&o.stdout)
    );

    // A broken rule file: the file and the problem named, exit 2.
    std::fs::write(dir.join("mine.yaml"), "rules:\n  - id: x\n    title: t\n    severity: low\n    detection: {sel: {objectRef.resorce: pods}}\n").unwrap();
    let o = kaudit(&["rules", "list", "--rules", &d], None);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("mine.yaml") && e.contains("unknown field \"objectRef.resorce\""),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
