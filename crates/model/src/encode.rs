//! Encoding events exactly as kube-apiserver does (Go's `encoding/json`, compact, HTML-escaped).
//!
//! Key order is the Go struct's declaration order, empty fields are left out where Go's
//! `omitempty` leaves them out, `user` is always present, `responseStatus` always carries
//! `"metadata":{}`, timestamps have exactly six fractional digits, map keys are sorted by
//! bytes, and `<`, `>`, `&`, U+2028 and U+2029 are escaped. An audit.log line is
//! [`write_event`] with `top_level` followed by `\n`; a webhook body is [`write_event_list`].

use crate::{Event, MicroTime, ObjectReference, ResponseStatus, UserInfo};

/// The apiVersion kube-apiserver writes by default.
pub const V1: &str = "audit.k8s.io/v1";

/// Appends `ev` as compact JSON. A top-level event gets `kind` and `apiVersion`; an
/// `EventList` item does not.
pub fn write_event(out: &mut Vec<u8>, ev: &Event<'_>, api_version: &str, top_level: bool) {
    out.push(b'{');
    if top_level {
        out.extend_from_slice(b"\"kind\":\"Event\",\"apiVersion\":");
        write_str(out, api_version);
        out.push(b',');
    }
    out.extend_from_slice(b"\"level\":");
    write_str(out, ev.level.map_or("", |l| l.as_str()));
    out.extend_from_slice(b",\"auditID\":");
    write_str(out, &ev.audit_id);
    out.extend_from_slice(b",\"stage\":");
    write_str(out, ev.stage.map_or("", |s| s.as_str()));
    out.extend_from_slice(b",\"requestURI\":");
    write_str(out, &ev.request_uri);
    out.extend_from_slice(b",\"verb\":");
    write_str(out, &ev.verb);
    out.extend_from_slice(b",\"user\":");
    write_user(out, &ev.user);
    if let Some(u) = &ev.impersonated_user {
        out.extend_from_slice(b",\"impersonatedUser\":");
        write_user(out, u);
    }
    if let Some(m) = ev.authentication_metadata {
        out.extend_from_slice(b",\"authenticationMetadata\":");
        write_raw(out, m.get());
    }
    if !ev.source_ips.is_empty() {
        out.extend_from_slice(b",\"sourceIPs\":");
        write_str_list(out, ev.source_ips.iter().map(|s| s.as_str()));
    }
    if !ev.user_agent.is_empty() {
        out.extend_from_slice(b",\"userAgent\":");
        write_str(out, &ev.user_agent);
    }
    if let Some(o) = &ev.object_ref {
        out.extend_from_slice(b",\"objectRef\":");
        write_object_ref(out, o);
    }
    if let Some(s) = &ev.response_status {
        out.extend_from_slice(b",\"responseStatus\":");
        write_status(out, s);
    }
    if let Some(r) = ev.request_object {
        out.extend_from_slice(b",\"requestObject\":");
        write_raw(out, r.get());
    }
    if let Some(r) = ev.response_object {
        out.extend_from_slice(b",\"responseObject\":");
        write_raw(out, r.get());
    }
    out.extend_from_slice(b",\"requestReceivedTimestamp\":");
    write_time(out, ev.request_received_timestamp);
    out.extend_from_slice(b",\"stageTimestamp\":");
    write_time(out, ev.stage_timestamp);
    if !ev.annotations.is_empty() {
        out.extend_from_slice(b",\"annotations\":{");
        let mut pairs: Vec<(&str, &str)> = ev
            .annotations
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        pairs.dedup_by(|a, b| a.0 == b.0);
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// Appends an `EventList` holding `events`, followed by `\n`, as the webhook backend POSTs it.
pub fn write_event_list<'e, I>(out: &mut Vec<u8>, events: I, api_version: &str)
where
    I: IntoIterator<Item = &'e Event<'e>>,
{
    out.extend_from_slice(b"{\"kind\":\"EventList\",\"apiVersion\":");
    write_str(out, api_version);
    out.extend_from_slice(b",\"metadata\":{},\"items\":[");
    for (i, ev) in events.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event(out, ev, api_version, false);
    }
    out.extend_from_slice(b"]}\n");
}

fn write_time(out: &mut Vec<u8>, t: Option<MicroTime>) {
    match t {
        Some(t) => {
            out.push(b'"');
            t.write_to(out);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn write_user(out: &mut Vec<u8>, u: &UserInfo<'_>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, k: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(k);
    };
    if !u.username.is_empty() {
        key(out, b"\"username\":");
        write_str(out, &u.username);
    }
    if !u.uid.is_empty() {
        key(out, b"\"uid\":");
        write_str(out, &u.uid);
    }
    if !u.groups.is_empty() {
        key(out, b"\"groups\":");
        write_str_list(out, u.groups.iter().map(|s| s.as_str()));
    }
    if !u.extra.0.is_empty() {
        key(out, b"\"extra\":{");
        let mut pairs: Vec<_> = u.extra.0.iter().collect();
        pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            if v.is_empty() {
                out.extend_from_slice(b"null");
            } else {
                write_str_list(out, v.iter().map(|s| s.as_str()));
            }
        }
        out.push(b'}');
    }
    out.push(b'}');
}

fn write_object_ref(out: &mut Vec<u8>, o: &ObjectReference<'_>) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in [
        ("resource", &o.resource),
        ("namespace", &o.namespace),
        ("name", &o.name),
        ("uid", &o.uid),
        ("apiGroup", &o.api_group),
        ("apiVersion", &o.api_version),
        ("resourceVersion", &o.resource_version),
        ("subresource", &o.subresource),
    ] {
        if v.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        write_str(out, v);
    }
    out.push(b'}');
}

fn write_status(out: &mut Vec<u8>, s: &ResponseStatus<'_>) {
    out.extend_from_slice(b"{\"metadata\":{}");
    for (k, v) in [
        ("status", &s.status),
        ("message", &s.message),
        ("reason", &s.reason),
    ] {
        if !v.is_empty() {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            write_str(out, v);
        }
    }
    if let Some(d) = s.details {
        out.extend_from_slice(b",\"details\":");
        write_raw(out, d.get());
    }
    if s.code != 0 {
        out.extend_from_slice(b",\"code\":");
        out.extend_from_slice(itoa::Buffer::new().format(s.code).as_bytes());
    }
    out.push(b'}');
}

fn write_str_list<'s>(out: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s);
    }
    out.push(b']');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string escaped as Go's `encoding/json` does with HTML escaping on.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let esc: Option<&[u8]> = match c {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'<' => Some(b"\\u003c"),
            b'>' => Some(b"\\u003e"),
            b'&' => Some(b"\\u0026"),
            0xE2 if i + 2 < b.len()
                && b[i + 1] == 0x80
                && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) =>
            {
                Some(if b[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                })
            }
            c if c < 0x20 => None,
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        match esc {
            Some(e) => {
                out.extend_from_slice(e);
                i += if c == 0xE2 { 3 } else { 1 };
            }
            None => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
                i += 1;
            }
        }
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends a raw JSON value compacted and HTML-escaped, as Go's encoder does for
/// `runtime.RawExtension` bodies. `raw` must be valid JSON.
pub fn write_raw(out: &mut Vec<u8>, raw: &str) {
    let b = raw.as_bytes();
    let mut in_str = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => {
                    out.extend_from_slice(&b[i..(i + 2).min(b.len())]);
                    i += 2;
                    continue;
                }
                b'"' => in_str = false,
                b'<' => {
                    out.extend_from_slice(b"\\u003c");
                    i += 1;
                    continue;
                }
                b'>' => {
                    out.extend_from_slice(b"\\u003e");
                    i += 1;
                    continue;
                }
                b'&' => {
                    out.extend_from_slice(b"\\u0026");
                    i += 1;
                    continue;
                }
                0xE2 if i + 2 < b.len()
                    && b[i + 1] == 0x80
                    && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) =>
                {
                    out.extend_from_slice(if b[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    continue;
                }
                _ => {}
            }
            out.push(c);
        } else {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    in_str = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let mut out = vec![];
        write_str(&mut out, "a\"b\\c\n\t<x>&\u{1}\u{2028}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\n\t\u003cx\u003e\u0026\u0001\u2028é""#
        );
    }

    #[test]
    fn compacts_raw_bodies() {
        let mut out = vec![];
        write_raw(&mut out, "{ \"a\" : [1, 2],\n \"b\": \"x <y> \\\" z\" }");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":[1,2],"b":"x \u003cy\u003e \" z"}"#
        );
    }

    #[test]
    fn round_trips_an_apiserver_line_byte_for_byte() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"6d7c1f0e-5c1b-4a57-9d44-2b9f3c0e8a11","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?limit=500","verb":"list","user":{"username":"alice","uid":"u-1","groups":["dev","system:authenticated"],"extra":{"a":["1"],"b":["2","3"]}},"impersonatedUser":{"username":"bob"},"sourceIPs":["10.0.0.7","::1"],"userAgent":"kubectl/v1.36.0 (linux/amd64) kubernetes/abcdef0","objectRef":{"resource":"pods","namespace":"default","apiVersion":"v1"},"responseStatus":{"metadata":{},"status":"Failure","message":"pods \"x\" is \u003cforbidden\u003e","reason":"Forbidden","details":{"kind":"pods"},"code":403},"requestObject":{"kind":"DeleteOptions"},"responseObject":{"kind":"Status","items":[1,2]},"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z","stageTimestamp":"2026-01-02T03:04:05.130001Z","annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}"#;
        let ev: Event<'_> = serde_json::from_str(line).unwrap();
        let mut out = vec![];
        write_event(&mut out, &ev, V1, true);
        assert_eq!(String::from_utf8(out).unwrap(), line);
    }

    #[test]
    fn unauthenticated_user_and_missing_times() {
        let ev: Event<'_> = serde_json::from_str(
            r#"{"auditID":"x","stage":"ResponseStarted","verb":"get","user":{}}"#,
        )
        .unwrap();
        let mut out = vec![];
        write_event(&mut out, &ev, V1, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"level":"","auditID":"x","stage":"ResponseStarted","requestURI":"","verb":"get","user":{},"requestReceivedTimestamp":null,"stageTimestamp":null}"#
        );
    }
}
