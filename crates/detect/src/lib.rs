//! Detection rules over Kubernetes audit events.
//!
//! - [`rule`]: the rule files (YAML): lists, macros, rules with Sigma-style `detection`
//!   blocks, windows (threshold, distinct count, first-seen), output templates, tests, and
//!   overrides that tune rules loaded earlier.
//! - [`sigma`]: Sigma rules for Kubernetes audit logs, translated on load.
//! - [`engine`]: runs a [`RuleSet`] over events, one alert per rule per request.
//! - [`testing`]: runs each rule against its own test events.
//! - The built-in pack (`rules/*.yaml` in this crate), embedded in the binary.

pub mod condition;
pub mod engine;
pub mod fields;
pub mod matcher;
pub mod rule;
pub mod sigma;
pub mod template;
pub mod testing;

pub use engine::{Alert, Engine, Stats};
pub use rule::{RuleSet, Severity, Source, builtin_sources, load};

/// The built-in rule files, in load order.
pub const BUILTIN: &[(&str, &str)] = &[
    ("00-macros.yaml", include_str!("../rules/00-macros.yaml")),
    ("exec.yaml", include_str!("../rules/exec.yaml")),
    ("workloads.yaml", include_str!("../rules/workloads.yaml")),
    ("rbac.yaml", include_str!("../rules/rbac.yaml")),
    ("secrets.yaml", include_str!("../rules/secrets.yaml")),
    ("access.yaml", include_str!("../rules/access.yaml")),
    ("cluster.yaml", include_str!("../rules/cluster.yaml")),
];

/// The built-in pack, compiled.
pub fn builtin() -> Result<RuleSet, String> {
    load(&builtin_sources())
}
