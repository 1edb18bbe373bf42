//! `kaudit policy …` and `kaudit gen`.

use crate::{kaudit, p, text, tmp};

#[test]
fn check_exit_codes_and_locations() {
    let dir = tmp("check");
    for prof in ["recipe", "hardened", "gce", "openshift-default"] {
        let out = kaudit(&["policy", "init", "--profile", prof], None);
        assert!(out.status.success());
        let f = dir.join(format!("{prof}.yaml"));
        std::fs::write(&f, &out.stdout).unwrap();
        let c = kaudit(&["policy", "check", f.to_str().unwrap()], None);
        assert_eq!(c.status.code(), Some(0), "{prof}: {}", text(&c.stdout));
        assert!(text(&c.stdout).contains("would start with this policy"));
    }
    let bad = p("crates/policy/test_data/check/many-errors.yaml");
    let c = kaudit(&["policy", "check", &bad], None);
    assert_eq!(c.status.code(), Some(1));
    let s = text(&c.stdout);
    assert!(
        s.contains("many-errors.yaml:8:12: error: rules[1].level: Unsupported value: \"metadata\""),
        "{s}"
    );
    assert!(s.contains("8 errors, 2 warnings"), "{s}");
    let j = kaudit(&["policy", "check", "--format", "json", &bad], None);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 10);
    let missing = kaudit(&["policy", "check", "/nonexistent/policy.yaml"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read policy file /nonexistent/policy.yaml"));
    let beta = p("crates/policy/test_data/check/v1beta1.yaml");
    assert_eq!(
        kaudit(&["policy", "check", &beta], None).status.code(),
        Some(1)
    );
    assert_eq!(
        kaudit(&["policy", "check", "--k8s-version", "1.22", &beta], None)
            .status
            .code(),
        Some(0)
    );
    let v = kaudit(&["policy", "check", "--k8s-version", "2.0", &beta], None);
    assert_eq!(v.status.code(), Some(2));
}

#[test]
fn eval_prints_one_decision_per_input() {
    let dir = tmp("eval");
    let pol = dir.join("p.yaml");
    std::fs::write(
        &pol,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: None\n  nonResourceURLs: [/healthz*]\n- level: RequestResponse\n  resources: [{group: \"\", resources: [pods/exec]}]\n- level: Metadata\n  resources: [{group: \"\", resources: [secrets]}]\n",
    )
    .unwrap();
    let pol = pol.to_str().unwrap();
    let events = [
        p("test_data/events/falco-trace-files/exec_pod.json"),
        p("test_data/events/falco-trace-files/create_secret.json"),
        p("test_data/events/falco-trace-files/create_deployment.json"),
    ];
    let mut args = vec!["policy", "eval", pol, "--format", "ndjson"];
    args.extend(events.iter().map(String::as_str));
    let out = kaudit(&args, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"level\":\"RequestResponse\",\"omitStages\":[\"RequestReceived\"],\"omitManagedFields\":false,\"rule\":1}\n\
         {\"level\":\"Metadata\",\"omitStages\":[\"RequestReceived\"],\"omitManagedFields\":false,\"rule\":2}\n\
         {\"level\":\"None\",\"omitStages\":[\"RequestReceived\"],\"omitManagedFields\":false,\"rule\":null}\n"
    );
    // Request-attribute records, shaped like the conformance vectors.
    let attrs = b"{\"user\":\"tim\",\"groups\":[\"dev\"],\"verb\":\"get\",\"namespace\":\"\",\"apiGroup\":\"\",\"apiVersion\":\"\",\"resource\":\"\",\"subresource\":\"\",\"name\":\"\",\"path\":\"/healthzfoo\",\"resourceRequest\":false}\n{\"user\":null,\"groups\":[],\"verb\":\"create\",\"namespace\":\"d\",\"apiGroup\":\"\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"subresource\":\"exec\",\"name\":\"x\",\"path\":\"/api/v1/namespaces/d/pods/x/exec\",\"resourceRequest\":true}\n{\"usr\":1}\n";
    let out = kaudit(
        &["policy", "eval", pol, "--attributes", "--format", "ndjson"],
        Some(attrs),
    );
    let s = text(&out.stdout);
    assert_eq!(s.lines().count(), 2, "{s}");
    assert!(s.lines().next().unwrap().contains("\"level\":\"None\",") && s.contains("\"rule\":0"));
    assert!(s.lines().nth(1).unwrap().contains("\"rule\":1"));
    assert!(
        text(&out.stderr).contains("<stdin>:3: invalid attribute record: unknown field `usr`"),
        "{}",
        text(&out.stderr)
    );
    // Bad input names the file and line, and the rest still runs.
    let fuzz = p("test_data/events/falco-trace-files/fal_01_003.json");
    let out = kaudit(
        &[
            "policy", "eval", pol, "--format", "ndjson", &fuzz, &events[0],
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(text(&out.stderr).contains(
        "fal_01_003.json:1: invalid field: kind: invalid type: integer `0`, expected a string"
    ));
    // An invalid policy is refused with its problems.
    let out = kaudit(
        &[
            "policy",
            "eval",
            &p("crates/policy/test_data/check/many-errors.yaml"),
            &events[0],
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("would refuse this policy"));
}

#[test]
fn lint_exit_status_follows_the_worst_finding() {
    let shadow = p("crates/policy/test_data/lint/shadowing.yaml");
    let out = kaudit(&["policy", "lint", &shadow], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("warning shadowed [rule 4]"));
    let j = kaudit(&["policy", "lint", "--format", "json", &shadow], None);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    for f in v.as_array().unwrap() {
        let mut keys: Vec<&String> = f.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["code", "message", "rule", "severity"]);
    }
    let dir = tmp("lint");
    let hard = dir.join("h.yaml");
    std::fs::write(
        &hard,
        kaudit(&["policy", "init", "--profile", "hardened"], None).stdout,
    )
    .unwrap();
    assert_eq!(
        kaudit(&["policy", "lint", hard.to_str().unwrap()], None)
            .status
            .code(),
        Some(0)
    );
    let bad = p("crates/policy/test_data/check/many-errors.yaml");
    assert_eq!(
        kaudit(&["policy", "lint", &bad], None).status.code(),
        Some(2)
    );
    let list = kaudit(&["policy", "init", "--list"], None);
    assert_eq!(text(&list.stdout).lines().count(), 6);
    let nope = kaudit(&["policy", "init", "--profile", "nope"], None);
    assert_eq!(nope.status.code(), Some(2));
    assert!(text(&nope.stderr).contains("no profile \"nope\""));
}

#[test]
fn gen_simulate_and_diff() {
    let dir = tmp("sim");
    let log = dir.join("audit.log");
    let log_s = log.to_str().unwrap();
    let g = kaudit(
        &[
            "gen", "-n", "3000", "--span", "10m", "--seed", "4", "-o", log_s,
        ],
        None,
    );
    assert!(g.status.success(), "{}", text(&g.stderr));
    let again = kaudit(&["gen", "-n", "3000", "--span", "10m", "--seed", "4"], None);
    assert_eq!(std::fs::read(&log).unwrap(), again.stdout);
    let hard = dir.join("h.yaml");
    std::fs::write(
        &hard,
        kaudit(&["policy", "init", "--profile", "hardened"], None).stdout,
    )
    .unwrap();
    let rec = dir.join("r.yaml");
    std::fs::write(
        &rec,
        kaudit(&["policy", "init", "--profile", "recipe"], None).stdout,
    )
    .unwrap();
    let s = kaudit(
        &[
            "policy",
            "simulate",
            "--format",
            "json",
            hard.to_str().unwrap(),
            log_s,
        ],
        None,
    );
    assert!(s.status.success(), "{}", text(&s.stderr));
    let v: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    let sim = &v["simulation"];
    let n = |x: &serde_json::Value| x["events"].as_u64().unwrap();
    assert_eq!(n(&sim["recorded"]), 3000);
    assert_eq!(
        n(&sim["kept"]) + n(&sim["dropped_level_none"]) + n(&sim["dropped_stage"]),
        3000
    );
    assert!(
        n(&sim["dropped_level_none"]) > 0,
        "hardened drops lease renewals"
    );
    let t = kaudit(&["policy", "simulate", hard.to_str().unwrap(), log_s], None);
    assert!(text(&t.stdout).contains("kept at Metadata"));
    let d = kaudit(
        &[
            "policy",
            "diff",
            "--format",
            "json",
            rec.to_str().unwrap(),
            hard.to_str().unwrap(),
            log_s,
        ],
        None,
    );
    assert!(d.status.success(), "{}", text(&d.stderr));
    let v: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
    let lost = v["noLongerRecorded"].as_array().unwrap();
    assert!(
        lost.iter()
            .any(|g| g["resource"] == "coordination.k8s.io/leases"),
        "{lost:?}"
    );
    let el = kaudit(
        &[
            "gen",
            "-n",
            "900",
            "--format",
            "eventlist",
            "--batch",
            "400",
        ],
        None,
    );
    assert_eq!(text(&el.stdout).lines().count(), 3);
    let bad = kaudit(&["gen", "--span", "10x"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("the unit must be ms, s, m, h, d or w"));
}
