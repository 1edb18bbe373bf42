//! Reading cloud records: JSON objects with their members in input order ([`Obj`]), what a
//! JSON value is ([`json_type`]), and what can still be read of a cut or broken one.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::Text;

/// What can be read of a cut event: `auditID "…", verb "…", requestURI "…"`.
pub(super) fn recovered(t: &str) -> String {
    let mut parts = vec![];
    for key in ["auditID", "verb", "requestURI"] {
        if let Some(v) = string_field(t, key) {
            parts.push(format!("{key} {v:?}"));
        }
    }
    if parts.iter().all(|p| !p.starts_with("auditID")) {
        parts.insert(0, "auditID not recoverable".into());
    }
    parts.join(", ")
}

/// The value of the first `"key": "value"` in possibly broken JSON (no escapes in the value).
fn string_field<'t>(t: &'t str, key: &str) -> Option<&'t str> {
    let pat = format!("\"{key}\"");
    let mut from = 0;
    while let Some(p) = t[from..].find(&pat) {
        let rest = t[from + p + pat.len()..].trim_start();
        from += p + pat.len();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let end = rest.find(['"', '\\'])?;
        if rest.as_bytes()[end] == b'"' {
            return Some(&rest[..end]);
        }
        return None;
    }
    None
}

/// The start of a text, for messages.
pub(super) fn preview(t: &str) -> String {
    let mut end = t.len().min(40);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    if end < t.len() {
        format!("{:?}…", &t[..end])
    } else {
        format!("{t:?}")
    }
}

/// A JSON object's members in input order, values raw.
pub(super) struct Obj<'a>(pub Vec<(Text<'a>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Obj<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Obj<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Obj<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((k, v)) = m.next_entry::<Text<'de>, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Obj(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Obj<'a> {
    /// Parses `v` when it is a JSON object.
    pub(super) fn parse(v: &'a str) -> Option<Obj<'a>> {
        if !v.starts_with('{') {
            return None;
        }
        serde_json::from_str(v).ok()
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.get() != "null")
    }

    /// The string member `key`: `Ok(None)` when absent or null, `Err` naming it when not a
    /// string.
    pub(super) fn str(&self, key: &str) -> Result<Option<Text<'a>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.get() == "null" => Ok(None),
            Some(v) => serde_json::from_str::<Text<'a>>(v.get())
                .map(Some)
                .map_err(|_| format!("{key}: expected a string, found {}", json_type(v.get()))),
        }
    }

    /// The first few keys, for messages.
    pub(super) fn keys(&self) -> String {
        let mut s: Vec<&str> = self.0.iter().take(6).map(|(k, _)| k.as_str()).collect();
        if self.0.len() > 6 {
            s.push("…");
        }
        s.join(", ")
    }

    /// Whether this is a plain Kubernetes audit event or EventList.
    pub(super) fn is_k8s(&self) -> bool {
        let s = |k| self.str(k).ok().flatten();
        s("kind").is_some_and(|k| k == "Event" || k == "EventList")
            || s("apiVersion").is_some_and(|v| v.starts_with("audit.k8s.io/"))
            || self.has("auditID")
    }
}

pub(super) fn json_type(v: &str) -> &'static str {
    match v.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}
