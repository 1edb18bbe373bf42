//! The fake cluster: who is in it and what each of them does, with real traffic's weights.
//! The requests themselves are written by kind of sender: [`kubelet`], [`control_plane`],
//! [`people`].

mod control_plane;
mod kubelet;
mod people;

use kaudit_model::MicroTime;

use crate::{Identity, Obj, Request, Rng};

const K8S: &str = "v1.28.4";
const GIT: &str = "bae2c62";

struct Node {
    name: String,
    ip: String,
}

struct Deployment {
    ns: usize,
    name: String,
    hash: String,
    pods: Vec<String>,
}

struct Person {
    id: Identity,
    ip: String,
    ua: String,
    admin: bool,
}

/// A fake cluster that produces API requests.
pub struct Cluster {
    nodes: Vec<Node>,
    namespaces: Vec<String>,
    deployments: Vec<Deployment>,
    people: Vec<Person>,
    rv: u64,
    now: i64,
}

const APP_NAMESPACES: &[&str] = &[
    "default",
    "production",
    "staging",
    "payments",
    "monitoring",
    "ingress-nginx",
    "ci",
];
const APPS: &[&str] = &[
    "web",
    "api",
    "worker",
    "checkout",
    "cart",
    "search",
    "auth",
    "redis",
    "prometheus",
    "grafana",
    "controller",
];

fn sa(ns: &str, name: &str) -> Identity {
    Identity {
        name: format!("system:serviceaccount:{ns}:{name}"),
        uid: String::new(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    }
}

fn component(name: &str) -> Identity {
    Identity {
        name: name.into(),
        uid: String::new(),
        groups: vec!["system:authenticated".into()],
    }
}

fn rbac_reason(kind: &str, name: &str, role: &str, subject: &str) -> String {
    format!("RBAC: allowed by {kind} \"{name}\" of ClusterRole \"{role}\" to {subject}")
}

/// The object a request is about, named piece by piece:
/// `Target::new("leases").group("coordination.k8s.io", "v1").ns("kube-node-lease").name(n)`.
/// Unset parts are empty (the core group, version `v1`, cluster scope, a collection).
#[derive(Clone, Copy)]
struct Target<'a> {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    ns: &'a str,
    name: &'a str,
    sub: &'static str,
    query: &'a str,
}

impl<'a> Target<'a> {
    fn new(resource: &'static str) -> Target<'a> {
        Target {
            group: "",
            version: "v1",
            resource,
            ns: "",
            name: "",
            sub: "",
            query: "",
        }
    }

    fn group(self, group: &'static str, version: &'static str) -> Target<'a> {
        Target {
            group,
            version,
            ..self
        }
    }

    fn ns(self, ns: &'a str) -> Target<'a> {
        Target { ns, ..self }
    }

    fn name(self, name: &'a str) -> Target<'a> {
        Target { name, ..self }
    }

    fn sub(self, sub: &'static str) -> Target<'a> {
        Target { sub, ..self }
    }

    fn query(self, query: &'a str) -> Target<'a> {
        Target { query, ..self }
    }
}

/// An object as the API returns it (see `Cluster::object`).
struct Body<'a> {
    kind: &'a str,
    api_version: &'a str,
    ns: &'a str,
    name: &'a str,
    uid: &'a str,
    /// What follows `metadata` (`,"spec":{...}`).
    rest: &'a str,
    /// The field manager named in `managedFields`.
    manager: &'a str,
}

impl Cluster {
    /// A cluster of `nodes` workers, with namespaces, deployments, people and service accounts.
    pub(crate) fn new(rng: &mut Rng, nodes: u32) -> Cluster {
        let nodes = (0..nodes)
            .map(|i| {
                let ip = format!("10.0.{}.{}", 1 + i / 200, 10 + i % 200);
                Node {
                    name: format!("ip-{}.ec2.internal", ip.replace('.', "-")),
                    ip,
                }
            })
            .collect();
        let mut namespaces: Vec<String> = ["kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        namespaces.extend(APP_NAMESPACES.iter().map(|s| s.to_string()));
        let mut deployments = Vec::new();
        for (i, ns) in namespaces.iter().enumerate().skip(3) {
            for _ in 0..3 {
                let name = rng.pick(APPS).to_string();
                if deployments
                    .iter()
                    .any(|d: &Deployment| d.ns == i && d.name == name)
                {
                    continue;
                }
                let hash = rng.suffix(10);
                let pods = (0..1 + rng.below(4))
                    .map(|_| format!("{name}-{hash}-{}", rng.suffix(5)))
                    .collect();
                deployments.push(Deployment {
                    ns: i,
                    name,
                    hash,
                    pods,
                });
            }
            let _ = ns;
        }
        let person = |name: &str, groups: &[&str], ip: &str, ua: &str, admin: bool| Person {
            id: Identity {
                name: name.into(),
                uid: String::new(),
                groups: groups
                    .iter()
                    .map(|g| g.to_string())
                    .chain(["system:authenticated".to_string()])
                    .collect(),
            },
            ip: ip.into(),
            ua: ua.into(),
            admin,
        };
        let people = vec![
            person(
                "alice@example.com",
                &["platform-admins"],
                "10.8.0.21",
                "kubectl/v1.29.2 (darwin/arm64) kubernetes/4b8e819",
                true,
            ),
            person(
                "bob@example.com",
                &["developers"],
                "10.8.0.34",
                "kubectl/v1.28.6 (linux/amd64) kubernetes/be3af46",
                false,
            ),
            person(
                "carol@example.com",
                &["sre", "developers"],
                "10.8.1.7",
                "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
                true,
            ),
            person(
                "dave@example.com",
                &["developers"],
                "10.8.1.52",
                "Lens/6.5.2",
                false,
            ),
            person(
                "kubernetes-admin",
                &["system:masters"],
                "10.0.0.10",
                "kubectl/v1.28.4 (linux/amd64) kubernetes/bae2c62",
                true,
            ),
        ];
        Cluster {
            nodes,
            namespaces,
            deployments,
            people,
            rv: 1_000_000 + rng.below(1_000_000),
            now: 0,
        }
    }

    fn rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn time(&self) -> String {
        let s = MicroTime(self.now).to_string();
        format!("{}Z", &s[..19])
    }

    pub(crate) fn set_now(&mut self, now: i64) {
        self.now = now;
    }

    /// The next request the cluster makes.
    pub(crate) fn next_request(&mut self, rng: &mut Rng) -> Request {
        const W: &[u32] = &[
            220, 60, 25, 30, 15, 90, 40, 40, 50, 60, 20, 70, 30, 15, 15, 50, 10, 4, 2, 1, 12, 4,
            25, 3, 5, 3, 4, 6, 8, 20, 2, 1, 5, 3,
        ];
        match rng.weighted(W) {
            0 => self.lease_renew(rng),
            1 => self.node_get(rng),
            2 => self.node_status(rng),
            3 => self.kubelet_watch(rng),
            4 => self.kubelet_token(rng),
            5 => self.leader_election(rng),
            6 => self.controller_list_watch(rng),
            7 => self.controller_status(rng),
            8 => self.endpointslices(rng),
            9 => self.event_create(rng),
            10 => self.dns_proxy_watch(rng),
            11 => self.health(rng),
            12 => self.discovery(rng),
            13 => self.reviews(rng),
            14 => self.binding(rng),
            15 => self.kubectl_read(rng),
            16 => self.logs(rng),
            17 => self.interactive(rng, "exec"),
            18 => self.interactive(rng, "portforward"),
            19 => self.interactive(rng, "attach"),
            20 => self.secret_read(rng, false),
            21 => self.secret_read(rng, true),
            22 => self.ci_deploy(rng),
            23 => self.ci_secret(rng),
            24 => self.json_patch_node(rng),
            25 => self.rbac_change(rng),
            26 => self.impersonation(rng),
            27 => self.failed_auth(rng),
            28 => self.forbidden(rng),
            29 => self.pod_delete(rng),
            30 => self.deployment_delete(rng),
            31 => self.namespace_change(rng),
            32 => self.not_found(rng),
            _ => self.conflict(rng),
        }
    }

    // --- building blocks --------------------------------------------------------------

    fn base(&self, verb: &'static str, id: Identity, ip: &str, ua: &str) -> Request {
        Request {
            verb,
            user: Some(id),
            source_ip: ip.to_string(),
            user_agent: ua.to_string(),
            code: 200,
            duration_micros: 1_000,
            ..Default::default()
        }
    }

    /// Points `r` at the object `t` names: its request URI and `objectRef`.
    fn resource(&mut self, r: &mut Request, t: Target<'_>) {
        let Target {
            group,
            version,
            resource,
            ns,
            name,
            sub,
            query,
        } = t;
        let mut uri = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        if !ns.is_empty() && resource != "namespaces" {
            uri.push_str(&format!("/namespaces/{ns}"));
        }
        uri.push('/');
        uri.push_str(resource);
        if !name.is_empty() {
            uri.push('/');
            uri.push_str(name);
            if !sub.is_empty() {
                uri.push('/');
                uri.push_str(sub);
            }
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        r.uri = uri;
        r.object = Some(Obj {
            resource,
            namespace: ns.to_string(),
            name: name.to_string(),
            api_group: group,
            api_version: version,
            subresource: sub,
            ..Default::default()
        });
    }

    fn allow(r: &mut Request, reason: String) {
        r.authz = Some(("allow", reason));
    }

    /// An object as the API returns it, plain and with `metadata.managedFields`, and the
    /// resource version it got.
    fn object(&mut self, b: Body<'_>) -> (String, String, String) {
        let Body {
            kind,
            api_version,
            ns,
            name,
            uid,
            rest,
            manager,
        } = b;
        let rv = self.rv();
        let t = self.time();
        let nsf = if ns.is_empty() {
            String::new()
        } else {
            format!(",\"namespace\":\"{ns}\"")
        };
        let meta = format!(
            "\"name\":\"{name}\"{nsf},\"uid\":\"{uid}\",\"resourceVersion\":\"{rv}\",\"creationTimestamp\":\"{t}\""
        );
        let plain = format!(
            "{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{{meta}}}{rest}}}"
        );
        let managed = format!(
            "{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{{{meta},\"managedFields\":[{{\"manager\":\"{manager}\",\"operation\":\"Update\",\"apiVersion\":\"{api_version}\",\"time\":\"{t}\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{{\"f:metadata\":{{\"f:labels\":{{\".\":{{}},\"f:app\":{{}}}}}},\"f:spec\":{{}}}}}}]}}{rest}}}"
        );
        (plain, managed, rv)
    }

    fn node(&self, rng: &mut Rng) -> usize {
        rng.below(self.nodes.len() as u64) as usize
    }

    fn kubelet(&self, n: usize) -> Identity {
        Identity {
            name: format!("system:node:{}", self.nodes[n].name),
            uid: String::new(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
        }
    }

    fn kubelet_ua() -> String {
        format!("kubelet/{K8S} (linux/amd64) kubernetes/{GIT}")
    }

    fn kcm_ua(sa: &str) -> String {
        format!(
            "kube-controller-manager/{K8S} (linux/amd64) kubernetes/{GIT}/system:serviceaccount:kube-system:{sa}"
        )
    }

    fn pod(&self, rng: &mut Rng) -> (String, String) {
        let d = rng.pick(&self.deployments);
        (self.namespaces[d.ns].clone(), rng.pick(&d.pods).clone())
    }

    fn person(&self, rng: &mut Rng, admin: bool) -> usize {
        loop {
            let i = rng.below(self.people.len() as u64) as usize;
            if !admin || self.people[i].admin {
                return i;
            }
        }
    }
}
