//! Each ready investigation returns the same requests as the equivalent jq pipeline over the
//! raw files (`test_data/questions.tsv`), on generated traffic and on the real samples.
//! jq is required (scripts/test.sh installs it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kaudit_gen::{Config, Format, generate};
use kaudit_model::MicroTime;
use kaudit_policy::{Evaluator, K8sVersion, LoadOptions, load, profiles};
use kaudit_query::ask::{self, Answer, AskOptions};
use kaudit_query::exec::{Query, count_by, run};
use kaudit_query::filter::parse;
use kaudit_store::{Options, Store};

fn questions() -> Vec<(String, Option<String>, String)> {
    let p = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("test_data/questions.tsv");
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                (!f[1].is_empty()).then(|| f[1].to_string()),
                f[2].to_string(),
            )
        })
        .collect()
}

/// auditIDs jq selects from the files (audit.log lines; EventLists and arrays unwrapped).
fn jq(files: &[PathBuf], select: &str) -> BTreeSet<String> {
    let prog = format!(
        "if type == \"array\" then .[] elif .kind == \"EventList\" then .items[] else . end | {select} | .auditID"
    );
    let out = Command::new("jq")
        .arg("-r")
        .arg(&prog)
        .args(files)
        .output()
        .expect("jq must be installed (apt-get install jq; scripts/test.sh does it)");
    assert!(
        out.status.success(),
        "jq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn store_of(files: &[PathBuf], dir: &Path, seal: bool) {
    let mut s = Store::open(
        dir,
        Options {
            seal_rows: 3000,
            // Several row groups per segment, so readers share files across threads.
            row_group_rows: 500,
            dedup_hot_rows: 1000,
            ..Options::default()
        },
    )
    .unwrap();
    let mut sink = kaudit_store::Loader::new(&mut s, "c1");
    kaudit_ingest::import::import(&mut sink, files, kaudit_model::cloud::Format::Auto, |_| {})
        .unwrap();
    if seal {
        s.seal().unwrap();
    }
    s.close().unwrap();
}

fn check(files: &[PathBuf], dir: &Path) -> usize {
    let mut nonempty = 0;
    for (name, arg, select) in questions() {
        let q = ask::question(&name).unwrap();
        let (answer, _) = ask::ask(dir, q, arg.as_deref(), &AskOptions::default()).unwrap();
        let Answer::Requests(rows) = answer else {
            panic!("{name}: not a request list")
        };
        assert_eq!(rows.total(), rows.len(), "{name}: total without a limit");
        // With a limit: the most recent requests of the same answer, and the same total.
        let seven = AskOptions {
            limit: Some(7),
            ..Default::default()
        };
        let (limited, _) = ask::ask(dir, q, arg.as_deref(), &seven).unwrap();
        let Answer::Requests(limited) = limited else {
            panic!()
        };
        assert_eq!(limited.total(), rows.len(), "{name}: total with a limit");
        let tail: Vec<_> = rows.iter().skip(rows.len().saturating_sub(7)).collect();
        let got_tail: Vec<_> = limited.iter().collect();
        assert_eq!(
            got_tail, tail,
            "{name}: the limited answer is not the most recent"
        );
        let got: BTreeSet<String> = rows.iter().map(|r| r.audit_id.to_string()).collect();
        assert_eq!(got.len(), rows.len(), "{name}: a request listed twice");
        let want = jq(files, &select);
        let only_kaudit: Vec<_> = got.difference(&want).take(5).collect();
        let only_jq: Vec<_> = want.difference(&got).take(5).collect();
        assert!(
            only_kaudit.is_empty() && only_jq.is_empty(),
            "{name}: kaudit and jq disagree ({} vs {}); only kaudit: {only_kaudit:?}; only jq: {only_jq:?}",
            got.len(),
            want.len()
        );
        if !want.is_empty() {
            nonempty += 1;
        }
    }
    nonempty
}

#[test]
fn investigations_match_jq_on_generated_traffic() {
    let tmp = tempfile::tempdir().unwrap();
    let p = load(
        profiles::profile("hardened").unwrap().text,
        &LoadOptions::default(),
    );
    let cfg = Config {
        events: 20_000,
        start: MicroTime::parse("2026-03-01T00:00:00Z").unwrap(),
        span_micros: 6 * 3600 * 1_000_000,
        seed: 5,
        nodes: 4,
        format: Format::Lines,
        policy: Evaluator::new(&p.policy, K8sVersion::DEFAULT).unwrap(),
    };
    let log = tmp.path().join("audit.log");
    let mut out = Vec::new();
    generate(&cfg, &mut out).unwrap();
    std::fs::write(&log, out).unwrap();
    let files = vec![log];
    // Sealed segments plus a WAL tail: both paths of the executor.
    let dir = tmp.path().join("data");
    store_of(&files, &dir, false);
    let n = check(&files, &dir);
    assert!(
        n >= 8,
        "only {n} questions had answers: the traffic lacks activities"
    );

    // Filters on what differs between stages (code, stage): requests whose several stages
    // match are told apart by audit ID, and each counts once, as jq's unique auditIDs.
    for (filter, select) in [
        ("code>=200", "select(.responseStatus.code >= 200)"),
        (
            "stage=ResponseStarted,ResponseComplete verb=watch,create",
            "select((.stage == \"ResponseStarted\" or .stage == \"ResponseComplete\") and (.verb == \"watch\" or .verb == \"create\"))",
        ),
        ("", "."),
    ] {
        let q = Query::new(parse(filter, 0).unwrap());
        let (rows, st) = run(&dir, &q).unwrap();
        let got: BTreeSet<String> = rows.iter().map(|r| r.audit_id.to_string()).collect();
        assert_eq!(got.len(), rows.len(), "{filter}: a request listed twice");
        assert_eq!(got, jq(&files, select), "{filter}");
        if filter.starts_with("code") {
            assert!(
                st.ids_read > 0,
                "{filter}: the audit-ID path was not exercised"
            );
        }
    }

    // Top users counts each request once, as jq does.
    let top = ask::question("top-users").unwrap();
    let (answer, _) = ask::ask(&dir, top, None, &AskOptions::default()).unwrap();
    let Answer::Counts(counts) = answer else {
        panic!()
    };
    let out = Command::new("jq")
        .args(["-r", "-s", "unique_by(.auditID) | group_by(.user.username // \"\") | map(\"\\(.[0].user.username // \"\")\\t\\(length)\") | .[]"])
        .args(&files)
        .output()
        .unwrap();
    let want: BTreeSet<(String, u64)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (u, n) = l.rsplit_once('\t').unwrap();
            (u.to_string(), n.parse().unwrap())
        })
        .collect();
    let got: BTreeSet<(String, u64)> = counts.into_iter().collect();
    assert_eq!(got, want);

    // The sealed row groups answered that from what was counted when they were sealed; a
    // filter that keeps every row (but is not known to) reads them instead, with the same
    // answer; a time range holding some row groups whole uses their counts for those only.
    let q = |f: &str| Query::new(parse(f, 0).unwrap());
    let (counted, st) = count_by(&dir, &q(""), "user").unwrap();
    assert!(
        st.groups_counted > 0 && st.groups_counted == st.row_groups_read,
        "{st:?}"
    );
    let (read, st) = count_by(&dir, &q("verb~^"), "user").unwrap();
    assert_eq!(st.groups_counted, 0, "{st:?}");
    assert_eq!(counted, read);
    let mid = "since=2026-03-01T02:00:00Z until=2026-03-01T05:00:00Z";
    let (part, st) = count_by(&dir, &q(mid), "user").unwrap();
    assert!(
        st.groups_counted > 0 && st.groups_counted < st.row_groups_read,
        "{st:?}"
    );
    let (part_read, _) = count_by(&dir, &q(&format!("{mid} verb~^")), "user").unwrap();
    assert_eq!(part, part_read);
}

#[test]
fn investigations_match_jq_on_real_samples() {
    let root = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events");
    // Each folder must be there and hold samples (`inputs` fails on an empty one).
    let files: Vec<PathBuf> = ["audit2rbac", "kube-audit-log-tool", "falco-trace-files"]
        .iter()
        .flat_map(|dir| kaudit_testkit::inputs(&root.join(dir)))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    store_of(&files, &dir, true);
    // The real samples hold secret reads, exec, denials, deletions...: most questions must
    // find something, or the comparison with jq proves nothing.
    let nonempty = check(&files, &dir);
    assert!(
        nonempty >= 7,
        "only {nonempty} questions found anything in the real samples"
    );
}
