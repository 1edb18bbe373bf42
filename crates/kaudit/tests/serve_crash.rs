//! `kaudit serve` killed with SIGKILL at random moments under load, 20 times: after every
//! restart, every batch it acknowledged (200) is stored exactly once, and `kaudit verify`
//! passes at the end. Batches of 400 events arrive as kube-apiserver sends them: several in
//! flight, failed ones retried, some redelivered out of order.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaudit_testkit::{Serve, event_list, free_port, request};

const TOKEN: &str = "crash-test-token";

fn kaudit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kaudit"))
}

/// Runs `kaudit ARGS`, which must succeed; its standard output.
fn run(args: &[&str], path: &Path) -> String {
    let out = kaudit().args(args).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "kaudit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A POST of a webhook body; its status (0 when the connection failed).
fn post(addr: &str, body: &[u8]) -> u16 {
    request(addr, "/audit?timeout=30s", Some(TOKEN), body).status
}

fn start(cfg: &Path) -> Serve {
    Serve::start(
        Path::new(env!("CARGO_BIN_EXE_kaudit")),
        cfg,
        Some(Stdio::null()),
    )
}

#[test]
fn acknowledged_batches_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("kaudit-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.log");
    run(&["gen", "-n", "40000", "--seed", "9", "--out"], &log);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let batches: Vec<Vec<u8>> = lines.chunks(400).map(event_list).collect();
    let addr = format!("127.0.0.1:{}", free_port());
    let data = dir.join("data");
    let cfg = dir.join("kaudit.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data: {}\nlisten: {addr}\ntls: {{enabled: false}}\nclusters:\n  - name: prod\n    token: {TOKEN}\n\
             store:\n  seal_rows: 5000\n  checkpoint_every: 50ms\n  dedup_hot_rows: 5000\n",
            data.display()
        ),
    )
    .unwrap();

    // Senders: each takes the next batch; on any failure it is put back to be retried later
    // (out of order); acknowledged ones are recorded. Some acknowledged batches are sent
    // again (the apiserver retries when an answer is lost).
    let queue: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..batches.len()).rev().collect()));
    let acked: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(batches);
    let mut senders = Vec::new();
    for w in 0..4 {
        let (queue, acked, done, batches, addr) = (
            queue.clone(),
            acked.clone(),
            done.clone(),
            batches.clone(),
            addr.clone(),
        );
        senders.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                // New batches first; when there are none, redeliveries, so the load never
                // stops while the server is killed.
                let i = queue
                    .lock()
                    .unwrap()
                    .pop()
                    .unwrap_or((n as usize * 31 + w as usize * 17) % batches.len());
                match post(&addr, &batches[i]) {
                    200 => {
                        acked.lock().unwrap().push(i);
                        if n % 7 == w as u64 {
                            // Redelivered later, as after a lost answer.
                            queue.lock().unwrap().insert(0, i);
                        }
                    }
                    _ => {
                        queue.lock().unwrap().insert(0, i);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }));
    }

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let ready = Duration::from_secs(60);
    let mut server = start(&cfg);
    for round in 0..20 {
        server.wait_ready(&addr, ready);
        std::thread::sleep(Duration::from_millis(30 + next() % 400));
        server.kill(); // SIGKILL
        let stored = acked.lock().unwrap().len();
        eprintln!("round {round}: {stored} batches acknowledged so far");
        server = start(&cfg);
    }
    server.wait_ready(&addr, ready);
    // Let the rest go through (until every batch was acknowledged once: one in flight when
    // the queue empties may still be refused and put back), then stop cleanly.
    let t = Instant::now();
    let all_acked = || {
        let a = acked.lock().unwrap();
        a.iter().collect::<std::collections::BTreeSet<_>>().len() == batches.len()
    };
    while !(queue.lock().unwrap().is_empty() && all_acked())
        && t.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    done.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let stopped = server.stop(Duration::from_secs(60));
    assert!(
        stopped.clean(),
        "the server did not stop cleanly on SIGTERM within 60 s: {stopped:?}"
    );

    let acked: std::collections::BTreeSet<usize> = acked.lock().unwrap().iter().copied().collect();
    assert_eq!(
        acked.len(),
        batches.len(),
        "every batch was acknowledged in the end"
    );
    // Every event exactly once: the store holds as many events as were sent, each
    // (auditID, stage) once.
    let csv = run(
        &[
            "query", "--stages", "--limit", "0", "--format", "csv", "--data",
        ],
        &data,
    );
    let mut keys: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[f.len() - 2].to_string(), f[f.len() - 1].to_string())
        })
        .collect();
    assert_eq!(keys.len(), lines.len(), "stored events");
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), lines.len(), "no event stored twice");
    run(&["verify", "--data"], &data);
    let _ = std::fs::remove_dir_all(&dir);
}
