//! The fake cluster: who is in it and what each of them does, with real traffic's weights.

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

    #[allow(clippy::too_many_arguments)]
    fn resource(
        &mut self,
        r: &mut Request,
        group: &'static str,
        version: &'static str,
        resource: &'static str,
        ns: &str,
        name: &str,
        sub: &'static str,
        query: &str,
    ) {
        let mut uri = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        if !ns.is_empty() && !(resource == "namespaces") {
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

    /// An object as the API returns it; `managed` adds metadata.managedFields.
    fn object(
        &mut self,
        kind: &str,
        api_version: &str,
        ns: &str,
        name: &str,
        uid: &str,
        rest: &str,
        manager: &str,
    ) -> (String, String, String) {
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

    // --- kubelets -------------------------------------------------------------------------

    fn lease_renew(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let mut r = self.base(
            "update",
            self.kubelet(n),
            &self.nodes[n].ip.clone(),
            &Self::kubelet_ua(),
        );
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            "coordination.k8s.io",
            "v1",
            "leases",
            "kube-node-lease",
            &name,
            "",
            "timeout=10s",
        );
        let uid = rng.uuid();
        let t = self.time();
        let spec = format!(
            ",\"spec\":{{\"holderIdentity\":\"{name}\",\"leaseDurationSeconds\":40,\"renewTime\":\"{}.{:06}Z\"}}",
            &t[..19],
            rng.below(1_000_000)
        );
        let (plain, managed, rv) = self.object(
            "Lease",
            "coordination.k8s.io/v1",
            "kube-node-lease",
            &name,
            &uid,
            &spec,
            "kubelet",
        );
        r.request_body = Some(plain.clone());
        r.respond(plain, managed);
        if let Some(o) = r.object.as_mut() {
            o.uid = uid;
            o.resource_version = rv;
        }
        Self::allow(&mut r, String::new());
        r.duration_micros = 2_000 + rng.below(6_000) as i64;
        r
    }

    fn node_get(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let mut r = self.base(
            "get",
            self.kubelet(n),
            &self.nodes[n].ip.clone(),
            &Self::kubelet_ua(),
        );
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            "",
            "v1",
            "nodes",
            "",
            &name,
            "",
            "resourceVersion=0&timeout=10s",
        );
        let uid = rng.uuid();
        let (plain, managed, _) = self.object("Node", "v1", "", &name, &uid, ",\"spec\":{\"providerID\":\"aws:///us-east-1a/i-0abc\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}", "kubelet");
        r.respond(plain, managed);
        Self::allow(&mut r, String::new());
        r
    }

    fn node_status(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let mut r = self.base(
            "patch",
            self.kubelet(n),
            &self.nodes[n].ip.clone(),
            &Self::kubelet_ua(),
        );
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            "",
            "v1",
            "nodes",
            "",
            &name,
            "status",
            "timeout=10s",
        );
        let t = self.time();
        r.request_body = Some(format!(
            "{{\"status\":{{\"$setElementOrder/conditions\":[{{\"type\":\"MemoryPressure\"}},{{\"type\":\"DiskPressure\"}},{{\"type\":\"PIDPressure\"}},{{\"type\":\"Ready\"}}],\"conditions\":[{{\"lastHeartbeatTime\":\"{t}\",\"type\":\"Ready\"}}]}}}}"
        ));
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(
            "Node",
            "v1",
            "",
            &name,
            &uid,
            ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}",
            "kubelet",
        );
        r.respond(plain, managed);
        Self::allow(&mut r, String::new());
        r.duration_micros = 5_000 + rng.below(10_000) as i64;
        r
    }

    fn kubelet_watch(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let mut r = self.base(
            "watch",
            self.kubelet(n),
            &self.nodes[n].ip.clone(),
            &Self::kubelet_ua(),
        );
        let res = *rng.pick(&["pods", "configmaps", "secrets", "services"]);
        let q = if res == "pods" {
            format!(
                "allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D{}&resourceVersion={}&timeoutSeconds=434&watch=true",
                self.nodes[n].name, self.rv
            )
        } else if res == "services" {
            format!(
                "allowWatchBookmarks=true&resourceVersion={}&timeout=7m13s&timeoutSeconds=433&watch=true",
                self.rv
            )
        } else {
            let (ns, _) = self.pod(rng);
            let q = format!(
                "allowWatchBookmarks=true&fieldSelector=metadata.name%3D{}-token&resourceVersion={}&timeout=8m2s&timeoutSeconds=482&watch=true",
                "default", self.rv
            );
            self.resource(&mut r, "", "v1", res, &ns, "", "", &q);
            r.long_running = true;
            r.duration_micros = 400_000_000 + rng.below(90_000_000) as i64;
            Self::allow(&mut r, String::new());
            return r;
        };
        self.resource(&mut r, "", "v1", res, "", "", "", &q);
        r.long_running = true;
        r.duration_micros = 400_000_000 + rng.below(90_000_000) as i64;
        Self::allow(&mut r, String::new());
        r
    }

    fn kubelet_token(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let (ns, pod) = self.pod(rng);
        let mut r = self.base(
            "create",
            self.kubelet(n),
            &self.nodes[n].ip.clone(),
            &Self::kubelet_ua(),
        );
        self.resource(
            &mut r,
            "",
            "v1",
            "serviceaccounts",
            &ns,
            "default",
            "token",
            "",
        );
        let pod_uid = rng.uuid();
        r.request_body = Some(format!(
            "{{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{\"creationTimestamp\":null}},\"spec\":{{\"audiences\":[\"https://kubernetes.default.svc\"],\"expirationSeconds\":3607,\"boundObjectRef\":{{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"name\":\"{pod}\",\"uid\":\"{pod_uid}\"}}}},\"status\":{{\"token\":\"\",\"expirationTimestamp\":null}}}}"
        ));
        r.response_body = Some(format!(
            "{{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{\"name\":\"default\",\"namespace\":\"{ns}\",\"creationTimestamp\":\"{}\"}},\"spec\":{{\"audiences\":[\"https://kubernetes.default.svc\"],\"expirationSeconds\":3607}},\"status\":{{\"token\":\"eyJhbGciOiJSUzI1NiIsImtpZCI6Ik{}\",\"expirationTimestamp\":\"{}\"}}}}",
            self.time(),
            rng.suffix(40),
            self.time()
        ));
        Self::allow(&mut r, String::new());
        r
    }

    // --- control plane ----------------------------------------------------------------------

    fn leader_election(&mut self, rng: &mut Rng) -> Request {
        let (who, ua, lease) = if rng.chance(0.5) {
            (
                component("system:kube-controller-manager"),
                format!(
                    "kube-controller-manager/{K8S} (linux/amd64) kubernetes/{GIT}/leader-election"
                ),
                "kube-controller-manager",
            )
        } else {
            (
                component("system:kube-scheduler"),
                format!("kube-scheduler/{K8S} (linux/amd64) kubernetes/{GIT}/leader-election"),
                "kube-scheduler",
            )
        };
        let verb = if rng.chance(0.5) { "get" } else { "update" };
        let mut r = self.base(verb, who, "10.0.0.10", &ua);
        self.resource(
            &mut r,
            "coordination.k8s.io",
            "v1",
            "leases",
            "kube-system",
            lease,
            "",
            "timeout=5s",
        );
        let uid = rng.uuid();
        let holder = format!("ip-10-0-0-10_{}", rng.uuid());
        let spec = format!(
            ",\"spec\":{{\"holderIdentity\":\"{holder}\",\"leaseDurationSeconds\":15,\"renewTime\":\"{}\"}}",
            self.time()
        );
        let (plain, managed, _) = self.object(
            "Lease",
            "coordination.k8s.io/v1",
            "kube-system",
            lease,
            &uid,
            &spec,
            lease,
        );
        if verb == "update" {
            r.request_body = Some(plain.clone());
        }
        r.respond(plain, managed);
        Self::allow(
            &mut r,
            rbac_reason(
                "RoleBinding",
                &format!("system::leader-locking-{lease}"),
                &format!("system::leader-locking-{lease}"),
                &format!("User \"system:{lease}\""),
            ),
        );
        r
    }

    fn controller_list_watch(&mut self, rng: &mut Rng) -> Request {
        let (sa_name, group, version, res) = *rng.pick(&[
            ("replicaset-controller", "apps", "v1", "replicasets"),
            ("deployment-controller", "apps", "v1", "deployments"),
            ("job-controller", "batch", "v1", "jobs"),
            ("namespace-controller", "", "v1", "namespaces"),
            ("generic-garbage-collector", "", "v1", "pods"),
            (
                "endpointslice-controller",
                "discovery.k8s.io",
                "v1",
                "endpointslices",
            ),
            (
                "horizontal-pod-autoscaler",
                "autoscaling",
                "v2",
                "horizontalpodautoscalers",
            ),
        ]);
        let watch = rng.chance(0.6);
        let mut r = self.base(
            if watch { "watch" } else { "list" },
            sa("kube-system", sa_name),
            "10.0.0.10",
            &Self::kcm_ua(sa_name),
        );
        let q = if watch {
            format!(
                "allowWatchBookmarks=true&resourceVersion={}&timeout=9m31s&timeoutSeconds=571&watch=true",
                self.rv
            )
        } else {
            "limit=500&resourceVersion=0".to_string()
        };
        self.resource(&mut r, group, version, res, "", "", "", &q);
        if watch {
            r.long_running = true;
            r.duration_micros = 500_000_000 + rng.below(70_000_000) as i64;
        } else {
            r.response_body = Some(format!(
                "{{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[]}}",
                self.rv
            ));
        }
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                &format!("system:controller:{sa_name}"),
                &format!("system:controller:{sa_name}"),
                &format!("ServiceAccount \"{sa_name}/kube-system\""),
            ),
        );
        r
    }

    fn controller_status(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name, hash) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
            self.deployments[d].hash.clone(),
        );
        let (sa_name, res, obj_name, kind) = if rng.chance(0.5) {
            (
                "deployment-controller",
                "deployments",
                name.clone(),
                "Deployment",
            )
        } else {
            (
                "replicaset-controller",
                "replicasets",
                format!("{name}-{hash}"),
                "ReplicaSet",
            )
        };
        let mut r = self.base(
            "update",
            sa("kube-system", sa_name),
            "10.0.0.10",
            &Self::kcm_ua(sa_name),
        );
        self.resource(&mut r, "apps", "v1", res, &ns, &obj_name, "status", "");
        let uid = rng.uuid();
        let replicas = 1 + rng.below(4);
        let rest = format!(
            ",\"spec\":{{\"replicas\":{replicas}}},\"status\":{{\"observedGeneration\":{},\"replicas\":{replicas},\"readyReplicas\":{replicas},\"availableReplicas\":{replicas}}}",
            1 + rng.below(40)
        );
        let (plain, managed, rv) =
            self.object(kind, "apps/v1", &ns, &obj_name, &uid, &rest, sa_name);
        r.request_body = Some(plain.clone());
        r.respond(plain, managed);
        if let Some(o) = r.object.as_mut() {
            o.uid = uid;
            o.resource_version = rv;
        }
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                &format!("system:controller:{sa_name}"),
                &format!("system:controller:{sa_name}"),
                &format!("ServiceAccount \"{sa_name}/kube-system\""),
            ),
        );
        r.duration_micros = 3_000 + rng.below(8_000) as i64;
        r
    }

    fn endpointslices(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
        );
        let sa_name = "endpointslice-controller";
        let mut r = self.base(
            "update",
            sa("kube-system", sa_name),
            "10.0.0.10",
            &Self::kcm_ua(sa_name),
        );
        let slice = format!("{name}-{}", rng.suffix(5));
        self.resource(
            &mut r,
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            &ns,
            &slice,
            "",
            "",
        );
        let uid = rng.uuid();
        let rest = format!(
            ",\"addressType\":\"IPv4\",\"endpoints\":[{{\"addresses\":[\"10.244.{}.{}\"],\"conditions\":{{\"ready\":true}}}}],\"ports\":[{{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}}]",
            rng.below(8),
            rng.below(250)
        );
        let (plain, managed, _) = self.object(
            "EndpointSlice",
            "discovery.k8s.io/v1",
            &ns,
            &slice,
            &uid,
            &rest,
            sa_name,
        );
        r.request_body = Some(plain.clone());
        r.respond(plain, managed);
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "system:controller:endpointslice-controller",
                "system:controller:endpointslice-controller",
                "ServiceAccount \"endpointslice-controller/kube-system\"",
            ),
        );
        r
    }

    fn event_create(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let n = self.node(rng);
        let (who, ip, ua) = if rng.chance(0.5) {
            (
                self.kubelet(n),
                self.nodes[n].ip.clone(),
                Self::kubelet_ua(),
            )
        } else {
            (
                sa("kube-system", "replicaset-controller"),
                "10.0.0.10".to_string(),
                Self::kcm_ua("replicaset-controller"),
            )
        };
        let mut r = self.base("create", who, &ip, &ua);
        let name = format!("{pod}.{:x}", rng.u64() >> 16);
        self.resource(&mut r, "", "v1", "events", &ns, "", "", "");
        if let Some(o) = r.object.as_mut() {
            o.name = name.clone();
        }
        let reason = *rng.pick(&[
            "Pulled",
            "Created",
            "Started",
            "Killing",
            "BackOff",
            "Scheduled",
            "SuccessfulCreate",
        ]);
        let body = format!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"involvedObject\":{{\"kind\":\"Pod\",\"namespace\":\"{ns}\",\"name\":\"{pod}\"}},\"reason\":\"{reason}\",\"message\":\"{reason} container\",\"type\":\"Normal\",\"count\":1}}"
        );
        r.request_body = Some(body.clone());
        r.response_body = Some(body);
        r.code = 201;
        Self::allow(&mut r, String::new());
        r
    }

    fn dns_proxy_watch(&mut self, rng: &mut Rng) -> Request {
        let (who, ua, group, res) = if rng.chance(0.5) {
            (
                sa("kube-system", "coredns"),
                "coredns/v0.0.0 (linux/amd64) kubernetes/$Format".to_string(),
                "discovery.k8s.io",
                "endpointslices",
            )
        } else {
            (
                component("system:kube-proxy"),
                format!("kube-proxy/{K8S} (linux/amd64) kubernetes/{GIT}"),
                "",
                "services",
            )
        };
        let n = self.node(rng);
        let mut r = self.base("watch", who, &self.nodes[n].ip.clone(), &ua);
        let q = format!(
            "allowWatchBookmarks=true&resourceVersion={}&timeout=6m26s&timeoutSeconds=386&watch=true",
            self.rv
        );
        self.resource(&mut r, group, "v1", res, "", "", "", &q);
        r.long_running = true;
        r.duration_micros = 380_000_000 + rng.below(20_000_000) as i64;
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "system:coredns",
                "system:coredns",
                "ServiceAccount \"coredns/kube-system\"",
            ),
        );
        r
    }

    fn health(&mut self, rng: &mut Rng) -> Request {
        let path = *rng.pick(&[
            "/healthz",
            "/livez",
            "/readyz",
            "/readyz?verbose",
            "/livez?exclude=etcd",
        ]);
        let mut r = self.base(
            "get",
            Identity {
                name: "system:anonymous".into(),
                uid: String::new(),
                groups: vec!["system:unauthenticated".into()],
            },
            &format!("10.0.0.{}", 2 + rng.below(3)),
            "kube-probe/1.28",
        );
        r.uri = path.to_string();
        Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\" of ClusterRole \"system:public-info-viewer\" to Group \"system:unauthenticated\"".into());
        r
    }

    fn discovery(&mut self, rng: &mut Rng) -> Request {
        let path = *rng.pick(&[
            "/api",
            "/apis",
            "/apis/apps/v1",
            "/api/v1",
            "/openapi/v2",
            "/version",
            "/apis/coordination.k8s.io/v1",
        ]);
        let p = self.person(rng, false);
        let (id, ip, ua) = if rng.chance(0.5) {
            (
                self.people[p].id.clone(),
                self.people[p].ip.clone(),
                self.people[p].ua.clone(),
            )
        } else {
            (
                sa("kube-system", "generic-garbage-collector"),
                "10.0.0.10".into(),
                Self::kcm_ua("generic-garbage-collector"),
            )
        };
        let mut r = self.base("get", id, &ip, &ua);
        r.uri = if path == "/openapi/v2" {
            "/openapi/v2?timeout=32s".into()
        } else {
            format!("{path}?timeout=32s")
        };
        if path == "/api" {
            r.response_body = Some("{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],\"serverAddressByClientCIDRs\":[{\"clientCIDR\":\"0.0.0.0/0\",\"serverAddress\":\"10.0.0.10:6443\"}]}".into());
        }
        Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\"".into());
        r
    }

    fn reviews(&mut self, rng: &mut Rng) -> Request {
        let token = rng.chance(0.5);
        let mut r = self.base(
            "create",
            sa("kube-system", "metrics-server"),
            "10.244.0.12",
            "metrics-server/v0.6.4 (linux/amd64) kubernetes/$Format",
        );
        if token {
            self.resource(
                &mut r,
                "authentication.k8s.io",
                "v1",
                "tokenreviews",
                "",
                "",
                "",
                "",
            );
            r.request_body = Some(format!(
                "{{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{\"creationTimestamp\":null}},\"spec\":{{\"token\":\"eyJhbGciOiJSUzI1NiIsImtpZCI6{}\"}},\"status\":{{\"user\":{{}}}}}}",
                rng.suffix(32)
            ));
            r.response_body = Some("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{},\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:serviceaccount:monitoring:prometheus\",\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"]}}}".into());
        } else {
            self.resource(
                &mut r,
                "authorization.k8s.io",
                "v1",
                "subjectaccessreviews",
                "",
                "",
                "",
                "",
            );
            r.request_body = Some("{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"nonResourceAttributes\":{\"path\":\"/metrics\",\"verb\":\"get\"},\"user\":\"system:serviceaccount:monitoring:prometheus\"},\"status\":{\"allowed\":false}}".into());
            r.response_body = Some("{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{},\"status\":{\"allowed\":true,\"reason\":\"RBAC: allowed by ClusterRoleBinding \\\"prometheus\\\" of ClusterRole \\\"prometheus\\\" to ServiceAccount \\\"prometheus/monitoring\\\"\"}}".into());
        }
        r.code = 201;
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "metrics-server:system:auth-delegator",
                "system:auth-delegator",
                "ServiceAccount \"metrics-server/kube-system\"",
            ),
        );
        r
    }

    fn binding(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let n = self.node(rng);
        let mut r = self.base(
            "create",
            component("system:kube-scheduler"),
            "10.0.0.10",
            &format!("kube-scheduler/{K8S} (linux/amd64) kubernetes/{GIT}/scheduler"),
        );
        self.resource(&mut r, "", "v1", "pods", &ns, &pod, "binding", "");
        r.request_body = Some(format!(
            "{{\"kind\":\"Binding\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{pod}\",\"namespace\":\"{ns}\"}},\"target\":{{\"kind\":\"Node\",\"name\":\"{}\"}}}}",
            self.nodes[n].name
        ));
        r.response_body = Some("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\",\"code\":201}".into());
        r.code = 201;
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "system:kube-scheduler",
                "system:kube-scheduler",
                "User \"system:kube-scheduler\"",
            ),
        );
        r
    }

    // --- people -----------------------------------------------------------------------------

    fn human(&self, rng: &mut Rng, verb: &'static str, admin: bool) -> Request {
        let p = &self.people[self.person(rng, admin)];
        let mut r = self.base(verb, p.id.clone(), &p.ip, &p.ua);
        let reason = if p.id.groups.iter().any(|g| g == "system:masters") {
            String::new()
        } else if admin {
            rbac_reason(
                "ClusterRoleBinding",
                "platform-admins",
                "cluster-admin",
                "Group \"platform-admins\"",
            )
        } else {
            "RBAC: allowed by RoleBinding \"developers/production\" of ClusterRole \"edit\" to Group \"developers\"".to_string()
        };
        Self::allow(&mut r, reason);
        r
    }

    fn kubectl_read(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let list = rng.chance(0.6);
        let mut r = self.human(rng, if list { "list" } else { "get" }, false);
        let (group, res) = *rng.pick(&[
            ("", "pods"),
            ("", "pods"),
            ("apps", "deployments"),
            ("", "services"),
            ("", "configmaps"),
            ("networking.k8s.io", "ingresses"),
        ]);
        if list {
            self.resource(&mut r, group, "v1", res, &ns, "", "", "limit=500");
            r.response_body = Some(format!(
                "{{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"columnDefinitions\":[{{\"name\":\"Name\",\"type\":\"string\"}}],\"rows\":[{{\"cells\":[\"{pod}\"]}}]}}",
                self.rv
            ));
        } else {
            let name = if res == "pods" {
                pod
            } else {
                rng.pick(APPS).to_string()
            };
            self.resource(&mut r, group, "v1", res, &ns, &name, "", "");
            let uid = rng.uuid();
            let (plain, managed, _) = self.object("Pod", "v1", &ns, &name, &uid, ",\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.example.com/app:1.4.2\"}]},\"status\":{\"phase\":\"Running\"}", "kubectl-client-side-apply");
            r.respond(plain, managed);
        }
        r
    }

    fn logs(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let mut r = self.human(rng, "get", false);
        let q = if rng.chance(0.3) {
            "container=app&follow=true&tailLines=100"
        } else {
            "container=app&tailLines=200"
        };
        self.resource(&mut r, "", "v1", "pods", &ns, &pod, "log", q);
        r.long_running = true;
        r.duration_micros = if q.contains("follow") {
            30_000_000 + rng.below(600_000_000) as i64
        } else {
            50_000 + rng.below(300_000) as i64
        };
        r
    }

    fn interactive(&mut self, rng: &mut Rng, sub: &'static str) -> Request {
        let (ns, pod) = self.pod(rng);
        // kubectl 1.29+ uses WebSockets (verb get); older clients SPDY (verb create).
        let websocket = rng.chance(0.4);
        let mut r = self.human(rng, if websocket { "get" } else { "create" }, true);
        let q = match sub {
            "exec" => {
                let cmd = *rng.pick(&[
                    "command=sh&command=-c&command=cat+%2Fetc%2Fresolv.conf",
                    "command=bash",
                    "command=%2Fbin%2Fsh",
                    "command=env",
                    "command=tar&command=cf&command=-&command=%2Fvar%2Flog",
                ]);
                format!("{cmd}&container=app&stdin=true&stdout=true&tty=true")
            }
            "portforward" => "ports=5432".to_string(),
            _ => "container=app&stdin=true&stdout=true&tty=true".to_string(),
        };
        self.resource(&mut r, "", "v1", "pods", &ns, &pod, sub, &q);
        r.code = 101;
        r.long_running = true;
        r.duration_micros = 5_000_000 + rng.below(900_000_000) as i64;
        r
    }

    fn secret_read(&mut self, rng: &mut Rng, list: bool) -> Request {
        let (ns, _) = self.pod(rng);
        let (mut r, name) = if rng.chance(0.5) {
            (
                self.human(rng, if list { "list" } else { "get" }, false),
                rng.pick(&["db-credentials", "api-keys", "tls-cert", "registry-auth"])
                    .to_string(),
            )
        } else {
            let mut r = self.base(
                if list { "list" } else { "get" },
                sa("ci", "deployer"),
                "10.0.3.40",
                "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
            );
            Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"ci-deployer\" of ClusterRole \"admin\" to ServiceAccount \"deployer/ci\"".into());
            (r, "app-config-secret".to_string())
        };
        if list {
            self.resource(&mut r, "", "v1", "secrets", &ns, "", "", "limit=500");
            r.response_body = Some(format!(
                "{{\"kind\":\"SecretList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[]}}",
                self.rv
            ));
        } else {
            self.resource(&mut r, "", "v1", "secrets", &ns, &name, "", "");
            let uid = rng.uuid();
            let (plain, managed, _) = self.object(
                "Secret",
                "v1",
                &ns,
                &name,
                &uid,
                &format!(
                    ",\"data\":{{\"password\":\"{}\"}},\"type\":\"Opaque\"",
                    rng.suffix(24)
                ),
                "kubectl-create",
            );
            r.respond(plain, managed);
        }
        r
    }

    fn ci_deploy(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
        );
        let kind = rng.below(4);
        let verb = match kind {
            0 | 1 => "patch",
            2 => "update",
            _ => "create",
        };
        let mut r = self.base(
            verb,
            sa("ci", "deployer"),
            "10.0.3.40",
            "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        );
        Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"ci-deployer\" of ClusterRole \"admin\" to ServiceAccount \"deployer/ci\"".into());
        let dry = rng.chance(0.15);
        let image = format!(
            "registry.example.com/{name}:1.{}.{}",
            rng.below(30),
            rng.below(10)
        );
        let uid = rng.uuid();
        match kind {
            0 => {
                let q = format!(
                    "fieldManager=argocd-controller&force=true{}",
                    if dry { "&dryRun=All" } else { "" }
                );
                self.resource(&mut r, "apps", "v1", "deployments", &ns, &name, "", &q);
                r.request_body = Some(format!(
                    "{{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}}}}}}}"
                ));
            }
            1 => {
                let q = if dry { "dryRun=All" } else { "" };
                self.resource(&mut r, "apps", "v1", "deployments", &ns, &name, "", q);
                r.request_body = Some(format!(
                    "{{\"spec\":{{\"template\":{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/restartedAt\":\"{}\"}}}}}}}}}}",
                    self.time()
                ));
            }
            2 => {
                self.resource(
                    &mut r,
                    "",
                    "v1",
                    "configmaps",
                    &ns,
                    &format!("{name}-config"),
                    "",
                    "",
                );
                r.request_body = Some(format!(
                    "{{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}-config\",\"namespace\":\"{ns}\"}},\"data\":{{\"LOG_LEVEL\":\"info\",\"FEATURE_FLAGS\":\"a,b\"}}}}"
                ));
            }
            _ => {
                let svc = format!("{name}-{}", rng.suffix(4));
                self.resource(
                    &mut r,
                    "",
                    "v1",
                    "services",
                    &ns,
                    "",
                    "",
                    if dry {
                        "dryRun=All&fieldManager=kubectl-client-side-apply"
                    } else {
                        "fieldManager=kubectl-client-side-apply"
                    },
                );
                if let Some(o) = r.object.as_mut() {
                    o.name = svc.clone();
                }
                r.code = 201;
                r.request_body = Some(format!(
                    "{{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{svc}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"type\":\"{}\",\"ports\":[{{\"port\":80,\"targetPort\":8080}}],\"selector\":{{\"app\":\"{name}\"}}}}}}",
                    if rng.chance(0.1) {
                        "NodePort"
                    } else {
                        "ClusterIP"
                    }
                ));
            }
        }
        let (plain, managed, rv) = self.object("Deployment", "apps/v1", &ns, &name, &uid, &format!(",\"spec\":{{\"replicas\":3,\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}}}}}"), "argocd-controller");
        r.respond(plain, managed);
        if let Some(o) = r.object.as_mut() {
            if verb != "create" {
                o.uid = uid;
                o.resource_version = rv;
            }
        }
        r.duration_micros = 8_000 + rng.below(40_000) as i64;
        r
    }

    fn ci_secret(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let mut r = self.base(
            "create",
            sa("ci", "deployer"),
            "10.0.3.40",
            "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        );
        Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"ci-deployer\" of ClusterRole \"admin\" to ServiceAccount \"deployer/ci\"".into());
        let name = format!("release-{}", rng.suffix(6));
        self.resource(&mut r, "", "v1", "secrets", &ns, "", "", "");
        if let Some(o) = r.object.as_mut() {
            o.name = name.clone();
        }
        let data = format!(
            ",\"data\":{{\"token\":\"{}\"}},\"type\":\"Opaque\"",
            rng.suffix(32)
        );
        r.request_body = Some(format!(
            "{{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}}{data}}}"
        ));
        let uid = rng.uuid();
        let (plain, managed, _) =
            self.object("Secret", "v1", &ns, &name, &uid, &data, "argocd-controller");
        r.respond(plain, managed);
        r.code = 201;
        r
    }

    fn json_patch_node(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let name = self.nodes[n].name.clone();
        let mut r = self.human(rng, "patch", true);
        self.resource(&mut r, "", "v1", "nodes", "", &name, "", "");
        let op = if rng.chance(0.5) {
            "[{\"op\":\"add\",\"path\":\"/metadata/labels/node-role.kubernetes.io~1maintenance\",\"value\":\"\"}]".to_string()
        } else {
            "[{\"op\":\"add\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"maintenance\",\"effect\":\"NoSchedule\"}]},{\"op\":\"replace\",\"path\":\"/spec/unschedulable\",\"value\":true}]".to_string()
        };
        r.request_body = Some(op);
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(
            "Node",
            "v1",
            "",
            &name,
            &uid,
            ",\"spec\":{\"unschedulable\":true}",
            "kubectl-patch",
        );
        r.respond(plain, managed);
        r
    }

    fn rbac_change(&mut self, rng: &mut Rng) -> Request {
        let cluster = rng.chance(0.4);
        let mut r = self.human(rng, "create", true);
        let subject = *rng.pick(&[
            "dave@example.com",
            "bob@example.com",
            "system:serviceaccount:ci:deployer",
        ]);
        let (kind, res, ns, role) = if cluster {
            (
                "ClusterRoleBinding",
                "clusterrolebindings",
                String::new(),
                *rng.pick(&["cluster-admin", "view", "edit"]),
            )
        } else {
            let (ns, _) = self.pod(rng);
            (
                "RoleBinding",
                "rolebindings",
                ns,
                *rng.pick(&["edit", "admin", "view"]),
            )
        };
        let name = format!(
            "{}-{role}",
            subject
                .split('@')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
        );
        self.resource(
            &mut r,
            "rbac.authorization.k8s.io",
            "v1",
            res,
            &ns,
            "",
            "",
            "fieldManager=kubectl-create&fieldValidation=Strict",
        );
        if let Some(o) = r.object.as_mut() {
            o.name = name.clone();
        }
        let nsf = if ns.is_empty() {
            String::new()
        } else {
            format!(",\"namespace\":\"{ns}\"")
        };
        let skind = if subject.starts_with("system:serviceaccount") {
            "ServiceAccount"
        } else {
            "User"
        };
        let body = format!(
            ",\"subjects\":[{{\"kind\":\"{skind}\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"{subject}\"}}],\"roleRef\":{{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"{role}\"}}"
        );
        r.request_body = Some(format!(
            "{{\"kind\":\"{kind}\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{{\"name\":\"{name}\"{nsf}}}{body}}}"
        ));
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(
            kind,
            "rbac.authorization.k8s.io/v1",
            &ns,
            &name,
            &uid,
            &body,
            "kubectl-create",
        );
        r.respond(plain, managed);
        r.code = 201;
        r
    }

    fn impersonation(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let secrets = rng.chance(0.3);
        let mut r = self.human(rng, "list", true);
        r.impersonated = Some(if rng.chance(0.5) {
            Identity {
                name: "bob@example.com".into(),
                uid: String::new(),
                groups: vec!["developers".into(), "system:authenticated".into()],
            }
        } else {
            sa("ci", "deployer")
        });
        self.resource(
            &mut r,
            "",
            "v1",
            if secrets { "secrets" } else { "pods" },
            &ns,
            "",
            "",
            "limit=500",
        );
        r.annotations
            .push(("authorization.k8s.io/decision".into(), "allow".into()));
        r
    }

    fn failed_auth(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let ip = format!(
            "{}.{}",
            *rng.pick(&["203.0.113", "198.51.100", "10.8.0"]),
            2 + rng.below(250)
        );
        let ua = *rng.pick(&[
            "kubectl/v1.28.6 (linux/amd64) kubernetes/be3af46",
            "python-requests/2.31.0",
            "curl/8.4.0",
            "Go-http-client/1.1",
        ]);
        let mut r = Request {
            verb: "list",
            user: None,
            source_ip: ip,
            user_agent: ua.into(),
            code: 401,
            duration_micros: 300,
            ..Default::default()
        };
        self.resource(
            &mut r,
            "",
            "v1",
            *rng.pick(&["secrets", "pods", "configmaps"]),
            &ns,
            "",
            "",
            "",
        );
        let methods = *rng.pick(&[
            "Authentication failed, attempted: bearer",
            "Authentication failed, no credentials provided",
            "Authentication failed, attempted: x509",
        ]);
        r.status = Some(("Failure", "Unauthorized", methods.to_string()));
        r
    }

    fn forbidden(&mut self, rng: &mut Rng) -> Request {
        let ns = if rng.chance(0.5) {
            "kube-system".to_string()
        } else {
            self.pod(rng).0
        };
        let (id, ip, ua) = if rng.chance(0.6) {
            let p = &self.people[3]; // dave, a developer
            (p.id.clone(), p.ip.clone(), p.ua.clone())
        } else {
            (
                sa("default", "default"),
                format!("10.244.{}.{}", rng.below(8), 2 + rng.below(250)),
                "python-requests/2.31.0".to_string(),
            )
        };
        let res = *rng.pick(&[
            "secrets",
            "secrets",
            "pods/exec",
            "clusterrolebindings",
            "nodes",
        ]);
        let verb = if res == "pods/exec" {
            "create"
        } else {
            *rng.pick(&["list", "get"])
        };
        let mut r = self.base(verb, id.clone(), &ip, &ua);
        let (group, resname, sub) = match res {
            "pods/exec" => ("", "pods", "exec"),
            "clusterrolebindings" => ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
            "nodes" => ("", "nodes", ""),
            _ => ("", "secrets", ""),
        };
        let cluster_scoped = resname == "clusterrolebindings" || resname == "nodes";
        let name = if verb == "get" || sub == "exec" {
            "coredns-5d78c9869d-x7kq2".to_string()
        } else {
            String::new()
        };
        self.resource(
            &mut r,
            group,
            "v1",
            resname,
            if cluster_scoped { "" } else { &ns },
            &name,
            sub,
            "",
        );
        let scope = if cluster_scoped {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{ns}\"")
        };
        let what = if group.is_empty() {
            resname.to_string()
        } else {
            format!("{resname}.{group}")
        };
        let msg = format!(
            "{what}{} is forbidden: User \"{}\" cannot {verb} resource \"{what}\"{} {scope}",
            if name.is_empty() {
                String::new()
            } else {
                format!(" \"{name}\"")
            },
            id.name,
            if sub.is_empty() {
                String::new()
            } else {
                format!(" in API group \"\"")
            }
        );
        r.status = Some(("Failure", "Forbidden", msg));
        r.code = 403;
        r.authz = Some(("forbid", String::new()));
        r
    }

    fn pod_delete(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let mut r = self.base(
            "delete",
            sa("kube-system", "replicaset-controller"),
            "10.0.0.10",
            &Self::kcm_ua("replicaset-controller"),
        );
        self.resource(&mut r, "", "v1", "pods", &ns, &pod, "", "");
        r.request_body = Some(format!(
            "{{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"preconditions\":{{\"uid\":\"{}\"}}}}",
            rng.uuid()
        ));
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(
            "Pod",
            "v1",
            &ns,
            &pod,
            &uid,
            ",\"status\":{\"phase\":\"Running\"}",
            "kubelet",
        );
        r.respond(plain, managed);
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "system:controller:replicaset-controller",
                "system:controller:replicaset-controller",
                "ServiceAccount \"replicaset-controller/kube-system\"",
            ),
        );
        r
    }

    fn deployment_delete(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
        );
        let mut r = self.human(rng, "delete", false);
        self.resource(&mut r, "apps", "v1", "deployments", &ns, &name, "", "");
        r.request_body = Some("{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Background\"}".into());
        r.response_body = Some(format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Success\",\"details\":{{\"name\":\"{name}\",\"group\":\"apps\",\"kind\":\"deployments\",\"uid\":\"{}\"}}}}",
            rng.uuid()
        ));
        r
    }

    fn namespace_change(&mut self, rng: &mut Rng) -> Request {
        let create = rng.chance(0.6);
        let name = format!("feature-{}", rng.suffix(5));
        let mut r = self.human(rng, if create { "create" } else { "delete" }, true);
        if create {
            self.resource(&mut r, "", "v1", "namespaces", "", "", "", "");
            if let Some(o) = r.object.as_mut() {
                o.name = name.clone();
            }
            r.request_body = Some(format!(
                "{{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{}},\"status\":{{}}}}"
            ));
            r.code = 201;
        } else {
            self.resource(&mut r, "", "v1", "namespaces", &name, &name, "", "");
        }
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(
            "Namespace",
            "v1",
            "",
            &name,
            &uid,
            ",\"status\":{\"phase\":\"Active\"}",
            "kubectl-create",
        );
        r.respond(plain, managed);
        r
    }

    fn not_found(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let mut r = self.human(rng, "get", false);
        let name = format!("{}-{}", rng.pick(APPS), rng.suffix(5));
        self.resource(&mut r, "", "v1", "pods", &ns, &name, "", "");
        r.code = 404;
        r.status = Some(("Failure", "NotFound", format!("pods \"{name}\" not found")));
        r.response_body = Some(format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"pods \\\"{name}\\\" not found\",\"reason\":\"NotFound\",\"details\":{{\"name\":\"{name}\",\"kind\":\"pods\"}},\"code\":404}}"
        ));
        r
    }

    fn conflict(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
        );
        let mut r = self.base(
            "update",
            sa("kube-system", "deployment-controller"),
            "10.0.0.10",
            &Self::kcm_ua("deployment-controller"),
        );
        self.resource(
            &mut r,
            "apps",
            "v1",
            "deployments",
            &ns,
            &name,
            "status",
            "",
        );
        r.code = 409;
        let msg = format!(
            "Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        );
        r.status = Some(("Failure", "Conflict", msg));
        Self::allow(
            &mut r,
            rbac_reason(
                "ClusterRoleBinding",
                "system:controller:deployment-controller",
                "system:controller:deployment-controller",
                "ServiceAccount \"deployment-controller/kube-system\"",
            ),
        );
        r
    }
}
