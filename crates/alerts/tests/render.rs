//! What each sink sends for an alert and for a throttling summary, compared with the files
//! beside the input (`test_data/render/`). `KAUDIT_BLESS=1` rewrites them.

use kaudit_alerts::sink::{slack_body, syslog_message};
use kaudit_alerts::{Item, StoredAlert, Summary};
use kaudit_detect::Severity;

fn check(name: &str, got: &str) {
    let p = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("test_data/render")
        .join(name);
    kaudit_testkit::expect(&p, got);
}

fn pretty(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn items() -> (Item, Item) {
    let p =
        kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("test_data/render/alert.json");
    let a: StoredAlert = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let s = Summary {
        rule: a.alert.rule.clone(),
        title: a.alert.title.clone(),
        severity: Severity::High,
        group: "k8s.exec.shell prod-eu jane@example.com".into(),
        suppressed: 37,
        from: "2026-03-04T05:06:07.123456Z".into(),
        to: "2026-03-04T05:16:07.123456Z".into(),
    };
    (Item::Alert(a), Item::Summary(s))
}

#[test]
fn webhook_json() {
    let (a, s) = items();
    check("webhook-alert.json", &pretty(&a.json()));
    check("webhook-summary.json", &pretty(&s.json()));
}

#[test]
fn slack() {
    let (a, s) = items();
    check("slack-alert.json", &pretty(&slack_body(&a)));
    check("slack-summary.json", &pretty(&slack_body(&s)));
}

#[test]
fn syslog() {
    let (a, s) = items();
    let now = 1_772_600_767_500_000;
    let got = format!(
        "{}\n{}\n",
        syslog_message(&a, 16, "kaudit-0", now),
        syslog_message(&s, 4, "kaudit-0", now)
    );
    check("syslog.txt", &got);
}

#[test]
fn stored_alert_round_trips() {
    let (a, _) = items();
    let Item::Alert(a) = a else { unreachable!() };
    let back: StoredAlert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back.seq, 41);
    assert_eq!(back.alert.rule, "k8s.exec.shell");
    assert_eq!(back.alert.code, Some(101));
    assert_eq!(back.stored_micros(), 1_772_600_767_123_456);
}
