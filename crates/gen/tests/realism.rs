//! The generator's output is real audit traffic as far as every other part of kaudit can tell.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;

use kaudit_gen::{Config, Format, generate};
use kaudit_model::{Level, MicroTime, Stage, decode};
use kaudit_policy::{Attributes, Evaluator, K8sVersion, LoadOptions, load, profiles};

fn policy(name: &str) -> Evaluator {
    let loaded = load(
        profiles::profile(name).unwrap().text,
        &LoadOptions::default(),
    );
    Evaluator::new(&loaded.policy, K8sVersion::DEFAULT).unwrap()
}

fn cfg(events: u64, seed: u64, format: Format, profile: &str) -> Config {
    Config {
        events,
        start: MicroTime::parse("2026-03-01T00:00:00Z").unwrap(),
        span_micros: 3_600_000_000,
        seed,
        nodes: 5,
        format,
        policy: policy(profile),
    }
}

fn run(c: &Config) -> Vec<u8> {
    let mut out = Vec::new();
    let s = generate(c, &mut out).unwrap();
    assert_eq!(s.events, c.events);
    assert_eq!(s.bytes, out.len() as u64);
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(&cfg(5_000, 7, Format::Lines, "recipe"));
    assert_eq!(a, run(&cfg(5_000, 7, Format::Lines, "recipe")));
    assert_ne!(a, run(&cfg(5_000, 8, Format::Lines, "recipe")));
}

#[test]
fn every_event_decodes_and_matches_its_policy_decision() {
    // Every built-in profile, to cross-check the indexed evaluation against a plain scan.
    let all: Vec<Evaluator> = profiles::PROFILES.iter().map(|p| policy(p.name)).collect();
    for profile in ["recipe", "hardened", "gce"] {
        let c = cfg(20_000, 3, Format::Lines, profile);
        let data = run(&c);
        let ev = policy(profile);
        let mut stages: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut by_id: HashMap<String, Vec<Stage>> = HashMap::new();
        let mut last = MicroTime(i64::MIN);
        let mut n = 0;
        let stats = decode::decode_slice(&data, |r| {
            let rec = r.expect("generated event must decode");
            let e = &rec.event;
            n += 1;
            // Written in stage-time order, as kube-apiserver writes audit.log.
            let at = e.stage_timestamp.unwrap();
            assert!(at >= last, "line {}: out of order", rec.line);
            last = at;
            // The recorded level and stage are what the policy decides for these attributes.
            let attrs = Attributes::from_event(e);
            let d = ev.evaluate(&attrs);
            for other in &all {
                let linear = (0..other.len()).find(|&i| other.rule_matches(i, &attrs));
                assert_eq!(
                    other.evaluate(&attrs).rule,
                    linear,
                    "index disagrees: {}",
                    rec.raw
                );
            }
            assert_eq!(
                e.level,
                Some(d.level),
                "{profile} line {}: {}",
                rec.line,
                rec.raw
            );
            assert!(
                d.records(e.stage.unwrap()),
                "{profile} line {}: stage {:?} is omitted",
                rec.line,
                e.stage
            );
            // Bodies follow the level.
            if e.request_object.is_some() {
                assert!(d.level >= Level::Request);
            }
            if e.response_object.is_some() {
                assert!(
                    d.level == Level::RequestResponse && e.stage == Some(Stage::ResponseComplete)
                );
            }
            if d.omit_managed_fields {
                assert!(!rec.raw.contains("managedFields"), "line {}", rec.line);
            }
            // Failed authentication: a lone ResponseStarted, no user.
            if e.code() == Some(401) {
                assert!(e.user.is_empty() && e.stage == Some(Stage::ResponseStarted));
            }
            *stages.entry(e.stage.unwrap().as_str()).or_default() += 1;
            by_id
                .entry(e.audit_id.to_string())
                .or_default()
                .push(e.stage.unwrap());
            ControlFlow::Continue(())
        });
        assert_eq!((stats.events, stats.skipped()), (20_000, 0));
        assert_eq!(n, 20_000);
        // Stages of one request come in order.
        for (id, s) in &by_id {
            let mut sorted = s.clone();
            sorted.sort();
            assert_eq!(&sorted, s, "{id}");
        }
        assert!(stages["ResponseComplete"] > 15_000, "{profile}: {stages:?}");
        assert!(
            stages.get("ResponseStarted").copied().unwrap_or(0) > 100,
            "{profile}: {stages:?}"
        );
    }
}

#[test]
fn traffic_has_the_activities_investigations_look_for() {
    let data = run(&cfg(50_000, 11, Format::Lines, "recipe"));
    let text = String::from_utf8(data).unwrap();
    for needle in [
        "\"subresource\":\"exec\"",
        "\"verb\":\"get\",\"user\":{\"username\":\"alice", // people
        "\"resource\":\"secrets\"",
        "\"resource\":\"clusterrolebindings\"",
        "\"code\":401",
        "\"code\":403",
        "\"impersonatedUser\"",
        "dryRun=All",
        "\"op\":\"add\"", // JSON-patch bodies
        "\"resource\":\"leases\"",
        "watch=true",
        "command=",
    ] {
        assert!(text.contains(needle), "no {needle}");
    }
}

#[test]
fn event_lists_hold_at_most_the_batch() {
    let data = run(&cfg(1_000, 5, Format::EventList(400), "recipe"));
    let text = String::from_utf8(data).unwrap();
    let sizes: Vec<usize> = text
        .lines()
        .map(|l| {
            assert!(l.starts_with("{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"metadata\":{},\"items\":[{\"level\""));
            let mut n = 0;
            decode::decode_slice(l.as_bytes(), |r| {
                assert!(r.unwrap().item.is_some());
                n += 1;
                ControlFlow::Continue(())
            });
            n
        })
        .collect();
    assert_eq!(sizes, vec![400, 400, 200]);
}
