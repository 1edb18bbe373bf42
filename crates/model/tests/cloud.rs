//! The cloud export samples in `test_data/cloud/` decode to the outcomes pinned in the
//! `.expected` file beside each (`KAUDIT_BLESS=1` rewrites them), every event handed on is a
//! genuine audit event, and auto-detection names each file's format.

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use kaudit_model::cloud::{self, Format};
use kaudit_model::decode::{self, ErrorKind, Record};
use kaudit_model::{Event, encode};

fn data_dir() -> PathBuf {
    kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("test_data/cloud")
}

fn files(sub: &str) -> Vec<PathBuf> {
    kaudit_testkit::inputs(&data_dir().join(sub))
}

fn check(path: &Path, actual: &str) {
    kaudit_testkit::expect(&kaudit_testkit::expected_of(path), actual);
}

/// One line per record: where, and what it became.
fn summarize(out: &mut String, r: &Result<Record<'_>, decode::DecodeError>, with_raw: bool) {
    match r {
        Ok(rec) => {
            let e = &rec.event;
            let o = e.object_ref.clone().unwrap_or_default();
            let what = if o.resource.is_empty() {
                e.request_uri.split('?').next().unwrap_or("").to_string()
            } else {
                let mut s = o.resource.to_string();
                if !o.api_group.is_empty() {
                    s = format!("{s}.{}", o.api_group);
                }
                if !o.subresource.is_empty() {
                    s = format!("{s}/{}", o.subresource);
                }
                if !o.namespace.is_empty() {
                    s = format!("{s} ns={}", o.namespace);
                }
                if !o.name.is_empty() {
                    s = format!("{s} name={}", o.name);
                }
                s
            };
            let item = rec.item.map(|i| format!("[{i}]")).unwrap_or_default();
            writeln!(
                out,
                "{}{item}: ok id={} {} {} {} {what} user={:?} code={} bodies={}",
                rec.line,
                e.audit_id,
                e.level.map_or("-", |l| l.as_str()),
                e.stage.map_or("-", |s| s.as_str()),
                if e.verb.is_empty() { "-" } else { &e.verb },
                e.user.username.as_str(),
                e.code().map_or("-".into(), |c| c.to_string()),
                u8::from(e.request_object.is_some()) + u8::from(e.response_object.is_some()),
            )
            .unwrap();
            if with_raw {
                writeln!(out, "    {}", rec.raw).unwrap();
            }
        }
        Err(e) => writeln!(out, "{e}").unwrap(),
    }
}

/// What every record handed on must be: a genuine audit.k8s.io/v1 Event whose `event` is `raw`
/// parsed, and which decodes on its own as plain Kubernetes input.
/// (`strict` off for third-party samples, which may lack an apiVersion or auditID.)
fn assert_genuine(rec: &Record<'_>, format: Format, data: &[u8], what: &str, strict: bool) {
    let e = &rec.event;
    assert_eq!(e.kind.as_deref(), Some("Event"), "{what}");
    if strict || e.api_version.is_some() {
        assert_eq!(e.api_version.as_deref(), Some("audit.k8s.io/v1"), "{what}");
    }
    assert!(!strict || !e.audit_id.is_empty(), "{what}");
    let reparsed: Event<'_> = serde_json::from_str(rec.raw).unwrap();
    assert_eq!(reparsed.audit_id, e.audit_id, "{what}");
    let mut n = 0;
    decode::decode_slice(rec.raw.as_bytes(), |r| {
        assert!(r.is_ok(), "{what}: {r:?}");
        n += 1;
        ControlFlow::Continue(())
    });
    assert_eq!(n, 1, "{what}");
    if format == Format::Gke {
        // Synthesized with the crate's encoder: re-encoding is the identity.
        let mut out = vec![];
        encode::write_event(&mut out, e, encode::V1, true);
        assert_eq!(std::str::from_utf8(&out).unwrap(), rec.raw, "{what}");
    } else if strict {
        // EKS/AKS: the embedded JSON as delivered, either a slice of the input (an object)
        // or the unescaped string, which then appears escaped in the input.
        let s = std::str::from_utf8(data).unwrap();
        let escaped = serde_json::to_string(rec.raw).unwrap();
        let escaped = &escaped[1..escaped.len() - 1];
        assert!(
            s.contains(rec.raw) || s.contains(escaped),
            "{what}: raw is not in the input"
        );
    }
}

fn run(path: &Path, format: Format) -> (String, decode::Stats) {
    let data = std::fs::read(path).unwrap();
    let detected = cloud::detect(&data);
    let mut out = format!("# decoded as {format}; detected as {detected}\n");
    let name = path.display().to_string();
    let stats = cloud::decode_as(&data, format, |r| {
        if let Ok(rec) = &r {
            assert_genuine(rec, format, &data, &format!("{name}:{}", rec.line), true);
        }
        summarize(&mut out, &r, format == Format::Gke);
        ControlFlow::Continue(())
    });
    writeln!(out, "# {stats}").unwrap();
    (out, stats)
}

#[test]
fn cloud_samples_decode_to_pinned_outcomes() {
    let mut total = decode::Stats::default();
    for (sub, format) in [
        ("eks", Format::Eks),
        ("gke", Format::Gke),
        ("aks", Format::Aks),
    ] {
        for path in files(sub) {
            if path.extension().is_some_and(|e| e == "md" || e == "py") {
                continue;
            }
            let (out, stats) = run(&path, format);
            total.merge(&stats);
            check(&path, &out);
        }
    }
    // Every kind of outcome is exercised.
    for kind in [
        ErrorKind::Truncated,
        ErrorKind::NotAnEvent,
        ErrorKind::InvalidField,
    ] {
        assert!(total.skipped.contains_key(&kind), "{kind:?}: {total}");
    }
}

#[test]
fn auto_detection_names_each_file() {
    let expect: &[(&str, Format)] = &[
        ("eks/export-task-000000.log", Format::Eks),
        // The messages alone, one per line, are plain audit events.
        ("eks/firehose-extracted.jsonl", Format::K8s),
        ("eks/filter-log-events.json", Format::Eks),
        ("eks/firehose-s3-concatenated.json", Format::Eks),
        ("eks/get-log-events.json", Format::Eks),
        ("eks/insights-query-results.json", Format::Eks),
        ("eks/subscription-payload.json", Format::Eks),
        ("gke/alloy-pubsub-push-envelope.json", Format::Gke),
        ("gke/entries-list.json", Format::Gke),
        ("gke/gcloud-logging-read.json", Format::Gke),
        ("gke/khi-container-recorder-logentry.json", Format::Gke),
        ("gke/pubsub-pull.json", Format::Gke),
        ("gke/pubsub-push.json", Format::Gke),
        ("gke/resource-names.jsonl", Format::Gke),
        ("gke/status-codes.jsonl", Format::Gke),
        ("aks/PT1H.json", Format::Aks),
        ("aks/eventhub-bodies.jsonl", Format::Aks),
        ("aks/eventhub-body-pretty.json", Format::Aks),
    ];
    let mut seen = 0;
    for sub in ["eks", "gke", "aks"] {
        for path in files(sub) {
            if path.extension().is_some_and(|e| e == "md" || e == "py") {
                continue;
            }
            let rel = format!("{sub}/{}", path.file_name().unwrap().to_string_lossy());
            let want = expect
                .iter()
                .find(|(p, _)| *p == rel)
                .unwrap_or_else(|| panic!("{rel}: add it to the detection table"))
                .1;
            let data = std::fs::read(&path).unwrap();
            assert_eq!(cloud::detect(&data), want, "{rel}");
            // Auto decodes exactly as the detected format does.
            let collect = |format| {
                let mut out = String::new();
                cloud::decode_as(&data, format, |r| {
                    summarize(&mut out, &r, true);
                    ControlFlow::Continue(())
                });
                out
            };
            assert_eq!(collect(Format::Auto), collect(want), "{rel}");
            seen += 1;
        }
    }
    assert_eq!(seen, expect.len());

    // Every plain Kubernetes input of the repository is K8s, and decodes as decode_slice does.
    let events =
        kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events");
    let mut k8s = 0;
    for dir in std::fs::read_dir(&events).unwrap() {
        let dir = dir.unwrap().path();
        if dir
            .file_name()
            .is_some_and(|n| n == "panther-analysis-tests")
        {
            continue; // another tool's wrapper around records
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.to_string_lossy().ends_with(".expected") {
                continue;
            }
            let data = std::fs::read(&file).unwrap();
            assert_eq!(cloud::detect(&data), Format::K8s, "{}", file.display());
            let a = cloud::decode_as(&data, Format::Auto, |_| ControlFlow::Continue(()));
            let b = decode::decode_slice(&data, |_| ControlFlow::Continue(()));
            assert_eq!(a, b, "{}", file.display());
            k8s += 1;
        }
    }
    assert!(k8s > 40, "{k8s}");
}

#[test]
fn callback_can_stop_inside_an_envelope() {
    let data = std::fs::read(data_dir().join("eks/get-log-events.json")).unwrap();
    let mut n = 0;
    let stats = cloud::decode_as(&data, Format::Eks, |_| {
        n += 1;
        ControlFlow::Break(())
    });
    assert_eq!((n, stats.events), (1, 1));
}

/// The samples under `shared/samples/` that may not be copied here (unclear licence, or Elastic
/// License 2.0) are read by path when the project's `shared/` sits beside the checkout.
fn shared(rel: &str) -> Option<Vec<u8>> {
    let p = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(rel);
    match std::fs::read(&p) {
        Ok(d) => Some(d),
        Err(_) => {
            eprintln!("skipped: {} is not present", p.display());
            None
        }
    }
}

fn outcomes(data: &[u8], format: Format) -> Vec<String> {
    let mut out = vec![];
    cloud::decode_as(data, format, |r| {
        if let Ok(rec) = &r {
            assert_genuine(rec, format, data, "shared sample", false);
        }
        let mut s = String::new();
        summarize(&mut s, &r, false);
        out.push(s.trim_end().to_string());
        ControlFlow::Continue(())
    });
    out
}

#[test]
fn shared_eks_samples_in_cloudwatch_shapes() {
    let Some(raw) = shared("cloud/eks-audit-event-raw.json") else {
        return;
    };
    // Compact it as kube-apiserver writes it, keeping key order, to put it in a message.
    let v: Box<serde_json::value::RawValue> = serde_json::from_slice(&raw).unwrap();
    let mut message = vec![];
    encode::write_raw(&mut message, v.get());
    let message = String::from_utf8(message).unwrap();
    let id = "f47c68f2-d3ac-4f96-b2f4-5d497bf79b64";
    let ok = format!(
        "ok id={id} RequestResponse ResponseComplete create nodes name=ip-192-001-02-03.ec2.internal user=\"system:node:ip-192-001-02-03.ec2.internal\" code=201 bodies=2"
    );

    // The sample itself is a plain (pretty-printed) event.
    assert_eq!(cloud::detect(&raw), Format::K8s);
    assert_eq!(outcomes(&raw, Format::Eks), vec![format!("1: {ok}")]);

    let cw = |m: &str| {
        serde_json::json!({"events": [
            {"logStreamName": "kube-apiserver-audit-0123456789abcdef0123456789abcdef",
             "timestamp": 1631047050642u64, "message": m, "ingestionTime": 1631047051337u64,
             "eventId": "36538"}],
            "searchedLogStreams": []})
    };
    let doc = serde_json::to_vec_pretty(&cw(&message)).unwrap();
    assert_eq!(cloud::detect(&doc), Format::Eks);
    assert_eq!(outcomes(&doc, Format::Auto), vec![format!("3[0]: {ok}")]);
    let mut got = None;
    cloud::decode_as(&doc, Format::Eks, |r| {
        got = Some(r.unwrap().raw.to_string());
        ControlFlow::Continue(())
    });
    assert_eq!(got.as_deref(), Some(message.as_str()), "raw is the message");

    let cut = format!("{}[Truncated...]", &message[..1000]);
    let doc = serde_json::to_vec(&cw(&cut)).unwrap();
    assert_eq!(
        outcomes(&doc, Format::Eks),
        vec![format!(
            "line 1, item 0: truncated record: message: EKS truncated this audit event after 1000 bytes (the message ends with \"[Truncated...]\"; CloudWatch caps log events); auditID \"{id}\", verb \"create\", requestURI \"/api/v1/nodes\""
        )]
    );

    let sub = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "/aws/eks/c/cluster", "logStream": "kube-apiserver-audit-0123",
        "subscriptionFilters": ["f"], "logEvents": [{"id": "1", "timestamp": 1, "message": message}]});
    let doc = serde_json::to_vec(&sub).unwrap();
    assert_eq!(cloud::detect(&doc), Format::Eks);
    assert_eq!(outcomes(&doc, Format::Auto), vec![format!("1[0]: {ok}")]);

    let line = format!("2021-09-07T20:37:30.642Z {message}\n");
    assert_eq!(cloud::detect(line.as_bytes()), Format::Eks);
    assert_eq!(
        outcomes(line.as_bytes(), Format::Auto),
        vec![format!("1: {ok}")]
    );

    let Some(ocsf) = shared("cloud/eks-audit-event-ocsf-api-activity.json") else {
        return;
    };
    assert_eq!(
        outcomes(&ocsf, Format::Eks),
        vec![
            "line 1: not an audit event: an OCSF record (Security Lake); kaudit reads the audit events, not their OCSF mapping"
        ]
    );
}

#[test]
fn shared_aks_samples() {
    let Some(record) = shared("cloud/aks-kube-audit-record.json") else {
        return;
    };
    let id = "ad26f7bc-f1c6-4097-90f1-e0924e12f257";
    let ok = format!(
        "ok id={id} Metadata ResponseComplete update leases.coordination.k8s.io ns=kube-system name=kubelet-serving-csr-approver user=\"aksService\" code=200 bodies=0"
    );
    assert_eq!(cloud::detect(&record), Format::Aks);
    assert_eq!(outcomes(&record, Format::Auto), vec![format!("1: {ok}")]);
    let v: serde_json::Value = serde_json::from_slice(&record).unwrap();
    let log = v["properties"]["log"].as_str().unwrap().to_string();
    let mut got = None;
    cloud::decode_as(&record, Format::Aks, |r| {
        got = Some(r.unwrap().raw.to_string());
        ControlFlow::Continue(())
    });
    assert_eq!(got.as_deref(), Some(log.as_str()), "raw is properties.log");

    // In an Event Hub body, and cut short.
    let mut cut = v.clone();
    cut["properties"]["log"] = log[..300].into();
    let body = serde_json::to_vec(&serde_json::json!({"records": [v, cut]})).unwrap();
    assert_eq!(cloud::detect(&body), Format::Aks);
    assert_eq!(
        outcomes(&body, Format::Auto),
        vec![
            format!("1[0]: {ok}"),
            format!(
                "line 1, item 1: truncated record: properties.log: AKS truncated this audit event after 300 bytes (large events are cut at about 16 KiB); auditID \"{id}\", verb \"update\", requestURI \"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kubelet-serving-csr-approver\""
            ),
        ]
    );
}

#[test]
fn shared_elastic_cloud_samples() {
    let dir = "elastic-integrations";
    let cases: &[(&str, Format, &[&str])] = &[
        (
            "kubernetes__audit_logs__test-kube-audit.log",
            Format::Aks,
            &["1: ok id=ad26f7bc-f1c6-4097-90f1-e0924e12f257"],
        ),
        // An old record whose properties.log is only {"kind":"Event"}: handed on, as
        // decode_slice would.
        (
            "azure__platformlogs__test-platformlogs-kube.log",
            Format::Aks,
            &["1: ok id= - - -"],
        ),
        (
            "gcp__audit__test-audit.k8s-io-lines-extract.log",
            Format::Gke,
            &[
                "1: ok id=87efd529-6349-45d2-b905-fc607e6c5d3b RequestResponse ResponseComplete create subjectaccessreviews.authorization.k8s.io",
                "2: ok id=",
                "3: ok id=",
                "4: ok id=",
                "5: ok id=",
                "6: ok id=",
            ],
        ),
        (
            "gcp__audit__test-k8s-nonmatching-resourcename.log",
            Format::Gke,
            &[
                "1: ok id=k8s-nonmatch-0001 RequestResponse ResponseComplete get /HNAP1 user=\"system:anonymous\" code=403",
            ],
        ),
        // Mixed lines: plain events, so read as Kubernetes input.
        (
            "kubernetes__audit_logs__test-audit.log",
            Format::K8s,
            &[
                "1: ok",
                "2: ok",
                "3: ok",
                "line 4: not an audit event",
                "line 5: not an audit event",
            ],
        ),
    ];
    for (file, format, want) in cases {
        let Some(data) = shared(&format!("{dir}/{file}")) else {
            return;
        };
        assert_eq!(cloud::detect(&data), *format, "{file}");
        let got = if *format == Format::K8s {
            let mut out = vec![];
            cloud::decode_as(&data, Format::Auto, |r| {
                let mut s = String::new();
                summarize(&mut s, &r, false);
                out.push(s);
                ControlFlow::Continue(())
            });
            out
        } else {
            outcomes(&data, Format::Auto)
        };
        assert_eq!(got.len(), want.len(), "{file}: {got:#?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(g.starts_with(w), "{file}: {g:?} does not start with {w:?}");
        }
    }
}
