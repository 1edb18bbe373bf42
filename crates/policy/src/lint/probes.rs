//! Probe requests: the policy, evaluated on requests that stand for what an audit trail must
//! show, and for the noisiest traffic of a real cluster.

use std::borrow::Cow;

use kaudit_model::{Level, Stage, Text};

use super::{Finding, stage_kept};
use crate::attrs::{Attributes, User};
use crate::diag::Severity;
use crate::eval::{Decision, Evaluator};
use crate::policy::Policy;

struct Who {
    name: &'static str,
    groups: &'static [&'static str],
}

const HUMAN: Who = Who {
    name: "jane@example.com",
    groups: &["developers", "system:authenticated"],
};
const SA: Who = Who {
    name: "system:serviceaccount:ci:deployer",
    groups: &[
        "system:serviceaccounts",
        "system:serviceaccounts:ci",
        "system:authenticated",
    ],
};
const NODE: Who = Who {
    name: "system:node:node-1",
    groups: &["system:nodes", "system:authenticated"],
};
const KCM: Who = Who {
    name: "system:kube-controller-manager",
    groups: &["system:authenticated"],
};
const ANON: Who = Who {
    name: "system:anonymous",
    groups: &["system:unauthenticated"],
};

/// A resource request probe: (verb, group, resource, subresource, namespace, name).
type Res = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn decide(ev: &Evaluator, who: Option<&Who>, r: Res) -> Decision {
    let groups: Vec<Text<'static>> = who
        .map(|w| w.groups.iter().map(|g| Text::borrowed(g)).collect())
        .unwrap_or_default();
    let (verb, group, resource, sub, ns, name) = r;
    let a = Attributes {
        user: who.map(|w| User {
            name: w.name,
            groups: &groups,
        }),
        verb: Cow::Borrowed(verb),
        namespace: Cow::Borrowed(ns),
        api_group: Cow::Borrowed(group),
        api_version: Cow::Borrowed("v1"),
        resource: Cow::Borrowed(resource),
        subresource: Cow::Borrowed(sub),
        name: Cow::Borrowed(name),
        path: Cow::Borrowed(""),
        resource_request: true,
    };
    ev.evaluate(&a)
}

fn decide_path(ev: &Evaluator, who: &Who, verb: &'static str, path: &'static str) -> Decision {
    let groups: Vec<Text<'static>> = who.groups.iter().map(|g| Text::borrowed(g)).collect();
    let a = Attributes {
        user: Some(User {
            name: who.name,
            groups: &groups,
        }),
        verb: Cow::Borrowed(verb),
        path: Cow::Borrowed(path),
        ..Default::default()
    };
    ev.evaluate(&a)
}

fn rule_txt(d: &Decision) -> String {
    match d.rule {
        Some(r) => format!("rule {r}"),
        None => "no rule (level None)".into(),
    }
}

/// Findings, one per code and rule: the first probe that shows it is the example.
struct Findings<'a>(&'a mut Vec<Finding>);

impl Findings<'_> {
    fn find(
        &mut self,
        severity: Severity,
        code: &'static str,
        rule: Option<usize>,
        message: String,
        fix: &str,
    ) {
        if !self.0.iter().any(|f| f.code == code && f.rule == rule) {
            self.0.push(Finding {
                severity,
                code,
                rule,
                message,
                fix: fix.to_string(),
            });
        }
    }
}

pub(super) fn run(p: &Policy, ev: &Evaluator, out: &mut Vec<Finding>) {
    let mut f = Findings(out);
    coverage(ev, &mut f);
    rbac(ev, &mut f);
    failed_auth(ev, &mut f);
    secrets_and_tokens(ev, &mut f);
    noise(ev, &mut f);
    request_received(p, &mut f);
}

/// What must be audited at all: secrets, exec and friends, token reviews, nodes, namespaces, configmaps.
fn coverage(ev: &Evaluator, f: &mut Findings<'_>) {
    // What must be audited at all.
    let must: Vec<(&str, &str, Res, &Who)> = vec![
        (
            "secrets-not-audited",
            "reads of secrets",
            ("get", "", "secrets", "", "production", "db-password"),
            &HUMAN,
        ),
        (
            "secrets-not-audited",
            "lists of secrets",
            ("list", "", "secrets", "", "production", ""),
            &SA,
        ),
        (
            "secrets-not-audited",
            "changes to secrets",
            ("update", "", "secrets", "", "production", "db-password"),
            &HUMAN,
        ),
        (
            "exec-not-audited",
            "exec into pods",
            ("create", "", "pods", "exec", "production", "web-0"),
            &HUMAN,
        ),
        (
            "exec-not-audited",
            "exec into pods over WebSocket (verb get)",
            ("get", "", "pods", "exec", "production", "web-0"),
            &HUMAN,
        ),
        (
            "exec-not-audited",
            "attach to pods",
            ("create", "", "pods", "attach", "production", "web-0"),
            &HUMAN,
        ),
        (
            "exec-not-audited",
            "port-forwarding",
            ("create", "", "pods", "portforward", "production", "web-0"),
            &HUMAN,
        ),
        (
            "tokenreviews-not-audited",
            "token reviews",
            (
                "create",
                "authentication.k8s.io",
                "tokenreviews",
                "",
                "",
                "",
            ),
            &SA,
        ),
        (
            "node-writes-not-audited",
            "changes to nodes",
            ("patch", "", "nodes", "", "", "node-1"),
            &HUMAN,
        ),
        (
            "node-writes-not-audited",
            "deletion of nodes",
            ("delete", "", "nodes", "", "", "node-1"),
            &HUMAN,
        ),
        (
            "namespace-writes-not-audited",
            "creation of namespaces",
            ("create", "", "namespaces", "", "", ""),
            &HUMAN,
        ),
        (
            "namespace-writes-not-audited",
            "deletion of namespaces",
            ("delete", "", "namespaces", "", "shop", "shop"),
            &HUMAN,
        ),
        (
            "configmaps-not-audited",
            "changes to configmaps",
            ("update", "", "configmaps", "", "production", "app-config"),
            &HUMAN,
        ),
    ];
    for (code, what, r, who) in must {
        let d = decide(ev, Some(who), r);
        if d.level == Level::None {
            let sev = if code == "configmaps-not-audited" {
                Severity::Info
            } else {
                Severity::Warning
            };
            f.find(
                sev,
                code,
                d.rule,
                format!(
                    "{what} are not recorded (decided by {}, e.g. {} {} by {})",
                    rule_txt(&d),
                    r.0,
                    res_txt(r),
                    who.name
                ),
                "add a Metadata (or higher) rule for them before this one",
            );
        } else if !stage_kept(&d, Stage::ResponseComplete)
            && !stage_kept(&d, Stage::ResponseStarted)
        {
            f.find(
                Severity::Warning,
                code,
                d.rule,
                format!(
                    "{what} produce no event: {} omits both ResponseStarted and ResponseComplete",
                    rule_txt(&d)
                ),
                "do not omit ResponseComplete",
            );
        }
    }
}

/// RBAC writes: recorded, and with their bodies.
fn rbac(ev: &Evaluator, f: &mut Findings<'_>) {
    let rbac = [
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    ];
    let writes = ["create", "update", "patch", "delete"];

    for res in rbac {
        for verb in writes {
            let r: Res = (
                verb,
                "rbac.authorization.k8s.io",
                res,
                "",
                if res.starts_with("cluster") {
                    ""
                } else {
                    "production"
                },
                "",
            );
            let d = decide(ev, Some(&HUMAN), r);
            match d.level {
                Level::None => f.find(
                    Severity::Warning,
                    "rbac-not-audited",
                    d.rule,
                    format!(
                        "RBAC changes are not recorded ({}, e.g. {verb} {res})",
                        rule_txt(&d)
                    ),
                    "record RBAC writes at RequestResponse (or at least Metadata)",
                ),
                Level::Metadata => f.find(
                    Severity::Info,
                    "rbac-weak",
                    d.rule,
                    format!(
                        "RBAC changes are recorded without bodies ({} is Metadata, e.g. {verb} {res}): the log shows who changed a role, not which permissions",
                        rule_txt(&d)
                    ),
                    "record RBAC writes at Request or RequestResponse",
                ),
                _ => {}
            }
        }
    }
}

/// Failed authentication: one ResponseStarted event, no user.
fn failed_auth(ev: &Evaluator, f: &mut Findings<'_>) {
    let d = decide(ev, None, ("get", "", "secrets", "", "production", ""));
    if !d.records(Stage::ResponseStarted) {
        let why = if d.level == Level::None {
            format!("level None from {}", rule_txt(&d))
        } else {
            format!("{} omits ResponseStarted", rule_txt(&d))
        };
        f.find(
            Severity::Warning,
            "failed-auth-not-audited",
            d.rule,
            format!(
                "failed authentication (HTTP 401) is invisible: kube-apiserver records it as a single ResponseStarted event with no user, and this policy drops it ({why})"
            ),
            "do not omit ResponseStarted, and do not give unauthenticated requests level None",
        );
    }
}

/// Secret values and tokens in the log.
fn secrets_and_tokens(ev: &Evaluator, f: &mut Findings<'_>) {
    for (verb, lvl, what) in [
        ("get", Level::RequestResponse, "responses to secret reads"),
        (
            "update",
            Level::Request,
            "secret writes (their request bodies)",
        ),
        (
            "create",
            Level::Request,
            "secret creations (their request bodies)",
        ),
    ] {
        let d = decide(
            ev,
            Some(&HUMAN),
            (
                verb,
                "",
                "secrets",
                "",
                "production",
                if verb == "create" { "" } else { "db-password" },
            ),
        );
        if d.level >= lvl {
            f.find(
                Severity::Warning,
                "secret-values-logged",
                d.rule,
                format!(
                    "secret values are written to the audit log: {what} are recorded at {} ({})",
                    d.level,
                    rule_txt(&d)
                ),
                "record secrets at Metadata",
            );
        }
    }
    let d = decide(
        ev,
        Some(&SA),
        (
            "create",
            "",
            "serviceaccounts",
            "token",
            "production",
            "deployer",
        ),
    );
    if d.level == Level::RequestResponse {
        f.find(
            Severity::Warning,
            "tokens-logged",
            d.rule,
            format!(
                "service-account tokens are written to the audit log: TokenRequest responses (serviceaccounts/token) are recorded at RequestResponse ({})",
                rule_txt(&d)
            ),
            "record serviceaccounts/token at Metadata or Request",
        );
    }
    let d = decide(
        ev,
        Some(&SA),
        (
            "create",
            "authentication.k8s.io",
            "tokenreviews",
            "",
            "",
            "",
        ),
    );
    if d.level >= Level::Request {
        f.find(
            Severity::Info,
            "tokens-logged",
            d.rule,
            format!(
                "bearer tokens under review are written to the audit log: TokenReview requests carry the token and are recorded at {} ({})",
                d.level,
                rule_txt(&d)
            ),
            "record tokenreviews at Metadata",
        );
    }
}

/// Noise: the most frequent requests of a cluster, rarely useful.
fn noise(ev: &Evaluator, f: &mut Findings<'_>) {
    let noisy: Vec<(&str, &str, Decision)> = vec![
        (
            "noisy-events",
            "watches of events",
            decide(ev, Some(&KCM), ("watch", "", "events", "", "", "")),
        ),
        (
            "noisy-events",
            "lists of events",
            decide(
                ev,
                Some(&HUMAN),
                ("list", "events.k8s.io", "events", "", "production", ""),
            ),
        ),
        (
            "noisy-health",
            "health checks (/healthz)",
            decide_path(ev, &ANON, "get", "/healthz"),
        ),
        (
            "noisy-health",
            "health checks (/readyz)",
            decide_path(ev, &ANON, "get", "/readyz"),
        ),
        (
            "noisy-health",
            "health checks (/livez)",
            decide_path(ev, &ANON, "get", "/livez"),
        ),
        (
            "noisy-node-polling",
            "kubelets reading their node",
            decide(ev, Some(&NODE), ("get", "", "nodes", "", "", "node-1")),
        ),
        (
            "noisy-node-polling",
            "kubelets' lease renewals",
            decide(
                ev,
                Some(&NODE),
                (
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-node-lease",
                    "node-1",
                ),
            ),
        ),
    ];
    for (code, what, d) in noisy {
        if d.level != Level::None {
            f.find(
                Severity::Info,
                code,
                d.rule,
                format!(
                    "{what} are recorded at {} ({}); they are among the most frequent requests of a cluster and rarely useful",
                    d.level,
                    rule_txt(&d)
                ),
                "add a level None rule for them near the top",
            );
        }
    }
}

/// RequestReceived doubles the volume.
fn request_received(p: &Policy, f: &mut Findings<'_>) {
    let keeps_rr: Vec<usize> = p
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.level != "None"
                && !r.omit_stages.iter().any(|s| s == "RequestReceived")
                && !p.omit_stages.iter().any(|s| s == "RequestReceived")
        })
        .map(|(i, _)| i)
        .collect();
    if !keeps_rr.is_empty() {
        let list = keeps_rr
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        f.find(
            Severity::Info,
            "request-received-not-omitted",
            keeps_rr.first().copied(),
            format!(
                "rule{} {list} also record the RequestReceived stage, about doubling the events for what they match (RequestReceived carries nothing the later stages lack)",
                if keeps_rr.len() == 1 { "" } else { "s" }
            ),
            "add omitStages: [RequestReceived] at the policy level",
        );
    }
}

fn res_txt(r: Res) -> String {
    let (_, g, res, sub, ns, name) = r;
    let mut s = if g.is_empty() {
        res.to_string()
    } else {
        format!("{g}/{res}")
    };
    if !sub.is_empty() {
        s = format!("{s}/{sub}");
    }
    if !ns.is_empty() || !name.is_empty() {
        s = format!("{s} {ns}/{name}");
    }
    s
}
