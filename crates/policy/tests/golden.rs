//! `check` and `lint` on the policies in `test_data/{check,lint}/`, against the `.expected`
//! file beside each (`KAUDIT_BLESS=1` rewrites them).

use std::path::{Path, PathBuf};

use kaudit_policy::{K8sVersion, LoadOptions, lint, load};

fn cases(dir: &str) -> Vec<PathBuf> {
    kaudit_testkit::inputs(
        &kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR"))
            .join("test_data")
            .join(dir),
    )
}

fn check_expect(path: &Path, actual: &str) {
    kaudit_testkit::expect(&path.with_extension("expected"), actual);
}

#[test]
fn check_cases() {
    for path in cases("check") {
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = load(&text, &LoadOptions::default());
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut out: String = loaded
            .diagnostics
            .iter()
            .map(|d| format!("{} [{}]\n", d.render(&name), d.code))
            .collect();
        out.push_str(&format!("valid: {}\n", loaded.is_valid()));
        check_expect(&path, &out);
    }
}

#[test]
fn lint_cases() {
    for path in cases("lint") {
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded = load(&text, &LoadOptions::default());
        let out: String = lint::lint(&loaded, K8sVersion::DEFAULT)
            .iter()
            .map(|f| {
                format!(
                    "{} {} rule={:?}: {}\n    fix: {}\n",
                    f.severity, f.code, f.rule, f.message, f.fix
                )
            })
            .collect();
        check_expect(&path, &out);
    }
}
