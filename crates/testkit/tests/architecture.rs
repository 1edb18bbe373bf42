//! `ARCHITECTURE.md` is the map, and this test holds the code to it: the table between the
//! `<!-- crates: -->` markers names every crate, what it may depend on, and whether Arrow and
//! Parquet may be in its build. `cargo metadata` says what the code does; any dependency
//! edge the map does not allow, a crate missing from the map (or a row for one that does not
//! exist), or Arrow/Parquet in a crate (or its tests) marked without them fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// One row of the map: what the crate may depend on, and whether Arrow/Parquet may be built
/// for it.
struct Row {
    may: BTreeSet<String>,
    arrow: bool,
}

fn root() -> PathBuf {
    kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The crate table of ARCHITECTURE.md.
fn map() -> BTreeMap<String, Row> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = text
        .find("<!-- crates:")
        .expect("ARCHITECTURE.md: no <!-- crates: ... --> table");
    let end = text
        .find("<!-- /crates -->")
        .expect("ARCHITECTURE.md: no <!-- /crates --> after the table");
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, n)| n.to_string())
            .collect()
    };
    let mut out = BTreeMap::new();
    for line in text[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | crate | owns | may depend on | Arrow/Parquet |
        assert!(cells.len() >= 6, "ARCHITECTURE.md: a short row: {line}");
        let name = names(cells[1]).into_iter().next().expect("a crate name");
        let arrow = match cells[4] {
            "yes" => true,
            "no" => false,
            x => panic!("ARCHITECTURE.md: {name}: Arrow/Parquet is {x:?}, not yes or no"),
        };
        let row = Row {
            may: names(cells[3]),
            arrow,
        };
        assert!(
            out.insert(name.clone(), row).is_none(),
            "ARCHITECTURE.md: {name} twice"
        );
    }
    assert!(
        out.len() > 5,
        "ARCHITECTURE.md: the crate table is not readable"
    );
    out
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The dependency graph: package id -> (name, [(dependency id, kinds)]).
struct Graph {
    name: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<(String, Vec<String>)>>,
    members: BTreeMap<String, String>,
}

fn graph(m: &Value) -> Graph {
    let mut name = BTreeMap::new();
    for p in m["packages"].as_array().unwrap() {
        name.insert(
            p["id"].as_str().unwrap().to_string(),
            p["name"].as_str().unwrap().to_string(),
        );
    }
    let mut deps = BTreeMap::new();
    for n in m["resolve"]["nodes"].as_array().unwrap() {
        let d = n["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let kinds = d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal").to_string())
                    .collect();
                (d["pkg"].as_str().unwrap().to_string(), kinds)
            })
            .collect();
        deps.insert(n["id"].as_str().unwrap().to_string(), d);
    }
    let members = m["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap().to_string();
            (name[&id].clone(), id)
        })
        .collect();
    Graph {
        name,
        deps,
        members,
    }
}

impl Graph {
    /// The names of what `id` depends on directly, with kinds among `kinds`.
    fn direct(&self, id: &str, kinds: &[&str]) -> BTreeSet<String> {
        self.deps[id]
            .iter()
            .filter(|(_, k)| k.iter().any(|k| kinds.contains(&k.as_str())))
            .map(|(d, _)| self.name[d].clone())
            .collect()
    }

    /// Every package built for `id` (normal and build dependencies, transitively), and with
    /// `tests`, for its tests too (its dev-dependencies and theirs).
    fn closure(&self, id: &str, tests: bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = self.deps[id]
            .iter()
            .filter(|(_, k)| {
                k.iter()
                    .any(|k| k == "normal" || k == "build" || (tests && k == "dev"))
            })
            .map(|(d, _)| d.clone())
            .collect();
        while let Some(d) = todo.pop() {
            if !seen.insert(d.clone()) {
                continue;
            }
            for (dd, k) in &self.deps[&d] {
                if k.iter().any(|k| k == "normal" || k == "build") {
                    todo.push(dd.clone());
                }
            }
        }
        seen.into_iter().map(|d| self.name[&d].clone()).collect()
    }
}

#[test]
fn every_crate_is_on_the_map_and_keeps_to_it() {
    let map = map();
    let g = graph(&metadata());
    let members: BTreeSet<&String> = g.members.keys().collect();
    let mapped: BTreeSet<&String> = map.keys().collect();
    assert_eq!(
        members, mapped,
        "the crates in the workspace and in ARCHITECTURE.md's table differ"
    );
    let mut wrong = Vec::new();
    for (name, id) in &g.members {
        let row = &map[name];
        for d in g.direct(id, &["normal", "build"]) {
            if g.members.contains_key(&d) && !row.may.contains(&d) {
                wrong.push(format!(
                    "{name} depends on {d}, which ARCHITECTURE.md does not allow"
                ));
            }
            if d == "kaudit-testkit" {
                wrong.push(format!("{name}: kaudit-testkit is for tests only"));
            }
        }
        if !row.arrow {
            for (what, tests) in [("its build", false), ("its tests", true)] {
                let heavy: Vec<String> = g
                    .closure(id, tests)
                    .into_iter()
                    .filter(|p| p.starts_with("arrow") || p == "parquet")
                    .collect();
                if !heavy.is_empty() {
                    wrong.push(format!(
                        "{name}: Arrow/Parquet ({}) in {what}; ARCHITECTURE.md keeps them out",
                        heavy.join(", ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The map's own rules: a crate may only depend on crates that are on it, and the map has no
/// cycle (so it reads as layers).
#[test]
fn the_map_is_layered() {
    let map = map();
    for (name, row) in &map {
        for d in &row.may {
            assert!(
                map.contains_key(d),
                "{name} may depend on {d}, which is not on the map"
            );
        }
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    while done.len() < map.len() {
        let next: Vec<String> = map
            .iter()
            .filter(|(n, r)| !done.contains(*n) && r.may.iter().all(|d| done.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        assert!(
            !next.is_empty(),
            "ARCHITECTURE.md's table has a cycle among {:?}",
            map.keys()
                .filter(|n| !done.contains(*n))
                .collect::<Vec<_>>()
        );
        done.extend(next);
    }
}
