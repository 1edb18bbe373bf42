//! What kubelets send: lease renewals, node reads and status, watches, token requests.

use super::{Body, Cluster, Target};
use crate::{Request, Rng};

impl Cluster {
    /// A request from a random node's kubelet: (the node, the request).
    fn kubelet_request(&self, rng: &mut Rng, verb: &'static str) -> (usize, Request) {
        let n = self.node(rng);
        let ip = self.nodes[n].ip.clone();
        (
            n,
            self.base(verb, self.kubelet(n), &ip, &Self::kubelet_ua()),
        )
    }

    // --- kubelets -------------------------------------------------------------------------

    pub(super) fn lease_renew(&mut self, rng: &mut Rng) -> Request {
        let (n, mut r) = self.kubelet_request(rng, "update");
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            Target::new("leases")
                .group("coordination.k8s.io", "v1")
                .ns("kube-node-lease")
                .name(&name)
                .query("timeout=10s"),
        );
        let uid = rng.uuid();
        let t = self.time();
        let spec = format!(
            ",\"spec\":{{\"holderIdentity\":\"{name}\",\"leaseDurationSeconds\":40,\"renewTime\":\"{}.{:06}Z\"}}",
            &t[..19],
            rng.below(1_000_000)
        );
        let (plain, managed, rv) = self.object(Body {
            kind: "Lease",
            api_version: "coordination.k8s.io/v1",
            ns: "kube-node-lease",
            name: &name,
            uid: &uid,
            rest: &spec,
            manager: "kubelet",
        });
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

    pub(super) fn node_get(&mut self, rng: &mut Rng) -> Request {
        let (n, mut r) = self.kubelet_request(rng, "get");
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            Target::new("nodes")
                .name(&name)
                .query("resourceVersion=0&timeout=10s"),
        );
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(Body { kind: "Node", api_version: "v1", ns: "", name: &name, uid: &uid, rest: ",\"spec\":{\"providerID\":\"aws:///us-east-1a/i-0abc\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}", manager: "kubelet" });
        r.respond(plain, managed);
        Self::allow(&mut r, String::new());
        r
    }

    pub(super) fn node_status(&mut self, rng: &mut Rng) -> Request {
        let (n, mut r) = self.kubelet_request(rng, "patch");
        let name = self.nodes[n].name.clone();
        self.resource(
            &mut r,
            Target::new("nodes")
                .name(&name)
                .sub("status")
                .query("timeout=10s"),
        );
        let t = self.time();
        r.request_body = Some(format!(
            "{{\"status\":{{\"$setElementOrder/conditions\":[{{\"type\":\"MemoryPressure\"}},{{\"type\":\"DiskPressure\"}},{{\"type\":\"PIDPressure\"}},{{\"type\":\"Ready\"}}],\"conditions\":[{{\"lastHeartbeatTime\":\"{t}\",\"type\":\"Ready\"}}]}}}}"
        ));
        let uid = rng.uuid();
        let (plain, managed, _) = self.object(Body {
            kind: "Node",
            api_version: "v1",
            ns: "",
            name: &name,
            uid: &uid,
            rest: ",\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}",
            manager: "kubelet",
        });
        r.respond(plain, managed);
        Self::allow(&mut r, String::new());
        r.duration_micros = 5_000 + rng.below(10_000) as i64;
        r
    }

    pub(super) fn kubelet_watch(&mut self, rng: &mut Rng) -> Request {
        let (n, mut r) = self.kubelet_request(rng, "watch");
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
            self.resource(&mut r, Target::new(res).ns(&ns).query(&q));
            r.long_running = true;
            r.duration_micros = 400_000_000 + rng.below(90_000_000) as i64;
            Self::allow(&mut r, String::new());
            return r;
        };
        self.resource(&mut r, Target::new(res).query(&q));
        r.long_running = true;
        r.duration_micros = 400_000_000 + rng.below(90_000_000) as i64;
        Self::allow(&mut r, String::new());
        r
    }

    pub(super) fn kubelet_token(&mut self, rng: &mut Rng) -> Request {
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
            Target::new("serviceaccounts")
                .ns(&ns)
                .name("default")
                .sub("token"),
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
}
