//! Helpers shared by the store's integration tests.

use kaudit_gen::{Config, Format, generate};
use kaudit_model::MicroTime;
use kaudit_policy::{Evaluator, K8sVersion, LoadOptions, load, profiles};

/// `n` generated events (recipe profile, one hour of a 3-node cluster from 2026-03-01) as an
/// audit.log.
pub fn traffic(n: u64, seed: u64) -> Vec<u8> {
    let p = load(
        profiles::profile("recipe").unwrap().text,
        &LoadOptions::default(),
    );
    let cfg = Config {
        events: n,
        start: MicroTime::parse("2026-03-01T00:00:00Z").unwrap(),
        span_micros: 3600 * 1_000_000,
        seed,
        nodes: 3,
        format: Format::Lines,
        policy: Evaluator::new(&p.policy, K8sVersion::DEFAULT).unwrap(),
    };
    let mut out = Vec::new();
    generate(&cfg, &mut out).unwrap();
    out
}
