//! The query API: readers need an API token when tokens are configured; answers are the
//! CLI's (same filter language, same questions); bad filters and unknown questions say so.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaudit_server::Config;

fn request(addr: &str, method: &str, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_need_a_reader_token_and_answer_like_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = Config::parse(&format!(
        "data: {}\nlisten: {addr}\ntls: {{enabled: false}}\nclusters:\n  - name: prod\n    token: sender-token\n\
         api:\n  tokens: [reader-token]\n",
        data.display()
    ))
    .unwrap();
    let server = kaudit_server::start(cfg, Arc::new(|m: &str| eprintln!("server: {m}")))
        .await
        .unwrap();
    let t = Instant::now();
    while !server.ready() {
        assert!(t.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let a = addr.clone();
    tokio::task::spawn_blocking(move || {
        let ev = |i: u32, verb: &str, res: &str, code: u32| {
            format!(
                r#"{{"level":"Metadata","auditID":"id-{i}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/prod/{res}/x{i}","verb":"{verb}","user":{{"username":"jane"}},"objectRef":{{"resource":"{res}","namespace":"prod","name":"x{i}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":{code}}},"requestReceivedTimestamp":"2026-03-01T00:00:0{i}.000000Z"}}"#
            )
        };
        let body = format!(
            "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{},{},{}]}}",
            ev(1, "get", "secrets", 200),
            ev(2, "delete", "pods", 200),
            ev(3, "get", "secrets", 403)
        );
        assert_eq!(request(&a, "POST", "/audit", Some("sender-token"), body.as_bytes()).0, 200);
        // Readers only.
        assert_eq!(request(&a, "GET", "/api/v1/query?filter=resource=secrets", None, b"").0, 401);
        assert_eq!(
            request(&a, "GET", "/api/v1/query?filter=resource=secrets", Some("sender-token"), b"").0,
            401,
            "a sender's token does not read"
        );
        let (st, body) =
            request(&a, "GET", "/api/v1/query?filter=resource%3Dsecrets&events=true", Some("reader-token"), b"");
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["total"], 2);
        assert_eq!(v["rows"][0]["audit_id"], "id-1", "in time order");
        assert_eq!(v["rows"][1]["event"]["auditID"], "id-3", "with the stored event");
        let (st, body) = request(&a, "GET", "/api/v1/ask/deletions", Some("reader-token"), b"");
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["rows"][0]["audit_id"], "id-2");
        let (st, body) = request(&a, "GET", "/api/v1/query?filter=code%3E%3Dnope", Some("reader-token"), b"");
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("filter"), "{body}");
        let (st, body) = request(&a, "GET", "/api/v1/ask/nothing", Some("reader-token"), b"");
        assert_eq!(st, 404, "{body}");
        assert!(body.contains("secrets"), "lists the questions: {body}");
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
}
