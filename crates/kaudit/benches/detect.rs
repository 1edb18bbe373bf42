//! Detection speed: events/s through the full built-in pack (every rule on, windows
//! included), against decoding alone and against `jq` running a single rule's filter over the
//! same file — what a user would otherwise script.
//!
//! `cargo bench -p kaudit --bench detect`. `KAUDIT_BENCH_EVENTS` (default 500000) events from
//! `kaudit gen` (seed 1, recipe profile: bodies at Request for pods, RBAC, workloads).
//! Single-threaded; figures are per core.

use std::hint::black_box;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaudit_detect::Engine;
use kaudit_gen::{Config, Format, generate};
use kaudit_model::{MicroTime, decode};
use kaudit_policy::{Evaluator, K8sVersion, LoadOptions, load, profiles};

fn best_of<F: FnMut() -> u64>(rounds: usize, mut f: F) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        out = black_box(f());
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("detect: bench");
        return;
    }
    let n: u64 = std::env::var("KAUDIT_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let dir = std::env::temp_dir().join(format!("kaudit-bench-detect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.log");
    let loaded = load(profiles::profile("recipe").unwrap().text, &LoadOptions::default());
    let cfg = Config {
        events: n,
        start: MicroTime::parse("2026-01-01T00:00:00Z").unwrap(),
        span_micros: 24 * 3600 * 1_000_000,
        seed: 1,
        nodes: 12,
        format: Format::Lines,
        policy: Evaluator::new(&loaded.policy, K8sVersion::DEFAULT).unwrap(),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    generate(&cfg, &mut f).unwrap();
    f.flush().unwrap();
    drop(f);
    let data = std::fs::read(&path).unwrap();
    let mb = data.len() as f64 / 1e6;
    println!("corpus: {n} events, {mb:.1} MB of audit.log (kaudit gen, seed 1, recipe profile)\n");

    let (t_dec, events) = best_of(3, || {
        decode::decode_slice(&data, |r| {
            black_box(&r);
            ControlFlow::Continue(())
        })
        .events
    });
    assert_eq!(events, n);
    let per = |t: Duration| n as f64 / t.as_secs_f64();
    println!("decode only:                                {:>10.0} events/s", per(t_dec));

    let mut all = kaudit_detect::builtin().unwrap();
    let default_on = all.rules.iter().filter(|r| r.enabled).count();
    for r in &mut all.rules {
        r.enabled = true;
    }
    let total_rules = all.rules.len();
    let all = Arc::new(all);
    let default = Arc::new(kaudit_detect::builtin().unwrap());
    for (label, set) in [
        (format!("decode + default pack ({default_on} rules)"), default),
        (format!("decode + full pack ({total_rules} rules, all on)"), all),
    ] {
        let mut alerts_n = 0;
        let (t, _) = best_of(3, || {
            let mut engine = Engine::new(set.clone());
            let mut alerts = Vec::new();
            decode::decode_slice(&data, |r| {
                if let Ok(rec) = r {
                    engine.process(&rec.event, rec.raw, &mut alerts);
                }
                ControlFlow::Continue(())
            });
            alerts_n = alerts.len();
            0
        });
        println!(
            "{label:<43}{:>10.0} events/s  ({:.0} MB/s, rules cost {:.0}% over decoding; {alerts_n} alerts)",
            per(t),
            mb / t.as_secs_f64(),
            100.0 * (t.as_secs_f64() / t_dec.as_secs_f64() - 1.0)
        );
        if label.contains("full") {
            match Command::new("jq").arg("--version").output() {
                Ok(o) if o.status.success() => {
                    // One rule (exec into a pod) as a jq filter, the usual scripted approach.
                    let filter = r#"select(.objectRef.resource=="pods" and (.objectRef.subresource=="exec" or .objectRef.subresource=="attach") and (.verb=="create" or .verb=="get") and ((.responseStatus.code // 0) < 400))"#;
                    let (t_jq, _) = best_of(2, || {
                        let s = Command::new("jq")
                            .args(["-c", filter])
                            .arg(&path)
                            .stdout(Stdio::null())
                            .status()
                            .unwrap();
                        assert!(s.success());
                        0
                    });
                    println!(
                        "jq, one rule (exec) over the same file:     {:>10.0} events/s  -> kaudit runs {total_rules} rules {:.1}x faster than jq runs one",
                        per(t_jq),
                        t_jq.as_secs_f64() / t.as_secs_f64()
                    );
                }
                _ => println!("jq not installed: no comparison"),
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
