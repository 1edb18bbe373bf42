//! EKS: audit events in CloudWatch Logs (`/aws/eks/<cluster>/cluster`, streams
//! `kube-apiserver-audit-*`).

use std::ops::ControlFlow;

use serde_json::value::RawValue;

use super::{At, Cloud, Cut, Obj, Sink, b64, json_type};
use crate::Text;
use crate::decode::ErrorKind;

/// The stream prefix of the audit log type. `kube-apiserver-` alone also matches the `api` log.
const AUDIT_STREAM: &str = "kube-apiserver-audit";

/// The message part of a CloudWatch export-task line, `<ISO-8601 timestamp> <message>`.
pub(super) fn strip_export_prefix(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    if b.len() < 20 || !b[0].is_ascii_digit() || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let sp = line.find(' ')?;
    crate::MicroTime::parse(&line[..sp])?;
    Some(line[sp + 1..].trim_start())
}

/// Whether `v` is a Logs Insights result row: `[{"field":…,"value":…},…]`.
pub(super) fn is_insights_row(v: &str) -> bool {
    let v = v[1..].trim_start();
    v.starts_with('{') && v.len() > 1 && {
        let inner = v[1..].trim_start();
        inner.starts_with("\"field\"") || inner.starts_with("\"value\"")
    }
}

/// What a non-audit EKS control-plane stream holds.
fn stream_kind(stream: &str) -> &'static str {
    const KINDS: [(&str, &str); 6] = [
        ("authenticator-", "the aws-iam-authenticator log"),
        (
            "kube-apiserver-",
            "the kube-apiserver log (api log type, klog text)",
        ),
        (
            "kube-controller-manager-",
            "the kube-controller-manager log (klog text)",
        ),
        ("kube-scheduler-", "the kube-scheduler log (klog text)"),
        (
            "cloud-controller-manager-",
            "the cloud-controller-manager log (klog text)",
        ),
        ("etcd-", "an etcd log"),
    ];
    KINDS
        .iter()
        .find(|(p, _)| stream.starts_with(p))
        .map_or("not an EKS control-plane audit stream", |(_, k)| k)
}

impl Cloud<'_> {
    pub(super) fn eks(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        if v.starts_with('[') && is_insights_row(v) {
            return self.insights_row(v, at, f);
        }
        let Some(o) = Obj::parse(v) else {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!("{} is not an EKS CloudWatch record", json_type(v)),
                f,
            );
        };
        if o.is_k8s() {
            // A message on its own line (Firehose message extraction), or plain input.
            return self.embedded(v, at, Cut::None, "", f);
        }
        if let Some(events) = o.get("events") {
            // `aws logs filter-log-events` / `get-log-events` output.
            return self.list(events, "events", at, f, |d, ev, at, f| {
                d.cloudwatch_event(ev, None, at, f)
            });
        }
        if o.has("logEvents") || o.has("messageType") {
            return self.subscription(&o, at, f);
        }
        if let Some(results) = o.get("results") {
            // Logs Insights `get-query-results`.
            return self.list(results, "results", at, f, |d, row, at, f| {
                d.insights_row(row, at, f)
            });
        }
        if let Some(awslogs) = o.get("awslogs") {
            let data = Obj::parse(awslogs.get()).and_then(|a| a.str("data").ok().flatten());
            return self.blob(data, "awslogs.data", at, f);
        }
        if let (Some(records), true) = (o.get("records"), o.has("requestId")) {
            // A Firehose HTTP-endpoint delivery: records[].data, each a subscription payload.
            return self.list(records, "records", at, f, |d, r, at, f| {
                let data = Obj::parse(r).and_then(|r| r.str("data").ok().flatten());
                d.blob(data, "records[].data", at, f)
            });
        }
        if o.has("class_uid") {
            // OCSF's `message` is the stage name, not a CloudWatch message.
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                "an OCSF record (Security Lake); kaudit reads the audit events, not their OCSF mapping".into(),
                f,
            );
        }
        if o.has("message") || o.has("@message") {
            return self.cloudwatch_event(v, None, at, f);
        }
        self.skip(
            at,
            ErrorKind::NotAnEvent,
            format!("not an EKS CloudWatch record (keys: {})", o.keys()),
            f,
        )
    }

    /// A subscription-filter payload, decompressed: `{messageType, logGroup, logStream,
    /// logEvents:[{id, timestamp, message}]}`.
    fn subscription(&mut self, o: &Obj<'_>, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        let message_type = match o.str("messageType") {
            Ok(t) => t,
            Err(m) => return self.skip(at, ErrorKind::InvalidField, m, f),
        };
        if let Some(t) = &message_type
            && t != "DATA_MESSAGE"
        {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!(
                    "a CloudWatch Logs subscription {t} (delivery health check), not audit data"
                ),
                f,
            );
        }
        let stream = match o.str("logStream") {
            Ok(s) => s,
            Err(m) => return self.skip(at, ErrorKind::InvalidField, m, f),
        };
        let Some(events) = o.get("logEvents") else {
            return self.skip(
                at,
                ErrorKind::InvalidField,
                "logEvents: missing from a DATA_MESSAGE".into(),
                f,
            );
        };
        let stream = stream.as_ref().map(|s| s.as_str());
        self.list(events, "logEvents", at, f, |d, ev, at, f| {
            d.cloudwatch_event(ev, stream, at, f)
        })
    }

    /// One CloudWatch log event, `{logStreamName?, timestamp, message, …}` (also Insights'
    /// `@message`/`@logStream`); `stream` is the enclosing payload's stream, if any.
    fn cloudwatch_event(
        &mut self,
        v: &str,
        stream: Option<&str>,
        at: At,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        let Some(o) = Obj::parse(v) else {
            return self.skip(
                at,
                ErrorKind::InvalidField,
                format!(
                    "expected a CloudWatch log event object, found {}",
                    json_type(v)
                ),
                f,
            );
        };
        let own_stream = ["logStreamName", "logStream", "@logStream"]
            .into_iter()
            .find_map(|k| o.str(k).ok().flatten());
        let (key, message) = match (o.get("message"), o.get("@message")) {
            (Some(m), _) => ("message", m),
            (None, Some(m)) => ("@message", m),
            (None, None) => {
                return self.skip(
                    at,
                    ErrorKind::InvalidField,
                    "message: missing (a CloudWatch log event carries the audit event in message)"
                        .into(),
                    f,
                );
            }
        };
        self.cloudwatch_message(
            own_stream.as_ref().map(|s| s.as_str()).or(stream),
            key,
            message,
            at,
            f,
        )
    }

    fn cloudwatch_message(
        &mut self,
        stream: Option<&str>,
        key: &str,
        message: &RawValue,
        at: At,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        if let Some(s) = stream
            && !s.starts_with(AUDIT_STREAM)
        {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!(
                    "CloudWatch stream {s:?} is {}, not an EKS audit stream ({AUDIT_STREAM}-*)",
                    stream_kind(s)
                ),
                f,
            );
        }
        let m = message.get();
        if m.starts_with('{') {
            // Logs Insights console exports may hold the message already parsed.
            return self.embedded(m, at, Cut::None, key, f);
        }
        match serde_json::from_str::<Text<'_>>(m) {
            Ok(text) => self.embedded(&text, at, Cut::Eks, key, f),
            Err(_) => self.skip(
                at,
                ErrorKind::InvalidField,
                format!("{key}: expected a string, found {}", json_type(m)),
                f,
            ),
        }
    }

    /// A Logs Insights row: `[{"field":"@message","value":…},{"field":"@logStream",…},…]`.
    fn insights_row(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        #[derive(serde::Deserialize)]
        struct Cell<'a> {
            #[serde(borrow, default)]
            field: Text<'a>,
            #[serde(borrow, default)]
            value: Option<&'a RawValue>,
        }
        let cells: Vec<Cell<'_>> = match serde_json::from_str(v) {
            Ok(c) => c,
            Err(e) => {
                return self.skip(
                    at,
                    ErrorKind::InvalidField,
                    format!(
                        "expected a Logs Insights row of {{field, value}}: {}",
                        crate::decode::strip_position(&e)
                    ),
                    f,
                );
            }
        };
        let cell = |name: &str| cells.iter().find(|c| c.field == name).and_then(|c| c.value);
        let stream =
            cell("@logStream").and_then(|s| serde_json::from_str::<Text<'_>>(s.get()).ok());
        let Some(message) = cell("@message") else {
            return self.skip(
                at,
                ErrorKind::InvalidField,
                "@message: missing from the Logs Insights row (add `fields @message` to the query)"
                    .into(),
                f,
            );
        };
        self.cloudwatch_message(
            stream.as_ref().map(|s| s.as_str()),
            "@message",
            message,
            at,
            f,
        )
    }

    /// A base64 blob holding a subscription payload (Lambda's `awslogs.data`, Firehose's
    /// `records[].data`): normally gzip, which the caller must undo.
    fn blob(
        &mut self,
        data: Option<Text<'_>>,
        field: &str,
        at: At,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        let Some(data) = data else {
            return self.skip(at, ErrorKind::InvalidField, format!("{field}: missing"), f);
        };
        let text = match b64::text(
            field,
            &data,
            "gzip-compressed CloudWatch Logs subscription data; decode the base64 and gunzip it first (kaudit reads the decompressed JSON)",
        ) {
            Ok(t) => t,
            Err((kind, m)) => return self.skip(at, kind, m, f),
        };
        let t = text.trim();
        match serde_json::from_str::<&RawValue>(t) {
            Ok(v) => self.eks(v.get(), at, f),
            Err(e) => self.skip(
                at,
                ErrorKind::Syntax,
                format!(
                    "{field}: decoded data is not JSON: {}",
                    crate::decode::strip_position(&e)
                ),
                f,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_prefix() {
        assert_eq!(
            strip_export_prefix("2021-09-07T20:37:30.642Z {\"kind\":\"Event\"}"),
            Some("{\"kind\":\"Event\"}")
        );
        assert_eq!(strip_export_prefix("{\"kind\":\"Event\"}"), None);
        assert_eq!(strip_export_prefix("2021-09-07 is not a prefix"), None);
    }

    #[test]
    fn insights_rows() {
        assert!(is_insights_row(r#"[{"field":"@message","value":"x"}]"#));
        assert!(!is_insights_row(r#"[{"kind":"Event"}]"#));
        assert!(!is_insights_row("[]"));
    }
}
