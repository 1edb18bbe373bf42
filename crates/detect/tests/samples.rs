//! The built-in pack against real and labelled samples (`test_data/events`, copied from
//! `../shared/samples`; provenance in test_data/README.md): Falco's regression trace files with the alerts Falco's own tests expect, and
//! Panther's labelled true/false cases. Prints precision and recall per rule, and checks the
//! disagreements are exactly the ones recorded (with reasons) in
//! `test_data/sample-disagreements.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kaudit_detect::Engine;
use kaudit_detect::fields::Ctx;
use kaudit_model::cloud;

/// The samples, as copied into the repository (`test_data/events`, provenance in its README).
fn samples() -> PathBuf {
    kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events")
}

/// Falco rule names (2023 test names) to kaudit rules.
const FALCO: &[(&str, &str)] = &[
    ("Anonymous Request Allowed", "k8s.access.anonymous-allowed"),
    (
        "Attach to cluster-admin Role",
        "k8s.rbac.cluster-admin-binding",
    ),
    ("Attach/Exec Pod", "k8s.exec.pod"),
    (
        "ClusterRole With Pod Exec Created",
        "k8s.rbac.pod-exec-role",
    ),
    (
        "ClusterRole With Wildcard Created",
        "k8s.rbac.wildcard-role",
    ),
    (
        "ClusterRole With Write Privileges Created",
        "k8s.rbac.write-role",
    ),
    (
        "Create/Modify Configmap With Private Credentials",
        "k8s.configmap.credentials",
    ),
    ("Create HostNetwork Pod", "k8s.pod.host-network"),
    ("Create Privileged Pod", "k8s.pod.privileged"),
    ("Create Sensitive Mount Pod", "k8s.pod.sensitive-mount"),
    ("Create NodePort Service", "k8s.service.nodeport"),
    ("Pod Created in Kube Namespace", "k8s.pod.system-namespace"),
    (
        "Service Account Created in Kube Namespace",
        "k8s.auth.serviceaccount-created",
    ),
    (
        "K8s Serviceaccount Created",
        "k8s.auth.serviceaccount-created",
    ),
    (
        "System ClusterRole Modified/Deleted",
        "k8s.rbac.system-role-changed",
    ),
    ("K8s Secret Created", "k8s.secret.changed"),
    ("K8s Secret Deleted", "k8s.secret.changed"),
    (
        "K8s Role/Clusterrolebinding Created",
        "k8s.rbac.binding-changed",
    ),
    (
        "K8s Role/Clusterrolebinding Deleted",
        "k8s.rbac.binding-changed",
    ),
    ("K8s Role/Clusterrole Created", "k8s.activity.change"),
    ("K8s Role/Clusterrole Deleted", "k8s.activity.change"),
    ("K8s ConfigMap Created", "k8s.activity.change"),
    ("K8s ConfigMap Deleted", "k8s.activity.change"),
    ("K8s Deployment Created", "k8s.activity.change"),
    ("K8s Deployment Deleted", "k8s.activity.change"),
    ("K8s Service Created", "k8s.activity.change"),
    ("K8s Service Deleted", "k8s.activity.change"),
    ("K8s Serviceaccount Deleted", "k8s.activity.change"),
    ("K8s Namespace Deleted", "k8s.activity.change"),
];

/// Falco's expectations under its default rules (SOURCES.md): file → expected rule names.
/// Files asserted to raise no alert at all are listed with no names.
const FALCO_EXPECTED: &[(&str, &[&str])] = &[
    (
        "anonymous_creates_namespace_foo.json",
        &["Anonymous Request Allowed"],
    ),
    (
        "attach_cluster_admin_role.json",
        &["Attach to cluster-admin Role"],
    ),
    ("attach_pod.json", &["Attach/Exec Pod"]),
    (
        "create_cluster_role_pod_exec.json",
        &["ClusterRole With Pod Exec Created"],
    ),
    (
        "create_cluster_role_wildcard_resources.json",
        &["ClusterRole With Wildcard Created"],
    ),
    (
        "create_cluster_role_wildcard_verbs.json",
        &["ClusterRole With Wildcard Created"],
    ),
    (
        "create_cluster_role_write_privileges.json",
        &["ClusterRole With Write Privileges Created"],
    ),
    ("create_clusterrole.json", &["K8s Role/Clusterrole Created"]),
    (
        "create_clusterrolebinding.json",
        &["K8s Role/Clusterrolebinding Created"],
    ),
    ("create_configmap.json", &["K8s ConfigMap Created"]),
    (
        "create_configmap_sensitive_values.json",
        &["Create/Modify Configmap With Private Credentials"],
    ),
    ("create_deployment.json", &["K8s Deployment Created"]),
    ("create_kube_system_secret.json", &[]),
    (
        "create_nginx_pod_hostnetwork.json",
        &["Create HostNetwork Pod"],
    ),
    (
        "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
        &["Create Privileged Pod"],
    ),
    ("create_nginx_pod_nohostnetwork.json", &[]),
    (
        "create_nginx_pod_privileged.json",
        &["Create Privileged Pod"],
    ),
    (
        "create_nginx_pod_privileged_2nd_container.json",
        &["Create Privileged Pod"],
    ),
    (
        "create_nginx_pod_sensitive_mount.json",
        &["Create Sensitive Mount Pod"],
    ),
    (
        "create_nginx_pod_sensitive_mount_2nd_container.json",
        &["Create Sensitive Mount Pod"],
    ),
    ("create_nginx_pod_unprivileged.json", &[]),
    ("create_nginx_pod_unsensitive_mount.json", &[]),
    (
        "create_nginx_service_nodeport.json",
        &["Create NodePort Service"],
    ),
    (
        "create_pod_kube_public_namespace.json",
        &["Pod Created in Kube Namespace"],
    ),
    (
        "create_pod_kube_system_namespace.json",
        &["Pod Created in Kube Namespace"],
    ),
    ("create_secret.json", &["K8s Secret Created"]),
    ("create_service.json", &["K8s Service Created"]),
    ("create_service_account_token_secret.json", &[]),
    (
        "create_serviceaccount.json",
        &["K8s Serviceaccount Created"],
    ),
    (
        "create_serviceaccount_kube_public_namespace.json",
        &["Service Account Created in Kube Namespace"],
    ),
    (
        "create_serviceaccount_kube_system_namespace.json",
        &["Service Account Created in Kube Namespace"],
    ),
    (
        "delete_cluster_role_kube_aggregator.json",
        &["System ClusterRole Modified/Deleted"],
    ),
    ("delete_clusterrole.json", &["K8s Role/Clusterrole Deleted"]),
    (
        "delete_clusterrolebinding.json",
        &["K8s Role/Clusterrolebinding Deleted"],
    ),
    ("delete_configmap.json", &["K8s ConfigMap Deleted"]),
    ("delete_deployment.json", &["K8s Deployment Deleted"]),
    ("delete_namespace_foo.json", &["K8s Namespace Deleted"]),
    ("delete_secret.json", &["K8s Secret Deleted"]),
    ("delete_service.json", &["K8s Service Deleted"]),
    (
        "delete_serviceaccount.json",
        &["K8s Serviceaccount Deleted"],
    ),
    ("exec_pod.json", &["Attach/Exec Pod"]),
    ("fal_01_003.json", &[]),
    (
        "modify_cluster_role_node_problem_detector.json",
        &["System ClusterRole Modified/Deleted"],
    ),
];

/// Panther rule ids to kaudit rules (Panther's per-event verdict is compared with the
/// kaudit rule's condition; thresholds are Panther's deduplication, not part of the verdict).
const PANTHER: &[(&str, &str)] = &[
    (
        "Amazon.EKS.AnonymousAPIAccess",
        "k8s.access.anonymous-allowed",
    ),
    (
        "Amazon.EKS.Audit.Multiple403",
        "k8s.access.denied-from-public-ip",
    ),
    (
        "Amazon.EKS.Audit.SystemNamespaceFromPublicIP",
        "k8s.access.system-principal-public-ip",
    ),
    (
        "GCP.GKE.Kubernetes.Cron.Job.Created.Or.Modified",
        "k8s.workload.cronjob-changed",
    ),
    ("GCP.K8s.ExecIntoPod", "k8s.exec.pod"),
    (
        "GCP.K8s.New.Daemonset.Deployed",
        "k8s.workload.daemonset-created",
    ),
    (
        "GCP.K8s.Pod.Attached.To.Node.Host.Network",
        "k8s.pod.host-network",
    ),
    (
        "GCP.K8S.Pod.Create.Or.Modify.Host.Path.Volume.Mount",
        "k8s.pod.sensitive-mount",
    ),
    ("GCP.K8s.Pod.Using.Host.PID.Namespace", "k8s.pod.host-pid"),
    ("GCP.K8S.Privileged.Pod.Created", "k8s.pod.privileged"),
    (
        "GCP.K8S.Service.Type.NodePort.Deployed",
        "k8s.service.nodeport",
    ),
    (
        "Kubernetes.AdmissionController.Created",
        "k8s.admission.webhook-changed",
    ),
    (
        "Kubernetes.API.AnonymousAccess",
        "k8s.access.anonymous-allowed",
    ),
    ("Kubernetes.ClientCertificate.Created", "k8s.auth.csr"),
    (
        "Kubernetes.ClusterRoleBinding.Privileged",
        "k8s.rbac.cluster-admin-binding",
    ),
    (
        "Kubernetes.CronJob.CreatedOrModified",
        "k8s.workload.cronjob-changed",
    ),
    (
        "Kubernetes.DaemonSet.Created",
        "k8s.workload.daemonset-created",
    ),
    ("Kubernetes.Pod.Exec", "k8s.exec.pod"),
    ("Kubernetes.Ingress.NoTLS", "k8s.ingress.no-tls"),
    ("Kubernetes.Kubectl.CP.Operation", "k8s.exec.kubectl-cp"),
    (
        "Kubernetes.API.Multiple403.PublicIP",
        "k8s.access.denied-from-public-ip",
    ),
    ("Kubernetes.Pod.SystemNamespace", "k8s.pod.system-namespace"),
    (
        "Kubernetes.Pod.Dangerous.Capabilities",
        "k8s.pod.capabilities",
    ),
    ("Kubernetes.Pod.Host.IPC", "k8s.pod.host-ipc"),
    ("Kubernetes.Pod.Host.Network", "k8s.pod.host-network"),
    ("Kubernetes.Pod.Host.PID", "k8s.pod.host-pid"),
    ("Kubernetes.Pod.HostPath.Volume", "k8s.pod.sensitive-mount"),
    ("Kubernetes.Pod.Privileged.Created", "k8s.pod.privileged"),
    (
        "Kubernetes.Role.NodeProxyPermissions",
        "k8s.rbac.node-proxy-role",
    ),
    ("Kubernetes.Role.PodExec", "k8s.rbac.pod-exec-role"),
    ("Kubernetes.Role.Wildcard", "k8s.rbac.wildcard-role"),
    ("Kubernetes.Role.WritePermissions", "k8s.rbac.write-role"),
    ("Kubernetes.Secret.AccessDenied", "k8s.secret.denied"),
    ("Kubernetes.BulkSecretAccess", "k8s.secret.many-read"),
    (
        "Kubernetes.Secrets.DumpAllNamespaces",
        "k8s.secret.cluster-wide-list",
    ),
    (
        "Kubernetes.Service.NodePort.Deployed",
        "k8s.service.nodeport",
    ),
    (
        "Kubernetes.ServiceAccount.TokenCreated",
        "k8s.auth.serviceaccount-token",
    ),
    (
        "Kubernetes.Pod.StealServiceAccountToken",
        "k8s.exec.serviceaccount-token",
    ),
    (
        "Kubernetes.System.Principal.PublicIP",
        "k8s.access.system-principal-public-ip",
    ),
    (
        "Kubernetes.SystemRole.Modified",
        "k8s.rbac.system-role-changed",
    ),
];

#[derive(Default)]
struct Score {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

fn pct(a: u32, b: u32) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:.0}%", 100.0 * a as f64 / b as f64)
    }
}

/// Falco: every trace file through an engine; which rules alerted, against what Falco's own
/// tests expect.
fn falco(
    set: &Arc<kaudit_detect::RuleSet>,
    dir: &Path,
    scores: &mut BTreeMap<String, Score>,
    disagreements: &mut BTreeSet<String>,
) {
    let falco_map: BTreeMap<&str, &str> = FALCO.iter().copied().collect();
    let judged: BTreeSet<&str> = FALCO.iter().map(|(_, k)| *k).collect();
    for (file, expected) in FALCO_EXPECTED {
        let data = std::fs::read(dir.join("falco-trace-files").join(file)).unwrap();
        let mut engine = Engine::new(set.clone());
        let mut alerts = Vec::new();
        kaudit_model::decode::decode_slice(&data, |r| {
            if let Ok(rec) = r {
                engine.process(&rec.event, rec.raw, &mut alerts);
            }
            ControlFlow::Continue(())
        });
        let fired: BTreeSet<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
        let want: BTreeSet<&str> = expected.iter().map(|n| falco_map[n]).collect();
        for rule in &judged {
            let s = scores.entry(format!("{rule} (Falco)")).or_default();
            match (want.contains(rule), fired.contains(rule)) {
                (true, true) => s.tp += 1,
                (true, false) => {
                    s.fn_ += 1;
                    disagreements.insert(format!("falco {file} {rule} missed"));
                }
                // Falco's tests only assert the absence of every alert for "no alert" files.
                (false, true) if expected.is_empty() => {
                    s.fp += 1;
                    disagreements.insert(format!("falco {file} {rule} extra"));
                }
                (false, _) => s.tn += 1,
            }
        }
    }
}

/// Panther: each labelled record, its verdict against the mapped rule's condition. Returns the
/// records that do not decode as audit events.
fn panther(
    set: &Arc<kaudit_detect::RuleSet>,
    dir: &Path,
    scores: &mut BTreeMap<String, Score>,
    disagreements: &mut BTreeSet<String>,
) -> Vec<String> {
    let panther_map: BTreeMap<&str, &str> = PANTHER.iter().copied().collect();
    let mut undecodable = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("panther-analysis-tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let pid = v["rule_id"].as_str().unwrap();
            let Some(rule_id) = panther_map.get(pid) else {
                continue;
            };
            let expected = v["expected_result"].as_bool().unwrap();
            let name = v["test_name"].as_str().unwrap();
            let rule = set.rules.iter().find(|r| r.id == *rule_id).unwrap();
            // Panther trims GKE LogEntries to the fields its rules read; real exports always
            // carry insertId (the audit ID) and timestamp, which kaudit's GKE decoder
            // requires. Give the trimmed ones both; nothing else is changed.
            let mut log = v["log"].clone();
            if log.get("protoPayload").is_some() {
                if log.get("insertId").is_none() {
                    log["insertId"] = serde_json::Value::from(format!("panther-{pid}-{name}"));
                }
                if log.get("timestamp").is_none() {
                    let t = log
                        .get("p_event_time")
                        .cloned()
                        .unwrap_or_else(|| "2024-01-01T00:00:00Z".into());
                    log["timestamp"] = t;
                }
            }
            let log = serde_json::to_vec(&log).unwrap();
            let mut got = None;
            let format = cloud::detect(&log);
            cloud::decode_as(&log, format, |r| {
                if let Ok(rec) = r {
                    let m = rule.matches(&Ctx::new(&rec.event, rec.raw));
                    got = Some(got.unwrap_or(false) || m);
                }
                ControlFlow::Continue(())
            });
            let Some(got) = got else {
                undecodable.push(format!("{pid} / {name}"));
                continue;
            };
            let s = scores.entry(format!("{rule_id} (Panther)")).or_default();
            match (expected, got) {
                (true, true) => s.tp += 1,
                (false, false) => s.tn += 1,
                (true, false) => {
                    s.fn_ += 1;
                    disagreements.insert(format!("panther {pid} {name:?} missed"));
                }
                (false, true) => {
                    s.fp += 1;
                    disagreements.insert(format!("panther {pid} {name:?} extra"));
                }
            }
        }
    }
    undecodable
}

/// The scores as a Markdown table (for docs/detect.md).
fn print_scores(scores: &BTreeMap<String, Score>, undecodable: &[String]) {
    println!("| rule (anchor) | TP | FP | FN | TN | precision | recall |");
    println!("|---|---|---|---|---|---|---|");
    let mut total = Score::default();
    for (k, s) in scores {
        println!(
            "| {k} | {} | {} | {} | {} | {} | {} |",
            s.tp,
            s.fp,
            s.fn_,
            s.tn,
            pct(s.tp, s.tp + s.fp),
            pct(s.tp, s.tp + s.fn_)
        );
        total.tp += s.tp;
        total.fp += s.fp;
        total.fn_ += s.fn_;
        total.tn += s.tn;
    }
    println!(
        "| **all** | {} | {} | {} | {} | {} | {} |",
        total.tp,
        total.fp,
        total.fn_,
        total.tn,
        pct(total.tp, total.tp + total.fp),
        pct(total.tp, total.tp + total.fn_)
    );
    println!(
        "\nnot decodable as audit events ({}): {}",
        undecodable.len(),
        undecodable.join("; ")
    );
}

#[test]
fn builtin_pack_against_the_samples() {
    let mut set = kaudit_detect::builtin().unwrap();
    for r in &mut set.rules {
        r.enabled = true;
    }
    let set = Arc::new(set);
    let dir = samples();
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut disagreements: BTreeSet<String> = BTreeSet::new();
    falco(&set, &dir, &mut scores, &mut disagreements);
    let undecodable = panther(&set, &dir, &mut scores, &mut disagreements);
    print_scores(&scores, &undecodable);
    // Every disagreement must be a known, explained one.
    let known_text = std::fs::read_to_string(
        kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
            .join("test_data/sample-disagreements.txt"),
    )
    .unwrap();
    let known: BTreeSet<String> = known_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(" # ").next().unwrap().trim().to_string())
        .collect();
    let new: Vec<&String> = disagreements.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&disagreements).collect();
    println!(
        "\ndisagreements:\n{}",
        disagreements.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        new.is_empty(),
        "unexplained disagreements with the samples:\n{new:#?}"
    );
    assert!(
        gone.is_empty(),
        "recorded disagreements that no longer happen (remove them):\n{gone:#?}"
    );
}
