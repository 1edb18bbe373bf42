#!/usr/bin/env python3
"""Writes the synthetic cloud export samples in this folder (see README.md).

Every record here is made up, shaped as `shared/spec/formats.md` (sections 1-3) describes each
cloud's export; names, accounts, projects and IPs are documentation placeholders. Run it from
anywhere; it rewrites eks/, gke/ and aks/ except the copied upstream files (gke/khi-*.json,
gke/alloy-*.json). Then regenerate the .expected files: KAUDIT_BLESS=1 cargo test -p kaudit-model.
"""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def write(path, text):
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as f:
        f.write(text)


def event(audit_id, verb, uri, user, obj=None, code=200, stage="ResponseComplete", level="Metadata",
          t0="2025-05-12T09:14:03.118204Z", t1="2025-05-12T09:14:03.121950Z", ann=None, status=None,
          request=None, response=None, ua="kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350",
          ips=("203.0.113.10",)):
    """An audit.k8s.io/v1 Event with kube-apiserver's key order."""
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": audit_id,
         "stage": stage, "requestURI": uri, "verb": verb, "user": user, "sourceIPs": list(ips),
         "userAgent": ua}
    if obj is not None:
        e["objectRef"] = obj
    rs = {"metadata": {}}
    rs.update(status or {})
    rs["code"] = code
    e["responseStatus"] = rs
    if request is not None:
        e["requestObject"] = request
    if response is not None:
        e["responseObject"] = response
    e["requestReceivedTimestamp"] = t0
    e["stageTimestamp"] = t1
    e["annotations"] = ann if ann is not None else {"authorization.k8s.io/decision": "allow",
                                                    "authorization.k8s.io/reason": ""}
    return e


# ---------------------------------------------------------------- EKS

ACCT = "111122223333"
ALICE = {
    "username": f"arn:aws:sts::{ACCT}:assumed-role/DevOps/alice",
    "uid": f"aws-iam-authenticator:{ACCT}:AROAEXAMPLEID0000001",
    "groups": ["system:authenticated"],
    "extra": {
        "accessKeyId": ["ASIAEXAMPLEKEY000001"],
        "arn": [f"arn:aws:sts::{ACCT}:assumed-role/DevOps/alice"],
        "canonicalArn": [f"arn:aws:iam::{ACCT}:role/DevOps"],
        "principalId": ["AROAEXAMPLEID0000001"],
        "sessionName": ["alice"],
        "sigs.k8s.io/aws-iam-authenticator/principalId": ["AROAEXAMPLEID0000001"],
    },
}
NODE = {
    "username": "system:node:ip-10-0-12-34.eu-west-1.compute.internal",
    "uid": f"aws-iam-authenticator:{ACCT}:AROAEXAMPLENODE00001",
    "groups": ["system:bootstrappers", "system:nodes", "system:authenticated"],
}
STREAM = "kube-apiserver-audit-0123456789abcdef0123456789abcdef"
AUTH_STREAM = "authenticator-0123456789abcdef0123456789abcdef"
API_STREAM = "kube-apiserver-0123456789abcdef0123456789abcdef"

E_SECRET = event(
    "5c1e5d0e-8a3b-4f7e-9d2a-0b6f1c2d3e41", "get", "/api/v1/namespaces/payments/secrets/db-creds",
    ALICE, {"resource": "secrets", "namespace": "payments", "name": "db-creds", "apiVersion": "v1"},
    ann={"authorization.k8s.io/decision": "allow",
         "authorization.k8s.io/reason": "EKS Access Policy: allowed by ClusterRoleBinding \"arn:aws:iam::111122223333:role/DevOps+arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy\" of ClusterRole \"arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy\" to User \"alice\""})
E_EXEC = event(
    "9e0d1c2b-3a4f-4e5d-8c7b-6a5f4e3d2c1b", "create",
    "/api/v1/namespaces/payments/pods/api-7d9f8-abcde/exec?command=sh&container=api&stdin=true&stdout=true&tty=true",
    {"username": "arn:aws:iam::111122223333:user/bob", "uid": f"aws-iam-authenticator:{ACCT}:AIDAEXAMPLEUSER00001",
     "groups": ["system:authenticated"],
     "extra": {"accessKeyId": ["AKIAEXAMPLEKEY000002"], "arn": ["arn:aws:iam::111122223333:user/bob"],
               "canonicalArn": ["arn:aws:iam::111122223333:user/bob"], "principalId": ["AIDAEXAMPLEUSER00001"],
               "sessionName": [""]}},
    {"resource": "pods", "namespace": "payments", "name": "api-7d9f8-abcde", "apiVersion": "v1", "subresource": "exec"},
    code=403, ips=("198.51.100.7",), t0="2025-05-12T09:15:41.500012Z", t1="2025-05-12T09:15:41.501377Z",
    status={"status": "Failure",
            "message": "pods \"api-7d9f8-abcde\" is forbidden: User \"arn:aws:iam::111122223333:user/bob\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"payments\"",
            "reason": "Forbidden", "details": {"name": "api-7d9f8-abcde", "kind": "pods"}},
    ann={"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""})
E_WATCH_STARTED = event(
    "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "watch",
    "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=812345&timeout=7m41s&timeoutSeconds=461&watch=true",
    NODE, {"resource": "nodes", "apiVersion": "v1"}, stage="ResponseStarted",
    ua="kubelet/v1.30.4 (linux/amd64) kubernetes/a1b2c3d", ips=("10.0.12.34",),
    t0="2025-05-12T09:10:00.000731Z", t1="2025-05-12T09:10:00.001904Z")
E_WATCH_DONE = dict(E_WATCH_STARTED, stage="ResponseComplete", stageTimestamp="2025-05-12T09:17:41.002113Z")
E_LEASE = event(
    "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "update",
    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/ip-10-0-12-34.eu-west-1.compute.internal?timeout=10s",
    NODE, {"resource": "leases", "namespace": "kube-node-lease", "name": "ip-10-0-12-34.eu-west-1.compute.internal",
           "uid": "3f7c2a10-5b6d-4e8f-9a0b-1c2d3e4f5a6b", "apiGroup": "coordination.k8s.io", "apiVersion": "v1",
           "resourceVersion": "812399"},
    ua="kubelet/v1.30.4 (linux/amd64) kubernetes/a1b2c3d", ips=("10.0.12.34",),
    t0="2025-05-12T09:14:05.204113Z", t1="2025-05-12T09:14:05.209870Z")
# A large configmap create at RequestResponse, which EKS cut (the real cut is at CloudWatch's
# per-event limit, 256 KiB; shortened here to keep the file small).
BIG = event(
    "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901", "create", "/api/v1/namespaces/payments/configmaps?fieldManager=kubectl-client-side-apply",
    ALICE, {"resource": "configmaps", "namespace": "payments", "name": "feature-flags", "apiVersion": "v1"},
    code=201, level="RequestResponse",
    request={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "feature-flags", "namespace": "payments"},
             "data": {f"flag-{i:04}": "on" if i % 3 else "off" for i in range(400)}},
    t0="2025-05-12T09:16:00.000100Z", t1="2025-05-12T09:16:00.030200Z")
BIG_CUT = compact(BIG)[:2400] + "[Truncated...]"

AUTH_MSG = 'time="2025-05-12T09:14:03Z" level=info msg="access granted" arn="arn:aws:iam::111122223333:role/DevOps" client="127.0.0.1:51234" groups="[]" method=POST path=/authenticate uid="aws-iam-authenticator:111122223333:AROAEXAMPLEID0000001" username="arn:aws:sts::111122223333:assumed-role/DevOps/alice"'
API_MSG = 'I0512 09:14:03.118204      10 handler.go:143] kube-apiserver: GET "/readyz" satisfied by nonGoRestful'


def cw(stream, ts, msg, eid):
    return {"logStreamName": stream, "timestamp": ts, "message": msg, "ingestionTime": ts + 695,
            "eventId": eid}


filter_events = {
    "events": [
        cw(STREAM, 1747041243121, compact(E_SECRET), "38254819102846516418273109382763451239873645123987461234"),
        cw(AUTH_STREAM, 1747041243122, AUTH_MSG, "38254819102846516418273109382763451239873645123987461235"),
        cw(API_STREAM, 1747041243123, API_MSG, "38254819102846516418273109382763451239873645123987461236"),
        cw(STREAM, 1747041341501, compact(E_EXEC), "38254819102846516418273109382763451239873645123987461237"),
        cw(STREAM, 1747041360030, BIG_CUT, "38254819102846516418273109382763451239873645123987461238"),
    ],
    "searchedLogStreams": [],
}
write("eks/filter-log-events.json", json.dumps(filter_events, indent=4) + "\n")

get_events = {
    "events": [
        {"timestamp": 1747041000001, "message": compact(E_WATCH_STARTED), "ingestionTime": 1747041000700},
        {"timestamp": 1747041245209, "message": compact(E_LEASE), "ingestionTime": 1747041245900},
        {"timestamp": 1747041461002, "message": compact(E_WATCH_DONE), "ingestionTime": 1747041461700},
    ],
    "nextForwardToken": "f/38254819102846516418273109382763451239873645123987461299/s",
    "nextBackwardToken": "b/38254819102846516418273109382763451239873645123987461200/s",
}
write("eks/get-log-events.json", json.dumps(get_events, indent=4) + "\n")


def sub(stream, events, mtype="DATA_MESSAGE"):
    return {"messageType": mtype, "owner": ACCT, "logGroup": "/aws/eks/prod-eu/cluster", "logStream": stream,
            "subscriptionFilters": ["kaudit-audit"],
            "logEvents": [{"id": f"3825481910284651641827310938276345123987364512398746{1300 + i}", "timestamp": ts,
                           "message": m} for i, (ts, m) in enumerate(events)]}


write("eks/subscription-payload.json", json.dumps(sub(STREAM, [(1747041243121, compact(E_SECRET)),
                                                                (1747041245209, compact(E_LEASE))]), indent=2) + "\n")
control = sub("cloudwatch_logs_health_check", [(1747040000000, "CWL CONTROL MESSAGE: Checking health of destination Firehose.")],
              "CONTROL_MESSAGE")
control["logGroup"] = ""
control["subscriptionFilters"] = []
# Firehose -> S3 objects, gunzipped: DATA_MESSAGE documents back to back, no newline.
write("eks/firehose-s3-concatenated.json",
      compact(control) + compact(sub(AUTH_STREAM, [(1747041243122, AUTH_MSG)]))
      + compact(sub(STREAM, [(1747041341501, compact(E_EXEC)), (1747041360030, BIG_CUT)])) + "\n")

# CloudWatch CreateExportTask objects, gunzipped: `<timestamp> <message>` per line.
write("eks/export-task-000000.log",
      "2025-05-12T09:14:03.121Z " + compact(E_SECRET) + "\n"
      + "2025-05-12T09:16:00.030Z " + BIG_CUT + "\n"
      + "2025-05-12T09:15:41.501Z " + compact(E_EXEC) + "\n")

# Firehose with message extraction: the messages themselves, one per line.
write("eks/firehose-extracted.jsonl", compact(E_LEASE) + "\n" + BIG_CUT + "\n" + compact(E_EXEC) + "\n")

insights = {
    "results": [
        [{"field": "@timestamp", "value": "2025-05-12 09:14:03.121"},
         {"field": "@message", "value": compact(E_SECRET)},
         {"field": "@logStream", "value": STREAM},
         {"field": "@ptr", "value": "CmUKLAooMTExMTIyMjIzMzMzOi9hd3MvZWtzL3Byb2QtZXUvY2x1c3RlchAHEjUaGAIGZ"}],
        [{"field": "@timestamp", "value": "2025-05-12 09:14:03.122"},
         {"field": "@message", "value": AUTH_MSG},
         {"field": "@logStream", "value": AUTH_STREAM},
         {"field": "@ptr", "value": "CmUKLAooMTExMTIyMjIzMzMzOi9hd3MvZWtzL3Byb2QtZXUvY2x1c3RlchAHEjUaGAIGZ2"}],
    ],
    "statistics": {"recordsMatched": 2.0, "recordsScanned": 5120.0, "bytesScanned": 4194304.0},
    "status": "Complete",
}
write("eks/insights-query-results.json", json.dumps(insights, indent=4) + "\n")

# ---------------------------------------------------------------- GKE

PROJECT = "example-project"
CLUSTER = {"type": "k8s_cluster", "labels": {"cluster_name": "prod-us", "location": "us-central1", "project_id": PROJECT}}


def entry(insert_id, method, resource_name, principal, ts, log="activity", labels=None, request=None,
          response=None, status=None, ip="10.128.0.7", ua="kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
          granted=True):
    pp = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
          "authenticationInfo": {"principalEmail": principal} if principal else {},
          "authorizationInfo": [{"granted": granted, "permission": method, "resource": resource_name}],
          "methodName": method,
          "requestMetadata": {"callerIp": ip, "callerSuppliedUserAgent": ua},
          "resourceName": resource_name,
          "serviceName": "k8s.io",
          "status": status if status is not None else {}}
    if request is not None:
        pp["request"] = request
    if response is not None:
        pp["response"] = response
    e = {"insertId": insert_id,
         "labels": labels if labels is not None else {"authorization.k8s.io/decision": "allow",
                                                      "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding \"cluster-admin-binding\" of ClusterRole \"cluster-admin\" to User \"dev@example.com\""},
         "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2F{log}",
         "operation": {"first": True, "id": insert_id, "last": True, "producer": "k8s.io"},
         "protoPayload": pp,
         "receiveTimestamp": ts[:19] + ".987654321Z",
         "resource": CLUSTER,
         "timestamp": ts}
    return e


CM_REQ = {"@type": "core.k8s.io/v1.ConfigMap", "apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"creationTimestamp": None, "name": "app-config", "namespace": "shop"},
          "data": {"LOG_LEVEL": "info", "FEATURE_X": "on & <beta>"}}
CM_RESP = {"@type": "core.k8s.io/v1.ConfigMap", "apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"creationTimestamp": "2025-06-02T14:03:11Z", "name": "app-config", "namespace": "shop",
                        "resourceVersion": "5551234", "uid": "a1b2c3d4-e5f6-4789-8abc-def012345678"},
           "data": {"LOG_LEVEL": "info", "FEATURE_X": "on & <beta>"}}
ALREADY = {"@type": "core.k8s.io/v1.Status", "apiVersion": "v1", "kind": "Status", "code": 409,
           "details": {"group": "apps", "kind": "deployments", "name": "web"},
           "message": "deployments.apps \"web\" already exists", "metadata": {}, "reason": "AlreadyExists",
           "status": "Failure"}
DENY_LABELS = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}

gcloud = [  # newest first, as `gcloud logging read` prints
    entry("d0c5a1e2-7b3f-4a6e-9d21-5f8e7c6b4a31", "io.k8s.core.v1.pods.exec.create",
          "core/v1/namespaces/shop/pods/web-6c9f7b8d5-x2x7q/exec", "dev@example.com", "2025-06-02T14:05:09.402118Z"),
    entry("b7e4f3a2-1c0d-4e9f-8a7b-6c5d4e3f2a19", "io.k8s.apps.v1.deployments.create",
          "apps/v1/namespaces/shop/deployments/web", "system:serviceaccount:ci:deployer", "2025-06-02T14:04:30.001992Z",
          request={"@type": "apps.k8s.io/v1.Deployment", "apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "shop"}},
          response=ALREADY, status={"code": 10, "message": "ABORTED"}),
    entry("8f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918", "io.k8s.core.v1.secrets.get",
          "core/v1/namespaces/shop/secrets/stripe-key", "contractor@example.org", "2025-06-02T14:03:58.771004Z",
          log="data_access", labels=DENY_LABELS, status={"code": 7, "message": "PERMISSION_DENIED"}, granted=False),
    entry("3e2d1c0b-9a8f-4e7d-b6c5-a4f3e2d1c0b9", "io.k8s.core.v1.configmaps.create",
          "core/v1/namespaces/shop/configmaps/app-config", "dev@example.com", "2025-06-02T14:03:11.250300Z",
          request=CM_REQ, response=CM_RESP, status={"code": 0}),
    {"insertId": "-x1y2z3a4b5c", "logName": f"projects/{PROJECT}/logs/cloudaudit.googleapis.com%2Factivity",
     "operation": {"first": True, "id": "operation-1748873000000-abcdef", "producer": "container.googleapis.com"},
     "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                      "authenticationInfo": {"principalEmail": "admin@example.com"},
                      "methodName": "google.container.v1.ClusterManager.SetNodePoolSize",
                      "resourceName": f"projects/{PROJECT}/locations/us-central1/clusters/prod-us/nodePools/default-pool",
                      "serviceName": "container.googleapis.com", "status": {}},
     "resource": {"type": "gke_nodepool", "labels": {"cluster_name": "prod-us", "location": "us-central1",
                                                     "nodepool_name": "default-pool", "project_id": PROJECT}},
     "severity": "NOTICE", "timestamp": "2025-06-02T14:02:00.120000Z",
     "receiveTimestamp": "2025-06-02T14:02:01.000000Z"},
    entry("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "io.k8s.core.v1.nodes.list", "core/v1/nodes",
          "system:serviceaccount:monitoring:node-exporter", "2025-06-02T14:01:44.009871Z", log="data_access",
          ua="node-exporter/v1.8.1"),
    entry("6d5c4b3a-2918-4f7e-a6d5-c4b3a2918f7e", "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
          "rbac.authorization.k8s.io/v1/clusterrolebindings/ci-admin", "dev@example.com", "2025-06-02T14:00:02.333333Z",
          request={"@type": "rbac.authorization.k8s.io/v1.ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                   "kind": "ClusterRoleBinding", "metadata": {"name": "ci-admin"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]}),
]
write("gke/gcloud-logging-read.json", json.dumps(gcloud, indent=2, sort_keys=True) + "\n")

T = "2025-06-02T15:00:00.000001Z"
edge = [
    entry("a0000001-0000-4000-8000-000000000001", "io.k8s.core.v1.namespaces.get", "core/v1/namespaces/team-a",
          "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000002", "io.k8s.core.v1.namespaces.finalize.update",
          "core/v1/namespaces/team-a/finalize", "system:serviceaccount:kube-system:namespace-controller", T),
    entry("a0000001-0000-4000-8000-000000000003", "io.k8s.core.v1.namespaces.status.get",
          "core/v1/namespaces/team-a/status", "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000004", "io.k8s.core.v1.pods.list", "core/v1/namespaces/team-a/pods",
          "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000005", "io.k8s.core.v1.pods.deletecollection",
          "core/v1/namespaces/team-a/pods", "dev@example.com", T),
    entry("a0000001-0000-4000-8000-000000000006", "io.k8s.core.v1.pods.log.get",
          "core/v1/namespaces/team-a/pods/web-0/log", "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000007", "io.k8s.core.v1.nodes.status.patch",
          "core/v1/nodes/gke-prod-us-default-pool-1a2b3c4d-x9z8/status",
          "kubelet", T, ua="kubelet/v1.30.5 (linux/amd64) kubernetes/74e84a9"),
    entry("a0000001-0000-4000-8000-000000000008", "io.k8s.io.cert-manager.v1.certificates.list",
          "cert-manager.io/v1/namespaces/team-a/certificates", "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000009", "io.k8s.core.v1.namespaces.create", "core/v1/namespaces",
          "dev@example.com", T,
          request={"@type": "core.k8s.io/v1.Namespace", "apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-b"}}),
    entry("a0000001-0000-4000-8000-000000000010", "io.k8s.get", "readyz", "system:anonymous", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000011", "io.k8s.core.v1.pods.portforward.create",
          "core/v1/namespaces/team-a/pods/db-0/portforward", "dev@example.com", T),
    entry("a0000001-0000-4000-8000-000000000012", "io.k8s.core.v1.pods.list", "core/v1//pods",
          "dev@example.com", T, log="data_access"),
    entry("a0000001-0000-4000-8000-000000000013", "", "core/v1/namespaces/team-a/pods", "dev@example.com", T),
]
write("gke/resource-names.jsonl", "".join(compact(e) + "\n" for e in edge))

T2 = "2025-06-02T16:00:00.5Z"
NOT_FOUND = {"@type": "core.k8s.io/v1.Status", "apiVersion": "v1", "kind": "Status", "code": 404,
             "details": {"kind": "pods", "name": "gone"}, "message": "pods \"gone\" not found", "metadata": {},
             "reason": "NotFound", "status": "Failure"}
codes = [
    entry("c0000001-0000-4000-8000-000000000000", "io.k8s.core.v1.pods.get", "core/v1/namespaces/team-a/pods/web-0",
          "dev@example.com", T2, log="data_access", status={"code": 0}),
    entry("c0000001-0000-4000-8000-000000000003", "io.k8s.core.v1.pods.create", "core/v1/namespaces/team-a/pods",
          "dev@example.com", T2, status={"code": 3, "message": "INVALID_ARGUMENT"}),
    entry("c0000001-0000-4000-8000-000000000005", "io.k8s.core.v1.pods.get", "core/v1/namespaces/team-a/pods/gone",
          "dev@example.com", T2, log="data_access", response=NOT_FOUND, status={"code": 5, "message": "NOT_FOUND"}),
    entry("c0000001-0000-4000-8000-000000000007", "io.k8s.core.v1.secrets.list", "core/v1/namespaces/kube-system/secrets",
          "system:serviceaccount:team-a:default", T2, log="data_access", labels=DENY_LABELS,
          status={"code": 7, "message": "PERMISSION_DENIED"}, granted=False),
    entry("c0000001-0000-4000-8000-000000000008", "io.k8s.core.v1.configmaps.list", "core/v1/namespaces/team-a/configmaps",
          "dev@example.com", T2, log="data_access", status={"code": 8, "message": "RESOURCE_EXHAUSTED"}),
    entry("c0000001-0000-4000-8000-000000000013", "io.k8s.apps.v1.deployments.patch",
          "apps/v1/namespaces/team-a/deployments/web", "dev@example.com", T2, status={"code": 13, "message": "INTERNAL"}),
    entry("c0000001-0000-4000-8000-000000000014", "io.k8s.core.v1.services.update",
          "core/v1/namespaces/team-a/services/web", "dev@example.com", T2, status={"code": 14, "message": "UNAVAILABLE"}),
    entry("c0000001-0000-4000-8000-000000000016", "io.k8s.core.v1.namespaces.list", "core/v1/namespaces",
          None, T2, log="data_access", labels={}, status={"code": 16, "message": "UNAUTHENTICATED"}),
    entry("c0000001-0000-4000-8000-000000000042", "io.k8s.core.v1.pods.get", "core/v1/namespaces/team-a/pods/web-0",
          "dev@example.com", T2, log="data_access", status={"code": 42, "message": "?"}),
]
write("gke/status-codes.jsonl", "".join(compact(e) + "\n" for e in codes))

# The Pub/Sub push body a Cloud Logging sink produces; data = one LogEntry, JSON, base64.
pushed = entry("e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b", "io.k8s.core.v1.serviceaccounts.token.create",
               "core/v1/namespaces/ci/serviceaccounts/deployer/token", "system:serviceaccount:ci:token-broker",
               "2025-06-02T17:20:05.123456789Z")
push = {"message": {"attributes": {"logging.googleapis.com/timestamp": "2025-06-02T17:20:05.123456789Z"},
                    "data": base64.b64encode((compact(pushed) + "\n").encode()).decode(),
                    "messageId": "14211908124350111", "message_id": "14211908124350111",
                    "publishTime": "2025-06-02T17:20:06.301Z", "publish_time": "2025-06-02T17:20:06.301Z"},
        "subscription": f"projects/{PROJECT}/subscriptions/kaudit-push"}
write("gke/pubsub-push.json", json.dumps(push, indent=2) + "\n")

pulled_a = entry("f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9", "io.k8s.core.v1.pods.delete",
                 "core/v1/namespaces/shop/pods/web-6c9f7b8d5-x2x7q", "dev@example.com", "2025-06-02T17:21:00.000042Z")
pulled_b = {"insertId": "1q2w3e4r5t6y", "logName": f"projects/{PROJECT}/logs/stdout",
            "resource": {"type": "k8s_container", "labels": {"cluster_name": "prod-us", "container_name": "web",
                                                             "namespace_name": "shop", "pod_name": "web-0",
                                                             "location": "us-central1", "project_id": PROJECT}},
            "textPayload": "GET /healthz 200", "timestamp": "2025-06-02T17:21:01.000000Z"}
pull = {"receivedMessages": [
    {"ackId": "UAYWLF1GSFE3GQhoUQ5PXiM_NSAoRRIJB08CKF15MEorQVh0Dk", "message": {
        "data": base64.b64encode(compact(e).encode()).decode(),
        "attributes": {"logging.googleapis.com/timestamp": e["timestamp"]},
        "messageId": f"1421190812435{n}", "publishTime": "2025-06-02T17:21:02.000Z"}}
    for n, e in enumerate([pulled_a, pulled_b], start=2000)]}
write("gke/pubsub-pull.json", json.dumps(pull, indent=2) + "\n")

page = {"entries": [gcloud[3], gcloud[5]], "nextPageToken": "EAA4z4rZ1pLe1t3hAUq3AQokGiIKIGZkN2Q3"}
write("gke/entries-list.json", json.dumps(page, indent=2) + "\n")

# ---------------------------------------------------------------- AKS

RID = "/SUBSCRIPTIONS/00000000-1111-2222-3333-444444444444/RESOURCEGROUPS/RG-PROD/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AKS-PROD"
AKS_ADMIN = {"username": "masterclient", "groups": ["system:masters", "system:authenticated"]}
AAD = {"username": "carol@example.com", "uid": "00000000-aaaa-bbbb-cccc-000000000003",
       "groups": ["11111111-2222-3333-4444-555555555555", "system:authenticated"],
       "extra": {"oid": ["00000000-aaaa-bbbb-cccc-000000000003"]}}


def rec(category, log, time, pod="kube-apiserver-7f9c6d8b5-q4w2e", stream="stdout"):
    return {"category": category, "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
            "properties": {"log": log, "containerID": "5e8b7c6d5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
                           "stream": stream, "pod": pod},
            "resourceId": RID, "serviceBuild": "na", "time": time}


A_LEASE = event("4d3c2b1a-0f9e-4d8c-b7a6-f5e4d3c2b1a0", "update",
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler",
                {"username": "system:kube-scheduler", "groups": ["system:authenticated"]},
                {"resource": "leases", "namespace": "kube-system", "name": "kube-scheduler",
                 "apiGroup": "coordination.k8s.io", "apiVersion": "v1"},
                ua="kube-scheduler/v1.30.6 (linux/amd64) kubernetes/a0c3fd5/leader-election", ips=("10.224.0.4",),
                t0="2025-07-01T08:00:01.000100Z", t1="2025-07-01T08:00:01.003300Z")
A_RB = event("8b7a6f5e-4d3c-4b2a-9f0e-d9c8b7a6f5e4", "create",
             "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
             AAD, {"resource": "rolebindings", "namespace": "team-a", "name": "edit-carol",
                   "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"},
             code=201, level="RequestResponse", ips=("192.0.2.44",),
             request={"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                      "metadata": {"name": "edit-carol", "namespace": "team-a"},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                      "subjects": [{"kind": "User", "name": "carol@example.com"}]},
             response={"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                       "metadata": {"name": "edit-carol", "namespace": "team-a", "uid": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
                                    "resourceVersion": "771234", "creationTimestamp": "2025-07-01T08:00:02Z"}},
             t0="2025-07-01T08:00:02.100000Z", t1="2025-07-01T08:00:02.108800Z")
A_SKIPPED = event("c5d4e3f2-a1b0-4c9d-8e7f-6a5b4c3d2e1f", "update",
                  "/api/v1/namespaces/team-a/configmaps/big-bundle", AKS_ADMIN,
                  {"resource": "configmaps", "namespace": "team-a", "name": "big-bundle", "apiVersion": "v1"},
                  level="RequestResponse", request="skipped-too-big-size-object", response="skipped-too-big-size-object",
                  ua="helm/v3.15.2 (linux/amd64)", ips=("192.0.2.45",),
                  t0="2025-07-01T08:00:03.000000Z", t1="2025-07-01T08:00:03.210000Z")
A_GET = event("e3f2a1b0-c9d8-4e7f-a6b5-c4d3e2f1a0b9", "get", "/api/v1/namespaces/team-a/secrets/tls-cert", AAD,
              {"resource": "secrets", "namespace": "team-a", "name": "tls-cert", "apiVersion": "v1"},
              ips=("192.0.2.44",), t0="2025-07-01T08:00:04.000500Z", t1="2025-07-01T08:00:04.002100Z")
# AKS cuts properties.log of large RequestResponse events (about 16 KiB), leaving invalid JSON.
A_BIG = event("f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f", "patch",
              "/apis/apps/v1/namespaces/team-a/deployments/web?fieldManager=kubectl-client-side-apply", AAD,
              {"resource": "deployments", "namespace": "team-a", "name": "web", "apiGroup": "apps", "apiVersion": "v1"},
              level="RequestResponse", ips=("192.0.2.44",),
              request={"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                                    compact({"env": [{"name": f"VAR_{i}", "value": "x" * 40} for i in range(300)]})}}},
              t0="2025-07-01T08:00:05.000000Z", t1="2025-07-01T08:00:05.090000Z")
A_BIG_CUT = compact(A_BIG)[:16384]
KLOG = "I0701 08:00:01.004512      1 httplog.go:132] \"HTTP\" verb=\"PUT\" URI=\"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler\" latency=\"3.2ms\" userAgent=\"kube-scheduler/v1.30.6\" audit-ID=\"4d3c2b1a-0f9e-4d8c-b7a6-f5e4d3c2b1a0\" srcIP=\"10.224.0.4:51422\" resp=200\n"
GUARD = "{\"level\":\"info\",\"ts\":\"2025-07-01T08:00:04.001Z\",\"msg\":\"Access allowed\",\"user\":\"carol@example.com\",\"verb\":\"get\",\"resource\":\"secrets\"}\n"

body1 = {"records": [
    rec("kube-audit", compact(A_LEASE) + "\n", "2025-07-01T08:00:01.004512345Z"),
    rec("kube-apiserver", KLOG, "2025-07-01T08:00:01.004600000Z", stream="stderr"),
    rec("kube-audit-admin", A_RB, "2025-07-01T08:00:02.109000000Z"),  # log already an object
    rec("guard", GUARD, "2025-07-01T08:00:04.001000000Z", pod="guard-5b7c9d8e6f-k2j3h"),
]}
body2 = {"records": [
    rec("kube-audit", A_BIG_CUT, "2025-07-01T08:00:05.091000000Z"),
    rec("kube-audit", compact(A_SKIPPED) + "\n", "2025-07-01T08:00:03.211000000Z"),
]}
# An Event Hub capture dumped one event body per line.
write("aks/eventhub-bodies.jsonl", compact(body1) + "\n" + compact(body2) + "\n")
# One body as a pretty-printed document (as portals and `az` tools show it).
write("aks/eventhub-body-pretty.json",
      json.dumps({"records": [rec("kube-audit", compact(A_GET) + "\n", "2025-07-01T08:00:04.002200000Z"),
                              rec("cluster-autoscaler", "I0701 08:00:04.500000       1 static_autoscaler.go:290] Starting main loop\n",
                                  "2025-07-01T08:00:04.500100000Z", pod="cluster-autoscaler-6d8f9c7b5-zz9xw", stream="stderr"),
                              rec("kube-audit-admin", compact(A_RB) + "\n", "2025-07-01T08:00:02.109000000Z")]},
                 indent=2) + "\n")
# Storage account blob: JSON Lines, one record per line, no records array. The hour is still
# being appended to, so the last line is cut off mid-record.
pt1h = [rec("kube-audit", compact(A_GET) + "\n", "2025-07-01T08:00:04.002200000Z"),
        rec("kube-audit", A_BIG_CUT, "2025-07-01T08:00:05.091000000Z"),
        rec("kube-audit", compact(A_SKIPPED), "2025-07-01T08:00:03.211000000Z")]
last = compact(rec("kube-audit", compact(A_LEASE) + "\n", "2025-07-01T08:00:06.000000000Z"))
write("aks/PT1H.json", "".join(compact(r) + "\n" for r in pt1h) + last[: len(last) // 2])
