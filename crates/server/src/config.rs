//! `kaudit.yaml`: everything `kaudit serve` does, with a default for every setting (so an
//! empty file, or none, is a working configuration). Documented in `docs/serve.md`.

use std::path::{Path, PathBuf};

use kaudit_alerts::{SinkConfig, ThrottleConfig};
use kaudit_detect::Severity;
use serde::Deserialize;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The data directory.
    pub data: PathBuf,
    /// Address to listen on (webhook, API, health, metrics).
    pub listen: String,
    pub tls: Tls,
    pub webhook: Webhook,
    /// Who may send events, and the cluster name their events are stored under.
    pub clusters: Vec<Client>,
    /// Who may query (`Authorization: Bearer`). Empty: queries from loopback only.
    pub api: Api,
    /// audit.log files to follow.
    pub tail: Vec<Tail>,
    pub retention: Retention,
    pub store: StoreTuning,
    /// Live detection: rules run on every stored event, alerts stored and delivered.
    pub detect: Detect,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./kaudit-data"),
            listen: "0.0.0.0:8443".into(),
            tls: Tls::default(),
            webhook: Webhook::default(),
            clusters: Vec::new(),
            api: Api::default(),
            tail: Vec::new(),
            retention: Retention::default(),
            store: StoreTuning::default(),
            detect: Detect::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// Serve HTTPS. Turning it off is for tests and for a TLS-terminating proxy in front.
    pub enabled: bool,
    /// Serving certificate and key (PEM). Absent: a CA and a certificate signed by it are
    /// created in `<data>/tls/` on first start.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Extra DNS names or IPs for the generated certificate (localhost, 127.0.0.1, ::1 and
    /// the host name are always in it).
    pub hosts: Vec<String>,
    /// CA (PEM) whose client certificates are accepted; a client certificate's Common Name
    /// is matched against `clusters[].client_cn`. Absent: the generated CA, if one was.
    pub client_ca: Option<PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: true,
            cert: None,
            key: None,
            hosts: Vec::new(),
            client_ca: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhook {
    /// The path kube-apiserver POSTs to (its `?timeout=30s` query is ignored).
    pub path: String,
    /// Largest body accepted (413 above). kube-apiserver's batches stay under 10 MiB.
    pub max_body: String,
    /// Bodies waiting for the disk, in bytes, before new ones get 429 with Retry-After.
    pub max_queued: String,
    /// Retry-After (seconds) sent with 429 and 503.
    pub retry_after_secs: u64,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            path: "/audit".into(),
            max_body: "16M".into(),
            max_queued: "256M".into(),
            retry_after_secs: 2,
        }
    }
}

/// A sender of events.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The cluster name its events are stored under.
    pub name: String,
    /// A bearer token it presents.
    #[serde(default)]
    pub token: Option<String>,
    /// A file holding the token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The Common Name of its client certificate.
    #[serde(default)]
    pub client_cn: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    pub tokens: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    pub path: PathBuf,
    #[serde(default = "default_cluster")]
    pub cluster: String,
    /// How often to look for new lines when there are none, e.g. `200ms`.
    #[serde(default = "default_poll")]
    pub poll: String,
}

fn default_cluster() -> String {
    "default".into()
}

fn default_poll() -> String {
    "200ms".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Remove sealed segments whose newest event is older than this (`90d`); none: keep.
    pub max_age: Option<String>,
    /// Remove the oldest sealed segments while all of them exceed this (`50G`); none: keep.
    pub max_size: Option<String>,
    /// How often retention runs.
    pub every: String,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_size: None,
            every: "1h".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreTuning {
    /// Events per WAL file before it is sealed into a segment.
    pub seal_rows: u64,
    /// Seal a non-empty WAL file at least this often, so events become columnar (and
    /// retention can reach them) on quiet clusters too.
    pub seal_every: String,
    /// Rows of recently sealed segments whose dedup keys stay in memory.
    pub dedup_hot_rows: u64,
    /// Sign a checkpoint at most this often.
    pub checkpoint_every: String,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            seal_rows: 500_000,
            seal_every: "1h".into(),
            dedup_hot_rows: 500_000,
            checkpoint_every: "1s".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Detect {
    /// Run the rules on every stored event.
    pub enabled: bool,
    /// Load the built-in rule pack.
    pub builtin: bool,
    /// Rule files or directories loaded after the built-in pack (kaudit rules or Sigma).
    pub rules: Vec<PathBuf>,
    /// Rules that are off by default to turn on (ids; `all`).
    pub enable: Vec<String>,
    /// Alerts below this severity are not stored.
    pub min_severity: Severity,
    /// The first time detection runs on a data directory: also evaluate the events already
    /// stored (otherwise it starts with the events stored from then on).
    pub from_start: bool,
    /// Save the detector's position and rule state at least this often.
    pub save_every: String,
    /// Default throttling of notifications (per sink: `sinks[].throttle`).
    pub throttle: ThrottleConfig,
    /// Where alerts are delivered.
    pub sinks: Vec<SinkConfig>,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            enabled: true,
            builtin: true,
            rules: Vec::new(),
            enable: Vec::new(),
            min_severity: Severity::Info,
            from_start: false,
            save_every: "10s".into(),
            throttle: ThrottleConfig::default(),
            sinks: Vec::new(),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

pub use kaudit_model::units::{duration, size};

impl Config {
    /// Reads `path`; errors name the file, line and field.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let c: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| match e.location() {
                Some(l) => format!(
                    "line {}:{}: {}",
                    l.line(),
                    l.column(),
                    first_line(&e.to_string())
                ),
                None => {
                    let m = e.to_string();
                    // Unknown keys come without a position: find the key.
                    let key = m
                        .strip_prefix("unknown field `")
                        .and_then(|r| r.split('`').next());
                    match key.and_then(|k| {
                        text.lines().position(|l| {
                            l.trim_start()
                                .trim_start_matches("- ")
                                .starts_with(&format!("{k}:"))
                        })
                    }) {
                        Some(i) => format!("line {}: {}", i + 1, first_line(&m)),
                        None => m,
                    }
                }
            })?
        };
        c.check()?;
        Ok(c)
    }

    /// What serde cannot check: values that must parse, names that must be unique.
    pub fn check(&self) -> Result<(), String> {
        size(&self.webhook.max_body).map_err(|e| format!("webhook.max_body: {e}"))?;
        size(&self.webhook.max_queued).map_err(|e| format!("webhook.max_queued: {e}"))?;
        if !self.webhook.path.starts_with('/') {
            return Err(format!(
                "webhook.path: {:?} must start with /",
                self.webhook.path
            ));
        }
        for (i, t) in self.tail.iter().enumerate() {
            duration(&t.poll).map_err(|e| format!("tail[{i}].poll: {e}"))?;
        }
        if let Some(a) = &self.retention.max_age {
            duration(a).map_err(|e| format!("retention.max_age: {e}"))?;
        }
        if let Some(m) = &self.retention.max_size {
            size(m).map_err(|e| format!("retention.max_size: {e}"))?;
        }
        duration(&self.retention.every).map_err(|e| format!("retention.every: {e}"))?;
        duration(&self.store.seal_every).map_err(|e| format!("store.seal_every: {e}"))?;
        duration(&self.store.checkpoint_every)
            .map_err(|e| format!("store.checkpoint_every: {e}"))?;
        duration(&self.detect.save_every).map_err(|e| format!("detect.save_every: {e}"))?;
        self.detect
            .throttle
            .check()
            .map_err(|e| format!("detect.throttle.{e}"))?;
        // (Unique sink names are checked where they matter, when the sinks start.)
        for (i, s) in self.detect.sinks.iter().enumerate() {
            s.check()
                .map_err(|e| format!("detect.sinks[{i}] ({}).{e}", s.name))?;
        }
        for (i, t) in self.api.tokens.iter().enumerate() {
            if t.trim().len() < 8 {
                return Err(format!("api.tokens[{i}]: at least 8 characters"));
            }
        }
        for (i, c) in self.clusters.iter().enumerate() {
            if c.name.is_empty() || c.name.len() > 253 {
                return Err(format!("clusters[{i}].name: 1 to 253 characters"));
            }
            if c.token.as_deref().is_some_and(|t| t.trim().len() < 8) {
                return Err(format!(
                    "clusters[{i}] ({}).token: at least 8 characters (an empty or short token is \
                     guessable)",
                    c.name
                ));
            }
            if c.client_cn.as_deref().is_some_and(str::is_empty) {
                return Err(format!("clusters[{i}] ({}).client_cn: empty", c.name));
            }
            if c.token.is_none() && c.token_file.is_none() && c.client_cn.is_none() {
                return Err(format!(
                    "clusters[{i}] ({}): give a token, token_file or client_cn, or it can never \
                     authenticate",
                    c.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn empty_is_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, "0.0.0.0:8443");
        assert!(c.tls.enabled);
        assert_eq!(size(&c.webhook.max_body).unwrap(), 16 << 20);
    }

    #[test]
    fn a_full_file() {
        let c = Config::parse(
            "data: /var/lib/kaudit\nlisten: 127.0.0.1:9443\nclusters:\n  - name: prod\n    token: s3cret-token\n  - name: staging\n    client_cn: apiserver-staging\ntail:\n  - path: /var/log/audit.log\n    cluster: prod\nretention:\n  max_age: 90d\n  max_size: 50G\n",
        )
        .unwrap();
        assert_eq!(c.clusters.len(), 2);
        assert_eq!(c.tail[0].poll, "200ms");
        assert_eq!(size("50G").unwrap(), 50 << 30);
        assert_eq!(duration("90d").unwrap(), Duration::from_secs(90 * 86400));
    }

    #[test]
    fn errors_name_the_place() {
        let e = Config::parse("listen: 1\nwebhok: {}\n").unwrap_err();
        assert!(e.contains("webhok") && e.contains('2'), "{e}");
        let e = Config::parse("retention:\n  max_age: forever\n").unwrap_err();
        assert!(e.contains("retention.max_age"), "{e}");
        let e = Config::parse("clusters:\n  - name: x\n").unwrap_err();
        assert!(e.contains("clusters[0]"), "{e}");
    }
}
