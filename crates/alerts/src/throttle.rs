//! Throttling deliveries: at most `max` alerts per group (by default the same rule, cluster
//! and user) in each `window`; the rest are counted, and when the window closes a summary
//! ("37 more like this were suppressed") is delivered instead. Every alert is still stored
//! and queryable; throttling only spares the people receiving notifications.
//!
//! Windows run in the time alerts were stored, so a sink that was unreachable for an hour and
//! catches up makes the same decisions it would have made live.

use std::collections::BTreeMap;
use std::time::Duration;

use kaudit_detect::Severity;
use serde::{Deserialize, Serialize};

use crate::log::StoredAlert;

/// `throttle:` in a sink's configuration (or `detect.throttle` for all sinks).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Length of a window (`10m`); `0s` turns throttling off.
    #[serde(with = "kaudit_model::units::serde_units::duration")]
    pub window: Duration,
    /// Alerts delivered per group and window.
    pub max: u32,
    /// What makes a group: any of `rule`, `cluster`, `user`, `namespace`, `source_ip`,
    /// `resource`, `severity`, `group` (a windowed rule's own group).
    pub by: Vec<String>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            window: Duration::from_secs(600),
            max: 3,
            by: vec!["rule".into(), "cluster".into(), "user".into()],
        }
    }
}

const BY: &[&str] = &[
    "rule",
    "cluster",
    "user",
    "namespace",
    "source_ip",
    "resource",
    "severity",
    "group",
];

impl ThrottleConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.max == 0 {
            return Err("max: at least 1 (set window: 0s to turn throttling off)".into());
        }
        for b in &self.by {
            if !BY.contains(&b.as_str()) {
                return Err(format!("by: unknown {b:?} (one of {})", BY.join(", ")));
            }
        }
        Ok(())
    }
}

/// A window that closed with alerts suppressed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    /// The group's values, in `by` order.
    pub group: String,
    /// Alerts not delivered in the window.
    pub suppressed: u64,
    /// The window (RFC 3339).
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Group {
    rule: String,
    title: String,
    severity: Severity,
    start: i64,
    sent: u32,
    suppressed: u64,
}

/// Groups tracked at most; beyond, alerts of new groups are delivered unthrottled.
const MAX_GROUPS: usize = 100_000;

/// A sink's throttling state (saved with its cursor).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Throttle {
    window: i64,
    max: u32,
    by: Vec<String>,
    groups: BTreeMap<String, Group>,
    /// The earliest window start among the groups (so most alerts skip the expiry scan).
    #[serde(skip)]
    earliest: Option<i64>,
}

impl Throttle {
    pub fn new(cfg: &ThrottleConfig) -> Result<Throttle, String> {
        cfg.check()?;
        Ok(Throttle {
            window: i64::try_from(cfg.window.as_micros()).unwrap_or(i64::MAX),
            max: cfg.max,
            by: cfg.by.clone(),
            groups: BTreeMap::new(),
            earliest: None,
        })
    }

    /// Takes over saved groups, when they were made with the same settings (otherwise the
    /// windows start afresh; suppressed counts of the old ones are not summarised).
    pub fn restore(&mut self, saved: Throttle) {
        if (saved.window, saved.max, &saved.by) == (self.window, self.max, &self.by) {
            self.earliest = saved.groups.values().map(|g| g.start).min();
            self.groups = saved.groups;
        }
    }

    fn key(&self, a: &StoredAlert) -> String {
        let a = &a.alert;
        let mut k = String::new();
        for (i, b) in self.by.iter().enumerate() {
            if i > 0 {
                k.push(' ');
            }
            let v = match b.as_str() {
                "rule" => a.rule.as_str(),
                "cluster" => a.cluster.as_str(),
                "user" => a.user.as_str(),
                "namespace" => a.namespace.as_str(),
                "source_ip" => a.source_ip.as_str(),
                "resource" => a.resource.as_str(),
                "severity" => a.severity.as_str(),
                _ => a.group.as_str(),
            };
            k.push_str(if v.is_empty() { "-" } else { v });
        }
        if !self.by.iter().any(|b| b == "rule") {
            k.push_str(" \u{0}");
            k.push_str(&a.rule);
        }
        k
    }

    /// Whether to deliver `a` (its stored time is the clock). Summaries of windows that
    /// closed before it are appended to `out` first.
    pub fn admit(&mut self, a: &StoredAlert, out: &mut Vec<Summary>) -> bool {
        if self.window <= 0 {
            return true;
        }
        let t = a.stored_micros();
        self.expire(t, out);
        let k = self.key(a);
        if let Some(g) = self.groups.get_mut(&k) {
            if g.sent < self.max {
                g.sent += 1;
                return true;
            }
            g.suppressed += 1;
            return false;
        }
        if self.groups.len() < MAX_GROUPS {
            self.earliest = Some(self.earliest.map_or(t, |e| e.min(t)));
            self.groups.insert(
                k,
                Group {
                    rule: a.alert.rule.clone(),
                    title: a.alert.title.clone(),
                    severity: a.alert.severity,
                    start: t,
                    sent: 1,
                    suppressed: 0,
                },
            );
        }
        true
    }

    /// Closes the windows that ended by `now`, appending summaries of those that suppressed
    /// something.
    pub fn expire(&mut self, now: i64, out: &mut Vec<Summary>) {
        let window = self.window;
        if self.earliest.is_none_or(|e| e + window > now) {
            return;
        }
        let ended: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.start + window <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            let g = self.groups.remove(&k).expect("listed");
            if g.suppressed > 0 {
                let group = match k.split_once(" \u{0}") {
                    Some((g, _)) => g.to_string(),
                    None => k,
                };
                out.push(Summary {
                    rule: g.rule,
                    title: g.title,
                    severity: g.severity,
                    group,
                    suppressed: g.suppressed,
                    from: kaudit_model::MicroTime(g.start).to_string(),
                    to: kaudit_model::MicroTime(g.start + window).to_string(),
                });
            }
        }
        self.earliest = self.groups.values().map(|g| g.start).min();
    }

    /// Groups being tracked.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaudit_detect::Alert;

    fn alert(seq: u64, rule: &str, user: &str, stored: i64) -> StoredAlert {
        StoredAlert {
            seq,
            stored: kaudit_model::MicroTime(stored).to_string(),
            alert: Alert {
                rule: rule.into(),
                title: format!("title of {rule}"),
                severity: Severity::High,
                mitre: vec![],
                time: kaudit_model::MicroTime(stored).to_string(),
                micros: stored,
                message: String::new(),
                cluster: "prod".into(),
                audit_id: format!("a{seq}"),
                stage: "ResponseComplete".into(),
                user: user.into(),
                verb: "create".into(),
                resource: "pods/exec".into(),
                namespace: "default".into(),
                name: "web".into(),
                source_ip: "10.0.0.1".into(),
                code: Some(101),
                group: String::new(),
                count: None,
            },
        }
    }

    const MIN: i64 = 60_000_000;

    #[test]
    fn limits_per_group_and_summarises() {
        let mut t = Throttle::new(&ThrottleConfig::default()).unwrap();
        let mut sums = Vec::new();
        let t0 = 1_700_000_000_000_000;
        let admitted: Vec<bool> = (0..10)
            .map(|i| {
                t.admit(
                    &alert(i, "k8s.exec", "jane", t0 + i as i64 * MIN / 10),
                    &mut sums,
                )
            })
            .collect();
        assert_eq!(admitted.iter().filter(|a| **a).count(), 3);
        assert!(sums.is_empty());
        // Another user is another group.
        assert!(t.admit(&alert(10, "k8s.exec", "bob", t0 + MIN), &mut sums));
        // After the window: the summary comes first, then the alert is delivered.
        assert!(t.admit(&alert(11, "k8s.exec", "jane", t0 + 11 * MIN), &mut sums));
        assert_eq!(sums.len(), 1, "{sums:?}");
        assert_eq!(sums[0].suppressed, 7);
        assert_eq!(sums[0].group, "k8s.exec prod jane");
        // A quiet group's window closes on a clock tick alone.
        t.admit(&alert(12, "k8s.exec", "jane", t0 + 12 * MIN), &mut sums);
        t.admit(&alert(13, "k8s.exec", "jane", t0 + 12 * MIN), &mut sums);
        t.admit(&alert(14, "k8s.exec", "jane", t0 + 12 * MIN), &mut sums);
        let mut later = Vec::new();
        t.expire(t0 + 30 * MIN, &mut later);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].suppressed, 1);
        assert_eq!(t.groups(), 0);
    }

    #[test]
    fn off_and_bad_config() {
        let mut t = Throttle::new(&ThrottleConfig {
            window: Duration::ZERO,
            ..ThrottleConfig::default()
        })
        .unwrap();
        let mut sums = Vec::new();
        assert!((0..100).all(|i| t.admit(&alert(i, "r", "u", i as i64), &mut sums)));
        let e = Throttle::new(&ThrottleConfig {
            by: vec!["usr".into()],
            ..ThrottleConfig::default()
        })
        .unwrap_err();
        assert!(e.contains("usr"), "{e}");
    }
}
