//! Detection speed: events/s through the full built-in pack (every rule on, windows
//! included), against decoding alone and against `jq` running a single rule's filter over the
//! same file — what a user would otherwise script.
//!
//! `cargo bench -p kaudit --bench detect`. `KAUDIT_BENCH_EVENTS` (default 500000) events from
//! `kaudit gen` (seed 1, recipe profile: bodies at Request for pods, RBAC, workloads).
//! Single-threaded; figures are per core.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kaudit_detect::Engine;
use kaudit_model::decode;

mod common;
use common::{Corpus, best_of};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("detect: bench");
        return;
    }
    let corpus = Corpus::generate("detect");
    let (n, path, data, mb) = (corpus.events, &corpus.path, &corpus.data, corpus.mb());
    println!("corpus: {n} events, {mb:.1} MB of audit.log (kaudit gen, seed 1, recipe profile)\n");

    let (t_dec, events) = best_of(3, || {
        decode::decode_slice(data, |r| {
            black_box(&r);
            ControlFlow::Continue(())
        })
        .events
    });
    assert_eq!(events, n);
    let per = |t: Duration| n as f64 / t.as_secs_f64();
    println!(
        "decode only:                                {:>10.0} events/s",
        per(t_dec)
    );

    let mut all = kaudit_detect::builtin().unwrap();
    let default_on = all.rules.iter().filter(|r| r.enabled).count();
    for r in &mut all.rules {
        r.enabled = true;
    }
    let total_rules = all.rules.len();
    let all = Arc::new(all);
    let default = Arc::new(kaudit_detect::builtin().unwrap());
    for (label, set) in [
        (
            format!("decode + default pack ({default_on} rules)"),
            default,
        ),
        (
            format!("decode + full pack ({total_rules} rules, all on)"),
            all,
        ),
    ] {
        let mut alerts_n = 0;
        let (t, _) = best_of(3, || {
            let mut engine = Engine::new(set.clone());
            let mut alerts = Vec::new();
            decode::decode_slice(data, |r| {
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
                            .arg(path)
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
}
