//! `kaudit rules test`: every rule run against its own test events, each test on a fresh
//! engine holding only that rule.

use std::ops::ControlFlow;
use std::sync::Arc;

use kaudit_model::decode;

use crate::engine::Engine;
use crate::rule::{Rule, RuleSet};

/// One test's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub rule: String,
    pub test: String,
    pub expected: u64,
    pub got: u64,
    /// Why the test could not run (an event that does not decode).
    pub error: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.expected == self.got
    }
}

/// Runs one rule's tests.
pub fn run_rule(rule: &Rule) -> Vec<Outcome> {
    let mut out = Vec::new();
    for t in &rule.tests {
        let mut engine = Engine::new(Arc::new(RuleSet {
            rules: vec![single(t.variant.as_deref().unwrap_or(rule))],
            ..Default::default()
        }));
        let mut alerts = Vec::new();
        let mut error = None;
        for (i, ev) in t.events.iter().enumerate() {
            let mut n = 0;
            decode::decode_slice(ev.as_bytes(), |r| {
                match r {
                    Ok(rec) => {
                        n += 1;
                        engine.process(&rec.event, rec.raw, &mut alerts);
                    }
                    Err(e) => error = Some(format!("event {}: {}", i + 1, e.render("test"))),
                }
                ControlFlow::Continue(())
            });
            if n == 0 && error.is_none() {
                error = Some(format!("event {}: not an audit event", i + 1));
            }
        }
        out.push(Outcome {
            rule: rule.id.clone(),
            test: t.name.clone(),
            expected: t.alerts,
            got: alerts.len() as u64,
            error,
        });
    }
    out
}

/// Runs every rule's tests (disabled rules too: their tests still say what they do).
pub fn run(set: &RuleSet) -> Vec<Outcome> {
    set.rules.iter().flat_map(run_rule).collect()
}

/// A copy of `rule`, enabled, to run alone.
fn single(rule: &Rule) -> Rule {
    let mut r = rule.clone();
    r.enabled = true;
    r
}
