//! Retention inside `kaudit serve`: sealed segments older than `retention.max_age` are removed
//! on schedule while events keep arriving, recorded (signed) so `verify` still passes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaudit_server::Config;

fn post(addr: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /audit HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer retention-token\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// 400 events of day `day` of March 2026 (old: retention with a 1-day age removes them).
fn batch(b: usize, day: u32) -> Vec<u8> {
    let items: Vec<String> = (0..400)
        .map(|i| {
            format!(
                r#"{{"level":"Metadata","auditID":"{b:06}-{i:04}","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u"}},"requestReceivedTimestamp":"2026-03-{day:02}T00:00:00.{:06}Z"}}"#,
                b * 400 + i
            )
        })
        .collect();
    format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{{}},\"items\":[{}]}}",
        items.join(",")
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_segments_expire_on_schedule_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cfg = Config::parse(&format!(
        "data: {}\nlisten: {addr}\ntls: {{enabled: false}}\nclusters:\n  - name: c\n    token: retention-token\n\
         retention:\n  max_age: 1d\n  every: 100ms\nstore:\n  seal_rows: 800\n  checkpoint_every: 10ms\n",
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
        for b in 0..10 {
            assert_eq!(post(&a, &batch(b, 1 + b as u32)), 200);
        }
    })
    .await
    .unwrap();
    // Sealed segments (800 events each) are all older than a day: retention removes them.
    let t = Instant::now();
    loop {
        let m = kaudit_store::manifest::Manifest::load(&data.join("manifest.json")).unwrap();
        if m.pruned_size >= 3200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "retention did not run: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
    let v = kaudit_store::verify::verify(&data, None).unwrap();
    assert_eq!(v.failure, None, "{v:?}");
    assert!(v.pruned >= 3200 && v.events + v.pruned == 4000, "{v:?}");
}
