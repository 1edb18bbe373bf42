//! Every record of the real captured samples in `test_data/events/` decodes, or is skipped for a
//! reason pinned in the `.expected` file beside it.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use kaudit_model::decode::{self, Record};

fn data_dir() -> PathBuf {
    kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events")
}

fn summarize(out: &mut String, r: Result<Record<'_>, decode::DecodeError>) {
    match r {
        Ok(rec) => {
            let e = &rec.event;
            let o = e.object_ref.clone().unwrap_or_default();
            let what = if o.resource.is_empty() {
                e.request_uri.split('?').next().unwrap_or("").to_string()
            } else {
                let mut s = o.resource.to_string();
                if !o.subresource.is_empty() {
                    s = format!("{s}/{}", o.subresource);
                }
                if !o.namespace.is_empty() {
                    s = format!("{s} ns={}", o.namespace);
                }
                s
            };
            let item = rec.item.map(|i| format!("[{i}]")).unwrap_or_default();
            writeln!(
                out,
                "{}{item}: ok {} {} {} {what} user={:?} code={} bodies={}{}",
                rec.line,
                e.level.map_or("-", |l| l.as_str()),
                e.stage.map_or("-", |s| s.as_str()),
                if e.verb.is_empty() { "-" } else { &e.verb },
                e.user.username.as_str(),
                e.code().map_or("-".into(), |c| c.to_string()),
                u8::from(e.request_object.is_some()) + u8::from(e.response_object.is_some()),
                e.received_at()
                    .map(|t| format!(" at={t}"))
                    .unwrap_or_default(),
            )
            .unwrap();
        }
        Err(e) => writeln!(out, "{e}").unwrap(),
    }
}

fn check(path: &Path, actual: &str) {
    kaudit_testkit::expect(&kaudit_testkit::expected_of(path), actual);
}

fn files(sub: &str) -> Vec<PathBuf> {
    kaudit_testkit::inputs(&data_dir().join(sub))
}

#[test]
fn raw_kubernetes_samples_decode_or_fail_for_a_pinned_reason() {
    let mut total = decode::Stats::default();
    for sub in ["falco-trace-files", "audit2rbac", "kube-audit-log-tool"] {
        for path in files(sub) {
            let data = std::fs::read(&path).unwrap();
            let mut out = String::new();
            let stats = decode::decode_slice(&data, |r| {
                summarize(&mut out, r);
                ControlFlow::Continue(())
            });
            // The streaming reader must agree with the in-memory decoder.
            let mut out2 = String::new();
            decode::decode_reader(&data[..], |r| {
                summarize(&mut out2, r);
                ControlFlow::Continue(())
            })
            .unwrap();
            assert_eq!(out, out2, "{}", path.display());
            total.merge(&stats);
            check(&path, &out);
        }
    }
    // 51 Falco events (+1 fuzz case), 37 audit2rbac, 1 kube-audit-log-tool.
    assert_eq!(total.events, 51 + 37 + 1, "{total}");
    assert_eq!(total.skipped(), 1, "{total}");
}

#[test]
fn panther_records_decode_or_fail_for_a_pinned_reason() {
    for path in files("panther-analysis-tests") {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let wrapper: serde_json::Value = serde_json::from_str(line).unwrap();
            let log = serde_json::to_string(&wrapper["log"]).unwrap();
            write!(
                out,
                "{} {:?} expect={}: ",
                i + 1,
                wrapper["test_name"].as_str().unwrap_or(""),
                wrapper["expected_result"]
            )
            .unwrap();
            let mut n = 0;
            decode::decode_slice(log.as_bytes(), |r| {
                n += 1;
                summarize(&mut out, r);
                ControlFlow::Continue(())
            });
            assert_eq!(n, 1, "{}:{}", path.display(), i + 1);
        }
        check(&path, &out);
    }
}

/// The Elastic License samples are not copied into this repository; when the project's
/// `shared/samples/` sits beside the checkout (as in CI) their outcomes are checked: the raw
/// Kubernetes events decode, and the GKE and AKS envelopes (imported by a later release) are
/// named for what they are.
#[test]
fn shared_elastic_samples_decode_or_are_named() {
    let dir = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples/elastic-integrations");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not present", dir.display());
        return;
    }
    let expect: &[(&str, u64, &[&str])] = &[
        (
            "azure__platformlogs__test-platformlogs-kube.log",
            0,
            &["AKS"],
        ),
        (
            "gcp__audit__test-audit.k8s-io-lines-extract.log",
            0,
            &["GKE"; 6],
        ),
        (
            "gcp__audit__test-k8s-nonmatching-resourcename.log",
            0,
            &["GKE"],
        ),
        ("kubernetes__audit_logs__test-audit.log", 3, &["GKE", "AKS"]),
        ("kubernetes__audit_logs__test-kube-audit.log", 0, &["AKS"]),
    ];
    for (file, events, skipped) in expect {
        let data = std::fs::read(dir.join(file)).unwrap();
        let mut reasons = Vec::new();
        let stats = decode::decode_slice(&data, |r| {
            if let Err(e) = r {
                reasons.push(e.message);
            }
            ControlFlow::Continue(())
        });
        assert_eq!(stats.events, *events, "{file}");
        assert_eq!(reasons.len(), skipped.len(), "{file}: {reasons:?}");
        for (m, want) in reasons.iter().zip(skipped.iter()) {
            assert!(
                m.contains(want) && m.contains("not a Kubernetes audit event"),
                "{file}: {m}"
            );
        }
    }
}
