//! `kaudit setup` and `kaudit serve` (with live detection) against `kaudit detect`.

use std::path::PathBuf;
use std::process::Stdio;

use crate::{kaudit, root, text, tmp};

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

/// `kaudit serve` detecting live raises the same alerts as `kaudit detect` on the same
/// input; `kaudit alerts` lists and filters them; a file sink received them.
#[test]
fn serve_detects_live_like_detect_offline() {
    let dir = tmp("live-detect");
    let log = dir.join("audit.log");
    let offline = detect_offline(&log);
    let port = kaudit_testkit::free_port();
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
    let server = kaudit_testkit::Serve::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_kaudit")),
        &cfg,
        Some(Stdio::piped()),
    );
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
    let stopped = server.stop(std::time::Duration::from_secs(60));
    assert!(stopped.clean(), "{stopped:?}");

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
        .map(|l| alert_key(&serde_json::from_str(l).unwrap()))
        .collect();
    live.sort();
    assert_eq!(
        live, offline,
        "live and offline detection disagree\n{}",
        stopped.stderr
    );
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

    alerts_filters(&dir.join("data"), &offline, live.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An alert as `rule auditID`.
fn alert_key(v: &serde_json::Value) -> String {
    format!(
        "{} {}",
        v["rule"].as_str().unwrap(),
        v["auditID"].as_str().unwrap()
    )
}

/// Writes Falco's trace files into one log at `log` and runs `kaudit detect` over it: the
/// alerts (as [`alert_key`]), sorted and unique.
fn detect_offline(log: &std::path::Path) -> Vec<String> {
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
    std::fs::write(log, &all).unwrap();
    let o = kaudit(
        &["detect", "--output", "ndjson", log.to_str().unwrap()],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut offline: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| alert_key(&serde_json::from_str(l).unwrap()))
        .collect();
    offline.sort();
    offline.dedup();
    assert!(offline.len() > 20, "{offline:?}");
    offline
}

/// `kaudit alerts` filters (rule glob, limit, sinks, a bad time) over the stored alerts.
fn alerts_filters(data: &std::path::Path, offline: &[String], stored: usize) {
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
        text(&o.stderr).contains(&format!("3 of {}", stored)),
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
}
