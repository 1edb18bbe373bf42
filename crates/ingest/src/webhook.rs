//! The audit webhook's protocol: what kube-apiserver POSTs (`EventList`, `audit.k8s.io/v1` or
//! `v1beta1`, items without `kind`/`apiVersion`) and what is refused. No HTTP here: the server
//! hands over the body and turns a [`Rejection`] into a status.
//!
//! A body is taken whole or not at all: one bad item refuses the batch (400), so a batch is
//! never half stored. kube-apiserver retries any failure, then drops the batch and logs it.

use std::ops::ControlFlow;

use kaudit_model::decode::{self, Record};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a body is refused, and the HTTP status that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
}

fn bad(reason: String) -> Rejection {
    Rejection {
        status: 400,
        reason,
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "apiVersion", borrow, default)]
    api_version: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

/// The events of a webhook body, in order, each with its exact bytes.
pub fn parse(body: &[u8]) -> Result<Vec<Record<'_>>, Rejection> {
    let text = std::str::from_utf8(body).map_err(|e| {
        bad(format!(
            "the body is not UTF-8 (byte {})",
            e.valid_up_to() + 1
        ))
    })?;
    let start = text.trim_start();
    if !start.is_empty() && !start.starts_with('{') {
        return Err(bad(format!(
            "not a JSON EventList: the body starts with {:?}, not an object",
            start.chars().next().unwrap()
        )));
    }
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            bad(format!(
                "the body ends before its JSON does (truncated at byte {})",
                text.len()
            ))
        } else {
            bad(format!(
                "not a JSON EventList: line {} column {}: {}",
                e.line(),
                e.column(),
                strip_position(&e.to_string())
            ))
        }
    })?;
    match env.kind.as_deref() {
        Some("EventList") => {}
        Some(k) => return Err(bad(format!("kind {k:?}: expected an audit EventList"))),
        None => return Err(bad("no kind: expected an audit EventList".into())),
    }
    match env.api_version.as_deref() {
        Some("audit.k8s.io/v1" | "audit.k8s.io/v1beta1") => {}
        Some(v) => {
            return Err(bad(format!(
                "apiVersion {v:?}: expected audit.k8s.io/v1 or audit.k8s.io/v1beta1"
            )));
        }
        None => return Err(bad("no apiVersion: expected audit.k8s.io/v1".into())),
    }
    let items = env
        .items
        .ok_or_else(|| bad("no items: an EventList always has them".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let mut got = None;
        let mut failed = None;
        decode::decode_slice(item.get().as_bytes(), |r| {
            match r {
                Ok(rec) if got.is_none() => got = Some(rec),
                Ok(_) => failed = Some("more than one event".to_string()),
                Err(e) => failed = Some(format!("{}: {}", e.kind.as_str(), e.message)),
            }
            ControlFlow::Continue(())
        });
        match (got, failed) {
            (Some(mut rec), None) => {
                rec.item = Some(i);
                out.push(rec);
            }
            (_, Some(why)) => return Err(bad(format!("items[{i}]: {why}"))),
            (None, None) => return Err(bad(format!("items[{i}]: not an audit event"))),
        }
    }
    Ok(out)
}

fn strip_position(m: &str) -> &str {
    m.rfind(" at line ").map_or(m, |i| &m[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"jane"},"sourceIPs":["10.0.0.1"],"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-01T00:00:00.000000Z","stageTimestamp":"2026-03-01T00:00:00.001000Z"}"#;

    fn list(items: &str) -> String {
        format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{items}]}}"#
        )
    }

    #[test]
    fn takes_an_event_list_with_exact_bytes() {
        let body = list(&format!("{EVENT},{EVENT}")) + "\n";
        let recs = parse(body.as_bytes()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].raw, EVENT);
        assert_eq!(recs[1].item, Some(1));
        let v1beta1 = body.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1");
        assert_eq!(parse(v1beta1.as_bytes()).unwrap().len(), 2);
        assert_eq!(parse(list("").as_bytes()).unwrap().len(), 0);
    }

    #[test]
    fn refuses_what_is_not_one() {
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), "truncated"),
            (list(EVENT)[..60].to_string(), "truncated"),
            ("[]".into(), "not a JSON EventList"),
            ("nonsense".into(), "not a JSON EventList"),
            (
                list(EVENT).replace("EventList", "PodList"),
                "kind \"PodList\"",
            ),
            (
                list(EVENT).replace("audit.k8s.io/v1", "v1"),
                "apiVersion \"v1\"",
            ),
            (
                r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}"#.into(),
                "no items",
            ),
            (
                list(&format!("{EVENT},{{\"level\":\"Loud\"}}")),
                "items[1]: invalid field",
            ),
            (
                list(&format!("{EVENT},{{}}")),
                "items[1]: not an audit event",
            ),
            (list("42"), "items[0]"),
            (list(EVENT) + "{}", "not a JSON EventList"),
        ];
        for (body, want) in cases {
            let r = parse(body.as_bytes()).unwrap_err();
            assert_eq!(r.status, 400);
            assert!(
                r.reason.contains(want),
                "{body:?}: {:?} lacks {want:?}",
                r.reason
            );
        }
        let r = parse(b"\xff\xfe").unwrap_err();
        assert!(r.reason.contains("UTF-8"), "{r:?}");
    }
}
