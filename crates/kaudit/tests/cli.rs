//! End-to-end tests of the `kaudit` binary: exit codes, output formats, bad input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kaudit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kaudit"));
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn p(rel: &str) -> String {
    root().join(rel).to_string_lossy().into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kaudit-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

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

#[test]
fn import_verify_query_ask() {
    let d = tmp("store");
    let log = d.join("audit.log");
    let data = d.join("data");
    let data_s = data.to_string_lossy().into_owned();
    let o = kaudit(
        &[
            "gen",
            "-n",
            "3000",
            "--seed",
            "4",
            "--out",
            &log.to_string_lossy(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A bad line in the middle is named and skipped; the rest is stored.
    let mut raw = std::fs::read(&log).unwrap();
    let cut = raw.iter().position(|b| *b == b'\n').unwrap() + 1;
    raw.splice(
        cut..cut,
        b"{\"kind\":\"Event\",\"auditID\":\n".iter().copied(),
    );
    std::fs::write(&log, &raw).unwrap();
    let o = kaudit(
        &[
            "import",
            "--data",
            &data_s,
            "--cluster",
            "prod",
            &log.to_string_lossy(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("imported 3000 events"), "{out}");
    assert!(
        text(&o.stderr).contains("audit.log:2"),
        "{}",
        text(&o.stderr)
    );
    assert!(out.contains("truncated records: 1"), "{out}");
    let o = kaudit(
        &[
            "import",
            "--data",
            &data_s,
            "--cluster",
            "prod",
            &log.to_string_lossy(),
        ],
        None,
    );
    assert!(text(&o.stdout).contains("imported 0 events"));
    assert!(text(&o.stdout).contains(
        "duplicates skipped (already stored: same cluster, auditID, request time and stage): 3000"
    ));

    let o = kaudit(&["verify", "--data", &data_s], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).starts_with("OK: 3000 events"));

    // A pipe cannot be read again: imported through the write-ahead log instead of in bulk,
    // with the same result.
    let piped = d.join("piped");
    let piped_s = piped.to_string_lossy().into_owned();
    let o = kaudit(
        &[
            "import",
            "--data",
            &piped_s,
            "--cluster",
            "prod",
            "/dev/stdin",
        ],
        Some(&raw),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("imported 3000 events"));
    let o = kaudit(&["verify", "--data", &piped_s], None);
    assert!(text(&o.stdout).starts_with("OK: 3000 events"));
    let all = |dir: &str| {
        let o = kaudit(
            &[
                "query", "--data", dir, "--stages", "--limit", "0", "--format", "ndjson",
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        let mut lines: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let (bulk, wal) = (all(&data_s), all(&piped_s));
    assert_eq!(bulk.len(), 3000);
    assert!(bulk == wal, "the same events either way");

    // ndjson gives back the stored events byte for byte.
    let o = kaudit(
        &[
            "query",
            "--data",
            &data_s,
            "verb=delete",
            "--stages",
            "--limit",
            "0",
            "--format",
            "ndjson",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert!(!lines.is_empty());
    let orig = std::fs::read_to_string(&log).unwrap();
    for l in &lines {
        assert!(orig.contains(l), "not an original line: {l}");
        assert!(l.contains("\"verb\":\"delete\""));
    }
    let o = kaudit(
        &["ask", "top-users", "--data", &data_s, "--format", "csv"],
        None,
    );
    assert!(text(&o.stdout).starts_with("user,requests\n"));
    let o = kaudit(&["query", "--data", &data_s, "usr=x"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("unknown field \"usr\""));

    // An inclusion proof for each stage of one request, checked with only the public key.
    let id = lines[0]
        .split("\"auditID\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let proof = d.join("proof.jsonl");
    let o = kaudit(
        &[
            "prove",
            "--data",
            &data_s,
            id,
            "--out",
            proof.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = kaudit(&["keys", "export", "--data", &data_s], None);
    let key = d.join("kaudit.pub");
    std::fs::write(&key, &o.stdout).unwrap();
    let check = |proof: &Path| {
        kaudit(
            &[
                "prove",
                "--check",
                proof.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
            None,
        )
    };
    let o = check(&proof);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).starts_with("OK "), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains(" delete "), "{}", text(&o.stdout));
    // The same proof claiming another event fails.
    let forged = d.join("forged.jsonl");
    let p = std::fs::read_to_string(&proof).unwrap();
    let forged_text = p.replacen("\"verb\":\"delete\"", "\"verb\":\"get\"", 1);
    assert_ne!(forged_text, p);
    std::fs::write(&forged, forged_text).unwrap();
    let o = check(&forged);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).starts_with("FAILED "),
        "{}",
        text(&o.stdout)
    );

    // One flipped byte in the sealed segment: exit 1, naming it.
    let seg = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&seg, b).unwrap();
    let o = kaudit(&["verify", "--data", &data_s], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).starts_with("FAILED: segment "),
        "{}",
        text(&o.stdout)
    );
    let o = kaudit(&["keys", "export", "--data", &data_s], None);
    assert!(text(&o.stdout).starts_with("-----BEGIN PUBLIC KEY-----"));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn setup_prints_the_wiring_with_this_servers_credentials() {
    let d = tmp("setup");
    let data = d.join("data");
    let data_s = data.to_string_lossy().into_owned();
    let o = kaudit(
        &[
            "setup",
            "kubeadm",
            "--data",
            &data_s,
            "--server",
            "https://audit.example:8443/audit",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for want in [
        "--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "--audit-webhook-config-file=",
        "server: https://audit.example:8443/audit",
        "certificate-authority-data: ",
        "client-certificate-data: ",
        "kaudit policy init",
    ] {
        assert!(out.contains(want), "kubeadm setup lacks {want:?}:\n{out}");
    }
    // The embedded CA is the one the server was given.
    use base64::Engine;
    let ca_line = out
        .lines()
        .find(|l| l.contains("certificate-authority-data:"))
        .unwrap();
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_line.split(": ").nth(1).unwrap().trim())
        .unwrap();
    assert_eq!(ca, std::fs::read(data.join("tls/ca.pem")).unwrap());
    for (platform, want) in [
        ("k3s", "kube-apiserver-arg:"),
        ("kind", "kubeadmConfigPatches"),
        (
            "minikube",
            "--extra-config=apiserver.audit-webhook-config-file",
        ),
        ("openshift", "oc adm node-logs"),
        ("eks", "kaudit import --format eks"),
        ("gke", "kaudit import --format gke"),
        ("aks", "kaudit import --format aks"),
    ] {
        let o = kaudit(&["setup", platform, "--data", &data_s], None);
        assert!(o.status.success(), "{platform}: {}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains(want),
            "{platform} setup lacks {want:?}"
        );
    }
    let o = kaudit(&["setup", "nomad", "--data", &data_s], None);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&d).ok();
}

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

/// `kaudit serve` detecting live raises the same alerts as `kaudit detect` on the same
/// input; `kaudit alerts` lists and filters them; a file sink received them.
#[test]
fn serve_detects_live_like_detect_offline() {
    let dir = tmp("live-detect");
    let log = dir.join("audit.log");
    let mut all = String::new();
    let mut traces: Vec<PathBuf> =
        std::fs::read_dir(root().join("test_data/events/falco-trace-files"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
    traces.sort();
    for t in &traces {
        for line in std::fs::read_to_string(t).unwrap().lines() {
            if !line.trim().is_empty() {
                all.push_str(line.trim());
                all.push('\n');
            }
        }
    }
    std::fs::write(&log, &all).unwrap();
    let key = |v: &serde_json::Value| {
        format!(
            "{} {}",
            v["rule"].as_str().unwrap(),
            v["auditID"].as_str().unwrap()
        )
    };
    let o = kaudit(
        &["detect", "--output", "ndjson", log.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut offline: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| key(&serde_json::from_str(l).unwrap()))
        .collect();
    offline.sort();
    offline.dedup();
    assert!(offline.len() > 20, "{offline:?}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = dir.join("data");
    let sink = dir.join("sink.jsonl");
    let cfg = dir.join("kaudit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data: {}\nlisten: 127.0.0.1:{port}\ntls: {{enabled: false}}\ntail:\n  - path: {}\n    cluster: lab\ndetect:\n  from_start: true\n  save_every: 100ms\n  throttle: {{window: 0s}}\n  sinks:\n    - name: file\n      type: file\n      path: {}\n",
            data.display(),
            log.display(),
            sink.display()
        ),
    )
    .unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_kaudit"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let count = || {
        std::fs::read_to_string(&sink)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    while count() < offline.len() && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = server.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");

    let o = kaudit(
        &[
            "alerts",
            "--data",
            data.to_str().unwrap(),
            "--limit",
            "0",
            "--output",
            "ndjson",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut live: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| key(&serde_json::from_str(l).unwrap()))
        .collect();
    live.sort();
    assert_eq!(live, offline, "live and offline detection disagree\n{err}");
    let delivered: Vec<serde_json::Value> = std::fs::read_to_string(&sink)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(delivered.len(), live.len(), "every alert delivered once");
    assert!(
        delivered
            .iter()
            .all(|d| d["kind"] == "alert" && d["cluster"] == "lab")
    );

    // Filters and the table.
    let o = kaudit(
        &[
            "alerts",
            "--data",
            data.to_str().unwrap(),
            "--rule",
            "k8s.exec.*",
            "--output",
            "ndjson",
            "--limit",
            "0",
        ],
        None,
    );
    let exec = text(&o.stdout).lines().count();
    assert_eq!(
        exec,
        offline
            .iter()
            .filter(|k| k.starts_with("k8s.exec."))
            .count()
    );
    let o = kaudit(
        &["alerts", "--data", data.to_str().unwrap(), "--limit", "3"],
        None,
    );
    assert!(o.status.success());
    assert_eq!(text(&o.stdout).lines().count(), 4, "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains(&format!("3 of {}", live.len())),
        "{}",
        text(&o.stderr)
    );
    let o = kaudit(
        &["alerts", "--data", data.to_str().unwrap(), "--sinks"],
        None,
    );
    assert!(text(&o.stdout).contains("file"), "{}", text(&o.stdout));
    let o = kaudit(
        &[
            "alerts",
            "--data",
            data.to_str().unwrap(),
            "--since",
            "soon",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("--since"), "{}", text(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `kaudit import` killed mid-way: what it sealed stays and verifies, nothing went through
/// the write-ahead log (files are loaded in bulk), and importing the same file again adds
/// exactly the rest.
#[test]
fn a_killed_import_keeps_whole_segments_and_importing_again_adds_the_rest() {
    let d = tmp("killed");
    let log = d.join("audit.log");
    let data = d.join("data");
    let (log_s, data_s) = (
        log.to_string_lossy().into_owned(),
        data.to_string_lossy().into_owned(),
    );
    let n = 40_000u64;
    let o = kaudit(
        &["gen", "-n", &n.to_string(), "--seed", "6", "--out", &log_s],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let import = [
        "import",
        "--quiet",
        "--segment-events",
        "2000",
        "--data",
        &data_s,
        &log_s,
    ];
    /// Kills the import however the test ends.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let listed = || {
        std::fs::read_to_string(data.join("manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|m| m["segments"].as_array().map(|s| s.len()))
            .unwrap_or(0)
    };
    // Killed once a segment is sealed (listed in the manifest). On a busy machine this test
    // may be descheduled long enough for the import to finish first: then it starts over.
    let mut interrupted = false;
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(&data);
        let mut child = Guard(
            Command::new(env!("CARGO_BIN_EXE_kaudit"))
                .args(import)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let start = std::time::Instant::now();
        while listed() == 0 && child.0.try_wait().unwrap().is_none() {
            assert!(start.elapsed().as_secs() < 120, "no segment sealed");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        // Killed, not finished (a finished import exits 0).
        if !status.success() {
            interrupted = true;
            break;
        }
    }
    assert!(
        interrupted,
        "the import ended every time before it could be interrupted"
    );
    // Loaded in bulk: no event was written to the WAL (its files hold their header only).
    for e in std::fs::read_dir(data.join("wal")).unwrap() {
        let p = e.unwrap().path();
        let len = std::fs::metadata(&p).unwrap().len();
        // `KAUDITWAL1\n` and the first leaf, 19 bytes (docs/store-format.md).
        assert_eq!(len, 19, "{}", p.display());
    }
    let o = kaudit(&["verify", "--data", &data_s], None);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let kept: u64 = out
        .strip_prefix("OK: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        kept > 0 && kept < n && kept.is_multiple_of(2000),
        "{kept} kept"
    );

    let o = kaudit(&import, None);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        out.contains(&format!("imported {} events", n - kept)),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("duplicates skipped") && l.ends_with(&format!(": {kept}"))),
        "{out}"
    );
    let o = kaudit(&["verify", "--data", &data_s], None);
    assert!(
        text(&o.stdout).starts_with(&format!("OK: {n} events")),
        "{}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// A segment that cannot be written during a bulk load (here: the file size limit, which
/// holds even for root) stops the import with an error that says what to do; the segments
/// sealed before it stay and verify, and importing again once it can be written adds the rest.
#[test]
fn a_bulk_segment_that_cannot_be_written_stops_the_import_and_keeps_what_was_sealed() {
    let d = tmp("efbig");
    let log = d.join("audit.log");
    let data = d.join("data");
    let (log_s, data_s) = (
        log.to_string_lossy().into_owned(),
        data.to_string_lossy().into_owned(),
    );
    let o = kaudit(&["gen", "-n", "6000", "--seed", "8", "--out", &log_s], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The last 2,000 events carry 16 KiB of poorly compressible data each: their segment is
    // about 30 MB, the first two (2,000 ordinary events each) well under 1 MB.
    let raw = std::fs::read_to_string(&log).unwrap();
    let mut out = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, line) in raw.lines().enumerate() {
        if i >= 4000 {
            let blob: String = (0..16384)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (b'a' + (x % 26) as u8) as char
                })
                .collect();
            // A field of a later Kubernetes version, say: ignored, but stored as received.
            out.push_str(&format!("{{\"blob\":\"{blob}\",{}", &line[1..]));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::fs::write(&log, out).unwrap();
    let import = format!(
        "{} import --quiet --segment-events 2000 --data '{data_s}' '{log_s}'",
        env!("CARGO_BIN_EXE_kaudit")
    );
    // Files may not grow past 8 MiB; the signal that limit sends is ignored, so a write
    // past it fails (EFBIG) instead of killing the process.
    let o = Command::new("bash")
        .args([
            "-c",
            &format!("trap '' XFSZ; ulimit -f 8192; exec {import}"),
        ])
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o.stdout));
    assert!(
        err.contains("File too large") && err.contains("load them again"),
        "{err}"
    );
    let o = kaudit(&["verify", "--data", &data_s], None);
    assert!(
        text(&o.stdout).starts_with("OK: 4000 events"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = Command::new("bash").args(["-c", &import]).output().unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("imported 2000 events"), "{out}");
    let o = kaudit(&["verify", "--data", &data_s], None);
    assert!(
        text(&o.stdout).starts_with("OK: 6000 events"),
        "{}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&d).unwrap();
}
