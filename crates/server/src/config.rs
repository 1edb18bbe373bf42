//! `kaudit.yaml`: everything `kaudit serve` does, with a default for every setting (so an
//! empty file, or none, is a working configuration). Documented in `docs/serve.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kaudit_alerts::{SinkConfig, ThrottleConfig};
use kaudit_detect::Severity;
use kaudit_model::units::serde_units;
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
    #[serde(with = "serde_units::size")]
    pub max_body: u64,
    /// Bodies waiting for the disk, in bytes, before new ones get 429 with Retry-After.
    #[serde(with = "serde_units::size")]
    pub max_queued: u64,
    /// Retry-After (seconds) sent with 429 and 503.
    pub retry_after_secs: u64,
}

impl Default for Webhook {
    fn default() -> Self {
        Webhook {
            path: "/audit".into(),
            max_body: 16 << 20,
            max_queued: 256 << 20,
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
    #[serde(default = "default_poll", with = "serde_units::duration")]
    pub poll: Duration,
}

fn default_cluster() -> String {
    "default".into()
}

fn default_poll() -> Duration {
    Duration::from_millis(200)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Remove sealed segments whose newest event is older than this (`90d`); none: keep.
    #[serde(with = "serde_units::opt_duration")]
    pub max_age: Option<Duration>,
    /// Remove the oldest sealed segments while all of them exceed this (`50G`); none: keep.
    #[serde(with = "serde_units::opt_size")]
    pub max_size: Option<u64>,
    /// How often retention runs.
    #[serde(with = "serde_units::duration")]
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: None,
            max_size: None,
            every: Duration::from_secs(3600),
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
    #[serde(with = "serde_units::duration")]
    pub seal_every: Duration,
    /// Rows of recently sealed segments whose dedup keys stay in memory.
    pub dedup_hot_rows: u64,
    /// Sign a checkpoint at most this often.
    #[serde(with = "serde_units::duration")]
    pub checkpoint_every: Duration,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            seal_rows: 500_000,
            seal_every: Duration::from_secs(3600),
            dedup_hot_rows: 500_000,
            checkpoint_every: Duration::from_secs(1),
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
    #[serde(with = "serde_units::duration")]
    pub save_every: Duration,
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
            save_every: Duration::from_secs(10),
            throttle: ThrottleConfig::default(),
            sinks: Vec::new(),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A YAML error with its line (and column) where the parser knows it; an unknown key (which
/// comes without a position) is looked up in the text.
fn yaml_error(text: &str, e: &serde_saphyr::Error) -> String {
    if let Some(l) = e.location() {
        return format!(
            "line {}:{}: {}",
            l.line(),
            l.column(),
            first_line(&e.to_string())
        );
    }
    let m = e.to_string();
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
        None => first_line(&m).to_string(),
    }
}

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
            // Through serde_path_to_error: a value that does not parse (a duration, a size)
            // is named by its field path (`retention.max_age`), syntax errors by line.
            let mut path = String::new();
            let r = serde_saphyr::with_deserializer_from_str(text, |de| {
                serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
                    path = e.path().to_string();
                    e.into_inner()
                })
            });
            match r {
                Ok(c) => c,
                Err(e) if e.location().is_none() && !path.is_empty() && path != "." => {
                    return Err(format!("{path}: {}", yaml_error(text, &e)));
                }
                Err(e) => return Err(yaml_error(text, &e)),
            }
        };
        c.check()?;
        Ok(c)
    }

    /// What serde cannot check (durations and sizes are parsed as the file is read).
    pub fn check(&self) -> Result<(), String> {
        if !self.webhook.path.starts_with('/') {
            return Err(format!(
                "webhook.path: {:?} must start with /",
                self.webhook.path
            ));
        }
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

    #[test]
    fn empty_is_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, "0.0.0.0:8443");
        assert!(c.tls.enabled);
        assert_eq!(c.webhook.max_body, 16 << 20);
        assert_eq!(c.tail.len(), 0);
    }

    #[test]
    fn a_full_file() {
        let c = Config::parse(
            "data: /var/lib/kaudit\nlisten: 127.0.0.1:9443\nclusters:\n  - name: prod\n    token: s3cret-token\n  - name: staging\n    client_cn: apiserver-staging\ntail:\n  - path: /var/log/audit.log\n    cluster: prod\nretention:\n  max_age: 90d\n  max_size: 50G\n",
        )
        .unwrap();
        assert_eq!(c.clusters.len(), 2);
        assert_eq!(c.tail[0].poll, Duration::from_millis(200));
        assert_eq!(c.retention.max_size, Some(50 << 30));
        assert_eq!(c.retention.max_age, Some(Duration::from_secs(90 * 86400)));
    }

    #[test]
    fn errors_name_the_place() {
        let e = Config::parse("listen: 1\nwebhok: {}\n").unwrap_err();
        assert!(e.contains("webhok") && e.contains('2'), "{e}");
        let e = Config::parse("retention:\n  max_age: forever\n").unwrap_err();
        assert!(
            e.starts_with("retention.max_age: ") && e.contains("forever"),
            "{e}"
        );
        let e = Config::parse("webhook:\n  max_body: 16Q\n").unwrap_err();
        assert!(
            e.starts_with("webhook.max_body: ") && e.contains("16Q"),
            "{e}"
        );
        let e =
            Config::parse("detect:\n  sinks:\n    - {name: a, type: file, path: x, timeout: 1y}\n")
                .unwrap_err();
        assert!(e.starts_with("detect.sinks[0].timeout: "), "{e}");
        let c = Config::parse("webhook:\n  max_body: 1048576\n").unwrap();
        assert_eq!(c.webhook.max_body, 1 << 20);
        let e = Config::parse("clusters:\n  - name: x\n").unwrap_err();
        assert!(e.contains("clusters[0]"), "{e}");
    }
}
