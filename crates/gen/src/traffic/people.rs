//! What people and their tools send: kubectl reads, logs, exec and friends, secrets, CI
//! deploys, RBAC changes, impersonation, failures and denials, deletions.

use super::{APPS, Body, Cluster, Target, rbac_reason, sa};
use crate::{Identity, Request, Rng};

impl Cluster {
    // --- people -----------------------------------------------------------------------------

    pub(super) fn human(&self, rng: &mut Rng, verb: &'static str, admin: bool) -> Request {
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

    pub(super) fn kubectl_read(&mut self, rng: &mut Rng) -> Request {
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
            self.resource(
                &mut r,
                Target::new(res)
                    .group(group, "v1")
                    .ns(&ns)
                    .query("limit=500"),
            );
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
            self.resource(
                &mut r,
                Target::new(res).group(group, "v1").ns(&ns).name(&name),
            );
            let uid = rng.uuid();
            let (plain, managed, _) = self.object(Body { kind: "Pod", api_version: "v1", ns: &ns, name: &name, uid: &uid, rest: ",\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"registry.example.com/app:1.4.2\"}]},\"status\":{\"phase\":\"Running\"}", manager: "kubectl-client-side-apply" });
            r.respond(plain, managed);
        }
        r
    }

    pub(super) fn logs(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let mut r = self.human(rng, "get", false);
        let q = if rng.chance(0.3) {
            "container=app&follow=true&tailLines=100"
        } else {
            "container=app&tailLines=200"
        };
        self.resource(
            &mut r,
            Target::new("pods").ns(&ns).name(&pod).sub("log").query(q),
        );
        r.long_running = true;
        r.duration_micros = if q.contains("follow") {
            30_000_000 + rng.below(600_000_000) as i64
        } else {
            50_000 + rng.below(300_000) as i64
        };
        r
    }

    pub(super) fn interactive(&mut self, rng: &mut Rng, sub: &'static str) -> Request {
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
        self.resource(
            &mut r,
            Target::new("pods").ns(&ns).name(&pod).sub(sub).query(&q),
        );
        r.code = 101;
        r.long_running = true;
        r.duration_micros = 5_000_000 + rng.below(900_000_000) as i64;
        r
    }

    pub(super) fn secret_read(&mut self, rng: &mut Rng, list: bool) -> Request {
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
            self.resource(&mut r, Target::new("secrets").ns(&ns).query("limit=500"));
            r.response_body = Some(format!(
                "{{\"kind\":\"SecretList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[]}}",
                self.rv
            ));
        } else {
            self.resource(&mut r, Target::new("secrets").ns(&ns).name(&name));
            let uid = rng.uuid();
            let (plain, managed, _) = self.object(Body {
                kind: "Secret",
                api_version: "v1",
                ns: &ns,
                name: &name,
                uid: &uid,
                rest: &format!(
                    ",\"data\":{{\"password\":\"{}\"}},\"type\":\"Opaque\"",
                    rng.suffix(24)
                ),
                manager: "kubectl-create",
            });
            r.respond(plain, managed);
        }
        r
    }

    pub(super) fn ci_deploy(&mut self, rng: &mut Rng) -> Request {
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
                self.resource(
                    &mut r,
                    Target::new("deployments")
                        .group("apps", "v1")
                        .ns(&ns)
                        .name(&name)
                        .query(&q),
                );
                r.request_body = Some(format!(
                    "{{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"{ns}\"}},\"spec\":{{\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}}}}}}}"
                ));
            }
            1 => {
                let q = if dry { "dryRun=All" } else { "" };
                self.resource(
                    &mut r,
                    Target::new("deployments")
                        .group("apps", "v1")
                        .ns(&ns)
                        .name(&name)
                        .query(q),
                );
                r.request_body = Some(format!(
                    "{{\"spec\":{{\"template\":{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/restartedAt\":\"{}\"}}}}}}}}}}",
                    self.time()
                ));
            }
            2 => {
                self.resource(
                    &mut r,
                    Target::new("configmaps")
                        .ns(&ns)
                        .name(&format!("{name}-config")),
                );
                r.request_body = Some(format!(
                    "{{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}-config\",\"namespace\":\"{ns}\"}},\"data\":{{\"LOG_LEVEL\":\"info\",\"FEATURE_FLAGS\":\"a,b\"}}}}"
                ));
            }
            _ => {
                let svc = format!("{name}-{}", rng.suffix(4));
                self.resource(
                    &mut r,
                    Target::new("services").ns(&ns).query(if dry {
                        "dryRun=All&fieldManager=kubectl-client-side-apply"
                    } else {
                        "fieldManager=kubectl-client-side-apply"
                    }),
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
        let (plain, managed, rv) = self.object(Body { kind: "Deployment", api_version: "apps/v1", ns: &ns, name: &name, uid: &uid, rest: &format!(",\"spec\":{{\"replicas\":3,\"template\":{{\"spec\":{{\"containers\":[{{\"name\":\"app\",\"image\":\"{image}\"}}]}}}}}}"), manager: "argocd-controller" });
        r.respond(plain, managed);
        if let Some(o) = r.object.as_mut()
            && verb != "create"
        {
            o.uid = uid;
            o.resource_version = rv;
        }
        r.duration_micros = 8_000 + rng.below(40_000) as i64;
        r
    }

    pub(super) fn ci_secret(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let mut r = self.base(
            "create",
            sa("ci", "deployer"),
            "10.0.3.40",
            "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        );
        Self::allow(&mut r, "RBAC: allowed by ClusterRoleBinding \"ci-deployer\" of ClusterRole \"admin\" to ServiceAccount \"deployer/ci\"".into());
        let name = format!("release-{}", rng.suffix(6));
        self.resource(&mut r, Target::new("secrets").ns(&ns));
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
        let (plain, managed, _) = self.object(Body {
            kind: "Secret",
            api_version: "v1",
            ns: &ns,
            name: &name,
            uid: &uid,
            rest: &data,
            manager: "argocd-controller",
        });
        r.respond(plain, managed);
        r.code = 201;
        r
    }

    pub(super) fn json_patch_node(&mut self, rng: &mut Rng) -> Request {
        let n = self.node(rng);
        let name = self.nodes[n].name.clone();
        let mut r = self.human(rng, "patch", true);
        self.resource(&mut r, Target::new("nodes").name(&name));
        let op = if rng.chance(0.5) {
            "[{\"op\":\"add\",\"path\":\"/metadata/labels/node-role.kubernetes.io~1maintenance\",\"value\":\"\"}]".to_string()
        } else {
            "[{\"op\":\"add\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"maintenance\",\"effect\":\"NoSchedule\"}]},{\"op\":\"replace\",\"path\":\"/spec/unschedulable\",\"value\":true}]".to_string()
        };
        r.request_body = Some(op);
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(Body {
            kind: "Node",
            api_version: "v1",
            ns: "",
            name: &name,
            uid: &uid,
            rest: ",\"spec\":{\"unschedulable\":true}",
            manager: "kubectl-patch",
        });
        r.respond(plain, managed);
        r
    }

    pub(super) fn rbac_change(&mut self, rng: &mut Rng) -> Request {
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
            Target::new(res)
                .group("rbac.authorization.k8s.io", "v1")
                .ns(&ns)
                .query("fieldManager=kubectl-create&fieldValidation=Strict"),
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
        let (plain, managed, _) = self.object(Body {
            kind,
            api_version: "rbac.authorization.k8s.io/v1",
            ns: &ns,
            name: &name,
            uid: &uid,
            rest: &body,
            manager: "kubectl-create",
        });
        r.respond(plain, managed);
        r.code = 201;
        r
    }

    pub(super) fn impersonation(&mut self, rng: &mut Rng) -> Request {
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
            Target::new(if secrets { "secrets" } else { "pods" })
                .ns(&ns)
                .query("limit=500"),
        );
        r.annotations
            .push(("authorization.k8s.io/decision".into(), "allow".into()));
        r
    }

    pub(super) fn failed_auth(&mut self, rng: &mut Rng) -> Request {
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
        let resource = *rng.pick(&["secrets", "pods", "configmaps"]);
        self.resource(&mut r, Target::new(resource).ns(&ns));
        let methods = *rng.pick(&[
            "Authentication failed, attempted: bearer",
            "Authentication failed, no credentials provided",
            "Authentication failed, attempted: x509",
        ]);
        r.status = Some(("Failure", "Unauthorized", methods.to_string()));
        r
    }

    pub(super) fn forbidden(&mut self, rng: &mut Rng) -> Request {
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
            Target::new(resname)
                .group(group, "v1")
                .ns(if cluster_scoped { "" } else { &ns })
                .name(&name)
                .sub(sub),
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
                " in API group \"\"".to_string()
            }
        );
        r.status = Some(("Failure", "Forbidden", msg));
        r.code = 403;
        r.authz = Some(("forbid", String::new()));
        r
    }

    pub(super) fn pod_delete(&mut self, rng: &mut Rng) -> Request {
        let (ns, pod) = self.pod(rng);
        let mut r = self.base(
            "delete",
            sa("kube-system", "replicaset-controller"),
            "10.0.0.10",
            &Self::kcm_ua("replicaset-controller"),
        );
        self.resource(&mut r, Target::new("pods").ns(&ns).name(&pod));
        r.request_body = Some(format!(
            "{{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"preconditions\":{{\"uid\":\"{}\"}}}}",
            rng.uuid()
        ));
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(Body {
            kind: "Pod",
            api_version: "v1",
            ns: &ns,
            name: &pod,
            uid: &uid,
            rest: ",\"status\":{\"phase\":\"Running\"}",
            manager: "kubelet",
        });
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

    pub(super) fn deployment_delete(&mut self, rng: &mut Rng) -> Request {
        let d = rng.below(self.deployments.len() as u64) as usize;
        let (ns, name) = (
            self.namespaces[self.deployments[d].ns].clone(),
            self.deployments[d].name.clone(),
        );
        let mut r = self.human(rng, "delete", false);
        self.resource(
            &mut r,
            Target::new("deployments")
                .group("apps", "v1")
                .ns(&ns)
                .name(&name),
        );
        r.request_body = Some("{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Background\"}".into());
        r.response_body = Some(format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Success\",\"details\":{{\"name\":\"{name}\",\"group\":\"apps\",\"kind\":\"deployments\",\"uid\":\"{}\"}}}}",
            rng.uuid()
        ));
        r
    }

    pub(super) fn namespace_change(&mut self, rng: &mut Rng) -> Request {
        let create = rng.chance(0.6);
        let name = format!("feature-{}", rng.suffix(5));
        let mut r = self.human(rng, if create { "create" } else { "delete" }, true);
        if create {
            self.resource(&mut r, Target::new("namespaces"));
            if let Some(o) = r.object.as_mut() {
                o.name = name.clone();
            }
            r.request_body = Some(format!(
                "{{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{}},\"status\":{{}}}}"
            ));
            r.code = 201;
        } else {
            self.resource(&mut r, Target::new("namespaces").ns(&name).name(&name));
        }
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(Body {
            kind: "Namespace",
            api_version: "v1",
            ns: "",
            name: &name,
            uid: &uid,
            rest: ",\"status\":{\"phase\":\"Active\"}",
            manager: "kubectl-create",
        });
        r.respond(plain, managed);
        r
    }

    pub(super) fn not_found(&mut self, rng: &mut Rng) -> Request {
        let (ns, _) = self.pod(rng);
        let mut r = self.human(rng, "get", false);
        let name = format!("{}-{}", rng.pick(APPS), rng.suffix(5));
        self.resource(&mut r, Target::new("pods").ns(&ns).name(&name));
        r.code = 404;
        r.status = Some(("Failure", "NotFound", format!("pods \"{name}\" not found")));
        r.response_body = Some(format!(
            "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"pods \\\"{name}\\\" not found\",\"reason\":\"NotFound\",\"details\":{{\"name\":\"{name}\",\"kind\":\"pods\"}},\"code\":404}}"
        ));
        r
    }

    pub(super) fn conflict(&mut self, rng: &mut Rng) -> Request {
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
            Target::new("deployments")
                .group("apps", "v1")
                .ns(&ns)
                .name(&name)
                .sub("status"),
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
