//! Benchmarks for the foundation: audit.log parsing (against `jq -c .` on the same file, in
//! the same run) and policy evaluation with a realistic policy.
//!
//! `cargo bench -p kaudit --bench foundation` (or `scripts/bench.sh`). Environment:
//! `KAUDIT_BENCH_EVENTS` (default 500000) events are generated with `kaudit gen`'s engine
//! (seed 1, recipe profile) into a temporary file. Single-threaded; figures are per core.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::process::{Command, Stdio};

use kaudit_model::{Event, decode};
use kaudit_policy::{Attributes, Evaluator, K8sVersion, LoadOptions, load, profiles};

mod common;
use common::best_of;

fn evaluator(name: &str) -> (Evaluator, usize) {
    let text = match name {
        "catch-all" => "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
        _ => profiles::profile(name).unwrap().text,
    };
    let loaded = load(text, &LoadOptions::default());
    (
        Evaluator::new(&loaded.policy, K8sVersion::DEFAULT).unwrap(),
        loaded.policy.rules.len(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("foundation: bench");
        return;
    }
    let corpus = common::Corpus::generate("foundation");
    let (n, path, gen_secs) = (corpus.events, corpus.path.clone(), corpus.gen_secs);
    let data = &corpus.data;
    let mb = data.len() as f64 / 1e6;
    println!(
        "corpus: {n} events, {mb:.1} MB of audit.log (kaudit gen, seed 1, recipe profile), generated in {gen_secs:.2}s ({:.0} events/s)",
        n as f64 / gen_secs
    );
    println!();

    // --- parsing ---------------------------------------------------------------------------
    let (t_parse, events) = best_of(5, || {
        decode::decode_slice(data, |r| {
            black_box(&r);
            ControlFlow::Continue(())
        })
        .events
    });
    assert_eq!(events, n);
    let parse_mbs = mb / t_parse.as_secs_f64();
    println!(
        "parse audit.log into events (in memory, 1 thread):  {parse_mbs:>8.0} MB/s  {:>10.0} events/s",
        n as f64 / t_parse.as_secs_f64()
    );
    let (t_read, _) = best_of(3, || {
        let file = std::fs::File::open(&path).unwrap();
        decode::decode_reader(file, |r| {
            black_box(&r);
            ControlFlow::Continue(())
        })
        .unwrap()
        .events
    });
    println!(
        "parse audit.log streamed from the file (1 thread):  {:>8.0} MB/s",
        mb / t_read.as_secs_f64()
    );
    match Command::new("jq").arg("--version").output() {
        Ok(o) if o.status.success() => {
            let ver = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let (t_jq, _) = best_of(2, || {
                let s = Command::new("jq")
                    .arg("-c")
                    .arg(".")
                    .arg(&path)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(s.success());
                0
            });
            let jq_mbs = mb / t_jq.as_secs_f64();
            println!(
                "jq -c . over the same file ({ver}):               {jq_mbs:>8.0} MB/s   -> kaudit parses {:.1}x faster",
                parse_mbs / jq_mbs
            );
        }
        _ => println!("jq -c .: jq is not installed, no comparison (apt-get install jq)"),
    }
    println!();

    // --- policy evaluation -----------------------------------------------------------------
    let mut owned: Vec<(usize, usize)> = Vec::new(); // line spans, to re-borrow events
    decode::decode_slice(data, |r| {
        let r = r.unwrap();
        let start = r.raw.as_ptr() as usize - data.as_ptr() as usize;
        owned.push((start, start + r.raw.len()));
        ControlFlow::Continue(())
    });
    let text = std::str::from_utf8(data).unwrap();
    let events: Vec<Event<'_>> = owned
        .iter()
        .map(|(a, b)| serde_json::from_str(&text[*a..*b]).unwrap())
        .collect();
    let attrs: Vec<Attributes<'_>> = events.iter().map(Attributes::from_event).collect();
    // In the pipeline an event is evaluated right after it is parsed, while it is in cache: the
    // "hot" figure loops over a cache-sized slice of the corpus. The "cold" figure walks the
    // whole corpus (hundreds of MB), so it mostly measures memory latency.
    let hot = &attrs[..attrs.len().min(256)];
    let reps = (n as usize / hot.len()).max(1);
    for name in ["gce", "recipe", "hardened", "catch-all"] {
        let (ev, rules) = evaluator(name);
        let (t_hot, s) = best_of(5, || {
            let mut s = 0u64;
            for _ in 0..reps {
                for a in hot {
                    s += ev.evaluate(a).level as u64;
                }
            }
            s
        });
        black_box(s);
        let hot_rate = (reps * hot.len()) as f64 / t_hot.as_secs_f64() / 1e6;
        let (t_cold, s) = best_of(3, || {
            attrs.iter().map(|a| ev.evaluate(a).level as u64).sum()
        });
        black_box(s);
        let (t_both, _) = best_of(3, || {
            let mut s = 0u64;
            for _ in 0..reps {
                for e in &events[..hot.len()] {
                    s += ev.evaluate(&Attributes::from_event(e)).level as u64;
                }
            }
            s
        });
        println!(
            "policy evaluation, {name} profile ({rules} rules): {hot_rate:>6.2} M requests/s per core (hot); {:>5.2} M/s deriving attributes from each event too; {:>5.2} M/s cold (whole corpus)",
            (reps * hot.len()) as f64 / t_both.as_secs_f64() / 1e6,
            n as f64 / t_cold.as_secs_f64() / 1e6,
        );
    }
}
