//! A restarted engine restored from a snapshot goes on as if it had not stopped: what
//! first-seen rules learned, threshold windows, and requests that already alerted.

use std::sync::Arc;

use kaudit_detect::{Alert, Engine, EngineState};
use kaudit_model::Event;

fn ev(id: &str, stage: &str, t: &str, user: &str, ua: &str, code: u16, resource: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"{stage}","requestURI":"/api/v1/{resource}","verb":"list","user":{{"username":"{user}","groups":["devs"]}},"sourceIPs":["10.0.0.2"],"userAgent":"{ua}","objectRef":{{"resource":"{resource}","apiVersion":"v1"}},"responseStatus":{{"code":{code}}},"requestReceivedTimestamp":"{t}","stageTimestamp":"{t}"}}"#
    )
}

fn run(e: &mut Engine, raws: &[String]) -> Vec<Alert> {
    let mut out = Vec::new();
    for r in raws {
        let event: Event<'_> = serde_json::from_str(r).unwrap();
        e.process(&event, r, &mut out);
    }
    out
}

fn rules(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule.as_str()).collect()
}

#[test]
fn restored_engine_goes_on() {
    let pack = Arc::new(kaudit_detect::builtin().unwrap());
    let before = vec![
        ev(
            "a1",
            "ResponseComplete",
            "2026-01-01T10:00:00Z",
            "jane",
            "kubectl/v1.30.0",
            200,
            "pods",
        ),
        ev(
            "a2",
            "ResponseComplete",
            "2026-01-03T10:00:00Z",
            "jane",
            "kubectl/v1.30.0",
            200,
            "pods",
        ),
    ];
    let after = vec![
        // Known client: nothing. New client after learning: alert.
        ev(
            "a3",
            "ResponseComplete",
            "2026-01-03T10:01:00Z",
            "jane",
            "kubectl/v1.30.0",
            200,
            "pods",
        ),
        ev(
            "a4",
            "ResponseComplete",
            "2026-01-03T10:02:00Z",
            "jane",
            "python-requests/2.31",
            200,
            "pods",
        ),
    ];
    // One engine that never stops.
    let mut whole = Engine::new(pack.clone());
    run(&mut whole, &before);
    let expected = run(&mut whole, &after);
    assert!(
        rules(&expected).contains(&"k8s.access.new-user-agent"),
        "{expected:?}"
    );

    // One stopped after `before`, saved through JSON, restored into a new engine.
    let mut first = Engine::new(pack.clone());
    run(&mut first, &before);
    let saved = serde_json::to_string(&first.snapshot()).unwrap();
    let mut second = Engine::new(pack.clone());
    second.restore(serde_json::from_str::<EngineState>(&saved).unwrap());
    assert_eq!(run(&mut second, &after), expected);

    // Without the snapshot, the new engine is still learning and says nothing.
    let mut fresh = Engine::new(pack);
    assert!(!rules(&run(&mut fresh, &after)).contains(&"k8s.access.new-user-agent"));
}

#[test]
fn threshold_windows_survive_a_restart() {
    let pack = Arc::new(kaudit_detect::builtin().unwrap());
    let denied: Vec<String> = (0..30)
        .map(|i| {
            ev(
                &format!("d{i}"),
                "ResponseComplete",
                &format!("2026-01-01T10:00:{:02}Z", i),
                "mallory",
                "curl/8.0",
                403,
                "secrets",
            )
        })
        .collect();
    let mut whole = Engine::new(pack.clone());
    let expected = run(&mut whole, &denied);
    assert!(
        expected.iter().any(|a| a.count.is_some()),
        "a threshold rule fires: {:?}",
        rules(&expected)
    );
    // Stop and restore halfway through the burst: the same alerts, at the same events.
    let mut a = Engine::new(pack.clone());
    let mut got = run(&mut a, &denied[..13]);
    let mut b = Engine::new(pack);
    b.restore(a.snapshot());
    got.extend(run(&mut b, &denied[13..]));
    assert_eq!(got, expected);
}
