//! Where alerts go: a generic JSON webhook, a Slack-compatible incoming webhook (Slack,
//! Mattermost, Rocket.Chat and others take the same `{"text": ...}`), syslog (RFC 5424 over
//! UDP or TCP), and a file or standard output (JSON lines).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kaudit_detect::Severity;
use kaudit_model::units::{format_duration, serde_units};
use serde::{Deserialize, Serialize};

use crate::log::StoredAlert;
use crate::throttle::{Summary, ThrottleConfig};

/// One entry of `detect.sinks` in kaudit.yaml.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Names the sink in logs, metrics and its cursor file (`<data>/alerts/sinks/NAME.json`).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// webhook, slack: where to POST (http:// or https://).
    #[serde(default)]
    pub url: Option<String>,
    /// webhook: extra request headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// webhook: POST a JSON array of up to 100 items at a time instead of one object each.
    #[serde(default)]
    pub batch: bool,
    /// webhook, slack: trust this CA bundle (PEM) instead of the public web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// webhook, slack, syslog over TCP: give up on one attempt after this long.
    #[serde(default = "default_timeout", with = "serde_units::duration")]
    pub timeout: Duration,
    /// syslog: `udp://host:514` or `tcp://host:601`.
    #[serde(default)]
    pub address: Option<String>,
    /// syslog: the facility (`local0`..`local7`, `auth`, `authpriv`, `daemon`, `user`...).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// syslog: the HOSTNAME field (default: this machine's name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// file: the path to append JSON lines to; `-` is standard output.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Only alerts at least this severe.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only alerts of rules whose id matches one of these (`*` matches any run of characters).
    #[serde(default)]
    pub rules: Vec<String>,
    /// This sink's throttling (default: `detect.throttle`).
    #[serde(default)]
    pub throttle: Option<ThrottleConfig>,
    /// The first wait after a failed delivery; it doubles on each failure up to `retry_max`.
    #[serde(default = "default_retry_min", with = "serde_units::duration")]
    pub retry_min: Duration,
    #[serde(default = "default_retry_max", with = "serde_units::duration")]
    pub retry_max: Duration,
}

fn default_retry_min() -> Duration {
    Duration::from_secs(1)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(300)
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_facility() -> String {
    "local0".into()
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Webhook,
    Slack,
    Syslog,
    File,
}

impl SinkConfig {
    /// What serde cannot check; errors name the field.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        if n.is_empty()
            || n.len() > 64
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(format!(
                "name: {n:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        let need = |what: bool, field: &str| {
            if what {
                Ok(())
            } else {
                Err(format!("{field}: required for a {:?} sink", self.kind).to_lowercase())
            }
        };
        let unused = |set: bool, field: &str| {
            if set {
                Err(format!("{field}: not used by a {:?} sink", self.kind).to_lowercase())
            } else {
                Ok(())
            }
        };
        match self.kind {
            SinkKind::Webhook | SinkKind::Slack => {
                need(self.url.is_some(), "url")?;
                let u = self.url.as_deref().unwrap_or("");
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(format!("url: {u:?} must start with http:// or https://"));
                }
                unused(self.address.is_some(), "address")?;
                unused(self.path.is_some(), "path")?;
                if self.kind == SinkKind::Slack {
                    unused(self.batch, "batch")?;
                }
            }
            SinkKind::Syslog => {
                need(self.address.is_some(), "address")?;
                syslog_address(self.address.as_deref().unwrap_or(""))?;
                facility(&self.facility)?;
                unused(self.url.is_some(), "url")?;
                unused(self.path.is_some(), "path")?;
            }
            SinkKind::File => {
                need(self.path.is_some(), "path")?;
                unused(self.url.is_some(), "url")?;
                unused(self.address.is_some(), "address")?;
            }
        }
        if self.kind != SinkKind::Webhook {
            unused(!self.headers.is_empty(), "headers")?;
        }
        if self.timeout.is_zero() {
            return Err("timeout: must be above zero".into());
        }
        if self.retry_min.is_zero() || self.retry_min > self.retry_max {
            return Err(format!(
                "retry_min: {} must be above zero and at most retry_max ({})",
                format_duration(self.retry_min),
                format_duration(self.retry_max)
            ));
        }
        if let Some(t) = &self.throttle {
            t.check().map_err(|e| format!("throttle.{e}"))?;
        }
        Ok(())
    }

    /// Whether an alert is for this sink (severity and rule filters).
    pub fn wants(&self, a: &StoredAlert) -> bool {
        if self.min_severity.is_some_and(|m| a.alert.severity < m) {
            return false;
        }
        self.rules.is_empty() || self.rules.iter().any(|p| glob(p, &a.alert.rule))
    }
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// What a sink delivers.
// Alerts are most items, and few are held at a time: boxing them would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Alert(StoredAlert),
    Summary(Summary),
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    kind: &'static str,
    #[serde(flatten)]
    item: &'a T,
}

impl Item {
    /// The JSON a webhook or file receives: the stored alert or the summary, with `kind`.
    pub fn json(&self) -> String {
        match self {
            Item::Alert(a) => serde_json::to_string(&Tagged {
                kind: "alert",
                item: a,
            }),
            Item::Summary(s) => serde_json::to_string(&Tagged {
                kind: "summary",
                item: s,
            }),
        }
        .expect("serialising an alert")
    }

    fn severity(&self) -> Severity {
        match self {
            Item::Alert(a) => a.alert.severity,
            Item::Summary(s) => s.severity,
        }
    }

    /// One line for people (Slack, syslog's readers).
    pub fn text(&self) -> String {
        match self {
            Item::Alert(a) => {
                let a = &a.alert;
                let mut s = format!(
                    "[{}] {}: {}",
                    a.severity.as_str().to_uppercase(),
                    a.title,
                    a.message
                );
                let mut ctx = vec![format!("rule {}", a.rule)];
                if !a.cluster.is_empty() {
                    ctx.push(format!("cluster {}", a.cluster));
                }
                ctx.push(format!("at {}", a.time));
                ctx.push(format!("auditID {}", a.audit_id));
                s.push_str(&format!(" ({})", ctx.join(", ")));
                s
            }
            Item::Summary(m) => format!(
                "[{}] {}: {} more alert(s) of {} for {} were not sent between {} and {} (throttled); `kaudit alerts --rule {}` lists them",
                m.severity.as_str().to_uppercase(),
                m.title,
                m.suppressed,
                m.rule,
                m.group,
                m.from,
                m.to,
                m.rule
            ),
        }
    }
}

/// Why a delivery failed, and how many items of it went out before.
#[derive(Debug)]
pub struct SendError {
    pub delivered: usize,
    pub message: String,
    /// The receiver asked to wait this long (429/503 Retry-After).
    pub retry_after: Option<Duration>,
}

/// A destination.
pub trait Sink: Send {
    /// Delivers `items` in order, stopping between two of them when `stop` is set.
    fn send(&mut self, items: &[Item], stop: &AtomicBool) -> Result<(), SendError>;
}

/// Builds the sink a configuration describes.
pub fn build(cfg: &SinkConfig) -> Result<Box<dyn Sink>, String> {
    cfg.check()?;
    let timeout = cfg.timeout;
    Ok(match cfg.kind {
        SinkKind::Webhook | SinkKind::Slack => Box::new(Http::new(cfg, timeout)?),
        SinkKind::Syslog => Box::new(Syslog::new(cfg, timeout)?),
        SinkKind::File => Box::new(FileSink {
            path: cfg.path.clone().expect("checked"),
        }),
    })
}

// ---- HTTP (webhook, Slack) ----

struct Http {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    slack: bool,
    batch: bool,
}

impl Http {
    fn new(cfg: &SinkConfig, timeout: Duration) -> Result<Http, String> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("ca_file: {}: {e}", ca.display()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) =
                    item.map_err(|e| format!("ca_file: {}: {e}", ca.display()))?
                {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(format!(
                    "ca_file: {}: no PEM certificate in it",
                    ca.display()
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("kaudit/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build()
            .new_agent();
        Ok(Http {
            agent,
            url: cfg.url.clone().expect("checked"),
            headers: cfg
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            slack: cfg.kind == SinkKind::Slack,
            batch: cfg.batch,
        })
    }

    fn post(&self, body: String) -> Result<(), (String, Option<Duration>)> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let resp = req.send(body).map_err(|e| (e.to_string(), None))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(512)
            .read_to_string(&mut body);
        Err((
            format!("HTTP {status}: {}", body.trim().replace('\n', " ")),
            retry_after,
        ))
    }
}

fn stopped(delivered: usize) -> SendError {
    SendError {
        delivered,
        message: "stopping".into(),
        retry_after: None,
    }
}

impl Sink for Http {
    fn send(&mut self, items: &[Item], stop: &AtomicBool) -> Result<(), SendError> {
        if self.batch {
            for (i, chunk) in items.chunks(100).enumerate() {
                if stop.load(Ordering::Relaxed) {
                    return Err(stopped(i * 100));
                }
                let body = format!(
                    "[{}]",
                    chunk.iter().map(Item::json).collect::<Vec<_>>().join(",")
                );
                self.post(body)
                    .map_err(|(message, retry_after)| SendError {
                        delivered: i * 100,
                        message,
                        retry_after,
                    })?;
            }
            return Ok(());
        }
        for (i, item) in items.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Err(stopped(i));
            }
            let body = if self.slack {
                slack_body(item)
            } else {
                item.json()
            };
            self.post(body)
                .map_err(|(message, retry_after)| SendError {
                    delivered: i,
                    message,
                    retry_after,
                })?;
        }
        Ok(())
    }
}

/// A Slack incoming-webhook message: `text` (which every compatible receiver shows) and
/// Block Kit blocks with the details.
pub fn slack_body(item: &Item) -> String {
    let emoji = match item.severity() {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    };
    let text = format!("{emoji} {}", item.text());
    let blocks = match item {
        Item::Alert(a) => {
            let a = &a.alert;
            let mut fields = vec![
                format!("*Rule*\n`{}`", a.rule),
                format!("*Severity*\n{}", a.severity),
                format!("*User*\n{}", or_dash(&a.user)),
                format!("*Source IP*\n{}", or_dash(&a.source_ip)),
                format!(
                    "*Request*\n{} {}{}",
                    a.verb,
                    a.resource,
                    if a.name.is_empty() {
                        String::new()
                    } else if a.namespace.is_empty() {
                        format!(" {}", a.name)
                    } else {
                        format!(" {}/{}", a.namespace, a.name)
                    }
                ),
                format!("*Time*\n{}", a.time),
            ];
            if !a.cluster.is_empty() {
                fields.insert(0, format!("*Cluster*\n{}", a.cluster));
            }
            serde_json::json!([
                {"type": "header", "text": {"type": "plain_text", "text": truncate(&format!("{emoji} {}", a.title), 150), "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&a.message, 2900)}},
                {"type": "section", "fields": fields.iter().take(10).map(|f| serde_json::json!({"type": "mrkdwn", "text": truncate(f, 2000)})).collect::<Vec<_>>()},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&format!("auditID {}{}", a.audit_id, if a.mitre.is_empty() { String::new() } else { format!(" · MITRE {}", a.mitre.join(", ")) }), 2900)}]}
            ])
        }
        Item::Summary(_) => serde_json::json!([
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&text, 2900)}}
        ]),
    };
    serde_json::json!({"text": text, "blocks": blocks}).to_string()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

// ---- syslog ----

fn syslog_address(a: &str) -> Result<(bool, String), String> {
    let (tcp, rest) = if let Some(r) = a.strip_prefix("udp://") {
        (false, r)
    } else if let Some(r) = a.strip_prefix("tcp://") {
        (true, r)
    } else {
        return Err(format!(
            "address: {a:?} must be udp://host:port or tcp://host:port"
        ));
    };
    if !rest.contains(':') {
        return Err(format!(
            "address: {a:?} needs a port (514 for UDP, 601 for TCP)"
        ));
    }
    Ok((tcp, rest.to_string()))
}

fn facility(f: &str) -> Result<u8, String> {
    Ok(match f {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "authpriv" => 10,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => {
            return Err(format!(
                "facility: unknown {f:?} (local0..local7, auth, authpriv, daemon, user, syslog, kern)"
            ));
        }
    })
}

struct Syslog {
    tcp: bool,
    addr: String,
    facility: u8,
    hostname: String,
    timeout: Duration,
    conn: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

impl Syslog {
    fn new(cfg: &SinkConfig, timeout: Duration) -> Result<Syslog, String> {
        let (tcp, addr) = syslog_address(cfg.address.as_deref().unwrap_or(""))?;
        let hostname = cfg.hostname.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "-".into())
        });
        Ok(Syslog {
            tcp,
            addr,
            facility: facility(&cfg.facility)?,
            hostname,
            timeout,
            conn: None,
            udp: None,
        })
    }

    fn write(&mut self, msg: &[u8]) -> Result<(), String> {
        let resolve = |a: &str| {
            a.to_socket_addrs()
                .map_err(|e| format!("{a}: {e}"))?
                .next()
                .ok_or_else(|| format!("{a}: no address"))
        };
        if self.tcp {
            if self.conn.is_none() {
                let sa = resolve(&self.addr)?;
                let c = TcpStream::connect_timeout(&sa, self.timeout)
                    .map_err(|e| format!("{}: {e}", self.addr))?;
                let _ = c.set_write_timeout(Some(self.timeout));
                self.conn = Some(c);
            }
            // RFC 6587 octet counting: "LEN SP MSG".
            let mut framed = format!("{} ", msg.len()).into_bytes();
            framed.extend_from_slice(msg);
            let c = self.conn.as_mut().expect("connected");
            if let Err(e) = c.write_all(&framed) {
                self.conn = None;
                return Err(format!("{}: {e}", self.addr));
            }
            Ok(())
        } else {
            if self.udp.is_none() {
                let sa = resolve(&self.addr)?;
                let bind = if sa.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(bind).map_err(|e| format!("udp: {e}"))?;
                s.connect(sa).map_err(|e| format!("{}: {e}", self.addr))?;
                self.udp = Some(s);
            }
            let s = self.udp.as_ref().expect("bound");
            s.send(msg).map_err(|e| {
                self.udp = None;
                format!("{}: {e}", self.addr)
            })?;
            Ok(())
        }
    }
}

/// An RFC 5424 message: the text for people, structured data for machines, and the JSON
/// after it (`<PRI>1 TIMESTAMP HOST kaudit - ALERT [kaudit@32473 ...] MSG`).
pub fn syslog_message(item: &Item, facility: u8, hostname: &str, now: i64) -> String {
    let sev = match item.severity() {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    };
    let pri = facility as u32 * 8 + sev;
    let now = kaudit_model::MicroTime(now);
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let (msgid, sd) = match item {
        Item::Alert(a) => (
            "ALERT",
            format!(
                "[kaudit@32473 rule=\"{}\" severity=\"{}\" seq=\"{}\" cluster=\"{}\" user=\"{}\" auditID=\"{}\"]",
                esc(&a.alert.rule),
                a.alert.severity,
                a.seq,
                esc(&a.alert.cluster),
                esc(&a.alert.user),
                esc(&a.alert.audit_id)
            ),
        ),
        Item::Summary(s) => (
            "SUMMARY",
            format!(
                "[kaudit@32473 rule=\"{}\" severity=\"{}\" suppressed=\"{}\"]",
                esc(&s.rule),
                s.severity,
                s.suppressed
            ),
        ),
    };
    let host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    format!(
        "<{pri}>1 {now} {} kaudit - {msgid} {sd} {}",
        if host.is_empty() { "-" } else { &host },
        item.json()
    )
}

impl Sink for Syslog {
    fn send(&mut self, items: &[Item], stop: &AtomicBool) -> Result<(), SendError> {
        for (i, item) in items.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return Err(stopped(i));
            }
            let now = kaudit_model::now_micros();
            let m = syslog_message(item, self.facility, &self.hostname, now);
            self.write(m.as_bytes()).map_err(|message| SendError {
                delivered: i,
                message,
                retry_after: None,
            })?;
        }
        if let Some(c) = &mut self.conn {
            let _ = c.flush();
        }
        Ok(())
    }
}

// ---- file ----

struct FileSink {
    path: PathBuf,
}

impl Sink for FileSink {
    fn send(&mut self, items: &[Item], _stop: &AtomicBool) -> Result<(), SendError> {
        let mut buf = String::new();
        for i in items {
            buf.push_str(&i.json());
            buf.push('\n');
        }
        let fail = |e: std::io::Error| SendError {
            delivered: 0,
            message: format!("{}: {e}", self.path.display()),
            retry_after: None,
        };
        if self.path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            out.write_all(buf.as_bytes()).map_err(fail)?;
            return out.flush().map_err(fail);
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        f.write_all(buf.as_bytes()).map_err(fail)?;
        f.sync_data().map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("k8s.exec.*", "k8s.exec.shell"));
        assert!(glob("*", "x"));
        assert!(glob("k8s.*.admin", "k8s.rbac.admin"));
        assert!(!glob("k8s.*.admin", "k8s.rbac.admins"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("a*a", "a"));
    }

    #[test]
    fn config_errors_name_the_field() {
        let c: SinkConfig =
            serde_json::from_str(r#"{"name":"s","type":"syslog","address":"10.0.0.1:514"}"#)
                .unwrap();
        assert!(c.check().unwrap_err().contains("udp://"));
        let c: SinkConfig = serde_json::from_str(
            r#"{"name":"s","type":"slack","path":"/tmp/x","url":"https://h"}"#,
        )
        .unwrap();
        assert!(c.check().unwrap_err().starts_with("path:"));
        let c: SinkConfig = serde_json::from_str(r#"{"name":"s","type":"webhook"}"#).unwrap();
        assert!(c.check().unwrap_err().starts_with("url:"));
        let c: SinkConfig =
            serde_json::from_str(r#"{"name":"a b","type":"file","path":"-"}"#).unwrap();
        assert!(c.check().unwrap_err().starts_with("name:"));
    }
}
