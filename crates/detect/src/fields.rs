//! Field references in rules (`verb`, `objectRef.resource`, `pod.containers.securityContext.privileged`,
//! `exec.command`, ...) and reading their values from one event.
//!
//! A field names one of three things:
//! - a typed part of the event the decoder already split out (`verb`, `user.username`,
//!   `annotations.authorization.k8s.io/decision`): read without further parsing;
//! - a path into a body (`requestObject.spec.hostNetwork`, `responseObject...`, or the
//!   derived `object`, `pod.spec`, `pod.containers`): the body is parsed once per event, on
//!   first use, and arrays along the path fan out (any element may match);
//! - a derived value: the exec command decoded from `requestURI`, a query parameter, the
//!   first source IP, the authorization decision.
//!
//! A field yields zero or more values; a missing field yields none.

use std::borrow::Cow;
use std::cell::OnceCell;

use kaudit_model::Event;
use serde_json::Value;

/// One value of a field.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'e> {
    Str(Cow<'e, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An explicit JSON `null`.
    Null,
}

impl Val<'_> {
    /// The value as text, as rules compare strings (numbers and booleans in JSON spelling).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Str(s) => Cow::Borrowed(s),
            Val::Int(i) => Cow::Owned(i.to_string()),
            Val::Float(f) => Cow::Owned(f.to_string()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Null => Cow::Borrowed(""),
        }
    }
    /// The value as a number, when it is one (or text that spells one).
    pub fn number(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            Val::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Which body a path starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// `requestObject`.
    Request,
    /// `responseObject`.
    Response,
    /// The object as it is after the request: the response for update/patch when the
    /// response body is the object, else the request body.
    Object,
    /// The pod spec inside the object: a Pod's `spec`, a workload's `spec.template.spec`,
    /// a CronJob's `spec.jobTemplate.spec.template.spec`.
    PodSpec,
    /// Every container of the pod spec: `containers`, `initContainers`, `ephemeralContainers`.
    Containers,
    /// The whole event, parsed generically (for fields kaudit has no typed name for).
    Event,
}

/// A step of a body path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    /// `[n]`.
    Index(usize),
    /// `[]`: every element (arrays also fan out implicitly before a key).
    Each,
}

/// A field a rule reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Kind,
    ApiVersion,
    Level,
    AuditId,
    Stage,
    RequestUri,
    Verb,
    UserName,
    UserUid,
    UserGroups,
    UserExtra(String),
    ImpUserName,
    ImpUserUid,
    ImpUserGroups,
    SourceIps,
    /// The first source IP (the client, as the apiserver saw it).
    SourceIp,
    UserAgent,
    Resource,
    Subresource,
    Namespace,
    Name,
    ObjUid,
    ApiGroup,
    ObjApiVersion,
    ResourceVersion,
    Status,
    Message,
    Reason,
    Code,
    RequestReceived,
    StageTimestamp,
    Annotation(String),
    /// `authorization.k8s.io/decision`.
    Decision,
    /// `uri.path`: `requestURI` without its query.
    UriPath,
    /// `uri.query.<key>`: every value of a query parameter, decoded.
    UriQuery(String),
    /// `exec.command`: the repeated `command=` parameters, decoded, joined by spaces.
    ExecCommand,
    /// `exec.container`.
    ExecContainer,
    /// A path into a body.
    Body(Body, Vec<Step>),
    /// The whole raw event text (Sigma keywords).
    Raw,
}

/// Every name a rule may use, for error messages.
pub const NAMES: &str = "kind, apiVersion, level, auditID, stage, requestURI, verb, user.username, \
user.uid, user.groups, user.extra.<key>, impersonatedUser.{username,uid,groups}, sourceIPs, sourceIP, \
userAgent, objectRef.{resource,subresource,namespace,name,uid,apiGroup,apiVersion,resourceVersion}, \
responseStatus.{code,status,reason,message}, requestReceivedTimestamp, stageTimestamp, \
annotations.<key>, decision, uri.path, uri.query.<key>, exec.command, exec.container, \
requestObject[.path], responseObject[.path], object[.path], pod.spec[.path], pod.containers[.path], \
event.<path>";

impl Field {
    /// Parses a field name. Errors name what is wrong.
    pub fn parse(name: &str) -> Result<Field, String> {
        use Field::*;
        let simple = match name {
            "kind" => Some(Kind),
            "apiVersion" => Some(ApiVersion),
            "level" => Some(Level),
            "auditID" => Some(AuditId),
            "stage" => Some(Stage),
            "requestURI" => Some(RequestUri),
            "verb" => Some(Verb),
            "user.username" => Some(UserName),
            "user.uid" => Some(UserUid),
            "user.groups" => Some(UserGroups),
            "impersonatedUser.username" => Some(ImpUserName),
            "impersonatedUser.uid" => Some(ImpUserUid),
            "impersonatedUser.groups" => Some(ImpUserGroups),
            "sourceIPs" => Some(SourceIps),
            "sourceIP" => Some(SourceIp),
            "userAgent" => Some(UserAgent),
            "objectRef.resource" => Some(Resource),
            "objectRef.subresource" => Some(Subresource),
            "objectRef.namespace" => Some(Namespace),
            "objectRef.name" => Some(Name),
            "objectRef.uid" => Some(ObjUid),
            "objectRef.apiGroup" => Some(ApiGroup),
            "objectRef.apiVersion" => Some(ObjApiVersion),
            "objectRef.resourceVersion" => Some(ResourceVersion),
            "responseStatus.status" => Some(Status),
            "responseStatus.message" => Some(Message),
            "responseStatus.reason" => Some(Reason),
            "responseStatus.code" => Some(Code),
            "requestReceivedTimestamp" => Some(RequestReceived),
            "stageTimestamp" => Some(StageTimestamp),
            "decision" => Some(Decision),
            "uri.path" => Some(UriPath),
            "exec.command" => Some(ExecCommand),
            "exec.container" => Some(ExecContainer),
            _ => None,
        };
        if let Some(f) = simple {
            return Ok(f);
        }
        let keyed = |prefix: &str| name.strip_prefix(prefix).filter(|k| !k.is_empty());
        if let Some(k) = keyed("annotations.") {
            return Ok(if k == "authorization.k8s.io/decision" {
                Decision
            } else {
                Annotation(k.to_string())
            });
        }
        if let Some(k) = keyed("user.extra.") {
            return Ok(UserExtra(k.to_string()));
        }
        if let Some(k) = keyed("uri.query.") {
            return Ok(UriQuery(k.to_string()));
        }
        let roots: [(&str, self::Body); 6] = [
            ("requestObject", self::Body::Request),
            ("responseObject", self::Body::Response),
            ("object", self::Body::Object),
            ("pod.spec", self::Body::PodSpec),
            ("pod.containers", self::Body::Containers),
            ("event", self::Body::Event),
        ];
        for (root, body) in roots {
            if let Some(rest) = name.strip_prefix(root) {
                if rest.is_empty() && body != self::Body::Event {
                    return Ok(Body(body, Vec::new()));
                }
                if let Some(path) = rest
                    .strip_prefix('.')
                    .or_else(|| rest.strip_prefix("[").map(|_| rest))
                {
                    return Ok(Body(
                        body,
                        parse_path(path).map_err(|e| format!("field {name:?}: {e}"))?,
                    ));
                }
            }
        }
        Err(format!("unknown field {name:?}; fields are: {NAMES}"))
    }

    /// The audit level an event needs for this field to have a value.
    pub fn level(&self) -> kaudit_model::Level {
        match self {
            Field::Body(Body::Response, _) => kaudit_model::Level::RequestResponse,
            Field::Body(Body::Event, _) | Field::Raw => kaudit_model::Level::Metadata,
            Field::Body(..) => kaudit_model::Level::Request,
            _ => kaudit_model::Level::Metadata,
        }
    }

    /// Whether reading the field parses a body (costlier than the typed fields).
    pub fn costly(&self) -> bool {
        matches!(
            self,
            Field::Body(..)
                | Field::Raw
                | Field::ExecCommand
                | Field::UriQuery(_)
                | Field::ExecContainer
        )
    }
}

/// Parses `spec.containers[].securityContext.privileged` or `rules[0].verbs`.
fn parse_path(p: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed '['")?;
            let inside = &r[..end];
            out.push(if inside.is_empty() || inside == "*" {
                Step::Each
            } else {
                Step::Index(
                    inside
                        .parse()
                        .map_err(|_| format!("bad index [{inside}]"))?,
                )
            });
            rest = &r[end + 1..];
            rest = rest.strip_prefix('.').unwrap_or(rest);
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() {
            return Err("empty path step".into());
        }
        out.push(Step::Key(key.to_string()));
        rest = &rest[end..];
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Ok(out)
}

/// One event as rules see it: the decoded event, its raw text, and what is parsed from it on
/// demand (bodies, the query string).
pub struct Ctx<'e, 'a> {
    pub event: &'e Event<'a>,
    pub raw: &'e str,
    request: OnceCell<Option<Value>>,
    response: OnceCell<Option<Value>>,
    whole: OnceCell<Option<Value>>,
    query: OnceCell<Vec<(String, String)>>,
    command: OnceCell<Option<String>>,
}

impl<'e, 'a> Ctx<'e, 'a> {
    pub fn new(event: &'e Event<'a>, raw: &'e str) -> Self {
        Ctx {
            event,
            raw,
            request: OnceCell::new(),
            response: OnceCell::new(),
            whole: OnceCell::new(),
            query: OnceCell::new(),
            command: OnceCell::new(),
        }
    }

    fn request(&self) -> Option<&Value> {
        self.request
            .get_or_init(|| {
                self.event
                    .request_object
                    .and_then(|r| serde_json::from_str(r.get()).ok())
            })
            .as_ref()
    }
    fn response(&self) -> Option<&Value> {
        self.response
            .get_or_init(|| {
                self.event
                    .response_object
                    .and_then(|r| serde_json::from_str(r.get()).ok())
            })
            .as_ref()
    }
    fn whole(&self) -> Option<&Value> {
        self.whole
            .get_or_init(|| serde_json::from_str(self.raw).ok())
            .as_ref()
    }

    /// The object after the request (see [`Body::Object`]).
    pub fn object(&self) -> Option<&Value> {
        let verb = self.event.verb.as_str();
        if matches!(verb, "update" | "patch")
            && let Some(r) = self.response()
            && r.get("kind").and_then(Value::as_str) != Some("Status")
        {
            return Some(r);
        }
        match self.request() {
            // A JSON patch (an array of operations) is not the object.
            Some(Value::Array(_)) => None,
            r => r,
        }
    }

    /// The pod spec inside the object.
    pub fn pod_spec(&self) -> Option<&Value> {
        let o = self.object()?;
        let spec = o.get("spec")?;
        if let Some(t) = spec.get("template").and_then(|t| t.get("spec")) {
            return Some(t);
        }
        if let Some(t) = spec
            .get("jobTemplate")
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec"))
        {
            return Some(t);
        }
        Some(spec)
    }

    /// The decoded query parameters of `requestURI`, in order.
    pub fn query(&self) -> &[(String, String)] {
        self.query.get_or_init(|| {
            let uri = self.event.request_uri.as_str();
            match uri.split_once('?') {
                Some((_, q)) => form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
                None => Vec::new(),
            }
        })
    }

    /// The exec command: the `command=` parameters of `requestURI` joined by spaces, or, where
    /// the platform logs the exec options as the request body (GKE's PodExecOptions), its
    /// `command` list.
    pub fn exec_command(&self) -> Option<&str> {
        self.command
            .get_or_init(|| {
                let parts: Vec<&str> = self
                    .query()
                    .iter()
                    .filter(|(k, _)| k == "command")
                    .map(|(_, v)| v.as_str())
                    .collect();
                if !parts.is_empty() {
                    return Some(parts.join(" "));
                }
                let cmd = self.request()?.get("command")?.as_array()?;
                let parts: Vec<&str> = cmd.iter().filter_map(Value::as_str).collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .as_deref()
    }

    /// The exec container: the `container=` parameter, or the exec options' `container`.
    fn exec_container(&self, f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
        let mut any = false;
        for (k, v) in self.query() {
            if k == "container" {
                any = true;
                if f(&Val::Str(Cow::Borrowed(v))) {
                    return true;
                }
            }
        }
        if any {
            return false;
        }
        self.request()
            .and_then(|r| r.get("container"))
            .and_then(Value::as_str)
            .is_some_and(|c| f(&Val::Str(Cow::Borrowed(c))))
    }

    /// Calls `f` with each value of `field` until it returns true; returns whether it did.
    pub fn any(&self, field: &Field, f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
        let e = self.event;
        let s = |t: &str, f: &mut dyn FnMut(&Val<'_>) -> bool| f(&Val::Str(Cow::Borrowed(t)));
        // Typed strings that are empty count as absent, as Go leaves them.
        let opt = |t: &str, f: &mut dyn FnMut(&Val<'_>) -> bool| {
            !t.is_empty() && f(&Val::Str(Cow::Borrowed(t)))
        };
        let oref = e.object_ref.as_ref();
        let status = e.response_status.as_ref();
        match field {
            Field::Kind => e.kind.as_ref().is_some_and(|k| opt(k, f)),
            Field::ApiVersion => e.api_version.as_ref().is_some_and(|k| opt(k, f)),
            Field::Level => e.level.is_some_and(|l| s(l.as_str(), f)),
            Field::AuditId => opt(&e.audit_id, f),
            Field::Stage => e.stage.is_some_and(|l| s(l.as_str(), f)),
            Field::RequestUri => opt(&e.request_uri, f),
            Field::Verb => opt(&e.verb, f),
            Field::UserName => opt(&e.user.username, f),
            Field::UserUid => opt(&e.user.uid, f),
            Field::UserGroups => e.user.groups.iter().any(|g| s(g, f)),
            Field::UserExtra(k) => e
                .user
                .extra
                .0
                .iter()
                .filter(|(n, _)| n.as_str() == k)
                .any(|(_, vs)| vs.iter().any(|v| s(v, f))),
            Field::ImpUserName => e
                .impersonated_user
                .as_ref()
                .is_some_and(|u| opt(&u.username, f)),
            Field::ImpUserUid => e.impersonated_user.as_ref().is_some_and(|u| opt(&u.uid, f)),
            Field::ImpUserGroups => e
                .impersonated_user
                .as_ref()
                .is_some_and(|u| u.groups.iter().any(|g| s(g, f))),
            Field::SourceIps => e.source_ips.iter().any(|g| s(g, f)),
            Field::SourceIp => e.source_ips.first().is_some_and(|g| s(g, f)),
            Field::UserAgent => opt(&e.user_agent, f),
            Field::Resource => oref.is_some_and(|o| opt(&o.resource, f)),
            Field::Subresource => oref.is_some_and(|o| opt(&o.subresource, f)),
            Field::Namespace => oref.is_some_and(|o| opt(&o.namespace, f)),
            Field::Name => oref.is_some_and(|o| opt(&o.name, f)),
            Field::ObjUid => oref.is_some_and(|o| opt(&o.uid, f)),
            // The core group is spelled "" in events; rules may say "core" or "".
            Field::ApiGroup => oref.is_some_and(|o| s(&o.api_group, f)),
            Field::ObjApiVersion => oref.is_some_and(|o| opt(&o.api_version, f)),
            Field::ResourceVersion => oref.is_some_and(|o| opt(&o.resource_version, f)),
            Field::Status => status.is_some_and(|r| opt(&r.status, f)),
            Field::Message => status.is_some_and(|r| opt(&r.message, f)),
            Field::Reason => status.is_some_and(|r| opt(&r.reason, f)),
            Field::Code => e.code().is_some_and(|c| f(&Val::Int(c as i64))),
            Field::RequestReceived => e
                .received_at()
                .is_some_and(|t| f(&Val::Str(Cow::Owned(t.to_string())))),
            Field::StageTimestamp => e
                .stage_timestamp
                .is_some_and(|t| f(&Val::Str(Cow::Owned(t.to_string())))),
            Field::Annotation(k) => e.annotations.get(k).is_some_and(|v| s(v, f)),
            Field::Decision => e
                .annotations
                .get("authorization.k8s.io/decision")
                .is_some_and(|v| opt(v, f)),
            Field::UriPath => {
                let p = e.request_uri.split('?').next().unwrap_or("");
                opt(p, f)
            }
            Field::UriQuery(k) => self.query().iter().any(|(n, v)| n == k && s(v, f)),
            Field::ExecCommand => self.exec_command().is_some_and(|c| s(c, f)),
            Field::ExecContainer => self.exec_container(f),
            Field::Raw => f(&Val::Str(Cow::Borrowed(self.raw))),
            Field::Body(body, path) => {
                let root = match body {
                    Body::Request => self.request(),
                    Body::Response => self.response(),
                    Body::Object => self.object(),
                    Body::PodSpec => self.pod_spec(),
                    Body::Event => self.whole(),
                    Body::Containers => {
                        let Some(spec) = self.pod_spec() else {
                            return false;
                        };
                        return ["containers", "initContainers", "ephemeralContainers"]
                            .iter()
                            .any(|k| {
                                spec.get(*k)
                                    .and_then(Value::as_array)
                                    .is_some_and(|cs| cs.iter().any(|c| walk(c, path, f)))
                            });
                    }
                };
                root.is_some_and(|v| walk(v, path, f))
            }
        }
    }
}

/// Visits the values at `path` under `v`; arrays fan out before keys.
fn walk(v: &Value, path: &[Step], f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
    let Some((step, rest)) = path.split_first() else {
        return leaf(v, f);
    };
    match (step, v) {
        (Step::Key(k), Value::Object(m)) => m.get(k).is_some_and(|c| walk(c, rest, f)),
        (Step::Key(_), Value::Array(a)) => a.iter().any(|c| walk(c, path, f)),
        (Step::Index(i), Value::Array(a)) => a.get(*i).is_some_and(|c| walk(c, rest, f)),
        (Step::Each, Value::Array(a)) => a.iter().any(|c| walk(c, rest, f)),
        _ => false,
    }
}

fn leaf(v: &Value, f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
    match v {
        Value::String(s) => f(&Val::Str(Cow::Borrowed(s))),
        Value::Number(n) => match n.as_i64() {
            Some(i) => f(&Val::Int(i)),
            None => f(&Val::Float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Bool(b) => f(&Val::Bool(*b)),
        Value::Null => f(&Val::Null),
        // A list of scalars is its elements; an object (or a list of objects) is its JSON
        // text, for `contains` over a whole body part.
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().any(|x| leaf(x, f))
        }
        other => f(&Val::Str(Cow::Owned(other.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            Field::parse("pod.containers.securityContext.privileged").unwrap(),
            Field::Body(
                Body::Containers,
                vec![
                    Step::Key("securityContext".into()),
                    Step::Key("privileged".into())
                ]
            )
        );
        assert_eq!(
            Field::parse("requestObject.rules[0].verbs[]").unwrap(),
            Field::Body(
                Body::Request,
                vec![
                    Step::Key("rules".into()),
                    Step::Index(0),
                    Step::Key("verbs".into()),
                    Step::Each
                ]
            )
        );
        assert_eq!(
            Field::parse("annotations.authorization.k8s.io/reason").unwrap(),
            Field::Annotation("authorization.k8s.io/reason".into())
        );
        assert!(
            Field::parse("objectRef.resorce")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
