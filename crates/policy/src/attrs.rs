//! Request attributes: what the policy checker sees of a request.
//!
//! kube-apiserver evaluates the policy once per request against the authorizer attributes
//! (`pkg/endpoints/request/requestinfo.go`, `filters/audit.go`). [`Attributes::from_event`]
//! recovers them from a recorded event the same way: from `requestURI` (path without the query,
//! percent-decoded; namespace, resource, name and subresource from the path segments, including
//! the Namespace-object and `status`/`finalize` special cases, `fieldSelector=metadata.name=`
//! for lists), the recorded verb, and the **authenticated** user (`user`, not
//! `impersonatedUser`; nobody when authentication failed).

use std::borrow::Cow;

use kaudit_model::{Event, Text};

/// The authenticated identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User<'a> {
    /// User name.
    pub name: &'a str,
    /// Groups.
    pub groups: &'a [Text<'a>],
}

/// The attributes of one request, as the policy checker sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// The authenticated user; `None` when authentication failed or had not run.
    pub user: Option<User<'a>>,
    /// The verb: `get`, `list`, `watch`, `create`... or, for non-resource requests, the
    /// lower-case HTTP method.
    pub verb: Cow<'a, str>,
    /// Namespace (`""` for cluster-scoped requests and lists across namespaces).
    pub namespace: Cow<'a, str>,
    /// API group (`""` for the core group).
    pub api_group: Cow<'a, str>,
    /// API version.
    pub api_version: Cow<'a, str>,
    /// Resource, such as `pods`.
    pub resource: Cow<'a, str>,
    /// Subresource, such as `exec`.
    pub subresource: Cow<'a, str>,
    /// Object name (`""` for create and list, unless a list selects `metadata.name`).
    pub name: Cow<'a, str>,
    /// URL path, without the query string, percent-decoded.
    pub path: Cow<'a, str>,
    /// Whether this is a resource request (`/api/v1/...`, `/apis/g/v/...` with a resource).
    pub resource_request: bool,
}

impl<'a> Attributes<'a> {
    /// The attributes kube-apiserver evaluated the policy against when it recorded `ev`.
    ///
    /// Records without a `requestURI` (trimmed exports) fall back to `objectRef`.
    pub fn from_event(ev: &'a Event<'a>) -> Attributes<'a> {
        let user = (!ev.user.username.is_empty() || !ev.user.groups.is_empty()).then(|| User {
            name: ev.user.username.as_str(),
            groups: &ev.user.groups[..],
        });
        if !ev.request_uri.is_empty() {
            let mut a = from_uri(&ev.request_uri, &ev.verb);
            a.user = user;
            return a;
        }
        let mut a = Attributes {
            user,
            verb: Cow::Borrowed(ev.verb.as_str()),
            ..Default::default()
        };
        if let Some(o) = &ev.object_ref {
            a.resource_request = true;
            a.namespace = Cow::Borrowed(o.namespace.as_str());
            a.api_group = Cow::Borrowed(o.api_group.as_str());
            a.api_version = Cow::Borrowed(o.api_version.as_str());
            a.resource = Cow::Borrowed(o.resource.as_str());
            a.subresource = Cow::Borrowed(o.subresource.as_str());
            if !matches!(
                ev.verb.as_str(),
                "create" | "list" | "watch" | "deletecollection"
            ) {
                a.name = Cow::Borrowed(o.name.as_str());
            }
        }
        a
    }
}

/// `RequestInfoFactory.NewRequestInfo` over a recorded `requestURI` and verb.
pub fn from_uri<'a>(uri: &'a str, verb: &'a str) -> Attributes<'a> {
    let uri = uri.split('#').next().unwrap_or("");
    let (raw_path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = percent_decode(raw_path, false);
    let mut a = Attributes {
        verb: Cow::Borrowed(verb),
        ..Default::default()
    };
    let parts = split_path(&path);
    let borrowed = matches!(path, Cow::Borrowed(_));
    // Segments borrow from the URI unless the path had escapes.
    let seg = |s: &str| -> Cow<'a, str> {
        if borrowed {
            // `s` is a slice of `path`, which is `raw_path` itself when nothing was decoded.
            let start = s.as_ptr() as usize - raw_path.as_ptr() as usize;
            Cow::Borrowed(&raw_path[start..start + s.len()])
        } else {
            Cow::Owned(s.to_string())
        }
    };
    let mut rest: &[&str] = &parts;
    let resource_request = (|| {
        if rest.len() < 3 || !(rest[0] == "api" || rest[0] == "apis") {
            return false;
        }
        let grouped = rest[0] == "apis";
        rest = &rest[1..];
        if grouped {
            if rest.len() < 3 {
                return false;
            }
            a.api_group = seg(rest[0]);
            rest = &rest[1..];
        }
        a.api_version = seg(rest[0]);
        rest = &rest[1..];
        true
    })();
    if !resource_request {
        a.path = if borrowed {
            Cow::Borrowed(raw_path)
        } else {
            Cow::Owned(path.into_owned())
        };
        return a;
    }
    a.resource_request = true;
    let mut special: Option<&str> = None;
    if rest[0] == "proxy" || rest[0] == "watch" {
        special = Some(rest[0]);
        rest = &rest[1..];
    }
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        a.namespace = seg(rest[1]);
        if rest.len() > 2 && rest[2] != "status" && rest[2] != "finalize" {
            rest = &rest[2..];
        }
    }
    if rest.len() >= 3 && special != Some("proxy") {
        a.subresource = seg(rest[2]);
    }
    if rest.len() >= 2 {
        a.name = seg(rest[1]);
    }
    if let Some(r) = rest.first() {
        a.resource = seg(r);
    }
    a.path = if borrowed {
        Cow::Borrowed(raw_path)
    } else {
        Cow::Owned(path.to_string())
    };
    if a.name.is_empty()
        && (verb == "list" || verb == "watch")
        && let Some(n) = field_selector_name(query)
    {
        a.name = Cow::Owned(n);
    }
    a
}

fn split_path(path: &str) -> Vec<&str> {
    let t = path.trim_matches('/');
    if t.is_empty() {
        Vec::new()
    } else {
        t.split('/').collect()
    }
}

/// The name a list or watch selects with `fieldSelector=metadata.name=X`, when the rest of
/// the list options decode (an undecodable option makes kube-apiserver ignore the selector).
fn field_selector_name(query: &str) -> Option<String> {
    let mut selector = None;
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let k = percent_decode(k, true);
        let v = percent_decode(v, true);
        match &*k {
            "fieldSelector" if selector.is_none() => selector = Some(v.into_owned()),
            "limit" | "timeoutSeconds" if !v.is_empty() && v.parse::<i64>().is_err() => {
                return None;
            }
            _ => {}
        }
    }
    let sel = selector?;
    let mut found = None;
    for term in split_unescaped(&sel, ',') {
        let term = term.trim();
        let (key, op_value) = if let Some(i) = find_unescaped(term, '=') {
            let (k, rest) = term.split_at(i);
            if k.ends_with('!') {
                continue; // !=
            }
            (k, rest.trim_start_matches('='))
        } else {
            return None; // not a valid selector: kube-apiserver ignores it
        };
        if key.trim() == "metadata.name" {
            found = Some(unescape_selector(op_value));
        }
    }
    let name = found?;
    (name != "." && name != ".." && !name.contains('/') && !name.contains('%')).then_some(name)
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

fn find_unescaped(s: &str, c: char) -> Option<usize> {
    let mut esc = false;
    for (i, ch) in s.char_indices() {
        if esc {
            esc = false;
        } else if ch == '\\' {
            esc = true;
        } else if ch == c {
            return Some(i);
        }
    }
    None
}

fn unescape_selector(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-decodes; `plus` turns `+` into a space (query strings). Invalid escapes are kept.
fn percent_decode(s: &str, plus: bool) -> Cow<'_, str> {
    if !(s.contains('%') || plus && s.contains('+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(uri: &str, verb: &str) -> (bool, String, String, String, String, String, String) {
        let a = from_uri(uri, verb);
        (
            a.resource_request,
            a.api_group.into_owned(),
            a.namespace.into_owned(),
            a.resource.into_owned(),
            a.subresource.into_owned(),
            a.name.into_owned(),
            a.path.into_owned(),
        )
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn request_info_as_kube_apiserver() {
        assert_eq!(
            attrs("/api/v1/namespaces/default/pods?limit=500", "list"),
            (
                true,
                s(""),
                s("default"),
                s("pods"),
                s(""),
                s(""),
                s("/api/v1/namespaces/default/pods")
            )
        );
        assert_eq!(
            attrs("/api/v1/namespaces/foo", "get"),
            (
                true,
                s(""),
                s("foo"),
                s("namespaces"),
                s(""),
                s("foo"),
                s("/api/v1/namespaces/foo")
            )
        );
        assert_eq!(
            attrs("/api/v1/namespaces/foo/finalize", "update"),
            (
                true,
                s(""),
                s("foo"),
                s("namespaces"),
                s("finalize"),
                s("foo"),
                s("/api/v1/namespaces/foo/finalize")
            )
        );
        assert_eq!(
            attrs("/api/v1/namespaces", "list"),
            (
                true,
                s(""),
                s(""),
                s("namespaces"),
                s(""),
                s(""),
                s("/api/v1/namespaces")
            )
        );
        assert_eq!(
            attrs("/apis/apps/v1/namespaces/p/deployments/web/scale", "update"),
            (
                true,
                s("apps"),
                s("p"),
                s("deployments"),
                s("scale"),
                s("web"),
                s("/apis/apps/v1/namespaces/p/deployments/web/scale")
            )
        );
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/pods/x/exec?command=sh&command=-c",
                "create"
            ),
            (
                true,
                s(""),
                s("d"),
                s("pods"),
                s("exec"),
                s("x"),
                s("/api/v1/namespaces/d/pods/x/exec")
            )
        );
        assert_eq!(
            attrs("/api/v1/watch/namespaces/d/pods", "watch").3,
            s("pods")
        );
        assert_eq!(
            attrs("/api/v1/proxy/namespaces/d/pods/x/extra", "proxy").4,
            s("")
        );
        assert_eq!(attrs("/api/v1/nodes/n1/proxy/metrics", "get").4, s("proxy"));
    }

    #[test]
    fn non_resource_paths_drop_the_query() {
        for (uri, path) in [
            ("/healthz?verbose=1", "/healthz"),
            ("/apis/apps/v1", "/apis/apps/v1"),
            ("/api", "/api"),
            ("/apis", "/apis"),
            ("/openapi/v2", "/openapi/v2"),
            ("/metrics", "/metrics"),
            ("/", "/"),
        ] {
            let a = from_uri(uri, "get");
            assert!(!a.resource_request, "{uri}");
            assert_eq!(a.path, path);
        }
    }

    #[test]
    fn field_selector_names_a_list() {
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/secrets?fieldSelector=metadata.name%3Dtoken",
                "list"
            )
            .5,
            "token"
        );
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/secrets?fieldSelector=metadata.name%3D%3Dtoken&watch=true",
                "watch"
            )
            .5,
            "token"
        );
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/secrets?fieldSelector=metadata.name%21%3Dtoken",
                "list"
            )
            .5,
            ""
        );
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/secrets?fieldSelector=metadata.name%3Dtoken&limit=abc",
                "list"
            )
            .5,
            ""
        );
        assert_eq!(
            attrs(
                "/api/v1/namespaces/d/secrets?fieldSelector=metadata.name%3Dtoken",
                "get"
            )
            .5,
            ""
        );
    }

    #[test]
    fn percent_encoded_paths_are_decoded() {
        let a = from_uri("/api/v1/namespaces/d/configmaps/a%3Ab", "get");
        assert_eq!(a.name, "a:b");
        assert_eq!(from_uri("/foo%2Fbar", "get").path, "/foo/bar");
    }
}
