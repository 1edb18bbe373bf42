//! The rule file format as written (lists, macros, rules, tests, overrides), what both kaudit
//! rule files and translated Sigma documents become before [`crate::rule`] compiles them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How bad an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// Parses kaudit's names, Sigma's levels and Falco's priorities.
    pub fn parse(s: &str) -> Result<Severity, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "info" | "informational" | "debug" => Severity::Info,
            "low" | "notice" => Severity::Low,
            "medium" | "warning" => Severity::Medium,
            "high" | "error" => Severity::High,
            "critical" | "alert" | "emergency" => Severity::Critical,
            _ => {
                return Err(format!(
                    "unknown severity {s:?} (info, low, medium, high, critical)"
                ));
            }
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severity::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One rule file as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDef {
    #[serde(default)]
    pub lists: BTreeMap<String, ListDef>,
    #[serde(default)]
    pub macros: BTreeMap<String, Value>,
    #[serde(default)]
    pub rules: Vec<RuleDef>,
    #[serde(default)]
    pub overrides: Vec<OverrideDef>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum ListDef {
    Items(Vec<Value>),
    Append { append: Vec<Value> },
}

/// One rule as written.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleDef {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    #[serde(default)]
    pub mitre: Vec<String>,
    /// The audit level the rule needs (inferred from the fields it reads when absent).
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub false_positives: Vec<String>,
    pub detection: Map<String, Value>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub threshold: Option<ThresholdDef>,
    #[serde(default)]
    pub distinct: Option<DistinctDef>,
    #[serde(default)]
    pub first_seen: Option<FirstSeenDef>,
    #[serde(default)]
    pub tests: Vec<TestDef>,
    /// Set by the Sigma importer: field names are Sigma's.
    #[serde(skip)]
    pub sigma: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThresholdDef {
    pub count: u64,
    pub window: String,
    #[serde(default)]
    pub by: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct DistinctDef {
    pub field: String,
    pub count: u64,
    pub window: String,
    #[serde(default)]
    pub by: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct FirstSeenDef {
    pub field: String,
    #[serde(default)]
    pub by: Vec<String>,
    /// How long (event time) to only learn, from the first event the rule sees.
    #[serde(default = "default_learn")]
    pub learn: String,
}

fn default_learn() -> String {
    "24h".into()
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestDef {
    pub name: String,
    #[serde(default = "one")]
    pub alerts: u64,
    #[serde(default)]
    pub event: Option<Value>,
    #[serde(default)]
    pub events: Vec<Value>,
    /// Values appended to shared lists for this test only (an IOC list that ships empty).
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<Value>>,
}

fn one() -> u64 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideDef {
    pub id: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Selections; an event matching any of them does not alert.
    #[serde(default)]
    pub exceptions: Vec<Map<String, Value>>,
}
