//! What the control plane sends: leader election, controllers' lists, watches and status,
//! endpoint slices, events, health and discovery, reviews, scheduling.

use super::{Body, Cluster, GIT, K8S, Target, component, rbac_reason, sa};
use crate::{Identity, Request, Rng};

impl Cluster {
    // --- control plane ----------------------------------------------------------------------

    pub(super) fn leader_election(&mut self, rng: &mut Rng) -> Request {
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
            Target::new("leases")
                .group("coordination.k8s.io", "v1")
                .ns("kube-system")
                .name(lease)
                .query("timeout=5s"),
        );
        let uid = rng.uuid();
        let holder = format!("ip-10-0-0-10_{}", rng.uuid());
        let spec = format!(
            ",\"spec\":{{\"holderIdentity\":\"{holder}\",\"leaseDurationSeconds\":15,\"renewTime\":\"{}\"}}",
            self.time()
        );
        let (plain, managed, _) = self.object(Body {
            kind: "Lease",
            api_version: "coordination.k8s.io/v1",
            ns: "kube-system",
            name: lease,
            uid: &uid,
            rest: &spec,
            manager: lease,
        });
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

    pub(super) fn controller_list_watch(&mut self, rng: &mut Rng) -> Request {
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
        self.resource(&mut r, Target::new(res).group(group, version).query(&q));
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

    pub(super) fn controller_status(&mut self, rng: &mut Rng) -> Request {
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
        self.resource(
            &mut r,
            Target::new(res)
                .group("apps", "v1")
                .ns(&ns)
                .name(&obj_name)
                .sub("status"),
        );
        let uid = rng.uuid();
        let replicas = 1 + rng.below(4);
        let rest = format!(
            ",\"spec\":{{\"replicas\":{replicas}}},\"status\":{{\"observedGeneration\":{},\"replicas\":{replicas},\"readyReplicas\":{replicas},\"availableReplicas\":{replicas}}}",
            1 + rng.below(40)
        );
        let (plain, managed, rv) = self.object(Body {
            kind,
            api_version: "apps/v1",
            ns: &ns,
            name: &obj_name,
            uid: &uid,
            rest: &rest,
            manager: sa_name,
        });
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

    pub(super) fn endpointslices(&mut self, rng: &mut Rng) -> Request {
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
            Target::new("endpointslices")
                .group("discovery.k8s.io", "v1")
                .ns(&ns)
                .name(&slice),
        );
        let uid = rng.uuid();
        let rest = format!(
            ",\"addressType\":\"IPv4\",\"endpoints\":[{{\"addresses\":[\"10.244.{}.{}\"],\"conditions\":{{\"ready\":true}}}}],\"ports\":[{{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}}]",
            rng.below(8),
            rng.below(250)
        );
        let (plain, managed, _) = self.object(Body {
            kind: "EndpointSlice",
            api_version: "discovery.k8s.io/v1",
            ns: &ns,
            name: &slice,
            uid: &uid,
            rest: &rest,
            manager: sa_name,
        });
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

    pub(super) fn event_create(&mut self, rng: &mut Rng) -> Request {
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
        self.resource(&mut r, Target::new("events").ns(&ns));
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

    pub(super) fn dns_proxy_watch(&mut self, rng: &mut Rng) -> Request {
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
        self.resource(&mut r, Target::new(res).group(group, "v1").query(&q));
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

    pub(super) fn health(&mut self, rng: &mut Rng) -> Request {
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

    pub(super) fn discovery(&mut self, rng: &mut Rng) -> Request {
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

    pub(super) fn reviews(&mut self, rng: &mut Rng) -> Request {
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
                Target::new("tokenreviews").group("authentication.k8s.io", "v1"),
            );
            r.request_body = Some(format!(
                "{{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{{\"creationTimestamp\":null}},\"spec\":{{\"token\":\"eyJhbGciOiJSUzI1NiIsImtpZCI6{}\"}},\"status\":{{\"user\":{{}}}}}}",
                rng.suffix(32)
            ));
            r.response_body = Some("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"spec\":{},\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:serviceaccount:monitoring:prometheus\",\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"]}}}".into());
        } else {
            self.resource(
                &mut r,
                Target::new("subjectaccessreviews").group("authorization.k8s.io", "v1"),
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

    pub(super) fn binding(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let n = self.node(rng);
        let mut r = self.base(
            "create",
            component("system:kube-scheduler"),
            "10.0.0.10",
            &format!("kube-scheduler/{K8S} (linux/amd64) kubernetes/{GIT}/scheduler"),
        );
        self.resource(
            &mut r,
            Target::new("pods").ns(&ns).name(&pod).sub("binding"),
        );
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
}
