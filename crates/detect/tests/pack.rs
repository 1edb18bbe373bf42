//! The built-in pack: it loads, every rule passes its own tests, and every rule has at least
//! one test that must alert and one that must not.

use kaudit_detect::testing;

#[test]
fn every_builtin_rule_passes_its_tests() {
    let set = kaudit_detect::builtin().unwrap();
    let outcomes = testing::run(&set);
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{} / {}: expected {} alerts, got {}{}",
                o.rule,
                o.test,
                o.expected,
                o.got,
                o.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} failing rule tests:\n{}",
        failed.len(),
        failed.join("\n")
    );
    for r in &set.rules {
        assert!(
            r.tests.iter().any(|t| t.alerts > 0),
            "{}: no test that alerts",
            r.id
        );
        assert!(
            r.tests.iter().any(|t| t.alerts == 0),
            "{}: no test that must not alert",
            r.id
        );
        assert!(
            !r.mitre.is_empty() || r.tags.iter().any(|t| t == "policy"),
            "{}: no ATT&CK technique",
            r.id
        );
        assert!(!r.description.is_empty(), "{}: no description", r.id);
    }
    eprintln!("{} rules, {} tests", set.rules.len(), outcomes.len());
}
