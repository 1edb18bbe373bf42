//! The audit event types, shaped as kube-apiserver's `audit.k8s.io/v1` `Event`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{MicroTime, Text};

/// An audit level. The order is meaningful: `None < Metadata < Request < RequestResponse`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Level {
    /// No event is produced.
    None,
    /// Request metadata only (user, verb, object, response code...), no bodies.
    Metadata,
    /// Metadata and the request body.
    Request,
    /// Metadata, request and response bodies.
    RequestResponse,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 4] = [
        Level::None,
        Level::Metadata,
        Level::Request,
        Level::RequestResponse,
    ];

    /// The name as kube-apiserver spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;
    /// Exact, case-sensitive names, as kube-apiserver's validation demands.
    fn from_str(s: &str) -> Result<Self, String> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown audit level {s:?} (expected None, Metadata, Request or RequestResponse)"))
    }
}

/// A stage of request processing at which an event can be emitted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Stage {
    /// As soon as the request is received, before it is handled.
    RequestReceived,
    /// Long-running requests (watch, exec, logs...) once the response headers are sent.
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When the handler panicked.
    Panic,
}

impl Stage {
    /// Every stage, in kube-apiserver's canonical order.
    pub const ALL: [Stage; 4] = [
        Stage::RequestReceived,
        Stage::ResponseStarted,
        Stage::ResponseComplete,
        Stage::Panic,
    ];

    /// The name as kube-apiserver spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stage::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| {
            format!("unknown stage {s:?} (expected RequestReceived, ResponseStarted, ResponseComplete or Panic)")
        })
    }
}

/// A set of stages (a bit set), such as the effective `omitStages` of a policy decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StageSet(u8);

impl StageSet {
    /// The empty set.
    pub const EMPTY: StageSet = StageSet(0);

    /// Whether `s` is in the set.
    pub fn contains(self, s: Stage) -> bool {
        self.0 & (1 << s as u8) != 0
    }
    /// Adds `s`.
    pub fn insert(&mut self, s: Stage) {
        self.0 |= 1 << s as u8;
    }
    /// The union of two sets.
    pub fn union(self, other: StageSet) -> StageSet {
        StageSet(self.0 | other.0)
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The stages in canonical order.
    pub fn iter(self) -> impl Iterator<Item = Stage> {
        Stage::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Stage> for StageSet {
    fn from_iter<I: IntoIterator<Item = Stage>>(iter: I) -> Self {
        let mut s = StageSet::EMPTY;
        for x in iter {
            s.insert(x);
        }
        s
    }
}

impl fmt::Debug for StageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl serde::Serialize for StageSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Stage::as_str))
    }
}

macro_rules! deserialize_from_str {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
deserialize_from_str!(Level, "an audit level");
deserialize_from_str!(Stage, "an audit stage");

/// `user.extra`: extra attributes of an identity, each a list of strings. Kept in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra<'a>(pub Vec<(Text<'a>, Vec<Text<'a>>)>);

/// Annotations on an event (`authorization.k8s.io/decision`, ...). Kept in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations<'a>(pub Vec<(Text<'a>, Text<'a>)>);

impl Annotations<'_> {
    /// The value of annotation `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

macro_rules! pair_list_deserialize {
    ($t:ident, $v:ty, $what:literal) => {
        impl<'de: 'a, 'a> Deserialize<'de> for $t<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = $t<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<M: MapAccess<'de>>(
                        self,
                        mut m: M,
                    ) -> Result<Self::Value, M::Error> {
                        let mut out = Vec::with_capacity(m.size_hint().unwrap_or(2));
                        while let Some((k, v)) = m.next_entry::<Text<'de>, $v>()? {
                            out.push((k, v));
                        }
                        Ok($t(out))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                        Ok($t::default())
                    }
                }
                d.deserialize_any(V(std::marker::PhantomData))
            }
        }
    };
}
pair_list_deserialize!(Annotations, Text<'de>, "a map of strings");
pair_list_deserialize!(Extra, Vec<Text<'de>>, "a map of string lists");

/// An identity: `user` (who authenticated) or `impersonatedUser`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct UserInfo<'a> {
    /// `username`; empty when authentication failed (`"user":{}`).
    #[serde(borrow, default)]
    pub username: Text<'a>,
    /// `uid`.
    #[serde(borrow, default)]
    pub uid: Text<'a>,
    /// `groups`.
    #[serde(borrow, default)]
    pub groups: Vec<Text<'a>>,
    /// `extra`.
    #[serde(borrow, default)]
    pub extra: Extra<'a>,
}

impl UserInfo<'_> {
    /// Whether nothing is known of this identity, as for failed authentication.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.uid.is_empty()
            && self.groups.is_empty()
            && self.extra.0.is_empty()
    }
}

/// `objectRef`: the object a resource request is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ObjectReference<'a> {
    /// `resource`, such as `pods`.
    #[serde(borrow, default)]
    pub resource: Text<'a>,
    /// `namespace`.
    #[serde(borrow, default)]
    pub namespace: Text<'a>,
    /// `name`.
    #[serde(borrow, default)]
    pub name: Text<'a>,
    /// `uid`.
    #[serde(borrow, default)]
    pub uid: Text<'a>,
    /// `apiGroup`; empty for the core group.
    #[serde(rename = "apiGroup", borrow, default)]
    pub api_group: Text<'a>,
    /// `apiVersion`.
    #[serde(rename = "apiVersion", borrow, default)]
    pub api_version: Text<'a>,
    /// `resourceVersion`.
    #[serde(rename = "resourceVersion", borrow, default)]
    pub resource_version: Text<'a>,
    /// `subresource`, such as `exec` or `status`.
    #[serde(borrow, default)]
    pub subresource: Text<'a>,
}

/// `responseStatus`: the part of a `metav1.Status` the audit event keeps.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ResponseStatus<'a> {
    /// `status`: `Success` or `Failure`, when the handler answered with a Status.
    #[serde(borrow, default)]
    pub status: Text<'a>,
    /// `message`.
    #[serde(borrow, default)]
    pub message: Text<'a>,
    /// `reason`, such as `Forbidden`.
    #[serde(borrow, default)]
    pub reason: Text<'a>,
    /// `details`, as raw JSON.
    #[serde(borrow, default)]
    pub details: Option<&'a RawValue>,
    /// `code`: the HTTP status code.
    #[serde(default)]
    pub code: i32,
}

/// One audit event: one stage of one request.
///
/// Every field is optional on input, as Go's decoder is lenient; [`crate::decode`] rejects
/// records that carry none of the fields an audit event has. Unknown fields (v1beta1's
/// `timestamp` and `metadata`, fields of later Kubernetes versions) are ignored.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Event<'a> {
    /// `kind`: `Event` (absent on EventList items and some old captures).
    #[serde(borrow, default)]
    pub kind: Option<Text<'a>>,
    /// `apiVersion`: `audit.k8s.io/v1` or `audit.k8s.io/v1beta1`.
    #[serde(rename = "apiVersion", borrow, default)]
    pub api_version: Option<Text<'a>>,
    /// `level`.
    #[serde(default)]
    pub level: Option<Level>,
    /// `auditID`: shared by all stages of one request.
    #[serde(rename = "auditID", borrow, default)]
    pub audit_id: Text<'a>,
    /// `stage`.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// `requestURI`: path and query as the client sent them.
    #[serde(rename = "requestURI", borrow, default)]
    pub request_uri: Text<'a>,
    /// `verb`: the Kubernetes verb (`get`, `list`, `create`...) or, for non-resource
    /// requests, the lower-case HTTP method.
    #[serde(borrow, default)]
    pub verb: Text<'a>,
    /// `user`: the authenticated identity.
    #[serde(borrow, default)]
    pub user: UserInfo<'a>,
    /// `impersonatedUser`.
    #[serde(rename = "impersonatedUser", borrow, default)]
    pub impersonated_user: Option<UserInfo<'a>>,
    /// `authenticationMetadata` (1.35+), raw.
    #[serde(rename = "authenticationMetadata", borrow, default)]
    pub authentication_metadata: Option<&'a RawValue>,
    /// `sourceIPs`.
    #[serde(rename = "sourceIPs", borrow, default)]
    pub source_ips: Vec<Text<'a>>,
    /// `userAgent`.
    #[serde(rename = "userAgent", borrow, default)]
    pub user_agent: Text<'a>,
    /// `objectRef`; absent for non-resource requests.
    #[serde(rename = "objectRef", borrow, default)]
    pub object_ref: Option<ObjectReference<'a>>,
    /// `responseStatus`; absent until a response status is known.
    #[serde(rename = "responseStatus", borrow, default)]
    pub response_status: Option<ResponseStatus<'a>>,
    /// `requestObject`, raw (level Request and above).
    #[serde(rename = "requestObject", borrow, default)]
    pub request_object: Option<&'a RawValue>,
    /// `responseObject`, raw (level RequestResponse).
    #[serde(rename = "responseObject", borrow, default)]
    pub response_object: Option<&'a RawValue>,
    /// `requestReceivedTimestamp`.
    #[serde(rename = "requestReceivedTimestamp", default)]
    pub request_received_timestamp: Option<MicroTime>,
    /// `stageTimestamp`.
    #[serde(rename = "stageTimestamp", default)]
    pub stage_timestamp: Option<MicroTime>,
    /// `annotations`.
    #[serde(borrow, default)]
    pub annotations: Annotations<'a>,
    /// v1beta1's `timestamp` (seconds precision), used when the v1 timestamps are missing.
    #[serde(default, deserialize_with = "crate::time::lenient")]
    pub(crate) timestamp: Option<MicroTime>,
    /// `items`, only to recognise an EventList handed to the event decoder.
    #[serde(borrow, default)]
    pub(crate) items: Option<&'a RawValue>,
}

impl Event<'_> {
    /// The response code, when known.
    pub fn code(&self) -> Option<i32> {
        self.response_status
            .as_ref()
            .map(|s| s.code)
            .filter(|c| *c != 0)
    }

    /// When the request was received (falling back to v1beta1's `timestamp`).
    pub fn received_at(&self) -> Option<MicroTime> {
        self.request_received_timestamp
            .or(self.timestamp)
            .or(self.stage_timestamp)
    }

    /// Whether the record has none of the fields that make an audit event.
    pub(crate) fn looks_empty(&self) -> bool {
        self.audit_id.is_empty()
            && self.stage.is_none()
            && self.verb.is_empty()
            && self.request_uri.is_empty()
            && self.level.is_none()
            && self.object_ref.is_none()
    }
}
