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
mod defs;
pub mod engine;
pub mod fields;
pub mod matcher;
pub mod rule;
pub mod sigma;
pub mod template;
pub mod testing;

pub use engine::{Alert, Engine, EngineState, Stats};
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

/// Loads the built-in pack (unless `builtin` is false) and then each of `paths`: a file
/// named is read whatever its extension; a directory contributes its `*.yaml`/`*.yml` files,
/// recursively, in name order.
pub fn load_paths(paths: &[std::path::PathBuf], builtin: bool) -> Result<RuleSet, String> {
    let mut sources = if builtin {
        builtin_sources()
    } else {
        Vec::new()
    };
    for p in paths {
        let mut files = Vec::new();
        if p.is_dir() {
            collect(p, &mut files).map_err(|e| format!("{}: {e}", p.display()))?;
            if files.is_empty() {
                return Err(format!("{}: no .yaml or .yml rule files", p.display()));
            }
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            sources.push(Source {
                name: f.display().to_string(),
                text,
            });
        }
    }
    load(&sources)
}

/// The rule files under a directory, recursively, in name order.
fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}
