//! Stage handling on the shapes kube-apiserver produces, delivered as its webhook does:
//! batches out of order, retried batches, a request's stages split between a sealed segment
//! and the WAL tail. See `test_data/stages/README.md`.

use std::path::Path;

use kaudit_model::Event;
use kaudit_query::ask::{self, Answer, AskOptions};
use kaudit_query::exec::{Query, count_by, run};
use kaudit_query::filter::{Filter, parse};
use kaudit_store::{Incoming, Options, Store};

fn data() -> std::path::PathBuf {
    kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("test_data/stages")
}

/// Appends the events at `lines` (0-based) as one webhook batch.
fn deliver(s: &mut Store, lines: &[&str], batch: &[usize]) -> (u64, u64) {
    let events: Vec<Event<'_>> = batch
        .iter()
        .map(|&i| serde_json::from_str(lines[i]).unwrap())
        .collect();
    let inc: Vec<Incoming<'_>> = batch
        .iter()
        .zip(&events)
        .map(|(&i, e)| Incoming::new(1_772_359_200_000_000 + i as i64, "prod", lines[i], e))
        .collect();
    let a = s.append(&inc).unwrap();
    (a.stored, a.duplicates)
}

fn answer(dir: &Path, spec: &str) -> String {
    let (mut stages, mut limit, mut f) = (false, None, spec);
    if let Some(rest) = f.strip_prefix("stages ") {
        stages = true;
        f = rest;
    }
    if let Some(rest) = f.strip_prefix("limit ") {
        let (n, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        limit = Some(n.parse().unwrap());
        f = rest;
    }
    let q = Query {
        filters: vec![parse(f, 0).unwrap()],
        stages,
        limit,
        ..Default::default()
    };
    let (rows, _) = run(dir, &q).unwrap();
    rows.iter()
        .map(|r| format!("{}:{}", &r.audit_id[r.audit_id.len() - 4..], r.stage))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_all(dir: &Path, when: &str) {
    let expected = std::fs::read_to_string(data().join("expected.tsv")).unwrap();
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let (spec, want) = line.split_once('\t').unwrap();
        assert_eq!(answer(dir, spec), want, "{when}: {spec:?}");
    }
    // Exactly one first stage per request, whatever the arrival order.
    let (rows, _) = run(
        dir,
        &Query {
            stages: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut firsts = std::collections::BTreeMap::<String, u32>::new();
    for r in rows.iter() {
        *firsts.entry(r.audit_id.to_string()).or_default() += r.first as u32;
    }
    assert!(firsts.values().all(|&n| n == 1), "{when}: {firsts:?}");
    assert_eq!(firsts.len(), 7);
    // Requests per user, from the user dictionary at each request's first stage.
    let (counts, _) = count_by(dir, &Query::new(Filter::default()), "user").unwrap();
    let want: Vec<(String, u64)> = [
        ("", 2),
        ("jane@example.com", 2),
        ("bob@example.com", 1),
        ("ci@example.com", 1),
        ("mallory@example.com", 1),
    ]
    .iter()
    .map(|(u, n)| (u.to_string(), *n))
    .collect();
    assert_eq!(counts, want, "{when}");
    // The questions built on these filters.
    let opts = AskOptions {
        limit: Some(100),
        ..Default::default()
    };
    let (a, _) = ask::ask(dir, ask::question("failed-auth").unwrap(), None, &opts).unwrap();
    let Answer::Requests(r) = a else { panic!() };
    assert_eq!(r.total(), 2, "{when}: failed-auth");
}

#[test]
fn stages_retries_and_out_of_order_batches() {
    let text = std::fs::read_to_string(data().join("events.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 13);
    let b1 = [0, 1, 3, 4]; // watch and exec: RequestReceived, ResponseStarted
    let b2 = [6, 7, 8, 10]; // the failed logins; the get's and the delete's RequestReceived
    let b3 = [9, 11, 12]; // their ResponseComplete; the update (ResponseComplete only)
    let b4 = [2, 5]; // the watch and the exec end, minutes later
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let opts = || Options {
        seal_rows: 1_000_000,
        checkpoint_every: std::time::Duration::ZERO,
        row_group_rows: 4,
        dedup_hot_rows: 0,
    };
    let mut s = Store::open(&dir, opts()).unwrap();
    assert_eq!(deliver(&mut s, &lines, &b2), (4, 0));
    assert_eq!(deliver(&mut s, &lines, &b1), (4, 0));
    assert_eq!(deliver(&mut s, &lines, &b1), (0, 4)); // retried after a timeout
    assert_eq!(deliver(&mut s, &lines, &b3), (3, 0));
    assert_eq!(deliver(&mut s, &lines, &b2), (0, 4));
    // Sealed between the requests' first and last stages.
    s.seal().unwrap();
    assert_eq!(deliver(&mut s, &lines, &b4), (2, 0));
    assert_eq!(deliver(&mut s, &lines, &b3), (0, 3));
    check_all(&dir, "segment + WAL tail");
    // A restart rebuilds the dedup state from the segment and the WAL: retries still count.
    s.close().unwrap();
    let mut s = Store::open(&dir, opts()).unwrap();
    assert_eq!(deliver(&mut s, &lines, &b4), (0, 2));
    assert_eq!(deliver(&mut s, &lines, &b1), (0, 4));
    s.seal().unwrap();
    s.close().unwrap();
    check_all(&dir, "all sealed");
}
