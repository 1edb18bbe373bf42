//! Helpers shared by the store's integration tests.

use kaudit_gen::{Config, generate};
use kaudit_model::MicroTime;

/// `n` generated events (recipe profile, one hour of a 3-node cluster from 2026-03-01) as an
/// audit.log.
pub fn traffic(n: u64, seed: u64) -> Vec<u8> {
    let start = MicroTime::parse("2026-03-01T00:00:00Z").unwrap();
    let cfg = Config::recipe(n, start, 3600 * 1_000_000, seed, 3);
    let mut out = Vec::new();
    generate(&cfg, &mut out).unwrap();
    out
}
