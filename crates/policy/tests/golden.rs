//! `check` and `lint` on the policies in `test_data/{check,lint}/`, against the `.expected`
//! file beside each (`UPDATE_EXPECT=1` rewrites them).

use std::path::{Path, PathBuf};

use kaudit_policy::{K8sVersion, LoadOptions, lint, load};

fn cases(dir: &str) -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

fn check_expect(path: &Path, actual: &str) {
    let exp = path.with_extension("expected");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&exp, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&exp)
        .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_EXPECT=1)", exp.display()));
    assert_eq!(actual, want, "{}", path.display());
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
