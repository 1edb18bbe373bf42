//! Segments are standard Parquet: DuckDB (from PyPI; scripts/test.sh installs it) reads a
//! store's segments directly and sees the same events, columns and types kaudit wrote.

use std::ops::ControlFlow;
use std::process::Command;
use std::time::Duration;

use kaudit_gen::{Config, generate};
use kaudit_model::{MicroTime, decode};
use kaudit_store::{Incoming, Options, Store};

#[test]
fn duckdb_reads_the_segments() {
    let start = MicroTime::parse("2026-03-01T00:00:00Z").unwrap();
    let cfg = Config::recipe(3000, start, 3600 * 1_000_000, 3, 2);
    let mut data = Vec::new();
    generate(&cfg, &mut data).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::open(
        tmp.path(),
        Options {
            seal_rows: 1000,
            checkpoint_every: Duration::from_secs(1),
            row_group_rows: 400,
            dedup_hot_rows: 1_000_000,
        },
    )
    .unwrap();
    let mut secrets = 0u64;
    let mut recs = Vec::new();
    decode::decode_slice(&data, |r| {
        let r = r.unwrap();
        if r.event
            .object_ref
            .as_ref()
            .is_some_and(|o| o.resource.as_str() == "secrets")
        {
            secrets += 1;
        }
        recs.push((r.raw, r.event));
        ControlFlow::Continue(())
    });
    let inc: Vec<Incoming<'_>> = recs
        .iter()
        .map(|(raw, e)| Incoming::new(1, "prod", raw, e))
        .collect();
    s.append(&inc).unwrap();
    s.close().unwrap();
    let glob = tmp.path().join("segments/*.parquet");
    let script = format!(
        r#"
import duckdb, json
c = duckdb.connect()
g = {glob:?}
print(json.dumps({{
  "rows": c.execute(f"select count(*) from read_parquet('{{g}}')").fetchone()[0],
  "secrets": c.execute(f"select count(*) from read_parquet('{{g}}') where resource = 'secrets'").fetchone()[0],
  "leaves": c.execute(f"select min(leaf), max(leaf), count(distinct leaf) from read_parquet('{{g}}')").fetchone(),
  "types": {{r[0]: r[1] for r in c.execute(f"describe select * from read_parquet('{{g}}')").fetchall()}},
  "raw_ok": c.execute(f"select count(*) from read_parquet('{{g}}') where json_extract_string(event, '$.auditID') = audit_id").fetchone()[0],
}}))
"#,
        glob = glob.display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "DuckDB (pip install duckdb; scripts/test.sh does it) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 3000);
    assert_eq!(v["secrets"], secrets);
    assert_eq!(v["leaves"], serde_json::json!([0, 2999, 3000]));
    assert_eq!(v["raw_ok"], 3000);
    let t = &v["types"];
    assert_eq!(t["time"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(t["code"], "INTEGER");
    assert_eq!(t["groups"], "VARCHAR[]");
    assert_eq!(t["first"], "BOOLEAN");
}
