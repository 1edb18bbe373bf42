//! Recognising an input's format from its first record, without reading the rest.
//!
//! The first JSON value is walked with serde visitors that note the keys of the first object
//! (descending into the first element of a top-level array, and into the first element of the
//! lists cloud exports wrap records in) and then stop by failing on purpose, so a gigabyte-long
//! `gcloud logging read` array costs no more than its first entry.

use std::cell::RefCell;
use std::fmt;

/// Keys beside `data` that make an object a Pub/Sub message (push, pull, or re-wrapped).
pub(super) const PUBSUB_MESSAGE_KEYS: [&str; 5] = [
    "attributes",
    "messageId",
    "message_id",
    "publishTime",
    "publish_time",
];

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Format;
use super::eks;

#[derive(Default, Debug)]
struct Peek {
    /// Keys of the first object.
    keys: Vec<String>,
    kind: Option<String>,
    api_version: Option<String>,
    category: Option<String>,
    /// `message` was a string / an object with a `data` member.
    message_string: bool,
    message_data: bool,
    /// For each list member of the first object: the keys of its first element.
    lists: Vec<(String, Vec<String>)>,
    /// A top-level array whose first element is a Logs Insights row.
    insights_row: bool,
}

const LISTS: [&str; 7] = [
    "records",
    "events",
    "logEvents",
    "entries",
    "receivedMessages",
    "results",
    "items",
];

pub(super) fn detect(data: &[u8]) -> Format {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let Some(start) = data.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Format::K8s;
    };
    let rest = &data[start..];
    let first_line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
    let first_line = std::str::from_utf8(crate::decode::trim_ascii(first_line)).unwrap_or("");
    if eks::strip_export_prefix(first_line).is_some() {
        return Format::Eks;
    }
    if first_line.starts_with('{') && first_line.ends_with(super::EKS_TRUNCATED) {
        return Format::Eks;
    }
    if rest[0] != b'{' && rest[0] != b'[' {
        return Format::K8s;
    }
    let peek = RefCell::new(Peek::default());
    let mut de = serde_json::Deserializer::from_slice(rest);
    let _ = de.deserialize_any(Top(&peek));
    classify(&peek.into_inner())
}

fn classify(p: &Peek) -> Format {
    let has = |k: &str| p.keys.iter().any(|x| x == k);
    let first_has = |list: &str, k: &str| {
        p.lists
            .iter()
            .any(|(n, ks)| n == list && ks.iter().any(|x| x == k))
    };
    if p.kind
        .as_deref()
        .is_some_and(|k| k == "Event" || k == "EventList")
        || p.api_version
            .as_deref()
            .is_some_and(|v| v.starts_with("audit.k8s.io/"))
        || has("auditID")
        || first_has("items", "auditID")
    {
        return Format::K8s;
    }
    if has("insertId")
        || has("protoPayload")
        || has("logName")
        || has("entries")
        || has("receivedMessages")
        || has("ackId")
        || has("subscription")
        || p.message_data
        || (has("data") && PUBSUB_MESSAGE_KEYS.iter().any(|k| has(k)))
    {
        return Format::Gke;
    }
    if (p.category.is_some() && (has("properties") || has("operationName") || has("resourceId")))
        || ["category", "properties", "operationName"]
            .iter()
            .any(|k| first_has("records", k))
    {
        return Format::Aks;
    }
    if has("events")
        || has("logEvents")
        || has("messageType")
        || has("awslogs")
        || has("logStreamName")
        || has("logStream")
        || has("@message")
        || first_has("results", "field")
        || p.insights_row
        || first_has("records", "data")
        || p.message_string
    {
        return Format::Eks;
    }
    Format::K8s
}

/// Stops the walk once enough is known.
fn stop<E: de::Error>() -> E {
    E::custom("sniffed")
}

/// The first top-level value.
struct Top<'p>(&'p RefCell<Peek>);

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        s.next_element_seed(First(self.0))?;
        Err(stop())
    }
    fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<(), M::Error> {
        First(self.0).visit_map(m)
    }
}

/// The first record: its keys and a few telling values.
struct First<'p>(&'p RefCell<Peek>);

impl<'de> DeserializeSeed<'de> for First<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for First<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        // An array of arrays: Logs Insights rows are arrays of {field, value}.
        let mut keys = vec![];
        s.next_element_seed(Keys(&mut keys))?;
        self.0.borrow_mut().insights_row = keys.iter().any(|k| k == "field");
        Err(stop())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        while let Some(key) = m.next_key::<String>()? {
            self.0.borrow_mut().keys.push(key.clone());
            match key.as_str() {
                "kind" | "apiVersion" | "category" => {
                    let v = m.next_value::<serde_json::Value>()?;
                    let v = v.as_str().map(str::to_string);
                    let mut p = self.0.borrow_mut();
                    match key.as_str() {
                        "kind" => p.kind = v,
                        "apiVersion" => p.api_version = v,
                        _ => p.category = v,
                    }
                }
                "message" => m.next_value_seed(Message(self.0))?,
                k if LISTS.contains(&k) => {
                    let mut keys = vec![];
                    let r = m.next_value_seed(FirstOfList(&mut keys));
                    self.0.borrow_mut().lists.push((key, keys));
                    r?;
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `message`: a string (CloudWatch) or an object with `data` (Pub/Sub).
struct Message<'p>(&'p RefCell<Peek>);

impl<'de> DeserializeSeed<'de> for Message<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Message<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.0.borrow_mut().message_string = true;
        Ok(())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        while let Some(k) = m.next_key::<String>()? {
            if k == "data" {
                self.0.borrow_mut().message_data = true;
            }
            m.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A list: the keys of its first element, then stop.
struct FirstOfList<'k>(&'k mut Vec<String>);

impl<'de> DeserializeSeed<'de> for FirstOfList<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FirstOfList<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        s.next_element_seed(Keys(self.0))?;
        Err(stop())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The keys of an object (of the first object of an array), values skipped.
struct Keys<'k>(&'k mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<(), M::Error> {
        while let Some(k) = m.next_key::<String>()? {
            self.0.push(k);
            m.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<(), A::Error> {
        s.next_element_seed(Keys(self.0))?;
        Err(stop())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_record_decides() {
        let cases: [(&str, Format); 14] = [
            (
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","message":"x"}"#,
                Format::K8s,
            ),
            (
                r#"{"kind":"EventList","items":[{"auditID":"a"}]}"#,
                Format::K8s,
            ),
            (
                r#"[{"auditID":"a","stage":"ResponseComplete"}]"#,
                Format::K8s,
            ),
            (
                "{\n  \"events\": [\n    {\"logStreamName\": \"s\", \"message\": \"{}\"}\n  ]\n}",
                Format::Eks,
            ),
            (
                r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#,
                Format::Eks,
            ),
            ("2021-09-07T20:37:30.642Z {\"kind\":\"Event\"}", Format::Eks),
            (
                r#"{"results":[[{"field":"@message","value":"{}"}]]}"#,
                Format::Eks,
            ),
            (
                "[\n  {\n    \"insertId\": \"x\",\n    \"protoPayload\": {}\n  }\n]",
                Format::Gke,
            ),
            (
                r#"{"message":{"data":"e30=","messageId":"1"},"subscription":"s"}"#,
                Format::Gke,
            ),
            (
                r#"{"receivedMessages":[{"ackId":"a","message":{"data":"e30="}}]}"#,
                Format::Gke,
            ),
            (
                r#"{"records":[{"category":"kube-audit","properties":{"log":"{}"}}]}"#,
                Format::Aks,
            ),
            (
                r#"{"category":"kube-audit","operationName":"x","properties":{}}"#,
                Format::Aks,
            ),
            (
                r#"{"records":[{"data":"H4sI"}],"requestId":"r"}"#,
                Format::Eks,
            ),
            ("not json at all", Format::K8s),
        ];
        for (input, want) in cases {
            assert_eq!(detect(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn stops_after_the_first_element() {
        // The rest of the array is broken: detection must not have read that far.
        let input = "[{\"insertId\":\"x\",\"protoPayload\":{}}, {broken";
        assert_eq!(detect(input.as_bytes()), Format::Gke);
    }
}
