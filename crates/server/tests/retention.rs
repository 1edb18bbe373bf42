//! Retention inside `kaudit serve`: sealed segments older than `retention.max_age` are removed
//! on schedule while events keep arriving, recorded (signed) so `verify` still passes.

mod common;

use std::time::{Duration, Instant};

use common::{event_list, request, start};

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
    event_list(&items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_segments_expire_on_schedule_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (server, addr) = start(
        &data,
        "clusters:\n  - name: c\n    token: retention-token\nretention:\n  max_age: 1d\n  every: 100ms\n\
         store:\n  seal_rows: 800\n  checkpoint_every: 10ms\n",
    )
    .await;
    let a = addr.clone();
    tokio::task::spawn_blocking(move || {
        for b in 0..10 {
            let r = request(
                &a,
                "/audit",
                Some("retention-token"),
                &batch(b, 1 + b as u32),
            );
            assert_eq!(r.status, 200, "{}", r.body);
        }
    })
    .await
    .unwrap();
    // Sealed segments (800 events each) are all older than a day: retention removes them.
    let t = Instant::now();
    loop {
        let snap = kaudit_store::Snapshot::open(&data).unwrap();
        if snap.pruned() >= 3200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "retention did not run: {} pruned",
            snap.pruned()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await.unwrap();
    let v = kaudit_store::verify::verify(&data, None).unwrap();
    assert_eq!(v.failure, None, "{v:?}");
    assert!(v.pruned >= 3200 && v.events + v.pruned == 4000, "{v:?}");
}
