//! The disk fills under `kaudit serve`: batches get 503 with Retry-After (never a 200 for
//! something not stored), the server keeps answering, nothing stored is damaged, and once
//! space returns the refused batches go in. The data directory is on a small tmpfs this test
//! mounts (it needs root, as CI has; without it the test says so and fails).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{event_list, request, start};

fn event(i: usize) -> String {
    format!(
        r#"{{"level":"Request","auditID":"{i:08}-0000-4000-8000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/configmaps/c{i}","verb":"update","user":{{"username":"system:serviceaccount:kube-system:controller","groups":["system:serviceaccounts","system:authenticated"]}},"sourceIPs":["10.0.3.7"],"userAgent":"controller/v1.30.0","objectRef":{{"resource":"configmaps","namespace":"default","name":"c{i}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"requestObject":{{"data":{{"k":"{}"}}}},"requestReceivedTimestamp":"2026-03-01T00:{:02}:{:02}.{:06}Z","stageTimestamp":"2026-03-01T00:{:02}:{:02}.{:06}Z"}}"#,
        noise(i, 600),
        i / 60_000_000 % 60,
        i / 1_000_000 % 60,
        i % 1_000_000,
        i / 60_000_000 % 60,
        i / 1_000_000 % 60,
        i % 1_000_000
    )
}

/// Hex that compresses poorly, so the disk fills in spite of zstd.
fn noise(seed: usize, n: usize) -> String {
    let mut x = seed as u64 ^ 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

fn batch(b: usize) -> Vec<u8> {
    let items: Vec<String> = (b * 400..(b + 1) * 400).map(event).collect();
    event_list(&items)
}

/// (status, Retry-After present).
fn post(addr: &str, body: &[u8]) -> (u16, bool) {
    let r = request(addr, "/audit", Some("disk-full-token"), body);
    (r.status, r.retry_after())
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_refuses_keeps_data_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test mounts a small tmpfs and needs root (CI runs as root)"
    );
    let _m = Mount(mnt.clone());
    // Space to give back later.
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 6 << 20]).unwrap();
    let data = mnt.join("data");
    let (server, addr) = start(
        &data,
        "clusters:\n  - name: c\n    token: disk-full-token\nstore:\n  seal_rows: 4000\n  \
         checkpoint_every: 10ms\n",
    )
    .await;
    let a = addr.clone();
    let (acked, refused) = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        let mut refused = Vec::new();
        for b in 0..400 {
            match post(&a, &batch(b)) {
                // A 200 may follow a 503: a refused write is cut back, a failed seal removes
                // its partial file, and a later batch can fit. What matters is that every 200
                // is stored (checked at the end).
                (200, _) => acked.push(b),
                (503, true) => {
                    refused.push(b);
                    if refused.len() >= 5 {
                        break;
                    }
                }
                other => panic!("batch {b}: {other:?}"),
            }
        }
        (acked, refused)
    })
    .await
    .unwrap();
    assert!(
        !refused.is_empty(),
        "the disk never filled ({} batches stored)",
        acked.len()
    );
    assert!(!acked.is_empty());
    let a = addr.clone();
    let health = tokio::task::spawn_blocking(move || request(&a, "/healthz", None, b""))
        .await
        .unwrap();
    assert_eq!(health.status, 200, "the server stopped answering");

    // Space returns: the refused batches go in.
    std::fs::remove_file(&filler).unwrap();
    let a = addr.clone();
    let again = refused.clone();
    tokio::task::spawn_blocking(move || {
        for b in again {
            let t = Instant::now();
            loop {
                match post(&a, &batch(b)) {
                    (200, _) => break,
                    (503 | 429, true) if t.elapsed() < Duration::from_secs(30) => {
                        std::thread::sleep(Duration::from_millis(200))
                    }
                    other => panic!("batch {b} after space returned: {other:?}"),
                }
            }
        }
    })
    .await
    .unwrap();
    server.shutdown().await.unwrap();
    let v = kaudit_store::verify::verify(&data, None).unwrap();
    assert_eq!(v.failure, None, "{v:?}");
    assert_eq!(v.events, ((acked.len() + refused.len()) * 400) as u64);
}
