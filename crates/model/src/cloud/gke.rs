//! GKE: Kubernetes audit events as Cloud Audit Logs `LogEntry`s (`protoPayload.serviceName`
//! `k8s.io`), mapped back to `audit.k8s.io/v1` Events.

use std::ops::ControlFlow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{At, Cloud, Cut, Obj, Sink, b64, json_type};
use crate::decode::{self, ErrorKind, Record};
use crate::encode::{self, V1};
use crate::{
    Annotations, Event, Level, MicroTime, ObjectReference, ResponseStatus, Stage, Text, UserInfo,
};

#[derive(Deserialize, Default)]
struct LogEntry<'a> {
    #[serde(rename = "insertId", borrow, default)]
    insert_id: Text<'a>,
    #[serde(rename = "logName", borrow, default)]
    log_name: Text<'a>,
    #[serde(borrow, default)]
    timestamp: Text<'a>,
    #[serde(rename = "receiveTimestamp", borrow, default)]
    receive_timestamp: Text<'a>,
    #[serde(borrow, default)]
    labels: Annotations<'a>,
    #[serde(borrow, default)]
    resource: Resource<'a>,
    #[serde(borrow, default)]
    operation: Operation<'a>,
    #[serde(rename = "protoPayload", borrow, default)]
    proto_payload: AuditLog<'a>,
}

#[derive(Deserialize, Default)]
struct Resource<'a> {
    #[serde(borrow, default)]
    labels: Annotations<'a>,
}

#[derive(Deserialize, Default)]
struct Operation<'a> {
    #[serde(borrow, default)]
    id: Text<'a>,
}

#[derive(Deserialize, Default)]
struct AuditLog<'a> {
    #[serde(rename = "methodName", borrow, default)]
    method_name: Text<'a>,
    #[serde(rename = "resourceName", borrow, default)]
    resource_name: Text<'a>,
    #[serde(rename = "authenticationInfo", borrow, default)]
    authentication_info: AuthenticationInfo<'a>,
    #[serde(rename = "authorizationInfo", borrow, default)]
    authorization_info: Option<&'a RawValue>,
    #[serde(rename = "requestMetadata", borrow, default)]
    request_metadata: RequestMetadata<'a>,
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
    #[serde(default)]
    status: Option<RpcStatus<'a>>,
}

#[derive(Deserialize, Default)]
struct AuthenticationInfo<'a> {
    #[serde(rename = "principalEmail", borrow, default)]
    principal_email: Text<'a>,
    #[serde(rename = "principalSubject", borrow, default)]
    principal_subject: Text<'a>,
}

#[derive(Deserialize, Default)]
struct RequestMetadata<'a> {
    #[serde(rename = "callerIp", alias = "callerIP", borrow, default)]
    caller_ip: Text<'a>,
    #[serde(rename = "callerSuppliedUserAgent", borrow, default)]
    caller_supplied_user_agent: Text<'a>,
}

#[derive(Deserialize, Default)]
struct RpcStatus<'a> {
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    message: Text<'a>,
}

/// A Kubernetes `Status` returned as the response.
#[derive(Deserialize, Default)]
struct StatusObject<'a> {
    #[serde(borrow, default)]
    status: Text<'a>,
    #[serde(borrow, default)]
    message: Text<'a>,
    #[serde(borrow, default)]
    reason: Text<'a>,
    #[serde(borrow, default)]
    details: Option<&'a RawValue>,
    #[serde(default)]
    code: Option<i64>,
}

/// google.rpc.Code → (name, HTTP status, Kubernetes `Status` reason).
fn rpc_code(code: i64) -> Option<(&'static str, i32, &'static str)> {
    Some(match code {
        0 => ("OK", 200, ""),
        1 => ("CANCELLED", 499, ""),
        2 => ("UNKNOWN", 500, "InternalError"),
        3 => ("INVALID_ARGUMENT", 400, "BadRequest"),
        4 => ("DEADLINE_EXCEEDED", 504, "Timeout"),
        5 => ("NOT_FOUND", 404, "NotFound"),
        6 => ("ALREADY_EXISTS", 409, "AlreadyExists"),
        7 => ("PERMISSION_DENIED", 403, "Forbidden"),
        8 => ("RESOURCE_EXHAUSTED", 429, "TooManyRequests"),
        9 => ("FAILED_PRECONDITION", 400, "BadRequest"),
        10 => ("ABORTED", 409, "Conflict"),
        11 => ("OUT_OF_RANGE", 400, "BadRequest"),
        12 => ("UNIMPLEMENTED", 501, ""),
        13 => ("INTERNAL", 500, "InternalError"),
        14 => ("UNAVAILABLE", 503, "ServiceUnavailable"),
        15 => ("DATA_LOSS", 500, "InternalError"),
        16 => ("UNAUTHENTICATED", 401, "Unauthorized"),
        _ => return None,
    })
}

/// The object reference and request path a `resourceName` stands for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    /// `None` for a non-resource request (`readyz`, `api/v1`) or an unexpected shape.
    pub(super) object_ref: Option<ObjectReference<'static>>,
    pub(super) request_uri: String,
}

/// Parses `resourceName` (see the module notes); `method` is `methodName`, used for the verb
/// and to tell a Namespace's subresource from a namespaced collection.
pub(super) fn resolve(resource_name: &str, method: &str) -> Result<Resolved, String> {
    let keep_raw = || Resolved {
        object_ref: None,
        request_uri: format!("/{}", resource_name.trim_start_matches('/')),
    };
    let method_parts: Vec<&str> = method
        .strip_prefix("io.k8s.")
        .unwrap_or("")
        .split('.')
        .collect();
    // Non-resource requests have methodName `io.k8s.<verb>`.
    if method_parts.len() < 3 {
        return Ok(keep_raw());
    }
    let p: Vec<&str> = resource_name.split('/').collect();
    if p.len() < 3 || p[0] == "api" || p[0] == "apis" {
        return Ok(keep_raw());
    }
    if let Some(i) = p.iter().position(|s| s.is_empty()) {
        return Err(format!(
            "protoPayload.resourceName: empty path segment {} in {resource_name:?}",
            i + 1
        ));
    }
    let own = |s: &str| Text::from(s.to_string());
    let (resource, namespace, name, sub) = if p[2] == "namespaces" && p.len() >= 4 {
        let ns = p[3];
        match p.len() {
            // g/v/namespaces/ns: the Namespace object (kube-apiserver sets namespace = name).
            4 => ("namespaces", ns, ns, ""),
            5 => {
                // Ambiguous: a namespaced collection, or a subresource of the Namespace.
                let is_ns_sub = method_parts.len() >= 5
                    && method_parts[method_parts.len() - 3] == "namespaces"
                    && method_parts[method_parts.len() - 2] == p[4];
                let is_collection = method_parts.len() >= 4
                    && method_parts[method_parts.len() - 2] == p[4]
                    && method_parts[method_parts.len() - 3] != "namespaces";
                if is_ns_sub
                    || (!is_collection && p[0] == "core" && matches!(p[4], "status" | "finalize"))
                {
                    ("namespaces", ns, ns, p[4])
                } else {
                    (p[4], ns, "", "")
                }
            }
            6 => (p[4], ns, p[5], ""),
            _ => (p[4], ns, p[5], p[6]),
        }
    } else {
        match p.len() {
            3 => (p[2], "", "", ""),
            4 => (p[2], "", p[3], ""),
            _ => (p[2], "", p[3], p[4]),
        }
    };
    let group = if p[0] == "core" { "" } else { p[0] };
    let rest = p[1..].join("/");
    let request_uri = if group.is_empty() {
        format!("/api/{rest}")
    } else {
        format!("/apis/{group}/{rest}")
    };
    Ok(Resolved {
        object_ref: Some(ObjectReference {
            resource: own(resource),
            namespace: own(namespace),
            name: own(name),
            api_group: own(group),
            api_version: own(p[1]),
            subresource: own(sub),
            ..ObjectReference::default()
        }),
        request_uri,
    })
}

/// `raw` (a JSON object) without its top-level `"@type"` member, compact.
fn strip_type(raw: &RawValue) -> Result<Box<RawValue>, String> {
    let Some(o) = Obj::parse(raw.get()) else {
        return Ok(raw.to_owned());
    };
    let mut out = Vec::with_capacity(raw.get().len());
    out.push(b'{');
    let mut first = true;
    for (k, v) in &o.0 {
        if k == "@type" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        encode::write_str(&mut out, k);
        out.push(b':');
        encode::write_raw(&mut out, v.get());
    }
    out.push(b'}');
    let s = String::from_utf8(out).map_err(|e| e.to_string())?;
    RawValue::from_string(s).map_err(|e| decode::strip_position(&e))
}

/// Maps one k8s.io LogEntry to an Event, encoded as kube-apiserver writes it.
fn map_entry(v: &str) -> Result<Vec<u8>, (ErrorKind, String)> {
    let invalid = |m: String| (ErrorKind::InvalidField, m);
    let mut de = serde_json::Deserializer::from_str(v);
    let e: LogEntry<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        invalid(format!(
            "{}: {}",
            e.path(),
            decode::strip_position(e.inner())
        ))
    })?;
    let pp = &e.proto_payload;

    let audit_id = if e.insert_id.is_empty() {
        &e.operation.id
    } else {
        &e.insert_id
    };
    if audit_id.is_empty() {
        return Err(invalid(
            "insertId: missing (it is the Kubernetes auditID)".into(),
        ));
    }
    let method = pp.method_name.as_str();
    let Some(verb) = method
        .strip_prefix("io.k8s.")
        .and_then(|m| m.rsplit('.').next())
        .filter(|v| !v.is_empty())
    else {
        return Err(invalid(format!(
            "protoPayload.methodName: {method:?} is not a Kubernetes method (io.k8s.…<verb>)"
        )));
    };
    if pp.resource_name.is_empty() {
        return Err(invalid("protoPayload.resourceName: missing".into()));
    }
    let resolved = resolve(&pp.resource_name, method).map_err(invalid)?;
    let time = match MicroTime::parse(&e.timestamp) {
        Some(t) => t,
        None if e.timestamp.is_empty() => return Err(invalid("timestamp: missing".into())),
        None => {
            return Err(invalid(format!(
                "timestamp: {:?} is not an RFC 3339 time",
                e.timestamp.as_str()
            )));
        }
    };

    // Bodies, without the "@type" Cloud Logging adds.
    let request = pp
        .request
        .map(strip_type)
        .transpose()
        .map_err(|m| invalid(format!("protoPayload.request: {m}")))?;
    let response = pp
        .response
        .map(strip_type)
        .transpose()
        .map_err(|m| invalid(format!("protoPayload.response: {m}")))?;

    let rpc = pp.status.as_ref().and_then(|s| s.code).unwrap_or(0);
    let sub = resolved
        .object_ref
        .as_ref()
        .map_or("", |o| o.subresource.as_str());
    let status = response_status(pp, rpc, sub, verb).map_err(invalid)?;

    let level = if response.is_some() {
        Level::RequestResponse
    } else if request.is_some() {
        Level::Request
    } else {
        Level::Metadata
    };
    let user = if pp.authentication_info.principal_email.is_empty() {
        pp.authentication_info.principal_subject.clone()
    } else {
        pp.authentication_info.principal_email.clone()
    };

    let ann = annotations(&e, rpc);

    let ev = Event {
        kind: Some(Text::borrowed("Event")),
        api_version: Some(Text::borrowed(V1)),
        level: Some(level),
        audit_id: audit_id.clone(),
        stage: Some(Stage::ResponseComplete),
        request_uri: Text::from(resolved.request_uri),
        verb: Text::borrowed(verb),
        user: UserInfo {
            username: user,
            ..UserInfo::default()
        },
        source_ips: if pp.request_metadata.caller_ip.is_empty() {
            vec![]
        } else {
            vec![pp.request_metadata.caller_ip.clone()]
        },
        user_agent: pp.request_metadata.caller_supplied_user_agent.clone(),
        object_ref: resolved.object_ref,
        response_status: Some(status),
        request_object: request.as_deref(),
        response_object: response.as_deref(),
        request_received_timestamp: Some(time),
        stage_timestamp: Some(time),
        annotations: Annotations(ann),
        ..Event::default()
    };
    let mut out = Vec::with_capacity(v.len() + 256);
    encode::write_event(&mut out, &ev, V1, true);
    Ok(out)
}

/// The response status: what a `Status` response says, else the google.rpc.Code mapped to
/// HTTP (a success: 201 for a create, 101 for exec/attach/portforward, else 200).
fn response_status<'a>(
    pp: &AuditLog<'a>,
    rpc: i64,
    sub: &str,
    verb: &str,
) -> Result<ResponseStatus<'a>, String> {
    let Some((_, http, reason)) = rpc_code(rpc) else {
        return Err(format!(
            "protoPayload.status.code: {rpc} is not a google.rpc.Code (0–16)"
        ));
    };
    let response_is_status = pp
        .response
        .and_then(|r| Obj::parse(r.get()))
        .is_some_and(|o| {
            o.str("kind").ok().flatten().is_some_and(|k| k == "Status")
                || o.str("@type")
                    .ok()
                    .flatten()
                    .is_some_and(|t| t.ends_with("v1.Status"))
        });
    let mut status = ResponseStatus::default();
    if response_is_status {
        let r = pp.response.unwrap().get();
        let s: StatusObject<'_> = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_str(r),
        )
        .map_err(|e| {
            format!(
                "protoPayload.response.{}: {}",
                e.path(),
                decode::strip_position(e.inner())
            )
        })?;
        status.status = s.status;
        status.message = s.message;
        status.reason = s.reason;
        status.details = s.details;
        status.code = s
            .code
            .filter(|c| *c > 0 && *c < 1000)
            .map_or(0, |c| c as i32);
    }
    if status.code == 0 {
        status.code = if rpc != 0 {
            http
        } else if matches!(sub, "exec" | "attach" | "portforward") {
            101
        } else if verb == "create" {
            201
        } else {
            200
        };
    }
    if rpc != 0 && !response_is_status {
        status.status = Text::borrowed("Failure");
        status.reason = Text::borrowed(reason);
        status.message = pp
            .status
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_default();
    }
    Ok(status)
}

/// The event's annotations: the entry's labels (its audit annotations), and what has no Event
/// field kept beside them (`gke.kaudit.io/...`).
fn annotations<'a>(e: &LogEntry<'a>, rpc: i64) -> Vec<(Text<'a>, Text<'a>)> {
    let pp = &e.proto_payload;
    let mut ann = e.labels.0.clone();
    let mut add = |k: &'static str, v: String| {
        if !v.is_empty() {
            ann.push((Text::borrowed(k), Text::from(v)));
        }
    };
    add("kaudit.io/source", "gke".into());
    add("gke.kaudit.io/resource-name", pp.resource_name.to_string());
    let log = e.log_name.rsplit(['/']).next().unwrap_or("");
    let log = log.rsplit("%2F").next().unwrap_or(log);
    add("gke.kaudit.io/log", log.to_string());
    for (label, key) in [
        ("cluster_name", "gke.kaudit.io/cluster-name"),
        ("location", "gke.kaudit.io/location"),
        ("project_id", "gke.kaudit.io/project-id"),
    ] {
        add(key, e.resource.labels.get(label).unwrap_or("").to_string());
    }
    if let Some(a) = pp.authorization_info {
        let mut s = Vec::new();
        encode::write_raw(&mut s, a.get());
        add(
            "gke.kaudit.io/authorization-info",
            String::from_utf8(s).unwrap_or_default(),
        );
    }
    add(
        "gke.kaudit.io/receive-timestamp",
        e.receive_timestamp.to_string(),
    );
    if rpc != 0 {
        add("gke.kaudit.io/status-code", rpc.to_string());
    }

    ann
}

impl Cloud<'_> {
    pub(super) fn gke(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        let Some(o) = Obj::parse(v) else {
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!("{} is not a GKE LogEntry", json_type(v)),
                f,
            );
        };
        if o.is_k8s() {
            return self.embedded(v, at, Cut::None, "", f);
        }
        if let Some(entries) = o.get("entries") {
            // REST entries.list page.
            return self.list(entries, "entries", at, f, |d, e, at, f| d.gke(e, at, f));
        }
        if let Some(received) = o.get("receivedMessages") {
            // Pub/Sub pull response.
            return self.list(received, "receivedMessages", at, f, |d, m, at, f| {
                d.gke(m, at, f)
            });
        }
        if let Some(m) = o.get("message").and_then(|m| Obj::parse(m.get()))
            && m.get("data").is_some()
        {
            // Push envelope, or one received message ({ackId, message}).
            return self.pubsub_data(m.get("data").unwrap(), "message.data", at, f);
        }
        if let Some(data) = o.get("data")
            && super::sniff::PUBSUB_MESSAGE_KEYS.iter().any(|k| o.has(k))
        {
            return self.pubsub_data(data, "data", at, f);
        }
        self.log_entry(v, &o, at, f)
    }

    /// A Pub/Sub message's `data`: one LogEntry as base64 JSON (or already an object, as some
    /// forwarders re-wrap it).
    fn pubsub_data(
        &mut self,
        data: &RawValue,
        field: &str,
        at: At,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        if data.get().starts_with('{') {
            return self.gke(data.get(), at, f);
        }
        let s = match serde_json::from_str::<Text<'_>>(data.get()) {
            Ok(s) => s,
            Err(_) => {
                return self.skip(
                    at,
                    ErrorKind::InvalidField,
                    format!(
                        "{field}: expected a base64 string, found {}",
                        json_type(data.get())
                    ),
                    f,
                );
            }
        };
        let text = match b64::text(
            field,
            &s,
            "gzip-compressed data; decode the base64 and gunzip it first (kaudit reads the LogEntry JSON)",
        ) {
            Ok(t) => t,
            Err((kind, m)) => return self.skip(at, kind, m, f),
        };
        match serde_json::from_str::<&RawValue>(text.trim()) {
            Ok(v) => self.gke(v.get(), at, f),
            Err(e) => {
                let kind = if e.is_eof() {
                    ErrorKind::Truncated
                } else {
                    ErrorKind::Syntax
                };
                self.skip(
                    at,
                    kind,
                    format!(
                        "{field}: decoded data is not JSON: {}",
                        decode::strip_position(&e)
                    ),
                    f,
                )
            }
        }
    }

    fn log_entry(&mut self, v: &str, o: &Obj<'_>, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        let log_name = o.str("logName").ok().flatten();
        let log_name = log_name.as_ref().map_or("", |s| s.as_str());
        let Some(pp) = o.get("protoPayload").and_then(|p| Obj::parse(p.get())) else {
            let what = if o.has("insertId") || !log_name.is_empty() {
                let payload = ["jsonPayload", "textPayload"]
                    .into_iter()
                    .find(|k| o.has(k))
                    .map_or(String::new(), |k| format!(", {k}"));
                format!(
                    "a GKE LogEntry without protoPayload (logName {log_name:?}{payload}), not a Kubernetes audit entry"
                )
            } else {
                format!("not a GKE LogEntry (no protoPayload; keys: {})", o.keys())
            };
            return self.skip(at, ErrorKind::NotAnEvent, what, f);
        };
        let service = pp.str("serviceName").ok().flatten();
        let service = service.as_ref().map_or("", |s| s.as_str());
        if service != "k8s.io" {
            let method = pp.str("methodName").ok().flatten();
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!(
                    "a Cloud Audit Logs entry of service {service:?} (methodName {:?}), not a Kubernetes API audit entry (serviceName \"k8s.io\")",
                    method.as_ref().map_or("", |m| m.as_str())
                ),
                f,
            );
        }
        let raw = match map_entry(v) {
            Ok(raw) => raw,
            Err((kind, m)) => return self.skip(at, kind, m, f),
        };
        let raw = String::from_utf8(raw).expect("the encoder writes UTF-8");
        let event: Event<'_> = match serde_json::from_str(&raw) {
            Ok(ev) => ev,
            Err(e) => {
                return self.skip(
                    at,
                    ErrorKind::InvalidField,
                    format!("the Event mapped from this LogEntry does not parse: {e}"),
                    f,
                );
            }
        };
        self.stats.events += 1;
        f(Ok(Record {
            line: at.line,
            item: at.item,
            raw: &raw,
            event,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, method: &str) -> String {
        match resolve(name, method) {
            Ok(Resolved {
                object_ref: Some(o),
                request_uri,
            }) => format!(
                "{request_uri} group={:?} v={} res={} ns={} name={} sub={}",
                o.api_group.as_str(),
                o.api_version,
                o.resource,
                o.namespace,
                o.name,
                o.subresource
            ),
            Ok(Resolved {
                object_ref: None,
                request_uri,
            }) => format!("{request_uri} (non-resource)"),
            Err(e) => format!("error {e}"),
        }
    }

    #[test]
    fn resource_names() {
        let cases = [
            (
                "core/v1/namespaces/ns/pods/p",
                "io.k8s.core.v1.pods.get",
                "/api/v1/namespaces/ns/pods/p group=\"\" v=v1 res=pods ns=ns name=p sub=",
            ),
            (
                "core/v1/namespaces/ns/pods/p/exec",
                "io.k8s.core.v1.pods.exec.create",
                "/api/v1/namespaces/ns/pods/p/exec group=\"\" v=v1 res=pods ns=ns name=p sub=exec",
            ),
            (
                "core/v1/namespaces/ns/pods",
                "io.k8s.core.v1.pods.list",
                "/api/v1/namespaces/ns/pods group=\"\" v=v1 res=pods ns=ns name= sub=",
            ),
            (
                "core/v1/namespaces/ns/finalize",
                "io.k8s.core.v1.namespaces.finalize.update",
                "/api/v1/namespaces/ns/finalize group=\"\" v=v1 res=namespaces ns=ns name=ns sub=finalize",
            ),
            (
                "core/v1/namespaces/ns/status",
                "io.k8s.core.v1.namespaces.status.get",
                "/api/v1/namespaces/ns/status group=\"\" v=v1 res=namespaces ns=ns name=ns sub=status",
            ),
            (
                // A custom resource that happens to be called "status" is a collection.
                "example.com/v1/namespaces/ns/status",
                "io.k8s.com.example.v1.status.list",
                "/apis/example.com/v1/namespaces/ns/status group=\"example.com\" v=v1 res=status ns=ns name= sub=",
            ),
            (
                "core/v1/namespaces/ns",
                "io.k8s.core.v1.namespaces.get",
                "/api/v1/namespaces/ns group=\"\" v=v1 res=namespaces ns=ns name=ns sub=",
            ),
            (
                "core/v1/namespaces",
                "io.k8s.core.v1.namespaces.create",
                "/api/v1/namespaces group=\"\" v=v1 res=namespaces ns= name= sub=",
            ),
            (
                "core/v1/nodes/n1/status",
                "io.k8s.core.v1.nodes.status.patch",
                "/api/v1/nodes/n1/status group=\"\" v=v1 res=nodes ns= name=n1 sub=status",
            ),
            (
                "rbac.authorization.k8s.io/v1/clusterrolebindings/crb",
                "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/crb group=\"rbac.authorization.k8s.io\" v=v1 res=clusterrolebindings ns= name=crb sub=",
            ),
            (
                "core/v1/namespaces/ns/pods/p/proxy/metrics/x",
                "io.k8s.core.v1.pods.proxy.get",
                "/api/v1/namespaces/ns/pods/p/proxy/metrics/x group=\"\" v=v1 res=pods ns=ns name=p sub=proxy",
            ),
            ("readyz", "io.k8s.get", "/readyz (non-resource)"),
            ("api/v1", "io.k8s.get", "/api/v1 (non-resource)"),
            ("apis/apps/v1", "io.k8s.get", "/apis/apps/v1 (non-resource)"),
            ("HNAP1", "io.k8s.get", "/HNAP1 (non-resource)"),
            (
                "core/v1//pods",
                "io.k8s.core.v1.pods.list",
                "error protoPayload.resourceName: empty path segment 3 in \"core/v1//pods\"",
            ),
        ];
        for (name, method, want) in cases {
            assert_eq!(r(name, method), want, "{name}");
        }
    }

    #[test]
    fn rpc_codes_map_to_http() {
        assert_eq!(rpc_code(7).map(|c| c.1), Some(403));
        assert_eq!(rpc_code(10).map(|c| c.1), Some(409));
        assert_eq!(rpc_code(16).map(|c| c.1), Some(401));
        assert_eq!(rpc_code(17), None);
    }
}
