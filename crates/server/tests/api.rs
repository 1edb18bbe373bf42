//! The query API: readers need an API token when tokens are configured; answers are the
//! CLI's (same filter language, same questions); bad filters and unknown questions say so.

mod common;

use common::{event_list, request, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_need_a_reader_token_and_answer_like_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, addr) = start(
        &tmp.path().join("data"),
        "clusters:\n  - name: prod\n    token: sender-token\napi:\n  tokens: [reader-token]\n",
    )
    .await;
    let a = addr.clone();
    tokio::task::spawn_blocking(move || {
        let ev = |i: u32, verb: &str, res: &str, code: u32| {
            format!(
                r#"{{"level":"Metadata","auditID":"id-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/{res}/x{i}","verb":"{verb}","user":{{"username":"jane"}},"objectRef":{{"resource":"{res}","namespace":"prod","name":"x{i}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":{code}}},"requestReceivedTimestamp":"2026-03-01T00:00:0{i}.000000Z"}}"#
            )
        };
        let body = event_list(&[
            ev(1, "get", "secrets", 200),
            ev(2, "delete", "pods", 200),
            ev(3, "get", "secrets", 403),
        ]);
        assert_eq!(request(&a, "/audit", Some("sender-token"), &body).status, 200);
        // Readers only.
        assert_eq!(request(&a, "/api/v1/query?filter=resource=secrets", None, b"").status, 401);
        assert_eq!(
            request(&a, "/api/v1/query?filter=resource=secrets", Some("sender-token"), b"").status,
            401,
            "a sender's token does not read"
        );
        let r = request(&a, "/api/v1/query?filter=resource%3Dsecrets&events=true", Some("reader-token"), b"");
        let (st, body) = (r.status, r.body);
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["total"], 2);
        assert_eq!(v["rows"][0]["audit_id"], "id-1", "in time order");
        assert_eq!(v["rows"][1]["event"]["auditID"], "id-3", "with the stored event");
        let r = request(&a, "/api/v1/ask/deletions", Some("reader-token"), b"");
        let (st, body) = (r.status, r.body);
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["rows"][0]["audit_id"], "id-2");
        let r = request(&a, "/api/v1/query?filter=code%3E%3Dnope", Some("reader-token"), b"");
        let (st, body) = (r.status, r.body);
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("filter"), "{body}");
        let r = request(&a, "/api/v1/ask/nothing", Some("reader-token"), b"");
        let (st, body) = (r.status, r.body);
        assert_eq!(st, 404, "{body}");
        assert!(body.contains("secrets"), "lists the questions: {body}");
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}
