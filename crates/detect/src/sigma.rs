//! Sigma rules: a file with `logsource` and `detection` is a Sigma rule. Those for
//! Kubernetes audit logs (`product: kubernetes`, `service: audit`) are translated into
//! kaudit rules and run by the same engine; kaudit's own rule language *is* Sigma's
//! detection syntax, so the translation only maps metadata and Sigma's field quirks.
//!
//! Field names in Sigma's Kubernetes rules are the audit event's own dotted paths, plus:
//! - a bare `apiGroup` (two rules) meaning `objectRef.apiGroup`;
//! - the pseudo-fields `hostPath` and `capabilities`, which do not exist in events: they
//!   mean the pod's `spec.volumes[].hostPath.path` and its containers'
//!   `securityContext.capabilities` (a `'*'` value then means "present").
//!
//! The deprecated aggregation suffix `| count() by F > N` (with `timeframe`) becomes a
//! threshold; `| count(X) by F > N` a distinct count.

use regex::Regex;
use serde_json::{Map, Value};

use crate::defs::{DistinctDef, RuleDef, Severity, ThresholdDef};
use crate::fields::Field;

/// Whether a YAML document is a Sigma rule.
pub fn is_sigma(doc: &Value) -> bool {
    doc.get("logsource").is_some() && doc.get("detection").is_some()
}

/// Sigma field names to kaudit fields.
pub fn field(name: &str) -> Result<Field, String> {
    match name {
        "apiGroup" => Field::parse("objectRef.apiGroup"),
        "hostPath" => Field::parse("pod.spec.volumes.hostPath.path"),
        "capabilities" => Field::parse("pod.containers.securityContext.capabilities"),
        "" => Ok(Field::Raw),
        n => Field::parse(n),
    }
}

fn str_of<'a>(doc: &'a Value, k: &str) -> Option<&'a str> {
    doc.get(k).and_then(Value::as_str)
}

fn strings(doc: &Value, k: &str) -> Vec<String> {
    match doc.get(k) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Translates one Sigma document. `Err` says why it is skipped (another log source, a
/// feature kaudit does not run).
pub(crate) fn translate(doc: &Value) -> Result<Option<RuleDef>, String> {
    let title = str_of(doc, "title")
        .unwrap_or("untitled Sigma rule")
        .to_string();
    let ls = doc.get("logsource").cloned().unwrap_or(Value::Null);
    let product = str_of(&ls, "product").unwrap_or("");
    let service = str_of(&ls, "service").unwrap_or("");
    if !product.eq_ignore_ascii_case("kubernetes")
        || !(service.is_empty() || service.eq_ignore_ascii_case("audit"))
    {
        return Err(format!(
            "Sigma rule {title:?}: logsource product {product:?} service {service:?} is not Kubernetes audit (product: kubernetes, service: audit)"
        ));
    }
    if doc.get("correlation").is_some() {
        return Err(format!(
            "Sigma rule {title:?}: correlation rules are not supported"
        ));
    }
    let id = match str_of(doc, "id") {
        Some(i) => format!("sigma.{i}"),
        None => format!(
            "sigma.{}",
            title
                .to_ascii_lowercase()
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("-")
        ),
    };
    let severity = match str_of(doc, "level") {
        Some(l) => Severity::parse(l).map_err(|e| format!("Sigma rule {title:?}: level: {e}"))?,
        None => Severity::Medium,
    };
    let mut mitre = Vec::new();
    let mut tags = Vec::new();
    for t in strings(doc, "tags") {
        match t.strip_prefix("attack.") {
            Some(x)
                if (x.starts_with('t') || x.starts_with('T'))
                    && x.chars().nth(1).is_some_and(|c| c.is_ascii_digit()) =>
            {
                mitre.push(x.to_ascii_uppercase())
            }
            _ => tags.push(t),
        }
    }
    let Some(Value::Object(det)) = doc.get("detection") else {
        return Err(format!("Sigma rule {title:?}: detection is not a map"));
    };
    let mut detection: Map<String, Value> = det.clone();
    let mut threshold = None;
    let mut distinct = None;
    if let Some(Value::String(c)) = det.get("condition")
        && let Some((cond, agg)) = c.split_once('|')
    {
        let timeframe = det
            .get("timeframe")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                format!("Sigma rule {title:?}: an aggregation needs detection.timeframe")
            })?
            .to_string();
        let re = Regex::new(
            r"^\s*count\(\s*([\w.]*)\s*\)\s*(?:by\s+([\w.,\s]+?))?\s*(>=|>)\s*(\d+)\s*$",
        )
        .map_err(|e| e.to_string())?;
        let caps = re.captures(agg).ok_or_else(|| {
            format!(
                "Sigma rule {title:?}: aggregation {agg:?} is not supported (count() [by F] > N)"
            )
        })?;
        let mut n: u64 = caps[4].parse().map_err(|_| "bad count")?;
        if &caps[3] == ">" {
            n += 1;
        }
        let by: Vec<String> = caps
            .get(2)
            .map(|b| {
                b.as_str()
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if caps[1].is_empty() {
            threshold = Some(ThresholdDef {
                count: n,
                window: timeframe,
                by,
            });
        } else {
            distinct = Some(DistinctDef {
                field: caps[1].to_string(),
                count: n.max(2),
                window: timeframe,
                by,
            });
        }
        detection.insert("condition".into(), Value::String(cond.trim().to_string()));
    }
    detection.remove("timeframe");
    Ok(Some(RuleDef {
        id,
        title,
        description: str_of(doc, "description").unwrap_or("").to_string(),
        severity,
        mitre,
        level: None,
        enabled: !matches!(str_of(doc, "status"), Some("deprecated" | "unsupported")),
        tags,
        references: strings(doc, "references"),
        false_positives: strings(doc, "falsepositives"),
        detection,
        output: None,
        threshold,
        distinct,
        first_seen: None,
        tests: Vec::new(),
        sigma: true,
    }))
}
