//! `kaudit serve` and `kaudit setup <platform>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use base64::Engine;
use clap::{Args, ValueEnum};
use kaudit_server::{Config, auth, tls};

#[derive(Args)]
pub struct ServeArgs {
    /// The configuration file (every setting has a default; see docs/serve.md).
    #[arg(long, short = 'c', env = "KAUDIT_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory (overrides `data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address to listen on (overrides `listen`), e.g. 0.0.0.0:8443.
    #[arg(long)]
    listen: Option<String>,
    /// Serve plain HTTP (for a TLS-terminating proxy in front, or tests).
    #[arg(long)]
    no_tls: bool,
    /// Follow an audit.log (repeatable; adds to `tail`), as PATH or CLUSTER=PATH.
    #[arg(long, value_name = "[CLUSTER=]PATH")]
    tail: Vec<String>,
    /// Rule files or directories to run live, after the built-in pack (adds to
    /// `detect.rules`).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not run detection rules on stored events (`detect.enabled: false`).
    #[arg(long, conflicts_with = "rules")]
    no_detect: bool,
}

fn load(config: Option<&PathBuf>) -> Result<Config> {
    match config {
        Some(p) => Config::load(p).map_err(|e| anyhow!(e)),
        None => Ok(Config::default()),
    }
}

fn apply(a: &ServeArgs) -> Result<Config> {
    let mut c = load(a.config.as_ref())?;
    if let Some(d) = &a.data {
        c.data = d.clone();
    }
    if let Some(l) = &a.listen {
        c.listen = l.clone();
    }
    if a.no_tls {
        c.tls.enabled = false;
    }
    for t in &a.tail {
        let (cluster, path) = match t.split_once('=') {
            Some((c, p)) => (c.to_string(), p),
            None => ("default".to_string(), t.as_str()),
        };
        c.tail.push(kaudit_server::config::Tail {
            path: PathBuf::from(path),
            cluster,
            poll: std::time::Duration::from_millis(200),
        });
    }
    c.detect.rules.extend(a.rules.iter().cloned());
    if a.no_detect {
        c.detect.enabled = false;
    }
    c.check().map_err(|e| anyhow!(e))?;
    Ok(c)
}

pub fn serve(a: ServeArgs) -> Result<ExitCode> {
    let c = apply(&a)?;
    let log: kaudit_server::Log = Arc::new(|m: &str| eprintln!("kaudit: {m}"));
    kaudit_server::run(c, log).map_err(|e| anyhow!(e))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Platform {
    K3s,
    Kubeadm,
    Kind,
    Minikube,
    Eks,
    Gke,
    Aks,
    Openshift,
}

#[derive(Args)]
pub struct SetupArgs {
    /// Where kube-apiserver runs.
    platform: Platform,
    /// The configuration `kaudit serve` uses.
    #[arg(long, short = 'c', env = "KAUDIT_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory (overrides `data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The URL kube-apiserver reaches this server at (default: https://HOSTNAME:PORT/PATH
    /// from `listen` and `webhook.path`).
    #[arg(long)]
    server: Option<String>,
    /// The cluster name to use (must be in `clusters` when that is configured).
    #[arg(long, default_value = "default")]
    cluster: String,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn setup(a: SetupArgs) -> Result<ExitCode> {
    let mut c = load(a.config.as_ref())?;
    if let Some(d) = &a.data {
        c.data = d.clone();
    }
    let p = a.platform;
    if matches!(p, Platform::Eks | Platform::Gke | Platform::Aks) {
        print!("{}", cloud(p, &a.cluster));
        return Ok(ExitCode::SUCCESS);
    }
    let g = tls::ensure_generated(&c.data, &c.tls.hosts).map_err(|e| anyhow!(e))?;
    let read =
        |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| anyhow!("{}: {e}", p.display()));
    let ca = match (&c.tls.cert, c.tls.enabled) {
        (None, true) => Some(read(g.ca())?),
        _ => None,
    };
    let port = c.listen.rsplit(':').next().unwrap_or("8443").to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let scheme = if c.tls.enabled { "https" } else { "http" };
    let server = a
        .server
        .clone()
        .unwrap_or(format!("{scheme}://{host}:{port}{}", c.webhook.path));
    // Credentials: the generated client certificate when the generated CA checks clients,
    // else the cluster's token.
    let user = if c.clusters.is_empty() && c.tls.enabled && c.tls.client_ca.is_none() {
        format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&read(g.client())?),
            b64(&read(g.client_key())?)
        )
    } else {
        let token = if c.clusters.is_empty() {
            auth::generated_token(&c.data)
                .map_err(|e| anyhow!(e))?
                .ok_or_else(|| anyhow!("{}: no token generated", g.token().display()))?
        } else {
            let cl = c
                .clusters
                .iter()
                .find(|x| x.name == a.cluster)
                .ok_or_else(|| {
                    anyhow!(
                        "--cluster {:?} is not in the configuration's clusters",
                        a.cluster
                    )
                })?;
            match auth::tokens_of(cl)
                .map_err(|e| anyhow!(e))?
                .into_iter()
                .next()
            {
                Some(t) => t,
                None => {
                    "<the client certificate for CN ".to_string()
                        + cl.client_cn.as_deref().unwrap_or("")
                        + ">"
                }
            }
        };
        format!("    token: {token}\n")
    };
    let ca_line = match &ca {
        Some(ca) => format!("    certificate-authority-data: {}\n", b64(ca)),
        None => String::new(),
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kaudit\n  cluster:\n    server: {server}\n{ca_line}users:\n- name: kube-apiserver\n  user:\n{user}contexts:\n- name: kaudit\n  context:\n    cluster: kaudit\n    user: kube-apiserver\ncurrent-context: kaudit\n"
    );
    print!("{}", on_node(p, &kubeconfig, &server));
    Ok(ExitCode::SUCCESS)
}

const FLAGS: &str = "--audit-policy-file=/etc/kubernetes/audit/policy.yaml
--audit-webhook-config-file=/etc/kubernetes/audit/webhook.kubeconfig
--audit-webhook-batch-max-size=400
--audit-webhook-mode=batch
--audit-log-path=/var/log/kubernetes/audit/audit.log
--audit-log-maxsize=100
--audit-log-maxbackup=10";

fn on_node(p: Platform, kubeconfig: &str, server: &str) -> String {
    let files = format!(
        "## 1. Two files on every control-plane node\n\n\
         The audit policy (kaudit's hardened profile; `kaudit policy init --list` shows others,\n\
         `kaudit policy lint` checks your own):\n\n\
         \x20   sudo mkdir -p /etc/kubernetes/audit /var/log/kubernetes/audit\n\
         \x20   kaudit policy init --profile hardened | sudo tee /etc/kubernetes/audit/policy.yaml\n\n\
         The webhook kubeconfig, /etc/kubernetes/audit/webhook.kubeconfig (mode 0600; it holds a\n\
         credential). kube-apiserver will POST to {server}\n\n\
         ```yaml\n{kubeconfig}```\n\n"
    );
    let flags_list = FLAGS.replace('\n', "\n    ");
    let (title, how) = match p {
        Platform::Kubeadm => (
            "kubeadm",
            format!(
                "## 2. kube-apiserver flags\n\n\
                 Edit /etc/kubernetes/manifests/kube-apiserver.yaml (the kubelet restarts the\n\
                 apiserver when it changes). Add to `spec.containers[0].command`:\n\n    {flags_list}\n\n\
                 and mount the two directories:\n\n\
                 ```yaml\n\
                 volumeMounts:\n\
                 - {{name: audit-config, mountPath: /etc/kubernetes/audit, readOnly: true}}\n\
                 - {{name: audit-log, mountPath: /var/log/kubernetes/audit}}\n\
                 volumes:\n\
                 - {{name: audit-config, hostPath: {{path: /etc/kubernetes/audit, type: Directory}}}}\n\
                 - {{name: audit-log, hostPath: {{path: /var/log/kubernetes/audit, type: DirectoryOrCreate}}}}\n\
                 ```\n\n\
                 New clusters: put the same under `apiServer.extraArgs` and `apiServer.extraVolumes`\n\
                 of the kubeadm ClusterConfiguration.\n"
            ),
        ),
        Platform::K3s => (
            "k3s",
            format!(
                "## 2. kube-apiserver flags\n\n\
                 In /etc/rancher/k3s/config.yaml (k3s runs the apiserver in its own process, so no\n\
                 volumes are needed):\n\n\
                 ```yaml\nkube-apiserver-arg:\n{}\n```\n\n\
                 then `sudo systemctl restart k3s`.\n",
                FLAGS
                    .lines()
                    .map(|l| format!("  - \"{}\"", l.trim_start_matches("--")))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ),
        Platform::Kind => (
            "kind",
            format!(
                "## 2. The kind cluster configuration\n\n\
                 Write the two files under ./audit/ on this machine instead, and create the cluster\n\
                 with (the apiserver runs in a node container, so the files are mounted in):\n\n\
                 ```yaml\n\
                 kind: Cluster\n\
                 apiVersion: kind.x-k8s.io/v1alpha4\n\
                 nodes:\n\
                 - role: control-plane\n\
                 \x20 extraMounts:\n\
                 \x20 - {{hostPath: ./audit, containerPath: /etc/kubernetes/audit, readOnly: true}}\n\
                 \x20 kubeadmConfigPatches:\n\
                 \x20 - |\n\
                 \x20   kind: ClusterConfiguration\n\
                 \x20   apiServer:\n\
                 \x20     extraArgs:\n{}\n\
                 \x20     extraVolumes:\n\
                 \x20     - {{name: audit, hostPath: /etc/kubernetes/audit, mountPath: /etc/kubernetes/audit, readOnly: true, pathType: Directory}}\n\
                 ```\n\n\
                 From inside the kind node this machine is not `localhost`: give `kaudit setup kind\n\
                 --server https://<this host's IP on the kind network>:PORT/...` and add that IP to\n\
                 `tls.hosts`.\n",
                FLAGS
                    .lines()
                    .map(|l| {
                        let (k, v) = l.trim_start_matches("--").split_once('=').unwrap();
                        format!("          {k}: \"{v}\"")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ),
        Platform::Minikube => (
            "minikube",
            format!(
                "## 2. Start minikube with the flags\n\n\
                 minikube copies ~/.minikube/files/ into its VM: put the two files in\n\
                 ~/.minikube/files/etc/ssl/certs/audit/ (a path the apiserver already mounts), then:\n\n\
                 \x20   minikube start \\\n{}\n\n\
                 From the VM this machine is `host.minikube.internal`: use `--server` accordingly and\n\
                 add it to `tls.hosts`.\n",
                FLAGS
                    .replace("/etc/kubernetes/audit/", "/etc/ssl/certs/audit/")
                    .replace("/var/log/kubernetes/audit/", "/var/log/")
                    .lines()
                    .map(|l| format!("      --extra-config=apiserver.{} \\", l.trim_start_matches("--")))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .trim_end_matches(" \\")
            ),
        ),
        Platform::Openshift => (
            "OpenShift",
            "## 2. OpenShift manages kube-apiserver's audit configuration\n\n\
             It cannot be given a webhook. Choose what is logged with the audit profile\n\
             (`oc edit apiserver cluster`, `spec.audit.profile`: Default, WriteRequestBodies or\n\
             AllRequestBodies), then either run `kaudit serve --tail openshift=/var/log/kube-apiserver/audit.log`\n\
             on each control-plane node (a DaemonSet with a hostPath mount), or collect and import:\n\n\
             \x20   oc adm node-logs --role=master --path=kube-apiserver/audit.log > audit.log\n\
             \x20   kaudit import --cluster openshift audit.log\n\n\
             The kubeconfig above is for a cluster you run kube-apiserver on yourself.\n"
                .to_string(),
        ),
        _ => unreachable!("cloud platforms are handled apart"),
    };
    let tail = "\n## 3. Start kaudit\n\n\
                \x20   kaudit serve            # the webhook, the API, /healthz /readyz /metrics\n\n\
                On a control-plane node it can also follow the log file (a second copy, and a way in\n\
                when the webhook is down): `kaudit serve --tail /var/log/kubernetes/audit/audit.log`.\n\
                Check: `curl -sk https://localhost:PORT/readyz`, then `kaudit query since=5m`.\n";
    format!("# kaudit on {title}\n\n{files}{how}{tail}")
}

fn cloud(p: Platform, cluster: &str) -> String {
    match p {
        Platform::Eks => format!(
            "# kaudit with EKS\n\n\
             EKS runs kube-apiserver for you and sends its audit log to CloudWatch Logs; no webhook.\n\n\
             1. Turn on audit logging (once):\n\n\
             \x20   aws eks update-cluster-config --name {cluster} \\\n\
             \x20     --logging '{{\"clusterLogging\":[{{\"types\":[\"audit\"],\"enabled\":true}}]}}'\n\n\
             2. Export and import (repeat for new events; importing twice stores nothing twice):\n\n\
             \x20   aws logs filter-log-events --log-group-name /aws/eks/{cluster}/cluster \\\n\
             \x20     --log-stream-name-prefix kube-apiserver-audit --start-time $(date -d '-1 day' +%s000) \\\n\
             \x20     > eks-audit.json\n\
             \x20   kaudit import --format eks --cluster {cluster} eks-audit.json\n\n\
             S3 exports (`aws logs create-export-task`) and subscription-filter payloads import the same\n\
             way. CloudWatch cuts entries at 256 KB: `kaudit import` counts such records as truncated.\n"
        ),
        Platform::Gke => format!(
            "# kaudit with GKE\n\n\
             GKE writes kube-apiserver's audit events to Cloud Audit Logs. Admin Activity is always on;\n\
             reads need Data Access logs (IAM → Audit Logs → Kubernetes Engine API: Data Read, Data Write).\n\n\
             \x20   gcloud logging read 'resource.type=\"k8s_cluster\" AND resource.labels.cluster_name=\"{cluster}\" \\\n\
             \x20     AND logName:\"cloudaudit.googleapis.com\"' --freshness=1d --format=json > gke-audit.json\n\
             \x20   kaudit import --format gke --cluster {cluster} gke-audit.json\n\n\
             Pub/Sub log sinks deliver the same entries wrapped in envelopes; those import too.\n"
        ),
        Platform::Aks => format!(
            "# kaudit with AKS\n\n\
             AKS sends kube-apiserver's audit log through diagnostic settings.\n\n\
             1. Route the `kube-audit` category (or `kube-audit-admin`, without get/list) to a storage account:\n\n\
             \x20   az monitor diagnostic-settings create --name kaudit \\\n\
             \x20     --resource $(az aks show -g RG -n {cluster} --query id -o tsv) \\\n\
             \x20     --storage-account STORAGE_ACCOUNT_ID --logs '[{{\"category\":\"kube-audit\",\"enabled\":true}}]'\n\n\
             2. Download the hourly blobs and import them:\n\n\
             \x20   az storage blob download-batch --account-name ACCOUNT \\\n\
             \x20     --source insights-logs-kube-audit --destination ./aks-audit\n\
             \x20   kaudit import --format aks --cluster {cluster} $(find ./aks-audit -name '*.json')\n"
        ),
        _ => unreachable!(),
    }
}
