//! The webhook over loopback TLS as kube-apiserver drives it (batches of up to 400, several
//! in flight, retries, out-of-order redelivery), and the bad-input suite: each bad request
//! gets its documented status, nothing from it is stored, and the server keeps serving.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::event_list;
use kaudit_server::{Config, tls};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "prod-token";

fn event(i: usize, stage: &str) -> String {
    format!(
        r#"{{"level":"Metadata","auditID":"00000000-0000-0000-0000-{i:012}","stage":"{stage}","requestURI":"/api/v1/namespaces/default/pods/p{i}","verb":"get","user":{{"username":"jane","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.1"],"userAgent":"kubectl/v1.30.0","objectRef":{{"resource":"pods","namespace":"default","name":"p{i}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestReceivedTimestamp":"2026-03-01T00:00:{:02}.{:06}Z","stageTimestamp":"2026-03-01T00:00:{:02}.{:06}Z"}}"#,
        i / 1_000_000 % 60,
        i % 1_000_000,
        i / 1_000_000 % 60,
        i % 1_000_000
    )
}

struct Client {
    cfg: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
}

struct Resp {
    status: u16,
    body: String,
}

impl Client {
    fn new(
        ca: &std::path::Path,
        cert: Option<(&std::path::Path, &std::path::Path)>,
        addr: std::net::SocketAddr,
    ) -> Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = match cert {
            Some((c, k)) => b
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(c)
                        .unwrap()
                        .map(|c| c.unwrap())
                        .collect(),
                    PrivateKeyDer::from_pem_file(k).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        Client {
            cfg: Arc::new(cfg),
            addr,
        }
    }

    /// One HTTP/1.1 request; `Err` when the connection or TLS handshake fails.
    async fn post(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<Resp, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio_rustls::TlsConnector::from(self.cfg.clone());
        let mut s = conn
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        let mut head = format!(
            "POST /audit?timeout=30s HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // A server refusing early (413 on Content-Length) may close before the body is all
        // sent: the answer is still there to read, as Go's client reads it.
        let wrote = async {
            s.write_all(head.as_bytes()).await?;
            s.write_all(body).await
        }
        .await;
        let mut out = Vec::new();
        let read = s.read_to_end(&mut out).await;
        if out.is_empty() {
            wrote.map_err(|e| e.to_string())?;
            read.map_err(|e| e.to_string())?;
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("no status in {text:?}"))?;
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok(Resp { status, body })
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const AUTH: (&str, &str) = ("Authorization", "Bearer prod-token");

async fn stored(c: &Client) -> u64 {
    // The store's size from the metrics endpoint.
    let tcp = TcpStream::connect(c.addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(c.cfg.clone());
    let mut s = conn
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix("kaudit_store_events "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

/// (what, headers, body, expected status).
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);

/// Bodies and headers kube-apiserver would never send, and what each must get; `good` is a
/// valid one-event body.
fn bad_inputs(good: &[u8]) -> Vec<Case<'static>> {
    let good = good.to_vec();
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b' '; 64 << 20]).unwrap();
    let bomb = bomb.finish().unwrap();
    let huge = event_list(&[event(90_001, "ResponseComplete").replace(
        "\"level\":\"Metadata\"",
        &format!(
            "\"level\":\"Metadata\",\"annotations\":{{\"x\":\"{}\"}}",
            "a".repeat(3 << 20)
        ),
    )]);
    let gzip = ("Content-Encoding", "gzip");
    vec![
        (
            "malformed JSON",
            vec![JSON, AUTH],
            b"{\"kind\":\"EventList\",".to_vec(),
            400,
        ),
        ("not JSON", vec![JSON, AUTH], b"hello".to_vec(), 400),
        (
            "wrong kind",
            vec![JSON, AUTH],
            String::from_utf8(good.clone())
                .unwrap()
                .replace("EventList", "PodList")
                .into_bytes(),
            400,
        ),
        (
            "wrong apiVersion",
            vec![JSON, AUTH],
            String::from_utf8(good.clone())
                .unwrap()
                .replace("audit.k8s.io/v1", "audit.k8s.io/v2")
                .into_bytes(),
            400,
        ),
        (
            "truncated body",
            vec![JSON, AUTH],
            good[..good.len() / 2].to_vec(),
            400,
        ),
        (
            "a bad item among good ones",
            vec![JSON, AUTH],
            event_list(&[event(90_002, "ResponseComplete"), "{\"stage\":42}".into()]),
            400,
        ),
        ("a huge single event", vec![JSON, AUTH], huge, 413),
        ("a decompression bomb", vec![JSON, AUTH, gzip], bomb, 413),
        (
            "gzip that is not gzip",
            vec![JSON, AUTH, gzip],
            good.clone(),
            400,
        ),
        (
            "unknown encoding",
            vec![JSON, AUTH, ("Content-Encoding", "br")],
            good.clone(),
            415,
        ),
        (
            "wrong content type",
            vec![("Content-Type", "text/plain"), AUTH],
            good.clone(),
            415,
        ),
        ("no content type", vec![AUTH], good.clone(), 415),
        ("no credentials", vec![JSON], good.clone(), 401),
        (
            "a wrong token",
            vec![JSON, ("Authorization", "Bearer prod-tokeN")],
            good.clone(),
            401,
        ),
        (
            "basic auth",
            vec![JSON, ("Authorization", "Basic cHJvZDpwcm9k")],
            good.clone(),
            401,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_as_the_apiserver_drives_it_and_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let audit_log = tmp.path().join("audit.log");
    std::fs::write(
        &audit_log,
        (0..300)
            .map(|i| event(500_000 + i, "ResponseComplete") + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let mut cfg = Config::parse(&format!(
        "data: {}\nlisten: 127.0.0.1:0\ntail:\n  - path: {}\n    cluster: node-log\n    poll: 10ms\nclusters:\n  - name: prod\n    token: {TOKEN}\n  - name: staging\n    client_cn: {}\nwebhook:\n  max_body: 2M\nstore:\n  seal_rows: 1000\n",
        data.display(),
        audit_log.display(),
        tls::CLIENT_CN
    ))
    .unwrap();
    cfg.store.checkpoint_every = std::time::Duration::from_millis(10);
    let log: kaudit_server::Log = Arc::new(|m: &str| eprintln!("server: {m}"));
    let server = kaudit_server::start(cfg, log).await.unwrap();
    let g = tls::Generated::new(&data);
    let client = Arc::new(Client::new(&g.ca(), None, server.addr));
    let t = std::time::Instant::now();
    while !server.ready() {
        assert!(t.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The tailed file is read in as soon as the store is open.
    let t = std::time::Instant::now();
    while stored(&client).await < 300 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the tailed file was not read"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 20 batches of 400, each event in two stages across batches, 4 in flight at a time;
    // every batch sent twice, the second round in reverse order (retries, redelivery).
    let mut batches = Vec::new();
    for b in 0..20 {
        let items: Vec<String> = (0..200)
            .flat_map(|i| {
                let n = b * 200 + i;
                [event(n, "ResponseStarted"), event(n, "ResponseComplete")]
            })
            .collect();
        batches.push(event_list(&items));
    }
    let order: Vec<usize> = (0..20).chain((0..20).rev()).collect();
    for chunk in order.chunks(4) {
        let mut tasks = Vec::new();
        for &i in chunk {
            let c = client.clone();
            let body = batches[i].clone();
            tasks.push(tokio::spawn(
                async move { c.post(&[JSON, AUTH], &body).await },
            ));
        }
        for t in tasks {
            let r = t.await.unwrap().unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    assert_eq!(stored(&client).await, 8300);

    // mTLS: the generated client certificate speaks for "staging".
    let mtls = Client::new(&g.ca(), Some((&g.client(), &g.client_key())), server.addr);
    let r = mtls.post(&[JSON], &batches[0]).await.unwrap();
    assert_eq!(
        (r.status, r.body.trim()),
        (200, r#"{"stored":400,"duplicates":0}"#)
    );
    assert_eq!(stored(&client).await, 8700);

    // The bad-input suite: (what, headers, body, expected status).
    let good = event_list(&[event(90_000, "ResponseComplete")]);
    let gzip = ("Content-Encoding", "gzip");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good).unwrap();
    let gz_good = gz.finish().unwrap();
    let cases = bad_inputs(&good);
    for (what, headers, body, want) in cases {
        let r = client.post(&headers, &body).await.unwrap();
        assert_eq!(r.status, want, "{what}: {}", r.body);
        assert_eq!(stored(&client).await, 8700, "{what}: something was stored");
    }
    // A client certificate from another CA: the handshake fails.
    let other = tempfile::tempdir().unwrap();
    let og = tls::ensure_generated(other.path(), &[]).unwrap();
    let stranger = Client::new(&g.ca(), Some((&og.client(), &og.client_key())), server.addr);
    assert!(
        stranger.post(&[JSON], &good).await.is_err(),
        "a foreign client certificate was accepted"
    );
    // A gzipped body is accepted; and the server still serves.
    let r = client.post(&[JSON, AUTH, gzip], &gz_good).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = client
        .post(
            &[JSON, AUTH],
            &event_list(&[event(90_003, "ResponseComplete")]),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stored(&client).await, 8702);

    // Shutdown with batches in flight: each is either acknowledged (and then stored) or
    // refused/unanswered (and then not stored); none is lost after a 200.
    let mut tasks = Vec::new();
    for b in 0..8 {
        let c = client.clone();
        let items: Vec<String> = (0..400)
            .map(|i| event(700_000 + b * 400 + i, "ResponseComplete"))
            .collect();
        let body = event_list(&items);
        tasks.push(tokio::spawn(
            async move { c.post(&[JSON, AUTH], &body).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.shutdown().await.unwrap();
    let mut acked = 0;
    for t in tasks {
        if let Ok(r) = t.await.unwrap() {
            assert!(matches!(r.status, 200 | 503), "{} {}", r.status, r.body);
            if r.status == 200 {
                acked += 400;
            }
        }
    }
    let v = kaudit_store::verify::verify(&data, None).unwrap();
    assert_eq!((v.failure, v.events), (None, 8702 + acked));
    // Each source's events carry its cluster.
    for (cluster, n) in [
        ("node-log", 300),
        ("prod", 8002 + acked as usize),
        ("staging", 400),
    ] {
        let mut q = kaudit_query::exec::Query::new(kaudit_query::filter::parse("", 0).unwrap());
        q.cluster = Some(cluster.into());
        q.stages = true;
        let (rows, _) = kaudit_query::exec::run(&data, &q).unwrap();
        assert_eq!(rows.total(), n, "{cluster}");
    }
}
